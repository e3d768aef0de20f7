//! geosteer: a health-aware global DNS load balancer.
//!
//! # Layout
//! Pure core (no tokio, no sockets, no clock; `now` and `rng` are arguments):
//! - [`config`]: `geosteer.toml` → typed, validated `Config`.
//! - [`geo`]: client address → country, continent, coordinates.
//! - [`health`]: endpoint and pool health; the `HealthBook` its one writer
//!   owns and the `HealthView` queries read.
//!
//! IO shells (own sockets, tasks and timers; call the core):
//! - [`probe`]: a worker per monitored endpoint, sending `Observation`s.
//!
//! The data path of one DNS query: `dns::server` → `dns::handler` loads one
//! `state::Snapshot` → `steer::decide` → `dns::answer` encodes the records.

#![forbid(unsafe_code)]

pub mod config;
pub mod geo;
pub mod health;
pub mod probe;
