//! notify: tells secondaries that a zone has a new serial (NOTIFY, RFC 1996),
//! so they transfer it now instead of at their next SOA refresh. Sent at
//! start-up and after each reload that changed a zone's serial, to each
//! `[transfer."ZONE"].notify` address over UDP, signed when the zone has a
//! TSIG key, and retried with growing timeouts until the secondary answers.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, Record, RecordType};
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::config::TsigKey;
use crate::metrics::TransferCounters;
use crate::zone::Zones;

/// How long each attempt waits for the secondary's answer (RFC 1996 §3.6
/// leaves the interval to us; five tries over about half a minute).
const ATTEMPTS: [Duration; 5] = [
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(4),
    Duration::from_secs(8),
    Duration::from_secs(15),
];

/// One NOTIFY to send.
#[derive(Debug, Clone)]
pub struct Notice {
    pub zone: Name,
    pub soa: Record,
    pub to: SocketAddr,
    pub key: Option<TsigKey>,
}

/// The NOTIFYs `new` calls for: every zone with `notify` addresses whose
/// serial differs from the one in `old` (all of them when `old` is None:
/// start-up).
pub fn due(old: Option<&Zones>, new: &Zones) -> Vec<Notice> {
    let mut notices = Vec::new();
    for zone in new.iter() {
        let Some(transfer) = &zone.transfer else {
            continue;
        };
        let serial = zone.versions.current.serial();
        let before = old
            .and_then(|o| o.apex(&zone.origin))
            .map(|z| z.versions.current.serial());
        if before == Some(serial) {
            continue;
        }
        for to in &transfer.notify {
            notices.push(Notice {
                zone: Name::from(&zone.origin),
                soa: zone.versions.current.soa.clone(),
                to: *to,
                key: transfer.tsig.clone(),
            });
        }
    }
    notices
}

/// Sends each notice on its own task until answered or out of attempts.
pub fn spawn(
    notices: Vec<Notice>,
    counters: &Arc<TransferCounters>,
    tasks: &TaskTracker,
    shutdown: &CancellationToken,
) {
    for n in notices {
        let (stop, counters) = (shutdown.clone(), counters.clone());
        tasks.spawn(async move {
            tokio::select! {
                _ = stop.cancelled() => {}
                answered = send(&n) => {
                    let c = if answered { &counters.notify_answered } else { &counters.notify_failed };
                    c.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }
}

/// One NOTIFY, retried until the secondary answers. Whether it accepted.
async fn send(n: &Notice) -> bool {
    let local: IpAddr = match n.to {
        SocketAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
        SocketAddr::V6(_) => Ipv6Addr::UNSPECIFIED.into(),
    };
    let socket = match UdpSocket::bind((local, 0)).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(zone = %n.zone, to = %n.to, error = %e, "cannot send NOTIFY");
            return false;
        }
    };
    let serial = match &n.soa.data {
        hickory_proto::rr::RData::SOA(s) => s.serial,
        _ => 0,
    };
    for (attempt, wait) in ATTEMPTS.iter().enumerate() {
        let id: u16 = rand::random();
        let Some(bytes) = message(n, id) else {
            tracing::warn!(zone = %n.zone, to = %n.to, "cannot encode NOTIFY");
            return false;
        };
        if let Err(e) = socket.send_to(&bytes, n.to).await {
            tracing::debug!(zone = %n.zone, to = %n.to, error = %e, "NOTIFY not sent");
        }
        let deadline = tokio::time::Instant::now() + *wait;
        let mut buf = [0u8; 4096];
        loop {
            let got = tokio::time::timeout_at(deadline, socket.recv_from(&mut buf)).await;
            let Ok(Ok((len, from))) = got else {
                break; // timed out (or an ICMP error): try again
            };
            let Ok(reply) = Message::from_vec(&buf[..len]) else {
                continue;
            };
            if from != n.to
                || reply.metadata.id != id
                || reply.metadata.message_type != MessageType::Response
            {
                continue;
            }
            let code = reply.metadata.response_code;
            if code == ResponseCode::NoError {
                tracing::info!(zone = %n.zone, to = %n.to, serial, "NOTIFY answered");
                return true;
            }
            tracing::warn!(zone = %n.zone, to = %n.to, serial, rcode = %code,
                "NOTIFY refused by the secondary (is geosteer its primary, with the same TSIG key?)");
            return false;
        }
        tracing::debug!(zone = %n.zone, to = %n.to, attempt = attempt + 1, "no answer to NOTIFY yet");
    }
    tracing::warn!(zone = %n.zone, to = %n.to, serial, "no answer to NOTIFY; the secondary will see the serial at its next refresh");
    false
}

/// The NOTIFY message: the zone's SOA as question and answer (RFC 1996 §3.7),
/// TSIG-signed when the zone has a key.
fn message(n: &Notice, id: u16) -> Option<Vec<u8>> {
    let mut m = Message::new(id, MessageType::Query, OpCode::Notify);
    m.metadata.authoritative = true;
    let mut q = Query::query(n.zone.clone(), RecordType::SOA);
    q.set_query_class(DNSClass::IN);
    m.add_query(q);
    m.answers.push(n.soa.clone());
    if let Some(key) = &n.key {
        let signer = super::tsig::signer_for(key)?;
        let now = crate::wallclock::unix_secs();
        let (sig, _) = signer.sign_message(&m, now).ok()?;
        m.signature = Some(sig);
    }
    m.to_vec().ok()
}
