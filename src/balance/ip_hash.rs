//! ip_hash: rendezvous (highest random weight) hashing on the client IP.
//!
//! Every (client, server) pair gets a score from a fixed-key hash; the highest
//! scoring candidate wins. Removing a server only moves the clients whose
//! winner it was; everyone else keeps their server. The hash is FNV-1a with a
//! splitmix64 finish, fixed so the mapping survives restarts and versions.
//! Weights scale the score (weighted rendezvous: `-weight / ln(u)`).

use std::net::{IpAddr, SocketAddr};

use super::Candidate;

pub(super) fn pick(candidates: &[Candidate], client: IpAddr) -> Option<usize> {
    candidates
        .iter()
        .map(|c| (rendezvous_score(client, c.address, c.weight), c.index))
        .max_by(|a, b| a.0.total_cmp(&b.0).then(b.1.cmp(&a.1)))
        .map(|(_, index)| index)
}

/// The weighted rendezvous score of `server` for `client`; higher wins.
pub fn rendezvous_score(client: IpAddr, server: SocketAddr, weight: u32) -> f64 {
    let mut h = Fnv::new();
    match client {
        IpAddr::V4(v4) => h.write(&v4.octets()),
        IpAddr::V6(v6) => h.write(&v6.octets()),
    }
    h.write(b"|");
    match server.ip() {
        IpAddr::V4(v4) => h.write(&v4.octets()),
        IpAddr::V6(v6) => h.write(&v6.octets()),
    }
    h.write(&server.port().to_be_bytes());
    let x = splitmix64(h.0);
    // A uniform value in (0, 1), never 0 or 1, from the top 53 bits.
    let u = ((x >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
    -f64::from(weight.max(1)) / u.ln()
}

struct Fnv(u64);

impl Fnv {
    fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::super::candidates;
    use super::*;
    use std::net::Ipv4Addr;

    fn clients(n: u32) -> Vec<IpAddr> {
        (0..n)
            .map(|i| IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i * 7919)))
            .collect()
    }

    #[test]
    fn same_client_same_server() {
        let c = candidates(&[1, 1, 1, 1]);
        for ip in clients(100) {
            let first = pick(&c, ip);
            assert_eq!(first, pick(&c, ip));
            assert!(first.is_some());
        }
    }

    #[test]
    fn spreads_clients_evenly() {
        let c = candidates(&[1, 1, 1, 1]);
        let mut counts = [0u32; 4];
        for ip in clients(4000) {
            counts[pick(&c, ip).unwrap()] += 1;
        }
        for n in counts {
            assert!((800..1200).contains(&n), "uneven spread {counts:?}");
        }
    }

    #[test]
    fn removing_one_server_remaps_only_its_clients() {
        let all = candidates(&[1, 1, 1, 1, 1]);
        let without_2: Vec<_> = all.iter().copied().filter(|c| c.index != 2).collect();
        let mut moved = 0;
        for ip in clients(5000) {
            let before = pick(&all, ip).unwrap();
            let after = pick(&without_2, ip).unwrap();
            if before != 2 {
                assert_eq!(before, after, "client {ip} moved off a server that stayed");
            } else {
                moved += 1;
            }
        }
        // About 1/5 of the clients were on the removed server.
        assert!((800..1200).contains(&moved), "moved {moved}");
    }

    #[test]
    fn weights_scale_the_share() {
        let c = candidates(&[3, 1]);
        let on_heavy = clients(4000)
            .into_iter()
            .filter(|ip| pick(&c, *ip) == Some(0))
            .count();
        assert!((2800..3200).contains(&on_heavy), "heavy got {on_heavy}");
    }
}
