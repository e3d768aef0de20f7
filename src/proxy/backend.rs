//! backend: the runtime state of proxy backends and their servers.
//!
//! A [`ServerSlot`] holds one server's live counters (in flight, requests,
//! errors, latency), its active-check verdict, passive ejection and draining.
//! Slots are shared by `Arc` and carried across reloads by (backend name,
//! address), so counters of unchanged servers survive. A [`BackendRuntime`]
//! is one backend of one config generation: its slots, the balancer and the
//! pooled upstream client. Picking takes one short std lock (no await inside).

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use serde::Serialize;
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use super::ProxyBody;
use super::stats::{Histogram, HistogramSnapshot};
use crate::balance::{Balancer, Candidate, Ejection, Transition};
use crate::config::{BackendConfig, BackendId};

/// Idle keep-alive connections kept per server; beyond, the oldest closes.
const MAX_IDLE_PER_SERVER: usize = 1024;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these short locks leaves plain data behind.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

// === impl ServerSlot ===

/// One server's live state, shared by requests, admin calls and reloads.
#[derive(Debug)]
pub struct ServerSlot {
    pub address: SocketAddr,
    /// Active checks (the probe module) say up; true until told otherwise.
    up: AtomicBool,
    /// Why the active checks last failed, while down.
    check_error: Mutex<Option<Arc<str>>>,
    draining: AtomicBool,
    drained_at_unix_ms: AtomicU64,
    /// The operator's runtime weight (0: none, the config's applies), as
    /// the health writer last published it.
    weight: AtomicU32,
    in_flight: AtomicU32,
    requests: AtomicU64,
    errors: AtomicU64,
    /// Server responses by status class: 1xx .. 5xx.
    responses: [AtomicU64; 5],
    latency: Histogram,
    ejection: Mutex<Ejection>,
    /// Cancelled when a drain's `drain_timeout` passes: in-flight work stops.
    cut: Mutex<CancellationToken>,
    /// Stops the running drain's timer (an undrain before `drain_timeout`).
    drain_timer: Mutex<CancellationToken>,
    /// Keep-alive connections of the HTTP/1.1 forwarding path, oldest first.
    idle: Mutex<Vec<(TcpStream, Instant)>>,
}

impl ServerSlot {
    pub fn new(address: SocketAddr) -> ServerSlot {
        ServerSlot {
            address,
            up: AtomicBool::new(true),
            check_error: Mutex::new(None),
            draining: AtomicBool::new(false),
            drained_at_unix_ms: AtomicU64::new(0),
            weight: AtomicU32::new(0),
            in_flight: AtomicU32::new(0),
            requests: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            responses: Default::default(),
            latency: Histogram::default(),
            ejection: Mutex::new(Ejection::default()),
            cut: Mutex::new(CancellationToken::new()),
            drain_timer: Mutex::new(CancellationToken::new()),
            idle: Mutex::new(Vec::new()),
        }
    }

    /// The most recently used idle connection younger than `max_idle` that
    /// the server has not closed meanwhile.
    pub fn take_idle(&self, now: Instant, max_idle: Duration) -> Option<TcpStream> {
        let mut idle = lock(&self.idle);
        while let Some((stream, since)) = idle.pop() {
            if now.saturating_duration_since(since) >= max_idle {
                idle.clear(); // the rest are older still
                return None;
            }
            // EOF or stray bytes mean the server is done with it. Costs no
            // syscall unless the socket became readable while idle.
            match stream.try_read(&mut [0u8; 1]) {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Some(stream),
                _ => continue,
            }
        }
        None
    }

    /// Keeps a connection for the next request, unless the server drains.
    pub fn put_idle(&self, stream: TcpStream, now: Instant) {
        if self.is_draining() {
            return;
        }
        let mut idle = lock(&self.idle);
        if idle.len() >= MAX_IDLE_PER_SERVER {
            idle.remove(0);
        }
        idle.push((stream, now));
    }

    /// Closes idle connections older than `max_idle`.
    pub fn sweep_idle(&self, now: Instant, max_idle: Duration) {
        lock(&self.idle).retain(|(_, since)| now.saturating_duration_since(*since) < max_idle);
    }

    /// Idle keep-alive connections held for this server.
    pub fn idle_connections(&self) -> usize {
        lock(&self.idle).len()
    }

    pub fn in_flight(&self) -> u32 {
        self.in_flight.load(Ordering::Acquire)
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// The operator's runtime weight, when one replaces the config's.
    pub fn weight(&self) -> Option<u32> {
        Some(self.weight.load(Ordering::Acquire)).filter(|w| *w != 0)
    }

    /// Sets (None: clears) the runtime weight, as published by the health
    /// writer. Returns true when it changed.
    pub fn set_weight(&self, weight: Option<u32>) -> bool {
        let was = self.weight.swap(weight.unwrap_or(0), Ordering::AcqRel);
        if was != weight.unwrap_or(0) {
            tracing::info!(server = %self.address, ?weight, "proxy server runtime weight changed");
            return true;
        }
        false
    }

    /// The active checks' verdict and, while down, their last error.
    pub fn set_check(&self, up: bool, error: Option<&Arc<str>>) {
        let was = self.up.swap(up, Ordering::AcqRel);
        if was != up {
            tracing::info!(server = %self.address, up, error = error.map(|e| &**e), "proxy server active check changed");
        }
        let mut e = lock(&self.check_error);
        if e.as_ref().map(|e| &**e) != error.filter(|_| !up).map(|e| &**e) {
            *e = error.filter(|_| !up).cloned();
        }
    }

    /// Starts (or ends) draining. A drain cuts what is still in flight after
    /// `drain_timeout`; `None` leaves the cut to the caller (shutdown).
    /// Returns true when the state changed.
    pub fn set_draining(self: &Arc<Self>, draining: bool, drain_timeout: Option<Duration>) -> bool {
        if !draining {
            if self.draining.swap(false, Ordering::AcqRel) {
                self.drained_at_unix_ms.store(0, Ordering::Release);
                // The drain's timer stops: what is in flight is not cut. (It
                // used to fire anyway, cutting requests of a server back in
                // rotation: the paused-clock test below.)
                lock(&self.drain_timer).cancel();
                // A fresh token once the old one is cancelled; an uncut one
                // stays, so that `cut` (shutdown) still reaches every request.
                let mut cut = lock(&self.cut);
                if cut.is_cancelled() {
                    *cut = CancellationToken::new();
                }
                return true;
            }
            return false;
        }
        if self.draining.swap(true, Ordering::AcqRel) {
            return false; // already draining; keep the first deadline
        }
        lock(&self.idle).clear();
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        self.drained_at_unix_ms.store(now_ms, Ordering::Release);
        if let Some(timeout) = drain_timeout {
            let token = lock(&self.cut).clone();
            let timer = CancellationToken::new();
            *lock(&self.drain_timer) = timer.clone();
            if let Ok(handle) = tokio::runtime::Handle::try_current() {
                handle.spawn(async move {
                    tokio::select! {
                        _ = tokio::time::sleep(timeout) => token.cancel(),
                        _ = token.cancelled() => {}
                        _ = timer.cancelled() => {}
                    }
                });
            }
        }
        true
    }

    /// Cuts everything in flight now (end of a drain).
    pub fn cut(&self) {
        lock(&self.cut).cancel();
    }

    /// Counts one request or connection in flight until the guard drops.
    pub fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.requests.fetch_add(1, Ordering::Relaxed);
        InFlight {
            cut: lock(&self.cut).clone(),
            slot: self.clone(),
        }
    }

    /// Counts a response from the server by its status class.
    pub fn count_status(&self, status: u16) {
        if let Some(c) = self
            .responses
            .get(usize::from(status / 100).wrapping_sub(1))
        {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Records a finished attempt for ejection and status; an ejection and
    /// the return from one are events in `events`.
    pub fn record(
        &self,
        ok: bool,
        latency: Duration,
        config: &BackendConfig,
        now: Instant,
        events: Option<&crate::events::EventLog>,
    ) {
        self.latency.record(latency);
        if !ok {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
        let change =
            lock(&self.ejection).transition(ok, now, config.max_fails, config.fail_timeout);
        let (state, reason) = match change {
            Transition::None => return,
            Transition::Ejected => {
                tracing::warn!(backend = %config.name, server = %self.address,
                    "server ejected after {} failures in a row for {:?}", config.max_fails, config.fail_timeout);
                (
                    ("ejected", "up"),
                    format!(
                        "max_fails = {} failed requests in a row, out for fail_timeout = {:?}",
                        config.max_fails, config.fail_timeout
                    ),
                )
            }
            Transition::Returned => (
                ("up", "ejected"),
                "a request succeeded after fail_timeout".to_string(),
            ),
        };
        if let Some(log) = events {
            log.record([crate::events::Event::proxy_server(
                crate::wallclock::unix_ms(),
                crate::events::Kind::Server,
                &config.name,
                self.address,
                state,
                reason,
            )]);
        }
    }

    /// Its status; `config_weight` is the config's weight for it.
    pub(crate) fn status(&self, config_weight: u32) -> ServerStatus {
        let runtime_weight = self.weight();
        let up = self.up.load(Ordering::Acquire);
        let draining = self.is_draining();
        let ejected = lock(&self.ejection).is_ejected();
        let state = if draining {
            "draining"
        } else if !up {
            "down"
        } else if ejected {
            "ejected"
        } else {
            "up"
        };
        let p99 = self.latency.quantile(0.99);
        let drained_at = self.drained_at_unix_ms.load(Ordering::Acquire);
        ServerStatus {
            address: self.address,
            weight: runtime_weight.unwrap_or(config_weight),
            config_weight: runtime_weight.map(|_| config_weight),
            state,
            up,
            check_error: lock(&self.check_error).as_deref().map(str::to_string),
            ejected,
            draining,
            in_flight: self.in_flight(),
            requests: self.requests.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            responses: std::array::from_fn(|i| self.responses[i].load(Ordering::Relaxed)),
            idle_connections: self.idle_connections(),
            latency: self.latency.snapshot(),
            latency_p50_ms: self.latency.quantile(0.5).map(|d| d.as_millis() as u64),
            latency_p99_ms: p99.map(|d| d.as_millis() as u64),
            drained_at_unix_ms: (drained_at != 0).then_some(drained_at),
            suggested_drain_timeout_ms: p99.map(|d| (d.as_millis() as u64) * 6 / 5),
        }
    }
}

/// One request (or L4 connection) in flight to a server.
#[derive(Debug)]
pub struct InFlight {
    slot: Arc<ServerSlot>,
    /// Fires when the server's drain timeout passes.
    pub cut: CancellationToken,
}

impl InFlight {
    pub fn slot(&self) -> &Arc<ServerSlot> {
        &self.slot
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.slot.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

// === impl BackendRuntime ===

/// One backend in one config generation.
pub struct BackendRuntime {
    pub id: BackendId,
    pub config: BackendConfig,
    /// Indexed like `config.servers`.
    pub servers: Vec<Arc<ServerSlot>>,
    balancer: Mutex<Balancer>,
    pub client: Client<HttpConnector, ProxyBody>,
    pub rate_limited: Arc<AtomicU64>,
}

impl BackendRuntime {
    /// Builds the runtime, reusing `old` slots (by address) and counters.
    pub fn new(
        id: BackendId,
        config: BackendConfig,
        old: Option<&BackendRuntime>,
        pool_idle_timeout: Duration,
    ) -> BackendRuntime {
        let servers = config
            .servers
            .iter()
            .map(|s| {
                old.and_then(|o| o.slot(s.address).cloned())
                    .unwrap_or_else(|| Arc::new(ServerSlot::new(s.address)))
            })
            .collect();
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(config.connect_timeout));
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(pool_idle_timeout)
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .build(connector);
        BackendRuntime {
            id,
            balancer: Mutex::new(Balancer::new(config.algorithm, config.servers.len())),
            servers,
            rate_limited: old.map_or_else(Default::default, |o| o.rate_limited.clone()),
            config,
            client,
        }
    }

    pub fn slot(&self, address: SocketAddr) -> Option<&Arc<ServerSlot>> {
        self.servers.iter().find(|s| s.address == address)
    }

    /// Picks a server for `client`, skipping indices in `tried`, and counts the
    /// request in flight. None: no server is up, un-ejected and not draining.
    pub fn pick(&self, client: IpAddr, tried: &[usize], now: Instant) -> Option<(usize, InFlight)> {
        let mut balancer = lock(&self.balancer);
        let candidates: Vec<Candidate> = self
            .servers
            .iter()
            .zip(&self.config.servers)
            .enumerate()
            .filter(|(i, (slot, _))| {
                !tried.contains(i)
                    && slot.up.load(Ordering::Acquire)
                    && !slot.is_draining()
                    && lock(&slot.ejection).available(now)
            })
            .map(|(index, (slot, entry))| Candidate {
                index,
                address: entry.address,
                weight: slot.weight().unwrap_or(entry.weight),
                in_flight: slot.in_flight(),
            })
            .collect();
        let index = balancer.pick(&candidates, client, &mut rand::rng())?;
        let slot = &self.servers[index];
        lock(&slot.ejection).on_pick();
        Some((index, slot.begin()))
    }

    pub fn status(&self) -> BackendStatus {
        BackendStatus {
            name: self.config.name.clone(),
            rate_limited: self.rate_limited.load(Ordering::Relaxed),
            servers: self
                .servers
                .iter()
                .zip(&self.config.servers)
                .map(|(slot, entry)| slot.status(entry.weight))
                .collect(),
        }
    }
}

/// One backend in [`super::Proxies::status`].
#[derive(Debug, Clone, Serialize)]
pub struct BackendStatus {
    pub name: String,
    /// Requests answered 429 on routes to this backend.
    pub rate_limited: u64,
    pub servers: Vec<ServerStatus>,
}

/// One server in [`BackendStatus`].
#[derive(Debug, Clone, Serialize)]
pub struct ServerStatus {
    pub address: SocketAddr,
    /// The weight it is balanced with: the runtime weight when one is set,
    /// else the config's.
    pub weight: u32,
    /// The config's weight, when a runtime weight replaces it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config_weight: Option<u32>,
    /// `up`, `down` (active checks), `ejected` (passive) or `draining`.
    pub state: &'static str,
    pub up: bool,
    /// Why the active checks (`monitor`) take it out, while they do.
    pub check_error: Option<String>,
    pub ejected: bool,
    pub draining: bool,
    pub in_flight: u32,
    pub requests: u64,
    pub errors: u64,
    /// Server responses by class, `[1xx, 2xx, 3xx, 4xx, 5xx]`.
    pub responses: [u64; 5],
    /// Keep-alive connections to the server waiting for the next request.
    pub idle_connections: usize,
    /// For `/metrics`.
    #[serde(skip)]
    pub latency: HistogramSnapshot,
    pub latency_p50_ms: Option<u64>,
    pub latency_p99_ms: Option<u64>,
    pub drained_at_unix_ms: Option<u64>,
    /// Observed p99 request duration + 20%: a drain_timeout that lets almost
    /// every in-flight request finish.
    pub suggested_drain_timeout_ms: Option<u64>,
}

/// A drain's `drain_timeout` under tokio's paused clock: no real waits, and
/// the times asserted are exact.
#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::Instant;

    const TIMEOUT: Duration = Duration::from_secs(30);

    fn slot() -> Arc<ServerSlot> {
        Arc::new(ServerSlot::new(SocketAddr::from(([127, 0, 0, 1], 9))))
    }

    #[tokio::test(start_paused = true)]
    async fn a_drain_cuts_what_is_in_flight_at_its_drain_timeout() {
        let slot = slot();
        let before = slot.begin();
        let start = Instant::now();
        assert!(slot.set_draining(true, Some(TIMEOUT)));
        // Draining twice keeps the first deadline.
        tokio::time::sleep(Duration::from_secs(20)).await;
        assert!(!slot.set_draining(true, Some(TIMEOUT)));
        before.cut.cancelled().await;
        assert_eq!(start.elapsed(), TIMEOUT);
        // Back in rotation, new requests are not cut.
        assert!(slot.set_draining(false, None));
        let after = slot.begin();
        tokio::time::sleep(TIMEOUT * 3).await;
        assert!(!after.cut.is_cancelled());
    }

    #[tokio::test(start_paused = true)]
    async fn an_undrain_before_the_timeout_cuts_nothing() {
        let slot = slot();
        let before = slot.begin();
        assert!(slot.set_draining(true, Some(TIMEOUT)));
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert!(slot.set_draining(false, None));
        tokio::time::sleep(TIMEOUT * 3).await;
        assert!(
            !before.cut.is_cancelled(),
            "a request of a server back in rotation was cut by the old drain's timer"
        );
        // A later drain starts its own timeout, and reaches the same request.
        let start = Instant::now();
        assert!(slot.set_draining(true, Some(TIMEOUT)));
        before.cut.cancelled().await;
        assert_eq!(start.elapsed(), TIMEOUT);
        // Shutdown's cut reaches a request from before an undrain too.
        assert!(slot.set_draining(false, None));
        let earlier = slot.begin();
        assert!(slot.set_draining(true, Some(TIMEOUT)));
        assert!(slot.set_draining(false, None));
        slot.cut();
        assert!(earlier.cut.is_cancelled());
    }
}
