//! geo tests. Databases are written at test time with mmdb-writer; only the
//! `#[ignore]`d `shipped_database` test reads `geoip/`.

use std::net::IpAddr;
use std::path::PathBuf;

use mmdb_writer::{IpVersion, Ipv4Aliasing, Value, Writer};
use tempfile::TempDir;

use super::distance::great_circle_km;
use super::tables::{self, centroid_of, continent_of};
use super::{GeoDb, Location};
use crate::config::Continent::{self, Af, An, As, Eu, Na, Oc, Sa};
use crate::config::Country;

// === helpers ===

fn ip(s: &str) -> IpAddr {
    s.parse().expect("test address")
}

fn cc(s: &str) -> Option<Country> {
    Some(Country::parse(s).expect("test country"))
}

fn write(dir: &TempDir, name: &str, writer: &Writer) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, writer.to_bytes().expect("mmdb bytes")).expect("write mmdb");
    path
}

fn insert(w: &mut Writer, net: &str, value: Value) {
    w.insert_value(net.parse::<ipnet::IpNet>().expect("test net"), value)
        .expect("insert");
}

fn code(c: &str) -> Value {
    Value::map([("country_code", Value::from(c))])
}

/// ip-location-db shape. With `IpVersion::V4` the IPv6 network is left out.
fn country_code_writer(version: IpVersion, v4: bool, v6: bool) -> Writer {
    let mut w = Writer::builder("test-country")
        .ip_version(version)
        .ipv4_aliasing(if v4 {
            Ipv4Aliasing::Enabled
        } else {
            Ipv4Aliasing::Disabled
        })
        .build();
    if v4 {
        insert(&mut w, "5.9.0.0/16", code("DE"));
        insert(&mut w, "8.8.8.0/24", code("US"));
        insert(&mut w, "203.0.113.0/24", code("AU"));
        insert(&mut w, "198.18.0.0/24", code("ZZ"));
        insert(&mut w, "198.18.1.0/24", code("Germany"));
    }
    if v6 {
        insert(&mut w, "2001:db8::/32", code("JP"));
    }
    w
}

fn open(paths: &[PathBuf]) -> GeoDb {
    GeoDb::open(paths).expect("open test db")
}

/// One IPv6-tree file holding both families, as `geoip/country.mmdb` does.
fn combined() -> (TempDir, GeoDb) {
    let dir = TempDir::new().expect("tempdir");
    let p = write(
        &dir,
        "all.mmdb",
        &country_code_writer(IpVersion::V6, true, true),
    );
    let db = open(&[p]);
    (dir, db)
}

/// GeoIP2-City shape: nested maps, names in several languages, coordinates.
fn city_db() -> (TempDir, GeoDb) {
    let names = |en: &str| Value::map([("en", en), ("de", "x"), ("ja", "y")]);
    let mut w = Writer::new("GeoIP2-City");
    insert(
        &mut w,
        "81.2.69.0/24",
        Value::map([
            (
                "city",
                Value::map([
                    ("geoname_id", Value::from(2643743_u32)),
                    ("names", names("London")),
                ]),
            ),
            (
                "continent",
                Value::map([("code", Value::from("EU")), ("names", names("Europe"))]),
            ),
            (
                "country",
                Value::map([("iso_code", Value::from("GB")), ("names", names("UK"))]),
            ),
            (
                "location",
                Value::map([
                    ("accuracy_radius", Value::from(10_u16)),
                    ("latitude", Value::from(51.5142)),
                    ("longitude", Value::from(-0.0931)),
                    ("time_zone", Value::from("Europe/London")),
                ]),
            ),
        ]),
    );
    // Country-level record: no location, so coordinates come from the table.
    insert(
        &mut w,
        "2001:db8:1::/48",
        Value::map([
            ("continent", Value::map([("code", "NA")])),
            ("country", Value::map([("iso_code", "US")])),
        ]),
    );
    // Only the registered country (GeoIP2 does this for anycast blocks).
    insert(
        &mut w,
        "192.0.2.0/24",
        Value::map([("registered_country", Value::map([("iso_code", "FR")]))]),
    );
    // ip-location-db city shape: flat, f32 coordinates.
    insert(
        &mut w,
        "198.51.100.0/24",
        Value::map([
            ("country_code", Value::from("JP")),
            ("latitude", Value::from(35.5_f32)),
            ("longitude", Value::from(139.75_f32)),
        ]),
    );
    let dir = TempDir::new().expect("tempdir");
    let p = write(&dir, "city.mmdb", &w);
    let db = open(&[p]);
    (dir, db)
}

fn assert_country(loc: Location, country: &str, continent: Continent, prefix_len: u8) {
    assert_eq!(loc.country, cc(country), "{loc:?}");
    assert_eq!(loc.continent, Some(continent), "{loc:?}");
    assert_eq!(loc.prefix_len, prefix_len, "{loc:?}");
}

// === country_code schema ===

#[test]
fn country_code_schema_ipv4_and_ipv6() {
    let (_dir, db) = combined();
    let cases: &[(&str, &str, Continent, u8)] = &[
        ("5.9.1.2", "DE", Eu, 16),
        ("8.8.8.8", "US", Na, 24),
        ("203.0.113.77", "AU", Oc, 24),
        ("2001:db8::1", "JP", As, 32),
        ("2001:db8:ffff::1", "JP", As, 32),
        // IPv4-mapped IPv6: IPv4 data, prefix in IPv6 terms.
        ("::ffff:5.9.1.2", "DE", Eu, 112),
    ];
    for &(addr, country, continent, prefix_len) in cases {
        let loc = db.locate(ip(addr));
        assert_country(loc, country, continent, prefix_len);
        assert_eq!(loc.coords, centroid_of(Country::parse(country).unwrap()));
        // The second lookup is served from the record cache.
        assert_eq!(db.locate(ip(addr)), loc);
    }
}

#[test]
fn ipv4_only_file_gives_ipv4_prefixes() {
    let dir = TempDir::new().unwrap();
    let p = write(
        &dir,
        "v4.mmdb",
        &country_code_writer(IpVersion::V4, true, false),
    );
    let db = open(&[p]);
    assert_country(db.locate(ip("5.9.255.255")), "DE", Eu, 16);
    assert_country(db.locate(ip("8.8.8.8")), "US", Na, 24);
    assert_eq!(db.locate(ip("9.9.9.9")), miss(8));
    // No IPv6 database: nothing to say, and nothing the answer depends on.
    assert_eq!(db.locate(ip("2001:db8::1")), miss(0));
    assert_country(db.locate(ip("::ffff:8.8.8.8")), "US", Na, 120);
}

fn miss(prefix_len: u8) -> Location {
    Location {
        prefix_len,
        ..Location::default()
    }
}

#[test]
fn misses_report_the_covering_network() {
    let (_dir, db) = combined();
    // 9.0.0.0/8 is the empty sibling of 8.0.0.0/8 (which holds 8.8.8.0/24),
    // reported in IPv4 terms although the tree is IPv6.
    assert_eq!(db.locate(ip("9.9.9.9")), miss(8));
    // 5.8.0.0/16 is the empty sibling of 5.9.0.0/16.
    assert_eq!(db.locate(ip("5.8.0.1")), miss(16));
    // 2400::/6 is empty: it splits from 2001::/16 at bit 5.
    assert_eq!(db.locate(ip("2400:cb00::1")), miss(6));
    for addr in ["1.1.1.1", "255.255.255.255", "0.0.0.0", "100.64.0.1"] {
        let loc = db.locate(ip(addr));
        assert_eq!(loc.country, None);
        assert!((1..=32).contains(&loc.prefix_len), "{addr}: {loc:?}");
    }
}

#[test]
fn unknown_and_malformed_country_codes() {
    let (_dir, db) = combined();
    // A well-formed code the tables do not know: kept, no continent or coords.
    let loc = db.locate(ip("198.18.0.1"));
    assert_eq!(loc.country, cc("ZZ"));
    assert_eq!(
        (loc.continent, loc.coords, loc.prefix_len),
        (None, None, 24)
    );
    // Not a code at all: as good as no record, but the prefix still counts.
    assert_eq!(db.locate(ip("198.18.1.1")), miss(24));
}

#[test]
fn no_database() {
    for db in [GeoDb::empty(), open(&[])] {
        assert!(db.is_empty());
        for addr in ["5.9.1.2", "2001:db8::1", "::ffff:5.9.1.2"] {
            assert_eq!(db.locate(ip(addr)), Location::default());
        }
    }
}

// === two files ===

#[test]
fn two_files_ipv4_and_ipv6() {
    let dir = TempDir::new().unwrap();
    let v4 = write(
        &dir,
        "v4.mmdb",
        &country_code_writer(IpVersion::V4, true, false),
    );
    let v6 = write(
        &dir,
        "v6.mmdb",
        &country_code_writer(IpVersion::V6, false, true),
    );
    for paths in [[v4.clone(), v6.clone()], [v6, v4]] {
        let db = open(&paths);
        assert!(!db.is_empty());
        assert_country(db.locate(ip("5.9.1.2")), "DE", Eu, 16);
        assert_country(db.locate(ip("2001:db8::1")), "JP", As, 32);
        assert_country(db.locate(ip("::ffff:8.8.8.8")), "US", Na, 120);
        assert_eq!(db.locate(ip("9.9.9.9")), miss(8));
    }
}

#[test]
fn two_ipv6_trees_pick_the_one_with_ipv4_data() {
    let dir = TempDir::new().unwrap();
    let v4 = write(
        &dir,
        "v4in6.mmdb",
        &country_code_writer(IpVersion::V6, true, false),
    );
    let v6 = write(
        &dir,
        "v6.mmdb",
        &country_code_writer(IpVersion::V6, false, true),
    );
    let db = open(&[v6, v4]);
    assert_country(db.locate(ip("5.9.1.2")), "DE", Eu, 16);
    assert_country(db.locate(ip("2001:db8::1")), "JP", As, 32);
}

#[test]
fn open_errors_name_the_path() {
    let dir = TempDir::new().unwrap();
    let missing = dir.path().join("nope.mmdb");
    let err = GeoDb::open(std::slice::from_ref(&missing)).unwrap_err();
    assert_eq!(err.path, missing);
    let msg = err.to_string();
    assert!(
        msg.contains("nope.mmdb") && msg.contains("cannot read"),
        "{msg}"
    );

    let junk = dir.path().join("junk.mmdb");
    std::fs::write(&junk, b"this is not a database").unwrap();
    let msg = GeoDb::open(&[junk]).unwrap_err().to_string();
    assert!(
        msg.contains("junk.mmdb") && msg.contains("not a MaxMind DB"),
        "{msg}"
    );

    let a = write(
        &dir,
        "a.mmdb",
        &country_code_writer(IpVersion::V4, true, false),
    );
    let b = write(
        &dir,
        "b.mmdb",
        &country_code_writer(IpVersion::V4, true, false),
    );
    let msg = GeoDb::open(&[a.clone(), b.clone()])
        .unwrap_err()
        .to_string();
    assert!(msg.contains("b.mmdb") && msg.contains("IPv4-only"), "{msg}");

    let msg = GeoDb::open(&[a.clone(), b, a]).unwrap_err().to_string();
    assert!(msg.contains("at most two"), "{msg}");
}

// === GeoIP2 schema ===

#[test]
fn geoip2_city_schema() {
    let (_dir, db) = city_db();
    let london = db.locate(ip("81.2.69.160"));
    assert_country(london, "GB", Eu, 24);
    assert_eq!(london.coords, Some((51.5142, -0.0931)));

    let us = db.locate(ip("2001:db8:1:2::3"));
    assert_country(us, "US", Na, 48);
    assert_eq!(us.coords, centroid_of(Country(*b"US")));

    let fr = db.locate(ip("192.0.2.1"));
    assert_country(fr, "FR", Eu, 24);
    assert_eq!(fr.coords, centroid_of(Country(*b"FR")));

    let tokyo = db.locate(ip("198.51.100.1"));
    assert_country(tokyo, "JP", As, 24);
    assert_eq!(tokyo.coords, Some((35.5, 139.75)));

    assert_eq!(db.locate(ip("2001:db8:2::1")).country, None);
}

/// DB-IP City Lite shape (dbip-city-lite-YYYY-MM.mmdb): the GeoIP2 City
/// layout (`continent.code`, `country.iso_code`, `location.latitude` and
/// `longitude`) plus DB-IP's own fields, in one IPv6 tree holding IPv4 too.
fn dbip_city_lite_writer() -> Writer {
    let names = |en: &str| Value::map([("en", en), ("de", "x"), ("fr", "y")]);
    let city = |geoname: u32, name: &str, cc: &str, lat: f64, lon: f64| {
        Value::map([
            ("city", Value::map([("names", names(name))])),
            (
                "continent",
                Value::map([
                    ("code", Value::from("EU")),
                    ("geoname_id", Value::from(6255148_u32)),
                    ("names", names("Europe")),
                ]),
            ),
            (
                "country",
                Value::map([
                    ("geoname_id", Value::from(geoname)),
                    ("is_in_european_union", Value::from(true)),
                    ("iso_code", Value::from(cc)),
                    ("names", names(cc)),
                ]),
            ),
            (
                "location",
                Value::map([
                    ("latitude", Value::from(lat)),
                    ("longitude", Value::from(lon)),
                ]),
            ),
            (
                "subdivisions",
                Value::array([Value::map([("names", names("somewhere"))])]),
            ),
        ])
    };
    let mut w = Writer::new("DBIP-City-Lite");
    insert(
        &mut w,
        "5.1.0.0/16",
        city(2264397, "Lisbon", "PT", 38.7223, -9.1393),
    );
    insert(
        &mut w,
        "5.2.0.0/16",
        city(798544, "Warsaw", "PL", 52.2298, 21.0118),
    );
    insert(
        &mut w,
        "2a02:2f0::/32",
        city(798544, "Warsaw", "PL", 52.2298, 21.0118),
    );
    w
}

#[test]
fn dbip_city_lite_schema() {
    let dir = TempDir::new().unwrap();
    let db = open(&[write(&dir, "dbip-city-lite.mmdb", &dbip_city_lite_writer())]);
    let lisbon = db.locate(ip("5.1.2.3"));
    assert_country(lisbon, "PT", Eu, 16);
    assert_eq!(lisbon.coords, Some((38.7223, -9.1393)));
    let warsaw = db.locate(ip("5.2.2.3"));
    assert_country(warsaw, "PL", Eu, 16);
    assert_eq!(warsaw.coords, Some((52.2298, 21.0118)));
    let warsaw6 = db.locate(ip("2a02:2f0::1"));
    assert_country(warsaw6, "PL", Eu, 32);
    assert_eq!(warsaw6.coords, Some((52.2298, 21.0118)));
}

#[test]
fn a_city_and_a_country_database_mixed() {
    // A city database for IPv4 (as DB-IP and GeoLite2 City ship one tree,
    // here holding IPv4 only) beside a country database for IPv6: each family
    // is answered from its own file, in either order.
    let dir = TempDir::new().unwrap();
    let mut city = Writer::new("DBIP-City-Lite");
    insert(
        &mut city,
        "5.1.0.0/16",
        Value::map([
            ("continent", Value::map([("code", "EU")])),
            ("country", Value::map([("iso_code", "PT")])),
            (
                "location",
                Value::map([
                    ("latitude", Value::from(41.15)),
                    ("longitude", Value::from(-8.61)),
                ]),
            ),
        ]),
    );
    let city = write(&dir, "city.mmdb", &city);
    let country = write(
        &dir,
        "country.mmdb",
        &country_code_writer(IpVersion::V6, false, true),
    );
    for paths in [[city.clone(), country.clone()], [country, city]] {
        let db = open(&paths);
        let porto = db.locate(ip("5.1.9.9"));
        assert_country(porto, "PT", Eu, 16);
        assert_eq!(porto.coords, Some((41.15, -8.61)), "city coordinates");
        let jp = db.locate(ip("2001:db8::1"));
        assert_country(jp, "JP", As, 32);
        assert_eq!(jp.coords, centroid_of(Country(*b"JP")), "country centroid");
    }
}

// === tables ===

#[test]
fn tables_cover_every_code() {
    let all = tables::COUNTRIES;
    assert!(all.len() >= 249, "{} countries", all.len());
    assert!(all.windows(2).all(|w| w[0].0 < w[1].0), "sorted, unique");
    for &(code, continent, lat, lon) in all {
        let c = Country(code);
        assert_eq!(continent_of(c), Some(continent));
        assert_eq!(centroid_of(c), Some((lat, lon)));
        assert!((-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lon));
    }
    let spot = [
        ("DE", Eu),
        ("US", Na),
        ("JP", As),
        ("BR", Sa),
        ("AU", Oc),
        ("ZA", Af),
        ("AQ", An),
        ("RU", Eu),
        ("TR", As),
        ("EG", Af),
        ("MX", Na),
        ("NZ", Oc),
    ];
    for (code, continent) in spot {
        assert_eq!(
            continent_of(Country::parse(code).unwrap()),
            Some(continent),
            "{code}"
        );
    }
    assert_eq!(continent_of(Country(*b"ZZ")), None);
    assert_eq!(centroid_of(Country(*b"ZZ")), None);
}

#[test]
fn centroids_are_inside_their_countries() {
    // A few checks that latitude and longitude are not swapped or misplaced.
    let near = |code: &[u8; 2], place: (f64, f64), km: f64| {
        let c = centroid_of(Country(*code)).unwrap();
        let d = great_circle_km(c, place);
        assert!(d < km, "{}: {d} km from {place:?}", Country(*code).as_str());
    };
    near(b"DE", (50.1, 8.7), 300.0); // Frankfurt
    near(b"US", (39.1, -94.6), 300.0); // Kansas City
    near(b"JP", (35.7, 139.7), 300.0); // Tokyo
    near(b"BR", (-15.8, -47.9), 600.0); // Brasília
    near(b"AU", (-23.7, 133.9), 300.0); // Alice Springs
    near(b"ZA", (-29.1, 26.2), 400.0); // Bloemfontein
}

// === distance ===

#[test]
fn great_circle_distances() {
    let london = (51.5074, -0.1278);
    let paris = (48.8566, 2.3522);
    let d = great_circle_km(london, paris);
    assert!((d - 344.0).abs() < 5.0, "{d}");
    assert_eq!(great_circle_km(paris, paris), 0.0);
    assert!((great_circle_km(paris, london) - d).abs() < 1e-9);
    let half = std::f64::consts::PI * 6371.0088;
    assert!((great_circle_km((0.0, 0.0), (0.0, 180.0)) - half).abs() < 1e-6);
    let ny_sydney = great_circle_km((40.7128, -74.0060), (-33.8688, 151.2093));
    assert!((ny_sydney - 15_990.0).abs() < 50.0, "{ny_sydney}");
}

// === cost and the shipped database ===

/// `cargo test --release --lib geo::tests::lookup_cost -- --ignored --nocapture`
#[test]
#[ignore]
#[allow(
    clippy::disallowed_methods,
    reason = "a benchmark: it times the lookups, which read no clock"
)]
fn lookup_cost() {
    let (_d1, db) = combined();
    let (_d2, city) = city_db();
    let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("geoip/country.mmdb");
    let shipped = shipped.exists().then(|| open(&[shipped]));
    let mut runs = vec![
        ("country_code v4", &db, ip("5.9.1.2")),
        ("country_code v6", &db, ip("2001:db8::1")),
        ("country_code miss", &db, ip("9.9.9.9")),
        ("city v4", &city, ip("81.2.69.160")),
    ];
    if let Some(shipped) = &shipped {
        runs.push(("shipped v4", shipped, ip("5.9.0.1")));
        runs.push(("shipped v6", shipped, ip("2a01:4f8::1")));
    }
    for (name, db, addr) in runs {
        let n = 2_000_000_u32;
        let start = std::time::Instant::now();
        for _ in 0..n {
            std::hint::black_box(db.locate(std::hint::black_box(addr)));
        }
        let ns = start.elapsed().as_nanos() as f64 / f64::from(n);
        println!("{name:>18}: {ns:6.1} ns/lookup");
    }
}

/// Checks `geoip/country.mmdb`: known addresses, and every country code in it
/// is in the built-in tables.
#[test]
#[ignore]
fn shipped_database() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("geoip/country.mmdb");
    let db = open(std::slice::from_ref(&path));
    assert_eq!(db.locate(ip("5.9.0.1")).country, cc("DE"));
    assert_eq!(db.locate(ip("8.8.8.8")).country, cc("US"));
    assert_eq!(db.locate(ip("2a01:4f8::1")).country, cc("DE"));
    assert_eq!(db.locate(ip("2001:4860:4860::8888")).country, cc("US"));

    let reader = maxminddb::Reader::open_readfile(&path).unwrap();
    let mut unknown = std::collections::BTreeSet::new();
    let mut seen = std::collections::BTreeSet::new();
    for found in reader.networks(Default::default()).unwrap() {
        let found = found.unwrap();
        let code: Option<String> = found
            .decode_path(&maxminddb::path!["country_code"])
            .unwrap();
        let code = code.unwrap_or_default();
        if seen.insert(code.clone()) && Country::parse(&code).and_then(continent_of).is_none() {
            unknown.insert(code);
        }
    }
    println!("{} codes in the shipped database", seen.len());
    assert!(
        unknown.is_empty(),
        "codes missing from the tables: {unknown:?}"
    );
}

#[test]
fn the_per_thread_address_cache_never_answers_for_another_database() {
    let dir = TempDir::new().expect("tempdir");
    let mut a = Writer::builder("a")
        .ip_version(IpVersion::V6)
        .ipv4_aliasing(Ipv4Aliasing::Enabled)
        .build();
    insert(&mut a, "5.9.0.0/16", code("DE"));
    let mut b = Writer::builder("b")
        .ip_version(IpVersion::V6)
        .ipv4_aliasing(Ipv4Aliasing::Enabled)
        .build();
    insert(&mut b, "5.9.0.0/16", code("FR"));
    let (a, b) = (
        open(&[write(&dir, "a.mmdb", &a)]),
        open(&[write(&dir, "b.mmdb", &b)]),
    );
    for _ in 0..3 {
        // Same address, same slot, alternating databases: each its own answer.
        assert_eq!(a.locate(ip("5.9.1.0")).country, cc("DE"));
        assert_eq!(b.locate(ip("5.9.1.0")).country, cc("FR"));
    }
    // A reload opens the same file anew: a new id, answers unchanged.
    let again = open(&[dir.path().join("a.mmdb")]);
    assert_eq!(again.locate(ip("5.9.1.0")).country, cc("DE"));
}
