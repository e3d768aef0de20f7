//! mmsg: batched UDP receive and send for the fast path's worker threads,
//! with Linux's `recvmmsg` (`MSG_WAITFORONE`: block for the first datagram,
//! then take whatever else is queued) and `sendmmsg`. Under load a worker
//! takes several queries per system call, as gdnsd does; measured on this
//! project's bench host gdnsd averaged about six datagrams per call at
//! saturation.
//!
//! The only module with `unsafe` code: the two system calls and reading the
//! kernel-filled `sockaddr_storage`. Every pointer handed to the kernel
//! points into buffers owned by [`Batch`] or borrowed for the call, sized as
//! declared, and outliving it.

#![allow(unsafe_code)]

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6, UdpSocket};
use std::os::fd::AsRawFd;

/// Datagrams per system call.
pub const BATCH: usize = 32;
/// Receive buffer per datagram (hickory's); longer datagrams are truncated.
pub const RECV_BUFFER: usize = 4096;

/// Received datagrams and their sources, reused call after call.
pub struct Batch {
    bufs: Box<[[u8; RECV_BUFFER]; BATCH]>,
    names: Box<[libc::sockaddr_storage; BATCH]>,
    name_lens: [libc::socklen_t; BATCH],
    lens: [usize; BATCH],
    count: usize,
}

impl Default for Batch {
    fn default() -> Self {
        Batch {
            bufs: Box::new([[0; RECV_BUFFER]; BATCH]),
            // SAFETY: all-zero bytes are a valid sockaddr_storage (AF_UNSPEC).
            names: Box::new(unsafe { zeroed() }),
            name_lens: [0; BATCH],
            lens: [0; BATCH],
            count: 0,
        }
    }
}

impl Batch {
    /// Blocks until a datagram arrives (or the socket's read timeout passes:
    /// `WouldBlock`), then takes up to [`BATCH`] without blocking again.
    /// Returns how many were received.
    pub fn recv(&mut self, socket: &UdpSocket) -> io::Result<usize> {
        let mut iovs: [libc::iovec; BATCH] = std::array::from_fn(|_| libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        });
        for (iov, buf) in iovs.iter_mut().zip(self.bufs.iter_mut()) {
            iov.iov_base = buf.as_mut_ptr().cast();
            iov.iov_len = RECV_BUFFER;
        }
        // SAFETY: all-zero bytes are a valid mmsghdr (null pointers, zero lengths).
        let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { zeroed() };
        for ((hdr, iov), name) in hdrs
            .iter_mut()
            .zip(iovs.iter_mut())
            .zip(self.names.iter_mut())
        {
            hdr.msg_hdr.msg_name = (name as *mut libc::sockaddr_storage).cast();
            hdr.msg_hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            hdr.msg_hdr.msg_iov = iov;
            hdr.msg_hdr.msg_iovlen = 1;
        }
        // SAFETY: `hdrs` holds BATCH initialised headers whose name and iov
        // pointers point at BATCH distinct, live buffers of the stated sizes.
        let n = unsafe {
            libc::recvmmsg(
                socket.as_raw_fd(),
                hdrs.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_WAITFORONE,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            self.count = 0;
            return Err(io::Error::last_os_error());
        }
        self.count = (n as usize).min(BATCH);
        for (i, hdr) in hdrs.iter().take(self.count).enumerate() {
            self.lens[i] = (hdr.msg_len as usize).min(RECV_BUFFER);
            self.name_lens[i] = hdr.msg_hdr.msg_namelen;
        }
        Ok(self.count)
    }

    /// Datagram `i` of the last [`Batch::recv`] and its source (None for a
    /// source that is not IPv4 or IPv6).
    pub fn datagram(&self, i: usize) -> Option<(&[u8], SocketAddr)> {
        if i >= self.count {
            return None;
        }
        let src = socket_addr(&self.names[i], self.name_lens[i])?;
        Some((&self.bufs[i][..self.lens[i]], src))
    }

    /// Sends `replies[j]` to the source of datagram `to[j]`, as few system
    /// calls as the kernel allows. A datagram the kernel refuses (an ICMP
    /// error pending, a full buffer) is skipped; the rest still go.
    pub fn send(&mut self, socket: &UdpSocket, replies: &[Vec<u8>], to: &[usize]) {
        let count = replies.len().min(to.len()).min(BATCH);
        let mut iovs: [libc::iovec; BATCH] = std::array::from_fn(|_| libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        });
        // SAFETY: all-zero bytes are a valid mmsghdr.
        let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { zeroed() };
        let mut ready = 0;
        for (reply, &i) in replies.iter().zip(to).take(count) {
            if i >= self.count {
                continue;
            }
            // The kernel only reads through these pointers (sendmmsg).
            iovs[ready].iov_base = reply.as_ptr().cast_mut().cast();
            iovs[ready].iov_len = reply.len();
            hdrs[ready].msg_hdr.msg_name =
                (&mut self.names[i] as *mut libc::sockaddr_storage).cast();
            hdrs[ready].msg_hdr.msg_namelen = self.name_lens[i];
            ready += 1;
        }
        for (hdr, iov) in hdrs.iter_mut().zip(iovs.iter_mut()).take(ready) {
            hdr.msg_hdr.msg_iov = iov;
            hdr.msg_hdr.msg_iovlen = 1;
        }
        let mut sent = 0;
        while sent < ready {
            // SAFETY: hdrs[sent..ready] are initialised headers pointing at
            // live replies and source addresses of the stated lengths.
            let n = unsafe {
                libc::sendmmsg(
                    socket.as_raw_fd(),
                    hdrs[sent..].as_mut_ptr(),
                    (ready - sent) as libc::c_uint,
                    0,
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
