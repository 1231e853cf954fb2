//! A classic group's in-memory state: members, generation, the selected protocol and the
//! transient rebalance bookkeeping (parked requests, pending members, deadlines) that is never
//! persisted.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use runnel_protocol::generated::group_metadata_value::{GroupMetadataValue, MemberMetadata};

/// Identifies a parked JoinGroup or SyncGroup request; chosen by the runtime.
pub type RequestId = u64;

/// Kafka's classic group states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
    Dead,
}

impl GroupState {
    /// The name Kafka uses in DescribeGroups and ListGroups.
    pub fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }
}

/// A parked JoinGroup: the request to answer and the version to answer with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parked {
    pub request: RequestId,
    pub version: i16,
}

#[derive(Debug, Clone)]
pub struct Member {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub session_timeout_ms: i32,
    /// `(name, metadata)` in the member's order of preference; metadata is opaque.
    pub protocols: Vec<(String, Bytes)>,
    /// Opaque assignment from the leader's last SyncGroup.
    pub assignment: Bytes,
    pub awaiting_join: Option<Parked>,
    pub awaiting_sync: Option<Parked>,
    /// The member is removed when this passes and it is not parked in a join or sync.
    pub heartbeat_deadline_ms: i64,
}

impl Member {
    pub fn metadata_for(&self, protocol: &str) -> Option<&Bytes> {
        self.protocols.iter().find(|(n, _)| n == protocol).map(|(_, m)| m)
    }

    fn keeps_alive(&self, now_ms: i64) -> bool {
        self.awaiting_join.is_some() || self.awaiting_sync.is_some() || now_ms < self.heartbeat_deadline_ms
    }

    pub fn expired(&self, now_ms: i64) -> bool {
        !self.keeps_alive(now_ms)
    }
}

/// The initial rebalance of a new group waits `group.initial.rebalance.delay.ms`, extended by
/// the same delay while new members keep arriving, up to the rebalance timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InitialDelay {
    pub delay_ms: i64,
    pub remaining_ms: i64,
    pub new_member_added: bool,
}

#[derive(Debug, Clone)]
pub struct ClassicGroup {
    pub group_id: String,
    pub state: GroupState,
    pub state_timestamp_ms: i64,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    /// In join order (the first member becomes leader when the leader leaves).
    pub members: Vec<Member>,
    /// Member ids handed out with MEMBER_ID_REQUIRED, with their expiry.
    pub pending_members: BTreeMap<String, i64>,
    /// Members of the current generation that have not sent SyncGroup yet.
    pub pending_sync: BTreeSet<String>,
    pub sync_deadline_ms: Option<i64>,
    /// When the join phase completes whatever happens.
    pub join_deadline_ms: Option<i64>,
    pub initial_delay: Option<InitialDelay>,
}

impl ClassicGroup {
    pub fn new(group_id: &str, now_ms: i64) -> Self {
        ClassicGroup {
            group_id: group_id.to_string(),
            state: GroupState::Empty,
            state_timestamp_ms: now_ms,
            generation: 0,
            protocol_type: None,
            protocol: None,
            leader: None,
            members: Vec::new(),
            pending_members: BTreeMap::new(),
            pending_sync: BTreeSet::new(),
            sync_deadline_ms: None,
            join_deadline_ms: None,
            initial_delay: None,
        }
    }

    pub fn transition(&mut self, state: GroupState, now_ms: i64) {
        self.state = state;
        self.state_timestamp_ms = now_ms;
    }

    pub fn member(&self, member_id: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.member_id == member_id)
    }

    pub fn member_mut(&mut self, member_id: &str) -> Option<&mut Member> {
        self.members.iter_mut().find(|m| m.member_id == member_id)
    }

    pub fn has_member(&self, member_id: &str) -> bool {
        self.member(member_id).is_some()
    }

    pub fn static_member_id(&self, instance_id: &str) -> Option<&str> {
        self.members
            .iter()
            .find(|m| m.instance_id.as_deref() == Some(instance_id))
            .map(|m| m.member_id.as_str())
    }

    pub fn is_leader(&self, member_id: &str) -> bool {
        self.leader.as_deref() == Some(member_id)
    }

    /// Adds a member; the first member of an empty group sets the group's protocol type.
    pub fn add_member(&mut self, member: Member, protocol_type: &str) {
        if self.members.is_empty() {
            self.protocol_type = Some(protocol_type.to_string());
        }
        if self.leader.is_none() {
            self.leader = Some(member.member_id.clone());
        }
        self.members.push(member);
    }

    /// Removes a member; a departing leader hands over to the first remaining member.
    pub fn remove_member(&mut self, member_id: &str) -> Option<Member> {
        let idx = self.members.iter().position(|m| m.member_id == member_id)?;
        let member = self.members.remove(idx);
        self.pending_sync.remove(member_id);
        if self.is_leader(member_id) {
            self.leader = self.members.first().map(|m| m.member_id.clone());
        }
        Some(member)
    }

    /// Kafka's `validateMember`: a static member must present its current member id.
    pub fn validate_member(
        &self,
        member_id: &str,
        instance_id: Option<&str>,
    ) -> Result<(), runnel_protocol::ErrorCode> {
        use runnel_protocol::ErrorCode;
        match instance_id {
            Some(instance) => match self.static_member_id(instance) {
                None => Err(ErrorCode::UNKNOWN_MEMBER_ID),
                Some(existing) if existing != member_id => Err(ErrorCode::FENCED_INSTANCE_ID),
                Some(_) => Ok(()),
            },
            None if self.has_member(member_id) => Ok(()),
            None => Err(ErrorCode::UNKNOWN_MEMBER_ID),
        }
    }

    pub fn max_rebalance_timeout_ms(&self) -> i64 {
        self.members
            .iter()
            .map(|m| i64::from(m.rebalance_timeout_ms))
            .max()
            .unwrap_or(0)
    }

    /// Protocols every member supports.
    fn candidate_protocols(&self) -> Vec<String> {
        let Some(first) = self.members.first() else {
            return Vec::new();
        };
        first
            .protocols
            .iter()
            .map(|(n, _)| n.clone())
            .filter(|n| self.members.iter().all(|m| m.metadata_for(n).is_some()))
            .collect()
    }

    /// Kafka's `supportsProtocols`: an empty group takes any non-empty protocol type; otherwise
    /// the type must match and at least one protocol must be supported by every member.
    pub fn supports_protocols(&self, protocol_type: &str, protocols: &[(String, Bytes)]) -> bool {
        if self.members.is_empty() {
            return !protocol_type.is_empty() && !protocols.is_empty();
        }
        let candidates = self.candidate_protocols();
        self.protocol_type.as_deref() == Some(protocol_type) && protocols.iter().any(|(n, _)| candidates.contains(n))
    }

    /// Each member votes for its most preferred candidate; the most votes wins (ties go to the
    /// earlier candidate in the first member's preference order).
    pub fn select_protocol(&self) -> Option<String> {
        let candidates = self.candidate_protocols();
        let mut votes = vec![0usize; candidates.len()];
        for m in &self.members {
            if let Some(i) = m
                .protocols
                .iter()
                .find_map(|(n, _)| candidates.iter().position(|c| c == n))
            {
                votes[i] += 1;
            }
        }
        let mut best: Option<usize> = None;
        for (i, v) in votes.iter().enumerate() {
            if best.is_none_or(|b| *v > votes[b]) {
                best = Some(i);
            }
        }
        best.map(|i| candidates[i].clone())
    }

    pub fn all_members_joined(&self) -> bool {
        self.pending_members.is_empty() && self.members.iter().all(|m| m.awaiting_join.is_some())
    }

    /// The persisted form of this group (Kafka's group metadata record value).
    pub fn to_record_value(&self) -> GroupMetadataValue {
        let protocol = self.protocol.clone();
        let members = self
            .members
            .iter()
            .map(|m| MemberMetadata {
                member_id: m.member_id.clone(),
                group_instance_id: m.instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                rebalance_timeout: m.rebalance_timeout_ms,
                session_timeout: m.session_timeout_ms,
                subscription: protocol
                    .as_deref()
                    .and_then(|p| m.metadata_for(p))
                    .cloned()
                    .unwrap_or_default(),
                assignment: m.assignment.clone(),
                ..Default::default()
            })
            .collect();
        GroupMetadataValue {
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            generation: self.generation,
            protocol,
            leader: self.leader.clone(),
            current_state_timestamp: self.state_timestamp_ms,
            members,
            ..Default::default()
        }
    }

    /// Rebuilds a group from its record (at load). Members are Stable with no heartbeat yet;
    /// `GroupCoordinator::finish_load` gives them a full session timeout.
    pub fn from_record(group_id: &str, v: &GroupMetadataValue) -> Self {
        let mut g = ClassicGroup::new(group_id, v.current_state_timestamp);
        g.generation = v.generation;
        g.protocol_type = (!v.protocol_type.is_empty()).then(|| v.protocol_type.clone());
        g.protocol = v.protocol.clone();
        g.leader = v.leader.clone();
        for m in &v.members {
            g.members.push(Member {
                member_id: m.member_id.clone(),
                instance_id: m.group_instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                rebalance_timeout_ms: m.rebalance_timeout,
                session_timeout_ms: m.session_timeout,
                protocols: vec![(v.protocol.clone().unwrap_or_default(), m.subscription.clone())],
                assignment: m.assignment.clone(),
                awaiting_join: None,
                awaiting_sync: None,
                heartbeat_deadline_ms: 0,
            });
        }
        g.state = if g.members.is_empty() {
            GroupState::Empty
        } else {
            GroupState::Stable
        };
        g
    }
}
