//! A real Knot DNS (`knotd`, Debian's `knot`) as a secondary of geosteer:
//! its own config, zone storage and log in a temp folder, listening on
//! 127.0.0.53 (an address no other test binds) so its port cannot clash with
//! the clients of other tests on 127.0.0.1.

use std::net::SocketAddr;
use std::process::{Command, Stdio};

use crate::harness::daemon::{self, Daemon, binary};

pub struct Knot {
    dir: tempfile::TempDir,
    _knotd: Daemon,
}

/// What the secondary is told about its primary.
pub struct Secondary<'a> {
    pub zone: &'a str,
    /// geosteer's DNS address.
    pub primary: SocketAddr,
    /// (key name, base64 secret), HMAC-SHA256.
    pub tsig: Option<(&'a str, &'a str)>,
}

/// A free port on Knot's address.
pub fn free_addr() -> SocketAddr {
    daemon::free_addr("127.0.0.53")
}

impl Knot {
    /// Starts `knotd` on `addr` as secondary of `s.primary` for `s.zone`.
    pub fn start(addr: SocketAddr, s: &Secondary) -> Knot {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path().display();
        let (key, key_ref) = match s.tsig {
            Some((name, secret)) => (
                format!("key:\n  - id: {name}\n    algorithm: hmac-sha256\n    secret: {secret}\n"),
                format!("    key: {name}\n"),
            ),
            None => (String::new(), String::new()),
        };
        let conf = format!(
            "server:\n  rundir: \"{d}\"\n  listen: {ip}@{port}\n\
             log:\n  - target: stderr\n    any: info\n\
             database:\n  storage: \"{d}/db\"\n\
             {key}\
             remote:\n  - id: primary\n    address: {pip}@{pport}\n{key_ref}\
             acl:\n  - id: from_primary\n    address: 127.0.0.0/8\n    action: notify\n{key_ref}\
             template:\n  - id: default\n    storage: \"{d}/zones\"\n    zonefile-sync: -1\n\
             zone:\n  - domain: {zone}\n    master: primary\n    acl: from_primary\n",
            ip = addr.ip(),
            port = addr.port(),
            pip = s.primary.ip(),
            pport = s.primary.port(),
            zone = s.zone,
        );
        let conf_path = dir.path().join("knot.conf");
        std::fs::write(&conf_path, conf).expect("write knot.conf");
        for sub in ["zones", "db"] {
            std::fs::create_dir_all(dir.path().join(sub)).expect("knot dirs");
        }
        let log = std::fs::File::create(dir.path().join("knot.log")).expect("knot.log");
        let install = "the transfer tests need Knot DNS as a secondary: apt-get install -y knot";
        let knotd = Daemon::spawn(
            Command::new(binary("knotd", install))
                .arg("-c")
                .arg(&conf_path)
                .stdout(Stdio::null())
                .stderr(log),
        );
        Knot { dir, _knotd: knotd }
    }

    /// Everything Knot logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("knot.log")).unwrap_or_default()
    }
}
