//! proxy: the embedded L7 (HTTP/1.1, HTTP/2, optional TLS) and L4 (TCP)
//! proxy of DESIGN §6, as one [`Proxies`] value the app starts and drives.
//!
//! # Layout
//! - [`http`]: the accept loop per `[[proxy]]` listener and TLS.
//! - `service`: hyper's full server for one connection (HTTP/2, upgrades,
//!   what `h1` hands over), routing and rate limits per request.
//! - `h1`: the HTTP/1.1 forwarding path (most traffic): own head parsing,
//!   server connections pooled per server, bodies relayed both ways.
//! - `forward`: hyper's path for one request (HTTP/2, HTTP/1.0, upgrades):
//!   pooled client, retries, timeouts, WebSocket upgrades, and the outcome
//!   recording (ejection and pool observations) both paths share.
//! - [`headers`]: pure header rules (hop-by-hop, X-Forwarded-*, Forwarded).
//! - `tcp`: L4 listeners (`copy_bidirectional`, one backend per listener).
//! - [`backend`]: server slots (counters, ejection, draining) and backend runtimes.
//! - [`rate_limit`], [`stats`]: token buckets and latency histograms.
//!
//! Which server gets a request is decided by the pure [`crate::balance`] core.
//! Active health checks belong to the probe module; their verdicts reach the
//! servers from the published health (an `app` task calls
//! [`Proxies::apply_checks`] at the health writer's publish rate); the admin
//! API calls [`Proxies::drain`] and [`Proxies::status`].
//!
//! Config changes arrive through [`Proxies::reload`]: listeners whose listen
//! address, mode and TLS files did not change keep their socket; servers keep
//! their counters by (backend name, address); removed servers drain.

pub mod backend;
mod forward;
mod h1;
pub mod headers;
pub mod http;
mod lifecycle;
pub mod rate_limit;
mod service;
pub mod stats;
mod tcp;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, ProxyConfig, ProxyMode, TlsConfig};
use crate::health::Observation;

use backend::{BackendRuntime, ServerSlot};
pub use backend::{BackendStatus, ServerStatus};
use rate_limit::RateLimiter;

/// The body type of every response the proxy sends and request it forwards.
pub type ProxyBody = BoxBody<Bytes, hyper::Error>;

/// Limits and timeouts that are not (yet) config keys.
#[derive(Debug, Clone)]
pub struct ProxyOptions {
    /// Time a client has to send a complete request head (slowloris); HTTP/1
    /// closes the connection with 408 when it passes, and TLS handshakes get
    /// the same bound.
    pub header_read_timeout: Duration,
    /// Header fields per request (HTTP/1); more is answered 431.
    pub max_headers: usize,
    /// Bytes of request head (HTTP/1 read buffer, at least 8192; HTTP/2 header
    /// list); more is answered 431.
    pub max_header_bytes: usize,
    /// Rate-limit buckets kept per route.
    pub rate_limit_capacity: usize,
    /// Idle keep-alive connections to servers are closed after this long.
    pub pool_idle_timeout: Duration,
    /// Plain-HTTP/1.1 listeners relay requests themselves (`h1`) instead of
    /// going through hyper's server and pooled client.
    pub h1_fast_path: bool,
    /// Where server ejections and drains are recorded (`crate::events`);
    /// None: logged only.
    pub events: Option<Arc<crate::events::EventLog>>,
}

impl Default for ProxyOptions {
    fn default() -> Self {
        ProxyOptions {
            header_read_timeout: Duration::from_secs(10),
            max_headers: 100,
            max_header_bytes: 64 * 1024,
            rate_limit_capacity: rate_limit::DEFAULT_CAPACITY,
            pool_idle_timeout: Duration::from_secs(60),
            h1_fast_path: true,
            events: None,
        }
    }
}

/// Why the proxies could not start or reload; names the listen address.
#[derive(Debug, thiserror::Error)]
pub enum ProxyStartError {
    #[error("proxy listen {addr}: cannot bind: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("proxy listen {addr}: TLS: {message}")]
    Tls { addr: SocketAddr, message: String },
}

/// An admin call named something the running config does not have.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("no proxy backend named {0:?}")]
    NoBackend(String),
    #[error("backend {backend:?} has no server {server}")]
    NoServer { backend: String, server: SocketAddr },
}

/// Everything one config generation needs per request, swapped as a whole so
/// a request never sees routes of one generation and backends of another.
pub(crate) struct Runtime {
    pub generation: u64,
    pub backends: Vec<Arc<BackendRuntime>>,
    /// By the configured listen address (which may have port 0).
    pub plans: HashMap<SocketAddr, Arc<ListenerPlan>>,
}

/// One listener's routes and their rate limiters.
pub(crate) struct ListenerPlan {
    pub proxy: ProxyConfig,
    /// Indexed like `proxy.routes`.
    pub limiters: Vec<Option<Mutex<RateLimiter>>>,
}

/// State shared by listeners, request tasks and the [`Proxies`] handle.
pub(crate) struct Shared {
    pub runtime: ArcSwap<Runtime>,
    pub observations: Option<mpsc::Sender<Observation>>,
    /// Observations dropped because the health writer's channel was full.
    pub observations_dropped: AtomicU64,
    pub options: ProxyOptions,
    /// Servers removed by a reload that still have work in flight.
    pub retired: Mutex<Vec<(String, Arc<ServerSlot>)>>,
    /// Cancelled at the end of shutdown: every connection closes.
    pub hard_stop: CancellationToken,
}

/// A bound listener and its task.
struct Listener {
    /// The configured address (the key into [`Runtime::plans`]).
    key: SocketAddr,
    mode: ProxyMode,
    tls: Option<(std::path::PathBuf, std::path::PathBuf)>,
    local: SocketAddr,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

fn tls_key(tls: &Option<TlsConfig>) -> Option<(std::path::PathBuf, std::path::PathBuf)> {
    tls.as_ref().map(|t| (t.cert.clone(), t.key.clone()))
}

/// Owns every `[[proxy]]` listener and the runtime state of every backend.
///
/// ```text
/// Proxies::start_with(config, generation, observations, shutdown, options) -> Result<Proxies, ProxyStartError>
/// proxies.listen_addrs()                  bound addresses, config order
/// proxies.reload(config, generation)      keeps unchanged listeners and server counters
/// proxies.drain(backend, server, bool)    admin drain / undrain
/// proxies.apply_checks(&[BackendHealth]) active checks' verdicts, runtime weights
/// proxies.status()                        Vec<BackendStatus> (serde)
/// proxies.shutdown()                      drain all, wait up to drain_timeout
/// ```
pub struct Proxies {
    shared: Arc<Shared>,
    listeners: Mutex<Vec<Listener>>,
    /// The caller's token: cancelling it stops every listener from accepting.
    shutdown: CancellationToken,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Proxies {
    /// Binds every `[[proxy]]` listen address and starts serving, with the
    /// default options (tests; `app` passes its own to [`Proxies::start_with`]).
    #[cfg(any(test, feature = "test-util"))]
    pub async fn start(
        config: Arc<Config>,
        generation: u64,
        observations: Option<mpsc::Sender<Observation>>,
        shutdown: CancellationToken,
    ) -> Result<Proxies, ProxyStartError> {
        Self::start_with(
            config,
            generation,
            observations,
            shutdown,
            ProxyOptions::default(),
        )
        .await
    }

    /// Binds every `[[proxy]]` listen address and starts serving, with
    /// explicit limits and timeouts.
    pub async fn start_with(
        config: Arc<Config>,
        generation: u64,
        observations: Option<mpsc::Sender<Observation>>,
        shutdown: CancellationToken,
        options: ProxyOptions,
    ) -> Result<Proxies, ProxyStartError> {
        let shared = Arc::new(Shared {
            runtime: ArcSwap::from_pointee(Runtime {
                generation,
                backends: Vec::new(),
                plans: HashMap::new(),
            }),
            observations,
            observations_dropped: AtomicU64::new(0),
            options,
            retired: Mutex::new(Vec::new()),
            hard_stop: CancellationToken::new(),
        });
        tokio::spawn(sweep_idle(shared.clone()));
        let proxies = Proxies {
            shared,
            listeners: Mutex::new(Vec::new()),
            shutdown,
        };
        proxies.reload(config, generation).await?;
        Ok(proxies)
    }

    /// The addresses actually bound (the config may say port 0), in config order.
    pub fn listen_addrs(&self) -> Vec<SocketAddr> {
        lock(&self.listeners).iter().map(|l| l.local).collect()
    }

    /// Observations dropped because the health channel was full.
    pub fn observations_dropped(&self) -> u64 {
        self.shared
            .observations_dropped
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Drains (`drain = true`) or returns a server of a backend.
    pub fn drain(&self, backend: &str, server: SocketAddr, drain: bool) -> Result<(), ProxyError> {
        let runtime = self.shared.runtime.load();
        let b = runtime
            .backends
            .iter()
            .find(|b| b.config.name == backend)
            .ok_or_else(|| ProxyError::NoBackend(backend.to_string()))?;
        let slot = b.slot(server).ok_or_else(|| ProxyError::NoServer {
            backend: backend.to_string(),
            server,
        })?;
        if slot.set_draining(drain, Some(b.config.drain_timeout))
            && let Some(log) = &self.shared.options.events
        {
            let change = if drain {
                ("drained", "in rotation")
            } else {
                ("undrained", "drained")
            };
            log.record([crate::events::Event::proxy_server(
                crate::wallclock::unix_ms(),
                crate::events::Kind::Drain,
                backend,
                server,
                change,
                "operator (admin API)".into(),
            )]);
        }
        tracing::info!(backend, %server, drain, "proxy server drain changed");
        Ok(())
    }

    /// Applies the active checks' verdicts and the runtime weights (the
    /// health writer's view, by backend name and server address): a server
    /// that is not up there gets no new requests; in-flight ones finish.
    /// Servers of backends without a monitor are always up. Cheap (a few
    /// atomic stores): called often.
    pub fn apply_checks(&self, backends: &[crate::health::BackendHealth]) {
        let runtime = self.shared.runtime.load();
        for b in runtime.backends.iter() {
            let health = backends.iter().find(|h| *h.name == b.config.name);
            let monitored = health.is_some_and(|h| h.monitored);
            for slot in &b.servers {
                let s = health.and_then(|h| h.servers.iter().find(|s| s.address == slot.address));
                slot.set_weight(s.and_then(|s| s.weight));
                match s.filter(|_| monitored) {
                    Some(s) => slot.set_check(s.up(), s.last_error.as_ref()),
                    None => slot.set_check(true, None),
                }
            }
        }
    }

    /// Every backend with its servers; servers removed by a reload appear
    /// (draining) while they still have work in flight.
    pub fn status(&self) -> Vec<BackendStatus> {
        let runtime = self.shared.runtime.load();
        let mut out: Vec<BackendStatus> = runtime.backends.iter().map(|b| b.status()).collect();
        let mut retired = lock(&self.shared.retired);
        retired.retain(|(_, slot)| slot.in_flight() > 0);
        for (name, slot) in retired.iter() {
            if let Some(b) = out.iter_mut().find(|b| &b.name == name) {
                b.servers.push(slot.status(0));
            }
        }
        out
    }
}

/// Closes pooled server connections that sat idle past `pool_idle_timeout`,
/// until shutdown.
async fn sweep_idle(shared: Arc<Shared>) {
    let max_idle = shared.options.pool_idle_timeout;
    let every = (max_idle / 2).clamp(Duration::from_millis(100), Duration::from_secs(10));
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shared.hard_stop.cancelled() => return,
        }
        let now = std::time::Instant::now();
        for backend in shared.runtime.load().backends.iter() {
            for slot in &backend.servers {
                slot.sweep_idle(now, max_idle);
            }
        }
    }
}
