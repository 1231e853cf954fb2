//! The raft log, vote and committed pointer on disk.
//!
//! Files under the metadata dir:
//! - `raft.log`: frames `[len u32 LE][crc32c u32 LE][payload]`, payload = one JSON-encoded entry.
//!   Appends are fsynced before openraft is told they are flushed, so an acknowledged entry
//!   survives `kill -9`. On open, a torn last frame is truncated away; a bad frame followed by
//!   more data is a disk fault and fails the open.
//! - `raft-log.meta`: the last purged log id, written atomically before the log is rewritten
//!   without the purged prefix.
//! - `vote`: the vote, written atomically and fsynced before `save_vote` returns.
//! - `committed`: a hint (not fsynced) that lets a restart re-apply committed entries at once.
//!
//! Invariant: the in-memory entries are exactly the frames in `raft.log` past `last_purged`,
//! contiguous by index. All entries stay in memory: snapshots keep the metadata log short.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::ops::RangeBounds;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{LogState, RaftLogId, RaftLogReader};
use serde::{Deserialize, Serialize};

use crate::fsutil::{read_optional, sync_dir, write_atomic};
use crate::types::{Entry, LogId, StorageError, TypeConfig, Vote};
use openraft::StorageIOError;

const LOG_FILE: &str = "raft.log";
const LOG_META_FILE: &str = "raft-log.meta";
const VOTE_FILE: &str = "vote";
const COMMITTED_FILE: &str = "committed";
const FRAME_HEADER_BYTES: usize = 8;
/// Largest entry we write or accept; a longer length field is corruption or a torn write.
pub const ENTRY_BYTES_MAX: usize = 64 * 1024 * 1024;

/// Problems opening the log that are not plain I/O errors.
#[derive(Debug, thiserror::Error)]
pub enum LogOpenError {
    #[error("i/o error on {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("metadata log {path} is corrupt at byte {position}: {reason}")]
    Corrupt {
        path: PathBuf,
        position: u64,
        reason: String,
    },
}

#[derive(Serialize, Deserialize, Default)]
struct LogMeta {
    last_purged: Option<LogId>,
}

struct LogState_ {
    dir: PathBuf,
    file: File,
    /// index -> (entry, byte position of its frame in `raft.log`).
    entries: BTreeMap<u64, (Entry, u64)>,
    end_pos: u64,
    last_purged: Option<LogId>,
    vote: Option<Vote>,
    committed: Option<LogId>,
}

/// Cloneable handle: the storage and its readers share one state.
#[derive(Clone)]
pub struct LogStore {
    state: Arc<Mutex<LogState_>>,
    /// Last committed index, for status reporting without taking the lock.
    committed_index: Arc<AtomicU64>,
}

impl LogStore {
    pub fn open(dir: &Path) -> Result<Self, LogOpenError> {
        let io_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| LogOpenError::Io { path, source }
        };
        let log_path = dir.join(LOG_FILE);
        let meta: LogMeta = read_json(&dir.join(LOG_META_FILE))
            .map_err(io_err(dir))?
            .unwrap_or_default();
        let vote: Option<Vote> = read_json(&dir.join(VOTE_FILE)).map_err(io_err(dir))?;
        // The committed hint is written without fsync: a damaged one is simply ignored.
        let committed: Option<LogId> = read_json(&dir.join(COMMITTED_FILE)).unwrap_or(None);
        let existing = read_optional(&log_path).map_err(io_err(&log_path))?;
        let log_existed = existing.is_some();
        let bytes = existing.unwrap_or_default();
        let scan = scan_frames(&bytes, meta.last_purged.map(|l| l.index)).map_err(|(position, reason)| {
            LogOpenError::Corrupt {
                path: log_path.clone(),
                position,
                reason,
            }
        })?;
        // Existing content is the log itself: never truncate on open (only a torn tail, below).
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&log_path)
            .map_err(io_err(&log_path))?;
        if !log_existed {
            // Make the new file's directory entry durable before any append is acknowledged.
            sync_dir(&log_path).map_err(io_err(&log_path))?;
        }
        if scan.valid_len < bytes.len() as u64 {
            tracing::warn!(path = %log_path.display(), valid_len = scan.valid_len, file_len = bytes.len(), "truncating torn tail of metadata log");
            file.set_len(scan.valid_len).map_err(io_err(&log_path))?;
            file.sync_all().map_err(io_err(&log_path))?;
        }
        let committed_index = committed.map_or(0, |c| c.index);
        let state = LogState_ {
            dir: dir.to_path_buf(),
            file,
            entries: scan.entries,
            end_pos: scan.valid_len,
            last_purged: meta.last_purged,
            vote,
            committed,
        };
        Ok(Self {
            state: Arc::new(Mutex::new(state)),
            committed_index: Arc::new(AtomicU64::new(committed_index)),
        })
    }

    pub fn committed_index(&self) -> u64 {
        self.committed_index.load(Ordering::Acquire)
    }

    fn lock(&self) -> MutexGuard<'_, LogState_> {
        // A poisoned lock means a panic mid-update; the state may be torn, so stop here.
        self.state.lock().expect("metadata log lock poisoned")
    }
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> io::Result<Option<T>> {
    let Some(bytes) = read_optional(path)? else {
        return Ok(None);
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

struct Scan {
    entries: BTreeMap<u64, (Entry, u64)>,
    valid_len: u64,
}

/// Parses frames; stops at a torn tail; errors on a bad frame that has data after it.
fn scan_frames(bytes: &[u8], last_purged_index: Option<u64>) -> Result<Scan, (u64, String)> {
    let mut entries = BTreeMap::new();
    let mut pos = 0usize;
    let mut expected_index = last_purged_index.map(|i| i + 1);
    while pos < bytes.len() {
        let Some(frame) = read_frame(bytes, pos)? else { break };
        let entry: Entry =
            serde_json::from_slice(frame.payload).map_err(|e| (pos as u64, format!("undecodable entry: {e}")))?;
        let index = entry.get_log_id().index;
        if last_purged_index.is_some_and(|p| index <= p) {
            pos = frame.end;
            continue;
        }
        if expected_index.is_some_and(|e| e != index) {
            return Err((
                pos as u64,
                format!("entry index {index} where {expected_index:?} was expected"),
            ));
        }
        expected_index = Some(index + 1);
        entries.insert(index, (entry, pos as u64));
        pos = frame.end;
    }
    Ok(Scan {
        entries,
        valid_len: pos as u64,
    })
}

struct Frame<'a> {
    payload: &'a [u8],
    end: usize,
}

/// `Ok(None)` = torn tail starting at `pos` (incomplete or bad last frame).
fn read_frame(bytes: &[u8], pos: usize) -> Result<Option<Frame<'_>>, (u64, String)> {
    let remaining = bytes.len() - pos;
    if remaining < FRAME_HEADER_BYTES {
        return Ok(None);
    }
    let len = u32::from_le_bytes([bytes[pos], bytes[pos + 1], bytes[pos + 2], bytes[pos + 3]]) as usize;
    let crc = u32::from_le_bytes([bytes[pos + 4], bytes[pos + 5], bytes[pos + 6], bytes[pos + 7]]);
    if len > ENTRY_BYTES_MAX || len > remaining - FRAME_HEADER_BYTES {
        return Ok(None);
    }
    let start = pos + FRAME_HEADER_BYTES;
    let end = start + len;
    let payload = &bytes[start..end];
    if crc32c::crc32c(payload) != crc {
        if end == bytes.len() {
            return Ok(None);
        }
        return Err((pos as u64, "checksum mismatch in the middle of the log".into()));
    }
    Ok(Some(Frame { payload, end }))
}

fn encode_frame(entry: &Entry, out: &mut Vec<u8>) -> io::Result<()> {
    let payload = serde_json::to_vec(entry).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    if payload.len() > ENTRY_BYTES_MAX {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "metadata log entry too large",
        ));
    }
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32c::crc32c(&payload).to_le_bytes());
    out.extend_from_slice(&payload);
    Ok(())
}

impl LogState_ {
    fn append(&mut self, entries: Vec<Entry>) -> io::Result<()> {
        let mut buf = Vec::new();
        let mut positions = Vec::with_capacity(entries.len());
        for entry in &entries {
            positions.push(self.end_pos + buf.len() as u64);
            encode_frame(entry, &mut buf)?;
        }
        write_at_end(&mut self.file, self.end_pos, &buf)?;
        self.file.sync_data()?;
        self.end_pos += buf.len() as u64;
        for (entry, pos) in entries.into_iter().zip(positions) {
            self.entries.insert(entry.get_log_id().index, (entry, pos));
        }
        Ok(())
    }

    fn truncate_from(&mut self, index: u64) -> io::Result<()> {
        let Some((_, pos)) = self.entries.get(&index).map(|(e, p)| (e.get_log_id().index, *p)) else {
            return Ok(());
        };
        self.file.set_len(pos)?;
        self.file.sync_all()?;
        self.end_pos = pos;
        self.entries.split_off(&index);
        Ok(())
    }

    /// Records the purge point durably, then rewrites `raft.log` without the purged prefix.
    fn purge_upto(&mut self, log_id: LogId) -> io::Result<()> {
        let meta = LogMeta {
            last_purged: Some(log_id),
        };
        let meta_bytes = serde_json::to_vec(&meta).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        write_atomic(&self.dir.join(LOG_META_FILE), &meta_bytes, true)?;
        self.last_purged = Some(log_id);
        let kept = self.entries.split_off(&(log_id.index + 1));
        let mut buf = Vec::new();
        let mut rebuilt = BTreeMap::new();
        for (index, (entry, _)) in kept {
            let pos = buf.len() as u64;
            encode_frame(&entry, &mut buf)?;
            rebuilt.insert(index, (entry, pos));
        }
        let log_path = self.dir.join(LOG_FILE);
        write_atomic(&log_path, &buf, true)?;
        self.file = OpenOptions::new().read(true).write(true).open(&log_path)?;
        self.entries = rebuilt;
        self.end_pos = buf.len() as u64;
        Ok(())
    }

    fn last_log_id(&self) -> Option<LogId> {
        self.entries
            .values()
            .next_back()
            .map(|(e, _)| *e.get_log_id())
            .or(self.last_purged)
    }
}

fn write_at_end(file: &mut File, pos: u64, buf: &[u8]) -> io::Result<()> {
    use std::io::{Seek, SeekFrom};
    file.seek(SeekFrom::Start(pos))?;
    file.write_all(buf)
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        let state = self.lock();
        Ok(state.entries.range(range).map(|(_, (e, _))| e.clone()).collect())
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let state = self.lock();
        Ok(LogState {
            last_purged_log_id: state.last_purged,
            last_log_id: state.last_log_id(),
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        let mut state = self.lock();
        let bytes = serde_json::to_vec(vote).map_err(|e| StorageError::from(StorageIOError::write_vote(&e)))?;
        write_atomic(&state.dir.join(VOTE_FILE), &bytes, true)
            .map_err(|e| StorageError::from(StorageIOError::write_vote(&e)))?;
        state.vote = Some(*vote);
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        Ok(self.lock().vote)
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        let mut state = self.lock();
        let bytes = serde_json::to_vec(&committed).map_err(|e| StorageError::from(StorageIOError::write(&e)))?;
        // A hint only: losing it costs a re-apply after election, never safety.
        write_atomic(&state.dir.join(COMMITTED_FILE), &bytes, false)
            .map_err(|e| StorageError::from(StorageIOError::write(&e)))?;
        state.committed = committed;
        self.committed_index
            .store(committed.map_or(0, |c| c.index), Ordering::Release);
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        Ok(self.lock().committed)
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let entries: Vec<Entry> = entries.into_iter().collect();
        // Metadata writes are rare and small: fsync inline, then report the flush.
        let result = self.lock().append(entries);
        match result {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                let storage_error = StorageError::from(StorageIOError::write_logs(&e));
                callback.log_io_completed(Err(e));
                Err(storage_error)
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.lock()
            .truncate_from(log_id.index)
            .map_err(|e| StorageError::from(StorageIOError::write_logs(&e)))
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.lock()
            .purge_upto(log_id)
            .map_err(|e| StorageError::from(StorageIOError::write_logs(&e)))
    }
}

#[cfg(test)]
pub(crate) fn frame_for_test(entry: &Entry) -> Vec<u8> {
    let mut out = Vec::new();
    encode_frame(entry, &mut out).expect("encodable");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(index: u64) -> Entry {
        openraft::Entry {
            log_id: openraft::LogId::new(openraft::CommittedLeaderId::new(1, 0), index),
            payload: openraft::EntryPayload::Blank,
        }
    }

    #[test]
    fn torn_tail_is_truncated_but_mid_log_corruption_is_an_error() {
        let mut bytes = Vec::new();
        for i in 1..=3 {
            bytes.extend(frame_for_test(&entry(i)));
        }
        let full = bytes.len();
        let scan = scan_frames(&bytes[..full - 3], None).unwrap();
        assert_eq!(scan.entries.len(), 2);
        let second_end = scan.valid_len as usize;
        let mut corrupt = bytes.clone();
        corrupt[FRAME_HEADER_BYTES + 2] ^= 0xff;
        assert!(scan_frames(&corrupt, None).is_err());
        let mut bad_last = bytes.clone();
        bad_last[second_end + FRAME_HEADER_BYTES + 1] ^= 0xff;
        assert_eq!(scan_frames(&bad_last, None).unwrap().entries.len(), 2);
    }

    #[test]
    fn purged_prefix_is_skipped_and_holes_are_errors() {
        let mut bytes = Vec::new();
        for i in [1, 2, 3] {
            bytes.extend(frame_for_test(&entry(i)));
        }
        let scan = scan_frames(&bytes, Some(2)).unwrap();
        assert_eq!(scan.entries.keys().copied().collect::<Vec<_>>(), vec![3]);
        let mut holey = frame_for_test(&entry(1));
        holey.extend(frame_for_test(&entry(3)));
        assert!(scan_frames(&holey, None).is_err());
    }

    proptest::proptest! {
        /// Cutting a valid log anywhere loses at most the frame that was cut, never more, and
        /// never fails the open.
        #[test]
        fn any_cut_keeps_every_complete_frame(entries in 1u64..12, cut_seed in proptest::prelude::any::<usize>()) {
            let mut bytes = Vec::new();
            let mut ends = Vec::new();
            for i in 0..entries {
                bytes.extend(frame_for_test(&entry(i)));
                ends.push(bytes.len());
            }
            let cut = cut_seed % (bytes.len() + 1);
            let scan = scan_frames(&bytes[..cut], None).unwrap();
            let complete = ends.iter().filter(|end| **end <= cut).count();
            proptest::prop_assert_eq!(scan.entries.len(), complete);
            proptest::prop_assert_eq!(scan.valid_len as usize, if complete == 0 { 0 } else { ends[complete - 1] });
        }
    }
}
