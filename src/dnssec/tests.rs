//! Signatures against a fixed clock (time is an argument everywhere here):
//! the window an RRSIG states, when a zone's signatures are due again, and
//! both across the wrap of 32-bit time (RFC 4034 §3.1.5, serial number
//! arithmetic).

use std::collections::{BTreeMap, HashSet};
use std::str::FromStr;
use std::time::Duration;

use hickory_proto::rr::rdata::{A, SOA};
use hickory_proto::rr::{Name, RData, Record};

use super::*;
use crate::config::{DnssecConfig, NsecMode};

const DAY: u32 = 86_400;
/// A fixed "now" (Unix seconds, late 2025).
const NOW: u32 = 1_760_000_000;

/// A signer for `example.test.` with a fresh Ed25519 key (in `dir`), its
/// signatures valid 14 days and refreshed 3 days before they expire.
fn signer(dir: &std::path::Path) -> Signer {
    let pkcs8 = ring::signature::Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new())
        .expect("key");
    let pem = format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, pkcs8.as_ref())
    );
    let path = dir.join("zone.pem");
    std::fs::write(&path, pem).expect("write key");
    let cfg = DnssecConfig {
        keys: vec![path],
        ksk: None,
        validity: Duration::from_secs(u64::from(14 * DAY)),
        refresh: Duration::from_secs(u64::from(3 * DAY)),
        nsec: NsecMode::default(),
    };
    Signer::new(Name::from_str("example.test.").expect("origin"), &cfg).expect("signer")
}

fn a_record() -> Record {
    Record::from_rdata(
        Name::from_str("www.example.test.").expect("name"),
        300,
        RData::A(A::new(192, 0, 2, 1)),
    )
}

/// The (inception, expiration) of the one RRSIG over `www A` made at `now`.
fn window(signer: &Signer, now: u32) -> (u32, u32) {
    let sigs = signer.sign(&[a_record()], now);
    assert_eq!(sigs.len(), 1, "one key, one signature");
    let RData::DNSSEC(DNSSECRData::RRSIG(rrsig)) = &sigs[0].data else {
        panic!("not an RRSIG: {:?}", sigs[0]);
    };
    let input = rrsig.input();
    (input.sig_inception.get(), input.sig_expiration.get())
}

#[test]
fn an_rrsig_is_valid_from_an_hour_back_for_the_validity() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = signer(dir.path());
    assert_eq!(window(&s, NOW), (NOW - BACKDATE, NOW + 14 * DAY));
    // Signed just after the 32-bit wrap and just before it: the fields wrap
    // with the time, as serial numbers do.
    assert_eq!(
        window(&s, 60),
        (60u32.wrapping_sub(BACKDATE), 60 + 14 * DAY)
    );
    let late = u32::MAX - 60;
    assert_eq!(
        window(&s, late),
        (late - BACKDATE, (14 * DAY).wrapping_sub(61))
    );
}

/// A zone with no records but its SOA, signed at `now`.
fn zone(signer: Signer, now: u32) -> SignedZone {
    let soa = Record::from_rdata(
        Name::from_str("example.test.").expect("apex"),
        3600,
        RData::SOA(SOA::new(
            Name::from_str("ns1.example.test.").expect("mname"),
            Name::from_str("hostmaster.example.test.").expect("rname"),
            1,
            3600,
            600,
            86_400,
            300,
        )),
    );
    SignedZone::build(
        std::sync::Arc::new(signer),
        &BTreeMap::new(),
        &HashSet::new(),
        &soa,
        &[],
        now,
    )
}

#[test]
fn signatures_are_due_refresh_before_they_expire() {
    let dir = tempfile::tempdir().expect("tempdir");
    // 14 days of validity, refreshed 3 days before: due from day 11 on.
    for signed_at in [NOW, u32::MAX - 5 * DAY, u32::MAX - 12 * DAY] {
        let z = zone(signer(dir.path()), signed_at);
        let at = |days: u32, secs: u32| signed_at.wrapping_add(days * DAY + secs);
        assert!(!z.due(signed_at), "at signing, signed at {signed_at}");
        assert!(!z.due(at(10, 0)), "day 10, signed at {signed_at}");
        assert!(!z.due(at(11, 0).wrapping_sub(1)), "a second before day 11");
        assert!(z.due(at(11, 0)), "day 11, signed at {signed_at}");
        assert!(z.due(at(14, 1)), "expired, signed at {signed_at}");
    }
}
