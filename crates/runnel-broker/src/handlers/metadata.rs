//! Metadata (key 3), v0–12: brokers, controller, topics and partitions; auto-creates unknown
//! topics when the client allows it and `auto.create.topics.enable` is true.

use runnel_metadata::image::{MetadataImage, TopicImage};
use runnel_protocol::codec::Uuid;
use runnel_protocol::generated::metadata_request::MetadataRequest;
use runnel_protocol::generated::metadata_response::{
    MetadataResponse, MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use runnel_protocol::ErrorCode;

use crate::broker::Broker;
use crate::handlers::create_topics::auto_create;
use crate::server::ConnContext;

/// Kafka's ACL operations a topic or cluster can report (all of them: no authorizer yet).
pub const TOPIC_OPERATIONS: i32 =
    (1 << 3) | (1 << 4) | (1 << 5) | (1 << 6) | (1 << 7) | (1 << 8) | (1 << 10) | (1 << 11);
pub const CLUSTER_OPERATIONS: i32 =
    (1 << 4) | (1 << 5) | (1 << 7) | (1 << 8) | (1 << 9) | (1 << 10) | (1 << 11) | (1 << 12);

/// Internal topics are flagged so tools hide them (Kafka's `Topic.isInternal`).
pub fn is_internal(topic: &str) -> bool {
    topic == "__consumer_offsets" || topic == "__transaction_state"
}

enum Wanted {
    Name(String),
    Id(Uuid),
}

pub async fn handle(broker: &Broker, ctx: &ConnContext, req: MetadataRequest, version: i16) -> MetadataResponse {
    let all_topics = match &req.topics {
        None => true,
        Some(t) => version == 0 && t.is_empty(),
    };
    let wanted: Vec<Wanted> = req
        .topics
        .iter()
        .flatten()
        .map(|t| match &t.name {
            Some(name) => Wanted::Name(name.clone()),
            None => Wanted::Id(t.topic_id),
        })
        .collect();

    let mut image = broker.image();
    // v0-3 always allowed auto-creation; later versions say so in the request.
    let allow_auto = broker.config.auto_create_topics_enable && (version < 4 || req.allow_auto_topic_creation);
    if allow_auto && !all_topics {
        let missing: Vec<String> = wanted
            .iter()
            .filter_map(|w| match w {
                Wanted::Name(n) if image.topic(n).is_none() => Some(n.clone()),
                _ => None,
            })
            .collect();
        if !missing.is_empty() {
            auto_create(broker, &missing).await;
            image = broker.image();
        }
    }

    let include_ops = req.include_topic_authorized_operations;
    let topics = if all_topics {
        image.topics().map(|t| topic_response(t, include_ops)).collect()
    } else {
        wanted.iter().map(|w| wanted_topic(&image, w, include_ops)).collect()
    };
    let endpoint = broker.endpoint_for(&ctx.listener);
    MetadataResponse {
        brokers: endpoint
            .map(|e| MetadataResponseBroker {
                node_id: broker.node_id,
                host: e.host.clone(),
                port: i32::from(e.port),
                rack: None,
                ..Default::default()
            })
            .into_iter()
            .collect(),
        cluster_id: Some(broker.cluster_id.clone()),
        controller_id: broker.node_id,
        topics,
        cluster_authorized_operations: if req.include_cluster_authorized_operations {
            CLUSTER_OPERATIONS
        } else {
            i32::MIN
        },
        ..Default::default()
    }
}

fn wanted_topic(image: &MetadataImage, wanted: &Wanted, include_ops: bool) -> MetadataResponseTopic {
    let found = match wanted {
        Wanted::Name(n) => image.topic(n),
        Wanted::Id(id) => image.topic_by_id(&id.0),
    };
    match (found, wanted) {
        (Some(t), _) => topic_response(t, include_ops),
        (None, Wanted::Name(n)) => {
            let code = if runnel_metadata::controller::validate_topic_name(n).is_err() {
                ErrorCode::INVALID_TOPIC_EXCEPTION
            } else {
                ErrorCode::UNKNOWN_TOPIC_OR_PARTITION
            };
            MetadataResponseTopic {
                error_code: code.code(),
                name: Some(n.clone()),
                ..Default::default()
            }
        }
        (None, Wanted::Id(id)) => MetadataResponseTopic {
            error_code: ErrorCode::UNKNOWN_TOPIC_ID.code(),
            topic_id: *id,
            ..Default::default()
        },
    }
}

fn topic_response(t: &TopicImage, include_ops: bool) -> MetadataResponseTopic {
    MetadataResponseTopic {
        error_code: 0,
        name: Some(t.name.clone()),
        topic_id: Uuid(t.id),
        is_internal: is_internal(&t.name),
        partitions: t
            .partitions
            .iter()
            .map(|p| MetadataResponsePartition {
                error_code: if p.leader < 0 {
                    ErrorCode::LEADER_NOT_AVAILABLE.code()
                } else {
                    0
                },
                partition_index: p.partition,
                leader_id: p.leader,
                leader_epoch: p.leader_epoch,
                replica_nodes: p.replicas.clone(),
                isr_nodes: p.isr.clone(),
                offline_replicas: Vec::new(),
                ..Default::default()
            })
            .collect(),
        topic_authorized_operations: if include_ops { TOPIC_OPERATIONS } else { i32::MIN },
        ..Default::default()
    }
}
