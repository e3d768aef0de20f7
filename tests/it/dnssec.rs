//! DNSSEC: geosteer signs a zone with a geo-balanced name. Every signature
//! in its answers verifies with its DNSKEY (hickory's verifier); a real
//! validating resolver (unbound) returns the balanced answer with AD for an
//! EU and a US client, validated denials, and SERVFAIL with a wrong trust
//! anchor; delv reports "fully validated"; a drained endpoint leaves the very
//! next validated answer; signatures are re-made before they expire.

use std::time::Duration;

use hickory_proto::dnssec::rdata::{DNSSECRData, RRSIG};
use hickory_proto::dnssec::{PublicKey, TBS};
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{DNSClass, RData, Record, RecordType};

use crate::harness::delv;
use crate::harness::dig::{self, Ask, addrs, ip};
use crate::harness::eventually::eventually_every;
use crate::harness::geosteer::{FAST_PATH, TestServer, server_header};
use crate::harness::keys::{self, Alg};
use crate::harness::mmdb;
use crate::harness::unbound::{Unbound, ad, rcode};

/// A geo-balanced name (EU, US, a fallback) in a zone signed with one key
/// of `alg`; `extra` goes in `[dnssec]`.
async fn start(alg: Alg, extra: &str) -> (TestServer, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = keys::generate(dir.path(), "zone.pem", alg);
    let pem = std::fs::read(&key).expect("key");
    let cfg = format!(
        "{}[pools.fb]
endpoints = [{{ address = \"192.0.2.99\" }}]
[pools.us]
endpoints = [{{ address = \"192.0.2.1\" }}, {{ address = \"2001:db8::1\" }}]
[pools.eu]
endpoints = [{{ address = \"192.0.2.2\" }}, {{ address = \"192.0.2.3\" }}]
[[balance]]
name = \"www.example.test\"
policy = \"geo\"
pools = [\"fb\", \"us\", \"eu\"]
countries = {{ DE = [\"eu\"], US = [\"us\"] }}
answers = 2

[dnssec.\"example.test\"]
keys = [\"zone.pem\"]
{extra}
",
        server_header("geoip = \"geo.mmdb\"")
    );
    let geo = mmdb::standard_country_db();
    let s = TestServer::start(&cfg, &[("geo.mmdb", &geo), ("zone.pem", &pem)]).await;
    let anchor = keys::dnskey(&key, "example.test", alg);
    (s, anchor)
}

fn rrsigs(records: &[Record]) -> Vec<&RRSIG> {
    records
        .iter()
        .filter_map(|r| match &r.data {
            RData::DNSSEC(DNSSECRData::RRSIG(s)) => Some(s),
            _ => None,
        })
        .collect()
}

/// Checks every RRSIG in `section` against `keys` over the RRset it covers.
pub fn verify_section(section: &[Record], keys: &[Record]) -> usize {
    let mut checked = 0;
    for sig in rrsigs(section) {
        let input = sig.input();
        let rrset: Vec<Record> = section
            .iter()
            .filter(|r| r.record_type() == input.type_covered)
            .cloned()
            .collect();
        assert!(
            !rrset.is_empty(),
            "an RRSIG over {} without its RRset",
            input.type_covered
        );
        let name = rrset[0].name.clone();
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
            .unwrap_or_else(|| panic!("no DNSKEY with tag {}", input.key_tag));
        let mut sorted = rrset.clone();
        sorted.sort();
        let tbs = TBS::from_input(&name, DNSClass::IN, input, sorted.iter()).expect("tbs");
        key.public_key()
            .verify(tbs.as_ref(), sig.sig())
            .unwrap_or_else(|e| {
                panic!(
                    "RRSIG over {name} {} does not verify: {e}",
                    input.type_covered
                )
            });
        checked += 1;
    }
    checked
}

async fn ask(s: &TestServer, ask: Ask) -> Message {
    let m = dig::udp(s.dns, &ask).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NoError, "{m:?}");
    m
}

/// On each UDP path (not through `both_paths!`: its DO variants would set
/// DO on the queries this test sends without it).
#[tokio::test]
async fn every_signature_verifies_and_denial_is_compact_fast() {
    FAST_PATH.scope(true, signed_answers()).await;
}

#[tokio::test]
async fn every_signature_verifies_and_denial_is_compact_hickory() {
    FAST_PATH.scope(false, signed_answers()).await;
}

async fn signed_answers() {
    let (s, _) = start(Alg::EcdsaP256, "").await;
    let keys = ask(
        &s,
        Ask::new("example.test.", RecordType::DNSKEY).dnssec_ok(),
    )
    .await;
    assert_eq!(
        verify_section(&keys.answers, &keys.answers),
        1,
        "the DNSKEY RRset is signed"
    );
    let dnskeys = keys.answers.clone();

    // The balanced answer for an EU client: its two endpoints, signed.
    let eu = ask(
        &s,
        Ask::new("www.example.test.", RecordType::A)
            .ecs("5.9.0.0/24")
            .dnssec_ok(),
    )
    .await;
    let mut got = addrs(&eu);
    got.sort();
    assert_eq!(got, [ip("192.0.2.2"), ip("192.0.2.3")]);
    assert_eq!(verify_section(&eu.answers, &dnskeys), 1);
    assert!(
        eu.edns.as_ref().is_some_and(|e| e.flags().dnssec_ok),
        "DO is echoed"
    );
    let us = ask(
        &s,
        Ask::new("www.example.test.", RecordType::AAAA)
            .ecs("8.8.8.0/24")
            .dnssec_ok(),
    )
    .await;
    assert_eq!(addrs(&us), [ip("2001:db8::1")]);
    assert_eq!(verify_section(&us.answers, &dnskeys), 1);

    // A zone-file RRset.
    let st = ask(
        &s,
        Ask::new("static.example.test.", RecordType::A).dnssec_ok(),
    )
    .await;
    assert_eq!(verify_section(&st.answers, &dnskeys), 1);

    // NODATA at an existing name: the signed SOA and the name's NSEC, which
    // lists what it has; no zone walk (the next name is its own successor).
    let nodata = ask(
        &s,
        Ask::new("www.example.test.", RecordType::MX).dnssec_ok(),
    )
    .await;
    assert!(nodata.answers.is_empty());
    assert_eq!(
        verify_section(&nodata.authorities, &dnskeys),
        2,
        "SOA and NSEC signed"
    );
    let nsec = nodata
        .authorities
        .iter()
        .find_map(|r| match &r.data {
            RData::DNSSEC(DNSSECRData::NSEC(n)) => Some(n.clone()),
            _ => None,
        })
        .expect("NSEC");
    let types: Vec<RecordType> = nsec.type_bit_maps().collect();
    for t in [RecordType::A, RecordType::AAAA, RecordType::TXT] {
        assert!(types.contains(&t), "{t} at www: {types:?}");
    }
    assert_eq!(
        nsec.next_domain_name().to_string(),
        "\\000.www.example.test."
    );

    // The EU pool has no IPv6: an EU client's AAAA comes, signed, from the
    // next pool that has one (health is per family), not NODATA.
    let m = ask(
        &s,
        Ask::new("www.example.test.", RecordType::AAAA)
            .ecs("5.9.0.0/24")
            .dnssec_ok(),
    )
    .await;
    assert_eq!(addrs(&m), vec![ip("2001:db8::1")], "{m:?}");
    assert_eq!(verify_section(&m.answers, &dnskeys), 1, "AAAA signed");
    // NODATA for an address family a name lacks: static.example.test has no
    // AAAA.
    for (name, ecs) in [("static.example.test.", "8.8.8.0/24")] {
        let m = ask(&s, Ask::new(name, RecordType::AAAA).ecs(ecs).dnssec_ok()).await;
        assert!(m.answers.is_empty(), "{name}: {m:?}");
        assert_eq!(
            verify_section(&m.authorities, &dnskeys),
            2,
            "{name}: SOA and NSEC signed"
        );
        assert!(m.edns.as_ref().is_some_and(|e| e.flags().dnssec_ok));
    }

    // The NSEC itself, asked for: the record the NODATA proof showed.
    let own = ask(
        &s,
        Ask::new("www.example.test.", RecordType::NSEC).dnssec_ok(),
    )
    .await;
    assert_eq!(
        own.answers
            .iter()
            .filter(|r| r.record_type() == RecordType::NSEC)
            .count(),
        1
    );
    assert_eq!(verify_section(&own.answers, &dnskeys), 1);

    // A name that does not exist: compact denial, NXNAME in the NSEC. The
    // first proof is signed when asked; the second answer is the cached one
    // (on the fast path, from its wire form), the same record set.
    let mut proofs = Vec::new();
    for round in 0..2 {
        let nx = ask(
            &s,
            Ask::new("nope.example.test.", RecordType::A).dnssec_ok(),
        )
        .await;
        assert_eq!(
            verify_section(&nx.authorities, &dnskeys),
            2,
            "round {round}"
        );
        let nx_types: Vec<u16> = nx
            .authorities
            .iter()
            .find_map(|r| match &r.data {
                RData::DNSSEC(DNSSECRData::NSEC(n)) => {
                    Some(n.type_bit_maps().map(u16::from).collect())
                }
                _ => None,
            })
            .expect("NSEC");
        assert!(nx_types.contains(&128), "NXNAME: {nx_types:?}");
        proofs.push(nx.authorities.clone());
    }
    assert_eq!(proofs[0], proofs[1], "the cached proof is served again");

    // Without DO, nothing DNSSEC: the same answer as ever.
    let plain = ask(
        &s,
        Ask::new("www.example.test.", RecordType::A).ecs("5.9.0.0/24"),
    )
    .await;
    assert!(rrsigs(&plain.answers).is_empty());
    let nx_plain = dig::udp(s.dns, &Ask::new("nope.example.test.", RecordType::A)).await;
    assert_eq!(nx_plain.metadata.response_code, ResponseCode::NXDomain);
    assert!(
        nx_plain
            .authorities
            .iter()
            .all(|r| r.record_type() == RecordType::SOA)
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unbound_validates_balanced_answers_and_denials() {
    for alg in [Alg::EcdsaP256, Alg::Ed25519] {
        let (s, anchor) = start(alg, "").await;
        let u = Unbound::start(s.dns, "example.test", &anchor);
        let eu = u
            .ask("www.example.test.", RecordType::A, Some("5.9.0.0/24"))
            .await;
        let mut got = addrs(&eu);
        got.sort();
        assert_eq!(
            got,
            [ip("192.0.2.2"), ip("192.0.2.3")],
            "{alg:?}\n{}",
            u.log()
        );
        assert!(ad(&eu), "{alg:?}: EU answer validated\n{}", u.log());
        let us = u
            .ask("www.example.test.", RecordType::A, Some("8.8.8.0/24"))
            .await;
        assert_eq!(addrs(&us), [ip("192.0.2.1")], "{}", u.log());
        assert!(ad(&us), "{alg:?}: US answer validated\n{}", u.log());
        let nx = u.ask("nope.example.test.", RecordType::A, None).await;
        assert!(
            matches!(rcode(&nx), ResponseCode::NXDomain | ResponseCode::NoError)
                && nx.answers.is_empty(),
            "{nx:?}"
        );
        assert!(ad(&nx), "{alg:?}: the denial is validated\n{}", u.log());
        let nodata = u.ask("static.example.test.", RecordType::MX, None).await;
        assert!(
            nodata.answers.is_empty() && ad(&nodata),
            "{alg:?}: NODATA validated\n{}",
            u.log()
        );
        drop(u);
        s.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_trust_anchor_is_servfail() {
    let (s, _) = start(Alg::EcdsaP256, "").await;
    let other = tempfile::tempdir().expect("tempdir");
    let stranger = keys::generate(other.path(), "other.pem", Alg::EcdsaP256);
    let u = Unbound::start(
        s.dns,
        "example.test",
        &keys::dnskey(&stranger, "example.test", Alg::EcdsaP256),
    );
    let m = u
        .ask("www.example.test.", RecordType::A, Some("5.9.0.0/24"))
        .await;
    assert_eq!(rcode(&m), ResponseCode::ServFail, "{m:?}");
    drop(u);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delv_fully_validates() {
    let (s, anchor) = start(Alg::EcdsaP256, "").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let file = delv::anchor_file(dir.path(), "anchor.conf", &anchor);
    for (name, qtype, says) in [
        ("www.example.test", "A", "; fully validated"),
        ("static.example.test", "A", "; fully validated"),
        (
            "static.example.test",
            "AAAA",
            "; negative response, fully validated",
        ),
        (
            "nope.example.test",
            "A",
            "; negative response, fully validated",
        ),
        (
            "www.example.test",
            "MX",
            "; negative response, fully validated",
        ),
    ] {
        let out = delv::delv(s.dns, &file, name, qtype).await;
        assert!(out.contains(says), "{name} {qtype}: {out}");
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drained_endpoint_leaves_the_next_validated_answer() {
    let (s, anchor) = start(Alg::EcdsaP256, "").await;
    let u = Unbound::start(s.dns, "example.test", &anchor);
    let before = ask(
        &s,
        Ask::new("www.example.test.", RecordType::A)
            .ecs("5.9.0.0/24")
            .dnssec_ok(),
    )
    .await;
    assert_eq!(addrs(&before).len(), 2);
    s.running
        .control
        .drain_endpoint("eu", "192.0.2.3", true, false)
        .await
        .expect("drain");
    let after = ask(
        &s,
        Ask::new("www.example.test.", RecordType::A)
            .ecs("5.9.0.0/24")
            .dnssec_ok(),
    )
    .await;
    assert_eq!(addrs(&after), [ip("192.0.2.2")]);
    assert_eq!(after.answers[0].ttl, 15, "eu is not whole: min_ttl");
    // The answer at min_ttl was signed in advance, not per query.
    let snap = s.running.shared.load_full();
    let zone = snap
        .dnssec
        .zones
        .iter()
        .flatten()
        .next()
        .expect("signed zone");
    assert!(
        zone.balanced.keys().any(|(name, rtype, set, ttl)| {
            name.to_string() == "www.example.test."
                && *rtype == RecordType::A
                && set.as_slice() == [ip("192.0.2.2")]
                && *ttl == 15
        }),
        "the min_ttl answer is prepared"
    );
    let keys = ask(
        &s,
        Ask::new("example.test.", RecordType::DNSKEY).dnssec_ok(),
    )
    .await;
    assert_eq!(verify_section(&after.answers, &keys.answers), 1);
    // Through the resolver (its cache is keyed by subnet: a fresh one).
    let m = u
        .ask("www.example.test.", RecordType::A, Some("5.9.1.0/24"))
        .await;
    assert_eq!(addrs(&m), [ip("192.0.2.2")], "{}", u.log());
    assert!(ad(&m), "{}", u.log());
    drop(u);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signatures_are_refreshed_before_they_expire() {
    let (s, _) = start(
        Alg::Ed25519,
        "signature_validity = \"60s\"\nrefresh = \"57s\"\n",
    )
    .await;
    let expiry = |m: &Message| {
        rrsigs(&m.answers)
            .first()
            .map(|s| s.input().sig_expiration.get())
            .expect("an RRSIG")
    };
    let q = || Ask::new("static.example.test.", RecordType::A).dnssec_ok();
    let first = expiry(&ask(&s, q()).await);
    // Due 3 s after signing: re-signed within a few seconds more.
    let m = eventually_every(
        Duration::from_secs(15),
        Duration::from_millis(250),
        "signatures re-made",
        async || {
            let m = ask(&s, q()).await;
            if expiry(&m) > first {
                Ok(m)
            } else {
                Err(format!("expiration still {first}"))
            }
        },
    )
    .await;
    let keys = ask(
        &s,
        Ask::new("example.test.", RecordType::DNSKEY).dnssec_ok(),
    )
    .await;
    assert_eq!(verify_section(&m.answers, &keys.answers), 1);
    s.stop().await;
}

/// A KSK and a ZSK (both Ed25519: one algorithm, RFC 4035 §2.2; see
/// [`a_ksk_and_a_zsk_of_different_algorithms_are_refused`]): `geosteer dnssec ds` prints the KSK's
/// DS, and unbound anchored on that DS alone validates the balanced answer
/// (the DNSKEY RRset signed by the KSK, the answer by the ZSK). `check`
/// names both keys with their tags and roles.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ds_geosteer_prints_anchors_a_ksk_zsk_zone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ksk = std::fs::read(keys::generate(dir.path(), "ksk.pem", Alg::Ed25519)).expect("ksk");
    let zsk = std::fs::read(keys::generate(dir.path(), "zsk.pem", Alg::Ed25519)).expect("zsk");
    let cfg = format!(
        "{}[pools.eu]
endpoints = [{{ address = \"192.0.2.2\" }}]
[[balance]]
name = \"www.example.test\"
policy = \"failover\"
pools = [\"eu\"]

[dnssec.\"example.test\"]
keys = [\"zsk.pem\", \"ksk.pem\"]
ksk = \"ksk.pem\"
",
        server_header("")
    );
    let s = TestServer::start(&cfg, &[("ksk.pem", &ksk), ("zsk.pem", &zsk)]).await;
    let config = s.config_path();
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_geosteer"))
            .args(args)
            .arg("--config")
            .arg(&config)
            .output()
            .expect("run geosteer");
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("UTF-8")
    };
    // The keys and the earliest expiry in the status API; both counters in
    // /metrics, which promtool accepts.
    let admin = format!("http://{}", s.running.admin_addr);
    let (code, status) = crate::harness::http::get_json(&format!("{admin}/api/v1/status")).await;
    assert_eq!(code, 200);
    let zone = &status["dnssec"][0];
    assert_eq!(zone["zone"], "example.test.");
    let mut flags: Vec<u64> = zone["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .filter_map(|k| k["flags"].as_u64())
        .collect();
    flags.sort();
    assert_eq!(flags, [256, 257], "{zone}");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let expiry = zone["earliest_expiry_unix"].as_u64().expect("expiry");
    assert!(
        expiry > now + 6 * 86_400 && expiry <= now + 7 * 86_400 + 60,
        "{zone}"
    );
    let (_, metrics) = crate::harness::http::get(&format!("{admin}/metrics")).await;
    assert!(
        metrics.contains("geosteer_dnssec_signatures_total "),
        "{metrics}"
    );
    assert!(
        metrics.contains("geosteer_dnssec_earliest_expiry_seconds "),
        "{metrics}"
    );
    let (ok, out) = crate::metrics::promtool_check(&metrics);
    assert!(ok && out.trim().is_empty(), "promtool: {out}");

    let ds = run(&["dnssec", "ds", "example.test"]);
    let fields: Vec<&str> = ds.split_whitespace().collect();
    assert_eq!(fields.len(), 8, "one DS line: {ds}");
    assert_eq!(&fields[..4], ["example.test.", "3600", "IN", "DS"]);
    assert_eq!(
        (fields[5], fields[6]),
        ("15", "2"),
        "Ed25519 KSK, SHA-256: {ds}"
    );
    let check = run(&["check"]);
    assert!(
        check.contains(&format!("tag {}, algorithm 15", fields[4]))
            && check.contains("KSK: signs the DNSKEY RRset"),
        "{check}"
    );
    assert!(
        check
            .lines()
            .any(|l| l.contains("zsk.pem: tag") && l.contains("algorithm 15") && l.contains("ZSK")),
        "{check}"
    );

    let keys_answer = ask(
        &s,
        Ask::new("example.test.", RecordType::DNSKEY).dnssec_ok(),
    )
    .await;
    assert_eq!(
        keys_answer
            .answers
            .iter()
            .filter(|r| r.record_type() == RecordType::DNSKEY)
            .count(),
        2
    );
    assert_eq!(
        rrsigs(&keys_answer.answers).len(),
        1,
        "the DNSKEY RRset is signed by the KSK only"
    );
    let u = Unbound::start(s.dns, "example.test", ds.trim());
    let m = u.ask("www.example.test.", RecordType::A, None).await;
    assert_eq!(addrs(&m), [ip("192.0.2.2")], "{}", u.log());
    assert!(ad(&m), "validated from the DS alone\n{}", u.log());
    drop(u);
    s.stop().await;
}

/// A key that cannot be read on reload is a config error naming its path;
/// the zone keeps being answered, signed with the keys it had.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_key_on_reload_keeps_the_old_signatures() {
    let (s, anchor) = start(Alg::EcdsaP256, "").await;
    std::fs::write(
        s.path("zone.pem"),
        "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n",
    )
    .expect("write");
    let err = s
        .running
        .reload()
        .await
        .expect_err("a bad key must fail the reload")
        .to_string();
    assert!(err.contains("zone.pem"), "the error names the key: {err}");
    let u = Unbound::start(s.dns, "example.test", &anchor);
    let m = u
        .ask("www.example.test.", RecordType::A, Some("5.9.0.0/24"))
        .await;
    assert!(
        ad(&m) && !addrs(&m).is_empty(),
        "still signed with the old key\n{}",
        u.log()
    );
    drop(u);
    s.stop().await;
}

/// RFC 4035 §2.2: every RRset is signed with each algorithm of the DNSKEY
/// RRset. A KSK and a ZSK of different algorithms would sign each RRset
/// with one: `check` refuses them, naming both keys and the line of `ksk`,
/// and `serve` does not start with them.
#[tokio::test]
async fn a_ksk_and_a_zsk_of_different_algorithms_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ksk = std::fs::read(keys::generate(dir.path(), "ksk.pem", Alg::Ed25519)).expect("ksk");
    let zsk = std::fs::read(keys::generate(dir.path(), "zsk.pem", Alg::EcdsaP256)).expect("zsk");
    let header = server_header("");
    let cfg = format!(
        "{header}[dnssec.\"example.test\"]\nkeys = [\"zsk.pem\", \"ksk.pem\"]\nksk = \"ksk.pem\"\n"
    );
    let ksk_line = cfg
        .lines()
        .position(|l| l.starts_with("ksk ="))
        .expect("ksk line")
        + 1;
    let (_dir, path) = crate::harness::geosteer::write_config(
        &cfg,
        &[
            ("ksk.pem", &ksk),
            ("zsk.pem", &zsk),
            (
                "example.test.zone",
                crate::harness::geosteer::ZONE.as_bytes(),
            ),
        ],
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_geosteer"))
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .expect("run geosteer check");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    let want = format!(
        "error: {}:{ksk_line}: dnssec.\"example.test\".ksk: the KSK ",
        path.display()
    );
    let line = text
        .lines()
        .find(|l| l.starts_with(&want))
        .unwrap_or_else(|| panic!("no {want:?} in:\n{text}"));
    for needle in [
        "ksk.pem (algorithm 15, ED25519)",
        "zsk.pem (algorithm 13, ECDSAP256SHA256)",
        "RFC 4035",
    ] {
        assert!(line.contains(needle), "{needle} in {line}");
    }
    let err = geosteer::app::start(&path)
        .await
        .err()
        .expect("must refuse");
    assert!(err.to_string().contains("differ in algorithm"), "{err}");
}
