//! raw: the serde shape of `geosteer.toml`, exactly as an operator writes it.
//!
//! Every table denies unknown keys, so a typo is an error and not a silently
//! ignored setting. Nothing here is validated beyond its TOML type; `validate`
//! turns these values into the typed [`super::Config`].

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub server: RawServer,
    #[serde(default)]
    pub zones: BTreeMap<String, String>,
    #[serde(default)]
    pub monitors: BTreeMap<String, RawMonitor>,
    #[serde(default)]
    pub pools: BTreeMap<String, RawPool>,
    #[serde(default)]
    pub balance: Vec<RawBalance>,
    #[serde(default)]
    pub proxy: Vec<RawProxy>,
    #[serde(default)]
    pub backends: BTreeMap<String, RawBackend>,
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
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPool {
    pub monitor: Option<String>,
    pub location: Option<[f64; 2]>,
    pub weight: Option<u32>,
    pub min_healthy: Option<u32>,
    pub endpoints: Vec<RawEndpoint>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEndpoint {
    pub address: String,
    pub weight: Option<u32>,
    pub probe: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBalance {
    pub name: String,
    pub policy: String,
    pub pools: Vec<String>,
    pub fallback: Option<String>,
    pub ttl: Option<u32>,
    pub answers: Option<u32>,
    #[serde(default)]
    pub countries: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    pub continents: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    pub subnets: BTreeMap<String, Vec<String>>,
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
