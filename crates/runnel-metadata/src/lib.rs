//! Cluster metadata for Runnel.
//!
//! Owns: metadata records, the immutable `MetadataImage` built by replaying them, the controller
//! logic that turns admin requests into records (pure: records + outcome, no I/O), and the topic
//! and broker configuration definitions.
//!
//! Must never: talk to sockets or files, read a clock, or draw random numbers.
//!
//! Invariant: the image changes only by applying records; replaying the same records from an
//! empty image always yields an equal image (this is what makes Raft snapshots and restarts safe).

pub mod configs;
pub mod controller;
pub mod image;
pub mod records;

pub use image::{BrokerRegistration, MetadataImage, PartitionImage, TopicImage};
pub use records::{Endpoint, MetadataRecord, TopicId};
