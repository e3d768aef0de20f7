//! fast: the UDP fast path. [`answer`] turns one datagram into one response in
//! a reused buffer: it parses only the header, the question and the OPT record
//! (`wire`), answers balanced names through `steer::decide` and static names
//! from fragments compiled once per config load (`table`), and allocates
//! nothing on the way (`decide` aside).
//!
//! It answers exactly as the hickory path does (`dns::handler`), with two
//! deliberate differences, both RFC fixes: negative answers carry the SOA at
//! min(TTL, MINIMUM) (RFC 2308 §3) and a truncated answer keeps its OPT record
//! (RFC 6891 §7). Everything it is not sure of, it hands back as
//! [`Outcome::Fallback`] for `dns::udp` to pass to hickory.
//!
//! In a signed zone, a DO query's balanced answer, plain RRset or NODATA
//! gets the signatures prepared with the snapshot (`dnssec::Wire`), copied
//! after the records, and a missing name the compact proof the handler
//! cached; what is not prepared yet (a missing name's first proof, subsets
//! of large pools), DNSKEY, NSEC and RRSIG queries go to the handler.
//!
//! - `wire`: the non-allocating query parser.
//! - `response`: the response writer (header, question, records, OPT, TC).
//! - `zone::table` (not here): the static names' precompiled answer sections.
//! - `tally`: the batch's counter increments, applied once per batch.
//! - `sample`: a small served world for tests, the benchmark and the fuzz target.

mod cname;
mod response;
#[cfg(any(test, feature = "test-util"))]
#[doc(hidden)]
pub mod sample;
pub mod tally;
pub mod wire;

#[cfg(test)]
mod chain_tests;
#[cfg(test)]
mod tests;

use std::net::SocketAddr;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

use super::cookie::{self, CookieCounters, Verdict};
use super::health_txt;
use super::rrl::Rrl;
use crate::state::Snapshot;
use crate::steer::{self, Family, Inputs};
use crate::zone::table::{Found, Rrset, WireZone};
use response::{Response, Sections};
pub use tally::Tally;
use wire::{HEADER, Parsed, Query};

/// What to do with a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Send `out`.
    Reply,
    /// Send `out`: the query carried a valid server cookie, so its source
    /// address is proven and rate limiting does not apply (as in BIND).
    Verified,
    /// Send nothing.
    Drop,
    /// Let hickory decode and answer it.
    Fallback,
}

const TYPE_A: u16 = 1;
const TYPE_TXT: u16 = 16;
const TYPE_DNSKEY: u16 = 48;
const TYPE_RRSIG: u16 = 46;
const TYPE_NSEC: u16 = 47;
const TYPE_AAAA: u16 = 28;
const CLASS_IN: u16 = 1;
const CLASS_CH: u16 = 3;

/// NOTIMP to a request whose opcode is not QUERY: the header alone, its ID
/// and opcode, every other flag clear (what ISC's genreport `opcode` and
/// `opcodeflg` tests expect, as Knot and NSD answer).
fn not_implemented(packet: &[u8], out: &mut Vec<u8>) -> Outcome {
    let Some(h) = packet.get(..HEADER) else {
        return Outcome::Drop;
    };
    super::rejected::count(super::rejected::Reason::Opcode);
    out.extend_from_slice(&not_implemented_header(h));
    Outcome::Reply
}

/// The NOTIMP header answering the request header `h` (12 octets).
fn not_implemented_header(h: &[u8]) -> [u8; HEADER] {
    let mut out = [0u8; HEADER];
    out[..2].copy_from_slice(&h[..2]);
    out[2] = 0x80 | (h[2] & 0x78);
    out[3] = 4;
    out
}

/// What the fast path needs for DNS cookies (`dns::cookie`) besides the
/// snapshot: the clock, the counters, and the table `require_cookie_over`
/// charges.
pub struct Cookies<'s> {
    /// Unix seconds, read once per batch.
    pub now: u32,
    pub counters: &'s CookieCounters,
    /// The per-prefix table (`dns::rrl`) and its clock ([`Rrl::now`]);
    /// None: `require_cookie_over` is not enforced here.
    pub limit: Option<(&'s Rrl, u32)>,
}

impl<'s> Cookies<'s> {
    /// The current time, nothing enforced (tests, the benchmark, fuzzing).
    #[cfg(any(test, feature = "test-util"))]
    pub fn new(counters: &'s CookieCounters) -> Cookies<'s> {
        Cookies {
            now: crate::wallclock::unix_secs() as u32,
            counters,
            limit: None,
        }
    }
}

/// Answers one datagram from `src` into `out` (cleared first), counting it
/// in `tally` as the hickory path counts its queries. A query with a COOKIE
/// option gets one back (RFC 7873, `dns::cookie`); over
/// `require_cookie_over`, one without a valid server cookie gets BADCOOKIE
/// (with a client cookie) or an empty truncated answer (without).
pub fn answer<'s, R: rand::Rng + ?Sized>(
    packet: &[u8],
    src: SocketAddr,
    snap: &'s Snapshot,
    tally: &mut Tally<'s>,
    cookies: &Cookies<'s>,
    rng: &mut R,
    out: &mut Vec<u8>,
) -> Outcome {
    out.clear();
    let mut q = Query::EMPTY;
    match wire::parse(packet, &mut q) {
        Parsed::Query => {}
        Parsed::Drop => return Outcome::Drop,
        Parsed::Fallback => return Outcome::Fallback,
        Parsed::NotImp => return not_implemented(packet, out),
    }
    let server = &snap.config.server;
    let checked = q
        .edns
        .and_then(|e| e.cookie)
        .map(|c| cookie::check(&c, &server.cookie_secrets, src.ip(), cookies.now));
    let verdict = checked.map_or(Verdict::None, |c| c.verdict);
    let mut r = Response {
        q: &q,
        question: q.question(packet),
        cookie: checked.map(|c| c.reply),
        out,
    };
    if verdict != Verdict::Valid
        && let (Some(per_second), Some((rrl, t))) = (server.require_cookie_over, cookies.limit)
        && rrl.over_cookieless(per_second, &server.rrl.exempt, src.ip(), t)
    {
        tally.add(verdict.counter(cookies.counters));
        if r.cookie.is_some() {
            tally.add(&cookies.counters.badcookie);
            return r.bad_cookie();
        }
        tally.add(&cookies.counters.truncated);
        return r.truncated(ResponseCode::NoError, false, 0);
    }
    match query(&mut r, src, snap, tally, rng) {
        Outcome::Reply => {
            tally.add(verdict.counter(cookies.counters));
            if verdict == Verdict::Valid {
                Outcome::Verified
            } else {
                Outcome::Reply
            }
        }
        other => other,
    }
}

/// A parsed query (`r.q`), answered into `r`.
fn query<'s, R: rand::Rng + ?Sized>(
    r: &mut Response<'_, '_>,
    src: SocketAddr,
    snap: &'s Snapshot,
    tally: &mut Tally<'s>,
    rng: &mut R,
) -> Outcome {
    let q = r.q;
    // Classes other than IN and CH (HS, NONE, ANY): REFUSED, as Knot and
    // NSD answer them, never the IN records.
    if q.qclass != CLASS_IN && q.qclass != CLASS_CH {
        super::rejected::count(super::rejected::Reason::Class);
        tally.count_other(RecordType::from(q.qtype), ResponseCode::Refused);
        return r.send(ResponseCode::Refused, false, Sections::EMPTY, 0);
    }
    // Meta types (ANY, AXFR, IXFR, OPT, NXNAME, ...) and CHAOS (`id.server`,
    // `version.bind`: `dns::chaos`) are hickory's.
    if q.qclass != CLASS_IN
        || q.qtype == 0
        || q.qtype == wire::OPT
        || (128..=255).contains(&q.qtype)
    {
        return Outcome::Fallback;
    }
    // In signed zones, DO queries get the prepared signatures below; the
    // DNSKEY RRset and what was not prepared are the handler's.
    let do_bit = q.edns.is_some_and(|e| e.dnssec_ok) && snap.dnssec.any();
    if matches!(q.qtype, TYPE_DNSKEY | TYPE_RRSIG | TYPE_NSEC) && snap.dnssec.any() {
        return Outcome::Fallback;
    }
    let key = q.key();
    if q.qtype == TYPE_TXT
        && key.len() > health_txt::PREFIX.len()
        && key.starts_with(health_txt::PREFIX.as_bytes())
    {
        return Outcome::Fallback;
    }
    match snap.zones.wire.find(key) {
        Found::Outside => {
            tally.count_other(RecordType::from(q.qtype), ResponseCode::Refused);
            r.send(ResponseCode::Refused, false, Sections::EMPTY, 0)
        }
        Found::Missing(zone) => {
            if !zone.simple {
                return Outcome::Fallback;
            }
            // Signed: the compact proof (NODATA, NSEC with NXNAME) if the
            // handler made it already; it signs the first one. With CO
            // (RFC 9824 §4), rcode NXDOMAIN; else NOERROR.
            if do_bit && let Some(z) = snap.dnssec.zone(zone.index as usize) {
                if let Some(chain) = &z.chain {
                    return chained(r, zone, z, chain, tally);
                }
                let now = crate::wallclock::unix_secs() as u32;
                let rcode = if q.edns.is_some_and(|e| e.compact_ok) {
                    ResponseCode::NXDomain
                } else {
                    ResponseCode::NoError
                };
                let sent =
                    z.nxname_wire(key, now, |proof| r.signed_denial(rcode, zone, z, proof, 0));
                if sent.is_some() {
                    tally.count_other(RecordType::from(q.qtype), rcode);
                }
                return sent.unwrap_or(Outcome::Fallback);
            }
            tally.count_other(RecordType::from(q.qtype), ResponseCode::NXDomain);
            r.negative(ResponseCode::NXDomain, zone)
        }
        Found::Name(entry, zone) => {
            let signed = if do_bit {
                snap.dnssec.zone(entry.zone as usize)
            } else {
                None
            };
            // A and AAAA at a balanced name; every type at one that can
            // answer a CNAME.
            if let Some(i) = entry.balanced
                && let Some(b) = snap.steering.at(i)
                && (q.qtype == TYPE_A || q.qtype == TYPE_AAAA || b.cname)
            {
                debug_assert_eq!(
                    b.name().as_bytes(),
                    key,
                    "the wire table and the steering table disagree on balanced name {i}"
                );
                return balanced(r, snap, b, src, zone, signed, tally, rng);
            }
            if entry.fallback || !zone.simple {
                return Outcome::Fallback;
            }
            match entry.rrset(q.qtype) {
                Some(Rrset::Answer(f)) => {
                    // Signed: the RRset's prepared RRSIGs after it, when it
                    // is the whole answer.
                    let sigs = match signed {
                        None => None,
                        Some(z) if f.authorities == 0 && f.additionals == 0 => {
                            match z.wire.rrset(key, q.qtype) {
                                Some(w) => Some(w),
                                None => return Outcome::Fallback,
                            }
                        }
                        Some(_) => return Outcome::Fallback,
                    };
                    tally.count_other(RecordType::from(q.qtype), ResponseCode::NoError);
                    let s = Sections {
                        answers: f.answers + sigs.map_or(0, |w| w.count),
                        authorities: f.authorities,
                        additionals: f.additionals,
                        body: &f.body,
                        soa_at: None,
                    };
                    r.send_with(ResponseCode::NoError, s, sigs.map_or(&[], |w| &w.bytes[..]))
                }
                Some(Rrset::Fallback) => Outcome::Fallback,
                None if signed.is_some() => {
                    let Some(z) = signed else {
                        return Outcome::Fallback;
                    };
                    let Some(proof) = z.wire.nodata(key) else {
                        // An empty non-terminal in a chain: the link over it.
                        if let Some(chain) = &z.chain {
                            return chained(r, zone, z, chain, tally);
                        }
                        return Outcome::Fallback;
                    };
                    tally.count_other(RecordType::from(q.qtype), ResponseCode::NoError);
                    r.signed_nodata(zone, z, proof, 0)
                }
                None => {
                    tally.count_other(RecordType::from(q.qtype), ResponseCode::NoError);
                    r.negative(ResponseCode::NoError, zone)
                }
            }
        }
    }
}

/// A name with no answer in a zone with an NSEC chain (`dnssec::chain`):
/// NXDOMAIN or NODATA with the links that prove it, all prepared.
fn chained<'s>(
    r: &mut Response<'_, '_>,
    zone: &WireZone,
    signed: &crate::dnssec::SignedZone,
    chain: &crate::dnssec::chain::Chain,
    tally: &mut Tally<'s>,
) -> Outcome {
    let Some(denial) = chain.deny_key(r.q.key()) else {
        return Outcome::Fallback;
    };
    let (first, second) = denial.links();
    let links = [Some(first), second].map(|i| i.map_or((0, &[][..]), |i| chain.wire(i)));
    let rcode = denial.rcode();
    let sent = r.chain_denial(rcode, zone, signed, &links);
    if sent == Outcome::Reply {
        tally.count_other(RecordType::from(r.q.qtype), rcode);
    }
    sent
}

/// A/AAAA at a balanced name (any type where a pool answers CNAMEs):
/// `steer::answer` written as wire bytes (`DnsHandler::balanced` writes the
/// same answer as hickory records). A and AAAA follow a CNAME chain
/// through our balanced names; other types get the CNAME alone.
#[allow(clippy::too_many_arguments)]
fn balanced<'s, R: rand::Rng + ?Sized>(
    r: &mut Response<'_, '_>,
    snap: &'s Snapshot,
    b: &'s steer::BalancedName,
    src: SocketAddr,
    zone: &WireZone,
    signed: Option<&crate::dnssec::SignedZone>,
    tally: &mut Tally<'s>,
    rng: &mut R,
) -> Outcome {
    let asker = steer::Asker {
        src: src.ip(),
        ecs: r.q.edns.and_then(|e| e.ecs).map(|e| (e.ip(), e.source)),
    };
    let (family, qtype) = if r.q.qtype == TYPE_AAAA {
        (Family::V6, RecordType::AAAA)
    } else {
        (Family::V4, RecordType::A)
    };
    let inputs = Inputs {
        config: &snap.config,
        health: &snap.health,
    };
    let address_query = r.q.qtype == TYPE_A || r.q.qtype == TYPE_AAAA;
    let follow = address_query.then_some(&*snap.steering);
    // Filled in place (`answer_into`): the answer is not copied per query.
    let mut a = steer::Answer::empty();
    steer::answer_into(
        &mut a, b, asker, family, &snap.geo, &inputs, rng, None, follow,
    );
    let (decision, scope, rcode) = (&a.decision, a.scope, a.rcode());
    if decision.cname.is_some() && rcode != steer::Rcode::Servfail {
        // Signed: the handler copies the prepared RRSIGs of each RRset.
        if signed.is_some() {
            return Outcome::Fallback;
        }
        let sent = cname::write(r, &snap.config, &a);
        if sent != Outcome::Fallback {
            for c in a.counters(b, &snap.steering) {
                tally.add(c);
            }
            tally.count(
                &b.counters,
                RecordType::from(r.q.qtype),
                ResponseCode::NoError,
            );
        }
        return sent;
    }
    if !address_query {
        // A name that answers CNAMEs gave addresses: other types are the
        // zone's (the handler's).
        return Outcome::Fallback;
    }
    // Signed: the answer's prepared RRSIGs, found by its sorted addresses;
    // an answer not prepared is the handler's to sign.
    let sigs = match signed {
        None => None,
        Some(z) => {
            let mut sorted = [std::net::IpAddr::from([0u8; 4]); 16];
            let n = decision.endpoints.len();
            if n > sorted.len() {
                return Outcome::Fallback;
            }
            sorted[..n].copy_from_slice(&decision.endpoints[..n]);
            sorted[..n].sort_unstable();
            match z
                .wire
                .balanced(r.q.key(), u16::from(qtype), decision.ttl, &sorted[..n])
            {
                Some(w) => Some(w),
                None if n == 0 => None,
                None => return Outcome::Fallback,
            }
        }
    };
    for c in a.counters(b, &snap.steering) {
        tally.add(c);
    }
    if rcode == steer::Rcode::Servfail {
        tally.count(
            &b.counters,
            RecordType::from(r.q.qtype),
            ResponseCode::ServFail,
        );
        return r.send(ResponseCode::ServFail, true, Sections::EMPTY, scope);
    }
    tally.count(&b.counters, qtype, ResponseCode::NoError);
    if rcode == steer::Rcode::Nodata {
        return match signed {
            Some(z) => match z.wire.nodata_for(r.q.key(), u16::from(qtype)) {
                Some(proof) => r.signed_nodata(zone, z, proof, scope),
                None => Outcome::Fallback,
            },
            None => r.negative_scoped(ResponseCode::NoError, zone, scope),
        };
    }
    // Each record: pointer to the question name, type, class, TTL, RDLENGTH,
    // address; written straight into the reply once the size is known.
    let sig_bytes: &[u8] = sigs.map_or(&[], |w| &w.bytes);
    let body_len: usize = decision
        .endpoints
        .iter()
        .map(|ip| if ip.is_ipv4() { 16 } else { 28 })
        .sum::<usize>()
        + sig_bytes.len();
    let Ok(answers) =
        u16::try_from(decision.endpoints.len() + sigs.map_or(0, |w| usize::from(w.count)))
    else {
        return r.truncated(ResponseCode::NoError, true, scope);
    };
    if !r.fits(body_len) {
        return r.truncated(ResponseCode::NoError, true, scope);
    }
    let s = Sections {
        answers,
        authorities: 0,
        additionals: 0,
        body: &[],
        soa_at: None,
    };
    r.header(ResponseCode::NoError, true, false, &s);
    r.out.extend_from_slice(r.question);
    let fixed = {
        let mut f = [0u8; 10];
        f[..2].copy_from_slice(&[0xc0, HEADER as u8]);
        f[2..4].copy_from_slice(&u16::from(qtype).to_be_bytes());
        f[4..6].copy_from_slice(&CLASS_IN.to_be_bytes());
        f[6..10].copy_from_slice(&decision.ttl.to_be_bytes());
        f
    };
    for ip in &decision.endpoints {
        r.out.extend_from_slice(&fixed);
        match ip {
            std::net::IpAddr::V4(a) => {
                r.out.extend_from_slice(&4u16.to_be_bytes());
                r.out.extend_from_slice(&a.octets());
            }
            std::net::IpAddr::V6(a) => {
                r.out.extend_from_slice(&16u16.to_be_bytes());
                r.out.extend_from_slice(&a.octets());
            }
        }
    }
    r.out.extend_from_slice(sig_bytes);
    r.opt(scope);
    Outcome::Reply
}
