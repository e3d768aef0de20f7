//! errors: every error the admin API answers is JSON, `{"error": "..."}`.
//! The handlers answer their own errors so ([`super::error`]); this layer
//! turns what is not into that shape: the router's 405 (its `Allow` header
//! kept, the allowed methods named), an extractor's rejection (a path or
//! query it cannot read, a body that is not the JSON expected), and any
//! plain-text error a new handler might answer.

use std::sync::OnceLock;

use axum::body::Body;
use axum::http::{HeaderValue, Request, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// A plain-text error body longer than this is cut (they are one line).
const MAX_TEXT: usize = 16 * 1024;

pub(super) async fn json_errors(req: Request<Body>, next: Next) -> Response {
    let path = req.uri().path().to_string();
    let resp = next.run(req).await;
    let status = resp.status();
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let text = axum::body::to_bytes(body, MAX_TEXT)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let message = if !text.is_empty() {
        text
    } else if status == StatusCode::METHOD_NOT_ALLOWED {
        let allowed = allowed(&path);
        if let Ok(v) = HeaderValue::from_str(&allowed) {
            parts.headers.insert(header::ALLOW, v);
        }
        format!("method not allowed here; allowed: {allowed}")
    } else {
        status.canonical_reason().unwrap_or("error").to_lowercase()
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let body = serde_json::json!({ "error": message }).to_string();
    (parts, body).into_response()
}

/// The methods the route table serves at `path` (HEAD goes with GET).
fn allowed(path: &str) -> String {
    static ROUTES: OnceLock<Vec<super::Route>> = OnceLock::new();
    let routes = ROUTES.get_or_init(super::routes);
    let mut methods: Vec<&str> = routes
        .iter()
        .filter(|r| matches(r.path, path))
        .flat_map(|r| match r.method {
            "GET" => vec!["GET", "HEAD"],
            m => vec![m],
        })
        .collect();
    methods.dedup();
    methods.join(", ")
}

/// Whether an axum pattern (`/a/{x}/b`) matches `path`.
fn matches(pattern: &str, path: &str) -> bool {
    let (mut p, mut q) = (pattern.split('/'), path.split('/'));
    loop {
        match (p.next(), q.next()) {
            (None, None) => return true,
            (Some(a), Some(b)) if a == b || (a.starts_with('{') && !b.is_empty()) => {}
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_whole_segments() {
        assert!(matches(
            "/api/v1/pools/{pool}/health",
            "/api/v1/pools/eu/health"
        ));
        assert!(!matches(
            "/api/v1/pools/{pool}/health",
            "/api/v1/pools//health"
        ));
        assert!(!matches(
            "/api/v1/pools/{pool}/health",
            "/api/v1/pools/eu/health/x"
        ));
        assert_eq!(
            allowed("/api/v1/pools/eu/endpoints/192.0.2.1/weight"),
            "POST, DELETE"
        );
        assert_eq!(allowed("/api/v1/status"), "GET, HEAD");
    }
}
