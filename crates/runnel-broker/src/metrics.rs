//! Broker metrics under the names existing dashboards chart: the JMX-exporter
//! `kafka_server_*` / `kafka_controller_*` / `kafka_network_*` / `kafka_log_*` families,
//! kafka-exporter's consumer-lag family, process metrics and per-log-dir disk usage.
//!
//! Owns: the only use of the `prometheus-client` crate (STYLE.md fences it here). Counters that
//! change on the hot path (produce, fetch, request latency) are registered once and updated
//! through handles looked up once per request and partition, never per record. Everything
//! derived from state (partition counts, log sizes, offsets, lag, Raft, /proc) is computed at
//! scrape time into gauges registered once, so the hot path pays nothing for them.
//!
//! Must never: take a partition lock for longer than reading its size, or fail a request
//! because of metrics. Invariant: one scrape at a time (the gauges are cleared and refilled).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use runnel_protocol::generated::ApiKey;

use crate::broker::Broker;

/// A series' labels, in order. An empty set is the all-topics series.
type Labels = Vec<(&'static str, String)>;
type Gauges = Family<Labels, Gauge>;
type FloatGauges = Family<Labels, Gauge<f64, AtomicU64>>;

/// The media type of what [`Metrics::render`] returns (prometheus-client writes OpenMetrics).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Quantiles Kafka's request histograms publish (`50thPercentile` … `999thPercentile`).
const QUANTILES: [(f64, &str); 6] = [
    (0.50, "0.50"),
    (0.75, "0.75"),
    (0.95, "0.95"),
    (0.98, "0.98"),
    (0.99, "0.99"),
    (0.999, "0.999"),
];

/// Upper bounds (ms) of the latency buckets: powers of two from 0.125 ms to ~68 minutes.
const LATENCY_BUCKETS: usize = 36;

fn bucket_upper_ms(i: usize) -> f64 {
    0.125 * (1u64 << i) as f64
}

/// A request-latency histogram with fixed exponential buckets; quantiles are read at scrape.
struct Latency {
    buckets: [AtomicU64; LATENCY_BUCKETS],
}

impl Default for Latency {
    fn default() -> Self {
        Latency {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

impl Latency {
    fn observe(&self, elapsed: Duration) {
        let ms = elapsed.as_secs_f64() * 1000.0;
        let i = (0..LATENCY_BUCKETS)
            .find(|&i| ms <= bucket_upper_ms(i))
            .unwrap_or(LATENCY_BUCKETS - 1);
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
    }

    /// The upper bound of the bucket holding quantile `q` (0 when nothing was observed).
    fn quantile_ms(&self, q: f64) -> f64 {
        let counts: Vec<u64> = self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).collect();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return 0.0;
        }
        let rank = (q * total as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, c) in counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return bucket_upper_ms(i);
            }
        }
        bucket_upper_ms(LATENCY_BUCKETS - 1)
    }
}

/// Handles to one topic's counters (and the all-topics ones), taken once per partition.
struct TopicCounters {
    messages_in: Counter,
    bytes_in: Counter,
    bytes_out: Counter,
    failed_produce: Counter,
    failed_fetch: Counter,
}

/// Counter families of `kafka_server_brokertopicmetrics_*`.
#[derive(Default)]
struct TopicFamilies {
    messages_in: Family<Labels, Counter>,
    bytes_in: Family<Labels, Counter>,
    bytes_out: Family<Labels, Counter>,
    failed_produce: Family<Labels, Counter>,
    failed_fetch: Family<Labels, Counter>,
}

impl TopicFamilies {
    fn counters(&self, labels: &Labels) -> TopicCounters {
        TopicCounters {
            messages_in: self.messages_in.get_or_create(labels).clone(),
            bytes_in: self.bytes_in.get_or_create(labels).clone(),
            bytes_out: self.bytes_out.get_or_create(labels).clone(),
            failed_produce: self.failed_produce.get_or_create(labels).clone(),
            failed_fetch: self.failed_fetch.get_or_create(labels).clone(),
        }
    }
}

/// Gauges refilled at every scrape.
#[derive(Default)]
struct ScrapeGauges {
    partition_count: Gauge,
    leader_count: Gauge,
    under_replicated: Gauge,
    under_min_isr: Gauge,
    active_controller: Gauge,
    offline_partitions: Gauge,
    raft_leader: Gauge,
    raft_epoch: Gauge,
    raft_high_watermark: Gauge,
    request_time_ms: FloatGauges,
    log_size: Gauges,
    partition_current_offset: Gauges,
    partition_oldest_offset: Gauges,
    group_lag: Gauges,
    group_lag_sum: Gauges,
    group_current_offset: Gauges,
    log_dir_size: Gauges,
    log_dir_capacity: Gauges,
    log_dir_available: Gauges,
    resident_memory: Gauge,
    virtual_memory: Gauge,
    open_fds: Gauge,
    max_fds: Gauge,
    cpu_seconds: Gauge<f64, AtomicU64>,
    start_time_seconds: Gauge<f64, AtomicU64>,
}

/// The broker's metrics. Create once per process with [`Metrics::new`].
pub struct Metrics {
    registry: Registry,
    per_partition: bool,
    topics: TopicFamilies,
    /// Each topic's counters, looked up once: a family lookup hashes the label set, and every
    /// Produce and Fetch counts into five of them.
    topic_counters: RwLock<HashMap<String, TopicCounters>>,
    all_topics: TopicCounters,
    latency: RwLock<HashMap<&'static str, std::sync::Arc<Latency>>>,
    gauges: ScrapeGauges,
    /// Held for a whole scrape: the gauges are cleared and refilled.
    scrape: Mutex<()>,
    start_time_seconds: f64,
}

impl Metrics {
    /// Registers every family once. `per_partition = false` drops the per-partition series
    /// (`runnel.metrics.per.partition`), for brokers with many partitions.
    pub fn new(per_partition: bool) -> Metrics {
        let topics = TopicFamilies::default();
        let gauges = ScrapeGauges::default();
        let mut registry = Registry::default();
        register_topic_families(&mut registry, &topics);
        register_gauges(&mut registry, &gauges);
        let all_topics = topics.counters(&Vec::new());
        let start_time_seconds = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        Metrics {
            registry,
            per_partition,
            topics,
            topic_counters: RwLock::new(HashMap::new()),
            all_topics,
            latency: RwLock::new(HashMap::new()),
            gauges,
            scrape: Mutex::new(()),
            start_time_seconds,
        }
    }

    /// Runs `count` on `topic`'s counters, registering them on first use.
    fn topic(&self, topic: &str, count: impl FnOnce(&TopicCounters)) {
        if let Some(counters) = self.topic_counters.read().unwrap_or_else(|e| e.into_inner()).get(topic) {
            return count(counters);
        }
        let mut all = self.topic_counters.write().unwrap_or_else(|e| e.into_inner());
        let counters = all
            .entry(topic.to_string())
            .or_insert_with(|| self.topics.counters(&vec![("topic", topic.to_string())]));
        count(counters);
    }

    /// A successful append of `messages` records in `bytes` batch bytes (as received).
    pub fn produced(&self, topic: &str, messages: u64, bytes: u64) {
        self.topic(topic, |t| {
            t.messages_in.inc_by(messages);
            t.bytes_in.inc_by(bytes);
        });
        self.all_topics.messages_in.inc_by(messages);
        self.all_topics.bytes_in.inc_by(bytes);
    }

    /// A partition of a produce request that failed.
    pub fn produce_failed(&self, topic: &str) {
        self.topic(topic, |t| {
            t.failed_produce.inc();
        });
        self.all_topics.failed_produce.inc();
    }

    /// `bytes` of record batches sent to a consumer for `topic`.
    pub fn fetched(&self, topic: &str, bytes: u64) {
        if bytes == 0 {
            return;
        }
        self.topic(topic, |t| {
            t.bytes_out.inc_by(bytes);
        });
        self.all_topics.bytes_out.inc_by(bytes);
    }

    /// A partition of a fetch request that failed.
    pub fn fetch_failed(&self, topic: &str) {
        self.topic(topic, |t| {
            t.failed_fetch.inc();
        });
        self.all_topics.failed_fetch.inc();
    }

    /// Counts a fetch response that is about to be sent: bytes out and failed partitions.
    /// Topic names missing from the response (Fetch v13+ uses ids) are resolved in the image.
    pub fn fetch_response(
        &self,
        broker: &Broker,
        response: &runnel_protocol::generated::fetch_response::FetchResponse,
    ) {
        let image = broker.image();
        for topic in &response.responses {
            let name = if topic.topic.is_empty() {
                match image.topic_by_id(&topic.topic_id.0) {
                    Some(t) => t.name.clone(),
                    None => continue,
                }
            } else {
                topic.topic.clone()
            };
            let mut bytes = 0u64;
            for p in &topic.partitions {
                if p.error_code != 0 {
                    self.fetch_failed(&name);
                }
                bytes += p.records.as_ref().map_or(0, |r| r.len() as u64);
            }
            self.fetched(&name, bytes);
        }
    }

    /// Records one request's total time under Kafka's request name (`FetchConsumer` for
    /// consumer fetches; a single node has no followers).
    pub fn request_done(&self, key: ApiKey, elapsed: Duration) {
        let name = if key == ApiKey::Fetch {
            "FetchConsumer"
        } else {
            key.name()
        };
        let existing = self.latency.read().map(|m| m.get(name).cloned()).ok().flatten();
        let latency = match existing {
            Some(l) => l,
            None => match self.latency.write() {
                Ok(mut m) => m.entry(name).or_default().clone(),
                Err(_) => return,
            },
        };
        latency.observe(elapsed);
    }

    /// Renders every series. `broker` is `None` while the broker is still starting: then only
    /// the counters and process metrics are shown.
    pub fn render(&self, broker: Option<&Broker>) -> String {
        let _one_at_a_time = self.scrape.lock().unwrap_or_else(|e| e.into_inner());
        self.refresh_process();
        self.refresh_latency();
        if let Some(b) = broker {
            self.refresh_broker(b);
        }
        let mut out = String::new();
        if let Err(e) = encode(&mut out, &self.registry) {
            tracing::warn!(error = %e, "encoding metrics failed");
        }
        out
    }

    fn refresh_latency(&self) {
        let g = &self.gauges.request_time_ms;
        g.clear();
        let Ok(map) = self.latency.read() else { return };
        for (name, latency) in map.iter() {
            for (q, label) in QUANTILES {
                let labels = vec![("request", name.to_string()), ("quantile", label.to_string())];
                g.get_or_create(&labels).set(latency.quantile_ms(q));
            }
        }
    }

    fn refresh_broker(&self, broker: &Broker) {
        let g = &self.gauges;
        let image = broker.image();
        let partitions = broker.replicas.all();
        let node = broker.node_id;
        let mut leaders = 0;
        let mut under_min_isr = 0;
        for p in &partitions {
            if image
                .topic(&p.topic)
                .and_then(|t| t.partitions.get(p.index as usize))
                .is_some_and(|pi| pi.leader == node)
            {
                leaders += 1;
            }
            if p.settings().min_insync_replicas > 1 {
                // The ISR of a single broker is this broker alone.
                under_min_isr += 1;
            }
        }
        g.partition_count.set(partitions.len() as i64);
        g.leader_count.set(leaders);
        g.under_replicated.set(0);
        g.under_min_isr.set(under_min_isr);
        let offline = image
            .topics()
            .flat_map(|t| t.partitions.iter())
            .filter(|p| p.leader < 0)
            .count();
        g.offline_partitions.set(offline as i64);
        let status = broker.quorum.status();
        let leader = status.leader_id.map_or(-1, |l| l as i64);
        g.active_controller.set(i64::from(leader == i64::from(node)));
        g.raft_leader.set(leader);
        g.raft_epoch.set(status.epoch as i64);
        g.raft_high_watermark.set(status.high_watermark as i64);
        self.refresh_partitions(broker, &partitions);
        self.refresh_groups(broker, &partitions);
    }

    fn refresh_partitions(&self, broker: &Broker, partitions: &[std::sync::Arc<crate::replica::Partition>]) {
        let g = &self.gauges;
        for family in [
            &g.log_size,
            &g.partition_current_offset,
            &g.partition_oldest_offset,
            &g.log_dir_size,
        ] {
            family.clear();
        }
        let mut total_bytes = 0u64;
        for p in partitions {
            let size = p.log().size_bytes();
            total_bytes += size;
            if !self.per_partition {
                continue;
            }
            let labels = vec![("topic", p.topic.clone()), ("partition", p.index.to_string())];
            g.log_size.get_or_create(&labels).set(size as i64);
            g.partition_current_offset
                .get_or_create(&labels)
                .set(p.high_watermark());
            g.partition_oldest_offset
                .get_or_create(&labels)
                .set(p.log_start_offset());
        }
        let dir = broker.replicas.log_dir();
        let labels = vec![("log_dir", dir.display().to_string())];
        g.log_dir_size.get_or_create(&labels).set(total_bytes as i64);
        if let Ok((total, available)) = runnel_storage::disk_space(dir) {
            g.log_dir_capacity.get_or_create(&labels).set(total as i64);
            g.log_dir_available.get_or_create(&labels).set(available as i64);
        }
    }

    /// kafka-exporter's lag family from the committed offsets the coordinator holds and the
    /// partitions' high watermarks. Lag is never negative.
    fn refresh_groups(&self, broker: &Broker, partitions: &[std::sync::Arc<crate::replica::Partition>]) {
        let g = &self.gauges;
        for family in [&g.group_lag, &g.group_lag_sum, &g.group_current_offset] {
            family.clear();
        }
        for shard in broker.groups.shards() {
            let committed = crate::group::read(shard, |c| {
                let mut out = Vec::new();
                for group in c.group_ids() {
                    for p in partitions {
                        if let Some(v) = c.committed(group, &p.topic, p.index) {
                            out.push((group.clone(), p.clone(), v.offset));
                        }
                    }
                }
                out
            });
            let mut sums: HashMap<(String, String), i64> = HashMap::new();
            for (group, p, offset) in committed {
                let lag = (p.high_watermark() - offset).max(0);
                *sums.entry((group.clone(), p.topic.clone())).or_default() += lag;
                if !self.per_partition {
                    continue;
                }
                let labels = vec![
                    ("consumergroup", group),
                    ("topic", p.topic.clone()),
                    ("partition", p.index.to_string()),
                ];
                g.group_lag.get_or_create(&labels).set(lag);
                g.group_current_offset.get_or_create(&labels).set(offset);
            }
            for ((group, topic), lag) in sums {
                g.group_lag_sum
                    .get_or_create(&vec![("consumergroup", group), ("topic", topic)])
                    .set(lag);
            }
        }
    }

    fn refresh_process(&self) {
        let g = &self.gauges;
        g.start_time_seconds.set(self.start_time_seconds);
        let p = process_stats();
        g.resident_memory.set(p.resident_bytes);
        g.virtual_memory.set(p.virtual_bytes);
        g.open_fds.set(p.open_fds);
        g.max_fds.set(p.max_fds);
        g.cpu_seconds.set(p.cpu_seconds);
    }
}

fn register_topic_families(registry: &mut Registry, t: &TopicFamilies) {
    let prefix = "kafka_server_brokertopicmetrics_";
    let families = [
        (
            "messagesin",
            "Records appended (per topic, and over all topics without a topic label)",
            &t.messages_in,
        ),
        (
            "bytesin",
            "Record-batch bytes received by successful produce requests",
            &t.bytes_in,
        ),
        ("bytesout", "Record-batch bytes sent in fetch responses", &t.bytes_out),
        (
            "failedproducerequests",
            "Produce partitions that failed",
            &t.failed_produce,
        ),
        ("failedfetchrequests", "Fetch partitions that failed", &t.failed_fetch),
    ];
    for (name, help, family) in families {
        registry.register(format!("{prefix}{name}"), help, family.clone());
    }
}

fn register_gauges(r: &mut Registry, g: &ScrapeGauges) {
    let rm = "kafka_server_replicamanager_";
    r.register(
        format!("{rm}partitioncount"),
        "Partitions hosted here",
        g.partition_count.clone(),
    );
    r.register(
        format!("{rm}leadercount"),
        "Partitions led here",
        g.leader_count.clone(),
    );
    r.register(
        format!("{rm}underreplicatedpartitions"),
        "Partitions whose ISR is smaller than their replica set",
        g.under_replicated.clone(),
    );
    r.register(
        format!("{rm}underminisrpartitioncount"),
        "Partitions whose ISR is below min.insync.replicas",
        g.under_min_isr.clone(),
    );
    let kc = "kafka_controller_kafkacontroller_";
    r.register(
        format!("{kc}activecontrollercount"),
        "1 on the active controller",
        g.active_controller.clone(),
    );
    r.register(
        format!("{kc}offlinepartitionscount"),
        "Partitions without a leader",
        g.offline_partitions.clone(),
    );
    let raft = "kafka_server_raftmetrics_";
    r.register(
        format!("{raft}current_leader"),
        "Metadata quorum leader id (-1 when unknown)",
        g.raft_leader.clone(),
    );
    r.register(
        format!("{raft}current_epoch"),
        "Metadata quorum epoch",
        g.raft_epoch.clone(),
    );
    r.register(
        format!("{raft}high_watermark"),
        "Metadata log high watermark",
        g.raft_high_watermark.clone(),
    );
    r.register(
        "kafka_network_requestmetrics_totaltimems",
        "Request total time quantiles in ms, by Kafka request name",
        g.request_time_ms.clone(),
    );
    r.register("kafka_log_log_size", "Partition log size in bytes", g.log_size.clone());
    r.register(
        "kafka_topic_partition_current_offset",
        "Partition high watermark",
        g.partition_current_offset.clone(),
    );
    r.register(
        "kafka_topic_partition_oldest_offset",
        "Partition log start offset",
        g.partition_oldest_offset.clone(),
    );
    r.register(
        "kafka_consumergroup_lag",
        "High watermark minus committed offset",
        g.group_lag.clone(),
    );
    r.register(
        "kafka_consumergroup_lag_sum",
        "Consumer lag summed over a topic's partitions",
        g.group_lag_sum.clone(),
    );
    r.register(
        "kafka_consumergroup_current_offset",
        "Committed offset",
        g.group_current_offset.clone(),
    );
    r.register(
        "runnel_log_dir_size_bytes",
        "Bytes of partition logs in the log dir",
        g.log_dir_size.clone(),
    );
    r.register(
        "runnel_log_dir_capacity_bytes",
        "Size of the file system holding the log dir",
        g.log_dir_capacity.clone(),
    );
    r.register(
        "runnel_log_dir_available_bytes",
        "Free bytes on the file system holding the log dir",
        g.log_dir_available.clone(),
    );
    r.register(
        "process_resident_memory_bytes",
        "Resident memory size in bytes",
        g.resident_memory.clone(),
    );
    r.register(
        "process_virtual_memory_bytes",
        "Virtual memory size in bytes",
        g.virtual_memory.clone(),
    );
    r.register("process_open_fds", "Open file descriptors", g.open_fds.clone());
    r.register("process_max_fds", "Maximum open file descriptors", g.max_fds.clone());
    r.register(
        "process_cpu_seconds_total",
        "User and system CPU time spent, in seconds",
        g.cpu_seconds.clone(),
    );
    r.register(
        "process_start_time_seconds",
        "Start time of the process since the Unix epoch, in seconds",
        g.start_time_seconds.clone(),
    );
}

/// What a tiny /proc reader finds; zeros where /proc is missing (non-Linux).
#[derive(Debug, Default, PartialEq)]
pub struct ProcessStats {
    pub resident_bytes: i64,
    pub virtual_bytes: i64,
    pub open_fds: i64,
    pub max_fds: i64,
    pub cpu_seconds: f64,
}

fn process_stats() -> ProcessStats {
    let mut s = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|stat| parse_proc_stat(&stat, page_size_bytes(), clock_ticks_per_second()))
        .unwrap_or_default();
    s.open_fds = std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as i64);
    s.max_fds = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|l| parse_max_open_files(&l))
        .unwrap_or(0);
    s
}

/// Linux's page size and clock tick rate on every platform we ship for.
fn page_size_bytes() -> i64 {
    4096
}

fn clock_ticks_per_second() -> f64 {
    100.0
}

/// Parses `/proc/self/stat`: utime, stime (fields 14, 15), vsize (23), rss in pages (24).
/// The command name (field 2) may hold spaces and parentheses, so fields count from its last `)`.
pub fn parse_proc_stat(stat: &str, page_size_bytes: i64, ticks_per_second: f64) -> Option<ProcessStats> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state), so field n is at index n - 3.
    let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<i64>().ok());
    let ticks = field(14)? + field(15)?;
    Some(ProcessStats {
        resident_bytes: field(24)?.saturating_mul(page_size_bytes),
        virtual_bytes: field(23)?,
        open_fds: 0,
        max_fds: 0,
        cpu_seconds: ticks as f64 / ticks_per_second,
    })
}

/// The soft limit on the "Max open files" line of `/proc/self/limits`.
pub fn parse_max_open_files(limits: &str) -> Option<i64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..].split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_stat_fields_count_from_the_last_parenthesis() {
        let stat = "42 (odd) name)) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 8 0 1000 123456789 300 18446744073709551615";
        let s = parse_proc_stat(stat, 4096, 100.0).expect("parses");
        assert_eq!(s.virtual_bytes, 123_456_789);
        assert_eq!(s.resident_bytes, 300 * 4096);
        assert!((s.cpu_seconds - 3.0).abs() < 1e-9);
        assert!(parse_proc_stat("garbage", 4096, 100.0).is_none());
    }

    #[test]
    fn max_open_files_is_the_soft_limit() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units\nMax open files            1024                 524288               files\n";
        assert_eq!(parse_max_open_files(limits), Some(1024));
        assert_eq!(parse_max_open_files("nothing"), None);
    }

    #[test]
    fn latency_quantiles_come_from_bucket_bounds() {
        let l = Latency::default();
        assert_eq!(l.quantile_ms(0.99), 0.0);
        for _ in 0..99 {
            l.observe(Duration::from_micros(900));
        }
        l.observe(Duration::from_millis(100));
        assert_eq!(l.quantile_ms(0.50), 1.0);
        assert_eq!(l.quantile_ms(0.99), 1.0);
        assert_eq!(l.quantile_ms(0.999), 128.0);
    }

    #[test]
    fn counters_render_with_and_without_topic_label() {
        let m = Metrics::new(true);
        m.produced("orders", 3, 300);
        m.produced("audit", 2, 50);
        m.produce_failed("orders");
        m.request_done(ApiKey::Produce, Duration::from_millis(2));
        let text = m.render(None);
        assert!(
            text.contains("kafka_server_brokertopicmetrics_messagesin_total{topic=\"orders\"} 3\n"),
            "{text}"
        );
        assert!(
            text.contains("kafka_server_brokertopicmetrics_messagesin_total{} 5\n"),
            "{text}"
        );
        assert!(
            text.contains("kafka_server_brokertopicmetrics_bytesin_total{} 350\n"),
            "{text}"
        );
        assert!(text.contains("kafka_server_brokertopicmetrics_failedproducerequests_total{topic=\"orders\"} 1\n"));
        assert!(
            text.contains("kafka_network_requestmetrics_totaltimems{request=\"Produce\",quantile=\"0.99\"} 2.0"),
            "{text}"
        );
        assert!(text.contains("process_open_fds "), "{text}");
        assert!(text.ends_with("# EOF\n"));
    }
}
