//! Server identity for operators of anycast nodes: the NSID option
//! (RFC 5001) and the CHAOS TXT names `id.server`, `hostname.bind`,
//! `version.bind` and `version.server`, with our client and the real `dig`.

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{DNSClass, RData, RecordType};

use crate::both_paths;
use crate::harness::dig::{self, Ask, addrs, ecs, nsid, real_dig, txts};
use crate::harness::geosteer::{TestServer, server_header};

fn config(server_extra: &str) -> String {
    format!(
        "{}[pools.eu]
endpoints = [{{ address = \"192.0.2.2\" }}]
[[balance]]
name = \"www.example.test\"
policy = \"failover\"
pools = [\"eu\"]
",
        server_header(server_extra)
    )
}

async fn start(server_extra: &str) -> TestServer {
    TestServer::start(&config(server_extra), &[]).await
}

/// Queries that reach every kind of answer: balanced (with and without
/// ECS), a static RRset, NXDOMAIN, NODATA at a balanced name, a zone
/// record at a balanced name (the catalog), `_health` TXT, outside every zone.
fn asks() -> Vec<(Ask, ResponseCode)> {
    vec![
        (
            Ask::new("www.example.test.", RecordType::A),
            ResponseCode::NoError,
        ),
        (
            Ask::new("www.example.test.", RecordType::A).ecs("5.9.0.0/24"),
            ResponseCode::NoError,
        ),
        (
            Ask::new("static.example.test.", RecordType::A),
            ResponseCode::NoError,
        ),
        (
            Ask::new("nope.example.test.", RecordType::A),
            ResponseCode::NXDomain,
        ),
        (
            Ask::new("www.example.test.", RecordType::MX),
            ResponseCode::NoError,
        ),
        (
            Ask::new("www.example.test.", RecordType::TXT),
            ResponseCode::NoError,
        ),
        (
            Ask::new("_health.www.example.test.", RecordType::TXT),
            ResponseCode::NoError,
        ),
        (
            Ask::new("example.org.", RecordType::A),
            ResponseCode::Refused,
        ),
    ]
}

both_paths! {
async fn nsid_is_sent_when_asked_and_only_then() {
    let s = start("nsid = \"fra1\"").await;
    for (ask, rcode) in asks() {
        for m in [
            dig::udp(s.dns, &ask.clone().nsid()).await,
            dig::tcp(s.dns, &ask.clone().nsid()).await,
        ] {
            assert_eq!(m.metadata.response_code, rcode, "{ask:?}");
            assert_eq!(nsid(&m).as_deref(), Some("fra1"), "{ask:?}: {:?}", m.edns);
            if ask.ecs.is_some() {
                assert_eq!(ecs(&m).map(|e| e.1), Some(24), "ECS kept beside NSID");
            }
        }
        // RFC 5001 §2.1: never unasked.
        let m = dig::udp(s.dns, &ask).await;
        assert_eq!(m.metadata.response_code, rcode, "{ask:?}");
        assert_eq!(nsid(&m), None, "{ask:?}");
    }
    // The answer itself is unchanged by the option.
    let m = dig::udp(s.dns, &Ask::new("www.example.test.", RecordType::A).nsid()).await;
    assert_eq!(addrs(&m), vec![dig::ip("192.0.2.2")]);
    s.stop().await;
}
}

both_paths! {
async fn without_nsid_configured_the_option_is_ignored() {
    let s = start("").await;
    let m: Message = dig::udp(s.dns, &Ask::new("www.example.test.", RecordType::A).nsid()).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert_eq!(addrs(&m), vec![dig::ip("192.0.2.2")]);
    assert!(m.edns.is_some(), "the OPT record is still there");
    assert_eq!(nsid(&m), None);
    s.stop().await;
}
}

both_paths! {
async fn chaos_txt_gives_nsid_and_version() {
    let s = start("nsid = \"fra1\"\nversion = \"geosteer test\"").await;
    for (name, want) in [
        ("id.server.", "fra1"),
        ("hostname.bind.", "fra1"),
        ("Version.Bind.", "geosteer test"),
        ("version.server.", "geosteer test"),
    ] {
        let ask = Ask::new(name, RecordType::TXT).class(DNSClass::CH);
        for m in [dig::udp(s.dns, &ask).await, dig::tcp(s.dns, &ask).await] {
            assert_eq!(m.metadata.response_code, ResponseCode::NoError, "{name}");
            assert_eq!(txts(&m), vec![want.to_string()], "{name}");
            let r = &m.answers[0];
            assert_eq!(r.dns_class, DNSClass::CH, "{name}");
            assert_eq!(r.ttl, 0, "{name}");
            assert_eq!(r.name.to_string(), name, "the owner is echoed as asked");
            assert!(matches!(r.data, RData::TXT(_)));
        }
    }
    // Another type at a known name: NODATA. Another CHAOS name: REFUSED.
    let m = dig::udp(s.dns, &Ask::new("id.server.", RecordType::A).class(DNSClass::CH)).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.answers.is_empty());
    let m = dig::udp(s.dns, &Ask::new("authors.bind.", RecordType::TXT).class(DNSClass::CH)).await;
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);
    // A balanced name asked in class CH is not balanced.
    let m = dig::udp(s.dns, &Ask::new("www.example.test.", RecordType::A).class(DNSClass::CH)).await;
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);
    assert!(m.answers.is_empty());
    s.stop().await;
}
}

both_paths! {
async fn chaos_names_are_refused_when_not_configured() {
    let s = start("").await;
    for name in ["id.server.", "hostname.bind.", "version.bind.", "version.server."] {
        let ask = Ask::new(name, RecordType::TXT).class(DNSClass::CH);
        let m = dig::udp(s.dns, &ask).await;
        assert_eq!(m.metadata.response_code, ResponseCode::Refused, "{name}");
        assert!(m.answers.is_empty(), "{name}");
    }
    s.stop().await;
}
}

both_paths! {
async fn real_dig_shows_nsid_and_chaos_answers() {
    let s = start("nsid = \"fra1\"\nversion = \"geosteer test\"").await;
    let out = real_dig(s.dns, &["+nsid", "+norec", "www.example.test", "A"]).await;
    assert!(out.contains("NSID: 66 72 61 31 (\"fra1\")"), "{out}");
    assert!(out.contains("192.0.2.2"), "{out}");
    let out = real_dig(s.dns, &["+norec", "static.example.test", "A"]).await;
    assert!(!out.contains("NSID"), "unasked: {out}");
    let out = real_dig(s.dns, &["+short", "CH", "TXT", "id.server"]).await;
    assert_eq!(out.trim(), "\"fra1\"");
    let out = real_dig(s.dns, &["+short", "CH", "TXT", "hostname.bind"]).await;
    assert_eq!(out.trim(), "\"fra1\"");
    let out = real_dig(s.dns, &["+short", "CH", "TXT", "version.bind"]).await;
    assert_eq!(out.trim(), "\"geosteer test\"");
    s.stop().await;
    let s = start("").await;
    let out = real_dig(s.dns, &["CH", "TXT", "version.bind"]).await;
    assert!(out.contains("status: REFUSED"), "{out}");
    s.stop().await;
}
}
