//! wire: the query side of the fast path. Reads the header, the one question
//! and the OPT record (with ECS) straight from the datagram into a [`Query`]
//! on the stack, and answers `Fallback` for anything it does not fully
//! understand, so hickory's stricter decoder has the last word on it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::dns::cookie::{self, Received};

/// DNS header length.
pub const HEADER: usize = 12;
/// RFC 1035 §2.3.4: a name is at most 255 octets on the wire.
const MAX_NAME: usize = 255;
/// The OPT pseudo-RR type.
pub const OPT: u16 = 41;
/// The EDNS Client Subnet option code.
pub const ECS: u16 = 8;
/// The NSID option (RFC 5001). A query carrying it goes to hickory's path
/// (`dns::handler`), which adds `server.nsid`: the check costs queries
/// without NSID nothing, since it is one more arm of the option loop that
/// runs anyway for queries with options (ECS, COOKIE, padding) and is never
/// reached by queries whose OPT has none. NSID queries are diagnostics
/// (`dig +nsid`), rare enough that hickory's cost does not matter.
const NSID: u16 = 3;

/// What a datagram is, as far as the fast path is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsed {
    /// A query the fast path reads: the `Query` passed to [`parse`] holds it.
    Query,
    /// Not worth an answer: shorter than a header, or a response.
    Drop,
    /// A request with an opcode other than QUERY: NOTIMP (header only).
    NotImp,
    /// Valid or not, hickory's decoder and handler decide.
    Fallback,
}

/// An EDNS Client Subnet option, as sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ecs {
    pub family: u16,
    pub source: u8,
    /// The address octets as sent: exactly ceil(source / 8) of them.
    pub addr: [u8; 16],
}

impl Ecs {
    /// Octets on the wire.
    pub fn addr_len(&self) -> usize {
        (self.source as usize).div_ceil(8)
    }

    /// The address, unmasked (RFC 7871: bits past the prefix are ignored by
    /// the caller, not rejected).
    pub fn ip(&self) -> IpAddr {
        if self.family == 1 {
            let mut o = [0u8; 4];
            o.copy_from_slice(&self.addr[..4]);
            IpAddr::V4(Ipv4Addr::from(o))
        } else {
            IpAddr::V6(Ipv6Addr::from(self.addr))
        }
    }
}

/// The query's OPT record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Edns {
    /// The requestor's UDP payload size.
    pub payload: u16,
    pub ecs: Option<Ecs>,
    /// The DO bit (RFC 3225).
    pub dnssec_ok: bool,
    /// The Compact-OK bit (RFC 9824 §4): NXDOMAIN for a missing name.
    pub compact_ok: bool,
    /// The first COOKIE option (RFC 7873), well formed.
    pub cookie: Option<Received>,
}

/// One standard query with one question, parsed without allocating. About
/// 300 bytes: [`parse`] fills one in place rather than returning it.
pub struct Query {
    pub id: u16,
    pub rd: bool,
    pub cd: bool,
    /// Wire length of the question name (same for any spelling of its case).
    pub name_len: usize,
    pub qtype: u16,
    pub qclass: u16,
    pub edns: Option<Edns>,
    /// The name lower-cased in presentation form (`www.example.test.`),
    /// byte for byte what hickory's `LowerName` displays.
    key: [u8; MAX_NAME + 1],
    key_len: usize,
}

impl Query {
    pub const EMPTY: Query = Query {
        id: 0,
        rd: false,
        cd: false,
        name_len: 0,
        qtype: 0,
        qclass: 0,
        edns: None,
        key: [0; MAX_NAME + 1],
        key_len: 0,
    };

    /// The lower-case presentation name, ASCII. Label starts sit at the same
    /// offsets as the labels' length octets on the wire (`a.b.` ↔ `\1a\1b\0`).
    pub fn key(&self) -> &[u8] {
        &self.key[..self.key_len]
    }

    /// The question as it appears in the datagram: name, type, class.
    pub fn question<'p>(&self, packet: &'p [u8]) -> &'p [u8] {
        &packet[HEADER..HEADER + self.name_len + 4]
    }
}

/// Parses a datagram into `q` (any previous content is overwritten where
/// it matters). Never panics; never allocates.
pub fn parse(p: &[u8], q: &mut Query) -> Parsed {
    if p.len() < HEADER {
        return Parsed::Drop;
    }
    let flags = u16::from_be_bytes([p[2], p[3]]);
    if flags & 0x8000 != 0 {
        // A response sent to us: never answer it (reflection).
        return Parsed::Drop;
    }
    let opcode = (flags >> 11) & 0xf;
    if opcode != 0 {
        return Parsed::NotImp;
    }
    let count = |i: usize| u16::from_be_bytes([p[4 + 2 * i], p[5 + 2 * i]]);
    let (qd, an, ns, ar) = (count(0), count(1), count(2), count(3));
    if qd != 1 || an != 0 || ns != 0 || ar > 1 {
        return Parsed::Fallback;
    }
    q.id = u16::from_be_bytes([p[0], p[1]]);
    q.rd = flags & 0x0100 != 0;
    q.cd = flags & 0x0010 != 0;
    q.edns = None;
    q.key_len = 0;
    let Some(name_len) = read_name(p, &mut q.key, &mut q.key_len) else {
        return Parsed::Fallback;
    };
    q.name_len = name_len;
    let mut at = HEADER + name_len;
    let Some(tc) = p.get(at..at + 4) else {
        return Parsed::Fallback;
    };
    q.qtype = u16::from_be_bytes([tc[0], tc[1]]);
    q.qclass = u16::from_be_bytes([tc[2], tc[3]]);
    at += 4;
    if ar == 1 {
        match read_opt(p, at) {
            Some((edns, end)) => {
                q.edns = Some(edns);
                at = end;
            }
            None => return Parsed::Fallback,
        }
    }
    if at != p.len() {
        return Parsed::Fallback;
    }
    Parsed::Query
}

/// Each octet's lower-case form where a label may hold it (letters, digits,
/// `-` and `_`: what hickory displays unescaped), else 0.
const LABEL_OCTET: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let c = (i as u8).to_ascii_lowercase();
        if c.is_ascii_alphanumeric() || c == b'-' || c == b'_' {
            t[i] = c;
        }
        i += 1;
    }
    t
};

/// Reads the question name at the header's end into `key` (lower case,
/// dotted). Returns its wire length, or None for anything hickory would spell
/// differently: compression pointers, escapes, IDNA (`xn--`) labels.
fn read_name(p: &[u8], key: &mut [u8; MAX_NAME + 1], key_len: &mut usize) -> Option<usize> {
    let mut at = HEADER;
    loop {
        let len = *p.get(at)? as usize;
        if len == 0 {
            break;
        }
        if len & 0xc0 != 0 || at - HEADER + 1 + len >= MAX_NAME {
            return None;
        }
        let label = p.get(at + 1..at + 1 + len)?;
        if label.len() >= 4 && label[..4].eq_ignore_ascii_case(b"xn--") {
            return None;
        }
        if label[0] == b'-' {
            return None;
        }
        let out = key.get_mut(*key_len..*key_len + len + 1)?;
        for (&b, o) in label.iter().zip(out.iter_mut()) {
            let c = LABEL_OCTET[usize::from(b)];
            if c == 0 {
                return None;
            }
            *o = c;
        }
        out[len] = b'.';
        *key_len += len + 1;
        at += 1 + len;
    }
    if *key_len == 0 {
        // The root name.
        key[0] = b'.';
        *key_len = 1;
    }
    Some(at + 1 - HEADER)
}

/// Reads the OPT record at `at`. None for anything but a plain EDNS(0) OPT
/// at the root whose options are well formed.
fn read_opt(p: &[u8], at: usize) -> Option<(Edns, usize)> {
    let rr = p.get(at..at + 11)?;
    let rtype = u16::from_be_bytes([rr[1], rr[2]]);
    // Owner must be the root; extended rcode and version must be 0.
    if rr[0] != 0 || rtype != OPT || rr[5] != 0 || rr[6] != 0 {
        return None;
    }
    let payload = u16::from_be_bytes([rr[3], rr[4]]);
    let rdlen = u16::from_be_bytes([rr[9], rr[10]]) as usize;
    let start = at + 11;
    let end = start + rdlen;
    let rdata = p.get(start..end)?;
    let mut ecs = None;
    let mut cookie = None;
    for option in options(rdata) {
        let (code, data) = option.ok()?;
        match code {
            ECS => {
                if ecs.is_some() {
                    return None;
                }
                ecs = Some(read_ecs(data)?);
            }
            NSID => return None,
            // The first one counts; a malformed one is the handler's (FORMERR).
            cookie::OPTION if cookie.is_none() => cookie = Some(Received::parse(data).ok()?),
            // RFC 6891 §6.1.2: unknown options are ignored (padding, ...).
            _ => {}
        }
    }
    let dnssec_ok = rr[7] & 0x80 != 0;
    let compact_ok = rr[7] & 0x40 != 0;
    Some((
        Edns {
            payload,
            ecs,
            dnssec_ok,
            compact_ok,
            cookie,
        },
        end,
    ))
}

/// ECS in its canonical form only: a known family, a prefix that fits it,
/// exactly as many address octets as the prefix needs and no bit set past
/// it. Anything else is for the handler (FORMERR: [`ecs_malformed`]).
fn read_ecs(d: &[u8]) -> Option<Ecs> {
    let h = d.get(..4)?;
    let family = u16::from_be_bytes([h[0], h[1]]);
    let source = h[2];
    let max = match family {
        1 => 32,
        2 => 128,
        _ => return None,
    };
    if source > max {
        return None;
    }
    let mut e = Ecs {
        family,
        source,
        addr: [0; 16],
    };
    let addr = &d[4..];
    if addr.len() != e.addr_len() || !past_prefix_clear(addr, source) {
        return None;
    }
    e.addr[..addr.len()].copy_from_slice(addr);
    Some(e)
}

/// Whether the bits of `addr` past the first `source` are all zero.
fn past_prefix_clear(addr: &[u8], source: u8) -> bool {
    let rem = source % 8;
    match addr.last() {
        Some(last) if rem != 0 => last & (0xffu8 >> rem) == 0,
        _ => true,
    }
}

/// Whether a message carries an ECS option RFC 7871 §6 says to answer with
/// FORMERR: an unknown family, a source prefix longer than the family's
/// address, more or fewer address octets than the prefix needs, or bits
/// set past it. Walks the message's sections; false for what it cannot
/// read (the decoder judges that).
pub fn ecs_malformed(p: &[u8]) -> bool {
    ecs_check(p).unwrap_or(false)
}

fn ecs_check(p: &[u8]) -> Option<bool> {
    for record in records(p) {
        let (section, rtype, rdata) = record.ok()?;
        if section != ADDITIONAL || rtype != OPT {
            continue;
        }
        for option in options(rdata) {
            let (code, data) = option.ok()?;
            if code == ECS && read_ecs(data).is_none() {
                return Some(true);
            }
        }
    }
    Some(false)
}

/// The data of the first option `code` in the message's first OPT record.
/// None without one, and for what cannot be read (the decoder judges that).
pub fn first_option(p: &[u8], code: u16) -> Option<&[u8]> {
    for record in records(p) {
        let (_, rtype, rdata) = record.ok()?;
        if rtype != OPT {
            continue;
        }
        for option in options(rdata) {
            let (c, data) = option.ok()?;
            if c == code {
                return Some(data);
            }
        }
        return None;
    }
    None
}

/// Something that runs past the end of what holds it: an option past its
/// OPT record's RDATA, or a record past the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Truncated;

/// Walks the options of an OPT record's RDATA (RFC 6891 §6.1.2): each as
/// `Ok((code, data))` in order; if the RDATA does not end where an option
/// ends (a length past the end, or one to three octets left over), one
/// `Err(Truncated)`, and nothing after it. The crate's one option walk:
/// [`parse`] (through `read_opt`), [`ecs_malformed`] and [`first_option`]
/// (so `dns::cookie::in_message`) use it.
pub fn options(rdata: &[u8]) -> Options<'_> {
    Options { rest: rdata }
}

/// The iterator of [`options`].
#[derive(Debug, Clone)]
pub struct Options<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Options<'a> {
    type Item = Result<(u16, &'a [u8]), Truncated>;

    fn next(&mut self) -> Option<Self::Item> {
        let rest = std::mem::take(&mut self.rest);
        if rest.is_empty() {
            return None;
        }
        let Some(h) = rest.get(..4) else {
            return Some(Err(Truncated));
        };
        let code = u16::from_be_bytes([h[0], h[1]]);
        let len = usize::from(u16::from_be_bytes([h[2], h[3]]));
        let Some(data) = rest.get(4..4 + len) else {
            return Some(Err(Truncated));
        };
        self.rest = &rest[4 + len..];
        Some(Ok((code, data)))
    }
}

/// The additional section's number in [`records`]' items.
const ADDITIONAL: usize = 3;

/// Walks the records after the question section of message `p`: each as
/// `Ok((section, rtype, rdata))`, `section` 1 (answer), 2 (authority) or
/// [`ADDITIONAL`], in order; if the message ends inside a record (or its
/// question), one `Err(Truncated)` and nothing after it. Owner names are
/// skipped, not read.
fn records(p: &[u8]) -> Records<'_> {
    let count = |i: usize| {
        p.get(4 + 2 * i..6 + 2 * i)
            .map_or(0, |c| usize::from(u16::from_be_bytes([c[0], c[1]])))
    };
    let mut at = (p.len() >= HEADER).then_some(HEADER);
    for _ in 0..count(0) {
        at = at.and_then(|a| skip_name(p, a)).map(|a| a + 4);
    }
    Records {
        p,
        at,
        left: [count(1), count(2), count(3)],
    }
}

/// The iterator of [`records`].
struct Records<'a> {
    p: &'a [u8],
    /// The next record's offset; None once the message was found short.
    at: Option<usize>,
    /// Records left in the answer, authority and additional sections.
    left: [usize; 3],
}

impl<'a> Iterator for Records<'a> {
    type Item = Result<(usize, u16, &'a [u8]), Truncated>;

    fn next(&mut self) -> Option<Self::Item> {
        let i = self.left.iter().position(|&n| n > 0)?;
        let record = self.at.and_then(|at| {
            let at = skip_name(self.p, at)?;
            let rr = self.p.get(at..at + 10)?;
            let rtype = u16::from_be_bytes([rr[0], rr[1]]);
            let rdlen = usize::from(u16::from_be_bytes([rr[8], rr[9]]));
            let rdata = self.p.get(at + 10..at + 10 + rdlen)?;
            Some((at + 10 + rdlen, rtype, rdata))
        });
        let Some((next, rtype, rdata)) = record else {
            self.left = [0; 3];
            return Some(Err(Truncated));
        };
        self.at = Some(next);
        self.left[i] -= 1;
        Some(Ok((i + 1, rtype, rdata)))
    }
}

/// The offset after the name at `at` (labels, or a compression pointer).
fn skip_name(p: &[u8], mut at: usize) -> Option<usize> {
    loop {
        let len = *p.get(at)?;
        match len {
            0 => return Some(at + 1),
            l if l & 0xc0 == 0xc0 => return Some(at + 2),
            l if l & 0xc0 != 0 => return None,
            l => at += 1 + usize::from(l),
        }
    }
}

#[cfg(test)]
mod tests {
    //! The option and record walks on hand-made bytes: well formed,
    //! truncated and overlong options, and what each walker makes of them.

    use super::*;

    /// A query for `a.test. A` whose additional section is one OPT record
    /// with `rdata`.
    fn query_with_opt(rdata: &[u8]) -> Vec<u8> {
        let mut p = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1];
        p.extend_from_slice(&[1, b'a', 4, b't', b'e', b's', b't', 0, 0, 1, 0, 1]);
        p.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0]);
        p.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        p.extend_from_slice(rdata);
        p
    }

    fn parsed(p: &[u8]) -> Parsed {
        let mut q = Query::EMPTY;
        parse(p, &mut q)
    }

    const ECS_OK: [u8; 11] = [0, 8, 0, 7, 0, 1, 24, 0, 5, 9, 1];
    /// A bit set past the /20 source prefix: FORMERR (RFC 7871 §6).
    const ECS_BAD: [u8; 11] = [0, 8, 0, 7, 0, 1, 20, 0, 5, 9, 15];
    const COOKIE: [u8; 12] = [0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8];
    /// An option whose length runs past the end of the RDATA.
    const OVERLONG: [u8; 6] = [0, 12, 0, 9, 0, 0];

    #[test]
    fn options_are_yielded_in_order_with_their_data() {
        let rdata = [&ECS_OK[..], &[0, 12, 0, 0], &COOKIE].concat();
        let got: Vec<_> = options(&rdata).collect();
        assert_eq!(
            got,
            vec![
                Ok((ECS, &ECS_OK[4..])),
                Ok((12, &[][..])),
                Ok((cookie::OPTION, &COOKIE[4..])),
            ]
        );
        assert_eq!(options(&[]).count(), 0);
    }

    #[test]
    fn a_truncated_or_overlong_option_is_one_error_then_the_end() {
        // One to three octets left over: too short for an option header.
        for left in 1..4 {
            let rdata = [&COOKIE[..], &[0xaa; 3][..left]].concat();
            let got: Vec<_> = options(&rdata).collect();
            assert_eq!(
                got,
                vec![Ok((cookie::OPTION, &COOKIE[4..])), Err(Truncated)],
                "{left} octets left"
            );
        }
        // A length past the end, with octets after it that are not read.
        let rdata = [&[0, 3, 0, 0][..], &[0, 12, 0xff, 0xff], &COOKIE].concat();
        let mut it = options(&rdata);
        assert_eq!(it.next(), Some(Ok((3, &[][..]))));
        assert_eq!(it.next(), Some(Err(Truncated)));
        assert_eq!(it.next(), None);
        assert_eq!(options(&OVERLONG).collect::<Vec<_>>(), vec![Err(Truncated)]);
    }

    #[test]
    fn every_walker_reads_well_formed_options() {
        let p = query_with_opt(&[&ECS_OK[..], &COOKIE].concat());
        assert_eq!(parsed(&p), Parsed::Query);
        assert!(!ecs_malformed(&p));
        assert_eq!(first_option(&p, cookie::OPTION), Some(&COOKIE[4..]));
        assert_eq!(first_option(&p, ECS), Some(&ECS_OK[4..]));
        assert_eq!(first_option(&p, 3), None);
        let p = query_with_opt(&ECS_BAD);
        assert_eq!(parsed(&p), Parsed::Fallback, "the handler's FORMERR");
        assert!(ecs_malformed(&p));
    }

    #[test]
    fn every_walker_stops_at_a_truncated_or_overlong_option() {
        for tail in [&OVERLONG[..], &[0, 8][..], &[0, 8, 0][..]] {
            // After a well-formed option: the fast path leaves the query to
            // the decoder, which judges it; the ECS check has nothing to say.
            let p = query_with_opt(&[&COOKIE[..], tail].concat());
            assert_eq!(parsed(&p), Parsed::Fallback, "{tail:?}");
            assert!(!ecs_malformed(&p), "{tail:?}");
            // What came before the damage is found, nothing after it.
            assert_eq!(first_option(&p, cookie::OPTION), Some(&COOKIE[4..]));
            let p = query_with_opt(&[tail, &COOKIE[..]].concat());
            assert_eq!(first_option(&p, cookie::OPTION), None, "{tail:?}");
        }
        // A malformed ECS before the damage is still reported.
        let p = query_with_opt(&[&ECS_BAD[..], &OVERLONG].concat());
        assert!(ecs_malformed(&p));
    }

    #[test]
    fn records_walk_the_sections_and_stop_at_a_short_message() {
        let p = query_with_opt(&COOKIE);
        let got: Vec<_> = records(&p).collect();
        assert_eq!(got, vec![Ok((ADDITIONAL, OPT, &COOKIE[..]))]);
        // Cut anywhere inside the OPT record: one error, no record.
        let question_end = HEADER + 12;
        for cut in question_end..p.len() {
            let got: Vec<_> = records(&p[..cut]).collect();
            assert_eq!(got, vec![Err(Truncated)], "cut at {cut}");
            assert!(!ecs_malformed(&p[..cut]));
            assert_eq!(first_option(&p[..cut], cookie::OPTION), None);
        }
        assert_eq!(records(&p[..5]).count(), 0, "no counts: no records");
    }
}
