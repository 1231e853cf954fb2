//! DescribeTransactions (key 65), v0: the coordinator's view of each transactional id.

use std::collections::BTreeMap;

use runnel_protocol::generated::describe_transactions_request::DescribeTransactionsRequest;
use runnel_protocol::generated::describe_transactions_response::{
    DescribeTransactionsResponse, TopicData, TransactionState,
};
use runnel_protocol::ErrorCode;

use crate::broker::Broker;

pub fn handle(broker: &Broker, req: DescribeTransactionsRequest) -> DescribeTransactionsResponse {
    let loaded = broker.txns.is_loaded();
    let state = broker.txns.state();
    let transaction_states = req
        .transactional_ids
        .iter()
        .map(|id| {
            let missing = |code: ErrorCode| TransactionState {
                error_code: code.code(),
                transactional_id: id.clone(),
                producer_id: -1,
                producer_epoch: -1,
                transaction_start_time_ms: -1,
                ..Default::default()
            };
            if !loaded {
                return missing(ErrorCode::COORDINATOR_NOT_AVAILABLE);
            }
            let Some(meta) = state.get(id) else {
                return missing(ErrorCode::TRANSACTIONAL_ID_NOT_FOUND);
            };
            let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
            for (topic, p) in &meta.partitions {
                by_topic.entry(topic).or_default().push(*p);
            }
            TransactionState {
                error_code: 0,
                transactional_id: id.clone(),
                transaction_state: meta.state.name().to_string(),
                transaction_timeout_ms: meta.timeout_ms,
                transaction_start_time_ms: meta.start_ms,
                producer_id: meta.producer_id,
                producer_epoch: meta.producer_epoch,
                topics: by_topic
                    .into_iter()
                    .map(|(topic, partitions)| TopicData {
                        topic: topic.to_string(),
                        partitions,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }
        })
        .collect();
    DescribeTransactionsResponse {
        transaction_states,
        ..Default::default()
    }
}
