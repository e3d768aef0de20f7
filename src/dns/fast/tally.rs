//! tally: the counter increments of one batch of queries, applied with one
//! atomic add per distinct counter when the batch is done. A batch is
//! usually a handful of queries for a few names, so this turns two locked
//! read-modify-writes per query into two per batch, and keeps UDP workers on
//! different cores from passing a hot name's counters back and forth.
//!
//! Counts become visible when the tally is flushed (or dropped): the UDP
//! worker flushes before it sends the batch's answers.

use std::sync::atomic::{AtomicU64, Ordering};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use smallvec::SmallVec;

use crate::metrics::NameCounters;

/// Distinct counters held before further ones are added directly.
const SLOTS: usize = 8;

pub struct Tally<'s> {
    other: &'s NameCounters,
    /// (counter, pending adds); never more than SLOTS, so never on the heap.
    pending: SmallVec<[(&'s AtomicU64, u64); SLOTS]>,
}

impl<'s> Tally<'s> {
    /// `other` counts queries that are not for a balanced name.
    pub fn new(other: &'s NameCounters) -> Tally<'s> {
        Tally {
            other,
            pending: SmallVec::new(),
        }
    }

    /// One more query of `qtype` answered `rcode` for `name`.
    pub fn count(&mut self, name: &'s NameCounters, qtype: RecordType, rcode: ResponseCode) {
        self.add(name.cell(qtype, rcode));
    }

    /// One more query that is not for a balanced name.
    pub fn count_other(&mut self, qtype: RecordType, rcode: ResponseCode) {
        self.count(self.other, qtype, rcode);
    }

    /// One more on `counter`.
    pub fn add(&mut self, counter: &'s AtomicU64) {
        if let Some((_, n)) = self
            .pending
            .iter_mut()
            .find(|(c, _)| std::ptr::eq(*c, counter))
        {
            *n += 1;
        } else if self.pending.len() < SLOTS {
            self.pending.push((counter, 1));
        } else {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Applies and forgets what was added.
    pub fn flush(&mut self) {
        for (c, n) in self.pending.drain(..) {
            c.fetch_add(n, Ordering::Relaxed);
        }
    }
}

impl Drop for Tally<'_> {
    fn drop(&mut self) {
        self.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_land_once_flushed_including_overflow() {
        let other = NameCounters::default();
        let counters: Vec<AtomicU64> = (0..SLOTS + 3).map(|_| AtomicU64::new(0)).collect();
        let mut tally = Tally::new(&other);
        for round in 0..5 {
            for (i, c) in counters.iter().enumerate() {
                for _ in 0..=i {
                    tally.add(c);
                }
            }
            if round == 2 {
                // Held slots are pending; the ones past SLOTS went straight in.
                assert_eq!(counters[0].load(Ordering::Relaxed), 0);
                assert_eq!(
                    counters[SLOTS].load(Ordering::Relaxed),
                    3 * (SLOTS as u64 + 1)
                );
                tally.flush();
                assert_eq!(counters[0].load(Ordering::Relaxed), 3);
            }
        }
        drop(tally);
        for (i, c) in counters.iter().enumerate() {
            assert_eq!(c.load(Ordering::Relaxed), 5 * (i as u64 + 1), "counter {i}");
        }
    }
}
