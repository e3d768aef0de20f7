//! views: the JSON shapes of `/api/v1/status` and `/api/v1/pools/{pool}/health`.

use serde::Serialize;

use super::AdminState;
use crate::config::PoolId;
use crate::control::ReloadStatus;
use crate::health::{EndpointState, PoolState};
use crate::state::Snapshot;

#[derive(Debug, Serialize)]
pub struct Status {
    pub config: ConfigInfo,
    /// The fleet, when `[cluster]` is configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<super::cluster::ClusterView>,
    pub pools: Vec<PoolView>,
    pub balance: Vec<BalanceView>,
    pub backends: serde_json::Value,
    /// The signed zones (`[dnssec]`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dnssec: Vec<DnssecView>,
}

#[derive(Debug, Serialize)]
pub struct DnssecView {
    pub zone: String,
    pub keys: Vec<DnssecKeyView>,
    pub signed_at_unix: u32,
    pub earliest_expiry_unix: u32,
}

#[derive(Debug, Serialize)]
pub struct DnssecKeyView {
    pub tag: u16,
    pub algorithm: u8,
    pub flags: u16,
}

#[derive(Debug, Serialize)]
pub struct ConfigInfo {
    pub path: String,
    pub generation: u64,
    #[serde(flatten)]
    pub reload: ReloadStatus,
}

#[derive(Debug, Serialize)]
pub struct PoolView {
    pub name: String,
    pub state: PoolState,
    /// 0..=1: the share of endpoints up, times (1 − error rate); 0 when down.
    pub score: f64,
    pub error_rate: f64,
    pub latency_ms: Option<f64>,
    /// Endpoints up and not draining; draining ones are counted apart.
    pub up: u32,
    pub draining: u32,
    pub total: u32,
    /// Per address family it has endpoints of (`v4`, `v6`): what A and AAAA
    /// queries see.
    pub families: std::collections::BTreeMap<&'static str, crate::health::FamilyHealth>,
    /// The newest error among its endpoints that are down (what to read
    /// when none is left to measure an error rate on).
    pub last_error: Option<String>,
    pub monitor: Option<String>,
    pub endpoints: Vec<EndpointView>,
    /// Fleet: vantages judging the pool degraded (error rate or latency).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub degraded_votes: Option<crate::health::fleet::Votes>,
    /// Back from down with `slow_start`: the share of its catchment it takes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ramp: Option<RampView>,
    /// With `capacity`: its load and what the spill controller does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capacity: Option<CapacityView>,
}

/// A pool's capacity, load and spill.
#[derive(Debug, Serialize)]
pub struct CapacityView {
    pub capacity: f64,
    pub spill_at: f64,
    /// Where the load comes from: `reported`, `proxy` or `load_header`.
    pub source: &'static str,
    /// The load while fresh (with `proxy`, the fleet's sum).
    pub load: Option<f64>,
    /// With `proxy`: this node's own requests per second.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy_rate: Option<f64>,
    pub utilisation: Option<f64>,
    /// The share of its catchment it keeps, per mille (1000: no spill).
    pub keep_permille: u16,
    /// It can take other pools' spilled clients.
    pub headroom: bool,
}

/// A slow start (`up`) or gradual drain (`down`) under way.
#[derive(Debug, Serialize)]
pub struct RampView {
    pub direction: crate::health::ramp::Direction,
    /// The share now, per mille: of the weight (endpoint), of the
    /// catchment (pool).
    pub permille: u16,
    pub start_unix_ms: u64,
    pub end_unix_ms: u64,
}

impl RampView {
    fn of(r: Option<crate::health::ramp::Ramp>, permille: u16) -> Option<RampView> {
        r.map(|r| RampView {
            direction: r.direction,
            permille,
            start_unix_ms: r.start_unix_ms,
            end_unix_ms: r.end_unix_ms,
        })
    }
}

#[derive(Debug, Serialize)]
pub struct EndpointView {
    pub address: String,
    /// `up`, `down`, `unknown`, or `draining` (drained by the operator,
    /// whatever its probes say: see `health`).
    pub state: &'static str,
    /// What its probes (or the fleet's quorum) say, drained or not.
    pub health: EndpointState,
    pub draining: bool,
    /// The weight answers draw with: the runtime weight when one is set,
    /// else the config's.
    pub weight: u32,
    /// The config's weight, when a runtime weight replaces it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config_weight: Option<u32>,
    pub error_rate: f64,
    pub latency_ms: Option<f64>,
    pub last_error: Option<String>,
    pub since_unix_ms: u64,
    /// DNS endpoints carry no in-flight count; proxy servers do (see backends).
    pub in_flight: Option<u64>,
    /// Fleet: this node's own verdict (`state` is the fleet's quorum).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_state: Option<EndpointState>,
    /// Fleet: every fresh vantage's vote.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub votes: Option<super::cluster::VotesView>,
    /// Fleet: drained fleet-wide but lifted on this node only while etcd is
    /// unreachable (`undrain --local`), pending etcd.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub undrained_locally: bool,
    /// A slow start or gradual drain under way: the share of its weight.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ramp: Option<RampView>,
    /// An operator's override of its state (`up` keeps it in answers
    /// despite failing checks, `down` takes it out), with its reason and end.
    #[serde(rename = "override", skip_serializing_if = "Option::is_none")]
    pub forced: Option<OverrideView>,
    /// Its last pushed health (`type = "external"` monitors).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pushed: Option<crate::health::Pushed>,
    /// A `host` endpoint: the addresses its name resolves to now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolved: Option<ResolvedView>,
}

/// A host endpoint's resolution.
#[derive(Debug, Serialize)]
pub struct ResolvedView {
    /// Each address with its own probe state.
    pub addresses: Vec<ResolvedAddressView>,
    /// The last successful resolution (0: none yet).
    pub resolved_unix_ms: u64,
    /// Resolution failing, the last addresses still answering.
    pub stale: bool,
    /// Failing since (Unix ms).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failing_since_unix_ms: Option<u64>,
    /// Failing for longer than `stale_for`: no address left.
    pub expired: bool,
    /// Why the last resolution failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One resolved address.
#[derive(Debug, Serialize)]
pub struct ResolvedAddressView {
    pub address: String,
    pub state: EndpointState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

impl ResolvedView {
    pub fn of(r: &crate::health::resolved::Resolved) -> ResolvedView {
        ResolvedView {
            addresses: r
                .addresses
                .iter()
                .map(|a| ResolvedAddressView {
                    address: a.ip.to_string(),
                    state: a.state,
                    last_error: a.last_error.as_deref().map(str::to_string),
                })
                .collect(),
            resolved_unix_ms: r.resolved_unix_ms,
            stale: r.stale(),
            failing_since_unix_ms: r.failing_since_unix_ms,
            expired: r.expired,
            error: r.error.as_deref().map(str::to_string),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct OverrideView {
    /// `up` or `down`.
    pub state: &'static str,
    pub reason: String,
    /// When it ends by itself; absent: until cleared.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until_unix_ms: Option<u64>,
}

impl OverrideView {
    pub fn of(f: &crate::health::Forced) -> OverrideView {
        OverrideView {
            state: f.state_str(),
            reason: f.reason.clone(),
            until_unix_ms: f.until_unix_ms,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct BalanceView {
    pub name: String,
    pub policy: &'static str,
    pub pools: Vec<String>,
    pub fallback: Option<String>,
    pub ttl: u32,
    pub min_ttl: u32,
    pub on_all_down: &'static str,
}

pub fn pool(snap: &Snapshot, id: PoolId) -> PoolView {
    let cfg = snap.config.pool(id);
    let h = snap.health.pool(id);
    let endpoints = cfg
        .endpoints
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let eh = h.and_then(|h| h.endpoints.get(i));
            let health = eh.map(|x| x.state).unwrap_or(EndpointState::Unknown);
            let forced = eh.and_then(|x| x.forced.as_ref());
            EndpointView {
                address: e.key().to_string(),
                state: match (
                    eh.is_some_and(|x| x.draining),
                    crate::health::forced_state(forced, health),
                ) {
                    (true, _) => "draining",
                    (false, EndpointState::Up) => "up",
                    (false, EndpointState::Down) => "down",
                    (false, EndpointState::Unknown) => "unknown",
                },
                health,
                draining: eh.is_some_and(|x| x.draining),
                weight: eh.and_then(|x| x.weight).unwrap_or(e.weight),
                config_weight: eh.and_then(|x| x.weight).map(|_| e.weight),
                error_rate: eh.map(|x| x.error_rate).unwrap_or(0.0),
                latency_ms: eh.and_then(|x| x.latency).map(|l| l.as_secs_f64() * 1000.0),
                last_error: eh.and_then(|x| x.last_error.as_deref().map(str::to_string)),
                since_unix_ms: eh.map(|x| x.since_unix_ms).unwrap_or(0),
                in_flight: None,
                local_state: eh.filter(|x| x.votes.is_some()).map(|x| x.local),
                votes: eh.and_then(|x| super::cluster::votes(snap, &cfg.name, &e.key(), x)),
                undrained_locally: snap
                    .health
                    .fleet
                    .as_ref()
                    .is_some_and(|f| f.undrained_locally(&cfg.name, &e.key())),
                ramp: eh.and_then(|x| RampView::of(x.ramp, x.ramp_permille)),
                forced: forced.map(OverrideView::of),
                pushed: eh.and_then(|x| x.pushed.clone()),
                resolved: eh.and_then(|x| x.resolved.as_ref()).map(ResolvedView::of),
            }
        })
        .collect();
    let (state, error_rate, latency, up, total) = match h {
        Some(h) => (h.state, h.error_rate, h.latency, h.up, h.total),
        None => (PoolState::Down, 0.0, None, 0, cfg.endpoints.len() as u32),
    };
    let score = if state == PoolState::Down || total == 0 {
        0.0
    } else {
        (up as f64 / total as f64) * (1.0 - error_rate).max(0.0)
    };
    PoolView {
        name: cfg.name.clone(),
        state,
        score,
        error_rate,
        latency_ms: latency.map(|l| l.as_secs_f64() * 1000.0),
        up,
        draining: h.map_or(0, |h| h.draining),
        total,
        families: h
            .into_iter()
            .flat_map(|h| h.present())
            .map(|(f, fh)| (f.as_str(), *fh))
            .collect(),
        last_error: h.and_then(|h| h.last_error.as_deref().map(str::to_string)),
        monitor: snap.config.monitor_of(id).map(|m| m.name.clone()),
        endpoints,
        degraded_votes: h.and_then(|h| h.degraded_votes),
        ramp: h.and_then(|h| RampView::of(h.ramp, h.admit_permille)),
        capacity: cfg.capacity.map(|c| CapacityView {
            capacity: c.max,
            spill_at: c.spill_at,
            source: c.load.name(),
            load: h.and_then(|h| h.load),
            proxy_rate: h.and_then(|h| h.proxy_rate),
            utilisation: h.and_then(|h| h.utilisation),
            keep_permille: h.map_or(1000, |h| h.keep_permille),
            headroom: h.is_none_or(|h| h.headroom),
        }),
    }
}

pub fn status(st: &AdminState) -> Status {
    let snap = st.shared.load_full();
    let pools = (0..snap.config.pools.len())
        .map(|i| pool(&snap, PoolId(i as u32)))
        .collect();
    let name = |p: &PoolId| snap.config.pool(*p).name.clone();
    let balance = snap
        .config
        .balance
        .iter()
        .map(|b| BalanceView {
            name: b.name.trim_end_matches('.').to_string(),
            policy: b.policy.as_str(),
            pools: b.pools.iter().map(name).collect(),
            fallback: b.fallback.as_ref().map(name),
            ttl: b.ttl,
            min_ttl: b.min_ttl,
            on_all_down: b.on_all_down.as_str(),
        })
        .collect();
    Status {
        cluster: super::cluster::view(&snap, &st.registry.cluster, &st.shared.fleet_config()),
        config: ConfigInfo {
            path: snap.config.path.display().to_string(),
            generation: snap.generation,
            reload: st.control.reload_status(),
        },
        pools,
        balance,
        backends: serde_json::to_value(st.control.proxies.status()).unwrap_or_default(),
        dnssec: snap
            .dnssec
            .zones
            .iter()
            .flatten()
            .map(|z| DnssecView {
                zone: z.signer.origin.to_string(),
                keys: z
                    .signer
                    .keys
                    .iter()
                    .map(|k| DnssecKeyView {
                        tag: k.tag,
                        algorithm: u8::from(k.algorithm()),
                        flags: k.flags(),
                    })
                    .collect(),
                signed_at_unix: z.signed_at,
                earliest_expiry_unix: z.expires,
            })
            .collect(),
    }
}
