//! The broker: shared state every handler sees, start-up and shutdown.
//!
//! Start-up order: format/check storage (cluster id in `meta.properties`), start the metadata
//! quorum and wait until its image is caught up, open the partition logs the image names,
//! then bind the listeners. The operations HTTP listener (`/metrics`, `/healthz`, `/readyz`) is
//! bound first of all, so `/readyz` answers 503 while the quorum and the logs recover. Shutdown reverses it: stop accepting, close logs cleanly, stop Raft.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use runnel_metadata::image::{MetadataImage, TopicImage};
use runnel_metadata::records::MetadataRecord;
use runnel_raft::{MetadataQuorum, QuorumError, QuorumOptions};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::{BrokerConfig, ConfigError, Listener};
use crate::http::HttpState;
use crate::metrics::Metrics;
use crate::replica::ReplicaManager;
use crate::server;
use crate::topic_config::TopicSettings;

/// Milliseconds since the Unix epoch (Kafka's timestamps).
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("metadata quorum: {0}")]
    Quorum(#[from] QuorumError),
    #[error("storage: {0}")]
    Storage(#[from] runnel_storage::StorageError),
    #[error(transparent)]
    TopicsFile(#[from] crate::topics_file::TopicsFileError),
    #[error("cannot bind listener {name} on {address}: {source}")]
    Bind {
        name: String,
        address: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Internal(String),
}

/// A client-facing endpoint: the address clients are told for one listener.
#[derive(Debug, Clone)]
pub struct AdvertisedEndpoint {
    pub listener: String,
    pub host: String,
    pub port: u16,
    pub security_protocol: String,
}

/// Everything request handlers share.
pub struct Broker {
    pub config: BrokerConfig,
    pub node_id: i32,
    pub cluster_id: String,
    pub quorum: MetadataQuorum,
    pub replicas: ReplicaManager,
    /// Advertised endpoints by listener name (ports resolved after binding).
    pub endpoints: Vec<AdvertisedEndpoint>,
    pub started: Instant,
    /// The group coordinator (classic groups and committed offsets).
    pub groups: crate::group::GroupRuntime,
    /// The current block of producer ids (InitProducerId).
    pub producer_ids: crate::producer_ids::ProducerIdManager,
    /// The transaction coordinator (`__transaction_state`).
    pub txns: crate::txn::TxnRuntime,
    /// Counters for `/metrics`, updated by the handlers.
    pub metrics: Arc<Metrics>,
}

impl Broker {
    pub fn image(&self) -> Arc<MetadataImage> {
        self.quorum.image()
    }

    /// The endpoint to advertise to a client that connected through `listener`.
    pub fn endpoint_for(&self, listener: &str) -> Option<&AdvertisedEndpoint> {
        self.endpoints
            .iter()
            .find(|e| e.listener == listener)
            .or_else(|| self.endpoints.first())
    }

    pub fn settings_for(&self, image: &MetadataImage, topic: &TopicImage) -> TopicSettings {
        TopicSettings::resolve(&self.config, image, &topic.name)
    }

    /// Opens, deletes and reconfigures partition logs to match `image`. Creating a topic of
    /// thousands of partitions takes seconds of file work: on a multi-threaded runtime the
    /// calling worker hands its other tasks (other connections) to another thread meanwhile.
    pub fn sync_partitions(&self, image: &MetadataImage) -> Result<(), runnel_storage::StorageError> {
        let sync = || {
            self.replicas
                .sync_with_image(image, &|t| self.settings_for(image, t), now_ms())
        };
        match tokio::runtime::Handle::try_current() {
            Ok(rt) if rt.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(sync)
            }
            _ => sync(),
        }
    }

    /// Writes `records` decided by `decide` through the quorum, then makes the partition logs
    /// follow the new image before returning, so a client that gets a response can use them.
    pub async fn propose<R: Send + 'static>(
        &self,
        decide: impl FnOnce(&MetadataImage) -> (Vec<MetadataRecord>, R) + Send + 'static,
    ) -> Result<R, QuorumError> {
        let outcome = self.quorum.propose(decide).await?;
        if let Err(e) = self.sync_partitions(&self.image()) {
            tracing::error!(error = %e, "applying metadata to partition logs failed");
        }
        Ok(outcome)
    }
}

/// A running broker: its state, the bound listener addresses, and its background tasks.
pub struct BrokerHandle {
    pub broker: Arc<Broker>,
    pub bound: Vec<(String, SocketAddr)>,
    /// Where the operations HTTP listener is bound (`None` when `runnel.http.listener` is empty).
    pub http_addr: Option<SocketAddr>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl BrokerHandle {
    /// Stops accepting, waits for the listener tasks, closes logs and stops the quorum.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        for t in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
        }
        self.broker.replicas.shutdown();
        if let Err(e) = self.broker.quorum.shutdown().await {
            tracing::warn!(error = %e, "metadata quorum shutdown");
        }
    }
}

/// Starts a broker with `config`: storage, metadata quorum, partition logs, listeners.
pub async fn start(config: BrokerConfig) -> Result<BrokerHandle, StartError> {
    let started = Instant::now();
    // An invalid topics file fails start-up before anything is bound or written.
    let topics_file = match &config.topics_file {
        Some(path) => Some((path.clone(), crate::topics_file::load(path)?)),
        None => None,
    };
    let (shutdown, shutdown_rx) = watch::channel(false);
    let mut tasks = Vec::new();
    let metrics = Arc::new(Metrics::new(per_partition_metrics(&config)));
    let http = HttpState::new(metrics.clone());
    let http_addr = bind_http(&config, &http, &shutdown_rx, &mut tasks).await?;
    let cluster_id = config.ensure_storage_formatted()?;
    let quorum = MetadataQuorum::start(QuorumOptions {
        node_id: config.node_id as u64,
        dir: config.metadata_log_dir.join("__cluster_metadata-0"),
        cluster_id: cluster_id.clone(),
        snapshot_every_entries: 1000,
    })
    .await?;
    if quorum.image().cluster_id().is_none() {
        let id = cluster_id.clone();
        quorum
            .propose(move |_| (vec![MetadataRecord::ClusterRecord { cluster_id: id }], ()))
            .await?;
    }

    let mut bound = Vec::new();
    let mut listeners = Vec::new();
    for l in client_listeners(&config) {
        let address = l.bind_address();
        let socket = TcpListener::bind(&address).await.map_err(|source| StartError::Bind {
            name: l.name.clone(),
            address: address.clone(),
            source,
        })?;
        let local = socket.local_addr().map_err(|source| StartError::Bind {
            name: l.name.clone(),
            address,
            source,
        })?;
        bound.push((l.name.clone(), local));
        listeners.push((l.name.clone(), socket));
    }
    let endpoints = advertised_endpoints(&config, &bound);
    let node_id = config.node_id;
    let log_dir = config.log_dirs.first().cloned().unwrap_or_else(|| "./data".into());
    let broker = Arc::new(Broker {
        replicas: ReplicaManager::new(node_id, log_dir),
        config,
        node_id,
        cluster_id,
        quorum,
        endpoints,
        started,
        groups: crate::group::GroupRuntime::new(),
        producer_ids: crate::producer_ids::ProducerIdManager::new(),
        txns: crate::txn::TxnRuntime::new(),
        metrics,
    });
    http.readiness.waiting("partition log recovery");
    let recovering = broker.clone();
    tokio::task::spawn_blocking(move || recovering.sync_partitions(&recovering.image()))
        .await
        .map_err(|e| runnel_storage::StorageError::Io {
            path: broker.replicas.log_dir().to_path_buf(),
            source: std::io::Error::other(e),
        })??;
    // Attached after recovery: the replica map is write-locked while logs are opened, and a
    // scrape must not wait on it (until then /metrics shows counters and process metrics).
    http.attach(&broker);
    http.readiness
        .waiting("start-up (topics file, consumer groups, transactions)");
    // Topics from YAML: reconciled through the controller before any listener serves.
    if let Some((path, file)) = &topics_file {
        if let Err(e) = crate::topics_file::apply_at_startup(&broker, path, file).await {
            broker.replicas.shutdown();
            let _ = broker.quorum.shutdown().await;
            return Err(e.into());
        }
    }

    // Groups are loaded from __consumer_offsets before any listener serves.
    tasks.push(crate::group::start(&broker, shutdown_rx.clone()).await?);
    // Transactions after groups: finishing an in-doubt transaction completes its offsets.
    tasks.push(crate::txn::start(&broker, shutdown_rx.clone()).await?);
    for (name, socket) in listeners {
        tasks.push(tokio::spawn(server::run(
            socket,
            name,
            broker.clone(),
            shutdown_rx.clone(),
        )));
    }
    tasks.push(tokio::spawn(follow_metadata(broker.clone(), shutdown_rx.clone())));
    tasks.push(tokio::spawn(housekeeping(broker.clone(), shutdown_rx)));
    http.readiness.ready();
    tracing::info!(elapsed_ms = started.elapsed().as_millis() as u64, "broker started");
    Ok(BrokerHandle {
        broker,
        bound,
        http_addr,
        shutdown,
        tasks,
    })
}

/// `runnel.metrics.per.partition` (default true): false drops the per-partition series.
fn per_partition_metrics(config: &BrokerConfig) -> bool {
    config
        .effective("runnel.metrics.per.partition")
        .is_none_or(|v| !v.trim().eq_ignore_ascii_case("false"))
}

/// Binds `runnel.http.listener` (empty disables it) and starts serving; fails start-up like
/// any other listener that cannot bind.
async fn bind_http(
    config: &BrokerConfig,
    state: &Arc<HttpState>,
    shutdown: &watch::Receiver<bool>,
    tasks: &mut Vec<JoinHandle<()>>,
) -> Result<Option<SocketAddr>, StartError> {
    let address = config.http_listener.trim();
    if address.is_empty() {
        return Ok(None);
    }
    let bind_error = |source| StartError::Bind {
        name: "http".into(),
        address: address.to_string(),
        source,
    };
    let socket = TcpListener::bind(address).await.map_err(bind_error)?;
    let local = socket.local_addr().map_err(bind_error)?;
    tasks.push(tokio::spawn(crate::http::run(socket, state.clone(), shutdown.clone())));
    Ok(Some(local))
}

/// Listeners that serve clients (controller listeners are for the quorum).
fn client_listeners(config: &BrokerConfig) -> Vec<Listener> {
    config
        .listeners
        .iter()
        .filter(|l| !config.is_controller_listener(&l.name))
        .cloned()
        .collect()
}

/// The advertised endpoint of each bound listener; a port of 0 (bind to any free port) is
/// replaced by the port actually bound, so tests can run many brokers side by side.
fn advertised_endpoints(config: &BrokerConfig, bound: &[(String, SocketAddr)]) -> Vec<AdvertisedEndpoint> {
    let mut out = Vec::new();
    for (name, addr) in bound {
        let advertised = config.advertised_listeners.iter().find(|l| &l.name == name);
        let (host, port) = match advertised {
            Some(l) => (l.host.clone(), if l.port == 0 { addr.port() } else { l.port }),
            None => (addr.ip().to_string(), addr.port()),
        };
        let host = if host.is_empty() || host == "0.0.0.0" || host == "::" {
            "localhost".to_string()
        } else {
            host
        };
        let security_protocol = config
            .listener_security_protocol_map
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, p)| p.name().to_string())
            .unwrap_or_else(|| "PLAINTEXT".into());
        out.push(AdvertisedEndpoint {
            listener: name.clone(),
            host,
            port,
            security_protocol,
        });
    }
    out
}

/// Applies every new metadata image to the partition logs (deletions, config changes).
async fn follow_metadata(broker: Arc<Broker>, mut shutdown: watch::Receiver<bool>) {
    let mut images = broker.quorum.subscribe();
    loop {
        tokio::select! {
            changed = images.changed() => {
                if changed.is_err() {
                    return;
                }
                let image = images.borrow_and_update().clone();
                if let Err(e) = broker.sync_partitions(&image) {
                    tracing::error!(error = %e, "applying metadata to partition logs failed");
                }
            }
            _ = shutdown.changed() => return,
        }
    }
}

/// Retention, delayed deletes and interval flushes, on `log.retention.check.interval.ms`
/// (bounded to at most every second so `file.delete.delay.ms` and `flush.ms` stay timely).
async fn housekeeping(broker: Arc<Broker>, mut shutdown: watch::Receiver<bool>) {
    let period_ms = broker.config.log.retention_check_interval_ms.clamp(100, 1000) as u64;
    let mut tick = tokio::time::interval(Duration::from_millis(period_ms));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let b = broker.clone();
                let _ = tokio::task::spawn_blocking(move || b.replicas.housekeeping(now_ms())).await;
            }
            _ = shutdown.changed() => return,
        }
    }
}
