//! Crash recovery against the real binary: what a producer was told is durable must survive
//! `kill -9`, and a partition whose active segment was torn or corrupted by a crash must come
//! back with every whole batch before the damage, nothing after it, and accept new writes at
//! the recovered log end offset.
//!
//! Phases in each test: produce, crash, (damage the files), restart, read everything back and
//! compare with what the producer recorded, then produce again.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{wait_for, Broker};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::util::Timeout;
use rdkafka::{Offset, TopicPartitionList};

const TIMEOUT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// One acknowledged message: where the broker said it put sequence number `seq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Ack {
    seq: usize,
    partition: i32,
    offset: i64,
}

/// What the delivery reports said, shared between the producer's context and the test.
#[derive(Default)]
struct Deliveries {
    acked: Mutex<Vec<Ack>>,
    acked_count: AtomicUsize,
    failed_count: AtomicUsize,
}

/// Records every delivery report; the opaque of each message is its sequence number.
#[derive(Clone, Default)]
struct Recorder(Arc<Deliveries>);

impl ClientContext for Recorder {}

impl ProducerContext for Recorder {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, seq: usize) {
        match result {
            Ok(m) => {
                let ack = Ack {
                    seq,
                    partition: m.partition(),
                    offset: m.offset(),
                };
                self.0.acked.lock().expect("recorder lock").push(ack);
                self.0.acked_count.fetch_add(1, Ordering::SeqCst);
            }
            Err(_) => {
                self.0.failed_count.fetch_add(1, Ordering::SeqCst);
            }
        }
    }
}

type RecordingProducer = ThreadedProducer<Recorder>;

fn producer(bootstrap: &str, recorder: Recorder, extra: &[(&str, &str)]) -> RecordingProducer {
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", bootstrap)
        .set("acks", "all")
        .set("enable.idempotence", "false")
        // No retries: every message is written at most once, so duplicates are broker bugs.
        .set("message.send.max.retries", "0")
        .set("linger.ms", "2")
        .set("message.timeout.ms", "8000")
        .set("queue.buffering.max.messages", "200000")
        .set("reconnect.backoff.ms", "20")
        .set("reconnect.backoff.max.ms", "200");
    for (k, v) in extra {
        cfg.set(*k, *v);
    }
    cfg.create_with_context(recorder).expect("producer")
}

fn consumer(bootstrap: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "crash-recovery-check")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "error")
        .set("fetch.wait.max.ms", "50")
        .create()
        .expect("consumer")
}

fn admin(bootstrap: &str) -> AdminClient<DefaultClientContext> {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("admin client")
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}

fn create_topic(bootstrap: &str, topic: &str, partitions: i32, configs: &[(&str, &str)]) {
    let mut new_topic = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    for (k, v) in configs {
        new_topic = new_topic.set(k, v);
    }
    let opts = AdminOptions::new().operation_timeout(Some(TIMEOUT));
    let results = block_on(admin(bootstrap).create_topics(&[new_topic], &opts)).expect("create_topics");
    for r in results {
        r.unwrap_or_else(|(t, e)| panic!("creating {t} failed: {e:?}"));
    }
}

fn key_of(seq: usize) -> String {
    format!("key-{seq:08}")
}

fn value_of(seq: usize) -> String {
    // Long enough that batches span many bytes, and unique per message.
    format!("value-{seq:08}-{}", "x".repeat(seq % 97 + 40))
}

fn seq_of_key(key: &[u8]) -> usize {
    std::str::from_utf8(key)
        .ok()
        .and_then(|k| k.strip_prefix("key-"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unexpected key {:?}", String::from_utf8_lossy(key)))
}

/// A consumed message.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Consumed {
    offset: i64,
    seq: usize,
    value: Vec<u8>,
    timestamp_ms: Option<i64>,
}

fn watermarks(c: &BaseConsumer, topic: &str, partition: i32) -> (i64, i64) {
    c.fetch_watermarks(topic, partition, TIMEOUT)
        .unwrap_or_else(|e| panic!("watermarks of {topic}-{partition}: {e}"))
}

/// Reads partitions `0..partitions` of `topic` from offset `from` until each reaches its high
/// watermark (read before consuming starts). Panics on any consumer error or on timeout.
fn consume_all(bootstrap: &str, topic: &str, partitions: i32, from: i64) -> BTreeMap<i32, Vec<Consumed>> {
    let c = consumer(bootstrap);
    let mut tpl = TopicPartitionList::new();
    let mut ends = BTreeMap::new();
    let mut out: BTreeMap<i32, Vec<Consumed>> = BTreeMap::new();
    for p in 0..partitions {
        let (_, high) = watermarks(&c, topic, p);
        ends.insert(p, high);
        out.insert(p, Vec::new());
        tpl.add_partition_offset(topic, p, Offset::Offset(from)).expect("tpl");
    }
    c.assign(&tpl).expect("assign");
    let done = |out: &BTreeMap<i32, Vec<Consumed>>| {
        ends.iter()
            .all(|(p, end)| out[p].last().map_or(from >= *end, |m| m.offset + 1 >= *end))
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done(&out) {
        assert!(Instant::now() < deadline, "timed out consuming {topic}: ends {ends:?}");
        let Some(msg) = c.poll(Duration::from_millis(100)) else {
            continue;
        };
        let msg = msg.unwrap_or_else(|e| panic!("consumer error on {topic}: {e}"));
        out.get_mut(&msg.partition())
            .expect("assigned partition")
            .push(Consumed {
                offset: msg.offset(),
                seq: seq_of_key(msg.key().expect("every message has a key")),
                value: msg.payload().unwrap_or_default().to_vec(),
                timestamp_ms: msg.timestamp().to_millis(),
            });
    }
    out
}

/// Sends `seq` until librdkafka accepts it into its queue.
fn send(p: &RecordingProducer, topic: &str, seq: usize, timestamp_ms: Option<i64>) {
    let key = key_of(seq);
    let value = value_of(seq);
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let mut record = BaseRecord::with_opaque_to(topic, seq).key(&key).payload(&value);
        if let Some(ts) = timestamp_ms {
            record = record.timestamp(ts);
        }
        match p.send(record) {
            Ok(()) => return,
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                assert!(Instant::now() < deadline, "producer queue stayed full");
                std::thread::sleep(Duration::from_millis(1));
            }
            Err((e, _)) => panic!("send {seq}: {e}"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// a) acks=all survives kill -9
// ---------------------------------------------------------------------------------------------

#[test]
fn acked_messages_survive_kill9_exactly_once_in_order() {
    const TOPIC: &str = "durable";
    const PARTITIONS: i32 = 3;
    const KILL_AFTER_ACKS: usize = 20_000;
    const SEND_AFTER_KILL: usize = 3_000;

    let mut broker = Broker::start();
    create_topic(&broker.bootstrap(), TOPIC, PARTITIONS, &[("retention.ms", "3600000")]);

    // Produce until enough acks arrived, crash the broker with sends still in flight, keep
    // sending into the outage for a while, then bring the broker back.
    let recorder = Recorder::default();
    let deliveries = recorder.0.clone();
    let p = producer(&broker.bootstrap(), recorder.clone(), &[]);
    let mut seq = 0usize;
    let deadline = Instant::now() + Duration::from_secs(30);
    while deliveries.acked_count.load(Ordering::SeqCst) < KILL_AFTER_ACKS {
        assert!(
            Instant::now() < deadline,
            "only {} acks after 30 s",
            deliveries.acked_count.load(Ordering::SeqCst)
        );
        send(&p, TOPIC, seq, None);
        seq += 1;
    }
    // A burst the broker cannot have acknowledged yet, so the kill lands mid-stream.
    for _ in 0..5_000 {
        send(&p, TOPIC, seq, None);
        seq += 1;
    }
    broker.kill9();
    let acked_at_kill = deliveries.acked_count.load(Ordering::SeqCst);
    let sent_at_kill = seq;
    for _ in 0..SEND_AFTER_KILL {
        send(&p, TOPIC, seq, None);
        seq += 1;
    }
    broker.restart();
    // Whatever is still queued either reaches the restarted broker or times out.
    let _ = p.flush(Timeout::After(Duration::from_secs(20)));
    drop(p);
    let acked = deliveries.acked.lock().expect("recorder lock").clone();
    let failed = deliveries.failed_count.load(Ordering::SeqCst);
    assert!(
        sent_at_kill > acked_at_kill,
        "no message was in flight at the kill (sent {sent_at_kill}, acked {acked_at_kill}): the crash scenario was not exercised"
    );
    assert_eq!(
        acked.len() + failed,
        seq,
        "every message got exactly one delivery report"
    );
    eprintln!(
        "sent {seq}, acked {} ({acked_at_kill} before the kill), failed {failed}",
        acked.len()
    );

    // Every partition reads back as a gap-free run of offsets from 0, each message at most once,
    // in the order it was sent (no retries, so per-partition send order is log order).
    let consumed = consume_all(&broker.bootstrap(), TOPIC, PARTITIONS, 0);
    let mut seen = HashSet::new();
    for (p, msgs) in &consumed {
        for (i, m) in msgs.iter().enumerate() {
            assert_eq!(
                m.offset, i as i64,
                "partition {p}: offsets must be 0,1,2,… without gaps"
            );
            assert!(
                seen.insert(m.seq),
                "message {} appears twice (partition {p}, offset {})",
                m.seq,
                m.offset
            );
            assert_eq!(
                m.value,
                value_of(m.seq).into_bytes(),
                "payload of message {} in partition {p}",
                m.seq
            );
        }
        for w in msgs.windows(2) {
            assert!(
                w[0].seq < w[1].seq,
                "partition {p}: message {} stored after {}",
                w[1].seq,
                w[0].seq
            );
        }
    }

    // Every acknowledged message is exactly where the broker said it put it.
    for ack in &acked {
        let got = consumed[&ack.partition].get(ack.offset as usize);
        assert_eq!(
            got.map(|m| m.seq),
            Some(ack.seq),
            "acked message {} at {}-{} offset {} is missing or replaced after kill -9",
            ack.seq,
            TOPIC,
            ack.partition,
            ack.offset
        );
    }

    // The topic and its creation-time config survived the restart.
    let c = consumer(&broker.bootstrap());
    let md = c.fetch_metadata(Some(TOPIC), TIMEOUT).expect("metadata");
    let t = md
        .topics()
        .iter()
        .find(|t| t.name() == TOPIC)
        .expect("topic in metadata");
    assert!(t.error().is_none(), "topic error after restart: {:?}", t.error());
    assert_eq!(t.partitions().len(), PARTITIONS as usize);
    let opts = AdminOptions::new().request_timeout(Some(TIMEOUT));
    let configs = block_on(admin(&broker.bootstrap()).describe_configs(&[ResourceSpecifier::Topic(TOPIC)], &opts))
        .expect("describe_configs");
    let resource = configs
        .into_iter()
        .next()
        .expect("one resource")
        .expect("describe topic config");
    let retention = resource.get("retention.ms").expect("retention.ms listed");
    assert_eq!(
        retention.value.as_deref(),
        Some("3600000"),
        "topic config lost on restart"
    );
    assert!(
        !retention.is_default,
        "retention.ms must be reported as a topic override"
    );
}

// ---------------------------------------------------------------------------------------------
// b) torn and corrupt tails
// ---------------------------------------------------------------------------------------------

const TORN_TOPIC: &str = "torn";
const TORN_MESSAGES: usize = 1000;

/// Create timestamps are `t0 + seq * 10`, so time lookups have an exact answer. `t0` is an hour
/// ago: older than `segment.ms` would (correctly, as in Kafka) roll a segment per batch.
fn t0_ms() -> i64 {
    static T0: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    *T0.get_or_init(|| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock after 1970");
        now.as_millis() as i64 - 3_600_000
    })
}

fn ts_of(seq: usize) -> i64 {
    t0_ms() + seq as i64 * 10
}

/// Produces messages `first..first + count` to partition 0 in small batches and checks that each
/// landed at offset == seq.
fn produce_numbered(bootstrap: &str, first: usize, count: usize) {
    let recorder = Recorder::default();
    let deliveries = recorder.0.clone();
    let p = producer(
        bootstrap,
        recorder.clone(),
        &[("batch.num.messages", "25"), ("linger.ms", "5")],
    );
    for seq in first..first + count {
        send(&p, TORN_TOPIC, seq, Some(ts_of(seq)));
    }
    p.flush(Timeout::After(TIMEOUT)).expect("flush");
    let acked = deliveries.acked.lock().expect("recorder lock").clone();
    assert_eq!(acked.len(), count, "all messages acked");
    for a in acked {
        assert_eq!(
            (a.partition, a.offset),
            (0, a.seq as i64),
            "message {} landed elsewhere",
            a.seq
        );
    }
}

/// Where each batch of a `.log` file starts: `(position, base_offset, total_bytes)`. Stops at
/// the first zero length (a preallocated tail) or incomplete batch.
fn batch_positions(log: &[u8]) -> Vec<(usize, i64, usize)> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    while let Ok(header) = runnel_protocol::records::parse_header(&log[pos..]) {
        let size = header.total_size_bytes();
        if pos + size > log.len() {
            break;
        }
        out.push((pos, header.base_offset, size));
        pos += size;
    }
    out
}

fn segment_file(data: &Path, ext: &str) -> PathBuf {
    data.join(format!("{TORN_TOPIC}-0"))
        .join(format!("00000000000000000000.{ext}"))
}

/// How the active segment is damaged while the broker is down.
#[derive(Debug, Clone, Copy)]
enum Damage {
    /// The last batch is cut in half, as by a crash in the middle of a write.
    TruncateLastBatch,
    /// Bytes inside the last batch's records are overwritten: the CRC no longer matches.
    CorruptLastBatch,
    /// The offset index is cut to a length that is not a whole number of entries and the time
    /// index is overwritten with garbage; the log itself is intact.
    GarbleIndexes,
    /// Both index files are gone; the log itself is intact.
    DeleteIndexes,
    /// A batch in the middle of the segment has a bad CRC: it and everything after it go, as in
    /// Kafka (recovery never skips over a bad batch).
    CorruptMiddleBatch,
    /// Random bytes after the last whole batch, as left by a write that never completed.
    GarbageAfterEnd,
}

/// Deterministic garbage (xorshift64).
fn garbage(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Flips bytes in the middle of the records of the batch at `pos` (past its 61-byte header,
/// so only the CRC can notice).
fn corrupt_batch_at(log_path: &Path, log: &[u8], pos: usize, size: usize) {
    use std::os::unix::fs::FileExt;
    let at = pos + 61 + (size - 61) / 2;
    let flipped: Vec<u8> = log[at..at + 4].iter().map(|b| b ^ 0x5a).collect();
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(log_path)
        .expect("open .log");
    f.write_all_at(&flipped, at as u64).expect("overwrite");
    f.sync_all().expect("sync");
}

/// Damages the segment and returns the log end offset recovery must arrive at.
fn damage(data: &Path, how: Damage) -> i64 {
    let log_path = segment_file(data, "log");
    let log = std::fs::read(&log_path).expect("read .log");
    let batches = batch_positions(&log);
    assert!(batches.len() >= 10, "expected many batches, found {}", batches.len());
    let &(last_pos, last_base, last_size) = batches.last().expect("a last batch");
    let end_of_batches = (last_pos + last_size) as u64;
    let last_header = runnel_protocol::records::parse_header(&log[last_pos..]).expect("last batch header");
    assert_eq!(
        last_header.last_offset(),
        TORN_MESSAGES as i64 - 1,
        "all messages are in the active segment"
    );
    let total_records: i64 = TORN_MESSAGES as i64;
    match how {
        Damage::TruncateLastBatch => {
            let f = std::fs::OpenOptions::new()
                .write(true)
                .open(&log_path)
                .expect("open .log");
            f.set_len((last_pos + last_size / 2) as u64).expect("truncate .log");
            f.sync_all().expect("sync");
            last_base
        }
        Damage::CorruptLastBatch => {
            corrupt_batch_at(&log_path, &log, last_pos, last_size);
            last_base
        }
        Damage::CorruptMiddleBatch => {
            let (pos, base, size) = batches[batches.len() / 2];
            corrupt_batch_at(&log_path, &log, pos, size);
            base
        }
        Damage::GarbageAfterEnd => {
            use std::os::unix::fs::FileExt;
            let f = std::fs::OpenOptions::new()
                .write(true)
                .open(&log_path)
                .expect("open .log");
            f.write_all_at(&garbage(300, 7), end_of_batches)
                .expect("append garbage");
            f.sync_all().expect("sync");
            total_records
        }
        Damage::GarbleIndexes => {
            let index = segment_file(data, "index");
            let f = std::fs::OpenOptions::new()
                .write(true)
                .open(&index)
                .expect("open .index");
            f.set_len(13).expect("truncate .index");
            std::fs::write(segment_file(data, "timeindex"), garbage(4096, 0x9e37_79b9_7f4a_7c15))
                .expect("garble .timeindex");
            total_records
        }
        Damage::DeleteIndexes => {
            std::fs::remove_file(segment_file(data, "index")).expect("remove .index");
            std::fs::remove_file(segment_file(data, "timeindex")).expect("remove .timeindex");
            total_records
        }
    }
}

fn torn_tail_case(how: Damage) {
    let mut broker = Broker::start();
    create_topic(&broker.bootstrap(), TORN_TOPIC, 1, &[]);
    produce_numbered(&broker.bootstrap(), 0, TORN_MESSAGES);
    broker.kill9();

    let expected_end = damage(broker.data(), how);
    assert!(expected_end > 0 && expected_end <= TORN_MESSAGES as i64);
    broker.restart();
    let bootstrap = broker.bootstrap();
    eprintln!("{how:?}: expecting log end offset {expected_end}");

    // The log end is exactly where the damage began.
    let c = consumer(&bootstrap);
    let (low, high) = wait_for("topic after restart", TIMEOUT, || {
        c.fetch_watermarks(TORN_TOPIC, 0, Duration::from_secs(2)).ok()
    });
    assert_eq!((low, high), (0, expected_end), "{how:?}: watermarks after recovery");

    // Every batch before the damage is intact, the damaged one is gone.
    let consumed = consume_all(&bootstrap, TORN_TOPIC, 1, 0);
    let msgs = &consumed[&0];
    assert_eq!(msgs.len() as i64, expected_end, "{how:?}: messages after recovery");
    for (i, m) in msgs.iter().enumerate() {
        assert_eq!((m.offset, m.seq), (i as i64, i), "{how:?}: offset {i}");
        assert_eq!(m.value, value_of(i).into_bytes(), "{how:?}: payload at offset {i}");
        assert_eq!(m.timestamp_ms, Some(ts_of(i)), "{how:?}: timestamp at offset {i}");
    }

    // The indexes work again: a fetch from the middle starts at the right record, and a time
    // lookup finds the first record at or after the timestamp.
    let middle = expected_end / 2;
    let from_middle = consume_all(&bootstrap, TORN_TOPIC, 1, middle);
    assert_eq!(
        from_middle[&0].first().map(|m| m.offset),
        Some(middle),
        "{how:?}: fetch from {middle}"
    );
    let mut by_time = TopicPartitionList::new();
    by_time
        .add_partition_offset(TORN_TOPIC, 0, Offset::Offset(ts_of(middle as usize) - 5))
        .expect("tpl");
    let found = c.offsets_for_times(by_time, TIMEOUT).expect("offsets_for_times");
    let found = found.find_partition(TORN_TOPIC, 0).expect("partition").offset();
    assert_eq!(found, Offset::Offset(middle), "{how:?}: time lookup after recovery");

    // New writes continue at the recovered log end and can be read back.
    let next = expected_end as usize;
    produce_numbered(&bootstrap, next, 50);
    let (_, high) = watermarks(&c, TORN_TOPIC, 0);
    assert_eq!(high, expected_end + 50, "{how:?}: log end after new produces");
    let tail = consume_all(&bootstrap, TORN_TOPIC, 1, expected_end);
    let tail_seqs: Vec<usize> = tail[&0].iter().map(|m| m.seq).collect();
    assert_eq!(
        tail_seqs,
        (next..next + 50).collect::<Vec<_>>(),
        "{how:?}: new messages"
    );

    // A second crash after recovery keeps exactly the recovered prefix plus the new messages:
    // the damaged batch does not come back and the new appends are not lost.
    broker.kill9();
    broker.restart();
    let all = consume_all(&broker.bootstrap(), TORN_TOPIC, 1, 0);
    let seqs: Vec<usize> = all[&0].iter().map(|m| m.seq).collect();
    let expected: Vec<usize> = (0..next + 50).collect();
    assert_eq!(seqs, expected, "{how:?}: log after a second crash");
}

#[test]
fn truncated_last_batch_is_dropped_on_recovery() {
    torn_tail_case(Damage::TruncateLastBatch);
}

#[test]
fn last_batch_with_bad_crc_is_dropped_on_recovery() {
    torn_tail_case(Damage::CorruptLastBatch);
}

#[test]
fn garbled_indexes_are_rebuilt_on_recovery() {
    torn_tail_case(Damage::GarbleIndexes);
}

#[test]
fn missing_indexes_are_rebuilt_on_recovery() {
    torn_tail_case(Damage::DeleteIndexes);
}

#[test]
fn corrupt_middle_batch_truncates_from_there_on_recovery() {
    torn_tail_case(Damage::CorruptMiddleBatch);
}

#[test]
fn garbage_after_the_last_batch_is_dropped_on_recovery() {
    torn_tail_case(Damage::GarbageAfterEnd);
}
