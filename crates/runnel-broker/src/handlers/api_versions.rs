//! ApiVersions (key 18), v0–4: the API ranges this broker serves.

use runnel_protocol::generated::api_versions_response::{ApiVersion, ApiVersionsResponse};

use crate::apis::SUPPORTED;

/// The response, with `error_code` (0, or UNSUPPORTED_VERSION for an unknown request version).
/// Feature fields stay unset: tagged fields carry only what is set (librdkafka 2.0 fails on an
/// always-present finalized-features section).
pub fn response(error_code: i16) -> ApiVersionsResponse {
    ApiVersionsResponse {
        error_code,
        api_keys: SUPPORTED
            .iter()
            .map(|(key, min, max)| ApiVersion {
                api_key: *key as i16,
                min_version: *min,
                max_version: *max,
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}
