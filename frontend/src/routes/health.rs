//! `/health` (liveness: the process serves HTTP; touches nothing else) and `/ready` (readiness:
//! 200 until shutdown begins). /ready also reports whether the backend answers, without failing
//! because of it: pages already show a 503 page when the backend is down, and taking the
//! frontend out of rotation would only replace that clear page with a connection error.

use axum::{Json, Router, extract::State, http::StatusCode, routing::get};
use serde::Serialize;
use todo_service::contract::{HEALTH_PATH, READY_PATH};

use crate::{backend_client::BackendHealth, state::AppState};

/// The health routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(HEALTH_PATH, get(health))
        .route(READY_PATH, get(ready))
}

/// The body of /health and /ready.
#[derive(Debug, Serialize)]
pub struct HealthStatus {
    /// `ok`, `ready` or `draining`.
    pub status: &'static str,
    /// Whether the backend answers (on /ready, unless draining).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backend: Option<BackendHealth>,
}

/// Liveness: 200 while the process can serve HTTP.
async fn health() -> Json<HealthStatus> {
    Json(HealthStatus {
        status: "ok",
        backend: None,
    })
}

/// Readiness: 200 with the backend's reachability; 503 from the moment shutdown begins.
async fn ready(State(state): State<AppState>) -> (StatusCode, Json<HealthStatus>) {
    if state.readiness.is_draining() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(HealthStatus {
                status: "draining",
                backend: None,
            }),
        );
    }
    let backend = state.backend.probe().await;
    (
        StatusCode::OK,
        Json(HealthStatus {
            status: "ready",
            backend: Some(backend),
        }),
    )
}
