//! pick: the health walk over the candidate order (DESIGN §3 step 3) and the
//! endpoint choice inside the chosen pool (step 4).

use rand::RngExt;

use smallvec::SmallVec;

use super::{Basis, Endpoints, Family, Inputs, Trace};
use crate::config::PoolId;
use crate::health::PoolState;

/// First healthy pool, else first degraded, else the fallback (fail open).
pub fn walk(
    mut order: impl Iterator<Item = PoolId> + Clone,
    fallback: Option<PoolId>,
    inputs: &Inputs<'_>,
    trace: Option<&mut Trace>,
) -> (Option<PoolId>, Basis) {
    let state = |p: PoolId| {
        inputs
            .health
            .pool(p)
            .map(|h| h.state)
            .unwrap_or(PoolState::Down)
    };
    if let Some(t) = trace {
        for p in order.clone() {
            let h = inputs.health.pool(p);
            t.step(format!(
                "pool {}: {}{}",
                inputs.config.pool(p).name,
                state(p).as_str(),
                h.map(|h| format!(" (up {}/{})", h.up, h.total))
                    .unwrap_or_default()
            ));
        }
    }
    if let Some(p) = order.clone().find(|p| state(*p) == PoolState::Healthy) {
        return (Some(p), Basis::Healthy);
    }
    if let Some(p) = order.find(|p| state(*p) == PoolState::Degraded) {
        return (Some(p), Basis::Degraded);
    }
    match fallback {
        Some(p) => (Some(p), Basis::FailOpen),
        None => (None, Basis::NoPool),
    }
}

/// Up to `answers` addresses of `family` from `pool`, drawn by endpoint weight
/// without replacement, appended to `out`. Usable endpoints only, except when
/// failing open, where every endpoint of the family is a candidate.
pub fn endpoints<R: rand::Rng + ?Sized>(
    pool: PoolId,
    basis: Basis,
    family: Family,
    answers: u32,
    inputs: &Inputs<'_>,
    rng: &mut R,
    out: &mut Endpoints,
) {
    let cfg = inputs.config.pool(pool);
    let health = inputs.health.pool(pool);
    let fail_open = basis == Basis::FailOpen;
    // (index into the pool's endpoints, weight)
    let candidates = cfg
        .endpoints
        .iter()
        .enumerate()
        .filter(|(_, e)| Family::of(&e.address) == family)
        .filter(|(i, _)| {
            fail_open
                || health
                    .and_then(|h| h.endpoints.get(*i))
                    .is_some_and(|e| e.usable())
        })
        .map(|(i, e)| (i, u64::from(e.weight.max(1))));
    if answers == 1 {
        // The usual case, drawn the same way without a candidate list.
        let total: u64 = candidates.clone().map(|c| c.1).sum();
        if total > 0 {
            let at = draw(candidates.clone().map(|c| c.1), total, rng);
            out.extend(
                candidates
                    .clone()
                    .nth(at)
                    .map(|(i, _)| cfg.endpoints[i].address),
            );
        }
        return;
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
        out.push(cfg.endpoints[i].address);
    }
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
