//! Transactional offset commits (TxnOffsetCommit): offsets written as part of a producer's
//! transaction stay pending — invisible to OffsetFetch — until the transaction's marker reaches
//! this `__consumer_offsets` partition; a commit marker makes them committed, an abort drops them.
//!
//! Invariant: pending offsets are exactly the offset records of transactional batches after the
//! last marker of their producer, so replaying the log (batches, then markers) rebuilds them.

use runnel_protocol::generated::offset_commit_value::OffsetCommitValue;
use runnel_protocol::generated::txn_offset_commit_request::TxnOffsetCommitRequest;
use runnel_protocol::generated::txn_offset_commit_response::{
    TxnOffsetCommitResponse, TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use runnel_protocol::ErrorCode;

use crate::coordinator::GroupCoordinator;
use crate::group::GroupState;
use crate::record::CoordinatorRecord;

impl GroupCoordinator {
    /// Plans a TxnOffsetCommit: the offset records to write in the producer's transaction, and
    /// the response to send once they are written (and passed to `add_pending_txn_offsets`).
    pub fn txn_offset_commit(
        &self,
        req: &TxnOffsetCommitRequest,
        partition_exists: &dyn Fn(&str, i32) -> bool,
        now_ms: i64,
    ) -> (Vec<CoordinatorRecord>, TxnOffsetCommitResponse) {
        let group_error = self.validate_txn_commit(req).err();
        let mut records = Vec::new();
        let mut topics = Vec::with_capacity(req.topics.len());
        for t in &req.topics {
            let mut partitions = Vec::with_capacity(t.partitions.len());
            for p in &t.partitions {
                let metadata = p.committed_metadata.clone().unwrap_or_default();
                let code = if let Some(code) = group_error {
                    code
                } else if !partition_exists(&t.name, p.partition_index) {
                    ErrorCode::UNKNOWN_TOPIC_OR_PARTITION
                } else if metadata.len() > self.config.offset_metadata_max_bytes {
                    ErrorCode::OFFSET_METADATA_TOO_LARGE
                } else {
                    records.push(CoordinatorRecord::OffsetCommit {
                        group: req.group_id.clone(),
                        topic: t.name.clone(),
                        partition: p.partition_index,
                        value: Some(OffsetCommitValue {
                            offset: p.committed_offset,
                            leader_epoch: p.committed_leader_epoch,
                            metadata,
                            commit_timestamp: now_ms,
                            expire_timestamp: -1,
                            ..Default::default()
                        }),
                    });
                    ErrorCode::NONE
                };
                partitions.push(TxnOffsetCommitResponsePartition {
                    partition_index: p.partition_index,
                    error_code: code.code(),
                    ..Default::default()
                });
            }
            topics.push(TxnOffsetCommitResponseTopic {
                name: t.name.clone(),
                partitions,
                ..Default::default()
            });
        }
        let response = TxnOffsetCommitResponse {
            topics,
            ..Default::default()
        };
        (records, response)
    }

    /// Kafka's transactional variant of the commit checks: no member and no generation means no
    /// check at all; otherwise the member and generation must be current.
    fn validate_txn_commit(&self, req: &TxnOffsetCommitRequest) -> Result<(), ErrorCode> {
        if req.group_id.is_empty() {
            return Err(ErrorCode::INVALID_GROUP_ID);
        }
        let unchecked = req.generation_id < 0 && req.member_id.is_empty() && req.group_instance_id.is_none();
        if let Some(consumer) = self.consumer_groups.get(&req.group_id) {
            if unchecked {
                return Ok(());
            }
            return consumer.validate_offset_commit(&req.member_id, req.generation_id, i16::MAX);
        }
        let Some(group) = self.groups.get(&req.group_id) else {
            return if unchecked {
                Ok(())
            } else {
                Err(ErrorCode::ILLEGAL_GENERATION)
            };
        };
        if group.state == GroupState::Dead {
            return Err(ErrorCode::COORDINATOR_NOT_AVAILABLE);
        }
        if unchecked {
            return Ok(());
        }
        group.validate_member(&req.member_id, req.group_instance_id.as_deref())?;
        if req.generation_id != group.generation {
            return Err(ErrorCode::ILLEGAL_GENERATION);
        }
        Ok(())
    }

    /// Records offsets written in `producer_id`'s open transaction (live, or while loading).
    pub fn add_pending_txn_offsets(&mut self, producer_id: i64, records: Vec<CoordinatorRecord>) {
        let pending = self.pending_txn_offsets.entry(producer_id).or_default();
        for r in records {
            if let CoordinatorRecord::OffsetCommit {
                group,
                topic,
                partition,
                ..
            } = &r
            {
                let key = (group.clone(), topic.clone(), *partition);
                pending.retain(|p| !same_offset(p, &key));
            }
            pending.push(r);
        }
    }

    /// A transaction marker for `producer_id` reached this partition.
    pub fn complete_txn(&mut self, producer_id: i64, commit: bool) {
        let Some(records) = self.pending_txn_offsets.remove(&producer_id) else {
            return;
        };
        if commit {
            self.apply(records);
        }
    }

    /// Whether an open transaction holds an offset for this partition (OffsetFetch with
    /// `require_stable` answers UNSTABLE_OFFSET_COMMIT then).
    pub fn has_pending_offset(&self, group: &str, topic: &str, partition: i32) -> bool {
        let key = (group.to_string(), topic.to_string(), partition);
        self.pending_txn_offsets
            .values()
            .any(|records| records.iter().any(|r| same_offset(r, &key)))
    }
}

fn same_offset(r: &CoordinatorRecord, key: &(String, String, i32)) -> bool {
    matches!(r, CoordinatorRecord::OffsetCommit { group, topic, partition, .. }
        if *group == key.0 && *topic == key.1 && *partition == key.2)
}

#[cfg(test)]
mod tests {
    use runnel_protocol::generated::txn_offset_commit_request::{
        TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
    };

    use super::*;
    use crate::coordinator::CoordinatorConfig;

    fn request(group: &str, offset: i64) -> TxnOffsetCommitRequest {
        TxnOffsetCommitRequest {
            transactional_id: "t".into(),
            group_id: group.into(),
            producer_id: 5,
            producer_epoch: 0,
            generation_id: -1,
            member_id: String::new(),
            topics: vec![TxnOffsetCommitRequestTopic {
                name: "in".into(),
                partitions: vec![TxnOffsetCommitRequestPartition {
                    partition_index: 0,
                    committed_offset: offset,
                    committed_leader_epoch: -1,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    fn offset_of(c: &GroupCoordinator) -> Option<i64> {
        c.committed("g", "in", 0).map(|v| v.offset)
    }

    #[test]
    fn pending_until_commit_marker() {
        let mut c = GroupCoordinator::new(CoordinatorConfig::default());
        let (records, resp) = c.txn_offset_commit(&request("g", 10), &|_, _| true, 1);
        assert_eq!(resp.topics[0].partitions[0].error_code, 0);
        c.add_pending_txn_offsets(5, records);
        assert_eq!(offset_of(&c), None, "invisible before the marker");
        assert!(c.has_pending_offset("g", "in", 0));
        c.complete_txn(5, true);
        assert_eq!(offset_of(&c), Some(10));
        assert!(!c.has_pending_offset("g", "in", 0));
    }

    #[test]
    fn abort_drops_and_later_commits_win() {
        let mut c = GroupCoordinator::new(CoordinatorConfig::default());
        let (r1, _) = c.txn_offset_commit(&request("g", 10), &|_, _| true, 1);
        c.add_pending_txn_offsets(5, r1);
        c.complete_txn(5, true);
        let (r2, _) = c.txn_offset_commit(&request("g", 20), &|_, _| true, 2);
        let (r3, _) = c.txn_offset_commit(&request("g", 30), &|_, _| true, 3);
        c.add_pending_txn_offsets(5, r2);
        c.add_pending_txn_offsets(5, r3);
        c.complete_txn(5, false);
        assert_eq!(offset_of(&c), Some(10));
        // A marker with nothing pending changes nothing.
        c.complete_txn(5, true);
        assert_eq!(offset_of(&c), Some(10));
    }

    #[test]
    fn unknown_partitions_and_members_are_refused() {
        let c = GroupCoordinator::new(CoordinatorConfig::default());
        let (records, resp) = c.txn_offset_commit(&request("g", 10), &|_, _| false, 1);
        assert!(records.is_empty());
        assert_eq!(
            resp.topics[0].partitions[0].error_code,
            ErrorCode::UNKNOWN_TOPIC_OR_PARTITION.code()
        );
        let mut req = request("g", 10);
        req.member_id = "m".into();
        req.generation_id = 3;
        let (records, resp) = c.txn_offset_commit(&req, &|_, _| true, 1);
        assert!(records.is_empty());
        assert_eq!(
            resp.topics[0].partitions[0].error_code,
            ErrorCode::ILLEGAL_GENERATION.code()
        );
    }
}
