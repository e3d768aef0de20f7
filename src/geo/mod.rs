//! geo: where a client address is. Reads MaxMind-format databases (GeoIP2 /
//! GeoLite2 Country or City schema, and the ip-location-db `country_code`
//! schema) and owns the built-in country → continent and country centroid
//! tables ([`tables`]) and the great-circle distance ([`distance`]).
//!
//! Files are read once by [`GeoDb::open`] (the only IO here); [`GeoDb::locate`]
//! is a pure lookup on the per-query path. What a location means for steering
//! is `steer`'s business, not this module's.

// The pure core: no clock, no global RNG, no tokio (clippy.toml says why).
#![deny(clippy::disallowed_methods, clippy::disallowed_types)]
#![warn(missing_docs)]

pub mod distance;
mod record;
pub mod tables;
#[cfg(test)]
mod tests;

use std::cell::RefCell;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use maxminddb::Reader;

use crate::config::{Continent, Country};
use record::Record;

/// What the database says about one client address.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Location {
    /// The country, when the database knows it.
    pub country: Option<Country>,
    /// The continent: the database's, else the country's.
    pub continent: Option<Continent>,
    /// (latitude, longitude): the database's city coordinates, else the country centroid.
    pub coords: Option<(f64, f64)>,
    /// Prefix length of the database network that holds the address, in the
    /// address's own family (an IPv4 address gives 0..=32). 0 without a database.
    pub prefix_len: u8,
}

/// A GeoIP database that cannot be opened or read.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct GeoError {
    /// The database file.
    pub path: PathBuf,
    /// What is wrong with it.
    pub message: String,
}

impl GeoError {
    fn new(path: &Path, message: impl Into<String>) -> GeoError {
        GeoError {
            path: path.to_path_buf(),
            message: message.into(),
        }
    }
}

/// Zero or more databases (one, or IPv4 and IPv6 apart).
///
/// Each address family is served by one database, chosen at open time: an
/// IPv4-only file (metadata `ip_version` 4) serves IPv4; an IPv6 file serves
/// IPv6, and IPv4 too unless an IPv4-only file was given (IPv6 trees hold
/// IPv4 under `::/96`).
///
/// Cost: `locate` is one tree walk plus, for a record not yet in the
/// per-database cache, one borrowed decode; it allocates nothing. Measured by
/// `tests::lookup_cost` (geosteer at opt-level 3, dependencies at the dev
/// profile's opt-level 1, on a busy 2-vCPU box, so an upper bound):
/// 150–270 ns per IPv4 and 300–360 ns per IPv6 lookup, ~110 ns for a miss;
/// on the shipped `geoip/country.mmdb`, ~170 ns (IPv4) and ~310 ns (IPv6).
/// Without the record cache an IPv4 hit cost ~440 ns. In front of both, each
/// thread remembers its last 512 addresses (direct-mapped), so a resolver's
/// repeated source or ECS network skips the walk too.
#[derive(Default)]
pub struct GeoDb {
    dbs: Vec<Db>,
    /// Index into `dbs` of the database that answers IPv4 addresses.
    v4: Option<usize>,
    /// Index into `dbs` of the database that answers IPv6 addresses.
    v6: Option<usize>,
    /// Tells this database's entries apart in the per-thread address cache
    /// (0: no database, never cached).
    id: u64,
}

/// Ids for [`GeoDb::id`]; a reload opens a new database with a new id.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Addresses remembered per thread (a power of two): about 40 KB.
const RECENT_SLOTS: usize = 512;

thread_local! {
    /// The last addresses located on this thread, direct-mapped by address:
    /// a resolver sends many queries from (and ECS options for) the same
    /// networks, and a hit skips the tree walk. Same answers either way.
    static RECENT: RefCell<Vec<(u64, IpAddr, Location)>> = const { RefCell::new(Vec::new()) };
}

fn recent_slot(ip: IpAddr) -> usize {
    let bits = match ip {
        IpAddr::V4(v4) => u64::from(v4.to_bits()),
        IpAddr::V6(v6) => {
            let b = v6.to_bits();
            (b as u64) ^ ((b >> 64) as u64).rotate_left(17)
        }
    };
    let hash = bits.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (hash >> (64 - RECENT_SLOTS.trailing_zeros())) as usize
}

struct Db {
    path: PathBuf,
    reader: Reader<Vec<u8>>,
    /// Decoded records by data offset. Networks share records (a country
    /// database has about 250 for its million networks), so most lookups skip
    /// the decode. Direct-mapped, first writer wins, never evicted: a hit is
    /// one atomic load, and a record whose slot is taken is decoded each time.
    /// Answers are the same with or without it; only the cost changes.
    cache: Box<[OnceLock<(usize, Location)>]>,
}

/// Cache slots per database (a power of two): about 230 KB.
const CACHE_SLOTS: usize = 4096;

fn cache_slot(offset: usize) -> usize {
    // Fibonacci hashing: record offsets are clustered, the top bits of the
    // product are not.
    let hash = (offset as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (hash >> (64 - CACHE_SLOTS.trailing_zeros())) as usize
}

// === impl GeoDb ===

impl GeoDb {
    /// No database: every address locates to nowhere, with prefix length 0.
    #[cfg(test)]
    pub(crate) fn empty() -> GeoDb {
        GeoDb::default()
    }

    /// Reads zero, one or two `.mmdb` files into memory. With two, they must
    /// cover different families (an IPv4-only file and an IPv6 file, as
    /// ip-location-db ships them), or both be IPv6 trees of which the first
    /// that holds IPv4 data answers IPv4 and the other IPv6.
    pub fn open(paths: &[PathBuf]) -> Result<GeoDb, GeoError> {
        if let Some(extra) = paths.get(2) {
            return Err(GeoError::new(
                extra,
                "at most two GeoIP databases are supported (one for IPv4, one for IPv6)",
            ));
        }
        let dbs = paths
            .iter()
            .map(|p| Db::open(p))
            .collect::<Result<Vec<_>, _>>()?;
        let (v4, v6) = assign_families(&dbs)?;
        let id = if dbs.is_empty() {
            0
        } else {
            NEXT_ID.fetch_add(1, Ordering::Relaxed)
        };
        Ok(GeoDb { dbs, v4, v6, id })
    }

    /// True when no database was opened.
    pub fn is_empty(&self) -> bool {
        self.dbs.is_empty()
    }

    /// Locates one client address. Never fails: an address no database
    /// covers, or a record that does not decode, gives a `Location` with
    /// only `prefix_len` set (the covering network, so ECS scopes stay right).
    pub fn locate(&self, ip: IpAddr) -> Location {
        if self.id == 0 {
            return Location::default();
        }
        let slot = recent_slot(ip);
        RECENT.with(|r| {
            // locate_uncached never touches RECENT: one borrow serves both.
            let mut r = r.borrow_mut();
            if r.is_empty() {
                let unused = (0, IpAddr::V4(Ipv4Addr::UNSPECIFIED), Location::default());
                r.resize(RECENT_SLOTS, unused);
            }
            let (id, at, loc) = &mut r[slot];
            if *id != self.id || *at != ip {
                (*id, *at, *loc) = (self.id, ip, self.locate_uncached(ip));
            }
            *loc
        })
    }

    fn locate_uncached(&self, ip: IpAddr) -> Location {
        match ip {
            IpAddr::V4(v4) => self.locate_v4(v4),
            IpAddr::V6(v6) => match (v6.to_ipv4_mapped(), self.v4) {
                // ::ffff:a.b.c.d is an IPv4 client behind a dual-stack
                // socket: answer from the IPv4 data, whichever file holds it,
                // and report the prefix in IPv6 terms.
                (Some(v4), Some(_)) => {
                    let loc = self.locate_v4(v4);
                    Location {
                        prefix_len: loc.prefix_len + 96,
                        ..loc
                    }
                }
                _ => match self.v6 {
                    Some(i) => self.dbs[i].locate(ip),
                    None => Location::default(),
                },
            },
        }
    }

    fn locate_v4(&self, ip: Ipv4Addr) -> Location {
        match self.v4 {
            Some(i) => self.dbs[i].locate(IpAddr::V4(ip)),
            None => Location::default(),
        }
    }
}

impl fmt::Debug for GeoDb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = |i: Option<usize>| i.map(|i| self.dbs[i].path.display().to_string());
        f.debug_struct("GeoDb")
            .field("ipv4", &path(self.v4))
            .field("ipv6", &path(self.v6))
            .finish()
    }
}

/// Picks which database answers each family; see [`GeoDb::open`].
fn assign_families(dbs: &[Db]) -> Result<(Option<usize>, Option<usize>), GeoError> {
    let only_v4: Vec<usize> = (0..dbs.len()).filter(|&i| dbs[i].is_v4_only()).collect();
    let v6_trees: Vec<usize> = (0..dbs.len()).filter(|&i| !dbs[i].is_v4_only()).collect();
    match (only_v4.as_slice(), v6_trees.as_slice()) {
        ([], []) => Ok((None, None)),
        ([a], []) => Ok((Some(*a), None)),
        ([], [a]) => Ok((Some(*a), Some(*a))),
        ([a], [b]) => Ok((Some(*a), Some(*b))),
        ([], [a, b]) => {
            if !dbs[*a].holds_ipv4() && dbs[*b].holds_ipv4() {
                Ok((Some(*b), Some(*a)))
            } else {
                Ok((Some(*a), Some(*b)))
            }
        }
        (_, _) => Err(GeoError::new(
            &dbs[dbs.len() - 1].path,
            "both GeoIP databases are IPv4-only; give one IPv4 and one IPv6 database",
        )),
    }
}

// === impl Db ===

impl Db {
    fn open(path: &Path) -> Result<Db, GeoError> {
        let bytes = std::fs::read(path)
            .map_err(|e| GeoError::new(path, format!("cannot read GeoIP database: {e}")))?;
        let reader = Reader::from_source(bytes)
            .map_err(|e| GeoError::new(path, format!("not a MaxMind DB (.mmdb) file: {e}")))?;
        Ok(Db {
            path: path.to_path_buf(),
            reader,
            cache: (0..CACHE_SLOTS).map(|_| OnceLock::new()).collect(),
        })
    }

    fn is_v4_only(&self) -> bool {
        self.reader.metadata().ip_version == 4
    }

    /// Whether any IPv4 network carries data (IPv6 trees may or may not).
    fn holds_ipv4(&self) -> bool {
        let Ok(all_v4) = "0.0.0.0/0".parse() else {
            return false;
        };
        self.reader
            .within(all_v4, Default::default())
            .is_ok_and(|mut networks| matches!(networks.next(), Some(Ok(_))))
    }

    fn locate(&self, ip: IpAddr) -> Location {
        let Ok(found) = self.reader.lookup(ip) else {
            return Location::default();
        };
        let prefix_len = match (ip, found.network()) {
            (IpAddr::V4(_), Ok(net)) if net.is_ipv6() => net.prefix().saturating_sub(96),
            (_, Ok(net)) => net.prefix(),
            (_, Err(_)) => 0,
        };
        let Some(offset) = found.offset() else {
            return Location {
                prefix_len,
                ..Location::default()
            };
        };
        let slot = &self.cache[cache_slot(offset)];
        let place = match slot.get() {
            Some((cached, place)) if *cached == offset => *place,
            taken => {
                let place = match found.decode::<Record<'_>>() {
                    Ok(Some(record)) => record.to_location(0),
                    _ => Location::default(),
                };
                if taken.is_none() {
                    // Losing a race to another thread is fine: it stored
                    // its own record, and this one stays uncached.
                    let _ = slot.set((offset, place));
                }
                place
            }
        };
        Location {
            prefix_len,
            ..place
        }
    }
}
