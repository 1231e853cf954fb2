//! The real `runnel` binary configured only through the environment, the way single-node KRaft
//! compose files configure the `apache/kafka` image (and Bitnami's `KAFKA_CFG_*` variant).
//!
//! Checks: the broker starts with a controller listener configured; each client listener
//! advertises its own endpoint (PLAINTEXT → `127.0.0.1:p1`, PLAINTEXT_HOST → `localhost:p3`);
//! produce/consume works through both; `KAFKA_NUM_PARTITIONS` drives auto-creation;
//! `meta.properties` carries `CLUSTER_ID`; a different `CLUSTER_ID` on restart and an invalid
//! value both fail start-up with a message naming what to fix.
//!
//! The binary is spawned directly (not through the shared harness) because the point is the
//! environment: it runs with `env_clear()` plus PATH/HOME and exactly the variables under test.

use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

const CLUSTER_ID: &str = "MkU3OEVBNTcwNTJENDM2Qg";
const OTHER_CLUSTER_ID: &str = "4L6g3nShT-eMCtK--X86sw";
const START_TIMEOUT: Duration = Duration::from_secs(30);
const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);

/// Three ports that were free a moment ago (bind 0, read, drop — all held until read, so distinct).
fn free_ports() -> [u16; 3] {
    let socks: Vec<TcpListener> = (0..3)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port"))
        .collect();
    let ports: Vec<u16> = socks
        .iter()
        .map(|s| s.local_addr().expect("local addr").port())
        .collect();
    [ports[0], ports[1], ports[2]]
}

/// The apache/kafka single-node KRaft compose environment, ports and log dir filled in.
fn apache_env(p: [u16; 3], log_dir: &Path, cluster_id: &str) -> Vec<(String, String)> {
    let [p1, p2, p3] = p;
    let pairs = [
        ("KAFKA_NODE_ID", "1".to_string()),
        ("KAFKA_PROCESS_ROLES", "broker,controller".to_string()),
        (
            "KAFKA_LISTENERS",
            format!("PLAINTEXT://127.0.0.1:{p1},CONTROLLER://127.0.0.1:{p2},PLAINTEXT_HOST://127.0.0.1:{p3}"),
        ),
        (
            "KAFKA_ADVERTISED_LISTENERS",
            format!("PLAINTEXT://127.0.0.1:{p1},PLAINTEXT_HOST://localhost:{p3}"),
        ),
        (
            "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP",
            "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,PLAINTEXT_HOST:PLAINTEXT".to_string(),
        ),
        ("KAFKA_CONTROLLER_QUORUM_VOTERS", format!("1@127.0.0.1:{p2}")),
        ("KAFKA_CONTROLLER_LISTENER_NAMES", "CONTROLLER".to_string()),
        ("KAFKA_INTER_BROKER_LISTENER_NAME", "PLAINTEXT".to_string()),
        ("KAFKA_LOG_DIRS", log_dir.display().to_string()),
        ("CLUSTER_ID", cluster_id.to_string()),
        ("KAFKA_HEAP_OPTS", "-Xmx512M -Xms512M".to_string()),
        ("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "1".to_string()),
        ("KAFKA_TRANSACTION_STATE_LOG_MIN_ISR", "1".to_string()),
        ("KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR", "1".to_string()),
        ("KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS", "0".to_string()),
        ("KAFKA_NUM_PARTITIONS", "3".to_string()),
        ("KAFKA_JMX_PORT", "9101".to_string()),
        (
            "KAFKA_LOG4J_LOGGERS",
            "kafka.controller=INFO,kafka.producer.async.DefaultEventHandler=INFO,state.change.logger=INFO".to_string(),
        ),
        ("KAFKA_RUNNEL_HTTP_LISTENER", "127.0.0.1:0".to_string()),
    ];
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// The same node as Bitnami's image configures it (`KAFKA_CFG_*`, `KAFKA_KRAFT_CLUSTER_ID`).
fn bitnami_env(p: [u16; 3], log_dir: &Path) -> Vec<(String, String)> {
    apache_env(p, log_dir, CLUSTER_ID)
        .into_iter()
        .map(|(k, v)| match k.as_str() {
            "CLUSTER_ID" => ("KAFKA_KRAFT_CLUSTER_ID".to_string(), v),
            "KAFKA_HEAP_OPTS" | "KAFKA_JMX_PORT" | "KAFKA_LOG4J_LOGGERS" => (k, v),
            _ => (k.replacen("KAFKA_", "KAFKA_CFG_", 1), v),
        })
        .collect()
}

/// The spawned binary; killed by PID when dropped so a failing assertion leaves nothing behind.
struct Broker {
    child: Child,
    /// `(listener name, address)` from the `runnel: listening on NAME ADDR` lines.
    listening: Vec<(String, String)>,
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn command(env: &[(String, String)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_runnel"));
    cmd.arg("serve").env_clear();
    for var in ["PATH", "HOME"] {
        if let Ok(v) = std::env::var(var) {
            cmd.env(var, v);
        }
    }
    cmd.envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    cmd
}

/// Starts the binary and waits (up to `START_TIMEOUT`) for its `http listening` line, which is
/// printed after every client listener's line.
fn start(env: &[(String, String)]) -> Broker {
    let mut child = command(env)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn runnel");
    let stdout = child.stdout.take().expect("stdout piped");
    let (tx, rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut broker = Broker {
        child,
        listening: Vec::new(),
    };
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = match rx.recv_timeout(left) {
            Ok(line) => line,
            Err(e) => panic!(
                "broker did not report its listeners within {START_TIMEOUT:?} ({e}); saw {:?}",
                broker.listening
            ),
        };
        if line.starts_with("runnel: http listening on ") {
            return broker;
        }
        if let Some(rest) = line.strip_prefix("runnel: listening on ") {
            if let Some((name, addr)) = rest.split_once(' ') {
                broker.listening.push((name.to_string(), addr.to_string()));
            }
        }
    }
}

/// Runs the binary expecting start-up to fail; returns (exit code, stderr).
fn start_fails(env: &[(String, String)]) -> (Option<i32>, String) {
    let mut child = command(env)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn runnel");
    let deadline = Instant::now() + START_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("runnel kept running although start-up should have failed");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    if let Some(mut s) = child.stderr.take() {
        let _ = s.read_to_string(&mut stderr);
    }
    (status.code(), stderr)
}

/// The single broker endpoint Metadata returns to a client bootstrapped at `bootstrap`.
fn advertised_via(bootstrap: &str) -> Vec<(String, i32)> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "env-config-metadata")
        .create()
        .expect("consumer");
    let md = consumer.fetch_metadata(None, CLIENT_TIMEOUT).expect("fetch_metadata");
    md.brokers().iter().map(|b| (b.host().to_string(), b.port())).collect()
}

/// Produces `count` messages to `topic` through `bootstrap`, then consumes them all back from
/// the start of every partition; returns the partition count Metadata reports for the topic.
fn produce_consume(bootstrap: &str, topic: &str, count: usize) -> usize {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("allow.auto.create.topics", "true")
        .create()
        .expect("producer");
    for i in 0..count {
        let payload = format!("{topic}-{i}");
        let key = format!("k{i}");
        let mut record = BaseRecord::to(topic).key(&key).payload(&payload);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((e, r)) => {
                    eprintln!("send retry: {e}");
                    record = r;
                    producer.poll(Duration::from_millis(50));
                }
            }
        }
    }
    producer
        .flush(CLIENT_TIMEOUT)
        .expect("flush: every message acknowledged");

    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("env-config-{topic}"))
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let md = consumer
        .fetch_metadata(Some(topic), CLIENT_TIMEOUT)
        .expect("topic metadata");
    let partitions = md.topics()[0].partitions().len();
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p as i32, Offset::Beginning)
            .expect("add partition");
    }
    consumer.assign(&tpl).expect("assign");
    let mut seen = std::collections::BTreeSet::new();
    let deadline = Instant::now() + CLIENT_TIMEOUT;
    while seen.len() < count {
        assert!(
            Instant::now() < deadline,
            "consumed only {} of {count} via {bootstrap}",
            seen.len()
        );
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                let v = String::from_utf8(m.payload().unwrap_or_default().to_vec()).expect("utf8 payload");
                seen.insert(v);
            }
            Some(Err(e)) => eprintln!("consume error: {e}"),
            None => {}
        }
    }
    let expected: std::collections::BTreeSet<String> = (0..count).map(|i| format!("{topic}-{i}")).collect();
    assert_eq!(seen, expected, "messages consumed via {bootstrap}");
    partitions
}

fn meta_cluster_id(dir: &Path) -> String {
    let text = std::fs::read_to_string(dir.join("meta.properties")).expect("meta.properties written");
    text.lines()
        .find_map(|l| l.strip_prefix("cluster.id="))
        .expect("cluster.id line")
        .trim()
        .to_string()
}

#[test]
fn env_var_mapping_yields_runnel_keys() {
    use runnel_broker::config::env_var_to_key;
    assert_eq!(
        env_var_to_key("KAFKA_RUNNEL_HTTP_LISTENER").as_deref(),
        Some("runnel.http.listener")
    );
    assert_eq!(env_var_to_key("KAFKA_CFG_NODE_ID").as_deref(), Some("node.id"));
    assert_eq!(
        env_var_to_key("KAFKA_LISTENER_SECURITY_PROTOCOL_MAP").as_deref(),
        Some("listener.security.protocol.map")
    );
    // JVM knobs and the cluster id are not broker properties.
    assert_eq!(env_var_to_key("KAFKA_HEAP_OPTS"), None);
    assert_eq!(env_var_to_key("KAFKA_JMX_PORT"), None);
    assert_eq!(env_var_to_key("CLUSTER_ID"), None);
}

#[test]
fn apache_kafka_compose_environment() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log_dir = dir.path().join("data");
    let ports = free_ports();
    let [p1, _p2, p3] = ports;
    let env = apache_env(ports, &log_dir, CLUSTER_ID);

    {
        let broker = start(&env);
        let names: Vec<&str> = broker.listening.iter().map(|(n, _)| n.as_str()).collect();
        assert!(
            names.contains(&"PLAINTEXT"),
            "listeners printed: {:?}",
            broker.listening
        );
        assert!(
            names.contains(&"PLAINTEXT_HOST"),
            "listeners printed: {:?}",
            broker.listening
        );

        // Each listener advertises its own endpoint, as Kafka does per connection listener.
        assert_eq!(
            advertised_via(&format!("127.0.0.1:{p1}")),
            vec![("127.0.0.1".to_string(), p1 as i32)]
        );
        assert_eq!(
            advertised_via(&format!("127.0.0.1:{p3}")),
            vec![("localhost".to_string(), p3 as i32)]
        );

        // Auto-created topics get KAFKA_NUM_PARTITIONS partitions.
        assert_eq!(produce_consume(&format!("127.0.0.1:{p1}"), "env-inner", 20), 3);
        assert_eq!(produce_consume(&format!("localhost:{p3}"), "env-host", 20), 3);

        assert_eq!(meta_cluster_id(&log_dir), CLUSTER_ID);
    }

    // Same storage, another cluster id: refused, naming the mismatch.
    let (code, stderr) = start_fails(&apache_env(ports, &log_dir, OTHER_CLUSTER_ID));
    assert!(matches!(code, Some(c) if c != 0), "exit code {code:?}, stderr {stderr}");
    assert!(
        stderr.contains(CLUSTER_ID) && stderr.contains(OTHER_CLUSTER_ID) && stderr.contains("cluster"),
        "stderr does not name the mismatch: {stderr}"
    );
    assert_eq!(meta_cluster_id(&log_dir), CLUSTER_ID, "meta.properties untouched");

    // And the original id still starts on the same storage, with the data intact.
    let broker = start(&env);
    assert_eq!(produce_consume(&format!("127.0.0.1:{p1}"), "env-inner", 20), 3);
    drop(broker);
}

#[test]
fn invalid_value_names_key_and_variable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut env = apache_env(free_ports(), &dir.path().join("data"), CLUSTER_ID);
    for (k, v) in env.iter_mut() {
        if k == "KAFKA_NUM_PARTITIONS" {
            *v = "abc".to_string();
        }
    }
    let (code, stderr) = start_fails(&env);
    assert!(matches!(code, Some(c) if c != 0), "exit code {code:?}, stderr {stderr}");
    assert!(
        stderr.contains("num.partitions"),
        "stderr does not name the key: {stderr}"
    );
    assert!(
        stderr.contains("KAFKA_NUM_PARTITIONS"),
        "stderr does not name the variable: {stderr}"
    );
    assert!(
        !dir.path().join("data").join("meta.properties").exists(),
        "nothing formatted"
    );
}

#[test]
fn bitnami_compose_environment() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log_dir = dir.path().join("data");
    let ports = free_ports();
    let [p1, _p2, p3] = ports;
    let broker = start(&bitnami_env(ports, &log_dir));
    assert_eq!(
        advertised_via(&format!("127.0.0.1:{p1}")),
        vec![("127.0.0.1".to_string(), p1 as i32)]
    );
    assert_eq!(
        advertised_via(&format!("127.0.0.1:{p3}")),
        vec![("localhost".to_string(), p3 as i32)]
    );
    assert_eq!(produce_consume(&format!("localhost:{p3}"), "env-bitnami", 10), 3);
    assert_eq!(meta_cluster_id(&log_dir), CLUSTER_ID);
    drop(broker);
}
