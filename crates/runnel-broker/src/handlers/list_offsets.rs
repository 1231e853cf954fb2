//! ListOffsets (key 2), v1–9: earliest (-2), latest (-1), max timestamp (-3), earliest local
//! (-4) and by timestamp (the first offset whose timestamp is >= T, or -1 when none). Under
//! `read_committed` (isolation level 1) "latest" is the last stable offset.

use runnel_protocol::generated::list_offsets_request::{ListOffsetsPartition, ListOffsetsRequest};
use runnel_protocol::generated::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsResponse, ListOffsetsTopicResponse,
};
use runnel_protocol::ErrorCode;

use crate::broker::Broker;

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;

const READ_COMMITTED: i8 = 1;

pub fn handle(broker: &Broker, req: ListOffsetsRequest, _version: i16) -> ListOffsetsResponse {
    let committed = req.isolation_level == READ_COMMITTED;
    let topics = req
        .topics
        .iter()
        .map(|t| ListOffsetsTopicResponse {
            name: t.name.clone(),
            partitions: t
                .partitions
                .iter()
                .map(|p| lookup(broker, &t.name, p, committed))
                .collect(),
            ..Default::default()
        })
        .collect();
    ListOffsetsResponse {
        topics,
        ..Default::default()
    }
}

fn lookup(broker: &Broker, topic: &str, p: &ListOffsetsPartition, committed: bool) -> ListOffsetsPartitionResponse {
    let answer = |error: ErrorCode, timestamp: i64, offset: i64, leader_epoch: i32| ListOffsetsPartitionResponse {
        partition_index: p.partition_index,
        error_code: error.code(),
        timestamp,
        offset,
        leader_epoch,
        ..Default::default()
    };
    let Some(part) = broker.replicas.get(topic, p.partition_index) else {
        return answer(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION, -1, -1, -1);
    };
    if let Err(code) = part.check_leader_epoch(p.current_leader_epoch) {
        return answer(code, -1, -1, -1);
    }
    let epoch = part.leader_epoch();
    match p.timestamp {
        LATEST if committed => answer(ErrorCode::NONE, -1, part.last_stable_offset(), epoch),
        LATEST => answer(ErrorCode::NONE, -1, part.high_watermark(), epoch),
        EARLIEST | EARLIEST_LOCAL => answer(ErrorCode::NONE, -1, part.log_start_offset(), epoch),
        MAX_TIMESTAMP => match part.log().max_timestamp_and_offset() {
            Ok(Some(t)) => answer(ErrorCode::NONE, t.timestamp, t.offset, t.leader_epoch),
            Ok(None) => answer(ErrorCode::NONE, -1, -1, -1),
            Err(_) => answer(ErrorCode::KAFKA_STORAGE_ERROR, -1, -1, -1),
        },
        ts if ts >= 0 => match part.log().offset_for_timestamp(ts) {
            Ok(Some(t)) if t.offset < part.high_watermark() => {
                answer(ErrorCode::NONE, t.timestamp, t.offset, t.leader_epoch)
            }
            Ok(_) => answer(ErrorCode::NONE, -1, -1, -1),
            Err(_) => answer(ErrorCode::KAFKA_STORAGE_ERROR, -1, -1, -1),
        },
        _ => answer(ErrorCode::INVALID_REQUEST, -1, -1, -1),
    }
}
