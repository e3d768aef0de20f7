//! health_txt: `TXT _health.<balanced name>`, one string per pool, so that
//! `dig TXT _health.www.example.test` shows health without the admin API.

use std::fmt::Write;

use crate::health::{HealthView, PoolState};
use crate::state::Snapshot;
use crate::steer::BalancedName;

/// The label that prefixes a balanced name for its health record.
pub const PREFIX: &str = "_health.";

/// One line per pool `name` can answer from: its `pools` in order, then the
/// pools only its geo rules or `fallback` name.
pub fn lines(name: &BalancedName, snap: &Snapshot) -> Vec<String> {
    let c = &name.config;
    let mut pools: Vec<crate::config::PoolId> = Vec::new();
    let all = c
        .pools
        .iter()
        .chain(c.subnets.iter().flat_map(|(_, p)| p.iter()))
        .chain(c.countries.values().flatten())
        .chain(c.continents.values().flatten())
        .chain(c.fallback.iter());
    for p in all {
        if !pools.contains(p) {
            pools.push(*p);
        }
    }
    pools
        .iter()
        .map(|p| line(name, &snap.config.pool(*p).name, p.index(), &snap.health))
        .collect()
}

/// `pool=eu-west state=down up=1/2 err=0.00% latency=12ms v4=down:0/1
/// v6=healthy:1/1 ttl=15:down`: the pool's worst family, usable of all
/// endpoints (`draining=N` when any), the error rate (with nothing up to
/// measure, `err=-` and the last error), each family of a dual-stack pool,
/// and the TTL an answer from it gets as first candidate, with why when it
/// is `min_ttl`; `votes=` in a fleet.
fn line(name: &BalancedName, pool: &str, index: usize, health: &HealthView) -> String {
    let Some(h) = health.pools.get(index) else {
        return format!("pool={pool} state=unknown");
    };
    let mut s = format!(
        "pool={pool} state={} up={}/{}",
        h.state.as_str(),
        h.up,
        h.total
    );
    if h.draining > 0 {
        let _ = write!(s, " draining={}", h.draining);
    }
    if h.up == 0 {
        s.push_str(" err=-");
        if let Some(e) = &h.last_error {
            let _ = write!(s, " last_error={:?}", e.replace('"', "'"));
        }
    } else {
        let _ = write!(s, " err={:.2}%", h.error_rate * 100.0);
    }
    match h.latency {
        Some(l) => {
            let _ = write!(s, " latency={}ms", l.as_millis());
        }
        None => s.push_str(" latency=-"),
    }
    if h.present().count() > 1 {
        for (f, fh) in h.present() {
            let _ = write!(
                s,
                " {}={}:{}/{}",
                f.as_str(),
                fh.state.as_str(),
                fh.up,
                fh.total
            );
        }
    }
    // Host endpoints: their resolved addresses passing of all, and how
    // many answer from stale addresses (or none: past stale_for).
    let hosts = h.endpoints.iter().filter_map(|e| e.resolved.as_ref());
    if hosts.clone().next().is_some() {
        let (up, total) = hosts.clone().fold((0, 0), |(u, t), r| {
            let up = r
                .addresses
                .iter()
                .filter(|a| a.state == crate::health::EndpointState::Up)
                .count();
            (u + up, t + r.addresses.len())
        });
        let _ = write!(s, " addrs={up}/{total}");
        let stale = hosts.clone().filter(|r| r.stale()).count();
        if stale > 0 {
            let _ = write!(s, " stale={stale}");
        }
        let expired = hosts.filter(|r| r.expired).count();
        if expired > 0 {
            let _ = write!(s, " expired={expired}");
        }
    }
    if let Some(u) = h.utilisation {
        let _ = write!(s, " util={:.0}%", u * 100.0);
    }
    if h.keep_permille < 1000 {
        let _ = write!(s, " keep={}%", h.keep_permille / 10);
    }
    let cfg = &name.config;
    let reduced = match h.state {
        PoolState::Down => Some("down"),
        PoolState::Degraded => Some("degraded"),
        PoolState::Healthy if h.present().any(|(_, f)| !f.whole()) => Some("not-whole"),
        PoolState::Healthy => None,
    };
    match reduced {
        Some(why) => {
            let _ = write!(s, " ttl={}:{why}", cfg.min_ttl);
        }
        None => {
            let _ = write!(s, " ttl={}", cfg.ttl);
        }
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
