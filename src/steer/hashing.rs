//! hashing: the stable, RNG-free client split. A client is known by its
//! subnet (the ECS source prefix capped at /24 for IPv4 and /56 for IPv6, or
//! that prefix of the packet source), hashed with a fixed function so every
//! node and every restart computes the same value (no per-process seed).
//!
//! `sticky = true` draws a pool's endpoints by weighted rendezvous hashing
//! of that subnet: each endpoint scores `-weight / ln(u)`, where `u` in
//! (0, 1) hashes (subnet, endpoint); the highest scores answer. An endpoint
//! wins for a share of subnets proportional to its weight, and removing one
//! of N endpoints moves only the subnets it held (about 1/N).

use std::net::IpAddr;

use smallvec::SmallVec;

use super::Client;
use super::client::mask;

/// The longest IPv4 prefix a client is known by.
pub const V4_PREFIX: u8 = 24;
/// The longest IPv6 prefix a client is known by.
pub const V6_PREFIX: u8 = 56;

/// The client's subnet as the hash sees it: its address masked to its
/// known prefix capped at /24 (IPv4) or /56 (IPv6), and that length.
pub fn client_subnet(client: &Client) -> (IpAddr, u8) {
    let cap = match client.addr {
        IpAddr::V4(_) => V4_PREFIX,
        IpAddr::V6(_) => V6_PREFIX,
    };
    let len = client.source_prefix.min(cap);
    (mask(client.addr, len), len)
}

/// A stable 64-bit hash of a client subnet.
pub fn subnet_hash((addr, len): (IpAddr, u8)) -> u64 {
    let (tag, bits) = words(addr);
    fold(
        fold(fold(0x6765_6f73_7465_6572, tag | u64::from(len)), bits.0),
        bits.1,
    )
}

/// `h` as a number in [0, 1), for splits by share.
pub fn unit(h: u64) -> f64 {
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// The rendezvous score of the endpoint at `endpoint` with `weight` for the
/// subnet hashed to `subnet`: higher wins.
pub fn score(subnet: u64, endpoint: IpAddr, weight: u64) -> f64 {
    let (tag, bits) = words(endpoint);
    let h = fold(fold(fold(subnet, tag), bits.0), bits.1);
    // In (0, 1): never 0 (ln 0) nor 1 (ln 1 = 0).
    let u = ((h >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
    -(weight.max(1) as f64) / u.ln()
}

/// The `want` best of `candidates` (index, address, weight) for the subnet
/// hashed to `subnet`, best first; ties go to the lower index.
pub fn rendezvous(
    subnet: u64,
    candidates: impl Iterator<Item = (usize, IpAddr, u64)>,
    want: usize,
) -> SmallVec<[usize; 8]> {
    let mut scored: SmallVec<[(f64, usize); 16]> = candidates
        .map(|(i, addr, w)| (score(subnet, addr, w), i))
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    scored.into_iter().take(want).map(|(_, i)| i).collect()
}

/// (family tag, the address's 128 bits as two words).
fn words(addr: IpAddr) -> (u64, (u64, u64)) {
    match addr {
        IpAddr::V4(a) => (4 << 8, (u64::from(u32::from(a)), 0)),
        IpAddr::V6(a) => {
            let b = u128::from(a);
            (6 << 8, ((b >> 64) as u64, b as u64))
        }
    }
}

/// One step of the hash: `h` and `word` mixed by the splitmix64 finalizer.
fn fold(h: u64, word: u64) -> u64 {
    let mut x = (h ^ word).wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geo::Location;

    fn client(addr: &str, source_prefix: u8) -> Client {
        Client {
            addr: addr.parse().unwrap(),
            source_prefix,
            location: Location::default(),
        }
    }

    fn v4(i: u32) -> IpAddr {
        IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + (i << 8)))
    }

    fn endpoints(n: usize) -> Vec<IpAddr> {
        (0..n)
            .map(|i| format!("192.0.2.{}", i + 1).parse().unwrap())
            .collect()
    }

    fn pick(subnet: u64, eps: &[(IpAddr, u64)]) -> IpAddr {
        let i = rendezvous(
            subnet,
            eps.iter().enumerate().map(|(i, (a, w))| (i, *a, *w)),
            1,
        )[0];
        eps[i].0
    }

    #[test]
    fn the_subnet_is_the_known_prefix_capped_at_24_or_56() {
        assert_eq!(
            client_subnet(&client("198.51.100.77", 32)),
            ("198.51.100.0".parse().unwrap(), 24)
        );
        assert_eq!(
            client_subnet(&client("198.51.0.0", 16)),
            ("198.51.0.0".parse().unwrap(), 16)
        );
        assert_eq!(
            client_subnet(&client("2001:db8:1:2ff:1::1", 128)),
            ("2001:db8:1:200::".parse().unwrap(), 56)
        );
        // Two hosts of one /24 are one client; the next /24 is another.
        let a = subnet_hash(client_subnet(&client("198.51.100.1", 32)));
        let b = subnet_hash(client_subnet(&client("198.51.100.200", 32)));
        let c = subnet_hash(client_subnet(&client("198.51.101.1", 32)));
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn the_hash_is_fixed_across_builds_and_nodes() {
        // A changed function would move every sticky client and every spill:
        // these values are part of the contract between fleet nodes.
        let h = subnet_hash(("198.51.100.0".parse().unwrap(), 24));
        assert_eq!(h, subnet_hash(("198.51.100.0".parse().unwrap(), 24)));
        assert_eq!(h, 0x1cd8_5ce2_594f_f0aa, "{h:#x}");
        assert!((0.0..1.0).contains(&unit(h)));
    }

    #[test]
    fn a_subnet_keeps_its_endpoint() {
        let eps: Vec<(IpAddr, u64)> = endpoints(4).into_iter().map(|a| (a, 1)).collect();
        for i in 0..200 {
            let h = subnet_hash((v4(i), 24));
            let first = pick(h, &eps);
            for _ in 0..5 {
                assert_eq!(pick(h, &eps), first);
            }
        }
    }

    #[test]
    fn shares_follow_weights() {
        let eps: Vec<(IpAddr, u64)> = endpoints(3).into_iter().zip([1, 2, 5]).collect();
        let mut won = [0u32; 3];
        let n = 8000;
        for i in 0..n {
            let a = pick(subnet_hash((v4(i), 24)), &eps);
            won[eps.iter().position(|e| e.0 == a).unwrap()] += 1;
        }
        // Expected 1/8, 2/8, 5/8 of 8000: 1000, 2000, 5000 (sd ≤ 45).
        for (got, want) in won.iter().zip([1000, 2000, 5000]) {
            assert!(got.abs_diff(want) < 250, "{won:?}");
        }
    }

    #[test]
    fn removing_one_of_n_moves_only_its_subnets() {
        let eps: Vec<(IpAddr, u64)> = endpoints(4).into_iter().map(|a| (a, 1)).collect();
        let gone = eps[2].0;
        let rest: Vec<(IpAddr, u64)> = eps.iter().copied().filter(|e| e.0 != gone).collect();
        let n = 4000;
        let mut moved = 0;
        for i in 0..n {
            let h = subnet_hash((v4(i), 24));
            let (before, after) = (pick(h, &eps), pick(h, &rest));
            if before != gone {
                assert_eq!(before, after, "a subnet of a remaining endpoint moved");
            } else {
                moved += 1;
            }
        }
        // About 1/4 of 4000 (sd 27).
        assert!((850..1150).contains(&moved), "{moved}");
    }

    #[test]
    fn several_answers_are_distinct_and_best_first() {
        let eps: Vec<(IpAddr, u64)> = endpoints(5).into_iter().map(|a| (a, 1)).collect();
        let h = subnet_hash((v4(7), 24));
        let two = rendezvous(h, eps.iter().enumerate().map(|(i, (a, w))| (i, *a, *w)), 2);
        assert_eq!(two.len(), 2);
        assert_ne!(two[0], two[1]);
        assert_eq!(eps[two[0]].0, pick(h, &eps));
    }
}
