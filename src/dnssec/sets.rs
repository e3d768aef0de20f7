//! sets: the answers a balanced name can give, which `SignedZone` signs in
//! advance.

use std::net::IpAddr;

use hickory_proto::rr::{LowerName, Name, RData, Record, RecordType};

/// A balanced name's answers as steering can give them.
pub struct BalancedSets {
    pub name: Name,
    /// The TTLs its answers carry: `ttl`, and `min_ttl` when it differs.
    pub ttls: Vec<u32>,
    /// Every endpoint address of every pool the name can use.
    pub singles: Vec<IpAddr>,
    /// Each pool's full address list.
    pub pools: Vec<Vec<IpAddr>>,
    /// `answers`: how many addresses an answer holds at most.
    pub answers: u32,
    /// The targets of its pools' CNAME endpoints (fully qualified).
    pub cnames: Vec<Name>,
    /// Some pool of it has `host` endpoints: it can answer A and AAAA with
    /// addresses known only at runtime (signed when they are first seen).
    pub hosts: bool,
}

/// A prepared CNAME answer: (owner, target, TTL).
pub(super) type CnameKey = (LowerName, LowerName, u32);

/// A prepared balanced answer: (owner, A or AAAA, sorted addresses, TTL).
pub type BalancedKey = (LowerName, RecordType, Vec<IpAddr>, u32);

/// A pool's subsets signed in advance at most (per family): every answer
/// steering can give from a small pool (up to `answers` of its addresses,
/// fewer when some are down); past this, its single addresses and full set.
const MAX_SUBSETS: usize = 128;

/// The answers a pool of `set` (one family, sorted) can give: every
/// non-empty subset of at most `answers` addresses when there are no more
/// than [`MAX_SUBSETS`], and always the full set.
pub(super) fn pool_answers(set: &[IpAddr], answers: u32) -> Vec<Vec<IpAddr>> {
    let n = set.len();
    let k = (answers as usize).clamp(1, n.max(1));
    let mut out = Vec::new();
    if n <= 16 {
        let masks = (1u32..(1 << n)).filter(|m| m.count_ones() as usize <= k);
        if masks.clone().count() <= MAX_SUBSETS {
            for m in masks {
                out.push(
                    (0..n)
                        .filter(|i| m & (1 << i) != 0)
                        .map(|i| set[i])
                        .collect(),
                );
            }
        }
    }
    if n > k || out.is_empty() {
        out.push(set.to_vec());
    }
    out
}

/// The CNAME record of a balanced name's answer.
pub(super) fn cname_record(name: &Name, ttl: u32, target: &Name) -> Record {
    Record::from_rdata(
        name.clone(),
        ttl,
        RData::CNAME(hickory_proto::rr::rdata::CNAME(target.clone())),
    )
}

/// The records of an A or AAAA answer.
pub fn address_records(name: &Name, ttl: u32, addrs: &[IpAddr]) -> Vec<Record> {
    addrs
        .iter()
        .map(|ip| {
            let rdata = match ip {
                IpAddr::V4(a) => RData::A(hickory_proto::rr::rdata::A(*a)),
                IpAddr::V6(a) => RData::AAAA(hickory_proto::rr::rdata::AAAA(*a)),
            };
            Record::from_rdata(name.clone(), ttl, rdata)
        })
        .collect()
}

pub(super) fn family_type(ip: &IpAddr) -> RecordType {
    match ip {
        IpAddr::V4(_) => RecordType::A,
        IpAddr::V6(_) => RecordType::AAAA,
    }
}

/// The answers the balanced names inside `origin` can give.
pub(super) fn balanced_sets(
    config: &crate::config::Config,
    origin: &LowerName,
) -> Vec<BalancedSets> {
    let mut out = Vec::new();
    for b in &config.balance {
        let Ok(name) = Name::from_ascii(&b.name) else {
            continue;
        };
        if !origin.zone_of(&LowerName::new(&name)) {
            continue;
        }
        let mut ids: Vec<crate::config::PoolId> = b.pools.clone();
        ids.extend(b.fallback);
        ids.extend(b.countries.values().flatten().copied());
        ids.extend(b.continents.values().flatten().copied());
        ids.extend(b.subnets.iter().flat_map(|(_, p)| p.iter().copied()));
        ids.sort_by_key(|p| p.index());
        ids.dedup_by_key(|p| p.index());
        let pools: Vec<Vec<IpAddr>> = ids
            .iter()
            .filter_map(|id| config.pools.get(id.index()))
            .map(|p| p.endpoints.iter().filter_map(|e| e.address()).collect())
            .collect();
        let mut singles: Vec<IpAddr> = pools.iter().flatten().copied().collect();
        singles.sort();
        singles.dedup();
        let mut cnames: Vec<Name> = ids
            .iter()
            .filter_map(|id| config.pools.get(id.index()))
            .flat_map(|p| &p.endpoints)
            .filter_map(|e| match &e.target {
                crate::config::EndpointTarget::Cname(t) => Name::from_ascii(format!("{t}.")).ok(),
                _ => None,
            })
            .collect();
        cnames.sort();
        cnames.dedup();
        let hosts = ids
            .iter()
            .filter_map(|id| config.pools.get(id.index()))
            .any(|p| p.answers_hosts());
        out.push(BalancedSets {
            hosts,
            name,
            ttls: if b.min_ttl == b.ttl {
                vec![b.ttl]
            } else {
                vec![b.ttl, b.min_ttl]
            },
            singles,
            pools,
            answers: b.answers,
            cnames,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ips(n: u8) -> Vec<IpAddr> {
        (1..=n).map(|i| IpAddr::from([192, 0, 2, i])).collect()
    }

    #[test]
    fn small_pools_have_every_answer_prepared() {
        // Three addresses, two an answer: 3 singles, 3 pairs (the full set
        // is not an answer but is kept for fail-open).
        let sets = pool_answers(&ips(3), 2);
        assert_eq!(sets.iter().filter(|s| s.len() == 1).count(), 3);
        assert_eq!(sets.iter().filter(|s| s.len() == 2).count(), 3);
        assert_eq!(sets.iter().filter(|s| s.len() == 3).count(), 1);
        // answers >= the pool: every subset, the full set among them once.
        let sets = pool_answers(&ips(3), 5);
        assert_eq!(sets.len(), 7);
        // Too many subsets: singles and the full set only.
        let sets = pool_answers(&ips(12), 6);
        assert_eq!(sets.len(), 1, "{} sets", sets.len());
        assert_eq!(sets[0].len(), 12);
    }
}
