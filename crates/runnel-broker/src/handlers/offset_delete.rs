//! OffsetDelete (key 47), v0: deletes committed offsets of a group without members, or of
//! topics a consumer group does not subscribe to (GROUP_SUBSCRIBED_TO_TOPIC otherwise).

use runnel_protocol::generated::offset_delete_request::OffsetDeleteRequest;
use runnel_protocol::generated::offset_delete_response::OffsetDeleteResponse;

use crate::broker::Broker;
use crate::group;

pub fn handle(broker: &Broker, req: OffsetDeleteRequest) -> OffsetDeleteResponse {
    let outcome = broker
        .groups
        .shard_for(&req.group_id)
        .and_then(|shard| group::decide(broker, shard, |c| c.offset_delete(&req)));
    match outcome {
        Ok(r) => r,
        Err(code) => OffsetDeleteResponse {
            error_code: code.code(),
            ..Default::default()
        },
    }
}
