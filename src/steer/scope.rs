//! scope: the ECS scope prefix an answer is valid for (RFC 7871 §7.2.1).
//!
//! The scope is the prefix length of the most specific fact the decision used,
//! lengthened until no configured subnet with possibly different pools lies
//! inside the client's network at that length: such a subnet is a "hole" that a
//! resolver caching our answer for the wider network would wrongly cover. We
//! de-aggregate rather than warn. Policies that ignore the client give 0.

use std::net::IpAddr;

use super::{BalancedName, Client};
use crate::config::Policy;

/// `subnet_len`: the prefix length of the name's `subnets` entry holding the
/// client, if one does.
///
/// `by_vantage`: the fleet has vantages with locations, so the `latency`
/// policy's order depends on where the client is.
pub(super) fn scope_prefix(
    name: &BalancedName,
    client: &Client,
    subnet_len: Option<u8>,
    by_vantage: bool,
) -> u8 {
    match name.config.policy {
        Policy::Latency if by_vantage => client.location.prefix_len,
        Policy::Failover | Policy::Weighted | Policy::Random | Policy::Latency => 0,
        Policy::Proximity => client.location.prefix_len,
        Policy::Geo => {
            let base = match subnet_len {
                Some(len) => len,
                // Country or continent (or nothing) decided: the GeoIP network's
                // prefix is what the answer depends on.
                None => client.location.prefix_len,
            };
            widen_past_holes(name, client.addr, base)
        }
    }
}

/// The shortest length L ≥ `base` such that the client's /L network holds no
/// configured subnet longer than L. Monotonic in L, so a binary search works.
fn widen_past_holes(name: &BalancedName, addr: IpAddr, base: u8) -> u8 {
    let max = match addr {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    };
    if !has_longer_subnet_inside(name, addr, base) {
        return base;
    }
    let (mut lo, mut hi) = (base, max); // has(lo) is true; has(max) is false
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if has_longer_subnet_inside(name, addr, mid) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    hi
}

fn has_longer_subnet_inside(name: &BalancedName, addr: IpAddr, len: u8) -> bool {
    match addr {
        IpAddr::V4(a) => name.subnets_v4.has_longer_inside(u32::from(a).into(), len),
        IpAddr::V6(a) => name.subnets_v6.has_longer_inside(u128::from(a), len),
    }
}
