//! client: which address a decision uses (RFC 7871): the EDNS Client Subnet
//! when present, masked to its source prefix, else the packet's source. Pure:
//! the DNS paths hand in the packet source and the ECS option's address and
//! source prefix.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The address steering uses and how many of its leading bits are known.
/// `ecs` is the query's ECS option as (address, source prefix). A source
/// prefix of 0 means "do not use the client address": the packet source is
/// used, and the scope will be 0.
pub fn client_addr(src: IpAddr, ecs: Option<(IpAddr, u8)>) -> (IpAddr, u8) {
    match ecs {
        Some((addr, prefix)) if prefix > 0 => (mask(addr, prefix), prefix),
        _ => {
            let src = canonical(src);
            (src, full_len(&src))
        }
    }
}

/// An IPv4-mapped IPv6 source (dual-stack socket) is the IPv4 client.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => ip,
        },
        v4 => v4,
    }
}

/// The length of `ip`'s family in bits: 32 or 128.
pub fn full_len(ip: &IpAddr) -> u8 {
    match ip {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

/// Zeroes every bit past `prefix` (RFC 7871 §6: extra bits must not be used).
pub fn mask(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(a) => {
            let bits = u32::from(a);
            let m = if prefix == 0 {
                0
            } else {
                u32::MAX << (32 - prefix.min(32) as u32)
            };
            IpAddr::V4(Ipv4Addr::from(bits & m))
        }
        IpAddr::V6(a) => {
            let bits = u128::from(a);
            let m = if prefix == 0 {
                0
            } else {
                u128::MAX << (128 - prefix.min(128) as u32)
            };
            IpAddr::V6(Ipv6Addr::from(bits & m))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_bits_past_the_prefix() {
        let ip: IpAddr = "5.9.255.7".parse().unwrap();
        assert_eq!(mask(ip, 16), "5.9.0.0".parse::<IpAddr>().unwrap());
        assert_eq!(mask(ip, 0), "0.0.0.0".parse::<IpAddr>().unwrap());
        assert_eq!(mask(ip, 32), ip);
        let v6: IpAddr = "2001:db8:ffff::1".parse().unwrap();
        assert_eq!(mask(v6, 32), "2001:db8::".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn source_prefix_zero_uses_the_packet_source() {
        let src: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(
            client_addr(src, Some(("5.9.0.0".parse().unwrap(), 0))),
            (src, 32)
        );
        assert_eq!(
            client_addr(src, Some(("5.9.1.2".parse().unwrap(), 24))),
            ("5.9.1.0".parse().unwrap(), 24)
        );
    }
}
