//! End-to-end latency: producers write their send time into each record at a target rate; a
//! consumer in this process reads the records back and records receive time minus send time.
//!
//! Owns the latency consumer and its histogram. The clock is the wall clock (both ends run on
//! this host, so they read the same one); a receive time earlier than the send time can only
//! be a clock step and is counted as `clock_steps`, not recorded. Records sent during the
//! warm-up are received and counted but kept out of the histogram and the rates.
//! Invariant: the consumer is positioned at the high watermark of every partition before the
//! first send, so it sees every record of this run and none of an earlier one.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use crate::kafka::wall_ns;
use crate::native::ConsumerQueue;
use crate::produce::{self, ProduceOutcome, ProduceSpec};
use crate::report::new_ns_histogram;
use crate::Result;

/// After the last send, how long the consumer may go without a record before giving up on
/// the rest (they are then reported as `lost`).
pub const IDLE_LIMIT: Duration = Duration::from_secs(10);

pub struct LatencySpec {
    /// `stamp` must be set and `record_size` ≥ 8.
    pub produce: ProduceSpec,
    pub warmup: Duration,
}

pub struct LatencyOutcome {
    pub produced: ProduceOutcome,
    pub sent: u64,
    /// Receive minus send time of records sent after the warm-up, ns.
    pub e2e_ns: Histogram<u64>,
    pub received: u64,
    pub measured_bytes: u64,
    /// First to last receive of a measured record.
    pub measured_seconds: f64,
    pub clock_steps: u64,
    pub timeline: Timeline,
}

/// Measured records by the millisecond they were sent in: how many, and the longest delay.
/// A tail made of rare long stalls and one made of many short delays have the same p99; the
/// timeline tells them apart and dates each stall, to set beside a system trace.
#[derive(Debug)]
pub struct Timeline {
    /// Wall-clock start of slot 0, ns: the end of the warm-up, before which nothing is measured.
    pub from_ns: u64,
    /// (records, longest delay in ns) per millisecond from `from_ns`.
    pub slots: Vec<(u64, u64)>,
}

impl Timeline {
    fn record(&mut self, sent_ns: u64, delay_ns: u64) {
        let slot = (sent_ns.saturating_sub(self.from_ns) / 1_000_000) as usize;
        if slot >= self.slots.len() {
            self.slots.resize(slot + 1, (0, 0));
        }
        let (count, longest) = &mut self.slots[slot];
        *count += 1;
        *longest = (*longest).max(delay_ns);
    }

    /// Appends this run's slots to `out`: a `# run N from_ns T` line, then one
    /// `ms records longest_us` line per millisecond.
    pub fn write(&self, run: usize, out: &mut impl std::io::Write) -> std::io::Result<()> {
        writeln!(out, "# run {run} from_ns {}", self.from_ns)?;
        for (ms, (count, longest)) in self.slots.iter().enumerate() {
            writeln!(out, "{ms} {count} {}", longest / 1_000)?;
        }
        Ok(())
    }
}

pub struct Received {
    pub e2e_ns: Histogram<u64>,
    pub received: u64,
    measured_bytes: u64,
    /// Wall-clock receive times of the first and last measured record, ns.
    first_ns: Option<u64>,
    last_ns: Option<u64>,
    clock_steps: u64,
    timeline: Timeline,
}

impl Received {
    /// Records sent from `measure_from_ns` on are measured (see `record`).
    pub fn new(measure_from_ns: u64) -> Received {
        Received {
            e2e_ns: new_ns_histogram(),
            received: 0,
            measured_bytes: 0,
            first_ns: None,
            last_ns: None,
            clock_steps: 0,
            timeline: Timeline {
                from_ns: measure_from_ns,
                slots: Vec::new(),
            },
        }
    }

    /// Counts one record received at `now_ns`; its delay goes into the histogram unless it
    /// has no stamp, was sent during the warm-up (before the timeline's start) or seems to
    /// arrive before it was sent (a clock step).
    pub fn record(&mut self, payload: &[u8], now_ns: u64) {
        self.received += 1;
        let Some(sent_ns) = sent_time_ns(payload) else {
            return;
        };
        if sent_ns < self.timeline.from_ns {
            return;
        }
        let Some(delay_ns) = now_ns.checked_sub(sent_ns) else {
            self.clock_steps += 1;
            return;
        };
        self.e2e_ns.saturating_record(delay_ns.max(1));
        self.timeline.record(sent_ns, delay_ns);
        self.measured_bytes += payload.len() as u64;
        self.first_ns.get_or_insert(now_ns);
        self.last_ns = Some(now_ns);
    }
}

pub fn run(producer_cfg: &ClientConfig, consumer_cfg: &ClientConfig, spec: &LatencySpec) -> Result<LatencyOutcome> {
    let consumer = positioned_consumer(consumer_cfg, &spec.produce.topic)?;
    measure(
        spec.warmup,
        |sent, done, from_ns| receive(&consumer, sent, done, from_ns),
        |sent| produce::run(producer_cfg, &spec.produce, sent),
    )
}

/// Runs `produce` (which counts what it sends in `sent`) beside `receive`, which reads until
/// `done` and every sent record is in, timing records sent from `warmup` on.
pub fn measure<R, P>(warmup: Duration, receive: R, produce: P) -> Result<LatencyOutcome>
where
    R: FnOnce(&AtomicU64, &AtomicBool, u64) -> Result<Received> + Send,
    P: FnOnce(&AtomicU64) -> Result<ProduceOutcome>,
{
    let sent = AtomicU64::new(0);
    let done = AtomicBool::new(false);
    let measure_from_ns = wall_ns() + warmup.as_nanos() as u64;
    let (produced, received) = std::thread::scope(|s| {
        let reader = s.spawn(|| receive(&sent, &done, measure_from_ns));
        let produced = produce(&sent);
        done.store(true, Ordering::Release);
        let received = reader
            .join()
            .unwrap_or_else(|_| Err("latency consumer panicked".to_string()));
        (produced, received)
    });
    let (produced, r) = (produced?, received?);
    let measured_seconds = match (r.first_ns, r.last_ns) {
        (Some(a), Some(b)) => b.saturating_sub(a) as f64 / 1e9,
        _ => 0.0,
    };
    Ok(LatencyOutcome {
        produced,
        sent: sent.load(Ordering::Relaxed),
        e2e_ns: r.e2e_ns,
        received: r.received,
        measured_bytes: r.measured_bytes,
        measured_seconds,
        clock_steps: r.clock_steps,
        timeline: r.timeline,
    })
}

/// A consumer assigned to every partition of `topic` at its current high watermark.
fn positioned_consumer(cfg: &ClientConfig, topic: &str) -> Result<BaseConsumer> {
    let consumer: BaseConsumer = cfg.create().map_err(|e| format!("consumer: {e}"))?;
    let mut tpl = TopicPartitionList::new();
    for (p, high) in high_watermarks(&consumer, topic)?.into_iter().enumerate() {
        tpl.add_partition_offset(topic, p as i32, Offset::Offset(high))
            .map_err(|e| format!("assignment: {e}"))?;
    }
    consumer.assign(&tpl).map_err(|e| format!("assign: {e}"))?;
    Ok(consumer)
}

/// The high watermark of each partition of `topic`, by partition index.
pub fn high_watermarks(consumer: &BaseConsumer, topic: &str) -> Result<Vec<i64>> {
    let timeout = Duration::from_secs(10);
    let md = consumer
        .fetch_metadata(Some(topic), timeout)
        .map_err(|e| format!("metadata: {e}"))?;
    let topic_md = md
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .ok_or_else(|| format!("topic {topic} not in metadata"))?;
    let mut highs = vec![0; topic_md.partitions().len()];
    for p in topic_md.partitions() {
        let (_, high) = consumer
            .fetch_watermarks(topic, p.id(), timeout)
            .map_err(|e| format!("watermarks of {topic}-{}: {e}", p.id()))?;
        let slot = highs
            .get_mut(p.id() as usize)
            .ok_or_else(|| format!("{topic} has partition {} of {}", p.id(), topic_md.partitions().len()))?;
        *slot = high;
    }
    Ok(highs)
}

/// Reads records until every sent one is in (or none came for `IDLE_LIMIT` after the last
/// send). It waits in `poll` for one record, then takes whatever else librdkafka has queued in
/// one batch call without waiting (`ConsumerQueue::drain`); a record's receive time is read
/// once it is taken, once for all the records one drain takes together.
fn receive(consumer: &BaseConsumer, sent: &AtomicU64, done: &AtomicBool, measure_from_ns: u64) -> Result<Received> {
    let mut queue = ConsumerQueue::new(consumer)?;
    let mut r = Received::new(measure_from_ns);
    let mut last_progress_ns = wall_ns();
    loop {
        let finished = done.load(Ordering::Acquire);
        if finished && r.received >= sent.load(Ordering::Relaxed) {
            return Ok(r);
        }
        let polled = consumer.poll(Duration::from_millis(100));
        if finished && wall_ns().saturating_sub(last_progress_ns) > IDLE_LIMIT.as_nanos() as u64 {
            return Ok(r);
        }
        // Errors from poll are transient (a reconnect, say); missing records show as `lost`.
        let Some(Ok(m)) = polled else {
            continue;
        };
        let now_ns = wall_ns();
        last_progress_ns = now_ns;
        r.record(m.payload().unwrap_or_default(), now_ns);
        drop(m);
        while queue.drain(|payload, taken_ns| r.record(payload, taken_ns)) > 0 {}
    }
}

/// The send time the producer wrote into the first 8 payload bytes.
pub fn sent_time_ns(payload: &[u8]) -> Option<u64> {
    let stamp: [u8; 8] = payload.get(..8)?.try_into().ok()?;
    Some(u64::from_le_bytes(stamp))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_timed_unless_unstamped_warm_up_or_a_clock_step() {
        let mut r = Received::new(900);
        let stamped = |ns: u64| {
            let mut p = vec![b'x'; 20];
            p[..8].copy_from_slice(&ns.to_le_bytes());
            p
        };
        r.record(&stamped(1_000), 1_500);
        r.record(&stamped(800), 1_600); // sent during the warm-up
        r.record(&stamped(2_000), 1_700); // received before it was sent
        r.record(b"short", 1_800);
        assert_eq!(r.received, 4);
        assert_eq!(r.e2e_ns.len(), 1);
        assert_eq!(r.e2e_ns.max(), r.e2e_ns.highest_equivalent(500));
        assert_eq!((r.clock_steps, r.measured_bytes), (1, 20));
        assert_eq!((r.first_ns, r.last_ns), (Some(1_500), Some(1_500)));
        assert_eq!(r.timeline.slots, vec![(1, 500)]);
    }

    #[test]
    fn the_timeline_keeps_count_and_longest_delay_per_millisecond_sent() {
        let from = 5_000_000_000;
        let mut r = Received::new(from);
        let stamped = |ns: u64| ns.to_le_bytes().to_vec();
        r.record(&stamped(from + 100), from + 400_100);
        r.record(&stamped(from + 900_000), from + 2_900_000);
        r.record(&stamped(from + 2_500_000), from + 2_600_000);
        assert_eq!(r.timeline.slots, vec![(2, 2_000_000), (0, 0), (1, 100_000)]);
        let mut out = Vec::new();
        r.timeline.write(3, &mut out).expect("write");
        assert_eq!(
            String::from_utf8(out).expect("utf-8"),
            "# run 3 from_ns 5000000000\n0 2 2000\n1 0 0\n2 1 100\n"
        );
    }

    #[test]
    fn stamp_round_trip_and_short_payloads() {
        let mut payload = vec![b'x'; 100];
        payload[..8].copy_from_slice(&123_456_789u64.to_le_bytes());
        assert_eq!(sent_time_ns(&payload), Some(123_456_789));
        assert_eq!(sent_time_ns(&payload[..7]), None);
    }
}
