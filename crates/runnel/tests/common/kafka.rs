//! A small typed Kafka client for end-to-end tests: sends one request of a generated type at a
//! chosen version over a blocking `TcpStream` and decodes the matching response.
//!
//! It must never hang a test: every socket has read and write timeouts, and a response frame
//! size is checked against a fixed limit before anything is allocated for it. Failures panic
//! with the API, version and what went wrong, which is what a test wants.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use runnel_protocol::frame::{decode_response, encode_request, RequestHeader};
use runnel_protocol::generated::*;

/// Default socket timeout; long polls pass their own with [`Client::set_read_timeout`].
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest response frame accepted (guards the test's own allocation).
const MAX_RESPONSE_BYTES: usize = 64 << 20;

/// A request type, the API it belongs to and its response type.
pub trait Api: Sized {
    const KEY: ApiKey;
    type Response;
    fn into_body(self) -> RequestBody;
    fn from_body(body: ResponseBody) -> Option<Self::Response>;
}

/// Declares request types the client can send. Test files add the APIs they alone use with
/// `kafka::api! { … }` (each type once per test binary), so the list here stays the data path.
macro_rules! api {
    ($($variant:ident: $req:path => $resp:path;)*) => {$(
        impl $crate::kafka::Api for $req {
            const KEY: runnel_protocol::generated::ApiKey = runnel_protocol::generated::ApiKey::$variant;
            type Response = $resp;
            fn into_body(self) -> runnel_protocol::generated::RequestBody {
                runnel_protocol::generated::RequestBody::$variant(self)
            }
            fn from_body(body: runnel_protocol::generated::ResponseBody) -> Option<$resp> {
                match body {
                    runnel_protocol::generated::ResponseBody::$variant(r) => Some(r),
                    _ => None,
                }
            }
        }
    )*};
}
#[allow(unused_imports)]
pub(crate) use api;

api! {
    ApiVersions: api_versions_request::ApiVersionsRequest => api_versions_response::ApiVersionsResponse;
    Metadata: metadata_request::MetadataRequest => metadata_response::MetadataResponse;
    Produce: produce_request::ProduceRequest => produce_response::ProduceResponse;
    Fetch: fetch_request::FetchRequest => fetch_response::FetchResponse;
    ListOffsets: list_offsets_request::ListOffsetsRequest => list_offsets_response::ListOffsetsResponse;
    OffsetForLeaderEpoch: offset_for_leader_epoch_request::OffsetForLeaderEpochRequest
        => offset_for_leader_epoch_response::OffsetForLeaderEpochResponse;
    CreateTopics: create_topics_request::CreateTopicsRequest => create_topics_response::CreateTopicsResponse;
    DeleteTopics: delete_topics_request::DeleteTopicsRequest => delete_topics_response::DeleteTopicsResponse;
    DeleteRecords: delete_records_request::DeleteRecordsRequest => delete_records_response::DeleteRecordsResponse;
    DescribeConfigs: describe_configs_request::DescribeConfigsRequest
        => describe_configs_response::DescribeConfigsResponse;
    AlterConfigs: alter_configs_request::AlterConfigsRequest => alter_configs_response::AlterConfigsResponse;
    DescribeLogDirs: describe_log_dirs_request::DescribeLogDirsRequest
        => describe_log_dirs_response::DescribeLogDirsResponse;
    CreatePartitions: create_partitions_request::CreatePartitionsRequest
        => create_partitions_response::CreatePartitionsResponse;
    IncrementalAlterConfigs: incremental_alter_configs_request::IncrementalAlterConfigsRequest
        => incremental_alter_configs_response::IncrementalAlterConfigsResponse;
    DescribeCluster: describe_cluster_request::DescribeClusterRequest
        => describe_cluster_response::DescribeClusterResponse;
    DescribeTopicPartitions: describe_topic_partitions_request::DescribeTopicPartitionsRequest
        => describe_topic_partitions_response::DescribeTopicPartitionsResponse;
}

/// One connection to the broker.
pub struct Client {
    stream: TcpStream,
    next_correlation_id: i32,
}

impl Client {
    pub fn connect(addr: &str) -> Client {
        let stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
        stream.set_read_timeout(Some(IO_TIMEOUT)).expect("read timeout");
        stream.set_write_timeout(Some(IO_TIMEOUT)).expect("write timeout");
        stream.set_nodelay(true).expect("nodelay");
        Client {
            stream,
            next_correlation_id: 1,
        }
    }

    /// The local address of this connection's peer (the listener we connected to).
    pub fn peer_port(&self) -> u16 {
        self.stream.peer_addr().expect("peer addr").port()
    }

    pub fn set_read_timeout(&self, timeout: Duration) {
        self.stream.set_read_timeout(Some(timeout)).expect("read timeout");
    }

    /// Sends `req` at `version` and returns the decoded response.
    pub fn send<R: Api>(&mut self, version: i16, req: R) -> R::Response {
        let cid = self.write_request(version, req);
        let frame = self.read_frame(R::KEY, version);
        let (got_cid, body) = decode_response(frame, R::KEY, version)
            .unwrap_or_else(|e| panic!("{} v{version}: undecodable response: {e}", R::KEY.name()));
        assert_eq!(got_cid, cid, "{} v{version}: correlation id", R::KEY.name());
        R::from_body(body).unwrap_or_else(|| panic!("{} v{version}: wrong response type", R::KEY.name()))
    }

    /// Sends `req` and returns the whole response frame (without its size prefix), undecoded.
    pub fn send_frame<R: Api>(&mut self, version: i16, req: R, key: ApiKey) -> Bytes {
        assert_eq!(key, R::KEY);
        self.write_request(version, req);
        self.read_frame(R::KEY, version)
    }

    /// Sends `req` without waiting for a response (Produce with acks=0).
    pub fn send_only<R: Api>(&mut self, version: i16, req: R) {
        self.write_request(version, req);
    }

    /// Sends `req` and returns its correlation id; `receive` reads the response later, so
    /// several requests can be in flight on the connection.
    pub fn send_pipelined<R: Api>(&mut self, version: i16, req: R) -> i32 {
        self.write_request(version, req)
    }

    /// Reads the next response, which must be for `R` with correlation id `cid`.
    pub fn receive<R: Api>(&mut self, version: i16, cid: i32) -> R::Response {
        let frame = self.read_frame(R::KEY, version);
        let (got_cid, body) = decode_response(frame, R::KEY, version)
            .unwrap_or_else(|e| panic!("{} v{version}: undecodable response: {e}", R::KEY.name()));
        assert_eq!(got_cid, cid, "{} v{version}: responses out of order", R::KEY.name());
        R::from_body(body).unwrap_or_else(|| panic!("{} v{version}: wrong response type", R::KEY.name()))
    }

    /// Encodes a request with the next correlation id without sending it, so that several go
    /// out in one write (`write_all`).
    pub fn encode<R: Api>(&mut self, version: i16, req: R) -> (i32, BytesMut) {
        let cid = self.next_correlation_id;
        self.next_correlation_id += 1;
        let header = RequestHeader {
            api_key: R::KEY as i16,
            api_version: version,
            correlation_id: cid,
            client_id: Some("admin-apis-test".into()),
            unknown_tagged_fields: Vec::new(),
        };
        let mut buf = BytesMut::new();
        encode_request(&mut buf, &header, &req.into_body())
            .unwrap_or_else(|e| panic!("{} v{version}: cannot encode request: {e}", R::KEY.name()));
        (cid, buf)
    }

    pub fn write_all(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap_or_else(|e| panic!("write: {e}"));
    }

    fn write_request<R: Api>(&mut self, version: i16, req: R) -> i32 {
        let (cid, buf) = self.encode(version, req);
        self.stream
            .write_all(&buf)
            .unwrap_or_else(|e| panic!("{} v{version}: write: {e}", R::KEY.name()));
        cid
    }

    fn read_frame(&mut self, key: ApiKey, version: i16) -> Bytes {
        let mut prefix = [0u8; 4];
        self.stream
            .read_exact(&mut prefix)
            .unwrap_or_else(|e| panic!("{} v{version}: no response: {e}", key.name()));
        let size = i32::from_be_bytes(prefix);
        assert!(
            size >= 4 && (size as usize) <= MAX_RESPONSE_BYTES,
            "{} v{version}: implausible response size {size}",
            key.name()
        );
        let mut frame = vec![0u8; size as usize];
        self.stream
            .read_exact(&mut frame)
            .unwrap_or_else(|e| panic!("{} v{version}: truncated response: {e}", key.name()));
        Bytes::from(frame)
    }
}
