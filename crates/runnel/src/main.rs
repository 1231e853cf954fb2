//! The `runnel` binary: `runnel` (or `runnel serve [server.properties] [--override k=v]...`)
//! starts a broker, as `kafka-server-start.sh` does. Holds no business logic: it parses the
//! command line, loads configuration, starts the broker and waits for a signal. The admin
//! commands (`topic`, `produce`, `consume`, `group`, `cluster`, `apply`) live in [`cli`].

mod cli;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use runnel_broker::config::{process_env, BrokerConfig, LoadOptions};

#[derive(Parser)]
#[command(name = "runnel", version, about = "A Kafka-compatible message broker")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    global: cli::Global,
}

#[derive(Subcommand)]
enum Command {
    /// Start a broker (the default when no command is given).
    Serve(ServeArgs),
    #[command(flatten)]
    Client(cli::ClientCommand),
}

#[derive(clap::Args, Default)]
struct ServeArgs {
    /// A Kafka `server.properties` file; embedded defaults apply without one.
    config: Option<PathBuf>,
    /// Override a property: `--override key=value` (repeatable; wins over file and environment).
    #[arg(long = "override", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
    /// A topics.yaml reconciled at start-up (sets `runnel.topics.file`).
    #[arg(long = "topics", value_name = "FILE")]
    topics: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let args = match cli.command {
        Some(Command::Serve(a)) => a,
        Some(Command::Client(c)) => return cli::run(c, &cli.global),
        None => ServeArgs::default(),
    };
    init_logging();
    let mut overrides = Vec::new();
    for o in &args.overrides {
        match o.split_once('=') {
            Some((k, v)) => overrides.push((k.trim().to_string(), v.to_string())),
            None => {
                eprintln!("runnel: --override takes key=value, got {o:?}");
                return ExitCode::from(2);
            }
        }
    }
    if let Some(path) = &args.topics {
        overrides.push(("runnel.topics.file".to_string(), path.display().to_string()));
    }
    let opts = LoadOptions {
        file: args.config,
        env: process_env(),
        overrides,
        ..Default::default()
    };
    let config = match BrokerConfig::load(opts) {
        Ok((config, warnings)) => {
            for w in warnings {
                tracing::warn!("{w}");
            }
            config
        }
        Err(e) => {
            eprintln!("runnel: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("runnel: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(serve(config))
}

async fn serve(config: BrokerConfig) -> ExitCode {
    let handle = match runnel_broker::start(config).await {
        Ok(h) => h,
        // An invalid or unappliable topics file is a configuration error (exit code 2).
        Err(e @ runnel_broker::StartError::TopicsFile(_)) => {
            eprintln!("runnel: cannot start: {e}");
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("runnel: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    for (name, addr) in &handle.bound {
        // A stable line on stdout: scripts and tests read the bound port from it.
        println!("runnel: listening on {name} {addr}");
    }
    if let Some(addr) = handle.http_addr {
        println!("runnel: http listening on {addr}");
    }
    wait_for_signal().await;
    tracing::info!("shutting down");
    handle.shutdown().await;
    ExitCode::SUCCESS
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = match signal(SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RUNNEL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,openraft=error"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
