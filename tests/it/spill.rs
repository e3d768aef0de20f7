//! Capacity and spill from outside: a reported load over `spill_at` moves a
//! bounded share of a pool's client subnets to the next pool, the same
//! subnets query after query, with the subnet as ECS scope; a load under
//! `spill_at` moves none; nothing spills into a pool over capacity; status,
//! `_health`, `/metrics`, explain and the events show it.

use std::collections::HashSet;
use std::time::Duration;

use hickory_proto::rr::RecordType;
use reqwest::Method;

use crate::harness::dig::{self, Ask, ip};
use crate::harness::eventually::until;
use crate::harness::geosteer::{TestServer, server_header};
use crate::harness::http::{get, get_json, send};

/// eu first, then us, both with a capacity of 100 (unmonitored: the
/// controller steps every 5 s).
fn config() -> String {
    format!(
        "{}
[pools.eu]
capacity = 100
endpoints = [{{ address = \"192.0.2.1\" }}]
[pools.us]
capacity = 100
spill_at = 0.8
endpoints = [{{ address = \"198.51.100.1\" }}]
[[balance]]
name = \"www.example.test\"
policy = \"failover\"
pools = [\"eu\", \"us\"]
",
        server_header("")
    )
}

/// Which of 50 /24s are answered from us.
async fn spilled(s: &TestServer) -> HashSet<u32> {
    let mut out = HashSet::new();
    for i in 0..50u32 {
        let m = dig::udp(
            s.dns,
            &Ask::new("www.example.test.", RecordType::A).ecs(&format!("10.3.{i}.0/24")),
        )
        .await;
        if dig::addrs(&m).first() == Some(&ip("198.51.100.1")) {
            out.insert(i);
        }
    }
    out
}

async fn report(s: &TestServer, pool: &str, body: &str) -> (u16, String) {
    let url = format!("http://{}/api/v1/pools/{pool}/load", s.running.admin_addr);
    send(Method::PUT, &url, Some(body), None).await
}

#[tokio::test]
async fn a_load_over_capacity_spills_a_stable_share_of_subnets() {
    let s = TestServer::start(&config(), &[]).await;
    let base = format!("http://{}", s.running.admin_addr);
    assert!(spilled(&s).await.is_empty());
    let (code, body) = report(&s, "eu", r#"{"value": 112, "ttl": "5m"}"#).await;
    assert_eq!(code, 200, "{body}");
    // The first step at once (keep 90 %), the next 5 s later (80 %: 0.9 /
    // 1.12), then it stays.
    until(Duration::from_secs(3), "a first step", async || {
        !spilled(&s).await.is_empty()
    })
    .await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    let first = spilled(&s).await;
    assert!(
        (5..=35).contains(&first.len()),
        "{} of 50 subnets spilled",
        first.len()
    );
    for _ in 0..3 {
        assert_eq!(spilled(&s).await, first, "the same subnets spill");
    }
    // Spilling: the answer depends on the /24.
    let one = first.iter().next().copied().unwrap_or(0);
    let m = dig::udp(
        s.dns,
        &Ask::new("www.example.test.", RecordType::A).ecs(&format!("10.3.{one}.0/24")),
    )
    .await;
    assert_eq!(dig::ecs(&m).map(|e| e.2), Some(24));

    let (_, st) = get_json(&format!("{base}/api/v1/status")).await;
    let cap = &st["pools"][0]["capacity"];
    assert_eq!(cap["load"].as_f64(), Some(112.0), "{st}");
    assert!(
        cap["keep_permille"].as_u64().is_some_and(|k| k < 1000),
        "{cap}"
    );
    let (_, explain) = get_json(&format!(
        "{base}/api/v1/explain?name=www.example.test&client=10.3.{one}.1"
    ))
    .await;
    let text = explain.to_string();
    assert!(
        text.contains("eu at 112 % of capacity: this client 10.3.") && text.contains("sent to us"),
        "{text}"
    );
    let m = dig::udp(
        s.dns,
        &Ask::new("_health.www.example.test.", RecordType::TXT),
    )
    .await;
    let txt = dig::txts(&m).join("\n");
    assert!(txt.contains("util=112%") && txt.contains("keep="), "{txt}");
    let (_, metrics) = get(&format!("{base}/metrics")).await;
    assert!(
        metrics.contains("geosteer_pool_utilisation{pool=\"eu\"} 1.12"),
        "{metrics}"
    );
    assert!(metrics.contains("geosteer_pool_catchment_share{pool=\"eu\"} 0.8"));
    let (_, events) = get_json(&format!("{base}/api/v1/events")).await;
    assert!(
        events["events"]
            .as_array()
            .is_some_and(|es| es.iter().any(|e| e["state"] == "spilling")),
        "{events}"
    );

    // The load falls: the catchment comes back, a step per interval.
    let (code, _) = report(&s, "eu", r#"{"value": 10, "ttl": "5m"}"#).await;
    assert_eq!(code, 200);
    until(
        Duration::from_secs(16),
        "every subnet back on eu",
        async || spilled(&s).await.is_empty(),
    )
    .await;
    s.stop().await;
}

#[tokio::test]
async fn under_spill_at_nothing_moves_and_nothing_spills_into_a_full_pool() {
    let s = TestServer::start(&config(), &[]).await;
    let base = format!("http://{}", s.running.admin_addr);
    let (code, _) = report(&s, "eu", r#"{"value": 85, "ttl": "5m"}"#).await;
    assert_eq!(code, 200);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(spilled(&s).await.is_empty(), "85 % < spill_at 90 %");

    // us is over its own spill_at (0.8): eu over capacity spills nothing
    // (there is nowhere with headroom), though its controller cuts its share.
    let (code, _) = report(&s, "us", r#"{"value": 95, "ttl": "5m"}"#).await;
    assert_eq!(code, 200);
    let (code, _) = report(&s, "eu", r#"{"value": 150, "ttl": "5m"}"#).await;
    assert_eq!(code, 200);
    until(Duration::from_secs(3), "eu cuts its share", async || {
        let (_, st) = get_json(&format!("{base}/api/v1/status")).await;
        st["pools"][0]["capacity"]["keep_permille"]
            .as_u64()
            .is_some_and(|k| k < 1000)
    })
    .await;
    assert!(
        spilled(&s).await.is_empty(),
        "spilled into a pool over capacity"
    );

    // Bad reports: clear errors.
    for (pool, body, code, want) in [
        ("eu", r#"{"value": -1, "ttl": "30s"}"#, 400, "0 or more"),
        ("eu", r#"{"value": 1, "ttl": "soon"}"#, 400, "ttl:"),
        ("eu", r#"{"value": 1}"#, 400, "expected"),
        ("nope", r#"{"value": 1, "ttl": "30s"}"#, 404, "no pool"),
    ] {
        let (got, text) = report(&s, pool, body).await;
        assert_eq!(got, code, "{body}: {text}");
        assert!(text.contains(want), "{body}: {text}");
    }
    s.stop().await;
}

#[tokio::test]
async fn a_pool_without_capacity_refuses_a_load() {
    let config = format!(
        "{}
[pools.eu]
endpoints = [{{ address = \"192.0.2.1\" }}]
[[balance]]
name = \"www.example.test\"
policy = \"failover\"
pools = [\"eu\"]
",
        server_header("")
    );
    let s = TestServer::start(&config, &[]).await;
    let (code, text) = report(&s, "eu", r#"{"value": 1, "ttl": "30s"}"#).await;
    assert_eq!(code, 409, "{text}");
    assert!(text.contains("has no capacity"), "{text}");
    s.stop().await;
}
