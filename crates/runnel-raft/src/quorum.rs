//! `MetadataQuorum`: start-up, proposals and status over the openraft instance.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{ClientWriteError, RaftError};
use openraft::{BasicNode, Config, Raft, ServerState, SnapshotPolicy};
use runnel_metadata::{MetadataImage, MetadataRecord};
use tokio::sync::{watch, Mutex};

use crate::log_store::LogStore;
use crate::network::NoNetwork;
use crate::state_machine::StateMachine;
use crate::types::{MetadataBatch, NodeId, TypeConfig};

/// How long start-up waits for leadership and catch-up before giving up.
const STARTUP_TIMEOUT_MS: u64 = 10_000;

#[derive(Clone, Debug)]
pub struct QuorumOptions {
    pub node_id: u64,
    /// Directory of the metadata log; the broker passes Kafka's layout,
    /// `<metadata.log.dir>/__cluster_metadata-0`. Nothing else may write there.
    pub dir: PathBuf,
    pub cluster_id: String,
    /// Take a snapshot (and purge the log before it) every this many entries.
    pub snapshot_every_entries: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuorumStatus {
    pub leader_id: Option<u64>,
    /// Raft term (Kafka's "epoch" in DescribeQuorum and `kafka_server_raftmetrics_current_epoch`).
    pub epoch: u64,
    /// Index of the last committed entry.
    pub high_watermark: u64,
    pub voters: Vec<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum QuorumError {
    #[error("metadata log i/o error: {0}")]
    Io(String),
    #[error("metadata log is corrupt: {0}")]
    Corrupt(String),
    #[error("cluster id mismatch: metadata log belongs to cluster {found}, configured {expected}")]
    ClusterIdMismatch { expected: String, found: String },
    #[error("this node is not the metadata leader (leader: {leader_id:?})")]
    NotLeader { leader_id: Option<u64> },
    #[error("timed out: {0}")]
    Timeout(String),
    #[error("metadata quorum stopped: {0}")]
    Fatal(String),
    #[error("invalid quorum options: {0}")]
    InvalidOptions(String),
}

struct Inner {
    node_id: NodeId,
    raft: Raft<TypeConfig>,
    state_machine: StateMachine,
    log_store: LogStore,
    /// Serializes controller steps: decide against the latest image, append, wait for apply.
    controller_lock: Mutex<()>,
}

#[derive(Clone)]
pub struct MetadataQuorum {
    inner: Arc<Inner>,
}

impl MetadataQuorum {
    /// Opens/creates the on-disk raft log, vote and snapshot under `dir`, starts openraft,
    /// initializes a one-voter membership on first start, and waits until this node is leader
    /// and the image reflects everything committed.
    pub async fn start(opts: QuorumOptions) -> Result<Self, QuorumError> {
        if opts.cluster_id.is_empty() {
            return Err(QuorumError::InvalidOptions("cluster id must not be empty".into()));
        }
        let dir = opts.dir.clone();
        create_dir_durable(&dir)?;
        let log_store = LogStore::open(&dir).map_err(|e| match e {
            crate::log_store::LogOpenError::Io { .. } => QuorumError::Io(e.to_string()),
            crate::log_store::LogOpenError::Corrupt { .. } => QuorumError::Corrupt(e.to_string()),
        })?;
        let state_machine = StateMachine::open(&dir).map_err(QuorumError::Corrupt)?;
        let config = raft_config(&opts)?;
        let raft = Raft::new(
            opts.node_id,
            config,
            NoNetwork,
            log_store.clone(),
            state_machine.clone(),
        )
        .await
        .map_err(|e| QuorumError::Fatal(e.to_string()))?;
        let quorum = Self {
            inner: Arc::new(Inner {
                node_id: opts.node_id,
                raft,
                state_machine,
                log_store,
                controller_lock: Mutex::new(()),
            }),
        };
        let ready = match quorum.become_leader().await {
            Ok(()) => quorum.ensure_cluster_id(&opts.cluster_id).await,
            Err(e) => Err(e),
        };
        if let Err(e) = ready {
            // Stop openraft's tasks now, so the directory is free for a retry in this process.
            let _ = quorum.shutdown().await;
            return Err(e);
        }
        Ok(quorum)
    }

    /// First start: initialize the one-voter membership (elects at once). Restart: a lone voter
    /// that was leader is restored as leader by openraft; otherwise elect now instead of waiting
    /// for an election timeout. Then wait until everything in the log is applied.
    async fn become_leader(&self) -> Result<(), QuorumError> {
        let raft = &self.inner.raft;
        let me = self.inner.node_id;
        let fatal = |e: openraft::error::Fatal<NodeId>| QuorumError::Fatal(e.to_string());
        if !raft.is_initialized().await.map_err(fatal)? {
            let members = BTreeMap::from([(me, BasicNode::default())]);
            raft.initialize(members)
                .await
                .map_err(|e| QuorumError::Fatal(e.to_string()))?;
        } else if let Some(voters) = self.other_voters() {
            let msg = format!("metadata log voters {voters:?} are not just this node ({me}); multi-voter quorums are not supported yet");
            return Err(QuorumError::InvalidOptions(msg));
        }
        let already_leader = raft.metrics().borrow().current_leader == Some(me);
        if !already_leader {
            raft.trigger().elect().await.map_err(fatal)?;
        }
        let timeout = Some(Duration::from_millis(STARTUP_TIMEOUT_MS));
        raft.wait(timeout)
            .metrics(
                |m| {
                    m.state == ServerState::Leader
                        && m.current_leader == Some(me)
                        && m.last_applied.map(|l| l.index) == m.last_log_index
                },
                "leader with all entries applied",
            )
            .await
            .map_err(|e| QuorumError::Timeout(e.to_string()))?;
        Ok(())
    }

    /// `Some(voters)` when the stored membership is anything but this node alone.
    fn other_voters(&self) -> Option<BTreeSet<NodeId>> {
        let metrics = self.inner.raft.metrics();
        let m = metrics.borrow();
        let voters: BTreeSet<NodeId> = m.membership_config.membership().voter_ids().collect();
        let lone = voters.len() == 1 && voters.contains(&self.inner.node_id);
        (!lone).then_some(voters)
    }

    async fn ensure_cluster_id(&self, cluster_id: &str) -> Result<(), QuorumError> {
        let wanted = cluster_id.to_string();
        let found = self
            .propose(move |image| match image.cluster_id() {
                Some(found) => (Vec::new(), Some(found.to_string())),
                None => (vec![MetadataRecord::ClusterRecord { cluster_id: wanted }], None),
            })
            .await?;
        match found {
            Some(found) if found != cluster_id => Err(QuorumError::ClusterIdMismatch {
                expected: cluster_id.to_string(),
                found,
            }),
            _ => Ok(()),
        }
    }

    /// The latest applied image.
    pub fn image(&self) -> Arc<MetadataImage> {
        self.inner.state_machine.image()
    }

    /// A receiver that sees every newly applied image.
    pub fn subscribe(&self) -> watch::Receiver<Arc<MetadataImage>> {
        self.inner.state_machine.subscribe()
    }

    /// Serialized controller step: runs `decide` against the latest image under the controller
    /// lock, appends the returned records as ONE raft entry, waits until it is committed and
    /// applied, and returns `decide`'s outcome. An empty record list writes nothing.
    pub async fn propose<R: Send>(
        &self,
        decide: impl FnOnce(&MetadataImage) -> (Vec<MetadataRecord>, R) + Send,
    ) -> Result<R, QuorumError> {
        let _guard = self.inner.controller_lock.lock().await;
        // Reads the image only after everything committed is applied (and we are still leader).
        self.inner
            .raft
            .ensure_linearizable()
            .await
            .map_err(|e| self.map_raft_error(e))?;
        let image = self.image();
        let (records, outcome) = decide(&image);
        if records.is_empty() {
            return Ok(outcome);
        }
        self.inner
            .raft
            .client_write(MetadataBatch { records })
            .await
            .map_err(|e| self.map_raft_error(e))?;
        Ok(outcome)
    }

    fn map_raft_error<E>(&self, e: RaftError<NodeId, E>) -> QuorumError
    where
        E: std::fmt::Debug + std::fmt::Display + LeaderHint,
    {
        match e {
            RaftError::APIError(api) => match api.leader_hint() {
                Some(leader_id) => QuorumError::NotLeader { leader_id },
                None => QuorumError::Fatal(api.to_string()),
            },
            RaftError::Fatal(f) => QuorumError::Fatal(f.to_string()),
        }
    }

    pub fn status(&self) -> QuorumStatus {
        let metrics = self.inner.raft.metrics();
        let m = metrics.borrow();
        let committed = self.inner.log_store.committed_index();
        let applied = m.last_applied.map_or(0, |l| l.index);
        QuorumStatus {
            leader_id: m.current_leader,
            epoch: m.current_term,
            high_watermark: committed.max(applied),
            voters: m.membership_config.membership().voter_ids().collect(),
        }
    }

    /// Stops openraft. In-flight proposals fail; everything acknowledged is already durable.
    pub async fn shutdown(&self) -> Result<(), QuorumError> {
        self.inner
            .raft
            .shutdown()
            .await
            .map_err(|e| QuorumError::Fatal(e.to_string()))
    }
}

/// Pulls a "not the leader" hint out of openraft's API errors; `None` = not a leadership error.
trait LeaderHint {
    fn leader_hint(&self) -> Option<Option<u64>>;
}

impl LeaderHint for ClientWriteError<NodeId, BasicNode> {
    fn leader_hint(&self) -> Option<Option<u64>> {
        match self {
            ClientWriteError::ForwardToLeader(f) => Some(f.leader_id),
            ClientWriteError::ChangeMembershipError(_) => None,
        }
    }
}

impl LeaderHint for openraft::error::CheckIsLeaderError<NodeId, BasicNode> {
    fn leader_hint(&self) -> Option<Option<u64>> {
        match self {
            openraft::error::CheckIsLeaderError::ForwardToLeader(f) => Some(f.leader_id),
            openraft::error::CheckIsLeaderError::QuorumNotEnough(_) => Some(None),
        }
    }
}

/// Creates `dir` (and parents) and makes the new directory entry durable.
fn create_dir_durable(dir: &std::path::Path) -> Result<(), QuorumError> {
    let io = |e: std::io::Error| QuorumError::Io(format!("{}: {e}", dir.display()));
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::create_dir_all(dir).map_err(io)?;
    crate::fsutil::sync_dir(dir).map_err(io)
}

fn raft_config(opts: &QuorumOptions) -> Result<Arc<Config>, QuorumError> {
    let snapshot_every = opts.snapshot_every_entries.max(1);
    let config = Config {
        cluster_name: opts.cluster_id.clone(),
        // Elections are triggered explicitly at start-up; these only matter for a lost leader.
        election_timeout_min: 300,
        election_timeout_max: 600,
        heartbeat_interval: 100,
        snapshot_policy: SnapshotPolicy::LogsSinceLast(snapshot_every),
        // Purge everything a snapshot covers: the snapshot replaces it on restart.
        max_in_snapshot_log_to_keep: 0,
        purge_batch_size: 1,
        ..Default::default()
    };
    config
        .validate()
        .map(Arc::new)
        .map_err(|e| QuorumError::InvalidOptions(e.to_string()))
}
