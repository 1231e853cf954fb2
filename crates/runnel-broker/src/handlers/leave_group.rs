//! LeaveGroup (key 13), v0–5: v0–2 name one member, v3+ a batch (static members by instance
//! id); a departure starts a rebalance at once.

use runnel_coordinator::Effects;
use runnel_protocol::generated::leave_group_request::LeaveGroupRequest;
use runnel_protocol::generated::leave_group_response::LeaveGroupResponse;

use crate::broker::{now_ms, Broker};
use crate::group;

pub fn handle(broker: &Broker, req: LeaveGroupRequest, version: i16) -> LeaveGroupResponse {
    let shard = match broker.groups.shard_for(&req.group_id) {
        Ok(s) => s,
        Err(code) => {
            return LeaveGroupResponse {
                error_code: code.code(),
                ..Default::default()
            }
        }
    };
    let mut response = LeaveGroupResponse::default();
    group::run_effects(broker, shard, |c| {
        let (r, fx): (LeaveGroupResponse, Effects) = c.leave_group(&req, version, now_ms());
        response = r;
        fx
    });
    response
}
