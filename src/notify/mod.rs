//! notify: webhooks. Every event the event log records (`events`, what
//! `/api/v1/events` shows) is POSTed to each `[[notify]]` receiver that asks
//! for its kind, in order, once, as JSON or as Alertmanager alerts (`body`).
//!
//! One dispatcher task reads the log's feed ([`EventLog::subscribe`]) and
//! offers each event to every receiver's bounded queue without waiting (a
//! full queue drops the event and counts it). Each receiver has its own
//! task, which POSTs batches of up to [`MAX_BATCH`] queued events one after
//! another, retrying a failed POST with exponential backoff for
//! `retry_for`, then dropping the batch and counting it. So a slow or dead
//! receiver delays nothing but its own queue: not the health writer, not
//! DNS, not the other receivers.
//!
//! A reload applies the new `[[notify]]` list: receivers whose settings did
//! not change keep their queue; removed or changed ones stop (what was
//! queued for them is dropped and counted), new ones start.
//!
//! [`EventLog::subscribe`]: crate::events::EventLog::subscribe

mod body;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, mpsc};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, NotifyConfig, NotifyFormat};
use crate::events::Event;
use crate::metrics::{NotifyCounters, Registry};
use crate::state::Shared;

pub use body::{Alert, alerts};

/// Events in one POST at most.
pub const MAX_BATCH: usize = 100;
/// The first retry's wait; each next one doubles, up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How often the firing alerts go to an Alertmanager again (it resolves an
/// alert not re-sent within its `resolve_timeout`, 5 minutes by default).
const RESEND_FIRING: Duration = Duration::from_secs(60);
/// How often the dispatcher looks for a new `[[notify]]` list without an event.
const RECONFIGURE_EVERY: Duration = Duration::from_secs(1);

/// Runs the dispatcher until `shutdown`. `feed` is subscribed before the
/// first event can be recorded (at start-up), so none is missed.
pub async fn run(
    mut feed: broadcast::Receiver<Event>,
    shared: Arc<Shared>,
    registry: Arc<Registry>,
    node: String,
    shutdown: CancellationToken,
) {
    let mut d = Dispatcher {
        receivers: Vec::new(),
        config: None,
        registry,
        node,
    };
    d.reconfigure(&shared.load_full().config);
    let mut tick = tokio::time::interval(RECONFIGURE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tick.tick() => d.reconfigure(&shared.load_full().config),
            r = feed.recv() => match r {
                Ok(event) => {
                    // A reload's own event goes to the new list.
                    d.reconfigure(&shared.load_full().config);
                    d.offer(&event);
                }
                Err(RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "notify: the dispatcher fell behind the event log");
                    for r in &d.receivers {
                        r.counters.dropped_overflow.fetch_add(n, Ordering::Relaxed);
                    }
                }
                Err(RecvError::Closed) => break,
            },
        }
    }
    for r in d.receivers {
        r.stop.cancel();
    }
}

struct Dispatcher {
    receivers: Vec<Receiver>,
    /// The config the list was built from.
    config: Option<Arc<Config>>,
    registry: Arc<Registry>,
    node: String,
}

/// The dispatcher's side of one receiver.
struct Receiver {
    config: NotifyConfig,
    queue: mpsc::Sender<Event>,
    counters: Arc<NotifyCounters>,
    stop: CancellationToken,
}

impl Dispatcher {
    fn reconfigure(&mut self, config: &Arc<Config>) {
        if self.config.as_ref().is_some_and(|c| Arc::ptr_eq(c, config)) {
            return;
        }
        self.config = Some(config.clone());
        let same = self.receivers.len() == config.notify.len()
            && self
                .receivers
                .iter()
                .zip(&config.notify)
                .all(|(r, c)| r.config == *c);
        if same {
            return;
        }
        let names: Vec<String> = config.notify.iter().map(|n| n.name.clone()).collect();
        let counters = self.registry.set_notify(&names);
        let mut old = std::mem::take(&mut self.receivers);
        for (c, counters) in config.notify.iter().zip(counters) {
            match old.iter().position(|r| r.config == *c) {
                Some(i) => self.receivers.push(old.swap_remove(i)),
                None => self.receivers.push(start(c, counters, &self.node)),
            }
        }
        for r in old {
            r.stop.cancel();
        }
        tracing::info!(receivers = ?names, "notify: webhook receivers configured");
    }

    fn offer(&self, event: &Event) {
        for r in &self.receivers {
            if !r.config.wants(event.kind.as_str()) {
                continue;
            }
            // Counted before it can be taken (and uncounted), never after.
            r.counters.queued.fetch_add(1, Ordering::Relaxed);
            let sent = r.queue.try_send(event.clone());
            if sent.is_err() {
                r.counters.queued.fetch_sub(1, Ordering::Relaxed);
            }
            match sent {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => {
                    let n = r.counters.dropped_overflow.fetch_add(1, Ordering::Relaxed);
                    if n.is_power_of_two() || n == 0 {
                        tracing::warn!(receiver = %r.config.name, dropped = n + 1, "notify: queue full, event dropped");
                    }
                }
                // Its worker stopped (shutdown, or replaced by a reload).
                Err(mpsc::error::TrySendError::Closed(_)) => {}
            }
        }
    }
}

fn start(config: &NotifyConfig, counters: Arc<NotifyCounters>, node: &str) -> Receiver {
    let (tx, rx) = mpsc::channel(config.queue);
    let stop = CancellationToken::new();
    let worker = Worker {
        config: config.clone(),
        counters: counters.clone(),
        node: node.to_string(),
        client: client(config),
        batch: 0,
        firing: BTreeMap::new(),
    };
    tokio::spawn(worker.run(rx, stop.clone()));
    Receiver {
        config: config.clone(),
        queue: tx,
        counters,
        stop,
    }
}

fn client(config: &NotifyConfig) -> Result<reqwest::Client, String> {
    let mut headers = reqwest::header::HeaderMap::new();
    for (k, v) in &config.headers {
        let name = reqwest::header::HeaderName::from_bytes(k.as_bytes())
            .map_err(|e| format!("header {k}: {e}"))?;
        let mut value =
            reqwest::header::HeaderValue::from_str(v).map_err(|e| format!("header {k}: {e}"))?;
        value.set_sensitive(true);
        headers.insert(name, value);
    }
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(config.timeout)
        .connect_timeout(config.timeout)
        .default_headers(headers)
        .user_agent(concat!("geosteer/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| e.to_string())
}

/// Why a POST failed.
enum Failure {
    /// Worth trying again: no connection, no answer in time, 5xx, 408, 429.
    Transient(String),
    /// The receiver refused the body (another 4xx): trying again won't help.
    Rejected(String),
}

/// One receiver's delivery task.
struct Worker {
    config: NotifyConfig,
    counters: Arc<NotifyCounters>,
    node: String,
    client: Result<reqwest::Client, String>,
    /// POSTs made (the JSON envelope's `batch`).
    batch: u64,
    /// Alertmanager format: the alerts firing now, by their labels.
    firing: BTreeMap<Vec<(String, String)>, Alert>,
}

impl Worker {
    async fn run(mut self, mut rx: mpsc::Receiver<Event>, stop: CancellationToken) {
        let mut resend = tokio::time::interval(RESEND_FIRING);
        resend.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        resend.tick().await;
        loop {
            let first = tokio::select! {
                _ = stop.cancelled() => break,
                _ = resend.tick(), if !self.firing.is_empty() => {
                    let again: Vec<Alert> = self.firing.values().cloned().collect();
                    // Best effort: the next minute sends them again anyway.
                    let _ = self.post(body::alertmanager(&again)).await;
                    continue;
                }
                e = rx.recv() => match e {
                    Some(e) => e,
                    None => break,
                },
            };
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(e) => batch.push(e),
                    Err(_) => break,
                }
            }
            let n = batch.len() as u64;
            let delivered = tokio::select! {
                _ = stop.cancelled() => None,
                d = self.deliver(&batch) => Some(d),
            };
            self.counters.queued.fetch_sub(n, Ordering::Relaxed);
            match delivered {
                Some(Ok(())) => add(&self.counters.sent, n),
                Some(Err(Failure::Rejected(why))) => {
                    add(&self.counters.dropped_rejected, n);
                    tracing::warn!(receiver = %self.config.name, events = n, "notify: the receiver refused the events: {why}");
                }
                Some(Err(Failure::Transient(why))) => {
                    add(&self.counters.dropped_expired, n);
                    tracing::warn!(receiver = %self.config.name, events = n, retry_for = ?self.config.retry_for, "notify: events dropped after retrying: {why}");
                }
                None => {
                    add(&self.counters.dropped_reload, n);
                    break;
                }
            }
        }
        // Stopped: what is still queued goes, counted.
        rx.close();
        let mut left = 0;
        while rx.try_recv().is_ok() {
            left += 1;
        }
        self.counters.queued.fetch_sub(left, Ordering::Relaxed);
        add(&self.counters.dropped_reload, left);
    }

    /// POSTs one batch, retrying for `retry_for`.
    async fn deliver(&mut self, batch: &[Event]) -> Result<(), Failure> {
        self.batch += 1;
        let body = match self.config.format {
            NotifyFormat::Json => body::json(&self.node, &self.config.name, self.batch, batch),
            NotifyFormat::Alertmanager => {
                let alerts = body::alerts(&self.node, batch);
                for a in &alerts {
                    let key: Vec<(String, String)> = a
                        .labels
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect();
                    if a.firing() {
                        self.firing.insert(key, a.clone());
                    } else {
                        self.firing.remove(&key);
                    }
                }
                if alerts.is_empty() {
                    return Ok(());
                }
                body::alertmanager(&alerts)
            }
        };
        let this = &*self;
        retrying(this.config.retry_for, move || this.post(body.clone())).await
    }

    /// One POST; a failure is counted.
    async fn post(&self, body: Vec<u8>) -> Result<(), Failure> {
        let result = match &self.client {
            Err(e) => Err(Failure::Rejected(format!("cannot make a client: {e}"))),
            Ok(client) => match client
                .post(&self.config.url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body)
                .send()
                .await
            {
                Err(e) => Err(Failure::Transient(crate::probe::http::reason(&e))),
                Ok(resp) => {
                    let status = resp.status();
                    if status.is_success() {
                        Ok(())
                    } else {
                        let text = body_start(resp, ERROR_BODY_BYTES).await;
                        let why = format!(
                            "HTTP {status}: {}",
                            text.chars().take(200).collect::<String>()
                        );
                        if status.is_client_error()
                            && status != reqwest::StatusCode::REQUEST_TIMEOUT
                            && status != reqwest::StatusCode::TOO_MANY_REQUESTS
                        {
                            Err(Failure::Rejected(why))
                        } else {
                            Err(Failure::Transient(why))
                        }
                    }
                }
            },
        };
        if let Err(Failure::Transient(why) | Failure::Rejected(why)) = &result {
            add(&self.counters.failed, 1);
            tracing::debug!(receiver = %self.config.name, "notify: POST failed: {why}");
        }
        result
    }
}

/// Calls `post` until it succeeds, is refused, or `retry_for` has passed
/// since the first try: after a transient failure it waits
/// [`FIRST_BACKOFF`], doubling each time up to [`MAX_BACKOFF`], the last
/// wait cut short at the deadline, where one last try is made.
async fn retrying<F, Fut>(retry_for: Duration, mut post: F) -> Result<(), Failure>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), Failure>>,
{
    let deadline = Instant::now() + retry_for;
    let mut backoff = FIRST_BACKOFF;
    loop {
        let failure = match post().await {
            Ok(()) => return Ok(()),
            Err(f @ Failure::Rejected(_)) => return Err(f),
            Err(f) => f,
        };
        let now = Instant::now();
        if now >= deadline {
            return Err(failure);
        }
        tokio::time::sleep(backoff.min(deadline - now)).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

/// The retry schedule under tokio's paused clock: no real waits, exact times.
/// How much of a refusing receiver's body is read for the reason logged.
const ERROR_BODY_BYTES: usize = 1024;

/// The first `limit` bytes of a response body as text (lossy), then the
/// response is dropped: the reason of a refusal without holding, or waiting
/// for, whatever else a receiver sends (a huge or never-ending body would
/// otherwise be read whole, bounded only by the timeout).
async fn body_start(mut resp: reqwest::Response, limit: usize) -> String {
    let mut buf = Vec::new();
    while buf.len() < limit {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                let room = limit - buf.len();
                buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
            Ok(None) | Err(_) => break,
        }
    }
    String::from_utf8_lossy(&buf).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    /// When each try of `retrying(retry_for, ..)` starts, and its result,
    /// for a receiver that answers `answers` in turn (then keeps failing).
    async fn tries(retry_for: Duration, answers: &[Result<(), bool>]) -> (Vec<Duration>, String) {
        let start = Instant::now();
        let mut at = Vec::new();
        let mut answers = answers.iter();
        let result = retrying(retry_for, || {
            at.push(start.elapsed());
            let answer = match answers.next() {
                Some(Ok(())) => Ok(()),
                Some(Err(true)) => Err(Failure::Rejected("400".into())),
                _ => Err(Failure::Transient("refused".into())),
            };
            async move { answer }
        })
        .await;
        let result = match result {
            Ok(()) => "sent",
            Err(Failure::Rejected(_)) => "rejected",
            Err(Failure::Transient(_)) => "dropped",
        };
        (at, result.to_string())
    }

    #[tokio::test(start_paused = true)]
    async fn a_dead_receiver_is_tried_with_doubling_waits_until_retry_for() {
        let (at, result) = tries(secs(10.0), &[]).await;
        // Waits 0.25, 0.5, 1, 2, 4, then 8 cut to the deadline at 10 s.
        let want: Vec<Duration> = [0.0, 0.25, 0.75, 1.75, 3.75, 7.75, 10.0]
            .into_iter()
            .map(secs)
            .collect();
        assert_eq!((at, result.as_str()), (want, "dropped"));
    }

    #[tokio::test(start_paused = true)]
    async fn waits_stop_doubling_at_the_maximum() {
        let (at, result) = tries(secs(120.0), &[]).await;
        // ... 8, 16, then 30 s (MAX_BACKOFF) each, the last cut at 120 s.
        let want: Vec<Duration> = [
            0.0, 0.25, 0.75, 1.75, 3.75, 7.75, 15.75, 31.75, 61.75, 91.75, 120.0,
        ]
        .into_iter()
        .map(secs)
        .collect();
        assert_eq!((at, result.as_str()), (want, "dropped"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_receiver_back_gets_it_and_a_refusal_is_not_retried() {
        let (at, result) = tries(secs(10.0), &[Err(false), Err(false), Ok(())]).await;
        assert_eq!(
            (at, result.as_str()),
            (vec![secs(0.0), secs(0.25), secs(0.75)], "sent")
        );
        let (at, result) = tries(secs(10.0), &[Err(false), Err(true)]).await;
        assert_eq!(
            (at, result.as_str()),
            (vec![secs(0.0), secs(0.25)], "rejected")
        );
    }
}
