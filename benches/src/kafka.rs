//! librdkafka plumbing shared by the subcommands: client configuration, topic set-up, and a
//! tiny executor for the few futures rdkafka's admin and future producer return.
//!
//! Configuration rule: we set only what a command-line option names (plus the few settings
//! listed in `PRODUCER_FIXED`/`CONSUMER_FIXED`, each with its reason) and leave every other
//! property at librdkafka's default, as `rdkafka_performance` does; `-X key=value` overrides
//! anything. The effective list is printed with every report.

use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::types::RDKafkaErrorCode;

use crate::Result;

/// Producer settings not exposed as options.
pub const PRODUCER_FIXED: &[(&str, &str)] = &[
    // Comparable with kafka-producer-perf-test (idempotence off unless asked; -X can enable it).
    ("enable.idempotence", "false"),
    // The local queue stays at librdkafka's default (100 000 messages, 1 GiB). loadgen used to
    // set 1 000 000 messages: with 1 KiB records each producer then queued up to 1 GB of freshly
    // allocated memory, which on this VM (memory handed back to the host is faulted in again,
    // zeroed) competed with the broker's page cache for fresh pages. 1 KiB acks=all with fsync:
    // 159-205 MB/s with the deep queue, 701-712 MB/s with the default; 100-byte records were
    // faster with the default too. A full queue is handled as rdkafka_performance does: poll
    // and retry.
];

/// Consumer settings not exposed as options.
pub const CONSUMER_FIXED: &[(&str, &str)] = &[
    // Offsets are never the object of measurement; committing would add broker work.
    ("enable.auto.commit", "false"),
    ("auto.offset.reset", "earliest"),
    // librdkafka stops fetching a partition for this long once its local queue holds
    // `queued.min.messages` (100 000) records. With 100-byte records a fetch fills that queue
    // in milliseconds, so the default (1000 ms) left the consumer idle most of each second:
    // 0.22 M records/s against 2.3 M with 10 ms, the broker idle either way.
    ("fetch.queue.backoff.ms", "10"),
];

/// A `log` logger on stderr. The rdkafka crate sets each client's librdkafka `log_level` from
/// what the installed `log` logger enables, so with none `-X debug=...` printed nothing: the
/// debug lines were below the level. With this one they appear (librdkafka writes them only
/// for the contexts `debug` names), and so do warnings the crate logs itself.
struct StderrLog;

impl log::Log for StderrLog {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.target() == "librdkafka" || m.level() <= log::Level::Warn
    }

    fn log(&self, r: &log::Record<'_>) {
        if self.enabled(r.metadata()) {
            eprintln!("{:<5} {}", r.level(), r.args());
        }
    }

    fn flush(&self) {}
}

static STDERR_LOG: StderrLog = StderrLog;

/// Installs the stderr logger; call before the first client config is made.
pub fn init_logging() {
    if log::set_logger(&STDERR_LOG).is_ok() {
        log::set_max_level(log::LevelFilter::Debug);
    }
}

/// `key=value` → (key, value).
pub fn parse_kv(s: &str) -> Result<(String, String)> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("expected key=value, got {s:?}")),
    }
}

/// Builds the settings list: `base` first, then `-X` overrides replacing same-named keys.
pub fn settings(base: Vec<(String, String)>, overrides: &[(String, String)]) -> Vec<(String, String)> {
    let mut out = base;
    for (k, v) in overrides {
        match out.iter_mut().find(|(key, _)| key == k) {
            Some(entry) => entry.1 = v.clone(),
            None => out.push((k.clone(), v.clone())),
        }
    }
    out
}

pub fn fixed(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

pub fn client_config(bootstrap: &str, settings: &[(String, String)]) -> ClientConfig {
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", bootstrap);
    for (k, v) in settings {
        cfg.set(k, v);
    }
    cfg
}

/// Creates `topic` with `partitions` partitions (replication factor 1) unless it exists, then
/// waits until metadata shows a leader for every partition. Returns the partition count.
pub fn ensure_topic(bootstrap: &str, topic: &str, partitions: i32) -> Result<i32> {
    let (admin, opts) = admin(bootstrap)?;
    let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    let results = block_on(admin.create_topics([&new], &opts)).map_err(|e| format!("create topic: {e}"))?;
    for r in results {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((t, code)) => return Err(format!("create topic {t}: {code}")),
        }
    }
    wait_for_leaders(&admin, topic, Duration::from_secs(15))
}

/// Deletes `topic` (its data and page cache go at once) and creates it again, empty, with
/// `partitions`; returns its partition count once every partition has a leader.
pub fn recreate_topic(bootstrap: &str, topic: &str, partitions: i32) -> Result<i32> {
    let (admin, opts) = admin(bootstrap)?;
    let results = block_on(admin.delete_topics(&[topic], &opts)).map_err(|e| format!("delete topic: {e}"))?;
    for r in results {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::UnknownTopicOrPartition)) => {}
            Err((t, code)) => return Err(format!("delete topic {t}: {code}")),
        }
    }
    ensure_topic(bootstrap, topic, partitions)
}

/// An admin client for `bootstrap`, with the options every topic operation here uses.
fn admin(bootstrap: &str) -> Result<(AdminClient<DefaultClientContext>, AdminOptions)> {
    let admin = client_config(bootstrap, &[])
        .create()
        .map_err(|e| format!("admin client: {e}"))?;
    let opts = AdminOptions::new()
        .operation_timeout(Some(Duration::from_secs(10)))
        .request_timeout(Some(Duration::from_secs(10)));
    Ok((admin, opts))
}

fn wait_for_leaders(admin: &AdminClient<DefaultClientContext>, topic: &str, limit: Duration) -> Result<i32> {
    let deadline = Instant::now() + limit;
    loop {
        let md = admin
            .inner()
            .fetch_metadata(Some(topic), Duration::from_secs(5))
            .map_err(|e| format!("metadata: {e}"))?;
        if let Some(t) = md.topics().iter().find(|t| t.name() == topic) {
            let ready = t.error().is_none()
                && !t.partitions().is_empty()
                && t.partitions().iter().all(|p| p.leader() >= 0 && p.error().is_none());
            if ready {
                return Ok(t.partitions().len() as i32);
            }
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "topic {topic} has no leader for every partition after {limit:?}"
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Nanoseconds since the Unix epoch. Producer and consumer run on the same host, so they read
/// the same clock; a step of that clock during a run shows up as `clock_steps` in the report.
pub fn wall_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// A tiny executor for the few futures we await (admin results, one delivery future): rdkafka
/// completes them from its own threads, so parking until woken is all that is needed.
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    use std::sync::Arc;
    use std::task::{Context, Poll, Wake, Waker};
    struct Thread(std::thread::Thread);
    impl Wake for Thread {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Thread(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut f = std::pin::pin!(f);
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park_timeout(Duration::from_millis(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn with_the_logger_clients_pass_librdkafka_its_debug_lines() {
        init_logging();
        // What `-X debug=...` needs: the level each client config hands librdkafka.
        let level = ClientConfig::new().log_level;
        assert!(matches!(level, rdkafka::config::RDKafkaLogLevel::Debug), "{level:?}");
    }

    #[test]
    fn overrides_replace_and_append() {
        let base = fixed(&[("acks", "1"), ("linger.ms", "5")]);
        let over = vec![parse_kv("acks=all").expect("kv"), parse_kv("debug=msg").expect("kv")];
        let s = settings(base, &over);
        assert_eq!(s, fixed(&[("acks", "all"), ("linger.ms", "5"), ("debug", "msg")]));
        assert!(parse_kv("novalue").is_err());
        assert!(parse_kv("=x").is_err());
        assert_eq!(parse_kv("a=b=c").expect("kv"), ("a".into(), "b=c".into()));
    }
}
