//! Host endpoints kept resolved (issue 21 item 2), from the outside, with a
//! real upstream: a second geosteer on loopback serves `cloud.test`, whose
//! `elb.cloud.test` A/AAAA records (TTL 1 s) the tests change by reloading
//! it, and which they kill. geosteer resolves the name through `[server]
//! resolvers` and answers its current addresses; follows changes within the
//! TTL; keeps the last addresses while the upstream is dead, for
//! `stale_for`, then counts the endpoint down; probes each address with the
//! name as Host and leaves out those that fail; signs answers made of them.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_proto::rr::RecordType;

use crate::harness::dig::{self, Ask};
use crate::harness::eventually::eventually;
use crate::harness::geosteer::{TestServer, server_header};
use crate::harness::http::get_json;
use crate::harness::origin::{Mode, Origin};

/// The upstream's zone: `elb` with the given records (TTL 1 s).
fn cloud_zone(serial: u32, records: &[&str]) -> String {
    let mut z = format!(
        "$ORIGIN cloud.test.
$TTL 1
@ IN SOA ns1.cloud.test. hostmaster.cloud.test. {serial} 3600 600 86400 1
@ IN NS ns1.cloud.test.
ns1 IN A 127.0.0.1
"
    );
    for r in records {
        z.push_str(&format!("elb 1 IN {r}\n"));
    }
    z
}

/// The "cloud": a geosteer serving `cloud.test` from a zone file.
async fn upstream(records: &[&str]) -> TestServer {
    let cfg = "[server]
dns_listen = [\"127.0.0.1:0\"]
admin_listen = \"127.0.0.1:0\"
udp_workers = 1

[zones]
\"cloud.test\" = \"cloud.test.zone\"
";
    let zone = cloud_zone(1, records);
    TestServer::start(cfg, &[("cloud.test.zone", zone.as_bytes())]).await
}

/// Replaces the upstream's records and reloads it.
async fn change(up: &TestServer, serial: u32, records: &[&str]) {
    std::fs::write(up.path("cloud.test.zone"), cloud_zone(serial, records)).expect("zone");
    up.running.reload().await.expect("upstream reload");
}

/// `[server]` keys for a geosteer resolving through `up`.
fn resolving(up: SocketAddr, stale_for: &str) -> String {
    format!(
        "resolvers = [\"{up}\"]\nmin_refresh = \"1s\"\nmax_refresh = \"2s\"\nstale_for = \"{stale_for}\""
    )
}

/// `lb.example.test`: the host pool first, a fixed backup after it.
fn balanced(cloud_pool: &str) -> String {
    format!(
        "{cloud_pool}
[pools.backup]
endpoints = [{{ address = \"192.0.2.99\" }}, {{ address = \"2001:db8::99\" }}]

[[balance]]
name = \"lb.example.test\"
policy = \"failover\"
pools = [\"cloud\", \"backup\"]
ttl = 5
"
    )
}

async fn addrs(s: &TestServer, qtype: RecordType) -> Vec<IpAddr> {
    let m = dig::udp(s.dns, &Ask::new("lb.example.test.", qtype)).await;
    let mut a = dig::addrs(&m);
    a.sort();
    a
}

fn ips(list: &[&str]) -> Vec<IpAddr> {
    list.iter().map(|a| dig::ip(a)).collect()
}

/// Waits until `qtype` answers exactly `want`.
async fn answers(s: &TestServer, qtype: RecordType, want: &[&str], within: Duration, what: &str) {
    let want = ips(want);
    eventually(within, what, async || {
        let got = addrs(s, qtype).await;
        if got == want {
            Ok(())
        } else {
            Err(format!("{qtype}: {got:?}"))
        }
    })
    .await;
}

fn resolve_events(events: &serde_json::Value) -> Vec<String> {
    events["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["kind"] == "resolve")
        .map(|e| {
            format!(
                "{} {}",
                e["state"].as_str().unwrap_or(""),
                e["reason"].as_str().unwrap_or("")
            )
        })
        .collect()
}

fn host_endpoint(status: &serde_json::Value) -> serde_json::Value {
    status["pools"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|p| p["endpoints"].as_array().into_iter().flatten())
        .find(|e| e["address"] == "elb.cloud.test")
        .cloned()
        .unwrap_or_else(|| panic!("no host endpoint in {status}"))
}

/// The answers carry the upstream's addresses, per family; a change
/// upstream is followed within the TTL (a name left with only A records
/// answers no AAAA: the next pool does); a reload keeps the addresses; a
/// dead upstream leaves the last answer in place (stale), and past
/// `stale_for` the endpoint is down and the next pool answers; each step
/// is an event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_endpoint_follows_its_name_and_goes_stale_then_down() {
    let up = upstream(&["A 127.0.0.2", "A 127.0.0.3", "AAAA 2001:db8::5"]).await;
    let cfg = format!(
        "{}{}",
        server_header(&resolving(up.dns, "4s")),
        balanced("[pools.cloud]\nendpoints = [{ host = \"ELB.cloud.test.\" }]")
    );
    let s = TestServer::start(&cfg, &[]).await;
    let base = format!("http://{}", s.running.admin_addr);
    // Resolved before the first answer (start-up resolves once).
    assert_eq!(
        addrs(&s, RecordType::A).await,
        ips(&["127.0.0.2", "127.0.0.3"])
    );
    assert_eq!(addrs(&s, RecordType::AAAA).await, ips(&["2001:db8::5"]));

    change(&up, 2, &["A 127.0.0.4"]).await;
    // TTL 1 s (max_refresh 2 s) plus a generous margin.
    answers(
        &s,
        RecordType::A,
        &["127.0.0.4"],
        Duration::from_secs(8),
        "the new address",
    )
    .await;
    answers(
        &s,
        RecordType::AAAA,
        &["2001:db8::99"],
        Duration::from_secs(8),
        "AAAA from the next pool",
    )
    .await;
    let (_, events) = get_json(&format!("{base}/api/v1/events")).await;
    assert!(
        resolve_events(&events)
            .iter()
            .any(|e| e == "resolved 127.0.0.4"),
        "{events}"
    );

    // A reload keeps what the name resolved to: no gap in the answers.
    s.running.reload().await.expect("reload");
    assert_eq!(
        addrs(&s, RecordType::A).await,
        ips(&["127.0.0.4"]),
        "after a reload"
    );

    up.stop().await;
    let stale = eventually(
        Duration::from_secs(20),
        "the host endpoint stale",
        async || {
            let (_, st) = get_json(&format!("{base}/api/v1/status")).await;
            let e = host_endpoint(&st);
            if e["resolved"]["stale"] == true {
                Ok(e)
            } else {
                Err(e.to_string())
            }
        },
    )
    .await;
    // Stale: the last addresses still answer.
    assert_eq!(
        addrs(&s, RecordType::A).await,
        ips(&["127.0.0.4"]),
        "{stale}"
    );
    assert_eq!(stale["resolved"]["addresses"][0]["address"], "127.0.0.4");
    assert!(stale["resolved"]["error"].is_string(), "{stale}");
    // Past stale_for (4 s): down, the backup answers.
    answers(
        &s,
        RecordType::A,
        &["192.0.2.99"],
        Duration::from_secs(15),
        "the next pool",
    )
    .await;
    let (_, events) = get_json(&format!("{base}/api/v1/events")).await;
    let resolved = resolve_events(&events);
    assert!(
        resolved.iter().any(|e| e.starts_with("stale ")),
        "{resolved:?}"
    );
    assert!(
        resolved.iter().any(|e| e.starts_with("expired ")),
        "{resolved:?}"
    );
    let down = events["events"].as_array().into_iter().flatten().any(|e| {
        e["kind"] == "endpoint" && e["endpoint"] == "elb.cloud.test" && e["state"] == "down"
    });
    assert!(down, "{events}");
    let (_, st) = get_json(&format!("{base}/api/v1/status")).await;
    assert_eq!(host_endpoint(&st)["resolved"]["expired"], true, "{st}");
    s.stop().await;
}

/// Each resolved address is probed with the name as Host: the one at
/// 127.0.0.2 answers 200 only for `Host: elb.cloud.test`; a failing
/// address (127.0.0.3, 500) is left out while the other passes; with none
/// passing the endpoint is down and the next pool answers. `_health` and
/// status show the addresses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_address_is_probed_and_only_passing_ones_answer() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // 127.0.0.2: 200 only for the name as Host.
    let listener = tokio::net::TcpListener::bind("127.0.0.2:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let failing = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let fail = failing.clone();
    let server = tokio::spawn(async move {
        loop {
            let Ok((mut conn, _)) = listener.accept().await else {
                return;
            };
            let fail = fail.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let n = conn.read(&mut buf).await.unwrap_or(0);
                let request = String::from_utf8_lossy(&buf[..n]).to_ascii_lowercase();
                let ok = request.contains("\r\nhost: elb.cloud.test")
                    && !fail.load(std::sync::atomic::Ordering::SeqCst);
                let reply: &[u8] = if ok {
                    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
                } else {
                    b"HTTP/1.1 421 Misdirected Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                };
                let _ = conn.write_all(reply).await;
            });
        }
    });
    let three = Origin::at(SocketAddr::from(([127, 0, 0, 3], port)), "three").await;
    let up = upstream(&["A 127.0.0.2", "A 127.0.0.3"]).await;
    let cfg = format!(
        "{}
[monitors.web]
type = \"http\"
port = {port}
path = \"/healthz\"
interval = \"300ms\"
timeout = \"250ms\"
rise = 1
fall = 1
{}",
        server_header(&resolving(up.dns, "1h")),
        balanced("[pools.cloud]\nmonitor = \"web\"\nendpoints = [{ host = \"elb.cloud.test\" }]")
    );
    let s = TestServer::start(&cfg, &[]).await;
    let base = format!("http://{}", s.running.admin_addr);
    answers(
        &s,
        RecordType::A,
        &["127.0.0.2", "127.0.0.3"],
        Duration::from_secs(10),
        "both pass",
    )
    .await;
    // Only A records: AAAA comes from the next pool.
    assert_eq!(addrs(&s, RecordType::AAAA).await, ips(&["2001:db8::99"]));
    assert!(
        three.paths().iter().any(|p| p == "/healthz"),
        "{:?}",
        three.paths()
    );

    three.set_mode(Mode::Failing);
    answers(
        &s,
        RecordType::A,
        &["127.0.0.2"],
        Duration::from_secs(10),
        "the failing address left out",
    )
    .await;
    // TCP (hickory's handler) answers the same as the UDP fast path.
    let tcp = dig::tcp(s.dns, &Ask::new("lb.example.test.", RecordType::A)).await;
    assert_eq!(dig::addrs(&tcp), ips(&["127.0.0.2"]), "over TCP");
    let (_, st) = get_json(&format!("{base}/api/v1/status")).await;
    let e = host_endpoint(&st);
    assert_eq!(e["state"], "up", "{e}");
    let states: Vec<(String, String)> = e["resolved"]["addresses"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| {
            (
                a["address"].as_str().unwrap_or("").into(),
                a["state"].as_str().unwrap_or("").into(),
            )
        })
        .collect();
    assert_eq!(
        states,
        [
            ("127.0.0.2".into(), "up".into()),
            ("127.0.0.3".into(), "down".into())
        ]
    );
    let txt = dig::udp(
        s.dns,
        &Ask::new("_health.lb.example.test.", RecordType::TXT),
    )
    .await;
    let lines = dig::txts(&txt);
    assert!(
        lines
            .iter()
            .any(|l| l.contains("pool=cloud") && l.contains("addrs=1/2")),
        "{lines:?}"
    );

    // /metrics: each address's verdict.
    let (_, metrics) = crate::harness::http::get(&format!("{base}/metrics")).await;
    for (address, up) in [("127.0.0.2", 1), ("127.0.0.3", 0)] {
        let line = format!(
            "geosteer_endpoint_address_up{{pool=\"cloud\",endpoint=\"elb.cloud.test\",address=\"{address}\"}} {up}"
        );
        assert!(metrics.contains(&line), "{line} in\n{metrics}");
    }
    assert!(
        metrics.contains(
            "geosteer_endpoint_resolve_stale{pool=\"cloud\",endpoint=\"elb.cloud.test\"} 0"
        ),
        "{metrics}"
    );
    // explain: the answering pool's host endpoint and its addresses.
    let (_, e) = get_json(&format!(
        "{base}/api/v1/explain?name=lb.example.test&type=A&client=198.51.100.7"
    ))
    .await;
    assert_eq!(
        e["trace"]["records"],
        serde_json::json!(["127.0.0.2"]),
        "{e}"
    );
    let hosts = e["hosts"][0].as_str().unwrap_or("");
    assert!(
        hosts.starts_with(
            "cloud elb.cloud.test: resolves to 127.0.0.2 (up), 127.0.0.3 (down: status 500"
        ),
        "{e}"
    );
    // geosteer status: each address under its endpoint.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_geosteer"))
        .args(["status", "--admin", &s.running.admin_addr.to_string()])
        .output()
        .expect("run geosteer status");
    let text = String::from_utf8_lossy(&out.stdout);
    let row = |ip: &str| {
        text.lines()
            .find(|l| l.contains(&format!("-> {ip}")))
            .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
    };
    assert_eq!(
        row("127.0.0.2").as_deref(),
        Some("-> 127.0.0.2 up"),
        "{text}"
    );
    assert_eq!(
        row("127.0.0.3").as_deref(),
        Some("-> 127.0.0.3 down"),
        "{text}"
    );

    // The other one fails too: the endpoint is down, the next pool answers.
    failing.store(true, std::sync::atomic::Ordering::SeqCst);
    answers(
        &s,
        RecordType::A,
        &["192.0.2.99"],
        Duration::from_secs(10),
        "the next pool",
    )
    .await;
    // And back.
    three.set_mode(Mode::Ok);
    answers(
        &s,
        RecordType::A,
        &["127.0.0.3"],
        Duration::from_secs(10),
        "the address back",
    )
    .await;
    s.stop().await;
    up.stop().await;
    server.abort();
}

/// A signed zone: an answer made of resolved addresses carries RRSIGs that
/// verify with the zone's key, and delv validates it, before and after the
/// upstream changes the address set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_answers_from_resolved_addresses_validate_after_a_change() {
    use crate::harness::keys::{self, Alg};
    let up = upstream(&["A 127.0.0.2", "A 127.0.0.3"]).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let key = keys::generate(dir.path(), "zone.pem", Alg::EcdsaP256);
    let pem = std::fs::read(&key).expect("key");
    let cfg = format!(
        "{}{}
[dnssec.\"example.test\"]
keys = [\"zone.pem\"]
",
        server_header(&resolving(up.dns, "1h")),
        balanced("[pools.cloud]\nendpoints = [{ host = \"elb.cloud.test\" }]")
    );
    let s = TestServer::start(&cfg, &[("zone.pem", &pem)]).await;
    let anchor = keys::dnskey(&key, "example.test", Alg::EcdsaP256);
    let anchor_file = crate::harness::delv::anchor_file(dir.path(), "anchor.conf", &anchor);
    let keys = dig::udp(
        s.dns,
        &Ask::new("example.test.", RecordType::DNSKEY).dnssec_ok(),
    )
    .await
    .answers;
    for (serial, want) in [(1, vec!["127.0.0.2", "127.0.0.3"]), (2, vec!["127.0.0.5"])] {
        if serial > 1 {
            change(&up, serial, &["A 127.0.0.5"]).await;
            answers(
                &s,
                RecordType::A,
                &want,
                Duration::from_secs(8),
                "the new set",
            )
            .await;
        }
        let q = Ask::new("lb.example.test.", RecordType::A).dnssec_ok();
        for m in [dig::udp(s.dns, &q).await, dig::tcp(s.dns, &q).await] {
            let mut got = dig::addrs(&m);
            got.sort();
            assert_eq!(got, ips(&want));
            assert_eq!(crate::dnssec::verify_section(&m.answers, &keys), 1, "{m:?}");
        }
        let out = crate::harness::delv::delv(s.dns, &anchor_file, "lb.example.test", "A").await;
        assert!(out.contains("; fully validated"), "{out}");
        for a in &want {
            assert!(out.contains(a), "{a} in {out}");
        }
    }
    // A name with only A records: AAAA answers from the next pool, signed.
    let m = dig::udp(
        s.dns,
        &Ask::new("lb.example.test.", RecordType::AAAA).dnssec_ok(),
    )
    .await;
    assert_eq!(dig::addrs(&m), ips(&["2001:db8::99"]));
    s.stop().await;
    up.stop().await;
}
