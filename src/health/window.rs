//! window: the sliding window of results behind error rates and latency.
//!
//! Memory is bounded whatever the traffic: results land in a ring of
//! [`BUCKETS`] buckets of `span / BUCKETS` each, with running totals, so one
//! record is O(1) and a window at 50k results/s costs the same as one at 1/s.
//! Expiry is precise to one bucket (`span / 60`, one second for a 60 s window).
//!
//! **Smoothed latency** is a time-decayed mean, not a per-sample EWMA: each
//! successful result weighs `exp(-age / tau)`, with `tau` the smaller of
//! `span / 12` and the monitor's interval (`Thresholds::latency_tau`).
//! Results that arrive together weigh the same, so a burst of
//! proxy traffic is averaged rather than "last few wins", and the mean follows
//! a step change within about two `tau`. Failed results count in the error
//! rate only: a timeout's latency is the timeout, which would count it twice.
//! When no successful result arrived for a whole `span`, latency is `None`.
//!
//! Pure: time is an argument.

use std::time::{Duration, Instant};

/// Buckets per window.
pub(super) const BUCKETS: usize = 60;
/// `tau` is at most `span / TAU_DIVISOR` for the smoothed latency.
pub(super) const TAU_DIVISOR: u32 = 12;

#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    count: u64,
    errors: u64,
}

/// Results over the last `span`.
#[derive(Debug, Clone)]
pub(super) struct Window {
    span: Duration,
    width_nanos: u128,
    buckets: Box<[Bucket; BUCKETS]>,
    /// Set by the first record or advance; bucket `i` covers
    /// `origin + i * width ..`.
    origin: Option<Instant>,
    /// Index (since `origin`) of the newest bucket.
    head: u64,
    count: u64,
    errors: u64,
    latency: Decayed,
}

impl Window {
    /// A window over `span` whose smoothed latency decays with `tau`.
    pub(super) fn new(span: Duration, tau: Duration) -> Window {
        let span = span.max(Duration::from_millis(BUCKETS as u64));
        Window {
            span,
            width_nanos: (span.as_nanos() / BUCKETS as u128).max(1),
            buckets: Box::new([Bucket::default(); BUCKETS]),
            origin: None,
            head: 0,
            count: 0,
            errors: 0,
            latency: Decayed::new(tau.as_secs_f64()),
        }
    }

    pub(super) fn span(&self) -> Duration {
        self.span
    }

    /// Forgets every result (an endpoint that comes back up starts afresh).
    /// Same span and tau; the bucket ring is reused.
    pub(super) fn clear(&mut self) {
        *self.buckets = [Bucket::default(); BUCKETS];
        self.origin = None;
        self.head = 0;
        self.count = 0;
        self.errors = 0;
        self.latency = Decayed::new(self.latency.tau);
    }

    /// Expires buckets older than the window. Returns true when the totals or
    /// the latency changed.
    pub(super) fn advance(&mut self, now: Instant) -> bool {
        let Some(origin) = self.origin else {
            self.origin = Some(now);
            return false;
        };
        let index = (now.saturating_duration_since(origin).as_nanos() / self.width_nanos) as u64;
        let mut changed = false;
        if index > self.head {
            let steps = (index - self.head).min(BUCKETS as u64);
            for i in 1..=steps {
                let slot = ((self.head + i) % BUCKETS as u64) as usize;
                let bucket = std::mem::take(&mut self.buckets[slot]);
                if bucket.count > 0 {
                    self.count -= bucket.count;
                    self.errors -= bucket.errors;
                    changed = true;
                }
            }
            self.head = index;
        }
        changed | self.latency.expire(now, self.span)
    }

    /// Adds one result. `latency` counts only for successful results.
    pub(super) fn record(&mut self, now: Instant, ok: bool, latency: Duration) {
        self.advance(now);
        let slot = (self.head % BUCKETS as u64) as usize;
        let bucket = &mut self.buckets[slot];
        bucket.count += 1;
        self.count += 1;
        if !ok {
            bucket.errors += 1;
            self.errors += 1;
        } else {
            self.latency.add(latency.as_secs_f64(), now);
        }
    }

    /// Results in the window (as of the last advance or record).
    pub(super) fn count(&self) -> u64 {
        self.count
    }

    pub(super) fn errors(&self) -> u64 {
        self.errors
    }

    /// Error rate, 0.0 when the window is empty.
    pub(super) fn error_rate(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.errors as f64 / self.count as f64
        }
    }

    /// The smoothed latency; None without a recent successful result.
    pub(super) fn latency(&self) -> Option<Duration> {
        self.latency.mean().map(seconds)
    }

    /// The latency accumulator decayed to `now`, as (weighted sum in
    /// seconds, weight), to combine several windows into one mean.
    pub(super) fn latency_parts(&self, now: Instant) -> (f64, f64) {
        self.latency.at(now)
    }
}

// === impl Decayed ===

/// A time-decayed mean: `sum` and `weight` both decay by `exp(-dt / tau)`.
#[derive(Debug, Clone)]
struct Decayed {
    tau: f64,
    sum: f64,
    weight: f64,
    /// When `sum` and `weight` were last decayed (the newest sample).
    at: Option<Instant>,
}

impl Decayed {
    fn new(tau: f64) -> Decayed {
        Decayed {
            tau: tau.max(1e-6),
            sum: 0.0,
            weight: 0.0,
            at: None,
        }
    }

    fn factor(&self, now: Instant) -> f64 {
        match self.at {
            Some(at) => (-(now.saturating_duration_since(at).as_secs_f64()) / self.tau).exp(),
            None => 1.0,
        }
    }

    fn add(&mut self, value: f64, now: Instant) {
        let f = self.factor(now);
        self.sum = self.sum * f + value;
        self.weight = self.weight * f + 1.0;
        // Racing: a sample stamped before `at` (out-of-order delivery) is
        // added undecayed rather than moving `at` backwards.
        if self.at.is_none_or(|at| now > at) {
            self.at = Some(now);
        }
    }

    /// Forgets everything once the newest sample is a whole span old.
    fn expire(&mut self, now: Instant, span: Duration) -> bool {
        match self.at {
            Some(at) if now.saturating_duration_since(at) >= span => {
                *self = Decayed::new(self.tau);
                true
            }
            _ => false,
        }
    }

    fn mean(&self) -> Option<f64> {
        (self.weight > 0.0).then(|| self.sum / self.weight)
    }

    fn at(&self, now: Instant) -> (f64, f64) {
        let f = self.factor(now);
        (self.sum * f, self.weight * f)
    }
}

/// Seconds as a Duration rounded to the microsecond, so that decaying a
/// mean (which leaves it unchanged up to float rounding) never looks like a
/// change.
pub(super) fn seconds(secs: f64) -> Duration {
    Duration::from_micros((secs.max(0.0) * 1e6).round() as u64)
}
