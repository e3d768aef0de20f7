//! Signed empty answers at balanced names (issue 18, item 1): when a
//! balanced name has nothing of the asked family to give, because its
//! pools have no address of it or because they are all down with no
//! fallback, the NODATA proof's NSEC must not list the asked type (RFC 4035
//! §3.1.3.1). Checked on the records themselves (fast path, hickory's UDP
//! path, TCP) and by real validators: unbound (AD) and delv ("negative
//! response, fully validated", over UDP and TCP), P-256 and Ed25519.

use hickory_proto::dnssec::rdata::DNSSECRData;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{RData, RecordType};

use crate::harness::delv;
use crate::harness::dig::{self, Ask};
use crate::harness::geosteer::{FAST_PATH, TestServer, server_header};
use crate::harness::keys::{self, Alg};
use crate::harness::mmdb;
use crate::harness::unbound::{Unbound, ad, rcode};

/// `split`: IPv4 for everyone but US clients, who get IPv6 (so the name has
/// both types, and an AAAA answer is empty outside the US). `down`: one
/// pool of both families, no fallback (drained by the tests).
async fn start(alg: Alg) -> (TestServer, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = keys::generate(dir.path(), "zone.pem", alg);
    let pem = std::fs::read(&key).expect("key");
    let cfg = format!(
        "{}[pools.eu]
endpoints = [{{ address = \"192.0.2.2\" }}, {{ address = \"192.0.2.3\" }}]
[pools.us6]
endpoints = [{{ address = \"2001:db8::6\" }}]
[pools.dn]
endpoints = [{{ address = \"192.0.2.20\" }}, {{ address = \"2001:db8::20\" }}]
[[balance]]
name = \"split.example.test\"
policy = \"geo\"
pools = [\"eu\"]
countries = {{ US = [\"us6\"] }}
[[balance]]
name = \"down.example.test\"
policy = \"failover\"
pools = [\"dn\"]
on_all_down = \"nodata\"

[dnssec.\"example.test\"]
keys = [\"zone.pem\"]
",
        server_header("geoip = \"geo.mmdb\"")
    );
    let geo = mmdb::standard_country_db();
    let s = TestServer::start(&cfg, &[("geo.mmdb", &geo), ("zone.pem", &pem)]).await;
    let anchor = keys::dnskey(&key, "example.test", alg);
    (s, anchor)
}

async fn drain_down(s: &TestServer) {
    for ip in ["192.0.2.20", "2001:db8::20"] {
        s.running
            .control
            .drain_endpoint("dn", ip, true, false)
            .await
            .expect("drain");
    }
}

/// The types the NSEC in `m`'s authority section lists.
fn nsec_types(m: &Message) -> Vec<RecordType> {
    let nsecs: Vec<Vec<RecordType>> = m
        .authorities
        .iter()
        .filter_map(|r| match &r.data {
            RData::DNSSEC(DNSSECRData::NSEC(n)) => Some(n.type_bit_maps().collect()),
            _ => None,
        })
        .collect();
    assert_eq!(nsecs.len(), 1, "one NSEC in {m:?}");
    nsecs.into_iter().next().unwrap_or_default()
}

/// The empty answer to `qtype` at `name`: NOERROR, no answers, an NSEC at
/// the name that leaves `qtype` out and keeps `other` (the name has it).
fn assert_proof(m: &Message, qtype: RecordType, other: Option<RecordType>, how: &str) {
    assert_eq!(
        m.metadata.response_code,
        ResponseCode::NoError,
        "{how}: {m:?}"
    );
    assert!(m.answers.is_empty(), "{how}: {m:?}");
    let types = nsec_types(m);
    assert!(
        !types.contains(&qtype),
        "{how}: NSEC lists {qtype}: {types:?}"
    );
    if let Some(t) = other {
        assert!(types.contains(&t), "{how}: NSEC drops {t}: {types:?}");
    }
    assert!(
        m.authorities
            .iter()
            .any(|r| r.record_type() == RecordType::RRSIG),
        "{how}: signed: {m:?}"
    );
}

async fn proofs_on_the_wire() {
    let (s, _) = start(Alg::EcdsaP256).await;
    let split = Ask::new("split.example.test.", RecordType::AAAA)
        .ecs("5.9.0.0/24")
        .dnssec_ok();
    // Twice over UDP: the second is served from the prepared wire form.
    for i in 0..2 {
        let m = dig::udp(s.dns, &split).await;
        assert_proof(
            &m,
            RecordType::AAAA,
            Some(RecordType::A),
            &format!("UDP {i}"),
        );
    }
    let m = dig::tcp(s.dns, &split).await;
    assert_proof(&m, RecordType::AAAA, Some(RecordType::A), "TCP");
    // The US gets its IPv6 address: the name has AAAA.
    let us = Ask::new("split.example.test.", RecordType::AAAA)
        .ecs("8.8.8.0/24")
        .dnssec_ok();
    assert_eq!(
        dig::addrs(&dig::udp(s.dns, &us).await),
        [dig::ip("2001:db8::6")]
    );

    drain_down(&s).await;
    for (qtype, other) in [
        (RecordType::A, RecordType::AAAA),
        (RecordType::AAAA, RecordType::A),
    ] {
        let ask = Ask::new("down.example.test.", qtype).dnssec_ok();
        for i in 0..2 {
            let m = dig::udp(s.dns, &ask).await;
            assert_proof(&m, qtype, Some(other), &format!("down {qtype} UDP {i}"));
        }
        let m = dig::tcp(s.dns, &ask).await;
        assert_proof(&m, qtype, Some(other), &format!("down {qtype} TCP"));
    }
    // Another type at a balanced name keeps the name's full proof.
    let mx = dig::udp(
        s.dns,
        &Ask::new("split.example.test.", RecordType::MX).dnssec_ok(),
    )
    .await;
    let types = nsec_types(&mx);
    assert!(
        types.contains(&RecordType::A) && types.contains(&RecordType::AAAA),
        "{types:?}"
    );
    s.stop().await;
}

#[tokio::test]
async fn empty_balanced_answers_prove_the_asked_type_absent_fast() {
    FAST_PATH.scope(true, proofs_on_the_wire()).await;
}

#[tokio::test]
async fn empty_balanced_answers_prove_the_asked_type_absent_hickory() {
    FAST_PATH.scope(false, proofs_on_the_wire()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unbound_and_delv_validate_empty_balanced_answers() {
    for alg in [Alg::EcdsaP256, Alg::Ed25519] {
        let (s, anchor) = start(alg).await;
        drain_down(&s).await;
        let u = Unbound::start(s.dns, "example.test", &anchor);
        for (name, qtype, ecs) in [
            ("split.example.test.", RecordType::AAAA, Some("5.9.0.0/24")),
            ("down.example.test.", RecordType::A, None),
            ("down.example.test.", RecordType::AAAA, None),
        ] {
            let m = u.ask(name, qtype, ecs).await;
            assert_eq!(
                rcode(&m),
                ResponseCode::NoError,
                "{alg:?} {name} {qtype}\n{}",
                u.log()
            );
            assert!(m.answers.is_empty(), "{alg:?} {name} {qtype}: {m:?}");
            assert!(ad(&m), "{alg:?} {name} {qtype}: validated\n{}", u.log());
        }
        drop(u);
        let dir = tempfile::tempdir().expect("tempdir");
        let file = delv::anchor_file(dir.path(), "anchor.conf", &anchor);
        for (name, qtype) in [
            ("split.example.test", "AAAA"),
            ("down.example.test", "A"),
            ("down.example.test", "AAAA"),
        ] {
            for options in [&[][..], &["+tcp"][..]] {
                let out = delv::delv_with(s.dns, &file, name, qtype, options).await;
                assert!(
                    out.contains("; negative response, fully validated"),
                    "{alg:?} {name} {qtype} {options:?}: {out}"
                );
            }
        }
        s.stop().await;
    }
}
