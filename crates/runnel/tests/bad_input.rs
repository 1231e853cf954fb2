//! Hostile and malformed input over raw TCP against the real binary. Every case uses a fresh
//! connection with read and write timeouts (a test can never hang), checks what the broker did
//! with the bytes (answered correctly, or closed the connection promptly), and then checks that
//! the broker still serves a well-behaved client.
//!
//! Kafka's rule, which the broker follows: a request it cannot parse closes the connection; a
//! request it can parse but does not support gets an error response where the response has a
//! place for one.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use common::Broker;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use runnel_protocol::frame::{decode_response, encode_request, RequestHeader};
use runnel_protocol::generated::api_versions_request::ApiVersionsRequest;
use runnel_protocol::generated::create_partitions_request::{CreatePartitionsRequest, CreatePartitionsTopic};
use runnel_protocol::generated::create_topics_request::{CreatableTopic, CreatableTopicConfig, CreateTopicsRequest};
use runnel_protocol::generated::fetch_request::{FetchPartition, FetchRequest, FetchTopic};
use runnel_protocol::generated::metadata_request::{MetadataRequest, MetadataRequestTopic};
use runnel_protocol::generated::produce_request::{PartitionProduceData, ProduceRequest, TopicProduceData};
use runnel_protocol::generated::{ApiKey, RequestBody, ResponseBody};
use runnel_protocol::records::{encode_batch, BatchBuilderParams, Compression, Record};

/// How long the broker has to answer or close before a case fails.
const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// "Promptly": an unacceptable frame must be rejected well within this.
const PROMPT: Duration = Duration::from_secs(2);
/// Largest response frame the tests accept (guards the test's own allocation).
const MAX_RESPONSE_BYTES: usize = 64 << 20;
const RSS_LIMIT_KIB: u64 = 200 * 1024;

const UNSUPPORTED_VERSION: i16 = 35;
const CORRUPT_MESSAGE: i16 = 2;
const MESSAGE_TOO_LARGE: i16 = 10;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const INVALID_TOPIC_EXCEPTION: i16 = 17;
const INVALID_REQUIRED_ACKS: i16 = 21;
const INVALID_PARTITIONS: i16 = 37;
const INVALID_REPLICATION_FACTOR: i16 = 38;

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn connect(b: &Broker) -> TcpStream {
    let s = TcpStream::connect(b.bootstrap()).expect("connect");
    s.set_read_timeout(Some(IO_TIMEOUT)).expect("read timeout");
    s.set_write_timeout(Some(IO_TIMEOUT)).expect("write timeout");
    s.set_nodelay(true).expect("nodelay");
    s
}

/// What came back for a request.
#[derive(Debug)]
enum Reply {
    /// The broker closed the connection (EOF or reset) without a response.
    Closed,
    /// A whole response frame, without its size prefix.
    Frame(Vec<u8>),
}

fn is_reset(kind: ErrorKind) -> bool {
    matches!(
        kind,
        ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted | ErrorKind::BrokenPipe
    )
}

fn is_timeout(kind: ErrorKind) -> bool {
    matches!(kind, ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

/// Reads exactly `buf.len()` bytes; `Ok(false)` if the peer closed before the first byte.
fn read_full(s: &mut TcpStream, buf: &mut [u8], what: &str) -> Result<bool, String> {
    let mut got = 0;
    while got < buf.len() {
        match s.read(&mut buf[got..]) {
            Ok(0) if got == 0 => return Ok(false),
            Ok(0) => return Err(format!("{what}: connection closed after {got} of {} bytes", buf.len())),
            Ok(n) => got += n,
            Err(e) if is_reset(e.kind()) && got == 0 => return Ok(false),
            Err(e) if is_timeout(e.kind()) => {
                return Err(format!(
                    "{what}: broker neither answered nor closed within {IO_TIMEOUT:?}"
                ))
            }
            Err(e) => return Err(format!("{what}: read failed: {e}")),
        }
    }
    Ok(true)
}

/// Waits for one response frame or the connection's end.
fn read_reply(s: &mut TcpStream, what: &str) -> Reply {
    let mut prefix = [0u8; 4];
    match read_full(s, &mut prefix, what) {
        Ok(true) => {}
        Ok(false) => return Reply::Closed,
        Err(e) => panic!("{e}"),
    }
    let size = i32::from_be_bytes(prefix);
    assert!(
        size >= 4 && (size as usize) <= MAX_RESPONSE_BYTES,
        "{what}: response frame size {size} is implausible"
    );
    let mut frame = vec![0u8; size as usize];
    match read_full(s, &mut frame, what) {
        Ok(true) => Reply::Frame(frame),
        Ok(false) => panic!("{what}: connection closed after a response size prefix"),
        Err(e) => panic!("{e}"),
    }
}

/// The broker must close the connection without sending anything, within `PROMPT`.
fn expect_closed(s: &mut TcpStream, what: &str) {
    let started = Instant::now();
    match read_reply(s, what) {
        Reply::Closed => {}
        Reply::Frame(f) => panic!(
            "{what}: expected the connection to be closed, got a {}-byte response",
            f.len()
        ),
    }
    assert!(
        started.elapsed() < PROMPT,
        "{what}: closing took {:?}",
        started.elapsed()
    );
}

/// Writes `bytes`, ignoring a reset: the broker may legitimately close before reading it all.
fn write_lenient(s: &mut TcpStream, bytes: &[u8]) {
    if let Err(e) = s.write_all(bytes) {
        assert!(
            is_reset(e.kind()) || e.kind() == ErrorKind::ConnectionRefused,
            "write failed unexpectedly: {e}"
        );
    }
}

fn header(key: i16, version: i16, correlation_id: i32) -> RequestHeader {
    RequestHeader {
        api_key: key,
        api_version: version,
        correlation_id,
        client_id: Some("bad-input-test".into()),
        unknown_tagged_fields: Vec::new(),
    }
}

fn request_bytes(key: ApiKey, version: i16, correlation_id: i32, body: &RequestBody) -> BytesMut {
    let mut buf = BytesMut::new();
    encode_request(&mut buf, &header(key as i16, version, correlation_id), body).expect("encode request");
    buf
}

/// A frame around `payload` (header and body written by hand).
fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 4);
    out.extend_from_slice(&(payload.len() as i32).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// A v1 (non-flexible) request header followed by nothing: `key, version, correlation id, client id`.
fn raw_header_v1(key: i16, version: i16, correlation_id: i32) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&key.to_be_bytes());
    out.extend_from_slice(&version.to_be_bytes());
    out.extend_from_slice(&correlation_id.to_be_bytes());
    out.extend_from_slice(&(b"bad-input-test".len() as i16).to_be_bytes());
    out.extend_from_slice(b"bad-input-test");
    out
}

/// A v2 (flexible) request header: the v1 fields plus an empty tagged-field section.
fn raw_header_v2(key: i16, version: i16, correlation_id: i32) -> Vec<u8> {
    let mut out = raw_header_v1(key, version, correlation_id);
    out.push(0);
    out
}

fn correlation_id_of(frame: &[u8]) -> i32 {
    i32::from_be_bytes(frame[..4].try_into().expect("4 bytes"))
}

/// Sends ApiVersions v0 on `s` and checks the answer is complete and error-free.
fn api_versions_ok(s: &mut TcpStream, correlation_id: i32, what: &str) {
    let req = request_bytes(
        ApiKey::ApiVersions,
        0,
        correlation_id,
        &RequestBody::ApiVersions(ApiVersionsRequest::default()),
    );
    s.write_all(&req)
        .unwrap_or_else(|e| panic!("{what}: write ApiVersions: {e}"));
    let Reply::Frame(f) = read_reply(s, what) else {
        panic!("{what}: connection closed instead of answering ApiVersions v0");
    };
    let (cid, body) = decode_response(Bytes::from(f), ApiKey::ApiVersions, 0)
        .unwrap_or_else(|e| panic!("{what}: undecodable ApiVersions response: {e}"));
    assert_eq!(cid, correlation_id, "{what}: correlation id");
    let ResponseBody::ApiVersions(r) = body else {
        panic!("{what}: not an ApiVersions response");
    };
    assert_eq!(r.error_code, 0, "{what}: ApiVersions error");
    assert!(
        r.api_keys.iter().any(|k| k.api_key == ApiKey::Produce as i16),
        "{what}: ApiVersions does not list Produce"
    );
}

/// The broker still answers a normal client on a new connection.
fn assert_serving(b: &Broker, what: &str) {
    let mut s = connect(b);
    api_versions_ok(&mut s, 7, &format!("after {what}"));
}

/// A real client can still fetch metadata.
fn assert_rdkafka_works(b: &Broker) {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", b.bootstrap())
        .create()
        .expect("consumer");
    let md = c
        .fetch_metadata(None, Duration::from_secs(10))
        .expect("rdkafka metadata after bad input");
    assert_eq!(md.brokers().len(), 1, "one broker in metadata");
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("broker process is alive");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc status")
}

fn assert_rss_bounded(b: &Broker, what: &str) {
    let rss = rss_kib(b.pid());
    assert!(
        rss < RSS_LIMIT_KIB,
        "{what}: broker RSS {rss} KiB exceeds {RSS_LIMIT_KIB} KiB"
    );
}

/// Deterministic bytes for a seed (xorshift64*), so a failing case can be replayed.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

// ---------------------------------------------------------------------------------------------
// Frame lengths
// ---------------------------------------------------------------------------------------------

#[test]
fn frame_length_over_default_limit_closes_promptly() {
    let b = Broker::start();
    for size in [i32::MAX, 104_857_601, 0x4000_0000] {
        let mut s = connect(&b);
        write_lenient(&mut s, &size.to_be_bytes());
        // A few body bytes too: the broker must not wait for the rest.
        write_lenient(&mut s, &raw_header_v1(18, 0, 1));
        expect_closed(&mut s, &format!("frame size {size}"));
        assert_serving(&b, &format!("frame size {size}"));
    }
    assert_rss_bounded(&b, "oversized frames");
    assert_rdkafka_works(&b);
}

#[test]
fn frame_length_over_configured_limit_closes_without_allocating() {
    let b = Broker::start_with(&[("socket.request.max.bytes", "1048576")]);
    let before_kib = rss_kib(b.pid());
    // Many connections at once claim huge frames; none may be buffered.
    let sizes = [2 * 1024 * 1024, 1_048_577, i32::MAX, 0x7fff_0000, 512 << 20];
    let mut conns: Vec<(i32, TcpStream)> = Vec::new();
    for round in 0..8 {
        for size in sizes {
            let mut s = connect(&b);
            write_lenient(&mut s, &size.to_be_bytes());
            write_lenient(&mut s, &vec![round as u8; 16 * 1024]);
            conns.push((size, s));
        }
    }
    for (size, s) in conns.iter_mut() {
        expect_closed(s, &format!("frame size {size} over socket.request.max.bytes=1048576"));
    }
    let after_kib = rss_kib(b.pid());
    eprintln!("broker RSS before {before_kib} KiB, after {after_kib} KiB");
    assert!(
        after_kib < RSS_LIMIT_KIB,
        "broker RSS {after_kib} KiB after huge frame sizes"
    );
    assert!(
        after_kib < before_kib + 64 * 1024,
        "broker RSS grew from {before_kib} to {after_kib} KiB for frames it should have refused"
    );
    // A frame of exactly the limit is read and answered (the limit is inclusive).
    let limit = 1_048_576usize;
    let sized = |value_len: usize| {
        let body = produce_body("no-such-topic", batch(&[vec![b'v'; value_len]]), 1);
        request_bytes(ApiKey::Produce, 9, 31, &body)
    };
    let overhead = sized(0).len() - 4;
    let mut req = sized(limit - overhead);
    let mut value_len = limit - overhead;
    while req.len() - 4 > limit {
        value_len -= 1;
        req = sized(value_len);
    }
    assert_eq!(req.len() - 4, limit, "could not build a frame of exactly the limit");
    let mut s = connect(&b);
    s.write_all(&req).expect("write a frame of exactly the limit");
    match read_reply(&mut s, "frame of exactly socket.request.max.bytes") {
        Reply::Frame(f) => assert_eq!(correlation_id_of(&f), 31),
        Reply::Closed => panic!("a frame of exactly socket.request.max.bytes was refused"),
    }
    assert_serving(&b, "huge frame sizes");
    assert_rdkafka_works(&b);
}

#[test]
fn negative_frame_length_closes() {
    let b = Broker::start();
    for size in [-1i32, -2, -100, i32::MIN] {
        let mut s = connect(&b);
        write_lenient(&mut s, &size.to_be_bytes());
        write_lenient(&mut s, &raw_header_v1(18, 0, 1));
        expect_closed(&mut s, &format!("frame size {size}"));
        assert_serving(&b, &format!("frame size {size}"));
    }
    assert_rdkafka_works(&b);
}

// ---------------------------------------------------------------------------------------------
// Malformed bodies
// ---------------------------------------------------------------------------------------------

/// Either closed, or an answer to this very request that decodes as a Metadata response and
/// does not claim more topics than could possibly exist.
fn closed_or_sane_metadata(s: &mut TcpStream, version: i16, correlation_id: i32, what: &str) {
    match read_reply(s, what) {
        Reply::Closed => {}
        Reply::Frame(f) => {
            let (cid, body) = decode_response(Bytes::from(f), ApiKey::Metadata, version)
                .unwrap_or_else(|e| panic!("{what}: undecodable Metadata response: {e}"));
            assert_eq!(cid, correlation_id, "{what}: correlation id");
            let ResponseBody::Metadata(m) = body else {
                panic!("{what}: not a Metadata response");
            };
            assert!(m.topics.len() <= 1, "{what}: {} topics in the response", m.topics.len());
        }
    }
}

#[test]
fn metadata_with_absurd_topic_array_lengths_never_crashes() {
    let b = Broker::start();
    // Metadata v9 is flexible: the topics array length is an unsigned varint of N + 1.
    let mut v9_huge = raw_header_v2(3, 9, 11);
    let mut n: u64 = 0x7fff_fff0 + 1;
    while n >= 0x80 {
        v9_huge.push((n as u8 & 0x7f) | 0x80);
        n >>= 7;
    }
    v9_huge.push(n as u8);
    v9_huge.extend_from_slice(&[1, 0, 0, 0]);
    // A varint that never ends (more than 5 continuation bytes).
    let mut v9_endless = raw_header_v2(3, 9, 12);
    v9_endless.extend_from_slice(&[0xff; 12]);
    // Metadata v4 is not flexible: int32 lengths, -1 means null (all topics).
    let v4 = |cid: i32, len: i32| {
        let mut p = raw_header_v1(3, 4, cid);
        p.extend_from_slice(&len.to_be_bytes());
        p.extend_from_slice(&[1]);
        p
    };
    let cases: Vec<(&str, i16, i32, Vec<u8>)> = vec![
        ("v9 topics length 0x7ffffff0", 9, 11, v9_huge),
        ("v9 endless varint length", 9, 12, v9_endless),
        ("v4 topics length -5", 4, 13, v4(13, -5)),
        ("v4 topics length i32::MIN", 4, 14, v4(14, i32::MIN)),
        ("v4 topics length 0x7ffffff0", 4, 15, v4(15, 0x7fff_fff0)),
    ];
    for (what, version, cid, payload) in cases {
        let mut s = connect(&b);
        s.write_all(&frame(&payload)).expect("write");
        closed_or_sane_metadata(&mut s, version, cid, what);
        assert_serving(&b, what);
        assert_rss_bounded(&b, what);
    }
    assert_rdkafka_works(&b);
}

#[test]
fn truncated_request_does_not_block_the_broker() {
    let b = Broker::start();
    // The frame claims 100 bytes; only the header arrives. While that connection waits, others
    // are served; when it closes, the broker carries on.
    let mut s = connect(&b);
    let mut partial = 100i32.to_be_bytes().to_vec();
    partial.extend_from_slice(&raw_header_v1(18, 0, 1));
    s.write_all(&partial).expect("write");
    assert_serving(&b, "a truncated request on another connection");
    s.shutdown(Shutdown::Write).expect("shutdown");
    expect_closed(&mut s, "truncated request then EOF");
    drop(s);

    // Half a size prefix, then close.
    let mut s = connect(&b);
    s.write_all(&[0, 0]).expect("write");
    s.shutdown(Shutdown::Write).expect("shutdown");
    expect_closed(&mut s, "half a size prefix then EOF");

    // A frame too short to hold a request header.
    let mut s = connect(&b);
    s.write_all(&frame(&[0, 18, 0])).expect("write");
    expect_closed(&mut s, "3-byte frame");

    assert_serving(&b, "truncated requests");
    assert_rdkafka_works(&b);
}

#[test]
fn unknown_api_key_closes() {
    let b = Broker::start();
    for key in [9999i16, -1, i16::MAX, 200] {
        let mut s = connect(&b);
        s.write_all(&frame(&raw_header_v1(key, 0, 5))).expect("write");
        expect_closed(&mut s, &format!("api key {key}"));
        assert_serving(&b, &format!("api key {key}"));
    }
    assert_rdkafka_works(&b);
}

// ---------------------------------------------------------------------------------------------
// Versions
// ---------------------------------------------------------------------------------------------

#[test]
fn api_versions_with_unsupported_version_gets_v0_error_body() {
    let b = Broker::start();
    let mut s = connect(&b);
    // What a client from the future sends: a flexible header and a v3-style body.
    let mut payload = raw_header_v2(18, 99, 42);
    payload.extend_from_slice(&[5, b'f', b'u', b't', b'r', 4, b'9', b'.', b'9', 0]);
    s.write_all(&frame(&payload)).expect("write");
    let Reply::Frame(f) = read_reply(&mut s, "ApiVersions v99") else {
        panic!("ApiVersions v99: connection closed; Kafka answers UNSUPPORTED_VERSION (KIP-511)");
    };

    // v0 body behind a v0 header: correlation id, error code, [api key, min, max].
    assert!(f.len() >= 10, "response too short: {f:?}");
    assert_eq!(correlation_id_of(&f), 42, "correlation id");
    let error_code = i16::from_be_bytes([f[4], f[5]]);
    assert_eq!(error_code, UNSUPPORTED_VERSION, "error code");
    let count = i32::from_be_bytes(f[6..10].try_into().expect("4 bytes"));
    assert!(count >= 1, "the error response lists at least ApiVersions itself");
    assert_eq!(
        f.len(),
        10 + 6 * count as usize,
        "v0 body: exactly {count} entries and nothing after"
    );
    let entries: Vec<(i16, i16, i16)> = f[10..]
        .chunks_exact(6)
        .map(|c| {
            (
                i16::from_be_bytes([c[0], c[1]]),
                i16::from_be_bytes([c[2], c[3]]),
                i16::from_be_bytes([c[4], c[5]]),
            )
        })
        .collect();
    let (_, min, max) = *entries
        .iter()
        .find(|e| e.0 == ApiKey::ApiVersions as i16)
        .expect("ApiVersions range listed");
    assert_eq!(min, 0, "ApiVersions min version");
    assert!((3..99).contains(&max), "ApiVersions max version {max}");
    for (key, min, max) in &entries {
        assert!(min <= max, "api {key}: range {min}..{max}");
    }

    // The same connection still works for a version the broker knows.
    api_versions_ok(&mut s, 43, "ApiVersions v0 after v99 on the same connection");
    assert_rdkafka_works(&b);
}

fn produce_body(topic: &str, records: Bytes, acks: i16) -> RequestBody {
    RequestBody::Produce(ProduceRequest {
        transactional_id: None,
        acks,
        timeout_ms: 5000,
        topic_data: vec![TopicProduceData {
            name: topic.into(),
            partition_data: vec![PartitionProduceData {
                index: 0,
                records: Some(records),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    })
}

/// Per-partition error codes of a Produce or Fetch response.
fn partition_error_codes(body: &ResponseBody) -> Vec<i16> {
    match body {
        ResponseBody::Produce(p) => p
            .responses
            .iter()
            .flat_map(|t| t.partition_responses.iter().map(|p| p.error_code))
            .collect(),
        ResponseBody::Fetch(f) => f
            .responses
            .iter()
            .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
            .collect(),
        other => panic!("unexpected response {:?}", other.api_key()),
    }
}

#[test]
fn supported_api_at_unsupported_version_is_refused_cleanly() {
    let b = Broker::start();
    // Produce v1 (we serve 3–11) and Fetch v3 (we serve 4–17) are valid Kafka versions.
    let fetch = RequestBody::Fetch(FetchRequest {
        replica_id: -1,
        max_wait_ms: 10,
        max_bytes: 1 << 20,
        topics: vec![FetchTopic {
            topic: "t".into(),
            partitions: vec![FetchPartition {
                partition: 0,
                partition_max_bytes: 1 << 20,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    });
    let cases: Vec<(ApiKey, i16, BytesMut)> = vec![
        (
            ApiKey::Produce,
            1,
            request_bytes(
                ApiKey::Produce,
                1,
                21,
                &produce_body("t", Bytes::from_static(&[0; 40]), 1),
            ),
        ),
        (
            ApiKey::Produce,
            2,
            request_bytes(ApiKey::Produce, 2, 21, &produce_body("t", Bytes::new(), 1)),
        ),
        (ApiKey::Fetch, 3, request_bytes(ApiKey::Fetch, 3, 21, &fetch)),
    ];
    for (key, version, bytes) in cases {
        let what = format!("{} v{version}", key.name());
        let mut s = connect(&b);
        s.write_all(&bytes).expect("write");
        match read_reply(&mut s, &what) {
            Reply::Closed => {}
            Reply::Frame(f) => {
                let (cid, body) = decode_response(Bytes::from(f), key, version)
                    .unwrap_or_else(|e| panic!("{what}: undecodable response: {e}"));
                assert_eq!(cid, 21, "{what}: correlation id");
                let codes = partition_error_codes(&body);
                assert!(
                    !codes.is_empty() && codes.iter().all(|c| *c == UNSUPPORTED_VERSION),
                    "{what}: an answer must say UNSUPPORTED_VERSION for every partition; got {codes:?}"
                );
                // Answered, so the connection must still be usable.
                api_versions_ok(&mut s, 22, &format!("{what}, same connection"));
            }
        }
        assert_serving(&b, &what);
    }

    // Versions beyond anything Kafka defines for an API without a top-level error: closed.
    let mut s = connect(&b);
    s.write_all(&frame(&raw_header_v2(0, 42, 23))).expect("write");
    expect_closed(&mut s, "Produce v42");
    assert_serving(&b, "Produce v42");
    assert_rdkafka_works(&b);
}

// ---------------------------------------------------------------------------------------------
// Garbage
// ---------------------------------------------------------------------------------------------

/// Sends `bytes`, half-closes, and requires the broker to end the connection in time. Any
/// response frames that come back must carry `expected_cid` (when given). Returns how many
/// responses came back.
fn send_garbage(b: &Broker, bytes: &[u8], expected_cid: Option<i32>, what: &str) -> usize {
    let mut s = connect(b);
    write_lenient(&mut s, bytes);
    let _ = s.shutdown(Shutdown::Write);
    let mut responses = 0;
    while responses < 4 {
        match read_reply(&mut s, what) {
            Reply::Closed => return responses,
            Reply::Frame(f) => {
                if let Some(cid) = expected_cid {
                    assert_eq!(correlation_id_of(&f), cid, "{what}: response to a request never sent");
                }
                responses += 1;
            }
        }
    }
    panic!("{what}: more responses than requests");
}

#[test]
fn garbage_bytes_close_the_connection() {
    let b = Broker::start();
    let sizes = [1usize, 2, 3, 4, 5, 8, 13, 64, 500, 4096, 65_536];
    for seed in 1..=3u64 {
        for size in sizes {
            // Raw garbage: the size prefix is random too.
            let mut rng = Rng::new(seed * 1000 + size as u64);
            let what = format!("raw garbage seed {seed} size {size}");
            send_garbage(&b, &rng.bytes(size), None, &what);
            // A well-formed frame of garbage: the header is random.
            let what = format!("framed garbage seed {seed} size {size}");
            send_garbage(&b, &frame(&rng.bytes(size)), None, &what);
        }
        assert_serving(&b, &format!("garbage seed {seed}"));
    }

    // A valid request followed by garbage on the same connection: the valid one is answered,
    // then the connection ends.
    let mut rng = Rng::new(99);
    let mut bytes = request_bytes(
        ApiKey::ApiVersions,
        0,
        77,
        &RequestBody::ApiVersions(ApiVersionsRequest::default()),
    )
    .to_vec();
    bytes.extend_from_slice(&frame(&rng.bytes(100)));
    let answered = send_garbage(&b, &bytes, Some(77), "valid request then garbage");
    assert_eq!(answered, 1, "the valid request before the garbage must be answered");
    assert_rdkafka_works(&b);
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let b = Broker::start();
    let mut s = connect(&b);
    const N: i32 = 500;
    let mut bytes = Vec::new();
    for cid in 0..N {
        let version = (cid % 4) as i16;
        bytes.extend_from_slice(&request_bytes(
            ApiKey::ApiVersions,
            version,
            cid,
            &RequestBody::ApiVersions(ApiVersionsRequest::default()),
        ));
    }
    s.write_all(&bytes).expect("write pipelined requests");
    for cid in 0..N {
        let Reply::Frame(f) = read_reply(&mut s, "pipelined ApiVersions") else {
            panic!("closed after {cid} responses");
        };
        assert_eq!(correlation_id_of(&f), cid, "responses out of order");
    }
}

/// Every API and version the broker advertises, with a valid header and a random body: the
/// decoders must reject or accept without crashing and without answering another request.
#[test]
fn random_bodies_for_every_supported_api_never_crash() {
    let b = Broker::start();
    let mut probe = connect(&b);
    let req = request_bytes(
        ApiKey::ApiVersions,
        0,
        2,
        &RequestBody::ApiVersions(ApiVersionsRequest::default()),
    );
    probe.write_all(&req).expect("write");
    let Reply::Frame(f) = read_reply(&mut probe, "ApiVersions") else {
        panic!("ApiVersions: closed");
    };
    let Ok((_, ResponseBody::ApiVersions(versions))) = decode_response(Bytes::from(f), ApiKey::ApiVersions, 0) else {
        panic!("ApiVersions response");
    };
    let mut cid = 100;
    let (mut sent, mut answered_total) = (0usize, 0usize);
    for api in &versions.api_keys {
        let Some(key) = ApiKey::from_i16(api.api_key) else {
            panic!("advertised unknown api key {}", api.api_key);
        };
        for version in api.min_version..=api.max_version {
            for (i, size) in [0usize, 1, 2, 3, 5, 7, 12, 20, 40, 80, 150, 300, 1000]
                .into_iter()
                .enumerate()
            {
                let seed = (api.api_key as u64) << 32 | (version as u64) << 8 | i as u64;
                let mut rng = Rng::new(seed);
                let mut payload = if key.request_header_version(version) >= 2 {
                    raw_header_v2(api.api_key, version, cid)
                } else {
                    raw_header_v1(api.api_key, version, cid)
                };
                payload.extend_from_slice(&rng.bytes(size));
                let what = format!("{} v{version}, {size} random body bytes (seed {seed:#x})", key.name());
                let answered = send_garbage(&b, &frame(&payload), Some(cid), &what);
                assert!(answered <= 1, "{what}: {answered} responses to one request");
                sent += 1;
                answered_total += answered;
                cid += 1;
            }
        }
        assert_serving(&b, &format!("random {} bodies", key.name()));
    }
    eprintln!("{sent} random requests, {answered_total} answered, the rest closed");
    // Some random bodies are valid (an empty ApiVersions v0 body, for one): the decoders were
    // reached, not just the header check.
    assert!(answered_total > 0, "no random request was ever answered");
    assert!(sent > 1000, "only {sent} requests: ApiVersions advertised too little");
    assert_rss_bounded(&b, "random bodies");
    assert_rdkafka_works(&b);
}

/// Sends one request on `s` and decodes its response; the connection must answer.
fn call(s: &mut TcpStream, key: ApiKey, version: i16, cid: i32, body: &RequestBody, what: &str) -> ResponseBody {
    s.write_all(&request_bytes(key, version, cid, body))
        .unwrap_or_else(|e| panic!("{what}: write: {e}"));
    let Reply::Frame(f) = read_reply(s, what) else {
        panic!("{what}: connection closed instead of an answer");
    };
    let (got, body) =
        decode_response(Bytes::from(f), key, version).unwrap_or_else(|e| panic!("{what}: undecodable response: {e}"));
    assert_eq!(got, cid, "{what}: correlation id");
    body
}

fn create_topic_raw(s: &mut TcpStream, name: &str, partitions: i32, rf: i16, cid: i32) -> i16 {
    let body = RequestBody::CreateTopics(CreateTopicsRequest {
        topics: vec![CreatableTopic {
            name: name.into(),
            num_partitions: partitions,
            replication_factor: rf,
            ..Default::default()
        }],
        timeout_ms: 10_000,
        ..Default::default()
    });
    let what = format!("CreateTopics {name:.40} partitions {partitions} rf {rf}");
    let ResponseBody::CreateTopics(r) = call(s, ApiKey::CreateTopics, 5, cid, &body, &what) else {
        panic!("{what}: not a CreateTopics response");
    };
    r.topics[0].error_code
}

/// Everything the broker created under the test's temporary directory, which holds only the
/// data directory.
fn entries_beside_data_dir(b: &Broker) -> Vec<String> {
    let parent = b.data().parent().expect("data dir has a parent");
    let mut names: Vec<String> = std::fs::read_dir(parent)
        .expect("read temp dir")
        .map(|e| e.expect("dir entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn hostile_topic_names_are_refused_and_never_escape_the_data_dir() {
    let b = Broker::start();
    let before = entries_beside_data_dir(&b);
    let long_ok = "t".repeat(249);
    let too_long = "t".repeat(250);
    let hostile = [
        "..",
        ".",
        "../escape",
        "../../escape",
        "a/b",
        "/abs",
        "x\\y",
        "nul\0byte",
        "sp ace",
        "",
        too_long.as_str(),
    ];
    let mut s = connect(&b);
    let mut cid = 1;

    // Auto-creation through Metadata must refuse every one of them.
    let topics = hostile
        .iter()
        .map(|n| MetadataRequestTopic {
            name: Some((*n).into()),
            ..Default::default()
        })
        .collect();
    let req = RequestBody::Metadata(MetadataRequest {
        topics: Some(topics),
        allow_auto_topic_creation: true,
        ..Default::default()
    });
    let ResponseBody::Metadata(m) = call(&mut s, ApiKey::Metadata, 12, cid, &req, "Metadata hostile names") else {
        panic!("not a Metadata response");
    };
    for t in &m.topics {
        let name = t.name.as_deref().unwrap_or("<null>");
        assert!(
            t.error_code == INVALID_TOPIC_EXCEPTION || t.error_code == UNKNOWN_TOPIC_OR_PARTITION,
            "Metadata auto-create of {name:?}: error {} (want INVALID_TOPIC_EXCEPTION)",
            t.error_code
        );
        assert!(t.partitions.is_empty(), "{name:?} has partitions");
    }

    // So must CreateTopics, and Produce must not find them.
    for name in hostile {
        cid += 1;
        let code = create_topic_raw(&mut s, name, 1, 1, cid);
        assert_eq!(code, INVALID_TOPIC_EXCEPTION, "CreateTopics {name:?}");
        cid += 1;
        let (code, _) = produce_raw(&mut s, name, batch(&[b"v".to_vec()]), cid);
        assert!(
            code == UNKNOWN_TOPIC_OR_PARTITION || code == INVALID_TOPIC_EXCEPTION,
            "Produce to {name:?}: error {code}"
        );
    }
    // The longest legal name (249 characters) works.
    cid += 1;
    assert_eq!(
        create_topic_raw(&mut s, &long_ok, 1, 1, cid),
        0,
        "249-character topic name"
    );

    assert_eq!(
        entries_beside_data_dir(&b),
        before,
        "something was created outside the data directory"
    );
    for e in std::fs::read_dir(b.data()).expect("read data dir") {
        let name = e.expect("entry").file_name().to_string_lossy().into_owned();
        assert!(
            !name.starts_with("..") && !name.contains("escape") && !name.contains(' '),
            "suspicious entry {name:?} in the data directory"
        );
    }
    assert_serving(&b, "hostile topic names");
    assert_rdkafka_works(&b);
}

#[test]
fn absurd_partition_counts_and_replication_factors_are_refused() {
    let b = Broker::start();
    let mut s = connect(&b);
    let started = Instant::now();
    for (partitions, rf, want) in [
        (i32::MAX, 1, INVALID_PARTITIONS),
        (1_000_000_000, 1, INVALID_PARTITIONS),
        (0, 1, INVALID_PARTITIONS),
        (-5, 1, INVALID_PARTITIONS),
        (i32::MIN, 1, INVALID_PARTITIONS),
        (1, 3, INVALID_REPLICATION_FACTOR),
        (1, 0, INVALID_REPLICATION_FACTOR),
        (1, -7, INVALID_REPLICATION_FACTOR),
        (1, i16::MAX, INVALID_REPLICATION_FACTOR),
    ] {
        let name = format!("absurd-{}-{}", partitions.unsigned_abs(), rf.unsigned_abs());
        let code = create_topic_raw(&mut s, &name, partitions, rf, 1);
        assert_eq!(code, want, "CreateTopics partitions {partitions} rf {rf}");
    }
    // Growing an existing topic to an absurd count.
    assert_eq!(create_topic_raw(&mut s, "grow", 1, 1, 2), 0);
    for count in [i32::MAX, 1_000_000_000, 0, -1] {
        let body = RequestBody::CreatePartitions(CreatePartitionsRequest {
            topics: vec![CreatePartitionsTopic {
                name: "grow".into(),
                count,
                assignments: None,
                ..Default::default()
            }],
            timeout_ms: 10_000,
            ..Default::default()
        });
        let what = format!("CreatePartitions to {count}");
        let ResponseBody::CreatePartitions(r) = call(&mut s, ApiKey::CreatePartitions, 3, 3, &body, &what) else {
            panic!("{what}: not a CreatePartitions response");
        };
        assert_eq!(r.results[0].error_code, INVALID_PARTITIONS, "{what}");
    }
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "refusals took {:?}",
        started.elapsed()
    );
    let dirs = std::fs::read_dir(b.data()).expect("data dir").count();
    assert!(dirs < 20, "{dirs} entries in the data dir after refused creations");
    assert_serving(&b, "absurd partition counts");
    assert_rdkafka_works(&b);
}

// ---------------------------------------------------------------------------------------------
// Produce validation
// ---------------------------------------------------------------------------------------------

fn batch(values: &[Vec<u8>]) -> Bytes {
    let records: Vec<Record> = values
        .iter()
        .enumerate()
        .map(|(i, v)| Record {
            attributes: 0,
            timestamp_delta: 0,
            offset_delta: i as i32,
            key: Some(Bytes::from(format!("k{i}"))),
            value: Some(Bytes::from(v.clone())),
            headers: Vec::new(),
        })
        .collect();
    let params = BatchBuilderParams {
        base_timestamp: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_millis() as i64,
        ..Default::default()
    };
    encode_batch(&params, &records, Compression::None).expect("encode batch")
}

/// Produces `records` to partition 0 of `topic` with acks=-1 (Produce v9) and returns
/// `(error_code, base_offset)`.
fn produce_raw(s: &mut TcpStream, topic: &str, records: Bytes, cid: i32) -> (i16, i64) {
    s.write_all(&request_bytes(
        ApiKey::Produce,
        9,
        cid,
        &produce_body(topic, records, -1),
    ))
    .expect("write produce");
    let Reply::Frame(f) = read_reply(s, "produce") else {
        panic!("produce: connection closed instead of a per-partition error");
    };
    let (got_cid, body) = decode_response(Bytes::from(f), ApiKey::Produce, 9).expect("decode produce response");
    assert_eq!(got_cid, cid);
    let ResponseBody::Produce(r) = body else {
        panic!("not a Produce response");
    };
    let p = &r.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}

#[test]
fn produce_rejects_corrupt_crc_and_oversized_batches() {
    let b = Broker::start();
    let mut s = connect(&b);
    let topic = "validated";
    let create = RequestBody::CreateTopics(CreateTopicsRequest {
        topics: vec![CreatableTopic {
            name: topic.into(),
            num_partitions: 1,
            replication_factor: 1,
            configs: vec![CreatableTopicConfig {
                name: "max.message.bytes".into(),
                value: Some("10000".into()),
                ..Default::default()
            }],
            ..Default::default()
        }],
        timeout_ms: 10_000,
        ..Default::default()
    });
    s.write_all(&request_bytes(ApiKey::CreateTopics, 5, 1, &create))
        .expect("write");
    let Reply::Frame(f) = read_reply(&mut s, "CreateTopics") else {
        panic!("CreateTopics: closed");
    };
    let (_, body) = decode_response(Bytes::from(f), ApiKey::CreateTopics, 5).expect("decode CreateTopics");
    let ResponseBody::CreateTopics(created) = body else {
        panic!("not a CreateTopics response");
    };
    assert_eq!(
        created.topics[0].error_code, 0,
        "create topic: {:?}",
        created.topics[0].error_message
    );

    // A batch whose CRC does not match its contents.
    let good = batch(&[b"hello".to_vec(), b"world".to_vec()]);
    let mut corrupt = BytesMut::from(&good[..]);
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0xff;
    assert_eq!(
        produce_raw(&mut s, topic, corrupt.freeze(), 2).0,
        CORRUPT_MESSAGE,
        "corrupt CRC"
    );

    // The same batch intact is appended at offset 0: the corrupt one left nothing behind.
    assert_eq!(produce_raw(&mut s, topic, good.clone(), 3), (0, 0), "valid batch");

    // A batch over the topic's max.message.bytes (10000).
    let big = batch(&[vec![b'x'; 20_000]]);
    assert_eq!(
        produce_raw(&mut s, topic, big, 4).0,
        MESSAGE_TOO_LARGE,
        "oversized batch"
    );

    // A corrupt batch after a valid one in the same request is refused as a whole.
    let mut two = BytesMut::from(&good[..]);
    let mut bad_tail = BytesMut::from(&good[..]);
    let at = bad_tail.len() - 3;
    bad_tail[at] ^= 0x01;
    two.put_slice(&bad_tail);
    assert_eq!(
        produce_raw(&mut s, topic, two.freeze(), 5).0,
        CORRUPT_MESSAGE,
        "valid + corrupt batch"
    );

    // acks outside -1, 0 and 1.
    let body = produce_body(topic, good.clone(), 5);
    let ResponseBody::Produce(r) = call(&mut s, ApiKey::Produce, 9, 7, &body, "acks=5") else {
        panic!("not a Produce response");
    };
    assert_eq!(
        r.responses[0].partition_responses[0].error_code, INVALID_REQUIRED_ACKS,
        "acks=5"
    );

    // Still appending right after the first valid batch (2 records).
    assert_eq!(
        produce_raw(&mut s, topic, good, 6),
        (0, 2),
        "valid batch after rejections"
    );
    assert_serving(&b, "produce validation");
    assert_rdkafka_works(&b);
}
