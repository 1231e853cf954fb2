//! `runnel produce TOPIC`: one message per input line, from stdin or `--file`.
//!
//! Line layout: `[headers<header-separator>][key<key-separator>]value`, where headers are
//! `k=v` pairs separated by commas. Keyed messages go to the partition Kafka's default
//! partitioner picks (murmur2 of the key), so keys land where a Java producer would put them;
//! keyless messages are spread round-robin, one batch at a time.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, IsTerminal};
use std::path::PathBuf;
use std::process::ExitCode;

use bytes::Bytes;
use clap::Args;
use runnel_protocol::generated::produce_request as pr;
use runnel_protocol::records::{encode_batch, BatchBuilderParams, Compression, Record, RecordHeader};
use serde_json::json;

use super::client::{error_text, Client, ClusterMetadata};
use super::output::{print_json, print_str};
use super::time::now_ms;
use super::{key_value, CliError, CliResult, Global};

/// Messages per Produce request (and per batch per partition at most).
const BATCH_MESSAGES_MAX: usize = 1000;
/// Bytes of message data per Produce request before it is sent.
const BATCH_BYTES_MAX: usize = 512 << 10;
/// How often progress is reported on stderr.
const PROGRESS_EVERY_MESSAGES: u64 = 100_000;
/// Longest input line accepted (a guard against reading an unbounded binary file as one line).
const LINE_BYTES_MAX: usize = 16 << 20;

#[derive(Args, Debug)]
pub struct ProduceArgs {
    pub topic: String,
    /// Read messages from this file instead of stdin.
    #[arg(long)]
    pub file: Option<PathBuf>,
    /// Split each line into key and value at the first occurrence of this string.
    #[arg(long = "key-separator")]
    pub key_separator: Option<String>,
    /// Each line starts with `k=v,k2=v2` headers ended by this string.
    #[arg(long = "header-separator")]
    pub header_separator: Option<String>,
    /// A header `k=v` added to every message (repeatable).
    #[arg(short = 'H', long = "header", value_name = "KEY=VALUE")]
    pub headers: Vec<String>,
    /// Produce to this partition only.
    #[arg(long)]
    pub partition: Option<i32>,
    /// Acknowledgements: 0 (none), 1 (leader), -1 / all (all in-sync replicas).
    #[arg(long, default_value = "all", allow_hyphen_values = true)]
    pub acks: String,
    /// Compression codec: none, gzip, snappy, lz4, zstd.
    #[arg(long, default_value = "none")]
    pub compression: String,
}

/// One parsed input line.
#[derive(Debug, PartialEq, Eq)]
pub struct Message {
    pub key: Option<Bytes>,
    pub value: Bytes,
    pub headers: Vec<(String, String)>,
}

/// Line → message (see the module doc for the layout).
pub fn parse_line(
    line: &str,
    key_sep: Option<&str>,
    header_sep: Option<&str>,
    fixed: &[(String, String)],
) -> CliResult<Message> {
    let mut headers = fixed.to_vec();
    let mut rest = line;
    if let Some(sep) = header_sep {
        let Some((h, r)) = rest.split_once(sep) else {
            return Err(CliError::new(format!("line has no header separator {sep:?}: {line:?}")));
        };
        for pair in h.split(',').filter(|p| !p.is_empty()) {
            headers.push(key_value(pair)?);
        }
        rest = r;
    }
    let (key, value) = match key_sep {
        Some(sep) => match rest.split_once(sep) {
            Some((k, v)) => (Some(Bytes::copy_from_slice(k.as_bytes())), v),
            None => return Err(CliError::new(format!("line has no key separator {sep:?}: {line:?}"))),
        },
        None => (None, rest),
    };
    Ok(Message {
        key,
        value: Bytes::copy_from_slice(value.as_bytes()),
        headers,
    })
}

/// Kafka's murmur2 (the Java client's `Utils.murmur2`), used by its default partitioner.
pub fn murmur2(data: &[u8]) -> i32 {
    const M: u32 = 0x5bd1_e995;
    const SEED: u32 = 0x9747_b28c;
    let len = data.len();
    let mut h: u32 = SEED ^ (len as u32);
    let chunks = data.chunks_exact(4);
    let tail = chunks.remainder();
    for c in chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> 24;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// The partition Kafka's default partitioner gives `key` among `partitions`.
pub fn partition_for_key(key: &[u8], partitions: i32) -> i32 {
    (murmur2(key) & 0x7fff_ffff) % partitions.max(1)
}

fn parse_acks(s: &str) -> CliResult<i16> {
    match s {
        "all" | "-1" => Ok(-1),
        "0" => Ok(0),
        "1" => Ok(1),
        _ => Err(CliError::usage(format!("--acks must be 0, 1, -1 or all, got {s:?}"))),
    }
}

pub fn parse_compression(s: &str) -> CliResult<Compression> {
    match s {
        "none" => Ok(Compression::None),
        "gzip" => Ok(Compression::Gzip),
        "snappy" => Ok(Compression::Snappy),
        "lz4" => Ok(Compression::Lz4),
        "zstd" => Ok(Compression::Zstd),
        _ => Err(CliError::usage(format!(
            "unknown compression {s:?} (none, gzip, snappy, lz4, zstd)"
        ))),
    }
}

struct Producer<'a> {
    client: &'a mut Client,
    md: ClusterMetadata,
    topic: String,
    partitions: i32,
    fixed_partition: Option<i32>,
    acks: i16,
    compression: Compression,
    next_round_robin: i32,
    pending: BTreeMap<i32, Vec<Message>>,
    pending_bytes: usize,
    sent_messages: u64,
    sent_bytes: u64,
    per_partition: BTreeMap<i32, u64>,
}

pub fn run(args: ProduceArgs, global: &Global) -> CliResult<ExitCode> {
    let acks = parse_acks(&args.acks)?;
    let compression = parse_compression(&args.compression)?;
    let fixed = args
        .headers
        .iter()
        .map(|h| key_value(h))
        .collect::<CliResult<Vec<_>>>()?;
    let mut client = global.connect()?;
    let md = client.metadata(Some(std::slice::from_ref(&args.topic)))?;
    let partitions = md
        .topic(&args.topic)
        .filter(|t| t.error_code == 0 && !t.partitions.is_empty())
        .map(|t| t.partitions.len() as i32)
        .ok_or_else(|| CliError::new(format!("topic {} does not exist", args.topic)))?;
    if let Some(p) = args.partition.filter(|p| !(0..partitions).contains(p)) {
        return Err(CliError::usage(format!("topic {} has no partition {p}", args.topic)));
    }
    let input: Box<dyn BufRead> = match &args.file {
        Some(path) => {
            Box::new(BufReader::new(std::fs::File::open(path).map_err(|e| {
                CliError::new(format!("cannot open {}: {e}", path.display()))
            })?))
        }
        None => Box::new(BufReader::new(std::io::stdin())),
    };
    let mut producer = Producer {
        client: &mut client,
        md,
        topic: args.topic.clone(),
        partitions,
        fixed_partition: args.partition,
        acks,
        compression,
        next_round_robin: 0,
        pending: BTreeMap::new(),
        pending_bytes: 0,
        sent_messages: 0,
        sent_bytes: 0,
        per_partition: BTreeMap::new(),
    };
    let progress = std::io::stderr().is_terminal() || args.file.is_some();
    let mut pending_count = 0usize;
    for line in read_lines(input) {
        let line = line?;
        let msg = parse_line(
            &line,
            args.key_separator.as_deref(),
            args.header_separator.as_deref(),
            &fixed,
        )?;
        producer.add(msg);
        pending_count += 1;
        if pending_count >= BATCH_MESSAGES_MAX || producer.pending_bytes >= BATCH_BYTES_MAX {
            let before = producer.sent_messages;
            producer.flush()?;
            pending_count = 0;
            if progress && before / PROGRESS_EVERY_MESSAGES != producer.sent_messages / PROGRESS_EVERY_MESSAGES {
                eprintln!("runnel: produced {} messages so far", producer.sent_messages);
            }
        }
    }
    producer.flush()?;
    report(global, &producer);
    Ok(ExitCode::SUCCESS)
}

/// Lines without their `\n` / `\r\n`, each at most [`LINE_BYTES_MAX`] bytes.
fn read_lines(mut input: Box<dyn BufRead>) -> impl Iterator<Item = CliResult<String>> {
    std::iter::from_fn(move || {
        let mut buf = Vec::new();
        let mut limited = (&mut input).take(LINE_BYTES_MAX as u64 + 1);
        match limited.read_until(b'\n', &mut buf) {
            Ok(0) => None,
            Ok(_) if buf.len() > LINE_BYTES_MAX => Some(Err(CliError::new(format!(
                "an input line is longer than {LINE_BYTES_MAX} bytes"
            )))),
            Ok(_) => {
                if buf.last() == Some(&b'\n') {
                    buf.pop();
                }
                if buf.last() == Some(&b'\r') {
                    buf.pop();
                }
                Some(Ok(String::from_utf8_lossy(&buf).into_owned()))
            }
            Err(e) => Some(Err(CliError::new(format!("cannot read input: {e}")))),
        }
    })
}

use std::io::Read as _;

fn report(global: &Global, p: &Producer<'_>) {
    if global.json {
        let per: BTreeMap<String, u64> = p.per_partition.iter().map(|(k, v)| (k.to_string(), *v)).collect();
        print_json(&json!({"topic": p.topic, "messages": p.sent_messages, "bytes": p.sent_bytes, "partitions": per}));
    } else {
        print_str(&format!(
            "produced {} messages ({} bytes) to {} in {} partition(s)\n",
            p.sent_messages,
            p.sent_bytes,
            p.topic,
            p.per_partition.len()
        ));
    }
}

impl Producer<'_> {
    fn add(&mut self, msg: Message) {
        let partition = match (self.fixed_partition, &msg.key) {
            (Some(p), _) => p,
            (None, Some(key)) => partition_for_key(key, self.partitions),
            // Keyless: one partition for the whole pending batch, the next one for the next.
            (None, None) => self.next_round_robin,
        };
        self.pending_bytes += msg.value.len() + msg.key.as_ref().map_or(0, Bytes::len);
        self.pending.entry(partition).or_default().push(msg);
    }

    fn flush(&mut self) -> CliResult<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        self.next_round_robin = (self.next_round_robin + 1) % self.partitions;
        let pending = std::mem::take(&mut self.pending);
        self.pending_bytes = 0;
        let mut by_leader: BTreeMap<i32, Vec<(i32, Vec<Message>)>> = BTreeMap::new();
        for (partition, msgs) in pending {
            let leader = self
                .md
                .topic(&self.topic)
                .and_then(|t| t.partitions.iter().find(|p| p.partition == partition))
                .map_or(-1, |p| p.leader);
            if leader < 0 {
                return Err(CliError::new(format!(
                    "partition {}-{partition} has no leader",
                    self.topic
                )));
            }
            by_leader.entry(leader).or_default().push((partition, msgs));
        }
        for (leader, parts) in by_leader {
            self.send(leader, parts)?;
        }
        Ok(())
    }

    fn send(&mut self, leader: i32, parts: Vec<(i32, Vec<Message>)>) -> CliResult<()> {
        let now = now_ms();
        let mut data = Vec::new();
        let mut counts = Vec::new();
        for (partition, msgs) in parts {
            let bytes: u64 = msgs
                .iter()
                .map(|m| (m.value.len() + m.key.as_ref().map_or(0, Bytes::len)) as u64)
                .sum();
            let records: Vec<Record> = msgs.into_iter().enumerate().map(|(i, m)| to_record(i, m)).collect();
            counts.push((partition, records.len() as u64, bytes));
            let params = BatchBuilderParams {
                base_timestamp: now,
                ..Default::default()
            };
            let batch = encode_batch(&params, &records, self.compression)
                .map_err(|e| CliError::new(format!("cannot encode a record batch: {e}")))?;
            data.push(pr::PartitionProduceData {
                index: partition,
                records: Some(batch),
                ..Default::default()
            });
        }
        let req = pr::ProduceRequest {
            transactional_id: None,
            acks: self.acks,
            timeout_ms: self.client.timeout().as_millis().min(i32::MAX as u128) as i32,
            topic_data: vec![pr::TopicProduceData {
                name: self.topic.clone(),
                partition_data: data,
                ..Default::default()
            }],
            ..Default::default()
        };
        let conn = self.client.node(leader)?;
        if self.acks == 0 {
            let version = conn.version_capped(runnel_protocol::generated::ApiKey::Produce, i16::MAX)?;
            conn.send_only(version, req)?;
        } else {
            let (_, resp) = conn.send(req)?;
            check_produce(&self.topic, resp)?;
        }
        for (partition, n, bytes) in counts {
            self.sent_messages += n;
            self.sent_bytes += bytes;
            *self.per_partition.entry(partition).or_default() += n;
        }
        Ok(())
    }
}

fn to_record(i: usize, m: Message) -> Record {
    Record {
        attributes: 0,
        timestamp_delta: 0,
        offset_delta: i as i32,
        key: m.key,
        value: Some(m.value),
        headers: m
            .headers
            .into_iter()
            .map(|(k, v)| RecordHeader {
                key: k,
                value: Some(Bytes::from(v.into_bytes())),
            })
            .collect(),
    }
}

fn check_produce(topic: &str, resp: runnel_protocol::generated::produce_response::ProduceResponse) -> CliResult<()> {
    for t in resp.responses {
        for p in t.partition_responses {
            if p.error_code != 0 {
                let e = error_text(p.error_code, p.error_message.as_deref());
                return Err(CliError::new(format!("produce to {topic}-{} failed: {e}", p.index)));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur2_matches_the_java_client() {
        // Values from Kafka's UtilsTest.testMurmur2.
        assert_eq!(murmur2(b"21"), -973932308);
        assert_eq!(murmur2(b"foobar"), -790332482);
        assert_eq!(murmur2(b"a-little-bit-long-string"), -985981536);
        assert_eq!(murmur2(b"a-little-bit-longer-string"), -1486304829);
        assert_eq!(murmur2(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8"), -58897971);
        assert_eq!(murmur2(b"abc"), 479470107);
    }

    #[test]
    fn lines_split_into_headers_key_and_value() {
        let fixed = vec![("src".to_string(), "cli".to_string())];
        let m = parse_line("a=1,b=2|k1:v:1", Some(":"), Some("|"), &fixed).ok();
        let want = Message {
            key: Some(Bytes::from_static(b"k1")),
            value: Bytes::from_static(b"v:1"),
            headers: vec![
                ("src".into(), "cli".into()),
                ("a".into(), "1".into()),
                ("b".into(), "2".into()),
            ],
        };
        assert_eq!(m, Some(want));
        assert!(parse_line("no-separator", Some(":"), None, &[]).is_err());
        let plain = parse_line("just a value", None, None, &[]).ok();
        assert_eq!(
            plain.map(|m| (m.key, m.value)),
            Some((None, Bytes::from_static(b"just a value")))
        );
    }
}
