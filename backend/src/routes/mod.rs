//! HTTP routes, one module per area. [`api`] collects the documented API routes; the OpenAPI
//! document is generated from the same registrations, so it cannot drift from the routes.

pub mod auth;
pub mod chat;
pub mod health;
pub mod meta;
pub mod tasks;

use std::sync::Arc;

use axum::{
    extract::{Request, State},
    middleware::{Next, from_fn_with_state},
    response::{IntoResponse, Response},
};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::{
    error::ApiError,
    openapi::ApiDoc,
    state::{AppState, Readiness},
};

/// Every documented route: `/api/v1/...` plus health, version and metrics.
pub fn api(state: &AppState) -> OpenApiRouter<AppState> {
    let v1 = OpenApiRouter::new()
        .merge(auth::router())
        .merge(tasks::router())
        .merge(chat::router())
        .route_layer(from_fn_with_state(state.readiness.clone(), require_schema));
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .nest("/api/v1", v1)
        .merge(health::router())
        .merge(meta::router())
}

/// Until migrations are applied, API calls get a clear 503 rather than "no such table".
async fn require_schema(State(readiness): State<Arc<Readiness>>, request: Request, next: Next) -> Response {
    if readiness.is_migrated() {
        next.run(request).await
    } else {
        ApiError::Unavailable {
            code: "not_ready",
            message: "the service is starting and its database is not ready yet; try again shortly".to_owned(),
        }
        .into_response()
    }
}
