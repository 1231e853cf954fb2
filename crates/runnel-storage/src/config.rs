//! Per-partition log configuration, with Apache Kafka's defaults.

/// When appended data is forced to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushPolicy {
    /// Kafka's: fsync after `flush_messages` messages or `flush_ms`; both default to never, so
    /// durability comes from the page cache and replication.
    Kafka,
    /// `log.flush.policy=fsync`: acks wait for a group-commit fdatasync (see
    /// `PartitionLog::sync_target`).
    Fsync,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// `segment.bytes`.
    pub segment_bytes: u64,
    /// `segment.ms`.
    pub segment_ms: i64,
    /// `segment.index.bytes`: preallocated size of each index file of the active segment.
    pub segment_index_bytes: u32,
    /// `index.interval.bytes`: bytes between sparse index entries.
    pub index_interval_bytes: u32,
    /// `retention.ms`; -1 keeps data forever.
    pub retention_ms: i64,
    /// `retention.bytes`; -1 means no size limit.
    pub retention_bytes: i64,
    /// `file.delete.delay.ms`: how long `.deleted` files linger.
    pub file_delete_delay_ms: i64,
    pub flush_policy: FlushPolicy,
    /// `flush.messages`.
    pub flush_messages: u64,
    /// `flush.ms`.
    pub flush_ms: i64,
    /// `producer.id.expiration.ms` (a broker config): idle time after which a producer's
    /// state (and so its duplicate detection) is forgotten.
    pub producer_id_expiration_ms: i64,
    /// `cleanup.policy` includes `compact`: the log cleaner keeps the latest record per key.
    pub compact: bool,
    /// `delete.retention.ms`: how long tombstones survive once cleaned.
    pub delete_retention_ms: i64,
    /// `min.cleanable.dirty.ratio`, stored in millionths so the config stays `Eq`.
    pub min_cleanable_dirty_ratio_ppm: u32,
    /// `min.compaction.lag.ms`: records younger than this are never compacted.
    pub min_compaction_lag_ms: i64,
    /// `max.compaction.lag.ms`: a dirty record older than this forces a clean.
    pub max_compaction_lag_ms: i64,
}

const DAY_MS: i64 = 24 * 60 * 60 * 1000;

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            segment_bytes: 1 << 30,
            segment_ms: 7 * DAY_MS,
            segment_index_bytes: 10 * 1024 * 1024,
            index_interval_bytes: 4096,
            retention_ms: 7 * DAY_MS,
            retention_bytes: -1,
            file_delete_delay_ms: 60_000,
            flush_policy: FlushPolicy::Kafka,
            flush_messages: i64::MAX as u64,
            flush_ms: i64::MAX,
            producer_id_expiration_ms: DAY_MS,
            compact: false,
            delete_retention_ms: DAY_MS,
            min_cleanable_dirty_ratio_ppm: 500_000,
            min_compaction_lag_ms: 0,
            max_compaction_lag_ms: i64::MAX,
        }
    }
}

impl LogConfig {
    /// Index capacity in bytes, never below one entry of either index.
    pub(crate) fn index_bytes(&self) -> usize {
        (self.segment_index_bytes as usize).max(24)
    }

    /// `min.cleanable.dirty.ratio` as a fraction.
    pub fn min_cleanable_dirty_ratio(&self) -> f64 {
        f64::from(self.min_cleanable_dirty_ratio_ppm) / 1_000_000.0
    }

    /// Sets `min.cleanable.dirty.ratio` (clamped to [0, 1]).
    pub fn set_min_cleanable_dirty_ratio(&mut self, ratio: f64) {
        self.min_cleanable_dirty_ratio_ppm = (ratio.clamp(0.0, 1.0) * 1_000_000.0).round() as u32;
    }
}
