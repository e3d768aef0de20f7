//! The recorder against a real health book, with a fake clock.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;
use crate::config::{self, Config, PoolId};
use crate::health::{HealthBook, Observation, Source, Target};

const TOML: &str = r#"
[server]
dns_listen = ["127.0.0.1:5353"]

[zones]
"example.test" = "example.test.zone"

[monitors.web]
type = "http"
port = 80
interval = "1s"
timeout = "500ms"
rise = 1
fall = 1
window = "5s"

[pools.eu]
monitor = "web"
endpoints = [{ address = "192.0.2.1" }]

[pools.us]
monitor = "web"
endpoints = [{ address = "192.0.2.9" }]

[[balance]]
name = "www.example.test"
policy = "failover"
pools = ["eu"]
fallback = "us"
"#;

fn parse(text: &str) -> Config {
    match config::parse(text, Path::new("test.toml"), Path::new("."), "") {
        Ok((config, _)) => config,
        Err(e) => panic!("bad test config: {e:?}"),
    }
}

fn probe(pool: u32, ok: bool) -> Observation {
    Observation {
        generation: 1,
        target: Target::Endpoint(PoolId(pool), 0),
        source: Source::Probe,
        ok,
        latency: Duration::from_millis(5),
        error: (!ok).then(|| "refused".to_string()),
        load: None,
    }
}

#[test]
fn endpoint_and_pool_changes_drains_and_fail_open_are_recorded_newest_first() {
    let config = parse(TOML);
    let t0 = Instant::now();
    let mut book = HealthBook::new(&config, 1);
    book.observe(probe(0, true), t0, 1_000);
    book.observe(probe(1, true), t0, 1_000);
    let log = Arc::new(EventLog::default());
    let mut rec = Recorder::new(log.clone(), &config, Arc::new(book.view()), 1_000);
    assert!(log.events().is_empty(), "{:?}", log.events());

    book.observe(probe(0, false), t0 + Duration::from_secs(1), 2_000);
    rec.published(&config, Arc::new(book.view()), Cause::Health, 2_000);
    let events = log.events();
    let kinds: Vec<_> = events.iter().map(|e| (e.kind, e.state.as_str())).collect();
    assert_eq!(
        kinds,
        vec![
            (Kind::FailOpen, "fail_open"),
            (Kind::Pool, "down"),
            (Kind::Endpoint, "down"),
        ]
    );
    let down = &events[2];
    assert_eq!(down.pool.as_deref(), Some("eu"));
    assert_eq!(down.endpoint.as_deref(), Some("192.0.2.1"));
    assert_eq!(down.from.as_deref(), Some("up"));
    assert_eq!(down.reason, "refused");
    assert_eq!(down.at_unix_ms, 2_000);
    assert_eq!(
        events[1].reason,
        "0 of 1 A endpoints up and not draining, min_healthy 1 (last error: refused)"
    );
    assert_eq!(events[0].names, vec!["www.example.test.".to_string()]);
    assert!(
        events[0].reason.contains("fallback us"),
        "{}",
        events[0].reason
    );

    // Draining us's only endpoint takes the pool down too (newest first).
    book.set_draining(PoolId(1), 0, true);
    rec.published(&config, Arc::new(book.view()), Cause::Drain, 3_000);
    let events = log.events();
    let e = &events[1];
    assert_eq!((e.kind, e.state.as_str()), (Kind::Drain, "drained"));
    assert_eq!(e.reason, "operator (admin API)");
    assert_eq!(
        (events[0].kind, events[0].state.as_str()),
        (Kind::Pool, "down")
    );
    book.set_draining(PoolId(1), 0, false);
    rec.published(&config, Arc::new(book.view()), Cause::Drain, 3_500);

    book.observe(probe(0, true), t0 + Duration::from_secs(2), 4_000);
    rec.published(&config, Arc::new(book.view()), Cause::Health, 4_000);
    let states: Vec<_> = log
        .events()
        .iter()
        .take(3)
        .map(|e| e.state.clone())
        .collect();
    assert_eq!(states, vec!["recovered", "healthy", "up"]);
}

#[test]
fn the_ring_keeps_the_last_capacity_events_and_series_stay_in_the_window() {
    let config = parse(TOML);
    let log = EventLog::default();
    log.record((0..CAPACITY as u64 + 10).map(|i| Event::reload_failed(i, "bad")));
    let events = log.events();
    assert_eq!(events.len(), CAPACITY);
    assert_eq!(events[0].at_unix_ms, CAPACITY as u64 + 9);
    assert_eq!(events[CAPACITY - 1].at_unix_ms, 10);

    let view = HealthBook::new(&config, 1).view();
    for s in 0..20u64 {
        log.sample(&config, &view, 1_000 * s);
    }
    let series = log.series();
    assert_eq!(series.len(), 2);
    assert_eq!(series[0].pool, "eu");
    assert_eq!(series[0].window_ms, 5_000);
    // 14 s .. 19 s: within the 5 s window.
    assert_eq!(series[0].samples.len(), 6);
    assert_eq!(series[0].samples[0].at_unix_ms, 14_000);
}

#[test]
fn a_reload_is_recorded_and_compares_endpoints_by_address() {
    let config = parse(TOML);
    let t0 = Instant::now();
    let mut book = HealthBook::new(&config, 1);
    book.observe(probe(0, true), t0, 1_000);
    book.observe(probe(1, true), t0, 1_000);
    let log = Arc::new(EventLog::default());
    let mut rec = Recorder::new(log.clone(), &config, Arc::new(book.view()), 1_000);
    // A pool named first is added: the others move up one index, and are
    // still compared with themselves.
    let swapped = parse(&TOML.replace(
        "[pools.eu]",
        "[pools.ap]\nendpoints = [{ address = \"192.0.2.20\" }]\n[pools.eu]",
    ));
    assert_eq!(swapped.pools[0].name, "ap");
    book.reload(&swapped, 2, t0 + Duration::from_secs(1));
    rec.published(&swapped, Arc::new(book.view()), Cause::Reload(2), 2_000);
    let events = log.events();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(
        (events[0].kind, events[0].state.as_str()),
        (Kind::Reload, "ok")
    );
}

#[test]
fn fleet_votes_and_fleet_wide_drains_are_recorded_with_their_cause() {
    use crate::health::fleet::{FleetView, RemoteNode, Verdict};
    let config = parse(TOML);
    let t0 = Instant::now();
    let mut book = HealthBook::new(&config, 1);
    book.observe(probe(0, true), t0, 1_000);
    book.observe(probe(1, true), t0, 1_000);
    let log = Arc::new(EventLog::default());
    let mut rec = Recorder::new(log.clone(), &config, Arc::new(book.view()), 1_000);
    // Two other vantages see eu's endpoint refused: 2 of 3 say down.
    let mut fleet = FleetView {
        node: "n1".into(),
        connected: true,
        ..Default::default()
    };
    for name in ["n2", "n3"] {
        let mut node = RemoteNode::default();
        node.endpoints.entry("eu".into()).or_default().insert(
            "192.0.2.1".parse().expect("ip"),
            Verdict {
                up: false,
                reason: Some("refused".into()),
                latency_ms: None,
                error_rate: 0.0,
                since: 1,
            },
        );
        fleet.remote.insert(name.into(), node);
    }
    fleet.drains.entry("us".into()).or_default().insert(
        "192.0.2.9".parse().expect("ip"),
        crate::health::fleet::DrainRecord {
            by: "n2".into(),
            at: 1,
            over_ms: None,
        },
    );
    book.set_fleet(Arc::new(fleet));
    rec.published(&config, Arc::new(book.view()), Cause::Fleet, 2_000);
    let events = log.events();
    let endpoint = events
        .iter()
        .find(|e| e.kind == Kind::Endpoint)
        .unwrap_or_else(|| panic!("no endpoint event in {events:?}"));
    assert_eq!(endpoint.state, "down");
    assert_eq!(
        endpoint.reason,
        "2 of 3 vantages see it down; here: probes passing"
    );
    let drain = events
        .iter()
        .find(|e| e.kind == Kind::Drain)
        .unwrap_or_else(|| panic!("no drain event in {events:?}"));
    assert_eq!(drain.endpoint.as_deref(), Some("192.0.2.9"));
    assert_eq!(drain.reason, "fleet-wide (etcd)");
    // Both pools down: the name fails open (no usable pool), and says so.
    assert!(
        events.iter().any(|e| e.kind == Kind::FailOpen),
        "{events:?}"
    );
}

#[test]
fn every_kind_is_a_notify_kind_spelled_as_serialized() {
    let names: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
    assert_eq!(names, crate::config::EVENT_KINDS);
    for k in Kind::ALL {
        assert_eq!(
            serde_json::to_value(k).expect("kind"),
            serde_json::Value::from(k.as_str())
        );
    }
}

#[test]
fn subscribers_get_every_recorded_event_in_order() {
    let log = EventLog::default();
    // Recorded before anyone listens: not offered.
    log.record([Event::reload_failed(1, "before")]);
    let mut rx = log.subscribe();
    log.record([
        Event::reload_failed(2, "one"),
        Event::drain(3, "eu", "192.0.2.1", "drained", "in rotation", "x".into()),
    ]);
    log.record([Event::reload_failed(4, "three")]);
    let got: Vec<u64> = std::iter::from_fn(|| rx.try_recv().ok())
        .map(|e| e.at_unix_ms)
        .collect();
    assert_eq!(got, [2, 3, 4]);
}
