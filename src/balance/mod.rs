//! balance: picks one server of a proxy backend for one request.
//!
//! Pure: no tokio, no sockets, no clock, no global RNG. The caller passes the
//! candidates (servers that are up, not ejected and not draining, with their
//! in-flight counts), the client address and an `rng`; per-backend rotation
//! state lives in [`Balancer`], which the caller keeps behind its own lock.
//! Passive ejection (`max_fails`/`fail_timeout`) is in [`ejection`].

// The pure core: no clock, no global RNG, no tokio (clippy.toml says why).
#![deny(clippy::disallowed_methods, clippy::disallowed_types)]
#![warn(missing_docs)]

pub mod ejection;
mod ip_hash;
mod least_conn;
mod p2c;
mod round_robin;
mod smooth_weighted;

use std::net::{IpAddr, SocketAddr};

use crate::config::Algorithm;

pub use ejection::{Ejection, Transition};
pub use ip_hash::rendezvous_score;

/// One server that may take the next request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    /// Index of the server in `BackendConfig::servers`.
    pub index: usize,
    /// The server's address.
    pub address: SocketAddr,
    /// Its `weight` in the config (smooth weighted round robin).
    pub weight: u32,
    /// Requests (or L4 connections) in flight to this server right now.
    pub in_flight: u32,
}

/// Rotation state of one backend, sized for its server list.
#[derive(Debug, Clone)]
pub struct Balancer {
    algorithm: Algorithm,
    /// round_robin and least_connections: where the next rotation starts.
    cursor: usize,
    /// weighted_round_robin: nginx's `current_weight` per server index.
    current: Vec<i64>,
}

impl Balancer {
    /// A rotation for `servers` servers, starting at the first.
    pub fn new(algorithm: Algorithm, servers: usize) -> Balancer {
        Balancer {
            algorithm,
            cursor: 0,
            current: vec![0; servers],
        }
    }

    /// Picks a candidate and returns its server index; None when there is no
    /// candidate. `candidates` must be sorted by `index` (server order).
    pub fn pick(
        &mut self,
        candidates: &[Candidate],
        client: IpAddr,
        rng: &mut impl rand::Rng,
    ) -> Option<usize> {
        if candidates.is_empty() {
            return None;
        }
        match self.algorithm {
            Algorithm::RoundRobin => round_robin::pick(&mut self.cursor, candidates),
            Algorithm::WeightedRoundRobin => smooth_weighted::pick(&mut self.current, candidates),
            Algorithm::LeastConnections => least_conn::pick(&mut self.cursor, candidates),
            Algorithm::IpHash => ip_hash::pick(candidates, client),
            Algorithm::PowerOfTwo => p2c::pick(candidates, rng),
        }
    }
}

#[cfg(test)]
pub(crate) fn candidates(weights: &[u32]) -> Vec<Candidate> {
    weights
        .iter()
        .enumerate()
        .map(|(i, &weight)| Candidate {
            index: i,
            address: SocketAddr::from(([10, 0, 0, i as u8 + 1], 80)),
            weight,
            in_flight: 0,
        })
        .collect()
}
