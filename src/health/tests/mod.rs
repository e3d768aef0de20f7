//! Tests of the health book with a fake clock: a fixed base `Instant` plus
//! `Duration`s.

use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::window::Window;
use super::*;
use crate::config::{self, Config};

mod loads;
mod quorum;
mod ramps;

const BASE_TOML: &str = r#"
[server]
dns_listen = ["127.0.0.1:5353"]

[monitors.web]
type = "http"
port = 80
interval = "1s"
timeout = "500ms"
rise = 2
fall = 3
window = "10s"
max_error_rate = 0.2
min_samples = 5
max_latency = "100ms"

[monitors.other]
type = "tcp"
port = 80
interval = "1s"
timeout = "500ms"

[pools.pair]
monitor = "web"
min_healthy = 1
endpoints = [{ address = "192.0.2.1" }, { address = "192.0.2.2" }]

[pools.strict]
monitor = "web"
min_healthy = 2
endpoints = [{ address = "192.0.2.11" }, { address = "192.0.2.12" }]

[pools.solo]
monitor = "web"
endpoints = [{ address = "192.0.2.21" }]

[pools.plain]
endpoints = [{ address = "192.0.2.31" }]
"#;

fn parse(text: &str) -> Config {
    match config::parse(text, Path::new("test.toml"), Path::new("."), "") {
        Ok((config, _)) => config,
        Err(e) => panic!("bad test config: {e:?}"),
    }
}

fn base() -> Config {
    parse(BASE_TOML)
}

#[allow(
    clippy::disallowed_methods,
    reason = "a base Instant for the tests (opaque, so it comes from the clock once); every later time is t0 + a Duration"
)]
fn t0() -> Instant {
    static T0: OnceLock<Instant> = OnceLock::new();
    *T0.get_or_init(Instant::now)
}

fn at(ms: u64) -> Instant {
    t0() + Duration::from_millis(ms)
}

fn pool(config: &Config, name: &str) -> PoolId {
    config.pool_id(name).expect("pool in test config")
}

fn probe(pool: PoolId, endpoint: u32, ok: bool, latency_ms: u64) -> Observation {
    Observation {
        generation: 1,
        target: Target::Endpoint(pool, endpoint),
        source: Source::Probe,
        ok,
        latency: Duration::from_millis(latency_ms),
        error: (!ok).then(|| "timeout".to_string()),
        load: None,
    }
}

fn traffic(pool: PoolId, ok: bool, latency_ms: u64) -> Observation {
    Observation {
        target: Target::PoolTraffic(pool),
        source: Source::Traffic,
        ..probe(pool, 0, ok, latency_ms)
    }
}

fn ep_state(book: &HealthBook, pool: PoolId, endpoint: usize) -> EndpointState {
    book.view().pools[pool.index()].endpoints[endpoint].state
}

fn pool_state(book: &HealthBook, pool: PoolId) -> PoolState {
    book.view().pools[pool.index()].state
}

/// Brings every endpoint of `pool` up with one fast successful probe.
fn all_up(book: &mut HealthBook, config: &Config, pool: PoolId, ms: u64) {
    for i in 0..config.pool(pool).endpoints.len() {
        book.observe(probe(pool, i as u32, true, 10), at(ms), 1000 + ms);
    }
}

#[test]
fn new_book_view_equals_initial_view() {
    let config = base();
    assert_eq!(
        HealthBook::new(&config, 1).view(),
        HealthView::initial(&config)
    );
}

#[test]
fn first_result_sets_state_directly() {
    let config = base();
    let pair = pool(&config, "pair");
    let mut book = HealthBook::new(&config, 1);
    assert_eq!(ep_state(&book, pair, 0), EndpointState::Unknown);
    assert_eq!(pool_state(&book, pair), PoolState::Down);

    assert!(book.observe(probe(pair, 0, true, 10), at(0), 5_000));
    assert!(book.observe(probe(pair, 1, false, 10), at(0), 5_001));
    let view = book.view();
    let p = &view.pools[pair.index()];
    assert_eq!(p.endpoints[0].state, EndpointState::Up);
    assert_eq!(p.endpoints[0].since_unix_ms, 5_000);
    assert_eq!(p.endpoints[1].state, EndpointState::Down);
    assert_eq!(p.endpoints[1].last_error.as_deref(), Some("timeout"));
    assert_eq!((p.up, p.total), (1, 2));
    assert_eq!(p.state, PoolState::Healthy);
}

#[test]
fn rise_and_fall_need_consecutive_results() {
    let config = base();
    let solo = pool(&config, "solo");
    let mut book = HealthBook::new(&config, 1);
    book.observe(probe(solo, 0, true, 10), at(0), 0);
    // fall = 3: two failures, a success (streak restarts), then three failures.
    let steps = [
        (false, EndpointState::Up),
        (false, EndpointState::Up),
        (true, EndpointState::Up),
        (false, EndpointState::Up),
        (false, EndpointState::Up),
        (false, EndpointState::Down),
        // rise = 2: a success, a failure (streak restarts), then two successes.
        (true, EndpointState::Down),
        (false, EndpointState::Down),
        (true, EndpointState::Down),
        (true, EndpointState::Up),
    ];
    for (i, (ok, want)) in steps.into_iter().enumerate() {
        let ms = 1000 * (i as u64 + 1);
        book.observe(probe(solo, 0, ok, 10), at(ms), ms);
        assert_eq!(ep_state(&book, solo, 0), want, "step {i}");
    }
    let view = book.view();
    assert_eq!(view.pools[solo.index()].endpoints[0].since_unix_ms, 10_000);
    assert_eq!(view.pools[solo.index()].state, PoolState::Healthy);
}

#[test]
fn observe_reports_visible_changes_only() {
    let config = base();
    let solo = pool(&config, "solo");
    let mut book = HealthBook::new(&config, 1);
    assert!(book.observe(probe(solo, 0, true, 10), at(0), 0));
    assert!(!book.observe(probe(solo, 0, true, 10), at(1000), 0));
    // A new last error is visible even while the endpoint stays up.
    assert!(book.observe(probe(solo, 0, false, 10), at(2000), 0));
    assert!(!book.observe(probe(solo, 0, false, 10), at(3000), 0));
    // Metric numbers moved: the next tick says so, the one after does not.
    assert!(book.tick(at(3100), 0));
    assert!(!book.tick(at(3200), 0));
}

#[test]
fn stale_generation_and_server_observations_are_ignored() {
    let config = base();
    let solo = pool(&config, "solo");
    let mut book = HealthBook::new(&config, 1);
    let stale = Observation {
        generation: 0,
        ..probe(solo, 0, true, 10)
    };
    assert!(!book.observe(stale, at(0), 0));
    let server = Observation {
        target: Target::Server(crate::config::BackendId(0), 0),
        ..probe(solo, 0, true, 10)
    };
    assert!(!book.observe(server, at(0), 0));
    assert!(!book.observe(probe(solo, 7, true, 10), at(0), 0));
    assert!(!book.observe(probe(PoolId(99), 0, true, 10), at(0), 0));
    assert_eq!(book.view(), HealthView::initial(&config));
}

#[test]
fn fewer_than_min_healthy_up_is_down() {
    let config = base();
    let strict = pool(&config, "strict");
    let mut book = HealthBook::new(&config, 1);
    all_up(&mut book, &config, strict, 0);
    assert_eq!(pool_state(&book, strict), PoolState::Healthy);
    for i in 1..=3 {
        book.observe(probe(strict, 1, false, 10), at(i * 1000), 0);
    }
    assert_eq!(ep_state(&book, strict, 1), EndpointState::Down);
    assert_eq!(pool_state(&book, strict), PoolState::Down);
    assert_eq!(book.view().pools[strict.index()].up, 1);
}

#[test]
fn error_rate_degrades_only_after_min_samples() {
    let config = base();
    let solo = pool(&config, "solo");
    let mut book = HealthBook::new(&config, 1);
    // ok, fail, ok, fail: 50 % errors but 4 < min_samples = 5, and the
    // failures never reach fall = 3 in a row, so the endpoint stays up.
    for (i, ok) in [true, false, true, false].into_iter().enumerate() {
        book.observe(probe(solo, 0, ok, 10), at(i as u64 * 1000), 0);
        assert_eq!(pool_state(&book, solo), PoolState::Healthy, "sample {i}");
    }
    assert!(book.observe(probe(solo, 0, true, 10), at(4000), 0));
    let view = book.view();
    let p = &view.pools[solo.index()];
    assert_eq!(p.state, PoolState::Degraded);
    assert!((p.error_rate - 0.4).abs() < 1e-9, "{}", p.error_rate);
    assert_eq!(p.endpoints[0].state, EndpointState::Up);
}

#[test]
fn smoothed_latency_over_max_degrades() {
    let config = base();
    let pair = pool(&config, "pair");
    let mut book = HealthBook::new(&config, 1);
    all_up(&mut book, &config, pair, 0);
    assert_eq!(pool_state(&book, pair), PoolState::Healthy);
    // Both endpoints turn slow (max_latency 100ms); tau = 10s / 12.
    let mut degraded_at = None;
    for s in 1..=5u64 {
        book.observe(probe(pair, 0, true, 300), at(s * 1000), 0);
        book.observe(probe(pair, 1, true, 300), at(s * 1000), 0);
        if degraded_at.is_none() && pool_state(&book, pair) == PoolState::Degraded {
            degraded_at = Some(s);
        }
    }
    assert_eq!(degraded_at, Some(1), "one slow interval after fast ones");
    let latency = book.view().pools[pair.index()].latency.expect("latency");
    assert!(latency > Duration::from_millis(290), "{latency:?}");
}

#[test]
fn slow_region_degrades_within_fall_intervals_even_with_a_long_window() {
    // A 60 s window with a 1 s interval: a minute of fast history must not
    // hold the mean under max_latency for long (tau = interval, not 5 s).
    let config = parse(&BASE_TOML.replace("window = \"10s\"", "window = \"60s\""));
    let solo = pool(&config, "solo");
    let mut book = HealthBook::new(&config, 1);
    for s in 0..60u64 {
        book.observe(probe(solo, 0, true, 5), at(s * 1000), 0);
    }
    assert_eq!(pool_state(&book, solo), PoolState::Healthy);
    // 1.2 × max_latency (100ms) from second 60 on; fall = 3.
    let mut degraded_after = None;
    for n in 1..=10u64 {
        book.observe(probe(solo, 0, true, 120), at((59 + n) * 1000), 0);
        if pool_state(&book, solo) == PoolState::Degraded {
            degraded_after = Some(n);
            break;
        }
    }
    assert!(
        degraded_after.is_some_and(|n| n <= 3),
        "degraded after {degraded_after:?} slow probes"
    );
}

#[test]
fn window_expiry_clears_errors_and_latency() {
    let config = base();
    let solo = pool(&config, "solo");
    let mut book = HealthBook::new(&config, 1);
    for (i, ok) in [true, false, true, false, true].into_iter().enumerate() {
        book.observe(probe(solo, 0, ok, 10), at(i as u64 * 1000), 0);
    }
    assert_eq!(pool_state(&book, solo), PoolState::Degraded);
    // Window 10s: by 15s every result has expired; rise = 2 periodic
    // evaluations (1s apart) under threshold bring the pool back.
    book.tick(at(15_000), 0);
    assert_eq!(book.view().pools[solo.index()].error_rate, 0.0);
    assert_eq!(book.view().pools[solo.index()].latency, None);
    assert_eq!(book.view().pools[solo.index()].endpoints[0].latency, None);
    assert_eq!(pool_state(&book, solo), PoolState::Degraded);
    book.tick(at(15_500), 0);
    assert_eq!(pool_state(&book, solo), PoolState::Degraded, "not due yet");
    book.tick(at(16_000), 0);
    assert_eq!(pool_state(&book, solo), PoolState::Healthy);
}

#[test]
fn hysteresis_holds_degraded_while_latency_hovers_at_threshold() {
    let config = base();
    let solo = pool(&config, "solo");
    let mut book = HealthBook::new(&config, 1);
    book.observe(probe(solo, 0, true, 10), at(0), 0);
    book.tick(at(0), 0);
    // Alternating 130ms / 70ms probes make the smoothed latency swing just
    // above and just below max_latency (100ms) every interval.
    let mut states = Vec::new();
    let mut over = Vec::new();
    for s in 1..=11u64 {
        let ms = if s % 2 == 1 { 130 } else { 70 };
        book.observe(probe(solo, 0, true, ms), at(s * 1000), 0);
        book.tick(at(s * 1000), 0);
        let view = book.view();
        over.push(view.pools[solo.index()].latency > Some(Duration::from_millis(100)));
        states.push(view.pools[solo.index()].state);
    }
    assert!(over.contains(&true) && over.contains(&false), "{over:?}");
    assert!(
        states.iter().all(|s| *s == PoolState::Degraded),
        "{states:?}"
    );
    // Back under threshold for good: healthy after rise = 2 intervals, once.
    let mut after = Vec::new();
    for s in 12..=20u64 {
        book.observe(probe(solo, 0, true, 20), at(s * 1000), 0);
        book.tick(at(s * 1000), 0);
        after.push(pool_state(&book, solo));
    }
    let flips = after.windows(2).filter(|w| w[0] != w[1]).count();
    assert_eq!(flips, 1, "{after:?}");
    assert_eq!(after.last(), Some(&PoolState::Healthy));
}

#[test]
fn drained_endpoint_leaves_pool_metrics() {
    let config = base();
    let pair = pool(&config, "pair");
    let mut book = HealthBook::new(&config, 1);
    book.observe(probe(pair, 0, true, 10), at(0), 0);
    book.observe(probe(pair, 1, true, 400), at(0), 0);
    book.tick(at(0), 0);
    assert_eq!(pool_state(&book, pair), PoolState::Degraded);

    assert!(book.set_draining(pair, 1, true));
    assert!(!book.set_draining(pair, 1, true));
    let view = book.view();
    let p = &view.pools[pair.index()];
    assert!(p.endpoints[1].draining && !p.endpoints[1].usable());
    assert_eq!(p.latency, Some(Duration::from_millis(10)));
    assert_eq!(
        (p.up, p.draining),
        (1, 1),
        "a draining endpoint is counted as draining, not up"
    );
    // Hysteresis: healthy after rise = 2 periodic evaluations.
    book.tick(at(1000), 0);
    assert_eq!(pool_state(&book, pair), PoolState::Degraded);
    book.tick(at(2000), 0);
    assert_eq!(pool_state(&book, pair), PoolState::Healthy);

    // Draining every endpoint leaves nothing to answer with: down.
    assert!(book.set_draining(pair, 0, true));
    assert_eq!(pool_state(&book, pair), PoolState::Down);
    assert!(book.set_draining(pair, 0, false));
    assert_eq!(pool_state(&book, pair), PoolState::Healthy);
}

#[test]
fn endpoint_back_up_starts_a_fresh_window() {
    let config = base();
    let pair = pool(&config, "pair");
    let mut book = HealthBook::new(&config, 1);
    for s in 0..10u64 {
        book.observe(probe(pair, 0, true, 10), at(s * 1000), 0);
        book.observe(probe(pair, 1, true, 10), at(s * 1000), 0);
    }
    for s in 10..13u64 {
        book.observe(probe(pair, 1, false, 10), at(s * 1000), 0);
        book.observe(probe(pair, 0, true, 10), at(s * 1000), 0);
    }
    assert_eq!(ep_state(&book, pair, 1), EndpointState::Down);
    // A down endpoint does not also degrade its pool.
    assert_eq!(pool_state(&book, pair), PoolState::Healthy);
    assert!(book.view().pools[pair.index()].endpoints[1].error_rate > 0.0);
    for s in 13..15u64 {
        book.observe(probe(pair, 1, true, 10), at(s * 1000), 0);
        book.observe(probe(pair, 0, true, 10), at(s * 1000), 0);
    }
    let view = book.view();
    let p = &view.pools[pair.index()];
    assert_eq!(p.endpoints[1].state, EndpointState::Up);
    assert_eq!(p.endpoints[1].error_rate, 0.0);
    assert_eq!(p.error_rate, 0.0);
    assert_eq!(p.state, PoolState::Healthy);
    // The last error is kept for status pages.
    assert_eq!(p.endpoints[1].last_error.as_deref(), Some("timeout"));
}

#[test]
fn traffic_degrades_a_pool_without_monitor() {
    let config = base();
    let plain = pool(&config, "plain");
    let mut book = HealthBook::new(&config, 1);
    assert_eq!(pool_state(&book, plain), PoolState::Healthy);
    // 5 % errors, below min_samples = 100 for the first 99 requests.
    for i in 0..99u64 {
        book.observe(traffic(plain, i % 20 != 0, 5), at(i), 0);
    }
    assert_eq!(pool_state(&book, plain), PoolState::Healthy);
    assert!(book.observe(traffic(plain, false, 5), at(100), 0));
    assert_eq!(pool_state(&book, plain), PoolState::Degraded);
    let view = book.view();
    assert_eq!(
        view.pools[plain.index()].endpoints[0].state,
        EndpointState::Up
    );
    assert!(view.pools[plain.index()].error_rate > 0.05);
}

#[test]
fn traffic_counts_in_a_monitored_pool() {
    let config = base();
    let solo = pool(&config, "solo");
    let mut book = HealthBook::new(&config, 1);
    book.observe(probe(solo, 0, true, 10), at(0), 0);
    for i in 0..10u64 {
        book.observe(traffic(solo, true, 250), at(i), 0);
    }
    assert_eq!(pool_state(&book, solo), PoolState::Degraded);
}

#[test]
fn reload_keeps_history_of_unchanged_endpoints() {
    let config = base();
    let pair = pool(&config, "pair");
    let solo = pool(&config, "solo");
    let mut book = HealthBook::new(&config, 1);
    book.observe(probe(pair, 0, true, 10), at(0), 111);
    book.observe(probe(pair, 1, true, 10), at(0), 111);
    book.observe(probe(pair, 0, false, 10), at(500), 222);
    book.set_draining(pair, 0, true);
    book.observe(probe(solo, 0, true, 10), at(0), 111);

    // pair: keeps 192.0.2.1, drops .2, adds .3 (listed first, so indices move);
    // solo: its monitor changes, so its history does not carry over.
    let text = BASE_TOML
        .replace(
            r#"endpoints = [{ address = "192.0.2.1" }, { address = "192.0.2.2" }]"#,
            r#"endpoints = [{ address = "192.0.2.3" }, { address = "192.0.2.1" }]"#,
        )
        .replace(
            "[pools.solo]\nmonitor = \"web\"",
            "[pools.solo]\nmonitor = \"other\"",
        );
    let new = parse(&text);
    let pair2 = pool(&new, "pair");
    let solo2 = pool(&new, "solo");
    book.reload(&new, 2, at(1000));
    assert_eq!(book.generation(), 2);
    let view = book.view();
    let p = &view.pools[pair2.index()];
    assert_eq!(p.total, 2);
    assert_eq!(p.endpoints[0].state, EndpointState::Unknown);
    let kept = &p.endpoints[1];
    assert_eq!(kept.state, EndpointState::Up);
    assert!(kept.draining);
    assert_eq!(kept.since_unix_ms, 111);
    assert_eq!(kept.last_error.as_deref(), Some("timeout"));
    assert!((kept.error_rate - 0.5).abs() < 1e-9);
    // The only up endpoint is draining and the new one is unknown: down.
    assert_eq!(p.state, PoolState::Down);
    assert_eq!(
        view.pools[solo2.index()].endpoints[0].state,
        EndpointState::Unknown
    );

    // Observations of the old generation are dropped; new ones count.
    assert!(!book.observe(probe(pair2, 0, true, 10), at(1100), 0));
    let fresh = Observation {
        generation: 2,
        ..probe(pair2, 0, true, 10)
    };
    assert!(book.observe(fresh, at(1100), 333));
    assert_eq!(ep_state(&book, pair2, 0), EndpointState::Up);
    assert_eq!(pool_state(&book, pair2), PoolState::Healthy);
}

#[test]
fn window_memory_is_bounded_and_expires_by_bucket() {
    let span = Duration::from_secs(60);
    let mut w = Window::new(span, span / 12);
    for i in 0..100_000u64 {
        // 100k results over 2 s.
        w.record(at(i / 50), i % 10 != 0, Duration::from_millis(20));
    }
    assert_eq!(w.count(), 100_000);
    assert!((w.error_rate() - 0.1).abs() < 1e-9);
    let latency = w.latency().expect("latency");
    assert!((latency.as_secs_f64() - 0.020).abs() < 1e-6, "{latency:?}");
    // Buckets are 1 s wide: the first second's results leave at 60 s.
    w.advance(at(59_999));
    assert_eq!(w.count(), 100_000);
    w.advance(at(60_000));
    assert_eq!(w.count(), 50_000);
    w.advance(at(61_000));
    assert_eq!(w.count(), 0);
    // Latency is forgotten a whole span after the newest sample (1.999 s).
    assert!(w.latency().is_some());
    w.advance(at(62_000));
    assert_eq!(w.latency(), None);
}

#[test]
fn smoothed_latency_follows_a_step_within_two_tau() {
    // tau = 60s / 12 = 5s.
    let mut w = Window::new(Duration::from_secs(60), Duration::from_secs(5));
    for s in 0..30u64 {
        w.record(at(s * 1000), true, Duration::from_millis(10));
    }
    for s in 30..40u64 {
        w.record(at(s * 1000), true, Duration::from_millis(1000));
    }
    let latency = w.latency().expect("latency");
    assert!(latency > Duration::from_millis(800), "{latency:?}");
}

#[test]
fn a_cleared_window_starts_afresh_with_its_span_and_tau() {
    let mut w = Window::new(Duration::from_secs(60), Duration::from_secs(5));
    for s in 0..30u64 {
        w.record(at(s * 1000), s % 2 == 0, Duration::from_millis(1000));
    }
    w.clear();
    assert_eq!((w.count(), w.errors(), w.latency()), (0, 0, None));
    assert_eq!(w.span(), Duration::from_secs(60));
    // Long after the old origin: a fresh window takes its origin from here.
    for s in 100..130u64 {
        w.record(at(s * 1000), true, Duration::from_millis(10));
    }
    assert_eq!((w.count(), w.errors()), (30, 0));
    let latency = w.latency().expect("latency");
    assert!((latency.as_secs_f64() - 0.010).abs() < 1e-6, "{latency:?}");
    // Same tau as before: a step to 1 s shows within two tau (10 s).
    for s in 130..140u64 {
        w.record(at(s * 1000), true, Duration::from_millis(1000));
    }
    assert!(w.latency().expect("latency") > Duration::from_millis(800));
    // Same span: the first fresh second's result leaves 60 s after it.
    w.advance(at(159_999));
    assert_eq!(w.count(), 40);
    w.advance(at(160_000));
    assert_eq!(w.count(), 39);
}

fn forced(up: bool, until_unix_ms: Option<u64>) -> Forced {
    Forced {
        up,
        reason: "test".into(),
        until_unix_ms,
    }
}

#[test]
fn an_override_replaces_the_checks_until_it_ends_and_a_drain_wins() {
    let config = base();
    let solo = pool(&config, "solo");
    let mut book = HealthBook::new(&config, 1);
    book.observe(probe(solo, 0, false, 10), at(0), 0);
    assert_eq!(pool_state(&book, solo), PoolState::Down);

    assert!(book.set_forced(solo, 0, Some(forced(true, Some(5_000)))));
    assert!(!book.set_forced(solo, 0, Some(forced(true, Some(5_000)))));
    let view = book.view();
    let e = &view.pools[solo.index()].endpoints[0];
    assert!(e.usable(), "forced up despite its failing check");
    assert_eq!(e.state, EndpointState::Down, "its checks still say down");
    assert_ne!(pool_state(&book, solo), PoolState::Down);

    assert!(book.set_draining(solo, 0, true));
    assert!(
        !book.view().pools[solo.index()].endpoints[0].usable(),
        "a drain wins"
    );
    assert!(book.set_draining(solo, 0, false));

    // Not yet at its end, then past it: the checks decide again.
    book.tick(at(1000), 4_999);
    assert!(
        book.view().pools[solo.index()].endpoints[0]
            .forced
            .is_some()
    );
    assert!(book.tick(at(2000), 5_000));
    assert!(
        book.view().pools[solo.index()].endpoints[0]
            .forced
            .is_none()
    );
    assert_eq!(pool_state(&book, solo), PoolState::Down);

    // Forced down takes a passing endpoint out and out of the metrics.
    book.observe(probe(solo, 0, true, 10), at(3000), 0);
    book.observe(probe(solo, 0, true, 10), at(3100), 0);
    assert_eq!(pool_state(&book, solo), PoolState::Healthy);
    assert!(book.set_forced(solo, 0, Some(forced(false, None))));
    assert_eq!(pool_state(&book, solo), PoolState::Down);
    assert!(book.set_forced(solo, 0, None));
    assert_ne!(pool_state(&book, solo), PoolState::Down);
}

#[test]
fn an_override_is_kept_across_a_reload_while_its_endpoint_exists() {
    let config = base();
    let pair = pool(&config, "pair");
    let mut book = HealthBook::new(&config, 1);
    book.set_forced(pair, 1, Some(forced(false, None)));
    let changed = parse(
        &BASE_TOML
            .replace(
                "[monitors.web]",
                "[monitors.web2]\ntype = \"tcp\"\nport = 81\n[monitors.web]",
            )
            .replace(
                "[pools.pair]\nmonitor = \"web\"",
                "[pools.pair]\nmonitor = \"web2\"",
            ),
    );
    book.reload(&changed, 2, at(0));
    let id = changed.pool_id("pair").expect("pair");
    assert_eq!(
        book.view().pools[id.index()].endpoints[1].forced,
        Some(forced(false, None)),
        "kept even when the pool's monitor changed"
    );
}

fn pushed(up: bool, expires_unix_ms: u64) -> Pushed {
    Pushed {
        up,
        reason: (!up).then(|| "rollout failed".to_string()),
        ttl_ms: 1000,
        expires_unix_ms,
        latency_ms: Some(12),
        expired: false,
    }
}

#[test]
fn pushed_health_sets_the_state_at_once_and_expires_to_down() {
    let config = base();
    let solo = pool(&config, "solo");
    let mut book = HealthBook::new(&config, 1);
    assert!(book.push(solo, 0, pushed(true, 2_000), at(0), 1_000));
    assert_eq!(ep_state(&book, solo, 0), EndpointState::Up);
    assert_eq!(pool_state(&book, solo), PoolState::Healthy);
    // Refreshed before its end: still up after the first one's end.
    book.push(solo, 0, pushed(true, 3_000), at(500), 1_500);
    book.tick(at(1000), 2_500);
    assert_eq!(ep_state(&book, solo, 0), EndpointState::Up);
    // Not refreshed: down, saying why, once.
    assert!(book.tick(at(1500), 3_000));
    assert_eq!(ep_state(&book, solo, 0), EndpointState::Down);
    let view = book.view();
    let e = &view.pools[solo.index()].endpoints[0];
    assert_eq!(
        e.last_error.as_deref(),
        Some("no health pushed within its ttl (1s)")
    );
    assert!(e.pushed.as_ref().is_some_and(|p| p.expired));
    // A push down carries its reason; no rise needed to come back.
    book.push(solo, 0, pushed(false, 10_000), at(2000), 4_000);
    assert_eq!(
        book.view().pools[solo.index()].endpoints[0]
            .last_error
            .as_deref(),
        Some("rollout failed")
    );
    book.push(solo, 0, pushed(true, 10_000), at(2100), 4_100);
    assert_eq!(ep_state(&book, solo, 0), EndpointState::Up);
}

/// Host endpoints in the book: a resolution makes the endpoint up (no
/// monitor) in the families of its addresses; a failure keeps them for
/// `stale_for`, then `tick` drops them and the endpoint is down; a reload
/// keeps the addresses, and a CNAME endpoint that becomes a host endpoint
/// of the same name starts as a host endpoint.
#[test]
fn host_endpoints_resolve_go_stale_expire_and_survive_reloads() {
    let text = |kind: &str| {
        format!(
            "[server]\ndns_listen = [\"127.0.0.1:5353\"]\nresolvers = [\"127.0.0.1:53\"]\nstale_for = \"10s\"\n[pools.cloud]\nendpoints = [{{ {kind} = \"lb.example.com\" }}]\n"
        )
    };
    let config = parse(&text("host"));
    let cloud = pool(&config, "cloud");
    let mut book = HealthBook::new(&config, 1);
    assert_eq!(ep_state(&book, cloud, 0), EndpointState::Unknown);
    let ip = |s: &str| -> std::net::IpAddr { s.parse().unwrap() };
    assert!(book.resolved((cloud, 0), Ok(vec![ip("192.0.2.7")]), 1_000));
    assert_eq!(ep_state(&book, cloud, 0), EndpointState::Up);
    let view = book.view();
    let p = view.pool(cloud).unwrap();
    assert_eq!(
        (p.family(Family::V4).up, p.family(Family::V6).total),
        (1, 0)
    );
    // Failing: kept for stale_for, then dropped by the tick.
    assert!(book.resolved((cloud, 0), Err("timeout".into()), 2_000));
    book.tick(at(100), 11_999);
    assert_eq!(ep_state(&book, cloud, 0), EndpointState::Up, "stale");
    assert!(book.tick(at(200), 12_000));
    assert_eq!(ep_state(&book, cloud, 0), EndpointState::Down, "expired");
    assert_eq!(pool_state(&book, cloud), PoolState::Down);
    // Back, then a reload keeps the addresses.
    book.resolved((cloud, 0), Ok(vec![ip("192.0.2.8")]), 13_000);
    book.reload(&config, 2, at(300));
    let view = book.view();
    let r = view.pool(cloud).unwrap().endpoints[0]
        .resolved
        .clone()
        .unwrap();
    assert_eq!(r.addresses[0].ip, ip("192.0.2.8"));
    assert_eq!(ep_state(&book, cloud, 0), EndpointState::Up);
    // The same name as a CNAME endpoint, then as a host endpoint again.
    let cname = parse(&text("cname"));
    book.reload(&cname, 3, at(400));
    assert!(
        book.view().pool(cloud).unwrap().endpoints[0]
            .resolved
            .is_none()
    );
    book.reload(&config, 4, at(500));
    assert_eq!(ep_state(&book, cloud, 0), EndpointState::Unknown);
    assert!(book.resolved((cloud, 0), Ok(vec![ip("192.0.2.9")]), 14_000));
    assert_eq!(ep_state(&book, cloud, 0), EndpointState::Up);
}
