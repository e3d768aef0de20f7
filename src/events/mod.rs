//! events: what changed and when, for the status page, `GET /api/v1/events`
//! and `geosteer status --events`.
//!
//! The health writer is the only writer: after every snapshot it publishes it
//! hands the new view to a [`Recorder`], which compares it with the previous
//! one (endpoint up/down, pool healthy/degraded/down, drains, names failing
//! open) and appends what changed to the [`EventLog`], a bounded ring the
//! admin API only reads. Once a second it also samples each pool's error rate
//! and latency into a per-pool series bounded to the monitor's `window`.
//!
//! The proxy records what only it sees of its servers (passive ejection,
//! drains) itself: one short lock on a state change, never per request.
//!
//! Every recorded event is also offered to the subscribers of
//! [`EventLog::subscribe`] (the webhooks of `notify`), in the order it is
//! logged, without waiting.
//!
//! Nothing here is on the query path. Fail-open is derived from the view
//! (a balanced name none of whose pools is usable answers from its fallback,
//! DESIGN §3), not counted per query; the names are only re-examined when a
//! pool state changed. The comparison itself is pure: times are passed in.

mod changes;
mod log;

pub use changes::{changes, server_changes};
pub use log::{EventLog, Sample, Series};

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::config::{Config, EndpointKey, OnAllDown};
use crate::health::{Family, HealthView};

/// Events kept: the last this many state changes.
pub const CAPACITY: usize = 200;
/// How often pool error rate and latency are sampled for the sparklines.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(1);
/// Names listed in one fail-open event; the rest are counted.
const NAMES_LISTED: usize = 5;

/// What an event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// An endpoint went up or down (`state`).
    Endpoint,
    /// A pool became healthy, degraded or down.
    Pool,
    /// An endpoint was drained (`state` = "drained") or returned
    /// ("undrained"); also a proxy server (`backend`, `endpoint`).
    Drain,
    /// An endpoint's runtime weight was set or reset (`state` = "weight",
    /// `from` the weight before, `reason` the weight now); also a proxy
    /// server's (`backend`, `endpoint`).
    Weight,
    /// An operator's override of an endpoint's state was set (`state` =
    /// "override up" / "override down"), cleared ("cleared") or ran out
    /// ("expired"); `reason` carries the operator's reason.
    Override,
    /// A config reload: "ok" or "failed".
    Reload,
    /// A proxy backend's server went up or down by its active checks, or
    /// was ejected by passive checks (`max_fails`) and came back "up"
    /// (`backend`, `endpoint` = the server's `host:port`).
    Server,
    /// Balanced names with no usable pool, answered from their fallback
    /// ("fail_open"), or answered normally again ("recovered").
    FailOpen,
    /// The fleet's store: etcd lost its data ("etcd_data_lost"), and what
    /// this node did about it (`reason`).
    Fleet,
    /// A `host` endpoint's name resolved to other addresses ("resolved",
    /// `from` the addresses before, `reason` those now), failed to resolve
    /// while its last addresses still answer ("stale"), or failed for
    /// longer than `stale_for`, its addresses dropped ("expired").
    Resolve,
}

impl Kind {
    /// Every kind, in the order `[[notify]] events` lists them
    /// (`config::EVENT_KINDS`, held equal by a test).
    pub const ALL: &[Kind] = &[
        Kind::Endpoint,
        Kind::Pool,
        Kind::Drain,
        Kind::Weight,
        Kind::Override,
        Kind::Reload,
        Kind::Server,
        Kind::FailOpen,
        Kind::Fleet,
        Kind::Resolve,
    ];

    /// As serialized (`"fail_open"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Endpoint => "endpoint",
            Kind::Pool => "pool",
            Kind::Drain => "drain",
            Kind::Weight => "weight",
            Kind::Override => "override",
            Kind::Reload => "reload",
            Kind::Server => "server",
            Kind::FailOpen => "fail_open",
            Kind::Fleet => "fleet",
            Kind::Resolve => "resolve",
        }
    }
}

/// One state change.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    /// Wall clock, milliseconds since the Unix epoch.
    pub at_unix_ms: u64,
    pub kind: Kind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pool: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Server events: the proxy backend.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backend: Option<String>,
    /// Fail-open: the balanced names concerned.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<String>,
    /// The new state: up, down, healthy, degraded, drained, undrained, ok,
    /// failed, fail_open, recovered.
    pub state: String,
    /// The state before, where there was one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// Why, in words: the probe's error, the threshold crossed, the votes.
    pub reason: String,
}

impl Event {
    fn new(at_unix_ms: u64, kind: Kind, state: &str, reason: String) -> Event {
        Event {
            at_unix_ms,
            kind,
            pool: None,
            endpoint: None,
            backend: None,
            names: Vec::new(),
            state: state.into(),
            from: None,
            reason,
        }
    }

    /// A proxy backend's server changed by the proxy itself: passive
    /// ejection ("ejected", back "up") under [`Kind::Server`], a drain
    /// ("drained", "undrained") under [`Kind::Drain`].
    pub fn proxy_server(
        at_unix_ms: u64,
        kind: Kind,
        backend: &str,
        server: std::net::SocketAddr,
        (state, from): (&str, &str),
        reason: String,
    ) -> Event {
        Event {
            backend: Some(backend.to_string()),
            endpoint: Some(server.to_string()),
            from: Some(from.into()),
            ..Event::new(at_unix_ms, kind, state, reason)
        }
    }

    /// A reload that kept the old config serving.
    pub fn reload_failed(at_unix_ms: u64, error: &str) -> Event {
        Event::new(at_unix_ms, Kind::Reload, "failed", error.into())
    }

    /// A drain change the fleet link settled itself (a local undrain
    /// reconciled with etcd), not seen as a change of the health view.
    pub fn drain(
        at_unix_ms: u64,
        pool: &str,
        endpoint: &str,
        state: &str,
        from: &str,
        reason: String,
    ) -> Event {
        Event {
            pool: Some(pool.into()),
            endpoint: Some(endpoint.into()),
            from: Some(from.into()),
            ..Event::new(at_unix_ms, Kind::Drain, state, reason)
        }
    }

    /// Something that happened to the fleet's store (`state`, e.g.
    /// "etcd_data_lost").
    pub fn fleet(at_unix_ms: u64, state: &str, reason: String) -> Event {
        Event::new(at_unix_ms, Kind::Fleet, state, reason)
    }

    /// One line for logs and `geosteer status --events` (without the time).
    pub fn summary(&self) -> String {
        let mut s = String::new();
        for part in [&self.backend, &self.pool, &self.endpoint]
            .into_iter()
            .flatten()
        {
            s.push_str(part);
            s.push(' ');
        }
        s.push_str(&self.state);
        if let Some(from) = &self.from {
            s.push_str(&format!(" (was {from})"));
        }
        s
    }
}

/// A Unix time in ms as RFC 3339 (UTC, seconds). Times past the year 9999,
/// which RFC 3339 cannot write (an override's `for` of "100000y"), read
/// "after 9999-12-31T23:59:59Z": humantime's Display fails on them, and
/// `to_string` would panic the health writer that records the event.
pub fn rfc3339(unix_ms: u64) -> String {
    use std::fmt::Write as _;
    let mut text = String::new();
    match std::time::UNIX_EPOCH.checked_add(Duration::from_millis(unix_ms)) {
        Some(t) if write!(text, "{}", humantime::format_rfc3339_seconds(t)).is_ok() => text,
        _ => "after 9999-12-31T23:59:59Z".to_string(),
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Why a publish happened: it names the cause of drain changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// Probe results, proxied traffic, the periodic evaluation.
    Health,
    /// The admin API (or a signal) drained or returned an endpoint.
    Drain,
    /// The admin API set or reset an endpoint's runtime weight.
    Weight,
    /// The admin API set or cleared an endpoint's override.
    Override,
    /// A pushed health (`type = "external"` monitors).
    Push,
    /// What the fleet's other nodes publish, fleet-wide drains included.
    Fleet,
    /// A new config (its generation).
    Reload(u64),
}

/// The writer's side: the last view it recorded, and the names failing open.
pub struct Recorder {
    log: Arc<EventLog>,
    /// Pool names and endpoint keys of the last view, by index.
    names: Vec<(String, Vec<EndpointKey>)>,
    last: Arc<HealthView>,
    failing_open: HashSet<String>,
    last_sample_unix_ms: Option<u64>,
}

impl Recorder {
    /// Starts from the view published at start-up; names already failing
    /// open then are recorded at once (that is a state worth seeing).
    pub fn new(
        log: Arc<EventLog>,
        config: &Config,
        health: Arc<HealthView>,
        now_unix_ms: u64,
    ) -> Recorder {
        let mut r = Recorder {
            log,
            names: names_of(config),
            last: Arc::new(HealthView::default()),
            failing_open: HashSet::new(),
            last_sample_unix_ms: None,
        };
        r.update_fail_open(config, &health, now_unix_ms);
        r.last = health;
        r.log.sample(config, &r.last, now_unix_ms);
        r.last_sample_unix_ms = Some(now_unix_ms);
        r
    }

    /// After each publish: records what changed since the last one.
    pub fn published(
        &mut self,
        config: &Config,
        health: Arc<HealthView>,
        cause: Cause,
        now_unix_ms: u64,
    ) {
        if Arc::ptr_eq(&health, &self.last) {
            return;
        }
        let mut events = Vec::new();
        if let Cause::Reload(generation) = cause {
            events.push(Event::new(
                now_unix_ms,
                Kind::Reload,
                "ok",
                format!("config generation {generation}"),
            ));
        }
        let pools_changed = changes(
            &self.names,
            &self.last,
            config,
            &health,
            cause,
            now_unix_ms,
            &mut events,
        );
        server_changes(config, &self.last, &health, now_unix_ms, &mut events);
        self.log.record(events);
        if pools_changed || matches!(cause, Cause::Reload(_)) {
            self.update_fail_open(config, &health, now_unix_ms);
        }
        if matches!(cause, Cause::Reload(_)) {
            self.names = names_of(config);
        }
        self.last = health;
    }

    /// Called often (every writer tick): samples the series once a [`SAMPLE_EVERY`].
    pub fn tick(&mut self, config: &Config, health: &HealthView, now_unix_ms: u64) {
        let due = self.last_sample_unix_ms.is_none_or(|t| {
            now_unix_ms.saturating_sub(t) >= SAMPLE_EVERY.as_millis() as u64 || now_unix_ms < t
        });
        if due {
            self.log.sample(config, health, now_unix_ms);
            self.last_sample_unix_ms = Some(now_unix_ms);
        }
    }

    fn update_fail_open(&mut self, config: &Config, health: &HealthView, now_unix_ms: u64) {
        let now: HashSet<String> = failing_open(config, health).into_iter().collect();
        let mut started: Vec<String> = now.difference(&self.failing_open).cloned().collect();
        let mut ended: Vec<String> = self.failing_open.difference(&now).cloned().collect();
        started.sort();
        ended.sort();
        let mut events = Vec::new();
        if !started.is_empty() {
            let fallbacks = fallbacks_of(config, &started);
            let mut e = Event::new(
                now_unix_ms,
                Kind::FailOpen,
                "fail_open",
                format!(
                    "no usable pool: {} answered by {fallbacks}",
                    listed(&started)
                ),
            );
            e.names = plain_names(started);
            events.push(e);
        }
        if !ended.is_empty() {
            let mut e = Event::new(
                now_unix_ms,
                Kind::FailOpen,
                "recovered",
                format!("{} answered from a usable pool again", listed(&ended)),
            );
            e.from = Some("fail_open".into());
            e.names = plain_names(ended);
            events.push(e);
        }
        self.log.record(events);
        self.failing_open = now;
    }
}

fn names_of(config: &Config) -> Vec<(String, Vec<EndpointKey>)> {
    config
        .pools
        .iter()
        .map(|p| {
            (
                p.name.clone(),
                p.endpoints.iter().map(|e| e.key()).collect(),
            )
        })
        .collect()
}

/// "a, b and 3 more names"
fn listed(names: &[String]) -> String {
    let shown = names
        .iter()
        .take(NAMES_LISTED)
        .map(|n| n.trim_end_matches('.'))
        .collect::<Vec<_>>()
        .join(", ");
    match names.len().saturating_sub(NAMES_LISTED) {
        0 => shown,
        more => format!("{shown} and {more} more names"),
    }
}

/// `NAME A` / `NAME AAAA` entries of [`failing_open`] as the names alone,
/// each once.
fn plain_names(entries: Vec<String>) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for e in entries {
        let name = e.split(' ').next().unwrap_or_default().to_string();
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names.truncate(NAMES_LISTED);
    names
}

fn fallbacks_of(config: &Config, names: &[String]) -> String {
    let mut pools: Vec<String> = config
        .balance
        .iter()
        .filter(|b| names.iter().any(|n| n.split(' ').next() == Some(&b.name)))
        .map(|b| match (b.on_all_down, b.fallback) {
            (OnAllDown::Fallback, Some(p)) => format!("fallback {}", config.pool(p).name),
            (mode, _) => format!("on_all_down = {}", mode.as_str()),
        })
        .collect();
    pools.sort();
    pools.dedup();
    pools.join(", ")
}

/// Balanced names with a family (A or AAAA) whose queries go to
/// `on_all_down` ([`steer::fails_open`], the walk's own rule). As
/// `NAME A` / `NAME AAAA`. Pure.
pub fn failing_open(config: &Config, health: &HealthView) -> Vec<String> {
    let mut out = Vec::new();
    for b in &config.balance {
        for family in Family::BOTH {
            if crate::steer::fails_open(b, family, health) {
                out.push(format!("{} {}", b.name, family.rtype()));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
