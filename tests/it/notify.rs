//! Webhooks (`[[notify]]`) against real receivers on loopback: every event
//! once and in order, retries, a dead receiver that slows nothing and whose
//! drops are counted, a reload that changes the receivers, and a real
//! Alertmanager taking the `alertmanager` format.

use std::time::{Duration, Instant};

use hickory_proto::rr::RecordType;

use crate::harness::dig::{self, Ask, addrs};
use crate::harness::eventually::{eventually, until};
use crate::harness::geosteer::{TestServer, server_header};
use crate::harness::http::{get, get_json, post};
use crate::harness::origin::Origin;
use crate::harness::webhook::{BlackHole, Webhook};

/// One pool of one endpoint, 192.0.2.1, probed at `origin`; then `notify`.
/// A generous probe timeout: a probe timing out on a busy machine would be
/// an event the tests do not expect.
fn config(origin: &Origin, notify: &str) -> String {
    format!(
        "{}
[monitors.web]
type = \"http\"
interval = \"500ms\"
timeout = \"450ms\"
fall = 1
rise = 1
[pools.eu]
monitor = \"web\"
endpoints = [{{ address = \"192.0.2.1\", probe = \"{}\" }}]
[[balance]]
name = \"www.example.test\"
policy = \"failover\"
pools = [\"eu\"]
{notify}
",
        server_header(""),
        origin.addr(),
    )
}

fn admin(s: &TestServer, path: &str) -> String {
    format!("http://{}{path}", s.running.admin_addr)
}

async fn drain(s: &TestServer, verb: &str) {
    let (code, body) = post(
        &admin(s, &format!("/api/v1/pools/eu/endpoints/192.0.2.1/{verb}")),
        None,
    )
    .await;
    assert_eq!(code, 200, "{verb}: {body}");
}

/// The events `/api/v1/events` shows, oldest first.
async fn recorded(s: &TestServer) -> Vec<serde_json::Value> {
    let (_, v) = get_json(&admin(s, "/api/v1/events")).await;
    let mut events = v["events"].as_array().cloned().unwrap_or_default();
    events.reverse();
    events
}

/// `NAME{LABELS} VALUE` from a Prometheus page, 0 when absent.
async fn metric(s: &TestServer, series: &str) -> f64 {
    let (_, page) = get(&admin(s, "/metrics")).await;
    page.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

fn kind_state(e: &serde_json::Value) -> (String, String) {
    (
        e["kind"].as_str().unwrap_or_default().to_string(),
        e["state"].as_str().unwrap_or_default().to_string(),
    )
}

#[tokio::test]
async fn a_receiver_gets_each_event_once_in_order() {
    let hook = Webhook::start().await;
    let origin = Origin::start().await;
    let s = TestServer::start(
        &config(
            &origin,
            &format!(
                "[[notify]]\nname = \"ops\"\nurl = \"{}\"\nheaders = {{ Authorization = \"Bearer s3cret\" }}\n",
                hook.url()
            ),
        ),
        &[],
    )
    .await;
    drain(&s, "drain").await;
    drain(&s, "undrain").await;
    origin.kill().await;
    until(
        Duration::from_secs(10),
        "the endpoint down event delivered",
        async || {
            hook.events()
                .iter()
                .any(|e| kind_state(e) == ("endpoint".into(), "down".into()))
        },
    )
    .await;
    origin.revive().await;
    until(
        Duration::from_secs(10),
        "the endpoint up event delivered",
        async || {
            hook.events()
                .iter()
                .any(|e| kind_state(e) == ("endpoint".into(), "up".into()))
        },
    )
    .await;
    // Everything the log recorded, delivered once, in the log's order.
    let log = eventually(
        Duration::from_secs(5),
        "every recorded event delivered",
        async || {
            let log = recorded(&s).await;
            let got = hook.events();
            if got == log {
                Ok(log)
            } else {
                Err(format!("recorded {log:#?}\ndelivered {got:#?}"))
            }
        },
    )
    .await;
    let ours: Vec<(String, String)> = log
        .iter()
        .filter(|e| e["endpoint"] == "192.0.2.1" || e["kind"] == "pool")
        .map(kind_state)
        .collect();
    let want = |k: &str, st: &str| (k.to_string(), st.to_string());
    assert_eq!(
        ours,
        [
            // The pool's only endpoint: drained, the pool is down.
            want("drain", "drained"),
            want("pool", "down"),
            want("drain", "undrained"),
            want("pool", "healthy"),
            want("endpoint", "down"),
            want("pool", "down"),
            want("endpoint", "up"),
            want("pool", "healthy"),
        ],
        "{log:#?}"
    );
    let posts = hook.posts();
    assert!(posts.iter().all(|p| p.status == 200), "{posts:?}");
    for p in &posts {
        assert_eq!(p.path, "/hook");
        assert_eq!(p.header("authorization"), Some("Bearer s3cret"));
        assert_eq!(p.header("content-type"), Some("application/json"));
        assert_eq!(p.body["version"], 1);
        assert_eq!(p.body["receiver"], "ops");
        assert!(p.body["node"].is_string(), "{:?}", p.body);
    }
    let batches: Vec<u64> = posts
        .iter()
        .filter_map(|p| p.body["batch"].as_u64())
        .collect();
    assert!(batches.windows(2).all(|w| w[0] < w[1]), "{batches:?}");
    assert_eq!(
        metric(&s, "geosteer_notify_sent_total{receiver=\"ops\"}").await,
        log.len() as f64
    );
    assert_eq!(
        metric(&s, "geosteer_notify_queue{receiver=\"ops\"}").await,
        0.0
    );
    s.stop().await;
}

#[tokio::test]
async fn a_receiver_failing_three_times_gets_the_event_once() {
    let hook = Webhook::start().await;
    let origin = Origin::start().await;
    let s = TestServer::start(
        &config(
            &origin,
            &format!(
                "[[notify]]\nname = \"flaky\"\nurl = \"{}\"\nevents = [\"drain\"]\nretry_for = \"20s\"\n",
                hook.url()
            ),
        ),
        &[],
    )
    .await;
    hook.fail_next(3);
    drain(&s, "drain").await;
    until(Duration::from_secs(10), "a POST answered 200", async || {
        hook.posts().iter().any(|p| p.status == 200)
    })
    .await;
    // A quiet while: no retry after the success.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let posts = hook.posts();
    let statuses: Vec<u16> = posts.iter().map(|p| p.status).collect();
    assert_eq!(statuses, [500, 500, 500, 200]);
    // The same batch each time, delivered once.
    assert!(posts.iter().all(|p| p.body == posts[0].body), "{posts:#?}");
    let events = hook.events();
    assert_eq!(events.len(), 1, "{events:#?}");
    assert_eq!(kind_state(&events[0]), ("drain".into(), "drained".into()));
    assert_eq!(
        metric(&s, "geosteer_notify_sent_total{receiver=\"flaky\"}").await,
        1.0
    );
    assert_eq!(
        metric(&s, "geosteer_notify_failed_total{receiver=\"flaky\"}").await,
        3.0
    );
    // `events` filters: an undrain is a drain event, a reload is not.
    let (code, _) = post(&admin(&s, "/api/v1/reload"), None).await;
    assert_eq!(code, 200);
    drain(&s, "undrain").await;
    until(
        Duration::from_secs(5),
        "the undrain delivered",
        async || hook.events().len() == 2,
    )
    .await;
    assert!(hook.events().iter().all(|e| e["kind"] == "drain"));
    s.stop().await;
}

/// How long one query takes, for `n` queries: (median, max).
async fn answer_times(s: &TestServer, n: usize) -> (Duration, Duration) {
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let m = dig::udp(s.dns, &Ask::new("www.example.test.", RecordType::A)).await;
        times.push(t.elapsed());
        assert!(!addrs(&m).is_empty(), "no answer: {m:?}");
    }
    times.sort();
    (times[n / 2], times[n - 1])
}

#[tokio::test]
async fn a_dead_receiver_slows_no_answer_and_its_drops_are_counted() {
    let hook = Webhook::start().await;
    let hole = BlackHole::start().await;
    // A closed port: bound, then let go.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port");
    let origin = Origin::start().await;
    let s = TestServer::start(
        &config(
            &origin,
            &format!(
                "[[notify]]\nname = \"hole\"\nurl = \"http://{}/\"\ntimeout = \"1s\"\nretry_for = \"2s\"\nqueue = 2\n\
                 [[notify]]\nname = \"closed\"\nurl = \"http://{closed}/\"\nretry_for = \"1s\"\n\
                 [[notify]]\nname = \"ok\"\nurl = \"{}\"\n",
                hole.addr,
                hook.url()
            ),
        ),
        &[],
    )
    .await;
    let (quiet_median, quiet_max) = answer_times(&s, 200).await;
    // 120 events while two receivers are dead (a drain, the pool down and
    // its name failing open; and back).
    for _ in 0..20 {
        drain(&s, "drain").await;
        drain(&s, "undrain").await;
    }
    let (busy_median, busy_max) = answer_times(&s, 200).await;
    eprintln!(
        "answer time with receivers idle: median {quiet_median:?} max {quiet_max:?}; \
         while two are dead: median {busy_median:?} max {busy_max:?}"
    );
    // Generous: a debug build on a shared machine; a query waiting for a
    // receiver would take a whole timeout (1 s).
    assert!(busy_max < Duration::from_millis(500), "max {busy_max:?}");
    assert!(
        busy_median < quiet_median * 5 + Duration::from_millis(5),
        "median {busy_median:?} against {quiet_median:?}"
    );
    let n = recorded(&s).await.len();
    assert_eq!(n, 120);
    // The live receiver is not held up by the dead ones.
    until(
        Duration::from_secs(3),
        "every event at the live receiver",
        async || hook.events().len() == n,
    )
    .await;
    // The black hole: a full queue drops at once; the batches in flight
    // drop when retry_for has passed.
    assert!(
        metric(
            &s,
            "geosteer_notify_dropped_total{receiver=\"hole\",reason=\"overflow\"}"
        )
        .await
            >= 100.0
    );
    until(
        Duration::from_secs(15),
        "the black hole's batches expire",
        async || {
            metric(
                &s,
                "geosteer_notify_dropped_total{receiver=\"hole\",reason=\"expired\"}",
            )
            .await
                + metric(
                    &s,
                    "geosteer_notify_dropped_total{receiver=\"hole\",reason=\"overflow\"}",
                )
                .await
                == n as f64
        },
    )
    .await;
    assert!(hole.accepted.load(std::sync::atomic::Ordering::SeqCst) >= 1);
    until(
        Duration::from_secs(15),
        "the closed port's events expire",
        async || {
            metric(
                &s,
                "geosteer_notify_dropped_total{receiver=\"closed\",reason=\"expired\"}",
            )
            .await
                + metric(
                    &s,
                    "geosteer_notify_dropped_total{receiver=\"closed\",reason=\"overflow\"}",
                )
                .await
                == n as f64
        },
    )
    .await;
    assert!(metric(&s, "geosteer_notify_failed_total{receiver=\"closed\"}").await >= 1.0);
    assert_eq!(
        metric(&s, "geosteer_notify_sent_total{receiver=\"hole\"}").await,
        0.0
    );
    assert_eq!(
        metric(&s, "geosteer_notify_queue{receiver=\"hole\"}").await,
        0.0
    );
    s.stop().await;
}

/// A receiver that refuses with 500 and a body that never ends: 64 KiB at
/// once, then nothing, the connection held open. Records when each POST
/// arrived.
async fn endless_refusal() -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::Mutex<Vec<Instant>>>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a receiver");
    let addr = listener.local_addr().expect("its address");
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let record = record.clone();
            tokio::spawn(async move {
                // The request: its head and (small) body arrive together.
                let mut buf = vec![0u8; 65536];
                if !matches!(conn.read(&mut buf).await, Ok(n) if n > 0) {
                    return;
                }
                record.lock().expect("not poisoned").push(Instant::now());
                let head =
                    "HTTP/1.1 500 Internal Server Error\r\ncontent-length: 1000000000\r\n\r\n";
                let _ = conn.write_all(head.as_bytes()).await;
                let _ = conn.write_all(&vec![b'x'; 65536]).await;
                // Hold the connection, send no more.
                tokio::time::sleep(Duration::from_secs(60)).await;
            });
        }
    });
    (addr, seen)
}

/// A refusal's body is read only as far as its reason needs: a receiver
/// answering 500 with a body that never ends gets its retry after the
/// backoff (250 ms), not after the whole timeout spent reading the body.
#[tokio::test]
async fn a_refusal_with_an_endless_body_is_retried_without_waiting_for_it() {
    let (addr, seen) = endless_refusal().await;
    let origin = Origin::start().await;
    let s = TestServer::start(
        &config(
            &origin,
            &format!(
                "[[notify]]\nname = \"endless\"\nurl = \"http://{addr}/\"\nevents = [\"drain\"]\n\
                 timeout = \"10s\"\nretry_for = \"30s\"\n"
            ),
        ),
        &[],
    )
    .await;
    drain(&s, "drain").await;
    until(Duration::from_secs(8), "a second POST", async || {
        seen.lock().expect("not poisoned").len() >= 2
    })
    .await;
    let times = seen.lock().expect("not poisoned").clone();
    let gap = times[1] - times[0];
    // Reading the body whole would take the 10 s timeout.
    assert!(
        gap < Duration::from_secs(5),
        "second POST {gap:?} after the first"
    );
    assert!(metric(&s, "geosteer_notify_failed_total{receiver=\"endless\"}").await >= 1.0);
    s.stop().await;
}

#[tokio::test]
async fn a_reload_applies_the_new_receivers() {
    let (first, second) = (Webhook::start().await, Webhook::start().await);
    let origin = Origin::start().await;
    let notify = |h: &Webhook| format!("[[notify]]\nurl = \"{}\"\nevents = [\"drain\"]\n", h.url());
    let s = TestServer::start(&config(&origin, &notify(&first)), &[]).await;
    drain(&s, "drain").await;
    until(
        Duration::from_secs(5),
        "the first receiver has the drain",
        async || first.events().len() == 1,
    )
    .await;
    std::fs::write(s.config_path(), config(&origin, &notify(&second))).expect("write config");
    let (code, body) = post(&admin(&s, "/api/v1/reload"), None).await;
    assert_eq!(code, 200, "{body}");
    drain(&s, "undrain").await;
    until(
        Duration::from_secs(5),
        "the second receiver has the undrain",
        async || second.events().len() == 1,
    )
    .await;
    assert_eq!(
        kind_state(&second.events()[0]),
        ("drain".into(), "undrained".into())
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(first.events().len(), 1, "the removed receiver got more");
    // The metrics name the receivers of the serving config: host:port/path.
    let (_, page) = get(&admin(&s, "/metrics")).await;
    let name = |h: &Webhook| h.url().trim_start_matches("http://").to_string();
    assert!(
        page.contains(&format!(
            "geosteer_notify_sent_total{{receiver=\"{}\"}} 1",
            name(&second)
        )),
        "{page}"
    );
    assert!(!page.contains(&name(&first)), "{page}");
    s.stop().await;
}

/// A real Alertmanager on loopback (Debian's `prometheus-alertmanager`),
/// routing everything to a receiver that sends nothing.
struct Alertmanager {
    url: String,
    _daemon: crate::harness::daemon::Daemon,
    _dir: tempfile::TempDir,
}

impl Alertmanager {
    async fn start() -> Alertmanager {
        let bin = crate::harness::daemon::binary(
            "prometheus-alertmanager",
            "apt-get install prometheus-alertmanager",
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("alertmanager.yml");
        std::fs::write(
            &config,
            "route:\n  receiver: quiet\n  group_wait: 1s\nreceivers:\n  - name: quiet\n",
        )
        .expect("write alertmanager.yml");
        let addr = crate::harness::daemon::free_addr("127.0.0.1");
        let daemon = crate::harness::daemon::Daemon::spawn(
            std::process::Command::new(bin)
                .arg(format!("--config.file={}", config.display()))
                .arg(format!("--storage.path={}", dir.path().display()))
                .arg(format!("--web.listen-address={addr}"))
                // No gossip with other Alertmanagers.
                .arg("--cluster.listen-address=")
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null()),
        );
        let url = format!("http://{addr}");
        // Generous: a loaded CI machine has been seen to take over 20 s.
        until(Duration::from_secs(60), "Alertmanager ready", async || {
            crate::harness::http::client()
                .get(format!("{url}/-/ready"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
        })
        .await;
        Alertmanager {
            url,
            _daemon: daemon,
            _dir: dir,
        }
    }

    /// The alertnames Alertmanager holds as active for the endpoint.
    async fn active(&self) -> Vec<String> {
        let (_, v) = get_json(&format!("{}/api/v2/alerts", self.url)).await;
        let mut names: Vec<String> = v
            .as_array()
            .into_iter()
            .flatten()
            .filter(|a| a["status"]["state"] == "active")
            .filter_map(|a| a["labels"]["alertname"].as_str().map(str::to_string))
            .collect();
        names.sort();
        names
    }
}

#[tokio::test]
async fn alertmanager_takes_the_alerts_and_resolves_them() {
    let am = Alertmanager::start().await;
    let origin = Origin::start().await;
    let s = TestServer::start(
        &config(
            &origin,
            &format!(
                "[[notify]]\nname = \"am\"\nurl = \"{}/api/v2/alerts\"\nformat = \"alertmanager\"\n",
                am.url
            ),
        ),
        &[],
    )
    .await;
    origin.kill().await;
    let firing = [
        "GeosteerEndpointDown",
        "GeosteerFailOpen",
        "GeosteerPoolDown",
    ];
    eventually(
        Duration::from_secs(10),
        "the alerts firing in Alertmanager",
        async || match am.active().await {
            a if a == firing => Ok(()),
            a => Err(format!("{a:?}")),
        },
    )
    .await;
    let (_, v) = get_json(&format!("{}/api/v2/alerts", am.url)).await;
    let down = v
        .as_array()
        .into_iter()
        .flatten()
        .find(|a| a["labels"]["alertname"] == "GeosteerEndpointDown")
        .cloned()
        .unwrap_or_default();
    assert_eq!(down["labels"]["pool"], "eu", "{down}");
    assert_eq!(down["labels"]["endpoint"], "192.0.2.1", "{down}");
    assert_eq!(down["labels"]["severity"], "warning", "{down}");
    assert!(
        down["annotations"]["description"]
            .as_str()
            .is_some_and(|d| !d.is_empty()),
        "{down}"
    );
    origin.revive().await;
    eventually(
        Duration::from_secs(10),
        "the alerts resolved",
        async || match am.active().await {
            a if a.is_empty() => Ok(()),
            a => Err(format!("still active: {a:?}")),
        },
    )
    .await;
    assert!(metric(&s, "geosteer_notify_sent_total{receiver=\"am\"}").await >= 6.0);
    assert_eq!(
        metric(&s, "geosteer_notify_failed_total{receiver=\"am\"}").await,
        0.0
    );
    s.stop().await;
}
