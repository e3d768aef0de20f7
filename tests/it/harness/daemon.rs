//! daemon: what the peer servers the tests start (Knot, unbound) have in
//! common: the system binary (a clear panic saying what to install when it
//! is missing, never a skip), a free port on the loopback address reserved
//! for that peer, and the process itself, killed when dropped.

use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command};

/// `name` from the system's binary folders; panics with `install` (what to
/// install) when it is not there.
pub fn binary(name: &str, install: &str) -> PathBuf {
    for dir in ["/usr/sbin", "/usr/local/sbin", "/usr/bin"] {
        let p = PathBuf::from(dir).join(name);
        if p.is_file() {
            return p;
        }
    }
    panic!("{name} is missing: {install} (.ci/run installs it)");
}

/// A free UDP port on `ip`, a loopback address only one peer binds (the
/// peers bind UDP and TCP on it).
pub fn free_addr(ip: &str) -> SocketAddr {
    UdpSocket::bind((ip, 0))
        .and_then(|s| s.local_addr())
        .unwrap_or_else(|e| panic!("no free port on {ip}: {e}"))
}

/// A running peer; dropping it kills it and reaps it.
pub struct Daemon(Child);

impl Daemon {
    pub fn spawn(cmd: &mut Command) -> Daemon {
        Daemon(
            cmd.spawn()
                .unwrap_or_else(|e| panic!("cannot start {:?}: {e}", cmd.get_program())),
        )
    }

    /// Whether it has exited (a bad config, its port taken).
    pub fn exited(&mut self) -> bool {
        self.0.try_wait().ok().flatten().is_some()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
