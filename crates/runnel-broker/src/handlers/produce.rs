//! Produce (key 0), v3–11 (record batch v2 only, as Kafka 4).
//!
//! Per partition: validate the batches (header, CRC, sizes, timestamps), recompress when the
//! topic's `compression.type` asks for it, stamp LogAppendTime, append under the partition lock
//! (offsets are assigned by rewriting base offsets in place), then answer. `acks=-1` under
//! `log.flush.policy=fsync` waits for a group-commit fdatasync. `acks=0` gets no response.

use bytes::{Bytes, BytesMut};
use runnel_protocol::generated::produce_request::{PartitionProduceData, ProduceRequest};
use runnel_protocol::generated::produce_response::{PartitionProduceResponse, ProduceResponse, TopicProduceResponse};
use runnel_protocol::records::{self, Compression, RecordError};
use runnel_protocol::ErrorCode;
use runnel_storage::FlushPolicy;

use crate::broker::{now_ms, Broker};
use crate::replica::Partition;
use crate::topic_config::{TimestampType, TopicSettings};

/// Upper bound on decompressed bytes when a batch must be opened (recompression, key checks).
const MAX_DECOMPRESSED_BYTES: usize = 256 * 1024 * 1024;

struct Rejection {
    code: ErrorCode,
    message: String,
}

fn reject(code: ErrorCode, message: impl Into<String>) -> Rejection {
    Rejection {
        code,
        message: message.into(),
    }
}

pub async fn handle(broker: &Broker, req: ProduceRequest, _version: i16) -> Option<ProduceResponse> {
    let acks = req.acks;
    let mut responses = Vec::with_capacity(req.topic_data.len());
    for topic in req.topic_data {
        let mut partition_responses = Vec::with_capacity(topic.partition_data.len());
        for data in topic.partition_data {
            let index = data.index;
            let result = if !matches!(acks, -1..=1) {
                Err(reject(ErrorCode::INVALID_REQUIRED_ACKS, "acks must be -1, 0 or 1"))
            } else {
                produce_partition(broker, &topic.name, data, acks).await
            };
            partition_responses.push(match result {
                Ok(r) => r,
                Err(rej) => PartitionProduceResponse {
                    index,
                    error_code: rej.code.code(),
                    base_offset: -1,
                    log_append_time_ms: -1,
                    log_start_offset: -1,
                    error_message: Some(rej.message),
                    ..Default::default()
                },
            });
        }
        responses.push(TopicProduceResponse {
            name: topic.name,
            partition_responses,
            ..Default::default()
        });
    }
    if acks == 0 {
        return None;
    }
    Some(ProduceResponse {
        responses,
        ..Default::default()
    })
}

async fn produce_partition(
    broker: &Broker,
    topic: &str,
    data: PartitionProduceData,
    acks: i16,
) -> Result<PartitionProduceResponse, Rejection> {
    let Some(part) = broker.replicas.get(topic, data.index) else {
        return Err(reject(
            ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
            "This server does not host this topic-partition.",
        ));
    };
    let settings = part.settings();
    if acks == -1 && settings.min_insync_replicas > 1 {
        // The ISR of a single broker is that broker alone.
        return Err(reject(
            ErrorCode::NOT_ENOUGH_REPLICAS,
            "The size of the ISR is below min.insync.replicas",
        ));
    }
    let records = data.records.unwrap_or_default();
    let now = now_ms();
    let mut buf = prepare(&records, &settings, now)?;
    let (info, append_time) = {
        let mut log = part.log();
        let info = log
            .append_as_leader(&mut buf, part.leader_epoch(), now)
            .map_err(|e| reject(ErrorCode::KAFKA_STORAGE_ERROR, e.to_string()))?;
        part.publish(&log);
        (
            info,
            if settings.timestamp_type == TimestampType::LogAppendTime {
                now
            } else {
                -1
            },
        )
    };
    broker.replicas.appended.notify_waiters();
    if acks == -1 && settings.log.flush_policy == FlushPolicy::Fsync {
        wait_for_flush(&part, info.last_offset).await?;
    }
    Ok(PartitionProduceResponse {
        index: data.index,
        error_code: 0,
        base_offset: info.first_offset,
        log_append_time_ms: append_time,
        log_start_offset: info.log_start_offset,
        ..Default::default()
    })
}

async fn wait_for_flush(part: &Partition, offset: i64) -> Result<(), Rejection> {
    part.flush_through(offset)
        .await
        .map_err(|e| reject(ErrorCode::KAFKA_STORAGE_ERROR, e.to_string()))
}

/// Validates the producer's batches and returns the bytes to append (recompressed and stamped
/// where the topic asks for it).
fn prepare(records: &Bytes, settings: &TopicSettings, now: i64) -> Result<BytesMut, Rejection> {
    if records.is_empty() {
        return Err(reject(
            ErrorCode::CORRUPT_MESSAGE,
            "produce request carries no record batch",
        ));
    }
    records::validate_batches(records).map_err(record_rejection)?;
    let target = target_compression(&settings.compression_type);
    let mut out = BytesMut::with_capacity(records.len());
    for batch in records::batches(records) {
        let (header, bytes) = batch.map_err(record_rejection)?;
        if header.total_size_bytes() > settings.max_message_bytes {
            return Err(reject(
                ErrorCode::MESSAGE_TOO_LARGE,
                format!(
                    "batch of {} bytes exceeds max.message.bytes {}",
                    header.total_size_bytes(),
                    settings.max_message_bytes
                ),
            ));
        }
        if settings.timestamp_type == TimestampType::CreateTime {
            check_timestamps(header.base_timestamp, header.max_timestamp, settings, now)?;
        }
        let codec = header.compression().map_err(record_rejection)?;
        let recompress = target.is_some_and(|t| t != codec);
        if settings.compact || recompress {
            let decoded = records::decode_records(bytes, MAX_DECOMPRESSED_BYTES).map_err(record_rejection)?;
            if settings.compact && decoded.iter().any(|r| r.key.is_none()) {
                return Err(reject(
                    ErrorCode::INVALID_RECORD,
                    "Compacted topic cannot accept message without key.",
                ));
            }
            if let Some(t) = target.filter(|_| recompress) {
                let params = records::BatchBuilderParams {
                    base_timestamp: header.base_timestamp,
                    producer_id: header.producer_id,
                    producer_epoch: header.producer_epoch,
                    base_sequence: header.base_sequence,
                    is_transactional: header.is_transactional(),
                    is_control: header.is_control(),
                    ..Default::default()
                };
                let rebuilt = records::encode_batch(&params, &decoded, t).map_err(record_rejection)?;
                out.extend_from_slice(&rebuilt);
                continue;
            }
        }
        out.extend_from_slice(bytes);
    }
    if settings.timestamp_type == TimestampType::LogAppendTime {
        records::set_log_append_time_all(&mut out, now).map_err(record_rejection)?;
    }
    Ok(out)
}

/// `compression.type` of the topic: `None` keeps the producer's codec.
fn target_compression(compression_type: &str) -> Option<Compression> {
    match compression_type {
        "uncompressed" => Some(Compression::None),
        "gzip" => Some(Compression::Gzip),
        "snappy" => Some(Compression::Snappy),
        "lz4" => Some(Compression::Lz4),
        "zstd" => Some(Compression::Zstd),
        _ => None,
    }
}

/// CreateTime bounds (`message.timestamp.before.max.ms` / `after.max.ms`), checked on the batch's
/// first and largest timestamps so no record has to be opened.
fn check_timestamps(first_ms: i64, max_ms: i64, settings: &TopicSettings, now: i64) -> Result<(), Rejection> {
    let too_new = max_ms.saturating_sub(now) > settings.timestamp_after_max_ms;
    let too_old = now.saturating_sub(first_ms) > settings.timestamp_before_max_ms;
    if too_new || too_old {
        return Err(reject(
            ErrorCode::INVALID_TIMESTAMP,
            format!(
                "Timestamp {} of message is out of range (now {now})",
                if too_new { max_ms } else { first_ms }
            ),
        ));
    }
    Ok(())
}

fn record_rejection(e: RecordError) -> Rejection {
    let code = match e {
        RecordError::CrcMismatch { .. } | RecordError::Truncated { .. } | RecordError::InvalidBatchLength(_) => {
            ErrorCode::CORRUPT_MESSAGE
        }
        RecordError::UnsupportedMagic(_) => ErrorCode::UNSUPPORTED_FOR_MESSAGE_FORMAT,
        RecordError::UnknownCompression(_) => ErrorCode::UNSUPPORTED_COMPRESSION_TYPE,
        RecordError::BatchTooLarge | RecordError::DecompressedTooLarge { .. } => ErrorCode::MESSAGE_TOO_LARGE,
        _ => ErrorCode::INVALID_RECORD,
    };
    reject(code, e.to_string())
}
