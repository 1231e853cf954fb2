//! Leader-epoch cache: the start offset of every leader epoch that wrote to this partition,
//! persisted in `leader-epoch-checkpoint`. Answers OffsetForLeaderEpoch.
//!
//! Invariants: epochs and start offsets are both strictly increasing; the file is rewritten
//! atomically after every change.

use std::path::{Path, PathBuf};

use crate::checkpoint::{read_epoch_checkpoint, write_epoch_checkpoint};
use crate::error::StorageError;

pub(crate) const FILE_NAME: &str = "leader-epoch-checkpoint";

pub(crate) struct LeaderEpochCache {
    path: PathBuf,
    entries: Vec<(i32, i64)>,
}

impl LeaderEpochCache {
    pub(crate) fn open(dir: &Path) -> Result<Self, StorageError> {
        let path = dir.join(FILE_NAME);
        let mut entries = read_epoch_checkpoint(&path)?;
        // Keep only a strictly increasing prefix: a hand-edited or damaged file must not make
        // OffsetForLeaderEpoch answer out of order.
        let mut clean: Vec<(i32, i64)> = Vec::with_capacity(entries.len());
        for (e, o) in entries.drain(..) {
            if clean.last().is_none_or(|(le, lo)| e > *le && o >= *lo) {
                clean.push((e, o));
            }
        }
        Ok(Self { path, entries: clean })
    }

    pub(crate) fn latest_epoch(&self) -> Option<i32> {
        self.entries.last().map(|(e, _)| *e)
    }

    pub(crate) fn entries(&self) -> &[(i32, i64)] {
        &self.entries
    }

    /// Records that `epoch` starts at `start_offset`, if it is newer than the latest epoch.
    pub(crate) fn assign(&mut self, epoch: i32, start_offset: i64) -> Result<(), StorageError> {
        if epoch < 0 || self.latest_epoch().is_some_and(|e| epoch <= e) {
            return Ok(());
        }
        // An older epoch that wrote nothing has the same start offset as this one: drop it.
        while self.entries.last().is_some_and(|(_, o)| *o >= start_offset) {
            self.entries.pop();
        }
        self.entries.push((epoch, start_offset));
        self.persist()
    }

    /// OffsetForLeaderEpoch: `(epoch, end offset)` per Kafka's `LeaderEpochFileCache.endOffsetFor`.
    pub(crate) fn end_offset_for(&self, epoch: i32, log_end_offset: i64) -> Option<(i32, i64)> {
        if epoch < 0 {
            return None;
        }
        if self.latest_epoch() == Some(epoch) {
            return Some((epoch, log_end_offset));
        }
        let higher = self.entries.iter().find(|(e, _)| *e > epoch)?;
        let floor = self.entries.iter().rev().find(|(e, _)| *e <= epoch);
        Some((floor.map_or(epoch, |(e, _)| *e), higher.1))
    }

    /// Drops entries starting at or after `offset` (log truncated to `offset`).
    pub(crate) fn truncate_from_end(&mut self, offset: i64) -> Result<(), StorageError> {
        let before = self.entries.len();
        self.entries.retain(|(_, o)| *o < offset);
        if self.entries.len() != before {
            self.persist()?;
        }
        Ok(())
    }

    /// Forgets every epoch (the log was emptied).
    pub(crate) fn clear(&mut self) -> Result<(), StorageError> {
        self.entries.clear();
        self.persist()
    }

    /// Log start moved to `offset`: entries wholly before it go, the one spanning it starts there.
    pub(crate) fn truncate_from_start(&mut self, offset: i64) -> Result<(), StorageError> {
        let covering = self.entries.iter().rposition(|(_, o)| *o <= offset);
        let Some(i) = covering else {
            return Ok(());
        };
        if i == 0 && self.entries[0].1 == offset {
            return Ok(());
        }
        self.entries.drain(..i);
        self.entries[0].1 = offset;
        self.persist()
    }

    fn persist(&self) -> Result<(), StorageError> {
        write_epoch_checkpoint(&self.path, &self.entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn end_offset_for_follows_kafka() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = LeaderEpochCache::open(dir.path()).unwrap();
        c.assign(1, 0).unwrap();
        c.assign(3, 10).unwrap();
        c.assign(5, 25).unwrap();
        assert_eq!(c.end_offset_for(5, 40), Some((5, 40)));
        assert_eq!(c.end_offset_for(3, 40), Some((3, 25)));
        assert_eq!(c.end_offset_for(4, 40), Some((3, 25)));
        assert_eq!(c.end_offset_for(0, 40), Some((0, 0)));
        assert_eq!(c.end_offset_for(6, 40), None);
        assert_eq!(c.end_offset_for(-1, 40), None);

        let reopened = LeaderEpochCache::open(dir.path()).unwrap();
        assert_eq!(reopened.entries(), &[(1, 0), (3, 10), (5, 25)]);
    }

    #[test]
    fn truncation_from_both_ends() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = LeaderEpochCache::open(dir.path()).unwrap();
        c.assign(1, 0).unwrap();
        c.assign(2, 10).unwrap();
        c.assign(3, 20).unwrap();
        c.truncate_from_start(15).unwrap();
        assert_eq!(c.entries(), &[(2, 15), (3, 20)]);
        c.truncate_from_end(20).unwrap();
        assert_eq!(c.entries(), &[(2, 15)]);
        assert_eq!(c.latest_epoch(), Some(2));
    }
}
