//! `PartitionLog`: the ordered segments of one partition and everything done to them as a whole
//! — open/recover, append (leader, coordinator, follower, transaction markers), read, lookups by
//! offset, timestamp and leader epoch, retention, DeleteRecords, truncation, flushing, deletion,
//! and the partition side of transactions (first unstable offset, aborted-transaction lookups).
//!
//! Invariants: the last segment is the active one and the only one written to; segments are
//! keyed by base offset and each one's offsets lie below the next one's base;
//! `log_start_offset <= log_end_offset`; the active segment is never deleted by retention; an
//! abort's index entry is in the segment holding its marker, and the producer state and every
//! `.txnindex` describe exactly the batches in the log (rebuilt by replay after truncation and
//! after a crash).

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use runnel_protocol::records::{assign_offsets, batches, decode_records, AssignedOffsets, RecordError, TimestampType};

use crate::checkpoint::{
    fsync_dir, read_offset_checkpoint, read_partition_metadata, sync_dir, write_offset_checkpoint,
    write_partition_metadata,
};
use crate::cleaner::{remove_if_exists, CleanerState};
use crate::config::{FlushPolicy, LogConfig};
use crate::epoch::LeaderEpochCache;
use crate::error::{IoContext, StorageError};
use crate::producer_state::{self, AppendCheck, AppendOrigin, BatchMetadata, ProducerStateManager};
use crate::segment::{
    file_name, BatchPosition, ReadLimits, RollRules, Segment, SegmentFiles, LOG_SUFFIX, SEGMENT_SUFFIXES,
};
use crate::txn_index::{decode_end_txn_marker, encode_end_txn_marker, AbortedTxn, EndTxnMarker};

const PARTITION_METADATA_FILE: &str = "partition.metadata";
const LOG_START_CHECKPOINT_FILE: &str = "log-start-offset-checkpoint";
const RECOVERY_POINT_CHECKPOINT_FILE: &str = "recovery-point-offset-checkpoint";
/// Written by `close`, removed by `open`: its presence means the indexes were trimmed and
/// flushed and can be trusted after checks, so only a crash forces a full recovery scan.
const CLEAN_SHUTDOWN_FILE: &str = "clean-shutdown";
/// Suffixes of files left over from an interrupted delete, clean or swap.
const LEFTOVER_SUFFIXES: [&str; 4] = [".deleted", ".cleaned", ".swap", ".tmp"];
/// Bound on a batch's decompressed size when a timestamp lookup must look at its records.
const LOOKUP_MAX_DECOMPRESSED_BYTES: usize = 64 * 1024 * 1024;

/// Result of an append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    pub first_offset: i64,
    pub last_offset: i64,
    pub batch_count: u32,
    pub max_timestamp: i64,
    pub offset_of_max_timestamp: i64,
    pub size_bytes: u64,
    pub log_start_offset: i64,
    /// The append was a producer's retry of a batch already in the log: nothing was written and
    /// the offsets (and `max_timestamp`) are the original batch's.
    pub duplicate: bool,
}

/// Result of a read: whole batches only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadInfo {
    pub records: Bytes,
    pub log_start_offset: i64,
    pub log_end_offset: i64,
}

/// A timestamp lookup's answer (ListOffsets).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimestampAndOffset {
    pub timestamp: i64,
    pub offset: i64,
    /// Partition leader epoch of the batch holding the record.
    pub leader_epoch: i32,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetentionOutcome {
    pub deleted_segments: usize,
    pub deleted_bytes: u64,
    pub log_start_offset: i64,
}

/// What a group commit must fdatasync to cover every append so far: sync the files outside the
/// partition lock, then call `mark_flushed(end_offset)`. The files are the active segment's log
/// and those of segments rolled since their last sync, and the directory when a roll created
/// files in it that are not yet durable there.
#[derive(Debug, Clone)]
pub struct SyncTarget {
    files: Vec<Arc<File>>,
    dir: Option<PathBuf>,
    pub end_offset: i64,
}

impl SyncTarget {
    pub fn sync(&self) -> std::io::Result<()> {
        self.files.iter().try_for_each(|f| f.sync_data())?;
        self.dir.as_deref().map_or(Ok(()), fsync_dir)
    }
}

/// What rolls left to sync: the rolled segments with their indexes, the producer snapshots
/// taken at the rolls, and the directory that gained the new files. Sync them outside the
/// partition lock, then call `mark_rolls_synced`, which moves the recovery point past them.
/// Kafka too flushes a rolled segment, its snapshot and the directory in the background rather
/// than on the append that rolled it: a roll does no fsync under the lock.
#[derive(Debug, Clone)]
pub struct RollSync {
    segments: Vec<(i64, SegmentFiles)>,
    /// The snapshots of the rolls not yet synced; the directory is synced after them when
    /// there are any (each roll also created its new segment's files there).
    snapshots: Vec<PathBuf>,
    dir: PathBuf,
}

impl RollSync {
    /// Files first, then the directory that names them.
    pub fn sync(&self) -> std::io::Result<()> {
        self.segments.iter().try_for_each(|(_, files)| files.sync())?;
        if self.snapshots.is_empty() {
            return Ok(());
        }
        for path in &self.snapshots {
            match File::open(path).and_then(|f| f.sync_data()) {
                // Deleted since (truncation, retention), or never written: nothing to keep.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                other => other?,
            }
        }
        fsync_dir(&self.dir)
    }
}

/// A recovery-point checkpoint decided under the partition lock and written once the lock is
/// released: the write costs two fsyncs, which would otherwise hold up the partition's appends
/// and reads. Writes decided later win: an older one that comes last is skipped.
#[must_use = "the checkpoint is only written by `write`"]
pub struct RecoveryPointWrite {
    file: Arc<RecoveryPointFile>,
    seq: u64,
    offset: i64,
}

impl RecoveryPointWrite {
    pub fn write(self) -> Result<(), StorageError> {
        let mut written = self.file.written_seq.lock().unwrap_or_else(|e| e.into_inner());
        if *written >= self.seq {
            return Ok(());
        }
        write_offset_checkpoint(&self.file.path, &self.file.topic, self.file.partition, self.offset)?;
        *written = self.seq;
        Ok(())
    }
}

/// A partition's `recovery-point-offset-checkpoint` and the order of the writes decided for it.
#[derive(Debug)]
struct RecoveryPointFile {
    path: PathBuf,
    topic: String,
    partition: i32,
    /// Bumped (under the partition lock) for every value decided.
    decided_seq: AtomicU64,
    /// The newest decision on disk.
    written_seq: Mutex<u64>,
}

pub struct PartitionLog {
    pub(crate) dir: PathBuf,
    topic: String,
    partition: i32,
    topic_id: Option<[u8; 16]>,
    pub(crate) config: LogConfig,
    pub(crate) segments: BTreeMap<i64, Segment>,
    log_start_offset: i64,
    recovery_point: i64,
    flushed_offset: i64,
    /// Base offsets of inactive segments above the recovery point whose data may not be on
    /// disk yet (rolled, or recovered at open): the recovery point stays at the first of them.
    unsynced: BTreeSet<i64>,
    /// The snapshots of rolls whose files (snapshot, new segment) the directory may not hold
    /// durably yet: while there are any, syncs include the directory.
    unsynced_rolls: Vec<PathBuf>,
    recovery_point_file: Arc<RecoveryPointFile>,
    unflushed_messages: u64,
    last_flush_ms: i64,
    epochs: LeaderEpochCache,
    /// `.deleted` files and when they may be removed.
    pending_deletes: Vec<(i64, PathBuf)>,
    /// Idempotent-producer state as of the log end offset.
    pub(crate) producers: ProducerStateManager,
    /// Log-cleaner bookkeeping (see `cleaner.rs`).
    pub(crate) cleaner: CleanerState,
    /// The clean-shutdown marker this log was opened with, removed (durably) just before the
    /// first change to the log's files. Removing it lazily keeps start-up free of one directory
    /// fsync per partition; a crash before any change leaves the files exactly as at the clean
    /// shutdown, so the marker is still true.
    clean_marker: Option<PathBuf>,
    /// The active segment's indexes are still trimmed (opened clean); `mark_dirty` expands them.
    active_trimmed: bool,
    /// No producer snapshot lies below this offset: they were last pruned when the first
    /// segment started here. Retention runs every second on every partition, and listing the
    /// directory each time to find nothing to prune was most of an idle broker's CPU
    /// (10 000 partitions: 9 % of a core). `i64::MIN` until the first prune after an open or a
    /// truncation.
    snapshots_pruned_below: i64,
}

/// `"my-topic-3"` -> `("my-topic", 3)`; also accepts Kafka's `<topic>-<p>.<uuid>-delete` and
/// `-future` suffixes by rejecting them (they are not live partitions).
pub fn parse_partition_dir_name(name: &str) -> Option<(String, i32)> {
    let (topic, partition) = name.rsplit_once('-')?;
    if topic.is_empty() || partition.is_empty() || !partition.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let partition: i32 = partition.parse().ok()?;
    Some((topic.to_string(), partition))
}

fn base_offset_of(name: &str) -> Option<i64> {
    let stem = name.strip_suffix(".log")?;
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok()
}

/// Removes leftover temporary files and returns the sorted base offsets of the `.log` files.
fn scan_dir(dir: &Path) -> Result<Vec<i64>, StorageError> {
    // A committed cleaner swap must be finished before leftovers (`.swap`) are deleted.
    crate::cleaner::complete_interrupted_swaps(dir)?;
    let mut bases = Vec::new();
    for entry in std::fs::read_dir(dir).at(dir)? {
        let entry = entry.at(dir)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if LEFTOVER_SUFFIXES.iter().any(|s| name.ends_with(s)) {
            std::fs::remove_file(entry.path()).at(&entry.path())?;
        } else if let Some(base) = base_offset_of(&name) {
            bases.push(base);
        }
    }
    bases.sort_unstable();
    Ok(bases)
}

fn random_hex() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut out = String::with_capacity(32);
    for _ in 0..2 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        out.push_str(&format!("{:016x}", h.finish()));
    }
    out
}

impl PartitionLog {
    /// Opens the partition directory `dir` (named `<topic>-<partition>`), creating it if needed
    /// and recovering after a crash.
    pub fn open(dir: &Path, topic_id: Option<[u8; 16]>, config: LogConfig, now_ms: i64) -> Result<Self, StorageError> {
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let (topic, partition) = parse_partition_dir_name(&name).ok_or(StorageError::InvalidDirName(name))?;
        std::fs::create_dir_all(dir).at(dir)?;
        let topic_id = Self::check_topic_id(dir, topic_id)?;
        let clean_marker = dir.join(CLEAN_SHUTDOWN_FILE);
        let clean = clean_marker.exists();
        let recovery_point = match clean {
            true => i64::MAX,
            false => read_offset_checkpoint(&dir.join(RECOVERY_POINT_CHECKPOINT_FILE), &topic, partition)?.unwrap_or(0),
        };
        let start_checkpoint = read_offset_checkpoint(&dir.join(LOG_START_CHECKPOINT_FILE), &topic, partition)?;
        let (segments, changed) = load_segments(dir, &config, recovery_point, start_checkpoint.unwrap_or(0), now_ms)?;
        let recovery_point_file = Arc::new(RecoveryPointFile {
            path: dir.join(RECOVERY_POINT_CHECKPOINT_FILE),
            topic: topic.clone(),
            partition,
            decided_seq: AtomicU64::new(0),
            written_seq: Mutex::new(0),
        });
        let mut log = Self {
            dir: dir.to_path_buf(),
            topic,
            partition,
            topic_id,
            config,
            segments,
            log_start_offset: 0,
            recovery_point: 0,
            flushed_offset: 0,
            unsynced: BTreeSet::new(),
            unsynced_rolls: Vec::new(),
            recovery_point_file,
            unflushed_messages: 0,
            last_flush_ms: now_ms,
            epochs: LeaderEpochCache::open(dir)?,
            pending_deletes: Vec::new(),
            producers: ProducerStateManager::new(),
            cleaner: CleanerState::default(),
            clean_marker: clean.then_some(clean_marker),
            active_trimmed: clean,
            snapshots_pruned_below: i64::MIN,
        };
        if changed {
            // Recovery already rewrote files: the marker no longer describes them.
            log.mark_dirty()?;
        }
        let leo = log.log_end_offset();
        let first_base = log.segments.keys().next().copied().unwrap_or(0);
        log.log_start_offset = start_checkpoint.unwrap_or(first_base).max(first_base).min(leo);
        log.recovery_point = if clean { leo } else { recovery_point.min(leo) };
        log.flushed_offset = log.recovery_point;
        let active_base = log.active().base_offset;
        log.unsynced = log
            .segments
            .values()
            .filter(|s| s.base_offset < active_base && s.next_offset > log.recovery_point)
            .map(|s| s.base_offset)
            .collect();
        log.epochs.truncate_from_end(leo)?;
        log.epochs.truncate_from_start(log.log_start_offset)?;
        log.load_producer_state()?;
        Ok(log)
    }

    fn check_topic_id(dir: &Path, wanted: Option<[u8; 16]>) -> Result<Option<[u8; 16]>, StorageError> {
        let path = dir.join(PARTITION_METADATA_FILE);
        let stored = read_partition_metadata(&path)?;
        match (stored, wanted) {
            (Some(s), Some(w)) if s != w => Err(StorageError::InconsistentTopicId { path }),
            (None, Some(w)) => {
                write_partition_metadata(&path, &w)?;
                Ok(Some(w))
            }
            (s, w) => Ok(w.or(s)),
        }
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    pub fn partition(&self) -> i32 {
        self.partition
    }

    pub fn topic_id(&self) -> Option<[u8; 16]> {
        self.topic_id
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn config(&self) -> &LogConfig {
        &self.config
    }

    pub fn log_start_offset(&self) -> i64 {
        self.log_start_offset
    }

    pub fn log_end_offset(&self) -> i64 {
        self.active().next_offset
    }

    pub fn size_bytes(&self) -> u64 {
        self.segments.values().map(|s| s.size_bytes).sum()
    }

    /// Below this offset the log is known to be on disk; recovery after a crash scans from the
    /// segment holding it.
    pub fn recovery_point(&self) -> i64 {
        self.recovery_point
    }

    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    /// Base offsets of the segments, oldest first.
    pub fn segment_base_offsets(&self) -> Vec<i64> {
        self.segments.keys().copied().collect()
    }

    pub(crate) fn active(&self) -> &Segment {
        // Invariant: a log always has at least one segment (open and truncation create one).
        self.segments
            .values()
            .next_back()
            .expect("a partition log always has a segment")
    }

    fn active_mut(&mut self) -> &mut Segment {
        self.segments
            .values_mut()
            .next_back()
            .expect("a partition log always has a segment")
    }

    /// Appends validated v2 batches as leader: rewrites base offsets (from the log end offset)
    /// and partition leader epochs in place, writes them, updates indexes and the epoch cache,
    /// rolls segments as configured and flushes per `flush.messages` / `flush.ms`.
    ///
    /// Transactional batches open (or continue) their producer's transaction; a producer with
    /// an ongoing transaction may not write non-transactional batches (`InvalidTxnState`).
    /// Control batches are refused (`ControlBatchNotAllowed`): markers go through
    /// `append_txn_marker`.
    pub fn append_as_leader(
        &mut self,
        batches: &mut [u8],
        leader_epoch: i32,
        now_ms: i64,
    ) -> Result<AppendInfo, StorageError> {
        self.append_from(batches, leader_epoch, now_ms, AppendOrigin::Client)
    }

    /// `append_as_leader` for batches written by the broker's own coordinators (Kafka's
    /// `AppendOrigin.COORDINATOR`): no sequence or duplicate checks (batches may carry base
    /// sequence -1 with a producer id and epoch), epoch and transaction-state checks kept.
    pub fn append_as_coordinator(
        &mut self,
        batches: &mut [u8],
        leader_epoch: i32,
        now_ms: i64,
    ) -> Result<AppendInfo, StorageError> {
        self.append_from(batches, leader_epoch, now_ms, AppendOrigin::Coordinator)
    }

    fn append_from(
        &mut self,
        batches: &mut [u8],
        leader_epoch: i32,
        now_ms: i64,
        origin: AppendOrigin,
    ) -> Result<AppendInfo, StorageError> {
        self.producers
            .maybe_remove_expired(now_ms, self.config.producer_id_expiration_ms);
        let headers = batches_headers(batches)?;
        let update = match self
            .producers
            .check_append_from(&headers, self.log_end_offset(), origin)?
        {
            AppendCheck::Duplicate(original) => return Ok(self.duplicate_info(&original)),
            AppendCheck::Fresh(update) => update,
        };
        let assigned = assign_offsets(batches, self.log_end_offset(), leader_epoch)?;
        self.append_assigned(batches, &assigned, now_ms)?;
        // Data appends open transactions but never complete one: nothing to index.
        let _ = self.producers.commit(update);
        self.epochs.assign(leader_epoch, assigned.first_offset)?;
        self.after_append(&assigned, now_ms)?;
        Ok(self.append_info(&assigned, batches.len()))
    }

    /// Writes an end-transaction marker (Kafka's `EndTransactionMarker`, as WriteTxnMarkers
    /// does) for `producer_id` and completes its ongoing transaction: a commit makes its data
    /// stable, an abort also adds an `AbortedTxn` to the `.txnindex` of the segment the marker
    /// lands in. A marker for a producer with no ongoing transaction is still written and
    /// completes nothing. Fails with `InvalidProducerEpoch` for an epoch below the producer's
    /// and `TransactionCoordinatorFenced` for a coordinator epoch below the last marker's.
    pub fn append_txn_marker(
        &mut self,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
        coordinator_epoch: i32,
        leader_epoch: i32,
        now_ms: i64,
    ) -> Result<AppendInfo, StorageError> {
        self.producers
            .maybe_remove_expired(now_ms, self.config.producer_id_expiration_ms);
        let marker = EndTxnMarker {
            commit,
            coordinator_epoch,
        };
        let offset = self.log_end_offset();
        let update = self
            .producers
            .check_marker(producer_id, producer_epoch, marker, offset, now_ms)?;
        let mut batch = encode_end_txn_marker(producer_id, producer_epoch, marker, now_ms)?;
        let assigned = assign_offsets(&mut batch, offset, leader_epoch)?;
        self.append_assigned(&batch, &assigned, now_ms)?;
        for aborted in self.producers.commit(update) {
            self.active_mut().txn_index.append(aborted)?;
        }
        self.epochs.assign(leader_epoch, assigned.first_offset)?;
        self.after_append(&assigned, now_ms)?;
        Ok(self.append_info(&assigned, batch.len()))
    }

    /// Earliest first offset of the ongoing transactions; the broker's last stable offset is
    /// `min(this, high watermark)` (or see `last_stable_offset`).
    pub fn first_unstable_offset(&self) -> Option<i64> {
        self.producers.first_unstable_offset()
    }

    /// Kafka's last stable offset: also held back by completed transactions whose marker is
    /// not yet below `high_watermark` (call `on_high_watermark_updated` as it moves).
    pub fn last_stable_offset(&self, high_watermark: i64) -> i64 {
        self.producers.last_stable_offset(high_watermark)
    }

    /// Lets the producer state forget completed transactions now below the high watermark.
    pub fn on_high_watermark_updated(&mut self, high_watermark: i64) {
        self.producers.on_high_watermark_updated(high_watermark);
    }

    /// `(producer id, producer epoch, first offset)` of every ongoing transaction, by first
    /// offset (DescribeProducers, DescribeTransactions, tests).
    pub fn ongoing_transactions(&self) -> Vec<(i64, i16, i64)> {
        self.producers.ongoing_transactions()
    }

    /// Every aborted transaction overlapping `[start_offset, upper_bound_offset)`, from the
    /// transaction indexes of the segment holding `start_offset` onwards (Kafka's
    /// `collectAbortedTransactions`), sorted by first offset. For `read_committed` fetches, the
    /// upper bound is the end of the data returned.
    pub fn collect_aborted_transactions(
        &self,
        start_offset: i64,
        upper_bound_offset: i64,
    ) -> Result<Vec<AbortedTxn>, StorageError> {
        let floor = self
            .segments
            .range(..=start_offset)
            .next_back()
            .map_or(i64::MIN, |(b, _)| *b);
        let mut out = Vec::new();
        for segment in self.segments.range(floor..).map(|(_, s)| s) {
            let (found, complete) = segment.txn_index.collect(start_offset, upper_bound_offset);
            out.extend(found);
            if complete {
                break;
            }
        }
        out.sort_by_key(|t| t.first_offset);
        Ok(out)
    }

    fn duplicate_info(&self, original: &BatchMetadata) -> AppendInfo {
        AppendInfo {
            first_offset: original.first_offset,
            last_offset: original.last_offset,
            batch_count: 0,
            max_timestamp: original.timestamp_ms,
            offset_of_max_timestamp: original.last_offset,
            size_bytes: 0,
            log_start_offset: self.log_start_offset,
            duplicate: true,
        }
    }

    /// The idempotent-producer state (DescribeProducers, tests).
    pub fn producer_state(&self) -> &ProducerStateManager {
        &self.producers
    }

    /// Rebuilds the producer state and the untrusted transaction indexes: the newest snapshot
    /// at or below the log end offset (and at or below the base of every segment whose
    /// `.txnindex` needs rebuilding, i.e. was recovered after a crash or found corrupt), then
    /// the batches after it. Those segments' indexes are rebuilt from the replayed abort
    /// markers, so after a crash each index matches its log; trusted indexes are left alone
    /// (a replay from an older point cannot always rebuild them: data of a transaction may be
    /// gone below the log start offset).
    fn load_producer_state(&mut self) -> Result<(), StorageError> {
        let leo = self.log_end_offset();
        let rebuild_from = self
            .segments
            .values()
            .find(|s| s.txn_index_needs_rebuild)
            .map_or(leo, |s| s.base_offset);
        let limit = leo.min(rebuild_from);
        let (mut state, from) = ProducerStateManager::load_latest_snapshot(&self.dir, limit)?.unwrap_or_default();
        for segment in self.segments.values_mut() {
            let rebuild = segment.txn_index_needs_rebuild;
            if rebuild {
                // `from` is at or below this segment's base: every entry goes (also when the
                // recovered segment is empty and so has nothing to replay).
                segment.txn_index.truncate_to(from)?;
                segment.txn_index_needs_rebuild = false;
            }
            if segment.next_offset <= from {
                continue;
            }
            replay_segment(&mut state, segment, from, rebuild)?;
        }
        self.producers = state;
        Ok(())
    }

    /// Appends batches that already carry their offsets (a follower copying its leader). The
    /// first base offset must be at or above the log end offset; gaps are allowed (compaction).
    pub fn append_as_follower(&mut self, batches_buf: &[u8], now_ms: i64) -> Result<AppendInfo, StorageError> {
        let (assigned, epochs) = follower_offsets(batches_buf, self.log_end_offset())?;
        // Markers are decoded before anything is written, so a malformed one changes nothing.
        let replays = batches(batches_buf)
            .map(|item| {
                let (h, bytes) = item?;
                let marker = match h.is_control() {
                    true => decode_end_txn_marker(bytes)?,
                    false => None,
                };
                Ok((h, marker))
            })
            .collect::<Result<Vec<_>, StorageError>>()?;
        self.append_assigned(batches_buf, &assigned, now_ms)?;
        for (h, marker) in replays {
            if let Some(aborted) = self.producers.replay(&h, marker) {
                self.active_mut().txn_index.append(aborted)?;
            }
        }
        for (epoch, offset) in epochs {
            self.epochs.assign(epoch, offset)?;
        }
        self.after_append(&assigned, now_ms)?;
        Ok(self.append_info(&assigned, batches_buf.len()))
    }

    fn append_info(&self, a: &AssignedOffsets, size_bytes: usize) -> AppendInfo {
        AppendInfo {
            first_offset: a.first_offset,
            last_offset: a.last_offset,
            batch_count: a.batch_count,
            max_timestamp: a.max_timestamp,
            offset_of_max_timestamp: a.offset_of_max_timestamp,
            size_bytes: size_bytes as u64,
            log_start_offset: self.log_start_offset,
            duplicate: false,
        }
    }

    /// Called before anything changes the log's files: after this a crash means recovery.
    pub(crate) fn mark_dirty(&mut self) -> Result<(), StorageError> {
        let Some(marker) = self.clean_marker.take() else {
            return Ok(());
        };
        match std::fs::remove_file(&marker) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e).at(&marker),
            _ => {}
        }
        sync_dir(&self.dir)?;
        if std::mem::take(&mut self.active_trimmed) {
            let index_bytes = self.config.index_bytes();
            self.active_mut().make_active(index_bytes)?;
        }
        Ok(())
    }

    fn append_assigned(&mut self, buf: &[u8], assigned: &AssignedOffsets, now_ms: i64) -> Result<(), StorageError> {
        self.mark_dirty()?;
        let size_bytes = buf.len() as u64;
        if size_bytes > self.config.segment_bytes || size_bytes > u64::from(u32::MAX / 2) {
            return Err(StorageError::RecordsTooLarge {
                size_bytes,
                segment_bytes: self.config.segment_bytes,
            });
        }
        let rules = RollRules {
            segment_bytes: self.config.segment_bytes,
            segment_ms: self.config.segment_ms,
        };
        if self
            .active()
            .should_roll(size_bytes, assigned.last_offset, assigned.max_timestamp, &rules, now_ms)
        {
            self.roll(now_ms)?;
        }
        let interval = self.config.index_interval_bytes;
        self.active_mut().append(buf, assigned, interval)
    }

    fn after_append(&mut self, assigned: &AssignedOffsets, now_ms: i64) -> Result<(), StorageError> {
        let messages = (assigned.last_offset - assigned.first_offset + 1).max(0) as u64;
        self.unflushed_messages = self.unflushed_messages.saturating_add(messages);
        if self.config.flush_policy == FlushPolicy::Kafka {
            self.flush_if_due(now_ms)?;
        }
        Ok(())
    }

    /// Flushes if `flush.messages` or `flush.ms` is exceeded (call periodically for `flush.ms`).
    pub fn flush_if_due(&mut self, now_ms: i64) -> Result<(), StorageError> {
        let by_count = self.unflushed_messages >= self.config.flush_messages;
        let by_time = self.unflushed_messages > 0 && now_ms.saturating_sub(self.last_flush_ms) >= self.config.flush_ms;
        if by_count || by_time {
            self.flush()?;
            self.last_flush_ms = now_ms;
        }
        Ok(())
    }

    /// Starts a new active segment at the log end offset. The old one is trimmed; syncing it,
    /// the producer snapshot and the directory is left to `roll_sync` (a background task), as
    /// Kafka does: an fdatasync of a whole segment here would hold the partition's appends and
    /// reads for as long as the disk takes to write it (half a second for a 1 GiB segment on
    /// our test VM), and even the directory and snapshot fsyncs took up to 15 ms there while
    /// the disk was busy. Group commits sync the directory themselves (`sync_target`).
    fn roll(&mut self, now_ms: i64) -> Result<(), StorageError> {
        let new_base = self.log_end_offset();
        let old = self.active_mut();
        old.make_inactive()?;
        let old_base = old.base_offset;
        let segment = Segment::create(&self.dir, new_base, self.config.index_bytes(), now_ms)?;
        self.segments.insert(new_base, segment);
        self.unsynced.insert(old_base);
        // The state now covers exactly the batches below `new_base`: recovery restarts here.
        // (A snapshot beyond what survives a crash, or torn by it, is ignored at load.) The
        // roll is queued first, so the directory is synced even if this write fails.
        let snapshot = producer_state::snapshot_path(&self.dir, new_base);
        self.unsynced_rolls.push(snapshot.clone());
        self.producers.write_snapshot_unsynced(&snapshot)?;
        Ok(())
    }

    /// Inactive segments whose data may not be on disk, oldest first (entries of segments
    /// since deleted or truncated away are skipped).
    fn unsynced_segments(&self) -> impl Iterator<Item = &Segment> + '_ {
        let active_base = self.active().base_offset;
        self.unsynced
            .iter()
            .filter(move |base| **base < active_base)
            .filter_map(|base| self.segments.get(base))
    }

    /// What rolls left to sync, if anything (see `RollSync`).
    pub fn roll_sync(&self) -> Option<RollSync> {
        let segments: Vec<(i64, SegmentFiles)> = self
            .unsynced_segments()
            .map(|s| (s.base_offset, s.sync_files()))
            .collect();
        (!segments.is_empty() || !self.unsynced_rolls.is_empty()).then(|| RollSync {
            segments,
            snapshots: self.unsynced_rolls.clone(),
            dir: self.dir.clone(),
        })
    }

    /// Records that `done` is on disk: the recovery point moves up to the first segment still
    /// unsynced (the active one when none is). The checkpoint that records it is returned, to
    /// be written once the partition lock is released.
    pub fn mark_rolls_synced(&mut self, done: &RollSync) -> Option<RecoveryPointWrite> {
        for (base, _) in &done.segments {
            self.unsynced.remove(base);
        }
        self.unsynced_rolls.retain(|p| !done.snapshots.contains(p));
        let live: BTreeSet<i64> = self.unsynced_segments().map(|s| s.base_offset).collect();
        self.unsynced = live;
        let durable = self.unsynced.first().copied().unwrap_or(self.active().base_offset);
        self.flushed_offset = self.flushed_offset.max(durable);
        if durable <= self.recovery_point {
            return None;
        }
        self.recovery_point = durable;
        Some(self.decide_recovery_point())
    }

    /// The checkpoint of the current recovery point, ordered after every one decided before.
    fn decide_recovery_point(&self) -> RecoveryPointWrite {
        let file = Arc::clone(&self.recovery_point_file);
        let seq = file.decided_seq.fetch_add(1, Ordering::Relaxed) + 1;
        RecoveryPointWrite {
            file,
            seq,
            offset: self.recovery_point,
        }
    }

    fn write_recovery_point(&self) -> Result<(), StorageError> {
        self.decide_recovery_point().write()
    }

    fn write_log_start(&self) -> Result<(), StorageError> {
        let path = self.dir.join(LOG_START_CHECKPOINT_FILE);
        write_offset_checkpoint(&path, &self.topic, self.partition, self.log_start_offset)
    }

    fn out_of_range(&self, offset: i64) -> StorageError {
        StorageError::OffsetOutOfRange {
            offset,
            log_start_offset: self.log_start_offset,
            log_end_offset: self.log_end_offset(),
        }
    }

    /// Reads whole batches starting with the one holding `start_offset`, up to `max_bytes`
    /// (one batch regardless when `min_one_batch`), from a single segment, stopping before any
    /// batch that reaches `max_offset_exclusive` (e.g. the high watermark).
    pub fn read(
        &self,
        start_offset: i64,
        max_bytes: usize,
        max_offset_exclusive: i64,
        min_one_batch: bool,
    ) -> Result<ReadInfo, StorageError> {
        let leo = self.log_end_offset();
        if start_offset < self.log_start_offset || start_offset > leo {
            return Err(self.out_of_range(start_offset));
        }
        let limits = ReadLimits {
            max_bytes,
            max_offset_exclusive,
            min_one_batch,
        };
        let mut records = Bytes::new();
        for segment in self.segments_from(start_offset) {
            if let Some(read) = segment.read(start_offset, &limits)? {
                records = read;
                break;
            }
        }
        Ok(ReadInfo {
            records,
            log_start_offset: self.log_start_offset,
            log_end_offset: leo,
        })
    }

    /// The segments that may hold the first offset `>= offset`, in order.
    fn segments_from(&self, offset: i64) -> impl Iterator<Item = &Segment> + '_ {
        let floor = self.segments.range(..=offset).next_back().map_or(i64::MIN, |(b, _)| *b);
        self.segments.range(floor..).map(|(_, s)| s)
    }

    /// ListOffsets by timestamp: the first record (at or after the log start offset) whose
    /// timestamp is `>= timestamp`, resolved to the record as Kafka does.
    pub fn offset_for_timestamp(&self, timestamp: i64) -> Result<Option<TimestampAndOffset>, StorageError> {
        for segment in self.segments.values() {
            if segment.max_timestamp < timestamp || segment.next_offset <= self.log_start_offset {
                continue;
            }
            let mut position = segment.timestamp_search_start(timestamp);
            while let Some(at) = segment.next_batch(position)? {
                position += at.header.total_size_bytes() as u64;
                let h = &at.header;
                if h.max_timestamp < timestamp || h.last_offset() < self.log_start_offset {
                    continue;
                }
                if let Some(found) = self.record_at_or_after(segment, &at, timestamp)? {
                    return Ok(Some(found));
                }
            }
        }
        Ok(None)
    }

    /// The first record of the batch at `at` with a timestamp `>= timestamp`.
    fn record_at_or_after(
        &self,
        segment: &Segment,
        at: &BatchPosition,
        timestamp: i64,
    ) -> Result<Option<TimestampAndOffset>, StorageError> {
        let h = &at.header;
        let epoch = h.partition_leader_epoch;
        if h.timestamp_type() == TimestampType::LogAppendTime {
            let offset = h.base_offset.max(self.log_start_offset);
            return Ok(Some(TimestampAndOffset {
                timestamp: h.max_timestamp,
                offset,
                leader_epoch: epoch,
            }));
        }
        let batch = segment.read_batch_at(at)?;
        let records = decode_records(&batch, LOOKUP_MAX_DECOMPRESSED_BYTES)?;
        Ok(records.iter().find_map(|r| {
            let ts = h.base_timestamp.saturating_add(r.timestamp_delta);
            let offset = h.base_offset + i64::from(r.offset_delta);
            (ts >= timestamp && offset >= self.log_start_offset).then_some(TimestampAndOffset {
                timestamp: ts,
                offset,
                leader_epoch: epoch,
            })
        }))
    }

    /// ListOffsets -3: the largest timestamp in the log and the offset of the first record
    /// carrying it (Kafka's `offsetOfMaxTimestamp`); `None` for an empty log.
    pub fn max_timestamp_and_offset(&self) -> Result<Option<TimestampAndOffset>, StorageError> {
        let mut best: Option<&Segment> = None;
        for s in self.segments.values() {
            if s.max_timestamp >= 0 && best.is_none_or(|b| s.max_timestamp > b.max_timestamp) {
                best = Some(s);
            }
        }
        let Some(segment) = best else { return Ok(None) };
        let max_ts = segment.max_timestamp;
        let mut position = segment.timestamp_search_start(max_ts);
        while let Some(at) = segment.next_batch(position)? {
            position += at.header.total_size_bytes() as u64;
            if at.header.max_timestamp == max_ts {
                return self.record_at_or_after(segment, &at, max_ts);
            }
        }
        Ok(None)
    }

    /// DeleteRecords: moves the log start offset to `offset` and deletes segments wholly below
    /// it. Checking `offset` against the high watermark is the caller's job.
    pub fn delete_records_before(&mut self, offset: i64, now_ms: i64) -> Result<i64, StorageError> {
        if offset > self.log_end_offset() || offset < 0 {
            return Err(self.out_of_range(offset));
        }
        self.mark_dirty()?;
        if offset > self.log_start_offset {
            self.log_start_offset = offset;
            self.write_log_start()?;
            self.epochs.truncate_from_start(offset)?;
        }
        self.delete_segments_below_start(now_ms)?;
        Ok(self.log_start_offset)
    }

    fn delete_segments_below_start(&mut self, now_ms: i64) -> Result<RetentionOutcome, StorageError> {
        let start = self.log_start_offset;
        let mut outcome = RetentionOutcome::default();
        while let Some(base) = self.oldest_deletable(i64::MAX, |_, next_base| next_base <= start) {
            outcome.deleted_bytes += self.delete_segment(base, now_ms)?;
            outcome.deleted_segments += 1;
        }
        outcome.log_start_offset = self.log_start_offset;
        let first_base = self.segments.keys().next().copied().unwrap_or(self.log_start_offset);
        if first_base > self.snapshots_pruned_below {
            producer_state::delete_snapshots_below(&self.dir, first_base)?;
            self.snapshots_pruned_below = first_base;
        }
        Ok(outcome)
    }

    /// The oldest segment if it is not the active one, lies below `upper_bound_offset` and
    /// satisfies `predicate(segment, next segment's base)`.
    fn oldest_deletable(&self, upper_bound_offset: i64, predicate: impl Fn(&Segment, i64) -> bool) -> Option<i64> {
        let mut iter = self.segments.iter();
        let (base, segment) = iter.next()?;
        let (next_base, _) = iter.next()?;
        (*next_base <= upper_bound_offset && predicate(segment, *next_base)).then_some(*base)
    }

    /// Removes a segment from the log: renamed to `.deleted` now, removed after
    /// `file.delete.delay.ms`. Returns its size.
    pub(crate) fn delete_segment(&mut self, base: i64, now_ms: i64) -> Result<u64, StorageError> {
        if !self.segments.contains_key(&base) {
            return Ok(0);
        }
        self.mark_dirty()?;
        let Some(segment) = self.segments.remove(&base) else {
            return Ok(0);
        };
        let size = segment.size_bytes;
        let due = now_ms.saturating_add(self.config.file_delete_delay_ms);
        for path in segment.rename_to_deleted()? {
            self.pending_deletes.push((due, path));
        }
        self.purge_deleted(now_ms)?;
        Ok(size)
    }

    /// Removes `.deleted` files whose delay has passed.
    pub fn purge_deleted(&mut self, now_ms: i64) -> Result<(), StorageError> {
        let mut keep = Vec::new();
        for (due, path) in std::mem::take(&mut self.pending_deletes) {
            if due > now_ms {
                keep.push((due, path));
                continue;
            }
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e).at(&path),
                _ => {}
            }
        }
        self.pending_deletes = keep;
        Ok(())
    }

    /// Applies `retention.ms` (by each segment's largest timestamp) and `retention.bytes`,
    /// never touching the active segment or data at or above `high_watermark`, then advances
    /// the log start offset past deleted segments.
    pub fn enforce_retention(&mut self, now_ms: i64, high_watermark: i64) -> Result<RetentionOutcome, StorageError> {
        let mut outcome = RetentionOutcome::default();
        let retention_ms = self.config.retention_ms;
        if retention_ms >= 0 {
            while let Some(base) = self.oldest_deletable(high_watermark, |s, _| {
                now_ms.saturating_sub(largest_timestamp(s)) > retention_ms
            }) {
                outcome.deleted_bytes += self.delete_segment(base, now_ms)?;
                outcome.deleted_segments += 1;
            }
        }
        if self.config.retention_bytes >= 0 {
            let mut excess = self.size_bytes() as i64 - self.config.retention_bytes;
            while let Some(base) = self.oldest_deletable(high_watermark, |s, _| excess - s.size_bytes as i64 >= 0) {
                let size = self.delete_segment(base, now_ms)?;
                excess -= size as i64;
                outcome.deleted_bytes += size;
                outcome.deleted_segments += 1;
            }
        }
        self.advance_start_to_first_segment()?;
        let below = self.delete_segments_below_start(now_ms)?;
        outcome.deleted_segments += below.deleted_segments;
        outcome.deleted_bytes += below.deleted_bytes;
        outcome.log_start_offset = self.log_start_offset;
        Ok(outcome)
    }

    fn advance_start_to_first_segment(&mut self) -> Result<(), StorageError> {
        let first = self.segments.keys().next().copied().unwrap_or(self.log_start_offset);
        if first > self.log_start_offset {
            self.log_start_offset = first;
            self.write_log_start()?;
            self.epochs.truncate_from_start(first)?;
        }
        Ok(())
    }

    /// Removes every batch holding offsets `>= offset` (a whole batch goes if `offset` falls
    /// inside it). Below the log start offset the log is emptied and restarts at `offset`.
    pub fn truncate_to(&mut self, offset: i64, now_ms: i64) -> Result<(), StorageError> {
        if offset >= self.log_end_offset() {
            return Ok(());
        }
        self.mark_dirty()?;
        // Snapshots may be written below the last prune's offset from now on.
        self.snapshots_pruned_below = i64::MIN;
        let first_base = self.segments.keys().next().copied().unwrap_or(0);
        if offset < self.log_start_offset || offset <= first_base {
            return self.truncate_fully_and_start_at(offset.max(0), now_ms);
        }
        let doomed: Vec<i64> = self.segments.range(offset..).map(|(b, _)| *b).collect();
        let was_active = doomed.is_empty();
        for base in doomed {
            self.delete_segment(base, now_ms)?;
        }
        let index_bytes = self.config.index_bytes();
        let interval = self.config.index_interval_bytes;
        let active = self.active_mut();
        if !was_active {
            active.make_active(index_bytes)?;
        }
        active.truncate_to(offset, interval)?;
        self.after_truncation()
    }

    fn truncate_fully_and_start_at(&mut self, offset: i64, now_ms: i64) -> Result<(), StorageError> {
        let bases: Vec<i64> = self.segments.keys().copied().collect();
        for base in bases {
            self.delete_segment(base, now_ms)?;
        }
        let segment = Segment::create(&self.dir, offset, self.config.index_bytes(), now_ms)?;
        self.segments.insert(offset, segment);
        sync_dir(&self.dir)?;
        self.log_start_offset = offset;
        self.write_log_start()?;
        self.epochs.clear()?;
        producer_state::delete_snapshots_below(&self.dir, i64::MAX)?;
        self.after_truncation()
    }

    fn after_truncation(&mut self) -> Result<(), StorageError> {
        let leo = self.log_end_offset();
        self.epochs.truncate_from_end(leo)?;
        self.recovery_point = self.recovery_point.min(leo);
        self.flushed_offset = self.flushed_offset.min(leo);
        // Data appended after a truncation is dirty again.
        self.cleaner.first_dirty_offset = self.cleaner.first_dirty_offset.min(leo);
        self.write_recovery_point()?;
        self.load_producer_state()
    }

    /// OffsetForLeaderEpoch: `(epoch, end offset)`, or `None` for an unknown epoch.
    pub fn end_offset_for_epoch(&self, epoch: i32) -> Option<(i32, i64)> {
        self.epochs.end_offset_for(epoch, self.log_end_offset())
    }

    pub fn latest_epoch(&self) -> Option<i32> {
        self.epochs.latest_epoch()
    }

    /// The cached `(epoch, start offset)` pairs, oldest first.
    pub fn epoch_entries(&self) -> Vec<(i32, i64)> {
        self.epochs.entries().to_vec()
    }

    /// New settings apply to the next append, roll and retention pass.
    pub fn update_config(&mut self, config: LogConfig) {
        self.config = config;
    }

    /// fdatasyncs the segments rolled since their last sync and the active one, with their
    /// indexes, and moves the recovery point to the log end offset.
    pub fn flush(&mut self) -> Result<(), StorageError> {
        let leo = self.log_end_offset();
        for segment in self.unsynced_segments() {
            segment.flush()?;
        }
        self.unsynced.clear();
        self.active().flush()?;
        if let Some(rolled) = self.roll_sync() {
            // Snapshots and the directory; the segments were synced just above.
            rolled.sync().at(&self.dir)?;
            self.unsynced_rolls.clear();
        }
        self.flushed_offset = leo;
        self.unflushed_messages = 0;
        if self.recovery_point != leo {
            self.recovery_point = leo;
            self.write_recovery_point()?;
        }
        Ok(())
    }

    pub fn sync_target(&self) -> SyncTarget {
        let mut files: Vec<Arc<File>> = self.unsynced_segments().map(|s| s.log_file()).collect();
        files.push(self.active().log_file());
        SyncTarget {
            files,
            dir: (!self.unsynced_rolls.is_empty()).then(|| self.dir.clone()),
            end_offset: self.log_end_offset(),
        }
    }

    /// Records that a group commit made everything below `offset` durable.
    pub fn mark_flushed(&mut self, offset: i64) {
        let offset = offset.min(self.log_end_offset());
        if offset > self.flushed_offset {
            self.flushed_offset = offset;
            self.unflushed_messages = 0;
        }
    }

    pub fn flushed_offset(&self) -> i64 {
        self.flushed_offset
    }

    /// Flushes, trims the active segment's indexes and marks the shutdown clean.
    ///
    /// A log opened after a clean shutdown and not changed since (every change removes the
    /// marker first, `mark_dirty`) is on disk as that shutdown left it: it closes without
    /// writing or syncing anything, so a broker with many idle partitions stops in
    /// milliseconds rather than a handful of fsyncs per partition.
    pub fn close(mut self) -> Result<(), StorageError> {
        if self.clean_marker.is_some() {
            return Ok(());
        }
        self.active_mut().make_inactive()?;
        self.flush()?;
        self.write_log_start()?;
        // With a snapshot at the log end offset, the next open needs no producer-state scan.
        self.producers.write_snapshot(&self.dir, self.log_end_offset())?;
        let marker = self.dir.join(CLEAN_SHUTDOWN_FILE);
        std::fs::write(&marker, b"").at(&marker)?;
        sync_dir(&self.dir)
    }

    /// Deletes the partition: renames the directory to `<topic>-<partition>.<hex>-delete`
    /// (so a crash midway never leaves a live-looking partition) and removes it.
    pub fn delete(self) -> Result<(), StorageError> {
        let dir = self.dir.clone();
        let hex = self
            .topic_id
            .map_or_else(random_hex, |id| id.iter().map(|b| format!("{b:02x}")).collect());
        drop(self);
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let target = dir.with_file_name(format!("{name}.{hex}-delete"));
        std::fs::rename(&dir, &target).at(&dir)?;
        if let Some(parent) = target.parent() {
            sync_dir(parent)?;
        }
        std::fs::remove_dir_all(&target).at(&target)
    }

    /// Path of the `.log` file of every segment, oldest first (tests, DescribeLogDirs).
    pub fn segment_paths(&self) -> Vec<PathBuf> {
        self.segments.values().map(|s| s.log_path().to_path_buf()).collect()
    }
}

/// Retention clock of a segment: its largest timestamp, or the file's mtime if it has none.
pub(crate) fn largest_timestamp(segment: &Segment) -> i64 {
    if segment.max_timestamp >= 0 {
        return segment.max_timestamp;
    }
    std::fs::metadata(segment.log_path())
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(i64::MAX, |d| d.as_millis() as i64)
}

/// Replays the batches of `segment` from `from` into `state`, adding the aborts to the
/// segment's transaction index when `index_aborts`.
fn replay_segment(
    state: &mut ProducerStateManager,
    segment: &mut Segment,
    from: i64,
    index_aborts: bool,
) -> Result<(), StorageError> {
    let mut next = segment.find_batch(from)?;
    while let Some(at) = next {
        let marker = match at.header.is_control() && at.header.producer_id >= 0 {
            true => read_marker(segment, &at)?,
            false => None,
        };
        match state.replay(&at.header, marker) {
            Some(aborted) if index_aborts => segment.txn_index.append(aborted)?,
            _ => {}
        }
        next = segment.next_batch(at.position + at.header.total_size_bytes() as u64)?;
    }
    Ok(())
}

/// The end-transaction marker of the control batch at `at`. A CRC-valid batch whose marker
/// cannot be decoded is skipped with a warning (as an empty control batch), rather than making
/// the partition unopenable.
fn read_marker(segment: &Segment, at: &BatchPosition) -> Result<Option<EndTxnMarker>, StorageError> {
    let bytes = segment.read_batch_at(at)?;
    match decode_end_txn_marker(&bytes) {
        Ok(marker) => Ok(marker),
        Err(e) => {
            tracing::warn!(path = %segment.log_path().display(), offset = at.header.base_offset, error = %e, "skipping an undecodable control batch");
            Ok(None)
        }
    }
}

/// Every batch header of `buf` (already validated by the caller; lengths are re-checked).
fn batches_headers(buf: &[u8]) -> Result<Vec<runnel_protocol::records::BatchHeader>, StorageError> {
    batches(buf).map(|b| Ok(b?.0)).collect()
}

/// Header walk over batches that already carry offsets: checks they increase from
/// `log_end_offset` and collects the epoch changes.
fn follower_offsets(buf: &[u8], log_end_offset: i64) -> Result<(AssignedOffsets, Vec<(i32, i64)>), StorageError> {
    let mut out: Option<AssignedOffsets> = None;
    let mut epochs: Vec<(i32, i64)> = Vec::new();
    let mut next = log_end_offset;
    for item in batches(buf) {
        let (h, _) = item?;
        if h.base_offset < next || h.last_offset_delta < 0 {
            return Err(StorageError::OffsetBelowLogEnd {
                offset: h.base_offset,
                log_end_offset: next,
            });
        }
        if epochs.last().is_none_or(|(e, _)| h.partition_leader_epoch > *e) {
            epochs.push((h.partition_leader_epoch, h.base_offset));
        }
        let a = out.get_or_insert(AssignedOffsets {
            first_offset: h.base_offset,
            last_offset: h.last_offset(),
            batch_count: 0,
            max_timestamp: h.max_timestamp,
            offset_of_max_timestamp: h.last_offset(),
            first_batch_max_timestamp: h.max_timestamp,
        });
        a.batch_count += 1;
        a.last_offset = h.last_offset();
        if h.max_timestamp > a.max_timestamp {
            (a.max_timestamp, a.offset_of_max_timestamp) = (h.max_timestamp, h.last_offset());
        }
        next = h.last_offset() + 1;
    }
    let assigned = out.ok_or(StorageError::InvalidRecords(RecordError::Empty))?;
    Ok((assigned, epochs))
}

/// Opens every segment, trusting or recovering each, and creates a first one if there is none.
fn load_segments(
    dir: &Path,
    config: &LogConfig,
    recovery_point: i64,
    start_offset: i64,
    now_ms: i64,
) -> Result<(BTreeMap<i64, Segment>, bool), StorageError> {
    let bases = scan_dir(dir)?;
    remove_orphan_indexes(dir, &bases)?;
    let mut segments = BTreeMap::new();
    let mut changed = false;
    for (i, base) in bases.iter().enumerate() {
        let next_base = bases.get(i + 1).copied();
        let (segment, loaded) = load_segment(dir, config, *base, next_base, recovery_point, now_ms)?;
        changed |= loaded != Loaded::Trusted;
        if loaded == Loaded::Truncated && next_base.is_some() {
            // A rolled segment is synced in the background, so a crash can leave its tail torn
            // while later segments reached the disk. Past the recovery point nothing of it was
            // known durable: as Kafka does, the log ends at the last valid batch and the later
            // segments go.
            let later = &bases[i + 1..];
            tracing::warn!(path = %segment.log_path().display(), dropped_segments = later.len(), "log ends in an unsynced segment; removing the segments after it");
            for later_base in later {
                remove_segment_files(dir, *later_base)?;
            }
            sync_dir(dir)?;
            segments.insert(*base, segment);
            break;
        }
        if let Some(nb) = next_base {
            if segment.next_offset > nb {
                return Err(StorageError::CorruptSegment {
                    path: segment.log_path().to_path_buf(),
                    position: segment.size_bytes,
                    reason: format!(
                        "offsets reach {} past the next segment's base {nb}",
                        segment.next_offset - 1
                    ),
                });
            }
        }
        segments.insert(*base, segment);
    }
    if segments.is_empty() {
        let segment = Segment::create(dir, start_offset.max(0), config.index_bytes(), now_ms)?;
        segments.insert(segment.base_offset, segment);
        sync_dir(dir)?;
        changed = true;
    }
    Ok((segments, changed))
}

/// How `load_segment` found a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Loaded {
    /// Its indexes were trusted as they are.
    Trusted,
    /// Scanned and its indexes rebuilt; every batch was valid.
    Rebuilt,
    /// Scanned, and cut at its first invalid batch.
    Truncated,
}

/// Removes a segment's log and index files (those that exist).
fn remove_segment_files(dir: &Path, base: i64) -> Result<(), StorageError> {
    SEGMENT_SUFFIXES
        .into_iter()
        .try_for_each(|suffix| remove_if_exists(&dir.join(file_name(base, suffix))))
}

/// Opens one segment. Below the recovery point its indexes are trusted when they look sane;
/// past it the segment is scanned, and a torn or corrupt tail is cut off. An invalid batch in
/// a segment wholly below the recovery point (data known to be on disk) is a disk fault.
fn load_segment(
    dir: &Path,
    config: &LogConfig,
    base: i64,
    next_base: Option<i64>,
    recovery_point: i64,
    now_ms: i64,
) -> Result<(Segment, Loaded), StorageError> {
    let is_last = next_base.is_none();
    let index_bytes = config.index_bytes();
    let interval = config.index_interval_bytes;
    let clean = recovery_point == i64::MAX;
    // After a clean shutdown the active segment's indexes stay trimmed (as the shutdown left
    // them) until the first change: an expanded index under a clean-shutdown marker would be
    // read as full of entries after a crash.
    let capacity = (is_last && !clean).then_some(index_bytes);
    let mut segment = Segment::open(dir, base, capacity, now_ms)?;
    let past_recovery_point = next_base.is_none_or(|nb| nb > recovery_point);
    if !past_recovery_point && segment.load_trusted(interval) {
        return Ok((segment, Loaded::Trusted));
    }
    if past_recovery_point && is_last && clean && segment.load_trusted(interval) {
        return Ok((segment, Loaded::Trusted));
    }
    segment.make_active(index_bytes)?;
    // Recovered data may hold markers the index never saw, or lost ones it did.
    segment.txn_index_needs_rebuild = true;
    let outcome = segment.scan_and_rebuild(interval)?;
    let mut loaded = Loaded::Rebuilt;
    if let Some(reason) = outcome.problem {
        if !past_recovery_point {
            return Err(StorageError::CorruptSegment {
                path: segment.log_path().to_path_buf(),
                position: outcome.valid_bytes,
                reason,
            });
        }
        tracing::warn!(path = %segment.log_path().display(), position = outcome.valid_bytes, %reason, "truncating the log's torn or corrupt tail");
        segment.truncate_file_to_size()?;
        loaded = Loaded::Truncated;
    }
    if !is_last && loaded != Loaded::Truncated {
        segment.make_inactive()?;
    }
    Ok((segment, loaded))
}

fn remove_orphan_indexes(dir: &Path, bases: &[i64]) -> Result<(), StorageError> {
    for entry in std::fs::read_dir(dir).at(dir)? {
        let entry = entry.at(dir)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some((stem, suffix)) = name.split_once('.') else {
            continue;
        };
        if suffix != "index" && suffix != "timeindex" && suffix != "txnindex" {
            continue;
        }
        let has_log = stem
            .parse::<i64>()
            .is_ok_and(|b| bases.contains(&b) && file_name(b, LOG_SUFFIX).starts_with(stem));
        if !has_log {
            std::fs::remove_file(entry.path()).at(&entry.path())?;
        }
    }
    Ok(())
}
