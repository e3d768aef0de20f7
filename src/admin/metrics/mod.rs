//! metrics: `GET /metrics`, the Prometheus text format (0.0.4) from one
//! `prometheus-client` registry. Nothing here is counted: every figure lives
//! where it is kept (the data path's relaxed atomics in `crate::metrics`, the
//! health snapshot, the proxies' slots) and a [`Collector`] reads it at scrape
//! time, so a DNS query never takes a lock or allocates for metrics.
//!
//! - `dns`: queries, pool picks and fail-open answers by balanced name.
//! - `health`: pool and endpoint states, probe results and latency, the fleet link.
//! - `proxy`: proxy requests, status classes, latency, in-flight, rate limits.
//! - `config`: the reload family and the build's version and commit.
//! - `notify`: webhook deliveries per receiver.
//!
//! Label sets are bounded by the config (balanced names, pools, endpoints,
//! backends, servers) and fixed enums; there are no per-client labels.
//!
//! [`Collector`]: prometheus_client::collector::Collector

mod config;
mod dns;
mod health;
mod notify;
mod proxy;

use std::fmt;
use std::sync::Arc;

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::prometheus_text::{self, CONTENT_TYPE};
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeGaugeValue, EncodeLabelSet, EncodeMetric, NoLabelSet,
};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use super::AdminState;

/// The one registry `/metrics` encodes: a collector per source of figures.
pub(super) fn registry(st: &AdminState) -> Registry {
    let mut r = Registry::default();
    r.register_collector(Box::new(dns::Dns {
        registry: st.registry.clone(),
    }));
    r.register_collector(Box::new(health::Health {
        shared: st.shared.clone(),
        registry: st.registry.clone(),
    }));
    r.register_collector(Box::new(proxy::Proxy {
        proxies: st.control.proxies.clone(),
    }));
    r.register_collector(Box::new(config::Config {
        control: st.control.clone(),
    }));
    r.register_collector(Box::new(notify::Notify {
        registry: st.registry.clone(),
    }));
    r
}

/// `GET /metrics`.
pub(super) async fn render(registry: Arc<Registry>) -> Response {
    let mut out = String::with_capacity(16 * 1024);
    match prometheus_text::encode(&mut out, &registry) {
        Ok(()) => ([(header::CONTENT_TYPE, CONTENT_TYPE)], out).into_response(),
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "encoding metrics failed").into_response(),
    }
}

// === encoding helpers shared by the collectors ===

/// A counter family. `name` is without `_total`: the encoder appends it.
fn counters<L: EncodeLabelSet>(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    samples: impl IntoIterator<Item = (L, u64)>,
) -> fmt::Result {
    let mut m = enc.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (labels, v) in samples {
        ConstCounter::new(v).encode(m.encode_family(&labels)?)?;
    }
    Ok(())
}

/// A counter without labels. `name` is without `_total`.
fn counter(enc: &mut DescriptorEncoder, name: &str, help: &str, v: u64) -> fmt::Result {
    let m = enc.encode_descriptor(name, help, None, MetricType::Counter)?;
    ConstCounter::new(v).encode(m)
}

/// A gauge family.
fn gauges<L: EncodeLabelSet, V: EncodeGaugeValue>(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    samples: impl IntoIterator<Item = (L, V)>,
) -> fmt::Result {
    let mut m = enc.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, v) in samples {
        ConstGauge::new(v).encode(m.encode_family(&labels)?)?;
    }
    Ok(())
}

/// A gauge without labels.
fn gauge<V: EncodeGaugeValue>(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    v: V,
) -> fmt::Result {
    let m = enc.encode_descriptor(name, help, None, MetricType::Gauge)?;
    ConstGauge::new(v).encode(m)
}

/// One histogram series: per-bucket (not cumulative) counts by upper bound,
/// the last bound being `+Inf`.
struct Series<L> {
    labels: L,
    buckets: Vec<(f64, u64)>,
    sum: f64,
}

/// A histogram family.
fn histograms<L: EncodeLabelSet>(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    series: impl IntoIterator<Item = Series<L>>,
) -> fmt::Result {
    let mut m = enc.encode_descriptor(name, help, None, MetricType::Histogram)?;
    for s in series {
        let count = s.buckets.iter().map(|(_, n)| n).sum();
        m.encode_family(&s.labels)?
            .encode_histogram::<NoLabelSet>(s.sum, count, &s.buckets, None)?;
    }
    Ok(())
}
