//! CNAME endpoints and chains (issue 21 items 1, 3, 4) from the outside:
//! a pool of `cname` endpoints answers one CNAME for every query type; a
//! CNAME to another balanced name is followed in the same answer, each
//! name deciding by its own policy for the same client; a CNAME out of our
//! names is the answer alone. On the fast path and the handler, with and
//! without DO (an unsigned zone answers alike).

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{RData, RecordType};

use crate::both_paths;
use crate::harness::dig::{self, Ask, ecs};
use crate::harness::geosteer::{TestServer, dnssec_ok, server_header};
use crate::harness::mmdb;

pub const CDN: &str = r#"
[pools.cdn-a]
endpoints = [{ cname = "www.cdn-a.example.net." }]
[pools.cdn-b]
endpoints = [{ cname = "WWW.cdn-b.example.net" }]
[pools.to-edge]
endpoints = [{ cname = "edge.example.test" }]
[pools.eu-edge]
endpoints = [{ address = "192.0.2.1" }, { address = "2001:db8::1" }]
[pools.us-edge]
endpoints = [{ address = "192.0.2.9" }]

[[balance]]
name = "cdn.example.test"
policy = "geo"
pools = ["cdn-b", "cdn-a"]
countries = { DE = ["cdn-a"] }
ttl = 60

[[balance]]
name = "chain.example.test"
policy = "geo"
pools = ["cdn-b"]
countries = { DE = ["to-edge"] }
ttl = 40

[[balance]]
name = "edge.example.test"
policy = "failover"
pools = ["eu-edge", "us-edge"]
ttl = 20
"#;

async fn start() -> TestServer {
    let cfg = format!("{}{CDN}", server_header("geoip = \"geo.mmdb\""));
    TestServer::start(&cfg, &[("geo.mmdb", &mmdb::standard_country_db())]).await
}

/// The answer section as `owner TTL TYPE data` lines (RRSIGs left out).
pub fn lines(m: &Message) -> Vec<String> {
    m.answers
        .iter()
        .filter(|r| r.record_type() != RecordType::RRSIG)
        .map(|r| {
            let data = match &r.data {
                RData::CNAME(c) => c.0.to_string(),
                RData::A(a) => a.0.to_string(),
                RData::AAAA(a) => a.0.to_string(),
                other => format!("{other:?}"),
            };
            format!("{} {} {} {data}", r.name, r.ttl, r.record_type())
        })
        .collect()
}

/// [`lines`] without the TTLs (a resolver's cache counts them down).
pub fn untimed(m: &Message) -> Vec<String> {
    lines(m)
        .iter()
        .map(|l| {
            let mut w: Vec<&str> = l.split(' ').collect();
            w.remove(1);
            w.join(" ")
        })
        .collect()
}

async fn ask(s: &TestServer, name: &str, qtype: RecordType, subnet: &str) -> Message {
    let mut q = Ask::new(name, qtype).ecs(subnet);
    if dnssec_ok() {
        q = q.dnssec_ok();
    }
    dig::udp(s.dns, &q).await
}

both_paths! {
async fn a_cname_pool_answers_one_cname_for_every_type() {
    let s = start().await;
    for qtype in [
        RecordType::A,
        RecordType::AAAA,
        RecordType::TXT,
        RecordType::MX,
        RecordType::CNAME,
    ] {
        let de = ask(&s, "cdn.example.test.", qtype, "5.9.1.0/24").await;
        assert_eq!(de.metadata.response_code, ResponseCode::NoError, "{qtype}");
        assert!(de.metadata.authoritative, "{qtype}: authoritative");
        assert_eq!(
            lines(&de),
            ["cdn.example.test. 60 CNAME www.cdn-a.example.net."],
            "{qtype} from Germany"
        );
        let us = ask(&s, "cdn.example.test.", qtype, "8.8.8.0/24").await;
        assert_eq!(
            lines(&us),
            ["cdn.example.test. 60 CNAME www.cdn-b.example.net."],
            "{qtype} from the US"
        );
        // The answer depends on the client's GeoIP network (/16 for 5.9/16).
        assert_eq!(ecs(&de).map(|e| e.2), Some(16), "{qtype}: ECS scope");
    }
    s.stop().await;
}

async fn a_cname_to_a_balanced_name_is_followed_in_the_same_answer() {
    let s = start().await;
    let de = ask(&s, "chain.example.test.", RecordType::A, "5.9.1.0/24").await;
    assert_eq!(
        lines(&de),
        [
            "chain.example.test. 40 CNAME edge.example.test.",
            "edge.example.test. 20 A 192.0.2.1",
        ]
    );
    assert_eq!(ecs(&de).map(|e| e.2), Some(16), "the narrowest scope of the chain");
    let de6 = ask(&s, "chain.example.test.", RecordType::AAAA, "5.9.1.0/24").await;
    assert_eq!(
        lines(&de6),
        [
            "chain.example.test. 40 CNAME edge.example.test.",
            "edge.example.test. 20 AAAA 2001:db8::1",
        ]
    );
    // Out of our names: the CNAME alone, the resolver follows it.
    let us = ask(&s, "chain.example.test.", RecordType::A, "8.8.8.0/24").await;
    assert_eq!(lines(&us), ["chain.example.test. 40 CNAME www.cdn-b.example.net."]);
    // Other types get the first CNAME alone.
    let txt = ask(&s, "chain.example.test.", RecordType::TXT, "5.9.1.0/24").await;
    assert_eq!(lines(&txt), ["chain.example.test. 40 CNAME edge.example.test."]);
    // Over TCP too (always the handler).
    let mut q = Ask::new("chain.example.test.", RecordType::A).ecs("5.9.1.0/24");
    if dnssec_ok() {
        q = q.dnssec_ok();
    }
    assert_eq!(lines(&dig::tcp(s.dns, &q).await), lines(&de));
    s.stop().await;
}

async fn a_chain_ending_without_an_address_of_the_family_carries_the_soa() {
    let s = start().await;
    // edge's pools: eu-edge has one IPv6 endpoint, drained here.
    let url = format!(
        "http://{}/api/v1/pools/eu-edge/endpoints/2001:db8::1/drain",
        s.running.admin_addr
    );
    let (code, body) = crate::harness::http::post(&url, None).await;
    assert_eq!(code, 200, "{body}");
    let m = crate::harness::eventually::eventually(
        std::time::Duration::from_secs(5),
        "the drain reaches answers",
        async || {
            let m = ask(&s, "chain.example.test.", RecordType::AAAA, "5.9.1.0/24").await;
            if lines(&m).len() == 1 { Ok(m) } else { Err(format!("{:?}", lines(&m))) }
        },
    )
    .await;
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert_eq!(lines(&m), ["chain.example.test. 40 CNAME edge.example.test."]);
    assert!(
        m.authorities.iter().any(|r| r.record_type() == RecordType::SOA),
        "NODATA at the end of the chain: the SOA"
    );
    s.stop().await;
}
}

/// A signed zone: a chain (in-zone) and a CNAME out of it, for DO queries.
async fn start_signed() -> (TestServer, String) {
    use crate::harness::keys::{self, Alg};
    let dir = tempfile::tempdir().expect("tempdir");
    let key = keys::generate(dir.path(), "zone.pem", Alg::EcdsaP256);
    let pem = std::fs::read(&key).expect("key");
    let cfg = format!(
        "{}[pools.cdn-a]
endpoints = [{{ cname = \"www.cdn-a.example.net\" }}]
[pools.to-edge]
endpoints = [{{ cname = \"edge.example.test\" }}]
[pools.edge]
endpoints = [{{ address = \"192.0.2.1\" }}, {{ address = \"2001:db8::1\" }}]
[[balance]]
name = \"cdn.example.test\"
policy = \"failover\"
pools = [\"cdn-a\"]
[[balance]]
name = \"chain.example.test\"
policy = \"failover\"
pools = [\"to-edge\"]
[[balance]]
name = \"edge.example.test\"
policy = \"failover\"
pools = [\"edge\"]

[dnssec.\"example.test\"]
keys = [\"zone.pem\"]
",
        server_header("")
    );
    let s = TestServer::start(&cfg, &[("zone.pem", &pem)]).await;
    (s, keys::dnskey(&key, "example.test", Alg::EcdsaP256))
}

/// DO in a signed zone: each RRset of a CNAME answer carries its RRSIGs,
/// which verify with the zone's DNSKEY, on both UDP paths and TCP; delv
/// fully validates the chain and unbound returns it with AD.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_cname_answers_validate() {
    for fast in [true, false] {
        let (s, anchor) = crate::harness::geosteer::FAST_PATH
            .scope(fast, start_signed())
            .await;
        let keys = dig::udp(
            s.dns,
            &Ask::new("example.test.", RecordType::DNSKEY).dnssec_ok(),
        )
        .await
        .answers;
        for (name, want) in [
            (
                "chain.example.test.",
                vec![
                    "chain.example.test. 30 CNAME edge.example.test.",
                    "edge.example.test. 30 A 192.0.2.1",
                ],
            ),
            (
                "cdn.example.test.",
                vec!["cdn.example.test. 30 CNAME www.cdn-a.example.net."],
            ),
        ] {
            let q = Ask::new(name, RecordType::A).dnssec_ok();
            for m in [dig::udp(s.dns, &q).await, dig::tcp(s.dns, &q).await] {
                assert_eq!(lines(&m), want, "fast path {fast}");
                let checked = crate::dnssec::verify_section(&m.answers, &keys);
                assert_eq!(checked, want.len(), "one RRSIG per RRset: {m:?}");
            }
        }
        if fast {
            let dir = tempfile::tempdir().expect("tempdir");
            let file = crate::harness::delv::anchor_file(dir.path(), "anchor.conf", &anchor);
            let out = crate::harness::delv::delv(s.dns, &file, "chain.example.test", "A").await;
            assert!(out.contains("; fully validated"), "{out}");
            assert!(
                out.contains("CNAME\tedge.example.test.")
                    || out.contains("CNAME edge.example.test."),
                "{out}"
            );
            let u = crate::harness::unbound::Unbound::start(s.dns, "example.test", &anchor);
            let m = u.ask("chain.example.test.", RecordType::AAAA, None).await;
            assert_eq!(
                untimed(&m),
                [
                    "chain.example.test. CNAME edge.example.test.",
                    "edge.example.test. AAAA 2001:db8::1",
                ],
                "{}",
                u.log()
            );
            assert!(
                crate::harness::unbound::ad(&m),
                "validated: {m:?}\n{}",
                u.log()
            );
            drop(u);
        }
        s.stop().await;
    }
}

/// geo → CNAME to a weighted name in Europe, to a failover name elsewhere.
const TWO_LEVEL: &str = r#"
[pools.to-eu]
endpoints = [{ cname = "eu.edge.example.test" }]
[pools.to-us]
endpoints = [{ cname = "us.edge.example.test" }]
[pools.fra]
endpoints = [{ address = "192.0.2.10" }, { address = "192.0.2.11" }]
[pools.ams]
endpoints = [{ address = "192.0.2.20" }]
[pools.iad]
endpoints = [{ address = "198.51.100.10" }]

[[balance]]
name = "site.example.test"
policy = "geo"
pools = ["to-us", "to-eu"]
continents = { EU = ["to-eu", "to-us"] }
ttl = 50

[[balance]]
name = "eu.edge.example.test"
policy = "weighted"
pools = ["fra", "ams"]
ttl = 20

[[balance]]
name = "us.edge.example.test"
policy = "failover"
pools = ["iad"]
ttl = 10
"#;

/// 20 client subnets: (ECS subnet, country) for the GeoIP database.
fn twenty_clients() -> Vec<(String, &'static str)> {
    let countries = ["DE", "FR", "NL", "US", "CA", "JP", "BR", "PL", "IT", "AU"];
    (0..20)
        .map(|i| {
            (
                format!("10.{}.0.0/24", 20 + i),
                countries[i % countries.len()],
            )
        })
        .collect()
}

/// For 20 clients, the fast path, the handler and TCP answer the chain
/// `explain` shows: the same CNAME (decided by geo), the same TTLs and ECS
/// scope (the narrowest of the chain), and an address of a pool the
/// followed name's step lists as a candidate (the weighted step draws).
#[tokio::test]
async fn a_two_level_chain_agrees_with_explain_for_twenty_clients() {
    let clients = twenty_clients();
    // Each client's /22 in the GeoIP database: the prefix a geo answer
    // depends on.
    let nets: Vec<(String, &str)> = clients
        .iter()
        .map(|(net, cc)| (net.replace(".0/24", ".0/22"), *cc))
        .collect();
    let db_entries: Vec<(&str, &str)> = nets.iter().map(|(n, c)| (n.as_str(), *c)).collect();
    let geo = mmdb::country_db(&db_entries);
    let start = |fast: bool| {
        let cfg = format!("{}{TWO_LEVEL}", server_header("geoip = \"geo.mmdb\"")).replacen(
            "fast_path = true\n",
            &format!("fast_path = {fast}\n"),
            1,
        );
        let geo = geo.clone();
        async move { TestServer::start(&cfg, &[("geo.mmdb", &geo)]).await }
    };
    let fast = start(true).await;
    let hickory = start(false).await;
    let admin = format!("http://{}", fast.running.admin_addr);
    let pools: std::collections::HashMap<&str, Vec<&str>> = [
        ("fra", vec!["192.0.2.10", "192.0.2.11"]),
        ("ams", vec!["192.0.2.20"]),
        ("iad", vec!["198.51.100.10"]),
    ]
    .into_iter()
    .collect();
    let (mut eu, mut elsewhere) = (0, 0);
    for (subnet, cc) in &clients {
        let (code, v) = crate::harness::http::get_json(&format!(
            "{admin}/api/v1/explain?name=site.example.test&type=A&client={}",
            subnet.replace('/', "%2F")
        ))
        .await;
        assert_eq!(code, 200, "{v}");
        let t = &v["trace"];
        let cname = t["cname"].as_str().expect("the geo step answers a CNAME");
        let step = &t["chain"][0];
        assert_eq!(
            Some(cname),
            step["name"].as_str(),
            "{subnet}: the chain follows the CNAME's target: {v}"
        );
        let candidates: Vec<&str> = step["steps"]
            .as_array()
            .expect("steps")
            .iter()
            .filter_map(|s| s.as_str()?.strip_prefix("candidate order: "))
            .flat_map(|l| l.split(", "))
            .flat_map(|p| pools.get(p).cloned().unwrap_or_default())
            .collect();
        let want_lines = (cname.to_string(), t["ttl"].as_u64(), step["ttl"].as_u64());
        let scope = v["ecs_scope"].as_u64().map(|s| s as u8);
        if matches!(*cc, "DE" | "FR" | "NL" | "PL" | "IT") {
            eu += 1;
            assert_eq!(cname, "eu.edge.example.test.", "{subnet} ({cc})");
        } else {
            elsewhere += 1;
            assert_eq!(cname, "us.edge.example.test.", "{subnet} ({cc})");
        }
        let ask = Ask::new("site.example.test.", RecordType::A).ecs(subnet);
        for (path, m) in [
            ("fast path", dig::udp(fast.dns, &ask).await),
            ("hickory", dig::udp(hickory.dns, &ask).await),
            ("TCP", dig::tcp(fast.dns, &ask).await),
        ] {
            let got = lines(&m);
            assert_eq!(got.len(), 2, "{subnet} {path}: {got:?}");
            let first: Vec<&str> = got[0].split(' ').collect();
            let second: Vec<&str> = got[1].split(' ').collect();
            assert_eq!(
                (
                    first[3].to_string(),
                    first[1].parse().ok(),
                    second[1].parse().ok()
                ),
                want_lines,
                "{subnet} {path}: {got:?} against explain {v}"
            );
            assert_eq!(second[0], cname, "{subnet} {path}: the A is at the target");
            assert!(
                candidates.contains(&second[3]),
                "{subnet} {path}: {} is not in the step's candidates {candidates:?}",
                second[3]
            );
            assert_eq!(ecs(&m).map(|e| e.2), scope, "{subnet} {path}: ECS scope");
        }
        // The geo step decided on the client's /22: the chain's scope.
        assert_eq!(scope, Some(22), "{subnet}: {v}");
    }
    assert_eq!((eu, elsewhere), (10, 10));
    fast.stop().await;
    hickory.stop().await;
}

/// The "CDN": a second geosteer serving cdn.test, whose names answer EU and
/// US clients differently (by the ECS option the resolver forwards).
const CDN_ZONE: &str = "$ORIGIN cdn.test.
$TTL 300
@ IN SOA ns1.cdn.test. hostmaster.cdn.test. 1 3600 600 86400 60
@ IN NS ns1.cdn.test.
ns1 IN A 127.0.0.1
";

const CDN_SIDE: &str = r#""cdn.test" = "cdn.test.zone"

[pools.a-eu]
endpoints = [{ address = "192.0.2.101" }]
[pools.a-us]
endpoints = [{ address = "192.0.2.102" }]
[pools.b-eu]
endpoints = [{ address = "198.51.100.201" }]
[pools.b-us]
endpoints = [{ address = "198.51.100.202" }]

[[balance]]
name = "www.cdn-a.cdn.test"
policy = "geo"
pools = ["a-us", "a-eu"]
countries = { DE = ["a-eu"] }

[[balance]]
name = "www.cdn-b.cdn.test"
policy = "geo"
pools = ["b-us", "b-eu"]
countries = { DE = ["b-eu"] }
"#;

const STEERING_SIDE: &str = r#"
[pools.cdn-a]
endpoints = [{ cname = "www.cdn-a.cdn.test" }]
[pools.cdn-b]
endpoints = [{ cname = "www.cdn-b.cdn.test" }]

[[balance]]
name = "cdn.example.test"
policy = "geo"
pools = ["cdn-b", "cdn-a"]
countries = { DE = ["cdn-a"] }
"#;

/// unbound in front: it follows geosteer's CNAME out of example.test to the
/// CDN's own servers (a second geosteer on loopback), forwarding the
/// client's subnet to both, so an EU client ends at CDN A's EU address and
/// a US client at CDN B's US address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resolver_follows_the_cname_to_the_cdn_for_eu_and_us_clients() {
    let geo = mmdb::standard_country_db();
    let steering = TestServer::start(
        &format!("{}{STEERING_SIDE}", server_header("geoip = \"geo.mmdb\"")),
        &[("geo.mmdb", &geo)],
    )
    .await;
    let cdn = TestServer::start(
        &format!("{}{CDN_SIDE}", server_header("geoip = \"geo.mmdb\"")),
        &[("geo.mmdb", &geo), ("cdn.test.zone", CDN_ZONE.as_bytes())],
    )
    .await;
    let u = crate::harness::unbound::Unbound::start_stubs(&[
        (steering.dns, "example.test"),
        (cdn.dns, "cdn.test"),
    ]);
    for (subnet, cname, addr) in [
        ("5.9.1.0/24", "www.cdn-a.cdn.test.", "192.0.2.101"),
        ("8.8.8.0/24", "www.cdn-b.cdn.test.", "198.51.100.202"),
    ] {
        let m = u
            .ask("cdn.example.test.", RecordType::A, Some(subnet))
            .await;
        assert_eq!(
            m.metadata.response_code,
            ResponseCode::NoError,
            "{}",
            u.log()
        );
        assert_eq!(
            untimed(&m),
            [
                format!("cdn.example.test. CNAME {cname}"),
                format!("{cname} A {addr}"),
            ],
            "{subnet}\n{}",
            u.log()
        );
    }
    drop(u);
    steering.stop().await;
    cdn.stop().await;
}

/// `explain` in text shows each step: the name's trace and CNAME, then the
/// name it followed with its own trace and record, and the chain's scope.
#[tokio::test]
async fn explain_renders_every_step_of_a_chain() {
    let s = start().await;
    let snap = s.running.shared.load_full();
    let e = geosteer::explain::explain(&snap, "chain.example.test", "A", "5.9.1.0/24")
        .expect("explain");
    let text = e.render();
    let want = [
        "chain.example.test. A for client 5.9.1.0/24",
        "  1. client 5.9.1.0/24: country DE",
        "  answer: chain.example.test. 40 IN CNAME edge.example.test.",
        "  followed in the same answer: edge.example.test.",
        "  1. policy: failover",
        "  answer: edge.example.test. 20 IN A 192.0.2.1",
        "  ECS scope: /16",
    ];
    let mut at = 0;
    for w in want {
        let Some(i) = text[at..].find(w) else {
            panic!("{w:?} missing (in order) in:\n{text}");
        };
        at += i + w.len();
    }
    assert!(
        text.contains("CNAME edge.example.test. drawn by weight"),
        "{text}"
    );
    s.stop().await;
}
