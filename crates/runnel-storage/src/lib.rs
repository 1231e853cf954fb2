//! Runnel storage: partition logs in Apache Kafka's on-disk format.
//!
//! Owns: segments (`<20-digit base offset>.log` + `.index` + `.timeindex`), the mmap'd sparse
//! indexes, recovery after a crash, retention, DeleteRecords, truncation, the leader-epoch cache
//! and the small checkpoint files beside the segments (`leader-epoch-checkpoint`,
//! `partition.metadata`, log-start and recovery-point checkpoints) and the idempotent-producer
//! state with its `.snapshot` files, and the log cleaner (compaction, `cleaner.rs`).
//!
//! Must never: depend on tokio or the network, decode records on the append path (appends are
//! header-only: offsets and leader epoch are rewritten in place), or trust an index read from disk
//! without checking it.
//!
//! Invariants: every byte of a segment below its size belongs to a whole, CRC-checked batch
//! (checked on produce by the caller, on recovery here); offsets increase strictly across the log;
//! a mapped file is never truncated while mapped; checkpoint files are replaced atomically
//! (temp -> fsync -> rename -> fsync dir); all `unsafe` lives in `mmap.rs`.

#![deny(unsafe_code)]

mod checkpoint;
mod cleaner;
mod config;
mod epoch;
mod error;
mod index;
mod log;
#[allow(unsafe_code)] // the mmap wrapper is the one place allowed to use it
mod mmap;
mod producer_state;
mod segment;

pub use checkpoint::{topic_id_from_string, topic_id_to_string};
pub use cleaner::{CleanOutcome, CleanPlan, CleanedLog, CleanerConfig};
pub use config::{FlushPolicy, LogConfig};
pub use error::StorageError;
pub use log::{
    parse_partition_dir_name, AppendInfo, PartitionLog, ReadInfo, RetentionOutcome, SyncTarget, TimestampAndOffset,
};
pub use mmap::disk_space;
pub use producer_state::{BatchMetadata, ProducerStateEntry, ProducerStateManager, BATCHES_RETAINED};
