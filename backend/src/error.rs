//! The one error type of the API and its JSON shape:
//! `{"error": {"code": "<snake_case>", "message": "<human text>"}}`.
//!
//! Client errors carry a message that is safe to show. Internal errors become a generic 500 and
//! their detail goes to the log only.

use axum::{
    Json,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};

/// An error answered to the client.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request cannot be read (malformed JSON, a bad path parameter).
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    /// 401: no valid credentials.
    #[error("{0}")]
    Unauthorized(String),
    /// 404: nothing here, or nothing here *for this user*.
    #[error("{0}")]
    NotFound(String),
    /// 405: the path exists, the method does not.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// 409: the request conflicts with stored data.
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// 413: the body is over the limit.
    #[error("request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    /// 415: the body is not JSON.
    #[error("expected a JSON body with `Content-Type: application/json`")]
    UnsupportedMediaType,
    /// 422: well-formed but invalid input.
    #[error("{message}")]
    Unprocessable { code: &'static str, message: String },
    /// 429: too many attempts; the client may try again after `retry_after_secs` (sent as
    /// `Retry-After`).
    #[error("{message}")]
    TooManyRequests { retry_after_secs: u64, message: String },
    /// 503: the service cannot do this right now (database down, draining, too slow).
    #[error("{message}")]
    Unavailable { code: &'static str, message: String },
    /// 500: a bug or an unexpected failure; the detail is logged, never sent.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    /// The same answer for another request that shared this failure (requests read together,
    /// whose connection could not be had). A 500's detail was logged with the first.
    pub fn again(&self) -> Self {
        match self {
            Self::Unavailable { code, message } => Self::Unavailable {
                code,
                message: message.clone(),
            },
            other => Self::Internal(anyhow::anyhow!("{other}")),
        }
    }

    /// A 422 `validation_failed` with a message naming the field.
    pub fn validation(message: impl Into<String>) -> Self {
        Self::Unprocessable {
            code: "validation_failed",
            message: message.into(),
        }
    }

    /// The HTTP status this error is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable, machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadRequest { code, .. }
            | Self::Conflict { code, .. }
            | Self::Unprocessable { code, .. }
            | Self::Unavailable { code, .. } => code,
            Self::Unauthorized(_) => "unauthorized",
            Self::NotFound(_) => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::PayloadTooLarge(_) => "payload_too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::TooManyRequests { .. } => "too_many_attempts",
            Self::Internal(_) => "internal",
        }
    }
}

pub use todo_service::wire::{ErrorBody, ErrorDetail};

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = match &self {
            Self::Internal(err) => {
                tracing::error!(error = format!("{err:#}"), "internal error");
                "internal server error".to_owned()
            }
            other => other.to_string(),
        };
        let body = ErrorBody::new(self.code(), message);
        let mut response = (status, Json(body)).into_response();
        if let Self::TooManyRequests { retry_after_secs, .. } = self {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs.max(1)));
        }
        response
    }
}

impl From<sqlx::Error> for ApiError {
    /// Database trouble that is not a bug (unreachable, restarting, refusing connections, pool
    /// exhausted, a statement over its time limit) is a 503 the client may retry; anything else
    /// is a 500.
    fn from(err: sqlx::Error) -> Self {
        if is_unavailable(&err) {
            if cuts_the_connection(&err) {
                crate::db::postgres::note_connection_cut();
            }
            tracing::warn!(error = %err, "database unavailable");
            return database_unavailable();
        }
        Self::Internal(anyhow::Error::new(err).context("database query failed"))
    }
}

/// The 401 for a validly signed token whose account is gone (deleted after the token was issued).
pub fn account_gone() -> ApiError {
    ApiError::Unauthorized("the account for this token no longer exists; log in again".to_owned())
}

/// The 503 `database_unavailable` answer.
pub fn database_unavailable() -> ApiError {
    ApiError::Unavailable {
        code: "database_unavailable",
        message: "the database is not reachable right now; try again shortly".to_owned(),
    }
}

/// Whether a PostgreSQL error means "not now" rather than "never": the connection failed or was
/// cut (SQLSTATE class 08), the server is shutting down or starting (57P01 "terminating
/// connection due to administrator command", 57P02, 57P03), it has no connection slot left
/// (53300), the database does not accept connections (55000, `ALLOW_CONNECTIONS false`), or
/// the statement ran over `statement_timeout` (57014).
fn is_unavailable(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::BeginFailed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            code.starts_with("08") || matches!(code.as_ref(), "57P01" | "57P02" | "57P03" | "53300" | "55000" | "57014")
        }),
        _ => false,
    }
}

/// Whether an unavailable answer means connections were cut (not a full pool or a statement over
/// its time limit, which leave them sound).
fn cuts_the_connection(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => false,
        sqlx::Error::Database(db) => db.code().is_none_or(|code| code != "57014" && code != "53300"),
        _ => true,
    }
}

impl From<rusqlite::Error> for ApiError {
    /// SQLite trouble that is not a bug (busy, locked, disk full, I/O) is a 503 the client may
    /// retry; anything else is a 500.
    fn from(err: rusqlite::Error) -> Self {
        use rusqlite::ErrorCode::*;
        match err.sqlite_error_code() {
            Some(DatabaseBusy | DatabaseLocked | DiskFull | SystemIoFailure | CannotOpen | OutOfMemory) => {
                tracing::warn!(error = %err, "database unavailable");
                database_unavailable()
            }
            _ => Self::Internal(anyhow::Error::new(err).context("database query failed")),
        }
    }
}

/// The result type of handlers.
pub type ApiResult<T> = Result<T, ApiError>;
