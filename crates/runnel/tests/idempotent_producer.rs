//! Idempotent producers against the real binary: librdkafka with `enable.idempotence=true`
//! (plain, and through a fault-injecting TCP proxy that makes the client retry), the raw
//! protocol rules (duplicate, sequence gap, fenced epoch), and producer state and producer ids
//! across `kill -9`.

mod common;

use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use common::Broker;
use rdkafka::client::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{DeliveryResult, Message};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};
use runnel_protocol::frame::{decode_response, encode_request, RequestHeader};
use runnel_protocol::generated::create_topics_request::{CreatableTopic, CreateTopicsRequest};
use runnel_protocol::generated::describe_producers_request::{DescribeProducersRequest, TopicRequest};
use runnel_protocol::generated::describe_producers_response::PartitionResponse;
use runnel_protocol::generated::init_producer_id_request::InitProducerIdRequest;
use runnel_protocol::generated::produce_request::{PartitionProduceData, ProduceRequest, TopicProduceData};
use runnel_protocol::generated::{ApiKey, RequestBody, ResponseBody};
use runnel_protocol::records::{encode_batch, BatchBuilderParams, Compression, Record};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream as AsyncTcpStream};

const PARTITIONS: i32 = 3;
const IO_TIMEOUT: Duration = Duration::from_secs(10);
const OUT_OF_ORDER_SEQUENCE_NUMBER: i16 = 45;
const INVALID_PRODUCER_EPOCH: i16 = 47;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;

// ---------------------------------------------------------------------------------------------
// A blocking raw-protocol client
// ---------------------------------------------------------------------------------------------

struct Raw {
    s: TcpStream,
    correlation_id: i32,
}

impl Raw {
    fn connect(b: &Broker) -> Raw {
        let s = TcpStream::connect(b.bootstrap()).expect("connect");
        s.set_read_timeout(Some(IO_TIMEOUT)).expect("read timeout");
        s.set_nodelay(true).expect("nodelay");
        Raw { s, correlation_id: 0 }
    }

    fn call(&mut self, key: ApiKey, version: i16, body: RequestBody) -> ResponseBody {
        self.correlation_id += 1;
        let header = RequestHeader {
            api_key: key as i16,
            api_version: version,
            correlation_id: self.correlation_id,
            client_id: Some("idempotence-test".into()),
            unknown_tagged_fields: Vec::new(),
        };
        let mut buf = BytesMut::new();
        encode_request(&mut buf, &header, &body).expect("encode request");
        self.s.write_all(&buf).expect("write request");
        let mut prefix = [0u8; 4];
        self.s.read_exact(&mut prefix).expect("response size");
        let size = i32::from_be_bytes(prefix);
        assert!((4..64 << 20).contains(&size), "implausible response size {size}");
        let mut frame = vec![0u8; size as usize];
        self.s.read_exact(&mut frame).expect("response frame");
        let (cid, body) = decode_response(Bytes::from(frame), key, version).expect("decodable response");
        assert_eq!(cid, self.correlation_id);
        body
    }

    fn create_topic(&mut self, name: &str, partitions: i32) {
        let body = RequestBody::CreateTopics(CreateTopicsRequest {
            topics: vec![CreatableTopic {
                name: name.into(),
                num_partitions: partitions,
                replication_factor: 1,
                ..Default::default()
            }],
            timeout_ms: 10_000,
            ..Default::default()
        });
        let ResponseBody::CreateTopics(r) = self.call(ApiKey::CreateTopics, 5, body) else {
            panic!("not a CreateTopics response");
        };
        assert_eq!(
            r.topics[0].error_code, 0,
            "creating {name}: {:?}",
            r.topics[0].error_message
        );
    }

    /// `(error code, producer id, epoch)`.
    fn init_producer_id(&mut self, version: i16, transactional_id: Option<&str>) -> (i16, i64, i16) {
        let body = RequestBody::InitProducerId(InitProducerIdRequest {
            transactional_id: transactional_id.map(str::to_string),
            transaction_timeout_ms: 60_000,
            producer_id: -1,
            producer_epoch: -1,
            ..Default::default()
        });
        let ResponseBody::InitProducerId(r) = self.call(ApiKey::InitProducerId, version, body) else {
            panic!("not an InitProducerId response");
        };
        (r.error_code, r.producer_id, r.producer_epoch)
    }

    fn describe_producers(&mut self, topic: &str, partition: i32) -> PartitionResponse {
        let body = RequestBody::DescribeProducers(DescribeProducersRequest {
            topics: vec![TopicRequest {
                name: topic.into(),
                partition_indexes: vec![partition],
                ..Default::default()
            }],
            ..Default::default()
        });
        let ResponseBody::DescribeProducers(mut r) = self.call(ApiKey::DescribeProducers, 0, body) else {
            panic!("not a DescribeProducers response");
        };
        r.topics.remove(0).partitions.remove(0)
    }

    /// Produces `batch` to partition 0 of `topic`: `(error code, base offset)`.
    fn produce(&mut self, topic: &str, batch: Bytes) -> (i16, i64) {
        let body = RequestBody::Produce(ProduceRequest {
            acks: -1,
            timeout_ms: 10_000,
            topic_data: vec![TopicProduceData {
                name: topic.into(),
                partition_data: vec![PartitionProduceData {
                    index: 0,
                    records: Some(batch),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        });
        let ResponseBody::Produce(r) = self.call(ApiKey::Produce, 9, body) else {
            panic!("not a Produce response");
        };
        let p = &r.responses[0].partition_responses[0];
        (p.error_code, p.base_offset)
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// A batch of `count` records from `(producer_id, epoch)` starting at `first_seq`
/// (`producer_id` -1: a plain, non-idempotent batch).
fn batch(producer_id: i64, epoch: i16, first_seq: i32, count: usize) -> Bytes {
    let records: Vec<Record> = (0..count)
        .map(|i| Record {
            attributes: 0,
            timestamp_delta: 0,
            offset_delta: i as i32,
            key: None,
            value: Some(Bytes::from(format!("seq-{}", first_seq as usize + i))),
            headers: vec![],
        })
        .collect();
    let params = BatchBuilderParams {
        base_timestamp: now_ms(),
        producer_id,
        producer_epoch: epoch,
        base_sequence: if producer_id < 0 { -1 } else { first_seq },
        ..Default::default()
    };
    encode_batch(&params, &records, Compression::None).expect("encode batch")
}

// ---------------------------------------------------------------------------------------------
// librdkafka helpers
// ---------------------------------------------------------------------------------------------

#[derive(Default)]
struct Deliveries {
    failed: AtomicUsize,
    delivered: AtomicUsize,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => self.delivered.fetch_add(1, Ordering::Relaxed),
            Err((e, _)) => {
                eprintln!("delivery failed: {e}");
                self.failed.fetch_add(1, Ordering::Relaxed)
            }
        };
    }
}

/// Sends `count` messages `00000000`, `00000001`, ... with message `i` to partition `i % 3`.
fn produce_idempotently(bootstrap: &str, topic: &str, count: usize, extra: &[(&str, &str)]) {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("queue.buffering.max.messages", "200000");
    for (k, v) in extra {
        config.set(*k, *v);
    }
    let producer: BaseProducer<Deliveries> = config.create_with_context(Deliveries::default()).expect("producer");
    for i in 0..count {
        let value = format!("{i:08}");
        let mut record = BaseRecord::<(), _>::to(topic)
            .payload(&value)
            .partition(i as i32 % PARTITIONS);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    record = r;
                    producer.poll(Duration::from_millis(10));
                }
                Err((e, _)) => panic!("send {i}: {e}"),
            }
        }
    }
    producer.flush(Duration::from_secs(180)).expect("flush");
    let ctx = producer.context();
    assert_eq!(ctx.failed.load(Ordering::Relaxed), 0, "deliveries failed");
    assert_eq!(ctx.delivered.load(Ordering::Relaxed), count, "deliveries reported");
}

/// Reads every partition to its high watermark; per partition the values in offset order.
fn read_back(bootstrap: &str, topic: &str) -> Vec<Vec<(i64, usize)>> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "unused-for-assign")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut ends = Vec::new();
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        let (_, high) = consumer
            .fetch_watermarks(topic, p, Duration::from_secs(10))
            .expect("watermarks");
        ends.push(high);
        tpl.add_partition_offset(topic, p, Offset::Beginning).expect("tpl");
    }
    consumer.assign(&tpl).expect("assign");
    let mut out: Vec<Vec<(i64, usize)>> = vec![Vec::new(); PARTITIONS as usize];
    let deadline = Instant::now() + Duration::from_secs(120);
    let done = |out: &Vec<Vec<(i64, usize)>>| (0..PARTITIONS as usize).all(|p| out[p].len() as i64 >= ends[p]);
    while !done(&out) {
        assert!(Instant::now() < deadline, "read back stalled; ends {ends:?}");
        let Some(msg) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let msg = msg.expect("consume error");
        let value = std::str::from_utf8(msg.payload().expect("payload")).expect("utf8");
        let seq: usize = value.parse().expect("numeric value");
        out[msg.partition() as usize].push((msg.offset(), seq));
    }
    out
}

/// Exactly once and in order: partition `p` holds `p, p+3, p+6, ...` at offsets 0, 1, 2, ...
fn assert_exactly_once_in_order(partitions: &[Vec<(i64, usize)>], count: usize) {
    let mut total = 0;
    for (p, messages) in partitions.iter().enumerate() {
        let expected: Vec<(i64, usize)> = (p..count)
            .step_by(PARTITIONS as usize)
            .enumerate()
            .map(|(o, seq)| (o as i64, seq))
            .collect();
        if messages != &expected {
            let first_bad = messages.iter().zip(&expected).position(|(a, b)| a != b);
            panic!(
                "partition {p}: {} messages, {} expected; first difference at index {first_bad:?}",
                messages.len(),
                expected.len()
            );
        }
        total += messages.len();
    }
    assert_eq!(total, count);
}

// ---------------------------------------------------------------------------------------------
// (a) librdkafka, no faults
// ---------------------------------------------------------------------------------------------

#[test]
fn librdkafka_idempotent_producer_writes_exactly_once() {
    const MESSAGES: usize = 100_000;
    let broker = Broker::start();
    Raw::connect(&broker).create_topic("idem-plain", PARTITIONS);
    produce_idempotently(&broker.bootstrap(), "idem-plain", MESSAGES, &[]);
    let partitions = read_back(&broker.bootstrap(), "idem-plain");
    assert_exactly_once_in_order(&partitions, MESSAGES);
}

// ---------------------------------------------------------------------------------------------
// (b) librdkafka through a proxy that loses and delays Produce responses
// ---------------------------------------------------------------------------------------------

/// What the proxy does to a chosen Produce response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    /// The request reached the broker; the response is thrown away and the connection closed.
    Drop,
    /// The response is held past the client's request timeout, then forwarded.
    Delay,
}

struct Proxy {
    /// Produce requests seen; every `FAULT_EVERY`th gets a fault, up to `MAX_FAULTS`.
    produce_requests: AtomicUsize,
    faults: AtomicUsize,
    broker_port: AtomicU16,
}

const FAULT_EVERY: usize = 7;
const MAX_FAULTS: usize = 24;
const DELAY: Duration = Duration::from_millis(1_500);

impl Proxy {
    fn choose_fault(&self) -> Option<Fault> {
        let n = self.produce_requests.fetch_add(1, Ordering::Relaxed) + 1;
        if !n.is_multiple_of(FAULT_EVERY) {
            return None;
        }
        let f = self.faults.fetch_add(1, Ordering::Relaxed);
        if f >= MAX_FAULTS {
            return None;
        }
        Some(if f.is_multiple_of(2) { Fault::Drop } else { Fault::Delay })
    }
}

async fn read_frame(s: &mut (impl AsyncReadExt + Unpin)) -> Option<Vec<u8>> {
    let mut prefix = [0u8; 4];
    s.read_exact(&mut prefix).await.ok()?;
    let size = i32::from_be_bytes(prefix);
    if !(0..=100 << 20).contains(&size) {
        return None;
    }
    let mut frame = vec![0u8; 4 + size as usize];
    frame[..4].copy_from_slice(&prefix);
    s.read_exact(&mut frame[4..]).await.ok()?;
    Some(frame)
}

async fn proxy_connection(proxy: Arc<Proxy>, client: AsyncTcpStream) {
    let port = proxy.broker_port.load(Ordering::Acquire);
    let Ok(upstream) = AsyncTcpStream::connect(("127.0.0.1", port)).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let (mut client_rd, mut client_wr) = client.into_split();
    let (mut up_rd, mut up_wr) = upstream.into_split();
    // Correlation id -> fault chosen for that Produce request.
    let pending: Arc<Mutex<HashMap<i32, Fault>>> = Arc::default();
    let requests = {
        let (proxy, pending) = (proxy.clone(), pending.clone());
        tokio::spawn(async move {
            while let Some(frame) = read_frame(&mut client_rd).await {
                let api_key = i16::from_be_bytes([frame[4], frame[5]]);
                let cid = i32::from_be_bytes([frame[8], frame[9], frame[10], frame[11]]);
                if api_key == 0 {
                    if let Some(fault) = proxy.choose_fault() {
                        pending.lock().unwrap().insert(cid, fault);
                    }
                }
                if up_wr.write_all(&frame).await.is_err() {
                    return;
                }
            }
        })
    };
    while let Some(frame) = read_frame(&mut up_rd).await {
        let cid = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
        let fault = pending.lock().unwrap().remove(&cid);
        match fault {
            Some(Fault::Drop) => break,
            Some(Fault::Delay) => tokio::time::sleep(DELAY).await,
            None => {}
        }
        if client_wr.write_all(&frame).await.is_err() {
            break;
        }
    }
    requests.abort();
}

async fn run_proxy(proxy: Arc<Proxy>, listener: TcpListener) {
    while let Ok((client, _)) = listener.accept().await {
        tokio::spawn(proxy_connection(proxy.clone(), client));
    }
}

#[test]
fn retried_produce_requests_write_no_duplicates_and_no_gaps() {
    const MESSAGES: usize = 30_000;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let listener = runtime
        .block_on(TcpListener::bind("127.0.0.1:0"))
        .expect("proxy listener");
    let proxy_port = listener.local_addr().expect("proxy addr").port();
    // Clients learn the proxy's address from Metadata, so every connection goes through it.
    let advertised = format!("PLAINTEXT://127.0.0.1:{proxy_port}");
    let broker = Broker::start_with(&[("advertised.listeners", advertised.as_str())]);
    let proxy = Arc::new(Proxy {
        produce_requests: AtomicUsize::new(0),
        faults: AtomicUsize::new(0),
        broker_port: AtomicU16::new(broker.port),
    });
    runtime.spawn(run_proxy(proxy.clone(), listener));
    Raw::connect(&broker).create_topic("idem-retries", PARTITIONS);

    let via_proxy = format!("127.0.0.1:{proxy_port}");
    produce_idempotently(
        &via_proxy,
        "idem-retries",
        MESSAGES,
        &[
            ("request.timeout.ms", "1000"),
            ("message.timeout.ms", "180000"),
            ("retry.backoff.ms", "50"),
            ("batch.num.messages", "500"),
        ],
    );
    let faults = proxy.faults.load(Ordering::Relaxed).min(MAX_FAULTS);
    assert!(
        faults >= 4,
        "only {faults} faults were injected; the test proves nothing"
    );

    let partitions = read_back(&via_proxy, "idem-retries");
    assert_exactly_once_in_order(&partitions, MESSAGES);
    runtime.shutdown_background();
}

// ---------------------------------------------------------------------------------------------
// (c) the protocol rules, raw
// ---------------------------------------------------------------------------------------------

#[test]
fn raw_duplicates_gaps_and_fenced_epochs() {
    let broker = Broker::start();
    let mut c = Raw::connect(&broker);
    c.create_topic("idem-raw", 1);
    let (code, pid, epoch) = c.init_producer_id(4, None);
    assert_eq!((code, epoch), (0, 0));
    assert!(pid >= 0);

    // Phase 1: the same batch twice gets the same base offset; the log holds it once.
    assert_eq!(c.produce("idem-raw", batch(pid, 0, 0, 3)), (0, 0));
    assert_eq!(
        c.produce("idem-raw", batch(pid, 0, 0, 3)),
        (0, 0),
        "retry of the first batch"
    );
    assert_eq!(c.produce("idem-raw", batch(pid, 0, 3, 2)), (0, 3));
    assert_eq!(
        c.produce("idem-raw", batch(pid, 0, 0, 3)),
        (0, 0),
        "retry of an older batch"
    );

    // Phase 2: a sequence gap is refused and writes nothing.
    let (code, _) = c.produce("idem-raw", batch(pid, 0, 9, 1));
    assert_eq!(code, OUT_OF_ORDER_SEQUENCE_NUMBER);

    // Phase 3: a bumped epoch starts at 0; the old epoch is then fenced.
    assert_eq!(c.produce("idem-raw", batch(pid, 1, 0, 1)), (0, 5));
    let (code, _) = c.produce("idem-raw", batch(pid, 0, 5, 1));
    assert_eq!(code, INVALID_PRODUCER_EPOCH);

    // Nothing refused or duplicated reached the log: the next plain batch lands at offset 6.
    assert_eq!(c.produce("idem-raw", batch(-1, -1, 0, 1)), (0, 6));

    // DescribeProducers shows what the partition remembers.
    let described = c.describe_producers("idem-raw", 0);
    assert_eq!(described.error_code, 0);
    let states: Vec<(i64, i32, i32)> = described
        .active_producers
        .iter()
        .map(|p| (p.producer_id, p.producer_epoch, p.last_sequence))
        .collect();
    assert_eq!(states, vec![(pid, 1, 0)]);
    assert_eq!(
        c.describe_producers("idem-raw", 7).error_code,
        UNKNOWN_TOPIC_OR_PARTITION
    );

    // A second producer gets another id; every InitProducerId version answers.
    let mut seen = HashSet::from([pid]);
    for version in 0..=5 {
        let (code, next, epoch) = c.init_producer_id(version, None);
        assert_eq!((code, epoch), (0, 0), "v{version}");
        assert!(seen.insert(next), "producer id {next} handed out twice");
    }
    // A transactional id draws from the same blocks: another fresh id, epoch 0.
    let (code, txn_pid, epoch) = c.init_producer_id(4, Some("txn-1"));
    assert_eq!((code, epoch), (0, 0));
    assert!(seen.insert(txn_pid), "producer id {txn_pid} handed out twice");
}

// ---------------------------------------------------------------------------------------------
// (d) kill -9
// ---------------------------------------------------------------------------------------------

#[test]
fn producer_state_and_ids_survive_kill_9() {
    let mut broker = Broker::start();
    let mut c = Raw::connect(&broker);
    c.create_topic("idem-crash", 1);
    let mut handed_out = HashSet::new();
    for _ in 0..5 {
        let (code, pid, _) = c.init_producer_id(4, None);
        assert_eq!(code, 0);
        handed_out.insert(pid);
    }
    let pid = *handed_out.iter().max().expect("ids");
    let mut seq = 0;
    for i in 0..20 {
        assert_eq!(c.produce("idem-crash", batch(pid, 0, seq, 2)), (0, i * 2));
        seq += 2;
    }
    drop(c);

    broker.kill9();
    broker.restart();

    let mut c = Raw::connect(&broker);
    // The last batch, retried after the crash, is still recognised.
    assert_eq!(c.produce("idem-crash", batch(pid, 0, seq - 2, 2)), (0, 38));
    // So is one four batches back; and the producer continues where it was.
    assert_eq!(c.produce("idem-crash", batch(pid, 0, seq - 8, 2)), (0, 32));
    let (code, _) = c.produce("idem-crash", batch(pid, 0, seq + 4, 2));
    assert_eq!(code, OUT_OF_ORDER_SEQUENCE_NUMBER);
    assert_eq!(c.produce("idem-crash", batch(pid, 0, seq, 2)), (0, 40));
    // Producer ids never repeat across the restart.
    for _ in 0..5 {
        let (code, next, _) = c.init_producer_id(4, None);
        assert_eq!(code, 0);
        assert!(
            handed_out.insert(next),
            "producer id {next} was handed out before the crash"
        );
    }
}
