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
