//! A fleet over time: a node killed, etcd lost and back, a reload.

use super::*;

#[tokio::test]
async fn a_killed_node_s_votes_expire_with_its_lease() {
    let etcd = Etcd::start();
    // quorum 0.4: one of three is not enough (0.33), one of two is (0.5).
    let (fleet, a, _b) = fleet_of_three("kill", &etcd, 0.4).await;
    let n1 = fleet.node(1, None).await;
    let mut n2 = ProcessNode::start(&fleet.config(2, None));
    let n3 = fleet.node(3, None).await;
    until(Duration::from_secs(15), "three vantages", async || {
        vantages(&n1).await == 3
    })
    .await;
    a.set_mode_from(&source(1), Mode::Close);
    until(
        Duration::from_secs(10),
        "node 1's vote counted",
        async || disputed(&n3).await,
    )
    .await;
    all_keep_answering(
        &[&n1, &n3],
        A,
        Duration::from_secs(1),
        "1 of 3 is under quorum 0.4",
    )
    .await;

    // SIGKILL node 2 (which saw a up): its lease (2 s) expires, and 1 of the
    // 2 vantages left is over the quorum.
    n2.kill();
    all_answer(
        &[&n1, &n3],
        B,
        Duration::from_secs(10),
        "node 2's lease expired",
    )
    .await;
    let c = cluster(&n1).await;
    assert_eq!(c["vantages"], 2, "{c}");
    let gone = node_named(&c, "n2");
    assert_eq!(gone["connected"], false, "n2 is listed as gone: {c}");
    n1.stop().await;
    n3.stop().await;
}

/// The answers of `node` for 20 clients (ECS subnets of 20 countries'
/// worth of address space), in order.
async fn twenty_clients(node: &TestServer) -> Vec<Vec<IpAddr>> {
    let mut out = Vec::with_capacity(20);
    for i in 0..20u8 {
        out.push(answer(node, Some(&format!("{}.{i}.0.0/16", 20 + i * 9))).await);
    }
    out
}

/// Every node gives every one of the 20 clients the same answer, `want`.
async fn all_alike(nodes: &[&TestServer], want: &str, why: &str) {
    let want: IpAddr = want.parse().expect("ip");
    let first = twenty_clients(nodes[0]).await;
    assert!(
        first.iter().all(|a| a == &vec![want]),
        "{why}: node 1 answered {first:?}"
    );
    for (i, n) in nodes.iter().enumerate().skip(1) {
        let got = twenty_clients(n).await;
        assert_eq!(got, first, "{why}: node {} differs from node 1", i + 1);
    }
}

#[tokio::test]
async fn a_fleet_that_loses_etcd_keeps_agreeing_for_the_partition_grace() {
    let mut etcd = Etcd::start();
    let (fleet, a, _b) = fleet_of_three("partition", &etcd, 0.5).await;
    // Leases of 2 s: without the grace, every node would decide alone (and
    // node 1, whose path to a is broken, answer b) 2 s after etcd goes.
    let grace = "partition_grace = \"28s\"\n";
    let (n1, n2, n3) = (
        fleet.node_with(1, grace).await,
        fleet.node_with(2, grace).await,
        fleet.node_with(3, grace).await,
    );
    let nodes = [&n1, &n2, &n3];
    until(Duration::from_secs(10), "three vantages", async || {
        vantages(&n1).await == 3
    })
    .await;
    a.set_mode_from(&source(1), Mode::Close);
    until(
        Duration::from_secs(10),
        "node 1's vote counted",
        async || disputed(&n2).await,
    )
    .await;
    all_alike(&nodes, A, "1 of 3 is under quorum 0.5").await;

    etcd.kill();
    let killed = Instant::now();
    until(Duration::from_secs(10), "etcd loss noticed", async || {
        cluster(&n1).await["connected"] == false
    })
    .await;
    // The fleet view is frozen, and says so everywhere.
    let c = cluster(&n1).await;
    assert_eq!(c["frozen"], true, "{c}");
    assert_eq!(c["partition_grace_ms"], 28_000, "{c}");
    assert_eq!(c["vantages"], 3, "{c}");
    assert!(c["frozen_until_unix_ms"].as_u64().is_some(), "{c}");
    assert_eq!(node_named(&c, "n2")["frozen"], true, "{c}");
    let (_, metrics) = get(&format!("http://{}/metrics", n1.running.admin_addr)).await;
    assert!(metrics.contains("geosteer_cluster_frozen 1"), "{metrics}");
    assert!(
        metrics.contains("geosteer_cluster_frozen_vantages 2"),
        "{metrics}"
    );
    let admin = format!("http://{}", n1.running.admin_addr);
    let status = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_geosteer"))
            .args(["status", "--admin", &admin])
            .output()
            .expect("run geosteer status")
    })
    .await
    .expect("status task");
    let table = String::from_utf8_lossy(&status.stdout);
    assert!(
        table.contains("fleet view FROZEN") && table.contains("frozen"),
        "{table}"
    );

    // Well past the 2 s leases (24 s of the 28 s grace): all three keep
    // answering the 20 clients alike, node 1 included.
    while killed.elapsed() < Duration::from_secs(24) {
        all_alike(&nodes, A, "during the partition grace").await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // After the grace each node decides alone: node 1 steers away (its own
    // path is broken), the others stay.
    until(
        Duration::from_secs(20),
        "the partition grace passed",
        async || vantages(&n1).await == 1,
    )
    .await;
    assert!(
        killed.elapsed() >= Duration::from_secs(25),
        "decided alone after {:?}, before the 28 s grace",
        killed.elapsed()
    );
    all_answer(&[&n1], B, Duration::from_secs(5), "node 1 alone").await;
    all_answer(&[&n2, &n3], A, Duration::from_secs(5), "nodes 2, 3 alone").await;
    let c = cluster(&n1).await;
    assert_eq!(c["frozen"], false, "{c}");
    let (_, metrics) = get(&format!("http://{}/metrics", n1.running.admin_addr)).await;
    assert!(metrics.contains("geosteer_cluster_frozen 0"), "{metrics}");

    // etcd comes back (after ~30 s): every node re-publishes and re-reads,
    // and the quorum (1 of 3) puts node 1 back in line with the others.
    etcd.restart();
    until(
        Duration::from_secs(15),
        "three vantages again",
        async || vantages(&n1).await == 3 && vantages(&n3).await == 3,
    )
    .await;
    all_answer(
        &nodes,
        A,
        Duration::from_secs(10),
        "converged after etcd returned",
    )
    .await;
    all_alike(&nodes, A, "after etcd returned").await;
    let (_, metrics) = get(&format!("http://{}/metrics", n1.running.admin_addr)).await;
    assert!(
        metrics.contains("geosteer_cluster_connected 1"),
        "{metrics}"
    );
    assert!(metrics.contains("geosteer_cluster_vantages 3"), "{metrics}");
    for n in [n1, n2, n3] {
        n.stop().await;
    }
}

#[tokio::test]
async fn a_reload_keeps_the_lease_and_withdraws_removed_endpoints() {
    let etcd = Etcd::start();
    let (fleet, _a, _b) = fleet_of_three("reload", &etcd, 0.5).await;
    let (n1, n2) = (fleet.node(1, None).await, fleet.node(2, None).await);
    until(Duration::from_secs(10), "two vantages", async || {
        vantages(&n2).await == 2
    })
    .await;
    let votes_on_a = async |node: &TestServer| {
        let (_, status) =
            get_json(&format!("http://{}/api/v1/status", node.running.admin_addr)).await;
        status["pools"][0]["endpoints"][0]["votes"]["total"].as_u64()
    };
    until(Duration::from_secs(10), "both vote on a", async || {
        votes_on_a(&n2).await == Some(2)
    })
    .await;

    // Node 1 drops a's endpoint (a new address in its place): its verdict on
    // the old one is withdrawn, the new one is published after its first
    // probe, and node 1 stays a vantage throughout (same lease).
    let text = std::fs::read_to_string(n1.config_path()).expect("config");
    std::fs::write(n1.config_path(), text.replace(A, "192.0.2.3")).expect("write config");
    n1.running.reload().await.expect("reload");
    until(
        Duration::from_secs(10),
        "node 1's old verdict withdrawn",
        async || votes_on_a(&n2).await == Some(1),
    )
    .await;
    assert_eq!(vantages(&n2).await, 2, "node 1 kept its lease");
    let (_, status) = get_json(&format!("http://{}/api/v1/status", n1.running.admin_addr)).await;
    assert_eq!(status["pools"][0]["endpoints"][0]["address"], "192.0.2.3");
    until(
        Duration::from_secs(10),
        "node 1's new endpoint published",
        async || votes_on_a(&n1).await == Some(1),
    )
    .await;
    n1.stop().await;
    n2.stop().await;
}
