//! AlterConfigs (key 33), v0–2: replaces a resource's whole set of overrides.

use runnel_metadata::controller::{AlterConfigOp, ConfigOpKind};
use runnel_protocol::generated::alter_configs_request::AlterConfigsRequest;
use runnel_protocol::generated::alter_configs_response::{AlterConfigsResourceResponse, AlterConfigsResponse};

use crate::broker::Broker;
use crate::handlers::incremental_alter_configs::apply;

pub async fn handle(broker: &Broker, req: AlterConfigsRequest) -> AlterConfigsResponse {
    let mut responses = Vec::with_capacity(req.resources.len());
    for r in req.resources {
        let ops: Vec<AlterConfigOp> = r
            .configs
            .into_iter()
            .map(|c| AlterConfigOp {
                name: c.name,
                op: ConfigOpKind::Set,
                value: c.value,
            })
            .collect();
        let (error_code, error_message) =
            apply(broker, r.resource_type, &r.resource_name, ops, false, req.validate_only).await;
        responses.push(AlterConfigsResourceResponse {
            error_code,
            error_message,
            resource_type: r.resource_type,
            resource_name: r.resource_name,
            ..Default::default()
        });
    }
    AlterConfigsResponse {
        responses,
        ..Default::default()
    }
}
