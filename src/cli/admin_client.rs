//! admin_client: the small HTTP client the CLI uses to talk to a running server.

use anyhow::{Context, bail};

fn client() -> anyhow::Result<reqwest::Client> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    Ok(reqwest::Client::builder().no_proxy().build()?)
}

fn token() -> Option<String> {
    std::env::var("GEOSTEER_ADMIN_TOKEN")
        .ok()
        .filter(|t| !t.is_empty())
}

pub fn get(base: &str, path: &str) -> anyhow::Result<String> {
    let url = format!("{}{path}", base.trim_end_matches('/'));
    super::block_on(async {
        let resp = client()?
            .get(&url)
            .send()
            .await
            .with_context(|| format!("GET {url}"))?;
        let status = resp.status();
        let body = resp.text().await?;
        if !status.is_success() {
            bail!("GET {url}: {status}: {}", body.trim());
        }
        Ok(body)
    })?
}

pub fn post(base: &str, path: &str) -> anyhow::Result<String> {
    let url = format!("{}{path}", base.trim_end_matches('/'));
    super::block_on(async {
        let mut req = client()?.post(&url);
        if let Some(t) = token() {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.with_context(|| format!("POST {url}"))?;
        let status = resp.status();
        let body = resp.text().await?;
        if !status.is_success() {
            bail!("POST {url}: {status}: {}", body.trim());
        }
        Ok(body)
    })?
}

/// Percent-encodes a query or path component.
pub fn encode(s: &str) -> String {
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
