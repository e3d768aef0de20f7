//! tcp: a TCP monitor passes when a connection opens. The caller bounds the
//! attempt with the monitor's timeout.

use std::io;

use tokio::net::TcpStream;

/// Connects to `host:port` (an IP or a name) and closes the connection.
pub async fn check(host: &str, port: u16) -> Result<(), String> {
    match TcpStream::connect((host, port)).await {
        Ok(_stream) => Ok(()),
        Err(e) => Err(io_reason(&e)),
    }
}

/// The reason a status page shows for a failed connection.
pub fn io_reason(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => "refused".to_string(),
        io::ErrorKind::TimedOut => "timeout".to_string(),
        _ => format!("connect error: {e}"),
    }
}
