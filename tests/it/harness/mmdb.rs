//! GeoIP databases built at test time (tests never use the shipped one).

use ipnet::IpNet;
use serde::Serialize;

#[derive(Serialize)]
struct CountryCode<'a> {
    country_code: &'a str,
}

/// A `country_code`-schema database (the ip-location-db shape).
pub fn country_db(entries: &[(&str, &str)]) -> Vec<u8> {
    let mut w = mmdb_writer::Writer::new("geosteer-test-country");
    for (net, cc) in entries {
        let net: IpNet = net.parse().expect("test network");
        w.insert(net, &CountryCode { country_code: cc })
            .expect("insert");
    }
    w.to_bytes().expect("mmdb bytes")
}

#[derive(Serialize)]
struct Iso<'a> {
    iso_code: &'a str,
}
#[derive(Serialize)]
struct Code<'a> {
    code: &'a str,
}
#[derive(Serialize)]
struct Loc {
    latitude: f64,
    longitude: f64,
}
#[derive(Serialize)]
struct City<'a> {
    country: Iso<'a>,
    continent: Code<'a>,
    location: Loc,
}

/// A GeoIP2-City-shaped database: (network, country, continent, lat, lon).
pub fn city_db(entries: &[(&str, &str, &str, f64, f64)]) -> Vec<u8> {
    let mut w = mmdb_writer::Writer::new("GeoIP2-City");
    for (net, cc, cont, lat, lon) in entries {
        let net: IpNet = net.parse().expect("test network");
        let rec = City {
            country: Iso { iso_code: cc },
            continent: Code { code: cont },
            location: Loc {
                latitude: *lat,
                longitude: *lon,
            },
        };
        w.insert(net, &rec).expect("insert");
    }
    w.to_bytes().expect("mmdb bytes")
}

/// The networks most tests use.
pub fn standard_country_db() -> Vec<u8> {
    country_db(&[
        ("5.9.0.0/16", "DE"),
        ("8.8.8.0/24", "US"),
        ("203.0.113.0/24", "JP"),
        ("198.18.0.0/15", "BR"),
        ("2001:db8::/32", "JP"),
        ("2a01:4f8::/32", "DE"),
    ])
}
