//! prefixes: a `subnets` map compiled for lookups whose cost does not grow
//! with the map: longest-prefix match and "is there a longer prefix inside
//! this network" (the ECS scope's hole check) for one address family.
//!
//! Built once per config load from sorted arrays, not a pointer trie: a
//! million prefixes are two flat vectors plus a 65,536-entry index on the top
//! 16 bits, so a lookup is one index read and a binary search over the few
//! entries of one bucket, a handful of cache lines whatever the map's size.

/// No prefix covers this interval.
const NONE: u32 = u32::MAX;

/// Buckets of the top-level index: the top `INDEX_BITS` bits of an address.
const INDEX_BITS: u32 = 16;

/// Below this many entries a plain binary search is as quick, and 10,000
/// names with a few subnets each should not cost 256 KiB of index apiece.
const INDEX_FROM: usize = 4096;

#[derive(Debug, Default)]
pub(super) struct PrefixTable {
    /// Address width: 32 or 128.
    bits: u32,
    /// The longest configured prefix (0 when empty).
    max_len: u8,
    /// Configured prefixes sorted by (start, length), with the value each maps to.
    starts: Vec<u128>,
    lens: Vec<u8>,
    values: Vec<u32>,
    /// `starts` index of the first prefix in each top-level bucket (+1 entry).
    prefix_index: Vec<u32>,
    /// Disjoint intervals: where each begins, and which prefix (index into
    /// `starts`) is the most specific one holding it, or NONE.
    cuts: Vec<u128>,
    owners: Vec<u32>,
    cut_index: Vec<u32>,
}

impl PrefixTable {
    /// `prefixes` are (network address, length, value), host bits zero,
    /// each network at most once.
    pub(super) fn build(bits: u32, mut prefixes: Vec<(u128, u8, u32)>) -> PrefixTable {
        prefixes.sort_unstable_by_key(|p| (p.0, p.1));
        let max = if bits == 128 {
            u128::MAX
        } else {
            (1u128 << bits) - 1
        };
        let end = |start: u128, len: u8| start | host_bits(max, len);
        // Sweep in (start, length) order: a prefix opens after every prefix
        // that holds it, and the stack holds the open ones, innermost last.
        let mut cuts = Cuts::default();
        let mut open: Vec<(u128, u32)> = Vec::new();
        for (i, &(start, len, _)) in prefixes.iter().enumerate() {
            cuts.close(&mut open, Some(start), max);
            cuts.push(start, i as u32);
            open.push((end(start, len), i as u32));
        }
        cuts.close(&mut open, None, max);
        let Cuts { cuts, owners } = cuts;
        let starts: Vec<u128> = prefixes.iter().map(|p| p.0).collect();
        PrefixTable {
            bits,
            max_len: prefixes.iter().map(|p| p.1).max().unwrap_or(0),
            prefix_index: index(bits, &starts),
            cut_index: index(bits, &cuts),
            lens: prefixes.iter().map(|p| p.1).collect(),
            values: prefixes.iter().map(|p| p.2).collect(),
            starts,
            cuts,
            owners,
        }
    }

    /// The most specific prefix holding `addr`: (length, value).
    pub(super) fn longest_match(&self, addr: u128) -> Option<(u8, u32)> {
        if self.starts.is_empty() {
            return None;
        }
        let (lo, hi) = self.bucket(&self.cut_index, self.cuts.len(), addr);
        let i = lo + self.cuts[lo..hi].partition_point(|c| *c <= addr);
        let owner = *self.owners.get(i.checked_sub(1)?)?;
        (owner != NONE).then(|| (self.lens[owner as usize], self.values[owner as usize]))
    }

    /// True when some prefix longer than `len` lies inside `addr`/`len`.
    pub(super) fn has_longer_inside(&self, addr: u128, len: u8) -> bool {
        if len >= self.max_len {
            return false;
        }
        let max = if self.bits == 128 {
            u128::MAX
        } else {
            (1u128 << self.bits) - 1
        };
        let host = host_bits(max, len);
        let (net, last) = (addr & !host, addr | host);
        // The first prefix after (net, len) in (start, length) order: one that
        // starts at `net` is longer; one that starts later inside the network
        // is longer too (the network's only address aligned for `len` or
        // shorter is `net` itself).
        let (lo, hi) = self.bucket(&self.prefix_index, self.starts.len(), net);
        let j = self.partition(lo, hi, net, len);
        self.starts.get(j).is_some_and(|s| *s <= last)
    }

    /// First index in `lo..hi` whose (start, length) is above (net, len).
    fn partition(&self, lo: usize, hi: usize, net: u128, len: u8) -> usize {
        let (mut a, mut b) = (lo, hi);
        while a < b {
            let m = a + (b - a) / 2;
            if (self.starts[m], self.lens[m]) <= (net, len) {
                a = m + 1;
            } else {
                b = m;
            }
        }
        a
    }

    /// The range of keys (through `index`) whose top bits equal `addr`'s;
    /// all of them when the table is too small to have an index.
    fn bucket(&self, index: &[u32], keys: usize, addr: u128) -> (usize, usize) {
        if index.is_empty() {
            return (0, keys);
        }
        let b = (addr >> (self.bits - INDEX_BITS)) as usize;
        (index[b] as usize, index[b + 1] as usize)
    }
}

/// The host part of a /`len` network in an address space whose top is `max`.
fn host_bits(max: u128, len: u8) -> u128 {
    max.checked_shr(len.into()).unwrap_or(0)
}

/// The interval list under construction.
#[derive(Default)]
struct Cuts {
    cuts: Vec<u128>,
    owners: Vec<u32>,
}

impl Cuts {
    /// From `at` on, `owner` is the most specific prefix.
    fn push(&mut self, at: u128, owner: u32) {
        if self.cuts.last() == Some(&at) {
            // Several prefixes open or close at one address: the last word wins.
            *self.owners.last_mut().expect("same length") = owner;
        } else if self.owners.last() != Some(&owner) {
            self.cuts.push(at);
            self.owners.push(owner);
        }
    }

    /// Closes the open prefixes (innermost last) that end before `at`, or all.
    fn close(&mut self, open: &mut Vec<(u128, u32)>, at: Option<u128>, max: u128) {
        while let Some(&(end, _)) = open.last() {
            if at.is_some_and(|a| end >= a) {
                break;
            }
            open.pop();
            if end < max {
                self.push(end + 1, open.last().map_or(NONE, |o| o.1));
            }
        }
    }
}

/// For each top-level bucket, the first position in `keys` (sorted) at or
/// above the bucket's first address; one more entry for the end.
fn index(bits: u32, keys: &[u128]) -> Vec<u32> {
    if keys.len() < INDEX_FROM {
        return Vec::new();
    }
    let shift = bits - INDEX_BITS;
    let mut out = Vec::with_capacity((1 << INDEX_BITS) + 1);
    let mut i = 0;
    for b in 0..(1u128 << INDEX_BITS) {
        while i < keys.len() && keys[i] >> shift < b {
            i += 1;
        }
        out.push(i as u32);
    }
    out.push(keys.len() as u32);
    out
}

#[cfg(test)]
mod tests {
    use rand::rngs::SmallRng;
    use rand::{RngExt, SeedableRng};

    use super::*;

    /// Random nested prefixes in a small corner of the space, checked against
    /// a scan of every prefix.
    #[test]
    fn matches_a_linear_scan() {
        let mut rng = SmallRng::seed_from_u64(7);
        for bits in [32u32, 128] {
            let max = if bits == 128 {
                u128::MAX
            } else {
                (1u128 << bits) - 1
            };
            let base = max - 0xfffff; // the top 1M addresses: prefixes nest
            let mut prefixes: Vec<(u128, u8, u32)> = Vec::new();
            for v in 0..6000u32 {
                let len = rng.random_range(bits as u8 - 16..=bits as u8);
                let host = host_bits(max, len);
                let start = (base + rng.random_range(0..=0xfffffu128)) & !host;
                if !prefixes.iter().any(|p| (p.0, p.1) == (start, len)) {
                    prefixes.push((start, len, v));
                }
            }
            prefixes.push((0, 0, 9999)); // a default route under everything
            let table = PrefixTable::build(bits, prefixes.clone());
            let holds = |p: &(u128, u8, u32), a: u128| a & !(host_bits(max, p.1)) == p.0;
            for _ in 0..5000 {
                let a = base + rng.random_range(0..=0xfffffu128);
                let want = prefixes
                    .iter()
                    .filter(|p| holds(p, a))
                    .max_by_key(|p| p.1)
                    .map(|p| (p.1, p.2));
                assert_eq!(table.longest_match(a), want, "{a:x}");
                let len = rng.random_range(bits as u8 - 18..=bits as u8);
                let net = a & !(host_bits(max, len));
                let want = prefixes
                    .iter()
                    .any(|p| p.1 > len && p.0 & !(host_bits(max, len)) == net);
                assert_eq!(table.has_longer_inside(a, len), want, "{a:x}/{len}");
            }
            assert_eq!(table.longest_match(1), Some((0, 9999)));
            assert!(!PrefixTable::build(bits, Vec::new()).has_longer_inside(1, 0));
            assert_eq!(PrefixTable::build(bits, Vec::new()).longest_match(1), None);
        }
    }
}
