//! A real etcd server (Debian's `etcd-server`) on loopback ports, with its
//! data in a temp folder; a test can kill it and start it again on the same
//! ports and data, as an operator's etcd would come back.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Etcd {
    pub client: SocketAddr,
    peer: SocketAddr,
    dir: tempfile::TempDir,
    child: Option<Child>,
    /// (CA, server certificate, server key) PEM paths: clients speak TLS
    /// and must show a certificate the CA signed.
    tls: Option<[PathBuf; 3]>,
    /// `--initial-cluster-token`: another one makes another cluster id.
    token: &'static str,
}

/// The etcd binary: `$ETCD_BIN`, else `etcd` on PATH. A test that needs it
/// fails with this message when it is missing (never skips).
fn binary() -> PathBuf {
    if let Ok(p) = std::env::var("ETCD_BIN") {
        return PathBuf::from(p);
    }
    for dir in std::env::var("PATH").unwrap_or_default().split(':') {
        let p = PathBuf::from(dir).join("etcd");
        if p.is_file() {
            return p;
        }
    }
    panic!(
        "the fleet tests need a real etcd: install it (apt-get install etcd-server) or set ETCD_BIN; .ci/run installs it"
    );
}

fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
}

impl Etcd {
    pub fn start() -> Etcd {
        Etcd::start_with(None)
    }

    /// An etcd that serves clients over TLS and requires client certificates.
    pub fn start_tls(ca: PathBuf, cert: PathBuf, key: PathBuf) -> Etcd {
        Etcd::start_with(Some([ca, cert, key]))
    }

    fn start_with(tls: Option<[PathBuf; 3]>) -> Etcd {
        // A port found free here may be taken before etcd binds it (other
        // tests run meanwhile): try again on fresh ports.
        for _ in 0..3 {
            let mut etcd = Etcd {
                client: free_port(),
                peer: free_port(),
                dir: tempfile::tempdir().expect("tempdir"),
                child: None,
                tls: tls.clone(),
                token: "etcd-cluster",
            };
            if etcd.try_run() {
                return etcd;
            }
        }
        panic!("etcd did not start three times: see its log");
    }

    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.client)
    }

    fn run(&mut self) {
        assert!(self.try_run(), "etcd did not start: see its log");
    }

    /// Starts etcd; false when it exits before serving (its ports taken).
    fn try_run(&mut self) -> bool {
        let client = self.url();
        let peer = format!("http://{}", self.peer);
        let log = std::fs::File::create(self.dir.path().join("etcd.log")).expect("log file");
        let mut command = Command::new(binary());
        if let Some([ca, cert, key]) = &self.tls {
            command
                .arg(format!("--trusted-ca-file={}", ca.display()))
                .arg(format!("--cert-file={}", cert.display()))
                .arg(format!("--key-file={}", key.display()))
                .arg("--client-cert-auth");
        }
        let child = command
            .arg("--name=test")
            .arg(format!("--initial-cluster-token={}", self.token))
            .arg(format!(
                "--data-dir={}",
                self.dir.path().join("data").display()
            ))
            .arg(format!("--listen-client-urls={client}"))
            .arg(format!("--advertise-client-urls={client}"))
            .arg(format!("--listen-peer-urls={peer}"))
            .arg(format!("--initial-advertise-peer-urls={peer}"))
            .arg(format!("--initial-cluster=test={peer}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start etcd");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect_timeout(&self.client, Duration::from_millis(200)).is_err() {
            let exited = self
                .child
                .as_mut()
                .is_none_or(|c| c.try_wait().ok().flatten().is_some());
            if exited || Instant::now() > deadline {
                self.kill();
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        true
    }

    /// SIGKILL: no goodbye to anyone.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same ports and data.
    pub fn restart(&mut self) {
        self.kill();
        self.run();
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Stops it, deletes its data and starts a fresh, empty etcd on the same
    /// ports (a replaced or wiped etcd: same settings, so the same cluster
    /// id, and its revision starts again from 1).
    pub fn wipe(&mut self) {
        self.kill();
        std::fs::remove_dir_all(self.data()).expect("remove etcd data");
        self.run();
    }

    /// Stops it, deletes its data and starts a new cluster on the same
    /// ports: another cluster token, so another cluster id.
    pub fn replace(&mut self) {
        self.kill();
        std::fs::remove_dir_all(self.data()).expect("remove etcd data");
        self.token = "replaced";
        self.run();
    }

    /// Stops it, copies its data aside (a backup, as a snapshot would be)
    /// and starts it again; returns the copy's path.
    pub fn backup(&mut self) -> PathBuf {
        self.kill();
        let copy = self.dir.path().join("backup");
        let _ = std::fs::remove_dir_all(&copy);
        copy_dir(&self.data(), &copy);
        self.run();
        copy
    }

    /// Stops it, puts the data of `backup` in place of its own and starts it
    /// again: the store goes back to that older revision.
    pub fn restore(&mut self, backup: &std::path::Path) {
        self.kill();
        std::fs::remove_dir_all(self.data()).expect("remove etcd data");
        copy_dir(backup, &self.data());
        self.run();
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        self.kill();
    }
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    let status = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .expect("run cp");
    assert!(
        status.success(),
        "cp -a {} {}",
        from.display(),
        to.display()
    );
}
