//! probe: the workers that check every endpoint of every monitored pool and
//! every server of every monitored proxy backend, and send what they find to
//! the health writer as [`Observation`]s.
//!
//! Probes are keyed by what they measure: the monitor (its path, Host/SNI,
//! expectations, interval), the address and port connected to, and
//! `probe_source`. Two pools, or a pool and a backend, naming the same target
//! with the same monitor share one worker: one check per interval, its result
//! sent for each of them. A backend's server is checked at its own address
//! and port.
//!
//! One tokio task per probe: it waits a random offset within the interval
//! (so 10,000 probes do not fire together), then checks every `interval`,
//! each check bounded by the monitor's `timeout` overall. [`first_round`]
//! checks every endpoint once, concurrently, for start-up (DESIGN §3: no
//! blind spot). Judging a response is [`verdict`]'s (pure); deciding what
//! results mean is `health`'s. Workers stop when the token is cancelled; a
//! reload cancels them and spawns new ones for the new generation.

pub mod host;
pub mod http;
pub mod tcp;
pub mod verdict;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc::Sender;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use crate::config::{BackendId, Config, MonitorConfig, MonitorId, MonitorKind, PoolId};
use crate::health::{Observation, Source, Target};

/// One check, ready to run, and every target its result is about.
#[derive(Debug, Clone)]
pub struct Probe {
    /// Pool endpoints and backend servers measured by this one check.
    pub targets: Vec<Target>,
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

/// What a probe measures: two targets with equal keys share one check.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    monitor: MonitorId,
    host: String,
    port: u16,
    source: Option<IpAddr>,
    /// A CNAME endpoint's name: the Host header and TLS SNI when the
    /// monitor sets no `host` (the name is what the CDN serves).
    name: Option<String>,
}

impl Probe {
    fn new(key: &Key, monitor: &MonitorConfig) -> Probe {
        let Key {
            host,
            port,
            source,
            name,
            ..
        } = key;
        let named;
        let monitor = match name {
            Some(n) if monitor.host.is_none() => {
                named = MonitorConfig {
                    host: Some(n.clone()),
                    ..monitor.clone()
                };
                &named
            }
            _ => monitor,
        };
        let check = match monitor.kind {
            MonitorKind::Tcp => Check::Tcp {
                host: host.clone(),
                port: *port,
                source: *source,
            },
            MonitorKind::External => Check::Broken("an external monitor is not probed".into()),
            MonitorKind::Http | MonitorKind::Https => {
                match http::HttpCheck::new(monitor, host, *port, *source) {
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
            targets: Vec::new(),
            dest,
            timeout: monitor.timeout,
            interval: monitor.interval,
            check,
        }
    }

    /// Runs one check bounded by the timeout and reports it, once per target.
    pub async fn run(&self, generation: u64) -> Vec<Observation> {
        let started = Instant::now();
        let (result, load) = match tokio::time::timeout(self.timeout, self.check()).await {
            Ok(result) => result,
            Err(_) => (Err("timeout".to_string()), None),
        };
        let latency = started.elapsed();
        self.targets
            .iter()
            .map(|&target| Observation {
                generation,
                target,
                source: Source::Probe,
                ok: result.is_ok(),
                latency,
                error: result.clone().err(),
                load,
            })
            .collect()
    }

    /// The verdict, and the load figure an HTTP monitor's `load_header`
    /// carried.
    async fn check(&self) -> (Result<(), String>, Option<f64>) {
        match &self.check {
            Check::Http(c) => c.check().await,
            Check::Tcp { host, port, source } => (tcp::check(host, *port, *source).await, None),
            Check::Broken(reason) => (Err(reason.clone()), None),
        }
    }
}

/// One probe per distinct target of every monitored pool endpoint and
/// backend server, in config order.
pub fn probes(config: &Config) -> Vec<Probe> {
    let source = config.server.probe_source;
    let mut out: Vec<Probe> = Vec::new();
    let mut by_key: HashMap<Key, usize> = HashMap::new();
    let mut add =
        |monitor: MonitorId, host: String, port: u16, name: Option<String>, target: Target| {
            let key = Key {
                monitor,
                host,
                port,
                source,
                name,
            };
            let i = *by_key.entry(key).or_insert_with_key(|key| {
                out.push(Probe::new(key, &config.monitors[monitor.index()]));
                out.len() - 1
            });
            out[i].targets.push(target);
        };
    for (p, pool) in config.pools.iter().enumerate() {
        let Some(monitor) = pool.monitor else {
            continue;
        };
        if config.monitors[monitor.index()].kind == MonitorKind::External {
            // Pushed, not probed.
            continue;
        }
        for (i, endpoint) in pool.endpoints.iter().enumerate() {
            if matches!(endpoint.target, crate::config::EndpointTarget::Host(_)) {
                // Probed at each address it resolves to: `host`.
                continue;
            }
            let (host, port) = match &endpoint.probe {
                Some(t) => (t.host.clone(), t.port),
                None => (
                    endpoint.key().to_string(),
                    config.monitors[monitor.index()].port,
                ),
            };
            // A CNAME endpoint is probed at its name (or `probe`), with
            // the name as Host and SNI.
            let name = match &endpoint.target {
                crate::config::EndpointTarget::Cname(n) => Some(n.to_string()),
                _ => None,
            };
            add(
                monitor,
                host,
                port,
                name,
                Target::Endpoint(PoolId(p as u32), i as u32),
            );
        }
    }
    for (b, backend) in config.backends.iter().enumerate() {
        let Some(monitor) = backend.monitor else {
            continue;
        };
        for (i, server) in backend.servers.iter().enumerate() {
            add(
                monitor,
                server.address.ip().to_string(),
                server.address.port(),
                None,
                Target::Server(BackendId(b as u32), i as u32),
            );
        }
    }
    out
}

/// Starts one worker per probe. Each sends its
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

/// Checks every target once, all at the same time: the whole round takes
/// at most the longest monitor timeout. For start-up, before answering.
pub async fn first_round(config: &Config, generation: u64) -> Vec<Observation> {
    let mut set = JoinSet::new();
    for probe in probes(config) {
        set.spawn(async move { probe.run(generation).await });
    }
    let mut out = Vec::with_capacity(set.len());
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok(obs) => out.extend(obs),
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
        let results = tokio::select! {
            _ = cancel.cancelled() => return,
            results = probe.run(generation) => results,
        };
        if let Some(error) = results.first().and_then(|o| o.error.as_ref()) {
            tracing::debug!(dest = %probe.dest, %error, "probe failed");
        }
        for obs in results {
            tokio::select! {
                _ = cancel.cancelled() => return,
                sent = tx.send(obs) => if sent.is_err() { return },
            }
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

/// The worker's schedule under tokio's paused clock: no real waits, and the
/// times asserted are exact (the clock only moves to the next timer).
#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::PoolId;
    use tokio::sync::mpsc;

    /// A probe whose check fails at once, without IO.
    fn broken(interval: Duration, timeout: Duration) -> Probe {
        Probe {
            targets: vec![Target::Endpoint(PoolId(0), 0)],
            dest: "192.0.2.1:80".into(),
            timeout,
            interval,
            check: Check::Broken("no check".into()),
        }
    }

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[tokio::test(start_paused = true)]
    async fn checks_start_at_the_offset_then_run_every_interval() {
        let start = Instant::now();
        let (tx, mut rx) = mpsc::channel(16);
        let cancel = CancellationToken::new();
        let probe = broken(secs(5.0), secs(1.0));
        let task = tokio::spawn(work(probe, 7, secs(1.5), tx, cancel.clone()));
        let mut at = Vec::new();
        for _ in 0..4 {
            let obs = rx.recv().await.expect("an observation");
            assert_eq!(
                (obs.generation, obs.ok, obs.error.as_deref()),
                (7, false, Some("no check"))
            );
            at.push(start.elapsed());
        }
        assert_eq!(at, [secs(1.5), secs(6.5), secs(11.5), secs(16.5)]);
        // Cancelled, the worker stops before its next check.
        cancel.cancel();
        task.await.expect("worker ends");
        assert!(rx.recv().await.is_none(), "nothing after the cancel");
    }

    /// A full channel (a stalled writer) holds the worker back; once it
    /// drains, the missed check runs at once and the next ones an interval
    /// apart: no burst of the checks it missed.
    #[tokio::test(start_paused = true)]
    async fn a_stalled_channel_delays_checks_without_a_burst_after() {
        let start = Instant::now();
        let (tx, mut rx) = mpsc::channel(1);
        let cancel = CancellationToken::new();
        let task = tokio::spawn(work(
            broken(secs(5.0), secs(1.0)),
            1,
            Duration::ZERO,
            tx,
            cancel.clone(),
        ));
        // Checks at 0 (queued) and 5 (its send waits); nobody reads until 21.
        tokio::time::sleep(secs(21.0)).await;
        let mut at = Vec::new();
        for _ in 0..5 {
            rx.recv().await.expect("an observation");
            at.push(start.elapsed());
        }
        // 0's and 5's results read at 21; the check due at 10 runs at 21
        // (Delay: missed ticks are not made up), then 26 and 31.
        assert_eq!(
            at,
            [secs(21.0), secs(21.0), secs(21.0), secs(26.0), secs(31.0)]
        );
        cancel.cancel();
        task.await.expect("worker ends");
    }

    /// A check that gets no answer is cut at the monitor's timeout and
    /// reported as such, with the timeout as its latency; the next check
    /// still starts an interval after the last one started.
    #[tokio::test(start_paused = true)]
    async fn a_silent_server_is_cut_at_the_timeout() {
        // Accepts (the kernel's backlog) and never answers.
        let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = silent.local_addr().expect("addr").port();
        let text = format!(
            "[server]\ndns_listen = [\"127.0.0.1:0\"]\n\
             [monitors.web]\ntype = \"http\"\nport = {port}\ninterval = \"5s\"\ntimeout = \"2s\"\n\
             [pools.p]\nmonitor = \"web\"\nendpoints = [{{ address = \"127.0.0.1\" }}]\n"
        );
        let (config, _) = crate::config::parse(
            &text,
            std::path::Path::new("t.toml"),
            std::path::Path::new("."),
            "",
        )
        .expect("valid test config");
        let mut all = probes(&config);
        assert_eq!(all.len(), 1);
        let probe = all.remove(0);
        let start = Instant::now();
        let (tx, mut rx) = mpsc::channel(4);
        let cancel = CancellationToken::new();
        let task = tokio::spawn(work(probe, 1, secs(1.0), tx, cancel.clone()));
        let mut seen = Vec::new();
        for _ in 0..2 {
            let obs = rx.recv().await.expect("an observation");
            seen.push((start.elapsed(), obs.ok, obs.error, obs.latency));
        }
        let timeout = Some("timeout".to_string());
        assert_eq!(
            seen,
            [
                (secs(3.0), false, timeout.clone(), secs(2.0)),
                (secs(8.0), false, timeout, secs(2.0)),
            ]
        );
        cancel.cancel();
        task.await.expect("worker ends");
        drop(silent);
    }

    /// The start offset spreads workers over the whole interval.
    #[test]
    fn offsets_fall_within_the_interval_and_spread_over_it() {
        let interval = secs(5.0);
        let mut tenths = [0u32; 10];
        for _ in 0..2000 {
            let o = random_offset(interval);
            assert!(o < interval, "{o:?}");
            tenths[(o.as_secs_f64() / 0.5) as usize] += 1;
        }
        // 200 expected in each tenth (sd about 13).
        assert!(tenths.iter().all(|n| (120..=280).contains(n)), "{tenths:?}");
        assert_eq!(random_offset(Duration::ZERO), Duration::ZERO);
    }
}
