//! health_txt: `TXT _health.<balanced name>`, one string per pool, so that
//! `dig TXT _health.www.example.test` shows health without the admin API.

use std::fmt::Write;

use crate::health::HealthView;
use crate::state::Snapshot;
use crate::steer::BalancedName;

/// The label that prefixes a balanced name for its health record.
pub const PREFIX: &str = "_health.";

/// One line per pool of `name`, in its configured order.
pub fn lines(name: &BalancedName, snap: &Snapshot) -> Vec<String> {
    name.config
        .pools
        .iter()
        .map(|p| line(&snap.config.pool(*p).name, p.index(), &snap.health))
        .collect()
}

fn line(pool: &str, index: usize, health: &HealthView) -> String {
    let Some(h) = health.pools.get(index) else {
        return format!("pool={pool} state=unknown");
    };
    let mut s = format!(
        "pool={pool} state={} up={}/{} err={:.2}%",
        h.state.as_str(),
        h.up,
        h.total,
        h.error_rate * 100.0
    );
    match h.latency {
        Some(l) => {
            let _ = write!(s, " latency={}ms", l.as_millis());
        }
        None => s.push_str(" latency=-"),
    }
    let draining = h.endpoints.iter().filter(|e| e.draining).count();
    if draining > 0 {
        let _ = write!(s, " draining={draining}");
    }
    // In a fleet: how many vantages vote each endpoint down (the most
    // disputed first), so `dig` shows the quorum too.
    if let Some(v) = h
        .endpoints
        .iter()
        .filter_map(|e| e.votes)
        .max_by_key(|v| (v.down, v.total))
    {
        let _ = write!(s, " votes={}/{}", v.down, v.total);
    }
    s
}
