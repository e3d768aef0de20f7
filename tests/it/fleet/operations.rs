//! Operating a fleet: an undrain while etcd is unreachable (local, then
//! reconciled), config skew logged once per change, and the FLEET table's
//! "last seen" following the keep-alives.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use super::*;

/// Runs the geosteer CLI: (success, stdout, stderr).
async fn cli(args: &[&str]) -> (bool, String, String) {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_geosteer"))
            .args(&args)
            .env_remove("GEOSTEER_ADMIN")
            .env_remove("GEOSTEER_CONFIG")
            .env_remove("GEOSTEER_ADMIN_TOKEN")
            .output()
            .expect("run geosteer")
    })
    .await
    .expect("join");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn status(node: &TestServer) -> serde_json::Value {
    get_json(&format!("http://{}/api/v1/status", node.running.admin_addr))
        .await
        .1
}

async fn events(node: &TestServer) -> Vec<serde_json::Value> {
    let (_, v) = get_json(&format!("http://{}/api/v1/events", node.running.admin_addr)).await;
    v["events"].as_array().cloned().unwrap_or_default()
}

/// Some event's reason on `node` contains `needle`.
async fn has_event(node: &TestServer, needle: &str) -> bool {
    events(node)
        .await
        .iter()
        .any(|e| e["reason"].as_str().is_some_and(|r| r.contains(needle)))
}

async fn connected(node: &TestServer) -> bool {
    cluster(node).await["connected"] == true
}

fn drains(c: &serde_json::Value) -> Vec<serde_json::Value> {
    c["drains"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn an_undrain_while_etcd_is_down_is_local_then_written_to_etcd_when_it_returns() {
    let mut etcd = Etcd::start();
    let (fleet, _a, _b) = fleet_of_three("localundrain", &etcd, 0.5).await;
    let (n1, n2) = (fleet.node(1, None).await, fleet.node(2, None).await);
    until(Duration::from_secs(15), "two vantages", async || {
        vantages(&n1).await == 2 && vantages(&n2).await == 2
    })
    .await;
    all_answer(&[&n1, &n2], A, Duration::from_secs(10), "both see a up").await;
    let admin1 = n1.running.admin_addr.to_string();
    let (ok, out, err) = cli(&["drain", "--admin", &admin1, "a", A]).await;
    assert!(ok, "drain: {out}{err}");
    all_answer(&[&n1, &n2], B, Duration::from_secs(5), "drained fleet-wide").await;

    etcd.kill();
    until(Duration::from_secs(10), "etcd loss noticed", async || {
        !connected(&n1).await && !connected(&n2).await
    })
    .await;
    // A plain undrain is refused, and says what to do instead.
    let (ok, out, err) = cli(&["undrain", "--admin", &admin1, "a", A]).await;
    assert!(!ok, "refused while etcd is down: {out}");
    assert!(
        err.contains("etcd is unreachable") && err.contains("geosteer undrain --local a 192.0.2.1"),
        "{err}"
    );
    let (code, body) = post(
        &format!("http://{admin1}/api/v1/pools/a/endpoints/{A}/undrain"),
        None,
    )
    .await;
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("--local"), "{body}");
    all_keep_answering(&[&n1, &n2], B, Duration::from_millis(500), "still drained").await;

    // --local returns it on node 1 only, and says so everywhere.
    let (ok, out, err) = cli(&["undrain", "--local", "--admin", &admin1, "a", A]).await;
    assert!(ok, "undrain --local: {out}{err}");
    assert!(
        out.contains("a 192.0.2.1: undrained locally, pending etcd"),
        "{out}"
    );
    all_answer(
        &[&n1],
        A,
        Duration::from_secs(2),
        "node 1 undrained locally",
    )
    .await;
    all_keep_answering(
        &[&n2],
        B,
        Duration::from_millis(500),
        "node 2 still drained",
    )
    .await;
    let s = status(&n1).await;
    let endpoint = &s["pools"][0]["endpoints"][0];
    assert_eq!(endpoint["undrained_locally"], true, "{endpoint}");
    assert_eq!(endpoint["draining"], false, "{endpoint}");
    assert_eq!(
        status(&n2).await["pools"][0]["endpoints"][0].get("undrained_locally"),
        None,
        "node 2 has no local undrain"
    );
    let c = cluster(&n1).await;
    assert_eq!(drains(&c).len(), 1, "{c}");
    assert_eq!(drains(&c)[0]["undrained_locally"], true, "{c}");
    let (ok, table, err) = cli(&["status", "--admin", &admin1]).await;
    assert!(ok, "{err}");
    assert!(
        table.contains("undrained locally, pending etcd (drained fleet-wide)")
            && table.contains("drained fleet-wide: a 192.0.2.1 (undrained locally, pending etcd)"),
        "{table}"
    );
    assert!(
        has_event(&n1, "on this node only, etcd unreachable (pending etcd)").await,
        "{:?}",
        events(&n1).await
    );

    // etcd returns: the undrain is written there, and node 2 follows.
    etcd.restart();
    all_answer(
        &[&n1, &n2],
        A,
        Duration::from_secs(20),
        "the local undrain written to etcd",
    )
    .await;
    until(
        Duration::from_secs(10),
        "no drain left anywhere",
        async || drains(&cluster(&n1).await).is_empty() && drains(&cluster(&n2).await).is_empty(),
    )
    .await;
    assert!(
        has_event(&n1, "local undrain written to etcd").await,
        "{:?}",
        events(&n1).await
    );
    let endpoint = status(&n1).await["pools"][0]["endpoints"][0].clone();
    assert_eq!(endpoint.get("undrained_locally"), None, "{endpoint}");
    all_keep_answering(&[&n1, &n2], A, Duration::from_millis(500), "agreed").await;
    n1.stop().await;
    n2.stop().await;
}

/// A TCP relay to etcd that the test can cut (one node loses etcd while the
/// others keep it) and heal.
struct Relay {
    addr: SocketAddr,
    open: Arc<AtomicBool>,
    connections: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

impl Relay {
    async fn start(to: SocketAddr) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind relay");
        let addr = listener.local_addr().expect("relay addr");
        let open = Arc::new(AtomicBool::new(true));
        let connections: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let (o, c) = (open.clone(), connections.clone());
        let accept = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if !o.load(Ordering::SeqCst) {
                    continue; // dropped: closed at once
                }
                let relay = tokio::spawn(async move {
                    if let Ok(mut etcd) = TcpStream::connect(to).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut etcd).await;
                    }
                });
                c.lock().expect("lock").push(relay);
            }
        });
        Relay {
            addr,
            open,
            connections,
            accept,
        }
    }

    /// Closes every connection and every new one.
    fn cut(&self) {
        self.open.store(false, Ordering::SeqCst);
        for c in self.connections.lock().expect("lock").drain(..) {
            c.abort();
        }
    }

    fn heal(&self) {
        self.open.store(true, Ordering::SeqCst);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.cut();
        self.accept.abort();
    }
}

#[tokio::test]
async fn a_drain_changed_in_etcd_meanwhile_wins_over_a_local_undrain() {
    let etcd = Etcd::start();
    let relay = Relay::start(etcd.client).await;
    let (fleet, _a, _b) = fleet_of_three("etcdwins", &etcd, 0.5).await;
    // Node 1 reaches etcd through the relay, node 2 directly.
    let n1 = fleet
        .start(
            fleet
                .config(1, None)
                .replace(&etcd.url(), &format!("http://{}", relay.addr)),
        )
        .await;
    let n2 = fleet.node(2, None).await;
    until(Duration::from_secs(15), "two vantages", async || {
        vantages(&n1).await == 2 && vantages(&n2).await == 2
    })
    .await;
    let admin = |n: &TestServer| n.running.admin_addr.to_string();
    let (code, body) = post(
        &format!("http://{}/api/v1/pools/a/endpoints/{A}/drain", admin(&n1)),
        None,
    )
    .await;
    assert_eq!(code, 200, "{body}");
    all_answer(
        &[&n1, &n2],
        B,
        Duration::from_secs(10),
        "drained fleet-wide",
    )
    .await;

    relay.cut();
    until(Duration::from_secs(10), "node 1 cut off", async || {
        !connected(&n1).await
    })
    .await;
    let (code, body) = post(
        &format!(
            "http://{}/api/v1/pools/a/endpoints/{A}/undrain?local=true",
            admin(&n1)
        ),
        None,
    )
    .await;
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("\"pending_etcd\":true"), "{body}");
    all_answer(
        &[&n1],
        A,
        Duration::from_secs(2),
        "node 1 undrained locally",
    )
    .await;

    // Meanwhile the fleet changes the drain: returned, then drained again
    // (a new record) through node 2.
    for verb in ["undrain", "drain"] {
        let (code, body) = post(
            &format!("http://{}/api/v1/pools/a/endpoints/{A}/{verb}", admin(&n2)),
            None,
        )
        .await;
        assert_eq!(code, 200, "{verb}: {body}");
    }
    all_answer(&[&n2], B, Duration::from_secs(2), "drained again").await;

    // Node 1 reaches etcd again: etcd's newer drain wins.
    relay.heal();
    until(Duration::from_secs(15), "node 1 back", async || {
        connected(&n1).await
    })
    .await;
    all_answer(&[&n1, &n2], B, Duration::from_secs(5), "etcd wins").await;
    assert!(has_event(&n1, "etcd wins").await, "{:?}", events(&n1).await);
    let c = cluster(&n1).await;
    assert_eq!(drains(&c).len(), 1, "{c}");
    assert_eq!(drains(&c)[0].get("undrained_locally"), None, "{c}");
    all_keep_answering(&[&n1, &n2], B, Duration::from_millis(500), "agreed").await;
    n1.stop().await;
    n2.stop().await;
}

/// Lines of `log` containing `needle`.
fn count(log: &str, needle: &str) -> usize {
    log.lines().filter(|l| l.contains(needle)).count()
}

#[tokio::test]
async fn config_skew_is_logged_once_when_it_appears_and_once_when_it_clears() {
    let etcd = Etcd::start();
    let (fleet, _a, _b) = fleet_of_three("skew", &etcd, 0.5).await;
    let same = fleet.config(2, None);
    assert!(same.contains("ttl = 5\n"));
    let n1 = ProcessNode::start(&fleet.config(1, None));
    let n2 = ProcessNode::start(&same.replace("ttl = 5\n", "ttl = 7\n"));
    const SKEW: &str = "fleet: config skew: ";
    const CLEARED: &str = "fleet: config skew cleared";
    until(Duration::from_secs(20), "both log the skew", async || {
        count(&n1.log(), SKEW) >= 1 && count(&n2.log(), SKEW) >= 1
    })
    .await;
    // Six keep-alive periods (lease 2 s: one every 0.67 s) later, still once.
    tokio::time::sleep(Duration::from_secs(4)).await;
    for (name, n, other) in [("n1", &n1, "n2"), ("n2", &n2, "n1")] {
        let log = n.log();
        assert_eq!(count(&log, SKEW), 1, "{name}:\n{log}");
        assert_eq!(count(&log, CLEARED), 0, "{name}:\n{log}");
        let line = log.lines().find(|l| l.contains(SKEW)).unwrap_or_default();
        assert!(line.contains("WARN") && line.contains(other), "{line}");
    }

    // Node 2 reloads to the same config: one INFO line on each node.
    n2.reload_with(&same);
    until(
        Duration::from_secs(15),
        "both log the end of it",
        async || count(&n1.log(), CLEARED) >= 1 && count(&n2.log(), CLEARED) >= 1,
    )
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    for (name, n) in [("n1", &n1), ("n2", &n2)] {
        let log = n.log();
        assert_eq!(count(&log, SKEW), 1, "{name}:\n{log}");
        assert_eq!(count(&log, CLEARED), 1, "{name}:\n{log}");
        let line = log
            .lines()
            .find(|l| l.contains(CLEARED))
            .unwrap_or_default();
        assert!(line.contains("INFO"), "{line}");
    }
}

#[tokio::test]
async fn last_seen_follows_the_keep_alives() {
    let etcd = Etcd::start();
    let (fleet, _a, _b) = fleet_of_three("lastseen", &etcd, 0.5).await;
    let (n1, n2) = (fleet.node(1, None).await, fleet.node(2, None).await);
    until(Duration::from_secs(15), "two vantages", async || {
        vantages(&n1).await == 2 && vantages(&n2).await == 2
    })
    .await;
    all_answer(&[&n1, &n2], A, Duration::from_secs(10), "settled").await;
    // Nothing changes from here on: only keep-alives (lease 2 s, one every
    // 0.67 s) reach etcd. For 8 s, node 2 as node 1 sees it is seen within
    // two keep-alive intervals (and scheduling slack), never "8s ago".
    let bound_ms = 2 * 667 + 500;
    let until = Instant::now() + Duration::from_secs(8);
    let mut worst = 0;
    while Instant::now() < until {
        let c = cluster(&n1).await;
        let now = geosteer::wallclock::unix_ms();
        let seen = node_named(&c, "n2")["last_seen_unix_ms"]
            .as_u64()
            .unwrap_or(0);
        worst = worst.max(now.saturating_sub(seen));
        assert!(
            now.saturating_sub(seen) <= bound_ms,
            "n2 last seen {} ms ago: {c}",
            now.saturating_sub(seen)
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // And the table says so.
    let (ok, table, err) = cli(&["status", "--admin", &n1.running.admin_addr.to_string()]).await;
    assert!(ok, "{err}");
    let row = table
        .lines()
        .find(|l| l.trim_start().starts_with("n2 "))
        .unwrap_or_else(|| panic!("no n2 row in:\n{table}"));
    assert!(
        row.ends_with(" now") || row.ends_with(" 1s ago"),
        "{row} (worst {worst} ms)"
    );
    n1.stop().await;
    n2.stop().await;
}
