//! ListGroups (key 16), v0–5: every group of every shard; states filter (v4+) and types filter
//! (v5+, every group here is "classic"), both case-insensitive.

use runnel_protocol::generated::list_groups_request::ListGroupsRequest;
use runnel_protocol::generated::list_groups_response::ListGroupsResponse;

use crate::broker::Broker;
use crate::group;

pub fn handle(broker: &Broker, req: ListGroupsRequest) -> ListGroupsResponse {
    let mut groups = Vec::new();
    for shard in broker.groups.shards() {
        groups.extend(group::read(shard, |c| {
            c.list_groups(&req.states_filter, &req.types_filter)
        }));
    }
    ListGroupsResponse {
        groups,
        ..Default::default()
    }
}
