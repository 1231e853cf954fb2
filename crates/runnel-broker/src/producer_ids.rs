//! Producer-id allocation for InitProducerId: ids are handed out one at a time from a block
//! reserved through the metadata log (`controller::allocate_producer_ids`, one
//! `ProducerIdsRecord` per block), so an id is never handed out twice, even across restarts.
//!
//! Must never: hand out an id from a block whose record is not committed, or reuse a block
//! after a restart (the ids left in the current block are simply skipped, as Kafka does).
//!
//! Invariant: `next <= end`; `next..end` lies inside a block committed to the metadata log.

use runnel_metadata::controller::{self, ControllerError};
use runnel_raft::QuorumError;

use crate::broker::Broker;

/// Ids reserved per metadata-log entry (Kafka's block size).
pub const BLOCK_SIZE: i64 = controller::PRODUCER_ID_BLOCK_SIZE_DEFAULT;

#[derive(Debug, thiserror::Error)]
pub enum ProducerIdError {
    #[error("metadata quorum: {0}")]
    Quorum(#[from] QuorumError),
    #[error("controller: {0}")]
    Controller(#[from] ControllerError),
}

#[derive(Debug, Default)]
struct Block {
    next: i64,
    end: i64,
}

/// The broker's current block. A tokio mutex: allocation awaits the quorum while holding it,
/// so concurrent requests wait for one new block instead of each reserving their own.
#[derive(Debug, Default)]
pub struct ProducerIdManager {
    block: tokio::sync::Mutex<Block>,
}

impl ProducerIdManager {
    pub fn new() -> Self {
        Self::default()
    }

    /// The next unused producer id, reserving a new block when the current one is spent.
    pub async fn next_id(&self, broker: &Broker) -> Result<i64, ProducerIdError> {
        let mut block = self.block.lock().await;
        if block.next >= block.end {
            let node_id = broker.node_id;
            let reserved = broker
                .propose(move |image| controller::allocate_producer_ids(image, node_id, -1, BLOCK_SIZE))
                .await??;
            tracing::info!(
                first = reserved.first_producer_id,
                size = reserved.size,
                "reserved producer id block"
            );
            *block = Block {
                next: reserved.first_producer_id,
                end: reserved.first_producer_id.saturating_add(reserved.size),
            };
        }
        let id = block.next;
        block.next += 1;
        Ok(id)
    }
}
