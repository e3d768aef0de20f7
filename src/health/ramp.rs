//! ramp: a share that moves linearly over a period, for slow start (an
//! endpoint's weight 10 % → 100 %, a pool taking back its catchment 10 % →
//! 100 %) and gradual drains (an endpoint's weight 100 % → 0, then drained).
//!
//! The writer steps ramps on `HealthBook::tick` with the wall clock passed
//! in; queries read the resulting per-mille figure and never a clock. The
//! figure moves in steps of 1 % so a long ramp publishes about a hundred
//! snapshots, not one per tick.

use serde::Serialize;

/// Which way a ramp goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Slow start: from [`START_PERMILLE`] to full.
    Up,
    /// Gradual drain: from full to zero, then the endpoint is drained.
    Down,
}

/// Where a slow start begins: 10 %.
pub const START_PERMILLE: u16 = 100;

/// Full weight (or the whole catchment).
pub const FULL: u16 = 1000;

/// A ramp from `start_unix_ms` to `end_unix_ms` (wall clock, so that fleet
/// nodes given the same times ramp alike).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Ramp {
    /// Up (slow start) or down (gradual drain).
    pub direction: Direction,
    /// Unix ms it starts.
    pub start_unix_ms: u64,
    /// Unix ms it ends.
    pub end_unix_ms: u64,
}

impl Ramp {
    /// A ramp in `direction` over `period_ms` from `start_unix_ms`.
    pub fn new(direction: Direction, start_unix_ms: u64, period_ms: u64) -> Ramp {
        Ramp {
            direction,
            start_unix_ms,
            end_unix_ms: start_unix_ms.saturating_add(period_ms.max(1)),
        }
    }

    /// The share at `now_unix_ms`, in per mille, in steps of 10 (1 %).
    pub fn permille(&self, now_unix_ms: u64) -> u16 {
        let span = self.end_unix_ms.saturating_sub(self.start_unix_ms).max(1);
        let done = now_unix_ms.saturating_sub(self.start_unix_ms).min(span);
        let (from, to) = match self.direction {
            Direction::Up => (u64::from(START_PERMILLE), u64::from(FULL)),
            Direction::Down => (u64::from(FULL), 0),
        };
        let at = if to >= from {
            from + (to - from) * done / span
        } else {
            from - (from - to) * done / span
        };
        // Down rounds up and up rounds down: a ramp reaches its end value
        // only at its end.
        let step = match self.direction {
            Direction::Up => at / 10 * 10,
            Direction::Down => at.div_ceil(10) * 10,
        };
        step.min(u64::from(FULL)) as u16
    }

    /// The ramp is over at `now_unix_ms`.
    pub fn done(&self, now_unix_ms: u64) -> bool {
        now_unix_ms >= self.end_unix_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slow_start_goes_from_ten_percent_to_full_linearly() {
        let r = Ramp::new(Direction::Up, 1_000, 60_000);
        assert_eq!(r.permille(0), 100, "before the start: the start");
        assert_eq!(r.permille(1_000), 100);
        assert_eq!(r.permille(31_000), 550);
        assert_eq!(r.permille(60_999), 990);
        assert_eq!(r.permille(61_000), 1000);
        assert!(!r.done(60_999));
        assert!(r.done(61_000));
    }

    #[test]
    fn a_gradual_drain_goes_to_zero_only_at_its_end() {
        let r = Ramp::new(Direction::Down, 0, 600_000);
        assert_eq!(r.permille(0), 1000);
        assert_eq!(r.permille(150_000), 750);
        assert_eq!(r.permille(599_999), 10);
        assert_eq!(r.permille(600_000), 0);
    }

    #[test]
    fn the_share_moves_in_whole_percents_and_never_backwards() {
        let r = Ramp::new(Direction::Up, 0, 7_777);
        let mut last = 0;
        for t in (0..9_000).step_by(13) {
            let p = r.permille(t);
            assert_eq!(p % 10, 0);
            assert!(p >= last);
            last = p;
        }
        assert_eq!(last, 1000);
    }
}
