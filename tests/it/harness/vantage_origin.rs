//! An HTTP origin that answers each probe by where it comes from: the fleet
//! tests give every node its own source address (`probe_source`
//! 127.0.0.11, .12, .13) and make the origin close on, hang for, or slow
//! down the probes of chosen nodes only, as a broken path would.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// What a source address gets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Path {
    Ok,
    /// The connection is closed before any answer.
    Close,
    /// The request is read and never answered (the probe times out).
    Hang,
    /// Answered after this long.
    Slow(Duration),
}

pub struct VantageOrigin {
    pub addr: SocketAddr,
    paths: Arc<Mutex<HashMap<IpAddr, Path>>>,
    task: tokio::task::JoinHandle<()>,
}

impl VantageOrigin {
    pub async fn start() -> VantageOrigin {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind origin");
        let addr = listener.local_addr().expect("addr");
        let paths: Arc<Mutex<HashMap<IpAddr, Path>>> = Arc::default();
        let shared = paths.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut stream, peer)) = listener.accept().await else {
                    continue;
                };
                let path = shared
                    .lock()
                    .expect("paths")
                    .get(&peer.ip())
                    .copied()
                    .unwrap_or(Path::Ok);
                tokio::spawn(async move {
                    if path == Path::Close {
                        return;
                    }
                    let mut buf = [0u8; 2048];
                    let mut seen = Vec::new();
                    while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => seen.extend_from_slice(&buf[..n]),
                        }
                    }
                    match path {
                        Path::Hang => {
                            tokio::time::sleep(Duration::from_secs(30)).await;
                            return;
                        }
                        Path::Slow(d) => tokio::time::sleep(d).await,
                        _ => {}
                    }
                    let _ = stream
                        .write_all(
                            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                        )
                        .await;
                });
            }
        });
        VantageOrigin { addr, paths, task }
    }

    /// From now on, probes from `source` get `path`.
    pub fn set(&self, source: &str, path: Path) {
        let ip: IpAddr = source.parse().expect("source ip");
        self.paths.lock().expect("paths").insert(ip, path);
    }
}

impl Drop for VantageOrigin {
    fn drop(&mut self) {
        self.task.abort();
    }
}
