//! Boundary tests for the record-batch layer: bytes in, values out.

use super::*;
use bytes::Bytes;
use proptest::prelude::*;

const LIMIT_BYTES: usize = 1 << 20;

fn codec_strategy() -> impl Strategy<Value = Compression> {
    prop_oneof![
        Just(Compression::None),
        Just(Compression::Gzip),
        Just(Compression::Snappy),
        Just(Compression::Lz4),
        Just(Compression::Zstd),
    ]
}

fn opt_bytes() -> impl Strategy<Value = Option<Bytes>> {
    proptest::option::of(proptest::collection::vec(any::<u8>(), 0..64).prop_map(Bytes::from))
}

/// (timestamp delta, key, value, headers) of one generated record.
type RecordParts = (i64, Option<Bytes>, Option<Bytes>, Vec<RecordHeader>);

fn record_strategy() -> impl Strategy<Value = RecordParts> {
    let header = ("[a-z]{0,8}", opt_bytes()).prop_map(|(key, value)| RecordHeader { key, value });
    (
        -1000i64..1000,
        opt_bytes(),
        opt_bytes(),
        proptest::collection::vec(header, 0..3),
    )
}

fn records_from(parts: Vec<RecordParts>) -> Vec<Record> {
    parts
        .into_iter()
        .enumerate()
        .map(|(i, (ts, key, value, headers))| Record {
            attributes: 0,
            timestamp_delta: ts,
            offset_delta: i as i32,
            key,
            value,
            headers,
        })
        .collect()
}

fn simple_batch(count: usize, compression: Compression) -> Bytes {
    let records: Vec<Record> = (0..count)
        .map(|i| Record {
            attributes: 0,
            timestamp_delta: i as i64,
            offset_delta: i as i32,
            key: None,
            value: Some(Bytes::from(format!("value-{i}"))),
            headers: vec![],
        })
        .collect();
    let params = BatchBuilderParams {
        base_timestamp: 1_000,
        ..Default::default()
    };
    encode_batch(&params, &records, compression).unwrap()
}

proptest! {
    #[test]
    fn encode_validate_decode_round_trips(
        parts in proptest::collection::vec(record_strategy(), 1..20),
        codec in codec_strategy(),
        base_offset in 0i64..1_000_000,
        producer_id in -1i64..100,
    ) {
        let records = records_from(parts);
        let params = BatchBuilderParams {
            base_offset,
            base_timestamp: 1_700_000_000_000,
            producer_id,
            ..Default::default()
        };
        let batch = encode_batch(&params, &records, codec).unwrap();
        let summary = validate_batches(&batch).unwrap();
        prop_assert_eq!(summary.batch_count, 1);
        prop_assert_eq!(summary.record_count, records.len() as i64);
        prop_assert_eq!(summary.first.base_offset, base_offset);
        prop_assert_eq!(summary.first.compression().unwrap(), codec);
        prop_assert_eq!(summary.first.last_offset(), base_offset + records.len() as i64 - 1);
        let max_ts = records.iter().map(|r| 1_700_000_000_000 + r.timestamp_delta).max().unwrap();
        prop_assert_eq!(summary.max_timestamp, max_ts);
        prop_assert_eq!(decode_records(&batch, LIMIT_BYTES).unwrap(), records);
    }

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = parse_header(&bytes);
        let _ = validate_batches(&bytes);
        let _ = validate_batches_with(&bytes, OffsetDensity::Sparse);
        let _ = decode_records(&bytes, LIMIT_BYTES);
        for item in batches(&bytes) { let _ = item; }
        let mut copy = bytes.clone();
        let _ = set_log_append_time_all(&mut copy, 5);
        let _ = assign_offsets(&mut copy, 0, 0);
    }

    #[test]
    fn mutated_valid_batch_never_panics(
        codec in codec_strategy(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        fix_crc in any::<bool>(),
    ) {
        let mut batch = simple_batch(5, codec).to_vec();
        for (idx, byte) in flips {
            let i = idx.index(batch.len());
            batch[i] = byte;
        }
        if fix_crc && batch.len() >= BATCH_HEADER_BYTES {
            let crc = compute_crc(&batch);
            batch[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
        }
        let _ = validate_batches(&batch);
        let _ = decode_records(&batch, LIMIT_BYTES);
    }

    #[test]
    fn assign_offsets_keeps_batches_valid(sizes in proptest::collection::vec(1usize..10, 1..6), first in 0i64..1_000_000) {
        let mut buf = Vec::new();
        for n in &sizes {
            buf.extend_from_slice(&simple_batch(*n, Compression::None));
        }
        let assigned = assign_offsets(&mut buf, first, 7).unwrap();
        let total: usize = sizes.iter().sum();
        prop_assert_eq!(assigned.last_offset, first + total as i64 - 1);
        let mut expected_base = first;
        for item in batches(&buf) {
            let (h, b) = item.unwrap();
            prop_assert_eq!(h.base_offset, expected_base);
            prop_assert_eq!(h.partition_leader_epoch, 7);
            validate_batch(b, OffsetDensity::Dense).unwrap();
            expected_base = h.last_offset() + 1;
        }
    }
}

#[test]
fn header_fields_and_flags() {
    let params = BatchBuilderParams {
        base_offset: 42,
        partition_leader_epoch: 3,
        base_timestamp: 100,
        producer_id: 9,
        producer_epoch: 2,
        base_sequence: 11,
        is_transactional: true,
        ..Default::default()
    };
    let records = records_from(vec![(0, None, None, vec![]), (5, None, None, vec![])]);
    let batch = encode_batch(&params, &records, Compression::Lz4).unwrap();
    let h = parse_header(&batch).unwrap();
    assert_eq!(h.base_offset, 42);
    assert_eq!(h.partition_leader_epoch, 3);
    assert_eq!(h.magic, 2);
    assert_eq!(h.compression().unwrap(), Compression::Lz4);
    assert_eq!(h.timestamp_type(), TimestampType::CreateTime);
    assert!(h.is_transactional());
    assert!(!h.is_control());
    assert_eq!(h.last_offset(), 43);
    assert_eq!(h.max_timestamp, 105);
    assert_eq!(h.producer_id, 9);
    assert_eq!(h.producer_epoch, 2);
    assert_eq!(h.base_sequence, 11);
    assert_eq!(h.last_sequence(), 12);
    assert_eq!(h.records_count, 2);
    assert_eq!(h.total_size_bytes(), batch.len());
}

#[test]
fn validation_rejects_bad_batches() {
    let good = simple_batch(3, Compression::None).to_vec();

    let mut bad_magic = good.clone();
    bad_magic[MAGIC_OFFSET] = 1;
    assert_eq!(validate_batches(&bad_magic), Err(RecordError::UnsupportedMagic(1)));

    let mut bad_crc = good.clone();
    let last = bad_crc.len() - 1;
    bad_crc[last] ^= 0xff;
    assert!(matches!(
        validate_batches(&bad_crc),
        Err(RecordError::CrcMismatch { .. })
    ));

    let truncated = &good[..good.len() - 1];
    assert!(matches!(
        validate_batches(truncated),
        Err(RecordError::Truncated { .. })
    ));

    let mut short_len = good.clone();
    short_len[BATCH_LENGTH_OFFSET..BATCH_LENGTH_OFFSET + 4].copy_from_slice(&10i32.to_be_bytes());
    assert_eq!(validate_batches(&short_len), Err(RecordError::InvalidBatchLength(10)));

    let mut bad_delta = good.clone();
    bad_delta[LAST_OFFSET_DELTA_OFFSET..LAST_OFFSET_DELTA_OFFSET + 4].copy_from_slice(&5i32.to_be_bytes());
    let crc = compute_crc(&bad_delta);
    bad_delta[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
    assert!(matches!(
        validate_batches(&bad_delta),
        Err(RecordError::InconsistentLastOffsetDelta { .. })
    ));
    // A compacted batch with holes is fine for replicated data.
    assert!(validate_batches_with(&bad_delta, OffsetDensity::Sparse).is_ok());

    assert_eq!(validate_batches(&[]), Err(RecordError::Empty));
}

#[test]
fn summary_covers_several_batches() {
    let mut buf = Vec::new();
    buf.extend_from_slice(&simple_batch(2, Compression::None)); // ts 1000..1001
    buf.extend_from_slice(&simple_batch(4, Compression::Zstd)); // ts 1000..1003
    buf.extend_from_slice(&simple_batch(1, Compression::Gzip)); // ts 1000
    let s = validate_batches(&buf).unwrap();
    assert_eq!(s.batch_count, 3);
    assert_eq!(s.record_count, 7);
    assert_eq!(s.offset_count, 7);
    assert_eq!(s.total_bytes, buf.len());
    assert_eq!(s.max_timestamp, 1003);
    assert_eq!(s.offset_delta_of_max_timestamp, 5);
    assert_eq!(s.first.records_count, 2);
    assert_eq!(s.last.records_count, 1);
}

#[test]
fn rewrites_keep_the_crc_valid() {
    let mut batch = simple_batch(3, Compression::Snappy).to_vec();
    set_base_offset(&mut batch, 1234).unwrap();
    set_partition_leader_epoch(&mut batch, 9).unwrap();
    let h = validate_batch(&batch, OffsetDensity::Dense).unwrap();
    assert_eq!((h.base_offset, h.partition_leader_epoch), (1234, 9));

    set_log_append_time_all(&mut batch, 99_999).unwrap();
    let h = validate_batch(&batch, OffsetDensity::Dense).unwrap();
    assert_eq!(h.timestamp_type(), TimestampType::LogAppendTime);
    assert_eq!(h.max_timestamp, 99_999);
    assert_eq!(h.base_timestamp, 1_000, "Kafka leaves base_timestamp alone in place");
    assert_eq!(h.compression().unwrap(), Compression::Snappy);
    assert_eq!(decode_records(&batch, LIMIT_BYTES).unwrap().len(), 3);
}

#[test]
fn decode_is_bounded() {
    let records = vec![Record {
        attributes: 0,
        timestamp_delta: 0,
        offset_delta: 0,
        key: None,
        value: Some(Bytes::from(vec![0u8; 100_000])),
        headers: vec![],
    }];
    for codec in [
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        let batch = encode_batch(&BatchBuilderParams::default(), &records, codec).unwrap();
        assert!(batch.len() < 10_000, "{codec:?} should compress zeros");
        assert!(matches!(
            decode_records(&batch, 50_000),
            Err(RecordError::DecompressedTooLarge { limit_bytes: 50_000 })
        ));
        assert_eq!(decode_records(&batch, 200_000).unwrap(), records);
    }
}

#[test]
fn huge_declared_record_count_is_rejected_without_allocating() {
    let mut batch = simple_batch(1, Compression::None).to_vec();
    batch[RECORDS_COUNT_OFFSET..RECORDS_COUNT_OFFSET + 4].copy_from_slice(&i32::MAX.to_be_bytes());
    assert_eq!(
        decode_records(&batch, LIMIT_BYTES),
        Err(RecordError::InvalidRecordsCount(i32::MAX))
    );
}
