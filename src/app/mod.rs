//! app: starts and stops everything `geosteer serve` runs, from one loaded
//! config: the health writer and probes, the DNS listeners, the admin API and
//! the proxies. Tests start it in-process on port 0.
//!
//! Start-up order matters (DESIGN §3, no blind spot): the config is loaded,
//! one full probe round runs (bounded by the longest monitor timeout) and only
//! then are the DNS sockets bound, so the first answer already follows health.

pub mod health_writer;
pub mod state_file;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::ConfigErrors;
use crate::control::Control;
use crate::dns::DnsHandler;
use crate::dns::server::{BindError, DnsServer};
use crate::health::HealthBook;
use crate::metrics::Registry;
use crate::proxy::Proxies;
use crate::state::{Loaded, Shared, Snapshot};

/// Observations queued for the writer before probes wait and proxies drop.
const OBSERVATION_QUEUE: usize = 65_536;
/// Longest start-up wait for host endpoints' first resolution.
const RESOLVE_FIRST: std::time::Duration = std::time::Duration::from_secs(3);
/// Longest start-up wait for the first sync with etcd.
const FIRST_SYNC: std::time::Duration = std::time::Duration::from_secs(3);

/// Why `serve` could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Config(#[from] ConfigErrors),
    #[error(transparent)]
    Bind(#[from] BindError),
    #[error("{0}")]
    Other(String),
}

/// A running geosteer.
pub struct Running {
    pub config_path: PathBuf,
    pub shared: Arc<Shared>,
    pub control: Arc<Control>,
    pub registry: Arc<Registry>,
    /// Bound DNS addresses (UDP and TCP), in config order.
    pub dns_addrs: Vec<SocketAddr>,
    pub admin_addr: SocketAddr,
    pub proxy_addrs: Vec<SocketAddr>,
    dns: DnsServer,
    tasks: TaskTracker,
    shutdown: CancellationToken,
    /// Stops the fleet link (it withdraws this node's verdicts first).
    cluster_stop: CancellationToken,
}

/// Loads the config at `path` and starts serving it.
pub async fn start(path: &Path) -> Result<Running, StartError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let registry = Arc::new(Registry::default());
    // A fleet config in etcd: fetch the current revision first (bounded;
    // without etcd the node starts on the revision it ran last).
    let fleet = crate::config::fleet_cluster(path, &crate::state::host_name())?;
    let mut last_revision = None;
    if let Some(cluster) = &fleet {
        last_revision = crate::cluster::fleetcfg::prime(cluster)
            .await
            .map_err(StartError::Other)?;
    }
    // A new fleet revision that does not load here: the node starts on the
    // one it ran last, flagged, as it stays on it when the push arrives
    // while it runs.
    let mut fleet_failed = None;
    let loaded = match (Loaded::from_path(path, &registry), &fleet, last_revision) {
        (Ok(loaded), _, _) => loaded,
        (Err(errors), Some(cluster), Some(last)) => {
            fleet_failed = Some(
                crate::cluster::fleetcfg::unprime(cluster, last, &errors.to_string())
                    .map_err(StartError::Other)?,
            );
            Loaded::from_path(path, &registry)?
        }
        (Err(errors), _, _) => return Err(errors.into()),
    };
    loaded.log("config loaded", true);
    let config = loaded.config.clone();
    let warnings = loaded.warnings.clone();
    if !config.server.admin_listen.ip().is_loopback() && config.server.admin_token.is_none() {
        return Err(StartError::Other(format!(
            "{}: server.admin_listen {} is not a loopback address, so server.admin_token must be set",
            path.display(),
            config.server.admin_listen
        )));
    }
    let generation = 1;
    let mut book = HealthBook::new(&config, generation);
    let started = Instant::now();
    // Host endpoints: resolved once before their first probes.
    let first = crate::resolve::first_round(&config);
    let first = tokio::time::timeout(RESOLVE_FIRST, first).await;
    for (targets, resolution) in first.unwrap_or_default() {
        let result = resolution.map(|(ips, _)| ips);
        for target in targets {
            book.resolved(target, result.clone(), crate::wallclock::unix_ms());
        }
    }
    let resolved = book.view();
    let hosts = crate::probe::host::first_round(&config, generation, &resolved);
    let (static_round, hosts) = tokio::join!(crate::probe::first_round(&config, generation), hosts);
    for obs in static_round.into_iter().chain(hosts) {
        health_writer::count_probe(&config, generation, &registry, &obs);
        book.observe(obs, Instant::now(), crate::wallclock::unix_ms());
    }
    if config.pools.iter().any(|p| p.monitor.is_some())
        || config.backends.iter().any(|b| b.monitor.is_some())
    {
        tracing::info!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            "first probe round done"
        );
    }
    // A single node's drains, weights and overrides from the last run.
    let state_file = match (&config.server.state_file, &config.cluster) {
        (Some(path), None) => {
            let saved =
                state_file::read(path, crate::wallclock::unix_ms()).map_err(StartError::Other)?;
            for why in state_file::apply(&mut book, &config, &saved) {
                tracing::warn!("server.state_file {}: dropped {why}", path.display());
            }
            if !saved.endpoints.is_empty() || !saved.servers.is_empty() {
                tracing::info!(
                    entries = saved.endpoints.len() + saved.servers.len(),
                    "restored drains, weights and overrides from {}",
                    path.display()
                );
            }
            // Written once now, so that a folder that is missing or not
            // writable stops the start instead of every later drain being
            // acknowledged and then lost at the next restart.
            state_file::write(path, &state_file::of(&config, &book.view())).map_err(|e| {
                StartError::Other(format!(
                    "server.state_file {}: cannot write it ({e}): drains, weights and overrides would not survive a restart; create its folder (StateDirectory=geosteer in the systemd unit) and let geosteer write there",
                    path.display()
                ))
            })?;
            Some(path.clone())
        }
        (Some(path), Some(_)) => {
            tracing::warn!(
                "server.state_file {} is not used in a fleet: drains, weights and overrides live in etcd",
                path.display()
            );
            None
        }
        (None, _) => None,
    };
    let shared = Arc::new(Shared::new(Snapshot {
        generation,
        config: config.clone(),
        steering: loaded.steering.clone(),
        zones: loaded.zones.clone(),
        dnssec: loaded.dnssec.clone(),
        geo: loaded.geo.clone(),
        health: Arc::new(book.view()),
    }));

    if fleet_failed.is_some() {
        shared
            .fleet_config
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .failed = fleet_failed;
    }

    let shutdown = CancellationToken::new();
    let tasks = TaskTracker::new();
    // Webhooks: subscribed before the writer can record an event.
    tasks.spawn(crate::notify::run(
        shared.events.subscribe(),
        shared.clone(),
        registry.clone(),
        config
            .cluster
            .as_ref()
            .map_or_else(crate::state::host_name, |c| c.node.clone()),
        shutdown.clone(),
    ));
    let (obs_tx, obs_rx) = mpsc::channel(OBSERVATION_QUEUE);
    let (cmd_tx, cmd_rx) = mpsc::channel(64);
    let published = Arc::new(tokio::sync::Notify::new());
    tasks.spawn(health_writer::run(
        shared.clone(),
        registry.clone(),
        book,
        obs_rx,
        cmd_rx,
        published.clone(),
        state_file,
        shutdown.clone(),
    ));

    // The fleet link, when `[cluster]` is configured. DNS waits for its
    // first sync (bounded), so that the first answers already count the
    // fleet's votes; an unreachable etcd delays start-up by at most that.
    let cluster_stop = CancellationToken::new();
    let cluster = match &config.cluster {
        None => None,
        Some(c) => {
            let (cluster, first_sync, handle) = crate::cluster::Cluster::start(
                c,
                shared.clone(),
                cmd_tx.clone(),
                published,
                registry.cluster.clone(),
                cluster_stop.clone(),
            )
            .map_err(StartError::Other)?;
            tasks.spawn(async move {
                let _ = handle.await;
            });
            let _ = tokio::time::timeout(FIRST_SYNC, first_sync).await;
            Some(cluster)
        }
    };

    let proxies = Proxies::start_with(
        config.clone(),
        generation,
        Some(obs_tx.clone()),
        shutdown.clone(),
        crate::proxy::ProxyOptions {
            events: Some(shared.events.clone()),
            ..crate::proxy::ProxyOptions::default()
        },
    )
    .await
    .map_err(|e| StartError::Other(e.to_string()))?;
    let proxy_addrs = proxies.listen_addrs();
    let proxies = Arc::new(proxies);
    proxies.apply_checks(&shared.load().health.backends);
    tasks.spawn(apply_checks(
        shared.clone(),
        proxies.clone(),
        shutdown.clone(),
    ));

    tasks.spawn(resign(shared.clone(), cmd_tx.clone(), shutdown.clone()));
    let control = Arc::new(Control::new(
        path.to_path_buf(),
        shared.clone(),
        registry.clone(),
        cmd_tx,
        obs_tx,
        proxies,
        cluster,
        shutdown.clone(),
        tasks.clone(),
        warnings,
    ));
    control.spawn_probes(config.clone(), generation);
    if let Some(cluster) = fleet {
        // Each new revision in etcd is loaded like a SIGHUP reload.
        let (shared, control) = (shared.clone(), control.clone());
        let state = shared.fleet_config.clone();
        let serving = move || shared.load().config.fleet_revision;
        let reload = move || {
            let control = control.clone();
            async move { control.reload().await.map(drop).map_err(|e| e.to_string()) }
        };
        tasks.spawn(crate::cluster::fleetcfg::follow(
            cluster,
            state,
            serving,
            reload,
            cluster_stop.clone(),
        ));
    }

    let handler = DnsHandler::new(shared.clone(), &registry);
    let udp_sockets = match config.server.udp_workers {
        0 => std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        n => n as usize,
    };
    let dns = DnsServer::bind(
        &config.server.dns_listen,
        udp_sockets,
        config.server.fast_path,
        crate::dns::tcp::Limits {
            idle: config.server.tcp_idle_timeout,
            max_connections: config.server.tcp_max_connections,
        },
        handler,
    )?;

    let admin_listener = tokio::net::TcpListener::bind(config.server.admin_listen)
        .await
        .map_err(|e| {
            StartError::Other(format!(
                "cannot listen for the admin API on {}: {e}",
                config.server.admin_listen
            ))
        })?;
    let admin_addr = admin_listener
        .local_addr()
        .map_err(|e| StartError::Other(e.to_string()))?;
    let router = crate::admin::router(crate::admin::AdminState {
        shared: shared.clone(),
        control: control.clone(),
        registry: registry.clone(),
    });
    let stop = shutdown.clone();
    tasks.spawn(async move {
        let serve = axum::serve(
            admin_listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(stop.cancelled_owned());
        if let Err(e) = serve.await {
            tracing::error!(error = %e, "admin API stopped");
        }
    });
    tracing::info!(%admin_addr, "admin API listening");
    // Secondaries learn at once that this primary is up with these serials.
    let notices = crate::dns::notify::due(None, &shared.load().zones);
    crate::dns::notify::spawn(notices, &registry.transfers, &tasks, &shutdown);

    Ok(Running {
        config_path: path.to_path_buf(),
        shared,
        control,
        registry,
        dns_addrs: dns.addrs.clone(),
        admin_addr,
        proxy_addrs,
        dns,
        tasks,
        shutdown,
        cluster_stop,
    })
}

/// Hands the backends' active-check verdicts from the published health to
/// the proxies, every [`health_writer::PUBLISH_EVERY`]: a server that fails
/// its checks leaves rotation within that of the publish that says so (a
/// reload's new servers included, whichever of the two swaps came first).
async fn apply_checks(shared: Arc<Shared>, proxies: Arc<Proxies>, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(health_writer::PUBLISH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let health = shared.load().health.clone();
        if !health.backends.is_empty() {
            proxies.apply_checks(&health.backends);
        }
    }
}

/// Re-signs the signed zones `refresh` before their signatures expire, off
/// the query path (a blocking thread), and hands the result to the health
/// writer, which publishes it.
async fn resign(
    shared: Arc<Shared>,
    commands: mpsc::Sender<crate::state::Command>,
    shutdown: CancellationToken,
) {
    loop {
        let snap = shared.load_full();
        let now = crate::wallclock::unix_secs() as u32;
        if snap.dnssec.due(now) {
            let (generation, current) = (snap.generation, snap.dnssec.clone());
            drop(snap);
            let started = Instant::now();
            let Ok(dnssec) = tokio::task::spawn_blocking(move || current.resign(now)).await else {
                return;
            };
            tracing::info!(
                elapsed_ms = started.elapsed().as_millis() as u64,
                expires = dnssec.earliest_expiry().unwrap_or(0),
                "zones re-signed"
            );
            let dnssec = Arc::new(dnssec);
            if commands
                .send(crate::state::Command::Resign { dnssec, generation })
                .await
                .is_err()
            {
                return;
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
        }
    }
}

impl Running {
    /// A token that, when cancelled, makes `serve` shut down.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Re-reads the config and zones; on any error the old config keeps serving.
    pub async fn reload(&self) -> Result<crate::control::Reloaded, ConfigErrors> {
        self.control.reload().await
    }

    /// Stops everything: probes stop, proxies drain, DNS finishes in-flight TCP queries.
    pub async fn stop(self) {
        self.control.drain_proxies().await;
        self.cluster_stop.cancel();
        self.shutdown.cancel();
        self.dns.shutdown().await;
        self.tasks.close();
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), self.tasks.wait()).await;
    }
}
