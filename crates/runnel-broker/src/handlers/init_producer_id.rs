//! InitProducerId (key 22), v0–5: producer ids for idempotent producers.
//!
//! A non-transactional producer (null transactional id) gets a fresh producer id with epoch 0,
//! whatever producer id/epoch it sends (Kafka does the same: idempotent producers never bump).
//! Transactions are not implemented yet: a transactional id is validated as Kafka does, then
//! answered COORDINATOR_NOT_AVAILABLE (retriable), which is what Kafka answers while no
//! transaction coordinator can serve the id; clients retry and then fail with a timeout.

use runnel_protocol::generated::init_producer_id_request::InitProducerIdRequest;
use runnel_protocol::generated::init_producer_id_response::InitProducerIdResponse;
use runnel_protocol::ErrorCode;

use crate::broker::Broker;

pub async fn handle(broker: &Broker, req: InitProducerIdRequest) -> InitProducerIdResponse {
    if let Some(transactional_id) = &req.transactional_id {
        return error(transactional_error(
            broker,
            transactional_id,
            req.transaction_timeout_ms,
        ));
    }
    match broker.producer_ids.next_id(broker).await {
        Ok(producer_id) => InitProducerIdResponse {
            error_code: 0,
            producer_id,
            producer_epoch: 0,
            ..Default::default()
        },
        Err(e) => {
            tracing::warn!(error = %e, "cannot allocate a producer id");
            // Retriable for clients, as Kafka answers while its id manager waits for a block.
            error(ErrorCode::COORDINATOR_LOAD_IN_PROGRESS)
        }
    }
}

/// Kafka's checks on a transactional InitProducerId before the coordinator is consulted.
fn transactional_error(broker: &Broker, transactional_id: &str, timeout_ms: i32) -> ErrorCode {
    if transactional_id.is_empty() {
        return ErrorCode::INVALID_REQUEST;
    }
    if timeout_ms <= 0 || timeout_ms > broker.config.transaction_max_timeout_ms {
        return ErrorCode::INVALID_TRANSACTION_TIMEOUT;
    }
    ErrorCode::COORDINATOR_NOT_AVAILABLE
}

fn error(code: ErrorCode) -> InitProducerIdResponse {
    InitProducerIdResponse {
        error_code: code.code(),
        producer_id: -1,
        producer_epoch: -1,
        ..Default::default()
    }
}
