//! `/version` (which build is serving) and `/metrics` (Prometheus).

use axum::{
    Json,
    extract::State,
    http::header,
    response::{IntoResponse, Response},
};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::state::{AppState, BuildInfo};

/// The meta routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(version)).routes(routes!(metrics))
}

/// Version, source revision and build identifier of the running server.
#[utoipa::path(
    get,
    path = "/version",
    tag = "meta",
    responses((status = 200, description = "The running build", body = BuildInfo))
)]
async fn version(State(state): State<AppState>) -> Json<BuildInfo> {
    Json(state.build.as_ref().clone())
}

/// Request counts and latencies in Prometheus text format.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "meta",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain", body = String))
)]
async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        state.metrics.render(),
    )
        .into_response()
}
