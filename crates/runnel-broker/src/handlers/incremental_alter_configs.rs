//! IncrementalAlterConfigs (key 44), v0–1: SET / DELETE / APPEND / SUBTRACT per config.

use runnel_metadata::controller::{self, AlterConfigOp, AlterConfigsOptions, ConfigOpKind};
use runnel_protocol::generated::incremental_alter_configs_request::IncrementalAlterConfigsRequest;
use runnel_protocol::generated::incremental_alter_configs_response::{
    AlterConfigsResourceResponse, IncrementalAlterConfigsResponse,
};
use runnel_protocol::ErrorCode;

use crate::broker::Broker;

pub async fn handle(broker: &Broker, req: IncrementalAlterConfigsRequest) -> IncrementalAlterConfigsResponse {
    let mut responses = Vec::with_capacity(req.resources.len());
    for r in req.resources {
        let mut ops = Vec::with_capacity(r.configs.len());
        let mut bad_op = None;
        for c in r.configs {
            match ConfigOpKind::from_kafka(c.config_operation) {
                Some(op) => ops.push(AlterConfigOp {
                    name: c.name,
                    op,
                    value: c.value,
                }),
                None => bad_op = Some(c.config_operation),
            }
        }
        let (error_code, error_message) = match bad_op {
            Some(op) => (
                ErrorCode::INVALID_REQUEST.code(),
                Some(format!("Unknown config operation {op}")),
            ),
            None => apply(broker, r.resource_type, &r.resource_name, ops, true, req.validate_only).await,
        };
        responses.push(AlterConfigsResourceResponse {
            error_code,
            error_message,
            resource_type: r.resource_type,
            resource_name: r.resource_name,
            ..Default::default()
        });
    }
    IncrementalAlterConfigsResponse {
        responses,
        ..Default::default()
    }
}

/// Runs the controller's config change for one resource; returns the error code and message.
pub async fn apply(
    broker: &Broker,
    resource_type: i8,
    resource_name: &str,
    ops: Vec<AlterConfigOp>,
    incremental: bool,
    validate_only: bool,
) -> (i16, Option<String>) {
    let opts = AlterConfigsOptions {
        incremental,
        validate_only,
    };
    let name = resource_name.to_string();
    match broker
        .propose(move |image| controller::alter_configs(image, resource_type, &name, &ops, &opts))
        .await
    {
        Ok(Ok(())) => (0, None),
        Ok(Err(e)) => (e.code, Some(e.message)),
        Err(e) => (ErrorCode::NOT_CONTROLLER.code(), Some(e.to_string())),
    }
}
