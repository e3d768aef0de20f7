//! DNS behaviour (DESIGN §4) over real UDP and TCP sockets.

use std::time::Duration;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{RData, RecordType};

use crate::both_paths;
use crate::harness::dig::{self, Ask, addrs, ecs, ip};
use crate::harness::geosteer::{TestServer, server_header};
use crate::harness::mmdb;

/// Three pools without monitors (always up), a geo name and a failover name.
fn config(extra_balance: &str) -> String {
    format!(
        "{}
[pools.us]
location = [39.0, -77.5]
endpoints = [{{ address = \"192.0.2.1\" }}, {{ address = \"2001:db8:1::1\" }}]
[pools.eu]
location = [50.1, 8.7]
endpoints = [{{ address = \"192.0.2.2\" }}, {{ address = \"2001:db8:2::1\" }}]
[pools.ap]
location = [35.7, 139.7]
endpoints = [{{ address = \"192.0.2.3\" }}]

[[balance]]
name = \"www.example.test\"
policy = \"geo\"
pools = [\"us\", \"eu\", \"ap\"]
ttl = 30
countries = {{ DE = [\"eu\"], JP = [\"ap\"] }}
{extra_balance}
",
        server_header("geoip = \"geo.mmdb\"")
    )
}

async fn start() -> TestServer {
    TestServer::start(&config(""), &[("geo.mmdb", &mmdb::standard_country_db())]).await
}

both_paths! {
async fn answers_authoritatively_over_udp_and_tcp() {
    let s = start().await;
    for m in [
        dig::udp(s.dns, &Ask::new("www.example.test.", RecordType::A)).await,
        dig::tcp(s.dns, &Ask::new("www.example.test.", RecordType::A)).await,
    ] {
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert!(m.metadata.authoritative, "AA must be set");
        assert!(!m.metadata.recursion_available, "RA must be clear");
        assert_eq!(addrs(&m).len(), 1);
        assert_eq!(m.answers[0].ttl, 30);
    }
    // Static names come from the zone file.
    let m = dig::udp(s.dns, &Ask::new("static.example.test.", RecordType::A)).await;
    assert_eq!(addrs(&m), vec![ip("192.0.2.10")]);
    assert!(m.metadata.authoritative);
    s.stop().await;
}
}

both_paths! {
async fn negative_answers_carry_the_soa() {
    let s = TestServer::start(
        &config("[[balance]]\nname = \"v4only.example.test\"\npolicy = \"failover\"\npools = [\"ap\"]\n"),
        &[("geo.mmdb", &mmdb::standard_country_db())],
    )
    .await;
    let m = dig::udp(s.dns, &Ask::new("nope.example.test.", RecordType::A)).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    assert!(
        m.authorities
            .iter()
            .any(|r| r.record_type() == RecordType::SOA)
    );
    // NODATA at a static name.
    let m = dig::udp(s.dns, &Ask::new("static.example.test.", RecordType::MX)).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.answers.is_empty());
    assert!(
        m.authorities
            .iter()
            .any(|r| r.record_type() == RecordType::SOA)
    );
    // NODATA at a balanced name for a type it has no record of.
    let m = dig::udp(s.dns, &Ask::new("www.example.test.", RecordType::MX)).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.answers.is_empty());
    let soa = m
        .authorities
        .iter()
        .find(|r| r.record_type() == RecordType::SOA)
        .expect("SOA");
    assert_eq!(soa.ttl, 60, "negative TTL is min(SOA TTL, MINIMUM)");
    // Other types at a balanced name come from the zone file.
    let m = dig::udp(s.dns, &Ask::new("www.example.test.", RecordType::TXT)).await;
    assert!(matches!(&m.answers[0].data, RData::TXT(_)));
    // AAAA for a client whose first pool (ap) has no IPv6 endpoint: the
    // next pool that has one answers (health is per family), not NODATA.
    let m = dig::udp(
        s.dns,
        &Ask::new("www.example.test.", RecordType::AAAA).ecs("203.0.113.0/24"),
    )
    .await;
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert_eq!(addrs(&m), vec![ip("2001:db8:1::1")], "ap has no IPv6: us answers");
    // NODATA only when no pool of the name has an endpoint of the family.
    let m = dig::udp(s.dns, &Ask::new("v4only.example.test.", RecordType::AAAA)).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(
        m.answers.is_empty(),
        "no pool of v4only has an IPv6 endpoint: {:?}",
        m.answers
    );
    assert!(
        m.authorities
            .iter()
            .any(|r| r.record_type() == RecordType::SOA)
    );
    s.stop().await;
}
}

both_paths! {
async fn refuses_names_outside_served_zones() {
    let s = start().await;
    for ask in [
        Ask::new("www.example.com.", RecordType::A),
        Ask::new("test.", RecordType::SOA),
    ] {
        let m = dig::udp(s.dns, &ask).await;
        assert_eq!(
            m.metadata.response_code,
            ResponseCode::Refused,
            "{}",
            ask.name
        );
        assert!(!m.metadata.recursion_available);
    }
    s.stop().await;
}
}

both_paths! {
async fn names_are_case_insensitive_and_the_question_is_echoed() {
    let s = start().await;
    let m = dig::udp(
        s.dns,
        &Ask::new("WwW.ExAmPlE.TeSt.", RecordType::A).ecs("5.9.1.0/24"),
    )
    .await;
    assert_eq!(m.queries[0].name().to_string(), "WwW.ExAmPlE.TeSt.");
    assert_eq!(addrs(&m), vec![ip("192.0.2.2")]);
    let m = dig::udp(s.dns, &Ask::new("STATIC.example.TEST.", RecordType::A)).await;
    assert_eq!(m.queries[0].name().to_string(), "STATIC.example.TEST.");
    assert_eq!(addrs(&m), vec![ip("192.0.2.10")]);
    s.stop().await;
}
}

both_paths! {
async fn ecs_decides_and_is_echoed_with_a_cacheable_scope() {
    let s = start().await;
    // DE client → eu; scope = the GeoIP network (5.9.0.0/16), under source 24.
    let m = dig::udp(
        s.dns,
        &Ask::new("www.example.test.", RecordType::A).ecs("5.9.1.0/24"),
    )
    .await;
    assert_eq!(addrs(&m), vec![ip("192.0.2.2")]);
    assert_eq!(ecs(&m), Some((ip("5.9.1.0"), 24, 16)));
    // Source prefix shorter than the GeoIP network: scope capped at the source.
    let m = dig::udp(
        s.dns,
        &Ask::new("www.example.test.", RecordType::A).ecs("5.0.0.0/12"),
    )
    .await;
    let (_, source, scope) = ecs(&m).expect("ECS echoed");
    assert_eq!(source, 12);
    assert!(scope <= 12, "scope {scope} wider than source");
    // US client: no country rule → default order, first pool us.
    let m = dig::udp(
        s.dns,
        &Ask::new("www.example.test.", RecordType::A).ecs("8.8.8.0/24"),
    )
    .await;
    assert_eq!(addrs(&m), vec![ip("192.0.2.1")]);
    assert_eq!(ecs(&m).map(|e| e.2), Some(24));
    // IPv6 client subnet.
    let m = dig::udp(
        s.dns,
        &Ask::new("www.example.test.", RecordType::A).ecs("2001:db8:aa::/48"),
    )
    .await;
    assert_eq!(addrs(&m), vec![ip("192.0.2.3")], "2001:db8::/32 is JP → ap");
    assert_eq!(ecs(&m), Some((ip("2001:db8:aa::"), 48, 32)));
    // Bits past the source prefix are ignored (masked).
    let m = dig::udp(
        s.dns,
        &Ask::new("www.example.test.", RecordType::A).ecs("5.9.255.255/16"),
    )
    .await;
    assert_eq!(addrs(&m), vec![ip("192.0.2.2")]);
    assert_eq!(ecs(&m).map(|e| (e.1, e.2)), Some((16, 16)));
    // Source prefix 0: use the packet source (loopback: no country) and scope 0.
    let m = dig::udp(
        s.dns,
        &Ask::new("www.example.test.", RecordType::A).ecs("0.0.0.0/0"),
    )
    .await;
    assert_eq!(addrs(&m), vec![ip("192.0.2.1")]);
    assert_eq!(ecs(&m).map(|e| e.2), Some(0));
    // No ECS in the query: none in the answer.
    let m = dig::udp(s.dns, &Ask::new("www.example.test.", RecordType::A)).await;
    assert!(m.edns.is_some());
    assert_eq!(ecs(&m), None);
    // ECS on a static name: echoed with scope 0 (the answer does not depend on it).
    let m = dig::udp(
        s.dns,
        &Ask::new("static.example.test.", RecordType::A).ecs("5.9.1.0/24"),
    )
    .await;
    assert_eq!(ecs(&m), Some((ip("5.9.1.0"), 24, 0)));
    let m = dig::udp(
        s.dns,
        &Ask::new("nope.example.test.", RecordType::A).ecs("5.9.1.0/24"),
    )
    .await;
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(ecs(&m), Some((ip("5.9.1.0"), 24, 0)));
    // Over TCP too.
    let m = dig::tcp(
        s.dns,
        &Ask::new("www.example.test.", RecordType::A).ecs("5.9.1.0/24"),
    )
    .await;
    assert_eq!(ecs(&m), Some((ip("5.9.1.0"), 24, 16)));
    s.stop().await;
}
}

both_paths! {
async fn scope_policies_that_ignore_the_client_say_zero() {
    let extra = "[[balance]]\nname = \"fo.example.test\"\npolicy = \"failover\"\npools = [\"eu\", \"us\"]\n";
    let s = TestServer::start(
        &config(extra),
        &[("geo.mmdb", &mmdb::standard_country_db())],
    )
    .await;
    let m = dig::udp(
        s.dns,
        &Ask::new("fo.example.test.", RecordType::A).ecs("5.9.1.0/24"),
    )
    .await;
    assert_eq!(addrs(&m), vec![ip("192.0.2.2")]);
    assert_eq!(ecs(&m), Some((ip("5.9.1.0"), 24, 0)));
    s.stop().await;
}
}

/// Many endpoints and `answers` high enough that the answer overflows 512 bytes.
fn big_config() -> String {
    let endpoints: Vec<String> = (1..=60)
        .map(|i| format!("{{ address = \"2001:db8::{i:x}\" }}"))
        .collect();
    format!(
        "{}
[pools.big]
endpoints = [{}]
[[balance]]
name = \"big.example.test\"
policy = \"failover\"
pools = [\"big\"]
answers = 60
",
        server_header(""),
        endpoints.join(", ")
    )
}

both_paths! {
async fn truncates_over_udp_and_serves_the_whole_answer_over_tcp() {
    let s = TestServer::start(&big_config(), &[]).await;
    // Without EDNS: 512 bytes → TC, no partial answer.
    let m = dig::udp(
        s.dns,
        &Ask::new("big.example.test.", RecordType::AAAA).no_edns(),
    )
    .await;
    assert!(m.metadata.truncation, "TC must be set");
    assert!(m.answers.is_empty());
    // With EDNS 1232: 60 AAAA (28 bytes each with compression) do not fit either;
    // the truncated answer keeps its OPT record (RFC 6891 §7).
    let m = dig::udp(
        s.dns,
        &Ask::new("big.example.test.", RecordType::AAAA)
            .payload(4096)
            .ecs("5.9.0.0/24"),
    )
    .await;
    assert!(m.metadata.truncation);
    assert!(m.edns.is_some(), "OPT must survive truncation");
    assert!(ecs(&m).is_some(), "ECS must survive truncation");
    let raw = m.to_vec().unwrap();
    assert!(raw.len() <= 1232);
    // TCP retry gets everything.
    let m = dig::tcp(s.dns, &Ask::new("big.example.test.", RecordType::AAAA)).await;
    assert!(!m.metadata.truncation);
    assert_eq!(addrs(&m).len(), 60);
    // A small answer fits in 512.
    let m = dig::udp(
        s.dns,
        &Ask::new("static.example.test.", RecordType::A).no_edns(),
    )
    .await;
    assert!(!m.metadata.truncation);
    assert_eq!(addrs(&m).len(), 1);
    s.stop().await;
}
}

both_paths! {
async fn malformed_packets_never_stall_other_queries() {
    let s = start().await;
    let good = Ask::new("www.example.test.", RecordType::A)
        .message()
        .to_vec()
        .unwrap();
    let mut cases: Vec<Vec<u8>> = vec![
        vec![],
        vec![0x12],
        vec![0u8; 11],
        good[..good.len() - 3].to_vec(),
        vec![0xff; 300],
    ];
    // Header claims 5 questions but carries one.
    let mut qd = good.clone();
    qd[5] = 5;
    cases.push(qd);
    // A compression-pointer loop in the question name.
    let mut lp = good[..12].to_vec();
    lp[5] = 1;
    lp.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
    cases.push(lp);
    // ECS with an unknown family (3) → FORMERR.
    let mut m = Ask::new("www.example.test.", RecordType::A).message();
    m.edns.as_mut().unwrap().options_mut().insert(
        hickory_proto::rr::rdata::opt::EdnsOption::Unknown(8, vec![0, 3, 24, 0, 1, 2, 3]),
    );
    cases.push(m.to_vec().unwrap());
    for bad in &cases {
        if let Some(reply) = dig::udp_raw_wait(s.dns, bad, Duration::from_millis(300)).await
            && let Ok(m) = Message::from_vec(&reply)
        {
            assert!(
                matches!(
                    m.metadata.response_code,
                    ResponseCode::FormErr | ResponseCode::NotImp | ResponseCode::ServFail
                ),
                "bad packet {bad:02x?} got {:?}",
                m.metadata.response_code
            );
        }
        let _ = dig::tcp_raw(s.dns, bad).await;
        // A normal query still works, over both transports.
        let m = dig::udp(s.dns, &Ask::new("www.example.test.", RecordType::A)).await;
        assert_eq!(addrs(&m).len(), 1);
        let m = dig::tcp(s.dns, &Ask::new("static.example.test.", RecordType::A)).await;
        assert_eq!(addrs(&m), vec![ip("192.0.2.10")]);
    }
    // A query with a response bit set gets FORMERR, not an answer.
    let mut resp = Ask::new("www.example.test.", RecordType::A).message();
    resp.metadata.message_type = hickory_proto::op::MessageType::Response;
    if let Some(reply) =
        dig::udp_raw_wait(s.dns, &resp.to_vec().unwrap(), Duration::from_millis(300)).await
    {
        let m = Message::from_vec(&reply).unwrap();
        assert!(m.answers.is_empty());
    }
    s.stop().await;
}
}

both_paths! {
async fn unknown_opcodes_get_notimp() {
    let s = start().await;
    let mut m = Ask::new("www.example.test.", RecordType::A).message();
    m.metadata.op_code = hickory_proto::op::OpCode::Status;
    let reply = dig::udp_raw(s.dns, &m.to_vec().unwrap())
        .await
        .expect("reply");
    let r = Message::from_vec(&reply).unwrap();
    assert_eq!(r.metadata.response_code, ResponseCode::NotImp);
    s.stop().await;
}
}

both_paths! {
async fn health_txt_is_served_only_to_allowed_sources() {
    let cfg = config("").replace(
        "geoip = \"geo.mmdb\"",
        "geoip = \"geo.mmdb\"\nhealth_query_allow = [\"127.0.0.1/32\"]",
    );
    let s = TestServer::start(&cfg, &[("geo.mmdb", &mmdb::standard_country_db())]).await;
    let m = dig::udp_from(
        s.dns,
        ip("127.0.0.1"),
        &Ask::new("_health.www.example.test.", RecordType::TXT),
    )
    .await;
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    let lines = dig::txts(&m);
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(
        lines[0].contains("pool=us state=healthy up=2/2 err=0.00%"),
        "{lines:?}"
    );
    assert!(lines[2].contains("pool=ap"), "{lines:?}");
    let m = dig::udp_from(
        s.dns,
        ip("127.0.0.2"),
        &Ask::new("_health.www.example.test.", RecordType::TXT),
    )
    .await;
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);
    assert!(m.answers.is_empty());
    s.stop().await;
}
}

both_paths! {
async fn a_query_without_a_question_gets_formerr_and_a_response_gets_nothing() {
    let s = start().await;
    let good = Ask::new("static.example.test.", RecordType::A).wire();
    let mut none = good[..12].to_vec();
    none[5] = 0; // QDCOUNT
    none[11] = 0; // ARCOUNT: no OPT either
    let reply = dig::udp_raw(s.dns, &none).await.expect("FORMERR reply");
    let m = Message::from_vec(&reply).unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::FormErr);
    assert_eq!(reply[..2], good[..2], "id echoed");
    let mut resp = good.clone();
    resp[2] |= 0x80;
    assert!(
        dig::udp_raw_wait(s.dns, &resp, Duration::from_millis(300))
            .await
            .is_none(),
        "a response must never be answered"
    );
    let m = dig::udp(s.dns, &Ask::new("STATIC.example.test.", RecordType::A)).await;
    assert_eq!(addrs(&m), vec![ip("192.0.2.10")]);
    assert_eq!(m.queries[0].name().to_string(), "STATIC.example.test.");
    s.stop().await;
}
}

both_paths! {
async fn a_burst_from_several_clients_gets_every_answer_once() {
    let s = start().await;
    let asks = [
        ("www.example.test.", RecordType::A),
        ("static.example.test.", RecordType::A),
        ("www.example.test.", RecordType::AAAA),
        ("nothing.example.test.", RecordType::A),
        // Not answered by the fast path: goes to hickory.
        ("_health.www.example.test.", RecordType::TXT),
    ];
    let mut clients = Vec::new();
    for _ in 0..4 {
        clients.push(tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap());
    }
    // Sent without waiting: 50 per client, every tenth malformed (no reply).
    let mut expected: Vec<std::collections::HashMap<u16, (String, RecordType)>> =
        vec![Default::default(); clients.len()];
    for i in 0..200u16 {
        let c = usize::from(i) % clients.len();
        if i % 10 == 9 {
            clients[c].send_to(&[0x12, 0x34, 0x01], s.dns).await.unwrap();
            continue;
        }
        let (name, rtype) = asks[usize::from(i) % asks.len()];
        let mut m = Ask::new(name, rtype).message();
        m.metadata.id = 1000 + i;
        clients[c].send_to(&m.to_vec().unwrap(), s.dns).await.unwrap();
        expected[c].insert(1000 + i, (name.to_string(), rtype));
    }
    let mut buf = vec![0u8; 4096];
    for (client, mut want) in clients.iter().zip(expected) {
        while !want.is_empty() {
            let n = tokio::time::timeout(Duration::from_secs(5), client.recv(&mut buf))
                .await
                .unwrap_or_else(|_| panic!("missing replies for {want:?}"))
                .unwrap();
            let m = Message::from_vec(&buf[..n]).unwrap();
            let (name, rtype) = want
                .remove(&m.metadata.id)
                .unwrap_or_else(|| panic!("unexpected or repeated reply id {}", m.metadata.id));
            assert_eq!(m.queries.len(), 1);
            assert_eq!(m.queries[0].name().to_ascii().to_lowercase(), name);
            assert_eq!(m.queries[0].query_type(), rtype);
            if rtype == RecordType::A && name != "nothing.example.test." {
                assert_eq!(addrs(&m).len(), 1, "{m:?}");
            }
        }
        // Nothing more: no duplicates, no answers to the malformed packets.
        assert!(
            tokio::time::timeout(Duration::from_millis(200), client.recv(&mut buf))
                .await
                .is_err()
        );
    }
    // And the server still answers.
    let m = dig::udp(s.dns, &Ask::new("static.example.test.", RecordType::A)).await;
    assert_eq!(addrs(&m), vec![ip("192.0.2.10")]);
    s.stop().await;
}
}
