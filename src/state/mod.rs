//! state: the one immutable [`Snapshot`] of config and health that every query
//! reads, behind a single `ArcSwap` ([`Shared`]), so a query never sees config
//! and health out of step, and takes no lock that probes or the admin API hold.
//!
//! - `command`: what the control surface and the fleet link ask of the one
//!   health writer ([`Command`]); it lives here, below both, so neither
//!   names the other for it.

mod command;

pub use command::Command;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;

use crate::config::{self, Config, ConfigError, ConfigErrors, Warning};
use crate::geo::GeoDb;
use crate::health::HealthView;
use crate::metrics::Registry;
use crate::steer::SteeringTable;
use crate::zone::Zones;

/// Everything a query needs, immutable.
pub struct Snapshot {
    /// Bumped on every config load; health observations carry it.
    pub generation: u64,
    pub config: Arc<Config>,
    pub steering: Arc<SteeringTable>,
    pub zones: Arc<Zones>,
    /// The signed zones' signatures (`[dnssec]`), re-made in the background.
    pub dnssec: Arc<crate::dnssec::Signatures>,
    pub geo: Arc<GeoDb>,
    pub health: Arc<HealthView>,
}

/// The compiled, not yet published, result of loading a config: what a reload
/// swaps in. Building it touches files but binds no sockets.
pub struct Loaded {
    pub config: Arc<Config>,
    pub steering: Arc<SteeringTable>,
    pub zones: Arc<Zones>,
    pub dnssec: Arc<crate::dnssec::Signatures>,
    pub geo: Arc<GeoDb>,
    pub warnings: Vec<Warning>,
    /// Where the load's time went, for the start-up and reload logs.
    pub timing: LoadTiming,
}

/// Wall time of each load phase.
#[derive(Debug, Clone, Copy, Default)]
pub struct LoadTiming {
    /// Read, parse and validate the config file.
    pub config: Duration,
    /// Zone files and GeoIP databases.
    pub zones: Duration,
    /// The steering table (names, prefix tries, counters).
    pub compile: Duration,
}

impl LoadTiming {
    pub fn total(&self) -> Duration {
        self.config + self.zones + self.compile
    }
}

impl Loaded {
    /// Logs the operator warnings and where the load's time went (`event`:
    /// start-up or reload).
    /// Logs the load: each warning at WARN; the notes (facts about the
    /// config, see [`Warning::note`](crate::config::Warning)) at INFO at
    /// start-up only, so a reload does not repeat them.
    pub fn log(&self, event: &str, start: bool) {
        for w in &self.warnings {
            match (w.note, start) {
                (false, _) => tracing::warn!("{w}"),
                (true, true) => tracing::info!("{w}"),
                (true, false) => {}
            }
        }
        let t = self.timing;
        tracing::info!(
            total_ms = t.total().as_millis() as u64,
            config_ms = t.config.as_millis() as u64,
            zones_ms = t.zones.as_millis() as u64,
            compile_ms = t.compile.as_millis() as u64,
            names = self.steering.len(),
            pools = self.config.pools.len(),
            "{event}"
        );
    }

    /// parse → validate → load zones and GeoIP → compile.
    pub fn from_path(path: &Path, registry: &Registry) -> Result<Loaded, ConfigErrors> {
        let started = Instant::now();
        let (config, warnings) = config::load(path, &host_name())?;
        let config_time = started.elapsed();
        let mut loaded = Loaded::from_config(config, warnings, registry).map_err(|mut e| {
            config::locate_lines(path, &mut e);
            e
        })?;
        loaded.timing.config = config_time;
        Ok(loaded)
    }

    pub fn from_config(
        mut config: Config,
        mut warnings: Vec<Warning>,
        registry: &Registry,
    ) -> Result<Loaded, ConfigErrors> {
        let started = Instant::now();
        // No `cookie_secret`: one made now (a reload keeps the first, see
        // `control`), so DNS cookies always have a secret.
        if config.server.cookie_secrets.is_empty() {
            config.server.cookie_secrets = vec![config::CookieSecret(rand::random())];
            config.server.cookie_secret_generated = true;
        }
        let zones = Zones::load(&config);
        let geo = GeoDb::open(&config.server.geoip)
            .map_err(|e| ConfigError::new(&config.path, "server.geoip", e.to_string()));
        let (mut zones, geo) = match (zones, geo) {
            (Ok(z), Ok(g)) => (z, g),
            (z, g) => {
                let mut errors = z.err().map(|e| e.0).unwrap_or_default();
                errors.extend(g.err());
                return Err(ConfigErrors(errors));
            }
        };
        warnings.append(&mut zones.warnings);
        let now = crate::wallclock::unix_secs() as u32;
        let dnssec = crate::dnssec::Signatures::build(&config, &zones, now)?;
        let zones_time = started.elapsed();
        let started = Instant::now();
        let steering = SteeringTable::compile(&config, registry);
        let timing = LoadTiming {
            config: Duration::ZERO,
            zones: zones_time,
            compile: started.elapsed(),
        };
        Ok(Loaded {
            config: Arc::new(config),
            steering: Arc::new(steering),
            zones: Arc::new(zones),
            dnssec: Arc::new(dnssec),
            geo: Arc::new(geo),
            warnings,
            timing,
        })
    }
}

/// This machine's host name, the default `[cluster] node` ("" when it cannot
/// be read): the kernel's UTS name where Linux publishes it, elsewhere
/// `HOSTNAME`; of a fully qualified name, the first label. Read here, in the
/// shell, and passed to `config::load`, so the config's parsing stays pure.
pub fn host_name() -> String {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_default();
    let name = name.trim();
    name.split('.').next().unwrap_or(name).to_string()
}

/// The published snapshot. Readers call [`Shared::load`] once per query.
pub struct Shared {
    current: ArcSwap<Snapshot>,
    /// What changed and when (status page, `/api/v1/events`): written by the
    /// health writer only, read by the admin API; never by queries.
    pub events: Arc<crate::events::EventLog>,
    /// With `[cluster] config = "etcd"`: what this node did with the
    /// fleet's config revisions (written by `cluster::fleetcfg`, read by the
    /// fleet link and the admin API; never by queries).
    pub fleet_config: Arc<std::sync::Mutex<FleetConfigState>>,
}

/// What a node did with the fleet config revisions it was sent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FleetConfigState {
    /// The newest revision that did not load here, and why (None once a
    /// later one loads).
    pub failed: Option<(u64, String)>,
}

impl Shared {
    pub fn new(snapshot: Snapshot) -> Shared {
        Shared {
            current: ArcSwap::from_pointee(snapshot),
            events: Arc::default(),
            fleet_config: Arc::default(),
        }
    }

    /// A copy of [`Shared::fleet_config`].
    pub fn fleet_config(&self) -> FleetConfigState {
        self.fleet_config
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn load(&self) -> arc_swap::Guard<Arc<Snapshot>> {
        self.current.load()
    }

    pub fn load_full(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// Publishes `snapshot` and returns the one it replaced, so the caller
    /// decides where the old one is freed (see `app::health_writer`).
    pub fn swap(&self, snapshot: Snapshot) -> Arc<Snapshot> {
        self.current.swap(Arc::new(snapshot))
    }

    /// A new snapshot with `health` replaced, config reused. Only the health
    /// writer calls this, so it never races a reload (the writer does those too).
    pub fn publish_health(&self, health: Arc<HealthView>) {
        self.current.rcu(|cur| Snapshot {
            generation: cur.generation,
            config: cur.config.clone(),
            steering: cur.steering.clone(),
            zones: cur.zones.clone(),
            dnssec: cur.dnssec.clone(),
            geo: cur.geo.clone(),
            health: health.clone(),
        });
    }

    /// A new snapshot with the signatures replaced (the health writer's
    /// re-signing), everything else reused.
    pub fn publish_signatures(&self, dnssec: Arc<crate::dnssec::Signatures>) {
        self.current.rcu(|cur| Snapshot {
            generation: cur.generation,
            config: cur.config.clone(),
            steering: cur.steering.clone(),
            zones: cur.zones.clone(),
            dnssec: dnssec.clone(),
            geo: cur.geo.clone(),
            health: cur.health.clone(),
        });
    }
}
