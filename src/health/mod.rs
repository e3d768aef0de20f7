//! health: endpoint and pool health, as a mutable book owned by one writer and
//! an immutable [`HealthView`] that queries read.
//!
//! This module is pure: no tokio, no clock, no sockets. Time is passed in.
//! The DNS steering code reads only [`HealthView`]; probes and the proxy send
//! observations to the single writer, which publishes a new view on change.
//!
//! - `endpoint`: up/down by rise/fall; the first result sets the state.
//! - `window`: bounded sliding window: error rate and smoothed latency.
//! - `pool`: healthy / degraded / down with hysteresis.
//! - `ramp`: slow starts and gradual drains, stepped by the writer.
//! - `spill`: the damped controller of the share a pool over capacity keeps.
//! - `load`: a pool's load from the proxy's rate, the fleet and headers.
//! - `book`: [`HealthBook`], the whole mutable book, reloads included.

// The pure core: no clock, no global RNG, no tokio (clippy.toml says why).
#![deny(clippy::disallowed_methods, clippy::disallowed_types)]
#![warn(missing_docs)]

mod book;
mod endpoint;
pub mod fleet;
pub mod load;
mod pool;
pub mod ramp;
pub mod resolved;
mod server;
pub mod spill;
mod window;

#[cfg(test)]
mod tests;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::config::{Config, EndpointConfig, PoolId};

pub use book::HealthBook;
pub use pool::Thresholds;
pub use server::{BackendHealth, ServerHealth};

/// Address family of an endpoint, and of a query's type: A → V4, AAAA → V6.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    /// IPv4: A records.
    V4,
    /// IPv6: AAAA records.
    V6,
}

impl Family {
    /// Both families, V4 first.
    pub const BOTH: [Family; 2] = [Family::V4, Family::V6];

    /// The family of an address.
    pub fn of(ip: &IpAddr) -> Family {
        match ip {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }

    /// The family an endpoint answers: its address's; None for a name
    /// endpoint, which answers queries of every family.
    pub fn of_endpoint(e: &EndpointConfig) -> Option<Family> {
        e.address().as_ref().map(Family::of)
    }

    /// Index into per-family arrays: V4 0, V6 1.
    pub fn index(self) -> usize {
        match self {
            Family::V4 => 0,
            Family::V6 => 1,
        }
    }

    /// `v4` / `v6`, as the views and `?family=` spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Family::V4 => "v4",
            Family::V6 => "v6",
        }
    }

    /// The record type this family answers: `A` / `AAAA`.
    pub fn rtype(self) -> &'static str {
        match self {
            Family::V4 => "A",
            Family::V6 => "AAAA",
        }
    }

    /// Reads `v4`, `4`, `ipv4`, `a` (or `v6`, `6`, `ipv6`, `aaaa`), any case.
    pub fn parse(text: &str) -> Option<Family> {
        match text.to_ascii_lowercase().as_str() {
            "v4" | "4" | "ipv4" | "a" => Some(Family::V4),
            "v6" | "6" | "ipv6" | "aaaa" => Some(Family::V6),
            _ => None,
        }
    }
}

/// An endpoint's probe-driven state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EndpointState {
    /// No probe result yet: out of answers until the first one.
    Unknown,
    /// Passing its checks (rise reached).
    Up,
    /// Failing its checks (fall reached).
    Down,
}

/// A pool's state, as DESIGN §3 defines it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PoolState {
    /// Enough endpoints up, error rate and latency within the monitor's limits.
    Healthy,
    /// Enough endpoints up, but over the error rate or latency limit.
    Degraded,
    /// A family of it has fewer usable endpoints than `min_healthy`.
    Down,
}

impl PoolState {
    /// Its name in views and events: `healthy`, `degraded`, `down`.
    pub fn as_str(self) -> &'static str {
        match self {
            PoolState::Healthy => "healthy",
            PoolState::Degraded => "degraded",
            PoolState::Down => "down",
        }
    }
}

/// What a query needs to know about one endpoint, and what status pages show.
#[derive(Debug, Clone, PartialEq)]
pub struct EndpointHealth {
    /// The family of its address: which queries it answers; None for a
    /// name (CNAME) endpoint, which answers every family and counts in each.
    pub family: Option<Family>,
    /// What answers use: this node's own state, or in a fleet the quorum.
    pub state: EndpointState,
    /// This node's own probe verdict (equal to `state` alone).
    pub local: EndpointState,
    /// In a fleet: the votes `state` was decided from, this node's included.
    pub votes: Option<fleet::Votes>,
    /// Drained (locally or fleet-wide): out of every answer.
    pub draining: bool,
    /// The runtime weight (admin API) that replaces the config's; None: the
    /// config's.
    pub weight: Option<u32>,
    /// A slow start or gradual drain under way.
    pub ramp: Option<ramp::Ramp>,
    /// Its share of the weight, in per mille (1000: full weight).
    pub ramp_permille: u16,
    /// An operator's override of its state (admin API): down takes it out
    /// of answers whatever its checks say, up keeps it in despite them (a
    /// drain still wins).
    pub forced: Option<Forced>,
    /// Its last pushed health (`type = "external"` monitors).
    pub pushed: Option<Pushed>,
    /// Error rate over the monitor's window, 0.0..=1.0.
    pub error_rate: f64,
    /// Smoothed latency; None before any sample.
    pub latency: Option<Duration>,
    /// The last probe or traffic error.
    pub last_error: Option<Arc<str>>,
    /// Wall-clock time (ms since the Unix epoch) of the last state change; 0 if never.
    pub since_unix_ms: u64,
    /// A `host` endpoint's current addresses, each with its probe state.
    pub resolved: Option<resolved::Resolved>,
}

impl EndpointHealth {
    /// Counted in `family`'s endpoints (see [`resolved::Resolved::counts_in`]).
    pub fn counts_in(&self, family: Family) -> bool {
        match &self.resolved {
            Some(r) => r.counts_in(family),
            None => self.family.is_none_or(|x| x == family),
        }
    }

    /// Usable for queries of `family`: a host endpoint needs an address of
    /// that family up (or to be forced up).
    pub fn usable_in(&self, family: Family) -> bool {
        self.usable()
            && self
                .resolved
                .as_ref()
                .is_none_or(|r| r.up_in(family) || self.forced.as_ref().is_some_and(|f| f.up))
    }

    /// In answers: not draining, and up (by its checks, or forced up); an
    /// endpoint forced down never is.
    pub fn usable(&self) -> bool {
        !self.draining && forced_state(self.forced.as_ref(), self.state) == EndpointState::Up
    }

    /// The weight answers draw this endpoint by, in thousandths: the
    /// runtime weight (else `config_weight`) times the ramp's per mille.
    /// Only the ratios between a pool's endpoints matter.
    pub fn effective_weight(&self, config_weight: u32) -> u32 {
        self.weight
            .unwrap_or(config_weight)
            .saturating_mul(u32::from(self.ramp_permille))
    }
}

/// An operator's override of an endpoint's state (`POST .../override`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Forced {
    /// Forced up (in answers despite failing checks) or down (out).
    pub up: bool,
    /// Why, as the operator said.
    pub reason: String,
    /// When it ends by itself (Unix ms); None: until cleared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until_unix_ms: Option<u64>,
}

impl Forced {
    /// `up` / `down`.
    pub fn state_str(&self) -> &'static str {
        if self.up { "up" } else { "down" }
    }
}

/// An endpoint's health as last pushed (`PUT .../health`): it holds until
/// `expires_unix_ms`, then the endpoint is down until the next push.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Pushed {
    /// The pusher says the endpoint is up.
    pub up: bool,
    /// Why, as the pusher put it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// How long a push holds, in ms.
    pub ttl_ms: u64,
    /// Unix ms it stops holding.
    pub expires_unix_ms: u64,
    /// The latency the pusher measured, in ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
    /// Set by the writer's tick once `expires_unix_ms` passed.
    #[serde(default)]
    pub expired: bool,
}

/// The state answers use given an override: forced down is down, forced up
/// is up, else `state`.
pub fn forced_state(forced: Option<&Forced>, state: EndpointState) -> EndpointState {
    match forced {
        Some(f) if f.up => EndpointState::Up,
        Some(_) => EndpointState::Down,
        None => state,
    }
}

/// A pool as queries of one address family see it (DESIGN §3 step 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct FamilyHealth {
    /// Down when fewer than `min(min_healthy, total)` endpoints of the
    /// family are usable (or it has none); else the pool's degraded verdict.
    pub state: PoolState,
    /// Endpoints of the family up and not draining.
    pub up: u32,
    /// Endpoints of the family draining.
    pub draining: u32,
    /// Endpoints of the family.
    pub total: u32,
}

impl FamilyHealth {
    /// The pool can answer this family at all (has an endpoint of it).
    pub fn present(&self) -> bool {
        self.total > 0
    }

    /// Every endpoint of the family up and none draining.
    pub fn whole(&self) -> bool {
        self.up == self.total
    }
}

#[derive(Debug, Clone, PartialEq)]
/// One pool's health: its state, measures and endpoints.
pub struct PoolHealth {
    /// The worst state of the families it has endpoints of (what a pool-wide
    /// view shows); queries use [`family`](Self::family). In a fleet, down by
    /// the endpoints' quorum states and degraded by the quorum of the
    /// vantages' judgements.
    pub state: PoolState,
    /// This node's own judgement of error rate and latency (with hysteresis).
    pub degraded_here: bool,
    /// In a fleet: vantages judging the pool degraded, of those that judged.
    pub degraded_votes: Option<fleet::Votes>,
    /// Error rate over the monitor's window, 0.0..=1.0.
    pub error_rate: f64,
    /// Smoothed latency; None before any sample.
    pub latency: Option<Duration>,
    /// Endpoints usable (up and not draining), draining, and the total.
    pub up: u32,
    /// Endpoints draining.
    pub draining: u32,
    /// Endpoints of the pool.
    pub total: u32,
    /// Per family, indexed by [`Family::index`].
    pub families: [FamilyHealth; 2],
    /// The newest error among its endpoints that are down: what a view shows
    /// instead of an error rate when no endpoint is left to measure.
    pub last_error: Option<Arc<str>>,
    /// Its endpoints, indexed like the config's.
    pub endpoints: Vec<EndpointHealth>,
    /// Back from down with `slow_start`: taking back its catchment.
    pub ramp: Option<ramp::Ramp>,
    /// The share of its catchment it takes, per mille (1000: all): a client
    /// whose subnet hashes at or above it goes on to the next usable pool.
    pub admit_permille: u16,
    /// With `capacity`: the reported load while fresh.
    pub load: Option<f64>,
    /// Load / capacity while the load is fresh.
    pub utilisation: Option<f64>,
    /// With `load = "proxy"`: the requests per second this node's proxy
    /// forwarded for the pool (the load sums the fleet's).
    pub proxy_rate: Option<f64>,
    /// With `capacity`: the share of its catchment it keeps, per mille (the
    /// spill controller's; 1000: no spill).
    pub keep_permille: u16,
    /// It can take clients another pool spills: no capacity, no fresh load,
    /// or utilisation under its `spill_at`.
    pub headroom: bool,
}

impl PoolHealth {
    /// The share of its catchment it answers, per mille: the smaller of
    /// the slow start's and the spill controller's.
    pub fn share_permille(&self) -> u16 {
        self.admit_permille.min(self.keep_permille)
    }
}

impl PoolHealth {
    /// A pool made of `endpoints`, its counts and states derived from them.
    /// `degraded`: the pool's verdict on error rate and latency.
    pub fn new(
        endpoints: Vec<EndpointHealth>,
        min_healthy: u32,
        degraded: bool,
        (error_rate, latency): (f64, Option<Duration>),
    ) -> PoolHealth {
        let mut p = PoolHealth {
            state: PoolState::Down,
            degraded_here: degraded,
            degraded_votes: None,
            error_rate,
            latency,
            up: 0,
            draining: 0,
            total: 0,
            families: [FamilyHealth {
                state: PoolState::Down,
                up: 0,
                draining: 0,
                total: 0,
            }; 2],
            last_error: None,
            endpoints,
            ramp: None,
            admit_permille: ramp::FULL,
            load: None,
            utilisation: None,
            proxy_rate: None,
            keep_permille: ramp::FULL,
            headroom: true,
        };
        p.recount(min_healthy, degraded);
        p
    }

    /// How queries of `family` see the pool.
    pub fn family(&self, family: Family) -> &FamilyHealth {
        &self.families[family.index()]
    }

    /// Recomputes the counts, the per-family states and `state` from the
    /// endpoints. `degraded`: the pool's (or the fleet's) verdict on error
    /// rate and latency.
    pub fn recount(&mut self, min_healthy: u32, degraded: bool) {
        let mut families = [FamilyHealth {
            state: PoolState::Down,
            up: 0,
            draining: 0,
            total: 0,
        }; 2];
        let mut newest: Option<(u64, &Arc<str>)> = None;
        let (mut up, mut draining) = (0, 0);
        for e in &self.endpoints {
            for f in Family::BOTH {
                if e.counts_in(f) {
                    let usable = e.usable_in(f);
                    let f = &mut families[f.index()];
                    f.total += 1;
                    f.draining += u32::from(e.draining);
                    f.up += u32::from(usable);
                }
            }
            up += u32::from(e.usable());
            draining += u32::from(e.draining);
            if e.state == EndpointState::Down
                && let Some(err) = &e.last_error
                && newest.is_none_or(|(at, _)| e.since_unix_ms >= at)
            {
                newest = Some((e.since_unix_ms, err));
            }
        }
        let verdict = if degraded {
            PoolState::Degraded
        } else {
            PoolState::Healthy
        };
        for f in &mut families {
            let needed = min_healthy.max(1).min(f.total);
            f.state = if f.total == 0 || f.up < needed {
                PoolState::Down
            } else {
                verdict
            };
        }
        self.last_error = newest.map(|(_, e)| e.clone());
        self.up = up;
        self.draining = draining;
        self.total = self.endpoints.len() as u32;
        self.state = families
            .iter()
            .filter(|f| f.present())
            .map(|f| f.state)
            .max()
            .unwrap_or(PoolState::Down);
        self.families = families;
    }

    /// The families this pool has endpoints of, with their health.
    pub fn present(&self) -> impl Iterator<Item = (Family, &FamilyHealth)> {
        Family::BOTH
            .into_iter()
            .map(|f| (f, self.family(f)))
            .filter(|(_, h)| h.present())
    }
}

/// Immutable health of every pool, indexed by [`PoolId`]; shared by queries.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HealthView {
    /// Every pool, indexed by [`PoolId`].
    pub pools: Vec<PoolHealth>,
    /// In a fleet: what was heard from the other nodes, as last handed to the
    /// writer (shared, not copied, between views).
    pub fleet: Option<Arc<fleet::FleetView>>,
    /// In a fleet: the other vantages with a location and their pool
    /// latencies, for the `latency` policy's nearest vantage.
    pub vantages: Arc<[fleet::RemoteVantage]>,
    /// This node's location, when it is part of a fleet and has one.
    pub here: Option<(f64, f64)>,
    /// Proxy backends' servers by their active checks, indexed by `BackendId`.
    pub backends: Vec<BackendHealth>,
    /// Some pool takes less than its whole catchment (`admit_permille` <
    /// 1000): the walk then hashes the client. False: it never does.
    pub splitting: bool,
}

impl HealthView {
    /// The state before any probe: pools without a monitor are healthy with
    /// every endpoint up; endpoints of monitored pools are unknown (out of
    /// answers), so those pools are down until probes say otherwise.
    pub fn initial(config: &Config) -> HealthView {
        let pools = config
            .pools
            .iter()
            .map(|pool| {
                let monitored = if pool.monitor.is_some() {
                    EndpointState::Unknown
                } else {
                    EndpointState::Up
                };
                let endpoints: Vec<EndpointHealth> = pool
                    .endpoints
                    .iter()
                    .map(|e| {
                        (
                            e,
                            matches!(e.target, crate::config::EndpointTarget::Host(_)),
                        )
                    })
                    .map(|(e, host)| {
                        (
                            e,
                            host,
                            if host {
                                EndpointState::Unknown
                            } else {
                                monitored
                            },
                        )
                    })
                    .map(|(e, host, state)| EndpointHealth {
                        family: Family::of_endpoint(e),
                        state,
                        local: state,
                        resolved: host.then(resolved::Resolved::default),
                        votes: None,
                        draining: false,
                        weight: None,
                        ramp: None,
                        ramp_permille: ramp::FULL,
                        forced: None,
                        pushed: None,
                        error_rate: 0.0,
                        latency: None,
                        last_error: None,
                        since_unix_ms: 0,
                    })
                    .collect();
                PoolHealth::new(endpoints, pool.min_healthy, false, (0.0, None))
            })
            .collect();
        HealthView {
            pools,
            backends: server::ServerBook::new(config).view(),
            ..HealthView::default()
        }
    }

    /// The health of pool `id`.
    pub fn pool(&self, id: PoolId) -> Option<&PoolHealth> {
        self.pools.get(id.index())
    }
}

/// Who an observation is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    /// One endpoint of a DNS pool: (pool, index in `PoolConfig::endpoints`).
    Endpoint(PoolId, u32),
    /// One resolved address of a `host` endpoint: (pool, endpoint index,
    /// the address probed).
    Address(PoolId, u32, IpAddr),
    /// Real traffic a proxy backend forwarded on behalf of a pool (the
    /// backend's `pool` key): counts in the pool's error rate and latency.
    PoolTraffic(PoolId),
    /// One server of a proxy backend: (backend, index in `BackendConfig::servers`).
    Server(crate::config::BackendId, u32),
}

/// Where an observation came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A probe worker's check.
    Probe,
    /// A request the proxy forwarded.
    Traffic,
}

/// One probe result or one forwarded request's outcome, sent to the health writer.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    /// The config generation the ids refer to; observations from an older
    /// generation are dropped by the writer after a reload.
    pub generation: u64,
    /// What was observed.
    pub target: Target,
    /// Who observed it.
    pub source: Source,
    /// It succeeded.
    pub ok: bool,
    /// How long it took.
    pub latency: Duration,
    /// Why it failed (`refused`, `timeout`, `status 503`, `body mismatch`, ...).
    pub error: Option<String>,
    /// The number the response carried in the monitor's `load_header`.
    pub load: Option<f64>,
}
