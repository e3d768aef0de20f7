//! policy: the candidate pool order for one client, per policy (DESIGN §3 step 2).

use rand::RngExt;
use smallvec::SmallVec;

use super::{BalancedName, Client, Inputs, SubnetMatch, Trace};
use crate::config::{Policy, PoolId};
use crate::geo::distance::great_circle_km;

/// Pools in the order to try; inline up to 8, so no allocation per query.
pub(super) type Pools = SmallVec<[PoolId; 8]>;

/// The candidate order. Geo and failover borrow it from the config (the
/// matched rule's pools, then the name's other pools), so the common
/// policies copy nothing per query; the others build it.
pub(super) enum Order<'n> {
    /// `first`, then each pool of `then` not in `first`.
    Preferred {
        first: &'n [PoolId],
        then: &'n [PoolId],
    },
    Built(Pools),
}

impl Order<'_> {
    /// The pools in order, each once.
    pub(super) fn iter(&self) -> OrderIter<'_> {
        match self {
            Order::Preferred { first, then } => OrderIter {
                first,
                then,
                skip: first,
            },
            Order::Built(pools) => OrderIter {
                first: pools,
                then: &[],
                skip: &[],
            },
        }
    }
}

/// The pools of an [`Order`]: each of `first`, then each of `then` not in
/// `skip`. A plain pair of slices, cheap to clone and step: the walk goes
/// over it more than once per query.
#[derive(Clone)]
pub(super) struct OrderIter<'a> {
    first: &'a [PoolId],
    then: &'a [PoolId],
    skip: &'a [PoolId],
}

impl Iterator for OrderIter<'_> {
    type Item = PoolId;

    #[inline]
    fn next(&mut self) -> Option<PoolId> {
        if let Some((p, rest)) = self.first.split_first() {
            self.first = rest;
            return Some(*p);
        }
        while let Some((p, rest)) = self.then.split_first() {
            self.then = rest;
            if !self.skip.contains(p) {
                return Some(*p);
            }
        }
        None
    }
}

/// `subnet`: the name's `subnets` entry holding the client (geo only).
/// Failover and geo borrow their order (inline, on every query of most
/// names); the policies that build one do it out of line.
#[inline(always)]
pub(super) fn candidate_order<'n, R: rand::Rng + ?Sized>(
    name: &'n BalancedName,
    client: &Client,
    subnet: Option<SubnetMatch<'n>>,
    inputs: &Inputs<'_>,
    rng: &mut R,
    trace: Option<&mut Trace>,
) -> Order<'n> {
    let cfg = &name.config;
    match cfg.policy {
        Policy::Failover => Order::Preferred {
            first: &[],
            then: &cfg.pools,
        },
        Policy::Geo => {
            let (matched, why) = geo_match(name, client, subnet);
            if let Some(t) = trace {
                t.step(why.describe(client));
            }
            Order::Preferred {
                first: matched,
                then: &cfg.pools,
            }
        }
        _ => Order::Built(built_order(name, client, inputs, rng, trace)),
    }
}

/// The order of the policies that compute one per query: proximity,
/// weighted, random, latency.
#[inline(never)]
fn built_order<R: rand::Rng + ?Sized>(
    name: &BalancedName,
    client: &Client,
    inputs: &Inputs<'_>,
    rng: &mut R,
    mut trace: Option<&mut Trace>,
) -> Pools {
    let cfg = &name.config;
    match cfg.policy {
        Policy::Failover | Policy::Geo => Pools::from_slice(&cfg.pools),
        Policy::Proximity => {
            let here = client.location.coords;
            let mut scored: Vec<(f64, usize, PoolId)> = cfg
                .pools
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    let km = match (here, inputs.config.pool(*p).location) {
                        (Some(a), Some(b)) => great_circle_km(a, b),
                        _ => f64::INFINITY,
                    };
                    (km, i, *p)
                })
                .collect();
            scored.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            if let Some(t) = trace.as_deref_mut() {
                match here {
                    None => t.step("client location unknown: pools in configured order".into()),
                    Some((lat, lon)) => t.step(format!(
                        "client at {lat:.2},{lon:.2}; distances: {}",
                        scored
                            .iter()
                            .map(|(km, _, p)| format!("{} {km:.0} km", inputs.config.pool(*p).name))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )),
                }
            }
            scored.into_iter().map(|(_, _, p)| p).collect()
        }
        Policy::Weighted => {
            let mut order = Pools::from_slice(&cfg.pools);
            let total: u64 = order
                .iter()
                .map(|p| inputs.config.pool(*p).weight as u64)
                .sum();
            if total > 0 {
                let mut draw = rng.random_range(0..total);
                let mut first = 0;
                for (i, p) in order.iter().enumerate() {
                    let w = inputs.config.pool(*p).weight as u64;
                    if draw < w {
                        first = i;
                        break;
                    }
                    draw -= w;
                }
                let chosen = order.remove(first);
                order.insert(0, chosen);
            }
            if let Some(t) = trace.as_deref_mut() {
                t.step(format!(
                    "weighted draw picked {} first (weights: {})",
                    order
                        .first()
                        .map(|p| inputs.config.pool(*p).name.as_str())
                        .unwrap_or("-"),
                    cfg.pools
                        .iter()
                        .map(|p| format!(
                            "{}={}",
                            inputs.config.pool(*p).name,
                            inputs.config.pool(*p).weight
                        ))
                        .collect::<Vec<_>>()
                        .join(" ")
                ));
            }
            order
        }
        Policy::Random => {
            let mut order = Pools::from_slice(&cfg.pools);
            // Fisher-Yates.
            for i in (1..order.len()).rev() {
                let j = rng.random_range(0..=i);
                order.swap(i, j);
            }
            order
        }
        Policy::Latency => {
            let vantage = nearest_vantage(client, inputs.health);
            let latency = |p: PoolId| match vantage {
                Some((v, _)) => v.pool_latency.get(p.index()).copied().flatten(),
                None => inputs.health.pool(p).and_then(|h| h.latency),
            };
            let mut scored: Vec<(Option<std::time::Duration>, usize, PoolId)> = cfg
                .pools
                .iter()
                .enumerate()
                .map(|(i, p)| (latency(*p), i, *p))
                .collect();
            // Measured pools first, lowest latency first; unmeasured ones keep
            // configured order after them (with no data at all: failover).
            scored.sort_by(|a, b| match (a.0, b.0) {
                (Some(x), Some(y)) => x.cmp(&y).then(a.1.cmp(&b.1)),
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (None, None) => a.1.cmp(&b.1),
            });
            if let Some(t) = trace {
                if !inputs.health.vantages.is_empty() {
                    t.step(match vantage {
                        Some((v, km)) => format!(
                            "nearest vantage to the client: {} ({km:.0} km): its latency figures",
                            v.node
                        ),
                        None => "nearest vantage to the client: this node: its own latency figures"
                            .to_string(),
                    });
                }
                t.step(format!(
                    "measured latency: {}",
                    scored
                        .iter()
                        .map(|(l, _, p)| match l {
                            Some(l) =>
                                format!("{} {}ms", inputs.config.pool(*p).name, l.as_millis()),
                            None => format!("{} (no data)", inputs.config.pool(*p).name),
                        })
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            scored.into_iter().map(|(_, _, p)| p).collect()
        }
    }
}

/// Why the geo policy matched what it did; described only when tracing, so
/// the query path formats nothing.
enum GeoWhy {
    Subnet(u8),
    Country,
    Continent,
    Default,
}

impl GeoWhy {
    fn describe(&self, client: &Client) -> String {
        let loc = &client.location;
        let country = loc.country.as_ref().map_or("", |c| c.as_str());
        let continent = loc.continent.as_ref().map_or("", |c| c.as_str());
        match self {
            GeoWhy::Subnet(len) => format!("subnet match: {}/{len}", client.addr),
            GeoWhy::Country => format!("country match: {country}"),
            GeoWhy::Continent => format!("continent match: {continent}"),
            GeoWhy::Default => {
                let what = match (loc.country, loc.continent) {
                    (Some(_), Some(_)) => {
                        format!("no rule for country {country} or continent {continent}")
                    }
                    (Some(_), None) => format!("no rule for country {country}"),
                    _ => "client location unknown".to_string(),
                };
                format!("{what}: default pool order")
            }
        }
    }
}

/// The geo policy's matched pools and why.
#[inline]
fn geo_match<'n>(
    name: &'n BalancedName,
    client: &Client,
    subnet: Option<SubnetMatch<'n>>,
) -> (&'n [PoolId], GeoWhy) {
    if let Some((len, pools)) = subnet {
        return (pools, GeoWhy::Subnet(len));
    }
    let loc = &client.location;
    if let Some(pools) = loc.country.and_then(|c| name.country_pools(c)) {
        return (pools, GeoWhy::Country);
    }
    if let Some(pools) = loc.continent.and_then(|c| name.continent_pools(c)) {
        return (pools, GeoWhy::Continent);
    }
    (&[], GeoWhy::Default)
}

/// In a fleet, the vantage closest to the client (great-circle distance to
/// each node's `location`), when it is another node: the `latency` policy
/// then orders pools by what that vantage measures, since it sees the paths
/// the client's traffic takes. None: this node is closest, or the client's
/// or the vantages' locations are unknown (then this node's own figures).
/// Ties go to this node, then to node names in order, so every node picks
/// the same vantage for the same client.
fn nearest_vantage<'h>(
    client: &Client,
    health: &'h crate::health::HealthView,
) -> Option<(&'h crate::health::fleet::RemoteVantage, f64)> {
    let here = client.location.coords?;
    let mut best: Option<(&crate::health::fleet::RemoteVantage, f64)> = None;
    for v in health.vantages.iter() {
        let km = great_circle_km(here, v.location);
        if best.is_none_or(|(_, b)| km < b) {
            best = Some((v, km));
        }
    }
    let (v, km) = best?;
    match health.here {
        Some(own) if great_circle_km(here, own) <= km => None,
        _ => Some((v, km)),
    }
}
