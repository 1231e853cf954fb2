//! DeleteRecords (key 21), v0–2: moves a partition's log start offset forward (offset -1 means
//! the high watermark); whole segments below it are deleted.

use runnel_protocol::generated::delete_records_request::{DeleteRecordsPartition, DeleteRecordsRequest};
use runnel_protocol::generated::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsResponse, DeleteRecordsTopicResult,
};
use runnel_protocol::ErrorCode;

use crate::broker::{now_ms, Broker};

pub fn handle(broker: &Broker, req: DeleteRecordsRequest) -> DeleteRecordsResponse {
    let topics = req
        .topics
        .iter()
        .map(|t| DeleteRecordsTopicResult {
            name: t.name.clone(),
            partitions: t.partitions.iter().map(|p| delete(broker, &t.name, p)).collect(),
            ..Default::default()
        })
        .collect();
    DeleteRecordsResponse {
        topics,
        ..Default::default()
    }
}

fn delete(broker: &Broker, topic: &str, p: &DeleteRecordsPartition) -> DeleteRecordsPartitionResult {
    let result = |error: ErrorCode, low_watermark: i64| DeleteRecordsPartitionResult {
        partition_index: p.partition_index,
        low_watermark,
        error_code: error.code(),
        ..Default::default()
    };
    let Some(part) = broker.replicas.get(topic, p.partition_index) else {
        return result(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION, -1);
    };
    if part.settings().compact && !part.settings().delete {
        // Kafka allows DeleteRecords only where the cleanup policy includes `delete`.
        return result(ErrorCode::POLICY_VIOLATION, -1);
    }
    let mut log = part.log();
    let high_watermark = part.high_watermark();
    let offset = if p.offset == -1 { high_watermark } else { p.offset };
    if offset < 0 || offset > high_watermark {
        return result(ErrorCode::OFFSET_OUT_OF_RANGE, -1);
    }
    match log.delete_records_before(offset, now_ms()) {
        Ok(low) => {
            part.publish(&log);
            result(ErrorCode::NONE, low)
        }
        Err(e) => {
            tracing::warn!(topic, partition = p.partition_index, error = %e, "DeleteRecords failed");
            result(ErrorCode::KAFKA_STORAGE_ERROR, -1)
        }
    }
}
