//! Proxy backends with a `monitor`: every server is probed at its own
//! address, a server failing its checks gets no new requests until it passes
//! `rise` of them, every view says so, and one target named by two pools and
//! a backend with the same monitor is probed once per interval.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::harness::geosteer::{TestServer, server_header};
use crate::harness::http::{get, get_json};
use crate::harness::origin::{Mode, Origin};

/// An origin named `name` whose `/health` (the monitor's path) answers 200
/// whatever its mode, until the test gives it another status.
async fn server(name: &str) -> Origin {
    let o = Origin::named(name).await;
    o.set_status("/health", 200);
    o
}

/// The requests `o` received that were not checks: proxied ones.
fn requests(o: &Origin) -> u64 {
    o.paths().iter().filter(|p| *p != "/health").count() as u64
}

/// The checks `o` received.
fn checks(o: &Origin) -> u64 {
    o.hits_on("/health")
}

const INTERVAL_MS: u64 = 200;
const TIMEOUT_MS: u64 = 150;
const FALL: u64 = 2;
const RISE: u64 = 2;

fn config(servers: &[&Origin], extra: &str) -> String {
    let list: Vec<String> = servers
        .iter()
        .map(|s| format!("{{ address = \"{}\" }}", s.addr()))
        .collect();
    format!(
        "{}[monitors.check]\ntype = \"http\"\npath = \"/health\"\ninterval = \"{INTERVAL_MS}ms\"\ntimeout = \"{TIMEOUT_MS}ms\"\nrise = {RISE}\nfall = {FALL}\n\n\
         [[proxy]]\nlisten = \"127.0.0.1:0\"\nmode = \"http\"\nroutes = [{{ path_prefix = \"/\", backend = \"web\" }}]\n\n\
         [backends.web]\nalgorithm = \"round_robin\"\nmonitor = \"check\"\nservers = [{}]\nretries = 0\n{extra}\n",
        server_header(""),
        list.join(", ")
    )
}

/// `interval × fall + timeout`, plus what the machine's load may add (the
/// publish and hand-over to the proxy take at most 200 ms more).
fn bound() -> Duration {
    Duration::from_millis(INTERVAL_MS * FALL + TIMEOUT_MS)
}
const SLACK: Duration = Duration::from_secs(2);

/// One proxied GET: (status, body).
async fn proxied(gs: &TestServer) -> (u16, String) {
    get(&format!("http://{}/", gs.running.proxy_addrs[0])).await
}

async fn server_status(gs: &TestServer, index: usize) -> serde_json::Value {
    let (_, status) = get_json(&format!("http://{}/api/v1/status", gs.running.admin_addr)).await;
    status["backends"][0]["servers"][index].clone()
}

async fn wait_state(gs: &TestServer, index: usize, want: &str, within: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let s = server_status(gs, index).await;
        if s["state"] == want {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < within,
            "server {index} not {want} within {within:?}: {s}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_server_whose_health_check_fails_gets_no_requests_and_every_view_says_so() {
    let (s1, s2) = (server("s1").await, server("s2").await);
    let gs = TestServer::start(&config(&[&s1, &s2], ""), &[]).await;
    for _ in 0..4 {
        assert_eq!(proxied(&gs).await.0, 200);
    }
    assert!(requests(&s1) >= 1 && requests(&s2) >= 1, "both in rotation");
    assert!(checks(&s1) >= 1, "s1 is probed at its own address");

    // /health says 503 while / still answers 200.
    s1.set_status("/health", 503);
    let took = wait_state(&gs, 0, "down", bound() + SLACK).await;
    eprintln!("down after {took:?} (bound {:?})", bound());
    let before = requests(&s1);
    for _ in 0..20 {
        let (status, body) = proxied(&gs).await;
        assert_eq!((status, body.as_str()), (200, "s2"));
    }
    assert_eq!(requests(&s1), before, "no proxied request reaches s1");

    // Every view says so.
    let s = server_status(&gs, 0).await;
    assert_eq!(s["up"], false, "{s}");
    assert_eq!(s["check_error"], "status 503", "{s}");
    let admin = gs.running.admin_addr;
    let (_, events) = get_json(&format!("http://{admin}/api/v1/events")).await;
    let server_event = events
        .as_array()
        .or_else(|| events["events"].as_array())
        .into_iter()
        .flatten()
        .find(|e| e["kind"] == "server" && e["state"] == "down")
        .cloned();
    let e = server_event.unwrap_or_else(|| panic!("no server event: {events}"));
    assert_eq!(e["backend"], "web", "{e}");
    assert_eq!(e["endpoint"], s1.addr().to_string(), "{e}");
    assert_eq!(e["reason"], "status 503", "{e}");
    let (_, page) = get(&format!("http://{admin}/")).await;
    let row = format!(
        "<tr class=\"server down\"><td>web</td><td>{}</td><td class=\"state\">down</td>",
        s1.addr()
    );
    assert!(page.contains(&row), "status page row {row}: {page}");
    assert!(
        page.contains("<td class=\"last-error\">status 503</td>"),
        "{page}"
    );
    assert!(
        page.contains(&format!("web {}", s1.addr())),
        "event row: {page}"
    );
    let (_, metrics) = get(&format!("http://{admin}/metrics")).await;
    let failed = format!(
        "geosteer_backend_probe_results_total{{backend=\"web\",server=\"{}\",result=\"failed\"}}",
        s1.addr()
    );
    assert!(metrics.contains(&failed), "{metrics}");
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_geosteer"))
            .args(["status", "--admin", &format!("http://{admin}")])
            .output()
            .expect("run geosteer status")
    })
    .await
    .expect("status");
    let table = String::from_utf8_lossy(&out.stdout);
    let line = table
        .lines()
        .find(|l| l.contains(&s1.addr().to_string()))
        .unwrap_or_else(|| panic!("{table}"));
    assert!(
        line.contains("down") && line.contains("status 503"),
        "{table}"
    );

    // Rise: back after `rise` passing checks.
    s1.set_status("/health", 200);
    back_in_rotation(&gs, &s1).await;
    gs.stop().await;
}

/// Server 0 (`s1`) comes back up within `rise` checks and gets requests again.
async fn back_in_rotation(gs: &TestServer, s1: &Origin) {
    wait_state(
        gs,
        0,
        "up",
        Duration::from_millis(INTERVAL_MS * RISE + TIMEOUT_MS) + SLACK,
    )
    .await;
    let before = requests(s1);
    for _ in 0..4 {
        assert_eq!(proxied(gs).await.0, 200);
    }
    assert!(requests(s1) > before, "s1 back in rotation");
}

#[tokio::test]
async fn a_killed_server_is_down_within_the_bound_and_gets_no_request_after() {
    let (s1, s2) = (server("s1").await, server("s2").await);
    let gs = TestServer::start(&config(&[&s1, &s2], "max_fails = 100"), &[]).await;
    assert_eq!(proxied(&gs).await.0, 200);
    s1.kill().await;
    let took = wait_state(&gs, 0, "down", bound() + SLACK).await;
    eprintln!("down after {took:?} (bound {:?})", bound());
    let sent = server_status(&gs, 0).await["requests"].as_u64();
    for _ in 0..20 {
        assert_eq!(proxied(&gs).await, (200, "s2".to_string()));
    }
    let s = server_status(&gs, 0).await;
    assert_eq!(s["requests"].as_u64(), sent, "no request sent to s1: {s}");
    assert!(
        s["check_error"].as_str().is_some_and(|e| !e.is_empty()),
        "{s}"
    );

    s1.revive().await;
    back_in_rotation(&gs, &s1).await;
    gs.stop().await;
}

#[tokio::test]
async fn passive_ejection_works_beside_the_checks_and_all_out_is_a_clear_503() {
    let (s1, s2) = (server("s1").await, server("s2").await);
    let gs = TestServer::start(
        &config(&[&s1, &s2], "max_fails = 2\nfail_timeout = \"30s\""),
        &[],
    )
    .await;
    // s1 passes its checks but fails real requests: ejected by max_fails.
    s1.set_mode(Mode::Failing);
    for _ in 0..6 {
        proxied(&gs).await;
    }
    wait_state(&gs, 0, "ejected", SLACK).await;
    let s = server_status(&gs, 0).await;
    assert_eq!(
        (s["up"].as_bool(), s["ejected"].as_bool()),
        (Some(true), Some(true)),
        "{s}"
    );
    for _ in 0..6 {
        assert_eq!(proxied(&gs).await, (200, "s2".to_string()));
    }

    // s2 fails its checks too: every server is out.
    s2.set_status("/health", 503);
    wait_state(&gs, 1, "down", bound() + SLACK).await;
    let (status, body) = proxied(&gs).await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("no server of backend web is available"),
        "{body}"
    );
    gs.stop().await;
}

#[tokio::test]
async fn two_pools_and_a_backend_on_one_target_make_one_probe_per_interval() {
    let target = server("shared").await;
    let pools = format!(
        "[pools.p1]\nmonitor = \"check\"\nendpoints = [{{ address = \"192.0.2.1\", probe = \"{0}\" }}]\n\n\
         [pools.p2]\nmonitor = \"check\"\nendpoints = [{{ address = \"192.0.2.2\", probe = \"{0}\" }}]\n\n\
         [[balance]]\nname = \"www.example.test\"\npolicy = \"failover\"\npools = [\"p1\", \"p2\"]\n",
        target.addr()
    );
    let gs = TestServer::start(&config(&[&target], &pools), &[]).await;
    let start = checks(&target);
    let window = Duration::from_secs(3);
    tokio::time::sleep(window).await;
    let probes = checks(&target) - start;
    let per_interval = window.as_millis() as u64 / INTERVAL_MS;
    // One worker: about 15 in 3 s; three would make about 45.
    assert!(
        probes <= per_interval + 2 && probes + 5 >= per_interval,
        "{probes} probes in {window:?} at one per {INTERVAL_MS} ms"
    );
    // The shared result reaches all three.
    let (_, status) = get_json(&format!("http://{}/api/v1/status", gs.running.admin_addr)).await;
    assert_eq!(
        status["backends"][0]["servers"][0]["state"], "up",
        "{status}"
    );
    for p in 0..2 {
        assert_eq!(
            status["pools"][p]["endpoints"][0]["state"], "up",
            "{status}"
        );
    }
    target.set_status("/health", 503);
    wait_state(&gs, 0, "down", bound() + SLACK).await;
    let (_, status) = get_json(&format!("http://{}/api/v1/status", gs.running.admin_addr)).await;
    for p in 0..2 {
        assert_eq!(
            status["pools"][p]["endpoints"][0]["state"], "down",
            "{status}"
        );
    }
    gs.stop().await;
}

/// The events of one kind about `server`, oldest first.
async fn server_events(gs: &TestServer, server: SocketAddr) -> Vec<serde_json::Value> {
    let (_, events) = get_json(&format!("http://{}/api/v1/events", gs.running.admin_addr)).await;
    let mut out: Vec<serde_json::Value> = events
        .as_array()
        .or_else(|| events["events"].as_array())
        .into_iter()
        .flatten()
        .filter(|e| e["backend"] == "web" && e["endpoint"] == server.to_string())
        .cloned()
        .collect();
    out.reverse();
    out
}

/// Waits until an event of `kind` with `state` about `server` is listed,
/// doing `nudge` between looks (requests that make it happen).
async fn wait_event(
    gs: &TestServer,
    server: SocketAddr,
    (kind, state): (&str, &str),
    within: Duration,
    mut nudge: impl AsyncFnMut(),
) -> serde_json::Value {
    let started = Instant::now();
    loop {
        let events = server_events(gs, server).await;
        if let Some(e) = events
            .iter()
            .find(|e| e["kind"] == kind && e["state"] == state)
        {
            return e.clone();
        }
        assert!(
            started.elapsed() < within,
            "no {kind} {state} event for {server} within {within:?}: {events:?}"
        );
        nudge().await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Passive checks only (no monitor): a dead server is ejected after
/// `max_fails` failed requests, an event; once it answers again, the trial
/// request after `fail_timeout` takes it back, an "up" event.
#[tokio::test]
async fn a_dead_server_ejected_by_its_failures_is_an_event_and_so_is_its_return() {
    let (s1, s2) = (server("s1").await, server("s2").await);
    let text = config(&[&s1, &s2], "max_fails = 1\nfail_timeout = \"300ms\"\n")
        .replace("monitor = \"check\"\n", "");
    let gs = TestServer::start(&text, &[]).await;
    s1.kill().await;
    let e = wait_event(&gs, s1.addr(), ("server", "ejected"), SLACK, async || {
        let _ = proxied(&gs).await;
    })
    .await;
    assert_eq!(e["from"], "up", "{e}");
    assert!(
        e["reason"]
            .as_str()
            .is_some_and(|r| r.contains("max_fails")),
        "{e}"
    );
    assert_eq!(server_status(&gs, 0).await["state"], "ejected");
    s1.revive().await;
    let e = wait_event(&gs, s1.addr(), ("server", "up"), SLACK * 2, async || {
        let _ = proxied(&gs).await;
    })
    .await;
    assert_eq!(e["from"], "ejected", "{e}");
    // One ejection, one return: failed trials in between are not events.
    let events = server_events(&gs, s1.addr()).await;
    let states: Vec<&str> = events.iter().filter_map(|e| e["state"].as_str()).collect();
    assert_eq!(states, ["ejected", "up"], "{events:?}");
    gs.stop().await;
}

/// Active checks: a killed server is a "down" event, back an "up" one.
#[tokio::test]
async fn a_killed_server_is_a_down_event_and_back_an_up_event() {
    let (s1, s2) = (server("s1").await, server("s2").await);
    let gs = TestServer::start(&config(&[&s1, &s2], ""), &[]).await;
    wait_state(&gs, 0, "up", SLACK).await;
    s1.kill().await;
    let e = wait_event(
        &gs,
        s1.addr(),
        ("server", "down"),
        bound() + SLACK,
        async || {},
    )
    .await;
    assert_eq!(e["from"], "up", "{e}");
    s1.revive().await;
    let e = wait_event(
        &gs,
        s1.addr(),
        ("server", "up"),
        bound() + SLACK,
        async || {},
    )
    .await;
    assert_eq!(e["from"], "down", "{e}");
    gs.stop().await;
}

/// `geosteer drain --backend` and `undrain --backend` are drain events of
/// the server, in /api/v1/events and `geosteer status --events`.
#[tokio::test]
async fn draining_a_server_from_the_cli_is_an_event() {
    let (s1, s2) = (server("s1").await, server("s2").await);
    let gs = TestServer::start(&config(&[&s1, &s2], ""), &[]).await;
    let admin = format!("http://{}", gs.running.admin_addr);
    let run = |args: Vec<String>| {
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_geosteer"))
                .args(args)
                .output()
                .expect("run geosteer")
        })
    };
    let server = s1.addr().to_string();
    for verb in ["drain", "undrain"] {
        let out = run(vec![
            verb.into(),
            "--backend".into(),
            "web".into(),
            server.clone(),
            "--admin".into(),
            admin.clone(),
        ])
        .await
        .expect("drain");
        assert!(out.status.success(), "{out:?}");
    }
    let e = wait_event(&gs, s1.addr(), ("drain", "drained"), SLACK, async || {}).await;
    assert_eq!(e["from"], "in rotation", "{e}");
    assert_eq!(e["reason"], "operator (admin API)", "{e}");
    let e = wait_event(&gs, s1.addr(), ("drain", "undrained"), SLACK, async || {}).await;
    assert_eq!(e["from"], "drained", "{e}");
    let out = run(vec![
        "status".into(),
        "--events".into(),
        "--admin".into(),
        admin,
    ])
    .await
    .expect("status");
    let table = String::from_utf8_lossy(&out.stdout);
    let row = format!("web {server}");
    assert!(
        table
            .lines()
            .any(|l| l.contains(&row) && l.contains("drained (was in rotation)")),
        "{table}"
    );
    gs.stop().await;
}
