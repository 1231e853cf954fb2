//! Runnel storage: partition logs in Apache Kafka's on-disk format.
//!
//! Owns: segments (`<20-digit base offset>.log` + `.index` + `.timeindex`), the mmap'd sparse
//! indexes, recovery after a crash, retention, DeleteRecords, truncation, the leader-epoch cache
//! and the small checkpoint files beside the segments (`leader-epoch-checkpoint`,
//! `partition.metadata`, log-start and recovery-point checkpoints), the idempotent and
//! transactional producer state with its `.snapshot` files, the partition side of transactions
//! (ongoing transactions and the first unstable offset, end-transaction markers, the per-segment
//! `.txnindex` of aborted transactions for `read_committed` fetches; `txn_index.rs`), and the
//! log cleaner (compaction, `cleaner.rs`).
//!
//! Must never: depend on tokio or the network, decode records on the append path (appends are
//! header-only: offsets and leader epoch are rewritten in place), or trust an index read from disk
//! without checking it.
//!
//! Invariants: every byte of a segment below its size belongs to a whole, CRC-checked batch
//! (checked on produce by the caller, on recovery here); offsets increase strictly across the log;
//! a mapped file is never truncated while mapped; a segment's `.txnindex` lists exactly the
//! aborts whose markers it holds (rebuilt by replay whenever the segment was recovered);
//! checkpoint files are replaced atomically (temp -> fsync -> rename -> fsync dir); all `unsafe`
//! lives in `mmap.rs`.

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
mod read_buf;
mod segment;
mod txn_index;

pub use checkpoint::{topic_id_from_string, topic_id_to_string};
pub use cleaner::{CleanOutcome, CleanPlan, CleanedLog, CleanerConfig};
pub use config::{FlushPolicy, LogConfig};
pub use error::StorageError;
pub use log::{
    parse_partition_dir_name, AppendInfo, PartitionLog, ReadInfo, RecoveryPointWrite, RetentionOutcome, RollSync,
    SyncTarget, TimestampAndOffset,
};
pub use mmap::disk_space;
pub use producer_state::{
    AppendOrigin, BatchMetadata, CompletedTxn, ProducerStateEntry, ProducerStateManager, BATCHES_RETAINED,
};
pub use txn_index::{
    control_marker_type, decode_end_txn_marker, encode_end_txn_marker, AbortedTxn, EndTxnMarker, ABORTED_TXN_BYTES,
};
