//! server: binds every `dns_listen` address for UDP (several SO_REUSEPORT
//! sockets, so the kernel spreads queries over worker threads) and TCP. TCP
//! always runs on hickory's `Server`; UDP runs on the fast-path workers
//! (`udp`), or on hickory's `Server` too when `server.fast_path = false`.

use std::net::SocketAddr;
use std::time::Duration;

use hickory_server::Server;
use socket2::{Domain, Protocol, Socket, Type};
use tokio_util::sync::CancellationToken;

use super::DnsHandler;
use super::udp::UdpWorkers;

/// The running DNS listeners.
pub struct DnsServer {
    /// hickory's server: UDP without the fast path (TCP is `dns::tcp`'s);
    /// None with the fast path, where it would serve nothing.
    server: Option<Server<DnsHandler>>,
    udp: Option<UdpWorkers>,
    /// Our TCP listeners (`dns::tcp`) and their connections.
    tcp_stop: CancellationToken,
    tcp_tasks: tokio_util::task::TaskTracker,
    /// Bound addresses, in config order (port 0 resolved).
    pub addrs: Vec<SocketAddr>,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot listen for DNS on {addr}: {source}")]
pub struct BindError {
    pub addr: SocketAddr,
    pub source: std::io::Error,
}

impl DnsServer {
    /// Binds UDP and TCP on every address. `udp_sockets` per address (≥ 1),
    /// each with its own fast-path thread when `fast_path`. Call from
    /// inside the tokio runtime (fallback queries run on it).
    pub fn bind(
        listen: &[SocketAddr],
        udp_sockets: usize,
        fast_path: bool,
        tcp_limits: super::tcp::Limits,
        handler: DnsHandler,
    ) -> Result<DnsServer, BindError> {
        let tcp_stop = CancellationToken::new();
        let tcp_tasks = tokio_util::task::TaskTracker::new();
        // Without the fast path hickory's server sends UDP answers itself:
        // its handler applies rate limiting (the fast path's workers do).
        let mut server = Server::new(if fast_path {
            handler.clone()
        } else {
            handler.gating_udp()
        });
        let mut addrs = Vec::new();
        let mut fast_sockets = Vec::new();
        for want in listen {
            let err = |source| BindError {
                addr: *want,
                source,
            };
            // With port 0 the UDP port is picked first; TCP must then get the
            // same port, which can be taken: try a few times.
            let mut attempt = 0;
            let (udp, tcp, addr) = loop {
                attempt += 1;
                let first = udp_socket(*want, !fast_path).map_err(err)?;
                let addr = first.local_addr().map_err(err)?;
                match tcp_listener(addr) {
                    Ok(tcp) => {
                        let mut udp = vec![first];
                        for _ in 1..udp_sockets.max(1) {
                            udp.push(udp_socket(addr, !fast_path).map_err(err)?);
                        }
                        break (udp, tcp, addr);
                    }
                    Err(e) if want.port() == 0 && attempt < 10 => {
                        tracing::debug!(%addr, error = %e, "TCP port taken, retrying");
                    }
                    Err(e) => return Err(err(e)),
                }
            };
            if fast_path {
                fast_sockets.extend(udp);
            } else {
                for s in udp {
                    server.register_socket(tokio::net::UdpSocket::from_std(s).map_err(err)?);
                }
            }
            tcp_tasks.spawn(super::tcp::serve(
                tcp,
                handler.clone(),
                tcp_limits,
                tcp_stop.clone(),
                tcp_tasks.clone(),
            ));
            tracing::info!(%addr, udp_sockets = udp_sockets.max(1), fast_path, "listening for DNS on UDP and TCP");
            addrs.push(addr);
        }
        let udp = if fast_path {
            let runtime = tokio::runtime::Handle::current();
            let workers =
                UdpWorkers::start(fast_sockets, handler, runtime).map_err(|source| BindError {
                    addr: listen.first().copied().unwrap_or(([0, 0, 0, 0], 0).into()),
                    source,
                })?;
            Some(workers)
        } else {
            None
        };
        Ok(DnsServer {
            server: (!fast_path).then_some(server),
            udp,
            tcp_stop,
            tcp_tasks,
            addrs,
        })
    }

    /// Stops accepting, lets in-flight TCP queries finish, and returns.
    pub async fn shutdown(mut self) {
        if let Some(udp) = self.udp.take() {
            udp.stop().await;
        }
        // TCP: stop accepting and reading; queries already read are answered.
        self.tcp_stop.cancel();
        self.tcp_tasks.close();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.tcp_tasks.wait()).await;
        if let Some(mut server) = self.server.take()
            && let Err(e) = server.shutdown_gracefully().await
        {
            tracing::warn!(error = %e, "DNS server shut down with an error");
        }
    }
}

/// A UDP socket for `addr`, non-blocking for tokio or blocking for a fast-path thread.
fn udp_socket(addr: SocketAddr, nonblocking: bool) -> std::io::Result<std::net::UdpSocket> {
    let s = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    s.set_reuse_port(true)?;
    s.set_nonblocking(nonblocking)?;
    // Room for bursts: a few MB of queued queries instead of drops.
    let _ = s.set_recv_buffer_size(4 << 20);
    let _ = s.set_send_buffer_size(4 << 20);
    // Best effort, like the buffer sizes: a kernel that refuses it still serves.
    #[cfg(target_os = "linux")]
    if let Err(e) = super::mmsg::dont_fragment(&s, addr.is_ipv6()) {
        tracing::warn!(%addr, error = %e, "cannot set DF on UDP answers (IP_MTU_DISCOVER)");
    }
    s.bind(&addr.into())?;
    Ok(s.into())
}

fn tcp_listener(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    s.set_reuse_address(true)?;
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    s.listen(1024)?;
    tokio::net::TcpListener::from_std(s.into())
}
