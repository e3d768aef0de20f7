//! resolved: what a `host` endpoint's name resolves to, as the writer last
//! heard from the resolver task, and each address's own probe state.
//!
//! The endpoint is up while at least one of its addresses passes its probes
//! (every address of a pool without a monitor passes). A resolution that
//! fails keeps the last addresses for `stale_for` (RFC 8767's serve-stale);
//! past that they are dropped and the endpoint is down until the name
//! resolves again. Per family: a name with only A records answers no AAAA.
//!
//! Pure: the wall clock is an argument.

use std::net::IpAddr;
use std::sync::Arc;

use super::{EndpointState, Family};

/// One resolved address and its probe state.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedAddress {
    /// The address.
    pub ip: IpAddr,
    /// Its probe verdict by rise/fall (up at once in a pool without a
    /// monitor; unknown until its first probe otherwise).
    pub state: EndpointState,
    /// Its last probe error.
    pub last_error: Option<Arc<str>>,
    /// Consecutive successes while down, or failures while up.
    streak: u32,
}

/// A host endpoint's resolution: its current addresses and how fresh they are.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Resolved {
    /// The addresses of its last successful resolution, sorted (A first).
    pub addresses: Vec<ResolvedAddress>,
    /// Wall clock (Unix ms) of the last successful resolution; 0: none yet.
    pub resolved_unix_ms: u64,
    /// Resolution failing since then (Unix ms): the addresses are stale.
    pub failing_since_unix_ms: Option<u64>,
    /// Why the last resolution failed.
    pub error: Option<Arc<str>>,
    /// Failing for longer than `stale_for`: its addresses were dropped.
    pub expired: bool,
}

impl Resolved {
    /// Takes a resolution's result at `now_unix_ms`: the new address set
    /// (addresses already known keep their probe state; new ones are up in
    /// a pool without a monitor, else unknown until probed), or an error,
    /// which keeps the addresses and starts their staleness. Returns true
    /// when the view changed.
    pub fn take(
        &mut self,
        result: Result<Vec<IpAddr>, String>,
        monitored: bool,
        now_unix_ms: u64,
    ) -> bool {
        let before = self.clone();
        match result {
            Ok(mut ips) => {
                ips.sort();
                ips.dedup();
                let fresh = if monitored {
                    EndpointState::Unknown
                } else {
                    EndpointState::Up
                };
                self.addresses = ips
                    .into_iter()
                    .map(|ip| {
                        self.addresses
                            .iter()
                            .find(|a| a.ip == ip)
                            .cloned()
                            .unwrap_or(ResolvedAddress {
                                ip,
                                state: fresh,
                                last_error: None,
                                streak: 0,
                            })
                    })
                    .collect();
                self.resolved_unix_ms = now_unix_ms;
                self.failing_since_unix_ms = None;
                self.error = None;
                self.expired = false;
            }
            Err(e) => {
                if self.failing_since_unix_ms.is_none() {
                    self.failing_since_unix_ms = Some(now_unix_ms);
                }
                self.error = Some(Arc::from(e));
            }
        }
        // The time of a refresh that changed nothing is not a change.
        let mut same = before.clone();
        same.resolved_unix_ms = self.resolved_unix_ms;
        same != *self
    }

    /// Drops the addresses once resolution has failed for `stale_for_ms`.
    /// Returns true when it did now.
    pub fn expire(&mut self, stale_for_ms: u64, now_unix_ms: u64) -> bool {
        match self.failing_since_unix_ms {
            Some(since) if !self.expired && now_unix_ms >= since.saturating_add(stale_for_ms) => {
                self.expired = true;
                self.addresses.clear();
                true
            }
            _ => false,
        }
    }

    /// Failing, but its last addresses still answer (within `stale_for`).
    pub fn stale(&self) -> bool {
        self.failing_since_unix_ms.is_some() && !self.expired
    }

    /// Applies one probe result of `ip` (rise/fall as for an endpoint; the
    /// first result sets the state). Returns true when its state or last
    /// error changed; an address no longer resolved is ignored.
    pub fn observe(
        &mut self,
        ip: IpAddr,
        ok: bool,
        error: Option<&str>,
        (rise, fall): (u32, u32),
    ) -> bool {
        let Some(a) = self.addresses.iter_mut().find(|a| a.ip == ip) else {
            return false;
        };
        let mut changed = false;
        if let (false, Some(error)) = (ok, error)
            && a.last_error.as_deref() != Some(error)
        {
            a.last_error = Some(Arc::from(error));
            changed = true;
        }
        let next = match (a.state, ok) {
            (EndpointState::Unknown, true) => EndpointState::Up,
            (EndpointState::Unknown, false) => EndpointState::Down,
            (EndpointState::Up, true) | (EndpointState::Down, false) => {
                a.streak = 0;
                a.state
            }
            (state, _) => {
                a.streak += 1;
                let needed = if state == EndpointState::Up {
                    fall
                } else {
                    rise
                };
                if a.streak >= needed.max(1) {
                    if state == EndpointState::Up {
                        EndpointState::Down
                    } else {
                        EndpointState::Up
                    }
                } else {
                    state
                }
            }
        };
        if next != a.state {
            a.state = next;
            a.streak = 0;
            changed = true;
        }
        changed
    }

    /// The endpoint's state from its addresses: up while one is up; unknown
    /// before the first resolution or while no address has a verdict yet;
    /// else down (no address, or none passing).
    pub fn state(&self) -> EndpointState {
        if self.addresses.iter().any(|a| a.state == EndpointState::Up) {
            EndpointState::Up
        } else if self.addresses.is_empty() {
            if self.resolved_unix_ms == 0 && self.error.is_none() {
                EndpointState::Unknown
            } else {
                EndpointState::Down
            }
        } else if self
            .addresses
            .iter()
            .all(|a| a.state == EndpointState::Unknown)
        {
            EndpointState::Unknown
        } else {
            EndpointState::Down
        }
    }

    /// Why it is down: the resolution's error, else the newest address error.
    pub fn why_down(&self) -> Option<Arc<str>> {
        if self.addresses.is_empty() {
            return Some(match (&self.error, self.expired) {
                (Some(e), true) => Arc::from(format!("resolution failing past stale_for: {e}")),
                (Some(e), false) => Arc::from(format!("cannot resolve: {e}")),
                (None, _) => Arc::from("resolved to no address"),
            });
        }
        self.addresses.iter().find_map(|a| a.last_error.clone())
    }

    /// It has addresses of `family` (a host with none at all counts in both
    /// families, as down).
    pub fn counts_in(&self, family: Family) -> bool {
        self.addresses.is_empty() || self.addresses.iter().any(|a| Family::of(&a.ip) == family)
    }

    /// An address of `family` is up.
    pub fn up_in(&self, family: Family) -> bool {
        self.addresses
            .iter()
            .any(|a| a.state == EndpointState::Up && Family::of(&a.ip) == family)
    }

    /// The addresses of `family` answers may use: those up, or with `all`
    /// (every pool down, or the endpoint forced up) every one.
    pub fn answering(&self, family: Family, all: bool) -> impl Iterator<Item = IpAddr> + '_ {
        self.addresses
            .iter()
            .filter(move |a| Family::of(&a.ip) == family && (all || a.state == EndpointState::Up))
            .map(|a| a.ip)
    }

    /// The one family of its addresses; None with both (or none).
    pub fn family(&self) -> Option<Family> {
        let mut fams = self.addresses.iter().map(|a| Family::of(&a.ip));
        let first = fams.next()?;
        fams.all(|f| f == first).then_some(first)
    }

    /// Addresses kept across a reload whose pool's monitor changed: their
    /// probe verdicts start again.
    pub fn reset_probes(&mut self, monitored: bool) {
        for a in &mut self.addresses {
            a.state = if monitored {
                EndpointState::Unknown
            } else {
                EndpointState::Up
            };
            a.last_error = None;
            a.streak = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn addresses_keep_their_probe_state_across_refreshes() {
        let mut r = Resolved::default();
        assert_eq!(r.state(), EndpointState::Unknown, "before any resolution");
        assert!(r.take(Ok(vec![ip("192.0.2.2"), ip("192.0.2.1")]), true, 1000));
        assert_eq!(r.state(), EndpointState::Unknown, "not probed yet");
        assert!(r.observe(ip("192.0.2.1"), true, None, (2, 2)));
        assert!(r.observe(ip("192.0.2.2"), false, Some("refused"), (2, 2)));
        assert_eq!(r.state(), EndpointState::Up, "one address up");
        assert!(r.up_in(Family::V4) && !r.up_in(Family::V6));
        assert_eq!(
            r.answering(Family::V4, false).collect::<Vec<_>>(),
            [ip("192.0.2.1")]
        );
        assert_eq!(r.answering(Family::V4, true).count(), 2);
        // The same set again changes nothing; a new address starts unknown.
        assert!(!r.take(Ok(vec![ip("192.0.2.1"), ip("192.0.2.2")]), true, 2000));
        assert!(r.take(Ok(vec![ip("192.0.2.1"), ip("2001:db8::1")]), true, 3000));
        assert_eq!(r.addresses[0].state, EndpointState::Up, "kept");
        assert_eq!(r.addresses[1].state, EndpointState::Unknown, "new");
        assert_eq!(r.family(), None, "both families");
        assert!(r.counts_in(Family::V6) && !r.up_in(Family::V6));
        // fall = 2: one failure keeps it up.
        assert!(!r.observe(ip("192.0.2.1"), false, None, (2, 2)));
        assert!(r.observe(ip("192.0.2.1"), false, None, (2, 2)));
        assert_eq!(r.state(), EndpointState::Down);
        // A pool without a monitor: every address is up at once.
        let mut plain = Resolved::default();
        plain.take(Ok(vec![ip("192.0.2.9")]), false, 1);
        assert_eq!(plain.state(), EndpointState::Up);
        assert_eq!(plain.family(), Some(Family::V4));
        assert!(!plain.counts_in(Family::V6), "only A records: no AAAA");
    }

    #[test]
    fn a_failing_name_keeps_its_addresses_for_stale_for_then_is_down() {
        let mut r = Resolved::default();
        r.take(Ok(vec![ip("192.0.2.1")]), false, 1_000);
        assert!(r.take(Err("timeout".into()), false, 5_000));
        assert!(r.stale());
        assert_eq!(r.state(), EndpointState::Up, "stale addresses still answer");
        // A second failure does not move the start of staleness.
        r.take(Err("refused".into()), false, 6_000);
        assert_eq!(r.failing_since_unix_ms, Some(5_000));
        assert!(!r.expire(10_000, 14_999));
        assert!(r.expire(10_000, 15_000));
        assert!(!r.expire(10_000, 16_000), "once");
        assert!(r.expired && !r.stale() && r.addresses.is_empty());
        assert_eq!(r.state(), EndpointState::Down);
        assert!(
            r.why_down()
                .is_some_and(|w| w.contains("past stale_for") && w.contains("refused"))
        );
        // Resolving again brings it back.
        assert!(r.take(Ok(vec![ip("192.0.2.3")]), false, 20_000));
        assert!(!r.expired && !r.stale());
        assert_eq!(r.state(), EndpointState::Up);
        // Never resolved, failing: down at once, with the reason.
        let mut never = Resolved::default();
        never.take(Err("NXDOMAIN".into()), true, 1);
        assert_eq!(never.state(), EndpointState::Down);
        assert!(
            never
                .why_down()
                .is_some_and(|w| w.contains("cannot resolve: NXDOMAIN"))
        );
    }
}
