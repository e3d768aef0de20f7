//! proxy: each backend's servers as the proxies' slots count them.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;

use super::{Series, counter, counters, gauges, histograms};
use crate::proxy::stats::BOUNDS_MS;
use crate::proxy::{Proxies, ServerStatus};

pub(super) struct Proxy {
    pub proxies: Arc<Proxies>,
}

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Proxy")
    }
}

impl Collector for Proxy {
    fn encode(&self, mut enc: DescriptorEncoder) -> fmt::Result {
        let backends = self.proxies.status();
        // Every server with its labels, once: a server removed by a reload
        // and still finishing requests may sit beside its re-added self, and
        // one series per label set is what the format allows.
        let mut seen = HashSet::new();
        let servers: Vec<(&str, String, &ServerStatus)> = backends
            .iter()
            .flat_map(|b| b.servers.iter().map(move |s| (b.name.as_str(), s)))
            .filter(|(b, s)| seen.insert((*b, s.address)))
            .map(|(b, s)| (b, s.address.to_string(), s))
            .collect();
        counters(
            &mut enc,
            "geosteer_proxy_requests",
            "Requests (or L4 connections) sent to a server.",
            servers.iter().map(|(b, a, s)| (labels(b, a), s.requests)),
        )?;
        counters(
            &mut enc,
            "geosteer_proxy_responses",
            "Server responses by status class.",
            servers.iter().flat_map(|(b, a, s)| {
                let [b, sv] = labels(b, a);
                s.responses
                    .iter()
                    .zip(["1xx", "2xx", "3xx", "4xx", "5xx"])
                    .map(move |(n, class)| ([b, sv, ("class", class)], *n))
            }),
        )?;
        counters(
            &mut enc,
            "geosteer_proxy_errors",
            "Failed requests (connect error, timeout, 5xx).",
            servers.iter().map(|(b, a, s)| (labels(b, a), s.errors)),
        )?;
        gauges(
            &mut enc,
            "geosteer_proxy_in_flight",
            "Requests in flight.",
            servers.iter().map(|(b, a, s)| (labels(b, a), s.in_flight)),
        )?;
        gauges(
            &mut enc,
            "geosteer_proxy_idle_connections",
            "Keep-alive connections to the server waiting in the pool.",
            servers
                .iter()
                .map(|(b, a, s)| (labels(b, a), s.idle_connections as u64)),
        )?;
        gauges(
            &mut enc,
            "geosteer_proxy_server_up",
            "1 when the server takes new requests (up, not ejected, not draining); state says which.",
            servers.iter().map(|(b, a, s)| {
                let [b, sv] = labels(b, a);
                ([b, sv, ("state", s.state)], u64::from(s.state == "up"))
            }),
        )?;
        histograms(
            &mut enc,
            "geosteer_proxy_request_duration_seconds",
            "Time from sending a request to the server to its response head (L4: connection lifetime).",
            servers.iter().map(|(b, a, s)| Series {
                labels: labels(b, a),
                buckets: BOUNDS_MS
                    .iter()
                    .map(|ms| *ms as f64 / 1000.0)
                    .chain([f64::INFINITY])
                    .zip(s.latency.counts.iter().copied())
                    .collect(),
                sum: s.latency.sum.as_secs_f64(),
            }),
        )?;
        counters(
            &mut enc,
            "geosteer_proxy_rate_limited",
            "Requests answered 429 by rate limiting, by backend.",
            backends
                .iter()
                .map(|b| ([("backend", b.name.as_str())], b.rate_limited)),
        )?;
        counter(
            &mut enc,
            "geosteer_proxy_observations_dropped",
            "Traffic outcomes dropped because the health writer's queue was full.",
            self.proxies.observations_dropped(),
        )
    }
}

/// The labels of one server's series.
fn labels<'a>(backend: &'a str, server: &'a str) -> [(&'static str, &'a str); 2] {
    [("backend", backend), ("server", server)]
}
