//! Idempotent appends through `PartitionLog`: duplicates, fencing, snapshots and recovery.

mod common;

use std::path::Path;

use bytes::Bytes;
use common::{open, partition_dir, read_all, small_config};
use runnel_protocol::records::{encode_batch, BatchBuilderParams, Compression, Record};
use runnel_storage::{PartitionLog, StorageError};

fn idempotent_batch(producer_id: i64, epoch: i16, first_seq: i32, count: usize) -> Vec<u8> {
    let records: Vec<Record> = (0..count)
        .map(|i| Record {
            attributes: 0,
            timestamp_delta: 0,
            offset_delta: i as i32,
            key: None,
            value: Some(Bytes::from(vec![7u8; 100])),
            headers: vec![],
        })
        .collect();
    let params = BatchBuilderParams {
        base_timestamp: 0,
        producer_id,
        producer_epoch: epoch,
        base_sequence: first_seq,
        ..Default::default()
    };
    encode_batch(&params, &records, Compression::None).unwrap().to_vec()
}

fn snapshot_offsets(dir: &Path) -> Vec<i64> {
    let mut out: Vec<i64> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            name.strip_suffix(".snapshot").and_then(|s| s.parse().ok())
        })
        .collect();
    out.sort_unstable();
    out
}

#[test]
fn a_retry_is_answered_with_the_original_offsets_and_not_written() {
    let root = tempfile::tempdir().unwrap();
    let mut log = open(&partition_dir(root.path()), small_config());
    let first = log.append_as_leader(&mut idempotent_batch(5, 0, 0, 3), 0, 0).unwrap();
    log.append_as_leader(&mut idempotent_batch(5, 0, 3, 2), 0, 0).unwrap();
    let retry = log.append_as_leader(&mut idempotent_batch(5, 0, 0, 3), 0, 0).unwrap();
    assert!(retry.duplicate && !first.duplicate);
    assert_eq!((retry.first_offset, retry.last_offset), (0, 2));
    assert_eq!(log.log_end_offset(), 5);
    let gap = log.append_as_leader(&mut idempotent_batch(5, 0, 9, 1), 0, 0);
    assert!(matches!(gap, Err(StorageError::OutOfOrderSequence { .. })), "{gap:?}");
    log.append_as_leader(&mut idempotent_batch(5, 1, 0, 1), 0, 0).unwrap();
    let fenced = log.append_as_leader(&mut idempotent_batch(5, 0, 5, 1), 0, 0);
    assert!(
        matches!(fenced, Err(StorageError::InvalidProducerEpoch { .. })),
        "{fenced:?}"
    );
    assert_eq!(log.log_end_offset(), 6, "rejected batches wrote nothing");
}

#[test]
fn snapshots_are_taken_at_roll_and_dropped_with_old_segments() {
    let root = tempfile::tempdir().unwrap();
    let dir = partition_dir(root.path());
    let mut log = open(&dir, small_config());
    for seq in 0..80 {
        log.append_as_leader(&mut idempotent_batch(1, 0, seq, 1), 0, 0).unwrap();
    }
    let bases = log.segment_base_offsets();
    assert!(bases.len() > 2, "segments: {bases:?}");
    assert_eq!(snapshot_offsets(&dir), bases[1..].to_vec(), "one snapshot per roll");
    log.delete_records_before(bases[2], 0).unwrap();
    assert_eq!(snapshot_offsets(&dir), bases[2..].to_vec());
}

#[test]
fn state_survives_clean_close_and_crash() {
    for clean in [true, false] {
        let root = tempfile::tempdir().unwrap();
        let dir = partition_dir(root.path());
        let mut log = open(&dir, small_config());
        for seq in 0..30 {
            log.append_as_leader(&mut idempotent_batch(2, 3, seq, 1), 0, 0).unwrap();
        }
        if clean {
            log.close().unwrap();
        } else {
            drop(log);
        }
        let mut log = open(&dir, small_config());
        let retry = log.append_as_leader(&mut idempotent_batch(2, 3, 29, 1), 0, 0).unwrap();
        assert!(retry.duplicate, "clean={clean}");
        assert_eq!(retry.first_offset, 29);
        assert_eq!(log.producer_state().get(2).unwrap().batches.len(), 5);
        let next = log.append_as_leader(&mut idempotent_batch(2, 3, 30, 1), 0, 0).unwrap();
        assert_eq!((next.first_offset, next.duplicate), (30, false));
    }
}

#[test]
fn a_torn_roll_snapshot_is_dropped_and_the_state_rebuilt_from_the_log() {
    // A roll writes its producer snapshot without an fsync (the background pass syncs it), so a
    // crash can leave it empty or torn: the log must still open with the full state.
    for torn_len in [0u64, 7] {
        let root = tempfile::tempdir().unwrap();
        let dir = partition_dir(root.path());
        let mut log = open(&dir, small_config());
        for seq in 0..80 {
            log.append_as_leader(&mut idempotent_batch(6, 1, seq, 1), 0, 0).unwrap();
        }
        drop(log); // crash
        let newest = *snapshot_offsets(&dir).last().expect("rolls wrote snapshots");
        let path = dir.join(format!("{newest:020}.snapshot"));
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(torn_len)
            .unwrap();
        let mut log = open(&dir, small_config());
        assert!(
            !snapshot_offsets(&dir).contains(&newest),
            "the torn snapshot is deleted"
        );
        let retry = log.append_as_leader(&mut idempotent_batch(6, 1, 79, 1), 0, 0).unwrap();
        assert!(retry.duplicate, "torn to {torn_len} bytes");
        assert_eq!(retry.first_offset, 79);
        let gap = log.append_as_leader(&mut idempotent_batch(6, 1, 90, 1), 0, 0);
        assert!(matches!(gap, Err(StorageError::OutOfOrderSequence { .. })), "{gap:?}");
    }
}

#[test]
fn truncation_rewinds_producer_state() {
    let root = tempfile::tempdir().unwrap();
    let dir = partition_dir(root.path());
    let mut log = open(&dir, small_config());
    for seq in 0..30 {
        log.append_as_leader(&mut idempotent_batch(4, 0, seq, 1), 0, 0).unwrap();
    }
    log.truncate_to(10, 0).unwrap();
    assert_eq!(log.producer_state().get(4).unwrap().last_seq(), 9);
    let next = log.append_as_leader(&mut idempotent_batch(4, 0, 10, 1), 0, 0).unwrap();
    assert_eq!(next.first_offset, 10);
}

#[test]
fn expired_producers_are_forgotten() {
    let root = tempfile::tempdir().unwrap();
    let config = runnel_storage::LogConfig {
        producer_id_expiration_ms: 1_000,
        ..small_config()
    };
    let mut log = PartitionLog::open(&partition_dir(root.path()), None, config, 0).unwrap();
    log.append_as_leader(&mut idempotent_batch(8, 0, 0, 1), 0, 0).unwrap();
    // After the expiry check runs, the producer is unknown and may restart anywhere.
    let later_ms = 700_000;
    let info = log
        .append_as_leader(&mut idempotent_batch(8, 0, 77, 1), 0, later_ms)
        .unwrap();
    assert!(!info.duplicate);
    assert_eq!(log.producer_state().get(8).unwrap().last_seq(), 77);
}

mod model {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Op {
        /// A new batch of `count` records from producer `p`.
        Send {
            p: i64,
            count: usize,
        },
        /// Resend the producer's batch `back` batches before its latest.
        Retry {
            p: i64,
            back: usize,
        },
        Restart {
            clean: bool,
        },
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0i64..3, 1usize..4).prop_map(|(p, count)| Op::Send { p, count }),
            3 => (0i64..3, 0usize..8).prop_map(|(p, back)| Op::Retry { p, back }),
            1 => any::<bool>().prop_map(|clean| Op::Restart { clean }),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

        /// Whatever mix of sends, retries and restarts: every sequence is in the log exactly
        /// once, in order, and a retry of one of the last five batches gets its original offset.
        #[test]
        fn appends_retries_and_restarts_keep_exactly_once(ops in proptest::collection::vec(op(), 1..60)) {
            let root = tempfile::tempdir().unwrap();
            let dir = partition_dir(root.path());
            let mut log = Some(open(&dir, small_config()));
            // Per producer: (first seq, record count, first offset) of every batch sent.
            let mut sent: Vec<Vec<(i32, usize, i64)>> = vec![Vec::new(); 3];
            for op in ops {
                let l = log.as_mut().unwrap();
                match op {
                    Op::Send { p, count } => {
                        let seq = sent[p as usize].last().map_or(0, |(s, c, _)| s + *c as i32);
                        let info = l.append_as_leader(&mut idempotent_batch(p, 0, seq, count), 0, 0).unwrap();
                        prop_assert!(!info.duplicate);
                        sent[p as usize].push((seq, count, info.first_offset));
                    }
                    Op::Retry { p, back } => {
                        let batches = &sent[p as usize];
                        let Some(&(seq, count, offset)) = batches.len().checked_sub(back + 1).map(|i| &batches[i]) else {
                            continue;
                        };
                        let result = l.append_as_leader(&mut idempotent_batch(p, 0, seq, count), 0, 0);
                        if back < runnel_storage::BATCHES_RETAINED {
                            let info = result.unwrap();
                            prop_assert!(info.duplicate);
                            prop_assert_eq!(info.first_offset, offset);
                        } else {
                            let is_out_of_order = matches!(result, Err(StorageError::OutOfOrderSequence { .. }));
                            prop_assert!(is_out_of_order);
                        }
                    }
                    Op::Restart { clean } => {
                        let l = log.take().unwrap();
                        if clean { l.close().unwrap() } else { drop(l) }
                        log = Some(open(&dir, small_config()));
                    }
                }
            }
            let mut next_seq = [0i32; 3];
            for h in read_all(log.as_ref().unwrap()) {
                let p = h.producer_id as usize;
                prop_assert_eq!(h.base_sequence, next_seq[p], "producer {} at offset {}", p, h.base_offset);
                next_seq[p] += h.records_count;
            }
            for p in 0..3 {
                let expected: i32 = sent[p].iter().map(|(_, c, _)| *c as i32).sum();
                prop_assert_eq!(next_seq[p], expected);
            }
        }
    }
}
