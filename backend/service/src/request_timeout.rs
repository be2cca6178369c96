//! The time limit of one request (`REQUEST_TIMEOUT_SECONDS`).

use std::time::Duration;

use axum::{
    extract::{Request, State},
    middleware::Next,
    response::Response,
};

/// A request's time limit and the answer given when it is exceeded (each service answers 503 in
/// its own error format).
#[derive(Debug, Clone, Copy)]
pub struct RequestTimeout {
    /// Longest time a request may take.
    pub limit: Duration,
    /// Builds the answer to a request that took longer than `limit` (given as argument).
    pub on_timeout: fn(Duration) -> Response,
}

/// Middleware: answers with [`RequestTimeout::on_timeout`] when the rest of the stack takes
/// longer than [`RequestTimeout::limit`].
pub async fn request_timeout(State(timeout): State<RequestTimeout>, request: Request, next: Next) -> Response {
    match tokio::time::timeout(timeout.limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => (timeout.on_timeout)(timeout.limit),
    }
}
