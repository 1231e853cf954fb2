//! Runnel's group coordinator, sans-IO: the classic consumer-group protocol and the KIP-848
//! consumer protocol (`consumer` module), plus the transaction coordinator (`txn` module).
//!
//! Owns: the state of classic groups (members, generations, assignments, rebalance timers),
//! of consumer groups (group epoch, target and current assignments, member epochs), and
//! committed offsets for the groups of one `__consumer_offsets` partition, and the encoding of
//! that state as Kafka's `__consumer_offsets` records. A group id names at most one kind.
//!
//! Must never: read a clock, do I/O, or spawn tasks. Time arrives as `now_ms` arguments and
//! randomness (new member ids) as parameters; the broker's runtime appends the returned
//! records to the log and delivers the returned answers.
//!
//! Invariants:
//! - Everything that must survive a restart is in the records an operation returns; replaying
//!   them into a fresh coordinator rebuilds the groups (Stable or Empty) and the offsets.
//! - Protocol types, member metadata and assignments are opaque bytes, returned as stored.
//! - Offsets change only by applying records (`apply`/`replay`), never directly.

mod admin;
mod classic;
mod consumer;
mod coordinator;
mod group;
mod offsets;
mod record;
mod subscription;
pub mod txn;
mod txn_offsets;

pub use admin::CLASSIC_GROUP_TYPE;
pub use classic::{JoinContext, SyncContext};
pub use consumer::{
    assignor, ConsumerConfig, ConsumerGroup, ConsumerMember, ConsumerRecord, HeartbeatContext, MemberState,
    TopicsSnapshot, CONSUMER_GROUP_TYPE,
};
pub use coordinator::{ClientInfo, Completion, CoordinatorConfig, Decision, Effects, GroupCoordinator};
pub use group::{ClassicGroup, GroupState, Member, RequestId};
pub use offsets::{CommitContext, FetchTopics, FetchedOffset};
pub use record::{partition_for, CoordinatorRecord, RecordError};
pub use subscription::subscribed_topics;

#[cfg(test)]
mod tests;
