//! The partition side of transactions: ongoing transactions pin the first unstable offset,
//! markers complete them, aborts land in the `.txnindex` of the marker's segment, and all of it
//! survives restarts, crashes, torn tails, truncation and retention.

mod common;

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use common::*;
use proptest::prelude::*;
use runnel_protocol::records::{encode_batch, BatchBuilderParams, Compression, Record};
use runnel_storage::{control_marker_type, AbortedTxn, LogConfig, PartitionLog, StorageError};

/// A batch of `count` records from producer `pid`.
fn producer_batch(pid: i64, epoch: i16, seq: i32, count: usize, transactional: bool) -> Vec<u8> {
    let records: Vec<Record> = (0..count)
        .map(|i| Record {
            attributes: 0,
            timestamp_delta: i as i64,
            offset_delta: i as i32,
            key: Some(Bytes::from(format!("k{i}"))),
            value: Some(Bytes::from(vec![7u8; 60])),
            headers: vec![],
        })
        .collect();
    let params = BatchBuilderParams {
        base_timestamp: 1_000,
        producer_id: pid,
        producer_epoch: epoch,
        base_sequence: seq,
        is_transactional: transactional,
        ..Default::default()
    };
    encode_batch(&params, &records, Compression::None).unwrap().to_vec()
}

fn txn(log: &mut PartitionLog, pid: i64, epoch: i16, seq: i32, count: usize) -> i64 {
    let mut b = producer_batch(pid, epoch, seq, count, true);
    log.append_as_leader(&mut b, 0, 1_000).unwrap().first_offset
}

fn marker(log: &mut PartitionLog, pid: i64, epoch: i16, commit: bool) -> i64 {
    log.append_txn_marker(pid, epoch, commit, 0, 0, 1_000)
        .unwrap()
        .first_offset
}

fn txn_index_files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "txnindex"))
        .collect();
    out.sort();
    out
}

fn all_aborted(log: &PartitionLog) -> Vec<AbortedTxn> {
    log.collect_aborted_transactions(0, i64::MAX).unwrap()
}

#[test]
fn an_open_transaction_pins_the_first_unstable_offset_until_commit() {
    let root = tempfile::tempdir().unwrap();
    let dir = partition_dir(root.path());
    let mut log = open(&dir, small_config());
    // Phase 1: non-transactional data, then a transaction opens at offset 2.
    log.append_as_leader(&mut batch(2, 0), 0, 0).unwrap();
    assert_eq!(log.first_unstable_offset(), None);
    assert_eq!(txn(&mut log, 1, 0, 0, 3), 2);
    assert_eq!(txn(&mut log, 1, 0, 3, 2), 5, "later batches of the same transaction");
    log.append_as_leader(&mut batch(1, 0), 0, 0).unwrap();
    assert_eq!(log.first_unstable_offset(), Some(2));
    assert_eq!(log.ongoing_transactions(), vec![(1, 0, 2)]);
    assert_eq!(log.producer_state().get(1).unwrap().current_txn_first_offset, Some(2));
    assert_eq!(log.last_stable_offset(8), 2);
    // Phase 2: the commit marker completes it; commits leave no index entry.
    let at = marker(&mut log, 1, 0, true);
    assert_eq!(at, 8);
    assert_eq!(log.first_unstable_offset(), None);
    assert_eq!(log.ongoing_transactions(), vec![]);
    assert!(txn_index_files(&dir).is_empty());
    assert_eq!(all_aborted(&log), vec![]);
    // Kafka holds the LSO back until the high watermark passes the marker.
    assert_eq!(log.last_stable_offset(8), 2);
    assert_eq!(log.last_stable_offset(9), 9);
    log.on_high_watermark_updated(9);
    assert_eq!(log.last_stable_offset(8), 8);
    // Phase 3: the marker is a control batch that reads back as COMMIT.
    let info = log.read(8, 1 << 20, i64::MAX, true).unwrap();
    let h = headers(&info.records)[0];
    assert!(h.is_control() && h.is_transactional());
    assert_eq!((h.producer_id, h.producer_epoch, h.base_sequence), (1, 0, -1));
    assert_eq!(control_marker_type(&info.records), Some(true));
}

#[test]
fn an_abort_is_indexed_with_the_last_stable_offset_after_it() {
    let root = tempfile::tempdir().unwrap();
    let dir = partition_dir(root.path());
    let mut log = open(&dir, small_config());
    txn(&mut log, 1, 0, 0, 2); // 0..=1
    txn(&mut log, 2, 0, 0, 2); // 2..=3
                               // Aborting 1 while 2 is open: the LSO stops at 2's first offset.
    let m1 = marker(&mut log, 1, 0, false);
    assert_eq!(m1, 4);
    assert_eq!(log.first_unstable_offset(), Some(2));
    // Aborting 2 with nothing else open: the LSO is just past the marker.
    let m2 = marker(&mut log, 2, 0, false);
    let expected = vec![
        AbortedTxn {
            producer_id: 1,
            first_offset: 0,
            last_offset: 4,
            last_stable_offset: 2,
        },
        AbortedTxn {
            producer_id: 2,
            first_offset: 2,
            last_offset: m2,
            last_stable_offset: m2 + 1,
        },
    ];
    assert_eq!(all_aborted(&log), expected);
    let files = txn_index_files(&dir);
    assert_eq!(files.len(), 1);
    assert_eq!(std::fs::metadata(&files[0]).unwrap().len(), 68, "two 34-byte entries");
    // The on-disk bytes are Kafka's: version 0, then the four offsets, big-endian.
    let bytes = std::fs::read(&files[0]).unwrap();
    assert_eq!(&bytes[0..2], &[0, 0]);
    assert_eq!(i64::from_be_bytes(bytes[2..10].try_into().unwrap()), 1);
    assert_eq!(i64::from_be_bytes(bytes[26..34].try_into().unwrap()), 2);
    assert_eq!(
        control_marker_type(&log.read(m1, 1 << 20, i64::MAX, true).unwrap().records),
        Some(false)
    );
    // Range queries follow Kafka's overlap rule.
    assert_eq!(
        log.collect_aborted_transactions(5, 100).unwrap(),
        expected[1..].to_vec()
    );
    assert_eq!(log.collect_aborted_transactions(0, 2).unwrap(), expected[..1].to_vec());
    assert_eq!(log.collect_aborted_transactions(m2 + 1, 100).unwrap(), vec![]);
    // Survives a clean restart.
    log.close().unwrap();
    let log = open(&dir, small_config());
    assert_eq!(all_aborted(&log), expected);
}

#[test]
fn non_transactional_write_during_a_transaction_is_invalid_txn_state() {
    let root = tempfile::tempdir().unwrap();
    let mut log = open(&partition_dir(root.path()), small_config());
    txn(&mut log, 1, 0, 0, 2);
    let leo = log.log_end_offset();
    let mut b = producer_batch(1, 0, 2, 1, false);
    let r = log.append_as_leader(&mut b, 0, 0);
    assert!(
        matches!(
            r,
            Err(StorageError::InvalidTxnState {
                producer_id: 1,
                offset: 2
            })
        ),
        "{r:?}"
    );
    assert_eq!(log.log_end_offset(), leo, "nothing written");
    // The sequence did not advance either: the next transactional batch continues at 2.
    assert_eq!(txn(&mut log, 1, 0, 2, 1), 2);
}

#[test]
fn producer_and_coordinator_epochs_fence_markers_and_data() {
    let root = tempfile::tempdir().unwrap();
    let mut log = open(&partition_dir(root.path()), small_config());
    txn(&mut log, 1, 3, 0, 1);
    // A marker from an older producer epoch is fenced.
    let stale = log.append_txn_marker(1, 2, true, 0, 0, 0);
    assert!(
        matches!(
            stale,
            Err(StorageError::InvalidProducerEpoch {
                epoch: 2,
                current_epoch: 3,
                ..
            })
        ),
        "{stale:?}"
    );
    // The coordinator aborts with a bumped epoch (timeout): the producer's epoch moves to 4.
    log.append_txn_marker(1, 4, false, 5, 0, 0).unwrap();
    assert_eq!(log.producer_state().get(1).unwrap().producer_epoch, 4);
    assert_eq!(log.producer_state().get(1).unwrap().coordinator_epoch, 5);
    assert_eq!(log.first_unstable_offset(), None);
    // Data from the old epoch is now fenced.
    let mut old = producer_batch(1, 3, 1, 1, true);
    assert!(matches!(
        log.append_as_leader(&mut old, 0, 0),
        Err(StorageError::InvalidProducerEpoch { .. })
    ));
    // A zombie coordinator (older coordinator epoch) is fenced too.
    txn(&mut log, 1, 4, 0, 1);
    let zombie = log.append_txn_marker(1, 4, true, 4, 0, 0);
    assert!(
        matches!(
            zombie,
            Err(StorageError::TransactionCoordinatorFenced {
                coordinator_epoch: 4,
                current_coordinator_epoch: 5,
                ..
            })
        ),
        "{zombie:?}"
    );
    assert!(
        log.first_unstable_offset().is_some(),
        "the fenced marker completed nothing"
    );
}

#[test]
fn a_marker_without_a_transaction_is_written_and_completes_nothing() {
    let root = tempfile::tempdir().unwrap();
    let dir = partition_dir(root.path());
    let mut log = open(&dir, small_config());
    let at = log.append_txn_marker(42, 0, false, 0, 0, 0).unwrap();
    assert_eq!((at.first_offset, log.log_end_offset()), (0, 1));
    assert_eq!(all_aborted(&log), vec![]);
    assert!(txn_index_files(&dir).is_empty());
}

#[test]
fn clients_may_not_write_control_batches() {
    let root = tempfile::tempdir().unwrap();
    let mut log = open(&partition_dir(root.path()), small_config());
    let mut b = runnel_storage::encode_end_txn_marker(
        1,
        0,
        runnel_storage::EndTxnMarker {
            commit: true,
            coordinator_epoch: 0,
        },
        0,
    )
    .unwrap();
    assert!(matches!(
        log.append_as_leader(&mut b, 0, 0),
        Err(StorageError::ControlBatchNotAllowed { offset: 0 })
    ));
    assert!(matches!(
        log.append_as_coordinator(&mut b, 0, 0),
        Err(StorageError::ControlBatchNotAllowed { .. })
    ));
    assert_eq!(log.log_end_offset(), 0);
}

#[test]
fn coordinator_appends_skip_sequence_checks_but_keep_epochs() {
    let root = tempfile::tempdir().unwrap();
    let mut log = open(&partition_dir(root.path()), small_config());
    // Transactional offset commits carry sequence -1: twice in a row is not a duplicate.
    for expected in [0, 1] {
        let mut b = producer_batch(9, 2, -1, 1, true);
        let info = log.append_as_coordinator(&mut b, 0, 0).unwrap();
        assert!(!info.duplicate);
        assert_eq!(info.first_offset, expected);
    }
    assert_eq!(log.ongoing_transactions(), vec![(9, 2, 0)]);
    let mut old = producer_batch(9, 1, -1, 1, true);
    assert!(matches!(
        log.append_as_coordinator(&mut old, 0, 0),
        Err(StorageError::InvalidProducerEpoch { .. })
    ));
    marker(&mut log, 9, 2, true);
    assert_eq!(log.first_unstable_offset(), None);
}

#[test]
fn ongoing_producers_never_expire() {
    let root = tempfile::tempdir().unwrap();
    let config = LogConfig {
        producer_id_expiration_ms: 10,
        ..small_config()
    };
    let mut log = open(&partition_dir(root.path()), config);
    txn(&mut log, 1, 0, 0, 1); // timestamp 1_000
    let mut idle = producer_batch(2, 0, 0, 1, false);
    log.append_as_leader(&mut idle, 0, 0).unwrap();
    // Well past the expiration and the check interval: only the idle producer goes.
    let mut other = batch(1, 0);
    log.append_as_leader(&mut other, 0, 10_000_000).unwrap();
    assert!(log.producer_state().get(1).is_some());
    assert!(log.producer_state().get(2).is_none());
    assert_eq!(log.first_unstable_offset(), Some(0));
}

/// Appends transactions across many small segments; returns the expected aborted list.
fn many_transactions(log: &mut PartitionLog, rounds: i32) -> Vec<AbortedTxn> {
    let mut aborted = Vec::new();
    for round in 0..rounds {
        let a = txn(log, 1, 0, round * 3, 3);
        let b = txn(log, 2, 0, round * 3, 3);
        let m = marker(log, 1, 0, round % 2 == 0);
        if round % 2 != 0 {
            aborted.push(AbortedTxn {
                producer_id: 1,
                first_offset: a,
                last_offset: m,
                last_stable_offset: b,
            });
        }
        let m2 = marker(log, 2, 0, false);
        aborted.push(AbortedTxn {
            producer_id: 2,
            first_offset: b,
            last_offset: m2,
            last_stable_offset: m2 + 1,
        });
    }
    aborted.sort_by_key(|t| t.first_offset);
    aborted
}

#[test]
fn aborted_transactions_are_collected_across_segments() {
    let root = tempfile::tempdir().unwrap();
    let dir = partition_dir(root.path());
    let mut log = open(&dir, small_config());
    let expected = many_transactions(&mut log, 20);
    assert!(log.segment_count() > 3, "small segments rolled");
    assert!(txn_index_files(&dir).len() > 1);
    assert_eq!(all_aborted(&log), expected);
    // Every window matches a brute-force filter.
    let leo = log.log_end_offset();
    for start in (0..leo).step_by(7) {
        for upper in [start + 1, start + 9, start + 40, leo] {
            let want: Vec<AbortedTxn> = expected
                .iter()
                .filter(|t| t.last_offset >= start && t.first_offset < upper)
                .copied()
                .collect();
            assert_eq!(
                log.collect_aborted_transactions(start, upper).unwrap(),
                want,
                "[{start}, {upper})"
            );
        }
    }
}

#[test]
fn a_crash_mid_transaction_keeps_it_ongoing() {
    let root = tempfile::tempdir().unwrap();
    let dir = partition_dir(root.path());
    let mut log = open(&dir, small_config());
    let expected = many_transactions(&mut log, 8);
    let first = txn(&mut log, 3, 1, 0, 2);
    txn(&mut log, 4, 0, 0, 1);
    let ongoing = log.ongoing_transactions();
    drop(log); // kill -9
    let mut log = open(&dir, small_config());
    assert_eq!(log.ongoing_transactions(), ongoing);
    assert_eq!(log.first_unstable_offset(), Some(first));
    assert_eq!(all_aborted(&log), expected);
    // The transaction can still be aborted after the restart.
    let m = marker(&mut log, 3, 1, false);
    let last = *all_aborted(&log).last().unwrap();
    assert_eq!(
        last,
        AbortedTxn {
            producer_id: 3,
            first_offset: first,
            last_offset: m,
            last_stable_offset: first + 2,
        }
    );
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

#[test]
fn a_torn_abort_marker_reopens_the_transaction_and_drops_its_entry() {
    let root = tempfile::tempdir().unwrap();
    let dir = partition_dir(root.path());
    let mut log = open(&dir, small_config());
    let expected = many_transactions(&mut log, 4);
    let first = txn(&mut log, 5, 0, 0, 2);
    let m = marker(&mut log, 5, 0, false);
    assert_eq!(all_aborted(&log).len(), expected.len() + 1);
    drop(log);
    // The marker (the last batch) is torn: half of it reached the disk.
    let tail = last_log_file(&dir);
    let len = std::fs::metadata(&tail).unwrap().len();
    OpenOptions::new()
        .write(true)
        .open(&tail)
        .unwrap()
        .set_len(len - 20)
        .unwrap();
    let log = open(&dir, small_config());
    assert_eq!(log.log_end_offset(), m);
    assert_eq!(log.ongoing_transactions(), vec![(5, 0, first)]);
    assert_eq!(all_aborted(&log), expected);
}

#[test]
fn a_lost_or_damaged_txn_index_is_rebuilt_after_a_crash() {
    let root = tempfile::tempdir().unwrap();
    let dir = partition_dir(root.path());
    let mut log = open(&dir, small_config());
    let expected = many_transactions(&mut log, 10);
    drop(log);
    let files = txn_index_files(&dir);
    // The active segment's index vanished (never flushed); an older one has a torn entry.
    std::fs::remove_file(files.last().unwrap()).unwrap();
    let mut bytes = std::fs::read(&files[0]).unwrap();
    bytes.extend_from_slice(&[1, 2, 3]);
    std::fs::write(&files[0], bytes).unwrap();
    let log = open(&dir, small_config());
    assert_eq!(all_aborted(&log), expected);
    assert_eq!(txn_index_files(&dir), files);
}

#[test]
fn truncation_drops_entries_and_reopens_transactions() {
    let root = tempfile::tempdir().unwrap();
    let dir = partition_dir(root.path());
    let mut log = open(&dir, small_config());
    let expected = many_transactions(&mut log, 6);
    let first = txn(&mut log, 7, 0, 0, 2);
    let m = marker(&mut log, 7, 0, false);
    txn(&mut log, 8, 0, 0, 1);
    log.truncate_to(m, 0).unwrap();
    assert_eq!(all_aborted(&log), expected);
    assert_eq!(log.ongoing_transactions(), vec![(7, 0, first)]);
    // Truncating into the middle of older transactions rewinds them too.
    let cut = expected[4].last_offset;
    log.truncate_to(cut, 0).unwrap();
    let kept: Vec<AbortedTxn> = expected.iter().filter(|t| t.last_offset < cut).copied().collect();
    assert_eq!(all_aborted(&log), kept);
    assert!(log
        .ongoing_transactions()
        .iter()
        .any(|(pid, _, f)| *pid == expected[4].producer_id && *f == expected[4].first_offset));
    // And it all holds after a crash.
    let ongoing = log.ongoing_transactions();
    drop(log);
    let log = open(&dir, small_config());
    assert_eq!(all_aborted(&log), kept);
    assert_eq!(log.ongoing_transactions(), ongoing);
}

#[test]
fn retention_deletes_txn_indexes_with_their_segments() {
    let root = tempfile::tempdir().unwrap();
    let dir = partition_dir(root.path());
    let mut log = open(&dir, small_config());
    many_transactions(&mut log, 24);
    let before = txn_index_files(&dir);
    let bases = log.segment_base_offsets();
    assert!(bases.len() > 3, "{bases:?}");
    // DeleteRecords past the first few segments.
    let cut = bases[2];
    log.delete_records_before(cut, 0).unwrap();
    let after = txn_index_files(&dir);
    assert!(after.len() < before.len());
    for p in &after {
        let base: i64 = p.file_stem().unwrap().to_str().unwrap().parse().unwrap();
        assert!(base >= cut, "{} survived", p.display());
    }
    assert!(all_aborted(&log).iter().all(|t| t.last_offset >= cut));
    // Full truncation leaves no index at all.
    log.truncate_to(0, 0).unwrap();
    assert!(txn_index_files(&dir).is_empty());
    assert_eq!(all_aborted(&log), vec![]);
}

/// One step of the model test.
#[derive(Debug, Clone)]
enum Op {
    /// A transactional batch of `n` records from producer `p`.
    Data(usize, usize),
    /// A marker for producer `p`: commit or abort.
    End(usize, bool),
    /// Non-transactional records from an idempotent-free writer.
    Plain(usize),
    /// Crash and reopen.
    Crash,
    /// Close and reopen.
    Restart,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0usize..3, 1usize..4).prop_map(|(p, n)| Op::Data(p, n)),
        3 => (0usize..3, any::<bool>()).prop_map(|(p, c)| Op::End(p, c)),
        2 => (1usize..4).prop_map(Op::Plain),
        1 => Just(Op::Crash),
        1 => Just(Op::Restart),
    ]
}

/// The model: ongoing transactions and the aborted list, computed Kafka's way.
#[derive(Default)]
struct Model {
    ongoing: Vec<Option<i64>>,
    next_seq: Vec<i32>,
    aborted: Vec<AbortedTxn>,
}

impl Model {
    fn lso_after(&self, p: usize, marker: i64) -> i64 {
        self.ongoing
            .iter()
            .enumerate()
            .filter(|(q, _)| *q != p)
            .filter_map(|(_, f)| *f)
            .min()
            .unwrap_or(marker + 1)
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn transactions_match_a_model_through_crashes(ops in proptest::collection::vec(op(), 1..60)) {
        let root = tempfile::tempdir().unwrap();
        let dir = partition_dir(root.path());
        let config = LogConfig { segment_bytes: 1024, ..small_config() };
        let mut log = open(&dir, config.clone());
        let mut m = Model { ongoing: vec![None; 3], next_seq: vec![0; 3], ..Model::default() };
        for op in ops {
            match op {
                Op::Data(p, n) => {
                    let mut b = producer_batch(p as i64 + 1, 0, m.next_seq[p], n, true);
                    let at = log.append_as_leader(&mut b, 0, 0).unwrap().first_offset;
                    m.next_seq[p] += n as i32;
                    m.ongoing[p].get_or_insert(at);
                }
                Op::End(p, commit) => {
                    let at = marker(&mut log, p as i64 + 1, 0, commit);
                    if let Some(first) = m.ongoing[p] {
                        let lso = m.lso_after(p, at);
                        if !commit {
                            m.aborted.push(AbortedTxn { producer_id: p as i64 + 1, first_offset: first, last_offset: at, last_stable_offset: lso });
                        }
                    }
                    m.ongoing[p] = None;
                }
                Op::Plain(n) => { log.append_as_leader(&mut batch(n, 0), 0, 0).unwrap(); }
                Op::Crash => { drop(log); log = open(&dir, config.clone()); }
                Op::Restart => { log.close().unwrap(); log = open(&dir, config.clone()); }
            }
            let want_first = m.ongoing.iter().filter_map(|f| *f).min();
            prop_assert_eq!(log.first_unstable_offset(), want_first);
            let mut want = m.aborted.clone();
            want.sort_by_key(|t| t.first_offset);
            prop_assert_eq!(all_aborted(&log), want);
        }
        let leo = log.log_end_offset();
        for start in 0..leo {
            let upper = (start + 5).min(leo);
            let mut want: Vec<AbortedTxn> = m.aborted.iter().filter(|t| t.last_offset >= start && t.first_offset < upper).copied().collect();
            want.sort_by_key(|t| t.first_offset);
            prop_assert_eq!(log.collect_aborted_transactions(start, upper).unwrap(), want);
        }
    }
}

/// One record `key = value` from producer `pid` (-1 for none).
fn keyed(pid: i64, seq: i32, transactional: bool, key: &str, value: &str) -> Vec<u8> {
    let record = Record {
        attributes: 0,
        timestamp_delta: 0,
        offset_delta: 0,
        key: Some(Bytes::from(key.to_string())),
        value: Some(Bytes::from(format!("{value}-{}", "x".repeat(100)))),
        headers: vec![],
    };
    let params = BatchBuilderParams {
        base_timestamp: 1_000,
        producer_id: pid,
        producer_epoch: if pid >= 0 { 0 } else { -1 },
        base_sequence: if pid >= 0 { seq } else { -1 },
        is_transactional: transactional,
        ..Default::default()
    };
    encode_batch(&params, &[record], Compression::None).unwrap().to_vec()
}

/// `(offset, key, value prefix)` of every data record, and the offsets of control batches.
fn contents(log: &PartitionLog) -> (Vec<(i64, String, String)>, Vec<i64>) {
    let (mut data, mut control) = (Vec::new(), Vec::new());
    let mut offset = log.log_start_offset();
    while offset < log.log_end_offset() {
        let info = log.read(offset, 1 << 20, i64::MAX, true).unwrap();
        for item in runnel_protocol::records::batches(&info.records) {
            let (h, bytes) = item.unwrap();
            offset = h.last_offset() + 1;
            if h.is_control() {
                control.push(h.base_offset);
                continue;
            }
            for r in runnel_protocol::records::decode_records(bytes, 1 << 20).unwrap() {
                let text = |b: Option<Bytes>| String::from_utf8(b.unwrap().to_vec()).unwrap();
                let value = text(r.value);
                let prefix = value.split('-').next().unwrap().to_string();
                data.push((h.base_offset + i64::from(r.offset_delta), text(r.key), prefix));
            }
        }
    }
    (data, control)
}

#[test]
fn compaction_drops_aborted_data_but_never_markers_or_open_transactions() {
    let root = tempfile::tempdir().unwrap();
    let dir = partition_dir(root.path());
    let config = LogConfig {
        segment_bytes: 1024,
        compact: true,
        min_cleanable_dirty_ratio_ppm: 0,
        ..small_config()
    };
    let mut log = open(&dir, config.clone());
    let append = |log: &mut PartitionLog, mut b: Vec<u8>| log.append_as_leader(&mut b, 0, 1_000).unwrap();
    // Phase 1: a committed plain value for `a`, shadowed only by an aborted transaction.
    append(&mut log, keyed(-1, 0, false, "a", "plain"));
    append(&mut log, keyed(1, 0, true, "a", "aborted"));
    marker(&mut log, 1, 0, false);
    append(&mut log, keyed(2, 0, true, "b", "old"));
    append(&mut log, keyed(2, 1, true, "b", "committed"));
    marker(&mut log, 2, 0, true);
    for i in 0..12 {
        append(&mut log, keyed(-1, 0, false, "c", &format!("fill{i}")));
    }
    // Phase 2: an open transaction rewrites `c`; it must survive any clean.
    let open_at = append(&mut log, keyed(3, 0, true, "c", "open")).first_offset;
    for i in 0..12 {
        append(&mut log, keyed(-1, 0, false, "d", &format!("later{i}")));
    }
    let aborted_before = all_aborted(&log);
    let (_, control_before) = contents(&log);
    // Phase 3: clean with a bound past everything: the open transaction caps it.
    let outcome = log
        .clean(1_000, i64::MAX, &runnel_storage::CleanerConfig::default())
        .unwrap();
    assert!(outcome.cleaned);
    assert!(outcome.end_offset <= open_at, "{} > {open_at}", outcome.end_offset);
    let (data, control) = contents(&log);
    let values = |k: &str| -> Vec<String> { data.iter().filter(|r| r.1 == k).map(|r| r.2.clone()).collect() };
    assert_eq!(values("a"), vec!["plain"], "aborted data is gone and shadows nothing");
    assert_eq!(values("b"), vec!["committed"], "committed transactional data compacts");
    assert!(values("c").contains(&"open".to_string()));
    assert_eq!(control, control_before, "every marker is kept");
    assert_eq!(all_aborted(&log), aborted_before, "the cleaned segment kept its index");
    assert_eq!(log.first_unstable_offset(), Some(open_at));
    // Phase 4: the cleaned log recovers to the same state after a crash.
    drop(log);
    let log = open(&dir, config);
    assert_eq!(all_aborted(&log), aborted_before);
    assert_eq!(log.first_unstable_offset(), Some(open_at));
    assert_eq!(contents(&log), (data, control));
}

#[test]
fn a_follower_copy_has_the_same_transactions_and_index() {
    let root = tempfile::tempdir().unwrap();
    let mut leader = open(&partition_dir(root.path()), small_config());
    let expected = many_transactions(&mut leader, 12);
    txn(&mut leader, 6, 0, 0, 2);
    let follower_dir = root.path().join("orders-1");
    let mut follower = open(&follower_dir, small_config());
    let mut offset = 0;
    while offset < leader.log_end_offset() {
        let info = leader.read(offset, 700, i64::MAX, true).unwrap();
        offset = headers(&info.records).last().unwrap().last_offset() + 1;
        follower.append_as_follower(&info.records, 0).unwrap();
    }
    assert_eq!(all_aborted(&follower), expected);
    assert_eq!(follower.ongoing_transactions(), leader.ongoing_transactions());
    drop(follower);
    let follower = open(&follower_dir, small_config());
    assert_eq!(all_aborted(&follower), expected);
    assert_eq!(follower.ongoing_transactions(), leader.ongoing_transactions());
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    /// A torn tail at any byte recovers to exactly what truncating the live log to the
    /// surviving end gives: same ongoing transactions, same aborted list.
    #[test]
    fn a_torn_tail_recovers_like_a_truncation(
        ops in proptest::collection::vec((0i64..3, 0u8..3), 1..50),
        cut in any::<prop::sample::Index>(),
    ) {
        let root = tempfile::tempdir().unwrap();
        let dir = partition_dir(root.path());
        let config = LogConfig { segment_bytes: 1024, ..small_config() };
        let mut log = open(&dir, config.clone());
        let mut seq = [0i32; 3];
        for (p, kind) in ops {
            match kind {
                0 => {
                    txn(&mut log, p + 1, 0, seq[p as usize], 2);
                    seq[p as usize] += 2;
                }
                1 => { marker(&mut log, p + 1, 0, false); }
                _ => { marker(&mut log, p + 1, 0, true); }
            }
        }
        // The crash: a copy of the directory, its last log file cut at a random byte.
        let crashed = root.path().join("orders-9");
        copy_dir(&dir, &crashed);
        let tail = last_log_file(&crashed);
        let len = std::fs::metadata(&tail).unwrap().len() as usize;
        let keep = cut.index(len + 1) as u64;
        OpenOptions::new().write(true).open(&tail).unwrap().set_len(keep).unwrap();
        let recovered = open(&crashed, config);
        log.truncate_to(recovered.log_end_offset(), 0).unwrap();
        prop_assert_eq!(recovered.ongoing_transactions(), log.ongoing_transactions());
        prop_assert_eq!(all_aborted(&recovered), all_aborted(&log));
    }
}
