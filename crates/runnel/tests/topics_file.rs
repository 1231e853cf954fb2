//! Topics from YAML against the real binary: start-up creates what the file declares, a
//! restart with the same file changes nothing, an edited file applies exactly the edit (a
//! partition decrease is reported, not done), and an invalid file stops start-up with exit
//! code 2 and a message naming the problem and its line.

mod common;
#[path = "common/kafka.rs"]
mod kafka;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::Broker;
use kafka::Client;
use runnel_protocol::generated::describe_configs_request::{DescribeConfigsRequest, DescribeConfigsResource};
use runnel_protocol::generated::metadata_request::MetadataRequest;

const RESOURCE_TOPIC: i8 = 2;
/// The HTTP endpoint on a free port, so brokers run side by side.
const HTTP_ANY_PORT: &str = "runnel.http.listener=127.0.0.1:0";
/// DescribeConfigs source of a per-topic override.
const SOURCE_DYNAMIC_TOPIC: i8 = 1;

/// What a client sees of one topic: id, partition count, per-topic config overrides.
#[derive(Debug, PartialEq, Eq, Clone)]
struct TopicState {
    id: [u8; 16],
    partitions: usize,
    overrides: BTreeMap<String, String>,
}

fn cluster_state(addr: &str) -> BTreeMap<String, TopicState> {
    let mut c = Client::connect(addr);
    let md = c.send(
        12,
        MetadataRequest {
            topics: None,
            allow_auto_topic_creation: false,
            ..Default::default()
        },
    );
    let mut out = BTreeMap::new();
    for t in md.topics {
        let name = t.name.expect("topic name");
        if name.starts_with("__") {
            continue;
        }
        assert_eq!(t.error_code, 0, "metadata of {name}");
        let overrides = topic_overrides(&mut c, &name);
        out.insert(
            name,
            TopicState {
                id: t.topic_id.0,
                partitions: t.partitions.len(),
                overrides,
            },
        );
    }
    out
}

fn topic_overrides(c: &mut Client, topic: &str) -> BTreeMap<String, String> {
    let mut r = c.send(
        4,
        DescribeConfigsRequest {
            resources: vec![DescribeConfigsResource {
                resource_type: RESOURCE_TOPIC,
                resource_name: topic.into(),
                configuration_keys: None,
                ..Default::default()
            }],
            ..Default::default()
        },
    );
    let result = r.results.remove(0);
    assert_eq!(
        result.error_code, 0,
        "DescribeConfigs {topic}: {:?}",
        result.error_message
    );
    result
        .configs
        .into_iter()
        .filter(|e| e.config_source == SOURCE_DYNAMIC_TOPIC)
        .map(|e| (e.name, e.value.unwrap_or_default()))
        .collect()
}

fn overrides(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

const FIRST: &str = "\
topics:
  - name: orders
    partitions: 3
    replication_factor: 1
    config:
      retention.ms: 1000000
      cleanup.policy: delete
  - name: customers
    partitions: 2
    replicationFactor: 1
    config:
      cleanup.policy: compact
";

/// The edit: orders gains partitions and a new retention; customers asks for fewer partitions.
const EDITED: &str = "\
topics:
  - name: orders
    partitions: 5
    replication_factor: 1
    config:
      retention.ms: 2000000
      cleanup.policy: delete
  - name: customers
    partitions: 1
    replicationFactor: 1
    config:
      cleanup.policy: compact
";

/// The binary started directly (stderr captured), on `data_dir` with the topics `file`.
struct Direct {
    child: Child,
    stdout: mpsc::Receiver<String>,
    stderr: mpsc::Receiver<String>,
}

impl Direct {
    fn spawn(data_dir: &Path, file: &Path) -> Direct {
        let mut child = Command::new(env!("CARGO_BIN_EXE_runnel"))
            .arg("serve")
            .arg("--override")
            .arg("listeners=PLAINTEXT://127.0.0.1:0")
            .arg("--override")
            .arg(format!("log.dirs={}", data_dir.display()))
            .arg("--override")
            .arg(HTTP_ANY_PORT)
            .arg("--topics")
            .arg(file)
            .env("RUNNEL_LOG", "info,openraft=error")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn runnel");
        let stdout = lines_of(child.stdout.take().expect("stdout"));
        let stderr = lines_of(child.stderr.take().expect("stderr"));
        Direct { child, stdout, stderr }
    }

    /// The bound address, once the broker says it listens.
    fn wait_listening(&self) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(line) = self.stdout.recv_timeout(Duration::from_millis(100)) {
                if let Some(addr) = line.strip_prefix("runnel: listening on PLAINTEXT ") {
                    return addr.to_string();
                }
            }
        }
        panic!("broker did not listen within 30 s; stderr: {}", self.stderr_so_far());
    }

    fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "broker did not exit within 30 s");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stderr_so_far(&self) -> String {
        // The reader thread ends at EOF; give it a moment after the process is gone.
        let mut out = String::new();
        while let Ok(line) = self.stderr.recv_timeout(Duration::from_millis(200)) {
            out.push_str(&line);
            out.push('\n');
        }
        out
    }
}

impl Drop for Direct {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn lines_of(r: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).expect("write topics file");
}

#[test]
fn start_twice_then_edit_applies_exactly_the_edit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file: PathBuf = dir.path().join("topics.yaml");
    write(&file, FIRST);
    let path = file.display().to_string();
    let mut broker = Broker::start_with(&[("runnel.topics.file", &path)]);

    let first = cluster_state(&broker.bootstrap());
    assert_eq!(first.len(), 2, "{first:?}");
    assert_eq!(first["orders"].partitions, 3);
    assert_eq!(
        first["orders"].overrides,
        overrides(&[("cleanup.policy", "delete"), ("retention.ms", "1000000")])
    );
    assert_eq!(first["customers"].partitions, 2);
    assert_eq!(
        first["customers"].overrides,
        overrides(&[("cleanup.policy", "compact")])
    );

    // Same file again: identical topics (same ids), nothing re-created or re-set.
    broker.kill9();
    broker.restart();
    let second = cluster_state(&broker.bootstrap());
    assert_eq!(second, first, "a second start with the same file changes nothing");

    // Edited file, started directly to read the plan and the report from the log.
    broker.kill9();
    write(&file, EDITED);
    let direct = Direct::spawn(broker.data(), &file);
    let addr = direct.wait_listening();
    let edited = cluster_state(&addr);
    let mut expected = first.clone();
    if let Some(orders) = expected.get_mut("orders") {
        orders.partitions = 5;
        orders.overrides.insert("retention.ms".into(), "2000000".into());
    }
    assert_eq!(edited, expected, "exactly the edit is applied; the decrease is not");
    drop(direct);

    // The log of the edited start (process gone, so the pipe is at EOF after its lines).
    // Checked separately so a failure above shows the state first.
    let mut direct = Direct::spawn(broker.data(), &file);
    direct.wait_listening();
    let _ = direct.child.kill();
    let _ = direct.wait_exit();
    let log = direct.stderr_so_far();
    assert!(
        log.contains("customers") && log.contains("partitions cannot be removed"),
        "the decrease is reported on every start: {log}"
    );
    assert!(log.contains("topics file: no changes"), "nothing left to do: {log}");
    drop(direct);

    // And through the harness once more: still the edited state, same ids.
    broker.restart();
    assert_eq!(cluster_state(&broker.bootstrap()), expected);
}

#[test]
fn the_first_edited_start_logs_the_plan() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("topics.yaml");
    write(&file, FIRST);
    let data = dir.path().join("data");
    let mut direct = Direct::spawn(&data, &file);
    direct.wait_listening();
    let _ = direct.child.kill();
    let _ = direct.wait_exit();
    let log = direct.stderr_so_far();
    assert!(log.contains("+ create orders (partitions 3"), "{log}");
    drop(direct);

    write(&file, EDITED);
    let mut direct = Direct::spawn(&data, &file);
    direct.wait_listening();
    let _ = direct.child.kill();
    let _ = direct.wait_exit();
    let log = direct.stderr_so_far();
    assert!(log.contains("~ orders: partitions 3 -> 5"), "{log}");
    assert!(log.contains("~ orders: set retention.ms=2000000"), "{log}");
    assert!(!log.contains("+ create"), "nothing is re-created: {log}");
}

#[test]
fn an_invalid_file_fails_start_up_naming_the_problem_and_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("topics.yaml");
    write(
        &file,
        "- name: orders\n  partitions: 3\n- name: broken\n  partitions: 2\n  config:\n    retention.ms: soon\n",
    );
    let mut direct = Direct::spawn(&dir.path().join("data"), &file);
    let status = direct.wait_exit();
    let log = direct.stderr_so_far();
    assert_eq!(status.code(), Some(2), "exit code 2; stderr: {log}");
    assert!(log.contains("line 6"), "names the line: {log}");
    assert!(
        log.contains("\"broken\"") && log.contains("retention.ms"),
        "names the topic and key: {log}"
    );

    write(&file, "- name: orders\n  partitons: 3\n");
    let mut direct = Direct::spawn(&dir.path().join("data"), &file);
    let status = direct.wait_exit();
    let log = direct.stderr_so_far();
    assert_eq!(status.code(), Some(2), "exit code 2; stderr: {log}");
    assert!(
        log.contains("line 2") && log.contains("unknown field `partitons`"),
        "{log}"
    );
    assert!(
        !dir.path().join("data").exists(),
        "an invalid file fails before storage is touched"
    );
}

#[test]
fn a_file_the_cluster_cannot_satisfy_fails_start_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("topics.yaml");
    write(&file, "- name: wide\n  replication_factor: 3\n");
    let mut direct = Direct::spawn(&dir.path().join("data"), &file);
    let status = direct.wait_exit();
    let log = direct.stderr_so_far();
    assert_eq!(status.code(), Some(2), "exit code 2; stderr: {log}");
    assert!(
        log.contains("\"wide\"") && log.contains("replication factor of 3"),
        "{log}"
    );
}
