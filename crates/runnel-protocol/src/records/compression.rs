//! The four record-batch codecs. Decompression of every codec is bounded by a caller-given
//! `max_decompressed_bytes`; exceeding it is `RecordError::DecompressedTooLarge`, checked before
//! (snappy, from the declared length) or while (streams) the bytes are produced.
//!
//! Snappy arrives raw (librdkafka) or xerial-framed (the Java client); both are accepted, raw is
//! written. LZ4 is the LZ4 frame format, as Kafka uses for magic v2.

use std::io::{Read, Write};

use super::{Compression, RecordError};

/// Xerial snappy-java stream magic: 0x82 "SNAPPY" 0x00.
const XERIAL_MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];
/// Magic plus version and compatible-version i32s.
const XERIAL_HEADER_BYTES: usize = 16;
const ZSTD_LEVEL: i32 = 3;

/// Compresses `data` with `codec`.
pub fn compress(codec: Compression, data: &[u8]) -> Result<Vec<u8>, RecordError> {
    let err = |e: std::io::Error| RecordError::Compress(e.to_string());
    match codec {
        Compression::None => Ok(data.to_vec()),
        Compression::Gzip => {
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            enc.write_all(data).map_err(err)?;
            enc.finish().map_err(err)
        }
        Compression::Snappy => snap::raw::Encoder::new()
            .compress_vec(data)
            .map_err(|e| RecordError::Compress(e.to_string())),
        Compression::Lz4 => {
            // What the Java client writes and KafkaLZ4BlockInputStream reads: 64 KiB
            // independent blocks, no checksums beyond the header's.
            let info = lz4_flex::frame::FrameInfo::new()
                .block_size(lz4_flex::frame::BlockSize::Max64KB)
                .block_mode(lz4_flex::frame::BlockMode::Independent);
            let mut enc = lz4_flex::frame::FrameEncoder::with_frame_info(info, Vec::new());
            enc.write_all(data).map_err(err)?;
            enc.finish().map_err(|e| RecordError::Compress(e.to_string()))
        }
        Compression::Zstd => zstd::stream::encode_all(data, ZSTD_LEVEL).map_err(err),
    }
}

/// Decompresses `data` with `codec`, producing at most `max_decompressed_bytes`.
pub fn decompress(codec: Compression, data: &[u8], max_decompressed_bytes: usize) -> Result<Vec<u8>, RecordError> {
    match codec {
        Compression::None => {
            if data.len() > max_decompressed_bytes {
                return Err(too_large(max_decompressed_bytes));
            }
            Ok(data.to_vec())
        }
        Compression::Gzip => read_bounded(flate2::read::MultiGzDecoder::new(data), max_decompressed_bytes),
        Compression::Snappy => snappy_decompress(data, max_decompressed_bytes),
        Compression::Lz4 => read_bounded(lz4_flex::frame::FrameDecoder::new(data), max_decompressed_bytes),
        Compression::Zstd => {
            let decoder = zstd::stream::read::Decoder::new(data).map_err(|e| RecordError::Decompress(e.to_string()))?;
            read_bounded(decoder, max_decompressed_bytes)
        }
    }
}

fn too_large(limit_bytes: usize) -> RecordError {
    RecordError::DecompressedTooLarge { limit_bytes }
}

/// Reads a decoder to its end, failing as soon as it yields more than `limit` bytes.
fn read_bounded(reader: impl Read, limit: usize) -> Result<Vec<u8>, RecordError> {
    let mut out = Vec::new();
    let cap = (limit as u64).saturating_add(1);
    reader
        .take(cap)
        .read_to_end(&mut out)
        .map_err(|e| RecordError::Decompress(e.to_string()))?;
    if out.len() > limit {
        return Err(too_large(limit));
    }
    Ok(out)
}

fn snappy_decompress(data: &[u8], limit: usize) -> Result<Vec<u8>, RecordError> {
    if data.starts_with(&XERIAL_MAGIC) {
        return xerial_decompress(data, limit);
    }
    let mut out = Vec::new();
    snappy_block_into(data, limit, &mut out)?;
    Ok(out)
}

/// Decompresses one raw snappy block onto `out`, checking the declared length first.
fn snappy_block_into(block: &[u8], limit: usize, out: &mut Vec<u8>) -> Result<(), RecordError> {
    let err = |e: snap::Error| RecordError::Decompress(e.to_string());
    let len = snap::raw::decompress_len(block).map_err(err)?;
    if len > limit.saturating_sub(out.len()) {
        return Err(too_large(limit));
    }
    let start = out.len();
    out.resize(start + len, 0);
    let written = snap::raw::Decoder::new()
        .decompress(block, &mut out[start..])
        .map_err(err)?;
    out.truncate(start + written);
    Ok(())
}

/// Xerial framing: 16-byte header, then blocks of `[i32 BE length][raw snappy block]`.
fn xerial_decompress(data: &[u8], limit: usize) -> Result<Vec<u8>, RecordError> {
    let mut rest = data
        .get(XERIAL_HEADER_BYTES..)
        .ok_or_else(|| RecordError::Decompress("xerial header truncated".into()))?;
    let mut out = Vec::new();
    while !rest.is_empty() {
        let Some(len_bytes) = rest.get(..4) else {
            return Err(RecordError::Decompress("xerial block length truncated".into()));
        };
        let len = u32::from_be_bytes([len_bytes[0], len_bytes[1], len_bytes[2], len_bytes[3]]);
        let len = len as usize;
        let block = rest
            .get(4..4usize.saturating_add(len))
            .ok_or_else(|| RecordError::Decompress("xerial block truncated".into()))?;
        snappy_block_into(block, limit, &mut out)?;
        rest = &rest[4 + len..];
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Compression; 5] = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];

    #[test]
    fn every_codec_round_trips() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        for codec in ALL {
            let packed = compress(codec, &data).unwrap();
            assert_eq!(decompress(codec, &packed, data.len()).unwrap(), data, "{codec:?}");
        }
    }

    #[test]
    fn every_codec_enforces_the_limit() {
        let data = vec![7u8; 100_000];
        for codec in ALL {
            let packed = compress(codec, &data).unwrap();
            assert_eq!(
                decompress(codec, &packed, data.len() - 1),
                Err(RecordError::DecompressedTooLarge {
                    limit_bytes: data.len() - 1
                }),
                "{codec:?}"
            );
        }
    }

    fn xerial_frame(data: &[u8], block_bytes: usize) -> Vec<u8> {
        let mut out = XERIAL_MAGIC.to_vec();
        out.extend_from_slice(&1i32.to_be_bytes());
        out.extend_from_slice(&1i32.to_be_bytes());
        for chunk in data.chunks(block_bytes) {
            let block = snap::raw::Encoder::new().compress_vec(chunk).unwrap();
            out.extend_from_slice(&(block.len() as u32).to_be_bytes());
            out.extend_from_slice(&block);
        }
        out
    }

    #[test]
    fn xerial_snappy_is_decoded_and_bounded() {
        let data: Vec<u8> = (0..50_000u32).map(|i| (i % 13) as u8).collect();
        let framed = xerial_frame(&data, 8192);
        assert_eq!(decompress(Compression::Snappy, &framed, data.len()).unwrap(), data);
        assert!(matches!(
            decompress(Compression::Snappy, &framed, 10_000),
            Err(RecordError::DecompressedTooLarge { .. })
        ));
        let truncated = &framed[..framed.len() - 3];
        assert!(decompress(Compression::Snappy, truncated, data.len()).is_err());
    }
}
