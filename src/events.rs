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
//! Nothing here is on the query path. Fail-open is derived from the view
//! (a balanced name none of whose pools is usable answers from its fallback,
//! DESIGN §3), not counted per query; the names are only re-examined when a
//! pool state changed. The comparison itself is pure: times are passed in.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;

use crate::config::{Config, EndpointKey, OnAllDown, PoolId};
use crate::health::{EndpointHealth, EndpointState, Family, HealthView, PoolHealth, PoolState};

/// Events kept: the last this many state changes.
pub const CAPACITY: usize = 200;
/// How often pool error rate and latency are sampled for the sparklines.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(1);
/// Samples kept per pool, whatever the window (10 minutes at one a second).
const MAX_SAMPLES: usize = 600;
/// The window of a pool without a monitor.
const DEFAULT_WINDOW: Duration = Duration::from_secs(60);
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
    /// `from` the weight before, `reason` the weight now).
    Weight,
    /// A config reload: "ok" or "failed".
    Reload,
    /// A proxy backend's server went up or down by its active checks, or
    /// was ejected by passive checks (`max_fails`) and came back "up"
    /// (`backend`, `endpoint` = the server's `host:port`).
    Server,
    /// Balanced names with no usable pool, answered from their fallback
    /// ("fail_open"), or answered normally again ("recovered").
    FailOpen,
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

/// One sample of a pool's metrics.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Sample {
    pub at_unix_ms: u64,
    pub error_rate: f64,
    pub latency_ms: Option<f64>,
}

/// A pool's recent samples, oldest first, over at most `window_ms`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Series {
    pub pool: String,
    pub window_ms: u64,
    /// The monitor's thresholds, for scaling and marking the sparklines.
    pub max_error_rate: Option<f64>,
    pub max_latency_ms: Option<f64>,
    pub samples: Vec<Sample>,
}

/// The bounded history the writer appends to and the admin API reads.
#[derive(Debug, Default)]
pub struct EventLog {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Oldest first.
    events: VecDeque<Event>,
    /// In config order.
    series: Vec<SeriesBuf>,
}

#[derive(Debug)]
struct SeriesBuf {
    pool: String,
    window_ms: u64,
    max_error_rate: Option<f64>,
    max_latency_ms: Option<f64>,
    samples: VecDeque<Sample>,
}

impl EventLog {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends `events`, dropping the oldest beyond [`CAPACITY`].
    pub fn record(&self, events: impl IntoIterator<Item = Event>) {
        let mut inner = self.lock();
        for e in events {
            tracing::info!(kind = ?e.kind, reason = %e.reason, "event: {}", e.summary());
            if inner.events.len() == CAPACITY {
                inner.events.pop_front();
            }
            inner.events.push_back(e);
        }
    }

    /// The events, newest first.
    pub fn events(&self) -> Vec<Event> {
        self.lock().events.iter().rev().cloned().collect()
    }

    /// Every pool's series, in config order.
    pub fn series(&self) -> Vec<Series> {
        self.lock()
            .series
            .iter()
            .map(|s| Series {
                pool: s.pool.clone(),
                window_ms: s.window_ms,
                max_error_rate: s.max_error_rate,
                max_latency_ms: s.max_latency_ms,
                samples: s.samples.iter().copied().collect(),
            })
            .collect()
    }

    /// Appends one sample per pool of `config`; a pool keeps its series
    /// across a reload by name, a removed pool's series goes.
    pub fn sample(&self, config: &Config, health: &HealthView, now_unix_ms: u64) {
        let mut inner = self.lock();
        let mut old: HashMap<String, SeriesBuf> = std::mem::take(&mut inner.series)
            .into_iter()
            .map(|s| (s.pool.clone(), s))
            .collect();
        for (i, pool) in config.pools.iter().enumerate() {
            let monitor = config.monitor_of(PoolId(i as u32));
            let window = monitor.map_or(DEFAULT_WINDOW, |m| m.window);
            let window_ms = window.as_millis() as u64;
            let mut buf = old.remove(&pool.name).unwrap_or_else(|| SeriesBuf {
                pool: pool.name.clone(),
                window_ms,
                max_error_rate: None,
                max_latency_ms: None,
                samples: VecDeque::new(),
            });
            buf.window_ms = window_ms;
            buf.max_error_rate = monitor.map(|m| m.max_error_rate);
            buf.max_latency_ms = monitor.map(|m| ms(m.max_latency));
            if let Some(h) = health.pools.get(i) {
                buf.samples.push_back(Sample {
                    at_unix_ms: now_unix_ms,
                    error_rate: h.error_rate,
                    latency_ms: h.latency.map(ms),
                });
            }
            let oldest = now_unix_ms.saturating_sub(window_ms);
            while buf
                .samples
                .front()
                .is_some_and(|s| s.at_unix_ms < oldest || buf.samples.len() > MAX_SAMPLES)
            {
                buf.samples.pop_front();
            }
            inner.series.push(buf);
        }
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
        server_changes(&self.last, &health, now_unix_ms, &mut events);
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

/// Appends to `out` what changed from `before` (of the config whose pool
/// names and addresses are `before_names`) to `after` (of `config`):
/// endpoints and pools matched by pool name and address, so a reload
/// compares like with like. Returns true when a pool's state changed. Pure.
pub fn changes(
    before_names: &[(String, Vec<EndpointKey>)],
    before: &HealthView,
    config: &Config,
    after: &HealthView,
    cause: Cause,
    at_unix_ms: u64,
    out: &mut Vec<Event>,
) -> bool {
    let same_layout = before_names.len() == config.pools.len()
        && before_names.iter().zip(&config.pools).all(|((n, a), p)| {
            *n == p.name
                && a.len() == p.endpoints.len()
                && a.iter()
                    .zip(&p.endpoints)
                    .all(|(a, e)| e.target.key() == *a)
        });
    let by_name: HashMap<&str, usize> = if same_layout {
        HashMap::new()
    } else {
        before_names
            .iter()
            .enumerate()
            .map(|(i, (n, _))| (n.as_str(), i))
            .collect()
    };
    let mut pools_changed = false;
    for (i, (pool_cfg, now)) in config.pools.iter().zip(&after.pools).enumerate() {
        let j = if same_layout {
            Some(i)
        } else {
            by_name.get(pool_cfg.name.as_str()).copied()
        };
        let Some((j, was)) = j.and_then(|j| before.pools.get(j).map(|p| (j, p))) else {
            continue;
        };
        let monitor = config.monitor_of(PoolId(i as u32));
        for (k, (e_cfg, e)) in pool_cfg.endpoints.iter().zip(&now.endpoints).enumerate() {
            let k_before = if same_layout {
                Some(k)
            } else {
                before_names[j].1.iter().position(|a| *a == e_cfg.key())
            };
            let Some(prev) = k_before.and_then(|k| was.endpoints.get(k)) else {
                continue;
            };
            let endpoint_event = |state: &str, from: &str, reason: String| Event {
                pool: Some(pool_cfg.name.clone()),
                endpoint: Some(e_cfg.key().to_string()),
                from: Some(from.into()),
                ..Event::new(at_unix_ms, Kind::Endpoint, state, reason)
            };
            if prev.state != e.state && e.state != EndpointState::Unknown {
                out.push(endpoint_event(
                    state_str(e.state),
                    state_str(prev.state),
                    endpoint_reason(e),
                ));
            }
            if prev.draining != e.draining {
                let local = cause == Cause::Fleet
                    && !e.draining
                    && after
                        .fleet
                        .as_ref()
                        .is_some_and(|f| f.undrained_locally(&pool_cfg.name, &e_cfg.key()));
                let reason = match cause {
                    _ if local => "on this node only, etcd unreachable (pending etcd)",
                    Cause::Fleet => "fleet-wide (etcd)",
                    Cause::Reload(_) => "kept across the reload",
                    _ => "operator (admin API)",
                };
                let (state, from) = if e.draining {
                    ("drained", "in rotation")
                } else {
                    ("undrained", "drained")
                };
                out.push(Event {
                    kind: Kind::Drain,
                    ..endpoint_event(state, from, reason.into())
                });
            }
            if prev.weight != e.weight {
                let show = |w: Option<u32>| match w {
                    Some(w) => format!("weight {w}"),
                    None => format!("config weight {}", e_cfg.weight),
                };
                out.push(Event {
                    kind: Kind::Weight,
                    ..endpoint_event(
                        "weight",
                        &show(prev.weight),
                        format!("{} (admin API)", show(e.weight)),
                    )
                });
            }
        }
        if was.state != now.state {
            pools_changed = true;
            out.push(Event {
                pool: Some(pool_cfg.name.clone()),
                from: Some(was.state.as_str().into()),
                ..Event::new(
                    at_unix_ms,
                    Kind::Pool,
                    now.state.as_str(),
                    pool_reason(now, pool_cfg.min_healthy, monitor),
                )
            });
        }
    }
    pools_changed
}

/// Appends the proxy servers whose active-check state changed from `before`
/// to `after`, matched by backend name and address (so across a reload too).
/// A server's first result (from unknown) is not an event. Pure.
pub fn server_changes(
    before: &HealthView,
    after: &HealthView,
    at_unix_ms: u64,
    out: &mut Vec<Event>,
) {
    for b in after.backends.iter().filter(|b| b.monitored) {
        let Some(was) = before.backends.iter().find(|w| w.name == b.name) else {
            continue;
        };
        for s in &b.servers {
            let Some(prev) = was.servers.iter().find(|p| p.address == s.address) else {
                continue;
            };
            if prev.state == s.state
                || s.state == EndpointState::Unknown
                || prev.state == EndpointState::Unknown
            {
                continue;
            }
            let reason = match (s.state, s.last_error.as_deref()) {
                (EndpointState::Down, Some(e)) => e.to_string(),
                (EndpointState::Down, None) => "checks failing".into(),
                _ => "checks passing".into(),
            };
            out.push(Event {
                backend: Some(b.name.to_string()),
                endpoint: Some(s.address.to_string()),
                from: Some(state_str(prev.state).into()),
                ..Event::new(at_unix_ms, Kind::Server, state_str(s.state), reason)
            });
        }
    }
}

fn state_str(s: EndpointState) -> &'static str {
    match s {
        EndpointState::Unknown => "unknown",
        EndpointState::Up => "up",
        EndpointState::Down => "down",
    }
}

fn endpoint_reason(e: &EndpointHealth) -> String {
    let here = match (e.local, e.last_error.as_deref()) {
        (EndpointState::Down, Some(err)) => err.to_string(),
        (EndpointState::Down, None) => "probes failing".into(),
        (EndpointState::Up, _) => "probes passing".into(),
        (EndpointState::Unknown, _) => "no probe result yet".into(),
    };
    match e.votes {
        Some(v) => format!(
            "{} of {} vantages see it down; here: {here}",
            v.down, v.total
        ),
        None => here,
    }
}

fn pool_reason(
    p: &PoolHealth,
    min_healthy: u32,
    monitor: Option<&crate::config::MonitorConfig>,
) -> String {
    let mut up = format!("{} of {} endpoints up", p.up, p.total);
    if p.draining > 0 {
        up.push_str(&format!(", {} draining", p.draining));
    }
    match p.state {
        PoolState::Down => {
            // The families short of usable endpoints (the pool is down when
            // any is: its queries of that family go elsewhere).
            let down: Vec<String> = p
                .present()
                .filter(|(_, f)| f.state == PoolState::Down)
                .map(|(fam, f)| {
                    format!(
                        "{} of {} {} endpoints up and not draining",
                        f.up,
                        f.total,
                        fam.rtype()
                    )
                })
                .collect();
            let mut why = format!("{}, min_healthy {}", down.join("; "), min_healthy.max(1));
            if let Some(e) = p.last_error.as_deref().filter(|_| p.up == 0) {
                why.push_str(&format!(" (last error: {e})"));
            }
            why
        }
        PoolState::Degraded => {
            if let Some(v) = p.degraded_votes.filter(|_| !p.degraded_here) {
                return format!("{} of {} vantages judge it degraded", v.down, v.total);
            }
            let mut why = Vec::new();
            if let Some(m) = monitor {
                if p.error_rate > m.max_error_rate {
                    why.push(format!(
                        "error rate {:.2}% > {:.2}%",
                        p.error_rate * 100.0,
                        m.max_error_rate * 100.0
                    ));
                }
                if let Some(l) = p.latency.filter(|l| *l > m.max_latency) {
                    why.push(format!(
                        "latency {:.0} ms > {:.0} ms",
                        ms(l),
                        ms(m.max_latency)
                    ));
                }
            }
            if why.is_empty() {
                "error rate or latency over threshold".into()
            } else {
                why.join(", ")
            }
        }
        PoolState::Healthy => format!(
            "{up}, error rate {:.2}%{}",
            p.error_rate * 100.0,
            p.latency
                .map(|l| format!(", latency {:.0} ms", ms(l)))
                .unwrap_or_default()
        ),
    }
}

#[cfg(test)]
mod tests;
