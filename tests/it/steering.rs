//! Steering policies (DESIGN §3) end to end: config → real DNS answers.

use std::collections::HashMap;
use std::net::IpAddr;

use hickory_proto::rr::RecordType;

use crate::both_paths;
use crate::harness::dig::{self, Ask, addrs, ecs, ip};
use crate::harness::geosteer::{TestServer, server_header};
use crate::harness::mmdb;

const POOLS: &str = "
[pools.us]
location = [39.0, -77.5]
weight = 3
endpoints = [{ address = \"192.0.2.1\" }, { address = \"192.0.2.11\", weight = 1 }, { address = \"2001:db8:1::1\" }]
[pools.eu]
location = [50.1, 8.7]
weight = 1
endpoints = [{ address = \"192.0.2.2\" }]
[pools.ap]
location = [35.7, 139.7]
endpoints = [{ address = \"192.0.2.3\" }]
";

async fn start(balance: &str, geo: Vec<u8>) -> TestServer {
    let cfg = format!(
        "{}{POOLS}\n{balance}",
        server_header("geoip = \"geo.mmdb\"")
    );
    TestServer::start(&cfg, &[("geo.mmdb", &geo)]).await
}

async fn a(s: &TestServer, name: &str, subnet: &str) -> Vec<IpAddr> {
    addrs(&dig::udp(s.dns, &Ask::new(name, RecordType::A).ecs(subnet)).await)
}

/// Which pool an address belongs to.
fn pool_of(addr: &IpAddr) -> &'static str {
    match addr.to_string().as_str() {
        "192.0.2.1" | "192.0.2.11" => "us",
        "192.0.2.2" => "eu",
        "192.0.2.3" => "ap",
        "192.0.2.99" => "fb",
        other => panic!("unexpected address {other}"),
    }
}

both_paths! {
async fn failover_answers_from_the_first_pool() {
    let s = start(
        "[[balance]]\nname = \"fo.example.test\"\npolicy = \"failover\"\npools = [\"eu\", \"us\"]\n",
        mmdb::standard_country_db(),
    )
    .await;
    for subnet in ["5.9.0.0/24", "8.8.8.0/24", "203.0.113.0/24"] {
        assert_eq!(
            a(&s, "fo.example.test.", subnet).await,
            vec![ip("192.0.2.2")]
        );
    }
    s.stop().await;
}
}

both_paths! {
async fn geo_prefers_subnets_then_countries_then_continents() {
    let balance = "[[balance]]
name = \"geo.example.test\"
policy = \"geo\"
pools = [\"us\", \"eu\", \"ap\"]
countries = { DE = [\"eu\"], JP = [\"ap\"] }
continents = { SA = [\"eu\", \"us\"], AS = [\"eu\"] }
subnets = { \"5.9.7.0/24\" = [\"ap\"], \"5.9.7.128/25\" = [\"us\"] }
";
    let s = start(balance, mmdb::standard_country_db()).await;
    let q = "geo.example.test.";
    assert_eq!(
        pool_of(&a(&s, q, "5.9.1.0/24").await[0]),
        "eu",
        "country DE"
    );
    assert_eq!(
        pool_of(&a(&s, q, "203.0.113.0/24").await[0]),
        "ap",
        "country JP beats continent AS"
    );
    assert_eq!(
        pool_of(&a(&s, q, "198.18.0.0/24").await[0]),
        "eu",
        "BR → continent SA"
    );
    assert_eq!(
        pool_of(&a(&s, q, "5.9.7.0/25").await[0]),
        "ap",
        "subnet beats country"
    );
    assert_eq!(
        pool_of(&a(&s, q, "5.9.7.128/25").await[0]),
        "us",
        "most specific subnet wins"
    );
    assert_eq!(
        pool_of(&a(&s, q, "100.64.0.0/24").await[0]),
        "us",
        "unknown → default order"
    );
    // Scopes: a subnet match gives its own prefix; a country match inside a
    // network that holds a more specific subnet is de-aggregated past it.
    let scope = |m: &hickory_proto::op::Message| ecs(m).map(|e| e.2);
    let m = dig::udp(s.dns, &Ask::new(q, RecordType::A).ecs("5.9.7.128/25")).await;
    assert_eq!(scope(&m), Some(25));
    let m = dig::udp(s.dns, &Ask::new(q, RecordType::A).ecs("5.9.1.0/24")).await;
    let sc = scope(&m).expect("scope");
    assert!(
        sc > 16 && sc <= 24,
        "5.9.7.0/24 lies inside 5.9.0.0/16, so scope {sc} must exclude it"
    );
    s.stop().await;
}
}

both_paths! {
async fn proximity_picks_the_nearest_pool() {
    let city = mmdb::city_db(&[
        ("198.51.100.0/24", "JP", "AS", 35.68, 139.69), // Tokyo
        ("192.0.2.0/24", "DE", "EU", 50.11, 8.68),      // Frankfurt
        ("100.64.0.0/10", "US", "NA", 40.7, -74.0),     // New York
    ]);
    let balance = "[[balance]]\nname = \"near.example.test\"\npolicy = \"proximity\"\npools = [\"us\", \"eu\", \"ap\"]\n";
    let s = start(balance, city).await;
    let q = "near.example.test.";
    assert_eq!(pool_of(&a(&s, q, "198.51.100.0/24").await[0]), "ap");
    assert_eq!(pool_of(&a(&s, q, "192.0.2.0/24").await[0]), "eu");
    assert_eq!(pool_of(&a(&s, q, "100.64.1.0/24").await[0]), "us");
    let m = dig::udp(s.dns, &Ask::new(q, RecordType::A).ecs("198.51.100.0/24")).await;
    assert_eq!(ecs(&m).map(|e| e.2), Some(24));
    s.stop().await;
}
}

both_paths! {
async fn proximity_falls_back_to_country_centroids() {
    // country_code schema: no coordinates, so the built-in centroid is used.
    let balance = "[[balance]]\nname = \"near.example.test\"\npolicy = \"proximity\"\npools = [\"us\", \"eu\", \"ap\"]\n";
    let s = start(balance, mmdb::standard_country_db()).await;
    let q = "near.example.test.";
    assert_eq!(
        pool_of(&a(&s, q, "5.9.1.0/24").await[0]),
        "eu",
        "DE centroid"
    );
    assert_eq!(
        pool_of(&a(&s, q, "203.0.113.0/24").await[0]),
        "ap",
        "JP centroid"
    );
    assert_eq!(
        pool_of(&a(&s, q, "8.8.8.0/24").await[0]),
        "us",
        "US centroid"
    );
    s.stop().await;
}
}

#[tokio::test]
async fn proximity_tells_apart_cities_a_country_centroid_would_not() {
    // Pools on both US coasts and at both ends of Europe. The US centroid
    // (Kansas) is nearer Virginia than Oregon, and one centroid per country
    // cannot tell Seattle from New York: only city coordinates can.
    let pools = "
[pools.us-west]
location = [45.6, -121.2]
endpoints = [{ address = \"192.0.2.1\" }]
[pools.us-east]
location = [39.0, -77.5]
endpoints = [{ address = \"192.0.2.2\" }]
[pools.eu-west]
location = [40.4, -3.7]
endpoints = [{ address = \"192.0.2.3\" }]
[pools.eu-east]
location = [50.1, 19.9]
endpoints = [{ address = \"192.0.2.4\" }]
[[balance]]
name = \"near.example.test\"
policy = \"proximity\"
pools = [\"us-east\", \"us-west\", \"eu-west\", \"eu-east\"]
";
    // GeoLite2-City shape for IPv4, and the same cities again as a country
    // database would see them (one point per country) for contrast.
    let city = mmdb::city_db(&[
        ("100.64.1.0/24", "US", "NA", 47.61, -122.33), // Seattle
        ("100.64.2.0/24", "US", "NA", 40.71, -74.01),  // New York
        ("198.51.100.0/24", "PT", "EU", 38.72, -9.14), // Lisbon
        ("203.0.113.0/24", "PL", "EU", 52.23, 21.01),  // Warsaw
    ]);
    let country = mmdb::country_db(&[("100.64.1.0/24", "US"), ("100.64.2.0/24", "US")]);
    let pool_at = |a: &IpAddr| match a.to_string().as_str() {
        "192.0.2.1" => "us-west",
        "192.0.2.2" => "us-east",
        "192.0.2.3" => "eu-west",
        "192.0.2.4" => "eu-east",
        other => panic!("unexpected address {other}"),
    };
    let q = "near.example.test.";
    let cfg = format!("{}{pools}", server_header("geoip = \"geo.mmdb\""));
    let s = TestServer::start(&cfg, &[("geo.mmdb", &city)]).await;
    assert_eq!(
        pool_at(&a(&s, q, "100.64.1.0/24").await[0]),
        "us-west",
        "Seattle"
    );
    assert_eq!(
        pool_at(&a(&s, q, "100.64.2.0/24").await[0]),
        "us-east",
        "New York"
    );
    assert_eq!(
        pool_at(&a(&s, q, "198.51.100.0/24").await[0]),
        "eu-west",
        "Lisbon"
    );
    assert_eq!(
        pool_at(&a(&s, q, "203.0.113.0/24").await[0]),
        "eu-east",
        "Warsaw"
    );
    s.stop().await;
    // With countries only, both US cities land on the centroid's nearest pool.
    let s = TestServer::start(&cfg, &[("geo.mmdb", &country)]).await;
    assert_eq!(pool_at(&a(&s, q, "100.64.1.0/24").await[0]), "us-east");
    assert_eq!(pool_at(&a(&s, q, "100.64.2.0/24").await[0]), "us-east");
    s.stop().await;
}

#[tokio::test]
async fn a_geoip_list_may_mix_a_city_and_a_country_database() {
    // City coordinates for IPv4 (GeoLite2-City or DB-IP City Lite), a
    // country database for IPv6: proximity uses each where it answers.
    let city = mmdb::city_db(&[("100.64.1.0/24", "US", "NA", 47.61, -122.33)]);
    let country = mmdb::country_db(&[("2001:db8::/32", "DE")]);
    let balance = "[[balance]]\nname = \"near.example.test\"\npolicy = \"proximity\"\npools = [\"us\", \"eu\", \"ap\"]\n";
    let cfg = format!(
        "{}{POOLS}\n{balance}",
        server_header("geoip = [\"city.mmdb\", \"country.mmdb\"]")
    );
    let s = TestServer::start(&cfg, &[("city.mmdb", &city), ("country.mmdb", &country)]).await;
    let q = "near.example.test.";
    assert_eq!(
        pool_of(&a(&s, q, "100.64.1.0/24").await[0]),
        "us",
        "Seattle (city)"
    );
    assert_eq!(
        pool_of(&a(&s, q, "2001:db8::/48").await[0]),
        "eu",
        "DE (country)"
    );
    s.stop().await;
}

both_paths! {
async fn weighted_draws_pools_by_weight() {
    let balance =
        "[[balance]]\nname = \"w.example.test\"\npolicy = \"weighted\"\npools = [\"us\", \"eu\"]\n";
    let s = start(balance, mmdb::standard_country_db()).await;
    let mut counts: HashMap<&str, u32> = HashMap::new();
    for _ in 0..400 {
        let got = a(&s, "w.example.test.", "5.9.1.0/24").await;
        *counts.entry(pool_of(&got[0])).or_default() += 1;
    }
    let us = counts.get("us").copied().unwrap_or(0) as f64;
    let share = us / 400.0;
    // Weights 3:1 → 75%; 400 draws keep it within ±10% with overwhelming odds.
    assert!(
        (0.65..=0.85).contains(&share),
        "us share {share} (counts {counts:?})"
    );
    s.stop().await;
}
}

both_paths! {
async fn random_uses_every_pool() {
    let balance = "[[balance]]\nname = \"r.example.test\"\npolicy = \"random\"\npools = [\"us\", \"eu\", \"ap\"]\n";
    let s = start(balance, mmdb::standard_country_db()).await;
    let mut seen: HashMap<&str, u32> = HashMap::new();
    for _ in 0..150 {
        let got = a(&s, "r.example.test.", "5.9.1.0/24").await;
        *seen.entry(pool_of(&got[0])).or_default() += 1;
    }
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert!(seen.values().all(|n| *n >= 20), "roughly uniform: {seen:?}");
    s.stop().await;
}
}

both_paths! {
async fn latency_without_measurements_behaves_as_failover() {
    let balance =
        "[[balance]]\nname = \"l.example.test\"\npolicy = \"latency\"\npools = [\"ap\", \"us\"]\n";
    let s = start(balance, mmdb::standard_country_db()).await;
    for _ in 0..5 {
        assert_eq!(
            a(&s, "l.example.test.", "8.8.8.0/24").await,
            vec![ip("192.0.2.3")]
        );
    }
    s.stop().await;
}
}

both_paths! {
async fn answers_returns_several_distinct_endpoints_by_weight() {
    let balance = "[[balance]]\nname = \"m.example.test\"\npolicy = \"failover\"\npools = [\"us\"]\nanswers = 2\n";
    let s = start(balance, mmdb::standard_country_db()).await;
    let got = a(&s, "m.example.test.", "8.8.8.0/24").await;
    assert_eq!(got.len(), 2);
    assert_ne!(got[0], got[1]);
    // Only the pool's IPv4 endpoints for A; only IPv6 for AAAA.
    let m = dig::udp(s.dns, &Ask::new("m.example.test.", RecordType::AAAA)).await;
    assert_eq!(addrs(&m), vec![ip("2001:db8:1::1")]);
    s.stop().await;
}
}

both_paths! {
async fn endpoint_weights_shape_single_answers() {
    let cfg = format!(
        "{}[pools.p]\nendpoints = [{{ address = \"192.0.2.1\", weight = 3 }}, {{ address = \"192.0.2.11\", weight = 1 }}]\n[[balance]]\nname = \"e.example.test\"\npolicy = \"failover\"\npools = [\"p\"]\n",
        server_header("")
    );
    let s = TestServer::start(&cfg, &[]).await;
    let mut heavy = 0;
    for _ in 0..400 {
        if addrs(&dig::udp(s.dns, &Ask::new("e.example.test.", RecordType::A)).await)[0]
            == ip("192.0.2.1")
        {
            heavy += 1;
        }
    }
    assert!((260..=340).contains(&heavy), "weight 3:1 gave {heavy}/400");
    s.stop().await;
}
}

both_paths! {
async fn fails_open_to_the_fallback_when_no_pool_is_usable() {
    // Monitored pools whose probes point at a closed port: never up.
    let cfg = format!(
        "{}
[monitors.dead]
type = \"tcp\"
interval = \"1s\"
timeout = \"200ms\"
[pools.a]
monitor = \"dead\"
endpoints = [{{ address = \"192.0.2.1\", probe = \"127.0.0.1:9\" }}]
[pools.fb]
monitor = \"dead\"
endpoints = [{{ address = \"192.0.2.99\", probe = \"127.0.0.1:9\" }}]
[[balance]]
name = \"fo.example.test\"
policy = \"failover\"
pools = [\"a\"]
fallback = \"fb\"
[[balance]]
name = \"none.example.test\"
policy = \"failover\"
pools = [\"a\"]
",
        server_header("")
    );
    let s = TestServer::start(&cfg, &[]).await;
    let m = dig::udp(s.dns, &Ask::new("fo.example.test.", RecordType::A)).await;
    assert_eq!(addrs(&m), vec![ip("192.0.2.99")], "fail open to fallback");
    // Without a fallback: NODATA (no address is better than a dead one? no: nothing usable).
    let m = dig::udp(s.dns, &Ask::new("none.example.test.", RecordType::A)).await;
    assert!(addrs(&m).is_empty());
    s.stop().await;
}
}

both_paths! {
async fn explain_follows_the_same_path_as_answers() {
    let balance = "[[balance]]\nname = \"geo.example.test\"\npolicy = \"geo\"\npools = [\"us\", \"eu\", \"ap\"]\ncountries = { DE = [\"eu\"] }\n";
    let s = start(balance, mmdb::standard_country_db()).await;
    let snap = s.running.shared.load_full();
    let e =
        geosteer::explain::explain(&snap, "geo.example.test", "A", "5.9.1.0/24").expect("explain");
    assert_eq!(e.country.as_deref(), Some("DE"));
    assert_eq!(e.trace.pool.as_deref(), Some("eu"));
    assert!(
        e.trace
            .steps
            .iter()
            .any(|l| l.contains("country match: DE")),
        "{:?}",
        e.trace.steps
    );
    assert_eq!(
        e.trace.records,
        a(&s, "geo.example.test.", "5.9.1.0/24").await
    );
    assert_eq!(e.ecs_scope, 16);
    assert!(geosteer::explain::explain(&snap, "static.example.test", "A", "1.2.3.4").is_err());
    s.stop().await;
}
}
