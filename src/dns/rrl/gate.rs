//! gate: rate limiting where hickory's own UDP server sends the answers
//! (`server.fast_path = false`). The fast path's workers charge the encoded
//! response (`dns::udp`); here the response is still records, so it is
//! charged by its rcode and the query's name (or zone), as [`super::classify`]
//! charges bytes, and a slip is built anew from the query.

use std::net::SocketAddr;

use hickory_proto::op::{Metadata, ResponseCode};
use hickory_proto::rr::Record;
use hickory_server::net::NetError;
use hickory_server::net::xfer::Protocol;
use hickory_server::server::{Request, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::{MessageResponse, MessageResponseBuilder};

use super::{Kind, Rrl, Verdict, zone_of};
use crate::dns::DnsHandler;

/// Wraps hickory's UDP response handle for one query from `client`.
#[derive(Clone)]
pub struct Gate<R> {
    pub inner: R,
    pub handler: DnsHandler,
    pub client: SocketAddr,
    /// The query as received (for the slip), and its lower-case name.
    pub query: Vec<u8>,
    pub name: String,
}

impl<R> Gate<R> {
    /// A gate for `request` when rate limiting applies to it; None otherwise.
    pub fn of(request: &Request, handler: &DnsHandler, inner: R) -> Result<Gate<R>, R> {
        let snap = handler.shared().load();
        // A valid server cookie proves the source address: not limited.
        if request.protocol() != Protocol::Udp
            || !Rrl::applies(&snap.config.server.rrl, request.src().ip())
            || crate::dns::cookie::verified(request.as_slice(), &snap, request.src().ip())
        {
            return Err(inner);
        }
        let name = request
            .queries
            .queries()
            .first()
            .map(|q| q.name().to_string().to_ascii_lowercase())
            .unwrap_or_default();
        Ok(Gate {
            inner,
            handler: handler.clone(),
            client: request.src(),
            query: request.as_slice().to_vec(),
            name,
        })
    }

    fn verdict(&self, rcode: ResponseCode) -> Verdict {
        let snap = self.handler.shared().load();
        let limits = &snap.config.server.rrl;
        let (kind, name): (Kind, &[u8]) = match rcode {
            ResponseCode::NoError => (Kind::Positive, self.name.as_bytes()),
            ResponseCode::NXDomain => {
                let name = self.name.as_bytes();
                (
                    Kind::NxDomain,
                    zone_of(name, &snap.config.zones).unwrap_or(name),
                )
            }
            _ => (Kind::Error, &[][..]),
        };
        let rrl = self.handler.rrl();
        rrl.check(limits, self.client.ip(), kind, name, rrl.now())
    }
}

#[async_trait::async_trait]
impl<R: ResponseHandler> ResponseHandler for Gate<R> {
    async fn send_response<'a>(
        &mut self,
        response: MessageResponse<
            '_,
            'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
        >,
    ) -> Result<ResponseInfo, NetError> {
        let metadata = *response.metadata();
        match self.verdict(metadata.response_code) {
            Verdict::Send => self.inner.send_response(response).await,
            Verdict::Drop => Ok(ResponseInfo::from(hickory_proto::op::Header {
                metadata,
                counts: Default::default(),
            })),
            Verdict::Slip => {
                drop(response);
                let Ok(query) = Request::from_bytes(self.query.clone(), self.client, Protocol::Udp)
                else {
                    return Ok(ResponseInfo::from(hickory_proto::op::Header {
                        metadata,
                        counts: Default::default(),
                    }));
                };
                let mut md = Metadata::response_from_request(&query.metadata);
                md.authoritative = metadata.authoritative;
                md.truncation = true;
                let slip = MessageResponseBuilder::new(&query.queries, None).build_no_records(md);
                self.inner.send_response(slip).await
            }
        }
    }
}
