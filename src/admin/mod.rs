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
//! - `routes`: every route in one list ([`routes`]), documented by the
//!   OpenAPI document `openapi.json` served at `/api/v1/openapi.json`.
//! - `errors`: every error answered as JSON.

mod actions;
mod auth;
pub mod cluster;
mod errors;
mod metrics;
mod page;
mod routes;
pub mod views;

pub use routes::{Route, Routes};

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
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

/// Every route of the admin API, handlers added through [`Routes`] so that
/// [`routes`] lists exactly what the router serves. `/api/v1/openapi.json`
/// documents each (a test holds the two equal).
fn table(exposition: Arc<prometheus_client::registry::Registry>) -> Routes {
    Routes::new()
        .get("/", page::index)
        .get("/metrics", move || metrics::render(exposition.clone()))
        .get("/api/v1/openapi.json", openapi)
        .get("/api/v1/status", status)
        .get("/api/v1/events", page::events)
        .get("/api/v1/cluster", cluster::get)
        .get("/api/v1/pools/{pool}/health", pool_health)
        .get("/api/v1/explain", explain)
        .post("/api/v1/reload", actions::reload)
        .post(
            "/api/v1/pools/{pool}/endpoints/{endpoint}/drain",
            actions::drain_endpoint,
        )
        .post(
            "/api/v1/pools/{pool}/endpoints/{endpoint}/undrain",
            actions::undrain_endpoint,
        )
        .post(
            "/api/v1/pools/{pool}/endpoints/{endpoint}/weight",
            actions::set_weight,
        )
        .delete(
            "/api/v1/pools/{pool}/endpoints/{endpoint}/weight",
            actions::reset_weight,
        )
        .post(
            "/api/v1/pools/{pool}/endpoints/{endpoint}/override",
            actions::set_override,
        )
        .delete(
            "/api/v1/pools/{pool}/endpoints/{endpoint}/override",
            actions::clear_override,
        )
        .put("/api/v1/pools/{pool}/load", actions::set_load)
        .put(
            "/api/v1/pools/{pool}/endpoints/{endpoint}/health",
            actions::push_health,
        )
        .post(
            "/api/v1/backends/{backend}/servers/{address}/drain",
            actions::drain_server,
        )
        .post(
            "/api/v1/backends/{backend}/servers/{address}/undrain",
            actions::undrain_server,
        )
        .post(
            "/api/v1/backends/{backend}/servers/{address}/weight",
            actions::set_server_weight,
        )
        .delete(
            "/api/v1/backends/{backend}/servers/{address}/weight",
            actions::reset_server_weight,
        )
}

/// Every (method, path) the admin API serves, in the order they are added.
pub fn routes() -> Vec<Route> {
    table(Arc::default()).list
}

/// The admin API's routes; tests call it without a socket too. Every error
/// it answers is JSON (`{"error": "..."}`), the router's own (no such
/// route, wrong method) and the extractors' (bad JSON, bad query) included.
pub fn router(state: AdminState) -> Router {
    let exposition = Arc::new(metrics::registry(&state));
    table(exposition)
        .router
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ))
        .layer(axum::middleware::from_fn(errors::json_errors))
        .with_state(state)
}

/// The OpenAPI 3.1 document of this API (`src/admin/openapi.json`).
pub const OPENAPI: &str = include_str!("openapi.json");

async fn openapi() -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        OPENAPI,
    )
        .into_response()
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

async fn explain(
    State(st): State<AdminState>,
    q: Result<Query<ExplainQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let q = match q {
        Ok(Query(q)) => q,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!(
                    "expected ?name=NAME&client=IP[/PREFIX][&type=TYPE]: {}",
                    e.body_text()
                ),
            );
        }
    };
    let snap = st.shared.load_full();
    match crate::explain::explain(&snap, &q.name, &q.qtype, &q.client) {
        Ok(e) => Json(e).into_response(),
        Err(e) => error(StatusCode::BAD_REQUEST, e),
    }
}
