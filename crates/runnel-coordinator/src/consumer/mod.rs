//! The KIP-848 consumer group protocol (ConsumerGroupHeartbeat, ConsumerGroupDescribe), after
//! Kafka's `GroupMetadataManager.consumerGroupHeartbeat` and `CurrentAssignmentBuilder`.
//!
//! Owns: consumer groups (group epoch, target assignment, each member's current assignment and
//! epoch), server-side assignment, session expiry, and the `ConsumerGroup*` records.
//!
//! Must never: read a clock or do I/O (time and topic metadata arrive as arguments).
//!
//! Invariants:
//! - A partition is in at most one member's current assignment (assigned or pending
//!   revocation): a member gets a partition of its target only once no other member holds it,
//!   so a partition moves only after its previous owner acknowledged the revocation.
//! - A member's epoch advances to the assignment epoch only once it has nothing to revoke.
//! - Live operations change the state and return the records describing it; `replay` of those
//!   records into a fresh coordinator rebuilds the same groups (minus session deadlines).
//!
//! Timers: a member is fenced when no heartbeat arrives within the session timeout, or when it
//! has not acknowledged a revocation within its rebalance timeout.
//!
//! Not supported: `subscribed_topic_regex` (INVALID_REQUEST), rack-aware assignment,
//! classic-protocol members in consumer groups (online upgrade/downgrade).

pub mod assignor;
mod records;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

use runnel_protocol::codec::Uuid;
use runnel_protocol::generated::consumer_group_describe_response::{self as describe, DescribedGroup};
use runnel_protocol::generated::consumer_group_heartbeat_request::ConsumerGroupHeartbeatRequest;
use runnel_protocol::generated::consumer_group_heartbeat_response::{self as hb, ConsumerGroupHeartbeatResponse};
use runnel_protocol::generated::consumer_group_metadata_value::ConsumerGroupMetadataValue;
use runnel_protocol::generated::consumer_group_target_assignment_member_value::ConsumerGroupTargetAssignmentMemberValue;
use runnel_protocol::generated::consumer_group_target_assignment_metadata_value::ConsumerGroupTargetAssignmentMetadataValue;
use runnel_protocol::generated::list_groups_response::ListedGroup;
use runnel_protocol::ErrorCode;

pub use records::{is_consumer_key, ConsumerRecord};

use crate::coordinator::{ClientInfo, GroupCoordinator};
use crate::record::CoordinatorRecord;

/// Partitions by topic id.
pub type Assignment = BTreeMap<Uuid, BTreeSet<i32>>;

/// The group type and protocol type of KIP-848 groups.
pub const CONSUMER_GROUP_TYPE: &str = "consumer";

const LEAVE_EPOCH: i32 = -1;
const STATIC_LEAVE_EPOCH: i32 = -2;
const AUTHORIZED_OPERATIONS_OMITTED: i32 = i32::MIN;

/// Broker settings of consumer groups.
#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    /// `group.consumer.session.timeout.ms`
    pub session_timeout_ms: i32,
    /// `group.consumer.heartbeat.interval.ms`
    pub heartbeat_interval_ms: i32,
    /// `group.consumer.max.size`
    pub max_size: usize,
    /// `group.consumer.assignors`; the first is the default.
    pub assignors: Vec<String>,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        ConsumerConfig {
            session_timeout_ms: 45_000,
            heartbeat_interval_ms: 5_000,
            max_size: i32::MAX as usize,
            assignors: vec![assignor::UNIFORM.to_string(), assignor::RANGE.to_string()],
        }
    }
}

/// Kafka's `MemberState` codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MemberState {
    #[default]
    Stable = 0,
    UnrevokedPartitions = 1,
    UnreleasedPartitions = 2,
}

impl MemberState {
    fn from_i8(v: i8) -> Self {
        match v {
            1 => MemberState::UnrevokedPartitions,
            2 => MemberState::UnreleasedPartitions,
            _ => MemberState::Stable,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ConsumerMember {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub subscribed_topic_names: Vec<String>,
    pub server_assignor: Option<String>,
    pub rebalance_timeout_ms: i32,
    pub member_epoch: i32,
    pub previous_member_epoch: i32,
    pub state: MemberState,
    pub assigned: Assignment,
    pub pending_revocation: Assignment,
    /// Transient: fenced when a heartbeat does not arrive before this.
    pub deadline_ms: i64,
    /// Transient: fenced if still revoking at this time (`rebalance_timeout_ms` after it was
    /// asked to revoke); 0 when not revoking.
    pub revocation_deadline_ms: i64,
}

impl ConsumerMember {
    fn new(member_id: &str) -> Self {
        ConsumerMember {
            member_id: member_id.to_string(),
            ..Default::default()
        }
    }

    fn holds(&self, topic: &Uuid, partition: i32) -> bool {
        let has = |a: &Assignment| a.get(topic).is_some_and(|s| s.contains(&partition));
        has(&self.assigned) || has(&self.pending_revocation)
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ConsumerGroup {
    pub group_id: String,
    pub group_epoch: i32,
    pub assignment_epoch: i32,
    pub members: BTreeMap<String, ConsumerMember>,
    pub target: BTreeMap<String, Assignment>,
    /// Subscribed topics: id → (name, partition count), as last used for the target.
    pub partition_metadata: BTreeMap<Uuid, (String, i32)>,
}

impl ConsumerGroup {
    fn new(group_id: &str) -> Self {
        ConsumerGroup {
            group_id: group_id.to_string(),
            ..Default::default()
        }
    }

    /// Kafka's `ConsumerGroupState` names.
    pub fn state_name(&self) -> &'static str {
        if self.members.is_empty() {
            "Empty"
        } else if self.group_epoch > self.assignment_epoch {
            "Assigning"
        } else if self
            .members
            .values()
            .any(|m| m.member_epoch != self.assignment_epoch || m.state != MemberState::Stable)
        {
            "Reconciling"
        } else {
            "Stable"
        }
    }

    /// The assignor the group uses: the one most members ask for, else the broker default.
    pub fn assignor_name(&self, config: &ConsumerConfig) -> String {
        let mut votes: BTreeMap<&str, usize> = BTreeMap::new();
        for m in self.members.values() {
            if let Some(a) = m.server_assignor.as_deref() {
                *votes.entry(a).or_default() += 1;
            }
        }
        let best = votes.into_iter().max_by_key(|(name, n)| (*n, std::cmp::Reverse(*name)));
        match best {
            Some((name, _)) => name.to_string(),
            None => config
                .assignors
                .first()
                .cloned()
                .unwrap_or_else(|| assignor::UNIFORM.to_string()),
        }
    }

    /// Whether a partition is held (assigned or pending revocation) by a member other than `except`.
    fn held_by_other(&self, except: &str, topic: &Uuid, partition: i32) -> bool {
        self.members
            .iter()
            .any(|(id, m)| id != except && m.holds(topic, partition))
    }

    /// OffsetCommit rules for consumer groups (Kafka 4's `ConsumerGroup.validateOffsetCommit`).
    pub fn validate_offset_commit(&self, member_id: &str, member_epoch: i32, version: i16) -> Result<(), ErrorCode> {
        if member_epoch < 0 && self.members.is_empty() {
            return Ok(());
        }
        let member = self.members.get(member_id).ok_or(ErrorCode::UNKNOWN_MEMBER_ID)?;
        if version < 9 {
            return Err(ErrorCode::UNSUPPORTED_VERSION);
        }
        if member_epoch > member.member_epoch {
            return Err(ErrorCode::FENCED_MEMBER_EPOCH);
        }
        if member_epoch < member.member_epoch {
            return Err(ErrorCode::STALE_MEMBER_EPOCH);
        }
        Ok(())
    }
}

/// Topics as the metadata image knows them.
#[derive(Debug, Clone, Default)]
pub struct TopicsSnapshot {
    by_name: BTreeMap<String, (Uuid, i32)>,
    names: BTreeMap<Uuid, String>,
}

impl TopicsSnapshot {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn insert(&mut self, name: &str, id: Uuid, partitions: i32) {
        self.by_name.insert(name.to_string(), (id, partitions));
        self.names.insert(id, name.to_string());
    }

    pub fn by_name(&self, name: &str) -> Option<(Uuid, i32)> {
        self.by_name.get(name).copied()
    }

    pub fn name_of(&self, id: &Uuid) -> Option<&str> {
        self.names.get(id).map(String::as_str)
    }
}

/// What a heartbeat needs beside its body.
pub struct HeartbeatContext<'a> {
    pub client: ClientInfo,
    pub topics: &'a TopicsSnapshot,
    /// Used when the request carries no member id (a v0 client's first heartbeat).
    pub new_member_id: String,
    pub now_ms: i64,
}

type HbError = (ErrorCode, Option<String>);

fn invalid(msg: &str) -> HbError {
    (ErrorCode::INVALID_REQUEST, Some(msg.to_string()))
}

fn error_response(code: ErrorCode, message: Option<String>) -> ConsumerGroupHeartbeatResponse {
    ConsumerGroupHeartbeatResponse {
        error_code: code.code(),
        error_message: message,
        ..Default::default()
    }
}

impl GroupCoordinator {
    pub fn set_consumer_config(&mut self, config: ConsumerConfig) {
        self.consumer_config = config;
    }

    pub fn consumer_group(&self, group_id: &str) -> Option<&ConsumerGroup> {
        self.consumer_groups.get(group_id)
    }

    /// ConsumerGroupHeartbeat: joins, heartbeats, leaves. Returns the records to append (the
    /// state already reflects them) and the response to send after the append.
    pub fn consumer_group_heartbeat(
        &mut self,
        req: &ConsumerGroupHeartbeatRequest,
        ctx: &HeartbeatContext<'_>,
    ) -> (Vec<CoordinatorRecord>, ConsumerGroupHeartbeatResponse) {
        if let Err((code, msg)) = self.validate_heartbeat(req) {
            return (Vec::new(), error_response(code, msg));
        }
        let mut out = Vec::new();
        let result = if req.member_epoch < 0 {
            self.consumer_leave(req, &mut out)
        } else {
            self.consumer_heartbeat_inner(req, ctx, &mut out)
        };
        let records = out.into_iter().map(CoordinatorRecord::Consumer).collect();
        match result {
            Ok(resp) => (records, resp),
            Err((code, msg)) => (records, error_response(code, msg)),
        }
    }

    fn validate_heartbeat(&self, req: &ConsumerGroupHeartbeatRequest) -> Result<(), HbError> {
        if req.group_id.is_empty() {
            return Err(invalid("GroupId can't be empty."));
        }
        if req.instance_id.as_deref() == Some("") {
            return Err(invalid("InstanceId can't be empty."));
        }
        // An empty regex is "no regex" (librdkafka sends one with plain subscriptions).
        if req.subscribed_topic_regex.as_deref().is_some_and(|r| !r.is_empty()) {
            return Err(invalid("SubscribedTopicRegex is not supported by this broker."));
        }
        match req.member_epoch {
            0 => {
                if req.rebalance_timeout_ms == -1 {
                    return Err(invalid("RebalanceTimeoutMs must be provided in first request."));
                }
                if req.topic_partitions.as_ref().is_some_and(|tps| !tps.is_empty()) {
                    return Err(invalid("TopicPartitions must be empty when (re-)joining."));
                }
                if req.subscribed_topic_names.is_none() {
                    return Err(invalid(
                        "SubscribedTopicNames or SubscribedTopicRegex must be set in first request.",
                    ));
                }
            }
            STATIC_LEAVE_EPOCH => {
                if req.member_id.is_empty() {
                    return Err(invalid("MemberId can't be empty."));
                }
                if req.instance_id.is_none() {
                    return Err(invalid("InstanceId can't be null."));
                }
            }
            e if e > 0 || e == LEAVE_EPOCH => {
                if req.member_id.is_empty() {
                    return Err(invalid("MemberId can't be empty."));
                }
            }
            _ => return Err(invalid("MemberEpoch is invalid.")),
        }
        if let Some(a) = req.server_assignor.as_deref() {
            if !self.consumer_config.assignors.iter().any(|x| x == a) {
                return Err((
                    ErrorCode::UNSUPPORTED_ASSIGNOR,
                    Some(format!("ServerAssignor {a} is not supported.")),
                ));
            }
        }
        Ok(())
    }

    fn consumer_leave(
        &mut self,
        req: &ConsumerGroupHeartbeatRequest,
        out: &mut Vec<ConsumerRecord>,
    ) -> Result<ConsumerGroupHeartbeatResponse, HbError> {
        let group = self
            .consumer_groups
            .get_mut(&req.group_id)
            .ok_or((ErrorCode::GROUP_ID_NOT_FOUND, None))?;
        let member_id = if group.members.contains_key(&req.member_id) {
            req.member_id.clone()
        } else {
            req.instance_id
                .as_ref()
                .and_then(|i| group.members.values().find(|m| m.instance_id.as_ref() == Some(i)))
                .map(|m| m.member_id.clone())
                .ok_or((ErrorCode::UNKNOWN_MEMBER_ID, None))?
        };
        if req.member_epoch == STATIC_LEAVE_EPOCH {
            // A static member keeps its assignment for its successor; no rebalance.
            if let Some(m) = group.members.get_mut(&member_id) {
                m.member_epoch = STATIC_LEAVE_EPOCH;
                out.push(ConsumerRecord::CurrentAssignment {
                    group: group.group_id.clone(),
                    member: member_id.clone(),
                    value: Some(records::current_assignment_value(m)),
                });
            }
        } else {
            remove_member(group, &member_id, out);
        }
        Ok(ConsumerGroupHeartbeatResponse {
            member_id: Some(member_id),
            member_epoch: req.member_epoch,
            ..Default::default()
        })
    }

    fn consumer_heartbeat_inner(
        &mut self,
        req: &ConsumerGroupHeartbeatRequest,
        ctx: &HeartbeatContext<'_>,
        out: &mut Vec<ConsumerRecord>,
    ) -> Result<ConsumerGroupHeartbeatResponse, HbError> {
        let config = self.consumer_config.clone();
        if !self.consumer_groups.contains_key(&req.group_id) {
            if req.member_epoch != 0 {
                return Err((ErrorCode::GROUP_ID_NOT_FOUND, None));
            }
            self.take_over_classic_group(&req.group_id)?;
        }
        let group = self
            .consumer_groups
            .entry(req.group_id.clone())
            .or_insert_with(|| ConsumerGroup::new(&req.group_id));
        let mut bump = false;
        let member_id = if req.member_epoch == 0 {
            join_member(group, req, ctx, &config, out, &mut bump)?
        } else {
            check_member_epoch(group, req)?;
            req.member_id.clone()
        };
        let Some(member) = group.members.get_mut(&member_id) else {
            return Err((ErrorCode::UNKNOWN_MEMBER_ID, None));
        };
        let before = member.clone();
        update_member_metadata(member, req, ctx, &mut bump);
        member.deadline_ms = ctx.now_ms.saturating_add(i64::from(config.session_timeout_ms));
        if req.member_epoch == 0 || metadata_differs(&before, member) {
            out.push(ConsumerRecord::MemberMetadata {
                group: group.group_id.clone(),
                member: member_id.clone(),
                value: Some(records::member_metadata_value(member)),
            });
        }
        // Topic metadata of the subscriptions (new topics, more partitions) also bumps the epoch.
        let metadata = subscription_metadata(group, ctx.topics);
        if metadata != group.partition_metadata {
            out.push(ConsumerRecord::PartitionMetadata {
                group: group.group_id.clone(),
                value: Some(records::partition_metadata_value(&metadata)),
            });
            group.partition_metadata = metadata;
            bump = true;
        }
        if bump {
            group.group_epoch += 1;
            out.push(ConsumerRecord::GroupEpoch {
                group: group.group_id.clone(),
                value: Some(ConsumerGroupMetadataValue {
                    epoch: group.group_epoch,
                    ..Default::default()
                }),
            });
        }
        if group.group_epoch > group.assignment_epoch {
            update_target(group, &config, out);
        }
        let owned = req.topic_partitions.as_ref().map(|tps| {
            let mut a = Assignment::new();
            for tp in tps {
                a.entry(tp.topic_id).or_default().extend(tp.partitions.iter().copied());
            }
            a
        });
        let changed = reconcile(group, &member_id, owned.as_ref(), ctx.now_ms, out);
        let Some(member) = group.members.get(&member_id) else {
            return Err((ErrorCode::UNKNOWN_MEMBER_ID, None));
        };
        let send_assignment =
            req.member_epoch == 0 || changed || owned.as_ref().is_some_and(|o| !same_partitions(o, &member.assigned));
        Ok(ConsumerGroupHeartbeatResponse {
            member_id: Some(member_id.clone()),
            member_epoch: member.member_epoch,
            heartbeat_interval_ms: config.heartbeat_interval_ms,
            assignment: send_assignment.then(|| hb::Assignment {
                topic_partitions: member
                    .assigned
                    .iter()
                    .filter(|(_, ps)| !ps.is_empty())
                    .map(|(id, ps)| hb::TopicPartitions {
                        topic_id: *id,
                        partitions: ps.iter().copied().collect(),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }),
            ..Default::default()
        })
    }

    /// A consumer group may take the id of a classic group only when that group has no members
    /// (e.g. one that holds only offsets committed by admin tools).
    fn take_over_classic_group(&mut self, group_id: &str) -> Result<(), HbError> {
        if let Some(classic) = self.groups.get(group_id) {
            if !classic.members.is_empty() {
                return Err((
                    ErrorCode::GROUP_ID_NOT_FOUND,
                    Some(format!("Group {group_id} is not a consumer group.")),
                ));
            }
            self.groups.remove(group_id);
        }
        Ok(())
    }

    /// Fences members whose session expired; called from `tick`.
    pub(crate) fn consumer_tick(&mut self, now_ms: i64) -> Vec<CoordinatorRecord> {
        let mut out = Vec::new();
        for group in self.consumer_groups.values_mut() {
            let expired: Vec<String> = group
                .members
                .values()
                .filter(|m| {
                    let session_over = m.deadline_ms > 0 && now_ms >= m.deadline_ms;
                    let revocation_over = m.state == MemberState::UnrevokedPartitions
                        && m.revocation_deadline_ms > 0
                        && now_ms >= m.revocation_deadline_ms;
                    session_over || revocation_over
                })
                .map(|m| m.member_id.clone())
                .collect();
            for id in expired {
                remove_member(group, &id, &mut out);
            }
        }
        out.into_iter().map(CoordinatorRecord::Consumer).collect()
    }

    /// Loaded members get a full session from now.
    pub(crate) fn consumer_finish_load(&mut self, now_ms: i64) {
        let session_ms = i64::from(self.consumer_config.session_timeout_ms);
        for g in self.consumer_groups.values_mut() {
            for m in g.members.values_mut() {
                m.deadline_ms = now_ms.saturating_add(session_ms);
            }
        }
    }

    pub(crate) fn replay_consumer(&mut self, record: ConsumerRecord) {
        // A consumer group replaces a memberless classic group of the same id.
        if matches!(record, ConsumerRecord::GroupEpoch { value: Some(_), .. }) {
            if let Some(g) = self.groups.get(record.group()) {
                if g.members.is_empty() {
                    self.groups.remove(record.group());
                }
            }
        }
        records::replay(&mut self.consumer_groups, record);
    }

    /// ConsumerGroupDescribe for one group id.
    pub fn consumer_group_describe(
        &self,
        group_id: &str,
        topics: &TopicsSnapshot,
        include_ops: bool,
    ) -> DescribedGroup {
        let Some(group) = self.consumer_groups.get(group_id) else {
            let message = if self.groups.contains_key(group_id) {
                format!("Group {group_id} is not a consumer group.")
            } else {
                format!("Group {group_id} not found.")
            };
            return DescribedGroup {
                error_code: ErrorCode::GROUP_ID_NOT_FOUND.code(),
                error_message: Some(message),
                group_id: group_id.to_string(),
                group_state: "Dead".to_string(),
                authorized_operations: AUTHORIZED_OPERATIONS_OMITTED,
                ..Default::default()
            };
        };
        let to_assignment = |a: &Assignment| describe::Assignment {
            topic_partitions: a
                .iter()
                .filter(|(_, ps)| !ps.is_empty())
                .map(|(id, ps)| describe::TopicPartitions {
                    topic_id: *id,
                    topic_name: topics.name_of(id).unwrap_or_default().to_string(),
                    partitions: ps.iter().copied().collect(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        let empty = Assignment::new();
        let members = group
            .members
            .values()
            .map(|m| describe::Member {
                member_id: m.member_id.clone(),
                instance_id: m.instance_id.clone(),
                rack_id: m.rack_id.clone(),
                member_epoch: m.member_epoch,
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                subscribed_topic_names: m.subscribed_topic_names.clone(),
                subscribed_topic_regex: None,
                assignment: to_assignment(&m.assigned),
                target_assignment: to_assignment(group.target.get(&m.member_id).unwrap_or(&empty)),
                ..Default::default()
            })
            .collect();
        DescribedGroup {
            group_id: group_id.to_string(),
            group_state: group.state_name().to_string(),
            group_epoch: group.group_epoch,
            assignment_epoch: group.assignment_epoch,
            assignor_name: group.assignor_name(&self.consumer_config),
            members,
            // Without ACLs every operation is allowed; Kafka's bitfield for a group.
            authorized_operations: if include_ops {
                GROUP_OPERATIONS
            } else {
                AUTHORIZED_OPERATIONS_OMITTED
            },
            ..Default::default()
        }
    }

    /// ListGroups entries of consumer groups.
    pub(crate) fn list_consumer_groups(&self, states_filter: &[String]) -> Vec<ListedGroup> {
        self.consumer_groups
            .values()
            .filter(|g| {
                states_filter.is_empty() || states_filter.iter().any(|s| s.eq_ignore_ascii_case(g.state_name()))
            })
            .map(|g| ListedGroup {
                group_id: g.group_id.clone(),
                protocol_type: CONSUMER_GROUP_TYPE.to_string(),
                group_state: g.state_name().to_string(),
                group_type: CONSUMER_GROUP_TYPE.to_string(),
                ..Default::default()
            })
            .collect()
    }

    /// DeleteGroups of a consumer group: NON_EMPTY_GROUP while it has members; otherwise
    /// tombstones for its offsets and its records (applied after the append).
    pub(crate) fn delete_consumer_group(
        &self,
        group: &ConsumerGroup,
        records: &mut Vec<CoordinatorRecord>,
    ) -> ErrorCode {
        if !group.members.is_empty() {
            return ErrorCode::NON_EMPTY_GROUP;
        }
        let id = &group.group_id;
        if let Some(offsets) = self.offsets.get(id) {
            records.extend(offsets.keys().map(|(t, p)| crate::offsets::offset_tombstone(id, t, *p)));
        }
        let g = || id.clone();
        records.extend(
            [
                ConsumerRecord::TargetMetadata {
                    group: g(),
                    value: None,
                },
                ConsumerRecord::PartitionMetadata {
                    group: g(),
                    value: None,
                },
                ConsumerRecord::GroupEpoch {
                    group: g(),
                    value: None,
                },
            ]
            .into_iter()
            .map(CoordinatorRecord::Consumer),
        );
        ErrorCode::NONE
    }

    /// Whether `group_id` names a KIP-848 consumer group.
    pub fn is_consumer_group(&self, group_id: &str) -> bool {
        self.consumer_groups.contains_key(group_id)
    }
}

/// Before a classic JoinGroup: INCONSISTENT_GROUP_PROTOCOL while a consumer group of that id
/// has members; an empty one is removed, returning its tombstones.
pub(crate) fn classic_join_conflict(
    groups: &mut BTreeMap<String, ConsumerGroup>,
    group_id: &str,
) -> Result<Vec<CoordinatorRecord>, ErrorCode> {
    let Some(group) = groups.get(group_id) else {
        return Ok(Vec::new());
    };
    if !group.members.is_empty() {
        return Err(ErrorCode::INCONSISTENT_GROUP_PROTOCOL);
    }
    groups.remove(group_id);
    let g = || group_id.to_string();
    Ok([
        ConsumerRecord::TargetMetadata {
            group: g(),
            value: None,
        },
        ConsumerRecord::PartitionMetadata {
            group: g(),
            value: None,
        },
        ConsumerRecord::GroupEpoch {
            group: g(),
            value: None,
        },
    ]
    .into_iter()
    .map(CoordinatorRecord::Consumer)
    .collect())
}

/// READ(3), DELETE(6), DESCRIBE(8) as Kafka's `AclOperation` bits.
const GROUP_OPERATIONS: i32 = (1 << 3) | (1 << 6) | (1 << 8);

fn same_partitions(a: &Assignment, b: &Assignment) -> bool {
    let flat = |x: &Assignment| -> BTreeSet<(Uuid, i32)> {
        x.iter().flat_map(|(t, ps)| ps.iter().map(move |p| (*t, *p))).collect()
    };
    flat(a) == flat(b)
}

fn metadata_differs(a: &ConsumerMember, b: &ConsumerMember) -> bool {
    a.instance_id != b.instance_id
        || a.rack_id != b.rack_id
        || a.client_id != b.client_id
        || a.client_host != b.client_host
        || a.subscribed_topic_names != b.subscribed_topic_names
        || a.server_assignor != b.server_assignor
        || a.rebalance_timeout_ms != b.rebalance_timeout_ms
        || a.member_id != b.member_id
}

/// Epoch 0: a new member, a static member taking over its predecessor, or a member rejoining.
fn join_member(
    group: &mut ConsumerGroup,
    req: &ConsumerGroupHeartbeatRequest,
    ctx: &HeartbeatContext<'_>,
    config: &ConsumerConfig,
    out: &mut Vec<ConsumerRecord>,
    bump: &mut bool,
) -> Result<String, HbError> {
    let member_id = if req.member_id.is_empty() {
        ctx.new_member_id.clone()
    } else {
        req.member_id.clone()
    };
    let predecessor = req.instance_id.as_ref().and_then(|i| {
        group
            .members
            .values()
            .find(|m| m.instance_id.as_ref() == Some(i))
            .map(|m| (m.member_id.clone(), m.member_epoch))
    });
    if let Some((old_id, old_epoch)) = predecessor {
        if old_epoch != STATIC_LEAVE_EPOCH && old_id != member_id {
            return Err((
                ErrorCode::UNRELEASED_INSTANCE_ID,
                Some(format!(
                    "Static member {old_id} with instance id {:?} is still active.",
                    req.instance_id
                )),
            ));
        }
        // The successor inherits the target; the predecessor's partitions are freed with it.
        let target = group.target.get(&old_id).cloned();
        let mut successor = ConsumerMember::new(&member_id);
        if let Some(old) = group.members.get(&old_id) {
            // Same subscription as before means no new group epoch.
            successor.subscribed_topic_names = old.subscribed_topic_names.clone();
            successor.server_assignor = old.server_assignor.clone();
            successor.instance_id = old.instance_id.clone();
            successor.rebalance_timeout_ms = old.rebalance_timeout_ms;
        }
        remove_member_quietly(group, &old_id, out);
        group.members.insert(member_id.clone(), successor);
        if let Some(t) = target {
            set_target(group, &member_id, t, out);
        } else {
            *bump = true;
        }
        return Ok(member_id);
    }
    match group.members.get_mut(&member_id) {
        Some(m) => {
            // Rejoining with epoch 0: the client owns nothing any more.
            m.assigned.clear();
            m.pending_revocation.clear();
            m.member_epoch = 0;
            m.previous_member_epoch = 0;
            m.state = MemberState::Stable;
        }
        None => {
            if group.members.len() >= config.max_size {
                return Err((ErrorCode::GROUP_MAX_SIZE_REACHED, None));
            }
            group.members.insert(member_id.clone(), ConsumerMember::new(&member_id));
            *bump = true;
        }
    }
    Ok(member_id)
}

/// Kafka's `throwIfMemberEpochIsInvalid`: the member may repeat its previous epoch only when
/// it owns nothing it no longer has (its last response was lost).
fn check_member_epoch(group: &ConsumerGroup, req: &ConsumerGroupHeartbeatRequest) -> Result<(), HbError> {
    let member = group
        .members
        .get(&req.member_id)
        .ok_or((ErrorCode::UNKNOWN_MEMBER_ID, None))?;
    if req.member_epoch == member.member_epoch {
        return Ok(());
    }
    if req.member_epoch == member.previous_member_epoch {
        let owned_ok = req.topic_partitions.as_ref().is_some_and(|tps| {
            tps.iter().all(|tp| {
                tp.partitions
                    .iter()
                    .all(|p| member.assigned.get(&tp.topic_id).is_some_and(|s| s.contains(p)))
            })
        });
        if owned_ok {
            return Ok(());
        }
    }
    Err((
        ErrorCode::FENCED_MEMBER_EPOCH,
        Some(format!(
            "The consumer group member has a greater member epoch ({}) than the one known by the group coordinator ({}).",
            req.member_epoch, member.member_epoch
        )),
    ))
}

fn update_member_metadata(
    member: &mut ConsumerMember,
    req: &ConsumerGroupHeartbeatRequest,
    ctx: &HeartbeatContext<'_>,
    bump: &mut bool,
) {
    if req.instance_id.is_some() {
        member.instance_id = req.instance_id.clone();
    }
    if req.rack_id.is_some() {
        member.rack_id = req.rack_id.clone();
    }
    if req.rebalance_timeout_ms > 0 {
        member.rebalance_timeout_ms = req.rebalance_timeout_ms;
    }
    member.client_id = ctx.client.client_id.clone();
    member.client_host = ctx.client.client_host.clone();
    if let Some(names) = &req.subscribed_topic_names {
        let mut names = names.clone();
        names.sort();
        names.dedup();
        if names != member.subscribed_topic_names {
            member.subscribed_topic_names = names;
            *bump = true;
        }
    }
    if req.server_assignor.is_some() && req.server_assignor != member.server_assignor {
        member.server_assignor = req.server_assignor.clone();
        *bump = true;
    }
}

fn subscription_metadata(group: &ConsumerGroup, topics: &TopicsSnapshot) -> BTreeMap<Uuid, (String, i32)> {
    group
        .members
        .values()
        .flat_map(|m| m.subscribed_topic_names.iter())
        .filter_map(|name| topics.by_name(name).map(|(id, n)| (id, (name.clone(), n))))
        .collect()
}

/// Recomputes the target assignment at the group epoch and records what changed.
fn update_target(group: &mut ConsumerGroup, config: &ConsumerConfig, out: &mut Vec<ConsumerRecord>) {
    let name_to_id: BTreeMap<&str, Uuid> = group
        .partition_metadata
        .iter()
        .map(|(id, (name, _))| (name.as_str(), *id))
        .collect();
    let partitions: BTreeMap<Uuid, i32> = group.partition_metadata.iter().map(|(id, (_, n))| (*id, *n)).collect();
    let specs: BTreeMap<String, assignor::MemberSpec<'_>> = group
        .members
        .iter()
        .map(|(id, m)| {
            let subscribed = m
                .subscribed_topic_names
                .iter()
                .filter_map(|n| name_to_id.get(n.as_str()).copied())
                .collect();
            (
                id.clone(),
                assignor::MemberSpec {
                    subscribed,
                    previous: group.target.get(id),
                },
            )
        })
        .collect();
    let new_target = assignor::assign(&group.assignor_name(config), &specs, &partitions);
    for (id, a) in new_target {
        if group.target.get(&id) != Some(&a) {
            set_target(group, &id, a, out);
        }
    }
    group.assignment_epoch = group.group_epoch;
    out.push(ConsumerRecord::TargetMetadata {
        group: group.group_id.clone(),
        value: Some(ConsumerGroupTargetAssignmentMetadataValue {
            assignment_epoch: group.assignment_epoch,
            ..Default::default()
        }),
    });
}

fn set_target(group: &mut ConsumerGroup, member_id: &str, a: Assignment, out: &mut Vec<ConsumerRecord>) {
    out.push(ConsumerRecord::TargetMember {
        group: group.group_id.clone(),
        member: member_id.to_string(),
        value: Some(ConsumerGroupTargetAssignmentMemberValue {
            topic_partitions: records::to_target_tps(&a),
            ..Default::default()
        }),
    });
    group.target.insert(member_id.to_string(), a);
}

/// Kafka's `CurrentAssignmentBuilder`: moves the member towards its target. Returns whether the
/// member's epoch or assignment changed.
fn reconcile(
    group: &mut ConsumerGroup,
    member_id: &str,
    owned: Option<&Assignment>,
    now_ms: i64,
    out: &mut Vec<ConsumerRecord>,
) -> bool {
    let Some(member) = group.members.get(member_id) else {
        return false;
    };
    let target_epoch = group.assignment_epoch;
    let proceed = match member.state {
        MemberState::Stable => member.member_epoch != target_epoch,
        MemberState::UnreleasedPartitions => true,
        // Wait until the client no longer reports any partition it must give up.
        MemberState::UnrevokedPartitions => owned.is_some_and(|o| {
            member
                .pending_revocation
                .iter()
                .all(|(t, ps)| o.get(t).is_none_or(|op| op.is_disjoint(ps)))
        }),
    };
    if !proceed {
        return false;
    }
    let empty = Assignment::new();
    let target = group.target.get(member_id).unwrap_or(&empty).clone();
    let mut keep = Assignment::new();
    let mut revoke = Assignment::new();
    for (t, ps) in &member.assigned {
        for &p in ps {
            let into = if target.get(t).is_some_and(|s| s.contains(&p)) {
                &mut keep
            } else {
                &mut revoke
            };
            into.entry(*t).or_default().insert(p);
        }
    }
    let mut next = member.clone();
    next.pending_revocation.clear();
    if !revoke.is_empty() {
        next.assigned = keep;
        next.pending_revocation = revoke;
        next.state = MemberState::UnrevokedPartitions;
        // Without a known rebalance timeout only the session timeout applies.
        next.revocation_deadline_ms = if next.rebalance_timeout_ms > 0 {
            now_ms.saturating_add(i64::from(next.rebalance_timeout_ms))
        } else {
            0
        };
    } else {
        next.revocation_deadline_ms = 0;
        let mut unreleased = false;
        let mut assigned = keep;
        for (t, ps) in &target {
            for &p in ps {
                if assigned.get(t).is_some_and(|s| s.contains(&p)) {
                    continue;
                }
                if group.held_by_other(member_id, t, p) {
                    unreleased = true;
                } else {
                    assigned.entry(*t).or_default().insert(p);
                }
            }
        }
        next.assigned = assigned;
        if next.member_epoch != target_epoch {
            next.previous_member_epoch = next.member_epoch;
            next.member_epoch = target_epoch;
        }
        next.state = if unreleased {
            MemberState::UnreleasedPartitions
        } else {
            MemberState::Stable
        };
    }
    next.assigned.retain(|_, ps| !ps.is_empty());
    if &next == member {
        return false;
    }
    out.push(ConsumerRecord::CurrentAssignment {
        group: group.group_id.clone(),
        member: member_id.to_string(),
        value: Some(records::current_assignment_value(&next)),
    });
    let changed = next.member_epoch != member.member_epoch || next.assigned != member.assigned;
    group.members.insert(member_id.to_string(), next);
    changed
}

/// Removes a member and bumps the group epoch (leave, fencing, session expiry).
fn remove_member(group: &mut ConsumerGroup, member_id: &str, out: &mut Vec<ConsumerRecord>) {
    if !group.members.contains_key(member_id) {
        return;
    }
    remove_member_quietly(group, member_id, out);
    group.group_epoch += 1;
    out.push(ConsumerRecord::GroupEpoch {
        group: group.group_id.clone(),
        value: Some(ConsumerGroupMetadataValue {
            epoch: group.group_epoch,
            ..Default::default()
        }),
    });
}

/// Removes a member's records and state without touching the group epoch.
fn remove_member_quietly(group: &mut ConsumerGroup, member_id: &str, out: &mut Vec<ConsumerRecord>) {
    let g = group.group_id.clone();
    out.push(ConsumerRecord::CurrentAssignment {
        group: g.clone(),
        member: member_id.to_string(),
        value: None,
    });
    if group.target.remove(member_id).is_some() {
        out.push(ConsumerRecord::TargetMember {
            group: g.clone(),
            member: member_id.to_string(),
            value: None,
        });
    }
    out.push(ConsumerRecord::MemberMetadata {
        group: g,
        member: member_id.to_string(),
        value: None,
    });
    group.members.remove(member_id);
}
