//! The fast path in a zone signed with `nsec = "chain"`: NXDOMAIN, NODATA
//! (a type, a balanced name's family, an empty non-terminal) answered from
//! the prepared links, the same records the handler sends.

use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;

use base64::Engine;
use hickory_proto::op::{Edns, Message, Query, ResponseCode};
use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsOption};
use hickory_proto::rr::{Name, RecordType};
use hickory_server::net::xfer::Protocol;
use rand::SeedableRng;
use rand::rngs::SmallRng;

use super::tests::Capture;
use super::{Cookies, Outcome, Tally, answer, sample};
use crate::dns::DnsHandler;
use crate::dns::raw;
use crate::state::Shared;

fn src() -> SocketAddr {
    "192.0.2.200:5300".parse().expect("addr")
}

fn query(name: &str, qtype: RecordType, ecs: Option<&str>) -> Vec<u8> {
    let mut m = Message::query();
    m.metadata.id = 0x4242;
    m.add_query(Query::query(Name::from_str(name).expect("name"), qtype));
    let mut e = Edns::new();
    e.set_max_payload(1232);
    e.set_dnssec_ok(true);
    if let Some(ip) = ecs {
        e.options_mut().insert(EdnsOption::Subnet(ClientSubnet::new(
            ip.parse().expect("ip"),
            24,
            0,
        )));
    }
    m.set_edns(e);
    m.to_vec().expect("encode")
}

#[test]
fn chain_denials_are_answered_on_the_fast_path_as_the_handler_answers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pkcs8 = ring::signature::Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new())
        .expect("key");
    let pem = format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        base64::engine::general_purpose::STANDARD.encode(pkcs8.as_ref())
    );
    std::fs::write(dir.path().join("zone.pem"), pem).expect("write key");
    let (snap, registry) = sample::snapshot_with(
        dir.path(),
        None,
        "\n[dnssec.\"example.test\"]\nkeys = [\"zone.pem\"]\nnsec = \"chain\"\n",
    )
    .expect("sample config loads");
    let shared = Arc::new(Shared::new(snap));
    let handler = DnsHandler::new(shared.clone(), &registry);
    let other = registry.name(crate::metrics::OTHER_NAME);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    for (name, qtype, ecs, rcode, nsecs) in [
        (
            "nope.example.test.",
            RecordType::A,
            None,
            ResponseCode::NXDomain,
            2,
        ),
        (
            "x.www.example.test.",
            RecordType::A,
            None,
            ResponseCode::NXDomain,
            1,
        ),
        (
            "static.example.test.",
            RecordType::MX,
            None,
            ResponseCode::NoError,
            1,
        ),
        (
            "www.example.test.",
            RecordType::MX,
            None,
            ResponseCode::NoError,
            1,
        ),
        (
            "ent.example.test.",
            RecordType::A,
            None,
            ResponseCode::NoError,
            1,
        ),
        // big has no IPv4: its link lacks A.
        (
            "big.example.test.",
            RecordType::A,
            None,
            ResponseCode::NoError,
            1,
        ),
    ] {
        let what = format!("{name} {qtype}");
        let q = query(name, qtype, ecs);
        let mut out = Vec::new();
        let snap = shared.load();
        let counters = crate::dns::cookie::CookieCounters::default();
        let o = answer(
            &q,
            src(),
            &snap,
            &mut Tally::new(&other),
            &Cookies::new(&counters),
            &mut SmallRng::seed_from_u64(1),
            &mut out,
        );
        assert_eq!(o, Outcome::Reply, "{what}: not on the fast path");
        let capture = Capture::default();
        rt.block_on(raw::answer(
            &handler,
            q.clone(),
            src(),
            Protocol::Udp,
            capture.clone(),
        ));
        let slow = capture
            .0
            .lock()
            .expect("lock")
            .take()
            .expect("handler answers");
        let (fm, hm) = (
            Message::from_vec(&out).expect("fast decodes"),
            Message::from_vec(&slow).expect("handler decodes"),
        );
        assert_eq!(fm.metadata.response_code, rcode, "{what}");
        assert_eq!(hm.metadata.response_code, rcode, "{what}");
        assert!(fm.answers.is_empty(), "{what}");
        let sorted = |m: &Message| {
            let mut a = m.authorities.clone();
            a.sort();
            a
        };
        assert_eq!(sorted(&fm), sorted(&hm), "{what}");
        let n = fm
            .authorities
            .iter()
            .filter(|r| r.record_type() == RecordType::NSEC)
            .count();
        assert_eq!(n, nsecs, "{what}: {fm:?}");
    }
}
