//! ejection: passive health of one proxy server (`max_fails`/`fail_timeout`).
//!
//! `max_fails` failures in a row eject the server for `fail_timeout`; after
//! that it is on trial: exactly one request may go to it. Success closes the
//! circuit, failure ejects it again. Time is passed in; nothing here sleeps.

use std::time::{Duration, Instant};

/// What one outcome did to a server's place in rotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// Nothing changed.
    None,
    /// Taken out for `fail_timeout` (it was in rotation or on trial).
    Ejected,
    /// A success while ejected or on trial: back in rotation.
    Returned,
}

/// The passive state machine of one server.
#[derive(Debug, Clone, Default)]
pub struct Ejection {
    consecutive_fails: u32,
    state: State,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum State {
    #[default]
    Closed,
    Ejected {
        until: Instant,
    },
    /// The fail timeout passed; one trial request is allowed.
    Trial {
        taken: bool,
    },
}

impl Ejection {
    /// May a new request go to this server at `now`? Does not consume a trial.
    pub fn available(&mut self, now: Instant) -> bool {
        if let State::Ejected { until } = self.state
            && now >= until
        {
            self.state = State::Trial { taken: false };
        }
        match self.state {
            State::Closed => true,
            State::Ejected { .. } => false,
            State::Trial { taken } => !taken,
        }
    }

    /// The server was picked: on trial, this request is the one trial.
    pub fn on_pick(&mut self) {
        if let State::Trial { taken } = &mut self.state {
            *taken = true;
        }
    }

    /// A request finished; `ok` is false for connect errors, timeouts and 5xx.
    /// Returns true when this outcome ejected the server (a failed trial
    /// included). The tests' view of [`transition`](Self::transition).
    #[cfg(test)]
    pub(crate) fn record(
        &mut self,
        ok: bool,
        now: Instant,
        max_fails: u32,
        fail_timeout: Duration,
    ) -> bool {
        self.step(ok, now, max_fails, fail_timeout).0
    }

    /// A request finished (`ok` is false for connect errors, timeouts and
    /// 5xx), as a change of the server's place in rotation: ejected from
    /// rotation (not again after a failed trial: it was out already), or
    /// back after a success.
    pub fn transition(
        &mut self,
        ok: bool,
        now: Instant,
        max_fails: u32,
        fail_timeout: Duration,
    ) -> Transition {
        let was = self.state;
        match self.step(ok, now, max_fails, fail_timeout) {
            (true, _) if was == State::Closed => Transition::Ejected,
            (_, true) => Transition::Returned,
            _ => Transition::None,
        }
    }

    /// (newly ejected, returned to rotation).
    fn step(
        &mut self,
        ok: bool,
        now: Instant,
        max_fails: u32,
        fail_timeout: Duration,
    ) -> (bool, bool) {
        if ok {
            let was_out = self.state != State::Closed;
            self.consecutive_fails = 0;
            self.state = State::Closed;
            return (false, was_out);
        }
        self.consecutive_fails = self.consecutive_fails.saturating_add(1);
        let trial_failed = matches!(self.state, State::Trial { .. });
        if max_fails > 0 && (trial_failed || self.consecutive_fails >= max_fails) {
            let newly = !matches!(self.state, State::Ejected { .. });
            self.state = State::Ejected {
                until: now + fail_timeout,
            };
            return (newly, false);
        }
        (false, false)
    }

    /// Ejected or on trial (for status pages).
    pub fn is_ejected(&self) -> bool {
        !matches!(self.state, State::Closed)
    }
}

#[cfg(test)]
// An Instant is opaque: the tests take a base one from the clock and move
// from it by Durations only.
#[allow(
    clippy::disallowed_methods,
    reason = "a base Instant for the tests; every later time is t0 + a Duration"
)]
mod tests {
    use super::*;

    const TIMEOUT: Duration = Duration::from_secs(10);

    #[test]
    fn ejects_after_max_fails_in_a_row() {
        let t0 = Instant::now();
        let mut e = Ejection::default();
        assert!(!e.record(false, t0, 3, TIMEOUT));
        assert!(!e.record(true, t0, 3, TIMEOUT)); // success resets the count
        assert!(!e.record(false, t0, 3, TIMEOUT));
        assert!(!e.record(false, t0, 3, TIMEOUT));
        assert!(e.available(t0));
        assert!(e.record(false, t0, 3, TIMEOUT));
        assert!(!e.available(t0));
        assert!(!e.available(t0 + TIMEOUT - Duration::from_millis(1)));
    }

    #[test]
    fn one_trial_after_fail_timeout() {
        let t0 = Instant::now();
        let mut e = Ejection::default();
        e.record(false, t0, 1, TIMEOUT);
        let later = t0 + TIMEOUT;
        assert!(e.available(later));
        e.on_pick();
        assert!(!e.available(later), "only one trial request");
        // The trial fails: ejected for another fail_timeout at once.
        assert!(e.record(false, later, 5, TIMEOUT));
        assert!(!e.available(later + Duration::from_secs(9)));
        assert!(e.available(later + TIMEOUT));
        e.on_pick();
        // The trial succeeds: back in rotation.
        e.record(true, later + TIMEOUT, 5, TIMEOUT);
        assert!(e.available(later + TIMEOUT));
        assert!(!e.is_ejected());
    }

    #[test]
    fn max_fails_zero_never_ejects() {
        let t0 = Instant::now();
        let mut e = Ejection::default();
        for _ in 0..100 {
            assert!(!e.record(false, t0, 0, TIMEOUT));
        }
        assert!(e.available(t0));
    }

    #[test]
    fn transitions_name_leaving_and_returning_once() {
        let t0 = Instant::now();
        let mut e = Ejection::default();
        assert_eq!(e.transition(false, t0, 2, TIMEOUT), Transition::None);
        assert_eq!(e.transition(false, t0, 2, TIMEOUT), Transition::Ejected);
        // A failed trial keeps it out: no second ejection.
        let later = t0 + TIMEOUT;
        assert!(e.available(later));
        e.on_pick();
        assert_eq!(e.transition(false, later, 2, TIMEOUT), Transition::None);
        assert!(!e.available(later));
        let again = later + TIMEOUT;
        assert!(e.available(again));
        e.on_pick();
        assert_eq!(e.transition(true, again, 2, TIMEOUT), Transition::Returned);
        assert_eq!(e.transition(true, again, 2, TIMEOUT), Transition::None);
    }
}
