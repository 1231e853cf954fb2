//! Shared fixtures for the criterion micro-benchmarks: record batches shaped like the issue's
//! load profile (100-byte records in 16 KiB batches). Never touches a broker; only builds bytes.

use bytes::Bytes;
use runnel_protocol::records::{encode_batch, BatchBuilderParams, Compression, Record};

/// Produce batches in the targets are 16 KiB.
pub const BATCH_TARGET_BYTES: usize = 16 * 1024;
/// Record value size in the first target.
pub const RECORD_VALUE_BYTES: usize = 100;

/// Deterministic, JSON-like values: a repeated structure with a varying id and a random tail,
/// so lz4 (which only finds repeats, no entropy coding) compresses them roughly as it would real
/// event payloads instead of either collapsing them or leaving them as-is.
fn value_bytes(seed: u64, len: usize) -> Bytes {
    let mut out = format!(
        "{{\"id\":{seed:08},\"user\":\"user-{:04}\",\"event\":\"click\",\"tail\":\"",
        seed % 977
    )
    .into_bytes();
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.push(b'a' + (state % 26) as u8);
    }
    out.truncate(len);
    Bytes::from(out)
}

fn records(count: usize) -> Vec<Record> {
    (0..count)
        .map(|i| Record {
            attributes: 0,
            timestamp_delta: i as i64,
            offset_delta: i as i32,
            key: None,
            value: Some(value_bytes(i as u64, RECORD_VALUE_BYTES)),
            headers: Vec::new(),
        })
        .collect()
}

/// One batch of `RECORD_VALUE_BYTES`-byte records whose *uncompressed* size is as close to
/// `BATCH_TARGET_BYTES` as whole records allow (a client fills `batch.size` before compressing).
/// Returns the encoded batch and its record count.
pub fn batch_16k(compression: Compression, base_timestamp_ms: i64) -> (Bytes, usize) {
    let params = BatchBuilderParams {
        base_timestamp: base_timestamp_ms,
        ..BatchBuilderParams::default()
    };
    let uncompressed_of = |n: usize| {
        encode_batch(&params, &records(n), Compression::None)
            .map(|b| b.len())
            .expect("uncompressed fixture encodes")
    };
    let mut count = BATCH_TARGET_BYTES / (RECORD_VALUE_BYTES + 16);
    while uncompressed_of(count + 1) <= BATCH_TARGET_BYTES {
        count += 1;
    }
    let batch = encode_batch(&params, &records(count), compression).expect("fixture batch encodes");
    (batch, count)
}
