//! actions: the admin POSTs. Each answers with JSON saying what happened.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::{AdminState, error};
use crate::cluster::Applied;
use crate::control::control_error_status;

pub(super) async fn reload(State(st): State<AdminState>) -> Response {
    match st.control.reload().await {
        Ok(r) => Json(serde_json::json!({
            "reloaded": true,
            "version": r.version,
            "warnings": r.warnings.iter().map(|w| w.to_string()).collect::<Vec<_>>(),
            "pending_restart": r.pending_restart,
            "status": st.control.reload_status(),
        }))
        .into_response(),
        Err(e) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(serde_json::json!({
                "reloaded": false,
                "errors": e.0.iter().map(|e| e.to_string()).collect::<Vec<_>>(),
                "message": "the previous config is still serving",
            })),
        )
            .into_response(),
    }
}

/// `?local=true` on an undrain: lift a fleet-wide drain on this node only
/// while etcd is unreachable.
#[derive(Debug, Default, serde::Deserialize)]
pub(super) struct UndrainQuery {
    #[serde(default)]
    local: bool,
}

async fn endpoint(
    st: AdminState,
    pool: String,
    address: String,
    draining: bool,
    local: bool,
) -> Response {
    match st
        .control
        .drain_endpoint(&pool, &address, draining, local)
        .await
    {
        Ok(applied) => {
            let mut reply =
                serde_json::json!({ "pool": pool, "endpoint": address, "draining": draining });
            match applied {
                Some(Applied::Local) => {
                    reply["local"] = true.into();
                    reply["pending_etcd"] = true.into();
                    reply["message"] =
                        "undrained locally, pending etcd: on this node only until etcd returns, then written there unless the drain changed there meanwhile".into();
                }
                Some(Applied::NotDrained) => {
                    reply["local"] = true.into();
                    reply["message"] = "not drained here: nothing to lift".into();
                }
                Some(Applied::FleetWide) | None => {}
            }
            Json(reply).into_response()
        }
        Err(e) => error(control_error_status(&e), e.to_string()),
    }
}

/// `{"over": "10m"}` on a drain: ramp the weight to zero over that, then drain.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DrainBody {
    over: String,
}

pub(super) async fn drain_endpoint(
    State(st): State<AdminState>,
    Path((pool, address)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Response {
    if body.iter().all(u8::is_ascii_whitespace) {
        return endpoint(st, pool, address, true, false).await;
    }
    let over = match serde_json::from_slice::<DrainBody>(&body) {
        Ok(b) => match crate::config::parse_duration(&b.over) {
            Ok(d) => d,
            Err(e) => return error(StatusCode::BAD_REQUEST, format!("over: {e}")),
        },
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("expected no body or {{\"over\": \"10m\"}}: {e}"),
            );
        }
    };
    match st.control.drain_endpoint_over(&pool, &address, over).await {
        Ok(()) => Json(serde_json::json!({
            "pool": pool,
            "endpoint": address,
            "draining": false,
            "draining_over_ms": over.as_millis() as u64,
        }))
        .into_response(),
        Err(e) => error(control_error_status(&e), e.to_string()),
    }
}

pub(super) async fn undrain_endpoint(
    State(st): State<AdminState>,
    Path((pool, address)): Path<(String, String)>,
    Query(query): Query<UndrainQuery>,
) -> Response {
    endpoint(st, pool, address, false, query.local).await
}

/// `{"value": 123, "ttl": "30s"}`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct LoadBody {
    value: f64,
    ttl: String,
}

pub(super) async fn set_load(
    State(st): State<AdminState>,
    Path(pool): Path<String>,
    body: Result<Json<LoadBody>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let body = match body {
        Ok(Json(b)) => b,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!(
                    "expected {{\"value\": N, \"ttl\": \"30s\"}}: {}",
                    e.body_text()
                ),
            );
        }
    };
    let ttl = match crate::config::parse_duration(&body.ttl) {
        Ok(d) => d,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("ttl: {e}")),
    };
    match st.control.set_load(&pool, body.value, ttl).await {
        Ok(()) => {
            let snap = st.shared.load();
            let h = snap
                .config
                .pool_id(&pool)
                .and_then(|id| snap.health.pool(id));
            Json(serde_json::json!({
                "pool": pool,
                "load": body.value,
                "ttl_ms": ttl.as_millis() as u64,
                "utilisation": h.and_then(|h| h.utilisation),
                "keep_permille": h.map(|h| h.keep_permille),
            }))
            .into_response()
        }
        Err(e) => error(control_error_status(&e), e.to_string()),
    }
}

/// `{"weight": N}`. Unknown fields are refused, as in every other body: a
/// `"for"` would otherwise be dropped and the weight last forever.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct WeightBody {
    weight: u32,
}

/// The weight a body asks for, or what a 400 says was expected.
fn weight_of(
    body: Result<Json<WeightBody>, axum::extract::rejection::JsonRejection>,
) -> Result<u32, String> {
    body.map(|Json(b)| b.weight)
        .map_err(|e| format!("expected {{\"weight\": N}}: {}", e.body_text()))
}

pub(super) async fn set_weight(
    State(st): State<AdminState>,
    Path((pool, address)): Path<(String, String)>,
    body: Result<Json<WeightBody>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let weight = match weight_of(body) {
        Ok(w) => w,
        Err(why) => return error(StatusCode::BAD_REQUEST, why),
    };
    weight_reply(st, pool, address, Some(weight)).await
}

pub(super) async fn reset_weight(
    State(st): State<AdminState>,
    Path((pool, address)): Path<(String, String)>,
) -> Response {
    weight_reply(st, pool, address, None).await
}

async fn weight_reply(
    st: AdminState,
    pool: String,
    address: String,
    weight: Option<u32>,
) -> Response {
    match st.control.set_weight(&pool, &address, weight).await {
        Ok(()) => Json(serde_json::json!({ "pool": pool, "endpoint": address, "weight": weight }))
            .into_response(),
        Err(e) => error(control_error_status(&e), e.to_string()),
    }
}

/// `{"state": "up"|"down", "reason": "...", "for": "2h"}`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct OverrideBody {
    state: String,
    #[serde(default)]
    reason: String,
    #[serde(default, rename = "for")]
    for_: Option<String>,
}

fn up_down(state: &str) -> Option<bool> {
    match state {
        "up" => Some(true),
        "down" => Some(false),
        _ => None,
    }
}

pub(super) async fn set_override(
    State(st): State<AdminState>,
    Path((pool, address)): Path<(String, String)>,
    body: Result<Json<OverrideBody>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let body = match body {
        Ok(Json(b)) => b,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!(
                    "expected {{\"state\": \"up\"|\"down\", \"reason\": \"...\", \"for\": \"2h\"}}: {}",
                    e.body_text()
                ),
            );
        }
    };
    let Some(up) = up_down(&body.state) else {
        return error(
            StatusCode::BAD_REQUEST,
            format!("\"state\" must be \"up\" or \"down\", not {:?}", body.state),
        );
    };
    let for_ = match body.for_.as_deref().map(crate::config::parse_duration) {
        None => None,
        Some(Ok(d)) => Some(d),
        Some(Err(e)) => return error(StatusCode::BAD_REQUEST, format!("\"for\": {e}")),
    };
    match st
        .control
        .set_override(&pool, &address, Some((up, body.reason, for_)))
        .await
    {
        Ok(forced) => {
            Json(serde_json::json!({ "pool": pool, "endpoint": address, "override": forced }))
                .into_response()
        }
        Err(e) => error(control_error_status(&e), e.to_string()),
    }
}

pub(super) async fn clear_override(
    State(st): State<AdminState>,
    Path((pool, address)): Path<(String, String)>,
) -> Response {
    match st.control.set_override(&pool, &address, None).await {
        Ok(_) => Json(serde_json::json!({ "pool": pool, "endpoint": address, "override": null }))
            .into_response(),
        Err(e) => error(control_error_status(&e), e.to_string()),
    }
}

/// `{"status": "up"|"down", "ttl": "30s", "latency_ms": 12, "reason": "..."}`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct HealthBody {
    status: String,
    ttl: String,
    #[serde(default)]
    latency_ms: Option<u64>,
    #[serde(default)]
    reason: Option<String>,
}

pub(super) async fn push_health(
    State(st): State<AdminState>,
    Path((pool, address)): Path<(String, String)>,
    body: Result<Json<HealthBody>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let body = match body {
        Ok(Json(b)) => b,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!(
                    "expected {{\"status\": \"up\"|\"down\", \"ttl\": \"30s\", \"latency_ms\": N, \"reason\": \"...\"}}: {}",
                    e.body_text()
                ),
            );
        }
    };
    let Some(up) = up_down(&body.status) else {
        return error(
            StatusCode::BAD_REQUEST,
            format!(
                "\"status\" must be \"up\" or \"down\", not {:?}",
                body.status
            ),
        );
    };
    let ttl = match crate::config::parse_duration(&body.ttl) {
        Ok(d) => d,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("\"ttl\": {e}")),
    };
    match st
        .control
        .push_health(&pool, &address, up, ttl, body.latency_ms, body.reason)
        .await
    {
        Ok(pushed) => {
            Json(serde_json::json!({ "pool": pool, "endpoint": address, "health": pushed }))
                .into_response()
        }
        Err(e) => error(control_error_status(&e), e.to_string()),
    }
}

fn server(st: AdminState, backend: String, address: String, draining: bool) -> Response {
    match st.control.drain_server(&backend, &address, draining) {
        Ok(()) => {
            Json(serde_json::json!({ "backend": backend, "server": address, "draining": draining }))
                .into_response()
        }
        Err(e) => error(control_error_status(&e), e.to_string()),
    }
}

pub(super) async fn drain_server(
    State(st): State<AdminState>,
    Path((backend, address)): Path<(String, String)>,
) -> Response {
    server(st, backend, address, true)
}

pub(super) async fn undrain_server(
    State(st): State<AdminState>,
    Path((backend, address)): Path<(String, String)>,
) -> Response {
    server(st, backend, address, false)
}

pub(super) async fn set_server_weight(
    State(st): State<AdminState>,
    Path((backend, address)): Path<(String, String)>,
    body: Result<Json<WeightBody>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let weight = match weight_of(body) {
        Ok(w) => w,
        Err(why) => return error(StatusCode::BAD_REQUEST, why),
    };
    server_weight_reply(st, backend, address, Some(weight)).await
}

pub(super) async fn reset_server_weight(
    State(st): State<AdminState>,
    Path((backend, address)): Path<(String, String)>,
) -> Response {
    server_weight_reply(st, backend, address, None).await
}

async fn server_weight_reply(
    st: AdminState,
    backend: String,
    address: String,
    weight: Option<u32>,
) -> Response {
    match st
        .control
        .set_server_weight(&backend, &address, weight)
        .await
    {
        Ok(()) => {
            Json(serde_json::json!({ "backend": backend, "server": address, "weight": weight }))
                .into_response()
        }
        Err(e) => error(control_error_status(&e), e.to_string()),
    }
}
