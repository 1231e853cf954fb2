//! The Runnel broker: listeners, the connection loop, request dispatch with one handler per
//! API, the replica manager, and configuration loading.
//!
//! Must never: encode protocol bytes by hand (that is `runnel-protocol`) or reach into storage
//! internals (that is `runnel-storage`). Handlers decide per-partition outcomes as values in the
//! response; one bad partition never fails a whole request.

pub mod apis;
pub mod broker;
pub mod config;
pub mod group;
pub mod handlers;
pub mod http;
pub mod internal_topic;
pub mod metrics;
pub mod producer_ids;
pub mod replica;
pub mod server;
pub mod topic_config;
pub mod topics_file;
pub mod txn;

pub use broker::{start, Broker, BrokerHandle, StartError};
