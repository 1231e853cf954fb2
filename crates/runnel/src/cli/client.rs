//! A small blocking Kafka client for the admin CLI: bootstrap, version negotiation through
//! ApiVersions, Metadata, and routing of requests to partition leaders and group coordinators.
//!
//! It speaks only standard Kafka APIs, each at the highest version both this build and the broker
//! support, so it works against Apache Kafka as well as Runnel.
//!
//! Must never: hang (every socket has connect, read and write timeouts), panic on a response, or
//! allocate for a response frame before checking its size against [`RESPONSE_BYTES_MAX`].

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use runnel_protocol::codec::Uuid;
use runnel_protocol::frame::{decode_response, encode_request, RequestHeader};
use runnel_protocol::generated::*;
use runnel_protocol::ErrorCode;

use super::CliError;

/// Largest response frame accepted (a fetch is capped far below this by its `max_bytes`).
const RESPONSE_BYTES_MAX: usize = 256 << 20;
const CLIENT_ID: &str = "runnel-cli";
/// ApiVersions version sent first; an older broker answers UNSUPPORTED_VERSION in v0 format.
const API_VERSIONS_FIRST: i16 = 3;

/// A request type, the API it belongs to and its response type.
pub trait Api: Sized {
    const KEY: ApiKey;
    type Response;
    fn into_body(self) -> RequestBody;
    fn from_body(body: ResponseBody) -> Option<Self::Response>;
}

macro_rules! api {
    ($($variant:ident: $req:path => $resp:path;)*) => {$(
        impl Api for $req {
            const KEY: ApiKey = ApiKey::$variant;
            type Response = $resp;
            fn into_body(self) -> RequestBody {
                RequestBody::$variant(self)
            }
            fn from_body(body: ResponseBody) -> Option<$resp> {
                match body {
                    ResponseBody::$variant(r) => Some(r),
                    _ => None,
                }
            }
        }
    )*};
}

api! {
    ApiVersions: api_versions_request::ApiVersionsRequest => api_versions_response::ApiVersionsResponse;
    Metadata: metadata_request::MetadataRequest => metadata_response::MetadataResponse;
    Produce: produce_request::ProduceRequest => produce_response::ProduceResponse;
    Fetch: fetch_request::FetchRequest => fetch_response::FetchResponse;
    ListOffsets: list_offsets_request::ListOffsetsRequest => list_offsets_response::ListOffsetsResponse;
    CreateTopics: create_topics_request::CreateTopicsRequest => create_topics_response::CreateTopicsResponse;
    DeleteTopics: delete_topics_request::DeleteTopicsRequest => delete_topics_response::DeleteTopicsResponse;
    DescribeConfigs: describe_configs_request::DescribeConfigsRequest
        => describe_configs_response::DescribeConfigsResponse;
    CreatePartitions: create_partitions_request::CreatePartitionsRequest
        => create_partitions_response::CreatePartitionsResponse;
    IncrementalAlterConfigs: incremental_alter_configs_request::IncrementalAlterConfigsRequest
        => incremental_alter_configs_response::IncrementalAlterConfigsResponse;
    DescribeCluster: describe_cluster_request::DescribeClusterRequest
        => describe_cluster_response::DescribeClusterResponse;
    FindCoordinator: find_coordinator_request::FindCoordinatorRequest
        => find_coordinator_response::FindCoordinatorResponse;
    OffsetCommit: offset_commit_request::OffsetCommitRequest => offset_commit_response::OffsetCommitResponse;
    OffsetFetch: offset_fetch_request::OffsetFetchRequest => offset_fetch_response::OffsetFetchResponse;
    ListGroups: list_groups_request::ListGroupsRequest => list_groups_response::ListGroupsResponse;
    DescribeGroups: describe_groups_request::DescribeGroupsRequest
        => describe_groups_response::DescribeGroupsResponse;
    DeleteGroups: delete_groups_request::DeleteGroupsRequest => delete_groups_response::DeleteGroupsResponse;
    ConsumerGroupDescribe: consumer_group_describe_request::ConsumerGroupDescribeRequest
        => consumer_group_describe_response::ConsumerGroupDescribeResponse;
}

/// A protocol error code as a readable error (`UNKNOWN_TOPIC_OR_PARTITION (3)`), with the
/// broker's message when it sent one.
pub fn error_text(code: i16, message: Option<&str>) -> String {
    let name = ErrorCode(code).name();
    match message.filter(|m| !m.is_empty()) {
        Some(m) => format!("{name} ({code}): {m}"),
        None => format!("{name} ({code})"),
    }
}

/// One connection to one broker, with the version ranges it advertised.
pub struct Conn {
    addr: String,
    stream: TcpStream,
    next_correlation_id: i32,
    versions: HashMap<i16, (i16, i16)>,
}

impl Conn {
    /// Connects and negotiates versions with ApiVersions.
    pub fn connect(addr: &str, timeout: Duration) -> Result<Conn, CliError> {
        let stream = open(addr, timeout)?;
        let mut conn = Conn {
            addr: addr.to_string(),
            stream,
            next_correlation_id: 1,
            versions: HashMap::new(),
        };
        conn.negotiate()?;
        Ok(conn)
    }

    fn negotiate(&mut self) -> Result<(), CliError> {
        let req = api_versions_request::ApiVersionsRequest {
            client_software_name: "runnel-cli".into(),
            client_software_version: env!("CARGO_PKG_VERSION").into(),
            ..Default::default()
        };
        let cid = self.write_request(API_VERSIONS_FIRST, req)?;
        let frame = self.read_frame(ApiKey::ApiVersions)?;
        // A broker that does not know v3 answers UNSUPPORTED_VERSION with a v0 body (KIP-511).
        let as_v3 = decode_response(frame.clone(), ApiKey::ApiVersions, API_VERSIONS_FIRST)
            .ok()
            .and_then(|(got, body)| Some((got, api_versions_request::ApiVersionsRequest::from_body(body)?)))
            .filter(|(_, r)| r.error_code != ErrorCode::UNSUPPORTED_VERSION.code());
        let decoded = match as_v3 {
            Some(d) => d,
            None => {
                let (got, body) = decode_response(frame, ApiKey::ApiVersions, 0)
                    .map_err(|e| self.fail(ApiKey::ApiVersions, format!("undecodable response: {e}")))?;
                let resp = api_versions_request::ApiVersionsRequest::from_body(body)
                    .ok_or_else(|| self.fail(ApiKey::ApiVersions, "wrong response type".into()))?;
                (got, resp)
            }
        };
        let (got, resp) = decoded;
        if got != cid {
            return Err(self.fail(ApiKey::ApiVersions, "correlation id mismatch".into()));
        }
        if resp.error_code != 0 && resp.api_keys.is_empty() {
            return Err(self.fail(ApiKey::ApiVersions, error_text(resp.error_code, None)));
        }
        self.versions = resp
            .api_keys
            .iter()
            .map(|k| (k.api_key, (k.min_version, k.max_version)))
            .collect();
        Ok(())
    }

    /// The highest version of `key` that both sides support, at most `cap`.
    pub fn version_capped(&self, key: ApiKey, cap: i16) -> Result<i16, CliError> {
        let (ours_min, ours_max) = key.valid_versions();
        let Some(&(theirs_min, theirs_max)) = self.versions.get(&(key as i16)) else {
            return Err(CliError::new(format!(
                "broker {} does not support {}",
                self.addr,
                key.name()
            )));
        };
        let max = ours_max.min(theirs_max).min(cap);
        let min = ours_min.max(theirs_min);
        if max < min {
            return Err(CliError::new(format!(
                "broker {} supports {} v{theirs_min}-v{theirs_max}, this client v{ours_min}-v{}",
                self.addr,
                key.name(),
                ours_max.min(cap)
            )));
        }
        Ok(max)
    }

    pub fn supports(&self, key: ApiKey) -> bool {
        self.version_capped(key, i16::MAX).is_ok()
    }

    /// Sends `req` at the highest common version; returns that version and the response.
    pub fn send<R: Api>(&mut self, req: R) -> Result<(i16, R::Response), CliError> {
        self.send_capped(req, i16::MAX)
    }

    /// As [`Conn::send`], at most at version `cap` (for callers that need a feature boundary).
    pub fn send_capped<R: Api>(&mut self, req: R, cap: i16) -> Result<(i16, R::Response), CliError> {
        let version = self.version_capped(R::KEY, cap)?;
        Ok((version, self.send_at(version, req)?))
    }

    /// Sends `req` at `version` and decodes the response.
    pub fn send_at<R: Api>(&mut self, version: i16, req: R) -> Result<R::Response, CliError> {
        let cid = self.write_request(version, req)?;
        let frame = self.read_frame(R::KEY)?;
        let (got, body) = decode_response(frame, R::KEY, version)
            .map_err(|e| self.fail(R::KEY, format!("undecodable v{version} response: {e}")))?;
        if got != cid {
            return Err(self.fail(R::KEY, "correlation id mismatch".into()));
        }
        R::from_body(body).ok_or_else(|| self.fail(R::KEY, "wrong response type".into()))
    }

    /// Sends `req` without reading a response (Produce with acks=0).
    pub fn send_only<R: Api>(&mut self, version: i16, req: R) -> Result<(), CliError> {
        self.write_request(version, req).map(|_| ())
    }

    fn fail(&self, key: ApiKey, what: String) -> CliError {
        CliError::new(format!("{} to {}: {what}", key.name(), self.addr))
    }

    fn write_request<R: Api>(&mut self, version: i16, req: R) -> Result<i32, CliError> {
        let cid = self.next_correlation_id;
        self.next_correlation_id = self.next_correlation_id.wrapping_add(1);
        let header = RequestHeader {
            api_key: R::KEY as i16,
            api_version: version,
            correlation_id: cid,
            client_id: Some(CLIENT_ID.into()),
            unknown_tagged_fields: Vec::new(),
        };
        let mut buf = BytesMut::new();
        encode_request(&mut buf, &header, &req.into_body())
            .map_err(|e| self.fail(R::KEY, format!("cannot encode v{version} request: {e}")))?;
        self.stream
            .write_all(&buf)
            .map_err(|e| self.fail(R::KEY, format!("write: {e}")))?;
        Ok(cid)
    }

    fn read_frame(&mut self, key: ApiKey) -> Result<Bytes, CliError> {
        let mut prefix = [0u8; 4];
        self.stream
            .read_exact(&mut prefix)
            .map_err(|e| self.fail(key, format!("no response: {e}")))?;
        let size = i32::from_be_bytes(prefix);
        if size < 4 || size as usize > RESPONSE_BYTES_MAX {
            return Err(self.fail(key, format!("implausible response size {size}")));
        }
        let mut frame = vec![0u8; size as usize];
        self.stream
            .read_exact(&mut frame)
            .map_err(|e| self.fail(key, format!("truncated response: {e}")))?;
        Ok(Bytes::from(frame))
    }
}

fn open(addr: &str, timeout: Duration) -> Result<TcpStream, CliError> {
    let addrs = addr
        .to_socket_addrs()
        .map_err(|e| CliError::new(format!("cannot resolve {addr}: {e}")))?;
    let mut last = None;
    for a in addrs {
        match TcpStream::connect_timeout(&a, timeout) {
            Ok(s) => {
                let set = s
                    .set_read_timeout(Some(timeout))
                    .and_then(|_| s.set_write_timeout(Some(timeout)))
                    .and_then(|_| s.set_nodelay(true));
                set.map_err(|e| CliError::new(format!("{addr}: {e}")))?;
                return Ok(s);
            }
            Err(e) => last = Some(e),
        }
    }
    let why = last.map_or("no address".to_string(), |e| e.to_string());
    Err(CliError::new(format!("cannot connect to {addr}: {why}")))
}

/// What Metadata says about one partition.
#[derive(Clone, Debug)]
pub struct PartitionInfo {
    pub partition: i32,
    pub leader: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    pub offline: Vec<i32>,
    pub error_code: i16,
}

/// What Metadata says about one topic.
#[derive(Clone, Debug)]
pub struct TopicInfo {
    pub name: String,
    pub id: Uuid,
    pub internal: bool,
    pub error_code: i16,
    pub partitions: Vec<PartitionInfo>,
}

/// The cluster as Metadata describes it.
#[derive(Clone, Debug, Default)]
pub struct ClusterMetadata {
    pub cluster_id: Option<String>,
    pub controller_id: i32,
    /// node id → `host:port`, sorted by id.
    pub brokers: Vec<(i32, String)>,
    pub topics: Vec<TopicInfo>,
}

impl ClusterMetadata {
    pub fn topic(&self, name: &str) -> Option<&TopicInfo> {
        self.topics.iter().find(|t| t.name == name)
    }
}

/// A client for one cluster: one bootstrap connection plus one per broker it talks to.
pub struct Client {
    bootstrap: Conn,
    timeout: Duration,
    brokers: HashMap<i32, String>,
    nodes: HashMap<i32, Conn>,
}

impl Client {
    /// Connects to the first reachable address of a comma-separated bootstrap list.
    pub fn connect(bootstrap: &str, timeout: Duration) -> Result<Client, CliError> {
        let mut last = None;
        for addr in bootstrap.split(',').map(str::trim).filter(|a| !a.is_empty()) {
            match Conn::connect(addr, timeout) {
                Ok(conn) => {
                    return Ok(Client {
                        bootstrap: conn,
                        timeout,
                        brokers: HashMap::new(),
                        nodes: HashMap::new(),
                    })
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| CliError::new("no bootstrap server given")))
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The bootstrap connection (any broker can answer cluster-wide admin requests).
    pub fn any(&mut self) -> &mut Conn {
        &mut self.bootstrap
    }

    /// Metadata for `topics` (all topics when `None`), never auto-creating them.
    pub fn metadata(&mut self, topics: Option<&[String]>) -> Result<ClusterMetadata, CliError> {
        let version = self.bootstrap.version_capped(ApiKey::Metadata, i16::MAX)?;
        let requested = topics.map(|names| {
            names
                .iter()
                .map(|n| metadata_request::MetadataRequestTopic {
                    name: Some(n.clone()),
                    ..Default::default()
                })
                .collect()
        });
        // v0 has no null ("all topics") and means all with an empty list.
        let requested = match (version, requested) {
            (0, None) => Some(Vec::new()),
            (_, r) => r,
        };
        let req = metadata_request::MetadataRequest {
            topics: requested,
            allow_auto_topic_creation: false,
            ..Default::default()
        };
        let resp = self.bootstrap.send_at(version, req)?;
        let mut brokers: Vec<(i32, String)> = resp
            .brokers
            .iter()
            .map(|b| (b.node_id, format!("{}:{}", b.host, b.port)))
            .collect();
        brokers.sort();
        self.brokers = brokers.iter().cloned().collect();
        let mut topics: Vec<TopicInfo> = resp.topics.into_iter().map(topic_info).collect();
        topics.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(ClusterMetadata {
            cluster_id: resp.cluster_id,
            controller_id: resp.controller_id,
            brokers,
            topics,
        })
    }

    /// The connection to broker `node_id` (known from the last Metadata).
    pub fn node(&mut self, node_id: i32) -> Result<&mut Conn, CliError> {
        if !self.nodes.contains_key(&node_id) {
            let Some(addr) = self.brokers.get(&node_id).cloned() else {
                return Err(CliError::new(format!(
                    "broker {node_id} is not in the cluster metadata"
                )));
            };
            let conn = Conn::connect(&addr, self.timeout)?;
            self.nodes.insert(node_id, conn);
        }
        self.nodes
            .get_mut(&node_id)
            .ok_or_else(|| CliError::new(format!("no connection to broker {node_id}")))
    }

    /// The coordinator of consumer group `group`.
    pub fn coordinator(&mut self, group: &str) -> Result<&mut Conn, CliError> {
        let req = find_coordinator_request::FindCoordinatorRequest {
            key: group.to_string(),
            key_type: 0,
            coordinator_keys: vec![group.to_string()],
            ..Default::default()
        };
        let (version, resp) = self.bootstrap.send(req)?;
        let (node_id, host, port, code, message) = if version >= 4 {
            let Some(c) = resp.coordinators.into_iter().next() else {
                return Err(CliError::new(format!("no coordinator returned for group {group}")));
            };
            (c.node_id, c.host, c.port, c.error_code, c.error_message)
        } else {
            (resp.node_id, resp.host, resp.port, resp.error_code, resp.error_message)
        };
        if code != 0 {
            let text = error_text(code, message.as_deref());
            return Err(CliError::new(format!(
                "cannot find the coordinator of group {group}: {text}"
            )));
        }
        self.brokers.insert(node_id, format!("{host}:{port}"));
        self.node(node_id)
    }
}

fn topic_info(t: metadata_response::MetadataResponseTopic) -> TopicInfo {
    let mut partitions: Vec<PartitionInfo> = t
        .partitions
        .into_iter()
        .map(|p| PartitionInfo {
            partition: p.partition_index,
            leader: p.leader_id,
            replicas: p.replica_nodes,
            isr: p.isr_nodes,
            offline: p.offline_replicas,
            error_code: p.error_code,
        })
        .collect();
    partitions.sort_by_key(|p| p.partition);
    TopicInfo {
        name: t.name.unwrap_or_default(),
        id: t.topic_id,
        internal: t.is_internal,
        error_code: t.error_code,
        partitions,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use runnel_protocol::frame::{decode_request, encode_response};
    use std::net::TcpListener;

    /// A one-connection broker that answers the first request (ApiVersions v3) the way an
    /// old broker does: UNSUPPORTED_VERSION with a v0 body listing what it supports.
    fn old_broker() -> String {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        std::thread::spawn(move || {
            let Ok((mut s, _)) = listener.accept() else { return };
            let mut prefix = [0u8; 4];
            if s.read_exact(&mut prefix).is_err() {
                return;
            }
            let mut frame = vec![0u8; i32::from_be_bytes(prefix) as usize];
            if s.read_exact(&mut frame).is_err() {
                return;
            }
            let Ok((header, _)) = decode_request(Bytes::from(frame)) else {
                return;
            };
            let body = ResponseBody::ApiVersions(api_versions_response::ApiVersionsResponse {
                error_code: ErrorCode::UNSUPPORTED_VERSION.code(),
                api_keys: vec![
                    api_versions_response::ApiVersion {
                        api_key: ApiKey::ApiVersions as i16,
                        min_version: 0,
                        max_version: 2,
                        ..Default::default()
                    },
                    api_versions_response::ApiVersion {
                        api_key: ApiKey::Metadata as i16,
                        min_version: 0,
                        max_version: 5,
                        ..Default::default()
                    },
                ],
                ..Default::default()
            });
            let mut out = BytesMut::new();
            if encode_response(&mut out, header.correlation_id, ApiKey::ApiVersions, 0, &body).is_ok() {
                let _ = s.write_all(&out);
            }
            // Keep the socket open until the client is done.
            let _ = s.read(&mut [0u8; 1]);
        });
        addr
    }

    #[test]
    fn versions_fall_back_to_a_v0_api_versions_answer_and_cap_at_the_broker() {
        let conn = Conn::connect(&old_broker(), Duration::from_secs(5)).expect("connect");
        assert_eq!(conn.version_capped(ApiKey::Metadata, i16::MAX).ok(), Some(5));
        assert_eq!(conn.version_capped(ApiKey::Metadata, 3).ok(), Some(3));
        assert!(!conn.supports(ApiKey::Fetch));
    }

    #[test]
    fn an_unreachable_broker_is_an_error_not_a_hang() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        drop(listener);
        let err = Client::connect(&addr, Duration::from_secs(2)).err().expect("refused");
        assert!(err.message.contains("cannot connect"), "{}", err.message);
    }
}
