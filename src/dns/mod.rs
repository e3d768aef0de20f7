//! dns: the DNS shell. Owns the UDP and TCP sockets and turns queries into
//! calls on the pure core; knows hickory so nothing else has to.
//!
//! - `server`: binds every `dns_listen` address (UDP sockets with SO_REUSEPORT, TCP).
//! - `udp`: a thread per UDP socket running the fast path, falling back to hickory.
//! - `raw`: a message's bytes through the handler to encoded bytes (UDP fallbacks, TCP).
//! - `tcp`: TCP per RFC 7766: pipelined queries, idle timeout, connection limit.
//! - `fast`: parses a query and writes its answer with no allocation (balanced
//!   names and the zones' plain RRsets); says when hickory must answer instead.
//! - `handler`: the `RequestHandler`: balanced names, `_health` TXT, else the zone catalog.
//! - `cookie`: DNS cookies (RFC 7873), server cookies as RFC 9018 makes them.
//! - `answer`: response encoding, EDNS/ECS echo, UDP truncation with OPT.
//! - `health_txt`: the `_health.<name>` TXT lines.
//! - `rrl`: response rate limiting of UDP answers (per client prefix and kind).
//! - `xfr`: zone transfers out (AXFR, IXFR) over TCP; `tsig` signs them.
//! - `notify`: NOTIFY to secondaries when a zone's serial changes.
//! - `rejected`: queries refused for what they are (opcode, class, ECS, NXNAME),
//!   counted and logged as a periodic summary.
//! - `chaos`: CHAOS TXT `id.server`, `hostname.bind`, `version.bind`, `version.server`.

pub mod answer;
pub mod chaos;
pub mod cname;
pub mod cookie;
pub mod fast;
pub mod handler;
pub mod health_txt;
#[cfg(target_os = "linux")]
mod mmsg;
pub mod notify;
pub mod raw;
pub mod rejected;
pub mod rrl;
pub mod server;
pub mod signed;
pub mod tcp;
pub mod tsig;
pub mod udp;
pub mod xfr;

pub use handler::DnsHandler;
