//! DescribeProducers (key 61), v0: the idempotent producers each partition's log remembers
//! (`kafka-transactions.sh describe-producers`).
//!
//! Per partition: UNKNOWN_TOPIC_OR_PARTITION when this broker does not host it; otherwise every
//! producer in the log's producer state, sorted by id, with the epoch of the coordinator that
//! wrote its last marker and the first offset of its open transaction (-1 when none).

use runnel_protocol::generated::describe_producers_request::DescribeProducersRequest;
use runnel_protocol::generated::describe_producers_response::{
    DescribeProducersResponse, PartitionResponse, ProducerState, TopicResponse,
};
use runnel_protocol::ErrorCode;

use crate::broker::Broker;

pub fn handle(broker: &Broker, req: DescribeProducersRequest) -> DescribeProducersResponse {
    let topics = req
        .topics
        .into_iter()
        .map(|t| TopicResponse {
            partitions: t
                .partition_indexes
                .iter()
                .map(|p| describe_partition(broker, &t.name, *p))
                .collect(),
            name: t.name,
            ..Default::default()
        })
        .collect();
    DescribeProducersResponse {
        topics,
        ..Default::default()
    }
}

fn describe_partition(broker: &Broker, topic: &str, partition_index: i32) -> PartitionResponse {
    let Some(part) = broker.replicas.get(topic, partition_index) else {
        return PartitionResponse {
            partition_index,
            error_code: ErrorCode::UNKNOWN_TOPIC_OR_PARTITION.code(),
            error_message: Some("This server does not host this topic-partition.".into()),
            ..Default::default()
        };
    };
    let mut active_producers: Vec<ProducerState> = part
        .log()
        .producer_state()
        .entries()
        .map(|e| ProducerState {
            producer_id: e.producer_id,
            producer_epoch: i32::from(e.producer_epoch),
            last_sequence: e.last_seq(),
            last_timestamp: e.last_timestamp_ms,
            coordinator_epoch: e.coordinator_epoch,
            current_txn_start_offset: e.current_txn_first_offset.unwrap_or(-1),
            ..Default::default()
        })
        .collect();
    active_producers.sort_by_key(|p| p.producer_id);
    PartitionResponse {
        partition_index,
        active_producers,
        ..Default::default()
    }
}
