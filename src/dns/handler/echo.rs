//! Response wrappers around hickory's handle: `CookieEcho` adds our COOKIE
//! option, `EcsEcho` rebuilds the OPT of a catalog answer (ECS scope 0, NSID,
//! DO, payload cap).

use hickory_proto::op::Edns;
use hickory_proto::rr::Record;
use hickory_proto::rr::rdata::opt::ClientSubnet;
use hickory_server::server::{ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponse;

use crate::dns::answer::{self, Opt};
use crate::dns::cookie::{self};

/// Adds our COOKIE option (client cookie and server cookie) to a response
/// that has an OPT record: every answer `DnsHandler::answer` sends to a
/// query with a client cookie.
#[derive(Clone)]
pub(super) struct CookieEcho<R> {
    pub(super) inner: R,
    pub(super) cookie: Option<[u8; cookie::REPLY_LEN]>,
}

#[async_trait::async_trait]
impl<R: ResponseHandler> ResponseHandler for CookieEcho<R> {
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
    ) -> Result<ResponseInfo, hickory_server::net::NetError> {
        let (Some(c), Some(current)) = (self.cookie, response.edns()) else {
            return self.inner.send_response(response).await;
        };
        let mut edns = current.clone();
        edns.options_mut()
            .insert(hickory_proto::rr::rdata::opt::EdnsOption::Unknown(
                cookie::OPTION,
                c.to_vec(),
            ));
        let mut r: MessageResponse<'_, 'a, _, _, _, _> = response;
        r.set_edns(&edns);
        self.inner.send_response(r).await
    }
}

/// Wraps the catalog's response handle: echoes the query's ECS option with
/// scope 0 (the zone's answers do not depend on the client, RFC 7871 §7.2.1),
/// adds our NSID when asked, and caps the advertised UDP payload. The OPT is
/// rebuilt from the query's, so the catalog's own NSID (never set) and
/// options are replaced.
#[derive(Clone)]
pub(super) struct EcsEcho<R> {
    pub(super) inner: R,
    pub(super) ecs: Option<ClientSubnet>,
    /// The query's DO bit, copied in the response (RFC 3225 §3).
    pub(super) dnssec_ok: bool,
    /// `server.nsid` when the query asked for it.
    pub(super) nsid: Option<String>,
}

#[async_trait::async_trait]
impl<R: ResponseHandler> ResponseHandler for EcsEcho<R> {
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
    ) -> Result<ResponseInfo, hickory_server::net::NetError> {
        let Some(current) = response.edns().cloned() else {
            return self.inner.send_response(response).await;
        };
        let edns: Edns = answer::response_edns(
            &current,
            Opt {
                ecs: self.ecs.as_ref(),
                scope: 0,
                nsid: self.nsid.as_deref(),
                dnssec_ok: self.dnssec_ok,
            },
        );
        let mut r: MessageResponse<'_, 'a, _, _, _, _> = response;
        r.set_edns(&edns);
        self.inner.send_response(r).await
    }
}
