//! The records of `__consumer_offsets` in Kafka's binary key/value format.
//!
//! A key is an int16 version followed by the key body: versions 0 and 1 are offset commits
//! (`OffsetCommitKey`), version 2 is group metadata (`GroupMetadataKey`). A value is an int16
//! version followed by the value body; a tombstone has a null value. Versions 3–8 are the
//! KIP-848 consumer-group records (`consumer::ConsumerRecord`); others (share groups) are not
//! ours and are skipped when replaying.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use runnel_protocol::codec::Message;
use runnel_protocol::generated::group_metadata_key::GroupMetadataKey;
use runnel_protocol::generated::group_metadata_value::GroupMetadataValue;
use runnel_protocol::generated::offset_commit_key::OffsetCommitKey;
use runnel_protocol::generated::offset_commit_value::OffsetCommitValue;

/// Key version written for offset commits (Kafka writes 1).
const OFFSET_COMMIT_KEY_VERSION: i16 = 1;
/// Key version of group metadata records.
const GROUP_METADATA_KEY_VERSION: i16 = 2;
/// Value version for offset commits without an explicit expire timestamp (has leader epoch).
const OFFSET_COMMIT_VALUE_VERSION: i16 = 3;
/// Value version for offset commits that carry an expire timestamp (old retention_time_ms).
const OFFSET_COMMIT_VALUE_VERSION_WITH_EXPIRY: i16 = 1;
/// Value version of group metadata (has group instance ids).
const GROUP_METADATA_VALUE_VERSION: i16 = 3;

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("record key too short")]
    ShortKey,
    #[error("record value too short")]
    ShortValue,
    #[error("cannot decode {what}: {message}")]
    Decode { what: &'static str, message: String },
    #[error("cannot encode {what}: {message}")]
    Encode { what: &'static str, message: String },
}

/// One record of `__consumer_offsets` that this coordinator understands.
#[derive(Debug, Clone, PartialEq)]
pub enum CoordinatorRecord {
    /// A committed offset; `None` is a tombstone (offset deleted or expired).
    OffsetCommit {
        group: String,
        topic: String,
        partition: i32,
        value: Option<OffsetCommitValue>,
    },
    /// A classic group's persisted state; `None` is a tombstone (group deleted).
    GroupMetadata {
        group: String,
        value: Option<GroupMetadataValue>,
    },
    /// A KIP-848 consumer-group record (key versions 3–8).
    Consumer(crate::consumer::ConsumerRecord),
}

impl CoordinatorRecord {
    /// The group this record belongs to (it decides the partition).
    pub fn group(&self) -> &str {
        match self {
            CoordinatorRecord::OffsetCommit { group, .. } | CoordinatorRecord::GroupMetadata { group, .. } => group,
            CoordinatorRecord::Consumer(r) => r.group(),
        }
    }

    /// Encodes to Kafka's key and value bytes.
    pub fn to_key_value(&self) -> Result<(Bytes, Option<Bytes>), RecordError> {
        match self {
            CoordinatorRecord::OffsetCommit {
                group,
                topic,
                partition,
                value,
            } => {
                let key = OffsetCommitKey {
                    group: group.clone(),
                    topic: topic.clone(),
                    partition: *partition,
                    ..Default::default()
                };
                let key = encode_versioned(&key, OFFSET_COMMIT_KEY_VERSION, "OffsetCommitKey")?;
                let value = match value {
                    None => None,
                    Some(v) => {
                        let version = if v.expire_timestamp >= 0 {
                            OFFSET_COMMIT_VALUE_VERSION_WITH_EXPIRY
                        } else {
                            OFFSET_COMMIT_VALUE_VERSION
                        };
                        Some(encode_versioned(v, version, "OffsetCommitValue")?)
                    }
                };
                Ok((key, value))
            }
            CoordinatorRecord::GroupMetadata { group, value } => {
                let key = GroupMetadataKey {
                    group: group.clone(),
                    ..Default::default()
                };
                let key = encode_versioned(&key, GROUP_METADATA_KEY_VERSION, "GroupMetadataKey")?;
                let value = match value {
                    None => None,
                    Some(v) => Some(encode_versioned(v, GROUP_METADATA_VALUE_VERSION, "GroupMetadataValue")?),
                };
                Ok((key, value))
            }
            CoordinatorRecord::Consumer(r) => r.to_key_value(),
        }
    }

    /// Decodes Kafka's key and value bytes. `Ok(None)` for record types that are not ours.
    pub fn from_key_value(key: &[u8], value: Option<&[u8]>) -> Result<Option<CoordinatorRecord>, RecordError> {
        let mut key_buf = Bytes::copy_from_slice(key);
        if key_buf.remaining() < 2 {
            return Err(RecordError::ShortKey);
        }
        let key_version = key_buf.get_i16();
        match key_version {
            0 | 1 => {
                let k =
                    OffsetCommitKey::decode(&mut key_buf, key_version).map_err(|e| decode_err("OffsetCommitKey", e))?;
                let value = match value {
                    None => None,
                    Some(v) => Some(decode_versioned::<OffsetCommitValue>(v, (0, 4), "OffsetCommitValue")?),
                };
                Ok(Some(CoordinatorRecord::OffsetCommit {
                    group: k.group,
                    topic: k.topic,
                    partition: k.partition,
                    value,
                }))
            }
            2 => {
                let k = GroupMetadataKey::decode(&mut key_buf, key_version)
                    .map_err(|e| decode_err("GroupMetadataKey", e))?;
                let value = match value {
                    None => None,
                    Some(v) => Some(decode_versioned::<GroupMetadataValue>(v, (0, 4), "GroupMetadataValue")?),
                };
                Ok(Some(CoordinatorRecord::GroupMetadata { group: k.group, value }))
            }
            v if crate::consumer::is_consumer_key(v) => {
                Ok(crate::consumer::ConsumerRecord::decode(v, &mut key_buf, value)?.map(CoordinatorRecord::Consumer))
            }
            _ => Ok(None),
        }
    }
}

fn decode_err(what: &'static str, e: impl std::fmt::Display) -> RecordError {
    RecordError::Decode {
        what,
        message: e.to_string(),
    }
}

pub(crate) fn encode_versioned<M: Message>(m: &M, version: i16, what: &'static str) -> Result<Bytes, RecordError> {
    let mut buf = BytesMut::new();
    buf.put_i16(version);
    m.encode(&mut buf, version).map_err(|e| RecordError::Encode {
        what,
        message: e.to_string(),
    })?;
    Ok(buf.freeze())
}

pub(crate) fn decode_versioned<M: Message>(
    bytes: &[u8],
    versions: (i16, i16),
    what: &'static str,
) -> Result<M, RecordError> {
    let mut buf = Bytes::copy_from_slice(bytes);
    if buf.remaining() < 2 {
        return Err(RecordError::ShortValue);
    }
    let version = buf.get_i16();
    if version < versions.0 || version > versions.1 {
        return Err(RecordError::Decode {
            what,
            message: format!("unknown version {version}"),
        });
    }
    M::decode(&mut buf, version).map_err(|e| decode_err(what, e))
}

/// Kafka's `Utils.abs(groupId.hashCode()) % partitions`: Java's `String.hashCode` over UTF-16
/// code units, with `abs(i32::MIN)` mapped to 0 as Kafka's `Utils.abs` does.
pub fn partition_for(group_id: &str, partitions: i32) -> i32 {
    let mut h: i32 = 0;
    for unit in group_id.encode_utf16() {
        h = h.wrapping_mul(31).wrapping_add(i32::from(unit));
    }
    let abs = if h == i32::MIN { 0 } else { h.abs() };
    abs % partitions.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_hash_code_partitioning() {
        // "a".hashCode() = 97; "group".hashCode() = 98629247.
        assert_eq!(partition_for("a", 50), 97 % 50);
        assert_eq!(partition_for("group", 50), 98_629_247 % 50);
        // "polygenelubricants".hashCode() == Integer.MIN_VALUE; Utils.abs maps it to 0.
        assert_eq!(partition_for("polygenelubricants", 50), 0);
        // Non-BMP characters hash as two UTF-16 code units: "😀" = 0xD83D, 0xDE00.
        let h = 0xD83Di32.wrapping_mul(31).wrapping_add(0xDE00);
        assert_eq!(partition_for("😀", 7), h.abs() % 7);
        // "test-group".hashCode() is negative (-1244181734 in Java? checked below by formula).
        let mut j: i32 = 0;
        for c in "test-group".chars() {
            j = j.wrapping_mul(31).wrapping_add(c as i32);
        }
        assert_eq!(partition_for("test-group", 50), j.abs() % 50);
    }

    #[test]
    fn offset_commit_round_trip_bytes() {
        let rec = CoordinatorRecord::OffsetCommit {
            group: "g".into(),
            topic: "t".into(),
            partition: 3,
            value: Some(OffsetCommitValue {
                offset: 42,
                leader_epoch: 5,
                metadata: "meta".into(),
                commit_timestamp: 1000,
                expire_timestamp: -1,
                ..Default::default()
            }),
        };
        let (k, v) = rec.to_key_value().unwrap();
        assert_eq!(&k[..2], &[0, 1]);
        assert_eq!(&v.as_ref().unwrap()[..2], &[0, 3]);
        let back = CoordinatorRecord::from_key_value(&k, v.as_deref()).unwrap().unwrap();
        assert_eq!(back, rec);
    }

    #[test]
    fn group_tombstone_and_foreign_keys() {
        let rec = CoordinatorRecord::GroupMetadata {
            group: "g".into(),
            value: None,
        };
        let (k, v) = rec.to_key_value().unwrap();
        assert!(v.is_none());
        assert_eq!(CoordinatorRecord::from_key_value(&k, None).unwrap(), Some(rec));
        // Key version 3 is a KIP-848 group epoch (a tombstone here); 9+ (share groups) are skipped.
        assert!(matches!(
            CoordinatorRecord::from_key_value(&[0, 3, 0, 1, b'g'], None).unwrap(),
            Some(CoordinatorRecord::Consumer(_))
        ));
        assert_eq!(
            CoordinatorRecord::from_key_value(&[0, 9, 0, 1, b'g'], None).unwrap(),
            None
        );
        assert!(CoordinatorRecord::from_key_value(&[0], None).is_err());
        assert!(CoordinatorRecord::from_key_value(&[0, 1, 0, 9], None).is_err());
    }
}
