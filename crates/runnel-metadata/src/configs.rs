//! Topic and broker configuration definitions, as data: names, types, defaults, validation and
//! the broker keys that feed each topic config ("synonyms").
//!
//! Owns: the tables `TOPIC_CONFIGS` and `BROKER_CONFIGS` (Apache Kafka 4.x names and defaults,
//! plus Runnel's own broker keys), value validation, and the topic ⇐ broker synonym mapping used
//! by DescribeConfigs and by topic creation.
//!
//! Must never: read files or the environment, or decide where a value came from. Loading and
//! precedence belong to `runnel_broker::config`.
//!
//! Invariants:
//! - every `default` parses under its own validator (tested for every entry);
//! - defaults are rendered the way Kafka renders them in DescribeConfigs (`Long.MAX_VALUE` as
//!   `9223372036854775807`, doubles as Java prints them, lists comma-separated without spaces);
//! - broker defaults are *Runnel's* defaults where they differ from Kafka's on purpose (zero
//!   configuration gives a working single node): `node.id` 1, `process.roles` broker,controller,
//!   `listeners` PLAINTEXT://localhost:9092, `log.dir` ./data, and replication factors of
//!   internal topics 1.

/// The type of a config value, as DescribeConfigs (v3+) reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConfigType {
    Boolean,
    String,
    Int,
    Short,
    Long,
    Double,
    List,
    Class,
    Password,
}

impl ConfigType {
    /// The `config_type` code of DescribeConfigs responses (v3+).
    pub fn describe_code(self) -> i8 {
        match self {
            ConfigType::Boolean => 1,
            ConfigType::String => 2,
            ConfigType::Int => 3,
            ConfigType::Short => 4,
            ConfigType::Long => 5,
            ConfigType::Double => 6,
            ConfigType::List => 7,
            ConfigType::Class => 8,
            ConfigType::Password => 9,
        }
    }
}

/// A value check applied after the value parsed as its `ConfigType`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Validator {
    /// Anything that parses as the type.
    Any,
    /// Integer at least this value.
    AtLeast(i64),
    /// Integer within `[min, max]`.
    Between(i64, i64),
    /// Double within `[min, max]`.
    DoubleBetween(f64, f64),
    /// Exactly one of these strings (case-sensitive, as Kafka's `ValidString`).
    OneOf(&'static [&'static str]),
    /// Same as `OneOf`, ignoring ASCII case.
    OneOfIgnoreCase(&'static [&'static str]),
    /// A list whose every element is one of these (an empty list is allowed, as in Kafka 4.0).
    ListOf(&'static [&'static str]),
    /// A list with at least one element and every element one of these.
    NonEmptyListOf(&'static [&'static str]),
    /// gzip level: -1 (library default) or 1..=9.
    GzipLevel,
    /// `*` or a list of `partition:brokerId` pairs.
    ThrottledReplicas,
    /// `NAME://host:port,...` with unique names.
    Listeners,
    /// `NAME:PROTOCOL,...` with PROTOCOL one of Kafka's security protocols.
    SecurityProtocolMap,
    /// `id@host:port,...` (KRaft static voters).
    QuorumVoters,
    /// `host:port,...`.
    HostPortList,
    /// A single `host:port`.
    HostPort,
}

/// One config key: what it is, its default, and how to check a value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConfigDef {
    pub name: &'static str,
    pub kind: ConfigType,
    /// The default as DescribeConfigs renders it; `None` is Kafka's `null`.
    pub default: Option<&'static str>,
    pub doc: &'static str,
    pub sensitive: bool,
    /// Broker configs that cannot be altered dynamically. Topic configs are never read-only.
    pub read_only: bool,
    pub validator: Validator,
}

impl ConfigDef {
    const fn new(name: &'static str, kind: ConfigType, default: Option<&'static str>, doc: &'static str) -> Self {
        let sensitive = matches!(kind, ConfigType::Password);
        ConfigDef {
            name,
            kind,
            default,
            doc,
            sensitive,
            read_only: false,
            validator: Validator::Any,
        }
    }

    const fn v(mut self, validator: Validator) -> Self {
        self.validator = validator;
        self
    }

    const fn ro(mut self) -> Self {
        self.read_only = true;
        self
    }

    /// Checks `value` against this key's type and validator. The error names key and value.
    pub fn validate(&self, value: &str) -> Result<(), String> {
        self.validate_as(self.name, value)
    }

    /// Same as `validate`, naming `key` in the error (for `listener.name.<l>.<key>` overrides).
    pub fn validate_as(&self, key: &str, value: &str) -> Result<(), String> {
        check_value(self.kind, self.validator, value).map_err(|why| invalid(key, value, self.sensitive, &why))
    }
}

fn invalid(name: &str, value: &str, sensitive: bool, why: &str) -> String {
    // Secrets never appear in error messages (they end up in logs and responses).
    let shown = if sensitive { "[hidden]" } else { value };
    format!("Invalid value {shown} for configuration {name}: {why}")
}

// ---------------------------------------------------------------------------------------------
// Parsing and validation
// ---------------------------------------------------------------------------------------------

/// Parses a boolean the way Kafka does: `true`/`false`, ASCII case ignored, surrounding spaces
/// trimmed.
pub fn parse_bool(value: &str) -> Option<bool> {
    let v = value.trim();
    if v.eq_ignore_ascii_case("true") {
        Some(true)
    } else if v.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// Splits a Kafka list value: comma-separated, elements trimmed; blank means empty list.
pub fn parse_list(value: &str) -> Vec<&str> {
    if value.trim().is_empty() {
        return Vec::new();
    }
    value.split(',').map(str::trim).collect()
}

fn check_value(kind: ConfigType, validator: Validator, value: &str) -> Result<(), String> {
    let trimmed = value.trim();
    let int: Option<i64> = match kind {
        ConfigType::Boolean => {
            parse_bool(value).ok_or("Expected value to be either true or false")?;
            None
        }
        ConfigType::Int => Some(trimmed.parse::<i32>().map_err(|_| "Not a number of type INT")? as i64),
        ConfigType::Short => Some(trimmed.parse::<i16>().map_err(|_| "Not a number of type SHORT")? as i64),
        ConfigType::Long => Some(trimmed.parse::<i64>().map_err(|_| "Not a number of type LONG")?),
        ConfigType::Double => {
            let d = trimmed.parse::<f64>().map_err(|_| "Not a number of type DOUBLE")?;
            if !d.is_finite() {
                return Err("Not a finite number of type DOUBLE".into());
            }
            return check_double(validator, d);
        }
        ConfigType::Class => {
            if trimmed.is_empty() {
                return Err("Expected a class name".into());
            }
            None
        }
        ConfigType::String | ConfigType::List | ConfigType::Password => None,
    };
    match int {
        Some(n) => check_int(validator, n),
        None => check_text(validator, value),
    }
}

fn check_int(validator: Validator, n: i64) -> Result<(), String> {
    match validator {
        Validator::AtLeast(min) if n < min => Err(format!("Value must be at least {min}")),
        Validator::Between(min, max) if n < min || n > max => {
            Err(format!("Value must be no less than {min} and no more than {max}"))
        }
        Validator::GzipLevel if n != -1 && !(1..=9).contains(&n) => Err("Value must be -1 or between 1 and 9".into()),
        _ => Ok(()),
    }
}

fn check_double(validator: Validator, d: f64) -> Result<(), String> {
    match validator {
        Validator::DoubleBetween(min, max) if d < min || d > max => {
            Err(format!("Value must be no less than {min} and no more than {max}"))
        }
        _ => Ok(()),
    }
}

fn check_text(validator: Validator, value: &str) -> Result<(), String> {
    match validator {
        Validator::OneOf(allowed) => one_of(allowed, value.trim(), false),
        Validator::OneOfIgnoreCase(allowed) => one_of(allowed, value.trim(), true),
        Validator::ListOf(allowed) => list_of(allowed, value, true),
        Validator::NonEmptyListOf(allowed) => list_of(allowed, value, false),
        Validator::ThrottledReplicas => check_throttled_replicas(value),
        Validator::Listeners => parse_listeners(value).map(|_| ()),
        Validator::SecurityProtocolMap => parse_security_protocol_map(value).map(|_| ()),
        Validator::QuorumVoters => parse_quorum_voters(value).map(|_| ()),
        Validator::HostPortList => {
            for item in parse_list(value) {
                parse_host_port(item)?;
            }
            Ok(())
        }
        Validator::HostPort => parse_host_port(value.trim()).map(|_| ()),
        _ => Ok(()),
    }
}

fn one_of(allowed: &[&str], value: &str, ignore_case: bool) -> Result<(), String> {
    let ok = allowed
        .iter()
        .any(|a| *a == value || (ignore_case && a.eq_ignore_ascii_case(value)));
    if ok {
        Ok(())
    } else {
        Err(format!("String must be one of: {}", allowed.join(", ")))
    }
}

fn list_of(allowed: &[&str], value: &str, empty_ok: bool) -> Result<(), String> {
    let items = parse_list(value);
    if items.is_empty() && !empty_ok {
        return Err("List must not be empty".into());
    }
    for item in items {
        if !allowed.contains(&item) {
            return Err(format!(
                "Invalid value {item}; every element must be one of: {}",
                allowed.join(", ")
            ));
        }
    }
    Ok(())
}

fn check_throttled_replicas(value: &str) -> Result<(), String> {
    let items = parse_list(value);
    if items == ["*"] {
        return Ok(());
    }
    for item in items {
        let ok = item
            .split_once(':')
            .is_some_and(|(p, b)| p.trim().parse::<i32>().is_ok() && b.trim().parse::<i32>().is_ok());
        if !ok {
            return Err("Must be the literal '*' or a list of replicas in the form [PartitionId]:[BrokerId],[PartitionId]:[BrokerId],...".into());
        }
    }
    Ok(())
}

/// One entry of `listeners` / `advertised.listeners`: `NAME://host:port`.
/// `host` is empty for "all interfaces" and has no brackets for IPv6.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerSpec {
    /// Upper-cased, as Kafka normalises listener names.
    pub name: String,
    pub host: String,
    pub port: u16,
}

/// Splits `host:port` (`[v6]:port` for IPv6). Empty host is allowed (all interfaces).
pub fn parse_host_port(s: &str) -> Result<(String, u16), String> {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (h, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("Unclosed '[' in address {s}"))?;
        let port = after
            .strip_prefix(':')
            .ok_or_else(|| format!("Missing port in address {s}"))?;
        (h, port)
    } else {
        s.rsplit_once(':')
            .ok_or_else(|| format!("Missing port in address {s}"))?
    };
    if host.contains(['/', ' ']) || (!s.starts_with('[') && host.contains(':')) {
        return Err(format!("Invalid host in address {s}"));
    }
    let port = port
        .parse::<u16>()
        .map_err(|_| format!("Invalid port in address {s}"))?;
    Ok((host.to_string(), port))
}

fn valid_listener_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Parses a `listeners`-style list. Names must be unique.
pub fn parse_listeners(value: &str) -> Result<Vec<ListenerSpec>, String> {
    let mut out: Vec<ListenerSpec> = Vec::new();
    for item in parse_list(value) {
        let (name, addr) = item
            .split_once("://")
            .ok_or_else(|| format!("Listener {item} must look like NAME://host:port"))?;
        if !valid_listener_name(name) {
            return Err(format!("Invalid listener name in {item}"));
        }
        let (host, port) = parse_host_port(addr)?;
        let name = name.to_ascii_uppercase();
        if out.iter().any(|l| l.name == name) {
            return Err(format!("Listener name {name} appears more than once"));
        }
        out.push(ListenerSpec { name, host, port });
    }
    Ok(out)
}

/// Kafka's security protocols.
pub const SECURITY_PROTOCOLS: &[&str] = &["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"];

/// Parses `NAME:PROTOCOL,...` into upper-cased pairs.
pub fn parse_security_protocol_map(value: &str) -> Result<Vec<(String, String)>, String> {
    let mut out: Vec<(String, String)> = Vec::new();
    for item in parse_list(value) {
        let (name, proto) = item
            .split_once(':')
            .ok_or_else(|| format!("Entry {item} must look like NAME:PROTOCOL"))?;
        let (name, proto) = (name.trim(), proto.trim().to_ascii_uppercase());
        if !valid_listener_name(name) {
            return Err(format!("Invalid listener name in {item}"));
        }
        if !SECURITY_PROTOCOLS.contains(&proto.as_str()) {
            return Err(format!(
                "Unknown security protocol {proto}; expected one of {}",
                SECURITY_PROTOCOLS.join(", ")
            ));
        }
        let name = name.to_ascii_uppercase();
        if out.iter().any(|(n, _)| *n == name) {
            return Err(format!("Listener name {name} appears more than once"));
        }
        out.push((name, proto));
    }
    Ok(out)
}

/// One static voter from `controller.quorum.voters`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumVoter {
    pub node_id: i32,
    pub host: String,
    pub port: u16,
}

/// Parses `id@host:port,...`.
pub fn parse_quorum_voters(value: &str) -> Result<Vec<QuorumVoter>, String> {
    let mut out: Vec<QuorumVoter> = Vec::new();
    for item in parse_list(value) {
        let (id, addr) = item
            .split_once('@')
            .ok_or_else(|| format!("Voter {item} must look like id@host:port"))?;
        let node_id = id
            .trim()
            .parse::<i32>()
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| format!("Invalid node id in voter {item}"))?;
        let (host, port) = parse_host_port(addr.trim())?;
        if host.is_empty() {
            return Err(format!("Voter {item} needs a host"));
        }
        if out.iter().any(|v| v.node_id == node_id) {
            return Err(format!("Voter id {node_id} appears more than once"));
        }
        out.push(QuorumVoter { node_id, host, port });
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Topic configs
// ---------------------------------------------------------------------------------------------

use ConfigType::{
    Boolean as B, Class as C, Double as D, Int as I, List as L, Long as G, Password as P, Short as S, String as T,
};

const LONG_MAX: &str = "9223372036854775807";
const INT_MAX: &str = "2147483647";
const CLEANUP_POLICIES: &[&str] = &["compact", "delete"];
const COMPRESSION_TYPES: &[&str] = &["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"];
const TIMESTAMP_TYPES: &[&str] = &["CreateTime", "LogAppendTime"];

const fn d(name: &'static str, kind: ConfigType, default: Option<&'static str>, doc: &'static str) -> ConfigDef {
    ConfigDef::new(name, kind, default, doc)
}

/// Every topic-level config of Kafka 4.0 (`LogConfig`), with Kafka's defaults.
/// (`message.format.version`, `message.downconversion.enable` and
/// `message.timestamp.difference.max.ms` were removed in 4.0 and are not here.)
#[rustfmt::skip]
pub static TOPIC_CONFIGS: &[ConfigDef] = &[
    d("cleanup.policy", L, Some("delete"), "Which old segments go: delete by retention, compact by key, or both.").v(Validator::ListOf(CLEANUP_POLICIES)),
    d("compression.gzip.level", I, Some("-1"), "gzip level used when the broker compresses with gzip.").v(Validator::GzipLevel),
    d("compression.lz4.level", I, Some("9"), "lz4 level used when the broker compresses with lz4.").v(Validator::Between(1, 17)),
    d("compression.type", T, Some("producer"), "Final codec of stored batches; 'producer' keeps the producer's codec.").v(Validator::OneOf(COMPRESSION_TYPES)),
    d("compression.zstd.level", I, Some("3"), "zstd level used when the broker compresses with zstd.").v(Validator::Between(-131072, 22)),
    d("delete.retention.ms", G, Some("86400000"), "How long delete tombstones stay readable on compacted topics.").v(Validator::AtLeast(0)),
    d("file.delete.delay.ms", G, Some("60000"), "Delay before a removed segment's files are deleted from disk.").v(Validator::AtLeast(0)),
    d("flush.messages", G, Some(LONG_MAX), "Force an fsync after this many messages.").v(Validator::AtLeast(1)),
    d("flush.ms", G, Some(LONG_MAX), "Force an fsync after this much time.").v(Validator::AtLeast(0)),
    d("follower.replication.throttled.replicas", L, Some(""), "Replicas whose follower fetches are throttled ('*' or partition:broker list).").v(Validator::ThrottledReplicas),
    d("index.interval.bytes", I, Some("4096"), "Bytes of log between two offset index entries.").v(Validator::AtLeast(0)),
    d("leader.replication.throttled.replicas", L, Some(""), "Replicas whose leader-side replication is throttled ('*' or partition:broker list).").v(Validator::ThrottledReplicas),
    d("local.retention.bytes", G, Some("-2"), "Local size limit when tiered storage is on; -2 means use retention.bytes.").v(Validator::AtLeast(-2)),
    d("local.retention.ms", G, Some("-2"), "Local time limit when tiered storage is on; -2 means use retention.ms.").v(Validator::AtLeast(-2)),
    d("max.compaction.lag.ms", G, Some(LONG_MAX), "Longest time a record may stay uncompacted.").v(Validator::AtLeast(1)),
    d("max.message.bytes", I, Some("1048588"), "Largest record batch the topic accepts.").v(Validator::AtLeast(0)),
    d("message.timestamp.after.max.ms", G, Some("3600000"), "How far in the future a CreateTime timestamp may be.").v(Validator::AtLeast(0)),
    d("message.timestamp.before.max.ms", G, Some(LONG_MAX), "How far in the past a CreateTime timestamp may be.").v(Validator::AtLeast(0)),
    d("message.timestamp.type", T, Some("CreateTime"), "Whether record timestamps come from the producer or the broker.").v(Validator::OneOf(TIMESTAMP_TYPES)),
    d("min.cleanable.dirty.ratio", D, Some("0.5"), "Dirty share of the log that makes it eligible for compaction.").v(Validator::DoubleBetween(0.0, 1.0)),
    d("min.compaction.lag.ms", G, Some("0"), "Shortest time a record stays uncompacted.").v(Validator::AtLeast(0)),
    d("min.insync.replicas", I, Some("1"), "In-sync replicas an acks=all write needs.").v(Validator::AtLeast(1)),
    d("preallocate", B, Some("false"), "Preallocate segment files on creation."),
    d("remote.log.copy.disable", B, Some("false"), "Stop copying segments to tiered storage."),
    d("remote.log.delete.on.disable", B, Some("false"), "Delete tiered data when tiered storage is turned off."),
    d("remote.storage.enable", B, Some("false"), "Use tiered storage for this topic."),
    d("retention.bytes", G, Some("-1"), "Size limit per partition before old segments go; -1 is unlimited."),
    d("retention.ms", G, Some("604800000"), "Age limit before old segments go; -1 is unlimited.").v(Validator::AtLeast(-1)),
    d("segment.bytes", I, Some("1073741824"), "Size at which a segment is rolled.").v(Validator::AtLeast(1048576)),
    d("segment.index.bytes", I, Some("10485760"), "Size of a segment's offset and time index files.").v(Validator::AtLeast(4)),
    d("segment.jitter.ms", G, Some("0"), "Random reduction of segment.ms, to spread out rolls.").v(Validator::AtLeast(0)),
    d("segment.ms", G, Some("604800000"), "Age at which a segment is rolled.").v(Validator::AtLeast(1)),
    d("unclean.leader.election.enable", B, Some("false"), "Allow an out-of-sync replica to become leader (may lose data)."),
];

/// Looks up a topic config by its exact name.
pub fn topic_config(name: &str) -> Option<&'static ConfigDef> {
    TOPIC_CONFIGS.iter().find(|c| c.name == name)
}

/// Checks one topic config override as Kafka's `LogConfig.validate` would.
/// `Err` carries the message returned with `INVALID_CONFIG`.
pub fn validate_topic_config(name: &str, value: &str) -> Result<(), String> {
    match topic_config(name) {
        Some(def) => def.validate(value),
        None => Err(format!("Unknown topic config name: {name}")),
    }
}

/// How a broker synonym's value converts to the topic config's unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SynonymUnit {
    Same,
    MinutesToMs,
    HoursToMs,
}

/// A broker key that supplies a topic config's default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Synonym {
    pub name: &'static str,
    pub unit: SynonymUnit,
}

impl Synonym {
    /// Converts a broker value to the topic config's unit; `None` if it does not parse.
    pub fn to_topic_value(&self, value: &str) -> Option<String> {
        let factor: i64 = match self.unit {
            SynonymUnit::Same => return Some(value.trim().to_string()),
            SynonymUnit::MinutesToMs => 60_000,
            SynonymUnit::HoursToMs => 3_600_000,
        };
        let n: i64 = value.trim().parse().ok()?;
        Some(n.saturating_mul(factor).to_string())
    }
}

const fn same(name: &'static str) -> Synonym {
    Synonym {
        name,
        unit: SynonymUnit::Same,
    }
}

const fn hours(name: &'static str) -> Synonym {
    Synonym {
        name,
        unit: SynonymUnit::HoursToMs,
    }
}

const fn minutes(name: &'static str) -> Synonym {
    Synonym {
        name,
        unit: SynonymUnit::MinutesToMs,
    }
}

/// Topic config → broker keys feeding its default, first one set wins (Kafka's
/// `ServerTopicConfigSynonyms`). Topic configs absent here have no broker default.
#[rustfmt::skip]
static TOPIC_SYNONYMS: &[(&str, &[Synonym])] = &[
    ("segment.bytes", &[same("log.segment.bytes")]),
    ("segment.ms", &[same("log.roll.ms"), hours("log.roll.hours")]),
    ("segment.jitter.ms", &[same("log.roll.jitter.ms"), hours("log.roll.jitter.hours")]),
    ("segment.index.bytes", &[same("log.index.size.max.bytes")]),
    ("flush.messages", &[same("log.flush.interval.messages")]),
    ("flush.ms", &[same("log.flush.interval.ms"), same("log.flush.scheduler.interval.ms")]),
    ("retention.bytes", &[same("log.retention.bytes")]),
    ("retention.ms", &[same("log.retention.ms"), minutes("log.retention.minutes"), hours("log.retention.hours")]),
    ("max.message.bytes", &[same("message.max.bytes")]),
    ("index.interval.bytes", &[same("log.index.interval.bytes")]),
    ("delete.retention.ms", &[same("log.cleaner.delete.retention.ms")]),
    ("min.compaction.lag.ms", &[same("log.cleaner.min.compaction.lag.ms")]),
    ("max.compaction.lag.ms", &[same("log.cleaner.max.compaction.lag.ms")]),
    ("file.delete.delay.ms", &[same("log.segment.delete.delay.ms")]),
    ("min.cleanable.dirty.ratio", &[same("log.cleaner.min.cleanable.ratio")]),
    ("cleanup.policy", &[same("log.cleanup.policy")]),
    ("unclean.leader.election.enable", &[same("unclean.leader.election.enable")]),
    ("min.insync.replicas", &[same("min.insync.replicas")]),
    ("compression.type", &[same("compression.type")]),
    ("compression.gzip.level", &[same("compression.gzip.level")]),
    ("compression.lz4.level", &[same("compression.lz4.level")]),
    ("compression.zstd.level", &[same("compression.zstd.level")]),
    ("preallocate", &[same("log.preallocate")]),
    ("message.timestamp.type", &[same("log.message.timestamp.type")]),
    ("message.timestamp.before.max.ms", &[same("log.message.timestamp.before.max.ms")]),
    ("message.timestamp.after.max.ms", &[same("log.message.timestamp.after.max.ms")]),
    ("local.retention.ms", &[same("log.local.retention.ms")]),
    ("local.retention.bytes", &[same("log.local.retention.bytes")]),
];

/// Broker keys (with unit conversion) that feed a topic config, in precedence order.
pub fn topic_synonyms(name: &str) -> &'static [Synonym] {
    TOPIC_SYNONYMS
        .iter()
        .find(|(topic, _)| *topic == name)
        .map_or(&[], |(_, syns)| syns)
}

#[rustfmt::skip]
static TOPIC_SYNONYM_NAMES: &[(&str, &[&str])] = &[
    ("segment.bytes", &["log.segment.bytes"]),
    ("segment.ms", &["log.roll.ms", "log.roll.hours"]),
    ("segment.jitter.ms", &["log.roll.jitter.ms", "log.roll.jitter.hours"]),
    ("segment.index.bytes", &["log.index.size.max.bytes"]),
    ("flush.messages", &["log.flush.interval.messages"]),
    ("flush.ms", &["log.flush.interval.ms", "log.flush.scheduler.interval.ms"]),
    ("retention.bytes", &["log.retention.bytes"]),
    ("retention.ms", &["log.retention.ms", "log.retention.minutes", "log.retention.hours"]),
    ("max.message.bytes", &["message.max.bytes"]),
    ("index.interval.bytes", &["log.index.interval.bytes"]),
    ("delete.retention.ms", &["log.cleaner.delete.retention.ms"]),
    ("min.compaction.lag.ms", &["log.cleaner.min.compaction.lag.ms"]),
    ("max.compaction.lag.ms", &["log.cleaner.max.compaction.lag.ms"]),
    ("file.delete.delay.ms", &["log.segment.delete.delay.ms"]),
    ("min.cleanable.dirty.ratio", &["log.cleaner.min.cleanable.ratio"]),
    ("cleanup.policy", &["log.cleanup.policy"]),
    ("unclean.leader.election.enable", &["unclean.leader.election.enable"]),
    ("min.insync.replicas", &["min.insync.replicas"]),
    ("compression.type", &["compression.type"]),
    ("compression.gzip.level", &["compression.gzip.level"]),
    ("compression.lz4.level", &["compression.lz4.level"]),
    ("compression.zstd.level", &["compression.zstd.level"]),
    ("preallocate", &["log.preallocate"]),
    ("message.timestamp.type", &["log.message.timestamp.type"]),
    ("message.timestamp.before.max.ms", &["log.message.timestamp.before.max.ms"]),
    ("message.timestamp.after.max.ms", &["log.message.timestamp.after.max.ms"]),
    ("local.retention.ms", &["log.local.retention.ms"]),
    ("local.retention.bytes", &["log.local.retention.bytes"]),
];

/// Names of the broker keys that feed a topic config, in precedence order (empty if none).
pub fn topic_config_synonyms(name: &str) -> &'static [&'static str] {
    TOPIC_SYNONYM_NAMES
        .iter()
        .find(|(topic, _)| *topic == name)
        .map_or(&[], |(_, syns)| syns)
}

/// The topic default a broker configuration implies: the first synonym that `broker_value`
/// returns a value for, converted to the topic's unit; else the topic config's own default.
/// Returns the value and the broker key it came from (`None` = the topic config's default).
pub fn resolve_topic_default<'a>(
    name: &str,
    broker_value: impl Fn(&str) -> Option<&'a str>,
) -> Option<(String, Option<&'static str>)> {
    for syn in topic_synonyms(name) {
        if let Some(v) = broker_value(syn.name).and_then(|v| syn.to_topic_value(v)) {
            return Some((v, Some(syn.name)));
        }
    }
    topic_config(name).and_then(|c| c.default.map(|d| (d.to_string(), None)))
}

// ---------------------------------------------------------------------------------------------
// Broker configs
// ---------------------------------------------------------------------------------------------

const ROLES: &[&str] = &["broker", "controller"];
const FLUSH_POLICIES: &[&str] = &["kafka", "fsync"];
const SSL_CLIENT_AUTH: &[&str] = &["required", "requested", "none"];
const RECORDING_LEVELS: &[&str] = &["INFO", "DEBUG", "TRACE"];
const REBALANCE_PROTOCOLS: &[&str] = &["classic", "consumer", "share", "streams"];
const MIGRATION_POLICIES: &[&str] = &["enabled", "disabled", "upgrade", "downgrade", "bidirectional"];
const DEFAULT_PROTOCOL_MAP: &str = "SASL_SSL:SASL_SSL,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT";

/// The broker configs Runnel knows: Kafka 4.x `KafkaConfig` keys that people put in
/// `server.properties` and compose files, plus Runnel's own (`log.flush.policy`, `runnel.*`).
/// `read_only` marks keys Kafka cannot change dynamically.
#[rustfmt::skip]
pub static BROKER_CONFIGS: &[ConfigDef] = &[
    // --- Runnel's own -------------------------------------------------------------------------
    d("log.flush.policy", T, Some("kafka"), "Runnel: 'kafka' uses flush.messages/flush.ms; 'fsync' makes acks=all wait for a group-commit fdatasync.").v(Validator::OneOf(FLUSH_POLICIES)).ro(),
    d("runnel.http.listener", T, Some("localhost:9644"), "Runnel: host:port of the HTTP endpoint (/metrics, /healthz, /readyz).").v(Validator::HostPort).ro(),
    d("runnel.topics.file", T, None, "Runnel: topics.yaml applied idempotently at start-up.").ro(),
    d("runnel.acls.file", T, None, "Runnel: acls.yaml applied idempotently at start-up.").ro(),
    d("runnel.metrics.per.partition", B, Some("true"), "Runnel: export per-partition series (log size, offsets, lag); switch off for very high partition counts.").ro(),
    // --- KRaft and identity --------------------------------------------------------------------
    d("process.roles", L, Some("broker,controller"), "Roles of this node: broker, controller, or both.").v(Validator::NonEmptyListOf(ROLES)).ro(),
    d("node.id", I, Some("1"), "Id of this node in the cluster.").v(Validator::AtLeast(0)).ro(),
    d("broker.id", I, Some("-1"), "Old name of node.id; must equal node.id when both are set.").v(Validator::AtLeast(-1)).ro(),
    d("broker.rack", T, None, "Rack of this broker, for rack-aware replica placement.").ro(),
    d("controller.quorum.voters", L, Some(""), "Static controller quorum as id@host:port,...").v(Validator::QuorumVoters).ro(),
    d("controller.quorum.bootstrap.servers", L, Some(""), "host:port of controllers used to discover a dynamic quorum.").v(Validator::HostPortList).ro(),
    d("controller.listener.names", T, None, "Listener names used by controllers; never advertised to clients.").ro(),
    d("controller.quorum.election.timeout.ms", I, Some("1000"), "Time without a leader before a new election.").ro(),
    d("controller.quorum.fetch.timeout.ms", I, Some("2000"), "Time without a successful fetch before a voter becomes a candidate.").ro(),
    d("controller.quorum.election.backoff.max.ms", I, Some("1000"), "Longest back-off before starting a new election.").ro(),
    d("controller.quorum.request.timeout.ms", I, Some("2000"), "Timeout of quorum requests.").ro(),
    d("controller.quorum.retry.backoff.ms", I, Some("20"), "Back-off before retrying a failed quorum request.").ro(),
    d("controller.quorum.append.linger.ms", I, Some("25"), "Time the leader waits to batch metadata appends.").ro(),
    d("metadata.log.dir", T, None, "Directory of the metadata log; defaults to the first log directory.").ro(),
    d("metadata.log.segment.bytes", I, Some("1073741824"), "Segment size of the metadata log.").v(Validator::AtLeast(12)).ro(),
    d("metadata.log.segment.ms", G, Some("604800000"), "Segment age of the metadata log.").ro(),
    d("metadata.max.retention.bytes", G, Some("104857600"), "Metadata log size kept before snapshots let it be cleaned.").ro(),
    d("metadata.max.retention.ms", G, Some("604800000"), "Metadata log age kept before snapshots let it be cleaned.").ro(),
    d("metadata.max.idle.interval.ms", I, Some("500"), "Interval of no-op records written by an idle controller.").v(Validator::AtLeast(0)).ro(),
    d("metadata.log.max.record.bytes.between.snapshots", G, Some("20971520"), "Metadata bytes appended before a new snapshot.").v(Validator::AtLeast(1)).ro(),
    d("metadata.log.max.snapshot.interval.ms", G, Some("3600000"), "Longest time between metadata snapshots.").v(Validator::AtLeast(0)).ro(),
    d("broker.heartbeat.interval.ms", I, Some("2000"), "Interval of broker heartbeats to the controller.").ro(),
    d("broker.session.timeout.ms", I, Some("9000"), "Time without heartbeat before a broker is fenced.").ro(),
    d("initial.broker.registration.timeout.ms", I, Some("60000"), "Time allowed for first registration with the controller.").ro(),
    // --- listeners and network -----------------------------------------------------------------
    d("listeners", T, Some("PLAINTEXT://localhost:9092"), "Addresses to listen on as NAME://host:port; empty host = all interfaces.").v(Validator::Listeners),
    d("advertised.listeners", T, None, "Addresses given to clients; defaults to listeners.").v(Validator::Listeners),
    d("listener.security.protocol.map", T, Some(DEFAULT_PROTOCOL_MAP), "Security protocol of each listener name.").v(Validator::SecurityProtocolMap),
    d("inter.broker.listener.name", T, None, "Listener used between brokers.").ro(),
    d("security.inter.broker.protocol", T, Some("PLAINTEXT"), "Security protocol between brokers when no listener name is set.").v(Validator::OneOfIgnoreCase(SECURITY_PROTOCOLS)).ro(),
    d("early.start.listeners", T, None, "Listeners started before the authorizer is ready.").ro(),
    d("num.network.threads", I, Some("3"), "Threads handling network requests.").v(Validator::AtLeast(1)),
    d("num.io.threads", I, Some("8"), "Threads processing requests.").v(Validator::AtLeast(1)),
    d("background.threads", I, Some("10"), "Threads for background work.").v(Validator::AtLeast(1)),
    d("queued.max.requests", I, Some("500"), "Requests queued before network threads stop reading.").v(Validator::AtLeast(1)).ro(),
    d("queued.max.request.bytes", G, Some("-1"), "Bytes of queued requests before reading stops; -1 is unlimited.").ro(),
    d("socket.send.buffer.bytes", I, Some("102400"), "SO_SNDBUF of sockets; -1 uses the OS default.").ro(),
    d("socket.receive.buffer.bytes", I, Some("102400"), "SO_RCVBUF of sockets; -1 uses the OS default.").ro(),
    d("socket.request.max.bytes", I, Some("104857600"), "Largest request frame accepted.").v(Validator::AtLeast(1)).ro(),
    d("socket.listen.backlog.size", I, Some("50"), "Accept backlog of listening sockets.").v(Validator::AtLeast(1)).ro(),
    d("socket.connection.setup.timeout.ms", G, Some("10000"), "Timeout of outgoing connection set-up.").ro(),
    d("socket.connection.setup.timeout.max.ms", G, Some("30000"), "Largest timeout of outgoing connection set-up.").ro(),
    d("max.connections", I, Some(INT_MAX), "Connections accepted across all listeners.").v(Validator::AtLeast(0)),
    d("max.connections.per.ip", I, Some(INT_MAX), "Connections accepted from one address.").v(Validator::AtLeast(0)),
    d("max.connections.per.ip.overrides", T, Some(""), "Per-address connection limits as host:count,...").ro(),
    d("max.connection.creation.rate", I, Some(INT_MAX), "New connections per second accepted.").v(Validator::AtLeast(0)),
    d("connections.max.idle.ms", G, Some("600000"), "Idle connections are closed after this long.").ro(),
    d("connections.max.reauth.ms", G, Some("0"), "Longest session before re-authentication; 0 disables.").ro(),
    d("request.timeout.ms", I, Some("30000"), "Timeout of the broker's own outgoing requests.").ro(),
    d("fail.fast.on.broker.registration.error", B, Some("false"), "Exit when broker registration fails.").ro(),
    // --- topics and logs (defaults for topic configs) ------------------------------------------
    d("message.max.bytes", I, Some("1048588"), "Largest record batch; default of max.message.bytes.").v(Validator::AtLeast(0)),
    d("num.partitions", I, Some("1"), "Partitions of auto-created topics.").v(Validator::AtLeast(1)).ro(),
    d("default.replication.factor", I, Some("1"), "Replication factor of auto-created topics.").ro(),
    d("auto.create.topics.enable", B, Some("true"), "Create a topic when a client asks for one that does not exist.").ro(),
    d("delete.topic.enable", B, Some("true"), "Allow topics to be deleted.").ro(),
    d("auto.leader.rebalance.enable", B, Some("true"), "Move leadership back to preferred replicas.").ro(),
    d("leader.imbalance.check.interval.seconds", G, Some("300"), "Interval of the preferred-leader check.").v(Validator::AtLeast(1)).ro(),
    d("leader.imbalance.per.broker.percentage", I, Some("10"), "Imbalance allowed before a rebalance is triggered.").ro(),
    d("unclean.leader.election.enable", B, Some("false"), "Broker default of unclean.leader.election.enable."),
    d("min.insync.replicas", I, Some("1"), "Broker default of min.insync.replicas.").v(Validator::AtLeast(1)),
    d("compression.type", T, Some("producer"), "Broker default of compression.type.").v(Validator::OneOf(COMPRESSION_TYPES)),
    d("compression.gzip.level", I, Some("-1"), "Broker default of compression.gzip.level.").v(Validator::GzipLevel),
    d("compression.lz4.level", I, Some("9"), "Broker default of compression.lz4.level.").v(Validator::Between(1, 17)),
    d("compression.zstd.level", I, Some("3"), "Broker default of compression.zstd.level.").v(Validator::Between(-131072, 22)),
    d("log.dir", L, Some("./data"), "Data directory, used when log.dirs is not set.").ro(),
    d("log.dirs", L, None, "Data directories; wins over log.dir.").ro(),
    d("log.segment.bytes", I, Some("1073741824"), "Broker default of segment.bytes.").v(Validator::AtLeast(1048576)),
    d("log.roll.ms", G, None, "Broker default of segment.ms; wins over log.roll.hours."),
    d("log.roll.hours", I, Some("168"), "Broker default of segment.ms, in hours.").v(Validator::AtLeast(1)),
    d("log.roll.jitter.ms", G, None, "Broker default of segment.jitter.ms."),
    d("log.roll.jitter.hours", I, Some("0"), "Broker default of segment.jitter.ms, in hours.").v(Validator::AtLeast(0)),
    d("log.retention.ms", G, None, "Broker default of retention.ms; wins over minutes and hours."),
    d("log.retention.minutes", I, None, "Broker default of retention.ms, in minutes; wins over hours."),
    d("log.retention.hours", I, Some("168"), "Broker default of retention.ms, in hours."),
    d("log.retention.bytes", G, Some("-1"), "Broker default of retention.bytes."),
    d("log.retention.check.interval.ms", G, Some("300000"), "Interval of the retention check.").v(Validator::AtLeast(1)).ro(),
    d("log.cleanup.policy", L, Some("delete"), "Broker default of cleanup.policy.").v(Validator::ListOf(CLEANUP_POLICIES)),
    d("log.index.size.max.bytes", I, Some("10485760"), "Broker default of segment.index.bytes.").v(Validator::AtLeast(4)),
    d("log.index.interval.bytes", I, Some("4096"), "Broker default of index.interval.bytes.").v(Validator::AtLeast(0)),
    d("log.flush.interval.messages", G, Some(LONG_MAX), "Broker default of flush.messages.").v(Validator::AtLeast(1)),
    d("log.flush.interval.ms", G, None, "Broker default of flush.ms."),
    d("log.flush.scheduler.interval.ms", G, Some(LONG_MAX), "Interval of the flush check; also the fallback of flush.ms."),
    d("log.flush.offset.checkpoint.interval.ms", I, Some("60000"), "Interval of recovery-point checkpoints.").v(Validator::AtLeast(0)).ro(),
    d("log.flush.start.offset.checkpoint.interval.ms", I, Some("60000"), "Interval of log-start-offset checkpoints.").v(Validator::AtLeast(0)).ro(),
    d("log.segment.delete.delay.ms", G, Some("60000"), "Broker default of file.delete.delay.ms.").v(Validator::AtLeast(0)),
    d("log.preallocate", B, Some("false"), "Broker default of preallocate."),
    d("log.message.timestamp.type", T, Some("CreateTime"), "Broker default of message.timestamp.type.").v(Validator::OneOf(TIMESTAMP_TYPES)),
    d("log.message.timestamp.before.max.ms", G, Some(LONG_MAX), "Broker default of message.timestamp.before.max.ms.").v(Validator::AtLeast(0)),
    d("log.message.timestamp.after.max.ms", G, Some("3600000"), "Broker default of message.timestamp.after.max.ms.").v(Validator::AtLeast(0)),
    d("log.local.retention.ms", G, Some("-2"), "Broker default of local.retention.ms.").v(Validator::AtLeast(-2)),
    d("log.local.retention.bytes", G, Some("-2"), "Broker default of local.retention.bytes.").v(Validator::AtLeast(-2)),
    d("log.dir.failure.timeout.ms", G, Some("30000"), "Time a failed log directory may stay unreported.").v(Validator::AtLeast(1)).ro(),
    d("num.recovery.threads.per.data.dir", I, Some("2"), "Threads recovering logs at start-up, per directory.").v(Validator::AtLeast(1)),
    d("log.cleaner.enable", B, Some("true"), "Run the log cleaner (needed for compacted topics).").ro(),
    d("log.cleaner.threads", I, Some("1"), "Threads compacting logs.").v(Validator::AtLeast(0)),
    d("log.cleaner.dedupe.buffer.size", G, Some("134217728"), "Memory for key deduplication across cleaner threads."),
    d("log.cleaner.io.buffer.size", I, Some("524288"), "I/O buffer memory across cleaner threads.").v(Validator::AtLeast(0)),
    d("log.cleaner.io.buffer.load.factor", D, Some("0.9"), "Load factor of the dedupe buffer."),
    d("log.cleaner.io.max.bytes.per.second", D, Some("1.7976931348623157E308"), "I/O throttle of the cleaner."),
    d("log.cleaner.backoff.ms", G, Some("15000"), "Sleep of the cleaner when there is nothing to clean.").v(Validator::AtLeast(0)),
    d("log.cleaner.min.cleanable.ratio", D, Some("0.5"), "Broker default of min.cleanable.dirty.ratio.").v(Validator::DoubleBetween(0.0, 1.0)),
    d("log.cleaner.delete.retention.ms", G, Some("86400000"), "Broker default of delete.retention.ms.").v(Validator::AtLeast(0)),
    d("log.cleaner.min.compaction.lag.ms", G, Some("0"), "Broker default of min.compaction.lag.ms.").v(Validator::AtLeast(0)),
    d("log.cleaner.max.compaction.lag.ms", G, Some(LONG_MAX), "Broker default of max.compaction.lag.ms.").v(Validator::AtLeast(1)),
    d("create.topic.policy.class.name", C, None, "Java policy class checked on topic creation (not supported by Runnel).").ro(),
    d("alter.config.policy.class.name", C, None, "Java policy class checked on config changes (not supported by Runnel).").ro(),
    // --- replication -------------------------------------------------------------------------
    d("num.replica.fetchers", I, Some("1"), "Fetcher threads per source broker.").v(Validator::AtLeast(1)),
    d("num.replica.alter.log.dirs.threads", I, None, "Threads moving replicas between log directories.").ro(),
    d("replica.lag.time.max.ms", G, Some("30000"), "A follower that has not caught up for this long leaves the ISR.").ro(),
    d("replica.socket.timeout.ms", I, Some("30000"), "Socket timeout of replica fetches.").ro(),
    d("replica.socket.receive.buffer.bytes", I, Some("65536"), "SO_RCVBUF of replica fetch sockets.").ro(),
    d("replica.fetch.max.bytes", I, Some("1048576"), "Bytes fetched per partition by followers.").v(Validator::AtLeast(0)).ro(),
    d("replica.fetch.wait.max.ms", I, Some("500"), "Longest wait of a follower fetch.").ro(),
    d("replica.fetch.min.bytes", I, Some("1"), "Least bytes a follower fetch waits for.").ro(),
    d("replica.fetch.response.max.bytes", I, Some("10485760"), "Bytes per follower fetch response.").v(Validator::AtLeast(0)).ro(),
    d("replica.fetch.backoff.ms", I, Some("1000"), "Sleep after a failed follower fetch.").v(Validator::AtLeast(0)).ro(),
    d("replica.high.watermark.checkpoint.interval.ms", G, Some("5000"), "Interval of high-watermark checkpoints.").ro(),
    d("replica.selector.class", C, None, "Java class choosing the replica a consumer fetches from.").ro(),
    d("fetch.max.bytes", I, Some("57671680"), "Bytes per consumer fetch response.").v(Validator::AtLeast(1024)).ro(),
    d("fetch.purgatory.purge.interval.requests", I, Some("1000"), "Purge interval of the delayed-fetch purgatory.").ro(),
    d("producer.purgatory.purge.interval.requests", I, Some("1000"), "Purge interval of the delayed-produce purgatory.").ro(),
    d("delete.records.purgatory.purge.interval.requests", I, Some("1"), "Purge interval of the delete-records purgatory.").ro(),
    d("max.incremental.fetch.session.cache.slots", I, Some("1000"), "Fetch sessions kept per broker.").v(Validator::AtLeast(0)).ro(),
    d("leader.replication.throttled.rate", G, Some(LONG_MAX), "Replication throttle on leaders, in bytes/s."),
    d("follower.replication.throttled.rate", G, Some(LONG_MAX), "Replication throttle on followers, in bytes/s."),
    d("replica.alter.log.dirs.io.max.bytes.per.second", G, Some(LONG_MAX), "Throttle of moves between log directories."),
    // --- group coordinator --------------------------------------------------------------------
    d("offsets.topic.num.partitions", I, Some("50"), "Partitions of __consumer_offsets.").v(Validator::AtLeast(1)).ro(),
    d("offsets.topic.replication.factor", S, Some("1"), "Replication factor of __consumer_offsets.").v(Validator::AtLeast(1)).ro(),
    d("offsets.topic.segment.bytes", I, Some("104857600"), "Segment size of __consumer_offsets.").v(Validator::AtLeast(1)).ro(),
    d("offsets.topic.compression.codec", I, Some("0"), "Codec of offset commits (0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd).").v(Validator::Between(0, 4)).ro(),
    d("offsets.load.buffer.size", I, Some("5242880"), "Read batch when loading offsets.").v(Validator::AtLeast(1)).ro(),
    d("offsets.commit.timeout.ms", I, Some("5000"), "Time an offset commit waits for replication.").v(Validator::AtLeast(1)).ro(),
    d("offsets.retention.minutes", I, Some("10080"), "How long offsets of empty groups are kept.").v(Validator::AtLeast(1)).ro(),
    d("offsets.retention.check.interval.ms", G, Some("600000"), "Interval of the stale-offset check.").v(Validator::AtLeast(1)).ro(),
    d("offset.metadata.max.bytes", I, Some("4096"), "Largest metadata string of an offset commit.").ro(),
    d("group.initial.rebalance.delay.ms", I, Some("3000"), "Time a new classic group waits for more members before its first rebalance.").ro(),
    d("group.min.session.timeout.ms", I, Some("6000"), "Smallest session timeout a classic member may ask for.").ro(),
    d("group.max.session.timeout.ms", I, Some("1800000"), "Largest session timeout a classic member may ask for.").ro(),
    d("group.max.size", I, Some(INT_MAX), "Members per classic group.").v(Validator::AtLeast(1)).ro(),
    d("group.coordinator.rebalance.protocols", L, Some("classic,consumer"), "Group protocols enabled.").v(Validator::NonEmptyListOf(REBALANCE_PROTOCOLS)).ro(),
    d("group.coordinator.threads", I, Some("4"), "Threads of the group coordinator.").v(Validator::AtLeast(1)).ro(),
    d("group.coordinator.append.linger.ms", I, Some("5"), "Time the group coordinator waits to batch writes.").v(Validator::AtLeast(0)).ro(),
    d("group.consumer.session.timeout.ms", I, Some("45000"), "Session timeout of consumer-protocol members.").v(Validator::AtLeast(1)).ro(),
    d("group.consumer.min.session.timeout.ms", I, Some("45000"), "Smallest consumer-protocol session timeout.").v(Validator::AtLeast(1)).ro(),
    d("group.consumer.max.session.timeout.ms", I, Some("60000"), "Largest consumer-protocol session timeout.").v(Validator::AtLeast(1)).ro(),
    d("group.consumer.heartbeat.interval.ms", I, Some("5000"), "Heartbeat interval of consumer-protocol members.").v(Validator::AtLeast(1)).ro(),
    d("group.consumer.min.heartbeat.interval.ms", I, Some("5000"), "Smallest consumer-protocol heartbeat interval.").v(Validator::AtLeast(1)).ro(),
    d("group.consumer.max.heartbeat.interval.ms", I, Some("15000"), "Largest consumer-protocol heartbeat interval.").v(Validator::AtLeast(1)).ro(),
    d("group.consumer.max.size", I, Some(INT_MAX), "Members per consumer-protocol group.").v(Validator::AtLeast(1)).ro(),
    d("group.consumer.assignors", L, Some("uniform,range"), "Server-side assignors, preferred first.").ro(),
    d("group.consumer.migration.policy", T, Some("bidirectional"), "Conversion between classic and consumer groups.").v(Validator::OneOfIgnoreCase(MIGRATION_POLICIES)).ro(),
    // --- transactions and producers ------------------------------------------------------------
    d("transaction.state.log.num.partitions", I, Some("50"), "Partitions of __transaction_state.").v(Validator::AtLeast(1)).ro(),
    d("transaction.state.log.replication.factor", S, Some("1"), "Replication factor of __transaction_state.").v(Validator::AtLeast(1)).ro(),
    d("transaction.state.log.min.isr", I, Some("1"), "min.insync.replicas of __transaction_state.").v(Validator::AtLeast(1)).ro(),
    d("transaction.state.log.segment.bytes", I, Some("104857600"), "Segment size of __transaction_state.").v(Validator::AtLeast(1)).ro(),
    d("transaction.state.log.load.buffer.size", I, Some("5242880"), "Read batch when loading transaction state.").v(Validator::AtLeast(1)).ro(),
    d("transaction.max.timeout.ms", I, Some("900000"), "Largest transaction timeout a producer may ask for.").v(Validator::AtLeast(1)).ro(),
    d("transactional.id.expiration.ms", I, Some("604800000"), "Idle time after which a transactional id is forgotten.").v(Validator::AtLeast(1)),
    d("transaction.abort.timed.out.transaction.cleanup.interval.ms", I, Some("10000"), "Interval of the timed-out transaction check.").v(Validator::AtLeast(1)).ro(),
    d("transaction.remove.expired.transaction.cleanup.interval.ms", I, Some("3600000"), "Interval of the expired transactional id check.").v(Validator::AtLeast(1)).ro(),
    d("transaction.partition.verification.enable", B, Some("true"), "Verify partitions are in a transaction before writing (KIP-890)."),
    d("producer.id.expiration.ms", I, Some("86400000"), "Idle time after which producer id state is dropped.").v(Validator::AtLeast(1)),
    d("producer.id.expiration.check.interval.ms", I, Some("600000"), "Interval of the producer id expiry check.").v(Validator::AtLeast(1)).ro(),
    // --- security ----------------------------------------------------------------------------
    d("authorizer.class.name", T, Some(""), "Authorizer; set to enable ACL checks.").ro(),
    d("super.users", T, None, "Principals allowed everything, as User:a;User:b.").ro(),
    d("allow.everyone.if.no.acl.found", B, Some("false"), "Allow access to resources that have no ACLs.").ro(),
    d("principal.builder.class", C, Some("org.apache.kafka.common.security.authenticator.DefaultKafkaPrincipalBuilder"), "How principals are built from connections.").ro(),
    d("ssl.protocol", T, Some("TLSv1.3"), "TLS protocol used to build the TLS context."),
    d("ssl.enabled.protocols", L, Some("TLSv1.2,TLSv1.3"), "TLS versions accepted."),
    d("ssl.cipher.suites", L, Some(""), "Cipher suites accepted; empty means the library defaults."),
    d("ssl.client.auth", T, Some("none"), "Whether clients must present a certificate.").v(Validator::OneOf(SSL_CLIENT_AUTH)),
    d("ssl.keystore.type", T, Some("JKS"), "Format of the key store (PEM supported by Runnel)."),
    d("ssl.keystore.location", T, None, "Path of the key store."),
    d("ssl.keystore.password", P, None, "Password of the key store."),
    d("ssl.key.password", P, None, "Password of the private key."),
    d("ssl.keystore.key", P, None, "PEM private key given inline."),
    d("ssl.keystore.certificate.chain", P, None, "PEM certificate chain given inline."),
    d("ssl.truststore.type", T, Some("JKS"), "Format of the trust store (PEM supported by Runnel)."),
    d("ssl.truststore.location", T, None, "Path of the trust store."),
    d("ssl.truststore.password", P, None, "Password of the trust store."),
    d("ssl.truststore.certificates", P, None, "PEM trusted certificates given inline."),
    d("ssl.endpoint.identification.algorithm", T, Some("https"), "Host name verification of peers; empty disables."),
    d("ssl.keymanager.algorithm", T, Some("SunX509"), "Java key manager algorithm (ignored by Runnel)."),
    d("ssl.trustmanager.algorithm", T, Some("PKIX"), "Java trust manager algorithm (ignored by Runnel)."),
    d("ssl.secure.random.implementation", T, None, "Java SecureRandom implementation (ignored by Runnel)."),
    d("ssl.provider", T, None, "Java security provider (ignored by Runnel)."),
    d("ssl.engine.factory.class", C, None, "Java SSL engine factory (ignored by Runnel)."),
    d("ssl.principal.mapping.rules", T, Some("DEFAULT"), "Rules mapping certificate names to principals.").ro(),
    d("ssl.allow.dn.changes", B, Some("false"), "Allow a reloaded certificate to change its DN."),
    d("ssl.allow.san.changes", B, Some("false"), "Allow a reloaded certificate to change its SANs."),
    d("sasl.enabled.mechanisms", L, Some("GSSAPI"), "SASL mechanisms offered to clients."),
    d("sasl.mechanism.inter.broker.protocol", T, Some("GSSAPI"), "SASL mechanism between brokers."),
    d("sasl.mechanism.controller.protocol", T, Some("GSSAPI"), "SASL mechanism towards controllers.").ro(),
    d("sasl.jaas.config", P, None, "JAAS login configuration (users for PLAIN live here)."),
    d("sasl.server.callback.handler.class", C, None, "Java SASL server callback handler."),
    d("sasl.client.callback.handler.class", C, None, "Java SASL client callback handler."),
    d("sasl.login.class", C, None, "Java SASL login class."),
    d("sasl.login.callback.handler.class", C, None, "Java SASL login callback handler."),
    d("sasl.server.max.receive.size", I, Some("524288"), "Largest frame before authentication completes.").ro(),
    d("sasl.kerberos.service.name", T, None, "Kerberos service name."),
    d("sasl.kerberos.principal.to.local.rules", L, Some("DEFAULT"), "Rules mapping Kerberos principals to short names."),
    d("sasl.kerberos.kinit.cmd", T, Some("/usr/bin/kinit"), "kinit command path."),
    d("sasl.kerberos.min.time.before.relogin", G, Some("60000"), "Least time between Kerberos relogins."),
    d("sasl.kerberos.ticket.renew.jitter", D, Some("0.05"), "Jitter of Kerberos ticket renewal."),
    d("sasl.kerberos.ticket.renew.window.factor", D, Some("0.8"), "When to renew a Kerberos ticket."),
    d("sasl.login.refresh.window.factor", D, Some("0.8"), "When to refresh a login credential.").v(Validator::DoubleBetween(0.5, 1.0)),
    d("sasl.login.refresh.window.jitter", D, Some("0.05"), "Jitter of credential refresh.").v(Validator::DoubleBetween(0.0, 0.25)),
    d("sasl.login.refresh.min.period.seconds", S, Some("60"), "Least time between credential refreshes.").v(Validator::Between(0, 900)),
    d("sasl.login.refresh.buffer.seconds", S, Some("300"), "Refresh this long before expiry.").v(Validator::Between(0, 3600)),
    d("sasl.oauthbearer.jwks.endpoint.url", T, None, "JWKS URL (or file:) used to verify OAUTHBEARER tokens.").ro(),
    d("sasl.oauthbearer.jwks.endpoint.refresh.ms", G, Some("3600000"), "Refresh interval of the JWKS.").ro(),
    d("sasl.oauthbearer.expected.audience", L, None, "Audiences a token must name.").ro(),
    d("sasl.oauthbearer.expected.issuer", T, None, "Issuer a token must name.").ro(),
    d("sasl.oauthbearer.sub.claim.name", T, Some("sub"), "Claim naming the principal.").ro(),
    d("sasl.oauthbearer.scope.claim.name", T, Some("scope"), "Claim holding the scopes.").ro(),
    d("sasl.oauthbearer.clock.skew.seconds", I, Some("30"), "Clock skew allowed when checking tokens.").ro(),
    d("sasl.oauthbearer.token.endpoint.url", T, None, "Token endpoint used by the broker's own logins.").ro(),
    d("delegation.token.secret.key", P, None, "Secret used to sign delegation tokens.").ro(),
    d("delegation.token.max.lifetime.ms", G, Some("604800000"), "Longest lifetime of a delegation token.").v(Validator::AtLeast(1)).ro(),
    d("delegation.token.expiry.time.ms", G, Some("86400000"), "Renewal interval of delegation tokens.").v(Validator::AtLeast(1)).ro(),
    // --- quotas, metrics, misc -----------------------------------------------------------------
    d("client.quota.callback.class", C, None, "Java quota callback (not supported by Runnel).").ro(),
    d("quota.window.num", I, Some("11"), "Samples kept for client quotas.").v(Validator::AtLeast(1)).ro(),
    d("quota.window.size.seconds", I, Some("1"), "Span of one client quota sample.").v(Validator::AtLeast(1)).ro(),
    d("replication.quota.window.num", I, Some("11"), "Samples kept for replication quotas.").v(Validator::AtLeast(1)).ro(),
    d("replication.quota.window.size.seconds", I, Some("1"), "Span of one replication quota sample.").v(Validator::AtLeast(1)).ro(),
    d("metric.reporters", L, Some(""), "Java metric reporters (ignored; Runnel serves /metrics).").ro(),
    d("metrics.num.samples", I, Some("2"), "Samples kept per metric.").v(Validator::AtLeast(1)).ro(),
    d("metrics.sample.window.ms", G, Some("30000"), "Span of one metric sample.").v(Validator::AtLeast(1)).ro(),
    d("metrics.recording.level", T, Some("INFO"), "Level of metrics recorded.").v(Validator::OneOf(RECORDING_LEVELS)).ro(),
    d("kafka.metrics.reporters", L, Some(""), "Yammer metric reporters (ignored).").ro(),
    d("kafka.metrics.polling.interval.secs", I, Some("10"), "Polling interval of Yammer reporters.").v(Validator::AtLeast(1)).ro(),
    d("telemetry.max.bytes", I, Some("1048576"), "Largest client telemetry push.").v(Validator::AtLeast(1)).ro(),
    d("config.providers", L, Some(""), "Java config providers (not supported by Runnel).").ro(),
    d("remote.log.storage.system.enable", B, Some("false"), "Enable tiered storage on this broker.").ro(),
    d("reserved.broker.max.id", I, Some("1000"), "Old ZooKeeper-era id ceiling; accepted for compatibility.").v(Validator::AtLeast(0)).ro(),
    d("unstable.api.versions.enable", B, Some("false"), "Advertise API versions still in development.").ro(),
    d("unstable.feature.versions.enable", B, Some("false"), "Allow feature versions still in development.").ro(),
];

/// Looks up a broker config. A per-listener override `listener.name.<listener>.<key>` (and the
/// per-mechanism form `listener.name.<listener>.<mechanism>.<key>` used for SASL settings)
/// resolves to the definition of `<key>`.
pub fn broker_config(name: &str) -> Option<&'static ConfigDef> {
    if let Some(def) = BROKER_CONFIGS.iter().find(|c| c.name == name) {
        return Some(def);
    }
    let rest = name.strip_prefix("listener.name.")?;
    let (_listener, key) = rest.split_once('.')?;
    if let Some(def) = BROKER_CONFIGS.iter().find(|c| c.name == key) {
        return Some(def);
    }
    // `<mechanism>.<key>`, e.g. `plain.sasl.jaas.config`, `scram-sha-256.sasl.jaas.config`.
    let (_mechanism, key) = key.split_once('.')?;
    BROKER_CONFIGS
        .iter()
        .find(|c| c.name == key && key.starts_with("sasl."))
}

/// Validates a broker config value. Unknown keys are an `Err` here; the loader turns them into
/// warnings instead.
pub fn validate_broker_config(name: &str, value: &str) -> Result<(), String> {
    match broker_config(name) {
        // Per-listener keys report the key the user wrote, not the base key.
        Some(def) => def.validate_as(name, value),
        None => Err(format!("Unknown broker config name: {name}")),
    }
}

/// Synonyms of a broker config for DescribeConfigs (`include_synonyms`), strongest first, the
/// key itself included: `listener.name.<l>.<key>` → itself then `<key>`; a key of a unit family
/// (`log.retention.{ms,minutes,hours}`, `log.roll.*`, `log.roll.jitter.*`, `log.flush.interval.ms`
/// with `log.flush.scheduler.interval.ms`) → the whole family; anything else → itself.
pub fn broker_config_synonyms(name: &str) -> Vec<&str> {
    if let Some(def) = broker_config(name).filter(|d| d.name != name) {
        return vec![name, def.name];
    }
    let family = TOPIC_SYNONYM_NAMES
        .iter()
        .map(|(_, names)| *names)
        .find(|names| names.len() > 1 && names.contains(&name));
    match family {
        Some(names) => names.to_vec(),
        None => vec![name],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_default_parses_under_its_own_validator() {
        for def in TOPIC_CONFIGS.iter().chain(BROKER_CONFIGS) {
            if let Some(default) = def.default {
                assert_eq!(def.validate(default), Ok(()), "default of {}", def.name);
            }
        }
    }

    #[test]
    fn names_are_unique() {
        for table in [TOPIC_CONFIGS, BROKER_CONFIGS] {
            for (i, a) in table.iter().enumerate() {
                assert!(table[i + 1..].iter().all(|b| b.name != a.name), "duplicate {}", a.name);
            }
        }
    }

    #[test]
    fn every_synonym_is_a_known_broker_config_with_a_compatible_default() {
        for (topic, syns) in TOPIC_SYNONYMS {
            let tdef = topic_config(topic).expect(topic);
            let names: Vec<&str> = syns.iter().map(|s| s.name).collect();
            assert_eq!(topic_config_synonyms(topic), names.as_slice(), "{topic}");
            for syn in *syns {
                let bdef = broker_config(syn.name).expect(syn.name);
                if let Some(v) = bdef.default.and_then(|d| syn.to_topic_value(d)) {
                    assert_eq!(tdef.validate(&v), Ok(()), "{topic} <- {}", syn.name);
                }
            }
        }
        assert_eq!(TOPIC_SYNONYMS.len(), TOPIC_SYNONYM_NAMES.len());
    }

    #[test]
    fn broker_defaults_imply_kafka_topic_defaults() {
        // With no broker overrides, resolving through synonyms gives the topic's own default.
        for def in TOPIC_CONFIGS {
            let got = resolve_topic_default(def.name, |k| broker_config(k).and_then(|c| c.default));
            assert_eq!(got.map(|g| g.0), def.default.map(str::to_string), "{}", def.name);
        }
    }

    #[test]
    fn retention_synonyms_convert_units_in_precedence_order() {
        let only_hours = |k: &str| (k == "log.retention.hours").then_some("1");
        assert_eq!(
            resolve_topic_default("retention.ms", only_hours),
            Some(("3600000".into(), Some("log.retention.hours")))
        );
        let minutes_and_hours = |k: &str| match k {
            "log.retention.minutes" => Some("2"),
            "log.retention.hours" => Some("1"),
            _ => None,
        };
        assert_eq!(
            resolve_topic_default("retention.ms", minutes_and_hours).map(|r| r.0),
            Some("120000".into())
        );
        assert_eq!(
            resolve_topic_default("retention.ms", |_| None),
            Some(("604800000".into(), None))
        );
        assert_eq!(topic_config_synonyms("segment.bytes"), &["log.segment.bytes"]);
        assert_eq!(topic_config_synonyms("max.message.bytes"), &["message.max.bytes"]);
        assert!(topic_config_synonyms("remote.storage.enable").is_empty());
    }

    #[test]
    fn topic_validation_accepts_and_rejects_like_kafka() {
        let ok = [
            ("cleanup.policy", "compact,delete"),
            ("cleanup.policy", "compact"),
            ("cleanup.policy", " delete , compact "),
            ("compression.type", "zstd"),
            ("segment.bytes", "1048576"),
            ("retention.ms", "-1"),
            ("retention.bytes", "-1"),
            ("min.insync.replicas", "2"),
            ("message.timestamp.type", "LogAppendTime"),
            ("preallocate", "TRUE"),
            ("min.cleanable.dirty.ratio", "0.01"),
            ("compression.gzip.level", "-1"),
            ("compression.gzip.level", "9"),
            ("compression.zstd.level", "-5"),
            ("leader.replication.throttled.replicas", "*"),
            ("leader.replication.throttled.replicas", "0:1,1:2"),
        ];
        for (k, v) in ok {
            assert_eq!(validate_topic_config(k, v), Ok(()), "{k}={v}");
        }
        let bad = [
            ("cleanup.policy", "compacted"),
            ("compression.type", "brotli"),
            ("compression.type", "ZSTD"),
            ("segment.bytes", "1048575"),
            ("segment.bytes", "2147483648"),
            ("segment.bytes", "1GB"),
            ("retention.ms", "-2"),
            ("min.insync.replicas", "0"),
            ("message.timestamp.type", "createtime"),
            ("preallocate", "yes"),
            ("min.cleanable.dirty.ratio", "1.5"),
            ("min.cleanable.dirty.ratio", "NaN"),
            ("compression.gzip.level", "0"),
            ("compression.lz4.level", "18"),
            ("leader.replication.throttled.replicas", "0-1"),
            ("no.such.config", "1"),
        ];
        for (k, v) in bad {
            let err = validate_topic_config(k, v).expect_err(k);
            assert!(err.contains(k), "{err}");
        }
    }

    #[test]
    fn error_names_key_and_value_but_hides_secrets() {
        let err = validate_topic_config("segment.bytes", "12").unwrap_err();
        assert!(err.contains("segment.bytes") && err.contains("12"), "{err}");
        // Passwords accept anything, so check the hiding directly.
        assert!(!invalid("ssl.key.password", "hunter2", true, "x").contains("hunter2"));
    }

    #[test]
    fn broker_validation_and_listener_prefixes() {
        assert_eq!(validate_broker_config("num.partitions", "3"), Ok(()));
        assert!(validate_broker_config("num.partitions", "0").is_err());
        assert!(validate_broker_config("process.roles", "broker,leader").is_err());
        assert!(validate_broker_config("process.roles", "").is_err());
        assert!(validate_broker_config("zookeeper.connect", "zk:2181").is_err());
        let def = broker_config("listener.name.sasl_ssl.plain.sasl.jaas.config").expect("jaas");
        assert!(def.sensitive);
        let def = broker_config("listener.name.internal.ssl.keystore.location").expect("ssl");
        assert_eq!(def.name, "ssl.keystore.location");
        let err = validate_broker_config("listener.name.external.ssl.client.auth", "maybe").unwrap_err();
        assert!(err.contains("listener.name.external.ssl.client.auth"), "{err}");
        assert!(broker_config("listener.name.x.no.such").is_none());
    }

    #[test]
    fn broker_synonyms_for_describe_configs() {
        assert_eq!(
            broker_config_synonyms("log.retention.hours"),
            ["log.retention.ms", "log.retention.minutes", "log.retention.hours"]
        );
        assert_eq!(broker_config_synonyms("log.roll.ms"), ["log.roll.ms", "log.roll.hours"]);
        assert_eq!(
            broker_config_synonyms("listener.name.internal.ssl.keystore.location"),
            ["listener.name.internal.ssl.keystore.location", "ssl.keystore.location"]
        );
        assert_eq!(broker_config_synonyms("num.partitions"), ["num.partitions"]);
        assert_eq!(broker_config_synonyms("log.segment.bytes"), ["log.segment.bytes"]);
    }

    #[test]
    fn listeners_parse_names_hosts_and_ipv6() {
        let got = parse_listeners("PLAINTEXT://:9092,ssl://[::1]:9093, INTERNAL://kafka-0:29092").expect("parse");
        assert_eq!(
            got,
            vec![
                ListenerSpec {
                    name: "PLAINTEXT".into(),
                    host: "".into(),
                    port: 9092
                },
                ListenerSpec {
                    name: "SSL".into(),
                    host: "::1".into(),
                    port: 9093
                },
                ListenerSpec {
                    name: "INTERNAL".into(),
                    host: "kafka-0".into(),
                    port: 29092
                },
            ]
        );
        for bad in [
            "localhost:9092",
            "PLAINTEXT://localhost",
            "PLAINTEXT://localhost:99999",
            "PLAINTEXT://::1:9092",
            "PLAINTEXT://[::1:9092",
            "A://h:1,a://h:2",
            "BAD-NAME://h:1",
        ] {
            assert!(parse_listeners(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn protocol_map_and_voters_parse() {
        let map = parse_security_protocol_map("CONTROLLER:PLAINTEXT,PLAINTEXT_HOST:plaintext").expect("map");
        assert_eq!(map[1], ("PLAINTEXT_HOST".into(), "PLAINTEXT".into()));
        assert!(parse_security_protocol_map("X:TLS").is_err());
        assert!(parse_security_protocol_map("X").is_err());
        let voters = parse_quorum_voters("1@kafka-1:9093,2@[::1]:9093").expect("voters");
        assert_eq!(
            voters[1],
            QuorumVoter {
                node_id: 2,
                host: "::1".into(),
                port: 9093
            }
        );
        for bad in ["1@:9093", "x@h:1", "1@h", "1@h:1,1@g:2", "-1@h:1"] {
            assert!(parse_quorum_voters(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn numeric_types_respect_their_width() {
        assert!(validate_broker_config("offsets.topic.replication.factor", "32768").is_err());
        assert_eq!(
            validate_broker_config("offsets.topic.replication.factor", " 3 "),
            Ok(())
        );
        assert!(validate_broker_config("message.max.bytes", "2147483648").is_err());
        assert_eq!(
            validate_broker_config("log.retention.ms", "9223372036854775807"),
            Ok(())
        );
        assert!(validate_broker_config("log.retention.ms", "9223372036854775808").is_err());
    }

    #[test]
    fn type_codes_match_describe_configs() {
        assert_eq!(ConfigType::Boolean.describe_code(), 1);
        assert_eq!(ConfigType::Password.describe_code(), 9);
        assert_eq!(topic_config("segment.bytes").map(|c| c.kind), Some(ConfigType::Int));
    }
}
