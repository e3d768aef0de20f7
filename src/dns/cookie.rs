//! cookie: DNS cookies (RFC 7873) with the interoperable server cookies of
//! RFC 9018, so that every node of a fleet sharing `server.cookie_secret`
//! accepts the cookies any other node handed out, and so do other servers
//! (BIND, Knot, PowerDNS) given the same secret.
//!
//! A server cookie is 16 octets: version 1, three reserved octets, a 32-bit
//! timestamp (Unix seconds, serial arithmetic) and SipHash-2-4, keyed with
//! the 128-bit secret, over client cookie | version | reserved | timestamp |
//! client address. It is good from an hour in the past to five minutes in the
//! future, and renewed once it is half an hour old (RFC 9018 §4.3).
//!
//! Pure code: the caller brings the time and the client's address. Nothing
//! here allocates; checking a cookie is one hash (two for a cookie made with
//! an older secret still accepted for rollover).

use std::net::IpAddr;
use std::sync::atomic::AtomicU64;

pub use crate::config::CookieSecret as Secret;
pub use crate::metrics::CookieCounters;

use siphasher::sip::SipHasher24;

/// The COOKIE option code (RFC 7873 §4).
pub const OPTION: u16 = 10;
/// The client cookie's length.
pub const CLIENT_LEN: usize = 8;
/// The server cookies we make (RFC 9018 §4): version, reserved, time, hash.
pub const SERVER_LEN: usize = 16;
/// The cookie we send: the client's and ours.
pub const REPLY_LEN: usize = CLIENT_LEN + SERVER_LEN;
/// The longest COOKIE option (8 octets of client cookie, up to 32 of server cookie).
pub const MAX_LEN: usize = 40;
/// The wire length of the COOKIE option we send: code, length, cookie.
pub const OPTION_WIRE_LEN: usize = 4 + REPLY_LEN;
/// The extended rcode BADCOOKIE (RFC 7873 §8).
pub const BADCOOKIE: u16 = 23;

/// RFC 9018 §4.3: a server cookie older than this is not accepted.
const MAX_AGE: u32 = 3600;
/// ... nor one stamped further in the future than this (clock skew in a fleet).
const MAX_AHEAD: u32 = 300;
/// ... and one older than this is replaced by a fresh one.
const RENEW_AGE: u32 = 1800;

/// A COOKIE option as received, well formed: 8 octets (a client cookie
/// alone) or 16 to 40 (with a server cookie).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Received {
    len: u8,
    bytes: [u8; MAX_LEN],
}

/// A COOKIE option of a length RFC 7873 §5.2.2 answers with FORMERR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed;

impl Received {
    pub fn parse(data: &[u8]) -> Result<Received, Malformed> {
        match data.len() {
            CLIENT_LEN | 16..=MAX_LEN => {
                let mut bytes = [0u8; MAX_LEN];
                bytes[..data.len()].copy_from_slice(data);
                Ok(Received {
                    len: data.len() as u8,
                    bytes,
                })
            }
            _ => Err(Malformed),
        }
    }

    pub fn client(&self) -> &[u8; CLIENT_LEN] {
        self.bytes[..CLIENT_LEN]
            .try_into()
            .unwrap_or(&[0; CLIENT_LEN])
    }

    /// The server cookie the client sent back (empty: none).
    pub fn server(&self) -> &[u8] {
        &self.bytes[CLIENT_LEN..usize::from(self.len)]
    }
}

/// What a query's cookie was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// No COOKIE option (or no OPT record).
    None = 0,
    /// A client cookie alone: the client's first query to us.
    ClientOnly = 1,
    /// A server cookie we made (with a secret we accept) for this client and
    /// address, in its time window.
    Valid = 2,
    /// A server cookie we did not make, made for another address, or out of
    /// its window: treated as a client cookie alone (RFC 7873 §5.2.4).
    Bad = 3,
}

impl Verdict {
    pub const ALL: [Verdict; 4] = [
        Verdict::None,
        Verdict::ClientOnly,
        Verdict::Valid,
        Verdict::Bad,
    ];

    /// The `result` label of `geosteer_dns_cookies_total`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::None => "none",
            Verdict::ClientOnly => "client_only",
            Verdict::Valid => "valid",
            Verdict::Bad => "bad",
        }
    }
}

/// A checked cookie: what it was and the COOKIE option to answer with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checked {
    pub verdict: Verdict,
    /// The client cookie and our server cookie: the one the client sent
    /// when it is valid and fresh, else a new one.
    pub reply: [u8; REPLY_LEN],
}

/// Checks `received` from `client` at `now` (Unix seconds) against
/// `secrets` (the first makes new cookies; the others are still accepted).
pub fn check(received: &Received, secrets: &[Secret], client: IpAddr, now: u32) -> Checked {
    let server = received.server();
    let verdict = if server.is_empty() {
        Verdict::ClientOnly
    } else {
        match valid(received.client(), server, secrets, client, now) {
            Some((0, stamp)) if fresh(stamp, now) => {
                // Valid, fresh and made with the current secret: sent back as is.
                let mut reply = [0u8; REPLY_LEN];
                reply.copy_from_slice(&received.bytes[..REPLY_LEN]);
                return Checked {
                    verdict: Verdict::Valid,
                    reply,
                };
            }
            Some(_) => Verdict::Valid,
            None => Verdict::Bad,
        }
    };
    let mut reply = [0u8; REPLY_LEN];
    reply[..CLIENT_LEN].copy_from_slice(received.client());
    let secret = secrets.first().copied().unwrap_or(Secret([0; 16]));
    reply[CLIENT_LEN..].copy_from_slice(&make(&secret, received.client(), client, now));
    Checked { verdict, reply }
}

/// A new server cookie (RFC 9018 §4.2) for `client_cookie` from `client` at `now`.
pub fn make(
    secret: &Secret,
    client_cookie: &[u8; CLIENT_LEN],
    client: IpAddr,
    now: u32,
) -> [u8; SERVER_LEN] {
    let mut out = [0u8; SERVER_LEN];
    out[0] = 1;
    out[4..8].copy_from_slice(&now.to_be_bytes());
    let hash = hash(secret, client_cookie, &out[..8], client);
    out[8..].copy_from_slice(&hash);
    out
}

/// Which of `secrets` made `server` for this client cookie and address, and
/// its timestamp, if one did and the stamp is in the window.
fn valid(
    client_cookie: &[u8; CLIENT_LEN],
    server: &[u8],
    secrets: &[Secret],
    client: IpAddr,
    now: u32,
) -> Option<(usize, u32)> {
    // Only version 1 cookies of 16 octets are ours (RFC 9018 §4.1).
    if server.len() != SERVER_LEN || server[0] != 1 {
        return None;
    }
    let stamp = u32::from_be_bytes([server[4], server[5], server[6], server[7]]);
    let ahead = stamp.wrapping_sub(now);
    if age(stamp, now) > MAX_AGE && !(1..=MAX_AHEAD).contains(&ahead) {
        return None;
    }
    secrets
        .iter()
        .position(|s| hash(s, client_cookie, &server[..8], client) == server[8..])
        .map(|i| (i, stamp))
}

/// Whether a valid cookie stamped `stamp` is kept rather than renewed:
/// younger than half an hour, or ahead of our clock (another node's).
fn fresh(stamp: u32, now: u32) -> bool {
    age(stamp, now) <= RENEW_AGE || (1..=MAX_AHEAD).contains(&stamp.wrapping_sub(now))
}

/// Seconds `stamp` lies before `now` (serial arithmetic: a stamp ahead of
/// now is very old here, and [`valid`] looks at it as ahead).
fn age(stamp: u32, now: u32) -> u32 {
    now.wrapping_sub(stamp)
}

/// SipHash-2-4 over client cookie | version, reserved, timestamp (`head`,
/// as sent) | client address, as RFC 9018 §4.4 spells it: the 64-bit result
/// in the reference implementation's (little-endian) byte order.
fn hash(secret: &Secret, client_cookie: &[u8; CLIENT_LEN], head: &[u8], client: IpAddr) -> [u8; 8] {
    use std::hash::Hasher;
    let mut h = SipHasher24::new_with_key(&secret.0);
    h.write(client_cookie);
    h.write(head);
    match canonical(client) {
        IpAddr::V4(a) => h.write(&a.octets()),
        IpAddr::V6(a) => h.write(&a.octets()),
    }
    h.finish().to_le_bytes()
}

/// An IPv4 client reaching an IPv6 socket is hashed as the IPv4 address it
/// is, so every node makes the same cookie for it.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(a) => a.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The first COOKIE option of a message's OPT record: None without one,
/// `Some(Err)` when it is malformed. Walks the sections; None for what it
/// cannot read (the decoder judges that).
pub fn in_message(p: &[u8]) -> Option<Result<Received, Malformed>> {
    super::fast::wire::first_option(p, OPTION).map(Received::parse)
}

/// Whether the message `p` from `client` carries a valid server cookie of
/// `snap`'s secrets (the hickory path's exemption from rate limiting).
pub fn verified(p: &[u8], snap: &crate::state::Snapshot, client: IpAddr) -> bool {
    match in_message(p) {
        Some(Ok(received)) => {
            let now = crate::wallclock::unix_secs() as u32;
            let secrets = &snap.config.server.cookie_secrets;
            valid(received.client(), received.server(), secrets, client, now).is_some()
        }
        _ => false,
    }
}

impl Verdict {
    /// Its counter in `counters`.
    pub fn counter(self, counters: &CookieCounters) -> &AtomicU64 {
        &counters.verdicts[self as usize]
    }
}

#[cfg(test)]
mod tests;
