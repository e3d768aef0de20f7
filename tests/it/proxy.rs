//! Proxy tests against real origins on loopback (see `proxy_backend`).
//! Every wait is bounded by a timeout.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use geosteer::config::Config;
use geosteer::health::{Source, Target};
use geosteer::proxy::{Proxies, ProxyOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_util::sync::CancellationToken;

use crate::proxy_backend::{Origin, Upload};

pub(crate) const T: Duration = Duration::from_secs(15);

pub(crate) fn config(body: &str) -> Arc<Config> {
    let text = format!("[server]\ndns_listen = [\"127.0.0.1:0\"]\n{body}");
    let (c, _) = geosteer::config::parse(&text, Path::new("test.toml"), Path::new("."))
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
                o.addr,
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

#[tokio::test]
async fn round_robin_exact_sequence() {
    let (a, b, c) = (
        Origin::start("a").await,
        Origin::start("b").await,
        Origin::start("c").await,
    );
    let (_p, addr) = start(http_config("round_robin", &[&a, &b, &c], &[], "")).await;
    assert_eq!(served(addr, 7).await, ["a", "b", "c", "a", "b", "c", "a"]);
}

#[tokio::test]
async fn weighted_round_robin_is_smooth() {
    let (a, b) = (Origin::start("a").await, Origin::start("b").await);
    let (_p, addr) = start(http_config("weighted_round_robin", &[&a, &b], &[3, 1], "")).await;
    assert_eq!(
        served(addr, 8).await,
        ["a", "a", "b", "a", "a", "a", "b", "a"]
    );
}

#[tokio::test]
async fn least_connections_steers_around_long_requests() {
    let (a, b) = (Origin::start("a").await, Origin::start("b").await);
    let (_p, addr) = start(http_config("least_connections", &[&a, &b], &[], "")).await;
    let slow = tokio::spawn(async move { get(addr, "/slow/1500").await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    // a holds the long request: every short one goes to b meanwhile.
    assert_eq!(served(addr, 4).await, ["b", "b", "b", "b"]);
    let slow = tokio::time::timeout(T, slow).await.unwrap().unwrap();
    assert_eq!(slow.served_by(), "a");
    // Both idle again: ties rotate.
    let after = served(addr, 4).await;
    assert!(
        after.contains(&"a".to_string()) && after.contains(&"b".to_string()),
        "{after:?}"
    );
}

#[tokio::test]
async fn ip_hash_is_sticky_and_remaps_only_the_drained_servers_clients() {
    let (a, b, c) = (
        Origin::start("a").await,
        Origin::start("b").await,
        Origin::start("c").await,
    );
    let (p, addr) = start(http_config("ip_hash", &[&a, &b, &c], &[], "")).await;
    let sources: Vec<IpAddr> = (2..26).map(|i| IpAddr::from([127, 0, 0, i])).collect();
    let mut before = Vec::new();
    for s in &sources {
        let first = get_from(*s, addr, "/").await.served_by();
        assert_eq!(
            get_from(*s, addr, "/").await.served_by(),
            first,
            "sticky for {s}"
        );
        before.push(first);
    }
    assert!(
        before.iter().any(|n| n == "c"),
        "some client on c: {before:?}"
    );
    p.drain("web", c.addr, true).unwrap();
    for (s, was) in sources.iter().zip(&before) {
        let now = get_from(*s, addr, "/").await.served_by();
        if was == "c" {
            assert_ne!(now, "c");
        } else {
            assert_eq!(&now, was, "client {s} moved although its server stayed");
        }
    }
}

#[tokio::test]
async fn power_of_two_spreads() {
    let (a, b, c) = (
        Origin::start("a").await,
        Origin::start("b").await,
        Origin::start("c").await,
    );
    let (_p, addr) = start(http_config("power_of_two", &[&a, &b, &c], &[], "")).await;
    served(addr, 60).await;
    for o in [&a, &b, &c] {
        assert!(o.hits() >= 5, "{} got {}", o.name, o.hits());
    }
}

#[tokio::test]
async fn forwarding_headers_appended_and_hop_by_hop_removed() {
    let a = Origin::start("a").await;
    let (_p, addr) = start(http_config("round_robin", &[&a], &[], "")).await;
    let req = "GET /headers HTTP/1.1\r\nHost: App.Test:8080\r\nX-Forwarded-For: 203.0.113.7\r\n\
               Forwarded: for=203.0.113.7\r\nConnection: close, X-Secret\r\nX-Secret: 1\r\n\
               Keep-Alive: timeout=5\r\nX-Keep: yes\r\n\r\n";
    let r = parse(&raw(addr, req.as_bytes()).await);
    assert_eq!(r.status, 200);
    assert!(
        r.body.contains("x-forwarded-for: 203.0.113.7, 127.0.0.1\n"),
        "{}",
        r.body
    );
    assert!(r.body.contains("x-forwarded-proto: http\n"), "{}", r.body);
    assert!(
        r.body.contains("x-forwarded-host: App.Test:8080\n"),
        "{}",
        r.body
    );
    assert!(
        r.body.contains(
            "forwarded: for=203.0.113.7, for=127.0.0.1;proto=http;host=\"App.Test:8080\"\n"
        ),
        "{}",
        r.body
    );
    assert!(r.body.contains("x-keep: yes"));
    assert!(!r.body.contains("x-secret"), "{}", r.body);
    assert!(!r.body.contains("keep-alive"), "{}", r.body);
}

#[tokio::test]
async fn large_bodies_stream_both_ways() {
    use http_body_util::BodyExt;
    let a = Origin::start("a").await;
    let (_p, addr) = start(http_config(
        "round_robin",
        &[&a],
        &[],
        "request_timeout = \"60s\"",
    ))
    .await;
    const N: u64 = 64 * 1024 * 1024;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Upload>();
    // Upload 64 MiB generated on the fly.
    let req = http::Request::post(format!("http://{addr}/sink"))
        .body(Upload { left: N })
        .unwrap();
    let resp = tokio::time::timeout(T, client.request(req))
        .await
        .unwrap()
        .unwrap();
    let body = tokio::time::timeout(T, resp.into_body().collect())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(body.to_bytes(), N.to_string());
    // Download 64 MiB, counted frame by frame.
    let req = http::Request::get(format!("http://{addr}/stream/{N}"))
        .body(Upload { left: 0 })
        .unwrap();
    let resp = tokio::time::timeout(T, client.request(req))
        .await
        .unwrap()
        .unwrap();
    let mut body = resp.into_body();
    let mut n = 0u64;
    while let Some(f) = tokio::time::timeout(T, body.frame()).await.unwrap() {
        n += f.unwrap().into_data().map_or(0, |d| d.len() as u64);
    }
    assert_eq!(n, N);
    // The first chunk arrives before the origin has written the second.
    let started = Instant::now();
    let req = http::Request::get(format!("http://{addr}/trickle"))
        .body(Upload { left: 0 })
        .unwrap();
    let resp = tokio::time::timeout(T, client.request(req))
        .await
        .unwrap()
        .unwrap();
    let mut body = resp.into_body();
    let first = tokio::time::timeout(T, body.frame())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(first.into_data().unwrap(), "first ");
    assert!(
        started.elapsed() < Duration::from_millis(800),
        "first chunk was held back"
    );
}

#[tokio::test]
async fn websocket_upgrade_echoes() {
    let a = Origin::start("a").await;
    let (_p, addr) = start(http_config("round_robin", &[&a], &[], "")).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(
        b"GET /ws HTTP/1.1\r\nHost: app.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .await
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        tokio::time::timeout(T, s.read_exact(&mut byte))
            .await
            .unwrap()
            .unwrap();
        head.push(byte[0]);
    }
    let r = parse(&head);
    assert_eq!(r.status, 101, "{r:?}");
    assert_eq!(r.header("upgrade").as_deref(), Some("websocket"));
    for msg in [&b"hello"[..], b"through the proxy"] {
        s.write_all(msg).await.unwrap();
        let mut buf = vec![0u8; msg.len()];
        tokio::time::timeout(T, s.read_exact(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(buf, msg);
    }
}

#[tokio::test]
async fn draining_server_finishes_in_flight_and_gets_nothing_new() {
    let (a, b) = (Origin::start("a").await, Origin::start("b").await);
    let (p, addr) = start(http_config(
        "round_robin",
        &[&a, &b],
        &[],
        "drain_timeout = \"10s\"",
    ))
    .await;
    let slow = tokio::spawn(async move { get(addr, "/slow/2000").await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    p.drain("web", a.addr, true).unwrap();
    let st = p.status();
    let sa = st[0].servers.iter().find(|s| s.address == a.addr).unwrap();
    assert!(
        sa.draining && sa.in_flight == 1 && sa.drained_at_unix_ms.is_some(),
        "{sa:?}"
    );
    let hits_a = a.hits();
    assert_eq!(served(addr, 4).await, ["b", "b", "b", "b"]);
    assert_eq!(a.hits(), hits_a);
    let slow = tokio::time::timeout(T, slow).await.unwrap().unwrap();
    assert_eq!((slow.status, slow.served_by().as_str()), (200, "a"));
    p.drain("web", a.addr, false).unwrap();
    assert!(served(addr, 4).await.contains(&"a".to_string()));
    assert!(
        p.drain("web", "127.0.0.1:1".parse().unwrap(), true)
            .is_err()
    );
    assert!(p.drain("nope", a.addr, true).is_err());
}

#[tokio::test]
async fn drain_timeout_cuts_what_is_left() {
    let a = Origin::start("a").await;
    let (p, addr) = start(http_config(
        "round_robin",
        &[&a],
        &[],
        "drain_timeout = \"300ms\"",
    ))
    .await;
    let slow = tokio::spawn(async move { get(addr, "/slow/5000").await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    p.drain("web", a.addr, true).unwrap();
    let r = tokio::time::timeout(T, slow).await.unwrap().unwrap();
    assert_eq!(r.status, 502);
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn passive_ejection_and_recovery() {
    let (a, b) = (Origin::start("a").await, Origin::start("b").await);
    let extra = "max_fails = 2\nfail_timeout = \"1s\"";
    let (p, addr) = start(http_config("round_robin", &[&a, &b], &[], extra)).await;
    a.failing.store(true, Ordering::SeqCst);
    // a fails twice (its 500s pass through), then is ejected.
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(get(addr, "/").await.status);
    }
    assert_eq!(statuses, [500, 200, 500, 200]);
    assert_eq!(served(addr, 4).await, ["b", "b", "b", "b"]);
    let sa = p.status()[0].servers[0].clone();
    assert!(
        sa.ejected && sa.state == "ejected" && sa.errors == 2,
        "{sa:?}"
    );
    // Healthy again; after fail_timeout one trial request succeeds and a returns.
    a.failing.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let after = served(addr, 6).await;
    assert_eq!(after.iter().filter(|n| *n == "a").count(), 3, "{after:?}");
}

#[tokio::test]
async fn every_server_out_gives_503() {
    let (a, b) = (Origin::start("a").await, Origin::start("b").await);
    let (p, addr) = start(http_config(
        "round_robin",
        &[&a, &b],
        &[],
        "max_fails = 1\nretries = 0",
    ))
    .await;
    p.set_server_up("web", a.addr, false);
    b.kill();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let first = get(addr, "/").await;
    assert_eq!(first.status, 502, "{first:?}"); // b refused; now ejected
    let r = get(addr, "/").await;
    assert_eq!(r.status, 503);
    assert!(
        r.body.contains("no server of backend web is available"),
        "{}",
        r.body
    );
    p.set_server_up("web", a.addr, true);
    assert_eq!(get(addr, "/").await.served_by(), "a");
}

#[tokio::test]
async fn connect_failures_retry_on_another_server() {
    let (a, b) = (Origin::start("a").await, Origin::start("b").await);
    let (_p, addr) = start(http_config(
        "round_robin",
        &[&a, &b],
        &[],
        "retries = 1\nmax_fails = 100",
    ))
    .await;
    a.kill();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(served(addr, 4).await, ["b", "b", "b", "b"]);
    // A POST is not retried.
    let req =
        "POST / HTTP/1.1\r\nHost: app.test\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi";
    let mut codes = Vec::new();
    for _ in 0..2 {
        codes.push(parse(&raw(addr, req.as_bytes()).await).status);
    }
    codes.sort();
    assert_eq!(codes, [200, 502]);
}

#[tokio::test]
async fn request_timeout_gives_504() {
    let a = Origin::start("a").await;
    let (_p, addr) = start(http_config(
        "round_robin",
        &[&a],
        &[],
        "request_timeout = \"300ms\"",
    ))
    .await;
    let r = get(addr, "/slow/3000").await;
    assert_eq!(r.status, 504, "{r:?}");
}

#[tokio::test]
async fn framing_attacks_and_header_limits() {
    let a = Origin::start("a").await;
    let (_p, addr) = start(http_config("round_robin", &[&a], &[], "")).await;
    // Content-Length + Transfer-Encoding: 400 and close, so the smuggled
    // request never runs.
    let smuggle = b"POST / HTTP/1.1\r\nHost: app.test\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n\
                    0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: app.test\r\n\r\n";
    let out = String::from_utf8_lossy(&raw(addr, smuggle).await).to_string();
    assert_eq!(out.matches("HTTP/1.1 ").count(), 1, "{out}");
    assert_eq!(parse(out.as_bytes()).status, 400, "{out}");
    assert!(!a.paths.lock().unwrap().iter().any(|p| p == "/smuggled"));
    // Conflicting lengths, a non-chunked final coding, TE on HTTP/1.0: 400.
    for bad in [
        &b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd"[..],
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
        b"POST / HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    ] {
        let r = parse(&raw(addr, bad).await);
        assert_eq!(r.status, 400, "{}: {r:?}", String::from_utf8_lossy(bad));
    }
    // Too many header fields, or too large a head: 431.
    let mut many = String::from("GET / HTTP/1.1\r\nHost: x\r\n");
    for i in 0..120 {
        many.push_str(&format!("X-H{i}: v\r\n"));
    }
    many.push_str("\r\n");
    assert_eq!(parse(&raw(addr, many.as_bytes()).await).status, 431);
    let big = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "b".repeat(70 * 1024)
    );
    assert_eq!(parse(&raw(addr, big.as_bytes()).await).status, 431);
    let hits = a.hits();
    // Slowloris: an unfinished head is cut after header_read_timeout (1 s here).
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    let started = Instant::now();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out))
        .await
        .expect("slow client is cut")
        .ok();
    assert!(started.elapsed() < Duration::from_secs(4));
    let r = parse(&out);
    assert!(out.is_empty() || r.status == 408, "{r:?}");
    assert_eq!(a.hits(), hits);
}

#[tokio::test]
async fn routes_by_host_and_path() {
    let (a, b, c) = (
        Origin::start("a").await,
        Origin::start("b").await,
        Origin::start("c").await,
    );
    let cfg = config(&format!(
        "[[proxy]]\nlisten = \"127.0.0.1:0\"\nmode = \"http\"\nroutes = [\n\
         {{ host = \"API.example.test\", path_prefix = \"/v1/\", backend = \"a\" }},\n\
         {{ host = \"*.example.test\", backend = \"b\" }},\n\
         {{ host = \"other.test\", path_prefix = \"/\", backend = \"c\" }} ]\n\
         [backends.a]\nservers = [{{ address = \"{}\" }}]\n\
         [backends.b]\nservers = [{{ address = \"{}\" }}]\n\
         [backends.c]\nservers = [{{ address = \"{}\" }}]\n",
        a.addr, b.addr, c.addr
    ));
    let (_p, addr) = start(cfg).await;
    let ask = |host: &'static str, path: &'static str| async move {
        let req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        parse(&raw(addr, req.as_bytes()).await)
    };
    assert_eq!(ask("api.example.test:8080", "/v1/x").await.served_by(), "a");
    assert_eq!(ask("api.example.test", "/v2/x").await.served_by(), "b");
    assert_eq!(ask("www.EXAMPLE.test", "/").await.served_by(), "b");
    assert_eq!(ask("other.test", "/").await.served_by(), "c");
    let r = ask("unknown.test", "/x").await;
    assert_eq!(r.status, 404);
    assert!(
        r.body.contains("no route for host \"unknown.test\""),
        "{}",
        r.body
    );
}

#[tokio::test]
async fn rate_limit_429_past_burst_then_recovers() {
    let a = Origin::start("a").await;
    let cfg = config(&format!(
        "[[proxy]]\nlisten = \"127.0.0.1:0\"\nmode = \"http\"\n\
         routes = [{{ path_prefix = \"/\", backend = \"web\", rate_limit = {{ per_client = 2, burst = 3 }} }}]\n\
         [backends.web]\nservers = [{{ address = \"{}\" }}]\n",
        a.addr
    ));
    let (p, addr) = start(cfg).await;
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(get(addr, "/").await);
    }
    assert_eq!(
        statuses.iter().map(|r| r.status).collect::<Vec<_>>(),
        [200, 200, 200, 429]
    );
    assert_eq!(statuses[3].header("retry-after").as_deref(), Some("1"));
    // Another client address has its own bucket.
    assert_eq!(get_from([127, 0, 0, 9].into(), addr, "/").await.status, 200);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(get(addr, "/").await.status, 200);
    assert_eq!(p.status()[0].rate_limited, 1);
}

#[tokio::test]
async fn tcp_mode_forwards_bytes() {
    let (a, b) = (Origin::start("a").await, Origin::start("b").await);
    let cfg = config(&format!(
        "[[proxy]]\nlisten = \"127.0.0.1:0\"\nmode = \"tcp\"\nbackend = \"db\"\n\
         [backends.db]\nretries = 1\n{}\n",
        servers(&[&a, &b], &[])
    ));
    let (p, addr) = start(cfg).await;
    // Raw HTTP over the L4 relay: the origin's own answer comes back untouched.
    let names: Vec<String> = {
        let mut v = Vec::new();
        for _ in 0..4 {
            v.push(get(addr, "/").await.served_by());
        }
        v
    };
    assert_eq!(names, ["a", "b", "a", "b"]);
    a.kill();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(get(addr, "/").await.served_by(), "b");
    assert!(p.status()[0].servers[1].requests >= 3);
}

#[tokio::test]
async fn outcomes_are_sent_as_pool_traffic_observations() {
    let (a, b) = (Origin::start("a").await, Origin::start("b").await);
    let cfg = config(&format!(
        "[pools.p]\nendpoints = [{{ address = \"192.0.2.1\" }}]\n\
         [[proxy]]\nlisten = \"127.0.0.1:0\"\nmode = \"http\"\nroutes = [{{ backend = \"web\" }}]\n\
         [backends.web]\npool = \"p\"\nmax_fails = 100\n{}\n",
        servers(&[&a, &b], &[])
    ));
    let (tx, mut rx) = tokio::sync::mpsc::channel(16);
    let p = Proxies::start(cfg, 7, Some(tx), CancellationToken::new())
        .await
        .unwrap();
    let addr = p.listen_addrs()[0];
    b.failing.store(true, Ordering::SeqCst);
    get(addr, "/").await;
    get(addr, "/").await;
    let mut seen = Vec::new();
    for _ in 0..2 {
        let obs = tokio::time::timeout(T, rx.recv()).await.unwrap().unwrap();
        assert_eq!(obs.target, Target::PoolTraffic(geosteer::config::PoolId(0)));
        assert_eq!(obs.source, Source::Traffic);
        assert_eq!(obs.generation, 7);
        seen.push((obs.ok, obs.error));
    }
    assert_eq!(
        seen,
        [(true, None), (false, Some("status 500".to_string()))]
    );
    // A full channel drops and counts instead of blocking requests.
    for _ in 0..20 {
        get(addr, "/").await;
    }
    assert!(p.observations_dropped() >= 4);
}

#[tokio::test]
async fn reload_keeps_listeners_and_counters() {
    let (a, b, c) = (
        Origin::start("a").await,
        Origin::start("b").await,
        Origin::start("c").await,
    );
    let (p, addr) = start(http_config("round_robin", &[&a, &b], &[], "")).await;
    served(addr, 4).await;
    p.reload(http_config("round_robin", &[&a, &c], &[], ""), 2)
        .await
        .unwrap();
    assert_eq!(p.listen_addrs(), [addr]);
    let st = p.status();
    let sa = st[0].servers.iter().find(|s| s.address == a.addr).unwrap();
    assert_eq!(sa.requests, 2, "a kept its counters");
    let names = served(addr, 4).await;
    assert!(
        !names.contains(&"b".to_string()) && names.contains(&"c".to_string()),
        "{names:?}"
    );
    p.shutdown().await;
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "listener closed after shutdown"
    );
}

#[tokio::test]
async fn shutdown_waits_for_in_flight_requests() {
    let a = Origin::start("a").await;
    let (p, addr) = start(http_config(
        "round_robin",
        &[&a],
        &[],
        "drain_timeout = \"5s\"",
    ))
    .await;
    let slow = tokio::spawn(async move { get(addr, "/slow/1000").await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    tokio::time::timeout(T, p.shutdown()).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(600));
    let r = tokio::time::timeout(T, slow).await.unwrap().unwrap();
    assert_eq!((r.status, r.served_by().as_str()), (200, "a"));
}

#[tokio::test]
async fn tls_termination_serves_http2_and_http1_by_alpn() {
    use http_body_util::BodyExt;
    let a = Origin::start("a").await;
    let dir = tempfile::tempdir().unwrap();
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    std::fs::write(dir.path().join("c.pem"), ck.cert.pem()).unwrap();
    std::fs::write(dir.path().join("k.pem"), ck.signing_key.serialize_pem()).unwrap();
    let text = format!(
        "[server]\ndns_listen = [\"127.0.0.1:0\"]\n[[proxy]]\nlisten = \"127.0.0.1:0\"\nmode = \"http\"\n\
         tls = {{ cert = \"c.pem\", key = \"k.pem\" }}\nroutes = [{{ backend = \"web\" }}]\n\
         [backends.web]\nservers = [{{ address = \"{}\" }}]\n",
        a.addr
    );
    let (cfg, _) = geosteer::config::parse(&text, &dir.path().join("t.toml"), dir.path()).unwrap();
    let (_p, addr) = start(Arc::new(cfg)).await;

    let connect = |alpn: &'static [u8]| {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ck.cert.der().clone()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut client = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        client.alpn_protocols = vec![alpn.to_vec()];
        let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
        async move {
            let tcp = TcpStream::connect(addr).await.unwrap();
            let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
            let tls = tokio::time::timeout(T, connector.connect(name, tcp))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(tls.get_ref().1.alpn_protocol(), Some(alpn));
            tls
        }
    };
    // HTTP/1.1 over TLS: relayed by the proxy's own path, framing checked.
    let mut h1 = connect(b"http/1.1").await;
    h1.write_all(b"GET /headers HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut got = Vec::new();
    crate::proxy_h1::read_until(&mut h1, &mut got, "x-forwarded-proto: https\n").await;
    h1.write_all(b"POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
        .await
        .unwrap();
    let mut rest = Vec::new();
    tokio::time::timeout(T, h1.read_to_end(&mut rest))
        .await
        .unwrap()
        .ok();
    assert_eq!(
        parse(&rest).status,
        400,
        "{}",
        String::from_utf8_lossy(&rest)
    );

    let tls = connect(b"h2").await;
    let (mut send, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tls),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    let req = http::Request::get("https://localhost/headers")
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .unwrap();
    let resp = tokio::time::timeout(T, send.send_request(req))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-served-by"], "a");
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let body = String::from_utf8_lossy(&body);
    assert!(body.contains("x-forwarded-proto: https\n"), "{body}");
    assert!(body.contains("host: localhost\n"), "{body}");
}
