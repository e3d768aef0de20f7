//! Drains through etcd: the admin API's drain and undrain requests written
//! to `PREFIX/drain/...`, refused while etcd is unreachable except a local
//! undrain, which [`Link::reconcile`] later settles with etcd.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::etcd::{self, EtcdError, Event, Write};
use super::store::{self};
use crate::config::EndpointKey;
use crate::health::fleet::{DrainRecord, FleetView, LocalUndrain, Reconcile};
use crate::wallclock::unix_ms;

use super::{Applied, Link, Request};

impl Link {
    /// Lifts the fleet-wide drain of `address` of `pool` on this node only
    /// (etcd is unreachable), until [`reconcile`](Self::reconcile) settles
    /// it with etcd.
    pub(super) async fn undrain_locally(&mut self, pool: &str, address: EndpointKey) -> Applied {
        if self.view.undrained_locally(pool, &address) {
            return Applied::Local;
        }
        let Some(lifted) = self.view.drain_record(pool, &address).cloned() else {
            return Applied::NotDrained;
        };
        self.view.local_undrains.insert(
            (Arc::from(pool), address.clone()),
            LocalUndrain {
                at: unix_ms(),
                lifted,
            },
        );
        tracing::warn!(
            pool,
            endpoint = %address,
            "fleet: drain lifted on this node only while etcd is unreachable (undrained locally, pending etcd); written to etcd when it returns, unless the drain changes there meanwhile"
        );
        self.push_now().await;
        Applied::Local
    }

    /// Settles the local undrains with what etcd holds now (`view`, just
    /// read at one revision; `raw`: the drain keys' values as read): still
    /// the drain that was lifted, it is deleted in etcd (only if unchanged
    /// since the read); gone, nothing to do; changed, etcd wins. Each
    /// outcome is logged and recorded as an event.
    pub(super) async fn reconcile(
        &mut self,
        view: &mut FleetView,
        raw: &HashMap<String, Vec<u8>>,
    ) -> Result<(), EtcdError> {
        let pending: Vec<_> = self
            .view
            .local_undrains
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for ((pool, address), local) in pending {
            let key = self.layout.drain(&pool, &address);
            let mut outcome =
                crate::health::fleet::reconcile(&local, view.drain_record(&pool, &address));
            if outcome == Reconcile::Write {
                let unchanged = match raw.get(&key) {
                    Some(value) => self.etcd.delete_if(&key, value).await?,
                    None => false,
                };
                self.counters.txns.fetch_add(1, Ordering::Relaxed);
                if unchanged {
                    self.counters.deletes.fetch_add(1, Ordering::Relaxed);
                    store::apply(
                        view,
                        &self.layout,
                        &self.instance,
                        &Event::Delete(key),
                        unix_ms(),
                    );
                } else {
                    // Changed between the read and the delete: the watch
                    // (from the read's revision) brings the new value.
                    outcome = Reconcile::EtcdWins(local.lifted.clone());
                }
            }
            self.view
                .local_undrains
                .remove(&(pool.clone(), address.clone()));
            let (state, reason) = match &outcome {
                Reconcile::Write => {
                    tracing::info!(
                        pool = %pool,
                        endpoint = %address,
                        "fleet: etcd is back: the local undrain is written to etcd, the endpoint is undrained fleet-wide"
                    );
                    (
                        "undrained",
                        "local undrain written to etcd: fleet-wide now".to_string(),
                    )
                }
                Reconcile::Agreed => {
                    tracing::info!(
                        pool = %pool,
                        endpoint = %address,
                        "fleet: etcd is back: the endpoint was undrained in etcd meanwhile, nothing to write"
                    );
                    (
                        "undrained",
                        "etcd returned: undrained fleet-wide meanwhile".to_string(),
                    )
                }
                Reconcile::EtcdWins(r) => {
                    tracing::warn!(
                        pool = %pool,
                        endpoint = %address,
                        by = %r.by,
                        "fleet: etcd is back: the drain changed in etcd meanwhile; etcd wins, the local undrain is dropped and the endpoint is drained here again"
                    );
                    (
                        "drained",
                        format!(
                            "etcd wins: drained in etcd by {} while this node was cut off; local undrain dropped",
                            r.by
                        ),
                    )
                }
            };
            self.shared.events.record([crate::events::Event::drain(
                unix_ms(),
                &pool,
                &address.to_string(),
                state,
                "undrained locally",
                reason,
            )]);
        }
        Ok(())
    }

    pub(super) async fn request(&mut self, req: Request) -> Result<(), EtcdError> {
        match req {
            Request::Load {
                pool,
                value,
                ttl_ms,
                done,
            } => self.record_load(pool, value, ttl_ms, done).await,
            Request::Record {
                pool,
                address,
                lever,
                done,
            } => {
                let what = lever.what();
                let (key, value) = match lever {
                    super::Lever::Weight(w) => (
                        self.layout.weight(&pool, &address),
                        w.map(|weight| {
                            serde_json::to_string(&crate::health::fleet::WeightRecord {
                                weight,
                                by: self.view.node.to_string(),
                                at: unix_ms(),
                            })
                            .unwrap_or_default()
                        }),
                    ),
                    super::Lever::Override(f) => (
                        self.layout.override_(&pool, &address),
                        f.map(|f| serde_json::to_string(&f).unwrap_or_default()),
                    ),
                    super::Lever::Pushed(p) => (
                        self.layout.pushed(&pool, &address),
                        Some(serde_json::to_string(&p).unwrap_or_default()),
                    ),
                };
                let write = match value {
                    Some(v) => Write::Put(key, v, 0),
                    None => Write::Delete(key),
                };
                match self.write(std::slice::from_ref(&write)).await {
                    Ok(()) => {
                        let event = match write {
                            Write::Put(key, value, _) => Event::Put(etcd::Kv {
                                key,
                                value: value.into_bytes(),
                            }),
                            Write::Delete(key) => Event::Delete(key),
                        };
                        store::apply(
                            &mut self.view,
                            &self.layout,
                            &self.instance,
                            &event,
                            unix_ms(),
                        );
                        self.push_now().await;
                        let _ = done.send(Ok(()));
                        Ok(())
                    }
                    Err(e) => {
                        let _ = done.send(Err(format!(
                            "{e}: a fleet-wide {what} cannot be recorded now"
                        )));
                        Err(e)
                    }
                }
            }
            Request::Drain {
                pool,
                address,
                draining,
                over,
                done,
                ..
            } => {
                let key = self.layout.drain(&pool, &address);
                let write = if draining {
                    let record = DrainRecord {
                        by: self.view.node.to_string(),
                        at: unix_ms(),
                        over_ms: over.map(|d| d.as_millis() as u64),
                    };
                    Write::Put(key, serde_json::to_string(&record).unwrap_or_default(), 0)
                } else {
                    Write::Delete(key)
                };
                match self.write(std::slice::from_ref(&write)).await {
                    Ok(()) => {
                        // Applied here as the watch will deliver it, so the
                        // drain holds before this returns.
                        let event = match write {
                            Write::Put(key, value, _) => Event::Put(etcd::Kv {
                                key,
                                value: value.into_bytes(),
                            }),
                            Write::Delete(key) => Event::Delete(key),
                        };
                        store::apply(
                            &mut self.view,
                            &self.layout,
                            &self.instance,
                            &event,
                            unix_ms(),
                        );
                        self.push_now().await;
                        let _ = done.send(Ok(Applied::FleetWide));
                        Ok(())
                    }
                    Err(e) => {
                        let _ = done.send(Err(refusal(&pool, &address, draining, &e.to_string())));
                        Err(e)
                    }
                }
            }
        }
    }
}

/// Why a drain or undrain cannot be recorded in etcd now; an undrain's
/// names the local one that can.
pub(super) fn refusal(pool: &str, address: &EndpointKey, draining: bool, why: &str) -> String {
    if draining {
        format!("{why}: a fleet-wide drain cannot be recorded now")
    } else {
        format!(
            "{why}: a fleet-wide undrain cannot be recorded now; `geosteer undrain --local {pool} {address}` (POST .../undrain?local=true) returns it on this node only until etcd is back"
        )
    }
}
