//! raw: one DNS message as bytes in, through our `DnsHandler`, an encoded
//! answer out, as hickory's own servers do it: shared by the fast path's
//! fallbacks (`dns::udp`) and the TCP listener (`dns::tcp`).

use std::net::SocketAddr;

use hickory_proto::op::{Header, HeaderCounts, MessageType, Metadata, OpCode, ResponseCode};
use hickory_proto::rr::Record;
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder, BinEncodable, BinEncoder};
use hickory_server::net::NetError;
use hickory_server::net::runtime::TokioTime;
use hickory_server::net::xfer::Protocol;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::{MessageResponse, MessageResponseBuilder, Queries};

use super::DnsHandler;

/// What hickory's `Server` does with one message: silence for what has no
/// header and for responses, FORMERR for what does not decode, else our
/// handler's answer through `reply`.
pub async fn answer<R: ResponseHandler>(
    handler: &DnsHandler,
    bytes: Vec<u8>,
    src: SocketAddr,
    protocol: Protocol,
    mut reply: R,
) {
    let Ok(header) = Header::read(&mut BinDecoder::new(&bytes)) else {
        return;
    };
    match Request::from_bytes(bytes, src, protocol) {
        Ok(request) => {
            if request.metadata.message_type == MessageType::Response {
                return;
            }
            handler
                .handle_request::<_, TokioTime>(&request, reply)
                .await;
        }
        Err(_) => {
            let Ok(queries) = Queries::read(&mut BinDecoder::new(&[]), 0) else {
                return;
            };
            let response = MessageResponseBuilder::new(&queries, None)
                .error_msg(&header.metadata, ResponseCode::FormErr);
            let _ = reply.send_response(response).await;
        }
    }
}

/// Encodes a response for UDP as hickory's own handle does: at most the
/// response OPT's payload size (512 without EDNS).
pub fn encode_udp<'a, A, N, S, D>(
    response: MessageResponse<'_, 'a, A, N, S, D>,
) -> Result<(ResponseInfo, Vec<u8>), NetError>
where
    A: Iterator<Item = &'a Record> + Send + 'a,
    N: Iterator<Item = &'a Record> + Send + 'a,
    S: Iterator<Item = &'a Record> + Send + 'a,
    D: Iterator<Item = &'a Record> + Send + 'a,
{
    let max = response.edns().map_or(512, |e| e.max_payload());
    encode(response, max)
}

/// Encodes a response in at most `max` bytes, or a bare SERVFAIL when it
/// cannot be encoded.
pub fn encode<'a, A, N, S, D>(
    response: MessageResponse<'_, 'a, A, N, S, D>,
    max: u16,
) -> Result<(ResponseInfo, Vec<u8>), NetError>
where
    A: Iterator<Item = &'a Record> + Send + 'a,
    N: Iterator<Item = &'a Record> + Send + 'a,
    S: Iterator<Item = &'a Record> + Send + 'a,
    D: Iterator<Item = &'a Record> + Send + 'a,
{
    let id = response.metadata().id;
    let mut bytes = Vec::with_capacity(512);
    let mut enc = BinEncoder::new(&mut bytes);
    enc.set_max_size(max);
    let info = match response.destructive_emit(&mut enc) {
        Ok(info) => info,
        Err(_) => {
            bytes.clear();
            let mut metadata = Metadata::new(id, MessageType::Response, OpCode::Query);
            metadata.response_code = ResponseCode::ServFail;
            let header = Header {
                metadata,
                counts: HeaderCounts::default(),
            };
            header.emit(&mut BinEncoder::new(&mut bytes))?;
            ResponseInfo::from(header)
        }
    };
    Ok((info, bytes))
}
