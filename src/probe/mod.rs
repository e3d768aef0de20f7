//! probe: the workers that check every endpoint of every monitored pool and
//! send what they find to the health writer as [`Observation`]s.
//!
//! One tokio task per endpoint: it waits a random offset within the interval
//! (so 10,000 probes do not fire together), then checks every `interval`,
//! each check bounded by the monitor's `timeout` overall. [`first_round`]
//! checks every endpoint once, concurrently, for start-up (DESIGN §3: no
//! blind spot). Judging a response is [`verdict`]'s (pure); deciding what
//! results mean is `health`'s. Workers stop when the token is cancelled; a
//! reload cancels them and spawns new ones for the new generation.

pub mod http;
pub mod tcp;
pub mod verdict;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc::Sender;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use crate::config::{Config, EndpointConfig, MonitorConfig, MonitorKind, PoolId};
use crate::health::{Observation, Source, Target};

/// One endpoint's check, ready to run.
#[derive(Debug, Clone)]
pub struct Probe {
    pub target: Target,
    /// Where it connects, as `host:port` (for logs).
    pub dest: String,
    timeout: Duration,
    interval: Duration,
    check: Check,
}

#[derive(Debug, Clone)]
enum Check {
    Http(Box<http::HttpCheck>),
    Tcp {
        host: String,
        port: u16,
        source: Option<std::net::IpAddr>,
    },
    /// A check that cannot be built (bad Host name, ...): fails every time
    /// with this reason, so the endpoint shows why.
    Broken(String),
}

impl Probe {
    pub fn new(
        pool: PoolId,
        index: u32,
        monitor: &MonitorConfig,
        endpoint: &EndpointConfig,
        source: Option<std::net::IpAddr>,
    ) -> Probe {
        let (host, port) = match &endpoint.probe {
            Some(p) => (p.host.clone(), p.port),
            None => (endpoint.address.to_string(), monitor.port),
        };
        let check = match monitor.kind {
            MonitorKind::Tcp => Check::Tcp {
                host: host.clone(),
                port,
                source,
            },
            MonitorKind::Http | MonitorKind::Https => {
                match http::HttpCheck::new(monitor, &host, port, source) {
                    Ok(c) => Check::Http(Box::new(c)),
                    Err(e) => Check::Broken(e),
                }
            }
        };
        let dest = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        Probe {
            target: Target::Endpoint(pool, index),
            dest,
            timeout: monitor.timeout,
            interval: monitor.interval,
            check,
        }
    }

    /// Runs one check bounded by the timeout and reports it.
    pub async fn run(&self, generation: u64) -> Observation {
        let started = Instant::now();
        let result = match tokio::time::timeout(self.timeout, self.check()).await {
            Ok(result) => result,
            Err(_) => Err("timeout".to_string()),
        };
        Observation {
            generation,
            target: self.target,
            source: Source::Probe,
            ok: result.is_ok(),
            latency: started.elapsed(),
            error: result.err(),
        }
    }

    async fn check(&self) -> Result<(), String> {
        match &self.check {
            Check::Http(c) => c.check().await,
            Check::Tcp { host, port, source } => tcp::check(host, *port, *source).await,
            Check::Broken(reason) => Err(reason.clone()),
        }
    }
}

/// Every endpoint of every pool that has a monitor.
pub fn probes(config: &Config) -> Vec<Probe> {
    let mut out = Vec::new();
    for (p, pool) in config.pools.iter().enumerate() {
        let id = PoolId(p as u32);
        let Some(monitor) = config.monitor_of(id) else {
            continue;
        };
        for (i, endpoint) in pool.endpoints.iter().enumerate() {
            out.push(Probe::new(
                id,
                i as u32,
                monitor,
                endpoint,
                config.server.probe_source,
            ));
        }
    }
    out
}

/// Starts one worker per endpoint of every monitored pool. Each sends its
/// results with `tx.send().await` (a full channel makes probes wait, never
/// drops them) and stops when `cancel` fires.
pub fn spawn(
    config: Arc<Config>,
    generation: u64,
    tx: Sender<Observation>,
    cancel: CancellationToken,
) -> Vec<JoinHandle<()>> {
    probes(&config)
        .into_iter()
        .map(|probe| {
            let offset = random_offset(probe.interval);
            tokio::spawn(work(probe, generation, offset, tx.clone(), cancel.clone()))
        })
        .collect()
}

/// Checks every endpoint once, all at the same time: the whole round takes
/// at most the longest monitor timeout. For start-up, before answering.
pub async fn first_round(config: &Config, generation: u64) -> Vec<Observation> {
    let mut set = JoinSet::new();
    for probe in probes(config) {
        set.spawn(async move { probe.run(generation).await });
    }
    let mut out = Vec::with_capacity(set.len());
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok(obs) => out.push(obs),
            Err(e) => tracing::warn!("first-round probe task failed: {e}"),
        }
    }
    out
}

async fn work(
    probe: Probe,
    generation: u64,
    offset: Duration,
    tx: Sender<Observation>,
    cancel: CancellationToken,
) {
    let mut ticks = tokio::time::interval_at(Instant::now() + offset, probe.interval);
    // A check that overran (a stalled channel) does not cause a burst after.
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = ticks.tick() => {}
        }
        let obs = tokio::select! {
            _ = cancel.cancelled() => return,
            obs = probe.run(generation) => obs,
        };
        if let Some(error) = &obs.error {
            tracing::debug!(dest = %probe.dest, %error, "probe failed");
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            sent = tx.send(obs) => if sent.is_err() { return },
        }
    }
}

fn random_offset(interval: Duration) -> Duration {
    let nanos = interval.as_nanos().min(u64::MAX as u128) as u64;
    if nanos == 0 {
        Duration::ZERO
    } else {
        Duration::from_nanos(rand::random_range(0..nanos))
    }
}
