//! udp: the fast path's IO shell. One OS thread per SO_REUSEPORT socket
//! receives a batch of datagrams into reused buffers (`recvmmsg` on Linux,
//! see `mmsg`), answers each through `fast::answer` on the current snapshot
//! and sends the answers as one batch on the same socket: no task, channel or
//! allocation per query, and no logging.
//!
//! What the fast path hands back (`Outcome::Fallback`) is decoded as hickory's
//! own UDP server would (silence for short packets and responses, FORMERR for
//! what does not decode) and answered by the `DnsHandler` on the tokio
//! runtime, whose reply goes out on the same socket. At most
//! [`MAX_FALLBACK_IN_FLIGHT`] such queries run at once; more are dropped, so
//! a flood of odd packets costs a bounded amount of memory.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use hickory_proto::rr::Record;
use hickory_server::net::NetError;
use hickory_server::net::xfer::Protocol;
use hickory_server::server::{ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponse;
use rand::SeedableRng;
use rand::rngs::SmallRng;
use tokio::runtime::Handle;

use super::DnsHandler;
use super::fast::{self, Outcome};
use super::raw;

/// Fallback queries answered at once, over all workers of a server.
pub const MAX_FALLBACK_IN_FLIGHT: usize = 1024;
/// How often a blocked worker looks at the stop flag.
const STOP_POLL: Duration = Duration::from_millis(100);
/// The receive buffer: hickory's size; larger queries are not DNS over UDP.
#[cfg(not(target_os = "linux"))]
const RECV_BUFFER: usize = 4096;

/// The running worker threads. Dropping this stops them (within `STOP_POLL`).
pub struct UdpWorkers {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl UdpWorkers {
    /// One thread per socket. The sockets must be blocking; fallbacks run on `runtime`.
    pub fn start(
        sockets: Vec<UdpSocket>,
        handler: DnsHandler,
        runtime: Handle,
    ) -> std::io::Result<UdpWorkers> {
        let stop = Arc::new(AtomicBool::new(false));
        let in_flight = Arc::new(AtomicUsize::new(0));
        let mut workers = UdpWorkers {
            stop: stop.clone(),
            threads: Vec::new(),
        };
        for (i, socket) in sockets.into_iter().enumerate() {
            socket.set_read_timeout(Some(STOP_POLL))?;
            let worker = Worker {
                socket: Arc::new(socket),
                handler: handler.clone(),
                runtime: runtime.clone(),
                stop: stop.clone(),
                in_flight: in_flight.clone(),
            };
            let t = std::thread::Builder::new()
                .name(format!("dns-udp-{i}"))
                .spawn(move || worker.run())?;
            workers.threads.push(t);
        }
        Ok(workers)
    }

    /// Stops the workers and waits for them to exit.
    pub async fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let threads = std::mem::take(&mut self.threads);
        let _ = tokio::task::spawn_blocking(move || {
            for t in threads {
                let _ = t.join();
            }
        })
        .await;
    }
}

impl Drop for UdpWorkers {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

struct Worker {
    socket: Arc<UdpSocket>,
    handler: DnsHandler,
    runtime: Handle,
    stop: Arc<AtomicBool>,
    in_flight: Arc<AtomicUsize>,
}

impl Worker {
    /// Receives a batch, answers what the fast path can, sends the answers
    /// as a batch; hands the rest to hickory.
    #[cfg(target_os = "linux")]
    fn run(self) {
        use super::mmsg::{BATCH, Batch};
        let mut batch = Batch::default();
        let mut replies: Vec<Vec<u8>> = (0..BATCH)
            .map(|_| Vec::with_capacity(usize::from(super::answer::MAX_UDP_PAYLOAD)))
            .collect();
        let mut to = [0usize; BATCH];
        let mut rng = SmallRng::from_rng(&mut rand::rng());
        let shared = self.handler.shared().clone();
        let other = self.handler.other_counters().clone();
        let rrl = self.handler.rrl().clone();
        let cookie_counters = self.handler.cookie_counters().clone();
        while !self.stop.load(Ordering::Relaxed) {
            // Timeouts (the stop poll), ICMP errors reported on the socket,
            // interrupted calls: none of them ends the loop.
            let Ok(n) = batch.recv(&self.socket) else {
                continue;
            };
            let snap = shared.load();
            let mut tally = fast::Tally::new(&other);
            let mut ready = 0;
            let now = rrl.now();
            let cookies = fast::Cookies {
                now: crate::wallclock::unix_secs() as u32,
                counters: &cookie_counters,
                limit: Some((&rrl, now)),
            };
            for i in 0..n {
                let Some((packet, src)) = batch.datagram(i) else {
                    continue;
                };
                // As hickory: never answer port 0 or the unspecified address.
                if src.port() == 0 || src.ip().is_unspecified() {
                    continue;
                }
                match fast::answer(
                    packet,
                    src,
                    &snap,
                    &mut tally,
                    &cookies,
                    &mut rng,
                    &mut replies[ready],
                ) {
                    Outcome::Verified => {
                        to[ready] = i;
                        ready += 1;
                    }
                    Outcome::Reply => {
                        let limits = &snap.config.server.rrl;
                        let zones = &snap.config.zones;
                        if rrl.admit(limits, zones, src.ip(), &mut replies[ready], now) {
                            to[ready] = i;
                            ready += 1;
                        }
                    }
                    Outcome::Drop => {}
                    Outcome::Fallback => self.fallback(packet, src, &snap),
                }
            }
            // Counted before the answers leave: whoever got one sees it counted.
            tally.flush();
            batch.send(&self.socket, &replies[..ready], &to[..ready]);
        }
    }

    /// One datagram per system call, where `recvmmsg` is not available.
    #[cfg(not(target_os = "linux"))]
    fn run(self) {
        let mut buf = vec![0u8; RECV_BUFFER];
        let mut out = Vec::with_capacity(usize::from(super::answer::MAX_UDP_PAYLOAD));
        let mut rng = SmallRng::from_rng(&mut rand::rng());
        let shared = self.handler.shared().clone();
        let other = self.handler.other_counters().clone();
        let cookie_counters = self.handler.cookie_counters().clone();
        while !self.stop.load(Ordering::Relaxed) {
            let Ok((n, src)) = self.socket.recv_from(&mut buf) else {
                continue;
            };
            if src.port() == 0 || src.ip().is_unspecified() {
                continue;
            }
            let snap = shared.load();
            let mut tally = fast::Tally::new(&other);
            let rrl = self.handler.rrl();
            let cookies = fast::Cookies {
                now: crate::wallclock::unix_secs() as u32,
                counters: &cookie_counters,
                limit: Some((rrl, rrl.now())),
            };
            let outcome = fast::answer(
                &buf[..n],
                src,
                &snap,
                &mut tally,
                &cookies,
                &mut rng,
                &mut out,
            );
            tally.flush();
            match outcome {
                Outcome::Verified => {
                    let _ = self.socket.send_to(&out, src);
                }
                Outcome::Reply => {
                    let (limits, zones) = (&snap.config.server.rrl, &snap.config.zones);
                    let rrl = self.handler.rrl();
                    if rrl.admit(limits, zones, src.ip(), &mut out, rrl.now()) {
                        let _ = self.socket.send_to(&out, src);
                    }
                }
                Outcome::Drop => {}
                Outcome::Fallback => self.fallback(&buf[..n], src, &snap),
            }
        }
    }

    fn fallback(&self, packet: &[u8], src: SocketAddr, snap: &crate::state::Snapshot) {
        if self.in_flight.fetch_add(1, Ordering::Relaxed) >= MAX_FALLBACK_IN_FLIGHT {
            self.in_flight.fetch_sub(1, Ordering::Relaxed);
            return;
        }
        let handler = self.handler.clone();
        // A valid server cookie exempts the answer from rate limiting.
        let verified = super::cookie::verified(packet, snap, src.ip());
        let reply = UdpReply {
            socket: self.socket.clone(),
            dst: src,
            limit: (!verified).then(|| self.handler.clone()),
        };
        let bytes = packet.to_vec();
        let slot = InFlight(self.in_flight.clone());
        self.runtime.spawn(async move {
            raw::answer(&handler, bytes, src, Protocol::Udp, reply).await;
            drop(slot);
        });
    }
}

/// One fallback query counted in flight; released even if its task panics.
struct InFlight(Arc<AtomicUsize>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Sends a hickory response on a worker's socket, sized as hickory's own UDP
/// handle does: the response OPT's payload size, or 512 without EDNS.
#[derive(Clone)]
pub struct UdpReply {
    socket: Arc<UdpSocket>,
    dst: SocketAddr,
    /// Rate limiting (the handler's table and the current `[server.rrl]`).
    limit: Option<DnsHandler>,
}

#[async_trait::async_trait]
impl ResponseHandler for UdpReply {
    async fn send_response<'a>(
        &mut self,
        response: MessageResponse<
            '_,
            'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
        >,
    ) -> Result<ResponseInfo, NetError> {
        let (info, mut bytes) = raw::encode_udp(response)?;
        if let Some(h) = &self.limit {
            let snap = h.shared().load();
            let (limits, zones) = (&snap.config.server.rrl, &snap.config.zones);
            let rrl = h.rrl();
            if !rrl.admit(limits, zones, self.dst.ip(), &mut bytes, rrl.now()) {
                return Ok(info);
            }
        }
        self.socket.send_to(&bytes, self.dst)?;
        Ok(info)
    }
}
