//! Slow start and gradual drains from outside: the share of answers an
//! undrained endpoint gets grows over `slow_start`, a pool back from down
//! takes back its client subnets over the period (the same subnets stay
//! put), and `drain --over` ramps an endpoint out before draining it; status
//! and the events show the ramps. Shares are sampled over real time, with
//! generous bounds.

use std::collections::HashSet;
use std::net::IpAddr;
use std::process::Output;
use std::time::{Duration, Instant};

use hickory_proto::rr::RecordType;

use crate::harness::dig::{self, Ask, ip};
use crate::harness::eventually::until;
use crate::harness::geosteer::{TestServer, server_header};
use crate::harness::http::{get_json, post, send};

async fn cli(args: &[&str]) -> Output {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_geosteer"))
            .args(&args)
            .env_remove("GEOSTEER_ADMIN")
            .env_remove("GEOSTEER_ADMIN_TOKEN")
            .output()
            .expect("run geosteer")
    })
    .await
    .expect("join")
}

/// How many of `n` answers (no ECS) are `addr`.
async fn share(s: &TestServer, n: usize, addr: &str) -> usize {
    let ask = Ask::new("www.example.test.", RecordType::A);
    let mut hits = 0;
    for _ in 0..n {
        let a = dig::addrs(&dig::udp(s.dns, &ask).await);
        hits += usize::from(a.first() == Some(&ip(addr)));
    }
    hits
}

fn endpoint(status: &serde_json::Value, pool: usize, addr: &str) -> serde_json::Value {
    status["pools"][pool]["endpoints"]
        .as_array()
        .and_then(|es| es.iter().find(|e| e["address"] == addr))
        .cloned()
        .unwrap_or_else(|| panic!("no endpoint {addr} in {status}"))
}

#[tokio::test]
async fn an_undrained_endpoint_ramps_its_share_back_over_slow_start() {
    let config = format!(
        "{}
[pools.eu]
slow_start = \"6s\"
endpoints = [{{ address = \"192.0.2.1\" }}, {{ address = \"192.0.2.2\" }}]
[[balance]]
name = \"www.example.test\"
policy = \"failover\"
pools = [\"eu\"]
",
        server_header("")
    );
    let s = TestServer::start(&config, &[]).await;
    let base = format!("http://{}", s.running.admin_addr);
    let drain = format!("{base}/api/v1/pools/eu/endpoints/192.0.2.2/drain");
    let undrain = format!("{base}/api/v1/pools/eu/endpoints/192.0.2.2/undrain");
    assert_eq!(post(&drain, None).await.0, 200);
    assert_eq!(share(&s, 50, "192.0.2.2").await, 0);
    let start = Instant::now();
    assert_eq!(post(&undrain, None).await.0, 200);
    // At once: 10 % of its weight against 100 %: about 9 % of answers.
    let early = share(&s, 300, "192.0.2.2").await;
    let early_at = start.elapsed();
    let (_, status) = get_json(&format!("{base}/api/v1/status")).await;
    let e = endpoint(&status, 0, "192.0.2.2");
    assert_eq!(e["ramp"]["direction"], "up", "{e}");
    let text = cli(&["status", "--admin", &s.running.admin_addr.to_string()]).await;
    let text = String::from_utf8_lossy(&text.stdout).to_string();
    assert!(text.contains("slow start: weight at"), "{text}");
    let (_, events) = get_json(&format!("{base}/api/v1/events")).await;
    assert!(
        events["events"]
            .as_array()
            .is_some_and(|es| es.iter().any(|e| e["state"] == "slow start")),
        "{events}"
    );
    // After the period: 1:1, about half.
    tokio::time::sleep(Duration::from_secs(6).saturating_sub(start.elapsed())).await;
    until(Duration::from_secs(2), "the ramp ends", async || {
        let (_, st) = get_json(&format!("{base}/api/v1/status")).await;
        endpoint(&st, 0, "192.0.2.2")["ramp"].is_null()
    })
    .await;
    let late = share(&s, 300, "192.0.2.2").await;
    // Early: expected at most ~30 % even if sampling took 1.5 s (the
    // weight is 10 % + 15 %/s); bounds wide for a loaded machine.
    assert!(
        early < 105,
        "early share {early}/300 after {early_at:?} (expected ~9-25 %)"
    );
    assert!((105..=195).contains(&late), "late share {late}/300");
    assert!(late > early + 30, "early {early}, late {late}");
    s.stop().await;
}

/// The subnets of 100 /24s answered from eu (the rest from us).
async fn on_eu(s: &TestServer) -> HashSet<u32> {
    let mut out = HashSet::new();
    for i in 0..100u32 {
        let net = format!("10.1.{i}.0/24");
        let m = dig::udp(
            s.dns,
            &Ask::new("www.example.test.", RecordType::A).ecs(&net),
        )
        .await;
        let a: Vec<IpAddr> = dig::addrs(&m);
        if a.first() == Some(&ip("192.0.2.1")) {
            out.insert(i);
        }
    }
    out
}

#[tokio::test]
async fn a_pool_back_from_down_takes_back_its_subnets_over_slow_start() {
    let config = format!(
        "{}
[pools.eu]
slow_start = \"8s\"
endpoints = [{{ address = \"192.0.2.1\" }}]
[pools.us]
endpoints = [{{ address = \"198.51.100.1\" }}]
[[balance]]
name = \"www.example.test\"
policy = \"failover\"
pools = [\"eu\", \"us\"]
",
        server_header("")
    );
    let s = TestServer::start(&config, &[]).await;
    let base = format!("http://{}", s.running.admin_addr);
    assert_eq!(on_eu(&s).await.len(), 100, "eu first for everyone");
    let ep = format!("{base}/api/v1/pools/eu/endpoints/192.0.2.1");
    assert_eq!(post(&format!("{ep}/drain"), None).await.0, 200);
    assert!(on_eu(&s).await.is_empty(), "eu down: everyone on us");
    let start = Instant::now();
    assert_eq!(post(&format!("{ep}/undrain"), None).await.0, 200);
    let first = on_eu(&s).await;
    let first_at = start.elapsed();
    // While it ramps the answer depends on the /24: scope 24.
    let m = dig::udp(
        s.dns,
        &Ask::new("www.example.test.", RecordType::A).ecs("10.1.7.0/24"),
    )
    .await;
    assert_eq!(dig::ecs(&m).map(|e| e.2), Some(24));
    let (_, st) = get_json(&format!("{base}/api/v1/status")).await;
    assert_eq!(st["pools"][0]["ramp"]["direction"], "up", "{st}");
    let (_, explain) = get_json(&format!(
        "{base}/api/v1/explain?name=www.example.test&client=10.1.7.1"
    ))
    .await;
    assert!(
        explain.to_string().contains("eu taking back its catchment"),
        "{explain}"
    );
    tokio::time::sleep(Duration::from_secs(4).saturating_sub(start.elapsed())).await;
    let middle = on_eu(&s).await;
    // 10 % at once (+11 %/s while sampling), ~55 % at 4 s.
    assert!(
        first.len() < 45,
        "{} of 100 back at once ({first_at:?})",
        first.len()
    );
    assert!(
        middle.len() > first.len() && (25..=85).contains(&middle.len()),
        "{} then {} of 100",
        first.len(),
        middle.len()
    );
    assert!(
        first.is_subset(&middle),
        "a subnet taken back went away again"
    );
    until(
        Duration::from_secs(8),
        "every subnet back on eu",
        async || on_eu(&s).await.len() == 100,
    )
    .await;
    // Whole again: the failover policy's scope 0.
    let m = dig::udp(
        s.dns,
        &Ask::new("www.example.test.", RecordType::A).ecs("10.1.7.0/24"),
    )
    .await;
    assert_eq!(dig::ecs(&m).map(|e| e.2), Some(0));
    s.stop().await;
}

#[tokio::test]
async fn drain_over_ramps_an_endpoint_out_then_drains_it() {
    let config = format!(
        "{}
[pools.eu]
endpoints = [{{ address = \"192.0.2.1\" }}, {{ address = \"192.0.2.2\" }}]
[[balance]]
name = \"www.example.test\"
policy = \"failover\"
pools = [\"eu\"]
",
        server_header("")
    );
    let s = TestServer::start(&config, &[]).await;
    let admin = s.running.admin_addr.to_string();
    let base = format!("http://{admin}");
    let out = cli(&[
        "drain",
        "eu",
        "192.0.2.2",
        "--over",
        "6s",
        "--admin",
        &admin,
    ])
    .await;
    assert!(out.status.success(), "{out:?}");
    let start = Instant::now();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("eu 192.0.2.2: draining over 6s"),
        "{out:?}"
    );
    let (_, st) = get_json(&format!("{base}/api/v1/status")).await;
    let e = endpoint(&st, 0, "192.0.2.2");
    assert_eq!(
        (e["ramp"]["direction"].as_str(), e["draining"].as_bool()),
        (Some("down"), Some(false)),
        "{e}"
    );
    let text = cli(&["status", "--admin", &admin]).await;
    assert!(
        String::from_utf8_lossy(&text.stdout).contains("draining gradually: weight at"),
        "{text:?}"
    );
    // Half way (3 s): weight ~50 % against 100 %, about a third.
    tokio::time::sleep(Duration::from_secs(3).saturating_sub(start.elapsed())).await;
    let middle = share(&s, 300, "192.0.2.2").await;
    assert!((30..=140).contains(&middle), "middle share {middle}/300");
    until(Duration::from_secs(6), "drained at the end", async || {
        let (_, st) = get_json(&format!("{base}/api/v1/status")).await;
        endpoint(&st, 0, "192.0.2.2")["draining"] == true
    })
    .await;
    assert!(start.elapsed() >= Duration::from_millis(5_900));
    assert_eq!(share(&s, 50, "192.0.2.2").await, 0);
    let (_, events) = get_json(&format!("{base}/api/v1/events")).await;
    let states: Vec<&str> = events["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["endpoint"] == "192.0.2.2")
        .filter_map(|e| e["state"].as_str())
        .collect();
    assert!(
        states.contains(&"draining gradually") && states.contains(&"drained"),
        "{states:?}"
    );

    // Bad requests: clear errors.
    let url = format!("{base}/api/v1/pools/eu/endpoints/192.0.2.1/drain");
    for (body, want) in [
        (r#"{"over":"soon"}"#, "over:"),
        (r#"{"over":"0s"}"#, "more than 0"),
        (r#"{"ovr":"1m"}"#, "expected no body"),
    ] {
        let (code, text) = send(reqwest::Method::POST, &url, Some(body), None).await;
        assert_eq!(code, 400, "{body}: {text}");
        assert!(text.contains(want), "{body}: {text}");
    }
    let out = cli(&[
        "drain",
        "--backend",
        "api",
        "127.0.0.1:1",
        "--over",
        "1m",
        "--admin",
        &admin,
    ])
    .await;
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--over is for pool endpoints"),
        "{out:?}"
    );
    s.stop().await;
}
