//! The DNSSEC test harness proved against a real signer: Knot DNS signs a
//! zone; BIND's `delv` validates it from a trust anchor and rejects it
//! from a wrong one; openssl keys give the DNSKEY Knot publishes.

use crate::harness::delv::{anchor_file, delv};
use crate::harness::keys::{self, Alg};
use crate::harness::knot_signer::KnotSigner;

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
