//! `__consumer_offsets` as a log: creating the topic, appending coordinator records as record
//! batches, and reading a partition back at start-up.

use runnel_coordinator::{CoordinatorRecord, GroupCoordinator};
use runnel_metadata::controller::CreateTopicSpec;
use runnel_protocol::records::{self, BatchBuilderParams};

use crate::broker::{now_ms, Broker, StartError};
use crate::internal_topic;

pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

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
    internal_topic::partitions(broker, OFFSETS_TOPIC)
}

/// Creates `__consumer_offsets` (compacted, `offsets.topic.num.partitions` partitions) when it
/// does not exist; returns its partition count.
pub async fn ensure_offsets_topic(broker: &Broker) -> Result<i32, StartError> {
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
    internal_topic::ensure(broker, spec).await
}

/// Appends `records` to `__consumer_offsets-<partition>` as one uncompressed batch.
pub fn append(broker: &Broker, partition: i32, records: &[CoordinatorRecord]) -> Result<(), AppendError> {
    let part = broker
        .replicas
        .get(OFFSETS_TOPIC, partition)
        .ok_or(AppendError::NoPartition(partition))?;
    let now = now_ms();
    let pairs = records
        .iter()
        .map(|r| r.to_key_value().map_err(|e| AppendError::Encode(e.to_string())))
        .collect::<Result<Vec<_>, _>>()?;
    let params = BatchBuilderParams {
        base_timestamp: now,
        ..Default::default()
    };
    let mut buf = internal_topic::encode_batch(pairs, &params).map_err(AppendError::Encode)?;
    {
        let mut log = part.log();
        log.append_as_leader(&mut buf, part.leader_epoch(), now)?;
        part.publish(&log);
    }
    Ok(())
}

/// Replays `__consumer_offsets-<partition>` into `coordinator`; returns the records applied.
/// Records that do not decode are skipped with a warning rather than stopping the broker.
pub fn load(broker: &Broker, partition: i32, coordinator: &mut GroupCoordinator) -> Result<usize, StartError> {
    let Some(part) = broker.replicas.get(OFFSETS_TOPIC, partition) else {
        return Ok(0);
    };
    let mut applied = 0usize;
    internal_topic::for_each_batch(&part, |header, bytes| {
        if header.is_control() {
            if let Some(commit) = runnel_storage::control_marker_type(bytes) {
                coordinator.complete_txn(header.producer_id, commit);
            }
            return;
        }
        let transactional = header.is_transactional().then_some(header.producer_id);
        applied += replay_batch(bytes, partition, transactional, coordinator);
    })?;
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
