//! admin_client: the small HTTP client the CLI uses to talk to a running server.

use std::time::Duration;

use anyhow::bail;
use reqwest::StatusCode;

use super::Unreachable;
use super::locate::Admin;

/// A server that accepted the connection answers at once; one that hangs
/// must not hang the operator's shell.
const TIMEOUT: Duration = Duration::from_secs(15);

fn client() -> anyhow::Result<reqwest::Client> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    Ok(reqwest::Client::builder()
        .no_proxy()
        .connect_timeout(Duration::from_secs(5))
        .timeout(TIMEOUT)
        .build()?)
}

fn token() -> Option<String> {
    std::env::var("GEOSTEER_ADMIN_TOKEN")
        .ok()
        .filter(|t| !t.is_empty())
}

pub(super) fn get(admin: &Admin, path: &str) -> anyhow::Result<String> {
    send(admin, reqwest::Method::GET, path, None)
}

pub(super) fn post(admin: &Admin, path: &str) -> anyhow::Result<String> {
    send(admin, reqwest::Method::POST, path, None)
}

/// POST with a JSON body.
pub(super) fn post_json(
    admin: &Admin,
    path: &str,
    body: &serde_json::Value,
) -> anyhow::Result<String> {
    send(admin, reqwest::Method::POST, path, Some(body))
}

/// PUT with a JSON body.
pub(super) fn put_json(
    admin: &Admin,
    path: &str,
    body: &serde_json::Value,
) -> anyhow::Result<String> {
    send(admin, reqwest::Method::PUT, path, Some(body))
}

pub(super) fn delete(admin: &Admin, path: &str) -> anyhow::Result<String> {
    send(admin, reqwest::Method::DELETE, path, None)
}

fn send(
    admin: &Admin,
    method: reqwest::Method,
    path: &str,
    body: Option<&serde_json::Value>,
) -> anyhow::Result<String> {
    let url = format!("{}{path}", admin.url.trim_end_matches('/'));
    super::block_on(async {
        let mut req = client()?.request(method.clone(), &url);
        if method != reqwest::Method::GET
            && let Some(t) = token()
        {
            req = req.bearer_auth(t);
        }
        if let Some(body) = body {
            req = req
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.to_string());
        }
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => {
                // The innermost cause ("Connection refused"); reqwest's
                // own chain repeats the URL and its layers.
                let mut why = e.to_string();
                let mut source = std::error::Error::source(&e);
                while let Some(s) = source {
                    why = s.to_string();
                    source = s.source();
                }
                return Err(Unreachable(format!(
                    "cannot reach the admin API at {} (from {}): {why}",
                    admin.url, admin.from
                ))
                .into());
            }
        };
        let status = resp.status();
        let body = resp.text().await?;
        let said = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_string))
            .unwrap_or_else(|| body.trim().to_string());
        if status == StatusCode::UNAUTHORIZED {
            let hint = match token() {
                None => "set GEOSTEER_ADMIN_TOKEN to the server's server.admin_token",
                Some(_) => "GEOSTEER_ADMIN_TOKEN is not the server's server.admin_token",
            };
            bail!("{method} {url}: {status}: {said} ({hint})");
        }
        if !status.is_success() {
            bail!("{method} {url}: {status}: {said}");
        }
        Ok(body)
    })?
}

/// Percent-encodes a query or path component.
pub(super) fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b':') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
