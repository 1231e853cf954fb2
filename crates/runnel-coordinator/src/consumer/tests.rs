//! Consumer-group (KIP-848) tests with injected time and simulated clients.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use runnel_protocol::codec::Uuid;
use runnel_protocol::generated::consumer_group_heartbeat_request::{ConsumerGroupHeartbeatRequest, TopicPartitions};
use runnel_protocol::generated::consumer_group_heartbeat_response::ConsumerGroupHeartbeatResponse;
use runnel_protocol::generated::offset_commit_request::{
    OffsetCommitRequest, OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use runnel_protocol::ErrorCode;

use super::*;
use crate::offsets::CommitContext;

const G: &str = "g";
const T: Uuid = Uuid([7; 16]);
const SESSION_MS: i64 = 45_000;

fn topics() -> TopicsSnapshot {
    let mut t = TopicsSnapshot::new();
    t.insert("t", T, 6);
    t
}

/// A client that does what it is told at once: it owns exactly its last received assignment.
#[derive(Debug, Clone)]
struct Client {
    member_id: String,
    instance_id: Option<String>,
    epoch: i32,
    owned: BTreeSet<i32>,
}

impl Client {
    fn new(id: &str) -> Self {
        Client {
            member_id: id.to_string(),
            instance_id: None,
            epoch: 0,
            owned: BTreeSet::new(),
        }
    }
}

struct Harness {
    c: GroupCoordinator,
    records: Vec<CoordinatorRecord>,
    topics: TopicsSnapshot,
    now_ms: i64,
}

impl Harness {
    fn new() -> Self {
        Harness {
            c: GroupCoordinator::new(Default::default()),
            records: Vec::new(),
            topics: topics(),
            now_ms: 1_000,
        }
    }

    fn send(&mut self, req: &ConsumerGroupHeartbeatRequest) -> ConsumerGroupHeartbeatResponse {
        let ctx = HeartbeatContext {
            client: ClientInfo::default(),
            topics: &self.topics,
            new_member_id: "generated".into(),
            now_ms: self.now_ms,
        };
        let (records, resp) = self.c.consumer_group_heartbeat(req, &ctx);
        self.records.extend(records);
        resp
    }

    /// One heartbeat of `client`; `ack` says whether it reports what it owns.
    fn heartbeat(&mut self, client: &mut Client, ack: bool) -> ConsumerGroupHeartbeatResponse {
        let joining = client.epoch == 0;
        let req = ConsumerGroupHeartbeatRequest {
            group_id: G.into(),
            member_id: client.member_id.clone(),
            member_epoch: client.epoch,
            instance_id: client.instance_id.clone(),
            rebalance_timeout_ms: if joining { 30_000 } else { -1 },
            subscribed_topic_names: joining.then(|| vec!["t".to_string()]),
            topic_partitions: if joining {
                Some(Vec::new())
            } else if ack {
                Some(vec![TopicPartitions {
                    topic_id: T,
                    partitions: client.owned.iter().copied().collect(),
                    ..Default::default()
                }])
            } else {
                None
            },
            ..Default::default()
        };
        let resp = self.send(&req);
        if resp.error_code == 0 {
            client.epoch = resp.member_epoch;
            if let Some(a) = &resp.assignment {
                client.owned = a
                    .topic_partitions
                    .iter()
                    .filter(|tp| tp.topic_id == T)
                    .flat_map(|tp| tp.partitions.iter().copied())
                    .collect();
            }
        }
        resp
    }

    fn leave(&mut self, client: &Client, epoch: i32) -> ConsumerGroupHeartbeatResponse {
        self.send(&ConsumerGroupHeartbeatRequest {
            group_id: G.into(),
            member_id: client.member_id.clone(),
            member_epoch: epoch,
            instance_id: client.instance_id.clone(),
            ..Default::default()
        })
    }

    fn group(&self) -> &ConsumerGroup {
        self.c.consumer_group(G).expect("group exists")
    }

    fn assigned(&self, member: &str) -> BTreeSet<i32> {
        self.group().members[member]
            .assigned
            .get(&T)
            .cloned()
            .unwrap_or_default()
    }
}

/// No partition is held (assigned or pending revocation) by two members.
fn check_exclusive(g: &ConsumerGroup) -> Result<(), String> {
    let mut seen: BTreeMap<(Uuid, i32), &str> = BTreeMap::new();
    for m in g.members.values() {
        for a in [&m.assigned, &m.pending_revocation] {
            for (t, ps) in a {
                for p in ps {
                    if let Some(other) = seen.insert((*t, *p), &m.member_id) {
                        if other != m.member_id {
                            return Err(format!("partition {p} held by {other} and {}", m.member_id));
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

fn converge(h: &mut Harness, clients: &mut [Client]) {
    for _ in 0..10 {
        for c in clients.iter_mut() {
            let r = h.heartbeat(c, true);
            assert_eq!(r.error_code, 0, "{r:?}");
            check_exclusive(h.group()).expect("exclusive");
        }
    }
}

#[test]
fn one_then_three_members_converge_to_two_partitions_each() {
    let mut h = Harness::new();
    let mut clients = vec![Client::new("a")];
    let r = h.heartbeat(&mut clients[0], true);
    assert_eq!(r.error_code, 0);
    assert_eq!(r.member_epoch, 1);
    assert_eq!(r.heartbeat_interval_ms, 5_000);
    assert_eq!(clients[0].owned.len(), 6);
    clients.push(Client::new("b"));
    clients.push(Client::new("c"));
    converge(&mut h, &mut clients);
    let g = h.group();
    assert_eq!(g.state_name(), "Stable");
    assert_eq!(g.group_epoch, 3);
    let mut all = BTreeSet::new();
    for c in &clients {
        assert_eq!(c.owned.len(), 2, "{c:?}");
        assert_eq!(c.epoch, 3);
        assert_eq!(h.assigned(&c.member_id), c.owned);
        all.extend(c.owned.iter().copied());
    }
    assert_eq!(all, (0..6).collect());
}

#[test]
fn partitions_move_only_after_revocation_is_acknowledged() {
    let mut h = Harness::new();
    let mut a = Client::new("a");
    h.heartbeat(&mut a, true);
    assert_eq!(a.owned.len(), 6);
    let mut b = Client::new("b");
    let r = h.heartbeat(&mut b, true);
    // Everything b should get is still held by a.
    assert_eq!(r.member_epoch, 2);
    assert!(b.owned.is_empty());
    assert_eq!(h.group().members["b"].state, MemberState::UnreleasedPartitions);
    // a does not acknowledge yet (no owned partitions reported): it is told to revoke.
    let r = h.heartbeat(&mut a, false);
    assert_eq!(r.member_epoch, 1, "epoch waits for the revocation");
    assert_eq!(a.owned.len(), 3);
    assert_eq!(h.group().members["a"].pending_revocation[&T].len(), 3);
    h.heartbeat(&mut b, true);
    assert!(b.owned.is_empty(), "b must not get partitions a still holds");
    // a acknowledges by reporting only what it kept.
    let r = h.heartbeat(&mut a, true);
    assert_eq!(r.member_epoch, 2);
    assert!(h.group().members["a"].pending_revocation.is_empty());
    h.heartbeat(&mut b, true);
    assert_eq!(b.owned.len(), 3);
    assert!(a.owned.is_disjoint(&b.owned));
    assert_eq!(h.group().state_name(), "Stable");
}

#[test]
fn fencing_and_unknown_members() {
    let mut h = Harness::new();
    let mut a = Client::new("a");
    h.heartbeat(&mut a, true);
    let mut bad = a.clone();
    bad.epoch += 5;
    assert_eq!(
        h.heartbeat(&mut bad, true).error_code,
        ErrorCode::FENCED_MEMBER_EPOCH.code()
    );
    let mut ghost = Client::new("ghost");
    ghost.epoch = 1;
    assert_eq!(
        h.heartbeat(&mut ghost, true).error_code,
        ErrorCode::UNKNOWN_MEMBER_ID.code()
    );
    // A heartbeat to a group that does not exist with a non-zero epoch.
    let r = h.send(&ConsumerGroupHeartbeatRequest {
        group_id: "other".into(),
        member_id: "x".into(),
        member_epoch: 3,
        ..Default::default()
    });
    assert_eq!(r.error_code, ErrorCode::GROUP_ID_NOT_FOUND.code());
}

#[test]
fn previous_epoch_is_accepted_when_the_response_was_lost() {
    let mut h = Harness::new();
    let mut a = Client::new("a");
    h.heartbeat(&mut a, true);
    let mut b = Client::new("b");
    h.heartbeat(&mut b, true);
    h.heartbeat(&mut a, false); // told to revoke
    let mut a_lost = a.clone();
    h.heartbeat(&mut a, true); // acked: epoch 2
    assert_eq!(a.epoch, 2);
    // The same client retries with epoch 1 owning only what it kept: accepted.
    a_lost.owned = a.owned.clone();
    assert_eq!(h.heartbeat(&mut a_lost, true).error_code, 0);
    assert_eq!(a_lost.epoch, 2);
}

#[test]
fn session_expiry_fences_and_rebalances() {
    let mut h = Harness::new();
    let mut clients = vec![Client::new("a"), Client::new("b")];
    converge(&mut h, &mut clients);
    let epoch = h.group().group_epoch;
    // b keeps heartbeating, a goes silent.
    h.now_ms += SESSION_MS - 1;
    h.heartbeat(&mut clients[1], true);
    assert!(h.c.tick(h.now_ms).records.is_empty());
    h.now_ms += 2;
    let fx = h.c.tick(h.now_ms);
    assert!(fx.records.iter().any(|r| matches!(
        r,
        CoordinatorRecord::Consumer(ConsumerRecord::MemberMetadata { member, value: None, .. }) if member == "a"
    )));
    assert!(!h.group().members.contains_key("a"));
    assert_eq!(h.group().group_epoch, epoch + 1);
    let mut b = clients[1].clone();
    converge(&mut h, std::slice::from_mut(&mut b));
    assert_eq!(b.owned.len(), 6);
    // a's heartbeat is now answered UNKNOWN_MEMBER_ID; it rejoins with epoch 0.
    assert_eq!(
        h.heartbeat(&mut clients[0], true).error_code,
        ErrorCode::UNKNOWN_MEMBER_ID.code()
    );
}

#[test]
fn leave_moves_partitions_to_the_others() {
    let mut h = Harness::new();
    let mut clients = vec![Client::new("a"), Client::new("b"), Client::new("c")];
    converge(&mut h, &mut clients);
    let r = h.leave(&clients[0], -1);
    assert_eq!(r.error_code, 0);
    assert_eq!(r.member_epoch, -1);
    assert!(!h.group().members.contains_key("a"));
    let mut rest = clients[1..].to_vec();
    converge(&mut h, &mut rest);
    assert_eq!(rest[0].owned.len() + rest[1].owned.len(), 6);
    assert_eq!(rest[0].owned.len(), 3);
    // Leaving twice: the member is gone.
    assert_eq!(h.leave(&clients[0], -1).error_code, ErrorCode::UNKNOWN_MEMBER_ID.code());
}

#[test]
fn static_member_rejoins_with_its_partitions() {
    let mut h = Harness::new();
    let mut a = Client::new("a");
    a.instance_id = Some("inst-a".into());
    let mut b = Client::new("b");
    let mut clients = vec![a, b.clone()];
    converge(&mut h, &mut clients);
    let a_owned = clients[0].owned.clone();
    let epoch = h.group().group_epoch;
    // Another live member may not take the instance id.
    let mut thief = Client::new("thief");
    thief.instance_id = Some("inst-a".into());
    assert_eq!(
        h.heartbeat(&mut thief, true).error_code,
        ErrorCode::UNRELEASED_INSTANCE_ID.code()
    );
    assert_eq!(h.leave(&clients[0], -2).member_epoch, -2);
    // The successor gets the same partitions at once, without a new group epoch.
    let mut a2 = Client::new("a2");
    a2.instance_id = Some("inst-a".into());
    h.heartbeat(&mut a2, true);
    assert_eq!(a2.owned, a_owned);
    assert_eq!(h.group().group_epoch, epoch);
    assert!(!h.group().members.contains_key("a"));
    b = clients[1].clone();
    let before = b.owned.clone();
    h.heartbeat(&mut b, true);
    assert_eq!(b.owned, before);
}

#[test]
fn request_validation() {
    let mut h = Harness::new();
    let base = ConsumerGroupHeartbeatRequest {
        group_id: G.into(),
        member_id: "m".into(),
        member_epoch: 0,
        rebalance_timeout_ms: 1000,
        subscribed_topic_names: Some(vec!["t".into()]),
        topic_partitions: Some(Vec::new()),
        ..Default::default()
    };
    let code = |h: &mut Harness, r: ConsumerGroupHeartbeatRequest| h.send(&r).error_code;
    let invalid = ErrorCode::INVALID_REQUEST.code();
    assert_eq!(
        code(
            &mut h,
            ConsumerGroupHeartbeatRequest {
                subscribed_topic_names: None,
                ..base.clone()
            }
        ),
        invalid
    );
    assert_eq!(
        code(
            &mut h,
            ConsumerGroupHeartbeatRequest {
                rebalance_timeout_ms: -1,
                ..base.clone()
            }
        ),
        invalid
    );
    let owned = Some(vec![TopicPartitions {
        topic_id: T,
        partitions: vec![0],
        ..Default::default()
    }]);
    assert_eq!(
        code(
            &mut h,
            ConsumerGroupHeartbeatRequest {
                topic_partitions: owned,
                ..base.clone()
            }
        ),
        invalid
    );
    assert_eq!(
        code(
            &mut h,
            ConsumerGroupHeartbeatRequest {
                group_id: String::new(),
                ..base.clone()
            }
        ),
        invalid
    );
    assert_eq!(
        code(
            &mut h,
            ConsumerGroupHeartbeatRequest {
                subscribed_topic_regex: Some("t.*".into()),
                ..base.clone()
            }
        ),
        invalid
    );
    assert_eq!(
        code(
            &mut h,
            ConsumerGroupHeartbeatRequest {
                member_epoch: 3,
                member_id: String::new(),
                ..base.clone()
            }
        ),
        invalid
    );
    assert_eq!(
        code(
            &mut h,
            ConsumerGroupHeartbeatRequest {
                member_epoch: -3,
                ..base.clone()
            }
        ),
        invalid
    );
    assert_eq!(
        code(
            &mut h,
            ConsumerGroupHeartbeatRequest {
                server_assignor: Some("sticky".into()),
                ..base.clone()
            }
        ),
        ErrorCode::UNSUPPORTED_ASSIGNOR.code()
    );
    assert!(h.c.consumer_group(G).is_none(), "rejected requests change nothing");
    // A v0 client without a member id gets one.
    let r = h.send(&ConsumerGroupHeartbeatRequest {
        member_id: String::new(),
        ..base.clone()
    });
    assert_eq!(r.member_id.as_deref(), Some("generated"));
    // group.consumer.max.size
    let mut h = Harness::new();
    h.c.set_consumer_config(ConsumerConfig {
        max_size: 1,
        ..Default::default()
    });
    assert_eq!(h.send(&base).error_code, 0);
    let second = ConsumerGroupHeartbeatRequest {
        member_id: "m2".into(),
        ..base
    };
    assert_eq!(h.send(&second).error_code, ErrorCode::GROUP_MAX_SIZE_REACHED.code());
}

#[test]
fn range_assignor_on_request() {
    let mut h = Harness::new();
    for id in ["a", "b"] {
        let r = h.send(&ConsumerGroupHeartbeatRequest {
            group_id: G.into(),
            member_id: id.into(),
            member_epoch: 0,
            rebalance_timeout_ms: 1000,
            subscribed_topic_names: Some(vec!["t".into()]),
            server_assignor: Some("range".into()),
            topic_partitions: Some(Vec::new()),
            ..Default::default()
        });
        assert_eq!(r.error_code, 0);
    }
    assert_eq!(h.group().assignor_name(&ConsumerConfig::default()), "range");
    assert_eq!(h.group().target["a"][&T], BTreeSet::from([0, 1, 2]));
    assert_eq!(h.group().target["b"][&T], BTreeSet::from([3, 4, 5]));
}

#[test]
fn offset_commit_uses_member_epoch() {
    let mut h = Harness::new();
    let mut clients = vec![Client::new("a"), Client::new("b")];
    converge(&mut h, &mut clients);
    let exists = |_: &str, _: i32| true;
    let commit = |h: &Harness, member: &str, epoch: i32, version: i16| {
        let req = OffsetCommitRequest {
            group_id: G.into(),
            generation_id_or_member_epoch: epoch,
            member_id: member.into(),
            topics: vec![OffsetCommitRequestTopic {
                name: "t".into(),
                partitions: vec![OffsetCommitRequestPartition {
                    partition_index: 0,
                    committed_offset: 5,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        let ctx = CommitContext {
            version,
            partition_exists: &exists,
        };
        h.c.offset_commit(&req, ctx, 0).response.topics[0].partitions[0].error_code
    };
    let epoch = clients[0].epoch;
    assert_eq!(commit(&h, "a", epoch, 9), 0);
    assert_eq!(commit(&h, "a", epoch - 1, 9), ErrorCode::STALE_MEMBER_EPOCH.code());
    assert_eq!(commit(&h, "a", epoch + 1, 9), ErrorCode::FENCED_MEMBER_EPOCH.code());
    assert_eq!(commit(&h, "zz", epoch, 9), ErrorCode::UNKNOWN_MEMBER_ID.code());
    assert_eq!(commit(&h, "a", epoch, 8), ErrorCode::UNSUPPORTED_VERSION.code());
    // Applied commits do not create a classic group of the same id.
    let d = {
        let req = OffsetCommitRequest {
            group_id: G.into(),
            generation_id_or_member_epoch: epoch,
            member_id: "a".into(),
            topics: vec![OffsetCommitRequestTopic {
                name: "t".into(),
                partitions: vec![OffsetCommitRequestPartition {
                    committed_offset: 5,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        h.c.offset_commit(
            &req,
            CommitContext {
                version: 9,
                partition_exists: &exists,
            },
            0,
        )
    };
    h.c.apply(d.records);
    assert!(h.c.group(G).is_none());
    assert_eq!(h.c.committed(G, "t", 0).map(|v| v.offset), Some(5));
    // ListGroups shows the consumer group with its type.
    let listed = h.c.list_groups(&[], &[]);
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].group_type, "consumer");
    assert_eq!(listed[0].group_state, "Stable");
    assert!(h.c.list_groups(&[], &["classic".into()]).is_empty());
}

#[test]
fn describe_shows_members_and_assignments() {
    let mut h = Harness::new();
    let mut clients = vec![Client::new("a"), Client::new("b")];
    converge(&mut h, &mut clients);
    let d = h.c.consumer_group_describe(G, &h.topics, false);
    assert_eq!(d.error_code, 0);
    assert_eq!(d.group_state, "Stable");
    assert_eq!(d.assignor_name, "uniform");
    assert_eq!(d.members.len(), 2);
    for m in &d.members {
        assert_eq!(m.assignment.topic_partitions[0].topic_name, "t");
        assert_eq!(m.assignment.topic_partitions[0].partitions.len(), 3);
        assert_eq!(m.assignment, m.target_assignment);
    }
    let missing = h.c.consumer_group_describe("nope", &h.topics, false);
    assert_eq!(missing.error_code, ErrorCode::GROUP_ID_NOT_FOUND.code());
}

/// Encodes every record to Kafka's bytes and back, replaying into a fresh coordinator.
fn replayed(records: &[CoordinatorRecord]) -> GroupCoordinator {
    let mut c = GroupCoordinator::new(Default::default());
    for r in records {
        let (k, v) = r.to_key_value().expect("encode");
        let back = CoordinatorRecord::from_key_value(&k, v.as_deref())
            .expect("decode")
            .expect("ours");
        assert_eq!(&back, r);
        c.replay(back);
    }
    c
}

fn without_deadlines(g: Option<&ConsumerGroup>) -> Option<ConsumerGroup> {
    g.cloned().map(|mut g| {
        for m in g.members.values_mut() {
            m.deadline_ms = 0;
            m.revocation_deadline_ms = 0;
        }
        g
    })
}

#[test]
fn replay_reproduces_state() {
    let mut h = Harness::new();
    let mut clients = vec![Client::new("a"), Client::new("b"), Client::new("c")];
    converge(&mut h, &mut clients);
    h.leave(&clients[2], -1);
    let mut rest = clients[..2].to_vec();
    h.heartbeat(&mut rest[0], false); // mid-reconciliation state is persisted too
    let c = replayed(&h.records);
    assert_eq!(
        without_deadlines(c.consumer_group(G)),
        without_deadlines(h.c.consumer_group(G))
    );
    // Loaded members keep working with their epochs.
    let mut h2 = Harness {
        c,
        records: Vec::new(),
        topics: topics(),
        now_ms: h.now_ms,
    };
    converge(&mut h2, &mut rest);
    assert_eq!(rest[0].owned.len() + rest[1].owned.len(), 6);
}

#[derive(Debug, Clone)]
enum Op {
    Join(usize),
    Heartbeat(usize, bool),
    Leave(usize),
    Advance(i64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..4usize).prop_map(Op::Join),
        (0..4usize, any::<bool>()).prop_map(|(i, ack)| Op::Heartbeat(i, ack)),
        (0..4usize, any::<bool>()).prop_map(|(i, ack)| Op::Heartbeat(i, ack)),
        (0..4usize).prop_map(Op::Leave),
        (0i64..30_000).prop_map(Op::Advance),
    ]
}

proptest! {
    #[test]
    fn no_partition_in_two_current_assignments(ops in proptest::collection::vec(op(), 1..80)) {
        let mut h = Harness::new();
        let mut clients: Vec<Client> = (0..4).map(|i| Client::new(&format!("m{i}"))).collect();
        for op in ops {
            match op {
                Op::Join(i) => {
                    clients[i] = Client::new(&clients[i].member_id.clone());
                    h.heartbeat(&mut clients[i], true);
                }
                Op::Heartbeat(i, ack) => {
                    if clients[i].epoch > 0 {
                        let r = h.heartbeat(&mut clients[i], ack);
                        if r.error_code != 0 {
                            clients[i] = Client::new(&clients[i].member_id.clone());
                        }
                    }
                }
                Op::Leave(i) => {
                    if clients[i].epoch > 0 {
                        h.leave(&clients[i], -1);
                        clients[i] = Client::new(&clients[i].member_id.clone());
                    }
                }
                Op::Advance(ms) => {
                    h.now_ms += ms;
                    let fx = h.c.tick(h.now_ms);
                    h.records.extend(fx.records);
                }
            }
            if let Some(g) = h.c.consumer_group(G) {
                prop_assert!(check_exclusive(g).is_ok(), "{:?}", check_exclusive(g));
            }
        }
        // Replay agrees with the live state.
        let c = replayed(&h.records);
        prop_assert_eq!(without_deadlines(c.consumer_group(G)), without_deadlines(h.c.consumer_group(G)));
    }
}

#[test]
fn delete_consumer_group_only_when_empty() {
    let mut h = Harness::new();
    let mut a = Client::new("a");
    h.heartbeat(&mut a, true);
    let d = h.c.delete_groups(&[G.to_string()]);
    assert_eq!(d.response[0].error_code, ErrorCode::NON_EMPTY_GROUP.code());
    assert!(d.records.is_empty());
    h.leave(&a, -1);
    let d = h.c.delete_groups(&[G.to_string()]);
    assert_eq!(d.response[0].error_code, 0);
    h.records.extend(d.records.clone());
    h.c.apply(d.records);
    assert!(h.c.consumer_group(G).is_none());
    // Replaying the whole history ends without the group too.
    assert!(replayed(&h.records).consumer_group(G).is_none());
}

#[test]
fn member_that_never_revokes_is_fenced_after_its_rebalance_timeout() {
    let mut h = Harness::new();
    let mut a = Client::new("a");
    h.heartbeat(&mut a, true);
    let mut b = Client::new("b");
    h.heartbeat(&mut b, true);
    h.heartbeat(&mut a, false); // asked to revoke; rebalance timeout is 30 s
    assert_eq!(h.group().members["a"].state, MemberState::UnrevokedPartitions);
    for _ in 0..3 {
        h.now_ms += 10_000;
        h.heartbeat(&mut b, true);
        h.heartbeat(&mut a, false); // alive, but never acknowledges
        h.records.extend(h.c.tick(h.now_ms).records);
    }
    assert!(!h.group().members.contains_key("a"));
    converge(&mut h, std::slice::from_mut(&mut b));
    assert_eq!(b.owned.len(), 6);
}

#[test]
fn classic_join_is_refused_while_the_consumer_group_has_members() {
    use runnel_protocol::generated::join_group_request::{JoinGroupRequest, JoinGroupRequestProtocol};
    let join = |h: &mut Harness| {
        let req = JoinGroupRequest {
            group_id: G.into(),
            session_timeout_ms: 10_000,
            rebalance_timeout_ms: 10_000,
            protocol_type: "consumer".into(),
            protocols: vec![JoinGroupRequestProtocol {
                name: "range".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let ctx = crate::JoinContext {
            request: 1,
            version: 9,
            client: ClientInfo::default(),
            member_id_suffix: "x".into(),
        };
        h.c.join_group(req, ctx, h.now_ms)
    };
    let mut h = Harness::new();
    let mut a = Client::new("a");
    h.heartbeat(&mut a, true);
    let fx = join(&mut h);
    match &fx.completions[..] {
        [crate::Completion::Join { response, .. }] => {
            assert_eq!(response.error_code, ErrorCode::INCONSISTENT_GROUP_PROTOCOL.code())
        }
        other => panic!("{other:?}"),
    }
    assert!(h.c.group(G).is_none());
    // Once empty, a classic member replaces the consumer group.
    h.leave(&a, -1);
    let fx = join(&mut h);
    assert!(fx.records.iter().any(|r| matches!(
        r,
        CoordinatorRecord::Consumer(ConsumerRecord::GroupEpoch { value: None, .. })
    )));
    assert!(h.c.consumer_group(G).is_none());
    assert!(h.c.group(G).is_some());
}
