//! DescribeTopicPartitions (key 75), v0: topics and partitions with a cursor, as
//! `kafka-topics.sh --describe` uses since Kafka 3.9. Topics are listed in name order;
//! `response_partition_limit` bounds the partitions returned and sets the next cursor.

use runnel_metadata::image::TopicImage;
use runnel_protocol::codec::Uuid;
use runnel_protocol::generated::describe_topic_partitions_request::DescribeTopicPartitionsRequest;
use runnel_protocol::generated::describe_topic_partitions_response::{
    Cursor, DescribeTopicPartitionsResponse, DescribeTopicPartitionsResponsePartition,
    DescribeTopicPartitionsResponseTopic,
};
use runnel_protocol::ErrorCode;

use crate::broker::Broker;
use crate::handlers::metadata::{is_internal, TOPIC_OPERATIONS};

pub fn handle(broker: &Broker, req: DescribeTopicPartitionsRequest) -> DescribeTopicPartitionsResponse {
    let image = broker.image();
    let mut names: Vec<String> = if req.topics.is_empty() {
        image.topics().map(|t| t.name.clone()).collect()
    } else {
        req.topics.iter().map(|t| t.name.clone()).collect()
    };
    names.sort();
    names.dedup();
    let (start_topic, start_partition) = match &req.cursor {
        Some(c) => (c.topic_name.clone(), c.partition_index.max(0)),
        None => (String::new(), 0),
    };
    let mut budget = if req.response_partition_limit > 0 {
        req.response_partition_limit as usize
    } else {
        2000
    };
    let mut topics = Vec::new();
    let mut next_cursor = None;
    for name in names.into_iter().filter(|n| *n >= start_topic) {
        let Some(topic) = image.topic(&name) else {
            topics.push(DescribeTopicPartitionsResponseTopic {
                error_code: ErrorCode::UNKNOWN_TOPIC_OR_PARTITION.code(),
                name: Some(name),
                ..Default::default()
            });
            continue;
        };
        if budget == 0 {
            next_cursor = Some(Cursor {
                topic_name: name,
                partition_index: 0,
                ..Default::default()
            });
            break;
        }
        let first = if name == start_topic { start_partition } else { 0 };
        let (entry, cut) = describe(topic, first, &mut budget);
        topics.push(entry);
        if let Some(p) = cut {
            next_cursor = Some(Cursor {
                topic_name: name,
                partition_index: p,
                ..Default::default()
            });
            break;
        }
    }
    DescribeTopicPartitionsResponse {
        topics,
        next_cursor,
        ..Default::default()
    }
}

/// One topic's partitions from `first`, within `budget`; returns where it stopped if cut short.
fn describe(topic: &TopicImage, first: i32, budget: &mut usize) -> (DescribeTopicPartitionsResponseTopic, Option<i32>) {
    let mut partitions = Vec::new();
    let mut cut = None;
    for p in topic.partitions.iter().filter(|p| p.partition >= first) {
        if *budget == 0 {
            cut = Some(p.partition);
            break;
        }
        *budget -= 1;
        partitions.push(DescribeTopicPartitionsResponsePartition {
            error_code: 0,
            partition_index: p.partition,
            leader_id: p.leader,
            leader_epoch: p.leader_epoch,
            replica_nodes: p.replicas.clone(),
            isr_nodes: p.isr.clone(),
            eligible_leader_replicas: Some(Vec::new()),
            last_known_elr: Some(Vec::new()),
            offline_replicas: Vec::new(),
            ..Default::default()
        });
    }
    let entry = DescribeTopicPartitionsResponseTopic {
        error_code: 0,
        name: Some(topic.name.clone()),
        topic_id: Uuid(topic.id),
        is_internal: is_internal(&topic.name),
        partitions,
        topic_authorized_operations: TOPIC_OPERATIONS,
        ..Default::default()
    };
    (entry, cut)
}
