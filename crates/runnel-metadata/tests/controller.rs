//! Controller decisions: records produced and Kafka error codes per item.

use runnel_metadata::controller::*;
use runnel_metadata::records::{MetadataRecord, RESOURCE_TYPE_BROKER, RESOURCE_TYPE_TOPIC};
use runnel_metadata::MetadataImage;

fn opts(ids: usize) -> CreateTopicsOptions {
    CreateTopicsOptions {
        validate_only: false,
        default_num_partitions: 1,
        default_replication_factor: 1,
        live_broker_ids: vec![1, 2, 3],
        topic_ids: (0..ids).map(|i| [i as u8 + 1; 16]).collect(),
    }
}

fn spec(name: &str, partitions: i32, rf: i16) -> CreateTopicSpec {
    CreateTopicSpec {
        name: name.into(),
        num_partitions: partitions,
        replication_factor: rf,
        ..Default::default()
    }
}

fn create(
    image: &MetadataImage,
    specs: &[CreateTopicSpec],
) -> (MetadataImage, Vec<Result<CreatedTopic, ControllerError>>) {
    let (records, outcomes) = create_topics(image, specs, &opts(specs.len()));
    (image.apply(&records), outcomes)
}

fn code<T: std::fmt::Debug>(r: &Result<T, ControllerError>) -> i16 {
    r.as_ref().err().map_or(0, |e| e.code)
}

#[test]
fn create_topic_places_replicas_on_distinct_live_brokers() {
    let (image, outcomes) = create(&MetadataImage::empty(), &[spec("orders", 6, 3)]);
    let created = outcomes[0].as_ref().unwrap();
    assert_eq!((created.num_partitions, created.replication_factor), (6, 3));
    let topic = image.topic("orders").unwrap();
    assert_eq!(topic.partitions.len(), 6);
    let leaders: std::collections::BTreeSet<i32> = topic.partitions.iter().map(|p| p.leader).collect();
    assert_eq!(leaders.len(), 3, "leaders spread over all brokers");
    for p in &topic.partitions {
        let mut r = p.replicas.clone();
        r.sort();
        r.dedup();
        assert_eq!(r.len(), 3);
        assert_eq!(p.isr, p.replicas);
        assert_eq!(p.leader, p.replicas[0]);
    }
    assert_eq!(image.topic_by_id(&created.topic_id).unwrap().name, "orders");
}

#[test]
fn defaults_apply_for_minus_one() {
    let (image, outcomes) = create(&MetadataImage::empty(), &[spec("t", -1, -1)]);
    assert!(outcomes[0].is_ok());
    assert_eq!(image.topic("t").unwrap().partitions.len(), 1);
}

#[test]
fn create_topic_error_codes() {
    let (image, _) = create(&MetadataImage::empty(), &[spec("existing", 1, 1), spec("a_b", 1, 1)]);
    let long = "x".repeat(250);
    let cases: Vec<(CreateTopicSpec, i16)> = vec![
        (spec("existing", 1, 1), codes::TOPIC_ALREADY_EXISTS),
        (spec("", 1, 1), codes::INVALID_TOPIC_EXCEPTION),
        (spec(".", 1, 1), codes::INVALID_TOPIC_EXCEPTION),
        (spec("..", 1, 1), codes::INVALID_TOPIC_EXCEPTION),
        (spec("bad/name", 1, 1), codes::INVALID_TOPIC_EXCEPTION),
        (spec(&long, 1, 1), codes::INVALID_TOPIC_EXCEPTION),
        (spec("a.b", 1, 1), codes::INVALID_TOPIC_EXCEPTION),
        (spec("zero", 0, 1), codes::INVALID_PARTITIONS),
        (spec("neg", -5, 1), codes::INVALID_PARTITIONS),
        (spec("rf0", 1, 0), codes::INVALID_REPLICATION_FACTOR),
        (spec("rf4", 1, 4), codes::INVALID_REPLICATION_FACTOR),
    ];
    for (s, expected) in cases {
        let (records, outcomes) = create_topics(&image, std::slice::from_ref(&s), &opts(1));
        assert_eq!(code(&outcomes[0]), expected, "spec {:?}", s.name);
        assert!(records.is_empty());
    }
    let mut fresh = opts(1);
    fresh.topic_ids = vec![[42; 16]];
    let (_, ok) = create_topics(&image, &[spec(&"y".repeat(249), 1, 1)], &fresh);
    assert_eq!(code(&ok[0]), 0);
    let (_, bad_config) = create_topics(
        &image,
        &[CreateTopicSpec {
            configs: vec![("retention.ms".into(), Some("abc".into()))],
            ..spec("cfg", 1, 1)
        }],
        &fresh,
    );
    assert_eq!(code(&bad_config[0]), codes::INVALID_CONFIG);
    let (_, unknown_config) = create_topics(
        &image,
        &[CreateTopicSpec {
            configs: vec![("no.such.config".into(), Some("1".into()))],
            ..spec("cfg", 1, 1)
        }],
        &fresh,
    );
    assert_eq!(code(&unknown_config[0]), codes::INVALID_CONFIG);
}

#[test]
fn manual_assignment_rules() {
    let with = |assignments: Vec<(i32, Vec<i32>)>, p: i32, rf: i16| CreateTopicSpec {
        name: "m".into(),
        num_partitions: p,
        replication_factor: rf,
        assignments,
        configs: vec![],
    };
    let img = MetadataImage::empty();
    let check = |s: CreateTopicSpec| code(&create(&img, &[s]).1[0]);
    assert_eq!(check(with(vec![(0, vec![1, 2]), (1, vec![2, 3])], -1, -1)), 0);
    assert_eq!(check(with(vec![(0, vec![1])], 1, -1)), codes::INVALID_REQUEST);
    assert_eq!(check(with(vec![(0, vec![1])], -1, 1)), codes::INVALID_REQUEST);
    assert_eq!(
        check(with(vec![(1, vec![1])], -1, -1)),
        codes::INVALID_REPLICA_ASSIGNMENT
    );
    assert_eq!(
        check(with(vec![(0, vec![])], -1, -1)),
        codes::INVALID_REPLICA_ASSIGNMENT
    );
    assert_eq!(
        check(with(vec![(0, vec![1, 1])], -1, -1)),
        codes::INVALID_REPLICA_ASSIGNMENT
    );
    assert_eq!(
        check(with(vec![(0, vec![9])], -1, -1)),
        codes::INVALID_REPLICA_ASSIGNMENT
    );
    assert_eq!(
        check(with(vec![(0, vec![1]), (1, vec![1, 2])], -1, -1)),
        codes::INVALID_REPLICA_ASSIGNMENT
    );
    let (image, _) = create(&img, &[with(vec![(1, vec![3]), (0, vec![2])], -1, -1)]);
    let t = image.topic("m").unwrap();
    assert_eq!((t.partitions[0].leader, t.partitions[1].leader), (2, 3));
}

#[test]
fn batch_sees_earlier_topics_and_flags_duplicates() {
    let (image, outcomes) = create(
        &MetadataImage::empty(),
        &[spec("x.y", 1, 1), spec("x_y", 1, 1), spec("d", 1, 1), spec("d", 1, 1)],
    );
    assert_eq!(code(&outcomes[0]), 0);
    assert_eq!(code(&outcomes[1]), codes::INVALID_TOPIC_EXCEPTION);
    assert_eq!(code(&outcomes[2]), codes::INVALID_REQUEST);
    assert_eq!(code(&outcomes[3]), codes::INVALID_REQUEST);
    assert_eq!(image.topic_count(), 1);
}

#[test]
fn validate_only_writes_nothing_and_configs_are_recorded() {
    let mut s = spec("c", 1, 1);
    s.configs = vec![("cleanup.policy".into(), Some("compact".into()))];
    let mut o = opts(1);
    o.validate_only = true;
    let (records, outcomes) = create_topics(&MetadataImage::empty(), std::slice::from_ref(&s), &o);
    assert!(outcomes[0].is_ok());
    assert!(records.is_empty());
    let (image, _) = create(&MetadataImage::empty(), &[s.clone()]);
    assert_eq!(
        image.topic_configs("c").get("cleanup.policy").map(String::as_str),
        Some("compact")
    );
    s.configs = vec![("retention.ms".into(), None)];
    assert_eq!(
        code(&create(&MetadataImage::empty(), &[s]).1[0]),
        codes::INVALID_REQUEST
    );
}

#[test]
fn delete_topics_by_name_and_id() {
    let (image, outcomes) = create(&MetadataImage::empty(), &[spec("a", 1, 1), spec("b", 2, 1)]);
    let b_id = outcomes[1].as_ref().unwrap().topic_id;
    let refs = [
        TopicRef::Name("a".into()),
        TopicRef::Id(b_id),
        TopicRef::Name("nope".into()),
        TopicRef::Id([99; 16]),
    ];
    let (records, outcomes) = delete_topics(&image, &refs);
    assert_eq!(
        outcomes.iter().map(code).collect::<Vec<_>>(),
        vec![0, 0, codes::UNKNOWN_TOPIC_OR_PARTITION, codes::UNKNOWN_TOPIC_ID]
    );
    let after = image.apply(&records);
    assert_eq!(after.topic_count(), 0);
    let (_, dup) = delete_topics(&image, &[TopicRef::Name("a".into()), TopicRef::Name("a".into())]);
    assert_eq!(code(&dup[0]), codes::INVALID_REQUEST);
}

#[test]
fn deleting_a_topic_drops_its_configs() {
    let mut s = spec("c", 1, 1);
    s.configs = vec![("retention.ms".into(), Some("1000".into()))];
    let (image, _) = create(&MetadataImage::empty(), &[s]);
    let (records, _) = delete_topics(&image, &[TopicRef::Name("c".into())]);
    let image = image.apply(&records);
    assert!(image.topic_configs("c").is_empty());
    let (image, _) = create(&image, &[spec("c", 1, 1)]);
    assert!(image.topic_configs("c").is_empty());
}

#[test]
fn create_partitions_rules() {
    let (image, _) = create(&MetadataImage::empty(), &[spec("t", 2, 2)]);
    let o = CreatePartitionsOptions {
        validate_only: false,
        live_broker_ids: vec![1, 2, 3],
    };
    assert_eq!(
        code(&create_partitions(&image, "t", 2, None, &o).1),
        codes::INVALID_PARTITIONS
    );
    assert_eq!(
        code(&create_partitions(&image, "t", 1, None, &o).1),
        codes::INVALID_PARTITIONS
    );
    assert_eq!(
        code(&create_partitions(&image, "zz", 3, None, &o).1),
        codes::UNKNOWN_TOPIC_OR_PARTITION
    );
    let bad = vec![vec![1]];
    assert_eq!(
        code(&create_partitions(&image, "t", 3, Some(&bad), &o).1),
        codes::INVALID_REPLICA_ASSIGNMENT
    );
    let two = vec![vec![1, 2]];
    assert_eq!(
        code(&create_partitions(&image, "t", 4, Some(&two), &o).1),
        codes::INVALID_REPLICA_ASSIGNMENT
    );
    let (records, outcome) = create_partitions(&image, "t", 5, None, &o);
    assert!(outcome.is_ok());
    let after = image.apply(&records);
    let t = after.topic("t").unwrap();
    assert_eq!(t.partitions.len(), 5);
    assert!(t.partitions.iter().all(|p| p.replicas.len() == 2));
    let vo = CreatePartitionsOptions {
        validate_only: true,
        ..o
    };
    let (records, outcome) = create_partitions(&image, "t", 5, None, &vo);
    assert!(outcome.is_ok() && records.is_empty());
}

fn op(name: &str, op: ConfigOpKind, value: Option<&str>) -> AlterConfigOp {
    AlterConfigOp {
        name: name.into(),
        op,
        value: value.map(String::from),
    }
}

#[test]
fn incremental_alter_configs() {
    let (image, _) = create(&MetadataImage::empty(), &[spec("t", 1, 1)]);
    let inc = AlterConfigsOptions {
        incremental: true,
        validate_only: false,
    };
    let alter = |image: &MetadataImage, ops: &[AlterConfigOp]| {
        let (records, outcome) = alter_configs(image, RESOURCE_TYPE_TOPIC, "t", ops, &inc);
        (image.apply(&records), outcome)
    };
    let (image, r) = alter(
        &image,
        &[
            op("retention.ms", ConfigOpKind::Set, Some("5")),
            op("cleanup.policy", ConfigOpKind::Append, Some("compact")),
        ],
    );
    assert!(r.is_ok());
    assert_eq!(
        image.topic_configs("t").get("cleanup.policy").unwrap(),
        "delete,compact"
    );
    let (image, _) = alter(&image, &[op("cleanup.policy", ConfigOpKind::Subtract, Some("delete"))]);
    assert_eq!(image.topic_configs("t").get("cleanup.policy").unwrap(), "compact");
    let (image, _) = alter(&image, &[op("retention.ms", ConfigOpKind::Delete, None)]);
    assert!(!image.topic_configs("t").contains_key("retention.ms"));
    let (_, r) = alter(&image, &[op("retention.ms", ConfigOpKind::Append, Some("1"))]);
    assert_eq!(code(&r), codes::INVALID_CONFIG);
    let (_, r) = alter(
        &image,
        &[
            op("segment.ms", ConfigOpKind::Set, Some("1")),
            op("segment.ms", ConfigOpKind::Delete, None),
        ],
    );
    assert_eq!(code(&r), codes::INVALID_REQUEST);
    let (_, r) = alter(&image, &[op("segment.ms", ConfigOpKind::Set, Some("x"))]);
    assert_eq!(code(&r), codes::INVALID_CONFIG);
    let (_, r) = alter(&image, &[op("segment.ms", ConfigOpKind::Set, None)]);
    assert_eq!(code(&r), codes::INVALID_REQUEST);
    let (_, r) = alter_configs(&image, RESOURCE_TYPE_TOPIC, "missing", &[], &inc);
    assert_eq!(code(&r), codes::UNKNOWN_TOPIC_OR_PARTITION);
}

#[test]
fn legacy_alter_configs_replaces_override_set() {
    let (image, _) = create(&MetadataImage::empty(), &[spec("t", 1, 1)]);
    let inc = AlterConfigsOptions {
        incremental: true,
        validate_only: false,
    };
    let (records, _) = alter_configs(
        &image,
        RESOURCE_TYPE_TOPIC,
        "t",
        &[
            op("retention.ms", ConfigOpKind::Set, Some("1")),
            op("segment.ms", ConfigOpKind::Set, Some("2")),
        ],
        &inc,
    );
    let image = image.apply(&records);
    let legacy = AlterConfigsOptions {
        incremental: false,
        validate_only: false,
    };
    let (records, r) = alter_configs(
        &image,
        RESOURCE_TYPE_TOPIC,
        "t",
        &[op("segment.ms", ConfigOpKind::Set, Some("3"))],
        &legacy,
    );
    assert!(r.is_ok());
    let image = image.apply(&records);
    let configs: Vec<(&str, &str)> = image
        .topic_configs("t")
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(configs, vec![("segment.ms", "3")]);
    let vo = AlterConfigsOptions {
        incremental: false,
        validate_only: true,
    };
    let (records, r) = alter_configs(&image, RESOURCE_TYPE_TOPIC, "t", &[], &vo);
    assert!(r.is_ok() && records.is_empty());
}

#[test]
fn broker_configs_and_bad_resources() {
    let image = MetadataImage::empty();
    let inc = AlterConfigsOptions {
        incremental: true,
        validate_only: false,
    };
    let (records, r) = alter_configs(
        &image,
        RESOURCE_TYPE_BROKER,
        "",
        &[op("log.retention.ms", ConfigOpKind::Set, Some("9"))],
        &inc,
    );
    assert!(r.is_ok());
    assert_eq!(
        image
            .apply(&records)
            .broker_configs("")
            .get("log.retention.ms")
            .unwrap(),
        "9"
    );
    assert_eq!(
        code(&alter_configs(&image, RESOURCE_TYPE_BROKER, "abc", &[], &inc).1),
        codes::INVALID_REQUEST
    );
    let read_only = [op("process.roles", ConfigOpKind::Set, Some("broker"))];
    assert_eq!(
        code(&alter_configs(&image, RESOURCE_TYPE_BROKER, "1", &read_only, &inc).1),
        codes::INVALID_CONFIG
    );
    let bad_value = [op("log.retention.ms", ConfigOpKind::Set, Some("soon"))];
    assert_eq!(
        code(&alter_configs(&image, RESOURCE_TYPE_BROKER, "", &bad_value, &inc).1),
        codes::INVALID_CONFIG
    );
    let custom = [op("my.plugin.setting", ConfigOpKind::Set, Some("x"))];
    assert!(alter_configs(&image, RESOURCE_TYPE_BROKER, "", &custom, &inc).1.is_ok());
    assert_eq!(
        code(&alter_configs(&image, 7, "x", &[], &inc).1),
        codes::INVALID_REQUEST
    );
}

#[test]
fn producer_id_blocks_do_not_overlap_and_epochs_are_checked() {
    let spec = RegisterBrokerSpec {
        broker_id: 1,
        incarnation_id: [1; 16],
        endpoints: vec![],
        rack: None,
    };
    let (records, epoch) = register_broker(&MetadataImage::empty(), &spec);
    let image = MetadataImage::empty().apply(&records);
    let epoch = epoch.unwrap();
    assert_eq!(image.brokers().get(&1).unwrap().epoch, epoch);
    let (records, first) = allocate_producer_ids(&image, 1, epoch, PRODUCER_ID_BLOCK_SIZE_DEFAULT);
    let image = image.apply(&records);
    let (_, second) = allocate_producer_ids(&image, 1, epoch, PRODUCER_ID_BLOCK_SIZE_DEFAULT);
    assert_eq!(first.unwrap().first_producer_id, 0);
    assert_eq!(second.unwrap().first_producer_id, 1000);
    assert_eq!(
        code(&allocate_producer_ids(&image, 1, epoch + 5, 10).1),
        codes::STALE_BROKER_EPOCH
    );
    let (records, again) = register_broker(&image, &spec);
    assert!(again.unwrap() > epoch);
    assert!(matches!(records[0], MetadataRecord::RegisterBrokerRecord { .. }));
}
