//! `runnel group list|describe|reset-offsets|delete`.
//!
//! Lag is `log end offset - committed offset` per partition, the definition kafka-exporter and
//! `kafka-consumer-groups.sh` use (and the broker's `kafka_consumergroup_lag`).

use std::collections::BTreeMap;
use std::process::ExitCode;

use bytes::Bytes;
use clap::{ArgGroup, Subcommand};
use runnel_protocol::codec::Message as _;
use runnel_protocol::generated::{
    consumer_group_describe_request as cgd, consumer_protocol_assignment::ConsumerProtocolAssignment,
    delete_groups_request as dg, describe_groups_request as dgr, list_groups_request as lg, ApiKey,
};
use serde_json::{json, Value};

use super::client::{error_text, Client};
use super::offsets::{commit, committed, list_offsets, topic_partitions, Tp, EARLIEST, LATEST};
use super::output::{print_json, print_str, Table};
use super::time::parse_datetime_ms;
use super::{CliError, CliResult, Global};

#[derive(Subcommand, Debug)]
pub enum GroupCommand {
    /// List consumer groups with their state.
    List {
        /// One group id per line, nothing else (what `kafka-consumer-groups.sh --list` prints).
        #[arg(long)]
        names_only: bool,
    },
    /// Members and, per partition, committed offset, log end offset and lag.
    Describe { group: String },
    /// Move a group's committed offsets (plan only unless --execute; the group must be empty).
    #[command(group(ArgGroup::new("target").required(true).args(["to_earliest", "to_latest", "to_datetime", "to_timestamp", "to_offset"])))]
    ResetOffsets {
        group: String,
        /// Topics to reset (repeatable); `topic:0,1` limits it to partitions.
        #[arg(long = "topic", required_unless_present = "all_topics")]
        topics: Vec<String>,
        /// Every topic the group has committed offsets for.
        #[arg(long)]
        all_topics: bool,
        /// Each partition's log start offset.
        #[arg(long)]
        to_earliest: bool,
        /// Each partition's log end offset.
        #[arg(long)]
        to_latest: bool,
        /// `YYYY-MM-DDTHH:MM:SS[.mmm][Z|+HH:MM]` (UTC without an offset).
        #[arg(long)]
        to_datetime: Option<String>,
        /// Epoch milliseconds.
        #[arg(long)]
        to_timestamp: Option<i64>,
        /// An absolute offset, clamped into each partition's range.
        #[arg(long)]
        to_offset: Option<i64>,
        /// Print the plan only (the default).
        #[arg(long, conflicts_with = "execute")]
        dry_run: bool,
        /// Commit the planned offsets.
        #[arg(long)]
        execute: bool,
    },
    /// Delete consumer groups (they must be empty).
    Delete {
        #[arg(required = true)]
        groups: Vec<String>,
    },
}

pub fn run(command: GroupCommand, global: &Global) -> CliResult<ExitCode> {
    let mut client = global.connect()?;
    match command {
        GroupCommand::List { names_only } => list(&mut client, global, names_only),
        GroupCommand::Describe { group } => describe(&mut client, global, &group),
        GroupCommand::ResetOffsets {
            group,
            topics,
            all_topics,
            to_earliest,
            to_latest,
            to_datetime,
            to_timestamp,
            to_offset,
            dry_run: _,
            execute,
        } => {
            let target = match (to_earliest, to_latest, to_datetime, to_timestamp, to_offset) {
                (true, ..) => Target::Earliest,
                (_, true, ..) => Target::Latest,
                (_, _, Some(dt), ..) => Target::Timestamp(parse_datetime_ms(&dt)?),
                (_, _, _, Some(ts), _) => Target::Timestamp(ts),
                (.., Some(o)) => Target::Offset(o),
                _ => {
                    return Err(CliError::usage(
                        "give one of --to-earliest, --to-latest, --to-datetime, --to-timestamp, --to-offset",
                    ))
                }
            };
            let scope = if all_topics { None } else { Some(topics) };
            reset(&mut client, global, &group, scope, target, execute)
        }
        GroupCommand::Delete { groups } => delete(&mut client, global, &groups),
    }
}

fn list(client: &mut Client, global: &Global, names_only: bool) -> CliResult<ExitCode> {
    let md = client.metadata(Some(&[]))?;
    let mut groups = Vec::new();
    // Each broker lists the groups it coordinates.
    for (node, _) in &md.brokers {
        let (_, resp) = client.node(*node)?.send(lg::ListGroupsRequest::default())?;
        if resp.error_code != 0 {
            return Err(CliError::new(format!(
                "ListGroups on broker {node}: {}",
                error_text(resp.error_code, None)
            )));
        }
        groups.extend(resp.groups);
    }
    groups.sort_by(|a, b| a.group_id.cmp(&b.group_id));
    if global.json {
        let list: Vec<Value> = groups
            .iter()
            .map(|g| json!({"group": g.group_id, "state": g.group_state, "type": g.group_type, "protocol_type": g.protocol_type}))
            .collect();
        print_json(&Value::Array(list));
    } else if names_only {
        print_str(&groups.iter().map(|g| format!("{}\n", g.group_id)).collect::<String>());
    } else {
        let mut table = Table::new(&["GROUP", "STATE", "TYPE", "PROTOCOL-TYPE"]);
        for g in groups {
            table.row(vec![g.group_id, g.group_state, g.group_type, g.protocol_type]);
        }
        table.print();
    }
    Ok(ExitCode::SUCCESS)
}

/// A member as DescribeGroups reports it, with the partitions its assignment names.
struct Member {
    member_id: String,
    client_id: String,
    host: String,
    assigned: Vec<Tp>,
}

struct GroupState {
    state: String,
    protocol_type: String,
    members: Vec<Member>,
}

fn describe_group(client: &mut Client, group: &str) -> CliResult<GroupState> {
    let req = dgr::DescribeGroupsRequest {
        groups: vec![group.to_string()],
        ..Default::default()
    };
    let (_, resp) = client.coordinator(group)?.send(req)?;
    let Some(g) = resp.groups.into_iter().next() else {
        return Err(CliError::new(format!("no description returned for group {group}")));
    };
    // KIP-848 groups are not classic groups: Kafka answers DescribeGroups with an error (or
    // Dead) for them, and ConsumerGroupDescribe describes them.
    if g.error_code != 0 || g.group_state.eq_ignore_ascii_case("dead") {
        if let Some(state) = describe_consumer_group(client, group)? {
            return Ok(state);
        }
    }
    if g.error_code != 0 {
        return Err(CliError::new(format!(
            "cannot describe group {group}: {}",
            error_text(g.error_code, None)
        )));
    }
    let consumer = g.protocol_type == "consumer";
    let members = g
        .members
        .into_iter()
        .map(|m| Member {
            assigned: if consumer {
                assignment(&m.member_assignment)
            } else {
                Vec::new()
            },
            member_id: m.member_id,
            client_id: m.client_id,
            host: m.client_host,
        })
        .collect();
    Ok(GroupState {
        state: g.group_state,
        protocol_type: g.protocol_type,
        members,
    })
}

/// A KIP-848 group through ConsumerGroupDescribe; `None` when the broker lacks the API or does
/// not know the group as one.
fn describe_consumer_group(client: &mut Client, group: &str) -> CliResult<Option<GroupState>> {
    let conn = client.coordinator(group)?;
    if !conn.supports(ApiKey::ConsumerGroupDescribe) {
        return Ok(None);
    }
    let req = cgd::ConsumerGroupDescribeRequest {
        group_ids: vec![group.to_string()],
        ..Default::default()
    };
    let (_, resp) = conn.send(req)?;
    let Some(g) = resp.groups.into_iter().next() else {
        return Ok(None);
    };
    if g.error_code != 0 || g.group_state.eq_ignore_ascii_case("dead") {
        return Ok(None);
    }
    let members = g
        .members
        .into_iter()
        .map(|m| Member {
            assigned: m
                .assignment
                .topic_partitions
                .into_iter()
                .flat_map(|t| t.partitions.into_iter().map(move |p| (t.topic_name.clone(), p)))
                .collect(),
            member_id: m.member_id,
            client_id: m.client_id,
            host: m.client_host,
        })
        .collect();
    Ok(Some(GroupState {
        state: g.group_state,
        protocol_type: "consumer".to_string(),
        members,
    }))
}

/// The partitions of a `consumer` protocol assignment (empty when it does not decode).
fn assignment(bytes: &Bytes) -> Vec<Tp> {
    let mut buf = bytes.clone();
    if buf.len() < 2 {
        return Vec::new();
    }
    let version = i16::from_be_bytes([buf[0], buf[1]]);
    bytes::Buf::advance(&mut buf, 2);
    let Ok(a) = ConsumerProtocolAssignment::decode(&mut buf, version.clamp(0, 3)) else {
        return Vec::new();
    };
    a.assigned_partitions
        .into_iter()
        .flat_map(|t| t.partitions.into_iter().map(move |p| (t.topic.clone(), p)))
        .collect()
}

/// One row of `group describe`.
struct Row {
    tp: Tp,
    current: Option<i64>,
    end: Option<i64>,
    member: Option<usize>,
}

impl Row {
    fn lag(&self) -> Option<i64> {
        Some((self.end? - self.current?).max(0))
    }
}

fn describe(client: &mut Client, global: &Global, group: &str) -> CliResult<ExitCode> {
    let state = describe_group(client, group)?;
    let offsets = committed(client, group)?;
    let mut rows: BTreeMap<Tp, Row> = offsets
        .iter()
        .map(|(tp, o)| {
            (
                tp.clone(),
                Row {
                    tp: tp.clone(),
                    current: Some(*o),
                    end: None,
                    member: None,
                },
            )
        })
        .collect();
    for (i, m) in state.members.iter().enumerate() {
        for tp in &m.assigned {
            rows.entry(tp.clone())
                .or_insert_with(|| Row {
                    tp: tp.clone(),
                    current: None,
                    end: None,
                    member: None,
                })
                .member = Some(i);
        }
    }
    let topics: Vec<String> = rows
        .keys()
        .map(|(t, _)| t.clone())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    if !topics.is_empty() {
        let md = client.metadata(Some(&topics))?;
        let known: Vec<Tp> = rows
            .keys()
            .filter(|(t, _)| md.topic(t).is_some_and(|i| i.error_code == 0))
            .cloned()
            .collect();
        let ends = list_offsets(client, &md, &known, LATEST)?;
        for (tp, end) in ends {
            if let Some(r) = rows.get_mut(&tp) {
                r.end = Some(end);
            }
        }
    }
    if global.json {
        print_json(&describe_json(group, &state, &rows));
    } else {
        print_str(&describe_text(group, &state, &rows));
    }
    Ok(ExitCode::SUCCESS)
}

fn describe_json(group: &str, state: &GroupState, rows: &BTreeMap<Tp, Row>) -> Value {
    let members: Vec<Value> = state
        .members
        .iter()
        .map(|m| json!({"member_id": m.member_id, "client_id": m.client_id, "host": m.host,
                        "assignment": m.assigned.iter().map(|(t, p)| json!({"topic": t, "partition": p})).collect::<Vec<_>>()}))
        .collect();
    let offsets: Vec<Value> = rows
        .values()
        .map(|r| {
            json!({"topic": r.tp.0, "partition": r.tp.1, "current_offset": r.current, "log_end_offset": r.end,
                        "lag": r.lag(), "member_id": r.member.map(|i| state.members[i].member_id.clone())})
        })
        .collect();
    let total: i64 = rows.values().filter_map(Row::lag).sum();
    json!({"group": group, "state": state.state, "protocol_type": state.protocol_type, "members": members,
           "offsets": offsets, "total_lag": total})
}

fn describe_text(group: &str, state: &GroupState, rows: &BTreeMap<Tp, Row>) -> String {
    let show = |o: Option<i64>| o.map_or("-".to_string(), |v| v.to_string());
    let mut out = format!(
        "Group: {group}\tState: {}\tMembers: {}\n",
        state.state,
        state.members.len()
    );
    let mut table = Table::new(&[
        "GROUP",
        "TOPIC",
        "PARTITION",
        "CURRENT-OFFSET",
        "LOG-END-OFFSET",
        "LAG",
        "CONSUMER-ID",
        "HOST",
        "CLIENT-ID",
    ]);
    for r in rows.values() {
        let member = r.member.map(|i| &state.members[i]);
        table.row(vec![
            group.to_string(),
            r.tp.0.clone(),
            r.tp.1.to_string(),
            show(r.current),
            show(r.end),
            show(r.lag()),
            member.map_or("-".into(), |m| m.member_id.clone()),
            member.map_or("-".into(), |m| m.host.clone()),
            member.map_or("-".into(), |m| m.client_id.clone()),
        ]);
    }
    out.push_str(&table.render());
    out
}

#[derive(Clone, Copy, Debug)]
enum Target {
    Earliest,
    Latest,
    Timestamp(i64),
    Offset(i64),
}

/// `topic` or `topic:0,1,2` → the partitions meant.
fn scope_partitions(md: &super::client::ClusterMetadata, spec: &str) -> CliResult<Vec<Tp>> {
    let (topic, parts) = match spec.split_once(':') {
        Some((t, ps)) => (t, Some(ps)),
        None => (spec, None),
    };
    let all = topic_partitions(md, topic)?;
    let Some(parts) = parts else { return Ok(all) };
    let mut out = Vec::new();
    for p in parts.split(',') {
        let p: i32 = p
            .trim()
            .parse()
            .map_err(|_| CliError::usage(format!("invalid partition {p:?} in {spec:?}")))?;
        if !all.iter().any(|(_, x)| *x == p) {
            return Err(CliError::usage(format!("topic {topic} has no partition {p}")));
        }
        out.push((topic.to_string(), p));
    }
    Ok(out)
}

fn reset(
    client: &mut Client,
    global: &Global,
    group: &str,
    scope: Option<Vec<String>>,
    target: Target,
    execute: bool,
) -> CliResult<ExitCode> {
    let state = describe_group(client, group)?;
    let current = committed(client, group)?;
    let specs: Vec<String> = match scope {
        Some(s) => s,
        None => current
            .keys()
            .map(|(t, _)| t.clone())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect(),
    };
    let topics: Vec<String> = specs
        .iter()
        .map(|s| s.split(':').next().unwrap_or(s).to_string())
        .collect();
    let md = client.metadata(Some(&topics))?;
    let mut tps = Vec::new();
    for spec in &specs {
        tps.extend(scope_partitions(&md, spec)?);
    }
    let earliest = list_offsets(client, &md, &tps, EARLIEST)?;
    let latest = list_offsets(client, &md, &tps, LATEST)?;
    let by_time = match target {
        Target::Timestamp(ts) => list_offsets(client, &md, &tps, ts)?,
        _ => BTreeMap::new(),
    };
    let mut plan = BTreeMap::new();
    for tp in &tps {
        let lo = earliest.get(tp).copied().unwrap_or(0);
        let hi = latest.get(tp).copied().unwrap_or(lo).max(lo);
        let new = match target {
            Target::Earliest => lo,
            Target::Latest => hi,
            Target::Offset(o) => o.clamp(lo, hi),
            Target::Timestamp(_) => by_time.get(tp).copied().filter(|o| *o >= 0).unwrap_or(hi),
        };
        plan.insert(tp.clone(), new);
    }
    print_plan(global, group, &plan, &current, execute);
    if !execute {
        if !global.json {
            eprintln!("runnel: dry run; nothing changed (add --execute to commit these offsets)");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let inactive = ["empty", "dead"].iter().any(|s| state.state.eq_ignore_ascii_case(s));
    if !state.members.is_empty() || !inactive {
        return Err(CliError::new(format!(
            "group {group} is not empty (state {}, {} members); stop its consumers first",
            state.state,
            state.members.len()
        )));
    }
    commit(client, group, &plan)?;
    Ok(ExitCode::SUCCESS)
}

fn print_plan(global: &Global, group: &str, plan: &BTreeMap<Tp, i64>, current: &BTreeMap<Tp, i64>, executed: bool) {
    if global.json {
        let rows: Vec<Value> = plan
            .iter()
            .map(
                |(tp, o)| json!({"topic": tp.0, "partition": tp.1, "current_offset": current.get(tp), "new_offset": o}),
            )
            .collect();
        print_json(&json!({"group": group, "executed": executed, "offsets": rows}));
        return;
    }
    let mut table = Table::new(&["GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET", "NEW-OFFSET"]);
    for (tp, o) in plan {
        let cur = current.get(tp).map_or("-".to_string(), |c| c.to_string());
        table.row(vec![
            group.to_string(),
            tp.0.clone(),
            tp.1.to_string(),
            cur,
            o.to_string(),
        ]);
    }
    print_str(&table.render());
}

fn delete(client: &mut Client, global: &Global, groups: &[String]) -> CliResult<ExitCode> {
    let mut deleted = Vec::new();
    for group in groups {
        let req = dg::DeleteGroupsRequest {
            groups_names: vec![group.clone()],
            ..Default::default()
        };
        let (_, resp) = client.coordinator(group)?.send(req)?;
        for r in resp.results {
            if r.error_code != 0 {
                return Err(CliError::new(format!(
                    "cannot delete group {}: {}",
                    r.group_id,
                    error_text(r.error_code, None)
                )));
            }
            deleted.push(r.group_id);
        }
    }
    if global.json {
        print_json(&json!({"deleted": deleted}));
    } else {
        print_str(
            &deleted
                .iter()
                .map(|g| format!("deleted group {g}\n"))
                .collect::<String>(),
        );
    }
    Ok(ExitCode::SUCCESS)
}
