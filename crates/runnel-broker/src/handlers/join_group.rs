//! JoinGroup (key 11), v0–9: parked until the join phase completes; the answer comes from the
//! group's shard through a oneshot channel. v4+ asks new members to rejoin with the member id
//! it hands out (KIP-394).

use runnel_coordinator::{ClientInfo, Completion, JoinContext};
use runnel_protocol::generated::join_group_request::JoinGroupRequest;
use runnel_protocol::generated::join_group_response::JoinGroupResponse;
use runnel_protocol::ErrorCode;

use crate::broker::{now_ms, Broker};
use crate::group;
use crate::server::ConnContext;

pub async fn handle(
    broker: &Broker,
    ctx: &ConnContext,
    client_id: Option<&str>,
    req: JoinGroupRequest,
    version: i16,
) -> JoinGroupResponse {
    let member_id = req.member_id.clone();
    let shard = match broker.groups.shard_for(&req.group_id) {
        Ok(s) => s,
        Err(code) => return error(version, &member_id, code),
    };
    let (request, answer) = broker.groups.park(shard);
    let join = JoinContext {
        request,
        version,
        client: ClientInfo {
            client_id: client_id.unwrap_or_default().to_string(),
            client_host: format!("/{}", ctx.peer.ip()),
        },
        member_id_suffix: uuid::Uuid::new_v4().to_string(),
    };
    group::run_effects(broker, shard, |c| c.join_group(req, join, now_ms()));
    match answer.await {
        Ok(Completion::Join { response, .. }) => response,
        _ => error(version, &member_id, ErrorCode::COORDINATOR_NOT_AVAILABLE),
    }
}

fn error(version: i16, member_id: &str, code: ErrorCode) -> JoinGroupResponse {
    JoinGroupResponse {
        error_code: code.code(),
        generation_id: -1,
        protocol_name: if version >= 7 { None } else { Some(String::new()) },
        member_id: member_id.to_string(),
        ..Default::default()
    }
}
