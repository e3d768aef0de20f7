//! http: one L7 listener. Accepts TCP (optionally TLS with ALPN h2 and
//! http/1.1) and hands each connection to `h1` (HTTP/1.1 relayed by our own
//! code) or to `service` (hyper-util's auto builder: HTTP/2, and HTTP/1.1
//! when the h1 fast path is off). The builder caps head size and field count
//! (431) and cuts a slow head after `header_read_timeout` (408, then close).
//!
//! Direction: `http` → `h1` → `service` → `forward`; none names one above it.

use std::net::SocketAddr;
use std::sync::Arc;

use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::{Shared, service};
use crate::config::TlsConfig;

/// Builds a TLS acceptor from PEM files, offering h2 and http/1.1.
pub fn tls_acceptor(tls: &TlsConfig) -> Result<tokio_rustls::TlsAcceptor, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(&tls.cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("cannot read certificate {}: {e}", tls.cert.display()))?;
    let key = PrivateKeyDer::from_pem_file(&tls.key)
        .map_err(|e| format!("cannot read key {}: {e}", tls.key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| e.to_string())?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// The accept loop of one HTTP listener; returns when `stop` is cancelled.
pub(crate) async fn serve(
    shared: Arc<Shared>,
    key: SocketAddr,
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    stop: CancellationToken,
) {
    let opts = &shared.options;
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(opts.header_read_timeout)
        .max_headers(opts.max_headers)
        .max_buf_size(opts.max_header_bytes.max(8192));
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(opts.max_header_bytes).unwrap_or(u32::MAX));
    let builder = Arc::new(builder);
    loop {
        let (stream, peer) = tokio::select! {
            _ = stop.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: back off, keep serving.
                    tracing::warn!(listen = %key, "accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let (shared, builder, stop, tls) =
            (shared.clone(), builder.clone(), stop.clone(), tls.clone());
        tokio::spawn(async move {
            match tls {
                None if shared.options.h1_fast_path => {
                    super::h1::serve(shared, builder, key, peer, "http", stream, stop).await
                }
                None => service::serve_conn(shared, builder, key, peer, "http", stream, stop).await,
                Some(acceptor) => {
                    let timeout = shared.options.header_read_timeout;
                    match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
                        // HTTP/2 (by ALPN) is hyper's; HTTP/1.1 is relayed.
                        Ok(Ok(tls))
                            if shared.options.h1_fast_path
                                && tls.get_ref().1.alpn_protocol() != Some(b"h2") =>
                        {
                            super::h1::serve(shared, builder, key, peer, "https", tls, stop).await
                        }
                        Ok(Ok(tls)) => {
                            service::serve_conn(shared, builder, key, peer, "https", tls, stop)
                                .await
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, "TLS handshake failed: {e}"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                }
            }
        });
    }
}
