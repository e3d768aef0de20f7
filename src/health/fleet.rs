//! fleet: what the other nodes of a fleet see, and the quorum over it.
//!
//! Each node publishes a [`Verdict`] per endpoint and a [`PoolVerdict`] per
//! pool under its etcd lease (`cluster` does the IO). What this node heard is
//! a [`FleetView`]; the health writer hands it to the book, which counts the
//! remote votes beside its own: an endpoint is down when more than `quorum`
//! of the fresh vantages (this one included) see it down, and a pool is
//! degraded when more than `quorum` of them judge it so. Every node counts
//! the same votes, so every node answers alike.
//!
//! Pure: no IO, no clock; times are Unix milliseconds passed in.

use crate::config::EndpointKey;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// One vantage's verdict on one endpoint, as stored in etcd
/// (`PREFIX/health/NODE/POOL/ENDPOINT`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// The vantage sees the endpoint up.
    pub up: bool,
    /// Why it is down (`refused`, `timeout`, `status 503`); None while up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Smoothed probe latency in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<f64>,
    #[serde(default)]
    /// Error rate over the vantage's window, 0.0..=1.0.
    pub error_rate: f64,
    /// Unix ms of the last state change.
    #[serde(default)]
    pub since: u64,
}

/// One vantage's judgement of a pool's error rate and latency
/// (`PREFIX/health/NODE/POOL/_pool`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PoolVerdict {
    /// Over `max_error_rate` or `max_latency`, with the node's hysteresis.
    pub degraded: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// Smoothed latency in milliseconds.
    pub latency_ms: Option<f64>,
    #[serde(default)]
    /// Error rate over the vantage's window, 0.0..=1.0.
    pub error_rate: f64,
}

/// A node's record (`PREFIX/nodes/NODE`), under its lease.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeInfo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// `[cluster] location` of the node: [latitude, longitude].
    pub location: Option<[f64; 2]>,
    /// [`crate::config::fingerprint`] of its config, in hex.
    pub config: String,
    /// Its lease's TTL: how long its verdicts outlive its silence.
    pub lease_ms: u64,
    /// Unix ms the node started.
    pub started: u64,
    /// Random per process: two processes claiming one name show up.
    pub instance: String,
    #[serde(default)]
    /// The geosteer version it runs.
    pub version: String,
    /// With the fleet's config in etcd: the revision it serves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_revision: Option<u64>,
    /// The newest fleet config revision that did not load on it, and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_failed: Option<(u64, String)>,
}

/// A fleet-wide drain (`PREFIX/drain/POOL/ENDPOINT`, no lease).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DrainRecord {
    /// The node whose admin API drained it.
    pub by: String,
    /// Unix ms of the drain.
    pub at: u64,
    /// A gradual drain (`drain --over`): the endpoint's weight ramps from
    /// full at `at` to zero at `at + over_ms`, then it is drained. Every
    /// node ramps from these same times.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub over_ms: Option<u64>,
}

impl DrainRecord {
    /// The ramp of a gradual drain, None for a plain drain.
    pub fn ramp(&self) -> Option<super::ramp::Ramp> {
        self.over_ms
            .map(|over| super::ramp::Ramp::new(super::ramp::Direction::Down, self.at, over))
    }
}

/// A fleet-wide runtime weight (`PREFIX/weight/POOL/ENDPOINT`, no lease).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WeightRecord {
    /// The runtime weight, 1-10000.
    pub weight: u32,
    /// The node that set it.
    pub by: String,
    /// When (Unix ms).
    pub at: u64,
}

/// A fleet-wide drain lifted on this node only, while etcd was unreachable.
#[derive(Debug, Clone, PartialEq)]
pub struct LocalUndrain {
    /// Unix ms it was lifted.
    pub at: u64,
    /// The drain it lifted, as etcd last said: when etcd returns holding
    /// the same record, nobody changed it meanwhile.
    pub lifted: DrainRecord,
}

/// What becomes of a local undrain once etcd answers again.
#[derive(Debug, Clone, PartialEq)]
pub enum Reconcile {
    /// etcd still holds the drain it lifted: delete it there, so the fleet
    /// agrees with this node.
    Write,
    /// The drain is gone from etcd already (undrained elsewhere meanwhile).
    Agreed,
    /// The drain in etcd changed meanwhile (drained again, by `by` at `at`):
    /// etcd wins, the endpoint is drained here again.
    EtcdWins(DrainRecord),
}

/// Decides a local undrain against what etcd holds now for its endpoint.
pub fn reconcile(local: &LocalUndrain, in_etcd: Option<&DrainRecord>) -> Reconcile {
    match in_etcd {
        None => Reconcile::Agreed,
        Some(r) if *r == local.lifted => Reconcile::Write,
        Some(r) => Reconcile::EtcdWins(r.clone()),
    }
}

/// Everything one other node has published.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RemoteNode {
    /// Its node record, once heard.
    pub info: Option<NodeInfo>,
    /// By pool name, then endpoint key.
    pub endpoints: HashMap<Arc<str>, HashMap<EndpointKey, Verdict>>,
    /// Its pool verdicts, by pool name.
    pub pools: HashMap<Arc<str>, PoolVerdict>,
}

/// What this node knows of the fleet: the other nodes' latest verdicts, the
/// drains, and whether etcd is reachable. Built by `cluster`, read by the
/// book (through the health writer) and by the admin API.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FleetView {
    /// This node's name.
    pub node: Arc<str>,
    /// etcd is reachable now.
    pub connected: bool,
    /// The other fresh nodes, by name.
    pub remote: BTreeMap<Arc<str>, RemoteNode>,
    /// Endpoints drained fleet-wide, by pool name, with etcd's record.
    pub drains: HashMap<Arc<str>, HashMap<EndpointKey, DrainRecord>>,
    /// Runtime weights set fleet-wide (`PREFIX/weight/POOL/ENDPOINT`).
    pub weights: HashMap<Arc<str>, HashMap<EndpointKey, WeightRecord>>,
    /// Overrides set fleet-wide (`PREFIX/override/POOL/ENDPOINT`).
    pub overrides: HashMap<Arc<str>, HashMap<EndpointKey, super::Forced>>,
    /// Loads shared by the fleet: reports and the nodes' proxy rates.
    pub loads: super::load::FleetLoads,
    /// Health pushed through any node (`PREFIX/pushed/POOL/ENDPOINT`), for
    /// pools of `type = "external"` monitors.
    pub pushed: HashMap<Arc<str>, HashMap<EndpointKey, super::Pushed>>,
    /// Fleet-wide drains lifted on this node only while etcd was
    /// unreachable (`undrain --local`), by (pool, endpoint): reconciled
    /// with etcd when it returns ([`reconcile`]).
    pub local_undrains: BTreeMap<(Arc<str>, EndpointKey), LocalUndrain>,
    /// Nodes heard from before that are gone, with when (Unix ms).
    pub departed: BTreeMap<Arc<str>, u64>,
    /// Unix ms of the last time etcd answered.
    pub last_contact: u64,
    /// Another process publishes under this node's name.
    pub name_clash: bool,
    /// `[cluster] partition_grace` in ms: while cut off from etcd, the other
    /// nodes' verdicts are kept (frozen) this long after the last contact.
    pub partition_grace_ms: u64,
}

impl FleetView {
    /// Drops remote nodes whose verdicts would no longer count by `now_ms`
    /// while this node is cut off from etcd: it cannot tell a vantage that
    /// died from its own lost link, so it keeps the last fleet view (the
    /// others' votes frozen, its own live) for `partition_grace_ms` after the
    /// last contact, or a node's lease if that is longer, then decides from
    /// its own. (Connected, a vantage's votes go when etcd says its lease
    /// expired.) Returns true when anything was dropped.
    pub fn expire(&mut self, now_ms: u64) -> bool {
        let stale: Vec<Arc<str>> = self
            .remote
            .iter()
            .filter(|(_, n)| now_ms >= self.kept_until(n))
            .map(|(name, _)| name.clone())
            .collect();
        for name in &stale {
            self.remote.remove(name);
            self.departed.insert(name.clone(), self.last_contact);
        }
        !stale.is_empty()
    }

    /// Fresh vantages, this node included.
    pub fn vantages(&self) -> usize {
        self.remote.len() + 1
    }

    /// Unix ms until which a cut-off node keeps `node`'s verdicts.
    fn kept_until(&self, node: &RemoteNode) -> u64 {
        let ttl = node.info.as_ref().map_or(0, |i| i.lease_ms);
        self.last_contact
            .saturating_add(ttl.max(self.partition_grace_ms))
    }

    /// Cut off from etcd and still counting the others' last verdicts.
    pub fn frozen(&self) -> bool {
        !self.connected && !self.remote.is_empty()
    }

    /// While [`frozen`](Self::frozen): the Unix ms at which the last of the
    /// kept verdicts goes and this node decides alone.
    pub fn frozen_until(&self) -> Option<u64> {
        if !self.frozen() {
            return None;
        }
        self.remote.values().map(|n| self.kept_until(n)).max()
    }
}

/// Remote votes on one endpoint, counted when the fleet view changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RemoteVotes {
    /// Remote vantages seeing the endpoint down.
    pub down: u16,
    /// Remote vantages with a verdict on it.
    pub total: u16,
}

/// Votes on one endpoint, this node's included: what `_health` and the
/// status show as `down 2/3`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Votes {
    /// Votes saying down.
    pub down: u16,
    /// Votes cast.
    pub total: u16,
}

impl Votes {
    /// `local`: this node's own verdict (None before its first probe result).
    pub fn count(remote: RemoteVotes, local: Option<bool>) -> Votes {
        let (mut down, mut total) = (remote.down, remote.total);
        if let Some(up) = local {
            total += 1;
            down += u16::from(!up);
        }
        Votes { down, total }
    }

    /// Down when more than `quorum` of the votes say so; None without votes.
    pub fn down(&self, quorum: f64) -> Option<bool> {
        (self.total > 0).then(|| f64::from(self.down) > quorum * f64::from(self.total))
    }
}

/// Another vantage's pool latencies, for the `latency` policy's nearest
/// vantage: indexed like the config's pools.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteVantage {
    /// The vantage's node name.
    pub node: Arc<str>,
    /// Its location: (latitude, longitude).
    pub location: (f64, f64),
    /// Its latency to each pool, indexed like the config's pools.
    pub pool_latency: Vec<Option<Duration>>,
}

impl FleetView {
    /// Whether `address` of `pool` is drained here: drained fleet-wide and
    /// not undrained locally.
    pub fn drained(&self, pool: &str, address: &EndpointKey) -> bool {
        self.drain_record(pool, address).is_some() && !self.undrained_locally(pool, address)
    }

    /// The fleet-wide runtime weight of `address` of `pool`.
    pub fn weight(&self, pool: &str, address: &EndpointKey) -> Option<u32> {
        self.weights
            .get(pool)
            .and_then(|m| m.get(address))
            .map(|r| r.weight)
    }

    /// The fleet-wide override of `address` of `pool`.
    pub fn forced(&self, pool: &str, address: &EndpointKey) -> Option<&super::Forced> {
        self.overrides.get(pool).and_then(|m| m.get(address))
    }

    /// The health last pushed for `address` of `pool` through any node.
    pub fn pushed(&self, pool: &str, address: &EndpointKey) -> Option<&super::Pushed> {
        self.pushed.get(pool).and_then(|m| m.get(address))
    }

    /// etcd's record of a fleet-wide drain of `address` of `pool`, as it
    /// applies here: None when undrained locally.
    pub fn drain_here(&self, pool: &str, address: &EndpointKey) -> Option<&DrainRecord> {
        self.drain_record(pool, address)
            .filter(|_| !self.undrained_locally(pool, address))
    }

    /// etcd's record of a fleet-wide drain of `address` of `pool`.
    pub fn drain_record(&self, pool: &str, address: &EndpointKey) -> Option<&DrainRecord> {
        self.drains.get(pool).and_then(|m| m.get(address))
    }

    /// Whether this node lifted the fleet-wide drain of `address` of `pool`
    /// on its own while etcd was unreachable (pending etcd).
    pub fn undrained_locally(&self, pool: &str, address: &EndpointKey) -> bool {
        self.local_undrains
            .keys()
            .any(|(p, a)| &**p == pool && a == address)
    }

    /// The other vantages' votes on one endpoint.
    pub fn endpoint_votes(&self, pool: &str, address: &EndpointKey) -> RemoteVotes {
        let mut votes = RemoteVotes::default();
        for node in self.remote.values() {
            if let Some(v) = node.endpoints.get(pool).and_then(|m| m.get(address)) {
                votes.total += 1;
                votes.down += u16::from(!v.up);
            }
        }
        votes
    }

    /// The other vantages' `degraded` votes on one pool.
    pub fn pool_votes(&self, pool: &str) -> RemoteVotes {
        let mut votes = RemoteVotes::default();
        for node in self.remote.values() {
            if let Some(v) = node.pools.get(pool) {
                votes.total += 1;
                votes.down += u16::from(v.degraded);
            }
        }
        votes
    }

    /// The other vantages that have a location, with their latency for each
    /// of `pools` (by name, in config order).
    pub fn located<'a>(&self, pools: impl Iterator<Item = &'a str> + Clone) -> Vec<RemoteVantage> {
        self.remote
            .iter()
            .filter_map(|(name, node)| {
                let [lat, lon] = node.info.as_ref()?.location?;
                let pool_latency = pools
                    .clone()
                    .map(|p| {
                        let ms = node.pools.get(p)?.latency_ms?;
                        (ms.is_finite() && ms >= 0.0).then(|| Duration::from_secs_f64(ms / 1000.0))
                    })
                    .collect();
                Some(RemoteVantage {
                    node: name.clone(),
                    location: (lat, lon),
                    pool_latency,
                })
            })
            .collect()
    }
}
