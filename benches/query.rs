//! Queries through the UDP fast path: parse, decide (for the geo name) and
//! encode, with no sockets, in batches of 8 as a worker counts them.
//! `cargo bench --bench query`; time per query = time per batch / 8.

use std::hint::black_box;
use std::net::SocketAddr;
use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use geosteer::dns::fast::{self, Outcome, Tally, sample};
use geosteer::metrics::OTHER_NAME;
use rand::SeedableRng;
use rand::rngs::SmallRng;

/// A query for `name` (A), with an OPT record and, optionally, ECS.
fn query(name: &str, ecs: Option<([u8; 3], u8)>) -> Vec<u8> {
    let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1];
    for label in name.trim_end_matches('.').split('.') {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    let opt: Vec<u8> = match ecs {
        Some((addr, prefix)) => {
            let mut o = vec![0, 8, 0, 7, 0, 1, prefix, 0];
            o.extend_from_slice(&addr);
            o
        }
        None => Vec::new(),
    };
    q.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0]);
    q.extend_from_slice(&(opt.len() as u16).to_be_bytes());
    q.extend_from_slice(&opt);
    q
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let geoip = Path::new(env!("CARGO_MANIFEST_DIR")).join("geoip/country.mmdb");
    let (snap, registry) = sample::snapshot(dir.path(), Some(&geoip)).expect("sample config");
    let other = registry.name(OTHER_NAME);
    let counters = geosteer::dns::cookie::CookieCounters::default();
    let src: SocketAddr = "127.0.0.1:5300".parse().expect("addr");
    let mut rng = SmallRng::seed_from_u64(1);
    let mut out = Vec::with_capacity(1232);
    let cases = [
        ("static A", query("static.example.test.", None)),
        (
            "geo A with ECS",
            query("www.example.test.", Some(([5, 9, 1], 24))),
        ),
        ("NXDOMAIN", query("nope.example.test.", None)),
    ];
    let mut group = c.benchmark_group("query");
    group.throughput(Throughput::Elements(BATCH));
    for (what, q) in &cases {
        assert_eq!(
            fast::answer(
                q,
                src,
                &snap,
                &mut Tally::new(&other),
                &fast::Cookies::new(&counters),
                &mut rng,
                &mut out
            ),
            Outcome::Reply,
            "{what}"
        );
        // As a UDP worker does: one tally per batch, here of BATCH queries;
        // the time reported is per batch, the throughput per query.
        group.bench_function(*what, |b| {
            b.iter(|| {
                let mut tally = Tally::new(&other);
                let cookies = fast::Cookies::new(&counters);
                for _ in 0..BATCH {
                    fast::answer(
                        black_box(q),
                        src,
                        &snap,
                        &mut tally,
                        &cookies,
                        &mut rng,
                        &mut out,
                    );
                }
            })
        });
    }
    group.finish();
}

/// Queries per measured iteration.
const BATCH: u64 = 8;

criterion_group!(benches, bench);
criterion_main!(benches);
