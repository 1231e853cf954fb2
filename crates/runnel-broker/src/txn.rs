//! The transaction coordinator runtime: runs `runnel_coordinator::txn`'s sans-IO state machine
//! inside the broker over `__transaction_state`, and writes the transaction markers.
//!
//! Owns: creating `__transaction_state` (on the first transactional FindCoordinator or
//! InitProducerId, as Kafka does), loading it before the listeners serve and finishing the
//! transactions a crash left between prepare and complete, appending the coordinator's records,
//! writing commit/abort markers to every partition of a transaction (and completing pending
//! transactional offsets in the group coordinator), and the ticker that aborts timed-out
//! transactions and forgets expired transactional ids.
//!
//! Must never: decide transaction semantics (the coordinator crate does), take a partition log
//! lock while holding the coordinator lock (Produce verifies under its log lock, so the order is
//! log -> coordinator), or answer EndTxn before the prepared state is in the log.
//!
//! Invariant: a transaction's `Prepare*` record is appended before any of its markers, and its
//! `Complete*` record after all of them, so a restart in between finds it in doubt and writes
//! the markers again (markers are idempotent for the partitions that already have one).

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use runnel_coordinator::txn::{
    EndPlan, InitPlan, TxnCoordinator, TxnMetadata, TxnPartition, TxnRecord, TRANSACTION_STATE_TOPIC,
};
use runnel_coordinator::{partition_for, CoordinatorRecord};
use runnel_metadata::controller::CreateTopicSpec;
use runnel_protocol::records::{self, BatchBuilderParams};
use runnel_protocol::ErrorCode;
use tokio::sync::{watch, OnceCell};
use tokio::task::JoinHandle;

use crate::broker::{now_ms, Broker, StartError};
use crate::group::{self, OFFSETS_TOPIC};
use crate::internal_topic;

const MAX_DECOMPRESSED_BYTES: usize = 64 * 1024 * 1024;
/// How often the ticker wakes; the configured intervals are checked at this granularity.
const TICK_INTERVAL: Duration = Duration::from_millis(100);

/// The broker's transaction coordinator: empty until `__transaction_state` exists and is loaded.
#[derive(Default)]
pub struct TxnRuntime {
    /// The partition count of `__transaction_state`, once loaded.
    partitions: OnceCell<i32>,
    state: Mutex<TxnCoordinator>,
}

impl TxnRuntime {
    pub fn new() -> Self {
        Self::default()
    }

    /// A poisoned lock means a panic mid-operation: the state is unknown, so we stop.
    pub fn state(&self) -> MutexGuard<'_, TxnCoordinator> {
        self.state.lock().expect("transaction coordinator lock poisoned")
    }

    pub fn is_loaded(&self) -> bool {
        self.partitions.initialized()
    }

    /// The partition of `__transaction_state` that holds `transactional_id`.
    pub fn partition_for(&self, transactional_id: &str) -> Option<i32> {
        self.partitions.get().map(|n| partition_for(transactional_id, *n))
    }

    /// KIP-890 part 1: the check a leader makes before a transactional write lands.
    pub fn verify_write(&self, producer_id: i64, epoch: i16, topic: &str, partition: i32) -> Result<(), ErrorCode> {
        if !self.is_loaded() {
            return Err(ErrorCode::INVALID_TXN_STATE);
        }
        self.state()
            .verify_write(producer_id, epoch, &(topic.to_string(), partition))
            .map_err(|code| {
                if code == ErrorCode::INVALID_PRODUCER_EPOCH {
                    code
                } else {
                    ErrorCode::INVALID_TXN_STATE
                }
            })
    }
}

/// Creates (when missing) and loads `__transaction_state`, once; concurrent callers wait.
pub async fn ensure_started(broker: &Broker) -> Result<(), ErrorCode> {
    let result = broker
        .txns
        .partitions
        .get_or_try_init(|| async {
            let partitions = ensure_topic(broker).await?;
            load(broker, partitions)?;
            Ok::<i32, StartError>(partitions)
        })
        .await;
    match result {
        Ok(_) => {
            finish_in_doubt(broker);
            Ok(())
        }
        Err(e) => {
            tracing::warn!(error = %e, "starting the transaction coordinator failed");
            Err(ErrorCode::COORDINATOR_NOT_AVAILABLE)
        }
    }
}

/// At start-up: loads an existing `__transaction_state` before the listeners serve, finishes
/// in-doubt transactions and starts the ticker.
pub async fn start(
    broker: &std::sync::Arc<Broker>,
    shutdown: watch::Receiver<bool>,
) -> Result<JoinHandle<()>, StartError> {
    if let Some(partitions) = topic_partitions(broker) {
        load(broker, partitions)?;
        let _ = broker.txns.partitions.set(partitions);
        finish_in_doubt(broker);
    }
    Ok(tokio::spawn(ticker(broker.clone(), shutdown)))
}

fn topic_partitions(broker: &Broker) -> Option<i32> {
    internal_topic::partitions(broker, TRANSACTION_STATE_TOPIC).filter(|n| *n > 0)
}

async fn ensure_topic(broker: &Broker) -> Result<i32, StartError> {
    let segment_bytes = broker
        .config
        .effective("transaction.state.log.segment.bytes")
        .unwrap_or("104857600")
        .to_string();
    let spec = CreateTopicSpec {
        name: TRANSACTION_STATE_TOPIC.to_string(),
        num_partitions: broker.config.transaction_state_log_num_partitions.max(1),
        replication_factor: broker.config.transaction_state_log_replication_factor.max(1),
        assignments: Vec::new(),
        configs: vec![
            ("cleanup.policy".into(), Some("compact".into())),
            ("compression.type".into(), Some("uncompressed".into())),
            ("segment.bytes".into(), Some(segment_bytes)),
            (
                "min.insync.replicas".into(),
                Some(broker.config.transaction_state_log_min_isr.to_string()),
            ),
        ],
    };
    match internal_topic::ensure(broker, spec).await? {
        0 => Err(StartError::Internal(format!(
            "{TRANSACTION_STATE_TOPIC} was not created"
        ))),
        n => Ok(n),
    }
}

/// Replays every partition of `__transaction_state` into the coordinator.
fn load(broker: &Broker, partitions: i32) -> Result<(), StartError> {
    let mut state = broker.txns.state();
    let mut applied = 0usize;
    for partition in 0..partitions {
        let Some(part) = broker.replicas.get(TRANSACTION_STATE_TOPIC, partition) else {
            continue;
        };
        internal_topic::for_each_batch(&part, |header, bytes| {
            if header.is_control() {
                return;
            }
            let Ok(decoded) = records::decode_records(bytes, MAX_DECOMPRESSED_BYTES) else {
                tracing::warn!(partition, "undecodable batch in {TRANSACTION_STATE_TOPIC}");
                return;
            };
            for r in decoded {
                let Some(key) = r.key else { continue };
                match TxnRecord::from_key_value(&key, r.value.as_deref()) {
                    Ok(Some(rec)) => {
                        state.apply(rec);
                        applied += 1;
                    }
                    Ok(None) => {}
                    Err(e) => tracing::warn!(partition, error = %e, "skipping {TRANSACTION_STATE_TOPIC} record"),
                }
            }
        })?;
    }
    if applied > 0 {
        tracing::info!(records = applied, "loaded transaction coordinator state");
    }
    Ok(())
}

/// Appends one coordinator record to the transactional id's partition.
fn append(broker: &Broker, record: &TxnRecord) -> Result<(), ErrorCode> {
    let partition = broker
        .txns
        .partition_for(&record.transactional_id)
        .ok_or(ErrorCode::COORDINATOR_NOT_AVAILABLE)?;
    let part = broker
        .replicas
        .get(TRANSACTION_STATE_TOPIC, partition)
        .ok_or(ErrorCode::NOT_COORDINATOR)?;
    let (key, value) = record.to_key_value().map_err(|e| {
        tracing::error!(error = %e, "cannot encode a transaction record");
        ErrorCode::UNKNOWN_SERVER_ERROR
    })?;
    let now = now_ms();
    let params = BatchBuilderParams {
        base_timestamp: now,
        ..Default::default()
    };
    let mut buf = internal_topic::encode_batch([(key, value)], &params).map_err(|_| ErrorCode::UNKNOWN_SERVER_ERROR)?;
    let mut log = part.log();
    log.append_as_leader(&mut buf, part.leader_epoch(), now).map_err(|e| {
        tracing::error!(error = %e, "writing to {TRANSACTION_STATE_TOPIC} failed");
        ErrorCode::COORDINATOR_NOT_AVAILABLE
    })?;
    part.publish(&log);
    Ok(())
}

/// Writes `meta` and applies it, under the coordinator lock the caller holds.
fn write(broker: &Broker, state: &mut TxnCoordinator, meta: &TxnMetadata) -> Result<(), ErrorCode> {
    let record = TxnRecord::of(meta);
    append(broker, &record)?;
    state.apply(record);
    Ok(())
}

/// Writes the markers of a prepared transaction, then its completed state.
fn finish(broker: &Broker, prepared: &TxnMetadata) -> Result<(), ErrorCode> {
    crash_point("txn-after-prepare");
    write_markers(broker, prepared);
    let mut state = broker.txns.state();
    // Only this caller moves a prepared transaction on: others see CONCURRENT_TRANSACTIONS.
    let current = state.get(&prepared.transactional_id).cloned();
    if current.as_ref() != Some(prepared) {
        return Ok(());
    }
    write(broker, &mut state, &TxnCoordinator::complete(prepared, now_ms()))
}

/// Test hook for crash-recovery tests: `RUNNEL_CRASH_AT=<name>` aborts the process at that
/// point, exactly as a `kill -9` landing there would. Off unless the variable names the point.
fn crash_point(name: &str) {
    if std::env::var("RUNNEL_CRASH_AT").is_ok_and(|v| v == name) {
        eprintln!("runnel: RUNNEL_CRASH_AT={name}: aborting the process");
        std::process::abort();
    }
}

/// One marker per partition of the transaction. A partition that is gone (topic deleted) is
/// skipped, as Kafka does; a failure is logged and the transaction still completes, since its
/// producer can do nothing about it.
fn write_markers(broker: &Broker, prepared: &TxnMetadata) {
    let commit = prepared.commits();
    let coordinator_epoch = broker
        .txns
        .partition_for(&prepared.transactional_id)
        .and_then(|p| broker.replicas.get(TRANSACTION_STATE_TOPIC, p))
        .map_or(0, |p| p.leader_epoch());
    for (topic, partition) in &prepared.partitions {
        let Some(part) = broker.replicas.get(topic, *partition) else {
            tracing::warn!(
                topic,
                partition,
                "skipping the marker for a partition that no longer exists"
            );
            continue;
        };
        let result = if topic == OFFSETS_TOPIC {
            offsets_marker(broker, *partition, prepared, commit, coordinator_epoch, &part)
        } else {
            marker(prepared, commit, coordinator_epoch, &part)
        };
        if let Err(e) = result {
            tracing::error!(topic, partition, error = %e, "writing a transaction marker failed");
        }
    }
}

fn marker(
    prepared: &TxnMetadata,
    commit: bool,
    coordinator_epoch: i32,
    part: &crate::replica::Partition,
) -> Result<(), runnel_storage::StorageError> {
    let mut log = part.log();
    log.append_txn_marker(
        prepared.producer_id,
        prepared.producer_epoch,
        commit,
        coordinator_epoch,
        part.leader_epoch(),
        now_ms(),
    )?;
    part.publish(&log);
    Ok(())
}

/// A marker on `__consumer_offsets` also completes the transaction's pending offsets, under the
/// shard lock so no TxnOffsetCommit interleaves.
fn offsets_marker(
    broker: &Broker,
    partition: i32,
    prepared: &TxnMetadata,
    commit: bool,
    coordinator_epoch: i32,
    part: &crate::replica::Partition,
) -> Result<(), runnel_storage::StorageError> {
    let shard = broker.groups.shards().iter().find(|s| s.partition == partition);
    let Some(shard) = shard else {
        return marker(prepared, commit, coordinator_epoch, part);
    };
    group::update(shard, |c| {
        marker(prepared, commit, coordinator_epoch, part)?;
        c.complete_txn(prepared.producer_id, commit);
        Ok(())
    })
}

/// Finishes transactions a crash left between prepare and complete.
fn finish_in_doubt(broker: &Broker) {
    let in_doubt = broker.txns.state().in_doubt();
    for prepared in in_doubt {
        tracing::info!(
            transactional_id = prepared.transactional_id,
            commit = prepared.commits(),
            "completing an in-doubt transaction"
        );
        if let Err(code) = finish(broker, &prepared) {
            tracing::warn!(error = code.name(), "completing an in-doubt transaction failed");
        }
    }
}

/// InitProducerId for a transactional id: (producer id, epoch).
pub async fn init_producer_id(
    broker: &Broker,
    transactional_id: &str,
    timeout_ms: i32,
    expected: (i64, i16),
) -> Result<(i64, i16), ErrorCode> {
    ensure_started(broker).await?;
    let mut new_id = None;
    // At most: allocate an id, abort an ongoing transaction, then write.
    for _ in 0..4 {
        // Written under the lock; what remains to do happens outside it.
        let abort = {
            let mut state = broker.txns.state();
            match state.init_producer_id(transactional_id, timeout_ms, expected, new_id, now_ms())? {
                InitPlan::Write(meta) => {
                    write(broker, &mut state, &meta)?;
                    return Ok((meta.producer_id, meta.producer_epoch));
                }
                InitPlan::AbortFirst(prepared) => {
                    write(broker, &mut state, &prepared)?;
                    Some(prepared)
                }
                InitPlan::NeedProducerId => None,
            }
        };
        match abort {
            Some(prepared) => finish(broker, &prepared)?,
            None => {
                let id = broker.producer_ids.next_id(broker).await.map_err(|e| {
                    tracing::warn!(error = %e, "cannot allocate a producer id");
                    ErrorCode::COORDINATOR_LOAD_IN_PROGRESS
                })?;
                new_id = Some(id);
            }
        }
    }
    Err(ErrorCode::CONCURRENT_TRANSACTIONS)
}

/// AddPartitionsToTxn / AddOffsetsToTxn: adds partitions to the ongoing transaction.
pub fn add_partitions(
    broker: &Broker,
    transactional_id: &str,
    producer_id: i64,
    epoch: i16,
    partitions: &[TxnPartition],
) -> Result<(), ErrorCode> {
    let mut state = broker.txns.state();
    let plan = state.add_partitions(transactional_id, producer_id, epoch, partitions, now_ms())?;
    if let Some(next) = plan {
        write(broker, &mut state, &next)?;
    }
    Ok(())
}

/// EndTxn: prepare, markers, complete; answers after the transaction completed.
pub fn end_txn(
    broker: &Broker,
    transactional_id: &str,
    producer_id: i64,
    epoch: i16,
    commit: bool,
) -> Result<(), ErrorCode> {
    let prepared = {
        let mut state = broker.txns.state();
        match state.end_txn(transactional_id, producer_id, epoch, commit, now_ms())? {
            EndPlan::AlreadyDone => return Ok(()),
            EndPlan::Prepare(prepared) => {
                write(broker, &mut state, &prepared)?;
                prepared
            }
        }
    };
    finish(broker, &prepared)
}

/// Writes offset records in a producer's transaction to `__consumer_offsets-<partition>` as one
/// transactional batch (appended as the coordinator, so without sequence checks).
pub fn append_txn_offsets(
    broker: &Broker,
    partition: i32,
    producer_id: i64,
    epoch: i16,
    offsets: &[CoordinatorRecord],
) -> Result<(), ErrorCode> {
    let part = broker
        .replicas
        .get(OFFSETS_TOPIC, partition)
        .ok_or(ErrorCode::NOT_COORDINATOR)?;
    let now = now_ms();
    let pairs = offsets
        .iter()
        .map(|r| r.to_key_value().map_err(|_| ErrorCode::UNKNOWN_SERVER_ERROR))
        .collect::<Result<Vec<_>, _>>()?;
    let params = BatchBuilderParams {
        base_timestamp: now,
        producer_id,
        producer_epoch: epoch,
        base_sequence: -1,
        is_transactional: true,
        ..Default::default()
    };
    let mut buf = internal_topic::encode_batch(pairs, &params).map_err(|_| ErrorCode::UNKNOWN_SERVER_ERROR)?;
    let mut log = part.log();
    log.append_as_coordinator(&mut buf, part.leader_epoch(), now)
        .map_err(|e| match e {
            runnel_storage::StorageError::InvalidProducerEpoch { .. } => ErrorCode::PRODUCER_FENCED,
            other => {
                tracing::error!(error = %other, "writing transactional offsets failed");
                ErrorCode::COORDINATOR_NOT_AVAILABLE
            }
        })?;
    part.publish(&log);
    Ok(())
}

/// Aborts timed-out transactions and forgets expired transactional ids.
async fn ticker(broker: std::sync::Arc<Broker>, mut shutdown: watch::Receiver<bool>) {
    let interval = |key: &str, default: i64| {
        broker
            .config
            .effective(key)
            .and_then(|v| v.trim().parse::<i64>().ok())
            .filter(|v| *v > 0)
            .unwrap_or(default)
    };
    let abort_every_ms = interval("transaction.abort.timed.out.transaction.cleanup.interval.ms", 10_000);
    let expire_every_ms = interval("transaction.remove.expired.transaction.cleanup.interval.ms", 3_600_000);
    let expiration_ms = interval("transactional.id.expiration.ms", 604_800_000);
    let mut last_abort = now_ms();
    let mut last_expire = now_ms();
    let mut tick = tokio::time::interval(TICK_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        if !broker.txns.is_loaded() {
            continue;
        }
        let now = now_ms();
        if now - last_abort >= abort_every_ms {
            last_abort = now;
            abort_timed_out(&broker, now);
        }
        if now - last_expire >= expire_every_ms {
            last_expire = now;
            remove_expired(&broker, now, expiration_ms);
        }
    }
}

fn abort_timed_out(broker: &Broker, now: i64) {
    let candidates = broker.txns.state().timed_out(now);
    for candidate in candidates {
        let prepared = {
            let mut state = broker.txns.state();
            // Re-plan under the lock: the producer may have ended it meanwhile.
            let Some(fresh) = state
                .timed_out(now)
                .into_iter()
                .find(|m| m.transactional_id == candidate.transactional_id)
            else {
                continue;
            };
            if let Err(code) = write(broker, &mut state, &fresh) {
                tracing::warn!(error = code.name(), "aborting a timed-out transaction failed");
                continue;
            }
            fresh
        };
        tracing::info!(
            transactional_id = prepared.transactional_id,
            producer_id = prepared.producer_id,
            "aborting a timed-out transaction"
        );
        if let Err(code) = finish(broker, &prepared) {
            tracing::warn!(error = code.name(), "completing a timed-out abort failed");
        }
    }
}

fn remove_expired(broker: &Broker, now: i64, expiration_ms: i64) {
    let mut state = broker.txns.state();
    for id in state.expired(now, expiration_ms) {
        let tombstone = TxnRecord {
            transactional_id: id,
            value: None,
        };
        if append(broker, &tombstone).is_ok() {
            state.apply(tombstone);
        }
    }
}
