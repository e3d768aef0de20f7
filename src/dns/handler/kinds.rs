//! The answers `DnsHandler::answer_checked` hands each kind of query to:
//! rejected queries, signed zones, balanced names (A/AAAA and their other
//! types), `_health` TXT and CHAOS.

use std::net::IpAddr;

use hickory_proto::op::{MessageType, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, TXT};
use hickory_proto::rr::{DNSClass, RData, Record, RecordType};
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};

use crate::dns::answer::{self, Opt, Sections, ecs_of};
use crate::dns::chaos;
use crate::dns::health_txt;
use crate::state::Snapshot;
use crate::steer::{self, Family, Inputs, client};

use super::{DnsHandler, EcsEcho, nsid_if_asked, unanswered};

impl DnsHandler {
    /// The error answer to a rejected query, counted (`rejected`), never
    /// logged on its own: NOTIMP as a bare header (its ID and opcode, no
    /// other flag), REFUSED or FORMERR with the question and an OPT
    /// record without options.
    pub(super) async fn reject<R: ResponseHandler>(
        &self,
        snap: &Snapshot,
        request: &Request,
        reason: crate::dns::rejected::Reason,
        mut response: R,
    ) -> ResponseInfo {
        use crate::dns::rejected::Reason;
        crate::dns::rejected::count(reason);
        let rcode = match reason {
            Reason::Opcode => ResponseCode::NotImp,
            Reason::Class => ResponseCode::Refused,
            Reason::Ecs | Reason::Nxname | Reason::Cookie => ResponseCode::FormErr,
        };
        self.count_other(request, rcode);
        if reason == Reason::Opcode {
            let Ok(queries) = hickory_server::zone_handler::Queries::read(
                &mut hickory_proto::serialize::binary::BinDecoder::new(&[]),
                0,
            ) else {
                return unanswered(request);
            };
            let mut md = hickory_proto::op::Metadata::new(
                request.metadata.id,
                MessageType::Response,
                request.metadata.op_code,
            );
            md.response_code = ResponseCode::NotImp;
            let resp = hickory_server::zone_handler::MessageResponseBuilder::new(&queries, None)
                .build_no_records(md);
            return response
                .send_response(resp)
                .await
                .unwrap_or_else(|_| unanswered(request));
        }
        answer::reply(
            request,
            Opt {
                ecs: None,
                scope: 0,
                nsid: snap.config.server.nsid.as_deref(),
                dnssec_ok: false,
            },
            Sections {
                rcode,
                answers: &[],
                soa: &[],
            },
            response,
        )
        .await
    }

    /// A DO query in a signed zone, outside the balanced answers: the
    /// zone's records with their signatures, or a signed denial.
    pub(super) async fn dnssec<R: ResponseHandler>(
        &self,
        snap: &Snapshot,
        request: &Request,
        signed: Option<&crate::dnssec::SignedZone>,
        response: R,
    ) -> ResponseInfo {
        let Some(signed) = signed else {
            return answer::failed(request);
        };
        let query = &request.queries.queries()[0];
        let now = crate::wallclock::unix_secs() as u32;
        let (rcode, mut answers, mut authority) = crate::dns::signed::answer(
            signed,
            query.name(),
            query.query_type(),
            now,
            answer::compact_ok(request),
        );
        let do_bit = answer::dnssec_ok(request);
        if !do_bit {
            // A DNSKEY query without DO: the keys, no signatures or proofs.
            let plain =
                |r: &Record| !matches!(r.record_type(), RecordType::RRSIG | RecordType::NSEC);
            answers.retain(plain);
            authority.retain(plain);
        }
        let ecs = ecs_of(request);
        self.count_other(request, rcode);
        answer::reply(
            request,
            Opt {
                ecs: ecs.as_ref(),
                scope: 0,
                nsid: snap.config.server.nsid.as_deref(),
                dnssec_ok: do_bit,
            },
            Sections {
                rcode,
                answers: &answers,
                soa: &authority,
            },
            response,
        )
        .await
    }

    pub(super) async fn balanced<R: ResponseHandler>(
        &self,
        snap: &Snapshot,
        request: &Request,
        b: &steer::BalancedName,
        qtype: RecordType,
        signed: Option<&crate::dnssec::SignedZone>,
        response: R,
    ) -> ResponseInfo {
        let ecs = ecs_of(request);
        let asker = steer::Asker {
            src: request.src().ip(),
            ecs: ecs.as_ref().map(|cs| (cs.addr(), cs.source_prefix())),
        };
        let family = if qtype == RecordType::AAAA {
            Family::V6
        } else {
            Family::V4
        };
        let inputs = Inputs {
            config: &snap.config,
            health: &snap.health,
        };
        // A and AAAA follow a CNAME chain through our balanced names.
        let address_query = matches!(qtype, RecordType::A | RecordType::AAAA);
        let follow = address_query.then_some(&*snap.steering);
        let a = steer::answer(
            b,
            asker,
            family,
            &snap.geo,
            &inputs,
            &mut rand::rng(),
            None,
            follow,
        );
        if a.decision.cname.is_none()
            && !matches!(qtype, RecordType::A | RecordType::AAAA | RecordType::ANY)
        {
            // A name that can answer CNAMEs gave addresses: other types
            // are answered as at any balanced name.
            return match signed {
                Some(_) => self.dnssec(snap, request, signed, response).await,
                None => self.balanced_other(snap, request, qtype, response).await,
            };
        }
        for c in a.counters(b, &snap.steering) {
            // Counted, not logged: this is per query (the events log the change).
            c.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        let (decision, scope) = (&a.decision, a.scope);
        if a.rcode() == steer::Rcode::Servfail {
            b.counters.count(qtype, ResponseCode::ServFail);
            return answer::reply(
                request,
                Opt {
                    ecs: ecs.as_ref(),
                    scope,
                    nsid: snap.config.server.nsid.as_deref(),
                    dnssec_ok: answer::dnssec_ok(request),
                },
                Sections {
                    rcode: ResponseCode::ServFail,
                    answers: &[],
                    soa: &[],
                },
                response,
            )
            .await;
        }
        let owner = request.queries.queries()[0].original().name().clone();
        if decision.cname.is_some() {
            let (answers, soa) = crate::dns::cname::records(snap, &owner, &a, signed.is_some());
            b.counters.count(qtype, ResponseCode::NoError);
            return answer::reply(
                request,
                Opt {
                    ecs: ecs.as_ref(),
                    scope,
                    nsid: snap.config.server.nsid.as_deref(),
                    dnssec_ok: answer::dnssec_ok(request),
                },
                Sections {
                    rcode: ResponseCode::NoError,
                    answers: &answers,
                    soa: &soa,
                },
                response,
            )
            .await;
        }
        let mut answers: Vec<Record> = decision
            .endpoints
            .iter()
            .map(|ip| {
                let rdata = match ip {
                    IpAddr::V4(a) => RData::A(A(*a)),
                    IpAddr::V6(a) => RData::AAAA(AAAA(*a)),
                };
                Record::from_rdata(owner.clone(), decision.ttl, rdata)
            })
            .collect();
        let soa = match signed {
            Some(signed) => {
                let now = crate::wallclock::unix_secs() as u32;
                if answers.is_empty() {
                    let name = request.queries.queries()[0].name();
                    crate::dns::signed::denial_for(signed, name, qtype, now)
                } else {
                    let sigs = signed.balanced_sigs(&answers, now);
                    answers.extend(sigs);
                    Vec::new()
                }
            }
            None if answers.is_empty() => self.soa_for(snap, request),
            None => Vec::new(),
        };
        b.counters.count(qtype, ResponseCode::NoError);
        answer::reply(
            request,
            Opt {
                ecs: ecs.as_ref(),
                scope,
                nsid: snap.config.server.nsid.as_deref(),
                dnssec_ok: signed.is_some(),
            },
            Sections {
                rcode: ResponseCode::NoError,
                answers: &answers,
                soa: &soa,
            },
            response,
        )
        .await
    }

    /// Other types at a balanced name: the zone file's records if it has
    /// them, else NODATA (the name exists: it has addresses).
    pub(super) async fn balanced_other<R: ResponseHandler>(
        &self,
        snap: &Snapshot,
        request: &Request,
        qtype: RecordType,
        response: R,
    ) -> ResponseInfo {
        let query = &request.queries.queries()[0];
        let in_zone = snap.zones.find(query.name()).is_some_and(|z| {
            z.has_rrset(query.name(), qtype) || z.has_rrset(query.name(), RecordType::CNAME)
        });
        let ecs = ecs_of(request);
        if in_zone {
            let info = snap
                .zones
                .catalog
                .handle_request::<_, hickory_server::net::runtime::TokioTime>(
                    request,
                    EcsEcho {
                        inner: response,
                        ecs,
                        dnssec_ok: answer::dnssec_ok(request),
                        nsid: nsid_if_asked(snap, request),
                    },
                )
                .await;
            self.count_other(request, info.response_code);
            return info;
        }
        let soa = self.soa_for(snap, request);
        self.count_other(request, ResponseCode::NoError);
        answer::reply(
            request,
            Opt {
                ecs: ecs.as_ref(),
                scope: 0,
                nsid: snap.config.server.nsid.as_deref(),
                dnssec_ok: false,
            },
            Sections {
                rcode: ResponseCode::NoError,
                answers: &[],
                soa: &soa,
            },
            response,
        )
        .await
    }

    pub(super) async fn health<R: ResponseHandler>(
        &self,
        snap: &Snapshot,
        request: &Request,
        b: &steer::BalancedName,
        response: R,
    ) -> ResponseInfo {
        let src = client::canonical(request.src().ip());
        let allowed = snap
            .config
            .server
            .health_query_allow
            .iter()
            .any(|net| net.contains(&src));
        let ecs = ecs_of(request);
        if !allowed {
            self.count_other(request, ResponseCode::Refused);
            return answer::reply(
                request,
                Opt {
                    ecs: ecs.as_ref(),
                    scope: 0,
                    nsid: snap.config.server.nsid.as_deref(),
                    dnssec_ok: false,
                },
                Sections {
                    rcode: ResponseCode::Refused,
                    answers: &[],
                    soa: &[],
                },
                response,
            )
            .await;
        }
        let owner = request.queries.queries()[0].original().name().clone();
        let answers: Vec<Record> = health_txt::lines(b, snap)
            .into_iter()
            .map(|line| Record::from_rdata(owner.clone(), 0, RData::TXT(TXT::new(vec![line]))))
            .collect();
        self.count_other(request, ResponseCode::NoError);
        answer::reply(
            request,
            Opt {
                ecs: ecs.as_ref(),
                scope: 0,
                nsid: snap.config.server.nsid.as_deref(),
                dnssec_ok: false,
            },
            Sections {
                rcode: ResponseCode::NoError,
                answers: &answers,
                soa: &[],
            },
            response,
        )
        .await
    }

    /// CHAOS TXT: `id.server` and friends (`chaos`). The fast path hands
    /// every class but IN to this handler.
    pub(super) async fn chaos<R: ResponseHandler>(
        &self,
        snap: &Snapshot,
        request: &Request,
        name: &str,
        qtype: RecordType,
        response: R,
    ) -> ResponseInfo {
        let ecs = ecs_of(request);
        let (rcode, answers) = match chaos::answer(&snap.config.server, name, qtype) {
            chaos::Chaos::Refused => (ResponseCode::Refused, Vec::new()),
            chaos::Chaos::NoData => (ResponseCode::NoError, Vec::new()),
            chaos::Chaos::Text(text) => {
                let owner = request.queries.queries()[0].original().name().clone();
                let mut r = Record::from_rdata(owner, 0, RData::TXT(TXT::new(vec![text.into()])));
                r.dns_class = DNSClass::CH;
                (ResponseCode::NoError, vec![r])
            }
        };
        self.count_other(request, rcode);
        answer::reply(
            request,
            Opt {
                ecs: ecs.as_ref(),
                scope: 0,
                nsid: snap.config.server.nsid.as_deref(),
                dnssec_ok: false,
            },
            Sections {
                rcode,
                answers: &answers,
                soa: &[],
            },
            response,
        )
        .await
    }

    pub(super) fn soa_for(&self, snap: &Snapshot, request: &Request) -> Vec<Record> {
        snap.zones
            .find(request.queries.queries()[0].name())
            .map(|z| vec![z.negative_soa.clone()])
            .unwrap_or_default()
    }
}
