//! A tiny HTTP client for the admin API (reqwest, no proxies from the environment).

use std::time::Duration;

/// The client every helper here uses (rustls with ring installed first).
pub fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

pub async fn get(url: &str) -> (u16, String) {
    let r = client()
        .get(url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    (r.status().as_u16(), r.text().await.unwrap_or_default())
}

pub async fn get_json(url: &str) -> (u16, serde_json::Value) {
    let (s, body) = get(url).await;
    (
        s,
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {url}: not JSON ({e}): {body}")),
    )
}

pub async fn post(url: &str, token: Option<&str>) -> (u16, String) {
    let mut req = client().post(url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST {url}: {e}"));
    (r.status().as_u16(), r.text().await.unwrap_or_default())
}

/// Any method, with an optional JSON body and bearer token.
pub async fn send(
    method: reqwest::Method,
    url: &str,
    json: Option<&str>,
    token: Option<&str>,
) -> (u16, String) {
    let mut req = client().request(method.clone(), url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(body) = json {
        req = req
            .header("content-type", "application/json")
            .body(body.to_string());
    }
    let r = req
        .send()
        .await
        .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    (r.status().as_u16(), r.text().await.unwrap_or_default())
}
