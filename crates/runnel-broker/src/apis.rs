//! Which APIs this broker serves, at which versions, and request dispatch.
//!
//! `SUPPORTED` is what this broker serves: exactly the handlers below, with Kafka 4.x ranges,
//! plus older versions Kafka 4.0 dropped where they cost nothing (same fields). ApiVersions
//! lists these ranges, with Produce from v0 as Kafka 4.0 does (`advertised_range`).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use runnel_protocol::frame::{encode_response, encode_response_chunks, RequestHeader};
use runnel_protocol::generated::{ApiKey, RequestBody, ResponseBody};
use runnel_protocol::ErrorCode;

use crate::broker::Broker;
use crate::handlers;
use crate::server::ConnContext;

/// API versions served: `(api, min, max)`.
pub const SUPPORTED: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 3, 11),
    (ApiKey::Fetch, 4, 17),
    (ApiKey::ListOffsets, 1, 9),
    (ApiKey::Metadata, 0, 12),
    (ApiKey::OffsetForLeaderEpoch, 0, 4),
    (ApiKey::ApiVersions, 0, 4),
    (ApiKey::CreateTopics, 0, 7),
    (ApiKey::DeleteTopics, 0, 6),
    (ApiKey::DeleteRecords, 0, 2),
    (ApiKey::DescribeConfigs, 0, 4),
    (ApiKey::AlterConfigs, 0, 2),
    (ApiKey::DescribeLogDirs, 0, 4),
    (ApiKey::CreatePartitions, 0, 3),
    (ApiKey::IncrementalAlterConfigs, 0, 1),
    (ApiKey::DescribeCluster, 0, 1),
    (ApiKey::DescribeTopicPartitions, 0, 0),
    // Group coordinator (classic protocol and committed offsets).
    (ApiKey::FindCoordinator, 0, 6),
    (ApiKey::JoinGroup, 0, 9),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 5),
    (ApiKey::OffsetCommit, 0, 9),
    (ApiKey::OffsetFetch, 0, 9),
    (ApiKey::DescribeGroups, 0, 5),
    (ApiKey::ListGroups, 0, 5),
    (ApiKey::DeleteGroups, 0, 2),
    (ApiKey::OffsetDelete, 0, 0),
    // KIP-848 consumer groups (v1 only changes regex handling, which answers INVALID_REQUEST).
    (ApiKey::ConsumerGroupHeartbeat, 0, 1),
    (ApiKey::ConsumerGroupDescribe, 0, 0),
    (ApiKey::InitProducerId, 0, 5),
    (ApiKey::DescribeProducers, 0, 0),
    // Transaction coordinator (transaction version 1; EndTxn v5 is answered like v4).
    (ApiKey::AddPartitionsToTxn, 0, 5),
    (ApiKey::AddOffsetsToTxn, 0, 4),
    (ApiKey::EndTxn, 0, 5),
    (ApiKey::TxnOffsetCommit, 0, 4),
    (ApiKey::DescribeTransactions, 0, 0),
    (ApiKey::ListTransactions, 0, 1),
];

/// The range ApiVersions lists for an API served at `min..=max`: the same, except that Produce
/// is listed from v0, as Kafka 4.0 lists it (KAFKA-18659) while refusing v0–2 like any other
/// version it does not serve. librdkafka releases from before its fix for this (issue 4956;
/// Debian's 2.0.2 among them) compress with gzip, snappy or lz4 only when Produce v0 is listed,
/// and send those batches uncompressed otherwise. Clients pick the highest version both sides
/// know, so the wider range changes no version a client sends.
pub fn advertised_range(key: ApiKey, min: i16, max: i16) -> (i16, i16) {
    match key {
        ApiKey::Produce => (0, max),
        _ => (min, max),
    }
}

pub fn supported_range(key: ApiKey) -> Option<(i16, i16)> {
    SUPPORTED
        .iter()
        .find(|(k, _, _)| *k == key)
        .map(|(_, min, max)| (*min, *max))
}

/// A response that is complete once durability waits finish: the encoded frame, or `None` when
/// nothing is sent, or the reason to close.
pub type DeferredResponse = Pin<Box<dyn Future<Output = Result<Option<Bytes>, String>> + Send>>;

/// What the connection does after a request.
pub enum Outcome {
    /// `out` holds a response frame to write.
    Respond,
    /// A response frame in parts, for one vectored write: large record sets leave in the
    /// buffers they were read into instead of being copied into the response.
    RespondParts(Vec<Bytes>),
    /// Nothing to send (Produce with acks=0).
    NoResponse,
    /// The response waits for a flush (Produce, acks=-1, `log.flush.policy=fsync`); it is
    /// written, in order, when the future completes, while the connection reads on.
    Deferred(DeferredResponse),
    /// Close the connection (Kafka does this for requests it cannot parse).
    Close(String),
}

/// Decodes, handles and encodes one request into `out`.
pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &ConnContext,
    header: &RequestHeader,
    mut body: Bytes,
    out: &mut BytesMut,
) -> Outcome {
    let Some(key) = ApiKey::from_i16(header.api_key) else {
        return Outcome::Close("unknown API key".into());
    };
    let version = header.api_version;
    let in_range = supported_range(key).is_some_and(|(min, max)| version >= min && version <= max);
    if key == ApiKey::ApiVersions && !in_range {
        // KIP-511: answer an unknown ApiVersions version with a v0 body and UNSUPPORTED_VERSION,
        // listing what we support, so the client can retry with a version we know.
        let response = handlers::api_versions::unsupported_version_response();
        return respond(out, header, key, 0, &ResponseBody::ApiVersions(response));
    }
    if !in_range {
        return unsupported(out, header, key);
    }
    let request = match RequestBody::decode(header.api_key, version, &mut body) {
        Ok(r) => r,
        Err(e) => return Outcome::Close(format!("cannot decode request: {e}")),
    };
    // The request's byte fields are slices of the frame; with the frame gone, a Produce's
    // records may be the only handle on their memory and are then appended without a copy.
    drop(body);
    let started = std::time::Instant::now();
    let request = match request {
        RequestBody::Produce(r) => {
            let produced = handlers::produce::handle(broker, r, version);
            if produced.flushes.is_empty() {
                broker.metrics.request_done(key, started.elapsed());
                return match produced.response {
                    Some(r) => respond(out, header, key, version, &r.into()),
                    None => Outcome::NoResponse,
                };
            }
            return Outcome::Deferred(deferred_produce(broker.clone(), header, produced, started));
        }
        other => other,
    };
    let dispatched = dispatch(broker, ctx, header, request).await;
    broker.metrics.request_done(key, started.elapsed());
    let response = match dispatched {
        Some(r) => r,
        None => return Outcome::NoResponse,
    };
    if key == ApiKey::Fetch {
        return respond_in_parts(out, header, version, &response);
    }
    respond(out, header, key, version, &response)
}

/// Record sets at least this large are written from their own buffers, not copied into the
/// response (below it, the copy costs less than another I/O vector).
const SHARED_RECORDS_MIN: usize = 16 * 1024;

/// A Fetch response, mostly records: encoded around its record sets, which stay in the
/// buffers the log read them into. One part (no large record set) is answered from `out`.
fn respond_in_parts(out: &mut BytesMut, header: &RequestHeader, version: i16, body: &ResponseBody) -> Outcome {
    let head = std::mem::take(out);
    let encoded = encode_response_chunks(
        head,
        header.correlation_id,
        ApiKey::Fetch,
        version,
        body,
        SHARED_RECORDS_MIN,
    );
    match encoded {
        Ok(mut parts) if parts.len() == 1 => {
            // Back into the connection's output buffer (no copy: nothing else holds it).
            *out = BytesMut::from(parts.pop().unwrap_or_default());
            Outcome::Respond
        }
        Ok(parts) => Outcome::RespondParts(parts),
        Err(e) => Outcome::Close(format!("cannot encode response: {e}")),
    }
}

/// A known API or version we do not serve. Where the response has a top-level error code we
/// answer UNSUPPORTED_VERSION and keep the connection; otherwise we close it, as Kafka does
/// for requests it cannot parse.
fn unsupported(out: &mut BytesMut, header: &RequestHeader, key: ApiKey) -> Outcome {
    let (min, max) = key.valid_versions();
    if header.api_version < min || header.api_version > max {
        return Outcome::Close("unsupported version".into());
    }
    match ResponseBody::top_level_error(key, ErrorCode::UNSUPPORTED_VERSION.code()) {
        Some(response) => respond(out, header, key, header.api_version, &response),
        None => Outcome::Close(format!("{} is not supported", key.name())),
    }
}

/// The rest of a Produce whose partitions wait for their group-commit flush.
fn deferred_produce(
    broker: Arc<Broker>,
    header: &RequestHeader,
    produced: handlers::produce::Produced,
    started: std::time::Instant,
) -> DeferredResponse {
    let (correlation_id, version) = (header.correlation_id, header.api_version);
    Box::pin(async move {
        let response = produced.finish().await;
        broker.metrics.request_done(ApiKey::Produce, started.elapsed());
        let Some(response) = response else {
            return Ok(None);
        };
        let mut out = BytesMut::new();
        encode_response(&mut out, correlation_id, ApiKey::Produce, version, &response.into())
            .map_err(|e| format!("cannot encode response: {e}"))?;
        Ok(Some(out.freeze()))
    })
}

fn respond(out: &mut BytesMut, header: &RequestHeader, key: ApiKey, version: i16, body: &ResponseBody) -> Outcome {
    match encode_response(out, header.correlation_id, key, version, body) {
        Ok(()) => Outcome::Respond,
        Err(e) => Outcome::Close(format!("cannot encode response: {e}")),
    }
}

async fn dispatch(
    broker: &Broker,
    ctx: &ConnContext,
    header: &RequestHeader,
    request: RequestBody,
) -> Option<ResponseBody> {
    let v = header.api_version;
    Some(match request {
        RequestBody::ApiVersions(_) => handlers::api_versions::response().into(),
        RequestBody::Metadata(r) => handlers::metadata::handle(broker, ctx, r, v).await.into(),
        // Unreachable: `handle` answers Produce itself (its flushes are deferred).
        RequestBody::Produce(r) => return handlers::produce::handle(broker, r, v).finish().await.map(Into::into),
        RequestBody::Fetch(r) => handlers::fetch::handle(broker, r, v).await.into(),
        RequestBody::ListOffsets(r) => handlers::list_offsets::handle(broker, r, v).into(),
        RequestBody::CreateTopics(r) => handlers::create_topics::handle(broker, r, v).await.into(),
        RequestBody::DeleteTopics(r) => handlers::delete_topics::handle(broker, r, v).await.into(),
        RequestBody::CreatePartitions(r) => handlers::create_partitions::handle(broker, r, v).await.into(),
        RequestBody::DescribeConfigs(r) => handlers::describe_configs::handle(broker, r, v).into(),
        RequestBody::AlterConfigs(r) => handlers::alter_configs::handle(broker, r).await.into(),
        RequestBody::IncrementalAlterConfigs(r) => handlers::incremental_alter_configs::handle(broker, r).await.into(),
        RequestBody::DescribeCluster(r) => handlers::describe_cluster::handle(broker, ctx, r).into(),
        RequestBody::DescribeTopicPartitions(r) => handlers::describe_topic_partitions::handle(broker, r).into(),
        RequestBody::DescribeLogDirs(r) => handlers::describe_log_dirs::handle(broker, r).into(),
        RequestBody::DescribeProducers(r) => handlers::describe_producers::handle(broker, r).into(),
        RequestBody::InitProducerId(r) => handlers::init_producer_id::handle(broker, r, v).await.into(),
        RequestBody::DeleteRecords(r) => handlers::delete_records::handle(broker, r).into(),
        RequestBody::OffsetForLeaderEpoch(r) => handlers::offset_for_leader_epoch::handle(broker, r).into(),
        RequestBody::FindCoordinator(r) => handlers::find_coordinator::handle(broker, ctx, r, v).await.into(),
        RequestBody::JoinGroup(r) => handlers::join_group::handle(broker, ctx, header.client_id.as_deref(), r, v)
            .await
            .into(),
        RequestBody::SyncGroup(r) => handlers::sync_group::handle(broker, r, v).await.into(),
        RequestBody::Heartbeat(r) => handlers::heartbeat::handle(broker, r).into(),
        RequestBody::LeaveGroup(r) => handlers::leave_group::handle(broker, r, v).into(),
        RequestBody::OffsetCommit(r) => handlers::offset_commit::handle(broker, r, v).into(),
        RequestBody::OffsetFetch(r) => handlers::offset_fetch::handle(broker, r, v).into(),
        RequestBody::DescribeGroups(r) => handlers::describe_groups::handle(broker, r).into(),
        RequestBody::ListGroups(r) => handlers::list_groups::handle(broker, r).into(),
        RequestBody::DeleteGroups(r) => handlers::delete_groups::handle(broker, r).into(),
        RequestBody::OffsetDelete(r) => handlers::offset_delete::handle(broker, r).into(),
        RequestBody::ConsumerGroupHeartbeat(r) => {
            handlers::consumer_group_heartbeat::handle(broker, ctx, header.client_id.as_deref(), r).into()
        }
        RequestBody::ConsumerGroupDescribe(r) => handlers::consumer_group_describe::handle(broker, r).into(),
        RequestBody::AddPartitionsToTxn(r) => handlers::add_partitions_to_txn::handle(broker, r, v).into(),
        RequestBody::AddOffsetsToTxn(r) => handlers::add_offsets_to_txn::handle(broker, r, v).await.into(),
        RequestBody::EndTxn(r) => handlers::end_txn::handle(broker, r, v).into(),
        RequestBody::TxnOffsetCommit(r) => handlers::txn_offset_commit::handle(broker, r, v).into(),
        RequestBody::DescribeTransactions(r) => handlers::describe_transactions::handle(broker, r).into(),
        RequestBody::ListTransactions(r) => handlers::list_transactions::handle(broker, r).into(),
        other => {
            // Unreachable while SUPPORTED and this match agree; answer rather than panic.
            tracing::error!(api = other.api_key().name(), "advertised API without a handler");
            return ResponseBody::top_level_error(other.api_key(), ErrorCode::UNKNOWN_SERVER_ERROR.code());
        }
    })
}
