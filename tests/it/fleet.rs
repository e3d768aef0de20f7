//! A fleet: three geosteer nodes sharing health through a real etcd. Each
//! node probes from its own source address (127.0.0.11, .12, .13), and the
//! origins answer each vantage as the test says, so one node's broken path
//! can be told apart from a dead origin.

use std::net::{IpAddr, SocketAddr};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hickory_proto::rr::RecordType;

use crate::harness::dig::{self, Ask};
use crate::harness::etcd::Etcd;
use crate::harness::geosteer::{TestServer, ZONE, write_config};
use crate::harness::http::{get, get_json, post};
use crate::harness::mmdb;
use crate::harness::vantage_origin::{Path, VantageOrigin};

const A: &str = "192.0.2.1";
const B: &str = "192.0.2.2";

/// The source address node `n` (1-based) probes from.
fn source(n: u8) -> String {
    format!("127.0.0.{}", 10 + n)
}

/// A unique etcd prefix per test, so tests never see each other's keys.
fn prefix(test: &str) -> String {
    format!("/geosteer-test-{test}-{}", std::process::id())
}

struct Fleet {
    etcd_url: String,
    prefix: String,
    a: SocketAddr,
    b: SocketAddr,
    policy: &'static str,
    quorum: f64,
    /// Extra config lines (outside [server] and [cluster]).
    extra: String,
}

impl Fleet {
    fn config(&self, n: u8, location: Option<(f64, f64)>) -> String {
        let location = location
            .map(|(lat, lon)| format!("location = [{lat}, {lon}]\n"))
            .unwrap_or_default();
        format!(
            r#"[server]
dns_listen = ["127.0.0.1:0"]
admin_listen = "127.0.0.1:0"
udp_workers = 1
probe_source = "{source}"
geoip = "country.mmdb"

[zones]
"example.test" = "example.test.zone"

[monitors.web]
type = "http"
path = "/healthz"
interval = "300ms"
timeout = "250ms"
rise = 1
fall = 1
quorum = {quorum}

[pools.a]
monitor = "web"
location = [50.1, 8.7]
endpoints = [{{ address = "{A}", probe = "{a}" }}]

[pools.b]
monitor = "web"
location = [1.35, 103.8]
endpoints = [{{ address = "{B}", probe = "{b}" }}]

[[balance]]
name = "www.example.test"
policy = "{policy}"
pools = ["a", "b"]
ttl = 5
{extra}
[cluster]
etcd = ["{etcd}"]
node = "n{n}"
prefix = "{prefix}"
lease = "2s"
{location}"#,
            source = source(n),
            quorum = self.quorum,
            a = self.a,
            b = self.b,
            policy = self.policy,
            extra = self.extra,
            etcd = self.etcd_url,
            prefix = self.prefix,
        )
    }

    /// Nodes 1, 2 and 3, without locations.
    async fn three(&self) -> (TestServer, TestServer, TestServer) {
        (
            self.node(1, None).await,
            self.node(2, None).await,
            self.node(3, None).await,
        )
    }

    async fn node(&self, n: u8, location: Option<(f64, f64)>) -> TestServer {
        let db = mmdb::standard_country_db();
        TestServer::start(&self.config(n, location), &[("country.mmdb", &db)]).await
    }
}

async fn answer(server: &TestServer, ecs: Option<&str>) -> Vec<IpAddr> {
    let mut ask = Ask::new("www.example.test.", RecordType::A);
    if let Some(subnet) = ecs {
        ask = ask.ecs(subnet);
    }
    dig::addrs(&dig::udp(server.dns, &ask).await)
}

/// Waits (bounded) until every node answers `want` for the plain query.
async fn all_answer(nodes: &[&TestServer], want: &str, within: Duration, why: &str) {
    let want: IpAddr = want.parse().expect("ip");
    let deadline = Instant::now() + within;
    loop {
        let mut got = Vec::new();
        for n in nodes {
            got.push(answer(n, None).await);
        }
        if got.iter().all(|a| a == &vec![want]) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{why}: wanted {want} from every node, got {got:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Holds for `during`: every node keeps answering `want`.
async fn all_keep_answering(nodes: &[&TestServer], want: &str, during: Duration, why: &str) {
    let want: IpAddr = want.parse().expect("ip");
    let until = Instant::now() + during;
    while Instant::now() < until {
        for (i, n) in nodes.iter().enumerate() {
            let got = answer(n, None).await;
            assert_eq!(got, vec![want], "{why}: node {} answered {got:?}", i + 1);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn cluster(node: &TestServer) -> serde_json::Value {
    let (status, body) = get_json(&format!(
        "http://{}/api/v1/cluster",
        node.running.admin_addr
    ))
    .await;
    assert_eq!(status, 200, "GET /api/v1/cluster: {body}");
    body
}

async fn wait_for(what: &str, within: Duration, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Some vantage votes an endpoint down that others see up.
async fn disputed(node: &TestServer) -> bool {
    cluster(node).await["disputed"]
        .as_array()
        .is_some_and(|d| !d.is_empty())
}

/// One node's entry in a `/api/v1/cluster` answer (null when absent).
fn node_named(cluster: &serde_json::Value, name: &str) -> serde_json::Value {
    cluster["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|n| n["name"] == name)
        .cloned()
        .unwrap_or_default()
}

async fn vantages(node: &TestServer) -> u64 {
    cluster(node).await["vantages"].as_u64().unwrap_or(0)
}

async fn fleet_of_three(
    test: &str,
    etcd: &Etcd,
    quorum: f64,
) -> (Fleet, VantageOrigin, VantageOrigin) {
    let (a, b) = (VantageOrigin::start().await, VantageOrigin::start().await);
    let fleet = Fleet {
        etcd_url: etcd.url(),
        prefix: prefix(test),
        a: a.addr,
        b: b.addr,
        policy: "failover",
        quorum,
        extra: String::new(),
    };
    (fleet, a, b)
}

#[tokio::test]
async fn one_broken_vantage_moves_nothing_two_move_every_node() {
    let etcd = Etcd::start();
    let (fleet, a, _b) = fleet_of_three("quorum", &etcd, 0.5).await;
    let (n1, n2, n3) = fleet.three().await;
    let nodes = [&n1, &n2, &n3];
    wait_for("three vantages", Duration::from_secs(10), async || {
        vantages(&n1).await == 3
    })
    .await;
    all_answer(&nodes, A, Duration::from_secs(10), "all healthy").await;

    // Node 1 loses its path to origin a: it sees a down, nobody else does.
    a.set(&source(1), Path::Close);
    wait_for(
        "node 1's own verdict: down",
        Duration::from_secs(10),
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
    a.set(&source(2), Path::Hang);
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
    a.set(&source(1), Path::Ok);
    a.set(&source(2), Path::Ok);
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
    wait_for("three vantages", Duration::from_secs(10), async || {
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
    wait_for("node 1 gone", Duration::from_secs(10), async || {
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

/// A node as a separate process, so that it can die without a goodbye.
struct ProcessNode {
    child: Child,
    _dir: tempfile::TempDir,
}

impl ProcessNode {
    fn start(config: &str) -> ProcessNode {
        let db = mmdb::standard_country_db();
        let (dir, path) = write_config(
            config,
            &[
                ("example.test.zone", ZONE.as_bytes()),
                ("country.mmdb", &db),
            ],
        );
        let child = Command::new(env!("CARGO_BIN_EXE_geosteer"))
            .args(["serve", "--config"])
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start geosteer");
        ProcessNode { child, _dir: dir }
    }
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ProcessNode {
    fn drop(&mut self) {
        self.kill();
    }
}

#[tokio::test]
async fn a_killed_node_s_votes_expire_with_its_lease() {
    let etcd = Etcd::start();
    // quorum 0.4: one of three is not enough (0.33), one of two is (0.5).
    let (fleet, a, _b) = fleet_of_three("kill", &etcd, 0.4).await;
    let n1 = fleet.node(1, None).await;
    let mut n2 = ProcessNode::start(&fleet.config(2, None));
    let n3 = fleet.node(3, None).await;
    wait_for("three vantages", Duration::from_secs(15), async || {
        vantages(&n1).await == 3
    })
    .await;
    a.set(&source(1), Path::Close);
    wait_for(
        "node 1's vote counted",
        Duration::from_secs(10),
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

#[tokio::test]
async fn losing_etcd_never_stops_answers_and_the_fleet_converges_after() {
    let mut etcd = Etcd::start();
    let (fleet, a, _b) = fleet_of_three("partition", &etcd, 0.5).await;
    let (n1, n2, n3) = fleet.three().await;
    let nodes = [&n1, &n2, &n3];
    wait_for("three vantages", Duration::from_secs(10), async || {
        vantages(&n1).await == 3
    })
    .await;
    a.set(&source(1), Path::Close);
    wait_for(
        "node 1's vote counted",
        Duration::from_secs(10),
        async || disputed(&n2).await,
    )
    .await;

    etcd.kill();
    // Every node keeps answering, and says it is cut off.
    wait_for("etcd loss noticed", Duration::from_secs(10), async || {
        cluster(&n2).await["connected"] == false
    })
    .await;
    let (_, metrics) = get(&format!("http://{}/metrics", n2.running.admin_addr)).await;
    assert!(
        metrics.contains("geosteer_cluster_connected 0"),
        "{metrics}"
    );
    // Once the others' leases would have expired, each node decides alone:
    // node 1 steers away (its own path is broken), the others stay.
    wait_for(
        "remote verdicts expired",
        Duration::from_secs(10),
        async || vantages(&n1).await == 1,
    )
    .await;
    assert_eq!(
        answer(&n1, None).await,
        vec![B.parse::<IpAddr>().expect("ip")]
    );
    assert_eq!(
        answer(&n2, None).await,
        vec![A.parse::<IpAddr>().expect("ip")]
    );

    // etcd comes back: every node re-publishes and re-reads, and the quorum
    // (1 of 3) puts node 1 back in line with the others.
    etcd.restart();
    wait_for(
        "three vantages again",
        Duration::from_secs(15),
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
async fn latency_follows_the_vantage_nearest_the_client() {
    let etcd = Etcd::start();
    let (a, b) = (VantageOrigin::start().await, VantageOrigin::start().await);
    let fleet = Fleet {
        etcd_url: etcd.url(),
        prefix: prefix("nearest"),
        a: a.addr,
        b: b.addr,
        policy: "latency",
        quorum: 0.5,
        extra: String::new(),
    };
    // Node 1 in Frankfurt sees pool a fast and b slow; node 2 in Singapore
    // the other way round, as real paths would.
    a.set(&source(2), Path::Slow(Duration::from_millis(120)));
    b.set(&source(1), Path::Slow(Duration::from_millis(120)));
    let n1 = fleet.node(1, Some((50.1, 8.7))).await;
    let n2 = fleet.node(2, Some((1.35, 103.8))).await;
    wait_for(
        "two vantages with latencies",
        Duration::from_secs(10),
        async || vantages(&n1).await == 2,
    )
    .await;
    let (germany, japan) = ("5.9.1.0/24", "203.0.113.0/24");
    let (a_ip, b_ip): (IpAddr, IpAddr) = (A.parse().expect("ip"), B.parse().expect("ip"));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = [
            answer(&n1, Some(germany)).await,
            answer(&n2, Some(germany)).await,
            answer(&n1, Some(japan)).await,
            answer(&n2, Some(japan)).await,
        ];
        if got == [vec![a_ip], vec![a_ip], vec![b_ip], vec![b_ip]] {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "DE → a and JP → b from both nodes, got {got:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
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
    wait_for("config skew flagged", Duration::from_secs(10), async || {
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
async fn a_reload_keeps_the_lease_and_withdraws_removed_endpoints() {
    let etcd = Etcd::start();
    let (fleet, _a, _b) = fleet_of_three("reload", &etcd, 0.5).await;
    let (n1, n2) = (fleet.node(1, None).await, fleet.node(2, None).await);
    wait_for("two vantages", Duration::from_secs(10), async || {
        vantages(&n2).await == 2
    })
    .await;
    let votes_on_a = async |node: &TestServer| {
        let (_, status) =
            get_json(&format!("http://{}/api/v1/status", node.running.admin_addr)).await;
        status["pools"][0]["endpoints"][0]["votes"]["total"].as_u64()
    };
    wait_for("both vote on a", Duration::from_secs(10), async || {
        votes_on_a(&n2).await == Some(2)
    })
    .await;

    // Node 1 drops a's endpoint (a new address in its place): its verdict on
    // the old one is withdrawn, the new one is published after its first
    // probe, and node 1 stays a vantage throughout (same lease).
    let text = std::fs::read_to_string(n1.config_path()).expect("config");
    std::fs::write(n1.config_path(), text.replace(A, "192.0.2.3")).expect("write config");
    n1.running.reload().await.expect("reload");
    wait_for(
        "node 1's old verdict withdrawn",
        Duration::from_secs(10),
        async || votes_on_a(&n2).await == Some(1),
    )
    .await;
    assert_eq!(vantages(&n2).await, 2, "node 1 kept its lease");
    let (_, status) = get_json(&format!("http://{}/api/v1/status", n1.running.admin_addr)).await;
    assert_eq!(status["pools"][0]["endpoints"][0]["address"], "192.0.2.3");
    wait_for(
        "node 1's new endpoint published",
        Duration::from_secs(10),
        async || votes_on_a(&n1).await == Some(1),
    )
    .await;
    n1.stop().await;
    n2.stop().await;
}

#[tokio::test]
async fn nodes_log_in_to_an_etcd_with_authentication() {
    let etcd = Etcd::start();
    // root user and role, then authentication on (etcd's own API).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    for (path, body) in [
        (
            "/v3/auth/user/add",
            r#"{"name":"root","password":"s3cret"}"#,
        ),
        ("/v3/auth/role/add", r#"{"name":"root"}"#),
        ("/v3/auth/user/grant", r#"{"user":"root","role":"root"}"#),
        ("/v3/auth/enable", "{}"),
    ] {
        let r = http
            .post(format!("{}{path}", etcd.url()))
            .body(body)
            .send()
            .await
            .expect("etcd auth setup");
        assert!(r.status().is_success(), "{path}: {}", r.status());
    }
    let (fleet, _a, _b) = fleet_of_three("auth", &etcd, 0.5).await;
    let with =
        |password: &str| format!("[cluster]\nusername = \"root\"\npassword = \"{password}\"\n");
    let config = |fleet: &Fleet, n: u8, password: &str| {
        fleet
            .config(n, None)
            .replace("[cluster]\n", &with(password))
    };
    let db = mmdb::standard_country_db();
    let files: [(&str, &[u8]); 1] = [("country.mmdb", &db)];
    let n1 = TestServer::start(&config(&fleet, 1, "s3cret"), &files).await;
    let n2 = TestServer::start(&config(&fleet, 2, "s3cret"), &files).await;
    wait_for(
        "two authenticated vantages",
        Duration::from_secs(10),
        async || vantages(&n1).await == 2 && vantages(&n2).await == 2,
    )
    .await;
    // A wrong password: the node cannot join, says so, and still answers.
    let n3 = TestServer::start(&config(&fleet, 3, "wrong"), &files).await;
    let c = cluster(&n3).await;
    assert_eq!(c["connected"], false, "{c}");
    assert_eq!(
        answer(&n3, None).await,
        vec![A.parse::<IpAddr>().expect("ip")]
    );
    assert_eq!(vantages(&n1).await, 2, "n3 never counted");
    for n in [n1, n2, n3] {
        n.stop().await;
    }
}

#[tokio::test]
async fn nodes_speak_tls_to_etcd_with_client_certificates() {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let pki = tempfile::tempdir().expect("tempdir");
    let write = |name: &str, pem: String| {
        let path = pki.path().join(name);
        std::fs::write(&path, pem).expect("write pem");
        path
    };
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().expect("ca key");
    let ca_cert = ca_params.self_signed(&ca_key).expect("ca cert");
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf = |names: Vec<String>| {
        let key = KeyPair::generate().expect("key");
        let cert = CertificateParams::new(names)
            .expect("params")
            .signed_by(&key, &issuer)
            .expect("sign");
        (cert.pem(), key.serialize_pem())
    };
    let ca = write("ca.pem", ca_cert.pem());
    let (server_cert, server_key) = leaf(vec!["127.0.0.1".into(), "localhost".into()]);
    let (client_cert, client_key) = leaf(vec!["geosteer".into()]);
    let etcd = Etcd::start_tls(
        ca.clone(),
        write("server.pem", server_cert),
        write("server-key.pem", server_key),
    );
    let client = write("client.pem", client_cert);
    let client_key = write("client-key.pem", client_key);
    let (fleet, _a, _b) = fleet_of_three("tls", &etcd, 0.5).await;
    assert!(fleet.etcd_url.starts_with("https://"));
    let tls = format!(
        "[cluster]\nca = \"{}\"\ncert = \"{}\"\nkey = \"{}\"\n",
        ca.display(),
        client.display(),
        client_key.display()
    );
    let db = mmdb::standard_country_db();
    let files: [(&str, &[u8]); 1] = [("country.mmdb", &db)];
    let n1 = TestServer::start(&fleet.config(1, None).replace("[cluster]\n", &tls), &files).await;
    let n2 = TestServer::start(&fleet.config(2, None).replace("[cluster]\n", &tls), &files).await;
    wait_for(
        "two vantages over TLS",
        Duration::from_secs(10),
        async || vantages(&n1).await == 2 && vantages(&n2).await == 2,
    )
    .await;
    // Without a client certificate etcd turns the node away.
    let no_cert = format!("[cluster]\nca = \"{}\"\n", ca.display());
    let n3 = TestServer::start(
        &fleet.config(3, None).replace("[cluster]\n", &no_cert),
        &files,
    )
    .await;
    assert_eq!(cluster(&n3).await["connected"], false);
    assert_eq!(vantages(&n1).await, 2, "n3 never counted");
    for n in [n1, n2, n3] {
        n.stop().await;
    }
}
