//! ApiVersions (key 18), v0–4: the API ranges this broker serves (Produce listed from v0, as
//! Kafka 4.0 lists it; see `apis::advertised_range`).

use runnel_protocol::generated::api_versions_response::{ApiVersion, ApiVersionsResponse};
use runnel_protocol::generated::ApiKey;
use runnel_protocol::ErrorCode;

use crate::apis::{advertised_range, SUPPORTED};

/// The full response. Feature fields stay unset: tagged fields carry only what is set
/// (librdkafka 2.0 fails on an always-present finalized-features section).
pub fn response() -> ApiVersionsResponse {
    let api_keys = SUPPORTED
        .iter()
        .map(|(key, min, max)| entry(*key, *min, *max))
        .collect();
    ApiVersionsResponse {
        api_keys,
        ..Default::default()
    }
}

/// KIP-511's answer to an ApiVersions version we do not know: UNSUPPORTED_VERSION with only
/// ApiVersions' own range (as Kafka's `ApiVersionsRequest.getErrorResponse`), sent as v0.
pub fn unsupported_version_response() -> ApiVersionsResponse {
    let api_keys = SUPPORTED
        .iter()
        .filter(|(key, _, _)| *key == ApiKey::ApiVersions)
        .map(|(key, min, max)| entry(*key, *min, *max))
        .collect();
    ApiVersionsResponse {
        error_code: ErrorCode::UNSUPPORTED_VERSION.code(),
        api_keys,
        ..Default::default()
    }
}

fn entry(key: ApiKey, min: i16, max: i16) -> ApiVersion {
    let (min, max) = advertised_range(key, min, max);
    ApiVersion {
        api_key: key as i16,
        min_version: min,
        max_version: max,
        ..Default::default()
    }
}
