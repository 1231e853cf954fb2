//! EndTxn (key 26), v0–5: commits or aborts the producer's transaction. The answer comes after
//! the markers are written and the transaction is complete, so the producer may begin the next
//! one at once. (v5 belongs to transaction version 2, which this broker does not advertise; it
//! is answered like v4, with the unchanged producer id and epoch.)

use runnel_protocol::generated::end_txn_request::EndTxnRequest;
use runnel_protocol::generated::end_txn_response::EndTxnResponse;
use runnel_protocol::ErrorCode;

use crate::broker::Broker;
use crate::handlers::init_producer_id::fenced_for_version;

pub fn handle(broker: &Broker, req: EndTxnRequest, version: i16) -> EndTxnResponse {
    let result = if broker.txns.is_loaded() {
        crate::txn::end_txn(
            broker,
            &req.transactional_id,
            req.producer_id,
            req.producer_epoch,
            req.committed,
        )
    } else {
        Err(ErrorCode::NOT_COORDINATOR)
    };
    let code = result
        .err()
        .map_or(ErrorCode::NONE, |c| fenced_for_version(c, version, 2));
    EndTxnResponse {
        error_code: code.code(),
        producer_id: req.producer_id,
        producer_epoch: req.producer_epoch,
        ..Default::default()
    }
}
