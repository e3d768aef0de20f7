//! control: the operator's levers on a running server, shared by the admin
//! API and signals: reload, drain and undrain, and the probe tasks' lifecycle.
//! `app` builds a [`Control`] and hands it to `admin`; neither reaches into
//! the other. What the levers ask of the health writer is a [`Command`].

use crate::state::Command;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::cluster::Applied;
use crate::config::{Config, ConfigError, ConfigErrors, EndpointKey, PoolId};
use crate::health::{Forced, Observation, Pushed};
use crate::metrics::Registry;
use crate::proxy::Proxies;
use crate::state::{Loaded, Shared};
use crate::wallclock::unix_ms;

/// What status shows about reloads.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReloadStatus {
    /// The config generation: 1 at start, one more per successful reload.
    pub version: u64,
    /// When the serving config was loaded (start-up or the last successful reload).
    pub loaded_at_unix_ms: u64,
    /// Whether the last reload (or the start, before any) succeeded.
    pub last_reload_successful: bool,
    pub last_reload_error: Option<String>,
    pub last_reload_at_unix_ms: Option<u64>,
    /// The serving config's warnings and notes.
    pub warnings: Vec<crate::config::Warning>,
    /// Settings of the serving config that differ from the ones the
    /// process started with and only a restart applies.
    pub pending_restart: Vec<String>,
}

/// What a successful reload did.
#[derive(Debug, Clone, Serialize)]
pub struct Reloaded {
    pub version: u64,
    pub warnings: Vec<crate::config::Warning>,
    pub pending_restart: Vec<String>,
}

/// The settings only read at start-up that differ between `started` (the
/// config the process started with) and `new`, as config keys.
pub fn restart_only_changes(started: &Config, new: &Config) -> Vec<String> {
    let (a, b) = (&started.server, &new.server);
    let mut out = Vec::new();
    let mut differ = |key: &str, changed: bool| {
        if changed {
            out.push(key.to_string());
        }
    };
    differ("server.dns_listen", a.dns_listen != b.dns_listen);
    differ("server.admin_listen", a.admin_listen != b.admin_listen);
    differ("server.udp_workers", a.udp_workers != b.udp_workers);
    differ("server.state_file", a.state_file != b.state_file);
    differ("server.fast_path", a.fast_path != b.fast_path);
    differ(
        "server.tcp_idle_timeout",
        a.tcp_idle_timeout != b.tcp_idle_timeout,
    );
    differ(
        "server.tcp_max_connections",
        a.tcp_max_connections != b.tcp_max_connections,
    );
    differ(
        "server.rrl.table_size",
        a.rrl.table_size != b.rrl.table_size,
    );
    differ("cluster", started.cluster != new.cluster);
    out
}

/// The largest runtime weight (the config's endpoint weights have no other
/// bound; this keeps a typo from starving every other endpoint for good).
pub const MAX_RUNTIME_WEIGHT: u32 = 10_000;

/// The longest gradual drain: a day.
pub const MAX_DRAIN_OVER: std::time::Duration = std::time::Duration::from_secs(86_400);
/// The bounds of a pushed health's ttl.
pub const MIN_PUSH_TTL: std::time::Duration = std::time::Duration::from_secs(1);
pub const MAX_PUSH_TTL: std::time::Duration = std::time::Duration::from_secs(86_400);

fn kind_name(kind: crate::config::MonitorKind) -> &'static str {
    use crate::config::MonitorKind;
    match kind {
        MonitorKind::Http => "http",
        MonitorKind::Https => "https",
        MonitorKind::Tcp => "tcp",
        MonitorKind::External => "external",
    }
}

pub struct Control {
    config_path: PathBuf,
    shared: Arc<Shared>,
    registry: Arc<Registry>,
    commands: mpsc::Sender<Command>,
    observations: mpsc::Sender<Observation>,
    pub proxies: Arc<Proxies>,
    /// The fleet link: drains go through etcd when it is set.
    cluster: Option<crate::cluster::Cluster>,
    shutdown: CancellationToken,
    tasks: TaskTracker,
    /// Cancels the current generation's probes.
    probes: Mutex<CancellationToken>,
    status: Mutex<ReloadStatus>,
    /// The config the process started with: restart-only settings are
    /// compared with it.
    started: Arc<Config>,
    /// One reload at a time.
    reloading: tokio::sync::Mutex<()>,
}

#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    #[error("{0}")]
    NotFound(String),
    #[error("the health writer is not running")]
    Stopped,
    /// A bad value in the request.
    #[error("{0}")]
    Invalid(String),
    /// Not possible in this setup (e.g. a node-local change in a fleet).
    #[error("{0}")]
    Conflict(String),
    /// A fleet-wide drain could not be recorded in etcd.
    #[error("{0}")]
    Fleet(String),
}

impl Control {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        config_path: PathBuf,
        shared: Arc<Shared>,
        registry: Arc<Registry>,
        commands: mpsc::Sender<Command>,
        observations: mpsc::Sender<Observation>,
        proxies: Arc<Proxies>,
        cluster: Option<crate::cluster::Cluster>,
        shutdown: CancellationToken,
        tasks: TaskTracker,
        warnings: Vec<crate::config::Warning>,
    ) -> Control {
        let first = shared.load_full();
        let started = first.config.clone();
        Control {
            config_path,
            shared,
            registry,
            commands,
            observations,
            proxies,
            cluster,
            probes: Mutex::new(shutdown.child_token()),
            shutdown,
            tasks,
            status: Mutex::new(ReloadStatus {
                version: 1,
                loaded_at_unix_ms: unix_ms(),
                last_reload_successful: true,
                warnings,
                ..ReloadStatus::default()
            }),
            started,
            reloading: tokio::sync::Mutex::new(()),
        }
    }

    pub fn reload_status(&self) -> ReloadStatus {
        self.status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Starts the probes of one config generation, stopping the previous ones.
    pub(crate) fn spawn_probes(&self, config: Arc<Config>, generation: u64) {
        let token = self.shutdown.child_token();
        let old = std::mem::replace(
            &mut *self.probes.lock().unwrap_or_else(|e| e.into_inner()),
            token.clone(),
        );
        old.cancel();
        let mut handles = crate::resolve::spawn(
            &config,
            (self.shared.clone(), generation),
            self.commands.clone(),
            token.clone(),
        );
        handles.extend(crate::probe::host::spawn(
            &config,
            self.shared.clone(),
            generation,
            self.observations.clone(),
            token.clone(),
        ));
        handles.extend(crate::probe::spawn(
            config,
            generation,
            self.observations.clone(),
            token,
        ));
        for handle in handles {
            self.tasks.spawn(async move {
                let _ = handle.await;
            });
        }
    }

    /// parse → validate → build → swap. On any error the old config keeps
    /// serving. A success says what the new config warns of and which of
    /// its changes wait for a restart.
    pub async fn reload(&self) -> Result<Reloaded, ConfigErrors> {
        let _one = self.reloading.lock().await;
        let result = self.try_reload().await;
        let mut st = self.status.lock().unwrap_or_else(|e| e.into_inner());
        st.last_reload_at_unix_ms = Some(unix_ms());
        st.last_reload_successful = result.is_ok();
        match result {
            Ok((warnings, pending_restart)) => {
                st.last_reload_error = None;
                st.version += 1;
                st.loaded_at_unix_ms = unix_ms();
                st.warnings = warnings.clone();
                st.pending_restart = pending_restart.clone();
                tracing::info!(
                    version = st.version,
                    "reloaded {}",
                    self.config_path.display()
                );
                if !pending_restart.is_empty() {
                    tracing::warn!(
                        "changed settings that take effect on restart only (pending restart): {}",
                        pending_restart.join(", ")
                    );
                }
                Ok(Reloaded {
                    version: st.version,
                    warnings,
                    pending_restart,
                })
            }
            Err(e) => {
                st.last_reload_error = Some(e.to_string());
                // The one event the health writer never sees: nothing
                // reached it. One line: the first problem and a count.
                let first = e.0.first().map(|p| p.to_string()).unwrap_or_default();
                let reason = match e.0.len() {
                    0 | 1 => first,
                    n => format!("{first} (and {} more)", n - 1),
                };
                self.shared
                    .events
                    .record([crate::events::Event::reload_failed(unix_ms(), &reason)]);
                // One line per problem, each with its time and level.
                tracing::error!(
                    problems = e.0.len(),
                    "reload failed, still serving the previous config"
                );
                for problem in &e.0 {
                    tracing::error!("{problem}");
                }
                Err(e)
            }
        }
    }

    /// The new config's warnings and restart-only changes, once it serves.
    async fn try_reload(&self) -> Result<(Vec<crate::config::Warning>, Vec<String>), ConfigErrors> {
        // Parsing and compiling a large config takes a second or more: on a
        // blocking thread, never on a worker that also answers queries.
        let (path, registry) = (self.config_path.clone(), self.registry.clone());
        let loaded = tokio::task::spawn_blocking(move || Loaded::from_path(&path, &registry))
            .await
            .map_err(|e| {
                ConfigErrors::one(ConfigError::file(
                    &self.config_path,
                    format!("reload task failed: {e}"),
                ))
            })??;
        let mut loaded = loaded;
        let current = self.shared.load_full();
        // Without `cookie_secret`, the secret made at start-up stays: a
        // reload does not void the cookies clients hold.
        if loaded.config.server.cookie_secret_generated
            && self.started.server.cookie_secret_generated
            && let Some(config) = Arc::get_mut(&mut loaded.config)
        {
            config.server.cookie_secrets = self.started.server.cookie_secrets.clone();
        }
        // Transfers: the zones keep the versions the last snapshot served.
        if let Some(zones) = Arc::get_mut(&mut loaded.zones) {
            for note in zones.carry_history(&current.zones) {
                loaded
                    .warnings
                    .push(crate::config::Warning::new("zones", note));
            }
        }
        loaded.log("new config loaded", false);
        let warnings = loaded.warnings.clone();
        let pending_restart = restart_only_changes(&self.started, &loaded.config);
        let generation = current.generation + 1;
        let config = loaded.config.clone();
        if let Err(e) = self.proxies.reload(config.clone(), generation).await {
            // Freeing it is as slow as building it: not here either.
            tokio::task::spawn_blocking(move || drop((loaded, config)));
            return Err(ConfigErrors::one(ConfigError::new(
                &self.config_path,
                "proxy",
                e.to_string(),
            )));
        }
        let (done, wait) = oneshot::channel();
        self.commands
            .send(Command::Reload {
                loaded,
                generation,
                done,
            })
            .await
            .map_err(|_| {
                ConfigErrors::one(ConfigError::file(
                    &self.config_path,
                    "the health writer is not running",
                ))
            })?;
        let _ = wait.await;
        self.spawn_probes(config, generation);
        let notices = crate::dns::notify::due(Some(&current.zones), &self.shared.load().zones);
        crate::dns::notify::spawn(
            notices,
            &self.registry.transfers,
            &self.tasks,
            &self.shutdown,
        );
        Ok((warnings, pending_restart))
    }

    /// Drains (or returns) the endpoint `address` of `pool`. When this
    /// returns, the next query no longer sees it. In a fleet it goes through
    /// etcd (and says how it applied); a `local` undrain is applied on this
    /// node only when etcd is unreachable. Alone, `local` changes nothing.
    pub async fn drain_endpoint(
        &self,
        pool: &str,
        address: &str,
        draining: bool,
        local: bool,
    ) -> Result<Option<Applied>, ActionError> {
        let (pool_id, endpoint, ip) = self.endpoint(pool, address)?;
        if let Some(cluster) = &self.cluster {
            let applied = cluster
                .drain(pool, ip.clone(), draining, local, None)
                .await
                .map_err(ActionError::Fleet)?;
            if applied == Applied::FleetWide {
                tracing::info!(pool, endpoint = %ip, draining, "endpoint drain state changed fleet-wide");
            }
            return Ok(Some(applied));
        }
        self.apply(|done| Command::Drain {
            pool: pool_id,
            endpoint,
            draining,
            done,
        })
        .await?;
        tracing::info!(pool, endpoint = %ip, draining, "endpoint drain state changed");
        Ok(None)
    }

    /// Drains the endpoint `address` of `pool` gradually: its weight ramps
    /// to zero over `over`, then it is drained. In a fleet the drain record
    /// in etcd carries the ramp (its start and length), so every node ramps
    /// alike; refused while etcd is unreachable.
    pub async fn drain_endpoint_over(
        &self,
        pool: &str,
        address: &str,
        over: std::time::Duration,
    ) -> Result<(), ActionError> {
        if over.is_zero() || over > MAX_DRAIN_OVER {
            return Err(ActionError::Invalid(format!(
                "over must be more than 0 and at most {}s (a day)",
                MAX_DRAIN_OVER.as_secs()
            )));
        }
        let (pool_id, endpoint, ip) = self.endpoint(pool, address)?;
        if let Some(cluster) = &self.cluster {
            cluster
                .drain(pool, ip.clone(), true, false, Some(over))
                .await
                .map_err(ActionError::Fleet)?;
            tracing::info!(pool, endpoint = %ip, over_ms = over.as_millis() as u64, "endpoint draining gradually fleet-wide");
            return Ok(());
        }
        self.apply(|done| Command::DrainOver {
            pool: pool_id,
            endpoint,
            over,
            done,
        })
        .await?;
        tracing::info!(pool, endpoint = %ip, over_ms = over.as_millis() as u64, "endpoint draining gradually");
        Ok(())
    }

    /// Takes a reported load for `pool` (which needs a `capacity`), valid for
    /// `ttl`. This node only: in a fleet, report to every node.
    pub async fn set_load(
        &self,
        pool: &str,
        value: f64,
        ttl: std::time::Duration,
    ) -> Result<(), ActionError> {
        if !(value.is_finite() && value >= 0.0) {
            return Err(ActionError::Invalid(
                "value must be a number, 0 or more".into(),
            ));
        }
        if ttl.is_zero() || ttl > MAX_DRAIN_OVER {
            return Err(ActionError::Invalid(format!(
                "ttl must be more than 0 and at most {}s (a day)",
                MAX_DRAIN_OVER.as_secs()
            )));
        }
        let pool_id = {
            let snap = self.shared.load();
            let id = snap
                .config
                .pool_id(pool)
                .ok_or_else(|| ActionError::NotFound(format!("no pool named {pool:?}")))?;
            match snap.config.pool(id).capacity.map(|c| c.load) {
                None => {
                    return Err(ActionError::Conflict(format!(
                        "pool {pool} has no capacity: set capacity = N in [pools.{pool}] to report its load"
                    )));
                }
                Some(crate::config::LoadSource::Reported) => {}
                Some(source) => {
                    return Err(ActionError::Conflict(format!(
                        "pool {pool} takes its load from {}, not from reports",
                        match source {
                            crate::config::LoadSource::Proxy =>
                                "its proxy backends (load = \"proxy\")",
                            _ => "its monitor's load_header",
                        }
                    )));
                }
            }
            id
        };
        if let Some(cluster) = &self.cluster {
            cluster
                .report_load(pool, value, ttl)
                .await
                .map_err(ActionError::Fleet)?;
            tracing::debug!(pool, value, "pool load reported fleet-wide");
            return Ok(());
        }
        self.apply(|done| Command::Load {
            pool: pool_id,
            value,
            ttl,
            done,
        })
        .await?;
        tracing::debug!(pool, value, "pool load reported");
        Ok(())
    }

    /// The endpoint `address` of `pool` in the serving config: (pool, its
    /// index in the pool, its key), or what is not there. `address` is an
    /// endpoint key's text: an IP address or a name (case and a trailing dot
    /// do not matter).
    pub fn endpoint(
        &self,
        pool: &str,
        address: &str,
    ) -> Result<(PoolId, u32, EndpointKey), ActionError> {
        let snap = self.shared.load();
        let pool_id = snap
            .config
            .pool_id(pool)
            .ok_or_else(|| ActionError::NotFound(format!("no pool named {pool:?}")))?;
        let ip = EndpointKey::parse(address).ok_or_else(|| {
            ActionError::NotFound(format!(
                "{address:?} is neither an IP address nor a domain name"
            ))
        })?;
        let endpoint = snap
            .config
            .pool(pool_id)
            .endpoints
            .iter()
            .position(|e| e.key() == ip)
            .ok_or_else(|| ActionError::NotFound(format!("pool {pool} has no endpoint {ip}")))?;
        Ok((pool_id, endpoint as u32, ip))
    }

    /// Sends a command to the health writer and waits until it is applied
    /// (published: the next query sees it).
    async fn apply(
        &self,
        command: impl FnOnce(oneshot::Sender<()>) -> Command,
    ) -> Result<(), ActionError> {
        let (done, wait) = oneshot::channel();
        self.commands
            .send(command(done))
            .await
            .map_err(|_| ActionError::Stopped)?;
        wait.await.map_err(|_| ActionError::Stopped)
    }

    /// Sets (or with None resets to the config's) the runtime weight of the
    /// endpoint `address` of `pool`. When this returns, the next query draws
    /// with it. In a fleet it is written to etcd and applied by every node.
    pub async fn set_weight(
        &self,
        pool: &str,
        address: &str,
        weight: Option<u32>,
    ) -> Result<(), ActionError> {
        if let Some(w) = weight
            && !(1..=MAX_RUNTIME_WEIGHT).contains(&w)
        {
            return Err(ActionError::Invalid(format!(
                "weight must be 1-{MAX_RUNTIME_WEIGHT} (drain an endpoint instead of weighting it 0)"
            )));
        }
        let (pool_id, endpoint, ip) = self.endpoint(pool, address)?;
        if let Some(cluster) = &self.cluster {
            cluster
                .record(pool, ip.clone(), crate::cluster::Lever::Weight(weight))
                .await
                .map_err(ActionError::Fleet)?;
            tracing::info!(pool, endpoint = %ip, ?weight, "endpoint runtime weight changed fleet-wide");
            return Ok(());
        }
        self.apply(|done| Command::Weight {
            pool: pool_id,
            endpoint,
            weight,
            done,
        })
        .await?;
        tracing::info!(pool, endpoint = %ip, ?weight, "endpoint runtime weight changed");
        Ok(())
    }

    /// Sets (or with None clears) an operator's override of the endpoint
    /// `address` of `pool`: `up` keeps it in answers despite failing checks
    /// (a drain still wins), down takes it out; `for_` ends it by itself.
    /// When this returns, the next query sees it. Returns what was set.
    pub async fn set_override(
        &self,
        pool: &str,
        address: &str,
        set: Option<(bool, String, Option<std::time::Duration>)>,
    ) -> Result<Option<Forced>, ActionError> {
        let forced = match set {
            None => None,
            Some((up, reason, for_)) => {
                let reason = reason.trim().to_string();
                if reason.is_empty() {
                    return Err(ActionError::Invalid(
                        "an override needs a reason (\"reason\": \"...\"): it shows in every view and event".into(),
                    ));
                }
                if for_.is_some_and(|d| d.is_zero()) {
                    return Err(ActionError::Invalid(
                        "\"for\" must be longer than 0s".into(),
                    ));
                }
                Some(Forced {
                    up,
                    reason,
                    until_unix_ms: for_.map(|d| {
                        // Saturating: `as u64` would wrap a "for" of
                        // millions of years into the past.
                        let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
                        unix_ms().saturating_add(ms)
                    }),
                })
            }
        };
        let (pool_id, endpoint, ip) = self.endpoint(pool, address)?;
        if let Some(cluster) = &self.cluster {
            cluster
                .record(
                    pool,
                    ip.clone(),
                    crate::cluster::Lever::Override(forced.clone()),
                )
                .await
                .map_err(ActionError::Fleet)?;
            tracing::info!(pool, endpoint = %ip, ?forced, "endpoint override changed fleet-wide");
            return Ok(forced);
        }
        let sent = forced.clone();
        self.apply(|done| Command::Override {
            pool: pool_id,
            endpoint,
            forced: sent,
            done,
        })
        .await?;
        tracing::info!(pool, endpoint = %ip, ?forced, "endpoint override changed");
        Ok(forced)
    }

    /// Takes a pushed health for the endpoint `address` of `pool`, whose
    /// monitor must be `type = "external"`. It holds for `ttl`; without a
    /// new push by then the endpoint goes down. Returns what was recorded.
    pub async fn push_health(
        &self,
        pool: &str,
        address: &str,
        up: bool,
        ttl: std::time::Duration,
        latency_ms: Option<u64>,
        reason: Option<String>,
    ) -> Result<Pushed, ActionError> {
        if !(MIN_PUSH_TTL..=MAX_PUSH_TTL).contains(&ttl) {
            return Err(ActionError::Invalid(format!(
                "ttl must be {}-{}",
                humantime::format_duration(MIN_PUSH_TTL),
                humantime::format_duration(MAX_PUSH_TTL)
            )));
        }
        let (pool_id, endpoint, ip) = self.endpoint(pool, address)?;
        {
            let snap = self.shared.load();
            let monitor = snap.config.monitor_of(pool_id);
            if monitor.is_none_or(|m| m.kind != crate::config::MonitorKind::External) {
                return Err(ActionError::Conflict(format!(
                    "pool {pool} is {}: its health comes from probes; only a pool whose monitor has type = \"external\" takes pushed health",
                    match monitor {
                        Some(m) =>
                            format!("checked by the {} monitor {:?}", kind_name(m.kind), m.name),
                        None => "not monitored".to_string(),
                    }
                )));
            }
        }
        let ttl_ms = ttl.as_millis() as u64;
        let pushed = Pushed {
            up,
            reason: reason.filter(|r| !r.trim().is_empty()),
            ttl_ms,
            expires_unix_ms: unix_ms().saturating_add(ttl_ms),
            latency_ms,
            expired: false,
        };
        if let Some(cluster) = &self.cluster {
            cluster
                .record(
                    pool,
                    ip.clone(),
                    crate::cluster::Lever::Pushed(pushed.clone()),
                )
                .await
                .map_err(ActionError::Fleet)?;
            tracing::debug!(pool, endpoint = %ip, up, ttl_ms, "health pushed fleet-wide");
            return Ok(pushed);
        }
        let sent = pushed.clone();
        self.apply(|done| Command::Push {
            pool: pool_id,
            endpoint,
            pushed: sent,
            done,
        })
        .await?;
        tracing::debug!(pool, endpoint = %ip, up, ttl_ms, "health pushed");
        Ok(pushed)
    }

    /// Sets (or with None resets to the config's) the runtime weight of the
    /// server `server` (`host:port`) of the proxy backend `backend`. When
    /// this returns, the proxy's next pick weighs with it. On this node
    /// only, like a backend server's drain: a server's weight concerns the
    /// proxy of the node it runs on, so in a fleet it is not written to etcd.
    pub async fn set_server_weight(
        &self,
        backend: &str,
        server: &str,
        weight: Option<u32>,
    ) -> Result<(), ActionError> {
        if let Some(w) = weight
            && !(1..=MAX_RUNTIME_WEIGHT).contains(&w)
        {
            return Err(ActionError::Invalid(format!(
                "weight must be 1-{MAX_RUNTIME_WEIGHT} (drain a server instead of weighting it 0)"
            )));
        }
        let (backend_id, index, addr) = {
            let snap = self.shared.load();
            let addr: std::net::SocketAddr = server
                .parse()
                .map_err(|_| ActionError::NotFound(format!("{server:?} is not host:port")))?;
            let (id, b) = snap
                .config
                .backends
                .iter()
                .enumerate()
                .find(|(_, b)| b.name == backend)
                .ok_or_else(|| {
                    ActionError::NotFound(format!("no proxy backend named {backend:?}"))
                })?;
            let index = b
                .servers
                .iter()
                .position(|s| s.address == addr)
                .ok_or_else(|| {
                    ActionError::NotFound(format!("backend {backend:?} has no server {addr}"))
                })?;
            (crate::config::BackendId(id as u32), index as u32, addr)
        };
        self.apply(|done| Command::ServerWeight {
            backend: backend_id,
            server: index,
            weight,
            done,
        })
        .await?;
        // The proxy takes weights from the published view; hand it over now
        // rather than at the next tick, so the very next request sees it.
        self.proxies
            .apply_checks(&self.shared.load().health.backends);
        tracing::info!(backend, server = %addr, ?weight, "proxy server runtime weight changed");
        Ok(())
    }

    /// Drains (or returns) a proxy backend's server.
    pub fn drain_server(
        &self,
        backend: &str,
        server: &str,
        draining: bool,
    ) -> Result<(), ActionError> {
        let addr = server
            .parse()
            .map_err(|_| ActionError::NotFound(format!("{server:?} is not host:port")))?;
        self.proxies
            .drain(backend, addr, draining)
            .map_err(|e| ActionError::NotFound(e.to_string()))?;
        tracing::info!(backend, server, draining, "server drain state changed");
        Ok(())
    }

    /// On shutdown: proxies stop taking work and let in-flight requests finish.
    pub(crate) async fn drain_proxies(&self) {
        self.proxies.shutdown().await;
    }
}

/// The HTTP status an admin action's error maps to.
pub fn control_error_status(e: &ActionError) -> axum::http::StatusCode {
    match e {
        ActionError::NotFound(_) => axum::http::StatusCode::NOT_FOUND,
        ActionError::Invalid(_) => axum::http::StatusCode::BAD_REQUEST,
        ActionError::Conflict(_) => axum::http::StatusCode::CONFLICT,
        ActionError::Stopped | ActionError::Fleet(_) => axum::http::StatusCode::SERVICE_UNAVAILABLE,
    }
}
