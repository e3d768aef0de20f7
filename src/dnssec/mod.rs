//! dnssec: signing. A zone with `[dnssec."ZONE"]` keys is signed when its
//! snapshot is built: every RRset of its zone file, its DNSKEY RRset, the
//! NODATA proof of every name (compact denial, RFC 9824: an NSEC from the
//! name to its immediate successor listing the types it has) and, for each
//! balanced name, the answers its pools can give (`sets`). A query with the
//! DO bit is answered from these (the fast path from their `wire` form);
//! what was not prepared (a subset of a large pool, a name that does not
//! exist) is signed on the spot once and kept in a lock-free cache
//! ([`cache`]), so the query path never waits for a lock, and a signature is
//! computed at most once per set and validity period.
//!
//! Signatures are valid from an hour before signing (clock skew) for
//! `signature_validity`; the zones are re-signed in the background
//! `refresh` before the earliest expiry and published through the health
//! writer like any other snapshot change.

pub mod cache;
pub mod chain;
pub mod keys;
mod sets;
mod wire;

#[cfg(test)]
mod tests;

pub use sets::{BalancedKey, BalancedSets, address_records};
use sets::{balanced_sets, family_type, pool_answers};
use wire::tail;
pub use wire::{Wire, WireSigs, wire_key};

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use hickory_proto::dnssec::TBS;
use hickory_proto::dnssec::rdata::{DNSSECRData, NSEC, RRSIG, SigInput};
use hickory_proto::rr::{
    DNSClass, LowerName, Name, RData, Record, RecordSet, RecordType, RrKey, SerialNumber,
};

use crate::config::DnssecConfig;

/// RFC 9824 §3: the NXNAME pseudo-type marks a name that does not exist.
pub const NXNAME: RecordType = RecordType::Unknown(128);
/// Signatures start this long before they are made (resolvers' clocks lag).
const BACKDATE: u32 = 3600;

/// Signatures made since start-up (`geosteer_dnssec_signatures_total`).
pub static SIGNATURES: AtomicU64 = AtomicU64::new(0);

/// A zone's keys and signing policy.
pub struct Signer {
    pub origin: Name,
    pub keys: Vec<keys::Key>,
    /// Seconds a signature is valid.
    pub validity: u32,
    /// Re-sign this long before the earliest expiry.
    pub refresh: u32,
    /// Compact denial or an NSEC chain ([`chain`]).
    pub nsec: crate::config::NsecMode,
}

impl Signer {
    pub fn new(origin: Name, cfg: &DnssecConfig) -> Result<Signer, crate::config::ConfigError> {
        Ok(Signer {
            origin,
            keys: keys::load(cfg)?,
            validity: cfg.validity.as_secs().min(u64::from(u32::MAX / 2)) as u32,
            refresh: cfg.refresh.as_secs().min(u64::from(u32::MAX / 2)) as u32,
            nsec: cfg.nsec,
        })
    }

    /// The RRSIGs over `rrset` (one name, type and TTL), made at `now`
    /// (Unix seconds): by the KSKs for the DNSKEY RRset, else by the ZSKs.
    pub fn sign(&self, rrset: &[Record], now: u32) -> Vec<Record> {
        let Some(first) = rrset.first() else {
            return Vec::new();
        };
        let (name, rtype, ttl) = (&first.name, first.record_type(), first.ttl);
        let mut out = Vec::with_capacity(1);
        for key in &self.keys {
            let wanted = if rtype == RecordType::DNSKEY {
                key.ksk
            } else {
                key.zsk
            };
            if !wanted {
                continue;
            }
            let input = SigInput {
                type_covered: rtype,
                algorithm: key.algorithm(),
                num_labels: name.num_labels(),
                original_ttl: ttl,
                sig_expiration: SerialNumber::new(now.wrapping_add(self.validity)),
                sig_inception: SerialNumber::new(now.wrapping_sub(BACKDATE)),
                key_tag: key.tag,
                signer_name: self.origin.clone(),
            };
            let Ok(tbs) = TBS::from_input(name, DNSClass::IN, &input, rrset.iter()) else {
                continue;
            };
            let Ok(sig) = key.signing.sign(&tbs) else {
                tracing::error!(key = %key.path.display(), "signing failed");
                continue;
            };
            SIGNATURES.fetch_add(1, Ordering::Relaxed);
            let rrsig = RRSIG::from_sig(input, sig);
            out.push(Record::from_rdata(
                name.clone(),
                ttl,
                RData::DNSSEC(DNSSECRData::RRSIG(rrsig)),
            ));
        }
        out
    }

    /// The DNSKEY RRset.
    pub fn dnskeys(&self, ttl: u32) -> Vec<Record> {
        self.keys
            .iter()
            .map(|k| {
                Record::from_rdata(
                    self.origin.clone(),
                    ttl,
                    RData::DNSSEC(DNSSECRData::DNSKEY(k.dnskey.clone())),
                )
            })
            .collect()
    }

    /// Compact denial (RFC 9824): an NSEC from `name` to its immediate
    /// successor (`\000.name`) listing `types` (plus RRSIG and NSEC).
    pub fn nsec(&self, name: &Name, types: &BTreeSet<RecordType>, ttl: u32) -> Record {
        let next = Name::from_labels(std::iter::once(&b"\x00"[..]).chain(name.iter()))
            .unwrap_or_else(|_| name.clone());
        let mut all: BTreeSet<RecordType> = types.clone();
        all.insert(RecordType::RRSIG);
        all.insert(RecordType::NSEC);
        Record::from_rdata(
            name.clone(),
            ttl,
            RData::DNSSEC(DNSSECRData::NSEC(NSEC::new(next, all))),
        )
    }
}

/// What a signed zone answers DO queries from, built with its snapshot.
pub struct SignedZone {
    pub signer: std::sync::Arc<Signer>,
    /// The zone file's RRsets (DNSKEY included) and their RRSIGs.
    pub rrsets: HashMap<RrKey, (Vec<Record>, Vec<Record>)>,
    /// Per existing name (balanced names and empty non-terminals included):
    /// the NODATA proof, NSEC and RRSIGs.
    pub nodata: HashMap<LowerName, Vec<Record>>,
    /// A balanced name's NODATA proof for one family (A or AAAA) when its
    /// pools have addresses of it: the NSEC without that type, for an
    /// empty answer (all down, no address of the family), since a NODATA
    /// proof listing the asked type fails validation (RFC 4035 §3.1.3.1).
    pub family_nodata: HashMap<(LowerName, RecordType), Vec<Record>>,
    /// The negative-answer SOA (TTL lowered to MINIMUM) with its RRSIGs.
    pub negative: Vec<Record>,
    /// NSEC TTL: min(SOA TTL, MINIMUM), RFC 9077.
    pub nsec_ttl: u32,
    /// Balanced answers signed in advance: (name, type, sorted addresses).
    pub balanced: HashMap<BalancedKey, Vec<Record>>,
    /// CNAME answers of balanced names signed in advance: (name, target, TTL).
    pub cnames: HashMap<sets::CnameKey, Vec<Record>>,
    /// When these signatures were made and the earliest one expires (Unix s).
    pub signed_at: u32,
    pub expires: u32,
    /// Answers signed on demand (NXDOMAIN proofs, other endpoint sets).
    pub cache: cache::SigCache,
    /// The same signatures as the UDP fast path writes them (see [`Wire`]).
    pub wire: Wire,
    /// `nsec = "chain"`: the zone's NSEC chain (its links are also the
    /// names' NODATA proofs in `nodata`); None: compact denial.
    pub chain: Option<chain::Chain>,
}

impl SignedZone {
    /// Signs `records` (the zone file's, with `names` every existing name,
    /// empty non-terminals included) and the balanced names' answers, on
    /// every core (`sign_all`).
    pub fn build(
        signer: std::sync::Arc<Signer>,
        records: &std::collections::BTreeMap<RrKey, RecordSet>,
        names: &std::collections::HashSet<LowerName>,
        negative_soa: &Record,
        balanced: &[BalancedSets],
        now: u32,
    ) -> SignedZone {
        let soa_ttl = records
            .iter()
            .find(|(k, _)| k.record_type == RecordType::SOA)
            .and_then(|(_, s)| s.records_without_rrsigs().next())
            .map_or(negative_soa.ttl, |r| r.ttl);
        let nsec_ttl = negative_soa.ttl.min(soa_ttl);
        let origin = LowerName::new(&signer.origin);

        // Every RRset to sign, in one list: the zone file's, the DNSKEY
        // RRset, the SOA at its own TTL, the balanced answers, the NSECs.
        let mut sets: Vec<Vec<Record>> = Vec::new();
        let mut rrset_keys: Vec<RrKey> = Vec::new();
        let mut types: HashMap<LowerName, BTreeSet<RecordType>> = HashMap::new();
        for (key, set) in records {
            sets.push(set.records_without_rrsigs().cloned().collect());
            rrset_keys.push(key.clone());
            types
                .entry(key.name.clone())
                .or_default()
                .insert(key.record_type);
        }
        sets.push(signer.dnskeys(soa_ttl));
        rrset_keys.push(RrKey::new(origin.clone(), RecordType::DNSKEY));
        types.entry(origin).or_default().insert(RecordType::DNSKEY);
        let mut soa_set = negative_soa.clone();
        soa_set.ttl = soa_ttl;
        sets.push(vec![soa_set]);
        let mut balanced_keys: Vec<BalancedKey> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for b in balanced {
            let name = LowerName::new(&b.name);
            let entry = types.entry(name.clone()).or_default();
            for ip in &b.singles {
                entry.insert(family_type(ip));
            }
            if b.hosts {
                entry.insert(RecordType::A);
                entry.insert(RecordType::AAAA);
            }
            let mut answers: Vec<Vec<IpAddr>> = b.singles.iter().map(|ip| vec![*ip]).collect();
            for rtype in [RecordType::A, RecordType::AAAA] {
                // on_all_down = "all": every address of the family.
                let every: Vec<IpAddr> = b
                    .singles
                    .iter()
                    .copied()
                    .filter(|ip| family_type(ip) == rtype)
                    .collect();
                if every.len() > 1 {
                    answers.push(every);
                }
            }
            for pool in &b.pools {
                for rtype in [RecordType::A, RecordType::AAAA] {
                    let mut set: Vec<IpAddr> = pool
                        .iter()
                        .copied()
                        .filter(|ip| family_type(ip) == rtype)
                        .collect();
                    set.sort();
                    if !set.is_empty() {
                        answers.extend(pool_answers(&set, b.answers));
                    }
                }
            }
            // Each answer at both TTLs an answer can carry (ttl, min_ttl).
            for set in answers {
                for &ttl in &b.ttls {
                    let key = (name.clone(), family_type(&set[0]), set.clone(), ttl);
                    if !seen.insert(key.clone()) {
                        continue;
                    }
                    sets.push(address_records(&b.name, ttl, &key.2));
                    balanced_keys.push(key);
                }
            }
        }
        // CNAME answers: each target of each name at each TTL.
        let mut cname_keys: Vec<sets::CnameKey> = Vec::new();
        for b in balanced {
            let name = LowerName::new(&b.name);
            if !b.cnames.is_empty() {
                types
                    .entry(name.clone())
                    .or_default()
                    .insert(RecordType::CNAME);
            }
            for target in &b.cnames {
                for &ttl in &b.ttls {
                    let key = (name.clone(), LowerName::new(target), ttl);
                    if cname_keys.contains(&key) {
                        continue;
                    }
                    sets.push(vec![sets::cname_record(&b.name, ttl, target)]);
                    cname_keys.push(key);
                }
            }
        }
        let mut nsec_names: Vec<LowerName> = Vec::new();
        let mut named = std::collections::HashSet::new();
        // A chain: a link per name that owns records, in canonical order
        // (they are the names' NODATA proofs).
        let plan = (signer.nsec == crate::config::NsecMode::Chain)
            .then(|| chain::Plan::new(&types, nsec_ttl));
        if let Some(plan) = &plan {
            for (name, nsec) in &plan.links {
                sets.push(vec![nsec.clone()]);
                nsec_names.push(name.clone());
            }
        }
        let compact = signer.nsec == crate::config::NsecMode::Compact;
        for name in names.iter().chain(types.keys()).filter(|_| compact) {
            if !named.insert(name) {
                continue;
            }
            let t = types.get(name).cloned().unwrap_or_default();
            sets.push(vec![signer.nsec(&Name::from(name), &t, nsec_ttl)]);
            nsec_names.push(name.clone());
        }
        // A balanced name's per-family proofs: its NSEC without A, without
        // AAAA (only for a family its pools have: else the name's own proof
        // already leaves it out).
        let mut family_keys: Vec<(LowerName, RecordType)> = Vec::new();
        let mut family_seen = std::collections::HashSet::new();
        for b in balanced {
            let name = LowerName::new(&b.name);
            let Some(t) = types.get(&name) else {
                continue;
            };
            for rtype in [RecordType::A, RecordType::AAAA] {
                let key = (name.clone(), rtype);
                if !t.contains(&rtype) || !family_seen.insert(key.clone()) {
                    continue;
                }
                let mut without = t.clone();
                without.remove(&rtype);
                // In a chain: the name's link without the family (same next
                // name: it still covers what the link covers).
                let nsec = match plan.as_ref().and_then(|p| p.next(&name)) {
                    Some(next) => chain::nsec(&name, next, &without, nsec_ttl),
                    None => signer.nsec(&b.name, &without, nsec_ttl),
                };
                sets.push(vec![nsec]);
                family_keys.push(key);
            }
        }

        let mut sigs = sign_all(&signer, &sets, now).into_iter();
        let mut sets = sets.into_iter();
        let mut rrsets = HashMap::new();
        for key in rrset_keys {
            let (Some(rs), Some(s)) = (sets.next(), sigs.next()) else {
                break;
            };
            rrsets.insert(key, (rs, s));
        }
        let mut negative = vec![negative_soa.clone()];
        if let (Some(_), Some(s)) = (sets.next(), sigs.next()) {
            negative.extend(s.into_iter().map(|mut r| {
                r.ttl = negative_soa.ttl;
                r
            }));
        }
        let mut signed_balanced = HashMap::new();
        for key in balanced_keys {
            let (Some(_), Some(s)) = (sets.next(), sigs.next()) else {
                break;
            };
            signed_balanced.insert(key, s);
        }
        let mut signed_cnames = HashMap::new();
        for key in cname_keys {
            let (Some(_), Some(s)) = (sets.next(), sigs.next()) else {
                break;
            };
            signed_cnames.insert(key, s);
        }
        let mut nodata = HashMap::new();
        let mut links = Vec::new();
        for name in nsec_names {
            let (Some(mut proof), Some(s)) = (sets.next(), sigs.next()) else {
                break;
            };
            proof.extend(s);
            if !compact {
                links.push((name.clone(), proof.clone()));
            }
            nodata.insert(name, proof);
        }
        let mut family_nodata = HashMap::new();
        for key in family_keys {
            let (Some(mut proof), Some(s)) = (sets.next(), sigs.next()) else {
                break;
            };
            proof.extend(s);
            family_nodata.insert(key, proof);
        }
        let chain = (!compact).then(|| chain::Chain::new(links));
        let wire = Wire::build(
            &signed_balanced,
            &rrsets,
            &negative,
            &nodata,
            &family_nodata,
        );
        SignedZone {
            wire,
            expires: now.wrapping_add(signer.validity),
            signer,
            rrsets,
            nodata,
            family_nodata,
            negative,
            nsec_ttl,
            balanced: signed_balanced,
            cnames: signed_cnames,
            signed_at: now,
            cache: cache::SigCache::new(4096),
            chain,
        }
    }

    /// The NODATA proof of `name` for a query of `qtype`: a balanced
    /// name's proof without that family for A and AAAA, else the name's.
    pub fn nodata_for(&self, name: &LowerName, qtype: RecordType) -> Option<&Vec<Record>> {
        if matches!(qtype, RecordType::A | RecordType::AAAA)
            && let Some(proof) = self.family_nodata.get(&(name.clone(), qtype))
        {
            return Some(proof);
        }
        self.nodata.get(name)
    }

    /// The RRSIGs of a balanced answer: prepared, cached, or made now.
    pub fn balanced_sigs(&self, answers: &[Record], now: u32) -> Vec<Record> {
        let Some(first) = answers.first() else {
            return Vec::new();
        };
        let mut addrs: Vec<IpAddr> = answers
            .iter()
            .filter_map(|r| match &r.data {
                RData::A(a) => Some(IpAddr::V4(a.0)),
                RData::AAAA(a) => Some(IpAddr::V6(a.0)),
                _ => None,
            })
            .collect();
        addrs.sort();
        let key = (
            LowerName::new(&first.name),
            first.record_type(),
            addrs,
            first.ttl,
        );
        if let Some(sigs) = self.balanced.get(&key) {
            return sigs.clone();
        }
        let mut id = Vec::with_capacity(64);
        id.push(b'B');
        id.extend_from_slice(key.0.to_string().as_bytes());
        id.extend_from_slice(&u16::from(key.1).to_be_bytes());
        id.extend_from_slice(&first.ttl.to_be_bytes());
        for ip in &key.2 {
            id.extend_from_slice(ip.to_string().as_bytes());
            id.push(b',');
        }
        self.cached(id, false, now, || {
            let mut sorted = answers.to_vec();
            sorted.sort();
            self.signer.sign(&sorted, now)
        })
    }

    /// The RRSIGs of a balanced name's CNAME record: prepared with the
    /// zone; one the zone did not prepare (none should reach here) is
    /// signed once and cached.
    pub fn cname_sigs(&self, record: &Record, now: u32) -> Vec<Record> {
        let RData::CNAME(target) = &record.data else {
            return Vec::new();
        };
        let key = (
            LowerName::new(&record.name),
            LowerName::new(&target.0),
            record.ttl,
        );
        if let Some(sigs) = self.cnames.get(&key) {
            return sigs.clone();
        }
        let mut id = Vec::with_capacity(64);
        id.push(b'C');
        id.extend_from_slice(key.0.to_string().as_bytes());
        id.push(b' ');
        id.extend_from_slice(key.1.to_string().as_bytes());
        id.extend_from_slice(&record.ttl.to_be_bytes());
        self.cached(id, false, now, || {
            self.signer.sign(std::slice::from_ref(record), now)
        })
    }

    /// The compact NXDOMAIN proof for `name` (NSEC with NXNAME, signed).
    pub fn nxname(&self, name: &Name, now: u32) -> Vec<Record> {
        let lower = name.to_lowercase();
        let mut id = Vec::with_capacity(64);
        id.push(b'N');
        id.extend_from_slice(lower.to_string().as_bytes());
        self.cached(id, true, now, || {
            let types: BTreeSet<RecordType> = [NXNAME].into_iter().collect();
            let nsec = self.signer.nsec(&lower, &types, self.nsec_ttl);
            let mut proof = vec![nsec.clone()];
            proof.extend(self.signer.sign(&[nsec], now));
            proof
        })
    }

    /// The cached records for `id`, or `make`'s, cached (with their wire
    /// form when `wire`: the fast path serves NXDOMAIN proofs from it).
    fn cached(
        &self,
        id: Vec<u8>,
        wire: bool,
        now: u32,
        make: impl FnOnce() -> Vec<Record>,
    ) -> Vec<Record> {
        if let Some(hit) = self.cache.get(&id, now) {
            return hit;
        }
        let made = make();
        let tails = if wire {
            made.iter().filter_map(tail).collect()
        } else {
            Vec::new()
        };
        // Reused until `refresh` before it expires.
        let good_until = now
            .wrapping_add(self.signer.validity)
            .wrapping_sub(self.signer.refresh);
        self.cache.put(id, made.clone(), tails, good_until);
        made
    }

    /// Calls `f` with the cached NXDOMAIN proof of `name` (the fast path's
    /// query key: lower case, trailing dot) as records after their owner.
    pub fn nxname_wire<T>(
        &self,
        name: &[u8],
        now: u32,
        f: impl FnOnce(&[Vec<u8>]) -> T,
    ) -> Option<T> {
        let mut id = [0u8; 1 + 256];
        let key = id.get_mut(..1 + name.len())?;
        key[0] = b'N';
        key[1..].copy_from_slice(name);
        self.cache.with_wire(key, now, f)
    }

    /// Whether the signatures are due for refreshing at `now`: `refresh`
    /// before they expire, compared as serial numbers (RFC 4034 §3.1.5), as
    /// the signature cache does, so the 32-bit wrap changes nothing.
    pub fn due(&self, now: u32) -> bool {
        now.wrapping_add(self.signer.refresh)
            .wrapping_sub(self.expires) as i32
            >= 0
    }
}

/// The RRSIGs of each of `sets`, in order, signed on every core: at load,
/// 10,000 balanced names make some 100,000 signatures.
fn sign_all(signer: &Signer, sets: &[Vec<Record>], now: u32) -> Vec<Vec<Record>> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(16);
    if threads == 1 || sets.len() < 512 {
        return sets.iter().map(|s| signer.sign(s, now)).collect();
    }
    let chunk = sets.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = sets
            .chunks(chunk)
            .map(|c| {
                (
                    c,
                    scope.spawn(move || c.iter().map(|s| signer.sign(s, now)).collect::<Vec<_>>()),
                )
            })
            .collect();
        let mut out = Vec::with_capacity(sets.len());
        for (c, h) in handles {
            match h.join() {
                Ok(v) => out.extend(v),
                // A signing thread that panicked: sign its share here.
                Err(_) => out.extend(c.iter().map(|s| signer.sign(s, now))),
            }
        }
        out
    })
}

/// What one signed zone is signed from, kept to re-sign it.
struct Inputs {
    signer: std::sync::Arc<Signer>,
    records: std::sync::Arc<std::collections::BTreeMap<RrKey, RecordSet>>,
    names: std::collections::HashSet<LowerName>,
    negative_soa: Record,
    balanced: Vec<BalancedSets>,
}

/// The signed data of every zone, in the snapshot beside the zones.
#[derive(Default)]
pub struct Signatures {
    /// Per zone, in `Zones::iter()` order.
    pub zones: Vec<Option<std::sync::Arc<SignedZone>>>,
    inputs: Vec<Option<std::sync::Arc<Inputs>>>,
}

impl Signatures {
    /// Loads the keys of every `[dnssec]` zone and signs it at `now`.
    pub fn build(
        config: &crate::config::Config,
        zones: &crate::zone::Zones,
        now: u32,
    ) -> Result<Signatures, crate::config::ConfigErrors> {
        let mut out = Signatures::default();
        let mut errors = Vec::new();
        for (zc, zone) in config.zones.iter().zip(zones.iter()) {
            let (Some(cfg), Some(records)) = (&zc.dnssec, &zone.records) else {
                out.zones.push(None);
                out.inputs.push(None);
                continue;
            };
            let origin = Name::from(&zone.origin);
            let signer =
                Signer::new(origin.clone(), cfg).and_then(|s| {
                    match keys::mixed_algorithms(&s.keys) {
                        None => Ok(s),
                        Some(why) => {
                            let zone = zone.origin.to_string();
                            Err(crate::config::ConfigError::new(
                                &config.path,
                                format!("dnssec.\"{}\".ksk", zone.trim_end_matches('.')),
                                why,
                            ))
                        }
                    }
                });
            let signer = match signer {
                Ok(s) => std::sync::Arc::new(s),
                Err(e) => {
                    errors.push(e);
                    out.zones.push(None);
                    out.inputs.push(None);
                    continue;
                }
            };
            let inputs = std::sync::Arc::new(Inputs {
                signer,
                records: records.clone(),
                names: zone.names().clone(),
                negative_soa: zone.negative_soa.clone(),
                balanced: balanced_sets(config, &zone.origin),
            });
            out.zones.push(Some(std::sync::Arc::new(inputs.sign(now))));
            out.inputs.push(Some(inputs));
        }
        if errors.is_empty() {
            Ok(out)
        } else {
            Err(crate::config::ConfigErrors(errors))
        }
    }

    /// The same zones signed again at `now` (the refresh).
    pub fn resign(&self, now: u32) -> Signatures {
        Signatures {
            zones: self
                .inputs
                .iter()
                .map(|i| i.as_ref().map(|i| std::sync::Arc::new(i.sign(now))))
                .collect(),
            inputs: self.inputs.clone(),
        }
    }

    /// Whether any zone is signed.
    pub fn any(&self) -> bool {
        self.zones.iter().any(Option::is_some)
    }

    /// Whether some zone's signatures are within `refresh` of expiring.
    pub fn due(&self, now: u32) -> bool {
        self.zones.iter().flatten().any(|z| z.due(now))
    }

    /// The earliest signature expiry (Unix seconds), if any zone is signed.
    pub fn earliest_expiry(&self) -> Option<u32> {
        self.zones.iter().flatten().map(|z| z.expires).min()
    }

    /// The signers of the signed zones.
    pub fn signers(&self) -> impl Iterator<Item = &Signer> {
        self.inputs.iter().flatten().map(|i| &*i.signer)
    }

    pub fn zone(&self, index: usize) -> Option<&SignedZone> {
        self.zones.get(index)?.as_deref()
    }
}

impl Inputs {
    fn sign(&self, now: u32) -> SignedZone {
        SignedZone::build(
            self.signer.clone(),
            &self.records,
            &self.names,
            &self.negative_soa,
            &self.balanced,
            now,
        )
    }
}
