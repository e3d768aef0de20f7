//! cluster: a node's link to its fleet through etcd (IO shell).
//!
//! One task per node. It holds a lease, publishes this node's verdicts under
//! it (only when they change: [`store::worth_writing`]), watches the fleet's
//! prefix, and hands what it heard ([`FleetView`]) to the health writer,
//! which counts the votes and publishes the snapshot queries read. Nothing
//! on the query path waits for etcd: when etcd is unreachable, the node keeps
//! answering from its own live verdicts plus the others' last ones, frozen,
//! for `partition_grace` (a lost link is not a dead vantage: every node cut
//! off at once keeps agreeing), then from its own alone. A vantage whose
//! lease expires while this node is connected is dropped at once. On reconnection it
//! re-publishes everything, reads the whole prefix at one revision and
//! watches from the next, so no update falls between the read and the watch.
//!
//! Drains made through this node's admin API are written to etcd
//! (`PREFIX/drain/...`, no lease) and applied by every node from its watch.
//! While etcd is unreachable they are refused, except an undrain asked for
//! as local (`undrain --local`): it lifts the drain on this node only, and
//! when etcd answers again it is written there, unless the drain changed
//! in etcd meanwhile (then etcd wins); either way an event says so.
//!
//! etcd losing its data (wiped, replaced, restored from an older snapshot)
//! is not taken for an operator lifting every drain: on reconnection, before
//! writing anything, the node compares the store with what it last saw
//! ([`store::lost`]: cluster id, revision, the fleet's epoch) and, when it
//! lost its data, keeps its last known drains, weights, overrides and pushed
//! health and writes them back ([`store::restore_plan`]), or follows the node
//! that did; an event and `geosteer_cluster_etcd_data_lost_total` say so.
//!
//! It logs a config skew (a fresh node publishing another config hash than
//! this node's) once when it appears or changes, and once when it clears.
//!
//! - `etcd`: the v3 calls, over etcd's JSON gateway.
//! - `store`: key layout, applying watch events, what to write.
//! - `drains`: drain and undrain requests through etcd, local undrains
//!   reconciled.
//! - `loads`: reported loads and each node's proxy rate through etcd.

mod drains;
pub mod etcd;
pub mod fleetcfg;
mod loads;
pub mod store;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::{Notify, mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::{ClusterConfig, EndpointKey};
use crate::health::fleet::{FleetView, NodeInfo};
use crate::metrics::ClusterCounters;
use crate::state::Command;
use crate::state::Shared;
use crate::wallclock::unix_ms;
use drains::refusal;
use etcd::{Etcd, EtcdError, Event, Watch, WatchMessage, Write};
use store::{AfterLoss, Epoch, Key, Layout, Ledger, Seen};

/// Pause between reconnection attempts.
const RETRY: Duration = Duration::from_secs(1);
/// What was heard is handed to the writer at most this often.
const PUSH_EVERY: Duration = Duration::from_millis(50);

/// What a drain or undrain did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// Written to etcd: every node applies it.
    FleetWide,
    /// Lifted on this node only, pending etcd (`undrain --local` while
    /// etcd is unreachable).
    Local,
    /// A local undrain of an endpoint that is not drained: nothing to lift.
    NotDrained,
}

/// The handle the admin API's drains go through.
#[derive(Clone)]
pub struct Cluster {
    requests: mpsc::Sender<Request>,
}

/// A fleet-wide runtime record beside the drains.
#[derive(Debug, Clone)]
pub enum Lever {
    /// `PREFIX/weight/...`: Some(weight) or None (back to the config's).
    Weight(Option<u32>),
    /// `PREFIX/override/...`: Some(override) or None (cleared).
    Override(Option<crate::health::Forced>),
    /// `PREFIX/pushed/...`: a pushed health, holding until its expiry.
    Pushed(crate::health::Pushed),
}

impl Lever {
    /// What it is, for messages.
    fn what(&self) -> &'static str {
        match self {
            Lever::Weight(_) => "weight",
            Lever::Override(_) => "override",
            Lever::Pushed(_) => "pushed health",
        }
    }
}

enum Request {
    Record {
        pool: String,
        address: EndpointKey,
        lever: Lever,
        done: oneshot::Sender<Result<(), String>>,
    },
    Drain {
        pool: String,
        address: EndpointKey,
        draining: bool,
        /// An undrain that may be applied here only while etcd is unreachable.
        local: bool,
        /// A gradual drain: the ramp's length.
        over: Option<Duration>,
        done: oneshot::Sender<Result<Applied, String>>,
    },
    /// A pool's reported load, fleet-wide (`loads`).
    Load {
        pool: String,
        value: f64,
        ttl_ms: u64,
        done: oneshot::Sender<Result<(), String>>,
    },
}

impl Cluster {
    /// Starts the fleet link. The returned receiver fires once the first
    /// sync with etcd is done or has failed (start-up waits on it, bounded).
    pub fn start(
        config: &ClusterConfig,
        shared: Arc<Shared>,
        commands: mpsc::Sender<Command>,
        published: Arc<Notify>,
        counters: Arc<ClusterCounters>,
        cancel: CancellationToken,
    ) -> Result<(Cluster, oneshot::Receiver<()>, tokio::task::JoinHandle<()>), String> {
        let etcd = Etcd::new(config)?;
        let (tx, rx) = mpsc::channel(16);
        let (first_tx, first_rx) = oneshot::channel();
        let node: Arc<str> = Arc::from(config.node.as_str());
        let link = Link {
            etcd,
            layout: Layout::new(&config.prefix),
            config: config.clone(),
            instance: format!("{:016x}", rand::random::<u64>()),
            lease: None,
            ledger: Ledger::default(),
            rates: loads::RateLedger::default(),
            node_written: None,
            view: FleetView {
                node,
                partition_grace_ms: config.partition_grace.as_millis() as u64,
                ..FleetView::default()
            },
            shared,
            commands,
            published,
            counters,
            requests: rx,
            skew: None,
            first_sync: Some(first_tx),
            push_at: None,
            started: unix_ms(),
            seen: None,
        };
        let handle = tokio::spawn(link.run(cancel));
        Ok((Cluster { requests: tx }, first_rx, handle))
    }

    /// Sets or clears a runtime weight or override, or records a pushed
    /// health, fleet-wide: written to etcd, then applied here before this
    /// returns (the other nodes apply it from their watch). Fails while etcd
    /// is unreachable.
    pub async fn record(
        &self,
        pool: &str,
        address: EndpointKey,
        lever: Lever,
    ) -> Result<(), String> {
        let (done, wait) = oneshot::channel();
        self.requests
            .send(Request::Record {
                pool: pool.to_string(),
                address,
                lever,
                done,
            })
            .await
            .map_err(|_| "the fleet link is not running".to_string())?;
        wait.await
            .map_err(|_| "the fleet link stopped".to_string())?
    }

    /// Reports a pool's load fleet-wide: written to etcd, then applied here
    /// before this returns. Fails while etcd is unreachable.
    pub async fn report_load(&self, pool: &str, value: f64, ttl: Duration) -> Result<(), String> {
        let (done, wait) = oneshot::channel();
        self.requests
            .send(Request::Load {
                pool: pool.to_string(),
                value,
                ttl_ms: ttl.as_millis() as u64,
                done,
            })
            .await
            .map_err(|_| "the fleet link is not running".to_string())?;
        wait.await
            .map_err(|_| "the fleet link stopped".to_string())?
    }

    /// Drains (or returns) an endpoint fleet-wide: written to etcd, then
    /// applied here before this returns. Fails when etcd is unreachable,
    /// except a `local` undrain, then applied on this node only. A drain
    /// `over` a period ramps the endpoint's weight down on every node from
    /// the same start, then drains it.
    pub async fn drain(
        &self,
        pool: &str,
        address: EndpointKey,
        draining: bool,
        local: bool,
        over: Option<Duration>,
    ) -> Result<Applied, String> {
        let (done, wait) = oneshot::channel();
        self.requests
            .send(Request::Drain {
                pool: pool.to_string(),
                address,
                draining,
                local: local && !draining,
                over: over.filter(|_| draining),
                done,
            })
            .await
            .map_err(|_| "the fleet link is not running".to_string())?;
        wait.await
            .map_err(|_| "the fleet link stopped".to_string())?
    }
}

struct Link {
    etcd: Etcd,
    layout: Layout,
    config: ClusterConfig,
    instance: String,
    lease: Option<i64>,
    /// This node's verdicts as last written under the current lease.
    ledger: Ledger,
    /// This node's proxy rates as last written under the current lease.
    rates: loads::RateLedger,
    /// The node record as last written.
    node_written: Option<String>,
    view: FleetView,
    shared: Arc<Shared>,
    commands: mpsc::Sender<Command>,
    published: Arc<Notify>,
    counters: Arc<ClusterCounters>,
    requests: mpsc::Receiver<Request>,
    /// The config skew last logged: this node's hash and the fresh nodes
    /// running another one (None before the first check).
    skew: Option<(String, BTreeMap<Arc<str>, String>)>,
    first_sync: Option<oneshot::Sender<()>>,
    /// A view change waits here to be handed over (coalesced).
    push_at: Option<Instant>,
    /// Unix ms this node started.
    started: u64,
    /// What this node last saw of etcd's store: a store that lost its data
    /// is told from one that moved on by it (None before the first sync).
    seen: Option<Seen>,
}

/// Why a connected session ended.
enum End {
    Stop,
    Lost(String),
}

impl Link {
    async fn run(mut self, cancel: CancellationToken) {
        let mut outage_logged = false;
        loop {
            match self.connect().await {
                Ok(watch) => {
                    self.counters.syncs.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(
                        node = %self.view.node,
                        vantages = self.view.vantages(),
                        "fleet: synced with etcd"
                    );
                    self.first_sync.take().map(|s| s.send(()));
                    match self.session(watch, &cancel).await {
                        End::Stop => break,
                        End::Lost(why) => {
                            tracing::warn!(
                                grace_ms = self.view.partition_grace_ms,
                                "fleet: lost etcd ({why}); keeping the last fleet view (the others' verdicts frozen) for partition_grace, then deciding alone"
                            );
                            outage_logged = true;
                        }
                    }
                }
                Err(e) => {
                    if !outage_logged {
                        tracing::warn!(
                            "fleet: cannot reach etcd ({e}); keeping the verdicts already heard for partition_grace, then deciding alone"
                        );
                        outage_logged = true;
                    }
                    self.first_sync.take().map(|s| s.send(()));
                }
            }
            self.set_connected(false);
            self.push_now().await;
            if self.wait_to_retry(&cancel).await {
                break;
            }
        }
        // Withdraw at once rather than after the lease's TTL.
        if let Some(lease) = self.lease.take() {
            let _ = tokio::time::timeout(Duration::from_secs(1), self.etcd.revoke(lease)).await;
        }
    }

    /// etcd answered at `now` (Unix ms).
    fn contact(&mut self, now: u64) {
        self.view.last_contact = now;
        self.counters.last_contact_ms.store(now, Ordering::Relaxed);
    }

    /// Logs a config skew once when it appears or changes, once when it
    /// clears: not on every keep-alive.
    fn check_skew(&mut self) {
        let own = format!("{:016x}", self.shared.load().config.fingerprint);
        let others: BTreeMap<Arc<str>, String> = self
            .view
            .remote
            .iter()
            .filter_map(|(name, node)| {
                let config = &node.info.as_ref()?.config;
                (*config != own).then(|| (name.clone(), config.clone()))
            })
            .collect();
        let was_skewed = self.skew.as_ref().is_some_and(|(_, o)| !o.is_empty());
        if self
            .skew
            .as_ref()
            .is_some_and(|(h, o)| *o == others && (o.is_empty() || *h == own))
        {
            return;
        }
        if !others.is_empty() {
            let list: Vec<String> = others.iter().map(|(n, h)| format!("{n} {h}")).collect();
            tracing::warn!(
                config = %own,
                "fleet: config skew: {} run another config than this node's ({own}); nodes answer alike only with the same config",
                list.join(", ")
            );
        } else if was_skewed {
            tracing::info!(
                config = %own,
                "fleet: config skew cleared: every fresh node runs this node's config"
            );
        }
        self.skew = Some((own, others));
    }

    fn set_connected(&mut self, connected: bool) {
        self.view.connected = connected;
        self.counters
            .connected
            .store(u64::from(connected), Ordering::Relaxed);
    }

    /// While cut off: refuse drains, drop the frozen remote verdicts once
    /// `partition_grace` has passed. Returns true when stopping.
    async fn wait_to_retry(&mut self, cancel: &CancellationToken) -> bool {
        let until = Instant::now() + RETRY;
        loop {
            if self.view.expire(unix_ms()) {
                tracing::warn!(
                    vantages = self.view.vantages(),
                    "fleet: partition_grace passed while etcd is unreachable: the frozen verdicts are dropped, this node decides alone"
                );
                self.push_now().await;
            }
            tokio::select! {
                _ = cancel.cancelled() => return true,
                _ = tokio::time::sleep_until(until) => return false,
                Some(req) = self.requests.recv() => match req {
                    Request::Drain { pool, address, local: true, done, .. } => {
                        let applied = self.undrain_locally(&pool, address.clone()).await;
                        let _ = done.send(Ok(applied));
                    }
                    Request::Drain { pool, address, draining, done, .. } => {
                        let _ = done.send(Err(refusal(&pool, &address, draining, "etcd is unreachable")));
                    }
                    Request::Record { lever, done, .. } => {
                        let _ = done.send(Err(format!("etcd is unreachable: a fleet-wide {} cannot be recorded now", lever.what())));
                    }
                    req @ Request::Load { .. } => loads::refuse(req),
                },
                // Keep the local verdicts moving into `written`-less state:
                // nothing to do until etcd is back.
                _ = self.published.notified() => {}
            }
        }
    }

    /// Keeps what the watch says of the store (its revision, a new epoch);
    /// returns why the store lost its data when the epoch was deleted (the
    /// prefix wiped under a running fleet), before the batch is applied.
    fn note_watch(&mut self, events: &[Event], revision: i64) -> Option<String> {
        let epoch_key = self.layout.epoch();
        let seen = self.seen.as_mut()?;
        seen.revision = seen.revision.max(revision);
        for e in events {
            match e {
                Event::Put(kv) if kv.key == epoch_key => seen.epoch = Some(kv.value.clone()),
                Event::Delete(key) if *key == epoch_key => {
                    return Some("the fleet's epoch key was deleted".into());
                }
                _ => {}
            }
        }
        None
    }

    /// The first node to find no epoch creates one (if no other did
    /// meanwhile: the watch then brings that one).
    async fn create_epoch(&mut self, seen: &mut Seen) -> Result<(), EtcdError> {
        let epoch = Epoch {
            id: format!("{:016x}", rand::random::<u64>()),
            by: self.view.node.to_string(),
            at: unix_ms(),
            restored: false,
        };
        let value = serde_json::to_string(&epoch).unwrap_or_default();
        let key = self.layout.epoch();
        let put = [Write::Put(key.clone(), value.clone(), 0)];
        if self.etcd.write_if(&key, None, &put).await? {
            self.counters.txns.fetch_add(1, Ordering::Relaxed);
            self.counters.puts.fetch_add(1, Ordering::Relaxed);
            seen.epoch = Some(value.into_bytes());
        }
        Ok(())
    }

    /// etcd lost its data (`why`): this node writes back its last known
    /// drains, weights, overrides and pushed health (`self.view`, kept
    /// through the outage) over what etcd holds now (`view`, just read;
    /// `drains`: the drain keys' values as read), under a new epoch and
    /// guarded by the one read, unless another node did so already; then
    /// it follows etcd. Either way an event and a metric say so.
    async fn recover(
        &mut self,
        view: &mut FleetView,
        drains: &mut HashMap<String, Vec<u8>>,
        seen: &mut Seen,
        why: &str,
    ) -> Result<(), EtcdError> {
        let before = self.seen.clone().unwrap_or_else(|| seen.clone());
        let reason = match store::after_loss(&before, seen.epoch.as_deref()) {
            AfterLoss::Follow(epoch) => {
                tracing::warn!(
                    by = %epoch.by,
                    "fleet: etcd lost its data ({why}); node {} wrote its last known state back already: following etcd",
                    epoch.by
                );
                format!(
                    "etcd lost its data ({why}); node {} wrote its last known drains, weights, overrides and pushed health back: this node follows etcd",
                    epoch.by
                )
            }
            AfterLoss::Restore => {
                let epoch = Epoch {
                    id: format!("{:016x}", rand::random::<u64>()),
                    by: self.view.node.to_string(),
                    at: unix_ms(),
                    restored: true,
                };
                let epoch_value = serde_json::to_string(&epoch).unwrap_or_default();
                let epoch_key = self.layout.epoch();
                let mut writes = vec![Write::Put(epoch_key.clone(), epoch_value.clone(), 0)];
                writes.extend(store::restore_plan(&self.layout, &self.view, view));
                let split = writes.len().min(etcd::MAX_TXN_OPS);
                let (first, rest) = writes.split_at(split);
                if !self
                    .etcd
                    .write_if(&epoch_key, seen.epoch.as_deref(), first)
                    .await?
                {
                    // Another node wrote its state back meanwhile: read
                    // again (after the pause), and follow it then.
                    return Err(EtcdError::Refused(
                        "etcd lost its data; another node is writing its state back".into(),
                    ));
                }
                self.counters.txns.fetch_add(1, Ordering::Relaxed);
                if !rest.is_empty() {
                    self.write(rest).await?;
                }
                for w in first {
                    match w {
                        Write::Put(..) => &self.counters.puts,
                        Write::Delete(_) => &self.counters.deletes,
                    }
                    .fetch_add(1, Ordering::Relaxed);
                }
                let now = unix_ms();
                for w in &writes {
                    let event = match w {
                        Write::Put(key, value, _) => {
                            if matches!(self.layout.parse(key), Some(Key::Drain { .. })) {
                                drains.insert(key.clone(), value.clone().into_bytes());
                            }
                            Event::Put(etcd::Kv {
                                key: key.clone(),
                                value: value.clone().into_bytes(),
                            })
                        }
                        Write::Delete(key) => {
                            drains.remove(key);
                            Event::Delete(key.clone())
                        }
                    };
                    store::apply(view, &self.layout, &self.instance, &event, now);
                }
                seen.epoch = Some(epoch_value.into_bytes());
                let (d, w, o, p, l) = store::runtime_counts(&self.view);
                tracing::warn!(
                    drains = d,
                    weights = w,
                    overrides = o,
                    pushed = p,
                    loads = l,
                    writes = writes.len() - 1,
                    "fleet: etcd lost its data ({why}); this node's last known drains, weights, overrides and pushed health are kept and written back"
                );
                format!(
                    "etcd lost its data ({why}); this node kept its last known state and wrote it back: {d} drains, {w} weights, {o} overrides, {p} pushed health, {l} reported loads"
                )
            }
        };
        self.counters.data_lost.fetch_add(1, Ordering::Relaxed);
        self.shared.events.record([crate::events::Event::fleet(
            unix_ms(),
            "etcd_data_lost",
            reason,
        )]);
        Ok(())
    }

    /// Lease, node record, this node's verdicts, a full read, then a watch.
    async fn connect(&mut self) -> Result<Watch, EtcdError> {
        self.etcd.authenticate().await?;
        // Whether etcd lost its data, judged before this node writes
        // anything (its writes move the revision of a wiped store on).
        let epoch_key = self.layout.epoch();
        let (header, kvs) = self.etcd.range_at(&epoch_key).await?;
        let probe = Seen {
            cluster_id: header.cluster_id,
            revision: header.revision,
            epoch: kvs
                .into_iter()
                .find(|kv| kv.key == epoch_key)
                .map(|kv| kv.value),
        };
        let lost = self
            .seen
            .as_ref()
            .and_then(|before| store::lost(before, &probe));
        let lease = match self.lease {
            Some(id) if self.etcd.keep_alive(id).await? => id,
            _ => {
                let id = self.etcd.grant(self.config.lease).await?;
                self.lease = Some(id);
                id
            }
        };
        // Whatever was written before the outage may be partial or under a
        // lease that expired: write everything again.
        self.ledger.forget();
        self.rates.forget();
        self.node_written = None;
        self.publish(lease).await?;
        let (header, kvs) = self.etcd.range_at(&self.layout.root).await?;
        let revision = header.revision;
        let mut seen = Seen {
            cluster_id: header.cluster_id,
            revision,
            epoch: kvs
                .iter()
                .find(|kv| kv.key == epoch_key)
                .map(|kv| kv.value.clone()),
        };
        let mut view = FleetView {
            node: self.view.node.clone(),
            partition_grace_ms: self.view.partition_grace_ms,
            departed: std::mem::take(&mut self.view.departed),
            ..FleetView::default()
        };
        let now = unix_ms();
        let own = format!("{}health/{}/", self.layout.root, self.view.node);
        let mut stale = Vec::new();
        let mut drains = HashMap::new();
        for kv in kvs {
            if kv.key.starts_with(&own) && !self.ledger.holds(&kv.key) {
                // Left by an earlier run of this node (a removed endpoint).
                stale.push(Write::Delete(kv.key.clone()));
            }
            if (lost.is_some() || !self.view.local_undrains.is_empty())
                && matches!(self.layout.parse(&kv.key), Some(Key::Drain { .. }))
            {
                drains.insert(kv.key.clone(), kv.value.clone());
            }
            store::apply(
                &mut view,
                &self.layout,
                &self.instance,
                &Event::Put(kv),
                now,
            );
        }
        if !stale.is_empty() {
            self.write(&stale).await?;
        }
        match lost {
            // Before the view is replaced: until then the node keeps
            // answering from what it knew.
            Some(why) => {
                self.recover(&mut view, &mut drains, &mut seen, &why)
                    .await?
            }
            None if seen.epoch.is_none() => self.create_epoch(&mut seen).await?,
            None => {}
        }
        // The store as it is now (a failure below must not make this node
        // find the same loss again on the next try).
        self.seen = Some(seen.clone());
        self.reconcile(&mut view, &drains).await?;
        let watch = self.etcd.watch(&self.layout.root, revision + 1).await?;
        self.view = view;
        self.contact(now);
        self.set_connected(true);
        self.push_now().await;
        Ok(watch)
    }

    async fn session(&mut self, mut watch: Watch, cancel: &CancellationToken) -> End {
        let lease = match self.lease {
            Some(l) => l,
            None => return End::Lost("no lease".into()),
        };
        let mut keepalive = tokio::time::interval(self.config.lease / 3);
        keepalive.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        keepalive.tick().await;
        loop {
            let push_at = self.push_at;
            tokio::select! {
                _ = cancel.cancelled() => return End::Stop,
                message = watch.next() => match message {
                    Ok(WatchMessage::Events(events)) => {
                        let now = unix_ms();
                        self.contact(now);
                        if let Some(why) = self.note_watch(&events, watch.revision()) {
                            // Not applied: the next full read finds the loss
                            // and writes back what this node knew.
                            return End::Lost(why);
                        }
                        let mut changed = false;
                        for e in &events {
                            changed |= store::apply(&mut self.view, &self.layout, &self.instance, e, now);
                        }
                        if changed {
                            self.schedule_push();
                        }
                    }
                    Ok(WatchMessage::Nothing) => {
                        self.contact(unix_ms());
                        self.note_watch(&[], watch.revision());
                    }
                    Ok(WatchMessage::Ended(why)) => return End::Lost(format!("watch ended: {why}")),
                    Err(e) => return End::Lost(e.to_string()),
                },
                _ = keepalive.tick() => {
                    self.counters.keepalives.fetch_add(1, Ordering::Relaxed);
                    match self.etcd.keep_alive(lease).await {
                        Ok(true) => self.contact(unix_ms()),
                        Ok(false) => {
                            self.lease = None;
                            return End::Lost("this node's lease expired".into());
                        }
                        Err(e) => return End::Lost(e.to_string()),
                    }
                }
                _ = self.published.notified() => {
                    if let Err(e) = self.publish(lease).await {
                        return End::Lost(e.to_string());
                    }
                }
                Some(req) = self.requests.recv() => {
                    if let Err(e) = self.request(req).await {
                        return End::Lost(e.to_string());
                    }
                }
                _ = async { tokio::time::sleep_until(push_at.unwrap_or_else(Instant::now)).await }, if push_at.is_some() => {
                    self.push_now().await;
                }
            }
        }
    }

    /// Writes this node's record and verdicts where they changed.
    async fn publish(&mut self, lease: i64) -> Result<(), EtcdError> {
        let snap = self.shared.load_full();
        let mut writes = Vec::new();
        let info = NodeInfo {
            location: self.config.location.map(|(a, b)| [a, b]),
            config: format!("{:016x}", snap.config.fingerprint),
            lease_ms: self.config.lease.as_millis() as u64,
            started: self.started,
            instance: self.instance.clone(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            config_revision: snap.config.fleet_revision,
            config_failed: self
                .shared
                .fleet_config
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .failed
                .clone(),
        };
        let record = serde_json::to_string(&info).unwrap_or_default();
        if self.node_written.as_deref() != Some(&record) {
            writes.push(Write::Put(
                self.layout.node(&self.view.node),
                record.clone(),
                lease,
            ));
        }
        if snap.generation != self.ledger.generation() {
            // A reload: carry over what is still ours, withdraw the rest.
            let old = std::mem::take(&mut self.ledger);
            let (ledger, deletes) = Ledger::new(
                &self.layout,
                &self.view.node,
                &snap.config,
                snap.generation,
                old,
            );
            self.ledger = ledger;
            writes.extend(deletes);
        }
        writes.extend(self.ledger.plan(&snap.health, lease));
        writes.extend(self.rates.plan(
            (&self.layout, &self.view.node),
            &snap.config,
            &snap.health,
            lease,
            unix_ms(),
        ));
        drop(snap);
        // A reload may have changed this node's own hash.
        self.check_skew();
        if writes.is_empty() {
            return Ok(());
        }
        match self.write(&writes).await {
            Ok(()) => {
                self.node_written = Some(record);
                Ok(())
            }
            Err(e) => {
                // Unknown what landed: write everything on reconnection.
                self.ledger.forget();
                self.rates.forget();
                Err(e)
            }
        }
    }

    async fn write(&self, writes: &[Write]) -> Result<(), EtcdError> {
        let txns = self.etcd.write(writes).await?;
        self.counters.txns.fetch_add(txns as u64, Ordering::Relaxed);
        for w in writes {
            match w {
                Write::Put(..) => &self.counters.puts,
                Write::Delete(_) => &self.counters.deletes,
            }
            .fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    fn schedule_push(&mut self) {
        if self.push_at.is_none() {
            self.push_at = Some(Instant::now() + PUSH_EVERY);
        }
    }

    /// Hands the view to the health writer and waits until it is published.
    async fn push_now(&mut self) {
        self.push_at = None;
        let (done, wait) = oneshot::channel();
        let sent = self
            .commands
            .send(Command::Fleet {
                view: Arc::new(self.view.clone()),
                done,
            })
            .await;
        if sent.is_ok() {
            let _ = wait.await;
        }
        self.check_skew();
    }
}
