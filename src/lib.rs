//! geosteer: a health-aware global DNS load balancer.
//!
//! # Layout
//! Pure core (no tokio, no sockets, no clock; `now` and `rng` are arguments;
//! `clippy.toml` lists what each of these modules is denied):
//! - [`config`]: `geosteer.toml` → typed, validated `Config`.
//! - [`geo`]: client address → country, continent, coordinates.
//! - [`steer`]: (balanced name, client location, health) → `Decision`: the
//!   candidate order per policy, the health walk, fail-open, the ECS scope.
//! - [`health`]: endpoint and pool health; the `HealthBook` its one writer
//!   owns and the `HealthView` queries read.
//! - [`balance`]: picks a proxy backend's server (round robin, smooth weighted,
//!   least connections, ip hash, power of two) and passive ejection.
//!
//! Shared state between the two:
//! - [`state`]: the one `Snapshot` (config, steering table, zones, GeoIP,
//!   health) behind an arc-swap; a query does one `load()`.
//! - [`zone`]: zone files → the catalog and the fast path's fragments.
//! - [`dnssec`]: keys, signatures made when a snapshot is built, compact
//!   denial, the lock-free cache of signatures made on demand.
//! - [`metrics`]: the data path's counters (plain relaxed atomics).
//! - [`explain`]: the decision trace for `geosteer explain` and the admin API.
//! - [`events`]: the last state changes and per-pool samples the health
//!   writer records, for the status page and `/api/v1/events`.
//!
//! IO shells (own sockets, tasks and timers; call the core):
//! - [`dns`]: UDP (fast path, batched syscalls) and TCP listeners, the
//!   hickory request handler, answers, response rate limiting.
//! - [`probe`]: a worker per monitored endpoint, sending `Observation`s.
//! - [`resolve`]: a task per `host` endpoint name, resolving it at its TTL
//!   through `[server] resolvers` and sending the addresses to the writer.
//! - [`proxy`]: L7 (HTTP/1.1, HTTP/2, TLS) and L4 listeners, forwarding,
//!   rate limits, draining; see [`proxy::Proxies`].
//! - [`cluster`]: a fleet node's link to etcd: publishes this node's
//!   verdicts, watches the others', hands them to the health writer.
//! - [`control`]: the operator's levers (reload, drain, undrain) and the
//!   `Command`s they send the health writer; `app` builds it, `admin` uses it.
//! - [`admin`]: the JSON admin API, `/metrics` and the status page.
//! - [`notify`]: webhooks: every recorded event POSTed to the `[[notify]]`
//!   receivers, each with its own bounded queue and retries.
//! - [`app`]: starts and stops all of the above from one config; owns the
//!   health writer.
//! - [`cli`]: one file per subcommand; `main` only parses and calls it.
//! - [`wallclock`]: Unix time for what operators read.
//!
//! Dependency direction: `cli → app → {dns, probe, proxy, cluster, admin,
//! control, notify} → state → {steer, health, balance, geo} → config`.
//! `admin` reaches the running server only through `control`; it never
//! names `app`.
//! `tests/it/architecture.rs` holds every module to its layer and fails on a
//! cycle.
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
pub mod control;
pub mod dns;
pub mod dnssec;
pub mod events;
pub mod explain;
pub mod geo;
pub mod health;
pub mod metrics;
pub mod notify;
pub mod probe;
pub mod proxy;
pub mod resolve;
pub mod state;
pub mod steer;
pub mod wallclock;
pub mod zone;
