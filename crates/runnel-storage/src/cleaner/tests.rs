use std::collections::HashMap;
use std::path::Path;

use bytes::Bytes;
use proptest::prelude::*;
use runnel_protocol::records::{
    batches, decode_records, encode_batch, BatchBuilderParams, BatchHeader, Compression, Record,
};

use super::*;
use crate::config::LogConfig;

/// One record to append: key index and value (`None` is a tombstone).
type Op = (u8, Option<u16>);
/// A decoded record: `(offset, key, value)`.
type Rec = (i64, Option<Bytes>, Option<Bytes>);

const NOW_MS: i64 = 1_000_000;

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 2048,
        index_interval_bytes: 256,
        segment_index_bytes: 4096,
        retention_ms: -1,
        file_delete_delay_ms: 0,
        compact: true,
        delete_retention_ms: 100,
        min_cleanable_dirty_ratio_ppm: 0,
        ..LogConfig::default()
    }
}

fn key(k: u8) -> Bytes {
    Bytes::from(format!("key-{k}"))
}

fn value(v: u16) -> Bytes {
    Bytes::from(format!("value-{v}-{}", "x".repeat(40)))
}

fn make_batch(ops: &[Op], timestamp: i64, codec: Compression, producer: Option<(i64, i32)>) -> Vec<u8> {
    let records: Vec<Record> = ops
        .iter()
        .enumerate()
        .map(|(i, (k, v))| Record {
            attributes: 0,
            timestamp_delta: i as i64,
            offset_delta: i as i32,
            key: Some(key(*k)),
            value: v.map(value),
            headers: vec![],
        })
        .collect();
    let (producer_id, base_sequence) = producer.unwrap_or((-1, -1));
    let params = BatchBuilderParams {
        base_timestamp: timestamp,
        producer_id,
        producer_epoch: if producer_id >= 0 { 0 } else { -1 },
        base_sequence,
        ..Default::default()
    };
    encode_batch(&params, &records, codec).expect("encode").to_vec()
}

fn open(dir: &Path, config: LogConfig) -> PartitionLog {
    PartitionLog::open(&dir.join("compacted-0"), None, config, NOW_MS).expect("open")
}

fn append(log: &mut PartitionLog, ops: &[Op], codec: Compression) {
    let mut batch = make_batch(ops, NOW_MS, codec, None);
    log.append_as_leader(&mut batch, 0, NOW_MS).expect("append");
}

/// Every batch from the log start, with its decoded records as `(offset, key, value)`.
fn read_all(log: &PartitionLog) -> Vec<(BatchHeader, Vec<Rec>)> {
    let mut out = Vec::new();
    let mut offset = log.log_start_offset();
    while offset < log.log_end_offset() {
        let info = log.read(offset, 1 << 20, i64::MAX, true).expect("read");
        if info.records.is_empty() {
            break;
        }
        for item in batches(&info.records) {
            let (h, batch) = item.expect("whole batch");
            let records = decode_records(batch, 1 << 24).expect("decode");
            let recs = records
                .into_iter()
                .map(|r| (h.base_offset + i64::from(r.offset_delta), r.key, r.value))
                .collect();
            offset = h.last_offset() + 1;
            out.push((h, recs));
        }
    }
    out
}

fn records(log: &PartitionLog) -> Vec<Rec> {
    read_all(log).into_iter().flat_map(|(_, r)| r).collect()
}

fn assert_increasing(recs: &[Rec]) {
    for w in recs.windows(2) {
        assert!(w[0].0 < w[1].0, "offsets not increasing: {} then {}", w[0].0, w[1].0);
    }
}

/// The records Kafka's cleaner keeps when one pass covers `[0, end)`: above `end` everything,
/// below it the latest record per key (tombstones included).
fn expected_after_one_pass(all: &[Rec], end: i64) -> Vec<Rec> {
    let mut latest: HashMap<Option<Bytes>, i64> = HashMap::new();
    for (o, k, _) in all.iter().filter(|r| r.0 < end) {
        latest.insert(k.clone(), *o);
    }
    all.iter()
        .filter(|(o, k, _)| *o >= end || latest.get(k) == Some(o))
        .cloned()
        .collect()
}

#[test]
fn keeps_latest_record_per_key_and_original_offsets() {
    let tmp = tempfile::tempdir().unwrap();
    let mut log = open(tmp.path(), config());
    for i in 0..60u16 {
        let ops: Vec<Op> = (0..5).map(|j| (((i * 5 + j) % 7) as u8, Some(i * 5 + j))).collect();
        append(&mut log, &ops, Compression::None);
    }
    let before = records(&log);
    let size_before = log.size_bytes();
    let outcome = log
        .clean(NOW_MS, log.log_end_offset(), &CleanerConfig::default())
        .unwrap();
    assert!(outcome.cleaned);
    assert!(outcome.records_removed > 0);
    let after = records(&log);
    assert_eq!(after, expected_after_one_pass(&before, outcome.end_offset));
    assert_increasing(&after);
    assert!(log.size_bytes() < size_before, "{} !< {size_before}", log.size_bytes());
    assert_eq!(log.log_end_offset(), 300);
    // The swapped-in indexes find every retained record.
    for (o, _, _) in &after {
        let info = log.read(*o, 1, i64::MAX, true).unwrap();
        let h = batches(&info.records).next().unwrap().unwrap().0;
        assert!(h.base_offset <= *o && *o <= h.last_offset(), "read at {o} found {h:?}");
    }
    // Nothing new is dirty: a second pass does nothing.
    assert!(
        !log.clean(NOW_MS, log.log_end_offset(), &CleanerConfig::default())
            .unwrap()
            .cleaned
    );
    // Batches keep their original offsets: last offset deltas are untouched.
    for (h, _) in read_all(&log) {
        assert_eq!((h.last_offset() + 1) % 5, 0, "batch {h:?} lost its last offset");
    }
}

#[test]
fn never_cleans_the_active_segment_or_above_the_bound() {
    let tmp = tempfile::tempdir().unwrap();
    let mut log = open(tmp.path(), config());
    for i in 0..40u16 {
        append(&mut log, &[(0, Some(i)), (1, Some(i))], Compression::None);
    }
    let active_base = *log.segment_base_offsets().last().unwrap();
    let before = records(&log);
    // A bound of 0 (nothing committed) cleans nothing.
    assert!(!log.clean(NOW_MS, 0, &CleanerConfig::default()).unwrap().cleaned);
    assert_eq!(records(&log), before);
    log.clean(NOW_MS, i64::MAX, &CleanerConfig::default()).unwrap();
    let after = records(&log);
    let active_before: Vec<_> = before.iter().filter(|r| r.0 >= active_base).collect();
    let active_after: Vec<_> = after.iter().filter(|r| r.0 >= active_base).collect();
    assert_eq!(active_before, active_after);
}

#[test]
fn tombstones_survive_until_delete_horizon_then_go() {
    let tmp = tempfile::tempdir().unwrap();
    let mut log = open(tmp.path(), config());
    for i in 0..30u16 {
        append(&mut log, &[(1, Some(i)), (2, Some(i))], Compression::None);
    }
    append(&mut log, &[(1, None)], Compression::None);
    for i in 0..30u16 {
        append(&mut log, &[(3, Some(i))], Compression::None);
    }
    let cfg = CleanerConfig::default();
    assert!(log.clean(NOW_MS, i64::MAX, &cfg).unwrap().cleaned);
    let recs = records(&log);
    let key1: Vec<_> = recs.iter().filter(|r| r.1 == Some(key(1))).collect();
    assert_eq!(key1.len(), 1, "only the tombstone of key 1 remains");
    assert_eq!(key1[0].2, None);
    let tombstone_batch = read_all(&log)
        .into_iter()
        .find(|(_, r)| r.iter().any(|x| x.1 == Some(key(1))))
        .unwrap()
        .0;
    assert_eq!(delete_horizon(&tombstone_batch), Some(NOW_MS + 100));
    // Before the horizon the tombstone stays (nothing is due either).
    log.clean(NOW_MS + 50, i64::MAX, &cfg).unwrap();
    assert!(records(&log).iter().any(|r| r.1 == Some(key(1))));
    // After it, a pass is due and removes it.
    assert!(log.clean(NOW_MS + 101, i64::MAX, &cfg).unwrap().cleaned);
    let recs = records(&log);
    assert!(!recs.iter().any(|r| r.1 == Some(key(1))));
    assert!(recs.iter().any(|r| r.1 == Some(key(2))));
    assert_increasing(&recs);
}

#[test]
fn compressed_batches_keep_their_codec_and_timestamps() {
    for codec in [
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let mut log = open(tmp.path(), config());
        for i in 0..40u16 {
            let ops: Vec<Op> = (0..4).map(|j| ((j % 3) as u8, Some(i * 4 + j))).collect();
            append(&mut log, &ops, codec);
        }
        let before = records(&log);
        let outcome = log.clean(NOW_MS, i64::MAX, &CleanerConfig::default()).unwrap();
        assert!(outcome.cleaned, "{codec:?}");
        assert_eq!(records(&log), expected_after_one_pass(&before, outcome.end_offset));
        for (h, recs) in read_all(&log) {
            if !recs.is_empty() {
                assert_eq!(h.compression().unwrap(), codec);
            }
            assert!(h.max_timestamp >= NOW_MS);
        }
    }
}

#[test]
fn min_compaction_lag_protects_young_segments() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = config();
    cfg.min_compaction_lag_ms = 10_000;
    let mut log = open(tmp.path(), cfg);
    for i in 0..40u16 {
        append(&mut log, &[(0, Some(i)), (1, Some(i))], Compression::None);
    }
    let before = records(&log);
    assert!(
        !log.clean(NOW_MS + 5_000, i64::MAX, &CleanerConfig::default())
            .unwrap()
            .cleaned
    );
    assert_eq!(records(&log), before);
    assert!(
        log.clean(NOW_MS + 20_000, i64::MAX, &CleanerConfig::default())
            .unwrap()
            .cleaned
    );
    assert!(records(&log).len() < before.len());
}

#[test]
fn dirty_ratio_below_minimum_skips_cleaning() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = config();
    cfg.set_min_cleanable_dirty_ratio(0.5);
    let mut log = open(tmp.path(), cfg);
    for i in 0..40u16 {
        append(&mut log, &[(0, Some(i))], Compression::None);
    }
    assert!(log.clean(NOW_MS, i64::MAX, &CleanerConfig::default()).unwrap().cleaned);
    // One more segment of dirt over a bigger clean section: ratio below 0.5 after a small append.
    append(&mut log, &[(0, Some(1))], Compression::None);
    assert!(!log.clean(NOW_MS, i64::MAX, &CleanerConfig::default()).unwrap().cleaned);
}

#[test]
fn bounded_offset_map_cleans_in_several_passes() {
    let tmp = tempfile::tempdir().unwrap();
    let mut log = open(tmp.path(), config());
    for i in 0..100u16 {
        let ops: Vec<Op> = (0..4).map(|j| (((i * 4 + j) % 50) as u8, Some(i))).collect();
        append(&mut log, &ops, Compression::None);
    }
    let cfg = CleanerConfig {
        dedupe_buffer_bytes: 10 * OFFSET_MAP_ENTRY_BYTES,
        ..CleanerConfig::default()
    };
    assert!(cfg.max_keys() < 50);
    let active_base = *log.segment_base_offsets().last().unwrap();
    let mut passes = 0;
    while log.cleaner.first_dirty_offset < active_base {
        let outcome = log.clean(NOW_MS, i64::MAX, &cfg).unwrap();
        assert!(outcome.cleaned, "pass {passes} cleaned nothing");
        assert!(outcome.end_offset > outcome.first_dirty_offset);
        passes += 1;
        assert!(passes < 100);
    }
    assert!(passes > 1, "a small map needs several passes");
    let recs = records(&log);
    assert_increasing(&recs);
    let below: Vec<_> = recs.iter().filter(|r| r.0 < active_base).collect();
    let mut keys: Vec<_> = below.iter().map(|r| r.1.clone()).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), below.len(), "one record per key below the active segment");
}

#[test]
fn last_batch_of_a_producer_is_kept_empty() {
    let tmp = tempfile::tempdir().unwrap();
    let mut log = open(tmp.path(), config());
    let mut b = make_batch(&[(9, Some(1))], NOW_MS, Compression::None, Some((77, 0)));
    log.append_as_leader(&mut b, 0, NOW_MS).unwrap();
    for i in 0..40u16 {
        append(&mut log, &[(9, Some(i))], Compression::None);
    }
    log.clean(NOW_MS, i64::MAX, &CleanerConfig::default()).unwrap();
    let first = read_all(&log).into_iter().next().unwrap();
    assert_eq!(first.0.producer_id, 77);
    assert_eq!(first.0.base_offset, 0);
    assert_eq!(first.0.records_count, 0);
    assert!(first.1.is_empty());
}

/// Plans and writes a clean, then stops as a crash would: `.cleaned` only, committed swap, or
/// committed swap with the old segments already gone.
fn crash_mid_swap(stage: u8) {
    let tmp = tempfile::tempdir().unwrap();
    let mut log = open(tmp.path(), config());
    for i in 0..60u16 {
        append(&mut log, &[((i % 3) as u8, Some(i)), (5, Some(i))], Compression::None);
    }
    let before = records(&log);
    let plan = log.plan_clean(NOW_MS, i64::MAX).unwrap().unwrap();
    let cleaned = plan.execute(NOW_MS, &CleanerConfig::default()).unwrap();
    let end = cleaned.end_offset;
    let dir = log.dir().to_path_buf();
    for g in &cleaned.groups {
        if stage >= 1 {
            let swap = swap_path(&dir, g.group.first_base(), g.group.end_offset);
            std::fs::rename(&g.cleaned_path, swap).unwrap();
        }
        if stage >= 2 {
            for s in &g.group.segments {
                std::fs::rename(&s.path, s.path.with_extension("log.deleted")).unwrap();
            }
        }
    }
    drop(log); // no clean close: a crash
    let log = open(tmp.path(), config());
    let after = records(&log);
    let expected = match stage {
        0 => before,
        _ => expected_after_one_pass(&before, end),
    };
    assert_eq!(after, expected, "stage {stage}");
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".swap") || n.ends_with(".cleaned"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn crash_before_swap_keeps_original_data() {
    crash_mid_swap(0);
}

#[test]
fn crash_after_swap_commit_completes_it() {
    crash_mid_swap(1);
}

#[test]
fn crash_after_old_segments_deleted_completes_it() {
    crash_mid_swap(2);
}

#[test]
fn plan_is_discarded_when_retention_deletes_segments_meanwhile() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = config();
    cfg.retention_bytes = 4096;
    let mut log = open(tmp.path(), cfg);
    for i in 0..60u16 {
        append(&mut log, &[(0, Some(i))], Compression::None);
    }
    let plan = log.plan_clean(NOW_MS, i64::MAX).unwrap().unwrap();
    let cleaned = plan.execute(NOW_MS, &CleanerConfig::default()).unwrap();
    let paths: Vec<_> = cleaned.groups.iter().map(|g| g.cleaned_path.clone()).collect();
    log.enforce_retention(NOW_MS, i64::MAX).unwrap();
    let before = records(&log);
    assert!(!log.finish_clean(cleaned, NOW_MS).unwrap().cleaned);
    assert_eq!(records(&log), before);
    assert!(paths.iter().all(|p| !p.exists()));
}

#[test]
fn offset_map_keeps_the_latest_offset_and_its_bound() {
    let mut map = OffsetMap::new(2);
    assert!(map.put(b"a", 5, false));
    assert!(map.put(b"a", 3, false));
    assert_eq!(map.get(b"a"), Some(5));
    assert!(map.put(b"b", 1, false));
    assert!(!map.put(b"c", 9, false));
    assert_eq!(map.len(), 2);
    assert!(map.put(b"c", 9, true));
    assert_eq!(map.get(b"c"), Some(9));
}

fn op_strategy() -> impl Strategy<Value = Op> {
    (0u8..12, prop::option::weighted(0.8, any::<u16>()))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn cleaning_keeps_latest_value_per_key(batches in prop::collection::vec(prop::collection::vec(op_strategy(), 1..6), 1..80)) {
        let tmp = tempfile::tempdir().unwrap();
        let mut log = open(tmp.path(), config());
        let mut latest: HashMap<u8, Option<u16>> = HashMap::new();
        for ops in &batches {
            append(&mut log, ops, Compression::Lz4);
            for (k, v) in ops {
                latest.insert(*k, *v);
            }
        }
        let leo = log.log_end_offset();
        // Clean, then clean again after the tombstones' horizon.
        log.clean(NOW_MS, i64::MAX, &CleanerConfig::default()).unwrap();
        log.clean(NOW_MS + 1_000, i64::MAX, &CleanerConfig::default()).unwrap();
        prop_assert_eq!(log.log_end_offset(), leo);
        let recs = records(&log);
        for w in recs.windows(2) {
            prop_assert!(w[0].0 < w[1].0);
        }
        // Replaying the log yields each key's latest value.
        let mut replayed: HashMap<u8, Option<u16>> = HashMap::new();
        let by_value: HashMap<Bytes, u16> = latest.values().flatten().map(|v| (value(*v), *v)).collect();
        for (_, k, v) in &recs {
            let k = k.as_ref().unwrap();
            let k: u8 = std::str::from_utf8(&k[4..]).unwrap().parse().unwrap();
            replayed.insert(k, v.as_ref().and_then(|v| by_value.get(v).copied()));
        }
        for (k, v) in &latest {
            match v {
                Some(v) => prop_assert_eq!(replayed.get(k), Some(&Some(*v)), "key {}", k),
                None => prop_assert!(replayed.get(k).is_none_or(|x| x.is_none()), "key {} deleted", k),
            }
        }
    }
}

/// A transactional batch of one record `key = value` from producer `pid`.
fn txn_batch(pid: i64, seq: i32, k: u8, v: u16) -> Vec<u8> {
    let record = Record {
        attributes: 0,
        timestamp_delta: 0,
        offset_delta: 0,
        key: Some(key(k)),
        value: Some(value(v)),
        headers: vec![],
    };
    let params = BatchBuilderParams {
        base_timestamp: NOW_MS,
        producer_id: pid,
        producer_epoch: 0,
        base_sequence: seq,
        is_transactional: true,
        ..Default::default()
    };
    encode_batch(&params, &[record], Compression::None)
        .expect("encode")
        .to_vec()
}

/// A log whose early segments hold aborted and committed transactions over plain data.
fn log_with_transactions(dir: &Path) -> PartitionLog {
    let mut log = open(dir, config());
    for round in 0..6u16 {
        append(&mut log, &[(1, Some(round)), (2, Some(round))], Compression::None);
        let seq = i32::from(round);
        log.append_as_leader(&mut txn_batch(7, seq, 1, 900 + round), 0, NOW_MS)
            .unwrap();
        log.append_txn_marker(7, 0, round % 2 == 0, 0, 0, NOW_MS).unwrap();
    }
    for i in 0..40u16 {
        append(&mut log, &[(3, Some(i))], Compression::None);
    }
    log
}

/// Every transactional record still in the log is covered by an aborted-transaction entry
/// exactly when it was aborted (values 901, 903, 905). A rescan after a crash may rebuild the
/// index without the aborts whose data the cleaner removed entirely, as Kafka's would.
fn assert_aborted_data_is_covered(log: &PartitionLog) {
    let aborted = log.collect_aborted_transactions(0, i64::MAX).unwrap();
    for (h, recs) in read_all(log) {
        if !h.is_transactional() || h.is_control() {
            continue;
        }
        let covered = aborted.iter().any(|t| {
            t.producer_id == h.producer_id && t.first_offset <= h.base_offset && h.base_offset <= t.last_offset
        });
        for (offset, _, v) in recs {
            let was_aborted = [value(901), value(903), value(905)].contains(v.as_ref().unwrap());
            assert_eq!(covered, was_aborted, "record at {offset}: {aborted:?}");
        }
    }
}

/// Plans and writes a clean of a log with transactions, stops as a crash would at `stage`
/// (see `crash_mid_swap`), and checks the aborted-transaction list survives.
fn crash_mid_swap_with_transactions(stage: u8) {
    let tmp = tempfile::tempdir().unwrap();
    let log = log_with_transactions(tmp.path());
    let aborted = log.collect_aborted_transactions(0, i64::MAX).unwrap();
    assert_eq!(aborted.len(), 3);
    let plan = log.plan_clean(NOW_MS, i64::MAX).unwrap().unwrap();
    let cleaned = plan.execute(NOW_MS, &CleanerConfig::default()).unwrap();
    let dir = log.dir().to_path_buf();
    for g in &cleaned.groups {
        if stage >= 1 {
            let swap = swap_path(&dir, g.group.first_base(), g.group.end_offset);
            std::fs::rename(&g.cleaned_path, swap).unwrap();
        }
        if stage >= 2 {
            for s in &g.group.segments {
                std::fs::rename(&s.path, s.path.with_extension("log.deleted")).unwrap();
            }
        }
    }
    drop(log);
    let log = open(tmp.path(), config());
    assert_aborted_data_is_covered(&log);
    if stage == 0 {
        assert_eq!(log.collect_aborted_transactions(0, i64::MAX).unwrap(), aborted);
        return; // nothing was swapped in: the raw log still holds the aborted records
    }
    // Once the clean is in, the latest value of key 1 is never an aborted one (901, 903, 905).
    let latest_1 = records(&log)
        .into_iter()
        .filter(|r| r.1 == Some(key(1)))
        .last()
        .unwrap();
    assert!(![value(901), value(903), value(905)].contains(latest_1.2.as_ref().unwrap()));
}

#[test]
fn transactions_survive_every_crash_point_of_a_swap() {
    for stage in 0..3 {
        crash_mid_swap_with_transactions(stage);
    }
}

#[test]
fn aborted_records_never_shadow_committed_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let mut log = log_with_transactions(tmp.path());
    let aborted = log.collect_aborted_transactions(0, i64::MAX).unwrap();
    let outcome = log.clean(NOW_MS, i64::MAX, &CleanerConfig::default()).unwrap();
    assert!(outcome.cleaned);
    let recs = records(&log);
    let key1: Vec<_> = recs.iter().filter(|r| r.1 == Some(key(1))).collect();
    // Round 5's plain value 5 was followed by the aborted 905: the plain one must survive.
    assert_eq!(key1.last().unwrap().2, Some(value(5)), "{key1:?}");
    assert!(recs.iter().all(|r| r.2 != Some(value(905))));
    assert_eq!(log.collect_aborted_transactions(0, i64::MAX).unwrap(), aborted);
    // The markers are all still there.
    let controls = read_all(&log).iter().filter(|(h, _)| h.is_control()).count();
    assert_eq!(controls, 6);
}
