//! admin: the JSON admin API, Prometheus `/metrics` and the HTML status page
//! (DESIGN §5). Reads go to the current snapshot; actions go through
//! [`Control`], which hands health changes to the one health writer.
//!
//! - `views`: the Serialize shapes of status and pool health.
//! - `actions`: drain, undrain, reload.
//! - `cluster`: the fleet's nodes and votes (`/api/v1/cluster`).
//! - `auth`: the bearer token on every POST.
//! - `metrics`: Prometheus text from one `prometheus-client` registry.
//! - `page`: `GET /`.

mod actions;
mod auth;
pub mod cluster;
mod metrics;
mod page;
pub mod views;

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

use crate::control::Control;
use crate::health::PoolState;
use crate::metrics::Registry;
use crate::state::Shared;

#[derive(Clone)]
pub struct AdminState {
    pub shared: Arc<Shared>,
    pub control: Arc<Control>,
    pub registry: Arc<Registry>,
}

/// The admin API's routes; tests call it without a socket too.
pub fn router(state: AdminState) -> Router {
    let exposition = Arc::new(metrics::registry(&state));
    Router::new()
        .route("/", get(page::index))
        .route("/metrics", get(move || metrics::render(exposition.clone())))
        .route("/api/v1/status", get(status))
        .route("/api/v1/events", get(page::events))
        .route("/api/v1/cluster", get(cluster::get))
        .route("/api/v1/pools/{pool}/health", get(pool_health))
        .route("/api/v1/explain", get(explain))
        .route("/api/v1/reload", post(actions::reload))
        .route(
            "/api/v1/pools/{pool}/endpoints/{endpoint}/drain",
            post(actions::drain_endpoint),
        )
        .route(
            "/api/v1/pools/{pool}/endpoints/{endpoint}/undrain",
            post(actions::undrain_endpoint),
        )
        .route(
            "/api/v1/pools/{pool}/endpoints/{endpoint}/weight",
            post(actions::set_weight).delete(actions::reset_weight),
        )
        .route(
            "/api/v1/pools/{pool}/endpoints/{endpoint}/override",
            post(actions::set_override).delete(actions::clear_override),
        )
        .route(
            "/api/v1/pools/{pool}/endpoints/{endpoint}/health",
            axum::routing::put(actions::push_health),
        )
        .route(
            "/api/v1/backends/{backend}/servers/{address}/drain",
            post(actions::drain_server),
        )
        .route(
            "/api/v1/backends/{backend}/servers/{address}/undrain",
            post(actions::undrain_server),
        )
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ))
        .with_state(state)
}

/// A JSON error body: `{"error": "..."}`.
pub fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(serde_json::json!({ "error": message.into() }))).into_response()
}

async fn not_found() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "no such admin endpoint; see /api/v1/status",
    )
}

async fn status(State(st): State<AdminState>) -> Response {
    Json(views::status(&st)).into_response()
}

#[derive(Deserialize)]
struct HealthQuery {
    family: Option<String>,
}

/// 200 healthy, 429 degraded, 503 down: for `?family=v4|v6` that family's
/// state, else the pool's worst family.
async fn pool_health(
    State(st): State<AdminState>,
    Path(pool): Path<String>,
    Query(q): Query<HealthQuery>,
) -> Response {
    let snap = st.shared.load_full();
    let Some(id) = snap.config.pool_id(&pool) else {
        return error(StatusCode::NOT_FOUND, format!("no pool named {pool:?}"));
    };
    let view = views::pool(&snap, id);
    let state = match q.family.as_deref() {
        None => view.state,
        Some(text) => {
            let Some(family) = crate::health::Family::parse(text) else {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!("family {text:?}: expected v4 or v6"),
                );
            };
            // A pool without endpoints of the family cannot answer it: down.
            view.families
                .get(family.as_str())
                .map_or(PoolState::Down, |f| f.state)
        }
    };
    let code = match state {
        PoolState::Healthy => StatusCode::OK,
        PoolState::Degraded => StatusCode::TOO_MANY_REQUESTS,
        PoolState::Down => StatusCode::SERVICE_UNAVAILABLE,
    };
    (code, Json(view)).into_response()
}

#[derive(Deserialize)]
struct ExplainQuery {
    name: String,
    #[serde(rename = "type", default = "default_type")]
    qtype: String,
    client: String,
}

fn default_type() -> String {
    "A".into()
}

async fn explain(State(st): State<AdminState>, Query(q): Query<ExplainQuery>) -> Response {
    let snap = st.shared.load_full();
    match crate::explain::explain(&snap, &q.name, &q.qtype, &q.client) {
        Ok(e) => Json(e).into_response(),
        Err(e) => error(StatusCode::BAD_REQUEST, e),
    }
}
