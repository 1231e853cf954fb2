//! Request and response framing: the 4-byte size prefix, request headers v0–v2 and response
//! headers v0–v1.
//!
//! A frame is `int32 size` followed by `size` bytes. The broker reads the size, checks it against
//! `socket.request.max.bytes` (or the pre-authentication limit) and only then reads the body.

use crate::codec::{
    read_i16, read_i32, read_nullable_string, read_tagged_fields, write_i32, write_tagged_fields, Chunks, DecodeError,
    EncodeError, Sink, TaggedField,
};
use crate::generated::{ApiKey, RequestBody, ResponseBody};
use bytes::{BufMut, Bytes, BytesMut};

/// Kafka's default `socket.request.max.bytes` (100 MiB).
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 104_857_600;

/// A decoded request header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHeader {
    pub api_key: i16,
    pub api_version: i16,
    pub correlation_id: i32,
    pub client_id: Option<String>,
    pub unknown_tagged_fields: Vec<TaggedField>,
}

/// Why a frame's size prefix is unacceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("frame size {size} exceeds the limit of {limit} bytes")]
    TooLarge { size: i64, limit: usize },
    #[error("negative frame size {0}")]
    Negative(i32),
}

/// Checks a frame's 4-byte size prefix against `limit` before anything is allocated.
pub fn check_frame_size(prefix: [u8; 4], limit: usize) -> Result<usize, FrameError> {
    let size = i32::from_be_bytes(prefix);
    if size < 0 {
        return Err(FrameError::Negative(size));
    }
    if size as usize > limit {
        return Err(FrameError::TooLarge {
            size: i64::from(size),
            limit,
        });
    }
    Ok(size as usize)
}

/// Decodes the request header at the start of `frame`, leaving the body in `frame`.
///
/// The header version follows from the API key and version (flexible requests use v2). An
/// unknown API key is still returned as a header so the caller can decide what to do with it;
/// its version is taken as non-flexible.
pub fn decode_request_header(frame: &mut Bytes) -> Result<RequestHeader, DecodeError> {
    let api_key = read_i16(frame)?;
    let api_version = read_i16(frame)?;
    let correlation_id = read_i32(frame)?;
    let header_version = match ApiKey::from_i16(api_key) {
        Some(key) => key.request_header_version(api_version),
        None => 1,
    };
    let mut header = RequestHeader {
        api_key,
        api_version,
        correlation_id,
        client_id: None,
        unknown_tagged_fields: Vec::new(),
    };
    if header_version >= 1 {
        // The client id keeps its classic int16 length even in flexible headers.
        header.client_id = read_nullable_string(frame, false)?;
    }
    if header_version >= 2 {
        header.unknown_tagged_fields = read_tagged_fields(frame, |_, _| Ok(false))?;
    }
    Ok(header)
}

/// Decodes a whole request (header and body) from a frame without its size prefix.
pub fn decode_request(mut frame: Bytes) -> Result<(RequestHeader, RequestBody), DecodeError> {
    let header = decode_request_header(&mut frame)?;
    let body = RequestBody::decode(header.api_key, header.api_version, &mut frame)?;
    Ok((header, body))
}

/// Encodes a request frame (size prefix, header, body), as a client sends it.
pub fn encode_request(buf: &mut BytesMut, header: &RequestHeader, body: &RequestBody) -> Result<(), EncodeError> {
    let start = buf.len();
    buf.put_i32(0);
    buf.put_i16(header.api_key);
    buf.put_i16(header.api_version);
    buf.put_i32(header.correlation_id);
    let key = body.api_key();
    let header_version = key.request_header_version(header.api_version);
    if header_version >= 1 {
        crate::codec::write_nullable_string(buf, header.client_id.as_deref(), false, "ClientId")?;
    }
    if header_version >= 2 {
        write_tagged_fields(buf, Vec::new(), &header.unknown_tagged_fields)?;
    }
    body.encode(buf, header.api_version)?;
    patch_size(buf, start);
    Ok(())
}

/// Encodes a response frame (size prefix, header, body) for `api_key` at `version`.
pub fn encode_response(
    buf: &mut BytesMut,
    correlation_id: i32,
    api_key: ApiKey,
    version: i16,
    body: &ResponseBody,
) -> Result<(), EncodeError> {
    let start = buf.len();
    buf.put_i32(0);
    encode_response_header_and_body(buf, correlation_id, api_key, version, body)?;
    patch_size(buf, start);
    Ok(())
}

/// `encode_response` as a list of buffers for a vectored write: record sets of at least
/// `shared_min` bytes are their own buffers, shared with the response rather than copied into
/// it (a Fetch response is mostly records). `head` is an empty buffer to encode into.
pub fn encode_response_chunks(
    mut head: BytesMut,
    correlation_id: i32,
    api_key: ApiKey,
    version: i16,
    body: &ResponseBody,
    shared_min: usize,
) -> Result<Vec<Bytes>, EncodeError> {
    head.clear();
    head.put_i32(0); // the size, patched once known
    let mut chunks = Chunks::new(head, shared_min);
    encode_response_header_and_body(&mut chunks, correlation_id, api_key, version, body)?;
    let size = i32::try_from(chunks.len() - 4).map_err(|_| EncodeError::TooLong("response"))?;
    let mut parts = chunks.finish();
    // The first part starts with the size prefix: `Chunks` only ever appends after it.
    let mut first = BytesMut::from(std::mem::take(&mut parts[0]));
    first[..4].copy_from_slice(&size.to_be_bytes());
    parts[0] = first.freeze();
    Ok(parts)
}

fn encode_response_header_and_body<S: Sink + ?Sized>(
    buf: &mut S,
    correlation_id: i32,
    api_key: ApiKey,
    version: i16,
    body: &ResponseBody,
) -> Result<(), EncodeError> {
    write_i32(buf, correlation_id);
    if api_key.response_header_version(version) >= 1 {
        write_tagged_fields(buf, Vec::new(), &[])?;
    }
    body.encode(buf, version)
}

/// Decodes a response frame (without its size prefix), as a client reads it.
pub fn decode_response(mut frame: Bytes, api_key: ApiKey, version: i16) -> Result<(i32, ResponseBody), DecodeError> {
    let correlation_id = read_i32(&mut frame)?;
    if api_key.response_header_version(version) >= 1 {
        read_tagged_fields(&mut frame, |_, _| Ok(false))?;
    }
    let body = ResponseBody::decode(api_key, version, &mut frame)?;
    Ok((correlation_id, body))
}

fn patch_size(buf: &mut BytesMut, start: usize) {
    let size = (buf.len() - start - 4) as i32;
    buf[start..start + 4].copy_from_slice(&size.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generated::api_versions_request::ApiVersionsRequest;
    use crate::generated::metadata_request::MetadataRequest;

    #[test]
    fn a_chunked_fetch_response_is_the_contiguous_one_with_large_record_sets_shared() {
        use crate::generated::fetch_response::{FetchResponse, FetchableTopicResponse, PartitionData};
        let big = Bytes::from(vec![7u8; 20_000]);
        let partition = |index: i32, records: Option<Bytes>| PartitionData {
            partition_index: index,
            high_watermark: 99,
            records,
            ..Default::default()
        };
        let body = ResponseBody::Fetch(FetchResponse {
            responses: vec![FetchableTopicResponse {
                topic: "t".into(),
                partitions: vec![
                    partition(0, Some(Bytes::from_static(b"small"))),
                    partition(1, Some(big.clone())),
                    partition(2, Some(Bytes::new())),
                    partition(3, Some(big.clone())),
                ],
                ..Default::default()
            }],
            ..Default::default()
        });
        for version in 4..=17 {
            let mut whole = BytesMut::new();
            encode_response(&mut whole, 42, ApiKey::Fetch, version, &body).unwrap();
            let parts = encode_response_chunks(BytesMut::new(), 42, ApiKey::Fetch, version, &body, 1024).unwrap();
            assert_eq!(parts.concat(), whole.to_vec(), "Fetch v{version}");
            let shared: Vec<&Bytes> = parts.iter().filter(|p| p.as_ptr() == big.as_ptr()).collect();
            assert_eq!(
                shared.len(),
                2,
                "Fetch v{version}: both large record sets go out uncopied"
            );
        }
    }

    #[test]
    fn request_round_trips_through_a_frame() {
        for version in 0..=12 {
            let header = RequestHeader {
                api_key: ApiKey::Metadata as i16,
                api_version: version,
                correlation_id: 7,
                client_id: Some("rdkafka".into()),
                unknown_tagged_fields: Vec::new(),
            };
            let body = RequestBody::Metadata(MetadataRequest {
                topics: Some(Vec::new()),
                ..Default::default()
            });
            let mut buf = BytesMut::new();
            encode_request(&mut buf, &header, &body).unwrap();
            let size = check_frame_size(buf[..4].try_into().unwrap(), 1 << 20).unwrap();
            assert_eq!(size, buf.len() - 4);
            let (h, b) = decode_request(buf.freeze().slice(4..)).unwrap();
            assert_eq!(h, header);
            assert_eq!(b, body);
        }
    }

    #[test]
    fn api_versions_uses_flexible_header_from_v3() {
        let header = RequestHeader {
            api_key: ApiKey::ApiVersions as i16,
            api_version: 3,
            correlation_id: 1,
            client_id: None,
            unknown_tagged_fields: Vec::new(),
        };
        let mut buf = BytesMut::new();
        encode_request(
            &mut buf,
            &header,
            &RequestBody::ApiVersions(ApiVersionsRequest::default()),
        )
        .unwrap();
        // size, key, version, correlation id, client id (-1), empty tagged fields, body.
        assert_eq!(&buf[4..14], &[0, 18, 0, 3, 0, 0, 0, 1, 0xff, 0xff]);
        assert_eq!(buf[14], 0);
    }

    #[test]
    fn frame_size_limits_are_enforced() {
        assert_eq!(
            check_frame_size((-1i32).to_be_bytes(), 10),
            Err(FrameError::Negative(-1))
        );
        assert!(matches!(
            check_frame_size(11i32.to_be_bytes(), 10),
            Err(FrameError::TooLarge { .. })
        ));
        assert_eq!(check_frame_size(10i32.to_be_bytes(), 10), Ok(10));
    }
}
