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
use crate::harness::eventually::{eventually_every, until};
use crate::harness::geosteer::{TestServer, ZONE, write_config};
use crate::harness::http::{get, get_json, post};
use crate::harness::mmdb;
use crate::harness::origin::{Mode, Origin};

mod access;
mod cname;
mod config;
mod dataloss;
mod lifecycle;
mod load;
mod operations;
mod quorum;
mod runtime;

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
        self.start(self.config(n, location)).await
    }

    /// Node `n` with `cluster` lines added to its `[cluster]` table
    /// (credentials, TLS files).
    async fn node_with(&self, n: u8, cluster: &str) -> TestServer {
        let config = self.config(n, None);
        self.start(config.replace("[cluster]\n", &format!("[cluster]\n{cluster}")))
            .await
    }

    async fn start(&self, config: String) -> TestServer {
        let db = mmdb::standard_country_db();
        TestServer::start(&config, &[("country.mmdb", &db)]).await
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
    let what = format!("{why}: wanted {want} from every node");
    eventually_every(within, Duration::from_millis(100), &what, async || {
        let mut got = Vec::new();
        for n in nodes {
            got.push(answer(n, None).await);
        }
        if got.iter().all(|a| a == &vec![want]) {
            Ok(())
        } else {
            Err(format!("got {got:?}"))
        }
    })
    .await
}

/// Holds for `during`: every node keeps answering `want`.
async fn all_keep_answering(nodes: &[&TestServer], want: &str, during: Duration, why: &str) {
    let want: IpAddr = want.parse().expect("ip");
    let end = Instant::now() + during;
    while Instant::now() < end {
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

async fn fleet_of_three(test: &str, etcd: &Etcd, quorum: f64) -> (Fleet, Origin, Origin) {
    let (a, b) = (Origin::start().await, Origin::start().await);
    let fleet = Fleet {
        etcd_url: etcd.url(),
        prefix: prefix(test),
        a: a.addr(),
        b: b.addr(),
        policy: "failover",
        quorum,
        extra: String::new(),
    };
    (fleet, a, b)
}

/// A node as a separate process, so that it can die without a goodbye
/// (and has a log of its own).
struct ProcessNode {
    child: Child,
    config: std::path::PathBuf,
    log: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl ProcessNode {
    /// Its log (standard error, at the default level) goes to a file.
    fn start(config: &str) -> ProcessNode {
        let db = mmdb::standard_country_db();
        let (dir, path) = write_config(
            config,
            &[
                ("example.test.zone", ZONE.as_bytes()),
                ("country.mmdb", &db),
            ],
        );
        let log = dir.path().join("geosteer.log");
        let child = Command::new(env!("CARGO_BIN_EXE_geosteer"))
            .args(["serve", "--config"])
            .arg(&path)
            .env_remove("GEOSTEER_LOG")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("start geosteer");
        ProcessNode {
            child,
            config: path,
            log,
            _dir: dir,
        }
    }

    /// What it logged so far.
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Replaces its config file and reloads it (SIGHUP).
    fn reload_with(&self, config: &str) {
        std::fs::write(&self.config, config).expect("write config");
        let status = Command::new("kill")
            .args(["-HUP", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -HUP");
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
