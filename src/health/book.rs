//! book: [`HealthBook`], the mutable health of every pool and endpoint.
//!
//! One writer task owns the book (STYLE: one writer of health): probes, the
//! proxy and the admin API send it observations and commands, and it
//! publishes [`HealthBook::view`] when a call returns true. Ids are indices
//! into the config of the book's generation; observations stamped with
//! another generation are dropped. Across a reload, history is kept by
//! (pool name, endpoint key).
//!
//! Pure: `now` (monotonic) and `now_unix_ms` (wall clock, for `since_unix_ms`)
//! are arguments.

use std::collections::HashMap;
use std::time::Instant;

use std::sync::Arc;

use super::endpoint::{Endpoint, Outcome};
use super::fleet::{FleetView, RemoteVantage};
use super::pool::{Pool, Thresholds};
use super::server::ServerBook;
use super::{EndpointState, Forced, HealthView, Observation, Pushed, Target};
use crate::config::{BackendId, Config, EndpointKey, PoolId};

#[derive(Debug, Clone)]
/// The mutable health of every pool, endpoint and proxy server; only the
/// health writer holds it, and hands out [`HealthView`]s.
pub struct HealthBook {
    generation: u64,
    pools: Vec<Pool>,
    /// The latest `now` seen, for calls that do not pass one (drain).
    last_now: Option<Instant>,
    /// Metrics moved since the last `tick`: the next tick reports a change.
    metrics_dirty: bool,
    /// In a fleet: the other nodes' verdicts and the drains, as last heard.
    fleet: Option<Arc<FleetView>>,
    /// From `fleet`: the other vantages' pool latencies.
    vantages: Arc<[RemoteVantage]>,
    /// This node's location (`[cluster] location`).
    here: Option<(f64, f64)>,
    /// Proxy backends' servers by their active checks.
    servers: ServerBook,
    /// The latest wall clock seen by `tick` (Unix ms), for fleet overrides
    /// that ran out.
    last_unix_ms: u64,
    /// `[server] stale_for`, in ms: how long a host endpoint whose
    /// resolution fails keeps its last addresses.
    stale_for_ms: u64,
}

impl HealthBook {
    /// A book for `config`: endpoints of monitored pools are unknown (so those
    /// pools are down until their first results), endpoints of pools without
    /// a monitor are up. Its view equals [`HealthView::initial`].
    pub fn new(config: &Config, generation: u64) -> HealthBook {
        let pools = config
            .pools
            .iter()
            .enumerate()
            .map(|(i, _)| build_pool(config, PoolId(i as u32)))
            .collect();
        HealthBook {
            generation,
            pools,
            last_now: None,
            metrics_dirty: false,
            fleet: None,
            vantages: Arc::from([]),
            here: config.cluster.as_ref().and_then(|c| c.location),
            servers: ServerBook::new(config),
            last_unix_ms: 0,
            stale_for_ms: config.server.stale_for.as_millis() as u64,
        }
    }

    /// The config generation its ids refer to.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Applies one probe result or forwarded request. Returns true when a
    /// state (endpoint or pool) or an endpoint's last error changed: the
    /// writer should publish now. Metric numbers alone are reported by the
    /// next [`tick`](Self::tick), so 50k traffic results/s do not publish
    /// 50k views/s. `Target::Server` probe results go to the backends'
    /// servers (their traffic is the proxy's, for passive ejection); those of
    /// another generation or unknown ids are ignored.
    pub fn observe(&mut self, obs: Observation, now: Instant, now_unix_ms: u64) -> bool {
        if obs.generation != self.generation {
            return false;
        }
        self.saw(now);
        let (pool, endpoint) = match obs.target {
            Target::Endpoint(pool, endpoint) => (pool, Some(endpoint)),
            Target::Address(pool, endpoint, ip) => {
                return self.observe_address((pool, endpoint, ip), &obs, now, now_unix_ms);
            }
            Target::PoolTraffic(pool) => (pool, None),
            Target::Server(backend, index) => {
                return self
                    .servers
                    .observe((backend, index), &obs, now, now_unix_ms);
            }
        };
        let Some(pool) = self.pools.get_mut(pool.index()) else {
            return false;
        };
        let mut changed = false;
        match endpoint {
            Some(index) => {
                let monitored = pool.monitored();
                let t = pool.thresholds;
                let Some(endpoint) = pool.endpoints.get_mut(index as usize) else {
                    return false;
                };
                let outcome = Outcome {
                    ok: obs.ok,
                    latency: obs.latency,
                    error: obs.error.as_deref(),
                    from_probe: obs.source == super::Source::Probe,
                };
                changed |= endpoint.apply(outcome, monitored, (t.rise, t.fall), now, now_unix_ms);
                if let Some(load) = obs.load {
                    pool.header_load(index as usize, load, now_unix_ms);
                }
            }
            None => {
                pool.traffic.record(now, obs.ok, obs.latency);
                pool.count_request(now_unix_ms);
            }
        }
        self.metrics_dirty |= pool.measure(now);
        changed |= pool.decide(false);
        changed
    }

    /// A probe result of one resolved address of a host endpoint: the
    /// address's rise/fall, the endpoint's window, then its state (up while
    /// one address is).
    fn observe_address(
        &mut self,
        (pool, endpoint, ip): (PoolId, u32, std::net::IpAddr),
        obs: &Observation,
        now: Instant,
        now_unix_ms: u64,
    ) -> bool {
        let Some(pool) = self.pools.get_mut(pool.index()) else {
            return false;
        };
        let t = pool.thresholds;
        let monitored = pool.monitored();
        let Some(e) = pool.endpoints.get_mut(endpoint as usize) else {
            return false;
        };
        let Some(r) = e.resolved.as_mut() else {
            return false;
        };
        if !monitored || !r.addresses.iter().any(|a| a.ip == ip) {
            return false;
        }
        let mut changed = r.observe(ip, obs.ok, obs.error.as_deref(), (t.rise, t.fall));
        changed |= e.settle(now_unix_ms);
        e.window.record(now, obs.ok, obs.latency);
        self.metrics_dirty |= pool.measure(now);
        changed |= pool.decide(false);
        changed
    }

    /// Takes a host endpoint's resolution (its addresses, or why it
    /// failed) at `now_unix_ms`. Returns true when the view changed.
    pub fn resolved(
        &mut self,
        (pool, endpoint): (PoolId, u32),
        result: Result<Vec<std::net::IpAddr>, String>,
        now_unix_ms: u64,
    ) -> bool {
        let last_now = self.last_now;
        let stale_for_ms = self.stale_for_ms;
        let Some(pool) = self.pools.get_mut(pool.index()) else {
            return false;
        };
        let monitored = pool.monitored();
        let Some(e) = pool.endpoints.get_mut(endpoint as usize) else {
            return false;
        };
        let Some(r) = e.resolved.as_mut() else {
            return false;
        };
        let refreshed = r.resolved_unix_ms;
        let mut changed = r.take(result, monitored, now_unix_ms);
        changed |= r.expire(stale_for_ms, now_unix_ms);
        // The same set again: only its time moved, reported by the next tick.
        self.metrics_dirty |= r.resolved_unix_ms != refreshed;
        changed |= e.settle(now_unix_ms);
        if let Some(now) = last_now {
            self.metrics_dirty |= pool.measure(now);
        }
        changed |= pool.decide(false);
        changed
    }

    /// Drains or returns an endpoint: a drained endpoint leaves every answer
    /// and its pool's metrics at once. Returns true when the flag changed.
    pub fn set_draining(&mut self, pool: PoolId, endpoint: u32, draining: bool) -> bool {
        let last_now = self.last_now;
        let Some(pool) = self.pools.get_mut(pool.index()) else {
            return false;
        };
        let Some(e) = pool.endpoints.get_mut(endpoint as usize) else {
            return false;
        };
        // A drain or undrain ends a gradual drain under way.
        let ramping_down = e
            .ramp
            .is_some_and(|r| r.direction == super::ramp::Direction::Down);
        if ramping_down {
            e.ramp = None;
        }
        if e.draining == draining {
            return ramping_down;
        }
        e.draining = draining;
        if let Some(now) = last_now {
            self.metrics_dirty |= pool.measure(now);
        }
        pool.decide(false);
        true
    }

    /// Drains an endpoint gradually: its weight ramps from full to zero over
    /// `over` from `now_unix_ms`, then it is drained (by
    /// [`step_ramps`](Self::step_ramps)). Returns true when a ramp started
    /// (not when it is drained or ramping down already).
    pub fn drain_over(
        &mut self,
        pool: PoolId,
        endpoint: u32,
        over: std::time::Duration,
        now_unix_ms: u64,
    ) -> bool {
        let Some(e) = self
            .pools
            .get_mut(pool.index())
            .and_then(|p| p.endpoints.get_mut(endpoint as usize))
        else {
            return false;
        };
        e.drain_over(now_unix_ms, over.as_millis() as u64)
    }

    /// Takes a reported load for `pool` (which has a `capacity`), valid for
    /// `ttl_ms`; the spill controller works from it at its next step.
    /// Returns false for an unknown pool or one without a capacity.
    pub fn set_load(&mut self, pool: PoolId, value: f64, ttl_ms: u64, now_unix_ms: u64) -> bool {
        match self.pools.get_mut(pool.index()) {
            Some(p) if p.capacity.is_some() => {
                p.set_load(value, ttl_ms, now_unix_ms);
                true
            }
            _ => false,
        }
    }

    /// Starts, steps and ends slow starts and gradual drains at
    /// `now_unix_ms` (the writer calls it on every tick and after every
    /// change, so a ramp starts in the snapshot that shows its cause).
    /// Returns true when the view changed.
    pub fn step_ramps(&mut self, now_unix_ms: u64) -> bool {
        let mut changed = false;
        for pool in &mut self.pools {
            changed |= pool.step_ramps(now_unix_ms);
        }
        changed
    }

    /// Sets (or with None resets) the runtime weight of an endpoint. Returns
    /// true when it changed.
    pub fn set_weight(&mut self, pool: PoolId, endpoint: u32, weight: Option<u32>) -> bool {
        let Some(e) = self
            .pools
            .get_mut(pool.index())
            .and_then(|p| p.endpoints.get_mut(endpoint as usize))
        else {
            return false;
        };
        let changed = e.weight != weight;
        e.weight = weight;
        changed
    }

    /// Sets (or with None resets to the config's) the runtime weight of the
    /// proxy server `server` of `backend`. Returns true when it changed.
    pub fn set_server_weight(
        &mut self,
        backend: BackendId,
        server: u32,
        weight: Option<u32>,
    ) -> bool {
        self.servers.set_weight(backend, server, weight)
    }

    /// Sets (or with None clears) an operator's override of an endpoint's
    /// state. Returns true when it changed.
    pub fn set_forced(&mut self, pool: PoolId, endpoint: u32, forced: Option<Forced>) -> bool {
        let last_now = self.last_now;
        let Some(pool) = self.pools.get_mut(pool.index()) else {
            return false;
        };
        let Some(e) = pool.endpoints.get_mut(endpoint as usize) else {
            return false;
        };
        if e.forced == forced {
            return false;
        }
        e.forced = forced;
        if let Some(now) = last_now {
            self.metrics_dirty |= pool.measure(now);
        }
        pool.decide(false);
        true
    }

    /// Takes a pushed health for an endpoint of a pool whose monitor is
    /// `external`. Returns true when anything in the view changed.
    pub fn push(
        &mut self,
        pool: PoolId,
        endpoint: u32,
        pushed: Pushed,
        now: Instant,
        now_unix_ms: u64,
    ) -> bool {
        self.saw(now);
        let Some(pool) = self.pools.get_mut(pool.index()) else {
            return false;
        };
        let Some(e) = pool.endpoints.get_mut(endpoint as usize) else {
            return false;
        };
        let mut changed = e.push(pushed, Some(now), now_unix_ms);
        changed |= e.expire(now_unix_ms);
        self.metrics_dirty |= pool.measure(now);
        changed |= pool.decide(false);
        changed
    }

    /// Expires windows, overrides past their end and pushed health past its
    /// ttl, and runs each pool's periodic evaluation when due (one per
    /// monitor interval; the hysteresis counts these). Call it often (for
    /// example every second). Returns true when anything in the view changed
    /// since the last tick, metric numbers included.
    pub fn tick(&mut self, now: Instant, now_unix_ms: u64) -> bool {
        self.saw(now);
        self.last_unix_ms = self.last_unix_ms.max(now_unix_ms);
        let mut changed = std::mem::take(&mut self.metrics_dirty);
        for pool in &mut self.pools {
            for e in &mut pool.endpoints {
                changed |= e.expire(now_unix_ms);
                if let Some(r) = e.resolved.as_mut()
                    && r.expire(self.stale_for_ms, now_unix_ms)
                {
                    e.settle(now_unix_ms);
                    changed = true;
                }
            }
            changed |= pool.measure(now);
            let periodic = pool.due(now);
            changed |= pool.decide(periodic);
        }
        changed
    }

    /// An immutable snapshot, with metrics as of the last observe or tick.
    pub fn view(&self) -> HealthView {
        HealthView {
            splitting: self.pools.iter().any(|p| {
                p.admit_permille < super::ramp::FULL || p.keep_permille() < super::ramp::FULL
            }),
            pools: self.pools.iter().map(Pool::view).collect(),
            fleet: self.fleet.clone(),
            vantages: self.vantages.clone(),
            here: self.here,
            backends: self.servers.view(),
        }
    }

    /// Takes what was heard from the fleet: the other vantages' votes on each
    /// endpoint (of monitored pools) and pool, and the fleet-wide drains,
    /// which replace local drain flags. States are decided again at once.
    /// Returns true (the view changed).
    pub fn set_fleet(&mut self, fleet: Arc<FleetView>) -> bool {
        self.fleet = Some(fleet);
        self.apply_fleet();
        true
    }

    fn apply_fleet(&mut self) {
        let Some(fleet) = self.fleet.clone() else {
            return;
        };
        let (last_unix_ms, last_now) = (self.last_unix_ms, self.last_now);
        for pool in &mut self.pools {
            let monitored = pool.monitored();
            pool.remote = Some(fleet.pool_votes(&pool.name));
            for e in &mut pool.endpoints {
                e.apply_fleet_drain(fleet.drain_here(&pool.name, &e.key), last_unix_ms);
                e.weight = fleet.weight(&pool.name, &e.key);
                // Health pushed through any node: applied once per push.
                if let Some(p) = fleet.pushed(&pool.name, &e.key)
                    && e.pushed.as_ref().is_none_or(|mine| {
                        mine.expires_unix_ms != p.expires_unix_ms || mine.up != p.up
                    })
                {
                    e.push(p.clone(), last_now, last_unix_ms);
                    e.expire(last_unix_ms);
                }
                // One that ran out stays ended though etcd still holds it.
                e.forced = fleet
                    .forced(&pool.name, &e.key)
                    .filter(|f| f.until_unix_ms.is_none_or(|u| u > last_unix_ms))
                    .cloned();
                e.remote = monitored.then(|| fleet.endpoint_votes(&pool.name, &e.key));
            }
            pool.apply_fleet_loads(&fleet.loads, |node| fleet.remote.contains_key(node));
            if let Some(now) = self.last_now {
                pool.measure(now);
            }
            pool.decide(false);
        }
        self.vantages = fleet
            .located(self.pools.iter().map(|p| p.name.as_str()))
            .into();
        self.metrics_dirty = true;
    }

    /// Switches to `new_config`. An endpoint whose (pool name, key) is
    /// unchanged keeps its drain flag, and, when its pool still has a monitor
    /// of the same name (or still none), its state, last error and window;
    /// such a pool also keeps its state, hysteresis and traffic window. New
    /// endpoints of monitored pools start unknown (out of answers until their
    /// first result); removed ones disappear.
    pub fn reload(&mut self, new_config: &Config, generation: u64, now: Instant) {
        self.saw(now);
        let old: HashMap<&str, &Pool> = self.pools.iter().map(|p| (p.name.as_str(), p)).collect();
        let mut pools = Vec::with_capacity(new_config.pools.len());
        for i in 0..new_config.pools.len() {
            let mut pool = build_pool(new_config, PoolId(i as u32));
            if let Some(prev) = old.get(pool.name.as_str()) {
                let same_monitor = prev.monitor == pool.monitor;
                let monitored = pool.monitor.is_some();
                let by_key: HashMap<&EndpointKey, &Endpoint> =
                    prev.endpoints.iter().map(|e| (&e.key, e)).collect();
                for e in &mut pool.endpoints {
                    // A CNAME endpoint that became a host endpoint of the
                    // same name (or back) is a new endpoint: the kinds keep
                    // different state.
                    let Some(before) = by_key
                        .get(&e.key)
                        .filter(|b| b.resolved.is_some() == e.resolved.is_some())
                    else {
                        // New in a running pool: it slow-starts.
                        e.added();
                        continue;
                    };
                    if same_monitor {
                        e.inherit(before);
                    } else {
                        e.draining = before.draining;
                        e.weight = before.weight;
                        e.ramp = before
                            .ramp
                            .filter(|r| r.direction == super::ramp::Direction::Down);
                        e.forced = before.forced.clone();
                        // A host keeps its addresses; their probes start again.
                        if let (Some(r), Some(prev)) = (e.resolved.as_mut(), &before.resolved) {
                            *r = prev.clone();
                            r.reset_probes(monitored);
                            e.settle(self.last_unix_ms);
                        }
                    }
                }
                if same_monitor {
                    pool.inherit(prev);
                }
            }
            pool.measure(now);
            pool.decide(false);
            pools.push(pool);
        }
        self.pools = pools;
        self.servers.reload(new_config);
        self.generation = generation;
        self.stale_for_ms = new_config.server.stale_for.as_millis() as u64;
        self.metrics_dirty = true;
        self.here = new_config.cluster.as_ref().and_then(|c| c.location);
        self.apply_fleet();
    }

    fn saw(&mut self, now: Instant) {
        if self.last_now.is_none_or(|t| now > t) {
            self.last_now = Some(now);
        }
    }
}

fn build_pool(config: &Config, id: PoolId) -> Pool {
    let p = config.pool(id);
    let monitor = config.monitor_of(id);
    let thresholds = Thresholds::of(monitor);
    let state = if monitor.is_some() {
        EndpointState::Unknown
    } else {
        EndpointState::Up
    };
    let endpoints = p
        .endpoints
        .iter()
        .map(|e| {
            let endpoint = Endpoint::new(
                e.key(),
                super::Family::of_endpoint(e),
                state,
                thresholds.window,
                thresholds.latency_tau(),
            );
            if matches!(e.target, crate::config::EndpointTarget::Host(_)) {
                endpoint.host()
            } else {
                endpoint
            }
        })
        .collect();
    let mut pool = Pool::new(
        p.name.clone(),
        monitor.map(|m| m.name.clone()),
        p.min_healthy,
        thresholds,
        endpoints,
    );
    pool.slow_start = p.slow_start;
    pool.capacity = p.capacity;
    pool.inputs.headers = super::load::HeaderLoads::new(p.endpoints.len());
    pool
}
