//! The operations HTTP listener (`runnel.http.listener`): `/metrics`, `/healthz`, `/readyz`.
//!
//! A minimal HTTP/1.1 responder on tokio: GET (and HEAD) only, the request head is bounded
//! (`MAX_REQUEST_BYTES`) and must arrive within `READ_TIMEOUT`, one request per connection
//! (`Connection: close`). It is bound before the partition logs are opened, so `/readyz` can
//! answer 503 (with what it waits for) during recovery of a large log.
//!
//! Must never: block the runtime (a scrape runs on the blocking pool), or keep the broker alive
//! (it holds a `Weak`).

use std::sync::{Arc, OnceLock, RwLock, Weak};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::broker::Broker;
use crate::metrics::{Metrics, CONTENT_TYPE};

/// Longest request head we read; anything longer is answered 431 and closed.
const MAX_REQUEST_BYTES: usize = 8 * 1024;
/// A client that does not send its request head within this is dropped.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// What `/readyz` waits for; `None` once the broker serves.
#[derive(Default)]
pub struct Readiness {
    waiting_for: RwLock<Option<String>>,
}

impl Readiness {
    pub fn new(waiting_for: &str) -> Self {
        Readiness {
            waiting_for: RwLock::new(Some(waiting_for.to_string())),
        }
    }

    pub fn waiting(&self, what: &str) {
        if let Ok(mut w) = self.waiting_for.write() {
            *w = Some(what.to_string());
        }
    }

    pub fn ready(&self) {
        if let Ok(mut w) = self.waiting_for.write() {
            *w = None;
        }
    }

    /// `None` when ready, else what it waits for.
    pub fn waiting_for(&self) -> Option<String> {
        self.waiting_for
            .read()
            .map(|w| w.clone())
            .unwrap_or_else(|_| Some("unknown".into()))
    }
}

/// What the HTTP tasks share: set up before the broker exists, which is attached once built.
pub struct HttpState {
    pub metrics: Arc<Metrics>,
    pub readiness: Readiness,
    broker: OnceLock<Weak<Broker>>,
}

impl HttpState {
    pub fn new(metrics: Arc<Metrics>) -> Arc<Self> {
        Arc::new(HttpState {
            metrics,
            readiness: Readiness::new("metadata quorum start-up"),
            broker: OnceLock::new(),
        })
    }

    /// Lets `/metrics` show broker state (partitions, groups, Raft).
    pub fn attach(&self, broker: &Arc<Broker>) {
        let _ = self.broker.set(Arc::downgrade(broker));
    }

    fn broker(&self) -> Option<Arc<Broker>> {
        self.broker.get().and_then(Weak::upgrade)
    }
}

/// Accepts connections until `shutdown` flips; one task per connection.
pub async fn run(listener: TcpListener, state: Arc<HttpState>, mut shutdown: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let state = state.clone();
                    tokio::spawn(async move {
                        if let Err(e) = serve(stream, state).await {
                            tracing::debug!(error = %e, "http connection");
                        }
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "http accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            _ = shutdown.changed() => return,
        }
    }
}

struct Response {
    status: &'static str,
    content_type: &'static str,
    body: String,
}

fn text(status: &'static str, body: impl Into<String>) -> Response {
    Response {
        status,
        content_type: "text/plain; charset=utf-8",
        body: body.into(),
    }
}

async fn serve(mut stream: TcpStream, state: Arc<HttpState>) -> std::io::Result<()> {
    let head = match tokio::time::timeout(READ_TIMEOUT, read_head(&mut stream)).await {
        Ok(Ok(Some(head))) => head,
        Ok(Ok(None)) => {
            return write(
                &mut stream,
                &text("431 Request Header Fields Too Large", "request too large\n"),
                false,
            )
            .await
        }
        Ok(Err(e)) => return Err(e),
        Err(_) => return Ok(()),
    };
    let (method, path) = match parse_request_line(&head) {
        Some(mp) => mp,
        None => return write(&mut stream, &text("400 Bad Request", "bad request\n"), false).await,
    };
    let head_only = method == "HEAD";
    if method != "GET" && !head_only {
        return write(&mut stream, &text("405 Method Not Allowed", "only GET\n"), false).await;
    }
    let response = route(path, &state).await;
    write(&mut stream, &response, head_only).await
}

async fn route(path: &str, state: &Arc<HttpState>) -> Response {
    // The query string does not select anything here.
    let path = path.split('?').next().unwrap_or(path);
    match path {
        "/healthz" => text("200 OK", "ok\n"),
        "/readyz" => match state.readiness.waiting_for() {
            None => text("200 OK", "ready\n"),
            Some(what) => text("503 Service Unavailable", format!("not ready: waiting for {what}\n")),
        },
        "/metrics" => {
            let s = state.clone();
            let rendered = tokio::task::spawn_blocking(move || s.metrics.render(s.broker().as_deref())).await;
            match rendered {
                Ok(body) => Response {
                    status: "200 OK",
                    content_type: CONTENT_TYPE,
                    body,
                },
                Err(_) => text("500 Internal Server Error", "scrape failed\n"),
            }
        }
        _ => text("404 Not Found", "not found; try /metrics, /healthz or /readyz\n"),
    }
}

/// Reads up to the blank line ending the request head; `None` when it exceeds the bound.
async fn read_head(stream: &mut TcpStream) -> std::io::Result<Option<Vec<u8>>> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        if buf.windows(4).any(|w| w == b"\r\n\r\n") || buf.windows(2).any(|w| w == b"\n\n") {
            return Ok(Some(buf));
        }
        if buf.len() > MAX_REQUEST_BYTES {
            return Ok(None);
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            // The peer closed early: serve what we have (a request line is enough).
            return Ok(Some(buf));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// `GET /path HTTP/1.1` → (method, path).
pub fn parse_request_line(head: &[u8]) -> Option<(&str, &str)> {
    let line_end = head.iter().position(|&b| b == b'\n')?;
    let line = std::str::from_utf8(&head[..line_end]).ok()?.trim_end_matches('\r');
    let mut parts = line.split(' ');
    let method = parts.next()?;
    let path = parts.next()?;
    let version = parts.next()?;
    if !version.starts_with("HTTP/1.") || !path.starts_with('/') || parts.next().is_some() {
        return None;
    }
    Some((method, path))
}

async fn write(stream: &mut TcpStream, r: &Response, head_only: bool) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        r.status,
        r.content_type,
        r.body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    if !head_only {
        stream.write_all(r.body.as_bytes()).await?;
    }
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_line_parses_only_well_formed_heads() {
        assert_eq!(
            parse_request_line(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
            Some(("GET", "/metrics"))
        );
        assert_eq!(
            parse_request_line(b"GET /readyz HTTP/1.0\n\n"),
            Some(("GET", "/readyz"))
        );
        assert_eq!(parse_request_line(b"GET metrics HTTP/1.1\r\n"), None);
        assert_eq!(parse_request_line(b"GET /a b HTTP/1.1\r\n"), None);
        assert_eq!(parse_request_line(b"GET /a SPDY/3\r\n"), None);
        assert_eq!(parse_request_line(b"no newline"), None);
    }

    #[test]
    fn readiness_reports_what_it_waits_for() {
        let r = Readiness::new("log recovery");
        assert_eq!(r.waiting_for().as_deref(), Some("log recovery"));
        r.ready();
        assert_eq!(r.waiting_for(), None);
    }

    #[tokio::test]
    async fn serves_health_and_rejects_other_methods() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let state = HttpState::new(Arc::new(Metrics::new(true)));
        let (_tx, rx) = watch::channel(false);
        tokio::spawn(run(listener, state.clone(), rx));
        let get = |req: &'static str| async move {
            let mut s = TcpStream::connect(addr).await.expect("connect");
            s.write_all(req.as_bytes()).await.expect("write");
            let mut out = String::new();
            s.read_to_string(&mut out).await.expect("read");
            out
        };
        assert!(get("GET /healthz HTTP/1.1\r\n\r\n")
            .await
            .starts_with("HTTP/1.1 200 OK"));
        let ready = get("GET /readyz HTTP/1.1\r\n\r\n").await;
        assert!(ready.starts_with("HTTP/1.1 503"), "{ready}");
        assert!(ready.contains("waiting for metadata quorum"), "{ready}");
        state.readiness.ready();
        assert!(get("GET /readyz HTTP/1.1\r\n\r\n").await.starts_with("HTTP/1.1 200 OK"));
        assert!(get("POST /metrics HTTP/1.1\r\n\r\n").await.starts_with("HTTP/1.1 405"));
        assert!(get("GET /nope HTTP/1.1\r\n\r\n").await.starts_with("HTTP/1.1 404"));
        let metrics = get("GET /metrics HTTP/1.1\r\n\r\n").await;
        assert!(metrics.contains("process_start_time_seconds"), "{metrics}");
        let big = format!("GET /{} HTTP/1.1\r\n", "a".repeat(MAX_REQUEST_BYTES * 2));
        let mut s = TcpStream::connect(addr).await.expect("connect");
        s.write_all(big.as_bytes()).await.expect("write");
        let mut out = String::new();
        let _ = s.read_to_string(&mut out).await;
        assert!(out.starts_with("HTTP/1.1 431"), "{out}");
    }
}
