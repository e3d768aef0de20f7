//! validate: raw serde values → typed [`Config`], collecting every problem.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use serde::Deserialize;

use super::bulk;

use super::raw::*;
use super::*;

mod balance;
mod cluster;
mod cname;
mod dnssec;
pub(super) mod lines;
mod notify;
mod proxy;
mod recover;
mod server;
mod transfer;

/// Parses TOML text into a validated config. `host_name` is the default
/// `[cluster] node`.
pub(super) fn parse(
    text: &str,
    file: &Path,
    base: &Path,
    host_name: &str,
) -> Result<(Config, Vec<Warning>), ConfigErrors> {
    // Large `[balance.subnets]` tables are read by `bulk`, the rest by toml;
    // when that does not line up, toml reads it all (and reports any error).
    let checked = || {
        if let Some(x) = bulk::extract(text)
            && let Some(raw) = deserialize(&x.rest)
            && let Some(raw) = bulk::merge(raw, x.tables, x.headers)
        {
            return validate(raw, file, base, host_name);
        }
        match deserialize(text) {
            Some(raw) => validate(raw, file, base, host_name),
            None => recovered(text, file, base, host_name),
        }
    };
    let result = checked();
    // Validation knows keys, not lines: the parser's spans give them.
    result.map_err(|mut e| {
        lines::fill(text, e.0.iter_mut());
        e
    })
}

/// Every problem of a config that does not deserialize: its unknown keys
/// and wrong values (`recover`), then what validation finds in the rest.
fn recovered(
    text: &str,
    file: &Path,
    base: &Path,
    host_name: &str,
) -> Result<(Config, Vec<Warning>), ConfigErrors> {
    let r = recover::deserialize(text, file);
    let mut errors = r.errors;
    match r.raw {
        // Recovery met nothing to report (it should not happen): as is.
        Some(raw) if errors.is_empty() => return validate(raw, file, base, host_name),
        Some(raw) => {
            if let Err(semantic) = validate(raw, file, base, host_name) {
                let under = |key: &str, removed: &str| {
                    key.strip_prefix(removed)
                        .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
                };
                errors.extend(
                    semantic
                        .0
                        .into_iter()
                        .filter(|e| !r.removed.iter().any(|k| under(&e.key, k))),
                );
            }
        }
        None if errors.is_empty() => {
            errors.push(ConfigError::file(file, "the config does not deserialize"));
        }
        None => {}
    }
    // One list in the order of the file.
    lines::fill(text, errors.iter_mut());
    errors.sort_by_key(|e| e.line.unwrap_or(usize::MAX));
    Err(ConfigErrors(errors))
}

/// The raw config, when it deserializes as it is (the problems of one that
/// does not are found again by `recover`, on the error path only).
fn deserialize(text: &str) -> Option<RawConfig<'_>> {
    RawConfig::deserialize(toml::Deserializer::parse(text).ok()?).ok()
}

fn validate(
    raw: RawConfig<'_>,
    file: &Path,
    base: &Path,
    host_name: &str,
) -> Result<(Config, Vec<Warning>), ConfigErrors> {
    let mut v = Validator {
        file,
        base,
        host_name,
        errors: Vec::new(),
        warnings: Vec::new(),
    };
    let config = v.config(raw);
    if v.errors.is_empty() {
        Ok((config, v.warnings))
    } else {
        Err(ConfigErrors(v.errors))
    }
}

struct Validator<'a> {
    file: &'a Path,
    base: &'a Path,
    /// The default node name: the shell read it (`config::host_name`).
    host_name: &'a str,
    errors: Vec<ConfigError>,
    warnings: Vec<Warning>,
}

impl Validator<'_> {
    fn err(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.errors.push(ConfigError::new(self.file, key, message));
    }

    fn warn(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.warnings.push(Warning::new(key, message));
    }

    /// A fact worth knowing, not a problem (see [`Warning::note`]).
    fn note(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.warnings.push(Warning {
            note: true,
            ..Warning::new(key, message)
        });
    }

    fn path(&self, p: &str) -> PathBuf {
        let p = Path::new(p);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base.join(p)
        }
    }

    fn duration(&mut self, key: &str, text: Option<&str>, default: Duration) -> Duration {
        match text {
            None => default,
            Some(t) => match parse_duration(t) {
                Ok(d) if d.is_zero() => {
                    self.err(key, "must be greater than zero");
                    default
                }
                Ok(d) => d,
                Err(e) => {
                    self.err(key, e);
                    default
                }
            },
        }
    }

    fn socket_addr(&mut self, key: &str, text: &str) -> Option<SocketAddr> {
        match text.parse::<SocketAddr>() {
            Ok(a) => Some(a),
            Err(_) => {
                self.err(
                    key,
                    format!("invalid address {text:?}: expected IP:PORT, e.g. \"127.0.0.1:5353\" or \"[::1]:53\""),
                );
                None
            }
        }
    }

    fn config(&mut self, raw: RawConfig<'_>) -> Config {
        let server = self.server(raw.server);
        let mut zones = self.zones(&raw.zones);
        self.transfers(&raw.transfer, &mut zones);
        self.dnssec(&raw.dnssec, &mut zones);
        let monitors: Vec<MonitorConfig> = raw
            .monitors
            .iter()
            .map(|(name, m)| self.monitor(name, m))
            .collect();
        let monitor_ids: HashMap<&str, MonitorId> = raw
            .monitors
            .keys()
            .enumerate()
            .map(|(i, n)| (n.as_str(), MonitorId(i as u32)))
            .collect();
        let pool_ids: HashMap<&str, PoolId> = raw
            .pools
            .keys()
            .enumerate()
            .map(|(i, n)| (n.as_str(), PoolId(i as u32)))
            .collect();
        let mut pools: Vec<PoolConfig> = raw
            .pools
            .iter()
            .map(|(name, p)| self.pool(name, p, &monitor_ids))
            .collect();
        self.load_headers(&mut pools, &monitors);
        let mut balance = Vec::new();
        let mut seen = HashSet::new();
        for (i, b) in raw.balance.iter().enumerate() {
            if let Some(b) = self.balance(i, b, &pool_ids, &zones) {
                if !seen.insert(b.name.clone()) {
                    self.err(
                        format!("balance[{i}].name"),
                        format!("{} is balanced twice", b.name),
                    );
                }
                balance.push(Arc::new(b));
            }
        }
        self.cname_chains(&pools, &balance);
        self.hosts_resolvable(&pools, &server, &monitors);
        for (i, b) in balance.iter().enumerate() {
            if b.policy != Policy::Proximity {
                continue;
            }
            for id in &b.pools {
                let pool = &pools[id.index()];
                if pool.location.is_none() {
                    let name = pool.name.clone();
                    self.err(
                        format!("pools.{name}.location"),
                        format!("balance[{i}] ({}) uses the proximity policy, which needs every pool's location", b.name),
                    );
                }
            }
        }
        let backend_ids: HashMap<&str, BackendId> = raw
            .backends
            .keys()
            .enumerate()
            .map(|(i, n)| (n.as_str(), BackendId(i as u32)))
            .collect();
        let backends: Vec<BackendConfig> = raw
            .backends
            .iter()
            .map(|(name, b)| self.backend(name, b, &monitor_ids, &pool_ids))
            .collect();
        for b in &backends {
            if let Some(m) = b.monitor
                && monitors[m.index()].kind == MonitorKind::External
            {
                self.err(
                    format!("backends.{}.monitor", b.name),
                    format!(
                        "{} is an external monitor (health pushed to pool endpoints); a backend's servers need a probe (http, https or tcp)",
                        monitors[m.index()].name
                    ),
                );
            }
        }
        let proxies = raw
            .proxy
            .iter()
            .enumerate()
            .filter_map(|(i, p)| self.proxy(i, p, &backend_ids))
            .collect::<Vec<_>>();
        let mut listens = HashSet::new();
        for (i, p) in proxies.iter().enumerate() {
            if !listens.insert(p.listen) {
                self.err(
                    format!("proxy[{i}].listen"),
                    format!("{} is used twice", p.listen),
                );
            }
        }
        self.proxy_loads(&pools, &backends);
        self.balanced_not_transferred(&zones, &balance);
        let cluster = raw.cluster.as_ref().map(|c| self.cluster(c));
        if cluster.is_some() {
            for m in &monitors {
                self.note(
                    format!("monitors.{}.quorum", m.name),
                    cluster::arithmetic(m.quorum),
                );
            }
        }
        let notify = self.notify(&raw.notify);
        Config {
            path: self.file.to_path_buf(),
            server,
            zones,
            monitors,
            pools,
            balance,
            proxies,
            backends,
            cluster,
            notify,
            fingerprint: 0,
            fleet_revision: None,
        }
    }

    fn zones(&mut self, raw: &std::collections::BTreeMap<String, String>) -> Vec<ZoneConfig> {
        let mut zones: Vec<ZoneConfig> = Vec::new();
        for (origin, path) in raw {
            let key = format!("zones.{origin}");
            let Some(name) = normalize_name(origin) else {
                self.err(key, format!("{origin:?} is not a valid domain name"));
                continue;
            };
            if zones.iter().any(|z| z.origin == name) {
                self.err(key, format!("zone {name} is listed twice"));
                continue;
            }
            zones.push(ZoneConfig {
                origin: name,
                path: self.path(path),
                transfer: None,
                dnssec: None,
            });
        }
        zones
    }

    fn monitor(&mut self, name: &str, m: &RawMonitor) -> MonitorConfig {
        let key = |k: &str| format!("monitors.{name}.{k}");
        let kind = match m.kind.as_str() {
            "http" => MonitorKind::Http,
            "https" => MonitorKind::Https,
            "tcp" => MonitorKind::Tcp,
            "external" => MonitorKind::External,
            other => {
                self.err(
                    key("type"),
                    format!(
                        "unknown monitor type {other:?}; expected http, https, tcp or external"
                    ),
                );
                MonitorKind::Tcp
            }
        };
        let port = m.port.unwrap_or(match kind {
            MonitorKind::Https => 443,
            _ => 80,
        });
        if m.port == Some(0) {
            self.err(key("port"), "must be 1-65535");
        }
        if kind == MonitorKind::External {
            for (k, set) in [
                ("port", m.port.is_some()),
                ("path", m.path.is_some()),
                ("expect_status", m.expect_status.is_some()),
                ("expect_body", m.expect_body.is_some()),
                ("host", m.host.is_some()),
                ("timeout", m.timeout.is_some()),
                ("load_header", m.load_header.is_some()),
            ] {
                if set {
                    self.err(
                        key(k),
                        "an external monitor has no probe: its health is pushed (PUT /api/v1/pools/{pool}/endpoints/{endpoint}/health)",
                    );
                }
            }
        }
        if kind == MonitorKind::Tcp {
            for (k, set) in [
                ("path", m.path.is_some()),
                ("expect_status", m.expect_status.is_some()),
                ("expect_body", m.expect_body.is_some()),
                ("host", m.host.is_some()),
                ("load_header", m.load_header.is_some()),
            ] {
                if set {
                    self.err(key(k), "only applies to http and https monitors");
                }
            }
        }
        let path = m.path.clone().unwrap_or_else(|| "/".into());
        if !path.starts_with('/') {
            self.err(key("path"), "must start with '/'");
        }
        let interval = self.duration(
            &key("interval"),
            m.interval.as_deref(),
            Duration::from_secs(5),
        );
        let timeout = self.duration(
            &key("timeout"),
            m.timeout.as_deref(),
            Duration::from_secs(3)
                .min(interval / 2)
                .max(Duration::from_millis(1)),
        );
        if timeout >= interval {
            self.err(
                key("timeout"),
                format!(
                    "timeout ({}) must be shorter than interval ({})",
                    humantime::format_duration(timeout),
                    humantime::format_duration(interval)
                ),
            );
        }
        let rise = m.rise.unwrap_or(2);
        let fall = m.fall.unwrap_or(3);
        if rise == 0 {
            self.err(key("rise"), "must be at least 1");
        }
        if fall == 0 {
            self.err(key("fall"), "must be at least 1");
        }
        let expect_status = m.expect_status.clone().unwrap_or_default();
        for (i, s) in expect_status.iter().enumerate() {
            if !(100..=599).contains(s) {
                self.err(
                    format!("monitors.{name}.expect_status[{i}]"),
                    format!("{s} is not an HTTP status"),
                );
            }
        }
        let window = self.duration(&key("window"), m.window.as_deref(), Duration::from_secs(60));
        let max_error_rate = m.max_error_rate.unwrap_or(0.01);
        if !(0.0..=1.0).contains(&max_error_rate) {
            self.err(
                key("max_error_rate"),
                "must be between 0.0 and 1.0 (a fraction: 0.01 is 1%)",
            );
        }
        let max_latency = self.duration(
            &key("max_latency"),
            m.max_latency.as_deref(),
            Duration::from_millis(500),
        );
        let min_samples = m.min_samples.unwrap_or(10);
        let config =
            MonitorConfig {
                name: name.to_string(),
                kind,
                port,
                path,
                host: m.host.clone(),
                interval,
                timeout,
                rise: rise.max(1),
                fall: fall.max(1),
                expect_status,
                expect_body: m.expect_body.clone(),
                window,
                max_error_rate,
                min_samples,
                max_latency,
                tls_skip_verify: m.tls_skip_verify.unwrap_or(false),
                quorum: m.quorum.unwrap_or(0.5),
                load_header: m.load_header.as_deref().and_then(|h| {
                    match http::HeaderName::from_bytes(h.trim().as_bytes()) {
                        Ok(n) => Some(n.as_str().to_string()),
                        Err(_) => {
                            self.err(
                                key("load_header"),
                                format!("{h:?} is not an HTTP header name"),
                            );
                            None
                        }
                    }
                }),
            };
        if !(0.0..1.0).contains(&config.quorum) {
            self.err(
                key("quorum"),
                "must be at least 0.0 and below 1.0 (the fraction of vantages that must see an endpoint down; 0.5: a majority)",
            );
        }
        if window < interval * min_samples.max(1) && min_samples > 0 {
            self.warn(
                format!("monitors.{name}.window"),
                format!(
                    "a window of {} holds at most {} probe results at interval {}, fewer than min_samples = {min_samples}: probes alone can never degrade a pool",
                    humantime::format_duration(window),
                    (window.as_millis() / interval.as_millis().max(1)),
                    humantime::format_duration(interval),
                ),
            );
        }
        if max_latency >= timeout {
            self.warn(
                key("max_latency"),
                "is not shorter than timeout: a slow endpoint fails its probes before it can degrade its pool",
            );
        }
        self.note(
            format!("monitors.{name}"),
            format!(
                "a dead endpoint leaves answers within interval × fall + timeout = {}",
                humantime::format_duration(config.worst_case_removal())
            ),
        );
        config
    }

    fn pool(&mut self, name: &str, p: &RawPool, monitors: &HashMap<&str, MonitorId>) -> PoolConfig {
        let key = |k: &str| format!("pools.{name}.{k}");
        let monitor = p.monitor.as_deref().and_then(|m| match monitors.get(m) {
            Some(id) => Some(*id),
            None => {
                self.err(key("monitor"), format!("no monitor named {m:?}"));
                None
            }
        });
        let location = p.location.and_then(|[lat, lon]| {
            if (-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lon) {
                Some((lat, lon))
            } else {
                self.err(
                    key("location"),
                    "must be [latitude (-90..90), longitude (-180..180)]",
                );
                None
            }
        });
        let weight = p.weight.unwrap_or(1);
        let min_healthy = p.min_healthy.unwrap_or(1);
        if p.endpoints.is_empty() {
            self.err(key("endpoints"), "a pool needs at least one endpoint");
        }
        if min_healthy as usize > p.endpoints.len() && !p.endpoints.is_empty() {
            self.err(
                key("min_healthy"),
                format!("{min_healthy} is more than the pool's {} endpoints: the pool could never be up", p.endpoints.len()),
            );
        }
        let mut endpoints: Vec<EndpointConfig> = Vec::new();
        for (i, e) in p.endpoints.iter().enumerate() {
            let ekey = |k: &str| format!("pools.{name}.endpoints[{i}].{k}");
            let Some((field, target)) = self.endpoint_target(&ekey, e) else {
                continue;
            };
            if endpoints.iter().any(|x| x.target == target) {
                self.err(
                    ekey(field),
                    format!("{} is listed twice in this pool", target.key()),
                );
            }
            let weight = e.weight.unwrap_or(1);
            if weight == 0 {
                self.err(
                    ekey("weight"),
                    "must be at least 1 (drain an endpoint instead of weighting it 0)",
                );
            }
            let probe = e.probe.as_deref().and_then(|t| match parse_host_port(t) {
                Ok(p) => Some(p),
                Err(m) => {
                    self.err(ekey("probe"), m);
                    None
                }
            });
            if probe.is_some() && monitor.is_none() {
                self.warn(
                    ekey("probe"),
                    "is set but the pool has no monitor, so it is never probed",
                );
            }
            endpoints.push(EndpointConfig {
                target,
                weight,
                probe,
            });
        }
        let slow_start = p
            .slow_start
            .as_deref()
            .map(|t| self.duration(&key("slow_start"), Some(t), Duration::ZERO))
            .filter(|d| !d.is_zero());
        let capacity = self.capacity(name, p);
        self.one_kind(name, &endpoints);
        PoolConfig {
            name: name.to_string(),
            monitor,
            location,
            weight,
            min_healthy,
            slow_start,
            capacity,
            endpoints,
        }
    }

    /// `capacity`, `load` and `spill_at` of pool `name`.
    fn capacity(&mut self, name: &str, p: &RawPool) -> Option<crate::config::Capacity> {
        let key = |k: &str| format!("pools.{name}.{k}");
        let Some(max) = p.capacity else {
            for (k, set) in [
                ("load", p.load.is_some()),
                ("spill_at", p.spill_at.is_some()),
            ] {
                if set {
                    self.err(key(k), "needs `capacity`");
                }
            }
            return None;
        };
        if !(max.is_finite() && max > 0.0) {
            self.err(key("capacity"), "must be a number above 0");
            return None;
        }
        let load = match p.load.as_deref() {
            None | Some("reported") => crate::config::LoadSource::Reported,
            Some("proxy") => crate::config::LoadSource::Proxy,
            Some(other) => {
                self.err(
                    key("load"),
                    format!("unknown source {other:?}; expected reported or proxy"),
                );
                crate::config::LoadSource::Reported
            }
        };
        let spill_at = p.spill_at.unwrap_or(0.9);
        if !(spill_at > 0.0 && spill_at <= 1.0) {
            self.err(
                key("spill_at"),
                "must be above 0 and at most 1 (a share of capacity)",
            );
            return None;
        }
        Some(crate::config::Capacity {
            max,
            load,
            spill_at,
        })
    }
}

impl Validator<'_> {
    /// A pool with a capacity whose monitor reads `load_header` takes its
    /// load from there (`load = "reported"`, the default); one without a
    /// capacity, or with `load = "proxy"`, is told the header is not used.
    fn load_headers(&mut self, pools: &mut [PoolConfig], monitors: &[MonitorConfig]) {
        for pool in pools {
            let Some(m) = pool.monitor.and_then(|m| monitors.get(m.index())) else {
                continue;
            };
            if m.load_header.is_none() {
                continue;
            }
            match &mut pool.capacity {
                Some(c) if c.load == crate::config::LoadSource::Reported => {
                    c.load = crate::config::LoadSource::Header;
                }
                Some(_) => self.warn(
                    format!("pools.{}.load", pool.name),
                    format!(
                        "is \"proxy\": the load_header of monitor {} is not used for this pool",
                        m.name
                    ),
                ),
                None => self.warn(
                    format!("pools.{}.capacity", pool.name),
                    format!(
                        "is not set: the load_header of monitor {} is not used for this pool",
                        m.name
                    ),
                ),
            }
        }
    }

    /// A pool with `load = "proxy"` that no backend names (`pool = ...`)
    /// never has any load: warned.
    fn proxy_loads(&mut self, pools: &[PoolConfig], backends: &[BackendConfig]) {
        for (i, pool) in pools.iter().enumerate() {
            let proxied = pool
                .capacity
                .is_some_and(|c| c.load == crate::config::LoadSource::Proxy);
            if proxied && !backends.iter().any(|b| b.pool == Some(PoolId(i as u32))) {
                self.warn(
                    format!("pools.{}.load", pool.name),
                    "is \"proxy\" but no backend names this pool (backends.NAME.pool): its load stays 0",
                );
            }
        }
    }

    /// The endpoint's `address`, `cname` or `host` (exactly one), with the
    /// key it was written under.
    fn endpoint_target(
        &mut self,
        ekey: &impl Fn(&str) -> String,
        e: &RawEndpoint,
    ) -> Option<(&'static str, EndpointTarget)> {
        let given: Vec<(&'static str, &String)> = [
            ("address", e.address.as_ref()),
            ("cname", e.cname.as_ref()),
            ("host", e.host.as_ref()),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect();
        let (field, text) = match given.as_slice() {
            [one] => *one,
            [] => {
                self.err(ekey("address"), "needs one of address, cname or host");
                return None;
            }
            [(first, _), (second, _), ..] => {
                self.err(
                    ekey(second),
                    format!("an endpoint is one of address, cname or host, not both {first} and {second}"),
                );
                return None;
            }
        };
        if field == "address" {
            let Ok(address) = text.parse::<IpAddr>() else {
                self.err(
                    ekey("address"),
                    format!("{text:?} is not an IPv4 or IPv6 address"),
                );
                return None;
            };
            return Some((field, EndpointTarget::Address(address)));
        }
        let Some(name) = normalize_name(text).filter(|_| text.parse::<IpAddr>().is_err()) else {
            self.err(ekey(field), format!("{text:?} is not a valid domain name"));
            return None;
        };
        let name: Arc<str> = Arc::from(name.trim_end_matches('.'));
        Some((
            field,
            if field == "cname" {
                EndpointTarget::Cname(name)
            } else {
                EndpointTarget::Host(name)
            },
        ))
    }
}

/// Lower-cases a domain name and makes it fully qualified (`Example.TEST` → `example.test.`).
pub fn normalize_name(name: &str) -> Option<String> {
    let n = name.trim().to_ascii_lowercase();
    let n = n.strip_suffix('.').unwrap_or(&n);
    if n.is_empty() || n.len() > 253 {
        return None;
    }
    for label in n.split('.') {
        if label.is_empty()
            || label.len() > 63
            || !label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'*')
        {
            return None;
        }
    }
    Some(format!("{n}."))
}

/// True when fully qualified `name` is `origin` or below it.
pub fn in_zone(name: &str, origin: &str) -> bool {
    name == origin || (name.ends_with(origin) && name[..name.len() - origin.len()].ends_with('.'))
}

fn parse_net(text: &str) -> Result<IpNet, String> {
    if let Ok(net) = text.parse::<IpNet>() {
        if net.trunc() != net {
            return Err(format!(
                "{text} has host bits set; did you mean {}?",
                net.trunc()
            ));
        }
        return Ok(net);
    }
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Ok(IpNet::from(ip));
    }
    Err(format!(
        "{text:?} is not a network such as \"198.51.100.0/24\" or \"2001:db8::/32\""
    ))
}

fn parse_host_port(text: &str) -> Result<ProbeTarget, String> {
    if let Ok(sa) = text.parse::<SocketAddr>() {
        return Ok(ProbeTarget {
            host: sa.ip().to_string(),
            port: sa.port(),
        });
    }
    let bad =
        || format!("{text:?} is not host:port (e.g. \"127.0.0.1:9001\" or \"origin.example:80\")");
    let (host, port) = text.rsplit_once(':').ok_or_else(bad)?;
    let port: u16 = port.parse().map_err(|_| bad())?;
    if host.is_empty() || port == 0 || host.contains(':') {
        return Err(bad());
    }
    Ok(ProbeTarget {
        host: host.to_string(),
        port,
    })
}
