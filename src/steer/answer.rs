//! answer: the one balanced answer. Every path that answers a balanced name
//! (the UDP fast path, the hickory handler over UDP and TCP, `explain`) calls
//! [`answer`] and only encodes what it returns, so the client address, the
//! ECS scope, fail-open, the family and the TTL follow one rule.

use std::net::IpAddr;
use std::sync::atomic::AtomicU64;

use super::{BalancedName, Client, Decision, Family, Inputs, Trace, client};
use crate::geo::GeoDb;

/// Who asks, as the packet says: its source address and the query's ECS
/// option as (address, source prefix).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Asker {
    pub src: IpAddr,
    pub ecs: Option<(IpAddr, u8)>,
}

/// What the response says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rcode {
    /// NOERROR with the addresses of [`Decision::endpoints`].
    Addresses,
    /// NOERROR with no record of the asked type.
    Nodata,
    /// SERVFAIL (`on_all_down = "servfail"`).
    Servfail,
}

/// A balanced answer: the client the decision used, the decision (pool,
/// addresses, TTL) and the ECS scope the response carries.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub client: Client,
    pub family: Family,
    pub decision: Decision,
    /// The scope prefix of the response's ECS option: the decision's scope
    /// capped at the query's source prefix (RFC 7871 §7.2.1); 0 when the
    /// query had no ECS option or a source prefix of 0.
    pub scope: u8,
}

impl Answer {
    pub fn rcode(&self) -> Rcode {
        if self.decision.servfail() {
            Rcode::Servfail
        } else if self.decision.endpoints.is_empty() {
            Rcode::Nodata
        } else {
            Rcode::Addresses
        }
    }

    /// The name's counters this answer bumps besides queries by type and
    /// rcode: the fail-open mode that answered, the pool picked. The paths
    /// add 1 to each, each in its own way (the fast path batches).
    pub fn counters<'n>(&self, name: &'n BalancedName) -> impl Iterator<Item = &'n AtomicU64> {
        let fail_open = self
            .decision
            .basis
            .all_down()
            .map(|mode| &name.counters.fail_open[mode.index()]);
        let pick = match self.rcode() {
            Rcode::Servfail => None,
            _ => self
                .decision
                .pool
                .and_then(|p| name.picks.get(p.index()))
                .map(|c| &**c),
        };
        fail_open.into_iter().chain(pick)
    }
}

/// The answer for `asker` at balanced name `name` for `family`. Pure: the
/// same inputs and rng state give the same answer. With `trace`, the client
/// and every step of the decision are recorded.
pub fn answer<R: rand::Rng + ?Sized>(
    name: &BalancedName,
    asker: Asker,
    family: Family,
    geo: &GeoDb,
    inputs: &Inputs<'_>,
    rng: &mut R,
    mut trace: Option<&mut Trace>,
) -> Answer {
    let (addr, source_prefix) = client::client_addr(asker.src, asker.ecs);
    let location = geo.locate(addr);
    let client = Client {
        addr,
        source_prefix,
        location,
    };
    if let Some(t) = trace.as_deref_mut() {
        t.step(format!(
            "client {addr}/{source_prefix}{}: country {}, continent {}, GeoIP network /{}",
            match asker.ecs {
                Some((_, p)) if p > 0 => "",
                Some(_) => " (ECS source prefix 0: the packet source)",
                None => " (no ECS: the packet source)",
            },
            location.country.as_ref().map_or("unknown", |c| c.as_str()),
            location.continent.map_or("unknown", |c| c.as_str()),
            location.prefix_len
        ));
        t.step(format!("policy: {}", name.config.policy.as_str()));
    }
    let decision = super::decide(name, &client, family, inputs, rng, trace);
    let scope = match asker.ecs {
        Some((_, prefix)) if prefix > 0 => decision.scope_prefix.min(prefix),
        _ => 0,
    };
    Answer {
        client,
        family,
        decision,
        scope,
    }
}
