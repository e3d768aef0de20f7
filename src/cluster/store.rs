//! store: what a fleet keeps in etcd, and how it changes. Pure: no IO.
//!
//! ```text
//! PREFIX/nodes/NODE                   NodeInfo     (NODE's lease)
//! PREFIX/health/NODE/POOL/ENDPOINT    Verdict      (NODE's lease)
//! PREFIX/health/NODE/POOL/_pool       PoolVerdict  (NODE's lease)
//! PREFIX/drain/POOL/ENDPOINT          DrainRecord  (no lease: outlives its maker)
//! ```
//!
//! A node writes its verdicts only when they change in a way that matters
//! ([`worth_writing`]): up/down, the reason, the state's start, an error rate
//! moved by 5 points, a latency moved by 20 % and 5 ms. In steady state the
//! only traffic is the lease keep-alive.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::Arc;

use super::etcd::{Event, Kv, Write};
use crate::config::Config;
use crate::health::fleet::{DrainRecord, FleetView, NodeInfo, PoolVerdict, RemoteNode, Verdict};
use crate::health::{EndpointState, HealthView};

/// The last segment of a pool's own verdict key (endpoints are IP addresses,
/// so it cannot clash).
pub const POOL_KEY: &str = "_pool";

/// A key under the prefix, parsed.
#[derive(Debug, Clone, PartialEq)]
pub enum Key<'a> {
    Node(&'a str),
    Endpoint {
        node: &'a str,
        pool: &'a str,
        address: IpAddr,
    },
    Pool {
        node: &'a str,
        pool: &'a str,
    },
    Drain {
        pool: &'a str,
        address: IpAddr,
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
    pub fn endpoint(&self, node: &str, pool: &str, address: IpAddr) -> String {
        format!("{}health/{node}/{pool}/{address}", self.root)
    }
    pub fn pool(&self, node: &str, pool: &str) -> String {
        format!("{}health/{node}/{pool}/{POOL_KEY}", self.root)
    }
    pub fn drain(&self, pool: &str, address: IpAddr) -> String {
        format!("{}drain/{pool}/{address}", self.root)
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
                address: last.parse().ok()?,
            });
        }
        let rest = rest.strip_prefix("drain/")?;
        let (pool, last) = rest.rsplit_once('/')?;
        (!pool.is_empty()).then_some(())?;
        Some(Key::Drain {
            pool,
            address: last.parse().ok()?,
        })
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
        Key::Drain { pool, address } => match value {
            Some(v) if serde_json::from_slice::<DrainRecord>(v).is_ok() => view
                .drains
                .entry(Arc::from(pool))
                .or_default()
                .insert(address),
            _ => {
                let removed = view
                    .drains
                    .get_mut(pool)
                    .is_some_and(|s| s.remove(&address));
                if view.drains.get(pool).is_some_and(|s| s.is_empty()) {
                    view.drains.remove(pool);
                }
                removed
            }
        },
    }
}

fn remote_entry<'v>(view: &'v mut FleetView, node: &str) -> &'v mut RemoteNode {
    view.remote.entry(Arc::from(node)).or_default()
}

/// A value this node has published, to compare the next one with.
#[derive(Debug, Clone, PartialEq)]
pub enum Published {
    Endpoint(Verdict),
    Pool(PoolVerdict),
}

/// This node's own verdicts as they should stand in etcd now, by key.
/// Endpoints without a first probe result (unknown) have no verdict yet, and
/// pools without a monitor publish nothing: every node counts their
/// endpoints as up anyway.
pub fn local_verdicts(
    layout: &Layout,
    node: &str,
    config: &Config,
    health: &HealthView,
) -> BTreeMap<String, Published> {
    let mut out = BTreeMap::new();
    for (pool, ph) in config.pools.iter().zip(&health.pools) {
        if pool.monitor.is_none() {
            continue;
        }
        out.insert(
            layout.pool(node, &pool.name),
            Published::Pool(PoolVerdict {
                degraded: ph.degraded_here,
                latency_ms: ph.latency.map(|l| l.as_secs_f64() * 1000.0),
                error_rate: ph.error_rate,
            }),
        );
        for (e, eh) in pool.endpoints.iter().zip(&ph.endpoints) {
            let up = match eh.local {
                EndpointState::Unknown => continue,
                s => s == EndpointState::Up,
            };
            out.insert(
                layout.endpoint(node, &pool.name, e.address),
                Published::Endpoint(Verdict {
                    up,
                    reason: if up {
                        None
                    } else {
                        eh.last_error.as_deref().map(str::to_string)
                    },
                    latency_ms: eh.latency.map(|l| l.as_secs_f64() * 1000.0),
                    error_rate: eh.error_rate,
                    since: eh.since_unix_ms,
                }),
            );
        }
    }
    out
}

/// Whether `new` differs from what was `old`ly written enough to write it.
pub fn worth_writing(old: &Published, new: &Published) -> bool {
    match (old, new) {
        (Published::Endpoint(a), Published::Endpoint(b)) => {
            a.up != b.up
                || a.reason != b.reason
                || a.since != b.since
                || moved_rate(a.error_rate, b.error_rate)
                || moved_latency(a.latency_ms, b.latency_ms)
        }
        (Published::Pool(a), Published::Pool(b)) => {
            a.degraded != b.degraded
                || moved_rate(a.error_rate, b.error_rate)
                || moved_latency(a.latency_ms, b.latency_ms)
        }
        _ => true,
    }
}

fn moved_rate(a: f64, b: f64) -> bool {
    (a - b).abs() >= 0.05 || ((a == 0.0) != (b == 0.0))
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

/// The writes that bring etcd from `written` to `desired` (puts under
/// `lease`, deletes of what is no longer desired). `written` is updated as
/// if they succeed; the caller resets it on failure.
pub fn plan(
    written: &mut HashMap<String, Published>,
    desired: BTreeMap<String, Published>,
    lease: i64,
) -> Vec<Write> {
    let mut writes = Vec::new();
    let stale: Vec<String> = written
        .keys()
        .filter(|k| !desired.contains_key(*k))
        .cloned()
        .collect();
    for key in stale {
        written.remove(&key);
        writes.push(Write::Delete(key));
    }
    for (key, value) in desired {
        let write = written
            .get(&key)
            .is_none_or(|old| worth_writing(old, &value));
        if write {
            let json = match &value {
                Published::Endpoint(v) => serde_json::to_string(v),
                Published::Pool(v) => serde_json::to_string(v),
            };
            if let Ok(json) = json {
                writes.push(Write::Put(key.clone(), json, lease));
                written.insert(key, value);
            }
        }
    }
    writes
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
        let ip: IpAddr = "2001:db8::1".parse().expect("ip");
        let k = l.endpoint("fra1", "eu/west", ip);
        assert_eq!(k, "/geo/health/fra1/eu/west/2001:db8::1");
        assert_eq!(
            l.parse(&k),
            Some(Key::Endpoint {
                node: "fra1",
                pool: "eu/west",
                address: ip
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
            l.parse(&l.drain("p", ip)),
            Some(Key::Drain {
                pool: "p",
                address: ip
            })
        );
        assert_eq!(l.parse("/geo/health/fra1/p/not-an-ip"), None);
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
        let ip: IpAddr = "192.0.2.1".parse().expect("ip");
        assert_eq!(
            view.endpoint_votes("p", ip),
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
        assert!(view.drained("p", ip));
        assert!(apply(
            &mut view,
            &l,
            "me",
            &Event::Delete("/g/drain/p/192.0.2.1".into()),
            5
        ));
        assert!(!view.drained("p", ip));
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

    #[test]
    fn only_changes_that_matter_are_written() {
        let mut written = HashMap::new();
        let verdict = |up: bool, latency: f64, error_rate: f64| {
            Published::Endpoint(Verdict {
                up,
                reason: (!up).then(|| "timeout".into()),
                latency_ms: Some(latency),
                error_rate,
                since: 1,
            })
        };
        let desired = |v: Published| BTreeMap::from([("k".to_string(), v)]);
        assert_eq!(
            plan(&mut written, desired(verdict(true, 10.0, 0.0)), 7).len(),
            1
        );
        // Probe-to-probe jitter: nothing to write.
        assert!(plan(&mut written, desired(verdict(true, 12.0, 0.0)), 7).is_empty());
        assert!(plan(&mut written, desired(verdict(true, 14.0, 0.0)), 7).is_empty());
        // A real move in latency, then in error rate (small moves after it
        // are not), then the state.
        assert_eq!(
            plan(&mut written, desired(verdict(true, 40.0, 0.0)), 7).len(),
            1
        );
        assert_eq!(
            plan(&mut written, desired(verdict(true, 40.0, 0.1)), 7).len(),
            1
        );
        assert!(plan(&mut written, desired(verdict(true, 40.0, 0.12)), 7).is_empty());
        let writes = plan(&mut written, desired(verdict(false, 40.0, 0.1)), 7);
        assert!(
            matches!(&writes[..], [Write::Put(k, v, 7)] if k == "k" && v.contains("\"up\":false"))
        );
        // A key no longer desired (endpoint removed by a reload) is deleted.
        assert_eq!(
            plan(&mut written, BTreeMap::new(), 7),
            vec![Write::Delete("k".into())]
        );
        assert!(written.is_empty());
    }
}
