//! One log segment: `<base>.log` plus its `.index`, `.timeindex` and (only while it holds
//! aborted transactions) `.txnindex`.
//!
//! Invariants: the `.txnindex` lists the aborts whose markers are in this segment; `size_bytes` is the length of valid data in the `.log` file and every byte below
//! it belongs to a whole batch; batches are appended with positioned writes at `size_bytes`;
//! offsets strictly increase; index entries never point at or past `size_bytes`.

use std::fs::{File, OpenOptions};
use std::io::{BufReader, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use runnel_protocol::records::{
    compute_crc, parse_header, AssignedOffsets, BatchHeader, BATCH_HEADER_BYTES, NO_TIMESTAMP,
};

use crate::error::{IoContext, StorageError};
use crate::index::{OffsetIndex, TimeIndex};
use crate::read_buf;
use crate::txn_index::{txn_index_path, TxnIndex, TXN_INDEX_SUFFIX};

pub(crate) const LOG_SUFFIX: &str = "log";
pub(crate) const INDEX_SUFFIX: &str = "index";
pub(crate) const TIME_INDEX_SUFFIX: &str = "timeindex";
/// A segment's index files.
pub(crate) const INDEX_SUFFIXES: [&str; 3] = [INDEX_SUFFIX, TIME_INDEX_SUFFIX, TXN_INDEX_SUFFIX];
/// Every file of a segment.
pub(crate) const SEGMENT_SUFFIXES: [&str; 4] = [LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX, TXN_INDEX_SUFFIX];
/// Buffer used when scanning a whole segment during recovery.
const SCAN_BUFFER_BYTES: usize = 1 << 20;
/// A fetch reads this much more than it returns, from the offset-index entry at or before the
/// fetch offset, so that one positioned read serves both the search for the fetched batch and
/// the batches themselves. Index entries are `index.interval.bytes` (4 KiB by default) apart;
/// a search that needs more falls back to reading header by header.
const SEARCH_SLACK_BYTES: u64 = 8 * 1024;

pub(crate) fn file_name(base_offset: i64, suffix: &str) -> String {
    format!("{base_offset:020}.{suffix}")
}

/// Where a batch starts and what its header says.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BatchPosition {
    pub(crate) position: u64,
    pub(crate) header: BatchHeader,
}

/// Outcome of scanning a segment: how many bytes hold valid batches, and why scanning stopped
/// early if it did.
pub(crate) struct ScanOutcome {
    pub(crate) valid_bytes: u64,
    pub(crate) problem: Option<String>,
}

/// A segment's files to fdatasync, taken under the log lock and synced outside it.
#[derive(Debug, Clone)]
pub(crate) struct SegmentFiles {
    log: Arc<File>,
    indexes: Vec<PathBuf>,
}

impl SegmentFiles {
    /// Syncs the log file, then each index that still exists (retention may have renamed a
    /// segment's files meanwhile: a segment on its way out needs no sync).
    pub(crate) fn sync(&self) -> std::io::Result<()> {
        self.log.sync_data()?;
        for path in &self.indexes {
            match File::open(path).and_then(|f| f.sync_data()) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                other => other?,
            }
        }
        Ok(())
    }
}

pub(crate) struct Segment {
    pub(crate) base_offset: i64,
    dir: PathBuf,
    log_path: PathBuf,
    log: Arc<File>,
    pub(crate) size_bytes: u64,
    offset_index: OffsetIndex,
    time_index: TimeIndex,
    /// Aborted transactions whose markers are in this segment.
    pub(crate) txn_index: TxnIndex,
    /// The `.txnindex` cannot be trusted (it was corrupt, or the log was rescanned after a
    /// crash): the log rebuilds it by replaying the segment.
    pub(crate) txn_index_needs_rebuild: bool,
    bytes_since_last_index_entry: u64,
    pub(crate) max_timestamp: i64,
    pub(crate) offset_of_max_timestamp: i64,
    /// One past the last offset stored here (`base_offset` when empty).
    pub(crate) next_offset: i64,
    /// `max_timestamp` of the first batch: segment.ms counts from it (Kafka's rolling timestamp).
    first_batch_timestamp: Option<i64>,
    created_ms: i64,
    /// Where the batch after the last read's batches starts, `(offset, position)`: a consumer
    /// reading on asks for that offset next, and its read then starts right there. The index
    /// entry for an offset is the start of an earlier batch (entries map a batch's last offset
    /// to its start), up to `index.interval.bytes` plus a batch back, so without this every
    /// sequential read of 16 KiB batches or larger read its `max_bytes` twice. Positions only
    /// move when the segment is truncated or rescanned, which clears it.
    next_read: Mutex<Option<(i64, u64)>>,
}

fn open_log(path: &Path, create_new: bool) -> Result<File, StorageError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(create_new)
        .truncate(create_new)
        .open(path)
        .at(path)
}

impl Segment {
    /// Creates an empty segment (any files left at these names are replaced).
    pub(crate) fn create(dir: &Path, base_offset: i64, index_bytes: usize, now_ms: i64) -> Result<Self, StorageError> {
        for suffix in INDEX_SUFFIXES {
            let p = dir.join(file_name(base_offset, suffix));
            match std::fs::remove_file(&p) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e).at(&p),
                _ => {}
            }
        }
        let log_path = dir.join(file_name(base_offset, LOG_SUFFIX));
        let log = open_log(&log_path, true)?;
        Self::assemble(dir, base_offset, log, 0, Some(index_bytes), now_ms)
    }

    fn assemble(
        dir: &Path,
        base_offset: i64,
        log: File,
        size_bytes: u64,
        index_capacity: Option<usize>,
        now_ms: i64,
    ) -> Result<Self, StorageError> {
        let index_path = dir.join(file_name(base_offset, INDEX_SUFFIX));
        let time_path = dir.join(file_name(base_offset, TIME_INDEX_SUFFIX));
        let offset_index = OffsetIndex::open(&index_path, base_offset, index_capacity)?;
        let time_index = TimeIndex::open(&time_path, base_offset, index_capacity)?;
        let txn_path = txn_index_path(dir, base_offset);
        let (txn_index, txn_index_needs_rebuild) = match TxnIndex::open(txn_path.clone()) {
            Ok(t) => (t, false),
            Err(StorageError::CorruptFile { path, reason }) => {
                tracing::warn!(path = %path.display(), %reason, "discarding corrupt transaction index");
                (TxnIndex::create(txn_path)?, true)
            }
            Err(e) => return Err(e),
        };
        Ok(Self {
            base_offset,
            dir: dir.to_path_buf(),
            log_path: dir.join(file_name(base_offset, LOG_SUFFIX)),
            log: Arc::new(log),
            size_bytes,
            offset_index,
            time_index,
            txn_index,
            txn_index_needs_rebuild,
            bytes_since_last_index_entry: 0,
            max_timestamp: NO_TIMESTAMP,
            offset_of_max_timestamp: base_offset,
            next_offset: base_offset,
            first_batch_timestamp: None,
            created_ms: now_ms,
            next_read: Mutex::new(None),
        })
    }

    /// Opens an existing segment. Its indexes are replaced by empty ones if they cannot be
    /// opened; callers then either `load_trusted` or `recover`.
    pub(crate) fn open(
        dir: &Path,
        base_offset: i64,
        index_capacity: Option<usize>,
        now_ms: i64,
    ) -> Result<Self, StorageError> {
        let log_path = dir.join(file_name(base_offset, LOG_SUFFIX));
        let log = open_log(&log_path, false)?;
        let size_bytes = log.metadata().at(&log_path)?.len();
        match Self::assemble(dir, base_offset, log, size_bytes, index_capacity, now_ms) {
            Ok(s) => Ok(s),
            Err(StorageError::CorruptFile { path, reason }) => {
                tracing::warn!(path = %path.display(), %reason, "discarding corrupt index");
                for suffix in [INDEX_SUFFIX, TIME_INDEX_SUFFIX] {
                    let p = dir.join(file_name(base_offset, suffix));
                    std::fs::remove_file(&p).at(&p)?;
                }
                let log = open_log(&log_path, false)?;
                let mut s = Self::assemble(dir, base_offset, log, size_bytes, index_capacity, now_ms)?;
                s.offset_index.clear();
                s.time_index.clear();
                Ok(s)
            }
            Err(e) => Err(e),
        }
    }

    pub(crate) fn log_path(&self) -> &Path {
        &self.log_path
    }

    pub(crate) fn log_file(&self) -> Arc<File> {
        Arc::clone(&self.log)
    }

    /// What syncing this segment takes, usable without the log's lock: its log file and the
    /// paths of its index files (an index is synced through a descriptor of its own).
    pub(crate) fn sync_files(&self) -> SegmentFiles {
        SegmentFiles {
            log: self.log_file(),
            indexes: INDEX_SUFFIXES
                .into_iter()
                .map(|suffix| self.dir.join(file_name(self.base_offset, suffix)))
                .collect(),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.size_bytes == 0
    }

    /// Reads the header of the batch at `position`.
    fn header_at(&self, position: u64) -> Result<BatchHeader, StorageError> {
        let mut buf = [0u8; BATCH_HEADER_BYTES];
        self.log
            .read_exact_at(&mut buf, position)
            .map_err(|e| self.corrupt(position, e.to_string()))?;
        let header = parse_header(&buf).map_err(|e| self.corrupt(position, e.to_string()))?;
        if position + header.total_size_bytes() as u64 > self.size_bytes {
            return Err(self.corrupt(position, "batch extends past the end of the segment".into()));
        }
        Ok(header)
    }

    fn corrupt(&self, position: u64, reason: String) -> StorageError {
        StorageError::CorruptSegment {
            path: self.log_path.clone(),
            position,
            reason,
        }
    }

    /// Trusts the indexes if they pass their checks, deriving `next_offset` and the max
    /// timestamp from the index tails and a header walk over the last indexed stretch. Returns
    /// false (state unchanged) if anything looks inconsistent, so the caller rebuilds.
    pub(crate) fn load_trusted(&mut self, index_interval_bytes: u32) -> bool {
        if self.offset_index.check(self.size_bytes).is_err() {
            return false;
        }
        let sparse = self.offset_index.entries() == 0 && self.size_bytes > u64::from(index_interval_bytes) * 2;
        if sparse || (self.size_bytes > 0 && self.time_index.last().is_none()) {
            return false;
        }
        let Ok((next_offset, max_ts, max_off)) = self.walk_tail() else {
            return false;
        };
        if self.time_index.check(next_offset).is_err() {
            return false;
        }
        self.next_offset = next_offset;
        (self.max_timestamp, self.offset_of_max_timestamp) = (max_ts, max_off);
        if let Some((t, o)) = self.time_index.last() {
            if t > self.max_timestamp {
                (self.max_timestamp, self.offset_of_max_timestamp) = (t, o);
            }
        }
        self.first_batch_timestamp = self.header_at(0).ok().map(|h| h.max_timestamp);
        true
    }

    /// Header walk from the last offset-index entry to the end: `(next_offset, max ts, offset)`.
    fn walk_tail(&self) -> Result<(i64, i64, i64), StorageError> {
        let (_, start) = self.offset_index.last().unwrap_or((self.base_offset, 0));
        let mut position = u64::from(start);
        let mut next_offset = self.base_offset;
        let (mut max_ts, mut max_off) = (NO_TIMESTAMP, self.base_offset);
        while position < self.size_bytes {
            let h = self.header_at(position)?;
            if h.base_offset < next_offset || h.last_offset() < h.base_offset {
                return Err(self.corrupt(position, "offsets not increasing".into()));
            }
            next_offset = h.last_offset() + 1;
            if h.max_timestamp > max_ts {
                (max_ts, max_off) = (h.max_timestamp, h.last_offset());
            }
            position += h.total_size_bytes() as u64;
        }
        Ok((next_offset, max_ts, max_off))
    }

    /// Validates every batch (CRC, offsets) and rebuilds both indexes and the in-memory state.
    /// Stops at the first bad batch; the caller decides whether that is a torn tail (truncate)
    /// or a disk fault (error).
    pub(crate) fn scan_and_rebuild(&mut self, index_interval_bytes: u32) -> Result<ScanOutcome, StorageError> {
        *self.next_read.get_mut().unwrap_or_else(|e| e.into_inner()) = None;
        self.offset_index.clear();
        self.time_index.clear();
        self.next_offset = self.base_offset;
        self.max_timestamp = NO_TIMESTAMP;
        self.offset_of_max_timestamp = self.base_offset;
        self.first_batch_timestamp = None;
        let file_len = self.log.metadata().at(&self.log_path)?.len();
        let log = Arc::clone(&self.log);
        let mut reader = BufReader::with_capacity(
            SCAN_BUFFER_BYTES,
            PositionedReader {
                file: &log,
                position: 0,
            },
        );
        let mut batch = Vec::new();
        let mut valid_bytes = 0u64;
        let mut last_index_entry = 0u64;
        let problem = loop {
            if valid_bytes == file_len {
                break None;
            }
            let header = match read_batch(&mut reader, &mut batch, file_len - valid_bytes) {
                Ok(h) => h,
                Err(reason) => break Some(reason),
            };
            if let Err(reason) = self.check_offsets(&header) {
                break Some(reason);
            }
            self.note_batch(&header);
            if valid_bytes - last_index_entry > u64::from(index_interval_bytes) {
                self.add_index_entries(header.last_offset(), valid_bytes);
                last_index_entry = valid_bytes;
            }
            valid_bytes += batch.len() as u64;
        };
        self.size_bytes = valid_bytes;
        self.bytes_since_last_index_entry = valid_bytes - last_index_entry;
        Ok(ScanOutcome { valid_bytes, problem })
    }

    fn check_offsets(&self, h: &BatchHeader) -> Result<(), String> {
        if h.base_offset < self.next_offset {
            return Err(format!("offset {} not above {}", h.base_offset, self.next_offset - 1));
        }
        let relative = h.last_offset() - self.base_offset;
        if h.last_offset_delta < 0 || relative > i64::from(i32::MAX) {
            return Err(format!("offset {} out of the segment's range", h.last_offset()));
        }
        Ok(())
    }

    fn note_batch(&mut self, h: &BatchHeader) {
        if self.first_batch_timestamp.is_none() {
            self.first_batch_timestamp = Some(h.max_timestamp);
        }
        if h.max_timestamp > self.max_timestamp {
            self.max_timestamp = h.max_timestamp;
            self.offset_of_max_timestamp = h.last_offset();
        }
        self.next_offset = h.last_offset() + 1;
    }

    fn add_index_entries(&mut self, last_offset: i64, position: u64) {
        if let Ok(position) = u32::try_from(position) {
            self.offset_index.append(last_offset, position);
            self.time_index
                .maybe_append(self.max_timestamp, self.offset_of_max_timestamp);
        }
    }

    /// Cuts the `.log` file to `size_bytes` (after a scan found a bad tail).
    pub(crate) fn truncate_file_to_size(&mut self) -> Result<(), StorageError> {
        self.log.set_len(self.size_bytes).at(&self.log_path)
    }

    /// Whether appending `size_bytes` more with offsets up to `last_offset` and a largest
    /// timestamp of `max_timestamp` needs a new segment.
    ///
    /// Age follows Kafka's `LogSegment.shouldRoll`: with record timestamps, it is the incoming
    /// timestamp minus the segment's first batch timestamp (so replaying old data does not roll
    /// on every batch); without them, wall-clock time since the segment was created.
    pub(crate) fn should_roll(
        &self,
        append_bytes: u64,
        last_offset: i64,
        max_timestamp: i64,
        rules: &RollRules,
        now_ms: i64,
    ) -> bool {
        if self.is_empty() {
            return false;
        }
        let full = self.size_bytes + append_bytes > rules.segment_bytes;
        let waited = match self.first_batch_timestamp.filter(|t| *t >= 0) {
            Some(first) => max_timestamp.saturating_sub(first),
            None => now_ms.saturating_sub(self.created_ms),
        };
        let aged = waited > rules.segment_ms;
        let index_full = self.offset_index.is_full() || self.time_index.is_full();
        let offset_overflow = last_offset - self.base_offset > i64::from(i32::MAX);
        full || aged || index_full || offset_overflow
    }

    /// Appends batches whose offsets are already assigned, with one positioned write.
    pub(crate) fn append(
        &mut self,
        buf: &[u8],
        assigned: &AssignedOffsets,
        index_interval_bytes: u32,
    ) -> Result<(), StorageError> {
        let position = self.size_bytes;
        self.log.write_all_at(buf, position).at(&self.log_path)?;
        if self.first_batch_timestamp.is_none() {
            self.first_batch_timestamp = Some(assigned.first_batch_max_timestamp);
        }
        if assigned.max_timestamp > self.max_timestamp {
            self.max_timestamp = assigned.max_timestamp;
            self.offset_of_max_timestamp = assigned.offset_of_max_timestamp;
        }
        if self.bytes_since_last_index_entry > u64::from(index_interval_bytes) {
            self.add_index_entries(assigned.last_offset, position);
            self.bytes_since_last_index_entry = 0;
        }
        self.bytes_since_last_index_entry += buf.len() as u64;
        self.size_bytes += buf.len() as u64;
        self.next_offset = assigned.last_offset + 1;
        Ok(())
    }

    /// The first batch whose last offset is `>= target`, searching from the offset index.
    pub(crate) fn find_batch(&self, target: i64) -> Result<Option<BatchPosition>, StorageError> {
        let (_, start) = self.offset_index.lookup(target);
        self.find_batch_from(u64::from(start), target)
    }

    /// `find_batch` from a batch boundary at or before the batch sought.
    fn find_batch_from(&self, mut position: u64, target: i64) -> Result<Option<BatchPosition>, StorageError> {
        while position < self.size_bytes {
            let header = self.header_at(position)?;
            if header.last_offset() >= target {
                return Ok(Some(BatchPosition { position, header }));
            }
            position += header.total_size_bytes() as u64;
        }
        Ok(None)
    }

    /// Whole batches from the first one whose last offset is `>= target`, within `limits`
    /// (see `read_batches_from`); `None` when no batch of this segment reaches `target`.
    /// Usually one positioned read: where the last read ended when it asks for the offset
    /// after it (see `next_read`), else from the offset-index entry, the search slack plus
    /// `max_bytes`.
    pub(crate) fn read(&self, target: i64, limits: &ReadLimits) -> Result<Option<Bytes>, StorageError> {
        let read = match self.read_where_last_ended(target, limits)? {
            found @ Some(_) => found,
            None => self.read_from_index(target, limits)?,
        };
        Ok(read.map(|read| {
            if let Some(next_offset) = read.next_offset {
                let end = read.position + read.bytes.len() as u64;
                *self.next_read.lock().unwrap_or_else(|e| e.into_inner()) = Some((next_offset, end));
            }
            read.bytes
        }))
    }

    /// The read at the position `next_read` holds for `target`, if it holds one and the batch
    /// there is the one sought.
    fn read_where_last_ended(&self, target: i64, limits: &ReadLimits) -> Result<Option<BatchesRead>, StorageError> {
        let hint = *self.next_read.lock().unwrap_or_else(|e| e.into_inner());
        let Some((offset, position)) = hint else {
            return Ok(None);
        };
        if offset != target || position >= self.size_bytes {
            return Ok(None);
        }
        let window = self.read_fresh(position, self.read_len(position, limits))?;
        match parse_header(&window) {
            Ok(h) if h.base_offset <= target && h.last_offset() >= target => {
                self.whole_batches(window, position, limits).map(Some)
            }
            _ => Ok(None),
        }
    }

    /// `read` from the offset-index entry for `target`.
    fn read_from_index(&self, target: i64, limits: &ReadLimits) -> Result<Option<BatchesRead>, StorageError> {
        let (_, start) = self.offset_index.lookup(target);
        let start = u64::from(start);
        if start >= self.size_bytes {
            return Ok(None);
        }
        let len = (self.size_bytes - start).min(limits.max_bytes as u64 + SEARCH_SLACK_BYTES);
        let buf = self.read_fresh(start, len as usize)?;
        let mut at = 0usize;
        loop {
            if start + at as u64 >= self.size_bytes {
                return Ok(None);
            }
            match parse_header(&buf[at.min(buf.len())..]) {
                Ok(h) if h.last_offset() >= target => break,
                Ok(h) => at += h.total_size_bytes(),
                // The header lies past what was read (or is damaged): search on from there.
                Err(_) => return self.read_searching_from(start + at as u64, target, limits),
            }
        }
        let position = start + at as u64;
        if buf.len() - at < self.read_len(position, limits) {
            return self.read_batches_from(position, limits).map(Some);
        }
        self.whole_batches(buf.slice(at..), position, limits).map(Some)
    }

    /// What a read at `position` needs in hand: `max_bytes` of the data there, and at least
    /// a batch header (to return the first batch whole when it is larger).
    fn read_len(&self, position: u64, limits: &ReadLimits) -> usize {
        let available = self.size_bytes.saturating_sub(position) as usize;
        self.want(position, limits).max(BATCH_HEADER_BYTES.min(available))
    }

    /// The most a read at `position` returns: `max_bytes` of what the segment holds there.
    fn want(&self, position: u64, limits: &ReadLimits) -> usize {
        self.size_bytes.saturating_sub(position).min(limits.max_bytes as u64) as usize
    }

    fn read_searching_from(
        &self,
        from: u64,
        target: i64,
        limits: &ReadLimits,
    ) -> Result<Option<BatchesRead>, StorageError> {
        match self.find_batch_from(from, target)? {
            Some(at) => self.read_batches_from(at.position, limits).map(Some),
            None => Ok(None),
        }
    }

    /// Whole batches from `position`: up to `max_bytes` (at least one batch when
    /// `min_one_batch`), stopping before the first batch whose last offset reaches
    /// `max_offset_exclusive`.
    fn read_batches_from(&self, position: u64, limits: &ReadLimits) -> Result<BatchesRead, StorageError> {
        let buf = self.read_fresh(position, self.read_len(position, limits))?;
        self.whole_batches(buf, position, limits)
    }

    /// The leading whole batches of `window` (read at `position`, at least `read_len` bytes)
    /// within `limits`.
    fn whole_batches(&self, window: Bytes, position: u64, limits: &ReadLimits) -> Result<BatchesRead, StorageError> {
        let want = self.want(position, limits);
        let mut end = 0usize;
        let mut next_offset = None;
        while end < window.len() {
            let Ok(h) = parse_header(&window[end..]) else { break };
            if h.last_offset() >= limits.max_offset_exclusive {
                break;
            }
            let next = end + h.total_size_bytes();
            if next > want {
                if end == 0 && limits.min_one_batch {
                    let bytes = if window.len() >= next {
                        window.slice(..next)
                    } else {
                        self.read_one_batch(position, &h)?
                    };
                    return Ok(BatchesRead {
                        bytes,
                        position,
                        next_offset: Some(h.last_offset() + 1),
                    });
                }
                break;
            }
            end = next;
            next_offset = Some(h.last_offset() + 1);
        }
        Ok(BatchesRead {
            bytes: window.slice(..end),
            position,
            next_offset,
        })
    }

    fn read_one_batch(&self, position: u64, h: &BatchHeader) -> Result<Bytes, StorageError> {
        let total = h.total_size_bytes();
        if position + total as u64 > self.size_bytes {
            return Err(self.corrupt(position, "batch extends past the end of the segment".into()));
        }
        self.read_fresh(position, total)
    }

    /// `len` bytes of the log file at `position`, read into a reused buffer (`read_buf`) or
    /// else into fresh memory the kernel fills directly (never zeroed first: a fetch used to
    /// spend 5 % of its time in that memset).
    fn read_fresh(&self, position: u64, len: usize) -> Result<Bytes, StorageError> {
        let mut buf = read_buf::take(len);
        if buf.is_empty() {
            while buf.len() < len {
                let at = position + buf.len() as u64;
                let read = rustix::io::pread(&*self.log, rustix::buffer::spare_capacity(&mut buf), at);
                self.progress(at, read)?;
            }
        } else {
            // A reused buffer's bytes were written by an earlier read: only what it never
            // held is zeroed, and the read overwrites exactly `len` bytes.
            buf.resize(len, 0);
            let mut filled = 0;
            while filled < len {
                let at = position + filled as u64;
                filled += self.progress(at, rustix::io::pread(&*self.log, &mut buf[filled..], at))?;
            }
        }
        buf.truncate(len);
        Ok(read_buf::freeze(buf))
    }

    /// What a `pread` of the log file at `at` returned, as bytes read (never 0: the file ending
    /// there is a corrupt segment).
    fn progress(&self, at: u64, read: rustix::io::Result<usize>) -> Result<usize, StorageError> {
        let n = read.map_err(std::io::Error::from).at(&self.log_path)?;
        if n == 0 {
            return Err(self.corrupt(at, "the file ends before the segment's data".into()));
        }
        Ok(n)
    }

    /// Reads the whole batch starting at `position` (for record-level lookups).
    pub(crate) fn read_batch_at(&self, at: &BatchPosition) -> Result<Bytes, StorageError> {
        self.read_one_batch(at.position, &at.header)
    }

    /// Iterates batch positions from `position` to the end, header-only.
    pub(crate) fn next_batch(&self, position: u64) -> Result<Option<BatchPosition>, StorageError> {
        if position >= self.size_bytes {
            return Ok(None);
        }
        Ok(Some(BatchPosition {
            position,
            header: self.header_at(position)?,
        }))
    }

    /// Start position for a search by timestamp: after every record older than `timestamp`.
    pub(crate) fn timestamp_search_start(&self, timestamp: i64) -> u64 {
        match self.time_index.lookup_below(timestamp) {
            Some((_, offset)) => u64::from(self.offset_index.lookup(offset).1),
            None => 0,
        }
    }

    /// Drops every batch whose last offset is `>= offset`; returns true if anything was removed.
    pub(crate) fn truncate_to(&mut self, offset: i64, index_interval_bytes: u32) -> Result<bool, StorageError> {
        let Some(at) = self.find_batch(offset)? else {
            return Ok(false);
        };
        *self.next_read.get_mut().unwrap_or_else(|e| e.into_inner()) = None;
        self.log.set_len(at.position).at(&self.log_path)?;
        self.offset_index.truncate_to(offset);
        self.time_index.truncate_to(offset);
        self.txn_index.truncate_to(offset)?;
        let outcome = self.scan_and_rebuild(index_interval_bytes)?;
        if let Some(reason) = outcome.problem {
            return Err(self.corrupt(outcome.valid_bytes, reason));
        }
        Ok(true)
    }

    /// Called when the segment stops being the active one: records the final time-index entry
    /// and trims both index files to their entries.
    pub(crate) fn make_inactive(&mut self) -> Result<(), StorageError> {
        if self.time_index.is_full() {
            let grown = self.time_index.used_bytes() + 12;
            self.time_index.resize(grown)?;
        }
        if self.max_timestamp >= 0 {
            self.time_index
                .maybe_append(self.max_timestamp, self.offset_of_max_timestamp);
        }
        self.offset_index.trim()?;
        self.time_index.trim()
    }

    /// Grows the index files back to `index_bytes` (this segment becomes active again).
    pub(crate) fn make_active(&mut self, index_bytes: usize) -> Result<(), StorageError> {
        self.offset_index.resize(index_bytes)?;
        self.time_index.resize(index_bytes)
    }

    pub(crate) fn flush(&self) -> Result<(), StorageError> {
        self.log.sync_data().at(&self.log_path)?;
        self.offset_index.flush()?;
        self.time_index.flush()?;
        self.txn_index.flush()
    }

    /// Unmaps the indexes and renames the files to `*.deleted`; returns the new paths.
    pub(crate) fn rename_to_deleted(self) -> Result<Vec<PathBuf>, StorageError> {
        let Segment {
            dir,
            base_offset,
            offset_index,
            time_index,
            txn_index,
            log,
            ..
        } = self;
        drop((offset_index, time_index, txn_index, log));
        let mut renamed = Vec::with_capacity(4);
        for suffix in SEGMENT_SUFFIXES {
            let from = dir.join(file_name(base_offset, suffix));
            let to = dir.join(format!("{}.deleted", file_name(base_offset, suffix)));
            match std::fs::rename(&from, &to) {
                Ok(()) => renamed.push(to),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e).at(&from),
            }
        }
        Ok(renamed)
    }
}

/// `Read` over a file through `pread`, so scans never depend on (or move) the file cursor.
struct PositionedReader<'a> {
    file: &'a File,
    position: u64,
}

impl Read for PositionedReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.file.read_at(buf, self.position)?;
        self.position += n as u64;
        Ok(n)
    }
}

/// Reads one whole batch into `batch`, verifying header, length and CRC. `remaining_bytes`
/// bounds the allocation by what the file really holds.
fn read_batch(reader: &mut impl Read, batch: &mut Vec<u8>, remaining_bytes: u64) -> Result<BatchHeader, String> {
    batch.resize(BATCH_HEADER_BYTES, 0);
    if remaining_bytes < BATCH_HEADER_BYTES as u64 {
        return Err(format!("{remaining_bytes} trailing bytes, less than a batch header"));
    }
    reader.read_exact(batch).map_err(|e| e.to_string())?;
    let header = parse_header(batch).map_err(|e| e.to_string())?;
    let total = header.total_size_bytes();
    if total as u64 > remaining_bytes {
        return Err(format!("batch of {total} bytes but only {remaining_bytes} remain"));
    }
    batch.resize(total, 0);
    reader
        .read_exact(&mut batch[BATCH_HEADER_BYTES..])
        .map_err(|e| e.to_string())?;
    let computed = compute_crc(batch);
    if computed != header.crc {
        return Err(format!(
            "CRC mismatch: stored {:#010x}, computed {computed:#010x}",
            header.crc
        ));
    }
    if header.records_count < 0 {
        return Err(format!("negative records count {}", header.records_count));
    }
    Ok(header)
}

/// Roll thresholds taken from the log config.
pub(crate) struct RollRules {
    pub(crate) segment_bytes: u64,
    pub(crate) segment_ms: i64,
}

/// Whole batches read from a segment.
struct BatchesRead {
    bytes: Bytes,
    /// Where they start in the segment.
    position: u64,
    /// The offset after the last of them; `None` when there are none.
    next_offset: Option<i64>,
}

pub(crate) struct ReadLimits {
    pub(crate) max_bytes: usize,
    pub(crate) max_offset_exclusive: i64,
    pub(crate) min_one_batch: bool,
}
