//! tcp: one L4 listener. Each accepted connection goes to one server of the
//! listener's backend (picked by its algorithm, counted in flight for the
//! connection's life); a failed connect moves on to another server up to
//! `retries` times. Bytes are copied both ways until either side closes, the
//! server's drain timeout cuts it, or shutdown ends.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use super::Shared;
use crate::health::{Observation, Source, Target};

/// The accept loop of one TCP listener; returns when `stop` is cancelled.
pub(crate) async fn serve(
    shared: Arc<Shared>,
    key: SocketAddr,
    listener: TcpListener,
    stop: CancellationToken,
) {
    loop {
        let (stream, peer) = tokio::select! {
            _ = stop.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(listen = %key, "accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let shared = shared.clone();
        tokio::spawn(async move { relay(shared, key, stream, peer).await });
    }
}

async fn relay(shared: Arc<Shared>, key: SocketAddr, mut client: TcpStream, peer: SocketAddr) {
    let runtime = shared.runtime.load_full();
    let Some(backend) = runtime
        .plans
        .get(&key)
        .and_then(|p| p.proxy.backend)
        .and_then(|id| runtime.backends.get(id.index()).cloned())
    else {
        return;
    };
    let config = &backend.config;
    let mut tried = Vec::new();
    for _ in 0..=config.retries {
        let Some((index, guard)) = backend.pick(peer.ip(), &tried, Instant::now()) else {
            break;
        };
        tried.push(index);
        let address = guard.slot().address;
        let started = Instant::now();
        let connected =
            tokio::time::timeout(config.connect_timeout, TcpStream::connect(address)).await;
        let latency = started.elapsed();
        let ok = matches!(connected, Ok(Ok(_)));
        guard.slot().record(
            ok,
            latency,
            config,
            Instant::now(),
            shared.options.events.as_deref(),
        );
        if let (Some(pool), Some(tx)) = (config.pool, &shared.observations) {
            let obs = Observation {
                generation: runtime.generation,
                target: Target::PoolTraffic(pool),
                source: Source::Traffic,
                ok,
                latency,
                error: (!ok).then(|| "connect".to_string()),
                load: None,
            };
            if tx.try_send(obs).is_err() {
                shared.observations_dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
        let Ok(Ok(mut server)) = connected else {
            tracing::debug!(backend = %config.name, server = %address, "connect failed");
            continue;
        };
        let _ = server.set_nodelay(true);
        tokio::select! {
            r = tokio::io::copy_bidirectional(&mut client, &mut server) => {
                if let Err(e) = r {
                    tracing::debug!(%peer, server = %address, "tcp relay ended: {e}");
                }
            }
            _ = guard.cut.cancelled() => {}
            _ = shared.hard_stop.cancelled() => {}
        }
        return;
    }
    tracing::debug!(%peer, backend = %config.name, "no server reachable; closing");
}
