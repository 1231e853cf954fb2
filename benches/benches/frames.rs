//! Request/response codec micro-benchmarks with the generated message types and the `frame`
//! functions: a Produce request (v11, one partition, one 16 KiB batch) and a Fetch response
//! (v16, four partitions of 1 MiB each). Measures CPU only; record bytes are opaque `Bytes`.

mod common;

use std::hint::black_box;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use runnel_protocol::codec::Uuid;
use runnel_protocol::frame::{decode_request, decode_response, encode_request, encode_response, RequestHeader};
use runnel_protocol::generated::fetch_response::{FetchResponse, FetchableTopicResponse, PartitionData};
use runnel_protocol::generated::produce_request::{PartitionProduceData, ProduceRequest, TopicProduceData};
use runnel_protocol::generated::{ApiKey, RequestBody, ResponseBody};
use runnel_protocol::records::Compression;

const PRODUCE_VERSION: i16 = 11;
const FETCH_VERSION: i16 = 16;
const FETCH_PARTITIONS: usize = 4;
const FETCH_PARTITION_BYTES: usize = 1024 * 1024;

fn produce_request() -> (RequestHeader, RequestBody) {
    let (batch, _) = common::batch_16k(Compression::None, 1_700_000_000_000);
    let header = RequestHeader {
        api_key: ApiKey::Produce as i16,
        api_version: PRODUCE_VERSION,
        correlation_id: 42,
        client_id: Some("bench-producer".to_string()),
        unknown_tagged_fields: Vec::new(),
    };
    let body = RequestBody::Produce(ProduceRequest {
        transactional_id: None,
        acks: 1,
        timeout_ms: 30_000,
        topic_data: vec![TopicProduceData {
            name: "bench".to_string(),
            partition_data: vec![PartitionProduceData {
                index: 0,
                records: Some(batch),
                ..PartitionProduceData::default()
            }],
            ..TopicProduceData::default()
        }],
        ..ProduceRequest::default()
    });
    (header, body)
}

/// 1 MiB of whole 16 KiB batches (the last one cut short, as a fetch's size limit may).
fn one_mib_of_batches() -> Bytes {
    let (batch, _) = common::batch_16k(Compression::None, 1_700_000_000_000);
    let mut out = Vec::with_capacity(FETCH_PARTITION_BYTES);
    while out.len() < FETCH_PARTITION_BYTES {
        let take = batch.len().min(FETCH_PARTITION_BYTES - out.len());
        out.extend_from_slice(&batch[..take]);
    }
    Bytes::from(out)
}

fn fetch_response() -> ResponseBody {
    let records = one_mib_of_batches();
    let partitions = (0..FETCH_PARTITIONS)
        .map(|i| PartitionData {
            partition_index: i as i32,
            high_watermark: 1_000_000,
            last_stable_offset: 1_000_000,
            log_start_offset: 0,
            records: Some(records.clone()),
            ..PartitionData::default()
        })
        .collect();
    ResponseBody::Fetch(FetchResponse {
        responses: vec![FetchableTopicResponse {
            topic: String::new(),
            topic_id: Uuid([7; 16]),
            partitions,
            ..FetchableTopicResponse::default()
        }],
        ..FetchResponse::default()
    })
}

fn produce(c: &mut Criterion) {
    let (header, body) = produce_request();
    let mut buf = BytesMut::new();
    encode_request(&mut buf, &header, &body).expect("encode produce");
    // `decode_request` takes the frame after its 4-byte size prefix, as the connection reads it.
    let frame = buf.clone().freeze().slice(4..);
    let mut group = c.benchmark_group("produce_request_v11_16KiB");
    group.measurement_time(Duration::from_secs(3)).sample_size(20);
    group.throughput(Throughput::Bytes(frame.len() as u64));
    group.bench_function("encode", |b| {
        b.iter(|| {
            buf.clear();
            encode_request(&mut buf, black_box(&header), black_box(&body)).expect("encode produce");
        })
    });
    group.bench_function("decode", |b| {
        b.iter(|| decode_request(black_box(frame.clone())).expect("decode produce"))
    });
    group.finish();
}

fn fetch(c: &mut Criterion) {
    let body = fetch_response();
    let mut buf = BytesMut::new();
    encode_response(&mut buf, 42, ApiKey::Fetch, FETCH_VERSION, &body).expect("encode fetch");
    let frame = buf.clone().freeze().slice(4..);
    let mut group = c.benchmark_group("fetch_response_v16_4x1MiB");
    group.measurement_time(Duration::from_secs(3)).sample_size(20);
    group.throughput(Throughput::Bytes(frame.len() as u64));
    group.bench_function("encode", |b| {
        b.iter(|| {
            buf.clear();
            encode_response(&mut buf, 42, ApiKey::Fetch, FETCH_VERSION, black_box(&body)).expect("encode fetch");
        })
    });
    group.bench_function("decode", |b| {
        b.iter(|| decode_response(black_box(frame.clone()), ApiKey::Fetch, FETCH_VERSION).expect("decode fetch"))
    });
    group.finish();
}

criterion_group!(benches, produce, fetch);
criterion_main!(benches);
