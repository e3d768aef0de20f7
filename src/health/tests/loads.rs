//! A pool's load from its proxy, its monitor's header and the fleet, in
//! the book: the figure each source gives, when it goes stale, and that a
//! fleet report is taken once (not again with every fleet view).

use std::sync::Arc;

use super::*;
use crate::health::fleet::FleetView;
use crate::health::load::ReportedLoad;

const LOADED: &str = r#"
[server]
dns_listen = ["127.0.0.1:5353"]

[monitors.web]
type = "http"
interval = "1s"
timeout = "500ms"
rise = 1
fall = 1
load_header = "X-Load"

[pools.proxied]
capacity = 20
load = "proxy"
endpoints = [{ address = "192.0.2.1" }]

[pools.headed]
monitor = "web"
capacity = 100
endpoints = [{ address = "192.0.2.2" }, { address = "192.0.2.3" }]

[pools.reported]
capacity = 100
endpoints = [{ address = "192.0.2.4" }]
"#;

fn traffic_at(pool: PoolId) -> Observation {
    Observation {
        target: Target::PoolTraffic(pool),
        source: Source::Traffic,
        ..probe(pool, 0, true, 1)
    }
}

fn load(book: &HealthBook, pool: PoolId) -> Option<f64> {
    book.view().pools[pool.index()].load
}

#[test]
fn the_proxy_rate_is_the_load_and_falls_to_zero_without_traffic() {
    let config = parse(LOADED);
    let p = pool(&config, "proxied");
    let mut book = HealthBook::new(&config, 1);
    book.step_ramps(10_000);
    assert_eq!(load(&book, p), Some(0.0), "no traffic: a load of 0");
    // 50 requests a second during seconds 10, 11 and 12.
    for ms in (10_000..13_000).step_by(20) {
        book.observe(traffic_at(p), at(ms), ms);
    }
    assert!(book.step_ramps(13_000));
    let h = &book.view().pools[p.index()];
    assert_eq!(h.load, Some(50.0));
    assert_eq!(h.proxy_rate, h.load);
    assert!(h.keep_permille < 1000, "2.5 x capacity: spilling");
    assert!(!book.step_ramps(13_050), "the rate moves once a second");
    book.step_ramps(17_000);
    assert_eq!(load(&book, p), Some(0.0));
}

#[test]
fn header_figures_sum_and_go_stale_after_three_intervals() {
    let config = parse(LOADED);
    let p = pool(&config, "headed");
    let mut book = HealthBook::new(&config, 1);
    let with_load = |endpoint, value| Observation {
        load: Some(value),
        ..probe(p, endpoint, true, 1)
    };
    book.observe(with_load(0, 40.0), at(0), 0);
    book.observe(with_load(1, 75.0), at(0), 0);
    book.step_ramps(100);
    assert_eq!(load(&book, p), Some(115.0));
    assert!(book.view().pools[p.index()].keep_permille < 1000);
    book.observe(with_load(1, 30.0), at(1000), 1_000);
    book.step_ramps(1_100);
    assert_eq!(load(&book, p), Some(70.0));
    // Endpoint 0 said nothing since t = 0: stale at 3 s.
    book.step_ramps(3_000);
    assert_eq!(load(&book, p), Some(30.0));
    book.step_ramps(4_000);
    assert_eq!(load(&book, p), None);
}

#[test]
fn a_fleet_report_is_taken_once_and_proxy_rates_add_up() {
    let config = parse(LOADED);
    let (r, p) = (pool(&config, "reported"), pool(&config, "proxied"));
    let mut book = HealthBook::new(&config, 1);
    let mut view = FleetView {
        node: Arc::from("n1"),
        connected: true,
        ..FleetView::default()
    };
    view.loads.reported.insert(
        Arc::from("reported"),
        ReportedLoad {
            value: 112.0,
            until: 60_000,
            by: "n2".into(),
            at: 0,
        },
    );
    view.remote.insert(Arc::from("n2"), Default::default());
    view.loads
        .rates
        .entry(Arc::from("n2"))
        .or_default()
        .insert(Arc::from("proxied"), 12.0);
    // n3 is gone from the fleet: its rate does not count.
    view.loads
        .rates
        .entry(Arc::from("n3"))
        .or_default()
        .insert(Arc::from("proxied"), 500.0);
    let view = Arc::new(view);
    book.set_fleet(view.clone());
    book.step_ramps(1_000);
    assert_eq!(load(&book, r), Some(112.0));
    assert_eq!(load(&book, p), Some(12.0));
    let first = book.view().pools[r.index()].keep_permille;
    assert_eq!(first, 900, "the first cut at once");
    // The same view again (another node's verdict moved): the report is
    // not taken again, so the controller settles at 0.9 / 1.12.
    for t in 1..10u64 {
        book.set_fleet(view.clone());
        book.step_ramps(1_000 + t * 5_000);
    }
    assert_eq!(book.view().pools[r.index()].keep_permille, 800);
    book.step_ramps(60_000);
    assert_eq!(load(&book, r), None, "past its until");
}
