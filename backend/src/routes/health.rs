//! `/health` (liveness: the process serves HTTP) and `/ready` (readiness: the database answers,
//! migrations are applied, and no shutdown is under way).

use std::time::Duration;

use axum::{Json, extract::State, http::StatusCode};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{config::DatabaseKind, state::AppState};

/// How long /ready waits for the database before calling it unreachable.
const DB_CHECK_TIMEOUT: Duration = Duration::from_secs(1);

/// The health routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(health)).routes(routes!(ready))
}

/// The body of /health and /ready.
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthStatus {
    /// `ok`, `ready`, `starting`, `unavailable` or `draining`.
    pub status: &'static str,
    /// Why the service is not ready, when it is not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The database engine (`sqlite` or `postgres`), on /ready.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database: Option<&'static str>,
}

/// Liveness: answers 200 while the process can serve HTTP. Touches nothing else.
#[utoipa::path(
    get,
    path = "/health",
    tag = "health",
    responses((status = 200, description = "The process serves HTTP", body = HealthStatus))
)]
async fn health() -> Json<HealthStatus> {
    Json(HealthStatus {
        status: "ok",
        reason: None,
        database: None,
    })
}

/// Readiness: 200 when the database is reachable and migrated; 503 with the reason otherwise,
/// and from the moment shutdown begins.
#[utoipa::path(
    get,
    path = "/ready",
    tag = "health",
    responses(
        (status = 200, description = "Ready: the database answers and is migrated", body = HealthStatus),
        (status = 503, description = "Starting, draining, or the database is unreachable (a short reason)", body = HealthStatus),
    )
)]
async fn ready(State(state): State<AppState>) -> (StatusCode, Json<HealthStatus>) {
    let database = Some(match state.db.kind() {
        DatabaseKind::Sqlite => "sqlite",
        DatabaseKind::Postgres => "postgres",
    });
    let unavailable = |status, reason: String| {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(HealthStatus {
                status,
                reason: Some(reason),
                database,
            }),
        )
    };
    if state.readiness.is_draining() {
        return unavailable("draining", "shutting down; not accepting new work".to_owned());
    }
    // The reasons are short and fixed: anyone can read /ready, and database errors name hosts,
    // users and databases. The detail is in the log.
    if !state.readiness.is_migrated() {
        let reason = if state.readiness.last_error().is_some() {
            "database not ready: cannot connect or migrate yet (the server log has the error)"
        } else {
            "database not ready: connecting"
        };
        return unavailable("starting", reason.to_owned());
    }
    match tokio::time::timeout(DB_CHECK_TIMEOUT, state.db.ping()).await {
        Ok(Ok(())) => (
            StatusCode::OK,
            Json(HealthStatus {
                status: "ready",
                reason: None,
                database,
            }),
        ),
        Ok(Err(err)) => {
            tracing::warn!(
                error = format!("{err:#}"),
                "readiness check: the database does not answer"
            );
            unavailable(
                "unavailable",
                "database unreachable (the server log has the error)".to_owned(),
            )
        }
        Err(_) => unavailable(
            "unavailable",
            format!("database did not answer within {}s", DB_CHECK_TIMEOUT.as_secs()),
        ),
    }
}
