//! cname: the rules for pools of CNAME endpoints and the chains they make.
//! A pool holds address endpoints or CNAME endpoints, not both; a name
//! that can answer a CNAME cannot answer `on_all_down = "all"` (that mixes
//! every endpoint of every pool; a CNAME answer is one record); a CNAME
//! whose target is another balanced name is followed in the same answer,
//! so the targets may not loop and a chain holds at most [`MAX_CHAIN`]
//! CNAMEs.

use std::collections::HashMap;
use std::sync::Arc;

use super::super::*;
use super::Validator;

/// The most CNAME records one answer may hold (check refuses more).
pub(super) const MAX_CHAIN: usize = 8;

/// The depth of a name whose chain runs into a loop: the loop is the error
/// reported, not also a chain too long for each name on or before it.
const LOOPS: usize = usize::MAX;

impl Validator<'_> {
    /// A pool's endpoints are all addresses or all CNAMEs: the first
    /// endpoint of the other kind is refused. (`host` is its own kind.)
    pub(super) fn one_kind(&mut self, name: &str, endpoints: &[EndpointConfig]) {
        let kind = |e: &EndpointConfig| match e.target {
            EndpointTarget::Address(_) => "address",
            EndpointTarget::Cname(_) => "cname",
            EndpointTarget::Host(_) => "host",
        };
        let Some(first) = endpoints.first().map(kind) else {
            return;
        };
        if let Some((i, e)) = endpoints.iter().enumerate().find(|(_, e)| kind(e) != first) {
            self.err(
                format!("pools.{name}.endpoints[{i}].{}", kind(e)),
                format!(
                    "pool {name} mixes {first} and {} endpoints: a pool holds one kind (make two pools)",
                    kind(e)
                ),
            );
        }
    }

    /// Host endpoints are resolved through `[server] resolvers` only (the
    /// first one is refused when there is none), and probed at each
    /// address (an `external` monitor pushes one health per endpoint).
    pub(super) fn hosts_resolvable(
        &mut self,
        pools: &[PoolConfig],
        server: &ServerConfig,
        monitors: &[MonitorConfig],
    ) {
        for p in pools.iter().filter(|p| p.answers_hosts()) {
            if let Some(m) = p.monitor.and_then(|m| monitors.get(m.index()))
                && m.kind == MonitorKind::External
            {
                self.err(
                    format!("pools.{}.monitor", p.name),
                    format!(
                        "{} is an external monitor: a pool of host endpoints is probed at each address its names resolve to (use http, https or tcp)",
                        m.name
                    ),
                );
            }
        }
        if !server.resolvers.is_empty() {
            return;
        }
        let first = pools.iter().find_map(|p| {
            let i = p
                .endpoints
                .iter()
                .position(|e| matches!(e.target, EndpointTarget::Host(_)))?;
            Some((p.name.as_str(), i))
        });
        if let Some((pool, i)) = first {
            self.err(
                format!("pools.{pool}.endpoints[{i}].host"),
                "host endpoints are resolved through [server] resolvers, which is not set (resolvers = [\"IP:port\", ...]; the system's resolver is not used)",
            );
        }
    }

    /// The names that can answer a CNAME: no `on_all_down = "all"`, no loop
    /// through other balanced names, at most [`MAX_CHAIN`] CNAMEs per answer.
    pub(super) fn cname_chains(&mut self, pools: &[PoolConfig], balance: &[Arc<BalanceConfig>]) {
        let index: HashMap<&str, usize> = balance
            .iter()
            .enumerate()
            .map(|(i, b)| (b.name.trim_end_matches('.'), i))
            .collect();
        // Per name: whether it can answer a CNAME, and the balanced names its
        // CNAMEs point at.
        let mut answers_cname = vec![false; balance.len()];
        let mut next: Vec<Vec<usize>> = vec![Vec::new(); balance.len()];
        for (i, b) in balance.iter().enumerate() {
            for p in b.reachable_pools() {
                let Some(pool) = pools.get(p.index()) else {
                    continue;
                };
                for e in &pool.endpoints {
                    if let EndpointTarget::Cname(target) = &e.target {
                        answers_cname[i] = true;
                        if let Some(&j) = index.get(&**target)
                            && !next[i].contains(&j)
                        {
                            next[i].push(j);
                        }
                    }
                }
            }
            if answers_cname[i] && b.on_all_down == OnAllDown::All {
                self.err(
                    format!("balance[{i}].on_all_down"),
                    format!(
                        "{} has pools of CNAME endpoints, which answer one CNAME: \"all\" cannot apply (choose fallback, nodata or servfail)",
                        b.name
                    ),
                );
            }
        }
        // Longest chain from each name, in CNAMEs; a loop is refused once,
        // at the first name found on it.
        let mut depth: Vec<Option<usize>> = vec![None; balance.len()];
        let mut reported = vec![false; balance.len()];
        for start in 0..balance.len() {
            let mut path = Vec::new();
            self.chain_depth(
                start,
                (&next, &answers_cname, balance),
                &mut depth,
                &mut path,
                &mut reported,
            );
        }
        // A name whose chain runs into a loop has had its error (the loop).
        for (i, d) in depth.iter().enumerate() {
            if let Some(d) = d.filter(|d| *d > MAX_CHAIN && *d != LOOPS) {
                self.err(
                    format!("balance[{i}].name"),
                    format!(
                        "{} starts a chain of {d} CNAMEs through balanced names: at most {MAX_CHAIN}",
                        balance[i].name
                    ),
                );
            }
        }
    }

    /// Depth-first: the longest chain of CNAMEs from `at`, or [`LOOPS`]
    /// when it runs into a loop (`at` found again on `path`).
    fn chain_depth(
        &mut self,
        at: usize,
        graph: (&[Vec<usize>], &[bool], &[Arc<BalanceConfig>]),
        depth: &mut [Option<usize>],
        path: &mut Vec<usize>,
        reported: &mut [bool],
    ) -> usize {
        let (next, answers_cname, balance) = graph;
        if let Some(d) = depth[at] {
            return d;
        }
        if let Some(k) = path.iter().position(|&p| p == at) {
            let first = path[k];
            if !reported[first] {
                reported[first] = true;
                let names: Vec<&str> = path[k..]
                    .iter()
                    .chain([&at])
                    .map(|&i| balance[i].name.trim_end_matches('.'))
                    .collect();
                self.err(
                    format!("balance[{first}].name"),
                    format!("CNAME loop through balanced names: {}", names.join(" → ")),
                );
            }
            return LOOPS;
        }
        path.push(at);
        let mut d = usize::from(answers_cname[at]);
        for &j in &next[at] {
            let below = self.chain_depth(j, graph, depth, path, reported);
            d = if below == LOOPS || d == LOOPS {
                LOOPS
            } else {
                d.max(1 + below.min(MAX_CHAIN + 1))
            };
        }
        path.pop();
        depth[at] = Some(d);
        d
    }
}
