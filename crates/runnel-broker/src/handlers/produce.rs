//! Produce (key 0), v3–11 (record batch v2 only, as Kafka 4).
//!
//! Per partition: validate the batches (header, CRC, sizes, timestamps), recompress when the
//! topic's `compression.type` asks for it, stamp LogAppendTime, append under the partition lock
//! (offsets are assigned by rewriting base offsets in place), then answer. `acks=-1` under
//! `log.flush.policy=fsync` waits for a group-commit fdatasync (`Produced::finish`, awaited by
//! the connection's writer so reading goes on meanwhile). `acks=0` gets no response.
//! Idempotent batches are checked by the log's producer state: a retry of one of a producer's
//! last five batches is answered NONE with the original base offset; a sequence gap gets
//! OUT_OF_ORDER_SEQUENCE_NUMBER and an older epoch INVALID_PRODUCER_EPOCH. A transactional batch
//! is written only if the transaction coordinator confirms the partition is in the producer's
//! ongoing transaction (KIP-890 verification); internal topics and control batches are refused.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use runnel_protocol::generated::produce_request::{PartitionProduceData, ProduceRequest};
use runnel_protocol::generated::produce_response::{
    BatchIndexAndErrorMessage, PartitionProduceResponse, ProduceResponse, TopicProduceResponse,
};
use runnel_protocol::records::{self, Compression, RecordError};
use runnel_protocol::ErrorCode;
use runnel_storage::{FlushPolicy, StorageError};

use crate::broker::{now_ms, Broker};
use crate::replica::Partition;
use crate::topic_config::{TimestampType, TopicSettings};

/// Upper bound on decompressed bytes when a batch must be opened (recompression, key checks).
const MAX_DECOMPRESSED_BYTES: usize = 256 * 1024 * 1024;

struct Rejection {
    code: ErrorCode,
    message: String,
    /// Per-record errors (Produce v8+ `record_errors`): the record's index in its batch.
    record_errors: Vec<(i32, String)>,
}

fn reject(code: ErrorCode, message: impl Into<String>) -> Rejection {
    Rejection {
        code,
        message: message.into(),
        record_errors: Vec::new(),
    }
}

/// A partition's append that must reach the disk before the response may leave.
pub struct PendingFlush {
    topic: usize,
    partition: usize,
    part: Arc<Partition>,
    offset: i64,
}

/// The answer to a Produce: the response as of the appends, and the flushes it waits for
/// (`acks=-1` under `log.flush.policy=fsync`). The connection keeps reading requests while
/// these complete, so the requests of one connection share group-commit fsyncs.
pub struct Produced {
    pub response: Option<ProduceResponse>,
    pub flushes: Vec<PendingFlush>,
}

impl Produced {
    /// Waits for the flushes; a partition whose flush failed answers KAFKA_STORAGE_ERROR.
    pub async fn finish(mut self) -> Option<ProduceResponse> {
        for f in std::mem::take(&mut self.flushes) {
            let Err(e) = f.part.flush_through(f.offset).await else {
                continue;
            };
            let Some(p) = self
                .response
                .as_mut()
                .and_then(|r| r.responses.get_mut(f.topic))
                .and_then(|t| t.partition_responses.get_mut(f.partition))
            else {
                continue;
            };
            p.error_code = ErrorCode::KAFKA_STORAGE_ERROR.code();
            p.error_message = Some(e.to_string());
            p.base_offset = -1;
        }
        self.response
    }
}

pub fn handle(broker: &Broker, req: ProduceRequest, version: i16) -> Produced {
    let acks = req.acks;
    let mut responses = Vec::with_capacity(req.topic_data.len());
    let mut flushes = Vec::new();
    for topic in req.topic_data {
        let mut partition_responses = Vec::with_capacity(topic.partition_data.len());
        for data in topic.partition_data {
            let index = data.index;
            let result = if !matches!(acks, -1..=1) {
                Err(reject(ErrorCode::INVALID_REQUIRED_ACKS, "acks must be -1, 0 or 1"))
            } else {
                produce_partition(broker, &topic.name, data, acks, version).map(|(response, flush)| {
                    if let Some((part, offset)) = flush {
                        flushes.push(PendingFlush {
                            topic: responses.len(),
                            partition: partition_responses.len(),
                            part,
                            offset,
                        });
                    }
                    response
                })
            };
            if result.is_err() {
                broker.metrics.produce_failed(&topic.name);
            }
            partition_responses.push(match result {
                Ok(r) => r,
                Err(rej) => PartitionProduceResponse {
                    index,
                    error_code: rej.code.code(),
                    base_offset: -1,
                    log_append_time_ms: -1,
                    log_start_offset: -1,
                    error_message: Some(rej.message),
                    record_errors: rej
                        .record_errors
                        .into_iter()
                        .map(|(batch_index, message)| BatchIndexAndErrorMessage {
                            batch_index,
                            batch_index_error_message: Some(message),
                            ..Default::default()
                        })
                        .collect(),
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
        return Produced {
            response: None,
            flushes: Vec::new(),
        };
    }
    Produced {
        response: Some(ProduceResponse {
            responses,
            ..Default::default()
        }),
        flushes,
    }
}

/// A partition and the offset its log must be flushed through.
type FlushThrough = (Arc<Partition>, i64);

/// Appends one partition's batch; returns its response and, when the client must wait for the
/// disk, the partition and offset to flush through.
fn produce_partition(
    broker: &Broker,
    topic: &str,
    data: PartitionProduceData,
    acks: i16,
    version: i16,
) -> Result<(PartitionProduceResponse, Option<FlushThrough>), Rejection> {
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
    if is_internal(topic) {
        return Err(reject(
            ErrorCode::INVALID_TOPIC_EXCEPTION,
            format!("Cannot append to internal topic {topic}"),
        ));
    }
    let records = data.records.unwrap_or_default();
    let record_bytes = records.len() as u64;
    let now = now_ms();
    let (mut buf, header) = prepare(records, &settings, now, version)?;
    let transactional = header
        .is_transactional()
        .then_some((header.producer_id, header.producer_epoch));
    let (info, append_time) = {
        let mut log = part.log();
        if let Some((producer_id, epoch)) = transactional {
            // KIP-890: checked under the log lock, so no marker can slip in between the check
            // and the write and leave this batch in a transaction that already ended.
            broker
                .txns
                .verify_write(producer_id, epoch, topic, data.index)
                .map_err(|code| reject(code, "the producer's transaction does not hold this partition"))?;
        }
        let info = log
            .append_as_leader(&mut buf, part.leader_epoch(), now)
            .map_err(storage_rejection)?;
        part.publish(&log);
        let append_time = match settings.timestamp_type {
            // A duplicate is answered with the original batch's append time, as Kafka does.
            TimestampType::LogAppendTime if info.duplicate => info.max_timestamp,
            TimestampType::LogAppendTime => now,
            TimestampType::CreateTime => -1,
        };
        (info, append_time)
    };
    if !info.duplicate {
        // Kafka's BytesInPerSec counts the record-batch bytes as received.
        let messages = u64::try_from(info.last_offset - info.first_offset + 1).unwrap_or(0);
        broker.metrics.produced(topic, messages, record_bytes);
    }
    let flush =
        (acks == -1 && settings.log.flush_policy == FlushPolicy::Fsync).then(|| (part.clone(), info.last_offset));
    let response = PartitionProduceResponse {
        index: data.index,
        error_code: 0,
        base_offset: info.first_offset,
        log_append_time_ms: append_time,
        log_start_offset: info.log_start_offset,
        ..Default::default()
    };
    Ok((response, flush))
}

/// Topics only the broker's coordinators write.
fn is_internal(topic: &str) -> bool {
    topic == crate::group::OFFSETS_TOPIC || topic == runnel_coordinator::txn::TRANSACTION_STATE_TOPIC
}

/// Producer-state verdicts become their Kafka codes; anything else is a storage fault.
fn storage_rejection(e: StorageError) -> Rejection {
    let code = match e {
        StorageError::InvalidProducerEpoch { .. } => ErrorCode::INVALID_PRODUCER_EPOCH,
        StorageError::OutOfOrderSequence { .. } => ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER,
        StorageError::InvalidTxnState { .. } => ErrorCode::INVALID_TXN_STATE,
        StorageError::ControlBatchNotAllowed { .. } => ErrorCode::INVALID_RECORD,
        _ => ErrorCode::KAFKA_STORAGE_ERROR,
    };
    reject(code, e.to_string())
}

/// Validates the producer's batch and returns the bytes to append (recompressed and stamped
/// where the topic asks for it) with the batch's header. Produce v3+ carries exactly one batch
/// per partition. Offsets are assigned in the returned buffer, which is the request's own
/// memory when nothing else holds it (no copy), else a copy.
fn prepare(
    records: Bytes,
    settings: &TopicSettings,
    now: i64,
    version: i16,
) -> Result<(BytesMut, records::BatchHeader), Rejection> {
    if records.is_empty() {
        return Err(reject(
            ErrorCode::CORRUPT_MESSAGE,
            "produce request carries no record batch",
        ));
    }
    let summary = records::validate_batches(&records).map_err(record_rejection)?;
    if summary.batch_count != 1 {
        return Err(reject(
            ErrorCode::INVALID_RECORD,
            "Produce requests with version 3 and above are only allowed to contain exactly one record batch per partition",
        ));
    }
    let header = summary.first;
    let bytes: &[u8] = &records;
    if header.total_size_bytes() > settings.max_message_bytes {
        let message = format!(
            "batch of {} bytes exceeds max.message.bytes {}",
            header.total_size_bytes(),
            settings.max_message_bytes
        );
        return Err(reject(ErrorCode::MESSAGE_TOO_LARGE, message));
    }
    if header.is_control() {
        return Err(reject(
            ErrorCode::INVALID_RECORD,
            "Clients are not allowed to write control records",
        ));
    }
    if settings.timestamp_type == TimestampType::CreateTime {
        check_timestamps(header.base_timestamp, header.max_timestamp, settings, now)?;
    }
    let codec = header.compression().map_err(record_rejection)?;
    if codec == Compression::Zstd && version < 7 {
        return Err(reject(
            ErrorCode::UNSUPPORTED_COMPRESSION_TYPE,
            "zstd needs Produce v7 or later",
        ));
    }
    let target = target_compression(&settings.compression_type);
    let recompress = target.is_some_and(|t| t != codec);
    let mut out = if settings.compact || recompress {
        let decoded = records::decode_records(bytes, MAX_DECOMPRESSED_BYTES).map_err(record_rejection)?;
        check_keys(&decoded, settings)?;
        match target.filter(|_| recompress) {
            Some(t) => recompressed(&header, &decoded, t)?,
            None => BytesMut::from(records),
        }
    } else {
        BytesMut::from(records)
    };
    if settings.timestamp_type == TimestampType::LogAppendTime {
        records::set_log_append_time_all(&mut out, now).map_err(record_rejection)?;
    }
    Ok((out, header))
}

/// Compacted topics need a key on every record (Kafka lists each offender in `record_errors`).
fn check_keys(decoded: &[records::Record], settings: &TopicSettings) -> Result<(), Rejection> {
    if !settings.compact {
        return Ok(());
    }
    const MESSAGE: &str = "Compacted topic cannot accept message without key in topic partition.";
    let record_errors: Vec<(i32, String)> = decoded
        .iter()
        .enumerate()
        .filter(|(_, r)| r.key.is_none())
        .map(|(i, _)| (i as i32, MESSAGE.to_string()))
        .collect();
    if record_errors.is_empty() {
        return Ok(());
    }
    Err(Rejection {
        code: ErrorCode::INVALID_RECORD,
        message: MESSAGE.to_string(),
        record_errors,
    })
}

/// Re-encodes a batch's records with the topic's codec, keeping the producer fields.
fn recompressed(
    header: &records::BatchHeader,
    decoded: &[records::Record],
    codec: Compression,
) -> Result<BytesMut, Rejection> {
    let params = records::BatchBuilderParams {
        base_timestamp: header.base_timestamp,
        producer_id: header.producer_id,
        producer_epoch: header.producer_epoch,
        base_sequence: header.base_sequence,
        is_transactional: header.is_transactional(),
        is_control: header.is_control(),
        ..Default::default()
    };
    let rebuilt = records::encode_batch(&params, decoded, codec).map_err(record_rejection)?;
    Ok(BytesMut::from(&rebuilt[..]))
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
