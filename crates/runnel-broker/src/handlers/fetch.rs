//! Fetch (key 1), v4–17. Reads whole batches up to the high watermark, within `max_bytes`
//! and each `partition_max_bytes` (the first batch is returned whole even when larger, so a
//! consumer can always make progress). Waits up to `max_wait_ms` for `min_bytes`, parked on
//! the partitions it reads (woken when one of them changes) rather than polling. Fetch sessions (KIP-227) are
//! not kept: every response has session id 0, which clients treat as "full fetch each time".
//! `read_committed` reads stop at the last stable offset and carry the aborted transactions
//! that overlap the returned batches (from the `.txnindex` files), so clients drop their data.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use runnel_protocol::codec::Uuid;
use runnel_protocol::generated::fetch_request::{FetchPartition, FetchRequest};
use runnel_protocol::generated::fetch_response::{
    AbortedTransaction, FetchResponse, FetchableTopicResponse, PartitionData,
};
use runnel_protocol::records::{self, Compression};
use runnel_protocol::ErrorCode;
use runnel_storage::StorageError;
use tokio::sync::Notify;

use crate::broker::Broker;

/// Kafka clients' default `fetch.max.bytes`, used when a request sends a non-positive limit.
const DEFAULT_MAX_BYTES: usize = 52_428_800;
const READ_COMMITTED: i8 = 1;
/// Longest wait we honour, whatever the client asks.
const MAX_WAIT_CAP: Duration = Duration::from_secs(30);

pub async fn handle(broker: &Broker, req: FetchRequest, version: i16) -> FetchResponse {
    if req.session_id != 0 || req.session_epoch > 0 {
        return FetchResponse {
            error_code: ErrorCode::FETCH_SESSION_ID_NOT_FOUND.code(),
            ..Default::default()
        };
    }
    let wait = Duration::from_millis(req.max_wait_ms.max(0) as u64).min(MAX_WAIT_CAP);
    let deadline = Instant::now() + wait;
    let min_bytes = req.min_bytes.max(0) as usize;
    // A fetch that must wait registers with every partition it reads, before reading them
    // again, so a change between that read and the wait leaves a permit and is never missed.
    // A fetch answered at once (a consumer catching up) never registers.
    let mut parked: Option<Arc<Notify>> = None;
    loop {
        let (response, bytes, errors) = read_all(broker, &req, version, parked.as_ref());
        let now = Instant::now();
        if bytes >= min_bytes || errors || now >= deadline {
            broker.metrics.fetch_response(broker, &response);
            return response;
        }
        match &parked {
            None => parked = Some(Arc::new(Notify::new())),
            Some(changed) => {
                let _ = tokio::time::timeout(deadline - now, changed.notified()).await;
            }
        }
    }
}

/// One pass over every requested partition. Returns the response, the record bytes in it and
/// whether any partition failed (an error answers at once, as Kafka does).
fn read_all(
    broker: &Broker,
    req: &FetchRequest,
    version: i16,
    parked: Option<&Arc<Notify>>,
) -> (FetchResponse, usize, bool) {
    let image = broker.image();
    let mut budget = if req.max_bytes > 0 {
        req.max_bytes as usize
    } else {
        DEFAULT_MAX_BYTES
    };
    let mut total = 0usize;
    let mut errors = false;
    let mut responses = Vec::with_capacity(req.topics.len());
    for topic in &req.topics {
        let name = if version >= 13 {
            image.topic_by_id(&topic.topic_id.0).map(|t| t.name.clone())
        } else {
            Some(topic.topic.clone())
        };
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for p in &topic.partitions {
            let data = match &name {
                None => Err(ErrorCode::UNKNOWN_TOPIC_ID),
                Some(n) => read_partition(
                    broker,
                    n,
                    p,
                    (req.isolation_level, version),
                    (&mut budget, total == 0),
                    parked,
                ),
            };
            partitions.push(match data {
                Ok(d) => {
                    total += d.records.as_ref().map_or(0, Bytes::len);
                    d
                }
                Err(code) => {
                    errors = true;
                    error_partition(p.partition, code)
                }
            });
        }
        responses.push(FetchableTopicResponse {
            topic: topic.topic.clone(),
            topic_id: if version >= 13 { topic.topic_id } else { Uuid::ZERO },
            partitions,
            ..Default::default()
        });
    }
    (
        FetchResponse {
            responses,
            ..Default::default()
        },
        total,
        errors,
    )
}

fn read_partition(
    broker: &Broker,
    topic: &str,
    p: &FetchPartition,
    (isolation_level, version): (i8, i16),
    (budget, first): (&mut usize, bool),
    parked: Option<&Arc<Notify>>,
) -> Result<PartitionData, ErrorCode> {
    let part = broker
        .replicas
        .get(topic, p.partition)
        .ok_or(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION)?;
    part.check_leader_epoch(p.current_leader_epoch)?;
    if let Some(waiter) = parked {
        part.wake_on_change(waiter);
    }
    // The LSO first: it never passes the high watermark read after it.
    let last_stable_offset = part.last_stable_offset();
    let high_watermark = part.high_watermark();
    let committed = isolation_level == READ_COMMITTED;
    let upper = if committed { last_stable_offset } else { high_watermark };
    let max_bytes = (p.partition_max_bytes.max(0) as usize).min(*budget);
    let mut aborted = None;
    let records = if p.fetch_offset == upper {
        Bytes::new()
    } else {
        let log = part.log();
        let read = log.read(p.fetch_offset, max_bytes, upper, first);
        if committed {
            if let Ok(read) = &read {
                let end = last_offset_after(&read.records).unwrap_or(p.fetch_offset);
                aborted = Some(aborted_transactions(&log, p.fetch_offset, end));
            }
        }
        match read {
            Ok(read) => read.records,
            Err(StorageError::OffsetOutOfRange { .. }) => return Err(ErrorCode::OFFSET_OUT_OF_RANGE),
            Err(e) => {
                tracing::warn!(topic, partition = p.partition, error = %e, "fetch read failed");
                return Err(ErrorCode::KAFKA_STORAGE_ERROR);
            }
        }
    };
    if version < 10 && has_zstd(&records) {
        // Clients before Fetch v10 cannot read zstd (Kafka answers this per partition).
        return Err(ErrorCode::UNSUPPORTED_COMPRESSION_TYPE);
    }
    *budget = budget.saturating_sub(records.len());
    Ok(PartitionData {
        partition_index: p.partition,
        error_code: 0,
        high_watermark,
        last_stable_offset,
        log_start_offset: part.log_start_offset(),
        aborted_transactions: if committed {
            Some(aborted.unwrap_or_default())
        } else {
            None
        },
        preferred_read_replica: -1,
        records: Some(records),
        ..Default::default()
    })
}

/// The offset after the last batch in `records`.
fn last_offset_after(records: &[u8]) -> Option<i64> {
    records::batches(records)
        .filter_map(Result::ok)
        .last()
        .map(|(h, _)| h.last_offset() + 1)
}

/// Aborted transactions overlapping `[from, to)`, for a `read_committed` consumer to drop.
fn aborted_transactions(log: &runnel_storage::PartitionLog, from: i64, to: i64) -> Vec<AbortedTransaction> {
    if to <= from {
        return Vec::new();
    }
    match log.collect_aborted_transactions(from, to) {
        Ok(list) => list
            .into_iter()
            .map(|a| AbortedTransaction {
                producer_id: a.producer_id,
                first_offset: a.first_offset,
                ..Default::default()
            })
            .collect(),
        Err(e) => {
            tracing::warn!(error = %e, "reading the aborted transaction index failed");
            Vec::new()
        }
    }
}

fn has_zstd(records: &[u8]) -> bool {
    records::batches(records).any(|b| b.is_ok_and(|(h, _)| h.compression().is_ok_and(|c| c == Compression::Zstd)))
}

fn error_partition(partition: i32, code: ErrorCode) -> PartitionData {
    PartitionData {
        partition_index: partition,
        error_code: code.code(),
        high_watermark: -1,
        last_stable_offset: -1,
        log_start_offset: -1,
        preferred_read_replica: -1,
        records: Some(Bytes::new()),
        ..Default::default()
    }
}
