//! rrl: response rate limiting, so that geosteer is no amplifier for spoofed
//! floods (the scheme of BIND's and Knot's RRL).
//!
//! Every UDP response is charged to an account: the client's prefix (IPv4
//! /24, IPv6 /56) and what the answer is — a positive answer (or NODATA) per
//! query name, NXDOMAIN per zone, errors (REFUSED, FORMERR, SERVFAIL, ...)
//! per prefix alone. An account earns `responses_per_second` a second and
//! may go `window` seconds' worth into debt, so a flood must stop for a while
//! before answers resume. A response over the limit is dropped, except every
//! `slip`-th, which goes out as an empty answer with TC set: a real client
//! behind a spoofed flood retries over TCP, which is never limited.
//!
//! The table is a fixed array of atomic slots (`table_size`, rounded up to a
//! power of two): accounts are found by hash, a colliding account takes the
//! slot over, and nothing is ever allocated, so a flood of distinct sources
//! costs no memory and no lock. Charging a response is one hash of the name
//! and one compare-and-swap.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use crate::config::RrlConfig;
use crate::metrics::RrlCounters;

/// What to do with a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Send,
    Drop,
    /// Send an empty answer with TC set instead.
    Slip,
}

/// What a response is charged as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// NOERROR (answers, NODATA, referrals): per query name.
    Positive,
    /// NXDOMAIN: per zone.
    NxDomain,
    /// Every other rcode: per client prefix.
    Error,
    /// Not a response: a UDP query without a valid server cookie, charged
    /// per client prefix for `server.require_cookie_over`.
    NoCookie,
}

/// The shared table. One per server, kept across reloads (`table_size`
/// takes effect on restart).
pub struct Rrl {
    slots: Box<[AtomicU64]>,
    mask: usize,
    epoch: Instant,
    counters: Arc<RrlCounters>,
}

impl Rrl {
    pub fn new(table_size: usize, counters: Arc<RrlCounters>) -> Rrl {
        let size = table_size.clamp(1, 1 << 24).next_power_of_two();
        Rrl {
            slots: (0..size).map(|_| AtomicU64::new(0)).collect(),
            mask: size - 1,
            epoch: Instant::now(),
            counters,
        }
    }

    /// Whether `client`'s responses are charged at all (on, not exempt).
    pub fn applies(config: &RrlConfig, client: IpAddr) -> bool {
        config.enabled && !config.exempt.iter().any(|n| n.contains(&client))
    }

    /// Charges the response in `out` (to `client`) and says whether it goes
    /// out; a slip is rewritten in place into the empty truncated answer.
    pub fn admit(
        &self,
        config: &RrlConfig,
        zones: &[crate::config::ZoneConfig],
        client: IpAddr,
        out: &mut Vec<u8>,
        now: u32,
    ) -> bool {
        if !Rrl::applies(config, client) {
            return true;
        }
        let mut buf = [0u8; 256];
        let Some((kind, name)) = classify(out, zones, &mut buf) else {
            return true;
        };
        match self.check(config, client, kind, name, now) {
            Verdict::Send => true,
            Verdict::Drop => false,
            Verdict::Slip => {
                truncate_to_slip(out);
                true
            }
        }
    }

    /// Seconds since the table was made, for [`check`](Self::check) (read
    /// once per batch of datagrams).
    pub fn now(&self) -> u32 {
        self.epoch.elapsed().as_secs() as u32
    }

    /// Charges one response of `kind` about `name` (the lower-case query
    /// name, or the zone for NXDOMAIN) to `client`'s account. The caller
    /// checked [`applies`](Self::applies).
    pub fn check(
        &self,
        config: &RrlConfig,
        client: IpAddr,
        kind: Kind,
        name: &[u8],
        now: u32,
    ) -> Verdict {
        let verdict = self.charge(
            (config.responses_per_second, config.window_secs, config.slip),
            client,
            kind,
            name,
            now,
        );
        match verdict {
            Verdict::Drop => self.counters.dropped.fetch_add(1, Ordering::Relaxed),
            Verdict::Slip => self.counters.slipped.fetch_add(1, Ordering::Relaxed),
            Verdict::Send => 0,
        };
        verdict
    }

    /// `server.require_cookie_over`: charges a UDP query without a valid
    /// server cookie from `client` (not in `exempt`) and says whether it is
    /// over `per_second` for its prefix (a second's worth of debt at most,
    /// so answers resume a second or two after a flood stops).
    pub fn over_cookieless(
        &self,
        per_second: u32,
        exempt: &[ipnet::IpNet],
        client: IpAddr,
        now: u32,
    ) -> bool {
        if exempt.iter().any(|n| n.contains(&client)) {
            return false;
        }
        self.charge((per_second, 1, 0), client, Kind::NoCookie, &[], now) != Verdict::Send
    }

    /// Charges one to the account of (`client`'s prefix, `kind`, `name`)
    /// earning `rate` a second, `window` seconds of debt at most, every
    /// `slip`-th over the limit slipped.
    fn charge(
        &self,
        (rate, window, slip): (u32, u32, u32),
        client: IpAddr,
        kind: Kind,
        name: &[u8],
        now: u32,
    ) -> Verdict {
        let hash = account_hash(client, kind, name);
        let slot = &self.slots[(hash as usize) & self.mask];
        let tag = (hash >> 48) as u16;
        let rate = i64::from(rate.min(MAX_BALANCE as u32));
        let floor = -(rate * i64::from(window)).min(MAX_BALANCE);
        let now16 = now as u16;
        let mut current = slot.load(Ordering::Relaxed);
        for _ in 0..4 {
            let s = Slot::unpack(current);
            let mut balance = if s.tag == tag && s.used {
                let elapsed = i64::from(now16.wrapping_sub(s.second));
                (s.balance + rate * elapsed).min(rate)
            } else {
                rate
            };
            let mut slips = if s.tag == tag && s.used { s.slips } else { 0 };
            balance -= 1;
            let verdict = if balance >= 0 {
                Verdict::Send
            } else {
                balance = balance.max(floor);
                slips = slips.wrapping_add(1);
                if slip > 0 && u32::from(slips) % slip == 0 {
                    Verdict::Slip
                } else {
                    Verdict::Drop
                }
            };
            let next = Slot {
                used: true,
                tag,
                second: now16,
                balance,
                slips,
            }
            .pack();
            match slot.compare_exchange_weak(current, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return verdict,
                Err(seen) => current = seen,
            }
        }
        // Four workers raced for one slot: let this one through.
        Verdict::Send
    }
}

/// The largest balance a slot holds (23 bits signed).
const MAX_BALANCE: i64 = (1 << 22) - 1;

/// One account: used:1 | tag:16 | second:16 | balance:23 (signed) | slips:8.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Slot {
    used: bool,
    tag: u16,
    second: u16,
    balance: i64,
    slips: u8,
}

impl Slot {
    fn pack(self) -> u64 {
        let balance = (self.balance.clamp(-MAX_BALANCE, MAX_BALANCE) as u64) & ((1 << 23) - 1);
        (u64::from(self.used) << 63)
            | (u64::from(self.tag) << 47)
            | (u64::from(self.second) << 31)
            | (balance << 8)
            | u64::from(self.slips)
    }

    fn unpack(v: u64) -> Slot {
        let raw = ((v >> 8) & ((1 << 23) - 1)) as i64;
        // Sign-extend the 23-bit balance.
        let balance = (raw << 41) >> 41;
        Slot {
            used: v >> 63 == 1,
            tag: (v >> 47) as u16,
            second: (v >> 31) as u16,
            balance,
            slips: v as u8,
        }
    }
}

/// FNV-1a over (prefix, kind, name): fixed keys, so the same account hashes
/// alike in every worker.
fn account_hash(client: IpAddr, kind: Kind, name: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |b: u8| {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    };
    match client {
        IpAddr::V4(a) => {
            eat(4);
            a.octets()[..3].iter().for_each(|b| eat(*b));
        }
        IpAddr::V6(a) => {
            eat(6);
            a.octets()[..7].iter().for_each(|b| eat(*b));
        }
    }
    eat(kind as u8);
    if matches!(kind, Kind::Positive | Kind::NxDomain) {
        name.iter().for_each(|b| eat(b.to_ascii_lowercase()));
    }
    // Mix the high bits (the tag) with the low ones (the index).
    h ^ (h >> 29)
}

/// What a response on the wire is charged as: its kind, and the name its
/// account is kept by (`buf` holds it). None: not a response to a query we
/// can read (it goes out uncharged).
pub fn classify<'b>(
    response: &[u8],
    zones: &[crate::config::ZoneConfig],
    buf: &'b mut [u8; 256],
) -> Option<(Kind, &'b [u8])> {
    if response.len() < 12 || u16::from_be_bytes([response[4], response[5]]) != 1 {
        return None;
    }
    let kind = match response[3] & 0x0f {
        0 => Kind::Positive,
        3 => Kind::NxDomain,
        _ => return Some((Kind::Error, &buf[..0])),
    };
    let len = dotted_name(&response[12..], buf)?;
    if kind == Kind::Positive {
        return Some((kind, &buf[..len]));
    }
    // NXDOMAIN: the longest served zone the name is in.
    match zone_of(&buf[..len], zones) {
        Some(origin) => {
            let n = origin.len().min(buf.len());
            buf[..n].copy_from_slice(&origin[..n]);
            Some((kind, &buf[..n]))
        }
        None => Some((kind, &buf[..len])),
    }
}

/// The longest served zone `name` (lower-case dotted) is in: the account
/// NXDOMAIN answers are charged to.
pub(crate) fn zone_of<'z>(name: &[u8], zones: &'z [crate::config::ZoneConfig]) -> Option<&'z [u8]> {
    zones
        .iter()
        .map(|z| z.origin.as_bytes())
        .filter(|o| in_zone(name, o))
        .max_by_key(|o| o.len())
}

/// Whether dotted `name` is `origin` or below it (both lower case, with the
/// trailing dot).
fn in_zone(name: &[u8], origin: &[u8]) -> bool {
    origin == b"."
        || name == origin
        || (name.len() > origin.len()
            && name.ends_with(origin)
            && name[name.len() - origin.len() - 1] == b'.')
}

/// Writes the wire name at the start of `wire` (uncompressed, as questions
/// are) into `buf` as lower-case dotted text with the trailing dot; returns
/// its length. None when malformed.
fn dotted_name(wire: &[u8], buf: &mut [u8; 256]) -> Option<usize> {
    let (mut at, mut len) = (0usize, 0usize);
    loop {
        let label = usize::from(*wire.get(at)?);
        if label == 0 {
            break;
        }
        if label > 63 || len + label + 1 > buf.len() {
            return None;
        }
        let bytes = wire.get(at + 1..at + 1 + label)?;
        for (i, b) in bytes.iter().enumerate() {
            buf[len + i] = b.to_ascii_lowercase();
        }
        len += label;
        buf[len] = b'.';
        len += 1;
        at += 1 + label;
    }
    if len == 0 {
        buf[0] = b'.';
        len = 1;
    }
    Some(len)
}

/// Turns the response in `out` into the slip: header and question only,
/// TC set, no records (RFC 1035 §4.1.1; BIND's and Knot's slip).
pub fn truncate_to_slip(out: &mut Vec<u8>) {
    if out.len() < 12 {
        return;
    }
    let question_end = 12 + dotted_len(&out[12..]).map_or(0, |n| n + 4);
    if question_end > out.len() {
        return;
    }
    out.truncate(question_end);
    out[2] |= 0x02; // TC
    out[3] &= 0xf0; // NOERROR
    out[6..12].fill(0); // no answer, authority or additional records
}

/// Length of the uncompressed wire name at the start of `wire`.
fn dotted_len(wire: &[u8]) -> Option<usize> {
    let mut at = 0usize;
    loop {
        let label = usize::from(*wire.get(at)?);
        at += 1;
        if label == 0 {
            return Some(at);
        }
        if label > 63 {
            return None;
        }
        at += label;
    }
}

pub mod gate;

#[cfg(test)]
mod tests;
