//! Broker configuration: loading, precedence, validation and typed access, plus the storage
//! directory's `meta.properties` (cluster id and node id).
//!
//! Owns: reading `server.properties` (Java `.properties` syntax), mapping `KAFKA_*` environment
//! variables to keys the way the `apache/kafka` image does (and Bitnami's `KAFKA_CFG_*`),
//! applying CLI overrides, recording where every effective value came from (for
//! DescribeConfigs), and checking/writing `meta.properties` in each storage directory.
//!
//! Must never: read the process environment by itself (the caller passes it in, so tests never
//! touch it), fail on a key it does not know (one warning instead), or echo a sensitive value in
//! an error or warning.
//!
//! Invariants:
//! - precedence is embedded defaults < file < environment < overrides, one value per key;
//! - every known key's effective value has passed `runnel_metadata::configs` validation;
//! - a storage directory whose `meta.properties` names another cluster or node is never used.
//!
//! Choices where Kafka leaves room:
//! - `advertised.listeners` defaults to `listeners` minus the controller listeners, with an empty
//!   or `0.0.0.0`/`::` host replaced by `LoadOptions::default_advertised_host`, else `localhost`
//!   (deterministic; Kafka would use the machine's canonical host name, which in a container is
//!   rarely reachable by clients anyway);
//! - controller listener names missing from `listener.security.protocol.map` are `PLAINTEXT`;
//! - `metadata_log_dir` is `metadata.log.dir` or the first log directory (as in Kafka); the
//!   metadata log itself lives in `<metadata_log_dir>/__cluster_metadata-0`.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use runnel_metadata::configs::{self, ConfigDef, ListenerSpec, QuorumVoter};

/// Largest `server.properties` / `meta.properties` we read. Real ones are a few KiB.
const PROPERTIES_FILE_MAX_BYTES: u64 = 4 * 1024 * 1024;

/// Environment variables of the `apache/kafka` (and Confluent) images that tune the JVM or
/// logging rather than the broker; they never become properties.
const IGNORED_ENV: &[&str] = &[
    "KAFKA_HEAP_OPTS",
    "KAFKA_OPTS",
    "KAFKA_JMX_OPTS",
    "KAFKA_JMX_PORT",
    "KAFKA_JMX_HOSTNAME",
    "KAFKA_JVM_PERFORMANCE_OPTS",
    "KAFKA_GC_LOG_OPTS",
    "KAFKA_LOG4J_OPTS",
    "KAFKA_LOG4J_LOGGERS",
    "KAFKA_LOG4J_ROOT_LOGLEVEL",
    "KAFKA_TOOLS_LOG4J_LOGLEVEL",
    "KAFKA_DEBUG",
    "KAFKA_VERSION",
    "KAFKA_HOME",
];

/// Environment variables that carry the cluster id, strongest first (`CLUSTER_ID` is the
/// apache/Confluent convention, the others Bitnami's and a common misspelling).
const CLUSTER_ID_ENV: &[&str] = &["CLUSTER_ID", "KAFKA_KRAFT_CLUSTER_ID", "KAFKA_CLUSTER_ID"];

/// Errors of configuration loading and storage formatting. Each names what to fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: {message}")]
    Syntax { path: PathBuf, message: String },
    /// A known key with a value that does not validate. `message` names key and value.
    #[error("{message} (from {source_name})")]
    InvalidValue {
        key: String,
        message: String,
        source_name: String,
    },
    /// Values that are valid alone but contradict each other.
    #[error("{0}")]
    Inconsistent(String),
    #[error("invalid cluster id {0:?}: expected 22 characters of URL-safe base64 (a Kafka Uuid), e.g. from `runnel cluster new-id` or `kafka-storage.sh random-uuid`")]
    InvalidClusterId(String),
    #[error("{path}: {message}")]
    MetaProperties { path: PathBuf, message: String },
    #[error("storage directory {dir} belongs to cluster {stored} but this node is configured for cluster {configured}; point log.dirs elsewhere or fix CLUSTER_ID")]
    ClusterIdMismatch {
        dir: PathBuf,
        stored: String,
        configured: String,
    },
    #[error("storage directory {dir} was formatted for node.id {stored} but this node has node.id {configured}")]
    NodeIdMismatch { dir: PathBuf, stored: i32, configured: i32 },
}

/// Where an effective value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSource {
    /// The built-in default.
    Default,
    /// `server.properties` (the path).
    File(PathBuf),
    /// An environment variable (its name).
    Env(String),
    /// A CLI `--override`.
    Override,
}

impl ConfigSource {
    /// DescribeConfigs `config_source`: STATIC_BROKER_CONFIG (4) or DEFAULT_CONFIG (5).
    pub fn describe_code(&self) -> i8 {
        match self {
            ConfigSource::Default => 5,
            _ => 4,
        }
    }

    fn label(&self) -> String {
        match self {
            ConfigSource::Default => "default".into(),
            ConfigSource::File(p) => p.display().to_string(),
            ConfigSource::Env(var) => format!("environment variable {var}"),
            ConfigSource::Override => "--override".into(),
        }
    }
}

/// One effective broker config.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigEntry {
    pub key: String,
    /// `None` is a known key with no value (Kafka's `null`).
    pub value: Option<String>,
    pub source: ConfigSource,
    /// `None` for keys Runnel does not know (kept so nothing the user wrote is lost).
    pub def: Option<&'static ConfigDef>,
}

impl ConfigEntry {
    /// Known secrets, and unknown keys whose name suggests one (never shown in full).
    pub fn is_sensitive(&self) -> bool {
        match self.def {
            Some(d) => d.sensitive,
            None => {
                let key = self.key.to_ascii_lowercase();
                ["password", "secret", "jaas", ".key"].iter().any(|w| key.contains(w))
            }
        }
    }
}

/// Inputs of `BrokerConfig::load`.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// `server.properties`, if any.
    pub file: Option<PathBuf>,
    /// The environment (all of it or just `KAFKA_*`/`CLUSTER_ID`); see `process_env`.
    pub env: Vec<(String, String)>,
    /// CLI `--override key=value`, applied last, in order.
    pub overrides: Vec<(String, String)>,
    /// Host advertised for listeners bound to all interfaces; `None` means `localhost`.
    pub default_advertised_host: Option<String>,
}

/// The environment variables `load` looks at, read from the process. Only the binary calls this.
pub fn process_env() -> Vec<(String, String)> {
    std::env::vars()
        .filter(|(k, _)| k.starts_with("KAFKA_") || CLUSTER_ID_ENV.contains(&k.as_str()))
        .collect()
}

/// Kafka's security protocols.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SecurityProtocol {
    Plaintext,
    Ssl,
    SaslPlaintext,
    SaslSsl,
}

impl SecurityProtocol {
    fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_uppercase().as_str() {
            "PLAINTEXT" => Some(Self::Plaintext),
            "SSL" => Some(Self::Ssl),
            "SASL_PLAINTEXT" => Some(Self::SaslPlaintext),
            "SASL_SSL" => Some(Self::SaslSsl),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Plaintext => "PLAINTEXT",
            Self::Ssl => "SSL",
            Self::SaslPlaintext => "SASL_PLAINTEXT",
            Self::SaslSsl => "SASL_SSL",
        }
    }

    pub fn uses_tls(self) -> bool {
        matches!(self, Self::Ssl | Self::SaslSsl)
    }

    pub fn uses_sasl(self) -> bool {
        matches!(self, Self::SaslPlaintext | Self::SaslSsl)
    }
}

/// A listener: `NAME://host:port` with its security protocol resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    /// Upper-case, as Kafka normalises it.
    pub name: String,
    /// Empty means all interfaces. IPv6 without brackets.
    pub host: String,
    pub port: u16,
    pub security_protocol: SecurityProtocol,
}

impl Listener {
    /// `host:port` to bind; all interfaces is `0.0.0.0` (IPv4 wildcard, works without IPv6).
    pub fn bind_address(&self) -> String {
        match self.host.as_str() {
            "" => format!("0.0.0.0:{}", self.port),
            h if h.contains(':') => format!("[{h}]:{}", self.port),
            h => format!("{h}:{}", self.port),
        }
    }
}

/// Which roles this node runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessRoles {
    pub broker: bool,
    pub controller: bool,
}

/// `log.flush.policy`: Kafka's interval flushing, or group-commit fsync before acks=all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushPolicy {
    Kafka,
    Fsync,
}

/// Broker-wide log defaults (each is the broker default of a topic config).
#[derive(Debug, Clone, PartialEq)]
pub struct LogDefaults {
    pub segment_bytes: i32,
    /// From log.roll.ms / log.roll.hours.
    pub segment_ms: i64,
    /// From log.retention.ms / minutes / hours; -1 is unlimited.
    pub retention_ms: i64,
    pub retention_bytes: i64,
    pub cleanup_policy: Vec<String>,
    pub flush_policy: FlushPolicy,
    pub flush_messages: i64,
    /// From log.flush.interval.ms / log.flush.scheduler.interval.ms.
    pub flush_ms: i64,
    pub retention_check_interval_ms: i64,
    /// log.segment.delete.delay.ms, the broker default of file.delete.delay.ms.
    pub file_delete_delay_ms: i64,
    pub index_interval_bytes: i32,
    pub segment_index_bytes: i32,
    pub min_insync_replicas: i32,
    pub compression_type: String,
    pub message_timestamp_type: String,
    pub preallocate: bool,
}

/// The loaded, validated broker configuration.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    pub node_id: i32,
    pub process_roles: ProcessRoles,
    /// Every listener, controller ones included.
    pub listeners: Vec<Listener>,
    /// What clients are told (controller listeners are never here).
    pub advertised_listeners: Vec<Listener>,
    pub listener_security_protocol_map: Vec<(String, SecurityProtocol)>,
    /// Never advertised to clients.
    pub controller_listener_names: Vec<String>,
    pub inter_broker_listener_name: String,
    pub controller_quorum_voters: Vec<QuorumVoter>,
    pub controller_quorum_bootstrap_servers: Vec<(String, u16)>,
    /// `log.dirs`, else `log.dir`.
    pub log_dirs: Vec<PathBuf>,
    /// `metadata.log.dir`, else the first log dir.
    pub metadata_log_dir: PathBuf,
    pub num_partitions: i32,
    pub default_replication_factor: i16,
    pub auto_create_topics_enable: bool,
    pub delete_topic_enable: bool,
    pub log: LogDefaults,
    pub message_max_bytes: i32,
    pub socket_request_max_bytes: i32,
    pub offsets_topic_num_partitions: i32,
    pub offsets_topic_replication_factor: i16,
    pub transaction_state_log_num_partitions: i32,
    pub transaction_state_log_replication_factor: i16,
    pub transaction_max_timeout_ms: i32,
    pub group_initial_rebalance_delay_ms: i32,
    pub group_min_session_timeout_ms: i32,
    pub group_max_session_timeout_ms: i32,
    /// Runnel's HTTP endpoint (metrics, health) as `host:port`.
    pub http_listener: String,
    pub topics_file: Option<PathBuf>,
    pub acls_file: Option<PathBuf>,
    pub transaction_state_log_min_isr: i32,
    /// `super.users`, split on `;` (e.g. `User:admin`).
    pub super_users: Vec<String>,
    pub allow_everyone_if_no_acl_found: bool,
    /// `sasl.enabled.mechanisms`, upper-cased.
    pub sasl_enabled_mechanisms: Vec<String>,
    /// From `CLUSTER_ID` (or Bitnami's `KAFKA_KRAFT_CLUSTER_ID`); used when formatting storage.
    pub cluster_id: Option<String>,
    entries: BTreeMap<String, ConfigEntry>,
}

impl BrokerConfig {
    /// Loads defaults < file < env < overrides, validates, and builds the typed view.
    /// Returns the warnings (one per unknown key) beside the config.
    pub fn load(opts: LoadOptions) -> Result<(BrokerConfig, Vec<String>), ConfigError> {
        let mut layers = Layers::with_defaults();
        if let Some(path) = &opts.file {
            let text = read_limited(path)?;
            let pairs = parse_properties(&text).map_err(|message| ConfigError::Syntax {
                path: path.clone(),
                message,
            })?;
            for (k, v) in pairs {
                layers.set(k, v, ConfigSource::File(path.clone()));
            }
        }
        let cluster_id = cluster_id_from_env(&opts.env);
        for (var, key, value) in env_properties(&opts.env) {
            layers.set(key, value, ConfigSource::Env(var));
        }
        for (k, v) in opts.overrides {
            layers.set(k, v, ConfigSource::Override);
        }
        let warnings = layers.validate()?;
        let mut cfg = Typed::new(&layers.entries).build(&opts.default_advertised_host)?;
        cfg.cluster_id = cluster_id;
        cfg.entries = layers.entries;
        Ok((cfg, warnings))
    }

    /// The effective value of a key (`None` if unset with no default, or unknown and unset).
    pub fn effective(&self, key: &str) -> Option<&str> {
        self.entries.get(key).and_then(|e| e.value.as_deref())
    }

    /// One entry, with its source.
    pub fn entry(&self, key: &str) -> Option<&ConfigEntry> {
        self.entries.get(key)
    }

    /// Every known key (with its effective value or null) and every unknown key that was set,
    /// in key order.
    pub fn entries(&self) -> impl Iterator<Item = &ConfigEntry> {
        self.entries.values()
    }

    /// The broker default of a topic config and the broker key that supplied it (`None` when
    /// only the topic config's own default applies), through Kafka's synonyms.
    pub fn topic_default(&self, topic_key: &str) -> Option<(String, Option<&'static str>)> {
        configs::resolve_topic_default(topic_key, |k| self.effective(k))
    }

    /// Whether `name` is a controller listener (never advertised to clients).
    pub fn is_controller_listener(&self, name: &str) -> bool {
        self.controller_listener_names
            .iter()
            .any(|n| n.eq_ignore_ascii_case(name))
    }

    /// Formats (or checks) every storage directory — the log dirs and the metadata dir — and
    /// returns the cluster id they share.
    pub fn ensure_storage_formatted(&self) -> Result<String, ConfigError> {
        let mut dirs: Vec<&Path> = self.log_dirs.iter().map(PathBuf::as_path).collect();
        if !dirs.contains(&self.metadata_log_dir.as_path()) {
            dirs.push(&self.metadata_log_dir);
        }
        // Without a configured id, adopt one already on disk before formatting any new
        // directory, so a new disk added beside formatted ones joins their cluster.
        let mut cluster_id = self.cluster_id.clone();
        if cluster_id.is_none() {
            for dir in &dirs {
                if let Some(meta) = read_meta_properties(dir)? {
                    cluster_id = Some(meta.cluster_id);
                    break;
                }
            }
        }
        for dir in dirs {
            let id = ensure_formatted(dir, self.node_id, cluster_id.as_deref())?;
            cluster_id = Some(id);
        }
        cluster_id.ok_or_else(|| ConfigError::Inconsistent("no storage directory configured".into()))
    }
}

// ---------------------------------------------------------------------------------------------
// Layers: precedence and validation
// ---------------------------------------------------------------------------------------------

struct Layers {
    entries: BTreeMap<String, ConfigEntry>,
}

impl Layers {
    fn with_defaults() -> Self {
        let entries = configs::BROKER_CONFIGS
            .iter()
            .map(|def| {
                let entry = ConfigEntry {
                    key: def.name.to_string(),
                    value: def.default.map(str::to_string),
                    source: ConfigSource::Default,
                    def: Some(def),
                };
                (def.name.to_string(), entry)
            })
            .collect();
        Layers { entries }
    }

    fn set(&mut self, key: String, value: String, source: ConfigSource) {
        let def = configs::broker_config(&key);
        // Kafka trims values before parsing; passwords are kept exactly as written.
        let value = match def {
            Some(d) if d.sensitive => value,
            _ => value.trim().to_string(),
        };
        let entry = ConfigEntry {
            key: key.clone(),
            value: Some(value),
            source,
            def,
        };
        self.entries.insert(key, entry);
    }

    /// Validates every set value; returns one warning per unknown key.
    fn validate(&self) -> Result<Vec<String>, ConfigError> {
        let mut warnings = Vec::new();
        for entry in self.entries.values() {
            let Some(value) = &entry.value else { continue };
            match entry.def {
                None => warnings.push(format!(
                    "ignoring unknown config {} (from {})",
                    entry.key,
                    entry.source.label()
                )),
                Some(_) if entry.source == ConfigSource::Default => {}
                Some(_) => {
                    configs::validate_broker_config(&entry.key, value).map_err(|message| ConfigError::InvalidValue {
                        key: entry.key.clone(),
                        message,
                        source_name: entry.source.label(),
                    })?
                }
            }
        }
        Ok(warnings)
    }
}

/// Maps an environment variable to a property key, or `None` when it is not a broker property:
/// `KAFKA_CFG_X` (Bitnami) or `KAFKA_X` (apache/kafka), `___`→`-`, `__`→`_`, `_`→`.`, lower-case.
pub fn env_var_to_key(var: &str) -> Option<String> {
    if IGNORED_ENV.contains(&var) || CLUSTER_ID_ENV.contains(&var) {
        return None;
    }
    let rest = var.strip_prefix("KAFKA_CFG_").or_else(|| var.strip_prefix("KAFKA_"))?;
    if rest.is_empty() {
        return None;
    }
    let mut out = String::with_capacity(rest.len());
    let mut underscores = 0usize;
    for c in rest.chars().chain(std::iter::once('\0')) {
        if c == '_' {
            underscores += 1;
            continue;
        }
        // Same result as replacing `___`, then `__`, then `_`, left to right.
        out.push_str(&"-".repeat(underscores / 3));
        match underscores % 3 {
            2 => out.push('_'),
            1 => out.push('.'),
            _ => {}
        }
        underscores = 0;
        if c != '\0' {
            out.push(c.to_ascii_lowercase());
        }
    }
    Some(out)
}

/// `(variable, key, value)` for every mapped variable. Bitnami's `KAFKA_CFG_*` come first so the
/// apache form wins when both name the same key.
fn env_properties(env: &[(String, String)]) -> Vec<(String, String, String)> {
    let mut mapped: Vec<(bool, String, String, String)> = env
        .iter()
        .filter_map(|(var, value)| {
            let key = env_var_to_key(var)?;
            Some((!var.starts_with("KAFKA_CFG_"), var.clone(), key, value.clone()))
        })
        .collect();
    mapped.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    mapped.into_iter().map(|(_, v, k, val)| (v, k, val)).collect()
}

fn cluster_id_from_env(env: &[(String, String)]) -> Option<String> {
    CLUSTER_ID_ENV.iter().find_map(|name| {
        env.iter()
            .find(|(k, v)| k == name && !v.trim().is_empty())
            .map(|(_, v)| v.trim().to_string())
    })
}

// ---------------------------------------------------------------------------------------------
// Typed view
// ---------------------------------------------------------------------------------------------

/// Reads typed values out of validated entries. Values were validated, so a parse failure here
/// is a bug in the tables; it is still reported as an error rather than a panic.
struct Typed<'a> {
    entries: &'a BTreeMap<String, ConfigEntry>,
}

impl<'a> Typed<'a> {
    fn new(entries: &'a BTreeMap<String, ConfigEntry>) -> Self {
        Typed { entries }
    }

    fn get(&self, key: &str) -> Option<&'a str> {
        self.entries.get(key).and_then(|e| e.value.as_deref())
    }

    fn is_set(&self, key: &str) -> bool {
        self.entries
            .get(key)
            .is_some_and(|e| e.source != ConfigSource::Default && e.value.is_some())
    }

    fn num<T: std::str::FromStr>(&self, key: &str) -> Result<T, ConfigError> {
        let raw = self.get(key).unwrap_or_default();
        raw.trim().parse::<T>().map_err(|_| ConfigError::InvalidValue {
            key: key.into(),
            message: format!("Invalid value {raw} for configuration {key}"),
            source_name: "typed access".into(),
        })
    }

    fn boolean(&self, key: &str) -> bool {
        self.get(key).and_then(configs::parse_bool).unwrap_or(false)
    }

    fn list(&self, key: &str) -> Vec<String> {
        configs::parse_list(self.get(key).unwrap_or_default())
            .into_iter()
            .map(str::to_string)
            .collect()
    }

    fn topic_num<T: std::str::FromStr>(&self, topic_key: &str) -> Result<T, ConfigError> {
        let resolved = configs::resolve_topic_default(topic_key, |k| self.get(k));
        let raw = resolved.map(|r| r.0).unwrap_or_default();
        raw.parse::<T>().map_err(|_| ConfigError::InvalidValue {
            key: topic_key.into(),
            message: format!("Invalid value {raw} for configuration {topic_key}"),
            source_name: "broker synonyms".into(),
        })
    }

    fn build(&self, advertised_host: &Option<String>) -> Result<BrokerConfig, ConfigError> {
        let node_id = self.node_id()?;
        let process_roles = self.process_roles();
        let net = self.network(advertised_host)?;
        let controller_quorum_voters =
            configs::parse_quorum_voters(self.get("controller.quorum.voters").unwrap_or_default())
                .map_err(ConfigError::Inconsistent)?;
        let mut bootstrap = Vec::new();
        for item in self.list("controller.quorum.bootstrap.servers") {
            bootstrap.push(configs::parse_host_port(&item).map_err(ConfigError::Inconsistent)?);
        }
        check_quorum(node_id, process_roles, &controller_quorum_voters, &bootstrap)?;
        let log_dirs = self.log_dirs()?;
        let metadata_log_dir = self
            .get("metadata.log.dir")
            .map(PathBuf::from)
            .unwrap_or_else(|| log_dirs[0].clone());
        Ok(BrokerConfig {
            node_id,
            process_roles,
            listeners: net.listeners,
            advertised_listeners: net.advertised,
            listener_security_protocol_map: net.protocol_map,
            controller_listener_names: net.controller_names,
            inter_broker_listener_name: net.inter_broker,
            controller_quorum_voters,
            controller_quorum_bootstrap_servers: bootstrap,
            log_dirs,
            metadata_log_dir,
            num_partitions: self.num("num.partitions")?,
            default_replication_factor: self.num("default.replication.factor")?,
            auto_create_topics_enable: self.boolean("auto.create.topics.enable"),
            delete_topic_enable: self.boolean("delete.topic.enable"),
            log: self.log_defaults()?,
            message_max_bytes: self.num("message.max.bytes")?,
            socket_request_max_bytes: self.num("socket.request.max.bytes")?,
            offsets_topic_num_partitions: self.num("offsets.topic.num.partitions")?,
            offsets_topic_replication_factor: self.num("offsets.topic.replication.factor")?,
            transaction_state_log_num_partitions: self.num("transaction.state.log.num.partitions")?,
            transaction_state_log_replication_factor: self.num("transaction.state.log.replication.factor")?,
            transaction_max_timeout_ms: self.num("transaction.max.timeout.ms")?,
            group_initial_rebalance_delay_ms: self.num("group.initial.rebalance.delay.ms")?,
            group_min_session_timeout_ms: self.num("group.min.session.timeout.ms")?,
            group_max_session_timeout_ms: self.num("group.max.session.timeout.ms")?,
            http_listener: self.get("runnel.http.listener").unwrap_or_default().to_string(),
            topics_file: self.get("runnel.topics.file").map(PathBuf::from),
            acls_file: self.get("runnel.acls.file").map(PathBuf::from),
            transaction_state_log_min_isr: self.num("transaction.state.log.min.isr")?,
            super_users: self
                .get("super.users")
                .unwrap_or_default()
                .split(';')
                .map(str::trim)
                .filter(|u| !u.is_empty())
                .map(str::to_string)
                .collect(),
            allow_everyone_if_no_acl_found: self.boolean("allow.everyone.if.no.acl.found"),
            sasl_enabled_mechanisms: self
                .list("sasl.enabled.mechanisms")
                .into_iter()
                .map(|m| m.to_ascii_uppercase())
                .collect(),
            cluster_id: None,
            entries: BTreeMap::new(),
        })
    }

    /// `node.id`, or the legacy `broker.id` when only that is set; both set must agree.
    fn node_id(&self) -> Result<i32, ConfigError> {
        let node_id: i32 = self.num("node.id")?;
        let broker_id: i32 = self.num("broker.id")?;
        match (self.is_set("node.id"), self.is_set("broker.id") && broker_id >= 0) {
            (true, true) if node_id != broker_id => Err(ConfigError::Inconsistent(format!(
                "node.id ({node_id}) and broker.id ({broker_id}) must be equal when both are set"
            ))),
            (false, true) => Ok(broker_id),
            _ => Ok(node_id),
        }
    }

    fn process_roles(&self) -> ProcessRoles {
        let roles = self.list("process.roles");
        ProcessRoles {
            broker: roles.iter().any(|r| r == "broker"),
            controller: roles.iter().any(|r| r == "controller"),
        }
    }

    fn log_dirs(&self) -> Result<Vec<PathBuf>, ConfigError> {
        let key = if self.get("log.dirs").is_some() {
            "log.dirs"
        } else {
            "log.dir"
        };
        let dirs: Vec<PathBuf> = self.list(key).into_iter().map(PathBuf::from).collect();
        if dirs.is_empty() {
            return Err(ConfigError::Inconsistent(format!(
                "{key} must name at least one directory"
            )));
        }
        for (i, d) in dirs.iter().enumerate() {
            if dirs[..i].contains(d) {
                return Err(ConfigError::Inconsistent(format!("{key} names {} twice", d.display())));
            }
        }
        Ok(dirs)
    }

    fn log_defaults(&self) -> Result<LogDefaults, ConfigError> {
        let flush_policy = match self.get("log.flush.policy") {
            Some("fsync") => FlushPolicy::Fsync,
            _ => FlushPolicy::Kafka,
        };
        Ok(LogDefaults {
            segment_bytes: self.topic_num("segment.bytes")?,
            segment_ms: self.topic_num("segment.ms")?,
            retention_ms: self.topic_num("retention.ms")?,
            retention_bytes: self.topic_num("retention.bytes")?,
            cleanup_policy: self.list("log.cleanup.policy"),
            flush_policy,
            flush_messages: self.topic_num("flush.messages")?,
            flush_ms: self.topic_num("flush.ms")?,
            retention_check_interval_ms: self.num("log.retention.check.interval.ms")?,
            file_delete_delay_ms: self.topic_num("file.delete.delay.ms")?,
            index_interval_bytes: self.topic_num("index.interval.bytes")?,
            segment_index_bytes: self.topic_num("segment.index.bytes")?,
            min_insync_replicas: self.num("min.insync.replicas")?,
            compression_type: self.get("compression.type").unwrap_or("producer").into(),
            message_timestamp_type: self.get("log.message.timestamp.type").unwrap_or("CreateTime").into(),
            preallocate: self.boolean("log.preallocate"),
        })
    }
}

fn check_quorum(
    node_id: i32,
    roles: ProcessRoles,
    voters: &[QuorumVoter],
    bootstrap: &[(String, u16)],
) -> Result<(), ConfigError> {
    if !roles.controller && voters.is_empty() && bootstrap.is_empty() {
        return Err(ConfigError::Inconsistent(
            "a broker-only node (process.roles=broker) needs controller.quorum.voters or controller.quorum.bootstrap.servers".into(),
        ));
    }
    if roles.controller && !voters.is_empty() && !voters.iter().any(|v| v.node_id == node_id) {
        return Err(ConfigError::Inconsistent(format!(
            "process.roles includes controller but node.id {node_id} is not in controller.quorum.voters"
        )));
    }
    Ok(())
}

struct Network {
    listeners: Vec<Listener>,
    advertised: Vec<Listener>,
    protocol_map: Vec<(String, SecurityProtocol)>,
    controller_names: Vec<String>,
    inter_broker: String,
}

impl Typed<'_> {
    fn network(&self, advertised_host: &Option<String>) -> Result<Network, ConfigError> {
        let controller_names: Vec<String> = self
            .list("controller.listener.names")
            .into_iter()
            .map(|n| n.to_ascii_uppercase())
            .collect();
        let protocol_map = self.protocol_map(&controller_names)?;
        let specs =
            configs::parse_listeners(self.get("listeners").unwrap_or_default()).map_err(ConfigError::Inconsistent)?;
        if specs.is_empty() {
            return Err(ConfigError::Inconsistent(
                "listeners must name at least one listener".into(),
            ));
        }
        let listeners = resolve_listeners(specs, &protocol_map)?;
        for (i, l) in listeners.iter().enumerate() {
            if listeners[..i].iter().any(|o| o.port == l.port && o.host == l.host) {
                return Err(ConfigError::Inconsistent(format!(
                    "listener {} binds {}, which another listener already binds",
                    l.name,
                    l.bind_address()
                )));
            }
        }
        let advertised = self.advertised(&listeners, &controller_names, &protocol_map, advertised_host)?;
        let inter_broker = self.inter_broker_name(&advertised)?;
        Ok(Network {
            listeners,
            advertised,
            protocol_map,
            controller_names,
            inter_broker,
        })
    }

    fn protocol_map(&self, controller_names: &[String]) -> Result<Vec<(String, SecurityProtocol)>, ConfigError> {
        let raw = self.get("listener.security.protocol.map").unwrap_or_default();
        let pairs = configs::parse_security_protocol_map(raw).map_err(ConfigError::Inconsistent)?;
        let mut map: Vec<(String, SecurityProtocol)> = pairs
            .into_iter()
            .filter_map(|(n, p)| SecurityProtocol::parse(&p).map(|p| (n, p)))
            .collect();
        for name in controller_names {
            if !map.iter().any(|(n, _)| n == name) {
                map.push((name.clone(), SecurityProtocol::Plaintext));
            }
        }
        Ok(map)
    }

    fn advertised(
        &self,
        listeners: &[Listener],
        controller_names: &[String],
        map: &[(String, SecurityProtocol)],
        advertised_host: &Option<String>,
    ) -> Result<Vec<Listener>, ConfigError> {
        let client_facing = |l: &Listener| !controller_names.contains(&l.name);
        // A blank value (an empty KAFKA_ADVERTISED_LISTENERS) means "not set", not "advertise nothing".
        let Some(raw) = self.get("advertised.listeners").filter(|v| !v.trim().is_empty()) else {
            let host = advertised_host.as_deref().unwrap_or("localhost");
            return Ok(listeners
                .iter()
                .filter(|l| client_facing(l))
                .map(|l| Listener {
                    host: if is_wildcard(&l.host) {
                        host.into()
                    } else {
                        l.host.clone()
                    },
                    ..l.clone()
                })
                .collect());
        };
        let specs = configs::parse_listeners(raw).map_err(ConfigError::Inconsistent)?;
        let advertised = resolve_listeners(specs, map)?;
        for l in &advertised {
            if !listeners.iter().any(|x| x.name == l.name) {
                return Err(ConfigError::Inconsistent(format!(
                    "advertised.listeners names {} which is not in listeners",
                    l.name
                )));
            }
            if is_wildcard(&l.host) && !l.host.is_empty() {
                return Err(ConfigError::Inconsistent(format!(
                    "advertised.listeners cannot use the non-routable address {} (listener {})",
                    l.host, l.name
                )));
            }
        }
        Ok(advertised.into_iter().filter(|l| client_facing(l)).collect())
    }

    /// `inter.broker.listener.name`, else the listener named after
    /// `security.inter.broker.protocol`, else (lenient, single-node friendly) the first
    /// client-facing listener.
    fn inter_broker_name(&self, advertised: &[Listener]) -> Result<String, ConfigError> {
        if let Some(name) = self.get("inter.broker.listener.name") {
            let name = name.to_ascii_uppercase();
            if !advertised.iter().any(|l| l.name == name) {
                return Err(ConfigError::Inconsistent(format!(
                    "inter.broker.listener.name {name} must be an advertised, non-controller listener"
                )));
            }
            return Ok(name);
        }
        let by_protocol = self
            .get("security.inter.broker.protocol")
            .unwrap_or("PLAINTEXT")
            .to_ascii_uppercase();
        if advertised.iter().any(|l| l.name == by_protocol) {
            return Ok(by_protocol);
        }
        Ok(advertised.first().map(|l| l.name.clone()).unwrap_or_default())
    }
}

fn is_wildcard(host: &str) -> bool {
    matches!(host, "" | "0.0.0.0" | "::" | "0:0:0:0:0:0:0:0")
}

fn resolve_listeners(
    specs: Vec<ListenerSpec>,
    map: &[(String, SecurityProtocol)],
) -> Result<Vec<Listener>, ConfigError> {
    specs
        .into_iter()
        .map(|s| {
            let proto = map.iter().find(|(n, _)| *n == s.name).map(|(_, p)| *p);
            let Some(security_protocol) = proto else {
                return Err(ConfigError::Inconsistent(format!(
                    "listener {} has no entry in listener.security.protocol.map",
                    s.name
                )));
            };
            Ok(Listener {
                name: s.name,
                host: s.host,
                port: s.port,
                security_protocol,
            })
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Java .properties
// ---------------------------------------------------------------------------------------------

fn read_limited(path: &Path) -> Result<String, ConfigError> {
    let io = |source| ConfigError::Io {
        path: path.to_path_buf(),
        source,
    };
    let len = fs::metadata(path).map_err(io)?.len();
    if len > PROPERTIES_FILE_MAX_BYTES {
        return Err(ConfigError::Syntax {
            path: path.to_path_buf(),
            message: format!("file is {len} bytes; the limit is {PROPERTIES_FILE_MAX_BYTES}"),
        });
    }
    let bytes = fs::read(path).map_err(io)?;
    // Java reads .properties as ISO-8859-1; accept UTF-8 too, since that is what editors write.
    Ok(match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => e.into_bytes().iter().map(|&b| b as char).collect(),
    })
}

/// Parses Java `.properties` text: `#`/`!` comments, `key=value`, `key: value` or `key value`,
/// backslash line continuation, and `\t \n \r \f \uXXXX` escapes. Later duplicates win when the
/// caller inserts in order.
pub fn parse_properties(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for (line_no, logical) in logical_lines(text) {
        let (key, value) = split_key_value(&logical);
        let key = unescape(key).map_err(|e| format!("line {line_no}: {e}"))?;
        let value = unescape(value).map_err(|e| format!("line {line_no}: {e}"))?;
        out.push((key, value));
    }
    Ok(out)
}

fn is_prop_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\x0c')
}

/// Joins continued lines, drops blank and comment lines. Yields (first line number, text).
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (i, raw) in text.split('\n').enumerate() {
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        let line = raw.trim_start_matches(is_prop_space);
        let continuing = current.is_some();
        if !continuing && (line.is_empty() || line.starts_with('#') || line.starts_with('!')) {
            continue;
        }
        let trailing = line.chars().rev().take_while(|&c| c == '\\').count();
        let continues = trailing % 2 == 1;
        let content = if continues { &line[..line.len() - 1] } else { line };
        let entry = current.get_or_insert_with(|| (i + 1, String::new()));
        entry.1.push_str(content);
        if !continues {
            out.extend(current.take());
        }
    }
    // A continuation on the last line just ends the entry.
    out.extend(current);
    out
}

/// Splits at the first unescaped `=`, `:` or whitespace; the separator's surrounding whitespace
/// is dropped. Returns still-escaped key and value.
fn split_key_value(line: &str) -> (&str, &str) {
    let mut escaped = false;
    let mut key_end = line.len();
    for (i, c) in line.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        if c == '\\' {
            escaped = true;
        } else if c == '=' || c == ':' || is_prop_space(c) {
            key_end = i;
            break;
        }
    }
    let key = &line[..key_end];
    let mut rest = line[key_end..].trim_start_matches(is_prop_space);
    if let Some(r) = rest.strip_prefix(['=', ':']) {
        rest = r.trim_start_matches(is_prop_space);
    }
    (key, rest)
}

fn unescape(s: &str) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('f') => out.push('\x0c'),
            Some('u') => out.push(unicode_escape(&mut chars)?),
            Some(other) => out.push(other),
            None => {}
        }
    }
    Ok(out)
}

fn unicode_escape(chars: &mut std::str::Chars<'_>) -> Result<char, String> {
    let hex: String = chars.by_ref().take(4).collect();
    let code = (hex.len() == 4)
        .then(|| u32::from_str_radix(&hex, 16).ok())
        .flatten()
        .ok_or_else(|| format!("malformed \\uxxxx escape \\u{hex}"))?;
    // A lone surrogate cannot be represented in a Rust string; substitute it visibly.
    Ok(char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER))
}

// ---------------------------------------------------------------------------------------------
// meta.properties
// ---------------------------------------------------------------------------------------------

/// The contents of a KRaft `meta.properties` (version 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaProperties {
    pub cluster_id: String,
    pub node_id: i32,
    pub directory_id: Option<String>,
}

const META_PROPERTIES: &str = "meta.properties";

/// A new Kafka-style Uuid string: 16 random bytes as URL-safe base64 without padding.
pub fn new_uuid_string() -> String {
    base64url(uuid::Uuid::new_v4().as_bytes())
}

fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let emit = chunk.len() + 1;
        for i in 0..emit {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// Checks a cluster id is a Kafka Uuid string (what `kafka-storage.sh format` accepts).
pub fn validate_cluster_id(id: &str) -> Result<(), ConfigError> {
    let ok = id.len() == 22 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(ConfigError::InvalidClusterId(id.to_string()))
    }
}

/// Reads `<dir>/meta.properties` if it exists.
pub fn read_meta_properties(dir: &Path) -> Result<Option<MetaProperties>, ConfigError> {
    let path = dir.join(META_PROPERTIES);
    if !path.exists() {
        return Ok(None);
    }
    let bad = |message: String| ConfigError::MetaProperties {
        path: path.clone(),
        message,
    };
    let text = read_limited(&path)?;
    let props: BTreeMap<String, String> = parse_properties(&text).map_err(bad)?.into_iter().collect();
    let version = props.get("version").map(String::as_str).unwrap_or("0");
    // Version 0 is the ZooKeeper-era layout (broker.id); version 1 is KRaft (node.id).
    let id_key = match version {
        "1" => "node.id",
        "0" => "broker.id",
        v => return Err(bad(format!("unsupported version {v}"))),
    };
    let cluster_id = props
        .get("cluster.id")
        .cloned()
        .ok_or_else(|| bad("missing cluster.id".into()))?;
    let node_id = props
        .get(id_key)
        .and_then(|v| v.trim().parse::<i32>().ok())
        .ok_or_else(|| bad(format!("missing or invalid {id_key}")))?;
    Ok(Some(MetaProperties {
        cluster_id,
        node_id,
        directory_id: props.get("directory.id").cloned(),
    }))
}

/// Writes `<dir>/meta.properties` durably: temp file, fsync, rename, fsync directory.
pub fn write_meta_properties(dir: &Path, meta: &MetaProperties) -> Result<(), ConfigError> {
    let io = |source| ConfigError::Io {
        path: dir.to_path_buf(),
        source,
    };
    fs::create_dir_all(dir).map_err(io)?;
    let mut text = String::from("#\n#Written by Runnel\n");
    text.push_str(&format!("node.id={}\n", meta.node_id));
    if let Some(d) = &meta.directory_id {
        text.push_str(&format!("directory.id={d}\n"));
    }
    text.push_str("version=1\n");
    text.push_str(&format!("cluster.id={}\n", meta.cluster_id));
    let tmp = dir.join("meta.properties.tmp");
    let mut f = fs::File::create(&tmp).map_err(io)?;
    f.write_all(text.as_bytes()).map_err(io)?;
    f.sync_all().map_err(io)?;
    drop(f);
    fs::rename(&tmp, dir.join(META_PROPERTIES)).map_err(io)?;
    fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io)
}

/// On first start, writes `meta.properties` into `log_dir` (generating a cluster id when none is
/// given); on later starts reads it and checks it against the configured node id and cluster id.
/// Returns the cluster id.
pub fn ensure_formatted(
    log_dir: &Path,
    node_id: i32,
    cluster_id_from_env: Option<&str>,
) -> Result<String, ConfigError> {
    if let Some(id) = cluster_id_from_env {
        validate_cluster_id(id)?;
    }
    if let Some(meta) = read_meta_properties(log_dir)? {
        if let Some(configured) = cluster_id_from_env.filter(|c| *c != meta.cluster_id) {
            return Err(ConfigError::ClusterIdMismatch {
                dir: log_dir.to_path_buf(),
                stored: meta.cluster_id,
                configured: configured.to_string(),
            });
        }
        if meta.node_id != node_id {
            return Err(ConfigError::NodeIdMismatch {
                dir: log_dir.to_path_buf(),
                stored: meta.node_id,
                configured: node_id,
            });
        }
        return Ok(meta.cluster_id);
    }
    let cluster_id = cluster_id_from_env.map_or_else(new_uuid_string, str::to_string);
    let meta = MetaProperties {
        cluster_id: cluster_id.clone(),
        node_id,
        directory_id: Some(new_uuid_string()),
    };
    write_meta_properties(log_dir, &meta)?;
    Ok(cluster_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn load(opts: LoadOptions) -> (BrokerConfig, Vec<String>) {
        match BrokerConfig::load(opts) {
            Ok(loaded) => loaded,
            Err(e) => panic!("load failed: {e}"),
        }
    }

    fn write_file(dir: &Path, text: &str) -> PathBuf {
        let path = dir.join("server.properties");
        fs::write(&path, text).expect("write server.properties");
        path
    }

    #[test]
    fn zero_configuration_is_a_working_single_node() {
        let (cfg, warnings) = load(LoadOptions::default());
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(cfg.node_id, 1);
        assert_eq!(
            cfg.process_roles,
            ProcessRoles {
                broker: true,
                controller: true
            }
        );
        let expected = Listener {
            name: "PLAINTEXT".into(),
            host: "localhost".into(),
            port: 9092,
            security_protocol: SecurityProtocol::Plaintext,
        };
        assert_eq!(cfg.listeners, vec![expected.clone()]);
        assert_eq!(cfg.advertised_listeners, vec![expected]);
        assert_eq!(cfg.inter_broker_listener_name, "PLAINTEXT");
        assert_eq!(cfg.log_dirs, vec![PathBuf::from("./data")]);
        assert_eq!(cfg.metadata_log_dir, PathBuf::from("./data"));
        assert_eq!(cfg.http_listener, "localhost:9644");
        assert_eq!((cfg.num_partitions, cfg.default_replication_factor), (1, 1));
        assert!(cfg.auto_create_topics_enable);
        assert_eq!(cfg.message_max_bytes, 1_048_588);
        assert_eq!(cfg.socket_request_max_bytes, 104_857_600);
        assert_eq!(cfg.offsets_topic_num_partitions, 50);
        assert_eq!(cfg.offsets_topic_replication_factor, 1);
        assert_eq!(cfg.group_initial_rebalance_delay_ms, 3000);
        assert_eq!(cfg.log.segment_bytes, 1 << 30);
        assert_eq!(cfg.log.retention_ms, 168 * 3_600_000);
        assert_eq!(cfg.log.segment_ms, 168 * 3_600_000);
        assert_eq!(cfg.log.retention_bytes, -1);
        assert_eq!(cfg.log.flush_policy, FlushPolicy::Kafka);
        assert_eq!(cfg.log.flush_ms, i64::MAX);
        assert_eq!(cfg.log.file_delete_delay_ms, 60_000);
        assert_eq!(cfg.log.retention_check_interval_ms, 300_000);
        assert_eq!(cfg.cluster_id, None);
        let entry = cfg.entry("num.partitions").expect("entry");
        assert_eq!((entry.source.describe_code(), entry.value.as_deref()), (5, Some("1")));
    }

    #[test]
    fn precedence_is_file_then_env_then_override() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = write_file(
            dir.path(),
            "num.partitions=2\nlog.retention.hours=1\nmessage.max.bytes=2000000\n",
        );
        let (cfg, _) = load(LoadOptions {
            file: Some(file.clone()),
            env: env(&[("KAFKA_NUM_PARTITIONS", "3"), ("KAFKA_MESSAGE_MAX_BYTES", "3000000")]),
            overrides: vec![("num.partitions".into(), "4".into())],
            ..Default::default()
        });
        assert_eq!(cfg.num_partitions, 4);
        assert_eq!(
            cfg.entry("num.partitions").map(|e| &e.source),
            Some(&ConfigSource::Override)
        );
        assert_eq!(cfg.message_max_bytes, 3_000_000);
        assert_eq!(
            cfg.entry("message.max.bytes").map(|e| &e.source),
            Some(&ConfigSource::Env("KAFKA_MESSAGE_MAX_BYTES".into()))
        );
        assert_eq!(cfg.log.retention_ms, 3_600_000);
        let entry = cfg.entry("log.retention.hours").expect("entry");
        assert_eq!(entry.source, ConfigSource::File(file));
        assert_eq!(entry.source.describe_code(), 4);
        assert_eq!(
            cfg.topic_default("retention.ms"),
            Some(("3600000".into(), Some("log.retention.hours")))
        );
        assert_eq!(
            cfg.topic_default("max.message.bytes").map(|d| d.0),
            Some("3000000".into())
        );
    }

    #[test]
    fn env_mapping_follows_the_apache_image() {
        let cases = [
            (
                "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP",
                Some("listener.security.protocol.map"),
            ),
            ("KAFKA_LOG_DIRS", Some("log.dirs")),
            ("KAFKA_CONTROLLER_QUORUM_VOTERS", Some("controller.quorum.voters")),
            (
                "KAFKA_LISTENER_NAME_SASL__SSL_SCRAM___SHA___256_SASL_JAAS_CONFIG",
                Some("listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config"),
            ),
            ("KAFKA_CFG_AUTO_CREATE_TOPICS_ENABLE", Some("auto.create.topics.enable")),
            ("KAFKA_A____B", Some("a-.b")),
            ("KAFKA_HEAP_OPTS", None),
            ("KAFKA_JMX_OPTS", None),
            ("KAFKA_LOG4J_ROOT_LOGLEVEL", None),
            ("CLUSTER_ID", None),
            ("KAFKA_", None),
            ("PATH", None),
        ];
        for (var, want) in cases {
            assert_eq!(env_var_to_key(var).as_deref(), want, "{var}");
        }
    }

    #[test]
    fn compose_style_environment_configures_kraft() {
        let (cfg, warnings) = load(LoadOptions {
            env: env(&[
                ("KAFKA_NODE_ID", "2"),
                ("KAFKA_PROCESS_ROLES", "broker,controller"),
                (
                    "KAFKA_LISTENERS",
                    "PLAINTEXT://:19092,CONTROLLER://:9093,PLAINTEXT_HOST://0.0.0.0:9092",
                ),
                (
                    "KAFKA_ADVERTISED_LISTENERS",
                    "PLAINTEXT://kafka:19092,PLAINTEXT_HOST://localhost:9092",
                ),
                (
                    "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP",
                    "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,PLAINTEXT_HOST:PLAINTEXT",
                ),
                ("KAFKA_CONTROLLER_LISTENER_NAMES", "CONTROLLER"),
                ("KAFKA_INTER_BROKER_LISTENER_NAME", "PLAINTEXT"),
                ("KAFKA_CONTROLLER_QUORUM_VOTERS", "2@kafka:9093"),
                ("KAFKA_LOG_DIRS", "/var/lib/kafka/data"),
                ("KAFKA_HEAP_OPTS", "-Xmx1G"),
                ("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "1"),
                ("CLUSTER_ID", "MkU3OEVBNTcwNTJENDM2Qk"),
                ("HOME", "/root"),
            ]),
            ..Default::default()
        });
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(cfg.node_id, 2);
        assert_eq!(cfg.listeners.len(), 3);
        assert_eq!(cfg.listeners[0].host, "");
        let adv: Vec<&str> = cfg.advertised_listeners.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(adv, ["PLAINTEXT", "PLAINTEXT_HOST"]);
        assert!(cfg.is_controller_listener("controller"));
        assert_eq!(
            cfg.controller_quorum_voters,
            vec![QuorumVoter {
                node_id: 2,
                host: "kafka".into(),
                port: 9093
            }]
        );
        assert_eq!(cfg.log_dirs, vec![PathBuf::from("/var/lib/kafka/data")]);
        assert_eq!(cfg.cluster_id.as_deref(), Some("MkU3OEVBNTcwNTJENDM2Qk"));
        assert_eq!(cfg.effective("heap.opts"), None);
    }

    #[test]
    fn advertised_listeners_default_drops_controllers_and_wildcards() {
        let (cfg, _) = load(LoadOptions {
            overrides: vec![
                (
                    "listeners".into(),
                    "PLAINTEXT://0.0.0.0:9092,CONTROLLER://:9093,SSL://[::1]:9094".into(),
                ),
                ("controller.listener.names".into(), "CONTROLLER".into()),
            ],
            default_advertised_host: Some("broker-0.example".into()),
            ..Default::default()
        });
        let adv: Vec<(String, String)> = cfg
            .advertised_listeners
            .iter()
            .map(|l| (l.name.clone(), l.host.clone()))
            .collect();
        assert_eq!(
            adv,
            [
                ("PLAINTEXT".into(), "broker-0.example".into()),
                ("SSL".into(), "::1".into())
            ]
        );
        // CONTROLLER is absent from the default map but is PLAINTEXT implicitly.
        assert_eq!(cfg.listeners[1].security_protocol, SecurityProtocol::Plaintext);
        assert_eq!(cfg.listeners[2].security_protocol, SecurityProtocol::Ssl);
        assert_eq!(cfg.listeners[0].bind_address(), "0.0.0.0:9092");
        assert_eq!(cfg.listeners[1].bind_address(), "0.0.0.0:9093");
        assert_eq!(cfg.listeners[2].bind_address(), "[::1]:9094");
    }

    #[test]
    fn listener_mistakes_are_clear_errors() {
        let cases: [&[(&str, &str)]; 6] = [
            &[("listeners", "INTERNAL://:9092")],
            &[("listeners", "PLAINTEXT://:9092,SSL://:9092")],
            &[("process.roles", "broker")],
            &[("advertised.listeners", "OTHER://h:1")],
            &[("advertised.listeners", "PLAINTEXT://0.0.0.0:9092")],
            &[("inter.broker.listener.name", "NOPE")],
        ];
        for overrides in cases {
            let opts = LoadOptions {
                overrides: overrides.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
                ..Default::default()
            };
            let err = BrokerConfig::load(opts).expect_err("should fail");
            assert!(matches!(err, ConfigError::Inconsistent(_)), "{err}");
        }
    }

    #[test]
    fn blank_advertised_listeners_and_security_lists() {
        let (cfg, _) = load(LoadOptions {
            env: env(&[
                ("KAFKA_ADVERTISED_LISTENERS", ""),
                ("KAFKA_SUPER_USERS", "User:admin; User:ANONYMOUS;"),
                ("KAFKA_SASL_ENABLED_MECHANISMS", "plain,SCRAM-SHA-512"),
                ("KAFKA_PROCESS_ROLES", "broker"),
                ("KAFKA_CONTROLLER_QUORUM_BOOTSTRAP_SERVERS", "ctl-0:9093,[::1]:9093"),
            ]),
            ..Default::default()
        });
        assert_eq!(cfg.advertised_listeners.len(), 1);
        assert_eq!(cfg.super_users, ["User:admin", "User:ANONYMOUS"]);
        assert_eq!(cfg.sasl_enabled_mechanisms, ["PLAIN", "SCRAM-SHA-512"]);
        assert_eq!(
            cfg.controller_quorum_bootstrap_servers,
            [("ctl-0".into(), 9093), ("::1".into(), 9093)]
        );
        assert!(cfg.entry("sasl.jaas.config").is_some_and(ConfigEntry::is_sensitive));
        assert!(!cfg.entry("num.partitions").is_some_and(ConfigEntry::is_sensitive));
    }

    #[test]
    fn unknown_keys_warn_once_each_and_never_fail() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = write_file(
            dir.path(),
            "zookeeper.connect=zk:2181\nconfluent.support.metrics.enable=false\n",
        );
        let (cfg, warnings) = load(LoadOptions {
            file: Some(file),
            env: env(&[
                ("KAFKA_ZOOKEEPER_CONNECT", "zk:2181"),
                ("KAFKA_CLIENT_PASSWORDS", "s3cret"),
            ]),
            ..Default::default()
        });
        assert_eq!(warnings.len(), 3, "{warnings:?}");
        assert_eq!(warnings.iter().filter(|w| w.contains("zookeeper.connect")).count(), 1);
        assert!(warnings.iter().all(|w| !w.contains("s3cret")), "{warnings:?}");
        assert_eq!(cfg.effective("zookeeper.connect"), Some("zk:2181"));
    }

    #[test]
    fn invalid_values_fail_naming_key_and_value() {
        let opts = LoadOptions {
            env: env(&[("KAFKA_LOG_SEGMENT_BYTES", "1000")]),
            ..Default::default()
        };
        let err = BrokerConfig::load(opts).expect_err("segment too small");
        let text = err.to_string();
        assert!(text.contains("log.segment.bytes") && text.contains("1000"), "{text}");
        assert!(text.contains("KAFKA_LOG_SEGMENT_BYTES"), "{text}");
        match err {
            ConfigError::InvalidValue { key, .. } => assert_eq!(key, "log.segment.bytes"),
            other => panic!("wrong error {other}"),
        }
        let opts = LoadOptions {
            overrides: vec![
                ("listener.name.internal.ssl.keystore.password".into(), "x".into()),
                ("node.id".into(), "one".into()),
            ],
            ..Default::default()
        };
        let text = BrokerConfig::load(opts).expect_err("bad node id").to_string();
        assert!(text.contains("node.id") && text.contains("one"), "{text}");
    }

    #[test]
    fn log_dirs_wins_over_log_dir_and_ids_must_agree() {
        let (cfg, _) = load(LoadOptions {
            overrides: vec![
                ("log.dir".into(), "/a".into()),
                ("log.dirs".into(), "/b, /c".into()),
                ("metadata.log.dir".into(), "/m".into()),
                ("broker.id".into(), "7".into()),
            ],
            ..Default::default()
        });
        assert_eq!(cfg.log_dirs, vec![PathBuf::from("/b"), PathBuf::from("/c")]);
        assert_eq!(cfg.metadata_log_dir, PathBuf::from("/m"));
        assert_eq!(cfg.node_id, 7, "legacy broker.id alone sets the node id");
        let opts = LoadOptions {
            overrides: vec![("node.id".into(), "1".into()), ("broker.id".into(), "2".into())],
            ..Default::default()
        };
        assert!(BrokerConfig::load(opts).is_err());
        let opts = LoadOptions {
            overrides: vec![("controller.quorum.voters".into(), "5@h:9093".into())],
            ..Default::default()
        };
        assert!(
            BrokerConfig::load(opts).is_err(),
            "node 1 is a controller but not a voter"
        );
    }

    #[test]
    fn retention_minutes_beats_hours_and_ms_beats_both() {
        let (cfg, _) = load(LoadOptions {
            overrides: vec![("log.retention.minutes".into(), "10".into())],
            ..Default::default()
        });
        assert_eq!(cfg.log.retention_ms, 600_000);
        let (cfg, _) = load(LoadOptions {
            overrides: vec![
                ("log.retention.minutes".into(), "10".into()),
                ("log.retention.ms".into(), "-1".into()),
                ("log.flush.policy".into(), "fsync".into()),
                ("log.roll.ms".into(), "1000".into()),
            ],
            ..Default::default()
        });
        assert_eq!(cfg.log.retention_ms, -1);
        assert_eq!(cfg.log.segment_ms, 1000);
        assert_eq!(cfg.log.flush_policy, FlushPolicy::Fsync);
    }

    #[test]
    fn properties_syntax_edge_cases() {
        let text = "# comment\n  ! another\n\nplain=1\ncolon: 2\nspace   3\n  indented = 4 \n\
                    continued = a,\\\n    b,\\\n    c\nesc\\=key = x\\ty\\u0041\\\\\nempty=\n\
                    bare\nwin=crlf\r\n# trailing comment \\\nnot.continued=5\ndup=1\ndup=2\n\
                    last = end\\";
        let got = parse_properties(text).expect("parse");
        let want: Vec<(String, String)> = [
            ("plain", "1"),
            ("colon", "2"),
            ("space", "3"),
            ("indented", "4 "),
            ("continued", "a,b,c"),
            ("esc=key", "x\tyA\\"),
            ("empty", ""),
            ("bare", ""),
            ("win", "crlf"),
            ("not.continued", "5"),
            ("dup", "1"),
            ("dup", "2"),
            ("last", "end"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(got, want);
        let err = parse_properties("a=\\u12\n").expect_err("bad escape");
        assert!(err.contains("line 1"), "{err}");
    }

    #[test]
    fn file_values_are_trimmed_and_later_duplicates_win() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = write_file(dir.path(), "num.partitions = 3 \nnum.partitions=5\n");
        let (cfg, _) = load(LoadOptions {
            file: Some(file),
            ..Default::default()
        });
        assert_eq!(cfg.num_partitions, 5);
        let missing = LoadOptions {
            file: Some(dir.path().join("nope")),
            ..Default::default()
        };
        assert!(matches!(BrokerConfig::load(missing), Err(ConfigError::Io { .. })));
    }

    #[test]
    fn meta_properties_round_trip_and_mismatches() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        let id = ensure_formatted(&data, 1, None).expect("format");
        validate_cluster_id(&id).expect("generated id is a Kafka uuid");
        let meta = read_meta_properties(&data).expect("read").expect("present");
        assert_eq!((meta.cluster_id.as_str(), meta.node_id), (id.as_str(), 1));
        assert_eq!(meta.directory_id.as_deref().map(str::len), Some(22));
        let text = fs::read_to_string(data.join("meta.properties")).expect("text");
        assert!(text.contains("version=1\n") && text.contains(&format!("cluster.id={id}\n")));
        // A second start reads the same id, with or without it configured.
        assert_eq!(ensure_formatted(&data, 1, None).expect("again"), id);
        assert_eq!(ensure_formatted(&data, 1, Some(&id)).expect("same id"), id);
        let other = "MkU3OEVBNTcwNTJENDM2Qk";
        assert!(matches!(
            ensure_formatted(&data, 1, Some(other)),
            Err(ConfigError::ClusterIdMismatch { .. })
        ));
        assert!(matches!(
            ensure_formatted(&data, 2, None),
            Err(ConfigError::NodeIdMismatch { .. })
        ));
        assert!(matches!(
            ensure_formatted(&dir.path().join("x"), 1, Some("not-a-uuid")),
            Err(ConfigError::InvalidClusterId(_))
        ));
    }

    #[test]
    fn configured_cluster_id_is_written_and_shared_by_all_dirs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        let (cfg, _) = load(LoadOptions {
            env: env(&[("CLUSTER_ID", "4L6g3nShT-eMCtK--X86sw")]),
            overrides: vec![("log.dirs".into(), format!("{},{}", a.display(), b.display()))],
            ..Default::default()
        });
        assert_eq!(
            cfg.ensure_storage_formatted().expect("format"),
            "4L6g3nShT-eMCtK--X86sw"
        );
        let ids: Vec<String> = [a, b]
            .iter()
            .map(|d| read_meta_properties(d).expect("read").expect("present").cluster_id)
            .collect();
        assert_eq!(ids, ["4L6g3nShT-eMCtK--X86sw", "4L6g3nShT-eMCtK--X86sw"]);
    }

    #[test]
    fn a_new_disk_joins_the_cluster_of_the_formatted_ones() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        let existing = ensure_formatted(&b, 1, None).expect("format b");
        let (cfg, _) = load(LoadOptions {
            overrides: vec![("log.dirs".into(), format!("{},{}", a.display(), b.display()))],
            ..Default::default()
        });
        assert_eq!(cfg.ensure_storage_formatted().expect("format"), existing);
        let meta_a = read_meta_properties(&a).expect("read").expect("present");
        assert_eq!(meta_a.cluster_id, existing);
    }

    #[test]
    fn zookeeper_era_meta_properties_are_read_and_bad_ones_rejected() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::write(
            dir.path().join("meta.properties"),
            "version=0\nbroker.id=3\ncluster.id=abc\n",
        )
        .expect("write");
        let meta = read_meta_properties(dir.path()).expect("read").expect("present");
        assert_eq!((meta.node_id, meta.cluster_id.as_str()), (3, "abc"));
        fs::write(dir.path().join("meta.properties"), "version=1\ncluster.id=abc\n").expect("write");
        assert!(matches!(
            read_meta_properties(dir.path()),
            Err(ConfigError::MetaProperties { .. })
        ));
    }

    #[test]
    fn example_server_properties_loads_cleanly_and_matches_the_defaults() {
        let text = include_str!("../../../config/server.properties");
        let dir = tempfile::tempdir().expect("tempdir");
        let file = write_file(dir.path(), text);
        let (cfg, warnings) = load(LoadOptions {
            file: Some(file),
            ..Default::default()
        });
        assert!(warnings.is_empty(), "{warnings:?}");
        let (defaults, _) = load(LoadOptions::default());
        let mut set = 0;
        for (key, value) in parse_properties(text).expect("parse") {
            set += 1;
            assert_eq!(cfg.effective(&key), Some(value.as_str()), "{key}");
            assert_eq!(
                defaults.effective(&key),
                Some(value.as_str()),
                "{key} differs from the default"
            );
        }
        assert!(set > 20, "only {set} keys set");
        assert_eq!(cfg.listeners, defaults.listeners);
    }

    #[test]
    fn base64url_matches_known_vectors() {
        assert_eq!(base64url(&[0u8; 16]), "AAAAAAAAAAAAAAAAAAAAAA");
        assert_eq!(base64url(b"\xfb\xff"), "-_8");
        assert_eq!(new_uuid_string().len(), 22);
    }
}
