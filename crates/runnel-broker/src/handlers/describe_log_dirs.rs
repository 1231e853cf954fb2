//! DescribeLogDirs (key 35), v0–4: the log directory with the size of each partition in it.

use std::collections::BTreeMap;

use runnel_protocol::generated::describe_log_dirs_request::DescribeLogDirsRequest;
use runnel_protocol::generated::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResponse, DescribeLogDirsResult, DescribeLogDirsTopic,
};

use crate::broker::Broker;

pub fn handle(broker: &Broker, req: DescribeLogDirsRequest) -> DescribeLogDirsResponse {
    let wanted = |topic: &str, partition: i32| match &req.topics {
        None => true,
        Some(ts) => ts.iter().any(|t| t.topic == topic && t.partitions.contains(&partition)),
    };
    let mut by_topic: BTreeMap<String, Vec<DescribeLogDirsPartition>> = BTreeMap::new();
    for part in broker.replicas.all() {
        if !wanted(&part.topic, part.index) {
            continue;
        }
        let size = part.log().size_bytes();
        by_topic
            .entry(part.topic.clone())
            .or_default()
            .push(DescribeLogDirsPartition {
                partition_index: part.index,
                partition_size: size as i64,
                offset_lag: 0,
                is_future_key: false,
                ..Default::default()
            });
    }
    let topics = by_topic
        .into_iter()
        .map(|(name, mut partitions)| {
            partitions.sort_by_key(|p| p.partition_index);
            DescribeLogDirsTopic {
                name,
                partitions,
                ..Default::default()
            }
        })
        .collect();
    let dir = broker.replicas.log_dir();
    let log_dir = std::fs::canonicalize(dir)
        .unwrap_or_else(|_| dir.to_path_buf())
        .display()
        .to_string();
    // KIP-827: the file system's total and usable bytes (-1 when they cannot be read).
    let (total_bytes, usable_bytes) = match runnel_storage::disk_space(dir) {
        Ok((total, usable)) => (total as i64, usable as i64),
        Err(_) => (-1, -1),
    };
    DescribeLogDirsResponse {
        results: vec![DescribeLogDirsResult {
            log_dir,
            topics,
            total_bytes,
            usable_bytes,
            ..Default::default()
        }],
        ..Default::default()
    }
}
