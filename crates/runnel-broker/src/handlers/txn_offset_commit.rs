//! TxnOffsetCommit (key 28), v0–4: offsets committed inside a producer's transaction. They are
//! written to the group's `__consumer_offsets` partition as a transactional batch and stay
//! pending until the transaction's marker lands there.
//!
//! Before writing, the transaction coordinator must confirm the producer's epoch and that the
//! offsets partition is in its ongoing transaction (AddOffsetsToTxn), so a fenced producer
//! cannot commit and no pending offsets are left behind a completed transaction.

use runnel_coordinator::txn::TxnState;
use runnel_protocol::generated::txn_offset_commit_request::TxnOffsetCommitRequest;
use runnel_protocol::generated::txn_offset_commit_response::{
    TxnOffsetCommitResponse, TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use runnel_protocol::ErrorCode;

use crate::broker::{now_ms, Broker};
use crate::group::{self, OFFSETS_TOPIC};
use crate::handlers::init_producer_id::fenced_for_version;

pub fn handle(broker: &Broker, req: TxnOffsetCommitRequest, version: i16) -> TxnOffsetCommitResponse {
    let shard = match broker.groups.shard_for(&req.group_id) {
        Ok(s) => s,
        Err(code) => return every_partition(&req, code),
    };
    let image = broker.image();
    let exists = |topic: &str, p: i32| {
        image
            .topic(topic)
            .is_some_and(|t| usize::try_from(p).is_ok_and(|i| i < t.partitions.len()))
    };
    group::update(shard, |c| {
        if let Err(code) = check_transaction(broker, &req, shard.partition) {
            return every_partition(&req, fenced_for_version(code, version, 3));
        }
        let (records, response) = c.txn_offset_commit(&req, &exists, now_ms());
        if records.is_empty() {
            return response;
        }
        match crate::txn::append_txn_offsets(broker, shard.partition, req.producer_id, req.producer_epoch, &records) {
            Ok(()) => {
                c.add_pending_txn_offsets(req.producer_id, records);
                response
            }
            Err(code) => every_partition(&req, fenced_for_version(code, version, 3)),
        }
    })
}

/// The producer's transaction is ongoing at this epoch and holds the group's offsets partition.
fn check_transaction(broker: &Broker, req: &TxnOffsetCommitRequest, partition: i32) -> Result<(), ErrorCode> {
    if !broker.txns.is_loaded() {
        return Err(ErrorCode::INVALID_TXN_STATE);
    }
    let state = broker.txns.state();
    let meta = state
        .get(&req.transactional_id)
        .ok_or(ErrorCode::INVALID_PRODUCER_ID_MAPPING)?;
    if meta.producer_id != req.producer_id {
        return Err(ErrorCode::INVALID_PRODUCER_ID_MAPPING);
    }
    if meta.producer_epoch != req.producer_epoch {
        return Err(ErrorCode::PRODUCER_FENCED);
    }
    let holds = meta.partitions.contains(&(OFFSETS_TOPIC.to_string(), partition));
    if meta.state != TxnState::Ongoing || !holds {
        return Err(ErrorCode::INVALID_TXN_STATE);
    }
    Ok(())
}

fn every_partition(req: &TxnOffsetCommitRequest, code: ErrorCode) -> TxnOffsetCommitResponse {
    TxnOffsetCommitResponse {
        topics: req
            .topics
            .iter()
            .map(|t| TxnOffsetCommitResponseTopic {
                name: t.name.clone(),
                partitions: t
                    .partitions
                    .iter()
                    .map(|p| TxnOffsetCommitResponsePartition {
                        partition_index: p.partition_index,
                        error_code: code.code(),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}
