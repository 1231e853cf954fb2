//! Committed offsets: OffsetCommit, OffsetFetch, OffsetDelete and `offsets.retention.minutes`
//! expiry, following Kafka's `OffsetMetadataManager` for classic groups. Every operation here
//! only decides; the state changes when the runtime applies the appended records.

use std::collections::BTreeMap;

use runnel_protocol::generated::offset_commit_request::OffsetCommitRequest;
use runnel_protocol::generated::offset_commit_response::{
    OffsetCommitResponse, OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use runnel_protocol::generated::offset_commit_value::OffsetCommitValue;
use runnel_protocol::generated::offset_delete_request::OffsetDeleteRequest;
use runnel_protocol::generated::offset_delete_response::{
    OffsetDeleteResponse, OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use runnel_protocol::ErrorCode;

use crate::coordinator::{Decision, GroupCoordinator};
use crate::group::{ClassicGroup, GroupState};
use crate::record::CoordinatorRecord;
use crate::subscription::subscribed_topics;

/// Which partitions an OffsetFetch asks for: `None` means every committed offset.
pub type FetchTopics = Option<Vec<(String, Vec<i32>)>>;

/// One partition's committed offset as OffsetFetch reports it (`offset` -1 when none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedOffset {
    pub partition: i32,
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
    /// A per-partition error (UNSTABLE_OFFSET_COMMIT), set by the broker.
    pub error: ErrorCode,
}

/// OffsetCommit's options beside the body.
#[derive(Clone, Copy)]
pub struct CommitContext<'a> {
    pub version: i16,
    /// Whether the topic partition exists (Kafka answers UNKNOWN_TOPIC_OR_PARTITION otherwise).
    pub partition_exists: &'a dyn Fn(&str, i32) -> bool,
}

impl GroupCoordinator {
    /// OffsetCommit: generation and member checks for groups with members; simple commits
    /// (generation -1) for groups without.
    pub fn offset_commit(
        &self,
        req: &OffsetCommitRequest,
        ctx: CommitContext<'_>,
        now_ms: i64,
    ) -> Decision<OffsetCommitResponse> {
        let group_error = self.validate_commit(req, ctx.version).err();
        let mut records = Vec::new();
        let mut topics = Vec::with_capacity(req.topics.len());
        for t in &req.topics {
            let mut partitions = Vec::with_capacity(t.partitions.len());
            for p in &t.partitions {
                let code = match group_error {
                    Some(code) => code,
                    None => self.commit_partition(req, &t.name, p, ctx, now_ms, &mut records),
                };
                partitions.push(OffsetCommitResponsePartition {
                    partition_index: p.partition_index,
                    error_code: code.code(),
                    ..Default::default()
                });
            }
            topics.push(OffsetCommitResponseTopic {
                name: t.name.clone(),
                partitions,
                ..Default::default()
            });
        }
        Decision {
            records,
            response: OffsetCommitResponse {
                topics,
                ..Default::default()
            },
        }
    }

    fn commit_partition(
        &self,
        req: &OffsetCommitRequest,
        topic: &str,
        p: &runnel_protocol::generated::offset_commit_request::OffsetCommitRequestPartition,
        ctx: CommitContext<'_>,
        now_ms: i64,
        records: &mut Vec<CoordinatorRecord>,
    ) -> ErrorCode {
        if !(ctx.partition_exists)(topic, p.partition_index) {
            return ErrorCode::UNKNOWN_TOPIC_OR_PARTITION;
        }
        let metadata = p.committed_metadata.clone().unwrap_or_default();
        if metadata.len() > self.config.offset_metadata_max_bytes {
            return ErrorCode::OFFSET_METADATA_TOO_LARGE;
        }
        let commit_timestamp = if ctx.version == 1 && p.commit_timestamp >= 0 {
            p.commit_timestamp
        } else {
            now_ms
        };
        let expire_timestamp = if (2..=4).contains(&ctx.version) && req.retention_time_ms >= 0 {
            commit_timestamp.saturating_add(req.retention_time_ms)
        } else {
            -1
        };
        records.push(CoordinatorRecord::OffsetCommit {
            group: req.group_id.clone(),
            topic: topic.to_string(),
            partition: p.partition_index,
            value: Some(OffsetCommitValue {
                offset: p.committed_offset,
                leader_epoch: p.committed_leader_epoch,
                metadata,
                commit_timestamp,
                expire_timestamp,
                ..Default::default()
            }),
        });
        ErrorCode::NONE
    }

    /// Kafka's `ClassicGroup.validateOffsetCommit`, plus the unknown-group rules.
    fn validate_commit(&self, req: &OffsetCommitRequest, version: i16) -> Result<(), ErrorCode> {
        if req.group_id.is_empty() {
            return Err(ErrorCode::INVALID_GROUP_ID);
        }
        let generation = req.generation_id_or_member_epoch;
        if let Some(consumer) = self.consumer_groups.get(&req.group_id) {
            return consumer.validate_offset_commit(&req.member_id, generation, version);
        }
        let Some(group) = self.groups.get(&req.group_id) else {
            if generation < 0 {
                // A simple commit creates the group (when its record is applied).
                return Ok(());
            }
            return Err(if version >= 9 {
                ErrorCode::GROUP_ID_NOT_FOUND
            } else {
                ErrorCode::ILLEGAL_GENERATION
            });
        };
        validate_group_commit(group, req)
    }

    /// Committed offsets of one group; `topics` `None` means all of them.
    pub fn offset_fetch(&self, group_id: &str, topics: &FetchTopics) -> Vec<(String, Vec<FetchedOffset>)> {
        let empty = BTreeMap::new();
        let committed = self.offsets.get(group_id).unwrap_or(&empty);
        match topics {
            Some(requested) => requested
                .iter()
                .map(|(topic, partitions)| {
                    let fetched = partitions
                        .iter()
                        .map(|p| fetched(*p, committed.get(&(topic.clone(), *p))))
                        .collect();
                    (topic.clone(), fetched)
                })
                .collect(),
            None => {
                let mut out: Vec<(String, Vec<FetchedOffset>)> = Vec::new();
                for ((topic, p), v) in committed {
                    if out.last().is_none_or(|(t, _)| t != topic) {
                        out.push((topic.clone(), Vec::new()));
                    }
                    if let Some((_, list)) = out.last_mut() {
                        list.push(fetched(*p, Some(v)));
                    }
                }
                out
            }
        }
    }

    /// OffsetDelete: only for groups without members, or for topics a consumer group does not
    /// subscribe to (GROUP_SUBSCRIBED_TO_TOPIC otherwise).
    pub fn offset_delete(&self, req: &OffsetDeleteRequest) -> Decision<OffsetDeleteResponse> {
        let top_error = |code: ErrorCode| Decision {
            records: Vec::new(),
            response: OffsetDeleteResponse {
                error_code: code.code(),
                ..Default::default()
            },
        };
        let Some(group) = self.groups.get(&req.group_id) else {
            return top_error(ErrorCode::GROUP_ID_NOT_FOUND);
        };
        let subscribed = match validate_offset_delete(group) {
            Ok(s) => s,
            Err(code) => return top_error(code),
        };
        let mut records = Vec::new();
        let mut topics = Vec::with_capacity(req.topics.len());
        for t in &req.topics {
            let is_subscribed = subscribed.as_ref().is_some_and(|s| s.contains(&t.name));
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let code = if is_subscribed {
                        ErrorCode::GROUP_SUBSCRIBED_TO_TOPIC
                    } else {
                        if self.committed(&req.group_id, &t.name, p.partition_index).is_some() {
                            records.push(offset_tombstone(&req.group_id, &t.name, p.partition_index));
                        }
                        ErrorCode::NONE
                    };
                    OffsetDeleteResponsePartition {
                        partition_index: p.partition_index,
                        error_code: code.code(),
                        ..Default::default()
                    }
                })
                .collect();
            topics.push(OffsetDeleteResponseTopic {
                name: t.name.clone(),
                partitions,
                ..Default::default()
            });
        }
        Decision {
            records,
            response: OffsetDeleteResponse {
                topics,
                ..Default::default()
            },
        }
    }

    /// `offsets.retention.minutes`: tombstones for expired offsets, and for groups left Empty
    /// with no offsets at all.
    pub fn expire_offsets(&self, now_ms: i64) -> Vec<CoordinatorRecord> {
        let mut records = Vec::new();
        for (group_id, offsets) in &self.offsets {
            // A consumer group with members keeps its offsets (Kafka keeps those of subscribed
            // topics; all of them is the conservative approximation).
            if self
                .consumer_groups
                .get(group_id)
                .is_some_and(|g| !g.members.is_empty())
            {
                continue;
            }
            let group = self.groups.get(group_id);
            let Some(rule) = expiration_rule(group) else {
                continue;
            };
            let mut expired = 0usize;
            for ((topic, partition), v) in offsets {
                if rule.applies_to(topic) && self.is_expired(v, rule.base_ms.unwrap_or(v.commit_timestamp), now_ms) {
                    records.push(offset_tombstone(group_id, topic, *partition));
                    expired += 1;
                }
            }
            if expired == offsets.len() && group.is_some_and(|g| g.state == GroupState::Empty) {
                records.push(CoordinatorRecord::GroupMetadata {
                    group: group_id.clone(),
                    value: None,
                });
            }
        }
        records
    }

    fn is_expired(&self, v: &OffsetCommitValue, base_ms: i64, now_ms: i64) -> bool {
        if v.expire_timestamp >= 0 {
            return now_ms >= v.expire_timestamp;
        }
        now_ms.saturating_sub(base_ms) >= self.config.offsets_retention_ms
    }
}

fn fetched(partition: i32, v: Option<&OffsetCommitValue>) -> FetchedOffset {
    match v {
        Some(v) => FetchedOffset {
            partition,
            offset: v.offset,
            leader_epoch: v.leader_epoch,
            metadata: v.metadata.clone(),
            error: ErrorCode::NONE,
        },
        None => FetchedOffset {
            partition,
            offset: -1,
            leader_epoch: -1,
            metadata: String::new(),
            error: ErrorCode::NONE,
        },
    }
}

pub(crate) fn offset_tombstone(group: &str, topic: &str, partition: i32) -> CoordinatorRecord {
    CoordinatorRecord::OffsetCommit {
        group: group.to_string(),
        topic: topic.to_string(),
        partition,
        value: None,
    }
}

fn validate_group_commit(group: &ClassicGroup, req: &OffsetCommitRequest) -> Result<(), ErrorCode> {
    let generation = req.generation_id_or_member_epoch;
    if group.state == GroupState::Dead {
        return Err(ErrorCode::COORDINATOR_NOT_AVAILABLE);
    }
    if generation < 0 && group.state == GroupState::Empty {
        return Ok(());
    }
    if generation >= 0 || !req.member_id.is_empty() || req.group_instance_id.is_some() {
        group.validate_member(&req.member_id, req.group_instance_id.as_deref())?;
        if generation != group.generation {
            return Err(ErrorCode::ILLEGAL_GENERATION);
        }
    } else if group.state != GroupState::Empty {
        return Err(ErrorCode::UNKNOWN_MEMBER_ID);
    }
    if group.state == GroupState::CompletingRebalance {
        // The member already has the new generation but not its assignment: let it finish.
        return Err(ErrorCode::REBALANCE_IN_PROGRESS);
    }
    Ok(())
}

/// Kafka's `validateOffsetDelete`, returning the topics the group subscribes to (`None` when
/// it has no members).
fn validate_offset_delete(group: &ClassicGroup) -> Result<Option<Vec<String>>, ErrorCode> {
    match group.state {
        GroupState::Dead => Err(ErrorCode::GROUP_ID_NOT_FOUND),
        GroupState::Empty => Ok(None),
        _ if group.protocol_type.as_deref() == Some("consumer") => Ok(Some(group_subscriptions(group))),
        _ => Err(ErrorCode::NON_EMPTY_GROUP),
    }
}

/// Topics subscribed by any member of a `consumer` group. A member whose metadata cannot be
/// parsed counts as subscribed to everything (Kafka's conservative default).
fn group_subscriptions(group: &ClassicGroup) -> Vec<String> {
    let protocol = group.protocol.clone().unwrap_or_default();
    let mut topics = Vec::new();
    for m in &group.members {
        let parsed = m
            .metadata_for(&protocol)
            .or_else(|| m.protocols.first().map(|(_, md)| md))
            .and_then(|md| subscribed_topics(md));
        match parsed {
            Some(ts) => topics.extend(ts),
            None => return vec!["*".to_string()],
        }
    }
    topics.sort();
    topics.dedup();
    topics
}

/// How a group's offsets expire (Kafka's `offsetExpirationCondition`).
struct ExpirationRule {
    /// Age is measured from here; `None` means from each offset's commit time.
    base_ms: Option<i64>,
    /// Offsets of these topics never expire (a live consumer group's subscriptions).
    keep_topics: Vec<String>,
}

impl ExpirationRule {
    fn applies_to(&self, topic: &str) -> bool {
        !self.keep_topics.iter().any(|t| t == topic || t == "*")
    }
}

fn expiration_rule(group: Option<&ClassicGroup>) -> Option<ExpirationRule> {
    let Some(group) = group else {
        return Some(ExpirationRule {
            base_ms: None,
            keep_topics: Vec::new(),
        });
    };
    match (&group.protocol_type, group.state) {
        // A simple group (no protocol): each offset ages from its commit.
        (None, _) => Some(ExpirationRule {
            base_ms: None,
            keep_topics: Vec::new(),
        }),
        // Nobody left in the group: everything ages from the moment it became Empty.
        (Some(_), GroupState::Empty) => Some(ExpirationRule {
            base_ms: Some(group.state_timestamp_ms),
            keep_topics: Vec::new(),
        }),
        // A stable consumer group: only offsets of topics nobody subscribes to expire.
        (Some(t), GroupState::Stable) if t == "consumer" => Some(ExpirationRule {
            base_ms: None,
            keep_topics: group_subscriptions(group),
        }),
        _ => None,
    }
}
