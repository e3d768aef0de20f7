//! body: what a receiver is POSTed, in each `format`. Pure: the events and
//! the node name in, bytes out.
//!
//! - `json`: `{"version": 1, "node", "receiver", "batch", "events": [...]}`,
//!   each event exactly as `/api/v1/events` shows it. `batch` counts this
//!   receiver's POSTs since start; a retried POST keeps its number, so a
//!   receiver that saw it already can skip it.
//! - `alertmanager`: the body of Alertmanager's `POST /api/v2/alerts`: an
//!   array of alerts. Something going down fires an alert (no `endsAt`:
//!   the receiver's worker sends the firing ones again every minute, as
//!   Alertmanager expects of a client); its return resolves it (`endsAt` =
//!   the event's time). Events that are no up/down change (a weight) send
//!   nothing in this format.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::events::{Event, Kind};

/// The JSON envelope's version: a field removed or changing meaning makes it 2.
pub(super) const VERSION: u32 = 1;

#[derive(Serialize)]
struct Envelope<'a> {
    version: u32,
    node: &'a str,
    receiver: &'a str,
    batch: u64,
    events: &'a [Event],
}

/// The `json` body of one batch.
pub(super) fn json(node: &str, receiver: &str, batch: u64, events: &[Event]) -> Vec<u8> {
    serde_json::to_vec(&Envelope {
        version: VERSION,
        node,
        receiver,
        batch,
        events,
    })
    .unwrap_or_default()
}

/// One Alertmanager v2 alert (`postableAlert`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Alert {
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub starts_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ends_at: Option<String>,
}

impl Alert {
    /// Resolved alerts carry `endsAt`.
    pub fn firing(&self) -> bool {
        self.ends_at.is_none()
    }
}

/// How long an alert for a one-off event (no state that returns) shows
/// in Alertmanager: its `endsAt` is this far after the event.
const ONE_EVENT_ALERT_MS: u64 = 3_600_000;

/// The alerts `events` fire and resolve, in order.
pub fn alerts(node: &str, events: &[Event]) -> Vec<Alert> {
    let mut out = Vec::new();
    for e in events {
        // (alertname, fires) pairs: which alerts this event fires or resolves.
        let changes: &[(&str, bool)] = match (e.kind, e.state.as_str()) {
            (Kind::Endpoint, "down") => &[("GeosteerEndpointDown", true)],
            (Kind::Endpoint, _) => &[("GeosteerEndpointDown", false)],
            (Kind::Pool, "down") => &[("GeosteerPoolDegraded", false), ("GeosteerPoolDown", true)],
            (Kind::Pool, "degraded") => {
                &[("GeosteerPoolDown", false), ("GeosteerPoolDegraded", true)]
            }
            (Kind::Pool, _) => &[("GeosteerPoolDown", false), ("GeosteerPoolDegraded", false)],
            (Kind::Drain, "drained") => &[("GeosteerDrained", true)],
            (Kind::Drain, _) => &[("GeosteerDrained", false)],
            (Kind::Server, "up") => &[("GeosteerServerDown", false)],
            (Kind::Server, _) => &[("GeosteerServerDown", true)],
            (Kind::Reload, "failed") => &[("GeosteerReloadFailed", true)],
            (Kind::Reload, _) => &[("GeosteerReloadFailed", false)],
            (Kind::FailOpen, "fail_open") => &[("GeosteerFailOpen", true)],
            (Kind::FailOpen, _) => &[("GeosteerFailOpen", false)],
            // An operator's override is an info alert while it lasts.
            (Kind::Override, "override up" | "override down") => &[("GeosteerOverridden", true)],
            (Kind::Override, _) => &[("GeosteerOverridden", false)],
            (Kind::Resolve, "stale" | "expired") => &[("GeosteerResolveFailing", true)],
            (Kind::Resolve, _) => &[("GeosteerResolveFailing", false)],
            // Not an up/down state: nothing to alert on.
            (Kind::Weight, _) => &[],
            // etcd lost the fleet's data: one event, no state to return
            // from, so the alert carries its own end (an hour on), and is
            // not sent again.
            (Kind::Fleet, "etcd_data_lost") => &[("GeosteerEtcdDataLost", true)],
            (Kind::Fleet, _) => &[],
        };
        for &(name, fires) in changes {
            // A fail-open event lists its names: one alert per name.
            let names: Vec<Option<&str>> = if e.kind == Kind::FailOpen && !e.names.is_empty() {
                e.names.iter().map(|n| Some(n.as_str())).collect()
            } else {
                vec![None]
            };
            for balanced in names {
                let mut labels = BTreeMap::new();
                labels.insert("alertname".to_string(), name.to_string());
                let severity = match name {
                    "GeosteerDrained" | "GeosteerOverridden" => "info",
                    "GeosteerPoolDown" | "GeosteerFailOpen" => "critical",
                    _ => "warning",
                };
                labels.insert("severity".into(), severity.into());
                if !node.is_empty() {
                    labels.insert("node".into(), node.into());
                }
                for (k, v) in [
                    ("pool", &e.pool),
                    ("endpoint", &e.endpoint),
                    ("backend", &e.backend),
                ] {
                    if let Some(v) = v {
                        labels.insert(k.into(), v.clone());
                    }
                }
                if let Some(n) = balanced {
                    labels.insert("name".into(), n.trim_end_matches('.').into());
                }
                let mut annotations = BTreeMap::new();
                annotations.insert("summary".to_string(), e.summary());
                annotations.insert("description".to_string(), e.reason.clone());
                let at = rfc3339(e.at_unix_ms);
                let ends_at = if name == "GeosteerEtcdDataLost" {
                    Some(rfc3339(e.at_unix_ms.saturating_add(ONE_EVENT_ALERT_MS)))
                } else {
                    (!fires).then_some(at.clone())
                };
                out.push(Alert {
                    labels,
                    annotations,
                    starts_at: at,
                    ends_at,
                });
            }
        }
    }
    out
}

/// The `alertmanager` body of `alerts`.
pub(super) fn alertmanager(alerts: &[Alert]) -> Vec<u8> {
    serde_json::to_vec(alerts).unwrap_or_default()
}

/// `2026-12-06T03:10:00.123Z`.
fn rfc3339(unix_ms: u64) -> String {
    let t = SystemTime::UNIX_EPOCH + Duration::from_millis(unix_ms);
    humantime::format_rfc3339_millis(t).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(at: u64, state: &str) -> Event {
        let mut e = Event::drain(at, "eu", "192.0.2.1", state, "x", "probes".into());
        e.kind = Kind::Endpoint;
        e
    }

    #[test]
    fn the_json_envelope_carries_the_events_as_the_api_shows_them() {
        let events = [endpoint(1, "down")];
        let v: serde_json::Value =
            serde_json::from_slice(&json("fra1", "ops", 7, &events)).expect("json");
        assert_eq!(v["version"], 1);
        assert_eq!(v["node"], "fra1");
        assert_eq!(v["receiver"], "ops");
        assert_eq!(v["batch"], 7);
        assert_eq!(
            v["events"][0],
            serde_json::to_value(&events[0]).expect("event")
        );
    }

    #[test]
    fn down_fires_and_up_resolves_the_same_alert() {
        let a = alerts("fra1", &[endpoint(1_000, "down"), endpoint(61_500, "up")]);
        assert_eq!(a.len(), 2);
        assert_eq!(a[0].labels, a[1].labels, "one alert: same labels");
        assert_eq!(a[0].labels["alertname"], "GeosteerEndpointDown");
        assert_eq!(a[0].labels["pool"], "eu");
        assert_eq!(a[0].labels["endpoint"], "192.0.2.1");
        assert_eq!(a[0].labels["node"], "fra1");
        assert!(a[0].firing());
        assert_eq!(a[0].starts_at, "1970-01-01T00:00:01.000Z");
        assert_eq!(a[1].ends_at.as_deref(), Some("1970-01-01T00:01:01.500Z"));
        let body: serde_json::Value = serde_json::from_slice(&alertmanager(&a)).expect("json");
        assert!(body[0].get("endsAt").is_none());
        assert_eq!(body[1]["endsAt"], "1970-01-01T00:01:01.500Z");
        assert_eq!(body[0]["startsAt"], "1970-01-01T00:00:01.000Z");
    }

    #[test]
    fn a_pool_going_from_degraded_to_down_swaps_its_alerts() {
        let mut e = Event::reload_failed(5, "x");
        e.kind = Kind::Pool;
        e.pool = Some("eu".into());
        e.state = "down".into();
        let a = alerts("", &[e]);
        let got: Vec<(&str, bool)> = a
            .iter()
            .map(|a| (a.labels["alertname"].as_str(), a.firing()))
            .collect();
        assert_eq!(
            got,
            [("GeosteerPoolDegraded", false), ("GeosteerPoolDown", true)]
        );
        assert!(!a[0].labels.contains_key("node"));
    }

    #[test]
    fn a_weight_change_is_no_alert() {
        let mut e = endpoint(1, "weight");
        e.kind = Kind::Weight;
        assert!(alerts("n", &[e]).is_empty());
    }
}
