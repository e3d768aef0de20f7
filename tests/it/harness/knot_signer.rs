//! A real Knot DNS (`knotd`) as a signing *primary*: it serves one zone
//! file and signs it itself (automatic DNSSEC, one ECDSA P-256 key signing
//! everything, NSEC). The DNSSEC harness is proved against it, and it is
//! the peer a benchmark compares geosteer's signing with. Its config, key
//! store, journal and log live in a temp folder; it listens on 127.0.0.55
//! (an address no other test binds; the secondary of `knot.rs` is on .53).

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hickory_proto::op::Message;
use hickory_proto::rr::RecordType;

use crate::harness::daemon::{Daemon, binary, free_addr};
use crate::harness::dig::{self, Ask};

pub struct KnotSigner {
    /// Where Knot answers (UDP and TCP).
    pub addr: SocketAddr,
    /// The zone, without the final dot.
    pub zone: String,
    dir: tempfile::TempDir,
    child: Option<Daemon>,
}

const INSTALL: &str = "the DNSSEC tests need Knot DNS: apt-get install -y knot";

fn config(dir: &str, addr: SocketAddr, zone: &str) -> String {
    format!(
        "server:
  rundir: \"{dir}\"
  listen: {ip}@{port}
  udp-workers: 1
  tcp-workers: 1
  background-workers: 1
log:
  - target: stderr
    any: info
database:
  storage: \"{dir}/db\"
keystore:
  - id: pem
    backend: pem
    config: \"{dir}/keys\"
policy:
  - id: signer
    keystore: pem
    algorithm: ecdsap256sha256
    single-type-signing: on
    nsec3: off
template:
  - id: default
    storage: \"{dir}/zones\"
    zonefile-sync: -1
zone:
  - domain: {zone}
    file: \"{dir}/zones/zone\"
    dnssec-signing: on
    dnssec-policy: signer
",
        ip = addr.ip(),
        port = addr.port(),
    )
}

impl KnotSigner {
    /// Starts `knotd` serving `zone` from `zone_text` (zone-file text) and
    /// waits (at most 15 s) until it answers the zone's signed DNSKEY.
    pub async fn start(zone: &str, zone_text: &str) -> KnotSigner {
        let zone = zone.trim_end_matches('.').to_string();
        // A port found free here may be taken before Knot binds it: try
        // again on fresh ports.
        let mut logs = String::new();
        for _ in 0..3 {
            let mut k = KnotSigner {
                addr: free_addr("127.0.0.55"),
                zone: zone.clone(),
                dir: tempfile::tempdir().expect("tempdir for knot"),
                child: None,
            };
            if k.try_run(zone_text).await {
                return k;
            }
            logs.push_str(&k.log());
        }
        panic!("knotd (signer) did not serve a signed {zone} three times; its logs:\n{logs}");
    }

    async fn try_run(&mut self, zone_text: &str) -> bool {
        let path = self.dir.path();
        let d = path.to_str().expect("temp path is UTF-8");
        for sub in ["zones", "db", "keys"] {
            std::fs::create_dir_all(path.join(sub)).expect("knot dirs");
        }
        std::fs::write(path.join("zones/zone"), zone_text).expect("write zone file");
        std::fs::write(path.join("knot.conf"), config(d, self.addr, &self.zone))
            .expect("write knot.conf");
        let log = std::fs::File::create(path.join("knot.log")).expect("knot.log");
        self.child = Some(Daemon::spawn(
            Command::new(binary("knotd", INSTALL))
                .arg("-c")
                .arg(path.join("knot.conf"))
                .stdout(Stdio::null())
                .stderr(log),
        ));
        let ask = Ask::new(&format!("{}.", self.zone), RecordType::DNSKEY).dnssec_ok();
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let reply = dig::udp_raw_wait(self.addr, &ask.wire(), Duration::from_millis(200))
                .await
                .and_then(|b| Message::from_vec(&b).ok());
            if reply.is_some_and(|m| {
                let has = |t| m.answers.iter().any(|r| r.record_type() == t);
                has(RecordType::DNSKEY) && has(RecordType::RRSIG)
            }) {
                return true;
            }
            let exited = self.child.as_mut().is_none_or(Daemon::exited);
            if exited || Instant::now() > deadline {
                self.child = None;
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn keymgr(&self, what: &str) -> String {
        let out = Command::new(binary("keymgr", INSTALL))
            .arg("-c")
            .arg(self.dir.path().join("knot.conf"))
            .args([&self.zone, what])
            .output()
            .unwrap_or_else(|e| panic!("cannot run keymgr: {e}"));
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success() && !text.trim().is_empty(),
            "keymgr {} {what} failed: {text}{}",
            self.zone,
            String::from_utf8_lossy(&out.stderr)
        );
        text
    }

    /// The zone's key-signing DNSKEY records, zone-file lines with TTL and
    /// class ("zone. 3600 IN DNSKEY 257 3 13 KEY"): a trust anchor.
    pub fn dnskey(&self) -> String {
        with_ttl(&self.keymgr("dnskey"))
    }

    /// The DS records of the key-signing key (SHA-256 and SHA-384), lines
    /// as [`KnotSigner::dnskey`]: a trust anchor too.
    pub fn ds(&self) -> String {
        with_ttl(&self.keymgr("ds"))
    }

    /// The folder holding Knot's keys (PEM), config and log.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Everything Knot logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("knot.log")).unwrap_or_default()
    }
}

/// keymgr prints "zone. DNSKEY ..." (no TTL, no class): adds both, as
/// every consumer of zone-file text accepts them.
fn with_ttl(keymgr: &str) -> String {
    keymgr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| match l.split_once(' ') {
            Some((owner, rest)) => format!("{owner} 3600 IN {rest}\n"),
            None => format!("{l}\n"),
        })
        .collect()
}
