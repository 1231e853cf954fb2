//! `--client raw`: Produce and Fetch requests written straight to a socket with the broker's
//! own codec, so the client costs almost nothing per record and what is measured is the broker.
//!
//! Owns: the raw producer and the raw fetcher. Each producer thread opens one connection to
//! the bootstrap broker (on a single-node broker, the leader of every partition) and sends
//! Produce requests of one v2 batch each (uncompressed, CRC computed), to the partitions in
//! turn, keeping at most `in_flight` requests outstanding, as
//! `max.in.flight.requests.per.connection` does. A reader thread per connection takes the
//! responses in order and counts each request's records as acked (error code 0) or failed.
//! - Throughput (`produce`): one request per partition is encoded up front and resent with a
//!   new correlation id. That is valid: a batch without a producer id has no sequence to check,
//!   and the broker assigns offsets itself. It validates, assigns offsets and appends every
//!   batch as it would a client's.
//! - Latency (`latency`): the requests are paced and each carries the records due, with the
//!   send time in the first 8 value bytes (as the librdkafka path writes it). One fetcher
//!   long-polls every partition from its high watermark and takes the receive time once per
//!   response, when it has been read.
//!
//! Not a Kafka client: no metadata, retries, idempotence or fetch sessions. Any error is counted
//! and the first one reported. librdkafka's figures stay the headline (they are what users
//! see); these tell how much of a limit is the broker's.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use runnel_protocol::frame::{decode_response, encode_request, RequestHeader};
use runnel_protocol::generated::fetch_request::{FetchPartition, FetchRequest, FetchTopic};
use runnel_protocol::generated::produce_request::{PartitionProduceData, ProduceRequest, TopicProduceData};
use runnel_protocol::generated::{ApiKey, RequestBody, ResponseBody};
use runnel_protocol::records::{batches, decode_records, encode_batch, BatchBuilderParams, Compression, Record};
use runnel_protocol::ErrorCode;

use crate::kafka::wall_ns;
use crate::latency::{measure, LatencyOutcome, Received, IDLE_LIMIT};
use crate::produce::{merge, share_of, ProduceOutcome, WorkerOutcome};
use crate::report::new_ns_histogram;
use crate::Result;

/// Produce v9: the first flexible version, topics by name (Kafka 4 still accepts it).
const PRODUCE_VERSION: i16 = 9;
/// Fetch v12: the last version with topics by name.
const FETCH_VERSION: i16 = 12;
/// Where the correlation id sits in an encoded request: after the size, api key and version.
const CORRELATION_ID_AT: usize = 8;
/// A broker that answers nothing for this long is reported, rather than waited on forever.
const RESPONSE_LIMIT: Duration = Duration::from_secs(60);
/// Responses larger than this are not answers to our requests.
const RESPONSE_MAX_BYTES: usize = 64 << 20;
/// A fetch waits at most this long for records; short, so the end of a run is seen promptly.
const FETCH_MAX_WAIT_MS: i32 = 100;
const FETCH_PARTITION_MAX_BYTES: i32 = 1 << 20;
/// A paced producer that is ahead sleeps, but never for less than this (a shorter sleep costs
/// a timer wake-up for a handful of records).
const MIN_SLEEP: Duration = Duration::from_micros(50);

/// What the raw producers send.
#[derive(Clone, Debug)]
pub struct RawSpec {
    pub topic: String,
    /// In total over the producers; rounded up to whole batches per producer when unpaced.
    pub records: u64,
    pub record_size: usize,
    /// Records per request at most (all of them when unpaced).
    pub batch_records: u64,
    pub partitions: i32,
    pub producers: usize,
    /// 1 or -1 (all); with 0 the broker would send no response to count.
    pub acks: i16,
    pub in_flight: usize,
    /// Write the send time into each record (requests are then encoded as they go); without
    /// it the same bytes are resent.
    pub stamp: bool,
    /// Records per second over all producers when stamping; 0: as fast as possible.
    pub rate_per_s: f64,
    /// Acks of requests sent this early in the run are counted but kept out of the histogram.
    pub warmup: Duration,
}

/// Maps `--acks` to the wire value; 0 is refused (nothing would be acknowledged to count).
pub fn acks_value(acks: &str) -> Result<i16> {
    match acks {
        "1" => Ok(1),
        "all" | "-1" => Ok(-1),
        other => Err(format!("--client raw needs --acks 1 or all, not {other}")),
    }
}

/// Runs the producers to completion against `bootstrap` (host:port). `sent` counts records
/// as they go out (for the fetcher, which needs to know how many to expect).
pub fn produce(bootstrap: &str, spec: &RawSpec, sent: &AtomicU64) -> Result<ProduceOutcome> {
    let producers = spec.producers.max(1) as u64;
    let batch_records = spec.batch_records.max(1);
    let cycle: Vec<Encoded> = if spec.stamp {
        Vec::new()
    } else {
        (0..spec.partitions.max(1))
            .map(|p| Encoded::new(spec, p, batch_records, None))
            .collect::<Result<_>>()?
    };
    let start = Instant::now();
    let results: Vec<Result<WorkerOutcome>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..producers)
            .map(|w| {
                let share = share_of(spec.records, producers, w);
                let cycle = &cycle;
                s.spawn(move || {
                    let source: Box<dyn Source + '_> = if spec.stamp {
                        Box::new(Stamped::new(
                            spec,
                            w,
                            share,
                            spec.rate_per_s / producers as f64,
                            start,
                            sent,
                        ))
                    } else {
                        Box::new(Cycle::new(cycle, w, share.div_ceil(batch_records), sent))
                    };
                    connection(bootstrap, source, spec.in_flight.max(1), start, start + spec.warmup)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err("raw producer thread panicked".into())))
            .collect()
    });
    merge(results, start)
}

/// End-to-end latency with raw clients: the paced producers of `spec`, and one fetcher
/// reading every partition from `start_offsets` (the high watermarks before the first send).
pub fn latency(bootstrap: &str, spec: &RawSpec, start_offsets: &[i64]) -> Result<LatencyOutcome> {
    let mut fetcher = Fetcher::connect(bootstrap, &spec.topic, start_offsets)?;
    measure(
        spec.warmup,
        |sent, done, from_ns| fetcher.receive(sent, done, from_ns),
        |sent| produce(bootstrap, spec, sent),
    )
}

/// Where a producer connection's requests come from.
trait Source {
    /// The next request, its correlation id set to `correlation_id`, and the records it
    /// carries; `None` when there are no more. May wait until the request is due.
    fn next(&mut self, correlation_id: i32) -> Result<Option<(&[u8], u64)>>;
}

/// A Produce request encoded with its size prefix.
struct Encoded {
    frame: BytesMut,
    records: u64,
}

impl Encoded {
    /// `records` records of the spec's size for `partition`; with `stamp`, its first 8 value
    /// bytes (little-endian) are that time, in every record.
    fn new(spec: &RawSpec, partition: i32, records: u64, stamp: Option<u64>) -> Result<Encoded> {
        let mut value = vec![b'x'; spec.record_size];
        let now_ns = stamp.unwrap_or_else(wall_ns);
        if let (Some(ns), Some(head)) = (stamp, value.get_mut(..8)) {
            head.copy_from_slice(&ns.to_le_bytes());
        }
        let value = Bytes::from(value);
        let batch_records: Vec<Record> = (0..records)
            .map(|i| Record {
                attributes: 0,
                timestamp_delta: 0,
                offset_delta: i as i32,
                key: None,
                value: Some(value.clone()),
                headers: Vec::new(),
            })
            .collect();
        let params = BatchBuilderParams {
            base_timestamp: (now_ns / 1_000_000) as i64,
            ..BatchBuilderParams::default()
        };
        let batch =
            encode_batch(&params, &batch_records, Compression::None).map_err(|e| format!("encode batch: {e:?}"))?;
        let body = RequestBody::Produce(ProduceRequest {
            acks: spec.acks,
            timeout_ms: 30_000,
            topic_data: vec![TopicProduceData {
                name: spec.topic.clone(),
                partition_data: vec![PartitionProduceData {
                    index: partition,
                    records: Some(batch),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        });
        Ok(Encoded {
            frame: encode(ApiKey::Produce, PRODUCE_VERSION, &body)?,
            records,
        })
    }

    fn with_correlation_id(&mut self, correlation_id: i32) -> (&[u8], u64) {
        self.frame[CORRELATION_ID_AT..CORRELATION_ID_AT + 4].copy_from_slice(&correlation_id.to_be_bytes());
        (&self.frame, self.records)
    }
}

fn encode(key: ApiKey, version: i16, body: &RequestBody) -> Result<BytesMut> {
    let header = RequestHeader {
        api_key: key as i16,
        api_version: version,
        correlation_id: 0,
        client_id: Some("loadgen-raw".into()),
        unknown_tagged_fields: Vec::new(),
    };
    let mut frame = BytesMut::new();
    encode_request(&mut frame, &header, body).map_err(|e| format!("encode request: {e:?}"))?;
    Ok(frame)
}

/// Unpaced: the same requests, one per partition, resent in turn.
struct Cycle<'a> {
    requests: Vec<Encoded>,
    next_partition: usize,
    left: u64,
    sent: &'a AtomicU64,
}

impl<'a> Cycle<'a> {
    /// `batches` requests, starting at partition `worker` (modulo the partitions).
    fn new(requests: &[Encoded], worker: u64, batches: u64, sent: &'a AtomicU64) -> Cycle<'a> {
        let requests: Vec<Encoded> = requests
            .iter()
            .map(|r| Encoded {
                frame: r.frame.clone(),
                records: r.records,
            })
            .collect();
        let next_partition = (worker % requests.len().max(1) as u64) as usize;
        Cycle {
            requests,
            next_partition,
            left: batches,
            sent,
        }
    }
}

impl Source for Cycle<'_> {
    fn next(&mut self, correlation_id: i32) -> Result<Option<(&[u8], u64)>> {
        if self.left == 0 || self.requests.is_empty() {
            return Ok(None);
        }
        self.left -= 1;
        let p = self.next_partition;
        self.next_partition = (p + 1) % self.requests.len();
        let request = self.requests[p].with_correlation_id(correlation_id);
        self.sent.fetch_add(request.1, Ordering::Relaxed);
        Ok(Some(request))
    }
}

/// Stamped: record i is due at `start + i / rate` (every record at once when unpaced); each
/// request carries the records due when it is built (at most `batch_records`), stamped with
/// that time.
struct Stamped<'a> {
    spec: &'a RawSpec,
    partition: u64,
    left: u64,
    released: u64,
    interval_ns: f64,
    start: Instant,
    current: Option<Encoded>,
    sent: &'a AtomicU64,
}

impl<'a> Stamped<'a> {
    fn new(spec: &'a RawSpec, worker: u64, records: u64, rate_per_s: f64, start: Instant, sent: &'a AtomicU64) -> Self {
        Stamped {
            spec,
            partition: worker,
            left: records,
            released: 0,
            interval_ns: if rate_per_s > 0.0 { 1e9 / rate_per_s } else { 0.0 },
            start,
            current: None,
            sent,
        }
    }

    /// Records due by now that are not yet sent, waiting until there is at least one.
    fn due(&self) -> u64 {
        if self.interval_ns == 0.0 {
            return u64::MAX;
        }
        loop {
            let elapsed_ns = self.start.elapsed().as_nanos() as f64;
            let due = (elapsed_ns / self.interval_ns) as u64 + 1;
            if due > self.released {
                return due - self.released;
            }
            let next_ns = (self.released as f64 * self.interval_ns - elapsed_ns).max(0.0) as u64;
            std::thread::sleep(Duration::from_nanos(next_ns).max(MIN_SLEEP));
        }
    }
}

impl Source for Stamped<'_> {
    fn next(&mut self, correlation_id: i32) -> Result<Option<(&[u8], u64)>> {
        if self.left == 0 {
            return Ok(None);
        }
        let n = self.due().min(self.spec.batch_records.max(1)).min(self.left);
        let partition = (self.partition % self.spec.partitions.max(1) as u64) as i32;
        self.partition += 1;
        self.released += n;
        self.left -= n;
        self.sent.fetch_add(n, Ordering::Relaxed);
        let encoded = self
            .current
            .insert(Encoded::new(self.spec, partition, n, Some(wall_ns()))?);
        Ok(Some(encoded.with_correlation_id(correlation_id)))
    }
}

/// A request on the wire, as the reader expects its response.
struct Sent {
    correlation_id: i32,
    records: u64,
    at: Instant,
}

/// Sends what `source` gives over one connection and counts the responses; acks of requests
/// sent before `measure_from` stay out of the histogram.
fn connection(
    bootstrap: &str,
    mut source: Box<dyn Source + '_>,
    in_flight: usize,
    start: Instant,
    measure_from: Instant,
) -> Result<WorkerOutcome> {
    let mut stream = TcpStream::connect(bootstrap).map_err(|e| format!("connect {bootstrap}: {e}"))?;
    stream.set_nodelay(true).map_err(|e| format!("nodelay: {e}"))?;
    let reader = stream.try_clone().map_err(|e| format!("clone socket: {e}"))?;
    reader
        .set_read_timeout(Some(RESPONSE_LIMIT))
        .map_err(|e| format!("read timeout: {e}"))?;
    // The channel holds the requests sent and not yet answered: its bound is the window.
    let (sent_tx, sent_rx) = sync_channel::<Sent>(in_flight);
    std::thread::scope(|s| {
        let counting = s.spawn(move || count_responses(reader, sent_rx, start, measure_from));
        let mut written = Ok(());
        let mut correlation_id = 0i32;
        loop {
            let (frame, records) = match source.next(correlation_id) {
                Ok(Some(next)) => next,
                Ok(None) => break,
                Err(e) => {
                    written = Err(e);
                    break;
                }
            };
            let sent = Sent {
                correlation_id,
                records,
                at: Instant::now(),
            };
            // The reader is gone (it saw an error): stop sending; its error is the one to report.
            if sent_tx.send(sent).is_err() {
                break;
            }
            if let Err(e) = stream.write_all(frame) {
                written = Err(format!("write: {e}"));
                break;
            }
            correlation_id = correlation_id.wrapping_add(1);
        }
        drop(sent_tx);
        if written.is_err() {
            // Unblock the reader, which may wait for the response to a request not sent.
            let _ = stream.shutdown(Shutdown::Both);
        }
        let counted = counting
            .join()
            .unwrap_or_else(|_| Err("raw response reader panicked".into()));
        written.and(counted)
    })
}

/// Reads one response per request sent, in order, until the sender is done.
fn count_responses(
    mut stream: TcpStream,
    sent: Receiver<Sent>,
    start: Instant,
    measure_from: Instant,
) -> Result<WorkerOutcome> {
    let mut c = WorkerOutcome {
        acked: 0,
        failed: 0,
        first_error: None,
        finished: start,
        ack_ns: new_ns_histogram(),
    };
    for request in sent {
        let frame = read_frame(&mut stream)?;
        let errors = produce_errors(frame, request.correlation_id)?;
        let now = Instant::now();
        c.finished = now;
        match errors.first() {
            None => {
                c.acked += request.records;
                if request.at >= measure_from {
                    let ns = now.duration_since(request.at).as_nanos() as u64;
                    c.ack_ns.saturating_record(ns.max(1));
                }
            }
            Some(e) => {
                c.failed += request.records;
                c.first_error.get_or_insert_with(|| e.clone());
            }
        }
    }
    Ok(c)
}

fn read_frame(stream: &mut TcpStream) -> Result<Bytes> {
    let mut size = [0u8; 4];
    stream
        .read_exact(&mut size)
        .map_err(|e| format!("read response: {e}"))?;
    let size = usize::try_from(i32::from_be_bytes(size)).map_err(|_| "negative response size".to_string())?;
    if size > RESPONSE_MAX_BYTES {
        return Err(format!("response of {size} bytes"));
    }
    let mut body = vec![0u8; size];
    stream
        .read_exact(&mut body)
        .map_err(|e| format!("read response: {e}"))?;
    Ok(Bytes::from(body))
}

/// The errors a Produce response reports (empty when every partition succeeded).
fn produce_errors(frame: Bytes, correlation_id: i32) -> Result<Vec<String>> {
    let (got, body) =
        decode_response(frame, ApiKey::Produce, PRODUCE_VERSION).map_err(|e| format!("decode response: {e:?}"))?;
    if got != correlation_id {
        return Err(format!("response to correlation id {got}, expected {correlation_id}"));
    }
    let ResponseBody::Produce(response) = body else {
        return Err("not a Produce response".into());
    };
    let mut errors = Vec::new();
    for topic in &response.responses {
        for p in &topic.partition_responses {
            if p.error_code != 0 {
                errors.push(format!(
                    "{}-{}: {}",
                    topic.name,
                    p.index,
                    ErrorCode(p.error_code).name()
                ));
            }
        }
    }
    if response.responses.is_empty() {
        errors.push("empty Produce response".into());
    }
    Ok(errors)
}

/// One connection long-polling every partition of a topic.
struct Fetcher {
    stream: TcpStream,
    topic: String,
    offsets: Vec<i64>,
}

impl Fetcher {
    fn connect(bootstrap: &str, topic: &str, offsets: &[i64]) -> Result<Fetcher> {
        let stream = TcpStream::connect(bootstrap).map_err(|e| format!("connect {bootstrap}: {e}"))?;
        stream.set_nodelay(true).map_err(|e| format!("nodelay: {e}"))?;
        stream
            .set_read_timeout(Some(RESPONSE_LIMIT))
            .map_err(|e| format!("read timeout: {e}"))?;
        Ok(Fetcher {
            stream,
            topic: topic.to_string(),
            offsets: offsets.to_vec(),
        })
    }

    /// Fetches until every sent record is in (or none came for `IDLE_LIMIT` after the last
    /// send).
    fn receive(&mut self, sent: &AtomicU64, done: &AtomicBool, measure_from_ns: u64) -> Result<Received> {
        let mut r = Received::new(measure_from_ns);
        let mut last_progress_ns = wall_ns();
        for correlation_id in 0i32.. {
            let finished = done.load(Ordering::Acquire);
            if finished && r.received >= sent.load(Ordering::Relaxed) {
                break;
            }
            let request = self.request(correlation_id)?;
            self.stream
                .write_all(&request)
                .map_err(|e| format!("write fetch: {e}"))?;
            let frame = read_frame(&mut self.stream)?;
            let now_ns = wall_ns();
            let before = r.received;
            self.take(frame, correlation_id, now_ns, &mut r)?;
            if r.received > before {
                last_progress_ns = now_ns;
            } else if finished && now_ns.saturating_sub(last_progress_ns) > IDLE_LIMIT.as_nanos() as u64 {
                break;
            }
        }
        Ok(r)
    }

    fn request(&self, correlation_id: i32) -> Result<BytesMut> {
        let body = RequestBody::Fetch(FetchRequest {
            replica_id: -1,
            max_wait_ms: FETCH_MAX_WAIT_MS,
            min_bytes: 1,
            max_bytes: 64 << 20,
            session_epoch: -1,
            topics: vec![FetchTopic {
                topic: self.topic.clone(),
                partitions: self
                    .offsets
                    .iter()
                    .enumerate()
                    .map(|(p, &fetch_offset)| FetchPartition {
                        partition: p as i32,
                        current_leader_epoch: -1,
                        fetch_offset,
                        last_fetched_epoch: -1,
                        log_start_offset: -1,
                        partition_max_bytes: FETCH_PARTITION_MAX_BYTES,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        });
        let mut frame = encode(ApiKey::Fetch, FETCH_VERSION, &body)?;
        frame[CORRELATION_ID_AT..CORRELATION_ID_AT + 4].copy_from_slice(&correlation_id.to_be_bytes());
        Ok(frame)
    }

    /// Takes the records of one Fetch response: each record's delay is `now_ns` minus its stamp,
    /// and each partition's next offset follows its last whole batch.
    fn take(&mut self, frame: Bytes, correlation_id: i32, now_ns: u64, r: &mut Received) -> Result<()> {
        let (got, body) = decode_response(frame, ApiKey::Fetch, FETCH_VERSION)
            .map_err(|e| format!("decode fetch response: {e:?}"))?;
        if got != correlation_id {
            return Err(format!(
                "fetch response to correlation id {got}, expected {correlation_id}"
            ));
        }
        let ResponseBody::Fetch(response) = body else {
            return Err("not a Fetch response".into());
        };
        if response.error_code != 0 {
            return Err(format!("fetch: {}", ErrorCode(response.error_code).name()));
        }
        for topic in &response.responses {
            for p in &topic.partitions {
                if p.error_code != 0 {
                    return Err(format!(
                        "fetch {}-{}: {}",
                        topic.topic,
                        p.partition_index,
                        ErrorCode(p.error_code).name()
                    ));
                }
                let Some(records) = &p.records else { continue };
                let Some(offset) = self.offsets.get_mut(p.partition_index as usize) else {
                    return Err(format!("fetch response for partition {}", p.partition_index));
                };
                // A trailing batch cut short by the size limit ends the walk; it comes whole
                // in the next response.
                for (header, batch) in batches(records).map_while(|b| b.ok()) {
                    if header.last_offset() < *offset {
                        continue;
                    }
                    let decoded = decode_records(batch, FETCH_PARTITION_MAX_BYTES as usize)
                        .map_err(|e| format!("records of {}-{}: {e:?}", topic.topic, p.partition_index))?;
                    for record in &decoded {
                        r.record(record.value.as_deref().unwrap_or_default(), now_ns);
                    }
                    *offset = header.last_offset() + 1;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use runnel_protocol::frame::{decode_request, encode_response};
    use runnel_protocol::generated::produce_response::{
        PartitionProduceResponse, ProduceResponse, TopicProduceResponse,
    };
    use runnel_protocol::records::validate_batches;

    use crate::latency::sent_time_ns;

    fn spec() -> RawSpec {
        RawSpec {
            topic: "t".into(),
            records: 1000,
            record_size: 100,
            batch_records: 148,
            partitions: 4,
            producers: 2,
            acks: 1,
            in_flight: 5,
            stamp: false,
            rate_per_s: 0.0,
            warmup: Duration::ZERO,
        }
    }

    /// The Produce request `frame` carries: its partition and batch.
    fn produced(frame: &[u8]) -> (i32, Bytes) {
        let (_, body) = decode_request(Bytes::copy_from_slice(&frame[4..])).expect("decodes as a request");
        let RequestBody::Produce(p) = body else {
            panic!("not a Produce request")
        };
        let data = &p.topic_data[0].partition_data[0];
        (data.index, data.records.clone().expect("records"))
    }

    #[test]
    fn the_request_is_a_valid_produce_with_one_batch_of_the_records() {
        let mut r = Encoded::new(&spec(), 3, 148, None).expect("encode");
        let (frame, records) = r.with_correlation_id(77);
        assert_eq!(records, 148);
        let size = i32::from_be_bytes(frame[..4].try_into().expect("4 bytes")) as usize;
        assert_eq!(size, frame.len() - 4);
        let (header, body) = decode_request(Bytes::copy_from_slice(&frame[4..])).expect("decodes as a request");
        assert_eq!(header.api_version, PRODUCE_VERSION);
        assert_eq!(header.correlation_id, 77);
        let RequestBody::Produce(p) = body else {
            panic!("not a Produce request")
        };
        assert_eq!(p.acks, 1);
        let data = &p.topic_data[0].partition_data[0];
        assert_eq!(data.index, 3);
        let summary = validate_batches(data.records.as_ref().expect("records")).expect("a valid batch");
        assert_eq!(summary.record_count, 148);
    }

    fn response(correlation_id: i32, codes: &[i16]) -> Bytes {
        let body = ResponseBody::Produce(ProduceResponse {
            responses: vec![TopicProduceResponse {
                name: "t".into(),
                partition_responses: codes
                    .iter()
                    .enumerate()
                    .map(|(i, &error_code)| PartitionProduceResponse {
                        index: i as i32,
                        error_code,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        });
        let mut buf = BytesMut::new();
        encode_response(&mut buf, correlation_id, ApiKey::Produce, PRODUCE_VERSION, &body).expect("encode");
        Bytes::from(buf).slice(4..)
    }

    #[test]
    fn responses_are_checked_for_their_correlation_id_and_errors() {
        assert_eq!(
            produce_errors(response(7, &[0, 0]), 7).expect("ok"),
            Vec::<String>::new()
        );
        assert_eq!(
            produce_errors(response(7, &[0, 3]), 7).expect("decodes"),
            vec!["t-1: UNKNOWN_TOPIC_OR_PARTITION".to_string()]
        );
        assert!(produce_errors(response(6, &[0]), 7).is_err());
        assert!(produce_errors(Bytes::from_static(b"\x00\x00"), 7).is_err());
    }

    #[test]
    fn the_cycle_turns_over_the_partitions_from_the_workers_own() {
        let sent = AtomicU64::new(0);
        let requests: Vec<Encoded> = (0..3)
            .map(|p| Encoded::new(&spec(), p, 10, None).expect("encode"))
            .collect();
        let mut cycle = Cycle::new(&requests, 1, 4, &sent);
        let mut partitions = Vec::new();
        for correlation_id in 0..4 {
            let (frame, records) = cycle.next(correlation_id).expect("ok").expect("a request");
            assert_eq!(records, 10);
            let id = i32::from_be_bytes(frame[CORRELATION_ID_AT..CORRELATION_ID_AT + 4].try_into().expect("4"));
            assert_eq!(id, correlation_id);
            partitions.push(produced(frame).0);
        }
        assert_eq!(partitions, vec![1, 2, 0, 1]);
        assert!(cycle.next(4).expect("ok").is_none());
        assert_eq!(sent.load(Ordering::Relaxed), 40);
    }

    #[test]
    fn stamped_requests_carry_the_send_time_and_no_more_than_asked() {
        let sent = AtomicU64::new(0);
        let spec = RawSpec { stamp: true, ..spec() };
        // Unpaced: every record is due at once, so requests are full up to the last.
        let mut s = Stamped::new(&spec, 0, 300, 0.0, Instant::now(), &sent);
        let before = wall_ns();
        let mut counts = Vec::new();
        while let Some((frame, records)) = s.next(0).expect("ok") {
            counts.push(records);
            let (_, batch) = produced(frame);
            for r in decode_records(&batch, 1 << 20).expect("records") {
                let stamp = sent_time_ns(r.value.as_deref().expect("value")).expect("stamp");
                assert!(stamp >= before && stamp <= wall_ns());
            }
        }
        assert_eq!(counts, vec![148, 148, 4]);
        assert_eq!(sent.load(Ordering::Relaxed), 300);
    }

    #[test]
    fn paced_requests_wait_for_their_records_to_be_due() {
        let sent = AtomicU64::new(0);
        let spec = RawSpec { stamp: true, ..spec() };
        // 1000 records/s: the 20th is due at 19 ms.
        let start = Instant::now();
        let mut s = Stamped::new(&spec, 0, 20, 1000.0, start, &sent);
        let mut total = 0;
        while let Some((_, records)) = s.next(0).expect("ok") {
            total += records;
        }
        assert_eq!(total, 20);
        assert!(start.elapsed() >= Duration::from_millis(19));
    }

    fn fetch_response(correlation_id: i32, partition: i32, records: Bytes) -> Bytes {
        use runnel_protocol::generated::fetch_response::{FetchResponse, FetchableTopicResponse, PartitionData};
        let body = ResponseBody::Fetch(FetchResponse {
            responses: vec![FetchableTopicResponse {
                topic: "t".into(),
                partitions: vec![PartitionData {
                    partition_index: partition,
                    high_watermark: 100,
                    records: Some(records),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        });
        let mut buf = BytesMut::new();
        encode_response(&mut buf, correlation_id, ApiKey::Fetch, FETCH_VERSION, &body).expect("encode");
        Bytes::from(buf).slice(4..)
    }

    #[test]
    fn fetched_records_are_timed_from_their_stamps_and_the_offset_moves_past_them() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let mut f = Fetcher::connect(&addr, "t", &[0, 0]).expect("connect");
        let stamp = 1_000_000_000;
        let (_, produced_batch) = produced(&Encoded::new(&spec(), 1, 5, Some(stamp)).expect("encode").frame);
        let mut batch = BytesMut::from(&produced_batch[..]);
        // As a broker returns it: offsets assigned, here from 10.
        runnel_protocol::records::set_base_offset(&mut batch, 10).expect("offset");
        let mut r = Received::new(0);
        let now = stamp + 250_000;
        let mut cut = batch.clone().freeze();
        cut.truncate(batch.len() - 1);
        // A batch cut short is left for the next fetch.
        f.take(fetch_response(3, 1, cut), 3, now, &mut r).expect("take");
        assert_eq!((r.received, f.offsets.clone()), (0, vec![0, 0]));
        f.take(fetch_response(4, 1, batch.freeze()), 4, now, &mut r)
            .expect("take");
        assert_eq!(r.received, 5);
        assert_eq!(f.offsets, vec![0, 15]);
        assert_eq!(r.e2e_ns.len(), 5);
        assert_eq!(r.e2e_ns.value_at_quantile(1.0), r.e2e_ns.highest_equivalent(250_000));
        assert!(f.take(fetch_response(5, 1, Bytes::new()), 6, now, &mut r).is_err());
    }

    #[test]
    fn acks_zero_is_refused() {
        assert_eq!(acks_value("1"), Ok(1));
        assert_eq!(acks_value("all"), Ok(-1));
        assert!(acks_value("0").is_err());
    }
}
