//! The group coordinator runtime: runs `runnel-coordinator`'s sans-IO state machines inside the
//! broker, one shard per `__consumer_offsets` partition.
//!
//! Owns: creating `__consumer_offsets` (as Kafka does, on the first FindCoordinator for a
//! group, so a broker that never sees a group has no such topic), replaying an existing one
//! into the shards at start-up before the listeners serve, appending the records each decision returns, delivering the answers of
//! parked JoinGroup/SyncGroup requests through oneshot channels, and the ticker that drives
//! session, rebalance and offset-retention timers.
//!
//! Must never: hold a shard lock across an `.await`, or decide group semantics (that is the
//! coordinator crate). Invariant: a shard's records are appended to its partition under the
//! shard lock, so the log order is the order in which the state changed; answers are sent only
//! after the records they depend on were appended.

mod log;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use runnel_coordinator::{
    partition_for, Completion, CoordinatorConfig, Decision, Effects, GroupCoordinator, RequestId,
};
use runnel_protocol::ErrorCode;
use tokio::sync::{oneshot, watch, OnceCell};
use tokio::task::JoinHandle;

use crate::broker::{now_ms, Broker, StartError};
use crate::config::BrokerConfig;

pub use log::OFFSETS_TOPIC;

/// How often group timers are checked; a session or rebalance deadline fires at most this late.
const TICK_INTERVAL: Duration = Duration::from_millis(100);

/// One `__consumer_offsets` partition's groups.
pub struct Shard {
    pub partition: i32,
    state: Mutex<GroupCoordinator>,
    waiters: Mutex<HashMap<RequestId, oneshot::Sender<Completion>>>,
}

impl Shard {
    /// A poisoned lock means a panic mid-operation: the group state is unknown, so we stop.
    fn state(&self) -> MutexGuard<'_, GroupCoordinator> {
        self.state.lock().expect("group shard lock poisoned")
    }

    fn waiters(&self) -> MutexGuard<'_, HashMap<RequestId, oneshot::Sender<Completion>>> {
        self.waiters.lock().expect("group waiters lock poisoned")
    }
}

/// The broker's group coordinator: empty until `__consumer_offsets` exists and is loaded.
#[derive(Default)]
pub struct GroupRuntime {
    shards: OnceCell<Vec<Shard>>,
    next_request: AtomicU64,
}

impl GroupRuntime {
    pub fn new() -> Self {
        Self::default()
    }

    /// The shard that coordinates `group_id`; COORDINATOR_NOT_AVAILABLE until
    /// `__consumer_offsets` exists (clients find the coordinator first, which creates it).
    pub fn shard_for(&self, group_id: &str) -> Result<&Shard, ErrorCode> {
        let shards = self.shards.get().ok_or(ErrorCode::COORDINATOR_NOT_AVAILABLE)?;
        let n = i32::try_from(shards.len()).unwrap_or(i32::MAX);
        let p = partition_for(group_id, n);
        shards
            .get(usize::try_from(p).unwrap_or(0))
            .ok_or(ErrorCode::COORDINATOR_NOT_AVAILABLE)
    }

    pub fn shards(&self) -> &[Shard] {
        self.shards.get().map(Vec::as_slice).unwrap_or(&[])
    }

    fn next_request_id(&self) -> RequestId {
        self.next_request.fetch_add(1, Ordering::Relaxed)
    }

    /// Registers a parked request; its answer arrives through the returned receiver.
    pub fn park(&self, shard: &Shard) -> (RequestId, oneshot::Receiver<Completion>) {
        let id = self.next_request_id();
        let (tx, rx) = oneshot::channel();
        shard.waiters().insert(id, tx);
        (id, rx)
    }
}

/// Runs a membership operation: the state changes under the shard lock, its records are
/// appended there too, then the answers go out.
pub fn run_effects(broker: &Broker, shard: &Shard, op: impl FnOnce(&mut GroupCoordinator) -> Effects) {
    let completions = {
        let mut state = shard.state();
        let fx = op(&mut state);
        if !fx.records.is_empty() {
            if let Err(e) = log::append(broker, shard.partition, &fx.records) {
                // The in-memory state is ahead of the log until the next record for the group.
                tracing::error!(partition = shard.partition, error = %e, "writing group metadata failed");
            }
        }
        fx.completions
    };
    deliver(shard, completions);
}

/// Runs a decision: its records are appended, then applied; the response follows. An append
/// failure changes nothing and is reported as `COORDINATOR_NOT_AVAILABLE`.
pub fn decide<R>(
    broker: &Broker,
    shard: &Shard,
    op: impl FnOnce(&GroupCoordinator) -> Decision<R>,
) -> Result<R, ErrorCode> {
    let mut state = shard.state();
    let decision = op(&state);
    if !decision.records.is_empty() {
        if let Err(e) = log::append(broker, shard.partition, &decision.records) {
            tracing::error!(partition = shard.partition, error = %e, "writing to __consumer_offsets failed");
            return Err(ErrorCode::COORDINATOR_NOT_AVAILABLE);
        }
        state.apply(decision.records);
    }
    Ok(decision.response)
}

/// Runs an operation that changes the state at once and returns its records with the response
/// (ConsumerGroupHeartbeat): the records are appended under the shard lock before the answer.
pub fn run_recorded<R>(
    broker: &Broker,
    shard: &Shard,
    op: impl FnOnce(&mut GroupCoordinator) -> (Vec<runnel_coordinator::CoordinatorRecord>, R),
) -> R {
    let mut state = shard.state();
    let (records, response) = op(&mut state);
    if !records.is_empty() {
        if let Err(e) = log::append(broker, shard.partition, &records) {
            // As in `run_effects`: the live state is ahead of the log until the next record.
            tracing::error!(partition = shard.partition, error = %e, "writing consumer group records failed");
        }
    }
    response
}

/// The KIP-848 consumer-group settings from the broker configuration.
pub fn consumer_config(config: &BrokerConfig) -> runnel_coordinator::ConsumerConfig {
    let num = |key: &str| config.effective(key).and_then(|v| v.trim().parse::<i64>().ok());
    let defaults = runnel_coordinator::ConsumerConfig::default();
    let int = |key: &str, d: i32| {
        num(key)
            .and_then(|v| i32::try_from(v).ok())
            .filter(|v| *v > 0)
            .unwrap_or(d)
    };
    let assignors: Vec<String> = config
        .effective("group.consumer.assignors")
        .map(|v| {
            v.split(',')
                .map(|s| s.trim().rsplit('.').next().unwrap_or_default().to_ascii_lowercase())
                .map(|s| s.trim_end_matches("assignor").to_string())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .filter(|v: &Vec<String>| !v.is_empty())
        .unwrap_or(defaults.assignors.clone());
    runnel_coordinator::ConsumerConfig {
        session_timeout_ms: int("group.consumer.session.timeout.ms", defaults.session_timeout_ms),
        heartbeat_interval_ms: int("group.consumer.heartbeat.interval.ms", defaults.heartbeat_interval_ms),
        max_size: num("group.consumer.max.size")
            .and_then(|v| usize::try_from(v).ok())
            .unwrap_or(defaults.max_size),
        assignors,
    }
}

/// Runs an operation that changes only transient state: no records, no parked answers
/// (Heartbeat).
pub fn update<R>(shard: &Shard, op: impl FnOnce(&mut GroupCoordinator) -> R) -> R {
    op(&mut shard.state())
}

/// Reads a shard's state.
pub fn read<R>(shard: &Shard, op: impl FnOnce(&GroupCoordinator) -> R) -> R {
    op(&shard.state())
}

fn deliver(shard: &Shard, completions: Vec<Completion>) {
    if completions.is_empty() {
        return;
    }
    let mut waiters = shard.waiters();
    for c in completions {
        if let Some(tx) = waiters.remove(&c.request()) {
            // The client may have gone away; nothing to do then.
            let _ = tx.send(c);
        }
    }
}

/// The coordinator settings from the broker configuration.
pub fn coordinator_config(config: &BrokerConfig) -> CoordinatorConfig {
    let num = |key: &str| config.effective(key).and_then(|v| v.trim().parse::<i64>().ok());
    let defaults = CoordinatorConfig::default();
    CoordinatorConfig {
        initial_rebalance_delay_ms: i64::from(config.group_initial_rebalance_delay_ms.max(0)),
        min_session_timeout_ms: config.group_min_session_timeout_ms,
        max_session_timeout_ms: config.group_max_session_timeout_ms,
        max_group_size: num("group.max.size")
            .and_then(|v| usize::try_from(v).ok())
            .unwrap_or(defaults.max_group_size),
        offsets_retention_ms: num("offsets.retention.minutes")
            .map(|m| m.saturating_mul(60_000))
            .unwrap_or(defaults.offsets_retention_ms),
        offset_metadata_max_bytes: num("offset.metadata.max.bytes")
            .and_then(|v| usize::try_from(v).ok())
            .unwrap_or(defaults.offset_metadata_max_bytes),
    }
}

/// Loads an existing `__consumer_offsets` into the shards and starts the ticker. Runs before
/// the listeners serve, so no request sees a half-loaded shard.
pub async fn start(broker: &Arc<Broker>, shutdown: watch::Receiver<bool>) -> Result<JoinHandle<()>, StartError> {
    if let Some(partitions) = log::offsets_topic_partitions(broker) {
        let shards = load_shards(broker, partitions)?;
        if broker.groups.shards.set(shards).is_err() {
            tracing::warn!("group coordinator already started");
        }
    }
    Ok(tokio::spawn(ticker(broker.clone(), shutdown)))
}

/// Creates `__consumer_offsets` (when missing) and loads it, once; concurrent callers wait
/// for the first. FindCoordinator calls this, as Kafka creates the topic on that request.
pub async fn ensure_started(broker: &Broker) -> Result<(), ErrorCode> {
    let result = broker
        .groups
        .shards
        .get_or_try_init(|| async {
            let partitions = log::ensure_offsets_topic(broker).await?;
            load_shards(broker, partitions)
        })
        .await;
    match result {
        Ok(_) => Ok(()),
        Err(e) => {
            tracing::warn!(error = %e, "starting the group coordinator failed");
            Err(ErrorCode::COORDINATOR_NOT_AVAILABLE)
        }
    }
}

/// Replays every partition of `__consumer_offsets` into a fresh shard.
fn load_shards(broker: &Broker, partitions: i32) -> Result<Vec<Shard>, StartError> {
    let config = coordinator_config(&broker.config);
    let mut shards = Vec::with_capacity(usize::try_from(partitions).unwrap_or(0));
    let now = now_ms();
    for partition in 0..partitions {
        let mut coordinator = GroupCoordinator::new(config.clone());
        coordinator.set_consumer_config(consumer_config(&broker.config));
        let loaded = log::load(broker, partition, &mut coordinator)?;
        coordinator.finish_load(now);
        if loaded > 0 {
            tracing::info!(partition, records = loaded, "loaded group coordinator state");
        }
        shards.push(Shard {
            partition,
            state: Mutex::new(coordinator),
            waiters: Mutex::new(HashMap::new()),
        });
    }
    Ok(shards)
}

/// Drives every shard's timers, and offset expiry every `offsets.retention.check.interval.ms`.
async fn ticker(broker: Arc<Broker>, mut shutdown: watch::Receiver<bool>) {
    let check_interval_ms = broker
        .config
        .effective("offsets.retention.check.interval.ms")
        .and_then(|v| v.trim().parse::<i64>().ok())
        .unwrap_or(600_000)
        .max(1);
    let mut last_expiry_ms = now_ms();
    let mut tick = tokio::time::interval(TICK_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let now = now_ms();
                for shard in broker.groups.shards() {
                    run_effects(&broker, shard, |c| c.tick(now));
                }
                if now - last_expiry_ms >= check_interval_ms {
                    last_expiry_ms = now;
                    expire_offsets(&broker, now);
                }
            }
            _ = shutdown.changed() => return,
        }
    }
}

fn expire_offsets(broker: &Broker, now: i64) {
    for shard in broker.groups.shards() {
        let result = decide(broker, shard, |c| Decision {
            records: c.expire_offsets(now),
            response: (),
        });
        if let Err(code) = result {
            tracing::warn!(partition = shard.partition, error = code.name(), "offset expiry failed");
        }
    }
}
