//! cname: a balanced answer that holds CNAMEs, written as wire bytes: the
//! name's CNAME, each balanced name a chain followed (its CNAME or its
//! addresses, owner a pointer to the previous target), then our OPT. The
//! handler (`DnsHandler::balanced`) writes the same records through hickory.
//! What this leaves to the handler: a chain that ends in NODATA (the last
//! name's zone SOA goes in the authority section) and DO queries in signed
//! zones (the handler copies the prepared RRSIGs).

use hickory_proto::op::ResponseCode;

use super::{CLASS_IN, HEADER, Outcome, Response, Sections, TYPE_A, TYPE_AAAA};
use crate::config::Config;
use crate::steer::{Answer, Family};

const TYPE_CNAME: u16 = 5;

/// The wire length of a name written as text without the trailing dot.
fn name_len(text: &str) -> usize {
    text.len() + 2
}

/// Writes `text` (lower case, no trailing dot, valid labels) as labels:
/// one copy of the text behind a length octet, each dot then replaced by
/// the length of the label after it (a `split('.')` per label cost a third
/// of a CNAME answer).
fn put_name(out: &mut Vec<u8>, text: &str) {
    let start = out.len();
    out.push(0);
    out.extend_from_slice(text.as_bytes());
    let mut len_at = start;
    for i in start + 1..out.len() {
        if out[i] == b'.' {
            out[len_at] = (i - len_at - 1) as u8;
            len_at = i;
        }
    }
    out[len_at] = (out.len() - len_at - 1) as u8;
    out.push(0);
}

/// Writes `a`, whose first decision answers a CNAME.
pub(super) fn write(r: &mut Response<'_, '_>, config: &Config, a: &Answer) -> Outcome {
    let rtype = match a.family {
        Family::V4 => TYPE_A,
        Family::V6 => TYPE_AAAA,
    };
    let last = a.last();
    if last.cname.is_none() && last.endpoints.is_empty() {
        return Outcome::Fallback;
    }
    let mut body_len = 0;
    let mut count = 0usize;
    for d in a.decisions() {
        match d.cname_target(config) {
            Some(t) => {
                body_len += 12 + name_len(t);
                count += 1;
            }
            None if d.cname.is_some() => return Outcome::Fallback,
            None => {
                body_len += d
                    .endpoints
                    .iter()
                    .map(|ip| if ip.is_ipv4() { 16 } else { 28 })
                    .sum::<usize>();
                count += d.endpoints.len();
            }
        }
    }
    let Ok(answers) = u16::try_from(count) else {
        return r.truncated(ResponseCode::NoError, true, a.scope);
    };
    if !r.fits(body_len) {
        return r.truncated(ResponseCode::NoError, true, a.scope);
    }
    let start = r.out.len();
    let s = Sections {
        answers,
        authorities: 0,
        additionals: 0,
        body: &[],
        soa_at: None,
    };
    r.header(ResponseCode::NoError, true, false, &s);
    r.out.extend_from_slice(r.question);
    // The owner of the next record: the question, then each target.
    let mut owner = HEADER as u16;
    for d in a.decisions() {
        let head = |out: &mut Vec<u8>, owner: u16, rtype: u16| {
            out.extend_from_slice(&(0xc000 | owner).to_be_bytes());
            out.extend_from_slice(&rtype.to_be_bytes());
            out.extend_from_slice(&CLASS_IN.to_be_bytes());
            out.extend_from_slice(&d.ttl.to_be_bytes());
        };
        match d.cname_target(config) {
            Some(t) => {
                head(r.out, owner, TYPE_CNAME);
                r.out.extend_from_slice(&(name_len(t) as u16).to_be_bytes());
                // A pointer reaches 14 bits; `fits` keeps UDP far below.
                let Ok(at) = u16::try_from(r.out.len() - start) else {
                    return Outcome::Fallback;
                };
                if at > 0x3fff {
                    return Outcome::Fallback;
                }
                owner = at;
                put_name(r.out, t);
            }
            None => {
                for ip in &d.endpoints {
                    head(r.out, owner, rtype);
                    match ip {
                        std::net::IpAddr::V4(v4) => {
                            r.out.extend_from_slice(&4u16.to_be_bytes());
                            r.out.extend_from_slice(&v4.octets());
                        }
                        std::net::IpAddr::V6(v6) => {
                            r.out.extend_from_slice(&16u16.to_be_bytes());
                            r.out.extend_from_slice(&v6.octets());
                        }
                    }
                }
            }
        }
    }
    r.opt(a.scope);
    Outcome::Reply
}

#[cfg(test)]
mod tests {
    use super::{name_len, put_name};
    use hickory_proto::rr::Name;
    use hickory_proto::serialize::binary::{BinEncodable, BinEncoder};

    /// The same octets as hickory's encoder (without compression), after
    /// whatever the buffer held.
    #[test]
    fn names_are_written_as_hickory_writes_them() {
        for text in ["www.cdn-a.example.net", "a.b", "x", "eu.edge.example.test"] {
            let mut ours = vec![0xaa, 0xbb];
            put_name(&mut ours, text);
            let mut theirs = Vec::new();
            let mut encoder = BinEncoder::new(&mut theirs);
            encoder.set_canonical_form(true);
            Name::from_ascii(format!("{text}."))
                .expect("a valid name")
                .emit(&mut encoder)
                .expect("encodes");
            assert_eq!(&ours[..2], &[0xaa, 0xbb]);
            assert_eq!(&ours[2..], &theirs[..], "{text}");
            assert_eq!(ours.len() - 2, name_len(text), "{text}");
        }
    }
}
