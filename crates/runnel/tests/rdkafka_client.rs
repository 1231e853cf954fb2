//! librdkafka (through the `rdkafka` crate) against the real broker binary: create a topic with
//! 3 partitions through the admin API, produce 100 000 keyed messages with headers and explicit
//! timestamps with every codec, consume them back in per-partition order with everything intact,
//! look offsets up by timestamp, and describe the topic's configs.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{DeliveryResult, Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

const MESSAGES: usize = 100_000;
const PARTITIONS: i32 = 3;
const TIMEOUT: Duration = Duration::from_secs(30);

fn admin(bootstrap: &str) -> AdminClient<DefaultClientContext> {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("admin client")
}

async fn create_topic(bootstrap: &str, name: &str) {
    let admin = admin(bootstrap);
    let topic = NewTopic::new(name, PARTITIONS, TopicReplication::Fixed(1)).set("retention.ms", "3600000");
    let results = admin
        .create_topics(&[topic], &AdminOptions::new())
        .await
        .expect("create_topics");
    for r in results {
        r.unwrap_or_else(|(t, e)| panic!("creating {t} failed: {e:?}"));
    }
}

#[derive(Default)]
struct Counting {
    failed: AtomicUsize,
}

impl ClientContext for Counting {}

impl ProducerContext for Counting {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((e, _)) = result {
            eprintln!("delivery failed: {e}");
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn key_of(i: usize) -> String {
    format!("key-{}", i % 997)
}

fn value_of(i: usize, codec: &str) -> String {
    format!("{i:08}|{codec}|{}", "v".repeat(i % 50))
}

fn produce_all(bootstrap: &str, topic: &str, codec: &str, base_ts: i64) {
    let producer: BaseProducer<Counting> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("compression.codec", codec)
        .set("enable.idempotence", "false")
        .set("linger.ms", "5")
        .set("queue.buffering.max.messages", "200000")
        .create_with_context(Counting::default())
        .expect("producer");
    for i in 0..MESSAGES {
        let key = key_of(i);
        let value = value_of(i, codec);
        let seq = i.to_string();
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: "seq",
                value: Some(seq.as_str()),
            })
            .insert(Header {
                key: "codec",
                value: Some(codec),
            })
            .insert(Header {
                key: "empty",
                value: None::<&str>,
            });
        let mut record = BaseRecord::to(topic)
            .key(&key)
            .payload(&value)
            .headers(headers)
            .timestamp(base_ts + i as i64);
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
    producer.flush(Duration::from_secs(60)).expect("flush");
    assert_eq!(
        producer.context().failed.load(Ordering::Relaxed),
        0,
        "deliveries failed"
    );
}

struct Consumed {
    seq: usize,
    partition: i32,
    offset: i64,
    timestamp: i64,
}

fn consume_all(bootstrap: &str, topic: &str, codec: &str, base_ts: i64) -> Vec<Consumed> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "unused-for-assign")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset(topic, p, Offset::Beginning).expect("tpl");
    }
    consumer.assign(&tpl).expect("assign");
    let mut out = Vec::with_capacity(MESSAGES);
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while out.len() < MESSAGES {
        assert!(
            std::time::Instant::now() < deadline,
            "consumed only {} of {MESSAGES}",
            out.len()
        );
        let Some(msg) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let msg = msg.expect("consume error");
        let value = std::str::from_utf8(msg.payload().expect("payload")).expect("utf8");
        let seq: usize = value[..8].parse().expect("seq");
        assert_eq!(value, value_of(seq, codec), "value of {seq}");
        assert_eq!(msg.key(), Some(key_of(seq).as_bytes()), "key of {seq}");
        assert_eq!(
            msg.timestamp().to_millis(),
            Some(base_ts + seq as i64),
            "timestamp of {seq}"
        );
        let headers = msg.headers().expect("headers");
        assert_eq!(headers.count(), 3, "header count of {seq}");
        let h: Vec<(String, Option<Vec<u8>>)> = headers
            .iter()
            .map(|h| (h.key.to_string(), h.value.map(<[u8]>::to_vec)))
            .collect();
        assert_eq!(h[0], ("seq".to_string(), Some(seq.to_string().into_bytes())));
        assert_eq!(h[1], ("codec".to_string(), Some(codec.as_bytes().to_vec())));
        assert_eq!(h[2], ("empty".to_string(), None));
        out.push(Consumed {
            seq,
            partition: msg.partition(),
            offset: msg.offset(),
            timestamp: base_ts + seq as i64,
        });
    }
    out
}

/// Per partition: offsets are 0, 1, 2, ... and sequence numbers increase (producer order).
fn check_order(consumed: &[Consumed]) {
    let mut seen = vec![false; MESSAGES];
    let mut by_partition: HashMap<i32, Vec<&Consumed>> = HashMap::new();
    for c in consumed {
        assert!(!seen[c.seq], "message {} delivered twice", c.seq);
        seen[c.seq] = true;
        by_partition.entry(c.partition).or_default().push(c);
    }
    assert_eq!(
        by_partition.len(),
        PARTITIONS as usize,
        "keys should spread over every partition"
    );
    for (p, msgs) in by_partition {
        for (i, m) in msgs.iter().enumerate() {
            assert_eq!(m.offset, i as i64, "partition {p}: offsets are dense from 0");
            if i > 0 {
                assert!(
                    m.seq > msgs[i - 1].seq,
                    "partition {p}: {} after {}",
                    m.seq,
                    msgs[i - 1].seq
                );
            }
        }
    }
}

fn check_offsets_for_times(bootstrap: &str, topic: &str, consumed: &[Consumed], base_ts: i64) {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "lookup")
        .create()
        .expect("consumer");
    for target in [
        base_ts,
        base_ts + (MESSAGES / 2) as i64 + 7,
        base_ts + MESSAGES as i64 + 1000,
    ] {
        let mut tpl = TopicPartitionList::new();
        for p in 0..PARTITIONS {
            tpl.add_partition_offset(topic, p, Offset::Offset(target)).expect("tpl");
        }
        let answer = consumer.offsets_for_times(tpl, TIMEOUT).expect("offsets_for_times");
        for p in 0..PARTITIONS {
            let expected = consumed
                .iter()
                .filter(|c| c.partition == p && c.timestamp >= target)
                .map(|c| c.offset)
                .min();
            let got = answer.find_partition(topic, p).expect("partition").offset();
            match expected {
                Some(o) => assert_eq!(got, Offset::Offset(o), "partition {p}, ts {target}"),
                None => assert_eq!(got, Offset::End, "partition {p}, ts {target}: no such offset"),
            }
        }
    }
}

async fn check_configs(bootstrap: &str, topic: &str) {
    let admin = admin(bootstrap);
    let results = admin
        .describe_configs(&[ResourceSpecifier::Topic(topic)], &AdminOptions::new())
        .await
        .expect("describe");
    let resource = results.into_iter().next().expect("one result").expect("describe ok");
    let get = |name: &str| resource.get(name).unwrap_or_else(|| panic!("{name} missing"));
    let retention = get("retention.ms");
    assert_eq!(retention.value.as_deref(), Some("3600000"));
    assert_eq!(retention.source, rdkafka::admin::ConfigSource::DynamicTopic);
    assert_eq!(get("cleanup.policy").value.as_deref(), Some("delete"));
    assert_eq!(get("cleanup.policy").source, rdkafka::admin::ConfigSource::Default);
    assert_eq!(get("max.message.bytes").value.as_deref(), Some("1048588"));
    assert!(
        resource.entries.len() >= 25,
        "every topic config is described, got {}",
        resource.entries.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn librdkafka_round_trip_with_every_codec() {
    let broker = common::Broker::start();
    let bootstrap = broker.bootstrap();
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
        let topic = format!("rdkafka-{codec}");
        let base_ts = 1_700_000_000_000i64;
        create_topic(&bootstrap, &topic).await;
        let (b, t) = (bootstrap.clone(), topic.clone());
        let consumed = tokio::task::spawn_blocking(move || {
            produce_all(&b, &t, codec, base_ts);
            consume_all(&b, &t, codec, base_ts)
        })
        .await
        .expect("produce/consume");
        check_order(&consumed);
        let (b, t) = (bootstrap.clone(), topic.clone());
        tokio::task::spawn_blocking(move || check_offsets_for_times(&b, &t, &consumed, base_ts))
            .await
            .expect("lookup");
        check_configs(&bootstrap, &topic).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creating_an_existing_topic_is_refused() {
    let broker = common::Broker::start();
    create_topic(&broker.bootstrap(), "twice").await;
    let admin = admin(&broker.bootstrap());
    let again = NewTopic::new("twice", PARTITIONS, TopicReplication::Fixed(1));
    let results = admin
        .create_topics(&[again], &AdminOptions::new())
        .await
        .expect("create_topics");
    assert!(
        matches!(results[0], Err((_, RDKafkaErrorCode::TopicAlreadyExists))),
        "{results:?}"
    );
    let bad = NewTopic::new("bad/name", 1, TopicReplication::Fixed(1));
    let results = admin
        .create_topics(&[bad], &AdminOptions::new())
        .await
        .expect("create_topics");
    assert!(
        matches!(results[0], Err((_, RDKafkaErrorCode::InvalidTopic))),
        "{results:?}"
    );
}
