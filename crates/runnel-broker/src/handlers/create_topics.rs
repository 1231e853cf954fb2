//! CreateTopics (key 19), v0–7: validated and written by the controller logic through the
//! metadata quorum; v5+ returns the created topic's configs.

use runnel_metadata::controller::{self, CreateTopicSpec, CreateTopicsOptions};
use runnel_metadata::records::TopicId;
use runnel_protocol::codec::Uuid;
use runnel_protocol::generated::create_topics_request::CreateTopicsRequest;
use runnel_protocol::generated::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult, CreateTopicsResponse,
};
use runnel_protocol::ErrorCode;

use crate::broker::Broker;
use crate::topic_config::{effective_topic_config, topic_config_keys};

fn fresh_ids(n: usize) -> Vec<TopicId> {
    (0..n).map(|_| *uuid::Uuid::new_v4().as_bytes()).collect()
}

fn options(broker: &Broker, validate_only: bool, n: usize) -> CreateTopicsOptions {
    CreateTopicsOptions {
        validate_only,
        default_num_partitions: broker.config.num_partitions,
        default_replication_factor: broker.config.default_replication_factor,
        live_broker_ids: vec![broker.node_id],
        topic_ids: fresh_ids(n),
    }
}

/// Creates topics with the broker defaults (Metadata's auto-creation). Failures are logged:
/// the Metadata response then reports the topic as unknown and the client retries.
pub async fn auto_create(broker: &Broker, names: &[String]) {
    let specs: Vec<CreateTopicSpec> = names
        .iter()
        .map(|n| CreateTopicSpec {
            name: n.clone(),
            num_partitions: -1,
            replication_factor: -1,
            ..Default::default()
        })
        .collect();
    let opts = options(broker, false, specs.len());
    let result = broker
        .propose(move |image| controller::create_topics(image, &specs, &opts))
        .await;
    match result {
        Ok(outcomes) => {
            for (name, outcome) in names.iter().zip(outcomes) {
                match outcome {
                    Ok(_) => tracing::info!(topic = %name, "auto-created topic"),
                    Err(e) if e.code == ErrorCode::TOPIC_ALREADY_EXISTS.code() => {}
                    Err(e) => tracing::debug!(topic = %name, error = %e, "auto-creation refused"),
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "auto-creating topics failed"),
    }
}

pub async fn handle(broker: &Broker, req: CreateTopicsRequest, version: i16) -> CreateTopicsResponse {
    let specs: Vec<CreateTopicSpec> = req
        .topics
        .iter()
        .map(|t| CreateTopicSpec {
            name: t.name.clone(),
            num_partitions: t.num_partitions,
            replication_factor: t.replication_factor,
            assignments: t
                .assignments
                .iter()
                .map(|a| (a.partition_index, a.broker_ids.clone()))
                .collect(),
            configs: t.configs.iter().map(|c| (c.name.clone(), c.value.clone())).collect(),
        })
        .collect();
    let opts = options(broker, req.validate_only, specs.len());
    let names: Vec<String> = specs.iter().map(|s| s.name.clone()).collect();
    let outcomes = match broker
        .propose(move |image| controller::create_topics(image, &specs, &opts))
        .await
    {
        Ok(o) => o,
        Err(e) => {
            let topics = names
                .into_iter()
                .map(|name| CreatableTopicResult {
                    name,
                    error_code: ErrorCode::NOT_CONTROLLER.code(),
                    error_message: Some(e.to_string()),
                    ..Default::default()
                })
                .collect();
            return CreateTopicsResponse {
                topics,
                ..Default::default()
            };
        }
    };
    let image = broker.image();
    let topics = names
        .into_iter()
        .zip(outcomes)
        .map(|(name, outcome)| match outcome {
            Ok(created) => {
                let configs = (version >= 5).then(|| {
                    topic_config_keys()
                        .map(|key| {
                            let (value, source) = effective_topic_config(&broker.config, &image, &name, key);
                            let sensitive = runnel_metadata::configs::topic_config(key).is_some_and(|d| d.sensitive);
                            CreatableTopicConfigs {
                                name: key.to_string(),
                                value: if sensitive { None } else { value },
                                read_only: false,
                                config_source: source.code(),
                                is_sensitive: sensitive,
                                ..Default::default()
                            }
                        })
                        .collect()
                });
                CreatableTopicResult {
                    name,
                    topic_id: Uuid(created.topic_id),
                    num_partitions: created.num_partitions,
                    replication_factor: created.replication_factor,
                    configs,
                    ..Default::default()
                }
            }
            Err(e) => CreatableTopicResult {
                name,
                error_code: e.code,
                error_message: Some(e.message),
                num_partitions: -1,
                replication_factor: -1,
                ..Default::default()
            },
        })
        .collect();
    CreateTopicsResponse {
        topics,
        ..Default::default()
    }
}
