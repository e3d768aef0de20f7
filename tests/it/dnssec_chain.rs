//! DNSSEC with `nsec = "chain"`: a classic NSEC chain over the zone's
//! names, signed with the zone. A missing name is NXDOMAIN with the link
//! covering it and the link covering the wildcard at its closest encloser;
//! NODATA is the name's own link (a balanced name's empty answer of a
//! family it lists, its only IPv6 endpoint drained: its link without that
//! family), an empty non-terminal
//! the link over it; all verify, on the fast path, hickory's UDP and TCP;
//! unbound (UDP and TCP upstream) and delv (UDP and TCP) validate them with
//! P-256 and Ed25519; a name a reload adds joins the chain.

use std::collections::HashMap;

use hickory_proto::dnssec::rdata::{DNSSECRData, NSEC};
use hickory_proto::dnssec::{PublicKey, TBS};
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};

use crate::harness::delv;
use crate::harness::dig::{self, Ask, addrs, ip};
use crate::harness::geosteer::{FAST_PATH, TestServer, ZONE, server_header};
use crate::harness::keys::{self, Alg};
use crate::harness::mmdb;
use crate::harness::unbound::{Unbound, ad, rcode};

/// The standard zone with an empty non-terminal (`deep`).
fn zone() -> String {
    format!("{ZONE}host.deep IN A 192.0.2.20\n")
}

/// A geo-balanced name whose pools have both families (the EU one and the
/// fallback only IPv4), and `dual`, whose one pool has both but its IPv6
/// endpoint drained (AAAA: NODATA, `on_all_down` being `nodata`), in a zone
/// signed with `nsec = "chain"`.
async fn start(alg: Alg) -> (TestServer, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = keys::generate(dir.path(), "zone.pem", alg);
    let pem = std::fs::read(&key).expect("key");
    let s = TestServer::start(
        &config(""),
        &[
            ("geo.mmdb", &mmdb::standard_country_db()),
            ("zone.pem", &pem),
            ("example.test.zone", zone().as_bytes()),
        ],
    )
    .await;
    s.running
        .control
        .drain_endpoint("v6", "2001:db8::5", true, false)
        .await
        .expect("drain");
    (s, keys::dnskey(&key, "example.test", alg))
}

fn config(more: &str) -> String {
    format!(
        "{}[pools.fb]
endpoints = [{{ address = \"192.0.2.99\" }}]
[pools.us]
endpoints = [{{ address = \"192.0.2.1\" }}, {{ address = \"2001:db8::1\" }}]
[pools.eu]
endpoints = [{{ address = \"192.0.2.2\" }}]
[[balance]]
name = \"www.example.test\"
policy = \"geo\"
pools = [\"fb\", \"us\", \"eu\"]
countries = {{ DE = [\"eu\"], US = [\"us\"] }}
[pools.v6]
endpoints = [{{ address = \"192.0.2.5\" }}, {{ address = \"2001:db8::5\" }}]
[[balance]]
name = \"dual.example.test\"
policy = \"failover\"
pools = [\"v6\"]
{more}
[dnssec.\"example.test\"]
keys = [\"zone.pem\"]
nsec = \"chain\"
",
        server_header("geoip = \"geo.mmdb\"")
    )
}

/// Checks every RRSIG in `section` over the RRset it covers (same owner
/// and type) with `keys`; returns how many.
fn verify(section: &[Record], keys: &[Record]) -> usize {
    let mut sets: HashMap<(Name, RecordType), Vec<Record>> = HashMap::new();
    for r in section {
        if r.record_type() != RecordType::RRSIG {
            sets.entry((r.name.to_lowercase(), r.record_type()))
                .or_default()
                .push(r.clone());
        }
    }
    let mut checked = 0;
    for r in section {
        let RData::DNSSEC(DNSSECRData::RRSIG(sig)) = &r.data else {
            continue;
        };
        let input = sig.input();
        let set = sets
            .get(&(r.name.to_lowercase(), input.type_covered))
            .unwrap_or_else(|| panic!("an RRSIG over {} {} alone", r.name, input.type_covered));
        let key = keys
            .iter()
            .find_map(|k| match &k.data {
                RData::DNSSEC(DNSSECRData::DNSKEY(d))
                    if d.calculate_key_tag().ok() == Some(input.key_tag) =>
                {
                    Some(d.clone())
                }
                _ => None,
            })
            .expect("the signing DNSKEY");
        let mut sorted = set.clone();
        sorted.sort();
        let tbs = TBS::from_input(&r.name, DNSClass::IN, input, sorted.iter()).expect("tbs");
        key.public_key()
            .verify(tbs.as_ref(), sig.sig())
            .unwrap_or_else(|e| panic!("RRSIG over {} {}: {e}", r.name, input.type_covered));
        checked += 1;
    }
    checked
}

/// The NSEC records of a section: (owner, next, types).
fn nsecs(section: &[Record]) -> Vec<(String, String, Vec<RecordType>)> {
    section
        .iter()
        .filter_map(|r| match &r.data {
            RData::DNSSEC(DNSSECRData::NSEC(n)) => Some(link(&r.name, n)),
            _ => None,
        })
        .collect()
}

fn link(owner: &Name, n: &NSEC) -> (String, String, Vec<RecordType>) {
    (
        owner.to_string(),
        n.next_domain_name().to_string(),
        n.type_bit_maps().collect(),
    )
}

/// One of the three transports.
#[derive(Clone, Copy, Debug)]
enum Via {
    Udp,
    Tcp,
}

async fn ask(s: &TestServer, via: Via, a: Ask) -> Message {
    match via {
        Via::Udp => dig::udp(s.dns, &a).await,
        Via::Tcp => dig::tcp(s.dns, &a).await,
    }
}

#[tokio::test]
async fn chain_denials_verify_on_the_fast_path_and_tcp() {
    FAST_PATH.scope(true, denials()).await;
}

#[tokio::test]
async fn chain_denials_verify_on_hickory_udp() {
    FAST_PATH.scope(false, denials()).await;
}

async fn denials() {
    let (s, _) = start(Alg::EcdsaP256).await;
    let keys = dig::udp(
        s.dns,
        &Ask::new("example.test.", RecordType::DNSKEY).dnssec_ok(),
    )
    .await
    .answers;
    let apex = "example.test.";
    let deep = "host.deep.example.test.";
    let dual = "dual.example.test.";
    for via in [Via::Udp, Via::Tcp] {
        // Twice each: the second from what the first left (nothing here).
        for round in 0..2 {
            let at = format!("{via:?} round {round}");
            // Canonical order: the apex, host.deep (deep < dual), dual,
            // ns1, static, www. nope is between dual and ns1;
            // *.example.test between the apex and host.deep.
            let nx = ask(
                &s,
                via,
                Ask::new("nope.example.test.", RecordType::A).dnssec_ok(),
            )
            .await;
            assert_eq!(
                nx.metadata.response_code,
                ResponseCode::NXDomain,
                "{at}: {nx:?}"
            );
            assert!(nx.metadata.authoritative && nx.answers.is_empty(), "{at}");
            let links = nsecs(&nx.authorities);
            let pairs: Vec<(&str, &str)> = links
                .iter()
                .map(|(o, n, _)| (o.as_str(), n.as_str()))
                .collect();
            assert_eq!(
                pairs,
                [(dual, "ns1.example.test."), (apex, deep)],
                "{at}: the covering link, then the wildcard's"
            );
            assert!(
                links
                    .iter()
                    .all(|l| !l.2.contains(&RecordType::Unknown(128))),
                "{at}: no NXNAME in a chain"
            );
            assert_eq!(verify(&nx.authorities, &keys), 3, "{at}: SOA and two NSECs");

            // Below the last name: one link covers the name and its wildcard.
            let under = ask(
                &s,
                via,
                Ask::new("x.www.example.test.", RecordType::A).dnssec_ok(),
            )
            .await;
            assert_eq!(under.metadata.response_code, ResponseCode::NXDomain, "{at}");
            let links = nsecs(&under.authorities);
            assert_eq!(links.len(), 1, "{at}: {links:?}");
            assert_eq!(
                (links[0].0.as_str(), links[0].1.as_str()),
                ("www.example.test.", apex)
            );
            assert_eq!(verify(&under.authorities, &keys), 2, "{at}");

            // NODATA at the balanced name: its link, next name the apex
            // (the chain wraps), listing its families and zone-file TXT.
            let mx = ask(
                &s,
                via,
                Ask::new("www.example.test.", RecordType::MX).dnssec_ok(),
            )
            .await;
            assert_eq!(mx.metadata.response_code, ResponseCode::NoError, "{at}");
            let links = nsecs(&mx.authorities);
            assert_eq!(links.len(), 1, "{at}: {links:?}");
            assert_eq!(links[0].1, apex, "{at}");
            for t in [RecordType::A, RecordType::AAAA, RecordType::TXT] {
                assert!(links[0].2.contains(&t), "{at}: {t} in {links:?}");
            }
            assert_eq!(verify(&mx.authorities, &keys), 2, "{at}");

            // AAAA at dual (its IPv6 endpoint drained): the link without
            // AAAA, same next name.
            let v6 = ask(&s, via, Ask::new(dual, RecordType::AAAA).dnssec_ok()).await;
            assert_eq!(v6.metadata.response_code, ResponseCode::NoError, "{at}");
            assert!(v6.answers.is_empty(), "{at}: {v6:?}");
            let links = nsecs(&v6.authorities);
            assert_eq!(links.len(), 1, "{at}: {links:?}");
            assert_eq!(
                (links[0].0.as_str(), links[0].1.as_str()),
                (dual, "ns1.example.test."),
                "{at}"
            );
            assert!(!links[0].2.contains(&RecordType::AAAA), "{at}: {links:?}");
            assert!(links[0].2.contains(&RecordType::A), "{at}: {links:?}");
            assert_eq!(verify(&v6.authorities, &keys), 2, "{at}");
            // Its own link (asked for another type) lists AAAA.
            let own = ask(&s, via, Ask::new(dual, RecordType::MX).dnssec_ok()).await;
            let links = nsecs(&own.authorities);
            assert!(links[0].2.contains(&RecordType::AAAA), "{at}: {links:?}");
            let v4 = ask(&s, via, Ask::new(dual, RecordType::A).dnssec_ok()).await;
            assert_eq!(addrs(&v4), [ip("192.0.2.5")], "{at}");
            // A US client gets its IPv6 address, signed.
            let us = ask(
                &s,
                via,
                Ask::new("www.example.test.", RecordType::AAAA)
                    .ecs("8.8.8.0/24")
                    .dnssec_ok(),
            )
            .await;
            assert_eq!(addrs(&us), [ip("2001:db8::1")], "{at}");
            assert_eq!(verify(&us.answers, &keys), 1, "{at}");

            // The empty non-terminal: NODATA, the link over it.
            let ent = ask(
                &s,
                via,
                Ask::new("deep.example.test.", RecordType::A).dnssec_ok(),
            )
            .await;
            assert_eq!(
                ent.metadata.response_code,
                ResponseCode::NoError,
                "{at}: {ent:?}"
            );
            let links = nsecs(&ent.authorities);
            let pairs: Vec<(&str, &str)> = links
                .iter()
                .map(|(o, n, _)| (o.as_str(), n.as_str()))
                .collect();
            assert_eq!(pairs, [(apex, deep)], "{at}");
            assert_eq!(verify(&ent.authorities, &keys), 2, "{at}");

            // The link asked for: the zone can be walked.
            let own = ask(
                &s,
                via,
                Ask::new("static.example.test.", RecordType::NSEC).dnssec_ok(),
            )
            .await;
            let links = nsecs(&own.answers);
            assert_eq!(links.len(), 1, "{at}: {own:?}");
            assert_eq!(links[0].1, "www.example.test.", "{at}");
            assert_eq!(verify(&own.answers, &keys), 1, "{at}");
        }
    }
    // Without DO: a plain NXDOMAIN, no NSEC.
    let plain = dig::udp(s.dns, &Ask::new("nope.example.test.", RecordType::A)).await;
    assert_eq!(plain.metadata.response_code, ResponseCode::NXDomain);
    assert!(nsecs(&plain.authorities).is_empty());
    s.stop().await;
}

/// unbound over UDP and over TCP, and delv over UDP and TCP, validate
/// NXDOMAIN, NODATA (a type the name lacks, a family its pool lacks, an
/// empty non-terminal) and the answers, with P-256 and Ed25519.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validators_accept_chain_denials() {
    for alg in [Alg::EcdsaP256, Alg::Ed25519] {
        let (s, anchor) = start(alg).await;
        for tcp in [false, true] {
            let u = if tcp {
                Unbound::start_over_tcp(s.dns, "example.test", &anchor)
            } else {
                Unbound::start(s.dns, "example.test", &anchor)
            };
            let at = format!("{alg:?}, unbound, TCP upstream {tcp}");
            let nx = u.ask("nope.example.test.", RecordType::A, None).await;
            assert_eq!(rcode(&nx), ResponseCode::NXDomain, "{at}\n{}", u.log());
            assert!(ad(&nx), "{at}: NXDOMAIN validated\n{}", u.log());
            let under = u.ask("x.www.example.test.", RecordType::A, None).await;
            assert_eq!(rcode(&under), ResponseCode::NXDomain, "{at}\n{}", u.log());
            assert!(ad(&under), "{at}\n{}", u.log());
            for (name, qtype, ecs) in [
                ("www.example.test.", RecordType::MX, None),
                ("dual.example.test.", RecordType::AAAA, None),
                ("static.example.test.", RecordType::AAAA, None),
                ("deep.example.test.", RecordType::A, None),
            ] {
                let m = u.ask(name, qtype, ecs).await;
                assert_eq!(
                    rcode(&m),
                    ResponseCode::NoError,
                    "{at}: {name} {qtype}\n{}",
                    u.log()
                );
                assert!(
                    m.answers.is_empty() && ad(&m),
                    "{at}: NODATA {name} {qtype} validated: {m:?}\n{}",
                    u.log()
                );
            }
            let us = u
                .ask("www.example.test.", RecordType::AAAA, Some("8.8.8.0/24"))
                .await;
            assert_eq!(addrs(&us), [ip("2001:db8::1")], "{at}\n{}", u.log());
            assert!(ad(&us), "{at}\n{}", u.log());
            drop(u);
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let file = delv::anchor_file(dir.path(), "anchor.conf", &anchor);
        for options in [&[][..], &["+tcp"][..]] {
            for (name, qtype, says) in [
                (
                    "nope.example.test",
                    "A",
                    "; negative response, fully validated",
                ),
                (
                    "x.www.example.test",
                    "A",
                    "; negative response, fully validated",
                ),
                (
                    "www.example.test",
                    "MX",
                    "; negative response, fully validated",
                ),
                (
                    "dual.example.test",
                    "AAAA",
                    "; negative response, fully validated",
                ),
                (
                    "deep.example.test",
                    "A",
                    "; negative response, fully validated",
                ),
                ("www.example.test", "A", "; fully validated"),
            ] {
                let out = delv::delv_with(s.dns, &file, name, qtype, options).await;
                assert!(
                    out.contains(says),
                    "{alg:?} {options:?} {name} {qtype}: {out}"
                );
            }
        }
        s.stop().await;
    }
}

/// A name added to the zone file and a balanced name added to the config,
/// by a reload: both join the chain (the names between them and their
/// neighbours are denied by the new links) and validate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_adds_names_to_the_chain() {
    let (s, anchor) = start(Alg::Ed25519).await;
    let covering = |m: &Message| {
        nsecs(&m.authorities)
            .first()
            .map(|l| (l.0.clone(), l.1.clone()))
    };
    let q = |name: &str| Ask::new(name, RecordType::A).dnssec_ok();
    let before = dig::udp(s.dns, &q("new.example.test.")).await;
    assert_eq!(before.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(
        covering(&before),
        Some(("dual.example.test.".into(), "ns1.example.test.".into()))
    );
    std::fs::write(
        s.path("example.test.zone"),
        format!("{}new IN A 192.0.2.30\n", zone()),
    )
    .expect("zone");
    std::fs::write(
        s.config_path(),
        config(
            "[[balance]]
name = \"api.example.test\"
policy = \"failover\"
pools = [\"eu\"]
",
        ),
    )
    .expect("config");
    s.running.reload().await.expect("reload");
    // Now new exists, and a name just after it is covered by its link.
    let after = dig::udp(s.dns, &q("newer.example.test.")).await;
    assert_eq!(
        after.metadata.response_code,
        ResponseCode::NXDomain,
        "{after:?}"
    );
    assert_eq!(
        covering(&after),
        Some(("new.example.test.".into(), "ns1.example.test.".into()))
    );
    // The balanced name sits between the apex and host.deep.
    let b = dig::udp(s.dns, &q("b.example.test.")).await;
    assert_eq!(
        covering(&b),
        Some(("api.example.test.".into(), "host.deep.example.test.".into()))
    );
    let u = Unbound::start(s.dns, "example.test", &anchor);
    let new = u.ask("new.example.test.", RecordType::A, None).await;
    assert_eq!(addrs(&new), [ip("192.0.2.30")], "{}", u.log());
    assert!(ad(&new), "{}", u.log());
    let api = u.ask("api.example.test.", RecordType::A, None).await;
    assert_eq!(addrs(&api), [ip("192.0.2.2")], "{}", u.log());
    assert!(ad(&api), "{}", u.log());
    for name in ["newer.example.test.", "b.example.test."] {
        let m = u.ask(name, RecordType::A, None).await;
        assert_eq!(rcode(&m), ResponseCode::NXDomain, "{name}\n{}", u.log());
        assert!(ad(&m), "{name}\n{}", u.log());
    }
    // The new balanced name has no IPv6: AAAA is NODATA from its link.
    let v6 = u.ask("api.example.test.", RecordType::AAAA, None).await;
    assert!(v6.answers.is_empty() && ad(&v6), "{v6:?}\n{}", u.log());
    drop(u);
    s.stop().await;
}
