//! notify: `[[notify]]`, the webhook receivers every recorded event is
//! POSTed to (the `notify` shell delivers them), and the event kinds a
//! receiver may ask for.

use std::time::Duration;

/// The event kinds a `[[notify]] events` list may name: the `kind` of the
/// events `/api/v1/events` shows (`events::Kind`, whose test holds the two
/// lists equal, so a new kind cannot be left out here).
pub const EVENT_KINDS: &[&str] = &[
    "endpoint",
    "pool",
    "drain",
    "weight",
    "override",
    "reload",
    "server",
    "fail_open",
    "fleet",
    "resolve",
];

/// What a receiver is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotifyFormat {
    /// geosteer's own envelope: `{"version", "node", "receiver", "batch",
    /// "events": [...]}`, the events as `/api/v1/events` shows them.
    Json,
    /// The body of Alertmanager's `POST /api/v2/alerts`: an array of alerts,
    /// firing when something goes down, resolved when it comes back.
    Alertmanager,
}

/// One `[[notify]]` receiver.
#[derive(Debug, Clone, PartialEq)]
pub struct NotifyConfig {
    /// The `receiver` label of its metrics and log lines: `name`, else the
    /// URL's host, port and path (never its query or credentials).
    pub name: String,
    /// `http://` or `https://`.
    pub url: String,
    /// The kinds delivered, from [`EVENT_KINDS`]; every kind when the
    /// config does not say.
    pub events: Vec<String>,
    /// Extra request headers (e.g. `Authorization`), in config order.
    pub headers: Vec<(String, String)>,
    /// One POST's time limit (connect, send, answer).
    pub timeout: Duration,
    /// How long a batch is retried (exponential backoff) before it is
    /// dropped and counted.
    pub retry_for: Duration,
    /// Events queued for this receiver at most; beyond that new ones are
    /// dropped and counted.
    pub queue: usize,
    pub format: NotifyFormat,
}

impl NotifyConfig {
    /// Whether events of `kind` (as [`EVENT_KINDS`] spells it) go to it.
    pub fn wants(&self, kind: &str) -> bool {
        self.events.iter().any(|k| k == kind)
    }
}
