//! ListTransactions (key 66), v0–1: transactional ids, filtered by state, producer id and (v1)
//! by running longer than `duration_filter` ms. Unknown state names are echoed back, as Kafka.

use runnel_coordinator::txn::TxnState;
use runnel_protocol::generated::list_transactions_request::ListTransactionsRequest;
use runnel_protocol::generated::list_transactions_response::{ListTransactionsResponse, TransactionState};

use crate::broker::{now_ms, Broker};

pub fn handle(broker: &Broker, req: ListTransactionsRequest) -> ListTransactionsResponse {
    let unknown_state_filters: Vec<String> = req
        .state_filters
        .iter()
        .filter(|f| !TxnState::ALL.iter().any(|s| s.name() == f.as_str()))
        .cloned()
        .collect();
    let now = now_ms();
    let state = broker.txns.state();
    let transaction_states = state
        .transactions()
        .filter(|m| req.state_filters.is_empty() || req.state_filters.iter().any(|f| f == m.state.name()))
        .filter(|m| req.producer_id_filters.is_empty() || req.producer_id_filters.contains(&m.producer_id))
        .filter(|m| {
            req.duration_filter < 0
                || (m.state == TxnState::Ongoing && now.saturating_sub(m.start_ms) >= req.duration_filter)
        })
        .map(|m| TransactionState {
            transactional_id: m.transactional_id.clone(),
            producer_id: m.producer_id,
            transaction_state: m.state.name().to_string(),
            ..Default::default()
        })
        .collect();
    ListTransactionsResponse {
        unknown_state_filters,
        transaction_states,
        ..Default::default()
    }
}
