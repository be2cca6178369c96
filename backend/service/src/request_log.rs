//! One log line per request.

use std::time::Instant;

use axum::{
    extract::{MatchedPath, Request, State},
    middleware::Next,
    response::Response,
};
use tracing::Instrument;

use crate::request_id::X_REQUEST_ID;

/// Routes polled every few seconds by the kubelet or a scraper (each service lists its own):
/// their successful answers are logged at debug so they do not drown the rest.
pub type ProbeRoutes = &'static [&'static str];

/// Middleware: one log line per request (message `request`, or `request failed` at warn for a
/// 5xx) with method, route, status, latency and request id; everything a handler logs carries
/// the same span. Cookies, tokens, bodies and form fields are never logged. Runs inside
/// [`crate::request_id::request_id`], which sets the id.
pub async fn log_request(State(probe_routes): State<ProbeRoutes>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_owned();
    let id = request
        .headers()
        .get(&X_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let span = tracing::info_span!("request", %method, route = %route, request_id = %id);
    let response = next.run(request).instrument(span.clone()).await;
    let status = response.status();
    let latency_ms = (started.elapsed().as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0;
    let probe = probe_routes.contains(&route.as_str());
    span.in_scope(|| {
        let code = status.as_u16();
        if status.is_server_error() {
            tracing::warn!(status = code, latency_ms, "request failed");
        } else if probe && status.is_success() {
            tracing::debug!(status = code, latency_ms, "request");
        } else {
            tracing::info!(status = code, latency_ms, "request");
        }
    });
    response
}
