//! A real validating resolver, Debian's `unbound`, in front of one
//! authoritative server: a stub zone pointing at it, an optional trust
//! anchor for that zone (none: the zone is insecure, as unbound has no root
//! anchor here), ECS (the subnetcache module) forwarding the client's subnet
//! to the authoritative server. Its config, log and pid file live in a temp
//! folder; it listens on 127.0.0.54, an address no other test binds.

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;

use crate::harness::daemon::{Daemon, binary, free_addr};
use crate::harness::dig::{self, Ask};

pub struct Unbound {
    /// Where unbound answers (UDP and TCP).
    pub addr: SocketAddr,
    dir: tempfile::TempDir,
    child: Option<Daemon>,
}

/// The config for a resolver on `addr` with each `(auth, zone)` of `stubs`
/// stubbed to its server. `anchor_file`: unbound's `trust-anchor-file`
/// (zone-file DNSKEY or DS lines), none for an insecure zone.
/// `tcp`: unbound asks the servers over TCP only (`tcp-upstream`).
fn config(
    dir: &str,
    addr: SocketAddr,
    stubs: &[(SocketAddr, &str)],
    anchor: bool,
    tcp: bool,
) -> String {
    let anchor = if anchor {
        format!("  trust-anchor-file: \"{dir}/anchor.txt\"\n")
    } else {
        String::new()
    };
    let mut local_zones = String::new();
    let mut subnets: Vec<String> = Vec::new();
    let mut stub_zones = String::new();
    for (auth, zone) in stubs {
        let zone = zone.trim_end_matches('.');
        local_zones.push_str(&format!("  local-zone: \"{zone}.\" transparent\n"));
        let ip = auth.ip().to_string();
        if !subnets.contains(&ip) {
            subnets.push(ip);
        }
        stub_zones.push_str(&format!(
            "stub-zone:\n  name: \"{zone}.\"\n  stub-addr: {}@{}\n",
            auth.ip(),
            auth.port()
        ));
    }
    let send: String = subnets
        .iter()
        .map(|ip| format!("  send-client-subnet: {ip}\n"))
        .collect();
    format!(
        "server:
  interface: {ip}
  port: {port}
  so-reuseport: no
  do-ip6: no
  num-threads: 1
  access-control: 127.0.0.0/8 allow
  username: \"\"
  chroot: \"\"
  directory: \"{dir}\"
  pidfile: \"{dir}/unbound.pid\"
  use-syslog: no
  logfile: \"{dir}/unbound.log\"
  log-time-ascii: yes
  verbosity: 1
  val-log-level: 2
  do-not-query-localhost: no
  qname-minimisation: no
  trust-anchor-signaling: no
  tcp-upstream: {tcp}
  auto-trust-anchor-file: \"\"
{anchor}{local_zones}  module-config: \"subnetcache validator iterator\"
{send}  client-subnet-always-forward: yes
remote-control:
  control-enable: no
{stub_zones}",
        ip = addr.ip(),
        port = addr.port(),
        tcp = if tcp { "yes" } else { "no" },
    )
}

impl Unbound {
    /// Starts unbound resolving `zone` at `auth`. `trust_anchor` holds
    /// DNSKEY or DS records of `zone` in zone-file text, one a line; empty
    /// for no anchor (answers for the zone are then insecure, never AD).
    /// Waits (at most 15 s) until it serves.
    pub fn start(auth: SocketAddr, zone: &str, trust_anchor: &str) -> Unbound {
        Unbound::start_with(auth, zone, trust_anchor, false)
    }

    /// The same, asking `auth` over TCP only.
    pub fn start_over_tcp(auth: SocketAddr, zone: &str, trust_anchor: &str) -> Unbound {
        Unbound::start_with(auth, zone, trust_anchor, true)
    }

    /// Starts unbound resolving each `(server, zone)` of `stubs` at its
    /// server, with no trust anchor (insecure zones).
    pub fn start_stubs(stubs: &[(SocketAddr, &str)]) -> Unbound {
        Unbound::start_many(stubs, "", false)
    }

    fn start_with(auth: SocketAddr, zone: &str, trust_anchor: &str, tcp: bool) -> Unbound {
        Unbound::start_many(&[(auth, zone)], trust_anchor, tcp)
    }

    fn start_many(stubs: &[(SocketAddr, &str)], trust_anchor: &str, tcp: bool) -> Unbound {
        // A port found free here may be taken before unbound binds it
        // (other tests run meanwhile): try again on fresh ports.
        let mut logs = String::new();
        for _ in 0..3 {
            let dir = tempfile::tempdir().expect("tempdir for unbound");
            let mut u = Unbound {
                addr: free_addr("127.0.0.54"),
                dir,
                child: None,
            };
            if u.try_run(stubs, trust_anchor, tcp) {
                return u;
            }
            logs.push_str(&u.log());
        }
        panic!("unbound did not start three times; its logs:\n{logs}");
    }

    fn try_run(&mut self, stubs: &[(SocketAddr, &str)], trust_anchor: &str, tcp: bool) -> bool {
        let path = self.dir.path();
        let d = path.to_str().expect("temp path is UTF-8");
        let anchor = !trust_anchor.trim().is_empty();
        if anchor {
            std::fs::write(path.join("anchor.txt"), format!("{trust_anchor}\n"))
                .expect("write unbound trust anchor");
        }
        let conf_path = path.join("unbound.conf");
        std::fs::write(&conf_path, config(d, self.addr, stubs, anchor, tcp))
            .expect("write unbound.conf");
        // Errors before the log file opens (a bad config) go to stderr.
        let stderr = std::fs::File::create(path.join("unbound.stderr")).expect("unbound.stderr");
        let install = "the DNSSEC tests need a validating resolver: apt-get install -y unbound";
        self.child = Some(Daemon::spawn(
            Command::new(binary("unbound", install))
                .arg("-d")
                .arg("-c")
                .arg(&conf_path)
                .stdout(Stdio::null())
                .stderr(stderr),
        ));
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if self.log().contains("start of service") {
                return true;
            }
            let exited = self.child.as_mut().is_none_or(Daemon::exited);
            if exited || Instant::now() > deadline {
                self.child = None;
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Everything unbound wrote: its stderr, then its log file.
    pub fn log(&self) -> String {
        let read = |name: &str| std::fs::read_to_string(self.dir.path().join(name));
        format!(
            "{}{}",
            read("unbound.stderr").unwrap_or_default(),
            read("unbound.log").unwrap_or_default()
        )
    }

    /// Asks unbound (RD and DO set), with an ECS option for `ecs`
    /// ("5.9.0.0/24") if given.
    pub async fn ask(&self, name: &str, qtype: RecordType, ecs: Option<&str>) -> Message {
        let mut ask = Ask::new(name, qtype).dnssec_ok();
        if let Some(subnet) = ecs {
            ask = ask.ecs(subnet);
        }
        let bytes = ask.wire();
        let Some(reply) = dig::udp_raw(self.addr, &bytes).await else {
            panic!(
                "unbound gave no answer to {name} {qtype} within {:?}; its log:\n{}",
                dig::TIMEOUT,
                self.log()
            )
        };
        Message::from_vec(&reply).unwrap_or_else(|e| panic!("undecodable reply from unbound: {e}"))
    }
}

/// The AD bit: unbound validated the answer.
pub fn ad(m: &Message) -> bool {
    m.metadata.authentic_data
}

pub fn rcode(m: &Message) -> ResponseCode {
    m.metadata.response_code
}

/// The record types in the answer section, in order.
pub fn answer_types(m: &Message) -> Vec<RecordType> {
    m.answers.iter().map(|r| r.record_type()).collect()
}

/// The record types in the authority section, in order.
pub fn authority_types(m: &Message) -> Vec<RecordType> {
    m.authorities.iter().map(|r| r.record_type()).collect()
}
