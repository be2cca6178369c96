//! The one error type of the web UI. Every error is answered with an HTML page (never a stack
//! trace): client errors say what happened in plain words; internal errors become a generic 500
//! page and their detail goes to the log only.

use axum::{
    http::{StatusCode, header},
    response::{IntoResponse, Redirect, Response},
};

use crate::{backend_client::BackendError, views::ErrorPage};

/// An error answered to the browser.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// 503: the backend is down, too slow or failing; the user should try again.
    #[error("the backend is unavailable")]
    Unavailable,
    /// No valid session (missing, invalid or expired token): clear the cookie, go to /login.
    #[error("the session has expired")]
    SessionExpired,
    /// 404: no such page, or no such task *for this user*.
    #[error("not found")]
    NotFound,
    /// 405: the path exists, the method does not.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// 403: the request failed the cross-site request forgery checks.
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    /// 400: the form cannot be read.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// 500: a bug or an unexpected failure; the detail is logged, never shown.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// Marks a response whose session cookie must be removed; a middleware that knows the cookie
/// policy (`Secure` or not) adds the `Set-Cookie` header.
#[derive(Debug, Clone, Copy)]
pub struct ClearSession;

impl From<BackendError> for AppError {
    fn from(err: BackendError) -> Self {
        match err {
            BackendError::Unavailable(_) => Self::Unavailable,
            BackendError::Unauthorized(_) => Self::SessionExpired,
            BackendError::NotFound => Self::NotFound,
            other @ (BackendError::Rejected { .. } | BackendError::Invalid(_)) => {
                Self::Internal(anyhow::Error::new(other).context("unexpected answer from the backend"))
            }
        }
    }
}

impl AppError {
    /// The HTTP status of the error page.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::SessionExpired => StatusCode::SEE_OTHER,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        let page = match &self {
            Self::SessionExpired => {
                let mut response = Redirect::to("/login").into_response();
                response.extensions_mut().insert(ClearSession);
                return response;
            }
            Self::Unavailable => ErrorPage::new(
                status,
                "Service unavailable",
                "The task service is not answering right now. Please try again in a moment.",
                true,
            ),
            Self::NotFound => ErrorPage::new(
                status,
                "Not found",
                "There is nothing here. The task may have been deleted.",
                false,
            ),
            Self::MethodNotAllowed => ErrorPage::new(
                status,
                "Method not allowed",
                "This address does not accept that kind of request.",
                false,
            ),
            Self::Forbidden(reason) => {
                tracing::warn!(reason, "request refused by the CSRF checks");
                ErrorPage::new(
                    status,
                    "Request refused",
                    "This form was not sent from this site, or it has expired. Go back, reload the page and try again.",
                    false,
                )
            }
            Self::BadRequest(message) => ErrorPage::new(status, "Bad request", message, false),
            Self::Internal(err) => {
                tracing::error!(error = format!("{err:#}"), "internal error");
                ErrorPage::new(
                    status,
                    "Something went wrong",
                    "An unexpected error happened on our side. Please try again.",
                    true,
                )
            }
        };
        let mut response = page.into_response();
        *response.status_mut() = status;
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("5"));
        }
        response
    }
}

/// The result type of handlers.
pub type AppResult<T> = Result<T, AppError>;
