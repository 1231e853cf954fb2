//! SyncGroup (key 14), v0–5: followers wait for the leader's assignments; the answer comes
//! from the group's shard through a oneshot channel. Assignments are opaque bytes.

use runnel_coordinator::{Completion, SyncContext};
use runnel_protocol::generated::sync_group_request::SyncGroupRequest;
use runnel_protocol::generated::sync_group_response::SyncGroupResponse;
use runnel_protocol::ErrorCode;

use crate::broker::{now_ms, Broker};
use crate::group;

pub async fn handle(broker: &Broker, req: SyncGroupRequest, version: i16) -> SyncGroupResponse {
    let shard = match broker.groups.shard_for(&req.group_id) {
        Ok(s) => s,
        Err(code) => return error(code),
    };
    let (request, answer) = broker.groups.park(shard);
    let ctx = SyncContext { request, version };
    group::run_effects(broker, shard, |c| c.sync_group(req, ctx, now_ms()));
    match answer.await {
        Ok(Completion::Sync { response, .. }) => response,
        _ => error(ErrorCode::COORDINATOR_NOT_AVAILABLE),
    }
}

fn error(code: ErrorCode) -> SyncGroupResponse {
    SyncGroupResponse {
        error_code: code.code(),
        ..Default::default()
    }
}
