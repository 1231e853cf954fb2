//! `loadgen start`: cold start of a fresh broker (empty log directory) to its first
//! acknowledged produce, then its idle RSS after a settling pause.
//!
//! Owns nothing beyond each run's broker, which it stops (and whose directory it removes)
//! before the next run starts.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use rdkafka::producer::{FutureProducer, FutureRecord};

use crate::broker::Broker;
use crate::kafka::{block_on, client_config, parse_kv, settings};
use crate::procstat::rss_kib;
use crate::report::Report;
use crate::Result;

#[derive(clap::Args)]
pub struct StartArgs {
    /// Broker binary (`runnel`), started as `serve` with a fresh log directory.
    #[arg(long)]
    bin: PathBuf,
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Broker configuration override, e.g. log.flush.policy=fsync (repeatable).
    #[arg(long = "broker-override", value_name = "KEY=VALUE")]
    broker_overrides: Vec<String>,
    /// How long the broker idles after the first produce before its RSS is read.
    #[arg(long, default_value_t = 2000)]
    idle_ms: u64,
    #[arg(long)]
    json: bool,
    /// librdkafka property for the producer, overriding ours (repeatable), e.g. -X debug=all.
    #[arg(short = 'X', long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
}

pub fn run(a: &StartArgs) -> Result<()> {
    let overrides = a.set.iter().map(|s| parse_kv(s)).collect::<Result<Vec<_>>>()?;
    let settings = settings(
        vec![
            ("acks".to_string(), "all".to_string()),
            ("linger.ms".into(), "0".into()),
        ],
        &overrides,
    );
    let mut config = vec![
        ("broker_bin".to_string(), a.bin.display().to_string()),
        ("broker_overrides".into(), a.broker_overrides.join(" ")),
        ("idle_ms".into(), a.idle_ms.to_string()),
        ("runs".into(), a.runs.to_string()),
    ];
    config.extend(settings.iter().map(|(k, v)| (format!("producer.{k}"), v.clone())));
    let mut report = Report::new("start", a.json, config);
    for run in 0..a.runs {
        let begin = Instant::now();
        let broker = Broker::spawn(&a.bin, &a.broker_overrides, &format!("start-{run}"))?;
        let listening = begin.elapsed();
        let acked = first_produce(&broker.bootstrap, &settings)?.duration_since(begin);
        std::thread::sleep(Duration::from_millis(a.idle_ms));
        let rss_mib = broker.pid.and_then(rss_kib).map_or(f64::NAN, |k| k as f64 / 1024.0);
        drop(broker);
        report.add(vec![
            ("first_ack_ms".into(), acked.as_secs_f64() * 1e3),
            ("listening_ms".into(), listening.as_secs_f64() * 1e3),
            ("idle_rss_mib".into(), rss_mib),
        ]);
    }
    report.finish();
    Ok(())
}

/// One record with acks=all to a topic the broker auto-creates, as a first client would.
/// Returns when the acknowledgement arrived: dropping the producer afterwards joins rdkafka's
/// polling thread, which can sit out its 100 ms poll, and is not part of the broker's answer.
fn first_produce(bootstrap: &str, settings: &[(String, String)]) -> Result<Instant> {
    let producer: FutureProducer = client_config(bootstrap, settings)
        .create()
        .map_err(|e| format!("producer: {e}"))?;
    let record = FutureRecord::to("cold-start").key("k").payload("first");
    let acked = block_on(producer.send(record, Duration::from_secs(10)))
        .map(|_| Instant::now())
        .map_err(|(e, _)| format!("first produce: {e}"))?;
    drop(producer);
    Ok(acked)
}
