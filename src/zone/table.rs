//! table: the static side of the fast path, compiled once per config load
//! from the zone files: for every name, the encoded answer sections of each
//! RRset it holds, and for every zone its negative-answer SOA, so that a query
//! for a static name is a hash lookup and a copy.
//!
//! Only what hickory answers as a plain RRset fetch is compiled. A zone with
//! wildcards, delegations, DNAME/ANAME or DNSSEC records, a name with a CNAME,
//! and the types hickory adds additional records for (NS, MX, SRV) are marked
//! `Fallback`, and those queries go to the hickory catalog.

use std::collections::{BTreeMap, HashMap};

use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{LowerName, Name, Record, RecordSet, RecordType, RrKey};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder, NameEncoding};

/// The DNS header's length: fragments are laid out as if the question sits
/// right after it (`dns::fast::wire::HEADER`, which `zone` does not name).
const HEADER: usize = 12;

/// Encoded response sections for one (name, type), laid out as if the
/// question (same name, any case: same length) sits at offset 12, so the
/// compression pointers in `body` stay valid in the real response.
#[derive(Debug)]
pub struct Fragment {
    pub answers: u16,
    pub authorities: u16,
    pub additionals: u16,
    pub body: Box<[u8]>,
}

/// One RRset of a name.
#[derive(Debug)]
pub enum Rrset {
    Answer(Fragment),
    /// hickory adds records (NS, MX, SRV additionals): ask it.
    Fallback,
}

/// A name that exists in a zone: it owns records, is an empty non-terminal,
/// or is balanced.
#[derive(Debug)]
pub struct NameEntry {
    /// Index into the zones.
    pub zone: u32,
    /// Every query at this name goes to hickory (it has a CNAME).
    pub fallback: bool,
    /// A and AAAA come from steering: the name's index in the config's
    /// `[[balance]]` list, which is its place in `steer::SteeringTable`.
    pub balanced: Option<u32>,
    rrsets: Box<[(u16, Rrset)]>,
}

impl NameEntry {
    pub fn rrset(&self, qtype: u16) -> Option<&Rrset> {
        self.rrsets
            .iter()
            .find(|(t, _)| *t == qtype)
            .map(|(_, r)| r)
    }
}

/// What the fast path needs of one zone.
#[derive(Debug)]
pub struct WireZone {
    /// hickory's lookup in this zone is a plain RRset fetch (see module doc).
    pub simple: bool,
    /// Wire length of the origin name.
    pub origin_len: usize,
    /// The negative answers' SOA after its owner name (which the response
    /// points at inside the question): type, class, TTL = min(TTL, MINIMUM)
    /// as RFC 2308 §3 asks, RDLENGTH and uncompressed RDATA.
    pub soa_tail: Box<[u8]>,
    /// Its place in `Zones::iter()` (and the snapshot's signatures).
    pub index: u32,
}

/// A name's key in the tables: its lower-case presentation form, as
/// `dns::fast::wire::Query::key` spells the question.
fn key_of(name: &LowerName) -> Box<[u8]> {
    name.to_string().into_bytes().into_boxed_slice()
}

/// Where a name falls.
pub enum Found<'t> {
    Name(&'t NameEntry, &'t WireZone),
    /// Not a name of the zone that holds it: NXDOMAIN.
    Missing(&'t WireZone),
    /// In no served zone: REFUSED.
    Outside,
}

/// Every served name and zone, by lower-case presentation name
/// (`www.example.test.`, as `LowerName` displays it).
#[derive(Debug, Default)]
pub struct WireZones {
    // FxHash: the keys come from zone data, so a query cannot pick collisions.
    names: HashMap<Box<[u8]>, NameEntry, rustc_hash::FxBuildHasher>,
    origins: HashMap<Box<[u8]>, u32, rustc_hash::FxBuildHasher>,
    zones: Vec<WireZone>,
}

/// A name of one zone: whether it falls back, and its RRsets by type.
type CompiledName = (LowerName, bool, Vec<(u16, Rrset)>);

/// One zone compiled, before the zones are merged.
pub struct ZoneFragments {
    origin: LowerName,
    zone: WireZone,
    names: Vec<CompiledName>,
}

/// Compiles one zone from its records.
pub fn compile_zone(
    origin: &LowerName,
    records: &BTreeMap<RrKey, RecordSet>,
    negative_soa: &Record,
) -> ZoneFragments {
    let simple = records.keys().all(|k| plain(origin, k));
    let apex_ns = records.get(&RrKey::new(origin.clone(), RecordType::NS));
    let mut names: Vec<CompiledName> = Vec::new();
    for (key, set) in records {
        if names.last().is_none_or(|(n, _, _)| *n != key.name) {
            names.push((key.name.clone(), false, Vec::new()));
        }
        let Some((_, fallback, rrsets)) = names.last_mut() else {
            continue;
        };
        let rtype = key.record_type;
        if rtype == RecordType::CNAME {
            *fallback = true;
        }
        let rrset = match rtype {
            RecordType::NS | RecordType::MX | RecordType::SRV => Rrset::Fallback,
            // A positive SOA answer carries the apex NS set (hickory does).
            RecordType::SOA => {
                fragment(&key.name, rtype, set, apex_ns).map_or(Rrset::Fallback, Rrset::Answer)
            }
            _ => fragment(&key.name, rtype, set, None).map_or(Rrset::Fallback, Rrset::Answer),
        };
        rrsets.push((u16::from(rtype), rrset));
    }
    // Empty non-terminals between each name and the origin exist too.
    let mut ents = Vec::new();
    for (name, _, _) in &names {
        let mut n = Name::from(name);
        while n.num_labels() > origin.num_labels() {
            n = n.base_name();
            ents.push(LowerName::new(&n));
        }
    }
    for n in ents {
        if !names.iter().any(|(m, _, _)| *m == n) {
            names.push((n, false, Vec::new()));
        }
    }
    ZoneFragments {
        origin: origin.clone(),
        zone: WireZone {
            simple,
            origin_len: wire_len(origin),
            soa_tail: soa_tail(negative_soa, origin).into_boxed_slice(),
            index: 0,
        },
        names,
    }
}

/// True when hickory serves this record as a plain RRset of its name.
fn plain(origin: &LowerName, key: &RrKey) -> bool {
    let wildcard = key.name.is_wildcard();
    let delegation = key.record_type == RecordType::NS && key.name != *origin;
    let special = matches!(
        key.record_type,
        RecordType::DNAME
            | RecordType::ANAME
            | RecordType::RRSIG
            | RecordType::NSEC
            | RecordType::NSEC3
            | RecordType::NSEC3PARAM
            | RecordType::DNSKEY
            | RecordType::DS
            | RecordType::CDS
            | RecordType::CDNSKEY
    );
    !(wildcard || delegation || special)
}

/// Encodes a response with the question (name, rtype) and these sections,
/// and keeps what follows the question.
fn fragment(
    name: &LowerName,
    rtype: RecordType,
    set: &RecordSet,
    authority: Option<&RecordSet>,
) -> Option<Fragment> {
    let name = Name::from(name);
    let mut m = Message::new(0, MessageType::Response, OpCode::Query);
    m.add_query(Query::query(name.clone(), rtype));
    m.answers = set.records_without_rrsigs().cloned().collect();
    if let Some(ns) = authority {
        m.authorities = ns.records_without_rrsigs().cloned().collect();
    }
    let bytes = m.to_vec().ok()?;
    let skip = HEADER + name_wire_len(&name) + 4;
    let body = bytes.get(skip..)?;
    Some(Fragment {
        answers: u16::try_from(m.answers.len()).ok()?,
        authorities: u16::try_from(m.authorities.len()).ok()?,
        additionals: 0,
        body: body.into(),
    })
}

fn wire_len(name: &LowerName) -> usize {
    name_wire_len(&Name::from(name))
}

/// Length octets plus label bytes plus the root's zero octet.
fn name_wire_len(name: &Name) -> usize {
    name.iter().map(|l| l.len() + 1).sum::<usize>() + 1
}

/// The SOA record encoded without compression, minus its owner name.
fn soa_tail(soa: &Record, origin: &LowerName) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut enc = BinEncoder::new(&mut buf);
    enc.set_name_encoding(NameEncoding::Uncompressed);
    if soa.emit(&mut enc).is_err() {
        return Vec::new();
    }
    buf.split_off(wire_len(origin).min(buf.len()))
}

impl WireZones {
    /// Merges the zones. A name belongs to the most specific zone holding it,
    /// as in hickory's catalog; `balanced` names exist wherever they fall.
    /// `balanced`: each balanced name with its index in `[[balance]]`.
    pub fn build(compiled: Vec<ZoneFragments>, balanced: &[(u32, LowerName)]) -> WireZones {
        let mut out = WireZones::default();
        let origins: Vec<LowerName> = compiled.iter().map(|z| z.origin.clone()).collect();
        let owner = |name: &LowerName| {
            origins
                .iter()
                .enumerate()
                .filter(|(_, o)| o.zone_of(name))
                .max_by_key(|(_, o)| o.num_labels())
                .map(|(i, _)| i)
        };
        for (i, z) in compiled.into_iter().enumerate() {
            out.origins.insert(key_of(&z.origin), i as u32);
            for (name, fallback, rrsets) in z.names {
                if owner(&name) != Some(i) {
                    continue;
                }
                out.names.insert(
                    key_of(&name),
                    NameEntry {
                        zone: i as u32,
                        fallback,
                        balanced: None,
                        rrsets: rrsets.into_boxed_slice(),
                    },
                );
            }
            let mut zone = z.zone;
            zone.index = i as u32;
            out.zones.push(zone);
        }
        for (index, name) in balanced {
            if let Some(i) = owner(name) {
                let mut n = Name::from(name);
                let mut first = Some(*index);
                loop {
                    let e = out
                        .names
                        .entry(key_of(&LowerName::new(&n)))
                        .or_insert_with(|| NameEntry {
                            zone: i as u32,
                            fallback: false,
                            balanced: None,
                            rrsets: Box::new([]),
                        });
                    if first.is_some() {
                        e.balanced = first.take();
                    }
                    if n.num_labels() <= origins[i].num_labels() {
                        break;
                    }
                    n = n.base_name();
                }
            }
        }
        out
    }

    /// Finds `key` (lower-case presentation form, trailing dot).
    pub fn find(&self, key: &[u8]) -> Found<'_> {
        if let Some(e) = self.names.get(key) {
            return match self.zones.get(e.zone as usize) {
                Some(z) => Found::Name(e, z),
                None => Found::Outside,
            };
        }
        // Walk up: each suffix after a dot, then the root.
        let suffixes = key
            .iter()
            .enumerate()
            .filter(|(_, c)| **c == b'.')
            .map(|(i, _)| &key[i + 1..])
            .filter(|s| !s.is_empty())
            .chain(std::iter::once(&b"."[..]));
        for s in suffixes {
            if let Some(&i) = self.origins.get(s) {
                return match self.zones.get(i as usize) {
                    Some(z) => Found::Missing(z),
                    None => Found::Outside,
                };
            }
        }
        Found::Outside
    }
}
