//! OffsetForLeaderEpoch (key 23), v0–4: the end offset of a leader epoch (the start offset of
//! the next epoch, or the log end offset for the latest), used by consumers to detect log
//! truncation and by followers to truncate.

use runnel_protocol::generated::offset_for_leader_epoch_request::{
    OffsetForLeaderEpochRequest, OffsetForLeaderPartition,
};
use runnel_protocol::generated::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderEpochResponse, OffsetForLeaderTopicResult,
};
use runnel_protocol::ErrorCode;

use crate::broker::Broker;

pub fn handle(broker: &Broker, req: OffsetForLeaderEpochRequest) -> OffsetForLeaderEpochResponse {
    let topics = req
        .topics
        .iter()
        .map(|t| OffsetForLeaderTopicResult {
            topic: t.topic.clone(),
            partitions: t.partitions.iter().map(|p| lookup(broker, &t.topic, p)).collect(),
            ..Default::default()
        })
        .collect();
    OffsetForLeaderEpochResponse {
        topics,
        ..Default::default()
    }
}

fn lookup(broker: &Broker, topic: &str, p: &OffsetForLeaderPartition) -> EpochEndOffset {
    let answer = |error: ErrorCode, leader_epoch: i32, end_offset: i64| EpochEndOffset {
        error_code: error.code(),
        partition: p.partition,
        leader_epoch,
        end_offset,
        ..Default::default()
    };
    let Some(part) = broker.replicas.get(topic, p.partition) else {
        return answer(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION, -1, -1);
    };
    if let Err(code) = part.check_leader_epoch(p.current_leader_epoch) {
        return answer(code, -1, -1);
    }
    let log = part.log();
    match log.end_offset_for_epoch(p.leader_epoch) {
        Some((e, end)) => answer(ErrorCode::NONE, e, end),
        // No epoch recorded yet (empty log): the requested epoch ends at the log end offset.
        None if log.latest_epoch().is_none() => answer(ErrorCode::NONE, p.leader_epoch, log.log_end_offset()),
        None => answer(ErrorCode::NONE, -1, -1),
    }
}
