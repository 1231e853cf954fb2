//! Parsing and planning of topics files, against images built by the real controller logic.

use super::*;

fn parse_ok(text: &str) -> TopicsFile {
    match parse(text) {
        Ok(f) => f,
        Err(e) => panic!("parse failed: {e}"),
    }
}

fn parse_err(text: &str) -> String {
    match parse(text) {
        Ok(f) => panic!("expected an error, parsed {f:?}"),
        Err(e) => e.to_string(),
    }
}

/// A topic for [`image_with`]: name, partitions, config overrides.
type ExistingTopic<'a> = (&'a str, i32, &'a [(&'a str, &'a str)]);

/// An image holding `topics`.
fn image_with(topics: &[ExistingTopic]) -> MetadataImage {
    let specs: Vec<CreateTopicSpec> = topics
        .iter()
        .map(|(name, partitions, configs)| CreateTopicSpec {
            name: name.to_string(),
            num_partitions: *partitions,
            replication_factor: 1,
            assignments: Vec::new(),
            configs: configs
                .iter()
                .map(|(k, v)| (k.to_string(), Some(v.to_string())))
                .collect(),
        })
        .collect();
    let opts = CreateTopicsOptions {
        validate_only: false,
        default_num_partitions: 1,
        default_replication_factor: 1,
        live_broker_ids: vec![1],
        topic_ids: (0..specs.len()).map(|i| [i as u8 + 1; 16]).collect(),
    };
    let image = MetadataImage::empty();
    let (records, outcomes) = controller::create_topics(&image, &specs, &opts);
    assert!(outcomes.iter().all(Result::is_ok), "{outcomes:?}");
    image.apply(&records)
}

/// Applies a plan's controller decisions to `image` (what `apply` does through the quorum).
fn apply_pure(image: &MetadataImage, plan: &Plan) -> MetadataImage {
    let mut image = image.clone();
    for (i, spec) in plan.create.iter().enumerate() {
        let create = CreateTopicSpec {
            name: spec.name.clone(),
            num_partitions: spec.partitions.unwrap_or(-1),
            replication_factor: spec.replication_factor.unwrap_or(-1),
            assignments: Vec::new(),
            configs: spec.config.iter().map(|(k, v)| (k.clone(), Some(v.clone()))).collect(),
        };
        let opts = CreateTopicsOptions {
            validate_only: false,
            default_num_partitions: 1,
            default_replication_factor: 1,
            live_broker_ids: vec![1],
            topic_ids: vec![[100 + i as u8; 16]],
        };
        let (records, outcomes) = controller::create_topics(&image, &[create], &opts);
        assert!(outcomes[0].is_ok(), "{outcomes:?}");
        image = image.apply(&records);
    }
    for p in &plan.add_partitions {
        let opts = CreatePartitionsOptions {
            validate_only: false,
            live_broker_ids: vec![1],
        };
        let (records, outcome) = controller::create_partitions(&image, &p.topic, p.to, None, &opts);
        assert!(outcome.is_ok(), "{outcome:?}");
        image = image.apply(&records);
    }
    for c in &plan.config_changes {
        let mut ops: Vec<AlterConfigOp> = c
            .set
            .iter()
            .map(|(k, v)| AlterConfigOp {
                name: k.clone(),
                op: ConfigOpKind::Set,
                value: Some(v.clone()),
            })
            .collect();
        ops.extend(c.delete.iter().map(|k| AlterConfigOp {
            name: k.clone(),
            op: ConfigOpKind::Delete,
            value: None,
        }));
        let opts = AlterConfigsOptions {
            incremental: true,
            validate_only: false,
        };
        let (records, outcome) = controller::alter_configs(&image, RESOURCE_TYPE_TOPIC, &c.topic, &ops, &opts);
        assert!(outcome.is_ok(), "{outcome:?}");
        image = image.apply(&records);
    }
    let refs: Vec<TopicRef> = plan.delete.iter().map(|t| TopicRef::Name(t.clone())).collect();
    let (records, _) = controller::delete_topics(&image, &refs);
    image.apply(&records)
}

const LIST_LAYOUT: &str = "\
- name: orders
  partitions: 6
  replication_factor: 1
  config:
    retention.ms: 604800000
    cleanup.policy: delete
- name: users
  partitions: 3
  replicationFactor: 1
  config:
    cleanup.policy: compact
    unclean.leader.election.enable: false
    min.cleanable.dirty.ratio: 0.25
";

#[test]
fn parses_the_list_layout_with_camel_case_and_stringified_values() {
    let f = parse_ok(LIST_LAYOUT);
    assert!(!f.prune);
    assert_eq!(f.topics.len(), 2);
    let orders = &f.topics[0];
    assert_eq!(orders.name, "orders");
    assert_eq!(orders.partitions, Some(6));
    assert_eq!(orders.replication_factor, Some(1));
    assert_eq!(orders.config["retention.ms"], "604800000");
    assert_eq!(orders.line, Some(1));
    let users = &f.topics[1];
    assert_eq!(users.replication_factor, Some(1), "replicationFactor is accepted");
    assert_eq!(users.config["unclean.leader.election.enable"], "false");
    assert_eq!(users.config["min.cleanable.dirty.ratio"], "0.25");
    assert_eq!(users.line, Some(7));
}

#[test]
fn parses_the_map_layout_with_prune() {
    let f = parse_ok("prune: true\ntopics:\n  - name: a\n  - name: b\n    partitions: 2\n");
    assert!(f.prune);
    let names: Vec<&str> = f.topics.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["a", "b"]);
    assert_eq!(f.topics[0].partitions, None);
    assert_eq!(f.topics[1].partitions, Some(2));
    let f = parse_ok("topics: []\n");
    assert!(!f.prune && f.topics.is_empty());
    assert!(parse_ok("").topics.is_empty(), "an empty file declares nothing");
}

#[test]
fn unknown_field_names_the_line() {
    let e = parse_err("- name: a\n  partitions: 1\n  retention: 5\n");
    assert!(e.contains("unknown field `retention`"), "{e}");
    assert!(e.starts_with("line 3:"), "{e}");
    assert!(!e.contains("column"), "the location is given once: {e}");
    assert!(e.contains("topic #1"), "{e}");
    let e = parse_err("topics:\n  - name: a\n  - name: b\n    config:\n      retention.ms: {a: 1}\n");
    assert!(e.starts_with("line 5: topic #2.config"), "{e}");
}

#[test]
fn wrong_type_names_the_line() {
    let e = parse_err("- name: a\n- name: b\n  partitions: many\n");
    assert!(e.contains("line 3"), "{e}");
    assert!(e.contains("partitions"), "{e}");
    let e = parse_err("- name: a\n  config:\n    retention.ms: [1, 2]\n");
    assert!(e.contains("line 3"), "{e}");
}

#[test]
fn missing_name_names_the_line() {
    let e = parse_err("- name: a\n- partitions: 3\n");
    assert!(e.contains("missing field `name`"), "{e}");
    assert!(e.contains("line 2"), "{e}");
}

#[test]
fn duplicate_names_name_both_lines() {
    let e = parse_err("- name: a\n- name: b\n- name: a\n");
    assert!(e.starts_with("line 3:"), "{e}");
    assert!(e.contains("\"a\"") && e.contains("duplicate"), "{e}");
    assert!(e.contains("first at line 1"), "{e}");
}

#[test]
fn invalid_topic_name_and_partitions_name_the_topic_and_line() {
    let e = parse_err("- name: ok\n- name: \"bad name!\"\n");
    assert!(e.starts_with("line 2:") && e.contains("illegal"), "{e}");
    let e = parse_err("- name: a\n  partitions: 1\n- name: zero\n  partitions: 0\n");
    assert!(
        e.starts_with("line 3:") && e.contains("\"zero\"") && e.contains("partitions"),
        "{e}"
    );
    let e = parse_err("- name: a\n  replication_factor: 0\n");
    assert!(e.starts_with("line 1:") && e.contains("replication_factor"), "{e}");
}

#[test]
fn invalid_config_names_and_values_name_the_key_line() {
    let e = parse_err("- name: a\n  config:\n    retention.ms: 1000\n    no.such.config: 1\n");
    assert!(e.starts_with("line 4:") && e.contains("no.such.config"), "{e}");
    let e = parse_err("- name: a\n  config:\n    cleanup.policy: shred\n");
    assert!(e.starts_with("line 3:") && e.contains("cleanup.policy"), "{e}");
}

#[test]
fn a_scalar_file_is_rejected() {
    let e = parse_err("just a string\n");
    assert!(e.contains("list of topics"), "{e}");
}

#[test]
fn plan_creates_missing_topics_and_a_second_run_is_a_noop() {
    let f = parse_ok(LIST_LAYOUT);
    let image = MetadataImage::empty();
    let p = plan(&image, &f.topics, false);
    assert_eq!(p.create.len(), 2);
    assert!(p.add_partitions.is_empty() && p.config_changes.is_empty() && p.reported.is_empty());
    let after = apply_pure(&image, &p);
    let orders = after.topic("orders").expect("created");
    assert_eq!(orders.partitions.len(), 6);
    assert_eq!(after.topic_configs("users")["cleanup.policy"], "compact");
    let again = plan(&after, &f.topics, false);
    assert!(again.is_noop(), "{again}");
    assert!(again.reported.is_empty(), "{again}");
    assert_eq!(again.to_string(), "no changes\n");
}

#[test]
fn plan_adds_partitions_and_changes_exactly_the_declared_config() {
    let image = image_with(&[("orders", 3, &[("retention.ms", "1000"), ("segment.ms", "60000")])]);
    let f = parse_ok("- name: orders\n  partitions: 5\n  config:\n    retention.ms: 2000\n    segment.ms: 60000\n");
    let p = plan(&image, &f.topics, false);
    assert!(p.create.is_empty());
    assert_eq!(
        p.add_partitions,
        [PartitionIncrease {
            topic: "orders".into(),
            from: 3,
            to: 5
        }]
    );
    assert_eq!(
        p.config_changes,
        [ConfigChange {
            topic: "orders".into(),
            set: vec![("retention.ms".into(), "2000".into())],
            delete: vec![],
        }]
    );
    let after = apply_pure(&image, &p);
    assert_eq!(after.topic("orders").map(|t| t.partitions.len()), Some(5));
    assert_eq!(after.topic_configs("orders")["retention.ms"], "2000");
    assert!(plan(&after, &f.topics, false).is_noop());
}

#[test]
fn decreases_rf_changes_and_missing_topics_are_reported_not_planned() {
    let image = image_with(&[
        ("orders", 4, &[]),
        ("legacy", 1, &[("retention.ms", "5")]),
        ("__consumer_offsets", 1, &[]),
    ]);
    let f = parse_ok("- name: orders\n  partitions: 2\n  replication_factor: 3\n");
    let p = plan(&image, &f.topics, false);
    assert!(p.is_noop(), "{p}");
    assert!(p.reported.contains(&Notice::PartitionDecrease {
        topic: "orders".into(),
        current: 4,
        desired: 2
    }));
    assert!(p.reported.contains(&Notice::ReplicationFactorDiffers {
        topic: "orders".into(),
        current: 1,
        desired: 3
    }));
    assert!(p.reported.contains(&Notice::TopicNotInFile { topic: "legacy".into() }));
    assert_eq!(p.reported.len(), 3, "internal topics are not reported: {p}");
    let shown = p.to_string();
    assert!(shown.contains("partitions cannot be removed"), "{shown}");
}

#[test]
fn undeclared_config_overrides_are_reported_without_prune_and_deleted_with_it() {
    let image = image_with(&[("orders", 1, &[("retention.ms", "1000"), ("segment.ms", "60000")])]);
    let f = parse_ok("- name: orders\n  config:\n    retention.ms: 1000\n");
    let p = plan(&image, &f.topics, false);
    assert!(p.is_noop());
    assert_eq!(
        p.reported,
        [Notice::ConfigNotInFile {
            topic: "orders".into(),
            key: "segment.ms".into()
        }]
    );
    let p = plan(&image, &f.topics, true);
    assert_eq!(p.config_changes[0].delete, ["segment.ms"]);
    assert!(p.config_changes[0].set.is_empty());
    let after = apply_pure(&image, &p);
    assert!(!after.topic_configs("orders").contains_key("segment.ms"));
    assert!(plan(&after, &f.topics, true).is_noop());
}

#[test]
fn prune_deletes_missing_topics_but_never_internal_ones() {
    let image = image_with(&[("keep", 1, &[]), ("gone", 2, &[]), ("__consumer_offsets", 1, &[])]);
    let f = parse_ok("prune: true\ntopics:\n  - name: keep\n");
    let p = plan(&image, &f.topics, f.prune);
    assert_eq!(p.delete, ["gone"]);
    assert!(p.to_string().contains("- delete gone"), "{p}");
    let after = apply_pure(&image, &p);
    assert!(after.topic("gone").is_none());
    assert!(after.topic("__consumer_offsets").is_some());
    assert!(after.topic("keep").is_some());
    assert!(plan(&after, &f.topics, true).is_noop());
}

#[test]
fn the_shipped_example_file_is_valid() {
    let f = parse_ok(include_str!("../../../../config/topics.yaml"));
    assert!(!f.prune);
    let compacted = f
        .topics
        .iter()
        .find(|t| t.config.get("cleanup.policy").map(String::as_str) == Some("compact"));
    assert!(compacted.is_some(), "the example shows a compacted topic");
}
