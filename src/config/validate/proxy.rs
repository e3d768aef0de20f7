//! The `[[proxy]]` listeners and `[backends.NAME]` of a config: the proxy
//! half of the validator.

use std::collections::HashMap;

use super::super::raw::*;
use super::super::*;
use super::Validator;

impl Validator<'_> {
    pub(super) fn backend(
        &mut self,
        name: &str,
        b: &RawBackend,
        monitors: &HashMap<&str, MonitorId>,
        pools: &HashMap<&str, PoolId>,
    ) -> BackendConfig {
        let key = |k: &str| format!("backends.{name}.{k}");
        let algorithm = match b.algorithm.as_deref().unwrap_or("round_robin") {
            "round_robin" => Algorithm::RoundRobin,
            "weighted_round_robin" => Algorithm::WeightedRoundRobin,
            "least_connections" => Algorithm::LeastConnections,
            "ip_hash" => Algorithm::IpHash,
            "power_of_two" => Algorithm::PowerOfTwo,
            other => {
                self.err(key("algorithm"), format!("unknown algorithm {other:?}; expected round_robin, weighted_round_robin, least_connections, ip_hash or power_of_two"));
                Algorithm::RoundRobin
            }
        };
        if b.servers.is_empty() {
            self.err(key("servers"), "a backend needs at least one server");
        }
        let mut servers: Vec<ServerEntry> = Vec::new();
        for (i, s) in b.servers.iter().enumerate() {
            let k = format!("backends.{name}.servers[{i}].address");
            if let Some(address) = self.socket_addr(&k, &s.address) {
                if servers.iter().any(|x| x.address == address) {
                    self.err(k, format!("{address} is listed twice"));
                }
                let weight = s.weight.unwrap_or(1);
                if weight == 0 {
                    self.err(
                        format!("backends.{name}.servers[{i}].weight"),
                        "must be at least 1",
                    );
                }
                servers.push(ServerEntry { address, weight });
            }
        }
        let monitor = b.monitor.as_deref().and_then(|m| match monitors.get(m) {
            Some(id) => Some(*id),
            None => {
                self.err(key("monitor"), format!("no monitor named {m:?}"));
                None
            }
        });
        let pool = b.pool.as_deref().and_then(|p| match pools.get(p) {
            Some(id) => Some(*id),
            None => {
                self.err(key("pool"), format!("no pool named {p:?}"));
                None
            }
        });
        BackendConfig {
            name: name.to_string(),
            algorithm,
            servers,
            monitor,
            pool,
            drain_timeout: self.duration(
                &key("drain_timeout"),
                b.drain_timeout.as_deref(),
                Duration::from_secs(30),
            ),
            connect_timeout: self.duration(
                &key("connect_timeout"),
                b.connect_timeout.as_deref(),
                Duration::from_secs(2),
            ),
            request_timeout: self.duration(
                &key("request_timeout"),
                b.request_timeout.as_deref(),
                Duration::from_secs(60),
            ),
            retries: b.retries.unwrap_or(1),
            max_fails: b.max_fails.unwrap_or(5),
            fail_timeout: self.duration(
                &key("fail_timeout"),
                b.fail_timeout.as_deref(),
                Duration::from_secs(10),
            ),
        }
    }

    pub(super) fn proxy(
        &mut self,
        i: usize,
        p: &RawProxy,
        backends: &HashMap<&str, BackendId>,
    ) -> Option<ProxyConfig> {
        let key = |k: &str| format!("proxy[{i}].{k}");
        let listen = self.socket_addr(&key("listen"), &p.listen)?;
        let mode = match p.mode.as_str() {
            "http" => ProxyMode::Http,
            "tcp" => ProxyMode::Tcp,
            other => {
                self.err(
                    key("mode"),
                    format!("unknown mode {other:?}; expected http or tcp"),
                );
                return None;
            }
        };
        let mut routes = Vec::new();
        let mut backend = None;
        match mode {
            ProxyMode::Http => {
                if p.routes.is_empty() {
                    self.err(key("routes"), "an http proxy needs at least one route");
                }
                if p.backend.is_some() {
                    self.err(key("backend"), "only for tcp mode; http mode uses routes");
                }
                for (j, r) in p.routes.iter().enumerate() {
                    let rk = |k: &str| format!("proxy[{i}].routes[{j}].{k}");
                    let Some(b) = backends.get(r.backend.as_str()).copied() else {
                        self.err(rk("backend"), format!("no backend named {:?}", r.backend));
                        continue;
                    };
                    let path_prefix = r.path_prefix.clone().unwrap_or_else(|| "/".into());
                    if !path_prefix.starts_with('/') {
                        self.err(rk("path_prefix"), "must start with '/'");
                    }
                    let rate_limit = r.rate_limit.as_ref().and_then(|rl| {
                        if !(rl.per_client > 0.0 && rl.per_client.is_finite()) {
                            self.err(
                                rk("rate_limit.per_client"),
                                "must be a positive number of requests per second",
                            );
                            return None;
                        }
                        let burst = rl.burst.unwrap_or(rl.per_client.ceil() as u32).max(1);
                        Some(RateLimitConfig {
                            per_client: rl.per_client,
                            burst,
                        })
                    });
                    routes.push(RouteConfig {
                        host: r.host.as_ref().map(|h| h.to_ascii_lowercase()),
                        path_prefix,
                        backend: b,
                        rate_limit,
                    });
                }
            }
            ProxyMode::Tcp => {
                if !p.routes.is_empty() {
                    self.err(
                        key("routes"),
                        "only for http mode; tcp mode uses one backend",
                    );
                }
                if p.tls.is_some() {
                    self.err(key("tls"), "TLS termination is only for http mode");
                }
                match p.backend.as_deref() {
                    None => self.err(key("backend"), "a tcp proxy needs a backend"),
                    Some(b) => match backends.get(b) {
                        Some(id) => backend = Some(*id),
                        None => self.err(key("backend"), format!("no backend named {b:?}")),
                    },
                }
            }
        }
        let tls = p.tls.as_ref().map(|t| TlsConfig {
            cert: self.path(&t.cert),
            key: self.path(&t.key),
        });
        Some(ProxyConfig {
            listen,
            mode,
            routes,
            backend,
            tls,
        })
    }
}
