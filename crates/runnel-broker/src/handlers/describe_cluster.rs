//! DescribeCluster (key 60), v0–1: cluster id, controller and brokers (as seen on the
//! listener the request came in on).

use runnel_protocol::generated::describe_cluster_request::DescribeClusterRequest;
use runnel_protocol::generated::describe_cluster_response::{DescribeClusterBroker, DescribeClusterResponse};
use runnel_protocol::ErrorCode;

use crate::broker::Broker;
use crate::handlers::metadata::CLUSTER_OPERATIONS;
use crate::server::ConnContext;

/// KIP-919 endpoint types.
const ENDPOINT_BROKERS: i8 = 1;
const ENDPOINT_CONTROLLERS: i8 = 2;

pub fn handle(broker: &Broker, ctx: &ConnContext, req: DescribeClusterRequest) -> DescribeClusterResponse {
    // As Kafka: asking a broker listener for controllers is a mismatch; any other type is
    // unsupported. The error response keeps the default endpoint type.
    let refusal = match req.endpoint_type {
        ENDPOINT_BROKERS => None,
        ENDPOINT_CONTROLLERS => Some((
            ErrorCode::MISMATCHED_ENDPOINT_TYPE,
            "The request was sent to an endpoint of type BROKER, but we wanted an endpoint of type CONTROLLER",
        )),
        _ => Some((ErrorCode::UNSUPPORTED_ENDPOINT_TYPE, "Unsupported endpoint type")),
    };
    if let Some((code, message)) = refusal {
        return DescribeClusterResponse {
            error_code: code.code(),
            error_message: Some(message.into()),
            ..Default::default()
        };
    }
    let brokers = broker
        .endpoint_for(&ctx.listener)
        .map(|e| DescribeClusterBroker {
            broker_id: broker.node_id,
            host: e.host.clone(),
            port: i32::from(e.port),
            rack: None,
            ..Default::default()
        })
        .into_iter()
        .collect();
    DescribeClusterResponse {
        endpoint_type: ENDPOINT_BROKERS,
        cluster_id: broker.cluster_id.clone(),
        controller_id: broker.node_id,
        brokers,
        cluster_authorized_operations: if req.include_cluster_authorized_operations {
            CLUSTER_OPERATIONS
        } else {
            i32::MIN
        },
        ..Default::default()
    }
}
