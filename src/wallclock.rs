//! wallclock: the time operators read (status ages, reload and drain times,
//! fleet records), as Unix milliseconds. The pure core never calls it; it
//! takes `now` as an argument.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Seconds since the Unix epoch: DNS time (TSIG, RRSIG inception and
/// expiry), a 32-bit serial that wraps in 2106 (RFC 4034 §3.1.5).
pub fn unix_secs() -> u64 {
    unix_ms() / 1000
}
