//! The operations HTTP listener against the real binary: `/metrics` values checked against known
//! produced and consumed amounts (messages in, batch bytes in and out, log size, offsets and the
//! lag of a group that committed and stopped), `/healthz`, and `/readyz` answering 503 while a
//! large log recovers after `kill -9`, then 200.
//!
//! Bytes: like Kafka's BytesInPerSec/BytesOutPerSec we count record-batch bytes (as received by
//! Produce, as sent by Fetch). Without compression the stored batches are the received ones, so
//! bytes in equals the log size, and a consumer reading everything once fetches exactly that.

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{wait_for, Broker};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

const TIMEOUT: Duration = Duration::from_secs(30);

/// `GET path` → (status code, body).
fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let status = out.split(' ').nth(1)?.parse().ok()?;
    let body = out.split_once("\r\n\r\n")?.1.to_string();
    Some((status, body))
}

/// Every sample of the exposition as `name{labels}` → value.
fn scrape(port: u16) -> HashMap<String, f64> {
    let (status, body) = http_get(port, "/metrics").expect("GET /metrics");
    assert_eq!(status, 200, "{body}");
    body.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_string(), value.parse().ok()?))
        })
        .collect()
}

fn value(samples: &HashMap<String, f64>, series: &str) -> f64 {
    *samples
        .get(series)
        .unwrap_or_else(|| panic!("no series {series} in {:?}", samples.keys().collect::<Vec<_>>()))
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}

fn create_topic(bootstrap: &str, topic: &str) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("admin client");
    let results = block_on(admin.create_topics(
        &[NewTopic::new(topic, 1, TopicReplication::Fixed(1))],
        &AdminOptions::new(),
    ))
    .expect("create_topics");
    for r in results {
        r.unwrap_or_else(|(t, e)| panic!("creating {t} failed: {e:?}"));
    }
}

fn produce(bootstrap: &str, topic: &str, count: usize, value_bytes: usize) {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("compression.codec", "none")
        .set("linger.ms", "5")
        .set("message.max.bytes", "2000000")
        .create()
        .expect("producer");
    let value = vec![b'x'; value_bytes];
    for i in 0..count {
        let key = format!("k{i}");
        let mut record = BaseRecord::to(topic).key(&key).payload(&value);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((_, r)) => {
                    record = r;
                    producer.poll(Duration::from_millis(10));
                }
            }
        }
        producer.poll(Duration::ZERO);
    }
    producer.flush(TIMEOUT).expect("flush");
}

#[test]
fn metrics_match_what_was_produced_and_consumed() {
    const MESSAGES: usize = 100;
    const COMMITTED: i64 = 40;
    let broker = Broker::start();
    assert_ne!(broker.http_port, 0, "the broker did not print its http listener");
    let http = broker.http_port;
    assert_eq!(http_get(http, "/healthz").map(|r| r.0), Some(200));
    assert_eq!(http_get(http, "/readyz").map(|r| r.0), Some(200));
    assert_eq!(http_get(http, "/nope").map(|r| r.0), Some(404));

    let topic = "metered";
    create_topic(&broker.bootstrap(), topic);
    produce(&broker.bootstrap(), topic, MESSAGES, 100);

    // A group reads everything once, commits offset COMMITTED and stops.
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("group.id", "stopped-group")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning).expect("tpl");
    consumer.assign(&tpl).expect("assign");
    let mut consumed = 0;
    let deadline = Instant::now() + TIMEOUT;
    while consumed < MESSAGES {
        assert!(Instant::now() < deadline, "consumed only {consumed}");
        if let Some(m) = consumer.poll(Duration::from_millis(200)) {
            m.expect("message");
            consumed += 1;
        }
    }
    let mut commit = TopicPartitionList::new();
    commit
        .add_partition_offset(topic, 0, Offset::Offset(COMMITTED))
        .expect("tpl");
    consumer.commit(&commit, CommitMode::Sync).expect("commit");
    drop(consumer);

    let t = format!("{{topic=\"{topic}\"}}");
    let tp = format!("{{topic=\"{topic}\",partition=\"0\"}}");
    // Bytes out are counted when the fetch response is built; give the last one a moment.
    let m = wait_for("bytes out to reach the log size", TIMEOUT, || {
        let m = scrape(http);
        let log_size = m.get(&format!("kafka_log_log_size{tp}")).copied()?;
        let out = m
            .get(&format!("kafka_server_brokertopicmetrics_bytesout_total{t}"))
            .copied()?;
        (log_size > 0.0 && out >= log_size).then_some(m)
    });
    let log_size = value(&m, &format!("kafka_log_log_size{tp}"));
    let on_disk: u64 = std::fs::read_dir(broker.data().join(format!("{topic}-0")))
        .expect("partition dir")
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "log"))
        .map(|e| e.metadata().map_or(0, |m| m.len()))
        .sum();
    assert_eq!(log_size, on_disk as f64, "log size is the segment bytes on disk");
    assert!(
        log_size >= (MESSAGES * 100) as f64,
        "log of {log_size} bytes cannot hold the values"
    );

    assert_eq!(
        value(&m, &format!("kafka_server_brokertopicmetrics_messagesin_total{t}")),
        MESSAGES as f64
    );
    assert!(value(&m, "kafka_server_brokertopicmetrics_messagesin_total{}") >= MESSAGES as f64);
    assert_eq!(
        value(&m, &format!("kafka_server_brokertopicmetrics_bytesin_total{t}")),
        log_size
    );
    assert_eq!(
        value(&m, &format!("kafka_server_brokertopicmetrics_bytesout_total{t}")),
        log_size
    );
    assert_eq!(
        value(
            &m,
            &format!("kafka_server_brokertopicmetrics_failedproducerequests_total{t}")
        ),
        0.0
    );

    assert_eq!(
        value(&m, &format!("kafka_topic_partition_current_offset{tp}")),
        MESSAGES as f64
    );
    assert_eq!(value(&m, &format!("kafka_topic_partition_oldest_offset{tp}")), 0.0);
    let g = format!("{{consumergroup=\"stopped-group\",topic=\"{topic}\",partition=\"0\"}}");
    assert_eq!(
        value(&m, &format!("kafka_consumergroup_current_offset{g}")),
        COMMITTED as f64
    );
    assert_eq!(
        value(&m, &format!("kafka_consumergroup_lag{g}")),
        (MESSAGES as i64 - COMMITTED) as f64
    );
    let gs = format!("{{consumergroup=\"stopped-group\",topic=\"{topic}\"}}");
    assert_eq!(
        value(&m, &format!("kafka_consumergroup_lag_sum{gs}")),
        (MESSAGES as i64 - COMMITTED) as f64
    );

    assert!(value(&m, "kafka_server_replicamanager_partitioncount") >= 1.0);
    assert_eq!(
        value(&m, "kafka_server_replicamanager_partitioncount"),
        value(&m, "kafka_server_replicamanager_leadercount")
    );
    assert_eq!(value(&m, "kafka_server_replicamanager_underreplicatedpartitions"), 0.0);
    assert_eq!(value(&m, "kafka_controller_kafkacontroller_activecontrollercount"), 1.0);
    assert_eq!(
        value(&m, "kafka_controller_kafkacontroller_offlinepartitionscount"),
        0.0
    );
    assert_eq!(value(&m, "kafka_server_raftmetrics_current_leader"), 1.0);
    assert!(value(&m, "kafka_server_raftmetrics_high_watermark") > 0.0);
    assert!(
        value(
            &m,
            "kafka_network_requestmetrics_totaltimems{request=\"Produce\",quantile=\"0.99\"}"
        ) > 0.0
    );
    assert!(m.contains_key("kafka_network_requestmetrics_totaltimems{request=\"FetchConsumer\",quantile=\"0.50\"}"));
    assert!(value(&m, "process_resident_memory_bytes") > 0.0);
    assert!(value(&m, "process_open_fds") > 0.0);
    assert!(value(&m, "process_start_time_seconds") > 1.6e9);
    let dir = format!("{{log_dir=\"{}\"}}", broker.data().display());
    assert!(value(&m, &format!("runnel_log_dir_size_bytes{dir}")) >= log_size);
    assert!(value(&m, &format!("runnel_log_dir_capacity_bytes{dir}")) > 0.0);
}

#[test]
fn per_partition_series_can_be_switched_off() {
    let broker = Broker::start_with(&[("runnel.metrics.per.partition", "false")]);
    create_topic(&broker.bootstrap(), "quiet");
    produce(&broker.bootstrap(), "quiet", 10, 10);
    let m = scrape(broker.http_port);
    assert!(!m.keys().any(|k| k.starts_with("kafka_log_log_size")), "{m:?}");
    assert_eq!(
        value(&m, "kafka_server_brokertopicmetrics_messagesin_total{topic=\"quiet\"}"),
        10.0
    );
}

/// A port that was free a moment ago (the restart below needs a fixed one to poll early).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

#[test]
fn readyz_is_503_while_a_large_log_recovers() {
    let http = free_port();
    let mut broker = Broker::start_with(&[("runnel.http.listener", &format!("127.0.0.1:{http}"))]);
    assert_eq!(broker.http_port, http);
    create_topic(&broker.bootstrap(), "big");
    // ~200 MB in one segment: after kill -9 all of it is past the recovery point and rescanned.
    produce(&broker.bootstrap(), "big", 2000, 100_000);
    let m = scrape(http);
    assert!(value(&m, "kafka_log_log_size{topic=\"big\",partition=\"0\"}") >= 2e8);
    broker.kill9();

    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(Mutex::new(Vec::<(u16, String)>::new()));
    let poller = {
        let (stop, seen) = (stop.clone(), seen.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if let Some((status, body)) = http_get(http, "/readyz") {
                    let done = status == 200;
                    seen.lock().expect("lock").push((status, body));
                    if done {
                        return;
                    }
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    };
    broker.restart();
    wait_for("/readyz 200 after restart", TIMEOUT, || {
        (http_get(http, "/readyz")?.0 == 200).then_some(())
    });
    stop.store(true, Ordering::Relaxed);
    poller.join().expect("poller");
    let seen = seen.lock().expect("lock");
    let recovering: Vec<_> = seen
        .iter()
        .filter(|(s, b)| *s == 503 && b.contains("partition log recovery"))
        .collect();
    assert!(
        recovering.len() >= 2,
        "never saw 503 during log recovery; saw {:?}",
        seen.iter()
            .map(|(s, b)| format!("{s} {}", b.trim()))
            .collect::<Vec<_>>()
    );
    let first_ok = seen.iter().position(|(s, _)| *s == 200);
    let last_503 = seen.iter().rposition(|(s, _)| *s == 503);
    if let (Some(ok), Some(not)) = (first_ok, last_503) {
        assert!(not < ok, "503 after 200");
    }
    assert_eq!(http_get(http, "/healthz").map(|r| r.0), Some(200));
}
