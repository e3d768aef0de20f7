//! geo: where a client address is. Reads MaxMind-format databases (GeoIP2 /
//! GeoLite2 Country or City schema, and the `country_code` schema) and owns
//! the built-in country → continent and country centroid tables.
//!
//! CONTRACT (filled in by the geo work): `GeoDb::open`, `GeoDb::locate`.

pub mod distance;

use std::net::IpAddr;
use std::path::PathBuf;

use crate::config::{Continent, Country};

/// What the database says about one client address.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Location {
    pub country: Option<Country>,
    pub continent: Option<Continent>,
    /// (latitude, longitude): the database's city coordinates, else the country centroid.
    pub coords: Option<(f64, f64)>,
    /// Prefix length of the database network that holds the address, in the
    /// address's own family (an IPv4 address gives 0..=32). 0 without a database.
    pub prefix_len: u8,
}

#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct GeoError {
    pub path: PathBuf,
    pub message: String,
}

/// Zero or more databases (one, or IPv4 and IPv6 apart).
#[derive(Default)]
pub struct GeoDb {}

impl GeoDb {
    pub fn empty() -> GeoDb {
        GeoDb {}
    }
    pub fn open(_paths: &[PathBuf]) -> Result<GeoDb, GeoError> {
        Ok(GeoDb {})
    }
    pub fn locate(&self, _ip: IpAddr) -> Location {
        Location::default()
    }
}
