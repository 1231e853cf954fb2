//! `runnel cluster info|health`. `health` exits 0 only when the cluster answers and no
//! partition is offline or under-replicated; otherwise it exits 1 and says why, for scripts
//! and container health checks.

use std::process::ExitCode;

use clap::Subcommand;
use runnel_protocol::generated::{describe_cluster_request::DescribeClusterRequest, ApiKey};
use serde_json::json;

use super::client::{error_text, Client, ClusterMetadata};
use super::output::{print_json, print_str, Table};
use super::{CliResult, Global};

#[derive(Subcommand, Debug)]
pub enum ClusterCommand {
    /// Cluster id, controller, brokers, topic and partition counts.
    Info,
    /// Exit 0 when reachable with no offline or under-replicated partitions, else 1 with a reason.
    Health,
}

pub fn run(command: ClusterCommand, global: &Global) -> CliResult<ExitCode> {
    match command {
        ClusterCommand::Info => info(global),
        ClusterCommand::Health => Ok(health(global)),
    }
}

/// Cluster id and controller from DescribeCluster when the broker has it (Metadata's
/// controller is a random broker in KRaft mode), else from Metadata.
fn cluster_identity(client: &mut Client, md: &ClusterMetadata) -> (Option<String>, i32) {
    if client.any().supports(ApiKey::DescribeCluster) {
        if let Ok((_, r)) = client.any().send(DescribeClusterRequest::default()) {
            if r.error_code == 0 {
                return (Some(r.cluster_id), r.controller_id);
            }
        }
    }
    (md.cluster_id.clone(), md.controller_id)
}

fn info(global: &Global) -> CliResult<ExitCode> {
    let mut client = global.connect()?;
    let md = client.metadata(None)?;
    let (cluster_id, controller) = cluster_identity(&mut client, &md);
    let partitions: usize = md.topics.iter().map(|t| t.partitions.len()).sum();
    if global.json {
        let brokers: Vec<_> = md
            .brokers
            .iter()
            .map(|(id, addr)| json!({"id": id, "address": addr}))
            .collect();
        print_json(
            &json!({"cluster_id": cluster_id, "controller_id": controller, "brokers": brokers,
                           "topics": md.topics.len(), "partitions": partitions}),
        );
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = format!(
        "Cluster id: {}\nController: {controller}\nTopics: {}\nPartitions: {partitions}\n\n",
        cluster_id.unwrap_or_else(|| "-".into()),
        md.topics.len()
    );
    let mut table = Table::new(&["BROKER", "ADDRESS", "CONTROLLER"]);
    for (id, addr) in &md.brokers {
        table.row(vec![id.to_string(), addr.clone(), (*id == controller).to_string()]);
    }
    out.push_str(&table.render());
    print_str(&out);
    Ok(ExitCode::SUCCESS)
}

/// Reasons the cluster is unhealthy (empty when healthy).
pub fn problems(md: &ClusterMetadata) -> Vec<String> {
    let mut out = Vec::new();
    if md.brokers.is_empty() {
        out.push("no brokers in the metadata".to_string());
    }
    for t in &md.topics {
        if t.error_code != 0 {
            out.push(format!("topic {}: {}", t.name, error_text(t.error_code, None)));
            continue;
        }
        for p in &t.partitions {
            if p.leader < 0 || p.error_code == runnel_protocol::ErrorCode::LEADER_NOT_AVAILABLE.code() {
                out.push(format!("partition {}-{} is offline (no leader)", t.name, p.partition));
            } else if p.isr.len() < p.replicas.len() {
                out.push(format!(
                    "partition {}-{} is under-replicated (isr {} of {} replicas)",
                    t.name,
                    p.partition,
                    p.isr.len(),
                    p.replicas.len()
                ));
            }
        }
    }
    out
}

fn health(global: &Global) -> ExitCode {
    let md = global.connect().and_then(|mut c| c.metadata(None));
    let (healthy, reasons, brokers, partitions) = match &md {
        Ok(md) => {
            let p = problems(md);
            let parts: usize = md.topics.iter().map(|t| t.partitions.len()).sum();
            (p.is_empty(), p, md.brokers.len(), parts)
        }
        Err(e) => (false, vec![format!("unreachable: {}", e.message)], 0, 0),
    };
    if global.json {
        print_json(&json!({"healthy": healthy, "reasons": reasons, "brokers": brokers, "partitions": partitions}));
    } else if healthy {
        print_str(&format!("healthy: {brokers} broker(s), {partitions} partition(s)\n"));
    } else {
        eprintln!("runnel: unhealthy: {}", reasons.join("; "));
    }
    if healthy {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::client::{PartitionInfo, TopicInfo};
    use runnel_protocol::codec::Uuid;

    fn partition(partition: i32, leader: i32, replicas: &[i32], isr: &[i32]) -> PartitionInfo {
        PartitionInfo {
            partition,
            leader,
            replicas: replicas.to_vec(),
            isr: isr.to_vec(),
            offline: Vec::new(),
            error_code: 0,
        }
    }

    fn cluster(partitions: Vec<PartitionInfo>) -> ClusterMetadata {
        ClusterMetadata {
            cluster_id: Some("c".into()),
            controller_id: 1,
            brokers: vec![(1, "a:9092".into()), (2, "b:9092".into())],
            topics: vec![TopicInfo {
                name: "t".into(),
                id: Uuid::ZERO,
                internal: false,
                error_code: 0,
                partitions,
            }],
        }
    }

    #[test]
    fn health_names_offline_and_under_replicated_partitions() {
        assert!(problems(&cluster(vec![partition(0, 1, &[1, 2], &[1, 2])])).is_empty());
        let p = problems(&cluster(vec![
            partition(0, -1, &[1, 2], &[]),
            partition(1, 1, &[1, 2], &[1]),
            partition(2, 2, &[1, 2], &[2, 1]),
        ]));
        assert_eq!(
            p,
            vec![
                "partition t-0 is offline (no leader)".to_string(),
                "partition t-1 is under-replicated (isr 1 of 2 replicas)".to_string(),
            ]
        );
        let mut empty = cluster(Vec::new());
        empty.brokers.clear();
        assert_eq!(problems(&empty), vec!["no brokers in the metadata".to_string()]);
    }
}
