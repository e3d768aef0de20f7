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
//! - `book`: [`HealthBook`], the whole mutable book, reloads included.

mod book;
mod endpoint;
pub mod fleet;
mod pool;
mod window;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::config::{Config, PoolId};

pub use book::HealthBook;
pub use pool::Thresholds;

/// An endpoint's probe-driven state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EndpointState {
    /// No probe result yet: out of answers until the first one.
    Unknown,
    Up,
    Down,
}

/// A pool's state, as DESIGN §3 defines it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PoolState {
    Healthy,
    Degraded,
    Down,
}

impl PoolState {
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
    /// What answers use: this node's own state, or in a fleet the quorum.
    pub state: EndpointState,
    /// This node's own probe verdict (equal to `state` alone).
    pub local: EndpointState,
    /// In a fleet: the votes `state` was decided from, this node's included.
    pub votes: Option<fleet::Votes>,
    pub draining: bool,
    /// Error rate over the monitor's window, 0.0..=1.0.
    pub error_rate: f64,
    /// Smoothed latency; None before any sample.
    pub latency: Option<Duration>,
    pub last_error: Option<Arc<str>>,
    /// Wall-clock time (ms since the Unix epoch) of the last state change; 0 if never.
    pub since_unix_ms: u64,
}

impl EndpointHealth {
    /// In answers: up and not draining.
    pub fn usable(&self) -> bool {
        self.state == EndpointState::Up && !self.draining
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct PoolHealth {
    /// What answers use: in a fleet, down by the endpoints' quorum states
    /// and degraded by the quorum of the vantages' judgements.
    pub state: PoolState,
    /// This node's own judgement of error rate and latency (with hysteresis).
    pub degraded_here: bool,
    /// In a fleet: vantages judging the pool degraded, of those that judged.
    pub degraded_votes: Option<fleet::Votes>,
    pub error_rate: f64,
    pub latency: Option<Duration>,
    /// Endpoints up (draining ones included) and the total.
    pub up: u32,
    pub total: u32,
    pub endpoints: Vec<EndpointHealth>,
}

/// Immutable health of every pool, indexed by [`PoolId`]; shared by queries.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HealthView {
    pub pools: Vec<PoolHealth>,
    /// In a fleet: what was heard from the other nodes, as last handed to the
    /// writer (shared, not copied, between views).
    pub fleet: Option<Arc<fleet::FleetView>>,
    /// In a fleet: the other vantages with a location and their pool
    /// latencies, for the `latency` policy's nearest vantage.
    pub vantages: Arc<[fleet::RemoteVantage]>,
    /// This node's location, when it is part of a fleet and has one.
    pub here: Option<(f64, f64)>,
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
                let monitored = pool.monitor.is_some();
                let state = if monitored {
                    EndpointState::Unknown
                } else {
                    EndpointState::Up
                };
                let endpoints: Vec<EndpointHealth> = pool
                    .endpoints
                    .iter()
                    .map(|_| EndpointHealth {
                        state,
                        local: state,
                        votes: None,
                        draining: false,
                        error_rate: 0.0,
                        latency: None,
                        last_error: None,
                        since_unix_ms: 0,
                    })
                    .collect();
                let up = if monitored { 0 } else { endpoints.len() as u32 };
                PoolHealth {
                    state: if up >= pool.min_healthy.max(1) {
                        PoolState::Healthy
                    } else {
                        PoolState::Down
                    },
                    degraded_here: false,
                    degraded_votes: None,
                    error_rate: 0.0,
                    latency: None,
                    up,
                    total: endpoints.len() as u32,
                    endpoints,
                }
            })
            .collect();
        HealthView {
            pools,
            ..HealthView::default()
        }
    }

    pub fn pool(&self, id: PoolId) -> Option<&PoolHealth> {
        self.pools.get(id.index())
    }
}

/// Who an observation is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    /// One endpoint of a DNS pool: (pool, index in `PoolConfig::endpoints`).
    Endpoint(PoolId, u32),
    /// Real traffic a proxy backend forwarded on behalf of a pool (the
    /// backend's `pool` key): counts in the pool's error rate and latency.
    PoolTraffic(PoolId),
    /// One server of a proxy backend: (backend, index in `BackendConfig::servers`).
    Server(crate::config::BackendId, u32),
}

/// Where an observation came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Probe,
    Traffic,
}

/// One probe result or one forwarded request's outcome, sent to the health writer.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    /// The config generation the ids refer to; observations from an older
    /// generation are dropped by the writer after a reload.
    pub generation: u64,
    pub target: Target,
    pub source: Source,
    pub ok: bool,
    pub latency: Duration,
    /// Why it failed (`refused`, `timeout`, `status 503`, `body mismatch`, ...).
    pub error: Option<String>,
}
