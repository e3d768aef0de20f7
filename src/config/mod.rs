//! config: reads `geosteer.toml` into a typed, validated [`Config`].
//!
//! The pipeline is `load(path, host_name)` (file system) → `parse(text,
//! base_dir, host_name)` (pure: the shell reads the host name, the default
//! `[cluster] node`) → `raw` serde shapes → `validate` → `Config` plus
//! [`Warning`]s. Large
//! `[balance.subnets]` tables skip the TOML parser (`bulk`). Loading binds no
//! ports and opens no zone file, so `check`, `explain` and `serve` share one
//! path. Zone files are read by `zone`, GeoIP databases by `geo`.
//!
//! Names appear only here and at the edges; everything else refers to pools,
//! monitors and backends by their `Copy` index ids.

// The pure core: no clock, no global RNG, no tokio (clippy.toml says why).
#![deny(clippy::disallowed_methods, clippy::disallowed_types)]

mod bulk;
mod duration;
mod error;
pub mod fleet;
mod notify;
pub mod raw;
mod validate;

pub use validate::{in_zone, normalize_name};

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;

pub use duration::parse_duration;
pub use error::{ConfigError, ConfigErrors, Warning};
pub use notify::{EVENT_KINDS, NotifyConfig, NotifyFormat};

/// Index of a pool in [`Config::pools`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PoolId(pub u32);
/// Index of a monitor in [`Config::monitors`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MonitorId(pub u32);
/// Index of a backend in [`Config::backends`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BackendId(pub u32);

impl PoolId {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}
impl MonitorId {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}
impl BackendId {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// The whole validated configuration. Immutable once built; a reload builds a new one.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file this came from (for messages and reloads).
    pub path: PathBuf,
    pub server: ServerConfig,
    pub zones: Vec<ZoneConfig>,
    pub monitors: Vec<MonitorConfig>,
    pub pools: Vec<PoolConfig>,
    /// Shared with the compiled steering table rather than copied.
    pub balance: Vec<Arc<BalanceConfig>>,
    pub proxies: Vec<ProxyConfig>,
    pub backends: Vec<BackendConfig>,
    /// `[cluster]`: None is a single node deciding alone.
    pub cluster: Option<ClusterConfig>,
    /// `[[notify]]`: webhook receivers of the event log, in config order.
    pub notify: Vec<NotifyConfig>,
    /// What fleet nodes compare to detect config skew: a hash of the config
    /// text outside `[server]` and `[cluster]` (the per-node tables), with
    /// comments and blank lines left out.
    pub fingerprint: u64,
    /// With `[cluster] config = "etcd"`: the fleet config revision loaded.
    pub fleet_revision: Option<u64>,
}

/// `[cluster]`: this node's place in a fleet sharing health through etcd.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterConfig {
    /// Client URLs of the etcd cluster (`http://` or `https://`).
    pub etcd: Vec<String>,
    /// This node's unique name (default: the host name).
    pub node: String,
    /// Key prefix, starting with `/` and without a trailing one.
    pub prefix: String,
    /// (latitude, longitude): where this vantage probes from.
    pub location: Option<(f64, f64)>,
    /// TTL of the lease the node's verdicts live under.
    pub lease: Duration,
    /// A node cut off from etcd keeps the others' last verdicts (frozen) for
    /// this long, counting its own live vote beside them, before it decides
    /// alone; never shorter than a remote node's lease.
    pub partition_grace: Duration,
    pub username: Option<String>,
    pub password: Option<String>,
    pub ca: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// `config = "etcd"`: every table but `[server]` and `[cluster]` comes
    /// from etcd (`geosteer config push`), not from this file.
    pub config_from_etcd: bool,
    /// Where the node keeps the fleet config revisions it received, and
    /// starts from when etcd is unreachable.
    pub config_dir: PathBuf,
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub dns_listen: Vec<SocketAddr>,
    pub admin_listen: SocketAddr,
    /// Zero, one or two (IPv4 + IPv6) GeoIP databases, resolved against the config folder.
    pub geoip: Vec<PathBuf>,
    pub admin_token: Option<String>,
    pub health_query_allow: Vec<IpNet>,
    /// UDP sockets per DNS address (SO_REUSEPORT); 0 means one per available core.
    pub udp_workers: u32,
    /// UDP on the fast-path threads (`dns::udp`); false: hickory's server only.
    pub fast_path: bool,
    /// Local address probes connect from (None: the kernel's choice).
    pub probe_source: Option<IpAddr>,
    /// RFC 5001 NSID sent to queries that ask for it, and the CHAOS
    /// `id.server` / `hostname.bind` answer: printable ASCII, 1..=128 bytes.
    pub nsid: Option<String>,
    /// The CHAOS `version.bind` / `version.server` answer: printable ASCII,
    /// 1..=255 bytes (one TXT string). None: REFUSED.
    pub version: Option<String>,
    /// Response rate limiting on UDP (`[server.rrl]`).
    pub rrl: RrlConfig,
    /// DNS over TCP (RFC 7766): a connection with nothing in flight that
    /// sends nothing for this long is closed.
    pub tcp_idle_timeout: Duration,
    /// DNS over TCP: open connections at most; at the limit a new one closes
    /// the connection idle longest.
    pub tcp_max_connections: usize,
    /// DNS cookies (`dns::cookie`): the first secret makes server cookies,
    /// every one is accepted. Never empty: without `cookie_secret` it holds
    /// one made at random at start-up (`cookie_secret_generated`), which a
    /// reload keeps.
    pub cookie_secrets: Vec<CookieSecret>,
    /// No `cookie_secret`: the one secret was made at start-up (filled in
    /// by `state::Loaded`; the validator leaves `cookie_secrets` empty).
    pub cookie_secret_generated: bool,
    /// `require_cookie_over`: UDP queries a second per client prefix without
    /// a valid server cookie answered in full (None: all of them).
    pub require_cookie_over: Option<u32>,
    /// `state_file`: where drains, runtime weights and overrides are kept
    /// across restarts (single node; a fleet keeps them in etcd).
    pub state_file: Option<PathBuf>,
    /// `resolvers`: where `host` endpoints are resolved (no system
    /// configuration is read); required when a pool has a host endpoint.
    pub resolvers: Vec<SocketAddr>,
    /// `min_refresh` / `max_refresh`: a host is resolved again at the TTL of
    /// its records, bounded to this range (defaults 5 s and 300 s).
    pub refresh: (Duration, Duration),
    /// `stale_for`: a host whose resolution fails keeps its last addresses
    /// this long (default 1 h), then counts as down.
    pub stale_for: Duration,
}

/// A 128-bit DNS cookie secret (`server.cookie_secret`, see `dns::cookie`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct CookieSecret(pub [u8; 16]);

impl std::fmt::Debug for CookieSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never in a log line or a debug dump.
        f.write_str("CookieSecret(..)")
    }
}

impl CookieSecret {
    /// 32 hexadecimal digits.
    pub fn from_hex(text: &str) -> Option<CookieSecret> {
        let bytes = text.as_bytes();
        if bytes.len() != 32 {
            return None;
        }
        let mut out = [0u8; 16];
        for (o, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
            let digit = |c: u8| (c as char).to_digit(16);
            *o = (digit(pair[0])? * 16 + digit(pair[1])?) as u8;
        }
        Some(CookieSecret(out))
    }
}

/// `[server.rrl]`: responses per second per client prefix and answer kind
/// (see `dns::rrl`). On by default, with BIND's and Knot's figures.
#[derive(Debug, Clone, PartialEq)]
pub struct RrlConfig {
    pub enabled: bool,
    pub responses_per_second: u32,
    /// How many seconds of debt an account may run up (BIND's `window`).
    pub window_secs: u32,
    /// Every `slip`-th dropped response goes out truncated (0: none).
    pub slip: u32,
    pub exempt: Vec<IpNet>,
    pub table_size: usize,
}

impl Default for RrlConfig {
    fn default() -> RrlConfig {
        RrlConfig {
            enabled: true,
            responses_per_second: 20,
            window_secs: 15,
            slip: 2,
            exempt: vec![
                IpNet::V4(ipnet::Ipv4Net::new_assert(
                    std::net::Ipv4Addr::new(127, 0, 0, 0),
                    8,
                )),
                IpNet::V6(ipnet::Ipv6Net::new_assert(
                    std::net::Ipv6Addr::LOCALHOST,
                    128,
                )),
            ],
            table_size: 100_000,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ZoneConfig {
    /// Zone apex, lower case, fully qualified with the trailing dot (`example.test.`).
    pub origin: String,
    pub path: PathBuf,
    /// `[transfer."ZONE"]`; None: transfers are refused.
    pub transfer: Option<TransferConfig>,
    /// `[dnssec."ZONE"]`; None: the zone is not signed.
    pub dnssec: Option<DnssecConfig>,
}

/// `[dnssec."ZONE"]`: the zone's keys and signing policy.
#[derive(Debug, Clone, PartialEq)]
pub struct DnssecConfig {
    /// PKCS#8 PEM private keys (ECDSA P-256 or Ed25519), resolved paths.
    pub keys: Vec<PathBuf>,
    /// The key signing the DNSKEY RRset (the others sign the rest); None:
    /// every key signs everything.
    pub ksk: Option<PathBuf>,
    pub validity: Duration,
    /// Re-sign this long before signatures expire.
    pub refresh: Duration,
    /// `nsec`: how names and types that do not exist are denied.
    pub nsec: NsecMode,
}

/// `[dnssec."ZONE"] nsec`: the kind of denial of existence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NsecMode {
    /// `"compact"`: RFC 9824 compact answers, an NSEC per missing name
    /// signed when first asked (the zone cannot be walked).
    #[default]
    Compact,
    /// `"chain"`: a classic NSEC chain over the zone's names (RFC 4034),
    /// signed with the zone, so no denial costs a signature (the zone can be
    /// walked).
    Chain,
}

/// `[transfer."ZONE"]`: zone transfers (AXFR/IXFR over TCP) and NOTIFY.
#[derive(Debug, Clone, PartialEq)]
pub struct TransferConfig {
    /// Client prefixes allowed to transfer (and to be answered with TSIG).
    pub allow: Vec<IpNet>,
    /// When set, a transfer must also be signed with this key.
    pub tsig: Option<TsigKey>,
    /// Secondaries told of a new serial (RFC 1996).
    pub notify: Vec<SocketAddr>,
}

/// A TSIG key (RFC 8945), HMAC-SHA256.
#[derive(Clone, PartialEq)]
pub struct TsigKey {
    /// Key name, lower case, fully qualified (`xfr.example.`).
    pub name: String,
    pub secret: Vec<u8>,
}

impl std::fmt::Debug for TsigKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TsigKey")
            .field("name", &self.name)
            .field("secret", &"<redacted>")
            .finish()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MonitorKind {
    Http,
    Https,
    Tcp,
    /// No probe: the endpoints' health is pushed through the admin API
    /// (`PUT .../endpoints/{endpoint}/health`) and expires with its ttl.
    External,
}

#[derive(Debug, Clone)]
pub struct MonitorConfig {
    pub name: String,
    pub kind: MonitorKind,
    pub port: u16,
    pub path: String,
    pub host: Option<String>,
    pub interval: Duration,
    pub timeout: Duration,
    pub rise: u32,
    pub fall: u32,
    /// Empty means any 2xx.
    pub expect_status: Vec<u16>,
    pub expect_body: Option<String>,
    pub window: Duration,
    pub max_error_rate: f64,
    pub min_samples: u32,
    pub max_latency: Duration,
    pub tls_skip_verify: bool,
    /// Fleet: an endpoint is down when more than this fraction of the fresh
    /// vantages see it down (0: as soon as one does).
    pub quorum: f64,
    /// http(s): the response header whose number is the endpoint's load
    /// (pools with a `capacity` sum their endpoints'), lower case.
    pub load_header: Option<String>,
}

impl MonitorConfig {
    /// Worst-case time for a dead endpoint to leave every answer.
    pub fn worst_case_removal(&self) -> Duration {
        self.interval * self.fall + self.timeout
    }
}

#[derive(Debug, Clone)]
pub struct PoolConfig {
    pub name: String,
    pub monitor: Option<MonitorId>,
    /// (latitude, longitude) in degrees, for the proximity policy.
    pub location: Option<(f64, f64)>,
    pub weight: u32,
    pub min_healthy: u32,
    /// `slow_start`: an endpoint coming up, undrained or added ramps its
    /// weight from 10 % to 100 % over this, and the pool back from down
    /// takes back its catchment over it. None: at once.
    pub slow_start: Option<Duration>,
    /// `capacity`, `load`, `spill_at`: past `spill_at` of its capacity the
    /// pool keeps only a share of its catchment. None without `capacity`.
    pub capacity: Option<Capacity>,
    pub endpoints: Vec<EndpointConfig>,
}

/// A pool's capacity and how its load is known.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Capacity {
    /// In the unit the load is given in (requests per second, sessions, ...).
    pub max: f64,
    pub load: LoadSource,
    /// The utilisation (load / capacity) past which it spills: 0.9.
    pub spill_at: f64,
}

/// Where a pool's load comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadSource {
    /// Pushed with `PUT /api/v1/pools/{pool}/load` (in a fleet, shared
    /// through etcd).
    Reported,
    /// `load = "proxy"`: the requests per second the proxy backends naming
    /// the pool forwarded, summed over the fleet.
    Proxy,
    /// `load = "reported"` with a monitor that sets `load_header`: the sum
    /// of the endpoints' figures read by the probes.
    Header,
}

impl LoadSource {
    /// The name status shows.
    pub fn name(self) -> &'static str {
        match self {
            LoadSource::Reported => "reported",
            LoadSource::Proxy => "proxy",
            LoadSource::Header => "load_header",
        }
    }
}

#[derive(Debug, Clone)]
pub struct EndpointConfig {
    /// What the endpoint is: an address, a CNAME target or a host name.
    pub target: EndpointTarget,
    pub weight: u32,
    /// Where the monitor connects: `probe` when set, else `address:monitor.port`
    /// (for a name: the name, resolved by the system, at `monitor.port`).
    pub probe: Option<ProbeTarget>,
}

impl EndpointConfig {
    /// What identifies the endpoint at runtime: drains, votes, weights,
    /// the admin API's `{endpoint}`, events, etcd keys.
    pub fn key(&self) -> EndpointKey {
        self.target.key()
    }

    /// The address of an address endpoint; None for a name.
    pub fn address(&self) -> Option<IpAddr> {
        match self.target {
            EndpointTarget::Address(ip) => Some(ip),
            EndpointTarget::Cname(_) | EndpointTarget::Host(_) => None,
        }
    }
}

/// What an endpoint of a pool is (`address`, `cname` or `host` in the
/// config). Names are lower case, without the trailing dot.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum EndpointTarget {
    /// Answered as an A or AAAA record of its family.
    Address(IpAddr),
    /// Answered as a CNAME to this name (multi-CDN steering).
    Cname(Arc<str>),
    /// A host name whose current addresses are answered.
    Host(Arc<str>),
}

impl EndpointTarget {
    pub fn key(&self) -> EndpointKey {
        match self {
            EndpointTarget::Address(ip) => EndpointKey::Address(*ip),
            EndpointTarget::Cname(n) | EndpointTarget::Host(n) => EndpointKey::Name(n.clone()),
        }
    }
}

/// The runtime identity of an endpoint inside its pool: its address, or
/// its name (lower case, no trailing dot). Its text (`Display`) is what
/// etcd keys, admin routes, events and status show: for an address the
/// address as before. `parse` tries an address first.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EndpointKey {
    Address(IpAddr),
    Name(Arc<str>),
}

impl EndpointKey {
    /// An address, else a domain name (lower-cased, a trailing dot
    /// dropped); None when `text` is neither.
    pub fn parse(text: &str) -> Option<EndpointKey> {
        if let Ok(ip) = text.parse::<IpAddr>() {
            return Some(EndpointKey::Address(ip));
        }
        let name = normalize_name(text)?;
        Some(EndpointKey::Name(Arc::from(name.trim_end_matches('.'))))
    }
}

impl std::fmt::Display for EndpointKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EndpointKey::Address(ip) => ip.fmt(f),
            EndpointKey::Name(n) => f.write_str(n),
        }
    }
}

impl std::str::FromStr for EndpointKey {
    type Err = String;
    fn from_str(text: &str) -> Result<EndpointKey, String> {
        EndpointKey::parse(text)
            .ok_or_else(|| format!("{text:?} is neither an IP address nor a domain name"))
    }
}

impl From<IpAddr> for EndpointKey {
    fn from(ip: IpAddr) -> EndpointKey {
        EndpointKey::Address(ip)
    }
}

impl serde::Serialize for EndpointKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A probe destination written as `host:port`; the host may be a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeTarget {
    pub host: String,
    pub port: u16,
}

impl std::fmt::Display for ProbeTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    Failover,
    Weighted,
    Random,
    Geo,
    Proximity,
    Latency,
}

impl Policy {
    pub fn as_str(self) -> &'static str {
        match self {
            Policy::Failover => "failover",
            Policy::Weighted => "weighted",
            Policy::Random => "random",
            Policy::Geo => "geo",
            Policy::Proximity => "proximity",
            Policy::Latency => "latency",
        }
    }
}

/// Continent codes as GeoIP databases write them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Continent {
    Af,
    An,
    As,
    Eu,
    Na,
    Oc,
    Sa,
}

impl Continent {
    pub fn parse(code: &str) -> Option<Continent> {
        Some(match code.to_ascii_uppercase().as_str() {
            "AF" => Continent::Af,
            "AN" => Continent::An,
            "AS" => Continent::As,
            "EU" => Continent::Eu,
            "NA" => Continent::Na,
            "OC" => Continent::Oc,
            "SA" => Continent::Sa,
            _ => return None,
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Continent::Af => "AF",
            Continent::An => "AN",
            Continent::As => "AS",
            Continent::Eu => "EU",
            Continent::Na => "NA",
            Continent::Oc => "OC",
            Continent::Sa => "SA",
        }
    }
}

/// An ISO 3166-1 alpha-2 code, upper case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Country(pub [u8; 2]);

impl Country {
    pub fn parse(code: &str) -> Option<Country> {
        let b = code.as_bytes();
        if b.len() == 2 && b.iter().all(u8::is_ascii_alphabetic) {
            Some(Country([
                b[0].to_ascii_uppercase(),
                b[1].to_ascii_uppercase(),
            ]))
        } else {
            None
        }
    }
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("??")
    }
}

#[derive(Debug, Clone)]
pub struct BalanceConfig {
    /// Lower case, fully qualified with the trailing dot.
    pub name: String,
    pub policy: Policy,
    pub pools: Vec<PoolId>,
    pub fallback: Option<PoolId>,
    pub ttl: u32,
    /// The TTL of an answer from a pool that is not whole and healthy, or not
    /// the first candidate, or given because every pool is down.
    pub min_ttl: u32,
    /// What to answer when no pool is usable for the queried family.
    pub on_all_down: OnAllDown,
    pub answers: u32,
    /// `sticky = true`: the endpoints inside the chosen pool come from a
    /// weighted rendezvous hash of the client's subnet, not a random draw.
    pub sticky: bool,
    /// FxHash: looked up per query; the keys come from config.
    pub countries: HashMap<Country, Vec<PoolId>, rustc_hash::FxBuildHasher>,
    pub continents: HashMap<Continent, Vec<PoolId>, rustc_hash::FxBuildHasher>,
    /// Networks (host bits zero) with their pool order, sorted by network.
    /// Equal pool orders share one allocation.
    pub subnets: Vec<(IpNet, Arc<[PoolId]>)>,
}

impl BalanceConfig {
    /// Every pool the name can answer from: its `pools`, `fallback` and the
    /// pools of its country, continent and subnet rules (with repeats).
    pub fn reachable_pools(&self) -> impl Iterator<Item = PoolId> + '_ {
        self.pools
            .iter()
            .chain(self.fallback.iter())
            .chain(self.countries.values().flatten())
            .chain(self.continents.values().flatten())
            .chain(self.subnets.iter().flat_map(|(_, l)| l.iter()))
            .copied()
    }
}

impl PoolConfig {
    /// A pool of `host` endpoints: it answers their resolved addresses.
    pub fn answers_hosts(&self) -> bool {
        self.endpoints
            .first()
            .is_some_and(|e| matches!(e.target, EndpointTarget::Host(_)))
    }

    /// A pool of CNAME endpoints: it answers one CNAME, for every type.
    pub fn answers_cname(&self) -> bool {
        self.endpoints
            .first()
            .is_some_and(|e| matches!(e.target, EndpointTarget::Cname(_)))
    }
}

/// `on_all_down`: the answer when no pool of a balanced name is usable for
/// the queried family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OnAllDown {
    /// The `fallback` pool, health ignored (the default when it is set).
    Fallback,
    /// Every endpoint of the family of every pool of the name, health ignored.
    All,
    /// An empty answer (the default without `fallback`).
    Nodata,
    /// SERVFAIL, so that resolvers try another server or later.
    Servfail,
}

impl OnAllDown {
    pub const ALL: [OnAllDown; 4] = [
        OnAllDown::Fallback,
        OnAllDown::All,
        OnAllDown::Nodata,
        OnAllDown::Servfail,
    ];

    /// Index into per-mode arrays, in [`ALL`](Self::ALL) order.
    pub fn index(self) -> usize {
        self as usize
    }

    pub fn as_str(self) -> &'static str {
        match self {
            OnAllDown::Fallback => "fallback",
            OnAllDown::All => "all",
            OnAllDown::Nodata => "nodata",
            OnAllDown::Servfail => "servfail",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyMode {
    Http,
    Tcp,
}

#[derive(Debug, Clone)]
pub struct ProxyConfig {
    pub listen: SocketAddr,
    pub mode: ProxyMode,
    pub routes: Vec<RouteConfig>,
    /// tcp mode: the one backend.
    pub backend: Option<BackendId>,
    pub tls: Option<TlsConfig>,
}

#[derive(Debug, Clone)]
pub struct RouteConfig {
    /// Exact host, or `*.suffix`; lower case; None matches every host.
    pub host: Option<String>,
    pub path_prefix: String,
    pub backend: BackendId,
    pub rate_limit: Option<RateLimitConfig>,
}

#[derive(Debug, Clone, Copy)]
pub struct RateLimitConfig {
    /// Sustained requests per second per client IP.
    pub per_client: f64,
    pub burst: u32,
}

#[derive(Debug, Clone)]
pub struct TlsConfig {
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    RoundRobin,
    WeightedRoundRobin,
    LeastConnections,
    IpHash,
    PowerOfTwo,
}

#[derive(Debug, Clone)]
pub struct BackendConfig {
    pub name: String,
    pub algorithm: Algorithm,
    pub servers: Vec<ServerEntry>,
    pub monitor: Option<MonitorId>,
    pub pool: Option<PoolId>,
    pub drain_timeout: Duration,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    pub retries: u32,
    pub max_fails: u32,
    pub fail_timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct ServerEntry {
    pub address: SocketAddr,
    pub weight: u32,
}

impl Config {
    pub fn pool_id(&self, name: &str) -> Option<PoolId> {
        self.pools
            .iter()
            .position(|p| p.name == name)
            .map(|i| PoolId(i as u32))
    }
    pub fn pool(&self, id: PoolId) -> &PoolConfig {
        &self.pools[id.index()]
    }
    pub fn monitor_of(&self, pool: PoolId) -> Option<&MonitorConfig> {
        self.pool(pool).monitor.map(|m| &self.monitors[m.index()])
    }
}

/// Reads and validates the config at `path`. Zone files and GeoIP databases
/// are not opened here. `host_name` is the default `[cluster] node` (the
/// shell reads it: `state::host_name`).
pub fn load(path: &Path, host_name: &str) -> Result<(Config, Vec<Warning>), ConfigErrors> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigErrors::one(ConfigError::file(path, format!("cannot read config: {e}")))
    })?;
    let base = path.parent().unwrap_or(Path::new("."));
    if fleet::from_etcd(&text) == Some(true) {
        return load_fleet(path, &text, base, host_name);
    }
    let (mut config, warnings) = parse(&text, path, base, host_name)?;
    config.path = path.to_path_buf();
    Ok((config, warnings))
}

/// The `[cluster]` of the config at `path` when it reads the fleet's
/// tables from etcd (`config = "etcd"`), validated with its `[server]`;
/// None for every other config.
pub fn fleet_cluster(path: &Path, host_name: &str) -> Result<Option<ClusterConfig>, ConfigErrors> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigErrors::one(ConfigError::file(path, format!("cannot read config: {e}")))
    })?;
    if fleet::from_etcd(&text) != Some(true) {
        return Ok(None);
    }
    let base = path.parent().unwrap_or(Path::new("."));
    let (config, _) = parse(&text, path, base, host_name)?;
    Ok(config.cluster)
}

/// [`load`] of a node whose fleet tables come from etcd: the revision the
/// node last received (`[cluster] config_dir`, written by the shell) with
/// the local file's `[server]` and `[cluster]`. Problems name the file they
/// are in: the local one, or the revision's `fleet.toml`.
fn load_fleet(
    path: &Path,
    local: &str,
    base: &Path,
    host_name: &str,
) -> Result<(Config, Vec<Warning>), ConfigErrors> {
    let one = |key: &str, message: String| ConfigErrors::one(ConfigError::new(path, key, message));
    let foreign = fleet::foreign_tables(local);
    if !foreign.is_empty() {
        return Err(one(
            "cluster.config",
            format!(
                "with config = \"etcd\" the fleet's tables come from etcd (`geosteer config push`); this file holds only [server] and [cluster], not [{}]",
                foreign.join("], [")
            ),
        ));
    }
    let dir = fleet::config_dir(local, base);
    let revision = fleet::current(&dir).map_err(|e| one("cluster.config_dir", e))?;
    let fleet_path = fleet::revision_dir(&dir, revision).join(fleet::FLEET_FILE);
    let fleet_text = std::fs::read_to_string(&fleet_path).map_err(|e| {
        ConfigErrors::one(ConfigError::file(
            &fleet_path,
            format!("cannot read fleet config revision {revision}: {e}"),
        ))
    })?;
    let (merged, local_from) = fleet::merge(&fleet_text, local);
    let result = parse(&merged, &fleet_path, base, host_name);
    let (mut config, warnings) = result.map_err(|mut errors| {
        for e in &mut errors.0 {
            let local_key = fleet::LOCAL_TABLES
                .iter()
                .any(|t| e.key == *t || e.key.starts_with(&format!("{t}.")));
            match e.line {
                Some(line) if line >= local_from => {
                    e.file = path.to_path_buf();
                    e.line = Some(line + 1 - local_from);
                }
                None if local_key => e.file = path.to_path_buf(),
                _ => {}
            }
        }
        errors
    })?;
    config.path = path.to_path_buf();
    config.fleet_revision = Some(revision);
    Ok((config, warnings))
}

/// Parses and validates config text. `file` is used in messages; relative
/// paths resolve against `base_dir`; `host_name` is the default
/// `[cluster] node` ("" when there is none: a `[cluster]` must then name its
/// node). Pure: touches no file and reads no environment.
pub fn parse(
    text: &str,
    file: &Path,
    base_dir: &Path,
    host_name: &str,
) -> Result<(Config, Vec<Warning>), ConfigErrors> {
    let (mut config, warnings) = validate::parse(text, file, base_dir, host_name)?;
    config.fingerprint = fingerprint(text);
    Ok((config, warnings))
}

/// Gives the problems found in `file` after it was parsed (zones, keys,
/// GeoIP) the line of their key, from the file's text.
pub fn locate_lines(file: &Path, errors: &mut ConfigErrors) {
    let Ok(text) = std::fs::read_to_string(file) else {
        return;
    };
    validate::lines::fill(&text, errors.0.iter_mut().filter(|e| e.file == file));
}

/// FNV-1a over the config's lines outside `[server]` and `[cluster]`
/// (trimmed, comments and blank lines skipped): equal on nodes that answer
/// alike, whatever their names, listen addresses and comments.
pub fn fingerprint(text: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut skipping = false;
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line.starts_with('[') {
            let header = line.trim_start_matches('[').trim_end_matches(']').trim();
            let table = header.split('.').next().unwrap_or("").trim();
            skipping = table == "server" || table == "cluster";
        }
        if skipping {
            continue;
        }
        for b in line.bytes().chain(std::iter::once(b'\n')) {
            hash ^= u64::from(b);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}
