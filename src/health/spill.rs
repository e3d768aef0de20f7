//! spill: how much of its catchment a pool over capacity keeps (issue 23).
//!
//! A pool with `capacity` has a load (reported through the admin API) and a
//! utilisation (load / capacity). Past `spill_at` it keeps only a share of
//! its catchment: the clients whose subnet hashes below the share stay, the
//! others go to the next pool of their order that has headroom. The share
//! is set by a damped controller, one step per interval:
//!
//! - the target is the share that would bring the pool to `spill_at`,
//!   assuming load follows the share it was measured at:
//!   `kept_when_measured × spill_at / utilisation`, at most 1;
//! - each step moves at most [`MAX_STEP`] (10 % of the catchment) toward
//!   it, and not at all within [`DEADBAND`] of it, so a steady load settles
//!   and stays (no oscillation): the target does not move while the load
//!   does not;
//! - without a fresh load figure the pool takes back its catchment, one
//!   step per interval.
//!
//! Pure: the writer calls [`step`] with the figures; queries read the share.

/// The largest change of the kept share in one step: 10 % of the catchment.
pub const MAX_STEP: f64 = 0.1;

/// Within this of the target the share does not move (1 %).
pub const DEADBAND: f64 = 0.01;

/// The next kept share (0..=1) from `kept` now. `utilisation`: the load
/// over capacity, None without a fresh figure; `kept_when_measured`: the
/// share in force when that load was measured.
pub fn step(kept: f64, utilisation: Option<f64>, kept_when_measured: f64, spill_at: f64) -> f64 {
    let target = match utilisation {
        None => 1.0,
        Some(u) if u <= 0.0 => 1.0,
        Some(u) => (kept_when_measured * spill_at / u).clamp(0.0, 1.0),
    };
    if (target - kept).abs() < DEADBAND {
        // Whole is whole: no float residue left short of it.
        return if target >= 1.0 { 1.0 } else { kept };
    }
    let next = (kept + (target - kept).clamp(-MAX_STEP, MAX_STEP)).clamp(0.0, 1.0);
    if next > 1.0 - 1e-9 { 1.0 } else { next }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn under_spill_at_nothing_spills() {
        assert_eq!(step(1.0, Some(0.5), 1.0, 0.9), 1.0);
        assert_eq!(step(1.0, Some(0.89), 1.0, 0.9), 1.0);
        assert_eq!(step(1.0, None, 1.0, 0.9), 1.0);
    }

    #[test]
    fn steps_are_bounded_and_settle_on_a_steady_report() {
        // A report of 112 % at full share, never updated: the target is
        // 0.9 / 1.12 = 0.80; one bounded step per interval, then it stays.
        let mut kept = 1.0;
        let mut path = vec![];
        for _ in 0..20 {
            let next = step(kept, Some(1.12), 1.0, 0.9);
            assert!((next - kept).abs() <= MAX_STEP + 1e-9);
            kept = next;
            path.push(kept);
        }
        assert!((path[0] - 0.9).abs() < 1e-9, "{path:?}");
        assert!((kept - 0.9 / 1.12).abs() < DEADBAND, "{path:?}");
        assert!(path.windows(2).all(|w| w[1] <= w[0]), "monotone: {path:?}");
        assert_eq!(
            path[5..].iter().filter(|k| **k != kept).count(),
            0,
            "{path:?}"
        );
    }

    #[test]
    fn a_load_that_follows_the_share_settles_without_oscillating() {
        // The pool's clients bring 1.5 × capacity at full share, and the
        // load follows the share one interval late (resolvers' caches).
        let demand = 1.5;
        let (mut kept, mut measured_at) = (1.0, 1.0);
        let mut path = vec![];
        for _ in 0..40 {
            let u = demand * measured_at;
            let next = step(kept, Some(u), measured_at, 0.9);
            measured_at = kept;
            kept = next;
            path.push(kept);
        }
        let settled = 0.9 / demand;
        assert!((kept - settled).abs() < 0.02, "{path:?}");
        // Never below the settled share by more than the dead band: no
        // overshoot, so no swing back.
        assert!(
            path.iter().all(|k| *k >= settled - DEADBAND - 1e-9),
            "{path:?}"
        );
        let direction_changes = path
            .windows(3)
            .filter(|w| (w[1] - w[0]) * (w[2] - w[1]) < 0.0)
            .count();
        assert_eq!(direction_changes, 0, "{path:?}");
    }

    #[test]
    fn the_catchment_returns_in_bounded_steps_when_load_falls_or_goes_stale() {
        // Reverse ramp: the load fell to 40 % at a share of 0.5.
        let mut kept = 0.5;
        for _ in 0..3 {
            let next = step(kept, Some(0.4), 0.5, 0.9);
            assert!(next > kept && next - kept <= MAX_STEP + 1e-9);
            kept = next;
        }
        assert!((kept - 0.8).abs() < 1e-9);
        // No figure any more: back to whole, a step at a time.
        let mut kept = 0.3;
        let mut steps = 0;
        while kept < 1.0 {
            kept = step(kept, None, kept, 0.9);
            steps += 1;
        }
        assert_eq!(steps, 7);
    }
}
