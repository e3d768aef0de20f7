//! trace: the step-by-step record of one decision, for `geosteer explain` and
//! `/api/v1/explain`. Filled in by the same code that answers queries.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::Basis;
use crate::config::Config;

/// What `explain` shows of one decision: each step of the walk, then the
/// outcome.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Trace {
    /// The walk, one line a step.
    pub steps: Vec<String>,
    /// The pool answering, by name.
    pub pool: Option<String>,
    /// Why that pool ([`Basis::as_str`]).
    pub basis: String,
    /// The addresses answered.
    pub records: Vec<IpAddr>,
    /// The decision's ECS scope, before capping at the source prefix.
    pub scope_prefix: u8,
    /// The answer's TTL.
    pub ttl: u32,
    /// Why the TTL is `min_ttl`; absent when it is `ttl`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_reason: Option<String>,
    /// The answer is SERVFAIL (`on_all_down = "servfail"`).
    #[serde(default)]
    pub servfail: bool,
    /// A pool of CNAME endpoints answered: the target (fully qualified).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cname: Option<String>,
    /// In a chain step: the balanced name that decided (fully qualified).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The balanced names the CNAME chain followed in the same answer,
    /// each with its own steps.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub chain: Vec<Trace>,
}

impl Trace {
    /// Adds a step.
    pub fn step(&mut self, line: String) {
        self.steps.push(line);
    }

    pub(super) fn finish(&mut self, d: &super::Decision, family: super::Family, config: &Config) {
        let name = d.pool.map(|p| config.pool(p).name.clone());
        let cname = d.cname_target(config).map(|t| format!("{t}."));
        self.step(match (&name, d.basis) {
            (Some(n), _) if cname.is_some() => format!(
                "pick: {n} ({}); CNAME {} drawn by weight",
                match d.basis {
                    Basis::Healthy => "first healthy pool",
                    Basis::Degraded => "no healthy pool; first degraded",
                    _ => "no usable pool; on_all_down = fallback, health ignored",
                },
                cname.as_deref().unwrap_or_default()
            ),
            (Some(n), Basis::Healthy) => format!("pick: {n} (first healthy pool)"),
            (Some(n), Basis::Degraded) => format!("pick: {n} (no healthy pool; first degraded)"),
            (Some(n), Basis::AllDown(_)) => format!(
                "pick: {n} (no usable pool for {}; on_all_down = fallback, health ignored)",
                family.rtype()
            ),
            (None, Basis::AllDown(mode)) => format!(
                "pick: none (no usable pool for {}; on_all_down = {})",
                family.rtype(),
                mode.as_str()
            ),
            (None, Basis::NoFamily) => format!(
                "pick: none (no pool of this name has a {} endpoint: NODATA)",
                family.rtype()
            ),
            (_, Basis::NoFamily) | (None, _) => "pick: none".to_string(),
        });
        self.step(match d.ttl_reason {
            None => format!("ttl {}: chosen pool healthy and whole", d.ttl),
            Some(r) => format!("ttl {}: {}", d.ttl, r.describe(config)),
        });
        self.pool = name;
        self.cname = cname;
        self.basis = d.basis.as_str().to_string();
        self.records = d.endpoints.to_vec();
        self.scope_prefix = d.scope_prefix;
        self.ttl = d.ttl;
        self.ttl_reason = d.ttl_reason.map(|r| r.describe(config));
        self.servfail = d.servfail();
    }
}
