//! Project tasks. `cargo run -p xtask -- codegen [--spec DIR] [--check]` generates the Kafka
//! message types of `runnel-protocol` from Kafka's JSON message specifications.
//!
//! The specifications are data (Apache Kafka's `clients/src/main/resources/common/message`
//! files); the generated Rust is committed so that building the project never needs them.
//! `--check` regenerates in memory and fails if the committed files differ.

mod codegen;

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(task) = args.first() else {
        eprintln!("usage: xtask codegen [--spec DIR] [--check]");
        return ExitCode::from(2);
    };
    match task.as_str() {
        "codegen" => {
            let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
            let mut spec = root.join("../shared/kafka-spec");
            let mut check = false;
            let mut it = args.iter().skip(1);
            while let Some(a) = it.next() {
                match a.as_str() {
                    "--check" => check = true,
                    "--spec" => match it.next() {
                        Some(dir) => spec = PathBuf::from(dir),
                        None => {
                            eprintln!("--spec needs a directory");
                            return ExitCode::from(2);
                        }
                    },
                    other => {
                        eprintln!("unknown argument {other}");
                        return ExitCode::from(2);
                    }
                }
            }
            let out = root.join("crates/runnel-protocol/src/generated");
            match codegen::run(&spec, &out, check) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("codegen: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        other => {
            eprintln!("unknown task {other}");
            ExitCode::from(2)
        }
    }
}
