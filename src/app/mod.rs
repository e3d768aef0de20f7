//! app: starts and stops everything `geosteer serve` runs, from one loaded
//! config: the DNS listeners, the health writer and probes, the admin API and
//! the proxies. Tests start it in-process on port 0.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::config::ConfigErrors;
use crate::dns::DnsHandler;
use crate::dns::metrics::DnsMetrics;
use crate::dns::server::{BindError, DnsServer};
use crate::health::HealthView;
use crate::state::{Loaded, Shared, Snapshot};

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
    /// Bound DNS addresses (UDP and TCP), in config order.
    pub dns_addrs: Vec<SocketAddr>,
    dns: DnsServer,
    shutdown: CancellationToken,
}

/// Loads the config at `path` and starts serving it.
pub async fn start(path: &Path) -> Result<Running, StartError> {
    let loaded = Loaded::from_path(path)?;
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    let health = Arc::new(HealthView::initial(&loaded.config));
    let snapshot = Snapshot {
        generation: 1,
        config: loaded.config.clone(),
        steering: loaded.steering.clone(),
        zones: loaded.zones.clone(),
        geo: loaded.geo.clone(),
        health,
    };
    let shared = Arc::new(Shared::new(snapshot));
    let metrics = Arc::new(DnsMetrics::default());
    let handler = DnsHandler::new(shared.clone(), metrics);
    let udp_sockets = match loaded.config.server.udp_workers {
        0 => std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        n => n as usize,
    };
    let dns = DnsServer::bind(&loaded.config.server.dns_listen, udp_sockets, handler)?;
    Ok(Running {
        config_path: path.to_path_buf(),
        shared,
        dns_addrs: dns.addrs.clone(),
        dns,
        shutdown: CancellationToken::new(),
    })
}

impl Running {
    /// A token that, when cancelled, makes [`Running::run_until_shutdown`] return.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Re-reads the config and zones; on any error the old config keeps serving.
    pub async fn reload(&self) -> Result<(), ConfigErrors> {
        let loaded = Loaded::from_path(&self.config_path)?;
        for w in &loaded.warnings {
            tracing::warn!("{w}");
        }
        let current = self.shared.load_full();
        self.shared.store(Snapshot {
            generation: current.generation + 1,
            health: Arc::new(HealthView::initial(&loaded.config)),
            config: loaded.config,
            steering: loaded.steering,
            zones: loaded.zones,
            geo: loaded.geo,
        });
        tracing::info!("reloaded {}", self.config_path.display());
        Ok(())
    }

    /// Stops everything: DNS finishes in-flight TCP queries.
    pub async fn stop(self) {
        self.shutdown.cancel();
        self.dns.shutdown().await;
    }
}
