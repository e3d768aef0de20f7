//! What changed between two health views, as events: endpoints, drains,
//! weights and pools by pool name and address, and the proxy's servers by
//! backend name and address. Pure: the time is passed in.

use std::collections::HashMap;

use super::{Cause, Event, Kind, ms};
use crate::config::{Config, EndpointKey, PoolId};
use crate::health::{EndpointHealth, EndpointState, HealthView, PoolHealth, PoolState};

/// Appends to `out` what changed from `before` (of the config whose pool
/// names and addresses are `before_names`) to `after` (of `config`):
/// endpoints and pools matched by pool name and address, so a reload
/// compares like with like. Returns true when a pool's state changed. Pure.
pub fn changes(
    before_names: &[(String, Vec<EndpointKey>)],
    before: &HealthView,
    config: &Config,
    after: &HealthView,
    cause: Cause,
    at_unix_ms: u64,
    out: &mut Vec<Event>,
) -> bool {
    let same_layout = before_names.len() == config.pools.len()
        && before_names.iter().zip(&config.pools).all(|((n, a), p)| {
            *n == p.name
                && a.len() == p.endpoints.len()
                && a.iter()
                    .zip(&p.endpoints)
                    .all(|(a, e)| e.target.key() == *a)
        });
    let by_name: HashMap<&str, usize> = if same_layout {
        HashMap::new()
    } else {
        before_names
            .iter()
            .enumerate()
            .map(|(i, (n, _))| (n.as_str(), i))
            .collect()
    };
    let mut pools_changed = false;
    for (i, (pool_cfg, now)) in config.pools.iter().zip(&after.pools).enumerate() {
        let j = if same_layout {
            Some(i)
        } else {
            by_name.get(pool_cfg.name.as_str()).copied()
        };
        let Some((j, was)) = j.and_then(|j| before.pools.get(j).map(|p| (j, p))) else {
            continue;
        };
        let monitor = config.monitor_of(PoolId(i as u32));
        for (k, (e_cfg, e)) in pool_cfg.endpoints.iter().zip(&now.endpoints).enumerate() {
            let k_before = if same_layout {
                Some(k)
            } else {
                before_names[j].1.iter().position(|a| *a == e_cfg.key())
            };
            let Some(prev) = k_before.and_then(|k| was.endpoints.get(k)) else {
                continue;
            };
            let endpoint_event = |state: &str, from: &str, reason: String| Event {
                pool: Some(pool_cfg.name.clone()),
                endpoint: Some(e_cfg.key().to_string()),
                from: Some(from.into()),
                ..Event::new(at_unix_ms, Kind::Endpoint, state, reason)
            };
            if prev.state != e.state && e.state != EndpointState::Unknown {
                out.push(endpoint_event(
                    state_str(e.state),
                    state_str(prev.state),
                    endpoint_reason(e),
                ));
            }
            if let (Some(was), Some(r)) = (&prev.resolved, &e.resolved) {
                resolve_events(
                    was,
                    r,
                    &|state: &str, from: &str, reason: String| Event {
                        kind: Kind::Resolve,
                        ..endpoint_event(state, from, reason)
                    },
                    out,
                );
            }
            if prev.draining != e.draining {
                let local = cause == Cause::Fleet
                    && !e.draining
                    && after
                        .fleet
                        .as_ref()
                        .is_some_and(|f| f.undrained_locally(&pool_cfg.name, &e_cfg.key()));
                let reason = match cause {
                    _ if local => "on this node only, etcd unreachable (pending etcd)",
                    Cause::Fleet => "fleet-wide (etcd)",
                    Cause::Reload(_) => "kept across the reload",
                    _ => "operator (admin API)",
                };
                let (state, from) = if e.draining {
                    ("drained", "in rotation")
                } else {
                    ("undrained", "drained")
                };
                out.push(Event {
                    kind: Kind::Drain,
                    ..endpoint_event(state, from, reason.into())
                });
            }
            if let (None, Some(r)) = (prev.ramp, e.ramp) {
                use crate::health::ramp::Direction;
                let secs = r.end_unix_ms.saturating_sub(r.start_unix_ms) / 1000;
                out.push(match r.direction {
                    Direction::Down => Event {
                        kind: Kind::Drain,
                        ..endpoint_event(
                            "draining gradually",
                            "in rotation",
                            format!(
                                "weight to 0 over {secs}s, then drained ({})",
                                if cause == Cause::Fleet {
                                    "fleet-wide, etcd"
                                } else {
                                    "admin API"
                                }
                            ),
                        )
                    },
                    Direction::Up => Event {
                        kind: Kind::Weight,
                        ..endpoint_event(
                            "slow start",
                            "out of answers",
                            format!("weight 10% to 100% over {secs}s (slow_start)"),
                        )
                    },
                });
            }
            if prev.weight != e.weight {
                let show = |w: Option<u32>| match w {
                    Some(w) => format!("weight {w}"),
                    None => format!("config weight {}", e_cfg.weight),
                };
                out.push(Event {
                    kind: Kind::Weight,
                    ..endpoint_event(
                        "weight",
                        &show(prev.weight),
                        match cause {
                            Cause::Fleet => format!("{} (fleet-wide, etcd)", show(e.weight)),
                            _ => format!("{} (admin API)", show(e.weight)),
                        },
                    )
                });
            }
            if prev.forced != e.forced {
                let show = |f: &Option<crate::health::Forced>| match f {
                    Some(f) => format!("override {}", f.state_str()),
                    None => "no override".to_string(),
                };
                let (state, reason) = match (&prev.forced, &e.forced) {
                    (_, Some(f)) => {
                        let until = match f.until_unix_ms {
                            Some(u) => format!(", until {}", super::rfc3339(u)),
                            None => String::new(),
                        };
                        (show(&e.forced), format!("{}{until}", f.reason))
                    }
                    (Some(f), None) if cause == Cause::Health => (
                        "expired".to_string(),
                        format!("its time ran out ({})", f.reason),
                    ),
                    (prev, _) => (
                        "cleared".to_string(),
                        prev.as_ref()
                            .map(|f| f.reason.to_string())
                            .unwrap_or_default(),
                    ),
                };
                out.push(Event {
                    kind: Kind::Override,
                    ..endpoint_event(&state, &show(&prev.forced), reason)
                });
            }
        }
        if (was.keep_permille < 1000) != (now.keep_permille < 1000) {
            let (state, from, reason) = if now.keep_permille < 1000 {
                (
                    "spilling",
                    "whole",
                    format!(
                        "at {:.0}% of capacity: keeping {}% of its catchment",
                        now.utilisation.unwrap_or(0.0) * 100.0,
                        now.keep_permille / 10
                    ),
                )
            } else {
                ("whole", "spilling", "its whole catchment again".to_string())
            };
            out.push(Event {
                pool: Some(pool_cfg.name.clone()),
                from: Some(from.into()),
                ..Event::new(at_unix_ms, Kind::Pool, state, reason)
            });
        }
        if was.state != now.state {
            pools_changed = true;
            out.push(Event {
                pool: Some(pool_cfg.name.clone()),
                from: Some(was.state.as_str().into()),
                ..Event::new(
                    at_unix_ms,
                    Kind::Pool,
                    now.state.as_str(),
                    pool_reason(now, pool_cfg.min_healthy, monitor),
                )
            });
        }
    }
    pools_changed
}

/// Appends the proxy servers whose active-check state changed from `before`
/// to `after`, matched by backend name and address (so across a reload too),
/// and those whose runtime weight was set or reset (`config` gives the
/// weight a reset goes back to). A server's first result (from unknown) is
/// not an event. Pure.
pub fn server_changes(
    config: &Config,
    before: &HealthView,
    after: &HealthView,
    at_unix_ms: u64,
    out: &mut Vec<Event>,
) {
    for b in &after.backends {
        let Some(was) = before.backends.iter().find(|w| w.name == b.name) else {
            continue;
        };
        let server_cfg = config.backends.iter().find(|c| *c.name == *b.name);
        for s in &b.servers {
            let Some(prev) = was.servers.iter().find(|p| p.address == s.address) else {
                continue;
            };
            let event = |kind: Kind, state: &str, from: &str, reason: String| Event {
                backend: Some(b.name.to_string()),
                endpoint: Some(s.address.to_string()),
                from: Some(from.into()),
                ..Event::new(at_unix_ms, kind, state, reason)
            };
            if prev.weight != s.weight {
                let config_weight = server_cfg
                    .and_then(|c| c.servers.iter().find(|x| x.address == s.address))
                    .map_or(1, |x| x.weight);
                let show = |w: Option<u32>| match w {
                    Some(w) => format!("weight {w}"),
                    None => format!("config weight {config_weight}"),
                };
                out.push(event(
                    Kind::Weight,
                    "weight",
                    &show(prev.weight),
                    format!("{} (admin API)", show(s.weight)),
                ));
            }
            if !b.monitored
                || prev.state == s.state
                || s.state == EndpointState::Unknown
                || prev.state == EndpointState::Unknown
            {
                continue;
            }
            let reason = match (s.state, s.last_error.as_deref()) {
                (EndpointState::Down, Some(e)) => e.to_string(),
                (EndpointState::Down, None) => "checks failing".into(),
                _ => "checks passing".into(),
            };
            out.push(event(
                Kind::Server,
                state_str(s.state),
                state_str(prev.state),
                reason,
            ));
        }
    }
}

fn state_str(s: EndpointState) -> &'static str {
    match s {
        EndpointState::Unknown => "unknown",
        EndpointState::Up => "up",
        EndpointState::Down => "down",
    }
}

fn endpoint_reason(e: &EndpointHealth) -> String {
    let here = match (e.local, e.last_error.as_deref()) {
        (EndpointState::Down, Some(err)) => err.to_string(),
        (EndpointState::Down, None) => "probes failing".into(),
        (EndpointState::Up, _) => "probes passing".into(),
        (EndpointState::Unknown, _) => "no probe result yet".into(),
    };
    match e.votes {
        Some(v) => format!(
            "{} of {} vantages see it down; here: {here}",
            v.down, v.total
        ),
        None => here,
    }
}

fn pool_reason(
    p: &PoolHealth,
    min_healthy: u32,
    monitor: Option<&crate::config::MonitorConfig>,
) -> String {
    let mut up = format!("{} of {} endpoints up", p.up, p.total);
    if p.draining > 0 {
        up.push_str(&format!(", {} draining", p.draining));
    }
    match p.state {
        PoolState::Down => {
            // The families short of usable endpoints (the pool is down when
            // any is: its queries of that family go elsewhere).
            let down: Vec<String> = p
                .present()
                .filter(|(_, f)| f.state == PoolState::Down)
                .map(|(fam, f)| {
                    format!(
                        "{} of {} {} endpoints up and not draining",
                        f.up,
                        f.total,
                        fam.rtype()
                    )
                })
                .collect();
            let mut why = format!("{}, min_healthy {}", down.join("; "), min_healthy.max(1));
            if let Some(e) = p.last_error.as_deref().filter(|_| p.up == 0) {
                why.push_str(&format!(" (last error: {e})"));
            }
            why
        }
        PoolState::Degraded => {
            if let Some(v) = p.degraded_votes.filter(|_| !p.degraded_here) {
                return format!("{} of {} vantages judge it degraded", v.down, v.total);
            }
            let mut why = Vec::new();
            if let Some(m) = monitor {
                if p.error_rate > m.max_error_rate {
                    why.push(format!(
                        "error rate {:.2}% > {:.2}%",
                        p.error_rate * 100.0,
                        m.max_error_rate * 100.0
                    ));
                }
                if let Some(l) = p.latency.filter(|l| *l > m.max_latency) {
                    why.push(format!(
                        "latency {:.0} ms > {:.0} ms",
                        ms(l),
                        ms(m.max_latency)
                    ));
                }
            }
            if why.is_empty() {
                "error rate or latency over threshold".into()
            } else {
                why.join(", ")
            }
        }
        PoolState::Healthy => format!(
            "{up}, error rate {:.2}%{}",
            p.error_rate * 100.0,
            p.latency
                .map(|l| format!(", latency {:.0} ms", ms(l)))
                .unwrap_or_default()
        ),
    }
}

/// A host endpoint's resolution changes: other addresses ("resolved"),
/// failing with its last addresses kept ("stale"), failing past
/// `stale_for` ("expired").
fn resolve_events(
    was: &crate::health::resolved::Resolved,
    now: &crate::health::resolved::Resolved,
    event: &dyn Fn(&str, &str, String) -> Event,
    out: &mut Vec<Event>,
) {
    let list = |r: &crate::health::resolved::Resolved| {
        if r.addresses.is_empty() {
            "no address".to_string()
        } else {
            r.addresses
                .iter()
                .map(|a| a.ip.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    let error = now.error.as_deref().unwrap_or("unknown error");
    if now.expired && !was.expired {
        out.push(event(
            "expired",
            &list(was),
            format!("resolution failing for longer than stale_for, its addresses dropped: {error}"),
        ));
    } else if now.stale() && !was.stale() {
        out.push(event(
            "stale",
            "resolved",
            format!(
                "cannot resolve ({error}); its last addresses still answer: {}",
                list(now)
            ),
        ));
    }
    let ips = |r: &crate::health::resolved::Resolved| -> Vec<std::net::IpAddr> {
        r.addresses.iter().map(|a| a.ip).collect()
    };
    let again = was.failing_since_unix_ms.is_some() && now.failing_since_unix_ms.is_none();
    if now.failing_since_unix_ms.is_none() && (ips(was) != ips(now) || again) {
        out.push(event("resolved", &list(was), list(now)));
    }
}
