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
    let mut opts = p.get(start..end)?;
    let mut ecs = None;
    let mut cookie = None;
    while !opts.is_empty() {
        let h = opts.get(..4)?;
        let code = u16::from_be_bytes([h[0], h[1]]);
        let len = u16::from_be_bytes([h[2], h[3]]) as usize;
        let data = opts.get(4..4 + len)?;
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
        opts = &opts[4 + len..];
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
    let h = p.get(..HEADER)?;
    let count = |i: usize| usize::from(u16::from_be_bytes([h[4 + 2 * i], h[5 + 2 * i]]));
    let mut at = HEADER;
    for _ in 0..count(0) {
        at = skip_name(p, at)? + 4;
    }
    for _ in 0..count(1) + count(2) {
        at = skip_name(p, at)?;
        let rdlen = usize::from(u16::from_be_bytes([*p.get(at + 8)?, *p.get(at + 9)?]));
        at += 10 + rdlen;
    }
    for _ in 0..count(3) {
        at = skip_name(p, at)?;
        let rr = p.get(at..at + 10)?;
        let rtype = u16::from_be_bytes([rr[0], rr[1]]);
        let rdlen = usize::from(u16::from_be_bytes([rr[8], rr[9]]));
        let rdata = p.get(at + 10..at + 10 + rdlen)?;
        at += 10 + rdlen;
        if rtype != OPT {
            continue;
        }
        let mut opts = rdata;
        while opts.len() >= 4 {
            let code = u16::from_be_bytes([opts[0], opts[1]]);
            let len = usize::from(u16::from_be_bytes([opts[2], opts[3]]));
            let data = opts.get(4..4 + len)?;
            if code == ECS && read_ecs(data).is_none() {
                return Some(true);
            }
            opts = &opts[4 + len..];
        }
    }
    Some(false)
}

/// The data of the first option `code` in the message's first OPT record.
/// None without one, and for what cannot be read (the decoder judges that).
pub fn first_option(p: &[u8], code: u16) -> Option<&[u8]> {
    let h = p.get(..HEADER)?;
    let count = |i: usize| usize::from(u16::from_be_bytes([h[4 + 2 * i], h[5 + 2 * i]]));
    let mut at = HEADER;
    for _ in 0..count(0) {
        at = skip_name(p, at)? + 4;
    }
    for _ in 0..count(1) + count(2) + count(3) {
        at = skip_name(p, at)?;
        let rr = p.get(at..at + 10)?;
        let rtype = u16::from_be_bytes([rr[0], rr[1]]);
        let rdlen = usize::from(u16::from_be_bytes([rr[8], rr[9]]));
        let rdata = p.get(at + 10..at + 10 + rdlen)?;
        at += 10 + rdlen;
        if rtype != OPT {
            continue;
        }
        let mut opts = rdata;
        while opts.len() >= 4 {
            let c = u16::from_be_bytes([opts[0], opts[1]]);
            let len = usize::from(u16::from_be_bytes([opts[2], opts[3]]));
            let data = opts.get(4..4 + len)?;
            if c == code {
                return Some(data);
            }
            opts = &opts[4 + len..];
        }
        return None;
    }
    None
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
