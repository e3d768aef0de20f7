//! history: what a zone file held at each serial, for transfers to
//! secondaries. The current content answers AXFR; up to [`MAX_VERSIONS`]
//! earlier ones, carried from snapshot to snapshot across reloads, let an
//! IXFR send only what changed since the secondary's serial (RFC 1995, as one
//! condensed difference); for an older serial the answer is the whole zone,
//! AXFR-style, as RFC 1995 §4 allows.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use hickory_proto::rr::{RData, Record, RecordSet, RecordType, RrKey};

/// Earlier versions kept per zone (each a full copy of the zone's records).
pub const MAX_VERSIONS: usize = 16;

/// A zone file's records at one serial.
#[derive(Debug, PartialEq)]
pub struct Content {
    /// The apex SOA.
    pub soa: Record,
    /// Every other record, in name order; empty unless `kept`.
    pub records: Vec<Record>,
    /// Whether the records were kept: only for a zone with `[transfer]`
    /// (nothing else reads them, and a large zone would be held twice).
    pub kept: bool,
}

impl Content {
    /// The zone file's SOA, and its other records when `keep` (`None`
    /// without an apex SOA).
    pub fn new(records: &BTreeMap<RrKey, RecordSet>, keep: bool) -> Option<Content> {
        let mut soa = None;
        let mut rest = Vec::new();
        for (key, set) in records {
            if key.record_type == RecordType::SOA && soa.is_none() {
                soa = set.records_without_rrsigs().next().cloned();
            }
            if !keep {
                continue;
            }
            for r in set.records_with_rrsigs() {
                if soa.as_ref() != Some(r) {
                    rest.push(r.clone());
                }
            }
        }
        Some(Content {
            soa: soa?,
            records: rest,
            kept: keep,
        })
    }

    pub fn serial(&self) -> u32 {
        match &self.soa.data {
            RData::SOA(soa) => soa.serial,
            _ => 0,
        }
    }
}

/// What a secondary at some serial needs.
pub enum Since<'a> {
    /// Nothing: it has this serial (or a later one).
    UpToDate,
    /// The records deleted and added since `from` (the version it holds).
    Changes {
        from: &'a Content,
        deleted: Vec<&'a Record>,
        added: Vec<&'a Record>,
    },
    /// Its serial is not in the history: the whole zone.
    Everything,
}

/// A zone's current content and the versions before it, oldest first.
pub struct Versions {
    pub current: Arc<Content>,
    older: Vec<Arc<Content>>,
}

/// RFC 1982: is `a` after `b`?
fn after(a: u32, b: u32) -> bool {
    a != b && (a.wrapping_sub(b) as i32) > 0
}

impl Versions {
    pub fn new(current: Content) -> Versions {
        Versions {
            current: Arc::new(current),
            older: Vec::new(),
        }
    }

    /// Takes over the history of `previous` (the zone as the last snapshot
    /// served it). Returns what an operator should hear about: a changed
    /// zone whose serial did not move (secondaries will not see the change),
    /// or a serial that went backwards (the history is dropped).
    pub fn carry(&mut self, previous: &Versions) -> Option<String> {
        if !previous.current.kept || !self.current.kept {
            // Not transferred before or now: no history to keep or compare.
            return None;
        }
        let (old, new) = (previous.current.serial(), self.current.serial());
        if old == new {
            self.older = previous.older.clone();
            if previous.current.records != self.current.records {
                return Some(format!(
                    "the zone changed but its SOA serial stayed {new}: secondaries will not transfer the change"
                ));
            }
            // Same content: keep sharing the previous copy.
            self.current = previous.current.clone();
            return None;
        }
        if !after(new, old) {
            return Some(format!(
                "the SOA serial went back from {old} to {new}: secondaries holding {old} will not transfer this version"
            ));
        }
        let mut older = previous.older.clone();
        older.push(previous.current.clone());
        let excess = older.len().saturating_sub(MAX_VERSIONS);
        older.drain(..excess);
        self.older = older;
        None
    }

    /// What a secondary holding `serial` must be sent.
    pub fn since(&self, serial: u32) -> Since<'_> {
        let current = self.current.serial();
        if serial == current || after(serial, current) {
            return Since::UpToDate;
        }
        let Some(from) = self.older.iter().rev().find(|v| v.serial() == serial) else {
            return Since::Everything;
        };
        let old: BTreeSet<&Record> = from.records.iter().collect();
        let new: BTreeSet<&Record> = self.current.records.iter().collect();
        Since::Changes {
            from,
            deleted: from.records.iter().filter(|r| !new.contains(r)).collect(),
            added: self
                .current
                .records
                .iter()
                .filter(|r| !old.contains(r))
                .collect(),
        }
    }

    /// Serials kept, oldest first, the current one last.
    #[cfg(test)]
    pub(crate) fn serials(&self) -> Vec<u32> {
        self.older
            .iter()
            .chain(std::iter::once(&self.current))
            .map(|v| v.serial())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    use hickory_proto::rr::Name;

    fn zone(serial: u32, hosts: &[&str]) -> Content {
        let text = format!(
            "$ORIGIN example.test.\n$TTL 300\n@ IN SOA ns1 host ( {serial} 3600 600 86400 300 )\n@ IN NS ns1\n{}",
            hosts
                .iter()
                .map(|h| format!("{h} IN A 192.0.2.1\n"))
                .collect::<String>()
        );
        let origin = Name::from_str("example.test.").unwrap();
        let (records, _) =
            crate::zone::parse_zone(&text, std::path::Path::new("t.zone"), &origin).unwrap();
        Content::new(&records, true).unwrap()
    }

    fn names(rs: &[&Record]) -> Vec<String> {
        let mut v: Vec<String> = rs.iter().map(|r| r.name.to_string()).collect();
        v.sort();
        v
    }

    #[test]
    fn ixfr_from_a_kept_serial_is_the_difference() {
        let mut v1 = Versions::new(zone(1, &["a", "b"]));
        assert!(matches!(v1.since(1), Since::UpToDate));
        let mut v2 = Versions::new(zone(2, &["b", "c"]));
        assert_eq!(v2.carry(&v1), None);
        match v2.since(1) {
            Since::Changes {
                from,
                deleted,
                added,
            } => {
                assert_eq!(from.serial(), 1);
                assert_eq!(names(&deleted), ["a.example.test."]);
                assert_eq!(names(&added), ["c.example.test."]);
            }
            _ => panic!("expected a difference"),
        }
        assert!(matches!(v2.since(0), Since::Everything));
        assert!(
            matches!(v2.since(3), Since::UpToDate),
            "a later serial is up to date"
        );
        v1 = v2;
        let mut v3 = Versions::new(zone(3, &["c"]));
        v3.carry(&v1);
        assert_eq!(v3.serials(), [1, 2, 3]);
        match v3.since(1) {
            Since::Changes { deleted, added, .. } => {
                assert_eq!(names(&deleted), ["a.example.test.", "b.example.test."]);
                assert_eq!(names(&added), ["c.example.test."]);
            }
            _ => panic!("expected a difference"),
        }
    }

    #[test]
    fn history_is_bounded_and_survives_serial_wrap() {
        let mut v = Versions::new(zone(u32::MAX - 5, &["a"]));
        for i in 0..(MAX_VERSIONS as u32 + 10) {
            let mut next = Versions::new(zone((u32::MAX - 4).wrapping_add(i), &["a"]));
            assert_eq!(next.carry(&v), None, "serial {i} is after the last one");
            v = next;
        }
        let serials = v.serials();
        assert_eq!(serials.len(), MAX_VERSIONS + 1);
        assert_eq!(
            serials.last().copied(),
            Some((u32::MAX - 4).wrapping_add(MAX_VERSIONS as u32 + 9))
        );
    }

    #[test]
    fn unchanged_serial_or_a_step_back_is_reported() {
        let v1 = Versions::new(zone(5, &["a"]));
        let mut same = Versions::new(zone(5, &["a"]));
        assert_eq!(same.carry(&v1), None);
        assert!(Arc::ptr_eq(&same.current, &v1.current));
        let mut edited = Versions::new(zone(5, &["b"]));
        let msg = edited.carry(&v1).unwrap();
        assert!(msg.contains("serial stayed 5"), "{msg}");
        let mut back = Versions::new(zone(4, &["a"]));
        let msg = back.carry(&v1).unwrap();
        assert!(msg.contains("went back from 5 to 4"), "{msg}");
        assert_eq!(back.serials(), [4]);
    }

    #[test]
    fn zones_without_transfers_keep_only_their_soa() {
        let origin = Name::from_str("example.test.").unwrap();
        let text = "$ORIGIN example.test.\n$TTL 300\n@ IN SOA ns1 host ( 7 3600 600 86400 300 )\n@ IN NS ns1\n";
        let (records, _) =
            crate::zone::parse_zone(text, std::path::Path::new("t.zone"), &origin).unwrap();
        let bare = Content::new(&records, false).unwrap();
        assert_eq!(
            (bare.serial(), bare.records.len(), bare.kept),
            (7, 0, false)
        );
        // No history is built from, or carried into, a version not kept.
        let old = Versions::new(bare);
        let mut kept = Versions::new(zone(8, &["a"]));
        assert_eq!(kept.carry(&old), None);
        assert_eq!(kept.serials(), [8]);
        assert!(matches!(kept.since(7), Since::Everything));
    }
}
