//! The state machine: applies committed metadata batches to the `MetadataImage` and publishes
//! every new image on a watch channel. Snapshots are the serialized image.
//!
//! `snapshot` file: `[meta_len u32 LE][meta JSON][image bytes][crc32c u32 LE of all before]`,
//! written temp → fsync → rename → fsync dir. The same bytes are the snapshot payload sent to
//! followers, so a received snapshot is verified exactly like one read from disk.
//!
//! Invariant: `image.offset` equals the index of `last_applied` (0 when nothing is applied).

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{EntryPayload, RaftSnapshotBuilder};
use runnel_metadata::MetadataImage;
use tokio::sync::watch;

use crate::fsutil::{read_optional, write_atomic};
use crate::types::{Entry, LogId, SnapshotMeta, StorageError, StoredMembership, TypeConfig};
use openraft::StorageIOError;

const SNAPSHOT_FILE: &str = "snapshot";
const SNAPSHOT_BYTES_MAX: usize = 1024 * 1024 * 1024;

struct SmState {
    image: Arc<MetadataImage>,
    last_applied: Option<LogId>,
    membership: StoredMembership,
    /// The latest snapshot (meta + file bytes), kept to answer `get_current_snapshot` cheaply.
    snapshot: Option<(SnapshotMeta, Vec<u8>)>,
}

#[derive(Clone)]
pub struct StateMachine {
    dir: PathBuf,
    state: Arc<Mutex<SmState>>,
    image_tx: Arc<watch::Sender<Arc<MetadataImage>>>,
}

impl StateMachine {
    /// Loads the snapshot (if any) from `dir`.
    pub fn open(dir: &Path) -> Result<Self, String> {
        let path = dir.join(SNAPSHOT_FILE);
        let bytes = read_optional(&path).map_err(|e| format!("reading {}: {e}", path.display()))?;
        let mut state = SmState {
            image: Arc::new(MetadataImage::empty()),
            last_applied: None,
            membership: StoredMembership::default(),
            snapshot: None,
        };
        if let Some(bytes) = bytes {
            let (meta, image) = decode_snapshot(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
            state.image = Arc::new(image);
            state.last_applied = meta.last_log_id;
            state.membership = meta.last_membership.clone();
            state.snapshot = Some((meta, bytes));
        }
        let (image_tx, _) = watch::channel(state.image.clone());
        Ok(Self {
            dir: dir.to_path_buf(),
            state: Arc::new(Mutex::new(state)),
            image_tx: Arc::new(image_tx),
        })
    }

    pub fn image(&self) -> Arc<MetadataImage> {
        self.image_tx.borrow().clone()
    }

    pub fn subscribe(&self) -> watch::Receiver<Arc<MetadataImage>> {
        self.image_tx.subscribe()
    }

    fn lock(&self) -> MutexGuard<'_, SmState> {
        self.state.lock().expect("state machine lock poisoned")
    }

    fn publish(&self, image: Arc<MetadataImage>) {
        self.image_tx.send_replace(image);
    }
}

fn encode_snapshot(meta: &SnapshotMeta, image: &MetadataImage) -> Result<Vec<u8>, serde_json::Error> {
    let meta_json = serde_json::to_vec(meta)?;
    let image_bytes = image.to_snapshot_bytes();
    let mut out = Vec::with_capacity(8 + meta_json.len() + image_bytes.len());
    out.extend_from_slice(&(meta_json.len() as u32).to_le_bytes());
    out.extend_from_slice(&meta_json);
    out.extend_from_slice(&image_bytes);
    let crc = crc32c::crc32c(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    Ok(out)
}

fn decode_snapshot(bytes: &[u8]) -> Result<(SnapshotMeta, MetadataImage), String> {
    if bytes.len() > SNAPSHOT_BYTES_MAX {
        return Err(format!("snapshot of {} bytes exceeds the limit", bytes.len()));
    }
    let Some(body_len) = bytes.len().checked_sub(4) else {
        return Err("snapshot too short".into());
    };
    let (body, crc_bytes) = bytes.split_at(body_len);
    let crc = u32::from_le_bytes([crc_bytes[0], crc_bytes[1], crc_bytes[2], crc_bytes[3]]);
    if crc32c::crc32c(body) != crc {
        return Err("snapshot checksum mismatch".into());
    }
    let Some(meta_len_bytes) = body.get(..4) else {
        return Err("snapshot too short".into());
    };
    let meta_len = u32::from_le_bytes([
        meta_len_bytes[0],
        meta_len_bytes[1],
        meta_len_bytes[2],
        meta_len_bytes[3],
    ]) as usize;
    let rest = &body[4..];
    if meta_len > rest.len() {
        return Err("snapshot meta length exceeds the snapshot".into());
    }
    let (meta_json, image_bytes) = rest.split_at(meta_len);
    let meta: SnapshotMeta = serde_json::from_slice(meta_json).map_err(|e| format!("snapshot meta: {e}"))?;
    let image = MetadataImage::from_snapshot_bytes(image_bytes).map_err(|e| format!("snapshot image: {e}"))?;
    Ok((meta, image))
}

/// Applies one entry; returns the new image.
fn apply_entry(image: &MetadataImage, entry: &Entry) -> MetadataImage {
    let records = match &entry.payload {
        EntryPayload::Normal(batch) => batch.records.as_slice(),
        EntryPayload::Blank | EntryPayload::Membership(_) => &[],
    };
    image.apply_at(records, entry.log_id.index, entry.log_id.leader_id.term)
}

pub struct SnapshotBuilder {
    sm: StateMachine,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let (image, last_applied, membership) = {
            let state = self.sm.lock();
            (state.image.clone(), state.last_applied, state.membership.clone())
        };
        let snapshot_id = last_applied.map_or("empty".to_string(), |l| format!("{}-{}", l.leader_id.term, l.index));
        let meta = SnapshotMeta {
            last_log_id: last_applied,
            last_membership: membership,
            snapshot_id,
        };
        let bytes = encode_snapshot(&meta, &image)
            .map_err(|e| StorageError::from(StorageIOError::write_snapshot(Some(meta.signature()), &e)))?;
        write_atomic(&self.sm.dir.join(SNAPSHOT_FILE), &bytes, true)
            .map_err(|e| StorageError::from(StorageIOError::write_snapshot(Some(meta.signature()), &e)))?;
        self.sm.lock().snapshot = Some((meta.clone(), bytes.clone()));
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(bytes)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        let state = self.lock();
        Ok((state.last_applied, state.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<()>, StorageError>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let mut responses = Vec::new();
        let image = {
            let mut state = self.lock();
            let mut image = (*state.image).clone();
            for entry in entries {
                image = apply_entry(&image, &entry);
                if let EntryPayload::Membership(m) = &entry.payload {
                    state.membership = StoredMembership::new(Some(entry.log_id), m.clone());
                }
                state.last_applied = Some(entry.log_id);
                responses.push(());
            }
            let image = Arc::new(image);
            state.image = image.clone();
            image
        };
        self.publish(image);
        Ok(responses)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        SnapshotBuilder { sm: self.clone() }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let bytes = snapshot.into_inner();
        let read_err = |e: String| {
            StorageError::from(StorageIOError::read_snapshot(
                Some(meta.signature()),
                &std::io::Error::other(e),
            ))
        };
        let (_, image) = decode_snapshot(&bytes).map_err(read_err)?;
        write_atomic(&self.dir.join(SNAPSHOT_FILE), &bytes, true)
            .map_err(|e| StorageError::from(StorageIOError::write_snapshot(Some(meta.signature()), &e)))?;
        let image = Arc::new(image);
        {
            let mut state = self.lock();
            state.image = image.clone();
            state.last_applied = meta.last_log_id;
            state.membership = meta.last_membership.clone();
            state.snapshot = Some((meta.clone(), bytes));
        }
        self.publish(image);
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        let state = self.lock();
        Ok(state.snapshot.as_ref().map(|(meta, bytes)| Snapshot {
            meta: meta.clone(),
            snapshot: Box::new(Cursor::new(bytes.clone())),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use runnel_metadata::MetadataRecord;

    fn sample() -> (SnapshotMeta, MetadataImage) {
        let records = [
            MetadataRecord::ClusterRecord { cluster_id: "c".into() },
            MetadataRecord::TopicRecord {
                name: "t".into(),
                topic_id: [3; 16],
            },
        ];
        let log_id = openraft::LogId::new(openraft::CommittedLeaderId::new(2, 1), 7);
        let image = MetadataImage::empty().apply_at(&records, 7, 2);
        let meta = SnapshotMeta {
            last_log_id: Some(log_id),
            last_membership: StoredMembership::default(),
            snapshot_id: "2-7".into(),
        };
        (meta, image)
    }

    #[test]
    fn snapshot_round_trips_and_every_flipped_byte_is_caught() {
        let (meta, image) = sample();
        let bytes = encode_snapshot(&meta, &image).unwrap();
        let (decoded_meta, decoded_image) = decode_snapshot(&bytes).unwrap();
        assert_eq!(decoded_meta, meta);
        assert_eq!(decoded_image, image);
        for i in 0..bytes.len() {
            let mut corrupt = bytes.clone();
            corrupt[i] ^= 0x01;
            assert!(decode_snapshot(&corrupt).is_err(), "flip at byte {i} went unnoticed");
        }
        assert!(decode_snapshot(&bytes[..bytes.len() - 1]).is_err());
        assert!(decode_snapshot(&[]).is_err());
    }
}
