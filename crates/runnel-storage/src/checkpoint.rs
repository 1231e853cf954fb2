//! Small text files beside the segments, in Kafka's formats, written atomically:
//! temp file -> fsync -> rename -> fsync directory, so a crash leaves the old or the new file.
//!
//! Files: `leader-epoch-checkpoint` (version, count, `epoch startOffset` lines),
//! `partition.metadata` (`version: 0`, `topic_id: <base64url uuid>`), and per-partition
//! offset checkpoints (`log-start-offset-checkpoint`, `recovery-point-offset-checkpoint`) in
//! Kafka's offset-checkpoint format (version, count, `topic partition offset`), holding one entry.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;

use crate::error::{IoContext, StorageError};

/// Refuse to parse checkpoint files larger than this: they are a few lines long.
const MAX_CHECKPOINT_BYTES: u64 = 16 * 1024 * 1024;

/// Atomically replaces `path` with `contents`.
pub(crate) fn write_atomic(path: &Path, contents: &[u8]) -> Result<(), StorageError> {
    let tmp = path.with_extension("tmp");
    {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .at(&tmp)?;
        f.write_all(contents).at(&tmp)?;
        f.sync_all().at(&tmp)?;
    }
    std::fs::rename(&tmp, path).at(path)?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

/// Writes `contents` to `path` through a temporary file and a rename, without any fsync: the
/// caller syncs the file and its directory later (a reader after a crash must tolerate a file
/// that is missing, empty or torn, e.g. by a checksum).
pub(crate) fn write_replace_unsynced(path: &Path, contents: &[u8]) -> Result<(), StorageError> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, contents).at(&tmp)?;
    std::fs::rename(&tmp, path).at(path)
}

/// fsyncs a directory so that a rename or create inside it is durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    fsync_dir(dir).at(dir)
}

/// `sync_dir` with the plain I/O error, for syncs done outside the partition lock.
pub(crate) fn fsync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Reads a small text file; `None` if it does not exist.
pub(crate) fn read_text(path: &Path) -> Result<Option<String>, StorageError> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).at(path),
    };
    if meta.len() > MAX_CHECKPOINT_BYTES {
        return Err(corrupt(path, "file too large"));
    }
    let bytes = std::fs::read(path).at(path)?;
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|_| corrupt(path, "not UTF-8"))
}

fn corrupt(path: &Path, reason: &str) -> StorageError {
    StorageError::CorruptFile {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

/// Parses `version\ncount\n` then `count` lines via `entry`.
fn parse_versioned<T>(path: &Path, text: &str, entry: impl Fn(&str) -> Option<T>) -> Result<Vec<T>, StorageError> {
    let mut lines = text.lines();
    if lines.next().map(str::trim) != Some("0") {
        return Err(corrupt(path, "unsupported version"));
    }
    let count: usize = lines
        .next()
        .and_then(|l| l.trim().parse().ok())
        .ok_or_else(|| corrupt(path, "bad entry count"))?;
    let entries: Vec<T> = lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| entry(l).ok_or_else(|| corrupt(path, "bad entry line")))
        .collect::<Result<_, _>>()?;
    if entries.len() != count {
        return Err(corrupt(path, "entry count does not match"));
    }
    Ok(entries)
}

pub(crate) fn read_epoch_checkpoint(path: &Path) -> Result<Vec<(i32, i64)>, StorageError> {
    let Some(text) = read_text(path)? else {
        return Ok(Vec::new());
    };
    parse_versioned(path, &text, |line| {
        let mut parts = line.split_whitespace();
        let epoch = parts.next()?.parse().ok()?;
        let offset = parts.next()?.parse().ok()?;
        parts.next().is_none().then_some((epoch, offset))
    })
}

pub(crate) fn write_epoch_checkpoint(path: &Path, entries: &[(i32, i64)]) -> Result<(), StorageError> {
    let mut text = format!("0\n{}\n", entries.len());
    for (epoch, offset) in entries {
        text.push_str(&format!("{epoch} {offset}\n"));
    }
    write_atomic(path, text.as_bytes())
}

/// Reads a one-entry offset checkpoint for `topic`/`partition`.
pub(crate) fn read_offset_checkpoint(path: &Path, topic: &str, partition: i32) -> Result<Option<i64>, StorageError> {
    let Some(text) = read_text(path)? else {
        return Ok(None);
    };
    let entries = parse_versioned(path, &text, |line| {
        let mut parts = line.split_whitespace();
        let t = parts.next()?.to_string();
        let p: i32 = parts.next()?.parse().ok()?;
        let o: i64 = parts.next()?.parse().ok()?;
        Some((t, p, o))
    })?;
    Ok(entries
        .into_iter()
        .find(|(t, p, _)| t == topic && *p == partition)
        .map(|(_, _, o)| o))
}

pub(crate) fn write_offset_checkpoint(
    path: &Path,
    topic: &str,
    partition: i32,
    offset: i64,
) -> Result<(), StorageError> {
    let text = format!("0\n1\n{topic} {partition} {offset}\n");
    write_atomic(path, text.as_bytes())
}

const BASE64URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Kafka's `Uuid.toString()`: URL-safe base64 without padding (22 characters).
pub fn topic_id_to_string(id: &[u8; 16]) -> String {
    let mut out = String::with_capacity(22);
    for chunk in id.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(BASE64URL[((n >> (18 - 6 * i)) & 0x3f) as usize] as char);
        }
    }
    out
}

/// Inverse of `topic_id_to_string`.
pub fn topic_id_from_string(s: &str) -> Option<[u8; 16]> {
    if s.len() != 22 {
        return None;
    }
    let mut bits = 0u32;
    let mut nbits = 0u32;
    let mut out = Vec::with_capacity(16);
    for c in s.bytes() {
        let v = BASE64URL.iter().position(|x| *x == c)? as u32;
        bits = (bits << 6) | v;
        nbits += 6;
        if nbits >= 8 {
            nbits -= 8;
            out.push((bits >> nbits) as u8);
            bits &= (1 << nbits) - 1;
        }
    }
    out.try_into().ok()
}

pub(crate) fn read_partition_metadata(path: &Path) -> Result<Option<[u8; 16]>, StorageError> {
    let Some(text) = read_text(path)? else {
        return Ok(None);
    };
    let mut version_ok = false;
    let mut topic_id = None;
    for line in text.lines() {
        if let Some((key, value)) = line.split_once(':') {
            match key.trim() {
                "version" => version_ok = value.trim() == "0",
                "topic_id" => topic_id = topic_id_from_string(value.trim()),
                _ => {}
            }
        }
    }
    match (version_ok, topic_id) {
        (true, Some(id)) => Ok(Some(id)),
        _ => Err(corrupt(path, "bad partition.metadata")),
    }
}

pub(crate) fn write_partition_metadata(path: &Path, topic_id: &[u8; 16]) -> Result<(), StorageError> {
    let text = format!("version: 0\ntopic_id: {}\n", topic_id_to_string(topic_id));
    write_atomic(path, text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn topic_id_round_trips(id in any::<[u8; 16]>()) {
            let s = topic_id_to_string(&id);
            prop_assert_eq!(s.len(), 22);
            prop_assert_eq!(topic_id_from_string(&s), Some(id));
        }
    }

    #[test]
    fn kafka_uuid_string_matches() {
        // Kafka's Uuid(0x0102030405060708, 0x090a0b0c0d0e0f10).toString()
        let id: [u8; 16] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16];
        assert_eq!(topic_id_to_string(&id), "AQIDBAUGBwgJCgsMDQ4PEA");
    }

    #[test]
    fn epoch_checkpoint_round_trips_in_kafka_format() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("leader-epoch-checkpoint");
        write_epoch_checkpoint(&path, &[(0, 0), (3, 120)]).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "0\n2\n0 0\n3 120\n");
        assert_eq!(read_epoch_checkpoint(&path).unwrap(), vec![(0, 0), (3, 120)]);
        std::fs::write(&path, "0\n3\n0 0\n").unwrap();
        assert!(read_epoch_checkpoint(&path).is_err());
    }
}
