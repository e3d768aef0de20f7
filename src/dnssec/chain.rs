//! chain: `nsec = "chain"` in `[dnssec."ZONE"]`, a classic NSEC chain
//! (RFC 4034 §4) over every name of the zone that owns records (the zone
//! file's names, the apex with its DNSKEY, the balanced names), in canonical
//! order (RFC 4034 §6.1), each link signed with the zone's snapshot (at load,
//! reload and every re-sign). Every denial is then made of prepared records,
//! none signed when asked:
//! - NODATA at a name: its own link, whose bitmap lists the name's types
//!   (`SignedZone::nodata` holds it, so it is answered as a compact NODATA is).
//! - A name that does not exist: NXDOMAIN with the link covering it and the
//!   link covering the wildcard at its closest encloser (RFC 4035 §3.1.3.2),
//!   one record when both are the same link.
//! - An empty non-terminal: NODATA with the link covering it (its next name
//!   is below it, which is how validators tell the name exists).
//! - A balanced name's empty answer for a family its pools have (every
//!   endpoint of that family down or drained, `on_all_down = "nodata"`):
//!   the name's link lists A and AAAA as its endpoints' families allow, so it
//!   cannot prove that NODATA (RFC 4035 §3.1.3.1: the asked type must be
//!   absent from the bitmap). For each family a balanced name lists, a second
//!   version of its link is signed with the zone (`SignedZone::family_nodata`,
//!   as compact denial has one): the same owner and next name, that family
//!   left out of the bitmap. It is as true as the empty answer it comes with
//!   (steered answers change with health and client), and its interval still
//!   covers exactly the names the link covers, so it never denies a name
//!   that exists.
//!
//! The zone can be walked: the links name every owner in turn.

use std::cmp::Ordering;
use std::collections::{BTreeSet, HashMap};

use hickory_proto::dnssec::rdata::{DNSSECRData, NSEC};
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{LowerName, Name, RData, Record, RecordType};

use super::SignedZone;
use super::wire::tail;

/// The unsigned NSEC records of a chain, in the order `SignedZone::build`
/// signs them.
pub(super) struct Plan {
    /// The links in canonical order: owner and NSEC.
    pub links: Vec<(LowerName, Record)>,
    /// Each owner's next name.
    next: HashMap<LowerName, LowerName>,
}

/// RFC 4034 §6.1 canonical order of two lower-case names.
fn canonical(a: &Name, b: &Name) -> Ordering {
    a.iter().rev().cmp(b.iter().rev())
}

/// The NSEC from `owner` to `next` listing `types`, RRSIG and NSEC.
pub(super) fn nsec(
    owner: &LowerName,
    next: &LowerName,
    types: &BTreeSet<RecordType>,
    ttl: u32,
) -> Record {
    let mut all = types.clone();
    all.insert(RecordType::RRSIG);
    all.insert(RecordType::NSEC);
    Record::from_rdata(
        Name::from(owner),
        ttl,
        RData::DNSSEC(DNSSECRData::NSEC(NSEC::new(Name::from(next), all))),
    )
}

impl Plan {
    /// The chain over the names of `types` (each name's record types:
    /// names without any, empty non-terminals, have no link).
    pub(super) fn new(types: &HashMap<LowerName, BTreeSet<RecordType>>, ttl: u32) -> Plan {
        let mut owners: Vec<&LowerName> = types.keys().collect();
        owners.sort_by(|a, b| canonical(a, b));
        let mut links = Vec::with_capacity(owners.len());
        let mut next = HashMap::with_capacity(owners.len());
        for (i, owner) in owners.iter().enumerate() {
            let after = owners[(i + 1) % owners.len()];
            let t = types.get(*owner).cloned().unwrap_or_default();
            links.push(((*owner).clone(), nsec(owner, after, &t, ttl)));
            next.insert((*owner).clone(), after.clone());
        }
        Plan { links, next }
    }

    /// The next name of `owner`'s link.
    pub(super) fn next(&self, owner: &LowerName) -> Option<&LowerName> {
        self.next.get(owner)
    }
}

/// What proves a denial, as links of the chain (indices).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denial {
    /// The name owns link `0` (a NODATA proof for a type it lacks).
    Owner(usize),
    /// The name is an empty non-terminal: NODATA, link `0` covers it.
    EmptyNonTerminal(usize),
    /// No such name: NXDOMAIN, `covering` covers it and `wildcard` the
    /// wildcard at its closest encloser.
    NxDomain { covering: usize, wildcard: usize },
}

impl Denial {
    pub fn rcode(&self) -> ResponseCode {
        match self {
            Denial::NxDomain { .. } => ResponseCode::NXDomain,
            _ => ResponseCode::NoError,
        }
    }

    /// The links of the proof, the second one if it is another.
    pub fn links(&self) -> (usize, Option<usize>) {
        match *self {
            Denial::Owner(i) | Denial::EmptyNonTerminal(i) => (i, None),
            Denial::NxDomain { covering, wildcard } => {
                (covering, (wildcard != covering).then_some(wildcard))
            }
        }
    }
}

/// A signed NSEC chain, found without allocating.
pub struct Chain {
    /// Link owners in canonical order (the apex first), each as its labels
    /// from the root down, lower case.
    owners: Vec<Box<[Box<[u8]>]>>,
    /// Each link: its NSEC and RRSIGs.
    records: Vec<Vec<Record>>,
    /// Each link on the wire: its record count, and the records each after
    /// its full (uncompressed) owner name.
    wire: Vec<(u16, Box<[u8]>)>,
}

/// A name's labels from the root down, as `Chain::owners` holds them.
fn labels(owner: &[Box<[u8]>]) -> impl Iterator<Item = &[u8]> + Clone {
    owner.iter().map(|l| &**l)
}

/// Two names by their labels from the root down: RFC 4034 §6.1 order.
fn cmp_labels<'a, 'b>(
    mut a: impl Iterator<Item = &'a [u8]>,
    mut b: impl Iterator<Item = &'b [u8]>,
) -> Ordering {
    loop {
        match (a.next(), b.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) => match x.cmp(y) {
                Ordering::Equal => {}
                other => return other,
            },
        }
    }
}

/// How many labels from the root `owner` and `name` share.
fn common<'a>(owner: &[Box<[u8]>], name: impl Iterator<Item = &'a [u8]>) -> usize {
    labels(owner).zip(name).take_while(|(a, b)| a == b).count()
}

impl Chain {
    /// The chain from its signed links (canonical order).
    pub(super) fn new(links: Vec<(LowerName, Vec<Record>)>) -> Chain {
        let mut chain = Chain {
            owners: Vec::with_capacity(links.len()),
            records: Vec::with_capacity(links.len()),
            wire: Vec::with_capacity(links.len()),
        };
        for (owner, records) in links {
            let mut owner_wire = Vec::with_capacity(64);
            for label in owner.iter() {
                owner_wire.push(label.len() as u8);
                owner_wire.extend_from_slice(label);
            }
            owner_wire.push(0);
            let mut bytes = Vec::new();
            let mut count = 0u16;
            for t in records.iter().filter_map(tail) {
                bytes.extend_from_slice(&owner_wire);
                bytes.extend_from_slice(&t);
                count += 1;
            }
            chain
                .owners
                .push(owner.iter().rev().map(Box::from).collect());
            chain.records.push(records);
            chain.wire.push((count, bytes.into_boxed_slice()));
        }
        chain
    }

    /// The last link whose owner sorts at or before `name` (labels from
    /// the root down).
    fn at_or_before<'a>(&self, name: impl Iterator<Item = &'a [u8]> + Clone) -> Option<usize> {
        self.owners
            .partition_point(|o| cmp_labels(labels(o), name.clone()) != Ordering::Greater)
            .checked_sub(1)
    }

    /// The proof for a name given by its labels from the root down; None
    /// outside the zone, or where a wildcard would answer.
    fn deny<'a, I>(&self, name: I) -> Option<Denial>
    where
        I: Iterator<Item = &'a [u8]> + Clone,
    {
        let i = self.at_or_before(name.clone())?;
        let owner = &self.owners[i];
        if cmp_labels(labels(owner), name.clone()) == Ordering::Equal {
            return Some(Denial::Owner(i));
        }
        let apex = self.owners.first()?;
        let depth = name.clone().count();
        if common(apex, name.clone()) != apex.len() {
            return None;
        }
        let next = &self.owners[(i + 1) % self.owners.len()];
        let with_next = common(next, name.clone());
        if with_next == depth && next.len() > depth {
            return Some(Denial::EmptyNonTerminal(i));
        }
        // The closest encloser: the deepest ancestor shared with a link on
        // either side (every ancestor of an owner exists).
        let encloser = common(owner, name.clone()).max(with_next);
        let wildcard = name.take(encloser).chain(std::iter::once(&b"*"[..]));
        let w = self.at_or_before(wildcard.clone())?;
        if cmp_labels(labels(&self.owners[w]), wildcard) == Ordering::Equal {
            return None;
        }
        Some(Denial::NxDomain {
            covering: i,
            wildcard: w,
        })
    }

    /// The proof for `key`, the fast path's lower-case presentation name
    /// with its trailing dot (`www.example.test.`; no escapes).
    pub fn deny_key(&self, key: &[u8]) -> Option<Denial> {
        let name = key.strip_suffix(b".")?;
        self.deny(name.split(|b| *b == b'.').rev())
    }

    /// The proof for `name`.
    pub fn deny_name(&self, name: &LowerName) -> Option<Denial> {
        let labels: Vec<&[u8]> = name.iter().collect();
        self.deny(labels.iter().rev().copied())
    }

    /// Link `i` as records: its NSEC and RRSIGs.
    pub fn records(&self, i: usize) -> &[Record] {
        self.records.get(i).map_or(&[], Vec::as_slice)
    }

    /// Link `i` on the wire: record count, records after their full owner.
    pub fn wire(&self, i: usize) -> (u16, &[u8]) {
        self.wire.get(i).map_or((0, &[][..]), |(n, b)| (*n, &b[..]))
    }

    /// Number of links.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.owners.len()
    }
}

impl SignedZone {
    /// With an NSEC chain: the rcode and authority section (the signed SOA,
    /// then the proof) denying `qtype` at `name`, which has no answer. None
    /// with compact denial, or where the chain proves nothing (a wildcard).
    pub fn chain_denial(
        &self,
        name: &LowerName,
        qtype: RecordType,
    ) -> Option<(ResponseCode, Vec<Record>)> {
        let chain = self.chain.as_ref()?;
        let mut authority = self.negative.clone();
        let denial = chain.deny_name(name)?;
        if let (Denial::Owner(_), Some(proof)) = (denial, self.nodata_for(name, qtype)) {
            authority.extend(proof.iter().cloned());
            return Some((ResponseCode::NoError, authority));
        }
        let (first, second) = denial.links();
        authority.extend(chain.records(first).iter().cloned());
        if let Some(i) = second {
            authority.extend(chain.records(i).iter().cloned());
        }
        Some((denial.rcode(), authority))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A name from dotted text whose labels may be `\DDD` (one octet).
    fn lower(s: &str) -> LowerName {
        let labels: Vec<Vec<u8>> = s
            .trim_end_matches('.')
            .split('.')
            .map(|l| match l.strip_prefix('\\') {
                Some(d) => vec![d.parse::<u8>().expect("\\DDD")],
                None => l.as_bytes().to_vec(),
            })
            .collect();
        let mut name = Name::from_labels(labels).expect("name");
        name.set_fqdn(true);
        LowerName::new(&name)
    }

    /// A chain over `names` (unsigned: no RRSIGs), with `balanced` names
    /// that have both families.
    fn chain(names: &[&str]) -> Chain {
        let mut types: HashMap<LowerName, BTreeSet<RecordType>> = HashMap::new();
        for n in names {
            types.entry(lower(n)).or_default().insert(RecordType::TXT);
        }
        let plan = Plan::new(&types, 60);
        Chain::new(plan.links.into_iter().map(|(n, r)| (n, vec![r])).collect())
    }

    fn next_of(c: &Chain, i: usize) -> String {
        match &c.records(i)[0].data {
            RData::DNSSEC(DNSSECRData::NSEC(n)) => n.next_domain_name().to_string(),
            _ => String::new(),
        }
    }

    fn owner_of(c: &Chain, i: usize) -> String {
        c.records(i)[0].name.to_string()
    }

    #[test]
    fn links_follow_canonical_order_and_wrap_to_the_apex() {
        // RFC 4034 §6.1's own example order, under example.test, given
        // shuffled.
        let sorted = [
            "example.test.",
            "a.example.test.",
            "yljkjljk.a.example.test.",
            "z.a.example.test.",
            "zabc.a.example.test.",
            "z.example.test.",
            "\\001.z.example.test.",
            "*.z.example.test.",
            "\\200.z.example.test.",
        ];
        let mut shuffled = sorted;
        shuffled.reverse();
        shuffled.swap(0, 4);
        let c = chain(&shuffled);
        let order: Vec<String> = (0..c.len()).map(|i| owner_of(&c, i)).collect();
        let want: Vec<String> = sorted.iter().map(|n| lower(n).to_string()).collect();
        assert_eq!(order, want);
        for i in 0..c.len() {
            assert_eq!(next_of(&c, i), owner_of(&c, (i + 1) % c.len()));
        }
    }

    #[test]
    fn denials_name_the_covering_links() {
        let c = chain(&[
            "example.test.",
            "b.example.test.",
            "x.deep.example.test.",
            "m.example.test.",
        ]);
        // Canonical order: apex, b, deep (ENT), x.deep, m.
        let at = |n: &str| (0..c.len()).find(|&i| owner_of(&c, i) == n).expect(n);
        assert_eq!(
            c.deny_key(b"b.example.test."),
            Some(Denial::Owner(at("b.example.test.")))
        );
        // Between b and x.deep, and its wildcard *.example.test between
        // the apex and b.
        assert_eq!(
            c.deny_key(b"c.example.test."),
            Some(Denial::NxDomain {
                covering: at("b.example.test."),
                wildcard: at("example.test."),
            })
        );
        // deep exists (x.deep is below it): NODATA from the link before it.
        assert_eq!(
            c.deny_key(b"deep.example.test."),
            Some(Denial::EmptyNonTerminal(at("b.example.test.")))
        );
        // Below the ENT: the closest encloser is deep, *.deep sorts before
        // x.deep, after b.
        assert_eq!(
            c.deny_key(b"a.deep.example.test."),
            Some(Denial::NxDomain {
                covering: at("b.example.test."),
                wildcard: at("b.example.test."),
            })
        );
        // After the last name: covered by the last link (next: the apex).
        assert_eq!(
            c.deny_key(b"zz.example.test."),
            Some(Denial::NxDomain {
                covering: at("m.example.test."),
                wildcard: at("example.test."),
            })
        );
        // Below a name that exists: that name is the closest encloser.
        assert_eq!(
            c.deny_key(b"q.m.example.test."),
            Some(Denial::NxDomain {
                covering: at("m.example.test."),
                wildcard: at("m.example.test."),
            })
        );
        assert_eq!(c.deny_key(b"other.test."), None, "outside the zone");
        assert_eq!(c.deny_key(b"test."), None);
        // The handler's lookup agrees with the fast path's.
        for n in ["c.example.test.", "deep.example.test.", "q.m.example.test."] {
            assert_eq!(c.deny_name(&lower(n)), c.deny_key(n.as_bytes()), "{n}");
        }
        // A wildcard at the closest encloser: not a plain NXDOMAIN.
        let w = chain(&["example.test.", "*.example.test.", "b.example.test."]);
        assert_eq!(w.deny_key(b"c.example.test."), None);
    }
}
