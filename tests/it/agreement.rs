//! One answer, three encoders: the UDP fast path, hickory's handler (over
//! UDP and TCP) and `/api/v1/explain` must say the same thing for the same
//! client, family, health and DO bit. They all call `steer::answer`; this
//! holds them to it from the outside, over a matrix of clients (ECS by
//! country, by subnet, by a hole in a subnet, unknown, source prefix 0, no
//! ECS), both families, DO on and off, and three health states made with
//! drains; for address names and a name of CNAME pools (one CNAME out of our
//! names, one chained to another balanced name).

use std::net::IpAddr;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;

use crate::harness::dig::{self, Ask};
use crate::harness::eventually::eventually;
use crate::harness::geosteer::{TestServer, server_header};
use crate::harness::http::{get_json, post};
use crate::harness::mmdb;

/// Every answer carries every usable endpoint (answers = 8), so the answer
/// is the same on every path without sharing an RNG.
const BALANCE: &str = r#"
[pools.eu]
endpoints = [{ address = "192.0.2.1" }, { address = "192.0.2.2" }, { address = "2001:db8::1" }]
[pools.us]
endpoints = [{ address = "192.0.2.9" }]
[pools.ap]
endpoints = [{ address = "2001:db8::3" }, { address = "192.0.2.3" }]

[[balance]]
name = "www.example.test"
policy = "geo"
pools = ["us", "eu", "ap"]
countries = { DE = ["eu", "us"], JP = ["ap", "eu"] }
subnets = { "10.1.0.0/16" = ["eu"], "10.1.2.0/24" = ["ap"] }
fallback = "ap"
answers = 8
ttl = 30

[[balance]]
name = "sf.example.test"
policy = "failover"
pools = ["eu"]
on_all_down = "servfail"
answers = 8

[[balance]]
name = "all.example.test"
policy = "failover"
pools = ["us", "eu"]
on_all_down = "all"
answers = 8

[pools.to-sf]
endpoints = [{ cname = "sf.example.test" }]
[pools.cdn]
endpoints = [{ cname = "www.cdn.example.net" }]

[[balance]]
name = "cn.example.test"
policy = "geo"
pools = ["cdn"]
countries = { DE = ["to-sf", "cdn"] }
ttl = 45
"#;

/// ECS subnets (None: no ECS option, the packet source decides).
const CLIENTS: [Option<&str>; 9] = [
    Some("5.9.1.0/24"),
    Some("8.8.8.0/24"),
    Some("203.0.113.0/24"),
    Some("10.1.2.0/24"),
    Some("10.1.9.0/24"),
    Some("10.1.0.0/16"),
    Some("198.51.100.0/24"),
    Some("2a01:4f8::/48"),
    Some("0.0.0.0/0"),
];

/// What a response says, as comparable facts.
#[derive(Debug, PartialEq)]
struct Said {
    servfail: bool,
    /// The CNAME targets, in order.
    cnames: Vec<String>,
    records: Vec<IpAddr>,
    ttl: Option<u32>,
    /// The ECS scope, when the query had an ECS option.
    scope: Option<u8>,
}

fn said(m: &Message, ecs: bool) -> Said {
    let mut records = dig::addrs(m);
    records.sort();
    Said {
        servfail: m.metadata.response_code == ResponseCode::ServFail,
        cnames: m
            .answers
            .iter()
            .filter_map(|r| match &r.data {
                hickory_proto::rr::RData::CNAME(c) => Some(c.0.to_string()),
                _ => None,
            })
            .collect(),
        ttl: m
            .answers
            .iter()
            .find(|r| matches!(r.record_type(), RecordType::A | RecordType::AAAA))
            .map(|r| r.ttl),
        records,
        scope: if ecs { dig::ecs(m).map(|e| e.2) } else { None },
    }
}

async fn explained(admin: &str, name: &str, qtype: &str, client: &str, ecs: bool) -> Said {
    let (code, v) = get_json(&format!(
        "{admin}/api/v1/explain?name={name}&type={qtype}&client={}",
        client.replace('/', "%2F")
    ))
    .await;
    assert_eq!(code, 200, "explain {name} {qtype} {client}: {v}");
    // A chain: each step's CNAME, the last step's records and TTL.
    let mut cnames = Vec::new();
    let mut servfail = false;
    let mut t = &v["trace"];
    loop {
        servfail |= t["servfail"].as_bool().expect("servfail");
        let Some(c) = t["cname"].as_str() else {
            break;
        };
        cnames.push(c.to_string());
        match v["trace"]["chain"].get(cnames.len() - 1) {
            Some(next) => t = next,
            None => break,
        }
    }
    if servfail {
        cnames.clear();
    }
    let mut records: Vec<IpAddr> = t["records"]
        .as_array()
        .expect("records")
        .iter()
        .map(|r| r.as_str().expect("address").parse().expect("ip"))
        .collect();
    records.sort();
    if servfail {
        records.clear();
    }
    Said {
        servfail,
        cnames,
        ttl: (!records.is_empty()).then(|| t["ttl"].as_u64().expect("ttl") as u32),
        records,
        scope: ecs.then(|| v["ecs_scope"].as_u64().expect("ecs_scope") as u8),
    }
}

async fn drain(servers: &[&TestServer], pool: &str, addr: &str) {
    for s in servers {
        let url = format!(
            "http://{}/api/v1/pools/{pool}/endpoints/{addr}/drain",
            s.running.admin_addr
        );
        let (code, body) = post(&url, None).await;
        assert_eq!(code, 200, "drain {pool} {addr}: {body}");
    }
}

/// Waits until both servers' explain sees `addr` of `pool` draining (the
/// drain reaches queries through the health writer, not at once).
async fn wait_drained(servers: &[&TestServer], pool: &str, addr: &str) {
    for s in servers {
        let url = format!("http://{}/api/v1/pools/{pool}/health", s.running.admin_addr);
        let what = format!("{pool} {addr} draining");
        eventually(std::time::Duration::from_secs(5), &what, async || {
            let (_, v) = get_json(&url).await;
            let draining = v["endpoints"].as_array().is_some_and(|es| {
                es.iter()
                    .any(|e| e["address"] == addr && e["state"] == "draining")
            });
            if draining {
                Ok(())
            } else {
                Err(format!("{v}"))
            }
        })
        .await;
    }
}

/// Asks every (name, type, client, DO) of the matrix on the three paths and
/// compares each with `explain`; returns how many answers were not NOERROR
/// with records, so a state can show it reached the edge it is for.
async fn compare_all(fast: &TestServer, hickory: &TestServer, state: &str) -> (usize, usize) {
    let admin = format!("http://{}", fast.running.admin_addr);
    let (mut empty, mut servfail) = (0, 0);
    for name in [
        "www.example.test",
        "sf.example.test",
        "all.example.test",
        "cn.example.test",
    ] {
        for (qtype, rtype) in [("A", RecordType::A), ("AAAA", RecordType::AAAA)] {
            for client in CLIENTS.iter().copied().chain([None]) {
                for do_bit in [false, true] {
                    let mut ask = Ask::new(&format!("{name}."), rtype);
                    if let Some(c) = client {
                        ask = ask.ecs(c);
                    }
                    if do_bit {
                        ask = ask.dnssec_ok();
                    }
                    let ecs = client.is_some();
                    let want =
                        explained(&admin, name, qtype, client.unwrap_or("127.0.0.1"), ecs).await;
                    let what = format!("{state}: {name} {qtype} client {client:?} DO {do_bit}");
                    let paths = [
                        ("UDP fast path", said(&dig::udp(fast.dns, &ask).await, ecs)),
                        ("UDP hickory", said(&dig::udp(hickory.dns, &ask).await, ecs)),
                        ("TCP", said(&dig::tcp(fast.dns, &ask).await, ecs)),
                    ];
                    for (path, got) in paths {
                        assert_eq!(got, want, "{what}: {path} disagrees with explain");
                    }
                    empty += usize::from(
                        want.records.is_empty() && want.cnames.is_empty() && !want.servfail,
                    );
                    servfail += usize::from(want.servfail);
                }
            }
        }
    }
    (empty, servfail)
}

#[tokio::test]
async fn the_fast_path_the_handler_and_explain_give_one_answer() {
    let files: [(&str, &[u8]); 1] = [("geo.mmdb", &mmdb::standard_country_db())];
    let start = |fast: bool| {
        // server_header writes the test's default path (the fast one).
        let cfg = format!("{}{BALANCE}", server_header("geoip = \"geo.mmdb\"")).replacen(
            "fast_path = true\n",
            &format!("fast_path = {fast}\n"),
            1,
        );
        async move { TestServer::start(&cfg, &files).await }
    };
    let fast = start(true).await;
    let hickory = start(false).await;
    let both = [&fast, &hickory];

    let (empty, servfail) = compare_all(&fast, &hickory, "all up").await;
    assert_eq!(
        (empty, servfail),
        (0, 0),
        "all up: every answer has records"
    );

    // eu loses its IPv4 endpoints: A for eu's clients moves on, AAAA stays.
    for a in ["192.0.2.1", "192.0.2.2"] {
        drain(&both, "eu", a).await;
        wait_drained(&both, "eu", a).await;
    }
    let (_, servfail) = compare_all(&fast, &hickory, "eu without IPv4").await;
    assert!(
        servfail > 0,
        "sf.example.test A has no usable pool: SERVFAIL"
    );

    // Every IPv4 endpoint drained: fallback, all and servfail all answer.
    for (pool, a) in [
        ("us", "192.0.2.9"),
        ("ap", "192.0.2.3"),
        ("eu", "2001:db8::1"),
    ] {
        drain(&both, pool, a).await;
        wait_drained(&both, pool, a).await;
    }
    let (_, servfail) = compare_all(&fast, &hickory, "all IPv4 drained").await;
    assert!(
        servfail >= 2,
        "sf.example.test is SERVFAIL for both families"
    );
    fast.stop().await;
    hickory.stop().await;
}
