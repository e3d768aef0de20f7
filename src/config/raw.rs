//! raw: the serde shape of `geosteer.toml`, exactly as an operator writes it.
//!
//! Every table denies unknown keys, so a typo is an error and not a silently
//! ignored setting. Nothing here is validated beyond its TOML type; `validate`
//! turns these values into the typed [`super::Config`].

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{DeserializeSeed, MapAccess, SeqAccess, Visitor};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig<'a> {
    pub server: RawServer,
    #[serde(default)]
    pub zones: BTreeMap<String, String>,
    #[serde(default)]
    pub monitors: BTreeMap<String, RawMonitor>,
    #[serde(default)]
    pub pools: BTreeMap<String, RawPool>,
    #[serde(default, borrow)]
    pub balance: Vec<RawBalance<'a>>,
    #[serde(default)]
    pub proxy: Vec<RawProxy>,
    #[serde(default)]
    pub backends: BTreeMap<String, RawBackend>,
    pub cluster: Option<RawCluster>,
    /// `[transfer."ZONE"]`: zone transfers to secondaries.
    #[serde(default)]
    pub transfer: BTreeMap<String, RawTransfer>,
    /// `[dnssec."ZONE"]`: signing keys and policy.
    #[serde(default)]
    pub dnssec: BTreeMap<String, RawDnssec>,
    /// `[[notify]]`: webhook receivers.
    #[serde(default)]
    pub notify: Vec<RawNotify>,
}

/// `[[notify]]`: where events are POSTed.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNotify {
    pub name: Option<String>,
    pub url: String,
    pub events: Option<Vec<String>>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    pub timeout: Option<String>,
    pub retry_for: Option<String>,
    pub queue: Option<u32>,
    pub format: Option<String>,
}

/// `[dnssec."ZONE"]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDnssec {
    pub keys: Vec<String>,
    pub ksk: Option<String>,
    pub signature_validity: Option<String>,
    pub refresh: Option<String>,
    pub nsec: Option<String>,
}

/// `[transfer."ZONE"]`: who may transfer a zone, and whom to NOTIFY.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTransfer {
    #[serde(default)]
    pub allow_transfer: Vec<String>,
    pub tsig: Option<RawTsig>,
    #[serde(default)]
    pub notify: Vec<String>,
}

/// A TSIG key (HMAC-SHA256).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTsig {
    pub name: String,
    pub secret: String,
}

/// `[cluster]`: several nodes share health through etcd.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCluster {
    pub etcd: Vec<String>,
    pub node: Option<String>,
    pub prefix: Option<String>,
    pub location: Option<[f64; 2]>,
    pub lease: Option<String>,
    /// How long a node cut off from etcd keeps the last fleet view.
    pub partition_grace: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub ca: Option<String>,
    pub cert: Option<String>,
    pub key: Option<String>,
    /// `"file"` (default) or `"etcd"`: where the fleet's tables come from.
    pub config: Option<String>,
    /// Where a node keeps the fleet config revisions it received.
    pub config_dir: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    pub dns_listen: Vec<String>,
    pub admin_listen: Option<String>,
    pub geoip: Option<OneOrMany>,
    pub admin_token: Option<String>,
    pub health_query_allow: Option<Vec<String>>,
    /// UDP sockets (SO_REUSEPORT) per DNS listen address; default: one per core.
    pub udp_workers: Option<u32>,
    /// Answer UDP on the fast path (default true); false: hickory only.
    pub fast_path: Option<bool>,
    /// Local address probes connect from.
    pub probe_source: Option<String>,
    /// RFC 5001 name server identifier, also the CHAOS `id.server` answer.
    pub nsid: Option<String>,
    /// What CHAOS `version.bind` / `version.server` answer.
    pub version: Option<String>,
    /// `[server.rrl]`: response rate limiting.
    pub rrl: Option<RawRrl>,
    /// DNS over TCP: idle connections close after this long.
    pub tcp_idle_timeout: Option<String>,
    /// DNS over TCP: open connections at most (the idle longest makes room).
    pub tcp_max_connections: Option<u32>,
    /// DNS cookies: the 128-bit server secret (32 hex digits), or several:
    /// the first makes cookies, the others are still accepted (rollover).
    pub cookie_secret: Option<OneOrMany>,
    /// UDP queries a second per client prefix without a valid server cookie
    /// answered in full; above it, BADCOOKIE or an empty truncated answer.
    pub require_cookie_over: Option<u32>,
    /// Where drains, runtime weights and overrides are kept across restarts
    /// (single node).
    pub state_file: Option<String>,
    /// Where `host` endpoints are resolved: `IP:port` of each resolver.
    pub resolvers: Option<Vec<String>>,
    /// A host endpoint is resolved again at its records' TTL, at least
    /// this long after the last time ...
    pub min_refresh: Option<String>,
    /// ... and at most this long.
    pub max_refresh: Option<String>,
    /// A host whose resolution fails keeps its last addresses this long.
    pub stale_for: Option<String>,
}

/// `[server.rrl]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRrl {
    pub enabled: Option<bool>,
    pub responses_per_second: Option<u32>,
    pub window: Option<String>,
    pub slip: Option<u32>,
    pub exempt: Option<Vec<String>>,
    pub table_size: Option<u32>,
}

/// `geoip` takes one path, or several (ip-location-db ships IPv4 and IPv6 apart).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMonitor {
    #[serde(rename = "type")]
    pub kind: String,
    pub port: Option<u16>,
    pub path: Option<String>,
    pub host: Option<String>,
    pub interval: Option<String>,
    pub timeout: Option<String>,
    pub rise: Option<u32>,
    pub fall: Option<u32>,
    pub expect_status: Option<Vec<u16>>,
    pub expect_body: Option<String>,
    pub window: Option<String>,
    pub max_error_rate: Option<f64>,
    pub min_samples: Option<u32>,
    pub max_latency: Option<String>,
    /// https only: accept any certificate (self-signed origins, tests).
    pub tls_skip_verify: Option<bool>,
    /// Fleet: the fraction of fresh vantages that must see an endpoint down.
    pub quorum: Option<f64>,
    /// http(s): a response header whose number is the endpoint's load.
    pub load_header: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPool {
    pub monitor: Option<String>,
    pub location: Option<[f64; 2]>,
    pub weight: Option<u32>,
    pub min_healthy: Option<u32>,
    pub slow_start: Option<String>,
    pub capacity: Option<f64>,
    pub load: Option<String>,
    pub spill_at: Option<f64>,
    pub endpoints: Vec<RawEndpoint>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEndpoint {
    /// Exactly one of `address`, `cname` and `host`.
    pub address: Option<String>,
    pub cname: Option<String>,
    pub host: Option<String>,
    pub weight: Option<u32>,
    pub probe: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBalance<'a> {
    pub name: String,
    pub policy: String,
    pub pools: Vec<String>,
    pub fallback: Option<String>,
    pub ttl: Option<u32>,
    pub min_ttl: Option<u32>,
    pub on_all_down: Option<String>,
    pub answers: Option<u32>,
    pub sticky: Option<bool>,
    #[serde(default)]
    pub countries: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    pub continents: BTreeMap<String, Vec<String>>,
    #[serde(default, borrow)]
    pub subnets: RawSubnets<'a>,
}

/// A `subnets` map, kept flat and borrowed from the config text: a map of a
/// million prefixes then costs no allocation per prefix (a `BTreeMap<String,
/// Vec<String>>` costs three). A network written twice is a validation error.
#[derive(Debug, Default)]
pub struct RawSubnets<'a> {
    /// Each prefix as written, with its pool names: `pools[start..end]`.
    pub entries: Vec<(Cow<'a, str>, u32, u32)>,
    pub pools: Vec<Cow<'a, str>>,
}

impl RawSubnets<'_> {
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// (prefix as written, pool names) in document order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[Cow<'_, str>])> {
        self.entries
            .iter()
            .map(|(net, s, e)| (net.as_ref(), &self.pools[*s as usize..*e as usize]))
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for RawSubnets<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Map<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for Map<'a> {
            type Value = RawSubnets<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a table of network = [pool, ...]")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
                let mut out = RawSubnets {
                    entries: Vec::with_capacity(map.size_hint().unwrap_or(0)),
                    pools: Vec::with_capacity(map.size_hint().unwrap_or(0)),
                };
                while let Some(CowStr(net)) = map.next_key()? {
                    let start = out.pools.len() as u32;
                    map.next_value_seed(AppendNames(&mut out.pools))?;
                    out.entries.push((net, start, out.pools.len() as u32));
                }
                Ok(out)
            }
        }
        d.deserialize_map(Map(std::marker::PhantomData))
    }
}

/// Deserializes a list of pool names onto the end of a shared vector.
struct AppendNames<'v, 'a>(&'v mut Vec<Cow<'a, str>>);

impl<'de: 'a, 'a> DeserializeSeed<'de> for AppendNames<'_, 'a> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de: 'a, 'a> Visitor<'de> for AppendNames<'_, 'a> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of pool names")
    }
    fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<(), S::Error> {
        while let Some(CowStr(name)) = seq.next_element()? {
            self.0.push(name);
        }
        Ok(())
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProxy {
    pub listen: String,
    pub mode: String,
    #[serde(default)]
    pub routes: Vec<RawRoute>,
    pub backend: Option<String>,
    pub tls: Option<RawTls>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    pub host: Option<String>,
    pub path_prefix: Option<String>,
    pub backend: String,
    pub rate_limit: Option<RawRateLimit>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRateLimit {
    pub per_client: f64,
    pub burst: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    pub cert: String,
    pub key: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBackend {
    pub algorithm: Option<String>,
    pub servers: Vec<RawServerEntry>,
    pub monitor: Option<String>,
    pub pool: Option<String>,
    pub drain_timeout: Option<String>,
    pub connect_timeout: Option<String>,
    pub request_timeout: Option<String>,
    pub retries: Option<u32>,
    pub max_fails: Option<u32>,
    pub fail_timeout: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServerEntry {
    pub address: String,
    pub weight: Option<u32>,
}

/// A string borrowed from the config text when it has no escapes (serde's own
/// `Cow` impl always copies).
struct CowStr<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for CowStr<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = CowStr<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Owned(v.to_string())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V(std::marker::PhantomData))
    }
}
