//! rejected: queries answered with an error for what they are, not for
//! what they ask: an opcode other than QUERY (NOTIMP), a class other than
//! IN and CH (REFUSED), a malformed ECS or COOKIE option or an explicit
//! query for the NXNAME meta-type (FORMERR). Each is counted (`/metrics`:
//! `geosteer_dns_rejected_total{reason}`) and none is logged on its own:
//! at most one WARN line per [`SUMMARY_EVERY`] sums them up, so a flood of
//! such packets cannot fill the log.

use std::sync::atomic::{AtomicU64, Ordering};

/// Seconds between two summary lines at least.
pub const SUMMARY_EVERY: u64 = 10;

/// Why a query was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Not a QUERY: NOTIMP.
    Opcode = 0,
    /// A class other than IN and CH: REFUSED.
    Class = 1,
    /// An ECS option with more address octets than its source prefix needs
    /// or bits set past it (RFC 7871 §6): FORMERR.
    Ecs = 2,
    /// An explicit NXNAME query (RFC 9824 §3.5): FORMERR.
    Nxname = 3,
    /// A COOKIE option of a length other than 8 or 16 to 40 octets (RFC
    /// 7873 §5.2.2): FORMERR.
    Cookie = 4,
}

impl Reason {
    pub const ALL: [Reason; 5] = [
        Reason::Opcode,
        Reason::Class,
        Reason::Ecs,
        Reason::Nxname,
        Reason::Cookie,
    ];

    /// The `reason` label.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Opcode => "opcode",
            Reason::Class => "class",
            Reason::Ecs => "ecs",
            Reason::Nxname => "nxname",
            Reason::Cookie => "cookie",
        }
    }
}

static COUNTS: [AtomicU64; 5] = [const { AtomicU64::new(0) }; 5];
/// The counts the last summary reported.
static REPORTED: [AtomicU64; 5] = [const { AtomicU64::new(0) }; 5];
/// Unix seconds of the last summary (0: none yet).
static LAST: AtomicU64 = AtomicU64::new(0);

/// Counts one rejected query; logs the summary when one is due.
pub fn count(reason: Reason) {
    COUNTS[reason as usize].fetch_add(1, Ordering::Relaxed);
    let now = crate::wallclock::unix_secs();
    let last = LAST.load(Ordering::Relaxed);
    if last != 0 && now < last.saturating_add(SUMMARY_EVERY) {
        return;
    }
    // One thread wins the right to log this interval's line.
    if LAST
        .compare_exchange(last, now.max(1), Ordering::Relaxed, Ordering::Relaxed)
        .is_err()
    {
        return;
    }
    let mut since = [0u64; 5];
    for r in Reason::ALL {
        let total = COUNTS[r as usize].load(Ordering::Relaxed);
        since[r as usize] =
            total.saturating_sub(REPORTED[r as usize].swap(total, Ordering::Relaxed));
    }
    tracing::warn!(
        opcode = since[0],
        class = since[1],
        ecs = since[2],
        nxname = since[3],
        cookie = since[4],
        "queries rejected since the last such line (not a QUERY: NOTIMP; class not IN or CH: REFUSED; malformed ECS or COOKIE or an NXNAME query: FORMERR); at most one line per {SUMMARY_EVERY} s, totals in geosteer_dns_rejected_total"
    );
}

/// The totals since start-up, per reason.
pub fn totals() -> impl Iterator<Item = (Reason, u64)> {
    Reason::ALL
        .into_iter()
        .map(|r| (r, COUNTS[r as usize].load(Ordering::Relaxed)))
}
