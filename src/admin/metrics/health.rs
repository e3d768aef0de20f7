//! health: pool and endpoint states from the current snapshot, probe results
//! and latency from their atomics, and the fleet link's figures.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;

use super::{Series, counter, counters, gauge, gauges, histograms};
use crate::health::{EndpointState, PoolState};
use crate::metrics::{PROBE_BUCKETS, ProbeCounters, Registry};
use crate::state::{Shared, Snapshot};

pub(super) struct Health {
    pub shared: Arc<Shared>,
    pub registry: Arc<Registry>,
}

impl fmt::Debug for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Health")
    }
}

impl Collector for Health {
    fn encode(&self, mut enc: DescriptorEncoder) -> fmt::Result {
        let snap = self.shared.load_full();
        states(&mut enc, &snap)?;
        probes(&mut enc, &self.registry.probes())?;
        backend_probes(&mut enc, &self.registry.backend_probes())?;
        if snap.config.cluster.is_some() {
            cluster(
                &mut enc,
                &self.registry.cluster,
                &snap,
                &self.shared.fleet_config(),
            )?;
        }
        dnssec(&mut enc, &snap)
    }
}

/// Signatures made, and how long until the earliest one expires.
fn dnssec(enc: &mut DescriptorEncoder, snap: &crate::state::Snapshot) -> fmt::Result {
    super::counter(
        enc,
        "geosteer_dnssec_signatures",
        "RRSIGs made since start-up (at load, on refresh and on demand).",
        crate::dnssec::SIGNATURES.load(std::sync::atomic::Ordering::Relaxed),
    )?;
    let Some(expiry) = snap.dnssec.earliest_expiry() else {
        return Ok(());
    };
    let now = crate::wallclock::unix_secs() as i64;
    super::gauge(
        enc,
        "geosteer_dnssec_earliest_expiry_seconds",
        "Seconds until the earliest signature of the signed zones expires.",
        i64::from(expiry) - now,
    )
}

/// One row per endpoint with its labels, for the families below.
struct Endpoint<'a> {
    pool: &'a str,
    address: String,
    health: &'a crate::health::EndpointHealth,
}

fn states(enc: &mut DescriptorEncoder, snap: &Snapshot) -> fmt::Result {
    let pools: Vec<_> = snap
        .config
        .pools
        .iter()
        .zip(&snap.health.pools)
        .map(|(p, h)| (p.name.as_str(), h))
        .collect();
    let endpoints: Vec<Endpoint> = snap
        .config
        .pools
        .iter()
        .zip(&snap.health.pools)
        .flat_map(|(p, h)| {
            p.endpoints
                .iter()
                .zip(&h.endpoints)
                .map(move |(e, eh)| Endpoint {
                    pool: &p.name,
                    address: e.key().to_string(),
                    health: eh,
                })
        })
        .collect();
    gauges(
        enc,
        "geosteer_pool_state",
        "Pool state: 1 for the current state, 0 for the others.",
        pools.iter().flat_map(|(pool, h)| {
            [PoolState::Healthy, PoolState::Degraded, PoolState::Down]
                .into_iter()
                .map(move |s| {
                    (
                        [("pool", *pool), ("state", s.as_str())],
                        u64::from(h.state == s),
                    )
                })
        }),
    )?;
    gauges(
        enc,
        "geosteer_pool_family_state",
        "Pool state for queries of one address family (v4: A, v6: AAAA): 1 for the current state, 0 for the others.",
        pools.iter().flat_map(|(pool, h)| {
            h.present().flat_map(move |(family, f)| {
                [PoolState::Healthy, PoolState::Degraded, PoolState::Down]
                    .into_iter()
                    .map(move |s| {
                        (
                            [
                                ("pool", *pool),
                                ("family", family.as_str()),
                                ("state", s.as_str()),
                            ],
                            u64::from(f.state == s),
                        )
                    })
            })
        }),
    )?;
    gauges(
        enc,
        "geosteer_pool_endpoints",
        "Pool endpoints by family and status (up: usable; draining; total).",
        pools.iter().flat_map(|(pool, h)| {
            h.present().flat_map(move |(family, f)| {
                [("up", f.up), ("draining", f.draining), ("total", f.total)]
                    .into_iter()
                    .map(move |(status, n)| {
                        (
                            [
                                ("pool", *pool),
                                ("family", family.as_str()),
                                ("status", status),
                            ],
                            u64::from(n),
                        )
                    })
            })
        }),
    )?;
    gauges(
        enc,
        "geosteer_pool_error_rate",
        "Pool error rate over its window (0 to 1).",
        pools
            .iter()
            .map(|(pool, h)| ([("pool", *pool)], h.error_rate)),
    )?;
    gauges(
        enc,
        "geosteer_pool_latency_seconds",
        "Pool smoothed latency.",
        pools
            .iter()
            .filter_map(|(pool, h)| Some(([("pool", *pool)], h.latency?.as_secs_f64()))),
    )?;
    gauges(
        enc,
        "geosteer_endpoint_overrides",
        "Endpoints whose state an operator overrides, by pool and forced state (up or down).",
        pools.iter().flat_map(|(pool, h)| {
            [true, false].map(|up| {
                let n = h
                    .endpoints
                    .iter()
                    .filter(|e| e.forced.as_ref().is_some_and(|f| f.up == up))
                    .count();
                (
                    [("pool", *pool), ("state", if up { "up" } else { "down" })],
                    n as u64,
                )
            })
        }),
    )?;
    gauges(
        enc,
        "geosteer_pool_load",
        "A pool's load while fresh (pools with a capacity): reported, the proxy's request rate summed over the fleet, or its monitor's load_header.",
        pools
            .iter()
            .filter_map(|(pool, h)| Some(([("pool", *pool)], h.load?))),
    )?;
    gauges(
        enc,
        "geosteer_pool_utilisation",
        "A pool's load over its capacity while the load is fresh.",
        pools
            .iter()
            .filter_map(|(pool, h)| Some(([("pool", *pool)], h.utilisation?))),
    )?;
    gauges(
        enc,
        "geosteer_pool_proxy_rate",
        "Requests per second this node's proxy forwarded for a pool with load = \"proxy\" (its load is the fleet's sum).",
        pools
            .iter()
            .filter_map(|(pool, h)| Some(([("pool", *pool)], h.proxy_rate?))),
    )?;
    gauges(
        enc,
        "geosteer_pool_catchment_share",
        "The share of its catchment a pool answers (0 to 1): below 1 while it spills over capacity or takes its clients back after slow start.",
        pools
            .iter()
            .map(|(pool, h)| ([("pool", *pool)], f64::from(h.share_permille()) / 1000.0)),
    )?;
    gauges(
        enc,
        "geosteer_endpoint_up",
        "Endpoint usable in answers (up or forced up, and not draining); state is up, down, unknown or draining.",
        endpoints.iter().map(|e| {
            let state = match crate::health::forced_state(e.health.forced.as_ref(), e.health.state)
            {
                _ if e.health.draining => "draining",
                EndpointState::Up => "up",
                EndpointState::Down => "down",
                EndpointState::Unknown => "unknown",
            };
            (
                [
                    ("pool", e.pool),
                    ("endpoint", e.address.as_str()),
                    ("state", state),
                ],
                u64::from(e.health.usable()),
            )
        }),
    )?;
    let hosts = || {
        endpoints
            .iter()
            .filter_map(|e| Some((e, e.health.resolved.as_ref()?)))
    };
    gauges(
        enc,
        "geosteer_endpoint_address_up",
        "A host endpoint's resolved address passing its probes (1) or not (0).",
        hosts().flat_map(|(e, r)| {
            r.addresses.iter().map(move |a| {
                (
                    [
                        ("pool", e.pool.to_string()),
                        ("endpoint", e.address.clone()),
                        ("address", a.ip.to_string()),
                    ],
                    u64::from(a.state == EndpointState::Up),
                )
            })
        }),
    )?;
    gauges(
        enc,
        "geosteer_endpoint_resolve_stale",
        "A host endpoint whose name fails to resolve: 1 while its last addresses are kept (stale) or dropped past stale_for (expired), else 0.",
        hosts().map(|(e, r)| {
            (
                [("pool", e.pool), ("endpoint", e.address.as_str())],
                u64::from(r.failing_since_unix_ms.is_some()),
            )
        }),
    )?;
    gauges(
        enc,
        "geosteer_endpoint_resolved_timestamp_seconds",
        "When a host endpoint's name last resolved (Unix seconds; 0: never).",
        hosts().map(|(e, r)| {
            (
                [("pool", e.pool), ("endpoint", e.address.as_str())],
                r.resolved_unix_ms as f64 / 1000.0,
            )
        }),
    )?;
    gauges(
        enc,
        "geosteer_endpoint_latency_seconds",
        "Endpoint smoothed probe latency.",
        endpoints.iter().filter_map(|e| {
            Some((
                [("pool", e.pool), ("endpoint", e.address.as_str())],
                e.health.latency?.as_secs_f64(),
            ))
        }),
    )
}

type Probes = [((String, String), Arc<ProbeCounters>)];

fn probes(enc: &mut DescriptorEncoder, probes: &Probes) -> fmt::Result {
    counters(
        enc,
        "geosteer_probe_results",
        "Probe results by pool, endpoint and result (ok or failed).",
        probes.iter().flat_map(|((pool, ep), c)| {
            [("ok", &c.ok), ("failed", &c.failed)].map(|(result, v)| {
                (
                    [
                        ("pool", pool.as_str()),
                        ("endpoint", ep.as_str()),
                        ("result", result),
                    ],
                    v.load(Ordering::Relaxed),
                )
            })
        }),
    )?;
    histograms(
        enc,
        "geosteer_probe_duration_seconds",
        "Probe latency.",
        probes.iter().map(|((pool, ep), c)| Series {
            labels: [("pool", pool.as_str()), ("endpoint", ep.as_str())],
            buckets: probe_buckets(c),
            sum: c.sum_micros.load(Ordering::Relaxed) as f64 / 1e6,
        }),
    )
}

/// Active checks of proxy backends' servers: their own families, labelled
/// by backend and server (`host:port`).
fn backend_probes(enc: &mut DescriptorEncoder, probes: &Probes) -> fmt::Result {
    if probes.is_empty() {
        return Ok(());
    }
    counters(
        enc,
        "geosteer_backend_probe_results",
        "Active checks of proxy backends' servers by backend, server and result (ok or failed).",
        probes.iter().flat_map(|((backend, server), c)| {
            [("ok", &c.ok), ("failed", &c.failed)].map(|(result, v)| {
                (
                    [
                        ("backend", backend.as_str()),
                        ("server", server.as_str()),
                        ("result", result),
                    ],
                    v.load(Ordering::Relaxed),
                )
            })
        }),
    )?;
    histograms(
        enc,
        "geosteer_backend_probe_duration_seconds",
        "Active check latency of proxy backends' servers.",
        probes.iter().map(|((backend, server), c)| Series {
            labels: [("backend", backend.as_str()), ("server", server.as_str())],
            buckets: probe_buckets(c),
            sum: c.sum_micros.load(Ordering::Relaxed) as f64 / 1e6,
        }),
    )
}

/// [`ProbeCounters`] keeps cumulative counts (then the total), bumped in that
/// order without a lock. Racing: a scrape may see a bucket bumped and the next
/// not yet; taking the running maximum keeps the histogram monotone.
fn probe_buckets(c: &ProbeCounters) -> Vec<(f64, u64)> {
    let bounds = PROBE_BUCKETS.iter().copied().chain([f64::INFINITY]);
    let mut below = 0;
    bounds
        .zip(&c.buckets)
        .map(|(bound, n)| {
            let cumulative = n.load(Ordering::Relaxed).max(below);
            let here = cumulative - below;
            below = cumulative;
            (bound, here)
        })
        .collect()
}

/// The fleet link: connection, vantages, what it wrote to etcd.
fn cluster(
    enc: &mut DescriptorEncoder,
    c: &crate::metrics::ClusterCounters,
    snap: &Snapshot,
    fleet_config: &crate::state::FleetConfigState,
) -> fmt::Result {
    let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let fleet = snap.health.fleet.as_deref();
    let view = crate::admin::cluster::view(snap, c, fleet_config);
    let skew = view.as_ref().is_some_and(|v| v.config_skew);
    if let Some(revision) = snap.config.fleet_revision {
        gauge(
            enc,
            "geosteer_fleet_config_revision",
            "The fleet config revision (etcd, `geosteer config push`) this node serves.",
            revision,
        )?;
        gauge(
            enc,
            "geosteer_fleet_config_failed_revision",
            "The newest fleet config revision that did not load on this node (0: none).",
            fleet_config.failed.as_ref().map_or(0, |(n, _)| *n),
        )?;
        gauge(
            enc,
            "geosteer_fleet_config_behind",
            "1 when some connected node serves an older fleet config revision than another, or failed to load the newest.",
            u64::from(view.as_ref().is_some_and(|v| v.config_behind)),
        )?;
    }
    gauge(
        enc,
        "geosteer_cluster_connected",
        "1 while etcd answers this node.",
        get(&c.connected),
    )?;
    gauge(
        enc,
        "geosteer_cluster_vantages",
        "Fresh vantages whose verdicts count, this node included.",
        fleet.map_or(1, |f| f.vantages() as u64),
    )?;
    gauge(
        enc,
        "geosteer_cluster_frozen",
        "1 while this node, cut off from etcd, still counts the other nodes' last verdicts (partition_grace).",
        u64::from(fleet.is_some_and(|f| f.frozen())),
    )?;
    gauge(
        enc,
        "geosteer_cluster_frozen_vantages",
        "Other nodes whose last verdicts count while this node is cut off from etcd.",
        fleet
            .filter(|f| f.frozen())
            .map_or(0, |f| f.remote.len() as u64),
    )?;
    gauge(
        enc,
        "geosteer_cluster_config_skew",
        "1 when a fresh node runs a config whose hash differs from this node's.",
        u64::from(skew),
    )?;
    for (name, help, v) in [
        (
            "geosteer_cluster_etcd_txns",
            "Write transactions sent to etcd (up to 128 puts and deletes each).",
            &c.txns,
        ),
        (
            "geosteer_cluster_etcd_puts",
            "Keys this node put in etcd (its verdicts, node record, drains).",
            &c.puts,
        ),
        (
            "geosteer_cluster_etcd_deletes",
            "Keys this node deleted in etcd.",
            &c.deletes,
        ),
        (
            "geosteer_cluster_etcd_keepalives",
            "Lease keep-alives sent to etcd.",
            &c.keepalives,
        ),
        (
            "geosteer_cluster_syncs",
            "Times the link to etcd was (re)established with a full read.",
            &c.syncs,
        ),
        (
            "geosteer_cluster_etcd_data_lost",
            "Times this node found that etcd lost the fleet's data (new cluster id, revision backwards, epoch gone) and kept its last known drains, weights, overrides and pushed health.",
            &c.data_lost,
        ),
    ] {
        counter(enc, name, help, get(v))?;
    }
    Ok(())
}
