//! answer: the one balanced answer. Every path that answers a balanced name
//! (the UDP fast path, the hickory handler over UDP and TCP, `explain`) calls
//! [`answer`] and only encodes what it returns, so the client address, the
//! ECS scope, fail-open, the family and the TTL follow one rule.
//!
//! A decision that answers a CNAME to another balanced name goes on: that
//! name decides for the same client and family (its own policy and
//! health), and so on up to `MAX_CHAIN` CNAMEs (check refuses longer chains
//! and loops; this bound only guards). The response holds every step; its
//! ECS scope is the narrowest along the chain.

use std::net::IpAddr;
use std::sync::atomic::AtomicU64;

use super::{BalancedName, Client, Decision, Family, Inputs, SteeringTable, Trace, client};
use crate::geo::GeoDb;

/// Who asks, as the packet says: its source address and the query's ECS
/// option as (address, source prefix).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Asker {
    /// The packet's source address.
    pub src: IpAddr,
    /// The ECS option's address and source prefix, if the query has one.
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

/// The most CNAMEs one answer follows (`config` refuses longer chains).
const MAX_CHAIN: usize = 8;

/// A balanced answer: the client the decision used, the decision (pool,
/// addresses or CNAME, TTL), the steps a CNAME chain took after it, and the
/// ECS scope the response carries.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// The client the decision used.
    pub client: Client,
    /// The family asked for (A: V4, AAAA: V6).
    pub family: Family,
    /// The pool, addresses and TTL.
    pub decision: Decision,
    /// When `decision` answers a CNAME to another balanced name: each name
    /// followed, in order, with its decision (the last one answers
    /// addresses, or a CNAME out of our names).
    pub chain: Chain,
    /// The scope prefix of the response's ECS option: the narrowest scope
    /// (longest prefix) of the decisions along the chain, capped at the query's source prefix
    /// (RFC 7871 §7.2.1); 0 when the query had no ECS option or a source
    /// prefix of 0.
    pub scope: u8,
}

/// The names a CNAME chain followed: one inline (a CNAME to one balanced
/// name, the usual chain, allocates nothing per query).
pub type Chain = smallvec::SmallVec<[Step; 1]>;

/// One name followed in a CNAME chain.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// Its index in the steering table (`SteeringTable::at`).
    pub name: u32,
    /// Its decision.
    pub decision: Decision,
}

impl Answer {
    /// An empty answer (no client, no decision) for [`answer_into`] to fill.
    #[inline]
    pub fn empty() -> Answer {
        Answer {
            client: Client {
                addr: IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
                source_prefix: 0,
                location: crate::geo::Location::default(),
            },
            family: Family::V4,
            decision: Decision::empty(),
            chain: Chain::new(),
            scope: 0,
        }
    }

    /// The decision that ends the answer: the last step of a chain, else
    /// the name's own.
    pub fn last(&self) -> &Decision {
        self.chain.last().map_or(&self.decision, |s| &s.decision)
    }

    /// Every decision of the answer, the queried name's first.
    pub fn decisions(&self) -> impl Iterator<Item = &Decision> {
        std::iter::once(&self.decision).chain(self.chain.iter().map(|s| &s.decision))
    }

    /// SERVFAIL when any step is; NODATA when the answer holds no record at
    /// all (a chain that ends in NODATA still answers its CNAMEs).
    pub fn rcode(&self) -> Rcode {
        if self.decisions().any(Decision::servfail) {
            Rcode::Servfail
        } else if self.decision.endpoints.is_empty() && self.decision.cname.is_none() {
            Rcode::Nodata
        } else {
            Rcode::Addresses
        }
    }

    /// The counters this answer bumps besides queries by type and rcode:
    /// the fail-open mode that answered and the pool picked, for the name
    /// and each name its chain followed (`steering` finds those). The paths
    /// add 1 to each, each in its own way (the fast path batches).
    pub fn counters<'n>(
        &self,
        name: &'n BalancedName,
        steering: &'n SteeringTable,
    ) -> impl Iterator<Item = &'n AtomicU64> {
        let servfail = self.rcode() == Rcode::Servfail;
        let first = std::iter::once((Some(name), &self.decision));
        let rest = self
            .chain
            .iter()
            .map(|s| (steering.at(s.name), &s.decision));
        first.chain(rest).flat_map(move |(n, d)| {
            let fail_open = n.and_then(|n| {
                d.basis
                    .all_down()
                    .map(|mode| &n.counters.fail_open[mode.index()])
            });
            let pick = match servfail {
                true => None,
                false => n
                    .zip(d.pool)
                    .and_then(|(n, p)| n.picks.get(p.index()))
                    .map(|c| &**c),
            };
            fail_open.into_iter().chain(pick)
        })
    }
}

/// The answer for `asker` at balanced name `name` for `family`. Pure: the
/// same inputs and rng state give the same answer. With `trace`, the client
/// and every step of the decision are recorded. With `follow`, a CNAME to
/// another balanced name is followed (A and AAAA queries); without, the
/// CNAME alone is the answer.
#[allow(clippy::too_many_arguments)]
pub fn answer<R: rand::Rng + ?Sized>(
    name: &BalancedName,
    asker: Asker,
    family: Family,
    geo: &GeoDb,
    inputs: &Inputs<'_>,
    rng: &mut R,
    trace: Option<&mut Trace>,
    follow: Option<&SteeringTable>,
) -> Answer {
    let mut a = Answer::empty();
    answer_into(&mut a, name, asker, family, geo, inputs, rng, trace, follow);
    a
}

/// [`answer`] written into `out` (every field set). The UDP fast path's
/// form: its answer (about 500 bytes) is made where it is read, never
/// copied, and inlined there (always) with the decision.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub fn answer_into<R: rand::Rng + ?Sized>(
    out: &mut Answer,
    name: &BalancedName,
    asker: Asker,
    family: Family,
    geo: &GeoDb,
    inputs: &Inputs<'_>,
    rng: &mut R,
    mut trace: Option<&mut Trace>,
    follow: Option<&SteeringTable>,
) {
    let (addr, source_prefix) = client::client_addr(asker.src, asker.ecs);
    let location = geo.locate(addr);
    out.client = Client {
        addr,
        source_prefix,
        location,
    };
    out.family = family;
    if let Some(t) = trace.as_deref_mut() {
        trace_client(t, name, asker, &out.client);
    }
    super::decide_into(
        name,
        &out.client,
        family,
        inputs,
        rng,
        trace.as_deref_mut(),
        &mut out.decision,
    );
    out.chain.clear();
    let mut narrowest = out.decision.scope_prefix;
    if let Some(table) = follow
        && let Some(next) = table.follows(&out.decision)
    {
        let deepest = follow_chain(
            table,
            next,
            &out.client,
            family,
            inputs,
            rng,
            trace,
            &mut out.chain,
        );
        narrowest = narrowest.max(deepest);
    }
    out.scope = match asker.ecs {
        Some((_, prefix)) if prefix > 0 => narrowest.min(prefix),
        _ => 0,
    };
}

/// The trace's first lines: the client and the policy.
#[cold]
fn trace_client(t: &mut Trace, name: &BalancedName, asker: Asker, client: &Client) {
    let Client {
        addr,
        source_prefix,
        location,
    } = client;
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

/// Follows a CNAME chain from balanced name `at`: each name decides for the
/// same client, appended to `chain`, until a decision that answers
/// addresses or a CNAME out of our names (or `MAX_CHAIN`). Returns the
/// longest scope prefix any step used. Out of line: most answers hold no
/// CNAME.
#[allow(clippy::too_many_arguments)]
#[inline(never)]
fn follow_chain<R: rand::Rng + ?Sized>(
    table: &SteeringTable,
    at: u32,
    client: &Client,
    family: Family,
    inputs: &Inputs<'_>,
    rng: &mut R,
    mut trace: Option<&mut Trace>,
    chain: &mut Chain,
) -> u8 {
    let mut narrowest = 0;
    let mut at = Some(at);
    while let Some(i) = at
        && chain.len() < MAX_CHAIN
    {
        let Some(next) = table.at(i) else {
            break;
        };
        let mut step_trace = trace.as_ref().map(|_| Trace::default());
        if let Some(t) = step_trace.as_mut() {
            t.step(format!("policy: {}", next.config.policy.as_str()));
        }
        let mut d = Decision::empty();
        super::decide_into(
            next,
            client,
            family,
            inputs,
            rng,
            step_trace.as_mut(),
            &mut d,
        );
        if let (Some(t), Some(mut s)) = (trace.as_deref_mut(), step_trace) {
            s.name = Some(next.name().to_string());
            t.chain.push(s);
        }
        // The answer depends on every step: the longest prefix any used.
        narrowest = narrowest.max(d.scope_prefix);
        at = table.follows(&d);
        chain.push(Step {
            name: i,
            decision: d,
        });
    }
    narrowest
}
