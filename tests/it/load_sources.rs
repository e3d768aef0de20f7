//! A pool's load from its proxy and from its monitor, seen from outside:
//! wrk through the proxy at a rate above a small `capacity` (load =
//! "proxy") makes the pool spill, no traffic spills nothing; the numbers
//! origins put in a `load_header` sum into the pool's load, go stale when
//! they stop, and reports are refused for such pools; status, the page's
//! sparkline and the events' series show the load.

use std::collections::HashSet;
use std::process::Command;
use std::time::Duration;

use hickory_proto::rr::RecordType;
use reqwest::Method;

use crate::harness::dig::{self, Ask, ip};
use crate::harness::eventually::{eventually, until};
use crate::harness::geosteer::{TestServer, server_header};
use crate::harness::http::{get, get_json, send};
use crate::harness::origin::Origin;

/// Which of 50 /24s are answered from the second pool (198.51.100.1).
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

async fn capacity(s: &TestServer) -> serde_json::Value {
    let (_, st) = get_json(&format!("http://{}/api/v1/status", s.running.admin_addr)).await;
    st["pools"][0]["capacity"].clone()
}

/// `wrk` with `args`, or a clear failure when it is not installed.
fn wrk(args: &[String]) -> std::process::Output {
    Command::new("wrk").args(args).output().unwrap_or_else(|e| {
        panic!(
            "cannot run wrk ({e}): install the Debian package `wrk` (the proxy-fed load test drives traffic with it; .ci/run installs it)"
        )
    })
}

#[tokio::test]
async fn proxy_traffic_over_capacity_spills_and_no_traffic_spills_nothing() {
    let origin = Origin::start().await;
    let config = format!(
        "{}
[pools.eu]
capacity = 20
load = \"proxy\"
endpoints = [{{ address = \"192.0.2.1\" }}]
[pools.us]
endpoints = [{{ address = \"198.51.100.1\" }}]
[[balance]]
name = \"www.example.test\"
policy = \"failover\"
pools = [\"eu\", \"us\"]
[[proxy]]
listen = \"127.0.0.1:0\"
mode = \"http\"
routes = [{{ backend = \"web\" }}]
[backends.web]
servers = [{{ address = \"{}\" }}]
pool = \"eu\"
",
        server_header(""),
        origin.addr()
    );
    let s = TestServer::start(&config, &[]).await;
    let base = format!("http://{}", s.running.admin_addr);

    // No traffic: a load of 0, nothing spills.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let cap = capacity(&s).await;
    assert_eq!(cap["source"], "proxy", "{cap}");
    assert_eq!(cap["load"].as_f64(), Some(0.0), "{cap}");
    assert!(spilled(&s).await.is_empty(), "no traffic, no spill");

    // A report is not how this pool's load is known.
    let (code, text) = send(
        Method::PUT,
        &format!("{base}/api/v1/pools/eu/load"),
        Some(r#"{"value": 500, "ttl": "30s"}"#),
        None,
    )
    .await;
    assert_eq!(code, 409, "{text}");
    assert!(text.contains("proxy"), "{text}");

    // wrk through the proxy for 8 s, far above 20 requests a second.
    let url = format!("http://{}/", s.running.proxy_addrs[0]);
    let run = tokio::task::spawn_blocking(move || {
        wrk(&[
            "-t1".into(),
            "-c4".into(),
            "-d8s".into(),
            "--latency".into(),
            url,
        ])
    });
    let moved = eventually(
        Duration::from_secs(6),
        "proxy load over capacity spills some subnets",
        async || {
            let moved = spilled(&s).await;
            if moved.is_empty() {
                Err(capacity(&s).await.to_string())
            } else {
                Ok(moved)
            }
        },
    )
    .await;
    // wrk has run for a whole window by now: the load is its rate.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let cap = capacity(&s).await;
    let load = cap["load"].as_f64().unwrap_or(0.0);
    assert!(
        load > 20.0 && cap["proxy_rate"].as_f64() == Some(load),
        "{cap}"
    );
    assert!(moved.len() < 50, "some subnets stay: {moved:?}");
    let (_, metrics) = get(&format!("{base}/metrics")).await;
    assert!(
        metrics.contains("geosteer_pool_proxy_rate{pool=\"eu\"}")
            && metrics.contains("geosteer_pool_utilisation{pool=\"eu\"}"),
        "{metrics}"
    );
    let m = dig::udp(
        s.dns,
        &Ask::new("_health.www.example.test.", RecordType::TXT),
    )
    .await;
    let txt = dig::txts(&m).join("\n");
    assert!(txt.contains("util=") && txt.contains("keep="), "{txt}");
    let dropped = metrics
        .lines()
        .find(|l| l.starts_with("geosteer_proxy_observations_dropped"))
        .unwrap_or("")
        .to_string();
    let out = run.await.expect("wrk task");
    let report = String::from_utf8_lossy(&out.stdout);
    eprintln!(
        "{} of 50 subnets spilled, then load {load:.0}/s (capacity 20; {dropped}); wrk: {}",
        moved.len(),
        report
            .lines()
            .find(|l| l.starts_with("Requests/sec"))
            .unwrap_or("?")
    );
    assert!(out.status.success(), "wrk: {report}");

    // Traffic stops: the rate falls back to 0.
    until(Duration::from_secs(6), "the load back to 0", async || {
        capacity(&s).await["load"].as_f64() == Some(0.0)
    })
    .await;
    s.stop().await;
}

#[tokio::test]
async fn load_header_figures_sum_into_the_pool_load_and_go_stale() {
    let (a, b) = (Origin::start().await, Origin::start().await);
    a.set_header("x-load", Some("40"));
    b.set_header("x-load", Some("30"));
    let config = format!(
        "{}
[monitors.web]
type = \"http\"
interval = \"300ms\"
timeout = \"200ms\"
rise = 1
load_header = \"X-Load\"
[pools.eu]
monitor = \"web\"
capacity = 100
endpoints = [{{ address = \"192.0.2.1\", probe = \"{a}\" }}, {{ address = \"192.0.2.2\", probe = \"{b}\" }}]
[pools.us]
endpoints = [{{ address = \"198.51.100.1\" }}]
[[balance]]
name = \"www.example.test\"
policy = \"failover\"
pools = [\"eu\", \"us\"]
",
        server_header(""),
        a = a.addr(),
        b = b.addr(),
    );
    let s = TestServer::start(&config, &[]).await;
    let base = format!("http://{}", s.running.admin_addr);
    until(Duration::from_secs(3), "70 = 40 + 30", async || {
        capacity(&s).await["load"].as_f64() == Some(70.0)
    })
    .await;
    let cap = capacity(&s).await;
    assert_eq!(cap["source"], "load_header", "{cap}");
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(spilled(&s).await.is_empty(), "70 % < spill_at 90 %");

    a.set_header("x-load", Some("80"));
    until(Duration::from_secs(3), "110 = 80 + 30", async || {
        capacity(&s).await["utilisation"].as_f64() == Some(1.1)
    })
    .await;
    until(
        Duration::from_secs(3),
        "over capacity: spilling",
        async || !spilled(&s).await.is_empty(),
    )
    .await;

    // Seen from outside: the status line names the source, the page draws
    // a utilisation sparkline (spill_at dashed), the events' series carry
    // the utilisation.
    let out = tokio::task::spawn_blocking({
        let admin = s.running.admin_addr.to_string();
        move || {
            Command::new(env!("CARGO_BIN_EXE_geosteer"))
                .args(["status", "--admin", &admin])
                .env_remove("GEOSTEER_ADMIN")
                .env_remove("GEOSTEER_CONFIG")
                .output()
                .expect("run geosteer status")
        }
    })
    .await
    .expect("status task");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("load 110 (110% of capacity 100, from load_header)"),
        "{text}"
    );
    until(
        Duration::from_secs(3),
        "a utilisation sample on the page",
        async || {
            let (_, page) = get(&format!("{base}/")).await;
            page.contains("aria-label=\"utilisation over the window\"")
                && page.contains("util 110%")
        },
    )
    .await;
    let (_, events) = get_json(&format!("{base}/api/v1/events")).await;
    let series = &events["pools"][0];
    assert_eq!(series["spill_at"].as_f64(), Some(0.9), "{series}");
    assert!(
        series["samples"]
            .as_array()
            .is_some_and(|s| s.iter().any(|x| x["utilisation"].as_f64() == Some(1.1))),
        "{series}"
    );

    // A report would be overwritten by the next probe: refused.
    let (code, text) = send(
        Method::PUT,
        &format!("{base}/api/v1/pools/eu/load"),
        Some(r#"{"value": 5, "ttl": "30s"}"#),
        None,
    )
    .await;
    assert_eq!(code, 409, "{text}");
    assert!(text.contains("load_header"), "{text}");

    // One endpoint stops saying: its figure goes stale (3 intervals).
    a.set_header("x-load", None);
    until(Duration::from_secs(3), "only b's 30 left", async || {
        capacity(&s).await["load"].as_f64() == Some(30.0)
    })
    .await;
    b.set_header("x-load", None);
    until(Duration::from_secs(3), "no figure at all", async || {
        capacity(&s).await["load"].is_null()
    })
    .await;
    s.stop().await;
}
