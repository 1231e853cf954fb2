//! Transactions end to end with librdkafka (the `rdkafka` crate) against the real binary:
//! commit and abort visibility under both isolation levels, the last stable offset, timeouts
//! that abort, zombie fencing, state across a broker `kill -9`, and an exactly-once
//! consume-transform-produce copier that is itself `kill -9`ed and restarted.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::Broker;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

const COPIER_ENV: &str = "RUNNEL_TXN_COPIER";
const TIMEOUT: Duration = Duration::from_secs(30);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn create_topic(bootstrap: &str, name: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("admin");
    let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    let results = runtime()
        .block_on(admin.create_topics(&[topic], &AdminOptions::new()))
        .expect("create topics");
    for r in results {
        r.expect("topic created");
    }
}

fn txn_producer(bootstrap: &str, transactional_id: &str, timeout_ms: u32) -> BaseProducer {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("transactional.id", transactional_id)
        .set("transaction.timeout.ms", timeout_ms.to_string())
        .set("linger.ms", "5")
        .create()
        .expect("transactional producer");
    producer.init_transactions(TIMEOUT).expect("init_transactions");
    producer
}

fn plain_producer(bootstrap: &str) -> BaseProducer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", "0")
        .create()
        .expect("producer")
}

fn send(producer: &BaseProducer, topic: &str, values: impl IntoIterator<Item = String>) {
    for v in values {
        let mut record = BaseRecord::<String, String>::to(topic).payload(&v).partition(0);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((e, r)) => {
                    assert!(
                        matches!(
                            e,
                            KafkaError::MessageProduction(rdkafka::types::RDKafkaErrorCode::QueueFull)
                        ),
                        "send failed: {e}"
                    );
                    producer.poll(Duration::from_millis(10));
                    record = r;
                }
            }
        }
    }
}

fn values(prefix: &str, range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("{prefix}{i}")).collect()
}

/// Every value in partition 0 of `topic` up to its end, as a consumer with `isolation` sees it.
fn read_all(bootstrap: &str, topic: &str, isolation: &str) -> Vec<String> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "reader")
        .set("enable.auto.commit", "false")
        .set("isolation.level", isolation)
        .set("enable.partition.eof", "true")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning).expect("tpl");
    consumer.assign(&tpl).expect("assign");
    let mut out = Vec::new();
    let deadline = Instant::now() + TIMEOUT;
    while Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => out.push(String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned()),
            Some(Err(KafkaError::PartitionEOF(_))) => return out,
            Some(Err(e)) => panic!("consume failed: {e}"),
            None => {}
        }
    }
    panic!("did not reach the end of {topic}: {} values so far", out.len());
}

fn fenced(e: &KafkaError) -> bool {
    match e {
        KafkaError::Transaction(t) => t.is_fatal() || t.txn_requires_abort(),
        _ => false,
    }
}

#[test]
fn aborted_transactions_are_hidden_from_read_committed_only() {
    let broker = Broker::start();
    let bs = broker.bootstrap();
    create_topic(&bs, "t", 1);
    let producer = txn_producer(&bs, "visibility", 60_000);
    producer.begin_transaction().expect("begin");
    send(&producer, "t", values("c", 0..10));
    producer.commit_transaction(TIMEOUT).expect("commit");
    producer.begin_transaction().expect("begin");
    send(&producer, "t", values("a", 0..10));
    producer.flush(TIMEOUT).expect("flush");
    producer.abort_transaction(TIMEOUT).expect("abort");
    producer.begin_transaction().expect("begin");
    send(&producer, "t", values("c", 10..20));
    producer.commit_transaction(TIMEOUT).expect("commit");

    let committed = read_all(&bs, "t", "read_committed");
    assert_eq!(committed, values("c", 0..20), "read_committed sees committed data only");
    let mut uncommitted = values("c", 0..10);
    uncommitted.extend(values("a", 0..10));
    uncommitted.extend(values("c", 10..20));
    assert_eq!(read_all(&bs, "t", "read_uncommitted"), uncommitted);

    // An open transaction holds back the last stable offset: a plain record written after it is
    // invisible to read_committed until the transaction ends.
    producer.begin_transaction().expect("begin");
    send(&producer, "t", values("open", 0..3));
    producer.flush(TIMEOUT).expect("flush");
    let plain = plain_producer(&bs);
    send(&plain, "t", vec!["after".to_string()]);
    plain.flush(TIMEOUT).expect("flush");
    assert_eq!(read_all(&bs, "t", "read_committed"), values("c", 0..20));
    assert_eq!(read_all(&bs, "t", "read_uncommitted").len(), 34);
    producer.commit_transaction(TIMEOUT).expect("commit");
    let mut expected = values("c", 0..20);
    expected.extend(values("open", 0..3));
    expected.push("after".into());
    assert_eq!(read_all(&bs, "t", "read_committed"), expected);
}

#[test]
fn a_transaction_left_open_is_aborted_after_its_timeout() {
    let broker = Broker::start_with(&[("transaction.abort.timed.out.transaction.cleanup.interval.ms", "200")]);
    let bs = broker.bootstrap();
    create_topic(&bs, "t", 1);
    let producer = txn_producer(&bs, "slow", 1_500);
    producer.begin_transaction().expect("begin");
    send(&producer, "t", values("late", 0..5));
    producer.flush(TIMEOUT).expect("flush");
    std::thread::sleep(Duration::from_millis(3_000));
    // The coordinator aborted it: the last stable offset moved past it without a commit.
    let plain = plain_producer(&bs);
    send(&plain, "t", vec!["after".to_string()]);
    plain.flush(TIMEOUT).expect("flush");
    assert_eq!(read_all(&bs, "t", "read_committed"), vec!["after".to_string()]);
    assert_eq!(read_all(&bs, "t", "read_uncommitted").len(), 6);
    // The abort bumped the epoch: the slow producer cannot commit any more.
    let err = producer
        .commit_transaction(TIMEOUT)
        .expect_err("commit after the timeout must fail");
    assert!(fenced(&err), "unexpected error: {err}");
}

#[test]
fn a_zombie_producer_is_fenced() {
    let broker = Broker::start();
    let bs = broker.bootstrap();
    create_topic(&bs, "t", 1);
    let zombie = txn_producer(&bs, "z", 60_000);
    zombie.begin_transaction().expect("begin");
    send(&zombie, "t", vec!["zombie-1".to_string()]);
    zombie.flush(TIMEOUT).expect("flush");
    // A new instance with the same transactional id aborts the zombie's transaction and fences it.
    let successor = txn_producer(&bs, "z", 60_000);
    send(&zombie, "t", vec!["zombie-2".to_string()]);
    let err = zombie
        .commit_transaction(TIMEOUT)
        .expect_err("the zombie must not commit");
    assert!(fenced(&err), "unexpected error: {err}");
    successor.begin_transaction().expect("begin");
    send(&successor, "t", vec!["successor".to_string()]);
    successor.commit_transaction(TIMEOUT).expect("commit");
    assert_eq!(read_all(&bs, "t", "read_committed"), vec!["successor".to_string()]);
}

#[test]
fn transaction_state_survives_a_broker_kill9() {
    let mut broker = Broker::start_with(&[("transaction.abort.timed.out.transaction.cleanup.interval.ms", "200")]);
    let bs = broker.bootstrap();
    create_topic(&bs, "t", 1);
    let producer = txn_producer(&bs, "durable", 60_000);
    producer.begin_transaction().expect("begin");
    send(&producer, "t", values("c", 0..10));
    producer.commit_transaction(TIMEOUT).expect("commit");
    let hanging = txn_producer(&bs, "hanging", 3_000);
    hanging.begin_transaction().expect("begin");
    send(&hanging, "t", values("open", 0..5));
    hanging.flush(TIMEOUT).expect("flush");
    drop(producer);
    drop(hanging);

    broker.kill9();
    broker.restart();
    let bs = broker.bootstrap();
    // The open transaction survived the crash (it still holds the LSO), then times out.
    let plain = plain_producer(&bs);
    send(&plain, "t", vec!["after".to_string()]);
    plain.flush(TIMEOUT).expect("flush");
    let deadline = Instant::now() + TIMEOUT;
    let mut expected = values("c", 0..10);
    expected.push("after".into());
    loop {
        let seen = read_all(&bs, "t", "read_committed");
        if seen == expected {
            break;
        }
        assert_eq!(seen, values("c", 0..10), "only committed data before the abort");
        assert!(Instant::now() < deadline, "the open transaction was never aborted");
        std::thread::sleep(Duration::from_millis(300));
    }
    // The transactional id's epoch survived: a new producer continues it.
    let again = txn_producer(&bs, "durable", 60_000);
    again.begin_transaction().expect("begin");
    send(&again, "t", vec!["again".to_string()]);
    again.commit_transaction(TIMEOUT).expect("commit");
    expected.push("again".into());
    assert_eq!(read_all(&bs, "t", "read_committed"), expected);
}

// ---------------------------------------------------------------------------------------------
// Exactly-once copy: a consume-transform-produce loop in a child process, killed and restarted.

const INPUT: &str = "in";
const OUTPUT: &str = "out";
const PARTITIONS: i32 = 4;
const KEYS: usize = 50;
const MESSAGES: usize = 100_000;

/// The copier child: copies `in` to `out` in transactions of up to 500 messages, committing
/// the consumed offsets in the same transaction. Any error ends the process; the parent
/// restarts it.
#[test]
fn copier_child() {
    let Ok(bootstrap) = std::env::var(COPIER_ENV) else {
        return;
    };
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("group.id", "copier")
        .set("group.instance.id", "copier-1")
        .set("session.timeout.ms", "6000")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("isolation.level", "read_committed")
        .create()
        .expect("consumer");
    consumer.subscribe(&[INPUT]).expect("subscribe");
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("transactional.id", "copier")
        .set("linger.ms", "5")
        .create()
        .expect("producer");
    producer.init_transactions(TIMEOUT).expect("init_transactions");
    loop {
        let mut batch = Vec::new();
        let started = Instant::now();
        while batch.len() < 500 && started.elapsed() < Duration::from_millis(100) {
            match consumer.poll(Duration::from_millis(20)) {
                Some(Ok(m)) => batch.push((
                    m.key().map(<[u8]>::to_vec).unwrap_or_default(),
                    m.payload().map(<[u8]>::to_vec).unwrap_or_default(),
                )),
                Some(Err(e)) => panic!("consume: {e}"),
                None => {}
            }
        }
        if batch.is_empty() {
            continue;
        }
        producer.begin_transaction().expect("begin");
        for (key, value) in &batch {
            let out = [value.as_slice(), b"!"].concat();
            let mut record = BaseRecord::to(OUTPUT).key(key).payload(&out);
            while let Err((e, r)) = producer.send(record) {
                assert!(matches!(
                    e,
                    KafkaError::MessageProduction(rdkafka::types::RDKafkaErrorCode::QueueFull)
                ));
                producer.poll(Duration::from_millis(5));
                record = r;
            }
        }
        let positions = consumer.position().expect("position");
        let metadata = consumer.group_metadata().expect("group metadata");
        producer
            .send_offsets_to_transaction(&positions, &metadata, TIMEOUT)
            .expect("send offsets");
        producer.commit_transaction(TIMEOUT).expect("commit");
        println!("COMMITTED {}", batch.len());
    }
}

/// Starts a copier; each transaction it commits adds its size to `progress`.
fn spawn_copier(bootstrap: &str, progress: &Arc<AtomicUsize>) -> Child {
    let mut child = Command::new(std::env::current_exe().expect("test binary"))
        .args(["copier_child", "--exact", "--nocapture", "--test-threads=1"])
        .env(COPIER_ENV, bootstrap)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn copier");
    let stdout = child.stdout.take().expect("copier stdout");
    let progress = progress.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(n) = line
                .strip_prefix("COMMITTED ")
                .and_then(|n| n.trim().parse::<usize>().ok())
            {
                progress.fetch_add(n, Ordering::SeqCst);
            }
        }
    });
    child
}

fn produce_input(bootstrap: &str) {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .create()
        .expect("producer");
    let mut seq = vec![0usize; KEYS];
    for i in 0..MESSAGES {
        let k = i % KEYS;
        let key = format!("k{k}");
        let value = format!("{k}:{}", seq[k]);
        seq[k] += 1;
        let mut record = BaseRecord::to(INPUT).key(&key).payload(&value);
        while let Err((_, r)) = producer.send(record) {
            producer.poll(Duration::from_millis(5));
            record = r;
        }
    }
    producer.flush(TIMEOUT).expect("flush input");
}

/// Output as a read_committed consumer sees it, once it holds `MESSAGES` records or stalls.
fn read_output(bootstrap: &str, deadline: Instant) -> Vec<(String, String)> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "verifier")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("isolation.level", "read_committed")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset(OUTPUT, p, Offset::Beginning).expect("tpl");
    }
    consumer.assign(&tpl).expect("assign");
    let mut out = Vec::new();
    let mut last_progress = Instant::now();
    while Instant::now() < deadline && last_progress.elapsed() < Duration::from_secs(20) {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            out.push((
                String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned(),
                String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned(),
            ));
            last_progress = Instant::now();
            if out.len() >= MESSAGES {
                // Anything beyond would be a duplicate: give it a moment to show up.
                let extra_until = Instant::now() + Duration::from_secs(2);
                while Instant::now() < extra_until {
                    if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
                        out.push((
                            String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned(),
                            String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned(),
                        ));
                    }
                }
                break;
            }
        }
    }
    out
}

#[test]
fn exactly_once_copy_survives_copier_kill9() {
    let broker = Broker::start_with(&[("group.initial.rebalance.delay.ms", "0")]);
    let bs = broker.bootstrap();
    create_topic(&bs, INPUT, PARTITIONS);
    create_topic(&bs, OUTPUT, PARTITIONS);
    produce_input(&bs);

    // Kill the copier at pseudo-random points spread over the copy (a fixed seed keeps failures
    // reproducible): after roughly every eighth of the input has been committed, plus jitter.
    let progress = Arc::new(AtomicUsize::new(0));
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut kills = 0;
    let mut copier = spawn_copier(&bs, &progress);
    let deadline = Instant::now() + Duration::from_secs(240);
    while kills < 6 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let threshold = (kills + 1) * MESSAGES / 8 + (seed % 5_000) as usize;
        while progress.load(Ordering::SeqCst) < threshold {
            assert!(Instant::now() < deadline, "the copier stopped making progress");
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = copier.kill();
        let _ = copier.wait();
        kills += 1;
        copier = spawn_copier(&bs, &progress);
    }
    assert!(
        progress.load(Ordering::SeqCst) < MESSAGES,
        "every kill must land before the copy is done"
    );
    let output = read_output(&bs, Instant::now() + Duration::from_secs(240));
    let _ = copier.kill();
    let _ = copier.wait();

    let mut per_key: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (key, value) in &output {
        let body = value.strip_suffix('!').expect("transformed value");
        let (k, seq) = body.split_once(':').expect("key:seq");
        assert_eq!(format!("k{k}"), *key, "value under the wrong key");
        per_key.entry(key.clone()).or_default().push(seq.parse().expect("seq"));
    }
    assert_eq!(
        output.len(),
        MESSAGES,
        "every input message exactly once ({kills} kills)"
    );
    assert_eq!(per_key.len(), KEYS);
    for (key, seqs) in per_key {
        let expected: Vec<usize> = (0..MESSAGES / KEYS).collect();
        assert_eq!(seqs, expected, "per-key order and exactly-once for {key}");
    }
}

#[test]
fn a_commit_cut_short_after_prepare_is_completed_after_restart() {
    let mut broker = Broker::start();
    let bs = broker.bootstrap();
    create_topic(&bs, "t", 1);
    // The broker dies right after the PrepareCommit record is written, before any marker.
    broker.kill9();
    broker.env = vec![("RUNNEL_CRASH_AT".into(), "txn-after-prepare".into())];
    broker.restart();
    let bs = broker.bootstrap();
    let producer = txn_producer(&bs, "in-doubt", 60_000);
    producer.begin_transaction().expect("begin");
    send(&producer, "t", values("c", 0..5));
    producer.flush(TIMEOUT).expect("flush");
    assert!(producer.commit_transaction(Duration::from_secs(5)).is_err());
    drop(producer);
    broker.kill9();
    broker.env.clear();
    broker.restart();
    // Loading finds the transaction prepared and writes its markers: it commits.
    assert_eq!(read_all(&broker.bootstrap(), "t", "read_committed"), values("c", 0..5));
}
