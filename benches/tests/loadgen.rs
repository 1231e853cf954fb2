//! `loadgen` against the real broker: every way it hands records to librdkafka delivers each
//! record exactly once, also when librdkafka's local queue is full and sends must be retried.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};

/// The broker binary `cargo test --workspace` builds beside `loadgen`.
fn broker_bin() -> PathBuf {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_loadgen")).with_file_name("runnel");
    assert!(
        bin.exists(),
        "{} is missing: build the broker first (cargo build -p runnel)",
        bin.display()
    );
    bin
}

struct Broker {
    child: Child,
    addr: String,
    _dir: tempfile::TempDir,
}

impl Broker {
    fn start() -> Broker {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut child = Command::new(broker_bin())
            .arg("serve")
            .args(["--override", "listeners=PLAINTEXT://127.0.0.1:0"])
            .args(["--override", "runnel.http.listener=127.0.0.1:0"])
            .arg("--override")
            .arg(format!("log.dirs={}", dir.path().display()))
            .env("RUNNEL_LOG", "warn")
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn the broker");
        let mut line = String::new();
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        stdout.read_line(&mut line).expect("broker stdout");
        // Keep reading, or the broker's next line would meet a closed pipe.
        std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
        let addr = line.trim().rsplit(' ').next().unwrap_or_default().to_string();
        assert!(
            line.contains("listening") && addr.contains(':'),
            "first broker line: {line:?}"
        );
        Broker { child, addr, _dir: dir }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `loadgen` with `args` (which must ask for `--json`) and returns its JSON lines: one
/// per run, the median last.
fn loadgen<S: AsRef<OsStr>>(args: &[S]) -> Vec<serde_json::Value> {
    let mut command = Command::new(env!("CARGO_BIN_EXE_loadgen"));
    stdout_of(command.args(args), "loadgen")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// Runs `command` to its end and returns its stdout; fails the test, with both outputs, if the
/// command failed.
fn stdout_of(command: &mut Command, what: &str) -> String {
    let out = command.output().unwrap_or_else(|e| panic!("run {what}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{what} failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Runs `loadgen produce --json` and returns its median line.
fn produce(addr: &str, topic: &str, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["produce", "--bootstrap", addr, "--topic", topic, "--json"];
    args.extend(extra);
    loadgen(&args).pop().expect("a median line")
}

/// Records in `topic`: the sum of its partitions' high watermarks.
fn records_in(addr: &str, topic: &str) -> i64 {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", addr)
        .create()
        .expect("consumer");
    let timeout = Duration::from_secs(10);
    let md = consumer.fetch_metadata(Some(topic), timeout).expect("metadata");
    md.topics()[0]
        .partitions()
        .iter()
        .map(|p| consumer.fetch_watermarks(topic, p.id(), timeout).expect("watermarks").1)
        .sum()
}

#[test]
fn every_produce_call_delivers_each_record_once_even_through_a_full_local_queue() {
    let broker = Broker::start();
    let records = 5_000;
    let cases: [(&str, &[&str]); 4] = [
        ("batch-blocks", &["--produce-call", "batch", "--partitioner", "loadgen"]),
        (
            "batch-sticky",
            &["--produce-call", "batch", "--partitioner", "librdkafka"],
        ),
        (
            "single-blocks",
            &["--produce-call", "single", "--partitioner", "loadgen"],
        ),
        (
            "single-sticky",
            &["--produce-call", "single", "--partitioner", "librdkafka"],
        ),
    ];
    for (topic, call) in cases {
        let mut args = vec!["--records", "5000", "--partitions", "3", "--producers", "2"];
        // A queue smaller than a block: sends fail with QUEUE_FULL and are retried.
        args.extend(["-X", "queue.buffering.max.messages=40"]);
        args.extend(call);
        let median = produce(&broker.addr, topic, &args);
        assert_eq!(median["records"].as_f64(), Some(records as f64), "{topic}: {median}");
        assert_eq!(median["failed"].as_f64(), Some(0.0), "{topic}: {median}");
        assert_eq!(median["config"]["produce_call"], call[1], "{topic}: {median}");
        assert_eq!(
            records_in(&broker.addr, topic),
            records,
            "{topic}: each record exactly once"
        );
    }
}

#[test]
fn runs_on_a_spawned_broker_recreate_the_topic_and_a_given_broker_keeps_its_topics() {
    // loadgen's own broker: the topic is deleted and made again between runs, which must work.
    let bin = broker_bin();
    let bin = bin.to_str().expect("a UTF-8 target path");
    let runs = loadgen(&[
        "produce",
        "--broker-bin",
        bin,
        "--records",
        "2000",
        "--partitions",
        "2",
        "--runs",
        "3",
        "--json",
    ]);
    assert_eq!(runs.len(), 4, "three runs and the median: {runs:?}");
    for r in &runs {
        assert_eq!(r["records"].as_f64(), Some(2000.0), "{r}");
    }

    // A broker someone else runs: its topic is left alone, so it holds every run's records.
    let broker = Broker::start();
    let median = produce(
        &broker.addr,
        "kept",
        &["--records", "2000", "--partitions", "2", "--runs", "2"],
    );
    assert_eq!(median["records"].as_f64(), Some(2000.0), "{median}");
    assert_eq!(records_in(&broker.addr, "kept"), 4000);
}

#[test]
fn the_latency_consumer_receives_every_record_it_is_sent() {
    let broker = Broker::start();
    let median = loadgen(&[
        "latency",
        "--bootstrap",
        &broker.addr,
        "--json",
        "--rate",
        "20000",
        "--duration-s",
        "1",
        "--warmup-s",
        "0.5",
        "--partitions",
        "2",
        "--produce-call",
        "batch",
        "--partitioner",
        "loadgen",
    ])
    .pop()
    .expect("a median line");
    assert_eq!(median["lost"].as_f64(), Some(0.0), "{median}");
    assert_eq!(median["failed"].as_f64(), Some(0.0), "{median}");
    // 1.5 s at 20 000/s, the first 0.5 s kept out of the histogram: about 20 000 timed.
    let timed = median["e2e_count"].as_f64().expect("e2e_count");
    assert!((18_000.0..=22_000.0).contains(&timed), "{median}");
}

/// A loopback port nothing listens on now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind a free port")
        .port()
}

/// `scripts/targets.sh` at its smallest (`QUICK=1`) runs every target's commands, and its
/// summary has one row per figure whose verdict follows from the median and the limit.
#[test]
fn the_targets_script_reports_every_figure_against_its_limit() {
    let out = tempfile::tempdir().expect("temp dir");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/targets.sh");
    let stdout = stdout_of(
        Command::new("bash")
            .arg(&script)
            .arg(env!("CARGO_BIN_EXE_loadgen"))
            .arg(broker_bin())
            .arg(out.path())
            .env("QUICK", "1")
            .env("KAFKA_PORT", free_port().to_string())
            .env("HTTP_PORT", free_port().to_string()),
        "targets.sh",
    );
    let rows: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with(|c: char| c.is_ascii_digit()))
        .collect();
    let targets: Vec<&str> = rows.iter().map(|r| &r[..1]).collect();
    assert_eq!(
        targets,
        ["1", "1", "2", "2", "3", "4", "4", "4", "4", "5", "5", "5", "5"],
        "{stdout}"
    );
    for row in rows {
        // "... CLIENT MEDIAN OP LIMIT MET UNIT...": the operator is the only `>=` or `<=`.
        let words: Vec<&str> = row.split_whitespace().collect();
        let op = words.iter().position(|w| *w == ">=" || *w == "<=").expect(row);
        let median: f64 = words[op - 1].parse().unwrap_or_else(|_| panic!("median in {row}"));
        let limit: f64 = words[op + 1].parse().unwrap_or_else(|_| panic!("limit in {row}"));
        let met = if words[op] == ">=" {
            median >= limit
        } else {
            median <= limit
        };
        assert_eq!(words[op + 2], if met { "yes" } else { "no" }, "{row}");
    }
    for kept in [
        "t1.txt",
        "t2-raw.txt",
        "t3.txt",
        "t4-fsync.txt",
        "t5-partitions.txt",
        "summary.txt",
    ] {
        assert!(out.path().join(kept).exists(), "{kept} is not kept");
    }
}
