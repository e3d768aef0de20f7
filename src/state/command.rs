//! command: what the control surface (admin actions, reloads, the fleet
//! link) asks of the one health writer, which applies commands in order.

use std::sync::Arc;

use tokio::sync::oneshot;

use super::Loaded;
use crate::config::{BackendId, PoolId};

/// What the admin API and reloads ask of the writer.
pub enum Command {
    Drain {
        pool: PoolId,
        endpoint: u32,
        draining: bool,
        done: oneshot::Sender<()>,
    },
    /// A gradual drain: the endpoint's weight ramps to zero over `over`,
    /// then it is drained.
    DrainOver {
        pool: PoolId,
        endpoint: u32,
        over: std::time::Duration,
        done: oneshot::Sender<()>,
    },
    /// A reported load for a pool with a capacity, valid for `ttl`.
    Load {
        pool: PoolId,
        value: f64,
        ttl: std::time::Duration,
        done: oneshot::Sender<()>,
    },
    /// A runtime weight for an endpoint (None: back to the config's).
    Weight {
        pool: PoolId,
        endpoint: u32,
        weight: Option<u32>,
        done: oneshot::Sender<()>,
    },
    /// A runtime weight for a proxy backend's server (None: back to the
    /// config's); the proxy takes it from the published view.
    ServerWeight {
        backend: BackendId,
        server: u32,
        weight: Option<u32>,
        done: oneshot::Sender<()>,
    },
    /// An operator's override of an endpoint's state (None: cleared).
    Override {
        pool: PoolId,
        endpoint: u32,
        forced: Option<crate::health::Forced>,
        done: oneshot::Sender<()>,
    },
    /// A pushed health for an endpoint of an `external` monitor's pool.
    Push {
        pool: PoolId,
        endpoint: u32,
        pushed: crate::health::Pushed,
        done: oneshot::Sender<()>,
    },
    /// What the fleet's other nodes publish (and the fleet-wide drains), as
    /// the cluster link last heard it.
    Fleet {
        view: Arc<crate::health::fleet::FleetView>,
        done: oneshot::Sender<()>,
    },
    /// Swap in a new config: health history is carried over for endpoints
    /// that did not change.
    Reload {
        loaded: Loaded,
        generation: u64,
        done: oneshot::Sender<()>,
    },
    /// A host endpoint's name resolved (its addresses, both families) or
    /// why it could not be, for every endpoint of config `generation`
    /// that names it (`crate::resolve`).
    Resolved {
        generation: u64,
        targets: Vec<(PoolId, u32)>,
        result: Result<Vec<std::net::IpAddr>, String>,
    },
    /// The signed zones signed again before their signatures expire; for
    /// the config `generation` they were made from (a reload since then
    /// brought its own).
    Resign {
        dnssec: Arc<crate::dnssec::Signatures>,
        generation: u64,
    },
}
