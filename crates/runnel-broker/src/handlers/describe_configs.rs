//! DescribeConfigs (key 32), v0–4: every config of a topic or broker with its value, source,
//! read-only and sensitive flags, synonyms (when asked), type and documentation (v3+).

use runnel_metadata::configs::{self, ConfigDef, TOPIC_CONFIGS};
use runnel_metadata::records::{RESOURCE_TYPE_BROKER, RESOURCE_TYPE_TOPIC};
use runnel_protocol::generated::describe_configs_request::{DescribeConfigsRequest, DescribeConfigsResource};
use runnel_protocol::generated::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResponse, DescribeConfigsResult, DescribeConfigsSynonym,
};
use runnel_protocol::ErrorCode;

use crate::broker::Broker;
use crate::topic_config::{
    effective_topic_config, Source, SOURCE_DEFAULT_CONFIG, SOURCE_DYNAMIC_TOPIC_CONFIG, SOURCE_STATIC_BROKER_CONFIG,
};

struct Flags {
    synonyms: bool,
    documentation: bool,
}

pub fn handle(broker: &Broker, req: DescribeConfigsRequest, version: i16) -> DescribeConfigsResponse {
    let flags = Flags {
        synonyms: req.include_synonyms,
        documentation: req.include_documentation && version >= 3,
    };
    let results = req.resources.iter().map(|r| describe(broker, r, &flags)).collect();
    DescribeConfigsResponse {
        results,
        ..Default::default()
    }
}

fn describe(broker: &Broker, r: &DescribeConfigsResource, flags: &Flags) -> DescribeConfigsResult {
    let result = |error: ErrorCode, message: Option<String>, configs| DescribeConfigsResult {
        error_code: error.code(),
        error_message: message,
        resource_type: r.resource_type,
        resource_name: r.resource_name.clone(),
        configs,
        ..Default::default()
    };
    let wanted = |key: &str| {
        r.configuration_keys
            .as_ref()
            .is_none_or(|keys| keys.iter().any(|k| k == key))
    };
    match r.resource_type {
        RESOURCE_TYPE_TOPIC => {
            let image = broker.image();
            if image.topic(&r.resource_name).is_none() {
                let msg = format!("Topic {} does not exist.", r.resource_name);
                return result(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION, Some(msg), Vec::new());
            }
            let configs = TOPIC_CONFIGS
                .iter()
                .filter(|d| wanted(d.name))
                .map(|d| topic_entry(broker, &image, &r.resource_name, d, flags))
                .collect();
            result(ErrorCode::NONE, None, configs)
        }
        RESOURCE_TYPE_BROKER => {
            if !r.resource_name.is_empty() && r.resource_name != broker.node_id.to_string() {
                let msg = format!(
                    "Unexpected broker id, expected {} or empty string, but received {}",
                    broker.node_id, r.resource_name
                );
                return result(ErrorCode::INVALID_REQUEST, Some(msg), Vec::new());
            }
            let configs = broker
                .config
                .entries()
                .filter(|e| e.def.is_some() && wanted(&e.key))
                .map(|e| broker_entry(e, flags))
                .collect();
            result(ErrorCode::NONE, None, configs)
        }
        other => result(
            ErrorCode::INVALID_REQUEST,
            Some(format!("Unsupported resource type {other}")),
            Vec::new(),
        ),
    }
}

fn topic_entry(
    broker: &Broker,
    image: &runnel_metadata::image::MetadataImage,
    topic: &str,
    def: &ConfigDef,
    flags: &Flags,
) -> DescribeConfigsResourceResult {
    let (value, source) = effective_topic_config(&broker.config, image, topic, def.name);
    let mut synonyms = Vec::new();
    if flags.synonyms {
        if source == Source::DynamicTopic {
            synonyms.push(synonym(def.name, value.clone(), SOURCE_DYNAMIC_TOPIC_CONFIG));
        }
        for s in configs::topic_config_synonyms(def.name) {
            if let Some(e) = broker
                .config
                .entry(s)
                .filter(|e| e.source.describe_code() == SOURCE_STATIC_BROKER_CONFIG)
            {
                synonyms.push(synonym(s, e.value.clone(), SOURCE_STATIC_BROKER_CONFIG));
            }
        }
        let default_key = configs::topic_config_synonyms(def.name).first().copied();
        let default_value = default_key
            .and_then(configs::broker_config)
            .and_then(|d| d.default)
            .or(def.default);
        synonyms.push(synonym(
            default_key.unwrap_or(def.name),
            default_value.map(str::to_string),
            SOURCE_DEFAULT_CONFIG,
        ));
    }
    DescribeConfigsResourceResult {
        name: def.name.to_string(),
        value: if def.sensitive { None } else { value },
        read_only: false,
        is_default: source == Source::Default,
        config_source: source.code(),
        is_sensitive: def.sensitive,
        synonyms,
        config_type: def.kind.describe_code(),
        documentation: flags.documentation.then(|| def.doc.to_string()),
        ..Default::default()
    }
}

fn broker_entry(e: &crate::config::ConfigEntry, flags: &Flags) -> DescribeConfigsResourceResult {
    let def = e.def;
    let source = e.source.describe_code();
    let sensitive = e.is_sensitive();
    let value = if sensitive { None } else { e.value.clone() };
    let synonyms = if flags.synonyms {
        vec![synonym(&e.key, value.clone(), source)]
    } else {
        Vec::new()
    };
    DescribeConfigsResourceResult {
        name: e.key.clone(),
        value,
        read_only: def.is_none_or(|d| d.read_only),
        is_default: source == SOURCE_DEFAULT_CONFIG,
        config_source: source,
        is_sensitive: sensitive,
        synonyms,
        config_type: def.map_or(0, |d| d.kind.describe_code()),
        documentation: if flags.documentation {
            def.map(|d| d.doc.to_string())
        } else {
            None
        },
        ..Default::default()
    }
}

fn synonym(name: &str, value: Option<String>, source: i8) -> DescribeConfigsSynonym {
    DescribeConfigsSynonym {
        name: name.to_string(),
        value,
        source,
        ..Default::default()
    }
}
