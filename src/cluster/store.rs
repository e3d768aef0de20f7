//! store: what a fleet keeps in etcd, and how it changes. Pure: no IO.
//!
//! ```text
//! PREFIX/nodes/NODE                   NodeInfo     (NODE's lease)
//! PREFIX/health/NODE/POOL/ENDPOINT    Verdict      (NODE's lease)
//! PREFIX/health/NODE/POOL/_pool       PoolVerdict  (NODE's lease)
//! PREFIX/drain/POOL/ENDPOINT          DrainRecord  (no lease: outlives its maker)
//! PREFIX/weight/POOL/ENDPOINT         WeightRecord (no lease)
//! PREFIX/override/POOL/ENDPOINT       Forced       (no lease; ends at its until)
//! PREFIX/load/POOL, PREFIX/rate/NODE/POOL   loads (see `loads`)
//! PREFIX/pushed/POOL/ENDPOINT         Pushed       (no lease; down after its expiry)
//! PREFIX/epoch                        Epoch        (no lease)
//! ```
//!
//! The epoch tells a store that lost its data from one that moved on: the
//! first node to find none creates it, and a node that finds it gone or
//! replaced (or etcd's cluster id changed, or its revision went backwards:
//! [`lost`]) writes its last known drains, weights, overrides and pushed
//! health back ([`restore_plan`]) under a new epoch marked `restored`, in
//! one transaction guarded by the epoch it read, so that the nodes after it
//! follow what it wrote ([`after_loss`]) rather than each writing its own.
//!
//! A node writes its verdicts only when they change in a way that matters
//! ([`Ledger::plan`]): an endpoint's up/down, reason or the state's start; a
//! pool's degraded vote, or its latency by 20 % and 5 ms. In steady state the
//! only traffic is the lease keep-alive.

use std::collections::HashMap;
use std::sync::Arc;

use super::etcd::{Event, Kv, Write};
use crate::config::{Config, EndpointKey};
use crate::health::fleet::{
    DrainRecord, FleetView, NodeInfo, PoolVerdict, RemoteNode, Verdict, WeightRecord,
};
use crate::health::{EndpointState, HealthView};
use serde::{Deserialize, Serialize};

/// The last segment of a pool's own verdict key (endpoints are IP addresses
/// or domain names, whose labels do not start with `_` in practice).
pub const POOL_KEY: &str = "_pool";

/// A key under the prefix, parsed.
#[derive(Debug, Clone, PartialEq)]
pub enum Key<'a> {
    Node(&'a str),
    Endpoint {
        node: &'a str,
        pool: &'a str,
        address: EndpointKey,
    },
    Pool {
        node: &'a str,
        pool: &'a str,
    },
    Drain {
        pool: &'a str,
        address: EndpointKey,
    },
    Weight {
        pool: &'a str,
        address: EndpointKey,
    },
    Override {
        pool: &'a str,
        address: EndpointKey,
    },
    Pushed {
        pool: &'a str,
        address: EndpointKey,
    },
}

/// Key names for one fleet prefix.
#[derive(Debug, Clone)]
pub struct Layout {
    /// `PREFIX/` (with the slash).
    pub root: String,
}

impl Layout {
    pub fn new(prefix: &str) -> Layout {
        Layout {
            root: format!("{}/", prefix.trim_end_matches('/')),
        }
    }
    pub fn node(&self, node: &str) -> String {
        format!("{}nodes/{node}", self.root)
    }
    pub fn endpoint(&self, node: &str, pool: &str, address: &EndpointKey) -> String {
        format!("{}health/{node}/{pool}/{address}", self.root)
    }
    pub fn pool(&self, node: &str, pool: &str) -> String {
        format!("{}health/{node}/{pool}/{POOL_KEY}", self.root)
    }
    pub fn drain(&self, pool: &str, address: &EndpointKey) -> String {
        format!("{}drain/{pool}/{address}", self.root)
    }

    pub fn weight(&self, pool: &str, address: &EndpointKey) -> String {
        format!("{}weight/{pool}/{address}", self.root)
    }
    pub fn override_(&self, pool: &str, address: &EndpointKey) -> String {
        format!("{}override/{pool}/{address}", self.root)
    }
    pub fn pushed(&self, pool: &str, address: &EndpointKey) -> String {
        format!("{}pushed/{pool}/{address}", self.root)
    }
    /// The fleet's [`Epoch`].
    pub fn epoch(&self) -> String {
        format!("{}epoch", self.root)
    }

    pub fn parse<'k>(&self, key: &'k str) -> Option<Key<'k>> {
        let rest = key.strip_prefix(self.root.as_str())?;
        if let Some(node) = rest.strip_prefix("nodes/") {
            return (!node.is_empty() && !node.contains('/')).then_some(Key::Node(node));
        }
        if let Some(rest) = rest.strip_prefix("health/") {
            let (node, rest) = rest.split_once('/')?;
            let (pool, last) = rest.rsplit_once('/')?;
            if node.is_empty() || pool.is_empty() {
                return None;
            }
            if last == POOL_KEY {
                return Some(Key::Pool { node, pool });
            }
            return Some(Key::Endpoint {
                node,
                pool,
                address: EndpointKey::parse(last)?,
            });
        }
        let (kind, rest) = rest.split_once('/')?;
        let (pool, last) = rest.rsplit_once('/')?;
        (!pool.is_empty()).then_some(())?;
        let address = EndpointKey::parse(last)?;
        match kind {
            "drain" => Some(Key::Drain { pool, address }),
            "weight" => Some(Key::Weight { pool, address }),
            "override" => Some(Key::Override { pool, address }),
            "pushed" => Some(Key::Pushed { pool, address }),
            _ => None,
        }
    }
}

/// Applies one put or delete to what this node knows of the others. Its own
/// keys are skipped (it knows its own verdicts better), except its node
/// record, read to notice another process using the same name. Unknown or
/// undecodable keys are ignored: a newer node may write more. Returns true
/// when the view changed.
pub fn apply(
    view: &mut FleetView,
    layout: &Layout,
    instance: &str,
    event: &Event,
    now_ms: u64,
) -> bool {
    if let Some(changed) = super::loads::apply(view, layout, event) {
        return changed;
    }
    let (key, value) = match event {
        Event::Put(Kv { key, value }) => (key.as_str(), Some(value.as_slice())),
        Event::Delete(key) => (key.as_str(), None),
    };
    let Some(parsed) = layout.parse(key) else {
        return false;
    };
    let own = &*view.node;
    match parsed {
        Key::Node(node) if node == own => {
            let clash = value
                .and_then(|v| serde_json::from_slice::<NodeInfo>(v).ok())
                .is_some_and(|info| info.instance != instance);
            let changed = clash != view.name_clash;
            view.name_clash = clash;
            changed
        }
        Key::Node(node) => match value.and_then(|v| serde_json::from_slice::<NodeInfo>(v).ok()) {
            Some(info) => {
                view.departed.remove(node);
                let entry = view.remote.entry(Arc::from(node)).or_default();
                let changed = entry.info.as_ref() != Some(&info);
                entry.info = Some(info);
                changed
            }
            None => {
                // Its lease expired (or it stopped): every verdict under it
                // goes with it, in the same revision.
                let gone = view.remote.remove(node).is_some();
                if gone {
                    view.departed.insert(Arc::from(node), now_ms);
                    while view.departed.len() > 64 {
                        let oldest = view
                            .departed
                            .iter()
                            .min_by_key(|(_, t)| **t)
                            .map(|(n, _)| n.clone());
                        if let Some(n) = oldest {
                            view.departed.remove(&n);
                        }
                    }
                }
                gone
            }
        },
        Key::Endpoint { node, .. } | Key::Pool { node, .. } if node == own => false,
        Key::Endpoint {
            node,
            pool,
            address,
        } => {
            let verdict = value.and_then(|v| serde_json::from_slice::<Verdict>(v).ok());
            match verdict {
                Some(v) => {
                    let remote = remote_entry(view, node);
                    let pool = remote.endpoints.entry(Arc::from(pool)).or_default();
                    pool.insert(address, v.clone()) != Some(v)
                }
                None => view
                    .remote
                    .get_mut(node)
                    .and_then(|n| n.endpoints.get_mut(pool))
                    .is_some_and(|p| p.remove(&address).is_some()),
            }
        }
        Key::Pool { node, pool } => {
            let verdict = value.and_then(|v| serde_json::from_slice::<PoolVerdict>(v).ok());
            match verdict {
                Some(v) => {
                    remote_entry(view, node)
                        .pools
                        .insert(Arc::from(pool), v.clone())
                        != Some(v)
                }
                None => view
                    .remote
                    .get_mut(node)
                    .is_some_and(|n| n.pools.remove(pool).is_some()),
            }
        }
        Key::Weight { pool, address } => set_or_remove(
            &mut view.weights,
            pool,
            address,
            value.and_then(|v| serde_json::from_slice::<WeightRecord>(v).ok()),
        ),
        Key::Override { pool, address } => set_or_remove(
            &mut view.overrides,
            pool,
            address,
            value.and_then(|v| serde_json::from_slice::<crate::health::Forced>(v).ok()),
        ),
        Key::Pushed { pool, address } => set_or_remove(
            &mut view.pushed,
            pool,
            address,
            value.and_then(|v| serde_json::from_slice::<crate::health::Pushed>(v).ok()),
        ),
        Key::Drain { pool, address } => {
            match value.and_then(|v| serde_json::from_slice::<DrainRecord>(v).ok()) {
                Some(record) => {
                    let entry = view.drains.entry(Arc::from(pool)).or_default();
                    entry.insert(address, record.clone()) != Some(record)
                }
                None => {
                    let removed = view
                        .drains
                        .get_mut(pool)
                        .is_some_and(|s| s.remove(&address).is_some());
                    if view.drains.get(pool).is_some_and(|s| s.is_empty()) {
                        view.drains.remove(pool);
                    }
                    removed
                }
            }
        }
    }
}

/// The fleet's epoch (`PREFIX/epoch`, no lease).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Epoch {
    /// Random, new with each epoch.
    pub id: String,
    /// The node that wrote it.
    pub by: String,
    /// When (Unix ms).
    pub at: u64,
    /// Written with a node's last known state after etcd lost its data.
    #[serde(default)]
    pub restored: bool,
}

/// What a node last saw of etcd's store.
#[derive(Debug, Clone, PartialEq)]
pub struct Seen {
    /// The cluster id of etcd's response headers.
    pub cluster_id: String,
    /// The highest store revision seen (a full read's, the watch's).
    pub revision: i64,
    /// The [`Epoch`] record's value as read (None: there was none).
    pub epoch: Option<Vec<u8>>,
}

/// Why the store read now (`now`) is not the one this node saw last
/// (`before`): etcd's cluster id changed, its revision went backwards
/// (wiped, or restored from an older snapshot) or the fleet's epoch is gone
/// or another. None: the same store, moved on.
pub fn lost(before: &Seen, now: &Seen) -> Option<String> {
    let mut why = Vec::new();
    if before.cluster_id != now.cluster_id {
        why.push(format!(
            "cluster id {} -> {}",
            before.cluster_id, now.cluster_id
        ));
    }
    if now.revision < before.revision {
        why.push(format!(
            "revision {} -> {} (backwards)",
            before.revision, now.revision
        ));
    }
    if before.epoch.is_some() && before.epoch != now.epoch {
        why.push(match &now.epoch {
            None => "the fleet's epoch key is gone".to_string(),
            Some(_) => "the fleet's epoch key was replaced".to_string(),
        });
    }
    (!why.is_empty()).then(|| why.join(", "))
}

/// What a node that found the store [`lost`] does.
#[derive(Debug, Clone, PartialEq)]
pub enum AfterLoss {
    /// Writes its last known state back (guarded by the epoch it read).
    Restore,
    /// Another node did already (a restored epoch this node has not seen):
    /// it follows etcd.
    Follow(Epoch),
}

/// Restores unless another node already wrote its state back since the
/// loss: the epoch now is a restored one and not the one this node saw.
pub fn after_loss(before: &Seen, now_epoch: Option<&[u8]>) -> AfterLoss {
    let Some(raw) = now_epoch else {
        return AfterLoss::Restore;
    };
    match serde_json::from_slice::<Epoch>(raw) {
        Ok(e) if e.restored && before.epoch.as_deref() != Some(raw) => AfterLoss::Follow(e),
        _ => AfterLoss::Restore,
    }
}

/// How many runtime records of each kind a view holds: (drains, weights,
/// overrides, pushed health, reported loads).
pub fn runtime_counts(view: &FleetView) -> (usize, usize, usize, usize, usize) {
    (
        view.drains.values().map(HashMap::len).sum(),
        view.weights.values().map(HashMap::len).sum(),
        view.overrides.values().map(HashMap::len).sum(),
        view.pushed.values().map(HashMap::len).sum(),
        view.loads.reported.len(),
    )
}

/// The writes that make etcd's runtime records (drains, weights, overrides,
/// pushed health, reported loads) what `known` (this node's last view)
/// holds, given what etcd holds now (`found`): puts where they differ or are
/// missing, deletes for records `known` does not have (a restored older
/// snapshot's). The nodes' own proxy rates are under their leases: each
/// node publishes its own again.
pub fn restore_plan(layout: &Layout, known: &FleetView, found: &FleetView) -> Vec<Write> {
    let mut writes = Vec::new();
    let drain = |p: &str, a: &EndpointKey| layout.drain(p, a);
    plan_kind(
        &mut writes,
        by_key(&known.drains, drain),
        by_key(&found.drains, drain),
    );
    let weight = |p: &str, a: &EndpointKey| layout.weight(p, a);
    plan_kind(
        &mut writes,
        by_key(&known.weights, weight),
        by_key(&found.weights, weight),
    );
    let forced = |p: &str, a: &EndpointKey| layout.override_(p, a);
    plan_kind(
        &mut writes,
        by_key(&known.overrides, forced),
        by_key(&found.overrides, forced),
    );
    let pushed = |p: &str, a: &EndpointKey| layout.pushed(p, a);
    plan_kind(
        &mut writes,
        by_key(&known.pushed, pushed),
        by_key(&found.pushed, pushed),
    );
    // Reported loads are per pool.
    let loads = |m: &HashMap<Arc<str>, crate::health::load::ReportedLoad>| {
        m.iter()
            .map(|(pool, r)| (super::loads::load_key(layout, pool), r.clone()))
            .collect::<HashMap<_, _>>()
    };
    plan_kind(
        &mut writes,
        loads(&known.loads.reported),
        loads(&found.loads.reported),
    );
    writes
}

/// A per-pool, per-endpoint map as etcd keys and records.
fn by_key<T: Clone>(
    map: &HashMap<Arc<str>, HashMap<EndpointKey, T>>,
    key: impl Fn(&str, &EndpointKey) -> String,
) -> HashMap<String, T> {
    map.iter()
        .flat_map(|(pool, records)| {
            records
                .iter()
                .map(|(address, r)| (key(pool, address), r.clone()))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Puts for what `known` holds and `found` does not (or differently),
/// deletes for what `found` holds and `known` does not; in key order.
fn plan_kind<T: PartialEq + Serialize>(
    writes: &mut Vec<Write>,
    known: HashMap<String, T>,
    found: HashMap<String, T>,
) {
    let mut puts: Vec<(String, String)> = known
        .iter()
        .filter(|(k, r)| found.get(*k) != Some(*r))
        .filter_map(|(k, r)| Some((k.clone(), serde_json::to_string(r).ok()?)))
        .collect();
    let mut deletes: Vec<String> = found
        .keys()
        .filter(|k| !known.contains_key(*k))
        .cloned()
        .collect();
    // A stable order, for the logs and the tests.
    puts.sort();
    deletes.sort();
    writes.extend(puts.into_iter().map(|(k, v)| Write::Put(k, v, 0)));
    writes.extend(deletes.into_iter().map(Write::Delete));
}

/// Puts (Some) or removes (None) one endpoint's record of a per-pool map.
/// Returns true when it changed.
fn set_or_remove<T: PartialEq>(
    map: &mut HashMap<Arc<str>, HashMap<EndpointKey, T>>,
    pool: &str,
    address: EndpointKey,
    record: Option<T>,
) -> bool {
    match record {
        Some(r) => {
            let entry = map.entry(Arc::from(pool)).or_default();
            entry.get(&address) != Some(&r) && {
                entry.insert(address, r);
                true
            }
        }
        None => {
            let removed = map
                .get_mut(pool)
                .is_some_and(|m| m.remove(&address).is_some());
            if map.get(pool).is_some_and(|m| m.is_empty()) {
                map.remove(pool);
            }
            removed
        }
    }
}

fn remote_entry<'v>(view: &'v mut FleetView, node: &str) -> &'v mut RemoteNode {
    view.remote.entry(Arc::from(node)).or_default()
}

/// This node's verdicts as written to etcd, slot by slot in one config
/// generation's order, so that comparing the health view with them after
/// every snapshot (up to ten a second) allocates nothing but the writes.
#[derive(Debug, Default)]
pub struct Ledger {
    generation: u64,
    pools: Vec<PoolSlots>,
}

#[derive(Debug)]
struct PoolSlots {
    /// None for pools without a monitor: every node counts their endpoints
    /// as up, so they publish nothing.
    key: Option<String>,
    written: Option<PoolVerdict>,
    endpoints: Vec<(String, Option<Verdict>)>,
}

impl Ledger {
    /// The ledger for `config` (of `generation`). What `old` wrote for keys
    /// that remain is kept; the returned deletes withdraw the rest (endpoints
    /// and pools a reload removed).
    pub fn new(
        layout: &Layout,
        node: &str,
        config: &Config,
        generation: u64,
        old: Ledger,
    ) -> (Ledger, Vec<Write>) {
        let mut before: HashMap<String, Slot> = old.into_slots().collect();
        let pools = config
            .pools
            .iter()
            .map(|pool| {
                let monitored = pool.monitor.is_some();
                let key = monitored.then(|| layout.pool(node, &pool.name));
                let written = key.as_ref().and_then(|k| match before.remove(k) {
                    Some(Slot::Pool(v)) => Some(v),
                    _ => None,
                });
                let endpoints = pool
                    .endpoints
                    .iter()
                    .map(|e| {
                        let key = layout.endpoint(node, &pool.name, &e.key());
                        let written = match monitored.then(|| before.remove(&key)).flatten() {
                            Some(Slot::Endpoint(v)) => Some(v),
                            _ => None,
                        };
                        (key, written)
                    })
                    .collect();
                PoolSlots {
                    key,
                    written,
                    endpoints,
                }
            })
            .collect();
        let deletes = before.into_keys().map(Write::Delete).collect();
        (Ledger { generation, pools }, deletes)
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Forgets what was written (after a failed write, or on a new lease):
    /// the next plan writes everything.
    pub fn forget(&mut self) {
        for p in &mut self.pools {
            p.written = None;
            for e in &mut p.endpoints {
                e.1 = None;
            }
        }
    }

    /// Whether `key` is one of this node's verdict keys now.
    pub fn holds(&self, key: &str) -> bool {
        self.pools
            .iter()
            .any(|p| p.key.as_deref() == Some(key) || p.endpoints.iter().any(|(k, _)| k == key))
    }

    /// The writes that bring etcd to `health` (a view of this ledger's
    /// generation), puts under `lease`. The ledger records them as done; the
    /// caller calls [`forget`](Self::forget) if they fail.
    pub fn plan(&mut self, health: &HealthView, lease: i64) -> Vec<Write> {
        let mut writes = Vec::new();
        for (slots, ph) in self.pools.iter_mut().zip(&health.pools) {
            let Some(pool_key) = &slots.key else {
                continue;
            };
            let verdict = PoolVerdict {
                degraded: ph.degraded_here,
                latency_ms: ph.latency.map(|l| l.as_secs_f64() * 1000.0),
                error_rate: ph.error_rate,
            };
            if slots
                .written
                .as_ref()
                .is_none_or(|w| pool_moved(w, &verdict))
            {
                put(&mut writes, pool_key, &verdict, lease);
                slots.written = Some(verdict);
            }
            for ((key, written), eh) in slots.endpoints.iter_mut().zip(&ph.endpoints) {
                let up = match eh.local {
                    EndpointState::Unknown => {
                        if written.take().is_some() {
                            writes.push(Write::Delete(key.clone()));
                        }
                        continue;
                    }
                    s => s == EndpointState::Up,
                };
                let reason = if up { None } else { eh.last_error.as_deref() };
                let changed = written.as_ref().is_none_or(|w| {
                    w.up != up || w.reason.as_deref() != reason || w.since != eh.since_unix_ms
                });
                if changed {
                    let verdict = Verdict {
                        up,
                        reason: reason.map(str::to_string),
                        latency_ms: eh.latency.map(|l| l.as_secs_f64() * 1000.0),
                        error_rate: eh.error_rate,
                        since: eh.since_unix_ms,
                    };
                    put(&mut writes, key, &verdict, lease);
                    *written = Some(verdict);
                }
            }
        }
        writes
    }

    fn into_slots(self) -> impl Iterator<Item = (String, Slot)> {
        self.pools.into_iter().flat_map(|p| {
            let pool = p.key.zip(p.written).map(|(k, v)| (k, Slot::Pool(v)));
            let endpoints = p
                .endpoints
                .into_iter()
                .filter_map(|(k, v)| v.map(|v| (k, Slot::Endpoint(v))));
            pool.into_iter().chain(endpoints)
        })
    }
}

/// A written value, carried across a reload by key.
enum Slot {
    Pool(PoolVerdict),
    Endpoint(Verdict),
}

fn put<T: serde::Serialize>(writes: &mut Vec<Write>, key: &str, value: &T, lease: i64) {
    if let Ok(json) = serde_json::to_string(value) {
        writes.push(Write::Put(key.to_string(), json, lease));
    }
}

/// Whether a pool's verdict moved enough to write: its degraded vote, or
/// its latency by 20 % and 5 ms (the nearest-vantage `latency` policy reads
/// it). An endpoint's verdict is written when its state, reason or the
/// state's start change; its latency and error rate ride along, for
/// display, and are not reasons to write on their own: in steady state the
/// only traffic is the lease keep-alive.
pub fn pool_moved(old: &PoolVerdict, new: &PoolVerdict) -> bool {
    old.degraded != new.degraded || moved_latency(old.latency_ms, new.latency_ms)
}

fn moved_latency(a: Option<f64>, b: Option<f64>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => {
            let d = (a - b).abs();
            d >= 5.0 && d >= 0.2 * a.max(b)
        }
        (None, None) => false,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(key: &str, value: &str) -> Event {
        Event::Put(Kv {
            key: key.into(),
            value: value.as_bytes().to_vec(),
        })
    }

    #[test]
    fn keys_round_trip() {
        let l = Layout::new("/geo");
        let ip: EndpointKey = "2001:db8::1".parse().expect("ip");
        let k = l.endpoint("fra1", "eu/west", &ip);
        assert_eq!(k, "/geo/health/fra1/eu/west/2001:db8::1");
        assert_eq!(
            l.parse(&k),
            Some(Key::Endpoint {
                node: "fra1",
                pool: "eu/west",
                address: ip.clone()
            })
        );
        assert_eq!(
            l.parse(&l.pool("fra1", "p")),
            Some(Key::Pool {
                node: "fra1",
                pool: "p"
            })
        );
        assert_eq!(l.parse(&l.node("fra1")), Some(Key::Node("fra1")));
        assert_eq!(
            l.parse(&l.drain("p", &ip)),
            Some(Key::Drain {
                pool: "p",
                address: ip
            })
        );
        // A name endpoint's key is its name, lower case without the dot.
        let name: EndpointKey = "WWW.cdn-a.example.NET.".parse().expect("name");
        let k = l.drain("p", &name);
        assert_eq!(k, "/geo/drain/p/www.cdn-a.example.net");
        assert_eq!(
            l.parse(&k),
            Some(Key::Drain {
                pool: "p",
                address: name
            })
        );
        assert_eq!(l.parse("/geo/health/fra1/p/not an ip"), None);
        assert_eq!(l.parse("/other/nodes/fra1"), None);
    }

    #[test]
    fn watch_events_build_the_view_and_a_node_leaving_takes_its_verdicts() {
        let l = Layout::new("/g");
        let mut view = FleetView {
            node: "n1".into(),
            ..FleetView::default()
        };
        let node = r#"{"config":"ab","lease_ms":2000,"started":1,"instance":"x"}"#;
        assert!(apply(&mut view, &l, "me", &put("/g/nodes/n2", node), 5));
        assert!(apply(
            &mut view,
            &l,
            "me",
            &put(
                "/g/health/n2/p/192.0.2.1",
                r#"{"up":false,"reason":"refused"}"#
            ),
            5
        ));
        assert!(apply(
            &mut view,
            &l,
            "me",
            &put("/g/health/n2/p/_pool", r#"{"degraded":true}"#),
            5
        ));
        // The same value again changes nothing; our own keys are skipped.
        assert!(!apply(
            &mut view,
            &l,
            "me",
            &put("/g/health/n2/p/_pool", r#"{"degraded":true}"#),
            5
        ));
        assert!(!apply(
            &mut view,
            &l,
            "me",
            &put("/g/health/n1/p/192.0.2.1", r#"{"up":false}"#),
            5
        ));
        let ip: EndpointKey = "192.0.2.1".parse().expect("ip");
        assert_eq!(
            view.endpoint_votes("p", &ip),
            crate::health::fleet::RemoteVotes { down: 1, total: 1 }
        );
        assert_eq!(view.pool_votes("p").down, 1);
        // Garbage is ignored, not fatal.
        assert!(!apply(
            &mut view,
            &l,
            "me",
            &put("/g/health/n2/p/192.0.2.9", "{oops"),
            5
        ));
        // Drains come and go.
        assert!(apply(
            &mut view,
            &l,
            "me",
            &put("/g/drain/p/192.0.2.1", r#"{"by":"n2","at":1}"#),
            5
        ));
        assert!(view.drained("p", &ip));
        assert!(apply(
            &mut view,
            &l,
            "me",
            &Event::Delete("/g/drain/p/192.0.2.1".into()),
            5
        ));
        assert!(!view.drained("p", &ip));
        // Another process under our name is noticed.
        assert!(apply(&mut view, &l, "me", &put("/g/nodes/n1", node), 5));
        assert!(view.name_clash);
        // The node's record goes (lease expired): so does everything it said.
        assert!(apply(
            &mut view,
            &l,
            "me",
            &Event::Delete("/g/nodes/n2".into()),
            7
        ));
        assert_eq!(view.vantages(), 1);
        assert_eq!(view.departed.get("n2"), Some(&7));
    }

    fn seen(cluster: &str, revision: i64, epoch: Option<&str>) -> Seen {
        Seen {
            cluster_id: cluster.into(),
            revision,
            epoch: epoch.map(|e| e.as_bytes().to_vec()),
        }
    }

    #[test]
    fn a_store_that_lost_its_data_is_told_from_one_that_moved_on() {
        let before = seen("c1", 300, Some("e1"));
        assert_eq!(lost(&before, &seen("c1", 300, Some("e1"))), None);
        assert_eq!(lost(&before, &seen("c1", 9_000, Some("e1"))), None);
        // Wiped and started with the same settings: the same cluster id,
        // the revision from 1, no epoch.
        let why = lost(&before, &seen("c1", 4, None)).expect("wiped");
        assert!(why.contains("revision 300 -> 4 (backwards)"), "{why}");
        assert!(why.contains("epoch key is gone"), "{why}");
        // A new cluster, whatever its revision.
        let why = lost(&before, &seen("c2", 900, None)).expect("replaced");
        assert!(why.contains("cluster id c1 -> c2"), "{why}");
        // Restored from an older copy: its epoch, an older revision.
        let why = lost(&before, &seen("c1", 250, Some("e1"))).expect("restored");
        assert_eq!(why, "revision 300 -> 250 (backwards)");
        // Another node wrote its state back since this one last looked.
        let why = lost(&before, &seen("c1", 20, Some("e2"))).expect("replaced");
        assert!(why.contains("epoch key was replaced"), "{why}");
        // A node that never saw an epoch judges by the revision alone.
        assert_eq!(lost(&seen("c1", 5, None), &seen("c1", 9, Some("e1"))), None);
    }

    #[test]
    fn the_first_node_after_a_loss_writes_back_the_others_follow_it() {
        let epoch = |restored: bool| {
            serde_json::to_vec(&Epoch {
                id: "x".into(),
                by: "n1".into(),
                at: 1,
                restored,
            })
            .expect("json")
        };
        let before = Seen {
            epoch: Some(epoch(false)),
            ..seen("c1", 300, None)
        };
        // No epoch, or the one it saw (restored copy): it writes back.
        assert_eq!(after_loss(&before, None), AfterLoss::Restore);
        assert_eq!(after_loss(&before, Some(&epoch(false))), AfterLoss::Restore);
        // A fresh epoch some node made without memory: it writes back too.
        let fresh = serde_json::to_vec(&Epoch {
            id: "y".into(),
            by: "n3".into(),
            at: 2,
            restored: false,
        })
        .expect("json");
        assert_eq!(after_loss(&before, Some(&fresh)), AfterLoss::Restore);
        // A restored epoch it has not seen: another node wrote back.
        let restored = epoch(true);
        assert!(matches!(
            after_loss(&before, Some(&restored)),
            AfterLoss::Follow(e) if e.by == "n1"
        ));
        // Garbage in the epoch key: write back.
        assert_eq!(after_loss(&before, Some(b"{oops")), AfterLoss::Restore);
    }

    fn known_without_loads(v: &FleetView) -> FleetView {
        let mut v = v.clone();
        v.loads = Default::default();
        v
    }

    #[test]
    fn a_write_back_puts_what_the_node_knew_and_deletes_what_it_did_not() {
        let l = Layout::new("/g");
        let ip = |s: &str| -> EndpointKey { s.parse().expect("ip") };
        let drain = |at| DrainRecord {
            by: "n1".into(),
            at,
            over_ms: None,
        };
        let mut known = FleetView::default();
        known
            .drains
            .entry("p".into())
            .or_default()
            .insert(ip("192.0.2.1"), drain(10));
        known.weights.entry("p".into()).or_default().insert(
            ip("192.0.2.2"),
            WeightRecord {
                weight: 5,
                by: "n1".into(),
                at: 11,
            },
        );
        // A wiped store: everything is put.
        let w = restore_plan(&l, &known, &FleetView::default());
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(
            matches!(&w[0], Write::Put(k, v, 0) if k == "/g/drain/p/192.0.2.1" && v.contains("\"at\":10"))
        );
        assert!(matches!(&w[1], Write::Put(k, _, 0) if k == "/g/weight/p/192.0.2.2"));
        // An older copy: the same drain stays, a drain and an override the
        // node does not know go, the weight is put.
        let mut found = FleetView::default();
        found
            .drains
            .entry("p".into())
            .or_default()
            .insert(ip("192.0.2.1"), drain(10));
        found
            .drains
            .entry("p".into())
            .or_default()
            .insert(ip("192.0.2.3"), drain(5));
        found.overrides.entry("p".into()).or_default().insert(
            ip("192.0.2.1"),
            crate::health::Forced {
                up: false,
                reason: "old".into(),
                until_unix_ms: None,
            },
        );
        let w = restore_plan(&l, &known, &found);
        assert_eq!(
            w,
            vec![
                Write::Delete("/g/drain/p/192.0.2.3".into()),
                Write::Put(
                    "/g/weight/p/192.0.2.2".into(),
                    r#"{"weight":5,"by":"n1","at":11}"#.into(),
                    0
                ),
                Write::Delete("/g/override/p/192.0.2.1".into()),
            ]
        );
        assert_eq!(runtime_counts(&known), (1, 1, 0, 0, 0));
        // A reported load is written back under its pool's key.
        known.loads.reported.insert(
            "p".into(),
            crate::health::load::ReportedLoad {
                value: 12.0,
                until: 99,
                by: "n1".into(),
                at: 9,
            },
        );
        let w = restore_plan(&l, &known, &known_without_loads(&known));
        assert!(
            matches!(&w[..], [Write::Put(k, v, 0)] if k == "/g/load/p" && v.contains("\"value\":12")),
            "{w:?}"
        );
        // Nothing differs: nothing to write.
        assert!(restore_plan(&l, &known, &known).is_empty());
    }

    #[test]
    fn only_changes_that_matter_are_written_and_reloads_withdraw() {
        use crate::health::HealthBook;
        use crate::health::{Observation, Source, Target};
        use std::time::{Duration, Instant};
        let text = "[server]\ndns_listen = [\"127.0.0.1:53\"]\n[monitors.m]\ntype = \"tcp\"\nfall = 1\nrise = 1\n[pools.p]\nmonitor = \"m\"\nendpoints = [{ address = \"192.0.2.1\" }, { address = \"192.0.2.2\" }]\n[pools.plain]\nendpoints = [{ address = \"192.0.2.9\" }]\n";
        let parse = |t: &str| {
            crate::config::parse(
                t,
                std::path::Path::new("t.toml"),
                std::path::Path::new("."),
                "",
            )
            .map(|c| c.0)
            .unwrap_or_else(|e| panic!("{e}"))
        };
        let config = parse(text);
        let layout = Layout::new("/g");
        let mut book = HealthBook::new(&config, 1);
        let t0 = Instant::now();
        let probe = |book: &mut HealthBook, i: u32, ok: bool, ms: u64, at: u64| {
            book.observe(
                Observation {
                    generation: 1,
                    target: Target::Endpoint(crate::config::PoolId(0), i),
                    source: Source::Probe,
                    ok,
                    latency: Duration::from_millis(ms),
                    error: (!ok).then(|| "refused".to_string()),
                    load: None,
                },
                t0 + Duration::from_millis(at),
                at,
            );
        };
        let (mut ledger, deletes) = Ledger::new(&layout, "n1", &config, 1, Ledger::default());
        assert!(deletes.is_empty());
        // Before any probe: the pool's verdict only (endpoints are unknown;
        // the pool without a monitor publishes nothing).
        let w = ledger.plan(&book.view(), 7);
        assert!(
            matches!(&w[..], [Write::Put(k, _, 7)] if k == "/g/health/n1/p/_pool"),
            "{w:?}"
        );
        probe(&mut book, 0, true, 1, 10);
        probe(&mut book, 1, true, 1, 10);
        // Both endpoints' first verdicts, and the pool's (its latency appeared).
        let w = ledger.plan(&book.view(), 7);
        assert_eq!(w.len(), 3, "{w:?}");
        // Probe-to-probe jitter in latency: nothing to write.
        probe(&mut book, 0, true, 3, 20);
        probe(&mut book, 1, true, 2, 20);
        assert!(ledger.plan(&book.view(), 7).is_empty());
        // A state change is written, with its reason.
        probe(&mut book, 1, false, 1, 30);
        let w = ledger.plan(&book.view(), 7);
        assert!(
            w.iter().any(|w| matches!(w, Write::Put(k, v, 7) if k == "/g/health/n1/p/192.0.2.2" && v.contains("\"reason\":\"refused\""))),
            "{w:?}"
        );
        assert!(ledger.plan(&book.view(), 7).is_empty(), "written once");
        // After a failed write everything is written again.
        ledger.forget();
        assert_eq!(ledger.plan(&book.view(), 7).len(), 3);
        // A reload drops 192.0.2.2: its key is withdrawn, the rest carried.
        let smaller = parse(&text.replace(", { address = \"192.0.2.2\" }", ""));
        let (mut ledger, deletes) = Ledger::new(&layout, "n1", &smaller, 2, ledger);
        assert_eq!(
            deletes,
            vec![Write::Delete("/g/health/n1/p/192.0.2.2".into())]
        );
        assert!(ledger.holds("/g/health/n1/p/192.0.2.1"));
        assert!(!ledger.holds("/g/health/n1/p/192.0.2.2"));
        let mut book2 = book.clone();
        book2.reload(&smaller, 2, t0 + Duration::from_millis(40));
        assert!(
            ledger.plan(&book2.view(), 7).is_empty(),
            "kept verdicts are not rewritten"
        );
    }
}
