//! What a broker holds per partition: open file descriptors. Brokers with thousands of
//! partitions run into `nofile` limits first (the default hard limit here is 20 000), so each
//! partition must cost one descriptor (its active `.log`), not three: the mmap'd `.index` and
//! `.timeindex` close their descriptors once mapped.

mod common;
#[path = "common/kafka.rs"]
mod kafka;

use common::Broker;
use kafka::Client;
use runnel_protocol::generated::create_topics_request::{CreatableTopic, CreateTopicsRequest};

fn open_descriptors(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("list /proc/<pid>/fd")
        .count()
}

#[test]
fn a_partition_costs_one_file_descriptor() {
    const PARTITIONS: i32 = 500;
    let broker = Broker::start();
    let before = open_descriptors(broker.pid());
    let mut c = Client::connect(&broker.bootstrap());
    let r = c.send(
        5,
        CreateTopicsRequest {
            topics: vec![CreatableTopic {
                name: "many".into(),
                num_partitions: PARTITIONS,
                replication_factor: 1,
                ..Default::default()
            }],
            timeout_ms: 30_000,
            ..Default::default()
        },
    );
    assert_eq!(r.topics[0].error_code, 0);
    let added = open_descriptors(broker.pid()).saturating_sub(before);
    assert!(
        added >= PARTITIONS as usize && added < PARTITIONS as usize + 50,
        "{added} descriptors for {PARTITIONS} partitions"
    );
}
