//! Primitive Kafka wire codec: fixed-width integers, varints, strings, bytes, arrays and tagged
//! fields, in both the classic and the flexible ("compact") encodings.
//!
//! Every reader checks the bytes that remain before it reads or allocates, so a hostile length
//! can never make us allocate more than the frame we already hold. Readers take `&mut Bytes` and
//! borrow byte fields from it (`split_to`) instead of copying them.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use std::fmt;

/// Why a message could not be decoded. Decoding never panics: every malformed input ends here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("unexpected end of data: needed {needed} bytes, {remaining} remain")]
    Truncated { needed: usize, remaining: usize },
    #[error("invalid length {0}")]
    InvalidLength(i64),
    #[error("null value for a non-nullable field")]
    UnexpectedNull,
    #[error("string is not valid UTF-8")]
    InvalidUtf8,
    #[error("varint is too long")]
    VarintTooLong,
    #[error("unsupported API key {0}")]
    UnknownApiKey(i16),
    #[error("unsupported version {version} of API key {api_key}")]
    UnsupportedVersion { api_key: i16, version: i16 },
}

/// Why a message could not be encoded (a value the chosen version cannot carry).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("null value for non-nullable field {0}")]
    NullNotAllowed(&'static str),
    #[error("value too long for field {0}")]
    TooLong(&'static str),
}

/// A Kafka UUID (topic ids, directory ids). The all-zero value is Kafka's `Uuid.ZERO_UUID`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Uuid(pub [u8; 16]);

impl Uuid {
    pub const ZERO: Uuid = Uuid([0; 16]);

    pub fn is_zero(&self) -> bool {
        self.0 == [0; 16]
    }
}

impl fmt::Debug for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Uuid {
    /// Kafka prints UUIDs as URL-safe base64 without padding (22 characters).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&base64_url_no_pad(&self.0))
    }
}

/// URL-safe base64 without padding, as Kafka renders UUIDs and cluster ids.
pub fn base64_url_no_pad(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// A tagged field this version of the code does not know; kept so it can be re-encoded.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TaggedField {
    pub tag: u32,
    pub data: Bytes,
}

/// A generated message or struct: decodes from and encodes to one API version.
pub trait Message: Sized {
    fn decode(buf: &mut Bytes, version: i16) -> Result<Self, DecodeError>;
    fn encode<S: Sink + ?Sized>(&self, buf: &mut S, version: i16) -> Result<(), EncodeError>;
}

#[inline]
fn need(buf: &Bytes, n: usize) -> Result<(), DecodeError> {
    if buf.remaining() < n {
        return Err(DecodeError::Truncated {
            needed: n,
            remaining: buf.remaining(),
        });
    }
    Ok(())
}

pub fn read_i8(buf: &mut Bytes) -> Result<i8, DecodeError> {
    need(buf, 1)?;
    Ok(buf.get_i8())
}

pub fn read_bool(buf: &mut Bytes) -> Result<bool, DecodeError> {
    Ok(read_i8(buf)? != 0)
}

pub fn read_i16(buf: &mut Bytes) -> Result<i16, DecodeError> {
    need(buf, 2)?;
    Ok(buf.get_i16())
}

pub fn read_u16(buf: &mut Bytes) -> Result<u16, DecodeError> {
    need(buf, 2)?;
    Ok(buf.get_u16())
}

pub fn read_i32(buf: &mut Bytes) -> Result<i32, DecodeError> {
    need(buf, 4)?;
    Ok(buf.get_i32())
}

pub fn read_u32(buf: &mut Bytes) -> Result<u32, DecodeError> {
    need(buf, 4)?;
    Ok(buf.get_u32())
}

pub fn read_i64(buf: &mut Bytes) -> Result<i64, DecodeError> {
    need(buf, 8)?;
    Ok(buf.get_i64())
}

pub fn read_f64(buf: &mut Bytes) -> Result<f64, DecodeError> {
    need(buf, 8)?;
    Ok(buf.get_f64())
}

pub fn read_uuid(buf: &mut Bytes) -> Result<Uuid, DecodeError> {
    need(buf, 16)?;
    let mut id = [0u8; 16];
    buf.copy_to_slice(&mut id);
    Ok(Uuid(id))
}

pub fn read_unsigned_varint(buf: &mut Bytes) -> Result<u32, DecodeError> {
    let mut value: u32 = 0;
    for i in 0..5 {
        let b = read_i8(buf)? as u8;
        value |= u32::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(DecodeError::VarintTooLong)
}

pub fn read_unsigned_varlong(buf: &mut Bytes) -> Result<u64, DecodeError> {
    let mut value: u64 = 0;
    for i in 0..10 {
        let b = read_i8(buf)? as u8;
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(DecodeError::VarintTooLong)
}

/// Zigzag-encoded signed varint (record fields).
pub fn read_varint(buf: &mut Bytes) -> Result<i32, DecodeError> {
    let v = read_unsigned_varint(buf)?;
    Ok(((v >> 1) as i32) ^ -((v & 1) as i32))
}

/// Zigzag-encoded signed varlong (record fields).
pub fn read_varlong(buf: &mut Bytes) -> Result<i64, DecodeError> {
    let v = read_unsigned_varlong(buf)?;
    Ok(((v >> 1) as i64) ^ -((v & 1) as i64))
}

/// Reads a length prefix: `None` is null. A length is checked against the bytes that remain
/// (`min_item_bytes` per item) so it can never drive an allocation beyond the frame.
fn read_len(buf: &mut Bytes, compact: bool, min_item_bytes: usize) -> Result<Option<usize>, DecodeError> {
    let len: i64 = if compact {
        i64::from(read_unsigned_varint(buf)?) - 1
    } else if min_item_bytes == usize::MAX {
        // Strings use an int16 length in the classic encoding.
        i64::from(read_i16(buf)?)
    } else {
        i64::from(read_i32(buf)?)
    };
    if len < 0 {
        if len == -1 {
            return Ok(None);
        }
        return Err(DecodeError::InvalidLength(len));
    }
    let len = len as usize;
    let per_item = if min_item_bytes == usize::MAX {
        1
    } else {
        min_item_bytes.max(1)
    };
    if len.saturating_mul(per_item) > buf.remaining() {
        return Err(DecodeError::InvalidLength(len as i64));
    }
    Ok(Some(len))
}

pub fn read_nullable_string(buf: &mut Bytes, compact: bool) -> Result<Option<String>, DecodeError> {
    let Some(len) = read_len(buf, compact, usize::MAX)? else {
        return Ok(None);
    };
    let raw = buf.split_to(len);
    match std::str::from_utf8(&raw) {
        Ok(s) => Ok(Some(s.to_owned())),
        Err(_) => Err(DecodeError::InvalidUtf8),
    }
}

pub fn read_string(buf: &mut Bytes, compact: bool) -> Result<String, DecodeError> {
    read_nullable_string(buf, compact)?.ok_or(DecodeError::UnexpectedNull)
}

pub fn read_nullable_bytes(buf: &mut Bytes, compact: bool) -> Result<Option<Bytes>, DecodeError> {
    let Some(len) = read_len(buf, compact, 1)? else {
        return Ok(None);
    };
    Ok(Some(buf.split_to(len)))
}

pub fn read_bytes(buf: &mut Bytes, compact: bool) -> Result<Bytes, DecodeError> {
    read_nullable_bytes(buf, compact)?.ok_or(DecodeError::UnexpectedNull)
}

/// Array length; every element takes at least one byte on the wire in practice, and Kafka's own
/// readers make the same check (`arrayLength > remaining` is rejected).
pub fn read_array_len(buf: &mut Bytes, compact: bool) -> Result<Option<usize>, DecodeError> {
    read_len(buf, compact, 1)
}

pub fn read_array<T>(
    buf: &mut Bytes,
    compact: bool,
    mut item: impl FnMut(&mut Bytes) -> Result<T, DecodeError>,
) -> Result<Option<Vec<T>>, DecodeError> {
    let Some(len) = read_array_len(buf, compact)? else {
        return Ok(None);
    };
    let mut out = Vec::with_capacity(len);
    for _ in 0..len {
        out.push(item(buf)?);
    }
    Ok(Some(out))
}

/// Takes exactly `len` bytes (a tagged field's body) without copying.
pub fn take(buf: &mut Bytes, len: usize) -> Result<Bytes, DecodeError> {
    need(buf, len)?;
    Ok(buf.split_to(len))
}

/// Reads a tagged-field section, handing each field to `known`; fields it does not claim
/// (returns `Ok(false)`) are kept raw.
pub fn read_tagged_fields(
    buf: &mut Bytes,
    mut known: impl FnMut(u32, &mut Bytes) -> Result<bool, DecodeError>,
) -> Result<Vec<TaggedField>, DecodeError> {
    let count = read_unsigned_varint(buf)? as usize;
    if count > buf.remaining() {
        return Err(DecodeError::InvalidLength(count as i64));
    }
    let mut unknown = Vec::new();
    for _ in 0..count {
        let tag = read_unsigned_varint(buf)?;
        let size = read_unsigned_varint(buf)? as usize;
        let mut data = take(buf, size)?;
        if !known(tag, &mut data)? {
            unknown.push(TaggedField { tag, data });
        }
    }
    Ok(unknown)
}

/// Where encoders write: one `BytesMut`, or [`Chunks`], in which large record sets stay the
/// `Bytes` they came as instead of being copied into the output.
pub trait Sink {
    /// The buffer that takes everything but shared record sets.
    fn buf(&mut self) -> &mut BytesMut;
    /// The bytes of a `records` field, after its length prefix.
    fn put_records(&mut self, records: &Bytes) {
        self.buf().extend_from_slice(records);
    }
}

impl Sink for BytesMut {
    fn buf(&mut self) -> &mut BytesMut {
        self
    }
}

/// An encoding as a list of buffers: the encoded fields, with each record set of at least
/// `shared_min` bytes kept as its own `Bytes` (shared, not copied), for a vectored write.
pub struct Chunks {
    done: Vec<Bytes>,
    current: BytesMut,
    shared_min: usize,
}

impl Chunks {
    /// Encodes into `current` (which may hold a start already), sharing record sets of at
    /// least `shared_min` bytes.
    pub fn new(current: BytesMut, shared_min: usize) -> Chunks {
        Chunks {
            done: Vec::new(),
            current,
            shared_min,
        }
    }

    /// Bytes encoded so far.
    pub fn len(&self) -> usize {
        self.done.iter().map(Bytes::len).sum::<usize>() + self.current.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The encoding, in order.
    pub fn finish(mut self) -> Vec<Bytes> {
        if !self.current.is_empty() {
            self.done.push(self.current.freeze());
        }
        self.done
    }
}

impl Sink for Chunks {
    fn buf(&mut self) -> &mut BytesMut {
        &mut self.current
    }

    fn put_records(&mut self, records: &Bytes) {
        if records.len() < self.shared_min {
            self.current.extend_from_slice(records);
            return;
        }
        if !self.current.is_empty() {
            self.done.push(self.current.split().freeze());
        }
        self.done.push(records.clone());
    }
}

pub fn write_i8<S: Sink + ?Sized>(buf: &mut S, v: i8) {
    buf.buf().put_i8(v);
}
pub fn write_bool<S: Sink + ?Sized>(buf: &mut S, v: bool) {
    buf.buf().put_i8(v as i8);
}
pub fn write_i16<S: Sink + ?Sized>(buf: &mut S, v: i16) {
    buf.buf().put_i16(v);
}
pub fn write_u16<S: Sink + ?Sized>(buf: &mut S, v: u16) {
    buf.buf().put_u16(v);
}
pub fn write_i32<S: Sink + ?Sized>(buf: &mut S, v: i32) {
    buf.buf().put_i32(v);
}
pub fn write_u32<S: Sink + ?Sized>(buf: &mut S, v: u32) {
    buf.buf().put_u32(v);
}
pub fn write_i64<S: Sink + ?Sized>(buf: &mut S, v: i64) {
    buf.buf().put_i64(v);
}
pub fn write_f64<S: Sink + ?Sized>(buf: &mut S, v: f64) {
    buf.buf().put_f64(v);
}
pub fn write_uuid<S: Sink + ?Sized>(buf: &mut S, v: &Uuid) {
    buf.buf().put_slice(&v.0);
}

pub fn write_unsigned_varint<S: Sink + ?Sized>(buf: &mut S, v: u32) {
    // The same seven bits at a time as a varlong of the same value.
    write_unsigned_varlong(buf, u64::from(v));
}

pub fn write_unsigned_varlong<S: Sink + ?Sized>(buf: &mut S, mut v: u64) {
    let buf = buf.buf();
    while v >= 0x80 {
        buf.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    buf.put_u8(v as u8);
}

pub fn write_varint<S: Sink + ?Sized>(buf: &mut S, v: i32) {
    write_unsigned_varint(buf, ((v << 1) ^ (v >> 31)) as u32);
}

pub fn write_varlong<S: Sink + ?Sized>(buf: &mut S, v: i64) {
    write_unsigned_varlong(buf, ((v << 1) ^ (v >> 63)) as u64);
}

fn write_len<S: Sink + ?Sized>(
    buf: &mut S,
    len: Option<usize>,
    compact: bool,
    field: &'static str,
) -> Result<(), EncodeError> {
    match (len, compact) {
        (None, true) => write_unsigned_varint(buf, 0),
        (None, false) => buf.buf().put_i32(-1),
        (Some(n), true) => write_unsigned_varint(buf, u32::try_from(n + 1).map_err(|_| EncodeError::TooLong(field))?),
        (Some(n), false) => buf
            .buf()
            .put_i32(i32::try_from(n).map_err(|_| EncodeError::TooLong(field))?),
    }
    Ok(())
}

pub fn write_nullable_string<S: Sink + ?Sized>(
    buf: &mut S,
    v: Option<&str>,
    compact: bool,
    field: &'static str,
) -> Result<(), EncodeError> {
    if compact {
        write_len(buf, v.map(str::len), true, field)?;
    } else {
        match v {
            None => buf.buf().put_i16(-1),
            Some(s) => buf
                .buf()
                .put_i16(i16::try_from(s.len()).map_err(|_| EncodeError::TooLong(field))?),
        }
    }
    if let Some(s) = v {
        buf.buf().put_slice(s.as_bytes());
    }
    Ok(())
}

pub fn write_string<S: Sink + ?Sized>(
    buf: &mut S,
    v: &str,
    compact: bool,
    field: &'static str,
) -> Result<(), EncodeError> {
    write_nullable_string(buf, Some(v), compact, field)
}

pub fn write_nullable_bytes<S: Sink + ?Sized>(
    buf: &mut S,
    v: Option<&[u8]>,
    compact: bool,
    field: &'static str,
) -> Result<(), EncodeError> {
    write_len(buf, v.map(<[u8]>::len), compact, field)?;
    if let Some(b) = v {
        buf.buf().put_slice(b);
    }
    Ok(())
}

pub fn write_bytes<S: Sink + ?Sized>(
    buf: &mut S,
    v: &[u8],
    compact: bool,
    field: &'static str,
) -> Result<(), EncodeError> {
    write_nullable_bytes(buf, Some(v), compact, field)
}

/// A `records` field: its length, then the records through the sink (which may keep them as
/// their own buffer rather than copy them).
pub fn write_records<S: Sink + ?Sized>(
    buf: &mut S,
    v: &Bytes,
    compact: bool,
    field: &'static str,
) -> Result<(), EncodeError> {
    write_len(buf, Some(v.len()), compact, field)?;
    buf.put_records(v);
    Ok(())
}

pub fn write_array_len<S: Sink + ?Sized>(
    buf: &mut S,
    len: Option<usize>,
    compact: bool,
    field: &'static str,
) -> Result<(), EncodeError> {
    write_len(buf, len, compact, field)
}

/// Writes a tagged-field section from `(tag, encoded body)` pairs plus the unknown fields kept
/// from decoding, in ascending tag order as Kafka requires.
pub fn write_tagged_fields<S: Sink + ?Sized>(
    buf: &mut S,
    mut fields: Vec<(u32, BytesMut)>,
    unknown: &[TaggedField],
) -> Result<(), EncodeError> {
    if fields.is_empty() && unknown.is_empty() {
        buf.buf().put_u8(0);
        return Ok(());
    }
    fields.extend(unknown.iter().map(|f| (f.tag, BytesMut::from(&f.data[..]))));
    fields.sort_by_key(|(tag, _)| *tag);
    write_unsigned_varint(buf, fields.len() as u32);
    for (tag, body) in fields {
        write_unsigned_varint(buf, tag);
        write_unsigned_varint(
            buf,
            u32::try_from(body.len()).map_err(|_| EncodeError::TooLong("tagged field"))?,
        );
        buf.buf().put_slice(&body);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_at_edges() {
        for v in [0i32, 1, -1, 63, 64, -64, -65, i32::MAX, i32::MIN] {
            let mut b = BytesMut::new();
            write_varint(&mut b, v);
            assert_eq!(read_varint(&mut b.freeze()).unwrap(), v);
        }
        for v in [0i64, -1, i64::MAX, i64::MIN, 1 << 40] {
            let mut b = BytesMut::new();
            write_varlong(&mut b, v);
            assert_eq!(read_varlong(&mut b.freeze()).unwrap(), v);
        }
    }

    #[test]
    fn hostile_lengths_are_rejected_before_allocating() {
        let mut b = Bytes::from_static(&[0x7f, 0xff, 0xff, 0xff, 1, 2]);
        assert_eq!(
            read_array_len(&mut b, false),
            Err(DecodeError::InvalidLength(i32::MAX as i64))
        );
        let mut b = Bytes::from_static(&[0xff, 0xff, 0xff, 0xfe]);
        assert_eq!(read_array_len(&mut b, false), Err(DecodeError::InvalidLength(-2)));
        let mut b = Bytes::from_static(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
        assert!(read_bytes(&mut b, true).is_err());
        let mut b = Bytes::from_static(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x01]);
        assert_eq!(read_unsigned_varint(&mut b), Err(DecodeError::VarintTooLong));
    }

    #[test]
    fn uuid_renders_as_kafka_base64() {
        assert_eq!(Uuid::ZERO.to_string(), "AAAAAAAAAAAAAAAAAAAAAA");
        assert_eq!(base64_url_no_pad(b"\xfb\xff"), "-_8");
    }
}
