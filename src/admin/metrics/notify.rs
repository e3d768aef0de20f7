//! notify: the webhook receivers' deliveries (`crate::notify`), one series
//! per receiver of the serving config.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;

use super::{counters, gauges};
use crate::metrics::Registry;

pub(super) struct Notify {
    pub registry: Arc<Registry>,
}

impl fmt::Debug for Notify {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Notify")
    }
}

impl Collector for Notify {
    fn encode(&self, mut enc: DescriptorEncoder) -> fmt::Result {
        let all = self.registry.notify();
        let per = |f: fn(&crate::metrics::NotifyCounters) -> u64| {
            all.iter()
                .map(move |(name, c)| ([("receiver", name.as_str())], f(c)))
                .collect::<Vec<_>>()
        };
        counters(
            &mut enc,
            "geosteer_notify_sent",
            "Events delivered to a webhook receiver (a 2xx answer to the POST that carried them).",
            per(|c| c.sent.load(Ordering::Relaxed)),
        )?;
        counters(
            &mut enc,
            "geosteer_notify_failed",
            "POSTs to a webhook receiver that failed (no connection, no answer within timeout, not 2xx); each retry counts.",
            per(|c| c.failed.load(Ordering::Relaxed)),
        )?;
        let dropped: Vec<_> = all
            .iter()
            .flat_map(|(name, c)| {
                [
                    ("overflow", &c.dropped_overflow),
                    ("expired", &c.dropped_expired),
                    ("rejected", &c.dropped_rejected),
                    ("reload", &c.dropped_reload),
                ]
                .map(|(reason, v)| {
                    (
                        [("receiver", name.as_str()), ("reason", reason)],
                        v.load(Ordering::Relaxed),
                    )
                })
            })
            .collect();
        counters(
            &mut enc,
            "geosteer_notify_dropped",
            "Events a webhook receiver never got: its queue was full (overflow), retry_for ran out (expired), it refused them with a 4xx (rejected), a reload removed or changed it (reload).",
            dropped,
        )?;
        gauges(
            &mut enc,
            "geosteer_notify_queue",
            "Events waiting for a webhook receiver, the batch being delivered included.",
            per(|c| c.queued.load(Ordering::Relaxed))
                .into_iter()
                .map(|(l, v)| (l, v as i64)),
        )
    }
}
