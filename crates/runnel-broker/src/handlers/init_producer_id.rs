//! InitProducerId (key 22), v0–5: producer ids for idempotent and transactional producers.
//!
//! A non-transactional producer (null transactional id) gets a fresh producer id with epoch 0,
//! whatever producer id/epoch it sends (Kafka does the same: idempotent producers never bump).
//! A transactional id goes to the transaction coordinator: a new id gets a fresh producer id,
//! a known one its epoch bumped (fencing the previous producer and aborting its open
//! transaction), as Kafka's `TransactionCoordinator.handleInitProducerId`.

use runnel_protocol::generated::init_producer_id_request::InitProducerIdRequest;
use runnel_protocol::generated::init_producer_id_response::InitProducerIdResponse;
use runnel_protocol::ErrorCode;

use crate::broker::Broker;

pub async fn handle(broker: &Broker, req: InitProducerIdRequest, version: i16) -> InitProducerIdResponse {
    if let Some(transactional_id) = &req.transactional_id {
        if let Err(code) = check_transactional(broker, transactional_id, req.transaction_timeout_ms) {
            return error(code);
        }
        let expected = (req.producer_id, req.producer_epoch);
        return match crate::txn::init_producer_id(broker, transactional_id, req.transaction_timeout_ms, expected).await
        {
            Ok((producer_id, producer_epoch)) => InitProducerIdResponse {
                producer_id,
                producer_epoch,
                ..Default::default()
            },
            Err(code) => error(fenced_for_version(code, version, 4)),
        };
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
fn check_transactional(broker: &Broker, transactional_id: &str, timeout_ms: i32) -> Result<(), ErrorCode> {
    if transactional_id.is_empty() {
        return Err(ErrorCode::INVALID_REQUEST);
    }
    if timeout_ms <= 0 || timeout_ms > broker.config.transaction_max_timeout_ms {
        return Err(ErrorCode::INVALID_TRANSACTION_TIMEOUT);
    }
    Ok(())
}

/// KIP-588: PRODUCER_FENCED is only understood from these request versions on; older clients
/// get INVALID_PRODUCER_EPOCH.
pub fn fenced_for_version(code: ErrorCode, version: i16, first_version: i16) -> ErrorCode {
    if code == ErrorCode::PRODUCER_FENCED && version < first_version {
        ErrorCode::INVALID_PRODUCER_EPOCH
    } else {
        code
    }
}

fn error(code: ErrorCode) -> InitProducerIdResponse {
    InitProducerIdResponse {
        error_code: code.code(),
        producer_id: -1,
        producer_epoch: -1,
        ..Default::default()
    }
}
