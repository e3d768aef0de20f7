//! The `[[balance]]` names of a config: policies, pool lists, geo rules and
//! the `subnets` map, the steering half of the validator.

use std::collections::HashMap;

use ipnet::IpNet;

use super::super::raw::*;
use super::super::*;
use super::{Validator, in_zone, normalize_name, parse_net};

impl Validator<'_> {
    fn pool_list(
        &mut self,
        key: &str,
        names: &[String],
        pools: &HashMap<&str, PoolId>,
    ) -> Vec<PoolId> {
        let mut out = Vec::new();
        self.pool_list_into(|| key.to_string(), names, pools, &mut out);
        out
    }

    /// Resolves pool names onto `out`; builds the key only to report an error.
    fn pool_list_into<S: AsRef<str>>(
        &mut self,
        key: impl Fn() -> String,
        names: &[S],
        pools: &HashMap<&str, PoolId>,
        out: &mut Vec<PoolId>,
    ) {
        for (i, n) in names.iter().enumerate() {
            let n = n.as_ref();
            match pools.get(n) {
                Some(id) if out.contains(id) => self.err(
                    format!("{}[{i}]", key()),
                    format!("pool {n:?} is listed twice"),
                ),
                Some(id) => out.push(*id),
                None => self.err(format!("{}[{i}]", key()), format!("no pool named {n:?}")),
            }
        }
    }

    /// The `subnets` map, sorted by network. Equal pool lists share one
    /// allocation: a million prefixes usually name a few hundred distinct lists.
    fn subnets(
        &mut self,
        i: usize,
        raw: &RawSubnets<'_>,
        pools: &HashMap<&str, PoolId>,
    ) -> Vec<(IpNet, Arc<[PoolId]>)> {
        let mut lists: HashMap<Vec<PoolId>, Arc<[PoolId]>> = HashMap::new();
        let mut subnets = Vec::with_capacity(raw.len());
        let mut scratch = Vec::new();
        for (text, names) in raw.iter() {
            let key = || format!("balance[{i}].subnets.{text}");
            let net = match parse_net(text) {
                Ok(n) => n,
                Err(e) => {
                    self.err(key(), e);
                    continue;
                }
            };
            scratch.clear();
            self.pool_list_into(key, names, pools, &mut scratch);
            let list = match lists.get(scratch.as_slice()) {
                Some(l) => l.clone(),
                None => {
                    let l: Arc<[PoolId]> = scratch.as_slice().into();
                    lists.insert(scratch.clone(), l.clone());
                    l
                }
            };
            subnets.push((net, list));
        }
        // Two spellings of one network ("10.0.0.1" and "10.0.0.1/32") would
        // silently shadow each other.
        subnets.sort_unstable_by_key(|a| a.0);
        for w in subnets.windows(2) {
            if w[0].0 == w[1].0 {
                let net = w[0].0;
                self.errors.push(ConfigError::new(
                    self.file,
                    format!("balance[{i}].subnets.{net}"),
                    format!("{net} is listed twice"),
                ));
            }
        }
        subnets
    }

    pub(super) fn balance(
        &mut self,
        i: usize,
        b: &RawBalance<'_>,
        pools: &HashMap<&str, PoolId>,
        zones: &[ZoneConfig],
    ) -> Option<BalanceConfig> {
        let key = |k: &str| format!("balance[{i}].{k}");
        let Some(name) = normalize_name(&b.name) else {
            self.err(
                key("name"),
                format!("{:?} is not a valid domain name", b.name),
            );
            return None;
        };
        if !zones.iter().any(|z| in_zone(&name, &z.origin)) {
            self.err(
                key("name"),
                format!("{name} is not inside any zone in [zones]"),
            );
        }
        let policy = match b.policy.as_str() {
            "failover" => Policy::Failover,
            "weighted" => Policy::Weighted,
            "random" => Policy::Random,
            "geo" => Policy::Geo,
            "proximity" => Policy::Proximity,
            "latency" => Policy::Latency,
            other => {
                self.err(key("policy"), format!("unknown policy {other:?}; expected failover, weighted, random, geo, proximity or latency"));
                Policy::Failover
            }
        };
        let list = self.pool_list(&key("pools"), &b.pools, pools);
        if b.pools.is_empty() {
            self.err(key("pools"), "needs at least one pool");
        }
        let fallback = b.fallback.as_deref().and_then(|f| match pools.get(f) {
            Some(id) => Some(*id),
            None => {
                self.err(key("fallback"), format!("no pool named {f:?}"));
                None
            }
        });
        let ttl = b.ttl.unwrap_or(30);
        if ttl > 604_800 {
            self.err(key("ttl"), "must be at most 604800 (one week)");
        }
        // Half of `ttl`, at least 5 s, never above `ttl`.
        let min_ttl = b.min_ttl.unwrap_or((ttl / 2).max(5)).min(ttl);
        if b.min_ttl.is_some_and(|m| m > ttl) {
            self.err(key("min_ttl"), format!("must not be above ttl ({ttl})"));
        }
        let on_all_down = match b.on_all_down.as_deref() {
            None if fallback.is_some() => OnAllDown::Fallback,
            None => OnAllDown::Nodata,
            Some("fallback") => {
                if b.fallback.is_none() {
                    self.err(
                        key("on_all_down"),
                        "\"fallback\" needs a fallback pool (set `fallback`, or choose all, nodata or servfail)",
                    );
                }
                OnAllDown::Fallback
            }
            Some("all") => OnAllDown::All,
            Some("nodata") => OnAllDown::Nodata,
            Some("servfail") => OnAllDown::Servfail,
            Some(other) => {
                self.err(
                    key("on_all_down"),
                    format!("unknown mode {other:?}; expected fallback, all, nodata or servfail"),
                );
                OnAllDown::Nodata
            }
        };
        let answers = b.answers.unwrap_or(1);
        if answers == 0 {
            self.err(key("answers"), "must be at least 1");
        }
        let mut countries = HashMap::default();
        for (code, names) in &b.countries {
            let k = format!("balance[{i}].countries.{code}");
            match Country::parse(code) {
                Some(c) => {
                    let l = self.pool_list(&k, names, pools);
                    countries.insert(c, l);
                }
                None => self.err(k, "expected an ISO 3166-1 alpha-2 code such as DE"),
            }
        }
        let mut continents = HashMap::default();
        for (code, names) in &b.continents {
            let k = format!("balance[{i}].continents.{code}");
            match Continent::parse(code) {
                Some(c) => {
                    let l = self.pool_list(&k, names, pools);
                    continents.insert(c, l);
                }
                None => self.err(k, "expected a continent code: AF AN AS EU NA OC SA"),
            }
        }
        let subnets = self.subnets(i, &b.subnets, pools);
        if policy != Policy::Geo
            && (!b.countries.is_empty() || !b.continents.is_empty() || !b.subnets.is_empty())
        {
            self.warn(
                key("policy"),
                format!(
                    "countries, continents and subnets only apply to the geo policy, not {}",
                    policy.as_str()
                ),
            );
        }
        Some(BalanceConfig {
            name,
            policy,
            pools: list,
            fallback,
            ttl,
            min_ttl,
            on_all_down,
            answers: answers.max(1),
            sticky: b.sticky.unwrap_or(false),
            countries,
            continents,
            subnets,
        })
    }
}
