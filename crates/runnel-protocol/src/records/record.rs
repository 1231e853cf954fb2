//! Individual records inside a v2 batch: decode (for recompression, compaction, tests) and the
//! batch encoder. The produce path never comes here.

use bytes::{BufMut, Bytes, BytesMut};

use super::varint::{read_varint, read_varlong, write_varint, write_varlong};
use super::{
    compress, compute_crc, decompress, split_batch, Compression, RecordError, TimestampType, ATTRIBUTES_OFFSET,
    BATCH_HEADER_BYTES, CRC_OFFSET, LOG_OVERHEAD_BYTES, MAGIC_V2, NO_TIMESTAMP,
};

/// Smallest possible encoded record: length, attributes, timestamp delta, offset delta, key
/// length, value length, header count — one byte each.
const MIN_RECORD_BYTES: usize = 7;
/// Smallest possible header: key length and value length.
const MIN_HEADER_BYTES: usize = 2;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordHeader {
    pub key: String,
    pub value: Option<Bytes>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub attributes: i8,
    pub timestamp_delta: i64,
    pub offset_delta: i32,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<RecordHeader>,
}

/// Decodes every record of one complete batch. Compressed payloads are decompressed to at most
/// `max_decompressed_bytes`. The record count must match the header.
pub fn decode_records(batch: &[u8], max_decompressed_bytes: usize) -> Result<Vec<Record>, RecordError> {
    let (header, batch) = split_batch(batch)?;
    if header.records_count < 0 {
        return Err(RecordError::InvalidRecordsCount(header.records_count));
    }
    let compression = header.compression()?;
    let raw = &batch[BATCH_HEADER_BYTES..];
    let payload = match compression {
        Compression::None => Bytes::copy_from_slice(raw),
        codec => Bytes::from(decompress(codec, raw, max_decompressed_bytes)?),
    };
    let count = header.records_count as usize;
    if count > payload.len() / MIN_RECORD_BYTES {
        return Err(RecordError::InvalidRecordsCount(header.records_count));
    }
    let mut records = Vec::with_capacity(count);
    let mut pos = 0usize;
    for _ in 0..count {
        records.push(decode_record(&payload, &mut pos)?);
    }
    if pos != payload.len() {
        return Err(RecordError::CorruptRecord("trailing bytes after the last record"));
    }
    Ok(records)
}

fn decode_record(payload: &Bytes, pos: &mut usize) -> Result<Record, RecordError> {
    let len = read_varint(payload, pos)?;
    let len = usize::try_from(len).map_err(|_| RecordError::CorruptRecord("negative length"))?;
    let end = pos
        .checked_add(len)
        .filter(|end| *end <= payload.len())
        .ok_or(RecordError::CorruptRecord("record past the end of the batch"))?;
    let body = payload.slice(*pos..end);
    let mut p = 0usize;
    let attributes = *body.first().ok_or(RecordError::CorruptRecord("empty record"))? as i8;
    p += 1;
    let timestamp_delta = read_varlong(&body, &mut p)?;
    let offset_delta = read_varint(&body, &mut p)?;
    let key = read_nullable_bytes(&body, &mut p)?;
    let value = read_nullable_bytes(&body, &mut p)?;
    let headers = decode_headers(&body, &mut p)?;
    if p != body.len() {
        return Err(RecordError::CorruptRecord("record length mismatch"));
    }
    *pos = end;
    Ok(Record {
        attributes,
        timestamp_delta,
        offset_delta,
        key,
        value,
        headers,
    })
}

fn read_nullable_bytes(body: &Bytes, p: &mut usize) -> Result<Option<Bytes>, RecordError> {
    let len = read_varint(body, p)?;
    if len < 0 {
        return Ok(None);
    }
    let end = p
        .checked_add(len as usize)
        .filter(|end| *end <= body.len())
        .ok_or(RecordError::CorruptRecord("field past the end of the record"))?;
    let out = body.slice(*p..end);
    *p = end;
    Ok(Some(out))
}

fn decode_headers(body: &Bytes, p: &mut usize) -> Result<Vec<RecordHeader>, RecordError> {
    let count = read_varint(body, p)?;
    let count = usize::try_from(count).map_err(|_| RecordError::CorruptRecord("negative header count"))?;
    if count > body.len().saturating_sub(*p) / MIN_HEADER_BYTES {
        return Err(RecordError::CorruptRecord("header count exceeds record size"));
    }
    let mut headers = Vec::with_capacity(count);
    for _ in 0..count {
        let key = read_nullable_bytes(body, p)?.ok_or(RecordError::CorruptRecord("null header key"))?;
        let key = String::from_utf8(key.to_vec()).map_err(|_| RecordError::CorruptRecord("header key is not UTF-8"))?;
        let value = read_nullable_bytes(body, p)?;
        headers.push(RecordHeader { key, value });
    }
    Ok(headers)
}

/// Header fields of a batch to encode. `last_offset_delta`, `max_timestamp`, `records_count`
/// and the CRC are computed from the records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchBuilderParams {
    pub base_offset: i64,
    pub partition_leader_epoch: i32,
    pub base_timestamp: i64,
    pub timestamp_type: TimestampType,
    /// With `LogAppendTime`, the batch's `max_timestamp`.
    pub log_append_time_ms: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub is_transactional: bool,
    pub is_control: bool,
}

impl Default for BatchBuilderParams {
    fn default() -> Self {
        Self {
            base_offset: 0,
            partition_leader_epoch: -1,
            base_timestamp: 0,
            timestamp_type: TimestampType::CreateTime,
            log_append_time_ms: NO_TIMESTAMP,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            is_transactional: false,
            is_control: false,
        }
    }
}

fn encode_record(out: &mut Vec<u8>, scratch: &mut Vec<u8>, record: &Record) -> Result<(), RecordError> {
    scratch.clear();
    scratch.push(record.attributes as u8);
    write_varlong(scratch, record.timestamp_delta);
    write_varint(scratch, record.offset_delta);
    write_nullable_bytes(scratch, record.key.as_deref())?;
    write_nullable_bytes(scratch, record.value.as_deref())?;
    write_varint(scratch, len_i32(record.headers.len())?);
    for h in &record.headers {
        write_nullable_bytes(scratch, Some(h.key.as_bytes()))?;
        write_nullable_bytes(scratch, h.value.as_deref())?;
    }
    write_varint(out, len_i32(scratch.len())?);
    out.extend_from_slice(scratch);
    Ok(())
}

fn len_i32(len: usize) -> Result<i32, RecordError> {
    i32::try_from(len).map_err(|_| RecordError::BatchTooLarge)
}

fn write_nullable_bytes(out: &mut Vec<u8>, data: Option<&[u8]>) -> Result<(), RecordError> {
    match data {
        None => write_varint(out, -1),
        Some(d) => {
            write_varint(out, len_i32(d.len())?);
            out.extend_from_slice(d);
        }
    }
    Ok(())
}

fn attributes(params: &BatchBuilderParams, compression: Compression) -> i16 {
    let mut a = i16::from(compression.id());
    if params.timestamp_type == TimestampType::LogAppendTime {
        a |= super::TIMESTAMP_TYPE_BIT;
    }
    if params.is_transactional {
        a |= super::TRANSACTIONAL_BIT;
    }
    if params.is_control {
        a |= super::CONTROL_BIT;
    }
    a
}

/// Encodes a complete v2 batch (header, records compressed with `compression`, CRC).
pub fn encode_batch(
    params: &BatchBuilderParams,
    records: &[Record],
    compression: Compression,
) -> Result<Bytes, RecordError> {
    let mut payload = Vec::new();
    let mut scratch = Vec::new();
    for r in records {
        encode_record(&mut payload, &mut scratch, r)?;
    }
    let payload = compress(compression, &payload)?;
    let last_offset_delta = records.iter().map(|r| r.offset_delta).max().unwrap_or(0);
    let max_timestamp = match params.timestamp_type {
        TimestampType::LogAppendTime => params.log_append_time_ms,
        TimestampType::CreateTime => records
            .iter()
            .map(|r| params.base_timestamp.saturating_add(r.timestamp_delta))
            .max()
            .unwrap_or(params.base_timestamp),
    };
    let batch_length = len_i32(BATCH_HEADER_BYTES - LOG_OVERHEAD_BYTES + payload.len())?;
    let mut out = BytesMut::with_capacity(BATCH_HEADER_BYTES + payload.len());
    out.put_i64(params.base_offset);
    out.put_i32(batch_length);
    out.put_i32(params.partition_leader_epoch);
    out.put_i8(MAGIC_V2);
    out.put_u32(0); // CRC, filled in below
    out.put_i16(attributes(params, compression));
    out.put_i32(last_offset_delta);
    out.put_i64(params.base_timestamp);
    out.put_i64(max_timestamp);
    out.put_i64(params.producer_id);
    out.put_i16(params.producer_epoch);
    out.put_i32(params.base_sequence);
    out.put_i32(len_i32(records.len())?);
    out.extend_from_slice(&payload);
    debug_assert_eq!(ATTRIBUTES_OFFSET, CRC_OFFSET + 4);
    let crc = compute_crc(&out);
    out[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
    Ok(out.freeze())
}
