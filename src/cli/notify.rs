//! The service manager's readiness protocol (sd_notify(3)), enough for
//! `Type=notify`: one datagram of `KEY=VALUE` lines to the unix socket named
//! in `$NOTIFY_SOCKET`. Without that variable (not under systemd) every call
//! does nothing. A failure to notify is logged, never fatal: the server
//! answering DNS matters more than its supervisor hearing about it.

use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixDatagram;
use std::time::Duration;

/// The DNS sockets are bound and answering (also: a reload is done).
pub(super) const READY: &str = "READY=1";
/// A reload has begun; READY follows when it is over, whatever its outcome.
pub(super) const RELOADING: &str = "RELOADING=1";
/// Shutting down.
pub(super) const STOPPING: &str = "STOPPING=1";

/// Tells the service manager `state` (lines of `KEY=VALUE`), if there is one.
pub(super) fn notify(state: &str) {
    let Some(socket) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    if let Err(e) = send(&socket, state) {
        tracing::warn!(
            error = %e,
            socket = %socket.to_string_lossy(),
            "cannot notify the service manager"
        );
    }
}

/// Sends one datagram to `socket`: a path, or an abstract name written
/// with a leading `@` (systemd's notation for the leading NUL byte).
pub(super) fn send(socket: &OsStr, state: &str) -> io::Result<()> {
    let sock = UnixDatagram::unbound()?;
    // A manager too busy to read must not stall the signal loop for long.
    sock.set_write_timeout(Some(Duration::from_secs(1)))?;
    let name = socket.as_bytes();
    let sent = match name.first() {
        Some(b'/') => sock.send_to(state.as_bytes(), socket)?,
        Some(b'@') => send_abstract(&sock, &name[1..], state.as_bytes())?,
        _ => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "NOTIFY_SOCKET is neither a path nor an abstract name (@...)",
            ));
        }
    };
    if sent != state.len() {
        return Err(io::Error::new(
            io::ErrorKind::WriteZero,
            "the notification was cut short",
        ));
    }
    Ok(())
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn send_abstract(sock: &UnixDatagram, name: &[u8], msg: &[u8]) -> io::Result<usize> {
    use std::os::linux::net::SocketAddrExt;
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
    sock.send_to_addr(msg, &addr)
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn send_abstract(_: &UnixDatagram, _: &[u8], _: &[u8]) -> io::Result<usize> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "abstract socket names exist only on Linux",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recv(sock: &UnixDatagram) -> String {
        sock.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let mut buf = [0u8; 256];
        let n = sock.recv(&mut buf).expect("a notification");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    #[test]
    fn a_path_socket_gets_the_state() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("notify");
        let sock = UnixDatagram::bind(&path).expect("bind");
        send(path.as_os_str(), "READY=1\nSTATUS=up").expect("send");
        assert_eq!(recv(&sock), "READY=1\nSTATUS=up");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn an_abstract_name_is_written_with_an_at_sign() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("geosteer-test-{}", std::process::id());
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
            .expect("abstract name");
        let sock = UnixDatagram::bind_addr(&addr).expect("bind");
        send(OsStr::new(&format!("@{name}")), STOPPING).expect("send");
        assert_eq!(recv(&sock), STOPPING);
    }

    #[test]
    fn neither_a_path_nor_an_abstract_name_is_an_error() {
        for bad in ["", "notify.sock", "vsock:2:1234"] {
            let err = send(OsStr::new(bad), READY).expect_err(bad);
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{bad}");
        }
    }

    #[test]
    fn a_socket_nobody_listens_on_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("gone");
        assert!(send(path.as_os_str(), READY).is_err());
    }
}
