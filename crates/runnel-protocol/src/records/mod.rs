//! Kafka record batches, magic v2 only.
//!
//! Owns: the v2 batch header layout, header parsing, batch iteration and validation (magic,
//! length, CRC32C, counts), the in-place rewrites a broker performs on the produce path (base
//! offset, partition leader epoch, LogAppendTime), record-level decode/encode and the four
//! compression codecs.
//!
//! Must never: panic on any input, allocate from an untrusted length before checking it against
//! the bytes that remain, or decompress without a bound (`max_decompressed_bytes`).
//!
//! Invariants: a batch is `12 + batch_length` bytes; the CRC covers `attributes..end`, so the
//! base offset and partition leader epoch can be rewritten without recomputing it, while any change
//! to attributes or timestamps must recompute it. The produce path is header-only: nothing here
//! that the broker calls per append looks at individual records.

#![forbid(unsafe_code)]

mod compression;
mod record;
mod varint;

pub use compression::{compress, decompress};
pub use record::{decode_records, encode_batch, BatchBuilderParams, Record, RecordHeader};

/// Offsets of the v2 header fields, in bytes from the start of the batch.
pub const BASE_OFFSET_OFFSET: usize = 0;
pub const BATCH_LENGTH_OFFSET: usize = 8;
pub const PARTITION_LEADER_EPOCH_OFFSET: usize = 12;
pub const MAGIC_OFFSET: usize = 16;
pub const CRC_OFFSET: usize = 17;
pub const ATTRIBUTES_OFFSET: usize = 21;
pub const LAST_OFFSET_DELTA_OFFSET: usize = 23;
pub const BASE_TIMESTAMP_OFFSET: usize = 27;
pub const MAX_TIMESTAMP_OFFSET: usize = 35;
pub const PRODUCER_ID_OFFSET: usize = 43;
pub const PRODUCER_EPOCH_OFFSET: usize = 51;
pub const BASE_SEQUENCE_OFFSET: usize = 53;
pub const RECORDS_COUNT_OFFSET: usize = 57;
/// Size of the fixed v2 header; the records (possibly compressed) follow it.
pub const BATCH_HEADER_BYTES: usize = 61;
/// `base_offset` + `batch_length`: the part of the header not counted by `batch_length`.
pub const LOG_OVERHEAD_BYTES: usize = 12;
/// Smallest legal `batch_length` (a header with no records).
pub const MIN_BATCH_LENGTH: i32 = (BATCH_HEADER_BYTES - LOG_OVERHEAD_BYTES) as i32;
pub const MAGIC_V2: i8 = 2;
/// Kafka's "no timestamp" marker.
pub const NO_TIMESTAMP: i64 = -1;

const COMPRESSION_MASK: i16 = 0x07;
const TIMESTAMP_TYPE_BIT: i16 = 0x08;
const TRANSACTIONAL_BIT: i16 = 0x10;
const CONTROL_BIT: i16 = 0x20;

/// Errors from parsing, validating, decoding or encoding record batches.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("record batch truncated: need {needed} bytes, have {available}")]
    Truncated { needed: usize, available: usize },
    #[error("unsupported record batch magic {0} (only v2 is accepted)")]
    UnsupportedMagic(i8),
    #[error("invalid batch length {0}")]
    InvalidBatchLength(i32),
    #[error("CRC mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    CrcMismatch { stored: u32, computed: u32 },
    #[error("invalid records count {0}")]
    InvalidRecordsCount(i32),
    #[error("last offset delta {last_offset_delta} inconsistent with records count {records_count}")]
    InconsistentLastOffsetDelta { last_offset_delta: i32, records_count: i32 },
    #[error("unknown compression codec id {0}")]
    UnknownCompression(u8),
    #[error("decompressed records exceed the limit of {limit_bytes} bytes")]
    DecompressedTooLarge { limit_bytes: usize },
    #[error("decompression failed: {0}")]
    Decompress(String),
    #[error("compression failed: {0}")]
    Compress(String),
    #[error("corrupt record: {0}")]
    CorruptRecord(&'static str),
    #[error("batch would exceed the maximum encodable size")]
    BatchTooLarge,
    #[error("empty record buffer")]
    Empty,
}

/// Compression codec named by attribute bits 0-2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl Compression {
    pub fn from_id(id: u8) -> Result<Self, RecordError> {
        match id {
            0 => Ok(Self::None),
            1 => Ok(Self::Gzip),
            2 => Ok(Self::Snappy),
            3 => Ok(Self::Lz4),
            4 => Ok(Self::Zstd),
            other => Err(RecordError::UnknownCompression(other)),
        }
    }

    pub fn id(self) -> u8 {
        match self {
            Self::None => 0,
            Self::Gzip => 1,
            Self::Snappy => 2,
            Self::Lz4 => 3,
            Self::Zstd => 4,
        }
    }
}

/// Attribute bit 3.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampType {
    CreateTime,
    LogAppendTime,
}

/// Every field of the v2 batch header, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    pub batch_length: i32,
    pub partition_leader_epoch: i32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub records_count: i32,
}

impl BatchHeader {
    pub fn compression(&self) -> Result<Compression, RecordError> {
        Compression::from_id((self.attributes & COMPRESSION_MASK) as u8)
    }

    pub fn timestamp_type(&self) -> TimestampType {
        if self.attributes & TIMESTAMP_TYPE_BIT != 0 {
            TimestampType::LogAppendTime
        } else {
            TimestampType::CreateTime
        }
    }

    pub fn is_transactional(&self) -> bool {
        self.attributes & TRANSACTIONAL_BIT != 0
    }

    pub fn is_control(&self) -> bool {
        self.attributes & CONTROL_BIT != 0
    }

    pub fn last_offset(&self) -> i64 {
        self.base_offset.wrapping_add(i64::from(self.last_offset_delta))
    }

    /// Bytes the whole batch occupies, header included.
    pub fn total_size_bytes(&self) -> usize {
        LOG_OVERHEAD_BYTES + self.batch_length.max(0) as usize
    }

    /// Sequence number of the last record (Kafka wraps at i32::MAX).
    pub fn last_sequence(&self) -> i32 {
        if self.base_sequence < 0 {
            return self.base_sequence;
        }
        let last = i64::from(self.base_sequence) + i64::from(self.last_offset_delta);
        (last % (i64::from(i32::MAX) + 1)) as i32
    }
}

fn read_i16(buf: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([buf[at], buf[at + 1]])
}

fn read_i32(buf: &[u8], at: usize) -> i32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&buf[at..at + 4]);
    i32::from_be_bytes(b)
}

fn read_i64(buf: &[u8], at: usize) -> i64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&buf[at..at + 8]);
    i64::from_be_bytes(b)
}

/// Parses the fixed header of the batch at the start of `buf`, checking only what the header
/// alone can tell: length of `buf`, magic and `batch_length >= MIN_BATCH_LENGTH`. It does not
/// require the whole batch to be present (readers of a log scan headers only).
pub fn parse_header(buf: &[u8]) -> Result<BatchHeader, RecordError> {
    if buf.len() < BATCH_HEADER_BYTES {
        return Err(RecordError::Truncated {
            needed: BATCH_HEADER_BYTES,
            available: buf.len(),
        });
    }
    let magic = buf[MAGIC_OFFSET] as i8;
    if magic != MAGIC_V2 {
        return Err(RecordError::UnsupportedMagic(magic));
    }
    let batch_length = read_i32(buf, BATCH_LENGTH_OFFSET);
    if batch_length < MIN_BATCH_LENGTH {
        return Err(RecordError::InvalidBatchLength(batch_length));
    }
    Ok(BatchHeader {
        base_offset: read_i64(buf, BASE_OFFSET_OFFSET),
        batch_length,
        partition_leader_epoch: read_i32(buf, PARTITION_LEADER_EPOCH_OFFSET),
        magic,
        crc: read_i32(buf, CRC_OFFSET) as u32,
        attributes: read_i16(buf, ATTRIBUTES_OFFSET),
        last_offset_delta: read_i32(buf, LAST_OFFSET_DELTA_OFFSET),
        base_timestamp: read_i64(buf, BASE_TIMESTAMP_OFFSET),
        max_timestamp: read_i64(buf, MAX_TIMESTAMP_OFFSET),
        producer_id: read_i64(buf, PRODUCER_ID_OFFSET),
        producer_epoch: read_i16(buf, PRODUCER_EPOCH_OFFSET),
        base_sequence: read_i32(buf, BASE_SEQUENCE_OFFSET),
        records_count: read_i32(buf, RECORDS_COUNT_OFFSET),
    })
}

/// Parses the header and checks that the whole batch fits in `buf`; returns the header and the
/// batch's bytes.
pub fn split_batch(buf: &[u8]) -> Result<(BatchHeader, &[u8]), RecordError> {
    let header = parse_header(buf)?;
    let total = header.total_size_bytes();
    if total > buf.len() {
        return Err(RecordError::Truncated {
            needed: total,
            available: buf.len(),
        });
    }
    Ok((header, &buf[..total]))
}

/// CRC32C over `attributes..end` of one complete batch.
pub fn compute_crc(batch: &[u8]) -> u32 {
    crc32c::crc32c(batch.get(ATTRIBUTES_OFFSET..).unwrap_or(&[]))
}

/// Iterator over concatenated batches. Yields each complete batch; a malformed or truncated
/// batch yields one `Err` and ends the iteration.
pub struct BatchIter<'a> {
    rest: &'a [u8],
    failed: bool,
}

impl<'a> BatchIter<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Self {
            rest: buf,
            failed: false,
        }
    }

    /// Bytes not yet consumed.
    pub fn remaining(&self) -> &'a [u8] {
        self.rest
    }
}

impl<'a> Iterator for BatchIter<'a> {
    type Item = Result<(BatchHeader, &'a [u8]), RecordError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.rest.is_empty() {
            return None;
        }
        match split_batch(self.rest) {
            Ok((header, batch)) => {
                self.rest = &self.rest[batch.len()..];
                Some(Ok((header, batch)))
            }
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

/// Iterates the batches of `buf`.
pub fn batches(buf: &[u8]) -> BatchIter<'_> {
    BatchIter::new(buf)
}

/// What a broker needs to know about a validated buffer of batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchesSummary {
    pub batch_count: u32,
    /// Sum of `records_count`.
    pub record_count: i64,
    /// Offsets the buffer occupies: sum of `last_offset_delta + 1`.
    pub offset_count: i64,
    pub total_bytes: usize,
    /// Largest `max_timestamp` (NO_TIMESTAMP if none).
    pub max_timestamp: i64,
    /// Offset of the last record of the batch holding `max_timestamp`, relative to the first
    /// offset of the buffer (Kafka's "shallow offset of max timestamp").
    pub offset_delta_of_max_timestamp: i64,
    pub first: BatchHeader,
    pub last: BatchHeader,
}

/// How strictly `last_offset_delta` must match `records_count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetDensity {
    /// Produce requests: at least one record and `last_offset_delta == records_count - 1`.
    Dense,
    /// Replicated or compacted data: `records_count <= last_offset_delta + 1`, may be empty.
    Sparse,
}

fn check_counts(header: &BatchHeader, density: OffsetDensity) -> Result<(), RecordError> {
    if header.records_count < 0 {
        return Err(RecordError::InvalidRecordsCount(header.records_count));
    }
    let inconsistent = RecordError::InconsistentLastOffsetDelta {
        last_offset_delta: header.last_offset_delta,
        records_count: header.records_count,
    };
    if header.last_offset_delta < 0 {
        return Err(inconsistent);
    }
    let span = i64::from(header.last_offset_delta) + 1;
    let count = i64::from(header.records_count);
    let ok = match density {
        OffsetDensity::Dense => count >= 1 && count == span,
        OffsetDensity::Sparse => count <= span,
    };
    if ok {
        Ok(())
    } else {
        Err(inconsistent)
    }
}

/// Fully validates one complete batch (header, counts, CRC).
pub fn validate_batch(batch: &[u8], density: OffsetDensity) -> Result<BatchHeader, RecordError> {
    let (header, batch) = split_batch(batch)?;
    check_counts(&header, density)?;
    header.compression()?;
    let computed = compute_crc(batch);
    if computed != header.crc {
        return Err(RecordError::CrcMismatch {
            stored: header.crc,
            computed,
        });
    }
    Ok(header)
}

/// Validates a produce request's record set: every batch v2, complete, CRC-correct, with dense
/// offsets and a known codec. The buffer must hold at least one batch and nothing else.
pub fn validate_batches(buf: &[u8]) -> Result<BatchesSummary, RecordError> {
    validate_batches_with(buf, OffsetDensity::Dense)
}

/// `validate_batches` with a chosen offset density (followers use `Sparse`).
pub fn validate_batches_with(buf: &[u8], density: OffsetDensity) -> Result<BatchesSummary, RecordError> {
    let mut summary: Option<BatchesSummary> = None;
    let mut pos = 0usize;
    while pos < buf.len() {
        let header = validate_batch(&buf[pos..], density)?;
        pos += header.total_size_bytes();
        summary = Some(match summary {
            None => first_summary(header),
            Some(s) => extend_summary(s, header),
        });
    }
    summary.ok_or(RecordError::Empty)
}

fn first_summary(header: BatchHeader) -> BatchesSummary {
    BatchesSummary {
        batch_count: 1,
        record_count: i64::from(header.records_count),
        offset_count: i64::from(header.last_offset_delta) + 1,
        total_bytes: header.total_size_bytes(),
        max_timestamp: header.max_timestamp,
        offset_delta_of_max_timestamp: i64::from(header.last_offset_delta),
        first: header,
        last: header,
    }
}

fn extend_summary(mut s: BatchesSummary, header: BatchHeader) -> BatchesSummary {
    let first_delta = s.offset_count;
    s.batch_count += 1;
    s.record_count += i64::from(header.records_count);
    s.offset_count += i64::from(header.last_offset_delta) + 1;
    s.total_bytes += header.total_size_bytes();
    if header.max_timestamp > s.max_timestamp {
        s.max_timestamp = header.max_timestamp;
        s.offset_delta_of_max_timestamp = first_delta + i64::from(header.last_offset_delta);
    }
    s.last = header;
    s
}

fn ensure_header(batch: &[u8]) -> Result<(), RecordError> {
    if batch.len() < BATCH_HEADER_BYTES {
        return Err(RecordError::Truncated {
            needed: BATCH_HEADER_BYTES,
            available: batch.len(),
        });
    }
    Ok(())
}

/// Sets the base offset of the batch at the start of `batch` (outside the CRC).
pub fn set_base_offset(batch: &mut [u8], base_offset: i64) -> Result<(), RecordError> {
    ensure_header(batch)?;
    batch[BASE_OFFSET_OFFSET..BASE_OFFSET_OFFSET + 8].copy_from_slice(&base_offset.to_be_bytes());
    Ok(())
}

/// Sets the partition leader epoch of the batch at the start of `batch` (outside the CRC).
pub fn set_partition_leader_epoch(batch: &mut [u8], epoch: i32) -> Result<(), RecordError> {
    ensure_header(batch)?;
    batch[PARTITION_LEADER_EPOCH_OFFSET..PARTITION_LEADER_EPOCH_OFFSET + 4].copy_from_slice(&epoch.to_be_bytes());
    Ok(())
}

/// Marks one complete batch as LogAppendTime with `timestamp_ms`, as Kafka's
/// `DefaultRecordBatch.setMaxTimestamp` does: sets attribute bit 3 and `max_timestamp`, leaves
/// `base_timestamp` and the records untouched (readers use `max_timestamp` for every record of a
/// LogAppendTime batch), and recomputes the CRC.
pub fn set_log_append_time(batch: &mut [u8], timestamp_ms: i64) -> Result<(), RecordError> {
    let header = parse_header(batch)?;
    let total = header.total_size_bytes();
    if total > batch.len() {
        return Err(RecordError::Truncated {
            needed: total,
            available: batch.len(),
        });
    }
    let attributes = header.attributes | TIMESTAMP_TYPE_BIT;
    batch[ATTRIBUTES_OFFSET..ATTRIBUTES_OFFSET + 2].copy_from_slice(&attributes.to_be_bytes());
    batch[MAX_TIMESTAMP_OFFSET..MAX_TIMESTAMP_OFFSET + 8].copy_from_slice(&timestamp_ms.to_be_bytes());
    let crc = compute_crc(&batch[..total]);
    batch[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
    Ok(())
}

/// Applies `set_log_append_time` to every batch of `buf`.
pub fn set_log_append_time_all(buf: &mut [u8], timestamp_ms: i64) -> Result<(), RecordError> {
    let mut pos = 0usize;
    while pos < buf.len() {
        let total = split_batch(&buf[pos..])?.0.total_size_bytes();
        set_log_append_time(&mut buf[pos..pos + total], timestamp_ms)?;
        pos += total;
    }
    Ok(())
}

/// Result of assigning offsets to a buffer of batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AssignedOffsets {
    pub first_offset: i64,
    pub last_offset: i64,
    pub batch_count: u32,
    pub max_timestamp: i64,
    /// Last offset of the batch holding `max_timestamp` (Kafka's shallow offset).
    pub offset_of_max_timestamp: i64,
    /// `max_timestamp` of the first batch: used to decide time-based segment rolls.
    pub first_batch_max_timestamp: i64,
}

/// Header-only walk over `buf` that rewrites every base offset (consecutively from
/// `first_offset`, each batch taking `last_offset_delta + 1` offsets) and partition leader epoch.
/// Neither field is covered by the CRC, so the batches stay valid. The caller must have validated
/// the buffer already; this re-checks only lengths so it can never write out of bounds.
pub fn assign_offsets(buf: &mut [u8], first_offset: i64, leader_epoch: i32) -> Result<AssignedOffsets, RecordError> {
    let mut pos = 0usize;
    let mut next = first_offset;
    let mut out: Option<AssignedOffsets> = None;
    while pos < buf.len() {
        let header = split_batch(&buf[pos..])?.0;
        if header.last_offset_delta < 0 {
            return Err(RecordError::InconsistentLastOffsetDelta {
                last_offset_delta: header.last_offset_delta,
                records_count: header.records_count,
            });
        }
        let batch = &mut buf[pos..];
        set_base_offset(batch, next)?;
        set_partition_leader_epoch(batch, leader_epoch)?;
        let last = next + i64::from(header.last_offset_delta);
        let mut a = out.unwrap_or(AssignedOffsets {
            first_offset,
            last_offset: last,
            batch_count: 0,
            max_timestamp: header.max_timestamp,
            offset_of_max_timestamp: last,
            first_batch_max_timestamp: header.max_timestamp,
        });
        a.batch_count += 1;
        a.last_offset = last;
        if header.max_timestamp > a.max_timestamp {
            a.max_timestamp = header.max_timestamp;
            a.offset_of_max_timestamp = last;
        }
        out = Some(a);
        next = last + 1;
        pos += header.total_size_bytes();
    }
    out.ok_or(RecordError::Empty)
}

#[cfg(test)]
mod tests;
