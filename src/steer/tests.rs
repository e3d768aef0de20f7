//! Table-driven tests of the steering core, with a seeded RNG and hand-made health.

use std::net::IpAddr;
use std::path::Path;

use rand::SeedableRng;
use rand::rngs::SmallRng;

use super::*;
use crate::config::{self, Config, Country};
use crate::geo::Location;
use crate::health::{EndpointState, HealthView, PoolState};

const CONFIG: &str = r#"
[server]
dns_listen = ["127.0.0.1:0"]
[zones]
"example.test" = "z"
[pools.us]
weight = 3
location = [39.0, -77.5]
endpoints = [{ address = "192.0.2.1" }, { address = "192.0.2.11", weight = 3 }, { address = "2001:db8::1" }]
[pools.eu]
weight = 1
location = [50.1, 8.7]
endpoints = [{ address = "192.0.2.2" }]
[pools.ap]
location = [35.7, 139.7]
endpoints = [{ address = "192.0.2.3" }]
[[balance]]
name = "geo.example.test"
policy = "geo"
pools = ["us", "eu", "ap"]
fallback = "ap"
countries = { DE = ["eu"] }
continents = { AS = ["ap"] }
subnets = { "10.0.0.0/8" = ["ap"], "10.1.0.0/16" = ["eu"], "10.2.3.0/24" = ["us"] }
[[balance]]
name = "w.example.test"
policy = "weighted"
pools = ["us", "eu"]
answers = 2
"#;

fn setup() -> (Config, SteeringTable) {
    let (config, _) =
        config::parse(CONFIG, Path::new("t.toml"), Path::new(".")).expect("valid test config");
    let table = SteeringTable::compile(&config, &crate::metrics::Registry::default());
    (config, table)
}

fn all_up(config: &Config) -> HealthView {
    let mut h = HealthView::initial(config);
    for p in &mut h.pools {
        for e in &mut p.endpoints {
            e.state = EndpointState::Up;
        }
        p.up = p.total;
        p.state = PoolState::Healthy;
    }
    h
}

fn client(addr: &str, prefix: u8, country: Option<&str>, geo_prefix: u8) -> Client {
    let country = country.and_then(Country::parse);
    Client {
        addr: addr.parse().unwrap(),
        source_prefix: prefix,
        location: Location {
            country,
            continent: country.and_then(crate::geo::tables::continent_of),
            coords: None,
            prefix_len: geo_prefix,
        },
    }
}

fn run(
    config: &Config,
    table: &SteeringTable,
    health: &HealthView,
    name: &str,
    c: &Client,
) -> Decision {
    let inputs = Inputs { config, health };
    let mut rng = SmallRng::seed_from_u64(7);
    decide(
        table.get(name).unwrap(),
        c,
        Family::V4,
        &inputs,
        &mut rng,
        None,
    )
}

#[test]
fn geo_order_and_scope_table() {
    let (config, table) = setup();
    let health = all_up(&config);
    // (client, source prefix, country, GeoIP prefix) → (pool, scope)
    let cases = [
        ("10.2.3.0", 24, None, 8, "us", 24), // most specific subnet
        ("10.1.9.0", 24, None, 8, "eu", 16), // /16 holds the /24 hole elsewhere: 10.1/16 has no child
        ("10.9.0.0", 24, None, 8, "ap", 13), // 10.9 and 10.1/10.2 share 12 bits: /13 excludes both holes
        ("5.9.0.0", 24, Some("DE"), 16, "eu", 16),
        ("1.2.3.0", 24, Some("JP"), 20, "ap", 20), // continent AS
        ("8.8.8.0", 24, Some("US"), 24, "us", 24), // no rule: default order
        ("0.0.0.0", 24, None, 0, "us", 5), // no GeoIP data; 0/5 is the widest net without 10/8
    ];
    for (addr, prefix, country, gp, pool, scope) in cases {
        let d = run(
            &config,
            &table,
            &health,
            "geo.example.test.",
            &client(addr, prefix, country, gp),
        );
        let got = config.pool(d.pool.unwrap()).name.clone();
        assert_eq!(
            (got.as_str(), d.scope_prefix),
            (pool, scope),
            "client {addr}"
        );
        assert_eq!(d.basis, Basis::Healthy);
    }
}

#[test]
fn walk_prefers_healthy_then_degraded_then_fallback() {
    let (config, table) = setup();
    let c = client("5.9.0.0", 24, Some("DE"), 16);
    let mut health = all_up(&config);
    let eu = config.pool_id("eu").unwrap().index();
    let us = config.pool_id("us").unwrap().index();
    let ap = config.pool_id("ap").unwrap().index();
    health.pools[eu].state = PoolState::Degraded;
    let d = run(&config, &table, &health, "geo.example.test.", &c);
    assert_eq!(
        config.pool(d.pool.unwrap()).name,
        "us",
        "healthy beats a degraded earlier pool"
    );
    health.pools[us].state = PoolState::Down;
    health.pools[ap].state = PoolState::Down;
    let d = run(&config, &table, &health, "geo.example.test.", &c);
    assert_eq!(
        (config.pool(d.pool.unwrap()).name.as_str(), d.basis),
        ("eu", Basis::Degraded)
    );
    health.pools[eu].state = PoolState::Down;
    let d = run(&config, &table, &health, "geo.example.test.", &c);
    assert_eq!(
        (config.pool(d.pool.unwrap()).name.as_str(), d.basis),
        ("ap", Basis::FailOpen)
    );
    assert_eq!(
        d.endpoints.as_slice(),
        ["192.0.2.3".parse::<IpAddr>().unwrap()],
        "fail open answers every endpoint"
    );
}

#[test]
fn down_and_draining_endpoints_leave_answers() {
    let (config, table) = setup();
    let mut health = all_up(&config);
    let us = config.pool_id("us").unwrap().index();
    health.pools[us].endpoints[1].draining = true;
    let c = client("8.8.8.0", 24, Some("US"), 24);
    for _ in 0..20 {
        let d = run(&config, &table, &health, "geo.example.test.", &c);
        assert_eq!(
            d.endpoints.as_slice(),
            ["192.0.2.1".parse::<IpAddr>().unwrap()]
        );
    }
    health.pools[us].endpoints[0].state = EndpointState::Down;
    let d = run(&config, &table, &health, "geo.example.test.", &c);
    assert!(
        d.endpoints.is_empty(),
        "pool state says healthy but no usable IPv4 endpoint: NODATA"
    );
}

#[test]
fn weighted_pool_draw_is_three_to_one() {
    let (config, table) = setup();
    let health = all_up(&config);
    let inputs = Inputs {
        config: &config,
        health: &health,
    };
    let name = table.get("w.example.test.").unwrap();
    let mut rng = SmallRng::seed_from_u64(7);
    let c = client("8.8.8.0", 24, None, 0);
    let mut us = 0;
    let n = 20_000;
    for _ in 0..n {
        let d = decide(name, &c, Family::V4, &inputs, &mut rng, None);
        if config.pool(d.pool.unwrap()).name == "us" {
            us += 1;
        }
        assert_eq!(d.scope_prefix, 0);
    }
    let share = us as f64 / n as f64;
    assert!((share - 0.75).abs() < 0.02, "us share {share}");
}

#[test]
fn endpoint_draw_follows_weights_without_replacement() {
    let (config, table) = setup();
    let health = all_up(&config);
    let inputs = Inputs {
        config: &config,
        health: &health,
    };
    let name = table.get("w.example.test.").unwrap();
    let mut rng = SmallRng::seed_from_u64(11);
    let c = client("8.8.8.0", 24, None, 0);
    let mut first_heavy = 0;
    let mut n = 0;
    for _ in 0..20_000 {
        let d = decide(name, &c, Family::V4, &inputs, &mut rng, None);
        if config.pool(d.pool.unwrap()).name != "us" {
            continue;
        }
        n += 1;
        assert_eq!(d.endpoints.len(), 2, "answers = 2");
        assert_ne!(d.endpoints[0], d.endpoints[1]);
        if d.endpoints[0] == "192.0.2.11".parse::<IpAddr>().unwrap() {
            first_heavy += 1;
        }
    }
    let share = first_heavy as f64 / n as f64;
    assert!(
        (share - 0.75).abs() < 0.02,
        "weight 3 endpoint first {share}"
    );
}

#[test]
fn one_answer_draw_follows_weights() {
    let (config, table) = setup();
    let health = all_up(&config);
    let inputs = Inputs {
        config: &config,
        health: &health,
    };
    let name = table.get("geo.example.test.").unwrap();
    let mut rng = SmallRng::seed_from_u64(12);
    // 10.2.3.0/24 -> us, whose IPv4 endpoints weigh 1 and 3.
    let c = client("10.2.3.4", 32, None, 0);
    let heavy: IpAddr = "192.0.2.11".parse().unwrap();
    let n = 20_000;
    let mut got_heavy = 0;
    for _ in 0..n {
        let d = decide(name, &c, Family::V4, &inputs, &mut rng, None);
        assert_eq!(d.endpoints.len(), 1, "answers = 1");
        got_heavy += usize::from(d.endpoints[0] == heavy);
    }
    let share = got_heavy as f64 / n as f64;
    assert!((share - 0.75).abs() < 0.02, "weight 3 endpoint {share}");
}

#[test]
fn trace_records_every_step() {
    let (config, table) = setup();
    let health = all_up(&config);
    let inputs = Inputs {
        config: &config,
        health: &health,
    };
    let mut trace = Trace::default();
    let mut rng = SmallRng::seed_from_u64(7);
    let c = client("5.9.0.0", 24, Some("DE"), 16);
    let d = decide(
        table.get("geo.example.test.").unwrap(),
        &c,
        Family::V4,
        &inputs,
        &mut rng,
        Some(&mut trace),
    );
    assert!(
        trace.steps.iter().any(|s| s == "country match: DE"),
        "{:?}",
        trace.steps
    );
    assert!(
        trace
            .steps
            .iter()
            .any(|s| s.starts_with("candidate order: eu, us, ap")),
        "{:?}",
        trace.steps
    );
    assert_eq!(trace.pool.as_deref(), Some("eu"));
    assert_eq!(trace.records, d.endpoints.as_slice());
}

/// A geo name whose `subnets` map holds `n` /24s from 1.0.0.0 up, pools a, b,
/// c in turn, plus a /16 over the first 256 of them and a /28 hole inside one.
fn many_prefixes(n: u32) -> String {
    let mut text = String::from(
        "[server]\ndns_listen = [\"127.0.0.1:0\"]\n[zones]\n\"example.test\" = \"z\"\n",
    );
    for (p, ip) in [("a", 1), ("b", 2), ("c", 3), ("d", 4)] {
        text += &format!("[pools.{p}]\nendpoints = [{{ address = \"192.0.2.{ip}\" }}]\n");
    }
    text += "[[balance]]\nname = \"big.example.test\"\npolicy = \"geo\"\npools = [\"a\", \"b\", \"c\", \"d\"]\n[balance.subnets]\n";
    for k in 0..n {
        let net = std::net::Ipv4Addr::from((1 << 24) + (k << 8));
        text += &format!("\"{net}/24\" = [\"{}\"]\n", ["a", "b", "c"][k as usize % 3]);
    }
    text += "\"1.0.0.0/16\" = [\"d\"]\n\"1.0.7.16/28\" = [\"d\"]\n";
    text
}

#[test]
fn a_hundred_thousand_prefixes_load_and_answer() {
    let started = std::time::Instant::now();
    let (config, _) = config::parse(&many_prefixes(100_000), Path::new("t.toml"), Path::new("."))
        .expect("valid config");
    assert_eq!(config.balance[0].subnets.len(), 100_002);
    let table = SteeringTable::compile(&config, &crate::metrics::Registry::default());
    let health = all_up(&config);
    // (client, pool, scope); the k-th /24 starts at 1.0.0.0 + 256 k.
    let cases = [
        ("1.0.5.9", "c", 24),     // k = 5: the /24 wins over the /16
        ("1.0.7.20", "d", 28),    // inside the /28 hole of k = 7
        ("1.0.7.200", "b", 25),   // k = 7, outside the hole: narrowed past it
        ("1.1.0.1", "b", 24),     // k = 256
        ("2.134.159.1", "a", 24), // k = 99,999, the last one
        ("2.134.160.1", "a", 24), // past the end: no match, default order
    ];
    for (addr, pool, scope) in cases {
        let d = run(
            &config,
            &table,
            &health,
            "big.example.test.",
            &client(addr, 24, None, 24),
        );
        let got = config.pool(d.pool.unwrap()).name.as_str();
        assert_eq!((got, d.scope_prefix), (pool, scope), "client {addr}");
    }
    // Debug build, shared machine: generous, but catches anything quadratic.
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
}
