//! The request id: one id per request, taken from the caller when sane, so a trace can span
//! services.

use axum::{
    extract::Request,
    http::{HeaderName, HeaderValue},
    middleware::Next,
    response::Response,
};

use crate::contract::REQUEST_ID_HEADER;

/// The request-id header ([`REQUEST_ID_HEADER`]), read from the client when valid and always
/// echoed back (the frontend also forwards it to the backend).
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static(REQUEST_ID_HEADER);

/// Middleware: keeps a sane incoming `x-request-id` or makes a new one, puts it on the request
/// (for [`crate::request_log::log_request`] and handlers) and echoes it in the response.
pub async fn request_id(mut request: Request, next: Next) -> Response {
    let incoming = request
        .headers()
        .get(&X_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|id| {
            (1..=128).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
        });
    let id = incoming.map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned);
    let value = HeaderValue::from_str(&id).unwrap_or_else(|_| HeaderValue::from_static("invalid"));
    request.headers_mut().insert(X_REQUEST_ID.clone(), value.clone());
    let mut response = next.run(request).await;
    response.headers_mut().insert(X_REQUEST_ID.clone(), value);
    response
}
