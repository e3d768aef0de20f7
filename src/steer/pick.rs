//! pick: the health walk over the candidate order (DESIGN §3 step 3), the
//! answer when every pool is down (`on_all_down`), the endpoint choice inside
//! the chosen pool (step 4) and the TTL (step 5).
//!
//! Health is judged per address family: a query of family F walks the pools
//! that have endpoints of F, each judged on those endpoints alone, so a pool
//! that lost its only IPv4 endpoint sends A queries on and still answers AAAA.

use rand::RngExt;

use smallvec::SmallVec;

use super::{Basis, Client, Endpoints, Family, Inputs, Trace, TtlReason, hashing};
use crate::config::{EndpointConfig, EndpointTarget, OnAllDown, PoolId};
use crate::health::{FamilyHealth, PoolHealth, PoolState, ramp};

/// The walk's outcome: the pool (if any) and why.
pub(super) struct Walked {
    pub pool: Option<PoolId>,
    pub basis: Basis,
    /// The first pool of the order that has endpoints of the family.
    pub first: Option<PoolId>,
    /// A pool of the order takes back only part of its catchment, so the
    /// answer depends on the client's subnet: its prefix length.
    pub split_prefix: Option<u8>,
}

/// First healthy pool for `family`, else first degraded, else what
/// `on_all_down` says; pools without an endpoint of the family are skipped.
/// A pool taking back only part of its catchment (slow start) or keeping
/// only part of it (over capacity) is passed over by the clients whose
/// subnet hashes above its share, for the next pool of the same state that
/// has headroom; without one they stay.
#[inline(always)]
pub(super) fn walk(
    order: impl Iterator<Item = PoolId> + Clone,
    (fallback, on_all_down): (Option<PoolId>, OnAllDown),
    family: Family,
    client: &Client,
    inputs: &Inputs<'_>,
    mut trace: Option<&mut Trace>,
) -> Walked {
    if let Some(t) = trace.as_deref_mut() {
        for p in order.clone() {
            t.step(pool_line(inputs, p, family));
        }
    }
    // Only while some pool ramps or spills is the client hashed (names and
    // views without either pay one flag).
    let split = match inputs.health.splitting {
        true => split_point(order.clone(), family, client, inputs),
        false => None,
    };
    let (first, chosen) = scan(order.clone(), family, split.map(|(at, _)| at), inputs);
    if let (Some(t), Some(split)) = (trace, split) {
        trace_split(t, order.clone(), family, client, inputs, split, chosen);
    }
    let split_prefix = split.map(|(_, len)| len);
    if let Some((p, basis)) = chosen {
        return Walked {
            pool: Some(p),
            basis,
            first,
            split_prefix,
        };
    }
    let present = |p: &PoolId| {
        inputs
            .health
            .pool(*p)
            .is_some_and(|h| h.family(family).present())
    };
    if first.is_none() && !fallback.is_some_and(|p| present(&p)) {
        // No pool of the name has an address of this family at all.
        return Walked {
            pool: None,
            basis: Basis::NoFamily,
            first,
            split_prefix,
        };
    }
    let pool = match on_all_down {
        // The fallback pool; when it has no address of the family, the first
        // candidate that has one.
        OnAllDown::Fallback => fallback.filter(|p| present(p)).or(first),
        OnAllDown::All | OnAllDown::Nodata | OnAllDown::Servfail => None,
    };
    Walked {
        pool,
        basis: Basis::AllDown(on_all_down),
        first,
        split_prefix,
    }
}

/// The walk in one pass over the order, the pools without an endpoint of
/// the family skipped: the first pool left, and the pool chosen with its
/// basis. For each state (healthy, then degraded) the choice is the first
/// pool of that state that keeps the client (`split`: the client's point
/// in 0..1, kept where it is under the pool's share; past a pool that
/// passed it on, only a pool with headroom takes it, so nothing spills
/// into a pool over capacity), else the first pool of that state (no pool
/// with headroom: the client stays). Without a split, the first healthy
/// pool ends the pass.
#[inline(always)]
fn scan(
    order: impl Iterator<Item = PoolId>,
    family: Family,
    split: Option<f64>,
    inputs: &Inputs<'_>,
) -> (Option<PoolId>, Option<(PoolId, Basis)>) {
    let mut first = None;
    let Some(split) = split else {
        // No split: every pool keeps its clients, so the first healthy
        // pool, else the first degraded one.
        let mut degraded = None;
        for p in order {
            let Some(h) = inputs.health.pool(p) else {
                continue;
            };
            let f = h.family(family);
            if !f.present() {
                continue;
            }
            first.get_or_insert(p);
            match f.state {
                PoolState::Healthy => return (first, Some((p, Basis::Healthy))),
                PoolState::Degraded => {
                    degraded.get_or_insert(p);
                }
                PoolState::Down => {}
            }
        }
        return (first, degraded.map(|p| (p, Basis::Degraded)));
    };
    // Indexed by state: 0 healthy, 1 degraded.
    let mut kept: [Option<PoolId>; 2] = [None; 2];
    let mut any: [Option<PoolId>; 2] = [None; 2];
    let mut passed_on = [false; 2];
    for p in order {
        let Some(h) = inputs.health.pool(p) else {
            continue;
        };
        let f = h.family(family);
        if !f.present() {
            continue;
        }
        first.get_or_insert(p);
        let k = match f.state {
            PoolState::Healthy => 0,
            PoolState::Degraded => 1,
            PoolState::Down => continue,
        };
        any[k].get_or_insert(p);
        if kept[k].is_some() {
            continue;
        }
        if split * 1000.0 >= f64::from(h.share_permille()) {
            passed_on[k] = true;
            continue;
        }
        if !passed_on[k] || h.headroom {
            kept[k] = Some(p);
            if k == 0 {
                break;
            }
        }
    }
    let chosen = kept[0]
        .or(any[0])
        .map(|p| (p, Basis::Healthy))
        .or_else(|| kept[1].or(any[1]).map(|p| (p, Basis::Degraded)));
    (first, chosen)
}

/// While some pool of the order that is not down takes only part of its
/// catchment: the client subnet's point in 0..1 and its prefix length.
#[cold]
fn split_point(
    mut order: impl Iterator<Item = PoolId>,
    family: Family,
    client: &Client,
    inputs: &Inputs<'_>,
) -> Option<(f64, u8)> {
    let splits = order.any(|p| {
        inputs.health.pool(p).is_some_and(|h| {
            h.share_permille() < ramp::FULL && h.family(family).state != PoolState::Down
        })
    });
    splits.then(|| {
        let subnet = hashing::client_subnet(client);
        (hashing::unit(hashing::subnet_hash(subnet)), subnet.1)
    })
}

/// The trace of a split walk: each pool taking part of its catchment, and
/// whether it kept this client.
#[cold]
fn trace_split(
    t: &mut Trace,
    order: impl Iterator<Item = PoolId>,
    family: Family,
    client: &Client,
    inputs: &Inputs<'_>,
    (at, len): (f64, u8),
    chosen: Option<(PoolId, Basis)>,
) {
    let subnet = hashing::client_subnet(client).0;
    let to = chosen.map_or("nowhere".to_string(), |(p, _)| {
        inputs.config.pool(p).name.clone()
    });
    for p in order {
        let Some(h) = inputs.health.pool(p) else {
            continue;
        };
        let f = h.family(family);
        let s = h.share_permille();
        if !f.present() || s >= ramp::FULL || f.state == PoolState::Down {
            continue;
        }
        let name = &inputs.config.pool(p).name;
        let why = match h.utilisation {
            Some(u) if h.keep_permille < ramp::FULL => {
                format!("{name} at {:.0} % of capacity", u * 100.0)
            }
            _ => format!(
                "{name} taking back its catchment (slow start, {:.0} %)",
                f64::from(h.admit_permille) / 10.0
            ),
        };
        let cut = f64::from(s) / 1000.0;
        t.step(if at * 1000.0 < f64::from(s) {
            format!("{why}: this client {subnet}/{len} (hash {at:.2} < {cut:.2}) kept")
        } else {
            format!("{why}: this client {subnet}/{len} (hash {at:.2} ≥ {cut:.2}) sent to {to}")
        });
    }
}

/// Whether the name's `pools` list leaves a query of `family` to
/// `on_all_down`: some pool of the name (its `pools` or its fallback) has
/// endpoints of the family, and none of its `pools` is usable for it. Every
/// client's candidate order holds the `pools` list, so this is the walk's
/// [`Basis::AllDown`] for each client that no country, continent or subnet
/// rule sends to a usable pool (and for every client of a policy without
/// rules). The `fail_open` event uses it; the walk answers per client.
pub fn fails_open(
    name: &crate::config::BalanceConfig,
    family: Family,
    health: &crate::health::HealthView,
) -> bool {
    let fam = |p: &PoolId| health.pool(*p).map(|h| *h.family(family));
    let present = |p: &PoolId| fam(p).is_some_and(|f| f.present());
    let usable = |p: &PoolId| present(p) && fam(p).is_some_and(|f| f.state != PoolState::Down);
    let some_present = name.pools.iter().chain(name.fallback.iter()).any(present);
    some_present && !name.pools.iter().any(usable)
}

/// One pool as a query of `family` sees it, for the trace.
fn pool_line(inputs: &Inputs<'_>, p: PoolId, family: Family) -> String {
    let name = &inputs.config.pool(p).name;
    let Some(h) = inputs.health.pool(p) else {
        return format!("pool {name}: down (no health)");
    };
    let f = h.family(family);
    if !f.present() {
        return format!("pool {name}: no {} endpoint, skipped", family.rtype());
    }
    let mut line = format!(
        "pool {name}: {} for {} ({}",
        f.state.as_str(),
        family.rtype(),
        counts(f)
    );
    let other = match family {
        Family::V4 => Family::V6,
        Family::V6 => Family::V4,
    };
    let o = h.family(other);
    if o.present() {
        line.push_str(&format!(
            "; {}: {} {}",
            other.rtype(),
            o.state.as_str(),
            counts(o)
        ));
    }
    line.push(')');
    line
}

/// `up 1/2` or `up 1/2, draining 1`.
pub(super) fn counts(f: &FamilyHealth) -> String {
    if f.draining > 0 {
        format!("up {}/{}, draining {}", f.up, f.total, f.draining)
    } else {
        format!("up {}/{}", f.up, f.total)
    }
}

/// The TTL of an answer and, when it is `min_ttl`, why: the chosen pool is
/// degraded, not whole for the family, not the first candidate, or the
/// answer is an all-down one.
pub(super) fn ttl(
    walked: &Walked,
    family: Family,
    inputs: &Inputs<'_>,
    (ttl, min_ttl): (u32, u32),
) -> (u32, Option<TtlReason>) {
    let reason = match (walked.basis, walked.pool) {
        (Basis::AllDown(_), _) => Some(TtlReason::AllDown),
        (Basis::NoFamily, _) | (_, None) => None,
        (_, Some(p)) => {
            let f = inputs.health.pool(p).map(|h| *h.family(family));
            if walked.basis == Basis::Degraded {
                Some(TtlReason::Degraded(p))
            } else if walked.first != Some(p) {
                walked.first.map(TtlReason::NotFirst)
            } else {
                f.filter(|f| !f.whole())
                    .map(|f| TtlReason::NotWhole(p, f.up, f.total))
            }
        }
    };
    match reason {
        Some(r) => (min_ttl, Some(r)),
        None => (ttl, None),
    }
}

/// Up to `answers` addresses of `family` from `pool`, drawn by endpoint weight
/// without replacement, appended to `out`. Usable endpoints only, except when
/// every pool is down, where every endpoint of the family is a candidate.
/// With `sticky` (the client subnet's hash, see `hashing`), the draw is the
/// weighted rendezvous hash of that subnet instead of `rng`.
/// A pool of CNAME endpoints answers one of them, whatever the family: its
/// index in the pool is returned (and `out` is left alone).
///
/// The usual case (one answer, not sticky) is drawn inline in two plain
/// passes; sticky and multi-value answers go out of line.
#[allow(clippy::too_many_arguments, reason = "the draw's inputs, each used")]
#[inline(always)]
pub(super) fn endpoints<R: rand::Rng + ?Sized>(
    pool: PoolId,
    basis: Basis,
    family: Family,
    answers: u32,
    sticky: Option<u64>,
    inputs: &Inputs<'_>,
    rng: &mut R,
    out: &mut Endpoints,
) -> Option<u32> {
    let cfg = inputs.config.pool(pool);
    if cfg.answers_hosts() {
        let fail_open = matches!(basis, Basis::AllDown(_));
        hosts(pool, (family, answers, fail_open), sticky, inputs, rng, out);
        return None;
    }
    let cname = cfg.answers_cname();
    if sticky.is_some() || !(answers == 1 || cname) {
        return endpoints_listed(pool, basis, family, answers, sticky, inputs, rng, out);
    }
    let health = inputs.health.pool(pool);
    let how = (family, cname, matches!(basis, Basis::AllDown(_)));
    // Drawn as `draw` draws over the candidate list (one draw of the same
    // range, so the same endpoint), without making the list.
    let mut total = 0u64;
    for (i, e) in cfg.endpoints.iter().enumerate() {
        total += candidate_weight(e, i, health, how).unwrap_or(0);
    }
    if total == 0 {
        return None;
    }
    let mut draw = rng.random_range(0..total);
    for (i, e) in cfg.endpoints.iter().enumerate() {
        let Some(w) = candidate_weight(e, i, health, how) else {
            continue;
        };
        if draw < w {
            if cname {
                return Some(i as u32);
            }
            if let EndpointTarget::Address(a) = e.target {
                out.push(a);
            }
            return None;
        }
        draw -= w;
    }
    None
}

/// Endpoint `e` (index `i` in its pool) as a candidate of a draw: its
/// effective weight (at least 1), or None when it cannot answer: not of
/// the family (unless the pool answers CNAMEs), or not usable (unless the
/// answer fails open).
#[inline(always)]
fn candidate_weight(
    e: &EndpointConfig,
    i: usize,
    health: Option<&PoolHealth>,
    (family, cname, fail_open): (Family, bool, bool),
) -> Option<u64> {
    let of_family = match e.target {
        EndpointTarget::Address(a) => Family::of(&a) == family,
        _ => false,
    };
    if !(cname || of_family) {
        return None;
    }
    let h = health.and_then(|h| h.endpoints.get(i));
    if !(fail_open || h.is_some_and(|h| h.usable())) {
        return None;
    }
    let w = h.map_or(e.weight.saturating_mul(1000), |h| {
        h.effective_weight(e.weight)
    });
    Some(u64::from(w.max(1)))
}

/// [`endpoints`] from a candidate list: sticky (the rendezvous hash) and
/// multi-value answers.
#[allow(clippy::too_many_arguments, reason = "the draw's inputs, each used")]
#[inline(never)]
fn endpoints_listed<R: rand::Rng + ?Sized>(
    pool: PoolId,
    basis: Basis,
    family: Family,
    answers: u32,
    sticky: Option<u64>,
    inputs: &Inputs<'_>,
    rng: &mut R,
    out: &mut Endpoints,
) -> Option<u32> {
    let cfg = inputs.config.pool(pool);
    let health = inputs.health.pool(pool);
    let cname = cfg.answers_cname();
    let how = (family, cname, matches!(basis, Basis::AllDown(_)));
    // (index into the pool's endpoints, weight)
    let candidates = cfg
        .endpoints
        .iter()
        .enumerate()
        .filter_map(|(i, e)| candidate_weight(e, i, health, how).map(|w| (i, w)));
    if let Some(subnet) = sticky {
        // A CNAME endpoint takes part in the hash as a point made from its
        // name (stable on every node and across restarts), from the name
        // itself: no string made per query.
        let point = |i: usize| match &cfg.endpoints[i].target {
            EndpointTarget::Address(a) => *a,
            EndpointTarget::Cname(n) | EndpointTarget::Host(n) => name_point(n),
        };
        let best = super::hashing::rendezvous(
            subnet,
            candidates.map(|(i, w)| (i, point(i), w)),
            if cname { 1 } else { answers as usize },
        );
        if cname {
            return best.first().map(|&i| i as u32);
        }
        out.extend(best.into_iter().filter_map(|i| cfg.endpoints[i].address()));
        return None;
    }
    let mut candidates: SmallVec<[(usize, u64); 16]> = candidates.collect();
    let want = (answers as usize).min(candidates.len());
    let mut total: u64 = candidates.iter().map(|c| c.1).sum();
    for _ in 0..want {
        if total == 0 {
            break;
        }
        let at = draw(candidates.iter().map(|c| c.1), total, rng);
        let (i, w) = candidates.swap_remove(at);
        total -= w;
        out.extend(cfg.endpoints[i].address());
    }
    None
}

/// A pool of `host` endpoints: up to `answers` of its endpoints drawn by
/// weight (or by sticky's hash), each contributing every resolved address
/// of `family` that passes its probes (every one when `fail_open`, or when
/// the endpoint is forced up). An endpoint with none of that family is not
/// a candidate.
fn hosts<R: rand::Rng + ?Sized>(
    pool: PoolId,
    (family, answers, fail_open): (Family, u32, bool),
    sticky: Option<u64>,
    inputs: &Inputs<'_>,
    rng: &mut R,
    out: &mut Endpoints,
) {
    let cfg = inputs.config.pool(pool);
    let Some(health) = inputs.health.pool(pool) else {
        return;
    };
    let addresses = |i: usize| {
        health.endpoints.get(i).into_iter().flat_map(move |e| {
            let all = fail_open || e.forced.as_ref().is_some_and(|f| f.up);
            e.resolved
                .iter()
                .flat_map(move |r| r.answering(family, all))
        })
    };
    let mut candidates: SmallVec<[(usize, u64); 16]> = cfg
        .endpoints
        .iter()
        .enumerate()
        .filter(|(i, _)| {
            health.endpoints.get(*i).is_some_and(|e| {
                (fail_open || e.usable_in(family)) && addresses(*i).next().is_some()
            })
        })
        .map(|(i, e)| {
            let w = health
                .endpoints
                .get(i)
                .map_or(e.weight, |h| h.effective_weight(e.weight));
            (i, u64::from(w.max(1)))
        })
        .collect();
    let want = (answers as usize).min(candidates.len());
    if let Some(subnet) = sticky {
        // The point from the name itself: no string made per query.
        let point = |i: usize| match &cfg.endpoints[i].target {
            EndpointTarget::Address(a) => *a,
            EndpointTarget::Cname(n) | EndpointTarget::Host(n) => name_point(n),
        };
        let best = super::hashing::rendezvous(
            subnet,
            candidates.iter().map(|&(i, w)| (i, point(i), w)),
            want,
        );
        for i in best {
            out.extend(addresses(i));
        }
        return;
    }
    let mut total: u64 = candidates.iter().map(|c| c.1).sum();
    for _ in 0..want {
        if total == 0 {
            break;
        }
        let at = draw(candidates.iter().map(|c| c.1), total, rng);
        let (i, w) = candidates.swap_remove(at);
        total -= w;
        out.extend(addresses(i));
    }
}

/// `on_all_down = "all"`: every endpoint of `family` of every pool of the
/// name, in order, health ignored; drained endpoints are left out unless
/// nothing else is left.
pub(super) fn all_endpoints(
    pools: impl Iterator<Item = PoolId> + Clone,
    family: Family,
    inputs: &Inputs<'_>,
    out: &mut Endpoints,
) {
    let mut seen: SmallVec<[PoolId; 8]> = SmallVec::new();
    let mut add = |skip_drained: bool, out: &mut Endpoints| {
        seen.clear();
        for p in pools.clone() {
            if seen.contains(&p) {
                continue;
            }
            seen.push(p);
            let health = inputs.health.pool(p);
            for (i, e) in inputs.config.pool(p).endpoints.iter().enumerate() {
                let drained = health
                    .and_then(|h| h.endpoints.get(i))
                    .is_some_and(|h| h.draining);
                if skip_drained && drained {
                    continue;
                }
                // A host endpoint: every address it resolves to now.
                let resolved = health
                    .and_then(|h| h.endpoints.get(i))
                    .and_then(|h| h.resolved.as_ref());
                let addresses = e
                    .address()
                    .into_iter()
                    .chain(resolved.into_iter().flat_map(|r| r.answering(family, true)));
                for a in addresses {
                    if Family::of(&a) == family && !out.contains(&a) {
                        out.push(a);
                    }
                }
            }
        }
    };
    add(true, out);
    if out.is_empty() {
        add(false, out);
    }
}

/// A stable IPv6 point for a name (FNV-1a over its bytes, twice), so that
/// CNAME endpoints take part in sticky's rendezvous hash like addresses.
fn name_point(name: &str) -> std::net::IpAddr {
    let fnv = |seed: u64| {
        name.bytes().fold(seed, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        })
    };
    let (hi, lo) = (fnv(0xcbf2_9ce4_8422_2325), fnv(0x8422_2325_cbf2_9ce4));
    std::net::IpAddr::V6(((u128::from(hi) << 64) | u128::from(lo)).into())
}

/// The position of a weighted draw among `weights`, which sum to `total` (> 0).
fn draw<R: rand::Rng + ?Sized>(
    weights: impl Iterator<Item = u64>,
    total: u64,
    rng: &mut R,
) -> usize {
    let mut draw = rng.random_range(0..total);
    let mut at = 0;
    for (i, w) in weights.enumerate() {
        at = i;
        if draw < w {
            break;
        }
        draw -= w;
    }
    at
}
