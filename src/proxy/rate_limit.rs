//! rate_limit: token buckets per client IP for one route, bounded in memory.
//!
//! Pure: `now` is passed in. A bucket holds up to `burst` tokens and refills
//! at `per_client` tokens per second. The table holds at most `capacity`
//! buckets: when full, buckets that have refilled completely (idle clients,
//! indistinguishable from new ones) are swept; if too few have, an arbitrary
//! eighth of the table is evicted. A flood of distinct addresses thus costs bounded memory
//! and at worst forgets some clients' partial debt.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::config::RateLimitConfig;

/// Buckets kept per route before sweeping (about 64 bytes each).
pub const DEFAULT_CAPACITY: usize = 65_536;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Whether a request may pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// Over the limit; the client may retry after this long (whole seconds, ≥ 1).
    Limited {
        retry_after_secs: u64,
    },
}

#[derive(Debug)]
pub struct RateLimiter {
    limit: RateLimitConfig,
    capacity: usize,
    buckets: HashMap<IpAddr, Bucket>,
}

impl RateLimiter {
    pub fn new(limit: RateLimitConfig, capacity: usize) -> RateLimiter {
        RateLimiter {
            limit,
            capacity: capacity.max(1),
            buckets: HashMap::new(),
        }
    }

    /// Takes one token for `client` at `now`.
    pub fn check(&mut self, client: IpAddr, now: Instant) -> Verdict {
        let burst = f64::from(self.limit.burst.max(1));
        let rate = self.limit.per_client;
        if !self.buckets.contains_key(&client) && self.buckets.len() >= self.capacity {
            self.make_room(now);
        }
        let bucket = self.buckets.entry(client).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Verdict::Allow
        } else {
            let wait = (1.0 - bucket.tokens) / rate;
            Verdict::Limited {
                retry_after_secs: (wait.ceil() as u64).max(1),
            }
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.buckets.len()
    }

    fn make_room(&mut self, now: Instant) {
        let burst = f64::from(self.limit.burst.max(1));
        let refill = Duration::from_secs_f64(burst / self.limit.per_client);
        // A bucket idle for burst/rate seconds is full: forgetting it changes nothing.
        self.buckets
            .retain(|_, b| now.saturating_duration_since(b.at) < refill);
        if self.buckets.len() >= self.capacity {
            // Everyone is active: drop an arbitrary eighth (HashMap order is
            // randomly seeded), so each sweep buys room for many inserts and a
            // flood costs amortised O(1) per request.
            let victims: Vec<IpAddr> = self
                .buckets
                .keys()
                .take((self.capacity / 8).max(1))
                .copied()
                .collect();
            for ip in victims {
                self.buckets.remove(&ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn limiter(per_client: f64, burst: u32, capacity: usize) -> RateLimiter {
        RateLimiter::new(RateLimitConfig { per_client, burst }, capacity)
    }

    #[test]
    fn burst_then_limited_then_refills() {
        let t0 = Instant::now();
        let ip: IpAddr = [192, 0, 2, 1].into();
        let mut l = limiter(2.0, 3, 16);
        for _ in 0..3 {
            assert_eq!(l.check(ip, t0), Verdict::Allow);
        }
        assert_eq!(
            l.check(ip, t0),
            Verdict::Limited {
                retry_after_secs: 1
            }
        );
        // Half a second at 2/s gives one token back.
        assert_eq!(l.check(ip, t0 + Duration::from_millis(500)), Verdict::Allow);
        assert!(matches!(
            l.check(ip, t0 + Duration::from_millis(500)),
            Verdict::Limited { .. }
        ));
        // Other clients have their own bucket.
        assert_eq!(l.check([192, 0, 2, 2].into(), t0), Verdict::Allow);
    }

    #[test]
    fn slow_rates_give_longer_retry_after() {
        let t0 = Instant::now();
        let ip: IpAddr = [192, 0, 2, 1].into();
        let mut l = limiter(0.1, 1, 16);
        assert_eq!(l.check(ip, t0), Verdict::Allow);
        assert_eq!(
            l.check(ip, t0),
            Verdict::Limited {
                retry_after_secs: 10
            }
        );
    }

    #[test]
    fn a_flood_of_addresses_stays_bounded() {
        let t0 = Instant::now();
        let mut l = limiter(1.0, 5, 1000);
        for i in 0..100_000u32 {
            let ip = IpAddr::V4(Ipv4Addr::from(i));
            l.check(ip, t0 + Duration::from_micros(u64::from(i)));
            assert!(l.len() <= 1000);
        }
        // A client seen long ago whose bucket was full is simply new again.
        let fresh: IpAddr = [198, 51, 100, 1].into();
        assert_eq!(l.check(fresh, t0 + Duration::from_secs(60)), Verdict::Allow);
    }
}
