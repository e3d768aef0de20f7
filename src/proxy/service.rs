//! service: one HTTP connection served by hyper-util's auto builder
//! (HTTP/2, upgrades, and HTTP/1.1 when `h1` does not relay it), and what
//! each request goes through: route by host and path prefix (first match
//! wins), the route's rate limit, then `forward`.
//!
//! Protections: hyper's HTTP/1 parser refuses conflicting framing itself
//! (differing `Content-Length`s, a `Transfer-Encoding` not ending in chunked:
//! 400) and neutralises `Content-Length` + `Transfer-Encoding` (drops the
//! length, decodes chunked, closes the connection after the response);
//! [`super::headers::framing_error`] re-checks what reaches us.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use http::{Request, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::sync::CancellationToken;

use super::backend::BackendRuntime;
use super::forward::local;
use super::headers::{framing_error, host_matches, routing_host};
use super::rate_limit::Verdict;
use super::{ProxyBody, Runtime, Shared, forward, lock};

pub(super) async fn serve_conn<I>(
    shared: Arc<Shared>,
    builder: Arc<auto::Builder<TokioExecutor>>,
    key: SocketAddr,
    peer: SocketAddr,
    proto: &'static str,
    io: I,
    stop: CancellationToken,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let hard_stop = shared.hard_stop.clone();
    let svc = service_fn(move |req: Request<Incoming>| {
        let shared = shared.clone();
        async move { Ok::<_, Infallible>(handle(shared, key, peer, proto, req).await) }
    });
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), svc);
    tokio::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        _ = stop.cancelled() => {
            // Finish the request in progress, accept no new one on this connection.
            conn.as_mut().graceful_shutdown();
            tokio::select! {
                r = conn.as_mut() => r,
                _ = hard_stop.cancelled() => Ok(()),
            }
        }
    };
    if let Err(e) = result {
        tracing::debug!(%peer, "connection ended: {e}");
    }
}

/// Routes one request and forwards it, or answers locally.
async fn handle(
    shared: Arc<Shared>,
    key: SocketAddr,
    peer: SocketAddr,
    proto: &'static str,
    req: Request<Incoming>,
) -> Response<ProxyBody> {
    if let Some(why) = framing_error(req.headers()) {
        return local(StatusCode::BAD_REQUEST, &format!("bad request: {why}\n"));
    }
    let host = routing_host(
        req.headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok()),
        req.uri().authority().map(|a| a.as_str()),
    );
    let runtime = shared.runtime.load_full();
    match route(&runtime, key, host.as_deref(), req.uri().path(), peer.ip()) {
        Routed::Backend(backend) => {
            forward::forward(&shared, runtime.generation, &backend, req, peer, proto).await
        }
        Routed::Local {
            status,
            body,
            retry_after,
        } => {
            let mut resp = local(status, &body);
            if let Some(secs) = retry_after {
                resp.headers_mut().insert(header::RETRY_AFTER, secs.into());
            }
            resp
        }
    }
}

/// Where a request goes: a backend, or an answer from the proxy itself.
pub(super) enum Routed {
    Backend(Arc<BackendRuntime>),
    Local {
        status: StatusCode,
        body: String,
        retry_after: Option<u64>,
    },
}

/// Picks the first route of listener `key` matching `host` and `path` and
/// applies its rate limit to `client`.
pub(super) fn route(
    runtime: &Runtime,
    key: SocketAddr,
    host: Option<&str>,
    path: &str,
    client: IpAddr,
) -> Routed {
    let local = |status, body: String| Routed::Local {
        status,
        body,
        retry_after: None,
    };
    let Some(plan) = runtime.plans.get(&key) else {
        return local(
            StatusCode::SERVICE_UNAVAILABLE,
            "this listener is shutting down\n".into(),
        );
    };
    let found = plan.proxy.routes.iter().enumerate().find(|(_, r)| {
        let host_ok = match (&r.host, host) {
            (None, _) => true,
            (Some(pattern), Some(h)) => host_matches(pattern, h),
            (Some(_), None) => false,
        };
        host_ok && path.starts_with(&r.path_prefix)
    });
    let Some((index, route)) = found else {
        return local(
            StatusCode::NOT_FOUND,
            format!(
                "no route for host {:?} and path {:?} on this listener\n",
                host.unwrap_or(""),
                path
            ),
        );
    };
    let Some(backend) = runtime.backends.get(route.backend.index()) else {
        return local(
            StatusCode::SERVICE_UNAVAILABLE,
            "route names no backend\n".into(),
        );
    };
    if let Some(Some(limiter)) = plan.limiters.get(index)
        && let Verdict::Limited { retry_after_secs } = lock(limiter).check(client, Instant::now())
    {
        backend
            .rate_limited
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        return Routed::Local {
            status: StatusCode::TOO_MANY_REQUESTS,
            body: "too many requests from this client; slow down\n".into(),
            retry_after: Some(retry_after_secs),
        };
    }
    Routed::Backend(backend.clone())
}
