//! signed: the sections of an answer with the DO bit in a signed zone, from
//! the snapshot's signatures (`dnssec::SignedZone`): an RRset and its
//! RRSIGs; a CNAME and its RRSIGs (not chased: the resolver follows it);
//! NODATA as the signed SOA and the name's NSEC (compact denial, RFC 9824);
//! a name that does not exist as NODATA too (NXDOMAIN when the query set
//! the CO flag, RFC 9824 §4), its NSEC listing NXNAME, made and signed on
//! demand and cached.

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{LowerName, Name, Record, RecordType, RrKey};

use crate::dnssec::SignedZone;

/// (rcode, answer section, authority section).
pub type Parts = (ResponseCode, Vec<Record>, Vec<Record>);

/// The answer to `qtype` at `name` (in the zone `signed` covers) at `now`.
/// `compact_ok`: the query set CO (RFC 9824 §4), so a name that does not
/// exist gets rcode NXDOMAIN (NOERROR without it), the same NXNAME proof.
pub fn answer(
    signed: &SignedZone,
    name: &LowerName,
    qtype: RecordType,
    now: u32,
    compact_ok: bool,
) -> Parts {
    let rrset = |t: RecordType| signed.rrsets.get(&RrKey::new(name.clone(), t));
    if qtype == RecordType::ANY {
        // What the name's NSEC lists: every RRset it has.
        let mut answers = Vec::new();
        if let Some(types) = signed.nodata.get(name).and_then(|p| nsec_types(p.first()?)) {
            for t in types {
                if let Some((rs, sigs)) = rrset(t) {
                    answers.extend(rs.iter().cloned());
                    answers.extend(sigs.iter().cloned());
                }
            }
        }
        if !answers.is_empty() {
            return (ResponseCode::NoError, answers, Vec::new());
        }
    } else if qtype == RecordType::NSEC
        && let Some(proof) = signed.nodata.get(name)
    {
        // The name's NSEC is a record it has (its NODATA proof).
        return (ResponseCode::NoError, proof.clone(), Vec::new());
    } else if let Some((rs, sigs)) = rrset(qtype).or_else(|| rrset(RecordType::CNAME)) {
        let mut answers = rs.clone();
        answers.extend(sigs.iter().cloned());
        return (ResponseCode::NoError, answers, Vec::new());
    }
    // An NSEC chain (`nsec = "chain"`): NXDOMAIN or NODATA from its links.
    if let Some((rcode, authority)) = signed.chain_denial(name, qtype) {
        return (rcode, Vec::new(), authority);
    }
    let rcode = if compact_ok && !signed.nodata.contains_key(name) {
        ResponseCode::NXDomain
    } else {
        ResponseCode::NoError
    };
    (rcode, Vec::new(), denial(signed, name, now))
}

/// The authority section of a negative answer: the signed SOA and the
/// name's NSEC (its NODATA proof if it exists, else the NXNAME one).
pub fn denial(signed: &SignedZone, name: &LowerName, now: u32) -> Vec<Record> {
    denial_for(signed, name, RecordType::ANY, now)
}

/// [`denial`] of an empty answer to `qtype`: at a balanced name, A or AAAA
/// get the proof whose NSEC leaves that type out (RFC 4035 §3.1.3.1).
pub fn denial_for(
    signed: &SignedZone,
    name: &LowerName,
    qtype: RecordType,
    now: u32,
) -> Vec<Record> {
    let mut authority = signed.negative.clone();
    match signed.nodata_for(name, qtype) {
        Some(proof) => authority.extend(proof.iter().cloned()),
        None => authority.extend(signed.nxname(&Name::from(name), now)),
    }
    authority
}

fn nsec_types(r: &Record) -> Option<Vec<RecordType>> {
    match &r.data {
        hickory_proto::rr::RData::DNSSEC(hickory_proto::dnssec::rdata::DNSSECRData::NSEC(n)) => {
            Some(
                n.type_bit_maps()
                    .filter(|t| !matches!(t, RecordType::RRSIG | RecordType::NSEC))
                    .collect(),
            )
        }
        _ => None,
    }
}
