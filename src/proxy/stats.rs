//! stats: a fixed-bucket latency histogram that request tasks update without locks.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the buckets, in milliseconds; the last bucket is open.
pub const BOUNDS_MS: [u64; 16] = [
    1, 2, 5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000, 60_000, 300_000,
];

#[derive(Debug, Default)]
pub struct Histogram {
    counts: [AtomicU64; BOUNDS_MS.len() + 1],
    sum_micros: AtomicU64,
}

/// A histogram read at one moment, for Prometheus: per-bucket counts (the
/// last is the open bucket) and the sum of all latencies.
#[derive(Debug, Clone, Default)]
pub struct HistogramSnapshot {
    pub counts: Vec<u64>,
    pub sum: Duration,
}

impl Histogram {
    pub fn record(&self, latency: Duration) {
        let ms = latency.as_millis() as u64;
        let i = BOUNDS_MS
            .iter()
            .position(|&b| ms <= b)
            .unwrap_or(BOUNDS_MS.len());
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add(latency.as_micros() as u64, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> HistogramSnapshot {
        HistogramSnapshot {
            counts: self
                .counts
                .iter()
                .map(|c| c.load(Ordering::Relaxed))
                .collect(),
            sum: Duration::from_micros(self.sum_micros.load(Ordering::Relaxed)),
        }
    }

    /// The upper bound of the bucket holding quantile `q` (0..=1); None when empty.
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        let counts: Vec<u64> = self
            .counts
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return None;
        }
        let rank = ((total as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, c) in counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                let ms = BOUNDS_MS.get(i).copied().unwrap_or(600_000);
                return Some(Duration::from_millis(ms));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_bucket_bounds() {
        let h = Histogram::default();
        assert_eq!(h.quantile(0.5), None);
        for _ in 0..98 {
            h.record(Duration::from_millis(3));
        }
        h.record(Duration::from_millis(700));
        h.record(Duration::from_secs(2));
        assert_eq!(h.quantile(0.5), Some(Duration::from_millis(5)));
        assert_eq!(h.quantile(0.99), Some(Duration::from_millis(1_000)));
        assert_eq!(h.quantile(1.0), Some(Duration::from_millis(2_500)));
    }
}
