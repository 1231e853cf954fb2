//! ConsumerGroupHeartbeat (key 68), v0–1: the KIP-848 consumer protocol. Join, heartbeat and
//! leave run in the group's shard; the records are appended before the answer leaves.
//! `subscribed_topic_regex` answers INVALID_REQUEST (not supported yet).

use runnel_coordinator::{ClientInfo, HeartbeatContext, TopicsSnapshot};
use runnel_protocol::codec::Uuid;
use runnel_protocol::generated::consumer_group_heartbeat_request::ConsumerGroupHeartbeatRequest;
use runnel_protocol::generated::consumer_group_heartbeat_response::ConsumerGroupHeartbeatResponse;

use crate::broker::{now_ms, Broker};
use crate::group;
use crate::server::ConnContext;

pub fn handle(
    broker: &Broker,
    ctx: &ConnContext,
    client_id: Option<&str>,
    req: ConsumerGroupHeartbeatRequest,
) -> ConsumerGroupHeartbeatResponse {
    let shard = match broker.groups.shard_for(&req.group_id) {
        Ok(s) => s,
        Err(code) => {
            return ConsumerGroupHeartbeatResponse {
                error_code: code.code(),
                ..Default::default()
            }
        }
    };
    let topics = topics_snapshot(broker);
    let hb = HeartbeatContext {
        client: ClientInfo {
            client_id: client_id.unwrap_or_default().to_string(),
            client_host: format!("/{}", ctx.peer.ip()),
        },
        topics: &topics,
        new_member_id: new_member_id(),
        now_ms: now_ms(),
    };
    group::run_recorded(broker, shard, |c| c.consumer_group_heartbeat(&req, &hb))
}

/// Every topic of the metadata image by name, id and partition count.
pub fn topics_snapshot(broker: &Broker) -> TopicsSnapshot {
    let image = broker.image();
    let mut topics = TopicsSnapshot::new();
    for t in image.topics() {
        let partitions = i32::try_from(t.partitions.len()).unwrap_or(i32::MAX);
        topics.insert(&t.name, Uuid(t.id), partitions);
    }
    topics
}

/// Kafka's member ids for this protocol are 22-character base64 UUIDs.
fn new_member_id() -> String {
    Uuid(*uuid::Uuid::new_v4().as_bytes()).to_string()
}
