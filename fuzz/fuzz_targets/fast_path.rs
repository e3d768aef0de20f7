//! Arbitrary datagrams through the fast path's parse + answer: no panic, and
//! every reply decodes and fits a UDP response. A crash found here belongs,
//! as a seed, in `src/dns/fast/tests.rs`.

#![no_main]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use geosteer::dns::fast::{self, Outcome, sample};
use geosteer::metrics::{NameCounters, OTHER_NAME};
use geosteer::state::Snapshot;
use libfuzzer_sys::fuzz_target;
use rand::SeedableRng;
use rand::rngs::SmallRng;

struct World {
    snap: Snapshot,
    other: Arc<NameCounters>,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("geosteer-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let geoip = Path::new(env!("CARGO_MANIFEST_DIR")).join("../geoip/country.mmdb");
        let (snap, registry) = sample::snapshot(&dir, Some(&geoip)).expect("sample config loads");
        World {
            other: registry.name(OTHER_NAME),
            snap,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let w = world();
    let src: SocketAddr = "192.0.2.200:5300".parse().expect("addr");
    let mut rng = SmallRng::seed_from_u64(0);
    let mut out = Vec::new();
    let mut tally = fast::Tally::new(&w.other);
    let counters = geosteer::dns::cookie::CookieCounters::default();
    let cookies = fast::Cookies::new(&counters);
    if fast::answer(data, src, &w.snap, &mut tally, &cookies, &mut rng, &mut out) == Outcome::Reply {
        assert!(out.len() <= 1232);
        assert_eq!(out[..2], data[..2]);
        hickory_proto::op::Message::from_vec(&out).expect("the reply decodes");
    }
});
