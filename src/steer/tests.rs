//! Table-driven tests of the steering core, with a seeded RNG and hand-made health.

use std::net::IpAddr;
use std::path::Path;

use rand::SeedableRng;
use rand::rngs::SmallRng;

use super::*;
use crate::config::{self, Config, Country, OnAllDown};
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
[[balance]]
name = "all.example.test"
policy = "failover"
pools = ["eu", "ap"]
ttl = 60
on_all_down = "all"
[[balance]]
name = "sf.example.test"
policy = "failover"
pools = ["eu"]
on_all_down = "servfail"
[[balance]]
name = "nd.example.test"
policy = "failover"
pools = ["eu"]
min_ttl = 7
"#;

fn setup() -> (Config, SteeringTable) {
    let (config, _) =
        config::parse(CONFIG, Path::new("t.toml"), Path::new("."), "").expect("valid test config");
    let table = SteeringTable::compile(&config, &crate::metrics::Registry::default());
    (config, table)
}

fn all_up(config: &Config) -> HealthView {
    let mut h = HealthView::initial(config);
    for (i, p) in h.pools.iter_mut().enumerate() {
        for e in &mut p.endpoints {
            e.state = EndpointState::Up;
        }
        p.recount(config.pools[i].min_healthy, false);
    }
    h
}

/// Sets pool `name` to `state` as its endpoints would: down takes every
/// endpoint down, degraded keeps them up with the degraded verdict.
fn set(config: &Config, health: &mut HealthView, name: &str, state: PoolState) {
    let id = config.pool_id(name).unwrap();
    let p = &mut health.pools[id.index()];
    for e in &mut p.endpoints {
        e.state = if state == PoolState::Down {
            EndpointState::Down
        } else {
            EndpointState::Up
        };
    }
    p.recount(config.pool(id).min_healthy, state == PoolState::Degraded);
}

/// Endpoint `i` of pool `name` set to `state` (and drained or not).
fn set_endpoint(
    config: &Config,
    health: &mut HealthView,
    name: &str,
    i: usize,
    state: EndpointState,
    draining: bool,
) {
    let id = config.pool_id(name).unwrap();
    let p = &mut health.pools[id.index()];
    p.endpoints[i].state = state;
    p.endpoints[i].draining = draining;
    let degraded = p.degraded_here;
    p.recount(config.pool(id).min_healthy, degraded);
}

fn run_family(
    config: &Config,
    table: &SteeringTable,
    health: &HealthView,
    name: &str,
    c: &Client,
    family: Family,
) -> Decision {
    let inputs = Inputs { config, health };
    let mut rng = SmallRng::seed_from_u64(7);
    decide(table.get(name).unwrap(), c, family, &inputs, &mut rng, None)
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
    set(&config, &mut health, "eu", PoolState::Degraded);
    let d = run(&config, &table, &health, "geo.example.test.", &c);
    assert_eq!(
        config.pool(d.pool.unwrap()).name,
        "us",
        "healthy beats a degraded earlier pool"
    );
    set(&config, &mut health, "us", PoolState::Down);
    set(&config, &mut health, "ap", PoolState::Down);
    let d = run(&config, &table, &health, "geo.example.test.", &c);
    assert_eq!(
        (config.pool(d.pool.unwrap()).name.as_str(), d.basis),
        ("eu", Basis::Degraded)
    );
    set(&config, &mut health, "eu", PoolState::Down);
    let d = run(&config, &table, &health, "geo.example.test.", &c);
    assert_eq!(
        (config.pool(d.pool.unwrap()).name.as_str(), d.basis),
        ("ap", Basis::AllDown(OnAllDown::Fallback)),
        "with a fallback, on_all_down defaults to it"
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
    set_endpoint(&config, &mut health, "us", 1, EndpointState::Up, true);
    let c = client("8.8.8.0", 24, Some("US"), 24);
    for _ in 0..20 {
        let d = run(&config, &table, &health, "geo.example.test.", &c);
        assert_eq!(
            d.endpoints.as_slice(),
            ["192.0.2.1".parse::<IpAddr>().unwrap()]
        );
    }
    let us = &health.pools[config.pool_id("us").unwrap().index()];
    assert_eq!(
        (us.up, us.draining, us.total),
        (2, 1, 3),
        "a drained endpoint is not up"
    );
    set_endpoint(&config, &mut health, "us", 0, EndpointState::Down, false);
    let d = run(&config, &table, &health, "geo.example.test.", &c);
    assert_eq!(
        (
            config.pool(d.pool.unwrap()).name.as_str(),
            d.endpoints.as_slice()
        ),
        ("eu", ["192.0.2.2".parse::<IpAddr>().unwrap()].as_slice()),
        "no usable IPv4 endpoint in us: A goes to the next pool, not NODATA"
    );
}

#[test]
fn health_is_judged_per_family() {
    let (config, table) = setup();
    let mut health = all_up(&config);
    let c = client("8.8.8.0", 24, Some("US"), 24);
    let name = "geo.example.test.";
    // us has two IPv4 endpoints and one IPv6: both IPv4 down.
    set_endpoint(&config, &mut health, "us", 0, EndpointState::Down, false);
    set_endpoint(&config, &mut health, "us", 1, EndpointState::Down, false);
    let us = health.pools[config.pool_id("us").unwrap().index()].clone();
    assert_eq!(us.family(Family::V4).state, PoolState::Down);
    assert_eq!(us.family(Family::V6).state, PoolState::Healthy);
    assert_eq!(us.state, PoolState::Down, "the pool shows its worst family");
    let a = run_family(&config, &table, &health, name, &c, Family::V4);
    assert_eq!(config.pool(a.pool.unwrap()).name, "eu");
    assert_eq!(a.basis, Basis::Healthy);
    assert_eq!(
        (a.ttl, a.ttl_reason),
        (15, Some(TtlReason::NotFirst(config.pool_id("us").unwrap()))),
        "not the first candidate: min_ttl"
    );
    let aaaa = run_family(&config, &table, &health, name, &c, Family::V6);
    assert_eq!(config.pool(aaaa.pool.unwrap()).name, "us");
    assert_eq!(
        aaaa.endpoints.as_slice(),
        ["2001:db8::1".parse::<IpAddr>().unwrap()]
    );
    assert_eq!(aaaa.ttl, 30, "us is whole for AAAA: full ttl");
    // The scope does not depend on the family.
    assert_eq!(a.scope_prefix, aaaa.scope_prefix);
    // eu and ap have no IPv6 endpoint: they are skipped for AAAA. With us
    // down for AAAA too, the fallback ap has no AAAA either: the first
    // candidate that has one answers, health ignored.
    set_endpoint(&config, &mut health, "us", 2, EndpointState::Down, false);
    let aaaa = run_family(&config, &table, &health, name, &c, Family::V6);
    assert_eq!(
        (config.pool(aaaa.pool.unwrap()).name.as_str(), aaaa.basis),
        ("us", Basis::AllDown(OnAllDown::Fallback))
    );
    assert_eq!((aaaa.ttl, aaaa.ttl_reason), (15, Some(TtlReason::AllDown)));
}

#[test]
fn nodata_only_when_no_pool_has_the_family() {
    let (config, table) = setup();
    let health = all_up(&config);
    let c = client("5.9.0.0", 24, Some("DE"), 16);
    // all.example.test: eu and ap, IPv4 only.
    let d = run_family(
        &config,
        &table,
        &health,
        "all.example.test.",
        &c,
        Family::V6,
    );
    assert_eq!((d.pool, d.basis), (None, Basis::NoFamily));
    assert!(d.endpoints.is_empty());
    assert!(!d.servfail());
}

#[test]
fn on_all_down_modes() {
    let (config, table) = setup();
    let mut health = all_up(&config);
    let c = client("5.9.0.0", 24, Some("DE"), 16);
    for p in ["us", "eu", "ap"] {
        set(&config, &mut health, p, PoolState::Down);
    }
    // all: every IPv4 endpoint of eu and ap, health ignored, at min_ttl.
    let d = run(&config, &table, &health, "all.example.test.", &c);
    assert_eq!(d.basis, Basis::AllDown(OnAllDown::All));
    let mut got = d.endpoints.to_vec();
    got.sort();
    assert_eq!(
        got,
        [
            "192.0.2.2".parse::<IpAddr>().unwrap(),
            "192.0.2.3".parse().unwrap()
        ]
    );
    assert_eq!(
        (d.ttl, d.ttl_reason),
        (30, Some(TtlReason::AllDown)),
        "min_ttl = ttl/2"
    );
    // all leaves out a drained endpoint while another is left.
    set_endpoint(&config, &mut health, "eu", 0, EndpointState::Down, true);
    let d = run(&config, &table, &health, "all.example.test.", &c);
    assert_eq!(
        d.endpoints.as_slice(),
        ["192.0.2.3".parse::<IpAddr>().unwrap()]
    );
    // servfail.
    let d = run(&config, &table, &health, "sf.example.test.", &c);
    assert!(d.servfail());
    assert!(d.endpoints.is_empty());
    // Without fallback and mode: nodata.
    let d = run(&config, &table, &health, "nd.example.test.", &c);
    assert_eq!(d.basis, Basis::AllDown(OnAllDown::Nodata));
    assert!(d.endpoints.is_empty() && !d.servfail());
}

#[test]
fn ttl_is_min_ttl_unless_the_first_pool_is_healthy_and_whole() {
    let (config, table) = setup();
    let mut health = all_up(&config);
    let c = client("5.9.0.0", 24, Some("DE"), 16);
    let name = "nd.example.test.";
    let d = run(&config, &table, &health, name, &c);
    assert_eq!((d.ttl, d.ttl_reason), (30, None));
    set(&config, &mut health, "eu", PoolState::Degraded);
    let d = run(&config, &table, &health, name, &c);
    let eu = config.pool_id("eu").unwrap();
    assert_eq!((d.ttl, d.ttl_reason), (7, Some(TtlReason::Degraded(eu))));
    // us: one of its two IPv4 endpoints down, still healthy for A.
    set_endpoint(&config, &mut health, "us", 0, EndpointState::Down, false);
    let d = run(
        &config,
        &table,
        &health,
        "geo.example.test.",
        &client("8.8.8.0", 24, Some("US"), 24),
    );
    let us = config.pool_id("us").unwrap();
    assert_eq!(
        (d.ttl, d.ttl_reason),
        (15, Some(TtlReason::NotWhole(us, 1, 2)))
    );
    assert_eq!(
        TtlReason::NotWhole(us, 1, 2).describe(&config),
        "pool us not whole (up 1/2)"
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
#[allow(
    clippy::disallowed_methods,
    reason = "bounds the load time of a large map: the test measures, the code under test reads no clock"
)]
fn a_hundred_thousand_prefixes_load_and_answer() {
    let started = std::time::Instant::now();
    let (config, _) = config::parse(
        &many_prefixes(100_000),
        Path::new("t.toml"),
        Path::new("."),
        "",
    )
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

/// The `fail_open` event's rule and the walk agree: for every mix of pool
/// states, a name "fails open" for a family exactly when a client no rule
/// sends elsewhere gets an `on_all_down` answer.
#[test]
fn fails_open_is_the_walk_for_a_client_without_a_rule() {
    let (config, table) = setup();
    let states = [PoolState::Healthy, PoolState::Degraded, PoolState::Down];
    let unmatched = client("198.51.100.7", 32, None, 24);
    let mut seen = [false; 2];
    for us in states {
        for eu in states {
            for ap in states {
                let mut health = all_up(&config);
                set(&config, &mut health, "us", us);
                set(&config, &mut health, "eu", eu);
                set(&config, &mut health, "ap", ap);
                for name in ["geo.example.test.", "all.example.test.", "sf.example.test."] {
                    let b = table.get(name).unwrap();
                    for family in Family::BOTH {
                        let d = run_family(&config, &table, &health, name, &unmatched, family);
                        let walk = d.basis.all_down().is_some();
                        assert_eq!(
                            fails_open(&b.config, family, &health),
                            walk,
                            "{name} {family:?} us={us:?} eu={eu:?} ap={ap:?}: {d:?}"
                        );
                        seen[usize::from(walk)] = true;
                    }
                }
            }
        }
    }
    assert_eq!(seen, [true, true], "both outcomes were exercised");
}

/// A pool of `host` endpoints answers each endpoint's resolved addresses of
/// the family (all of them: one endpoint gives several); a name with only
/// A records leaves AAAA to the next pool; `answers` counts endpoints.
#[test]
fn host_endpoints_answer_their_resolved_addresses_per_family() {
    let text = r#"
[server]
dns_listen = ["127.0.0.1:0"]
resolvers = ["127.0.0.1:53"]
[zones]
"example.test" = "z"
[pools.cloud]
endpoints = [{ host = "lb-1.cloud.test" }, { host = "lb-2.cloud.test" }]
[pools.backup]
endpoints = [{ address = "192.0.2.99" }, { address = "2001:db8::99" }]
[[balance]]
name = "one.example.test"
policy = "failover"
pools = ["cloud", "backup"]
[[balance]]
name = "two.example.test"
policy = "failover"
pools = ["cloud", "backup"]
answers = 2
"#;
    let (config, _) =
        config::parse(text, Path::new("t.toml"), Path::new("."), "").expect("valid test config");
    let table = SteeringTable::compile(&config, &crate::metrics::Registry::default());
    let (cloud_id, backup) = (
        config.pool_id("cloud").unwrap(),
        config.pool_id("backup").unwrap(),
    );
    let mut book = crate::health::HealthBook::new(&config, 1);
    let ips = |l: &[&str]| -> Vec<IpAddr> { l.iter().map(|a| a.parse().unwrap()).collect() };
    let c = client("198.51.100.7", 32, None, 0);
    let sorted = |d: Decision| {
        let mut v = d.endpoints.to_vec();
        v.sort();
        v
    };
    // Not resolved yet: the pool is down, the backup answers.
    let h = book.view();
    let d = run_family(&config, &table, &h, "one.example.test.", &c, Family::V4);
    assert_eq!(d.endpoints.to_vec(), ips(&["192.0.2.99"]));
    book.resolved((cloud_id, 0), Ok(ips(&["192.0.2.2", "192.0.2.1"])), 1);
    book.resolved((cloud_id, 1), Ok(ips(&["192.0.2.3", "2001:db8::3"])), 1);
    let h = book.view();
    let cloud = h.pool(cloud_id).unwrap();
    assert_eq!(
        (
            cloud.family(Family::V4).total,
            cloud.family(Family::V6).total
        ),
        (2, 1)
    );
    let mut seen = std::collections::BTreeSet::new();
    for seed in 0..20 {
        let inputs = Inputs {
            config: &config,
            health: &h,
        };
        let mut rng = SmallRng::seed_from_u64(seed);
        let d = decide(
            table.get("one.example.test.").unwrap(),
            &c,
            Family::V4,
            &inputs,
            &mut rng,
            None,
        );
        seen.insert(sorted(d));
    }
    assert_eq!(
        seen.into_iter().collect::<Vec<_>>(),
        [ips(&["192.0.2.1", "192.0.2.2"]), ips(&["192.0.2.3"])],
        "one endpoint drawn, all of its addresses"
    );
    let d = run_family(&config, &table, &h, "two.example.test.", &c, Family::V4);
    assert_eq!(sorted(d), ips(&["192.0.2.1", "192.0.2.2", "192.0.2.3"]));
    let d = run_family(&config, &table, &h, "two.example.test.", &c, Family::V6);
    assert_eq!(sorted(d), ips(&["2001:db8::3"]), "only lb-2 has AAAA");
    // lb-2 resolves to A only now: no AAAA in the pool, the backup answers.
    book.resolved((cloud_id, 1), Ok(ips(&["192.0.2.3"])), 2);
    let h = book.view();
    let d = run_family(&config, &table, &h, "two.example.test.", &c, Family::V6);
    assert_eq!(d.pool, Some(backup));
    assert_eq!(d.endpoints.to_vec(), ips(&["2001:db8::99"]));
}

/// The walk as DESIGN §3 step 3 spells it, one rule at a time (the shape
/// the one-pass `pick::scan` replaced): per state, healthy then degraded,
/// the first pool that keeps the client (past a pool that passed it on,
/// only one with headroom), else the first pool of that state.
fn walk_spelled_out(
    order: &[PoolId],
    family: Family,
    c: &Client,
    health: &HealthView,
) -> Option<(PoolId, Basis)> {
    let fam = |p: PoolId| health.pool(p).map(|h| *h.family(family));
    let state = |p: PoolId| fam(p).map_or(PoolState::Down, |f| f.state);
    let present = |p: &PoolId| fam(*p).is_some_and(|f| f.present());
    let share = |p: PoolId| health.pool(p).map_or(1000, |h| h.share_permille());
    let headroom = |p: PoolId| health.pool(p).is_none_or(|h| h.headroom);
    let split = (health.splitting
        && order
            .iter()
            .any(|&p| share(p) < 1000 && state(p) != PoolState::Down))
    .then(|| hashing::unit(hashing::subnet_hash(hashing::client_subnet(c))));
    let admits = |p: PoolId| split.is_none_or(|at| at * 1000.0 < f64::from(share(p)));
    let kept = |want: PoolState| {
        let mut passed_on = false;
        order.iter().copied().filter(present).find(|&p| {
            if state(p) != want {
                return false;
            }
            if !admits(p) {
                passed_on = true;
                return false;
            }
            !passed_on || headroom(p)
        })
    };
    let any = |want: PoolState| {
        order
            .iter()
            .copied()
            .filter(present)
            .find(|&p| state(p) == want)
    };
    kept(PoolState::Healthy)
        .or_else(|| any(PoolState::Healthy))
        .map(|p| (p, Basis::Healthy))
        .or_else(|| {
            kept(PoolState::Degraded)
                .or_else(|| any(PoolState::Degraded))
                .map(|p| (p, Basis::Degraded))
        })
}

#[test]
fn the_one_pass_walk_is_the_rule_spelled_out() {
    use rand::RngExt;
    let (config, table) = setup();
    let names = ["us", "eu", "ap"];
    let order: Vec<PoolId> = names.iter().map(|n| config.pool_id(n).unwrap()).collect();
    let mut rng = SmallRng::seed_from_u64(11);
    let (mut spilled, mut stayed) = (0, 0);
    for round in 0..400 {
        let mut health = all_up(&config);
        for n in names {
            let state = match rng.random_range(0..4) {
                0 => PoolState::Down,
                1 => PoolState::Degraded,
                _ => PoolState::Healthy,
            };
            set(&config, &mut health, n, state);
            let p = &mut health.pools[config.pool_id(n).unwrap().index()];
            p.admit_permille = [1000, 1000, 600, 0][rng.random_range(0..4)];
            p.keep_permille = [1000, 1000, 400, 900][rng.random_range(0..4)];
            p.headroom = rng.random_bool(0.5);
        }
        health.splitting = health.pools.iter().any(|p| p.share_permille() < 1000);
        for i in 0..16u32 {
            // 198.51.0.0/16 matches no rule: the order is us, eu, ap.
            let addr = format!("198.51.{}.{}", (round * 16 + i) % 256, i);
            let c = client(&addr, 32, None, 0);
            let d = run(&config, &table, &health, "geo.example.test.", &c);
            let want = walk_spelled_out(&order, Family::V4, &c, &health);
            match want {
                Some((p, basis)) => {
                    assert_eq!((d.pool, d.basis), (Some(p), basis), "round {round} {addr}");
                    if health.splitting && Some(p) != order.first().copied() {
                        spilled += 1;
                    } else {
                        stayed += 1;
                    }
                }
                None => assert!(
                    matches!(d.basis, Basis::AllDown(_)),
                    "round {round} {addr}: {:?}",
                    d.basis
                ),
            }
        }
    }
    // The cases cover both sides of a split.
    assert!(spilled > 100 && stayed > 100, "{spilled} {stayed}");
}
