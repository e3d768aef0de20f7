//! auth: with `admin_token` set, every request that changes something (any
//! method but GET and HEAD: POST, DELETE) needs `Authorization: Bearer TOKEN`.
//! GETs stay open: they only read, and the listener is loopback unless a token is set.

use axum::body::Body;
use axum::extract::State;
use axum::http::{Method, Request, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;

use super::{AdminState, error};

pub(super) async fn require_token(
    State(st): State<AdminState>,
    req: Request<Body>,
    next: Next,
) -> Response {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let snap = st.shared.load();
        if let Some(token) = &snap.config.server.admin_token {
            let given = req
                .headers()
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "));
            if !given.is_some_and(|g| constant_time_eq(g.as_bytes(), token.as_bytes())) {
                let mut resp = error(StatusCode::UNAUTHORIZED, "missing or wrong bearer token");
                resp.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    header::HeaderValue::from_static("Bearer"),
                );
                return resp;
            }
        }
    }
    next.run(req).await
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
