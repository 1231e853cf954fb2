//! Heartbeat (key 12), v0–4: keeps a member alive; REBALANCE_IN_PROGRESS tells it to rejoin.

use runnel_protocol::generated::heartbeat_request::HeartbeatRequest;
use runnel_protocol::generated::heartbeat_response::HeartbeatResponse;

use crate::broker::{now_ms, Broker};

pub fn handle(broker: &Broker, req: HeartbeatRequest) -> HeartbeatResponse {
    match broker.groups.shard_for(&req.group_id) {
        Ok(shard) => crate::group::update(shard, |c| c.heartbeat(&req, now_ms())),
        Err(code) => HeartbeatResponse {
            error_code: code.code(),
            ..Default::default()
        },
    }
}
