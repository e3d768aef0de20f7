//! forward: sends one routed request to a server of its backend and streams
//! the answer back.
//!
//! Owns: server choice per attempt (`BackendRuntime::pick`), retries (only
//! idempotent methods without a body, only after a connect failure, each to a
//! server not yet tried), the whole-request timeout up to the response head
//! (504), WebSocket and other HTTP/1.1 upgrades (tunnelled only after the
//! server's 101), and outcomes: passive ejection plus `PoolTraffic`
//! observations. A client that goes away never counts against a server.
//!
//! Bodies stream both ways frame by frame; nothing is buffered whole. A
//! connection on which the server broke framing is dropped by hyper's pool,
//! never reused.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, Uri, Version, header};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper_util::rt::TokioIo;
use tokio_util::sync::WaitForCancellationFutureOwned;

use super::backend::{BackendRuntime, InFlight, ServerSlot};
use super::headers::{add_forwarding, remove_hop_by_hop, restore_upgrade, upgrade_protocol};
use super::{ProxyBody, Shared};
use crate::health::{Observation, Source, Target};

/// A response the proxy writes itself (here, where most of them are made;
/// `http` uses it for its own refusals).
pub(crate) fn local(status: StatusCode, body: &str) -> Response<ProxyBody> {
    let mut resp = Response::new(
        Full::new(Bytes::from(body.to_string()))
            .map_err(|never: std::convert::Infallible| match never {})
            .boxed(),
    );
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

fn empty() -> ProxyBody {
    Empty::<Bytes>::new()
        .map_err(|never: std::convert::Infallible| match never {})
        .boxed()
}

/// Forwards `req` from `peer` (arrived over `proto`) to a server of `backend`.
pub(crate) async fn forward(
    shared: &Arc<Shared>,
    generation: u64,
    backend: &Arc<BackendRuntime>,
    mut req: Request<Incoming>,
    peer: SocketAddr,
    proto: &'static str,
) -> Response<ProxyBody> {
    let config = &backend.config;
    let upgrade = (req.version() == Version::HTTP_11)
        .then(|| upgrade_protocol(req.headers()))
        .flatten();
    let client_upgrade = upgrade.as_ref().map(|_| hyper::upgrade::on(&mut req));
    let (mut parts, body) = req.into_parts();
    let host = parts
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .or_else(|| parts.uri.authority().map(|a| a.to_string()));
    remove_hop_by_hop(&mut parts.headers);
    add_forwarding(&mut parts.headers, peer.ip(), proto, host.as_deref());
    if !parts.headers.contains_key(header::HOST)
        && let Some(h) = host.as_deref().and_then(|h| HeaderValue::from_str(h).ok())
    {
        parts.headers.insert(header::HOST, h); // HTTP/2 clients send :authority only
    }
    if let Some(p) = upgrade.clone() {
        restore_upgrade(&mut parts.headers, p);
    }
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    let idempotent = matches!(
        parts.method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE | Method::TRACE
    );
    // A body already sent to a dead server cannot be replayed: retry only without one.
    let retriable = idempotent && body.is_end_stream();
    let attempts = 1 + if retriable { config.retries } else { 0 };
    let mut body = Some(body.boxed());
    let mut tried: Vec<usize> = Vec::new();
    let mut last_failure: Option<Response<ProxyBody>> = None;

    for _ in 0..attempts {
        let Some((index, guard)) = backend.pick(peer.ip(), &tried, Instant::now()) else {
            break;
        };
        tried.push(index);
        let address = guard.slot().address;
        let Ok(uri) = format!("http://{address}{path}").parse::<Uri>() else {
            return local(StatusCode::BAD_REQUEST, "bad request target\n");
        };
        let mut out = Request::new(body.take().unwrap_or_else(empty));
        *out.method_mut() = parts.method.clone();
        *out.uri_mut() = uri;
        *out.version_mut() = Version::HTTP_11;
        *out.headers_mut() = parts.headers.clone();

        let started = Instant::now();
        let cut = guard.cut.clone();
        let sent = tokio::select! {
            r = tokio::time::timeout(config.request_timeout, backend.client.request(out)) => r,
            _ = cut.cancelled() => {
                return local(StatusCode::BAD_GATEWAY, says::DRAINED);
            }
        };
        let latency = started.elapsed();
        match sent {
            Ok(Ok(resp)) => {
                let status = resp.status();
                guard.slot().count_status(status.as_u16());
                let ok = !status.is_server_error();
                let error = (!ok).then(|| format!("status {}", status.as_u16()));
                record(
                    shared,
                    generation,
                    backend,
                    guard.slot(),
                    ok,
                    latency,
                    error,
                );
                return respond(shared, resp, guard, client_upgrade);
            }
            Ok(Err(e)) if e.is_connect() => {
                tracing::debug!(backend = %config.name, server = %address, "connect failed: {e}");
                record(
                    shared,
                    generation,
                    backend,
                    guard.slot(),
                    false,
                    latency,
                    Some("connect".into()),
                );
                last_failure = Some(local(
                    StatusCode::BAD_GATEWAY,
                    &says::cannot_connect(&config.name),
                ));
            }
            Ok(Err(e)) => {
                if client_fault(&e) {
                    return local(StatusCode::BAD_REQUEST, "request body ended early\n");
                }
                tracing::debug!(backend = %config.name, server = %address, "request failed: {e}");
                record(
                    shared,
                    generation,
                    backend,
                    guard.slot(),
                    false,
                    latency,
                    Some("protocol".into()),
                );
                return local(StatusCode::BAD_GATEWAY, says::BROKEN);
            }
            Err(_) => {
                record(
                    shared,
                    generation,
                    backend,
                    guard.slot(),
                    false,
                    latency,
                    Some("timeout".into()),
                );
                return local(
                    StatusCode::GATEWAY_TIMEOUT,
                    &says::no_answer_within(config.request_timeout),
                );
            }
        }
    }
    last_failure.unwrap_or_else(|| {
        local(
            StatusCode::SERVICE_UNAVAILABLE,
            &says::no_server(&config.name),
        )
    })
}

/// What the proxy answers when a request gets no usable answer from a
/// server; both forwarding paths (hyper's and `h1`) say the same.
pub(super) mod says {
    use std::time::Duration;

    /// 502: the server's drain timeout cut the request.
    pub(crate) const DRAINED: &str = "server was drained before it answered\n";
    /// 502: the server broke HTTP or closed without answering.
    pub(crate) const BROKEN: &str = "the server sent a broken or no answer\n";

    /// 502: every attempt failed to connect.
    pub(crate) fn cannot_connect(backend: &str) -> String {
        format!("cannot connect to a server of backend {backend}\n")
    }

    /// 504: no response head within `request_timeout`.
    pub(crate) fn no_answer_within(timeout: Duration) -> String {
        format!("the server did not answer within {timeout:?}\n")
    }

    /// 503: no server is up, un-ejected and not draining.
    pub(crate) fn no_server(backend: &str) -> String {
        format!("no server of backend {backend} is available (all down, ejected or draining)\n")
    }
}

/// Did the request fail because of our client (its body broke off)?
fn client_fault(e: &hyper_util::client::legacy::Error) -> bool {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(h) = s.downcast_ref::<hyper::Error>()
            && (h.is_user() || h.is_body_write_aborted())
        {
            return true;
        }
        source = s.source();
    }
    false
}

/// Records an outcome for ejection, status, and the backend's pool health.
pub(super) fn record(
    shared: &Shared,
    generation: u64,
    backend: &BackendRuntime,
    slot: &ServerSlot,
    ok: bool,
    latency: Duration,
    error: Option<String>,
) {
    slot.record(
        ok,
        latency,
        &backend.config,
        Instant::now(),
        shared.options.events.as_deref(),
    );
    if let (Some(pool), Some(tx)) = (backend.config.pool, &shared.observations) {
        let obs = Observation {
            generation,
            target: Target::PoolTraffic(pool),
            source: Source::Traffic,
            ok,
            latency,
            error,
            load: None,
        };
        if tx.try_send(obs).is_err() {
            shared.observations_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Turns the server's response into the client's; tunnels an accepted upgrade.
fn respond(
    shared: &Shared,
    mut resp: Response<Incoming>,
    guard: InFlight,
    client_upgrade: Option<hyper::upgrade::OnUpgrade>,
) -> Response<ProxyBody> {
    if resp.status() == StatusCode::SWITCHING_PROTOCOLS
        && let Some(client_side) = client_upgrade
    {
        let protocol = resp.headers().get(header::UPGRADE).cloned();
        let server_side = hyper::upgrade::on(&mut resp);
        let hard_stop = shared.hard_stop.clone();
        tokio::spawn(async move {
            let (client, server) = match tokio::try_join!(client_side, server_side) {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::debug!("upgrade failed: {e}");
                    return;
                }
            };
            let (mut client, mut server) = (TokioIo::new(client), TokioIo::new(server));
            tokio::select! {
                _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                _ = guard.cut.cancelled() => {}
                _ = hard_stop.cancelled() => {}
            }
            drop(guard);
        });
        let (mut parts, _) = resp.into_parts();
        remove_hop_by_hop(&mut parts.headers);
        if let Some(p) = protocol {
            restore_upgrade(&mut parts.headers, p);
        }
        return Response::from_parts(parts, empty());
    }
    let (mut parts, body) = resp.into_parts();
    remove_hop_by_hop(&mut parts.headers);
    let cut = Box::pin(guard.cut.clone().cancelled_owned());
    let body = Tracked {
        inner: body,
        cut,
        _guard: guard,
    };
    Response::from_parts(parts, body.boxed())
}

/// A response body that keeps its request counted in flight until it ends,
/// and ends early when the server's drain timeout cuts it.
struct Tracked {
    inner: Incoming,
    cut: Pin<Box<WaitForCancellationFutureOwned>>,
    _guard: InFlight,
}

impl Body for Tracked {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        if self.cut.as_mut().poll(cx).is_ready() {
            return Poll::Ready(None);
        }
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
