//! The replica manager: the partitions this broker hosts, each a `PartitionLog` behind a short
//! lock, plus the high watermark, the leader epoch and the wake-up for parked fetches.
//!
//! The set of partitions follows the metadata image (`sync_with_image`): partitions of new
//! topics get a log, partitions of removed topics are deleted, config changes reach the logs.
//!
//! Invariants: a partition lock is never held across an `.await`; on a single node the high
//! watermark is the log end offset after every append (the ISR is this broker alone).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, Weak};
use std::time::{Duration, Instant};

use runnel_metadata::image::{MetadataImage, TopicImage};
use runnel_metadata::records::TopicId;
use runnel_storage::{CleanerConfig, FlushPolicy, PartitionLog, RecoveryPointWrite, StorageError};
use tokio::sync::Notify;

use crate::topic_config::TopicSettings;

pub type TopicPartition = (String, i32);

/// One hosted partition.
pub struct Partition {
    pub topic: String,
    pub index: i32,
    pub topic_id: TopicId,
    log: Mutex<PartitionLog>,
    leader_epoch: AtomicI32,
    high_watermark: AtomicI64,
    /// The first offset of the oldest open transaction, or the high watermark: what a
    /// `read_committed` consumer may see.
    last_stable_offset: AtomicI64,
    log_start_offset: AtomicI64,
    settings: RwLock<Arc<TopicSettings>>,
    /// Serialises group-commit flushes: whoever holds it syncs for everyone queued behind.
    flush_lock: tokio::sync::Mutex<()>,
    /// Fetches parked until this partition changes (Kafka's delayed-fetch purgatory, keyed by
    /// partition): an append wakes only the fetches that read this partition.
    fetch_waiters: Mutex<Vec<Weak<Notify>>>,
}

impl Partition {
    /// Locks the log. Poisoning means a panic mid-append: the log state is unknown, so we stop.
    pub fn log(&self) -> MutexGuard<'_, PartitionLog> {
        self.log.lock().expect("partition log lock poisoned")
    }

    pub fn leader_epoch(&self) -> i32 {
        self.leader_epoch.load(Ordering::Acquire)
    }

    /// Kafka's check of a request's `current_leader_epoch` (-1 skips it): a newer epoch than ours
    /// means our metadata is behind (UNKNOWN_LEADER_EPOCH), an older one means the client's is
    /// (FENCED_LEADER_EPOCH).
    pub fn check_leader_epoch(&self, requested: i32) -> Result<(), runnel_protocol::ErrorCode> {
        use runnel_protocol::ErrorCode;
        let epoch = self.leader_epoch();
        match requested {
            r if r < 0 || r == epoch => Ok(()),
            r if r > epoch => Err(ErrorCode::UNKNOWN_LEADER_EPOCH),
            _ => Err(ErrorCode::FENCED_LEADER_EPOCH),
        }
    }

    pub fn high_watermark(&self) -> i64 {
        self.high_watermark.load(Ordering::Acquire)
    }

    pub fn log_start_offset(&self) -> i64 {
        self.log_start_offset.load(Ordering::Acquire)
    }

    pub fn last_stable_offset(&self) -> i64 {
        self.last_stable_offset.load(Ordering::Acquire)
    }

    fn dir(&self) -> PathBuf {
        self.log().dir().to_path_buf()
    }

    pub fn settings(&self) -> Arc<TopicSettings> {
        self.settings.read().expect("settings lock poisoned").clone()
    }

    /// Publishes what an append or a deletion changed, and wakes the fetches parked on this
    /// partition. Called with the log lock held so the published offsets are never older than
    /// what a reader of the log sees.
    pub fn publish(&self, log: &PartitionLog) {
        self.last_stable_offset
            .store(last_stable_offset(log), Ordering::Release);
        self.high_watermark.store(log.log_end_offset(), Ordering::Release);
        self.log_start_offset.store(log.log_start_offset(), Ordering::Release);
        let parked = std::mem::take(&mut *self.fetch_waiters.lock().expect("fetch waiters lock poisoned"));
        for waiter in parked.iter().filter_map(Weak::upgrade) {
            // A permit is kept if the fetch is not waiting yet, so a change between its read
            // and its wait is never missed.
            waiter.notify_one();
        }
    }

    /// Wakes `waiter` at this partition's next change. A fetch registers before it reads the
    /// partition; a waiter dropped meanwhile is skipped and forgotten.
    pub fn wake_on_change(&self, waiter: &Arc<Notify>) {
        let mut waiters = self.fetch_waiters.lock().expect("fetch waiters lock poisoned");
        waiters.retain(|w| w.strong_count() > 0);
        waiters.push(Arc::downgrade(waiter));
    }

    /// Waits until every append up to `offset` is on disk (`log.flush.policy=fsync`). Concurrent
    /// callers share one fdatasync: the first takes the flush lock and syncs everything appended
    /// so far; those queued behind it find their offset already covered.
    pub async fn flush_through(&self, offset: i64) -> Result<(), StorageError> {
        let _turn = self.flush_lock.lock().await;
        let target = {
            let log = self.log();
            if log.flushed_offset() > offset {
                return Ok(());
            }
            log.sync_target()
        };
        let synced = target.clone();
        tokio::task::spawn_blocking(move || synced.sync())
            .await
            .map_err(|e| StorageError::Io {
                path: self.dir(),
                source: std::io::Error::other(e),
            })?
            .map_err(|e| StorageError::Io {
                path: self.dir(),
                source: e,
            })?;
        self.log().mark_flushed(target.end_offset);
        Ok(())
    }
}

/// The first offset of the oldest open transaction, capped by the high watermark (the log end
/// offset: one replica).
fn last_stable_offset(log: &PartitionLog) -> i64 {
    let hw = log.log_end_offset();
    log.first_unstable_offset().map_or(hw, |first| first.min(hw))
}

/// All partitions hosted here.
pub struct ReplicaManager {
    node_id: i32,
    log_dir: PathBuf,
    partitions: RwLock<HashMap<TopicPartition, Arc<Partition>>>,
    /// Held for a whole `sync_with_image`, so two syncs never open the same log twice, while
    /// the map's own lock is held only to look up and to swap entries, never across file work.
    /// It holds the metadata offset of the newest image applied: an older image that reaches
    /// the lock later (the metadata follower racing a request's own sync) is skipped, or it
    /// would delete the partitions of a topic the newer image just created.
    syncing: Mutex<u64>,
}

impl ReplicaManager {
    pub fn new(node_id: i32, log_dir: PathBuf) -> Self {
        ReplicaManager {
            node_id,
            log_dir,
            partitions: RwLock::new(HashMap::new()),
            syncing: Mutex::new(0),
        }
    }

    pub fn log_dir(&self) -> &Path {
        &self.log_dir
    }

    pub fn get(&self, topic: &str, partition: i32) -> Option<Arc<Partition>> {
        let map = self.partitions.read().expect("replica map lock poisoned");
        map.get(&(topic.to_string(), partition)).cloned()
    }

    pub fn all(&self) -> Vec<Arc<Partition>> {
        self.partitions
            .read()
            .expect("replica map lock poisoned")
            .values()
            .cloned()
            .collect()
    }

    /// Brings the hosted partitions in line with `image`: opens (or creates) the log of every
    /// partition this node replicates, applies config changes, and deletes the logs of topics
    /// the image no longer has.
    pub fn sync_with_image(
        &self,
        image: &MetadataImage,
        settings_for: &dyn Fn(&TopicImage) -> TopicSettings,
        now_ms: i64,
    ) -> Result<(), StorageError> {
        let mut synced_offset = self.syncing.lock().expect("replica sync lock poisoned");
        if image.offset < *synced_offset {
            return Ok(());
        }
        let mut wanted = HashMap::new();
        for topic in image.topics() {
            let settings = Arc::new(settings_for(topic));
            for p in &topic.partitions {
                if p.replicas.contains(&self.node_id) {
                    wanted.insert(
                        (topic.name.clone(), p.partition),
                        (topic.clone(), p.leader_epoch, settings.clone()),
                    );
                }
            }
        }
        // Creating a topic opens a log per partition, and deleting one removes files: none of
        // that happens under the map's lock, which every produce and fetch takes to look up
        // its partition.
        let mut missing = Vec::new();
        {
            let map = self.partitions.read().expect("replica map lock poisoned");
            for (tp, (topic, epoch, settings)) in wanted.iter() {
                // A partition of a deleted topic of the same name is replaced, below.
                let Some(part) = map.get(tp).filter(|part| part.topic_id == topic.id) else {
                    missing.push(tp.clone());
                    continue;
                };
                part.leader_epoch.store(*epoch, Ordering::Release);
                if *part.settings() != **settings {
                    part.log().update_config(settings.log.clone());
                    *part.settings.write().expect("settings lock poisoned") = settings.clone();
                }
            }
        }
        let removed: Vec<Arc<Partition>> = {
            let mut map = self.partitions.write().expect("replica map lock poisoned");
            let keys: Vec<TopicPartition> = map
                .iter()
                .filter(|(tp, part)| wanted.get(*tp).is_none_or(|(t, _, _)| t.id != part.topic_id))
                .map(|(tp, _)| tp.clone())
                .collect();
            keys.iter().filter_map(|tp| map.remove(tp)).collect()
        };
        for part in removed {
            tracing::info!(topic = %part.topic, partition = part.index, "deleting partition log");
            delete_partition(part)?;
        }
        let to_open: Vec<_> = missing.iter().filter_map(|tp| wanted.remove_entry(tp)).collect();
        for (tp, (topic, epoch, settings)) in to_open {
            let dir = self.log_dir.join(format!("{}-{}", tp.0, tp.1));
            let log = PartitionLog::open(&dir, Some(topic.id), settings.log.clone(), now_ms)?;
            let part = Partition {
                topic: tp.0.clone(),
                index: tp.1,
                topic_id: topic.id,
                high_watermark: AtomicI64::new(log.log_end_offset()),
                last_stable_offset: AtomicI64::new(last_stable_offset(&log)),
                log_start_offset: AtomicI64::new(log.log_start_offset()),
                log: Mutex::new(log),
                leader_epoch: AtomicI32::new(epoch),
                settings: RwLock::new(settings),
                flush_lock: tokio::sync::Mutex::new(()),
                fetch_waiters: Mutex::new(Vec::new()),
            };
            let mut map = self.partitions.write().expect("replica map lock poisoned");
            map.insert(tp, Arc::new(part));
        }
        *synced_offset = image.offset;
        Ok(())
    }

    /// Retention, delayed file deletion and time-based flushing for every partition.
    pub fn housekeeping(&self, now_ms: i64) {
        for part in self.all() {
            if part.settings().compact {
                clean_partition(&part, now_ms);
            }
            sync_rolled_segments(&part);
            let mut log = part.log();
            let hw = part.high_watermark();
            // Time and size retention apply only where the cleanup policy includes `delete`.
            if part.settings().delete {
                if let Err(e) = log.enforce_retention(now_ms, hw) {
                    tracing::warn!(topic = %part.topic, partition = part.index, error = %e, "retention failed");
                }
            }
            if let Err(e) = log.purge_deleted(now_ms) {
                tracing::warn!(topic = %part.topic, partition = part.index, error = %e, "purge failed");
            }
            if log.config().flush_policy == FlushPolicy::Kafka {
                if let Err(e) = log.flush_if_due(now_ms) {
                    tracing::warn!(topic = %part.topic, partition = part.index, error = %e, "flush failed");
                }
            }
            part.publish(&log);
        }
    }

    /// Flushes and closes every log (clean shutdown: indexes are trimmed and trusted next time).
    /// Logs close on up to `SHUTDOWN_THREADS` threads: each close is a handful of fsyncs, and
    /// one after the other they took 15 s for 10 000 partitions on our test VM's disk.
    pub fn shutdown(&self) {
        // Held until every log is closed, so nothing opens or finds a partition meanwhile.
        let mut map = self.partitions.write().expect("replica map lock poisoned");
        let parts: Vec<Arc<Partition>> = map.drain().map(|(_, part)| part).collect();
        let threads = SHUTDOWN_THREADS.min(parts.len());
        let queue = Mutex::new(parts.into_iter());
        let next = || queue.lock().unwrap_or_else(|e| e.into_inner()).next();
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(|| {
                    while let Some(part) = next() {
                        close_partition(part);
                    }
                });
            }
        });
        drop(map);
    }
}

/// Threads closing partition logs at shutdown.
const SHUTDOWN_THREADS: usize = 16;

/// Closes `part`'s log, or only flushes it if something still holds the partition.
fn close_partition(part: Arc<Partition>) {
    match Arc::try_unwrap(part) {
        Ok(part) => {
            let log = part.log.into_inner().expect("partition log lock poisoned");
            if let Err(e) = log.close() {
                tracing::warn!(error = %e, "closing partition log failed");
            }
        }
        Err(part) => {
            if let Err(e) = part.log().flush() {
                tracing::warn!(error = %e, "flushing partition log failed");
            }
        }
    }
}

/// One log-cleaner pass for a compacted partition. The partition lock is held only to plan
/// (no data I/O) and to swap the cleaned segments in; reading the old segments and writing the
/// cleaned files happen without it, so appends and fetches carry on meanwhile.
fn clean_partition(part: &Partition, now_ms: i64) {
    let config = CleanerConfig::default();
    let planned = {
        let log = part.log();
        log.plan_clean(now_ms, part.high_watermark())
    };
    let plan = match planned {
        Ok(Some(plan)) => plan,
        Ok(None) => return,
        Err(e) => {
            tracing::warn!(topic = %part.topic, partition = part.index, error = %e, "cleaner planning failed");
            return;
        }
    };
    let cleaned = match plan.execute(now_ms, &config) {
        Ok(cleaned) => cleaned,
        Err(e) => {
            tracing::warn!(topic = %part.topic, partition = part.index, error = %e, "log cleaning failed");
            return;
        }
    };
    let mut log = part.log();
    match log.finish_clean(cleaned, now_ms) {
        Ok(outcome) if outcome.cleaned => tracing::debug!(
            topic = %part.topic,
            partition = part.index,
            bytes_before = outcome.bytes_before,
            bytes_after = outcome.bytes_after,
            records_removed = outcome.records_removed,
            "cleaned log"
        ),
        Ok(_) => {}
        Err(e) => tracing::warn!(topic = %part.topic, partition = part.index, error = %e, "cleaner swap failed"),
    }
    part.publish(&log);
}

/// Syncs the segments `part` rolled since the last pass, outside its log lock (appends and
/// fetches go on meanwhile), then lets its recovery point move past them.
fn sync_rolled_segments(part: &Partition) {
    let Some(rolled) = part.log().roll_sync() else {
        return;
    };
    let synced = rolled
        .sync()
        .map_err(|e| StorageError::Io {
            path: part.dir(),
            source: e,
        })
        .and_then(|()| {
            // The log lock is released (end of this statement) before the checkpoint's fsyncs.
            let checkpoint = part.log().mark_rolls_synced(&rolled);
            checkpoint.map_or(Ok(()), RecoveryPointWrite::write)
        });
    if let Err(e) = synced {
        tracing::warn!(topic = %part.topic, partition = part.index, error = %e, "syncing rolled segments failed");
    }
}

/// How long a deletion waits for the requests and background passes still holding a removed
/// partition. They hold one for a read, an append or a sync (an `acks=all` append until its
/// fsync), so this is seldom more than milliseconds.
const DELETE_WAIT: Duration = Duration::from_secs(5);

/// Deletes a removed partition's log, waiting for its last holders first: its directory must
/// be gone before a new topic of the same name opens the same one (a topic deleted and made
/// again at once, as test suites and benchmarks do, used to find the old directory, with the
/// old topic id, and fail to open).
fn delete_partition(mut part: Arc<Partition>) -> Result<(), StorageError> {
    let deadline = Instant::now() + DELETE_WAIT;
    loop {
        part = match Arc::try_unwrap(part) {
            Ok(part) => return part.log.into_inner().expect("partition log lock poisoned").delete(),
            Err(busy) if Instant::now() < deadline => busy,
            // Still held: its directory is removed when the topic is re-synced or at the next
            // start (an unknown directory is not loaded).
            Err(busy) => {
                tracing::warn!(topic = %busy.topic, partition = busy.index, "partition busy; deleting its files later");
                return Ok(());
            }
        };
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[cfg(test)]
mod tests {

    use runnel_metadata::records::MetadataRecord;

    use super::*;
    use crate::config::{BrokerConfig, LoadOptions};

    /// An image at metadata offset 2 with topic `orders` of `partitions` partitions, and the
    /// empty image before it.
    fn images(partitions: i32) -> (MetadataImage, MetadataImage) {
        let older = MetadataImage::empty().apply_at(&[], 1, 1);
        let newer = older.apply_at(&orders([7u8; 16], partitions), 2, 1);
        (older, newer)
    }

    /// The records creating topic `orders` with `topic_id` and `partitions` partitions on node 1.
    fn orders(topic_id: [u8; 16], partitions: i32) -> Vec<MetadataRecord> {
        let mut records = vec![MetadataRecord::TopicRecord {
            name: "orders".into(),
            topic_id,
        }];
        records.extend((0..partitions).map(|partition| MetadataRecord::PartitionRecord {
            topic_id,
            partition,
            replicas: vec![1],
            isr: vec![1],
            leader: 1,
            leader_epoch: 0,
            partition_epoch: 0,
        }));
        records
    }

    fn sync(replicas: &ReplicaManager, image: &MetadataImage) {
        let (config, _) = BrokerConfig::load(LoadOptions::default()).expect("default config");
        replicas
            .sync_with_image(image, &|t| TopicSettings::resolve(&config, image, &t.name), 0)
            .expect("sync");
    }

    #[test]
    fn an_older_image_applied_late_never_undoes_a_newer_one() {
        // The metadata follower may reach the sync lock with an image older than the one a
        // CreateTopics request just applied; it must not delete the new topic's partition.
        let dir = tempfile::tempdir().expect("tempdir");
        let replicas = ReplicaManager::new(1, dir.path().to_path_buf());
        let (older, newer) = images(1);
        sync(&replicas, &newer);
        assert!(
            replicas.get("orders", 0).is_some(),
            "the newer image opens the partition"
        );
        sync(&replicas, &older);
        assert!(
            replicas.get("orders", 0).is_some(),
            "the older image, applied late, is skipped"
        );
        assert!(dir.path().join("orders-0").exists());
    }

    #[test]
    fn a_topic_deleted_while_a_request_holds_a_partition_can_be_made_again_at_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let replicas = ReplicaManager::new(1, dir.path().to_path_buf());
        let (empty, first) = images(1);
        sync(&replicas, &first);
        // A request in flight: it lets go of the partition a little later.
        let held = replicas.get("orders", 0).expect("partition");
        let request = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            drop(held);
        });
        // Deleted and made again with a new id, as one image change.
        let new_id = [9u8; 16];
        let again = empty.apply_at(&orders(new_id, 1), 3, 1);
        sync(&replicas, &again);
        request.join().expect("request thread");
        let part = replicas.get("orders", 0).expect("the new topic's partition");
        assert_eq!(part.topic_id, new_id);
    }

    #[tokio::test]
    async fn a_change_wakes_only_the_fetches_parked_on_that_partition() {
        let dir = tempfile::tempdir().expect("tempdir");
        let replicas = ReplicaManager::new(1, dir.path().to_path_buf());
        sync(&replicas, &images(2).1);
        let (p0, p1) = (
            replicas.get("orders", 0).expect("p0"),
            replicas.get("orders", 1).expect("p1"),
        );
        let fetch = Arc::new(Notify::new());
        p0.wake_on_change(&fetch);
        let woken = |n: &Arc<Notify>| {
            let n = n.clone();
            async move {
                tokio::time::timeout(Duration::from_millis(20), n.notified())
                    .await
                    .is_ok()
            }
        };
        p1.publish(&p1.log());
        assert!(
            !woken(&fetch).await,
            "a change to another partition leaves the fetch parked"
        );
        p0.publish(&p0.log());
        assert!(woken(&fetch).await, "a change to its partition wakes it");
        p0.publish(&p0.log());
        assert!(!woken(&fetch).await, "woken once per registration");
        // A fetch that gave up is forgotten, not woken.
        let gone = Arc::new(Notify::new());
        p0.wake_on_change(&gone);
        drop(gone);
        p0.wake_on_change(&fetch);
        assert_eq!(p0.fetch_waiters.lock().expect("lock").len(), 1);
    }
}
