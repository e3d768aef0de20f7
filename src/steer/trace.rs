//! trace: the step-by-step record of one decision, for `geosteer explain` and
//! `/api/v1/explain`. Filled in by the same code that answers queries.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::Basis;
use crate::config::{Config, PoolId};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Trace {
    pub steps: Vec<String>,
    pub pool: Option<String>,
    pub basis: String,
    pub records: Vec<IpAddr>,
    pub scope_prefix: u8,
    pub ttl: u32,
}

impl Trace {
    pub fn step(&mut self, line: String) {
        self.steps.push(line);
    }

    pub(super) fn finish(
        &mut self,
        pool: Option<PoolId>,
        basis: Basis,
        endpoints: &[IpAddr],
        scope_prefix: u8,
        ttl: u32,
        config: &Config,
    ) {
        let name = pool.map(|p| config.pool(p).name.clone());
        self.step(match (&name, basis) {
            (Some(n), Basis::Healthy) => format!("pick: {n} (first healthy pool)"),
            (Some(n), Basis::Degraded) => format!("pick: {n} (no healthy pool; first degraded)"),
            (Some(n), Basis::FailOpen) => {
                format!("pick: {n} (no usable pool; fail open to fallback)")
            }
            _ => "pick: none (no usable pool and no fallback)".to_string(),
        });
        self.pool = name;
        self.basis = basis.as_str().to_string();
        self.records = endpoints.to_vec();
        self.scope_prefix = scope_prefix;
        self.ttl = ttl;
    }
}
