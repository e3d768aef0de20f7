//! The bounded history: the last [`CAPACITY`] events and a per-pool series of
//! samples, appended by the writer and read by the admin API under one short lock.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;

use super::{CAPACITY, Event, ms};
use crate::config::{Config, PoolId};
use crate::health::HealthView;

/// Samples kept per pool, whatever the window (10 minutes at one a second).
const MAX_SAMPLES: usize = 600;
/// The window of a pool without a monitor.
const DEFAULT_WINDOW: Duration = Duration::from_secs(60);

/// One sample of a pool's metrics.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Sample {
    pub at_unix_ms: u64,
    pub error_rate: f64,
    pub latency_ms: Option<f64>,
    /// With `capacity`: load / capacity while the load is fresh.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub utilisation: Option<f64>,
}

/// A pool's recent samples, oldest first, over at most `window_ms`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Series {
    pub pool: String,
    pub window_ms: u64,
    /// The monitor's thresholds, for scaling and marking the sparklines.
    pub max_error_rate: Option<f64>,
    pub max_latency_ms: Option<f64>,
    /// With `capacity`: its `spill_at`, marked on the utilisation sparkline.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spill_at: Option<f64>,
    pub samples: Vec<Sample>,
}

/// Events a subscriber may fall behind by before it misses some (it is told
/// how many: `RecvError::Lagged`).
const SUBSCRIBER_BACKLOG: usize = 4096;

/// The bounded history the writer appends to and the admin API reads.
#[derive(Debug)]
pub struct EventLog {
    inner: Mutex<Inner>,
    /// Every recorded event, for the webhooks; sending never waits.
    feed: tokio::sync::broadcast::Sender<Event>,
}

impl Default for EventLog {
    fn default() -> EventLog {
        EventLog {
            inner: Mutex::default(),
            feed: tokio::sync::broadcast::channel(SUBSCRIBER_BACKLOG).0,
        }
    }
}

#[derive(Debug, Default)]
struct Inner {
    /// Oldest first.
    events: VecDeque<Event>,
    /// In config order.
    series: Vec<SeriesBuf>,
}

#[derive(Debug)]
struct SeriesBuf {
    pool: String,
    window_ms: u64,
    max_error_rate: Option<f64>,
    max_latency_ms: Option<f64>,
    spill_at: Option<f64>,
    samples: VecDeque<Sample>,
}

impl EventLog {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends `events`, dropping the oldest beyond [`CAPACITY`].
    pub fn record(&self, events: impl IntoIterator<Item = Event>) {
        let mut inner = self.lock();
        for e in events {
            tracing::info!(kind = ?e.kind, reason = %e.reason, "event: {}", e.summary());
            if inner.events.len() == CAPACITY {
                inner.events.pop_front();
            }
            if self.feed.receiver_count() > 0 {
                // Under the lock, so subscribers see the log's order.
                let _ = self.feed.send(e.clone());
            }
            inner.events.push_back(e);
        }
    }

    /// Every event recorded from now on, in order. A subscriber more than
    /// 4096 events behind misses the oldest and is told how many.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Event> {
        self.feed.subscribe()
    }

    /// The events, newest first.
    pub fn events(&self) -> Vec<Event> {
        self.lock().events.iter().rev().cloned().collect()
    }

    /// Every pool's series, in config order.
    pub fn series(&self) -> Vec<Series> {
        self.lock()
            .series
            .iter()
            .map(|s| Series {
                pool: s.pool.clone(),
                window_ms: s.window_ms,
                max_error_rate: s.max_error_rate,
                max_latency_ms: s.max_latency_ms,
                spill_at: s.spill_at,
                samples: s.samples.iter().copied().collect(),
            })
            .collect()
    }

    /// Appends one sample per pool of `config`; a pool keeps its series
    /// across a reload by name, a removed pool's series goes.
    pub fn sample(&self, config: &Config, health: &HealthView, now_unix_ms: u64) {
        let mut inner = self.lock();
        let mut old: HashMap<String, SeriesBuf> = std::mem::take(&mut inner.series)
            .into_iter()
            .map(|s| (s.pool.clone(), s))
            .collect();
        for (i, pool) in config.pools.iter().enumerate() {
            let monitor = config.monitor_of(PoolId(i as u32));
            let window = monitor.map_or(DEFAULT_WINDOW, |m| m.window);
            let window_ms = window.as_millis() as u64;
            let mut buf = old.remove(&pool.name).unwrap_or_else(|| SeriesBuf {
                pool: pool.name.clone(),
                window_ms,
                max_error_rate: None,
                max_latency_ms: None,
                spill_at: None,
                samples: VecDeque::new(),
            });
            buf.spill_at = pool.capacity.map(|c| c.spill_at);
            buf.window_ms = window_ms;
            buf.max_error_rate = monitor.map(|m| m.max_error_rate);
            buf.max_latency_ms = monitor.map(|m| ms(m.max_latency));
            if let Some(h) = health.pools.get(i) {
                buf.samples.push_back(Sample {
                    at_unix_ms: now_unix_ms,
                    error_rate: h.error_rate,
                    latency_ms: h.latency.map(ms),
                    utilisation: h.utilisation,
                });
            }
            let oldest = now_unix_ms.saturating_sub(window_ms);
            while buf
                .samples
                .front()
                .is_some_and(|s| s.at_unix_ms < oldest || buf.samples.len() > MAX_SAMPLES)
            {
                buf.samples.pop_front();
            }
            inner.series.push(buf);
        }
    }
}
