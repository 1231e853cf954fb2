//! `__consumer_offsets` as a log: creating the topic, appending coordinator records as record
//! batches, and reading a partition back at start-up.

use bytes::{Bytes, BytesMut};
use runnel_coordinator::{CoordinatorRecord, GroupCoordinator};
use runnel_metadata::controller::{self, CreateTopicSpec, CreateTopicsOptions};
use runnel_protocol::records::{self, BatchBuilderParams, Compression, Record};
use runnel_protocol::ErrorCode;

use crate::broker::{now_ms, Broker, StartError};

pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// Bytes read per step while loading a partition.
const LOAD_READ_BYTES: usize = 1 << 20;
/// Upper bound on a decompressed batch while loading.
const MAX_DECOMPRESSED_BYTES: usize = 64 * 1024 * 1024;
/// Kafka's segment size for the offsets topic (`offsets.topic.segment.bytes`).
const OFFSETS_SEGMENT_BYTES: &str = "104857600";

#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    #[error("this broker does not host {OFFSETS_TOPIC}-{0}")]
    NoPartition(i32),
    #[error("cannot encode records: {0}")]
    Encode(String),
    #[error("append failed: {0}")]
    Storage(#[from] runnel_storage::StorageError),
}

/// The partition count of `__consumer_offsets`, if it exists.
pub fn offsets_topic_partitions(broker: &Broker) -> Option<i32> {
    broker
        .image()
        .topic(OFFSETS_TOPIC)
        .map(|t| i32::try_from(t.partitions.len()).unwrap_or(0))
}

/// Creates `__consumer_offsets` (compacted, `offsets.topic.num.partitions` partitions) when it
/// does not exist; returns its partition count.
pub async fn ensure_offsets_topic(broker: &Broker) -> Result<i32, StartError> {
    if let Some(n) = offsets_topic_partitions(broker) {
        return Ok(n);
    }
    let spec = CreateTopicSpec {
        name: OFFSETS_TOPIC.to_string(),
        num_partitions: broker.config.offsets_topic_num_partitions.max(1),
        replication_factor: broker.config.offsets_topic_replication_factor.max(1),
        assignments: Vec::new(),
        configs: vec![
            ("cleanup.policy".into(), Some("compact".into())),
            ("compression.type".into(), Some("producer".into())),
            ("segment.bytes".into(), Some(OFFSETS_SEGMENT_BYTES.into())),
        ],
    };
    let opts = CreateTopicsOptions {
        validate_only: false,
        default_num_partitions: broker.config.num_partitions,
        default_replication_factor: 1,
        live_broker_ids: vec![broker.node_id],
        topic_ids: vec![*uuid::Uuid::new_v4().as_bytes()],
    };
    let outcomes = broker
        .propose(move |image| controller::create_topics(image, &[spec], &opts))
        .await?;
    for outcome in outcomes {
        match outcome {
            Ok(_) => tracing::info!("created {OFFSETS_TOPIC}"),
            Err(e) if e.code == ErrorCode::TOPIC_ALREADY_EXISTS.code() => {}
            Err(e) => tracing::error!(error = %e, "creating {OFFSETS_TOPIC} failed"),
        }
    }
    Ok(offsets_topic_partitions(broker).unwrap_or(0))
}

/// Appends `records` to `__consumer_offsets-<partition>` as one uncompressed batch.
pub fn append(broker: &Broker, partition: i32, records: &[CoordinatorRecord]) -> Result<(), AppendError> {
    let part = broker
        .replicas
        .get(OFFSETS_TOPIC, partition)
        .ok_or(AppendError::NoPartition(partition))?;
    let now = now_ms();
    let mut batch_records = Vec::with_capacity(records.len());
    for (i, r) in records.iter().enumerate() {
        let (key, value) = r.to_key_value().map_err(|e| AppendError::Encode(e.to_string()))?;
        batch_records.push(Record {
            attributes: 0,
            timestamp_delta: 0,
            offset_delta: i32::try_from(i).map_err(|_| AppendError::Encode("too many records".into()))?,
            key: Some(key),
            value,
            headers: Vec::new(),
        });
    }
    let params = BatchBuilderParams {
        base_timestamp: now,
        ..Default::default()
    };
    let batch: Bytes = records::encode_batch(&params, &batch_records, Compression::None)
        .map_err(|e| AppendError::Encode(e.to_string()))?;
    let mut buf = BytesMut::from(&batch[..]);
    {
        let mut log = part.log();
        log.append_as_leader(&mut buf, part.leader_epoch(), now)?;
        part.publish(&log);
    }
    broker.replicas.appended.notify_waiters();
    Ok(())
}

/// Replays `__consumer_offsets-<partition>` into `coordinator`; returns the records applied.
/// Records that do not decode are skipped with a warning rather than stopping the broker.
pub fn load(broker: &Broker, partition: i32, coordinator: &mut GroupCoordinator) -> Result<usize, StartError> {
    let Some(part) = broker.replicas.get(OFFSETS_TOPIC, partition) else {
        return Ok(0);
    };
    let end = part.high_watermark();
    let mut offset = part.log_start_offset();
    let mut applied = 0usize;
    while offset < end {
        let read = part.log().read(offset, LOAD_READ_BYTES, end, true)?;
        let mut next = offset;
        for batch in records::batches(&read.records) {
            let (header, bytes) = match batch {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!(partition, offset = next, error = %e, "unreadable batch in {OFFSETS_TOPIC}");
                    break;
                }
            };
            next = header.last_offset() + 1;
            if header.is_control() {
                if let Some(commit) = runnel_storage::control_marker_type(bytes) {
                    coordinator.complete_txn(header.producer_id, commit);
                }
                continue;
            }
            let transactional = header.is_transactional().then_some(header.producer_id);
            applied += replay_batch(bytes, partition, transactional, coordinator);
        }
        if next <= offset {
            break;
        }
        offset = next;
    }
    Ok(applied)
}

/// Replays one batch; the offsets of a transactional batch stay pending until its marker.
fn replay_batch(batch: &[u8], partition: i32, transactional: Option<i64>, coordinator: &mut GroupCoordinator) -> usize {
    let decoded = match records::decode_records(batch, MAX_DECOMPRESSED_BYTES) {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(partition, error = %e, "undecodable batch in {OFFSETS_TOPIC}");
            return 0;
        }
    };
    let mut applied = 0;
    for r in decoded {
        let Some(key) = r.key else {
            continue;
        };
        match CoordinatorRecord::from_key_value(&key, r.value.as_deref()) {
            Ok(Some(rec)) => {
                match transactional {
                    Some(producer_id) => coordinator.add_pending_txn_offsets(producer_id, vec![rec]),
                    None => coordinator.replay(rec),
                }
                applied += 1;
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(partition, error = %e, "skipping undecodable {OFFSETS_TOPIC} record"),
        }
    }
    applied
}
