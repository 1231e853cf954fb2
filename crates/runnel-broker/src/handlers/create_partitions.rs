//! CreatePartitions (key 37), v0–3: increases a topic's partition count.

use runnel_metadata::controller::{self, CreatePartitionsOptions};
use runnel_protocol::generated::create_partitions_request::CreatePartitionsRequest;
use runnel_protocol::generated::create_partitions_response::{CreatePartitionsResponse, CreatePartitionsTopicResult};
use runnel_protocol::ErrorCode;

use crate::broker::Broker;

pub async fn handle(broker: &Broker, req: CreatePartitionsRequest, _version: i16) -> CreatePartitionsResponse {
    let mut results = Vec::with_capacity(req.topics.len());
    for topic in req.topics {
        let opts = CreatePartitionsOptions {
            validate_only: req.validate_only,
            live_broker_ids: vec![broker.node_id],
        };
        let assignments: Option<Vec<Vec<i32>>> =
            topic.assignments.map(|a| a.into_iter().map(|x| x.broker_ids).collect());
        let name = topic.name.clone();
        let count = topic.count;
        let outcome = broker
            .propose(move |image| controller::create_partitions(image, &name, count, assignments.as_deref(), &opts))
            .await;
        let (error_code, error_message) = match outcome {
            Ok(Ok(())) => (0, None),
            Ok(Err(e)) => (e.code, Some(e.message)),
            Err(e) => (ErrorCode::NOT_CONTROLLER.code(), Some(e.to_string())),
        };
        results.push(CreatePartitionsTopicResult {
            name: topic.name,
            error_code,
            error_message,
            ..Default::default()
        });
    }
    CreatePartitionsResponse {
        results,
        ..Default::default()
    }
}
