//! runnel-raft: the metadata log, replicated by an embedded openraft quorum.
//!
//! Owns: the on-disk raft log, vote and snapshots under `metadata.log.dir`; the state machine
//! that applies metadata records to the `MetadataImage`; the (future) network between
//! controllers; the controller lock that serializes "decide, then append" steps.
//! Must never: let openraft types out of this crate (the public API speaks `MetadataRecord`,
//! `MetadataImage` and our own error/status types), or acknowledge a write before it is fsynced.
//!
//! Invariants: a `propose` that returned `Ok` has its batch durable in the log and applied to
//! the image returned by `image()`; proposals are decided one at a time against the latest image,
//! so a decision never races another.

mod fsutil;
mod log_store;
mod network;
mod quorum;
mod state_machine;
mod types;

pub use quorum::{MetadataQuorum, QuorumError, QuorumOptions, QuorumStatus};
