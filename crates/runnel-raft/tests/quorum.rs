//! The metadata quorum end to end on a temp dir: durability across restarts, torn tails,
//! snapshots, serialized proposals.

use std::path::Path;
use std::time::{Duration, Instant};

use runnel_metadata::controller::{create_topics, ControllerError, CreateTopicSpec, CreateTopicsOptions, CreatedTopic};
use runnel_metadata::MetadataImage;
use runnel_raft::{MetadataQuorum, QuorumError, QuorumOptions};

fn options(dir: &Path, snapshot_every_entries: u64) -> QuorumOptions {
    QuorumOptions {
        node_id: 1,
        dir: dir.to_path_buf(),
        cluster_id: "test-cluster".into(),
        snapshot_every_entries,
    }
}

/// Creates one topic through the quorum, returning the controller outcome.
async fn create_topic(
    quorum: &MetadataQuorum,
    name: &str,
    partitions: i32,
    id_byte: u8,
) -> Result<CreatedTopic, ControllerError> {
    let spec = CreateTopicSpec {
        name: name.into(),
        num_partitions: partitions,
        replication_factor: 1,
        ..Default::default()
    };
    let opts = CreateTopicsOptions {
        default_num_partitions: 1,
        default_replication_factor: 1,
        live_broker_ids: vec![1],
        topic_ids: vec![[id_byte; 16]],
        ..Default::default()
    };
    quorum
        .propose(move |image: &MetadataImage| {
            let (records, mut outcomes) = create_topics(image, &[spec], &opts);
            (records, outcomes.remove(0))
        })
        .await
        .expect("propose")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_topic_survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    let quorum = MetadataQuorum::start(options(dir.path(), 1000)).await.unwrap();
    assert_eq!(quorum.image().cluster_id(), Some("test-cluster"));
    let status = quorum.status();
    assert_eq!((status.leader_id, status.voters.clone()), (Some(1), vec![1]));
    let mut images = quorum.subscribe();
    create_topic(&quorum, "orders", 3, 1).await.unwrap();
    assert!(images.has_changed().unwrap());
    assert_eq!(images.borrow_and_update().topic("orders").unwrap().partitions.len(), 3);
    let hw_before = quorum.status().high_watermark;
    assert!(hw_before >= quorum.image().offset && quorum.image().offset > 0);
    quorum.shutdown().await.unwrap();

    let started = Instant::now();
    let quorum = MetadataQuorum::start(options(dir.path(), 1000)).await.unwrap();
    eprintln!("restart took {:?}", started.elapsed());
    let image = quorum.image();
    assert_eq!(image.topic("orders").unwrap().partitions.len(), 3);
    assert_eq!(image.cluster_id(), Some("test-cluster"));
    assert!(quorum.status().high_watermark >= hw_before);
    // Writes keep working after a restart.
    create_topic(&quorum, "payments", 1, 2).await.unwrap();
    assert_eq!(quorum.image().topic_count(), 2);
    quorum.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn torn_tail_is_tolerated() {
    let dir = tempfile::tempdir().unwrap();
    let quorum = MetadataQuorum::start(options(dir.path(), 1000)).await.unwrap();
    create_topic(&quorum, "kept", 1, 1).await.unwrap();
    quorum.shutdown().await.unwrap();

    // A frame header promising 100 bytes followed by only 5: a write cut short by a crash.
    let log = dir.path().join("raft.log");
    let mut bytes = std::fs::read(&log).unwrap();
    let good_len = bytes.len();
    bytes.extend_from_slice(&100u32.to_le_bytes());
    bytes.extend_from_slice(&[0xAB; 9]);
    std::fs::write(&log, &bytes).unwrap();

    let quorum = MetadataQuorum::start(options(dir.path(), 1000)).await.unwrap();
    assert!(quorum.image().topic("kept").is_some());
    create_topic(&quorum, "after", 1, 2).await.unwrap();
    quorum.shutdown().await.unwrap();
    let repaired = std::fs::read(&log).unwrap();
    assert!(
        !repaired[good_len..].starts_with(&100u32.to_le_bytes()),
        "torn frame must be gone"
    );

    let quorum = MetadataQuorum::start(options(dir.path(), 1000)).await.unwrap();
    assert!(quorum.image().topic("after").is_some());
    quorum.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corruption_in_the_middle_fails_start() {
    let dir = tempfile::tempdir().unwrap();
    let quorum = MetadataQuorum::start(options(dir.path(), 1000)).await.unwrap();
    create_topic(&quorum, "a", 1, 1).await.unwrap();
    create_topic(&quorum, "b", 1, 2).await.unwrap();
    quorum.shutdown().await.unwrap();
    let log = dir.path().join("raft.log");
    let mut bytes = std::fs::read(&log).unwrap();
    bytes[10] ^= 0xff; // inside the first frame's payload
    std::fs::write(&log, &bytes).unwrap();
    let result = MetadataQuorum::start(options(dir.path(), 1000)).await;
    assert!(matches!(result, Err(QuorumError::Corrupt(_))), "got {:?}", result.err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_then_restart_restores_everything() {
    let dir = tempfile::tempdir().unwrap();
    let quorum = MetadataQuorum::start(options(dir.path(), 3)).await.unwrap();
    for i in 0..10u8 {
        create_topic(&quorum, &format!("t{i}"), 2, i + 1).await.unwrap();
    }
    let expected = quorum.image();
    wait_for(|| dir.path().join("snapshot").exists(), "snapshot file").await;
    // The log before the snapshot is purged: far fewer frames than the 10+ entries written.
    // (`raft-log.meta` is written before the log is rewritten, so wait for the rewrite itself.)
    let frames = || count_frames(&std::fs::read(dir.path().join("raft.log")).unwrap_or_default());
    wait_for(
        || dir.path().join("raft-log.meta").exists() && frames() < 5,
        "log purge",
    )
    .await;
    quorum.shutdown().await.unwrap();

    let quorum = MetadataQuorum::start(options(dir.path(), 3)).await.unwrap();
    let image = quorum.image();
    assert_eq!(image.topic_count(), 10);
    for i in 0..10 {
        assert_eq!(image.topic(&format!("t{i}")), expected.topic(&format!("t{i}")));
    }
    assert!(image.offset >= expected.offset);
    create_topic(&quorum, "more", 1, 99).await.unwrap();
    quorum.shutdown().await.unwrap();
    let quorum = MetadataQuorum::start(options(dir.path(), 3)).await.unwrap();
    assert_eq!(quorum.image().topic_count(), 11);
    quorum.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creates_of_one_name_are_serialized() {
    let dir = tempfile::tempdir().unwrap();
    let quorum = MetadataQuorum::start(options(dir.path(), 1000)).await.unwrap();
    let tasks: Vec<_> = (0..4u8)
        .map(|i| {
            let q = quorum.clone();
            tokio::spawn(async move { create_topic(&q, "same", 1, i + 1).await })
        })
        .collect();
    let mut ok = 0;
    let mut exists = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(e) if e.code == 36 => exists += 1,
            Err(e) => panic!("unexpected error {e}"),
        }
    }
    assert_eq!((ok, exists), (1, 3));
    assert_eq!(quorum.image().topic_count(), 1);
    quorum.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_id_mismatch_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let quorum = MetadataQuorum::start(options(dir.path(), 1000)).await.unwrap();
    quorum.shutdown().await.unwrap();
    let mut other = options(dir.path(), 1000);
    other.cluster_id = "other".into();
    let result = MetadataQuorum::start(other).await;
    assert!(
        matches!(result, Err(QuorumError::ClusterIdMismatch { .. })),
        "got {:?}",
        result.err()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_proposal_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let quorum = MetadataQuorum::start(options(dir.path(), 1000)).await.unwrap();
    let before = quorum.image().offset;
    let answer = quorum.propose(|image| (Vec::new(), image.topic_count())).await.unwrap();
    assert_eq!(answer, 0);
    assert_eq!(quorum.image().offset, before);
    quorum.shutdown().await.unwrap();
}

async fn wait_for(cond: impl Fn() -> bool, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn count_frames(bytes: &[u8]) -> usize {
    let mut pos = 0;
    let mut frames = 0;
    while pos + 8 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[pos..pos + 4].try_into().unwrap()) as usize;
        pos += 8 + len;
        frames += 1;
    }
    frames
}

const KILL9_DIR_ENV: &str = "RUNNEL_RAFT_KILL9_DIR";

/// Child half of `acknowledged_write_survives_abort`: only acts when started by the parent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_child() {
    let Ok(dir) = std::env::var(KILL9_DIR_ENV) else { return };
    let quorum = MetadataQuorum::start(options(Path::new(&dir), 1000)).await.unwrap();
    create_topic(&quorum, "acknowledged", 4, 7).await.unwrap();
    // No shutdown, no destructors: the process dies like kill -9 right after the acknowledgement.
    std::process::abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_write_survives_abort() {
    let dir = tempfile::tempdir().unwrap();
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "kill9_child", "--nocapture", "--test-threads=1"])
        .env(KILL9_DIR_ENV, dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(!status.success(), "child must die by abort");
    let quorum = MetadataQuorum::start(options(dir.path(), 1000)).await.unwrap();
    assert_eq!(
        quorum.image().topic("acknowledged").map(|t| t.partitions.len()),
        Some(4)
    );
    quorum.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_without_committed_hint_still_catches_up() {
    let dir = tempfile::tempdir().unwrap();
    let quorum = MetadataQuorum::start(options(dir.path(), 1000)).await.unwrap();
    create_topic(&quorum, "hinted", 2, 1).await.unwrap();
    quorum.shutdown().await.unwrap();
    std::fs::remove_file(dir.path().join("committed")).unwrap();
    let quorum = MetadataQuorum::start(options(dir.path(), 1000)).await.unwrap();
    assert!(
        quorum.image().topic("hinted").is_some(),
        "start() must return a caught-up image"
    );
    quorum.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_node_id_on_the_same_log_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let quorum = MetadataQuorum::start(options(dir.path(), 1000)).await.unwrap();
    quorum.shutdown().await.unwrap();
    let mut other = options(dir.path(), 1000);
    other.node_id = 2;
    let result = MetadataQuorum::start(other).await;
    assert!(
        matches!(result, Err(QuorumError::InvalidOptions(_))),
        "got {:?}",
        result.err()
    );
    // The failed start released the directory: the right node still starts.
    let quorum = MetadataQuorum::start(options(dir.path(), 1000)).await.unwrap();
    quorum.shutdown().await.unwrap();
}
