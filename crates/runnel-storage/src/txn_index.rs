//! Transaction index (`<20-digit base>.txnindex`) and end-transaction markers.
//!
//! Owns: the per-segment list of aborted transactions in Apache Kafka's on-disk format (34-byte
//! big-endian entries: version i16 = 0, producer id i64, first offset i64, last offset i64,
//! last stable offset i64), and the codec of Kafka's `EndTransactionMarker` control record
//! (key: version i16 = 0, type i16 with 0 = abort and 1 = commit; value: version i16 = 0,
//! coordinator epoch i32).
//!
//! Must never: decide whether a transaction aborted (the producer state does), or trust a file
//! whose size is not a whole number of entries.
//!
//! Invariants: an entry lives in the index of the segment holding its abort marker
//! (`last_offset`); entries are in marker order, so `last_offset` strictly increases; the file
//! exists only while it has entries (created on the first abort, removed when emptied). The
//! entries are also kept in memory (aborts are rare: 34 bytes each on disk).

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use runnel_protocol::records::{
    decode_records, encode_batch, split_batch, BatchBuilderParams, Compression, Record, RecordError,
};

use crate::error::{IoContext, StorageError};

pub(crate) const TXN_INDEX_SUFFIX: &str = "txnindex";
/// Bytes of one on-disk entry.
pub const ABORTED_TXN_BYTES: usize = 34;
const ENTRY_VERSION: i16 = 0;
/// Refuse to load transaction indexes larger than this (about 7.9 million aborts in a segment).
const MAX_TXN_INDEX_BYTES: u64 = 256 * 1024 * 1024;
/// Decompression bound when reading a control batch (a marker is one tiny record).
const MARKER_MAX_DECOMPRESSED_BYTES: usize = 64 * 1024;
const MARKER_VERSION: i16 = 0;
const ABORT_TYPE: i16 = 0;
const COMMIT_TYPE: i16 = 1;

/// One aborted transaction, as Fetch returns it to `read_committed` consumers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AbortedTxn {
    pub producer_id: i64,
    /// Offset of the transaction's first data batch in this partition.
    pub first_offset: i64,
    /// Offset of the abort marker.
    pub last_offset: i64,
    /// The last stable offset right after the abort was written.
    pub last_stable_offset: i64,
}

impl AbortedTxn {
    pub fn encode(&self) -> [u8; ABORTED_TXN_BYTES] {
        let mut out = [0u8; ABORTED_TXN_BYTES];
        out[0..2].copy_from_slice(&ENTRY_VERSION.to_be_bytes());
        out[2..10].copy_from_slice(&self.producer_id.to_be_bytes());
        out[10..18].copy_from_slice(&self.first_offset.to_be_bytes());
        out[18..26].copy_from_slice(&self.last_offset.to_be_bytes());
        out[26..34].copy_from_slice(&self.last_stable_offset.to_be_bytes());
        out
    }

    pub fn decode(buf: &[u8]) -> Result<Self, String> {
        if buf.len() != ABORTED_TXN_BYTES {
            return Err(format!("entry of {} bytes", buf.len()));
        }
        let i64_at = |at: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&buf[at..at + 8]);
            i64::from_be_bytes(b)
        };
        let version = i16::from_be_bytes([buf[0], buf[1]]);
        if version != ENTRY_VERSION {
            return Err(format!("unknown entry version {version}"));
        }
        Ok(Self {
            producer_id: i64_at(2),
            first_offset: i64_at(10),
            last_offset: i64_at(18),
            last_stable_offset: i64_at(26),
        })
    }
}

/// The aborted transactions of one segment.
#[derive(Debug)]
pub(crate) struct TxnIndex {
    path: PathBuf,
    /// Open only while the file exists.
    file: Option<File>,
    entries: Vec<AbortedTxn>,
}

pub(crate) fn txn_index_path(dir: &Path, base_offset: i64) -> PathBuf {
    dir.join(crate::segment::file_name(base_offset, TXN_INDEX_SUFFIX))
}

fn open_rw(path: &Path, create: bool) -> Result<File, StorageError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(create)
        .open(path)
        .at(path)
}

impl TxnIndex {
    /// An index with no entries and no file (a stale file at `path` is removed).
    pub(crate) fn create(path: PathBuf) -> Result<Self, StorageError> {
        crate::cleaner::remove_if_exists(&path)?;
        Ok(Self {
            path,
            file: None,
            entries: Vec::new(),
        })
    }

    /// Loads `path` if it exists. A file that is not a whole number of valid, ordered entries
    /// is `CorruptFile` (the caller drops it and rebuilds).
    pub(crate) fn open(path: PathBuf) -> Result<Self, StorageError> {
        let file = match OpenOptions::new().read(true).write(true).open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Self {
                    path,
                    file: None,
                    entries: Vec::new(),
                })
            }
            Err(e) => return Err(e).at(&path),
        };
        let size = file.metadata().at(&path)?.len();
        let corrupt = |reason: String| StorageError::CorruptFile {
            path: path.clone(),
            reason,
        };
        if size > MAX_TXN_INDEX_BYTES || size % ABORTED_TXN_BYTES as u64 != 0 {
            return Err(corrupt(format!("size {size} is not a whole number of entries")));
        }
        let mut buf = vec![0u8; size as usize];
        file.read_exact_at(&mut buf, 0).at(&path)?;
        let mut entries: Vec<AbortedTxn> = Vec::with_capacity(buf.len() / ABORTED_TXN_BYTES);
        for chunk in buf.chunks_exact(ABORTED_TXN_BYTES) {
            let e = AbortedTxn::decode(chunk).map_err(corrupt)?;
            if entries.last().is_some_and(|l| e.last_offset <= l.last_offset) || e.first_offset > e.last_offset {
                return Err(corrupt(format!("entry {e:?} out of order")));
            }
            entries.push(e);
        }
        Ok(Self {
            path,
            file: (!entries.is_empty()).then_some(file),
            entries,
        })
    }

    pub(crate) fn entries(&self) -> &[AbortedTxn] {
        &self.entries
    }

    /// Appends an entry (creating the file on the first one). Markers come in offset order, so
    /// an entry not after the last one means the log and its index disagree.
    pub(crate) fn append(&mut self, entry: AbortedTxn) -> Result<(), StorageError> {
        if let Some(last) = self.entries.last().filter(|l| entry.last_offset <= l.last_offset) {
            return Err(StorageError::CorruptFile {
                path: self.path.clone(),
                reason: format!("aborted txn {entry:?} is not after {last:?}"),
            });
        }
        if self.file.is_none() {
            self.file = Some(open_rw(&self.path, true)?);
        }
        let position = (self.entries.len() * ABORTED_TXN_BYTES) as u64;
        if let Some(file) = &self.file {
            file.write_all_at(&entry.encode(), position).at(&self.path)?;
        }
        self.entries.push(entry);
        Ok(())
    }

    /// Drops every entry whose marker is at or above `offset` (Kafka's `truncateTo`).
    pub(crate) fn truncate_to(&mut self, offset: i64) -> Result<(), StorageError> {
        let keep = self.entries.iter().take_while(|e| e.last_offset < offset).count();
        if keep == self.entries.len() {
            return Ok(());
        }
        self.entries.truncate(keep);
        if keep == 0 {
            self.file = None;
            return crate::cleaner::remove_if_exists(&self.path);
        }
        if let Some(file) = &self.file {
            file.set_len((keep * ABORTED_TXN_BYTES) as u64).at(&self.path)?;
        }
        Ok(())
    }

    pub(crate) fn flush(&self) -> Result<(), StorageError> {
        match &self.file {
            Some(f) => f.sync_data().at(&self.path),
            None => Ok(()),
        }
    }

    /// Kafka's `collectAbortedTxns`: entries overlapping `[start_offset, upper_bound_offset)`,
    /// and whether the search is complete (an entry's last stable offset reached the bound, so
    /// later segments cannot hold more).
    pub(crate) fn collect(&self, start_offset: i64, upper_bound_offset: i64) -> (Vec<AbortedTxn>, bool) {
        let mut out = Vec::new();
        for e in &self.entries {
            if e.last_offset >= start_offset && e.first_offset < upper_bound_offset {
                out.push(*e);
            }
            if e.last_stable_offset >= upper_bound_offset {
                return (out, true);
            }
        }
        (out, false)
    }
}

/// Writes `entries` to a new file at `path` (fsynced), or makes sure none exists when empty.
pub(crate) fn write_entries(path: &Path, entries: &[AbortedTxn]) -> Result<(), StorageError> {
    crate::cleaner::remove_if_exists(path)?;
    if entries.is_empty() {
        return Ok(());
    }
    let buf: Vec<u8> = entries.iter().flat_map(|e| e.encode()).collect();
    let file = File::create(path).at(path)?;
    file.write_all_at(&buf, 0).at(path)?;
    file.sync_all().at(path)
}

/// The content of an end-transaction marker (Kafka's `EndTransactionMarker`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndTxnMarker {
    /// COMMIT (true) or ABORT (false).
    pub commit: bool,
    pub coordinator_epoch: i32,
}

/// Builds the control batch of an end-transaction marker: attributes transactional + control,
/// the producer's id and epoch, base sequence -1, one record at `timestamp_ms`. Base offset and
/// partition leader epoch are left for the append to assign.
pub fn encode_end_txn_marker(
    producer_id: i64,
    producer_epoch: i16,
    marker: EndTxnMarker,
    timestamp_ms: i64,
) -> Result<Vec<u8>, RecordError> {
    let kind = if marker.commit { COMMIT_TYPE } else { ABORT_TYPE };
    let mut key = Vec::with_capacity(4);
    key.extend_from_slice(&MARKER_VERSION.to_be_bytes());
    key.extend_from_slice(&kind.to_be_bytes());
    let mut value = Vec::with_capacity(6);
    value.extend_from_slice(&MARKER_VERSION.to_be_bytes());
    value.extend_from_slice(&marker.coordinator_epoch.to_be_bytes());
    let record = Record {
        attributes: 0,
        timestamp_delta: 0,
        offset_delta: 0,
        key: Some(Bytes::from(key)),
        value: Some(Bytes::from(value)),
        headers: vec![],
    };
    let params = BatchBuilderParams {
        base_timestamp: timestamp_ms,
        producer_id,
        producer_epoch,
        base_sequence: -1,
        is_transactional: true,
        is_control: true,
        ..Default::default()
    };
    Ok(encode_batch(&params, &[record], Compression::None)?.to_vec())
}

/// The end-transaction marker carried by the control batch at the start of `batch`: `None` for a
/// data batch, an empty control batch (Kafka's cleaner leaves those) or another control type
/// (e.g. KRaft's leader change). Errors only for a malformed batch.
pub fn decode_end_txn_marker(batch: &[u8]) -> Result<Option<EndTxnMarker>, RecordError> {
    let (header, _) = split_batch(batch)?;
    if !header.is_control() {
        return Ok(None);
    }
    let records = decode_records(batch, MARKER_MAX_DECOMPRESSED_BYTES)?;
    let Some(record) = records.first() else {
        return Ok(None);
    };
    let key = record.key.as_deref().unwrap_or_default();
    if key.len() < 4 {
        return Err(RecordError::CorruptRecord("control record key shorter than 4 bytes"));
    }
    let commit = match i16::from_be_bytes([key[2], key[3]]) {
        ABORT_TYPE => false,
        COMMIT_TYPE => true,
        _ => return Ok(None),
    };
    let value = record.value.as_deref().unwrap_or_default();
    if value.len() < 6 {
        return Err(RecordError::CorruptRecord(
            "end transaction marker value shorter than 6 bytes",
        ));
    }
    let coordinator_epoch = i32::from_be_bytes([value[2], value[3], value[4], value[5]]);
    Ok(Some(EndTxnMarker {
        commit,
        coordinator_epoch,
    }))
}

/// For coordinators replaying a log: `Some(true)` for a COMMIT marker batch, `Some(false)` for
/// ABORT, `None` for anything else (including unreadable batches).
pub fn control_marker_type(batch: &[u8]) -> Option<bool> {
    decode_end_txn_marker(batch).ok().flatten().map(|m| m.commit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn entry(pid: i64, first: i64, last: i64, lso: i64) -> AbortedTxn {
        AbortedTxn {
            producer_id: pid,
            first_offset: first,
            last_offset: last,
            last_stable_offset: lso,
        }
    }

    #[test]
    fn file_round_trips_truncates_and_disappears_when_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = txn_index_path(dir.path(), 0);
        let mut idx = TxnIndex::create(path.clone()).unwrap();
        assert!(!path.exists(), "created lazily");
        idx.append(entry(1, 0, 5, 6)).unwrap();
        idx.append(entry(2, 3, 9, 10)).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 68);
        let loaded = TxnIndex::open(path.clone()).unwrap();
        assert_eq!(loaded.entries(), idx.entries());
        idx.truncate_to(9).unwrap();
        assert_eq!(idx.entries(), &[entry(1, 0, 5, 6)]);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 34);
        idx.truncate_to(0).unwrap();
        assert!(!path.exists());
    }

    #[test]
    fn torn_file_is_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let path = txn_index_path(dir.path(), 0);
        std::fs::write(&path, [0u8; 35]).unwrap();
        assert!(matches!(TxnIndex::open(path), Err(StorageError::CorruptFile { .. })));
    }

    #[test]
    fn collect_stops_at_the_bound() {
        let dir = tempfile::tempdir().unwrap();
        let mut idx = TxnIndex::create(txn_index_path(dir.path(), 0)).unwrap();
        idx.append(entry(1, 0, 5, 6)).unwrap();
        idx.append(entry(2, 7, 9, 10)).unwrap();
        idx.append(entry(3, 11, 20, 21)).unwrap();
        assert_eq!(idx.collect(6, 8), (vec![entry(2, 7, 9, 10)], true));
        assert_eq!(idx.collect(0, 100).0.len(), 3);
        assert!(!idx.collect(0, 100).1);
        assert_eq!(idx.collect(21, 100), (vec![], false));
    }

    #[test]
    fn markers_round_trip_and_data_batches_are_not_markers() {
        for commit in [true, false] {
            let m = EndTxnMarker {
                commit,
                coordinator_epoch: 7,
            };
            let b = encode_end_txn_marker(42, 3, m, 1000).unwrap();
            let (h, _) = split_batch(&b).unwrap();
            assert!(h.is_control() && h.is_transactional());
            assert_eq!((h.producer_id, h.producer_epoch, h.base_sequence), (42, 3, -1));
            assert_eq!(decode_end_txn_marker(&b).unwrap(), Some(m));
            assert_eq!(control_marker_type(&b), Some(commit));
        }
        let data = encode_batch(&BatchBuilderParams::default(), &[], Compression::None).unwrap();
        assert_eq!(control_marker_type(&data), None);
    }

    proptest! {
        #[test]
        fn entries_round_trip(pid in any::<i64>(), first in any::<i64>(), last in any::<i64>(), lso in any::<i64>()) {
            let e = entry(pid, first, last, lso);
            prop_assert_eq!(AbortedTxn::decode(&e.encode()).unwrap(), e);
        }

        #[test]
        fn decoding_arbitrary_marker_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode_end_txn_marker(&bytes);
        }
    }
}
