//! The transaction coordinator, sans-IO: the state of every transactional id, the rules of
//! InitProducerId, AddPartitionsToTxn, AddOffsetsToTxn and EndTxn (Kafka's `TransactionCoordinator`
//! and `TransactionMetadata`, transaction version 1), and the encoding of that state as Kafka's
//! `__transaction_state` records.
//!
//! Must never: read a clock, do I/O or write markers. Each operation only *plans*: it returns the
//! metadata to write (or an error code); the broker's runtime appends it as a record, then calls
//! [`TxnCoordinator::apply`], and writes the transaction markers for a prepared commit or abort
//! before completing it with [`TxnCoordinator::complete`].
//!
//! Invariants:
//! - The state changes only through `apply`, so the log and the memory agree, and replaying the
//!   log into a fresh coordinator rebuilds it (in-doubt `Prepare*` transactions are then finished
//!   by the runtime).
//! - A producer id maps to at most one transactional id (`by_producer`).
//! - Epochs only grow for a producer id; a bump past `i16::MAX - 1` moves to a new producer id.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use bytes::{Buf, Bytes};
use runnel_protocol::codec::Message;
use runnel_protocol::generated::transaction_log_key::TransactionLogKey;
use runnel_protocol::generated::transaction_log_value::{PartitionsSchema, TransactionLogValue};
use runnel_protocol::ErrorCode;

use crate::record::{decode_versioned, encode_versioned, RecordError};

/// The internal topic the coordinator's state lives in.
pub const TRANSACTION_STATE_TOPIC: &str = "__transaction_state";
const KEY_VERSION: i16 = 0;
/// Transaction version 1 clients get value version 0, as Kafka writes.
const VALUE_VERSION: i16 = 0;
const NO_PRODUCER_ID: i64 = -1;
const NO_PRODUCER_EPOCH: i16 = -1;
/// Kafka moves to a new producer id rather than use the last epochs of a short.
const MAX_EPOCH: i16 = i16::MAX - 1;

/// A topic partition inside a transaction.
pub type TxnPartition = (String, i32);

/// Kafka's `TransactionState`, with its on-disk codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnState {
    Empty,
    Ongoing,
    PrepareCommit,
    PrepareAbort,
    CompleteCommit,
    CompleteAbort,
    Dead,
    PrepareEpochFence,
}

impl TxnState {
    /// Every state, in code order.
    pub const ALL: [TxnState; 8] = [
        TxnState::Empty,
        TxnState::Ongoing,
        TxnState::PrepareCommit,
        TxnState::PrepareAbort,
        TxnState::CompleteCommit,
        TxnState::CompleteAbort,
        TxnState::Dead,
        TxnState::PrepareEpochFence,
    ];

    pub fn code(self) -> i8 {
        match self {
            TxnState::Empty => 0,
            TxnState::Ongoing => 1,
            TxnState::PrepareCommit => 2,
            TxnState::PrepareAbort => 3,
            TxnState::CompleteCommit => 4,
            TxnState::CompleteAbort => 5,
            TxnState::Dead => 6,
            TxnState::PrepareEpochFence => 7,
        }
    }

    pub fn from_code(code: i8) -> Option<TxnState> {
        Some(match code {
            0 => TxnState::Empty,
            1 => TxnState::Ongoing,
            2 => TxnState::PrepareCommit,
            3 => TxnState::PrepareAbort,
            4 => TxnState::CompleteCommit,
            5 => TxnState::CompleteAbort,
            6 => TxnState::Dead,
            7 => TxnState::PrepareEpochFence,
            _ => return None,
        })
    }

    /// The name DescribeTransactions and ListTransactions use.
    pub fn name(self) -> &'static str {
        match self {
            TxnState::Empty => "Empty",
            TxnState::Ongoing => "Ongoing",
            TxnState::PrepareCommit => "PrepareCommit",
            TxnState::PrepareAbort => "PrepareAbort",
            TxnState::CompleteCommit => "CompleteCommit",
            TxnState::CompleteAbort => "CompleteAbort",
            TxnState::Dead => "Dead",
            TxnState::PrepareEpochFence => "PrepareEpochFence",
        }
    }

    /// Markers are being written: nothing else may happen to the transaction meanwhile.
    pub fn is_preparing(self) -> bool {
        matches!(
            self,
            TxnState::PrepareCommit | TxnState::PrepareAbort | TxnState::PrepareEpochFence
        )
    }
}

/// One transactional id's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnMetadata {
    pub transactional_id: String,
    pub producer_id: i64,
    /// The producer id before the last exhaustion move (-1 if none).
    pub previous_producer_id: i64,
    pub producer_epoch: i16,
    /// The epoch before the last bump: a producer that was fenced by a timeout may still
    /// re-initialise with it (KIP-360). Not persisted, as in Kafka.
    pub last_producer_epoch: i16,
    pub timeout_ms: i32,
    pub state: TxnState,
    pub partitions: BTreeSet<TxnPartition>,
    pub start_ms: i64,
    pub last_update_ms: i64,
}

impl TxnMetadata {
    /// Whether a prepared state commits (false: aborts).
    pub fn commits(&self) -> bool {
        self.state == TxnState::PrepareCommit
    }
}

/// A `__transaction_state` record: a transactional id and its state (`None` deletes it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnRecord {
    pub transactional_id: String,
    pub value: Option<TxnMetadata>,
}

impl TxnRecord {
    pub fn of(meta: &TxnMetadata) -> TxnRecord {
        TxnRecord {
            transactional_id: meta.transactional_id.clone(),
            value: Some(meta.clone()),
        }
    }

    /// Kafka's key and value bytes.
    pub fn to_key_value(&self) -> Result<(Bytes, Option<Bytes>), RecordError> {
        let key = TransactionLogKey {
            transactional_id: self.transactional_id.clone(),
            ..Default::default()
        };
        let key = encode_versioned(&key, KEY_VERSION, "TransactionLogKey")?;
        let Some(m) = &self.value else {
            return Ok((key, None));
        };
        let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
        for (topic, partition) in &m.partitions {
            by_topic.entry(topic).or_default().push(*partition);
        }
        let value = TransactionLogValue {
            producer_id: m.producer_id,
            previous_producer_id: m.previous_producer_id,
            next_producer_id: NO_PRODUCER_ID,
            producer_epoch: m.producer_epoch,
            transaction_timeout_ms: m.timeout_ms,
            transaction_status: m.state.code(),
            transaction_partitions: Some(
                by_topic
                    .into_iter()
                    .map(|(topic, partition_ids)| PartitionsSchema {
                        topic: topic.to_string(),
                        partition_ids,
                        ..Default::default()
                    })
                    .collect(),
            ),
            transaction_last_update_timestamp_ms: m.last_update_ms,
            transaction_start_timestamp_ms: m.start_ms,
            client_transaction_version: 0,
            ..Default::default()
        };
        Ok((
            key,
            Some(encode_versioned(&value, VALUE_VERSION, "TransactionLogValue")?),
        ))
    }

    /// Decodes Kafka's key and value bytes; `Ok(None)` for key versions that are not ours.
    pub fn from_key_value(key: &[u8], value: Option<&[u8]>) -> Result<Option<TxnRecord>, RecordError> {
        let mut key_buf = Bytes::copy_from_slice(key);
        if key_buf.remaining() < 2 {
            return Err(RecordError::ShortKey);
        }
        let version = key_buf.get_i16();
        if version != KEY_VERSION {
            return Ok(None);
        }
        let k = TransactionLogKey::decode(&mut key_buf, version).map_err(|e| RecordError::Decode {
            what: "TransactionLogKey",
            message: e.to_string(),
        })?;
        let Some(value) = value else {
            return Ok(Some(TxnRecord {
                transactional_id: k.transactional_id,
                value: None,
            }));
        };
        let v: TransactionLogValue = decode_versioned(value, (0, 1), "TransactionLogValue")?;
        let state = TxnState::from_code(v.transaction_status).ok_or_else(|| RecordError::Decode {
            what: "TransactionLogValue",
            message: format!("unknown transaction status {}", v.transaction_status),
        })?;
        let partitions = v
            .transaction_partitions
            .unwrap_or_default()
            .into_iter()
            .flat_map(|t| {
                let topic = t.topic;
                t.partition_ids.into_iter().map(move |p| (topic.clone(), p))
            })
            .collect();
        Ok(Some(TxnRecord {
            value: Some(TxnMetadata {
                transactional_id: k.transactional_id.clone(),
                producer_id: v.producer_id,
                previous_producer_id: v.previous_producer_id,
                producer_epoch: v.producer_epoch,
                last_producer_epoch: NO_PRODUCER_EPOCH,
                timeout_ms: v.transaction_timeout_ms,
                state,
                partitions,
                start_ms: v.transaction_start_timestamp_ms,
                last_update_ms: v.transaction_last_update_timestamp_ms,
            }),
            transactional_id: k.transactional_id,
        }))
    }
}

/// What InitProducerId must do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InitPlan {
    /// Write this metadata (state Empty), then answer with its producer id and epoch.
    Write(TxnMetadata),
    /// A fresh producer id is needed (new transactional id, or epochs exhausted): allocate one
    /// and plan again with it.
    NeedProducerId,
    /// An ongoing transaction must be aborted first, fenced by this epoch-bumped
    /// `PrepareAbort`; write it, write the markers, complete it, then plan again.
    AbortFirst(TxnMetadata),
}

/// What EndTxn must do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndPlan {
    /// A retry of a transaction that already ended this way: answer success.
    AlreadyDone,
    /// Write this `Prepare*` metadata, then the markers, then complete it.
    Prepare(TxnMetadata),
}

/// The transactional ids of the broker (all `__transaction_state` partitions it leads).
#[derive(Debug, Default)]
pub struct TxnCoordinator {
    txns: BTreeMap<String, TxnMetadata>,
    by_producer: HashMap<i64, String>,
}

impl TxnCoordinator {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn get(&self, transactional_id: &str) -> Option<&TxnMetadata> {
        self.txns.get(transactional_id)
    }

    pub fn transactions(&self) -> impl Iterator<Item = &TxnMetadata> {
        self.txns.values()
    }

    pub fn by_producer_id(&self, producer_id: i64) -> Option<&TxnMetadata> {
        self.txns.get(self.by_producer.get(&producer_id)?)
    }

    /// Applies a record after it was appended (or read back while loading).
    pub fn apply(&mut self, record: TxnRecord) {
        if let Some(old) = self.txns.remove(&record.transactional_id) {
            self.by_producer.remove(&old.producer_id);
        }
        if let Some(meta) = record.value {
            self.by_producer.insert(meta.producer_id, meta.transactional_id.clone());
            self.txns.insert(record.transactional_id, meta);
        }
    }

    /// Plans InitProducerId for a transactional id. `new_producer_id` is the id allocated after
    /// an earlier `NeedProducerId`; `expected` is the producer id and epoch the client sent
    /// (KIP-360), -1s when it has none.
    pub fn init_producer_id(
        &self,
        transactional_id: &str,
        timeout_ms: i32,
        expected: (i64, i16),
        new_producer_id: Option<i64>,
        now_ms: i64,
    ) -> Result<InitPlan, ErrorCode> {
        let Some(current) = self.txns.get(transactional_id) else {
            return Ok(match new_producer_id {
                None => InitPlan::NeedProducerId,
                Some(id) => InitPlan::Write(fresh(transactional_id, id, NO_PRODUCER_ID, timeout_ms, now_ms)),
            });
        };
        if !expected_matches(current, expected) {
            return Err(ErrorCode::PRODUCER_FENCED);
        }
        match current.state {
            s if s.is_preparing() => Err(ErrorCode::CONCURRENT_TRANSACTIONS),
            TxnState::Ongoing => Ok(InitPlan::AbortFirst(fenced_abort(current, now_ms))),
            _ => {
                if current.producer_epoch >= MAX_EPOCH {
                    return Ok(match new_producer_id {
                        None => InitPlan::NeedProducerId,
                        Some(id) => {
                            InitPlan::Write(fresh(transactional_id, id, current.producer_id, timeout_ms, now_ms))
                        }
                    });
                }
                let mut next = current.clone();
                next.last_producer_epoch = current.producer_epoch;
                next.producer_epoch = current.producer_epoch + 1;
                next.timeout_ms = timeout_ms;
                next.state = TxnState::Empty;
                next.partitions.clear();
                next.start_ms = -1;
                next.last_update_ms = now_ms;
                Ok(InitPlan::Write(next))
            }
        }
    }

    /// Checks the producer id and epoch a client names its transaction with.
    fn current(&self, transactional_id: &str, producer_id: i64, epoch: i16) -> Result<&TxnMetadata, ErrorCode> {
        let meta = self
            .txns
            .get(transactional_id)
            .ok_or(ErrorCode::INVALID_PRODUCER_ID_MAPPING)?;
        if meta.producer_id != producer_id {
            return Err(ErrorCode::INVALID_PRODUCER_ID_MAPPING);
        }
        if meta.producer_epoch != epoch {
            return Err(ErrorCode::PRODUCER_FENCED);
        }
        Ok(meta)
    }

    /// Plans AddPartitionsToTxn (and AddOffsetsToTxn, with the group's offsets partition):
    /// `Ok(None)` when the ongoing transaction already holds every partition.
    pub fn add_partitions(
        &self,
        transactional_id: &str,
        producer_id: i64,
        epoch: i16,
        partitions: &[TxnPartition],
        now_ms: i64,
    ) -> Result<Option<TxnMetadata>, ErrorCode> {
        let meta = self.current(transactional_id, producer_id, epoch)?;
        if meta.state.is_preparing() {
            return Err(ErrorCode::CONCURRENT_TRANSACTIONS);
        }
        if meta.state == TxnState::Dead {
            return Err(ErrorCode::INVALID_TXN_STATE);
        }
        let ongoing = meta.state == TxnState::Ongoing;
        if ongoing && partitions.iter().all(|p| meta.partitions.contains(p)) {
            return Ok(None);
        }
        let mut next = meta.clone();
        if !ongoing {
            next.partitions.clear();
            next.start_ms = now_ms;
        }
        next.partitions.extend(partitions.iter().cloned());
        next.state = TxnState::Ongoing;
        next.last_update_ms = now_ms;
        Ok(Some(next))
    }

    /// The verify-only form of AddPartitionsToTxn (KIP-890): whether each partition is part of
    /// the producer's ongoing transaction.
    pub fn verify_partitions(
        &self,
        transactional_id: &str,
        producer_id: i64,
        epoch: i16,
        partitions: &[TxnPartition],
    ) -> Result<Vec<(TxnPartition, ErrorCode)>, ErrorCode> {
        let meta = self.current(transactional_id, producer_id, epoch)?;
        Ok(partitions
            .iter()
            .map(|p| {
                let ok = meta.state == TxnState::Ongoing && meta.partitions.contains(p);
                let code = if ok {
                    ErrorCode::NONE
                } else {
                    ErrorCode::INVALID_TXN_STATE
                };
                (p.clone(), code)
            })
            .collect())
    }

    /// The leader's check before a transactional write (KIP-890 part 1): the producer's
    /// transaction is ongoing at this epoch and holds the partition. Codes are Produce's.
    pub fn verify_write(&self, producer_id: i64, epoch: i16, partition: &TxnPartition) -> Result<(), ErrorCode> {
        let meta = self
            .by_producer_id(producer_id)
            .ok_or(ErrorCode::INVALID_PRODUCER_ID_MAPPING)?;
        if epoch < meta.producer_epoch {
            return Err(ErrorCode::INVALID_PRODUCER_EPOCH);
        }
        if epoch > meta.producer_epoch || meta.state != TxnState::Ongoing || !meta.partitions.contains(partition) {
            return Err(ErrorCode::INVALID_TXN_STATE);
        }
        Ok(())
    }

    /// Plans EndTxn.
    pub fn end_txn(
        &self,
        transactional_id: &str,
        producer_id: i64,
        epoch: i16,
        commit: bool,
        now_ms: i64,
    ) -> Result<EndPlan, ErrorCode> {
        let meta = self.current(transactional_id, producer_id, epoch)?;
        match (meta.state, commit) {
            (TxnState::Ongoing, _) => {
                let mut next = meta.clone();
                next.state = if commit {
                    TxnState::PrepareCommit
                } else {
                    TxnState::PrepareAbort
                };
                next.last_update_ms = now_ms;
                Ok(EndPlan::Prepare(next))
            }
            (TxnState::CompleteCommit, true) | (TxnState::CompleteAbort, false) => Ok(EndPlan::AlreadyDone),
            (TxnState::PrepareCommit, true) | (TxnState::PrepareAbort, false) => {
                Err(ErrorCode::CONCURRENT_TRANSACTIONS)
            }
            (TxnState::PrepareEpochFence, _) => Err(ErrorCode::CONCURRENT_TRANSACTIONS),
            _ => Err(ErrorCode::INVALID_TXN_STATE),
        }
    }

    /// The completed form of a prepared transaction, to write once its markers are written.
    pub fn complete(prepared: &TxnMetadata, now_ms: i64) -> TxnMetadata {
        let mut next = prepared.clone();
        next.state = if prepared.commits() {
            TxnState::CompleteCommit
        } else {
            TxnState::CompleteAbort
        };
        next.partitions.clear();
        next.last_update_ms = now_ms;
        next
    }

    /// Ongoing transactions past their timeout, each as an epoch-bumped `PrepareAbort` that
    /// fences the producer (Kafka's `abortTimedOutTransactions`).
    pub fn timed_out(&self, now_ms: i64) -> Vec<TxnMetadata> {
        self.txns
            .values()
            .filter(|m| m.state == TxnState::Ongoing && now_ms > m.start_ms.saturating_add(i64::from(m.timeout_ms)))
            .map(|m| fenced_abort(m, now_ms))
            .collect()
    }

    /// Transactions left mid-completion (found after loading): their markers must be written
    /// again and the transaction completed.
    pub fn in_doubt(&self) -> Vec<TxnMetadata> {
        self.txns
            .values()
            .filter(|m| matches!(m.state, TxnState::PrepareCommit | TxnState::PrepareAbort))
            .cloned()
            .collect()
    }

    /// Idle transactional ids past `transactional.id.expiration.ms`, to delete (tombstones).
    pub fn expired(&self, now_ms: i64, expiration_ms: i64) -> Vec<String> {
        self.txns
            .values()
            .filter(|m| {
                matches!(
                    m.state,
                    TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort
                ) && now_ms.saturating_sub(m.last_update_ms) > expiration_ms
            })
            .map(|m| m.transactional_id.clone())
            .collect()
    }
}

/// KIP-360: a client that names its producer id and epoch must name the current ones (or the
/// epoch just before a bump it did not see).
fn expected_matches(current: &TxnMetadata, (producer_id, epoch): (i64, i16)) -> bool {
    if producer_id == NO_PRODUCER_ID && epoch == NO_PRODUCER_EPOCH {
        return true;
    }
    if producer_id == current.producer_id {
        return epoch == current.producer_epoch || epoch == current.last_producer_epoch;
    }
    producer_id == current.previous_producer_id
}

fn fresh(transactional_id: &str, producer_id: i64, previous: i64, timeout_ms: i32, now_ms: i64) -> TxnMetadata {
    TxnMetadata {
        transactional_id: transactional_id.to_string(),
        producer_id,
        previous_producer_id: previous,
        producer_epoch: 0,
        last_producer_epoch: NO_PRODUCER_EPOCH,
        timeout_ms,
        state: TxnState::Empty,
        partitions: BTreeSet::new(),
        start_ms: -1,
        last_update_ms: now_ms,
    }
}

/// An abort that also fences the current producer: the markers carry a bumped epoch, so any
/// write with the old epoch fails afterwards.
fn fenced_abort(current: &TxnMetadata, now_ms: i64) -> TxnMetadata {
    let mut next = current.clone();
    if current.producer_epoch < MAX_EPOCH {
        next.last_producer_epoch = current.producer_epoch;
        next.producer_epoch = current.producer_epoch + 1;
    }
    next.state = TxnState::PrepareAbort;
    next.last_update_ms = now_ms;
    next
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp(t: &str, p: i32) -> TxnPartition {
        (t.to_string(), p)
    }

    fn write(c: &mut TxnCoordinator, m: TxnMetadata) -> TxnMetadata {
        // Every write goes through the record codec in the broker: it must keep all but the
        // fields value version 0 does not carry (as in Kafka).
        let (k, v) = TxnRecord::of(&m).to_key_value().unwrap();
        let decoded = TxnRecord::from_key_value(&k, v.as_deref()).unwrap().unwrap();
        let mut expected = m.clone();
        expected.last_producer_epoch = -1;
        expected.previous_producer_id = -1;
        assert_eq!(decoded.value, Some(expected));
        c.apply(TxnRecord::of(&m));
        c.get(&m.transactional_id).unwrap().clone()
    }

    fn init(c: &mut TxnCoordinator, id: &str, pid: i64) -> TxnMetadata {
        match c.init_producer_id(id, 60_000, (-1, -1), None, 0).unwrap() {
            InitPlan::NeedProducerId => {}
            other => panic!("expected NeedProducerId, got {other:?}"),
        }
        let InitPlan::Write(m) = c.init_producer_id(id, 60_000, (-1, -1), Some(pid), 0).unwrap() else {
            panic!("expected Write")
        };
        write(c, m)
    }

    #[test]
    fn commit_cycle_and_retries() {
        let mut c = TxnCoordinator::new();
        let m = init(&mut c, "t", 7);
        assert_eq!((m.producer_id, m.producer_epoch, m.state), (7, 0, TxnState::Empty));
        let next = c
            .add_partitions("t", 7, 0, &[tp("a", 0), tp("a", 1)], 10)
            .unwrap()
            .unwrap();
        let m = write(&mut c, next);
        assert_eq!(m.state, TxnState::Ongoing);
        assert_eq!(m.start_ms, 10);
        assert_eq!(c.add_partitions("t", 7, 0, &[tp("a", 1)], 11).unwrap(), None);
        assert_eq!(c.verify_write(7, 0, &tp("a", 0)), Ok(()));
        assert_eq!(c.verify_write(7, 0, &tp("b", 0)), Err(ErrorCode::INVALID_TXN_STATE));
        let EndPlan::Prepare(p) = c.end_txn("t", 7, 0, true, 20).unwrap() else {
            panic!()
        };
        let p = write(&mut c, p);
        assert_eq!(c.end_txn("t", 7, 0, true, 21), Err(ErrorCode::CONCURRENT_TRANSACTIONS));
        assert_eq!(
            c.add_partitions("t", 7, 0, &[tp("a", 0)], 21),
            Err(ErrorCode::CONCURRENT_TRANSACTIONS)
        );
        assert_eq!(c.verify_write(7, 0, &tp("a", 0)), Err(ErrorCode::INVALID_TXN_STATE));
        let done = write(&mut c, TxnCoordinator::complete(&p, 22));
        assert_eq!(done.state, TxnState::CompleteCommit);
        assert!(done.partitions.is_empty());
        assert_eq!(c.end_txn("t", 7, 0, true, 23), Ok(EndPlan::AlreadyDone));
        assert_eq!(c.end_txn("t", 7, 0, false, 23), Err(ErrorCode::INVALID_TXN_STATE));
        // The next transaction starts from a completed one.
        let next = c.add_partitions("t", 7, 0, &[tp("b", 0)], 30).unwrap().unwrap();
        assert_eq!(next.partitions.len(), 1);
        assert_eq!(next.start_ms, 30);
    }

    #[test]
    fn wrong_ids_and_epochs_are_refused() {
        let mut c = TxnCoordinator::new();
        init(&mut c, "t", 7);
        assert_eq!(
            c.add_partitions("t", 8, 0, &[tp("a", 0)], 0),
            Err(ErrorCode::INVALID_PRODUCER_ID_MAPPING)
        );
        assert_eq!(
            c.add_partitions("t", 7, 1, &[tp("a", 0)], 0),
            Err(ErrorCode::PRODUCER_FENCED)
        );
        assert_eq!(
            c.add_partitions("nope", 7, 0, &[tp("a", 0)], 0),
            Err(ErrorCode::INVALID_PRODUCER_ID_MAPPING)
        );
        assert_eq!(c.end_txn("t", 7, 0, true, 0), Err(ErrorCode::INVALID_TXN_STATE));
    }

    #[test]
    fn reinit_fences_the_old_epoch_and_aborts_an_ongoing_transaction() {
        let mut c = TxnCoordinator::new();
        init(&mut c, "t", 7);
        let next = c.add_partitions("t", 7, 0, &[tp("a", 0)], 0).unwrap().unwrap();
        write(&mut c, next);
        let InitPlan::AbortFirst(abort) = c.init_producer_id("t", 60_000, (-1, -1), None, 5).unwrap() else {
            panic!()
        };
        assert_eq!((abort.state, abort.producer_epoch), (TxnState::PrepareAbort, 1));
        assert_eq!(abort.partitions.len(), 1, "markers go to the transaction's partitions");
        let abort = write(&mut c, abort);
        write(&mut c, TxnCoordinator::complete(&abort, 6));
        let InitPlan::Write(m) = c.init_producer_id("t", 60_000, (-1, -1), None, 7).unwrap() else {
            panic!()
        };
        let m = write(&mut c, m);
        assert_eq!((m.producer_id, m.producer_epoch, m.state), (7, 2, TxnState::Empty));
        // The zombie at epoch 0 is fenced everywhere.
        assert_eq!(
            c.add_partitions("t", 7, 0, &[tp("a", 0)], 8),
            Err(ErrorCode::PRODUCER_FENCED)
        );
        assert_eq!(c.end_txn("t", 7, 0, false, 8), Err(ErrorCode::PRODUCER_FENCED));
        assert_eq!(
            c.verify_write(7, 0, &tp("a", 0)),
            Err(ErrorCode::INVALID_PRODUCER_EPOCH)
        );
        assert_eq!(
            c.init_producer_id("t", 60_000, (7, 0), None, 9),
            Err(ErrorCode::PRODUCER_FENCED)
        );
    }

    #[test]
    fn timeouts_abort_with_a_bumped_epoch() {
        let mut c = TxnCoordinator::new();
        init(&mut c, "t", 7);
        let next = c.add_partitions("t", 7, 0, &[tp("a", 0)], 1_000).unwrap().unwrap();
        write(&mut c, next);
        assert!(c.timed_out(61_000).is_empty());
        let aborts = c.timed_out(61_001);
        assert_eq!(aborts.len(), 1);
        assert_eq!((aborts[0].state, aborts[0].producer_epoch), (TxnState::PrepareAbort, 1));
        let a = write(&mut c, aborts[0].clone());
        assert_eq!(c.in_doubt(), vec![a.clone()]);
        write(&mut c, TxnCoordinator::complete(&a, 61_002));
        assert!(c.in_doubt().is_empty());
        // KIP-360: the fenced client may re-initialise naming the epoch it had.
        let InitPlan::Write(m) = c.init_producer_id("t", 60_000, (7, 0), None, 61_003).unwrap() else {
            panic!()
        };
        assert_eq!(m.producer_epoch, 2);
    }

    #[test]
    fn exhausted_epochs_move_to_a_new_producer_id() {
        let mut c = TxnCoordinator::new();
        let mut m = init(&mut c, "t", 7);
        m.producer_epoch = MAX_EPOCH;
        write(&mut c, m);
        assert_eq!(
            c.init_producer_id("t", 1000, (-1, -1), None, 0),
            Ok(InitPlan::NeedProducerId)
        );
        let InitPlan::Write(m) = c.init_producer_id("t", 1000, (-1, -1), Some(9), 0).unwrap() else {
            panic!()
        };
        let m = write(&mut c, m);
        assert_eq!((m.producer_id, m.producer_epoch, m.previous_producer_id), (9, 0, 7));
        assert!(c.by_producer_id(7).is_none());
        assert_eq!(c.by_producer_id(9).map(|m| m.producer_epoch), Some(0));
    }

    #[test]
    fn expiry_and_tombstones() {
        let mut c = TxnCoordinator::new();
        init(&mut c, "t", 7);
        assert!(c.expired(100, 1000).is_empty());
        assert_eq!(c.expired(1001, 1000), vec!["t".to_string()]);
        let (k, v) = TxnRecord {
            transactional_id: "t".into(),
            value: None,
        }
        .to_key_value()
        .unwrap();
        assert!(v.is_none());
        c.apply(TxnRecord::from_key_value(&k, None).unwrap().unwrap());
        assert!(c.get("t").is_none());
        assert!(c.by_producer_id(7).is_none());
    }

    #[test]
    fn value_bytes_match_kafka_layout() {
        let mut partitions = BTreeSet::new();
        partitions.insert(tp("a", 1));
        let m = TxnMetadata {
            transactional_id: "x".into(),
            producer_id: 5,
            previous_producer_id: -1,
            producer_epoch: 3,
            last_producer_epoch: -1,
            timeout_ms: 60_000,
            state: TxnState::Ongoing,
            partitions,
            start_ms: 1,
            last_update_ms: 2,
        };
        let (k, v) = TxnRecord::of(&m).to_key_value().unwrap();
        // key: version 0, then the id as an int16-length string.
        assert_eq!(&k[..], &[0, 0, 0, 1, b'x']);
        let v = v.unwrap();
        // value version 0, producer id 5, epoch 3, timeout, status 1 (Ongoing).
        assert_eq!(&v[..2], &[0, 0]);
        assert_eq!(&v[2..10], &5i64.to_be_bytes());
        assert_eq!(&v[10..12], &3i16.to_be_bytes());
        assert_eq!(&v[12..16], &60_000i32.to_be_bytes());
        assert_eq!(v[16], 1);
    }
}
