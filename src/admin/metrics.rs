//! metrics: `GET /metrics` in the Prometheus text format. Query counters come
//! from the data path's atomics, states from the current snapshot, probe and
//! proxy figures from the health view and the proxies' status.

use std::fmt::Write;
use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::AdminState;
use crate::health::{EndpointState, PoolState};
use crate::metrics::PROBE_BUCKETS;

pub async fn render(State(st): State<AdminState>) -> Response {
    let mut out = String::with_capacity(4096);
    let snap = st.shared.load_full();

    out.push_str("# HELP geosteer_dns_queries_total DNS queries answered, by balanced name (or \"other\"), type and rcode.\n# TYPE geosteer_dns_queries_total counter\n");
    for (name, c) in st.registry.names() {
        for (t, r, v) in c.nonzero() {
            let _ = writeln!(
                out,
                "geosteer_dns_queries_total{{name=\"{}\",type=\"{t}\",rcode=\"{r}\"}} {v}",
                esc(&name)
            );
        }
    }
    out.push_str("# HELP geosteer_dns_pool_picks_total Answers by balanced name and chosen pool.\n# TYPE geosteer_dns_pool_picks_total counter\n");
    for ((name, pool), v) in st.registry.picks() {
        if v > 0 {
            let _ = writeln!(
                out,
                "geosteer_dns_pool_picks_total{{name=\"{}\",pool=\"{}\"}} {v}",
                esc(&name),
                esc(&pool)
            );
        }
    }
    out.push_str("# HELP geosteer_dns_fail_open_total Answers given from the fallback pool (or none) because no pool was usable.\n# TYPE geosteer_dns_fail_open_total counter\n");
    for (name, c) in st.registry.names() {
        let v = c.fail_open.load(std::sync::atomic::Ordering::Relaxed);
        if v > 0 {
            let _ = writeln!(
                out,
                "geosteer_dns_fail_open_total{{name=\"{}\"}} {v}",
                esc(&name)
            );
        }
    }

    out.push_str("# HELP geosteer_pool_state Pool state: 1 for the current state.\n# TYPE geosteer_pool_state gauge\n");
    out.push_str("# HELP geosteer_pool_error_rate Pool error rate over its window.\n# TYPE geosteer_pool_error_rate gauge\n");
    out.push_str("# HELP geosteer_pool_latency_seconds Pool smoothed latency.\n# TYPE geosteer_pool_latency_seconds gauge\n");
    out.push_str("# HELP geosteer_endpoint_up Endpoint usable in answers (up and not draining).\n# TYPE geosteer_endpoint_up gauge\n");
    out.push_str("# HELP geosteer_endpoint_latency_seconds Endpoint smoothed probe latency.\n# TYPE geosteer_endpoint_latency_seconds gauge\n");
    for (i, p) in snap.config.pools.iter().enumerate() {
        let Some(h) = snap.health.pools.get(i) else {
            continue;
        };
        let pool = esc(&p.name);
        for s in [PoolState::Healthy, PoolState::Degraded, PoolState::Down] {
            let _ = writeln!(
                out,
                "geosteer_pool_state{{pool=\"{pool}\",state=\"{}\"}} {}",
                s.as_str(),
                u8::from(h.state == s)
            );
        }
        let _ = writeln!(
            out,
            "geosteer_pool_error_rate{{pool=\"{pool}\"}} {}",
            h.error_rate
        );
        if let Some(l) = h.latency {
            let _ = writeln!(
                out,
                "geosteer_pool_latency_seconds{{pool=\"{pool}\"}} {}",
                l.as_secs_f64()
            );
        }
        for (e, eh) in p.endpoints.iter().zip(&h.endpoints) {
            let _ = writeln!(
                out,
                "geosteer_endpoint_up{{pool=\"{pool}\",endpoint=\"{}\",state=\"{}\"}} {}",
                e.address,
                match eh.state {
                    EndpointState::Up => "up",
                    EndpointState::Down => "down",
                    EndpointState::Unknown => "unknown",
                },
                u8::from(eh.usable())
            );
            if let Some(l) = eh.latency {
                let _ = writeln!(
                    out,
                    "geosteer_endpoint_latency_seconds{{pool=\"{pool}\",endpoint=\"{}\"}} {}",
                    e.address,
                    l.as_secs_f64()
                );
            }
        }
    }
    out.push_str("# HELP geosteer_probe_results_total Probe results by pool, endpoint and outcome.\n# TYPE geosteer_probe_results_total counter\n");
    let probes = st.registry.probes();
    for ((pool, ep), c) in &probes {
        let (pool, ep) = (esc(pool), esc(ep));
        for (result, v) in [("ok", &c.ok), ("failed", &c.failed)] {
            let _ = writeln!(
                out,
                "geosteer_probe_results_total{{pool=\"{pool}\",endpoint=\"{ep}\",result=\"{result}\"}} {}",
                v.load(Ordering::Relaxed)
            );
        }
    }
    out.push_str("# HELP geosteer_probe_duration_seconds Probe latency.\n# TYPE geosteer_probe_duration_seconds histogram\n");
    for ((pool, ep), c) in &probes {
        let (pool, ep) = (esc(pool), esc(ep));
        for (i, bound) in PROBE_BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "geosteer_probe_duration_seconds_bucket{{pool=\"{pool}\",endpoint=\"{ep}\",le=\"{bound}\"}} {}",
                c.buckets[i].load(Ordering::Relaxed)
            );
        }
        let count = c.buckets[PROBE_BUCKETS.len()].load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "geosteer_probe_duration_seconds_bucket{{pool=\"{pool}\",endpoint=\"{ep}\",le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(
            out,
            "geosteer_probe_duration_seconds_sum{{pool=\"{pool}\",endpoint=\"{ep}\"}} {}",
            c.sum_micros.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(
            out,
            "geosteer_probe_duration_seconds_count{{pool=\"{pool}\",endpoint=\"{ep}\"}} {count}"
        );
    }
    let rrl = &st.registry.rrl;
    for (name, help, value) in [
        (
            "geosteer_dns_rrl_dropped_total",
            "UDP responses dropped by response rate limiting.",
            &rrl.dropped,
        ),
        (
            "geosteer_dns_rrl_slipped_total",
            "UDP responses sent truncated (empty, TC set) by response rate limiting.",
            &rrl.slipped,
        ),
    ] {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
            value.load(Ordering::Relaxed)
        );
    }
    if snap.config.cluster.is_some() {
        cluster(&mut out, &st.registry.cluster, &snap);
    }
    st.control.proxy_metrics(&mut out);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
        .into_response()
}

fn esc(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The fleet link: connection, vantages, what it wrote to etcd.
fn cluster(out: &mut String, c: &crate::cluster::ClusterCounters, snap: &crate::state::Snapshot) {
    let get = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    let fleet = snap.health.fleet.as_deref();
    let skew = crate::admin::cluster::view(snap).is_some_and(|v| v.config_skew);
    let rows: [(&str, &str, &str, u64); 8] = [
        (
            "geosteer_cluster_connected",
            "gauge",
            "1 while etcd answers this node.",
            get(&c.connected),
        ),
        (
            "geosteer_cluster_vantages",
            "gauge",
            "Fresh vantages whose verdicts count, this node included.",
            fleet.map_or(1, |f| f.vantages() as u64),
        ),
        (
            "geosteer_cluster_config_skew",
            "gauge",
            "1 when a fresh node runs a config whose hash differs from this node's.",
            u64::from(skew),
        ),
        (
            "geosteer_cluster_etcd_txns_total",
            "counter",
            "Write transactions sent to etcd (up to 128 puts and deletes each).",
            get(&c.txns),
        ),
        (
            "geosteer_cluster_etcd_puts_total",
            "counter",
            "Keys this node put in etcd (its verdicts, node record, drains).",
            get(&c.puts),
        ),
        (
            "geosteer_cluster_etcd_deletes_total",
            "counter",
            "Keys this node deleted in etcd.",
            get(&c.deletes),
        ),
        (
            "geosteer_cluster_etcd_keepalives_total",
            "counter",
            "Lease keep-alives sent to etcd.",
            get(&c.keepalives),
        ),
        (
            "geosteer_cluster_syncs_total",
            "counter",
            "Times the link to etcd was (re)established with a full read.",
            get(&c.syncs),
        ),
    ];
    for (name, kind, help, value) in rows {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
        );
    }
}
