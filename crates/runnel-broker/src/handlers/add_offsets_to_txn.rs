//! AddOffsetsToTxn (key 25), v0–4: adds the group's `__consumer_offsets` partition to the
//! producer's transaction, so its TxnOffsetCommit offsets are completed by the transaction's
//! marker there.

use runnel_coordinator::partition_for;
use runnel_protocol::generated::add_offsets_to_txn_request::AddOffsetsToTxnRequest;
use runnel_protocol::generated::add_offsets_to_txn_response::AddOffsetsToTxnResponse;
use runnel_protocol::ErrorCode;

use crate::broker::Broker;
use crate::group::OFFSETS_TOPIC;
use crate::handlers::init_producer_id::fenced_for_version;

pub async fn handle(broker: &Broker, req: AddOffsetsToTxnRequest, version: i16) -> AddOffsetsToTxnResponse {
    let code = match add(broker, &req).await {
        Ok(()) => ErrorCode::NONE,
        Err(code) => fenced_for_version(code, version, 2),
    };
    AddOffsetsToTxnResponse {
        error_code: code.code(),
        ..Default::default()
    }
}

async fn add(broker: &Broker, req: &AddOffsetsToTxnRequest) -> Result<(), ErrorCode> {
    if req.group_id.is_empty() {
        return Err(ErrorCode::INVALID_GROUP_ID);
    }
    if !broker.txns.is_loaded() {
        return Err(ErrorCode::NOT_COORDINATOR);
    }
    // The offsets topic must exist for its partition to join the transaction.
    crate::group::ensure_started(broker).await?;
    let partitions = i32::try_from(broker.groups.shards().len()).unwrap_or(0);
    if partitions == 0 {
        return Err(ErrorCode::COORDINATOR_NOT_AVAILABLE);
    }
    let partition = (OFFSETS_TOPIC.to_string(), partition_for(&req.group_id, partitions));
    crate::txn::add_partitions(
        broker,
        &req.transactional_id,
        req.producer_id,
        req.producer_epoch,
        &[partition],
    )
}
