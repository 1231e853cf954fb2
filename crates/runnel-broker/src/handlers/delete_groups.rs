//! DeleteGroups (key 42), v0–2: groups without members are deleted with their offsets
//! (tombstones in `__consumer_offsets`); others get NON_EMPTY_GROUP or GROUP_ID_NOT_FOUND.

use runnel_protocol::generated::delete_groups_request::DeleteGroupsRequest;
use runnel_protocol::generated::delete_groups_response::{DeletableGroupResult, DeleteGroupsResponse};

use crate::broker::Broker;
use crate::group;

pub fn handle(broker: &Broker, req: DeleteGroupsRequest) -> DeleteGroupsResponse {
    let mut results = Vec::with_capacity(req.groups_names.len());
    for id in &req.groups_names {
        let one = std::slice::from_ref(id);
        let outcome = broker
            .groups
            .shard_for(id)
            .and_then(|shard| group::decide(broker, shard, |c| c.delete_groups(one)));
        match outcome {
            Ok(r) => results.extend(r),
            Err(code) => results.push(DeletableGroupResult {
                group_id: id.clone(),
                error_code: code.code(),
                ..Default::default()
            }),
        }
    }
    DeleteGroupsResponse {
        results,
        ..Default::default()
    }
}
