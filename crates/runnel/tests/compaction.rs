//! Log compaction end to end with librdkafka: a `cleanup.policy=compact` topic takes 100 000
//! updates over 1 000 keys and tombstones for 100 of them; the broker's housekeeping cleaner
//! must bring a from-the-start reader down to exactly the latest value of each live key (and no
//! deleted key once `delete.retention.ms` passed), shrinking the partition on disk. A
//! commit-heavy consumer group must likewise leave `__consumer_offsets` small.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

const TOPIC: &str = "compacted";
const KEYS: usize = 1_000;
const UPDATES: usize = 100_000;
const DELETED_KEYS: usize = 100;
const COMMITS: i64 = 20_000;
const TIMEOUT: Duration = Duration::from_secs(30);
const CLEAN_DEADLINE: Duration = Duration::from_secs(90);

/// Broker-wide compaction settings (synonyms of the topic configs), so `__consumer_offsets`
/// rolls and cleans quickly too.
const OVERRIDES: [(&str, &str); 3] = [
    ("log.roll.ms", "200"),
    ("log.cleaner.min.cleanable.ratio", "0.01"),
    ("log.cleaner.delete.retention.ms", "100"),
];

fn key_of(i: usize) -> String {
    format!("key-{:04}", i % KEYS)
}

fn value_of(i: usize) -> String {
    format!("{i:08}|{}", "v".repeat(20))
}

async fn create_topic(bootstrap: &str) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("admin client");
    let topic = NewTopic::new(TOPIC, 1, TopicReplication::Fixed(1))
        .set("cleanup.policy", "compact")
        .set("segment.ms", "100")
        .set("min.cleanable.dirty.ratio", "0.01")
        .set("delete.retention.ms", "100");
    let results = admin
        .create_topics(&[topic], &AdminOptions::new())
        .await
        .expect("create_topics");
    for r in results {
        r.unwrap_or_else(|(t, e)| panic!("creating {t} failed: {e:?}"));
    }
}

fn producer(bootstrap: &str) -> BaseProducer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", "5")
        .set("compression.codec", "lz4")
        .set("queue.buffering.max.messages", "200000")
        .create()
        .expect("producer")
}

fn send(producer: &BaseProducer, key: &str, value: Option<&str>) {
    let mut record = BaseRecord::<str, str>::to(TOPIC).key(key);
    if let Some(v) = value {
        record = record.payload(v);
    }
    loop {
        match producer.send(record) {
            Ok(()) => return,
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                record = r;
                producer.poll(Duration::from_millis(10));
            }
            Err((e, _)) => panic!("send {key}: {e}"),
        }
    }
}

/// Bytes of the `.log` files of every partition directory whose name starts with `prefix`.
fn log_bytes(data: &Path, prefix: &str) -> u64 {
    let mut total = 0;
    for dir in std::fs::read_dir(data).expect("data dir").filter_map(Result::ok) {
        if !dir.file_name().to_string_lossy().starts_with(prefix) {
            continue;
        }
        for f in std::fs::read_dir(dir.path())
            .expect("partition dir")
            .filter_map(Result::ok)
        {
            if f.file_name().to_string_lossy().ends_with(".log") {
                total += f.metadata().map_or(0, |m| m.len());
            }
        }
    }
    total
}

/// Reads the partition from the start up to its high watermark: key -> values, in order.
fn read_from_start(bootstrap: &str) -> HashMap<String, Vec<Option<String>>> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "compaction-reader")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let (_, high) = consumer.fetch_watermarks(TOPIC, 0, TIMEOUT).expect("watermarks");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(TOPIC, 0, Offset::Beginning).expect("tpl");
    consumer.assign(&tpl).expect("assign");
    let mut out: HashMap<String, Vec<Option<String>>> = HashMap::new();
    let deadline = Instant::now() + TIMEOUT;
    let mut last_offset = -1;
    while last_offset + 1 < high {
        assert!(Instant::now() < deadline, "reading stopped at {last_offset} of {high}");
        let Some(msg) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        let msg = msg.expect("consume");
        assert!(msg.offset() > last_offset, "offsets must increase");
        last_offset = msg.offset();
        let key = String::from_utf8(msg.key().expect("key").to_vec()).expect("utf8 key");
        let value = msg
            .payload()
            .map(|p| String::from_utf8(p.to_vec()).expect("utf8 value"));
        out.entry(key).or_default().push(value);
    }
    out
}

/// Whether the log reads as fully compacted; `Err` describes what is still off.
fn check_compacted(
    read: &HashMap<String, Vec<Option<String>>>,
    latest: &HashMap<String, String>,
) -> Result<(), String> {
    for k in 0..KEYS {
        let key = key_of(k);
        let got = read.get(&key);
        if k < DELETED_KEYS {
            if let Some(v) = got {
                return Err(format!("deleted {key} still has {} records", v.len()));
            }
            continue;
        }
        let want = latest.get(&key).cloned();
        match got.map(Vec::as_slice) {
            Some([only]) if *only == want => {}
            other => return Err(format!("{key}: {other:?}, want only {want:?}")),
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn compacted_topic_keeps_latest_value_per_key() {
    let broker = common::Broker::start_with(&OVERRIDES);
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap).await;

    let p = producer(&bootstrap);
    let mut latest = HashMap::new();
    for i in 0..UPDATES {
        let value = value_of(i);
        send(&p, &key_of(i), Some(&value));
        latest.insert(key_of(i), value);
    }
    for k in 0..DELETED_KEYS {
        send(&p, &key_of(k), None);
    }
    p.flush(TIMEOUT).expect("flush");
    let size_before = log_bytes(broker.data(), &format!("{TOPIC}-"));

    // Appends roll the active segment (segment.ms), so the tail becomes cleanable too.
    let deadline = Instant::now() + CLEAN_DEADLINE;
    let mut tick = 0;
    loop {
        std::thread::sleep(Duration::from_millis(300));
        send(&p, "tick", Some(&tick.to_string()));
        tick += 1;
        p.flush(TIMEOUT).expect("flush tick");
        let read = read_from_start(&bootstrap);
        match check_compacted(&read, &latest) {
            Ok(()) => break,
            Err(why) => assert!(Instant::now() < deadline, "not compacted in time: {why}"),
        }
    }
    let size_after = log_bytes(broker.data(), &format!("{TOPIC}-"));
    eprintln!("compacted topic: {size_before} bytes of segments after producing, {size_after} after cleaning");
    assert!(
        size_after * 4 < size_before,
        "partition did not shrink: {size_before} -> {size_after}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn consumer_offsets_stay_small_under_many_commits() {
    let broker = common::Broker::start_with(&OVERRIDES);
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap).await;
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("group.id", "committer")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(TOPIC, 0, Offset::Beginning).expect("tpl");
    consumer.assign(&tpl).expect("assign");
    let commit = |offset: i64| {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(TOPIC, 0, Offset::Offset(offset)).expect("tpl");
        consumer.commit(&tpl, CommitMode::Sync).expect("commit");
    };
    for i in 0..COMMITS {
        commit(i);
    }
    let size_before = log_bytes(broker.data(), "__consumer_offsets-");
    // One more commit after segment.ms rolls the active segment, leaving the rest cleanable.
    std::thread::sleep(Duration::from_millis(400));
    commit(COMMITS);
    let deadline = Instant::now() + CLEAN_DEADLINE;
    let size_after = loop {
        let size = log_bytes(broker.data(), "__consumer_offsets-");
        if size < 16 * 1024 {
            break size;
        }
        assert!(
            Instant::now() < deadline,
            "__consumer_offsets still holds {size} bytes (was {size_before})"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    eprintln!("__consumer_offsets: {size_before} bytes after {COMMITS} commits, {size_after} after cleaning");
    let committed = consumer.committed(TIMEOUT).expect("committed");
    let offset = committed.find_partition(TOPIC, 0).expect("partition").offset();
    assert_eq!(offset, Offset::Offset(COMMITS));
}
