//! Listeners and connections. One task per connection reads a frame, dispatches it, writes
//! the response, in order (Kafka's per-connection ordering guarantee). Requests are handled one
//! at a time, in order; only a Produce waiting for its group-commit fsync lets the connection
//! read and handle the next requests meanwhile, their responses queued behind it.
//!
//! Limits: a frame larger than `socket.request.max.bytes` closes the connection before its body
//! is read; a request that does not decode closes it too (as Kafka does); an idle connection
//! is closed after `connections.max.idle.ms`.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use runnel_protocol::frame::{check_frame_size, decode_request_header, RequestHeader};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::apis::{self, DeferredResponse, Outcome};
use crate::broker::Broker;

/// Kafka's `connections.max.idle.ms` default.
const IDLE_TIMEOUT: Duration = Duration::from_secs(600);

/// What a handler knows about the connection a request came in on.
#[derive(Debug, Clone)]
pub struct ConnContext {
    pub listener: String,
    pub peer: SocketAddr,
}

/// Accepts connections on `listener` until `shutdown` turns true.
pub async fn run(listener: TcpListener, name: String, broker: Arc<Broker>, mut shutdown: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    let ctx = ConnContext { listener: name.clone(), peer };
                    let broker = broker.clone();
                    let shutdown = shutdown.clone();
                    tokio::spawn(async move {
                        if let Err(e) = serve_connection(stream, ctx.clone(), broker, shutdown).await {
                            tracing::debug!(peer = %ctx.peer, error = %e, "connection closed");
                        }
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = shutdown.changed() => return,
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum ConnError {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Protocol(String),
}

/// Responses waiting for their turn: a connection answers strictly in request order.
enum Pending {
    Ready(Bytes),
    Deferred(DeferredResponse),
}

/// Deferred responses a connection may have outstanding before it stops reading.
const MAX_PENDING: usize = 64;

async fn serve_connection(
    stream: TcpStream,
    ctx: ConnContext,
    broker: Arc<Broker>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), ConnError> {
    let (read_half, mut writer) = stream.into_split();
    let mut reader = BufReader::with_capacity(64 * 1024, read_half);
    let limit = usize::try_from(broker.config.socket_request_max_bytes).unwrap_or(usize::MAX);
    let mut out = BytesMut::with_capacity(64 * 1024);
    // Empty unless a Produce waits for its fsync: then later requests are read and handled
    // (sharing that group commit) while their responses queue behind it.
    let mut pending: VecDeque<Pending> = VecDeque::new();
    loop {
        write_ready(&mut pending, &mut writer).await?;
        let full = pending.len() >= MAX_PENDING;
        let readable = match pending.front_mut() {
            Some(Pending::Deferred(head)) if full => {
                let done = head.await;
                pending.pop_front();
                write_deferred(done, &mut writer).await?;
                continue;
            }
            Some(Pending::Deferred(head)) => tokio::select! {
                done = head => {
                    pending.pop_front();
                    write_deferred(done, &mut writer).await?;
                    continue;
                }
                // `fill_buf` is cancel-safe: bytes it read stay in the buffer.
                filled = reader.fill_buf() => filled.map(|b| !b.is_empty())?,
                _ = shutdown.changed() => return Ok(()),
            },
            _ => tokio::select! {
                filled = tokio::time::timeout(IDLE_TIMEOUT, reader.fill_buf()) => match filled {
                    Ok(filled) => filled.map(|b| !b.is_empty())?,
                    Err(_) => return Err(ConnError::Protocol("idle connection".into())),
                },
                _ = shutdown.changed() => return Ok(()),
            },
        };
        if !readable {
            // The client closed its side: answer what is still owed, then stop.
            drain(&mut pending, &mut writer).await?;
            return Ok(());
        }
        let mut prefix = [0u8; 4];
        match reader.read_exact(&mut prefix).await {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e.into()),
        }
        let size = check_frame_size(prefix, limit).map_err(|e| ConnError::Protocol(e.to_string()))?;
        let mut frame: Bytes = read_frame(&mut reader, size).await?;
        let header =
            decode_request_header(&mut frame).map_err(|e| ConnError::Protocol(format!("bad request header: {e}")))?;
        out.clear();
        match apis::handle(&broker, &ctx, &header, frame, &mut out).await {
            Outcome::Respond if pending.is_empty() => writer.write_all(&out).await?,
            Outcome::Respond => pending.push_back(Pending::Ready(out.split().freeze())),
            Outcome::Deferred(response) => pending.push_back(Pending::Deferred(response)),
            Outcome::NoResponse => {}
            Outcome::Close(reason) => {
                drain(&mut pending, &mut writer).await?;
                return Err(ConnError::Protocol(close_reason(&header, &reason)));
            }
        }
        if out.capacity() > 4 * 1024 * 1024 {
            // Don't keep a huge fetch buffer alive on an idle connection.
            out = BytesMut::with_capacity(64 * 1024);
        }
    }
}

/// Writes the responses at the head of the queue that are complete.
async fn write_ready(pending: &mut VecDeque<Pending>, writer: &mut OwnedWriteHalf) -> Result<(), ConnError> {
    while let Some(Pending::Ready(bytes)) = pending.front() {
        writer.write_all(bytes).await?;
        pending.pop_front();
    }
    Ok(())
}

async fn write_deferred(done: Result<Option<Bytes>, String>, writer: &mut OwnedWriteHalf) -> Result<(), ConnError> {
    match done {
        Ok(Some(bytes)) => writer.write_all(&bytes).await.map_err(Into::into),
        Ok(None) => Ok(()),
        Err(reason) => Err(ConnError::Protocol(reason)),
    }
}

/// Answers everything still queued, in order.
async fn drain(pending: &mut VecDeque<Pending>, writer: &mut OwnedWriteHalf) -> Result<(), ConnError> {
    while let Some(p) = pending.pop_front() {
        match p {
            Pending::Ready(bytes) => writer.write_all(&bytes).await?,
            Pending::Deferred(response) => write_deferred(response.await, writer).await?,
        }
    }
    Ok(())
}

/// Reads a `size`-byte frame body. Memory grows with the bytes that actually arrive (in steps of
/// at most `FRAME_CHUNK`), so a client that only claims a large frame costs nothing.
async fn read_frame<R: AsyncReadExt + Unpin>(reader: &mut R, size: usize) -> Result<Bytes, ConnError> {
    const FRAME_CHUNK: usize = 1 << 20;
    let mut frame = BytesMut::with_capacity(size.min(FRAME_CHUNK));
    while frame.len() < size {
        let want = (size - frame.len()).min(FRAME_CHUNK);
        frame.reserve(want);
        let n = (&mut *reader).take(want as u64).read_buf(&mut frame).await?;
        if n == 0 {
            return Err(ConnError::Io(std::io::ErrorKind::UnexpectedEof.into()));
        }
    }
    Ok(frame.freeze())
}

fn close_reason(h: &RequestHeader, reason: &str) -> String {
    format!(
        "api key {} v{} (correlation id {}): {reason}",
        h.api_key, h.api_version, h.correlation_id
    )
}
