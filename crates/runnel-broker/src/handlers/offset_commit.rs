//! OffsetCommit (key 8), v0–9: generation and member checks for groups with members, simple
//! commits (generation -1) for groups without; metadata strings round-trip. Partitions of
//! topics that do not exist get UNKNOWN_TOPIC_OR_PARTITION, as in Kafka.

use runnel_coordinator::CommitContext;
use runnel_protocol::generated::offset_commit_request::OffsetCommitRequest;
use runnel_protocol::generated::offset_commit_response::{
    OffsetCommitResponse, OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use runnel_protocol::ErrorCode;

use crate::broker::{now_ms, Broker};
use crate::group;

pub fn handle(broker: &Broker, req: OffsetCommitRequest, version: i16) -> OffsetCommitResponse {
    let shard = match broker.groups.shard_for(&req.group_id) {
        Ok(s) => s,
        Err(code) => return all_failed(&req, code),
    };
    let image = broker.image();
    let exists = |topic: &str, partition: i32| {
        image
            .topic(topic)
            .is_some_and(|t| t.partitions.iter().any(|p| p.partition == partition))
    };
    let ctx = CommitContext {
        version,
        partition_exists: &exists,
    };
    match group::decide(broker, shard, |c| c.offset_commit(&req, ctx, now_ms())) {
        Ok(response) => response,
        Err(code) => all_failed(&req, code),
    }
}

fn all_failed(req: &OffsetCommitRequest, code: ErrorCode) -> OffsetCommitResponse {
    let topics = req
        .topics
        .iter()
        .map(|t| OffsetCommitResponseTopic {
            name: t.name.clone(),
            partitions: t
                .partitions
                .iter()
                .map(|p| OffsetCommitResponsePartition {
                    partition_index: p.partition_index,
                    error_code: code.code(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        })
        .collect();
    OffsetCommitResponse {
        topics,
        ..Default::default()
    }
}
