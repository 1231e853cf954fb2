//! Topics from YAML: parses a `topics.yaml`, plans the changes that make the metadata image
//! match it, and applies that plan through the controller (start-up; `runnel apply` reuses
//! [`parse`] and [`plan`]).
//!
//! Accepted layouts (what users already keep for their init jobs):
//! a top-level list of topics, or a map `{ topics: [...], prune: bool }`. Each topic has
//! `name`, optional `partitions`, optional `replication_factor` (or `replicationFactor`) and an
//! optional `config` map of Kafka topic config names to values (strings, numbers and booleans;
//! numbers and booleans are stringified).
//!
//! Reconciliation rules (the plan):
//! - A topic in the file and not in the cluster is created with its partitions, replication
//!   factor and configs (broker defaults for what is left out).
//! - A larger `partitions` adds partitions. A smaller one is *reported*, never done (Kafka
//!   cannot remove partitions). A different replication factor is reported, never done.
//! - Config keys listed in the file are enforced: set when absent or different.
//! - Config overrides present in the cluster but not listed in the file, and topics in the
//!   cluster but not in the file, are reported only — unless the file says `prune: true`, then
//!   such overrides are deleted and such topics are deleted. Internal topics (names starting
//!   with `__`, e.g. `__consumer_offsets`) are never pruned nor reported.
//!
//! Must never: delete anything without `prune: true`, or panic on file contents. Planning is
//! pure (image in, plan out), so applying the same file twice plans nothing the second time.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::Path;

use runnel_metadata::configs::validate_topic_config;
use runnel_metadata::controller::{
    self, AlterConfigOp, AlterConfigsOptions, ConfigOpKind, CreatePartitionsOptions, CreateTopicSpec,
    CreateTopicsOptions, TopicRef, PARTITIONS_PER_TOPIC_MAX,
};
use runnel_metadata::image::MetadataImage;
use runnel_metadata::records::RESOURCE_TYPE_TOPIC;
use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

use crate::broker::Broker;

/// Largest topics file read (a guard, not a real limit: 16 MiB of YAML is ~100k topics).
const FILE_BYTES_MAX: u64 = 16 << 20;

/// One topic as declared in the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicSpec {
    pub name: String,
    /// `None`: broker default on creation, not managed afterwards.
    pub partitions: Option<i32>,
    /// `None`: broker default on creation, not managed afterwards.
    pub replication_factor: Option<i16>,
    pub config: BTreeMap<String, String>,
    /// 1-based line of the topic's `name:` in the file, when it could be found.
    pub line: Option<usize>,
}

/// A parsed, validated topics file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TopicsFile {
    pub topics: Vec<TopicSpec>,
    pub prune: bool,
}

/// Why a topics file is invalid: the message names the topic; `line` is 1-based.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "line {line}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TopicsFileError {
    #[error("cannot read topics file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("invalid topics file {path}: {error}")]
    Invalid { path: String, error: ParseError },
    #[error("topics file: cannot {action} topic {topic:?}: {message}")]
    Apply {
        action: &'static str,
        topic: String,
        message: String,
    },
}

// ---------------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    topics: Vec<RawTopic>,
    #[serde(default)]
    prune: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTopic {
    name: String,
    #[serde(default)]
    partitions: Option<i32>,
    #[serde(default, alias = "replicationFactor")]
    replication_factor: Option<i16>,
    #[serde(default, alias = "configs")]
    config: BTreeMap<String, ConfigValue>,
}

/// A config value: YAML strings, numbers and booleans, kept as Kafka's string form.
struct ConfigValue(String);

impl<'de> Deserialize<'de> for ConfigValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ConfigValueVisitor)
    }
}

struct ConfigValueVisitor;

impl Visitor<'_> for ConfigValueVisitor {
    type Value = ConfigValue;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string, number or boolean config value")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<ConfigValue, E> {
        Ok(ConfigValue(v.to_string()))
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<ConfigValue, E> {
        Ok(ConfigValue(v.to_string()))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<ConfigValue, E> {
        Ok(ConfigValue(v.to_string()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<ConfigValue, E> {
        Ok(ConfigValue(v.to_string()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<ConfigValue, E> {
        Ok(ConfigValue(v.to_string()))
    }
}

/// serde_norway's message without its " at line N column M" tail (we lead with the line), and
/// with its path (`.[2]` or `topics[2]`) said as "topic #3".
fn yaml_error(e: serde_norway::Error) -> ParseError {
    let mut message = e.to_string();
    let line = e.location().map(|l| {
        let tail = format!(" at line {} column {}", l.line(), l.column());
        if let Some(pos) = message.find(&tail) {
            message.replace_range(pos..pos + tail.len(), "");
        }
        l.line()
    });
    let message = readable_path(&message).unwrap_or(message);
    ParseError { line, message }
}

fn readable_path(message: &str) -> Option<String> {
    let rest = message.strip_prefix(".[").or_else(|| message.strip_prefix("topics["))?;
    let (index, rest) = rest.split_once(']')?;
    let index: usize = index.parse().ok()?;
    Some(format!("topic #{}{rest}", index.saturating_add(1)))
}

/// Parses and validates a topics file's text.
pub fn parse(text: &str) -> Result<TopicsFile, ParseError> {
    let shape: serde_norway::Value = serde_norway::from_str(text).map_err(yaml_error)?;
    let (raw, prune) = match shape {
        serde_norway::Value::Null => (Vec::new(), false),
        serde_norway::Value::Sequence(_) => (
            serde_norway::from_str::<Vec<RawTopic>>(text).map_err(yaml_error)?,
            false,
        ),
        serde_norway::Value::Mapping(_) => {
            let f: RawFile = serde_norway::from_str(text).map_err(yaml_error)?;
            (f.topics, f.prune)
        }
        _ => {
            return Err(ParseError {
                line: Some(1),
                message: "expected a list of topics or a map with `topics:`".into(),
            });
        }
    };
    let lines = name_lines(text, raw.len());
    let mut seen: HashMap<String, Option<usize>> = HashMap::new();
    let mut topics = Vec::with_capacity(raw.len());
    for (i, t) in raw.into_iter().enumerate() {
        let line = lines.as_ref().map(|l| l[i]);
        let spec = validate_topic(text, t, line)?;
        if let Some(first) = seen.insert(spec.name.clone(), line) {
            let at = first.map(|l| format!(" (first at line {l})")).unwrap_or_default();
            return Err(invalid(line, &spec.name, format!("duplicate topic name{at}")));
        }
        topics.push(spec);
    }
    Ok(TopicsFile { topics, prune })
}

/// Reads and parses a topics file.
pub fn load(path: &Path) -> Result<TopicsFile, TopicsFileError> {
    let shown = path.display().to_string();
    let read_err = |source| TopicsFileError::Read {
        path: shown.clone(),
        source,
    };
    let len = std::fs::metadata(path).map_err(read_err)?.len();
    if len > FILE_BYTES_MAX {
        return Err(TopicsFileError::Invalid {
            path: shown,
            error: ParseError {
                line: None,
                message: format!("file is {len} bytes, more than the {FILE_BYTES_MAX} allowed"),
            },
        });
    }
    let text = std::fs::read_to_string(path).map_err(read_err)?;
    parse(&text).map_err(|error| TopicsFileError::Invalid { path: shown, error })
}

fn invalid(line: Option<usize>, topic: &str, message: String) -> ParseError {
    ParseError {
        line,
        message: format!("topic {topic:?}: {message}"),
    }
}

fn validate_topic(text: &str, t: RawTopic, line: Option<usize>) -> Result<TopicSpec, ParseError> {
    if let Err(e) = controller::validate_topic_name(&t.name) {
        return Err(invalid(line, &t.name, e.message));
    }
    if let Some(p) = t.partitions {
        if !(1..=PARTITIONS_PER_TOPIC_MAX).contains(&p) {
            let msg = format!("partitions must be between 1 and {PARTITIONS_PER_TOPIC_MAX}, got {p}");
            return Err(invalid(line, &t.name, msg));
        }
    }
    if let Some(rf) = t.replication_factor {
        if rf < 1 {
            let msg = format!("replication_factor must be at least 1, got {rf}");
            return Err(invalid(line, &t.name, msg));
        }
    }
    let mut config = BTreeMap::new();
    for (key, ConfigValue(value)) in t.config {
        if let Err(e) = validate_topic_config(&key, &value) {
            let key_line = line.and_then(|l| key_line(text, l, &key)).or(line);
            return Err(invalid(key_line, &t.name, format!("config {key}: {e}")));
        }
        config.insert(key, value);
    }
    Ok(TopicSpec {
        name: t.name,
        partitions: t.partitions,
        replication_factor: t.replication_factor,
        config,
        line,
    })
}

/// The key of a block-style YAML line (`- name: x` gives `name`), unquoted.
fn line_key(line: &str) -> Option<&str> {
    let body = line.trim_start();
    let body = body.strip_prefix("- ").unwrap_or(body).trim_start();
    let (key, _) = body.split_once(':')?;
    Some(key.trim().trim_matches(|c| c == '"' || c == '\''))
}

/// 1-based lines of each topic's `name:` key, if there is exactly one per topic (block style);
/// the YAML parser gives no positions for values that parsed fine but fail our checks.
fn name_lines(text: &str, topics: usize) -> Option<Vec<usize>> {
    let found: Vec<usize> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| line_key(l) == Some("name"))
        .map(|(i, _)| i + 1)
        .collect();
    (found.len() == topics).then_some(found)
}

/// The first line at or after `from` (1-based) whose key is `key`.
fn key_line(text: &str, from: usize, key: &str) -> Option<usize> {
    text.lines()
        .enumerate()
        .skip(from.saturating_sub(1))
        .find(|(_, l)| line_key(l) == Some(key))
        .map(|(i, _)| i + 1)
}

// ---------------------------------------------------------------------------------------------
// Planning
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionIncrease {
    pub topic: String,
    pub from: i32,
    pub to: i32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigChange {
    pub topic: String,
    /// Overrides to set (key, new value).
    pub set: Vec<(String, String)>,
    /// Overrides to delete (only with prune).
    pub delete: Vec<String>,
}

/// Differences the plan will not act on, for the operator to see.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Notice {
    PartitionDecrease { topic: String, current: i32, desired: i32 },
    ReplicationFactorDiffers { topic: String, current: i16, desired: i16 },
    TopicNotInFile { topic: String },
    ConfigNotInFile { topic: String, key: String },
}

impl fmt::Display for Notice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Notice::PartitionDecrease {
                topic,
                current,
                desired,
            } => write!(
                f,
                "{topic}: file asks for {desired} partitions but the topic has {current}; partitions cannot be removed, not changed"
            ),
            Notice::ReplicationFactorDiffers {
                topic,
                current,
                desired,
            } => write!(
                f,
                "{topic}: file asks for replication factor {desired} but the topic has {current}; not changed"
            ),
            Notice::TopicNotInFile { topic } => {
                write!(
                    f,
                    "{topic}: exists but is not in the file; kept (set `prune: true` to delete)"
                )
            }
            Notice::ConfigNotInFile { topic, key } => write!(
                f,
                "{topic}: config override {key} is not in the file; kept (set `prune: true` to delete)"
            ),
        }
    }
}

/// What applying a topics file will do, and what it reports without doing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub create: Vec<TopicSpec>,
    pub add_partitions: Vec<PartitionIncrease>,
    pub config_changes: Vec<ConfigChange>,
    /// Topics to delete (only with prune).
    pub delete: Vec<String>,
    pub reported: Vec<Notice>,
}

impl Plan {
    /// True when applying would change nothing (notices do not count).
    pub fn is_noop(&self) -> bool {
        self.create.is_empty()
            && self.add_partitions.is_empty()
            && self.config_changes.is_empty()
            && self.delete.is_empty()
    }

    /// Number of changes (creations, partition increases, config changes, deletions).
    pub fn change_count(&self) -> usize {
        self.create.len() + self.add_partitions.len() + self.config_changes.len() + self.delete.len()
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_noop() {
            writeln!(f, "no changes")?;
        }
        for t in &self.create {
            let partitions = t.partitions.map_or("default".to_string(), |p| p.to_string());
            let rf = t.replication_factor.map_or("default".to_string(), |r| r.to_string());
            write!(
                f,
                "+ create {} (partitions {partitions}, replication factor {rf}",
                t.name
            )?;
            for (k, v) in &t.config {
                write!(f, ", {k}={v}")?;
            }
            writeln!(f, ")")?;
        }
        for p in &self.add_partitions {
            writeln!(f, "~ {}: partitions {} -> {}", p.topic, p.from, p.to)?;
        }
        for c in &self.config_changes {
            for (k, v) in &c.set {
                writeln!(f, "~ {}: set {k}={v}", c.topic)?;
            }
            for k in &c.delete {
                writeln!(f, "- {}: delete config override {k}", c.topic)?;
            }
        }
        for t in &self.delete {
            writeln!(f, "- delete {t}")?;
        }
        for n in &self.reported {
            writeln!(f, "! {n}")?;
        }
        Ok(())
    }
}

/// Internal topics are managed by the broker itself, never by a topics file's prune.
pub fn is_internal(topic: &str) -> bool {
    topic.starts_with("__")
}

/// What the plan needs to know of an existing topic. Start-up builds it from the metadata
/// image; `runnel apply` can build it from Metadata and DescribeConfigs responses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CurrentTopic {
    pub name: String,
    pub partitions: i32,
    pub replication_factor: i16,
    /// Per-topic config overrides only (not broker defaults).
    pub overrides: BTreeMap<String, String>,
}

/// The existing topics of `image`, for [`plan_against`].
pub fn current_topics(image: &MetadataImage) -> Vec<CurrentTopic> {
    image
        .topics()
        .map(|t| CurrentTopic {
            name: t.name.clone(),
            partitions: t.partitions.len() as i32,
            replication_factor: t.partitions.first().map_or(0, |p| p.replicas.len()) as i16,
            overrides: image.topic_configs(&t.name).clone(),
        })
        .collect()
}

/// The changes that make `image` match `desired` (pure; see the module doc for the rules).
pub fn plan(image: &MetadataImage, desired: &[TopicSpec], prune: bool) -> Plan {
    plan_against(&current_topics(image), desired, prune)
}

/// The changes that make the `current` topics match `desired`.
pub fn plan_against(current: &[CurrentTopic], desired: &[TopicSpec], prune: bool) -> Plan {
    let existing: HashMap<&str, &CurrentTopic> = current.iter().map(|t| (t.name.as_str(), t)).collect();
    let mut out = Plan::default();
    for spec in desired {
        match existing.get(spec.name.as_str()) {
            Some(topic) => plan_existing(&mut out, spec, topic, prune),
            None => out.create.push(spec.clone()),
        }
    }
    let declared: std::collections::HashSet<&str> = desired.iter().map(|t| t.name.as_str()).collect();
    for topic in current {
        if declared.contains(topic.name.as_str()) || is_internal(&topic.name) {
            continue;
        }
        if prune {
            out.delete.push(topic.name.clone());
        } else {
            out.reported.push(Notice::TopicNotInFile {
                topic: topic.name.clone(),
            });
        }
    }
    out
}

fn plan_existing(out: &mut Plan, spec: &TopicSpec, topic: &CurrentTopic, prune: bool) {
    let current = topic.partitions;
    match spec.partitions {
        Some(p) if p > current => out.add_partitions.push(PartitionIncrease {
            topic: spec.name.clone(),
            from: current,
            to: p,
        }),
        Some(p) if p < current => out.reported.push(Notice::PartitionDecrease {
            topic: spec.name.clone(),
            current,
            desired: p,
        }),
        _ => {}
    }
    let current_rf = topic.replication_factor;
    if let Some(rf) = spec.replication_factor.filter(|rf| *rf != current_rf) {
        out.reported.push(Notice::ReplicationFactorDiffers {
            topic: spec.name.clone(),
            current: current_rf,
            desired: rf,
        });
    }
    plan_configs(out, spec, &topic.overrides, prune);
}

fn plan_configs(out: &mut Plan, spec: &TopicSpec, current: &BTreeMap<String, String>, prune: bool) {
    let set: Vec<(String, String)> = spec
        .config
        .iter()
        .filter(|(k, v)| current.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut delete = Vec::new();
    for key in current.keys().filter(|k| !spec.config.contains_key(*k)) {
        if prune {
            delete.push(key.clone());
        } else {
            out.reported.push(Notice::ConfigNotInFile {
                topic: spec.name.clone(),
                key: key.clone(),
            });
        }
    }
    if !set.is_empty() || !delete.is_empty() {
        out.config_changes.push(ConfigChange {
            topic: spec.name.clone(),
            set,
            delete,
        });
    }
}

// ---------------------------------------------------------------------------------------------
// Applying
// ---------------------------------------------------------------------------------------------

fn apply_error(action: &'static str, topic: &str, message: impl fmt::Display) -> TopicsFileError {
    TopicsFileError::Apply {
        action,
        topic: topic.to_string(),
        message: message.to_string(),
    }
}

/// Applies `plan` through the controller, in order: creations, partition increases, config
/// changes, deletions. Stops at the first failure (what was done before it stays done; a
/// rerun plans only the rest).
pub async fn apply(broker: &Broker, plan: &Plan) -> Result<(), TopicsFileError> {
    for spec in &plan.create {
        create_topic(broker, spec).await?;
    }
    for p in &plan.add_partitions {
        let opts = CreatePartitionsOptions {
            validate_only: false,
            live_broker_ids: vec![broker.node_id],
        };
        let (name, to) = (p.topic.clone(), p.to);
        let outcome = broker
            .propose(move |image| controller::create_partitions(image, &name, to, None, &opts))
            .await
            .map_err(|e| apply_error("add partitions to", &p.topic, e))?;
        outcome.map_err(|e| apply_error("add partitions to", &p.topic, e.message))?;
    }
    for c in &plan.config_changes {
        alter_configs(broker, c).await?;
    }
    if !plan.delete.is_empty() {
        let refs: Vec<TopicRef> = plan.delete.iter().map(|t| TopicRef::Name(t.clone())).collect();
        let outcomes = broker
            .propose(move |image| controller::delete_topics(image, &refs))
            .await
            .map_err(|e| apply_error("delete", &plan.delete.join(","), e))?;
        for (name, outcome) in plan.delete.iter().zip(outcomes) {
            outcome.map_err(|e| apply_error("delete", name, e.message))?;
        }
    }
    Ok(())
}

async fn create_topic(broker: &Broker, spec: &TopicSpec) -> Result<(), TopicsFileError> {
    let create = CreateTopicSpec {
        name: spec.name.clone(),
        num_partitions: spec.partitions.unwrap_or(-1),
        replication_factor: spec.replication_factor.unwrap_or(-1),
        assignments: Vec::new(),
        configs: spec.config.iter().map(|(k, v)| (k.clone(), Some(v.clone()))).collect(),
    };
    let opts = CreateTopicsOptions {
        validate_only: false,
        default_num_partitions: broker.config.num_partitions,
        default_replication_factor: broker.config.default_replication_factor,
        live_broker_ids: vec![broker.node_id],
        topic_ids: vec![*uuid::Uuid::new_v4().as_bytes()],
    };
    let mut outcomes = broker
        .propose(move |image| controller::create_topics(image, &[create], &opts))
        .await
        .map_err(|e| apply_error("create", &spec.name, e))?;
    match outcomes.pop() {
        Some(Ok(_)) => Ok(()),
        Some(Err(e)) => Err(apply_error("create", &spec.name, e.message)),
        None => Err(apply_error("create", &spec.name, "no outcome from the controller")),
    }
}

async fn alter_configs(broker: &Broker, change: &ConfigChange) -> Result<(), TopicsFileError> {
    let sets = change.set.iter().map(|(k, v)| AlterConfigOp {
        name: k.clone(),
        op: ConfigOpKind::Set,
        value: Some(v.clone()),
    });
    let deletes = change.delete.iter().map(|k| AlterConfigOp {
        name: k.clone(),
        op: ConfigOpKind::Delete,
        value: None,
    });
    let ops: Vec<AlterConfigOp> = sets.chain(deletes).collect();
    let opts = AlterConfigsOptions {
        incremental: true,
        validate_only: false,
    };
    let name = change.topic.clone();
    let outcome = broker
        .propose(move |image| controller::alter_configs(image, RESOURCE_TYPE_TOPIC, &name, &ops, &opts))
        .await
        .map_err(|e| apply_error("change configs of", &change.topic, e))?;
    outcome.map_err(|e| apply_error("change configs of", &change.topic, e.message))
}

/// Start-up: plans `file` (loaded from `path`) against the current image, logs the plan and
/// applies it. Any error fails start-up.
pub async fn apply_at_startup(broker: &Broker, path: &Path, file: &TopicsFile) -> Result<(), TopicsFileError> {
    let plan = plan(&broker.image(), &file.topics, file.prune);
    for notice in &plan.reported {
        tracing::warn!(file = %path.display(), "topics file: {notice}");
    }
    if plan.is_noop() {
        tracing::info!(file = %path.display(), topics = file.topics.len(), "topics file: no changes");
        return Ok(());
    }
    tracing::info!(file = %path.display(), changes = plan.change_count(), "topics file plan:\n{plan}");
    apply(broker, &plan).await?;
    tracing::info!(file = %path.display(), changes = plan.change_count(), "topics file applied");
    Ok(())
}

#[cfg(test)]
mod tests;
