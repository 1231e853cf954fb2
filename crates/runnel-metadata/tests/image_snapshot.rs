//! Property: replaying any valid record sequence, then snapshot → restore, yields an equal image;
//! and copy-on-write never changes an older image.

use proptest::prelude::*;
use runnel_metadata::records::{MetadataRecord, RESOURCE_TYPE_BROKER, RESOURCE_TYPE_TOPIC};
use runnel_metadata::MetadataImage;

fn topic_id(i: u8) -> [u8; 16] {
    [i + 1; 16]
}

/// Small id spaces so that records hit each other (changes to existing topics, re-creates, ...).
fn record() -> impl Strategy<Value = MetadataRecord> {
    let names = prop::sample::select(vec!["a", "b", "c.d", "e_f"]);
    let ids = 0u8..4;
    let brokers = prop::collection::vec(0i32..4, 1..4);
    prop_oneof![
        "[a-z0-9]{1,8}".prop_map(|cluster_id| MetadataRecord::ClusterRecord { cluster_id }),
        (names.clone(), ids.clone()).prop_map(|(n, i)| MetadataRecord::TopicRecord {
            name: n.into(),
            topic_id: topic_id(i)
        }),
        (ids.clone(), 0i32..4, brokers.clone(), 0i32..5).prop_map(|(i, p, r, e)| MetadataRecord::PartitionRecord {
            topic_id: topic_id(i),
            partition: p,
            leader: r[0],
            isr: r.clone(),
            replicas: r,
            leader_epoch: e,
            partition_epoch: e,
        }),
        (
            ids.clone(),
            0i32..4,
            prop::option::of(0i32..4),
            prop::option::of(brokers)
        )
            .prop_map(|(i, p, leader, isr)| {
                MetadataRecord::PartitionChangeRecord {
                    topic_id: topic_id(i),
                    partition: p,
                    leader,
                    isr,
                    replicas: None,
                }
            }),
        ids.clone()
            .prop_map(|i| MetadataRecord::RemoveTopicRecord { topic_id: topic_id(i) }),
        (prop::bool::ANY, names, "[a-z.]{1,6}", prop::option::of("[0-9]{1,4}")).prop_map(|(topic, n, k, v)| {
            MetadataRecord::ConfigRecord {
                resource_type: if topic {
                    RESOURCE_TYPE_TOPIC
                } else {
                    RESOURCE_TYPE_BROKER
                },
                resource_name: n.into(),
                name: k,
                value: v,
            }
        }),
        (0i32..3, 0i64..100).prop_map(|(b, e)| MetadataRecord::RegisterBrokerRecord {
            broker_id: b,
            incarnation_id: [b as u8; 16],
            epoch: e,
            endpoints: vec![],
            rack: None,
        }),
        (0i64..10_000).prop_map(|n| MetadataRecord::ProducerIdsRecord {
            broker_id: 0,
            broker_epoch: 0,
            next_producer_id: n
        }),
        ("[a-z.]{1,6}", 0i16..3).prop_map(|(name, level)| MetadataRecord::FeatureLevelRecord { name, level }),
    ]
}

proptest! {
    #[test]
    fn snapshot_round_trip_gives_equal_image(batches in prop::collection::vec(prop::collection::vec(record(), 0..8), 0..12)) {
        let mut image = MetadataImage::empty();
        let mut history = vec![image.clone()];
        for (i, batch) in batches.iter().enumerate() {
            image = image.apply_at(batch, i as u64 + 1, 1);
            history.push(image.clone());
        }
        let restored = MetadataImage::from_snapshot_bytes(&image.to_snapshot_bytes()).unwrap();
        prop_assert_eq!(&restored, &image);
        // Older images are untouched by later applies (copy-on-write).
        let mut replay = MetadataImage::empty();
        for (i, batch) in batches.iter().enumerate() {
            prop_assert_eq!(&replay, &history[i]);
            replay = replay.apply_at(batch, i as u64 + 1, 1);
        }
        prop_assert_eq!(replay, image);
    }
}

proptest! {
    #[test]
    fn record_batches_round_trip(batch in prop::collection::vec(record(), 0..16)) {
        let bytes = runnel_metadata::records::encode_records(&batch);
        prop_assert_eq!(runnel_metadata::records::decode_records(&bytes).unwrap(), batch);
    }
}

#[test]
fn corrupt_snapshot_is_an_error() {
    let bytes = MetadataImage::empty().to_snapshot_bytes();
    assert!(MetadataImage::from_snapshot_bytes(&bytes[..bytes.len() - 1]).is_err());
    assert!(MetadataImage::from_snapshot_bytes(&[]).is_err());
}
