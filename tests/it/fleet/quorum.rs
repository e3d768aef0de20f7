//! Deciding together: quorum over vantages, fleet-wide drains, the nearest
//! vantage's latency, config skew.

use super::*;

#[tokio::test]
async fn one_broken_vantage_moves_nothing_two_move_every_node() {
    let etcd = Etcd::start();
    let (fleet, a, _b) = fleet_of_three("quorum", &etcd, 0.5).await;
    let (n1, n2, n3) = fleet.three().await;
    let nodes = [&n1, &n2, &n3];
    until(Duration::from_secs(10), "three vantages", async || {
        vantages(&n1).await == 3
    })
    .await;
    all_answer(&nodes, A, Duration::from_secs(10), "all healthy").await;

    // Node 1 loses its path to origin a: it sees a down, nobody else does.
    a.set_mode_from(&source(1), Mode::Close);
    until(
        Duration::from_secs(10),
        "node 1's own verdict: down",
        async || disputed(&n3).await,
    )
    .await;
    all_keep_answering(
        &nodes,
        A,
        Duration::from_secs(2),
        "one vantage of three sees a down",
    )
    .await;
    let c = cluster(&n2).await;
    let summary = c["disputed"][0]["votes"]["summary"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(
        summary.starts_with("down 1/3: n1 "),
        "votes as n2 sees them: {summary}"
    );
    assert!(
        summary.contains("n2") && summary.contains("n3"),
        "{summary}"
    );
    let (_, status) = get_json(&format!("http://{}/api/v1/status", n1.running.admin_addr)).await;
    let e = &status["pools"][0]["endpoints"][0];
    assert_eq!(e["state"], "up", "the fleet's state: {e}");
    assert_eq!(e["local_state"], "down", "node 1's own verdict: {e}");

    // A second vantage loses it: a majority, so every node steers away.
    let started = Instant::now();
    a.set_mode_from(&source(2), Mode::Hang);
    all_answer(
        &nodes,
        B,
        Duration::from_secs(10),
        "two vantages of three see a down",
    )
    .await;
    eprintln!(
        "majority loss to every node's answer: {:?}",
        started.elapsed()
    );
    // Every node gives every client the same answer.
    for i in 0..20 {
        let subnet = format!("198.51.{i}.0/24");
        let first = answer(&n1, Some(&subnet)).await;
        assert_eq!(first, vec![B.parse::<IpAddr>().expect("ip")]);
        assert_eq!(
            answer(&n2, Some(&subnet)).await,
            first,
            "client {subnet} on n2"
        );
        assert_eq!(
            answer(&n3, Some(&subnet)).await,
            first,
            "client {subnet} on n3"
        );
    }
    // `dig TXT _health...` shows the votes.
    let txt = dig::txts(
        &dig::udp(
            n3.dns,
            &Ask::new("_health.www.example.test.", RecordType::TXT),
        )
        .await,
    );
    assert!(
        txt.iter()
            .any(|t| t.starts_with("pool=a state=down") && t.contains("votes=2/3")),
        "{txt:?}"
    );

    // The paths come back: so does the endpoint, everywhere.
    a.set_mode_from(&source(1), Mode::Ok);
    a.set_mode_from(&source(2), Mode::Ok);
    all_answer(&nodes, A, Duration::from_secs(10), "paths repaired").await;
    for n in [n1, n2, n3] {
        n.stop().await;
    }
}

#[tokio::test]
async fn a_drain_on_one_node_drains_every_node_and_outlives_it() {
    let etcd = Etcd::start();
    let (fleet, _a, _b) = fleet_of_three("drain", &etcd, 0.5).await;
    let (n1, n2, n3) = fleet.three().await;
    until(Duration::from_secs(10), "three vantages", async || {
        vantages(&n3).await == 3
    })
    .await;
    all_answer(&[&n1, &n2, &n3], A, Duration::from_secs(10), "all healthy").await;

    let admin = n1.running.admin_addr;
    let (code, body) = post(
        &format!("http://{admin}/api/v1/pools/a/endpoints/{A}/drain"),
        None,
    )
    .await;
    assert_eq!(code, 200, "{body}");
    // Applied on node 1 before the call returned; on the others within the
    // watch delay (tens of ms here; the bound is generous for a busy CI).
    assert_eq!(
        answer(&n1, None).await,
        vec![B.parse::<IpAddr>().expect("ip")]
    );
    all_answer(&[&n2, &n3], B, Duration::from_secs(3), "drained on node 1").await;
    let drains = cluster(&n3).await["drains"].clone();
    assert_eq!(drains[0]["pool"], "a", "{drains}");

    // The drain has no lease: node 1 leaving does not undo it.
    n1.stop().await;
    until(Duration::from_secs(10), "node 1 gone", async || {
        vantages(&n3).await == 2
    })
    .await;
    all_keep_answering(
        &[&n2, &n3],
        B,
        Duration::from_secs(1),
        "drain outlives its maker",
    )
    .await;

    let admin = n2.running.admin_addr;
    let (code, body) = post(
        &format!("http://{admin}/api/v1/pools/a/endpoints/{A}/undrain"),
        None,
    )
    .await;
    assert_eq!(code, 200, "{body}");
    all_answer(
        &[&n2, &n3],
        A,
        Duration::from_secs(3),
        "undrained on node 2",
    )
    .await;
    n2.stop().await;
    n3.stop().await;
}

#[tokio::test]
async fn latency_follows_the_vantage_nearest_the_client() {
    let etcd = Etcd::start();
    let (a, b) = (Origin::start().await, Origin::start().await);
    let fleet = Fleet {
        etcd_url: etcd.url(),
        prefix: prefix("nearest"),
        a: a.addr(),
        b: b.addr(),
        policy: "latency",
        quorum: 0.5,
        extra: String::new(),
    };
    // Node 1 in Frankfurt sees pool a fast and b slow; node 2 in Singapore
    // the other way round, as real paths would.
    a.set_mode_from(&source(2), Mode::Slow(Duration::from_millis(120)));
    b.set_mode_from(&source(1), Mode::Slow(Duration::from_millis(120)));
    let n1 = fleet.node(1, Some((50.1, 8.7))).await;
    let n2 = fleet.node(2, Some((1.35, 103.8))).await;
    until(
        Duration::from_secs(10),
        "two vantages with latencies",
        async || vantages(&n1).await == 2,
    )
    .await;
    let (germany, japan) = ("5.9.1.0/24", "203.0.113.0/24");
    let (a_ip, b_ip): (IpAddr, IpAddr) = (A.parse().expect("ip"), B.parse().expect("ip"));
    eventually_every(
        Duration::from_secs(10),
        Duration::from_millis(200),
        "DE → a and JP → b from both nodes",
        async || {
            let got = [
                answer(&n1, Some(germany)).await,
                answer(&n2, Some(germany)).await,
                answer(&n1, Some(japan)).await,
                answer(&n2, Some(japan)).await,
            ];
            if got == [vec![a_ip], vec![a_ip], vec![b_ip], vec![b_ip]] {
                Ok(())
            } else {
                Err(format!("got {got:?}"))
            }
        },
    )
    .await;
    // explain says whose figures it used.
    let url = format!(
        "http://{}/api/v1/explain?name=www.example.test&client=203.0.113.7",
        n1.running.admin_addr
    );
    let (code, body) = get(&url).await;
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("nearest vantage to the client: n2"), "{body}");
    n1.stop().await;
    n2.stop().await;
}

#[tokio::test]
async fn a_node_running_another_config_is_flagged() {
    let etcd = Etcd::start();
    let (mut fleet, _a, _b) = fleet_of_three("skew", &etcd, 0.5).await;
    let n1 = fleet.node(1, None).await;
    fleet.extra = "\n[monitors.other]\ntype = \"tcp\"\n".to_string();
    let n2 = fleet.node(2, None).await;
    until(Duration::from_secs(10), "config skew flagged", async || {
        cluster(&n1).await["config_skew"] == true
    })
    .await;
    let c = cluster(&n1).await;
    let n2_view = node_named(&c, "n2");
    assert_eq!(n2_view["config_skew"], true, "{c}");
    let (_, metrics) = get(&format!("http://{}/metrics", n1.running.admin_addr)).await;
    assert!(
        metrics.contains("geosteer_cluster_config_skew 1"),
        "{metrics}"
    );
    n1.stop().await;
    n2.stop().await;
}

#[tokio::test]
async fn a_fleet_of_two_steers_each_family_alike_when_a_dual_stack_pool_loses_ipv4() {
    let etcd = Etcd::start();
    let (mut fleet, a, _b) = fleet_of_three("family", &etcd, 0.5).await;
    // A dual-stack pool whose IPv4 endpoint is probed on origin a and IPv6
    // endpoint on origin b, before pool b (IPv4 only).
    fleet.extra = format!(
        "\n[pools.ds]\nmonitor = \"web\"\nendpoints = [{{ address = \"192.0.2.5\", probe = \"{}\" }}, {{ address = \"2001:db8::5\", probe = \"{}\" }}]\n\n[[balance]]\nname = \"ds.example.test\"\npolicy = \"failover\"\npools = [\"ds\", \"b\"]\nttl = 30\n",
        fleet.a, fleet.b
    );
    let (n1, n2) = (fleet.node(1, None).await, fleet.node(2, None).await);
    until(Duration::from_secs(10), "two vantages", async || {
        vantages(&n2).await == 2
    })
    .await;
    let ask = |qtype| Ask::new("ds.example.test.", qtype);
    let both = async |qtype| {
        let mut out = Vec::new();
        for n in [&n1, &n2] {
            out.push(dig::addrs(&dig::udp(n.dns, &ask(qtype)).await));
        }
        out
    };
    let v4: IpAddr = "192.0.2.5".parse().expect("ip");
    let v6: IpAddr = "2001:db8::5".parse().expect("ip");
    let b: IpAddr = B.parse().expect("ip");
    until(
        Duration::from_secs(10),
        "ds answers A on both nodes",
        async || both(RecordType::A).await == vec![vec![v4], vec![v4]],
    )
    .await;
    // Origin a dies for both vantages: the IPv4 endpoint is down by quorum.
    a.set_mode_from(&source(1), Mode::Close);
    a.set_mode_from(&source(2), Mode::Close);
    until(
        Duration::from_secs(10),
        "A moves to pool b on both nodes",
        async || both(RecordType::A).await == vec![vec![b], vec![b]],
    )
    .await;
    assert_eq!(
        both(RecordType::AAAA).await,
        vec![vec![v6], vec![v6]],
        "AAAA still from the dual-stack pool on both nodes"
    );
    // Twenty clients, each answered alike by both nodes.
    for i in 0..20 {
        let subnet = format!("198.51.{i}.0/24");
        for qtype in [RecordType::A, RecordType::AAAA] {
            let q = ask(qtype).ecs(&subnet);
            let one = dig::addrs(&dig::udp(n1.dns, &q).await);
            let two = dig::addrs(&dig::udp(n2.dns, &q).await);
            assert_eq!(one, two, "client {subnet} {qtype}");
            assert_eq!(one, vec![if qtype == RecordType::A { b } else { v6 }]);
        }
    }
    for n in [n1, n2] {
        n.stop().await;
    }
}
