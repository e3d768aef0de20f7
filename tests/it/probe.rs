//! Probe workers against a real HTTP origin over real sockets: ok, status
//! 500, body mismatch, timeout and refused, with short intervals and
//! generous bounds.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use geosteer::config::{self, Config, PoolId};
use geosteer::health::{Observation, Source, Target};
use geosteer::probe;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::harness::origin::{Mode, Origin};

/// A config with pool `live` probing `live` and pool `tcp` probing the same
/// origin over TCP, plus pool `dead` probing `dead`.
fn config(live: &Origin, dead: &Origin) -> Config {
    let text = format!(
        r#"
[server]
dns_listen = ["127.0.0.1:5353"]

[monitors.web]
type = "http"
path = "/healthz"
host = "www.example.test"
interval = "150ms"
timeout = "100ms"
expect_body = "ok"
max_latency = "50ms"

[monitors.plain]
type = "tcp"
port = 9
interval = "150ms"
timeout = "100ms"

[pools.live]
monitor = "web"
endpoints = [{{ address = "192.0.2.1", probe = "{live}" }}]

[pools.dead]
monitor = "web"
endpoints = [{{ address = "192.0.2.2", probe = "{dead}" }}]

[pools.tcp]
monitor = "plain"
endpoints = [{{ address = "192.0.2.3", probe = "{live}" }}]
"#,
        live = live.addr(),
        dead = dead.addr(),
    );
    match config::parse(&text, Path::new("probe-test.toml"), Path::new("."), "") {
        Ok((config, _)) => config,
        Err(e) => panic!("test config: {e:?}"),
    }
}

fn pool(config: &Config, name: &str) -> PoolId {
    config.pool_id(name).expect("pool")
}

/// Waits (at most 5 s) for an observation of `target` that satisfies `want`.
async fn wait_for(
    rx: &mut mpsc::Receiver<Observation>,
    target: Target,
    what: &str,
    want: impl Fn(&Observation) -> bool,
) -> Observation {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let mut seen = Vec::new();
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(obs)) if obs.target == target && want(&obs) => return obs,
            Ok(Some(obs)) => seen.push(obs),
            Ok(None) => panic!("probe channel closed waiting for {what}"),
            Err(_) => panic!("no {what} within 5s; saw {seen:?}"),
        }
    }
}

fn error_is(expected: &'static str) -> impl Fn(&Observation) -> bool {
    move |obs: &Observation| obs.error.as_deref() == Some(expected) && !obs.ok
}

#[tokio::test]
async fn probes_report_every_failure_mode_over_real_sockets() {
    let live = Origin::start().await;
    let dead = Origin::start().await;
    dead.kill().await;
    let config = Arc::new(config(&live, &dead));
    let target = Target::Endpoint(pool(&config, "live"), 0);
    let tcp = Target::Endpoint(pool(&config, "tcp"), 0);
    let (tx, mut rx) = mpsc::channel(64);
    let cancel = CancellationToken::new();
    let handles = probe::spawn(config.clone(), 7, tx, cancel.clone());
    assert_eq!(handles.len(), 3, "one worker per monitored endpoint");

    let ok = wait_for(&mut rx, target, "ok", |o| o.ok).await;
    assert_eq!(
        (ok.generation, ok.source, &ok.error),
        (7, Source::Probe, &None)
    );
    assert!(ok.latency < Duration::from_millis(100), "{:?}", ok.latency);
    wait_for(&mut rx, tcp, "tcp ok", |o| o.ok).await;

    live.set_mode(Mode::Failing);
    wait_for(&mut rx, target, "status 500", error_is("status 500")).await;
    live.set_mode(Mode::WrongBody);
    wait_for(&mut rx, target, "body mismatch", error_is("body mismatch")).await;
    live.set_mode(Mode::Slow(Duration::from_millis(400)));
    let slow = wait_for(&mut rx, target, "timeout", error_is("timeout")).await;
    assert!(
        slow.latency >= Duration::from_millis(90),
        "{:?}",
        slow.latency
    );
    assert!(
        slow.latency < Duration::from_millis(400),
        "bounded by the timeout"
    );

    live.kill().await;
    wait_for(&mut rx, target, "refused", error_is("refused")).await;
    wait_for(&mut rx, tcp, "tcp refused", error_is("refused")).await;
    let dead_target = Target::Endpoint(pool(&config, "dead"), 0);
    wait_for(&mut rx, dead_target, "refused (dead)", error_is("refused")).await;

    live.set_mode(Mode::Ok);
    live.revive().await;
    wait_for(&mut rx, target, "ok after revive", |o| o.ok).await;
    assert!(live.hits() >= 5, "hits {}", live.hits());

    cancel.cancel();
    for handle in handles {
        tokio::time::timeout(Duration::from_secs(2), handle)
            .await
            .expect("worker stops when cancelled")
            .expect("worker did not panic");
    }
}

#[tokio::test]
async fn first_round_checks_every_endpoint_within_the_timeout() {
    let live = Origin::start().await;
    let dead = Origin::start().await;
    dead.kill().await;
    let config = config(&live, &dead);
    let started = std::time::Instant::now();
    let round = probe::first_round(&config, 3).await;
    // Generous: the bound is the longest timeout (100ms) plus scheduling.
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(round.len(), 3);
    let of = |name: &str| {
        let target = Target::Endpoint(pool(&config, name), 0);
        round
            .iter()
            .find(|o| o.target == target)
            .unwrap_or_else(|| panic!("no observation for {name}"))
    };
    assert!(of("live").ok, "{:?}", of("live"));
    assert!(of("tcp").ok, "{:?}", of("tcp"));
    assert_eq!(of("dead").error.as_deref(), Some("refused"));
    assert!(round.iter().all(|o| o.generation == 3));

    live.set_mode(Mode::Slow(Duration::from_secs(1)));
    let started = std::time::Instant::now();
    let round = probe::first_round(&config, 3).await;
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "bounded by the timeout"
    );
    let slow = round
        .iter()
        .find(|o| o.target == Target::Endpoint(pool(&config, "live"), 0))
        .expect("live");
    assert_eq!(slow.error.as_deref(), Some("timeout"));
}

/// A CNAME endpoint is probed with its name as the Host header (the CDN
/// answers for its customer's name): an origin that answers 200 only for
/// that Host passes the probe; the same origin behind an address endpoint
/// (Host: the address) fails it.
#[tokio::test]
async fn a_cname_endpoint_is_probed_with_its_name_as_host() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = tokio::spawn(async move {
        loop {
            let Ok((mut conn, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let n = conn.read(&mut buf).await.unwrap_or(0);
                let request = String::from_utf8_lossy(&buf[..n]).to_ascii_lowercase();
                let reply: &[u8] = if request.contains("\r\nhost: www.cdn-a.example.net") {
                    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
                } else {
                    b"HTTP/1.1 421 Misdirected Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                };
                let _ = conn.write_all(reply).await;
            });
        }
    });
    let text = format!(
        r#"
[server]
dns_listen = ["127.0.0.1:5353"]

[monitors.web]
type = "http"
path = "/healthz"
interval = "300ms"
timeout = "250ms"

[pools.cdn]
monitor = "web"
endpoints = [{{ cname = "www.cdn-a.example.net", probe = "{addr}" }}]

[pools.plain]
monitor = "web"
endpoints = [{{ address = "192.0.2.1", probe = "{addr}" }}]
"#
    );
    let config = match config::parse(&text, Path::new("probe-test.toml"), Path::new("."), "") {
        Ok((config, _)) => Arc::new(config),
        Err(e) => panic!("test config: {e:?}"),
    };
    let (tx, mut rx) = mpsc::channel(64);
    let cancel = CancellationToken::new();
    let handles = probe::spawn(config.clone(), 1, tx, cancel.clone());
    assert_eq!(handles.len(), 2, "the name and the address are two checks");
    let cdn = Target::Endpoint(pool(&config, "cdn"), 0);
    let plain = Target::Endpoint(pool(&config, "plain"), 0);
    wait_for(&mut rx, cdn, "the CNAME endpoint's probe passes", |o| o.ok).await;
    wait_for(
        &mut rx,
        plain,
        "421 without the name",
        error_is("status 421"),
    )
    .await;
    cancel.cancel();
    server.abort();
}
