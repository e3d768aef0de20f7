//! answer: encodes a decision (or a negative answer) into a response, with
//! EDNS and the ECS option as RFC 6891 and RFC 7871 ask, and truncates over
//! UDP the way RFC 6891 §7 wants: TC with no records but with the OPT record.

use hickory_proto::op::{Edns, Header, HeaderCounts, MessageType, Metadata, OpCode, ResponseCode};
use hickory_proto::rr::Record;
use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsCode, EdnsOption, NSIDPayload};
use hickory_proto::serialize::binary::BinEncoder;
use hickory_server::net::xfer::Protocol;
use hickory_server::server::{Request, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;

/// The ECS option of a request, if any.
pub fn ecs_of(request: &Request) -> Option<ClientSubnet> {
    match request.edns.as_ref()?.option(EdnsCode::Subnet)? {
        EdnsOption::Subnet(cs) => Some(*cs),
        _ => None,
    }
}

/// The largest UDP payload we send or advertise (DNS flag day 2020).
pub const MAX_UDP_PAYLOAD: u16 = 1232;

/// What the response OPT record carries besides the payload size.
#[derive(Clone, Copy, Default)]
pub struct Opt<'a> {
    /// The query's ECS option, echoed with `scope`.
    pub ecs: Option<&'a ClientSubnet>,
    pub scope: u8,
    /// `server.nsid`: [`reply`] sends it only when the query has an NSID
    /// option (RFC 5001 §2.1: never unasked).
    pub nsid: Option<&'a str>,
    /// Set DO in the response (an answer from a signed zone to a DO query).
    pub dnssec_ok: bool,
}

/// Echoes CO in `edns` (built by [`response_edns`]) when the query set it
/// with DO.
pub fn echo_compact_ok(request: &Request, edns: &mut Edns) {
    if compact_ok(request) {
        edns.flags_mut().z |= CO;
    }
}

/// The response OPT record: our payload size, the ECS option echoed with
/// its scope when the query carried one, and `opt.nsid` if any (the caller
/// checks [`nsid_asked`]; any payload in the query's option is ignored, as
/// RFC 5001 §2.1 says).
pub fn response_edns(request_edns: &Edns, opt: Opt<'_>) -> Edns {
    let mut edns = Edns::new();
    edns.set_max_payload(request_edns.max_payload().clamp(512, MAX_UDP_PAYLOAD));
    edns.set_version(0);
    if opt.dnssec_ok {
        edns.set_dnssec_ok(true);
    }
    if let Some(cs) = opt.ecs {
        let mut out = *cs;
        out.set_scope_prefix(opt.scope);
        edns.options_mut().insert(EdnsOption::Subnet(out));
    }
    if let Some(id) = opt.nsid
        && let Ok(payload) = NSIDPayload::new(id.as_bytes())
    {
        edns.options_mut().insert(EdnsOption::NSID(payload));
    }
    edns
}

/// The Compact-OK flag (RFC 9824 §4) among the EDNS flags.
const CO: u16 = 0x4000;

/// Whether the query has the DO and the CO bit: a nonexistent name in a
/// signed zone gets NXDOMAIN, and CO is echoed.
pub fn compact_ok(request: &Request) -> bool {
    request
        .edns
        .as_ref()
        .is_some_and(|e| e.flags().dnssec_ok && e.flags().z & CO != 0)
}

/// Whether the query has the DO bit (RFC 3225).
pub fn dnssec_ok(request: &Request) -> bool {
    request.edns.as_ref().is_some_and(|e| e.flags().dnssec_ok)
}

/// Whether the query carries an NSID option.
pub fn nsid_asked(request: &Request) -> bool {
    request
        .edns
        .as_ref()
        .is_some_and(|e| e.option(EdnsCode::NSID).is_some())
}

/// The byte limit for a UDP response to this request.
pub fn udp_limit(request: &Request) -> u16 {
    match &request.edns {
        Some(e) => e.max_payload().clamp(512, MAX_UDP_PAYLOAD),
        None => 512,
    }
}

/// A response's sections.
pub struct Sections<'r> {
    pub rcode: ResponseCode,
    pub answers: &'r [Record],
    pub soa: &'r [Record],
}

/// Sends an authoritative response whose OPT record (when the query had one)
/// carries what `opt` says (`response_edns`).
pub async fn reply<R: ResponseHandler>(
    request: &Request,
    opt: Opt<'_>,
    sections: Sections<'_>,
    handle: R,
) -> ResponseInfo {
    let opt = Opt {
        nsid: opt.nsid.filter(|_| nsid_asked(request)),
        // RFC 3225 §3: the DO bit of the query is copied in the response.
        dnssec_ok: opt.dnssec_ok || dnssec_ok(request),
        ..opt
    };
    let edns = request.edns.as_ref().map(|e| {
        let mut edns = response_edns(e, opt);
        echo_compact_ok(request, &mut edns);
        edns
    });
    send(request, edns.as_ref(), sections, handle).await
}

/// Sends an authoritative response. Over UDP, an answer that does not fit is
/// replaced by an empty TC response that keeps its OPT record.
pub async fn send<R: ResponseHandler>(
    request: &Request,
    edns: Option<&Edns>,
    sections: Sections<'_>,
    mut handle: R,
) -> ResponseInfo {
    let mut md = Metadata::response_from_request(&request.metadata);
    md.authoritative = true;
    md.response_code = sections.rcode;
    if request.protocol() == Protocol::Udp && !fits(request, edns, &sections, md) {
        md.truncation = true;
        let resp = MessageResponseBuilder::new(&request.queries, edns).build_no_records(md);
        return handle
            .send_response(resp)
            .await
            .unwrap_or_else(|_| failed(request));
    }
    let resp = MessageResponseBuilder::new(&request.queries, edns).build(
        md,
        sections.answers.iter(),
        std::iter::empty(),
        sections.soa.iter(),
        std::iter::empty(),
    );
    handle
        .send_response(resp)
        .await
        .unwrap_or_else(|_| failed(request))
}

/// Test-encodes the response at the UDP limit, less the COOKIE option our
/// answer to a query with a client cookie carries (added on the way out).
fn fits(request: &Request, edns: Option<&Edns>, s: &Sections<'_>, md: Metadata) -> bool {
    let mut buf = Vec::with_capacity(512);
    let mut enc = BinEncoder::new(&mut buf);
    let cookie = match super::cookie::in_message(request.as_slice()) {
        Some(Ok(_)) if edns.is_some() => super::cookie::OPTION_WIRE_LEN as u16,
        _ => 0,
    };
    enc.set_max_size(udp_limit(request).saturating_sub(cookie));
    let resp = MessageResponseBuilder::new(&request.queries, edns).build(
        md,
        s.answers.iter(),
        std::iter::empty(),
        s.soa.iter(),
        std::iter::empty(),
    );
    match resp.destructive_emit(&mut enc) {
        Ok(info) => !info.truncation,
        Err(_) => false,
    }
}

/// The ResponseInfo for a response that could not be sent.
pub fn failed(request: &Request) -> ResponseInfo {
    let mut metadata = Metadata::new(request.metadata.id, MessageType::Response, OpCode::Query);
    metadata.response_code = ResponseCode::ServFail;
    ResponseInfo::from(Header {
        metadata,
        counts: HeaderCounts::default(),
    })
}
