//! Per-partition producer state for idempotent and transactional producers (Kafka's
//! `ProducerStateManager` and `ProducerAppendInfo`).
//!
//! Owns: for every producer id that wrote to the partition, its epoch, the metadata of its last
//! five batches (sequence range, offset range, timestamp), its last timestamp, the epoch of the
//! coordinator that wrote its last transaction marker and the first offset of its ongoing
//! transaction; the rules that decide whether a leader append is new, a duplicate retry, fenced
//! (lower epoch), out of order, or breaks transaction state; which transactions a marker
//! completes and the last stable offset right after it; and the `<20-digit offset>.snapshot`
//! files that let recovery start from a known state.
//!
//! Must never: decide anything from data-record contents (headers only; a marker's key and
//! value are decoded by the caller), or write to the log. The log asks `check_append` /
//! `check_marker` *before* writing and calls `commit` only after the bytes are written, so a
//! rejected or failed append leaves the state untouched.
//!
//! Invariants: a snapshot at offset N describes exactly the batches below N; snapshot files are
//! written temp -> fsync -> rename -> fsync dir and carry a CRC32C over their body; at most
//! `BATCHES_RETAINED` batches are kept per producer, all of one epoch (a new epoch clears them);
//! `ongoing` holds exactly the producers whose `current_txn_first_offset` is set; a producer
//! with an ongoing transaction never expires.
//!
//! Like Kafka 4, an unknown producer (no state, e.g. expired or removed by retention) may start
//! at any sequence: the broker never answers UNKNOWN_PRODUCER_ID on a leader append. Nor does it
//! answer DUPLICATE_SEQUENCE_NUMBER: a retry older than the last five batches is out of order.
//! Markers are checked with the pre-KIP-890 rule (an epoch equal to the producer's is accepted).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::{Path, PathBuf};

use runnel_protocol::records::BatchHeader;

use crate::checkpoint::{write_atomic, write_replace_unsynced};
use crate::error::{IoContext, StorageError};
use crate::txn_index::{AbortedTxn, EndTxnMarker};

/// Batches remembered per producer for duplicate detection (Kafka's `NUM_BATCHES_TO_RETAIN`,
/// matching the client's `max.in.flight.requests.per.connection` limit of 5).
pub const BATCHES_RETAINED: usize = 5;
/// Kafka's `producer.id.expiration.check.interval.ms` default.
pub const EXPIRATION_CHECK_INTERVAL_MS: i64 = 600_000;
const NO_PRODUCER_EPOCH: i16 = -1;
const NO_SEQUENCE: i32 = -1;
const SNAPSHOT_SUFFIX: &str = ".snapshot";
const SNAPSHOT_MAGIC: &[u8; 4] = b"RNPS";
/// v1: idempotence only; v2 adds each producer's coordinator epoch and ongoing transaction.
const SNAPSHOT_VERSION: u16 = 2;
const SNAPSHOT_VERSION_V1: u16 = 1;
/// magic + version + crc + producer count.
const SNAPSHOT_HEADER_BYTES: usize = 4 + 2 + 4 + 4;
/// v1: producer id + epoch + last timestamp + batch count.
const ENTRY_FIXED_BYTES_V1: usize = 8 + 2 + 8 + 1;
/// v2: v1 + coordinator epoch + current transaction first offset.
const ENTRY_FIXED_BYTES: usize = ENTRY_FIXED_BYTES_V1 + 4 + 8;
const NO_COORDINATOR_EPOCH: i32 = -1;
/// Completed transactions remembered until the high watermark passes their marker; beyond
/// this many (the broker never reported a high watermark) the oldest are forgotten.
const MAX_UNREPLICATED_TXNS: usize = 100_000;
/// first seq + last seq + first offset + last offset + timestamp.
const BATCH_BYTES: usize = 4 + 4 + 8 + 8 + 8;
/// Refuse snapshot files larger than this before reading them.
const MAX_SNAPSHOT_BYTES: u64 = 512 * 1024 * 1024;

/// One appended batch of a producer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchMetadata {
    pub first_seq: i32,
    pub last_seq: i32,
    pub first_offset: i64,
    pub last_offset: i64,
    /// The batch's max timestamp.
    pub timestamp_ms: i64,
}

/// What the partition knows about one producer id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerStateEntry {
    pub producer_id: i64,
    pub producer_epoch: i16,
    /// Oldest first, at most `BATCHES_RETAINED`.
    pub batches: VecDeque<BatchMetadata>,
    pub last_timestamp_ms: i64,
    /// Epoch of the transaction coordinator that wrote this producer's last marker, or -1.
    pub coordinator_epoch: i32,
    /// First offset of the producer's ongoing transaction here (DescribeProducers'
    /// `CurrentTxnStartOffset`); `None` outside a transaction.
    pub current_txn_first_offset: Option<i64>,
}

impl ProducerStateEntry {
    fn empty(producer_id: i64) -> Self {
        Self {
            producer_id,
            producer_epoch: NO_PRODUCER_EPOCH,
            batches: VecDeque::new(),
            last_timestamp_ms: -1,
            coordinator_epoch: NO_COORDINATOR_EPOCH,
            current_txn_first_offset: None,
        }
    }

    /// Sequences restart with a new epoch; old batches can no longer be retried.
    fn maybe_update_epoch(&mut self, epoch: i16) {
        if epoch != self.producer_epoch {
            self.batches.clear();
            self.producer_epoch = epoch;
        }
    }

    /// An end-transaction marker was written (Kafka's `ProducerStateEntry.update`).
    fn end_txn(&mut self, epoch: i16, coordinator_epoch: i32, timestamp_ms: i64) {
        self.maybe_update_epoch(epoch);
        self.current_txn_first_offset = None;
        self.coordinator_epoch = coordinator_epoch;
        self.last_timestamp_ms = timestamp_ms;
    }

    /// Notes a data batch's transaction state: the first transactional batch opens a
    /// transaction at its offset.
    fn note_txn_state(&mut self, h: &BatchHeader, offset: i64) -> Result<(), StorageError> {
        match (self.current_txn_first_offset, h.is_transactional()) {
            (Some(_), false) => Err(StorageError::InvalidTxnState {
                producer_id: h.producer_id,
                offset,
            }),
            (None, true) => {
                self.current_txn_first_offset = Some(offset);
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Last sequence appended in the current epoch, or -1.
    pub fn last_seq(&self) -> i32 {
        self.batches.back().map_or(NO_SEQUENCE, |b| b.last_seq)
    }

    fn find_duplicate(&self, epoch: i16, first_seq: i32, last_seq: i32) -> Option<BatchMetadata> {
        if epoch != self.producer_epoch {
            return None;
        }
        self.batches
            .iter()
            .find(|b| b.first_seq == first_seq && b.last_seq == last_seq)
            .copied()
    }

    fn add_batch(&mut self, epoch: i16, batch: BatchMetadata) {
        self.maybe_update_epoch(epoch);
        self.batches.push_back(batch);
        while self.batches.len() > BATCHES_RETAINED {
            self.batches.pop_front();
        }
        self.last_timestamp_ms = batch.timestamp_ms;
    }
}

/// The verdict on a leader append, decided before anything is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppendCheck {
    /// A retry of a batch already in the log: do not append, answer with these offsets.
    Duplicate(BatchMetadata),
    /// New data: append it, then `commit` this update.
    Fresh(ProducerUpdate),
}

/// Producer entries as they will be once an accepted append is written.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProducerUpdate {
    entries: HashMap<i64, ProducerStateEntry>,
    /// Transactions a marker in the append completes.
    completed: Vec<CompletedTxn>,
}

/// Who is appending, which decides how much is validated (Kafka's `AppendOrigin`; replication
/// and recovery go through `replay`, which validates nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendOrigin {
    /// A producer: epochs, sequences, duplicates and transaction state are checked.
    Client,
    /// The broker's own coordinators (e.g. transactional offset commits): no sequence or
    /// duplicate checks (batches may carry sequence -1), epochs and transaction state checked.
    Coordinator,
}

/// A transaction ended by a marker (Kafka's `CompletedTxn`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompletedTxn {
    pub producer_id: i64,
    pub first_offset: i64,
    /// Offset of the marker.
    pub last_offset: i64,
    pub aborted: bool,
}

/// Sequence `next` directly follows `last` (Kafka wraps sequences at `i32::MAX`).
fn in_sequence(last: i32, next: i32) -> bool {
    i64::from(next) == i64::from(last) + 1 || (next == 0 && last == i32::MAX)
}

/// Whether a batch is subject to producer-state tracking: a data batch with a producer id.
fn is_producer_batch(h: &BatchHeader) -> bool {
    h.producer_id >= 0 && !h.is_control()
}

fn batch_metadata(h: &BatchHeader, first_offset: i64) -> BatchMetadata {
    BatchMetadata {
        first_seq: h.base_sequence,
        last_seq: h.last_sequence(),
        first_offset,
        last_offset: first_offset + i64::from(h.last_offset_delta),
        timestamp_ms: h.max_timestamp,
    }
}

/// Producer states of one partition.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProducerStateManager {
    producers: HashMap<i64, ProducerStateEntry>,
    last_expiration_check_ms: i64,
    /// Ongoing transactions: first offset -> producer id (always derived from `producers`).
    ongoing: BTreeMap<i64, i64>,
    /// Completed transactions `(first offset, marker offset)` in marker order, until the high
    /// watermark passes the marker (Kafka's `unreplicatedTxns`).
    unreplicated: VecDeque<(i64, i64)>,
}

impl ProducerStateManager {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn get(&self, producer_id: i64) -> Option<&ProducerStateEntry> {
        self.producers.get(&producer_id)
    }

    pub fn len(&self) -> usize {
        self.producers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }

    /// Every producer, by id (DescribeProducers, tests).
    pub fn entries(&self) -> impl Iterator<Item = &ProducerStateEntry> {
        self.producers.values()
    }

    /// Validates `headers` (in order, the first taking `first_offset`, offsets assigned
    /// consecutively) as a client append to the leader. The first batch of a producer that
    /// repeats one of its last five batches makes the whole append a duplicate (as Kafka does).
    pub fn check_append(&self, headers: &[BatchHeader], first_offset: i64) -> Result<AppendCheck, StorageError> {
        self.check_append_from(headers, first_offset, AppendOrigin::Client)
    }

    /// `check_append` for an append from `origin`. Control batches are refused: markers are
    /// written through `check_marker`.
    pub fn check_append_from(
        &self,
        headers: &[BatchHeader],
        first_offset: i64,
        origin: AppendOrigin,
    ) -> Result<AppendCheck, StorageError> {
        let mut update = ProducerUpdate::default();
        let mut next_offset = first_offset;
        for h in headers {
            let offset = next_offset;
            next_offset = offset + i64::from(h.last_offset_delta) + 1;
            if h.is_control() {
                return Err(StorageError::ControlBatchNotAllowed { offset });
            }
            if !is_producer_batch(h) {
                continue;
            }
            let current = self.producers.get(&h.producer_id);
            if origin == AppendOrigin::Client && !update.entries.contains_key(&h.producer_id) {
                if let Some(dup) =
                    current.and_then(|e| e.find_duplicate(h.producer_epoch, h.base_sequence, h.last_sequence()))
                {
                    return Ok(AppendCheck::Duplicate(dup));
                }
            }
            let current_epoch = current.map_or(NO_PRODUCER_EPOCH, |e| e.producer_epoch);
            let entry = update.entries.entry(h.producer_id).or_insert_with(|| {
                current
                    .cloned()
                    .unwrap_or_else(|| ProducerStateEntry::empty(h.producer_id))
            });
            check_epoch(entry, h.producer_id, h.producer_epoch)?;
            if origin == AppendOrigin::Client {
                check_sequence(entry, current_epoch, h)?;
            }
            entry.add_batch(h.producer_epoch, batch_metadata(h, offset));
            entry.note_txn_state(h, offset)?;
        }
        Ok(AppendCheck::Fresh(update))
    }

    /// Validates an end-transaction marker for `producer_id` to be written at `offset`
    /// (Kafka's `appendEndTxnMarker`): a lower producer epoch is fenced, a lower coordinator
    /// epoch is a zombie coordinator. A marker for a producer without an ongoing transaction is
    /// valid and completes nothing.
    pub fn check_marker(
        &self,
        producer_id: i64,
        producer_epoch: i16,
        marker: EndTxnMarker,
        offset: i64,
        timestamp_ms: i64,
    ) -> Result<ProducerUpdate, StorageError> {
        let mut entry = self
            .producers
            .get(&producer_id)
            .cloned()
            .unwrap_or_else(|| ProducerStateEntry::empty(producer_id));
        check_epoch(&entry, producer_id, producer_epoch)?;
        if entry.coordinator_epoch > marker.coordinator_epoch {
            return Err(StorageError::TransactionCoordinatorFenced {
                producer_id,
                coordinator_epoch: marker.coordinator_epoch,
                current_coordinator_epoch: entry.coordinator_epoch,
            });
        }
        let mut update = ProducerUpdate::default();
        update.completed.extend(complete(&entry, marker, offset));
        entry.end_txn(producer_epoch, marker.coordinator_epoch, timestamp_ms);
        update.entries.insert(producer_id, entry);
        Ok(update)
    }

    /// Applies an update decided by `check_append` / `check_marker` once its batches are in the
    /// log. Returns the aborted transactions it completed, each with the last stable offset
    /// right after it (for the transaction index of the segment holding the marker).
    pub fn commit(&mut self, update: ProducerUpdate) -> Vec<AbortedTxn> {
        let mut aborted = Vec::new();
        for c in &update.completed {
            let last_stable_offset = self.last_stable_offset_after(c);
            self.ongoing.remove(&c.first_offset);
            self.unreplicated.push_back((c.first_offset, c.last_offset));
            if self.unreplicated.len() > MAX_UNREPLICATED_TXNS {
                self.unreplicated.pop_front();
            }
            if c.aborted {
                aborted.push(AbortedTxn {
                    producer_id: c.producer_id,
                    first_offset: c.first_offset,
                    last_offset: c.last_offset,
                    last_stable_offset,
                });
            }
        }
        for (producer_id, entry) in update.entries {
            let old = self
                .producers
                .get(&producer_id)
                .and_then(|e| e.current_txn_first_offset);
            if old != entry.current_txn_first_offset {
                if let Some(o) = old {
                    self.ongoing.remove(&o);
                }
                if let Some(n) = entry.current_txn_first_offset {
                    self.ongoing.insert(n, producer_id);
                }
            }
            self.producers.insert(producer_id, entry);
        }
        aborted
    }

    /// Kafka's `lastStableOffset(completedTxn)`: the first offset of the earliest other ongoing
    /// transaction, or just past the marker.
    fn last_stable_offset_after(&self, c: &CompletedTxn) -> i64 {
        self.ongoing
            .iter()
            .find(|(_, pid)| **pid != c.producer_id)
            .map_or(c.last_offset + 1, |(first, _)| *first)
    }

    /// Replays a batch already in the log (recovery, followers): no validation, like Kafka's
    /// replication origin. `h.base_offset` must be the batch's real offset; `marker` is the
    /// content of a control batch. Returns the transaction an abort marker completed.
    pub fn replay(&mut self, h: &BatchHeader, marker: Option<EndTxnMarker>) -> Option<AbortedTxn> {
        if h.producer_id < 0 {
            return None;
        }
        let mut entry = self
            .producers
            .get(&h.producer_id)
            .cloned()
            .unwrap_or_else(|| ProducerStateEntry::empty(h.producer_id));
        let mut update = ProducerUpdate::default();
        if h.is_control() {
            // An empty control batch (its transaction was cleaned away) changes nothing.
            let marker = marker?;
            update.completed.extend(complete(&entry, marker, h.base_offset));
            entry.end_txn(h.producer_epoch, marker.coordinator_epoch, h.max_timestamp);
        } else {
            entry.add_batch(h.producer_epoch, batch_metadata(h, h.base_offset));
            if h.is_transactional() && entry.current_txn_first_offset.is_none() {
                entry.current_txn_first_offset = Some(h.base_offset);
            }
        }
        update.entries.insert(h.producer_id, entry);
        self.commit(update).pop()
    }

    /// Earliest first offset of the ongoing transactions (the broker's last stable offset is
    /// at most this); `None` when no transaction is open.
    pub fn first_unstable_offset(&self) -> Option<i64> {
        self.ongoing.keys().next().copied()
    }

    /// Kafka's last stable offset given the high watermark: the smallest of the high
    /// watermark, the first offset of every ongoing transaction and that of every completed
    /// transaction whose marker is not yet below the high watermark.
    pub fn last_stable_offset(&self, high_watermark: i64) -> i64 {
        let unreplicated = self
            .unreplicated
            .iter()
            .filter(|(_, marker)| *marker >= high_watermark)
            .map(|(first, _)| *first)
            .min();
        [Some(high_watermark), self.first_unstable_offset(), unreplicated]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(high_watermark)
    }

    /// Forgets completed transactions whose marker is below the high watermark.
    pub fn on_high_watermark_updated(&mut self, high_watermark: i64) {
        while self.unreplicated.front().is_some_and(|(_, m)| *m < high_watermark) {
            self.unreplicated.pop_front();
        }
    }

    /// `(producer id, epoch, first offset)` of every ongoing transaction, by first offset.
    pub fn ongoing_transactions(&self) -> Vec<(i64, i16, i64)> {
        self.ongoing
            .iter()
            .map(|(first, pid)| {
                let epoch = self.producers.get(pid).map_or(NO_PRODUCER_EPOCH, |e| e.producer_epoch);
                (*pid, epoch, *first)
            })
            .collect()
    }

    /// Forgets producers idle for `expiration_ms` or more (`producer.id.expiration.ms`),
    /// measured from the timestamp of their last batch, as Kafka does. A producer with an
    /// ongoing transaction never expires. Returns how many went.
    pub fn remove_expired(&mut self, now_ms: i64, expiration_ms: i64) -> usize {
        let before = self.producers.len();
        self.producers.retain(|_, e| {
            e.current_txn_first_offset.is_some() || now_ms.saturating_sub(e.last_timestamp_ms) < expiration_ms
        });
        self.last_expiration_check_ms = now_ms;
        before - self.producers.len()
    }

    /// `remove_expired` at most once per `EXPIRATION_CHECK_INTERVAL_MS`.
    pub fn maybe_remove_expired(&mut self, now_ms: i64, expiration_ms: i64) {
        if now_ms.saturating_sub(self.last_expiration_check_ms) >= EXPIRATION_CHECK_INTERVAL_MS {
            self.remove_expired(now_ms, expiration_ms);
        }
    }

    pub fn clear(&mut self) {
        self.producers.clear();
        self.ongoing.clear();
        self.unreplicated.clear();
    }

    /// Serialises the state (see `decode_snapshot` for the layout).
    pub fn encode_snapshot(&self) -> Vec<u8> {
        let mut ids: Vec<&i64> = self.producers.keys().collect();
        ids.sort_unstable();
        let mut body = Vec::with_capacity(4 + ids.len() * (ENTRY_FIXED_BYTES + BATCH_BYTES));
        body.extend_from_slice(&(ids.len() as u32).to_be_bytes());
        for id in ids {
            let e = &self.producers[id];
            body.extend_from_slice(&e.producer_id.to_be_bytes());
            body.extend_from_slice(&e.producer_epoch.to_be_bytes());
            body.extend_from_slice(&e.last_timestamp_ms.to_be_bytes());
            body.extend_from_slice(&e.coordinator_epoch.to_be_bytes());
            body.extend_from_slice(&e.current_txn_first_offset.unwrap_or(-1).to_be_bytes());
            body.push(e.batches.len() as u8);
            for b in &e.batches {
                body.extend_from_slice(&b.first_seq.to_be_bytes());
                body.extend_from_slice(&b.last_seq.to_be_bytes());
                body.extend_from_slice(&b.first_offset.to_be_bytes());
                body.extend_from_slice(&b.last_offset.to_be_bytes());
                body.extend_from_slice(&b.timestamp_ms.to_be_bytes());
            }
        }
        let mut out = Vec::with_capacity(SNAPSHOT_HEADER_BYTES + body.len());
        out.extend_from_slice(SNAPSHOT_MAGIC);
        out.extend_from_slice(&SNAPSHOT_VERSION.to_be_bytes());
        out.extend_from_slice(&crc32c::crc32c(&body).to_be_bytes());
        out.extend_from_slice(&body);
        out
    }

    /// Parses a snapshot: `"RNPS"`, version u16, CRC32C u32 of the rest, producer count u32,
    /// then per producer: id i64, epoch i16, last timestamp i64, (v2 only: coordinator epoch
    /// i32, ongoing transaction's first offset i64 or -1), batch count u8 (<= 5) and per batch
    /// first seq i32, last seq i32, first offset i64, last offset i64, timestamp i64.
    /// Big-endian throughout. Every count is checked against the bytes that remain.
    pub fn decode_snapshot(buf: &[u8]) -> Result<Self, String> {
        let mut r = Reader { buf, pos: 0 };
        if r.take(4)? != SNAPSHOT_MAGIC {
            return Err("bad magic".into());
        }
        let version = r.u16()?;
        if version != SNAPSHOT_VERSION && version != SNAPSHOT_VERSION_V1 {
            return Err(format!("unknown snapshot version {version}"));
        }
        let entry_fixed_bytes = match version {
            SNAPSHOT_VERSION_V1 => ENTRY_FIXED_BYTES_V1,
            _ => ENTRY_FIXED_BYTES,
        };
        let crc = r.u32()?;
        let body = &buf[r.pos..];
        if crc32c::crc32c(body) != crc {
            return Err("CRC mismatch".into());
        }
        let count = r.u32()? as usize;
        if count > r.remaining() / entry_fixed_bytes {
            return Err(format!("{count} producers cannot fit in {} bytes", r.remaining()));
        }
        let mut producers = HashMap::with_capacity(count);
        let mut ongoing = BTreeMap::new();
        for _ in 0..count {
            let entry = r.entry(version)?;
            if let Some(first) = entry.current_txn_first_offset {
                if ongoing.insert(first, entry.producer_id).is_some() {
                    return Err(format!("two transactions start at offset {first}"));
                }
            }
            producers.insert(entry.producer_id, entry);
        }
        if r.remaining() != 0 {
            return Err(format!("{} trailing bytes", r.remaining()));
        }
        Ok(Self {
            producers,
            last_expiration_check_ms: 0,
            ongoing,
            unreplicated: VecDeque::new(),
        })
    }

    /// Writes `<dir>/<offset>.snapshot` atomically.
    pub fn write_snapshot(&self, dir: &Path, offset: i64) -> Result<(), StorageError> {
        write_atomic(&snapshot_path(dir, offset), &self.encode_snapshot())
    }

    /// `write_snapshot` to `path` (`snapshot_path`) without the fsyncs, for a segment roll
    /// (Kafka takes that snapshot unsynced too and flushes it with the rolled segment). A
    /// snapshot torn by a crash fails its CRC and is deleted at load.
    pub fn write_snapshot_unsynced(&self, path: &Path) -> Result<(), StorageError> {
        write_replace_unsynced(path, &self.encode_snapshot())
    }

    /// The newest readable snapshot at or below `max_offset`, and its offset. Snapshots above
    /// `max_offset` (the log was truncated below them) and unreadable ones are deleted.
    pub fn load_latest_snapshot(dir: &Path, max_offset: i64) -> Result<Option<(Self, i64)>, StorageError> {
        let mut offsets = list_snapshots(dir)?;
        for offset in offsets.iter().filter(|o| **o > max_offset) {
            remove_if_exists(&snapshot_path(dir, *offset))?;
        }
        offsets.retain(|o| *o <= max_offset);
        while let Some(offset) = offsets.pop() {
            let path = snapshot_path(dir, offset);
            match read_snapshot(&path)? {
                Ok(state) => return Ok(Some((state, offset))),
                Err(reason) => {
                    tracing::warn!(path = %path.display(), %reason, "deleting unreadable producer snapshot");
                    remove_if_exists(&path)?;
                }
            }
        }
        Ok(None)
    }
}

fn check_epoch(entry: &ProducerStateEntry, producer_id: i64, epoch: i16) -> Result<(), StorageError> {
    if epoch < entry.producer_epoch {
        return Err(StorageError::InvalidProducerEpoch {
            producer_id,
            epoch,
            current_epoch: entry.producer_epoch,
        });
    }
    Ok(())
}

/// The transaction a marker at `offset` completes, if the producer has one open.
fn complete(entry: &ProducerStateEntry, marker: EndTxnMarker, offset: i64) -> Option<CompletedTxn> {
    entry.current_txn_first_offset.map(|first_offset| CompletedTxn {
        producer_id: entry.producer_id,
        first_offset,
        last_offset: offset,
        aborted: !marker.commit,
    })
}

/// Kafka's rule: a new epoch must start at sequence 0 (unless the producer had no epoch at
/// all); within an epoch each batch must follow the last one, except that a producer whose
/// state is unknown here may start anywhere.
fn check_sequence(entry: &ProducerStateEntry, current_epoch: i16, h: &BatchHeader) -> Result<(), StorageError> {
    let out_of_order = if h.producer_epoch != entry.producer_epoch {
        h.base_sequence != 0 && entry.producer_epoch != NO_PRODUCER_EPOCH
    } else {
        current_epoch != NO_PRODUCER_EPOCH && !in_sequence(entry.last_seq(), h.base_sequence)
    };
    if out_of_order {
        return Err(StorageError::OutOfOrderSequence {
            producer_id: h.producer_id,
            epoch: h.producer_epoch,
            first_seq: h.base_sequence,
            last_seq: entry.last_seq(),
        });
    }
    Ok(())
}

pub(crate) fn snapshot_path(dir: &Path, offset: i64) -> PathBuf {
    dir.join(format!("{offset:020}{SNAPSHOT_SUFFIX}"))
}

/// Offsets of the `<20 digits>.snapshot` files in `dir`, ascending.
pub(crate) fn list_snapshots(dir: &Path) -> Result<Vec<i64>, StorageError> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).at(dir)? {
        let name = entry.at(dir)?.file_name().to_string_lossy().into_owned();
        let Some(stem) = name.strip_suffix(SNAPSHOT_SUFFIX) else {
            continue;
        };
        if stem.len() == 20 && stem.bytes().all(|b| b.is_ascii_digit()) {
            if let Ok(offset) = stem.parse::<i64>() {
                out.push(offset);
            }
        }
    }
    out.sort_unstable();
    Ok(out)
}

/// Deletes snapshots below `offset` (they describe segments no longer in the log).
pub(crate) fn delete_snapshots_below(dir: &Path, offset: i64) -> Result<(), StorageError> {
    for o in list_snapshots(dir)?.into_iter().filter(|o| *o < offset) {
        remove_if_exists(&snapshot_path(dir, o))?;
    }
    Ok(())
}

fn remove_if_exists(path: &Path) -> Result<(), StorageError> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e).at(path),
        _ => Ok(()),
    }
}

/// Outer `Err` is an I/O fault; inner `Err` a corrupt file (the caller drops it).
fn read_snapshot(path: &Path) -> Result<Result<ProducerStateManager, String>, StorageError> {
    let size = std::fs::metadata(path).at(path)?.len();
    if size > MAX_SNAPSHOT_BYTES {
        return Ok(Err(format!("{size} bytes exceeds the {MAX_SNAPSHOT_BYTES}-byte limit")));
    }
    let buf = std::fs::read(path).at(path)?;
    Ok(ProducerStateManager::decode_snapshot(&buf))
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if n > self.remaining() {
            return Err(format!("truncated at byte {}", self.pos));
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn u16(&mut self) -> Result<u16, String> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    fn i16(&mut self) -> Result<i16, String> {
        Ok(i16::from_be_bytes(self.array()?))
    }

    fn i32(&mut self) -> Result<i32, String> {
        Ok(i32::from_be_bytes(self.array()?))
    }

    fn i64(&mut self) -> Result<i64, String> {
        Ok(i64::from_be_bytes(self.array()?))
    }

    fn entry(&mut self, version: u16) -> Result<ProducerStateEntry, String> {
        let producer_id = self.i64()?;
        let producer_epoch = self.i16()?;
        let last_timestamp_ms = self.i64()?;
        let (coordinator_epoch, current_txn_first_offset) = match version {
            SNAPSHOT_VERSION_V1 => (NO_COORDINATOR_EPOCH, None),
            _ => {
                let epoch = self.i32()?;
                let first = self.i64()?;
                (epoch, (first >= 0).then_some(first))
            }
        };
        let count = usize::from(self.take(1)?[0]);
        if count > BATCHES_RETAINED || count * BATCH_BYTES > self.remaining() {
            return Err(format!("bad batch count {count} for producer {producer_id}"));
        }
        let mut batches = VecDeque::with_capacity(count);
        for _ in 0..count {
            batches.push_back(BatchMetadata {
                first_seq: self.i32()?,
                last_seq: self.i32()?,
                first_offset: self.i64()?,
                last_offset: self.i64()?,
                timestamp_ms: self.i64()?,
            });
        }
        Ok(ProducerStateEntry {
            producer_id,
            producer_epoch,
            batches,
            last_timestamp_ms,
            coordinator_epoch,
            current_txn_first_offset,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn header(producer_id: i64, epoch: i16, first_seq: i32, count: i32, ts: i64) -> BatchHeader {
        BatchHeader {
            base_offset: 0,
            batch_length: 100,
            partition_leader_epoch: 0,
            magic: 2,
            crc: 0,
            attributes: 0,
            last_offset_delta: count - 1,
            base_timestamp: ts,
            max_timestamp: ts,
            producer_id,
            producer_epoch: epoch,
            base_sequence: first_seq,
            records_count: count,
        }
    }

    /// Checks and commits like the log does; returns the outcome.
    fn append(state: &mut ProducerStateManager, h: BatchHeader, offset: i64) -> Result<AppendCheck, StorageError> {
        let check = state.check_append(&[h], offset)?;
        if let AppendCheck::Fresh(update) = &check {
            state.commit(update.clone());
        }
        Ok(check)
    }

    #[test]
    fn sequences_duplicates_and_fencing() {
        let mut s = ProducerStateManager::new();
        assert!(matches!(
            append(&mut s, header(7, 0, 0, 3, 10), 0),
            Ok(AppendCheck::Fresh(_))
        ));
        assert!(matches!(
            append(&mut s, header(7, 0, 3, 2, 11), 3),
            Ok(AppendCheck::Fresh(_))
        ));
        // A retry of the first batch is recognised with its original offsets.
        match append(&mut s, header(7, 0, 0, 3, 10), 5).unwrap() {
            AppendCheck::Duplicate(b) => assert_eq!((b.first_offset, b.last_offset), (0, 2)),
            other => panic!("expected a duplicate, got {other:?}"),
        }
        // A gap is out of order.
        let gap = append(&mut s, header(7, 0, 6, 1, 12), 5);
        assert!(
            matches!(
                gap,
                Err(StorageError::OutOfOrderSequence {
                    first_seq: 6,
                    last_seq: 4,
                    ..
                })
            ),
            "{gap:?}"
        );
        // A new epoch must start at 0.
        let bad_new_epoch = append(&mut s, header(7, 1, 5, 1, 12), 5);
        assert!(
            matches!(bad_new_epoch, Err(StorageError::OutOfOrderSequence { .. })),
            "{bad_new_epoch:?}"
        );
        assert!(matches!(
            append(&mut s, header(7, 1, 0, 1, 12), 5),
            Ok(AppendCheck::Fresh(_))
        ));
        // The old epoch is fenced, even for a retry of one of its batches.
        let fenced = append(&mut s, header(7, 0, 3, 2, 11), 6);
        assert!(
            matches!(
                fenced,
                Err(StorageError::InvalidProducerEpoch {
                    epoch: 0,
                    current_epoch: 1,
                    ..
                })
            ),
            "{fenced:?}"
        );
        // An unknown producer may start at any sequence (Kafka 4).
        assert!(matches!(
            append(&mut s, header(9, 3, 42, 1, 12), 6),
            Ok(AppendCheck::Fresh(_))
        ));
    }

    #[test]
    fn only_five_batches_are_remembered() {
        let mut s = ProducerStateManager::new();
        for i in 0..6 {
            append(&mut s, header(1, 0, i, 1, 0), i64::from(i)).unwrap();
        }
        assert_eq!(s.get(1).unwrap().batches.len(), BATCHES_RETAINED);
        // The oldest batch fell out: its retry is out of order, not a duplicate.
        assert!(matches!(
            append(&mut s, header(1, 0, 0, 1, 0), 6),
            Err(StorageError::OutOfOrderSequence { .. })
        ));
        assert!(matches!(
            append(&mut s, header(1, 0, 1, 1, 0), 6),
            Ok(AppendCheck::Duplicate(_))
        ));
    }

    #[test]
    fn rejected_append_leaves_state_untouched() {
        let mut s = ProducerStateManager::new();
        append(&mut s, header(1, 0, 0, 1, 0), 0).unwrap();
        let before = s.clone();
        // Second batch of the same request is out of order: nothing of the request applies.
        let r = s.check_append(&[header(1, 0, 1, 1, 0), header(1, 0, 5, 1, 0)], 1);
        assert!(r.is_err());
        assert_eq!(s, before);
    }

    #[test]
    fn sequence_wraps_at_i32_max() {
        let mut s = ProducerStateManager::new();
        append(&mut s, header(1, 0, 0, 1, 0), 0).unwrap();
        s.producers.get_mut(&1).unwrap().batches.back_mut().unwrap().last_seq = i32::MAX;
        assert!(matches!(
            append(&mut s, header(1, 0, 0, 1, 0), 1),
            Ok(AppendCheck::Fresh(_))
        ));
    }

    #[test]
    fn expiration_uses_the_last_batch_timestamp() {
        let mut s = ProducerStateManager::new();
        append(&mut s, header(1, 0, 0, 1, 1_000), 0).unwrap();
        append(&mut s, header(2, 0, 0, 1, 5_000), 1).unwrap();
        assert_eq!(s.remove_expired(10_999, 10_000), 0);
        assert_eq!(s.remove_expired(11_000, 10_000), 1);
        assert!(s.get(1).is_none() && s.get(2).is_some());
    }

    #[test]
    fn snapshot_files_round_trip_and_reject_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = ProducerStateManager::new();
        for i in 0..7 {
            append(&mut s, header(i64::from(i % 3), 0, i / 3, 1, 0), i64::from(i)).unwrap();
        }
        s.write_snapshot(dir.path(), 7).unwrap();
        s.write_snapshot(dir.path(), 20).unwrap();
        let (loaded, at) = ProducerStateManager::load_latest_snapshot(dir.path(), 10)
            .unwrap()
            .unwrap();
        assert_eq!((loaded.producers, at), (s.producers.clone(), 7));
        assert_eq!(
            list_snapshots(dir.path()).unwrap(),
            vec![7],
            "the snapshot above the limit is gone"
        );
        // Flip one byte: the file is dropped rather than trusted.
        let path = snapshot_path(dir.path(), 7);
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&path, bytes).unwrap();
        assert!(ProducerStateManager::load_latest_snapshot(dir.path(), 10)
            .unwrap()
            .is_none());
    }

    fn txn_header(producer_id: i64, epoch: i16, first_seq: i32, count: i32) -> BatchHeader {
        BatchHeader {
            attributes: 0x10, // transactional
            ..header(producer_id, epoch, first_seq, count, 5)
        }
    }

    fn end(commit: bool, coordinator_epoch: i32) -> EndTxnMarker {
        EndTxnMarker {
            commit,
            coordinator_epoch,
        }
    }

    #[test]
    fn v1_snapshots_still_load() {
        let mut body = Vec::new();
        body.extend_from_slice(&1u32.to_be_bytes());
        body.extend_from_slice(&7i64.to_be_bytes()); // producer id
        body.extend_from_slice(&2i16.to_be_bytes()); // epoch
        body.extend_from_slice(&99i64.to_be_bytes()); // last timestamp
        body.push(1);
        for v in [0i32, 4] {
            body.extend_from_slice(&v.to_be_bytes());
        }
        for v in [10i64, 14, 99] {
            body.extend_from_slice(&v.to_be_bytes());
        }
        let mut file = b"RNPS".to_vec();
        file.extend_from_slice(&1u16.to_be_bytes());
        file.extend_from_slice(&crc32c::crc32c(&body).to_be_bytes());
        file.extend_from_slice(&body);
        let s = ProducerStateManager::decode_snapshot(&file).unwrap();
        let e = s.get(7).unwrap();
        assert_eq!((e.producer_epoch, e.last_seq(), e.last_timestamp_ms), (2, 4, 99));
        assert_eq!((e.coordinator_epoch, e.current_txn_first_offset), (-1, None));
        assert_eq!(s.first_unstable_offset(), None);
    }

    #[test]
    fn v2_snapshots_carry_ongoing_transactions() {
        let mut s = ProducerStateManager::new();
        let h = txn_header(1, 0, 0, 2);
        append(&mut s, h, 3).unwrap();
        let update = s.check_marker(2, 0, end(true, 4), 5, 6).unwrap();
        s.commit(update);
        let decoded = ProducerStateManager::decode_snapshot(&s.encode_snapshot()).unwrap();
        assert_eq!(decoded.producers, s.producers);
        assert_eq!(decoded.ongoing_transactions(), vec![(1, 0, 3)]);
        assert_eq!(decoded.get(2).unwrap().coordinator_epoch, 4);
    }

    #[test]
    fn an_abort_reports_the_next_open_transaction_as_its_last_stable_offset() {
        let mut s = ProducerStateManager::new();
        append(&mut s, txn_header(1, 0, 0, 1), 0).unwrap();
        append(&mut s, txn_header(2, 0, 0, 1), 1).unwrap();
        append(&mut s, txn_header(1, 0, 1, 1), 2).unwrap();
        let update = s.check_marker(1, 0, end(false, 0), 3, 0).unwrap();
        let aborted = s.commit(update);
        assert_eq!(
            aborted,
            vec![AbortedTxn {
                producer_id: 1,
                first_offset: 0,
                last_offset: 3,
                last_stable_offset: 1
            }]
        );
        assert_eq!(s.first_unstable_offset(), Some(1));
        // A marker with a bumped epoch completes 2's transaction and records the coordinator
        // epoch; an older coordinator is fenced afterwards.
        s.commit(s.check_marker(2, 1, end(true, 3), 4, 0).unwrap());
        assert_eq!(s.first_unstable_offset(), None);
        assert_eq!(s.get(2).unwrap().producer_epoch, 1);
        assert!(matches!(
            s.check_marker(2, 1, end(true, 2), 5, 0),
            Err(StorageError::TransactionCoordinatorFenced { .. })
        ));
    }

    proptest! {
        #[test]
        fn transactional_state_round_trips_through_snapshots(
            ops in proptest::collection::vec((0i64..4, any::<bool>(), any::<bool>()), 0..40)
        ) {
            let mut s = ProducerStateManager::new();
            let mut offset = 0;
            for (pid, is_marker, commit) in ops {
                if is_marker {
                    if let Ok(update) = s.check_marker(pid, 0, end(commit, 0), offset, 0) {
                        s.commit(update);
                        offset += 1;
                    }
                } else {
                    let seq = s.get(pid).map_or(0, |e| e.last_seq() + 1);
                    if append(&mut s, txn_header(pid, 0, seq, 2), offset).is_ok() {
                        offset += 2;
                    }
                }
            }
            let decoded = ProducerStateManager::decode_snapshot(&s.encode_snapshot()).unwrap();
            prop_assert_eq!(&decoded.producers, &s.producers);
            prop_assert_eq!(decoded.ongoing_transactions(), s.ongoing_transactions());
            prop_assert_eq!(decoded.first_unstable_offset(), s.first_unstable_offset());
        }

        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = ProducerStateManager::decode_snapshot(&bytes);
        }

        #[test]
        fn snapshot_codec_round_trips(ops in proptest::collection::vec((0i64..4, 0i16..3, 1i32..4, any::<i64>()), 0..40)) {
            let mut s = ProducerStateManager::new();
            let mut offset = 0;
            for (pid, epoch, count, ts) in ops {
                let seq = s.get(pid).filter(|e| e.producer_epoch == epoch).map_or(0, |e| e.last_seq() + 1);
                if append(&mut s, header(pid, epoch, seq, count, ts), offset).is_ok() {
                    offset += i64::from(count);
                }
            }
            let decoded = ProducerStateManager::decode_snapshot(&s.encode_snapshot()).unwrap();
            prop_assert_eq!(decoded.producers, s.producers);
        }
    }
}
