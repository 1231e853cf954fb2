//! Storage micro-benchmarks: segment append, offset/time index lookup, and the fetch read path,
//! all against a real `PartitionLog` in a temporary directory (reads come from the page cache
//! because the fixture log was just written).

mod common;

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use runnel_protocol::records::{batches, Compression};
use runnel_storage::{LogConfig, PartitionLog};

const NOW_MS: i64 = 1_700_000_000_000;
/// Small segments so the lookup benches cross many segments and index files.
const FIXTURE_SEGMENT_BYTES: u64 = 1024 * 1024;
/// One segment for the fetch reads, so a 1 MiB read never stops at a segment's end.
const FETCH_SEGMENT_BYTES: u64 = 1 << 30;
/// 64 MiB of 16 KiB batches: ~4 000 batches, ~600 000 records.
const FIXTURE_BATCHES: usize = 4096;
/// The append bench starts a fresh log once this much is written, so a long run cannot fill
/// the disk; the reset is outside the measured time.
const APPEND_RESET_BYTES: u64 = 512 * 1024 * 1024;
const ONE_MIB: usize = 1024 * 1024;

fn open_log(dir: &Path, segment_bytes: u64) -> PartitionLog {
    let config = LogConfig {
        segment_bytes,
        ..LogConfig::default()
    };
    PartitionLog::open(&dir.join("bench-0"), None, config, NOW_MS).expect("open bench log")
}

/// A log of `FIXTURE_BATCHES` batches where batch `i` has timestamps starting at `NOW_MS + i*1000`,
/// in segments of `segment_bytes`.
struct Fixture {
    _dir: tempfile::TempDir,
    log: PartitionLog,
    log_end_offset: i64,
}

fn fixture(segment_bytes: u64) -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open_log(dir.path(), segment_bytes);
    for i in 0..FIXTURE_BATCHES {
        let (batch, _) = common::batch_16k(Compression::None, NOW_MS + i as i64 * 1000);
        let mut buf = batch.to_vec();
        log.append_as_leader(&mut buf, 1, NOW_MS).expect("fixture append");
    }
    let log_end_offset = log.log_end_offset();
    Fixture {
        _dir: dir,
        log,
        log_end_offset,
    }
}

/// Deterministic uniform-ish offsets/timestamps; a fixed sequence keeps runs comparable.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % bound.max(1)
    }
}

fn index_lookup(c: &mut Criterion) {
    let fx = fixture(FIXTURE_SEGMENT_BYTES);
    let mut group = c.benchmark_group("index_lookup");
    group.measurement_time(Duration::from_secs(3)).sample_size(20);
    group.throughput(Throughput::Elements(1));
    let mut rng = Lcg(1);
    // `max_bytes` of 1 with `min_one_batch`: exactly the batch holding the offset, so this is
    // segment choice + offset-index search + scan to the batch + the read of one batch.
    group.bench_function("read_one_batch_random_offset", |b| {
        b.iter(|| {
            let offset = rng.below(fx.log_end_offset as u64) as i64;
            fx.log
                .read(black_box(offset), 1, fx.log_end_offset, true)
                .expect("read in range")
        })
    });
    let span_ms = FIXTURE_BATCHES as u64 * 1000;
    group.bench_function("offset_for_timestamp_random", |b| {
        b.iter(|| {
            let ts = NOW_MS + rng.below(span_ms) as i64;
            fx.log.offset_for_timestamp(black_box(ts)).expect("timestamp lookup")
        })
    });
    group.finish();
}

fn fetch_read(c: &mut Criterion) {
    let fx = fixture(FETCH_SEGMENT_BYTES);
    let mut group = c.benchmark_group("fetch_read");
    group.measurement_time(Duration::from_secs(3)).sample_size(20);
    let probe = fx.log.read(0, ONE_MIB, fx.log_end_offset, true).expect("probe read");
    group.throughput(Throughput::Bytes(probe.records.len() as u64));
    // Sequential 1 MiB reads through the whole log, wrapping, as a consumer catching up
    // makes them. `reading_on` asks for the offset after the last read's batches, so it
    // starts where that read ended; `from_index` asks for the one after that, inside the
    // next batch, so it starts from the offset-index entry (a batch back) and searches.
    for (name, skip) in [("read_1MiB_reading_on", 0i64), ("read_1MiB_from_index", 1)] {
        let mut next = 0i64;
        group.bench_function(name, |b| {
            b.iter(|| {
                if next + 100_000 >= fx.log_end_offset {
                    next = 0;
                }
                let info = fx
                    .log
                    .read(black_box(next), ONE_MIB, fx.log_end_offset, true)
                    .expect("read in range");
                next = last_offset(&info.records) + 1 + skip;
                info
            })
        });
    }
    group.finish();
}

/// The last offset of the last batch in `records` (whole batches, at least one).
fn last_offset(records: &[u8]) -> i64 {
    batches(records)
        .last()
        .and_then(Result::ok)
        .map(|(h, _)| h.last_offset())
        .expect("a read in range returns a batch")
}

struct AppendState {
    _dir: tempfile::TempDir,
    log: PartitionLog,
    written_bytes: u64,
}

impl AppendState {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = open_log(dir.path(), LogConfig::default().segment_bytes);
        Self {
            _dir: dir,
            log,
            written_bytes: 0,
        }
    }
}

fn segment_append(c: &mut Criterion) {
    let (batch, _) = common::batch_16k(Compression::None, NOW_MS);
    let mut group = c.benchmark_group("segment_append");
    group.measurement_time(Duration::from_secs(3)).sample_size(20);
    group.throughput(Throughput::Bytes(batch.len() as u64));
    let mut state = AppendState::new();
    let mut buf = batch.to_vec();
    // Timed per call so the copy that restores the batch (append assigns offsets in place) and
    // the occasional fresh log are not counted.
    group.bench_function("append_as_leader_16KiB", |b| {
        b.iter_custom(|iters| {
            let mut elapsed = Duration::ZERO;
            for _ in 0..iters {
                if state.written_bytes >= APPEND_RESET_BYTES {
                    state = AppendState::new();
                }
                buf.copy_from_slice(&batch);
                let start = Instant::now();
                let info = state
                    .log
                    .append_as_leader(black_box(&mut buf), 1, NOW_MS)
                    .expect("append");
                elapsed += start.elapsed();
                state.written_bytes += info.size_bytes;
            }
            elapsed
        })
    });
    group.finish();
}

criterion_group!(benches, segment_append, index_lookup, fetch_read);
criterion_main!(benches);
