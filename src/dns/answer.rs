//! answer: encodes a decision (or a negative answer) into a response, with
//! EDNS and the ECS option as RFC 6891 and RFC 7871 ask, and truncates over
//! UDP the way RFC 6891 §7 wants: TC with no records but with the OPT record.

use hickory_proto::op::{Edns, Header, HeaderCounts, MessageType, Metadata, OpCode, ResponseCode};
use hickory_proto::rr::Record;
use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsOption};
use hickory_proto::serialize::binary::BinEncoder;
use hickory_server::net::xfer::Protocol;
use hickory_server::server::{Request, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;

/// The largest UDP payload we send or advertise (DNS flag day 2020).
pub const MAX_UDP_PAYLOAD: u16 = 1232;

/// The response OPT record: our payload size, and the ECS option echoed with
/// `scope` when the query carried one.
pub fn response_edns(request_edns: &Edns, ecs: Option<(&ClientSubnet, u8)>) -> Edns {
    let mut edns = Edns::new();
    edns.set_max_payload(request_edns.max_payload().clamp(512, MAX_UDP_PAYLOAD));
    edns.set_version(0);
    if let Some((cs, scope)) = ecs {
        let mut out = *cs;
        out.set_scope_prefix(scope);
        edns.options_mut().insert(EdnsOption::Subnet(out));
    }
    edns
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
/// echoes the query's ECS option with `scope`.
pub async fn reply<R: ResponseHandler>(
    request: &Request,
    ecs: Option<&ClientSubnet>,
    scope: u8,
    sections: Sections<'_>,
    handle: R,
) -> ResponseInfo {
    let edns = request
        .edns
        .as_ref()
        .map(|e| response_edns(e, ecs.map(|cs| (cs, scope))));
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

/// Test-encodes the response at the UDP limit.
fn fits(request: &Request, edns: Option<&Edns>, s: &Sections<'_>, md: Metadata) -> bool {
    let mut buf = Vec::with_capacity(512);
    let mut enc = BinEncoder::new(&mut buf);
    enc.set_max_size(udp_limit(request));
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
