//! The KIP-848 consumer group protocol with librdkafka (`group.protocol=consumer`) against the
//! real broker binary: three consumers on a six-partition topic get two partitions each; when
//! one closes its partitions move to the other two; committed offsets are honoured by a
//! consumer that starts later; ConsumerGroupDescribe and ListGroups (raw protocol) show the
//! members, their assignments and the group type.

mod common;
#[path = "common/kafka.rs"]
mod kafka;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use common::Broker;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use runnel_protocol::generated::{
    consumer_group_describe_request, consumer_group_describe_response, list_groups_request, list_groups_response,
};

const TIMEOUT: Duration = Duration::from_secs(60);
const TOPIC: &str = "kip848";
const GROUP: &str = "kip848-group";
const PARTITIONS: i32 = 6;

// The data-path APIs are declared in `common/kafka.rs`; the ones only this file sends, here.
kafka::api! {
    ConsumerGroupDescribe: consumer_group_describe_request::ConsumerGroupDescribeRequest
        => consumer_group_describe_response::ConsumerGroupDescribeResponse;
    ListGroups: list_groups_request::ListGroupsRequest => list_groups_response::ListGroupsResponse;
}

fn create_topic(bootstrap: &str) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("admin client");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let topic = NewTopic::new(TOPIC, PARTITIONS, TopicReplication::Fixed(1));
    for r in rt
        .block_on(admin.create_topics(&[topic], &AdminOptions::new()))
        .expect("create_topics")
    {
        r.unwrap_or_else(|(t, e)| panic!("creating {t} failed: {e:?}"));
    }
}

/// Produces values `from..to`, spread over the partitions by key.
fn produce(bootstrap: &str, from: usize, to: usize) {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", "5")
        .create()
        .expect("producer");
    for i in from..to {
        let (key, value) = (format!("k{i}"), i.to_string());
        while let Err((e, _)) = producer.send(BaseRecord::to(TOPIC).key(&key).payload(&value)) {
            eprintln!("produce queue: {e}");
            producer.poll(Duration::from_millis(50));
        }
        producer.poll(Duration::ZERO);
    }
    producer.flush(Duration::from_secs(30)).expect("flush");
}

fn consumer(bootstrap: &str, name: &str) -> BaseConsumer {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", GROUP)
        .set("group.protocol", "consumer")
        .set("client.id", name)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("consumer");
    c.subscribe(&[TOPIC]).expect("subscribe");
    c
}

/// Consumers polled in turn; every received value is committed at once (synchronously).
struct Fleet {
    members: Vec<(String, BaseConsumer)>,
    received: BTreeMap<String, Vec<usize>>,
}

impl Fleet {
    fn poll_round(&mut self) {
        for (name, c) in &self.members {
            while let Some(r) = c.poll(Duration::from_millis(20)) {
                match r {
                    Ok(m) => {
                        let v: usize = m
                            .payload_view::<str>()
                            .and_then(Result::ok)
                            .and_then(|s| s.parse().ok())
                            .expect("numeric payload");
                        self.received.entry(name.clone()).or_default().push(v);
                        c.commit_message(&m, CommitMode::Sync).expect("commit");
                    }
                    Err(e) => eprintln!("{name}: {e}"),
                }
            }
        }
    }

    fn assignments(&self) -> BTreeMap<String, BTreeSet<i32>> {
        self.members
            .iter()
            .map(|(name, c)| {
                let parts = c
                    .assignment()
                    .map(|tpl| tpl.elements().iter().map(|e| e.partition()).collect())
                    .unwrap_or_default();
                (name.clone(), parts)
            })
            .collect()
    }

    /// Polls until `ok` holds for the assignments, or panics with them after `TIMEOUT`.
    fn poll_until(&mut self, what: &str, ok: impl Fn(&BTreeMap<String, BTreeSet<i32>>) -> bool) {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            self.poll_round();
            let a = self.assignments();
            if ok(&a) {
                return;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}: {a:?}");
        }
    }

    fn all_received(&self) -> BTreeSet<usize> {
        self.received.values().flatten().copied().collect()
    }
}

/// Every partition exactly once and `sizes` partitions per member.
fn balanced(a: &BTreeMap<String, BTreeSet<i32>>, size: usize) -> bool {
    let all: Vec<i32> = a.values().flatten().copied().collect();
    let unique: BTreeSet<i32> = all.iter().copied().collect();
    all.len() == PARTITIONS as usize && unique.len() == all.len() && a.values().all(|s| s.len() == size)
}

fn describe(client: &mut kafka::Client) -> consumer_group_describe_response::DescribedGroup {
    let resp = client.send(
        0,
        consumer_group_describe_request::ConsumerGroupDescribeRequest {
            group_ids: vec![GROUP.into()],
            ..Default::default()
        },
    );
    resp.groups.into_iter().next().expect("one group")
}

#[test]
fn consumers_share_partitions_rebalance_on_close_and_resume_from_commits() {
    let mut broker = Broker::start_with(&[
        ("offsets.topic.num.partitions", "3"),
        ("group.consumer.heartbeat.interval.ms", "500"),
    ]);
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap);
    produce(&bootstrap, 0, 60);

    let mut fleet = Fleet {
        members: ["c1", "c2", "c3"]
            .iter()
            .map(|n| (n.to_string(), consumer(&bootstrap, n)))
            .collect(),
        received: BTreeMap::new(),
    };
    fleet.poll_until("two partitions each", |a| balanced(a, 2));
    let deadline = Instant::now() + TIMEOUT;
    while fleet.all_received().len() < 60 {
        assert!(
            Instant::now() < deadline,
            "consumed only {:?}",
            fleet.all_received().len()
        );
        fleet.poll_round();
    }
    assert_eq!(fleet.all_received(), (0..60).collect());

    // ConsumerGroupDescribe shows the three members with their partitions.
    let mut client = kafka::Client::connect(&bootstrap);
    let d = describe(&mut client);
    assert_eq!(d.error_code, 0, "{d:?}");
    assert_eq!(d.members.len(), 3);
    assert_eq!(d.assignor_name, "uniform");
    let described: usize = d
        .members
        .iter()
        .flat_map(|m| &m.assignment.topic_partitions)
        .inspect(|tp| assert_eq!(tp.topic_name, TOPIC))
        .map(|tp| tp.partitions.len())
        .sum();
    assert_eq!(described, PARTITIONS as usize);
    let listed = client.send(5, list_groups_request::ListGroupsRequest::default());
    let ours = listed.groups.iter().find(|g| g.group_id == GROUP).expect("listed");
    assert_eq!(
        (ours.group_type.as_str(), ours.protocol_type.as_str()),
        ("consumer", "consumer")
    );

    // c3 closes (a leave heartbeat): its partitions move to c1 and c2.
    let (_, c3) = fleet.members.pop().expect("c3");
    drop(c3);
    fleet.poll_until("three partitions each after c3 left", |a| balanced(a, 3));
    let d = describe(&mut client);
    assert_eq!(d.members.len(), 2);
    assert!(d.members.iter().all(|m| m.client_id != "c3"));

    // Everyone closes; new values arrive; a new consumer starts from the committed offsets.
    fleet.members.clear();
    produce(&bootstrap, 60, 90);
    let mut later = Fleet {
        members: vec![("c4".to_string(), consumer(&bootstrap, "c4"))],
        received: BTreeMap::new(),
    };
    let deadline = Instant::now() + TIMEOUT;
    while later.all_received().len() < 30 {
        assert!(Instant::now() < deadline, "c4 consumed {:?}", later.all_received());
        later.poll_round();
    }
    // Give redeliveries a moment to show up; there must be none.
    for _ in 0..20 {
        later.poll_round();
    }
    let got = later.received.get("c4").cloned().unwrap_or_default();
    assert_eq!(got.iter().copied().collect::<BTreeSet<_>>(), (60..90).collect());
    assert_eq!(got.len(), 30, "no value delivered twice: {got:?}");

    // The group survives a broker `kill -9`: replayed from __consumer_offsets, c4 keeps its
    // partitions and goes on from its commits.
    broker.kill_and_restart();
    let mut client = kafka::Client::connect(&bootstrap);
    let d = describe(&mut client);
    assert_eq!(d.error_code, 0, "{d:?}");
    assert_eq!(d.members.len(), 1);
    assert_eq!(d.members[0].client_id, "c4");
    let owned: usize = d.members[0]
        .assignment
        .topic_partitions
        .iter()
        .map(|tp| tp.partitions.len())
        .sum();
    assert_eq!(owned, PARTITIONS as usize);
    produce(&bootstrap, 90, 100);
    let deadline = Instant::now() + TIMEOUT;
    while later.all_received().len() < 40 {
        assert!(Instant::now() < deadline, "c4 consumed {:?}", later.all_received());
        later.poll_round();
    }
    assert_eq!(later.all_received(), (60..100).collect());
    assert_eq!(
        later.received.get("c4").map_or(0, Vec::len),
        40,
        "no value delivered twice"
    );
}
