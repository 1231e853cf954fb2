//! Record-batch validation and offset assignment on the produce path: the per-request work a
//! leader does before a batch reaches the log. Measures CPU only; no I/O.

mod common;

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use runnel_protocol::records::{assign_offsets, validate_batches, Compression};

fn validate(c: &mut Criterion) {
    let mut group = c.benchmark_group("validate_batches_16KiB");
    group.measurement_time(Duration::from_secs(3)).sample_size(20);
    for (name, compression) in [("none", Compression::None), ("lz4", Compression::Lz4)] {
        let (batch, record_count) = common::batch_16k(compression, 1_700_000_000_000);
        // Printed once so the README can state what was measured.
        eprintln!(
            "fixture {name}: {record_count} records, {} bytes on the wire",
            batch.len()
        );
        group.throughput(Throughput::Elements(record_count as u64));
        group.bench_function(name, |b| {
            b.iter(|| validate_batches(black_box(&batch)).expect("fixture batch is valid"))
        });
    }
    group.finish();
}

fn assign(c: &mut Criterion) {
    let mut group = c.benchmark_group("assign_offsets_16KiB");
    group.measurement_time(Duration::from_secs(3)).sample_size(20);
    let (batch, record_count) = common::batch_16k(Compression::None, 1_700_000_000_000);
    let mut buf = batch.to_vec();
    group.throughput(Throughput::Elements(record_count as u64));
    // Assignment rewrites base offset and leader epoch in place, so the same buffer can be
    // reassigned every iteration without rebuilding it.
    let mut next_offset = 0i64;
    group.bench_function("none", |b| {
        b.iter(|| {
            next_offset += record_count as i64;
            assign_offsets(black_box(&mut buf), next_offset, 7).expect("fixture batch is valid")
        })
    });
    group.finish();
}

criterion_group!(benches, validate, assign);
criterion_main!(benches);
