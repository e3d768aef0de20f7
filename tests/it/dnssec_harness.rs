//! The DNSSEC test harness proved against a real signer: Knot DNS signs a
//! zone; a real validating resolver (unbound) and BIND's `delv` validate
//! it from a trust anchor, and reject it from a wrong one; openssl keys
//! give the DNSKEY Knot publishes; unbound forwards a client's ECS subnet
//! to geosteer, which steers on it.

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

use crate::harness::delv::{anchor_file, delv};
use crate::harness::dig::{addrs, ecs, ip};
use crate::harness::geosteer::{TestServer, server_header};
use crate::harness::keys::{self, Alg};
use crate::harness::knot_signer::KnotSigner;
use crate::harness::mmdb;
use crate::harness::unbound::{Unbound, ad, answer_types, authority_types, rcode};

const ZONE: &str = "signed.test";

fn zone_text() -> String {
    "$ORIGIN signed.test.
$TTL 300
@ IN SOA ns1.signed.test. hostmaster.signed.test. 1 3600 600 86400 60
@ IN NS ns1.signed.test.
ns1 IN A 127.0.0.1
www IN A 192.0.2.10
"
    .to_string()
}

async fn knot() -> KnotSigner {
    KnotSigner::start(ZONE, &zone_text()).await
}

/// A validated A record, NXDOMAIN and NODATA, each with AD, from `anchor`.
async fn assert_validates(knot: &KnotSigner, anchor: &str) {
    let u = Unbound::start(knot.addr, ZONE, anchor);
    let m = u.ask("www.signed.test.", RecordType::A, None).await;
    assert_eq!(rcode(&m), ResponseCode::NoError, "{}", u.log());
    assert!(ad(&m), "no AD on a signed answer: {m:?}\n{}", u.log());
    assert_eq!(addrs(&m), vec![ip("192.0.2.10")]);
    assert!(answer_types(&m).contains(&RecordType::RRSIG), "{m:?}");

    let m = u.ask("nope.signed.test.", RecordType::A, None).await;
    assert_eq!(rcode(&m), ResponseCode::NXDomain, "{}", u.log());
    assert!(ad(&m), "no AD on a signed NXDOMAIN: {m:?}\n{}", u.log());
    assert!(authority_types(&m).contains(&RecordType::NSEC), "{m:?}");

    let m = u.ask("www.signed.test.", RecordType::AAAA, None).await;
    assert_eq!(rcode(&m), ResponseCode::NoError, "{}", u.log());
    assert!(m.answers.is_empty(), "NODATA has no answer: {m:?}");
    assert!(ad(&m), "no AD on a signed NODATA: {m:?}\n{}", u.log());
    assert!(authority_types(&m).contains(&RecordType::NSEC), "{m:?}");
}

#[tokio::test]
async fn unbound_validates_knot_from_its_dnskey() {
    let knot = knot().await;
    let anchor = knot.dnskey();
    assert!(anchor.contains(" DNSKEY 257 3 13 "), "{anchor}");
    assert_validates(&knot, &anchor).await;
}

#[tokio::test]
async fn unbound_validates_knot_from_its_ds() {
    let knot = knot().await;
    let anchor = knot.ds();
    assert!(anchor.contains(" DS "), "{anchor}");
    assert_validates(&knot, &anchor).await;
}

/// Bogus answers are SERVFAIL, never AD: from the DNSKEY of an unrelated key
/// and from Knot's own key with its bytes changed.
#[tokio::test]
async fn unbound_fails_a_wrong_trust_anchor() {
    let knot = knot().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let unrelated = keys::dnskey(
        &keys::generate(dir.path(), "other.pem", Alg::EcdsaP256),
        ZONE,
        Alg::EcdsaP256,
    );
    let right = knot.dnskey();
    let key = right.split_whitespace().last().expect("key field");
    let flipped: String = key
        .chars()
        .enumerate()
        .map(|(i, c)| match (i, c) {
            (10, 'A') => 'B',
            (10, _) => 'A',
            (_, c) => c,
        })
        .collect();
    let corrupted = right.replace(key, &flipped);
    assert_ne!(corrupted, right);
    for anchor in [unrelated, corrupted] {
        let u = Unbound::start(knot.addr, ZONE, &anchor);
        for (name, qtype) in [
            ("www.signed.test.", RecordType::A),
            ("nope.signed.test.", RecordType::A),
        ] {
            let m = u.ask(name, qtype, None).await;
            assert_eq!(
                rcode(&m),
                ResponseCode::ServFail,
                "{name} with anchor {anchor}: {m:?}\n{}",
                u.log()
            );
            assert!(!ad(&m));
        }
        assert!(
            u.log().contains("validation failure"),
            "unbound logs why (val-log-level 2):\n{}",
            u.log()
        );
    }
}

#[tokio::test]
async fn delv_fully_validates_knot() {
    let knot = knot().await;
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, records) in [("key.conf", knot.dnskey()), ("ds.conf", knot.ds())] {
        let anchor = anchor_file(dir.path(), name, &records);
        let out = delv(knot.addr, &anchor, "www.signed.test", "A").await;
        assert!(out.starts_with("; fully validated\n"), "{name}: {out}");
        assert!(out.contains("192.0.2.10"), "{out}");
    }
    let wrong = keys::generate(dir.path(), "other.pem", Alg::Ed25519);
    let anchor = anchor_file(
        dir.path(),
        "wrong.conf",
        &keys::dnskey(&wrong, ZONE, Alg::Ed25519),
    );
    let out = delv(knot.addr, &anchor, "www.signed.test", "A").await;
    assert!(!out.contains("fully validated"), "{out}");
    assert!(out.contains("resolution failed"), "{out}");
}

/// The keys harness writes PKCS#8 PEM for both algorithms, and turns a key
/// into the DNSKEY a signer publishes: Knot's own PEM key gives exactly
/// the DNSKEY Knot serves.
#[tokio::test]
async fn keys_give_the_dnskey_knot_publishes() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (alg, n, len) in [(Alg::EcdsaP256, 13, 88), (Alg::Ed25519, 15, 44)] {
        let k = keys::generate(dir.path(), &format!("k{n}.pem"), alg);
        let rr = keys::dnskey(&k, ZONE, alg);
        let prefix = format!("signed.test. 3600 IN DNSKEY 257 3 {n} ");
        assert!(rr.starts_with(&prefix), "{rr}");
        assert_eq!(rr.len() - prefix.len(), len, "base64 of the key: {rr}");
    }
    let knot = knot().await;
    let pems: Vec<_> = std::fs::read_dir(knot.dir().join("keys"))
        .expect("knot's key store")
        .map(|e| e.expect("key store entry").path())
        .collect();
    assert_eq!(pems.len(), 1, "one CSK: {pems:?}");
    assert_eq!(
        keys::dnskey(&pems[0], ZONE, Alg::EcdsaP256),
        knot.dnskey().trim_end()
    );
}

/// geosteer unsigned behind unbound (no anchor: insecure): the ECS subnet
/// a client sends unbound reaches geosteer, which answers per subnet, and
/// unbound keeps one answer per subnet.
#[tokio::test]
async fn unbound_forwards_ecs_to_geosteer() {
    let cfg = format!(
        "{}[pools.fb]
endpoints = [{{ address = \"192.0.2.99\" }}]
[pools.us]
endpoints = [{{ address = \"192.0.2.1\" }}]
[pools.eu]
endpoints = [{{ address = \"192.0.2.2\" }}]
[[balance]]
name = \"geo.example.test\"
policy = \"geo\"
pools = [\"fb\", \"us\", \"eu\"]
countries = {{ DE = [\"eu\"], US = [\"us\"] }}
",
        server_header("geoip = \"geo.mmdb\"")
    );
    let geo = mmdb::standard_country_db();
    let s = TestServer::start(&cfg, &[("geo.mmdb", &geo)]).await;
    let u = Unbound::start(s.dns, "example.test", "");
    let q = "geo.example.test.";
    for round in 0..2 {
        let eu = u.ask(q, RecordType::A, Some("5.9.0.0/24")).await;
        assert_eq!(
            addrs(&eu),
            vec![ip("192.0.2.2")],
            "round {round}\n{}",
            u.log()
        );
        assert!(!ad(&eu), "an insecure zone is never AD");
        let us = u.ask(q, RecordType::A, Some("8.8.8.0/24")).await;
        assert_eq!(
            addrs(&us),
            vec![ip("192.0.2.1")],
            "round {round}\n{}",
            u.log()
        );
        // unbound answers the client's ECS with geosteer's scope.
        let (addr, source, scope) = ecs(&us).expect("ECS in unbound's answer");
        assert_eq!((addr, source), (ip("8.8.8.0"), 24));
        assert_eq!(scope, 24, "geosteer's scope for 8.8.8.0/24");
    }
    // Without ECS, unbound sends its client's (127.0.0.1, in no country).
    let none = u.ask(q, RecordType::A, None).await;
    assert_eq!(addrs(&none), vec![ip("192.0.2.99")], "{}", u.log());
    drop(u);
    s.stop().await;
}
