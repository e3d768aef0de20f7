//! A real HTTP webhook receiver on 127.0.0.1 that records every POST (its
//! headers, body and the status it answered) and can fail the first N with
//! 500; and a black hole that accepts connections and never answers.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// One POST as received.
#[derive(Debug, Clone)]
pub struct Post {
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: serde_json::Value,
    /// The status answered.
    pub status: u16,
}

impl Post {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct State {
    posts: Mutex<Vec<Post>>,
    /// Answer 500 to this many more POSTs.
    fail_next: AtomicU64,
}

/// A running receiver; dropping it stops it.
pub struct Webhook {
    addr: SocketAddr,
    state: Arc<State>,
    stop: CancellationToken,
}

impl Webhook {
    pub async fn start() -> Webhook {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("webhook bind");
        let addr = listener.local_addr().expect("webhook addr");
        let state = Arc::new(State::default());
        let stop = CancellationToken::new();
        let (st, token) = (state.clone(), stop.clone());
        tokio::spawn(async move {
            loop {
                let stream = tokio::select! {
                    _ = token.cancelled() => break,
                    a = listener.accept() => match a {
                        Ok((s, _)) => s,
                        Err(_) => continue,
                    },
                };
                let st = st.clone();
                let service = service_fn(move |req| record(st.clone(), req));
                tokio::spawn(http1::Builder::new().serve_connection(TokioIo::new(stream), service));
            }
        });
        Webhook { addr, state, stop }
    }

    /// `http://127.0.0.1:PORT/hook`.
    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// Answer the next `n` POSTs with 500.
    pub fn fail_next(&self, n: u64) {
        self.state.fail_next.store(n, Ordering::SeqCst);
    }

    /// Every POST so far, in arrival order.
    pub fn posts(&self) -> Vec<Post> {
        self.state.posts.lock().expect("webhook lock").clone()
    }

    /// The events of the POSTs answered 200 (JSON format), in order.
    pub fn events(&self) -> Vec<serde_json::Value> {
        self.posts()
            .into_iter()
            .filter(|p| p.status == 200)
            .flat_map(|p| p.body["events"].as_array().cloned().unwrap_or_default())
            .collect()
    }
}

impl Drop for Webhook {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn record(
    st: Arc<State>,
    req: Request<hyper::body::Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_string();
    let headers = req
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let bytes = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let body = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    let fail = st
        .fail_next
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    let status = if fail {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::OK
    };
    st.posts.lock().expect("webhook lock").push(Post {
        path,
        headers,
        body,
        status: status.as_u16(),
    });
    let mut resp = Response::new(Full::new(Bytes::from_static(b"")));
    *resp.status_mut() = status;
    Ok(resp)
}

/// Accepts TCP connections and holds them open without reading a byte or
/// answering: a receiver that hangs. Dropping it closes everything.
pub struct BlackHole {
    pub addr: SocketAddr,
    stop: CancellationToken,
    pub accepted: Arc<AtomicU64>,
}

impl BlackHole {
    pub async fn start() -> BlackHole {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("black hole bind");
        let addr = listener.local_addr().expect("black hole addr");
        let stop = CancellationToken::new();
        let accepted = Arc::new(AtomicU64::new(0));
        let (token, count) = (stop.clone(), accepted.clone());
        tokio::spawn(async move {
            let mut held = Vec::new();
            loop {
                tokio::select! {
                    _ = token.cancelled() => break,
                    a = listener.accept() => if let Ok((s, _)) = a {
                        count.fetch_add(1, Ordering::SeqCst);
                        held.push(s);
                    },
                }
            }
        });
        BlackHole {
            addr,
            stop,
            accepted,
        }
    }
}

impl Drop for BlackHole {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
