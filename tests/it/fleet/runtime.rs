//! Runtime levers in a fleet: an override and a weight set through one
//! node are written to etcd beside the drains and applied by every node
//! from its watch; while etcd is unreachable they are refused (503).

use super::*;
use crate::harness::http::send;

fn endpoint_a(status: &serde_json::Value) -> serde_json::Value {
    status["pools"][0]["endpoints"][0].clone()
}

async fn status(node: &TestServer) -> serde_json::Value {
    get_json(&format!("http://{}/api/v1/status", node.running.admin_addr))
        .await
        .1
}

#[tokio::test]
async fn an_override_and_a_weight_set_on_one_node_apply_on_every_node() {
    let mut etcd = Etcd::start();
    let (fleet, _a, _b) = fleet_of_three("runtime", &etcd, 0.5).await;
    let (n1, n2, n3) = fleet.three().await;
    until(Duration::from_secs(15), "three vantages", async || {
        vantages(&n1).await == 3 && vantages(&n3).await == 3
    })
    .await;
    let nodes = [&n1, &n2, &n3];
    all_answer(&nodes, A, Duration::from_secs(10), "all see a up").await;
    let base1 = format!("http://{}", n1.running.admin_addr);
    let url = |lever: &str| format!("{base1}/api/v1/pools/a/endpoints/{A}/{lever}");

    let (code, body) = send(
        reqwest::Method::POST,
        &url("override"),
        Some(r#"{"state": "down", "reason": "fleet maintenance"}"#),
        None,
    )
    .await;
    assert_eq!(code, 200, "{body}");
    let set = Instant::now();
    all_answer(
        &nodes,
        B,
        Duration::from_secs(1),
        "overridden down on every node within 1 s",
    )
    .await;
    eprintln!(
        "override on node 1 -> every node answers without it: {:?}",
        set.elapsed()
    );
    let e = endpoint_a(&status(&n3).await);
    assert_eq!(e["override"]["reason"], "fleet maintenance", "{e}");

    let (code, body) = send(
        reqwest::Method::POST,
        &url("weight"),
        Some(r#"{"weight": 5}"#),
        None,
    )
    .await;
    assert_eq!(code, 200, "{body}");
    until(
        Duration::from_secs(1),
        "node 3 draws with weight 5",
        async || endpoint_a(&status(&n3).await)["weight"] == 5,
    )
    .await;

    let (code, body) = send(reqwest::Method::DELETE, &url("override"), None, None).await;
    assert_eq!(code, 200, "{body}");
    all_answer(
        &nodes,
        A,
        Duration::from_secs(1),
        "override cleared on every node",
    )
    .await;
    let (code, _) = send(reqwest::Method::DELETE, &url("weight"), None, None).await;
    assert_eq!(code, 200);
    until(
        Duration::from_secs(1),
        "node 2 back to the config's weight",
        async || endpoint_a(&status(&n2).await)["config_weight"].is_null(),
    )
    .await;

    etcd.kill();
    until(Duration::from_secs(10), "etcd loss noticed", async || {
        cluster(&n1).await["connected"] == false
    })
    .await;
    let (code, body) = send(
        reqwest::Method::POST,
        &url("override"),
        Some(r#"{"state": "down", "reason": "x"}"#),
        None,
    )
    .await;
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("etcd is unreachable"), "{body}");
    all_keep_answering(&nodes, A, Duration::from_millis(300), "nothing applied").await;
}

/// A pool of pushed health and a pool without a monitor, each with its own
/// balanced name, added to the fleet's config.
const MORE_POOLS: &str = r#"
[monitors.pushed]
type = "external"

[pools.ext]
monitor = "pushed"
endpoints = [{ address = "192.0.2.7" }]

[pools.c]
endpoints = [{ address = "192.0.2.5" }, { address = "192.0.2.6" }]

[[balance]]
name = "ext.example.test"
policy = "failover"
pools = ["ext"]
ttl = 5
on_all_down = "nodata"

[[balance]]
name = "ramp.example.test"
policy = "failover"
pools = ["c"]
ttl = 5
"#;

async fn answer_for(node: &TestServer, name: &str) -> Vec<std::net::IpAddr> {
    dig::addrs(&dig::udp(node.dns, &Ask::new(name, RecordType::A)).await)
}

fn endpoint_named(status: &serde_json::Value, pool: &str, addr: &str) -> serde_json::Value {
    status["pools"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["name"] == pool)
        .flat_map(|p| p["endpoints"].as_array().cloned().unwrap_or_default())
        .find(|e| e["address"] == addr)
        .unwrap_or_default()
}

#[tokio::test]
async fn health_pushed_through_one_node_applies_on_every_node_and_expires_on_all() {
    let mut etcd = Etcd::start();
    let (mut fleet, _a, _b) = fleet_of_three("pushed", &etcd, 0.5).await;
    fleet.extra = MORE_POOLS.into();
    let (n1, n2, n3) = fleet.three().await;
    until(Duration::from_secs(15), "three vantages", async || {
        vantages(&n1).await == 3 && vantages(&n3).await == 3
    })
    .await;
    let e: std::net::IpAddr = "192.0.2.7".parse().expect("ip");
    for n in [&n1, &n2, &n3] {
        assert!(
            answer_for(n, "ext.example.test.").await.is_empty(),
            "nothing pushed yet"
        );
    }
    let url = format!(
        "http://{}/api/v1/pools/ext/endpoints/192.0.2.7/health",
        n1.running.admin_addr
    );
    let (code, body) = send(
        reqwest::Method::PUT,
        &url,
        Some(r#"{"status": "up", "ttl": "3s", "latency_ms": 7, "reason": "deploy ok"}"#),
        None,
    )
    .await;
    assert_eq!(code, 200, "{body}");
    let pushed = Instant::now();
    crate::harness::eventually::eventually_every(
        Duration::from_secs(1),
        Duration::from_millis(50),
        "node 3 answers with the endpoint pushed up on node 1 within 1 s",
        async || {
            let got = answer_for(&n3, "ext.example.test.").await;
            if got == vec![e] {
                Ok(())
            } else {
                Err(format!("{got:?}"))
            }
        },
    )
    .await;
    eprintln!(
        "push on node 1 -> node 3 answers with it: {:?}",
        pushed.elapsed()
    );
    for n in [&n2, &n3] {
        let s = endpoint_named(&status(n).await, "ext", "192.0.2.7");
        assert_eq!(s["state"], "up", "{s}");
        assert_eq!(s["pushed"]["ttl_ms"], 3000, "{s}");
    }
    // Not pushed again: down on every node once the ttl has passed.
    until(
        Duration::from_secs(6),
        "down everywhere after the ttl",
        async || {
            for n in [&n1, &n2, &n3] {
                if !answer_for(n, "ext.example.test.").await.is_empty() {
                    return false;
                }
            }
            true
        },
    )
    .await;
    assert!(
        pushed.elapsed() >= Duration::from_millis(2_500),
        "not before the ttl"
    );
    let s = endpoint_named(&status(&n3).await, "ext", "192.0.2.7");
    assert_eq!(s["state"], "down", "{s}");
    assert!(
        s["last_error"]
            .as_str()
            .is_some_and(|r| r.contains("no health pushed within its ttl")),
        "{s}"
    );

    // Refused while etcd is unreachable, as drains are.
    etcd.kill();
    until(Duration::from_secs(10), "etcd loss noticed", async || {
        cluster(&n1).await["connected"] == false
    })
    .await;
    let (code, body) = send(
        reqwest::Method::PUT,
        &url,
        Some(r#"{"status": "up", "ttl": "30s"}"#),
        None,
    )
    .await;
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("pushed health cannot be recorded"), "{body}");
}

/// How many of `n` answers for ramp.example.test are `addr`.
async fn ramp_share(node: &TestServer, n: usize, addr: &str) -> usize {
    let want: std::net::IpAddr = addr.parse().expect("ip");
    let mut hits = 0;
    for _ in 0..n {
        hits += usize::from(answer_for(node, "ramp.example.test.").await.first() == Some(&want));
    }
    hits
}

#[tokio::test]
async fn a_gradual_drain_on_one_node_ramps_every_node_alike() {
    let etcd = Etcd::start();
    let (mut fleet, _a, _b) = fleet_of_three("ramp", &etcd, 0.5).await;
    fleet.extra = MORE_POOLS.into();
    let (n1, n2) = (fleet.node(1, None).await, fleet.node(2, None).await);
    until(Duration::from_secs(15), "two vantages", async || {
        vantages(&n1).await == 2 && vantages(&n2).await == 2
    })
    .await;
    let before = ramp_share(&n2, 200, "192.0.2.6").await;
    assert!((60..=140).contains(&before), "1:1 before: {before}/200");
    let url = format!(
        "http://{}/api/v1/pools/c/endpoints/192.0.2.6/drain",
        n1.running.admin_addr
    );
    let (code, body) = send(reqwest::Method::POST, &url, Some(r#"{"over": "6s"}"#), None).await;
    assert_eq!(code, 200, "{body}");
    let start = Instant::now();
    // Node 2 ramps from the record's times: the same ramp as node 1.
    until(Duration::from_secs(1), "node 2 ramping down", async || {
        endpoint_named(&status(&n2).await, "c", "192.0.2.6")["ramp"]["direction"] == "down"
    })
    .await;
    let (r1, r2) = (
        endpoint_named(&status(&n1).await, "c", "192.0.2.6")["ramp"].clone(),
        endpoint_named(&status(&n2).await, "c", "192.0.2.6")["ramp"].clone(),
    );
    assert_eq!(r1["start_unix_ms"], r2["start_unix_ms"], "{r1} {r2}");
    assert_eq!(r1["end_unix_ms"], r2["end_unix_ms"], "{r1} {r2}");
    assert_eq!(
        endpoint_named(&status(&n2).await, "c", "192.0.2.6")["draining"],
        false
    );
    // Half way (3 s): weight ~50 % against 100 %, about a third.
    tokio::time::sleep(Duration::from_secs(3).saturating_sub(start.elapsed())).await;
    let middle = ramp_share(&n2, 300, "192.0.2.6").await;
    assert!(
        (30..=140).contains(&middle),
        "node 2's middle share {middle}/300"
    );
    until(
        Duration::from_secs(6),
        "drained on node 2 at the end",
        async || endpoint_named(&status(&n2).await, "c", "192.0.2.6")["draining"] == true,
    )
    .await;
    assert!(
        start.elapsed() >= Duration::from_millis(5_500),
        "not before its end"
    );
    // Node 1 ends it at its own writer's next tick (up to 100 ms apart).
    until(
        Duration::from_secs(1),
        "drained on node 1 too",
        async || endpoint_named(&status(&n1).await, "c", "192.0.2.6")["draining"] == true,
    )
    .await;
    assert_eq!(ramp_share(&n2, 50, "192.0.2.6").await, 0);
    assert_eq!(ramp_share(&n1, 50, "192.0.2.6").await, 0);
    // Still drained a while later (the record's ramp is over: drained).
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        endpoint_named(&status(&n2).await, "c", "192.0.2.6")["draining"],
        true
    );
    // An undrain on node 2 returns it everywhere.
    let (code, body) = post(
        &format!(
            "http://{}/api/v1/pools/c/endpoints/192.0.2.6/undrain",
            n2.running.admin_addr
        ),
        None,
    )
    .await;
    assert_eq!(code, 200, "{body}");
    until(Duration::from_secs(2), "back on node 1", async || {
        ramp_share(&n1, 40, "192.0.2.6").await > 0
    })
    .await;
}
