//! mmsg: batched UDP receive and send for the fast path's worker threads,
//! with Linux's `recvmmsg` (`MSG_WAITFORONE`: block for the first datagram,
//! then take whatever else is queued) and `sendmmsg`. Under load a worker
//! takes several queries per system call, as gdnsd does; measured on this
//! project's bench host gdnsd averaged about six datagrams per call at
//! saturation.
//!
//! The headers handed to the kernel are built once and reused, and the calls
//! go straight to `syscall(2)`: glibc's wrappers add a cancellation point
//! (two calls into libpthread) that these threads never use.
//!
//! Also here: [`dont_fragment`], the one socket option socket2 lacks.
//!
//! The only module with `unsafe` code: the system calls and reading the
//! kernel-filled `sockaddr_storage`. Every pointer handed to the kernel
//! points into heap buffers owned by [`Batch`] (so moving a `Batch` moves no
//! pointee) or borrowed for the call, sized as declared, and outliving it.

#![allow(unsafe_code)]

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6, UdpSocket};
use std::os::fd::AsRawFd;

/// Datagrams per system call.
pub(super) const BATCH: usize = 32;
/// Receive buffer per datagram (hickory's); longer datagrams are truncated.
pub(super) const RECV_BUFFER: usize = 4096;

/// Received datagrams and their sources, and the kernel-facing headers of
/// both directions, reused call after call.
///
/// The headers hold raw pointers into the other buffers. Every buffer is a
/// `Vec` created at its final length and never resized, so its heap block
/// never moves; and every stored pointer is derived from `Vec::as_mut_ptr`,
/// never from a reference, so moving a `Batch` (which moves only the `Vec`
/// handles) or indexing a buffer later does not invalidate it.
pub(super) struct Batch {
    bufs: Vec<[u8; RECV_BUFFER]>,
    names: Vec<libc::sockaddr_storage>,
    count: usize,
    /// recvmmsg's headers: entry i always points at `bufs[i]` and `names[i]`.
    recv_iovs: Vec<libc::iovec>,
    recv_hdrs: Vec<libc::mmsghdr>,
    /// sendmmsg's headers, filled per call.
    send_iovs: Vec<libc::iovec>,
    send_hdrs: Vec<libc::mmsghdr>,
}

impl Default for Batch {
    fn default() -> Self {
        let iov = libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        };
        // SAFETY: all-zero bytes are a valid mmsghdr (null pointers, zero
        // lengths) and a valid sockaddr_storage (AF_UNSPEC).
        let hdrs = || {
            (0..BATCH)
                .map(|_| unsafe { zeroed::<libc::mmsghdr>() })
                .collect()
        };
        let mut b = Batch {
            bufs: vec![[0; RECV_BUFFER]; BATCH],
            names: (0..BATCH).map(|_| unsafe { zeroed() }).collect(),
            count: 0,
            recv_iovs: vec![iov; BATCH],
            recv_hdrs: hdrs(),
            send_iovs: vec![iov; BATCH],
            send_hdrs: hdrs(),
        };
        let bufs = b.bufs.as_mut_ptr();
        let names = b.names.as_mut_ptr();
        let recv_iovs = b.recv_iovs.as_mut_ptr();
        let send_iovs = b.send_iovs.as_mut_ptr();
        for i in 0..BATCH {
            b.recv_iovs[i].iov_base = bufs.wrapping_add(i).cast();
            b.recv_iovs[i].iov_len = RECV_BUFFER;
            let h = &mut b.recv_hdrs[i].msg_hdr;
            h.msg_name = names.wrapping_add(i).cast();
            h.msg_iov = recv_iovs.wrapping_add(i);
            h.msg_iovlen = 1;
            let h = &mut b.send_hdrs[i].msg_hdr;
            h.msg_iov = send_iovs.wrapping_add(i);
            h.msg_iovlen = 1;
        }
        b.reset_name_lens(BATCH);
        b
    }
}

// `Batch` holds raw pointers into its own buffers; it never leaves the
// thread that made it, so it is deliberately neither Send nor Sync (the
// default for a struct holding raw pointers).

impl Batch {
    /// Blocks until a datagram arrives (or the socket's read timeout passes:
    /// `WouldBlock`), then takes up to [`BATCH`] without blocking again.
    /// Returns how many were received.
    pub(super) fn recv(&mut self, socket: &UdpSocket) -> io::Result<usize> {
        // The kernel shortened the name lengths of the headers it filled.
        self.reset_name_lens(self.count);
        self.count = 0;
        // SAFETY: `recv_hdrs` holds BATCH initialised headers whose name and
        // iov pointers point at BATCH distinct, live buffers of the stated
        // sizes, all owned by `self` (see the struct) and not borrowed now.
        let n = unsafe {
            libc::syscall(
                libc::SYS_recvmmsg,
                libc::c_long::from(socket.as_raw_fd()),
                self.recv_hdrs.as_mut_ptr(),
                BATCH as libc::c_long,
                libc::c_long::from(libc::MSG_WAITFORONE),
                std::ptr::null_mut::<libc::timespec>(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        self.count = (n as usize).min(BATCH);
        Ok(self.count)
    }

    fn reset_name_lens(&mut self, n: usize) {
        for hdr in self.recv_hdrs.iter_mut().take(n) {
            hdr.msg_hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        }
    }

    /// Datagram `i` of the last [`Batch::recv`] and its source (None for a
    /// source that is not IPv4 or IPv6).
    pub(super) fn datagram(&self, i: usize) -> Option<(&[u8], SocketAddr)> {
        if i >= self.count {
            return None;
        }
        let hdr = &self.recv_hdrs[i];
        let src = socket_addr(&self.names[i], hdr.msg_hdr.msg_namelen)?;
        let len = (hdr.msg_len as usize).min(RECV_BUFFER);
        Some((&self.bufs[i][..len], src))
    }

    /// Sends `replies[j]` to the source of datagram `to[j]`, as few system
    /// calls as the kernel allows. A datagram the kernel refuses (an ICMP
    /// error pending, a full buffer) is skipped; the rest still go.
    pub(super) fn send(&mut self, socket: &UdpSocket, replies: &[Vec<u8>], to: &[usize]) {
        let mut ready = 0;
        for (reply, &i) in replies.iter().zip(to).take(BATCH) {
            if i >= self.count {
                continue;
            }
            // The kernel only reads through these pointers (sendmmsg).
            self.send_iovs[ready].iov_base = reply.as_ptr().cast_mut().cast();
            self.send_iovs[ready].iov_len = reply.len();
            // The address recvmmsg wrote, through the pointer it wrote it by.
            let from = &self.recv_hdrs[i].msg_hdr;
            let h = &mut self.send_hdrs[ready].msg_hdr;
            h.msg_name = from.msg_name;
            h.msg_namelen = from.msg_namelen;
            ready += 1;
        }
        let mut sent = 0;
        while sent < ready {
            // SAFETY: send_hdrs[sent..ready] are initialised headers pointing
            // at live replies (borrowed for this call) and at source
            // addresses of the stated lengths owned by `self`.
            let n = unsafe {
                libc::syscall(
                    libc::SYS_sendmmsg,
                    libc::c_long::from(socket.as_raw_fd()),
                    self.send_hdrs.as_mut_ptr().wrapping_add(sent),
                    (ready - sent) as libc::c_long,
                    0 as libc::c_long,
                )
            };
            if n > 0 {
                sent += n as usize;
            } else if n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                continue;
            } else {
                sent += 1; // this one cannot go; the next may
            }
        }
    }
}

/// Sets the Don't Fragment bit on everything `socket` sends and ignores path
/// MTU information for it (`IP_PMTUDISC_PROBE`): RFC 9715 R1 asks UDP
/// responders to send with DF, and ignoring learned path MTUs keeps forged
/// ICMP "fragmentation needed" messages from shrinking answers. Answers are
/// at most 1,232 bytes of DNS, so they fit any IPv6 path and ordinary IPv4
/// ones; where an IPv4 path is narrower the answer is dropped by the router
/// and the client retries (over TCP, or with a smaller EDNS size). With DF
/// set the kernel also skips choosing an IP ID per datagram.
pub(super) fn dont_fragment(socket: &impl AsRawFd, ipv6: bool) -> io::Result<()> {
    let (level, name, value) = if ipv6 {
        (
            libc::IPPROTO_IPV6,
            libc::IPV6_MTU_DISCOVER,
            libc::IPV6_PMTUDISC_PROBE,
        )
    } else {
        (
            libc::IPPROTO_IP,
            libc::IP_MTU_DISCOVER,
            libc::IP_PMTUDISC_PROBE,
        )
    };
    // SAFETY: `value` is a live c_int and its size is passed with it.
    let r = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            level,
            name,
            (&value as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The source address the kernel wrote.
fn socket_addr(name: &libc::sockaddr_storage, len: libc::socklen_t) -> Option<SocketAddr> {
    let len = len as usize;
    match libc::c_int::from(name.ss_family) {
        libc::AF_INET if len >= size_of::<libc::sockaddr_in>() => {
            // SAFETY: the kernel wrote a sockaddr_in (family AF_INET, length
            // checked) into storage that is larger and suitably aligned.
            let sin =
                unsafe { &*(name as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            Some(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)),
                u16::from_be(sin.sin_port),
            )))
        }
        libc::AF_INET6 if len >= size_of::<libc::sockaddr_in6>() => {
            // SAFETY: as above, for sockaddr_in6.
            let sin6 =
                unsafe { &*(name as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(sin6.sin6_addr.s6_addr),
                u16::from_be(sin6.sin6_port),
                sin6.sin6_flowinfo,
                sin6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mtu_discover(socket: &UdpSocket, level: libc::c_int, name: libc::c_int) -> libc::c_int {
        let mut value: libc::c_int = -1;
        let mut len = size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: `value` and `len` are live and sized as declared.
        let r = unsafe {
            libc::getsockopt(
                socket.as_raw_fd(),
                level,
                name,
                (&mut value as *mut libc::c_int).cast(),
                &mut len,
            )
        };
        assert_eq!(r, 0, "getsockopt: {}", io::Error::last_os_error());
        value
    }

    #[test]
    fn dont_fragment_sets_probe_mode_per_family() {
        let v4 = UdpSocket::bind("127.0.0.1:0").expect("bind v4");
        assert_ne!(
            mtu_discover(&v4, libc::IPPROTO_IP, libc::IP_MTU_DISCOVER),
            libc::IP_PMTUDISC_PROBE
        );
        dont_fragment(&v4, false).expect("v4");
        assert_eq!(
            mtu_discover(&v4, libc::IPPROTO_IP, libc::IP_MTU_DISCOVER),
            libc::IP_PMTUDISC_PROBE
        );
        // IPv6 may be disabled on a test host; only check it where it binds.
        if let Ok(v6) = UdpSocket::bind("[::1]:0") {
            dont_fragment(&v6, true).expect("v6");
            assert_eq!(
                mtu_discover(&v6, libc::IPPROTO_IPV6, libc::IPV6_MTU_DISCOVER),
                libc::IPV6_PMTUDISC_PROBE
            );
        }
    }

    #[test]
    fn a_batch_survives_a_move_and_reuse() {
        let server = UdpSocket::bind("127.0.0.1:0").expect("bind");
        server
            .set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .expect("timeout");
        let client = UdpSocket::bind("127.0.0.1:0").expect("bind");
        client
            .set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .expect("timeout");
        let at = server.local_addr().expect("addr");
        let batch = Batch::default();
        // Moved into a box: the headers point into heap buffers, not at `batch`.
        let mut batch = Box::new(batch);
        for round in 0..3u8 {
            for i in 0..3u8 {
                client.send_to(&[round, i], at).expect("send");
            }
            let mut got = Vec::new();
            while got.len() < 3 {
                let n = batch.recv(&server).expect("recv");
                for i in 0..n {
                    let (d, src) = batch.datagram(i).expect("datagram");
                    assert_eq!(src, client.local_addr().expect("addr"));
                    got.push(d.to_vec());
                }
                let replies: Vec<Vec<u8>> = (0..n)
                    .map(|i| {
                        batch
                            .datagram(i)
                            .map(|(d, _)| d.iter().rev().copied().collect())
                    })
                    .collect::<Option<_>>()
                    .expect("replies");
                let to: Vec<usize> = (0..n).collect();
                batch.send(&server, &replies, &to);
            }
            assert_eq!(got, vec![vec![round, 0], vec![round, 1], vec![round, 2]]);
            let mut buf = [0u8; 8];
            for i in 0..3u8 {
                let (n, _) = client.recv_from(&mut buf).expect("reply");
                assert_eq!(&buf[..n], &[i, round]);
            }
        }
    }
}
