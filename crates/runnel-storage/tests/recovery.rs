//! Crash recovery: torn tails, corrupt tails, damaged indexes, and disk faults mid-log.
//! A "crash" is dropping the log without `close`, so no clean-shutdown marker is written.

mod common;

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use common::*;
use runnel_protocol::records::{BatchHeader, Compression};
use runnel_storage::{PartitionLog, StorageError};

/// Appends `n` batches of 2 records (~420 bytes each); returns `(base offset, size)` per batch.
fn fill(log: &mut PartitionLog, n: usize) -> Vec<(i64, usize)> {
    (0..n)
        .map(|i| {
            let mut b = batch_with(2, i as i64 * 10, 180, Compression::None);
            let info = log.append_as_leader(&mut b, 0, 0).unwrap();
            (info.first_offset, b.len())
        })
        .collect()
}

fn last_log_file(dir: &Path) -> PathBuf {
    let mut logs: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    logs.sort();
    logs.pop().unwrap()
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().len()
}

/// Checks every batch below `leo` reads back and that appends continue at `leo`.
fn assert_intact_and_appendable(dir: &Path, leo: i64) {
    let mut log = open(dir, small_config());
    assert_eq!(log.log_end_offset(), leo);
    let all = read_all(&log);
    let mut expected = 0;
    for h in &all {
        assert_eq!(h.base_offset, expected);
        expected = h.last_offset() + 1;
    }
    assert_eq!(expected, leo);
    let mut b = batch(3, 0);
    assert_eq!(log.append_as_leader(&mut b, 0, 0).unwrap().first_offset, leo);
    assert_eq!(read_all(&log).len(), all.len() + 1);
}

#[test]
fn torn_tail_mid_batch_is_truncated() {
    let root = tempfile::tempdir().unwrap();
    let dir = partition_dir(root.path());
    let mut log = open(&dir, small_config());
    let batches = fill(&mut log, 25);
    drop(log); // crash
    let tail = last_log_file(&dir);
    let len = file_len(&tail);
    let (last_base, last_size) = *batches.last().unwrap();
    OpenOptions::new()
        .write(true)
        .open(&tail)
        .unwrap()
        .set_len(len - last_size as u64 / 2)
        .unwrap();
    assert_intact_and_appendable(&dir, last_base);
}

#[test]
fn corrupt_bytes_in_the_tail_fail_the_crc_and_are_truncated() {
    let root = tempfile::tempdir().unwrap();
    let dir = partition_dir(root.path());
    let mut log = open(&dir, small_config());
    let batches = fill(&mut log, 25);
    drop(log);
    let tail = last_log_file(&dir);
    let len = file_len(&tail);
    let (second_last_base, _) = batches[batches.len() - 2];
    let (_, last_size) = *batches.last().unwrap();
    // Damage the record payload of the second-to-last batch: it and everything after goes.
    let at = len - last_size as u64 - 30;
    std::fs::OpenOptions::new()
        .write(true)
        .open(&tail)
        .unwrap()
        .write_all_at(b"garbage!", at)
        .unwrap();
    assert_intact_and_appendable(&dir, second_last_base);
}

#[test]
fn trailing_zeros_from_preallocation_are_dropped() {
    let root = tempfile::tempdir().unwrap();
    let dir = partition_dir(root.path());
    let mut log = open(&dir, small_config());
    fill(&mut log, 5);
    drop(log);
    let tail = last_log_file(&dir);
    let len = file_len(&tail);
    OpenOptions::new()
        .write(true)
        .open(&tail)
        .unwrap()
        .set_len(len + 1000)
        .unwrap();
    let log = open(&dir, small_config());
    assert_eq!(log.log_end_offset(), 10);
    assert_eq!(file_len(&tail), len, "the zero tail is cut off");
    drop(log);
    assert_intact_and_appendable(&dir, 10);
}

fn index_files(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == suffix))
        .collect();
    v.sort();
    v
}

#[test]
fn damaged_indexes_after_clean_close_are_rebuilt() {
    let root = tempfile::tempdir().unwrap();
    let dir = partition_dir(root.path());
    let mut log = open(&dir, small_config());
    let batches = fill(&mut log, 40);
    let leo = log.log_end_offset();
    log.close().unwrap();
    let offsets = index_files(&dir, "index");
    let times = index_files(&dir, "timeindex");
    assert!(offsets.len() >= 3);
    // Older segment: index cut to an odd length; next: entries pointing past the log;
    // active: time index with decreasing timestamps.
    let f = OpenOptions::new().write(true).open(&offsets[0]).unwrap();
    f.set_len(file_len(&offsets[0]) - 3).unwrap();
    OpenOptions::new()
        .write(true)
        .open(&offsets[1])
        .unwrap()
        .write_all_at(&[0xff; 8], 0)
        .unwrap();
    let t = times.last().unwrap();
    OpenOptions::new()
        .write(true)
        .open(t)
        .unwrap()
        .write_all_at(&[0x7f; 12], 0)
        .unwrap();
    assert_intact_and_appendable(&dir, leo);

    let log = open(&dir, small_config());
    for (base, _) in &batches {
        let read = log.read(*base, 1, i64::MAX, true).unwrap();
        assert_eq!(headers(&read.records)[0].base_offset, *base);
    }
    let found = log.offset_for_timestamp(205).unwrap().unwrap();
    assert_eq!(found.offset, 42, "batch 21 holds offsets 42..43 at timestamps 210..211");
}

#[test]
fn truncated_indexes_after_a_crash_are_rebuilt() {
    let root = tempfile::tempdir().unwrap();
    let dir = partition_dir(root.path());
    let mut log = open(&dir, small_config());
    fill(&mut log, 40);
    let leo = log.log_end_offset();
    drop(log);
    for path in index_files(&dir, "index")
        .into_iter()
        .chain(index_files(&dir, "timeindex"))
    {
        let f = OpenOptions::new().write(true).open(&path).unwrap();
        f.set_len(file_len(&path) / 2 + 1).unwrap();
    }
    assert_intact_and_appendable(&dir, leo);
}

/// Syncs every rolled segment, as the broker's background pass does.
fn sync_rolls(log: &mut PartitionLog) {
    let rolled = log.roll_sync().expect("rolled segments to sync");
    rolled.sync().unwrap();
    if let Some(checkpoint) = log.mark_rolls_synced(&rolled) {
        checkpoint.write().unwrap();
    }
}

#[test]
fn a_pass_that_covers_the_latest_roll_leaves_nothing_to_sync() {
    let root = tempfile::tempdir().unwrap();
    let dir = partition_dir(root.path());
    let mut log = open(&dir, small_config());
    fill(&mut log, 40);
    sync_rolls(&mut log);
    assert!(log.roll_sync().is_none());
    // One more roll: its segment, its snapshot and the directory's new entries await the pass.
    let segments = log.segment_count();
    while log.segment_count() == segments {
        fill(&mut log, 1);
    }
    assert!(
        log.roll_sync().is_some(),
        "the roll's directory and snapshot await a sync"
    );
    sync_rolls(&mut log);
    assert!(
        log.roll_sync().is_none(),
        "a pass that covered the latest roll leaves nothing"
    );
}

#[test]
fn a_recovery_point_decided_earlier_never_overwrites_a_later_one() {
    let root = tempfile::tempdir().unwrap();
    let dir = partition_dir(root.path());
    let mut log = open(&dir, small_config());
    fill(&mut log, 40);
    let rolled = log.roll_sync().expect("rolled segments");
    rolled.sync().unwrap();
    let stale = log.mark_rolls_synced(&rolled).expect("the recovery point moved");
    // Meanwhile a flush (under the partition lock) records a later recovery point...
    fill(&mut log, 5);
    log.flush().unwrap();
    let leo = log.log_end_offset();
    assert_eq!(log.recovery_point(), leo);
    // ...so the earlier decision, written last, is skipped.
    stale.write().unwrap();
    drop(log); // crash
    let log = open(&dir, small_config());
    assert_eq!(log.recovery_point(), leo);
}

#[test]
fn rolled_segments_are_synced_in_the_background() {
    let root = tempfile::tempdir().unwrap();
    let dir = partition_dir(root.path());
    let mut log = open(&dir, small_config());
    fill(&mut log, 40);
    assert!(log.segment_count() >= 3);
    // The append that rolled did not sync the old segment, so the recovery point stays put
    // until the background pass has.
    assert_eq!(log.recovery_point(), 0);
    sync_rolls(&mut log);
    assert!(log.roll_sync().is_none(), "nothing left to sync");
    let synced_to = log.recovery_point();
    let leo = log.log_end_offset();
    assert!(
        synced_to > 0 && synced_to < leo,
        "recovery point {synced_to}, log end {leo}"
    );
    // Later rolls queue their segments for the next pass again.
    fill(&mut log, 10);
    assert!(log.roll_sync().is_some());
    drop(log); // crash: the checkpoint written by the pass survives
    let log = open(&dir, small_config());
    assert_eq!(log.recovery_point(), synced_to.min(log.log_end_offset()));
    // Segments past it were scanned at open and are queued for the next pass.
    assert!(log.roll_sync().is_some());
    assert_intact_and_appendable(&dir, leo + 20);
}

#[test]
fn a_torn_unsynced_segment_ends_the_log_and_later_segments_go() {
    let root = tempfile::tempdir().unwrap();
    let dir = partition_dir(root.path());
    let mut log = open(&dir, small_config());
    let batches = fill(&mut log, 40);
    drop(log); // crash before any background sync: every segment is past the recovery point
    let logs = index_files(&dir, "log");
    assert!(logs.len() >= 3);
    // The second segment's tail never reached the disk, while the third did.
    let second_len = file_len(&logs[1]);
    OpenOptions::new()
        .write(true)
        .open(&logs[1])
        .unwrap()
        .set_len(second_len - 100)
        .unwrap();
    let log = open(&dir, small_config());
    let leo = log.log_end_offset();
    assert_eq!(log.segment_count(), 2, "the segments after the torn one are removed");
    for later in &logs[2..] {
        assert!(!later.exists(), "{} should be gone", later.display());
    }
    // The log ends at the last whole batch of the second segment.
    assert!(
        batches.iter().any(|(base, _)| base + 2 == leo),
        "log end {leo} is not a batch end"
    );
    drop(log);
    assert_intact_and_appendable(&dir, leo);
}

#[test]
fn crc_failure_below_the_recovery_point_is_a_disk_fault() {
    let root = tempfile::tempdir().unwrap();
    let dir = partition_dir(root.path());
    let mut log = open(&dir, small_config());
    fill(&mut log, 40);
    sync_rolls(&mut log);
    drop(log);
    let logs = index_files(&dir, "log");
    assert!(logs.len() >= 3);
    OpenOptions::new()
        .write(true)
        .open(&logs[0])
        .unwrap()
        .write_all_at(b"bitrot", 200)
        .unwrap();
    // A damaged index makes the open scan the segment instead of trusting it.
    let indexes = index_files(&dir, "index");
    OpenOptions::new()
        .write(true)
        .open(&indexes[0])
        .unwrap()
        .set_len(3)
        .unwrap();
    match PartitionLog::open(&dir, None, small_config(), 0) {
        Err(StorageError::CorruptSegment { path, .. }) => assert_eq!(path, logs[0]),
        Err(other) => panic!("expected CorruptSegment, got {other}"),
        Ok(_) => panic!("corruption in synced data was skipped"),
    }
}

/// A log of 30 batches under `root`, closed cleanly: its directory, log end offset and batches.
fn closed_log(root: &Path) -> (PathBuf, i64, Vec<BatchHeader>) {
    let dir = partition_dir(root);
    let mut log = open(&dir, small_config());
    fill(&mut log, 30);
    let leo = log.log_end_offset();
    let batches = read_all(&log);
    log.close().unwrap();
    (dir, leo, batches)
}

#[test]
fn reopen_after_clean_close_and_after_crash_agree() {
    let root = tempfile::tempdir().unwrap();
    let (dir, leo, before) = closed_log(root.path());
    assert!(dir.join("clean-shutdown").exists());
    for p in index_files(&dir, "index") {
        assert_eq!(file_len(&p) % 8, 0);
        assert!(file_len(&p) < 4096, "index files are trimmed on close");
    }
    let log = open(&dir, small_config());
    // Kept until the first change: opening costs no directory fsync, and a crash before any
    // change leaves the files as the clean shutdown left them.
    assert!(dir.join("clean-shutdown").exists());
    assert_eq!(read_all(&log), before);
    for p in index_files(&dir, "index") {
        // Still trimmed: under the marker, an index's length is its entry count.
        assert!(file_len(&p) < 4096, "{} was expanded under the marker", p.display());
    }
    drop(log); // crash
    let mut log = open(&dir, small_config());
    assert_eq!(log.log_end_offset(), leo);
    assert_eq!(read_all(&log), before);
    // The first append removes it before writing, so a crash after it means recovery.
    let appended = fill(&mut log, 1);
    assert!(!dir.join("clean-shutdown").exists());
    drop(log); // crash
    let mut log = open(&dir, small_config());
    assert_eq!(log.log_end_offset(), appended[0].0 + 2);
    assert_eq!(read_all(&log).len(), before.len() + 1);
    // And it keeps working: appends after the recovery land at the end.
    let more = fill(&mut log, 2);
    assert_eq!(more[0].0, appended[0].0 + 2);
}

/// Every file of `dir` with its inode and modification time.
fn file_stamps(dir: &Path) -> Vec<(PathBuf, u64, std::time::SystemTime)> {
    use std::os::unix::fs::MetadataExt;
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let path = e.unwrap().path();
            let m = std::fs::metadata(&path).unwrap();
            (path, m.ino(), m.modified().unwrap())
        })
        .collect();
    out.sort();
    out
}

#[test]
fn closing_a_log_untouched_since_a_clean_open_writes_nothing() {
    let root = tempfile::tempdir().unwrap();
    let (dir, leo, before) = closed_log(root.path());
    let log = open(&dir, small_config());
    assert_eq!(read_all(&log), before);
    let opened = file_stamps(&dir);
    log.close().unwrap();
    // Nothing rewritten (the snapshot and checkpoints are replaced by rename when written,
    // which would change their inodes) and nothing touched.
    assert_eq!(file_stamps(&dir), opened);

    // Still a clean shutdown: the next open trusts the files, and a change is closed in full.
    let mut log = open(&dir, small_config());
    assert_eq!(log.log_end_offset(), leo);
    fill(&mut log, 1);
    log.close().unwrap();
    assert!(dir.join("clean-shutdown").exists());
    let log = open(&dir, small_config());
    assert_eq!(read_all(&log).len(), before.len() + 1);
}

#[test]
fn leftover_files_are_removed_on_open() {
    let root = tempfile::tempdir().unwrap();
    let dir = partition_dir(root.path());
    let mut log = open(&dir, small_config());
    fill(&mut log, 3);
    log.close().unwrap();
    for name in [
        "00000000000000000000.log.deleted",
        "00000000000000000007.log.cleaned",
        "x.swap",
        "00000000000000000099.index",
    ] {
        std::fs::write(dir.join(name), b"junk").unwrap();
    }
    let log = open(&dir, small_config());
    assert_eq!(log.log_end_offset(), 6);
    for name in [
        "00000000000000000000.log.deleted",
        "00000000000000000007.log.cleaned",
        "x.swap",
        "00000000000000000099.index",
    ] {
        assert!(!dir.join(name).exists(), "{name} should be gone");
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]
    /// Cutting the active segment at any byte keeps exactly the batches that end at or before
    /// the cut, and appends continue right after them.
    #[test]
    fn any_torn_tail_keeps_every_whole_batch(
        counts in proptest::collection::vec(1usize..6, 1..40),
        cut in proptest::prelude::any::<proptest::sample::Index>(),
    ) {
        let root = tempfile::tempdir().unwrap();
        let dir = partition_dir(root.path());
        let mut log = open(&dir, small_config());
        // (last offset, segment base, end position of the batch within its segment)
        let mut appended: Vec<(i64, i64, u64)> = Vec::new();
        for (i, count) in counts.iter().enumerate() {
            let mut b = batch_with(*count, i as i64, 150, Compression::None);
            let info = log.append_as_leader(&mut b, 0, 0).unwrap();
            let base = *log.segment_base_offsets().last().unwrap();
            let start = appended
                .last()
                .filter(|(_, sb, _)| *sb == base)
                .map_or(0, |(_, _, end)| *end);
            appended.push((info.last_offset, base, start + b.len() as u64));
        }
        drop(log); // crash
        let tail = last_log_file(&dir);
        let len = file_len(&tail);
        let cut_len = cut.index(len as usize + 1) as u64;
        OpenOptions::new().write(true).open(&tail).unwrap().set_len(cut_len).unwrap();

        let tail_base = appended.last().unwrap().1;
        let kept: Vec<_> = appended
            .iter()
            .filter(|(_, sb, end)| *sb < tail_base || *end <= cut_len)
            .collect();
        let expected_leo = kept
            .iter()
            .rfind(|(_, sb, _)| *sb == tail_base)
            .map_or(tail_base, |(last, _, _)| last + 1);

        let mut log = open(&dir, small_config());
        proptest::prop_assert_eq!(log.log_end_offset(), expected_leo);
        let read = read_all(&log);
        proptest::prop_assert_eq!(read.len(), kept.len());
        let mut next = 0;
        for h in &read {
            proptest::prop_assert_eq!(h.base_offset, next);
            next = h.last_offset() + 1;
        }
        let mut b = batch(1, 0);
        let info = log.append_as_leader(&mut b, 0, 0).unwrap();
        proptest::prop_assert_eq!(info.first_offset, expected_leo);
    }
}

#[test]
fn full_index_rolls_the_segment() {
    let root = tempfile::tempdir().unwrap();
    let config = runnel_storage::LogConfig {
        segment_index_bytes: 24, // three offset entries, two time entries
        index_interval_bytes: 1,
        segment_bytes: 1 << 20,
        ..small_config()
    };
    let mut log = PartitionLog::open(&partition_dir(root.path()), None, config.clone(), 0).unwrap();
    for i in 0..20 {
        let mut b = batch(1, i);
        log.append_as_leader(&mut b, 0, 0).unwrap();
    }
    assert!(log.segment_count() >= 5, "segments: {:?}", log.segment_base_offsets());
    let found = log.offset_for_timestamp(13).unwrap().unwrap();
    assert_eq!(found.offset, 13);
    log.close().unwrap();
    let log = PartitionLog::open(&partition_dir(root.path()), None, config, 0).unwrap();
    assert_eq!(log.log_end_offset(), 20);
    assert_eq!(read_all(&log).len(), 20);
}
