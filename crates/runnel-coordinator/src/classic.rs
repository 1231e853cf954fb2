//! The classic rebalance protocol: JoinGroup, SyncGroup, Heartbeat, LeaveGroup and the timers
//! (session, rebalance, initial delay, pending members, pending sync), following Kafka's
//! `GroupMetadataManager` for classic groups.

use bytes::Bytes;
use runnel_protocol::generated::heartbeat_request::HeartbeatRequest;
use runnel_protocol::generated::heartbeat_response::HeartbeatResponse;
use runnel_protocol::generated::join_group_request::JoinGroupRequest;
use runnel_protocol::generated::join_group_response::{JoinGroupResponse, JoinGroupResponseMember};
use runnel_protocol::generated::leave_group_request::{LeaveGroupRequest, MemberIdentity};
use runnel_protocol::generated::leave_group_response::{LeaveGroupResponse, MemberResponse};
use runnel_protocol::generated::sync_group_request::SyncGroupRequest;
use runnel_protocol::generated::sync_group_response::SyncGroupResponse;
use runnel_protocol::ErrorCode;

use crate::coordinator::{ClientInfo, Completion, CoordinatorConfig, Effects, GroupCoordinator};
use crate::group::{ClassicGroup, GroupState, InitialDelay, Member, Parked, RequestId};
use crate::record::CoordinatorRecord;

/// Everything about a JoinGroup besides its body.
#[derive(Debug, Clone)]
pub struct JoinContext {
    pub request: RequestId,
    pub version: i16,
    pub client: ClientInfo,
    /// Random part of a new member id (`<client id>-<suffix>`); randomness is injected.
    pub member_id_suffix: String,
}

/// Everything about a SyncGroup besides its body.
#[derive(Debug, Clone, Copy)]
pub struct SyncContext {
    pub request: RequestId,
    pub version: i16,
}

/// State shared by the steps of one operation on one group.
struct Step<'a> {
    cfg: &'a CoordinatorConfig,
    fx: &'a mut Effects,
    now_ms: i64,
}

impl Step<'_> {
    fn persist(&mut self, group: &ClassicGroup) {
        self.fx.records.push(CoordinatorRecord::GroupMetadata {
            group: group.group_id.clone(),
            value: Some(group.to_record_value()),
        });
    }

    fn join_error(&mut self, parked: Parked, member_id: &str, code: ErrorCode) {
        self.fx.completions.push(Completion::Join {
            request: parked.request,
            response: join_error_response(parked.version, member_id, code),
        });
    }

    fn sync_error(&mut self, parked: Parked, code: ErrorCode) {
        self.fx.completions.push(Completion::Sync {
            request: parked.request,
            response: sync_response(code, None, Bytes::new()),
        });
    }
}

fn join_error_response(version: i16, member_id: &str, code: ErrorCode) -> JoinGroupResponse {
    JoinGroupResponse {
        error_code: code.code(),
        generation_id: -1,
        protocol_type: None,
        protocol_name: if version >= 7 { None } else { Some(String::new()) },
        member_id: member_id.to_string(),
        ..Default::default()
    }
}

fn sync_response(code: ErrorCode, group: Option<&ClassicGroup>, assignment: Bytes) -> SyncGroupResponse {
    SyncGroupResponse {
        error_code: code.code(),
        protocol_type: group.and_then(|g| g.protocol_type.clone()),
        protocol_name: group.and_then(|g| g.protocol.clone()),
        assignment,
        ..Default::default()
    }
}

/// The JoinGroup answer for `member_id` in the group's current generation; the leader gets
/// every member's metadata for the selected protocol.
fn join_response(group: &ClassicGroup, member_id: &str, version: i16, skip_assignment: bool) -> JoinGroupResponse {
    let protocol = group.protocol.clone().unwrap_or_default();
    let members = if group.is_leader(member_id) {
        group
            .members
            .iter()
            .map(|m| JoinGroupResponseMember {
                member_id: m.member_id.clone(),
                group_instance_id: m.instance_id.clone(),
                metadata: m.metadata_for(&protocol).cloned().unwrap_or_default(),
                ..Default::default()
            })
            .collect()
    } else {
        Vec::new()
    };
    JoinGroupResponse {
        error_code: 0,
        generation_id: group.generation,
        protocol_type: group.protocol_type.clone(),
        protocol_name: if version >= 7 {
            group.protocol.clone()
        } else {
            Some(protocol)
        },
        leader: group.leader.clone().unwrap_or_default(),
        skip_assignment,
        member_id: member_id.to_string(),
        members,
        ..Default::default()
    }
}

fn protocols_of(req: &JoinGroupRequest) -> Vec<(String, Bytes)> {
    req.protocols
        .iter()
        .map(|p| (p.name.clone(), p.metadata.clone()))
        .collect()
}

/// Kafka's `acceptJoiningMember`: `group.max.size` counts members (or parked joins while
/// preparing a rebalance); a member already counted is always let back in.
fn accepts_joining_member(group: &ClassicGroup, member_id: &str, max_size: usize) -> bool {
    match group.state {
        GroupState::Empty | GroupState::Dead => true,
        GroupState::PreparingRebalance => {
            group.member(member_id).is_some_and(|m| m.awaiting_join.is_some())
                || group.members.iter().filter(|m| m.awaiting_join.is_some()).count() < max_size
        }
        GroupState::CompletingRebalance | GroupState::Stable => {
            group.has_member(member_id) || group.members.len() < max_size
        }
    }
}

impl GroupCoordinator {
    /// JoinGroup. The answer always arrives as a `Completion::Join` for `ctx.request`, either
    /// in the returned effects or in those of a later operation or `tick`.
    pub fn join_group(&mut self, req: JoinGroupRequest, ctx: JoinContext, now_ms: i64) -> Effects {
        let mut fx = Effects::default();
        let parked = Parked {
            request: ctx.request,
            version: ctx.version,
        };
        let mut step = Step {
            cfg: &self.config,
            fx: &mut fx,
            now_ms,
        };
        if let Err(code) = validate_join(step.cfg, &req) {
            step.join_error(parked, &req.member_id, code);
            return fx;
        }
        // A KIP-848 group of this id: classic members may not join while it has members; an
        // empty one is replaced (its offsets stay).
        match crate::consumer::classic_join_conflict(&mut self.consumer_groups, &req.group_id) {
            Err(code) => {
                step.join_error(parked, &req.member_id, code);
                return fx;
            }
            Ok(records) => step.fx.records.extend(records),
        }
        if !self.groups.contains_key(&req.group_id) {
            if !req.member_id.is_empty() {
                step.join_error(parked, &req.member_id, ErrorCode::UNKNOWN_MEMBER_ID);
                return fx;
            }
            self.groups
                .insert(req.group_id.clone(), ClassicGroup::new(&req.group_id, now_ms));
        }
        let Some(group) = self.groups.get_mut(&req.group_id) else {
            return fx;
        };
        if !accepts_joining_member(group, &req.member_id, step.cfg.max_group_size) {
            step.join_error(parked, &req.member_id, ErrorCode::GROUP_MAX_SIZE_REACHED);
        } else if !group.supports_protocols(&req.protocol_type, &protocols_of(&req)) {
            step.join_error(parked, &req.member_id, ErrorCode::INCONSISTENT_GROUP_PROTOCOL);
        } else if req.member_id.is_empty() {
            join_new_member(group, &req, &ctx, parked, &mut step);
        } else {
            join_existing_member(group, &req, &ctx, parked, &mut step);
        }
        run_timers(group, &mut step);
        fx
    }

    /// SyncGroup. The answer always arrives as a `Completion::Sync` for `ctx.request`.
    pub fn sync_group(&mut self, req: SyncGroupRequest, ctx: SyncContext, now_ms: i64) -> Effects {
        let mut fx = Effects::default();
        let parked = Parked {
            request: ctx.request,
            version: ctx.version,
        };
        let mut step = Step {
            cfg: &self.config,
            fx: &mut fx,
            now_ms,
        };
        let Some(group) = self.groups.get_mut(&req.group_id) else {
            step.sync_error(parked, ErrorCode::UNKNOWN_MEMBER_ID);
            return fx;
        };
        if let Err(code) = validate_sync(group, &req) {
            step.sync_error(parked, code);
            return fx;
        }
        match group.state {
            GroupState::Empty | GroupState::Dead => step.sync_error(parked, ErrorCode::UNKNOWN_MEMBER_ID),
            GroupState::PreparingRebalance => step.sync_error(parked, ErrorCode::REBALANCE_IN_PROGRESS),
            GroupState::CompletingRebalance => sync_completing(group, &req, parked, &mut step),
            GroupState::Stable => {
                group.pending_sync.remove(&req.member_id);
                let session_ms = group.member(&req.member_id).map_or(0, |m| m.session_timeout_ms);
                let assignment = group
                    .member(&req.member_id)
                    .map(|m| m.assignment.clone())
                    .unwrap_or_default();
                if let Some(m) = group.member_mut(&req.member_id) {
                    m.heartbeat_deadline_ms = now_ms + i64::from(session_ms);
                }
                step.fx.completions.push(Completion::Sync {
                    request: parked.request,
                    response: sync_response(ErrorCode::NONE, Some(group), assignment),
                });
            }
        }
        run_timers(group, &mut step);
        fx
    }

    /// Heartbeat: keeps a member alive and tells it when a rebalance has started.
    pub fn heartbeat(&mut self, req: &HeartbeatRequest, now_ms: i64) -> HeartbeatResponse {
        let code = match self.groups.get_mut(&req.group_id) {
            None => ErrorCode::UNKNOWN_MEMBER_ID,
            Some(group) => heartbeat_group(group, req, now_ms),
        };
        HeartbeatResponse {
            error_code: code.code(),
            ..Default::default()
        }
    }

    /// LeaveGroup: v0–2 name one member, v3+ a batch (static members by instance id).
    pub fn leave_group(&mut self, req: &LeaveGroupRequest, version: i16, now_ms: i64) -> (LeaveGroupResponse, Effects) {
        let mut fx = Effects::default();
        let identities = if version >= 3 {
            req.members.clone()
        } else {
            vec![MemberIdentity {
                member_id: req.member_id.clone(),
                ..Default::default()
            }]
        };
        let Some(group) = self.groups.get_mut(&req.group_id) else {
            let response = LeaveGroupResponse {
                error_code: ErrorCode::UNKNOWN_MEMBER_ID.code(),
                ..Default::default()
            };
            return (response, fx);
        };
        let mut step = Step {
            cfg: &self.config,
            fx: &mut fx,
            now_ms,
        };
        let mut members = Vec::with_capacity(identities.len());
        for identity in &identities {
            let code = leave_one(group, identity, &mut step);
            members.push(MemberResponse {
                member_id: identity.member_id.clone(),
                group_instance_id: identity.group_instance_id.clone(),
                error_code: code.code(),
                ..Default::default()
            });
        }
        run_timers(group, &mut step);
        let response = if version >= 3 {
            LeaveGroupResponse {
                members,
                ..Default::default()
            }
        } else {
            LeaveGroupResponse {
                error_code: members.first().map_or(0, |m| m.error_code),
                ..Default::default()
            }
        };
        (response, fx)
    }

    /// Runs every group's timers at `now_ms`: expired members, pending members and pending
    /// syncs are removed, join phases whose time is up complete.
    pub fn tick(&mut self, now_ms: i64) -> Effects {
        let mut fx = Effects::default();
        let mut step = Step {
            cfg: &self.config,
            fx: &mut fx,
            now_ms,
        };
        for group in self.groups.values_mut() {
            run_timers(group, &mut step);
        }
        fx.records.extend(self.consumer_tick(now_ms));
        fx
    }
}

fn validate_join(cfg: &CoordinatorConfig, req: &JoinGroupRequest) -> Result<(), ErrorCode> {
    if req.group_id.is_empty() {
        return Err(ErrorCode::INVALID_GROUP_ID);
    }
    if req.session_timeout_ms < cfg.min_session_timeout_ms || req.session_timeout_ms > cfg.max_session_timeout_ms {
        return Err(ErrorCode::INVALID_SESSION_TIMEOUT);
    }
    Ok(())
}

fn new_member(req: &JoinGroupRequest, ctx: &JoinContext, member_id: &str, parked: Parked, now_ms: i64) -> Member {
    Member {
        member_id: member_id.to_string(),
        instance_id: req.group_instance_id.clone(),
        client_id: ctx.client.client_id.clone(),
        client_host: ctx.client.client_host.clone(),
        rebalance_timeout_ms: if req.rebalance_timeout_ms > 0 {
            req.rebalance_timeout_ms
        } else {
            // v0 has no rebalance timeout: Kafka uses the session timeout.
            req.session_timeout_ms
        },
        session_timeout_ms: req.session_timeout_ms,
        protocols: protocols_of(req),
        assignment: Bytes::new(),
        awaiting_join: Some(parked),
        awaiting_sync: None,
        heartbeat_deadline_ms: now_ms + i64::from(req.session_timeout_ms),
    }
}

fn join_new_member(
    group: &mut ClassicGroup,
    req: &JoinGroupRequest,
    ctx: &JoinContext,
    parked: Parked,
    step: &mut Step,
) {
    let new_id = format!("{}-{}", ctx.client.client_id, ctx.member_id_suffix);
    if let Some(instance) = req.group_instance_id.as_deref() {
        if let Some(old_id) = group.static_member_id(instance).map(str::to_string) {
            static_member_rejoin(group, req, &old_id, &new_id, parked, step);
            return;
        }
        add_member_and_rebalance(group, req, ctx, &new_id, parked, step);
        return;
    }
    if ctx.version >= 4 {
        // KIP-394: hand out the member id first, so a client that times out and retries is
        // not counted twice.
        let expiry = step.now_ms + i64::from(req.session_timeout_ms);
        group.pending_members.insert(new_id.clone(), expiry);
        step.join_error(parked, &new_id, ErrorCode::MEMBER_ID_REQUIRED);
        return;
    }
    add_member_and_rebalance(group, req, ctx, &new_id, parked, step);
}

fn join_existing_member(
    group: &mut ClassicGroup,
    req: &JoinGroupRequest,
    ctx: &JoinContext,
    parked: Parked,
    step: &mut Step,
) {
    let member_id = req.member_id.as_str();
    if group.pending_members.remove(member_id).is_some() {
        add_member_and_rebalance(group, req, ctx, member_id, parked, step);
        return;
    }
    if let Err(code) = group.validate_member(member_id, req.group_instance_id.as_deref()) {
        step.join_error(parked, member_id, code);
        return;
    }
    let protocols = protocols_of(req);
    let matches = group.member(member_id).is_some_and(|m| m.protocols == protocols);
    match group.state {
        GroupState::Empty | GroupState::Dead => step.join_error(parked, member_id, ErrorCode::UNKNOWN_MEMBER_ID),
        GroupState::PreparingRebalance => update_member_and_rebalance(group, req, parked, step),
        GroupState::CompletingRebalance if matches => respond_current_generation(group, member_id, parked, step),
        GroupState::Stable if matches && !group.is_leader(member_id) => {
            respond_current_generation(group, member_id, parked, step)
        }
        GroupState::CompletingRebalance | GroupState::Stable => update_member_and_rebalance(group, req, parked, step),
    }
}

fn respond_current_generation(group: &mut ClassicGroup, member_id: &str, parked: Parked, step: &mut Step) {
    if let Some(m) = group.member_mut(member_id) {
        m.heartbeat_deadline_ms = step.now_ms + i64::from(m.session_timeout_ms);
    }
    step.fx.completions.push(Completion::Join {
        request: parked.request,
        response: join_response(group, member_id, parked.version, false),
    });
}

fn add_member_and_rebalance(
    group: &mut ClassicGroup,
    req: &JoinGroupRequest,
    ctx: &JoinContext,
    member_id: &str,
    parked: Parked,
    step: &mut Step,
) {
    let member = new_member(req, ctx, member_id, parked, step.now_ms);
    group.add_member(member, &req.protocol_type);
    if let Some(delay) = group.initial_delay.as_mut() {
        delay.new_member_added = true;
    }
    rebalance_or_complete(group, step);
}

fn update_member_and_rebalance(group: &mut ClassicGroup, req: &JoinGroupRequest, parked: Parked, step: &mut Step) {
    let Some(m) = group.member_mut(&req.member_id) else {
        return;
    };
    let replaced = m.awaiting_join.replace(parked);
    m.protocols = protocols_of(req);
    m.session_timeout_ms = req.session_timeout_ms;
    if req.rebalance_timeout_ms > 0 {
        m.rebalance_timeout_ms = req.rebalance_timeout_ms;
    }
    if let Some(old) = replaced {
        // A retried JoinGroup supersedes the parked one; answer the old so nothing hangs.
        step.join_error(old, &req.member_id, ErrorCode::REBALANCE_IN_PROGRESS);
    }
    rebalance_or_complete(group, step);
}

fn rebalance_or_complete(group: &mut ClassicGroup, step: &mut Step) {
    match group.state {
        GroupState::Stable | GroupState::CompletingRebalance | GroupState::Empty => prepare_rebalance(group, step),
        GroupState::PreparingRebalance => maybe_complete_join(group, step),
        GroupState::Dead => {}
    }
}

/// A known static member (by `group.instance.id`) joined with a new member id: it takes over
/// the old member's place and assignment. In a Stable group whose protocol stays the same the
/// others are not disturbed; the old member id is fenced.
fn static_member_rejoin(
    group: &mut ClassicGroup,
    req: &JoinGroupRequest,
    old_id: &str,
    new_id: &str,
    parked: Parked,
    step: &mut Step,
) {
    let Some(member) = group.member_mut(old_id) else {
        return;
    };
    let old_join = member.awaiting_join.take();
    let old_sync = member.awaiting_sync.take();
    member.member_id = new_id.to_string();
    member.protocols = protocols_of(req);
    member.session_timeout_ms = req.session_timeout_ms;
    if req.rebalance_timeout_ms > 0 {
        member.rebalance_timeout_ms = req.rebalance_timeout_ms;
    }
    member.heartbeat_deadline_ms = step.now_ms + i64::from(req.session_timeout_ms);
    member.awaiting_join = Some(parked);
    if let Some(p) = old_join {
        step.join_error(p, old_id, ErrorCode::FENCED_INSTANCE_ID);
    }
    if let Some(p) = old_sync {
        step.sync_error(p, ErrorCode::FENCED_INSTANCE_ID);
    }
    if group.is_leader(old_id) {
        group.leader = Some(new_id.to_string());
    }
    if group.pending_sync.remove(old_id) {
        group.pending_sync.insert(new_id.to_string());
    }
    match group.state {
        GroupState::Stable if group.select_protocol() == group.protocol => {
            if let Some(m) = group.member_mut(new_id) {
                m.awaiting_join = None;
            }
            step.persist(group);
            let is_leader = group.is_leader(new_id);
            step.fx.completions.push(Completion::Join {
                request: parked.request,
                response: join_response(group, new_id, parked.version, is_leader),
            });
        }
        GroupState::PreparingRebalance => maybe_complete_join(group, step),
        _ => prepare_rebalance(group, step),
    }
}

/// Starts a join phase. A group that was Empty waits the initial rebalance delay; otherwise the
/// phase ends when every member has rejoined or after the largest rebalance timeout.
fn prepare_rebalance(group: &mut ClassicGroup, step: &mut Step) {
    if group.state == GroupState::CompletingRebalance {
        reset_pending_syncs(group, step);
    }
    let rebalance_timeout_ms = group.max_rebalance_timeout_ms();
    if group.state == GroupState::Empty {
        let delay_ms = step.cfg.initial_rebalance_delay_ms;
        group.initial_delay = Some(InitialDelay {
            delay_ms,
            remaining_ms: (rebalance_timeout_ms - delay_ms).max(0),
            new_member_added: false,
        });
        group.join_deadline_ms = Some(step.now_ms + delay_ms);
    } else {
        group.initial_delay = None;
        group.join_deadline_ms = Some(step.now_ms + rebalance_timeout_ms);
    }
    group.transition(GroupState::PreparingRebalance, step.now_ms);
    maybe_complete_join(group, step);
}

/// Members parked in SyncGroup learn that a new rebalance started.
fn reset_pending_syncs(group: &mut ClassicGroup, step: &mut Step) {
    for m in &mut group.members {
        if let Some(p) = m.awaiting_sync.take() {
            step.sync_error(p, ErrorCode::REBALANCE_IN_PROGRESS);
        }
    }
    group.pending_sync.clear();
    group.sync_deadline_ms = None;
}

fn maybe_complete_join(group: &mut ClassicGroup, step: &mut Step) {
    if group.state == GroupState::PreparingRebalance && group.initial_delay.is_none() && group.all_members_joined() {
        complete_join(group, step);
    }
}

/// Ends the join phase: dynamic members that did not rejoin are dropped, the generation moves
/// on, and every parked JoinGroup is answered (the leader gets the members' metadata).
fn complete_join(group: &mut ClassicGroup, step: &mut Step) {
    let stale: Vec<String> = group
        .members
        .iter()
        .filter(|m| m.awaiting_join.is_none() && m.instance_id.is_none())
        .map(|m| m.member_id.clone())
        .collect();
    for id in stale {
        group.remove_member(&id);
    }
    group.join_deadline_ms = None;
    group.initial_delay = None;
    group.generation += 1;
    if group.members.is_empty() {
        group.protocol = None;
        group.leader = None;
        group.transition(GroupState::Empty, step.now_ms);
        step.persist(group);
        return;
    }
    group.protocol = group.select_protocol();
    if group.leader.is_none() {
        group.leader = group.members.first().map(|m| m.member_id.clone());
    }
    group.transition(GroupState::CompletingRebalance, step.now_ms);
    let mut answers = Vec::new();
    for m in &mut group.members {
        m.heartbeat_deadline_ms = step.now_ms + i64::from(m.session_timeout_ms);
        if let Some(p) = m.awaiting_join.take() {
            answers.push((m.member_id.clone(), p));
        }
    }
    for (id, p) in answers {
        step.fx.completions.push(Completion::Join {
            request: p.request,
            response: join_response(group, &id, p.version, false),
        });
    }
    group.pending_sync = group.members.iter().map(|m| m.member_id.clone()).collect();
    group.sync_deadline_ms = Some(step.now_ms + group.max_rebalance_timeout_ms());
}

fn validate_sync(group: &ClassicGroup, req: &SyncGroupRequest) -> Result<(), ErrorCode> {
    if group.state == GroupState::Dead {
        return Err(ErrorCode::COORDINATOR_NOT_AVAILABLE);
    }
    group.validate_member(&req.member_id, req.group_instance_id.as_deref())?;
    if req.generation_id != group.generation {
        return Err(ErrorCode::ILLEGAL_GENERATION);
    }
    let type_differs = req
        .protocol_type
        .as_ref()
        .is_some_and(|t| group.protocol_type.as_ref() != Some(t));
    let name_differs = req
        .protocol_name
        .as_ref()
        .is_some_and(|n| group.protocol.as_ref() != Some(n));
    if type_differs || name_differs {
        return Err(ErrorCode::INCONSISTENT_GROUP_PROTOCOL);
    }
    Ok(())
}

/// SyncGroup while the leader has not answered yet: park; the leader's assignments are stored,
/// persisted and handed to every parked member, and the group becomes Stable.
fn sync_completing(group: &mut ClassicGroup, req: &SyncGroupRequest, parked: Parked, step: &mut Step) {
    group.pending_sync.remove(&req.member_id);
    if let Some(m) = group.member_mut(&req.member_id) {
        m.awaiting_sync = Some(parked);
        m.heartbeat_deadline_ms = step.now_ms + i64::from(m.session_timeout_ms);
    }
    if !group.is_leader(&req.member_id) {
        return;
    }
    for m in &mut group.members {
        m.assignment = req
            .assignments
            .iter()
            .find(|a| a.member_id == m.member_id)
            .map(|a| a.assignment.clone())
            .unwrap_or_default();
    }
    group.transition(GroupState::Stable, step.now_ms);
    step.persist(group);
    let mut answers = Vec::new();
    for m in &mut group.members {
        if let Some(p) = m.awaiting_sync.take() {
            answers.push((p, m.assignment.clone()));
        }
    }
    for (p, assignment) in answers {
        step.fx.completions.push(Completion::Sync {
            request: p.request,
            response: sync_response(ErrorCode::NONE, Some(group), assignment),
        });
    }
}

fn heartbeat_group(group: &mut ClassicGroup, req: &HeartbeatRequest, now_ms: i64) -> ErrorCode {
    if group.state == GroupState::Dead {
        return ErrorCode::COORDINATOR_NOT_AVAILABLE;
    }
    if let Err(code) = group.validate_member(&req.member_id, req.group_instance_id.as_deref()) {
        return code;
    }
    if req.generation_id != group.generation {
        return ErrorCode::ILLEGAL_GENERATION;
    }
    if group.state == GroupState::Empty {
        return ErrorCode::UNKNOWN_MEMBER_ID;
    }
    if let Some(m) = group.member_mut(&req.member_id) {
        m.heartbeat_deadline_ms = now_ms + i64::from(m.session_timeout_ms);
    }
    if group.state == GroupState::PreparingRebalance {
        return ErrorCode::REBALANCE_IN_PROGRESS;
    }
    ErrorCode::NONE
}

fn leave_one(group: &mut ClassicGroup, identity: &MemberIdentity, step: &mut Step) -> ErrorCode {
    let instance = identity.group_instance_id.as_deref();
    let member_id = match instance {
        Some(i) if identity.member_id.is_empty() => match group.static_member_id(i) {
            Some(id) => id.to_string(),
            None => return ErrorCode::UNKNOWN_MEMBER_ID,
        },
        _ => identity.member_id.clone(),
    };
    if group.pending_members.remove(&member_id).is_some() {
        maybe_complete_join(group, step);
        return ErrorCode::NONE;
    }
    if let Err(code) = group.validate_member(&member_id, instance) {
        return code;
    }
    remove_member_and_update(group, &member_id, step);
    ErrorCode::NONE
}

/// Removes a member (left, expired, or never synced) and starts or advances a rebalance.
fn remove_member_and_update(group: &mut ClassicGroup, member_id: &str, step: &mut Step) {
    let Some(member) = group.remove_member(member_id) else {
        return;
    };
    if let Some(p) = member.awaiting_join {
        step.join_error(p, member_id, ErrorCode::UNKNOWN_MEMBER_ID);
    }
    if let Some(p) = member.awaiting_sync {
        step.sync_error(p, ErrorCode::UNKNOWN_MEMBER_ID);
    }
    match group.state {
        GroupState::Stable | GroupState::CompletingRebalance => prepare_rebalance(group, step),
        GroupState::PreparingRebalance => maybe_complete_join(group, step),
        GroupState::Empty | GroupState::Dead => {}
    }
}

/// Every timer of one group, checked at `step.now_ms`.
fn run_timers(group: &mut ClassicGroup, step: &mut Step) {
    let now_ms = step.now_ms;
    let before = group.pending_members.len();
    group.pending_members.retain(|_, expiry_ms| *expiry_ms > now_ms);
    if group.pending_members.len() != before {
        maybe_complete_join(group, step);
    }
    let expired: Vec<String> = group
        .members
        .iter()
        .filter(|m| m.expired(now_ms))
        .map(|m| m.member_id.clone())
        .collect();
    for id in expired {
        remove_member_and_update(group, &id, step);
    }
    join_deadline(group, step);
    sync_deadline(group, step);
}

fn join_deadline(group: &mut ClassicGroup, step: &mut Step) {
    if group.state != GroupState::PreparingRebalance || group.join_deadline_ms.is_none_or(|d| d > step.now_ms) {
        return;
    }
    if let Some(delay) = group.initial_delay.as_mut() {
        if delay.new_member_added && delay.remaining_ms > 0 {
            let next_ms = delay.delay_ms.min(delay.remaining_ms);
            delay.remaining_ms = (delay.remaining_ms - delay.delay_ms).max(0);
            delay.new_member_added = false;
            group.join_deadline_ms = Some(step.now_ms + next_ms);
            return;
        }
    }
    complete_join(group, step);
}

/// Members that got a JoinGroup answer but never sent SyncGroup within the rebalance timeout
/// are removed, as Kafka does, so one stuck member cannot hold the group.
fn sync_deadline(group: &mut ClassicGroup, step: &mut Step) {
    let due = group.sync_deadline_ms.is_some_and(|d| d <= step.now_ms);
    if !due || !matches!(group.state, GroupState::CompletingRebalance | GroupState::Stable) {
        return;
    }
    group.sync_deadline_ms = None;
    let missing: Vec<String> = group.pending_sync.iter().cloned().collect();
    for id in missing {
        remove_member_and_update(group, &id, step);
    }
}
