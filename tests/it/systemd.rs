//! The service manager's readiness protocol, spoken by the real binary to a
//! socket this test binds where systemd would (`$NOTIFY_SOCKET`): READY=1
//! only once DNS answers, RELOADING=1 then READY=1 around a SIGHUP reload,
//! STOPPING=1 on SIGTERM.

use std::os::unix::net::UnixDatagram;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;

use crate::harness::dig::{self, Ask, addrs, ip};
use crate::harness::geosteer::{ZONE, server_header};

/// Kills the server if the test fails half-way.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Server {
    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.0.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name}");
    }
}

/// The next notification, within `wait`.
fn next(sock: &UnixDatagram, wait: Duration) -> String {
    sock.set_read_timeout(Some(wait)).expect("read timeout");
    let mut buf = [0u8; 4096];
    let n = sock
        .recv(&mut buf)
        .unwrap_or_else(|e| panic!("no notification within {wait:?}: {e}"));
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[test]
fn ready_is_sent_once_dns_answers_and_reload_and_stop_are_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Port 0: READY's STATUS line says which port was bound (a port picked
    // here and bound there could be taken meanwhile by another test).
    let config = format!(
        "{}[pools.p]\nendpoints = [{{ address = \"192.0.2.1\" }}]\n[[balance]]\nname = \"www.example.test\"\npolicy = \"failover\"\npools = [\"p\"]\n",
        server_header("")
    );
    let config_path = dir.path().join("geosteer.toml");
    std::fs::write(&config_path, &config).expect("write config");
    std::fs::write(dir.path().join("example.test.zone"), ZONE).expect("write zone");
    let notify_path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&notify_path).expect("bind the notify socket");

    let server = Server(
        Command::new(env!("CARGO_BIN_EXE_geosteer"))
            .args(["serve", "--config"])
            .arg(&config_path)
            .env("NOTIFY_SOCKET", &notify_path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start geosteer"),
    );
    let ready = next(&sock, Duration::from_secs(20));
    assert!(ready.lines().any(|l| l == "READY=1"), "{ready:?}");
    let port: u16 = ready
        .lines()
        .find_map(|l| l.strip_prefix("STATUS=answering DNS on 127.0.0.1:"))
        .and_then(|p| p.split(',').next())
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("READY names the DNS address: {ready:?}"));

    // READY means answering: the first query, sent once, gets its answer.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let server_addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let ask = Ask::new("www.example.test.", RecordType::A);
    let reply = rt
        .block_on(dig::udp_raw_wait(
            server_addr,
            &ask.wire(),
            Duration::from_secs(3),
        ))
        .expect("no answer right after READY=1");
    let reply = Message::from_vec(&reply).expect("decode");
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    assert_eq!(addrs(&reply), vec![ip("192.0.2.1")]);

    server.signal("HUP");
    let reloading = next(&sock, Duration::from_secs(10));
    assert_eq!(reloading, "RELOADING=1");
    let reloaded = next(&sock, Duration::from_secs(10));
    assert!(reloaded.lines().any(|l| l == "READY=1"), "{reloaded:?}");
    assert!(reloaded.contains("STATUS=reloaded"), "{reloaded:?}");

    // A broken config: still READY (serving the old one), and saying why.
    std::fs::write(&config_path, config.replace("policy", "polcy")).expect("break config");
    server.signal("HUP");
    assert_eq!(next(&sock, Duration::from_secs(10)), "RELOADING=1");
    let failed = next(&sock, Duration::from_secs(10));
    assert!(failed.lines().any(|l| l == "READY=1"), "{failed:?}");
    assert!(failed.contains("STATUS=reload failed"), "{failed:?}");

    server.signal("TERM");
    assert_eq!(next(&sock, Duration::from_secs(10)), "STOPPING=1");
    let mut server = server;
    let status = (0..300)
        .find_map(|_| {
            let st = server.0.try_wait().expect("wait");
            if st.is_none() {
                std::thread::sleep(Duration::from_millis(50));
            }
            st
        })
        .expect("no exit within 15 s of SIGTERM");
    assert!(status.success(), "exit status {status}");
}
