//! tcp: a TCP monitor passes when a connection opens. The caller bounds the
//! attempt with the monitor's timeout.

use std::io;
use std::net::{IpAddr, SocketAddr};

use tokio::net::{TcpSocket, TcpStream};

/// Connects to `host:port` (an IP or a name) and closes the connection.
/// With `source`, the connection leaves from that local address (to an
/// address of the same family).
pub async fn check(host: &str, port: u16, source: Option<IpAddr>) -> Result<(), String> {
    let Some(source) = source else {
        return match TcpStream::connect((host, port)).await {
            Ok(stream) => {
                abort(stream);
                Ok(())
            }
            Err(e) => Err(io_reason(&e)),
        };
    };
    let dest = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| format!("connect error: cannot resolve {host}: {e}"))?
        .find(|a| a.is_ipv4() == source.is_ipv4())
        .ok_or_else(|| {
            format!("connect error: {host} has no address of probe_source {source}'s family")
        })?;
    connect_from(source, dest)
        .await
        .map(abort)
        .map_err(|e| io_reason(&e))
}

/// Closes a check's connection with a reset (SO_LINGER 0), as HAProxy
/// closes its checks: no TIME_WAIT is left behind, so thousands of checks a
/// second do not pile up sockets, nor use up the ephemeral ports of one
/// `probe_source` address (a bound source allocates ports per address).
fn abort(stream: TcpStream) {
    let _ = socket2::SockRef::from(&stream).set_linger(Some(std::time::Duration::ZERO));
}

/// A TCP connection from `source` (any port) to `dest`.
pub async fn connect_from(source: IpAddr, dest: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = if dest.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.bind(SocketAddr::new(source, 0))?;
    socket.connect(dest).await
}

/// The reason a status page shows for a failed connection.
pub fn io_reason(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => "refused".to_string(),
        io::ErrorKind::TimedOut => "timeout".to_string(),
        _ => format!("connect error: {e}"),
    }
}
