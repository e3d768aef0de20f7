//! Loads shared by a fleet: a load reported on one node is written to etcd
//! and every node spills the same client subnets; each node's proxy rate is
//! published under its lease and every node's `proxy` load is the fleet's
//! sum; a report while etcd is unreachable is refused (503).

use std::collections::BTreeSet;

use super::*;
use crate::harness::eventually::eventually;
use crate::harness::http::send;

/// Which of 50 client /24s `node` answers from pool b (spilled from a).
async fn spilled(node: &TestServer) -> BTreeSet<u32> {
    let mut out = BTreeSet::new();
    for i in 0..50u32 {
        let got = answer(node, Some(&format!("10.3.{i}.0/24"))).await;
        if got.first().map(|a| a.to_string()).as_deref() == Some(B) {
            out.insert(i);
        }
    }
    out
}

async fn capacity(node: &TestServer) -> serde_json::Value {
    let (_, st) = get_json(&format!("http://{}/api/v1/status", node.running.admin_addr)).await;
    st["pools"][0]["capacity"].clone()
}

#[tokio::test]
async fn a_load_reported_on_one_node_spills_the_same_subnets_on_every_node() {
    let mut etcd = Etcd::start();
    let (fleet, _a, _b) = fleet_of_three("load", &etcd, 0.5).await;
    let with_capacity = |n| {
        fleet
            .config(n, None)
            .replace("[pools.a]\n", "[pools.a]\ncapacity = 100\n")
    };
    let n1 = fleet.start(with_capacity(1)).await;
    let n2 = fleet.start(with_capacity(2)).await;
    let n3 = fleet.start(with_capacity(3)).await;
    until(Duration::from_secs(15), "three vantages", async || {
        vantages(&n1).await == 3 && vantages(&n3).await == 3
    })
    .await;
    let nodes = [&n1, &n2, &n3];
    all_answer(&nodes, A, Duration::from_secs(10), "all see a up").await;
    for n in nodes {
        assert!(spilled(n).await.is_empty(), "nothing spills before a load");
    }

    let url = format!("http://{}/api/v1/pools/a/load", n1.running.admin_addr);
    let (code, body) = send(
        reqwest::Method::PUT,
        &url,
        Some(r#"{"value": 112, "ttl": "5m"}"#),
        None,
    )
    .await;
    assert_eq!(code, 200, "{body}");
    // 112 % of capacity: the controller (one step per 300 ms interval)
    // settles at 80 % on every node, from the same figure.
    let sets = eventually_every(
        Duration::from_secs(10),
        Duration::from_millis(300),
        "every node spills the same settled subnets",
        async || {
            let mut sets = Vec::new();
            for n in nodes {
                let cap = capacity(n).await;
                if cap["load"].as_f64() != Some(112.0) || cap["keep_permille"] != 800 {
                    return Err(format!("not settled: {cap}"));
                }
                sets.push(spilled(n).await);
            }
            if sets.iter().all(|s| *s == sets[0]) && !sets[0].is_empty() {
                Ok(sets)
            } else {
                Err(format!("{sets:?}"))
            }
        },
    )
    .await;
    let n = sets[0].len();
    eprintln!("spilled on every node: {n} of 50 subnets {:?}", sets[0]);
    assert!((5..=35).contains(&n), "{n} of 50 spilled");

    etcd.kill();
    until(Duration::from_secs(10), "etcd loss noticed", async || {
        cluster(&n2).await["connected"] == false
    })
    .await;
    let url2 = format!("http://{}/api/v1/pools/a/load", n2.running.admin_addr);
    let (code, body) = send(
        reqwest::Method::PUT,
        &url2,
        Some(r#"{"value": 10, "ttl": "5m"}"#),
        None,
    )
    .await;
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("etcd is unreachable"), "{body}");
    // The figure already taken still holds on every node.
    for n in nodes {
        assert_eq!(capacity(n).await["load"].as_f64(), Some(112.0));
    }
}

#[tokio::test]
async fn each_nodes_proxy_rate_is_summed_over_the_fleet() {
    let etcd = Etcd::start();
    let (mut fleet, a, _b) = fleet_of_three("proxyload", &etcd, 0.5).await;
    fleet.extra = format!(
        "[[proxy]]\nlisten = \"127.0.0.1:0\"\nmode = \"http\"\nroutes = [{{ backend = \"web\" }}]\n[backends.web]\nservers = [{{ address = \"{}\" }}]\npool = \"a\"\n",
        a.addr()
    );
    let proxied = |n| {
        fleet.config(n, None).replace(
            "[pools.a]\n",
            "[pools.a]\ncapacity = 1000\nload = \"proxy\"\n",
        )
    };
    let n1 = fleet.start(proxied(1)).await;
    let n2 = fleet.start(proxied(2)).await;
    let n3 = fleet.start(proxied(3)).await;
    until(Duration::from_secs(15), "three vantages", async || {
        vantages(&n1).await == 3 && vantages(&n3).await == 3
    })
    .await;
    assert_eq!(capacity(&n3).await["source"], "proxy");

    // Traffic through node 1's proxy only, for about 4 s.
    let proxy = format!("http://{}/", n1.running.proxy_addrs[0]);
    let traffic = tokio::spawn(async move {
        let end = Instant::now() + Duration::from_secs(4);
        let mut sent = 0u32;
        while Instant::now() < end {
            let _ = get(&proxy).await;
            sent += 1;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        sent
    });
    let seen = eventually(
        Duration::from_secs(4),
        "node 3 counts node 1's rate in its load",
        async || {
            let cap = capacity(&n3).await;
            match (cap["load"].as_f64(), cap["proxy_rate"].as_f64()) {
                (Some(load), Some(own)) if load > 5.0 && own == 0.0 => Ok(load),
                _ => Err(cap.to_string()),
            }
        },
    )
    .await;
    let own1 = capacity(&n1).await["proxy_rate"].as_f64().unwrap_or(0.0);
    let sent = traffic.await.unwrap_or(0);
    eprintln!(
        "{sent} requests through node 1 in 4 s; node 1's own rate {own1}/s, node 3's load {seen}/s"
    );
    assert!(own1 > 5.0, "node 1's own rate {own1}");
    // Gone quiet: the rate falls back to 0 everywhere.
    until(
        Duration::from_secs(10),
        "the fleet's load back to 0",
        async || {
            capacity(&n2).await["load"].as_f64() == Some(0.0)
                && capacity(&n1).await["load"].as_f64() == Some(0.0)
        },
    )
    .await;
}
