//! The HTTP/1.1 forwarding path of plain listeners (src/proxy/h1): server
//! connections pooled and reused, pipelining, chunked bodies, 100-continue,
//! the hand-off to hyper for HTTP/1.0, and pooled connections the server
//! closed. Real origins on loopback; every wait is bounded.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::harness::origin::Origin;
use crate::proxy::{T, config, get, http_config, parse, raw, start};

/// Reads from `s` into `got` until `needle` has arrived.
pub(crate) async fn read_until<S: AsyncRead + Unpin>(s: &mut S, got: &mut Vec<u8>, needle: &str) {
    tokio::time::timeout(T, async {
        let mut buf = [0u8; 4096];
        while !String::from_utf8_lossy(got).contains(needle) {
            let n = s.read(&mut buf).await.unwrap();
            assert!(
                n > 0,
                "closed before {needle:?}: {}",
                String::from_utf8_lossy(got)
            );
            got.extend_from_slice(&buf[..n]);
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no {needle:?} in {}", String::from_utf8_lossy(got)));
}

/// A raw origin that answers the first request of each connection with
/// `200 ok` and keeps the connection, then closes it without answering when
/// the next request arrives: the race of a server closing an idle
/// keep-alive connection just as the proxy reuses it.
async fn closing_origin() -> (SocketAddr, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicU64::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            count.fetch_add(1, SeqCst);
            tokio::spawn(async move {
                let mut got = Vec::new();
                read_until(&mut s, &mut got, "\r\n\r\n").await;
                let _ = s
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                    .await;
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf).await; // the next request: close instead
            });
        }
    });
    (addr, accepted)
}

#[tokio::test]
async fn server_connections_are_pooled_and_closed_on_drain() {
    let a = Origin::named("a").await;
    let (p, addr) = start(http_config("round_robin", &[&a], &[], "")).await;
    for _ in 0..20 {
        assert_eq!(get(addr, "/").await.status, 200);
    }
    assert_eq!(a.hits(), 20);
    assert_eq!(a.connections(), 1, "20 requests, one pooled connection");
    assert_eq!(p.status()[0].servers[0].idle_connections, 1);
    p.drain("web", a.addr(), true).unwrap();
    assert_eq!(p.status()[0].servers[0].idle_connections, 0);
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order() {
    let (a, b) = (Origin::named("a").await, Origin::named("b").await);
    let (_p, addr) = start(http_config("round_robin", &[&a, &b], &[], "")).await;
    let req = "GET /one HTTP/1.1\r\nHost: app.test\r\n\r\n\
               GET /two HTTP/1.1\r\nHost: app.test\r\n\r\n\
               GET /three HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n";
    let out = String::from_utf8_lossy(&raw(addr, req.as_bytes()).await).to_string();
    assert_eq!(out.matches("HTTP/1.1 200 ").count(), 3, "{out}");
    let bodies: Vec<&str> = out
        .split("HTTP/1.1 ")
        .skip(1)
        .map(|r| r.rsplit("\r\n\r\n").next().unwrap_or(""))
        .collect();
    assert_eq!(bodies, ["a", "b", "a"], "{out}");
    assert_eq!(a.paths(), ["/one", "/three"]);
    assert_eq!(b.paths(), ["/two"]);
}

#[tokio::test]
async fn chunked_upload_keeps_the_connection_usable() {
    let a = Origin::named("a").await;
    let (_p, addr) = start(http_config("round_robin", &[&a], &[], "")).await;
    let req = b"POST /sink HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: chunked\r\n\r\n\
                5\r\nhello\r\n6;note=x\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n\
                GET /after HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n";
    let out = String::from_utf8_lossy(&raw(addr, req).await).to_string();
    assert_eq!(out.matches("HTTP/1.1 200 ").count(), 2, "{out}");
    assert!(
        out.contains("\r\n\r\n11HTTP/1.1 200 "),
        "11 body bytes counted: {out}"
    );
    assert_eq!(a.paths(), ["/sink", "/after"]);
    // A broken chunk is the client's fault: 400, and the origin never sees more.
    let bad = b"POST /sink HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n";
    let r = parse(&raw(addr, bad).await);
    assert_eq!(r.status, 400, "{r:?}");
}

#[tokio::test]
async fn expect_100_continue_is_relayed() {
    let a = Origin::named("a").await;
    let (_p, addr) = start(http_config("round_robin", &[&a], &[], "")).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(
        b"POST /sink HTTP/1.1\r\nHost: app.test\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n",
    )
    .await
    .unwrap();
    let mut got = Vec::new();
    read_until(&mut s, &mut got, "HTTP/1.1 100 Continue\r\n\r\n").await;
    s.write_all(b"hello").await.unwrap();
    read_until(&mut s, &mut got, "\r\n\r\n5").await;
    let text = String::from_utf8_lossy(&got);
    assert!(text.contains("HTTP/1.1 200 "), "{text}");
}

#[tokio::test]
async fn http10_goes_through_the_full_server() {
    let a = Origin::named("a").await;
    let (_p, addr) = start(http_config("round_robin", &[&a], &[], "")).await;
    let r = parse(&raw(addr, b"GET /old HTTP/1.0\r\nHost: app.test\r\n\r\n").await);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.served_by(), "a");
    assert_eq!(a.paths(), ["/old"]);
}

#[tokio::test]
async fn a_pooled_connection_the_server_closed_is_replaced() {
    let (origin, accepted) = closing_origin().await;
    let (_p, addr) = start(config(&format!(
        "[[proxy]]\nlisten = \"127.0.0.1:0\"\nmode = \"http\"\nroutes = [{{ backend = \"web\" }}]\n\
         [backends.web]\nalgorithm = \"round_robin\"\nretries = 0\nservers = [{{ address = \"{origin}\" }}]\n"
    )))
    .await;
    for i in 0..4 {
        let r = get(addr, "/").await;
        assert_eq!(
            (r.status, r.body.as_str()),
            (200, "ok"),
            "request {i}: {r:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Each reuse found the connection closed under it and opened a new one,
    // without the client seeing an error (retries = 0: not a retry).
    assert_eq!(accepted.load(SeqCst), 4);
}

#[tokio::test]
async fn local_answers_to_head_have_no_body_and_keep_the_connection() {
    let a = Origin::named("a").await;
    let (_p, addr) = start(http_config("round_robin", &[&a], &[], "")).await;
    a.kill().await;
    let req = "HEAD / HTTP/1.1\r\nHost: app.test\r\n\r\nGET / HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n";
    let out = String::from_utf8_lossy(&raw(addr, req.as_bytes()).await).to_string();
    let answers: Vec<&str> = out.split("HTTP/1.1 ").skip(1).collect();
    assert_eq!(answers.len(), 2, "{out}");
    assert!(answers.iter().all(|a| a.starts_with("502 ")), "{out}");
    assert!(
        answers[0].ends_with("\r\n\r\n"),
        "HEAD answer has no body: {out}"
    );
    assert!(answers[1].contains("cannot connect"), "{out}");
}

#[tokio::test]
async fn local_answers_leave_a_keep_alive_connection_ready_for_the_next_request() {
    let a = Origin::named("a").await;
    let (_p, addr) = start(config(&format!(
        "[[proxy]]\nlisten = \"127.0.0.1:0\"\nmode = \"http\"\nroutes = [{{ host = \"app.test\", backend = \"web\" }}]\n\
         [backends.web]\nservers = [{{ address = \"{}\" }}]\n",
        a.addr()
    )))
    .await;
    let req = "GET /x HTTP/1.1\r\nHost: elsewhere.test\r\n\r\n\
               GET /y HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n";
    let out = String::from_utf8_lossy(&raw(addr, req.as_bytes()).await).to_string();
    let statuses: Vec<&str> = out.split("HTTP/1.1 ").skip(1).map(|r| &r[..3]).collect();
    assert_eq!(statuses, ["404", "200"], "{out}");
    assert_eq!(a.paths(), ["/y"]);
}

#[tokio::test]
async fn a_client_slow_to_send_its_body_gets_408_and_the_server_is_not_blamed() {
    let a = Origin::named("a").await;
    let (p, addr) = start(http_config(
        "round_robin",
        &[&a],
        &[],
        "request_timeout = \"300ms\"\nmax_fails = 1",
    ))
    .await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"POST /sink HTTP/1.1\r\nHost: app.test\r\nContent-Length: 1000\r\n\r\n0123456789")
        .await
        .unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(T, s.read_to_end(&mut out))
        .await
        .expect("answered within the timeout")
        .ok();
    let r = parse(&out);
    assert_eq!(r.status, 408, "{r:?}");
    let server = &p.status()[0].servers[0];
    assert_eq!((server.errors, server.ejected), (0, false), "{server:?}");
    assert_eq!(get(addr, "/").await.status, 200);
}

#[tokio::test]
async fn a_server_silent_mid_body_for_request_timeout_is_cut() {
    let a = Origin::named("a").await;
    let (p, addr) = start(http_config(
        "round_robin",
        &[&a],
        &[],
        "request_timeout = \"300ms\"",
    ))
    .await;
    // /trickle sends "first ", then nothing for 1 s, then "second".
    let started = std::time::Instant::now();
    let out = String::from_utf8_lossy(
        &raw(addr, b"GET /trickle HTTP/1.1\r\nHost: app.test\r\n\r\n").await,
    )
    .to_string();
    assert!(
        out.starts_with("HTTP/1.1 200 ") && out.contains("first "),
        "{out}"
    );
    assert!(!out.contains("second"), "{out}");
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(p.status()[0].servers[0].errors, 1);
}
