//! The log cleaner (Kafka's log compaction) for one partition.
//!
//! Owns: choosing what to clean (`min.cleanable.dirty.ratio`, `min.compaction.lag.ms`,
//! `max.compaction.lag.ms`, due tombstone horizons), the bounded offset map (key hash -> latest
//! offset), rewriting segments into `.cleaned` files and swapping them in, and the recovery of an
//! interrupted swap.
//!
//! Must never: touch the active segment or offsets at or above the bound the caller gives (the
//! high watermark / first unstable offset), change an offset, drop control batches, or hold the
//! partition lock while reading or writing segment data.
//!
//! How cleaning runs without blocking appends and fetches (three phases):
//! 1. `PartitionLog::plan_clean` (partition lock held, no data I/O): picks the segments and takes
//!    `Arc<File>` handles to them. Non-active segments are immutable, so the handles stay valid
//!    even if retention renames the files meanwhile.
//! 2. `CleanPlan::execute` (no lock): builds the offset map over the dirty section and writes one
//!    `<base>.log.cleaned` file per group of segments (grouped so the originals fit in
//!    `segment.bytes`) with its `.index.cleaned` / `.timeindex.cleaned`, all fsynced.
//! 3. `PartitionLog::finish_clean` (lock held, short: renames plus an index check, no data
//!    scan): checks the planned segments are still there unchanged (else discards the work),
//!    then swaps each group in Kafka's order: rename `.cleaned` -> `<base>.log.<end>.swap` and
//!    fsync the directory (the commit point), rename the old segments to `.deleted`, move the
//!    new indexes in, rename the swap file to `<base>.log`. Readers take the same lock, so they
//!    never see a half-swapped log; old files stay open (and readable) until their handles drop.
//!
//! Crash safety: a `.cleaned` file is garbage (deleted on open). A `.swap` file means the swap
//! was committed: `complete_interrupted_swaps` (run by open before anything else) deletes every
//! old segment whose base lies in the half-open range named by the swap file and renames the swap
//! to `.log`, exactly what the interrupted swap would have done, and drops the indexes at its
//! base so the segment is rescanned (and its `.txnindex` rebuilt). Old data is only removed after
//! the swap file is durable, so no crash point loses data.
//!
//! Semantics follow Kafka: for each key only the record with the latest offset survives; keyless
//! records and control batches are kept; a retained batch keeps its base offset, last offset
//! delta, producer fields and codec (records keep their offsets, so gaps appear); a batch whose
//! records all go is dropped unless it is the last batch of a producer still in the producer
//! state (then an empty batch keeps it); tombstones get a delete horizon
//! (`now + delete.retention.ms`, stored as the base timestamp with attribute bit 6, as Kafka 3+)
//! the first time they are cleaned and are removed by the first clean after that horizon.
//!
//! Transactions (Kafka's `CleanedTransactionMetadata`, simplified): nothing at or above the
//! first unstable offset is cleaned, so every transactional batch cleaned belongs to a completed
//! transaction. Batches of aborted transactions (known from the `.txnindex` files: producer id
//! and `[first offset, marker offset]`) never enter the offset map and lose all their records
//! (an empty batch stays if it is its producer's last); committed transactional data is
//! compacted like any other. Every control batch is kept verbatim (Kafka eventually drops
//! markers whose data is gone; we never do), so a cleaned segment's `.txnindex` is the
//! concatenation of its sources' and is written beside the cleaned log and swapped in with it.

use std::collections::HashMap;
use std::fs::File;
use std::hash::{Hash, Hasher};
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use runnel_protocol::records::{
    compute_crc, decode_records, encode_batch, parse_header, BatchBuilderParams, BatchHeader, Compression, Record,
    ATTRIBUTES_OFFSET, BATCH_HEADER_BYTES, CRC_OFFSET, LAST_OFFSET_DELTA_OFFSET, NO_TIMESTAMP,
};

use crate::checkpoint::sync_dir;
use crate::error::{IoContext, StorageError};
use crate::index::{OffsetIndex, TimeIndex};
use crate::log::PartitionLog;
use crate::segment::{
    file_name, Segment, INDEX_SUFFIX, INDEX_SUFFIXES, LOG_SUFFIX, SEGMENT_SUFFIXES, TIME_INDEX_SUFFIX,
};
use crate::txn_index::{write_entries, AbortedTxn, TXN_INDEX_SUFFIX};

/// Kafka's `DELETE_HORIZON_FLAG_MASK`: the base timestamp holds the tombstones' delete horizon.
const DELETE_HORIZON_BIT: i16 = 0x40;
/// Bytes Kafka's SkimpyOffsetMap spends per key (16-byte hash + 8-byte offset).
const OFFSET_MAP_ENTRY_BYTES: usize = 24;
/// Kafka's map load factor (`log.cleaner.io.buffer.load.factor`).
const OFFSET_MAP_LOAD_FACTOR: f64 = 0.9;
const CLEANED_SUFFIX: &str = ".cleaned";
const SWAP_SUFFIX: &str = ".swap";

/// Cleaner-wide settings (Kafka's `log.cleaner.*` broker configs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CleanerConfig {
    /// `log.cleaner.dedupe.buffer.size`: bounds the keys held by one pass's offset map.
    pub dedupe_buffer_bytes: usize,
    /// Bound on one batch's decompressed size while cleaning.
    pub max_batch_decompressed_bytes: usize,
}

impl Default for CleanerConfig {
    fn default() -> Self {
        Self {
            dedupe_buffer_bytes: 128 * 1024 * 1024,
            max_batch_decompressed_bytes: 64 * 1024 * 1024,
        }
    }
}

impl CleanerConfig {
    /// Keys one pass may hold.
    pub fn max_keys(&self) -> usize {
        ((self.dedupe_buffer_bytes / OFFSET_MAP_ENTRY_BYTES) as f64 * OFFSET_MAP_LOAD_FACTOR).max(1.0) as usize
    }
}

/// What one cleaning pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CleanOutcome {
    /// False when nothing was cleanable (or the log changed under the pass and it was discarded).
    pub cleaned: bool,
    /// The dirty section this pass covered: `[first_dirty_offset, end_offset)`.
    pub first_dirty_offset: i64,
    pub end_offset: i64,
    pub bytes_before: u64,
    pub bytes_after: u64,
    pub segments_before: usize,
    pub segments_after: usize,
    pub records_removed: u64,
}

/// Cleaner bookkeeping kept by a `PartitionLog`.
#[derive(Debug, Clone, Default)]
pub(crate) struct CleanerState {
    /// Everything below is clean (Kafka's cleaner checkpoint). Always a segment base or 0.
    pub(crate) first_dirty_offset: i64,
    /// Earliest delete horizon of a tombstone still in the log, if one is known.
    pub(crate) next_horizon_ms: Option<i64>,
}

/// One immutable segment as the cleaner sees it.
#[derive(Debug, Clone)]
pub(crate) struct SourceSegment {
    pub(crate) base_offset: i64,
    /// Base offset of the next segment: this one covers `[base_offset, next_offset)`.
    pub(crate) next_offset: i64,
    pub(crate) size_bytes: u64,
    pub(crate) file: Arc<File>,
    pub(crate) path: PathBuf,
    /// The segment's `.txnindex` entries (kept as they are: markers are never removed).
    pub(crate) aborted: Vec<AbortedTxn>,
}

/// Consecutive segments rewritten into one.
#[derive(Debug, Clone)]
pub(crate) struct Group {
    pub(crate) segments: Vec<SourceSegment>,
    /// Base offset of the segment after the group: the group covers `[first base, end_offset)`.
    pub(crate) end_offset: i64,
}

/// Phase 1's result: what to clean, with open handles (see the module doc).
#[derive(Debug)]
pub struct CleanPlan {
    pub(crate) dir: PathBuf,
    pub(crate) groups: Vec<Group>,
    /// Segments of the dirty section, oldest first, for the offset map.
    pub(crate) dirty: Vec<SourceSegment>,
    pub(crate) first_dirty_offset: i64,
    pub(crate) delete_retention_ms: i64,
    /// Producer id -> last offset of its last batch (those batches are kept, possibly empty).
    pub(crate) producer_last_offsets: HashMap<i64, i64>,
    /// Producer id -> `(first offset, marker offset)` of its aborted transactions that reach
    /// the cleaned range.
    pub(crate) aborted_txns: HashMap<i64, Vec<(i64, i64)>>,
    pub(crate) bytes_before: u64,
    pub(crate) segments_before: usize,
    /// Preallocated size of the cleaned segments' indexes while they are written.
    pub(crate) index_bytes: usize,
    pub(crate) index_interval_bytes: u32,
}

/// A cleaned group waiting to be swapped in.
#[derive(Debug)]
pub(crate) struct CleanedGroup {
    pub(crate) group: Group,
    pub(crate) cleaned_path: PathBuf,
}

impl CleanedGroup {
    fn remove_files(&self) {
        let base = self.group.first_base();
        let _ = std::fs::remove_file(&self.cleaned_path);
        for suffix in INDEX_SUFFIXES {
            let _ = std::fs::remove_file(cleaned_index_path(&self.cleaned_path, base, suffix));
        }
    }
}

/// `<base>.index.cleaned` / `<base>.timeindex.cleaned` beside the cleaned log.
fn cleaned_index_path(cleaned_log: &Path, base: i64, suffix: &str) -> PathBuf {
    cleaned_log.with_file_name(format!("{}{CLEANED_SUFFIX}", file_name(base, suffix)))
}

/// The indexes of a segment being written by the cleaner, built as `Segment`'s recovery scan
/// would build them, so the swap can trust them instead of rescanning under the lock.
struct IndexBuilder {
    offset: OffsetIndex,
    time: TimeIndex,
    interval_bytes: u64,
    last_entry_position: u64,
    max_timestamp: i64,
    offset_of_max_timestamp: i64,
}

impl IndexBuilder {
    fn create(cleaned_log: &Path, base: i64, capacity_bytes: usize, interval_bytes: u32) -> Result<Self, StorageError> {
        let offset_path = cleaned_index_path(cleaned_log, base, INDEX_SUFFIX);
        let time_path = cleaned_index_path(cleaned_log, base, TIME_INDEX_SUFFIX);
        remove_if_exists(&offset_path)?;
        remove_if_exists(&time_path)?;
        Ok(Self {
            offset: OffsetIndex::open(&offset_path, base, Some(capacity_bytes))?,
            time: TimeIndex::open(&time_path, base, Some(capacity_bytes))?,
            interval_bytes: u64::from(interval_bytes),
            last_entry_position: 0,
            max_timestamp: NO_TIMESTAMP,
            offset_of_max_timestamp: base,
        })
    }

    /// Notes a batch written at `position`.
    fn note(&mut self, batch: &[u8], position: u64) -> Result<(), StorageError> {
        let h = parse_header(batch)?;
        if h.max_timestamp > self.max_timestamp {
            (self.max_timestamp, self.offset_of_max_timestamp) = (h.max_timestamp, h.last_offset());
        }
        if position - self.last_entry_position > self.interval_bytes {
            if let Ok(p) = u32::try_from(position) {
                self.offset.append(h.last_offset(), p);
                self.time.maybe_append(self.max_timestamp, self.offset_of_max_timestamp);
            }
            self.last_entry_position = position;
        }
        Ok(())
    }

    /// Adds the final time entry, trims both files to their entries and syncs them.
    fn finish(mut self) -> Result<(), StorageError> {
        if self.time.is_full() {
            let grown = self.time.used_bytes() + 12;
            self.time.resize(grown)?;
        }
        if self.max_timestamp >= 0 {
            self.time.maybe_append(self.max_timestamp, self.offset_of_max_timestamp);
        }
        self.offset.trim()?;
        self.time.trim()?;
        self.offset.flush()?;
        self.time.flush()
    }
}

/// Phase 2's result: the cleaned files, not yet part of the log.
#[derive(Debug)]
pub struct CleanedLog {
    pub(crate) dir: PathBuf,
    pub(crate) groups: Vec<CleanedGroup>,
    pub(crate) first_dirty_offset: i64,
    /// The pass covered the dirty section up to here (exclusive); a segment base.
    pub(crate) end_offset: i64,
    pub(crate) next_horizon_ms: Option<i64>,
    pub(crate) records_removed: u64,
    pub(crate) bytes_before: u64,
    pub(crate) segments_before: usize,
}

impl CleanedLog {
    /// Removes the `.cleaned` files (the pass is abandoned).
    pub(crate) fn discard(&self) {
        for g in &self.groups {
            g.remove_files();
        }
    }
}

/// 128-bit hash of a key (Kafka uses MD5's 16 bytes); two keyed SipHash runs.
fn key_hash(key: &[u8]) -> u128 {
    let half = |salt: u8| {
        #[allow(deprecated)] // SipHasher is the stable, seedable, deterministic SipHash
        let mut h = std::hash::SipHasher::new_with_keys(0x5275_6e6e_656c_0000 | u64::from(salt), 0x0063_6c65_616e_6572);
        key.hash(&mut h);
        h.finish()
    };
    (u128::from(half(1)) << 64) | u128::from(half(2))
}

/// Key hash -> offset of the key's latest record, holding at most `max_keys` keys.
pub(crate) struct OffsetMap {
    map: HashMap<u128, i64>,
    max_keys: usize,
}

impl OffsetMap {
    pub(crate) fn new(max_keys: usize) -> Self {
        Self {
            map: HashMap::new(),
            max_keys,
        }
    }

    /// Records `offset` for `key`; false (nothing stored) if the key is new and the map is full.
    fn put(&mut self, key: &[u8], offset: i64, allow_growth: bool) -> bool {
        let hash = key_hash(key);
        if let Some(o) = self.map.get_mut(&hash) {
            *o = (*o).max(offset);
            return true;
        }
        if self.map.len() >= self.max_keys && !allow_growth {
            return false;
        }
        self.map.insert(hash, offset);
        true
    }

    fn get(&self, key: &[u8]) -> Option<i64> {
        self.map.get(&key_hash(key)).copied()
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }
}

/// Walks the whole batches of an immutable segment through its file handle.
struct BatchReader<'a> {
    segment: &'a SourceSegment,
    position: u64,
}

impl<'a> BatchReader<'a> {
    fn new(segment: &'a SourceSegment) -> Self {
        Self { segment, position: 0 }
    }

    fn corrupt(&self, reason: String) -> StorageError {
        StorageError::CorruptSegment {
            path: self.segment.path.clone(),
            position: self.position,
            reason,
        }
    }

    /// The next whole, CRC-checked batch, or `None` at the end.
    fn next_batch(&mut self) -> Result<Option<(BatchHeader, Vec<u8>)>, StorageError> {
        let remaining = self.segment.size_bytes.saturating_sub(self.position);
        if remaining == 0 {
            return Ok(None);
        }
        if remaining < BATCH_HEADER_BYTES as u64 {
            return Err(self.corrupt("trailing bytes shorter than a batch header".into()));
        }
        let mut head = [0u8; BATCH_HEADER_BYTES];
        let path = &self.segment.path;
        self.segment.file.read_exact_at(&mut head, self.position).at(path)?;
        let header = parse_header(&head).map_err(|e| self.corrupt(e.to_string()))?;
        let total = header.total_size_bytes();
        if total as u64 > remaining {
            return Err(self.corrupt("batch extends past the end of the segment".into()));
        }
        let mut batch = vec![0u8; total];
        self.segment.file.read_exact_at(&mut batch, self.position).at(path)?;
        if compute_crc(&batch) != header.crc {
            return Err(self.corrupt("CRC mismatch".into()));
        }
        self.position += total as u64;
        Ok(Some((header, batch)))
    }
}

fn delete_horizon(h: &BatchHeader) -> Option<i64> {
    (h.attributes & DELETE_HORIZON_BIT != 0).then_some(h.base_timestamp)
}

impl CleanPlan {
    /// Phase 2 (no lock): builds the offset map and writes the `.cleaned` files.
    pub fn execute(self, now_ms: i64, config: &CleanerConfig) -> Result<CleanedLog, StorageError> {
        let (map, end_offset) = self.build_offset_map(config)?;
        let mut out = CleanedLog {
            dir: self.dir.clone(),
            groups: Vec::new(),
            first_dirty_offset: self.first_dirty_offset,
            end_offset,
            next_horizon_ms: None,
            records_removed: 0,
            bytes_before: self.bytes_before,
            segments_before: self.segments_before,
        };
        for group in regroup_below(&self.groups, end_offset) {
            match self.clean_group(&group, &map, now_ms, config, &mut out) {
                Ok(path) => out.groups.push(CleanedGroup {
                    group,
                    cleaned_path: path,
                }),
                Err(e) => {
                    out.discard();
                    return Err(e);
                }
            }
        }
        Ok(out)
    }

    /// Indexes the dirty section's keys, stopping at the first segment that does not fit (the
    /// first one always does). Returns the map and the offset it covers up to.
    fn build_offset_map(&self, config: &CleanerConfig) -> Result<(OffsetMap, i64), StorageError> {
        let mut map = OffsetMap::new(config.max_keys());
        let mut end = self.first_dirty_offset;
        for (i, segment) in self.dirty.iter().enumerate() {
            let mut reader = BatchReader::new(segment);
            let mut full = false;
            while let Some((h, batch)) = reader.next_batch()? {
                if h.is_control() || self.is_aborted(&h) {
                    continue;
                }
                for r in decode_records(&batch, config.max_batch_decompressed_bytes)? {
                    let Some(key) = r.key.as_deref() else { continue };
                    let offset = h.base_offset + i64::from(r.offset_delta);
                    if !map.put(key, offset, i == 0) {
                        full = true;
                        break;
                    }
                }
                if full {
                    break;
                }
            }
            // Keys already added from a partly indexed segment point at records that stay in
            // the log, so using them to drop older records is still correct.
            if full {
                break;
            }
            end = segment.next_offset;
        }
        Ok((map, end))
    }

    fn clean_group(
        &self,
        group: &Group,
        map: &OffsetMap,
        now_ms: i64,
        config: &CleanerConfig,
        out: &mut CleanedLog,
    ) -> Result<PathBuf, StorageError> {
        let base = group.segments.first().map_or(group.end_offset, |s| s.base_offset);
        let path = self
            .dir
            .join(format!("{}{CLEANED_SUFFIX}", file_name(base, LOG_SUFFIX)));
        let file = File::create(&path).at(&path)?;
        let mut writer = BufWriter::with_capacity(1 << 20, file);
        let mut indexes = IndexBuilder::create(&path, base, self.index_bytes, self.index_interval_bytes)?;
        let mut position = 0u64;
        for segment in &group.segments {
            let mut reader = BatchReader::new(segment);
            while let Some((h, batch)) = reader.next_batch()? {
                let filtered = self.filter_batch(&h, &batch, map, now_ms, config)?;
                out.records_removed += filtered.removed;
                if let Some(hz) = filtered.horizon_ms {
                    out.next_horizon_ms = Some(out.next_horizon_ms.map_or(hz, |o| o.min(hz)));
                }
                let bytes = match &filtered.bytes {
                    Retained::Verbatim => &batch,
                    Retained::Rewritten(bytes) => bytes,
                    Retained::Dropped => continue,
                };
                writer.write_all(bytes).at(&path)?;
                indexes.note(bytes, position)?;
                position += bytes.len() as u64;
            }
        }
        let file = writer.into_inner().map_err(|e| e.into_error()).at(&path)?;
        file.sync_all().at(&path)?;
        indexes.finish()?;
        let aborted: Vec<AbortedTxn> = group.segments.iter().flat_map(|s| s.aborted.iter().copied()).collect();
        write_entries(&cleaned_index_path(&path, base, TXN_INDEX_SUFFIX), &aborted)?;
        Ok(path)
    }

    /// A data batch of an aborted transaction: its producer aborted a transaction whose range
    /// holds the batch (one producer's transactions never overlap).
    fn is_aborted(&self, h: &BatchHeader) -> bool {
        h.is_transactional()
            && !h.is_control()
            && self
                .aborted_txns
                .get(&h.producer_id)
                .is_some_and(|ranges| ranges.iter().any(|(f, l)| *f <= h.base_offset && h.base_offset <= *l))
    }

    fn filter_batch(
        &self,
        h: &BatchHeader,
        batch: &[u8],
        map: &OffsetMap,
        now_ms: i64,
        config: &CleanerConfig,
    ) -> Result<Filtered, StorageError> {
        let mut filtered = Filtered {
            bytes: Retained::Verbatim,
            removed: 0,
            horizon_ms: None,
        };
        if h.is_control() {
            return Ok(filtered);
        }
        if self.is_aborted(h) {
            filtered.removed = u64::try_from(h.records_count).unwrap_or(0);
            filtered.bytes = self.emptied(h)?;
            return Ok(filtered);
        }
        let records = decode_records(batch, config.max_batch_decompressed_bytes)?;
        let total = records.len();
        let existing_horizon = delete_horizon(h);
        let mut kept = Vec::with_capacity(total);
        let mut has_tombstone = false;
        for r in records {
            let offset = h.base_offset + i64::from(r.offset_delta);
            let keep = match r.key.as_deref() {
                None => true,
                Some(key) => map.get(key).is_none_or(|latest| latest <= offset),
            };
            if !keep {
                continue;
            }
            if r.key.is_some() && r.value.is_none() {
                if existing_horizon.is_some_and(|hz| now_ms >= hz) {
                    continue;
                }
                has_tombstone = true;
            }
            kept.push(r);
        }
        filtered.removed = (total - kept.len()) as u64;
        let new_horizon =
            (has_tombstone && existing_horizon.is_none()).then(|| now_ms.saturating_add(self.delete_retention_ms));
        if has_tombstone {
            filtered.horizon_ms = existing_horizon.or(new_horizon);
        }
        if filtered.removed == 0 && new_horizon.is_none() {
            return Ok(filtered);
        }
        if kept.is_empty() {
            filtered.bytes = self.emptied(h)?;
            return Ok(filtered);
        }
        filtered.bytes = Retained::Rewritten(rewrite_batch(h, kept, existing_horizon.or(new_horizon))?);
        Ok(filtered)
    }

    /// A batch whose records all go: dropped, unless it is the last batch of a producer still
    /// in the producer state (an empty batch keeps its sequence and epoch).
    fn emptied(&self, h: &BatchHeader) -> Result<Retained, StorageError> {
        let producer_keeps =
            h.producer_id >= 0 && self.producer_last_offsets.get(&h.producer_id) == Some(&h.last_offset());
        Ok(match producer_keeps {
            true => Retained::Rewritten(empty_batch(h)?),
            false => Retained::Dropped,
        })
    }
}

enum Retained {
    Verbatim,
    Rewritten(Vec<u8>),
    Dropped,
}

struct Filtered {
    bytes: Retained,
    removed: u64,
    /// Delete horizon of tombstones this batch keeps.
    horizon_ms: Option<i64>,
}

fn builder_params(h: &BatchHeader, base_timestamp: i64) -> BatchBuilderParams {
    BatchBuilderParams {
        base_offset: h.base_offset,
        partition_leader_epoch: h.partition_leader_epoch,
        base_timestamp,
        timestamp_type: h.timestamp_type(),
        log_append_time_ms: h.max_timestamp,
        producer_id: h.producer_id,
        producer_epoch: h.producer_epoch,
        base_sequence: h.base_sequence,
        is_transactional: h.is_transactional(),
        is_control: h.is_control(),
    }
}

/// Re-encodes the kept records with the batch's own base offset, codec and producer fields.
/// With a delete horizon, it becomes the base timestamp and record deltas are rebased on it.
fn rewrite_batch(h: &BatchHeader, mut kept: Vec<Record>, horizon_ms: Option<i64>) -> Result<Vec<u8>, StorageError> {
    let base_timestamp = horizon_ms.unwrap_or(h.base_timestamp);
    if base_timestamp != h.base_timestamp {
        for r in &mut kept {
            let absolute = h.base_timestamp.saturating_add(r.timestamp_delta);
            r.timestamp_delta = absolute.saturating_sub(base_timestamp);
        }
    }
    let codec = h.compression()?;
    let params = builder_params(h, base_timestamp);
    let encoded = encode_batch(&params, &kept, codec)?;
    let extra_attributes = if horizon_ms.is_some() { DELETE_HORIZON_BIT } else { 0 };
    Ok(finish_header(encoded.to_vec(), h.last_offset_delta, extra_attributes))
}

/// Kafka's empty batch: keeps a producer's last offset and sequence after all its records went.
fn empty_batch(h: &BatchHeader) -> Result<Vec<u8>, StorageError> {
    let params = builder_params(h, h.max_timestamp);
    let encoded = encode_batch(&params, &[], Compression::None)?;
    Ok(finish_header(encoded.to_vec(), h.last_offset_delta, 0))
}

/// Restores the original last offset delta (so offsets and sequences stay as they were), adds
/// attribute bits and recomputes the CRC.
fn finish_header(mut batch: Vec<u8>, last_offset_delta: i32, extra_attributes: i16) -> Vec<u8> {
    batch[LAST_OFFSET_DELTA_OFFSET..LAST_OFFSET_DELTA_OFFSET + 4].copy_from_slice(&last_offset_delta.to_be_bytes());
    let attributes = i16::from_be_bytes([batch[ATTRIBUTES_OFFSET], batch[ATTRIBUTES_OFFSET + 1]]) | extra_attributes;
    batch[ATTRIBUTES_OFFSET..ATTRIBUTES_OFFSET + 2].copy_from_slice(&attributes.to_be_bytes());
    let crc = compute_crc(&batch);
    batch[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
    batch
}

/// The planned groups cut at `end_offset`: only segments wholly below it are cleaned.
fn regroup_below(groups: &[Group], end_offset: i64) -> Vec<Group> {
    let mut out = Vec::new();
    for g in groups {
        let segments: Vec<SourceSegment> = g
            .segments
            .iter()
            .filter(|s| s.next_offset <= end_offset && s.base_offset < end_offset)
            .cloned()
            .collect();
        let Some(last) = segments.last() else { continue };
        let end = match g.segments.iter().find(|s| s.base_offset > last.base_offset) {
            Some(next) => next.base_offset,
            None => g.end_offset,
        };
        out.push(Group {
            segments,
            end_offset: end,
        });
    }
    out
}

/// Splits consecutive segments into groups whose original sizes sum to at most
/// `segment_bytes` and whose offsets fit a segment's 32-bit relative offsets (Kafka's
/// `groupSegmentsBySize`). `end_offset` is the base after the last segment.
pub(crate) fn group_by_size(segments: Vec<SourceSegment>, end_offset: i64, segment_bytes: u64) -> Vec<Group> {
    let mut groups: Vec<Group> = Vec::new();
    let mut current: Vec<SourceSegment> = Vec::new();
    let mut size = 0u64;
    for s in segments {
        let first_base = current.first().map_or(s.base_offset, |f| f.base_offset);
        let fits = size + s.size_bytes <= segment_bytes && s.next_offset - first_base <= i64::from(i32::MAX);
        if !current.is_empty() && !fits {
            let end = s.base_offset;
            groups.push(Group {
                segments: std::mem::take(&mut current),
                end_offset: end,
            });
            size = 0;
        }
        size += s.size_bytes;
        current.push(s);
    }
    if !current.is_empty() {
        groups.push(Group {
            segments: current,
            end_offset,
        });
    }
    groups
}

/// `<base>.log.<end>.swap`: the committed swap of the group `[base, end)`.
pub(crate) fn swap_path(dir: &Path, base: i64, end: i64) -> PathBuf {
    dir.join(format!("{}.{end:020}{SWAP_SUFFIX}", file_name(base, LOG_SUFFIX)))
}

fn parse_swap_name(name: &str) -> Option<(i64, i64)> {
    let rest = name.strip_suffix(SWAP_SUFFIX)?;
    let (base, rest) = rest.split_once(".log.")?;
    let all_digits = |s: &str| s.len() == 20 && s.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(base) || !all_digits(rest) {
        return None;
    }
    Some((base.parse().ok()?, rest.parse().ok()?))
}

/// Finishes swaps interrupted by a crash (see the module doc): removes the old segments of
/// each committed swap's range and puts the swap file in place. Run before the directory scan.
pub(crate) fn complete_interrupted_swaps(dir: &Path) -> Result<(), StorageError> {
    let mut swaps = Vec::new();
    let mut logs = Vec::new();
    for entry in std::fs::read_dir(dir).at(dir)? {
        let name = entry.at(dir)?.file_name().to_string_lossy().into_owned();
        if let Some(range) = parse_swap_name(&name) {
            swaps.push((range, name));
        } else if let Some(base) = name
            .strip_suffix(".log")
            .filter(|s| s.len() == 20)
            .and_then(|s| s.parse::<i64>().ok())
        {
            logs.push(base);
        }
    }
    if swaps.is_empty() {
        return Ok(());
    }
    for ((base, end), name) in swaps {
        for old in logs.iter().filter(|b| **b >= base && **b < end) {
            for suffix in SEGMENT_SUFFIXES {
                remove_if_exists(&dir.join(file_name(*old, suffix)))?;
            }
        }
        // The swapped-in segment's indexes may be the old first segment's or missing: drop
        // them all so open rescans the segment and rebuilds them (its `.txnindex` by replay).
        for suffix in INDEX_SUFFIXES {
            remove_if_exists(&dir.join(file_name(base, suffix)))?;
        }
        tracing::info!(dir = %dir.display(), base, end, "completing an interrupted cleaner swap");
        let target = dir.join(file_name(base, LOG_SUFFIX));
        std::fs::rename(dir.join(&name), &target).at(&target)?;
    }
    sync_dir(dir)
}

pub(crate) fn remove_if_exists(path: &Path) -> Result<(), StorageError> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e).at(path),
        _ => Ok(()),
    }
}

impl PartitionLog {
    /// One cleaning pass with the log borrowed throughout (tests, tools). The broker uses
    /// `plan_clean` / `CleanPlan::execute` / `finish_clean` to keep the lock hold short.
    pub fn clean(
        &mut self,
        now_ms: i64,
        upper_bound_offset: i64,
        config: &CleanerConfig,
    ) -> Result<CleanOutcome, StorageError> {
        let Some(plan) = self.plan_clean(now_ms, upper_bound_offset)? else {
            return Ok(CleanOutcome::default());
        };
        let cleaned = plan.execute(now_ms, config)?;
        self.finish_clean(cleaned, now_ms)
    }

    /// Phase 1: decides whether the log needs cleaning and what to clean (no data I/O).
    /// `upper_bound_offset` is the high watermark (or first unstable offset): nothing at or
    /// above it, and never the active segment, is cleaned.
    pub fn plan_clean(&self, now_ms: i64, upper_bound_offset: i64) -> Result<Option<CleanPlan>, StorageError> {
        if !self.config.compact {
            return Ok(None);
        }
        // Data of ongoing transactions is never cleaned, whatever bound the caller gives.
        let upper_bound_offset = upper_bound_offset.min(self.producers.first_unstable_offset().unwrap_or(i64::MAX));
        let uncleanable = self.first_uncleanable_offset(now_ms, upper_bound_offset);
        let candidates = self.cleanable_segments(uncleanable);
        let Some(last) = candidates.last() else {
            return Ok(None);
        };
        let end_offset = last.next_offset;
        let first_dirty = self.cleaner.first_dirty_offset;
        let (dirty, clean): (Vec<SourceSegment>, Vec<SourceSegment>) =
            candidates.iter().cloned().partition(|s| s.next_offset > first_dirty);
        let dirty_bytes: u64 = dirty.iter().map(|s| s.size_bytes).sum();
        let clean_bytes: u64 = clean.iter().map(|s| s.size_bytes).sum();
        let ratio = match dirty_bytes + clean_bytes {
            0 => 0.0,
            total => dirty_bytes as f64 / total as f64,
        };
        let due_by_ratio = dirty_bytes > 0 && ratio >= self.config.min_cleanable_dirty_ratio();
        let due_by_lag = !dirty.is_empty() && self.dirty_too_old(&dirty, now_ms)?;
        let due_by_horizon = self.cleaner.next_horizon_ms.is_some_and(|h| now_ms >= h);
        if !(due_by_ratio || due_by_lag || due_by_horizon) {
            return Ok(None);
        }
        let producer_last_offsets = self
            .producers
            .entries()
            .filter_map(|e| e.batches.back().map(|b| (e.producer_id, b.last_offset)))
            .collect();
        let first_base = candidates.first().map_or(end_offset, |s| s.base_offset);
        let mut aborted_txns: HashMap<i64, Vec<(i64, i64)>> = HashMap::new();
        for t in self.segments.values().flat_map(|s| s.txn_index.entries()) {
            if t.last_offset >= first_base && t.first_offset < end_offset {
                aborted_txns
                    .entry(t.producer_id)
                    .or_default()
                    .push((t.first_offset, t.last_offset));
            }
        }
        let segments_before = candidates.len();
        let first_dirty_offset = dirty.first().map_or(end_offset, |s| s.base_offset.max(first_dirty));
        Ok(Some(CleanPlan {
            dir: self.dir.clone(),
            groups: group_by_size(candidates, end_offset, self.config.segment_bytes),
            dirty,
            first_dirty_offset,
            delete_retention_ms: self.config.delete_retention_ms.max(0),
            producer_last_offsets,
            aborted_txns,
            bytes_before: dirty_bytes + clean_bytes,
            segments_before,
            index_bytes: self.config.index_bytes(),
            index_interval_bytes: self.config.index_interval_bytes,
        }))
    }

    /// Kafka's first uncleanable offset: the bound given, the active segment, and the first
    /// segment holding a record younger than `min.compaction.lag.ms`.
    fn first_uncleanable_offset(&self, now_ms: i64, upper_bound_offset: i64) -> i64 {
        let mut bound = upper_bound_offset.min(self.active().base_offset);
        let lag_ms = self.config.min_compaction_lag_ms;
        if lag_ms > 0 {
            let young = self
                .segments
                .values()
                .find(|s| crate::log::largest_timestamp(s) > now_ms.saturating_sub(lag_ms));
            if let Some(s) = young {
                bound = bound.min(s.base_offset);
            }
        }
        bound
    }

    /// Non-active segments wholly below `uncleanable`, each with the next segment's base as
    /// its end.
    fn cleanable_segments(&self, uncleanable: i64) -> Vec<SourceSegment> {
        let bases: Vec<i64> = self.segments.keys().copied().collect();
        let mut out = Vec::new();
        for (i, (base, segment)) in self.segments.iter().enumerate() {
            let Some(next_base) = bases.get(i + 1).copied() else {
                break;
            };
            if next_base > uncleanable {
                break;
            }
            out.push(SourceSegment {
                base_offset: *base,
                next_offset: next_base,
                size_bytes: segment.size_bytes,
                file: segment.log_file(),
                path: segment.log_path().to_path_buf(),
                aborted: segment.txn_index.entries().to_vec(),
            });
        }
        out
    }

    /// `max.compaction.lag.ms`: the first dirty batch is older than the lag.
    fn dirty_too_old(&self, dirty: &[SourceSegment], now_ms: i64) -> Result<bool, StorageError> {
        let lag_ms = self.config.max_compaction_lag_ms;
        if lag_ms == i64::MAX {
            return Ok(false);
        }
        for s in dirty {
            if let Some((h, _)) = BatchReader::new(s).next_batch()? {
                return Ok(h.max_timestamp >= 0 && now_ms.saturating_sub(h.max_timestamp) > lag_ms);
            }
        }
        Ok(false)
    }

    /// Phase 3: swaps the cleaned groups in (see the module doc). If the log changed under
    /// the pass (retention, truncation), the work is discarded and `cleaned` is false.
    pub fn finish_clean(&mut self, cleaned: CleanedLog, now_ms: i64) -> Result<CleanOutcome, StorageError> {
        self.mark_dirty()?;
        if cleaned.dir != self.dir || !cleaned.groups.iter().all(|g| self.group_unchanged(&g.group)) {
            cleaned.discard();
            return Ok(CleanOutcome::default());
        }
        let mut bytes_after = 0;
        for (i, g) in cleaned.groups.iter().enumerate() {
            if let Err(e) = self.swap_in(g, now_ms) {
                for rest in &cleaned.groups[i + 1..] {
                    rest.remove_files();
                }
                return Err(e);
            }
            bytes_after += self.segments.get(&g.group.first_base()).map_or(0, |s| s.size_bytes);
        }
        self.cleaner.first_dirty_offset = cleaned.end_offset;
        self.cleaner.next_horizon_ms = cleaned.next_horizon_ms;
        let segments_after = self.segments.range(..cleaned.end_offset).count();
        Ok(CleanOutcome {
            cleaned: true,
            first_dirty_offset: cleaned.first_dirty_offset,
            end_offset: cleaned.end_offset,
            bytes_before: cleaned.bytes_before,
            bytes_after: bytes_after
                + self
                    .segments
                    .range(..cleaned.end_offset)
                    .filter(|(b, _)| !cleaned.groups.iter().any(|g| g.group.first_base() == **b))
                    .map(|(_, s)| s.size_bytes)
                    .sum::<u64>(),
            segments_before: cleaned.segments_before,
            segments_after,
            records_removed: cleaned.records_removed,
        })
    }

    /// The group's segments are still exactly the log's segments in its range, unchanged.
    fn group_unchanged(&self, group: &Group) -> bool {
        let active_base = self.active().base_offset;
        let now: Vec<(i64, u64)> = self
            .segments
            .range(group.first_base()..group.end_offset)
            .map(|(b, s)| (*b, s.size_bytes))
            .collect();
        let planned: Vec<(i64, u64)> = group.segments.iter().map(|s| (s.base_offset, s.size_bytes)).collect();
        now == planned && group.end_offset <= active_base && self.segments.contains_key(&group.end_offset)
    }

    /// `.cleaned` -> `.swap` (commit point), old segments -> `.deleted`, `.swap` -> `.log`.
    fn swap_in(&mut self, g: &CleanedGroup, now_ms: i64) -> Result<(), StorageError> {
        let base = g.group.first_base();
        let swap = swap_path(&self.dir, base, g.group.end_offset);
        std::fs::rename(&g.cleaned_path, &swap).at(&swap)?;
        sync_dir(&self.dir)?;
        for s in &g.group.segments {
            self.delete_segment(s.base_offset, now_ms)?;
        }
        // Old indexes went with their segment; the new ones were written beside the log. A
        // crash from here on is finished by `complete_interrupted_swaps` (indexes rebuilt).
        for suffix in [INDEX_SUFFIX, TIME_INDEX_SUFFIX] {
            let from = cleaned_index_path(&g.cleaned_path, base, suffix);
            let to = self.dir.join(file_name(base, suffix));
            std::fs::rename(&from, &to).at(&to)?;
        }
        // The transaction index exists only if the group held aborted transactions.
        let txn_from = cleaned_index_path(&g.cleaned_path, base, TXN_INDEX_SUFFIX);
        if txn_from.exists() {
            let to = self.dir.join(file_name(base, TXN_INDEX_SUFFIX));
            std::fs::rename(&txn_from, &to).at(&to)?;
        }
        let target = self.dir.join(file_name(base, LOG_SUFFIX));
        std::fs::rename(&swap, &target).at(&target)?;
        sync_dir(&self.dir)?;
        let interval = self.config.index_interval_bytes;
        let mut segment = Segment::open(&self.dir, base, None, now_ms)?;
        if !segment.load_trusted(interval) {
            segment.make_active(self.config.index_bytes())?;
            let outcome = segment.scan_and_rebuild(interval)?;
            if let Some(reason) = outcome.problem {
                return Err(StorageError::CorruptSegment {
                    path: target,
                    position: outcome.valid_bytes,
                    reason,
                });
            }
            segment.make_inactive()?;
            segment.flush()?;
        }
        self.segments.insert(base, segment);
        Ok(())
    }
}

impl Group {
    pub(crate) fn first_base(&self) -> i64 {
        self.segments.first().map_or(self.end_offset, |s| s.base_offset)
    }
}

#[cfg(test)]
mod tests;
