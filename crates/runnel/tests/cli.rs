//! The admin CLI end to end: every `runnel` client command against the real broker binary,
//! checked by what it prints and by what changed in the cluster (read back with the CLI's own
//! `--json` output or with `/metrics`). The `kafka-*.sh` wrappers in `docker/bin` run under
//! `sh` with the test binary first on `PATH`.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::{wait_for, Broker};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::ClientConfig;
use serde_json::Value;

const TIMEOUT: Duration = Duration::from_secs(20);

fn broker() -> Broker {
    Broker::start_with(&[("runnel.http.listener", "127.0.0.1:0"), ("num.partitions", "1")])
}

/// Runs `runnel ARGS -b BROKER` with `stdin` fed in.
fn runnel_in(b: &Broker, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_runnel"))
        .args(args)
        .args(["-b", &b.bootstrap(), "--timeout-ms", "10000"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn runnel");
    let mut input = child.stdin.take().expect("stdin");
    let data = stdin.to_string();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(data.as_bytes());
    });
    let out = child.wait_with_output().expect("runnel output");
    writer.join().expect("stdin writer");
    out
}

fn runnel(b: &Broker, args: &[&str]) -> Output {
    runnel_in(b, args, "")
}

/// Runs a command that must succeed; returns its stdout.
fn ok(b: &Broker, args: &[&str]) -> String {
    let out = runnel(b, args);
    assert!(
        out.status.success(),
        "runnel {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 stdout")
}

fn json(b: &Broker, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    let text = ok(b, &all);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("runnel {args:?}: not JSON ({e}): {text}"))
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn topic_names(b: &Broker) -> Vec<String> {
    ok(b, &["topic", "list", "--names-only"])
        .lines()
        .map(str::to_string)
        .collect()
}

/// `topic describe --json` of one topic: (partition count, overrides, per-partition end offsets).
fn describe_topic(b: &Broker, topic: &str) -> (usize, BTreeMap<String, String>, Vec<i64>) {
    let v = json(b, &["topic", "describe", topic]);
    let t = &v[0];
    assert_eq!(t["name"], topic);
    let configs = t["configs"]
        .as_object()
        .expect("configs")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
        .collect();
    let ends = t["partitions"]
        .as_array()
        .expect("partitions")
        .iter()
        .map(|p| p["end_offset"].as_i64().expect("end offset"))
        .collect();
    (t["partition_count"].as_u64().expect("count") as usize, configs, ends)
}

#[test]
fn topic_commands_create_list_describe_alter_delete() {
    let b = broker();

    ok(
        &b,
        &[
            "topic",
            "create",
            "orders",
            "--partitions",
            "3",
            "--config",
            "retention.ms=60000",
        ],
    );
    assert!(topic_names(&b).contains(&"orders".to_string()));
    // Creating again fails, unless --if-not-exists.
    let again = runnel(&b, &["topic", "create", "orders", "--partitions", "3"]);
    assert!(!again.status.success());
    assert!(stderr(&again).contains("TOPIC_ALREADY_EXISTS"), "{}", stderr(&again));
    let out = ok(
        &b,
        &["topic", "create", "orders", "--partitions", "3", "--if-not-exists"],
    );
    assert!(out.contains("already exists"), "{out}");

    let (partitions, configs, ends) = describe_topic(&b, "orders");
    assert_eq!(partitions, 3);
    assert_eq!(
        configs,
        BTreeMap::from([("retention.ms".to_string(), "60000".to_string())])
    );
    assert_eq!(ends, vec![0, 0, 0]);
    let text = ok(&b, &["topic", "describe", "orders"]);
    assert!(
        text.contains("PartitionCount: 3") && text.contains("retention.ms=60000"),
        "{text}"
    );
    assert_eq!(
        text.lines()
            .filter(|l| l.starts_with(|c: char| c.is_ascii_digit()))
            .count(),
        3,
        "{text}"
    );

    // alter-config: set one, delete another, in one IncrementalAlterConfigs.
    ok(
        &b,
        &[
            "topic",
            "alter-config",
            "orders",
            "--set",
            "segment.ms=3600000",
            "--delete",
            "retention.ms",
        ],
    );
    let (_, configs, _) = describe_topic(&b, "orders");
    assert_eq!(
        configs,
        BTreeMap::from([("segment.ms".to_string(), "3600000".to_string())])
    );
    ok(&b, &["topic", "alter", "orders", "--partitions", "5"]);
    assert_eq!(describe_topic(&b, "orders").0, 5);

    // Table and JSON listings agree.
    let listed = json(&b, &["topic", "list"]);
    let orders = listed
        .as_array()
        .expect("list")
        .iter()
        .find(|t| t["name"] == "orders")
        .cloned();
    assert_eq!(orders.map(|t| t["partitions"].clone()), Some(Value::from(5)));

    ok(&b, &["topic", "delete", "orders"]);
    wait_for("orders deleted", TIMEOUT, || {
        (!topic_names(&b).contains(&"orders".to_string())).then_some(())
    });
    let missing = runnel(&b, &["topic", "delete", "orders"]);
    assert!(!missing.status.success());
    ok(&b, &["topic", "delete", "orders", "--if-exists"]);
    let nothing = runnel(&b, &["topic", "describe", "nope"]);
    assert!(
        !nothing.status.success() && stderr(&nothing).contains("UNKNOWN_TOPIC"),
        "{}",
        stderr(&nothing)
    );
}

#[test]
fn produce_then_consume_exits_at_the_end_with_every_message() {
    let b = broker();
    ok(&b, &["topic", "create", "events", "--partitions", "3"]);
    const N: usize = 250;
    let input: String = (0..N).map(|i| format!("k{}:value-{i}\n", i % 7)).collect();
    let out = runnel_in(
        &b,
        &[
            "produce",
            "events",
            "--key-separator",
            ":",
            "-H",
            "src=cli",
            "--compression",
            "lz4",
        ],
        &input,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("produced {N} messages")));
    let (_, _, ends) = describe_topic(&b, "events");
    assert_eq!(ends.iter().sum::<i64>(), N as i64);
    assert!(
        ends.iter().filter(|e| **e > 0).count() > 1,
        "keys spread over partitions: {ends:?}"
    );

    // Exactly N lines, then exit (no --follow).
    let all = ok(&b, &["consume", "events", "--from-beginning", "--format", "%k|%v|%h"]);
    let lines: Vec<&str> = all.lines().collect();
    assert_eq!(lines.len(), N);
    for i in 0..N {
        let want = format!("k{}|value-{i}|src=cli", i % 7);
        assert!(lines.contains(&want.as_str()), "missing {want}");
    }
    // A key always lands in the same partition: per partition, the keys are disjoint.
    let keyed = ok(&b, &["consume", "events", "--from-beginning", "--format", "%p %k"]);
    let mut owner: BTreeMap<String, String> = BTreeMap::new();
    for l in keyed.lines() {
        let (p, k) = l.split_once(' ').expect("p k");
        assert_eq!(
            owner.entry(k.to_string()).or_insert_with(|| p.to_string()),
            p,
            "key {k}"
        );
    }

    // JSON lines, --max-messages, --partition with --offset.
    let js = ok(
        &b,
        &["consume", "events", "--from-beginning", "--json", "--max-messages", "5"],
    );
    let msgs: Vec<Value> = js
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(msgs.len(), 5);
    assert_eq!(msgs[0]["headers"][0]["key"], "src");
    let p0_end = ends[0];
    let tail = ok(
        &b,
        &[
            "consume",
            "events",
            "--partition",
            "0",
            "--offset",
            &(p0_end - 2).to_string(),
            "--format",
            "%p:%o",
        ],
    );
    assert_eq!(
        tail.lines().collect::<Vec<_>>(),
        vec![format!("0:{}", p0_end - 2), format!("0:{}", p0_end - 1)]
    );

    // By timestamp: everything is at or after 0, nothing is an hour from now.
    let from_zero = ok(&b, &["consume", "events", "--from-timestamp", "0"]);
    assert_eq!(from_zero.lines().count(), N);
    let future = (std::time::SystemTime::now() + Duration::from_secs(3600))
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis()
        .to_string();
    assert_eq!(
        ok(&b, &["consume", "events", "--from-timestamp", &future])
            .lines()
            .count(),
        0
    );

    // From a file, to one partition; --follow stops at --max-messages.
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("in.txt");
    std::fs::write(&file, "a\nb\nc\n").expect("write input");
    ok(
        &b,
        &[
            "produce",
            "events",
            "--file",
            file.to_str().expect("path"),
            "--partition",
            "2",
        ],
    );
    let followed = ok(
        &b,
        &[
            "consume",
            "events",
            "--partition",
            "2",
            "--offset",
            &ends[2].to_string(),
            "--follow",
            "--max-messages",
            "3",
        ],
    );
    assert_eq!(followed, "a\nb\nc\n");

    let bad = runnel(&b, &["produce", "no-such-topic"]);
    assert!(
        !bad.status.success() && stderr(&bad).contains("does not exist"),
        "{}",
        stderr(&bad)
    );
}

/// `GET path` → body.
fn http_get(port: u16, path: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect http");
    s.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    write!(s, "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").expect("write");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read");
    out.split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or_default()
}

fn metric(port: u16, series: &str) -> Option<f64> {
    http_get(port, "/metrics")
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
}

/// (current offset, lag) of partition 0 of `topic` from `group describe --json`.
fn group_offsets(b: &Broker, group: &str, topic: &str) -> (i64, i64) {
    let v = json(b, &["group", "describe", group]);
    let row = v["offsets"]
        .as_array()
        .expect("offsets")
        .iter()
        .find(|r| r["topic"] == topic && r["partition"] == 0)
        .cloned()
        .unwrap_or_else(|| panic!("no offsets row in {v}"));
    (
        row["current_offset"].as_i64().expect("current"),
        row["lag"].as_i64().expect("lag"),
    )
}

#[test]
fn group_commands_lag_matches_metrics_and_reset_offsets() {
    let b = broker();
    ok(&b, &["topic", "create", "clicks", "--partitions", "1"]);
    let input: String = (0..100).map(|i| format!("c{i}\n")).collect();
    assert!(runnel_in(&b, &["produce", "clicks"], &input).status.success());

    // A consumer that stops after 40 messages commits offset 40.
    let got = ok(
        &b,
        &[
            "consume",
            "clicks",
            "--from-beginning",
            "--group",
            "dash",
            "--max-messages",
            "40",
        ],
    );
    assert_eq!(got.lines().count(), 40);
    assert!(ok(&b, &["group", "list", "--names-only"]).lines().any(|g| g == "dash"));
    assert_eq!(group_offsets(&b, "dash", "clicks"), (40, 60));
    // Resuming with the group starts at the committed offset.
    let rest = ok(&b, &["consume", "clicks", "--group", "dash", "--max-messages", "5"]);
    assert_eq!(rest.lines().next(), Some("c40"));
    assert_eq!(group_offsets(&b, "dash", "clicks"), (45, 55));

    // The broker's kafka_consumergroup_lag agrees with `group describe`.
    let series = "kafka_consumergroup_lag{consumergroup=\"dash\",topic=\"clicks\",partition=\"0\"}";
    wait_for("lag metric of 55", TIMEOUT, || {
        (metric(b.http_port, series) == Some(55.0)).then_some(())
    });
    let text = ok(&b, &["group", "describe", "dash"]);
    assert!(
        text.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>()
                == ["dash", "clicks", "0", "45", "100", "55", "-", "-", "-"]),
        "{text}"
    );

    // Dry run (the default) prints the plan and changes nothing; --execute commits it.
    let plan = ok(
        &b,
        &["group", "reset-offsets", "dash", "--topic", "clicks", "--to-earliest"],
    );
    assert!(
        plan.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["dash", "clicks", "0", "45", "0"]),
        "{plan}"
    );
    ok(
        &b,
        &[
            "group",
            "reset-offsets",
            "dash",
            "--topic",
            "clicks",
            "--to-earliest",
            "--dry-run",
        ],
    );
    assert_eq!(group_offsets(&b, "dash", "clicks"), (45, 55));
    ok(
        &b,
        &[
            "group",
            "reset-offsets",
            "dash",
            "--topic",
            "clicks",
            "--to-earliest",
            "--execute",
        ],
    );
    assert_eq!(group_offsets(&b, "dash", "clicks"), (0, 100));
    ok(
        &b,
        &[
            "group",
            "reset-offsets",
            "dash",
            "--topic",
            "clicks",
            "--to-offset",
            "75",
            "--execute",
        ],
    );
    assert_eq!(group_offsets(&b, "dash", "clicks"), (75, 25));
    ok(
        &b,
        &[
            "group",
            "reset-offsets",
            "dash",
            "--all-topics",
            "--to-datetime",
            "2999-01-01T00:00:00Z",
            "--execute",
        ],
    );
    assert_eq!(group_offsets(&b, "dash", "clicks"), (100, 0));
    ok(
        &b,
        &[
            "group",
            "reset-offsets",
            "dash",
            "--topic",
            "clicks",
            "--to-timestamp",
            "0",
            "--execute",
        ],
    );
    assert_eq!(group_offsets(&b, "dash", "clicks"), (0, 100));

    // With an active member: describe shows it, and reset refuses.
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", b.bootstrap())
        .set("group.id", "dash")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    consumer.subscribe(&["clicks"]).expect("subscribe");
    wait_for("an assignment", TIMEOUT, || {
        let _ = consumer.poll(Duration::from_millis(100));
        consumer.assignment().ok().filter(|a| a.count() > 0)
    });
    let v = json(&b, &["group", "describe", "dash"]);
    assert_eq!(v["state"], "Stable");
    assert_eq!(v["members"][0]["assignment"][0]["topic"], "clicks");
    let refused = runnel(
        &b,
        &[
            "group",
            "reset-offsets",
            "dash",
            "--topic",
            "clicks",
            "--to-latest",
            "--execute",
        ],
    );
    assert!(
        !refused.status.success() && stderr(&refused).contains("not empty"),
        "{}",
        stderr(&refused)
    );
    assert_eq!(group_offsets(&b, "dash", "clicks").0, 0);
    drop(consumer);

    wait_for("group empty", TIMEOUT, || {
        (json(&b, &["group", "describe", "dash"])["state"] == "Empty").then_some(())
    });
    ok(&b, &["group", "delete", "dash"]);
    assert!(!ok(&b, &["group", "list", "--names-only"]).lines().any(|g| g == "dash"));
}

#[test]
fn cluster_info_and_health() {
    let mut b = broker();
    ok(&b, &["topic", "create", "t", "--partitions", "2"]);
    let info = json(&b, &["cluster", "info"]);
    assert!(info["cluster_id"].as_str().is_some_and(|c| !c.is_empty()), "{info}");
    assert_eq!(info["brokers"].as_array().map(Vec::len), Some(1));
    assert_eq!(info["brokers"][0]["address"], b.bootstrap());
    assert_eq!(info["controller_id"], info["brokers"][0]["id"]);
    assert!(info["partitions"].as_u64().is_some_and(|p| p >= 2));
    let text = ok(&b, &["cluster", "info"]);
    assert!(text.contains("Cluster id: ") && text.contains(&b.bootstrap()), "{text}");

    let healthy = runnel(&b, &["cluster", "health"]);
    assert!(healthy.status.success(), "{}", stderr(&healthy));
    assert!(String::from_utf8_lossy(&healthy.stdout).starts_with("healthy"));

    b.kill9();
    let down = runnel(&b, &["cluster", "health"]);
    assert_eq!(down.status.code(), Some(1));
    assert!(stderr(&down).contains("unreachable"), "{}", stderr(&down));
}

#[test]
fn apply_prints_a_plan_and_dry_run_changes_nothing() {
    let b = broker();
    ok(&b, &["topic", "create", "existing", "--partitions", "1"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("topics.yaml");
    std::fs::write(
        &file,
        "topics:\n  - name: existing\n    partitions: 3\n    config:\n      retention.ms: 120000\n  - name: fresh\n    partitions: 2\n    replicationFactor: 1\n    config:\n      cleanup.policy: compact\n",
    )
    .expect("write topics file");
    let path = file.to_str().expect("path");

    let plan = ok(&b, &["apply", "-f", path, "--dry-run"]);
    assert!(
        plan.contains("+ create fresh (partitions 2, replication factor 1, cleanup.policy=compact)"),
        "{plan}"
    );
    assert!(
        plan.contains("~ existing: partitions 1 -> 3") && plan.contains("~ existing: set retention.ms=120000"),
        "{plan}"
    );
    assert!(!topic_names(&b).contains(&"fresh".to_string()));
    assert_eq!(describe_topic(&b, "existing").0, 1);

    let applied = ok(&b, &["apply", "-f", path]);
    assert!(applied.contains("applied 3 change(s)"), "{applied}");
    let (partitions, configs, _) = describe_topic(&b, "existing");
    assert_eq!(
        (partitions, configs.get("retention.ms").map(String::as_str)),
        (3, Some("120000"))
    );
    let (partitions, configs, _) = describe_topic(&b, "fresh");
    assert_eq!(
        (partitions, configs.get("cleanup.policy").map(String::as_str)),
        (2, Some("compact"))
    );

    let second = json(&b, &["apply", "-f", path]);
    assert_eq!(second["changes"], 0, "{second}");

    std::fs::write(&file, "topics:\n  - name: bad\n    partitions: 0\n").expect("write");
    let invalid = runnel(&b, &["apply", "-f", path]);
    assert_eq!(invalid.status.code(), Some(2));
    assert!(
        stderr(&invalid).contains("line 2") && stderr(&invalid).contains("partitions"),
        "{}",
        stderr(&invalid)
    );
}

/// Runs a `docker/bin` wrapper under `sh` with the test binary first on PATH.
fn wrapper(script: &str, args: &[&str]) -> Output {
    let bin_dir = PathBuf::from(env!("CARGO_BIN_EXE_runnel"))
        .parent()
        .expect("bin dir")
        .to_path_buf();
    let scripts = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docker/bin");
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
    Command::new("sh")
        .arg(scripts.join(script))
        .args(args)
        .env("PATH", path)
        .output()
        .expect("run wrapper")
}

fn wrapper_ok(script: &str, args: &[&str]) -> String {
    let out = wrapper(script, args);
    assert!(out.status.success(), "{script} {args:?}: {}", stderr(&out));
    String::from_utf8(out.stdout).expect("utf-8")
}

#[test]
fn kafka_script_wrappers_translate_the_common_flags() {
    let b = broker();
    let bs = b.bootstrap();
    let bs = bs.as_str();

    // kafka-topics.sh: create (twice with --if-not-exists), list, describe, alter, delete.
    let create = [
        "--bootstrap-server",
        bs,
        "--create",
        "--topic",
        "init",
        "--partitions",
        "2",
        "--replication-factor",
        "1",
        "--config",
        "retention.ms=90000",
        "--if-not-exists",
    ];
    wrapper_ok("kafka-topics.sh", &create);
    wrapper_ok("kafka-topics.sh", &create);
    let listed = wrapper_ok("kafka-topics.sh", &[&format!("--bootstrap-server={bs}"), "--list"]);
    assert!(listed.lines().any(|l| l == "init"), "{listed}");
    let described = wrapper_ok(
        "kafka-topics.sh",
        &["--bootstrap-server", bs, "--describe", "--topic", "init"],
    );
    assert!(
        described.contains("PartitionCount: 2") && described.contains("retention.ms=90000"),
        "{described}"
    );
    wrapper_ok(
        "kafka-topics.sh",
        &[
            "--bootstrap-server",
            bs,
            "--alter",
            "--topic",
            "init",
            "--partitions",
            "4",
        ],
    );
    assert_eq!(describe_topic(&b, "init").0, 4);

    // kafka-configs.sh: add two configs, delete one, describe.
    let entity = [
        "--bootstrap-server",
        bs,
        "--entity-type",
        "topics",
        "--entity-name",
        "init",
    ];
    wrapper_ok(
        "kafka-configs.sh",
        &[
            &entity[..],
            &["--alter", "--add-config", "segment.ms=7200000,retention.ms=1000"],
        ]
        .concat(),
    );
    wrapper_ok(
        "kafka-configs.sh",
        &[&entity[..], &["--alter", "--delete-config", "retention.ms"]].concat(),
    );
    let configs = wrapper_ok("kafka-configs.sh", &[&entity[..], &["--describe"]].concat());
    assert_eq!(configs, "Dynamic configs for topic init are:\n  segment.ms=7200000\n");
    assert_eq!(
        describe_topic(&b, "init").1,
        BTreeMap::from([("segment.ms".to_string(), "7200000".to_string())])
    );

    // kafka-consumer-groups.sh: list, describe, reset (dry run, then execute), delete.
    let input: String = (0..10).map(|i| format!("m{i}\n")).collect();
    assert!(runnel_in(&b, &["produce", "init", "--partition", "0"], &input)
        .status
        .success());
    ok(&b, &["consume", "init", "--from-beginning", "--group", "init-job"]);
    let groups = wrapper_ok("kafka-consumer-groups.sh", &["--bootstrap-server", bs, "--list"]);
    assert_eq!(groups, "init-job\n");
    let described = wrapper_ok(
        "kafka-consumer-groups.sh",
        &["--bootstrap-server", bs, "--describe", "--group", "init-job"],
    );
    assert!(described.contains("LAG"), "{described}");
    assert_eq!(group_offsets(&b, "init-job", "init"), (10, 0));
    let reset = [
        "--bootstrap-server",
        bs,
        "--reset-offsets",
        "--group",
        "init-job",
        "--topic",
        "init",
        "--to-earliest",
    ];
    wrapper_ok("kafka-consumer-groups.sh", &[&reset[..], &["--dry-run"]].concat());
    assert_eq!(group_offsets(&b, "init-job", "init"), (10, 0));
    wrapper_ok("kafka-consumer-groups.sh", &[&reset[..], &["--execute"]].concat());
    assert_eq!(group_offsets(&b, "init-job", "init"), (0, 10));
    wrapper_ok(
        "kafka-consumer-groups.sh",
        &["--bootstrap-server", bs, "--delete", "--group", "init-job"],
    );
    assert_eq!(
        wrapper_ok("kafka-consumer-groups.sh", &["--bootstrap-server", bs, "--list"]),
        ""
    );

    wrapper_ok(
        "kafka-topics.sh",
        &["--bootstrap-server", bs, "--delete", "--topic", "init"],
    );
    wait_for("init deleted", TIMEOUT, || {
        (!topic_names(&b).contains(&"init".to_string())).then_some(())
    });

    // Unknown flags are a usage error, not silently ignored.
    let bad = wrapper("kafka-topics.sh", &["--bootstrap-server", bs, "--bogus"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(stderr(&bad).contains("unsupported option --bogus"));
}

#[test]
fn group_describe_shows_kip848_consumer_groups() {
    let b = broker();
    ok(&b, &["topic", "create", "modern", "--partitions", "2"]);
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", b.bootstrap())
        .set("group.id", "modern-group")
        .set("group.protocol", "consumer")
        .set("client.id", "modern-client")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    consumer.subscribe(&["modern"]).expect("subscribe");
    wait_for("a KIP-848 assignment of both partitions", TIMEOUT, || {
        let _ = consumer.poll(Duration::from_millis(100));
        consumer.assignment().ok().filter(|a| a.count() == 2)
    });
    let v = json(&b, &["group", "describe", "modern-group"]);
    assert_eq!(v["members"].as_array().map(Vec::len), Some(1), "{v}");
    assert_eq!(v["members"][0]["client_id"], "modern-client");
    let assigned = v["members"][0]["assignment"].as_array().map(Vec::len);
    assert_eq!(assigned, Some(2), "{v}");
    let refused = runnel(
        &b,
        &[
            "group",
            "reset-offsets",
            "modern-group",
            "--topic",
            "modern",
            "--to-latest",
            "--execute",
        ],
    );
    assert!(
        !refused.status.success() && stderr(&refused).contains("not empty"),
        "{}",
        stderr(&refused)
    );
    assert!(ok(&b, &["group", "list"])
        .lines()
        .any(|l| l.starts_with("modern-group") && l.contains("consumer")));
}
