//! Slow start and gradual drains in the book: when a ramp starts (a return,
//! an undrain, an endpoint added by a reload; never the first result at
//! start-up), how it steps with the wall clock passed in, and how a gradual
//! drain ends drained.

use super::*;

const RAMPED: &str = r#"
[server]
dns_listen = ["127.0.0.1:5353"]

[monitors.web]
type = "http"
port = 80
interval = "1s"
timeout = "500ms"
rise = 1
fall = 1

[pools.pair]
monitor = "web"
slow_start = "60s"
endpoints = [{ address = "192.0.2.1" }, { address = "192.0.2.2" }]

[pools.plain]
slow_start = "10s"
endpoints = [{ address = "192.0.2.31" }]

[pools.off]
monitor = "web"
endpoints = [{ address = "192.0.2.41" }]
"#;

fn endpoint(book: &HealthBook, pool: PoolId, i: usize) -> EndpointHealth {
    book.view().pools[pool.index()].endpoints[i].clone()
}

#[test]
fn the_first_result_at_start_up_is_no_slow_start_a_return_is() {
    let config = parse(RAMPED);
    let pair = pool(&config, "pair");
    let mut book = HealthBook::new(&config, 1);
    book.observe(probe(pair, 0, true, 10), at(0), 0);
    book.observe(probe(pair, 1, true, 10), at(0), 0);
    book.step_ramps(0);
    assert_eq!(endpoint(&book, pair, 1).ramp_permille, 1000);
    assert!(endpoint(&book, pair, 1).ramp.is_none());

    // Down, then back up at t = 10 s: 10 % at once, 55 % after 30 s, full at 60 s.
    book.observe(probe(pair, 1, false, 10), at(1000), 1_000);
    book.step_ramps(1_000);
    book.observe(probe(pair, 1, true, 10), at(10_000), 10_000);
    assert!(book.step_ramps(10_000));
    let e = endpoint(&book, pair, 1);
    assert_eq!(e.ramp_permille, 100);
    assert_eq!(e.effective_weight(1), 100);
    assert_eq!(endpoint(&book, pair, 0).effective_weight(1), 1000);
    book.step_ramps(40_000);
    assert_eq!(endpoint(&book, pair, 1).ramp_permille, 550);
    assert!(!book.step_ramps(40_001), "no change within a percent step");
    book.step_ramps(70_000);
    let e = endpoint(&book, pair, 1);
    assert_eq!((e.ramp_permille, e.ramp), (1000, None));
}

#[test]
fn a_pool_without_slow_start_never_ramps() {
    let config = parse(RAMPED);
    let off = pool(&config, "off");
    let mut book = HealthBook::new(&config, 1);
    book.observe(probe(off, 0, true, 10), at(0), 0);
    book.observe(probe(off, 0, false, 10), at(1000), 1_000);
    book.step_ramps(1_000);
    book.observe(probe(off, 0, true, 10), at(2000), 2_000);
    book.step_ramps(2_000);
    assert_eq!(endpoint(&book, off, 0).ramp_permille, 1000);
    assert_eq!(book.view().pools[off.index()].admit_permille, 1000);
    assert!(!book.view().splitting);
}

#[test]
fn an_undrain_slow_starts_and_a_pool_back_from_down_takes_back_its_catchment() {
    let config = parse(RAMPED);
    let plain = pool(&config, "plain");
    let mut book = HealthBook::new(&config, 1);
    book.step_ramps(0);
    assert_eq!(book.view().pools[plain.index()].admit_permille, 1000);
    // Its only endpoint drained: the pool is down; undrained at 5 s.
    book.set_draining(plain, 0, true);
    book.step_ramps(1_000);
    assert_eq!(pool_state(&book, plain), PoolState::Down);
    book.set_draining(plain, 0, false);
    book.step_ramps(5_000);
    let view = book.view();
    let p = &view.pools[plain.index()];
    assert_eq!((p.admit_permille, p.endpoints[0].ramp_permille), (100, 100));
    assert!(view.splitting);
    book.step_ramps(10_000);
    assert_eq!(book.view().pools[plain.index()].admit_permille, 550);
    book.step_ramps(15_000);
    let view = book.view();
    assert_eq!(view.pools[plain.index()].admit_permille, 1000);
    assert!(view.pools[plain.index()].ramp.is_none() && !view.splitting);
}

#[test]
fn an_endpoint_added_by_a_reload_slow_starts() {
    let config = parse(RAMPED);
    let mut book = HealthBook::new(&config, 1);
    book.step_ramps(0);
    let bigger = parse(&RAMPED.replace(
        "endpoints = [{ address = \"192.0.2.31\" }]",
        "endpoints = [{ address = \"192.0.2.31\" }, { address = \"192.0.2.32\" }]",
    ));
    let plain = pool(&bigger, "plain");
    book.reload(&bigger, 2, at(1000));
    book.step_ramps(1_000);
    assert_eq!(endpoint(&book, plain, 0).ramp_permille, 1000, "kept");
    assert_eq!(endpoint(&book, plain, 1).ramp_permille, 100, "added");
    assert_eq!(
        book.view().pools[plain.index()].admit_permille,
        1000,
        "the pool was never down"
    );
}

#[test]
fn a_gradual_drain_ramps_to_zero_then_drains_and_an_undrain_stops_it() {
    let config = parse(RAMPED);
    let pair = pool(&config, "pair");
    let mut book = HealthBook::new(&config, 1);
    book.observe(probe(pair, 0, true, 10), at(0), 0);
    book.observe(probe(pair, 1, true, 10), at(0), 0);
    book.step_ramps(0);
    assert!(book.drain_over(pair, 1, Duration::from_secs(600), 0));
    assert!(
        !book.drain_over(pair, 1, Duration::from_secs(600), 0),
        "once"
    );
    book.step_ramps(0);
    assert_eq!(endpoint(&book, pair, 1).ramp_permille, 1000);
    book.step_ramps(150_000);
    let e = endpoint(&book, pair, 1);
    assert_eq!(e.ramp_permille, 750);
    assert!(e.usable(), "still in answers while ramping down");
    book.step_ramps(600_000);
    let e = endpoint(&book, pair, 1);
    assert!(e.draining && e.ramp.is_none());
    assert_eq!(book.view().pools[pair.index()].draining, 1);
    // An undrain returns it with a slow start (the pool has one).
    assert!(book.set_draining(pair, 1, false));
    book.step_ramps(601_000);
    assert_eq!(endpoint(&book, pair, 1).ramp_permille, 100);

    // An undrain during a gradual drain stops it at once.
    assert!(book.drain_over(pair, 0, Duration::from_secs(100), 700_000));
    book.step_ramps(750_000);
    assert_eq!(endpoint(&book, pair, 0).ramp_permille, 500);
    assert!(book.set_draining(pair, 0, false));
    book.step_ramps(750_000);
    let e = endpoint(&book, pair, 0);
    assert_eq!((e.ramp_permille, e.draining), (1000, false));
}
