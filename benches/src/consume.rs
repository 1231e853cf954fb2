//! Consumer side: N threads, each with its own librdkafka consumer, reading a topic from the
//! beginning either with partitions assigned round-robin by `loadgen` (`assign`) or through a
//! consumer group (`group`, a fresh group id per run so every run starts at the earliest offset).
//!
//! Owns the consume loop and its counters; it never commits offsets. The rate is taken from the
//! first record to the last, so group join and the first fetch round trip are excluded (they are
//! reported apart as `first_record_ms`), like kafka-consumer-perf-test's figures "without
//! rebalance time".

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use crate::Result;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// Partitions assigned explicitly, round-robin over the consumers.
    Assign,
    /// subscribe() in one consumer group; the broker's group coordinator balances partitions.
    Group,
}

#[derive(Clone, Debug)]
pub struct ConsumeSpec {
    pub topic: String,
    pub records: u64,
    pub consumers: usize,
    pub mode: Mode,
    pub group_id: String,
    pub timeout: Duration,
}

pub struct ConsumeOutcome {
    pub records: u64,
    pub bytes: u64,
    /// First record received (any consumer) to last record received.
    pub seconds: f64,
    /// Start (before the consumers are created) to the first record.
    pub first_record_ms: f64,
    pub consumers_used: usize,
}

struct Worker {
    bytes: u64,
    first: Option<Instant>,
    last: Option<Instant>,
}

/// Reads `spec.records` records in total (across consumers) from the beginning of the topic.
pub fn run(cfg: &ClientConfig, spec: &ConsumeSpec, partitions: i32) -> Result<ConsumeOutcome> {
    let mut cfg = cfg.clone();
    cfg.set("group.id", &spec.group_id);
    let assignments = plan(spec, partitions);
    let total = AtomicU64::new(0);
    let start = Instant::now();
    let deadline = start + spec.timeout;
    let results: Vec<Result<Worker>> = std::thread::scope(|s| {
        let handles: Vec<_> = assignments
            .iter()
            .map(|parts| {
                let (cfg, total) = (&cfg, &total);
                s.spawn(move || worker(cfg, spec, parts.as_deref(), total, deadline))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err("consumer thread panicked".into())))
            .collect()
    });
    let (mut bytes, mut first, mut last) = (0u64, None::<Instant>, None::<Instant>);
    for w in results {
        let w = w?;
        bytes += w.bytes;
        first = min_opt(first, w.first);
        last = last.max(w.last);
    }
    let records = total.load(Ordering::Relaxed);
    if records < spec.records {
        return Err(format!(
            "only {records} of {} records consumed within {:?}",
            spec.records, spec.timeout
        ));
    }
    let (Some(first), Some(last)) = (first, last) else {
        return Err("no record consumed".into());
    };
    Ok(ConsumeOutcome {
        records,
        bytes,
        seconds: last.duration_since(first).as_secs_f64(),
        first_record_ms: first.duration_since(start).as_secs_f64() * 1e3,
        consumers_used: assignments.len(),
    })
}

fn min_opt(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Per consumer: `Some(partitions)` in assign mode (consumers beyond the partition count get
/// nothing and are not started), `None` (subscribe) in group mode.
fn plan(spec: &ConsumeSpec, partitions: i32) -> Vec<Option<Vec<i32>>> {
    let n = spec.consumers.max(1);
    match spec.mode {
        Mode::Group => vec![None; n],
        Mode::Assign => (0..n.min(partitions.max(0) as usize))
            .map(|w| Some((0..partitions).filter(|p| *p as usize % n == w).collect()))
            .collect(),
    }
}

fn worker(
    cfg: &ClientConfig,
    spec: &ConsumeSpec,
    partitions: Option<&[i32]>,
    total: &AtomicU64,
    deadline: Instant,
) -> Result<Worker> {
    let consumer: BaseConsumer = cfg.create().map_err(|e| format!("consumer: {e}"))?;
    match partitions {
        Some(parts) => {
            let mut tpl = TopicPartitionList::new();
            for p in parts {
                tpl.add_partition_offset(&spec.topic, *p, Offset::Beginning)
                    .map_err(|e| format!("assignment: {e}"))?;
            }
            consumer.assign(&tpl).map_err(|e| format!("assign: {e}"))?;
        }
        None => consumer
            .subscribe(&[&spec.topic])
            .map_err(|e| format!("subscribe: {e}"))?,
    }
    let mut w = Worker {
        bytes: 0,
        first: None,
        last: None,
    };
    while total.load(Ordering::Relaxed) < spec.records && Instant::now() < deadline {
        let Some(polled) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        let Ok(m) = polled else {
            continue;
        };
        let now = Instant::now();
        w.first.get_or_insert(now);
        w.last = Some(now);
        w.bytes += m.payload().map_or(0, <[u8]>::len) as u64;
        total.fetch_add(1, Ordering::Relaxed);
    }
    Ok(w)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(consumers: usize, mode: Mode) -> ConsumeSpec {
        ConsumeSpec {
            topic: "t".into(),
            records: 1,
            consumers,
            mode,
            group_id: "g".into(),
            timeout: Duration::from_secs(1),
        }
    }

    #[test]
    fn assign_spreads_partitions_round_robin() {
        let p = plan(&spec(2, Mode::Assign), 5);
        assert_eq!(p, vec![Some(vec![0, 2, 4]), Some(vec![1, 3])]);
    }

    #[test]
    fn assign_starts_no_idle_consumers_and_group_starts_all() {
        assert_eq!(plan(&spec(4, Mode::Assign), 2).len(), 2);
        assert_eq!(plan(&spec(4, Mode::Group), 2), vec![None; 4]);
    }
}
