//! cache: signatures made on demand, kept in a fixed array of slots that
//! queries read and write without a lock (`ArcSwapOption` per slot, chosen by
//! a hash of the key). A new entry replaces whatever held its slot; two keys
//! that share a slot only cost an extra signature now and then.

use std::hash::BuildHasher;
use std::sync::Arc;

use arc_swap::ArcSwapOption;
use hickory_proto::rr::Record;

struct Entry {
    key: Vec<u8>,
    records: Vec<Record>,
    /// The same records after their owner names, for the fast path (empty
    /// where it does not use them).
    wire: Vec<Vec<u8>>,
    /// Unix seconds after which the entry is not served.
    good_until: u32,
}

pub struct SigCache {
    slots: Box<[ArcSwapOption<Entry>]>,
    hasher: rustc_hash::FxBuildHasher,
}

impl SigCache {
    pub fn new(size: usize) -> SigCache {
        let size = size.max(1).next_power_of_two();
        SigCache {
            slots: (0..size).map(|_| ArcSwapOption::empty()).collect(),
            hasher: rustc_hash::FxBuildHasher,
        }
    }

    fn slot(&self, key: &[u8]) -> &ArcSwapOption<Entry> {
        let h = self.hasher.hash_one(key);
        &self.slots[(h as usize) & (self.slots.len() - 1)]
    }

    pub fn get(&self, key: &[u8], now: u32) -> Option<Vec<Record>> {
        let guard = self.slot(key).load();
        let e = guard.as_ref()?;
        (e.key == key && (e.good_until.wrapping_sub(now) as i32) > 0).then(|| e.records.clone())
    }

    /// Calls `f` with the wire form of the entry for `key`, without
    /// allocating; None when there is none (or it has expired).
    pub fn with_wire<T>(&self, key: &[u8], now: u32, f: impl FnOnce(&[Vec<u8>]) -> T) -> Option<T> {
        let guard = self.slot(key).load();
        let e = guard.as_ref()?;
        (e.key == key && (e.good_until.wrapping_sub(now) as i32) > 0 && !e.wire.is_empty())
            .then(|| f(&e.wire))
    }

    pub fn put(&self, key: Vec<u8>, records: Vec<Record>, wire: Vec<Vec<u8>>, good_until: u32) {
        self.slot(&key).store(Some(Arc::new(Entry {
            key,
            records,
            wire,
            good_until,
        })));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_and_are_replaced() {
        let c = SigCache::new(8);
        assert!(c.get(b"a", 100).is_none());
        c.put(b"a".to_vec(), Vec::new(), vec![vec![1]], 200);
        assert_eq!(c.get(b"a", 100).map(|r| r.len()), Some(0));
        assert!(c.get(b"a", 200).is_none(), "expired");
        assert!(c.get(b"b", 100).is_none(), "another key");
        assert_eq!(c.with_wire(b"a", 100, |w| w.len()), Some(1));
        assert_eq!(c.with_wire(b"a", 200, |w| w.len()), None);
    }
}
