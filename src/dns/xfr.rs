//! xfr: zone transfers out over TCP (AXFR, RFC 5936; IXFR, RFC 1995) of what
//! the zone files hold. Balanced names are not in them: only geosteer nodes
//! answer those, from live health, so a secondary never serves a stale
//! steering decision (see docs/src/transfers.md).
//!
//! A transfer is allowed when `[transfer."ZONE"]` lists the client's prefix
//! and, if it names a TSIG key, the request is signed with it; every message
//! of the answer is then signed. Otherwise: REFUSED (or NOTAUTH with the TSIG
//! error). An IXFR from a serial in the zone's history gets the difference;
//! from any other, the whole zone (AXFR-style, RFC 1995 §4); from the current
//! serial, the SOA alone.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;

use hickory_proto::ProtoError;
use hickory_proto::op::{
    Header, HeaderCounts, Message, MessageType, Metadata, OpCode, ResponseCode,
};
use hickory_proto::rr::{DNSClass, LowerName, RData, Record, RecordType};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder};

use super::DnsHandler;
use super::tsig::{self, Signer};
use crate::zone::history::Since;

/// A message is closed once it holds this many bytes (then signed, if TSIG).
const MESSAGE_TARGET: usize = 16 * 1024;

/// Is `raw` a query for AXFR or IXFR? (Cheap: header and question only.)
pub fn is_transfer(raw: &[u8]) -> bool {
    if raw.len() < 12 || raw[2] & 0xf8 != 0 || raw[4..6] != [0, 1] {
        return false; // a response, another opcode, or not one question
    }
    let mut at = 12;
    while let Some(&len) = raw.get(at) {
        if len == 0 {
            let qtype = raw.get(at + 1..at + 3);
            return matches!(qtype, Some([0, 251]) | Some([0, 252]));
        }
        if len & 0xc0 != 0 {
            return false;
        }
        at += 1 + usize::from(len);
    }
    false
}

/// The messages answering the transfer request `raw` from `peer`, in order.
/// Over UDP (`tcp` false) an allowed IXFR gets the current SOA alone, which
/// tells the secondary to come back over TCP if it is behind (RFC 1995 §2),
/// and an AXFR FORMERR (RFC 5936 §4.2 defines AXFR over TCP only).
pub fn answer(handler: &DnsHandler, raw: Vec<u8>, peer: SocketAddr, tcp: bool) -> Answer {
    let mut later = None;
    let messages = messages(handler, raw, peer, tcp, &mut later);
    Answer {
        messages,
        signer: later,
    }
}

/// A transfer's answer.
pub struct Answer {
    /// Over TCP, signed when the request was.
    pub messages: Vec<Vec<u8>>,
    /// Over UDP, the answer is unsigned and this signs it: the caller's
    /// response handler encodes it again, and the MAC must cover those bytes.
    pub signer: Option<Signer>,
}

fn messages(
    handler: &DnsHandler,
    raw: Vec<u8>,
    peer: SocketAddr,
    tcp: bool,
    later: &mut Option<Signer>,
) -> Vec<Vec<u8>> {
    let Ok(request) = Message::from_vec(&raw) else {
        return error(&raw, ResponseCode::FormErr, None)
            .into_iter()
            .collect();
    };
    let Some(query) = request.queries.first() else {
        return Vec::new();
    };
    let (qname, qtype) = (LowerName::new(query.name()), query.query_type());
    let snap = handler.shared().load_full();
    let counters = handler.transfer_counters();
    let refuse = |code, why: &str, signer: Option<Signer>| {
        counters.refused.fetch_add(1, Ordering::Relaxed);
        tracing::info!(%peer, zone = %qname, kind = %qtype, "transfer refused: {why}");
        error(&raw, code, signer).into_iter().collect::<Vec<_>>()
    };
    let Some(zone) = snap.zones.apex(&qname) else {
        return refuse(ResponseCode::NotAuth, "not a zone served here", None);
    };
    if query.query_class() != DNSClass::IN {
        return refuse(ResponseCode::Refused, "class is not IN", None);
    }
    let Some(transfer) = &zone.transfer else {
        return refuse(ResponseCode::Refused, "no [transfer] for this zone", None);
    };
    // A signed request is checked whatever the zone asks: a bad signature
    // is answered as RFC 8945 says, never silently accepted.
    let signer = match &request.signature {
        None => None,
        Some(sig) => {
            let key = transfer
                .tsig
                .as_ref()
                .filter(|k| sig.name.to_lowercase().to_string() == k.name);
            let now = crate::wallclock::unix_secs();
            match tsig::verify(&raw, sig, key, now) {
                Ok(s) => Some(s),
                Err(failure) => {
                    counters.refused.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(%peer, zone = %qname, kind = %qtype, error = ?failure.error,
                        "transfer refused: TSIG check failed");
                    return failure.answer(&raw).into_iter().collect();
                }
            }
        }
    };
    if !transfer.allow.iter().any(|n| n.contains(&peer.ip())) {
        return refuse(
            ResponseCode::Refused,
            "client not in allow_transfer",
            signer,
        );
    }
    let signer = if tcp {
        signer
    } else {
        *later = signer;
        None
    };
    if transfer.tsig.is_some() && signer.is_none() && later.is_none() {
        return refuse(
            ResponseCode::Refused,
            "the zone's TSIG key is required",
            None,
        );
    }
    let versions = &zone.versions;
    let soa = &versions.current.soa;
    let (records, style): (Vec<&Record>, &str) = match qtype {
        RecordType::AXFR if !tcp => {
            return refuse(ResponseCode::FormErr, "AXFR over UDP", signer);
        }
        RecordType::IXFR if !tcp => (vec![soa], "IXFR over UDP (SOA only)"),
        RecordType::AXFR => (whole(versions), "AXFR"),
        _ => {
            let Some(serial) = request.authorities.iter().find_map(|r| match &r.data {
                RData::SOA(s) => Some(s.serial),
                _ => None,
            }) else {
                return refuse(
                    ResponseCode::FormErr,
                    "IXFR without the client's SOA",
                    signer,
                );
            };
            match versions.since(serial) {
                Since::UpToDate => (vec![soa], "IXFR (up to date)"),
                Since::Everything => (whole(versions), "IXFR (AXFR-style)"),
                Since::Changes {
                    from,
                    deleted,
                    added,
                } => {
                    let mut v = Vec::with_capacity(deleted.len() + added.len() + 4);
                    v.push(soa);
                    v.push(&from.soa);
                    v.extend(deleted);
                    v.push(soa);
                    v.extend(added);
                    v.push(soa);
                    (v, "IXFR (incremental)")
                }
            }
        }
    };
    match pack(&request, &records, signer.clone()) {
        Ok(messages) => {
            let counter = match style {
                "AXFR" => &counters.axfr,
                "IXFR (incremental)" => &counters.ixfr_incremental,
                "IXFR (AXFR-style)" => &counters.ixfr_full,
                _ => &counters.ixfr_up_to_date,
            };
            counter.fetch_add(1, Ordering::Relaxed);
            tracing::info!(
                %peer,
                zone = %qname,
                serial = versions.current.serial(),
                records = records.len(),
                messages = messages.len(),
                tsig = transfer.tsig.is_some(),
                kind = style,
                "transfer sent"
            );
            messages
        }
        Err(e) => {
            tracing::warn!(%peer, zone = %qname, error = %e, "transfer failed");
            error(&raw, ResponseCode::ServFail, signer)
                .into_iter()
                .collect()
        }
    }
}

/// SOA, every record, SOA.
fn whole(versions: &crate::zone::history::Versions) -> Vec<&Record> {
    let c = &versions.current;
    let mut v = Vec::with_capacity(c.records.len() + 2);
    v.push(&c.soa);
    v.extend(c.records.iter());
    v.push(&c.soa);
    v
}

/// The records as answer messages of about [`MESSAGE_TARGET`] bytes each,
/// the question in the first, each signed when `signer` is set.
fn pack(
    request: &Message,
    records: &[&Record],
    mut signer: Option<Signer>,
) -> Result<Vec<Vec<u8>>, ProtoError> {
    let mut messages = Vec::new();
    let mut rest = records.iter().peekable();
    loop {
        let first = messages.is_empty();
        let mut buf = Vec::with_capacity(MESSAGE_TARGET + 1024);
        let mut answers = 0u16;
        {
            let mut enc = BinEncoder::new(&mut buf);
            header(request).emit(&mut enc)?;
            if first {
                for q in &request.queries {
                    q.emit(&mut enc)?;
                }
            }
            while let Some(r) = rest.peek() {
                if answers > 0 && enc.len() >= MESSAGE_TARGET {
                    break;
                }
                r.emit(&mut enc)?;
                answers += 1;
                rest.next();
            }
        }
        let questions = if first {
            request.queries.len() as u16
        } else {
            0
        };
        buf[4..6].copy_from_slice(&questions.to_be_bytes());
        buf[6..8].copy_from_slice(&answers.to_be_bytes());
        if let Some(s) = signer.as_mut() {
            s.sign(&mut buf)?;
        }
        messages.push(buf);
        if rest.peek().is_none() {
            return Ok(messages);
        }
    }
}

/// An authoritative answer's header; the counts are written once known.
fn header(request: &Message) -> Header {
    let mut metadata = Metadata::new(request.metadata.id, MessageType::Response, OpCode::Query);
    metadata.authoritative = true;
    Header {
        metadata,
        counts: HeaderCounts::default(),
    }
}

/// A one-message error answer to `raw`, signed when `signer` is set.
fn error(raw: &[u8], code: ResponseCode, signer: Option<Signer>) -> Option<Vec<u8>> {
    let mut bytes = tsig::error_response(raw, code)?;
    if let Some(mut s) = signer {
        s.sign(&mut bytes).ok()?;
    }
    Some(bytes)
}
