//! Proxy tests against real origins on loopback (`harness::origin`).
//! Every wait is bounded by a timeout. The helpers live here, the tests in
//! one file per theme.

mod balancing;
mod forwarding;
mod lifecycle;
mod safety;

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use geosteer::config::Config;
use geosteer::health::{Source, Target};
use geosteer::proxy::{Proxies, ProxyOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_util::sync::CancellationToken;

use crate::harness::origin::{Mode, Origin, Upload};

pub(crate) const T: Duration = Duration::from_secs(15);

pub(crate) fn config(body: &str) -> Arc<Config> {
    let text = format!("[server]\ndns_listen = [\"127.0.0.1:0\"]\n{body}");
    let (c, _) = geosteer::config::parse(&text, Path::new("test.toml"), Path::new("."), "")
        .unwrap_or_else(|e| panic!("config: {e:?}\n{text}"));
    Arc::new(c)
}

fn servers(origins: &[&Origin], weights: &[u32]) -> String {
    let list: Vec<String> = origins
        .iter()
        .enumerate()
        .map(|(i, o)| {
            format!(
                "{{ address = \"{}\", weight = {} }}",
                o.addr(),
                weights.get(i).copied().unwrap_or(1)
            )
        })
        .collect();
    format!("servers = [{}]", list.join(", "))
}

/// One http listener on port 0 routing everything to backend `web`.
pub(crate) fn http_config(
    algorithm: &str,
    origins: &[&Origin],
    weights: &[u32],
    extra: &str,
) -> Arc<Config> {
    config(&format!(
        "[[proxy]]\nlisten = \"127.0.0.1:0\"\nmode = \"http\"\nroutes = [{{ path_prefix = \"/\", backend = \"web\" }}]\n\
         [backends.web]\nalgorithm = \"{algorithm}\"\n{}\n{extra}\n",
        servers(origins, weights)
    ))
}

pub(crate) async fn start(config: Arc<Config>) -> (Proxies, SocketAddr) {
    let options = ProxyOptions {
        header_read_timeout: Duration::from_secs(1),
        ..ProxyOptions::default()
    };
    let p = Proxies::start_with(config, 1, None, CancellationToken::new(), options)
        .await
        .expect("proxy starts");
    let addr = p.listen_addrs()[0];
    (p, addr)
}

#[derive(Debug)]
pub(crate) struct Resp {
    pub(crate) status: u16,
    pub(crate) head: String,
    pub(crate) body: String,
}

impl Resp {
    pub(crate) fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    }
    pub(crate) fn served_by(&self) -> String {
        self.header("x-served-by").unwrap_or_default()
    }
}

pub(crate) fn parse(raw: &[u8]) -> Resp {
    let text = String::from_utf8_lossy(raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Resp {
        status,
        head: head.to_string(),
        body: body.to_string(),
    }
}

/// Sends raw bytes and reads until the proxy closes.
pub(crate) async fn raw_on(mut s: TcpStream, request: &[u8]) -> Vec<u8> {
    s.write_all(request).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(T, s.read_to_end(&mut out))
        .await
        .expect("response within timeout")
        .ok();
    out
}

pub(crate) async fn raw(addr: SocketAddr, request: &[u8]) -> Vec<u8> {
    raw_on(TcpStream::connect(addr).await.unwrap(), request).await
}

pub(crate) async fn get(addr: SocketAddr, path: &str) -> Resp {
    let req = format!("GET {path} HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n");
    parse(&raw(addr, req.as_bytes()).await)
}

async fn get_from(source: IpAddr, addr: SocketAddr, path: &str) -> Resp {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(source, 0)).unwrap();
    let s = socket.connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n");
    parse(&raw_on(s, req.as_bytes()).await)
}

async fn served(addr: SocketAddr, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    for _ in 0..n {
        let r = get(addr, "/").await;
        assert_eq!(r.status, 200, "{r:?}");
        out.push(r.served_by());
    }
    out
}
