//! Append, read, roll, lookups, retention, DeleteRecords and truncation.

mod common;

use common::*;
use proptest::prelude::*;
use runnel_protocol::records::{set_log_append_time_all, validate_batch, Compression, OffsetDensity};
use runnel_storage::{parse_partition_dir_name, LogConfig, PartitionLog, StorageError};

#[test]
fn append_assigns_offsets_and_reads_back_whole_batches() {
    let root = tempfile::tempdir().unwrap();
    let mut log = open(&partition_dir(root.path()), LogConfig::default());
    let mut b1 = batch(3, 1_000);
    let mut b2 = batch(5, 2_000);
    let info1 = log.append_as_leader(&mut b1, 4, 10).unwrap();
    let info2 = log.append_as_leader(&mut b2, 4, 10).unwrap();
    assert_eq!((info1.first_offset, info1.last_offset), (0, 2));
    assert_eq!((info2.first_offset, info2.last_offset), (3, 7));
    assert_eq!(log.log_end_offset(), 8);

    let read = log.read(4, 1 << 20, i64::MAX, false).unwrap();
    let hs = headers(&read.records);
    assert_eq!(hs.len(), 1, "offset 4 lives in the second batch");
    assert_eq!((hs[0].base_offset, hs[0].partition_leader_epoch), (3, 4));
    validate_batch(&read.records, OffsetDensity::Dense).unwrap();
    assert_eq!(
        read.records.as_ref(),
        b2.as_slice(),
        "stored bytes are the rewritten input"
    );

    assert!(log.read(8, 100, i64::MAX, false).unwrap().records.is_empty());
    assert!(matches!(
        log.read(9, 100, i64::MAX, false),
        Err(StorageError::OffsetOutOfRange { .. })
    ));
}

#[test]
fn read_limits_max_bytes_min_one_batch_and_max_offset() {
    let root = tempfile::tempdir().unwrap();
    let mut log = open(&partition_dir(root.path()), LogConfig::default());
    let mut sizes = Vec::new();
    for _ in 0..3 {
        let mut b = batch(2, 0);
        sizes.push(b.len());
        log.append_as_leader(&mut b, 0, 0).unwrap();
    }
    let two = sizes[0] + sizes[1];
    assert_eq!(headers(&log.read(0, two, i64::MAX, false).unwrap().records).len(), 2);
    assert_eq!(
        headers(&log.read(0, two + 1, i64::MAX, false).unwrap().records).len(),
        2
    );
    assert!(log.read(0, 10, i64::MAX, false).unwrap().records.is_empty());
    assert_eq!(headers(&log.read(0, 10, i64::MAX, true).unwrap().records).len(), 1);
    // High watermark 3 falls inside the second batch (offsets 2..3): it is excluded.
    assert_eq!(headers(&log.read(0, 1 << 20, 3, false).unwrap().records).len(), 1);
    assert_eq!(headers(&log.read(0, 1 << 20, 4, false).unwrap().records).len(), 2);
}

/// What a read must return, by the rules of `PartitionLog::read`, from batches
/// `(first, last, size)` of one segment: whole batches from the one holding `offset`, within
/// `max_bytes` (the first one regardless with `min_one`), stopping before `max_excl`.
fn expected_read(
    batches: &[(i64, i64, usize)],
    offset: i64,
    max_bytes: usize,
    max_excl: i64,
    min_one: bool,
) -> Vec<i64> {
    let Some(at) = batches.iter().position(|(_, last, _)| *last >= offset) else {
        return Vec::new();
    };
    let mut taken = Vec::new();
    let mut bytes = 0;
    for (first, last, size) in &batches[at..] {
        if *last >= max_excl {
            break;
        }
        if bytes + size > max_bytes {
            if taken.is_empty() && min_one {
                taken.push(*first);
            }
            break;
        }
        bytes += size;
        taken.push(*first);
    }
    taken
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]
    /// Reads take one positioned read from the index entry (search and data together) when
    /// the batch is near it, and search header by header when it is not: batches here range
    /// from a few bytes to 20 KiB and index entries from 256 bytes to 32 KiB apart.
    #[test]
    fn reads_match_the_model_whatever_the_batch_and_index_spacing(
        sizes in proptest::collection::vec((1usize..6, prop_oneof![0usize..300, 2_000usize..20_000]), 1..40),
        index_interval_bytes in prop_oneof![Just(256u32), Just(4096), Just(32_768)],
        probes in proptest::collection::vec(
            (any::<prop::sample::Index>(), prop_oneof![1usize..100, 100usize..70_000], any::<bool>(), any::<prop::sample::Index>()),
            1..24,
        ),
    ) {
        let root = tempfile::tempdir().unwrap();
        let config = runnel_storage::LogConfig {
            segment_bytes: 1 << 30,
            index_interval_bytes,
            ..small_config()
        };
        let mut log = open(&partition_dir(root.path()), config);
        let mut batches = Vec::new();
        for (i, (count, value_bytes)) in sizes.iter().enumerate() {
            let mut b = batch_with(*count, i as i64, *value_bytes, Compression::None);
            let info = log.append_as_leader(&mut b, 0, 0).unwrap();
            batches.push((info.first_offset, info.last_offset, b.len()));
        }
        let leo = log.log_end_offset();
        let mut next = None;
        for (offset, max_bytes, min_one, max_excl) in probes {
            // Every other probe reads on from where the one before ended, as a consumer does.
            let offset = match next.take() {
                Some(n) if n < leo && max_bytes % 2 == 0 => n,
                _ => offset.index(leo as usize) as i64,
            };
            let max_excl = offset + 1 + max_excl.index((leo - offset) as usize) as i64;
            let read = log.read(offset, max_bytes, max_excl, min_one).unwrap();
            let hs = headers(&read.records);
            next = hs.last().map(|h| h.last_offset() + 1);
            let got: Vec<i64> = hs.iter().map(|h| h.base_offset).collect();
            prop_assert_eq!(
                got,
                expected_read(&batches, offset, max_bytes, max_excl, min_one),
                "offset {} max_bytes {} max_excl {} min_one {}", offset, max_bytes, max_excl, min_one
            );
        }
    }

    #[test]
    fn random_appends_read_back_at_random_offsets(
        counts in proptest::collection::vec((1usize..20, 0usize..200), 1..60),
        probes in proptest::collection::vec(any::<prop::sample::Index>(), 1..20),
    ) {
        let root = tempfile::tempdir().unwrap();
        let dir = partition_dir(root.path());
        let mut log = open(&dir, small_config());
        let mut expected = Vec::new(); // (base, last, bytes)
        for (i, (count, value_bytes)) in counts.iter().enumerate() {
            let mut b = batch_with(*count, i as i64 * 10, *value_bytes, Compression::None);
            let info = log.append_as_leader(&mut b, 1, 0).unwrap();
            expected.push((info.first_offset, info.last_offset, b));
        }
        let leo = expected.last().unwrap().1 + 1;
        prop_assert_eq!(log.log_end_offset(), leo);
        for probe in probes {
            let offset = probe.index(leo as usize) as i64;
            let read = log.read(offset, 1 << 16, i64::MAX, true).unwrap();
            let first = headers(&read.records)[0];
            prop_assert!(first.base_offset <= offset && offset <= first.last_offset());
            let at = expected.iter().position(|(b, _, _)| *b == first.base_offset).unwrap();
            let mut pos = 0;
            for (_, _, bytes) in &expected[at..] {
                if pos >= read.records.len() { break; }
                prop_assert_eq!(&read.records[pos..pos + bytes.len()], bytes.as_slice());
                pos += bytes.len();
            }
            prop_assert_eq!(pos, read.records.len());
        }
        let all = read_all(&log);
        prop_assert_eq!(all.len(), expected.len());
        // Reopen after a clean close and compare again.
        log.close().unwrap();
        let log = open(&dir, small_config());
        prop_assert_eq!(log.log_end_offset(), leo);
        prop_assert_eq!(read_all(&log), all);
    }
}

/// Bytes this thread has read with `read`-family calls (`pread` included), from
/// `/proc/thread-self/io`: the other tests run on other threads and do not count.
fn bytes_read_by_this_thread() -> u64 {
    let io = std::fs::read_to_string("/proc/thread-self/io").unwrap();
    io.lines()
        .find_map(|l| l.strip_prefix("rchar: "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap()
}

#[test]
fn a_consumer_reading_on_reads_each_byte_from_the_file_once() {
    let root = tempfile::tempdir().unwrap();
    let config = LogConfig {
        index_interval_bytes: 4096,
        ..LogConfig::default()
    };
    let mut log = open(&partition_dir(root.path()), config);
    for i in 0..40 {
        let mut b = batch_with(2, i, 10_000, Compression::None);
        log.append_as_leader(&mut b, 0, 0).unwrap();
    }
    let before = bytes_read_by_this_thread();
    let mut offset = 0;
    let mut returned = 0;
    while offset < log.log_end_offset() {
        let read = log.read(offset, 64 * 1024, i64::MAX, true).unwrap();
        let hs = headers(&read.records);
        assert_eq!(hs[0].base_offset, offset);
        offset = hs.last().unwrap().last_offset() + 1;
        returned += read.records.len() as u64;
    }
    let read = bytes_read_by_this_thread() - before;
    // Each 64 KiB read returns three 20 KB batches: 9 % over, plus the first read's search
    // from the index. Reading each window from the index entry (a batch before the offset
    // asked for, as index entries map a batch's last offset to its start) read it twice.
    assert!(
        read < returned + returned / 5,
        "{read} bytes read from the file to return {returned}"
    );
}

#[test]
fn reading_on_after_a_truncation_finds_the_new_batches() {
    let root = tempfile::tempdir().unwrap();
    let mut log = open(&partition_dir(root.path()), LogConfig::default());
    for i in 0..6 {
        let mut b = batch_with(2, i, 300, Compression::None);
        log.append_as_leader(&mut b, 0, 0).unwrap();
    }
    // Read up to offset 8, so the next read would start where that one ended.
    let read = log.read(0, 1 << 20, 8, false).unwrap();
    assert_eq!(headers(&read.records).last().unwrap().last_offset(), 7);
    // Offsets 6.. go and come back in batches of another size, at other positions.
    log.truncate_to(6, 0).unwrap();
    for i in 0..4 {
        let mut b = batch_with(1 + i, 10 + i as i64, 50, Compression::None);
        log.append_as_leader(&mut b, 1, 0).unwrap();
    }
    let bases: Vec<i64> = headers(&log.read(8, 1 << 20, i64::MAX, false).unwrap().records)
        .iter()
        .map(|h| h.base_offset)
        .collect();
    assert_eq!(bases, vec![7, 9, 12], "offset 8 is now inside the batch 7..8");
    let bases: Vec<i64> = headers(&log.read(6, 1 << 20, i64::MAX, false).unwrap().records)
        .iter()
        .map(|h| h.base_offset)
        .collect();
    assert_eq!(bases, vec![6, 7, 9, 12]);
}

#[test]
fn rolls_by_size_and_by_time() {
    let root = tempfile::tempdir().unwrap();
    let config = LogConfig {
        segment_ms: 1_000,
        ..small_config()
    };
    let mut log = PartitionLog::open(&partition_dir(root.path()), None, config, 0).unwrap();
    let mut b = batch_with(1, 0, 1500, Compression::None);
    log.append_as_leader(&mut b, 0, 0).unwrap();
    log.append_as_leader(&mut b, 0, 0).unwrap();
    assert_eq!(log.segment_count(), 1);
    log.append_as_leader(&mut b, 0, 0).unwrap();
    assert_eq!(log.segment_count(), 2, "third 1.5 KB batch does not fit in 4 KB");
    assert_eq!(log.segment_base_offsets(), vec![0, 2]);

    // Age is measured in record time, as Kafka does: old timestamps appended much later do
    // not roll, a batch 1001 ms newer than the segment's first one does.
    let mut small = batch(1, 0);
    log.append_as_leader(&mut small, 0, 1_000_000).unwrap();
    assert_eq!(log.segment_count(), 2);
    let mut newer = batch_with(1, 1_001, 10, Compression::None);
    log.append_as_leader(&mut newer, 0, 1_000_000).unwrap();
    assert_eq!(log.segment_base_offsets(), vec![0, 2, 4]);
    assert_eq!(read_all(&log).len(), 5);
}

#[test]
fn index_lookups_find_batches_across_many_segments() {
    let root = tempfile::tempdir().unwrap();
    let mut log = open(&partition_dir(root.path()), small_config());
    for i in 0..300 {
        let mut b = batch(1 + i % 4, i as i64);
        log.append_as_leader(&mut b, 0, 0).unwrap();
    }
    assert!(log.segment_count() > 5);
    for offset in 0..log.log_end_offset() {
        let read = log.read(offset, 1, i64::MAX, true).unwrap();
        let h = headers(&read.records);
        assert_eq!(h.len(), 1);
        assert!(
            h[0].base_offset <= offset && offset <= h[0].last_offset(),
            "offset {offset}"
        );
    }
}

#[test]
fn offset_for_timestamp_resolves_to_the_record() {
    let root = tempfile::tempdir().unwrap();
    let mut log = open(&partition_dir(root.path()), small_config());
    // Batch i holds 4 records with timestamps 100*i .. 100*i+3, offsets 4i .. 4i+3.
    for i in 0..100i64 {
        let compression = if i % 2 == 0 {
            Compression::None
        } else {
            Compression::Zstd
        };
        let mut b = batch_with(4, 100 * i, 50, compression);
        log.append_as_leader(&mut b, 0, 0).unwrap();
    }
    assert!(log.segment_count() > 1);
    let found = log.offset_for_timestamp(702).unwrap().unwrap();
    assert_eq!((found.offset, found.timestamp), (30, 702));
    let found = log.offset_for_timestamp(750).unwrap().unwrap();
    assert_eq!((found.offset, found.timestamp), (32, 800));
    let found = log.offset_for_timestamp(-5).unwrap().unwrap();
    assert_eq!(found.offset, 0);
    assert_eq!(log.offset_for_timestamp(9_904).unwrap(), None);

    let max = log.max_timestamp_and_offset().unwrap().unwrap();
    assert_eq!((max.timestamp, max.offset), (9_903, 399));
}

#[test]
fn log_append_time_lookups_use_the_batch_timestamp() {
    let root = tempfile::tempdir().unwrap();
    let mut log = open(&partition_dir(root.path()), LogConfig::default());
    for append_ms in [5_000, 6_000] {
        let mut b = batch(3, 10);
        set_log_append_time_all(&mut b, append_ms).unwrap();
        log.append_as_leader(&mut b, 0, append_ms).unwrap();
    }
    let found = log.offset_for_timestamp(5_500).unwrap().unwrap();
    assert_eq!((found.offset, found.timestamp), (3, 6_000));
    let max = log.max_timestamp_and_offset().unwrap().unwrap();
    assert_eq!((max.offset, max.timestamp), (3, 6_000));
}

/// Appends one batch of one 1 500-byte record per timestamp in `timestamps`: with
/// `small_config`'s 4 KiB segments, about two batches a segment.
fn append_large(log: &mut PartitionLog, timestamps: impl IntoIterator<Item = i64>) {
    for ts in timestamps {
        let mut b = batch_with(1, ts, 1500, Compression::None);
        log.append_as_leader(&mut b, 0, 0).unwrap();
    }
}

#[test]
fn retention_by_time_and_bytes_never_deletes_the_active_segment() {
    let root = tempfile::tempdir().unwrap();
    let config = LogConfig {
        retention_ms: 1_000,
        ..small_config()
    };
    let mut log = PartitionLog::open(&partition_dir(root.path()), None, config.clone(), 0).unwrap();
    append_large(&mut log, (0..10).map(|i| i * 100));
    let segments = log.segment_count();
    assert!(segments >= 4);
    // now 1_250: segments whose newest record is older than 250 go.
    let outcome = log.enforce_retention(1_250, i64::MAX).unwrap();
    assert!(outcome.deleted_segments >= 1);
    assert!(log.segment_base_offsets()[0] >= 2);
    assert_eq!(log.log_start_offset(), log.segment_base_offsets()[0]);
    assert!(log.read(0, 100, i64::MAX, true).is_err());

    let outcome = log.enforce_retention(1_000_000, i64::MAX).unwrap();
    assert!(outcome.deleted_segments >= 1);
    assert_eq!(log.segment_count(), 1, "only the active segment survives");
    assert_eq!(log.log_end_offset(), 10);
    assert_eq!(log.log_start_offset(), log.segment_base_offsets()[0]);

    // Retention by bytes on a fresh log.
    let root2 = tempfile::tempdir().unwrap();
    let config = LogConfig {
        retention_bytes: 5_000,
        ..small_config()
    };
    let mut log = PartitionLog::open(&partition_dir(root2.path()), None, config, 0).unwrap();
    append_large(&mut log, [0; 10]);
    log.enforce_retention(0, i64::MAX).unwrap();
    assert!(log.size_bytes() <= 5_000 + 4096, "size {}", log.size_bytes());
    assert!(log.size_bytes() > 1_500);
    let leftover: Vec<_> = std::fs::read_dir(partition_dir(root2.path()))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".deleted"))
        .collect();
    assert!(leftover.is_empty(), "file.delete.delay.ms=0 removes files at once");
}

#[test]
fn retention_lists_the_directory_for_snapshots_only_when_segments_went() {
    let root = tempfile::tempdir().unwrap();
    let dir = partition_dir(root.path());
    let config = LogConfig {
        retention_ms: 1_000,
        ..small_config()
    };
    let mut log = open(&dir, config);
    append_large(&mut log, (0..6).map(|i| i * 100));
    assert!(log.enforce_retention(1_250, i64::MAX).unwrap().deleted_segments >= 1);
    let first_base = log.segment_base_offsets()[0];
    assert!(first_base >= 2);
    // A snapshot file below the first segment stands for anything in the directory: a pass
    // that deletes no segment does not list the directory, so it stays...
    let stray = dir.join(format!("{:020}.snapshot", 1));
    std::fs::write(&stray, b"").unwrap();
    assert_eq!(log.enforce_retention(1_250, i64::MAX).unwrap().deleted_segments, 0);
    assert!(stray.exists());
    // ...and the next pass that deletes one prunes every snapshot below the new first segment.
    append_large(&mut log, (6..10).map(|i| i * 100));
    assert!(log.enforce_retention(1_000_000, i64::MAX).unwrap().deleted_segments >= 1);
    assert!(!stray.exists());
    let below_first: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            e.file_name()
                .to_string_lossy()
                .strip_suffix(".snapshot")
                .map(str::to_string)
        })
        .filter(|stem| stem.parse::<i64>().unwrap() < log.segment_base_offsets()[0])
        .collect();
    assert!(below_first.is_empty(), "{below_first:?}");
}

#[test]
fn retention_stops_at_the_high_watermark() {
    let root = tempfile::tempdir().unwrap();
    let config = LogConfig {
        retention_ms: 0,
        ..small_config()
    };
    let mut log = PartitionLog::open(&partition_dir(root.path()), None, config, 0).unwrap();
    append_large(&mut log, [0; 6]);
    log.enforce_retention(10_000, 0).unwrap();
    assert_eq!(log.log_start_offset(), 0, "nothing below a high watermark of 0 may go");
}

#[test]
fn deleted_files_wait_for_the_delay() {
    let root = tempfile::tempdir().unwrap();
    let dir = partition_dir(root.path());
    let config = LogConfig {
        file_delete_delay_ms: 500,
        ..small_config()
    };
    let mut log = open(&dir, config);
    append_large(&mut log, [0; 6]);
    log.delete_records_before(4, 1_000).unwrap();
    let deleted = |dir: &std::path::Path| {
        std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".deleted"))
            .count()
    };
    assert!(deleted(&dir) > 0);
    log.purge_deleted(1_499).unwrap();
    assert!(deleted(&dir) > 0);
    log.purge_deleted(1_500).unwrap();
    assert_eq!(deleted(&dir), 0);
}

#[test]
fn delete_records_moves_the_log_start_and_survives_reopen() {
    let root = tempfile::tempdir().unwrap();
    let dir = partition_dir(root.path());
    let mut log = open(&dir, small_config());
    for _ in 0..20 {
        let mut b = batch_with(2, 0, 400, Compression::None);
        log.append_as_leader(&mut b, 0, 0).unwrap();
    }
    assert_eq!(log.delete_records_before(13, 0).unwrap(), 13);
    assert!(matches!(
        log.read(12, 100, i64::MAX, true),
        Err(StorageError::OffsetOutOfRange { .. })
    ));
    let read = log.read(13, 100, i64::MAX, true).unwrap();
    assert_eq!(
        headers(&read.records)[0].base_offset,
        12,
        "whole batch holding offset 13"
    );
    assert!(log.segment_base_offsets()[0] <= 13);
    assert!(log.segment_base_offsets().len() < 10);
    assert_eq!(log.delete_records_before(5, 0).unwrap(), 13, "never moves backwards");
    assert!(log.delete_records_before(41, 0).is_err());
    log.close().unwrap();
    let log = open(&dir, small_config());
    assert_eq!(log.log_start_offset(), 13);
    assert_eq!(log.log_end_offset(), 40);
}

#[test]
fn truncate_to_drops_whole_batches_and_epochs() {
    let root = tempfile::tempdir().unwrap();
    let dir = partition_dir(root.path());
    let mut log = open(&dir, small_config());
    for i in 0..30 {
        let mut b = batch_with(2, i, 300, Compression::None);
        log.append_as_leader(&mut b, i as i32 / 10, 0).unwrap();
    }
    assert_eq!(log.epoch_entries(), vec![(0, 0), (1, 20), (2, 40)]);
    assert_eq!(log.end_offset_for_epoch(1), Some((1, 40)));
    log.truncate_to(25, 0).unwrap();
    assert_eq!(log.log_end_offset(), 24, "offset 25 is inside batch 24..25, which goes");
    assert_eq!(log.epoch_entries(), vec![(0, 0), (1, 20)]);
    assert_eq!(log.end_offset_for_epoch(1), Some((1, 24)));
    let mut b = batch(1, 0);
    assert_eq!(log.append_as_leader(&mut b, 3, 0).unwrap().first_offset, 24);
    assert_eq!(read_all(&log).last().unwrap().base_offset, 24);
    log.truncate_to(0, 0).unwrap();
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (0, 0));
    assert_eq!(log.latest_epoch(), None);
}

#[test]
fn follower_append_keeps_offsets_and_epochs() {
    let root = tempfile::tempdir().unwrap();
    let mut leader = open(&partition_dir(root.path()), LogConfig::default());
    let mut b = batch(3, 0);
    leader.append_as_leader(&mut b, 7, 0).unwrap();
    let follower_root = tempfile::tempdir().unwrap();
    let mut follower = open(&partition_dir(follower_root.path()), LogConfig::default());
    let data = leader.read(0, 1 << 20, i64::MAX, true).unwrap().records;
    follower.append_as_follower(&data, 0).unwrap();
    assert_eq!(follower.log_end_offset(), 3);
    assert_eq!(follower.latest_epoch(), Some(7));
    assert!(
        follower.append_as_follower(&data, 0).is_err(),
        "offsets below the log end"
    );
}

#[test]
fn flush_and_group_commit_bookkeeping() {
    let root = tempfile::tempdir().unwrap();
    let config = LogConfig {
        flush_policy: runnel_storage::FlushPolicy::Fsync,
        ..LogConfig::default()
    };
    let mut log = PartitionLog::open(&partition_dir(root.path()), None, config, 0).unwrap();
    let mut b = batch(4, 0);
    log.append_as_leader(&mut b, 0, 0).unwrap();
    assert_eq!(log.flushed_offset(), 0);
    let target = log.sync_target();
    assert_eq!(target.end_offset, 4);
    target.sync().unwrap();
    log.mark_flushed(target.end_offset);
    assert_eq!(log.flushed_offset(), 4);

    let root = tempfile::tempdir().unwrap();
    let config = LogConfig {
        flush_messages: 5,
        ..LogConfig::default()
    };
    let mut log = PartitionLog::open(&partition_dir(root.path()), None, config, 0).unwrap();
    log.append_as_leader(&mut batch(4, 0), 0, 0).unwrap();
    assert_eq!(log.flushed_offset(), 0);
    log.append_as_leader(&mut batch(1, 0), 0, 0).unwrap();
    assert_eq!(log.flushed_offset(), 5, "flush.messages=5 reached");
}

#[test]
fn checkpoint_files_use_kafka_formats() {
    let root = tempfile::tempdir().unwrap();
    let dir = partition_dir(root.path());
    let id = [7u8; 16];
    let mut log = PartitionLog::open(&dir, Some(id), LogConfig::default(), 0).unwrap();
    log.append_as_leader(&mut batch(2, 0), 5, 0).unwrap();
    assert_eq!(
        std::fs::read_to_string(dir.join("leader-epoch-checkpoint")).unwrap(),
        "0\n1\n5 0\n"
    );
    let meta = std::fs::read_to_string(dir.join("partition.metadata")).unwrap();
    assert_eq!(
        meta,
        format!("version: 0\ntopic_id: {}\n", runnel_storage::topic_id_to_string(&id))
    );
    log.close().unwrap();
    assert!(matches!(
        PartitionLog::open(&dir, Some([8u8; 16]), LogConfig::default(), 0),
        Err(StorageError::InconsistentTopicId { .. })
    ));
    let log = PartitionLog::open(&dir, None, LogConfig::default(), 0).unwrap();
    assert_eq!(log.topic_id(), Some(id));
    assert!(dir.join("00000000000000000000.log").exists());
    log.delete().unwrap();
    assert!(!dir.exists());
    assert_eq!(std::fs::read_dir(root.path()).unwrap().count(), 0);
}

#[test]
fn partition_dir_names() {
    assert_eq!(parse_partition_dir_name("my-topic-3"), Some(("my-topic".into(), 3)));
    assert_eq!(
        parse_partition_dir_name("__consumer_offsets-49"),
        Some(("__consumer_offsets".into(), 49))
    );
    assert_eq!(parse_partition_dir_name("topic"), None);
    assert_eq!(parse_partition_dir_name("-3"), None);
    assert_eq!(parse_partition_dir_name("t-3.abcdef-delete"), None);
    assert_eq!(parse_partition_dir_name("t-x"), None);
}
