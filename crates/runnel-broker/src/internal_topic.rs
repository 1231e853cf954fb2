//! What the group and transaction coordinators share about their internal topics
//! (`__consumer_offsets`, `__transaction_state`): creating one through the controller, writing
//! key/value records as one uncompressed batch, and reading a partition back from its start to
//! the high watermark at load time.
//!
//! Must never: interpret the records (each coordinator owns its format) or hold a partition
//! lock across a caller's callback beyond one read.

use bytes::{Bytes, BytesMut};
use runnel_metadata::controller::{self, CreateTopicSpec, CreateTopicsOptions};
use runnel_protocol::records::{self, BatchBuilderParams, BatchHeader, Compression, Record};
use runnel_protocol::ErrorCode;

use crate::broker::{Broker, StartError};
use crate::replica::Partition;

/// Bytes read per step while loading a partition.
const LOAD_READ_BYTES: usize = 1 << 20;

/// The partition count of `topic`, if it exists.
pub fn partitions(broker: &Broker, topic: &str) -> Option<i32> {
    broker
        .image()
        .topic(topic)
        .map(|t| i32::try_from(t.partitions.len()).unwrap_or(0))
}

/// Creates the internal topic `spec` names unless it exists; returns its partition count (0 if
/// creation failed, which the caller reports).
pub async fn ensure(broker: &Broker, spec: CreateTopicSpec) -> Result<i32, StartError> {
    let name = spec.name.clone();
    if let Some(n) = partitions(broker, &name) {
        return Ok(n);
    }
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
            Ok(_) => tracing::info!("created {name}"),
            Err(e) if e.code == ErrorCode::TOPIC_ALREADY_EXISTS.code() => {}
            Err(e) => tracing::error!(error = %e, "creating {name} failed"),
        }
    }
    Ok(partitions(broker, &name).unwrap_or(0))
}

/// One uncompressed batch of key/value records; `params` carries the producer fields (a
/// transactional batch) or defaults.
pub fn encode_batch(
    pairs: impl IntoIterator<Item = (Bytes, Option<Bytes>)>,
    params: &BatchBuilderParams,
) -> Result<BytesMut, String> {
    let mut batch_records = Vec::new();
    for (i, (key, value)) in pairs.into_iter().enumerate() {
        batch_records.push(Record {
            attributes: 0,
            timestamp_delta: 0,
            offset_delta: i32::try_from(i).map_err(|_| "too many records".to_string())?,
            key: Some(key),
            value,
            headers: Vec::new(),
        });
    }
    let batch = records::encode_batch(params, &batch_records, Compression::None).map_err(|e| e.to_string())?;
    Ok(BytesMut::from(&batch[..]))
}

/// Calls `f` with every batch of `part` from its log start to its high watermark, in order.
/// Stops at the first unreadable batch (logged), as a coordinator load should not fail on it.
pub fn for_each_batch(part: &Partition, mut f: impl FnMut(&BatchHeader, &[u8])) -> Result<(), StartError> {
    let end = part.high_watermark();
    let mut offset = part.log_start_offset();
    while offset < end {
        let read = part.log().read(offset, LOAD_READ_BYTES, end, true)?;
        let mut next = offset;
        for batch in records::batches(&read.records) {
            let (header, bytes) = match batch {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!(topic = part.topic, partition = part.index, offset = next, error = %e, "unreadable batch");
                    break;
                }
            };
            next = header.last_offset() + 1;
            f(&header, bytes);
        }
        if next <= offset {
            break;
        }
        offset = next;
    }
    Ok(())
}
