//! `GroupCoordinator`: the groups and committed offsets of one `__consumer_offsets` partition.
//!
//! Two kinds of operation:
//! - Group membership (JoinGroup, SyncGroup, Heartbeat, LeaveGroup, `tick`) changes the live
//!   state at once and returns [`Effects`]: group metadata records to append plus the answers
//!   to parked requests. The records describe the state just reached.
//! - Offsets and deletions (OffsetCommit, OffsetDelete, DeleteGroups, expiry) only decide: they
//!   return a [`Decision`] whose records the runtime appends and then hands to [`GroupCoordinator::apply`],
//!   which changes the state by replaying them.
//!
//! Loading replays every record with [`GroupCoordinator::replay`], then `finish_load`.

use std::collections::BTreeMap;

use runnel_protocol::generated::join_group_response::JoinGroupResponse;
use runnel_protocol::generated::offset_commit_value::OffsetCommitValue;
use runnel_protocol::generated::sync_group_response::SyncGroupResponse;

use crate::group::{ClassicGroup, GroupState, RequestId};
use crate::record::CoordinatorRecord;

/// Broker settings the coordinator obeys.
#[derive(Debug, Clone)]
pub struct CoordinatorConfig {
    /// `group.initial.rebalance.delay.ms`
    pub initial_rebalance_delay_ms: i64,
    /// `group.min.session.timeout.ms`
    pub min_session_timeout_ms: i32,
    /// `group.max.session.timeout.ms`
    pub max_session_timeout_ms: i32,
    /// `group.max.size`
    pub max_group_size: usize,
    /// `offsets.retention.minutes` in milliseconds.
    pub offsets_retention_ms: i64,
    /// `offset.metadata.max.bytes`
    pub offset_metadata_max_bytes: usize,
}

impl Default for CoordinatorConfig {
    fn default() -> Self {
        CoordinatorConfig {
            initial_rebalance_delay_ms: 3000,
            min_session_timeout_ms: 6000,
            max_session_timeout_ms: 1_800_000,
            max_group_size: i32::MAX as usize,
            offsets_retention_ms: 7 * 24 * 60 * 60 * 1000,
            offset_metadata_max_bytes: 4096,
        }
    }
}

/// The answer to a parked request.
#[derive(Debug, Clone, PartialEq)]
pub enum Completion {
    Join {
        request: RequestId,
        response: JoinGroupResponse,
    },
    Sync {
        request: RequestId,
        response: SyncGroupResponse,
    },
}

impl Completion {
    pub fn request(&self) -> RequestId {
        match self {
            Completion::Join { request, .. } | Completion::Sync { request, .. } => *request,
        }
    }
}

/// What a membership operation produced: records already reflected in the live state, and the
/// answers to send once those records are appended.
#[derive(Debug, Default)]
pub struct Effects {
    pub records: Vec<CoordinatorRecord>,
    pub completions: Vec<Completion>,
}

impl Effects {
    pub fn extend(&mut self, other: Effects) {
        self.records.extend(other.records);
        self.completions.extend(other.completions);
    }
}

/// A decision: records to append (then `apply`) and the response to send after that.
#[derive(Debug)]
pub struct Decision<R> {
    pub records: Vec<CoordinatorRecord>,
    pub response: R,
}

/// Who sent a request (stored with the member, shown by DescribeGroups).
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    pub client_id: String,
    pub client_host: String,
}

pub type OffsetKey = (String, i32);

/// One shard of the group coordinator.
#[derive(Debug, Default)]
pub struct GroupCoordinator {
    pub(crate) config: CoordinatorConfig,
    pub(crate) groups: BTreeMap<String, ClassicGroup>,
    pub(crate) offsets: BTreeMap<String, BTreeMap<OffsetKey, OffsetCommitValue>>,
    /// KIP-848 consumer groups (`consumer` module); ids never also name a classic group.
    pub(crate) consumer_groups: BTreeMap<String, crate::consumer::ConsumerGroup>,
    pub(crate) consumer_config: crate::consumer::ConsumerConfig,
    /// Offset records of open transactions, by producer id (`txn_offsets`).
    pub(crate) pending_txn_offsets: BTreeMap<i64, Vec<CoordinatorRecord>>,
}

impl GroupCoordinator {
    pub fn new(config: CoordinatorConfig) -> Self {
        GroupCoordinator {
            config,
            groups: BTreeMap::new(),
            offsets: BTreeMap::new(),
            consumer_groups: BTreeMap::new(),
            consumer_config: Default::default(),
            pending_txn_offsets: BTreeMap::new(),
        }
    }

    pub fn config(&self) -> &CoordinatorConfig {
        &self.config
    }

    pub fn group(&self, group_id: &str) -> Option<&ClassicGroup> {
        self.groups.get(group_id)
    }

    pub fn group_ids(&self) -> impl Iterator<Item = &String> {
        self.groups.keys()
    }

    pub fn committed(&self, group_id: &str, topic: &str, partition: i32) -> Option<&OffsetCommitValue> {
        self.offsets.get(group_id)?.get(&(topic.to_string(), partition))
    }

    /// Replays one record read back from the log (loading, or a test rebuilding state).
    pub fn replay(&mut self, record: CoordinatorRecord) {
        match record {
            CoordinatorRecord::GroupMetadata { group, value: Some(v) } => {
                let g = ClassicGroup::from_record(&group, &v);
                self.groups.insert(group, g);
            }
            other => self.apply_one(other),
        }
    }

    /// Members of loaded groups get a full session timeout from now, as after a heartbeat.
    pub fn finish_load(&mut self, now_ms: i64) {
        for g in self.groups.values_mut() {
            for m in &mut g.members {
                m.heartbeat_deadline_ms = now_ms + i64::from(m.session_timeout_ms);
            }
        }
        self.consumer_finish_load(now_ms);
    }

    /// Applies the records of a `Decision` after they were appended.
    pub fn apply(&mut self, records: Vec<CoordinatorRecord>) {
        for r in records {
            self.apply_one(r);
        }
    }

    fn apply_one(&mut self, record: CoordinatorRecord) {
        match record {
            CoordinatorRecord::OffsetCommit {
                group,
                topic,
                partition,
                value: Some(v),
            } => {
                // Kafka creates a simple (protocol-less) group for commits to an unknown group.
                if !self.consumer_groups.contains_key(&group) {
                    self.groups
                        .entry(group.clone())
                        .or_insert_with(|| ClassicGroup::new(&group, v.commit_timestamp));
                }
                self.offsets.entry(group).or_default().insert((topic, partition), v);
            }
            CoordinatorRecord::OffsetCommit {
                group,
                topic,
                partition,
                value: None,
            } => {
                if let Some(offsets) = self.offsets.get_mut(&group) {
                    offsets.remove(&(topic, partition));
                    if offsets.is_empty() {
                        self.offsets.remove(&group);
                    }
                }
            }
            CoordinatorRecord::GroupMetadata { group, value: None } => {
                self.groups.remove(&group);
            }
            // Live membership operations apply group metadata themselves.
            CoordinatorRecord::GroupMetadata { value: Some(_), .. } => {}
            // Idempotent: live consumer-group operations already hold this state.
            CoordinatorRecord::Consumer(r) => self.replay_consumer(r),
        }
    }

    /// State name for DescribeGroups/ListGroups (`Dead` for unknown groups).
    pub fn state_of(&self, group_id: &str) -> GroupState {
        self.groups.get(group_id).map_or(GroupState::Dead, |g| g.state)
    }
}
