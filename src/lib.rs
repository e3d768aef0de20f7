//! geosteer: a health-aware global DNS load balancer.
//!
//! # Layout
//! Pure core (no tokio, no sockets, no clock; `now` and `rng` are arguments):
//! - [`config`]: `geosteer.toml` → typed, validated `Config`.
//! - [`geo`]: client address → country, continent, coordinates.
//! - [`health`]: endpoint and pool health; the `HealthView` queries read.
//! - [`balance`]: picks a proxy backend's server (round robin, smooth weighted,
//!   least connections, ip hash, power of two) and passive ejection.
//!
//! IO shells:
//! - [`proxy`]: L7 (HTTP/1.1, HTTP/2, TLS) and L4 listeners, forwarding,
//!   rate limits, draining; see [`proxy::Proxies`].
//! - [`health`]: endpoint and pool health; the `HealthBook` its one writer
//!   owns and the `HealthView` queries read.
//!
//! IO shells (own sockets, tasks and timers; call the core):
//! - [`probe`]: a worker per monitored endpoint, sending `Observation`s.
//! - [`cluster`]: a fleet node's link to etcd: publishes this node's
//!   verdicts, watches the others', hands them to the health writer.
//!
//! The data path of one DNS query over UDP: a `dns::udp` worker thread →
//! `dns::fast::answer` loads one `state::Snapshot` → `steer::decide` (balanced
//! names) or the zones' precompiled fragments → the reply, written into a
//! reused buffer. What the fast path leaves (and all of TCP) goes `dns::server`
//! → `dns::handler` → `steer::decide` or the zone catalog → `dns::answer`.

// One module may opt out, with a reason: `dns::mmsg` (batched UDP syscalls).
#![deny(unsafe_code)]

pub mod admin;
pub mod app;
pub mod balance;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod dns;
pub mod events;
pub mod explain;
pub mod geo;
pub mod health;
pub mod metrics;
pub mod probe;
pub mod proxy;
pub mod state;
pub mod steer;
pub mod zone;
