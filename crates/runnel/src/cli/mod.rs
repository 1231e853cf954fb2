//! The admin CLI: `runnel topic|produce|consume|group|cluster|apply`, speaking the Kafka
//! protocol to any broker (Runnel or Apache Kafka) through [`client`].
//!
//! Owns: argument definitions, the commands and their output (human tables by default, one
//! JSON document with `--json`). Must never: panic on a broker's answer or on input data, or
//! change anything under `--dry-run`. Errors print one clear line and exit non-zero.

pub mod apply;
pub mod client;
pub mod cluster;
pub mod consume;
pub mod group;
pub mod offsets;
pub mod output;
pub mod produce;
pub mod time;
pub mod topic;

use std::fmt;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};

use client::Client;

/// A CLI failure: the message printed, and the process exit code.
#[derive(Debug)]
pub struct CliError {
    pub message: String,
    pub exit_code: u8,
}

impl CliError {
    pub fn new(message: impl Into<String>) -> CliError {
        CliError {
            message: message.into(),
            exit_code: 1,
        }
    }

    /// A usage error (exit code 2, like clap's).
    pub fn usage(message: impl Into<String>) -> CliError {
        CliError {
            message: message.into(),
            exit_code: 2,
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

pub type CliResult<T> = Result<T, CliError>;

/// Options every client command takes.
#[derive(Args, Clone, Debug)]
pub struct Global {
    /// Brokers to bootstrap from (`host:port[,host:port...]`).
    #[arg(
        long = "bootstrap-server",
        short = 'b',
        global = true,
        default_value = "localhost:9092"
    )]
    pub bootstrap_server: String,
    /// Print one JSON document (or one per message for `consume`) instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    /// Connect, read and write timeout for each request.
    #[arg(long = "timeout-ms", global = true, default_value_t = 30_000)]
    pub timeout_ms: u64,
}

impl Global {
    pub fn connect(&self) -> CliResult<Client> {
        Client::connect(&self.bootstrap_server, Duration::from_millis(self.timeout_ms.max(1)))
    }
}

/// The client commands (`serve` lives in `main.rs`).
#[derive(Subcommand, Debug)]
pub enum ClientCommand {
    /// List, create, describe, delete topics and change their configs.
    #[command(subcommand)]
    Topic(topic::TopicCommand),
    /// Produce lines from stdin or a file, one message per line.
    Produce(produce::ProduceArgs),
    /// Consume messages and print them.
    Consume(consume::ConsumeArgs),
    /// List, describe, reset offsets of and delete consumer groups.
    #[command(subcommand)]
    Group(group::GroupCommand),
    /// Cluster id, controller, brokers; health for scripts.
    #[command(subcommand)]
    Cluster(cluster::ClusterCommand),
    /// Reconcile topics with a topics.yaml against a running cluster.
    Apply(apply::ApplyArgs),
}

/// Runs a client command and turns its outcome into an exit code.
pub fn run(command: ClientCommand, global: &Global) -> ExitCode {
    let outcome = match command {
        ClientCommand::Topic(c) => topic::run(c, global),
        ClientCommand::Produce(a) => produce::run(a, global),
        ClientCommand::Consume(a) => consume::run(a, global),
        ClientCommand::Group(c) => group::run(c, global),
        ClientCommand::Cluster(c) => cluster::run(c, global),
        ClientCommand::Apply(a) => apply::run(a, global),
    };
    match outcome {
        Ok(code) => code,
        Err(e) => {
            eprintln!("runnel: {}", e.message);
            ExitCode::from(e.exit_code)
        }
    }
}

/// Parses `key=value` (for `--config`, `--set`, `-H`).
pub fn key_value(s: &str) -> CliResult<(String, String)> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(CliError::usage(format!("expected key=value, got {s:?}"))),
    }
}
