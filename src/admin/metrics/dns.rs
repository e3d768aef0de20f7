//! dns: the data path's query counters, read from their atomics at scrape time.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;

use super::{counter, counters};
use crate::metrics::Registry;

/// Queries by balanced name (or `other`), type and rcode; picks; fail-open.
pub(super) struct Dns {
    pub registry: Arc<Registry>,
}

impl fmt::Debug for Dns {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Dns")
    }
}

impl Collector for Dns {
    fn encode(&self, mut enc: DescriptorEncoder) -> fmt::Result {
        let names = self.registry.names();
        counters(
            &mut enc,
            "geosteer_dns_queries",
            "DNS queries answered, by balanced name (or \"other\"), type and rcode.",
            names.iter().flat_map(|(name, c)| {
                c.nonzero()
                    .into_iter()
                    .map(move |(t, r, v)| ([("name", name.as_str()), ("type", t), ("rcode", r)], v))
            }),
        )?;
        let picks = self.registry.picks();
        counters(
            &mut enc,
            "geosteer_dns_pool_picks",
            "Answers by balanced name and chosen pool.",
            picks
                .iter()
                .filter(|(_, v)| *v > 0)
                .map(|((name, pool), v)| ([("name", name.as_str()), ("pool", pool.as_str())], *v)),
        )?;
        let rrl = &self.registry.rrl;
        counter(
            &mut enc,
            "geosteer_dns_rrl_dropped",
            "UDP responses dropped by response rate limiting.",
            rrl.dropped.load(Ordering::Relaxed),
        )?;
        counter(
            &mut enc,
            "geosteer_dns_rrl_slipped",
            "UDP responses sent truncated (empty, TC set) by response rate limiting.",
            rrl.slipped.load(Ordering::Relaxed),
        )?;
        let cookies = &self.registry.cookies;
        counters(
            &mut enc,
            "geosteer_dns_cookies",
            "Queries answered, by the DNS cookie they carried: none, client_only (a client cookie alone), valid (a server cookie of ours) or bad (a server cookie we did not make, or too old).",
            crate::dns::cookie::Verdict::ALL.map(|v| {
                (
                    [("result", v.as_str())],
                    v.counter(cookies).load(Ordering::Relaxed),
                )
            }),
        )?;
        counters(
            &mut enc,
            "geosteer_dns_cookie_required",
            "UDP queries without a valid server cookie over server.require_cookie_over, by answer: badcookie (to a client cookie) or truncated (no cookie).",
            [
                (
                    [("answer", "badcookie")],
                    cookies.badcookie.load(Ordering::Relaxed),
                ),
                (
                    [("answer", "truncated")],
                    cookies.truncated.load(Ordering::Relaxed),
                ),
            ],
        )?;
        let t = &self.registry.transfers;
        let load = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
        counters(
            &mut enc,
            "geosteer_dns_transfers",
            "Zone transfers sent, by kind (AXFR; IXFR incremental, whole zone or SOA alone).",
            [
                ([("kind", "axfr")], load(&t.axfr)),
                ([("kind", "ixfr")], load(&t.ixfr_incremental)),
                ([("kind", "ixfr_full")], load(&t.ixfr_full)),
                ([("kind", "ixfr_up_to_date")], load(&t.ixfr_up_to_date)),
            ],
        )?;
        counter(
            &mut enc,
            "geosteer_dns_transfers_refused",
            "Transfer requests refused (address, key, zone or TSIG check).",
            load(&t.refused),
        )?;
        counters(
            &mut enc,
            "geosteer_dns_notify",
            "NOTIFYs to secondaries, by outcome.",
            [
                ([("result", "answered")], load(&t.notify_answered)),
                ([("result", "failed")], load(&t.notify_failed)),
            ],
        )?;
        counters(
            &mut enc,
            "geosteer_dns_rejected",
            "Queries rejected for what they are, by reason: opcode (NOTIMP), class (REFUSED), ecs, nxname and cookie (FORMERR).",
            crate::dns::rejected::totals().map(|(r, v)| ([("reason", r.as_str())], v)),
        )?;
        counters(
            &mut enc,
            "geosteer_dns_fail_open",
            "Answers given because no pool was usable for the queried family, by on_all_down mode.",
            names.iter().flat_map(|(name, c)| {
                crate::config::OnAllDown::ALL
                    .into_iter()
                    .filter_map(move |m| {
                        let v = c.fail_open[m.index()].load(Ordering::Relaxed);
                        (v > 0).then_some(([("name", name.as_str()), ("mode", m.as_str())], v))
                    })
            }),
        )
    }
}
