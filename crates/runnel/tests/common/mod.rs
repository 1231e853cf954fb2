//! Test harness: starts the real `runnel` binary on a loopback port with its own data
//! directory, and kills it (by PID) when dropped. Tests read the bound port from the binary's
//! `runnel: listening on ...` line, so many brokers can run side by side.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub struct Broker {
    child: Option<Child>,
    pub port: u16,
    /// The operations HTTP port (`/metrics`, `/healthz`, `/readyz`); 0 when disabled.
    pub http_port: u16,
    pub data_dir: PathBuf,
    extra: Vec<(String, String)>,
    /// Environment variables for the next launches.
    pub env: Vec<(String, String)>,
    _tmp: Option<tempfile::TempDir>,
}

impl Broker {
    /// A broker with a fresh data directory and test-friendly settings.
    pub fn start() -> Broker {
        Self::start_with(&[])
    }

    pub fn start_with(overrides: &[(&str, &str)]) -> Broker {
        let tmp = tempfile::tempdir().expect("tempdir");
        let data_dir = tmp.path().join("data");
        let extra = overrides.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let mut b = Broker {
            child: None,
            port: 0,
            http_port: 0,
            data_dir,
            extra,
            env: Vec::new(),
            _tmp: Some(tmp),
        };
        b.launch(0);
        b
    }

    /// The bootstrap address for clients.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    fn launch(&mut self, port: u16) {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_runnel"));
        cmd.arg("serve")
            .arg("--override")
            .arg(format!("listeners=PLAINTEXT://127.0.0.1:{port}"))
            .arg("--override")
            .arg(format!("log.dirs={}", self.data_dir.display()))
            .arg("--override")
            .arg("group.initial.rebalance.delay.ms=0")
            // Any free port, so brokers side by side do not fight over the default 9644.
            .arg("--override")
            .arg("runnel.http.listener=127.0.0.1:0");
        for (k, v) in &self.extra {
            cmd.arg("--override").arg(format!("{k}={v}"));
        }
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd.env(
            "RUNNEL_LOG",
            std::env::var("RUNNEL_LOG").unwrap_or_else(|_| "warn,openraft=error".into()),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
        let mut child = cmd.spawn().expect("spawn runnel");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        let (http_tx, http_rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("runnel: listening on PLAINTEXT ") {
                    let _ = tx.send(addr.to_string());
                }
                if let Some(addr) = line.strip_prefix("runnel: http listening on ") {
                    let _ = http_tx.send(addr.to_string());
                }
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("broker did not report its listener within 30 s");
        self.port = addr.rsplit(':').next().and_then(|p| p.parse().ok()).expect("port");
        // Printed right after the Kafka listener lines (absent when the listener is disabled).
        self.http_port = http_rx
            .recv_timeout(Duration::from_secs(2))
            .ok()
            .and_then(|a| a.rsplit(':').next().and_then(|p| p.parse().ok()))
            .unwrap_or(0);
        self.child = Some(child);
    }

    /// `kill -9`, then start again on the same port and data directory.
    pub fn kill_and_restart(&mut self) {
        self.kill9();
        let port = self.port;
        self.launch(port);
    }

    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts again after `kill9` on the same port and data.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "restart after kill9");
        let port = self.port;
        self.launch(port);
    }

    pub fn data(&self) -> &Path {
        &self.data_dir
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Polls `f` until it returns `Some`, or panics with `what` after `timeout`.
pub fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
