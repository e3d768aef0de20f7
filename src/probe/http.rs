//! http: HTTP and HTTPS monitors over reqwest (rustls with the ring provider).
//!
//! One client per endpoint. The monitor's `host` is the Host header and the
//! TLS SNI: the URL names it while `ClientBuilder::resolve` pins the
//! connection to the probe address. Without `host`, the URL names the probe
//! address itself. Connections are not kept alive between checks, so every
//! check also proves that the endpoint still accepts connections (a pooled
//! connection would hide a dead listener). Redirects are not followed and
//! proxies from the environment are ignored.

use std::error::Error as _;
use std::net::{IpAddr, SocketAddr};
use std::sync::Once;

use reqwest::{Client, redirect};

use super::verdict::{self, BODY_PREFIX};
use crate::config::{MonitorConfig, MonitorKind};

/// Installs rustls' ring provider as the process default, once.
pub fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// A ready HTTP(S) check of one endpoint.
#[derive(Debug, Clone)]
pub struct HttpCheck {
    /// Built once, unless the target is a name that must be looked up for
    /// every check (a named probe target with a monitor `host`).
    client: Option<Client>,
    /// (monitor host, target name, port) when `client` is built per check.
    lookup: Option<(String, String, u16)>,
    /// `server.probe_source`: the local address connections leave from.
    source: Option<IpAddr>,
    url: String,
    monitor: MonitorConfig,
}

impl HttpCheck {
    /// `host:port` is where to connect: an IP address or a name.
    pub fn new(
        monitor: &MonitorConfig,
        host: &str,
        port: u16,
        source: Option<IpAddr>,
    ) -> Result<HttpCheck, String> {
        install_crypto_provider();
        let scheme = match monitor.kind {
            MonitorKind::Https => "https",
            MonitorKind::Http | MonitorKind::Tcp | MonitorKind::External => "http",
        };
        let ip: Option<IpAddr> = host.parse().ok();
        let (url_host, client, lookup) = match (&monitor.host, ip) {
            (Some(name), Some(ip)) => {
                let pin = [SocketAddr::new(ip, port)];
                let client = build_client(monitor, Some((name, &pin)), source)?;
                (name.clone(), Some(client), None)
            }
            (Some(name), None) => (
                name.clone(),
                None,
                Some((name.clone(), host.to_string(), port)),
            ),
            (None, Some(IpAddr::V6(v6))) => (
                format!("[{v6}]"),
                Some(build_client(monitor, None, source)?),
                None,
            ),
            (None, _) => (
                host.to_string(),
                Some(build_client(monitor, None, source)?),
                None,
            ),
        };
        Ok(HttpCheck {
            client,
            lookup,
            source,
            url: format!("{scheme}://{url_host}:{port}{}", monitor.path),
            monitor: monitor.clone(),
        })
    }

    /// One request: status and the first [`BODY_PREFIX`] bytes are judged.
    /// With a `load_header`, the number it carries comes along, from any
    /// response (a server refusing work with a 503 may still say how busy
    /// it is).
    pub async fn check(&self) -> (Result<(), String>, Option<f64>) {
        let mut load = None;
        let result = self.check_into(&mut load).await;
        (result, load)
    }

    async fn check_into(&self, load: &mut Option<f64>) -> Result<(), String> {
        let client = match (&self.client, &self.lookup) {
            (Some(client), _) => client.clone(),
            (None, Some((name, target, port))) => {
                let addrs: Vec<SocketAddr> = tokio::net::lookup_host((target.as_str(), *port))
                    .await
                    .map_err(|e| format!("connect error: cannot resolve {target}: {e}"))?
                    .collect();
                build_client(&self.monitor, Some((name, &addrs)), self.source)?
            }
            (None, None) => return Err("config error: no client".to_string()),
        };
        let mut response = client.get(&self.url).send().await.map_err(|e| reason(&e))?;
        let status = response.status().as_u16();
        if let Some(name) = &self.monitor.load_header {
            let value = response.headers().get(name.as_str());
            *load = value
                .and_then(|v| v.to_str().ok())
                .and_then(crate::health::load::parse_header);
            if load.is_none() {
                tracing::debug!(url = %self.url, header = %name, ?value, "no load figure in the response");
            }
        }
        let mut body = Vec::new();
        if self.monitor.expect_body.is_some() {
            while body.len() < BODY_PREFIX {
                match response.chunk().await {
                    Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                    Ok(None) => break,
                    Err(e) => return Err(reason(&e)),
                }
            }
        }
        verdict::judge(status, &body, &self.monitor)
    }
}

/// The reason a status page shows: `refused`, `timeout`, `tls error: ...`,
/// `connect error: ...`, or `http error: ...`.
pub fn reason(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        return "timeout".to_string();
    }
    let mut source = e.source();
    while let Some(cause) = source {
        if let Some(tls) = cause.downcast_ref::<rustls::Error>() {
            return format!("tls error: {tls}");
        }
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            // rustls reports through io::Error, whose source() skips the
            // wrapped error itself.
            if let Some(tls) = io.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
                return format!("tls error: {tls}");
            }
            match io.kind() {
                std::io::ErrorKind::ConnectionRefused => return "refused".to_string(),
                std::io::ErrorKind::TimedOut => return "timeout".to_string(),
                _ => {}
            }
        }
        source = cause.source();
    }
    if e.is_connect() {
        format!("connect error: {}", root_cause(e))
    } else {
        format!("http error: {}", root_cause(e))
    }
}

fn build_client(
    monitor: &MonitorConfig,
    pin: Option<(&str, &[SocketAddr])>,
    source: Option<IpAddr>,
) -> Result<Client, String> {
    let mut builder = Client::builder()
        .redirect(redirect::Policy::none())
        .no_proxy()
        .timeout(monitor.timeout)
        .connect_timeout(monitor.timeout)
        .pool_max_idle_per_host(0)
        .tls_danger_accept_invalid_certs(monitor.tls_skip_verify);
    if let Some((name, addrs)) = pin {
        builder = builder.resolve_to_addrs(name, addrs);
    }
    if let Some(source) = source {
        builder = builder.local_address(source);
    }
    builder
        .build()
        .map_err(|e| format!("config error: {}", root_cause(&e)))
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut last = e;
    while let Some(next) = last.source() {
        last = next;
    }
    last.to_string()
}
