//! The response writer of the fast path: [`Response`] writes the header, the
//! question, the records of [`Sections`] and our OPT record (ECS echoed at its
//! scope, COOKIE) into the reused buffer, and answers TC when they do not fit.

use hickory_proto::op::ResponseCode;

use super::Outcome;
use super::wire::{self, Edns, HEADER, Query};
use crate::dns::answer::MAX_UDP_PAYLOAD;
use crate::dns::cookie;
use crate::zone::table::WireZone;

/// The records after the question.
pub(super) struct Sections<'b> {
    pub(super) answers: u16,
    pub(super) authorities: u16,
    pub(super) additionals: u16,
    pub(super) body: &'b [u8],
    /// For negative answers: the SOA owner's offset, written as a pointer
    /// before `body` (the SOA record without its owner).
    pub(super) soa_at: Option<u16>,
}

impl Sections<'_> {
    pub(super) const EMPTY: Sections<'static> = Sections {
        answers: 0,
        authorities: 0,
        additionals: 0,
        body: &[],
        soa_at: None,
    };

    pub(super) fn len(&self) -> usize {
        self.body.len() + if self.soa_at.is_some() { 2 } else { 0 }
    }
}

/// A response being written.
pub(super) struct Response<'q, 'o> {
    pub(super) q: &'q Query,
    pub(super) question: &'q [u8],
    /// The COOKIE option's data to send (`dns::cookie::check`).
    pub(super) cookie: Option<[u8; cookie::REPLY_LEN]>,
    pub(super) out: &'o mut Vec<u8>,
}

impl Response<'_, '_> {
    /// NXDOMAIN or NODATA: the zone's SOA in the authority section.
    pub(super) fn negative(&mut self, rcode: ResponseCode, zone: &WireZone) -> Outcome {
        self.negative_scoped(rcode, zone, 0)
    }

    pub(super) fn negative_scoped(
        &mut self,
        rcode: ResponseCode,
        zone: &WireZone,
        scope: u8,
    ) -> Outcome {
        // The origin is a suffix of the question name: point at it.
        let Some(at) = self.q.name_len.checked_sub(zone.origin_len) else {
            return Outcome::Fallback;
        };
        if zone.soa_tail.is_empty() {
            return Outcome::Fallback;
        }
        let s = Sections {
            answers: 0,
            authorities: 1,
            additionals: 0,
            body: &zone.soa_tail,
            soa_at: Some((HEADER + at) as u16),
        };
        self.send(rcode, true, s, scope)
    }

    /// The UDP size limit, which is also the payload size we advertise:
    /// the requestor's, between 512 and 1232 (`answer::response_edns`).
    pub(super) fn limit(&self) -> usize {
        match self.q.edns {
            Some(e) => e.payload.clamp(512, MAX_UDP_PAYLOAD) as usize,
            None => 512,
        }
    }

    pub(super) fn opt_len(&self) -> usize {
        let cookie = if self.cookie.is_some() {
            cookie::OPTION_WIRE_LEN
        } else {
            0
        };
        match self.q.edns {
            Some(Edns { ecs: Some(e), .. }) => 11 + 8 + e.addr_len() + cookie,
            Some(_) => 11 + cookie,
            None => 0,
        }
    }

    /// Whether a response with `body_len` bytes of records after the
    /// question (and our OPT) fits the size limit.
    pub(super) fn fits(&self, body_len: usize) -> bool {
        HEADER + self.question.len() + body_len + self.opt_len() <= self.limit()
    }

    pub(super) fn send(
        &mut self,
        rcode: ResponseCode,
        aa: bool,
        s: Sections<'_>,
        scope: u8,
    ) -> Outcome {
        if !self.fits(s.len()) {
            return self.truncated(rcode, aa, scope);
        }
        self.header(rcode, aa, false, &s);
        self.out.extend_from_slice(self.question);
        if let Some(at) = s.soa_at {
            self.out.extend_from_slice(&(0xc000 | at).to_be_bytes());
        }
        self.out.extend_from_slice(s.body);
        self.opt(scope);
        Outcome::Reply
    }

    /// NODATA in a signed zone to a DO query: the SOA and its RRSIGs (owner
    /// the zone's apex, a suffix of the question name) and `proof`, the
    /// name's NSEC and its RRSIGs (owner the question name), all prepared.
    pub(super) fn signed_nodata(
        &mut self,
        zone: &WireZone,
        signed: &crate::dnssec::SignedZone,
        proof: &[Vec<u8>],
        scope: u8,
    ) -> Outcome {
        self.signed_denial(ResponseCode::NoError, zone, signed, proof, scope)
    }

    /// [`Response::signed_nodata`] with `rcode` (NXDOMAIN: a compact
    /// answer to a query with CO).
    pub(super) fn signed_denial(
        &mut self,
        rcode: ResponseCode,
        zone: &WireZone,
        signed: &crate::dnssec::SignedZone,
        proof: &[Vec<u8>],
        scope: u8,
    ) -> Outcome {
        let body = proof.iter().map(|t| 2 + t.len()).sum();
        self.negative_with(rcode, zone, signed, (proof.len(), body), scope, |out| {
            for t in proof {
                out.extend_from_slice(&[0xc0, HEADER as u8]);
                out.extend_from_slice(t);
            }
        })
    }

    /// A denial from an NSEC chain: the SOA and its RRSIGs (owner the
    /// zone's apex, a suffix of the question name), then `links` (record
    /// count, records after their full owner names).
    pub(super) fn chain_denial(
        &mut self,
        rcode: ResponseCode,
        zone: &WireZone,
        signed: &crate::dnssec::SignedZone,
        links: &[(u16, &[u8])],
    ) -> Outcome {
        let count = links.iter().map(|l| usize::from(l.0)).sum();
        let body = links.iter().map(|l| l.1.len()).sum();
        self.negative_with(rcode, zone, signed, (count, body), 0, |out| {
            for l in links {
                out.extend_from_slice(l.1);
            }
        })
    }

    /// A signed negative answer: the zone's prepared SOA and its RRSIGs
    /// (owner the apex, a pointer into the question name), then `tail`
    /// (`count` records of `body` bytes) written by `write`.
    pub(super) fn negative_with(
        &mut self,
        rcode: ResponseCode,
        zone: &WireZone,
        signed: &crate::dnssec::SignedZone,
        (count, body): (usize, usize),
        scope: u8,
        write: impl FnOnce(&mut Vec<u8>),
    ) -> Outcome {
        let negative = &signed.wire.negative;
        let Some(at) = self.q.name_len.checked_sub(zone.origin_len) else {
            return Outcome::Fallback;
        };
        let Ok(count) = u16::try_from(negative.len() + count) else {
            return Outcome::Fallback;
        };
        if negative.is_empty() {
            return Outcome::Fallback;
        }
        let body = negative.iter().map(|t| 2 + t.len()).sum::<usize>() + body;
        if !self.fits(body) {
            return self.truncated(rcode, true, scope);
        }
        let s = Sections {
            answers: 0,
            authorities: count,
            additionals: 0,
            body: &[],
            soa_at: None,
        };
        self.header(rcode, true, false, &s);
        self.out.extend_from_slice(self.question);
        let apex = (0xc000 | (HEADER + at) as u16).to_be_bytes();
        for t in negative {
            self.out.extend_from_slice(&apex);
            self.out.extend_from_slice(t);
        }
        write(self.out);
        self.opt(scope);
        Outcome::Reply
    }

    /// A positive answer: `s.body` (its answer records first) with `sigs`
    /// (RRSIG records of the answer section) after it. Only for a body
    /// with no authority or additional records.
    pub(super) fn send_with(
        &mut self,
        rcode: ResponseCode,
        s: Sections<'_>,
        sigs: &[u8],
    ) -> Outcome {
        if !self.fits(s.len() + sigs.len()) {
            return self.truncated(rcode, true, 0);
        }
        self.header(rcode, true, false, &s);
        self.out.extend_from_slice(self.question);
        self.out.extend_from_slice(s.body);
        self.out.extend_from_slice(sigs);
        self.opt(0);
        Outcome::Reply
    }

    /// BADCOOKIE (RFC 7873 §5.2.3): header, question and OPT with the
    /// extended rcode and a fresh cookie, no records, AA clear (as BIND).
    pub(super) fn bad_cookie(&mut self) -> Outcome {
        let rcode = ResponseCode::BADCOOKIE;
        self.header(rcode, false, false, &Sections::EMPTY);
        self.out.extend_from_slice(self.question);
        self.opt_with(0, rcode.high());
        Outcome::Reply
    }

    /// RFC 6891 §7: header, question and OPT, TC set, no records.
    pub(super) fn truncated(&mut self, rcode: ResponseCode, aa: bool, scope: u8) -> Outcome {
        self.out.clear();
        self.header(rcode, aa, true, &Sections::EMPTY);
        self.out.extend_from_slice(self.question);
        self.opt(scope);
        Outcome::Reply
    }

    #[inline(always)]
    pub(super) fn header(&mut self, rcode: ResponseCode, aa: bool, tc: bool, s: &Sections<'_>) {
        let q = self.q;
        let mut flags: u16 = 0x8000 | (u16::from(rcode.low()) & 0xf);
        if aa {
            flags |= 0x0400;
        }
        if tc {
            flags |= 0x0200;
        }
        if q.rd {
            flags |= 0x0100;
        }
        if q.cd {
            flags |= 0x0010;
        }
        let opt = u16::from(q.edns.is_some());
        let mut h = [0u8; HEADER];
        h[0..2].copy_from_slice(&q.id.to_be_bytes());
        h[2..4].copy_from_slice(&flags.to_be_bytes());
        h[4..6].copy_from_slice(&1u16.to_be_bytes());
        h[6..8].copy_from_slice(&s.answers.to_be_bytes());
        h[8..10].copy_from_slice(&s.authorities.to_be_bytes());
        h[10..12].copy_from_slice(&(s.additionals + opt).to_be_bytes());
        self.out.extend_from_slice(&h);
    }

    /// Our OPT record, with the query's ECS option echoed at `scope` and
    /// our COOKIE option if any.
    pub(super) fn opt(&mut self, scope: u8) {
        self.opt_with(scope, 0);
    }

    /// [`Response::opt`] with the upper 8 bits of an extended rcode.
    pub(super) fn opt_with(&mut self, scope: u8, rcode_high: u8) {
        let Some(edns) = self.q.edns else {
            return;
        };
        // Root owner, type, payload size, extended rcode/version/flags 0,
        // RDLENGTH, then the echoed ECS option if any.
        let mut o = [0u8; 11 + 8 + 16];
        o[1..3].copy_from_slice(&wire::OPT.to_be_bytes());
        o[3..5].copy_from_slice(&(self.limit() as u16).to_be_bytes());
        o[5] = rcode_high;
        // RFC 3225 §3: the DO bit of the query is copied in the response.
        if edns.dnssec_ok {
            o[7] = 0x80;
            // RFC 9824 §4: CO is echoed to a DO query that set it.
            if edns.compact_ok {
                o[7] |= 0x40;
            }
        }
        let cookie_len = if self.cookie.is_some() {
            cookie::OPTION_WIRE_LEN
        } else {
            0
        };
        let len = match edns.ecs {
            Some(e) => {
                let n = e.addr_len();
                o[11..13].copy_from_slice(&wire::ECS.to_be_bytes());
                o[13..15].copy_from_slice(&((4 + n) as u16).to_be_bytes());
                o[15..17].copy_from_slice(&e.family.to_be_bytes());
                o[17] = e.source;
                o[18] = scope;
                o[19..19 + n].copy_from_slice(&e.addr[..n]);
                19 + n
            }
            None => 11,
        };
        o[9..11].copy_from_slice(&((len - 11 + cookie_len) as u16).to_be_bytes());
        self.out.extend_from_slice(&o[..len]);
        if let Some(c) = &self.cookie {
            self.out.extend_from_slice(&cookie::OPTION.to_be_bytes());
            self.out
                .extend_from_slice(&(cookie::REPLY_LEN as u16).to_be_bytes());
            self.out.extend_from_slice(c);
        }
    }
}
