//! endpoint: one endpoint's up/down state from consecutive probe results.
//!
//! `rise` successes in a row take a down endpoint up, `fall` failures in a
//! row take an up endpoint down, and the first result of an unknown endpoint
//! sets its state directly (DESIGN §3: start-up is not a blind spot). The
//! endpoint also owns its [`Window`], which restarts when it comes back up so
//! that the failures that took it down do not keep its pool degraded.
//!
//! Pure: time is an argument. The pool decides what the states add up to.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::fleet::{RemoteVotes, Votes};
use super::ramp::{self, Direction, Ramp};
use super::resolved::Resolved;
use super::window::Window;
use super::{EndpointHealth, EndpointState, Family, Forced, Pushed, forced_state};
use crate::config::EndpointKey;

#[derive(Debug, Clone)]
pub(super) struct Endpoint {
    /// Its identity in the pool, kept across reloads.
    pub key: EndpointKey,
    /// The family it answers; None for a name, which answers every family.
    pub family: Option<Family>,
    pub state: EndpointState,
    pub draining: bool,
    /// The runtime weight set through the admin API, replacing the config's
    /// until reset; kept across reloads while the endpoint exists.
    pub weight: Option<u32>,
    /// An operator's override (admin API); kept across reloads while the
    /// endpoint exists, ended by its `until_unix_ms` in `tick`.
    pub forced: Option<Forced>,
    /// The last pushed health (`type = "external"` monitors).
    pub pushed: Option<Pushed>,
    /// Consecutive successes while down, or failures while up.
    streak: u32,
    pub last_error: Option<Arc<str>>,
    pub since_unix_ms: u64,
    pub window: Window,
    /// In a fleet, the other fresh vantages' votes; None alone (or for pools
    /// without a monitor, whose endpoints are always up).
    pub remote: Option<RemoteVotes>,
    /// A slow start or gradual drain under way.
    pub ramp: Option<Ramp>,
    /// The ramp's share of the weight as of the last step (1000 without one).
    pub ramp_permille: u16,
    /// Usable at the last ramp step: becoming usable starts a slow start.
    was_usable: bool,
    /// Has had a known state (or was added to a running pool): its first
    /// result is not a slow start, a return is.
    known: bool,
    /// A `host` endpoint's addresses: its state and family follow from them.
    pub resolved: Option<Resolved>,
}

/// One result as the endpoint sees it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Outcome<'a> {
    pub ok: bool,
    pub latency: Duration,
    pub error: Option<&'a str>,
    /// Probe results drive rise/fall; traffic only fills the window.
    pub from_probe: bool,
}

impl Endpoint {
    pub(super) fn new(
        key: EndpointKey,
        family: Option<Family>,
        state: EndpointState,
        window: Duration,
        tau: Duration,
    ) -> Endpoint {
        Endpoint {
            key,
            family,
            state,
            draining: false,
            weight: None,
            forced: None,
            pushed: None,
            streak: 0,
            last_error: None,
            since_unix_ms: 0,
            window: Window::new(window, tau),
            remote: None,
            ramp: None,
            ramp_permille: ramp::FULL,
            was_usable: state == EndpointState::Up,
            known: state != EndpointState::Unknown,
            resolved: None,
        }
    }

    /// Makes it a `host` endpoint: unknown until its name resolves.
    pub(super) fn host(mut self) -> Endpoint {
        self.resolved = Some(Resolved::default());
        self.state = EndpointState::Unknown;
        self.family = None;
        self.was_usable = false;
        self.known = false;
        self
    }

    /// A host endpoint's state, family and error from its addresses, after
    /// they changed. Returns true when the state or last error changed.
    pub(super) fn settle(&mut self, now_unix_ms: u64) -> bool {
        let Some(r) = &self.resolved else {
            return false;
        };
        let (state, family) = (r.state(), r.family());
        let why = (state == EndpointState::Down)
            .then(|| r.why_down())
            .flatten();
        let mut changed = family != self.family;
        self.family = family;
        if let Some(why) = why
            && self.last_error.as_deref() != Some(&*why)
        {
            self.last_error = Some(why);
            changed = true;
        }
        changed |= self.enter(state, now_unix_ms);
        changed
    }

    /// Counted in `family`'s endpoints: an address endpoint of it, a name
    /// (CNAME) endpoint, a host with addresses of it (or none at all).
    pub(super) fn counts_in(&self, family: Family) -> bool {
        match &self.resolved {
            Some(r) => r.counts_in(family),
            None => self.family.is_none_or(|x| x == family),
        }
    }

    /// Usable for queries of `family`: a host endpoint needs an address of
    /// that family up (or to be forced up).
    pub(super) fn usable_in(&self, quorum: f64, family: Family) -> bool {
        self.usable(quorum)
            && self
                .resolved
                .as_ref()
                .is_none_or(|r| r.up_in(family) || self.forced.as_ref().is_some_and(|f| f.up))
    }

    /// Added to a running pool by a reload: it slow-starts when it comes up
    /// (at once for a pool without a monitor).
    pub(super) fn added(&mut self) {
        self.known = true;
        self.was_usable = false;
    }

    /// Starts a gradual drain over `period_ms` from `now_unix_ms`: the weight
    /// goes to zero, then the endpoint is drained. Returns false when it is
    /// drained or draining gradually already.
    pub(super) fn drain_over(&mut self, now_unix_ms: u64, period_ms: u64) -> bool {
        if self.draining || self.ramp.is_some_and(|r| r.direction == Direction::Down) {
            return false;
        }
        self.ramp = Some(Ramp::new(Direction::Down, now_unix_ms, period_ms));
        true
    }

    /// Takes the fleet's drain record for this endpoint (None: not drained
    /// fleet-wide, or undrained locally): a plain drain drains it; a gradual
    /// one ramps its weight down from the record's times (the same on every
    /// node), drained once the ramp is over at `now_unix_ms`. No record ends
    /// a gradual drain under way.
    pub(super) fn apply_fleet_drain(
        &mut self,
        record: Option<&super::fleet::DrainRecord>,
        now_unix_ms: u64,
    ) {
        let ramp = record.and_then(|r| r.ramp());
        let down = |r: &Option<Ramp>| r.is_some_and(|r| r.direction == Direction::Down);
        match (record, ramp) {
            (Some(_), Some(r)) if !r.done(now_unix_ms) => {
                self.draining = false;
                self.ramp = Some(r);
            }
            (Some(_), _) => {
                self.draining = true;
                if down(&self.ramp) {
                    self.ramp = None;
                }
            }
            (None, _) => {
                self.draining = false;
                if down(&self.ramp) {
                    self.ramp = None;
                }
            }
        }
    }

    /// Starts, steps and ends this endpoint's ramp at `now_unix_ms`:
    /// becoming usable again (up, undrained, added) with `slow_start` starts
    /// one; going out of use ends a slow start; a gradual drain at its end
    /// drains the endpoint. Returns true when what the view shows changed.
    pub(super) fn step_ramp(
        &mut self,
        quorum: f64,
        slow_start: Option<Duration>,
        now_unix_ms: u64,
    ) -> bool {
        let usable = self.usable(quorum);
        let mut changed = false;
        if usable
            && !self.was_usable
            && self.known
            && self.ramp.is_none()
            && let Some(period) = slow_start
        {
            self.ramp = Some(Ramp::new(
                Direction::Up,
                now_unix_ms,
                period.as_millis() as u64,
            ));
            changed = true;
        }
        if !usable && self.ramp.is_some_and(|r| r.direction == Direction::Up) {
            self.ramp = None;
            changed = true;
        }
        if let Some(r) = self.ramp
            && r.done(now_unix_ms)
        {
            if r.direction == Direction::Down {
                self.draining = true;
            }
            self.ramp = None;
            changed = true;
        }
        self.was_usable = self.usable(quorum);
        self.known |= self.fleet_state(quorum) != EndpointState::Unknown;
        let permille = self.ramp.map_or(ramp::FULL, |r| r.permille(now_unix_ms));
        changed |= permille != self.ramp_permille;
        self.ramp_permille = permille;
        changed
    }

    /// Up here and not draining: its window counts in its pool's metrics
    /// (each vantage measures what it sees itself).
    pub(super) fn measured(&self) -> bool {
        self.state == EndpointState::Up
            && !self.draining
            && self.forced.as_ref().is_none_or(|f| f.up)
    }

    /// The state answers use: this node's own alone, or in a fleet the
    /// quorum over every fresh vantage's vote.
    pub(super) fn fleet_state(&self, quorum: f64) -> EndpointState {
        let Some(remote) = self.remote else {
            return self.state;
        };
        match self.votes(remote).down(quorum) {
            None => EndpointState::Unknown,
            Some(true) => EndpointState::Down,
            Some(false) => EndpointState::Up,
        }
    }

    fn votes(&self, remote: RemoteVotes) -> Votes {
        let local = match self.state {
            EndpointState::Unknown => None,
            s => Some(s == EndpointState::Up),
        };
        Votes::count(remote, local)
    }

    /// Up by [`fleet_state`](Self::fleet_state) and not draining: in
    /// answers, and counted toward its pool's `min_healthy`.
    /// An override replaces the checks' state (forced down is out, forced
    /// up is in); a drain wins over both.
    pub(super) fn usable(&self, quorum: f64) -> bool {
        !self.draining
            && forced_state(self.forced.as_ref(), self.fleet_state(quorum)) == EndpointState::Up
    }

    /// Takes a pushed health: the state is what was pushed, at once (the
    /// pusher already decided; no rise/fall). Returns true when the state
    /// or the last error changed.
    /// `now`: when the push arrived, for its latency (None: not recorded).
    pub(super) fn push(&mut self, pushed: Pushed, now: Option<Instant>, now_unix_ms: u64) -> bool {
        let state = if pushed.up {
            EndpointState::Up
        } else {
            EndpointState::Down
        };
        let mut changed = false;
        if !pushed.up {
            let why: Arc<str> = Arc::from(pushed.reason.as_deref().unwrap_or("pushed down"));
            if self.last_error.as_deref() != Some(&*why) {
                self.last_error = Some(why);
                changed = true;
            }
        }
        changed |= self.enter(state, now_unix_ms);
        if let (Some(ms), Some(now)) = (pushed.latency_ms, now) {
            self.window
                .record(now, pushed.up, Duration::from_millis(ms));
        }
        changed |= self.pushed.as_ref() != Some(&pushed);
        self.pushed = Some(pushed);
        changed
    }

    /// Ends what has run out by `now_unix_ms`: an override past its
    /// `until`, a pushed health past its ttl (the endpoint goes down).
    /// Returns true when anything changed.
    pub(super) fn expire(&mut self, now_unix_ms: u64) -> bool {
        let mut changed = false;
        if self
            .forced
            .as_ref()
            .is_some_and(|f| f.until_unix_ms.is_some_and(|u| u <= now_unix_ms))
        {
            self.forced = None;
            changed = true;
        }
        if let Some(p) = &mut self.pushed
            && !p.expired
            && p.expires_unix_ms <= now_unix_ms
        {
            p.expired = true;
            let why = format!(
                "no health pushed within its ttl ({})",
                humantime::format_duration(Duration::from_millis(p.ttl_ms))
            );
            self.last_error = Some(Arc::from(why));
            if self.state != EndpointState::Down {
                self.state = EndpointState::Down;
                self.streak = 0;
                self.since_unix_ms = now_unix_ms;
            }
            changed = true;
        }
        changed
    }

    /// Applies one result. `monitored` is false for pools without a monitor,
    /// whose endpoints are always up. Returns true when the state or the last
    /// error changed.
    pub(super) fn apply(
        &mut self,
        result: Outcome<'_>,
        monitored: bool,
        (rise, fall): (u32, u32),
        now: Instant,
        now_unix_ms: u64,
    ) -> bool {
        let mut changed = false;
        if let (false, Some(error)) = (result.ok, result.error)
            && self.last_error.as_deref() != Some(error)
        {
            self.last_error = Some(Arc::from(error));
            changed = true;
        }
        if monitored && result.from_probe {
            let next = self.next_state(result.ok, rise.max(1), fall.max(1));
            changed |= self.enter(next, now_unix_ms);
        }
        self.window.record(now, result.ok, result.latency);
        changed
    }

    /// Moves to `state` if it is another one: a new streak from
    /// `now_unix_ms`, and a fresh window when it comes up. Whether it moved.
    fn enter(&mut self, state: EndpointState, now_unix_ms: u64) -> bool {
        if state == self.state {
            return false;
        }
        if state == EndpointState::Up {
            self.window.clear();
        }
        self.state = state;
        self.streak = 0;
        self.since_unix_ms = now_unix_ms;
        true
    }

    fn next_state(&mut self, ok: bool, rise: u32, fall: u32) -> EndpointState {
        match (self.state, ok) {
            (EndpointState::Unknown, true) => EndpointState::Up,
            (EndpointState::Unknown, false) => EndpointState::Down,
            (EndpointState::Up, true) | (EndpointState::Down, false) => {
                self.streak = 0;
                self.state
            }
            (EndpointState::Up, false) => {
                self.streak += 1;
                if self.streak >= fall {
                    EndpointState::Down
                } else {
                    EndpointState::Up
                }
            }
            (EndpointState::Down, true) => {
                self.streak += 1;
                if self.streak >= rise {
                    EndpointState::Up
                } else {
                    EndpointState::Down
                }
            }
        }
    }

    /// Takes over the state, drain flag, runtime weight, last error and history of the same
    /// endpoint before a reload; a window of another span starts afresh.
    pub(super) fn inherit(&mut self, before: &Endpoint) {
        let window = if before.window.span() == self.window.span() {
            before.window.clone()
        } else {
            self.window.clone()
        };
        *self = Endpoint {
            window,
            ..before.clone()
        };
    }

    pub(super) fn view(&self, quorum: f64) -> EndpointHealth {
        EndpointHealth {
            family: self.family,
            state: self.fleet_state(quorum),
            local: self.state,
            votes: self.remote.map(|r| self.votes(r)),
            draining: self.draining,
            weight: self.weight,
            ramp: self.ramp,
            ramp_permille: self.ramp_permille,
            forced: self.forced.clone(),
            pushed: self.pushed.clone(),
            error_rate: self.window.error_rate(),
            latency: self.window.latency(),
            last_error: self.last_error.clone(),
            since_unix_ms: self.since_unix_ms,
            resolved: self.resolved.clone(),
        }
    }
}
