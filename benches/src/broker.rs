//! The broker under test: one `loadgen` starts itself, or one already running elsewhere.
//!
//! Owns the child process it spawned (killed and its log directory removed on drop) and nothing
//! else: an external broker is only ever observed through `/proc/<pid>`, never signalled.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::Result;

/// Where clients connect and, when known, which process to sample.
pub struct Broker {
    pub bootstrap: String,
    pub pid: Option<u32>,
    /// Spawn to "listening" line, for brokers this process started.
    pub listening: Option<Duration>,
    child: Option<Child>,
    log_dir: Option<PathBuf>,
}

impl Broker {
    /// A broker someone else runs; `pid` enables RSS/CPU sampling.
    pub fn external(bootstrap: String, pid: Option<u32>) -> Broker {
        Broker {
            bootstrap,
            pid,
            listening: None,
            child: None,
            log_dir: None,
        }
    }

    /// Starts `bin serve` on 127.0.0.1 with an ephemeral port and a fresh log directory, and
    /// waits for its "listening on" line. `overrides` (`key=value`) come after ours, so they win.
    pub fn spawn(bin: &Path, overrides: &[String], tag: &str) -> Result<Broker> {
        let log_dir = std::env::temp_dir().join(format!("loadgen-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&log_dir);
        let begin = Instant::now();
        let mut cmd = Command::new(bin);
        cmd.arg("serve")
            .args(["--override", "listeners=PLAINTEXT://127.0.0.1:0"])
            .args(["--override", "runnel.http.listener=127.0.0.1:0"])
            .arg("--override")
            .arg(format!("log.dirs={}", log_dir.display()));
        for o in overrides {
            cmd.arg("--override").arg(o);
        }
        let mut child = cmd
            .env(
                "RUNNEL_LOG",
                std::env::var("RUNNEL_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("spawn {}: {e}", bin.display()))?;
        let pid = child.id();
        let mut broker = Broker {
            bootstrap: String::new(),
            pid: Some(pid),
            listening: None,
            child: None,
            log_dir: Some(log_dir),
        };
        let stdout = child.stdout.take();
        broker.child = Some(child);
        let stdout = stdout.ok_or("broker stdout not captured")?;
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        let n = reader.read_line(&mut line).map_err(|e| format!("broker stdout: {e}"))?;
        if n == 0 {
            return Err(format!("broker {pid} exited before listening"));
        }
        broker.listening = Some(begin.elapsed());
        broker.bootstrap = parse_listening_line(&line)?;
        // Keep draining stdout so the broker never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut sink = Vec::new();
            let _ = reader.read_to_end(&mut sink);
        });
        Ok(broker)
    }

    /// Whether this process started the broker (and so owns everything on it).
    pub fn spawned(&self) -> bool {
        self.child.is_some()
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(dir) = &self.log_dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// `runnel: listening on PLAINTEXT 127.0.0.1:40123` → `127.0.0.1:40123`.
fn parse_listening_line(line: &str) -> Result<String> {
    let addr = line.trim().rsplit(' ').next().unwrap_or_default();
    if !line.contains("listening") || !addr.contains(':') {
        return Err(format!("unexpected first broker line: {line:?}"));
    }
    Ok(addr.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listening_line() {
        let line = "runnel: listening on PLAINTEXT 127.0.0.1:40123\n";
        assert_eq!(parse_listening_line(line).as_deref(), Ok("127.0.0.1:40123"));
        assert!(parse_listening_line("panic: oops\n").is_err());
    }
}
