//! DeleteTopics (key 20), v0–6: by name, or by topic id from v6.

use runnel_metadata::controller::{self, TopicRef};
use runnel_protocol::codec::Uuid;
use runnel_protocol::generated::delete_topics_request::DeleteTopicsRequest;
use runnel_protocol::generated::delete_topics_response::{DeletableTopicResult, DeleteTopicsResponse};
use runnel_protocol::ErrorCode;

use crate::broker::Broker;

pub async fn handle(broker: &Broker, req: DeleteTopicsRequest, version: i16) -> DeleteTopicsResponse {
    let refs: Vec<TopicRef> = if version >= 6 {
        req.topics
            .iter()
            .map(|t| match &t.name {
                Some(n) => TopicRef::Name(n.clone()),
                None => TopicRef::Id(t.topic_id.0),
            })
            .collect()
    } else {
        req.topic_names.iter().map(|n| TopicRef::Name(n.clone())).collect()
    };
    if !broker.config.delete_topic_enable {
        let responses = refs
            .iter()
            .map(|r| {
                failed(
                    r,
                    ErrorCode::TOPIC_DELETION_DISABLED.code(),
                    "Topic deletion is disabled.",
                )
            })
            .collect();
        return DeleteTopicsResponse {
            responses,
            ..Default::default()
        };
    }
    let asked = refs.clone();
    let outcomes = match broker
        .propose(move |image| controller::delete_topics(image, &refs))
        .await
    {
        Ok(o) => o,
        Err(e) => {
            let responses = asked
                .iter()
                .map(|r| failed(r, ErrorCode::NOT_CONTROLLER.code(), &e.to_string()))
                .collect();
            return DeleteTopicsResponse {
                responses,
                ..Default::default()
            };
        }
    };
    let responses = asked
        .iter()
        .zip(outcomes)
        .map(|(r, outcome)| match outcome {
            Ok(deleted) => DeletableTopicResult {
                name: Some(deleted.name),
                topic_id: Uuid(deleted.topic_id),
                ..Default::default()
            },
            Err(e) => failed(r, e.code, &e.message),
        })
        .collect();
    DeleteTopicsResponse {
        responses,
        ..Default::default()
    }
}

fn failed(r: &TopicRef, code: i16, message: &str) -> DeletableTopicResult {
    let (name, topic_id) = match r {
        TopicRef::Name(n) => (Some(n.clone()), Uuid::ZERO),
        TopicRef::Id(id) => (None, Uuid(*id)),
    };
    DeletableTopicResult {
        name,
        topic_id,
        error_code: code,
        error_message: Some(message.to_string()),
        ..Default::default()
    }
}
