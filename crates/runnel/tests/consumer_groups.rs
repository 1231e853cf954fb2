//! Consumer groups with librdkafka (the `rdkafka` crate) against the real broker binary:
//! three consumers share a six-partition topic, one is killed (`kill -9`, no LeaveGroup) and
//! its partitions move after the session timeout, one leaves cleanly and the rebalance is
//! immediate; committed offsets are never redelivered and nothing is skipped. Offsets and group
//! state survive a broker `kill -9`; a static member that restarts gets its partitions back
//! without the others rebalancing; describe/list/delete groups and OffsetDelete answer as Kafka.
//!
//! Consumers that must be killed run in child processes: this test binary re-executes itself
//! with `RUNNEL_CG_CHILD` set, and the `child_consumer` entry point then runs a consumer that
//! prints what it is assigned, receives and commits, one line each, and closes on "close" from
//! its stdin.

mod common;
#[path = "common/kafka.rs"]
mod kafka;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{wait_for, Broker};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use runnel_protocol::generated::{
    describe_groups_request, describe_groups_response, find_coordinator_request, find_coordinator_response,
    list_groups_request, list_groups_response, offset_delete_request, offset_delete_response, offset_fetch_request,
    offset_fetch_response,
};

const CHILD_ENV: &str = "RUNNEL_CG_CHILD";
const TIMEOUT: Duration = Duration::from_secs(60);
const SESSION_TIMEOUT_MS: &str = "6000";

// The data-path APIs are declared in `common/kafka.rs`; the ones only this file sends, here.
kafka::api! {
    FindCoordinator: find_coordinator_request::FindCoordinatorRequest => find_coordinator_response::FindCoordinatorResponse;
    ListGroups: list_groups_request::ListGroupsRequest => list_groups_response::ListGroupsResponse;
    DescribeGroups: describe_groups_request::DescribeGroupsRequest => describe_groups_response::DescribeGroupsResponse;
    OffsetDelete: offset_delete_request::OffsetDeleteRequest => offset_delete_response::OffsetDeleteResponse;
    OffsetFetch: offset_fetch_request::OffsetFetchRequest => offset_fetch_response::OffsetFetchResponse;
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn admin(bootstrap: &str) -> AdminClient<DefaultClientContext> {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("admin client")
}

fn create_topic(bootstrap: &str, name: &str, partitions: i32) {
    let admin = admin(bootstrap);
    let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    let results = runtime()
        .block_on(admin.create_topics(&[topic], &AdminOptions::new()))
        .expect("create_topics");
    for r in results {
        r.unwrap_or_else(|(t, e)| panic!("creating {t} failed: {e:?}"));
    }
}

/// Produces values `from..to` (as decimal strings), spread over the partitions by key.
fn produce(bootstrap: &str, topic: &str, from: usize, to: usize) {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", "5")
        .create()
        .expect("producer");
    for i in from..to {
        let value = i.to_string();
        let key = format!("k{i}");
        loop {
            match producer.send(BaseRecord::to(topic).key(&key).payload(&value)) {
                Ok(()) => break,
                Err((e, _)) => {
                    eprintln!("produce queue: {e}");
                    producer.poll(Duration::from_millis(50));
                }
            }
        }
        producer.poll(Duration::ZERO);
    }
    producer.flush(Duration::from_secs(30)).expect("flush");
}

// ---------------------------------------------------------------------------------------------
// The child consumer.

/// Prints rebalances, so the parent sees who owns what.
struct Reporting;

impl ClientContext for Reporting {}

impl ConsumerContext for Reporting {
    fn post_rebalance(&self, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(tpl) => println!("ASSIGNED {}", partitions_of(tpl)),
            Rebalance::Revoke(tpl) => println!("REVOKED {}", partitions_of(tpl)),
            Rebalance::Error(e) => println!("REBALANCE_ERROR {e}"),
        }
    }
}

fn partitions_of(tpl: &TopicPartitionList) -> String {
    // rdkafka 0.36's `elements()` builds a slice from a null pointer for an empty list.
    if tpl.count() == 0 {
        return String::new();
    }
    let parts: Vec<String> = tpl.elements().iter().map(|e| e.partition().to_string()).collect();
    parts.join(",")
}

struct ChildSpec {
    bootstrap: String,
    group: String,
    topic: String,
    instance_id: String,
    session_timeout_ms: String,
    /// `partition.assignment.strategy`
    strategy: String,
}

impl ChildSpec {
    fn encode(&self) -> String {
        [
            &self.bootstrap,
            &self.group,
            &self.topic,
            &self.instance_id,
            &self.session_timeout_ms,
            &self.strategy,
        ]
        .map(String::as_str)
        .join("|")
    }

    fn decode(s: &str) -> ChildSpec {
        let f: Vec<&str> = s.split('|').collect();
        assert_eq!(f.len(), 6, "bad {CHILD_ENV}: {s}");
        ChildSpec {
            bootstrap: f[0].into(),
            group: f[1].into(),
            topic: f[2].into(),
            instance_id: f[3].into(),
            session_timeout_ms: f[4].into(),
            strategy: f[5].into(),
        }
    }
}

/// Entry point of the child processes; does nothing in a normal test run (no `RUNNEL_CG_CHILD`).
#[test]
fn child_consumer() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let spec = ChildSpec::decode(&spec);
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &spec.bootstrap)
        .set("group.id", &spec.group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", &spec.session_timeout_ms)
        .set("heartbeat.interval.ms", "500")
        .set("partition.assignment.strategy", &spec.strategy);
    if !spec.instance_id.is_empty() {
        config.set("group.instance.id", &spec.instance_id);
    }
    if let Ok(debug) = std::env::var("RUNNEL_CG_DEBUG") {
        // librdkafka's own trace (e.g. "cgrp"), on the child's stderr.
        config.set("debug", &debug);
    }
    let consumer: BaseConsumer<Reporting> = config.create_with_context(Reporting).expect("consumer");
    consumer.subscribe(&[&spec.topic]).expect("subscribe");
    let closing = Arc::new(AtomicBool::new(false));
    let flag = closing.clone();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines().map_while(Result::ok) {
            if line.trim() == "close" {
                flag.store(true, Ordering::SeqCst);
            }
        }
    });
    println!("STARTED");
    while !closing.load(Ordering::SeqCst) {
        let Some(result) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        let msg = match result {
            Ok(m) => m,
            Err(e) => {
                println!("CONSUME_ERROR {e}");
                continue;
            }
        };
        let value = msg
            .payload()
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .unwrap_or_default();
        println!("MSG {} {} {}", msg.partition(), msg.offset(), value);
        // Commit after processing, synchronously, and say so only once the broker agreed.
        match consumer.commit_message(&msg, CommitMode::Sync) {
            Ok(()) => println!("COMMITTED {} {}", msg.partition(), msg.offset() + 1),
            Err(e) => println!("COMMIT_FAILED {} {} {e}", msg.partition(), msg.offset()),
        }
    }
    drop(consumer);
    println!("CLOSED");
}

// ---------------------------------------------------------------------------------------------
// The parent's view of its children.

/// Every line from every child, in arrival order: `(child name, line)`.
type Transcript = Arc<Mutex<Vec<(String, String)>>>;

struct ChildConsumer {
    name: String,
    process: Child,
    stdin: Option<ChildStdin>,
}

impl ChildConsumer {
    fn spawn(name: &str, spec: &ChildSpec, transcript: &Transcript) -> ChildConsumer {
        let exe = std::env::current_exe().expect("test binary path");
        let mut process = Command::new(exe)
            .args(["child_consumer", "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, spec.encode())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(if std::env::var_os("RUNNEL_CG_DEBUG").is_some() {
                Stdio::inherit()
            } else {
                Stdio::null()
            })
            .spawn()
            .expect("spawn child consumer");
        let stdout = process.stdout.take().expect("child stdout");
        let stdin = process.stdin.take();
        let (who, log) = (name.to_string(), transcript.clone());
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                log.lock().expect("transcript").push((who.clone(), line));
            }
        });
        ChildConsumer {
            name: name.to_string(),
            process,
            stdin,
        }
    }

    fn kill9(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }

    fn close(&mut self) {
        if let Some(stdin) = self.stdin.as_mut() {
            let _ = writeln!(stdin, "close");
            let _ = stdin.flush();
        }
    }

    fn wait_exit(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.process.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("{} did not exit after close", self.name);
    }
}

impl Drop for ChildConsumer {
    fn drop(&mut self) {
        self.kill9();
    }
}

fn lines(t: &Transcript) -> Vec<(String, String)> {
    t.lock().expect("transcript").clone()
}

fn parse_partitions(list: &str) -> BTreeSet<i32> {
    list.split(',').filter_map(|p| p.trim().parse().ok()).collect()
}

/// Each named child's current partitions, when every one of them has been assigned. Assign
/// adds and Revoke removes, which fits both eager (revoke all, assign all) and cooperative
/// (incremental) rebalancing.
fn assignments(t: &Transcript, names: &[&str]) -> Option<BTreeMap<String, BTreeSet<i32>>> {
    let mut latest: BTreeMap<String, BTreeSet<i32>> = BTreeMap::new();
    for (who, line) in lines(t) {
        if let Some(parts) = line.strip_prefix("ASSIGNED") {
            latest.entry(who).or_default().extend(parse_partitions(parts));
        } else if let Some(parts) = line.strip_prefix("REVOKED") {
            let owned = latest.entry(who).or_default();
            for p in parse_partitions(parts) {
                owned.remove(&p);
            }
        }
    }
    latest.retain(|who, _| names.contains(&who.as_str()));
    (latest.len() == names.len()).then_some(latest)
}

/// Waits until the named children together own all `partitions`, `per_member` each; on a
/// timeout the panic shows the children's rebalance lines.
fn wait_for_balance(t: &Transcript, names: &[&str], partitions: i32, per_member: usize, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(a) = assignments(t, names) {
            let all: BTreeSet<i32> = a.values().flatten().copied().collect();
            if a.values().all(|p| p.len() == per_member) && all == (0..partitions).collect() {
                return;
            }
        }
        if Instant::now() >= deadline {
            let events: Vec<String> = lines(t)
                .into_iter()
                .filter(|(_, l)| !l.starts_with("MSG") && !l.starts_with("COMMITTED"))
                .map(|(w, l)| format!("{w}: {l}"))
                .collect();
            panic!(
                "timed out waiting for {names:?} to own {per_member} partitions each:\n{}",
                events.join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Values received by the group so far.
fn received_values(t: &Transcript) -> BTreeSet<usize> {
    lines(t)
        .iter()
        .filter_map(|(_, l)| l.strip_prefix("MSG "))
        .filter_map(|rest| rest.split(' ').nth(2)?.parse().ok())
        .collect()
}

fn wait_for_values(t: &Transcript, upto: usize, timeout: Duration) {
    wait_for(&format!("values 0..{upto} to be consumed"), timeout, || {
        let got = received_values(t);
        (0..upto).all(|v| got.contains(&v)).then_some(())
    });
}

/// Highest committed offset per partition from `who`'s COMMITTED lines among `lines`.
fn committed_by(lines: &[(String, String)], who: &str) -> BTreeMap<i32, i64> {
    let mut out = BTreeMap::new();
    for (w, l) in lines {
        let Some(rest) = l.strip_prefix("COMMITTED ") else {
            continue;
        };
        if w != who {
            continue;
        }
        let mut f = rest.split(' ');
        if let (Some(Ok(p)), Some(Ok(o))) = (f.next().map(str::parse::<i32>), f.next().map(str::parse::<i64>)) {
            let e = out.entry(p).or_insert(o);
            *e = (*e).max(o);
        }
    }
    out
}

/// The group's committed offsets, read by a fresh client (OffsetFetch).
fn committed_offsets(bootstrap: &str, group: &str, topic: &str, partitions: i32) -> BTreeMap<i32, i64> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition(topic, p);
    }
    let committed = consumer
        .committed_offsets(tpl, Duration::from_secs(20))
        .expect("committed offsets");
    committed
        .elements()
        .iter()
        .map(|e| {
            let offset = match e.offset() {
                Offset::Offset(o) => o,
                _ => -1,
            };
            (e.partition(), offset)
        })
        .collect()
}

fn high_watermarks(bootstrap: &str, topic: &str, partitions: i32) -> BTreeMap<i32, i64> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("consumer");
    (0..partitions)
        .map(|p| {
            let (_, high) = consumer
                .fetch_watermarks(topic, p, Duration::from_secs(10))
                .expect("watermarks");
            (p, high)
        })
        .collect()
}

fn spec(broker: &Broker, group: &str, topic: &str, instance_id: &str, session_timeout_ms: &str) -> ChildSpec {
    ChildSpec {
        bootstrap: broker.bootstrap(),
        group: group.into(),
        topic: topic.into(),
        instance_id: instance_id.into(),
        session_timeout_ms: session_timeout_ms.into(),
        strategy: "range".into(),
    }
}

// ---------------------------------------------------------------------------------------------
// The scenarios.

#[test]
fn three_consumers_survive_a_crash_and_a_clean_leave() {
    const PARTITIONS: i32 = 6;
    let broker = Broker::start_with(&[("offsets.topic.num.partitions", "5")]);
    let (topic, group) = ("orders", "order-processors");
    create_topic(&broker.bootstrap(), topic, PARTITIONS);
    let transcript: Transcript = Arc::default();
    let s = spec(&broker, group, topic, "", SESSION_TIMEOUT_MS);

    // Phase 1: three members, two partitions each.
    let mut c1 = ChildConsumer::spawn("c1", &s, &transcript);
    let mut c2 = ChildConsumer::spawn("c2", &s, &transcript);
    let mut c3 = ChildConsumer::spawn("c3", &s, &transcript);
    wait_for_balance(&transcript, &["c1", "c2", "c3"], PARTITIONS, 2, TIMEOUT);
    produce(&broker.bootstrap(), topic, 0, 300);
    wait_for_values(&transcript, 300, TIMEOUT);

    // Phase 2: c3 dies without leaving; after the session timeout c1 and c2 share its partitions.
    let killed_at = Instant::now();
    c3.kill9();
    let before_kill = lines(&transcript);
    let c3_committed = committed_by(&before_kill, "c3");
    assert!(!c3_committed.is_empty(), "c3 committed nothing before it was killed");
    wait_for_balance(&transcript, &["c1", "c2"], PARTITIONS, 3, TIMEOUT);
    let moved_after = killed_at.elapsed();
    assert!(
        moved_after >= Duration::from_millis(3000),
        "partitions moved after {moved_after:?}, before the session timeout could expire"
    );
    produce(&broker.bootstrap(), topic, 300, 600);
    wait_for_values(&transcript, 600, TIMEOUT);

    // Phase 3: c2 leaves cleanly; c1 owns everything well within a session timeout.
    let left_at = Instant::now();
    c2.close();
    c2.wait_exit(Duration::from_secs(20));
    wait_for_balance(&transcript, &["c1"], PARTITIONS, 6, Duration::from_secs(20));
    let rebalanced_after = left_at.elapsed();
    assert!(
        rebalanced_after < Duration::from_millis(5000),
        "rebalance after a clean leave took {rebalanced_after:?}"
    );
    produce(&broker.bootstrap(), topic, 600, 700);
    wait_for_values(&transcript, 700, TIMEOUT);

    // Nothing c3 committed was delivered again after it died.
    let after_kill = &lines(&transcript)[before_kill.len()..];
    for (who, line) in after_kill {
        let Some(rest) = line.strip_prefix("MSG ") else {
            continue;
        };
        let f: Vec<&str> = rest.split(' ').collect();
        let (p, o): (i32, i64) = (f[0].parse().expect("partition"), f[1].parse().expect("offset"));
        if let Some(c) = c3_committed.get(&p) {
            assert!(
                o >= *c,
                "{who} got {p}@{o} again, committed up to {c} by c3 before its death"
            );
        }
    }
    // Everything consumed was committed: the group's offsets reach every high watermark.
    wait_for("all offsets committed", TIMEOUT, || {
        let committed = committed_offsets(&broker.bootstrap(), group, topic, PARTITIONS);
        (committed == high_watermarks(&broker.bootstrap(), topic, PARTITIONS)).then_some(())
    });
    c1.close();
    c1.wait_exit(Duration::from_secs(20));
}

#[test]
fn offsets_and_group_state_survive_broker_kill9() {
    const PARTITIONS: i32 = 3;
    let mut broker = Broker::start_with(&[("offsets.topic.num.partitions", "5")]);
    let (topic, group) = ("payments", "payment-processors");
    create_topic(&broker.bootstrap(), topic, PARTITIONS);
    produce(&broker.bootstrap(), topic, 0, 90);
    let transcript: Transcript = Arc::default();
    let mut member = ChildConsumer::spawn("m", &spec(&broker, group, topic, "", "30000"), &transcript);
    wait_for_values(&transcript, 90, TIMEOUT);
    wait_for("commits", TIMEOUT, || {
        let committed = committed_offsets(&broker.bootstrap(), group, topic, PARTITIONS);
        (committed == high_watermarks(&broker.bootstrap(), topic, PARTITIONS)).then_some(committed)
    });
    let before = describe(&broker, group);
    assert_eq!(before.group_state, "Stable");
    assert_eq!(before.members.len(), 1);

    broker.kill_and_restart();

    // The group is back as it was: same generation's member, same assignment bytes.
    let after = describe(&broker, group);
    assert_eq!(after.group_state, "Stable");
    assert_eq!(after.protocol_type, "consumer");
    assert_eq!(after.protocol_data, before.protocol_data);
    assert_eq!(after.members.len(), 1);
    assert_eq!(after.members[0].member_id, before.members[0].member_id);
    assert_eq!(after.members[0].member_assignment, before.members[0].member_assignment);
    let committed = committed_offsets(&broker.bootstrap(), group, topic, PARTITIONS);
    assert_eq!(committed, high_watermarks(&broker.bootstrap(), topic, PARTITIONS));
    // Tools that read __consumer_offsets directly (Burrow) see the same offsets.
    assert_eq!(offsets_topic_commits(&broker.bootstrap(), group, topic), committed);

    // The member carries on from its committed offsets: new messages only, none twice.
    let seen_before = lines(&transcript).len();
    produce(&broker.bootstrap(), topic, 90, 120);
    wait_for_values(&transcript, 120, TIMEOUT);
    let redelivered: Vec<String> = lines(&transcript)[seen_before..]
        .iter()
        .filter_map(|(_, l)| l.strip_prefix("MSG "))
        .filter(|rest| {
            rest.split(' ')
                .nth(2)
                .and_then(|v| v.parse::<usize>().ok())
                .is_some_and(|v| v < 90)
        })
        .map(String::from)
        .collect();
    assert!(redelivered.is_empty(), "redelivered after restart: {redelivered:?}");
    member.close();
    member.wait_exit(Duration::from_secs(20));
}

#[test]
fn static_member_restart_keeps_partitions_without_rebalancing_others() {
    const PARTITIONS: i32 = 6;
    let broker = Broker::start_with(&[("offsets.topic.num.partitions", "5")]);
    let (topic, group) = ("inventory", "inventory-static");
    create_topic(&broker.bootstrap(), topic, PARTITIONS);
    let transcript: Transcript = Arc::default();
    let _a = ChildConsumer::spawn("a", &spec(&broker, group, topic, "instance-a", "30000"), &transcript);
    let mut b = ChildConsumer::spawn("b", &spec(&broker, group, topic, "instance-b", "30000"), &transcript);
    wait_for_balance(&transcript, &["a", "b"], PARTITIONS, 3, TIMEOUT);
    let generation_before = describe(&broker, group);
    assert_eq!(generation_before.group_state, "Stable");
    let b_partitions = assignments(&transcript, &["b"]).expect("b assigned")["b"].clone();
    let a_events_before = rebalance_events(&transcript, "a");

    // b crashes and comes back with the same group.instance.id, well within its session timeout.
    b.kill9();
    let mut b2 = ChildConsumer::spawn("b2", &spec(&broker, group, topic, "instance-b", "30000"), &transcript);
    let b2_partitions = wait_for("b2 assigned", TIMEOUT, || {
        assignments(&transcript, &["b2"]).map(|a| a["b2"].clone())
    });
    assert_eq!(
        b2_partitions, b_partitions,
        "the static member gets its partitions back"
    );
    // a saw no rebalance at all.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(rebalance_events(&transcript, "a"), a_events_before, "a was rebalanced");
    let after = describe(&broker, group);
    assert_eq!(after.group_state, "Stable");
    assert_eq!(after.members.len(), 2);
    let instances: BTreeSet<Option<String>> = after.members.iter().map(|m| m.group_instance_id.clone()).collect();
    assert_eq!(
        instances,
        [Some("instance-a".to_string()), Some("instance-b".to_string())]
            .into_iter()
            .collect()
    );
    b2.close();
}

fn rebalance_events(t: &Transcript, who: &str) -> Vec<String> {
    lines(t)
        .into_iter()
        .filter(|(w, l)| w == who && (l.starts_with("ASSIGNED") || l.starts_with("REVOKED")))
        .map(|(_, l)| l)
        .collect()
}

fn describe(broker: &Broker, group: &str) -> describe_groups_response::DescribedGroup {
    let mut client = kafka::Client::connect(&broker.bootstrap());
    let resp = client.send(
        5,
        describe_groups_request::DescribeGroupsRequest {
            groups: vec![group.to_string()],
            ..Default::default()
        },
    );
    resp.groups.into_iter().next().expect("one described group")
}

#[test]
fn describe_list_delete_groups_and_offset_delete() {
    const PARTITIONS: i32 = 2;
    let broker = Broker::start_with(&[("offsets.topic.num.partitions", "5")]);
    let (topic, group) = ("audit", "auditors");
    create_topic(&broker.bootstrap(), topic, PARTITIONS);
    produce(&broker.bootstrap(), topic, 0, 20);
    let mut client = kafka::Client::connect(&broker.bootstrap());

    // FindCoordinator, batched (v4+) and single (v3): this broker, for groups and transactions.
    let found = client.send(
        4,
        find_coordinator_request::FindCoordinatorRequest {
            key_type: 0,
            coordinator_keys: vec![group.into(), "other".into()],
            ..Default::default()
        },
    );
    assert_eq!(found.coordinators.len(), 2);
    assert!(found
        .coordinators
        .iter()
        .all(|c| c.error_code == 0 && c.port == i32::from(broker.port)));
    let txn = client.send(
        3,
        find_coordinator_request::FindCoordinatorRequest {
            key: "txn".into(),
            key_type: 1,
            ..Default::default()
        },
    );
    assert_eq!(txn.error_code, 0, "the transaction coordinator is this broker too");
    assert_eq!(txn.port, i32::from(broker.port));

    // A live member: the group is Stable and cannot be deleted.
    let transcript: Transcript = Arc::default();
    let mut member = ChildConsumer::spawn("m", &spec(&broker, group, topic, "", "30000"), &transcript);
    wait_for_values(&transcript, 20, TIMEOUT);
    wait_for("commits", TIMEOUT, || {
        let committed = committed_offsets(&broker.bootstrap(), group, topic, PARTITIONS);
        (committed == high_watermarks(&broker.bootstrap(), topic, PARTITIONS)).then_some(())
    });
    let listed = client.send(
        5,
        list_groups_request::ListGroupsRequest {
            states_filter: vec!["stable".into()],
            ..Default::default()
        },
    );
    let ours: Vec<_> = listed.groups.iter().filter(|g| g.group_id == group).collect();
    assert_eq!(ours.len(), 1, "{listed:?}");
    assert_eq!(
        (ours[0].group_state.as_str(), ours[0].group_type.as_str()),
        ("Stable", "classic")
    );
    assert_eq!(ours[0].protocol_type, "consumer");
    let d = describe(&broker, group);
    assert_eq!(d.protocol_data, "range");
    assert_eq!(d.members.len(), 1);
    assert!(!d.members[0].member_assignment.is_empty());
    assert!(!d.members[0].member_metadata.is_empty());
    let subscribed = offset_delete(&mut client, group, topic);
    assert_eq!(
        subscribed.topics[0].partitions[0].error_code, 86,
        "GROUP_SUBSCRIBED_TO_TOPIC"
    );
    let rt = runtime();
    let admin = admin(&broker.bootstrap());
    let results = rt
        .block_on(admin.delete_groups(&[group], &AdminOptions::new()))
        .expect("delete_groups");
    assert!(
        matches!(&results[0], Err((_, code)) if *code as i32 == 68),
        "NON_EMPTY_GROUP expected: {results:?}"
    );

    // After a clean leave the group is Empty: offsets can be deleted, then the group.
    member.close();
    member.wait_exit(Duration::from_secs(20));
    wait_for("group empty", TIMEOUT, || {
        (describe(&broker, group).group_state == "Empty").then_some(())
    });
    let empty = client.send(
        5,
        list_groups_request::ListGroupsRequest {
            states_filter: vec!["Empty".into()],
            types_filter: vec!["classic".into()],
            ..Default::default()
        },
    );
    assert!(empty.groups.iter().any(|g| g.group_id == group));
    let deleted = offset_delete(&mut client, group, topic);
    assert_eq!(deleted.error_code, 0);
    assert_eq!(deleted.topics[0].partitions[0].error_code, 0);
    let fetched = client.send(
        8,
        offset_fetch_request::OffsetFetchRequest {
            groups: vec![offset_fetch_request::OffsetFetchRequestGroup {
                group_id: group.into(),
                topics: None,
                ..Default::default()
            }],
            ..Default::default()
        },
    );
    let remaining: Vec<i32> = fetched.groups[0]
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| p.partition_index))
        .collect();
    assert_eq!(
        remaining,
        vec![1],
        "partition 0's offset was deleted, partition 1's kept"
    );
    let results = rt
        .block_on(admin.delete_groups(&[group, "never-existed"], &AdminOptions::new()))
        .expect("delete_groups");
    assert!(results[0].is_ok(), "{results:?}");
    assert!(
        matches!(&results[1], Err((_, code)) if *code as i32 == 69),
        "GROUP_ID_NOT_FOUND expected: {results:?}"
    );
    assert_eq!(describe(&broker, group).group_state, "Dead");
    let committed = committed_offsets(&broker.bootstrap(), group, topic, PARTITIONS);
    assert!(
        committed.values().all(|o| *o == -1),
        "offsets left after deletion: {committed:?}"
    );
}

fn offset_delete(client: &mut kafka::Client, group: &str, topic: &str) -> offset_delete_response::OffsetDeleteResponse {
    client.send(
        0,
        offset_delete_request::OffsetDeleteRequest {
            group_id: group.into(),
            topics: vec![offset_delete_request::OffsetDeleteRequestTopic {
                name: topic.into(),
                partitions: vec![offset_delete_request::OffsetDeleteRequestPartition {
                    partition_index: 0,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        },
    )
}

#[test]
fn cooperative_sticky_members_rebalance_incrementally() {
    const PARTITIONS: i32 = 6;
    let broker = Broker::start_with(&[("offsets.topic.num.partitions", "5")]);
    let (topic, group) = ("shipments", "shippers");
    create_topic(&broker.bootstrap(), topic, PARTITIONS);
    let transcript: Transcript = Arc::default();
    let mut s = spec(&broker, group, topic, "", SESSION_TIMEOUT_MS);
    s.strategy = "cooperative-sticky".into();
    let _first = ChildConsumer::spawn("first", &s, &transcript);
    wait_for_balance(&transcript, &["first"], PARTITIONS, 6, TIMEOUT);
    let _second = ChildConsumer::spawn("second", &s, &transcript);
    wait_for_balance(&transcript, &["first", "second"], PARTITIONS, 3, TIMEOUT);
    // The first member gave up only the partitions that moved, never all of them.
    let revocations: Vec<BTreeSet<i32>> = lines(&transcript)
        .into_iter()
        .filter(|(w, _)| w == "first")
        .filter_map(|(_, l)| l.strip_prefix("REVOKED").map(parse_partitions))
        .filter(|r| !r.is_empty())
        .collect();
    assert_eq!(revocations.len(), 1, "revocations: {revocations:?}");
    assert_eq!(revocations[0].len(), 3, "revocations: {revocations:?}");
    produce(&broker.bootstrap(), topic, 0, 60);
    wait_for_values(&transcript, 60, TIMEOUT);
}

/// Reads `__consumer_offsets` as a plain topic and decodes Kafka's offset commit records
/// (key version 0/1: group, topic, partition; value version 1 or 3 starts with the offset):
/// the latest committed offset of `group` per partition of `topic`.
fn offsets_topic_commits(bootstrap: &str, group: &str, topic: &str) -> BTreeMap<i32, i64> {
    const OFFSETS_TOPIC: &str = "__consumer_offsets";
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "offsets-topic-reader")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let metadata = consumer
        .fetch_metadata(Some(OFFSETS_TOPIC), Duration::from_secs(10))
        .expect("metadata");
    let partitions = metadata.topics()[0].partitions().len() as i32;
    assert!(partitions > 0, "{OFFSETS_TOPIC} has no partitions");
    let mut tpl = TopicPartitionList::new();
    let mut remaining = BTreeMap::new();
    for p in 0..partitions {
        tpl.add_partition_offset(OFFSETS_TOPIC, p, Offset::Beginning)
            .expect("tpl");
        let (_, high) = consumer
            .fetch_watermarks(OFFSETS_TOPIC, p, Duration::from_secs(10))
            .expect("watermarks");
        if high > 0 {
            remaining.insert(p, high);
        }
    }
    consumer.assign(&tpl).expect("assign");
    let mut out = BTreeMap::new();
    let deadline = Instant::now() + TIMEOUT;
    while !remaining.is_empty() {
        assert!(Instant::now() < deadline, "{OFFSETS_TOPIC} not read to its end");
        let Some(Ok(msg)) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        if remaining
            .get(&msg.partition())
            .is_some_and(|high| msg.offset() + 1 >= *high)
        {
            remaining.remove(&msg.partition());
        }
        let Some(key) = msg.key() else {
            continue;
        };
        let Some((g, t, p)) = decode_offset_key(key) else {
            continue;
        };
        if g != group || t != topic {
            continue;
        }
        match msg.payload() {
            Some(v) if v.len() >= 10 => {
                let version = i16::from_be_bytes([v[0], v[1]]);
                assert!(matches!(version, 1 | 3), "offset commit value version {version}");
                let offset = i64::from_be_bytes(v[2..10].try_into().expect("8 bytes"));
                out.insert(p, offset);
            }
            _ => {
                out.remove(&p);
            }
        }
    }
    out
}

fn decode_offset_key(key: &[u8]) -> Option<(String, String, i32)> {
    fn string(buf: &mut &[u8]) -> Option<String> {
        let (len, rest) = buf.split_first_chunk::<2>()?;
        let len = usize::try_from(i16::from_be_bytes(*len)).ok()?;
        let (s, rest) = (rest.get(..len)?, rest.get(len..)?);
        *buf = rest;
        String::from_utf8(s.to_vec()).ok()
    }
    let (version, mut rest) = key.split_first_chunk::<2>()?;
    if !matches!(i16::from_be_bytes(*version), 0 | 1) {
        return None;
    }
    let group = string(&mut rest)?;
    let topic = string(&mut rest)?;
    let partition = i32::from_be_bytes(*rest.first_chunk::<4>()?);
    Some((group, topic, partition))
}
