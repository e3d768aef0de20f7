//! explain: the decision trace for one (name, type, client), built by the same
//! `steer::decide` that answers queries. `geosteer explain` (offline, from a
//! config) and `/api/v1/explain` (live) both call [`explain`].

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::config::normalize_name;
use crate::state::Snapshot;
use crate::steer::client;
use crate::steer::{self, Family, Inputs, Trace};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Explanation {
    pub name: String,
    #[serde(rename = "type")]
    pub qtype: String,
    pub client: String,
    pub country: Option<String>,
    pub continent: Option<String>,
    pub coords: Option<(f64, f64)>,
    pub geo_prefix: u8,
    pub policy: String,
    pub trace: Trace,
    /// ECS scope a response to this client would carry (capped at its prefix).
    pub ecs_scope: u8,
    /// Endpoints of the name's pools (of this family) whose state an operator
    /// overrides: `pool address: override up|down (reason)`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub overrides: Vec<String>,
    /// Host endpoints of the answering pool: `pool name: resolves to IP
    /// (up), IP (down: why)`, and whether those addresses are stale.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
}

/// `client` is `IP` or `IP/PREFIX` (as in an ECS option); `qtype` is A or AAAA.
pub fn explain(
    snap: &Snapshot,
    name: &str,
    qtype: &str,
    client_text: &str,
) -> Result<Explanation, String> {
    let fqdn = normalize_name(name).ok_or_else(|| format!("{name:?} is not a domain name"))?;
    let b = snap
        .steering
        .get(&fqdn)
        .ok_or_else(|| format!("{fqdn} is not a balanced name in this config"))?;
    let family = match qtype.to_ascii_uppercase().as_str() {
        "A" => Family::V4,
        "AAAA" => Family::V6,
        other => return Err(format!("type {other} is not steered; use A or AAAA")),
    };
    let (ip, prefix) = parse_client(client_text)?;
    // The client as an ECS option would carry it: `IP` is `IP/32` (or /128).
    let asker = steer::Asker {
        src: ip,
        ecs: Some((ip, prefix)),
    };
    let inputs = Inputs {
        config: &snap.config,
        health: &snap.health,
    };
    let mut trace = Trace::default();
    let a = steer::answer(
        b,
        asker,
        family,
        &snap.geo,
        &inputs,
        &mut rand::rng(),
        Some(&mut trace),
        Some(&snap.steering),
    );
    let location = a.client.location;
    let mut overrides = Vec::new();
    for &p in &b.config.pools {
        let (Some(h), cfg) = (snap.health.pool(p), snap.config.pool(p)) else {
            continue;
        };
        for (e, eh) in cfg.endpoints.iter().zip(&h.endpoints) {
            if let Some(f) = &eh.forced
                && Family::of_endpoint(e).is_none_or(|f| f == family)
            {
                let line = format!(
                    "{} {}: override {} ({})",
                    cfg.name,
                    e.key(),
                    f.state_str(),
                    f.reason
                );
                if !overrides.contains(&line) {
                    overrides.push(line);
                }
            }
        }
    }
    let hosts = trace
        .pool
        .as_deref()
        .and_then(|name| snap.config.pool_id(name))
        .map(|p| hosts(snap, p))
        .unwrap_or_default();
    Ok(Explanation {
        hosts,
        name: fqdn,
        qtype: qtype.to_ascii_uppercase(),
        client: format!("{}/{}", a.client.addr, a.client.source_prefix),
        country: location.country.map(|c| c.as_str().to_string()),
        continent: location.continent.map(|c| c.as_str().to_string()),
        coords: location.coords,
        geo_prefix: location.prefix_len,
        policy: b.config.policy.as_str().to_string(),
        trace,
        ecs_scope: a.scope,
        overrides,
    })
}

/// The lines of `pool`'s host endpoints: what each resolves to now, each
/// address's probe state, staleness.
fn hosts(snap: &crate::state::Snapshot, pool: crate::config::PoolId) -> Vec<String> {
    let (Some(h), cfg) = (snap.health.pool(pool), snap.config.pool(pool)) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (e, eh) in cfg.endpoints.iter().zip(&h.endpoints) {
        let Some(r) = &eh.resolved else {
            continue;
        };
        let addresses: Vec<String> = r
            .addresses
            .iter()
            .map(|a| match (a.state, &a.last_error) {
                (crate::health::EndpointState::Down, Some(why)) => {
                    format!("{} (down: {why})", a.ip)
                }
                (state, _) => format!("{} ({})", a.ip, state_str(state)),
            })
            .collect();
        let mut line = format!("{} {}: resolves to ", cfg.name, e.key());
        if addresses.is_empty() {
            line.push_str("no address");
        } else {
            line.push_str(&addresses.join(", "));
        }
        if r.expired {
            line.push_str("; resolution failing past stale_for");
        } else if r.stale() {
            line.push_str("; stale (resolution failing, last addresses kept)");
        }
        out.push(line);
    }
    out
}

fn state_str(s: crate::health::EndpointState) -> &'static str {
    match s {
        crate::health::EndpointState::Up => "up",
        crate::health::EndpointState::Down => "down",
        crate::health::EndpointState::Unknown => "unknown",
    }
}

/// `IP` or `IP/PREFIX`.
pub fn parse_client(text: &str) -> Result<(IpAddr, u8), String> {
    let (ip, prefix) = match text.split_once('/') {
        Some((ip, p)) => (ip, Some(p)),
        None => (text, None),
    };
    let ip: IpAddr = ip
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not an IP address or IP/PREFIX"))?;
    let max = client::full_len(&ip);
    let prefix = match prefix {
        None => max,
        Some(p) => p
            .parse::<u8>()
            .ok()
            .filter(|p| *p <= max)
            .ok_or_else(|| format!("prefix in {text:?} must be 0-{max}"))?,
    };
    Ok((ip, prefix))
}

impl Explanation {
    /// The human-readable form `geosteer explain` prints: the name's steps
    /// and record, then each name a CNAME chain followed, with its own.
    pub fn render(&self) -> String {
        let mut out = format!("{} {} for client {}\n", self.name, self.qtype, self.client);
        self.render_step(&self.name, &self.trace, &mut out);
        for step in &self.trace.chain {
            let name = step.name.as_deref().unwrap_or("?");
            out.push_str(&format!("  followed in the same answer: {name}\n"));
            self.render_step(name, step, &mut out);
        }
        out.push_str(&format!("  ECS scope: /{}\n", self.ecs_scope));
        for o in self.overrides.iter().chain(&self.hosts) {
            out.push_str(&format!("  {o}\n"));
        }
        out
    }

    fn render_step(&self, name: &str, t: &Trace, out: &mut String) {
        for (i, s) in t.steps.iter().enumerate() {
            out.push_str(&format!("  {}. {s}\n", i + 1));
        }
        if t.servfail {
            out.push_str("  answer: SERVFAIL (every pool down, on_all_down = servfail)\n");
        } else if let Some(target) = &t.cname {
            out.push_str(&format!("  answer: {name} {} IN CNAME {target}\n", t.ttl));
        } else if t.records.is_empty() {
            out.push_str("  answer: NODATA (no endpoint of this family to give)\n");
        } else {
            for r in &t.records {
                out.push_str(&format!(
                    "  answer: {name} {} IN {} {r}\n",
                    t.ttl, self.qtype
                ));
            }
        }
    }
}
