//! load: where a pool's load comes from, besides a report on this node
//! (issue 23): the proxy's request rate, the figures a fleet shares through
//! etcd, and the numbers HTTP monitors read from a response header.
//!
//! - [`RateMeter`]: requests a pool's proxy backends forwarded, per whole
//!   second; the rate is the mean of the last [`RATE_WINDOW_S`] whole
//!   seconds, so it moves at most once a second.
//! - [`ReportedLoad`], [`FleetLoads`]: a report written to etcd
//!   (`PREFIX/load/POOL`, with its expiry) and every node's own proxy rate
//!   (`PREFIX/rate/NODE/POOL`, under its lease), as heard by this node.
//! - [`HeaderLoads`]: each endpoint's last figure from `load_header`, fresh
//!   for three monitor intervals; the pool's load is their sum.
//! - [`worth_publishing`]: a node rewrites its rate only when it moved by
//!   more than 5 %.
//!
//! Pure: times are Unix milliseconds passed in. The `cluster` shell does
//! the IO; the book turns these into the pool's load.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// The rate is the mean over this many whole seconds.
pub const RATE_WINDOW_S: u64 = 3;

/// A node rewrites its rate in etcd only when it moved by more than this
/// share of what it wrote last.
pub const PUBLISH_CHANGE: f64 = 0.05;

/// Requests counted per whole second (wall clock), the last
/// [`RATE_WINDOW_S`] complete ones kept.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RateMeter {
    /// (Unix second, requests in it), the current second included.
    seconds: [(u64, u32); RATE_WINDOW_S as usize + 1],
}

impl RateMeter {
    /// Counts one request at `now_unix_ms`.
    pub fn count(&mut self, now_unix_ms: u64) {
        let s = now_unix_ms / 1000;
        let slot = &mut self.seconds[(s % self.seconds.len() as u64) as usize];
        if slot.0 != s {
            *slot = (s, 0);
        }
        slot.1 = slot.1.saturating_add(1);
    }

    /// Requests per second over the last [`RATE_WINDOW_S`] whole seconds
    /// before `now_unix_ms` (the second under way does not count yet).
    pub fn per_second(&self, now_unix_ms: u64) -> f64 {
        let s = now_unix_ms / 1000;
        let from = s.saturating_sub(RATE_WINDOW_S);
        let sum: u64 = self
            .seconds
            .iter()
            .filter(|(at, _)| *at >= from && *at < s)
            .map(|(_, n)| u64::from(*n))
            .sum();
        sum as f64 / RATE_WINDOW_S as f64
    }
}

/// A load reported through the admin API of a node of a fleet
/// (`PREFIX/load/POOL`, no lease): every node takes it until `until`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportedLoad {
    /// The load, in the unit of the pool's capacity.
    pub value: f64,
    /// Unix ms it stops counting (the report's time plus its ttl).
    pub until: u64,
    /// The node whose API took it.
    pub by: String,
    /// Unix ms of the report.
    pub at: u64,
}

/// One node's own proxy rate for a pool (`PREFIX/rate/NODE/POOL`, under
/// its lease).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeRate {
    /// Requests per second its proxy forwarded for the pool.
    pub rps: f64,
    /// Unix ms it was measured.
    pub at: u64,
}

/// The load figures a fleet shares, as heard by this node.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FleetLoads {
    /// Reports by pool name.
    pub reported: HashMap<Arc<str>, ReportedLoad>,
    /// The other nodes' proxy rates: by node, then pool name.
    pub rates: BTreeMap<Arc<str>, HashMap<Arc<str>, f64>>,
}

impl FleetLoads {
    /// The sum of the proxy rates for `pool` of the nodes `fresh` accepts
    /// (the fleet's fresh vantages: a node gone takes its figure along).
    pub fn remote_rate(&self, pool: &str, fresh: impl Fn(&str) -> bool) -> f64 {
        self.rates
            .iter()
            .filter(|(node, _)| fresh(node))
            .filter_map(|(_, pools)| pools.get(pool))
            .sum()
    }
}

/// Whether a rate moved enough from what was written (`written`) to be
/// written again: by more than [`PUBLISH_CHANGE`] of it, or to or from 0.
pub fn worth_publishing(written: Option<f64>, now: f64) -> bool {
    match written {
        None => true,
        Some(w) if w == 0.0 || now == 0.0 => w != now,
        Some(w) => ((now - w) / w).abs() > PUBLISH_CHANGE,
    }
}

/// Each endpoint's last figure read from its monitor's `load_header`, with
/// the Unix ms it goes stale.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HeaderLoads {
    figures: Vec<Option<(f64, u64)>>,
}

impl HeaderLoads {
    /// For a pool of `endpoints`.
    pub fn new(endpoints: usize) -> HeaderLoads {
        HeaderLoads {
            figures: vec![None; endpoints],
        }
    }

    /// Endpoint `index` said `value`, fresh until `until_unix_ms`.
    pub fn set(&mut self, index: usize, value: f64, until_unix_ms: u64) {
        if let Some(f) = self.figures.get_mut(index) {
            *f = Some((value, until_unix_ms));
        }
    }

    /// The pool's load: the sum of the fresh figures (each endpoint reports
    /// its own part, as an HAProxy agent speaks for its own server), and
    /// when the oldest of them goes stale. None when none is fresh.
    pub fn sum(&self, now_unix_ms: u64) -> Option<(f64, u64)> {
        self.figures
            .iter()
            .flatten()
            .filter(|(_, until)| *until > now_unix_ms)
            .fold(None, |acc, &(v, until)| match acc {
                None => Some((v, until)),
                Some((s, u)) => Some((s + v, u.min(until))),
            })
    }
}

/// Reads a `load_header` value: a number, 0 or more (`"42"`, `"12.5"`).
pub fn parse_header(value: &str) -> Option<f64> {
    let v: f64 = value.trim().parse().ok()?;
    (v.is_finite() && v >= 0.0).then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_is_the_mean_of_whole_seconds_and_forgets_old_ones() {
        let mut m = RateMeter::default();
        // 30 requests in each of seconds 100, 101, 102.
        for s in 100..103u64 {
            for i in 0..30 {
                m.count(s * 1000 + i * 30);
            }
        }
        // During 102, only 100 and 101 are complete.
        assert_eq!(m.per_second(102_500), 20.0);
        assert_eq!(m.per_second(103_000), 30.0);
        assert_eq!(m.per_second(104_000), 20.0);
        assert_eq!(m.per_second(106_000), 0.0);
        // A second reused by the ring starts from zero.
        m.count(107_100);
        assert_eq!(m.per_second(108_000), 1.0 / 3.0);
    }

    #[test]
    fn a_rate_is_rewritten_only_past_five_percent() {
        assert!(worth_publishing(None, 0.0));
        assert!(!worth_publishing(Some(100.0), 104.9));
        assert!(!worth_publishing(Some(100.0), 95.5));
        assert!(worth_publishing(Some(100.0), 105.1));
        assert!(worth_publishing(Some(100.0), 94.0));
        assert!(worth_publishing(Some(0.0), 0.3));
        assert!(worth_publishing(Some(0.3), 0.0));
        assert!(!worth_publishing(Some(0.0), 0.0));
    }

    #[test]
    fn the_fleet_rate_sums_fresh_nodes_only() {
        let mut f = FleetLoads::default();
        for (node, rps) in [("n2", 10.0), ("n3", 5.0)] {
            f.rates
                .entry(Arc::from(node))
                .or_default()
                .insert(Arc::from("eu"), rps);
        }
        assert_eq!(f.remote_rate("eu", |_| true), 15.0);
        assert_eq!(f.remote_rate("eu", |n| n != "n3"), 10.0);
        assert_eq!(f.remote_rate("us", |_| true), 0.0);
    }

    #[test]
    fn header_figures_sum_while_fresh() {
        let mut h = HeaderLoads::new(3);
        assert_eq!(h.sum(0), None);
        h.set(0, 40.0, 1_000);
        h.set(2, 60.0, 2_000);
        h.set(9, 1.0, 2_000);
        assert_eq!(h.sum(500), Some((100.0, 1_000)));
        assert_eq!(h.sum(1_000), Some((60.0, 2_000)));
        assert_eq!(h.sum(2_000), None);
        assert_eq!(parse_header(" 12.5 "), Some(12.5));
        for bad in ["", "-1", "NaN", "inf", "12%", "lots"] {
            assert_eq!(parse_header(bad), None, "{bad}");
        }
    }
}
