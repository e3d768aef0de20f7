//! A real DNS client: hickory-proto messages over tokio UDP and TCP sockets,
//! plus raw packets for malformed-input tests. Every wait is bounded.

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::time::Duration;

use hickory_proto::op::{Edns, Message, Query};
use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsCode, EdnsOption, NSIDPayload};
use hickory_proto::rr::{DNSClass, Name, RData, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

pub const TIMEOUT: Duration = Duration::from_secs(3);

/// How to ask.
#[derive(Clone, Debug)]
pub struct Ask {
    pub name: String,
    pub qtype: RecordType,
    /// EDNS payload size; None sends no OPT record.
    pub edns: Option<u16>,
    pub ecs: Option<(IpAddr, u8)>,
    /// Send an empty NSID option (RFC 5001).
    pub nsid: bool,
    pub class: DNSClass,
    /// Set the DO bit (RFC 3225): ask for RRSIGs and NSEC records.
    pub dnssec_ok: bool,
}

impl Ask {
    pub fn new(name: &str, qtype: RecordType) -> Ask {
        Ask {
            name: name.to_string(),
            qtype,
            edns: Some(1232),
            ecs: None,
            nsid: false,
            class: DNSClass::IN,
            dnssec_ok: false,
        }
    }
    pub fn nsid(mut self) -> Ask {
        self.nsid = true;
        self
    }
    pub fn class(mut self, class: DNSClass) -> Ask {
        self.class = class;
        self
    }
    pub fn ecs(mut self, subnet: &str) -> Ask {
        let (ip, prefix) = subnet.split_once('/').expect("ip/prefix");
        self.ecs = Some((ip.parse().expect("ip"), prefix.parse().expect("prefix")));
        self
    }
    /// Sets the DO bit (only sent with EDNS, which is on by default).
    pub fn dnssec_ok(mut self) -> Ask {
        self.dnssec_ok = true;
        self
    }
    pub fn no_edns(mut self) -> Ask {
        self.edns = None;
        self
    }
    pub fn payload(mut self, size: u16) -> Ask {
        self.edns = Some(size);
        self
    }
    pub fn message(&self) -> Message {
        let mut m = Message::query();
        m.metadata.recursion_desired = true;
        let mut q = Query::query(Name::from_str(&self.name).expect("name"), self.qtype);
        q.set_query_class(self.class);
        m.add_query(q);
        if let Some(size) = self.edns {
            let mut e = Edns::new();
            e.set_max_payload(size);
            e.set_dnssec_ok(self.dnssec_ok || super::geosteer::dnssec_ok());
            if let Some((ip, prefix)) = self.ecs {
                e.options_mut()
                    .insert(EdnsOption::Subnet(ClientSubnet::new(ip, prefix, 0)));
            }
            if self.nsid {
                e.options_mut().insert(EdnsOption::NSID(
                    NSIDPayload::new(Vec::new()).expect("empty NSID"),
                ));
            }
            m.set_edns(e);
        }
        m
    }
    /// The query on the wire, with the name's case as asked: hickory's
    /// encoder lowercases names, so the question's labels are copied back
    /// byte for byte (same length, same place: right after the header).
    pub fn wire(&self) -> Vec<u8> {
        let mut bytes = self.message().to_vec().expect("encode");
        let mut at = 12;
        for label in self.name.trim_end_matches('.').split('.') {
            at += 1;
            bytes[at..at + label.len()].copy_from_slice(label.as_bytes());
            at += label.len();
        }
        bytes
    }
}

pub async fn udp(server: SocketAddr, ask: &Ask) -> Message {
    let bytes = ask.wire();
    let reply = udp_raw(server, &bytes).await.expect("no UDP reply");
    do_echoed(ask, Message::from_vec(&reply).expect("decode reply"))
}

/// RFC 3225 §3: a query's DO bit comes back in the response's OPT record;
/// checked on every answer to a query that set it.
fn do_echoed(ask: &Ask, m: Message) -> Message {
    let asked = ask.edns.is_some() && (ask.dnssec_ok || super::geosteer::dnssec_ok());
    if asked && let Some(e) = &m.edns {
        assert!(
            e.flags().dnssec_ok,
            "DO not copied in the response to {} {}: {m:?}",
            ask.name,
            ask.qtype
        );
    }
    m
}

/// Sends from a given loopback source address (127.0.0.x).
pub async fn udp_from(server: SocketAddr, source: IpAddr, ask: &Ask) -> Message {
    let sock = UdpSocket::bind(SocketAddr::new(source, 0))
        .await
        .expect("bind");
    let bytes = ask.wire();
    sock.send_to(&bytes, server).await.expect("send");
    let mut buf = vec![0u8; 65535];
    let (n, _) = tokio::time::timeout(TIMEOUT, sock.recv_from(&mut buf))
        .await
        .expect("no UDP reply")
        .expect("recv");
    Message::from_vec(&buf[..n]).expect("decode")
}

pub async fn udp_raw(server: SocketAddr, bytes: &[u8]) -> Option<Vec<u8>> {
    udp_raw_wait(server, bytes, TIMEOUT).await
}

pub async fn udp_raw_wait(server: SocketAddr, bytes: &[u8], wait: Duration) -> Option<Vec<u8>> {
    let bind: SocketAddr = if server.is_ipv6() {
        "[::1]:0"
    } else {
        "127.0.0.1:0"
    }
    .parse()
    .ok()?;
    let sock = UdpSocket::bind(bind).await.ok()?;
    sock.send_to(bytes, server).await.ok()?;
    let mut buf = vec![0u8; 65535];
    let (n, _) = tokio::time::timeout(wait, sock.recv_from(&mut buf))
        .await
        .ok()?
        .ok()?;
    buf.truncate(n);
    Some(buf)
}

pub async fn tcp(server: SocketAddr, ask: &Ask) -> Message {
    let bytes = ask.wire();
    let reply = tcp_raw(server, &bytes).await.expect("no TCP reply");
    do_echoed(ask, Message::from_vec(&reply).expect("decode reply"))
}

pub async fn tcp_raw(server: SocketAddr, bytes: &[u8]) -> Option<Vec<u8>> {
    tokio::time::timeout(TIMEOUT, async {
        let mut s = TcpStream::connect(server).await.ok()?;
        let len = u16::try_from(bytes.len()).ok()?;
        s.write_all(&len.to_be_bytes()).await.ok()?;
        s.write_all(bytes).await.ok()?;
        let mut lenb = [0u8; 2];
        s.read_exact(&mut lenb).await.ok()?;
        let mut buf = vec![0u8; u16::from_be_bytes(lenb) as usize];
        s.read_exact(&mut buf).await.ok()?;
        Some(buf)
    })
    .await
    .ok()?
}

/// The A/AAAA addresses in the answer section.
pub fn addrs(m: &Message) -> Vec<IpAddr> {
    m.answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            RData::AAAA(a) => Some(IpAddr::V6(a.0)),
            _ => None,
        })
        .collect()
}

/// The TXT strings of a response's answers.
pub fn txts(m: &Message) -> Vec<String> {
    m.answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::TXT(t) => Some(t.to_string()),
            _ => None,
        })
        .collect()
}

/// The ECS option of a response: (address, source, scope).
pub fn ecs(m: &Message) -> Option<(IpAddr, u8, u8)> {
    let edns = m.edns.as_ref()?;
    match edns.option(hickory_proto::rr::rdata::opt::EdnsCode::Subnet)? {
        EdnsOption::Subnet(cs) => Some((cs.addr(), cs.source_prefix(), cs.scope_prefix())),
        _ => None,
    }
}

/// The NSID option of a response, as text.
pub fn nsid(m: &Message) -> Option<String> {
    match m.edns.as_ref()?.option(EdnsCode::NSID)? {
        EdnsOption::NSID(p) => Some(String::from_utf8_lossy(p.as_ref()).into_owned()),
        _ => None,
    }
}

pub fn ip(s: &str) -> IpAddr {
    s.parse().expect("ip")
}

/// Runs the real `dig` (bind9-dnsutils) against `server` with `args`, off
/// the test's runtime (the server under test may be answering on it), and
/// returns its standard output. Panics, saying what to install, if `dig` is
/// missing: a test that needs it never passes by skipping.
pub async fn real_dig(server: SocketAddr, args: &[&str]) -> String {
    let mut cmd = std::process::Command::new("dig");
    cmd.arg(format!("@{}", server.ip()))
        .args(["-p", &server.port().to_string()])
        .args(["+time=3", "+tries=1"])
        .args(args);
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .expect("dig task")
        .unwrap_or_else(|e| {
            panic!("cannot run `dig` ({e}): install it with `apt-get install -y bind9-dnsutils`")
        });
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "dig {args:?} failed: {text}");
    text
}
