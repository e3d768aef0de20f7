//! The fast path against the hickory path, query by query, then its own
//! specifics (case, ECS scope, TC, malformed input) and a randomized run.

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use hickory_proto::op::{
    Edns as HEdns, Message, MessageType, OpCode, Query as HQuery, ResponseCode,
};
use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsCode, EdnsOption};
use hickory_proto::rr::{Name, Record, RecordType};
use hickory_server::net::NetError;
use hickory_server::server::{ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponse;
use ipnet::IpNet;
use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};

use super::{Cookies, Outcome, Tally, answer, sample};
use crate::dns::DnsHandler;
use crate::dns::raw::{self, encode_udp};
use crate::metrics::Registry;
use crate::state::Shared;
use hickory_server::net::xfer::Protocol;

struct Fixture {
    _dir: tempfile::TempDir,
    shared: Arc<Shared>,
    handler: DnsHandler,
    registry: Registry,
}

#[derive(serde::Serialize)]
struct CountryCode<'a> {
    country_code: &'a str,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut w = mmdb_writer::Writer::new("geosteer-test-country");
    for (net, cc) in [
        ("5.9.0.0/16", "DE"),
        ("8.8.8.0/24", "US"),
        ("203.0.113.0/24", "JP"),
        ("2001:db8::/32", "JP"),
    ] {
        let net: IpNet = net.parse().expect("net");
        w.insert(net, &CountryCode { country_code: cc })
            .expect("insert");
    }
    let db = dir.path().join("geo.mmdb");
    std::fs::write(&db, w.to_bytes().expect("mmdb")).expect("write mmdb");
    let (snap, registry) = sample::snapshot(dir.path(), Some(&db)).expect("sample config loads");
    let shared = Arc::new(Shared::new(snap));
    let handler = DnsHandler::new(shared.clone(), &registry);
    Fixture {
        _dir: dir,
        shared,
        handler,
        registry,
    }
}

const SRC: &str = "192.0.2.200:5300";

fn src() -> SocketAddr {
    SRC.parse().expect("addr")
}

/// A query as a resolver sends it, the name's case kept as written.
#[derive(Clone)]
struct Ask {
    name: &'static str,
    qtype: RecordType,
    edns: Option<u16>,
    ecs: Option<(&'static str, u8)>,
}

fn ask(name: &'static str, qtype: RecordType) -> Ask {
    Ask {
        name,
        qtype,
        edns: Some(1232),
        ecs: None,
    }
}

impl Ask {
    fn no_edns(mut self) -> Ask {
        self.edns = None;
        self
    }
    fn payload(mut self, p: u16) -> Ask {
        self.edns = Some(p);
        self
    }
    fn ecs(mut self, ip: &'static str, prefix: u8) -> Ask {
        self.ecs = Some((ip, prefix));
        self
    }
    fn message(&self) -> Message {
        let mut m = Message::query();
        m.metadata.id = 0x4242;
        m.metadata.recursion_desired = true;
        m.add_query(HQuery::query(
            Name::from_str(self.name).expect("name"),
            self.qtype,
        ));
        if let Some(p) = self.edns {
            let mut e = HEdns::new();
            e.set_max_payload(p);
            if let Some((ip, prefix)) = self.ecs {
                let ip: IpAddr = ip.parse().expect("ip");
                e.options_mut()
                    .insert(EdnsOption::Subnet(ClientSubnet::new(ip, prefix, 0)));
            }
            m.set_edns(e);
        }
        m
    }
    fn wire(&self) -> Vec<u8> {
        let mut bytes = self.message().to_vec().expect("encode");
        let mut at = 12;
        for label in self.name.trim_end_matches('.').split('.') {
            at += 1;
            bytes[at..at + label.len()].copy_from_slice(label.as_bytes());
            at += label.len();
        }
        bytes
    }
}

fn fast(f: &Fixture, packet: &[u8]) -> (Outcome, Vec<u8>) {
    let mut out = Vec::new();
    let mut rng = SmallRng::seed_from_u64(1);
    let other = f.registry.name(crate::metrics::OTHER_NAME);
    let snap = f.shared.load();
    let counters = crate::dns::cookie::CookieCounters::default();
    let o = answer(
        packet,
        src(),
        &snap,
        &mut Tally::new(&other),
        &Cookies::new(&counters),
        &mut rng,
        &mut out,
    );
    (o, out)
}

/// A response handler that keeps the bytes the handler sent (shared with
/// `chain_tests`).
#[derive(Clone, Default)]
pub(super) struct Capture(pub(super) Arc<Mutex<Option<Vec<u8>>>>);

#[async_trait::async_trait]
impl ResponseHandler for Capture {
    async fn send_response<'a>(
        &mut self,
        response: MessageResponse<
            '_,
            'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
        >,
    ) -> Result<ResponseInfo, NetError> {
        let (info, bytes) = encode_udp(response)?;
        *self.0.lock().expect("lock") = Some(bytes);
        Ok(info)
    }
}

fn hickory(f: &Fixture, packet: &[u8]) -> Option<Vec<u8>> {
    let capture = Capture::default();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    rt.block_on(raw::answer(
        &f.handler,
        packet.to_vec(),
        src(),
        Protocol::Udp,
        capture.clone(),
    ));
    capture.0.lock().expect("lock").take()
}

fn decode(bytes: &[u8]) -> Message {
    Message::from_vec(bytes).unwrap_or_else(|e| panic!("undecodable response {bytes:02x?}: {e}"))
}

fn ecs_of(m: &Message) -> Option<(IpAddr, u8, u8)> {
    match m.edns.as_ref()?.option(EdnsCode::Subnet)? {
        EdnsOption::Subnet(cs) => Some((cs.addr(), cs.source_prefix(), cs.scope_prefix())),
        _ => None,
    }
}

/// The queries both paths must answer alike, all on the fast path.
fn same_answers() -> Vec<Ask> {
    use RecordType::*;
    vec![
        ask("static.example.test.", A),
        ask("STATIC.Example.TEST.", AAAA),
        ask("multi.example.test.", A).no_edns(),
        ask("www.example.test.", TXT).ecs("5.9.1.0", 24),
        ask("txt.example.test.", TXT),
        ask("caa.example.test.", CAA),
        ask("example.test.", SOA),
        ask("ns1.example.test.", A).payload(4096),
        ask("static.example.test.", MX),
        ask("ent.example.test.", A),
        ask("mail.example.test.", A),
        ask("nope.example.test.", A),
        ask("a.b.nope.example.test.", AAAA).ecs("2001:db8:aa::", 48),
        ask("www.example.com.", A),
        ask("com.", A).no_edns(),
        ask(".", NS),
        ask("www.example.test.", A).ecs("5.9.1.0", 24),
        ask("WwW.ExAmPlE.TeSt.", A).ecs("203.0.113.0", 24),
        ask("www.example.test.", A).ecs("8.8.8.0", 24),
        ask("www.example.test.", A).ecs("5.0.0.0", 12),
        ask("www.example.test.", A).ecs("5.9.255.255", 16),
        ask("www.example.test.", A).ecs("0.0.0.0", 0),
        ask("www.example.test.", A).ecs("10.1.2.0", 24),
        ask("www.example.test.", AAAA).ecs("2001:db8:aa::", 48),
        ask("www.example.test.", AAAA).ecs("203.0.113.0", 24),
        ask("www.example.test.", A),
        ask("www.example.test.", A).no_edns(),
        ask("www.example.test.", MX).ecs("5.9.1.0", 24),
        ask("fo.example.test.", A).ecs("5.9.1.0", 24),
        ask("fo.example.test.", AAAA).payload(512),
        ask("big.example.test.", AAAA).no_edns(),
    ]
}

#[test]
fn fast_and_hickory_answer_alike() {
    let f = fixture();
    for a in same_answers() {
        let q = a.wire();
        let (o, fast_bytes) = fast(&f, &q);
        assert_eq!(
            o,
            Outcome::Reply,
            "{} {} not on the fast path",
            a.name,
            a.qtype
        );
        let slow = hickory(&f, &q).expect("hickory answers");
        let (fm, hm) = (decode(&fast_bytes), decode(&slow));
        let what = format!("{} {} edns={:?} ecs={:?}", a.name, a.qtype, a.edns, a.ecs);
        assert_eq!(fm.metadata, hm.metadata, "{what}");
        assert_eq!(fm.queries, hm.queries, "{what}");
        assert_eq!(
            fm.queries[0].name().to_string(),
            a.name,
            "{what}: question echoed as asked"
        );
        assert_eq!(fm.answers, hm.answers, "{what}");
        assert_eq!(fm.additionals, hm.additionals, "{what}");
        // Negative answers: the same SOA; the fast path's TTL follows RFC 2308.
        let strip = |m: &Message| -> Vec<Record> {
            m.authorities
                .iter()
                .cloned()
                .map(|mut r| {
                    if r.record_type() == RecordType::SOA {
                        r.ttl = 0;
                    }
                    r
                })
                .collect()
        };
        assert_eq!(strip(&fm), strip(&hm), "{what}");
        for r in fm
            .authorities
            .iter()
            .filter(|r| r.record_type() == RecordType::SOA)
        {
            assert_eq!(r.ttl, 60, "{what}: negative TTL is min(TTL, MINIMUM)");
        }
        assert_eq!(fm.edns.is_some(), hm.edns.is_some(), "{what}");
        if let (Some(fe), Some(he)) = (&fm.edns, &hm.edns) {
            assert_eq!(fe.max_payload(), he.max_payload(), "{what}");
            assert_eq!(fe.version(), he.version(), "{what}");
            assert_eq!(ecs_of(&fm), ecs_of(&hm), "{what}");
        }
        assert!(fast_bytes.len() <= 1232, "{what}");
    }
}

#[test]
fn unusual_queries_fall_back_to_hickory() {
    use RecordType::*;
    let f = fixture();
    let mut cases: Vec<(String, Vec<u8>)> = [
        ask("alias.example.test.", A),
        ask("mail.example.test.", MX),
        ask("example.test.", NS),
        ask("static.example.test.", ANY),
        ask("static.example.test.", AXFR),
        ask("x.wild.test.", A),
        ask("ns1.wild.test.", A),
        ask("_health.www.example.test.", TXT),
        ask("xn--bcher-kva.example.test.", A),
    ]
    .iter()
    .map(|a| (format!("{} {}", a.name, a.qtype), a.wire()))
    .collect();
    let good = ask("static.example.test.", A).wire();
    let mut zero_qd = good[..12].to_vec();
    zero_qd[5] = 0;
    cases.push(("QDCOUNT=0".into(), zero_qd));
    let mut chaos = ask("static.example.test.", A).no_edns().wire();
    let n = chaos.len();
    chaos[n - 1] = 3;
    cases.push(("class CH".into(), chaos));
    let mut v1 = ask("static.example.test.", A).message();
    v1.edns.as_mut().expect("edns").set_version(1);
    cases.push(("EDNS version 1".into(), v1.to_vec().expect("encode")));
    let mut nsid = ask("static.example.test.", A).message();
    nsid.edns
        .as_mut()
        .expect("edns")
        .options_mut()
        .insert(EdnsOption::Unknown(3, vec![]));
    cases.push(("NSID".into(), nsid.to_vec().expect("encode")));
    for (ecs, why) in [
        (vec![0, 0, 0, 0], "ECS family 0"),
        (vec![0, 3, 24, 0, 1, 2, 3], "ECS family 3"),
        (vec![0, 1, 33, 0, 1, 2, 3, 4, 5], "ECS source 33"),
        (vec![0, 1, 16, 0, 5, 9, 1], "ECS extra octet"),
        (vec![0, 1, 24, 0, 5, 9], "ECS short address"),
    ] {
        let mut m = ask("static.example.test.", A).message();
        m.edns
            .as_mut()
            .expect("edns")
            .options_mut()
            .insert(EdnsOption::Unknown(8, ecs));
        cases.push((why.into(), m.to_vec().expect("encode")));
    }
    let mut trailing = good.clone();
    trailing.push(0);
    cases.push(("trailing byte".into(), trailing));
    for (why, q) in &cases {
        assert_eq!(fast(&f, q).0, Outcome::Fallback, "{why}");
    }
    // And hickory answers them: FORMERR for QDCOUNT=0, NOTIMP for STATUS, ...
    let rcode = |q: &[u8]| hickory(&f, q).map(|b| decode(&b).metadata.response_code);
    assert_eq!(rcode(&cases[9].1), Some(ResponseCode::FormErr), "QDCOUNT=0");
}

#[test]
fn other_opcodes_get_a_bare_notimp_and_bad_ecs_goes_to_the_handler() {
    let f = fixture();
    let good = ask("static.example.test.", RecordType::A).wire();
    let mut status = good.clone();
    status[2] |= 2 << 3;
    let (o, out) = fast(&f, &status);
    assert_eq!(o, Outcome::Reply);
    assert_eq!(out[..2], status[..2], "id");
    assert_eq!(out[2..], [0x80 | (2 << 3), 4, 0, 0, 0, 0, 0, 0, 0, 0]);
    // Bits set past the source prefix: the handler's FORMERR.
    let mut m = ask("static.example.test.", RecordType::A).message();
    m.edns
        .as_mut()
        .expect("edns")
        .options_mut()
        .insert(EdnsOption::Unknown(8, vec![0, 1, 20, 0, 5, 9, 15]));
    let q = m.to_vec().expect("encode");
    assert_eq!(fast(&f, &q).0, Outcome::Fallback);
    assert!(super::wire::ecs_malformed(&q));
    assert!(!super::wire::ecs_malformed(&good));
}

#[test]
fn responses_and_runts_are_dropped() {
    let f = fixture();
    let mut resp = ask("static.example.test.", RecordType::A).message();
    resp.metadata.message_type = MessageType::Response;
    let resp = resp.to_vec().expect("encode");
    assert_eq!(fast(&f, &resp).0, Outcome::Drop);
    assert_eq!(hickory(&f, &resp), None, "hickory ignores responses too");
    for n in 0..12 {
        assert_eq!(fast(&f, &resp[..n]).0, Outcome::Drop, "{n} bytes");
    }
}

#[test]
fn ecs_scope_is_zero_for_static_data_and_the_decision_for_balanced_names() {
    let f = fixture();
    // Static data and negative answers do not depend on the client.
    for name in ["static.example.test.", "nope.example.test."] {
        let (_, b) = fast(&f, &ask(name, RecordType::A).ecs("5.9.1.0", 24).wire());
        assert_eq!(
            ecs_of(&decode(&b)),
            Some(("5.9.1.0".parse().unwrap(), 24, 0)),
            "{name}"
        );
    }
    let (_, b) = fast(
        &f,
        &ask("www.example.test.", RecordType::A)
            .ecs("5.9.1.0", 24)
            .wire(),
    );
    let m = decode(&b);
    assert_eq!(ecs_of(&m), Some(("5.9.1.0".parse().unwrap(), 24, 16)));
    assert_eq!(m.answers.len(), 1);
    assert_eq!(m.answers[0].ttl, 30);
    // No ECS asked: none answered, though OPT is there.
    let (_, b) = fast(&f, &ask("www.example.test.", RecordType::A).wire());
    let m = decode(&b);
    assert!(m.edns.is_some());
    assert_eq!(ecs_of(&m), None);
}

#[test]
fn header_flags_follow_the_query() {
    let f = fixture();
    let mut q = ask("static.example.test.", RecordType::A).wire();
    q[2] &= !0x01; // RD clear
    q[3] |= 0x10; // CD set
    let m = decode(&fast(&f, &q).1);
    assert_eq!(m.metadata.id, 0x4242);
    assert!(m.metadata.authoritative);
    assert!(!m.metadata.recursion_desired);
    assert!(!m.metadata.recursion_available);
    assert!(m.metadata.checking_disabled);
    assert_eq!(m.metadata.op_code, OpCode::Query);
    let m = decode(&fast(&f, &ask("www.example.com.", RecordType::A).wire()).1);
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);
    assert!(!m.metadata.authoritative, "REFUSED is not authoritative");
}

#[test]
fn truncates_at_512_without_edns_and_keeps_opt_with_it() {
    let f = fixture();
    let (_, b) = fast(
        &f,
        &ask("big.example.test.", RecordType::AAAA).no_edns().wire(),
    );
    let m = decode(&b);
    assert!(m.metadata.truncation);
    assert!(m.answers.is_empty() && m.edns.is_none());
    assert!(b.len() <= 512);
    let q = ask("big.example.test.", RecordType::AAAA)
        .payload(4096)
        .ecs("5.9.1.0", 24)
        .wire();
    let (_, b) = fast(&f, &q);
    let m = decode(&b);
    assert!(m.metadata.truncation);
    assert_eq!(m.edns.as_ref().map(|e| e.max_payload()), Some(1232));
    assert_eq!(ecs_of(&m).map(|e| e.1), Some(24));
    // Three A records fit in 512 without EDNS.
    let (_, b) = fast(
        &f,
        &ask("multi.example.test.", RecordType::A).no_edns().wire(),
    );
    let m = decode(&b);
    assert!(!m.metadata.truncation);
    assert_eq!(m.answers.len(), 3);
    // A small advertised payload is the limit and is echoed (as hickory does).
    let (_, b) = fast(
        &f,
        &ask("static.example.test.", RecordType::A)
            .payload(100)
            .wire(),
    );
    assert_eq!(decode(&b).edns.map(|e| e.max_payload()), Some(512));
}

#[test]
fn the_fast_path_counts_what_it_answers() {
    let f = fixture();
    let count = |name: &str, t: &str, r: &str| {
        f.registry
            .name(name)
            .nonzero()
            .into_iter()
            .find(|(qt, rc, _)| *qt == t && *rc == r)
            .map_or(0, |c| c.2)
    };
    fast(
        &f,
        &ask("www.example.test.", RecordType::A)
            .ecs("5.9.1.0", 24)
            .wire(),
    );
    fast(&f, &ask("www.example.test.", RecordType::AAAA).wire());
    fast(&f, &ask("static.example.test.", RecordType::A).wire());
    fast(&f, &ask("nope.example.test.", RecordType::TXT).wire());
    fast(&f, &ask("www.example.com.", RecordType::A).wire());
    assert_eq!(count("www.example.test", "A", "NOERROR"), 1);
    assert_eq!(count("www.example.test", "AAAA", "NOERROR"), 1);
    assert_eq!(count("other", "A", "NOERROR"), 1);
    assert_eq!(count("other", "TXT", "NXDOMAIN"), 1);
    assert_eq!(count("other", "A", "REFUSED"), 1);
    let picks: u64 = f
        .registry
        .picks()
        .into_iter()
        .filter(|((n, _), _)| n == "www.example.test")
        .map(|(_, v)| v)
        .sum();
    assert_eq!(picks, 2);
}

/// 200k random and mutated datagrams: the fast path never panics, and what it
/// sends decodes, fits the limit and answers the question asked.
#[test]
fn random_and_mutated_packets_never_panic() {
    let f = fixture();
    let snap = f.shared.load();
    let other = f.registry.name(crate::metrics::OTHER_NAME);
    let mut rng = SmallRng::seed_from_u64(0x5eed);
    let mut pick_rng = SmallRng::seed_from_u64(7);
    let counters = crate::dns::cookie::CookieCounters::default();
    let seeds: Vec<Vec<u8>> = same_answers().iter().map(Ask::wire).collect();
    let mut out = Vec::new();
    let mut replies = 0;
    for i in 0..200_000u32 {
        let packet: Vec<u8> = if i % 4 == 0 {
            let n = rng.random_range(0..80);
            (0..n).map(|_| rng.random()).collect()
        } else {
            let mut p = seeds[rng.random_range(0..seeds.len())].clone();
            for _ in 0..rng.random_range(1..4) {
                match rng.random_range(0..4) {
                    0 if !p.is_empty() => {
                        let at = rng.random_range(0..p.len());
                        p[at] ^= 1 << rng.random_range(0..8);
                    }
                    1 if !p.is_empty() => {
                        let at = rng.random_range(0..p.len());
                        p[at] = rng.random();
                    }
                    2 => p.truncate(rng.random_range(0..=p.len())),
                    _ => {
                        let at = rng.random_range(0..=p.len());
                        p.insert(at, rng.random());
                    }
                }
            }
            p
        };
        let mut tally = Tally::new(&other);
        let cookies = Cookies::new(&counters);
        if answer(
            &packet,
            src(),
            &snap,
            &mut tally,
            &cookies,
            &mut pick_rng,
            &mut out,
        ) == Outcome::Reply
        {
            replies += 1;
            let m = Message::from_vec(&out)
                .unwrap_or_else(|e| panic!("reply to {packet:02x?} does not decode: {e}"));
            assert!(out.len() <= 1232);
            assert_eq!(out[..2], packet[..2], "id echoed");
            // NOTIMP to another opcode is the header alone.
            let notimp = packet[2] & 0x78 != 0;
            assert_eq!(m.queries.len(), usize::from(!notimp));
        }
    }
    assert!(
        replies > 10_000,
        "only {replies} replies: the mutations are too harsh"
    );
}
