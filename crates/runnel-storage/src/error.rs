//! The storage error type: disk faults, corrupt data found on disk, and caller errors.

use std::path::PathBuf;

use runnel_protocol::records::RecordError;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("offset {offset} out of range [{log_start_offset}, {log_end_offset}]")]
    OffsetOutOfRange {
        offset: i64,
        log_start_offset: i64,
        log_end_offset: i64,
    },
    #[error("invalid record batch: {0}")]
    InvalidRecords(#[from] RecordError),
    /// A checksum failed in the middle of the log: a disk fault, never skipped silently.
    #[error("corrupt log segment {path} at position {position}: {reason}")]
    CorruptSegment {
        path: PathBuf,
        position: u64,
        reason: String,
    },
    #[error("corrupt file {path}: {reason}")]
    CorruptFile { path: PathBuf, reason: String },
    #[error("topic id mismatch in {path}")]
    InconsistentTopicId { path: PathBuf },
    #[error("invalid partition directory name {0}")]
    InvalidDirName(String),
    #[error("batch base offset {offset} is below the log end offset {log_end_offset}")]
    OffsetBelowLogEnd { offset: i64, log_end_offset: i64 },
    #[error("records of {size_bytes} bytes do not fit in a segment of {segment_bytes} bytes")]
    RecordsTooLarge { size_bytes: u64, segment_bytes: u64 },
    /// An idempotent batch from an older epoch than the partition has seen (fenced producer).
    #[error("producer {producer_id} epoch {epoch} is older than the last seen epoch {current_epoch}")]
    InvalidProducerEpoch {
        producer_id: i64,
        epoch: i16,
        current_epoch: i16,
    },
    /// An idempotent batch whose first sequence does not follow the producer's last one.
    #[error("out of order sequence {first_seq} for producer {producer_id} epoch {epoch} (last sequence {last_seq})")]
    OutOfOrderSequence {
        producer_id: i64,
        epoch: i16,
        first_seq: i32,
        last_seq: i32,
    },
    /// A non-transactional batch from a producer with an ongoing transaction (Kafka's
    /// `InvalidTxnStateException`).
    #[error(
        "producer {producer_id} has an ongoing transaction but wrote a non-transactional batch at offset {offset}"
    )]
    InvalidTxnState { producer_id: i64, offset: i64 },
    /// An end-transaction marker from a coordinator older than the last one that wrote a
    /// marker for this producer (a zombie coordinator).
    #[error(
        "coordinator epoch {coordinator_epoch} for producer {producer_id} is older than {current_coordinator_epoch}"
    )]
    TransactionCoordinatorFenced {
        producer_id: i64,
        coordinator_epoch: i32,
        current_coordinator_epoch: i32,
    },
    /// A client or coordinator data append held a control batch (only markers written by
    /// `append_txn_marker` and replicated batches may be control batches).
    #[error("control batch at offset {offset} is not allowed in this append")]
    ControlBatchNotAllowed { offset: i64 },
}

/// Attaches a path to an `io::Error`.
pub(crate) trait IoContext<T> {
    fn at(self, path: &std::path::Path) -> Result<T, StorageError>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, path: &std::path::Path) -> Result<T, StorageError> {
        self.map_err(|source| StorageError::Io {
            path: path.to_path_buf(),
            source,
        })
    }
}
