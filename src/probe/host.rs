//! host: probes of `host` endpoints, whose addresses change at runtime.
//!
//! The static probe list ([`super::probes`]) leaves host endpoints out: a
//! task per host endpoint of a monitored pool reads the addresses its name
//! resolves to now from the published snapshot, checks each one every
//! monitor interval (with the name as HTTP Host and TLS SNI unless the
//! monitor sets `host`) and sends one [`Observation`] per address
//! (`Target::Address`). An address that appears is checked within
//! [`NEW_ADDRESS_POLL`], not a whole interval later.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc::Sender;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use super::{Key, Probe};
use crate::config::{Config, EndpointTarget, MonitorKind, PoolId};
use crate::health::{HealthView, Observation, Target};
use crate::state::Shared;

/// How often a task looks for addresses it has not checked yet.
const NEW_ADDRESS_POLL: Duration = Duration::from_millis(250);

/// One host endpoint of a monitored pool.
struct HostEndpoint {
    pool: PoolId,
    index: u32,
    name: Arc<str>,
}

/// The host endpoints of monitored (not `external`) pools.
fn endpoints(config: &Config) -> Vec<HostEndpoint> {
    let mut out = Vec::new();
    for (p, pool) in config.pools.iter().enumerate() {
        let Some(monitor) = pool.monitor else {
            continue;
        };
        if config.monitors[monitor.index()].kind == MonitorKind::External {
            continue;
        }
        for (i, e) in pool.endpoints.iter().enumerate() {
            if let EndpointTarget::Host(name) = &e.target {
                out.push(HostEndpoint {
                    pool: PoolId(p as u32),
                    index: i as u32,
                    name: name.clone(),
                });
            }
        }
    }
    out
}

/// The check of `ip` for endpoint `e`.
fn probe(config: &Config, e: &HostEndpoint, ip: IpAddr) -> Option<Probe> {
    let pool = config.pools.get(e.pool.index())?;
    let monitor = pool.monitor?;
    let m = config.monitors.get(monitor.index())?;
    let port = pool
        .endpoints
        .get(e.index as usize)
        .and_then(|x| x.probe.as_ref())
        .map_or(m.port, |t| t.port);
    let key = Key {
        monitor,
        host: ip.to_string(),
        port,
        source: config.server.probe_source,
        name: Some(e.name.to_string()),
    };
    let mut p = Probe::new(&key, m);
    p.targets.push(Target::Address(e.pool, e.index, ip));
    Some(p)
}

/// The addresses `e` resolves to in `health`.
fn addresses(health: &HealthView, e: &HostEndpoint) -> Vec<IpAddr> {
    health
        .pool(e.pool)
        .and_then(|p| p.endpoints.get(e.index as usize))
        .and_then(|h| h.resolved.as_ref())
        .map(|r| r.addresses.iter().map(|a| a.ip).collect())
        .unwrap_or_default()
}

/// Checks every address of every host endpoint in `health` once, at the
/// same time: start-up's first round, after the first resolution.
pub async fn first_round(
    config: &Config,
    generation: u64,
    health: &HealthView,
) -> Vec<Observation> {
    let mut set = JoinSet::new();
    for e in endpoints(config) {
        for ip in addresses(health, &e) {
            if let Some(p) = probe(config, &e, ip) {
                set.spawn(async move { p.run(generation).await });
            }
        }
    }
    let mut out = Vec::new();
    while let Some(joined) = set.join_next().await {
        if let Ok(obs) = joined {
            out.extend(obs);
        }
    }
    out
}

/// Starts a task per host endpoint of a monitored pool of `config`
/// (generation `generation`); each stops at `cancel` or when a
/// reload publishes another generation.
pub fn spawn(
    config: &Config,
    shared: Arc<Shared>,
    generation: u64,
    tx: Sender<Observation>,
    cancel: CancellationToken,
) -> Vec<JoinHandle<()>> {
    endpoints(config)
        .into_iter()
        .map(|e| {
            let interval = config
                .monitor_of(e.pool)
                .map_or(Duration::from_secs(5), |m| m.interval);
            tokio::spawn(work(
                e,
                (shared.clone(), generation, interval),
                tx.clone(),
                cancel.clone(),
            ))
        })
        .collect()
}

async fn work(
    e: HostEndpoint,
    (shared, generation, interval): (Arc<Shared>, u64, Duration),
    tx: Sender<Observation>,
    cancel: CancellationToken,
) {
    let offset = super::random_offset(interval);
    let mut ticks = tokio::time::interval_at(Instant::now() + offset, interval);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut poll = tokio::time::interval(NEW_ADDRESS_POLL);
    poll.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut checks: HashMap<IpAddr, Probe> = HashMap::new();
    loop {
        let every = tokio::select! {
            _ = cancel.cancelled() => return,
            _ = ticks.tick() => true,
            _ = poll.tick() => false,
        };
        let snap = shared.load_full();
        if snap.generation != generation {
            return;
        }
        let now = addresses(&snap.health, &e);
        checks.retain(|ip, _| now.contains(ip));
        let mut due = Vec::new();
        for ip in now {
            let fresh = !checks.contains_key(&ip);
            if fresh && let Some(p) = probe(&snap.config, &e, ip) {
                checks.insert(ip, p);
            }
            if (every || fresh)
                && let Some(p) = checks.get(&ip)
            {
                due.push(p.clone());
            }
        }
        drop(snap);
        if due.is_empty() {
            continue;
        }
        let mut set = JoinSet::new();
        for p in due {
            set.spawn(async move { p.run(generation).await });
        }
        let results = tokio::select! {
            _ = cancel.cancelled() => return,
            r = set.join_all() => r,
        };
        for obs in results.into_iter().flatten() {
            tokio::select! {
                _ = cancel.cancelled() => return,
                sent = tx.send(obs) => if sent.is_err() { return },
            }
        }
    }
}
