//! Producer side: N threads, each with its own librdkafka producer, sending fixed-size records
//! at full speed or paced to a target rate, and timing every acknowledgement.
//!
//! Owns: the send loop, pacing and the produce-ack histogram (delivery callback time minus send
//! time, as kafka-producer-perf-test reports). Records have no key, so librdkafka's default
//! partitioner spreads them (sticky per batch) exactly as `rdkafka_performance` does.
//! Invariant: every send is matched by one delivery callback, counted as acked or failed, before
//! a worker returns (or it gives up after `DRAIN_LIMIT` and says so).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, DeliveryResult, Producer, ProducerContext};
use rdkafka::ClientContext;

use crate::kafka::wall_ns;
use crate::native::{Block, ProduceCall, Topic, UNASSIGNED};
use crate::report::new_ns_histogram;
use crate::Result;

/// How long to wait for outstanding acknowledgements after the last send.
const DRAIN_LIMIT: Duration = Duration::from_secs(300);
/// Poll for delivery callbacks every this many sends, so ack times are taken promptly without
/// paying a queue check per record.
const POLL_EVERY: u64 = 64;
/// Send this early rather than sleep for less (the timer cannot sleep that briefly anyway).
const PACE_SLACK: Duration = Duration::from_micros(20);

/// What to send.
#[derive(Clone, Debug)]
pub struct ProduceSpec {
    pub topic: String,
    /// In total, split evenly over the producers.
    pub records: u64,
    pub record_size: usize,
    pub producers: usize,
    /// Records per second in total; 0 means as fast as possible.
    pub rate_per_s: f64,
    /// Write the send time (wall-clock ns, little-endian) into the first 8 payload bytes.
    pub stamp: bool,
    /// Acks of records sent this early in the run are counted but kept out of the histogram.
    pub warmup: Duration,
    /// Who picks each record's partition.
    pub placement: Placement,
    /// How records are handed to librdkafka.
    pub call: ProduceCall,
}

/// Who picks each record's partition (`--partitioner`).
#[derive(Clone, Copy, Debug, PartialEq, clap::ValueEnum)]
pub enum Partitioner {
    /// No partition is set: librdkafka's default partitioner (sticky for keyless records).
    Librdkafka,
    /// loadgen sets the partition, a batch's worth of records to each in turn.
    Loadgen,
}

/// How records are spread over partitions.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Placement {
    Librdkafka,
    /// Records `[k * per_batch, (k + 1) * per_batch)` of a producer go to partition
    /// `(first + k) % partitions`, where each producer starts at a different partition.
    Blocks {
        partitions: i32,
        per_batch: u64,
    },
}

/// Bytes a record adds to a v2 batch besides its value: length, attributes, timestamp and
/// offset deltas, key length, header count (varints; a few bytes each for small records).
const RECORD_OVERHEAD_BYTES: usize = 10;

/// Records of `record_size` value bytes that fill a batch of `batch_size` bytes (at least 1).
pub fn records_per_batch(batch_size: usize, record_size: usize) -> u64 {
    (batch_size / (record_size + RECORD_OVERHEAD_BYTES)).max(1) as u64
}

impl Placement {
    pub fn new(p: Partitioner, partitions: i32, batch_size: usize, record_size: usize) -> Placement {
        match p {
            Partitioner::Librdkafka => Placement::Librdkafka,
            Partitioner::Loadgen => Placement::Blocks {
                partitions: partitions.max(1),
                per_batch: records_per_batch(batch_size, record_size),
            },
        }
    }

    /// The partition of producer `worker`'s record `i`, or `None` to leave it to librdkafka.
    fn partition(&self, worker: u64, i: u64) -> Option<i32> {
        match *self {
            Placement::Librdkafka => None,
            Placement::Blocks { partitions, per_batch } => Some(((worker + i / per_batch) % partitions as u64) as i32),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Placement::Librdkafka => "librdkafka".into(),
            Placement::Blocks { per_batch, .. } => format!("loadgen ({per_batch} records per partition in turn)"),
        }
    }
}

/// What the producers achieved.
pub struct ProduceOutcome {
    pub acked: u64,
    pub failed: u64,
    pub first_error: Option<String>,
    /// From the first send to the last acknowledgement.
    pub seconds: f64,
    /// Delivery callback time minus send time, ns.
    pub ack_ns: Histogram<u64>,
}

/// Runs the producers to completion. `sent` counts sends as they happen (for the latency
/// consumer, which needs to know how many records to expect).
pub fn run(cfg: &ClientConfig, spec: &ProduceSpec, sent: &AtomicU64) -> Result<ProduceOutcome> {
    let producers = spec.producers.max(1) as u64;
    let start = Instant::now();
    let results: Vec<Result<WorkerOutcome>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..producers)
            .map(|w| {
                let share = share_of(spec.records, producers, w);
                let pacer = Pacer::new(start, spec.rate_per_s / producers as f64);
                s.spawn(move || worker(cfg, spec, w, share, pacer, sent))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err("producer thread panicked".into())))
            .collect()
    });
    merge(results, start)
}

/// Producer `worker`'s part of `records` split evenly over `producers` (the first ones take
/// the remainder).
pub fn share_of(records: u64, producers: u64, worker: u64) -> u64 {
    records / producers + u64::from(worker < records % producers)
}

/// One producer's counts, as a worker returns them.
pub struct WorkerOutcome {
    pub acked: u64,
    pub failed: u64,
    pub first_error: Option<String>,
    pub finished: Instant,
    pub ack_ns: Histogram<u64>,
}

/// The producers' counts together: the first error, the last finish (from `start`) and one
/// ack histogram.
pub fn merge(results: Vec<Result<WorkerOutcome>>, start: Instant) -> Result<ProduceOutcome> {
    let mut out = ProduceOutcome {
        acked: 0,
        failed: 0,
        first_error: None,
        seconds: 0.0,
        ack_ns: new_ns_histogram(),
    };
    for w in results {
        let w = w?;
        out.acked += w.acked;
        out.failed += w.failed;
        out.first_error = out.first_error.or(w.first_error);
        out.seconds = out.seconds.max(w.finished.duration_since(start).as_secs_f64());
        out.ack_ns
            .add(&w.ack_ns)
            .map_err(|e| format!("merge histograms: {e}"))?;
    }
    Ok(out)
}

fn worker(
    cfg: &ClientConfig,
    spec: &ProduceSpec,
    worker: u64,
    records: u64,
    mut pacer: Pacer,
    sent: &AtomicU64,
) -> Result<WorkerOutcome> {
    let ctx = AckContext::new(pacer.start, spec.warmup);
    let producer: BaseProducer<AckContext> = cfg.create_with_context(ctx).map_err(|e| format!("producer: {e}"))?;
    // Declared after the producer, so dropped before it.
    let topic = Topic::new(&producer, &spec.topic)?;
    let mut block = Block::new(spec.call, POLL_EVERY as usize);
    let mut payload = vec![b'x'; spec.record_size];
    let paced = pacer.interval_ns > 0.0;
    let stamp = spec.stamp && payload.len() >= 8;
    let mut sent_ns = 0;
    let mut unreported = 0;
    for i in 0..records {
        if pacer.holds(i) {
            block.flush(&topic, &payload, &producer)?;
        }
        let burst = pacer.wait(i, &producer);
        // The clock is read once per burst of paced sends, or per `POLL_EVERY` unpaced sends:
        // such a block takes tens of microseconds, and every record in it carries the time it
        // started, so stamps and ack times err by that much on the long side only.
        let refresh = burst || (!paced && i % POLL_EVERY == 0);
        if refresh {
            // The records waiting carry the payload as it was.
            block.flush(&topic, &payload, &producer)?;
            let now_ns = wall_ns();
            if stamp {
                payload[..8].copy_from_slice(&now_ns.to_le_bytes());
            }
            sent_ns = pacer.start.elapsed().as_nanos() as usize;
        }
        let partition = spec.placement.partition(worker, i).unwrap_or(UNASSIGNED);
        if block.needs_flush_for(partition) {
            block.flush(&topic, &payload, &producer)?;
        }
        block.push(partition, sent_ns);
        unreported += 1;
        if i % POLL_EVERY == 0 {
            // `sent` is shared by every producer thread: adding to it per record would bounce
            // its cache line between the cores on every send.
            sent.fetch_add(std::mem::take(&mut unreported), Ordering::Relaxed);
            serve_deliveries(&producer);
        }
    }
    block.flush(&topic, &payload, &producer)?;
    sent.fetch_add(unreported, Ordering::Relaxed);
    drain(&producer)?;
    let ctx = producer.context();
    let ack_ns = ctx.ack_ns.lock().map_err(|_| "ack histogram poisoned")?.clone();
    let first_error = ctx.first_error.lock().map_err(|_| "error slot poisoned")?.clone();
    Ok(WorkerOutcome {
        acked: ctx.acked.load(Ordering::Relaxed),
        failed: ctx.failed.load(Ordering::Relaxed),
        first_error,
        finished: Instant::now(),
        ack_ns,
    })
}

/// Serves every delivery report already queued. rdkafka's `poll` handles at most one event
/// (one produce response) per call, so a single call per send falls behind as soon as a send is
/// skipped, and the queue of unserved reports (and the measured ack time) grows without bound.
fn serve_deliveries<C: ProducerContext + Delivered>(producer: &BaseProducer<C>) {
    loop {
        let before = producer.context().delivered();
        producer.context().mark_poll();
        producer.poll(Duration::ZERO);
        if producer.context().delivered() == before {
            return;
        }
    }
}

pub fn poll_waiting<C: ProducerContext + Delivered>(producer: &BaseProducer<C>, wait: Duration) {
    producer.context().mark_waiting_poll();
    producer.poll(wait);
}

/// Count of delivery reports served so far, to tell whether a poll found one.
pub trait Delivered {
    fn delivered(&self) -> u64;
    /// Before a poll that does not wait: takes the time it starts, which stands for the ack time
    /// of every report it serves.
    fn mark_poll(&self);
    /// Before a poll that may wait: its reports read the clock themselves.
    fn mark_waiting_poll(&self);
}

impl Delivered for AckContext {
    fn delivered(&self) -> u64 {
        self.acked.load(Ordering::Relaxed) + self.failed.load(Ordering::Relaxed)
    }

    fn mark_poll(&self) {
        self.poll_ns
            .store(self.epoch.elapsed().as_nanos() as u64, Ordering::Relaxed);
    }

    fn mark_waiting_poll(&self) {
        self.poll_ns.store(0, Ordering::Relaxed);
    }
}

fn drain(producer: &BaseProducer<AckContext>) -> Result<()> {
    let deadline = Instant::now() + DRAIN_LIMIT;
    while producer.in_flight_count() > 0 {
        if Instant::now() >= deadline {
            return Err(format!(
                "{} records still unacknowledged after {DRAIN_LIMIT:?}",
                producer.in_flight_count()
            ));
        }
        poll_waiting(producer, Duration::from_millis(10));
    }
    Ok(())
}

/// Counts and times delivery reports; the opaque is the send time in ns since `epoch`.
pub struct AckContext {
    epoch: Instant,
    record_from_ns: u64,
    /// When the current poll started (ns since `epoch`), or 0 if it may wait. A poll serves
    /// one produce response, whose reports all arrived together, so one clock read per
    /// response is enough.
    poll_ns: AtomicU64,
    acked: AtomicU64,
    failed: AtomicU64,
    ack_ns: Mutex<Histogram<u64>>,
    first_error: Mutex<Option<String>>,
}

impl AckContext {
    fn new(epoch: Instant, warmup: Duration) -> AckContext {
        AckContext {
            epoch,
            record_from_ns: warmup.as_nanos() as u64,
            poll_ns: AtomicU64::new(0),
            acked: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            ack_ns: Mutex::new(new_ns_histogram()),
            first_error: Mutex::new(None),
        }
    }
}

impl ClientContext for AckContext {}

impl ProducerContext for AckContext {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, sent_ns: usize) {
        let now_ns = match self.poll_ns.load(Ordering::Relaxed) {
            0 => self.epoch.elapsed().as_nanos() as u64,
            polled_ns => polled_ns,
        };
        match result {
            Ok(_) => {
                self.acked.fetch_add(1, Ordering::Relaxed);
                if (sent_ns as u64) < self.record_from_ns {
                    return;
                }
                if let Ok(mut h) = self.ack_ns.lock() {
                    h.saturating_record(now_ns.saturating_sub(sent_ns as u64).max(1));
                }
            }
            Err((e, _)) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut slot) = self.first_error.lock() {
                    slot.get_or_insert_with(|| e.to_string());
                }
            }
        }
    }
}

/// Spaces sends on an absolute schedule (record i is due at start + i / rate), so a late send
/// is followed by catch-up sends and the average rate holds. It releases sends in bursts: once
/// awake, every record already due goes out (up to `POLL_EVERY`) before it looks at the clock
/// again, as an application batching its work would, instead of a sleep and clock reads per
/// record.
pub struct Pacer {
    start: Instant,
    /// 0 when unpaced.
    interval_ns: f64,
    /// Records before this index are released.
    released: u64,
}

/// What the pacer does before record i.
#[derive(Debug, PartialEq)]
enum Pause {
    Go,
    /// Serve callbacks for up to this many ms (librdkafka's poll has ms resolution).
    PollMs(u64),
    Sleep(Duration),
}

impl Pacer {
    pub fn new(start: Instant, rate_per_s: f64) -> Pacer {
        let interval_ns = if rate_per_s > 0.0 { 1e9 / rate_per_s } else { 0.0 };
        Pacer {
            start,
            interval_ns,
            released: 0,
        }
    }

    /// Whether record `i` must wait for the pacer (it is not in the burst already released).
    fn holds(&self, i: u64) -> bool {
        self.interval_ns > 0.0 && i >= self.released
    }

    /// Returns once record `i` may go; true when that starts a new burst (the clock was read).
    fn wait<C: ProducerContext + Delivered>(&mut self, i: u64, producer: &BaseProducer<C>) -> bool {
        if self.interval_ns == 0.0 || i < self.released {
            return false;
        }
        // Paced sends leave time to take every ack as it arrives.
        serve_deliveries(producer);
        let due = Duration::from_nanos((i as f64 * self.interval_ns) as u64);
        loop {
            let now = self.start.elapsed();
            match pause(due, now) {
                Pause::Go => {
                    self.released = released_until(i, now, self.interval_ns);
                    return true;
                }
                Pause::PollMs(ms) => poll_waiting(producer, Duration::from_millis(ms)),
                Pause::Sleep(d) => {
                    serve_deliveries(producer);
                    std::thread::sleep(d);
                }
            }
        }
    }
}

/// The end (exclusive) of the burst that starts with record `i` at `now`: every record due by
/// then, at least `i` itself and at most `POLL_EVERY` records.
fn released_until(i: u64, now: Duration, interval_ns: f64) -> u64 {
    let due_by_now = ((now + PACE_SLACK).as_nanos() as f64 / interval_ns) as u64 + 1;
    due_by_now.clamp(i + 1, i + POLL_EVERY)
}

fn pause(due: Duration, now: Duration) -> Pause {
    let Some(ahead) = due.checked_sub(now + PACE_SLACK) else {
        return Pause::Go;
    };
    if ahead >= Duration::from_millis(2) {
        // Leave the last millisecond to the finer sleep.
        return Pause::PollMs(ahead.as_millis() as u64 - 1);
    }
    Pause::Sleep(ahead + PACE_SLACK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pause_goes_when_due_or_late_and_waits_otherwise() {
        let ms = Duration::from_millis;
        assert_eq!(pause(ms(10), ms(10)), Pause::Go);
        assert_eq!(pause(ms(10), ms(11)), Pause::Go);
        assert_eq!(pause(ms(10), ms(10) - Duration::from_micros(10)), Pause::Go);
        assert_eq!(pause(ms(10), ms(5)), Pause::PollMs(3));
        assert_eq!(pause(ms(10), ms(9)), Pause::Sleep(ms(1)));
    }

    #[test]
    fn bursts_release_what_is_due_within_bounds() {
        let us = Duration::from_micros;
        // 10 µs per record: at 100 µs (+ the slack) records 0..=12 are due.
        assert_eq!(released_until(5, us(100), 10_000.0), 13);
        // Not yet due (woken early): the record itself still goes.
        assert_eq!(released_until(50, us(100), 10_000.0), 51);
        // Far behind: at most POLL_EVERY at once.
        assert_eq!(released_until(0, Duration::from_secs(1), 10_000.0), POLL_EVERY);
    }

    #[test]
    fn loadgen_placement_fills_a_batch_per_partition_in_turn() {
        // 16 KiB batches of 100-byte records: 148 records each.
        let p = Placement::new(Partitioner::Loadgen, 4, 16384, 100);
        assert_eq!(
            p,
            Placement::Blocks {
                partitions: 4,
                per_batch: 148
            }
        );
        assert_eq!(p.partition(0, 0), Some(0));
        assert_eq!(p.partition(0, 147), Some(0));
        assert_eq!(p.partition(0, 148), Some(1));
        assert_eq!(p.partition(0, 4 * 148), Some(0));
        // Producers start on different partitions.
        assert_eq!(p.partition(1, 0), Some(1));
        assert_eq!(
            Placement::new(Partitioner::Librdkafka, 4, 16384, 100).partition(0, 0),
            None
        );
    }

    #[test]
    fn paced_schedule_is_absolute() {
        let p = Pacer::new(Instant::now(), 1000.0);
        assert_eq!(p.interval_ns, 1e6);
        assert_eq!(Pacer::new(Instant::now(), 0.0).interval_ns, 0.0);
    }
}
