//! Loads through etcd (issue 23): a pool's reported load and every node's
//! own proxy rate, shared so that every node computes the same split from
//! the same figures.
//!
//! ```text
//! PREFIX/load/POOL          ReportedLoad {value, until, by, at}  (no lease; counts until `until`)
//! PREFIX/rate/NODE/POOL     NodeRate {rps, at}                   (NODE's lease)
//! ```
//!
//! A `PUT /api/v1/pools/{pool}/load` on any node is written to
//! `PREFIX/load/POOL` (refused while etcd is unreachable) and applied by
//! every node from its watch, this one before the call returns. Each node
//! writes its proxy rate of each `load = "proxy"` pool at most once a
//! (wall-clock) second, and only when it moved by more than 5 %
//! ([`worth_publishing`]); a node that goes takes its rate along with its
//! lease.

use std::collections::HashMap;
use std::sync::Arc;

use super::etcd::{self, Event, Kv, Write};
use super::store::{self, Layout};
use super::{Link, Request};
use crate::config::{Config, LoadSource};
use crate::health::HealthView;
use crate::health::fleet::FleetView;
use crate::health::load::{NodeRate, ReportedLoad, worth_publishing};
use crate::wallclock::unix_ms;

/// `PREFIX/load/POOL`.
pub(super) fn load_key(layout: &Layout, pool: &str) -> String {
    format!("{}load/{pool}", layout.root)
}

/// `PREFIX/rate/NODE/POOL`.
pub(super) fn rate_key(layout: &Layout, node: &str, pool: &str) -> String {
    format!("{}rate/{node}/{pool}", layout.root)
}

/// Applies a put or delete of a load key to `view`: None when `event` is
/// not about one, else whether the view changed. This node's own rate is
/// skipped (it knows it better).
pub(super) fn apply(view: &mut FleetView, layout: &Layout, event: &Event) -> Option<bool> {
    let (key, value) = match event {
        Event::Put(Kv { key, value }) => (key.as_str(), Some(value.as_slice())),
        Event::Delete(key) => (key.as_str(), None),
    };
    let rest = key.strip_prefix(layout.root.as_str())?;
    if let Some(pool) = rest.strip_prefix("load/") {
        if pool.is_empty() || pool.contains('/') {
            return Some(false);
        }
        let loads = &mut view.loads.reported;
        return Some(
            match value.and_then(|v| serde_json::from_slice::<ReportedLoad>(v).ok()) {
                Some(r) => loads.insert(Arc::from(pool), r.clone()) != Some(r),
                None => loads.remove(pool).is_some(),
            },
        );
    }
    let (node, pool) = rest.strip_prefix("rate/")?.split_once('/')?;
    if node.is_empty() || pool.is_empty() || pool.contains('/') || node == &*view.node {
        return Some(false);
    }
    let rates = &mut view.loads.rates;
    Some(
        match value.and_then(|v| serde_json::from_slice::<NodeRate>(v).ok()) {
            Some(r) => {
                rates
                    .entry(Arc::from(node))
                    .or_default()
                    .insert(Arc::from(pool), r.rps)
                    != Some(r.rps)
            }
            None => {
                let removed = rates
                    .get_mut(node)
                    .is_some_and(|p| p.remove(pool).is_some());
                if rates.get(node).is_some_and(|p| p.is_empty()) {
                    rates.remove(node);
                }
                removed
            }
        },
    )
}

/// This node's proxy rates as written under its current lease, by key:
/// (rate, Unix second written).
#[derive(Debug, Default)]
pub(super) struct RateLedger {
    written: HashMap<String, (f64, u64)>,
}

impl RateLedger {
    /// Forgets what was written (a new lease, a failed write): the next
    /// plan writes every rate.
    pub(super) fn forget(&mut self) {
        self.written.clear();
    }

    /// The writes that bring etcd to this node's rates in `health` (of
    /// `config`) at `now_ms`: a rate moved by more than 5 %, at most once a
    /// second; the keys of pools no longer `proxy` deleted.
    pub(super) fn plan(
        &mut self,
        (layout, node): (&Layout, &str),
        config: &Config,
        health: &HealthView,
        lease: i64,
        now_ms: u64,
    ) -> Vec<Write> {
        let second = now_ms / 1000;
        let mut writes = Vec::new();
        let mut keep = Vec::new();
        for (pool, h) in config.pools.iter().zip(&health.pools) {
            if pool.capacity.is_none_or(|c| c.load != LoadSource::Proxy) {
                continue;
            }
            let key = rate_key(layout, node, &pool.name);
            let rps = h.proxy_rate.unwrap_or(0.0);
            let last = self.written.get(&key).copied();
            if worth_publishing(last.map(|l| l.0), rps) && last.is_none_or(|l| l.1 != second) {
                let record = NodeRate { rps, at: now_ms };
                if let Ok(json) = serde_json::to_string(&record) {
                    writes.push(Write::Put(key.clone(), json, lease));
                    self.written.insert(key.clone(), (rps, second));
                }
            }
            keep.push(key);
        }
        let gone: Vec<String> = self
            .written
            .keys()
            .filter(|k| !keep.contains(k))
            .cloned()
            .collect();
        for key in gone {
            self.written.remove(&key);
            writes.push(Write::Delete(key));
        }
        writes
    }
}

impl Link {
    /// Writes a reported load to `PREFIX/load/POOL` and applies it here
    /// before answering. An error ends the session (etcd is gone).
    pub(super) async fn record_load(
        &mut self,
        pool: String,
        value: f64,
        ttl_ms: u64,
        done: tokio::sync::oneshot::Sender<Result<(), String>>,
    ) -> Result<(), etcd::EtcdError> {
        let now = unix_ms();
        let record = ReportedLoad {
            value,
            until: now.saturating_add(ttl_ms),
            by: self.view.node.to_string(),
            at: now,
        };
        let key = load_key(&self.layout, &pool);
        let value = serde_json::to_string(&record).unwrap_or_default();
        match self
            .write(&[Write::Put(key.clone(), value.clone(), 0)])
            .await
        {
            Ok(()) => {
                let event = Event::Put(Kv {
                    key,
                    value: value.into_bytes(),
                });
                store::apply(&mut self.view, &self.layout, &self.instance, &event, now);
                self.push_now().await;
                let _ = done.send(Ok(()));
                Ok(())
            }
            Err(e) => {
                let _ = done.send(Err(format!(
                    "{e}: a fleet-wide load cannot be recorded now"
                )));
                Err(e)
            }
        }
    }
}

/// The answer to a load report while etcd is unreachable.
pub(super) fn refuse(req: Request) {
    if let Request::Load { done, .. } = req {
        let _ = done.send(Err(
            "etcd is unreachable: a fleet-wide load cannot be recorded now".into(),
        ));
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
    fn reports_and_other_nodes_rates_are_applied_own_rate_skipped() {
        let layout = Layout::new("/g");
        let mut view = FleetView {
            node: Arc::from("n1"),
            ..FleetView::default()
        };
        let report = r#"{"value": 112, "until": 99, "by": "n2", "at": 1}"#;
        assert_eq!(
            apply(&mut view, &layout, &put("/g/load/eu", report)),
            Some(true)
        );
        assert_eq!(
            apply(&mut view, &layout, &put("/g/load/eu", report)),
            Some(false)
        );
        assert_eq!(view.loads.reported["eu"].value, 112.0);
        let rate = r#"{"rps": 30.5, "at": 1}"#;
        assert_eq!(
            apply(&mut view, &layout, &put("/g/rate/n2/eu", rate)),
            Some(true)
        );
        assert_eq!(
            apply(&mut view, &layout, &put("/g/rate/n1/eu", rate)),
            Some(false)
        );
        assert_eq!(view.loads.remote_rate("eu", |_| true), 30.5);
        assert_eq!(
            apply(&mut view, &layout, &Event::Delete("/g/rate/n2/eu".into())),
            Some(true)
        );
        assert!(view.loads.rates.is_empty());
        assert_eq!(
            apply(&mut view, &layout, &Event::Delete("/g/load/eu".into())),
            Some(true)
        );
        assert_eq!(
            apply(&mut view, &layout, &put("/g/drain/eu/1.2.3.4", "{}")),
            None
        );
        assert_eq!(
            apply(&mut view, &layout, &put("/g/load/eu", "junk")),
            Some(false)
        );
    }
}
