//! Failures and hostile input: timeouts, retries, ejection, framing attacks, limits.

use super::*;

#[tokio::test]
async fn passive_ejection_and_recovery() {
    let (a, b) = (Origin::named("a").await, Origin::named("b").await);
    let extra = "max_fails = 2\nfail_timeout = \"1s\"";
    let (p, addr) = start(http_config("round_robin", &[&a, &b], &[], extra)).await;
    a.set_mode(Mode::Failing);
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
    a.set_mode(Mode::Ok);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let after = served(addr, 6).await;
    assert_eq!(after.iter().filter(|n| *n == "a").count(), 3, "{after:?}");
}

#[tokio::test]
async fn connect_failures_retry_on_another_server() {
    let (a, b) = (Origin::named("a").await, Origin::named("b").await);
    let (_p, addr) = start(http_config(
        "round_robin",
        &[&a, &b],
        &[],
        "retries = 1\nmax_fails = 100",
    ))
    .await;
    a.kill().await;
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
    let a = Origin::named("a").await;
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
    let a = Origin::named("a").await;
    let (_p, addr) = start(http_config("round_robin", &[&a], &[], "")).await;
    // Content-Length + Transfer-Encoding: 400 and close, so the smuggled
    // request never runs.
    let smuggle = b"POST / HTTP/1.1\r\nHost: app.test\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n\
                    0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: app.test\r\n\r\n";
    let out = String::from_utf8_lossy(&raw(addr, smuggle).await).to_string();
    assert_eq!(out.matches("HTTP/1.1 ").count(), 1, "{out}");
    assert_eq!(parse(out.as_bytes()).status, 400, "{out}");
    assert!(!a.paths().iter().any(|p| p == "/smuggled"));
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
async fn rate_limit_429_past_burst_then_recovers() {
    let a = Origin::named("a").await;
    let cfg = config(&format!(
        "[[proxy]]\nlisten = \"127.0.0.1:0\"\nmode = \"http\"\n\
         routes = [{{ path_prefix = \"/\", backend = \"web\", rate_limit = {{ per_client = 2, burst = 3 }} }}]\n\
         [backends.web]\nservers = [{{ address = \"{}\" }}]\n",
        a.addr()
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
