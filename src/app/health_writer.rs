//! health_writer: the one owner of the [`HealthBook`]. Probes and proxies send
//! observations, the admin API sends commands (drain, weight, reload); the writer
//! applies them in order and publishes a new snapshot. Nobody else mutates health.
//!
//! A reload's old config can be large (a million subnet prefixes); whoever
//! drops its last reference pays for freeing it. The writer keeps a reference
//! until no snapshot a query may hold still uses it, then frees it on a
//! blocking thread, so neither a DNS worker nor the writer stalls on it.
//!
//! Publishing is batched: a drain or reload publishes at once (the very next
//! query sees it); observations mark the book dirty and a publish follows
//! within [`PUBLISH_EVERY`], so 50k proxied requests a second cost a handful
//! of snapshots, not 50k.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::events::{Cause, Recorder};
use crate::health::HealthBook;
use crate::health::{Observation, Source, Target};
use crate::metrics::Registry;
use crate::state::Command;
use crate::state::{Shared, Snapshot};
use crate::wallclock::unix_ms;

use super::state_file::{self, Saved};

/// Longest delay between an observation and the snapshot that shows it.
pub const PUBLISH_EVERY: Duration = Duration::from_millis(100);

/// Counts a probe result in the metrics registry (by pool and endpoint, or
/// by backend and server).
pub fn count_probe(config: &Config, generation: u64, registry: &Registry, obs: &Observation) {
    if obs.source != Source::Probe || obs.generation != generation {
        return;
    }
    let (pool, index) = match obs.target {
        Target::Endpoint(pool, index) | Target::Address(pool, index, _) => (pool, index),
        Target::Server(backend, index) => {
            if let Some(s) = config
                .backends
                .get(backend.index())
                .and_then(|b| Some((b, b.servers.get(index as usize)?)))
            {
                registry
                    .backend_probe(&s.0.name, &s.1.address.to_string())
                    .record(obs.ok, obs.latency);
            }
            return;
        }
        Target::PoolTraffic(_) => return,
    };
    let Some(p) = config.pools.get(pool.index()) else {
        return;
    };
    if let Some(e) = p.endpoints.get(index as usize) {
        registry
            .probe(&p.name, &e.key().to_string())
            .record(obs.ok, obs.latency);
    }
}

/// The heavy parts of a replaced config, held until nothing else uses them.
struct Retired {
    config: Arc<Config>,
    steering: Arc<crate::steer::SteeringTable>,
    zones: Arc<crate::zone::Zones>,
    geo: Arc<crate::geo::GeoDb>,
}

impl Retired {
    fn of(snapshot: &Snapshot) -> Retired {
        Retired {
            config: snapshot.config.clone(),
            steering: snapshot.steering.clone(),
            zones: snapshot.zones.clone(),
            geo: snapshot.geo.clone(),
        }
    }

    /// Only we hold it. Nobody can take a new reference then: the others came
    /// from snapshots that are no longer published.
    fn unused(&self) -> bool {
        Arc::strong_count(&self.config) == 1
            && Arc::strong_count(&self.steering) == 1
            && Arc::strong_count(&self.zones) == 1
            && Arc::strong_count(&self.geo) == 1
    }
}

/// Frees the retired configs no query holds any more, off the runtime's workers.
fn free_unused(retired: &mut Vec<Retired>) {
    if retired.is_empty() {
        return;
    }
    let (free, keep): (Vec<_>, Vec<_>) = std::mem::take(retired)
        .into_iter()
        .partition(Retired::unused);
    *retired = keep;
    if !free.is_empty() {
        tokio::task::spawn_blocking(move || drop(free));
    }
}

/// Publishes `book`'s view and records what changed in the event log.
fn publish(shared: &Shared, book: &HealthBook, recorder: &mut Recorder, cause: Cause) {
    let view = Arc::new(book.view());
    shared.publish_health(view.clone());
    recorder.published(&shared.load().config, view, cause, unix_ms());
}

/// Saves the operator state (drains, weights, overrides) of the snapshot
/// now published to `path`, when it changed since `last`; before the command
/// that changed it returns, so what the API acknowledged is on disk.
async fn save(path: Option<&std::path::Path>, shared: &Shared, last: &mut Option<Saved>) {
    let Some(path) = path else {
        return;
    };
    let saved = {
        let snap = shared.load();
        state_file::of(&snap.config, &snap.health)
    };
    if last.as_ref() == Some(&saved) {
        return;
    }
    let (p, s) = (path.to_path_buf(), saved.clone());
    match tokio::task::spawn_blocking(move || state_file::write(&p, &s)).await {
        Ok(Ok(())) => *last = Some(saved),
        Ok(Err(e)) => tracing::error!(
            "cannot save server.state_file {}: {e}; the change applies, but a restart would lose it",
            path.display()
        ),
        Err(e) => tracing::error!("saving server.state_file failed: {e}"),
    }
}

/// Runs the writer until `cancel`. `published` is notified after every
/// snapshot it publishes (the fleet link then writes what changed). Every
/// publish is compared with the previous one and the state changes go to
/// `shared.events` (see `crate::events`).
#[allow(
    clippy::too_many_arguments,
    reason = "the writer's inputs, each its own channel or handle"
)]
pub async fn run(
    shared: Arc<Shared>,
    registry: Arc<Registry>,
    mut book: HealthBook,
    mut observations: mpsc::Receiver<Observation>,
    mut commands: mpsc::Receiver<Command>,
    published: Arc<tokio::sync::Notify>,
    state_file: Option<std::path::PathBuf>,
    cancel: CancellationToken,
) {
    let state_file = state_file.as_deref();
    let mut saved: Option<Saved> = state_file.map(|_| {
        let snap = shared.load();
        state_file::of(&snap.config, &snap.health)
    });
    let mut tick = tokio::time::interval(PUBLISH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut dirty = false;
    let mut retired: Vec<Retired> = Vec::new();
    let mut recorder = {
        let snap = shared.load();
        Recorder::new(
            shared.events.clone(),
            &snap.config,
            snap.health.clone(),
            unix_ms(),
        )
    };
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            Some(obs) = observations.recv() => {
                {
                    let snap = shared.load();
                    count_probe(&snap.config, snap.generation, &registry, &obs);
                }
                dirty |= book.observe(obs, Instant::now(), unix_ms());
                // Take whatever else is queued before publishing.
                while let Ok(obs) = observations.try_recv() {
                    {
                        let snap = shared.load();
                        count_probe(&snap.config, snap.generation, &registry, &obs);
                    }
                    dirty |= book.observe(obs, Instant::now(), unix_ms());
                }
                // A state change may start a slow start: in the same snapshot.
                if dirty {
                    book.step_ramps(unix_ms());
                }
            }
            Some(cmd) = commands.recv() => match cmd {
                Command::Drain { pool, endpoint, draining, done } => {
                    book.set_draining(pool, endpoint, draining);
                    book.step_ramps(unix_ms());
                    publish(&shared, &book, &mut recorder, Cause::Drain);
                    published.notify_one();
                    dirty = false;
                    save(state_file, &shared, &mut saved).await;
                    let _ = done.send(());
                }
                Command::DrainOver { pool, endpoint, over, done } => {
                    if book.drain_over(pool, endpoint, over, unix_ms()) {
                        book.step_ramps(unix_ms());
                        publish(&shared, &book, &mut recorder, Cause::Drain);
                        published.notify_one();
                        dirty = false;
                    }
                    save(state_file, &shared, &mut saved).await;
                    let _ = done.send(());
                }
                Command::Load { pool, value, ttl, done } => {
                    let now = unix_ms();
                    if book.set_load(pool, value, ttl.as_millis() as u64, now) {
                        book.step_ramps(now);
                        publish(&shared, &book, &mut recorder, Cause::Health);
                        published.notify_one();
                        dirty = false;
                    }
                    let _ = done.send(());
                }
                Command::Weight { pool, endpoint, weight, done } => {
                    if book.set_weight(pool, endpoint, weight) {
                        publish(&shared, &book, &mut recorder, Cause::Weight);
                        published.notify_one();
                        dirty = false;
                    }
                    save(state_file, &shared, &mut saved).await;
                    let _ = done.send(());
                }
                Command::ServerWeight { backend, server, weight, done } => {
                    if book.set_server_weight(backend, server, weight) {
                        publish(&shared, &book, &mut recorder, Cause::Weight);
                        published.notify_one();
                        dirty = false;
                    }
                    save(state_file, &shared, &mut saved).await;
                    let _ = done.send(());
                }
                Command::Override { pool, endpoint, forced, done } => {
                    if book.set_forced(pool, endpoint, forced) {
                        publish(&shared, &book, &mut recorder, Cause::Override);
                        published.notify_one();
                        dirty = false;
                    }
                    save(state_file, &shared, &mut saved).await;
                    let _ = done.send(());
                }
                Command::Push { pool, endpoint, pushed, done } => {
                    if book.push(pool, endpoint, pushed, Instant::now(), unix_ms()) {
                        publish(&shared, &book, &mut recorder, Cause::Push);
                        published.notify_one();
                        dirty = false;
                    }
                    let _ = done.send(());
                }
                Command::Fleet { view, done } => {
                    book.set_fleet(view);
                    book.step_ramps(unix_ms());
                    publish(&shared, &book, &mut recorder, Cause::Fleet);
                    published.notify_one();
                    dirty = false;
                    let _ = done.send(());
                }
                Command::Resolved { generation, targets, result } => {
                    if book.generation() == generation {
                        let mut changed = false;
                        for target in targets {
                            changed |= book.resolved(target, result.clone(), unix_ms());
                        }
                        if changed {
                            book.step_ramps(unix_ms());
                            publish(&shared, &book, &mut recorder, Cause::Health);
                            published.notify_one();
                            dirty = false;
                        }
                    }
                }
                Command::Resign { dnssec, generation } => {
                    if shared.load().generation == generation {
                        shared.publish_signatures(dnssec);
                        published.notify_one();
                    }
                }
                Command::Reload { loaded, generation, done } => {
                    book.reload(&loaded.config, generation, Instant::now());
                    book.step_ramps(unix_ms());
                    let view = Arc::new(book.view());
                    recorder.published(&loaded.config, view.clone(), Cause::Reload(generation), unix_ms());
                    let old = shared.swap(Snapshot {
                        generation,
                        config: loaded.config,
                        steering: loaded.steering,
                        zones: loaded.zones,
                        dnssec: loaded.dnssec,
                        geo: loaded.geo,
                        health: view,
                    });
                    retired.push(Retired::of(&old));
                    drop(old);
                    published.notify_one();
                    dirty = false;
                    save(state_file, &shared, &mut saved).await;
                    let _ = done.send(());
                }
            },
            _ = tick.tick() => {
                free_unused(&mut retired);
                dirty |= book.tick(Instant::now(), unix_ms());
                dirty |= book.step_ramps(unix_ms());
                if dirty {
                    publish(&shared, &book, &mut recorder, Cause::Health);
                    published.notify_one();
                    dirty = false;
                    // An override's end.
                    save(state_file, &shared, &mut saved).await;
                }
                let snap = shared.load();
                recorder.tick(&snap.config, &snap.health, unix_ms());
            }
        }
    }
}
