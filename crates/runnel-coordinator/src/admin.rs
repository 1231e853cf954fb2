//! DescribeGroups, ListGroups and DeleteGroups answers for one shard.

use runnel_protocol::generated::delete_groups_response::DeletableGroupResult;
use runnel_protocol::generated::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use runnel_protocol::generated::list_groups_response::ListedGroup;
use runnel_protocol::ErrorCode;

use crate::coordinator::{Decision, GroupCoordinator};
use crate::group::GroupState;
use crate::offsets::offset_tombstone;
use crate::record::CoordinatorRecord;

/// The group type of every group this coordinator runs (KIP-848 groups are "consumer").
pub const CLASSIC_GROUP_TYPE: &str = "classic";

/// `authorized_operations` when the client did not ask for them.
const AUTHORIZED_OPERATIONS_OMITTED: i32 = i32::MIN;

impl GroupCoordinator {
    /// Kafka's group summary: members' metadata and assignments only when Stable; an unknown
    /// group is reported as Dead with no error (versions 0–5).
    pub fn describe_group(&self, group_id: &str) -> DescribedGroup {
        let Some(group) = self.groups.get(group_id) else {
            return DescribedGroup {
                group_id: group_id.to_string(),
                group_state: GroupState::Dead.name().to_string(),
                authorized_operations: AUTHORIZED_OPERATIONS_OMITTED,
                ..Default::default()
            };
        };
        let stable = group.state == GroupState::Stable;
        let protocol = group.protocol.clone().unwrap_or_default();
        let members = group
            .members
            .iter()
            .map(|m| DescribedGroupMember {
                member_id: m.member_id.clone(),
                group_instance_id: m.instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                member_metadata: if stable {
                    m.metadata_for(&protocol).cloned().unwrap_or_default()
                } else {
                    Default::default()
                },
                member_assignment: if stable {
                    m.assignment.clone()
                } else {
                    Default::default()
                },
                ..Default::default()
            })
            .collect();
        DescribedGroup {
            error_code: 0,
            group_id: group_id.to_string(),
            group_state: group.state.name().to_string(),
            protocol_type: group.protocol_type.clone().unwrap_or_default(),
            protocol_data: if stable { protocol } else { String::new() },
            members,
            authorized_operations: AUTHORIZED_OPERATIONS_OMITTED,
            ..Default::default()
        }
    }

    /// Groups matching the filters (case-insensitive; empty filter = all).
    pub fn list_groups(&self, states_filter: &[String], types_filter: &[String]) -> Vec<ListedGroup> {
        let wants = |ty: &str| types_filter.is_empty() || types_filter.iter().any(|t| t.eq_ignore_ascii_case(ty));
        let mut listed = if wants(crate::consumer::CONSUMER_GROUP_TYPE) {
            self.list_consumer_groups(states_filter)
        } else {
            Vec::new()
        };
        if !wants(CLASSIC_GROUP_TYPE) {
            return listed;
        }
        let classic = self
            .groups
            .values()
            .filter(|g| g.state != GroupState::Dead)
            .filter(|g| {
                states_filter.is_empty() || states_filter.iter().any(|s| s.eq_ignore_ascii_case(g.state.name()))
            })
            .map(|g| ListedGroup {
                group_id: g.group_id.clone(),
                protocol_type: g.protocol_type.clone().unwrap_or_default(),
                group_state: g.state.name().to_string(),
                group_type: CLASSIC_GROUP_TYPE.to_string(),
                ..Default::default()
            })
            .collect::<Vec<_>>();
        listed.extend(classic);
        listed
    }

    /// DeleteGroups: only groups without members (NON_EMPTY_GROUP otherwise); tombstones for
    /// every offset and for the group.
    pub fn delete_groups(&self, group_ids: &[String]) -> Decision<Vec<DeletableGroupResult>> {
        let mut records = Vec::new();
        let mut results = Vec::with_capacity(group_ids.len());
        for id in group_ids {
            if let Some(consumer) = self.consumer_groups.get(id) {
                let code = self.delete_consumer_group(consumer, &mut records);
                results.push(DeletableGroupResult {
                    group_id: id.clone(),
                    error_code: code.code(),
                    ..Default::default()
                });
                continue;
            }
            let code = match self.groups.get(id) {
                None => ErrorCode::GROUP_ID_NOT_FOUND,
                Some(g) if g.state == GroupState::Dead => ErrorCode::GROUP_ID_NOT_FOUND,
                Some(g) if g.state != GroupState::Empty => ErrorCode::NON_EMPTY_GROUP,
                Some(_) => {
                    if let Some(offsets) = self.offsets.get(id) {
                        records.extend(offsets.keys().map(|(t, p)| offset_tombstone(id, t, *p)));
                    }
                    records.push(CoordinatorRecord::GroupMetadata {
                        group: id.clone(),
                        value: None,
                    });
                    ErrorCode::NONE
                }
            };
            results.push(DeletableGroupResult {
                group_id: id.clone(),
                error_code: code.code(),
                ..Default::default()
            });
        }
        Decision {
            records,
            response: results,
        }
    }
}
