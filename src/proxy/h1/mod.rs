//! h1: the HTTP/1.1 forwarding path (plain listeners, and TLS connections
//! that did not negotiate HTTP/2).
//!
//! One task per client connection reads request heads, routes, picks a
//! server and relays the exchange itself over a server connection it takes
//! from (and gives back to) the server's idle pool. Bodies pass through
//! unchanged, both directions at once, framed by `Content-Length` or by
//! scanning chunked encoding; nothing is buffered whole. No task, channel or
//! allocation per request beyond the routing strings, which is what makes
//! this path about twice as cheap as going through hyper's server and
//! pooled client.
//!
//! What this path does not speak goes to hyper's full server
//! ([`super::service::serve_conn`]) with the bytes read so far: HTTP/2 with
//! prior knowledge or by ALPN, HTTP/1.0, upgrades (WebSocket), CONNECT and
//! absolute-form targets.
//!
//! Framing is strict: both `Content-Length` and `Transfer-Encoding`, more
//! than one `Content-Length`, a final coding other than chunked, a missing
//! or repeated `Host` are answered 400 and the connection closed; a server
//! connection is reused only after a cleanly framed exchange.

mod chunked;
mod head;
mod io;
#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use hyper_util::rt::TokioExecutor;
use hyper_util::server::conn::auto;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use super::Shared;
use super::backend::BackendRuntime;
use super::forward::{record, says};
use super::service::{Routed, route};
use chunked::{Chunked, Scan};
use head::{Body, Parsed, Request};
pub(crate) use io::Halves;
use io::{Rewind, connect, send};

/// Largest response head accepted from a server.
const MAX_RESPONSE_HEAD: usize = 64 * 1024;
/// Time to say goodbye (TLS close_notify, FIN) to a client.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);
/// Read buffer per direction.
const READ_CHUNK: usize = 16 * 1024;

/// Serves one client connection (`proto`: `http` or `https`) until it
/// closes or is handed to hyper.
pub(crate) async fn serve<C: Halves>(
    shared: Arc<Shared>,
    builder: Arc<auto::Builder<TokioExecutor>>,
    key: SocketAddr,
    peer: SocketAddr,
    proto: &'static str,
    client: C,
    stop: CancellationToken,
) {
    let (cr, cw) = client.halves();
    let mut conn: Conn<C> = Conn {
        shared,
        key,
        peer,
        proto,
        cr,
        cw,
        buf: BytesMut::with_capacity(READ_CHUNK),
        rbuf: BytesMut::new(),
        head: Vec::new(),
        resp_head: Vec::new(),
        is_head: false,
    };
    loop {
        conn.is_head = false;
        let req = match conn.read_head(&stop).await {
            Next::Request(req) => req,
            Next::Close => break,
            Next::Handoff => {
                let Conn {
                    shared,
                    cr,
                    cw,
                    buf,
                    ..
                } = conn;
                let Some(io) = C::whole(cr, cw) else {
                    return;
                };
                let io = Rewind {
                    pre: buf.freeze(),
                    io,
                };
                super::service::serve_conn(shared, builder, key, peer, proto, io, stop).await;
                return;
            }
        };
        if !conn.exchange(req, &stop).await || stop.is_cancelled() {
            break;
        }
    }
    // FIN, and TLS's close_notify first, so a body that ends at the close
    // is known to be whole.
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, conn.cw.shutdown()).await;
}

enum Next {
    Request(Request),
    Handoff,
    Close,
}

/// One client connection and its buffers (reused across requests).
struct Conn<C: Halves> {
    shared: Arc<Shared>,
    key: SocketAddr,
    peer: SocketAddr,
    proto: &'static str,
    cr: C::Read,
    cw: C::Write,
    /// Client bytes not yet consumed.
    buf: BytesMut,
    /// Server bytes not yet consumed.
    rbuf: BytesMut,
    /// The rewritten request head.
    head: Vec<u8>,
    /// The rewritten response head (or a local answer).
    resp_head: Vec<u8>,
    /// The request being answered is a HEAD: local answers carry no body.
    is_head: bool,
}

/// How the relay of one attempt ended.
#[derive(Debug)]
enum End {
    /// The response went to the client whole.
    Complete { reusable: bool, close_client: bool },
    /// A pooled server connection closed before answering: try a fresh one.
    Stale,
    /// No response head within `request_timeout`.
    Timeout,
    /// The server broke HTTP, or closed mid-response.
    Broken(&'static str),
    /// The client closed, or broke its body's framing.
    Client(Option<&'static str>),
    /// The server's drain timeout passed, or the proxy is stopping.
    Cut,
}

impl<C: Halves> Conn<C> {
    async fn read_head(&mut self, stop: &CancellationToken) -> Next {
        let opts = &self.shared.options;
        let deadline = tokio::time::Instant::now() + opts.header_read_timeout;
        loop {
            if !self.buf.is_empty() {
                let parsed = head::parse_request(
                    &self.buf,
                    opts.max_headers,
                    self.peer.ip(),
                    self.proto,
                    &mut self.head,
                );
                match parsed {
                    Parsed::Done(req) if req.head_len <= opts.max_header_bytes => {
                        return Next::Request(req);
                    }
                    Parsed::Done(_) => return self.refuse(431, "request head too large").await,
                    Parsed::Partial if self.buf.len() > opts.max_header_bytes => {
                        return self.refuse(431, "request head too large").await;
                    }
                    Parsed::Partial => {}
                    Parsed::Handoff => return Next::Handoff,
                    Parsed::Reject { status, why } => return self.refuse(status, why).await,
                }
            }
            self.buf.reserve(READ_CHUNK);
            let idle = self.buf.is_empty();
            tokio::select! {
                biased;
                _ = stop.cancelled(), if idle => return Next::Close,
                read = tokio::time::timeout_at(deadline, self.cr.read_buf(&mut self.buf)) => {
                    match read {
                        Err(_) if idle => return Next::Close,
                        Err(_) => return self.refuse(408, "request head not received in time").await,
                        Ok(Ok(0)) | Ok(Err(_)) => return Next::Close,
                        Ok(Ok(_)) => {}
                    }
                }
            }
        }
    }

    /// Answers a bad head and closes.
    async fn refuse(&mut self, status: u16, why: &str) -> Next {
        self.answer(status, &format!("bad request: {why}\n"), true, None)
            .await;
        Next::Close
    }

    async fn answer(&mut self, status: u16, body: &str, close: bool, retry_after: Option<u64>) {
        let to_head = self.is_head;
        head::local(
            &mut self.resp_head,
            status,
            body,
            close,
            retry_after,
            to_head,
        );
        let idle = self.shared.options.header_read_timeout;
        let _ = send(&mut self.cw, &self.resp_head, idle).await;
    }

    /// Routes and forwards one request. Returns whether the client
    /// connection can carry another.
    async fn exchange(&mut self, req: Request, stop: &CancellationToken) -> bool {
        self.is_head = req.is_head;
        self.buf.advance(req.head_len);
        let runtime = self.shared.runtime.load_full();
        let keep = req.keeps_without_body();
        let backend = match route(
            &runtime,
            self.key,
            req.host.as_deref(),
            &req.path,
            self.peer.ip(),
        ) {
            Routed::Backend(b) => b,
            Routed::Local {
                status,
                body,
                retry_after,
            } => {
                self.answer(status.as_u16(), &body, !keep, retry_after)
                    .await;
                return keep;
            }
        };
        self.forward(runtime.generation, &backend, req, stop).await
    }

    async fn forward(
        &mut self,
        generation: u64,
        backend: &Arc<BackendRuntime>,
        req: Request,
        stop: &CancellationToken,
    ) -> bool {
        let shared = self.shared.clone();
        let config = &backend.config;
        let retriable = req.idempotent && req.body == Body::None;
        let attempts = 1 + if retriable { config.retries } else { 0 };
        let mut tried: Vec<usize> = Vec::new();
        let mut failure: Option<String> = None;

        for _ in 0..attempts {
            let Some((index, guard)) = backend.pick(self.peer.ip(), &tried, Instant::now()) else {
                break;
            };
            tried.push(index);
            let slot = guard.slot().clone();
            let mut pooled = slot.take_idle(Instant::now(), shared.options.pool_idle_timeout);
            let relayed = loop {
                let reused = pooled.is_some();
                let started = Instant::now();
                let mut server = match pooled.take() {
                    Some(s) => s,
                    None => match connect(slot.address, config.connect_timeout).await {
                        Ok(s) => s,
                        Err(e) => {
                            tracing::debug!(backend = %config.name, server = %slot.address, "connect failed: {e}");
                            break Err(started.elapsed());
                        }
                    },
                };
                let relayed = self
                    .relay(
                        &req,
                        &mut server,
                        &guard.cut,
                        config.request_timeout,
                        started,
                    )
                    .await;
                match relayed.end {
                    // The server closed a pooled connection as we reused it.
                    End::Stale if reused && retriable => continue,
                    End::Complete { reusable: true, .. } if relayed.body_done => {
                        slot.put_idle(server, Instant::now());
                    }
                    _ => {}
                }
                break Ok(relayed);
            };
            let outcome = |ok: bool, latency: Duration, error: Option<String>| {
                record(&shared, generation, backend, &slot, ok, latency, error);
            };
            let relayed = match relayed {
                Ok(relayed) => relayed,
                Err(latency) => {
                    outcome(false, latency, Some("connect".into()));
                    failure = Some(says::cannot_connect(&config.name));
                    continue;
                }
            };
            // The client still owes body bytes: the wait was its fault.
            let client_slow = matches!(relayed.end, End::Timeout) && !relayed.body_done;
            match (relayed.status, &relayed.end) {
                (Some(status), End::Broken(_)) => {
                    slot.count_status(status);
                    outcome(false, relayed.latency, Some("protocol".into()));
                }
                (Some(status), _) => {
                    slot.count_status(status);
                    let error = (status >= 500).then(|| format!("status {status}"));
                    outcome(status < 500, relayed.latency, error);
                }
                (None, End::Timeout) if client_slow => {}
                (None, End::Timeout) => outcome(false, relayed.latency, Some("timeout".into())),
                (None, End::Stale | End::Broken(_)) => {
                    outcome(false, relayed.latency, Some("protocol".into()))
                }
                (None, _) => {} // the client left, or the server was cut: not its fault
            }
            return match relayed.end {
                End::Complete { close_client, .. } => {
                    !close_client && relayed.body_done && !stop.is_cancelled()
                }
                _ if relayed.sent => false, // a response is half out: only closing tells
                End::Client(Some(why)) => {
                    self.refuse(400, why).await;
                    false
                }
                End::Client(None) => false,
                End::Cut => {
                    self.answer(502, says::DRAINED, true, None).await;
                    false
                }
                End::Timeout if client_slow => {
                    let msg = "request body not received in time\n";
                    self.answer(408, msg, true, None).await;
                    false
                }
                End::Timeout => {
                    let msg = says::no_answer_within(config.request_timeout);
                    // Nothing was sent (that arm is above), so only the body matters.
                    let keep = relayed.body_done && req.keep_alive;
                    self.answer(504, &msg, !keep, None).await;
                    keep
                }
                End::Stale | End::Broken(_) => {
                    if let End::Broken(why) = relayed.end {
                        tracing::debug!(backend = %config.name, server = %slot.address, "{why}");
                    }
                    self.answer(502, says::BROKEN, true, None).await;
                    false
                }
            };
        }
        let keep = req.keeps_without_body();
        let (status, msg) = match failure {
            Some(msg) => (502, msg), // every attempt failed to connect
            None => (503, says::no_server(&config.name)),
        };
        self.answer(status, &msg, !keep, None).await;
        keep
    }

    /// Sends the request to `server` and the response to the client, both
    /// ways at once, until the response ends or something breaks.
    async fn relay(
        &mut self,
        req: &Request,
        server: &mut TcpStream,
        cut: &CancellationToken,
        timeout: Duration,
        started: Instant,
    ) -> Relayed {
        let Conn {
            shared,
            cr,
            cw,
            buf,
            rbuf,
            head,
            resp_head,
            ..
        } = self;
        let mut relayed = Relayed {
            status: None,
            latency: Duration::ZERO,
            end: End::Stale,
            body_done: false,
            sent: false,
        };
        rbuf.clear();
        // The head and whatever of the body is already here, in one write.
        let mut up = Left::new(req.body);
        let head_len = head.len();
        let k = match up.take(buf) {
            Ok(k) => k,
            Err(why) => {
                relayed.end = End::Client(Some(why));
                return relayed;
            }
        };
        head.extend_from_slice(&buf[..k]);
        buf.advance(k);
        let (mut sr, mut sw) = server.split();
        let written = sw.write_all(head).await;
        head.truncate(head_len); // the head alone again, for a retry
        if written.is_err() {
            relayed.latency = started.elapsed();
            return relayed; // Stale
        }
        relayed.body_done = up.done();

        let sent = AtomicBool::new(false);
        let deadline = tokio::time::Instant::from_std(started + timeout);
        let upload = async {
            while !up.done() {
                buf.reserve(READ_CHUNK);
                match cr.read_buf(buf).await {
                    Ok(0) | Err(_) => return Err(None),
                    Ok(_) => {}
                }
                let k = up.take(buf).map_err(Some)?;
                let w = sw.write_all(&buf[..k]).await;
                buf.advance(k);
                if w.is_err() {
                    return Ok(false); // the server stopped reading; its answer tells why
                }
            }
            Ok(true)
        };
        let download = async {
            let response = loop {
                match head::parse_response(rbuf, req.is_head, !req.keep_alive, resp_head) {
                    Ok(Some(r)) if r.status < 200 => {
                        // 100 Continue and friends go on as they come.
                        rbuf.advance(r.head_len);
                        sent.store(true, Ordering::Relaxed);
                        if send(cw, resp_head, timeout).await.is_err() {
                            return (None, End::Client(None));
                        }
                        continue;
                    }
                    Ok(Some(r)) => break r,
                    Ok(None) if rbuf.len() > MAX_RESPONSE_HEAD => {
                        return (None, End::Broken("response head too large"));
                    }
                    Ok(None) => {}
                    Err(why) => return (None, End::Broken(why)),
                }
                rbuf.reserve(READ_CHUNK);
                match tokio::time::timeout_at(deadline, sr.read_buf(rbuf)).await {
                    Err(_) => return (None, End::Timeout),
                    Ok(Ok(0) | Err(_)) if rbuf.is_empty() && !sent.load(Ordering::Relaxed) => {
                        return (None, End::Stale);
                    }
                    Ok(Ok(0) | Err(_)) => {
                        return (
                            None,
                            End::Broken("server closed before a complete response head"),
                        );
                    }
                    Ok(Ok(_)) => {}
                }
            };
            let head_at = Some((response.status, started.elapsed()));
            rbuf.advance(response.head_len);
            let mut down = Left::new(response.body);
            let Ok(k) = down.take(rbuf) else {
                return (head_at, End::Broken("bad chunked framing in response"));
            };
            resp_head.extend_from_slice(&rbuf[..k]);
            rbuf.advance(k);
            sent.store(true, Ordering::Relaxed);
            if send(cw, resp_head, timeout).await.is_err() {
                return (head_at, End::Client(None));
            }
            while !down.done() {
                rbuf.reserve(READ_CHUNK);
                // A server silent for `request_timeout` mid-body is as
                // stuck as one that never answers.
                match tokio::time::timeout(timeout, sr.read_buf(rbuf)).await {
                    Err(_) => return (head_at, End::Broken("server stalled mid-response")),
                    Ok(Ok(0)) if down == Left::Close => break,
                    Ok(Ok(0) | Err(_)) => {
                        return (head_at, End::Broken("server closed mid-response"));
                    }
                    Ok(Ok(_)) => {}
                }
                let Ok(k) = down.take(rbuf) else {
                    return (head_at, End::Broken("bad chunked framing in response"));
                };
                let w = send(cw, &rbuf[..k], timeout).await;
                rbuf.advance(k);
                if w.is_err() {
                    return (head_at, End::Client(None));
                }
            }
            let reusable = response.reusable && rbuf.is_empty();
            let close_client = response.close_client;
            (
                head_at,
                End::Complete {
                    reusable,
                    close_client,
                },
            )
        };

        let mut uploading = !relayed.body_done;
        let (head_at, end) = {
            tokio::pin!(upload, download);
            let cut = cut.cancelled();
            let hard_stop = shared.hard_stop.cancelled();
            tokio::pin!(cut, hard_stop);
            loop {
                tokio::select! {
                    biased;
                    r = &mut download => break r,
                    r = &mut upload, if uploading => {
                        uploading = false;
                        match r {
                            Ok(done) => relayed.body_done = done,
                            Err(why) => break (None, End::Client(why)),
                        }
                    }
                    _ = &mut cut => break (None, End::Cut),
                    _ = &mut hard_stop => break (None, End::Cut),
                }
            }
        };
        relayed.sent = sent.load(Ordering::Relaxed);
        relayed.latency = head_at.map_or_else(|| started.elapsed(), |(_, l)| l);
        relayed.status = head_at.map(|(s, _)| s);
        relayed.end = end;
        relayed
    }
}

/// What one relay did.
#[derive(Debug)]
struct Relayed {
    /// The response status, once its head arrived.
    status: Option<u16>,
    /// Until the response head, or until the relay ended without one.
    latency: Duration,
    end: End,
    /// The request body was read whole from the client.
    body_done: bool,
    /// Bytes of a response went to the client.
    sent: bool,
}

/// What is left of a body.
#[derive(Debug, PartialEq)]
enum Left {
    Done,
    Length(u64),
    Chunked(Chunked),
    Close,
}

impl Left {
    fn new(body: Body) -> Left {
        match body {
            Body::None => Left::Done,
            Body::Length(n) => Left::Length(n),
            Body::Chunked => Left::Chunked(Chunked::default()),
            Body::Close => Left::Close,
        }
    }

    fn done(&self) -> bool {
        *self == Left::Done
    }

    /// How many leading bytes of `buf` belong to the body; the rest is the
    /// next message.
    fn take(&mut self, buf: &[u8]) -> Result<usize, &'static str> {
        match self {
            Left::Done => Ok(0),
            Left::Length(left) => {
                let k = (*left).min(buf.len() as u64);
                *left -= k;
                if *left == 0 {
                    *self = Left::Done;
                }
                Ok(k as usize)
            }
            Left::Chunked(c) => match c.scan(buf)? {
                Scan::More => Ok(buf.len()),
                Scan::End(k) => {
                    *self = Left::Done;
                    Ok(k)
                }
            },
            Left::Close => Ok(buf.len()),
        }
    }
}
