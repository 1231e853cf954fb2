//! Effective topic configuration: a topic's override, else the broker's default for it (through
//! Kafka's synonyms, e.g. `log.retention.hours` for `retention.ms`), else Kafka's default.
//!
//! `TopicSettings` is the typed result the produce path and the storage layer use; DescribeConfigs
//! uses `effective_topic_config` to report the value and where it came from.

use runnel_metadata::configs::{self, TOPIC_CONFIGS};
use runnel_metadata::image::MetadataImage;
use runnel_storage::{FlushPolicy as StorageFlushPolicy, LogConfig};

use crate::config::{BrokerConfig, FlushPolicy};

/// Where an effective config value came from (Kafka's `ConfigSource`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    DynamicTopic,
    StaticBroker,
    Default,
}

/// Kafka's DescribeConfigs source codes.
pub const SOURCE_DYNAMIC_TOPIC_CONFIG: i8 = 1;
pub const SOURCE_STATIC_BROKER_CONFIG: i8 = 4;
pub const SOURCE_DEFAULT_CONFIG: i8 = 5;

impl Source {
    pub fn code(self) -> i8 {
        match self {
            Source::DynamicTopic => SOURCE_DYNAMIC_TOPIC_CONFIG,
            Source::StaticBroker => SOURCE_STATIC_BROKER_CONFIG,
            Source::Default => SOURCE_DEFAULT_CONFIG,
        }
    }
}

/// The effective value of topic config `key` for `topic`.
pub fn effective_topic_config(
    broker: &BrokerConfig,
    image: &MetadataImage,
    topic: &str,
    key: &str,
) -> (Option<String>, Source) {
    if let Some(v) = image.topic_configs(topic).get(key) {
        return (Some(v.clone()), Source::DynamicTopic);
    }
    broker_topic_default(broker, key)
}

/// The broker-level default of a topic config, and its source.
pub fn broker_topic_default(broker: &BrokerConfig, key: &str) -> (Option<String>, Source) {
    match broker.topic_default(key) {
        Some((value, Some(synonym)))
            if broker
                .entry(synonym)
                .is_some_and(|e| e.source.describe_code() != SOURCE_DEFAULT_CONFIG) =>
        {
            (Some(value), Source::StaticBroker)
        }
        Some((value, _)) => (Some(value), Source::Default),
        None => (
            configs::topic_config(key).and_then(|d| d.default).map(str::to_string),
            Source::Default,
        ),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampType {
    CreateTime,
    LogAppendTime,
}

/// Typed topic settings used on the produce path and by storage.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicSettings {
    pub log: LogConfig,
    pub max_message_bytes: usize,
    pub timestamp_type: TimestampType,
    /// `producer`, `uncompressed`, `gzip`, `snappy`, `lz4` or `zstd`.
    pub compression_type: String,
    pub compact: bool,
    /// `cleanup.policy` includes `delete` (time/size retention, DeleteRecords allowed).
    pub delete: bool,
    pub timestamp_before_max_ms: i64,
    pub timestamp_after_max_ms: i64,
    pub min_insync_replicas: i32,
}

impl TopicSettings {
    /// Resolves every setting of `topic` from its overrides and the broker's defaults.
    pub fn resolve(broker: &BrokerConfig, image: &MetadataImage, topic: &str) -> TopicSettings {
        let get = |key: &str| effective_topic_config(broker, image, topic, key).0.unwrap_or_default();
        let int = |key: &str, fallback: i64| get(key).trim().parse::<i64>().unwrap_or(fallback);
        let flush_policy = match broker.log.flush_policy {
            FlushPolicy::Kafka => StorageFlushPolicy::Kafka,
            FlushPolicy::Fsync => StorageFlushPolicy::Fsync,
        };
        let defaults = LogConfig::default();
        let log = LogConfig {
            segment_bytes: int("segment.bytes", defaults.segment_bytes as i64).max(1) as u64,
            segment_ms: int("segment.ms", defaults.segment_ms),
            segment_index_bytes: int("segment.index.bytes", i64::from(defaults.segment_index_bytes))
                .clamp(24, i64::from(u32::MAX)) as u32,
            index_interval_bytes: int("index.interval.bytes", i64::from(defaults.index_interval_bytes))
                .clamp(0, i64::from(u32::MAX)) as u32,
            retention_ms: int("retention.ms", defaults.retention_ms),
            retention_bytes: int("retention.bytes", defaults.retention_bytes),
            file_delete_delay_ms: int("file.delete.delay.ms", defaults.file_delete_delay_ms),
            flush_policy,
            flush_messages: int("flush.messages", i64::MAX).max(1) as u64,
            flush_ms: int("flush.ms", i64::MAX),
            producer_id_expiration_ms: broker
                .effective("producer.id.expiration.ms")
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(defaults.producer_id_expiration_ms),
            compact: configs::parse_list(&get("cleanup.policy")).contains(&"compact"),
            delete_retention_ms: int("delete.retention.ms", defaults.delete_retention_ms),
            min_cleanable_dirty_ratio_ppm: defaults.min_cleanable_dirty_ratio_ppm,
            min_compaction_lag_ms: int("min.compaction.lag.ms", defaults.min_compaction_lag_ms),
            max_compaction_lag_ms: int("max.compaction.lag.ms", defaults.max_compaction_lag_ms),
        };
        let mut log = log;
        if let Ok(ratio) = get("min.cleanable.dirty.ratio").trim().parse::<f64>() {
            log.set_min_cleanable_dirty_ratio(ratio);
        }
        let timestamp_type = if get("message.timestamp.type") == "LogAppendTime" {
            TimestampType::LogAppendTime
        } else {
            TimestampType::CreateTime
        };
        TopicSettings {
            log,
            max_message_bytes: int("max.message.bytes", 1_048_588).max(0) as usize,
            timestamp_type,
            compression_type: get("compression.type"),
            compact: configs::parse_list(&get("cleanup.policy")).contains(&"compact"),
            delete: configs::parse_list(&get("cleanup.policy")).contains(&"delete"),
            timestamp_before_max_ms: int("message.timestamp.before.max.ms", i64::MAX),
            timestamp_after_max_ms: int("message.timestamp.after.max.ms", 3_600_000),
            min_insync_replicas: int("min.insync.replicas", 1) as i32,
        }
    }
}

/// Every topic config key, in Kafka's order of definition.
pub fn topic_config_keys() -> impl Iterator<Item = &'static str> {
    TOPIC_CONFIGS.iter().map(|d| d.name)
}
