//! DescribeGroups (key 15), v0–5: state, protocol, members (metadata and assignment when
//! Stable); an unknown group is reported Dead, as Kafka does before v6.

use runnel_protocol::generated::describe_groups_request::DescribeGroupsRequest;
use runnel_protocol::generated::describe_groups_response::{DescribeGroupsResponse, DescribedGroup};

use crate::broker::Broker;
use crate::group;

pub fn handle(broker: &Broker, req: DescribeGroupsRequest) -> DescribeGroupsResponse {
    let groups = req
        .groups
        .iter()
        .map(|id| match broker.groups.shard_for(id) {
            Ok(shard) => group::read(shard, |c| c.describe_group(id)),
            Err(code) => DescribedGroup {
                error_code: code.code(),
                group_id: id.clone(),
                authorized_operations: i32::MIN,
                ..Default::default()
            },
        })
        .collect();
    DescribeGroupsResponse {
        groups,
        ..Default::default()
    }
}
