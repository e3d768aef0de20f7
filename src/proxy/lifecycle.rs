//! lifecycle: binding, hot reload and shutdown of [`Proxies`].
//!
//! Reload builds the next [`Runtime`] beside the running one, binds only the
//! listeners that are new or changed (mode, TLS files), swaps the runtime in
//! one store and then starts or stops listener tasks. On a bind error nothing
//! running changes. Shutdown stops accepting, drains every server and cuts
//! what is left after the longest `drain_timeout`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;

use super::backend::BackendRuntime;
use super::rate_limit::RateLimiter;
use super::{Listener, ListenerPlan, Proxies, ProxyStartError, Runtime, http, lock, tcp, tls_key};
use crate::config::{BackendId, Config, ProxyMode};

fn bind(addr: SocketAddr) -> Result<TcpListener, ProxyStartError> {
    let err = |source| ProxyStartError::Bind { addr, source };
    let std = std::net::TcpListener::bind(addr).map_err(err)?;
    std.set_nonblocking(true).map_err(err)?;
    TcpListener::from_std(std).map_err(err)
}

impl Proxies {
    /// Applies a new config: unchanged listeners keep their sockets, servers
    /// keep counters by (backend, address), removed servers drain. On error
    /// the running proxies are untouched.
    pub async fn reload(
        &self,
        config: Arc<Config>,
        generation: u64,
    ) -> Result<(), ProxyStartError> {
        let old = self.shared.runtime.load_full();
        let mut listeners = lock(&self.listeners);

        // 1. Bind what is new or changed, before touching anything running.
        struct Fresh {
            key: SocketAddr,
            mode: ProxyMode,
            listener: TcpListener,
            tls: Option<tokio_rustls::TlsAcceptor>,
            tls_key: Option<(std::path::PathBuf, std::path::PathBuf)>,
        }
        let mut fresh: Vec<Fresh> = Vec::new();
        for p in &config.proxies {
            let same = listeners
                .iter()
                .position(|l| l.key == p.listen && l.mode == p.mode && l.tls == tls_key(&p.tls));
            if same.is_some() {
                continue;
            }
            // The same address with another mode or TLS: free it first.
            if let Some(l) = listeners.iter().find(|l| l.key == p.listen) {
                l.stop.cancel();
                l.task.abort();
            }
            let tls = match &p.tls {
                Some(t) => Some(
                    http::tls_acceptor(t).map_err(|message| ProxyStartError::Tls {
                        addr: p.listen,
                        message,
                    })?,
                ),
                None => None,
            };
            let listener = match bind(p.listen) {
                Ok(l) => l,
                // The old task may still hold the socket for a moment.
                Err(_) if listeners.iter().any(|l| l.key == p.listen) => {
                    std::thread::sleep(Duration::from_millis(50));
                    bind(p.listen)?
                }
                Err(e) => return Err(e),
            };
            fresh.push(Fresh {
                key: p.listen,
                mode: p.mode,
                listener,
                tls,
                tls_key: tls_key(&p.tls),
            });
        }

        // 2. The next runtime: backends reuse slots by (name, address).
        let backends: Vec<Arc<BackendRuntime>> = config
            .backends
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let prev = old.backends.iter().find(|o| o.config.name == b.name);
                Arc::new(BackendRuntime::new(
                    BackendId(i as u32),
                    b.clone(),
                    prev.map(|p| p.as_ref()),
                    self.shared.options.pool_idle_timeout,
                ))
            })
            .collect();
        for prev in &old.backends {
            let next = backends.iter().find(|b| b.config.name == prev.config.name);
            for slot in &prev.servers {
                if next.and_then(|n| n.slot(slot.address)).is_none() {
                    slot.set_draining(true, Some(prev.config.drain_timeout));
                    lock(&self.shared.retired).push((prev.config.name.clone(), slot.clone()));
                }
            }
        }
        let capacity = self.shared.options.rate_limit_capacity;
        let plans = config
            .proxies
            .iter()
            .map(|p| {
                let limiters = p
                    .routes
                    .iter()
                    .map(|r| {
                        r.rate_limit
                            .map(|rl| Mutex::new(RateLimiter::new(rl, capacity)))
                    })
                    .collect();
                (
                    p.listen,
                    Arc::new(ListenerPlan {
                        proxy: p.clone(),
                        limiters,
                    }),
                )
            })
            .collect::<HashMap<_, _>>();
        self.shared.runtime.store(Arc::new(Runtime {
            generation,
            backends,
            plans,
        }));

        // 3. Start the fresh listeners, stop the dropped ones, keep config order.
        let mut previous: Vec<Option<Listener>> = listeners.drain(..).map(Some).collect();
        let mut next: Vec<Listener> = Vec::new();
        let mut fresh_iter = fresh.into_iter();
        for p in &config.proxies {
            let reused = previous.iter().position(|l| {
                l.as_ref().is_some_and(|l| {
                    l.key == p.listen && l.mode == p.mode && l.tls == tls_key(&p.tls)
                })
            });
            if let Some(i) = reused
                && let Some(l) = previous[i].take()
            {
                next.push(l);
                continue;
            }
            let Some(f) = fresh_iter.next() else { continue };
            let local = f.listener.local_addr().unwrap_or(f.key);
            let stop = self.shutdown.child_token();
            let shared = self.shared.clone();
            let task = match f.mode {
                ProxyMode::Http => {
                    tokio::spawn(http::serve(shared, f.key, f.listener, f.tls, stop.clone()))
                }
                ProxyMode::Tcp => tokio::spawn(tcp::serve(shared, f.key, f.listener, stop.clone())),
            };
            tracing::info!(listen = %local, mode = ?f.mode, "proxy listening");
            next.push(Listener {
                key: f.key,
                mode: f.mode,
                tls: f.tls_key,
                local,
                stop,
                task,
            });
        }
        for l in previous.into_iter().flatten() {
            l.stop.cancel();
        }
        *listeners = next;
        Ok(())
    }

    /// Stops accepting, drains every server and waits for in-flight work up
    /// to the longest `drain_timeout`; then closes whatever is left.
    pub async fn shutdown(&self) {
        let listeners: Vec<Listener> = lock(&self.listeners).drain(..).collect();
        for l in &listeners {
            l.stop.cancel();
        }
        let runtime = self.shared.runtime.load_full();
        let mut slots = Vec::new();
        let mut deadline = Duration::ZERO;
        for b in &runtime.backends {
            deadline = deadline.max(b.config.drain_timeout);
            for s in &b.servers {
                s.set_draining(true, None);
                slots.push(s.clone());
            }
        }
        slots.extend(lock(&self.shared.retired).iter().map(|(_, s)| s.clone()));
        let wait = async {
            while slots.iter().any(|s| s.in_flight() > 0) {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        if tokio::time::timeout(deadline, wait).await.is_err() {
            tracing::warn!("proxy drain timeout passed; closing what is still in flight");
        }
        for s in &slots {
            s.cut();
        }
        self.shared.hard_stop.cancel();
        for l in listeners {
            let _ = tokio::time::timeout(Duration::from_secs(1), l.task).await;
        }
    }
}
