//! Offsets shared by several commands: ListOffsets (earliest, latest, by timestamp) routed to
//! each partition's leader, and a group's committed offsets (OffsetFetch / OffsetCommit at the
//! coordinator).

use std::collections::{BTreeMap, HashMap};

use runnel_protocol::generated::{list_offsets_request as lo, offset_commit_request as oc, offset_fetch_request as of};

use super::client::{error_text, Client, ClusterMetadata};
use super::{CliError, CliResult};

/// ListOffsets special timestamps.
pub const LATEST: i64 = -1;
pub const EARLIEST: i64 = -2;

/// A topic partition, ordered by topic then partition.
pub type Tp = (String, i32);

/// For each partition, the offset ListOffsets answers for `timestamp` (`LATEST`, `EARLIEST` or
/// epoch ms). By timestamp, `-1` means no record at or after it (Kafka's answer).
pub fn list_offsets(
    client: &mut Client,
    md: &ClusterMetadata,
    partitions: &[Tp],
    timestamp: i64,
) -> CliResult<BTreeMap<Tp, i64>> {
    let mut by_leader: HashMap<i32, BTreeMap<String, Vec<i32>>> = HashMap::new();
    for (topic, p) in partitions {
        let leader = md
            .topic(topic)
            .and_then(|t| t.partitions.iter().find(|x| x.partition == *p))
            .map(|x| x.leader)
            .ok_or_else(|| CliError::new(format!("partition {topic}-{p} not found")))?;
        if leader < 0 {
            return Err(CliError::new(format!("partition {topic}-{p} has no leader")));
        }
        by_leader
            .entry(leader)
            .or_default()
            .entry(topic.clone())
            .or_default()
            .push(*p);
    }
    let mut out = BTreeMap::new();
    for (leader, topics) in by_leader {
        let req = lo::ListOffsetsRequest {
            replica_id: -1,
            isolation_level: 0,
            topics: topics
                .into_iter()
                .map(|(name, ps)| lo::ListOffsetsTopic {
                    name,
                    partitions: ps
                        .into_iter()
                        .map(|p| lo::ListOffsetsPartition {
                            partition_index: p,
                            current_leader_epoch: -1,
                            timestamp,
                            max_num_offsets: 1,
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                })
                .collect(),
            timeout_ms: 30_000,
            ..Default::default()
        };
        let (_, resp) = client.node(leader)?.send(req)?;
        for t in resp.topics {
            for p in t.partitions {
                if p.error_code != 0 {
                    let e = error_text(p.error_code, None);
                    return Err(CliError::new(format!(
                        "ListOffsets {}-{}: {e}",
                        t.name, p.partition_index
                    )));
                }
                // v0 answers in `old_style_offsets`.
                let offset = p.old_style_offsets.first().copied().unwrap_or(p.offset);
                out.insert((t.name.clone(), p.partition_index), offset);
            }
        }
    }
    Ok(out)
}

/// Every partition of `topic` in `md`, or an error naming the topic.
pub fn topic_partitions(md: &ClusterMetadata, topic: &str) -> CliResult<Vec<Tp>> {
    let t = md
        .topic(topic)
        .filter(|t| t.error_code == 0)
        .ok_or_else(|| CliError::new(format!("topic {topic} does not exist")))?;
    Ok(t.partitions.iter().map(|p| (topic.to_string(), p.partition)).collect())
}

/// The committed offsets of `group` (all topics); partitions with no commit are left out.
pub fn committed(client: &mut Client, group: &str) -> CliResult<BTreeMap<Tp, i64>> {
    let req = of::OffsetFetchRequest {
        group_id: group.to_string(),
        topics: None,
        groups: vec![of::OffsetFetchRequestGroup {
            group_id: group.to_string(),
            member_id: None,
            member_epoch: -1,
            topics: None,
            ..Default::default()
        }],
        require_stable: false,
        ..Default::default()
    };
    // v0 and v1 cannot ask for "all topics".
    let conn = client.coordinator(group)?;
    let version = conn.version_capped(runnel_protocol::generated::ApiKey::OffsetFetch, i16::MAX)?;
    if version < 2 {
        return Err(CliError::new(
            "the broker's OffsetFetch is too old to list a group's offsets",
        ));
    }
    let resp = conn.send_at(version, req)?;
    let mut out = BTreeMap::new();
    let mut add = |topic: &str, partition: i32, offset: i64, code: i16| -> CliResult<()> {
        if code != 0 {
            let e = error_text(code, None);
            return Err(CliError::new(format!("OffsetFetch {group} {topic}-{partition}: {e}")));
        }
        if offset >= 0 {
            out.insert((topic.to_string(), partition), offset);
        }
        Ok(())
    };
    if version >= 8 {
        for g in resp.groups {
            if g.error_code != 0 {
                return Err(CliError::new(format!(
                    "OffsetFetch {group}: {}",
                    error_text(g.error_code, None)
                )));
            }
            for t in g.topics {
                for p in t.partitions {
                    add(&t.name, p.partition_index, p.committed_offset, p.error_code)?;
                }
            }
        }
    } else {
        if resp.error_code != 0 {
            return Err(CliError::new(format!(
                "OffsetFetch {group}: {}",
                error_text(resp.error_code, None)
            )));
        }
        for t in resp.topics {
            for p in t.partitions {
                add(&t.name, p.partition_index, p.committed_offset, p.error_code)?;
            }
        }
    }
    Ok(out)
}

/// Commits `offsets` for `group` as a standalone (simple) consumer: generation -1, no member,
/// which the coordinator accepts only while the group has no active members.
pub fn commit(client: &mut Client, group: &str, offsets: &BTreeMap<Tp, i64>) -> CliResult<()> {
    let mut topics: BTreeMap<&str, Vec<oc::OffsetCommitRequestPartition>> = BTreeMap::new();
    for ((topic, p), offset) in offsets {
        topics.entry(topic).or_default().push(oc::OffsetCommitRequestPartition {
            partition_index: *p,
            committed_offset: *offset,
            committed_leader_epoch: -1,
            commit_timestamp: -1,
            committed_metadata: Some(String::new()),
            ..Default::default()
        });
    }
    let req = oc::OffsetCommitRequest {
        group_id: group.to_string(),
        generation_id_or_member_epoch: -1,
        member_id: String::new(),
        group_instance_id: None,
        retention_time_ms: -1,
        topics: topics
            .into_iter()
            .map(|(name, partitions)| oc::OffsetCommitRequestTopic {
                name: name.to_string(),
                partitions,
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    let (_, resp) = client.coordinator(group)?.send(req)?;
    for t in resp.topics {
        for p in t.partitions {
            if p.error_code != 0 {
                let e = error_text(p.error_code, None);
                return Err(CliError::new(format!(
                    "cannot commit offsets of group {group} for {}-{}: {e}",
                    t.name, p.partition_index
                )));
            }
        }
    }
    Ok(())
}
