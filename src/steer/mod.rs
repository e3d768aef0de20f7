//! steer: turns (balanced name, client, health) into a [`Decision`].
//!
//! It sends nothing and reads no clocks or sockets; randomness comes in as an
//! argument. `compile` turns the config's `[[balance]]` tables into lookup
//! structures once per config load, so a query only indexes.
//!
//! - `answer`: the one balanced answer every DNS path and `explain` encode.
//! - `client`: ECS or packet source → the address a decision uses.
//! - `policy`: candidate pool order per policy.
//! - `pick`: the health walk (healthy, then degraded, then fail-open) and the
//!   endpoint choice by weight.
//! - `scope`: the ECS scope prefix an answer is valid for.
//! - `hashing`: the stable client-subnet hash (sticky answers' rendezvous).
//! - `prefixes`: a `subnets` map compiled into flat sorted arrays.
//! - `trace`: the step-by-step explanation `geosteer explain` prints.

// The pure core: no clock, no global RNG, no tokio (clippy.toml says why).
#![deny(clippy::disallowed_methods, clippy::disallowed_types)]
#![warn(missing_docs)]

mod answer;
pub mod client;
pub mod hashing;
mod pick;
mod policy;
mod prefixes;
mod scope;
mod trace;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use prefixes::PrefixTable;

use crate::config::{BalanceConfig, Config, Continent, Country, OnAllDown, Policy, PoolId};
use crate::geo::Location;
use crate::health::HealthView;
use crate::metrics::{NameCounters, Registry};

pub use answer::{Answer, Asker, Chain, Rcode, Step, answer, answer_into};
pub use pick::fails_open;
pub use trace::Trace;

pub use crate::health::Family;

/// The client as steering sees it: the address the decision uses (ECS subnet
/// masked to its source prefix, or the packet source), how many leading bits of
/// it are known, and what the GeoIP database says about it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Client {
    /// The address the decision uses (an ECS subnet masked to its prefix).
    pub addr: IpAddr,
    /// Known leading bits: the ECS source prefix, else 32 or 128.
    pub source_prefix: u8,
    /// What the GeoIP database says about `addr`.
    pub location: Location,
}

/// Why a pool was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Basis {
    /// The pool chosen is healthy.
    Healthy,
    /// The pool chosen is degraded (no healthy one could take the client).
    Degraded,
    /// No pool was usable for the family: `on_all_down` decided.
    AllDown(OnAllDown),
    /// No pool of the name has an endpoint of the family: NODATA.
    NoFamily,
}

impl Basis {
    /// Its name in `explain`, logs and metrics (`all-down:fallback`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Basis::Healthy => "healthy",
            Basis::Degraded => "degraded",
            Basis::AllDown(OnAllDown::Fallback) => "all-down:fallback",
            Basis::AllDown(OnAllDown::All) => "all-down:all",
            Basis::AllDown(OnAllDown::Nodata) => "all-down:nodata",
            Basis::AllDown(OnAllDown::Servfail) => "all-down:servfail",
            Basis::NoFamily => "no-family",
        }
    }

    /// The `on_all_down` mode that answered, if every pool was down.
    pub fn all_down(self) -> Option<OnAllDown> {
        match self {
            Basis::AllDown(m) => Some(m),
            _ => None,
        }
    }
}

/// Why an answer carries `min_ttl` instead of `ttl` (DESIGN §3 step 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TtlReason {
    /// The chosen pool is degraded.
    Degraded(PoolId),
    /// The chosen pool has endpoints of the family down or draining: (pool,
    /// usable, total).
    NotWhole(PoolId, u32, u32),
    /// The chosen pool is not the first candidate (this one is).
    NotFirst(PoolId),
    /// Every pool is down: an `on_all_down` answer.
    AllDown,
}

impl TtlReason {
    /// The reason in words: `pool eu-west degraded`.
    pub fn describe(self, config: &Config) -> String {
        let name = |p: PoolId| config.pool(p).name.as_str();
        match self {
            TtlReason::Degraded(p) => format!("pool {} degraded", name(p)),
            TtlReason::NotWhole(p, up, total) => {
                format!("pool {} not whole (up {up}/{total})", name(p))
            }
            TtlReason::NotFirst(p) => format!("first candidate {} not usable", name(p)),
            TtlReason::AllDown => "every pool down".to_string(),
        }
    }
}

/// The endpoints of one answer, inline up to 8 (no allocation per query).
pub type Endpoints = smallvec::SmallVec<[IpAddr; 8]>;

/// The answer for one query.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// The pool whose endpoints answer, if one does.
    pub pool: Option<PoolId>,
    /// Why that pool.
    pub basis: Basis,
    /// Addresses of the queried family; empty means NODATA (or SERVFAIL,
    /// see [`servfail`](Self::servfail)), unless `cname` is set.
    pub endpoints: Endpoints,
    /// From a pool of CNAME endpoints: the index (in the pool) of the one
    /// answered, for every query type.
    pub cname: Option<u32>,
    /// Leading bits of the client address the decision depended on (ECS scope),
    /// before capping at the source prefix.
    pub scope_prefix: u8,
    /// The answer's TTL.
    pub ttl: u32,
    /// Why `ttl` is the name's `min_ttl`; None when it is its `ttl`.
    pub ttl_reason: Option<TtlReason>,
}

impl Decision {
    /// No pool, no record yet: what [`decide_into`] fills.
    #[inline]
    fn empty() -> Decision {
        Decision {
            pool: None,
            basis: Basis::NoFamily,
            endpoints: Endpoints::new(),
            cname: None,
            scope_prefix: 0,
            ttl: 0,
            ttl_reason: None,
        }
    }

    /// The answer is SERVFAIL (`on_all_down = "servfail"`).
    pub fn servfail(&self) -> bool {
        self.basis == Basis::AllDown(OnAllDown::Servfail)
    }

    /// The CNAME target answered (lower case, no trailing dot), if any.
    pub fn cname_target<'c>(&self, config: &'c Config) -> Option<&'c Arc<str>> {
        let (pool, i) = (self.pool?, self.cname?);
        match &config.pool(pool).endpoints.get(i as usize)?.target {
            crate::config::EndpointTarget::Cname(name) => Some(name),
            _ => None,
        }
    }
}

/// One balanced name, compiled for lookups.
#[derive(Debug)]
pub struct BalancedName {
    /// Shared with [`Config::balance`], not copied: a name's `subnets` can
    /// hold a million prefixes.
    pub config: Arc<BalanceConfig>,
    /// Queries for this name by type and rcode.
    pub counters: Arc<NameCounters>,
    /// How often each pool was picked, looked up by `PoolId` index.
    pub picks: PickCounters,
    /// Some pool it can answer from has CNAME endpoints: queries of every
    /// type get its answer.
    pub cname: bool,
    /// Index into `config.subnets`, per family.
    subnets_v4: PrefixTable,
    subnets_v6: PrefixTable,
}

impl BalancedName {
    /// Compiles one `[[balance]]` entry against the config's pools, with
    /// its per-name counters from `registry`.
    pub fn compile(
        config: &Arc<BalanceConfig>,
        pools: &[crate::config::PoolConfig],
        registry: &Registry,
    ) -> BalancedName {
        let (mut v4, mut v6) = (Vec::new(), Vec::new());
        for (i, (net, _)) in config.subnets.iter().enumerate() {
            match net {
                ipnet::IpNet::V4(n) => {
                    v4.push((u32::from(n.network()).into(), n.prefix_len(), i as u32))
                }
                ipnet::IpNet::V6(n) => v6.push((u128::from(n.network()), n.prefix_len(), i as u32)),
            }
        }
        let subnets_v4 = PrefixTable::build(32, v4);
        let subnets_v6 = PrefixTable::build(128, v6);
        let display = config.name.trim_end_matches('.');
        let cname = config
            .reachable_pools()
            .any(|p| pools.get(p.index()).is_some_and(|p| p.answers_cname()));
        BalancedName {
            cname,
            counters: registry.name(display),
            picks: PickCounters::compile(config, pools, registry),
            config: config.clone(),
            subnets_v4,
            subnets_v6,
        }
    }

    /// The name as configured.
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// The most specific configured subnet holding `addr`: (prefix length, pools).
    fn subnet_match(&self, addr: IpAddr) -> Option<SubnetMatch<'_>> {
        let index = match addr {
            IpAddr::V4(a) => self.subnets_v4.longest_match(u32::from(a).into()),
            IpAddr::V6(a) => self.subnets_v6.longest_match(u128::from(a)),
        };
        index.map(|(len, i)| (len, &*self.config.subnets[i as usize].1))
    }

    fn country_pools(&self, c: Country) -> Option<&[PoolId]> {
        self.config.countries.get(&c).map(Vec::as_slice)
    }

    fn continent_pools(&self, c: Continent) -> Option<&[PoolId]> {
        self.config.continents.get(&c).map(Vec::as_slice)
    }
}

/// How often each pool was picked for one name. There is a counter for each
/// pool the name can answer from (its pools, fallback and geo rules), not for
/// every pool of the config: 10,000 names × 1,000 pools would be ten million
/// counters, nearly all of them never used.
#[derive(Debug, Default)]
pub struct PickCounters {
    /// Sorted by pool index.
    slots: Vec<(u32, Arc<AtomicU64>)>,
}

impl PickCounters {
    fn compile(
        config: &BalanceConfig,
        pools: &[crate::config::PoolConfig],
        registry: &Registry,
    ) -> PickCounters {
        let mut reachable = vec![false; pools.len()];
        let mut mark = |list: &[PoolId]| {
            for p in list {
                if let Some(r) = reachable.get_mut(p.index()) {
                    *r = true;
                }
            }
        };
        mark(&config.pools);
        mark(config.fallback.as_slice());
        config.countries.values().for_each(|l| mark(l));
        config.continents.values().for_each(|l| mark(l));
        config.subnets.iter().for_each(|(_, l)| mark(l));
        let display = config.name.trim_end_matches('.');
        let slots = reachable
            .iter()
            .enumerate()
            .filter(|(_, r)| **r)
            .map(|(i, _)| (i as u32, registry.pick(display, &pools[i].name)))
            .collect();
        PickCounters { slots }
    }

    /// The counter of the pool with index `pool`, if the name can pick it.
    pub fn get(&self, pool: usize) -> Option<&Arc<AtomicU64>> {
        let pool = u32::try_from(pool).ok()?;
        self.slots
            .binary_search_by_key(&pool, |s| s.0)
            .ok()
            .map(|i| &self.slots[i].1)
    }
}

/// A `subnets` entry that holds the client: (prefix length, its pools).
type SubnetMatch<'n> = (u8, &'n [PoolId]);

/// Every balanced name of a config, by lower-case fully qualified name.
#[derive(Debug, Default)]
pub struct SteeringTable {
    /// In `[[balance]]` order, so a name's index there finds it here.
    names: Vec<BalancedName>,
    /// FxHash: the keys come from config, so a query cannot pick collisions.
    by_name: HashMap<String, u32, rustc_hash::FxBuildHasher>,
    /// Per pool, per endpoint: a CNAME endpoint whose target is a balanced
    /// name has that name's index (followed in the same answer).
    follow: Vec<Box<[Option<u32>]>>,
}

impl SteeringTable {
    /// Compiles every `[[balance]]` name of `config`, once per load.
    pub fn compile(config: &Config, registry: &Registry) -> SteeringTable {
        let names = config
            .balance
            .iter()
            .map(|b| BalancedName::compile(b, &config.pools, registry))
            .collect();
        let by_name = config
            .balance
            .iter()
            .enumerate()
            .map(|(i, b)| (b.name.clone(), i as u32))
            .collect::<HashMap<_, _, rustc_hash::FxBuildHasher>>();
        let follow = config
            .pools
            .iter()
            .map(|p| {
                p.endpoints
                    .iter()
                    .map(|e| match &e.target {
                        crate::config::EndpointTarget::Cname(t) => {
                            by_name.get(&format!("{t}.")).copied()
                        }
                        _ => None,
                    })
                    .collect()
            })
            .collect();
        SteeringTable {
            names,
            by_name,
            follow,
        }
    }

    /// The balanced name a decision's CNAME points at, if it is one: the
    /// next step of the answer.
    pub fn follows(&self, d: &Decision) -> Option<u32> {
        let (pool, i) = (d.pool?, d.cname?);
        *self.follow.get(pool.index())?.get(i as usize)?
    }

    /// Looks up a lower-case, fully qualified name (`www.example.test.`).
    pub fn get(&self, name: &str) -> Option<&BalancedName> {
        self.at(*self.by_name.get(name)?)
    }

    /// The name at `index` in the config's `[[balance]]` list.
    pub fn at(&self, index: u32) -> Option<&BalancedName> {
        self.names.get(index as usize)
    }

    /// The number of balanced names.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether there is no balanced name.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

/// What `decide` reads besides the name and client.
pub struct Inputs<'a> {
    /// The snapshot's config.
    pub config: &'a Config,
    /// The snapshot's health.
    pub health: &'a HealthView,
}

/// Picks the pool and endpoints for one client. Pure: the same inputs and rng
/// state give the same Decision. With `trace`, every step is recorded.
pub fn decide<R: rand::Rng + ?Sized>(
    name: &BalancedName,
    client: &Client,
    family: Family,
    inputs: &Inputs<'_>,
    rng: &mut R,
    trace: Option<&mut Trace>,
) -> Decision {
    let mut decision = Decision::empty();
    decide_into(name, client, family, inputs, rng, trace, &mut decision);
    decision
}

/// [`decide`] written into `out` (every field set). Inlined (always) into
/// `answer`, its one hot caller, which passes the field of the answer it
/// builds: the `Decision` (about 200 bytes) is made where it stays, not
/// copied on its way out, and what a name does not configure (sticky, a
/// trace, `on_all_down = "all"`) costs a flag test each.
#[inline(always)]
pub(crate) fn decide_into<R: rand::Rng + ?Sized>(
    name: &BalancedName,
    client: &Client,
    family: Family,
    inputs: &Inputs<'_>,
    rng: &mut R,
    mut trace: Option<&mut Trace>,
    out: &mut Decision,
) {
    let cfg = &name.config;
    // Only the geo policy reads `subnets`; policy and scope share one lookup.
    let subnet = match cfg.policy {
        Policy::Geo => name.subnet_match(client.addr),
        _ => None,
    };
    let order = policy::candidate_order(name, client, subnet, inputs, rng, trace.as_deref_mut());
    let by_vantage = !inputs.health.vantages.is_empty();
    let mut scope_prefix =
        scope::scope_prefix(name, client, subnet.map(|(len, _)| len), by_vantage);
    if let Some(t) = trace.as_deref_mut() {
        trace_order(t, &order, inputs);
    }
    let walked = pick::walk(
        order.iter(),
        (cfg.fallback, cfg.on_all_down),
        family,
        client,
        inputs,
        trace.as_deref_mut(),
    );
    if let Some(len) = walked.split_prefix {
        // The pool depends on the client's subnet while a pool ramps.
        scope_prefix = scope_prefix.max(len);
    }
    out.endpoints.clear();
    out.cname = None;
    match (walked.pool, walked.basis) {
        (_, Basis::AllDown(OnAllDown::All)) => pick::all_endpoints(
            order.iter().chain(cfg.fallback),
            family,
            inputs,
            &mut out.endpoints,
        ),
        (Some(p), basis) => {
            // Sticky: the endpoints depend on the client's subnet, so the
            // answer is valid for that subnet only.
            let sticky = match cfg.sticky {
                true => Some(sticky_subnet(client, trace.as_deref_mut())),
                false => None,
            };
            if let Some((_, len)) = sticky {
                scope_prefix = scope_prefix.max(len);
            }
            out.cname = pick::endpoints(
                p,
                basis,
                family,
                cfg.answers,
                sticky.map(hashing::subnet_hash),
                inputs,
                rng,
                &mut out.endpoints,
            )
        }
        (None, _) => {}
    }
    let (ttl, ttl_reason) = pick::ttl(&walked, family, inputs, (cfg.ttl, cfg.min_ttl));
    out.pool = walked.pool;
    out.basis = walked.basis;
    out.scope_prefix = scope_prefix;
    out.ttl = ttl;
    out.ttl_reason = ttl_reason;
    if let Some(t) = trace {
        t.finish(out, family, inputs.config);
    }
}

/// The trace's line naming the candidate order.
#[cold]
fn trace_order(t: &mut Trace, order: &policy::Order<'_>, inputs: &Inputs<'_>) {
    t.step(format!(
        "candidate order: {}",
        order
            .iter()
            .map(|p| inputs.config.pool(p).name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    ));
}

/// A sticky name's client subnet (the rendezvous hash's key), said in the
/// trace.
#[cold]
fn sticky_subnet(client: &Client, trace: Option<&mut Trace>) -> (IpAddr, u8) {
    let subnet = hashing::client_subnet(client);
    if let Some(t) = trace {
        t.step(format!(
            "sticky: endpoints by rendezvous hash of {}/{} (weights respected)",
            subnet.0, subnet.1
        ));
    }
    subnet
}
