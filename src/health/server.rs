//! server: the active-check health of proxy backends' servers.
//!
//! A backend with a `monitor` has every server probed like a pool endpoint
//! (the same probe workers, the same first round): `rise` passes take a down
//! server up, `fall` failures take it down, the first result sets the state.
//! The writer hands the result to the proxy, which picks only servers that
//! are up here (passive ejection by `max_fails` is the proxy's own, beside
//! it). Servers of backends without a monitor are always up here.
//!
//! An operator's runtime weight for a server (`POST /api/v1/backends/{b}/
//! servers/{s}/weight`) is kept here too, so that it reaches the proxy the
//! way the checks' verdicts do and the state file sees it.
//!
//! Pure: time is an argument. History is kept across a reload by (backend
//! name, server address) while the backend keeps the same monitor; a runtime
//! weight is kept while the server exists, whatever the monitor.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::endpoint::{Endpoint, Outcome};
use super::pool::Thresholds;
use super::{EndpointState, Observation, Source};
use crate::config::{BackendId, Config};

/// One backend's servers as the active checks see them.
#[derive(Debug, Clone)]
struct Backend {
    name: Arc<str>,
    monitor: Option<String>,
    rise_fall: (u32, u32),
    servers: Vec<(SocketAddr, Endpoint)>,
    /// Runtime weights, indexed like `servers` (None: the config's).
    weights: Vec<Option<u32>>,
}

/// Every backend's servers, indexed like `Config::backends`.
#[derive(Debug, Clone, Default)]
pub(super) struct ServerBook {
    backends: Vec<Backend>,
}

/// One backend in [`super::HealthView::backends`].
#[derive(Debug, Clone, PartialEq)]
pub struct BackendHealth {
    /// The backend's name.
    pub name: Arc<str>,
    /// The backend has a `monitor`: its servers' states come from probes.
    pub monitored: bool,
    /// Indexed like `BackendConfig::servers`.
    pub servers: Vec<ServerHealth>,
}

/// One server's active-check state.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerHealth {
    /// The server's address.
    pub address: SocketAddr,
    /// `unknown` until the first result (out of rotation), then up or down.
    pub state: EndpointState,
    /// Why the last check failed (`refused`, `timeout`, `status 503`).
    pub last_error: Option<Arc<str>>,
    /// Smoothed probe latency.
    pub latency: Option<Duration>,
    /// Wall clock (Unix ms) of the last state change; 0 if never.
    pub since_unix_ms: u64,
    /// The operator's runtime weight, replacing the config's while set.
    pub weight: Option<u32>,
}

impl ServerHealth {
    /// In rotation as far as active checks go.
    pub fn up(&self) -> bool {
        self.state == EndpointState::Up
    }
}

fn build(config: &Config, id: usize) -> Backend {
    let b = &config.backends[id];
    let monitor = b.monitor.map(|m| &config.monitors[m.index()]);
    let t = Thresholds::of(monitor);
    let state = if monitor.is_some() {
        EndpointState::Unknown
    } else {
        EndpointState::Up
    };
    Backend {
        name: Arc::from(b.name.as_str()),
        monitor: monitor.map(|m| m.name.clone()),
        rise_fall: (t.rise, t.fall),
        servers: b
            .servers
            .iter()
            .map(|s| {
                let e = Endpoint::new(
                    s.address.ip().into(),
                    Some(super::Family::of(&s.address.ip())),
                    state,
                    t.window,
                    t.latency_tau(),
                );
                (s.address, e)
            })
            .collect(),
        weights: vec![None; b.servers.len()],
    }
}

impl ServerBook {
    pub(super) fn new(config: &Config) -> ServerBook {
        ServerBook {
            backends: (0..config.backends.len())
                .map(|i| build(config, i))
                .collect(),
        }
    }

    /// Applies one probe result on `Target::Server(backend, index)`; traffic
    /// observations are the proxy's (passive ejection) and ignored. Returns
    /// true when the server's state or last error changed.
    pub(super) fn observe(
        &mut self,
        (backend, index): (BackendId, u32),
        obs: &Observation,
        now: Instant,
        now_unix_ms: u64,
    ) -> bool {
        if obs.source != Source::Probe {
            return false;
        }
        let Some(b) = self.backends.get_mut(backend.index()) else {
            return false;
        };
        let monitored = b.monitor.is_some();
        let Some((_, server)) = b.servers.get_mut(index as usize) else {
            return false;
        };
        let outcome = Outcome {
            ok: obs.ok,
            latency: obs.latency,
            error: obs.error.as_deref(),
            from_probe: true,
        };
        server.apply(outcome, monitored, b.rise_fall, now, now_unix_ms)
    }

    /// Sets (None: back to the config's) the runtime weight of a server.
    /// Returns true when it changed.
    pub(super) fn set_weight(
        &mut self,
        backend: BackendId,
        server: u32,
        weight: Option<u32>,
    ) -> bool {
        let Some(w) = self
            .backends
            .get_mut(backend.index())
            .and_then(|b| b.weights.get_mut(server as usize))
        else {
            return false;
        };
        let changed = *w != weight;
        *w = weight;
        changed
    }

    /// Switches to `config`, keeping the state of servers whose (backend
    /// name, address) is unchanged while their backend keeps its monitor,
    /// and their runtime weights while they exist.
    pub(super) fn reload(&mut self, config: &Config) {
        let old: HashMap<&str, &Backend> = self.backends.iter().map(|b| (&*b.name, b)).collect();
        let mut backends = Vec::with_capacity(config.backends.len());
        for i in 0..config.backends.len() {
            let mut b = build(config, i);
            if let Some(prev) = old.get(&*b.name) {
                let same_monitor = prev.monitor == b.monitor;
                for ((address, server), weight) in b.servers.iter_mut().zip(&mut b.weights) {
                    let Some(j) = prev.servers.iter().position(|(a, _)| a == address) else {
                        continue;
                    };
                    if same_monitor {
                        server.inherit(&prev.servers[j].1);
                    }
                    *weight = prev.weights[j];
                }
            }
            backends.push(b);
        }
        self.backends = backends;
    }

    pub(super) fn view(&self) -> Vec<BackendHealth> {
        self.backends
            .iter()
            .map(|b| BackendHealth {
                name: b.name.clone(),
                monitored: b.monitor.is_some(),
                servers: b
                    .servers
                    .iter()
                    .zip(&b.weights)
                    .map(|((address, e), weight)| ServerHealth {
                        address: *address,
                        state: e.state,
                        last_error: e.last_error.clone(),
                        latency: e.window.latency(),
                        since_unix_ms: e.since_unix_ms,
                        weight: *weight,
                    })
                    .collect(),
            })
            .collect()
    }
}
