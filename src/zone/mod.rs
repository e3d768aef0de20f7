//! zone: loads RFC 1035 master files into a hickory `Catalog`, which answers
//! every name that is not balanced (NXDOMAIN, NODATA, REFUSED, CNAME, ...),
//! and keeps what the balanced path needs from each zone: its SOA for negative
//! answers and which RRsets exist. `dns::fast::table` compiles the same
//! records into wire fragments for the UDP fast path.
//!
//! hickory's zone parser reports no line numbers, so on a parse error we find
//! the first failing record by re-parsing prefixes that end at record
//! boundaries (`line`): error path only.

mod line;

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use hickory_proto::rr::{LowerName, Name, RData, Record, RecordSet, RecordType, RrKey};
use hickory_proto::serialize::txt::Parser;
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{AxfrPolicy, Catalog, ZoneHandler, ZoneType};

use crate::config::{Config, ConfigError, ConfigErrors, ZoneConfig};
use crate::dns::fast::table::{self, WireZones, ZoneFragments};

/// One loaded zone.
pub struct Zone {
    pub origin: LowerName,
    /// The SOA to put in the authority section of negative answers, with its
    /// TTL lowered to the SOA MINIMUM as RFC 2308 §3 asks.
    pub negative_soa: Record,
    rrsets: HashSet<RrKey>,
    names: HashSet<LowerName>,
}

impl Zone {
    pub fn has_rrset(&self, name: &LowerName, rtype: RecordType) -> bool {
        self.rrsets.contains(&RrKey::new(name.clone(), rtype))
    }

    pub fn has_name(&self, name: &LowerName) -> bool {
        self.names.contains(name)
    }
}

/// Every served zone, plus the catalog that answers from them.
pub struct Zones {
    pub catalog: Catalog,
    /// The same zones compiled for the UDP fast path.
    pub wire: WireZones,
    zones: Vec<Zone>,
}

impl Zones {
    /// Reads and parses every zone file; checks that no balanced name also has
    /// A or AAAA records in its zone file.
    pub fn load(config: &Config) -> Result<Zones, ConfigErrors> {
        let mut errors = Vec::new();
        let mut catalog = Catalog::new();
        let mut zones = Vec::new();
        let mut fragments = Vec::new();
        for zc in &config.zones {
            match load_zone(zc) {
                Ok((zone, handler, wire)) => {
                    catalog.upsert(zone.origin.clone(), vec![handler]);
                    zones.push(zone);
                    fragments.push(wire);
                }
                Err(e) => errors.push(e),
            }
        }
        let mut set = Zones {
            catalog,
            wire: WireZones::default(),
            zones,
        };
        for (i, b) in config.balance.iter().enumerate() {
            let Ok(name) = Name::from_str(&b.name) else {
                continue;
            };
            let name = LowerName::new(&name);
            if let Some((zi, zone)) = set.find_indexed(&name) {
                for rtype in [RecordType::A, RecordType::AAAA, RecordType::CNAME] {
                    if zone.has_rrset(&name, rtype) {
                        errors.push(ConfigError::new(
                            &config.zones[zi].path,
                            format!("balance[{i}].name"),
                            format!(
                                "{} is balanced, so its zone file must not hold {rtype} records for it",
                                b.name
                            ),
                        ));
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

    /// The zone holding `name` (longest matching origin).
    pub fn find(&self, name: &LowerName) -> Option<&Zone> {
        self.find_indexed(name).map(|(_, z)| z)
    }

    fn find_indexed(&self, name: &LowerName) -> Option<(usize, &Zone)> {
        self.zones
            .iter()
            .enumerate()
            .filter(|(_, z)| z.origin.zone_of(name))
            .max_by_key(|(_, z)| z.origin.num_labels())
    }

    pub fn len(&self) -> usize {
        self.zones.len()
    }

    pub fn is_empty(&self) -> bool {
        self.zones.is_empty()
    }
}

fn load_zone(zc: &ZoneConfig) -> Result<(Zone, Arc<dyn ZoneHandler>, ZoneFragments), ConfigError> {
    let path = &zc.path;
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::file(path, format!("cannot read zone file: {e}")))?;
    let origin = Name::from_str(&zc.origin)
        .map_err(|e| ConfigError::file(path, format!("bad zone origin {}: {e}", zc.origin)))?;
    let records = parse_zone(&text, path, &origin)?;
    let lower_origin = LowerName::new(&origin);
    let mut rrsets = HashSet::new();
    let mut names = HashSet::new();
    for key in records.keys() {
        if !lower_origin.zone_of(&key.name) {
            return Err(ConfigError::file(
                path,
                format!("record {} is outside the zone {origin}", key.name),
            ));
        }
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
            ConfigError::file(path, format!("zone {origin} has no SOA record at its apex"))
        })?;
    let wire = table::compile_zone(&lower_origin, &records, &negative_soa);
    let handler = InMemoryZoneHandler::<hickory_server::net::runtime::TokioRuntimeProvider>::new(
        origin.clone(),
        records,
        ZoneType::Primary,
        AxfrPolicy::Deny,
    )
    .map_err(|e| ConfigError::file(path, e))?;
    Ok((
        Zone {
            origin: lower_origin,
            negative_soa,
            rrsets,
            names,
        },
        Arc::new(handler),
        wire,
    ))
}

/// Parses zone text; on error, names the first failing line.
pub fn parse_zone(
    text: &str,
    path: &Path,
    origin: &Name,
) -> Result<BTreeMap<RrKey, RecordSet>, ConfigError> {
    match Parser::new(text, Some(path.to_path_buf()), Some(origin.clone())).parse() {
        Ok((_, records)) => Ok(records),
        Err(e) => {
            let line = line::first_failing_line(text, path, origin);
            Err(ConfigError::file(path, format!("zone parse error: {e}")).at_line(line))
        }
    }
}
