//! Admin and data-path APIs against the real binary, through a typed raw client
//! (`common/kafka.rs`), at the oldest and newest version the broker advertises. Apache Kafka 4.x
//! is the reference: every assertion states what Kafka answers, so it fails if the broker differs.
//!
//! Most cases share one broker (started on first use, killed when the last concurrently running
//! case drops it) and use their own topic names, so the file stays fast.
//!
//! A case marked `#[ignore = "bug: ..."]` documents a known difference from Kafka; it stays
//! ignored until the broker is fixed (`cargo test -p runnel --test admin_apis -- --ignored`).

mod common;
#[path = "common/kafka.rs"]
mod kafka;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use common::{wait_for, Broker};
use kafka::Client;
use runnel_broker::apis::{advertised_range, SUPPORTED};
use runnel_protocol::codec::Uuid;
use runnel_protocol::generated::alter_configs_request::{self as ac, AlterConfigsRequest};
use runnel_protocol::generated::api_versions_request::ApiVersionsRequest;
use runnel_protocol::generated::api_versions_response::ApiVersionsResponse;
use runnel_protocol::generated::create_partitions_request::{CreatePartitionsRequest, CreatePartitionsTopic};
use runnel_protocol::generated::create_topics_request::{
    CreatableReplicaAssignment, CreatableTopic, CreatableTopicConfig, CreateTopicsRequest,
};
use runnel_protocol::generated::create_topics_response::CreatableTopicResult;
use runnel_protocol::generated::delete_records_request::{
    DeleteRecordsPartition, DeleteRecordsRequest, DeleteRecordsTopic,
};
use runnel_protocol::generated::delete_topics_request::{DeleteTopicState, DeleteTopicsRequest};
use runnel_protocol::generated::describe_cluster_request::DescribeClusterRequest;
use runnel_protocol::generated::describe_configs_request::{DescribeConfigsRequest, DescribeConfigsResource};
use runnel_protocol::generated::describe_configs_response::{DescribeConfigsResourceResult, DescribeConfigsResult};
use runnel_protocol::generated::describe_log_dirs_request::{DescribableLogDirTopic, DescribeLogDirsRequest};
use runnel_protocol::generated::describe_topic_partitions_request::{
    Cursor, DescribeTopicPartitionsRequest, TopicRequest,
};
use runnel_protocol::generated::fetch_request::{FetchPartition, FetchRequest, FetchTopic};
use runnel_protocol::generated::fetch_response::{FetchResponse, PartitionData};
use runnel_protocol::generated::incremental_alter_configs_request::{self as iac, IncrementalAlterConfigsRequest};
use runnel_protocol::generated::list_offsets_request::{ListOffsetsPartition, ListOffsetsRequest, ListOffsetsTopic};
use runnel_protocol::generated::list_offsets_response::ListOffsetsPartitionResponse;
use runnel_protocol::generated::metadata_request::{MetadataRequest, MetadataRequestTopic};
use runnel_protocol::generated::metadata_response::{MetadataResponse, MetadataResponseTopic};
use runnel_protocol::generated::offset_for_leader_epoch_request::{
    OffsetForLeaderEpochRequest, OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use runnel_protocol::generated::produce_request::{PartitionProduceData, ProduceRequest, TopicProduceData};
use runnel_protocol::generated::produce_response::PartitionProduceResponse;
use runnel_protocol::generated::{ApiKey, ResponseBody};
use runnel_protocol::records::{batches, decode_records, encode_batch, BatchBuilderParams, Compression, Record};

// Error codes (Kafka's `Errors`).
const NONE: i16 = 0;
const OFFSET_OUT_OF_RANGE: i16 = 1;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const LEADER_NOT_AVAILABLE: i16 = 5;
const MESSAGE_TOO_LARGE: i16 = 10;
const INVALID_TOPIC_EXCEPTION: i16 = 17;
const NOT_ENOUGH_REPLICAS: i16 = 19;
const INVALID_TIMESTAMP: i16 = 32;
const TOPIC_ALREADY_EXISTS: i16 = 36;
const INVALID_PARTITIONS: i16 = 37;
const INVALID_REPLICATION_FACTOR: i16 = 38;
const INVALID_CONFIG: i16 = 40;
const UNKNOWN_LEADER_EPOCH: i16 = 75;
const INVALID_RECORD: i16 = 87;
const UNKNOWN_TOPIC_ID: i16 = 100;
const MISMATCHED_ENDPOINT_TYPE: i16 = 114;
const UNSUPPORTED_ENDPOINT_TYPE: i16 = 115;

// Config sources (DescribeConfigs v1+).
const DYNAMIC_TOPIC_CONFIG: i8 = 1;
const STATIC_BROKER_CONFIG: i8 = 4;
const DEFAULT_CONFIG: i8 = 5;

const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;

/// Settings of the shared broker besides the harness's own (`listeners`, `log.dirs`,
/// `group.initial.rebalance.delay.ms`): every one must show as STATIC_BROKER_CONFIG.
const SHARED_OVERRIDES: &[(&str, &str)] = &[("num.partitions", "4")];
const HARNESS_OVERRIDES: &[&str] = &[
    "listeners",
    "log.dirs",
    "group.initial.rebalance.delay.ms",
    "runnel.http.listener",
];

static SHARED: Mutex<Weak<Broker>> = Mutex::new(Weak::new());

/// The shared broker; a new one starts if no running case holds the previous one.
fn shared() -> Arc<Broker> {
    let mut slot = SHARED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(b) = slot.upgrade() {
        return b;
    }
    let b = Arc::new(Broker::start_with(SHARED_OVERRIDES));
    *slot = Arc::downgrade(&b);
    b
}

fn client(b: &Broker) -> Client {
    Client::connect(&b.bootstrap())
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_millis() as i64
}

// ---------------------------------------------------------------------------------------------
// Request builders and small wrappers
// ---------------------------------------------------------------------------------------------

fn topic_spec(name: &str, partitions: i32, configs: &[(&str, &str)]) -> CreatableTopic {
    CreatableTopic {
        name: name.into(),
        num_partitions: partitions,
        replication_factor: 1,
        configs: configs
            .iter()
            .map(|(k, v)| CreatableTopicConfig {
                name: k.to_string(),
                value: Some(v.to_string()),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

fn create_raw(c: &mut Client, version: i16, topic: CreatableTopic, validate_only: bool) -> CreatableTopicResult {
    let mut r = c.send(
        version,
        CreateTopicsRequest {
            topics: vec![topic],
            timeout_ms: 10_000,
            validate_only,
            ..Default::default()
        },
    );
    assert_eq!(r.topics.len(), 1, "CreateTopics v{version}: one result");
    r.topics.remove(0)
}

fn create(c: &mut Client, name: &str, partitions: i32, configs: &[(&str, &str)]) -> CreatableTopicResult {
    let r = create_raw(c, 7, topic_spec(name, partitions, configs), false);
    assert_eq!(r.error_code, NONE, "create {name}: {:?}", r.error_message);
    r
}

fn metadata(c: &mut Client, version: i16, names: &[&str], auto_create: bool) -> MetadataResponse {
    c.send(
        version,
        MetadataRequest {
            topics: Some(
                names
                    .iter()
                    .map(|n| MetadataRequestTopic {
                        name: Some(n.to_string()),
                        ..Default::default()
                    })
                    .collect(),
            ),
            allow_auto_topic_creation: auto_create,
            ..Default::default()
        },
    )
}

fn topic_md(c: &mut Client, version: i16, name: &str) -> MetadataResponseTopic {
    let mut r = metadata(c, version, &[name], false);
    assert_eq!(r.topics.len(), 1, "Metadata v{version} for {name}");
    r.topics.remove(0)
}

/// Records `k{i}` → `value_len` bytes, timestamps `base_ts + ts_step_ms * i`.
fn records(n: usize, value_len: usize, ts_step_ms: i64) -> Vec<Record> {
    (0..n)
        .map(|i| Record {
            attributes: 0,
            timestamp_delta: ts_step_ms * i as i64,
            offset_delta: i as i32,
            key: Some(Bytes::from(format!("k{i}"))),
            value: Some(Bytes::from(vec![b'a' + (i % 26) as u8; value_len])),
            headers: Vec::new(),
        })
        .collect()
}

fn batch_at(base_ts: i64, recs: &[Record], compression: Compression) -> Bytes {
    let params = BatchBuilderParams {
        base_timestamp: base_ts,
        ..Default::default()
    };
    encode_batch(&params, recs, compression).expect("encode batch")
}

fn batch(n: usize, value_len: usize) -> Bytes {
    batch_at(now_ms(), &records(n, value_len, 0), Compression::None)
}

fn produce_request(topic: &str, partition: i32, records: Bytes, acks: i16) -> ProduceRequest {
    ProduceRequest {
        transactional_id: None,
        acks,
        timeout_ms: 10_000,
        topic_data: vec![TopicProduceData {
            name: topic.into(),
            partition_data: vec![PartitionProduceData {
                index: partition,
                records: Some(records),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn produce_v(c: &mut Client, version: i16, topic: &str, partition: i32, records: Bytes) -> PartitionProduceResponse {
    let mut r = c.send(version, produce_request(topic, partition, records, -1));
    assert_eq!(r.responses.len(), 1, "Produce v{version}: one topic");
    let mut t = r.responses.remove(0);
    assert_eq!(t.partition_responses.len(), 1, "Produce v{version}: one partition");
    t.partition_responses.remove(0)
}

/// Produces and insists on success; returns the base offset.
fn produce_ok(c: &mut Client, topic: &str, partition: i32, records: Bytes) -> i64 {
    let p = produce_v(c, 11, topic, partition, records);
    assert_eq!(
        p.error_code, NONE,
        "produce to {topic}-{partition}: {:?}",
        p.error_message
    );
    p.base_offset
}

fn fetch_partition(partition: i32, offset: i64, partition_max_bytes: i32) -> FetchPartition {
    FetchPartition {
        partition,
        fetch_offset: offset,
        partition_max_bytes,
        ..Default::default()
    }
}

fn fetch_request(topic: &str, partitions: Vec<FetchPartition>) -> FetchRequest {
    FetchRequest {
        max_wait_ms: 0,
        min_bytes: 0,
        max_bytes: 50 << 20,
        topics: vec![FetchTopic {
            topic: topic.into(),
            partitions,
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// A fetch of `topic` as a client at `version` sends it: by topic id from v13 (Kafka ignores
/// names there), by name before.
fn fetch_req(c: &mut Client, version: i16, topic: &str, partitions: Vec<FetchPartition>) -> FetchRequest {
    let mut req = fetch_request(topic, partitions);
    if version >= 13 {
        let id = topic_md(c, 12, topic).topic_id;
        assert_ne!(id, Uuid::ZERO, "{topic} has a topic id");
        req.topics[0].topic = String::new();
        req.topics[0].topic_id = id;
    }
    req
}

fn only_partition(r: FetchResponse) -> PartitionData {
    assert_eq!(r.error_code, NONE, "Fetch top-level error");
    let mut topics = r.responses;
    assert_eq!(topics.len(), 1, "Fetch: one topic");
    let mut parts = topics.remove(0).partitions;
    assert_eq!(parts.len(), 1, "Fetch: one partition");
    parts.remove(0)
}

fn fetch_one(c: &mut Client, version: i16, topic: &str, partition: i32, offset: i64) -> PartitionData {
    let req = fetch_req(c, version, topic, vec![fetch_partition(partition, offset, 1 << 20)]);
    only_partition(c.send(version, req))
}

/// Every record (offset, record) in a fetched record set, in order.
fn fetched_records(data: &[u8]) -> Vec<(i64, Record)> {
    let mut out = Vec::new();
    for b in batches(data) {
        let (header, bytes) = b.expect("fetched batch is well formed");
        for r in decode_records(bytes, 64 << 20).expect("fetched records decode") {
            out.push((header.base_offset + i64::from(r.offset_delta), r));
        }
    }
    out
}

fn list_offset(
    c: &mut Client,
    version: i16,
    topic: &str,
    partition: i32,
    timestamp: i64,
) -> ListOffsetsPartitionResponse {
    let mut r = c.send(
        version,
        ListOffsetsRequest {
            replica_id: -1,
            topics: vec![ListOffsetsTopic {
                name: topic.into(),
                partitions: vec![ListOffsetsPartition {
                    partition_index: partition,
                    timestamp,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        },
    );
    assert_eq!(r.topics.len(), 1, "ListOffsets v{version}: one topic");
    let mut t = r.topics.remove(0);
    assert_eq!(t.partitions.len(), 1, "ListOffsets v{version}: one partition");
    t.partitions.remove(0)
}

fn describe_configs(
    c: &mut Client,
    version: i16,
    resource_type: i8,
    name: &str,
    keys: Option<&[&str]>,
    synonyms: bool,
    docs: bool,
) -> DescribeConfigsResult {
    let mut r = c.send(
        version,
        DescribeConfigsRequest {
            resources: vec![DescribeConfigsResource {
                resource_type,
                resource_name: name.into(),
                configuration_keys: keys.map(|k| k.iter().map(|s| s.to_string()).collect()),
                ..Default::default()
            }],
            include_synonyms: synonyms,
            include_documentation: docs,
            ..Default::default()
        },
    );
    assert_eq!(r.results.len(), 1, "DescribeConfigs v{version}: one result");
    r.results.remove(0)
}

fn topic_configs(c: &mut Client, topic: &str) -> BTreeMap<String, DescribeConfigsResourceResult> {
    let r = describe_configs(c, 4, RESOURCE_TOPIC, topic, None, false, false);
    assert_eq!(r.error_code, NONE, "DescribeConfigs {topic}: {:?}", r.error_message);
    r.configs.into_iter().map(|e| (e.name.clone(), e)).collect()
}

fn config_value(c: &mut Client, topic: &str, key: &str) -> (Option<String>, i8) {
    let all = topic_configs(c, topic);
    let e = all.get(key).unwrap_or_else(|| panic!("{topic} has no config {key}"));
    (e.value.clone(), e.config_source)
}

fn node_id(c: &mut Client) -> i32 {
    let md = metadata(c, 12, &[], false);
    assert_eq!(md.brokers.len(), 1, "one broker");
    md.brokers[0].node_id
}

// ---------------------------------------------------------------------------------------------
// ApiVersions
// ---------------------------------------------------------------------------------------------

fn advertised(r: &ApiVersionsResponse) -> BTreeSet<(i16, i16, i16)> {
    r.api_keys
        .iter()
        .map(|k| (k.api_key, k.min_version, k.max_version))
        .collect()
}

/// ApiVersions lists what the broker serves, except Produce, listed from v0 as Kafka 4.0 does:
/// older librdkafka compresses with gzip, snappy or lz4 only if Produce v0 is listed
/// (`apis::advertised_range`). Requests below v3 are still refused (`bad_input.rs`).
#[test]
fn api_versions_ranges_equal_supported_at_every_version() {
    let b = shared();
    let expected: BTreeSet<(i16, i16, i16)> = SUPPORTED
        .iter()
        .map(|(k, min, max)| {
            let (min, max) = advertised_range(*k, *min, *max);
            (*k as i16, min, max)
        })
        .collect();
    let mut c = client(&b);
    for version in [0, 3, 4] {
        let r = c.send(version, ApiVersionsRequest::default());
        assert_eq!(r.error_code, NONE, "ApiVersions v{version}");
        assert_eq!(advertised(&r), expected, "ApiVersions v{version} ranges");
        let produce = r.api_keys.iter().find(|k| k.api_key == ApiKey::Produce as i16);
        assert_eq!(
            produce.map(|k| (k.min_version, k.max_version)),
            Some((0, 11)),
            "ApiVersions v{version}: Produce is listed as v0-11"
        );
    }
}

#[test]
fn api_versions_v3_sends_no_unset_feature_tags() {
    let b = shared();
    let mut c = client(&b);
    for version in [3, 4] {
        let frame = c.send_frame(version, ApiVersionsRequest::default(), ApiKey::ApiVersions);
        let (_, body) =
            runnel_protocol::frame::decode_response(frame.clone(), ApiKey::ApiVersions, version).expect("decode");
        let ResponseBody::ApiVersions(r) = body else {
            panic!("not ApiVersions")
        };
        // Re-encoding writes only tagged fields whose value differs from the default; a longer
        // frame means the broker sent feature tags holding their "unset" values, which breaks
        // librdkafka 2.0 (COMPAT.md).
        let mut again = BytesMut::new();
        ResponseBody::ApiVersions(r.clone())
            .encode(&mut again, version)
            .expect("encode");
        let header_len = 4; // correlation id; ApiVersions responses always use header v0
        assert_eq!(
            frame.len() - header_len,
            again.len(),
            "ApiVersions v{version}: response carries tagged fields set to defaults: {r:?}"
        );
        assert_eq!(r.finalized_features_epoch == -1, r.finalized_features.is_empty());
        assert!(
            !r.zk_migration_ready,
            "ApiVersions v{version}: zk_migration_ready on a KRaft broker"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Metadata
// ---------------------------------------------------------------------------------------------

#[test]
fn metadata_auto_creates_with_num_partitions_at_v0_and_v12() {
    let b = shared();
    let mut c = client(&b);
    for version in [0, 4, 12] {
        let name = format!("md-auto-v{version}");
        let t = wait_for("auto-created topic", Duration::from_secs(10), || {
            let t = metadata(&mut c, version, &[&name], true).topics.remove(0);
            match t.error_code {
                NONE => Some(t),
                LEADER_NOT_AVAILABLE => None,
                other => panic!("Metadata v{version} auto-create {name}: error {other}"),
            }
        });
        assert_eq!(t.name.as_deref(), Some(name.as_str()));
        assert_eq!(
            t.partitions.len(),
            4,
            "Metadata v{version}: num.partitions=4 is honoured"
        );
        let mut idx: Vec<i32> = t.partitions.iter().map(|p| p.partition_index).collect();
        idx.sort();
        assert_eq!(idx, vec![0, 1, 2, 3]);
        if version >= 10 {
            assert_ne!(t.topic_id, Uuid::ZERO, "Metadata v{version}: topic id");
        }
    }
}

#[test]
fn metadata_without_auto_creation_and_with_bad_names() {
    let b = shared();
    let mut c = client(&b);
    for version in [4, 12] {
        let name = format!("md-noauto-v{version}");
        for _ in 0..2 {
            let t = metadata(&mut c, version, &[&name], false).topics.remove(0);
            assert_eq!(
                t.error_code, UNKNOWN_TOPIC_OR_PARTITION,
                "Metadata v{version} no auto-create"
            );
            assert!(t.partitions.is_empty());
        }
    }
    for version in [0, 12] {
        for bad in ["bad/name", "..", "has space"] {
            let t = metadata(&mut c, version, &[bad], true).topics.remove(0);
            assert_eq!(
                t.error_code, INVALID_TOPIC_EXCEPTION,
                "Metadata v{version} topic {bad:?}"
            );
        }
    }
}

#[test]
fn metadata_topic_ids_brokers_and_controller() {
    let b = shared();
    let mut c = client(&b);
    let created = create(&mut c, "md-ids", 2, &[]);
    let id = created.topic_id;
    assert_ne!(id, Uuid::ZERO, "CreateTopics v7 returns the topic id");
    for version in [10, 12] {
        let t = topic_md(&mut c, version, "md-ids");
        assert_eq!(t.topic_id, id, "Metadata v{version} topic id equals CreateTopics'");
    }
    // v12: lookup by id only.
    let r = c.send(
        12,
        MetadataRequest {
            topics: Some(vec![MetadataRequestTopic {
                topic_id: id,
                name: None,
                ..Default::default()
            }]),
            allow_auto_topic_creation: false,
            ..Default::default()
        },
    );
    assert_eq!(r.topics.len(), 1);
    assert_eq!(r.topics[0].error_code, NONE, "Metadata v12 by topic id");
    assert_eq!(r.topics[0].name.as_deref(), Some("md-ids"));
    assert_eq!(r.topics[0].partitions.len(), 2);
    let r = c.send(
        12,
        MetadataRequest {
            topics: Some(vec![MetadataRequestTopic {
                topic_id: Uuid([7; 16]),
                name: None,
                ..Default::default()
            }]),
            allow_auto_topic_creation: false,
            ..Default::default()
        },
    );
    assert_eq!(r.topics[0].error_code, UNKNOWN_TOPIC_ID, "Metadata v12 by unknown id");

    for version in [0, 1, 12] {
        let md = metadata(&mut c, version, &["md-ids"], false);
        assert_eq!(md.brokers.len(), 1, "Metadata v{version}: one broker");
        let br = &md.brokers[0];
        assert_eq!(
            br.host, "127.0.0.1",
            "Metadata v{version}: advertised host of our listener"
        );
        assert_eq!(
            br.port,
            i32::from(b.port),
            "Metadata v{version}: advertised port of our listener"
        );
        assert_eq!(br.port, i32::from(c.peer_port()));
        if version >= 1 {
            assert_eq!(
                md.controller_id, br.node_id,
                "Metadata v{version}: controller is a real broker id"
            );
        }
        let t = &md.topics[0];
        for p in &t.partitions {
            assert_eq!(p.leader_id, br.node_id, "leader is our broker");
            assert_eq!(p.replica_nodes, vec![br.node_id]);
            assert_eq!(p.isr_nodes, vec![br.node_id]);
        }
    }
    let md = metadata(&mut c, 12, &[], false);
    let cid = md.cluster_id.expect("cluster id (v2+)");
    assert!(!cid.is_empty());
}

// ---------------------------------------------------------------------------------------------
// CreateTopics
// ---------------------------------------------------------------------------------------------

/// Creating a topic opens one log per partition. Other connections go on being served
/// meanwhile: produces to another topic complete while the new topic's partition directories
/// are still appearing (before, the partition map stayed write-locked for the whole creation,
/// so every produce and fetch, and the async worker serving it, waited for all of it).
#[test]
fn creating_a_wide_topic_does_not_stall_other_connections() {
    const PARTITIONS: i32 = 2000;
    let b = Broker::start();
    let mut producer = client(&b);
    create(&mut producer, "steady", 1, &[]);
    produce_ok(&mut producer, "steady", 0, batch(1, 10));

    let mut creator = client(&b);
    creator.set_read_timeout(Duration::from_secs(300));
    let cid = creator.send_pipelined(
        7,
        CreateTopicsRequest {
            topics: vec![topic_spec("wide", PARTITIONS, &[])],
            timeout_ms: 300_000,
            ..Default::default()
        },
    );
    let created = std::sync::atomic::AtomicBool::new(false);
    let wide_dirs = || {
        std::fs::read_dir(b.data())
            .expect("data dir")
            .filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.file_name().to_string_lossy().starts_with("wide-"))
            })
            .count()
    };
    let (produced, produced_mid_creation) = std::thread::scope(|s| {
        let waiter = s.spawn(|| {
            let r = creator.receive::<CreateTopicsRequest>(7, cid);
            created.store(true, std::sync::atomic::Ordering::Release);
            r
        });
        let (mut produced, mut mid) = (0, 0);
        while !created.load(std::sync::atomic::Ordering::Acquire) {
            produce_ok(&mut producer, "steady", 0, batch(1, 10));
            produced += 1;
            let dirs = wide_dirs();
            if dirs > 0 && dirs < PARTITIONS as usize {
                mid += 1;
            }
        }
        let r = waiter.join().expect("creator thread");
        assert_eq!(r.topics.len(), 1);
        assert_eq!(
            r.topics[0].error_code, NONE,
            "create wide: {:?}",
            r.topics[0].error_message
        );
        (produced, mid)
    });
    assert_eq!(wide_dirs(), PARTITIONS as usize, "every partition of wide has its log");
    assert!(
        produced_mid_creation > 0,
        "no produce completed while wide's {PARTITIONS} partition logs were being created ({produced} in all)"
    );
    assert_eq!(
        topic_md(&mut producer, 12, "wide").partitions.len(),
        PARTITIONS as usize
    );
}

#[test]
fn create_topics_basic_validate_only_and_errors() {
    let b = shared();
    let mut c = client(&b);
    for version in [0, 7] {
        let name = format!("ct-basic-v{version}");
        let r = create_raw(&mut c, version, topic_spec(&name, 3, &[]), false);
        assert_eq!(r.error_code, NONE, "CreateTopics v{version}");
        assert_eq!(topic_md(&mut c, 12, &name).partitions.len(), 3);
        let again = create_raw(&mut c, version, topic_spec(&name, 3, &[]), false);
        assert_eq!(again.error_code, TOPIC_ALREADY_EXISTS, "CreateTopics v{version} twice");

        let bad_rf = create_raw(
            &mut c,
            version,
            CreatableTopic {
                replication_factor: 2,
                ..topic_spec(&format!("ct-rf2-v{version}"), 1, &[])
            },
            false,
        );
        assert_eq!(
            bad_rf.error_code, INVALID_REPLICATION_FACTOR,
            "CreateTopics v{version} RF 2 on one broker"
        );

        let bad_cfg = create_raw(
            &mut c,
            version,
            topic_spec(&format!("ct-badcfg-v{version}"), 1, &[("retention.ms", "soon")]),
            false,
        );
        assert_eq!(
            bad_cfg.error_code, INVALID_CONFIG,
            "CreateTopics v{version} retention.ms=soon"
        );
        for n in [format!("ct-rf2-v{version}"), format!("ct-badcfg-v{version}")] {
            assert_eq!(
                topic_md(&mut c, 12, &n).error_code,
                UNKNOWN_TOPIC_OR_PARTITION,
                "{n} must not exist"
            );
        }
    }
    for version in [1, 7] {
        let name = format!("ct-validate-v{version}");
        let r = create_raw(
            &mut c,
            version,
            topic_spec(&name, 2, &[("cleanup.policy", "compact")]),
            true,
        );
        assert_eq!(r.error_code, NONE, "CreateTopics v{version} validate_only");
        assert_eq!(
            topic_md(&mut c, 12, &name).error_code,
            UNKNOWN_TOPIC_OR_PARTITION,
            "validate_only created {name}"
        );
        assert!(
            !b.data().join(format!("{name}-0")).exists(),
            "validate_only made a partition directory"
        );
        let bad = create_raw(
            &mut c,
            version,
            topic_spec(&name, 2, &[("cleanup.policy", "sometimes")]),
            true,
        );
        assert_eq!(
            bad.error_code, INVALID_CONFIG,
            "CreateTopics v{version} validate_only with a bad config"
        );
    }
}

#[test]
fn create_topics_assignments_configs_and_v5_echo() {
    let b = shared();
    let mut c = client(&b);
    let node = node_id(&mut c);
    for version in [0, 7] {
        let name = format!("ct-assign-v{version}");
        let spec = CreatableTopic {
            name: name.clone(),
            num_partitions: -1,
            replication_factor: -1,
            assignments: (0..3)
                .map(|p| CreatableReplicaAssignment {
                    partition_index: p,
                    broker_ids: vec![node],
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        let r = create_raw(&mut c, version, spec, false);
        assert_eq!(
            r.error_code, NONE,
            "CreateTopics v{version} with assignments: {:?}",
            r.error_message
        );
        let t = topic_md(&mut c, 12, &name);
        assert_eq!(t.partitions.len(), 3);
        assert!(t.partitions.iter().all(|p| p.replica_nodes == vec![node]));
    }
    // Assignment to a broker that does not exist.
    let r = create_raw(
        &mut c,
        7,
        CreatableTopic {
            name: "ct-assign-bad".into(),
            num_partitions: -1,
            replication_factor: -1,
            assignments: vec![CreatableReplicaAssignment {
                partition_index: 0,
                broker_ids: vec![node + 100],
                ..Default::default()
            }],
            ..Default::default()
        },
        false,
    );
    assert_ne!(r.error_code, NONE, "assignment to a missing broker must fail");

    for version in [0, 5, 7] {
        let name = format!("ct-configs-v{version}");
        let r = create_raw(
            &mut c,
            version,
            topic_spec(&name, 3, &[("retention.ms", "123456"), ("cleanup.policy", "compact")]),
            false,
        );
        assert_eq!(r.error_code, NONE);
        if version >= 5 {
            assert_eq!(r.num_partitions, 3, "CreateTopics v{version} num_partitions");
            assert_eq!(r.replication_factor, 1, "CreateTopics v{version} replication_factor");
            let configs = r.configs.expect("CreateTopics v5+ returns configs");
            let get = |k: &str| {
                configs
                    .iter()
                    .find(|e| e.name == k)
                    .unwrap_or_else(|| panic!("{k} in CreateTopics configs"))
            };
            assert_eq!(get("retention.ms").value.as_deref(), Some("123456"));
            assert_eq!(get("retention.ms").config_source, DYNAMIC_TOPIC_CONFIG);
            assert_eq!(get("cleanup.policy").value.as_deref(), Some("compact"));
            assert_eq!(get("max.message.bytes").value.as_deref(), Some("1048588"));
            assert_eq!(get("max.message.bytes").config_source, DEFAULT_CONFIG);
        }
        let all = topic_configs(&mut c, &name);
        assert_eq!(all["retention.ms"].value.as_deref(), Some("123456"));
        assert_eq!(all["retention.ms"].config_source, DYNAMIC_TOPIC_CONFIG);
        assert_eq!(all["cleanup.policy"].value.as_deref(), Some("compact"));
        assert_eq!(all["cleanup.policy"].config_source, DYNAMIC_TOPIC_CONFIG);
        assert_eq!(all["segment.ms"].config_source, DEFAULT_CONFIG);
    }
}

// ---------------------------------------------------------------------------------------------
// DeleteTopics
// ---------------------------------------------------------------------------------------------

fn wait_dir_gone(b: &Broker, topic: &str, partitions: i32) {
    wait_for(
        &format!("{topic} partition directories to disappear"),
        Duration::from_secs(10),
        || {
            let any_left = std::fs::read_dir(b.data())
                .expect("data dir")
                .filter_map(Result::ok)
                .any(|e| {
                    let n = e.file_name().to_string_lossy().into_owned();
                    (0..partitions).any(|p| n == format!("{topic}-{p}") || n.starts_with(&format!("{topic}-{p}.")))
                });
            (!any_left).then_some(())
        },
    );
}

#[test]
fn delete_topics_by_name_and_by_id() {
    let b = shared();
    let mut c = client(&b);
    for version in [0, 6] {
        let name = format!("dt-name-v{version}");
        create(&mut c, &name, 2, &[]);
        produce_ok(&mut c, &name, 1, batch(3, 10));
        assert!(
            b.data().join(format!("{name}-1")).is_dir(),
            "partition directory exists before delete"
        );
        let req = if version >= 6 {
            DeleteTopicsRequest {
                topics: vec![DeleteTopicState {
                    name: Some(name.clone()),
                    topic_id: Uuid::ZERO,
                    ..Default::default()
                }],
                timeout_ms: 10_000,
                ..Default::default()
            }
        } else {
            DeleteTopicsRequest {
                topic_names: vec![name.clone()],
                timeout_ms: 10_000,
                ..Default::default()
            }
        };
        let r = c.send(version, req);
        assert_eq!(r.responses.len(), 1);
        assert_eq!(r.responses[0].error_code, NONE, "DeleteTopics v{version} by name");
        assert_eq!(topic_md(&mut c, 12, &name).error_code, UNKNOWN_TOPIC_OR_PARTITION);
        wait_dir_gone(&b, &name, 2);

        let r = c.send(
            version,
            if version >= 6 {
                DeleteTopicsRequest {
                    topics: vec![DeleteTopicState {
                        name: Some("dt-never".into()),
                        topic_id: Uuid::ZERO,
                        ..Default::default()
                    }],
                    timeout_ms: 10_000,
                    ..Default::default()
                }
            } else {
                DeleteTopicsRequest {
                    topic_names: vec!["dt-never".into()],
                    timeout_ms: 10_000,
                    ..Default::default()
                }
            },
        );
        assert_eq!(
            r.responses[0].error_code, UNKNOWN_TOPIC_OR_PARTITION,
            "DeleteTopics v{version} unknown name"
        );
    }
    // v6 by id.
    let created = create(&mut c, "dt-id", 3, &[]);
    produce_ok(&mut c, "dt-id", 0, batch(3, 10));
    let r = c.send(
        6,
        DeleteTopicsRequest {
            topics: vec![DeleteTopicState {
                name: None,
                topic_id: created.topic_id,
                ..Default::default()
            }],
            timeout_ms: 10_000,
            ..Default::default()
        },
    );
    assert_eq!(r.responses[0].error_code, NONE, "DeleteTopics v6 by id");
    assert_eq!(
        r.responses[0].name.as_deref(),
        Some("dt-id"),
        "DeleteTopics v6 by id names the topic"
    );
    assert_eq!(topic_md(&mut c, 12, "dt-id").error_code, UNKNOWN_TOPIC_OR_PARTITION);
    wait_dir_gone(&b, "dt-id", 3);
    let r = c.send(
        6,
        DeleteTopicsRequest {
            topics: vec![DeleteTopicState {
                name: None,
                topic_id: created.topic_id,
                ..Default::default()
            }],
            timeout_ms: 10_000,
            ..Default::default()
        },
    );
    assert_eq!(
        r.responses[0].error_code, UNKNOWN_TOPIC_ID,
        "DeleteTopics v6 by a deleted id"
    );
}

// ---------------------------------------------------------------------------------------------
// CreatePartitions
// ---------------------------------------------------------------------------------------------

fn create_partitions(c: &mut Client, version: i16, topic: &str, count: i32, validate_only: bool) -> i16 {
    let r = c.send(
        version,
        CreatePartitionsRequest {
            topics: vec![CreatePartitionsTopic {
                name: topic.into(),
                count,
                assignments: None,
                ..Default::default()
            }],
            timeout_ms: 10_000,
            validate_only,
            ..Default::default()
        },
    );
    assert_eq!(r.results.len(), 1);
    r.results[0].error_code
}

#[test]
fn create_partitions_grow_shrink_and_validate() {
    let b = shared();
    let mut c = client(&b);
    for version in [0, 3] {
        let name = format!("cp-v{version}");
        create(&mut c, &name, 3, &[]);
        assert_eq!(
            create_partitions(&mut c, version, &name, 6, true),
            NONE,
            "CreatePartitions v{version} validate_only"
        );
        assert_eq!(
            topic_md(&mut c, 12, &name).partitions.len(),
            3,
            "validate_only added partitions"
        );
        assert_eq!(
            create_partitions(&mut c, version, &name, 5, false),
            NONE,
            "CreatePartitions v{version} 3→5"
        );
        let t = topic_md(&mut c, 12, &name);
        let idx: BTreeSet<i32> = t.partitions.iter().map(|p| p.partition_index).collect();
        assert_eq!(idx, (0..5).collect(), "Metadata after CreatePartitions v{version}");
        let off = produce_ok(&mut c, &name, 4, batch(2, 10));
        assert_eq!(off, 0);
        assert_eq!(
            fetched_records(&fetch_one(&mut c, 17, &name, 4, 0).records.expect("records")).len(),
            2
        );
        assert_eq!(
            create_partitions(&mut c, version, &name, 4, false),
            INVALID_PARTITIONS,
            "CreatePartitions v{version} decrease"
        );
        assert_eq!(
            create_partitions(&mut c, version, &name, 5, false),
            INVALID_PARTITIONS,
            "CreatePartitions v{version} same count"
        );
        assert_eq!(
            create_partitions(&mut c, version, "cp-never", 5, false),
            UNKNOWN_TOPIC_OR_PARTITION
        );
        assert_eq!(topic_md(&mut c, 12, &name).partitions.len(), 5);
    }
}

// ---------------------------------------------------------------------------------------------
// DescribeConfigs
// ---------------------------------------------------------------------------------------------

#[test]
fn describe_configs_topic() {
    let b = shared();
    let mut c = client(&b);
    create(&mut c, "dc-topic", 1, &[("retention.ms", "3600000")]);
    for version in [0, 1, 4] {
        let r = describe_configs(&mut c, version, RESOURCE_TOPIC, "dc-topic", None, false, false);
        assert_eq!(r.error_code, NONE, "DescribeConfigs v{version}");
        let all: BTreeMap<_, _> = r.configs.iter().map(|e| (e.name.as_str(), e)).collect();
        for key in [
            "cleanup.policy",
            "retention.ms",
            "retention.bytes",
            "segment.bytes",
            "max.message.bytes",
            "min.insync.replicas",
            "compression.type",
            "message.timestamp.type",
        ] {
            assert!(all.contains_key(key), "DescribeConfigs v{version} lacks {key}");
        }
        assert_eq!(all["retention.ms"].value.as_deref(), Some("3600000"));
        assert_eq!(all["cleanup.policy"].value.as_deref(), Some("delete"));
        assert_eq!(all["max.message.bytes"].value.as_deref(), Some("1048588"));
        if version == 0 {
            assert!(!all["retention.ms"].is_default, "v0 is_default for an override");
            assert!(all["cleanup.policy"].is_default, "v0 is_default for a default");
        } else {
            assert_eq!(all["retention.ms"].config_source, DYNAMIC_TOPIC_CONFIG);
            assert_eq!(all["cleanup.policy"].config_source, DEFAULT_CONFIG);
            assert!(
                all.values().all(|e| e.synonyms.is_empty()),
                "synonyms without include_synonyms"
            );
        }
    }
    // Synonyms (v1+).
    for version in [1, 4] {
        let r = describe_configs(
            &mut c,
            version,
            RESOURCE_TOPIC,
            "dc-topic",
            Some(&["retention.ms", "cleanup.policy"]),
            true,
            false,
        );
        assert_eq!(r.error_code, NONE);
        let names: BTreeSet<&str> = r.configs.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(
            names,
            BTreeSet::from(["retention.ms", "cleanup.policy"]),
            "configuration_keys filter"
        );
        let ret = r
            .configs
            .iter()
            .find(|e| e.name == "retention.ms")
            .expect("retention.ms");
        assert!(ret.synonyms.len() >= 2, "retention.ms synonyms: {:?}", ret.synonyms);
        assert_eq!(ret.synonyms[0].name, "retention.ms");
        assert_eq!(ret.synonyms[0].value.as_deref(), Some("3600000"));
        assert_eq!(ret.synonyms[0].source, DYNAMIC_TOPIC_CONFIG);
        assert!(
            ret.synonyms
                .iter()
                .any(|s| s.source == DEFAULT_CONFIG && s.name.starts_with("log.retention")),
            "broker default synonym: {:?}",
            ret.synonyms
        );
        let cp = r
            .configs
            .iter()
            .find(|e| e.name == "cleanup.policy")
            .expect("cleanup.policy");
        assert_eq!(cp.synonyms.len(), 1, "cleanup.policy synonyms: {:?}", cp.synonyms);
        assert_eq!(cp.synonyms[0].name, "log.cleanup.policy");
        assert_eq!(cp.synonyms[0].source, DEFAULT_CONFIG);
        assert_eq!(cp.synonyms[0].value.as_deref(), Some("delete"));
    }
    // Documentation (v3+).
    for version in [3, 4] {
        let r = describe_configs(
            &mut c,
            version,
            RESOURCE_TOPIC,
            "dc-topic",
            Some(&["retention.ms"]),
            false,
            true,
        );
        let doc = r.configs[0].documentation.as_deref().unwrap_or("");
        assert!(doc.len() > 20, "DescribeConfigs v{version} documentation: {doc:?}");
        assert_ne!(
            r.configs[0].config_type, 0,
            "DescribeConfigs v{version} config_type is known"
        );
        let r = describe_configs(
            &mut c,
            version,
            RESOURCE_TOPIC,
            "dc-topic",
            Some(&["retention.ms"]),
            false,
            false,
        );
        assert_eq!(r.configs[0].documentation, None, "documentation only when asked");
    }
    for version in [0, 4] {
        let r = describe_configs(&mut c, version, RESOURCE_TOPIC, "dc-never", None, false, false);
        assert_eq!(
            r.error_code, UNKNOWN_TOPIC_OR_PARTITION,
            "DescribeConfigs v{version} unknown topic"
        );
    }
}

#[test]
fn describe_configs_broker_sources_and_sensitive() {
    let b = shared();
    let mut c = client(&b);
    let node = node_id(&mut c).to_string();
    let overridden: HashSet<&str> = SHARED_OVERRIDES
        .iter()
        .map(|(k, _)| *k)
        .chain(HARNESS_OVERRIDES.iter().copied())
        .collect();
    for version in [0, 4] {
        let r = describe_configs(&mut c, version, RESOURCE_BROKER, &node, None, true, false);
        assert_eq!(
            r.error_code, NONE,
            "DescribeConfigs v{version} broker {node}: {:?}",
            r.error_message
        );
        let all: BTreeMap<_, _> = r.configs.iter().map(|e| (e.name.as_str(), e)).collect();
        assert_eq!(all.get("num.partitions").and_then(|e| e.value.as_deref()), Some("4"));
        assert!(
            all.contains_key("log.retention.hours"),
            "broker configs include defaults"
        );
        for key in &overridden {
            assert!(all.contains_key(key), "broker config {key} missing");
        }
        assert!(
            r.configs.iter().any(|e| e.is_sensitive),
            "no sensitive config listed (ssl.key.password…)"
        );
        for e in &r.configs {
            if e.is_sensitive {
                assert_eq!(e.value, None, "sensitive {} has a value", e.name);
            }
            if version == 0 {
                assert_eq!(
                    e.is_default,
                    !overridden.contains(e.name.as_str()),
                    "v0 is_default of {}",
                    e.name
                );
                continue;
            }
            let want = if overridden.contains(e.name.as_str()) {
                STATIC_BROKER_CONFIG
            } else {
                DEFAULT_CONFIG
            };
            assert_eq!(
                e.config_source, want,
                "source of broker config {} = {:?}",
                e.name, e.value
            );
            if want == STATIC_BROKER_CONFIG {
                assert_eq!(
                    e.synonyms.first().map(|s| s.source),
                    Some(STATIC_BROKER_CONFIG),
                    "synonyms of {}",
                    e.name
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// AlterConfigs / IncrementalAlterConfigs
// ---------------------------------------------------------------------------------------------

fn alter(c: &mut Client, version: i16, topic: &str, configs: &[(&str, &str)], validate_only: bool) -> i16 {
    let r = c.send(
        version,
        AlterConfigsRequest {
            resources: vec![ac::AlterConfigsResource {
                resource_type: RESOURCE_TOPIC,
                resource_name: topic.into(),
                configs: configs
                    .iter()
                    .map(|(k, v)| ac::AlterableConfig {
                        name: k.to_string(),
                        value: Some(v.to_string()),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            validate_only,
            ..Default::default()
        },
    );
    assert_eq!(r.responses.len(), 1);
    assert_eq!(r.responses[0].resource_name, topic);
    r.responses[0].error_code
}

const SET: i8 = 0;
const DELETE: i8 = 1;
const APPEND: i8 = 2;
const SUBTRACT: i8 = 3;

fn incremental(
    c: &mut Client,
    version: i16,
    topic: &str,
    ops: &[(&str, i8, Option<&str>)],
    validate_only: bool,
) -> i16 {
    let r = c.send(
        version,
        IncrementalAlterConfigsRequest {
            resources: vec![iac::AlterConfigsResource {
                resource_type: RESOURCE_TOPIC,
                resource_name: topic.into(),
                configs: ops
                    .iter()
                    .map(|(k, op, v)| iac::AlterableConfig {
                        name: k.to_string(),
                        config_operation: *op,
                        value: v.map(str::to_string),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            validate_only,
            ..Default::default()
        },
    );
    assert_eq!(r.responses.len(), 1);
    r.responses[0].error_code
}

fn assert_too_large_rejected(c: &mut Client, topic: &str) {
    let p = produce_v(c, 11, topic, 0, batch(1, 5000));
    assert_eq!(
        p.error_code, MESSAGE_TOO_LARGE,
        "5000-byte batch with max.message.bytes=2000"
    );
    let p = produce_v(c, 11, topic, 0, batch(1, 500));
    assert_eq!(p.error_code, NONE, "small batch after max.message.bytes=2000");
}

#[test]
fn alter_configs_replaces_all_overrides() {
    let b = shared();
    let mut c = client(&b);
    for version in [0, 2] {
        let name = format!("ac-v{version}");
        create(&mut c, &name, 1, &[("retention.ms", "3600000")]);
        assert_eq!(produce_v(&mut c, 11, &name, 0, batch(1, 5000)).error_code, NONE);

        assert_eq!(
            alter(&mut c, version, &name, &[("max.message.bytes", "2000")], true),
            NONE,
            "validate_only"
        );
        assert_eq!(
            config_value(&mut c, &name, "max.message.bytes"),
            (Some("1048588".into()), DEFAULT_CONFIG),
            "validate_only changed max.message.bytes"
        );
        assert_eq!(
            config_value(&mut c, &name, "retention.ms"),
            (Some("3600000".into()), DYNAMIC_TOPIC_CONFIG)
        );

        assert_eq!(
            alter(&mut c, version, &name, &[("max.message.bytes", "-5")], false),
            INVALID_CONFIG,
            "AlterConfigs v{version} invalid value"
        );
        assert_eq!(
            alter(&mut c, version, &name, &[("retention.ms", "forever")], false),
            INVALID_CONFIG
        );
        assert_eq!(
            config_value(&mut c, &name, "retention.ms").0.as_deref(),
            Some("3600000"),
            "a rejected AlterConfigs changed the config"
        );

        assert_eq!(
            alter(&mut c, version, &name, &[("max.message.bytes", "2000")], false),
            NONE,
            "AlterConfigs v{version}"
        );
        assert_eq!(
            config_value(&mut c, &name, "max.message.bytes"),
            (Some("2000".into()), DYNAMIC_TOPIC_CONFIG)
        );
        assert_eq!(
            config_value(&mut c, &name, "retention.ms").1,
            DEFAULT_CONFIG,
            "AlterConfigs must drop overrides not in the new set"
        );
        assert_eq!(
            config_value(&mut c, &name, "retention.ms").0.as_deref(),
            Some("604800000")
        );
        assert_too_large_rejected(&mut c, &name);
    }
    assert_eq!(
        alter(&mut c, 2, "ac-never", &[("retention.ms", "1")], false),
        UNKNOWN_TOPIC_OR_PARTITION
    );
}

#[test]
fn incremental_alter_configs_operations() {
    let b = shared();
    let mut c = client(&b);
    for version in [0, 1] {
        let name = format!("iac-v{version}");
        create(&mut c, &name, 1, &[("retention.ms", "3600000")]);
        assert_eq!(
            incremental(&mut c, version, &name, &[("segment.ms", SET, Some("7200000"))], false),
            NONE
        );
        assert_eq!(
            config_value(&mut c, &name, "segment.ms"),
            (Some("7200000".into()), DYNAMIC_TOPIC_CONFIG)
        );
        assert_eq!(
            config_value(&mut c, &name, "retention.ms"),
            (Some("3600000".into()), DYNAMIC_TOPIC_CONFIG),
            "SET must keep other overrides"
        );

        assert_eq!(
            incremental(&mut c, version, &name, &[("retention.ms", DELETE, None)], false),
            NONE
        );
        assert_eq!(
            config_value(&mut c, &name, "retention.ms"),
            (Some("604800000".into()), DEFAULT_CONFIG),
            "DELETE reverts to default"
        );

        assert_eq!(
            incremental(
                &mut c,
                version,
                &name,
                &[("cleanup.policy", APPEND, Some("compact"))],
                false
            ),
            NONE
        );
        assert_eq!(
            config_value(&mut c, &name, "cleanup.policy").0.as_deref(),
            Some("delete,compact"),
            "APPEND to the default list"
        );
        assert_eq!(
            incremental(
                &mut c,
                version,
                &name,
                &[("cleanup.policy", SUBTRACT, Some("delete"))],
                false
            ),
            NONE
        );
        assert_eq!(
            config_value(&mut c, &name, "cleanup.policy").0.as_deref(),
            Some("compact"),
            "SUBTRACT"
        );

        assert_eq!(
            incremental(
                &mut c,
                version,
                &name,
                &[("max.message.bytes", SET, Some("2000"))],
                true
            ),
            NONE,
            "validate_only"
        );
        assert_eq!(
            config_value(&mut c, &name, "max.message.bytes").1,
            DEFAULT_CONFIG,
            "validate_only changed the config"
        );
        assert_eq!(
            incremental(
                &mut c,
                version,
                &name,
                &[("max.message.bytes", SET, Some("lots"))],
                false
            ),
            INVALID_CONFIG
        );
        assert_eq!(
            incremental(
                &mut c,
                version,
                &name,
                &[("cleanup.policy", APPEND, Some("shred"))],
                false
            ),
            INVALID_CONFIG
        );
        assert_eq!(
            config_value(&mut c, &name, "cleanup.policy").0.as_deref(),
            Some("compact")
        );

        // Back to a keyless-friendly policy, then show the size limit takes effect.
        assert_eq!(
            incremental(
                &mut c,
                version,
                &name,
                &[
                    ("cleanup.policy", DELETE, None),
                    ("max.message.bytes", SET, Some("2000"))
                ],
                false
            ),
            NONE
        );
        assert_too_large_rejected(&mut c, &name);
    }
}

// ---------------------------------------------------------------------------------------------
// DescribeCluster / DescribeTopicPartitions / DescribeLogDirs
// ---------------------------------------------------------------------------------------------

#[test]
fn describe_cluster_matches_metadata() {
    let b = shared();
    let mut c = client(&b);
    let md = metadata(&mut c, 12, &[], false);
    for version in [0, 1] {
        let r = c.send(
            version,
            DescribeClusterRequest {
                endpoint_type: 1,
                ..Default::default()
            },
        );
        assert_eq!(r.error_code, NONE, "DescribeCluster v{version}");
        assert_eq!(
            Some(r.cluster_id.clone()),
            md.cluster_id,
            "DescribeCluster v{version} cluster id"
        );
        assert_eq!(r.controller_id, md.controller_id);
        assert_eq!(r.brokers.len(), 1);
        assert_eq!(r.brokers[0].broker_id, md.brokers[0].node_id);
        assert_eq!(r.brokers[0].port, i32::from(b.port));
        assert_eq!(r.brokers[0].host, "127.0.0.1");
    }
}

#[test]
fn describe_cluster_endpoint_types() {
    let b = shared();
    let mut c = client(&b);
    let r = c.send(
        1,
        DescribeClusterRequest {
            endpoint_type: 2,
            ..Default::default()
        },
    );
    assert_eq!(
        r.error_code, MISMATCHED_ENDPOINT_TYPE,
        "DescribeCluster v1 controller endpoint on a broker"
    );
    let r = c.send(
        1,
        DescribeClusterRequest {
            endpoint_type: 9,
            ..Default::default()
        },
    );
    assert_eq!(
        r.error_code, UNSUPPORTED_ENDPOINT_TYPE,
        "DescribeCluster v1 unknown endpoint type"
    );
}

#[test]
fn describe_cluster_unknown_endpoint_type() {
    let b = shared();
    let mut c = client(&b);
    let r = c.send(
        1,
        DescribeClusterRequest {
            endpoint_type: 9,
            ..Default::default()
        },
    );
    assert_eq!(
        r.error_code, UNSUPPORTED_ENDPOINT_TYPE,
        "DescribeCluster v1 unknown endpoint type"
    );
}

#[test]
fn describe_topic_partitions_pages_with_cursor() {
    let b = shared();
    let mut c = client(&b);
    let created = create(&mut c, "dtp-five", 5, &[]);
    create(&mut c, "dtp-two", 2, &[]);
    let mut seen: Vec<(String, i32)> = Vec::new();
    let mut cursor: Option<Cursor> = None;
    for page in 0.. {
        assert!(page < 10, "DescribeTopicPartitions did not finish paging");
        let r = c.send(
            0,
            DescribeTopicPartitionsRequest {
                topics: vec![
                    TopicRequest {
                        name: "dtp-five".into(),
                        ..Default::default()
                    },
                    TopicRequest {
                        name: "dtp-two".into(),
                        ..Default::default()
                    },
                ],
                response_partition_limit: 2,
                cursor: cursor.take(),
                ..Default::default()
            },
        );
        let n: usize = r.topics.iter().map(|t| t.partitions.len()).sum();
        assert!(n <= 2, "page {page} has {n} partitions over a limit of 2");
        for t in &r.topics {
            assert_eq!(t.error_code, NONE);
            let name = t.name.clone().expect("topic name");
            if name == "dtp-five" {
                assert_eq!(t.topic_id, created.topic_id);
            }
            seen.extend(t.partitions.iter().map(|p| (name.clone(), p.partition_index)));
        }
        match r.next_cursor {
            Some(next) => {
                cursor = Some(Cursor {
                    topic_name: next.topic_name,
                    partition_index: next.partition_index,
                    ..Default::default()
                })
            }
            None => break,
        }
    }
    let expected: Vec<(String, i32)> = (0..5)
        .map(|p| ("dtp-five".to_string(), p))
        .chain((0..2).map(|p| ("dtp-two".to_string(), p)))
        .collect();
    assert_eq!(seen, expected, "every partition exactly once, in order");

    let r = c.send(
        0,
        DescribeTopicPartitionsRequest {
            topics: vec![TopicRequest {
                name: "dtp-never".into(),
                ..Default::default()
            }],
            response_partition_limit: 2000,
            ..Default::default()
        },
    );
    assert_eq!(r.topics[0].error_code, UNKNOWN_TOPIC_OR_PARTITION);
}

#[test]
fn describe_log_dirs_reports_sizes() {
    let b = shared();
    let mut c = client(&b);
    create(&mut c, "dld", 2, &[]);
    produce_ok(&mut c, "dld", 0, batch(10, 100));
    produce_ok(&mut c, "dld", 1, batch(1, 10));
    for version in [0, 4] {
        for topics in [
            None,
            Some(vec![DescribableLogDirTopic {
                topic: "dld".into(),
                partitions: vec![0, 1],
                ..Default::default()
            }]),
        ] {
            let filtered = topics.is_some();
            let r = c.send(
                version,
                DescribeLogDirsRequest {
                    topics,
                    ..Default::default()
                },
            );
            assert_eq!(r.error_code, NONE);
            assert_eq!(r.results.len(), 1, "DescribeLogDirs v{version}: one log dir");
            let dir = &r.results[0];
            assert_eq!(dir.error_code, NONE);
            assert_eq!(
                std::path::Path::new(&dir.log_dir).canonicalize().ok(),
                b.data().canonicalize().ok(),
                "log dir path"
            );
            let t = dir.topics.iter().find(|t| t.name == "dld").expect("dld listed");
            if filtered {
                assert_eq!(dir.topics.len(), 1, "filter returns only the asked topic");
            }
            let sizes: BTreeMap<i32, i64> = t
                .partitions
                .iter()
                .map(|p| (p.partition_index, p.partition_size))
                .collect();
            assert_eq!(sizes.len(), 2);
            assert!(sizes[&0] > 1000, "partition 0 size {}", sizes[&0]);
            assert!(sizes[&1] > 0 && sizes[&1] < sizes[&0], "partition 1 size {}", sizes[&1]);
        }
    }
}

#[test]
fn describe_log_dirs_v4_reports_disk_space() {
    let b = shared();
    let mut c = client(&b);
    let r = c.send(
        4,
        DescribeLogDirsRequest {
            topics: None,
            ..Default::default()
        },
    );
    assert_eq!(r.results.len(), 1);
    let dir = &r.results[0];
    assert!(dir.total_bytes > 0, "v4 total_bytes {}", dir.total_bytes);
    assert!(
        dir.usable_bytes > 0 && dir.usable_bytes <= dir.total_bytes,
        "v4 usable_bytes {}",
        dir.usable_bytes
    );
}

// ---------------------------------------------------------------------------------------------
// DeleteRecords / ListOffsets / OffsetForLeaderEpoch
// ---------------------------------------------------------------------------------------------

fn delete_records(c: &mut Client, version: i16, topic: &str, partition: i32, offset: i64) -> (i16, i64) {
    let r = c.send(
        version,
        DeleteRecordsRequest {
            topics: vec![DeleteRecordsTopic {
                name: topic.into(),
                partitions: vec![DeleteRecordsPartition {
                    partition_index: partition,
                    offset,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            timeout_ms: 10_000,
            ..Default::default()
        },
    );
    let p = &r.topics[0].partitions[0];
    (p.error_code, p.low_watermark)
}

#[test]
fn delete_records_moves_log_start() {
    let b = shared();
    let mut c = client(&b);
    for version in [0, 2] {
        let name = format!("dr-v{version}");
        create(&mut c, &name, 2, &[]);
        for _ in 0..10 {
            produce_ok(&mut c, &name, 0, batch(10, 20));
            produce_ok(&mut c, &name, 1, batch(10, 20));
        }
        assert_eq!(
            delete_records(&mut c, version, &name, 0, 40),
            (NONE, 40),
            "DeleteRecords v{version} before 40"
        );
        assert_eq!(
            list_offset(&mut c, 9, &name, 0, -2).offset,
            40,
            "earliest after DeleteRecords"
        );
        assert_eq!(
            list_offset(&mut c, 1, &name, 0, -2).offset,
            40,
            "earliest (v1) after DeleteRecords"
        );
        let p = fetch_one(&mut c, 17, &name, 0, 10);
        assert_eq!(p.error_code, OFFSET_OUT_OF_RANGE, "Fetch below the log start");
        let p = fetch_one(&mut c, 17, &name, 0, 40);
        assert_eq!(p.error_code, NONE);
        assert_eq!(p.log_start_offset, 40);
        let recs = fetched_records(&p.records.expect("records"));
        assert_eq!(recs.first().map(|(o, _)| *o), Some(40), "first fetched offset");

        // Mid-batch.
        assert_eq!(delete_records(&mut c, version, &name, 0, 45), (NONE, 45));
        assert_eq!(list_offset(&mut c, 9, &name, 0, -2).offset, 45);
        let recs = fetched_records(&fetch_one(&mut c, 17, &name, 0, 45).records.expect("records"));
        assert!(recs.iter().all(|(o, _)| *o >= 40) && recs.iter().any(|(o, _)| *o == 45));

        assert_eq!(
            delete_records(&mut c, version, &name, 0, 101).0,
            OFFSET_OUT_OF_RANGE,
            "beyond HW"
        );
        assert_eq!(
            delete_records(&mut c, version, &name, 0, 30),
            (NONE, 45),
            "going backwards keeps the log start"
        );
        assert_eq!(
            delete_records(&mut c, version, &name, 1, -1),
            (NONE, 100),
            "-1 means the high watermark"
        );
        assert_eq!(list_offset(&mut c, 9, &name, 1, -2).offset, 100);
        assert_eq!(
            delete_records(&mut c, version, &name, 7, 1).0,
            UNKNOWN_TOPIC_OR_PARTITION
        );
    }
}

#[test]
fn list_offsets_special_and_by_timestamp() {
    let b = shared();
    let mut c = client(&b);
    create(&mut c, "lo", 1, &[]);
    let t0 = now_ms() - 60_000;
    // Batch A: offsets 0..5 at t0 + 0..4 s; batch B: offsets 5..10 at t0 + 5..9 s, except
    // offset 7 which carries the log's largest timestamp.
    produce_ok(&mut c, "lo", 0, batch_at(t0, &records(5, 10, 1000), Compression::None));
    let mut b_recs = records(5, 10, 1000);
    b_recs[2].timestamp_delta = 30_000;
    produce_ok(&mut c, "lo", 0, batch_at(t0 + 5000, &b_recs, Compression::None));
    for version in [1, 9] {
        let e = list_offset(&mut c, version, "lo", 0, -2);
        assert_eq!((e.error_code, e.offset), (NONE, 0), "ListOffsets v{version} earliest");
        let l = list_offset(&mut c, version, "lo", 0, -1);
        assert_eq!((l.error_code, l.offset), (NONE, 10), "ListOffsets v{version} latest");
        let r = list_offset(&mut c, version, "lo", 0, t0 + 2500);
        assert_eq!(
            (r.error_code, r.offset, r.timestamp),
            (NONE, 3, t0 + 3000),
            "ListOffsets v{version} by timestamp"
        );
        let r = list_offset(&mut c, version, "lo", 0, t0 + 5000);
        assert_eq!((r.offset, r.timestamp), (5, t0 + 5000), "exact timestamp");
        let r = list_offset(&mut c, version, "lo", 0, t0 + 20_000);
        assert_eq!(
            (r.offset, r.timestamp),
            (7, t0 + 35_000),
            "first offset with ts ≥ T, not the first in order"
        );
        let r = list_offset(&mut c, version, "lo", 0, t0 + 40_000);
        assert_eq!(
            (r.error_code, r.offset, r.timestamp),
            (NONE, -1, -1),
            "ListOffsets v{version}: no ts ≥ T"
        );
        let r = list_offset(&mut c, version, "lo", 3, -1);
        assert_eq!(r.error_code, UNKNOWN_TOPIC_OR_PARTITION);
    }
    let m = list_offset(&mut c, 9, "lo", 0, -3);
    assert_eq!(
        (m.error_code, m.offset, m.timestamp),
        (NONE, 7, t0 + 35_000),
        "ListOffsets v9 max timestamp"
    );
    let m = list_offset(&mut c, 7, "lo", 0, -3);
    assert_eq!((m.error_code, m.offset), (NONE, 7), "ListOffsets v7 max timestamp");
}

fn epoch_end(c: &mut Client, version: i16, topic: &str, current: i32, epoch: i32) -> (i16, i32, i64) {
    let r = c.send(
        version,
        OffsetForLeaderEpochRequest {
            replica_id: -1,
            topics: vec![OffsetForLeaderTopic {
                topic: topic.into(),
                partitions: vec![OffsetForLeaderPartition {
                    partition: 0,
                    current_leader_epoch: current,
                    leader_epoch: epoch,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        },
    );
    let p = &r.topics[0].partitions[0];
    (p.error_code, p.leader_epoch, p.end_offset)
}

#[test]
fn offset_for_leader_epoch() {
    let b = shared();
    let mut c = client(&b);
    create(&mut c, "ofle", 1, &[]);
    for _ in 0..3 {
        produce_ok(&mut c, "ofle", 0, batch(4, 10));
    }
    let epoch = topic_md(&mut c, 12, "ofle").partitions[0].leader_epoch;
    assert!(epoch >= 0);
    for version in [0, 2, 4] {
        let (err, e, end) = epoch_end(&mut c, version, "ofle", -1, epoch);
        assert_eq!(err, NONE, "OffsetForLeaderEpoch v{version}");
        assert_eq!(
            end, 12,
            "OffsetForLeaderEpoch v{version}: end offset of the current epoch is the LEO"
        );
        if version >= 1 {
            assert_eq!(e, epoch);
        }
        if version >= 2 {
            let (err, _, _) = epoch_end(&mut c, version, "ofle", epoch + 1, epoch);
            assert_eq!(
                err, UNKNOWN_LEADER_EPOCH,
                "OffsetForLeaderEpoch v{version} with a newer current epoch"
            );
            let (err, _, end) = epoch_end(&mut c, version, "ofle", epoch, epoch);
            assert_eq!((err, end), (NONE, 12));
        }
        let r = c.send(
            version,
            OffsetForLeaderEpochRequest {
                replica_id: -1,
                topics: vec![OffsetForLeaderTopic {
                    topic: "ofle-never".into(),
                    partitions: vec![OffsetForLeaderPartition {
                        partition: 0,
                        current_leader_epoch: -1,
                        leader_epoch: 0,
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            },
        );
        assert_eq!(r.topics[0].partitions[0].error_code, UNKNOWN_TOPIC_OR_PARTITION);
    }
}

// ---------------------------------------------------------------------------------------------
// Produce paths
// ---------------------------------------------------------------------------------------------

#[test]
fn produce_log_append_time() {
    let b = shared();
    let mut c = client(&b);
    create(&mut c, "lat", 1, &[("message.timestamp.type", "LogAppendTime")]);
    let old_ts = now_ms() - 3_600_000 * 24;
    for version in [3, 11] {
        let before = now_ms();
        let p = produce_v(
            &mut c,
            version,
            "lat",
            0,
            batch_at(old_ts, &records(3, 10, 1), Compression::None),
        );
        let after = now_ms();
        assert_eq!(p.error_code, NONE);
        assert!(
            p.log_append_time_ms >= before - 2000 && p.log_append_time_ms <= after + 2000,
            "Produce v{version} log_append_time_ms {} not near now {before}",
            p.log_append_time_ms
        );
        let data = fetch_one(&mut c, 17, "lat", 0, p.base_offset).records.expect("records");
        let (h, _) = batches(&data).next().expect("one batch").expect("valid batch");
        assert_eq!(h.base_offset, p.base_offset);
        assert_ne!(h.attributes & 0x08, 0, "LogAppendTime attribute bit");
        assert_eq!(
            h.max_timestamp, p.log_append_time_ms,
            "batch max timestamp is the append time"
        );
    }
    // CreateTime topics answer -1.
    create(&mut c, "lat-create", 1, &[]);
    assert_eq!(
        produce_v(&mut c, 11, "lat-create", 0, batch(1, 1)).log_append_time_ms,
        -1
    );
}

#[test]
fn produce_recompresses_for_topic_compression_type() {
    let b = shared();
    let mut c = client(&b);
    create(&mut c, "zstd", 1, &[("compression.type", "zstd")]);
    let recs = records(20, 200, 3);
    let base = produce_ok(&mut c, "zstd", 0, batch_at(now_ms(), &recs, Compression::None));
    let data = fetch_one(&mut c, 17, "zstd", 0, base).records.expect("records");
    let (h, _) = batches(&data).next().expect("a batch").expect("valid");
    assert_eq!(h.attributes & 7, 4, "stored batch is zstd");
    let got = fetched_records(&data);
    assert_eq!(got.len(), 20);
    for ((off, r), want) in got.iter().zip(&recs) {
        assert_eq!(*off, base + i64::from(want.offset_delta));
        assert_eq!(
            (&r.key, &r.value, r.timestamp_delta),
            (&want.key, &want.value, want.timestamp_delta)
        );
    }
}

#[test]
fn produce_rejections() {
    let b = shared();
    let mut c = client(&b);
    create(&mut c, "compact", 1, &[("cleanup.policy", "compact")]);
    create(&mut c, "plain", 2, &[]);
    create(&mut c, "isr2", 1, &[("min.insync.replicas", "2")]);
    let mut keyless = records(1, 10, 0);
    keyless[0].key = None;
    for version in [3, 11] {
        let p = produce_v(
            &mut c,
            version,
            "compact",
            0,
            batch_at(now_ms(), &keyless, Compression::None),
        );
        assert_eq!(
            p.error_code, INVALID_RECORD,
            "Produce v{version} keyless to compacted topic"
        );
        let p = produce_v(&mut c, version, "compact", 0, batch(1, 10));
        assert_eq!(p.error_code, NONE, "keyed record to a compacted topic");

        let p = produce_v(
            &mut c,
            version,
            "plain",
            0,
            batch_at(now_ms() + 2 * 3_600_000, &records(1, 10, 0), Compression::None),
        );
        assert_eq!(
            p.error_code, INVALID_TIMESTAMP,
            "Produce v{version} 2 hours in the future"
        );

        let p = produce_v(&mut c, version, "plain", 2, batch(1, 10));
        assert_eq!(
            p.error_code, UNKNOWN_TOPIC_OR_PARTITION,
            "Produce v{version} to a missing partition"
        );

        let p = produce_v(&mut c, version, "isr2", 0, batch(1, 10));
        assert_eq!(
            p.error_code, NOT_ENOUGH_REPLICAS,
            "Produce v{version} acks=-1 with min.insync.replicas=2"
        );
        let mut r = c.send(version, produce_request("isr2", 0, batch(1, 10), 1));
        assert_eq!(
            r.responses.remove(0).partition_responses[0].error_code,
            NONE,
            "acks=1 ignores min.insync.replicas"
        );
    }
    let l = list_offset(&mut c, 9, "plain", 0, -1);
    assert_eq!(l.offset, 0, "rejected batches must not be appended");
}

#[test]
fn produce_invalid_record_lists_record_errors() {
    let b = shared();
    let mut c = client(&b);
    create(&mut c, "compact-errs", 1, &[("cleanup.policy", "compact")]);
    let mut recs = records(3, 10, 0);
    recs[1].key = None;
    for version in [8, 11] {
        let p = produce_v(
            &mut c,
            version,
            "compact-errs",
            0,
            batch_at(now_ms(), &recs, Compression::None),
        );
        assert_eq!(p.error_code, INVALID_RECORD);
        let idx: Vec<i32> = p.record_errors.iter().map(|e| e.batch_index).collect();
        assert_eq!(idx, vec![1], "Produce v{version} record_errors names record 1");
    }
}

#[test]
fn produce_acks_zero_gets_no_response_but_lands() {
    let b = shared();
    let mut c = client(&b);
    create(&mut c, "acks0", 1, &[]);
    for version in [3, 11] {
        c.send_only(version, produce_request("acks0", 0, batch(5, 10), 0));
    }
    // The next response on this connection must be the ApiVersions answer (send checks the
    // correlation id), not a Produce response.
    let r = c.send(0, ApiVersionsRequest::default());
    assert_eq!(r.error_code, NONE);
    let hw = wait_for("acks=0 data", Duration::from_secs(5), || {
        let l = list_offset(&mut c, 9, "acks0", 0, -1).offset;
        (l == 10).then_some(l)
    });
    let recs = fetched_records(&fetch_one(&mut c, 17, "acks0", 0, 0).records.expect("records"));
    assert_eq!(recs.len() as i64, hw);
}

/// Under `log.flush.policy=fsync` a connection keeps reading while a Produce waits for its
/// fsync; responses must still come back in request order, also with other APIs in between.
#[test]
fn fsync_policy_pipelined_requests_answer_in_order() {
    let b = Broker::start_with(&[("log.flush.policy", "fsync")]);
    let mut c = client(&b);
    create(&mut c, "pipelined", 1, &[]);
    let mut sent = Vec::new();
    for i in 0..20 {
        let cid = c.send_pipelined(11, produce_request("pipelined", 0, batch(3, 20), -1));
        sent.push((true, cid));
        if i % 5 == 4 {
            sent.push((false, c.send_pipelined(3, ApiVersionsRequest::default())));
        }
    }
    let mut next_offset = 0;
    for (is_produce, cid) in sent {
        if !is_produce {
            let r = c.receive::<ApiVersionsRequest>(3, cid);
            assert_eq!(r.error_code, NONE);
            continue;
        }
        let r = c.receive::<ProduceRequest>(11, cid);
        let p = &r.responses[0].partition_responses[0];
        assert_eq!(
            (p.error_code, p.base_offset),
            (NONE, next_offset),
            "appends in request order"
        );
        next_offset += 3;
    }
    assert_eq!(list_offset(&mut c, 9, "pipelined", 0, -1).offset, 60);
}

/// Answers to Produce requests that arrive together are written together, but never held back
/// behind a request that may wait: here a long-poll Fetch right after a Produce, in the same
/// write. Everything comes back in request order, with the appends in that order too.
#[test]
fn pipelined_produces_answer_in_order_and_not_behind_a_long_poll() {
    let b = shared();
    let mut c = client(&b);
    create(&mut c, "coalesced", 1, &[]);
    let mut bytes = BytesMut::new();
    let mut sent = Vec::new();
    for i in 0..30 {
        let (cid, req) = c.encode(11, produce_request("coalesced", 0, batch(2, 10), 1));
        bytes.extend_from_slice(&req);
        sent.push((true, cid));
        if i % 10 == 9 {
            let (cid, req) = c.encode(3, ApiVersionsRequest::default());
            bytes.extend_from_slice(&req);
            sent.push((false, cid));
        }
    }
    // Nothing will arrive at the end of the log, so this Fetch waits its whole 3 s.
    let mut long_poll = fetch_request("coalesced", vec![fetch_partition(0, 60, 1 << 20)]);
    long_poll.max_wait_ms = 3_000;
    long_poll.min_bytes = 1;
    let (fetch_cid, req) = c.encode(12, long_poll);
    bytes.extend_from_slice(&req);
    let started = Instant::now();
    c.write_all(&bytes);
    let mut next_offset = 0;
    for (is_produce, cid) in sent {
        if !is_produce {
            assert_eq!(c.receive::<ApiVersionsRequest>(3, cid).error_code, NONE);
            continue;
        }
        let r = c.receive::<ProduceRequest>(11, cid);
        let p = &r.responses[0].partition_responses[0];
        assert_eq!(
            (p.error_code, p.base_offset),
            (NONE, next_offset),
            "appends in request order"
        );
        next_offset += 2;
    }
    let answered_after = started.elapsed();
    assert!(
        answered_after < Duration::from_millis(1_500),
        "the Produce answers waited {answered_after:?}, behind the long poll"
    );
    let fetched = only_partition(c.receive::<FetchRequest>(12, fetch_cid));
    assert_eq!(fetched.error_code, NONE);
    assert!(
        started.elapsed() >= Duration::from_millis(2_500),
        "the Fetch long-polled, so it could have held the answers back"
    );
}

#[test]
fn fsync_policy_concurrent_acks_all() {
    let b = Broker::start_with(&[("log.flush.policy", "fsync")]);
    let mut c = client(&b);
    create(&mut c, "fsync", 2, &[]);
    let addr = b.bootstrap();
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let addr = addr.clone();
            std::thread::spawn(move || {
                let mut c = Client::connect(&addr);
                let mut offsets = Vec::new();
                for i in 0..15 {
                    let part = (t + i) % 2;
                    let p = produce_v(&mut c, 11, "fsync", part, batch(4, 50));
                    assert_eq!(p.error_code, NONE, "acks=-1 produce with fsync policy");
                    offsets.push((part, p.base_offset));
                }
                offsets
            })
        })
        .collect();
    let mut all: Vec<(i32, i64)> = threads
        .into_iter()
        .flat_map(|h| h.join().expect("producer thread"))
        .collect();
    all.sort();
    let unique: BTreeSet<(i32, i64)> = all.iter().copied().collect();
    assert_eq!(unique.len(), 120, "every produce got its own offset");
    let mut total = 0;
    for part in 0..2 {
        let mut next = 0;
        loop {
            let p = fetch_one(&mut c, 17, "fsync", part, next);
            assert_eq!(p.error_code, NONE);
            let recs = fetched_records(&p.records.expect("records"));
            let Some((last, _)) = recs.last() else { break };
            for (o, _) in &recs {
                assert!(*o >= next);
            }
            total += recs.iter().filter(|(o, _)| *o >= next).count();
            next = last + 1;
            if next >= p.high_watermark {
                break;
            }
        }
    }
    assert_eq!(total, 8 * 15 * 4, "all records readable");
}

// ---------------------------------------------------------------------------------------------
// Fetch
// ---------------------------------------------------------------------------------------------

#[test]
fn fetch_long_poll_returns_early_on_produce() {
    let b = shared();
    let mut c = client(&b);
    create(&mut c, "poll", 1, &[]);
    for (round, version) in [4i16, 17].into_iter().enumerate() {
        let offset = round as i64;
        let addr = b.bootstrap();
        let producer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            let mut p = Client::connect(&addr);
            produce_ok(&mut p, "poll", 0, batch(1, 10));
        });
        let mut req = fetch_req(&mut c, version, "poll", vec![fetch_partition(0, offset, 1 << 20)]);
        req.max_wait_ms = 8000;
        req.min_bytes = 1;
        let started = Instant::now();
        let p = only_partition(c.send(version, req));
        let took = started.elapsed();
        producer.join().expect("producer");
        assert_eq!(p.error_code, NONE);
        assert!(
            took < Duration::from_secs(3),
            "Fetch v{version} long poll took {took:?}; data came after 300 ms"
        );
        assert!(
            took >= Duration::from_millis(250),
            "Fetch v{version} returned before the data existed ({took:?})"
        );
        assert_eq!(fetched_records(&p.records.expect("records")).len(), 1);
    }
}

#[test]
fn fetch_min_bytes_waits_max_wait_and_returns_empty() {
    let b = shared();
    let mut c = client(&b);
    create(&mut c, "minbytes", 1, &[]);
    produce_ok(&mut c, "minbytes", 0, batch(1, 10));
    for version in [4, 17] {
        let mut req = fetch_req(&mut c, version, "minbytes", vec![fetch_partition(0, 1, 1 << 20)]);
        req.max_wait_ms = 600;
        req.min_bytes = 1;
        let started = Instant::now();
        let p = only_partition(c.send(version, req));
        let took = started.elapsed();
        assert_eq!(p.error_code, NONE);
        assert!(
            took >= Duration::from_millis(500) && took < Duration::from_secs(3),
            "Fetch v{version} waited {took:?} for max_wait 600 ms"
        );
        assert_eq!(
            p.records.as_ref().map(|r| r.len()),
            Some(0),
            "Fetch v{version}: empty, not null, records"
        );
        assert_eq!(p.high_watermark, 1);
        // min_bytes larger than what exists also waits, then returns what there is.
        let mut req = fetch_req(&mut c, version, "minbytes", vec![fetch_partition(0, 0, 1 << 20)]);
        req.max_wait_ms = 600;
        req.min_bytes = 1 << 20;
        let started = Instant::now();
        let p = only_partition(c.send(version, req));
        assert!(
            started.elapsed() >= Duration::from_millis(500),
            "Fetch v{version} returned before min_bytes or max_wait"
        );
        assert_eq!(fetched_records(&p.records.expect("records")).len(), 1);
    }
}

#[test]
fn fetch_size_limits() {
    let b = shared();
    let mut c = client(&b);
    create(&mut c, "limits", 3, &[]);
    produce_ok(&mut c, "limits", 0, batch(3, 1000));
    produce_ok(&mut c, "limits", 0, batch(1, 10));
    for part in 0..3 {
        for _ in 0..3 {
            produce_ok(&mut c, "limits", part, batch(1, 900));
        }
    }
    for version in [4, 17] {
        // partition_max_bytes below the first batch: exactly that whole batch.
        let req = fetch_req(&mut c, version, "limits", vec![fetch_partition(0, 0, 100)]);
        let p = only_partition(c.send(version, req));
        let data = p.records.expect("records");
        let bs: Vec<_> = batches(&data).map(|b| b.expect("whole batch")).collect();
        assert_eq!(bs.len(), 1, "Fetch v{version}: one batch over partition_max_bytes");
        assert_eq!(bs[0].0.records_count, 3);
        assert_eq!(bs[0].1.len(), data.len(), "Fetch v{version}: no partial batch");

        // max_bytes across partitions.
        let mut req = fetch_req(
            &mut c,
            version,
            "limits",
            (0..3).map(|p| fetch_partition(p, 0, 1 << 20)).collect(),
        );
        req.max_bytes = 4500;
        let r = c.send(version, req);
        let mut total = 0;
        for t in &r.responses {
            for p in &t.partitions {
                let data = p.records.clone().unwrap_or_default();
                for b in batches(&data) {
                    b.expect("whole batch");
                }
                total += data.len();
            }
        }
        assert!(total > 0, "Fetch v{version}: something returned");
        assert!(total <= 4500, "Fetch v{version}: {total} bytes over max_bytes 4500");
    }
}

#[test]
fn fetch_read_committed_and_topic_ids() {
    let b = shared();
    let mut c = client(&b);
    let created = create(&mut c, "fetch-ids", 1, &[]);
    produce_ok(&mut c, "fetch-ids", 0, batch(3, 10));
    for version in [4, 17] {
        let mut req = fetch_request("fetch-ids", vec![fetch_partition(0, 0, 1 << 20)]);
        req.isolation_level = 1;
        if version >= 13 {
            req.topics[0].topic_id = created.topic_id;
        }
        let p = only_partition(c.send(version, req));
        assert_eq!(p.error_code, NONE);
        assert_eq!(
            p.aborted_transactions,
            Some(Vec::new()),
            "Fetch v{version} read_committed: empty aborted list"
        );
        assert_eq!(p.last_stable_offset, 3);
        assert_eq!(fetched_records(&p.records.expect("records")).len(), 3);
    }
    for version in [13, 17] {
        let mut req = fetch_request("", vec![fetch_partition(0, 0, 1 << 20)]);
        req.topics[0].topic_id = created.topic_id;
        let r = c.send(version, req);
        assert_eq!(r.responses[0].topic_id, created.topic_id);
        let p = only_partition(r);
        assert_eq!(p.error_code, NONE, "Fetch v{version} by topic id");
        assert_eq!(fetched_records(&p.records.expect("records")).len(), 3);

        let mut req = fetch_request("", vec![fetch_partition(0, 0, 1 << 20)]);
        req.topics[0].topic_id = Uuid([9; 16]);
        let p = only_partition(c.send(version, req));
        assert_eq!(p.error_code, UNKNOWN_TOPIC_ID, "Fetch v{version} unknown topic id");
    }
}

// ---------------------------------------------------------------------------------------------
// Edge cases clients and tools hit
// ---------------------------------------------------------------------------------------------

const INVALID_REPLICA_ASSIGNMENT: i16 = 39;
const INVALID_REQUEST: i16 = 42;
const POLICY_VIOLATION: i16 = 44;

#[test]
fn metadata_empty_and_null_topic_lists() {
    let b = shared();
    let mut c = client(&b);
    create(&mut c, "md-all", 1, &[]);
    // v0: an empty list means every topic.
    let all = metadata(&mut c, 0, &[], false);
    assert!(
        all.topics.iter().any(|t| t.name.as_deref() == Some("md-all")),
        "Metadata v0 [] lists all topics"
    );
    // v1+: empty means none, null means all.
    for version in [1, 12] {
        assert!(
            metadata(&mut c, version, &[], false).topics.is_empty(),
            "Metadata v{version} [] lists no topic"
        );
        let r = c.send(
            version,
            MetadataRequest {
                topics: None,
                allow_auto_topic_creation: false,
                ..Default::default()
            },
        );
        assert!(
            r.topics.iter().any(|t| t.name.as_deref() == Some("md-all")),
            "Metadata v{version} null lists all topics"
        );
    }
}

#[test]
fn create_topics_defaults_and_invalid_specs() {
    let b = shared();
    let mut c = client(&b);
    // v4+: -1 takes num.partitions (4 on this broker) and default.replication.factor.
    for version in [4, 7] {
        let name = format!("ct-defaults-v{version}");
        let r = create_raw(
            &mut c,
            version,
            CreatableTopic {
                num_partitions: -1,
                replication_factor: -1,
                ..topic_spec(&name, 0, &[])
            },
            false,
        );
        assert_eq!(r.error_code, NONE, "CreateTopics v{version} with -1/-1");
        if version >= 5 {
            assert_eq!((r.num_partitions, r.replication_factor), (4, 1));
        }
        assert_eq!(topic_md(&mut c, 12, &name).partitions.len(), 4);
    }
    let node = node_id(&mut c);
    for version in [0, 7] {
        let cases: Vec<(CreatableTopic, i16, &str)> = vec![
            (topic_spec("bad/name", 1, &[]), INVALID_TOPIC_EXCEPTION, "invalid name"),
            (
                topic_spec(&format!("ct-zero-v{version}"), 0, &[]),
                INVALID_PARTITIONS,
                "0 partitions",
            ),
            (
                CreatableTopic {
                    replication_factor: 0,
                    ..topic_spec(&format!("ct-rf0-v{version}"), 1, &[])
                },
                INVALID_REPLICATION_FACTOR,
                "RF 0",
            ),
            (
                CreatableTopic {
                    num_partitions: 2,
                    replication_factor: -1,
                    assignments: vec![CreatableReplicaAssignment {
                        partition_index: 0,
                        broker_ids: vec![node],
                        ..Default::default()
                    }],
                    ..topic_spec(&format!("ct-both-v{version}"), 0, &[])
                },
                INVALID_REQUEST,
                "assignments with num_partitions set",
            ),
            (
                topic_spec(&format!("ct-unknown-cfg-v{version}"), 1, &[("no.such.config", "1")]),
                INVALID_CONFIG,
                "unknown config",
            ),
        ];
        for (spec, want, what) in cases {
            let name = spec.name.clone();
            let r = create_raw(&mut c, version, spec, false);
            assert_eq!(
                r.error_code, want,
                "CreateTopics v{version} {what}: {:?}",
                r.error_message
            );
            if version >= 1 {
                assert!(
                    r.error_message.is_some(),
                    "CreateTopics v{version} {what}: error message"
                );
            }
            assert_ne!(topic_md(&mut c, 12, &name).error_code, NONE, "{name} must not exist");
        }
    }
    // One bad topic does not fail the others in the same request.
    let r = c.send(
        7,
        CreateTopicsRequest {
            topics: vec![
                topic_spec("ct-mixed-ok", 1, &[]),
                topic_spec("ct-mixed-bad", 1, &[("retention.ms", "x")]),
            ],
            timeout_ms: 10_000,
            ..Default::default()
        },
    );
    let codes: BTreeMap<&str, i16> = r.topics.iter().map(|t| (t.name.as_str(), t.error_code)).collect();
    assert_eq!(
        codes,
        BTreeMap::from([("ct-mixed-ok", NONE), ("ct-mixed-bad", INVALID_CONFIG)])
    );
}

#[test]
fn delete_then_recreate_starts_empty() {
    let b = shared();
    let mut c = client(&b);
    let first = create(&mut c, "dt-recreate", 1, &[]);
    for _ in 0..3 {
        produce_ok(&mut c, "dt-recreate", 0, batch(5, 10));
    }
    let r = c.send(
        6,
        DeleteTopicsRequest {
            topics: vec![DeleteTopicState {
                name: Some("dt-recreate".into()),
                topic_id: Uuid::ZERO,
                ..Default::default()
            }],
            timeout_ms: 10_000,
            ..Default::default()
        },
    );
    assert_eq!(r.responses[0].error_code, NONE);
    assert_eq!(
        r.responses[0].topic_id, first.topic_id,
        "DeleteTopics v6 by name returns the topic id"
    );
    let second = wait_for("recreate after delete", Duration::from_secs(10), || {
        let r = create_raw(&mut c, 7, topic_spec("dt-recreate", 1, &[]), false);
        (r.error_code == NONE).then_some(r)
    });
    assert_ne!(second.topic_id, first.topic_id, "a recreated topic gets a new id");
    assert_eq!(
        list_offset(&mut c, 9, "dt-recreate", 0, -1).offset,
        0,
        "recreated topic is empty"
    );
    assert_eq!(produce_ok(&mut c, "dt-recreate", 0, batch(1, 10)), 0);
    let p = fetch_one(&mut c, 17, "dt-recreate", 0, 0);
    assert_eq!(
        fetched_records(&p.records.expect("records")).len(),
        1,
        "no old data after recreate"
    );
}

#[test]
fn create_partitions_with_assignments() {
    let b = shared();
    let mut c = client(&b);
    let node = node_id(&mut c);
    create(&mut c, "cp-assign", 1, &[]);
    let send = |c: &mut Client, count: i32, n: usize| {
        let r = c.send(
            3,
            CreatePartitionsRequest {
                topics: vec![CreatePartitionsTopic {
                    name: "cp-assign".into(),
                    count,
                    assignments: Some(vec![
                            runnel_protocol::generated::create_partitions_request::CreatePartitionsAssignment {
                                broker_ids: vec![node],
                                ..Default::default()
                            };
                            n
                        ]),
                    ..Default::default()
                }],
                timeout_ms: 10_000,
                ..Default::default()
            },
        );
        r.results[0].error_code
    };
    assert_eq!(
        send(&mut c, 3, 1),
        INVALID_REPLICA_ASSIGNMENT,
        "2 new partitions, 1 assignment"
    );
    assert_eq!(topic_md(&mut c, 12, "cp-assign").partitions.len(), 1);
    assert_eq!(send(&mut c, 3, 2), NONE, "2 new partitions, 2 assignments");
    let t = topic_md(&mut c, 12, "cp-assign");
    assert_eq!(t.partitions.len(), 3);
    assert!(t.partitions.iter().all(|p| p.replica_nodes == vec![node]));
}

#[test]
fn describe_configs_broker_wrong_id_and_bad_keys() {
    let b = shared();
    let mut c = client(&b);
    let node = node_id(&mut c);
    let r = describe_configs(&mut c, 4, RESOURCE_BROKER, &(node + 1).to_string(), None, false, false);
    assert_eq!(r.error_code, INVALID_REQUEST, "DescribeConfigs for another broker id");
    let r = describe_configs(
        &mut c,
        4,
        RESOURCE_BROKER,
        &node.to_string(),
        Some(&["num.partitions", "log.retention.hours"]),
        false,
        false,
    );
    assert_eq!(r.error_code, NONE);
    let got: BTreeMap<&str, Option<&str>> = r
        .configs
        .iter()
        .map(|e| (e.name.as_str(), e.value.as_deref()))
        .collect();
    assert_eq!(
        got,
        BTreeMap::from([("num.partitions", Some("4")), ("log.retention.hours", Some("168"))])
    );
}

#[test]
fn incremental_alter_configs_rejections() {
    let b = shared();
    let mut c = client(&b);
    create(&mut c, "iac-rej", 1, &[]);
    for version in [0, 1] {
        assert_eq!(
            incremental(
                &mut c,
                version,
                "iac-rej",
                &[("retention.ms", APPEND, Some("5"))],
                false
            ),
            INVALID_CONFIG,
            "APPEND to a non-list config"
        );
        assert_eq!(
            incremental(&mut c, version, "iac-rej", &[("no.such.config", SET, Some("5"))], false),
            INVALID_CONFIG,
            "unknown config"
        );
        assert_eq!(
            incremental(&mut c, version, "iac-never", &[("retention.ms", SET, Some("5"))], false),
            UNKNOWN_TOPIC_OR_PARTITION
        );
        // One bad op rejects the whole resource: the good SET must not apply.
        assert_eq!(
            incremental(
                &mut c,
                version,
                "iac-rej",
                &[("segment.ms", SET, Some("7200000")), ("retention.ms", SET, Some("x"))],
                false
            ),
            INVALID_CONFIG
        );
        assert_eq!(
            config_value(&mut c, "iac-rej", "segment.ms").1,
            DEFAULT_CONFIG,
            "a rejected request applied part of its ops"
        );
    }
}

#[test]
fn delete_records_refused_on_compacted_topic() {
    let b = shared();
    let mut c = client(&b);
    create(&mut c, "dr-compact", 1, &[("cleanup.policy", "compact")]);
    produce_ok(&mut c, "dr-compact", 0, batch(5, 10));
    for version in [0, 2] {
        assert_eq!(
            delete_records(&mut c, version, "dr-compact", 0, 2).0,
            POLICY_VIOLATION,
            "DeleteRecords v{version} on a compacted topic"
        );
    }
    assert_eq!(list_offset(&mut c, 9, "dr-compact", 0, -2).offset, 0);
    // A policy that includes delete allows it.
    create(&mut c, "dr-compact-delete", 1, &[("cleanup.policy", "compact,delete")]);
    produce_ok(&mut c, "dr-compact-delete", 0, batch(5, 10));
    assert_eq!(delete_records(&mut c, 2, "dr-compact-delete", 0, 2), (NONE, 2));
}

#[test]
fn leader_epoch_checks_in_list_offsets_and_fetch() {
    let b = shared();
    let mut c = client(&b);
    create(&mut c, "epochs", 1, &[]);
    produce_ok(&mut c, "epochs", 0, batch(5, 10));
    let epoch = topic_md(&mut c, 12, "epochs").partitions[0].leader_epoch;
    // ListOffsets v4+ carries current_leader_epoch.
    for version in [4, 9] {
        let mut r = c.send(
            version,
            ListOffsetsRequest {
                replica_id: -1,
                topics: vec![ListOffsetsTopic {
                    name: "epochs".into(),
                    partitions: vec![ListOffsetsPartition {
                        partition_index: 0,
                        current_leader_epoch: epoch + 1,
                        timestamp: -1,
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            },
        );
        let p = r.topics.remove(0).partitions.remove(0);
        assert_eq!(
            p.error_code, UNKNOWN_LEADER_EPOCH,
            "ListOffsets v{version} newer current_leader_epoch"
        );
        let l = list_offset(&mut c, version, "epochs", 0, -1);
        assert_eq!(
            (l.offset, l.leader_epoch),
            (5, epoch),
            "ListOffsets v{version} latest with leader epoch"
        );
    }
    // Fetch v9+ carries current_leader_epoch.
    for version in [9, 17] {
        let mut part = fetch_partition(0, 0, 1 << 20);
        part.current_leader_epoch = epoch + 1;
        let req = fetch_req(&mut c, version, "epochs", vec![part]);
        let p = only_partition(c.send(version, req));
        assert_eq!(
            p.error_code, UNKNOWN_LEADER_EPOCH,
            "Fetch v{version} newer current_leader_epoch"
        );
    }
    // OffsetForLeaderEpoch for an epoch after the current one: undefined epoch and offset.
    let (err, e, end) = epoch_end(&mut c, 4, "epochs", -1, epoch + 5);
    assert_eq!((err, e, end), (NONE, -1, -1), "OffsetForLeaderEpoch for a future epoch");
}

#[test]
fn fetch_offsets_at_and_past_the_end() {
    let b = shared();
    let mut c = client(&b);
    create(&mut c, "fetch-end", 1, &[]);
    produce_ok(&mut c, "fetch-end", 0, batch(5, 10));
    for version in [4, 17] {
        let p = fetch_one(&mut c, version, "fetch-end", 0, 5);
        assert_eq!(p.error_code, NONE, "Fetch v{version} at the HW");
        assert_eq!(p.records.as_ref().map(|r| r.len()), Some(0));
        assert_eq!(p.high_watermark, 5);
        let p = fetch_one(&mut c, version, "fetch-end", 0, 6);
        assert_eq!(p.error_code, OFFSET_OUT_OF_RANGE, "Fetch v{version} past the HW");
        let p = fetch_one(&mut c, version, "fetch-end", 0, 2);
        let offs: Vec<i64> = fetched_records(&p.records.expect("records"))
            .iter()
            .map(|(o, _)| *o)
            .collect();
        assert_eq!(
            offs,
            vec![0, 1, 2, 3, 4],
            "a fetch inside a batch returns the whole batch"
        );
        let req = fetch_req(&mut c, version, "fetch-end", vec![fetch_partition(3, 0, 1 << 20)]);
        let p = only_partition(c.send(version, req));
        assert_eq!(
            p.error_code, UNKNOWN_TOPIC_OR_PARTITION,
            "Fetch v{version} missing partition"
        );
    }
}

/// Every Fetch version, read_committed or not, answers with the same batches for partitions of
/// large and small record sets in one response; a consumer reading on in 64 KiB steps gets
/// every record once, in order (each read starts where the one before ended).
#[test]
fn fetch_versions_agree_and_reading_on_gets_every_record_once() {
    let b = shared();
    let mut c = client(&b);
    create(&mut c, "fetch-versions", 3, &[]);
    for _ in 0..40 {
        produce_ok(&mut c, "fetch-versions", 0, batch(20, 1000));
        produce_ok(&mut c, "fetch-versions", 2, batch(20, 1000));
    }
    produce_ok(&mut c, "fetch-versions", 1, batch(2, 10));
    let fetch_all = |c: &mut Client, version: i16, isolation_level: i8| {
        let mut req = fetch_req(
            c,
            version,
            "fetch-versions",
            (0..3).map(|p| fetch_partition(p, 0, 1 << 20)).collect(),
        );
        req.isolation_level = isolation_level;
        let r = c.send(version, req);
        let parts = &r.responses[0].partitions;
        assert!(
            parts.iter().all(|p| p.error_code == NONE),
            "Fetch v{version}: {parts:?}"
        );
        parts
            .iter()
            .map(|p| p.records.clone().unwrap_or_default())
            .collect::<Vec<_>>()
    };
    let v4 = fetch_all(&mut c, 4, 0);
    assert_eq!(fetched_records(&v4[0]).len(), 800);
    assert_eq!(fetched_records(&v4[1]).len(), 2);
    for (version, isolation_level) in [(12, 0), (17, 0), (17, 1)] {
        let later = fetch_all(&mut c, version, isolation_level);
        assert_eq!(later, v4, "Fetch v{version} isolation {isolation_level}");
    }
    // A consumer reading on in 64 KiB steps gets every record once, in order.
    let mut offset = 0;
    let mut values = Vec::new();
    while offset < 800 {
        let req = fetch_req(
            &mut c,
            17,
            "fetch-versions",
            vec![fetch_partition(2, offset, 64 * 1024)],
        );
        let records = only_partition(c.send(17, req)).records.expect("records");
        let got = fetched_records(&records);
        assert_eq!(got.first().map(|(o, _)| *o), Some(offset), "the read at {offset}");
        offset = got.last().map_or(offset, |(o, _)| o + 1);
        values.extend(got.into_iter().map(|(_, r)| r.value));
    }
    let expected: Vec<_> = fetched_records(&v4[0]).into_iter().map(|(_, r)| r.value).collect();
    assert_eq!(values, expected);
}

#[test]
fn fetch_max_bytes_below_first_batch_returns_it() {
    let b = shared();
    let mut c = client(&b);
    create(&mut c, "fetch-big", 2, &[]);
    produce_ok(&mut c, "fetch-big", 0, batch(2, 3000));
    produce_ok(&mut c, "fetch-big", 1, batch(2, 3000));
    for version in [4, 17] {
        let mut req = fetch_req(
            &mut c,
            version,
            "fetch-big",
            vec![fetch_partition(0, 0, 1 << 20), fetch_partition(1, 0, 1 << 20)],
        );
        req.max_bytes = 100;
        let r = c.send(version, req);
        let sizes: Vec<usize> = r.responses[0]
            .partitions
            .iter()
            .map(|p| p.records.as_ref().map_or(0, |d| d.len()))
            .collect();
        assert_eq!(
            sizes.iter().filter(|s| **s > 0).count(),
            1,
            "Fetch v{version} max_bytes=100: exactly one batch overall, got {sizes:?}"
        );
        assert!(sizes[0] > 6000, "the first partition's whole first batch");
    }
}

#[test]
fn describe_topic_partitions_starts_at_cursor() {
    let b = shared();
    let mut c = client(&b);
    create(&mut c, "dtp-cursor", 5, &[]);
    let r = c.send(
        0,
        DescribeTopicPartitionsRequest {
            topics: vec![TopicRequest {
                name: "dtp-cursor".into(),
                ..Default::default()
            }],
            response_partition_limit: 2000,
            cursor: Some(Cursor {
                topic_name: "dtp-cursor".into(),
                partition_index: 3,
                ..Default::default()
            }),
            ..Default::default()
        },
    );
    let idx: Vec<i32> = r.topics[0].partitions.iter().map(|p| p.partition_index).collect();
    assert_eq!(idx, vec![3, 4], "DescribeTopicPartitions from cursor partition 3");
    assert!(r.next_cursor.is_none());
    let p = &r.topics[0].partitions[0];
    assert_eq!(p.replica_nodes, p.isr_nodes);
    assert_eq!(p.eligible_leader_replicas, Some(Vec::new()), "ELR is empty, not null");
}

const UNSUPPORTED_COMPRESSION_TYPE: i16 = 76;

#[test]
fn produce_v3_plus_batch_rules() {
    let b = shared();
    let mut c = client(&b);
    create(&mut c, "zstd-old", 1, &[]);
    let zstd = batch_at(now_ms(), &records(3, 50, 0), Compression::Zstd);
    assert_eq!(
        produce_v(&mut c, 7, "zstd-old", 0, zstd.clone()).error_code,
        NONE,
        "Produce v7 with zstd"
    );
    // Kafka's ProduceRequest.validateRecords: exactly one batch per partition from v3.
    let mut two = BytesMut::from(&batch(1, 10)[..]);
    two.extend_from_slice(&batch(1, 10));
    for version in [3, 11] {
        let p = produce_v(&mut c, version, "zstd-old", 0, two.clone().freeze());
        assert_eq!(
            p.error_code, INVALID_RECORD,
            "Produce v{version} with two batches for one partition"
        );
    }
    assert_eq!(
        list_offset(&mut c, 9, "zstd-old", 0, -1).offset,
        3,
        "rejected produces appended nothing"
    );
}

#[test]
fn produce_zstd_needs_v7() {
    let b = shared();
    let mut c = client(&b);
    create(&mut c, "zstd-old-produce", 1, &[]);
    let zstd = batch_at(now_ms(), &records(3, 50, 0), Compression::Zstd);
    for version in [3, 6] {
        let p = produce_v(&mut c, version, "zstd-old-produce", 0, zstd.clone());
        assert_eq!(
            p.error_code, UNSUPPORTED_COMPRESSION_TYPE,
            "Produce v{version} with a zstd batch"
        );
    }
    assert_eq!(list_offset(&mut c, 9, "zstd-old-produce", 0, -1).offset, 0);
}

#[test]
fn fetch_zstd_topic_needs_v10() {
    let b = shared();
    let mut c = client(&b);
    create(&mut c, "zstd-topic-old", 1, &[("compression.type", "zstd")]);
    produce_ok(&mut c, "zstd-topic-old", 0, batch(3, 50));
    for version in [4, 9] {
        let p = fetch_one(&mut c, version, "zstd-topic-old", 0, 0);
        assert_eq!(
            p.error_code, UNSUPPORTED_COMPRESSION_TYPE,
            "Fetch v{version} of a compression.type=zstd topic"
        );
    }
    let p = fetch_one(&mut c, 10, "zstd-topic-old", 0, 0);
    assert_eq!(p.error_code, NONE);
    assert_eq!(fetched_records(&p.records.expect("records")).len(), 3);
}

#[test]
fn list_offsets_on_log_append_time_topic_uses_append_times() {
    let b = shared();
    let mut c = client(&b);
    create(&mut c, "lat-lo", 1, &[("message.timestamp.type", "LogAppendTime")]);
    let old_ts = now_ms() - 3_600_000;
    let p = produce_v(
        &mut c,
        11,
        "lat-lo",
        0,
        batch_at(old_ts, &records(3, 10, 1), Compression::None),
    );
    assert_eq!(p.error_code, NONE);
    let r = list_offset(&mut c, 9, "lat-lo", 0, old_ts + 10);
    assert_eq!(
        (r.offset, r.timestamp),
        (0, p.log_append_time_ms),
        "lookup by timestamp sees the append time"
    );
    let m = list_offset(&mut c, 9, "lat-lo", 0, -3);
    assert_eq!(m.timestamp, p.log_append_time_ms, "max timestamp is the append time");
}
