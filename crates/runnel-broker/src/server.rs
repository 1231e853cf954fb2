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

use bytes::{Buf, Bytes, BytesMut};
use runnel_protocol::frame::{check_frame_size, decode_request_header, RequestHeader};
use runnel_protocol::generated::ApiKey;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
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
    Ready(Parts),
    Deferred(DeferredResponse),
}

/// Deferred responses a connection may have outstanding before it stops reading.
const MAX_PENDING: usize = 64;
/// What a connection reads into at a time when no frame is partly in: several small requests.
const READ_CHUNK: usize = 64 * 1024;
/// A frame's bytes are reserved at most this much ahead of what has arrived, so a client that
/// only claims a large frame costs nothing.
const FRAME_CHUNK: usize = 1 << 20;
/// Responses answered at once are written when this many bytes are waiting, even if more
/// requests are already in.
const ANSWERED_FLUSH_BYTES: usize = 64 * 1024;
/// A read buffer left this large by a big request is dropped once it is empty.
const READ_BUFFER_KEEP: usize = 4 * 1024 * 1024;

async fn serve_connection(
    stream: TcpStream,
    ctx: ConnContext,
    broker: Arc<Broker>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), ConnError> {
    let (mut reader, mut writer) = stream.into_split();
    // Requests are read into one buffer and each frame is split off it: the frame a handler
    // gets (and a Produce appends) is the very memory the socket was read into.
    let mut rbuf = BytesMut::with_capacity(READ_CHUNK);
    let limit = usize::try_from(broker.config.socket_request_max_bytes).unwrap_or(usize::MAX);
    let mut out = BytesMut::with_capacity(64 * 1024);
    // Empty unless a Produce waits for its fsync: then later requests are read and handled
    // (sharing that group commit) while their responses queue behind it.
    let mut pending: VecDeque<Pending> = VecDeque::new();
    // Responses answered at once, written together when no further request is waiting in
    // `rbuf` or a request that may wait comes next: a client that pipelines Produce requests
    // gets one send (and one wake-up) for all of them.
    let mut answered = BytesMut::with_capacity(64 * 1024);
    loop {
        write_ready(&mut pending, &mut writer).await?;
        let split = split_frame(&mut rbuf, limit);
        if split.is_err() {
            // The requests before the bad one are still owed their answers.
            flush(&mut answered, &mut writer).await?;
        }
        let mut frame = match split? {
            Some(frame) => frame,
            None => {
                flush(&mut answered, &mut writer).await?;
                match read_more(&mut reader, &mut rbuf, &mut pending, &mut writer, &mut shutdown).await? {
                    Read::Some => continue,
                    Read::Shutdown => return Ok(()),
                    Read::Closed => {
                        // The client closed its side: answer what is still owed, then stop.
                        drain(&mut pending, &mut writer).await?;
                        return Ok(());
                    }
                }
            }
        };
        let header = match decode_request_header(&mut frame) {
            Ok(header) => header,
            Err(e) => {
                flush(&mut answered, &mut writer).await?;
                return Err(ConnError::Protocol(format!("bad request header: {e}")));
            }
        };
        if header.api_key != ApiKey::Produce as i16 {
            // Only a Produce is handled without waiting (its flush is deferred); anything else
            // may park (a long-poll Fetch, a JoinGroup), and must not hold back the answers
            // before it. Kafka itself answers a request before it reads the next.
            flush(&mut answered, &mut writer).await?;
        }
        out.clear();
        let outcome = apis::handle(&broker, &ctx, &header, frame, &mut out).await;
        let joins_answered = pending.is_empty() && matches!(outcome, Outcome::Respond | Outcome::NoResponse);
        if !joins_answered {
            // Whatever goes out next must follow the responses already answered.
            flush(&mut answered, &mut writer).await?;
        }
        match outcome {
            Outcome::Respond if pending.is_empty() => {
                if answered.is_empty() {
                    std::mem::swap(&mut answered, &mut out);
                } else {
                    answered.extend_from_slice(&out);
                }
                if answered.len() >= ANSWERED_FLUSH_BYTES {
                    flush(&mut answered, &mut writer).await?;
                }
            }
            Outcome::Respond => pending.push_back(Pending::Ready(Parts::new(vec![out.split().freeze()]))),
            Outcome::RespondParts(parts) if pending.is_empty() => writer.write_all_buf(&mut Parts::new(parts)).await?,
            Outcome::RespondParts(parts) => pending.push_back(Pending::Ready(Parts::new(parts))),
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
        if rbuf.is_empty() && rbuf.capacity() > READ_BUFFER_KEEP {
            rbuf = BytesMut::with_capacity(READ_CHUNK);
        }
    }
}

/// Writes the responses answered so far, in one send.
async fn flush(answered: &mut BytesMut, writer: &mut OwnedWriteHalf) -> Result<(), ConnError> {
    if answered.is_empty() {
        return Ok(());
    }
    writer.write_all(answered).await?;
    answered.clear();
    if answered.capacity() > 4 * 1024 * 1024 {
        *answered = BytesMut::with_capacity(64 * 1024);
    }
    Ok(())
}

/// Splits the next whole frame (without its size prefix) off the front of `rbuf`, or returns
/// `None` after reserving room for more of it. A size over `limit` closes the connection
/// before its body is read.
fn split_frame(rbuf: &mut BytesMut, limit: usize) -> Result<Option<Bytes>, ConnError> {
    let &[a, b, c, d, ..] = &rbuf[..] else {
        rbuf.reserve(READ_CHUNK);
        return Ok(None);
    };
    let size = check_frame_size([a, b, c, d], limit).map_err(|e| ConnError::Protocol(e.to_string()))?;
    let missing = (4 + size).saturating_sub(rbuf.len());
    if missing > 0 {
        rbuf.reserve(missing.clamp(READ_CHUNK, FRAME_CHUNK));
        return Ok(None);
    }
    let mut frame = if rbuf.len() == 4 + size {
        // The buffer holds just this frame: hand over the whole allocation, so the frame is
        // its only owner (a Produce then appends its records without copying them).
        std::mem::take(rbuf)
    } else {
        rbuf.split_to(4 + size)
    };
    frame.advance(4);
    Ok(Some(frame.freeze()))
}

/// What `read_more` saw.
enum Read {
    /// Bytes arrived, or a deferred response was written: look for a frame again.
    Some,
    /// The client closed its side.
    Closed,
    Shutdown,
}

/// Reads what the socket has into `rbuf`, meanwhile writing deferred responses as they
/// complete.
async fn read_more(
    reader: &mut OwnedReadHalf,
    rbuf: &mut BytesMut,
    pending: &mut VecDeque<Pending>,
    writer: &mut OwnedWriteHalf,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<Read, ConnError> {
    let full = pending.len() >= MAX_PENDING;
    let read = match pending.front_mut() {
        Some(Pending::Deferred(head)) if full => {
            let done = head.await;
            pending.pop_front();
            write_deferred(done, writer).await?;
            return Ok(Read::Some);
        }
        Some(Pending::Deferred(head)) => tokio::select! {
            done = head => {
                pending.pop_front();
                write_deferred(done, writer).await?;
                return Ok(Read::Some);
            }
            // `read_buf` is cancel-safe: nothing is read unless it completes.
            n = reader.read_buf(rbuf) => n?,
            _ = shutdown.changed() => return Ok(Read::Shutdown),
        },
        _ => tokio::select! {
            n = tokio::time::timeout(IDLE_TIMEOUT, reader.read_buf(rbuf)) => match n {
                Ok(n) => n?,
                Err(_) => return Err(ConnError::Protocol("idle connection".into())),
            },
            _ = shutdown.changed() => return Ok(Read::Shutdown),
        },
    };
    Ok(if read == 0 { Read::Closed } else { Read::Some })
}

/// Writes the responses at the head of the queue that are complete.
async fn write_ready(pending: &mut VecDeque<Pending>, writer: &mut OwnedWriteHalf) -> Result<(), ConnError> {
    while let Some(Pending::Ready(parts)) = pending.front_mut() {
        writer.write_all_buf(parts).await?;
        pending.pop_front();
    }
    Ok(())
}

/// A response in parts, written with vectored writes (`writev`) as one buffer.
struct Parts {
    parts: VecDeque<Bytes>,
    remaining: usize,
}

impl Parts {
    fn new(parts: Vec<Bytes>) -> Parts {
        let parts: VecDeque<Bytes> = parts.into_iter().filter(|p| !p.is_empty()).collect();
        let remaining = parts.iter().map(Bytes::len).sum();
        Parts { parts, remaining }
    }
}

impl Buf for Parts {
    fn remaining(&self) -> usize {
        self.remaining
    }

    fn chunk(&self) -> &[u8] {
        self.parts.front().map_or(&[], |p| &p[..])
    }

    fn advance(&mut self, mut cnt: usize) {
        assert!(cnt <= self.remaining, "advance past the end of a response");
        self.remaining -= cnt;
        while let Some(front) = self.parts.front_mut() {
            if cnt < front.len() {
                front.advance(cnt);
                return;
            }
            cnt -= front.len();
            self.parts.pop_front();
        }
    }

    fn chunks_vectored<'a>(&'a self, dst: &mut [std::io::IoSlice<'a>]) -> usize {
        let mut filled = 0;
        for (slot, part) in dst.iter_mut().zip(&self.parts) {
            *slot = std::io::IoSlice::new(part);
            filled += 1;
        }
        filled
    }
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
            Pending::Ready(mut parts) => writer.write_all_buf(&mut parts).await?,
            Pending::Deferred(response) => write_deferred(response.await, writer).await?,
        }
    }
    Ok(())
}

fn close_reason(h: &RequestHeader, reason: &str) -> String {
    format!(
        "api key {} v{} (correlation id {}): {reason}",
        h.api_key, h.api_version, h.correlation_id
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(body: &[u8]) -> Vec<u8> {
        let mut f = (body.len() as u32).to_be_bytes().to_vec();
        f.extend_from_slice(body);
        f
    }

    #[test]
    fn frames_split_off_the_buffer_as_their_bytes_arrive() {
        let mut rbuf = BytesMut::new();
        let stream = [framed(b"first"), framed(b"second"), framed(&[9; 300])].concat();
        let mut got = Vec::new();
        // Bytes arrive seven at a time: prefixes and bodies are cut anywhere.
        for chunk in stream.chunks(7) {
            rbuf.extend_from_slice(chunk);
            while let Some(frame) = split_frame(&mut rbuf, 1024).expect("within the limit") {
                got.push(frame);
            }
        }
        assert_eq!(got, vec![&b"first"[..], &b"second"[..], &[9; 300][..]]);
        assert!(rbuf.is_empty());
    }

    #[test]
    fn a_frame_alone_in_the_buffer_owns_its_memory() {
        let mut rbuf = BytesMut::from(&framed(b"produce")[..]);
        let frame = split_frame(&mut rbuf, 1024).expect("ok").expect("whole");
        // Nothing else refers to the allocation, so it converts back without a copy.
        let ptr = frame.as_ptr();
        let owned = BytesMut::from(frame);
        assert_eq!((owned.as_ptr(), &owned[..]), (ptr, &b"produce"[..]));
    }

    #[test]
    fn parts_write_as_one_buffer_across_their_boundaries() {
        let mut parts = Parts::new(vec![
            Bytes::from_static(b"head"),
            Bytes::new(),
            Bytes::from_static(b"records"),
            Bytes::from_static(b"tail"),
        ]);
        assert_eq!(parts.remaining(), 15);
        let mut slices = [std::io::IoSlice::new(&[]); 8];
        assert_eq!(parts.chunks_vectored(&mut slices), 3, "empty parts are dropped");
        let mut written = Vec::new();
        // Partial writes of 3 bytes, as a busy socket may take them.
        while parts.has_remaining() {
            let n = parts.chunk().len().min(3);
            written.extend_from_slice(&parts.chunk()[..n]);
            parts.advance(n);
        }
        assert_eq!(written, b"headrecordstail");
        assert!(parts.chunk().is_empty());
    }

    #[test]
    fn an_oversized_or_negative_size_is_refused_before_the_body() {
        let mut rbuf = BytesMut::from(&2048u32.to_be_bytes()[..]);
        assert!(split_frame(&mut rbuf, 1024).is_err());
        let mut rbuf = BytesMut::from(&(-1i32).to_be_bytes()[..]);
        assert!(split_frame(&mut rbuf, 1024).is_err());
        // A claimed size within the limit reserves only what may arrive soon, not the frame.
        let mut rbuf = BytesMut::from(&(100u32 << 20).to_be_bytes()[..]);
        assert!(split_frame(&mut rbuf, usize::MAX).expect("ok").is_none());
        assert!(rbuf.capacity() <= FRAME_CHUNK + 64);
    }
}
