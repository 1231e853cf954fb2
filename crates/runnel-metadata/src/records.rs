//! Metadata records: the only way cluster metadata changes.
//!
//! Owns: the record types written to the metadata log and their byte encoding.
//! Must never: carry derived state (everything here is an event; the image is built by replay).
//!
//! Encoding: a one-byte format version followed by JSON (serde). JSON keeps the format evolvable:
//! new optional fields use `#[serde(default)]` and old readers ignore unknown fields. Metadata
//! writes are rare, so compactness does not matter here; the version byte lets us switch formats.
//! Modeled on Kafka's own metadata records (`metadata/*.json` in the Kafka source tree).

use serde::{Deserialize, Serialize};

/// The 16-byte topic id (a random v4 UUID).
pub type TopicId = [u8; 16];

/// Kafka's `ConfigResource.Type` for topics.
pub const RESOURCE_TYPE_TOPIC: i8 = 2;
/// Kafka's `ConfigResource.Type` for brokers.
pub const RESOURCE_TYPE_BROKER: i8 = 4;

/// Sentinel leader id meaning "no leader".
pub const NO_LEADER: i32 = -1;

/// Current encoding version (first byte of every encoded record batch or snapshot).
pub const FORMAT_VERSION_JSON_V1: u8 = 1;

/// Upper bound on the bytes we decode in one call: a guard against corrupt length fields upstream.
pub const MAX_ENCODED_BYTES: usize = 256 * 1024 * 1024;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    pub name: String,
    pub host: String,
    pub port: u16,
    /// Kafka's `SecurityProtocol` id (0 PLAINTEXT, 1 SSL, 2 SASL_PLAINTEXT, 3 SASL_SSL).
    pub security_protocol: i16,
}

/// One metadata event. Variant names follow Kafka's metadata record names.
#[allow(clippy::enum_variant_names)]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetadataRecord {
    ClusterRecord {
        cluster_id: String,
    },
    TopicRecord {
        name: String,
        topic_id: TopicId,
    },
    PartitionRecord {
        topic_id: TopicId,
        partition: i32,
        replicas: Vec<i32>,
        isr: Vec<i32>,
        leader: i32,
        leader_epoch: i32,
        partition_epoch: i32,
    },
    /// A change to an existing partition; `None` means "unchanged". A leader change bumps the
    /// leader epoch; every change bumps the partition epoch (as Kafka's controller does).
    PartitionChangeRecord {
        topic_id: TopicId,
        partition: i32,
        #[serde(default)]
        leader: Option<i32>,
        #[serde(default)]
        isr: Option<Vec<i32>>,
        #[serde(default)]
        replicas: Option<Vec<i32>>,
    },
    RemoveTopicRecord {
        topic_id: TopicId,
    },
    ConfigRecord {
        resource_type: i8,
        resource_name: String,
        name: String,
        /// `None` deletes the override.
        value: Option<String>,
    },
    RegisterBrokerRecord {
        broker_id: i32,
        incarnation_id: [u8; 16],
        epoch: i64,
        endpoints: Vec<Endpoint>,
        #[serde(default)]
        rack: Option<String>,
    },
    ProducerIdsRecord {
        broker_id: i32,
        broker_epoch: i64,
        next_producer_id: i64,
    },
    FeatureLevelRecord {
        name: String,
        level: i16,
    },
}

/// Errors decoding records or snapshots.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("empty input")]
    Empty,
    #[error("unsupported metadata format version {0}")]
    UnsupportedVersion(u8),
    #[error("input of {0} bytes exceeds the limit")]
    TooLarge(usize),
    #[error("malformed metadata: {0}")]
    Malformed(String),
}

/// Encodes a batch of records (one metadata log entry).
pub fn encode_records(records: &[MetadataRecord]) -> Vec<u8> {
    encode_versioned(&records)
}

/// Decodes a batch produced by [`encode_records`].
pub fn decode_records(bytes: &[u8]) -> Result<Vec<MetadataRecord>, DecodeError> {
    decode_versioned(bytes)
}

pub(crate) fn encode_versioned<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = vec![FORMAT_VERSION_JSON_V1];
    // Serializing plain data structs with string keys cannot fail.
    serde_json::to_writer(&mut out, value).expect("metadata types serialize infallibly");
    out
}

pub(crate) fn decode_versioned<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, DecodeError> {
    if bytes.len() > MAX_ENCODED_BYTES {
        return Err(DecodeError::TooLarge(bytes.len()));
    }
    let (version, body) = bytes.split_first().ok_or(DecodeError::Empty)?;
    if *version != FORMAT_VERSION_JSON_V1 {
        return Err(DecodeError::UnsupportedVersion(*version));
    }
    serde_json::from_slice(body).map_err(|e| DecodeError::Malformed(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        let records = vec![
            MetadataRecord::ClusterRecord {
                cluster_id: "abc".into(),
            },
            MetadataRecord::ConfigRecord {
                resource_type: RESOURCE_TYPE_TOPIC,
                resource_name: "t".into(),
                name: "retention.ms".into(),
                value: None,
            },
            MetadataRecord::PartitionChangeRecord {
                topic_id: [7; 16],
                partition: 3,
                leader: Some(2),
                isr: None,
                replicas: None,
            },
        ];
        let bytes = encode_records(&records);
        assert_eq!(decode_records(&bytes).unwrap(), records);
    }

    #[test]
    fn rejects_unknown_version_and_garbage() {
        assert!(matches!(decode_records(&[]), Err(DecodeError::Empty)));
        assert!(matches!(
            decode_records(&[9, b'[', b']']),
            Err(DecodeError::UnsupportedVersion(9))
        ));
        assert!(matches!(decode_records(&[1, b'{']), Err(DecodeError::Malformed(_))));
    }

    #[test]
    fn change_record_tolerates_missing_optional_fields() {
        let json = br#"[{"PartitionChangeRecord":{"topic_id":[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,1],"partition":0}}]"#;
        let mut bytes = vec![FORMAT_VERSION_JSON_V1];
        bytes.extend_from_slice(json);
        let decoded = decode_records(&bytes).unwrap();
        assert!(matches!(
            decoded[0],
            MetadataRecord::PartitionChangeRecord {
                leader: None,
                isr: None,
                ..
            }
        ));
    }
}
