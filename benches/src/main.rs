//! `loadgen`: measures a Kafka-compatible broker the way `rdkafka_performance` and
//! `kafka-producer-perf-test` users do, on librdkafka (the `rdkafka` crate).
//!
//! Subcommands: `produce` (throughput and produce-ack latency), `consume` (throughput, assigned
//! or group), `latency` (end to end, paced, HDR histogram) and `start` (cold start and idle
//! RSS). Each run also samples the broker's RSS and CPU time from `/proc/<pid>`, for a broker
//! `loadgen` starts itself (`--broker-bin`) or one given by `--broker-pid`. `--runs N` repeats
//! and reports the median; output is a table, or one JSON object per run with `--json`.
//!
//! It never changes a broker's configuration and only ever kills the broker it spawned. Errors
//! end the command with a message and exit status 1; nothing here panics on broker data.
//! README.md beside this crate has the commands for the targets. All `unsafe` lives in
//! `native.rs`: librdkafka's topic-handle and batch produce calls, which the binding lacks.

#![deny(unsafe_code)]

mod broker;
mod consume;
mod kafka;
mod latency;
#[allow(unsafe_code)] // librdkafka calls the rdkafka crate does not expose; the one place allowed
mod native;
mod procstat;
mod produce;
mod raw;
mod report;
mod start;

use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use clap::{Parser, Subcommand};
use rdkafka::consumer::{BaseConsumer, Consumer};

use broker::Broker;
use kafka::{client_config, fixed, settings, CONSUMER_FIXED, PRODUCER_FIXED};
use procstat::{HostSampler, ProcStats, Sampler};
use report::{latency_metrics, share_over, throughput_metrics, Metrics, Report};

pub type Result<T> = std::result::Result<T, String>;

#[derive(Parser)]
#[command(name = "loadgen", about = "Load generator for Kafka-compatible brokers (librdkafka)")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Cold start of a fresh broker to its first acknowledged produce, and its idle RSS.
    Start(start::StartArgs),
    /// Produce throughput and produce-ack latency.
    Produce(ProduceArgs),
    /// Consume throughput, reading the topic from the beginning.
    Consume(ConsumeArgs),
    /// End-to-end latency (send to receive) at a paced rate.
    Latency(LatencyArgs),
}

/// Which broker to measure, and how to report.
#[derive(clap::Args)]
struct Target {
    /// Broker to connect to (host:port). Give this or --broker-bin.
    #[arg(long, required_unless_present = "broker_bin", conflicts_with = "broker_bin")]
    bootstrap: Option<String>,
    /// Start this broker binary (`runnel serve`) on 127.0.0.1 with a fresh log dir, measure
    /// it, and stop it at the end.
    #[arg(long)]
    broker_bin: Option<PathBuf>,
    /// Broker configuration override for --broker-bin, e.g. log.flush.policy=fsync (repeatable).
    #[arg(long = "broker-override", value_name = "KEY=VALUE", requires = "broker_bin")]
    broker_overrides: Vec<String>,
    /// Process id of the --bootstrap broker, to sample its RSS and CPU time.
    #[arg(long, conflicts_with = "broker_bin")]
    broker_pid: Option<u32>,
    /// Repeat the measurement this many times and report the median of each figure.
    #[arg(long, default_value_t = 1)]
    runs: usize,
    /// One JSON object per run (and one for the median) instead of a table.
    #[arg(long)]
    json: bool,
    /// librdkafka property for every client, overriding ours (repeatable), as rdkafka_performance -X.
    #[arg(short = 'X', long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Interval of the broker RSS samples.
    #[arg(long, default_value_t = 100)]
    sample_ms: u64,
    /// Before each run, write dirty pages back (`sync`) and pause this long, so a run does not
    /// share the disk and the CPU with the write-back of the runs before it. 0: no sync.
    #[arg(long, default_value_t = 0)]
    settle_ms: u64,
}

/// Producer options shared by `produce` and `latency`.
#[derive(clap::Args)]
struct ProducerOpts {
    /// Value bytes per record (no key).
    #[arg(long, alias = "size", default_value_t = 100)]
    record_size: usize,
    /// librdkafka batch.size: bytes per partition batch.
    #[arg(long, alias = "batch-bytes", default_value_t = 16384)]
    batch_size: usize,
    /// librdkafka linger.ms [default: 5 for produce (Kafka 4 and librdkafka default), 0 for latency].
    #[arg(long)]
    linger_ms: Option<u64>,
    /// acks: 0, 1 or all.
    #[arg(long, default_value = "1")]
    acks: String,
    /// compression.codec: none, gzip, snappy, lz4, zstd.
    #[arg(long, default_value = "none")]
    compression: String,
    /// Partitions of the topic when loadgen creates it (an existing topic keeps its count).
    #[arg(long, default_value_t = 1)]
    partitions: i32,
    /// Producer threads, each with its own librdkafka producer (and connection).
    #[arg(long, default_value_t = 1)]
    producers: usize,
    /// Who picks each record's partition: `librdkafka` (none is set, so its default sticky
    /// partitioner picks) or `loadgen` (it sets the partition itself, moving on to the next
    /// one whenever a batch is full: the sticky partitioner's pattern without its per-record
    /// clock reads and availability checks, as `rdkafka_performance -p` spares them).
    #[arg(long, value_enum, default_value = "librdkafka")]
    partitioner: produce::Partitioner,
    /// How librdkafka is handed records, always through a topic handle made once (as
    /// rdkafka_performance does): `single` calls rd_kafka_produce per record, as
    /// rdkafka_performance does; `batch` calls rd_kafka_produce_batch per block of up to 64
    /// records bound for one partition.
    #[arg(long, value_enum, default_value = "single")]
    produce_call: native::ProduceCall,
    /// `librdkafka`, or `raw`: requests written with the broker's own codec over one
    /// connection per producer (and one fetching connection for `latency`), so the client
    /// costs next to nothing and the broker is what is measured. Uncompressed; acks 1 or all;
    /// linger does not apply (`produce` resends the same bytes as fast as it can).
    #[arg(long, value_enum, default_value = "librdkafka")]
    client: ClientKind,
    /// With --client raw: requests outstanding per producer connection (Kafka's
    /// max.in.flight.requests.per.connection default).
    #[arg(long, default_value_t = 5)]
    in_flight: usize,
}

#[derive(clap::Args)]
struct ProduceArgs {
    #[command(flatten)]
    target: Target,
    #[command(flatten)]
    producer: ProducerOpts,
    #[arg(long, default_value = "loadgen")]
    topic: String,
    /// Records per run, over all producers.
    #[arg(long, default_value_t = 1_000_000)]
    records: u64,
    /// Target records/s over all producers, paced; 0 = as fast as possible.
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
}

/// Who sends the records (`--client`).
#[derive(Clone, Copy, Debug, PartialEq, clap::ValueEnum)]
enum ClientKind {
    Librdkafka,
    Raw,
}

#[derive(clap::Args)]
struct ConsumeArgs {
    #[command(flatten)]
    target: Target,
    #[arg(long, default_value = "loadgen")]
    topic: String,
    /// Records per run, over all consumers.
    #[arg(long, default_value_t = 1_000_000)]
    records: u64,
    #[arg(long, default_value_t = 1)]
    consumers: usize,
    #[arg(long, value_enum, default_value = "assign")]
    mode: consume::Mode,
    /// First produce (at full speed, untimed) whatever the topic lacks of --records.
    #[arg(long)]
    fill: bool,
    /// Record size for --fill.
    #[arg(long, default_value_t = 100)]
    record_size: usize,
    /// Partitions of the topic when loadgen creates it.
    #[arg(long, default_value_t = 1)]
    partitions: i32,
    /// Give up on a run after this long.
    #[arg(long, default_value_t = 300)]
    timeout_s: u64,
}

#[derive(clap::Args)]
struct LatencyArgs {
    #[command(flatten)]
    target: Target,
    #[command(flatten)]
    producer: ProducerOpts,
    #[arg(long, default_value = "loadgen-latency")]
    topic: String,
    /// Records/s sent, over all producers.
    #[arg(long, default_value_t = 10_000.0)]
    rate: f64,
    /// Instead of --rate: measure the maximum end-to-end rate first (--probe-records produced
    /// at full speed and consumed, same settings) and send at this fraction of it, e.g. 0.5.
    #[arg(long)]
    rate_of_max: Option<f64>,
    #[arg(long, default_value_t = 3_000_000)]
    probe_records: u64,
    /// Measured seconds per run, after the warm-up.
    #[arg(long, default_value_t = 10.0)]
    duration_s: f64,
    /// Seconds sent first and left out of the histogram and the rates.
    #[arg(long, default_value_t = 2.0)]
    warmup_s: f64,
    /// Also write each run's records per millisecond sent, with the longest delay among them
    /// (see `latency::Timeline`), to this file.
    #[arg(long)]
    timeline: Option<std::path::PathBuf>,
}

fn main() {
    kafka::init_logging();
    let outcome = match Cli::parse().command {
        Cmd::Start(a) => start::run(&a),
        Cmd::Produce(a) => produce_cmd(&a),
        Cmd::Consume(a) => consume_cmd(&a),
        Cmd::Latency(a) => latency_cmd(&a),
    };
    if let Err(e) = outcome {
        eprintln!("loadgen: {e}");
        std::process::exit(1);
    }
}

/// The broker of this invocation, with the configuration lines that describe it.
struct Session {
    broker: Broker,
    overrides: Vec<(String, String)>,
    sample: Duration,
    settle: Duration,
}

impl Session {
    fn open(t: &Target, tag: &str) -> Result<Session> {
        let broker = match (&t.bootstrap, &t.broker_bin) {
            (Some(b), _) => Broker::external(b.clone(), t.broker_pid),
            (None, Some(bin)) => Broker::spawn(bin, &t.broker_overrides, tag)?,
            (None, None) => return Err("give --bootstrap or --broker-bin".into()),
        };
        let overrides = t.set.iter().map(|s| kafka::parse_kv(s)).collect::<Result<Vec<_>>>()?;
        if t.runs == 0 {
            return Err("--runs must be at least 1".into());
        }
        Ok(Session {
            broker,
            overrides,
            sample: Duration::from_millis(t.sample_ms.max(1)),
            settle: Duration::from_millis(t.settle_ms),
        })
    }

    fn describe(&self, t: &Target) -> Vec<(String, String)> {
        let mut c = vec![("bootstrap".to_string(), self.broker.bootstrap.clone())];
        if let Some(bin) = &t.broker_bin {
            c.push(("broker_bin".into(), bin.display().to_string()));
            c.push(("broker_overrides".into(), t.broker_overrides.join(" ")));
        }
        let pid = self
            .broker
            .pid
            .map_or("unknown (no RSS/CPU sampling)".into(), |p| p.to_string());
        c.push(("broker_pid".into(), pid));
        c.push(("runs".into(), t.runs.to_string()));
        c.push(("settle_ms".into(), t.settle_ms.to_string()));
        c
    }

    /// `sync`, then the pause, when `--settle-ms` asks for it.
    fn settle(&self) -> Result<()> {
        if self.settle.is_zero() {
            return Ok(());
        }
        let status = std::process::Command::new("sync")
            .status()
            .map_err(|e| format!("sync: {e}"))?;
        if !status.success() {
            return Err(format!("sync: {status}"));
        }
        std::thread::sleep(self.settle);
        Ok(())
    }

    /// Before a run on a broker this process started, `topic` is deleted and made again, empty,
    /// so every run starts from the same state. Nothing outlives such a broker anyway, and on
    /// this VM the page cache a deleted topic frees is reused at once, while pages the guest
    /// has not touched lately must be faulted in from the host: with one topic for all runs,
    /// runs 3-5 of target 1 took 5.2-6.3 s of broker CPU for 5 M records instead of 0.6-0.7 s.
    /// A broker given by `--bootstrap` keeps its topics.
    fn fresh_topic(&self, topic: &str, partitions: i32) -> Result<()> {
        if !self.broker.spawned() {
            return Ok(());
        }
        let got = kafka::recreate_topic(&self.broker.bootstrap, topic, partitions)?;
        if got != partitions {
            return Err(format!("{topic} came back with {got} partitions, not {partitions}"));
        }
        Ok(())
    }

    /// Runs `work` while sampling the broker and this process; appends their figures.
    fn measured<T>(&self, work: impl FnOnce() -> Result<T>) -> Result<(T, Metrics)> {
        self.settle()?;
        let broker = self.broker.pid.map(|pid| Sampler::start(pid, self.sample));
        let me = Sampler::start(std::process::id(), self.sample);
        let host = HostSampler::start();
        let value = work()?;
        let host = host.finish();
        let mut m = Metrics::new();
        if let Some(stats) = broker.and_then(Sampler::finish) {
            m.extend(stats.metrics("broker"));
        }
        if let Some(ProcStats { cpu_pct, .. }) = me.finish() {
            m.push(("loadgen_cpu_pct".into(), cpu_pct));
        }
        m.extend(host);
        Ok((value, m))
    }
}

fn producer_settings(
    o: &ProducerOpts,
    linger_default_ms: u64,
    overrides: &[(String, String)],
) -> Vec<(String, String)> {
    let mut base = vec![
        ("acks".to_string(), o.acks.clone()),
        ("linger.ms".into(), o.linger_ms.unwrap_or(linger_default_ms).to_string()),
        ("batch.size".into(), o.batch_size.to_string()),
        ("compression.codec".into(), o.compression.clone()),
    ];
    base.extend(fixed(PRODUCER_FIXED));
    settings(base, overrides)
}

fn prefixed(prefix: &str, s: &[(String, String)]) -> Vec<(String, String)> {
    s.iter().map(|(k, v)| (format!("{prefix}{k}"), v.clone())).collect()
}

fn produce_cmd(a: &ProduceArgs) -> Result<()> {
    let session = Session::open(&a.target, "produce")?;
    let bootstrap = session.broker.bootstrap.clone();
    let partitions = kafka::ensure_topic(&bootstrap, &a.topic, a.producer.partitions)?;
    let psettings = producer_settings(&a.producer, 5, &session.overrides);
    let cfg = client_config(&bootstrap, &psettings);
    let spec = produce::ProduceSpec {
        records: a.records,
        rate_per_s: a.rate.max(0.0),
        ..produce_spec(&a.topic, &a.producer, partitions)
    };
    let mut config = session.describe(&a.target);
    config.extend(spec_config(&spec, partitions));
    config.extend(prefixed("producer.", &psettings));
    let raw = raw_spec(&a.producer, &spec, partitions)?;
    if let Some(r) = &raw {
        config.push(("client".into(), "raw".into()));
        config.push(("raw_in_flight".into(), r.in_flight.to_string()));
        config.push(("raw_records_per_batch".into(), r.batch_records.to_string()));
    }
    let mut report = Report::new("produce", a.target.json, config);
    for run in 0..a.target.runs {
        if run > 0 {
            session.fresh_topic(&a.topic, partitions)?;
        }
        let (out, proc_metrics) = session.measured(|| match &raw {
            Some(r) => raw::produce(&bootstrap, r, &AtomicU64::new(0)),
            None => produce::run(&cfg, &spec, &AtomicU64::new(0)),
        })?;
        if out.acked == 0 {
            return Err(format!(
                "no record acknowledged: {}",
                out.first_error.unwrap_or_default()
            ));
        }
        let bytes = out.acked * spec.record_size as u64;
        let mut m = throughput_metrics(out.acked, bytes, out.seconds);
        m.push(("failed".into(), out.failed as f64));
        m.extend(latency_metrics("ack", &out.ack_ns));
        m.extend(proc_metrics);
        report.add(m);
    }
    report.finish();
    Ok(())
}

/// The raw producer's spec for `--client raw` (None for librdkafka), or why the options do
/// not fit it.
fn raw_spec(o: &ProducerOpts, spec: &produce::ProduceSpec, partitions: i32) -> Result<Option<raw::RawSpec>> {
    if o.client == ClientKind::Librdkafka {
        return Ok(None);
    }
    if o.compression != "none" {
        return Err("--client raw sends uncompressed batches only".into());
    }
    if spec.rate_per_s > 0.0 && !spec.stamp {
        return Err("raw `produce` is not paced: drop --rate, or measure with `latency`".into());
    }
    Ok(Some(raw::RawSpec {
        topic: spec.topic.clone(),
        records: spec.records,
        record_size: spec.record_size,
        batch_records: produce::records_per_batch(o.batch_size, o.record_size),
        partitions,
        producers: spec.producers,
        acks: raw::acks_value(&o.acks)?,
        in_flight: o.in_flight,
        stamp: spec.stamp,
        rate_per_s: spec.rate_per_s,
        warmup: spec.warmup,
    }))
}

/// A raw latency run: its fetcher starts at the high watermarks, read with a librdkafka
/// consumer before the first send.
fn raw_latency(bootstrap: &str, ccfg: &rdkafka::ClientConfig, spec: &raw::RawSpec) -> Result<latency::LatencyOutcome> {
    let consumer: BaseConsumer = ccfg.create().map_err(|e| format!("consumer: {e}"))?;
    let offsets = latency::high_watermarks(&consumer, &spec.topic)?;
    drop(consumer);
    raw::latency(bootstrap, spec, &offsets)
}

/// The producer part of a run's spec; `records`, `rate_per_s`, `stamp` and `warmup` are the
/// caller's.
fn produce_spec(topic: &str, o: &ProducerOpts, partitions: i32) -> produce::ProduceSpec {
    produce::ProduceSpec {
        topic: topic.to_string(),
        records: 0,
        record_size: o.record_size,
        producers: o.producers,
        rate_per_s: 0.0,
        stamp: false,
        warmup: Duration::ZERO,
        placement: produce::Placement::new(o.partitioner, partitions, o.batch_size, o.record_size),
        call: o.produce_call,
    }
}

fn spec_config(spec: &produce::ProduceSpec, partitions: i32) -> Vec<(String, String)> {
    let rate = if spec.rate_per_s > 0.0 {
        format!("{:.0}", spec.rate_per_s)
    } else {
        "max".into()
    };
    vec![
        ("topic".into(), spec.topic.clone()),
        ("partitions".into(), partitions.to_string()),
        ("records".into(), spec.records.to_string()),
        ("record_size".into(), spec.record_size.to_string()),
        ("producers".into(), spec.producers.to_string()),
        ("partitioner".into(), spec.placement.describe()),
        ("produce_call".into(), format!("{:?}", spec.call).to_lowercase()),
        ("rate_per_s".into(), rate),
    ]
}

fn consume_cmd(a: &ConsumeArgs) -> Result<()> {
    let session = Session::open(&a.target, "consume")?;
    let bootstrap = session.broker.bootstrap.clone();
    let partitions = kafka::ensure_topic(&bootstrap, &a.topic, a.partitions)?;
    if a.fill {
        fill(&session, a, partitions)?;
    }
    let csettings = settings(fixed(CONSUMER_FIXED), &session.overrides);
    let cfg = client_config(&bootstrap, &csettings);
    let mut config = session.describe(&a.target);
    config.extend([
        ("topic".to_string(), a.topic.clone()),
        ("partitions".into(), partitions.to_string()),
        ("records".into(), a.records.to_string()),
        ("consumers".into(), a.consumers.to_string()),
        ("mode".into(), format!("{:?}", a.mode).to_lowercase()),
    ]);
    config.extend(prefixed("consumer.", &csettings));
    let mut report = Report::new("consume", a.target.json, config);
    for run in 0..a.target.runs {
        let spec = consume::ConsumeSpec {
            topic: a.topic.clone(),
            records: a.records,
            consumers: a.consumers,
            mode: a.mode,
            group_id: format!("loadgen-{}-{run}", std::process::id()),
            timeout: Duration::from_secs(a.timeout_s),
        };
        let (out, proc_metrics) = session.measured(|| consume::run(&cfg, &spec, partitions))?;
        let mut m = throughput_metrics(out.records, out.bytes, out.seconds);
        m.push(("first_record_ms".into(), out.first_record_ms));
        m.push(("consumers_used".into(), out.consumers_used as f64));
        m.extend(proc_metrics);
        report.add(m);
    }
    report.finish();
    Ok(())
}

/// Produces what the topic lacks of `--records` (untimed, default producer settings).
fn fill(session: &Session, a: &ConsumeArgs, partitions: i32) -> Result<()> {
    let bootstrap = &session.broker.bootstrap;
    let have = records_in_topic(bootstrap, &a.topic, partitions)?;
    if have >= a.records {
        return Ok(());
    }
    let opts = ProducerOpts {
        record_size: a.record_size,
        batch_size: 16384,
        linger_ms: None,
        acks: "1".into(),
        compression: "none".into(),
        partitions,
        producers: 1,
        partitioner: produce::Partitioner::Librdkafka,
        produce_call: native::ProduceCall::Batch,
        client: ClientKind::Librdkafka,
        in_flight: 5,
    };
    let cfg = client_config(bootstrap, &producer_settings(&opts, 5, &[]));
    let spec = produce::ProduceSpec {
        records: a.records - have,
        ..produce_spec(&a.topic, &opts, partitions)
    };
    eprintln!("fill: topic has {have} records, producing {}", spec.records);
    let out = produce::run(&cfg, &spec, &AtomicU64::new(0))?;
    if out.failed > 0 {
        return Err(format!("fill: {} records failed: {:?}", out.failed, out.first_error));
    }
    Ok(())
}

/// Sum over partitions of high watermark minus log start offset.
fn records_in_topic(bootstrap: &str, topic: &str, partitions: i32) -> Result<u64> {
    let consumer: BaseConsumer = client_config(bootstrap, &[])
        .create()
        .map_err(|e| format!("consumer: {e}"))?;
    let mut total = 0u64;
    for p in 0..partitions {
        let (low, high) = consumer
            .fetch_watermarks(topic, p, Duration::from_secs(10))
            .map_err(|e| format!("watermarks of {topic}-{p}: {e}"))?;
        total += high.saturating_sub(low).max(0) as u64;
    }
    Ok(total)
}

fn latency_cmd(a: &LatencyArgs) -> Result<()> {
    if a.producer.record_size < 8 {
        return Err("--record-size must be at least 8 (the send timestamp)".into());
    }
    let session = Session::open(&a.target, "latency")?;
    let bootstrap = session.broker.bootstrap.clone();
    let partitions = kafka::ensure_topic(&bootstrap, &a.topic, a.producer.partitions)?;
    let psettings = producer_settings(&a.producer, 0, &session.overrides);
    let pcfg = client_config(&bootstrap, &psettings);
    let mut csettings = fixed(CONSUMER_FIXED);
    csettings.push(("group.id".into(), "loadgen-latency".into()));
    csettings = settings(csettings, &session.overrides);
    let ccfg = client_config(&bootstrap, &csettings);
    let rate = latency_rate(a, partitions, &bootstrap, &pcfg, &ccfg)?;
    let total_s = a.warmup_s.max(0.0) + a.duration_s.max(0.0);
    let warmup = Duration::from_secs_f64(a.warmup_s.max(0.0));
    let spec = latency::LatencySpec {
        produce: produce::ProduceSpec {
            records: (rate * total_s).ceil() as u64,
            rate_per_s: rate,
            stamp: true,
            warmup,
            ..produce_spec(&a.topic, &a.producer, partitions)
        },
        warmup,
    };
    let mut config = session.describe(&a.target);
    config.extend(spec_config(&spec.produce, partitions));
    config.push(("warmup_s".into(), a.warmup_s.to_string()));
    config.push(("duration_s".into(), a.duration_s.to_string()));
    config.extend(prefixed("producer.", &psettings));
    config.extend(prefixed("consumer.", &csettings));
    let raw = raw_spec(&a.producer, &spec.produce, partitions)?;
    if raw.is_some() {
        config.push(("client".into(), "raw".into()));
        config.push(("raw_in_flight".into(), a.producer.in_flight.to_string()));
    }
    let mut timeline = a
        .timeline
        .as_ref()
        .map(|path| std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display())))
        .transpose()?
        .map(std::io::BufWriter::new);
    let mut report = Report::new("latency", a.target.json, config);
    for run in 0..a.target.runs {
        if run > 0 || a.rate_of_max.is_some() {
            // The probe, too, leaves a topic behind.
            session.fresh_topic(&a.topic, partitions)?;
        }
        let (out, proc_metrics) = session.measured(|| match &raw {
            Some(r) => raw_latency(&bootstrap, &ccfg, r),
            None => latency::run(&pcfg, &ccfg, &spec),
        })?;
        if out.e2e_ns.is_empty() {
            return Err(format!("no record received after the warm-up ({} sent)", out.sent));
        }
        if let Some(file) = timeline.as_mut() {
            out.timeline
                .write(run + 1, file)
                .and_then(|()| std::io::Write::flush(file))
                .map_err(|e| format!("timeline: {e}"))?;
        }
        let mut m = latency_metrics("e2e", &out.e2e_ns);
        m.extend(share_over("e2e", &out.e2e_ns, &[1, 2]));
        m.extend(throughput_metrics(
            out.e2e_ns.len(),
            out.measured_bytes,
            out.measured_seconds,
        ));
        m.push(("target_rate_per_s".into(), rate));
        m.push((
            "sent_rate_per_s".into(),
            out.sent as f64 / out.produced.seconds.max(1e-9),
        ));
        m.push(("lost".into(), out.sent.saturating_sub(out.received) as f64));
        m.push(("failed".into(), out.produced.failed as f64));
        m.push(("clock_steps".into(), out.clock_steps as f64));
        m.extend(latency_metrics("ack", &out.produced.ack_ns));
        m.extend(proc_metrics);
        report.add(m);
    }
    report.finish();
    Ok(())
}

/// `--rate`, or `--rate-of-max` × the maximum end-to-end rate: a probe with the run's own
/// producer and consumer settings, the producers unpaced, counting what the consumer receives
/// per second. The consumer's work is part of every latency run, so the maximum is what
/// producer, broker and consumer sustain together, not the producer's rate alone.
fn latency_rate(
    a: &LatencyArgs,
    partitions: i32,
    bootstrap: &str,
    pcfg: &rdkafka::ClientConfig,
    ccfg: &rdkafka::ClientConfig,
) -> Result<f64> {
    let Some(fraction) = a.rate_of_max else {
        return Ok(a.rate);
    };
    let probe = latency::LatencySpec {
        produce: produce::ProduceSpec {
            records: a.probe_records,
            stamp: true,
            ..produce_spec(&a.topic, &a.producer, partitions)
        },
        warmup: Duration::ZERO,
    };
    let out = match raw_spec(&a.producer, &probe.produce, partitions)? {
        Some(r) => raw_latency(bootstrap, ccfg, &r)?,
        None => latency::run(pcfg, ccfg, &probe)?,
    };
    if out.received < out.sent || out.measured_seconds <= 0.0 {
        return Err(format!(
            "probe: {} of {} records received end to end",
            out.received, out.sent
        ));
    }
    let max = out.received as f64 / out.measured_seconds;
    let produced = out.produced.acked as f64 / out.produced.seconds.max(1e-9);
    let rate = (max * fraction).max(1.0);
    eprintln!(
        "probe: {max:.0} records/s end to end at full speed (sent at {produced:.0}/s); \
         latency runs at {rate:.0} records/s"
    );
    Ok(rate)
}
