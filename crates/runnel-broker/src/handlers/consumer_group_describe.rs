//! ConsumerGroupDescribe (key 69), v0: members, epochs, current and target assignments of
//! KIP-848 consumer groups; GROUP_ID_NOT_FOUND for unknown and classic groups.

use runnel_protocol::generated::consumer_group_describe_request::ConsumerGroupDescribeRequest;
use runnel_protocol::generated::consumer_group_describe_response::{ConsumerGroupDescribeResponse, DescribedGroup};

use crate::broker::Broker;
use crate::group;
use crate::handlers::consumer_group_heartbeat::topics_snapshot;

pub fn handle(broker: &Broker, req: ConsumerGroupDescribeRequest) -> ConsumerGroupDescribeResponse {
    let topics = topics_snapshot(broker);
    let groups = req
        .group_ids
        .iter()
        .map(|id| match broker.groups.shard_for(id) {
            Ok(shard) => group::read(shard, |c| {
                c.consumer_group_describe(id, &topics, req.include_authorized_operations)
            }),
            Err(code) => DescribedGroup {
                error_code: code.code(),
                group_id: id.clone(),
                authorized_operations: i32::MIN,
                ..Default::default()
            },
        })
        .collect();
    ConsumerGroupDescribeResponse {
        groups,
        ..Default::default()
    }
}
