//! Hot reload (DESIGN §7): atomic, keeps the old config on error, keeps health
//! history for unchanged endpoints. And the binary's signals.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

use crate::both_paths;
use crate::harness::dig::{self, Ask, addrs, ip};
use crate::harness::geosteer::{TestServer, server_header};
use crate::harness::http::{get_json, post};
use crate::harness::origin::Origin;

fn config(o: &Origin, extra: &str) -> String {
    format!(
        "{}
[monitors.web]
type = \"http\"
interval = \"2s\"
timeout = \"300ms\"
[pools.eu]
monitor = \"web\"
endpoints = [{{ address = \"192.0.2.1\", probe = \"{}\" }}]
[[balance]]
name = \"www.example.test\"
policy = \"failover\"
pools = [\"eu\"]
{extra}
",
        server_header(""),
        o.addr()
    )
}

both_paths! {
async fn a_broken_reload_keeps_serving_and_reports_the_error() {
    let o = Origin::start().await;
    let s = TestServer::start(&config(&o, ""), &[]).await;
    let base = format!("http://{}", s.running.admin_addr);
    std::fs::write(s.config_path(), config(&o, "ttl = \"thirty\"")).unwrap();
    let (code, body) = post(&format!("{base}/api/v1/reload"), None).await;
    assert_eq!(code, 422, "{body}");
    assert!(body.contains("balance[0].ttl"), "{body}");
    let (_, st) = get_json(&format!("{base}/api/v1/status")).await;
    assert!(
        st["config"]["last_reload_error"]
            .as_str()
            .unwrap_or("")
            .contains("balance[0].ttl"),
        "{st}"
    );
    let m = dig::udp(s.dns, &Ask::new("www.example.test.", RecordType::A)).await;
    assert_eq!(addrs(&m), vec![ip("192.0.2.1")], "old config still serving");
    // A broken zone file is caught too.
    std::fs::write(s.config_path(), config(&o, "")).unwrap();
    std::fs::write(
        s.path("example.test.zone"),
        "$ORIGIN example.test.\n$TTL 60\n@ IN SOA ns1 h 1 2 3 4 5\nbad IN A 300.1.1.1\n",
    )
    .unwrap();
    let (code, body) = post(&format!("{base}/api/v1/reload"), None).await;
    assert_eq!(code, 422);
    assert!(body.contains("example.test.zone:4"), "{body}");
    let m = dig::udp(s.dns, &Ask::new("static.example.test.", RecordType::A)).await;
    assert_eq!(addrs(&m), vec![ip("192.0.2.10")], "old zone still serving");
    s.stop().await;
}
}

both_paths! {
async fn a_reload_serves_new_names_and_keeps_existing_health() {
    let o = Origin::start().await;
    let s = TestServer::start(&config(&o, ""), &[]).await;
    let base = format!("http://{}", s.running.admin_addr);
    let new_name =
        "[[balance]]\nname = \"api.example.test\"\npolicy = \"failover\"\npools = [\"eu\"]\n";
    let before = s.running.shared.load_full();
    let since = before.health.pools[0].endpoints[0].since_unix_ms;
    std::fs::write(s.config_path(), config(&o, "") + new_name).unwrap();
    let (code, body) = post(&format!("{base}/api/v1/reload"), None).await;
    assert_eq!(code, 200, "{body}");
    // The probe interval is 2 s: if health had been reset, the endpoint would
    // be unknown (out of answers) right now. It is not: no flap.
    for name in ["www.example.test.", "api.example.test."] {
        let m = dig::udp(s.dns, &Ask::new(name, RecordType::A)).await;
        assert_eq!(addrs(&m), vec![ip("192.0.2.1")], "{name}");
    }
    let after = s.running.shared.load_full();
    assert_eq!(after.generation, before.generation + 1);
    assert_eq!(
        after.health.pools[0].endpoints[0].since_unix_ms, since,
        "state history kept"
    );
    // A drained endpoint stays drained across a reload.
    assert_eq!(
        post(
            &format!("{base}/api/v1/pools/eu/endpoints/192.0.2.1/drain"),
            None
        )
        .await
        .0,
        200
    );
    assert_eq!(post(&format!("{base}/api/v1/reload"), None).await.0, 200);
    let m = dig::udp(s.dns, &Ask::new("www.example.test.", RecordType::A)).await;
    assert!(addrs(&m).is_empty());
    s.stop().await;
}
}

both_paths! {
async fn an_endpoint_added_by_reload_waits_for_its_first_probe() {
    let (o, p) = (Origin::start().await, Origin::start().await);
    let s = TestServer::start(&config(&o, ""), &[]).await;
    let base = format!("http://{}", s.running.admin_addr);
    let cfg = config(&o, "").replace(
        "probe = \"",
        &format!(
            "probe = \"{}\" }}, {{ address = \"192.0.2.2\", probe = \"",
            p.addr()
        ),
    );
    std::fs::write(s.config_path(), &cfg).unwrap();
    assert_eq!(post(&format!("{base}/api/v1/reload"), None).await.0, 200);
    let snap = s.running.shared.load_full();
    assert_eq!(snap.config.pools[0].endpoints.len(), 2);
    let start = Instant::now();
    loop {
        let mut a = addrs(&dig::udp(s.dns, &Ask::new("www.example.test.", RecordType::A)).await);
        a.sort();
        if a.len() == 1 {
            // Not yet probed: only the old endpoint can be answered.
            assert!(a == vec![ip("192.0.2.1")] || a == vec![ip("192.0.2.2")]);
        }
        if p.hits() > 0 && start.elapsed() > Duration::from_millis(100) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(6),
            "new endpoint never probed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    s.stop().await;
}
}

#[test]
fn the_binary_reloads_on_sighup_and_exits_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    // A fixed port is unavoidable for a separate process; pick a free one.
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cfg = |extra: &str| {
        format!(
            "{}[pools.p]\nendpoints = [{{ address = \"192.0.2.1\" }}]\n[[balance]]\nname = \"www.example.test\"\npolicy = \"failover\"\npools = [\"p\"]\n{extra}",
            server_header("").replace("127.0.0.1:0\"]", &format!("127.0.0.1:{port}\"]"))
        )
    };
    std::fs::write(dir.path().join("geosteer.toml"), cfg("")).unwrap();
    std::fs::write(
        dir.path().join("example.test.zone"),
        crate::harness::geosteer::ZONE,
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_geosteer"))
        .args(["serve", "--log-format", "json", "--config"])
        .arg(dir.path().join("geosteer.toml"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let server = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let ask = |name: &str| {
        let ask = Ask::new(name, RecordType::A);
        rt.block_on(async {
            dig::udp_raw_wait(
                server,
                &ask.message().to_vec().unwrap(),
                Duration::from_millis(200),
            )
            .await
        })
        .and_then(|b| hickory_proto::op::Message::from_vec(&b).ok())
    };
    let start = Instant::now();
    while ask("www.example.test.").is_none() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "server never answered"
        );
    }
    std::fs::write(
        dir.path().join("geosteer.toml"),
        cfg("[[balance]]\nname = \"new.example.test\"\npolicy = \"failover\"\npools = [\"p\"]\n"),
    )
    .unwrap();
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap()
            .success()
    );
    let start = Instant::now();
    loop {
        if let Some(m) = ask("new.example.test.")
            && m.metadata.response_code == ResponseCode::NoError
            && !addrs(&m).is_empty()
        {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "SIGHUP did not reload"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let start = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "no exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "exit status {status}");
    let mut log = String::new();
    use std::io::Read;
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    assert!(
        log.lines()
            .all(|l| l.trim().is_empty() || l.starts_with('{')),
        "--log-format json: {log}"
    );
}

/// A config with a geo name whose `subnets` map holds `prefixes` /24s, all
/// steering to `pool`; no monitors, so every endpoint is up from the start.
fn large_config(prefixes: u32, pool: &str) -> String {
    let mut text = server_header("");
    text += "[pools.a]\nendpoints = [{ address = \"192.0.2.1\" }]\n[pools.b]\nendpoints = [{ address = \"192.0.2.2\" }]\n";
    text += "[[balance]]\nname = \"www.example.test\"\npolicy = \"geo\"\npools = [\"a\", \"b\"]\n[balance.subnets]\n";
    for k in 0..prefixes {
        let net = std::net::Ipv4Addr::from((10 << 24) + (k << 8));
        text += &format!("\"{net}/24\" = [\"{pool}\"]\n");
    }
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reloads_of_a_large_config_lose_no_query() {
    let s = TestServer::start(&large_config(50_000, "a"), &[]).await;
    let dns = s.dns;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let asking = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let ask = Ask::new("www.example.test.", RecordType::A).ecs("10.0.7.0/24");
            let (mut sent, mut slowest) = (0u32, Duration::ZERO);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let t = Instant::now();
                let m = dig::udp(dns, &ask).await; // panics on a lost query
                slowest = slowest.max(t.elapsed());
                assert_eq!(m.metadata.response_code, ResponseCode::NoError);
                let got = addrs(&m);
                assert!(
                    got == vec![ip("192.0.2.1")] || got == vec![ip("192.0.2.2")],
                    "{got:?}"
                );
                sent += 1;
            }
            (sent, slowest)
        })
    };
    for pool in ["b", "a", "b"] {
        std::fs::write(s.config_path(), large_config(50_000, pool)).unwrap();
        s.running.reload().await.expect("reload");
        let m = dig::udp(
            s.dns,
            &Ask::new("www.example.test.", RecordType::A).ecs("10.0.7.0/24"),
        )
        .await;
        let want = if pool == "a" {
            "192.0.2.1"
        } else {
            "192.0.2.2"
        };
        assert_eq!(addrs(&m), vec![ip(want)], "the new config answers");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (sent, slowest) = asking.await.expect("no query lost or wrong");
    assert!(sent > 10, "only {sent} queries ran");
    eprintln!("{sent} queries during 3 reloads, slowest {slowest:?}");
    s.stop().await;
}

/// The restart-only keys of the configuration reference: a reload that
/// changes them succeeds and keeps the sockets, workers and limits it had.
#[tokio::test]
async fn a_reload_does_not_apply_restart_only_settings() {
    let o = Origin::start().await;
    let s = TestServer::start(&config(&o, ""), &[]).await;
    let base = format!("http://{}", s.running.admin_addr);
    // Two free ports nobody listens on, for the new addresses.
    let free = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
    };
    let (dns, admin) = (free(), free());
    let changed = config(&o, "").replacen(
        "dns_listen = [\"127.0.0.1:0\"]\nadmin_listen = \"127.0.0.1:0\"\nudp_workers = 1",
        &format!(
            "dns_listen = [\"{dns}\"]\nadmin_listen = \"{admin}\"\nudp_workers = 2\ntcp_idle_timeout = \"1s\"\ntcp_max_connections = 1"
        ),
        1,
    );
    assert!(changed.contains(&dns.to_string()), "{changed}");
    std::fs::write(s.config_path(), changed).unwrap();
    let (code, body) = post(&format!("{base}/api/v1/reload"), None).await;
    assert_eq!(code, 200, "{body}");
    // The reply says which changes wait for a restart.
    let reply: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(
        reply["pending_restart"],
        serde_json::json!([
            "server.dns_listen",
            "server.admin_listen",
            "server.udp_workers",
            "server.tcp_idle_timeout",
            "server.tcp_max_connections"
        ]),
        "{reply}"
    );
    // Still on the old addresses, not on the new ones.
    let m = dig::udp(s.dns, &Ask::new("www.example.test.", RecordType::A)).await;
    assert_eq!(addrs(&m), vec![ip("192.0.2.1")]);
    let (code, _) = get_json(&format!("{base}/api/v1/status")).await;
    assert_eq!(code, 200);
    for addr in [dns, admin] {
        assert!(
            tokio::net::TcpStream::connect(addr).await.is_err(),
            "{addr} is listening after a reload"
        );
    }
    // The old TCP limits hold: two connections stay open past 1 s idle.
    let mut a = tokio::net::TcpStream::connect(s.dns).await.expect("tcp a");
    let mut b = tokio::net::TcpStream::connect(s.dns).await.expect("tcp b");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for c in [&mut a, &mut b] {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        // A query for www.example.test A, ID 0x0102, framed for TCP.
        let q: &[u8] = b"\x01\x02\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x03www\x07example\x04test\x00\x00\x01\x00\x01";
        let mut msg = (q.len() as u16).to_be_bytes().to_vec();
        msg.extend_from_slice(q);
        c.write_all(&msg)
            .await
            .expect("write on an open connection");
        let mut len = [0u8; 2];
        tokio::time::timeout(Duration::from_secs(5), c.read_exact(&mut len))
            .await
            .expect("an answer within 5 s")
            .expect("the connection is still open");
    }
    s.stop().await;
}
