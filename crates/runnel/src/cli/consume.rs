//! `runnel consume TOPIC`: fetch from partition leaders and print each message with a format
//! template or as JSON lines. Without `--follow` it stops at the end offsets it saw when it
//! started; with `--group` it commits the positions it reached (as a standalone consumer).

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::process::ExitCode;

use clap::Args;
use runnel_protocol::codec::Uuid;
use runnel_protocol::generated::{fetch_request as fr, fetch_response::FetchResponse, ApiKey};
use runnel_protocol::records::{batches, decode_records};
use serde_json::json;

use super::client::{error_text, Client, ClusterMetadata};
use super::offsets::{commit, committed, list_offsets, topic_partitions, Tp, EARLIEST, LATEST};
use super::{CliError, CliResult, Global};

/// Fetch limits: a whole response and one partition's share of it.
const FETCH_BYTES_MAX: i32 = 8 << 20;
const PARTITION_FETCH_BYTES_MAX: i32 = 1 << 20;
/// Largest decompressed batch accepted.
const DECOMPRESSED_BYTES_MAX: usize = 64 << 20;
/// How long a fetch waits for new data when following.
const FOLLOW_WAIT_MS: i32 = 500;
/// The first Fetch version that names topics by id only.
const FETCH_TOPIC_ID_VERSION: i16 = 13;
/// How often `--follow --group` commits its positions.
const FOLLOW_COMMIT_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);
/// Fetch rounds without progress before a bounded consume gives up.
const STALLED_ROUNDS_MAX: u32 = 50;

#[derive(Args, Debug)]
pub struct ConsumeArgs {
    pub topic: String,
    /// Start at each partition's log start offset.
    #[arg(long, conflicts_with_all = ["offset", "from_timestamp"])]
    pub from_beginning: bool,
    /// Start at this offset (with `--partition`, or in every partition).
    #[arg(long, conflicts_with = "from_timestamp")]
    pub offset: Option<i64>,
    /// Start at the first message with a timestamp at or after this (epoch ms).
    #[arg(long)]
    pub from_timestamp: Option<i64>,
    /// Consume this partition only.
    #[arg(long)]
    pub partition: Option<i32>,
    /// Output template: %t topic, %p partition, %o offset, %k key, %v value, %T timestamp, %h headers; \n and \t escapes.
    #[arg(long, default_value = "%v")]
    pub format: String,
    /// Stop after this many messages.
    #[arg(long)]
    pub max_messages: Option<u64>,
    /// Keep waiting for new messages instead of stopping at the end.
    #[arg(long)]
    pub follow: bool,
    /// Start from and commit to this consumer group's offsets.
    #[arg(long)]
    pub group: Option<String>,
}

/// One consumed message.
#[derive(Debug)]
pub struct Consumed {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub timestamp_ms: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

fn text(b: &Option<Vec<u8>>) -> String {
    b.as_ref()
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .unwrap_or_default()
}

/// Renders `m` with a `%` template (unknown `%x` are kept as written).
pub fn render(template: &str, m: &Consumed) -> String {
    let mut out = String::new();
    let mut chars = template.chars();
    while let Some(c) = chars.next() {
        match c {
            '%' => match chars.next() {
                Some('t') => out.push_str(&m.topic),
                Some('p') => out.push_str(&m.partition.to_string()),
                Some('o') => out.push_str(&m.offset.to_string()),
                Some('k') => out.push_str(&text(&m.key)),
                Some('v') => out.push_str(&text(&m.value)),
                Some('T') => out.push_str(&m.timestamp_ms.to_string()),
                Some('h') => {
                    let hs: Vec<String> = m.headers.iter().map(|(k, v)| format!("{k}={}", text(v))).collect();
                    out.push_str(&hs.join(","));
                }
                Some('%') => out.push('%'),
                Some(other) => {
                    out.push('%');
                    out.push(other);
                }
                None => out.push('%'),
            },
            '\\' => match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some('\\') => out.push('\\'),
                Some(other) => {
                    out.push('\\');
                    out.push(other);
                }
                None => out.push('\\'),
            },
            c => out.push(c),
        }
    }
    out
}

fn to_json(m: &Consumed) -> serde_json::Value {
    let headers: Vec<serde_json::Value> = m
        .headers
        .iter()
        .map(|(k, v)| json!({"key": k, "value": v.as_ref().map(|v| String::from_utf8_lossy(v).into_owned())}))
        .collect();
    json!({"topic": m.topic, "partition": m.partition, "offset": m.offset, "timestamp": m.timestamp_ms,
           "key": m.key.as_ref().map(|v| String::from_utf8_lossy(v).into_owned()),
           "value": m.value.as_ref().map(|v| String::from_utf8_lossy(v).into_owned()), "headers": headers})
}

pub fn run(args: ConsumeArgs, global: &Global) -> CliResult<ExitCode> {
    let mut client = global.connect()?;
    let md = client.metadata(Some(std::slice::from_ref(&args.topic)))?;
    let mut tps = topic_partitions(&md, &args.topic)?;
    if let Some(p) = args.partition {
        tps.retain(|(_, x)| *x == p);
        if tps.is_empty() {
            return Err(CliError::usage(format!("topic {} has no partition {p}", args.topic)));
        }
    }
    let mut positions = start_positions(&mut client, &md, &tps, &args)?;
    let ends = if args.follow {
        BTreeMap::new()
    } else {
        list_offsets(&mut client, &md, &tps, LATEST)?
    };
    let mut state = ConsumeState {
        printed: 0,
        max: args.max_messages,
        out: std::io::stdout().lock(),
        json: global.json,
        format: args.format.clone(),
    };
    let mut stalled_rounds = 0u32;
    let mut last_commit = std::time::Instant::now();
    let mut last_committed = positions.clone();
    loop {
        let active: Vec<Tp> = positions
            .iter()
            .filter(|(tp, pos)| args.follow || ends.get(*tp).is_some_and(|end| **pos < *end))
            .map(|(tp, _)| tp.clone())
            .collect();
        if active.is_empty() || state.done() {
            break;
        }
        let before = positions.clone();
        fetch_round(&mut client, &md, &active, &mut positions, &mut state, args.follow)?;
        // A follower may run until killed: commit what it has printed every few seconds.
        if let Some(group) = args.group.as_deref().filter(|_| args.follow) {
            if last_commit.elapsed() >= FOLLOW_COMMIT_INTERVAL && last_committed != positions {
                commit(&mut client, group, &positions)?;
                last_committed = positions.clone();
                last_commit = std::time::Instant::now();
            }
        }
        // Without --follow, stop rather than spin when the end is not reachable (e.g. the
        // log was truncated under us).
        stalled_rounds = if before == positions { stalled_rounds + 1 } else { 0 };
        if !args.follow && stalled_rounds >= STALLED_ROUNDS_MAX {
            eprintln!("runnel: no progress towards the end offsets; stopping");
            break;
        }
    }
    if let Some(group) = &args.group {
        commit(&mut client, group, &positions)?;
    }
    let _ = state.out.flush();
    eprintln!("runnel: consumed {} messages", state.printed);
    Ok(ExitCode::SUCCESS)
}

struct ConsumeState<'a> {
    printed: u64,
    max: Option<u64>,
    out: std::io::StdoutLock<'a>,
    json: bool,
    format: String,
}

impl ConsumeState<'_> {
    fn done(&self) -> bool {
        self.max.is_some_and(|m| self.printed >= m)
    }

    fn emit(&mut self, m: &Consumed) -> CliResult<()> {
        let line = if self.json {
            serde_json::to_string(&to_json(m)).unwrap_or_default()
        } else {
            render(&self.format, m)
        };
        // A closed pipe (`| head`) ends consumption quietly.
        if writeln!(self.out, "{line}").is_err() {
            self.max = Some(self.printed);
            return Ok(());
        }
        self.printed += 1;
        Ok(())
    }
}

fn start_positions(
    client: &mut Client,
    md: &ClusterMetadata,
    tps: &[Tp],
    args: &ConsumeArgs,
) -> CliResult<BTreeMap<Tp, i64>> {
    if args.from_beginning {
        return list_offsets(client, md, tps, EARLIEST);
    }
    if let Some(offset) = args.offset {
        // Clamp into [log start, log end] as a consumer with auto.offset.reset would end up.
        let start = list_offsets(client, md, tps, EARLIEST)?;
        let end = list_offsets(client, md, tps, LATEST)?;
        return Ok(tps
            .iter()
            .map(|tp| {
                let lo = start.get(tp).copied().unwrap_or(0);
                let hi = end.get(tp).copied().unwrap_or(lo);
                (tp.clone(), offset.clamp(lo, hi.max(lo)))
            })
            .collect());
    }
    if let Some(ts) = args.from_timestamp {
        let by_time = list_offsets(client, md, tps, ts)?;
        let end = list_offsets(client, md, tps, LATEST)?;
        // -1: no message at or after `ts`, so start at the end.
        return Ok(tps
            .iter()
            .map(|tp| {
                let o = by_time.get(tp).copied().unwrap_or(-1);
                let o = if o < 0 { end.get(tp).copied().unwrap_or(0) } else { o };
                (tp.clone(), o)
            })
            .collect());
    }
    let mut latest = list_offsets(client, md, tps, LATEST)?;
    if let Some(group) = &args.group {
        for (tp, offset) in committed(client, group)? {
            if let Some(pos) = latest.get_mut(&tp) {
                *pos = offset;
            }
        }
    }
    Ok(latest)
}

fn fetch_round(
    client: &mut Client,
    md: &ClusterMetadata,
    active: &[Tp],
    positions: &mut BTreeMap<Tp, i64>,
    state: &mut ConsumeState<'_>,
    follow: bool,
) -> CliResult<()> {
    let mut by_leader: BTreeMap<i32, Vec<Tp>> = BTreeMap::new();
    for tp in active {
        let leader = md
            .topic(&tp.0)
            .and_then(|t| t.partitions.iter().find(|p| p.partition == tp.1))
            .map_or(-1, |p| p.leader);
        if leader < 0 {
            return Err(CliError::new(format!("partition {}-{} has no leader", tp.0, tp.1)));
        }
        by_leader.entry(leader).or_default().push(tp.clone());
    }
    for (leader, tps) in by_leader {
        let resp = fetch(client, md, leader, &tps, positions, follow)?;
        handle_fetch(md, resp, positions, state)?;
        if state.done() {
            break;
        }
    }
    Ok(())
}

fn fetch(
    client: &mut Client,
    md: &ClusterMetadata,
    leader: i32,
    tps: &[Tp],
    positions: &BTreeMap<Tp, i64>,
    follow: bool,
) -> CliResult<FetchResponse> {
    let mut topics: BTreeMap<&str, Vec<fr::FetchPartition>> = BTreeMap::new();
    for tp in tps {
        topics.entry(&tp.0).or_default().push(fr::FetchPartition {
            partition: tp.1,
            current_leader_epoch: -1,
            fetch_offset: positions.get(tp).copied().unwrap_or(0),
            last_fetched_epoch: -1,
            log_start_offset: -1,
            partition_max_bytes: PARTITION_FETCH_BYTES_MAX,
            ..Default::default()
        });
    }
    // Topic ids are needed from v13 on; without them (old Metadata) stay below.
    let have_ids = topics.keys().all(|t| md.topic(t).is_some_and(|i| !i.id.is_zero()));
    let cap = if have_ids { i16::MAX } else { FETCH_TOPIC_ID_VERSION - 1 };
    let req = fr::FetchRequest {
        replica_id: -1,
        max_wait_ms: if follow { FOLLOW_WAIT_MS } else { 100 },
        min_bytes: 1,
        max_bytes: FETCH_BYTES_MAX,
        isolation_level: 0,
        session_id: 0,
        session_epoch: -1,
        topics: topics
            .into_iter()
            .map(|(name, partitions)| fr::FetchTopic {
                topic: name.to_string(),
                topic_id: md.topic(name).map_or(Uuid::ZERO, |t| t.id),
                partitions,
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    let conn = client.node(leader)?;
    let version = conn.version_capped(ApiKey::Fetch, cap)?;
    let resp = conn.send_at(version, req)?;
    if resp.error_code != 0 {
        return Err(CliError::new(format!(
            "fetch failed: {}",
            error_text(resp.error_code, None)
        )));
    }
    Ok(resp)
}

fn handle_fetch(
    md: &ClusterMetadata,
    resp: FetchResponse,
    positions: &mut BTreeMap<Tp, i64>,
    state: &mut ConsumeState<'_>,
) -> CliResult<()> {
    let names: HashMap<Uuid, &str> = md.topics.iter().map(|t| (t.id, t.name.as_str())).collect();
    for t in resp.responses {
        let topic = if t.topic.is_empty() {
            names.get(&t.topic_id).map(|s| s.to_string()).unwrap_or_default()
        } else {
            t.topic.clone()
        };
        for p in t.partitions {
            if p.error_code != 0 {
                let e = error_text(p.error_code, None);
                return Err(CliError::new(format!("fetch from {topic}-{}: {e}", p.partition_index)));
            }
            let tp = (topic.clone(), p.partition_index);
            let Some(records) = p.records else { continue };
            let Some(pos) = positions.get(&tp).copied() else {
                continue;
            };
            let next = emit_records(&tp, &records, pos, state)?;
            positions.insert(tp, next);
            if state.done() {
                return Ok(());
            }
        }
    }
    Ok(())
}

/// Prints the records at or after `pos` in `data`; returns the next position.
fn emit_records(tp: &Tp, data: &[u8], mut pos: i64, state: &mut ConsumeState<'_>) -> CliResult<i64> {
    for (i, batch) in batches(data).enumerate() {
        let (header, bytes) = match batch {
            Ok(b) => b,
            // A partial batch at the end of a response is normal (size limits); stop there.
            Err(_) if i > 0 => break,
            Err(e) => return Err(CliError::new(format!("undecodable batch in {}-{}: {e}", tp.0, tp.1))),
        };
        if header.last_offset() < pos {
            continue;
        }
        if header.is_control() {
            pos = header.last_offset() + 1;
            continue;
        }
        let records = decode_records(bytes, DECOMPRESSED_BYTES_MAX)
            .map_err(|e| CliError::new(format!("undecodable records in {}-{}: {e}", tp.0, tp.1)))?;
        for r in records {
            let offset = header.base_offset + i64::from(r.offset_delta);
            if offset < pos {
                continue;
            }
            let timestamp_ms = match header.timestamp_type() {
                runnel_protocol::records::TimestampType::LogAppendTime => header.max_timestamp,
                runnel_protocol::records::TimestampType::CreateTime => header.base_timestamp + r.timestamp_delta,
            };
            let m = Consumed {
                topic: tp.0.clone(),
                partition: tp.1,
                offset,
                timestamp_ms,
                key: r.key.map(|b| b.to_vec()),
                value: r.value.map(|b| b.to_vec()),
                headers: r
                    .headers
                    .into_iter()
                    .map(|h| (h.key, h.value.map(|v| v.to_vec())))
                    .collect(),
            };
            state.emit(&m)?;
            pos = offset + 1;
            if state.done() {
                return Ok(pos);
            }
        }
        pos = pos.max(header.last_offset() + 1);
    }
    Ok(pos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_render_every_field() {
        let m = Consumed {
            topic: "t".into(),
            partition: 2,
            offset: 7,
            timestamp_ms: 1000,
            key: Some(b"k".to_vec()),
            value: Some(b"v".to_vec()),
            headers: vec![("a".into(), Some(b"1".to_vec()))],
        };
        assert_eq!(
            render("%t/%p@%o %k=%v %T [%h] 100%% %x\\t.", &m),
            "t/2@7 k=v 1000 [a=1] 100% %x\t."
        );
    }
}
