//! The one HTTP/1.1 test origin: a real server on 127.0.0.1 that a test
//! switches at run time. It answers with its name (body and `x-served-by`;
//! [`Origin::start`]'s name is "ok"), counts requests and connections, and
//! records every request's path. Its [`Mode`] makes it failing (500), slow,
//! wrong (another body), hanging or closing, for everyone or only for one
//! source address ([`Origin::set_mode_from`]: the fleet's vantages probe
//! from their own); [`Origin::set_status`] gives one path its own status
//! (a health check failing while traffic passes); [`Origin::set_header`]
//! adds a header to every response; [`Origin::kill`] closes
//! the listener and every connection (the port refuses) and
//! [`Origin::revive`] binds the same port again.
//!
//! Paths for the proxy tests (in `Ok` and `Slow` modes): `/slow/<ms>`
//! waits; `/headers` echoes the request headers; `/sink` counts the
//! request body; `/stream/<bytes>` sends that many bytes; `/trickle` sends
//! one chunk, waits 1 s, sends another; `/ws` accepts an `Upgrade:
//! websocket` with 101 and echoes raw bytes.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::{Body, Frame, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpSocket;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

type B = BoxBody<Bytes, Infallible>;

/// How the origin answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// 200 with its name.
    Ok,
    /// 500 with "NAME failing".
    Failing,
    /// Waits this long, then as `Ok`.
    Slow(Duration),
    /// 200 with body "wrong".
    WrongBody,
    /// Reads the request and never answers (a probe times out).
    Hang,
    /// Closes each new connection before reading anything.
    Close,
}

struct Shared {
    name: String,
    mode: Mutex<Mode>,
    /// Modes for one source address, over `mode`.
    by_source: Mutex<HashMap<IpAddr, Mode>>,
    /// Paths answered with their own status, whatever the mode.
    statuses: Mutex<HashMap<String, u16>>,
    /// Headers added to every response ([`Origin::set_header`]).
    headers: Mutex<HashMap<String, String>>,
    hits: AtomicU64,
    connections: AtomicU64,
    paths: Mutex<Vec<String>>,
}

impl Shared {
    fn mode_for(&self, source: IpAddr) -> Mode {
        let by_source = self.by_source.lock().expect("origin lock");
        match by_source.get(&source) {
            Some(m) => *m,
            None => *self.mode.lock().expect("origin lock"),
        }
    }
}

/// A running (or killed) origin. Dropping it stops it.
pub struct Origin {
    addr: SocketAddr,
    shared: Arc<Shared>,
    running: Mutex<Option<(CancellationToken, JoinHandle<()>)>>,
}

impl Origin {
    /// Binds 127.0.0.1:0, named "ok" (its `Ok` body), in `Mode::Ok`.
    pub async fn start() -> Origin {
        Origin::named("ok").await
    }

    /// Binds 127.0.0.1:0 and answers with `name`, in `Mode::Ok`.
    pub async fn named(name: &str) -> Origin {
        let mut origin = Origin {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            shared: Arc::new(Shared {
                name: name.to_string(),
                mode: Mutex::new(Mode::Ok),
                by_source: Mutex::default(),
                statuses: Mutex::default(),
                headers: Mutex::default(),
                hits: AtomicU64::new(0),
                connections: AtomicU64::new(0),
                paths: Mutex::default(),
            }),
            running: Mutex::new(None),
        };
        origin.addr = origin.serve(origin.addr);
        origin
    }

    /// Binds `addr` (port 0: any) and answers with `name`, in `Mode::Ok`:
    /// for origins on other loopback addresses (127.0.0.2, ...) that share
    /// one port.
    pub async fn at(addr: SocketAddr, name: &str) -> Origin {
        let mut origin = Origin::named(name).await;
        origin.kill().await;
        origin.addr = origin.serve(addr);
        origin
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// From now on every response carries `name: value` (None: no more),
    /// as a server reporting its load (`X-Load: 150`) does.
    pub fn set_header(&self, name: &str, value: Option<&str>) {
        let mut headers = self.shared.headers.lock().expect("origin lock");
        match value {
            Some(v) => headers.insert(name.to_string(), v.to_string()),
            None => headers.remove(name),
        };
    }

    /// The mode for every source without its own.
    pub fn set_mode(&self, mode: Mode) {
        *self.shared.mode.lock().expect("origin lock") = mode;
    }

    /// From now on, requests from `source` (an IP address) get `mode`.
    pub fn set_mode_from(&self, source: &str, mode: Mode) {
        let ip: IpAddr = source.parse().expect("source address");
        self.shared
            .by_source
            .lock()
            .expect("origin lock")
            .insert(ip, mode);
    }

    /// `path` answers `status` (body: the path) whatever the mode.
    pub fn set_status(&self, path: &str, status: u16) {
        self.shared
            .statuses
            .lock()
            .expect("origin lock")
            .insert(path.to_string(), status);
    }

    /// Requests received so far (every mode, every path).
    pub fn hits(&self) -> u64 {
        self.shared.hits.load(Ordering::SeqCst)
    }

    /// Requests received so far for `path`.
    pub fn hits_on(&self, path: &str) -> u64 {
        let paths = self.shared.paths.lock().expect("origin lock");
        paths.iter().filter(|p| *p == path).count() as u64
    }

    /// The path of every request so far, in order.
    pub fn paths(&self) -> Vec<String> {
        self.shared.paths.lock().expect("origin lock").clone()
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// Closes the listener and every open connection: the port refuses.
    pub async fn kill(&self) {
        let running = self.running.lock().expect("origin lock").take();
        if let Some((cancel, task)) = running {
            cancel.cancel();
            let _ = task.await;
        }
    }

    /// Binds the same port again (after `kill`), in the current mode.
    pub async fn revive(&self) {
        self.kill().await;
        self.serve(self.addr);
    }

    /// Binds `addr` and spawns the accept loop; returns the bound address.
    fn serve(&self, addr: SocketAddr) -> SocketAddr {
        let socket = TcpSocket::new_v4().expect("origin socket");
        socket.set_reuseaddr(true).expect("SO_REUSEADDR");
        socket.bind(addr).expect("origin bind");
        let listener = socket.listen(128).expect("origin listen");
        let bound = listener.local_addr().expect("origin addr");
        let cancel = CancellationToken::new();
        let shared = self.shared.clone();
        let token = cancel.clone();
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            loop {
                let (stream, peer) = tokio::select! {
                    _ = token.cancelled() => break,
                    accepted = listener.accept() => match accepted {
                        Ok(a) => a,
                        Err(_) => continue,
                    },
                };
                shared.connections.fetch_add(1, Ordering::SeqCst);
                if shared.mode_for(peer.ip()) == Mode::Close {
                    drop(stream);
                    continue;
                }
                let shared = shared.clone();
                let token = token.clone();
                conns.spawn(async move {
                    let service = service_fn(move |req| respond(shared.clone(), peer.ip(), req));
                    let conn = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .with_upgrades();
                    tokio::select! {
                        _ = token.cancelled() => {}
                        _ = conn => {}
                    }
                });
            }
            drop(listener);
            conns.shutdown().await;
        });
        *self.running.lock().expect("origin lock") = Some((cancel, task));
        bound
    }
}

impl Drop for Origin {
    fn drop(&mut self) {
        if let Ok(mut running) = self.running.lock()
            && let Some((cancel, task)) = running.take()
        {
            cancel.cancel();
            task.abort();
        }
    }
}

fn full(s: impl Into<Bytes>) -> B {
    Full::new(s.into()).boxed()
}

fn status(code: StatusCode, body: impl Into<Bytes>) -> Response<B> {
    let mut r = Response::new(full(body));
    *r.status_mut() = code;
    r
}

/// A request closed without an answer (`Mode::Close` set on an open
/// connection): hyper drops the connection.
#[derive(Debug)]
struct Closed;

impl std::fmt::Display for Closed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("closed by the test origin")
    }
}

impl std::error::Error for Closed {}

async fn respond(
    shared: Arc<Shared>,
    source: IpAddr,
    req: Request<Incoming>,
) -> Result<Response<B>, Closed> {
    shared.hits.fetch_add(1, Ordering::SeqCst);
    let path = req.uri().path().to_string();
    shared.paths.lock().expect("origin lock").push(path.clone());
    let name = shared.name.as_str();
    let fixed = shared
        .statuses
        .lock()
        .expect("origin lock")
        .get(&path)
        .copied();
    let mut resp = if let Some(code) = fixed {
        status(
            StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            path,
        )
    } else {
        match shared.mode_for(source) {
            Mode::Ok => route(name, req).await,
            Mode::Slow(delay) => {
                tokio::time::sleep(delay).await;
                route(name, req).await
            }
            Mode::Failing => status(StatusCode::INTERNAL_SERVER_ERROR, format!("{name} failing")),
            Mode::WrongBody => status(StatusCode::OK, "wrong"),
            Mode::Hang => std::future::pending().await,
            Mode::Close => return Err(Closed),
        }
    };
    if let Ok(v) = name.parse() {
        resp.headers_mut().insert("x-served-by", v);
    }
    for (k, v) in shared.headers.lock().expect("origin lock").iter() {
        if let (Ok(k), Ok(v)) = (
            http::HeaderName::from_bytes(k.as_bytes()),
            http::HeaderValue::from_str(v),
        ) {
            resp.headers_mut().insert(k, v);
        }
    }
    Ok(resp)
}

/// The answer of a healthy origin, by path.
async fn route(name: &str, mut req: Request<Incoming>) -> Response<B> {
    let path = req.uri().path().to_string();
    if let Some(ms) = path.strip_prefix("/slow/") {
        tokio::time::sleep(Duration::from_millis(ms.parse().unwrap_or(0))).await;
        Response::new(full(name.to_string()))
    } else if path == "/headers" {
        let mut text = String::new();
        for (k, v) in req.headers() {
            text.push_str(&format!("{k}: {}\n", v.to_str().unwrap_or("?")));
        }
        Response::new(full(text))
    } else if path == "/sink" {
        let mut n: u64 = 0;
        let mut body = req.into_body();
        while let Some(Ok(frame)) = body.frame().await {
            if let Ok(d) = frame.into_data() {
                n += d.len() as u64;
            }
        }
        Response::new(full(n.to_string()))
    } else if let Some(n) = path.strip_prefix("/stream/") {
        Response::new(
            Generated {
                left: n.parse().unwrap_or(0),
                byte: b'x',
            }
            .boxed(),
        )
    } else if path == "/trickle" {
        let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(1);
        tokio::spawn(async move {
            let _ = tx.send(Bytes::from_static(b"first ")).await;
            tokio::time::sleep(Duration::from_secs(1)).await;
            let _ = tx.send(Bytes::from_static(b"second")).await;
        });
        Response::new(Channel(rx).boxed())
    } else if path == "/ws" {
        let on = hyper::upgrade::on(&mut req);
        tokio::spawn(async move {
            if let Ok(up) = on.await {
                let mut io = TokioIo::new(up);
                let mut buf = [0u8; 1024];
                while let Ok(n) = io.read(&mut buf).await {
                    if n == 0 || io.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            }
        });
        let mut r = status(StatusCode::SWITCHING_PROTOCOLS, "");
        let headers = r.headers_mut();
        headers.insert("upgrade", http::HeaderValue::from_static("websocket"));
        headers.insert("connection", http::HeaderValue::from_static("upgrade"));
        r
    } else {
        Response::new(full(name.to_string()))
    }
}

/// `left` bytes of `byte`, made 64 KiB at a time as the reader pulls: the
/// origin's `/stream/<bytes>`.
struct Generated {
    left: u64,
    byte: u8,
}

impl Body for Generated {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.left == 0 {
            return Poll::Ready(None);
        }
        let n = self.left.min(64 * 1024);
        self.left -= n;
        let chunk = Bytes::from(vec![self.byte; n as usize]);
        Poll::Ready(Some(Ok(Frame::data(chunk))))
    }
}

struct Channel(tokio::sync::mpsc::Receiver<Bytes>);

impl Body for Channel {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|o| o.map(|b| Ok(Frame::data(b))))
    }
}

/// A request body of `left` bytes generated on the fly (for uploads).
pub struct Upload {
    pub left: u64,
}

impl Body for Upload {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.left == 0 {
            return Poll::Ready(None);
        }
        let n = self.left.min(64 * 1024);
        self.left -= n;
        Poll::Ready(Some(Ok(Frame::data(Bytes::from(vec![b'u'; n as usize])))))
    }
}
