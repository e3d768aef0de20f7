//! cluster: `GET /api/v1/cluster`, the fleet as this node sees it: every
//! node (name, location, config hash, last seen, connected), config skew,
//! drains, and per endpoint the votes its state was decided from.

use crate::config::EndpointKey;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use std::sync::atomic::Ordering;

use super::AdminState;
use crate::health::fleet::FleetView;
use crate::health::{EndpointHealth, EndpointState};
use crate::metrics::ClusterCounters;
use crate::state::{FleetConfigState, Snapshot};
use crate::wallclock::unix_ms;

#[derive(Debug, Serialize)]
pub struct ClusterView {
    /// This node's name.
    pub node: String,
    /// etcd answers this node.
    pub connected: bool,
    /// The last time etcd answered (a keep-alive every `lease / 3`).
    pub last_contact_unix_ms: u64,
    /// Cut off from etcd and still counting the others' last verdicts
    /// (frozen) beside this node's own live one.
    pub frozen: bool,
    /// While frozen: when the kept verdicts go and this node decides alone.
    pub frozen_until_unix_ms: Option<u64>,
    /// `[cluster] partition_grace` in ms.
    pub partition_grace_ms: u64,
    /// Fresh vantages, this node included.
    pub vantages: usize,
    /// Some node runs a config whose hash differs from this node's.
    pub config_skew: bool,
    /// Another process publishes under this node's name.
    pub name_clash: bool,
    /// `[cluster] config = "etcd"`: the fleet config revision this node
    /// serves (None: its config is a file).
    pub config_revision: Option<u64>,
    /// Some node serves an older fleet config revision than another, or
    /// failed to load the newest.
    pub config_behind: bool,
    pub nodes: Vec<NodeView>,
    pub drains: Vec<DrainView>,
    /// Endpoints on which the vantages do not all agree.
    pub disputed: Vec<DisputedView>,
}

#[derive(Debug, Serialize)]
pub struct NodeView {
    pub name: String,
    pub this_node: bool,
    pub location: Option<[f64; 2]>,
    pub config: Option<String>,
    pub config_skew: bool,
    /// With the fleet's config in etcd: the revision it serves.
    pub config_revision: Option<u64>,
    /// It serves an older revision than the newest a node serves, or the
    /// newest revision did not load on it.
    pub config_behind: bool,
    /// The newest revision that did not load on it, and why.
    pub config_failed: Option<FailedView>,
    /// Its lease lives (its verdicts count).
    pub connected: bool,
    /// Its verdicts count as last heard: this node is cut off from etcd.
    pub frozen: bool,
    /// When it was last known alive (Unix ms): now for this node; for fresh
    /// nodes this node's last contact with etcd (a keep-alive every
    /// `lease / 3`, or a watch message), when etcd last held their lease;
    /// their departure for the others.
    pub last_seen_unix_ms: u64,
    pub started_unix_ms: Option<u64>,
}

#[derive(Debug, Serialize)]
pub struct FailedView {
    pub revision: u64,
    pub error: String,
}

#[derive(Debug, Serialize)]
pub struct DrainView {
    pub pool: String,
    pub address: String,
    /// Lifted on this node only while etcd is unreachable (pending etcd).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub undrained_locally: bool,
}

#[derive(Debug, Serialize)]
pub struct DisputedView {
    pub pool: String,
    pub address: String,
    pub state: EndpointState,
    pub votes: VotesView,
}

/// Votes on one endpoint: `down 2/3: fra1 refused, sin1 timeout; iad1 up`.
#[derive(Debug, Serialize)]
pub struct VotesView {
    pub down: u16,
    pub total: u16,
    pub summary: String,
    pub by: Vec<VoteView>,
}

#[derive(Debug, Serialize)]
pub struct VoteView {
    pub node: String,
    pub up: bool,
    pub reason: Option<String>,
    pub latency_ms: Option<f64>,
}

pub async fn get(State(st): State<AdminState>) -> Response {
    let snap = st.shared.load_full();
    match view(&snap, &st.registry.cluster, &st.shared.fleet_config()) {
        Some(v) => Json(v).into_response(),
        None => super::error(
            StatusCode::NOT_FOUND,
            "this node is not part of a fleet: no [cluster] in its config",
        ),
    }
}

/// The fleet as `snap` holds it; `counters` give the live time of the last
/// contact with etcd (the snapshot's is that of the last change handed over).
/// `fleet_config`: what this node did with the fleet config revisions.
pub fn view(
    snap: &Snapshot,
    counters: &ClusterCounters,
    fleet_config: &FleetConfigState,
) -> Option<ClusterView> {
    let cluster = snap.config.cluster.as_ref()?;
    let own_hash = format!("{:016x}", snap.config.fingerprint);
    let empty = FleetView::default();
    let fleet = snap.health.fleet.as_deref().unwrap_or(&empty);
    let now = unix_ms();
    let last_contact = fleet
        .last_contact
        .max(counters.last_contact_ms.load(Ordering::Relaxed));
    let mut nodes = vec![NodeView {
        name: cluster.node.clone(),
        this_node: true,
        location: cluster.location.map(|(a, b)| [a, b]),
        config: Some(own_hash.clone()),
        config_skew: false,
        config_revision: snap.config.fleet_revision,
        config_behind: false,
        config_failed: failed(fleet_config.failed.as_ref()),
        connected: fleet.connected,
        frozen: false,
        last_seen_unix_ms: now,
        started_unix_ms: None,
    }];
    for (name, node) in &fleet.remote {
        let config = node.info.as_ref().map(|i| i.config.clone());
        nodes.push(NodeView {
            name: name.to_string(),
            this_node: false,
            location: node.info.as_ref().and_then(|i| i.location),
            config_skew: config.as_deref().is_some_and(|c| c != own_hash),
            config,
            config_revision: node.info.as_ref().and_then(|i| i.config_revision),
            config_behind: false,
            config_failed: failed(node.info.as_ref().and_then(|i| i.config_failed.as_ref())),
            connected: true,
            frozen: !fleet.connected,
            last_seen_unix_ms: last_contact,
            started_unix_ms: node.info.as_ref().map(|i| i.started),
        });
    }
    for (name, when) in &fleet.departed {
        nodes.push(NodeView {
            name: name.to_string(),
            this_node: false,
            location: None,
            config: None,
            config_skew: false,
            config_revision: None,
            config_behind: false,
            config_failed: None,
            connected: false,
            frozen: false,
            last_seen_unix_ms: *when,
            started_unix_ms: None,
        });
    }
    // Behind: below the newest revision a connected node serves or failed
    // to load (a failure is behind too: it did not take the newest).
    let newest = nodes
        .iter()
        .filter(|n| n.connected)
        .flat_map(|n| {
            n.config_revision
                .into_iter()
                .chain(n.config_failed.as_ref().map(|f| f.revision))
        })
        .max();
    for n in nodes.iter_mut().filter(|n| n.connected) {
        n.config_behind = newest.is_some_and(|top| n.config_revision.is_none_or(|r| r < top));
    }
    let mut drains: Vec<DrainView> = fleet
        .drains
        .iter()
        .flat_map(|(pool, set)| {
            set.keys().map(move |a| DrainView {
                pool: pool.to_string(),
                address: a.to_string(),
                undrained_locally: fleet.undrained_locally(pool, a),
            })
        })
        .collect();
    drains.sort_by(|a, b| (&a.pool, &a.address).cmp(&(&b.pool, &b.address)));
    let mut disputed = Vec::new();
    for (pool, ph) in snap.config.pools.iter().zip(&snap.health.pools) {
        for (e, eh) in pool.endpoints.iter().zip(&ph.endpoints) {
            if let Some(v) = votes(snap, &pool.name, &e.key(), eh)
                && v.down > 0
            {
                disputed.push(DisputedView {
                    pool: pool.name.clone(),
                    address: e.key().to_string(),
                    state: eh.state,
                    votes: v,
                });
            }
        }
    }
    Some(ClusterView {
        node: cluster.node.clone(),
        connected: fleet.connected,
        last_contact_unix_ms: last_contact,
        frozen: fleet.frozen(),
        frozen_until_unix_ms: fleet.frozen_until(),
        partition_grace_ms: cluster.partition_grace.as_millis() as u64,
        vantages: fleet.vantages(),
        config_skew: nodes.iter().any(|n| n.config_skew),
        name_clash: fleet.name_clash,
        config_revision: snap.config.fleet_revision,
        config_behind: nodes.iter().any(|n| n.config_behind),
        nodes,
        drains,
        disputed,
    })
}

fn failed(f: Option<&(u64, String)>) -> Option<FailedView> {
    f.map(|(revision, error)| FailedView {
        revision: *revision,
        error: error.clone(),
    })
}

/// Every fresh vantage's vote on one endpoint, this node's first; None
/// outside a fleet (or for pools without a monitor).
pub fn votes(
    snap: &Snapshot,
    pool: &str,
    address: &EndpointKey,
    eh: &EndpointHealth,
) -> Option<VotesView> {
    let counted = eh.votes?;
    let fleet = snap.health.fleet.as_deref()?;
    let mut by = Vec::new();
    if eh.local != EndpointState::Unknown {
        by.push(VoteView {
            node: fleet.node.to_string(),
            up: eh.local == EndpointState::Up,
            reason: (eh.local == EndpointState::Down)
                .then(|| eh.last_error.as_deref().map(str::to_string))
                .flatten(),
            latency_ms: eh.latency.map(|l| l.as_secs_f64() * 1000.0),
        });
    }
    for (node, remote) in &fleet.remote {
        if let Some(v) = remote.endpoints.get(pool).and_then(|m| m.get(address)) {
            by.push(VoteView {
                node: node.to_string(),
                up: v.up,
                reason: v.reason.clone(),
                latency_ms: v.latency_ms,
            });
        }
    }
    let down: Vec<String> = by
        .iter()
        .filter(|v| !v.up)
        .map(|v| match &v.reason {
            Some(r) => format!("{} {r}", v.node),
            None => v.node.clone(),
        })
        .collect();
    let up: Vec<&str> = by
        .iter()
        .filter(|v| v.up)
        .map(|v| v.node.as_str())
        .collect();
    let mut summary = format!("down {}/{}", counted.down, counted.total);
    if !down.is_empty() {
        summary.push_str(&format!(": {}", down.join(", ")));
    }
    if !up.is_empty() {
        summary.push_str(&format!("; {} up", up.join(", ")));
    }
    Some(VotesView {
        down: counted.down,
        total: counted.total,
        summary,
        by,
    })
}
