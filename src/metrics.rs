//! metrics: the counters the data path bumps, as plain atomics handed out at
//! config compile time, so counting a query is one relaxed `fetch_add` with no
//! lock, lookup or allocation. `admin::metrics` renders them (and the snapshot's
//! states) as Prometheus text.
//!
//! Counters are keyed by name and survive reloads: compiling a new config asks
//! the registry for the same `Arc`s again.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

/// Query types counted apart; everything else is `other`.
pub const QTYPES: [&str; 4] = ["A", "AAAA", "TXT", "other"];
/// Response codes counted apart; everything else is `other`.
pub const RCODES: [&str; 7] = [
    "NOERROR", "NXDOMAIN", "REFUSED", "FORMERR", "SERVFAIL", "NOTIMP", "other",
];

pub fn qtype_index(t: RecordType) -> usize {
    match t {
        RecordType::A => 0,
        RecordType::AAAA => 1,
        RecordType::TXT => 2,
        _ => 3,
    }
}

pub fn rcode_index(r: ResponseCode) -> usize {
    match r {
        ResponseCode::NoError => 0,
        ResponseCode::NXDomain => 1,
        ResponseCode::Refused => 2,
        ResponseCode::FormErr => 3,
        ResponseCode::ServFail => 4,
        ResponseCode::NotImp => 5,
        _ => 6,
    }
}

/// Queries for one name by (type, rcode).
#[derive(Default, Debug)]
pub struct NameCounters {
    cells: [AtomicU64; QTYPES.len() * RCODES.len()],
    /// Answers given because no pool was usable, by `on_all_down` mode
    /// (indexed by `OnAllDown::index`).
    pub fail_open: [AtomicU64; 4],
}

impl NameCounters {
    pub fn count(&self, qtype: RecordType, rcode: ResponseCode) {
        self.cell(qtype, rcode).fetch_add(1, Ordering::Relaxed);
    }

    /// The counter `count` adds to.
    pub fn cell(&self, qtype: RecordType, rcode: ResponseCode) -> &AtomicU64 {
        &self.cells[qtype_index(qtype) * RCODES.len() + rcode_index(rcode)]
    }

    /// (type, rcode, count) for every non-zero cell.
    pub fn nonzero(&self) -> Vec<(&'static str, &'static str, u64)> {
        let mut out = Vec::new();
        for (t, tname) in QTYPES.iter().enumerate() {
            for (r, rname) in RCODES.iter().enumerate() {
                let v = self.cells[t * RCODES.len() + r].load(Ordering::Relaxed);
                if v > 0 {
                    out.push((*tname, *rname, v));
                }
            }
        }
        out
    }
}

/// Every data-path counter, by name. Lock only at compile time and scrape time.
#[derive(Default)]
pub struct Registry {
    names: Mutex<BTreeMap<String, Arc<NameCounters>>>,
    picks: Mutex<BTreeMap<(String, String), Arc<AtomicU64>>>,
    probes: Mutex<BTreeMap<(String, String), Arc<ProbeCounters>>>,
    /// Active checks of proxy backends' servers, by (backend, server).
    backend_probes: Mutex<BTreeMap<(String, String), Arc<ProbeCounters>>>,
    /// The fleet link's figures (zero without `[cluster]`).
    pub cluster: Arc<ClusterCounters>,
    /// Responses rate limiting dropped or truncated.
    pub rrl: Arc<RrlCounters>,
    /// Zone transfers sent and refused, NOTIFYs answered or not.
    pub transfers: Arc<TransferCounters>,
    /// DNS cookies seen, and answers `require_cookie_over` cut short.
    pub cookies: Arc<CookieCounters>,
    /// The webhook receivers of the serving config, by name, in config order.
    notify: Mutex<Vec<(String, Arc<NotifyCounters>)>>,
}

/// The name label for queries that are not at a balanced name (bounded cardinality).
pub const OTHER_NAME: &str = "other";

impl Registry {
    pub fn name(&self, name: &str) -> Arc<NameCounters> {
        let mut m = self.names.lock().unwrap_or_else(|e| e.into_inner());
        m.entry(name.to_string()).or_default().clone()
    }

    /// How often `pool` was chosen for `name`.
    pub fn pick(&self, name: &str, pool: &str) -> Arc<AtomicU64> {
        let mut m = self.picks.lock().unwrap_or_else(|e| e.into_inner());
        m.entry((name.to_string(), pool.to_string()))
            .or_default()
            .clone()
    }

    pub fn names(&self) -> Vec<(String, Arc<NameCounters>)> {
        let m = self.names.lock().unwrap_or_else(|e| e.into_inner());
        m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }

    pub fn picks(&self) -> Vec<((String, String), u64)> {
        let m = self.picks.lock().unwrap_or_else(|e| e.into_inner());
        m.iter()
            .map(|(k, v)| (k.clone(), v.load(Ordering::Relaxed)))
            .collect()
    }
}

/// Probe latency histogram bucket bounds, seconds.
pub const PROBE_BUCKETS: [f64; 10] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0];

/// Probe results and latency for one endpoint.
#[derive(Default)]
pub struct ProbeCounters {
    pub ok: AtomicU64,
    pub failed: AtomicU64,
    /// Cumulative counts per bucket of [`PROBE_BUCKETS`], then +Inf.
    pub buckets: [AtomicU64; PROBE_BUCKETS.len() + 1],
    /// Sum of latencies in microseconds.
    pub sum_micros: AtomicU64,
}

impl ProbeCounters {
    pub fn record(&self, ok: bool, latency: std::time::Duration) {
        if ok { &self.ok } else { &self.failed }.fetch_add(1, Ordering::Relaxed);
        let secs = latency.as_secs_f64();
        for (i, bound) in PROBE_BUCKETS.iter().enumerate() {
            if secs <= *bound {
                self.buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.buckets[PROBE_BUCKETS.len()].fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add(latency.as_micros() as u64, Ordering::Relaxed);
    }
}

impl Registry {
    /// Probe counters of (pool, endpoint address).
    pub fn probe(&self, pool: &str, endpoint: &str) -> Arc<ProbeCounters> {
        let mut m = self.probes.lock().unwrap_or_else(|e| e.into_inner());
        m.entry((pool.to_string(), endpoint.to_string()))
            .or_default()
            .clone()
    }

    pub fn probes(&self) -> Vec<((String, String), Arc<ProbeCounters>)> {
        let m = self.probes.lock().unwrap_or_else(|e| e.into_inner());
        m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }

    /// Probe counters of (backend, server address).
    pub fn backend_probe(&self, backend: &str, server: &str) -> Arc<ProbeCounters> {
        let mut m = self
            .backend_probes
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        m.entry((backend.to_string(), server.to_string()))
            .or_default()
            .clone()
    }

    pub fn backend_probes(&self) -> Vec<((String, String), Arc<ProbeCounters>)> {
        let m = self
            .backend_probes
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }
}

// === the shells' own counters ===
//
// Defined here, not in the modules that bump them (cluster, dns::rrl,
// dns::xfr), so that metrics names no module above it.

/// What the fleet link did, for `/metrics` and the bench.
#[derive(Debug, Default)]
pub struct ClusterCounters {
    /// 1 while etcd answers.
    pub connected: AtomicU64,
    /// Write requests sent to etcd (transactions of up to 128 puts/deletes).
    pub txns: AtomicU64,
    /// Keys put and deleted.
    pub puts: AtomicU64,
    pub deletes: AtomicU64,
    pub keepalives: AtomicU64,
    /// Times the link was (re)established.
    pub syncs: AtomicU64,
    /// Times this node found that etcd lost the fleet's data (wiped,
    /// replaced, restored from an older snapshot).
    pub data_lost: AtomicU64,
    /// Unix ms of the last time etcd answered (a keep-alive, a watch
    /// message): read live by the admin API, so a fleet's "last seen" counts
    /// keep-alives rather than the last change the link handed over.
    pub last_contact_ms: AtomicU64,
}

/// What rate limiting did, for `/metrics`.
#[derive(Debug, Default)]
pub struct RrlCounters {
    pub dropped: AtomicU64,
    pub slipped: AtomicU64,
}

/// What `/metrics` shows of transfers and NOTIFY.
#[derive(Default, Debug)]
pub struct TransferCounters {
    pub axfr: AtomicU64,
    pub ixfr_incremental: AtomicU64,
    /// IXFR answered with the whole zone (serial not in the history).
    pub ixfr_full: AtomicU64,
    /// IXFR from the current serial (the SOA alone), over TCP or UDP.
    pub ixfr_up_to_date: AtomicU64,
    pub refused: AtomicU64,
    pub notify_answered: AtomicU64,
    /// NOTIFYs a secondary refused or never answered.
    pub notify_failed: AtomicU64,
}

/// DNS cookies (`dns::cookie`), for `/metrics`.
#[derive(Debug, Default)]
pub struct CookieCounters {
    /// Queries answered, by the cookie they carried: none, a client cookie
    /// alone, a valid server cookie, a server cookie not ours or too old
    /// (`dns::cookie::Verdict` as the index).
    pub verdicts: [AtomicU64; 4],
    /// `require_cookie_over`: BADCOOKIE answers.
    pub badcookie: AtomicU64,
    /// `require_cookie_over`: empty truncated answers to queries without a cookie.
    pub truncated: AtomicU64,
}

/// One webhook receiver's deliveries (`notify`), for `/metrics`.
#[derive(Debug, Default)]
pub struct NotifyCounters {
    /// Events delivered (a 2xx answer to the POST that carried them).
    pub sent: AtomicU64,
    /// POSTs that failed: no answer in time, no connection, not 2xx.
    pub failed: AtomicU64,
    /// Events dropped because the receiver's queue was full.
    pub dropped_overflow: AtomicU64,
    /// Events dropped after `retry_for` of failed retries.
    pub dropped_expired: AtomicU64,
    /// Events dropped because the receiver refused them for good (a 4xx
    /// other than 408 and 429).
    pub dropped_rejected: AtomicU64,
    /// Events dropped because a reload removed or changed the receiver.
    pub dropped_reload: AtomicU64,
    /// Events waiting, the batch being delivered included.
    pub queued: AtomicU64,
}

impl Registry {
    /// The counters of the receivers named `names` (those of the serving
    /// config), kept by name across reloads; the others' go.
    pub fn set_notify(&self, names: &[String]) -> Vec<Arc<NotifyCounters>> {
        let mut m = self.notify.lock().unwrap_or_else(|e| e.into_inner());
        let mut old = std::mem::take(&mut *m);
        for n in names {
            let c = match old.iter().position(|(o, _)| o == n) {
                Some(i) => old.swap_remove(i).1,
                None => Arc::default(),
            };
            m.push((n.clone(), c));
        }
        m.iter().map(|(_, c)| c.clone()).collect()
    }

    /// Every configured receiver's counters, in config order.
    pub fn notify(&self) -> Vec<(String, Arc<NotifyCounters>)> {
        self.notify
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}
