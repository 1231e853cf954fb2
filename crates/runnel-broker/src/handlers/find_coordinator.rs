//! FindCoordinator (key 10), v0–6: this broker coordinates every group (key type 0) and every
//! transactional id (key type 1). v4+ batches keys. The first lookup of a kind creates and loads
//! `__consumer_offsets` or `__transaction_state`, as in Kafka.

use runnel_protocol::generated::find_coordinator_request::FindCoordinatorRequest;
use runnel_protocol::generated::find_coordinator_response::{Coordinator, FindCoordinatorResponse};
use runnel_protocol::ErrorCode;

use crate::broker::Broker;
use crate::server::ConnContext;

const KEY_TYPE_GROUP: i8 = 0;
const KEY_TYPE_TRANSACTION: i8 = 1;

pub async fn handle(
    broker: &Broker,
    ctx: &ConnContext,
    req: FindCoordinatorRequest,
    version: i16,
) -> FindCoordinatorResponse {
    if req.key_type == KEY_TYPE_GROUP {
        // A failure shows up per key below as COORDINATOR_NOT_AVAILABLE; clients retry.
        let _ = crate::group::ensure_started(broker).await;
    } else if req.key_type == KEY_TYPE_TRANSACTION {
        let _ = crate::txn::ensure_started(broker).await;
    }
    if version >= 4 {
        let coordinators = req
            .coordinator_keys
            .iter()
            .map(|key| lookup(broker, ctx, key, req.key_type))
            .collect();
        return FindCoordinatorResponse {
            coordinators,
            ..Default::default()
        };
    }
    let c = lookup(broker, ctx, &req.key, req.key_type);
    FindCoordinatorResponse {
        error_code: c.error_code,
        error_message: c.error_message,
        node_id: c.node_id,
        host: c.host,
        port: c.port,
        ..Default::default()
    }
}

fn lookup(broker: &Broker, ctx: &ConnContext, key: &str, key_type: i8) -> Coordinator {
    let error = |code: ErrorCode, message: &str| Coordinator {
        key: key.to_string(),
        node_id: -1,
        host: String::new(),
        port: -1,
        error_code: code.code(),
        error_message: Some(message.to_string()),
        ..Default::default()
    };
    match key_type {
        KEY_TYPE_GROUP => {
            if let Err(code) = broker.groups.shard_for(key) {
                return error(code, "The group coordinator is not available.");
            }
        }
        KEY_TYPE_TRANSACTION => {
            if broker.txns.partition_for(key).is_none() {
                return error(
                    ErrorCode::COORDINATOR_NOT_AVAILABLE,
                    "The transaction coordinator is not available.",
                );
            }
        }
        _ => return error(ErrorCode::INVALID_REQUEST, "Unknown coordinator key type."),
    }
    match broker.endpoint_for(&ctx.listener) {
        Some(e) => Coordinator {
            key: key.to_string(),
            node_id: broker.node_id,
            host: e.host.clone(),
            port: i32::from(e.port),
            error_code: 0,
            error_message: None,
            ..Default::default()
        },
        None => error(ErrorCode::COORDINATOR_NOT_AVAILABLE, "No listener to advertise."),
    }
}
