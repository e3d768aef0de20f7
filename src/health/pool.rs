//! pool: healthy / degraded / down, as DESIGN §3 defines them.
//!
//! - **down**: fewer than `min_healthy` (at least 1) endpoints usable, i.e. up
//!   and not draining: a pool whose endpoints are all drained has nothing to
//!   answer with, so it is down too.
//! - **degraded**: the error rate (once the window holds `min_samples`
//!   results) is above `max_error_rate`, or the smoothed latency is above
//!   `max_latency`. Both are computed over the usable endpoints' windows plus
//!   the pool's proxy traffic window.
//! - **healthy**: otherwise. Leaving degraded needs `rise` consecutive
//!   *periodic* evaluations (one per monitor interval, run by `tick`) under
//!   threshold; an evaluation over threshold restarts the count. Entering
//!   degraded is immediate, on any evaluation.
//!
//! Pure: time is an argument.

use std::time::{Duration, Instant};

use super::endpoint::Endpoint;
use super::fleet::{RemoteVotes, Votes};
use super::load::{FleetLoads, HeaderLoads, RateMeter, ReportedLoad};
use super::ramp::{self, Direction, Ramp};
use super::window::{TAU_DIVISOR, Window, seconds};
use super::{PoolHealth, PoolState};
use crate::config::{LoadSource, MonitorConfig};

/// What a pool is judged against: its monitor's settings, or
/// [`Thresholds::UNMONITORED`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    /// The sliding window error rate and latency are measured over.
    pub window: Duration,
    /// Degraded above this error rate (0.0..=1.0).
    pub max_error_rate: f64,
    /// Samples in the window before the error rate counts.
    pub min_samples: u32,
    /// Degraded above this latency.
    pub max_latency: Duration,
    /// Results in a row that bring an endpoint up.
    pub rise: u32,
    /// Results in a row that take an endpoint down.
    pub fall: u32,
    /// How often `tick` runs a periodic evaluation (the monitor interval).
    pub interval: Duration,
    /// Fleet: down / degraded when more than this fraction of vantages say so.
    pub quorum: f64,
}

impl Thresholds {
    /// For pools without a monitor, whose health comes only from proxy
    /// traffic: the monitor defaults of DESIGN §2 (60 s window, 1 % errors,
    /// 500 ms latency, rise 2, 5 s interval), except `min_samples = 100`:
    /// real traffic is bursty, and a pool that served ten requests and failed
    /// one should not be steered away from.
    pub const UNMONITORED: Thresholds = Thresholds {
        window: Duration::from_secs(60),
        max_error_rate: 0.01,
        min_samples: 100,
        max_latency: Duration::from_millis(500),
        rise: 2,
        fall: 3,
        interval: Duration::from_secs(5),
        quorum: 0.5,
    };

    /// How fast smoothed latency follows a change: `window / 12`, but never
    /// longer than one probe interval, so that a region turning slow crosses
    /// `max_latency` within about `fall` intervals, as fast as a dead
    /// endpoint leaves (a step to 1.2 × `max_latency` crosses after two
    /// results one `tau` apart).
    pub fn latency_tau(&self) -> Duration {
        (self.window / TAU_DIVISOR).min(self.interval)
    }

    /// The thresholds of `monitor`, or [`Thresholds::UNMONITORED`] without one.
    pub fn of(monitor: Option<&MonitorConfig>) -> Thresholds {
        match monitor {
            None => Thresholds::UNMONITORED,
            Some(m) => Thresholds {
                window: m.window,
                max_error_rate: m.max_error_rate,
                min_samples: m.min_samples,
                max_latency: m.max_latency,
                rise: m.rise.max(1),
                fall: m.fall.max(1),
                interval: m.interval,
                quorum: m.quorum,
            },
        }
    }
}

/// How long a proxy rate counts without a refresh (the writer refreshes it
/// at every step, ten times a second).
const PROXY_LOAD_TTL_MS: u64 = 3_000;

/// A pool's load inputs besides a report on this node.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct LoadInputs {
    /// Requests this node's proxy forwarded for the pool.
    pub rate: RateMeter,
    /// This node's rate as of the last refresh (published to the fleet).
    pub local_rate: f64,
    /// The sum of the other fresh nodes' rates.
    pub remote_rate: f64,
    /// The endpoints' `load_header` figures.
    pub headers: HeaderLoads,
    /// The fleet's report last taken (`PREFIX/load/POOL`).
    pub fleet_report: Option<ReportedLoad>,
}

/// A reported load.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Load {
    pub value: f64,
    pub expires_unix_ms: u64,
    /// The kept share in force when it was reported: the controller
    /// assumes the load follows the share.
    pub kept_when_measured: f64,
}

#[derive(Debug, Clone)]
pub(super) struct Pool {
    pub name: String,
    /// The monitor's name; history carries over a reload only when it is the same.
    pub monitor: Option<String>,
    pub min_healthy: u32,
    pub thresholds: Thresholds,
    pub endpoints: Vec<Endpoint>,
    /// Real traffic a proxy backend forwarded for this pool.
    pub traffic: Window,
    pub state: PoolState,
    /// This node's own judgement of the metrics: over threshold, and not yet
    /// `rise` periodic evaluations back under it. Alone, it is the state's
    /// degraded; in a fleet, it is this node's vote.
    pub degraded: bool,
    /// In a fleet: the other vantages' `degraded` votes.
    pub remote: Option<RemoteVotes>,
    /// `slow_start`: the period of endpoint and pool ramps; None: none.
    pub slow_start: Option<Duration>,
    /// Back from down with `slow_start`: the pool takes back its catchment
    /// over the period.
    pub ramp: Option<Ramp>,
    /// The share of its catchment it takes, per mille (1000 without a ramp).
    pub admit_permille: u16,
    /// Down at the last ramp step.
    was_down: bool,
    /// `capacity`: what the spill controller works from.
    pub capacity: Option<crate::config::Capacity>,
    /// The reported load, while fresh.
    pub load: Option<Load>,
    /// What the load is made of when it is not reported on this node: the
    /// proxy's rate, the fleet's figures, the monitor's headers.
    pub inputs: LoadInputs,
    /// The share of its catchment it keeps (spill controller), 0..=1.
    keep: f64,
    /// When the controller steps next (wall clock).
    next_spill_step_unix_ms: u64,
    /// Has been up: the first up (start-up) is no return from down.
    seen_up: bool,
    /// Consecutive periodic evaluations under threshold while degraded.
    good_evals: u32,
    next_eval: Option<Instant>,
    /// Metrics as of the last evaluation, for the view.
    error_rate: f64,
    latency: Option<Duration>,
    samples: u64,
}

impl Pool {
    pub(super) fn new(
        name: String,
        monitor: Option<String>,
        min_healthy: u32,
        thresholds: Thresholds,
        endpoints: Vec<Endpoint>,
    ) -> Pool {
        let mut pool = Pool {
            name,
            monitor,
            min_healthy,
            thresholds,
            endpoints,
            traffic: Window::new(thresholds.window, thresholds.latency_tau()),
            state: PoolState::Down,
            degraded: false,
            remote: None,
            slow_start: None,
            ramp: None,
            admit_permille: ramp::FULL,
            was_down: true,
            seen_up: false,
            capacity: None,
            load: None,
            inputs: LoadInputs::default(),
            keep: 1.0,
            next_spill_step_unix_ms: 0,
            good_evals: 0,
            next_eval: None,
            error_rate: 0.0,
            latency: None,
            samples: 0,
        };
        pool.state = if pool.enough_usable() {
            PoolState::Healthy
        } else {
            PoolState::Down
        };
        pool.was_down = pool.state == PoolState::Down;
        pool.seen_up = !pool.was_down;
        pool
    }

    /// Steps the ramps of the pool and its endpoints at `now_unix_ms` (see
    /// [`Endpoint::step_ramp`]); a gradual drain that ends re-decides the
    /// state. The pool itself ramps its catchment back after being down
    /// (not at start-up). Returns true when the view changed.
    pub(super) fn step_ramps(&mut self, now_unix_ms: u64) -> bool {
        let q = self.thresholds.quorum;
        let mut changed = false;
        let mut drained = false;
        for e in &mut self.endpoints {
            let was = e.draining;
            changed |= e.step_ramp(q, self.slow_start, now_unix_ms);
            drained |= e.draining != was;
        }
        if drained {
            changed |= self.decide(false);
        }
        let down = self.state == PoolState::Down;
        if !down
            && self.was_down
            && self.seen_up
            && let Some(period) = self.slow_start
        {
            self.ramp = Some(Ramp::new(
                Direction::Up,
                now_unix_ms,
                period.as_millis() as u64,
            ));
            changed = true;
        }
        if (down && self.ramp.is_some()) || self.ramp.is_some_and(|r| r.done(now_unix_ms)) {
            self.ramp = None;
            changed = true;
        }
        self.was_down = down;
        self.seen_up |= !down;
        let admit = self.ramp.map_or(ramp::FULL, |r| r.permille(now_unix_ms));
        changed |= admit != self.admit_permille;
        self.admit_permille = admit;
        changed |= self.step_spill(now_unix_ms);
        changed
    }

    /// Takes a reported load, valid for `ttl_ms`.
    pub(super) fn set_load(&mut self, value: f64, ttl_ms: u64, now_unix_ms: u64) {
        self.load = Some(Load {
            value,
            expires_unix_ms: now_unix_ms.saturating_add(ttl_ms),
            kept_when_measured: self.keep,
        });
    }

    /// Holds `value` until `expires_unix_ms`. A new figure is a new
    /// measurement (the controller takes it as measured at the share in
    /// force now); the same figure again only extends it. Returns true when
    /// the figure changed.
    fn hold_load(&mut self, value: f64, expires_unix_ms: u64) -> bool {
        match &mut self.load {
            Some(l) if l.value == value => {
                l.expires_unix_ms = l.expires_unix_ms.max(expires_unix_ms);
                false
            }
            _ => {
                self.load = Some(Load {
                    value,
                    expires_unix_ms,
                    kept_when_measured: self.keep,
                });
                true
            }
        }
    }

    /// Brings a proxy or `load_header` load up to date (a reported one is
    /// set by its reports). Returns true when the figure changed.
    fn refresh_load(&mut self, now_unix_ms: u64) -> bool {
        let Some(cap) = self.capacity else {
            return false;
        };
        match cap.load {
            LoadSource::Reported => false,
            LoadSource::Proxy => {
                self.inputs.local_rate = self.inputs.rate.per_second(now_unix_ms);
                let total = self.inputs.local_rate + self.inputs.remote_rate;
                self.hold_load(total, now_unix_ms.saturating_add(PROXY_LOAD_TTL_MS))
            }
            LoadSource::Header => match self.inputs.headers.sum(now_unix_ms) {
                Some((value, until)) => self.hold_load(value, until),
                None => false,
            },
        }
    }

    /// Counts one request a proxy backend forwarded for this pool.
    pub(super) fn count_request(&mut self, now_unix_ms: u64) {
        if self.capacity.is_some_and(|c| c.load == LoadSource::Proxy) {
            self.inputs.rate.count(now_unix_ms);
        }
    }

    /// Endpoint `index`'s probe read `value` from the monitor's
    /// `load_header`: fresh for three monitor intervals.
    pub(super) fn header_load(&mut self, index: usize, value: f64, now_unix_ms: u64) {
        if self.capacity.is_some_and(|c| c.load == LoadSource::Header) {
            let ttl = 3 * self.thresholds.interval.as_millis() as u64;
            self.inputs
                .headers
                .set(index, value, now_unix_ms.saturating_add(ttl));
        }
    }

    /// Takes the fleet's load figures: the other nodes' proxy rates for a
    /// `proxy` pool (of the nodes `fresh` accepts), a report written to
    /// etcd for a `reported` one (taken when it changed, like a report
    /// made here).
    pub(super) fn apply_fleet_loads(&mut self, loads: &FleetLoads, fresh: impl Fn(&str) -> bool) {
        let Some(cap) = self.capacity else {
            return;
        };
        match cap.load {
            LoadSource::Proxy => self.inputs.remote_rate = loads.remote_rate(&self.name, fresh),
            LoadSource::Reported => {
                let record = loads.reported.get(self.name.as_str());
                if record == self.inputs.fleet_report.as_ref() {
                    return;
                }
                match record {
                    Some(r) => {
                        self.load = Some(Load {
                            value: r.value,
                            expires_unix_ms: r.until,
                            kept_when_measured: self.keep,
                        })
                    }
                    None => self.load = None,
                }
                self.inputs.fleet_report = record.cloned();
            }
            LoadSource::Header => {}
        }
    }

    /// Load over capacity, while the load is fresh.
    pub(super) fn utilisation(&self) -> Option<f64> {
        Some(self.load?.value / self.capacity?.max)
    }

    /// The kept share per mille, in whole percents.
    pub(super) fn keep_permille(&self) -> u16 {
        ((self.keep * 100.0).round() as u16 * 10).min(ramp::FULL)
    }

    /// Expires the load and, once per monitor interval, steps the spill
    /// controller. Returns true when the view changed.
    fn step_spill(&mut self, now_unix_ms: u64) -> bool {
        let Some(cap) = self.capacity else {
            return false;
        };
        let mut changed = self.refresh_load(now_unix_ms);
        if self.load.is_some_and(|l| now_unix_ms >= l.expires_unix_ms) {
            self.load = None;
            changed = true;
        }
        if now_unix_ms >= self.next_spill_step_unix_ms {
            let before = self.keep_permille();
            let measured = self.load.map_or(self.keep, |l| l.kept_when_measured);
            let next = super::spill::step(self.keep, self.utilisation(), measured, cap.spill_at);
            // An idle step (whole, staying whole) does not start an
            // interval: the first cut after a report comes at once.
            if next != self.keep {
                self.next_spill_step_unix_ms =
                    now_unix_ms.saturating_add(self.thresholds.interval.as_millis() as u64);
            }
            self.keep = next;
            changed |= self.keep_permille() != before;
        }
        changed
    }

    pub(super) fn monitored(&self) -> bool {
        self.monitor.is_some()
    }

    /// (usable, total) endpoints per family, indexed by `Family::index`.
    fn family_counts(&self) -> [(u32, u32); 2] {
        let q = self.thresholds.quorum;
        let mut counts = [(0, 0); 2];
        for e in &self.endpoints {
            for f in super::Family::BOTH {
                if e.counts_in(f) {
                    let c = &mut counts[f.index()];
                    c.1 += 1;
                    c.0 += u32::from(e.usable_in(q, f));
                }
            }
        }
        counts
    }

    /// Whether a family with `usable` of `total` endpoints can answer: at
    /// least `min(min_healthy, total)` of them (DESIGN §3 step 3).
    fn family_up(&self, (usable, total): (u32, u32)) -> bool {
        total > 0 && usable >= self.min_healthy.max(1).min(total)
    }

    /// Enough endpoints usable for at least one of its families: the pool
    /// answers something, so its error rate and latency are judged.
    fn enough_usable(&self) -> bool {
        self.family_counts().into_iter().any(|c| self.family_up(c))
    }

    /// The worst state of the families it has endpoints of: a family short
    /// of usable endpoints is down, the others share the pool's verdict.
    fn worst_family(&self, degraded: bool) -> PoolState {
        let verdict = if degraded {
            PoolState::Degraded
        } else {
            PoolState::Healthy
        };
        self.family_counts()
            .into_iter()
            .filter(|c| c.1 > 0)
            .map(|c| {
                if self.family_up(c) {
                    verdict
                } else {
                    PoolState::Down
                }
            })
            .max()
            .unwrap_or(PoolState::Down)
    }

    /// Brings every window up to `now` and recomputes the pool's metrics.
    /// Returns true when any number the view shows changed.
    pub(super) fn measure(&mut self, now: Instant) -> bool {
        let mut changed = self.traffic.advance(now);
        let (mut count, mut errors) = (self.traffic.count(), self.traffic.errors());
        let (mut sum, mut weight) = self.traffic.latency_parts(now);
        for e in &mut self.endpoints {
            changed |= e.window.advance(now);
            if e.measured() {
                count += e.window.count();
                errors += e.window.errors();
                let (s, w) = e.window.latency_parts(now);
                sum += s;
                weight += w;
            }
        }
        let error_rate = if count == 0 {
            0.0
        } else {
            errors as f64 / count as f64
        };
        let latency = (weight > 0.0).then(|| seconds(sum / weight));
        changed |= error_rate != self.error_rate || latency != self.latency;
        self.error_rate = error_rate;
        self.latency = latency;
        self.samples = count;
        changed
    }

    /// Whether the last measured metrics are over threshold.
    pub(super) fn over_threshold(&self) -> bool {
        let t = &self.thresholds;
        let errors_over =
            self.samples >= u64::from(t.min_samples) && self.error_rate > t.max_error_rate;
        let latency_over = self.latency.is_some_and(|l| l > t.max_latency);
        errors_over || latency_over
    }

    /// Decides the state from the endpoints and the last measured metrics.
    /// `periodic` evaluations count toward leaving degraded. Returns true when
    /// the state changed.
    pub(super) fn decide(&mut self, periodic: bool) -> bool {
        let before = self.state;
        let over = self.over_threshold();
        let enough = self.enough_usable();
        if !enough {
            // Coming out of down, endpoints' windows are fresh: no hold.
            self.good_evals = 0;
            self.degraded = false;
        } else if over {
            self.good_evals = 0;
            self.degraded = true;
        } else if self.degraded {
            if periodic {
                self.good_evals += 1;
            }
            if self.good_evals >= self.thresholds.rise {
                self.good_evals = 0;
                self.degraded = false;
            }
        }
        self.state = if enough {
            self.worst_family(self.fleet_degraded())
        } else {
            PoolState::Down
        };
        self.state != before
    }

    /// Alone: this node's judgement. In a fleet: more than `quorum` of the
    /// vantages (this one included) judge the pool degraded.
    fn fleet_degraded(&self) -> bool {
        match self.remote {
            None => self.degraded,
            Some(_) => self.degraded_votes().down(self.thresholds.quorum) == Some(true),
        }
    }

    /// This node's `degraded` with the other vantages' votes.
    fn degraded_votes(&self) -> Votes {
        Votes::count(self.remote.unwrap_or_default(), Some(!self.degraded))
    }

    /// Whether `now` is due for a periodic evaluation; schedules the next one.
    pub(super) fn due(&mut self, now: Instant) -> bool {
        match self.next_eval {
            Some(at) if now < at => false,
            _ => {
                self.next_eval = Some(now + self.thresholds.interval);
                true
            }
        }
    }

    /// Carries state and hysteresis over from the same pool before a reload.
    pub(super) fn inherit(&mut self, old: &Pool) {
        self.state = old.state;
        self.degraded = old.degraded;
        self.good_evals = old.good_evals;
        self.next_eval = old.next_eval;
        self.ramp = old.ramp;
        self.admit_permille = old.admit_permille;
        self.was_down = old.was_down;
        self.seen_up = old.seen_up;
        if self.capacity.is_some() && old.capacity.is_some() {
            self.load = old.load;
            self.keep = old.keep;
            let headers = std::mem::take(&mut self.inputs.headers);
            self.inputs = old.inputs.clone();
            self.inputs.headers = headers;
            self.next_spill_step_unix_ms = old.next_spill_step_unix_ms;
        }
        if old.traffic.span() == self.traffic.span() {
            self.traffic = old.traffic.clone();
        }
    }

    pub(super) fn view(&self) -> PoolHealth {
        let q = self.thresholds.quorum;
        let mut view = PoolHealth::new(
            self.endpoints.iter().map(|e| e.view(q)).collect(),
            self.min_healthy,
            self.fleet_degraded(),
            (self.error_rate, self.latency),
        );
        view.degraded_here = self.degraded;
        view.ramp = self.ramp;
        view.admit_permille = self.admit_permille;
        view.load = self.capacity.and(self.load).map(|l| l.value);
        view.utilisation = self.utilisation();
        view.proxy_rate = self
            .capacity
            .is_some_and(|c| c.load == LoadSource::Proxy)
            .then_some(self.inputs.local_rate);
        view.keep_permille = self.keep_permille();
        view.headroom = match (self.capacity, self.utilisation()) {
            (Some(cap), Some(u)) => u < cap.spill_at,
            _ => true,
        };
        view.degraded_votes = self.remote.map(|_| self.degraded_votes());
        view
    }
}
