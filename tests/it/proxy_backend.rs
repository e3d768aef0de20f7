//! A real HTTP origin on 127.0.0.1:0 for proxy tests: answers with its name
//! (`x-served-by` header and body) and can be made slow, failing or dead.
//!
//! Paths: `/slow/<ms>` waits; `/headers` echoes the request headers;
//! `/sink` counts the request body; `/stream/<bytes>` sends that many bytes;
//! `/trickle` sends one chunk, waits 1 s, sends another; `/ws` accepts an
//! `Upgrade: websocket` with 101 and echoes raw bytes.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::{Body, Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

type B = BoxBody<Bytes, Infallible>;

pub struct Origin {
    pub addr: SocketAddr,
    pub name: String,
    pub failing: Arc<AtomicBool>,
    pub hits: Arc<AtomicU64>,
    pub paths: Arc<Mutex<Vec<String>>>,
    /// TCP connections accepted.
    pub connections: Arc<AtomicU64>,
    stop: CancellationToken,
}

impl Origin {
    pub async fn start(name: &str) -> Origin {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::serve(name, listener)
    }

    fn serve(name: &str, listener: TcpListener) -> Origin {
        let addr = listener.local_addr().unwrap();
        let origin = Origin {
            addr,
            name: name.to_string(),
            failing: Arc::new(AtomicBool::new(false)),
            hits: Arc::new(AtomicU64::new(0)),
            paths: Arc::new(Mutex::new(Vec::new())),
            connections: Arc::new(AtomicU64::new(0)),
            stop: CancellationToken::new(),
        };
        let connections = origin.connections.clone();
        let (name, failing, hits, paths, stop) = (
            origin.name.clone(),
            origin.failing.clone(),
            origin.hits.clone(),
            origin.paths.clone(),
            origin.stop.clone(),
        );
        tokio::spawn(async move {
            loop {
                let (stream, _) = tokio::select! {
                    _ = stop.cancelled() => return,
                    a = listener.accept() => match a { Ok(a) => a, Err(_) => continue },
                };
                connections.fetch_add(1, Ordering::SeqCst);
                let (name, failing, hits, paths, stop) = (
                    name.clone(),
                    failing.clone(),
                    hits.clone(),
                    paths.clone(),
                    stop.clone(),
                );
                tokio::spawn(async move {
                    let svc = service_fn(move |req: Request<Incoming>| {
                        hits.fetch_add(1, Ordering::SeqCst);
                        paths.lock().unwrap().push(req.uri().path().to_string());
                        let (name, failing) = (name.clone(), failing.load(Ordering::SeqCst));
                        async move { Ok::<_, Infallible>(answer(&name, failing, req).await) }
                    });
                    let conn = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .with_upgrades();
                    tokio::select! {
                        _ = conn => {}
                        _ = stop.cancelled() => {}
                    }
                });
            }
        });
        origin
    }

    /// Dead: the port refuses connections and open connections close.
    pub fn kill(&self) {
        self.stop.cancel();
    }

    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::SeqCst)
    }
}

impl Drop for Origin {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

fn full(s: impl Into<Bytes>) -> B {
    Full::new(s.into()).boxed()
}

async fn answer(name: &str, failing: bool, mut req: Request<Incoming>) -> Response<B> {
    let path = req.uri().path().to_string();
    let mut resp = if failing {
        let mut r = Response::new(full(format!("{name} failing")));
        *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        r
    } else if let Some(ms) = path.strip_prefix("/slow/") {
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
        while let Some(frame) = body.frame().await {
            if let Ok(d) = frame.unwrap().into_data() {
                n += d.len() as u64;
            }
        }
        Response::new(full(n.to_string()))
    } else if let Some(n) = path.strip_prefix("/stream/") {
        Response::new(
            Generated {
                left: n.parse().unwrap_or(0),
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
        let mut r = Response::new(full(""));
        *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        r.headers_mut()
            .insert("upgrade", "websocket".parse().unwrap());
        r.headers_mut()
            .insert("connection", "upgrade".parse().unwrap());
        r
    } else {
        Response::new(full(name.to_string()))
    };
    resp.headers_mut()
        .insert("x-served-by", name.parse().unwrap());
    resp
}

/// `left` bytes of `x`, made 64 KiB at a time as the reader pulls.
struct Generated {
    left: u64,
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
        Poll::Ready(Some(Ok(Frame::data(Bytes::from(vec![b'x'; n as usize])))))
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
