//! One config for the fleet through etcd: `geosteer config push` (the real
//! command) writes a revision, three nodes whose local files say `[cluster]
//! config = "etcd"` load it, a revision that does not load on one node
//! leaves that node on the old one and flagged, rollback, and a node that
//! starts while etcd is down serves the revision it ran last.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use hickory_proto::rr::RecordType;

use super::{node_named, prefix};
use crate::harness::dig::{self, Ask};
use crate::harness::etcd::Etcd;
use crate::harness::eventually::eventually;
use crate::harness::geosteer::ZONE;
use crate::harness::keys::{self, Alg};
use crate::harness::mmdb;

const A: &str = "192.0.2.1";
const B: &str = "192.0.2.2";

/// The fleet's tables, as an operator keeps them in one file: `order` is
/// the failover order of www.example.test; `extra` more tables.
fn fleet_config(order: &str, extra: &str) -> String {
    format!(
        r#"[server]
dns_listen = ["127.0.0.1:0"]
admin_listen = "127.0.0.1:0"

[zones]
"example.test" = "example.test.zone"

[pools.a]
endpoints = [{{ address = "{A}" }}]

[pools.b]
endpoints = [{{ address = "{B}" }}]

[[balance]]
name = "www.example.test"
policy = "failover"
pools = [{order}]
ttl = 5
{extra}"#
    )
}

/// The operator's working copy: the full config and its zone file.
struct Ops {
    dir: tempfile::TempDir,
    etcd: String,
    prefix: String,
}

impl Ops {
    fn new(etcd: &Etcd, test: &str) -> Ops {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("example.test.zone"), ZONE).expect("zone");
        Ops {
            dir,
            etcd: etcd.url(),
            prefix: prefix(test),
        }
    }

    fn write(&self, config: &str) -> PathBuf {
        let path = self.dir.path().join("geosteer.toml");
        std::fs::write(&path, config).expect("config");
        path
    }

    /// `geosteer config ARGS --etcd URL --prefix P`: (exit code, stdout + stderr).
    fn run(&self, args: &[&str]) -> (i32, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_geosteer"))
            .arg("config")
            .args(args)
            .args(["--etcd", &self.etcd, "--prefix", &self.prefix])
            .output()
            .expect("run geosteer config");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code().unwrap_or(-1), text)
    }

    fn push(&self, config: &str) -> (i32, String) {
        let path = self.write(config);
        self.run(&["push", "--config", &path.to_string_lossy()])
    }
}

/// A node: its local file holds only `[server]` and `[cluster]`.
struct Node {
    running: geosteer::app::Running,
    dir: tempfile::TempDir,
}

impl Node {
    fn local(n: u8, ops: &Ops) -> String {
        format!(
            r#"[server]
dns_listen = ["127.0.0.1:0"]
admin_listen = "127.0.0.1:0"
udp_workers = 1
geoip = "country.mmdb"

[cluster]
etcd = ["{etcd}"]
node = "n{n}"
prefix = "{prefix}"
lease = "2s"
config = "etcd"
config_dir = "state"
"#,
            etcd = ops.etcd,
            prefix = ops.prefix,
        )
    }

    /// Writes node `n`'s local file (and `files`) to a fresh folder and starts it.
    async fn start(n: u8, ops: &Ops, files: &[(&str, &[u8])]) -> Node {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("country.mmdb"), mmdb::standard_country_db()).expect("mmdb");
        for (name, data) in files {
            std::fs::write(dir.path().join(name), data).expect("file");
        }
        std::fs::write(dir.path().join("geosteer.toml"), Node::local(n, ops)).expect("local");
        Node::start_in(dir).await
    }

    async fn start_in(dir: tempfile::TempDir) -> Node {
        let running = geosteer::app::start(&dir.path().join("geosteer.toml"))
            .await
            .unwrap_or_else(|e| panic!("node did not start: {e}"));
        Node { running, dir }
    }

    async fn answer(&self) -> Vec<IpAddr> {
        let ask = Ask::new("www.example.test.", RecordType::A);
        dig::addrs(&dig::udp(self.running.dns_addrs[0], &ask).await)
    }

    async fn cluster(&self) -> serde_json::Value {
        let admin = self.running.admin_addr;
        let (status, body) =
            crate::harness::http::get_json(&format!("http://{admin}/api/v1/cluster")).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    async fn stop(self) -> tempfile::TempDir {
        self.running.stop().await;
        self.dir
    }
}

async fn all_answer(nodes: &[&Node], want: &str, within: Duration, why: &str) {
    let want: IpAddr = want.parse().expect("ip");
    eventually(within, why, async || {
        let mut got = Vec::new();
        for n in nodes {
            got.push(n.answer().await);
        }
        if got.iter().all(|a| a == &vec![want]) {
            Ok(())
        } else {
            Err(format!("answers {got:?}"))
        }
    })
    .await
}

#[tokio::test]
async fn a_push_reaches_every_node_and_so_does_a_rollback() {
    let etcd = Etcd::start();
    let ops = Ops::new(&etcd, "cfg-push");
    let (code, out) = ops.push(&fleet_config("\"a\", \"b\"", ""));
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("pushed revision 1"), "{out}");
    assert!(
        out.contains("[server]"),
        "the local tables are named: {out}"
    );

    let n1 = Node::start(1, &ops, &[]).await;
    let n2 = Node::start(2, &ops, &[]).await;
    let n3 = Node::start(3, &ops, &[]).await;
    let nodes = [&n1, &n2, &n3];
    all_answer(&nodes, A, Duration::from_secs(5), "revision 1 everywhere").await;

    // diff names the change before the push.
    let next = fleet_config("\"b\", \"a\"", "");
    let path = ops.write(&next);
    let (code, out) = ops.run(&["diff", "--config", &path.to_string_lossy()]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("-pools = [\"a\", \"b\"]") && out.contains("+pools = [\"b\", \"a\"]"),
        "diff shows the changed line: {out}"
    );

    let (code, out) = ops.push(&next);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("pushed revision 2"), "{out}");
    all_answer(&nodes, B, Duration::from_secs(5), "revision 2 everywhere").await;
    // The same config again is not a new revision.
    let (code, out) = ops.push(&next);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("nothing to push"), "{out}");

    let (code, out) = ops.run(&["history"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("*    2"), "revision 2 is current: {out}");
    assert!(out.contains("     1"), "revision 1 is kept: {out}");

    let (code, out) = ops.run(&["rollback", "1"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("pushed revision 3"), "{out}");
    all_answer(&nodes, A, Duration::from_secs(5), "the rollback everywhere").await;
    let (_, out) = ops.run(&["history"]);
    assert!(out.contains("rollback to 1"), "{out}");

    // Every node says which revision it serves; nobody is behind.
    eventually(
        Duration::from_secs(5),
        "every node reports revision 3",
        async || {
            let c = n1.cluster().await;
            let revs: Vec<_> = ["n1", "n2", "n3"]
                .iter()
                .map(|n| node_named(&c, n)["config_revision"].as_u64())
                .collect();
            if revs == [Some(3); 3] && c["config_behind"] == false {
                Ok(())
            } else {
                Err(format!("revisions {revs:?}, behind {}", c["config_behind"]))
            }
        },
    )
    .await;
    for n in [n1, n2, n3] {
        n.stop().await;
    }
}

#[tokio::test]
async fn an_invalid_push_is_refused_and_changes_nothing() {
    let etcd = Etcd::start();
    let ops = Ops::new(&etcd, "cfg-invalid");
    let (code, out) = ops.push(&fleet_config("\"a\", \"b\"", ""));
    assert_eq!(code, 0, "{out}");
    let (code, out) = ops.push(&fleet_config("\"a\", \"nowhere\"", ""));
    assert_eq!(code, 1, "an invalid config is refused: {out}");
    assert!(
        out.contains("nowhere") && out.contains("nothing pushed"),
        "names the problem: {out}"
    );
    let (_, out) = ops.run(&["history"]);
    assert!(
        out.contains("*    1") && !out.contains("    2  "),
        "revision 1 stays current: {out}"
    );

    // A node's local file is not a fleet config.
    let local = ops.dir.path().join("local.toml");
    std::fs::write(&local, Node::local(1, &ops)).expect("local");
    let (code, out) = ops.run(&["push", "--config", &local.to_string_lossy()]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("local file"), "{out}");

    // etcd unreachable: exit status 3.
    let out = Command::new(env!("CARGO_BIN_EXE_geosteer"))
        .args(["config", "history", "--etcd", "http://127.0.0.1:1"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(3), "{out:?}");
}

#[tokio::test]
async fn a_revision_that_does_not_load_on_one_node_leaves_it_on_the_old_one_flagged() {
    let etcd = Etcd::start();
    let ops = Ops::new(&etcd, "cfg-fails");
    let (code, out) = ops.push(&fleet_config("\"a\", \"b\"", ""));
    assert_eq!(code, 0, "{out}");
    // Revision 2 signs the zone with a key each node keeps beside its
    // local file; node 3 was not given it.
    let keydir = tempfile::tempdir().expect("tempdir");
    let key = keys::generate(keydir.path(), "zsk", Alg::EcdsaP256);
    let pem = std::fs::read(&key).expect("key");
    std::fs::write(ops.dir.path().join("zsk.pem"), &pem).expect("key for the push check");
    let n1 = Node::start(1, &ops, &[("zsk.pem", &pem)]).await;
    let n2 = Node::start(2, &ops, &[("zsk.pem", &pem)]).await;
    let n3 = Node::start(3, &ops, &[]).await;
    all_answer(&[&n1, &n2, &n3], A, Duration::from_secs(5), "revision 1").await;

    let signed = fleet_config(
        "\"b\", \"a\"",
        "\n[dnssec.\"example.test\"]\nkeys = [\"zsk.pem\"]\n",
    );
    let (code, out) = ops.push(&signed);
    assert_eq!(code, 0, "{out}");
    all_answer(
        &[&n1, &n2],
        B,
        Duration::from_secs(5),
        "revision 2 on n1, n2",
    )
    .await;
    // n3 keeps serving revision 1, and says why it does not take 2.
    eventually(Duration::from_secs(5), "n3 flagged behind", async || {
        let c = n1.cluster().await;
        let n3v = node_named(&c, "n3");
        let error = n3v["config_failed"]["error"].as_str().unwrap_or_default();
        if n3v["config_behind"] == true
            && n3v["config_revision"] == 1
            && n3v["config_failed"]["revision"] == 2
            && error.contains("zsk.pem")
            && c["config_behind"] == true
        {
            Ok(())
        } else {
            Err(format!("n3 as n1 sees it: {n3v}"))
        }
    })
    .await;
    assert_eq!(n3.answer().await, vec![A.parse::<IpAddr>().expect("ip")]);
    let own = n3.cluster().await;
    assert_eq!(own["config_revision"], 1, "{own}");

    // `status` says it too.
    // In-process nodes: the command runs off the runtime that serves them.
    let admin = n1.running.admin_addr.to_string();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_geosteer"))
            .args(["status", "--admin", &admin])
            .output()
            .expect("status")
    })
    .await
    .expect("join");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("CONFIG BEHIND"), "{text}");
    assert!(text.contains("config rev 2 does not load on n3"), "{text}");
    let metrics = crate::harness::http::get(&format!("http://{}/metrics", n3.running.admin_addr))
        .await
        .1;
    assert!(
        metrics.contains("geosteer_fleet_config_failed_revision 2")
            && metrics.contains("geosteer_fleet_config_revision 1"),
        "{metrics}"
    );

    // The key arrives on n3; a SIGHUP-style reload keeps revision 1 (the
    // node's pointer went back), the next push loads everywhere.
    std::fs::write(n3.dir.path().join("zsk.pem"), &pem).expect("key");
    n3.running.reload().await.expect("n3 reloads revision 1");
    assert_eq!(n3.answer().await, vec![A.parse::<IpAddr>().expect("ip")]);
    let (code, out) = ops.push(&signed.replace("ttl = 5", "ttl = 6"));
    assert_eq!(code, 0, "{out}");
    all_answer(
        &[&n1, &n2, &n3],
        B,
        Duration::from_secs(5),
        "revision 3 everywhere",
    )
    .await;
    for n in [n1, n2, n3] {
        n.stop().await;
    }
}

#[tokio::test]
async fn a_restart_keeps_a_node_on_its_revision_when_the_current_one_does_not_load_there() {
    // Revision 2 needs a key the node lacks: it stays on revision 1 while it
    // runs, and a restart (a reboot, an upgrade) must not turn that into a
    // node that cannot start.
    let etcd = Etcd::start();
    let ops = Ops::new(&etcd, "cfg-restart");
    let (code, out) = ops.push(&fleet_config("\"a\", \"b\"", ""));
    assert_eq!(code, 0, "{out}");
    let n1 = Node::start(1, &ops, &[]).await;
    assert_eq!(n1.answer().await, vec![A.parse::<IpAddr>().expect("ip")]);
    let keydir = tempfile::tempdir().expect("tempdir");
    let key = keys::generate(keydir.path(), "zsk", Alg::EcdsaP256);
    std::fs::copy(&key, ops.dir.path().join("zsk.pem")).expect("key for the push check");
    let signed = fleet_config(
        "\"b\", \"a\"",
        "\n[dnssec.\"example.test\"]\nkeys = [\"zsk.pem\"]\n",
    );
    let (code, out) = ops.push(&signed);
    assert_eq!(code, 0, "{out}");
    eventually(
        Duration::from_secs(5),
        "revision 2 failed on n1",
        async || {
            let c = n1.cluster().await;
            let me = node_named(&c, "n1");
            if me["config_failed"]["revision"] == 2 {
                Ok(())
            } else {
                Err(format!("{me}"))
            }
        },
    )
    .await;
    let dir = n1.stop().await;

    let n1 = Node::start_in(dir).await;
    assert_eq!(
        n1.answer().await,
        vec![A.parse::<IpAddr>().expect("ip")],
        "serves revision 1 again"
    );
    let c = n1.cluster().await;
    let me = node_named(&c, "n1");
    assert_eq!(me["config_revision"], 1, "{me}");
    assert_eq!(me["config_failed"]["revision"], 2, "{me}");
    assert!(
        me["config_failed"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("zsk.pem")),
        "{me}"
    );
    let current = std::fs::read_to_string(n1.dir.path().join("state/current")).expect("current");
    assert_eq!(current.trim(), "1", "a SIGHUP reloads revision 1 too");
    n1.stop().await;
}

#[tokio::test]
async fn history_lists_a_revision_whose_time_is_past_the_year_9999() {
    // Whatever a revision in etcd says, `config history` prints it: a
    // pusher's clock (or a hand-written record) far in the future made the
    // RFC 3339 time fail to print, and the command panicked.
    use base64::Engine as _;
    let etcd = Etcd::start();
    let ops = Ops::new(&etcd, "cfg-history-time");
    let (code, out) = ops.push(&fleet_config("\"a\", \"b\"", ""));
    assert_eq!(code, 0, "{out}");
    let b64 = |t: &str| base64::engine::general_purpose::STANDARD.encode(t);
    let key = format!("{}/config/rev/{:020}", ops.prefix, 2);
    let doc = format!(
        r#"{{"revision":2,"config":"","zones":{{}},"by":"clock@skew","at":{}}}"#,
        u64::MAX
    );
    let (status, text) = crate::harness::http::send(
        reqwest::Method::POST,
        &format!("{}/v3/kv/put", ops.etcd),
        Some(&format!(
            r#"{{"key":"{}","value":"{}"}}"#,
            b64(&key),
            b64(&doc)
        )),
        None,
    )
    .await;
    assert_eq!(status, 200, "{text}");
    let (code, out) = ops.run(&["history"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("after 9999-12-31T23:59:59Z") && out.contains("clock@skew"),
        "{out}"
    );
}

#[tokio::test]
async fn a_node_starts_on_its_last_revision_while_etcd_is_down() {
    let mut etcd = Etcd::start();
    let ops = Ops::new(&etcd, "cfg-offline");
    let (code, out) = ops.push(&fleet_config("\"b\", \"a\"", ""));
    assert_eq!(code, 0, "{out}");
    let n1 = Node::start(1, &ops, &[]).await;
    assert_eq!(n1.answer().await, vec![B.parse::<IpAddr>().expect("ip")]);
    let dir = n1.stop().await;
    assert!(
        Path::new(&dir.path().join("state/rev-1/fleet.toml")).is_file(),
        "the revision is kept on disk"
    );

    etcd.kill();
    let n1 = Node::start_in(dir).await;
    assert_eq!(
        n1.answer().await,
        vec![B.parse::<IpAddr>().expect("ip")],
        "serves revision 1 without etcd"
    );
    let dir = n1.stop().await;

    // A node that never received a revision cannot start without etcd,
    // and says why.
    std::fs::remove_dir_all(dir.path().join("state")).expect("rm state");
    let err = match geosteer::app::start(&dir.path().join("geosteer.toml")).await {
        Ok(_) => panic!("started without any config"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("geosteer config push"), "{err}");
}

#[test]
fn a_local_file_holds_only_server_and_cluster() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("geosteer.toml");
    let text = "[server]\ndns_listen = [\"127.0.0.1:0\"]\n\n[cluster]\netcd = [\"http://127.0.0.1:2379\"]\nnode = \"n1\"\nconfig = \"etcd\"\nconfig_dir = \"state\"\n\n[pools.x]\nendpoints = [{ address = \"192.0.2.1\" }]\n";
    std::fs::write(&path, text).expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_geosteer"))
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .expect("check");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("not [pools]"), "{text}");
}
