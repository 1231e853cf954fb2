//! Helpers shared by the storage tests: batches built with the protocol crate's encoder.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use bytes::Bytes;
use runnel_protocol::records::{batches, encode_batch, BatchBuilderParams, BatchHeader, Compression, Record};
use runnel_storage::{LogConfig, PartitionLog};

pub fn batch_with(count: usize, base_timestamp: i64, value_bytes: usize, compression: Compression) -> Vec<u8> {
    let records: Vec<Record> = (0..count)
        .map(|i| Record {
            attributes: 0,
            timestamp_delta: i as i64,
            offset_delta: i as i32,
            key: Some(Bytes::from(format!("k{i}"))),
            value: Some(Bytes::from(vec![(i % 251) as u8; value_bytes])),
            headers: vec![],
        })
        .collect();
    let params = BatchBuilderParams {
        base_timestamp,
        ..Default::default()
    };
    encode_batch(&params, &records, compression).unwrap().to_vec()
}

pub fn batch(count: usize, base_timestamp: i64) -> Vec<u8> {
    batch_with(count, base_timestamp, 20, Compression::None)
}

pub fn small_config() -> LogConfig {
    LogConfig {
        segment_bytes: 4096,
        index_interval_bytes: 256,
        segment_index_bytes: 4096,
        retention_ms: -1,
        file_delete_delay_ms: 0,
        ..LogConfig::default()
    }
}

pub fn partition_dir(root: &Path) -> PathBuf {
    root.join("orders-0")
}

pub fn open(dir: &Path, config: LogConfig) -> PartitionLog {
    PartitionLog::open(dir, None, config, 0).unwrap()
}

/// Headers of every batch in `buf`, asserting they are whole and valid.
pub fn headers(buf: &[u8]) -> Vec<BatchHeader> {
    batches(buf).map(|b| b.expect("whole batches only").0).collect()
}

/// Reads the whole log from its start, batch after batch.
pub fn read_all(log: &PartitionLog) -> Vec<BatchHeader> {
    let mut out = Vec::new();
    let mut offset = log.log_start_offset();
    while offset < log.log_end_offset() {
        let info = log.read(offset, 1 << 20, i64::MAX, true).unwrap();
        let hs = headers(&info.records);
        assert!(!hs.is_empty(), "read at {offset} returned nothing before the log end");
        offset = hs.last().unwrap().last_offset() + 1;
        out.extend(hs);
    }
    out
}
