//! Draining, reloads, shutdown and the health observations the proxy sends.

use super::*;

#[tokio::test]
async fn draining_server_finishes_in_flight_and_gets_nothing_new() {
    let (a, b) = (Origin::named("a").await, Origin::named("b").await);
    let (p, addr) = start(http_config(
        "round_robin",
        &[&a, &b],
        &[],
        "drain_timeout = \"10s\"",
    ))
    .await;
    let slow = tokio::spawn(async move { get(addr, "/slow/2000").await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    p.drain("web", a.addr(), true).unwrap();
    let st = p.status();
    let sa = st[0]
        .servers
        .iter()
        .find(|s| s.address == a.addr())
        .unwrap();
    assert!(
        sa.draining && sa.in_flight == 1 && sa.drained_at_unix_ms.is_some(),
        "{sa:?}"
    );
    let hits_a = a.hits();
    assert_eq!(served(addr, 4).await, ["b", "b", "b", "b"]);
    assert_eq!(a.hits(), hits_a);
    let slow = tokio::time::timeout(T, slow).await.unwrap().unwrap();
    assert_eq!((slow.status, slow.served_by().as_str()), (200, "a"));
    p.drain("web", a.addr(), false).unwrap();
    assert!(served(addr, 4).await.contains(&"a".to_string()));
    assert!(
        p.drain("web", "127.0.0.1:1".parse().unwrap(), true)
            .is_err()
    );
    assert!(p.drain("nope", a.addr(), true).is_err());
}

#[tokio::test]
async fn drain_timeout_cuts_what_is_left() {
    let a = Origin::named("a").await;
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
    p.drain("web", a.addr(), true).unwrap();
    let r = tokio::time::timeout(T, slow).await.unwrap().unwrap();
    assert_eq!(r.status, 502);
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn outcomes_are_sent_as_pool_traffic_observations() {
    let (a, b) = (Origin::named("a").await, Origin::named("b").await);
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
    b.set_mode(Mode::Failing);
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
        Origin::named("a").await,
        Origin::named("b").await,
        Origin::named("c").await,
    );
    let (p, addr) = start(http_config("round_robin", &[&a, &b], &[], "")).await;
    served(addr, 4).await;
    p.reload(http_config("round_robin", &[&a, &c], &[], ""), 2)
        .await
        .unwrap();
    assert_eq!(p.listen_addrs(), [addr]);
    let st = p.status();
    let sa = st[0]
        .servers
        .iter()
        .find(|s| s.address == a.addr())
        .unwrap();
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
    let a = Origin::named("a").await;
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
