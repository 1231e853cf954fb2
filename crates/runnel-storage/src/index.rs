//! Kafka's sparse segment indexes, mmap'd.
//!
//! `.index`: 8-byte entries `(u32 relative offset, u32 position)`; `.timeindex`: 12-byte entries
//! `(i64 timestamp, u32 relative offset)`; both big-endian. The active segment's index files are
//! preallocated to `segment.index.bytes` and trimmed to their entries on roll and close.
//!
//! Invariants: entries are strictly increasing in offset (and in timestamp for the time index);
//! an index read from disk is never trusted before `check` passes — a failing one is rebuilt
//! from the log.

use std::path::{Path, PathBuf};

use crate::error::{IoContext, StorageError};
use crate::mmap::MappedFile;

const OFFSET_ENTRY_BYTES: usize = 8;
const TIME_ENTRY_BYTES: usize = 12;

/// A mapped file of fixed-width entries; `entries` of them are valid.
struct EntryFile {
    path: PathBuf,
    map: MappedFile,
    entries: usize,
    entry_bytes: usize,
}

impl EntryFile {
    /// Opens `path`; existing entries are the whole current length (trimmed on close). With
    /// `capacity_bytes` above that length the file is grown (preallocated) to it.
    fn open(path: &Path, entry_bytes: usize, capacity_bytes: Option<usize>) -> Result<Self, StorageError> {
        let existing = match std::fs::metadata(path) {
            Ok(m) => m.len() as usize,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => return Err(e).at(path),
        };
        if existing % entry_bytes != 0 {
            return Err(StorageError::CorruptFile {
                path: path.to_path_buf(),
                reason: format!("length {existing} is not a multiple of {entry_bytes}"),
            });
        }
        let capacity = capacity_bytes.map_or(existing, |c| c - c % entry_bytes).max(existing);
        let map = MappedFile::open(path, capacity).at(path)?;
        Ok(Self {
            path: path.to_path_buf(),
            map,
            entries: existing / entry_bytes,
            entry_bytes,
        })
    }

    fn entry(&self, i: usize) -> &[u8] {
        &self.map.as_slice()[i * self.entry_bytes..(i + 1) * self.entry_bytes]
    }

    fn is_full(&self) -> bool {
        (self.entries + 1) * self.entry_bytes > self.map.len_bytes()
    }

    fn push(&mut self, entry: &[u8]) {
        debug_assert!(!self.is_full());
        let at = self.entries * self.entry_bytes;
        self.map.as_mut_slice()[at..at + self.entry_bytes].copy_from_slice(entry);
        self.entries += 1;
    }

    /// Largest `i` with `key(i) <= target` (entries are sorted by `key`).
    fn floor(&self, target: i64, key: impl Fn(&[u8]) -> i64) -> Option<usize> {
        let (mut lo, mut hi) = (0usize, self.entries);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if key(self.entry(mid)) <= target {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo.checked_sub(1)
    }

    fn resize_to(&mut self, capacity_bytes: usize) -> Result<(), StorageError> {
        let capacity = (capacity_bytes - capacity_bytes % self.entry_bytes).max(self.entries * self.entry_bytes);
        self.map.resize(capacity).at(&self.path)
    }

    fn flush(&self) -> Result<(), StorageError> {
        self.map.flush().at(&self.path)
    }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn i64_at(b: &[u8], at: usize) -> i64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    i64::from_be_bytes(x)
}

fn corrupt(path: &Path, reason: String) -> StorageError {
    StorageError::CorruptFile {
        path: path.to_path_buf(),
        reason,
    }
}

/// Offset index: absolute offset -> byte position in the segment's `.log`.
pub(crate) struct OffsetIndex {
    file: EntryFile,
    base_offset: i64,
}

impl OffsetIndex {
    pub(crate) fn open(path: &Path, base_offset: i64, capacity_bytes: Option<usize>) -> Result<Self, StorageError> {
        Ok(Self {
            file: EntryFile::open(path, OFFSET_ENTRY_BYTES, capacity_bytes)?,
            base_offset,
        })
    }

    fn get(&self, i: usize) -> (i64, u32) {
        let e = self.file.entry(i);
        (self.base_offset + i64::from(u32_at(e, 0)), u32_at(e, 4))
    }

    pub(crate) fn entries(&self) -> usize {
        self.file.entries
    }

    pub(crate) fn is_full(&self) -> bool {
        self.file.is_full()
    }

    pub(crate) fn last(&self) -> Option<(i64, u32)> {
        self.file.entries.checked_sub(1).map(|i| self.get(i))
    }

    /// Appends `(offset, position)` if it moves strictly forward and the index has room.
    pub(crate) fn append(&mut self, offset: i64, position: u32) {
        if self.is_full() || self.last().is_some_and(|(o, p)| offset <= o || position <= p) {
            return;
        }
        let Ok(relative) = u32::try_from(offset - self.base_offset) else {
            return;
        };
        let mut e = [0u8; OFFSET_ENTRY_BYTES];
        e[..4].copy_from_slice(&relative.to_be_bytes());
        e[4..].copy_from_slice(&position.to_be_bytes());
        self.file.push(&e);
    }

    /// The entry with the largest offset `<= target`, or `(base_offset, 0)`.
    pub(crate) fn lookup(&self, target: i64) -> (i64, u32) {
        let base = self.base_offset;
        self.file
            .floor(target, |e| base + i64::from(u32_at(e, 0)))
            .map_or((base, 0), |i| self.get(i))
    }

    /// Drops every entry with offset `>= offset`.
    pub(crate) fn truncate_to(&mut self, offset: i64) {
        let base = self.base_offset;
        self.file.entries = self
            .file
            .floor(offset - 1, |e| base + i64::from(u32_at(e, 0)))
            .map_or(0, |i| i + 1);
    }

    pub(crate) fn clear(&mut self) {
        self.file.entries = 0;
    }

    /// Checks entries strictly increase and stay inside a log of `log_size_bytes`.
    pub(crate) fn check(&self, log_size_bytes: u64) -> Result<(), StorageError> {
        let mut prev: Option<(i64, u32)> = None;
        for i in 0..self.file.entries {
            let (o, p) = self.get(i);
            let ordered = prev.is_none_or(|(po, pp)| o > po && p > pp);
            if !ordered || u64::from(p) >= log_size_bytes {
                return Err(corrupt(&self.file.path, format!("bad entry {i}: ({o}, {p})")));
            }
            prev = Some((o, p));
        }
        Ok(())
    }

    pub(crate) fn resize(&mut self, capacity_bytes: usize) -> Result<(), StorageError> {
        self.file.resize_to(capacity_bytes)
    }

    pub(crate) fn trim(&mut self) -> Result<(), StorageError> {
        self.file.resize_to(0)
    }

    pub(crate) fn flush(&self) -> Result<(), StorageError> {
        self.file.flush()
    }
}

/// Time index: largest timestamp so far -> offset of the batch that carried it.
pub(crate) struct TimeIndex {
    file: EntryFile,
    base_offset: i64,
}

impl TimeIndex {
    pub(crate) fn open(path: &Path, base_offset: i64, capacity_bytes: Option<usize>) -> Result<Self, StorageError> {
        Ok(Self {
            file: EntryFile::open(path, TIME_ENTRY_BYTES, capacity_bytes)?,
            base_offset,
        })
    }

    fn get(&self, i: usize) -> (i64, i64) {
        let e = self.file.entry(i);
        (i64_at(e, 0), self.base_offset + i64::from(u32_at(e, 8)))
    }

    pub(crate) fn is_full(&self) -> bool {
        self.file.is_full()
    }

    pub(crate) fn last(&self) -> Option<(i64, i64)> {
        self.file.entries.checked_sub(1).map(|i| self.get(i))
    }

    /// Appends `(timestamp, offset)` when the timestamp is newer than the last entry's.
    pub(crate) fn maybe_append(&mut self, timestamp: i64, offset: i64) {
        if self.is_full() {
            return;
        }
        if self.last().is_some_and(|(t, o)| timestamp <= t || offset < o) {
            return;
        }
        let Ok(relative) = u32::try_from(offset - self.base_offset) else {
            return;
        };
        let mut e = [0u8; TIME_ENTRY_BYTES];
        e[..8].copy_from_slice(&timestamp.to_be_bytes());
        e[8..].copy_from_slice(&relative.to_be_bytes());
        self.file.push(&e);
    }

    /// The entry with the largest timestamp strictly below `target`, or `None`. Strictly below,
    /// so that every record with a timestamp `>= target` lies after the entry's offset.
    pub(crate) fn lookup_below(&self, target: i64) -> Option<(i64, i64)> {
        self.file
            .floor(target.saturating_sub(1), |e| i64_at(e, 0))
            .map(|i| self.get(i))
    }

    pub(crate) fn truncate_to(&mut self, offset: i64) {
        let keep = (0..self.file.entries).take_while(|i| self.get(*i).1 < offset).count();
        self.file.entries = keep;
    }

    pub(crate) fn clear(&mut self) {
        self.file.entries = 0;
    }

    /// Checks timestamps strictly increase and offsets never decrease nor pass `next_offset`.
    pub(crate) fn check(&self, next_offset: i64) -> Result<(), StorageError> {
        let mut prev: Option<(i64, i64)> = None;
        for i in 0..self.file.entries {
            let (t, o) = self.get(i);
            let ordered = prev.is_none_or(|(pt, po)| t > pt && o >= po);
            if !ordered || o >= next_offset {
                return Err(corrupt(&self.file.path, format!("bad entry {i}: ({t}, {o})")));
            }
            prev = Some((t, o));
        }
        Ok(())
    }

    pub(crate) fn resize(&mut self, capacity_bytes: usize) -> Result<(), StorageError> {
        self.file.resize_to(capacity_bytes)
    }

    pub(crate) fn trim(&mut self) -> Result<(), StorageError> {
        self.file.resize_to(0)
    }

    pub(crate) fn flush(&self) -> Result<(), StorageError> {
        self.file.flush()
    }

    /// Bytes the valid entries occupy.
    pub(crate) fn used_bytes(&self) -> usize {
        self.file.entries * self.file.entry_bytes
    }
}
