//! wire: the prepared signatures as the UDP fast path writes them: RRSIG
//! records whose owner is a pointer into the question, and NODATA proofs as
//! records after their owner names, found by hashed keys without
//! allocating.

use std::collections::HashMap;
use std::net::IpAddr;

use hickory_proto::rr::{LowerName, Record, RecordType, RrKey};

/// RRSIG records on the wire, owner a pointer to the question name: what
/// the fast path appends to an answer it wrote itself.
#[derive(Default)]
pub struct WireSigs {
    pub count: u16,
    pub bytes: Vec<u8>,
}

/// Prepared RRSIGs, found without allocating: balanced answers by
/// [`wire_key`] of (name, type, TTL, sorted addresses), the zone file's
/// RRsets by (name, type).
#[derive(Default)]
pub struct Wire {
    balanced: rustc_hash::FxHashMap<u64, (Vec<IpAddr>, WireSigs)>,
    rrsets: rustc_hash::FxHashMap<u64, (Box<[u8]>, WireSigs)>,
    /// NODATA: the records owned by the zone's apex (the SOA at its
    /// negative TTL, its RRSIGs) and, per name, those it owns (its NSEC,
    /// their RRSIGs), each after its owner name: the fast path writes the
    /// owner as a pointer into the question. Keyed by (name, 0), and a
    /// balanced name's per-family proofs by (name, A or AAAA).
    pub negative: Vec<Vec<u8>>,
    nodata: rustc_hash::FxHashMap<u64, (Box<[u8]>, Tails)>,
}

/// Records after their owner names (see [`Wire::negative`]).
type Tails = Vec<Vec<u8>>;

/// The key of a prepared answer: `name` is the lower-case presentation form
/// with the trailing dot (the fast path's `Query::key`), `addrs` sorted.
pub fn wire_key(name: &[u8], rtype: u16, ttl: u32, addrs: &[IpAddr]) -> u64 {
    use std::hash::{BuildHasher, Hash, Hasher};
    let mut h = rustc_hash::FxBuildHasher.build_hasher();
    name.hash(&mut h);
    rtype.hash(&mut h);
    ttl.hash(&mut h);
    addrs.hash(&mut h);
    h.finish()
}

impl Wire {
    /// The wire forms of a signed zone's prepared answers: balanced sets
    /// (name, type, sorted addresses) and zone-file RRsets with their
    /// RRSIGs, the apex's negative records and each name's NODATA proof.
    pub fn build(
        balanced: &HashMap<super::BalancedKey, Vec<Record>>,
        rrsets: &HashMap<RrKey, (Vec<Record>, Vec<Record>)>,
        negative: &[Record],
        nodata: &HashMap<LowerName, Vec<Record>>,
        family_nodata: &HashMap<(LowerName, RecordType), Vec<Record>>,
    ) -> Wire {
        let mut wire = Wire::default();
        for ((name, rtype, addrs, _), sigs) in balanced {
            let key = name.to_string();
            let Some(ttl) = sigs.first().map(|s| s.ttl) else {
                continue;
            };
            wire.balanced.insert(
                wire_key(key.as_bytes(), u16::from(*rtype), ttl, addrs),
                (addrs.clone(), wire_sigs(sigs)),
            );
        }
        for (key, (_, sigs)) in rrsets {
            let name = key.name.to_string();
            wire.rrsets.insert(
                wire_key(name.as_bytes(), u16::from(key.record_type), 0, &[]),
                (name.into_bytes().into_boxed_slice(), wire_sigs(sigs)),
            );
        }
        wire.negative = negative.iter().filter_map(tail).collect();
        for (name, proof) in nodata {
            let key = name.to_string();
            wire.nodata.insert(
                wire_key(key.as_bytes(), 0, 0, &[]),
                (
                    key.into_bytes().into_boxed_slice(),
                    proof.iter().filter_map(tail).collect(),
                ),
            );
        }
        for ((name, rtype), proof) in family_nodata {
            let key = name.to_string();
            wire.nodata.insert(
                wire_key(key.as_bytes(), u16::from(*rtype), 0, &[]),
                (
                    key.into_bytes().into_boxed_slice(),
                    proof.iter().filter_map(tail).collect(),
                ),
            );
        }
        wire
    }

    /// The RRSIGs of a balanced answer of `addrs` (sorted), if prepared.
    pub fn balanced(
        &self,
        name: &[u8],
        rtype: u16,
        ttl: u32,
        addrs: &[IpAddr],
    ) -> Option<&WireSigs> {
        let (set, sigs) = self.balanced.get(&wire_key(name, rtype, ttl, addrs))?;
        (set.as_slice() == addrs).then_some(sigs)
    }

    /// The NODATA proof of `name` (records after their owner), if it exists.
    pub fn nodata(&self, name: &[u8]) -> Option<&[Vec<u8>]> {
        self.nodata_keyed(name, 0)
    }

    /// The NODATA proof of `name` for an empty answer to `rtype`: a
    /// balanced name's proof without that family (A, AAAA), else
    /// [`Wire::nodata`].
    pub fn nodata_for(&self, name: &[u8], rtype: u16) -> Option<&[Vec<u8>]> {
        self.nodata_keyed(name, rtype)
            .or_else(|| self.nodata_keyed(name, 0))
    }

    fn nodata_keyed(&self, name: &[u8], rtype: u16) -> Option<&[Vec<u8>]> {
        let (owner, tails) = self.nodata.get(&wire_key(name, rtype, 0, &[]))?;
        (&**owner == name).then_some(tails.as_slice())
    }

    /// The RRSIGs of the zone file's RRset `name`/`rtype`.
    pub fn rrset(&self, name: &[u8], rtype: u16) -> Option<&WireSigs> {
        let (owner, sigs) = self.rrsets.get(&wire_key(name, rtype, 0, &[]))?;
        (&**owner == name).then_some(sigs)
    }
}

/// A record's RDATA on its own, names uncompressed (a compression pointer
/// would point into this buffer, not the message it ends up in).
fn rdata_wire(r: &Record) -> Option<Vec<u8>> {
    use hickory_proto::serialize::binary::{BinEncodable, BinEncoder, NameEncoding};
    let mut rdata = Vec::with_capacity(128);
    let mut enc = BinEncoder::new(&mut rdata);
    r.data
        .emit(&mut enc.with_name_encoding(NameEncoding::Uncompressed))
        .ok()?;
    Some(rdata)
}

/// A record after its owner name: type, class, TTL, RDLENGTH, RDATA.
pub(super) fn tail(r: &Record) -> Option<Vec<u8>> {
    let rdata = rdata_wire(r)?;
    let len = u16::try_from(rdata.len()).ok()?;
    let mut out = Vec::with_capacity(10 + rdata.len());
    out.extend_from_slice(&u16::from(r.record_type()).to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes());
    out.extend_from_slice(&r.ttl.to_be_bytes());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&rdata);
    Some(out)
}

/// `sigs` as RRSIG records whose owner points at the question (offset 12).
fn wire_sigs(sigs: &[Record]) -> WireSigs {
    let mut out = WireSigs::default();
    for r in sigs {
        let Some(rdata) = rdata_wire(r) else {
            continue;
        };
        let Ok(len) = u16::try_from(rdata.len()) else {
            continue;
        };
        out.bytes.extend_from_slice(&[0xc0, 12]);
        out.bytes
            .extend_from_slice(&u16::from(RecordType::RRSIG).to_be_bytes());
        out.bytes.extend_from_slice(&1u16.to_be_bytes());
        out.bytes.extend_from_slice(&r.ttl.to_be_bytes());
        out.bytes.extend_from_slice(&len.to_be_bytes());
        out.bytes.extend_from_slice(&rdata);
        out.count += 1;
    }
    out
}
