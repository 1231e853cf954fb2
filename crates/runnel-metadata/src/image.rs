//! `MetadataImage`: the immutable view of cluster metadata after replaying the metadata log.
//!
//! Owns: the in-memory state derived from records, and its snapshot encoding.
//! Must never: be mutated in place once shared; the next version is derived with [`MetadataImage::apply`].
//!
//! Invariants: topics are keyed by id; `topic_ids_by_name` is the exact inverse of
//! `topics_by_id`. Cloning an image is O(number of maps): every map sits behind an `Arc` and every
//! topic behind its own `Arc`, so a batch touching one topic copies one topic, not all 10 000
//! partitions of the cluster (copy-on-write through `Arc::make_mut`).

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::records::{
    decode_versioned, encode_versioned, DecodeError, Endpoint, MetadataRecord, TopicId, NO_LEADER,
    RESOURCE_TYPE_BROKER, RESOURCE_TYPE_TOPIC,
};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionImage {
    pub partition: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    pub leader: i32,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicImage {
    pub name: String,
    pub id: TopicId,
    /// Indexed by partition number: partition `i` is at `partitions[i]`.
    pub partitions: Vec<PartitionImage>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerRegistration {
    pub broker_id: i32,
    pub incarnation_id: [u8; 16],
    pub epoch: i64,
    pub endpoints: Vec<Endpoint>,
    pub rack: Option<String>,
}

type ConfigMap = Arc<BTreeMap<String, String>>;

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct MetadataImage {
    /// Metadata log offset (raft index) of the last applied entry; 0 = nothing applied.
    pub offset: u64,
    /// Epoch (raft term) of the last applied entry.
    pub epoch: u64,
    cluster_id: Option<String>,
    topics_by_id: Arc<BTreeMap<TopicId, Arc<TopicImage>>>,
    topic_ids_by_name: Arc<BTreeMap<String, TopicId>>,
    /// Overrides only, keyed by topic name.
    topic_configs: Arc<BTreeMap<String, ConfigMap>>,
    /// Keyed by broker resource name ("" = cluster-wide default, else the broker id).
    broker_configs: Arc<BTreeMap<String, ConfigMap>>,
    brokers: Arc<BTreeMap<i32, BrokerRegistration>>,
    next_producer_id: i64,
    features: Arc<BTreeMap<String, i16>>,
}

/// Snapshot file body: the records that rebuild the image, plus where in the log it stands.
#[derive(Serialize, Deserialize)]
struct SnapshotBody {
    offset: u64,
    epoch: u64,
    records: Vec<MetadataRecord>,
}

impl MetadataImage {
    pub fn empty() -> Self {
        Self::default()
    }

    pub fn cluster_id(&self) -> Option<&str> {
        self.cluster_id.as_deref()
    }

    pub fn topic(&self, name: &str) -> Option<&Arc<TopicImage>> {
        self.topic_ids_by_name
            .get(name)
            .and_then(|id| self.topics_by_id.get(id))
    }

    pub fn topic_by_id(&self, id: &TopicId) -> Option<&Arc<TopicImage>> {
        self.topics_by_id.get(id)
    }

    /// Topics in name order.
    pub fn topics(&self) -> impl Iterator<Item = &Arc<TopicImage>> {
        self.topic_ids_by_name
            .values()
            .filter_map(|id| self.topics_by_id.get(id))
    }

    pub fn topic_count(&self) -> usize {
        self.topics_by_id.len()
    }

    /// Topic config overrides (empty map when none).
    pub fn topic_configs(&self, topic: &str) -> &BTreeMap<String, String> {
        config_or_empty(&self.topic_configs, topic)
    }

    /// Dynamic broker config overrides; `""` names the cluster-wide default resource.
    pub fn broker_configs(&self, resource_name: &str) -> &BTreeMap<String, String> {
        config_or_empty(&self.broker_configs, resource_name)
    }

    pub fn brokers(&self) -> &BTreeMap<i32, BrokerRegistration> {
        &self.brokers
    }

    pub fn next_producer_id(&self) -> i64 {
        self.next_producer_id
    }

    pub fn features(&self) -> &BTreeMap<String, i16> {
        &self.features
    }

    /// Derives the next image. Records are events already validated by the controller; a record
    /// that refers to something missing (e.g. a change to a removed topic) is ignored, as a
    /// replay must never fail halfway.
    pub fn apply(&self, records: &[MetadataRecord]) -> MetadataImage {
        let mut next = self.clone();
        for record in records {
            next.apply_one(record);
        }
        next
    }

    /// Same as [`Self::apply`] and also moves the log position.
    pub fn apply_at(&self, records: &[MetadataRecord], offset: u64, epoch: u64) -> MetadataImage {
        let mut next = self.apply(records);
        next.offset = offset;
        next.epoch = epoch;
        next
    }

    fn apply_one(&mut self, record: &MetadataRecord) {
        match record {
            MetadataRecord::ClusterRecord { cluster_id } => self.cluster_id = Some(cluster_id.clone()),
            MetadataRecord::TopicRecord { name, topic_id } => self.add_topic(name, *topic_id),
            MetadataRecord::PartitionRecord {
                topic_id,
                partition,
                replicas,
                isr,
                leader,
                leader_epoch,
                partition_epoch,
            } => {
                let p = PartitionImage {
                    partition: *partition,
                    replicas: replicas.clone(),
                    isr: isr.clone(),
                    leader: *leader,
                    leader_epoch: *leader_epoch,
                    partition_epoch: *partition_epoch,
                };
                self.put_partition(topic_id, p);
            }
            MetadataRecord::PartitionChangeRecord {
                topic_id,
                partition,
                leader,
                isr,
                replicas,
            } => self.change_partition(topic_id, *partition, *leader, isr.as_ref(), replicas.as_ref()),
            MetadataRecord::RemoveTopicRecord { topic_id } => self.remove_topic(topic_id),
            MetadataRecord::ConfigRecord {
                resource_type,
                resource_name,
                name,
                value,
            } => self.set_config(*resource_type, resource_name, name, value.as_deref()),
            MetadataRecord::RegisterBrokerRecord {
                broker_id,
                incarnation_id,
                epoch,
                endpoints,
                rack,
            } => {
                let registration = BrokerRegistration {
                    broker_id: *broker_id,
                    incarnation_id: *incarnation_id,
                    epoch: *epoch,
                    endpoints: endpoints.clone(),
                    rack: rack.clone(),
                };
                Arc::make_mut(&mut self.brokers).insert(*broker_id, registration);
            }
            MetadataRecord::ProducerIdsRecord { next_producer_id, .. } => {
                self.next_producer_id = self.next_producer_id.max(*next_producer_id)
            }
            MetadataRecord::FeatureLevelRecord { name, level } => {
                Arc::make_mut(&mut self.features).insert(name.clone(), *level);
            }
        }
    }

    fn add_topic(&mut self, name: &str, topic_id: TopicId) {
        if self.topics_by_id.contains_key(&topic_id) || self.topic_ids_by_name.contains_key(name) {
            return;
        }
        let topic = TopicImage {
            name: name.to_string(),
            id: topic_id,
            partitions: Vec::new(),
        };
        Arc::make_mut(&mut self.topics_by_id).insert(topic_id, Arc::new(topic));
        Arc::make_mut(&mut self.topic_ids_by_name).insert(name.to_string(), topic_id);
    }

    fn topic_mut(&mut self, topic_id: &TopicId) -> Option<&mut TopicImage> {
        if !self.topics_by_id.contains_key(topic_id) {
            return None;
        }
        Arc::make_mut(&mut self.topics_by_id)
            .get_mut(topic_id)
            .map(Arc::make_mut)
    }

    fn put_partition(&mut self, topic_id: &TopicId, p: PartitionImage) {
        let Some(topic) = self.topic_mut(topic_id) else { return };
        let Ok(index) = usize::try_from(p.partition) else {
            return;
        };
        // Partitions are created in order; a record for partition i replaces it or appends it.
        match index.cmp(&topic.partitions.len()) {
            std::cmp::Ordering::Less => topic.partitions[index] = p,
            std::cmp::Ordering::Equal => topic.partitions.push(p),
            std::cmp::Ordering::Greater => {}
        }
    }

    fn change_partition(
        &mut self,
        topic_id: &TopicId,
        partition: i32,
        leader: Option<i32>,
        isr: Option<&Vec<i32>>,
        replicas: Option<&Vec<i32>>,
    ) {
        let Some(topic) = self.topic_mut(topic_id) else { return };
        let Some(p) = usize::try_from(partition)
            .ok()
            .and_then(|i| topic.partitions.get_mut(i))
        else {
            return;
        };
        if let Some(leader) = leader {
            if leader != p.leader {
                p.leader = leader;
                p.leader_epoch += 1;
            }
        }
        if let Some(isr) = isr {
            p.isr = isr.clone();
        }
        if let Some(replicas) = replicas {
            p.replicas = replicas.clone();
        }
        p.partition_epoch += 1;
    }

    fn remove_topic(&mut self, topic_id: &TopicId) {
        let Some(topic) = Arc::make_mut(&mut self.topics_by_id).remove(topic_id) else {
            return;
        };
        Arc::make_mut(&mut self.topic_ids_by_name).remove(&topic.name);
        // Kafka drops a deleted topic's config overrides with it.
        if self.topic_configs.contains_key(&topic.name) {
            Arc::make_mut(&mut self.topic_configs).remove(&topic.name);
        }
    }

    fn set_config(&mut self, resource_type: i8, resource_name: &str, name: &str, value: Option<&str>) {
        let configs = match resource_type {
            RESOURCE_TYPE_TOPIC => &mut self.topic_configs,
            RESOURCE_TYPE_BROKER => &mut self.broker_configs,
            _ => return,
        };
        let all = Arc::make_mut(configs);
        match value {
            Some(value) => {
                let entry = all.entry(resource_name.to_string()).or_default();
                Arc::make_mut(entry).insert(name.to_string(), value.to_string());
            }
            None => {
                let Some(entry) = all.get_mut(resource_name) else {
                    return;
                };
                Arc::make_mut(entry).remove(name);
                if entry.is_empty() {
                    all.remove(resource_name);
                }
            }
        }
    }

    /// The records that rebuild this image from empty, in dependency order.
    pub fn to_records(&self) -> Vec<MetadataRecord> {
        let mut out = Vec::new();
        if let Some(cluster_id) = &self.cluster_id {
            out.push(MetadataRecord::ClusterRecord {
                cluster_id: cluster_id.clone(),
            });
        }
        for (name, level) in self.features.iter() {
            out.push(MetadataRecord::FeatureLevelRecord {
                name: name.clone(),
                level: *level,
            });
        }
        for b in self.brokers.values() {
            out.push(MetadataRecord::RegisterBrokerRecord {
                broker_id: b.broker_id,
                incarnation_id: b.incarnation_id,
                epoch: b.epoch,
                endpoints: b.endpoints.clone(),
                rack: b.rack.clone(),
            });
        }
        for topic in self.topics_by_id.values() {
            push_topic_records(topic, &mut out);
        }
        push_config_records(RESOURCE_TYPE_TOPIC, &self.topic_configs, &mut out);
        push_config_records(RESOURCE_TYPE_BROKER, &self.broker_configs, &mut out);
        if self.next_producer_id != 0 {
            out.push(MetadataRecord::ProducerIdsRecord {
                broker_id: -1,
                broker_epoch: -1,
                next_producer_id: self.next_producer_id,
            });
        }
        out
    }

    /// Serializes the whole image (Raft snapshot payload).
    pub fn to_snapshot_bytes(&self) -> Vec<u8> {
        let body = SnapshotBody {
            offset: self.offset,
            epoch: self.epoch,
            records: self.to_records(),
        };
        encode_versioned(&body)
    }

    /// Rebuilds an image from [`Self::to_snapshot_bytes`] output.
    pub fn from_snapshot_bytes(bytes: &[u8]) -> Result<MetadataImage, DecodeError> {
        let body: SnapshotBody = decode_versioned(bytes)?;
        Ok(MetadataImage::empty().apply_at(&body.records, body.offset, body.epoch))
    }
}

fn config_or_empty<'a>(map: &'a BTreeMap<String, ConfigMap>, key: &str) -> &'a BTreeMap<String, String> {
    static EMPTY: BTreeMap<String, String> = BTreeMap::new();
    map.get(key).map(|m| m.as_ref()).unwrap_or(&EMPTY)
}

fn push_topic_records(topic: &TopicImage, out: &mut Vec<MetadataRecord>) {
    out.push(MetadataRecord::TopicRecord {
        name: topic.name.clone(),
        topic_id: topic.id,
    });
    for p in &topic.partitions {
        out.push(MetadataRecord::PartitionRecord {
            topic_id: topic.id,
            partition: p.partition,
            replicas: p.replicas.clone(),
            isr: p.isr.clone(),
            leader: p.leader,
            leader_epoch: p.leader_epoch,
            partition_epoch: p.partition_epoch,
        });
    }
}

fn push_config_records(resource_type: i8, configs: &BTreeMap<String, ConfigMap>, out: &mut Vec<MetadataRecord>) {
    for (resource_name, entries) in configs {
        for (name, value) in entries.iter() {
            out.push(MetadataRecord::ConfigRecord {
                resource_type,
                resource_name: resource_name.clone(),
                name: name.clone(),
                value: Some(value.clone()),
            });
        }
    }
}

impl PartitionImage {
    pub fn has_leader(&self) -> bool {
        self.leader != NO_LEADER
    }
}
