//! `produce --client raw`: Produce requests encoded once and written straight to a socket, so
//! the client costs almost nothing per record and what is measured is the broker.
//!
//! Owns: the raw producer. Each producer thread opens one connection to the bootstrap broker
//! (on a single-node broker, the leader of every partition), encodes one Produce request per
//! partition up front (one v2 batch of uncompressed records, CRC computed) and sends them in
//! turn, each time with a new correlation id, keeping at most `in_flight` requests
//! outstanding, as `max.in.flight.requests.per.connection` does. A reader thread per
//! connection takes the responses in order and counts each partition's records as acked
//! (error code 0) or failed. The broker validates, assigns offsets and appends every batch as
//! it would a client's; resending the same bytes is valid because a batch without a producer
//! id has no sequence to check, and the broker assigns offsets itself.
//!
//! Not a Kafka client: no metadata, retries or idempotence. Any error is counted, and the
//! first one is reported. librdkafka's figures stay the headline (they are what users see);
//! this one tells how much of a limit is the broker's.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::mpsc::{sync_channel, Receiver};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use hdrhistogram::Histogram;
use runnel_protocol::frame::{decode_response, encode_request, RequestHeader};
use runnel_protocol::generated::produce_request::{PartitionProduceData, ProduceRequest, TopicProduceData};
use runnel_protocol::generated::{ApiKey, RequestBody, ResponseBody};
use runnel_protocol::records::{encode_batch, BatchBuilderParams, Compression, Record};
use runnel_protocol::ErrorCode;

use crate::produce::ProduceOutcome;
use crate::report::new_ns_histogram;
use crate::Result;

/// Produce v9: the first flexible version, topics by name (Kafka 4 still accepts it).
const PRODUCE_VERSION: i16 = 9;
/// Where the correlation id sits in an encoded request: after the size, api key and version.
const CORRELATION_ID_AT: usize = 8;
/// A broker that answers nothing for this long is reported, rather than waited on forever.
const RESPONSE_LIMIT: Duration = Duration::from_secs(60);
/// Responses larger than this are not Produce responses to our requests.
const RESPONSE_MAX_BYTES: usize = 1 << 20;

/// What the raw producers send.
#[derive(Clone, Debug)]
pub struct RawSpec {
    pub topic: String,
    /// In total over the producers; rounded up to whole batches per producer.
    pub records: u64,
    pub record_size: usize,
    pub batch_records: u64,
    pub partitions: i32,
    pub producers: usize,
    /// 1 or -1 (all); with 0 the broker would send no response to count.
    pub acks: i16,
    pub in_flight: usize,
}

/// Maps `--acks` to the wire value; 0 is refused (nothing would be acknowledged to count).
pub fn acks_value(acks: &str) -> Result<i16> {
    match acks {
        "1" => Ok(1),
        "all" | "-1" => Ok(-1),
        other => Err(format!("--client raw needs --acks 1 or all, not {other}")),
    }
}

/// Runs the producers to completion against `bootstrap` (host:port).
pub fn run(bootstrap: &str, spec: &RawSpec) -> Result<ProduceOutcome> {
    let producers = spec.producers.max(1) as u64;
    let batch_records = spec.batch_records.max(1);
    let requests: Vec<Request> = (0..spec.partitions.max(1))
        .map(|p| Request::encode(spec, p, batch_records))
        .collect::<Result<_>>()?;
    let start = Instant::now();
    let results: Vec<Result<Counted>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..producers)
            .map(|w| {
                let share = spec.records / producers + u64::from(w < spec.records % producers);
                let batches = share.div_ceil(batch_records);
                let requests = &requests;
                s.spawn(move || connection(bootstrap, requests, w, batches, spec.in_flight.max(1), start))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err("raw producer thread panicked".into())))
            .collect()
    });
    let mut out = ProduceOutcome {
        acked: 0,
        failed: 0,
        first_error: None,
        seconds: 0.0,
        ack_ns: new_ns_histogram(),
    };
    for c in results {
        let c = c?;
        out.acked += c.acked;
        out.failed += c.failed;
        out.first_error = out.first_error.or(c.first_error);
        out.seconds = out.seconds.max(c.finished.duration_since(start).as_secs_f64());
        out.ack_ns
            .add(&c.ack_ns)
            .map_err(|e| format!("merge histograms: {e}"))?;
    }
    Ok(out)
}

/// One partition's Produce request, encoded with its size prefix.
struct Request {
    frame: Bytes,
    records: u64,
}

impl Request {
    fn encode(spec: &RawSpec, partition: i32, records: u64) -> Result<Request> {
        let value = Bytes::from(vec![b'x'; spec.record_size]);
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
            base_timestamp: (crate::kafka::wall_ns() / 1_000_000) as i64,
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
        let header = RequestHeader {
            api_key: ApiKey::Produce as i16,
            api_version: PRODUCE_VERSION,
            correlation_id: 0,
            client_id: Some("loadgen-raw".into()),
            unknown_tagged_fields: Vec::new(),
        };
        let mut frame = BytesMut::new();
        encode_request(&mut frame, &header, &body).map_err(|e| format!("encode request: {e:?}"))?;
        Ok(Request {
            frame: frame.freeze(),
            records,
        })
    }
}

/// A request on the wire, as the reader expects its response.
struct Sent {
    correlation_id: i32,
    records: u64,
    at: Instant,
}

struct Counted {
    acked: u64,
    failed: u64,
    first_error: Option<String>,
    finished: Instant,
    ack_ns: Histogram<u64>,
}

/// Sends `batches` requests over one connection, cycling through the partitions from
/// `worker`'s, and counts their responses.
fn connection(
    bootstrap: &str,
    requests: &[Request],
    worker: u64,
    batches: u64,
    in_flight: usize,
    start: Instant,
) -> Result<Counted> {
    let mut stream = TcpStream::connect(bootstrap).map_err(|e| format!("connect {bootstrap}: {e}"))?;
    stream.set_nodelay(true).map_err(|e| format!("nodelay: {e}"))?;
    let reader = stream.try_clone().map_err(|e| format!("clone socket: {e}"))?;
    reader
        .set_read_timeout(Some(RESPONSE_LIMIT))
        .map_err(|e| format!("read timeout: {e}"))?;
    // The channel holds the requests sent and not yet answered: its bound is the window.
    let (sent_tx, sent_rx) = sync_channel::<Sent>(in_flight);
    std::thread::scope(|s| {
        let counting = s.spawn(move || count_responses(reader, sent_rx, start));
        let mut frames: Vec<BytesMut> = requests.iter().map(|r| BytesMut::from(&r.frame[..])).collect();
        let mut written = Ok(());
        for k in 0..batches {
            let p = ((worker + k) % requests.len() as u64) as usize;
            let correlation_id = k as i32;
            frames[p][CORRELATION_ID_AT..CORRELATION_ID_AT + 4].copy_from_slice(&correlation_id.to_be_bytes());
            let sent = Sent {
                correlation_id,
                records: requests[p].records,
                at: Instant::now(),
            };
            // The reader is gone (it saw an error): stop sending; its error is the one to report.
            if sent_tx.send(sent).is_err() {
                break;
            }
            if let Err(e) = stream.write_all(&frames[p]) {
                written = Err(format!("write: {e}"));
                break;
            }
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
fn count_responses(mut stream: TcpStream, sent: Receiver<Sent>, start: Instant) -> Result<Counted> {
    let mut c = Counted {
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
                let ns = now.duration_since(request.at).as_nanos() as u64;
                c.ack_ns.saturating_record(ns.max(1));
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
        return Err(format!("response of {size} bytes to a Produce request"));
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

#[cfg(test)]
mod tests {
    use super::*;
    use runnel_protocol::frame::{decode_request, encode_response};
    use runnel_protocol::generated::produce_response::{
        PartitionProduceResponse, ProduceResponse, TopicProduceResponse,
    };
    use runnel_protocol::records::validate_batches;

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
        }
    }

    #[test]
    fn the_request_is_a_valid_produce_with_one_batch_of_the_records() {
        let r = Request::encode(&spec(), 3, 148).expect("encode");
        assert_eq!(r.records, 148);
        let size = i32::from_be_bytes(r.frame[..4].try_into().expect("4 bytes")) as usize;
        assert_eq!(size, r.frame.len() - 4);
        let (header, body) = decode_request(r.frame.slice(4..)).expect("decodes as a request");
        assert_eq!(header.api_version, PRODUCE_VERSION);
        // The correlation id is where the sender patches it.
        assert_eq!(CORRELATION_ID_AT, 8);
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
    fn acks_zero_is_refused() {
        assert_eq!(acks_value("1"), Ok(1));
        assert_eq!(acks_value("all"), Ok(-1));
        assert!(acks_value("0").is_err());
    }
}
