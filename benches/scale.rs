//! Query cost as the config grows (issue 4, item 3): the balanced-name lookup
//! plus `steer::decide` for 10 vs 10,000 names, and `decide` for a geo name
//! whose `subnets` map holds 10 vs 1,000,000 prefixes. Configs are generated
//! in memory and go through the same `config::parse` and compile as `serve`.
//!
//!     cargo bench --bench scale

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use rand::SeedableRng;
use rand::rngs::SmallRng;

use geosteer::config::{self, Config};
use geosteer::geo::Location;
use geosteer::health::{EndpointState, HealthView, PoolState};
use geosteer::metrics::Registry;
use geosteer::steer::{Client, Family, Inputs, SteeringTable, decide};

const POOLS: usize = 100;

/// `names` failover names, and one geo name `geo.example.test` with
/// `prefixes` /24s spread over IPv4 space.
fn config_text(names: usize, prefixes: u32) -> String {
    let mut t = String::from(
        "[server]\ndns_listen = [\"127.0.0.1:0\"]\n[zones]\n\"example.test\" = \"z\"\n",
    );
    for p in 0..POOLS {
        t += &format!(
            "[pools.p{p}]\nendpoints = [{{ address = \"10.0.{p}.1\" }}, {{ address = \"10.0.{p}.2\" }}]\n"
        );
    }
    for i in 0..names {
        let (a, b, c) = (i % POOLS, (i * 7 + 1) % POOLS, (i * 13 + 2) % POOLS);
        t += &format!(
            "[[balance]]\nname = \"n{i}.example.test\"\npolicy = \"failover\"\npools = [\"p{a}\", \"p{b}\", \"p{c}\"]\n"
        );
    }
    t += "[[balance]]\nname = \"geo.example.test\"\npolicy = \"geo\"\npools = [\"p0\", \"p1\", \"p2\"]\n[balance.subnets]\n";
    for k in 0..prefixes {
        t += &format!(
            "\"{}/24\" = [\"p{}\"]\n",
            prefix(k, prefixes),
            k as usize % POOLS
        );
    }
    t
}

/// The k-th of n /24s, spread evenly from 1.0.0.0.
fn prefix(k: u32, n: u32) -> Ipv4Addr {
    let step = ((u32::MAX - (1 << 24)) / n) & !0xff;
    Ipv4Addr::from((1 << 24) + k * step)
}

fn setup(names: usize, prefixes: u32) -> (Config, SteeringTable, HealthView) {
    let text = config_text(names, prefixes);
    let (config, _) =
        config::parse(&text, Path::new("bench.toml"), Path::new("."), "").expect("valid");
    let table = SteeringTable::compile(&config, &Registry::default());
    let mut health = HealthView::initial(&config);
    for p in &mut health.pools {
        for e in &mut p.endpoints {
            e.state = EndpointState::Up;
        }
        p.up = p.total;
        p.state = PoolState::Healthy;
    }
    (config, table, health)
}

fn client(addr: IpAddr) -> Client {
    Client {
        addr,
        source_prefix: 24,
        location: Location {
            country: None,
            continent: None,
            coords: None,
            prefix_len: 16,
        },
    }
}

fn names(c: &mut Criterion) {
    let mut g = c.benchmark_group("lookup+decide by names");
    for n in [10usize, 10_000] {
        let (config, table, health) = setup(n, 0);
        let inputs = Inputs {
            config: &config,
            health: &health,
        };
        // Different names in turn, so a large table is not one hot cache line.
        let asked: Vec<String> = (0..64)
            .map(|i| format!("n{}.example.test.", (i * 7919) % n))
            .collect();
        let c = client(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)));
        let mut rng = SmallRng::seed_from_u64(7);
        let mut i = 0;
        g.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter(|| {
                i = (i + 1) % asked.len();
                let name = table.get(black_box(&asked[i])).expect("balanced");
                black_box(decide(name, &c, Family::V4, &inputs, &mut rng, None))
            })
        });
    }
    g.finish();
}

fn prefixes(c: &mut Criterion) {
    let mut g = c.benchmark_group("decide by prefixes");
    for n in [10u32, 1_000_000] {
        let (config, table, health) = setup(10, n);
        let inputs = Inputs {
            config: &config,
            health: &health,
        };
        let name = table.get("geo.example.test.").expect("balanced");
        // Clients inside configured prefixes, spread over the map.
        let clients: Vec<Client> = (0..1024u32)
            .map(|i| {
                let net = prefix((i.wrapping_mul(2_654_435_761)) % n, n);
                client(IpAddr::V4(Ipv4Addr::from(u32::from(net) + 9)))
            })
            .collect();
        let mut rng = SmallRng::seed_from_u64(7);
        let mut i = 0;
        g.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter(|| {
                i = (i + 1) % clients.len();
                black_box(decide(
                    name,
                    &clients[i],
                    Family::V4,
                    &inputs,
                    &mut rng,
                    None,
                ))
            })
        });
    }
    g.finish();
}

criterion_group!(benches, names, prefixes);
criterion_main!(benches);
