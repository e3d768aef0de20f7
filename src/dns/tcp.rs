//! tcp: DNS over TCP as RFC 7766 asks of a server on the open Internet.
//!
//! - Several queries per connection, answered as they are ready: each query
//!   runs as its own task (at most [`PIPELINE`] per connection at once), so a
//!   slow answer does not hold back the ones behind it; answers carry the
//!   query's ID, so clients match them out of order (RFC 7766 §6.2.1.1).
//! - An idle timeout (`server.tcp_idle_timeout`): a connection with no query
//!   in flight that sends nothing for that long is closed.
//! - A connection limit (`server.tcp_max_connections`): at the limit, a new
//!   connection closes the one idle longest, so a client that opens
//!   thousands and sends nothing cannot lock others out; the listener never
//!   stops accepting. Only when none is idle is the new one turned away.
//!
//! Queries go to the same `DnsHandler` as hickory's server would hand them.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hickory_proto::rr::Record;
use hickory_server::net::NetError;
use hickory_server::net::xfer::Protocol;
use hickory_server::server::{ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponse;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::DnsHandler;
use super::raw;

/// Queries of one connection answered at once; the next waits for a slot.
pub const PIPELINE: usize = 16;

/// The limits of `[server]`.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub idle: Duration,
    pub max_connections: usize,
}

/// The open connections, for the limit: id → (last activity, queries in
/// flight, its stop token).
#[derive(Default)]
struct Table {
    next: u64,
    open: HashMap<u64, Conn>,
}

struct Conn {
    last: Arc<AtomicU64>,
    busy: Arc<AtomicUsize>,
    stop: CancellationToken,
}

/// Serves DNS on `listener` until `shutdown`; in-flight queries finish.
pub async fn serve(
    listener: TcpListener,
    handler: DnsHandler,
    limits: Limits,
    shutdown: CancellationToken,
    tasks: TaskTracker,
) {
    let table = Arc::new(Mutex::new(Table::default()));
    let epoch = Instant::now();
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                // Out of descriptors and the like: keep accepting.
                Err(e) => {
                    tracing::debug!(error = %e, "TCP accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        if peer.port() == 0 || peer.ip().is_unspecified() {
            continue;
        }
        let now = epoch.elapsed().as_millis() as u64;
        let (id, conn) = {
            let mut t = table.lock().unwrap_or_else(|e| e.into_inner());
            if t.open.len() >= limits.max_connections.max(1) {
                // The connection idle longest makes room; none idle: refuse.
                let oldest = t
                    .open
                    .iter()
                    .filter(|(_, c)| c.busy.load(Ordering::Relaxed) == 0)
                    .min_by_key(|(_, c)| c.last.load(Ordering::Relaxed))
                    .map(|(id, _)| *id);
                match oldest.and_then(|id| t.open.remove(&id)) {
                    Some(c) => c.stop.cancel(),
                    None => continue,
                }
            }
            t.next += 1;
            let id = t.next;
            let conn = Conn {
                last: Arc::new(AtomicU64::new(now)),
                busy: Arc::new(AtomicUsize::new(0)),
                stop: shutdown.child_token(),
            };
            let handles = (conn.last.clone(), conn.busy.clone(), conn.stop.clone());
            t.open.insert(id, conn);
            (id, handles)
        };
        let (handler, table, tasks2) = (handler.clone(), table.clone(), tasks.clone());
        tasks.spawn(async move {
            connection(stream, peer, handler, limits, conn, epoch, tasks2).await;
            table
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .open
                .remove(&id);
        });
    }
}

async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    handler: DnsHandler,
    limits: Limits,
    (last, busy, stop): (Arc<AtomicU64>, Arc<AtomicUsize>, CancellationToken),
    epoch: Instant,
    tasks: TaskTracker,
) {
    let _ = stream.set_nodelay(true);
    let (mut reader, mut writer) = stream.into_split();
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(PIPELINE);
    // One writer: answers go out whole, in the order they are ready.
    let write = tokio::spawn(async move {
        while let Some(bytes) = rx.recv().await {
            let Ok(len) = u16::try_from(bytes.len()) else {
                continue;
            };
            let mut framed = Vec::with_capacity(bytes.len() + 2);
            framed.extend_from_slice(&len.to_be_bytes());
            framed.extend_from_slice(&bytes);
            if writer.write_all(&framed).await.is_err() {
                return;
            }
        }
        let _ = writer.shutdown().await;
    });
    let slots = Arc::new(tokio::sync::Semaphore::new(PIPELINE));
    loop {
        // Idle: nothing in flight and nothing read for `idle`. A query in
        // flight keeps the connection open however long it takes; the read
        // under way is kept, never restarted mid-message.
        let read = read_message(&mut reader);
        tokio::pin!(read);
        let mut deadline = tokio::time::Instant::now() + limits.idle;
        let msg = loop {
            tokio::select! {
                _ = stop.cancelled() => break None,
                r = &mut read => break r.ok(),
                _ = tokio::time::sleep_until(deadline) => {
                    if busy.load(Ordering::Relaxed) > 0 {
                        deadline = tokio::time::Instant::now() + limits.idle;
                        continue;
                    }
                    break None;
                }
            }
        };
        let Some(msg) = msg else {
            break;
        };
        last.store(epoch.elapsed().as_millis() as u64, Ordering::Relaxed);
        let Ok(permit) = slots.clone().acquire_owned().await else {
            break;
        };
        busy.fetch_add(1, Ordering::Relaxed);
        let (handler, tx, busy2, last2) = (handler.clone(), tx.clone(), busy.clone(), last.clone());
        tasks.spawn(async move {
            if super::xfr::is_transfer(&msg) {
                for m in super::xfr::answer(&handler, msg, peer, true).messages {
                    if tx.send(m).await.is_err() {
                        break;
                    }
                }
            } else {
                raw::answer(&handler, msg, peer, Protocol::Tcp, TcpReply { tx }).await;
            }
            last2.store(epoch.elapsed().as_millis() as u64, Ordering::Relaxed);
            busy2.fetch_sub(1, Ordering::Relaxed);
            drop(permit);
        });
    }
    // Queries already read are answered before the connection closes.
    drop(tx);
    let _ = write.await;
}

/// One length-prefixed DNS message.
async fn read_message(reader: &mut tokio::net::tcp::OwnedReadHalf) -> std::io::Result<Vec<u8>> {
    let mut len = [0u8; 2];
    reader.read_exact(&mut len).await?;
    let mut msg = vec![0u8; usize::from(u16::from_be_bytes(len))];
    reader.read_exact(&mut msg).await?;
    Ok(msg)
}

/// Hands an encoded answer to the connection's writer.
#[derive(Clone)]
struct TcpReply {
    tx: mpsc::Sender<Vec<u8>>,
}

#[async_trait::async_trait]
impl ResponseHandler for TcpReply {
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
        let (info, bytes) = raw::encode(response, u16::MAX)?;
        let _ = self.tx.send(bytes).await;
        Ok(info)
    }
}
