//! The KIP-848 consumer-group records of `__consumer_offsets` (key versions 3–8) in Kafka's
//! binary format, and their replay into a [`ConsumerGroup`].
//!
//! Replay is order-tolerant within a group: a member can appear through its metadata or its
//! current-assignment record first; only a member-metadata tombstone removes it.

use std::collections::BTreeMap;

use bytes::Bytes;
use runnel_protocol::codec::{Message, Uuid};
use runnel_protocol::generated::consumer_group_current_member_assignment_key::ConsumerGroupCurrentMemberAssignmentKey;
use runnel_protocol::generated::consumer_group_current_member_assignment_value::{
    self as current_value, ConsumerGroupCurrentMemberAssignmentValue,
};
use runnel_protocol::generated::consumer_group_member_metadata_key::ConsumerGroupMemberMetadataKey;
use runnel_protocol::generated::consumer_group_member_metadata_value::ConsumerGroupMemberMetadataValue;
use runnel_protocol::generated::consumer_group_metadata_key::ConsumerGroupMetadataKey;
use runnel_protocol::generated::consumer_group_metadata_value::ConsumerGroupMetadataValue;
use runnel_protocol::generated::consumer_group_partition_metadata_key::ConsumerGroupPartitionMetadataKey;
use runnel_protocol::generated::consumer_group_partition_metadata_value::{
    ConsumerGroupPartitionMetadataValue, TopicMetadata,
};
use runnel_protocol::generated::consumer_group_target_assignment_member_key::ConsumerGroupTargetAssignmentMemberKey;
use runnel_protocol::generated::consumer_group_target_assignment_member_value::{
    self as target_value, ConsumerGroupTargetAssignmentMemberValue,
};
use runnel_protocol::generated::consumer_group_target_assignment_metadata_key::ConsumerGroupTargetAssignmentMetadataKey;
use runnel_protocol::generated::consumer_group_target_assignment_metadata_value::ConsumerGroupTargetAssignmentMetadataValue;

use super::{Assignment, ConsumerGroup, ConsumerMember, MemberState};
use crate::record::{decode_versioned, encode_versioned, RecordError};

/// Key versions (Kafka's record types) of the consumer-group records.
const GROUP_EPOCH_KEY: i16 = 3;
const PARTITION_METADATA_KEY: i16 = 4;
const MEMBER_METADATA_KEY: i16 = 5;
const TARGET_METADATA_KEY: i16 = 6;
const TARGET_MEMBER_KEY: i16 = 7;
const CURRENT_ASSIGNMENT_KEY: i16 = 8;
/// Every consumer-group value is written at version 0 (the only one defined).
const VALUE_VERSION: i16 = 0;

/// One KIP-848 record; `None` values are tombstones.
#[derive(Debug, Clone, PartialEq)]
pub enum ConsumerRecord {
    GroupEpoch {
        group: String,
        value: Option<ConsumerGroupMetadataValue>,
    },
    PartitionMetadata {
        group: String,
        value: Option<ConsumerGroupPartitionMetadataValue>,
    },
    MemberMetadata {
        group: String,
        member: String,
        value: Option<ConsumerGroupMemberMetadataValue>,
    },
    TargetMetadata {
        group: String,
        value: Option<ConsumerGroupTargetAssignmentMetadataValue>,
    },
    TargetMember {
        group: String,
        member: String,
        value: Option<ConsumerGroupTargetAssignmentMemberValue>,
    },
    CurrentAssignment {
        group: String,
        member: String,
        value: Option<ConsumerGroupCurrentMemberAssignmentValue>,
    },
}

/// Whether a key version is one of ours.
pub fn is_consumer_key(version: i16) -> bool {
    (GROUP_EPOCH_KEY..=CURRENT_ASSIGNMENT_KEY).contains(&version)
}

fn opt_value<M: Message>(v: &Option<M>, what: &'static str) -> Result<Option<Bytes>, RecordError> {
    v.as_ref().map(|m| encode_versioned(m, VALUE_VERSION, what)).transpose()
}

fn decode_value<M: Message>(v: Option<&[u8]>, what: &'static str) -> Result<Option<M>, RecordError> {
    v.map(|b| decode_versioned::<M>(b, (VALUE_VERSION, VALUE_VERSION), what))
        .transpose()
}

fn decode_key<M: Message>(key: &mut Bytes, version: i16, what: &'static str) -> Result<M, RecordError> {
    M::decode(key, version).map_err(|e| RecordError::Decode {
        what,
        message: e.to_string(),
    })
}

impl ConsumerRecord {
    pub fn group(&self) -> &str {
        match self {
            ConsumerRecord::GroupEpoch { group, .. }
            | ConsumerRecord::PartitionMetadata { group, .. }
            | ConsumerRecord::MemberMetadata { group, .. }
            | ConsumerRecord::TargetMetadata { group, .. }
            | ConsumerRecord::TargetMember { group, .. }
            | ConsumerRecord::CurrentAssignment { group, .. } => group,
        }
    }

    pub fn to_key_value(&self) -> Result<(Bytes, Option<Bytes>), RecordError> {
        let g = |group: &String| group.clone();
        match self {
            ConsumerRecord::GroupEpoch { group, value } => {
                let key = ConsumerGroupMetadataKey {
                    group_id: g(group),
                    ..Default::default()
                };
                Ok((
                    encode_versioned(&key, GROUP_EPOCH_KEY, "ConsumerGroupMetadataKey")?,
                    opt_value(value, "ConsumerGroupMetadataValue")?,
                ))
            }
            ConsumerRecord::PartitionMetadata { group, value } => {
                let key = ConsumerGroupPartitionMetadataKey {
                    group_id: g(group),
                    ..Default::default()
                };
                Ok((
                    encode_versioned(&key, PARTITION_METADATA_KEY, "ConsumerGroupPartitionMetadataKey")?,
                    opt_value(value, "ConsumerGroupPartitionMetadataValue")?,
                ))
            }
            ConsumerRecord::MemberMetadata { group, member, value } => {
                let key = ConsumerGroupMemberMetadataKey {
                    group_id: g(group),
                    member_id: member.clone(),
                    ..Default::default()
                };
                Ok((
                    encode_versioned(&key, MEMBER_METADATA_KEY, "ConsumerGroupMemberMetadataKey")?,
                    opt_value(value, "ConsumerGroupMemberMetadataValue")?,
                ))
            }
            ConsumerRecord::TargetMetadata { group, value } => {
                let key = ConsumerGroupTargetAssignmentMetadataKey {
                    group_id: g(group),
                    ..Default::default()
                };
                Ok((
                    encode_versioned(&key, TARGET_METADATA_KEY, "ConsumerGroupTargetAssignmentMetadataKey")?,
                    opt_value(value, "ConsumerGroupTargetAssignmentMetadataValue")?,
                ))
            }
            ConsumerRecord::TargetMember { group, member, value } => {
                let key = ConsumerGroupTargetAssignmentMemberKey {
                    group_id: g(group),
                    member_id: member.clone(),
                    ..Default::default()
                };
                Ok((
                    encode_versioned(&key, TARGET_MEMBER_KEY, "ConsumerGroupTargetAssignmentMemberKey")?,
                    opt_value(value, "ConsumerGroupTargetAssignmentMemberValue")?,
                ))
            }
            ConsumerRecord::CurrentAssignment { group, member, value } => {
                let key = ConsumerGroupCurrentMemberAssignmentKey {
                    group_id: g(group),
                    member_id: member.clone(),
                    ..Default::default()
                };
                Ok((
                    encode_versioned(&key, CURRENT_ASSIGNMENT_KEY, "ConsumerGroupCurrentMemberAssignmentKey")?,
                    opt_value(value, "ConsumerGroupCurrentMemberAssignmentValue")?,
                ))
            }
        }
    }

    /// Decodes the key body (after its int16 version) and the value of a consumer-group record.
    pub fn decode(version: i16, key: &mut Bytes, value: Option<&[u8]>) -> Result<Option<ConsumerRecord>, RecordError> {
        let rec = match version {
            GROUP_EPOCH_KEY => {
                let k: ConsumerGroupMetadataKey = decode_key(key, version, "ConsumerGroupMetadataKey")?;
                ConsumerRecord::GroupEpoch {
                    group: k.group_id,
                    value: decode_value(value, "ConsumerGroupMetadataValue")?,
                }
            }
            PARTITION_METADATA_KEY => {
                let k: ConsumerGroupPartitionMetadataKey =
                    decode_key(key, version, "ConsumerGroupPartitionMetadataKey")?;
                ConsumerRecord::PartitionMetadata {
                    group: k.group_id,
                    value: decode_value(value, "ConsumerGroupPartitionMetadataValue")?,
                }
            }
            MEMBER_METADATA_KEY => {
                let k: ConsumerGroupMemberMetadataKey = decode_key(key, version, "ConsumerGroupMemberMetadataKey")?;
                ConsumerRecord::MemberMetadata {
                    group: k.group_id,
                    member: k.member_id,
                    value: decode_value(value, "ConsumerGroupMemberMetadataValue")?,
                }
            }
            TARGET_METADATA_KEY => {
                let k: ConsumerGroupTargetAssignmentMetadataKey =
                    decode_key(key, version, "ConsumerGroupTargetAssignmentMetadataKey")?;
                ConsumerRecord::TargetMetadata {
                    group: k.group_id,
                    value: decode_value(value, "ConsumerGroupTargetAssignmentMetadataValue")?,
                }
            }
            TARGET_MEMBER_KEY => {
                let k: ConsumerGroupTargetAssignmentMemberKey =
                    decode_key(key, version, "ConsumerGroupTargetAssignmentMemberKey")?;
                ConsumerRecord::TargetMember {
                    group: k.group_id,
                    member: k.member_id,
                    value: decode_value(value, "ConsumerGroupTargetAssignmentMemberValue")?,
                }
            }
            CURRENT_ASSIGNMENT_KEY => {
                let k: ConsumerGroupCurrentMemberAssignmentKey =
                    decode_key(key, version, "ConsumerGroupCurrentMemberAssignmentKey")?;
                ConsumerRecord::CurrentAssignment {
                    group: k.group_id,
                    member: k.member_id,
                    value: decode_value(value, "ConsumerGroupCurrentMemberAssignmentValue")?,
                }
            }
            _ => return Ok(None),
        };
        Ok(Some(rec))
    }
}

// --- conversions between the in-memory assignment and the record shapes ---------------------

pub(crate) fn to_current_tps(a: &Assignment) -> Vec<current_value::TopicPartitions> {
    a.iter()
        .map(|(id, ps)| current_value::TopicPartitions {
            topic_id: *id,
            partitions: ps.iter().copied().collect(),
            ..Default::default()
        })
        .collect()
}

fn from_current_tps(tps: &[current_value::TopicPartitions]) -> Assignment {
    let mut a = Assignment::new();
    for tp in tps {
        a.entry(tp.topic_id).or_default().extend(tp.partitions.iter().copied());
    }
    a
}

pub(crate) fn to_target_tps(a: &Assignment) -> Vec<target_value::TopicPartition> {
    a.iter()
        .map(|(id, ps)| target_value::TopicPartition {
            topic_id: *id,
            partitions: ps.iter().copied().collect(),
            ..Default::default()
        })
        .collect()
}

fn from_target_tps(tps: &[target_value::TopicPartition]) -> Assignment {
    let mut a = Assignment::new();
    for tp in tps {
        a.entry(tp.topic_id).or_default().extend(tp.partitions.iter().copied());
    }
    a
}

pub(crate) fn partition_metadata_value(meta: &BTreeMap<Uuid, (String, i32)>) -> ConsumerGroupPartitionMetadataValue {
    ConsumerGroupPartitionMetadataValue {
        topics: meta
            .iter()
            .map(|(id, (name, n))| TopicMetadata {
                topic_id: *id,
                topic_name: name.clone(),
                num_partitions: *n,
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

pub(crate) fn member_metadata_value(m: &ConsumerMember) -> ConsumerGroupMemberMetadataValue {
    ConsumerGroupMemberMetadataValue {
        instance_id: m.instance_id.clone(),
        rack_id: m.rack_id.clone(),
        client_id: m.client_id.clone(),
        client_host: m.client_host.clone(),
        subscribed_topic_names: m.subscribed_topic_names.clone(),
        subscribed_topic_regex: None,
        rebalance_timeout_ms: m.rebalance_timeout_ms,
        server_assignor: m.server_assignor.clone(),
        ..Default::default()
    }
}

pub(crate) fn current_assignment_value(m: &ConsumerMember) -> ConsumerGroupCurrentMemberAssignmentValue {
    ConsumerGroupCurrentMemberAssignmentValue {
        member_epoch: m.member_epoch,
        previous_member_epoch: m.previous_member_epoch,
        state: m.state as i8,
        assigned_partitions: to_current_tps(&m.assigned),
        partitions_pending_revocation: to_current_tps(&m.pending_revocation),
        ..Default::default()
    }
}

/// Applies one record to the groups map (loading, or a test rebuilding state).
pub(crate) fn replay(groups: &mut BTreeMap<String, ConsumerGroup>, record: ConsumerRecord) {
    let group_id = record.group().to_string();
    let group = || ConsumerGroup::new(&group_id);
    match record {
        ConsumerRecord::GroupEpoch { value: Some(v), .. } => {
            groups.entry(group_id.clone()).or_insert_with(group).group_epoch = v.epoch;
        }
        ConsumerRecord::GroupEpoch { value: None, .. } => {
            groups.remove(&group_id);
        }
        ConsumerRecord::PartitionMetadata { value, .. } => {
            let g = groups.entry(group_id.clone()).or_insert_with(group);
            g.partition_metadata = value
                .map(|v| {
                    v.topics
                        .into_iter()
                        .map(|t| (t.topic_id, (t.topic_name, t.num_partitions)))
                        .collect()
                })
                .unwrap_or_default();
        }
        ConsumerRecord::MemberMetadata { member, value, .. } => {
            let g = groups.entry(group_id.clone()).or_insert_with(group);
            match value {
                None => {
                    g.members.remove(&member);
                }
                Some(v) => {
                    let m = g
                        .members
                        .entry(member.clone())
                        .or_insert_with(|| ConsumerMember::new(&member));
                    m.instance_id = v.instance_id;
                    m.rack_id = v.rack_id;
                    m.client_id = v.client_id;
                    m.client_host = v.client_host;
                    m.subscribed_topic_names = v.subscribed_topic_names;
                    m.rebalance_timeout_ms = v.rebalance_timeout_ms;
                    m.server_assignor = v.server_assignor;
                }
            }
        }
        ConsumerRecord::TargetMetadata { value, .. } => {
            let g = groups.entry(group_id.clone()).or_insert_with(group);
            g.assignment_epoch = value.map_or(0, |v| v.assignment_epoch);
        }
        ConsumerRecord::TargetMember { member, value, .. } => {
            let g = groups.entry(group_id.clone()).or_insert_with(group);
            match value {
                None => {
                    g.target.remove(&member);
                }
                Some(v) => {
                    g.target.insert(member, from_target_tps(&v.topic_partitions));
                }
            }
        }
        ConsumerRecord::CurrentAssignment { member, value, .. } => {
            let g = groups.entry(group_id.clone()).or_insert_with(group);
            let Some(v) = value else {
                // The member itself goes with its metadata tombstone.
                if let Some(m) = g.members.get_mut(&member) {
                    m.assigned.clear();
                    m.pending_revocation.clear();
                }
                return;
            };
            let m = g
                .members
                .entry(member.clone())
                .or_insert_with(|| ConsumerMember::new(&member));
            m.member_epoch = v.member_epoch;
            m.previous_member_epoch = v.previous_member_epoch;
            m.state = MemberState::from_i8(v.state);
            m.assigned = from_current_tps(&v.assigned_partitions);
            m.pending_revocation = from_current_tps(&v.partitions_pending_revocation);
        }
    }
}
