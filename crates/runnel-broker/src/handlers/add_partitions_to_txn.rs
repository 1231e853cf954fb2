//! AddPartitionsToTxn (key 24), v0–5. v0–3 is the client form: one transaction, its partitions
//! added atomically (any unknown partition fails the whole request: UNKNOWN_TOPIC_OR_PARTITION
//! for it, OPERATION_NOT_ATTEMPTED for the rest, as Kafka). v4+ batches transactions and carries
//! the verify-only form (KIP-890) that asks whether partitions are already in the transaction.

use runnel_protocol::generated::add_partitions_to_txn_request::{
    AddPartitionsToTxnRequest, AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction,
};
use runnel_protocol::generated::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResponse, AddPartitionsToTxnResult,
    AddPartitionsToTxnTopicResult,
};
use runnel_protocol::ErrorCode;

use runnel_coordinator::txn::TxnPartition;

use crate::broker::Broker;
use crate::handlers::init_producer_id::fenced_for_version;

/// Each partition's outcome.
type Outcomes = Vec<(TxnPartition, ErrorCode)>;

pub fn handle(broker: &Broker, req: AddPartitionsToTxnRequest, version: i16) -> AddPartitionsToTxnResponse {
    if version <= 3 {
        let txn = AddPartitionsToTxnTransaction {
            transactional_id: req.v3_and_below_transactional_id,
            producer_id: req.v3_and_below_producer_id,
            producer_epoch: req.v3_and_below_producer_epoch,
            verify_only: false,
            topics: req.v3_and_below_topics,
            ..Default::default()
        };
        let result = one(broker, &txn, version);
        return AddPartitionsToTxnResponse {
            results_by_topic_v3_and_below: result.topic_results,
            ..Default::default()
        };
    }
    AddPartitionsToTxnResponse {
        results_by_transaction: req.transactions.iter().map(|t| one(broker, t, version)).collect(),
        ..Default::default()
    }
}

fn one(broker: &Broker, txn: &AddPartitionsToTxnTransaction, version: i16) -> AddPartitionsToTxnResult {
    let requested: Vec<(String, i32)> = txn
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(move |p| (t.name.clone(), *p)))
        .collect();
    let codes: Outcomes = match decide(broker, txn, &requested) {
        Ok(codes) => codes,
        Err(code) => {
            let code = fenced_for_version(code, version, 2);
            requested.into_iter().map(|p| (p, code)).collect()
        }
    };
    AddPartitionsToTxnResult {
        transactional_id: txn.transactional_id.clone(),
        topic_results: group_by_topic(&txn.topics, &codes),
        ..Default::default()
    }
}

/// The per-partition outcome, or one code for every partition.
fn decide(
    broker: &Broker,
    txn: &AddPartitionsToTxnTransaction,
    requested: &[(String, i32)],
) -> Result<Outcomes, ErrorCode> {
    if !broker.txns.is_loaded() || broker.txns.partition_for(&txn.transactional_id).is_none() {
        return Err(ErrorCode::NOT_COORDINATOR);
    }
    if txn.verify_only {
        return broker.txns.state().verify_partitions(
            &txn.transactional_id,
            txn.producer_id,
            txn.producer_epoch,
            requested,
        );
    }
    let image = broker.image();
    let unknown: Vec<&(String, i32)> = requested
        .iter()
        .filter(|(topic, p)| {
            image
                .topic(topic)
                .is_none_or(|t| usize::try_from(*p).map_or(true, |i| i >= t.partitions.len()))
        })
        .collect();
    if !unknown.is_empty() {
        return Ok(requested
            .iter()
            .map(|p| {
                let code = if unknown.contains(&p) {
                    ErrorCode::UNKNOWN_TOPIC_OR_PARTITION
                } else {
                    ErrorCode::OPERATION_NOT_ATTEMPTED
                };
                (p.clone(), code)
            })
            .collect());
    }
    crate::txn::add_partitions(
        broker,
        &txn.transactional_id,
        txn.producer_id,
        txn.producer_epoch,
        requested,
    )?;
    Ok(requested.iter().map(|p| (p.clone(), ErrorCode::NONE)).collect())
}

fn group_by_topic(
    topics: &[AddPartitionsToTxnTopic],
    codes: &[(TxnPartition, ErrorCode)],
) -> Vec<AddPartitionsToTxnTopicResult> {
    topics
        .iter()
        .map(|t| AddPartitionsToTxnTopicResult {
            name: t.name.clone(),
            results_by_partition: t
                .partitions
                .iter()
                .map(|p| {
                    let code = codes
                        .iter()
                        .find(|((topic, partition), _)| topic == &t.name && partition == p)
                        .map_or(ErrorCode::UNKNOWN_SERVER_ERROR, |(_, c)| *c);
                    AddPartitionsToTxnPartitionResult {
                        partition_index: *p,
                        partition_error_code: code.code(),
                        ..Default::default()
                    }
                })
                .collect(),
            ..Default::default()
        })
        .collect()
}
