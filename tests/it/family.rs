//! Health per address family, `on_all_down` and the health-aware TTL, as an
//! operator meets them: real origins that die, answers over real UDP (fast
//! path and hickory) and TCP, with and without DO, and every view of the
//! admin API.

use std::time::Duration;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;

use crate::both_paths;
use crate::harness::dig::{self, Ask, addrs, ip};
use crate::harness::eventually::eventually;
use crate::harness::geosteer::{TestServer, server_header};
use crate::harness::http::{get, get_json, post};
use crate::harness::origin::Origin;

const MONITOR: &str = "[monitors.web]
type = \"http\"
interval = \"200ms\"
timeout = \"100ms\"
rise = 1
fall = 2
";

/// A dual-stack pool eu (one IPv4, one IPv6 endpoint, each probed on its own
/// origin) before us (dual-stack, one origin), geo by subnet so that the ECS
/// scope is not 0.
fn dual_stack(e4: &Origin, e6: &Origin, us: &Origin) -> String {
    format!(
        "{}{MONITOR}
[pools.eu]
monitor = \"web\"
endpoints = [{{ address = \"192.0.2.1\", probe = \"{}\" }}, {{ address = \"2001:db8::1\", probe = \"{}\" }}]
[pools.us]
monitor = \"web\"
endpoints = [{{ address = \"192.0.2.9\", probe = \"{}\" }}, {{ address = \"2001:db8::9\", probe = \"{}\" }}]
[[balance]]
name = \"www.example.test\"
policy = \"geo\"
pools = [\"us\"]
subnets = {{ \"10.1.0.0/16\" = [\"eu\", \"us\"] }}
ttl = 30
",
        server_header(""),
        e4.addr(),
        e6.addr(),
        us.addr(),
        us.addr()
    )
}

async fn ask(s: &TestServer, qtype: RecordType, tcp: bool) -> Message {
    let ask = Ask::new("www.example.test.", qtype).ecs("10.1.2.0/24");
    if tcp {
        dig::tcp(s.dns, &ask).await
    } else {
        dig::udp(s.dns, &ask).await
    }
}

fn ttl(m: &Message) -> u32 {
    m.answers.first().map_or(0, |r| r.ttl)
}

both_paths! {
async fn a_dual_stack_pool_that_lost_ipv4_sends_a_on_and_keeps_aaaa() {
    let (e4, e6, us) = (Origin::start().await, Origin::start().await, Origin::start().await);
    let s = TestServer::start(&dual_stack(&e4, &e6, &us), &[]).await;
    let base = format!("http://{}", s.running.admin_addr);
    for tcp in [false, true] {
        let a = ask(&s, RecordType::A, tcp).await;
        assert_eq!(addrs(&a), vec![ip("192.0.2.1")], "tcp {tcp}");
        assert_eq!(ttl(&a), 30, "eu healthy and whole: full ttl");
    }
    e4.kill().await;
    // Within interval × fall + timeout (0.5 s), with a generous bound.
    eventually(Duration::from_secs(10), "A leaves eu", || async {
        let a = ask(&s, RecordType::A, false).await;
        (addrs(&a) == vec![ip("192.0.2.9")]).then_some(()).ok_or(format!("{:?}", addrs(&a)))
    })
    .await;
    for tcp in [false, true] {
        let a = ask(&s, RecordType::A, tcp).await;
        assert_eq!(a.metadata.response_code, ResponseCode::NoError);
        assert_eq!(addrs(&a), vec![ip("192.0.2.9")], "A from us, not NODATA (tcp {tcp})");
        assert_eq!(ttl(&a), 15, "not the first candidate: min_ttl (ttl/2)");
        let aaaa = ask(&s, RecordType::AAAA, tcp).await;
        assert_eq!(addrs(&aaaa), vec![ip("2001:db8::1")], "AAAA still from eu (tcp {tcp})");
        assert_eq!(ttl(&aaaa), 30, "eu is whole for AAAA");
        // The scope is the subnet rule's, whichever family answered.
        let (sa, sb) = (dig::ecs(&a).map(|e| e.2), dig::ecs(&aaaa).map(|e| e.2));
        assert_eq!((sa, sb), (Some(16), Some(16)));
    }
    // The views say it per family.
    let (code, _) = get(&format!("{base}/api/v1/pools/eu/health?family=v4")).await;
    assert_eq!(code, 503);
    let (code, _) = get(&format!("{base}/api/v1/pools/eu/health?family=v6")).await;
    assert_eq!(code, 200);
    let (code, v) = get_json(&format!("{base}/api/v1/pools/eu/health")).await;
    assert_eq!(code, 503, "without ?family: the worst family");
    assert_eq!(v["families"]["v4"]["state"], "down", "{v}");
    assert_eq!(v["families"]["v6"]["state"], "healthy", "{v}");
    assert_eq!((v["up"].as_u64(), v["total"].as_u64()), (Some(1), Some(2)));
    assert_eq!(v["last_error"], "refused", "the down endpoint's error: {v}");
    let (code, _) = get(&format!("{base}/api/v1/pools/eu/health?family=v5")).await;
    assert_eq!(code, 400);
    let txt = dig::txts(
        &dig::udp(s.dns, &Ask::new("_health.www.example.test.", RecordType::TXT)).await,
    );
    let eu = txt.iter().find(|t| t.starts_with("pool=eu ")).expect("eu line");
    assert!(
        eu.contains("v4=down:0/1") && eu.contains("v6=healthy:1/1") && eu.contains("ttl=15:down"),
        "{eu}"
    );
    let (_, v) = get_json(&format!(
        "{base}/api/v1/explain?name=www.example.test&type=A&client=10.1.2.0/24"
    ))
    .await;
    let steps: Vec<String> = v["trace"]["steps"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_string))
        .collect();
    assert!(
        steps.iter().any(|s| s.starts_with("pool eu: down for A (up 0/1; AAAA: healthy up 1/1)")),
        "{steps:?}"
    );
    assert!(
        steps.iter().any(|s| s == "ttl 15: first candidate eu not usable"),
        "{steps:?}"
    );
    assert_eq!(v["ecs_scope"], 16);
    // Revived: A comes home, at the full TTL again.
    e4.revive().await;
    eventually(Duration::from_secs(10), "A back to eu", || async {
        let a = ask(&s, RecordType::A, false).await;
        (addrs(&a) == vec![ip("192.0.2.1")] && ttl(&a) == 30)
            .then_some(())
            .ok_or(format!("{:?} ttl {}", addrs(&a), ttl(&a)))
    })
    .await;
    s.stop().await;
}
}

/// One name per mode, each over a pool whose only origin is dead.
fn all_down(dead: &Origin, alive: &Origin) -> String {
    let mut text = format!(
        "{}{MONITOR}
[pools.eu]
monitor = \"web\"
endpoints = [{{ address = \"192.0.2.1\", probe = \"{dead}\" }}, {{ address = \"2001:db8::1\", probe = \"{dead}\" }}]
[pools.us]
monitor = \"web\"
endpoints = [{{ address = \"192.0.2.9\", probe = \"{dead}\" }}]
[pools.spare]
monitor = \"web\"
endpoints = [{{ address = \"192.0.2.50\", probe = \"{alive}\" }}]
",
        server_header(""),
        dead = dead.addr(),
        alive = alive.addr(),
    );
    for (name, extra) in [
        ("fb", "fallback = \"spare\""),
        ("all", "on_all_down = \"all\""),
        ("nd", "on_all_down = \"nodata\""),
        ("sf", "on_all_down = \"servfail\""),
        ("default", ""),
    ] {
        text.push_str(&format!(
            "[[balance]]\nname = \"{name}.example.test\"\npolicy = \"failover\"\npools = [\"eu\", \"us\"]\nttl = 40\nmin_ttl = 8\n{extra}\n"
        ));
    }
    text
}

both_paths! {
async fn every_on_all_down_mode_answers_as_configured() {
    let (dead, alive) = (Origin::start().await, Origin::start().await);
    dead.kill().await;
    let s = TestServer::start(&all_down(&dead, &alive), &[]).await;
    let base = format!("http://{}", s.running.admin_addr);
    let q = |name: &str| Ask::new(&format!("{name}.example.test."), RecordType::A);
    for tcp in [false, true] {
        let get = |name: &'static str| {
            let ask = q(name);
            let dns = s.dns;
            async move {
                if tcp {
                    dig::tcp(dns, &ask).await
                } else {
                    dig::udp(dns, &ask).await
                }
            }
        };
        let fb = get("fb").await;
        assert_eq!(addrs(&fb), vec![ip("192.0.2.50")], "fallback: the spare pool");
        assert_eq!(ttl(&fb), 8, "an all-down answer carries min_ttl");
        let all = get("all").await;
        let mut got = addrs(&all);
        got.sort();
        assert_eq!(got, vec![ip("192.0.2.1"), ip("192.0.2.9")], "all: every IPv4 endpoint");
        assert_eq!(ttl(&all), 8);
        let nd = get("nd").await;
        assert_eq!(nd.metadata.response_code, ResponseCode::NoError);
        assert!(nd.answers.is_empty() && !nd.authorities.is_empty(), "nodata: SOA only");
        let sf = get("sf").await;
        assert_eq!(sf.metadata.response_code, ResponseCode::ServFail, "tcp {tcp}");
        assert!(sf.answers.is_empty());
        let default = get("default").await;
        assert_eq!(default.metadata.response_code, ResponseCode::NoError);
        assert!(default.answers.is_empty(), "no fallback: nodata by default");
    }
    // AAAA: eu has one, us none; all gives eu's.
    let all6 = dig::udp(s.dns, &Ask::new("all.example.test.", RecordType::AAAA)).await;
    assert_eq!(addrs(&all6), vec![ip("2001:db8::1")]);
    // explain names the mode.
    let (_, v) = get_json(&format!(
        "{base}/api/v1/explain?name=sf.example.test&type=A&client=192.0.2.77"
    ))
    .await;
    assert_eq!(v["trace"]["servfail"], true, "{v}");
    assert_eq!(v["trace"]["basis"], "all-down:servfail", "{v}");
    // Counted per name and mode.
    let (_, metrics) = get(&format!("{base}/metrics")).await;
    for (name, mode) in [("fb", "fallback"), ("all", "all"), ("nd", "nodata"), ("sf", "servfail"), ("default", "nodata")] {
        let line = format!(
            "geosteer_dns_fail_open_total{{name=\"{name}.example.test\",mode=\"{mode}\"}} "
        );
        let count: u64 = metrics
            .lines()
            .find_map(|l| l.strip_prefix(line.as_str()))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {line} in metrics"));
        assert!(count >= 2, "{line}{count}");
    }
    s.stop().await;
}
}

#[tokio::test]
async fn a_drained_endpoint_is_draining_in_every_view() {
    let (a, b) = (Origin::start().await, Origin::start().await);
    let config = format!(
        "{}{MONITOR}
[pools.eu]
monitor = \"web\"
endpoints = [{{ address = \"192.0.2.1\", probe = \"{}\" }}, {{ address = \"192.0.2.2\", probe = \"{}\" }}]
[[balance]]
name = \"www.example.test\"
policy = \"failover\"
pools = [\"eu\"]
ttl = 30
",
        server_header(""),
        a.addr(),
        b.addr()
    );
    let s = TestServer::start(&config, &[]).await;
    let base = format!("http://{}", s.running.admin_addr);
    let (code, body) = post(
        &format!("{base}/api/v1/pools/eu/endpoints/192.0.2.2/drain"),
        None,
    )
    .await;
    assert_eq!(code, 200, "{body}");
    let (_, st) = get_json(&format!("{base}/api/v1/status")).await;
    let eu = &st["pools"][0];
    assert_eq!(
        (eu["up"].as_u64(), eu["draining"].as_u64()),
        (Some(1), Some(1)),
        "{eu}"
    );
    assert_eq!(eu["endpoints"][1]["state"], "draining");
    assert_eq!(eu["endpoints"][1]["health"], "up");
    assert_eq!(eu["endpoints"][0]["state"], "up");
    let m = dig::udp(s.dns, &Ask::new("www.example.test.", RecordType::A)).await;
    assert_eq!(addrs(&m), vec![ip("192.0.2.1")]);
    assert_eq!(
        ttl(&m),
        15,
        "a pool with a drained endpoint is not whole: min_ttl"
    );
    let txt = dig::txts(
        &dig::udp(
            s.dns,
            &Ask::new("_health.www.example.test.", RecordType::TXT),
        )
        .await,
    );
    assert!(
        txt[0].starts_with("pool=eu state=healthy up=1/2 draining=1 "),
        "{txt:?}"
    );
    assert!(txt[0].contains("ttl=15:not-whole"), "{txt:?}");
    let (_, metrics) = get(&format!("{base}/metrics")).await;
    assert!(
        metrics.contains(
            "geosteer_endpoint_up{pool=\"eu\",endpoint=\"192.0.2.2\",state=\"draining\"} 0"
        ),
        "{metrics}"
    );
    assert!(
        metrics
            .contains("geosteer_pool_endpoints{pool=\"eu\",family=\"v4\",status=\"draining\"} 1")
    );
    let (_, page) = get(&format!("{base}/")).await;
    assert!(
        page.contains("<td class=\"state\">draining (up)</td>"),
        "{page}"
    );
    assert!(page.contains("(1 draining)"), "{page}");
    let out = tokio::task::spawn_blocking({
        let base = base.clone();
        move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_geosteer"))
                .args(["status", "--admin", &base])
                .output()
                .expect("run geosteer")
        }
    })
    .await
    .expect("cli");
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("(1 up of 2, 1 draining)"), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.contains("192.0.2.2") && l.contains("draining")),
        "{table}"
    );
    // Both down: the pool shows its last error, not a green 0 %.
    post(
        &format!("{base}/api/v1/pools/eu/endpoints/192.0.2.2/undrain"),
        None,
    )
    .await;
    a.kill().await;
    b.kill().await;
    eventually(
        Duration::from_secs(10),
        "eu down with its last error",
        || async {
            let (_, v) = get_json(&format!("{base}/api/v1/pools/eu/health")).await;
            (v["state"] == "down" && v["last_error"].is_string())
                .then_some(())
                .ok_or(v.to_string())
        },
    )
    .await;
    let txt = dig::txts(
        &dig::udp(
            s.dns,
            &Ask::new("_health.www.example.test.", RecordType::TXT),
        )
        .await,
    );
    assert!(txt[0].contains("err=- last_error="), "{txt:?}");
    let (_, page) = get(&format!("{base}/")).await;
    assert!(!page.contains("<td>0.00%</td><td>-</td><td class=\"last-error\"></td>"));
    s.stop().await;
}
