//! Scenario tests with injected time, and the replay property.

use bytes::Bytes;
use proptest::prelude::*;
use runnel_protocol::generated::heartbeat_request::HeartbeatRequest;
use runnel_protocol::generated::join_group_request::{JoinGroupRequest, JoinGroupRequestProtocol};
use runnel_protocol::generated::join_group_response::JoinGroupResponse;
use runnel_protocol::generated::leave_group_request::{LeaveGroupRequest, MemberIdentity};
use runnel_protocol::generated::offset_commit_request::{
    OffsetCommitRequest, OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use runnel_protocol::generated::offset_delete_request::{
    OffsetDeleteRequest, OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use runnel_protocol::generated::sync_group_request::{SyncGroupRequest, SyncGroupRequestAssignment};
use runnel_protocol::generated::sync_group_response::SyncGroupResponse;
use runnel_protocol::ErrorCode;

use crate::*;

const SESSION_MS: i32 = 10_000;
const REBALANCE_MS: i32 = 30_000;

/// A coordinator plus a clock and the records it has emitted (appended and applied, as the
/// runtime would).
struct Harness {
    c: GroupCoordinator,
    now_ms: i64,
    next_request: u64,
    next_suffix: u64,
    log: Vec<CoordinatorRecord>,
    completions: Vec<Completion>,
}

fn consumer_metadata(topics: &[&str]) -> Bytes {
    let mut v = vec![0u8, 0];
    v.extend_from_slice(&(topics.len() as i32).to_be_bytes());
    for t in topics {
        v.extend_from_slice(&(t.len() as i16).to_be_bytes());
        v.extend_from_slice(t.as_bytes());
    }
    v.extend_from_slice(&(-1i32).to_be_bytes());
    Bytes::from(v)
}

fn join_req(group: &str, member_id: &str, instance: Option<&str>) -> JoinGroupRequest {
    JoinGroupRequest {
        group_id: group.into(),
        session_timeout_ms: SESSION_MS,
        rebalance_timeout_ms: REBALANCE_MS,
        member_id: member_id.into(),
        group_instance_id: instance.map(String::from),
        protocol_type: "consumer".into(),
        protocols: vec![JoinGroupRequestProtocol {
            name: "range".into(),
            metadata: consumer_metadata(&["t"]),
            ..Default::default()
        }],
        ..Default::default()
    }
}

impl Harness {
    fn new(initial_delay_ms: i64) -> Harness {
        Harness {
            c: GroupCoordinator::new(CoordinatorConfig {
                initial_rebalance_delay_ms: initial_delay_ms,
                ..Default::default()
            }),
            now_ms: 1_000_000,
            next_request: 0,
            next_suffix: 0,
            log: Vec::new(),
            completions: Vec::new(),
        }
    }

    fn effects(&mut self, fx: Effects) {
        self.log.extend(fx.records);
        self.completions.extend(fx.completions);
    }

    fn decision<R>(&mut self, d: Decision<R>) -> R {
        self.log.extend(d.records.iter().cloned());
        self.c.apply(d.records);
        d.response
    }

    /// Sends a JoinGroup; returns its request id.
    fn join(&mut self, req: JoinGroupRequest, version: i16) -> u64 {
        self.next_request += 1;
        self.next_suffix += 1;
        let ctx = JoinContext {
            request: self.next_request,
            version,
            client: ClientInfo {
                client_id: "client".into(),
                client_host: "/127.0.0.1".into(),
            },
            member_id_suffix: format!("m{}", self.next_suffix),
        };
        let fx = self.c.join_group(req, ctx, self.now_ms);
        self.effects(fx);
        self.next_request
    }

    fn join_answer(&mut self, request: u64) -> Option<JoinGroupResponse> {
        let idx = self.completions.iter().position(|c| c.request() == request)?;
        match self.completions.remove(idx) {
            Completion::Join { response, .. } => Some(response),
            Completion::Sync { .. } => panic!("sync answer for a join"),
        }
    }

    fn sync_answer(&mut self, request: u64) -> Option<SyncGroupResponse> {
        let idx = self.completions.iter().position(|c| c.request() == request)?;
        match self.completions.remove(idx) {
            Completion::Sync { response, .. } => Some(response),
            Completion::Join { .. } => panic!("join answer for a sync"),
        }
    }

    /// Joins a new dynamic member with the KIP-394 round trip; returns the parked request.
    fn join_new(&mut self, group: &str) -> (String, u64) {
        let first = self.join(join_req(group, "", None), 5);
        let r = self.join_answer(first).expect("member id required answers at once");
        assert_eq!(r.error_code, ErrorCode::MEMBER_ID_REQUIRED.code());
        let id = r.member_id.clone();
        (id.clone(), self.join(join_req(group, &id, None), 5))
    }

    fn sync(&mut self, group: &str, member: &str, generation: i32, assignments: &[(&str, &[u8])]) -> u64 {
        self.next_request += 1;
        let req = SyncGroupRequest {
            group_id: group.into(),
            generation_id: generation,
            member_id: member.into(),
            assignments: assignments
                .iter()
                .map(|(m, a)| SyncGroupRequestAssignment {
                    member_id: (*m).into(),
                    assignment: Bytes::copy_from_slice(a),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        let fx = self.c.sync_group(
            req,
            SyncContext {
                request: self.next_request,
                version: 5,
            },
            self.now_ms,
        );
        self.effects(fx);
        self.next_request
    }

    fn heartbeat(&mut self, group: &str, member: &str, generation: i32) -> ErrorCode {
        let req = HeartbeatRequest {
            group_id: group.into(),
            generation_id: generation,
            member_id: member.into(),
            ..Default::default()
        };
        ErrorCode(self.c.heartbeat(&req, self.now_ms).error_code)
    }

    fn advance(&mut self, ms: i64) {
        self.now_ms += ms;
        let fx = self.c.tick(self.now_ms);
        self.effects(fx);
    }

    fn commit(&mut self, group: &str, member: &str, generation: i32, offset: i64, version: i16) -> ErrorCode {
        let req = OffsetCommitRequest {
            group_id: group.into(),
            generation_id_or_member_epoch: generation,
            member_id: member.into(),
            topics: vec![OffsetCommitRequestTopic {
                name: "t".into(),
                partitions: vec![OffsetCommitRequestPartition {
                    partition_index: 0,
                    committed_offset: offset,
                    committed_leader_epoch: 3,
                    committed_metadata: Some("meta-data".into()),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        let exists = |_: &str, p: i32| p < 6;
        let ctx = CommitContext {
            version,
            partition_exists: &exists,
        };
        let d = self.c.offset_commit(&req, ctx, self.now_ms);
        let resp = self.decision(d);
        ErrorCode(resp.topics[0].partitions[0].error_code)
    }

    /// Builds a Stable group of `n` dynamic members (the first is the leader); returns the
    /// member ids and the generation.
    fn stable_group(&mut self, group: &str, n: usize) -> (Vec<String>, i32) {
        let mut members = Vec::new();
        let mut parked = Vec::new();
        for _ in 0..n {
            let (id, req) = self.join_new(group);
            members.push(id);
            parked.push(req);
        }
        // The initial delay extends while members keep arriving; step until it ends.
        let delay_ms = self.c.config().initial_rebalance_delay_ms.max(1);
        for _ in 0..4 {
            self.advance(delay_ms);
        }
        let mut generation = -1;
        for req in parked {
            let r = self.join_answer(req).expect("join completes after the initial delay");
            assert_eq!(r.error_code, 0);
            generation = r.generation_id;
        }
        let assignments: Vec<(String, Vec<u8>)> = members
            .iter()
            .enumerate()
            .map(|(i, m)| (m.clone(), vec![i as u8; 3]))
            .collect();
        let borrowed: Vec<(&str, &[u8])> = assignments.iter().map(|(m, a)| (m.as_str(), a.as_slice())).collect();
        let leader_sync = self.sync(group, &members[0], generation, &borrowed);
        assert_eq!(self.sync_answer(leader_sync).unwrap().error_code, 0);
        for (i, m) in members.iter().enumerate().skip(1) {
            let s = self.sync(group, m, generation, &[]);
            let r = self.sync_answer(s).unwrap();
            assert_eq!(r.assignment.as_ref(), &[i as u8; 3]);
        }
        assert_eq!(self.c.state_of(group), GroupState::Stable);
        (members, generation)
    }
}

#[test]
fn member_id_required_then_initial_delay_then_stable() {
    let mut h = Harness::new(3000);
    let (a, ra) = h.join_new("g");
    assert!(a.starts_with("client-"));
    h.advance(1000);
    let (b, rb) = h.join_new("g");
    // The initial delay is extended because a member arrived during it.
    h.advance(2000);
    assert!(h.join_answer(ra).is_none(), "still inside the initial delay");
    h.advance(3000);
    let ja = h.join_answer(ra).expect("join completes");
    let jb = h.join_answer(rb).expect("join completes");
    assert_eq!(ja.generation_id, 1);
    assert_eq!(ja.leader, a);
    assert_eq!(ja.members.len(), 2, "the leader gets every member's metadata");
    assert_eq!(
        ja.members[1].metadata,
        consumer_metadata(&["t"]),
        "metadata byte for byte"
    );
    assert!(jb.members.is_empty());
    assert_eq!(jb.protocol_name.as_deref(), Some("range"));
    assert_eq!(h.c.state_of("g"), GroupState::CompletingRebalance);
    let sb = h.sync("g", &b, 1, &[]);
    assert!(h.sync_answer(sb).is_none(), "follower waits for the leader");
    let sa = h.sync("g", &a, 1, &[(&a, b"AA"), (&b, b"BB")]);
    assert_eq!(h.sync_answer(sa).unwrap().assignment.as_ref(), b"AA");
    assert_eq!(h.sync_answer(sb).unwrap().assignment.as_ref(), b"BB");
    assert_eq!(h.c.state_of("g"), GroupState::Stable);
    assert_eq!(h.heartbeat("g", &b, 1), ErrorCode::NONE);
    assert!(matches!(
        h.log.last(),
        Some(CoordinatorRecord::GroupMetadata { value: Some(_), .. })
    ));
}

#[test]
fn old_versions_join_without_member_id_round_trip() {
    let mut h = Harness::new(0);
    let r = h.join(join_req("g", "", None), 3);
    let resp = h.join_answer(r).expect("v3 joins at once with delay 0");
    assert_eq!(resp.error_code, 0);
    assert_eq!(resp.generation_id, 1);
    assert_eq!(resp.leader, resp.member_id);
    assert_eq!(resp.protocol_name.as_deref(), Some("range"));
}

#[test]
fn validation_errors() {
    let mut h = Harness::new(100);
    let mut bad = join_req("g", "", None);
    bad.session_timeout_ms = 10;
    let r = h.join(bad, 5);
    assert_eq!(
        h.join_answer(r).unwrap().error_code,
        ErrorCode::INVALID_SESSION_TIMEOUT.code()
    );
    let r = h.join(join_req("", "", None), 5);
    assert_eq!(h.join_answer(r).unwrap().error_code, ErrorCode::INVALID_GROUP_ID.code());
    let r = h.join(join_req("nope", "unknown-member", None), 5);
    assert_eq!(
        h.join_answer(r).unwrap().error_code,
        ErrorCode::UNKNOWN_MEMBER_ID.code()
    );
    let (members, generation) = h.stable_group("g", 1);
    let mut other = join_req("g", "", None);
    other.protocol_type = "connect".into();
    let r = h.join(other, 5);
    let resp = h.join_answer(r).unwrap();
    assert_eq!(resp.error_code, ErrorCode::INCONSISTENT_GROUP_PROTOCOL.code());
    assert_eq!(
        resp.protocol_name.as_deref(),
        Some(""),
        "before v7 the protocol name is not nullable"
    );
    assert_eq!(
        h.heartbeat("g", &members[0], generation + 1),
        ErrorCode::ILLEGAL_GENERATION
    );
    assert_eq!(h.heartbeat("g", "ghost", generation), ErrorCode::UNKNOWN_MEMBER_ID);
    assert_eq!(h.heartbeat("missing", "ghost", 1), ErrorCode::UNKNOWN_MEMBER_ID);
    let s = h.sync("g", &members[0], generation + 5, &[]);
    assert_eq!(
        h.sync_answer(s).unwrap().error_code,
        ErrorCode::ILLEGAL_GENERATION.code()
    );
}

#[test]
fn group_max_size() {
    let mut h = Harness::new(100);
    h.c.config.max_group_size = 1;
    h.stable_group("g", 1);
    let r = h.join(join_req("g", "", None), 5);
    assert_eq!(
        h.join_answer(r).unwrap().error_code,
        ErrorCode::GROUP_MAX_SIZE_REACHED.code()
    );
}

#[test]
fn new_member_triggers_rebalance_seen_on_heartbeat() {
    let mut h = Harness::new(100);
    let (members, generation) = h.stable_group("g", 2);
    let (c, rc) = h.join_new("g");
    assert_eq!(h.c.state_of("g"), GroupState::PreparingRebalance);
    assert_eq!(
        h.heartbeat("g", &members[0], generation),
        ErrorCode::REBALANCE_IN_PROGRESS
    );
    assert!(h.join_answer(rc).is_none(), "waits for the others to rejoin");
    let r0 = h.join(join_req("g", &members[0], None), 5);
    let r1 = h.join(join_req("g", &members[1], None), 5);
    let j0 = h.join_answer(r0).unwrap();
    assert_eq!(j0.generation_id, generation + 1);
    assert_eq!(j0.members.len(), 3);
    assert_eq!(h.join_answer(r1).unwrap().generation_id, generation + 1);
    assert_eq!(h.join_answer(rc).unwrap().member_id, c);
    // A commit between join and the leader's sync is asked to wait.
    assert_eq!(
        h.commit("g", &c, generation + 1, 5, 8),
        ErrorCode::REBALANCE_IN_PROGRESS
    );
}

#[test]
fn session_timeout_removes_member_and_rebalances() {
    let mut h = Harness::new(100);
    let (members, generation) = h.stable_group("g", 3);
    // Members 0 and 1 heartbeat; member 2 is silent.
    for _ in 0..3 {
        h.advance(3000);
        assert_eq!(h.heartbeat("g", &members[0], generation), ErrorCode::NONE);
        assert_eq!(h.heartbeat("g", &members[1], generation), ErrorCode::NONE);
    }
    h.advance(3000);
    assert_eq!(h.c.state_of("g"), GroupState::PreparingRebalance);
    assert_eq!(
        h.heartbeat("g", &members[0], generation),
        ErrorCode::REBALANCE_IN_PROGRESS
    );
    assert_eq!(h.c.group("g").unwrap().members.len(), 2);
    let r0 = h.join(join_req("g", &members[0], None), 5);
    let r1 = h.join(join_req("g", &members[1], None), 5);
    assert_eq!(h.join_answer(r0).unwrap().members.len(), 2);
    assert_eq!(h.join_answer(r1).unwrap().generation_id, generation + 1);
}

#[test]
fn rebalance_timeout_drops_members_that_do_not_rejoin() {
    let mut h = Harness::new(100);
    let (members, generation) = h.stable_group("g", 2);
    let r0 = h.join(join_req("g", &members[0], None), 5);
    // Member 1 keeps heartbeating but never rejoins.
    for _ in 0..11 {
        h.advance(3000);
        h.heartbeat("g", &members[1], generation);
    }
    let j0 = h.join_answer(r0).expect("join phase ends at the rebalance timeout");
    assert_eq!(j0.members.len(), 1);
    assert_eq!(h.heartbeat("g", &members[1], generation), ErrorCode::UNKNOWN_MEMBER_ID);
}

#[test]
fn member_that_never_syncs_is_removed() {
    let mut h = Harness::new(0);
    let (a, ra) = h.join_new("g");
    h.advance(0);
    let generation = h.join_answer(ra).unwrap().generation_id;
    let (_b, rb) = h.join_new("g");
    let ra2 = h.join(join_req("g", &a, None), 5);
    let g2 = h.join_answer(ra2).unwrap().generation_id;
    assert_eq!(h.join_answer(rb).unwrap().generation_id, g2);
    assert!(g2 > generation);
    let sa = h.sync("g", &a, g2, &[]);
    assert_eq!(h.sync_answer(sa).unwrap().error_code, 0);
    // b got its join answer but never syncs; a heartbeats.
    for _ in 0..11 {
        h.advance(3000);
        h.heartbeat("g", &a, g2);
    }
    assert_eq!(h.c.group("g").unwrap().members.len(), 1);
}

#[test]
fn leave_group_batched_and_single() {
    let mut h = Harness::new(100);
    let (members, generation) = h.stable_group("g", 3);
    let req = LeaveGroupRequest {
        group_id: "g".into(),
        members: vec![
            MemberIdentity {
                member_id: members[1].clone(),
                ..Default::default()
            },
            MemberIdentity {
                member_id: "ghost".into(),
                ..Default::default()
            },
        ],
        ..Default::default()
    };
    let (resp, fx) = h.c.leave_group(&req, 3, h.now_ms);
    h.effects(fx);
    assert_eq!(resp.members[0].error_code, 0);
    assert_eq!(resp.members[1].error_code, ErrorCode::UNKNOWN_MEMBER_ID.code());
    assert_eq!(
        h.c.state_of("g"),
        GroupState::PreparingRebalance,
        "leaving starts a rebalance at once"
    );
    assert_eq!(
        h.heartbeat("g", &members[0], generation),
        ErrorCode::REBALANCE_IN_PROGRESS
    );
    for m in [&members[0], &members[2]] {
        let single = LeaveGroupRequest {
            group_id: "g".into(),
            member_id: m.clone(),
            ..Default::default()
        };
        let (resp, fx) = h.c.leave_group(&single, 0, h.now_ms);
        h.effects(fx);
        assert_eq!(resp.error_code, 0);
    }
    assert_eq!(h.c.state_of("g"), GroupState::Empty);
    assert_eq!(h.c.group("g").unwrap().generation, generation + 1);
}

#[test]
fn static_member_rejoins_without_rebalance() {
    let mut h = Harness::new(0);
    let first = h.join(join_req("g", "", Some("inst-a")), 5);
    let second = h.join(join_req("g", "", Some("inst-b")), 5);
    let ja = h.join_answer(first).unwrap();
    let jb = h.join_answer(second);
    // With no initial delay the first member completes the first generation alone.
    assert_eq!(ja.error_code, 0);
    let mut generation = ja.generation_id;
    let mut a = ja.member_id.clone();
    let b = match jb {
        Some(r) => r.member_id,
        None => {
            let ra = h.join(join_req("g", &a, Some("inst-a")), 5);
            let r = h.join_answer(ra).unwrap();
            generation = r.generation_id;
            a = r.member_id;
            let all = h.c.group("g").unwrap().members.clone();
            let b = all.iter().find(|m| m.member_id != a).unwrap().member_id.clone();
            h.join_answer(second).unwrap();
            b
        }
    };
    let sa = h.sync("g", &a, generation, &[(&a, b"A"), (&b, b"B")]);
    assert_eq!(h.sync_answer(sa).unwrap().assignment.as_ref(), b"A");
    let sb = h.sync("g", &b, generation, &[]);
    assert_eq!(h.sync_answer(sb).unwrap().assignment.as_ref(), b"B");
    // b restarts: a new JoinGroup with no member id and the same instance id.
    let rb = h.join(join_req("g", "", Some("inst-b")), 5);
    let jb = h.join_answer(rb).expect("answered at once");
    assert_eq!(jb.error_code, 0);
    assert_eq!(jb.generation_id, generation, "no new generation");
    assert_ne!(jb.member_id, b);
    assert_eq!(h.c.state_of("g"), GroupState::Stable);
    assert_eq!(h.heartbeat("g", &a, generation), ErrorCode::NONE, "others undisturbed");
    let sb = h.sync("g", &jb.member_id, generation, &[]);
    assert_eq!(
        h.sync_answer(sb).unwrap().assignment.as_ref(),
        b"B",
        "old assignment kept"
    );
    // The old incarnation is fenced.
    let req = HeartbeatRequest {
        group_id: "g".into(),
        generation_id: generation,
        member_id: b.clone(),
        group_instance_id: Some("inst-b".into()),
        ..Default::default()
    };
    assert_eq!(
        h.c.heartbeat(&req, h.now_ms).error_code,
        ErrorCode::FENCED_INSTANCE_ID.code()
    );
    // The new member id is persisted.
    let replayed = replay_all(&h.log);
    assert!(replayed.group("g").unwrap().has_member(&jb.member_id));
}

#[test]
fn offset_commit_rules() {
    let mut h = Harness::new(100);
    // Simple commit to an unknown group creates it.
    assert_eq!(h.commit("simple", "", -1, 42, 8), ErrorCode::NONE);
    assert_eq!(h.c.committed("simple", "t", 0).unwrap().offset, 42);
    assert_eq!(h.c.state_of("simple"), GroupState::Empty);
    // Generation-checked commit to an unknown group.
    assert_eq!(h.commit("unknown", "m", 1, 1, 8), ErrorCode::ILLEGAL_GENERATION);
    assert_eq!(h.commit("unknown", "m", 1, 1, 9), ErrorCode::GROUP_ID_NOT_FOUND);
    let (members, generation) = h.stable_group("g", 2);
    assert_eq!(h.commit("g", &members[1], generation, 7, 8), ErrorCode::NONE);
    assert_eq!(
        h.commit("g", &members[1], generation - 1, 8, 8),
        ErrorCode::ILLEGAL_GENERATION
    );
    assert_eq!(h.commit("g", "ghost", generation, 8, 8), ErrorCode::UNKNOWN_MEMBER_ID);
    assert_eq!(
        h.commit("g", "", -1, 8, 8),
        ErrorCode::UNKNOWN_MEMBER_ID,
        "simple commit to a live group"
    );
    let v = h.c.committed("g", "t", 0).unwrap();
    assert_eq!((v.offset, v.leader_epoch, v.metadata.as_str()), (7, 3, "meta-data"));
    // OffsetFetch: named partitions (missing is -1) and all.
    let fetched = h.c.offset_fetch("g", &Some(vec![("t".into(), vec![0, 1])]));
    assert_eq!(fetched[0].1[0].offset, 7);
    assert_eq!(fetched[0].1[0].metadata, "meta-data");
    assert_eq!(fetched[0].1[1].offset, -1);
    assert_eq!(h.c.offset_fetch("g", &None).len(), 1);
    assert!(h.c.offset_fetch("nobody", &None).is_empty());
}

#[test]
fn offset_commit_partition_errors() {
    let mut h = Harness::new(0);
    let req = OffsetCommitRequest {
        group_id: "g".into(),
        generation_id_or_member_epoch: -1,
        topics: vec![OffsetCommitRequestTopic {
            name: "t".into(),
            partitions: vec![
                OffsetCommitRequestPartition {
                    partition_index: 0,
                    committed_metadata: Some("x".repeat(5000)),
                    ..Default::default()
                },
                OffsetCommitRequestPartition {
                    partition_index: 99,
                    ..Default::default()
                },
                OffsetCommitRequestPartition {
                    partition_index: 1,
                    committed_offset: 5,
                    ..Default::default()
                },
            ],
            ..Default::default()
        }],
        ..Default::default()
    };
    let exists = |_: &str, p: i32| p < 6;
    let d = h.c.offset_commit(
        &req,
        CommitContext {
            version: 8,
            partition_exists: &exists,
        },
        h.now_ms,
    );
    let resp = h.decision(d);
    let codes: Vec<i16> = resp.topics[0].partitions.iter().map(|p| p.error_code).collect();
    assert_eq!(
        codes,
        vec![
            ErrorCode::OFFSET_METADATA_TOO_LARGE.code(),
            ErrorCode::UNKNOWN_TOPIC_OR_PARTITION.code(),
            0
        ]
    );
    assert!(h.c.committed("g", "t", 0).is_none());
    assert_eq!(h.c.committed("g", "t", 1).unwrap().offset, 5);
}

#[test]
fn describe_list_delete() {
    let mut h = Harness::new(100);
    let (members, _) = h.stable_group("g", 2);
    h.commit("simple", "", -1, 1, 8);
    let d = h.c.describe_group("g");
    assert_eq!(d.group_state, "Stable");
    assert_eq!(d.protocol_type, "consumer");
    assert_eq!(d.protocol_data, "range");
    assert_eq!(d.members.len(), 2);
    assert_eq!(d.members[1].member_assignment.as_ref(), &[1u8; 3]);
    assert_eq!(d.members[0].member_metadata, consumer_metadata(&["t"]));
    assert_eq!(d.members[0].client_host, "/127.0.0.1");
    assert_eq!(h.c.describe_group("nobody").group_state, "Dead");
    assert_eq!(h.c.list_groups(&[], &[]).len(), 2);
    let stable = h.c.list_groups(&["stable".into()], &[]);
    assert_eq!(stable.len(), 1);
    assert_eq!(stable[0].group_type, "classic");
    assert!(h.c.list_groups(&[], &["consumer".into()]).is_empty());
    assert_eq!(h.c.list_groups(&[], &["Classic".into()]).len(), 2);
    let d = h.c.delete_groups(&["g".into(), "simple".into(), "nobody".into()]);
    let results = h.decision(d);
    let codes: Vec<i16> = results.iter().map(|r| r.error_code).collect();
    assert_eq!(
        codes,
        vec![
            ErrorCode::NON_EMPTY_GROUP.code(),
            0,
            ErrorCode::GROUP_ID_NOT_FOUND.code()
        ]
    );
    assert!(h.c.group("simple").is_none());
    assert!(h.c.committed("simple", "t", 0).is_none());
    assert!(h.c.group("g").unwrap().has_member(&members[0]));
}

fn offset_delete_req(group: &str, topic: &str) -> OffsetDeleteRequest {
    OffsetDeleteRequest {
        group_id: group.into(),
        topics: vec![OffsetDeleteRequestTopic {
            name: topic.into(),
            partitions: vec![OffsetDeleteRequestPartition {
                partition_index: 0,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    }
}

#[test]
fn offset_delete_respects_subscriptions() {
    let mut h = Harness::new(100);
    let (members, generation) = h.stable_group("g", 1);
    assert_eq!(h.commit("g", &members[0], generation, 9, 8), ErrorCode::NONE);
    let d = h.c.offset_delete(&offset_delete_req("g", "t"));
    let resp = h.decision(d);
    assert_eq!(
        resp.topics[0].partitions[0].error_code,
        ErrorCode::GROUP_SUBSCRIBED_TO_TOPIC.code()
    );
    let d = h.c.offset_delete(&offset_delete_req("g", "other"));
    assert_eq!(h.decision(d).topics[0].partitions[0].error_code, 0);
    assert_eq!(
        h.c.offset_delete(&offset_delete_req("nobody", "t")).response.error_code,
        ErrorCode::GROUP_ID_NOT_FOUND.code()
    );
    h.commit("simple", "", -1, 3, 8);
    let d = h.c.offset_delete(&offset_delete_req("simple", "t"));
    assert_eq!(h.decision(d).topics[0].partitions[0].error_code, 0);
    assert!(h.c.committed("simple", "t", 0).is_none());
}

#[test]
fn offsets_of_empty_groups_expire() {
    let mut h = Harness::new(100);
    h.c.config.offsets_retention_ms = 60_000;
    let (members, generation) = h.stable_group("g", 1);
    assert_eq!(h.commit("g", &members[0], generation, 9, 8), ErrorCode::NONE);
    for _ in 0..10 {
        h.advance(3_000);
        assert_eq!(h.heartbeat("g", &members[0], generation), ErrorCode::NONE);
    }
    let none = h.c.expire_offsets(h.now_ms + 120_000);
    assert!(none.is_empty(), "a stable group keeps offsets of subscribed topics");
    let single = LeaveGroupRequest {
        group_id: "g".into(),
        member_id: members[0].clone(),
        ..Default::default()
    };
    let (_, fx) = h.c.leave_group(&single, 0, h.now_ms);
    h.effects(fx);
    assert_eq!(h.c.state_of("g"), GroupState::Empty);
    assert!(
        h.c.expire_offsets(h.now_ms + 59_000).is_empty(),
        "retention counts from emptiness"
    );
    let records = h.c.expire_offsets(h.now_ms + 60_000);
    assert_eq!(records.len(), 2, "offset tombstone and group tombstone");
    h.c.apply(records);
    assert!(h.c.group("g").is_none());
    assert!(h.c.committed("g", "t", 0).is_none());
}

fn replay_all(log: &[CoordinatorRecord]) -> GroupCoordinator {
    let mut c = GroupCoordinator::new(CoordinatorConfig::default());
    for r in log {
        // Through the bytes, as after a restart.
        let (k, v) = r.to_key_value().unwrap();
        let back = CoordinatorRecord::from_key_value(&k, v.as_deref()).unwrap().unwrap();
        c.replay(back);
    }
    c
}

/// What must survive a restart of a settled group.
type MemberSnapshot = (String, Option<String>, Bytes, Bytes);
type GroupSnapshot = (i32, Option<String>, Option<String>, Option<String>, Vec<MemberSnapshot>);

fn snapshot(g: &ClassicGroup) -> GroupSnapshot {
    let protocol = g.protocol.clone().unwrap_or_default();
    (
        g.generation,
        g.protocol_type.clone(),
        g.protocol.clone(),
        g.leader.clone(),
        g.members
            .iter()
            .map(|m| {
                (
                    m.member_id.clone(),
                    m.instance_id.clone(),
                    m.metadata_for(&protocol).cloned().unwrap_or_default(),
                    m.assignment.clone(),
                )
            })
            .collect(),
    )
}

#[derive(Debug, Clone)]
enum Op {
    JoinNew(u8),
    JoinStatic(u8, u8),
    Rejoin(u8),
    Sync(u8),
    SyncLeader,
    Heartbeat(u8),
    Leave(u8),
    Commit(u8, i64),
    SimpleCommit(u8, i64),
    Advance(u16),
    DeleteGroup(u8),
    DeleteOffset(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        any::<u8>().prop_map(Op::JoinNew),
        (any::<u8>(), 0u8..3).prop_map(|(g, i)| Op::JoinStatic(g, i)),
        any::<u8>().prop_map(Op::Rejoin),
        any::<u8>().prop_map(Op::Sync),
        Just(Op::SyncLeader),
        any::<u8>().prop_map(Op::Heartbeat),
        any::<u8>().prop_map(Op::Leave),
        (any::<u8>(), 0i64..1000).prop_map(|(m, o)| Op::Commit(m, o)),
        (any::<u8>(), 0i64..1000).prop_map(|(g, o)| Op::SimpleCommit(g, o)),
        (0u16..12_000).prop_map(Op::Advance),
        any::<u8>().prop_map(Op::DeleteGroup),
        any::<u8>().prop_map(Op::DeleteOffset),
    ]
}

const GROUPS: [&str; 2] = ["g0", "g1"];

fn pick_member(h: &Harness, group: &str, i: u8) -> Option<(String, i32)> {
    let g = h.c.group(group)?;
    let m = g.members.get(i as usize % g.members.len().max(1))?;
    Some((m.member_id.clone(), g.generation))
}

fn run_op(h: &mut Harness, op: &Op) {
    match op {
        Op::JoinNew(g) => {
            h.join_new(GROUPS[*g as usize % 2]);
        }
        Op::JoinStatic(g, i) => {
            let instance = format!("inst-{i}");
            h.join(join_req(GROUPS[*g as usize % 2], "", Some(&instance)), 5);
        }
        Op::Rejoin(i) => {
            if let Some((m, _)) = pick_member(h, "g0", *i) {
                let instance =
                    h.c.group("g0")
                        .and_then(|g| g.member(&m))
                        .and_then(|m| m.instance_id.clone());
                h.join(join_req("g0", &m, instance.as_deref()), 5);
            }
        }
        Op::Sync(i) => {
            if let Some((m, generation)) = pick_member(h, "g0", *i) {
                let ids: Vec<String> =
                    h.c.group("g0")
                        .unwrap()
                        .members
                        .iter()
                        .map(|m| m.member_id.clone())
                        .collect();
                let assignments: Vec<(&str, &[u8])> = ids.iter().map(|id| (id.as_str(), id.as_bytes())).collect();
                h.sync("g0", &m, generation, &assignments);
            }
        }
        Op::SyncLeader => {
            let leader = h.c.group("g0").and_then(|g| Some((g.leader.clone()?, g.generation)));
            if let Some((leader, generation)) = leader {
                let ids: Vec<String> =
                    h.c.group("g0")
                        .unwrap()
                        .members
                        .iter()
                        .map(|m| m.member_id.clone())
                        .collect();
                let assignments: Vec<(&str, &[u8])> = ids.iter().map(|id| (id.as_str(), id.as_bytes())).collect();
                h.sync("g0", &leader, generation, &assignments);
            }
        }
        Op::Heartbeat(i) => {
            if let Some((m, generation)) = pick_member(h, "g0", *i) {
                h.heartbeat("g0", &m, generation);
            }
        }
        Op::Leave(i) => {
            if let Some((m, _)) = pick_member(h, "g1", *i) {
                let req = LeaveGroupRequest {
                    group_id: "g1".into(),
                    member_id: m,
                    ..Default::default()
                };
                let (_, fx) = h.c.leave_group(&req, 0, h.now_ms);
                h.effects(fx);
            }
        }
        Op::Commit(i, offset) => {
            if let Some((m, generation)) = pick_member(h, "g0", *i) {
                h.commit("g0", &m, generation, *offset, 8);
            }
        }
        Op::SimpleCommit(g, offset) => {
            h.commit(["s0", "g1"][*g as usize % 2], "", -1, *offset, 8);
        }
        Op::Advance(ms) => h.advance(i64::from(*ms)),
        Op::DeleteGroup(g) => {
            let d = h.c.delete_groups(&[["s0", "g1"][*g as usize % 2].to_string()]);
            h.decision(d);
        }
        Op::DeleteOffset(g) => {
            let d =
                h.c.offset_delete(&offset_delete_req(["s0", "g0"][*g as usize % 2], "t"));
            h.decision(d);
        }
    }
}

proptest! {
    /// Replaying the emitted records into a fresh coordinator reproduces the offsets exactly
    /// and every settled (Stable, or Empty after a generation) group.
    #[test]
    fn replay_reproduces_state(ops in proptest::collection::vec(op(), 1..80)) {
        let mut h = Harness::new(100);
        for (step, o) in ops.iter().enumerate() {
            run_op(&mut h, o);
            let replayed = replay_all(&h.log);
            prop_assert_eq!(&replayed.offsets, &h.c.offsets, "offsets after step {} ({:?})", step, o);
            for (id, g) in &h.c.groups {
                let settled = g.state == GroupState::Stable || (g.state == GroupState::Empty && g.generation > 0);
                if !settled {
                    continue;
                }
                let r = replayed.group(id);
                prop_assert!(r.is_some(), "group {} missing after replay at step {}", id, step);
                prop_assert_eq!(snapshot(r.unwrap()), snapshot(g), "group {} at step {} ({:?})", id, step, o);
            }
            for id in replayed.group_ids() {
                prop_assert!(h.c.group(id).is_some(), "replay resurrected group {} at step {}", id, step);
            }
        }
    }
}

#[test]
fn loaded_group_keeps_its_generation_and_expires_silent_members() {
    let mut h = Harness::new(100);
    let (members, generation) = h.stable_group("g", 2);
    assert_eq!(h.commit("g", &members[0], generation, 11, 8), ErrorCode::NONE);
    // A restart: a fresh coordinator rebuilt from the log, then loaded at a later time.
    let mut c = replay_all(&h.log);
    let loaded_at_ms = h.now_ms + 60_000;
    c.finish_load(loaded_at_ms);
    assert_eq!(c.state_of("g"), GroupState::Stable);
    assert_eq!(c.committed("g", "t", 0).unwrap().offset, 11);
    let hb = |m: &str, now_ms: i64, c: &mut GroupCoordinator| {
        let req = HeartbeatRequest {
            group_id: "g".into(),
            generation_id: generation,
            member_id: m.into(),
            ..Default::default()
        };
        ErrorCode(c.heartbeat(&req, now_ms).error_code)
    };
    assert_eq!(hb(&members[0], loaded_at_ms + 5_000, &mut c), ErrorCode::NONE);
    // Member 1 never comes back: it expires a session timeout after the load.
    c.tick(loaded_at_ms + i64::from(SESSION_MS) + 1);
    assert_eq!(c.state_of("g"), GroupState::PreparingRebalance);
    assert_eq!(c.group("g").unwrap().members.len(), 1);
    assert_eq!(
        hb(&members[0], loaded_at_ms + 10_500, &mut c),
        ErrorCode::REBALANCE_IN_PROGRESS
    );
}
