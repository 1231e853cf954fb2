//! OffsetFetch (key 9), v0–9: one group up to v7, several per request from v8. Partitions with
//! no committed offset answer -1. With `require_stable` (v7+, sent by read_committed consumers)
//! a partition whose offset is pending in an open transaction answers UNSTABLE_OFFSET_COMMIT
//! (retriable) until the transaction completes, as Kafka.

use runnel_coordinator::{FetchTopics, FetchedOffset};
use runnel_protocol::generated::offset_fetch_request::OffsetFetchRequest;
use runnel_protocol::generated::offset_fetch_response::{
    OffsetFetchResponse, OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use runnel_protocol::ErrorCode;

use crate::broker::Broker;
use crate::group;

pub fn handle(broker: &Broker, req: OffsetFetchRequest, version: i16) -> OffsetFetchResponse {
    if version >= 8 {
        let groups = req
            .groups
            .iter()
            .map(|g| {
                let topics: FetchTopics = g.topics.as_ref().map(|ts| {
                    ts.iter()
                        .map(|t| (t.name.clone(), t.partition_indexes.clone()))
                        .collect()
                });
                match fetch(broker, &g.group_id, &topics, req.require_stable) {
                    Ok(fetched) => OffsetFetchResponseGroup {
                        group_id: g.group_id.clone(),
                        topics: fetched.into_iter().map(|(name, ps)| topics_v8(name, ps)).collect(),
                        ..Default::default()
                    },
                    Err(code) => OffsetFetchResponseGroup {
                        group_id: g.group_id.clone(),
                        error_code: code.code(),
                        ..Default::default()
                    },
                }
            })
            .collect();
        return OffsetFetchResponse {
            groups,
            ..Default::default()
        };
    }
    let topics: FetchTopics = req.topics.as_ref().map(|ts| {
        ts.iter()
            .map(|t| (t.name.clone(), t.partition_indexes.clone()))
            .collect()
    });
    match fetch(broker, &req.group_id, &topics, req.require_stable && version >= 7) {
        Ok(fetched) => OffsetFetchResponse {
            topics: fetched.into_iter().map(|(name, ps)| topic_v0(name, ps, 0)).collect(),
            ..Default::default()
        },
        // Before v2 there is no top-level error: every partition carries it.
        Err(code) if version < 2 => OffsetFetchResponse {
            topics: topics
                .unwrap_or_default()
                .into_iter()
                .map(|(name, ps)| {
                    let missing = ps.into_iter().map(fetched_none).collect();
                    topic_v0(name, missing, code.code())
                })
                .collect(),
            ..Default::default()
        },
        Err(code) => OffsetFetchResponse {
            error_code: code.code(),
            ..Default::default()
        },
    }
}

fn fetch(
    broker: &Broker,
    group_id: &str,
    topics: &FetchTopics,
    require_stable: bool,
) -> Result<Vec<(String, Vec<FetchedOffset>)>, ErrorCode> {
    let shard = broker.groups.shard_for(group_id)?;
    Ok(group::read(shard, |c| {
        let mut fetched = c.offset_fetch(group_id, topics);
        if require_stable {
            for (topic, partitions) in &mut fetched {
                for p in partitions.iter_mut() {
                    if c.has_pending_offset(group_id, topic, p.partition) {
                        p.offset = -1;
                        p.error = ErrorCode::UNSTABLE_OFFSET_COMMIT;
                    }
                }
            }
        }
        fetched
    }))
}

fn fetched_none(partition: i32) -> FetchedOffset {
    FetchedOffset {
        partition,
        offset: -1,
        leader_epoch: -1,
        metadata: String::new(),
        error: ErrorCode::NONE,
    }
}

fn topic_v0(name: String, partitions: Vec<FetchedOffset>, error_code: i16) -> OffsetFetchResponseTopic {
    OffsetFetchResponseTopic {
        name,
        partitions: partitions
            .into_iter()
            .map(|p| OffsetFetchResponsePartition {
                partition_index: p.partition,
                committed_offset: p.offset,
                committed_leader_epoch: p.leader_epoch,
                metadata: Some(p.metadata),
                error_code: if p.error == ErrorCode::NONE {
                    error_code
                } else {
                    p.error.code()
                },
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

fn topics_v8(name: String, partitions: Vec<FetchedOffset>) -> OffsetFetchResponseTopics {
    OffsetFetchResponseTopics {
        name,
        partitions: partitions
            .into_iter()
            .map(|p| OffsetFetchResponsePartitions {
                partition_index: p.partition,
                committed_offset: p.offset,
                committed_leader_epoch: p.leader_epoch,
                metadata: Some(p.metadata),
                error_code: p.error.code(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}
