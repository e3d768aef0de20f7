//! etcd losing the fleet's data: wiped and started empty on the same
//! ports, or restored from an older copy. The nodes tell it from an
//! operator's undrain (the store's revision went backwards, the fleet's
//! epoch key is gone), keep their last known drains and weights, write them
//! back, and say so in an event and a metric; the drained endpoint stays out
//! of every answer the whole time.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;

use super::*;
use crate::harness::http::send;
use crate::harness::webhook::Webhook;

/// The keys under `prefix` in etcd and their values (through its JSON
/// gateway, as geosteer speaks to it).
async fn etcd_keys(etcd: &Etcd, prefix: &str) -> Vec<(String, String)> {
    let mut end = prefix.as_bytes().to_vec();
    if let Some(last) = end.last_mut() {
        *last += 1;
    }
    let body = serde_json::json!({ "key": B64.encode(prefix), "range_end": B64.encode(&end) });
    let reply = reqwest::Client::new()
        .post(format!("{}/v3/kv/range", etcd.url()))
        .body(body.to_string())
        .send()
        .await;
    let Ok(reply) = reply else {
        return Vec::new();
    };
    let text = reply.text().await.unwrap_or_default();
    let value: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    let text = |v: &serde_json::Value| {
        String::from_utf8(
            B64.decode(v.as_str().unwrap_or_default())
                .unwrap_or_default(),
        )
        .unwrap_or_default()
    };
    value["kvs"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|kv| (text(&kv["key"]), text(&kv["value"])))
        .collect()
}

async fn events_of(node: &TestServer) -> Vec<serde_json::Value> {
    let (_, v) = get_json(&format!("http://{}/api/v1/events", node.running.admin_addr)).await;
    v["events"].as_array().cloned().unwrap_or_default()
}

/// The reasons of `node`'s "fleet" events saying etcd lost its data.
async fn data_lost_events(node: &TestServer) -> Vec<String> {
    events_of(node)
        .await
        .iter()
        .filter(|e| e["kind"] == "fleet" && e["state"] == "etcd_data_lost")
        .map(|e| e["reason"].as_str().unwrap_or_default().to_string())
        .collect()
}

async fn data_lost_metric(node: &TestServer) -> u64 {
    let (_, text) = get(&format!("http://{}/metrics", node.running.admin_addr)).await;
    text.lines()
        .find_map(|l| l.strip_prefix("geosteer_cluster_etcd_data_lost_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

async fn connected(node: &TestServer) -> bool {
    cluster(node).await["connected"] == true
}

fn endpoint_b(status: &serde_json::Value) -> serde_json::Value {
    status["pools"][1]["endpoints"][0].clone()
}

async fn status(node: &TestServer) -> serde_json::Value {
    get_json(&format!("http://{}/api/v1/status", node.running.admin_addr))
        .await
        .1
}

/// Asks both nodes every 50 ms until stopped; returns every answer that
/// was not `want` (with the node's number).
fn watch_answers(
    nodes: [SocketAddr; 2],
    want: &str,
) -> (
    Arc<AtomicBool>,
    tokio::task::JoinHandle<(usize, Vec<String>)>,
) {
    let stop = Arc::new(AtomicBool::new(false));
    let want: IpAddr = want.parse().expect("ip");
    let flag = stop.clone();
    let task = tokio::spawn(async move {
        let mut wrong = Vec::new();
        let mut asked = 0;
        while !flag.load(Ordering::Relaxed) {
            for (i, dns) in nodes.iter().enumerate() {
                let ask = Ask::new("www.example.test.", RecordType::A);
                let got = dig::addrs(&dig::udp(*dns, &ask).await);
                asked += 1;
                if got != vec![want] {
                    wrong.push(format!("node {}: {got:?}", i + 1));
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        (asked, wrong)
    });
    (stop, task)
}

/// Two nodes, both seeing a (A) and b (B) up; a drained on node 1 (the
/// answers move to b) and b weighted 5.
async fn drained_fleet(
    test: &str,
    etcd: &Etcd,
    extra: &str,
) -> (Fleet, Origin, Origin, TestServer, TestServer) {
    let (mut fleet, a, b) = fleet_of_three(test, etcd, 0.5).await;
    fleet.extra = extra.to_string();
    let (n1, n2) = (fleet.node(1, None).await, fleet.node(2, None).await);
    until(Duration::from_secs(15), "two vantages", async || {
        vantages(&n1).await == 2 && vantages(&n2).await == 2
    })
    .await;
    all_answer(&[&n1, &n2], A, Duration::from_secs(10), "both see a up").await;
    (fleet, a, b, n1, n2)
}

async fn drain_a_and_weigh_b(n1: &TestServer, n2: &TestServer) {
    let base = format!("http://{}/api/v1/pools", n1.running.admin_addr);
    let (code, body) = post(&format!("{base}/a/endpoints/{A}/drain"), None).await;
    assert_eq!(code, 200, "{body}");
    let (code, body) = send(
        reqwest::Method::POST,
        &format!("{base}/b/endpoints/{B}/weight"),
        Some(r#"{"weight": 5}"#),
        None,
    )
    .await;
    assert_eq!(code, 200, "{body}");
    all_answer(&[n1, n2], B, Duration::from_secs(5), "a drained fleet-wide").await;
    until(
        Duration::from_secs(2),
        "node 2 has b's weight",
        async || endpoint_b(&status(n2).await)["weight"] == 5,
    )
    .await;
}

#[tokio::test]
async fn a_wiped_etcd_does_not_undrain_the_fleet_the_nodes_write_their_state_back() {
    let etcd = Etcd::start();
    let hook = Webhook::start().await;
    let notify = format!(
        "[[notify]]\nname = \"ops\"\nurl = \"{}\"\nevents = [\"fleet\"]\n",
        hook.url()
    );
    let (fleet, _a, _b, n1, n2) = drained_fleet("wiped", &etcd, &notify).await;
    drain_a_and_weigh_b(&n1, &n2).await;
    let drain_key = format!("{}/drain/a/{A}", fleet.prefix);
    let weight_key = format!("{}/weight/b/{B}", fleet.prefix);
    assert_eq!(etcd_keys(&etcd, &drain_key).await.len(), 1);

    let (stop, answers) = watch_answers([n1.dns, n2.dns], B);
    let etcd = tokio::task::spawn_blocking(move || {
        let mut etcd = etcd;
        etcd.wipe();
        etcd
    })
    .await
    .expect("wipe etcd");
    until(
        Duration::from_secs(20),
        "both nodes back on the fresh etcd",
        async || connected(&n1).await && connected(&n2).await,
    )
    .await;
    until(
        Duration::from_secs(10),
        "the drain and the weight written back to etcd",
        async || {
            etcd_keys(&etcd, &drain_key).await.len() == 1
                && etcd_keys(&etcd, &weight_key).await.len() == 1
        },
    )
    .await;
    // Well past the 0.3 s after which the nodes used to drop the drain.
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    let (asked, wrong) = answers.await.expect("answers");
    assert!(asked > 20, "asked {asked} times");
    assert!(
        wrong.is_empty(),
        "the drained endpoint came back ({} of {asked} answers): {wrong:?}",
        wrong.len()
    );
    all_keep_answering(&[&n1, &n2], B, Duration::from_millis(500), "still drained").await;
    assert_eq!(endpoint_b(&status(&n2).await)["weight"], 5, "weight kept");

    // Each node says so: an event (one wrote back, the other followed it or
    // found its own state there) and the metric.
    for (i, n) in [&n1, &n2].into_iter().enumerate() {
        let found = data_lost_events(n).await;
        assert_eq!(found.len(), 1, "node {}: {:?}", i + 1, events_of(n).await);
        assert!(found[0].contains("etcd lost its data"), "{found:?}");
        assert!(
            found[0].contains("epoch key") || found[0].contains("revision"),
            "{found:?}"
        );
        assert_eq!(data_lost_metric(n).await, 1, "node {}", i + 1);
    }
    let reasons = [data_lost_events(&n1).await, data_lost_events(&n2).await].concat();
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("wrote it back: 1 drains, 1 weights")),
        "{reasons:?}"
    );
    // And to webhooks: one from each node.
    until(
        Duration::from_secs(10),
        "both events delivered",
        async || {
            hook.events()
                .iter()
                .filter(|e| e["kind"] == "fleet" && e["state"] == "etcd_data_lost")
                .count()
                == 2
        },
    )
    .await;

    // An operator's undrain afterwards is an undrain, not a loss.
    let (code, body) = post(
        &format!(
            "http://{}/api/v1/pools/a/endpoints/{A}/undrain",
            n2.running.admin_addr
        ),
        None,
    )
    .await;
    assert_eq!(code, 200, "{body}");
    all_answer(&[&n1, &n2], A, Duration::from_secs(5), "undrained").await;
    assert_eq!(data_lost_metric(&n1).await, 1);
    assert!(etcd_keys(&etcd, &drain_key).await.is_empty());
}

#[tokio::test]
async fn an_etcd_restored_from_an_older_copy_is_brought_up_to_what_the_nodes_knew() {
    let etcd = Etcd::start();
    let (fleet, _a, _b, n1, n2) = drained_fleet("restored", &etcd, "").await;
    let epoch_key = format!("{}/epoch", fleet.prefix);
    until(
        Duration::from_secs(5),
        "the fleet's epoch in etcd",
        async || etcd_keys(&etcd, &epoch_key).await.len() == 1,
    )
    .await;
    // The copy holds b weighted 3 and a not drained.
    let base = format!("http://{}/api/v1/pools", n1.running.admin_addr);
    let weight_url = format!("{base}/b/endpoints/{B}/weight");
    let (code, _) = send(
        reqwest::Method::POST,
        &weight_url,
        Some(r#"{"weight": 3}"#),
        None,
    )
    .await;
    assert_eq!(code, 200);
    let (copy, etcd) = tokio::task::spawn_blocking(move || {
        let mut etcd = etcd;
        let copy = etcd.backup();
        (copy, etcd)
    })
    .await
    .expect("backup");
    until(Duration::from_secs(20), "both reconnected", async || {
        connected(&n1).await && connected(&n2).await
    })
    .await;
    // Since the copy: a drained, and b's weight set a few times and reset.
    drain_a_and_weigh_b(&n1, &n2).await;
    for w in 6..12 {
        let (code, _) = send(
            reqwest::Method::POST,
            &weight_url,
            Some(&format!(r#"{{"weight": {w}}}"#)),
            None,
        )
        .await;
        assert_eq!(code, 200);
    }
    let (code, _) = send(reqwest::Method::DELETE, &weight_url, None, None).await;
    assert_eq!(code, 200);
    until(
        Duration::from_secs(2),
        "node 2 back to b's config weight",
        async || endpoint_b(&status(&n2).await)["config_weight"].is_null(),
    )
    .await;

    let (stop, answers) = watch_answers([n1.dns, n2.dns], B);
    let etcd = tokio::task::spawn_blocking(move || {
        let mut etcd = etcd;
        etcd.restore(&copy);
        etcd
    })
    .await
    .expect("restore");
    let drain_key = format!("{}/drain/a/{A}", fleet.prefix);
    let weight_key = format!("{}/weight/b/{B}", fleet.prefix);
    until(
        Duration::from_secs(20),
        "the drain written back and the copy's weight deleted",
        async || {
            etcd_keys(&etcd, &drain_key).await.len() == 1
                && etcd_keys(&etcd, &weight_key).await.is_empty()
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    let (asked, wrong) = answers.await.expect("answers");
    assert!(
        wrong.is_empty(),
        "the drained endpoint came back ({} of {asked} answers): {wrong:?}",
        wrong.len()
    );
    for n in [&n1, &n2] {
        let b = endpoint_b(&status(n).await);
        assert!(
            b["config_weight"].is_null() && b["weight"] == 1,
            "the copy's weight 3 is not applied: {b}"
        );
        let found = data_lost_events(n).await;
        assert_eq!(found.len(), 1, "{:?}", events_of(n).await);
        assert_eq!(data_lost_metric(n).await, 1);
    }
    let reasons = [data_lost_events(&n1).await, data_lost_events(&n2).await].concat();
    assert!(
        reasons.iter().any(|r| r.contains("backwards")),
        "the revision went backwards: {reasons:?}"
    );
}

#[tokio::test]
async fn an_etcd_replaced_by_another_cluster_is_told_by_its_cluster_id() {
    let etcd = Etcd::start();
    let (fleet, _a, _b, n1, n2) = drained_fleet("replaced", &etcd, "").await;
    drain_a_and_weigh_b(&n1, &n2).await;
    let (stop, answers) = watch_answers([n1.dns, n2.dns], B);
    let etcd = tokio::task::spawn_blocking(move || {
        let mut etcd = etcd;
        etcd.replace();
        etcd
    })
    .await
    .expect("replace etcd");
    let drain_key = format!("{}/drain/a/{A}", fleet.prefix);
    until(
        Duration::from_secs(20),
        "the drain written back to the new cluster",
        async || etcd_keys(&etcd, &drain_key).await.len() == 1,
    )
    .await;
    until(Duration::from_secs(10), "both nodes noticed", async || {
        !data_lost_events(&n1).await.is_empty() && !data_lost_events(&n2).await.is_empty()
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    let (asked, wrong) = answers.await.expect("answers");
    assert!(
        wrong.is_empty(),
        "the drained endpoint came back ({} of {asked} answers): {wrong:?}",
        wrong.len()
    );
    let reasons = [data_lost_events(&n1).await, data_lost_events(&n2).await].concat();
    assert!(
        reasons.iter().all(|r| r.contains("cluster id")),
        "a new cluster id: {reasons:?}"
    );
}
