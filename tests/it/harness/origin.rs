//! A real HTTP/1.1 origin on 127.0.0.1 whose behaviour a test switches at run
//! time: ok (200 "ok"), failing (500), slow, wrong body, or dead (listener
//! closed, so its port refuses connections) and back.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpSocket;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How the origin answers every request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// 200 with body "ok".
    Ok,
    /// 500 with body "failing".
    Failing,
    /// Waits this long, then 200 "ok".
    Slow(Duration),
    /// 200 with body "wrong".
    WrongBody,
}

struct Shared {
    mode: Mutex<Mode>,
    hits: AtomicU64,
}

/// A running (or killed) origin. Dropping it stops it.
pub struct Origin {
    addr: SocketAddr,
    shared: Arc<Shared>,
    running: Mutex<Option<(CancellationToken, JoinHandle<()>)>>,
}

impl Origin {
    /// Binds 127.0.0.1:0 and serves in `Mode::Ok`.
    pub async fn start() -> Origin {
        let mut origin = Origin {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            shared: Arc::new(Shared {
                mode: Mutex::new(Mode::Ok),
                hits: AtomicU64::new(0),
            }),
            running: Mutex::new(None),
        };
        origin.addr = origin.serve(origin.addr);
        origin
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn set_mode(&self, mode: Mode) {
        *self.shared.mode.lock().expect("origin mode lock") = mode;
    }

    /// Requests received so far (in every mode).
    pub fn hits(&self) -> u64 {
        self.shared.hits.load(Ordering::SeqCst)
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
                let (stream, _) = tokio::select! {
                    _ = token.cancelled() => break,
                    accepted = listener.accept() => match accepted {
                        Ok(a) => a,
                        Err(_) => continue,
                    },
                };
                let shared = shared.clone();
                let token = token.clone();
                conns.spawn(async move {
                    let service = service_fn(move |req| respond(shared.clone(), req));
                    let conn =
                        http1::Builder::new().serve_connection(TokioIo::new(stream), service);
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

async fn respond(
    shared: Arc<Shared>,
    _req: Request<hyper::body::Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    shared.hits.fetch_add(1, Ordering::SeqCst);
    let mode = *shared.mode.lock().expect("origin mode lock");
    let (status, body) = match mode {
        Mode::Ok => (StatusCode::OK, "ok"),
        Mode::Failing => (StatusCode::INTERNAL_SERVER_ERROR, "failing"),
        Mode::Slow(delay) => {
            tokio::time::sleep(delay).await;
            (StatusCode::OK, "ok")
        }
        Mode::WrongBody => (StatusCode::OK, "wrong"),
    };
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    Ok(response)
}
