//! handler: the `RequestHandler` every DNS query goes through. Balanced names
//! (A/AAAA) and `_health` TXT are answered from the snapshot; everything else
//! goes to the zones' hickory `Catalog`, with the ECS option echoed (scope 0).

mod echo;
mod kinds;

use std::sync::Arc;

use hickory_proto::op::{MessageType, OpCode, ResponseCode};
use hickory_proto::rr::{DNSClass, Record, RecordType};
use hickory_server::net::runtime::Time;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};

use super::answer::{self, Opt, ecs_of};
use super::cookie::{self, CookieCounters, Verdict};
use super::health_txt;
use crate::metrics::{NameCounters, OTHER_NAME, Registry};
use crate::state::{Shared, Snapshot};
use echo::{CookieEcho, EcsEcho};

/// Answers DNS queries from the current snapshot.
#[derive(Clone)]
pub struct DnsHandler {
    shared: Arc<Shared>,
    /// Queries not at a balanced name.
    other: Arc<NameCounters>,
    /// Response rate limiting of UDP answers (`dns::udp` applies it).
    rrl: Arc<super::rrl::Rrl>,
    transfers: Arc<crate::metrics::TransferCounters>,
    /// This handler answers for hickory's own UDP server (no fast path):
    /// it gates UDP responses itself ([`super::rrl::gate`]).
    gate_udp: bool,
    /// DNS cookie outcomes (`dns::cookie`).
    cookies: Arc<CookieCounters>,
}

impl DnsHandler {
    pub fn new(shared: Arc<Shared>, registry: &Registry) -> DnsHandler {
        let table_size = shared.load().config.server.rrl.table_size;
        DnsHandler {
            shared,
            other: registry.name(OTHER_NAME),
            rrl: Arc::new(super::rrl::Rrl::new(table_size, registry.rrl.clone())),
            transfers: registry.transfers.clone(),
            gate_udp: false,
            cookies: registry.cookies.clone(),
        }
    }

    /// The same handler, gating UDP responses itself: for hickory's own UDP
    /// server, whose answers do not pass through `dns::udp`.
    pub fn gating_udp(&self) -> DnsHandler {
        DnsHandler {
            gate_udp: true,
            ..self.clone()
        }
    }

    pub fn transfer_counters(&self) -> &crate::metrics::TransferCounters {
        &self.transfers
    }

    pub fn rrl(&self) -> &Arc<super::rrl::Rrl> {
        &self.rrl
    }

    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    pub fn cookie_counters(&self) -> &Arc<CookieCounters> {
        &self.cookies
    }

    /// Counters of queries that are not for a balanced name.
    pub fn other_counters(&self) -> &Arc<NameCounters> {
        &self.other
    }

    fn count_other(&self, request: &Request, rcode: ResponseCode) {
        let qtype = request
            .queries
            .queries()
            .first()
            .map(|q| q.query_type())
            .unwrap_or(RecordType::Unknown(0));
        self.other.count(qtype, rcode);
    }
}

#[async_trait::async_trait]
impl RequestHandler for DnsHandler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        response: R,
    ) -> ResponseInfo {
        let transfer = request
            .queries
            .queries()
            .first()
            .is_some_and(|q| matches!(q.query_type(), RecordType::AXFR | RecordType::IXFR));
        if transfer {
            // TCP transfers never get here (`dns::tcp` hands them to `xfr`).
            return self.transfer_udp(request, response).await;
        }
        if let Some(sig) = &request.signature {
            return self.tsig_signed::<_, T>(request, sig, response).await;
        }
        if self.gate_udp {
            match super::rrl::gate::Gate::of(request, self, response) {
                Ok(gate) => return self.answer::<_, T>(request, gate).await,
                Err(response) => return self.answer::<_, T>(request, response).await,
            }
        }
        self.answer::<_, T>(request, response).await
    }
}

/// What the server records of a query left unanswered: its own header.
fn unanswered(request: &Request) -> ResponseInfo {
    ResponseInfo::from(hickory_proto::op::Header {
        metadata: request.metadata,
        counts: Default::default(),
    })
}

impl DnsHandler {
    /// AXFR or IXFR over UDP: `xfr` decides (an IXFR gets the SOA alone).
    async fn transfer_udp<R: ResponseHandler>(
        &self,
        request: &Request,
        mut response: R,
    ) -> ResponseInfo {
        let answer = super::xfr::answer(self, request.as_slice().to_vec(), request.src(), false);
        let Some(bytes) = answer.messages.first() else {
            return unanswered(request);
        };
        let sent = match answer.signer {
            Some(signer) => {
                let mut reply = super::tsig::TsigReply {
                    inner: response,
                    signer,
                    peer: request.src(),
                };
                super::tsig::send_encoded(&mut reply, bytes).await
            }
            None => super::tsig::send_encoded(&mut response, bytes).await,
        };
        sent.unwrap_or_else(|_| unanswered(request))
    }

    /// A TSIG-signed query (a secondary's SOA check): answered and signed
    /// with the key of that name, or NOTAUTH with the TSIG error. Transfers
    /// themselves are `xfr`'s.
    async fn tsig_signed<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        sig: &Record<hickory_proto::rr::rdata::TSIG>,
        mut response: R,
    ) -> ResponseInfo {
        let snap = self.shared.load_full();
        let key = super::tsig::key_named(&snap.config, &sig.name);
        let now = crate::wallclock::unix_secs();
        match super::tsig::verify(request.as_slice(), sig, key, now) {
            Ok(signer) => {
                let reply = super::tsig::TsigReply {
                    inner: response,
                    signer,
                    peer: request.src(),
                };
                self.answer::<_, T>(request, reply).await
            }
            Err(failure) => {
                tracing::info!(peer = %request.src(), error = ?failure.error, "signed query refused: TSIG check failed");
                let Some(bytes) = failure.answer(request.as_slice()) else {
                    return unanswered(request);
                };
                super::tsig::send_encoded(&mut response, &bytes)
                    .await
                    .unwrap_or_else(|_| unanswered(request))
            }
        }
    }

    /// DNS cookies first (RFC 7873): a malformed COOKIE option gets
    /// FORMERR; over `require_cookie_over`, a UDP query without a valid
    /// server cookie gets BADCOOKIE or an empty truncated answer; every
    /// other answer to a query with a client cookie carries ours.
    async fn answer<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        response: R,
    ) -> ResponseInfo {
        let snap = self.shared.load_full();
        let received = match cookie::in_message(request.as_slice()) {
            Some(Err(cookie::Malformed)) => {
                return self
                    .reject(&snap, request, super::rejected::Reason::Cookie, response)
                    .await;
            }
            Some(Ok(c)) => Some(c),
            None => None,
        };
        let server = &snap.config.server;
        let now = crate::wallclock::unix_secs() as u32;
        let checked =
            received.map(|c| cookie::check(&c, &server.cookie_secrets, request.src().ip(), now));
        let verdict = checked.map_or(Verdict::None, |c| c.verdict);
        verdict
            .counter(&self.cookies)
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let response = CookieEcho {
            inner: response,
            cookie: checked.map(|c| c.reply),
        };
        if verdict != Verdict::Valid
            && request.protocol() == hickory_server::net::xfer::Protocol::Udp
            && let Some(per_second) = server.require_cookie_over
            && self.rrl.over_cookieless(
                per_second,
                &server.rrl.exempt,
                request.src().ip(),
                self.rrl.now(),
            )
        {
            return self.cookie_required(request, verdict, response).await;
        }
        self.answer_checked::<_, T>(&snap, request, response).await
    }

    /// Over `require_cookie_over`: BADCOOKIE to a query with a client cookie
    /// (the fresh cookie rides along), else an empty answer with TC set, so
    /// a real client retries over TCP or with the cookie.
    async fn cookie_required<R: ResponseHandler>(
        &self,
        request: &Request,
        verdict: Verdict,
        mut response: R,
    ) -> ResponseInfo {
        let mut md = hickory_proto::op::Metadata::response_from_request(&request.metadata);
        if verdict == Verdict::None {
            self.cookies
                .truncated
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            md.truncation = true;
        } else {
            self.cookies
                .badcookie
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            md.response_code = ResponseCode::BADCOOKIE;
        }
        let edns = request.edns.as_ref().map(|e| {
            let mut edns = answer::response_edns(
                e,
                Opt {
                    dnssec_ok: answer::dnssec_ok(request),
                    ..Opt::default()
                },
            );
            answer::echo_compact_ok(request, &mut edns);
            edns
        });
        let resp = hickory_server::zone_handler::MessageResponseBuilder::new(
            &request.queries,
            edns.as_ref(),
        )
        .build_no_records(md);
        response
            .send_response(resp)
            .await
            .unwrap_or_else(|_| answer::failed(request))
    }

    async fn answer_checked<R: ResponseHandler, T: Time>(
        &self,
        snap: &Arc<Snapshot>,
        request: &Request,
        response: R,
    ) -> ResponseInfo {
        let snap = snap.clone();
        if let Some(reason) = rejected(request) {
            return self.reject(&snap, request, reason, response).await;
        }
        let plain = request.metadata.message_type == MessageType::Query
            && request.metadata.op_code == OpCode::Query
            && request.queries.len() == 1
            && request.edns.as_ref().is_none_or(|e| e.version() == 0);
        if plain {
            let query = &request.queries.queries()[0];
            let name = query.name().to_string();
            let qtype = query.query_type();
            if query.query_class() == DNSClass::CH {
                return self.chaos(&snap, request, &name, qtype, response).await;
            }
            // A DO query in a signed zone: answered with its signatures.
            let do_bit = answer::dnssec_ok(request);
            let signed = (query.query_class() == DNSClass::IN
                && (do_bit || qtype == RecordType::DNSKEY))
                .then(|| snap.zones.find_index(query.name()))
                .flatten()
                .and_then(|i| snap.dnssec.zone(i));
            if let Some(b) = snap.steering.get(&name) {
                return match qtype {
                    RecordType::A | RecordType::AAAA | RecordType::ANY => {
                        self.balanced(&snap, request, b, qtype, signed, response)
                            .await
                    }
                    // A name whose pools answer CNAMEs: every type.
                    _ if b.cname => {
                        self.balanced(&snap, request, b, qtype, signed, response)
                            .await
                    }
                    _ if signed.is_some() => self.dnssec(&snap, request, signed, response).await,
                    _ => self.balanced_other(&snap, request, qtype, response).await,
                };
            }
            if qtype == RecordType::TXT
                && let Some(rest) = strip_prefix_ci(&name, health_txt::PREFIX)
                && let Some(b) = snap.steering.get(rest)
            {
                return self.health(&snap, request, b, response).await;
            }
            if signed.is_some() {
                return self.dnssec(&snap, request, signed, response).await;
            }
        }
        let ecs = ecs_of(request);
        let info = snap
            .zones
            .catalog
            .handle_request::<_, T>(
                request,
                EcsEcho {
                    inner: response,
                    ecs,
                    dnssec_ok: answer::dnssec_ok(request),
                    nsid: nsid_if_asked(&snap, request),
                },
            )
            .await;
        self.count_other(request, info.response_code);
        info
    }
}

/// Why `request` gets an error for what it is (`rejected`), if it does.
fn rejected(request: &Request) -> Option<super::rejected::Reason> {
    use super::rejected::Reason;
    if request.metadata.message_type != MessageType::Query {
        return None;
    }
    if request.metadata.op_code != OpCode::Query {
        return Some(Reason::Opcode);
    }
    let queries = request.queries.queries();
    if queries
        .iter()
        .any(|q| !matches!(q.query_class(), DNSClass::IN | DNSClass::CH))
    {
        return Some(Reason::Class);
    }
    if queries
        .iter()
        .any(|q| q.query_type() == crate::dnssec::NXNAME)
    {
        return Some(Reason::Nxname);
    }
    if super::fast::wire::ecs_malformed(request.as_slice()) {
        return Some(Reason::Ecs);
    }
    None
}

/// `server.nsid` for a query that asked for it (allocates only then).
fn nsid_if_asked(snap: &Snapshot, request: &Request) -> Option<String> {
    snap.config
        .server
        .nsid
        .as_ref()
        .filter(|_| answer::nsid_asked(request))
        .cloned()
}

fn strip_prefix_ci<'n>(name: &'n str, prefix: &str) -> Option<&'n str> {
    if name.len() > prefix.len() && name[..prefix.len()].eq_ignore_ascii_case(prefix) {
        Some(&name[prefix.len()..])
    } else {
        None
    }
}
