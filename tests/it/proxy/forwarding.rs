//! What is forwarded: headers, bodies, upgrades, TCP mode, TLS.

use super::*;

#[tokio::test]
async fn forwarding_headers_appended_and_hop_by_hop_removed() {
    let a = Origin::named("a").await;
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
    let a = Origin::named("a").await;
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
    let a = Origin::named("a").await;
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
async fn tcp_mode_forwards_bytes() {
    let (a, b) = (Origin::named("a").await, Origin::named("b").await);
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
    a.kill().await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(get(addr, "/").await.served_by(), "b");
    assert!(p.status()[0].servers[1].requests >= 3);
}

#[tokio::test]
async fn tls_termination_serves_http2_and_http1_by_alpn() {
    use http_body_util::BodyExt;
    let a = Origin::named("a").await;
    let dir = tempfile::tempdir().unwrap();
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    std::fs::write(dir.path().join("c.pem"), ck.cert.pem()).unwrap();
    std::fs::write(dir.path().join("k.pem"), ck.signing_key.serialize_pem()).unwrap();
    let text = format!(
        "[server]\ndns_listen = [\"127.0.0.1:0\"]\n[[proxy]]\nlisten = \"127.0.0.1:0\"\nmode = \"http\"\n\
         tls = {{ cert = \"c.pem\", key = \"k.pem\" }}\nroutes = [{{ backend = \"web\" }}]\n\
         [backends.web]\nservers = [{{ address = \"{}\" }}]\n",
        a.addr()
    );
    let (cfg, _) =
        geosteer::config::parse(&text, &dir.path().join("t.toml"), dir.path(), "").unwrap();
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
