//! cname: a balanced answer that holds CNAMEs as hickory records, for the
//! handler (UDP the fast path left, TCP). The fast path writes the same
//! records as wire bytes (`dns::fast::cname`).
//!
//! Each RRset is one step of `steer::Answer`: the queried name's CNAME, then
//! for each balanced name a chain followed its CNAME or its addresses. With
//! DO in a signed zone, each RRset gets the RRSIGs its zone prepared when it
//! was signed (`SignedZone::cname_sigs`, `balanced_sigs`): nothing is signed
//! per query.

use std::str::FromStr;

use hickory_proto::rr::rdata::{A, AAAA, CNAME};
use hickory_proto::rr::{LowerName, Name, RData, Record, RecordType};

use crate::dnssec::SignedZone;
use crate::state::Snapshot;
use crate::steer::{Answer, Family};

/// The answer section and the authority section of `a`, whose first
/// decision answers a CNAME; `owner` is the question's name as asked.
/// `dnssec`: the query had DO (signed zones add their RRSIGs). A chain
/// that ends with no address of the family carries the last name's SOA
/// (signed: its denial).
pub fn records(
    snap: &Snapshot,
    owner: &Name,
    a: &Answer,
    dnssec: bool,
) -> (Vec<Record>, Vec<Record>) {
    let now = crate::wallclock::unix_secs() as u32;
    let signed = |name: &Name| -> Option<&SignedZone> {
        if !dnssec {
            return None;
        }
        let i = snap.zones.find_index(&LowerName::new(name))?;
        snap.dnssec.zone(i)
    };
    let rtype = match a.family {
        Family::V4 => RecordType::A,
        Family::V6 => RecordType::AAAA,
    };
    let mut answers = Vec::new();
    let mut soa = Vec::new();
    let mut owner = owner.clone();
    for d in a.decisions() {
        if let Some(target) = d.cname_target(&snap.config) {
            let Ok(target) = Name::from_str(&format!("{target}.")) else {
                break;
            };
            let record =
                Record::from_rdata(owner.clone(), d.ttl, RData::CNAME(CNAME(target.clone())));
            if let Some(z) = signed(&owner) {
                let sigs = z.cname_sigs(&record, now);
                answers.push(record);
                answers.extend(sigs);
            } else {
                answers.push(record);
            }
            owner = target;
            continue;
        }
        let records: Vec<Record> = d
            .endpoints
            .iter()
            .map(|ip| {
                let rdata = match ip {
                    std::net::IpAddr::V4(v4) => RData::A(A(*v4)),
                    std::net::IpAddr::V6(v6) => RData::AAAA(AAAA(*v6)),
                };
                Record::from_rdata(owner.clone(), d.ttl, rdata)
            })
            .collect();
        if records.is_empty() {
            // No address of the family at the end of the chain.
            soa = match signed(&owner) {
                Some(z) => super::signed::denial_for(z, &LowerName::new(&owner), rtype, now),
                None => snap
                    .zones
                    .find(&LowerName::new(&owner))
                    .map(|z| vec![z.negative_soa.clone()])
                    .unwrap_or_default(),
            };
        } else if let Some(z) = signed(&owner) {
            let sigs = z.balanced_sigs(&records, now);
            answers.extend(records);
            answers.extend(sigs);
        } else {
            answers.extend(records);
        }
    }
    (answers, soa)
}
