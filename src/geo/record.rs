//! The serde shape of one database record. A single struct reads both
//! schemas; fields a record does not have stay `None`, fields we do not name
//! are skipped by the decoder:
//! - ip-location-db: `{country_code, latitude?, longitude?}`;
//! - MaxMind GeoIP2 / GeoLite2 Country and City: `{continent.code,
//!   country.iso_code, registered_country.iso_code, location.latitude/longitude}`.
//!
//! Strings are borrowed from the database buffer, so decoding allocates nothing.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

use super::Location;
use super::tables;
use crate::config::{Continent, Country};

#[derive(Deserialize)]
pub(super) struct Record<'a> {
    #[serde(borrow, default)]
    country_code: Option<&'a str>,
    #[serde(borrow, default)]
    country: Option<IsoCode<'a>>,
    /// GeoIP2 leaves `country` out for some networks (anycast, satellite)
    /// but still names the country the block is registered to.
    #[serde(borrow, default)]
    registered_country: Option<IsoCode<'a>>,
    #[serde(borrow, default)]
    continent: Option<ContinentCode<'a>>,
    #[serde(default)]
    location: Option<LatLon>,
    #[serde(default)]
    latitude: Option<Degrees>,
    #[serde(default)]
    longitude: Option<Degrees>,
}

#[derive(Deserialize)]
struct IsoCode<'a> {
    #[serde(borrow, default)]
    iso_code: Option<&'a str>,
}

#[derive(Deserialize)]
struct ContinentCode<'a> {
    #[serde(borrow, default)]
    code: Option<&'a str>,
}

#[derive(Deserialize)]
struct LatLon {
    #[serde(default)]
    latitude: Option<Degrees>,
    #[serde(default)]
    longitude: Option<Degrees>,
}

/// A latitude or longitude. GeoIP2 stores doubles; other writers store
/// floats, integers or even strings, and the decoder's typed `f64` accepts
/// only doubles, so take any number (a bad coordinate must not cost us the
/// country in the same record).
#[derive(Clone, Copy)]
struct Degrees(f64);

impl<'de> Deserialize<'de> for Degrees {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Degrees, D::Error> {
        d.deserialize_any(DegreesVisitor)
    }
}

struct DegreesVisitor;

impl Visitor<'_> for DegreesVisitor {
    type Value = Degrees;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a latitude or longitude")
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Degrees, E> {
        Ok(Degrees(v))
    }
    fn visit_f32<E: de::Error>(self, v: f32) -> Result<Degrees, E> {
        Ok(Degrees(f64::from(v)))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Degrees, E> {
        Ok(Degrees(v as f64))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Degrees, E> {
        Ok(Degrees(v as f64))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Degrees, E> {
        Ok(Degrees(v.trim().parse().unwrap_or(f64::NAN)))
    }
}

impl Record<'_> {
    /// Country, continent and coordinates, falling back to the built-in
    /// tables for what the record leaves out. `prefix_len` is the caller's.
    pub(super) fn to_location(&self, prefix_len: u8) -> Location {
        let country = self
            .country_code
            .or_else(|| self.country.as_ref().and_then(|c| c.iso_code))
            .or_else(|| self.registered_country.as_ref().and_then(|c| c.iso_code))
            .and_then(Country::parse);
        let continent = self
            .continent
            .as_ref()
            .and_then(|c| c.code)
            .and_then(parse_continent)
            .or_else(|| country.and_then(tables::continent_of));
        let coords = self
            .coords()
            .or_else(|| country.and_then(tables::centroid_of));
        Location {
            country,
            continent,
            coords,
            prefix_len,
        }
    }

    fn coords(&self) -> Option<(f64, f64)> {
        let (Degrees(lat), Degrees(lon)) = match &self.location {
            Some(LatLon {
                latitude: Some(lat),
                longitude: Some(lon),
            }) => (*lat, *lon),
            _ => (self.latitude?, self.longitude?),
        };
        // Also rejects NaN from an unparsable string.
        let valid = (-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lon);
        valid.then_some((lat, lon))
    }
}

/// `Continent::parse` without its upper-casing `String`: this runs per query.
fn parse_continent(code: &str) -> Option<Continent> {
    let b = code.as_bytes();
    if b.len() != 2 {
        return None;
    }
    Some(
        match [b[0].to_ascii_uppercase(), b[1].to_ascii_uppercase()] {
            [b'A', b'F'] => Continent::Af,
            [b'A', b'N'] => Continent::An,
            [b'A', b'S'] => Continent::As,
            [b'E', b'U'] => Continent::Eu,
            [b'N', b'A'] => Continent::Na,
            [b'O', b'C'] => Continent::Oc,
            [b'S', b'A'] => Continent::Sa,
            _ => return None,
        },
    )
}
