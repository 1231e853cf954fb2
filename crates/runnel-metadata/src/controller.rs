//! Controller logic: turns admin requests into metadata records plus per-item outcomes.
//!
//! Owns: Kafka's validation rules and error codes for topic, partition, config, broker and
//! producer-id changes.
//! Must never: do I/O, read a clock or draw random numbers (ids come in as parameters), or change
//! an image. "Decide, then do": the caller appends the returned records atomically and the image
//! changes only by replaying them.
//!
//! Invariant: a failed item contributes no records; `validate_only` never returns records.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use crate::configs::{broker_config, topic_config, validate_topic_config, ConfigDef, ConfigType};
use crate::image::MetadataImage;
use crate::records::{Endpoint, MetadataRecord, TopicId, RESOURCE_TYPE_BROKER, RESOURCE_TYPE_TOPIC};

/// Kafka error codes the controller returns.
pub mod codes {
    pub const UNKNOWN_SERVER_ERROR: i16 = -1;
    pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
    pub const INVALID_TOPIC_EXCEPTION: i16 = 17;
    pub const TOPIC_ALREADY_EXISTS: i16 = 36;
    pub const INVALID_PARTITIONS: i16 = 37;
    pub const INVALID_REPLICATION_FACTOR: i16 = 38;
    pub const INVALID_REPLICA_ASSIGNMENT: i16 = 39;
    pub const INVALID_CONFIG: i16 = 40;
    pub const INVALID_REQUEST: i16 = 42;
    pub const STALE_BROKER_EPOCH: i16 = 77;
    pub const UNKNOWN_TOPIC_ID: i16 = 100;
}

/// Longest legal topic name (Kafka's `Topic.MAX_NAME_LENGTH`).
pub const TOPIC_NAME_LENGTH_MAX: usize = 249;
/// Cap on partitions per topic, so a hostile request cannot make us build millions of records.
pub const PARTITIONS_PER_TOPIC_MAX: i32 = 100_000;
/// Kafka's default producer-id block size.
pub const PRODUCER_ID_BLOCK_SIZE_DEFAULT: i64 = 1000;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ControllerError {
    /// Kafka error code.
    pub code: i16,
    pub message: String,
}

impl ControllerError {
    pub fn new(code: i16, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for ControllerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "error {}: {}", self.code, self.message)
    }
}

impl std::error::Error for ControllerError {}

type Outcome<T> = Result<T, ControllerError>;

fn err<T>(code: i16, message: impl Into<String>) -> Outcome<T> {
    Err(ControllerError::new(code, message))
}

// ---------------------------------------------------------------------------------------------
// CreateTopics
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Debug, Default)]
pub struct CreateTopicSpec {
    pub name: String,
    /// -1 = broker default.
    pub num_partitions: i32,
    /// -1 = broker default.
    pub replication_factor: i16,
    /// Manual assignment: (partition, replicas). Exclusive with explicit counts.
    pub assignments: Vec<(i32, Vec<i32>)>,
    pub configs: Vec<(String, Option<String>)>,
}

#[derive(Clone, Debug, Default)]
pub struct CreateTopicsOptions {
    pub validate_only: bool,
    pub default_num_partitions: i32,
    pub default_replication_factor: i16,
    pub live_broker_ids: Vec<i32>,
    /// One fresh random id per spec, same order (the controller draws no randomness itself).
    pub topic_ids: Vec<TopicId>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreatedTopic {
    pub topic_id: TopicId,
    pub num_partitions: i32,
    pub replication_factor: i16,
}

/// Kafka's CreateTopics. Topics created earlier in the same call are visible to later ones.
///
/// Panics if `opts.topic_ids` holds fewer ids than `specs` (a caller bug).
pub fn create_topics(
    image: &MetadataImage,
    specs: &[CreateTopicSpec],
    opts: &CreateTopicsOptions,
) -> (Vec<MetadataRecord>, Vec<Outcome<CreatedTopic>>) {
    assert!(opts.topic_ids.len() >= specs.len(), "one topic id per CreateTopicSpec");
    let mut duplicates = HashSet::new();
    let mut seen = HashSet::new();
    for spec in specs {
        if !seen.insert(spec.name.as_str()) {
            duplicates.insert(spec.name.as_str());
        }
    }
    let mut names = NameIndex::new(image);
    let mut records = Vec::new();
    let mut outcomes = Vec::with_capacity(specs.len());
    for (i, spec) in specs.iter().enumerate() {
        if duplicates.contains(spec.name.as_str()) {
            outcomes.push(err(codes::INVALID_REQUEST, "Duplicate topic name."));
            continue;
        }
        let placement_seed = image.topic_count() + i;
        let outcome = create_one_topic(&names, spec, opts, opts.topic_ids[i], placement_seed);
        match outcome {
            Ok((topic_records, created)) => {
                names.insert(&spec.name);
                if !opts.validate_only {
                    records.extend(topic_records);
                }
                outcomes.push(Ok(created));
            }
            Err(e) => outcomes.push(Err(e)),
        }
    }
    (records, outcomes)
}

/// Existing topic names plus their '.'→'_' normalized forms (Kafka rejects names that collide
/// after normalization because metric names cannot tell them apart).
struct NameIndex<'a> {
    image: &'a MetadataImage,
    added: BTreeSet<String>,
    normalized: BTreeMap<String, String>,
}

impl<'a> NameIndex<'a> {
    fn new(image: &'a MetadataImage) -> Self {
        let mut normalized = BTreeMap::new();
        for topic in image.topics() {
            normalized.insert(normalize_name(&topic.name), topic.name.clone());
        }
        Self {
            image,
            added: BTreeSet::new(),
            normalized,
        }
    }

    fn exists(&self, name: &str) -> bool {
        self.added.contains(name) || self.image.topic(name).is_some()
    }

    fn collision(&self, name: &str) -> Option<&str> {
        self.normalized
            .get(&normalize_name(name))
            .map(String::as_str)
            .filter(|other| *other != name)
    }

    fn insert(&mut self, name: &str) {
        self.added.insert(name.to_string());
        self.normalized.insert(normalize_name(name), name.to_string());
    }
}

fn normalize_name(name: &str) -> String {
    name.replace('.', "_")
}

fn create_one_topic(
    names: &NameIndex<'_>,
    spec: &CreateTopicSpec,
    opts: &CreateTopicsOptions,
    topic_id: TopicId,
    placement_seed: usize,
) -> Outcome<(Vec<MetadataRecord>, CreatedTopic)> {
    validate_topic_name(&spec.name)?;
    if names.exists(&spec.name) {
        return err(
            codes::TOPIC_ALREADY_EXISTS,
            format!("Topic '{}' already exists.", spec.name),
        );
    }
    if let Some(other) = names.collision(&spec.name) {
        let msg = format!("Topic '{}' collides with existing topic: {}", spec.name, other);
        return err(codes::INVALID_TOPIC_EXCEPTION, msg);
    }
    let assignment = if spec.assignments.is_empty() {
        let partitions = resolve_partition_count(spec.num_partitions, opts.default_num_partitions)?;
        let rf = resolve_replication_factor(spec.replication_factor, opts.default_replication_factor)?;
        place_replicas(&opts.live_broker_ids, partitions, rf, placement_seed, 0)?
    } else {
        if spec.num_partitions != -1 || spec.replication_factor != -1 {
            let msg = "Both numPartitions or replicationFactor and replicasAssignments were set. Both cannot be used at the same time.";
            return err(codes::INVALID_REQUEST, msg);
        }
        validate_manual_assignment(&spec.assignments, &opts.live_broker_ids)?
    };
    let config_records = topic_config_records(&spec.name, &spec.configs)?;
    if topic_id == [0; 16] || names.image.topic_by_id(&topic_id).is_some() {
        return err(codes::UNKNOWN_SERVER_ERROR, "Generated topic id is not unique.");
    }
    let created = CreatedTopic {
        topic_id,
        num_partitions: assignment.len() as i32,
        replication_factor: assignment.first().map_or(0, |r| r.len() as i16),
    };
    let mut records = vec![MetadataRecord::TopicRecord {
        name: spec.name.clone(),
        topic_id,
    }];
    records.extend(partition_records(topic_id, 0, &assignment));
    records.extend(config_records);
    Ok((records, created))
}

/// Kafka's `Topic.validate`.
pub fn validate_topic_name(name: &str) -> Outcome<()> {
    if name.is_empty() {
        return err(
            codes::INVALID_TOPIC_EXCEPTION,
            "Topic name is illegal, it can't be empty",
        );
    }
    if name == "." || name == ".." {
        return err(codes::INVALID_TOPIC_EXCEPTION, "Topic name cannot be \".\" or \"..\"");
    }
    if name.len() > TOPIC_NAME_LENGTH_MAX {
        let msg = format!(
            "Topic name is illegal, it can't be longer than {TOPIC_NAME_LENGTH_MAX} characters, topic name: {name}"
        );
        return err(codes::INVALID_TOPIC_EXCEPTION, msg);
    }
    let legal = |c: char| c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-';
    if !name.chars().all(legal) {
        let msg = format!(
            "Topic name \"{name}\" is illegal, it contains a character other than ASCII alphanumerics, '.', '_' and '-'"
        );
        return err(codes::INVALID_TOPIC_EXCEPTION, msg);
    }
    Ok(())
}

fn resolve_partition_count(requested: i32, default: i32) -> Outcome<i32> {
    let count = if requested == -1 { default } else { requested };
    if count <= 0 {
        return err(
            codes::INVALID_PARTITIONS,
            "Number of partitions was set to an invalid non-positive value.",
        );
    }
    if count > PARTITIONS_PER_TOPIC_MAX {
        let msg = format!("Number of partitions {count} exceeds the limit of {PARTITIONS_PER_TOPIC_MAX}.");
        return err(codes::INVALID_PARTITIONS, msg);
    }
    Ok(count)
}

fn resolve_replication_factor(requested: i16, default: i16) -> Outcome<i16> {
    let rf = if requested == -1 { default } else { requested };
    if rf <= 0 {
        let msg = "Replication factor must be larger than 0, or -1 to use the default value.";
        return err(codes::INVALID_REPLICATION_FACTOR, msg);
    }
    Ok(rf)
}

/// Striped placement: partition `p` starts at broker `(seed + p) % n` and takes the next `rf`
/// brokers, so leaders spread evenly. `first_partition` offsets the stripe for added partitions.
fn place_replicas(
    live_broker_ids: &[i32],
    partitions: i32,
    rf: i16,
    seed: usize,
    first_partition: i32,
) -> Outcome<Vec<Vec<i32>>> {
    let brokers: Vec<i32> = live_broker_ids
        .iter()
        .copied()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let rf_usize = rf as usize;
    if rf_usize > brokers.len() {
        let msg = format!(
            "Unable to replicate the partition {rf} time(s): The target replication factor of {rf} cannot be reached because only {} broker(s) are registered.",
            brokers.len()
        );
        return err(codes::INVALID_REPLICATION_FACTOR, msg);
    }
    let n = brokers.len();
    let assignment = (0..partitions)
        .map(|p| {
            let start = seed + (first_partition + p) as usize;
            (0..rf_usize).map(|j| brokers[(start + j) % n]).collect()
        })
        .collect();
    Ok(assignment)
}

/// Checks a manual assignment as Kafka's controller does and returns replicas by partition.
fn validate_manual_assignment(assignments: &[(i32, Vec<i32>)], live_broker_ids: &[i32]) -> Outcome<Vec<Vec<i32>>> {
    if assignments.len() > PARTITIONS_PER_TOPIC_MAX as usize {
        return err(
            codes::INVALID_PARTITIONS,
            "Too many partitions in the manual assignment.",
        );
    }
    let mut by_partition: BTreeMap<i32, &Vec<i32>> = BTreeMap::new();
    for (partition, replicas) in assignments {
        by_partition.insert(*partition, replicas);
    }
    let contiguous =
        by_partition.len() == assignments.len() && by_partition.keys().enumerate().all(|(i, p)| i as i32 == *p);
    if !contiguous {
        let msg = "Partitions must be numbered starting at 0 and continuing without gaps.";
        return err(codes::INVALID_REPLICA_ASSIGNMENT, msg);
    }
    let replicas: Vec<Vec<i32>> = by_partition.into_values().cloned().collect();
    let expected_rf = replicas.first().map_or(0, Vec::len);
    for r in &replicas {
        validate_replica_list(r, live_broker_ids, expected_rf)?;
    }
    Ok(replicas)
}

fn validate_replica_list(replicas: &[i32], live_broker_ids: &[i32], expected_rf: usize) -> Outcome<()> {
    if replicas.is_empty() {
        let msg = "The manual partition assignment includes an empty replica list.";
        return err(codes::INVALID_REPLICA_ASSIGNMENT, msg);
    }
    let mut seen = HashSet::new();
    for broker in replicas {
        if !seen.insert(*broker) {
            let msg = format!("The manual partition assignment includes the broker {broker} more than once.");
            return err(codes::INVALID_REPLICA_ASSIGNMENT, msg);
        }
        if !live_broker_ids.contains(broker) {
            let msg =
                format!("The manual partition assignment includes broker {broker}, but no such broker is registered.");
            return err(codes::INVALID_REPLICA_ASSIGNMENT, msg);
        }
    }
    if replicas.len() != expected_rf {
        let msg = format!(
            "The manual partition assignment includes a partition with {} replica(s), but this is not consistent with previous partitions, which have {expected_rf} replica(s).",
            replicas.len()
        );
        return err(codes::INVALID_REPLICA_ASSIGNMENT, msg);
    }
    Ok(())
}

fn partition_records(topic_id: TopicId, first_partition: i32, assignment: &[Vec<i32>]) -> Vec<MetadataRecord> {
    assignment
        .iter()
        .enumerate()
        .map(|(i, replicas)| MetadataRecord::PartitionRecord {
            topic_id,
            partition: first_partition + i as i32,
            replicas: replicas.clone(),
            isr: replicas.clone(),
            leader: replicas[0],
            leader_epoch: 0,
            partition_epoch: 0,
        })
        .collect()
}

fn topic_config_records(topic: &str, configs: &[(String, Option<String>)]) -> Outcome<Vec<MetadataRecord>> {
    let mut records = Vec::with_capacity(configs.len());
    for (name, value) in configs {
        let Some(value) = value else {
            return err(
                codes::INVALID_REQUEST,
                format!("Null value not supported for topic configs: {name}"),
            );
        };
        validate_topic_config(name, value).map_err(|m| ControllerError::new(codes::INVALID_CONFIG, m))?;
        records.push(MetadataRecord::ConfigRecord {
            resource_type: RESOURCE_TYPE_TOPIC,
            resource_name: topic.to_string(),
            name: name.clone(),
            value: Some(value.clone()),
        });
    }
    Ok(records)
}

// ---------------------------------------------------------------------------------------------
// DeleteTopics
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TopicRef {
    Name(String),
    Id(TopicId),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeletedTopic {
    pub name: String,
    pub topic_id: TopicId,
}

/// Kafka's DeleteTopics: one `RemoveTopicRecord` per resolved topic.
pub fn delete_topics(image: &MetadataImage, refs: &[TopicRef]) -> (Vec<MetadataRecord>, Vec<Outcome<DeletedTopic>>) {
    let mut counts: BTreeMap<&TopicRef, usize> = BTreeMap::new();
    for r in refs {
        *counts.entry(r).or_default() += 1;
    }
    let mut removed = HashSet::new();
    let mut records = Vec::new();
    let mut outcomes = Vec::with_capacity(refs.len());
    for r in refs {
        if counts.get(r).copied().unwrap_or(0) > 1 {
            let what = if matches!(r, TopicRef::Name(_)) { "name" } else { "id" };
            outcomes.push(err(codes::INVALID_REQUEST, format!("Duplicate topic {what}.")));
            continue;
        }
        let found = match r {
            TopicRef::Name(name) => image.topic(name).ok_or_else(|| {
                ControllerError::new(
                    codes::UNKNOWN_TOPIC_OR_PARTITION,
                    "This server does not host this topic-partition.",
                )
            }),
            TopicRef::Id(id) => image.topic_by_id(id).ok_or_else(|| {
                ControllerError::new(codes::UNKNOWN_TOPIC_ID, "This server does not host this topic ID.")
            }),
        };
        outcomes.push(found.map(|topic| {
            if removed.insert(topic.id) {
                records.push(MetadataRecord::RemoveTopicRecord { topic_id: topic.id });
            }
            DeletedTopic {
                name: topic.name.clone(),
                topic_id: topic.id,
            }
        }));
    }
    (records, outcomes)
}

impl PartialOrd for TopicRef {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for TopicRef {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        match (self, other) {
            (TopicRef::Name(a), TopicRef::Name(b)) => a.cmp(b),
            (TopicRef::Id(a), TopicRef::Id(b)) => a.cmp(b),
            (TopicRef::Name(_), TopicRef::Id(_)) => std::cmp::Ordering::Less,
            (TopicRef::Id(_), TopicRef::Name(_)) => std::cmp::Ordering::Greater,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// CreatePartitions
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Debug, Default)]
pub struct CreatePartitionsOptions {
    pub validate_only: bool,
    pub live_broker_ids: Vec<i32>,
}

/// Kafka's CreatePartitions for one topic: `assignments` (if any) lists the replicas of each
/// *new* partition, in order.
pub fn create_partitions(
    image: &MetadataImage,
    topic: &str,
    new_count: i32,
    assignments: Option<&[Vec<i32>]>,
    opts: &CreatePartitionsOptions,
) -> (Vec<MetadataRecord>, Outcome<()>) {
    match decide_create_partitions(image, topic, new_count, assignments, opts) {
        Ok(records) if opts.validate_only => {
            drop(records);
            (Vec::new(), Ok(()))
        }
        Ok(records) => (records, Ok(())),
        Err(e) => (Vec::new(), Err(e)),
    }
}

fn decide_create_partitions(
    image: &MetadataImage,
    topic_name: &str,
    new_count: i32,
    assignments: Option<&[Vec<i32>]>,
    opts: &CreatePartitionsOptions,
) -> Outcome<Vec<MetadataRecord>> {
    let Some(topic) = image.topic(topic_name) else {
        return err(
            codes::UNKNOWN_TOPIC_OR_PARTITION,
            format!("The topic '{topic_name}' does not exist."),
        );
    };
    let current = topic.partitions.len() as i32;
    if new_count < current {
        let msg = format!("Topic currently has {current} partitions, which is higher than the requested {new_count}.");
        return err(codes::INVALID_PARTITIONS, msg);
    }
    if new_count == current {
        return err(
            codes::INVALID_PARTITIONS,
            format!("Topic already has {current} partition(s)."),
        );
    }
    if new_count > PARTITIONS_PER_TOPIC_MAX {
        let msg = format!("Number of partitions {new_count} exceeds the limit of {PARTITIONS_PER_TOPIC_MAX}.");
        return err(codes::INVALID_PARTITIONS, msg);
    }
    let added = new_count - current;
    let rf = topic.partitions.first().map_or(1, |p| p.replicas.len());
    let assignment = match assignments {
        Some(list) => {
            if list.len() != added as usize {
                let msg = format!(
                    "Attempted to add {added} additional partition(s), but only {} assignment(s) were specified.",
                    list.len()
                );
                return err(codes::INVALID_REPLICA_ASSIGNMENT, msg);
            }
            for replicas in list {
                validate_replica_list(replicas, &opts.live_broker_ids, rf)?;
            }
            list.to_vec()
        }
        None => place_replicas(&opts.live_broker_ids, added, rf as i16, 0, current)?,
    };
    Ok(partition_records(topic.id, current, &assignment))
}

// ---------------------------------------------------------------------------------------------
// AlterConfigs / IncrementalAlterConfigs
// ---------------------------------------------------------------------------------------------

/// Kafka's `AlterConfigOp.OpType` (SET=0, DELETE=1, APPEND=2, SUBTRACT=3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigOpKind {
    Set,
    Delete,
    Append,
    Subtract,
}

impl ConfigOpKind {
    pub fn from_kafka(op: i8) -> Option<Self> {
        match op {
            0 => Some(Self::Set),
            1 => Some(Self::Delete),
            2 => Some(Self::Append),
            3 => Some(Self::Subtract),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlterConfigOp {
    pub name: String,
    pub op: ConfigOpKind,
    pub value: Option<String>,
}

#[derive(Clone, Copy, Debug, Default)]
pub struct AlterConfigsOptions {
    /// IncrementalAlterConfigs semantics; otherwise AlterConfigs (replace the whole override set).
    pub incremental: bool,
    pub validate_only: bool,
}

/// Alters the config overrides of one resource (topic or broker).
pub fn alter_configs(
    image: &MetadataImage,
    resource_type: i8,
    resource_name: &str,
    ops: &[AlterConfigOp],
    opts: &AlterConfigsOptions,
) -> (Vec<MetadataRecord>, Outcome<()>) {
    match decide_alter_configs(image, resource_type, resource_name, ops, opts) {
        Ok(_) if opts.validate_only => (Vec::new(), Ok(())),
        Ok(records) => (records, Ok(())),
        Err(e) => (Vec::new(), Err(e)),
    }
}

fn decide_alter_configs(
    image: &MetadataImage,
    resource_type: i8,
    resource_name: &str,
    ops: &[AlterConfigOp],
    opts: &AlterConfigsOptions,
) -> Outcome<Vec<MetadataRecord>> {
    let current = current_overrides(image, resource_type, resource_name)?;
    let mut names = HashSet::new();
    if !ops.iter().all(|op| names.insert(op.name.as_str())) {
        return err(codes::INVALID_REQUEST, "Error due to duplicate config keys");
    }
    let desired = if opts.incremental {
        apply_incremental_ops(resource_type, current, ops)?
    } else {
        ops.iter()
            .filter_map(|op| op.value.clone().map(|v| (op.name.clone(), v)))
            .collect::<BTreeMap<_, _>>()
    };
    for (name, value) in &desired {
        if current.get(name) != Some(value) {
            validate_config_value(resource_type, name, value)?;
        }
    }
    Ok(config_diff_records(resource_type, resource_name, current, &desired))
}

/// Topic configs must be known and valid. Broker configs: known keys must be dynamic and valid;
/// unknown keys pass, as Kafka keeps custom (plugin) broker configs.
fn validate_config_value(resource_type: i8, name: &str, value: &str) -> Outcome<()> {
    let invalid = |m: String| ControllerError::new(codes::INVALID_CONFIG, m);
    if resource_type == RESOURCE_TYPE_TOPIC {
        return validate_topic_config(name, value).map_err(invalid);
    }
    let Some(def) = broker_config(name) else { return Ok(()) };
    if def.read_only {
        return Err(invalid(format!("Cannot update these configs dynamically: Set({name})")));
    }
    def.validate(value).map_err(invalid)
}

fn current_overrides<'a>(
    image: &'a MetadataImage,
    resource_type: i8,
    resource_name: &str,
) -> Outcome<&'a BTreeMap<String, String>> {
    match resource_type {
        RESOURCE_TYPE_TOPIC => {
            if image.topic(resource_name).is_none() {
                return err(
                    codes::UNKNOWN_TOPIC_OR_PARTITION,
                    format!("The topic '{resource_name}' does not exist."),
                );
            }
            Ok(image.topic_configs(resource_name))
        }
        RESOURCE_TYPE_BROKER => {
            if !resource_name.is_empty() && resource_name.parse::<i32>().is_err() {
                return err(
                    codes::INVALID_REQUEST,
                    format!("Node id must be an integer, but it is: {resource_name}"),
                );
            }
            Ok(image.broker_configs(resource_name))
        }
        other => err(codes::INVALID_REQUEST, format!("Unexpected resource type {other}")),
    }
}

fn apply_incremental_ops(
    resource_type: i8,
    current: &BTreeMap<String, String>,
    ops: &[AlterConfigOp],
) -> Outcome<BTreeMap<String, String>> {
    let mut desired = current.clone();
    for op in ops {
        match op.op {
            ConfigOpKind::Set => {
                let Some(value) = &op.value else {
                    return err(
                        codes::INVALID_REQUEST,
                        format!("Null value not supported for : {}", op.name),
                    );
                };
                desired.insert(op.name.clone(), value.clone());
            }
            ConfigOpKind::Delete => {
                desired.remove(&op.name);
            }
            ConfigOpKind::Append | ConfigOpKind::Subtract => {
                let value = edit_list_config(resource_type, current, op)?;
                desired.insert(op.name.clone(), value);
            }
        }
    }
    Ok(desired)
}

/// APPEND/SUBTRACT on a list-typed config, starting from the override or else the default
/// (as Kafka's `ConfigAdminManager` does).
fn edit_list_config(resource_type: i8, current: &BTreeMap<String, String>, op: &AlterConfigOp) -> Outcome<String> {
    let def: Option<&ConfigDef> = if resource_type == RESOURCE_TYPE_TOPIC {
        topic_config(&op.name)
    } else {
        broker_config(&op.name)
    };
    let Some(default) = def
        .filter(|d| d.kind == ConfigType::List)
        .map(|d| d.default.unwrap_or(""))
    else {
        let verb = if op.op == ConfigOpKind::Append {
            "append"
        } else {
            "subtract"
        };
        return err(
            codes::INVALID_CONFIG,
            format!("Config value {verb} is not allowed for config key: {}", op.name),
        );
    };
    let base = current.get(&op.name).map(String::as_str).unwrap_or(default);
    let mut items: Vec<String> = split_list(base);
    let operands = split_list(op.value.as_deref().unwrap_or(""));
    if op.op == ConfigOpKind::Append {
        for item in operands {
            if !items.contains(&item) {
                items.push(item);
            }
        }
    } else {
        items.retain(|item| !operands.contains(item));
    }
    Ok(items.join(","))
}

fn split_list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

fn config_diff_records(
    resource_type: i8,
    resource_name: &str,
    current: &BTreeMap<String, String>,
    desired: &BTreeMap<String, String>,
) -> Vec<MetadataRecord> {
    let record = |name: &str, value: Option<&String>| MetadataRecord::ConfigRecord {
        resource_type,
        resource_name: resource_name.to_string(),
        name: name.to_string(),
        value: value.cloned(),
    };
    let removed = current
        .keys()
        .filter(|k| !desired.contains_key(*k))
        .map(|k| record(k, None));
    let changed = desired
        .iter()
        .filter(|(k, v)| current.get(*k) != Some(*v))
        .map(|(k, v)| record(k, Some(v)));
    removed.chain(changed).collect()
}

// ---------------------------------------------------------------------------------------------
// Broker registration and producer ids
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegisterBrokerSpec {
    pub broker_id: i32,
    pub incarnation_id: [u8; 16],
    pub endpoints: Vec<Endpoint>,
    pub rack: Option<String>,
}

/// Registers (or re-registers) a broker; returns its new broker epoch, which only grows.
pub fn register_broker(image: &MetadataImage, spec: &RegisterBrokerSpec) -> (Vec<MetadataRecord>, Outcome<i64>) {
    if spec.broker_id < 0 {
        return (
            Vec::new(),
            err(codes::INVALID_REQUEST, "Broker id must not be negative."),
        );
    }
    let previous = image.brokers().get(&spec.broker_id).map_or(0, |b| b.epoch);
    let epoch = (image.offset as i64 + 1).max(previous + 1);
    let record = MetadataRecord::RegisterBrokerRecord {
        broker_id: spec.broker_id,
        incarnation_id: spec.incarnation_id,
        epoch,
        endpoints: spec.endpoints.clone(),
        rack: spec.rack.clone(),
    };
    (vec![record], Ok(epoch))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProducerIdBlock {
    pub first_producer_id: i64,
    pub size: i64,
}

/// Hands out the next block of producer ids. `broker_epoch` -1 skips the epoch check.
pub fn allocate_producer_ids(
    image: &MetadataImage,
    broker_id: i32,
    broker_epoch: i64,
    block_size: i64,
) -> (Vec<MetadataRecord>, Outcome<ProducerIdBlock>) {
    if block_size <= 0 {
        return (
            Vec::new(),
            err(codes::INVALID_REQUEST, "Producer id block size must be positive."),
        );
    }
    if let Some(b) = image.brokers().get(&broker_id) {
        if broker_epoch != -1 && broker_epoch != b.epoch {
            let msg = format!("Expected broker epoch {}, but got {broker_epoch}", b.epoch);
            return (Vec::new(), err(codes::STALE_BROKER_EPOCH, msg));
        }
    }
    let first = image.next_producer_id();
    let Some(next) = first.checked_add(block_size) else {
        return (
            Vec::new(),
            err(codes::UNKNOWN_SERVER_ERROR, "Exhausted all producerIds"),
        );
    };
    let record = MetadataRecord::ProducerIdsRecord {
        broker_id,
        broker_epoch,
        next_producer_id: next,
    };
    (
        vec![record],
        Ok(ProducerIdBlock {
            first_producer_id: first,
            size: block_size,
        }),
    )
}
