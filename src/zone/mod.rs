//! zone: loads RFC 1035 master files into a hickory `Catalog`, which answers
//! every name that is not balanced (NXDOMAIN, NODATA, REFUSED, CNAME, ...),
//! and keeps what the balanced path needs from each zone: its SOA for negative
//! answers and which RRsets exist. `table` compiles the same records into
//! wire fragments for the UDP fast path (`dns::fast` only looks them up).
//!
//! Zone files are read as BIND reads them: `bind` rewrites the text for
//! hickory's parser (`$GENERATE`, `$INCLUDE` with an origin, `@` in RDATA, the
//! SOA MINIMUM as default TTL), one record per line, remembering where each
//! line came from. hickory's parser reports no line numbers, so on a parse
//! error we find the first failing record by re-parsing prefixes (`line`):
//! error path only.

pub mod bind;
pub mod history;
mod line;
pub mod table;

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use hickory_proto::rr::{LowerName, Name, RData, Record, RecordSet, RecordType, RrKey};
use hickory_proto::serialize::txt::Parser;
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{AxfrPolicy, Catalog, ZoneHandler, ZoneType};

use crate::config::{Config, ConfigError, ConfigErrors, TransferConfig, Warning, ZoneConfig};
use table::{WireZones, ZoneFragments};

/// One loaded zone.
pub struct Zone {
    pub origin: LowerName,
    /// The SOA to put in the authority section of negative answers, with its
    /// TTL lowered to the SOA MINIMUM as RFC 2308 §3 asks.
    pub negative_soa: Record,
    rrsets: HashSet<RrKey>,
    names: HashSet<LowerName>,
    /// The zone file's records now and at earlier serials (transfers).
    pub versions: history::Versions,
    /// `[transfer."ZONE"]`: None refuses transfers.
    pub transfer: Option<TransferConfig>,
    /// The zone file's records, kept for signing when `[dnssec."ZONE"]` is set.
    pub records: Option<Arc<BTreeMap<RrKey, RecordSet>>>,
}

impl Zone {
    pub fn has_rrset(&self, name: &LowerName, rtype: RecordType) -> bool {
        self.rrsets.contains(&RrKey::new(name.clone(), rtype))
    }

    /// The types the zone file holds at `name`, sorted (one pass over the
    /// zone's RRsets: for check, not per query).
    pub fn types_at(&self, name: &LowerName) -> Vec<RecordType> {
        let mut types: Vec<RecordType> = self
            .rrsets
            .iter()
            .filter(|k| k.name == *name)
            .map(|k| k.record_type)
            .collect();
        types.sort_by_key(|t| u16::from(*t));
        types
    }

    /// Every name that exists in the zone (empty non-terminals and balanced
    /// names included).
    pub fn names(&self) -> &HashSet<LowerName> {
        &self.names
    }
}

/// Every served zone, plus the catalog that answers from them.
pub struct Zones {
    pub catalog: Catalog,
    /// The same zones compiled for the UDP fast path.
    pub wire: WireZones,
    /// What BIND would warn about in the zone files (`geosteer check` prints them).
    pub warnings: Vec<Warning>,
    zones: Vec<Zone>,
}

/// One zone file, loaded.
struct LoadedZone {
    zone: Zone,
    handler: Arc<dyn ZoneHandler>,
    wire: ZoneFragments,
    warnings: Vec<Warning>,
}

impl Zones {
    /// Reads and parses every zone file; checks that no balanced name also has
    /// A or AAAA records in its zone file.
    pub fn load(config: &Config) -> Result<Zones, ConfigErrors> {
        let mut errors = Vec::new();
        let mut warnings = Vec::new();
        let mut catalog = Catalog::new();
        let mut zones = Vec::new();
        let mut fragments = Vec::new();
        for zc in &config.zones {
            match load_zone(zc) {
                Ok(z) => {
                    catalog.upsert(z.zone.origin.clone(), vec![z.handler]);
                    zones.push(z.zone);
                    fragments.push(z.wire);
                    warnings.extend(z.warnings);
                }
                Err(e) => errors.extend(e),
            }
        }
        let mut set = Zones {
            catalog,
            wire: WireZones::default(),
            warnings,
            zones,
        };
        for (i, b) in config.balance.iter().enumerate() {
            let Ok(name) = Name::from_str(&b.name) else {
                continue;
            };
            let name = LowerName::new(&name);
            // A name that can answer a CNAME holds no other data
            // (RFC 1034 §3.6.2): every type at it is refused.
            let cname = b.reachable_pools().any(|p| {
                config
                    .pools
                    .get(p.index())
                    .is_some_and(|p| p.answers_cname())
            });
            if let Some((zi, zone)) = set.find_indexed(&name) {
                let types = if cname {
                    zone.types_at(&name)
                } else {
                    vec![RecordType::A, RecordType::AAAA, RecordType::CNAME]
                };
                for rtype in types {
                    if zone.has_rrset(&name, rtype) {
                        let path = &config.zones[zi].path;
                        let at = line::locate(path, &Name::from(&zone.origin), &name, rtype);
                        let (file, line) = match &at {
                            Some((f, l)) => (f.as_path(), Some(*l)),
                            None => (path.as_path(), None),
                        };
                        errors.push(
                            ConfigError::new(
                                file,
                                format!("balance[{i}].name"),
                                if cname {
                                    format!(
                                        "balanced name in the zone file: {} answers CNAMEs (a pool of cname endpoints), so its zone file must hold no record for it, here {rtype} (RFC 1034 §3.6.2: CNAME and other data)",
                                        b.name
                                    )
                                } else {
                                    format!(
                                        "balanced name in the zone file: {} is balanced, so its zone file must not hold {rtype} records for it",
                                        b.name
                                    )
                                },
                            )
                            .at_line(line),
                        );
                    }
                }
            }
        }
        if errors.is_empty() {
            // Balanced names exist even where the zone file has no record for them.
            let mut balanced = Vec::new();
            for (index, b) in config.balance.iter().enumerate() {
                if let Ok(name) = Name::from_str(&b.name) {
                    let name = LowerName::new(&name);
                    if let Some(i) = set.find_indexed(&name).map(|(i, _)| i) {
                        set.zones[i].names.insert(name.clone());
                    }
                    balanced.push((index as u32, name));
                }
            }
            set.wire = WireZones::build(fragments, &balanced);
            Ok(set)
        } else {
            Err(ConfigErrors(errors))
        }
    }

    /// Takes over each zone's transfer history from `previous` (the zones
    /// the last snapshot served). Returns, per zone, what the operator should
    /// hear about its serial.
    pub fn carry_history(&mut self, previous: &Zones) -> Vec<String> {
        let mut notes = Vec::new();
        for zone in &mut self.zones {
            let Some(old) = previous.zones.iter().find(|z| z.origin == zone.origin) else {
                continue;
            };
            if let Some(note) = zone.versions.carry(&old.versions) {
                notes.push(format!("zone {}: {note}", zone.origin));
            }
        }
        notes
    }

    /// The zone whose apex is `origin` exactly.
    pub fn apex(&self, origin: &LowerName) -> Option<&Zone> {
        self.zones.iter().find(|z| &z.origin == origin)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Zone> {
        self.zones.iter()
    }

    /// The zone holding `name` (longest matching origin).
    pub fn find(&self, name: &LowerName) -> Option<&Zone> {
        self.find_indexed(name).map(|(_, z)| z)
    }

    /// The index (in `iter()` order) of the zone holding `name`.
    pub fn find_index(&self, name: &LowerName) -> Option<usize> {
        self.find_indexed(name).map(|(i, _)| i)
    }

    fn find_indexed(&self, name: &LowerName) -> Option<(usize, &Zone)> {
        self.zones
            .iter()
            .enumerate()
            .filter(|(_, z)| z.origin.zone_of(name))
            .max_by_key(|(_, z)| z.origin.num_labels())
    }
}

fn load_zone(zc: &ZoneConfig) -> Result<LoadedZone, Vec<ConfigError>> {
    let path = &zc.path;
    let (records, warnings) = read_zone(path, &zc.origin).map_err(|e| vec![e])?;
    let origin = Name::from_str(&zc.origin).map_err(|e| {
        vec![ConfigError::file(
            path,
            format!("bad zone origin {}: {e}", zc.origin),
        )]
    })?;
    let lower_origin = LowerName::new(&origin);
    let problems = content_rules(&records, path, &origin);
    if !problems.is_empty() {
        return Err(problems);
    }
    let mut rrsets = HashSet::new();
    let mut names = HashSet::new();
    for key in records.keys() {
        rrsets.insert(key.clone());
        // Every ancestor up to the origin exists too (empty non-terminals).
        let mut n: Name = Name::from(&key.name);
        loop {
            names.insert(LowerName::new(&n));
            if n.num_labels() <= origin.num_labels() {
                break;
            }
            n = n.base_name();
        }
    }
    let soa_key = RrKey::new(lower_origin.clone(), RecordType::SOA);
    let negative_soa = records
        .get(&soa_key)
        .and_then(|set| set.records_without_rrsigs().next())
        .and_then(|r| match &r.data {
            RData::SOA(soa) => {
                let mut rec = r.clone();
                rec.ttl = r.ttl.min(soa.minimum);
                Some(rec)
            }
            _ => None,
        })
        .ok_or_else(|| {
            vec![ConfigError::file(
                path,
                format!("no SOA at the apex: zone {origin} has no SOA record at {origin} (a rule of the whole file: no line)"),
            )]
        })?;
    if zc.dnssec.is_some()
        && let Err((name, rtype, why)) = unsigned_features(&records, &lower_origin)
    {
        return Err(vec![refused(path, &origin, &name, rtype, why)]);
    }
    let kept = zc.dnssec.as_ref().map(|_| Arc::new(records.clone()));
    let wire = table::compile_zone(&lower_origin, &records, &negative_soa);
    let content = history::Content::new(&records, zc.transfer.is_some()).ok_or_else(|| {
        vec![ConfigError::file(
            path,
            format!("no SOA at the apex: zone {origin} has no SOA record"),
        )]
    })?;
    let handler = InMemoryZoneHandler::<hickory_server::net::runtime::TokioRuntimeProvider>::new(
        origin.clone(),
        records,
        ZoneType::Primary,
        AxfrPolicy::Deny,
    )
    .map_err(|e| vec![ConfigError::file(path, e)])?;
    Ok(LoadedZone {
        zone: Zone {
            origin: lower_origin,
            negative_soa,
            rrsets,
            names,
            versions: history::Versions::new(content),
            transfer: zc.transfer.clone(),
            records: kept,
        },
        handler: Arc::new(handler),
        wire,
        warnings,
    })
}

/// A record a rule refuses: the file (an `$INCLUDE`d one where it is
/// written there) and line, and the message, which starts with the rule.
fn refused(
    path: &Path,
    origin: &Name,
    name: &LowerName,
    rtype: RecordType,
    message: String,
) -> ConfigError {
    match line::locate(path, origin, name, rtype) {
        Some((file, l)) => ConfigError::file(&file, message).at_line(Some(l)),
        None => ConfigError::file(path, message),
    }
}

/// The rules a parsed zone file must meet, as BIND's loader has them: no
/// record outside the zone (out-of-zone glue included), the one SOA at the
/// apex, no other data beside a CNAME (RFC 1034 §3.6.2; RRSIG and NSEC
/// excepted, RFC 4035 §2.5). Each problem names its rule, record and line.
fn content_rules(
    records: &BTreeMap<RrKey, RecordSet>,
    path: &Path,
    origin: &Name,
) -> Vec<ConfigError> {
    let apex = LowerName::new(origin);
    let mut out = Vec::new();
    for key in records.keys() {
        let (name, rtype) = (&key.name, key.record_type);
        if !apex.zone_of(name) {
            let what = if rtype == RecordType::A || rtype == RecordType::AAAA {
                " (glue for a name server of another zone is out-of-zone data too)"
            } else {
                ""
            };
            out.push(refused(
                path,
                origin,
                name,
                rtype,
                format!("record outside the zone: {name} {rtype} is not in {origin}{what}"),
            ));
        } else if rtype == RecordType::SOA && *name != apex {
            out.push(refused(
                path,
                origin,
                name,
                rtype,
                format!("SOA outside the apex: {name} (a zone has one SOA, at {origin})"),
            ));
        }
    }
    for key in records
        .keys()
        .filter(|k| k.record_type == RecordType::CNAME)
    {
        let others = records.range(RrKey::new(key.name.clone(), RecordType::Unknown(0))..);
        let other = others
            .take_while(|(k, _)| k.name == key.name)
            .map(|(k, _)| k.record_type)
            .find(|t| !matches!(t, RecordType::CNAME | RecordType::RRSIG | RecordType::NSEC));
        let Some(other) = other else { continue };
        let at = |t| line::locate(path, origin, &key.name, t);
        let (c, d) = (at(RecordType::CNAME), at(other));
        // The record written second broke the rule; the message names the first.
        let (here, first) = match (c, d) {
            (Some(c), Some(d)) if c.0 == d.0 && c.1 < d.1 => {
                (Some(d), Some((RecordType::CNAME, c.1)))
            }
            (Some(c), Some(d)) => (Some(c), Some((other, d.1))),
            (c, d) => (c.or(d), None),
        };
        let message = format!(
            "CNAME and other data at {}: {other} beside the CNAME{} (RFC 1034 §3.6.2)",
            key.name,
            first
                .map(|(t, l)| format!(", the {t} at line {l}"))
                .unwrap_or_default()
        );
        out.push(match here {
            Some((file, l)) => ConfigError::file(&file, message).at_line(Some(l)),
            None => ConfigError::file(path, message),
        });
    }
    out
}

/// What signing does not cover yet: delegations (a referral needs a DS or a
/// proof that there is none) and wildcards (a proof that no closer name
/// exists). A signed zone holding them is refused rather than half-signed:
/// the record and why.
fn unsigned_features(
    records: &BTreeMap<RrKey, RecordSet>,
    origin: &LowerName,
) -> Result<(), (LowerName, RecordType, String)> {
    for key in records.keys() {
        if key.name.is_wildcard() {
            return Err((
                key.name.clone(),
                key.record_type,
                format!(
                    "wildcard in a signed zone: {}: wildcards are not supported in a signed zone ([dnssec]) yet",
                    key.name
                ),
            ));
        }
        if key.record_type == RecordType::NS && &key.name != origin {
            return Err((
                key.name.clone(),
                key.record_type,
                format!(
                    "delegation in a signed zone: {}: delegations are not supported in a signed zone ([dnssec]) yet",
                    key.name
                ),
            ));
        }
    }
    Ok(())
}

/// Zone records and the warnings BIND would print for them.
pub type Parsed = (BTreeMap<RrKey, RecordSet>, Vec<Warning>);

/// Parses zone text (the file at `path`) as BIND does; on error, names the
/// file (an `$INCLUDE`d one where it is there) and line.
pub fn parse_zone(text: &str, path: &Path, origin: &Name) -> Result<Parsed, ConfigError> {
    let rw = bind::rewrite(text, path, origin)?;
    match Parser::new(
        rw.text.as_str(),
        Some(path.to_path_buf()),
        Some(origin.clone()),
    )
    .parse()
    {
        Ok((_, mut records)) => {
            if records.keys().any(|k| k.record_type == RecordType::CNAME)
                && let Some((name, first, second)) = line::second_cname(&rw.text, origin)
            {
                let (file, line) = rw.source(second).unwrap_or((path, 0));
                let first = rw.source(first).map_or(0, |(_, l)| l);
                return Err(ConfigError::file(
                    file,
                    format!(
                        "more than one CNAME at {name}: a name has one CNAME (RFC 1034 §3.6.2), the first at line {first}"
                    ),
                )
                .at_line(Some(line).filter(|l| *l > 0)));
            }
            let mut warnings = rw.warnings;
            one_ttl_per_rrset(&mut records, path, &mut warnings);
            Ok((records, warnings))
        }
        Err(e) => {
            let at = line::first_failing_line(&rw.text, path, origin).and_then(|l| rw.source(l));
            let (file, line) = match at {
                Some((file, line)) => (file, Some(line)),
                None => (path, None),
            };
            let e = e.to_string();
            // hickory's words for the one rule its parser enforces.
            let message = if e.contains("SOA is already specified") {
                "duplicate SOA: a second SOA record (a zone has one, at its apex)".to_string()
            } else {
                format!("zone parse error: {e}")
            };
            Err(ConfigError::file(file, message).at_line(line))
        }
    }
}

/// RFC 2181 §5.2: the records of an RRset share one TTL. Where a file gives
/// them different ones, BIND keeps the first record's TTL for all, with a
/// warning; so do we.
fn one_ttl_per_rrset(
    records: &mut BTreeMap<RrKey, RecordSet>,
    path: &Path,
    warnings: &mut Vec<Warning>,
) {
    for (key, set) in records.iter_mut() {
        let mut ttls = set.records_without_rrsigs().map(|r| r.ttl);
        let Some(first) = ttls.next() else {
            continue;
        };
        if ttls.any(|t| t != first) {
            warnings.push(Warning::new(
                path.display().to_string(),
                format!(
                    "{} {}: the records have different TTLs; all take the first one's ({first}), as BIND does",
                    key.name, key.record_type
                ),
            ));
            set.set_ttl(first);
        }
    }
}

/// Reads and parses the zone file at `path` for `origin` (`example.test.`),
/// as `geosteer check` and `serve` do.
pub fn read_zone(path: &Path, origin: &str) -> Result<Parsed, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::file(path, format!("cannot read zone file: {e}")))?;
    let origin = Name::from_str(origin)
        .map_err(|e| ConfigError::file(path, format!("bad zone origin {origin}: {e}")))?;
    parse_zone(&text, path, &origin)
}
