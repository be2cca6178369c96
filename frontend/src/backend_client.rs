//! The one typed client of the Todo API (`BACKEND_URL` + `/api/v1`).
//!
//! [`BackendClient`] holds the single `reqwest::Client` (connect and total timeouts shorter than
//! the frontend's own request timeout). Handlers use [`Api`], an extractor that pairs it with the
//! request id (forwarded as `x-request-id`) and the caller's session token.
//!
//! Transport errors, timeouts and 5xx answers become [`BackendError::Unavailable`] (the 503
//! page); a 401 becomes [`BackendError::Unauthorized`] (session expired: back to /login).

use std::{net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context;
use axum::{
    extract::{ConnectInfo, FromRef, FromRequestParts},
    http::request::Parts,
};
use reqwest::{Method, RequestBuilder, StatusCode};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use todo_service::{contract::READY_PATH, request_id::X_REQUEST_ID, wire::ErrorBody};

use crate::{config::Config, session::SessionToken};

pub mod chat;

/// How long /ready waits for the backend's /ready before calling it unreachable: well under the
/// kubelet's default probe timeout (1 s), so a hanging backend never makes our /ready time out.
const READY_PROBE_TIMEOUT: Duration = Duration::from_millis(500);

/// How long an idle connection to the backend is kept for reuse: shorter than the backend's
/// header-read timeout (HEADER_READ_TIMEOUT_SECONDS, 10 s by default), which is also how long
/// the backend keeps an idle connection, so a request never goes out on a connection the
/// backend is closing.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(4);

/// Longest incoming `X-Forwarded-For` passed on (a proxy in front of the frontend sets it); a
/// longer one is replaced by the peer address alone.
const MAX_FORWARDED_FOR_BYTES: usize = 512;

/// A user as the API shows it.
#[derive(Debug, Clone, Deserialize)]
pub struct User {
    /// Numeric id.
    pub id: i64,
    /// Email address (lower-cased by the backend).
    pub email: String,
    /// Optional display name.
    pub name: Option<String>,
}

/// The answer to register and login.
#[derive(Deserialize)]
pub struct AuthResponse {
    /// The login token (never logged).
    pub token: String,
    /// Whom it belongs to.
    pub user: User,
}

/// Body of `POST /auth/register`.
#[derive(Serialize)]
pub struct RegisterRequest<'a> {
    /// Email address.
    pub email: &'a str,
    /// Password (never logged).
    pub password: &'a str,
    /// Optional display name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<&'a str>,
}

/// Body of `POST /auth/login`.
#[derive(Serialize)]
pub struct LoginRequest<'a> {
    /// Email address.
    pub email: &'a str,
    /// Password (never logged).
    pub password: &'a str,
}

pub use todo_service::wire::Priority;

/// A task as the API shows it.
#[derive(Debug, Clone, Deserialize)]
pub struct Task {
    /// Numeric id.
    pub id: i64,
    /// Short title.
    pub title: String,
    /// Longer notes.
    pub description: Option<String>,
    /// Whether it is done.
    pub completed: bool,
    /// How urgent it is.
    pub priority: Priority,
    /// When it is due, `YYYY-MM-DD`.
    pub due_date: Option<String>,
    /// Labels.
    pub tags: Vec<String>,
    /// When it was created (RFC 3339).
    pub created_at: String,
    /// When it last changed (RFC 3339).
    pub updated_at: String,
}

/// One page of tasks and how many match in all.
#[derive(Debug, Deserialize)]
pub struct TaskPage {
    /// The tasks on this page.
    pub items: Vec<Task>,
    /// How many match over all pages.
    pub total: u64,
}

/// Body of `POST /tasks`.
#[derive(Debug, Serialize)]
pub struct NewTask {
    /// Title.
    pub title: String,
    /// Notes, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Priority.
    pub priority: Priority,
    /// Due date, `YYYY-MM-DD`, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub due_date: Option<String>,
    /// Tags.
    pub tags: Vec<String>,
}

/// Body of `PATCH /tasks/{id}`: only the fields that are `Some` are sent. For `description` and
/// `due_date`, `Some(None)` sends `null`, which clears them.
#[derive(Debug, Default, Serialize)]
pub struct TaskPatch {
    /// New title.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// New notes; `Some(None)` clears them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<Option<String>>,
    /// New priority.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<Priority>,
    /// New due date; `Some(None)` clears it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub due_date: Option<Option<String>>,
    /// New tags (replace the old ones).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    /// Done or not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completed: Option<bool>,
}

/// What went wrong talking to the backend.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// Not reachable, too slow, or failing (5xx): the user should try again later.
    #[error("the backend is unavailable: {0}")]
    Unavailable(String),
    /// 401: the token is missing, invalid or expired (or, for login, the credentials are wrong).
    #[error("the backend did not accept the credentials: {0}")]
    Unauthorized(String),
    /// 404: no such thing for this user.
    #[error("not found")]
    NotFound,
    /// Another 4xx (409 email taken, 422 validation): `message` is safe to show to the user.
    #[error("the backend rejected the request ({status} {code}): {message}")]
    Rejected {
        /// HTTP status.
        status: StatusCode,
        /// The backend's stable error code, e.g. `email_taken`.
        code: String,
        /// The backend's human-readable message.
        message: String,
    },
    /// A 2xx answer that does not have the documented shape (a version mismatch or a bug).
    #[error("the backend's answer could not be read: {0}")]
    Invalid(String),
}

/// What /ready reports about the backend.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct BackendHealth {
    /// The backend answered HTTP at all.
    pub reachable: bool,
    /// The backend's own /ready said 200.
    pub ready: bool,
}

/// The shared HTTP client and the API's base URL. Cheap to clone.
#[derive(Debug, Clone)]
pub struct BackendClient {
    http: reqwest::Client,
    base: Arc<str>,
    /// Chat turns may wait for an LLM provider: they get all but a second of the frontend's own
    /// request time rather than the usual backend timeout.
    chat_timeout: Duration,
}

impl BackendClient {
    /// One client for the whole process, with the configured timeouts.
    pub fn new(config: &Config) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .connect_timeout(config.backend_connect_timeout())
            .timeout(config.backend_timeout())
            .redirect(reqwest::redirect::Policy::none())
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .user_agent(concat!("todo-frontend/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("cannot build the HTTP client for the backend")?;
        Ok(Self {
            http,
            base: config.backend_base().into(),
            chat_timeout: config
                .request_timeout()
                .saturating_sub(Duration::from_secs(1))
                .max(config.backend_timeout()),
        })
    }

    /// The backend's base URL (for logs; it holds no secret).
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// Asks the backend's /ready, with a short timeout of its own.
    pub async fn probe(&self) -> BackendHealth {
        match self
            .http
            .get(format!("{}{READY_PATH}", self.base))
            .timeout(READY_PROBE_TIMEOUT)
            .send()
            .await
        {
            Ok(response) => BackendHealth {
                reachable: true,
                ready: response.status().is_success(),
            },
            Err(_) => BackendHealth {
                reachable: false,
                ready: false,
            },
        }
    }
}

/// A handle for one incoming request: the client, the request id to forward, the browser's
/// address (forwarded as `X-Forwarded-For`, so the backend's login throttle counts per browser,
/// not per frontend pod) and the session token if the browser sent one.
#[derive(Debug, Clone)]
pub struct Api {
    client: BackendClient,
    request_id: String,
    forwarded_for: Option<String>,
    token: Option<SessionToken>,
}

/// The `X-Forwarded-For` to send: what a proxy in front of us said, with the address we see
/// appended (each hop appends its peer; the backend trusts a configured number of hops).
fn forwarded_for(parts: &Parts) -> Option<String> {
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip().to_string())?;
    let incoming = parts
        .headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.len() <= MAX_FORWARDED_FOR_BYTES && !v.trim().is_empty());
    Some(match incoming {
        Some(incoming) => format!("{}, {peer}", incoming.trim()),
        None => peer,
    })
}

/// Works with any router state that holds the client, so this module does not depend on the
/// application's state (which depends on it).
impl<S> FromRequestParts<S> for Api
where
    S: Send + Sync,
    BackendClient: FromRef<S>,
{
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let request_id = parts
            .headers
            .get(&X_REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        Ok(Self {
            client: BackendClient::from_ref(state),
            request_id,
            forwarded_for: forwarded_for(parts),
            token: SessionToken::from_headers(&parts.headers),
        })
    }
}

impl Api {
    /// Whether the browser sent a session cookie (it may still be expired).
    pub fn has_session(&self) -> bool {
        self.token.is_some()
    }

    /// `POST /auth/register`.
    pub async fn register(&self, body: &RegisterRequest<'_>) -> Result<AuthResponse, BackendError> {
        self.send(self.request(Method::POST, "/auth/register").json(body), "register")
            .await
    }

    /// `POST /auth/login`.
    pub async fn login(&self, body: &LoginRequest<'_>) -> Result<AuthResponse, BackendError> {
        self.send(self.request(Method::POST, "/auth/login").json(body), "login")
            .await
    }

    /// `POST /auth/logout`: the backend revokes the session's token.
    pub async fn logout(&self) -> Result<(), BackendError> {
        self.execute(self.authed(Method::POST, "/auth/logout")?, "logout")
            .await?;
        Ok(())
    }

    /// `GET /auth/me`.
    pub async fn me(&self) -> Result<User, BackendError> {
        self.send(self.authed(Method::GET, "/auth/me")?, "me").await
    }

    /// `GET /tasks` with only the parameters that are set.
    pub async fn list_tasks(&self, query: &[(&'static str, String)]) -> Result<TaskPage, BackendError> {
        self.send(self.authed(Method::GET, "/tasks")?.query(query), "list tasks")
            .await
    }

    /// `POST /tasks`.
    pub async fn create_task(&self, task: &NewTask) -> Result<Task, BackendError> {
        self.send(self.authed(Method::POST, "/tasks")?.json(task), "create task")
            .await
    }

    /// `GET /tasks/{id}`.
    pub async fn get_task(&self, id: i64) -> Result<Task, BackendError> {
        self.send(self.authed(Method::GET, &format!("/tasks/{id}"))?, "get task")
            .await
    }

    /// `PATCH /tasks/{id}`.
    pub async fn update_task(&self, id: i64, patch: &TaskPatch) -> Result<Task, BackendError> {
        self.send(
            self.authed(Method::PATCH, &format!("/tasks/{id}"))?.json(patch),
            "update task",
        )
        .await
    }

    /// `DELETE /tasks/{id}`.
    pub async fn delete_task(&self, id: i64) -> Result<(), BackendError> {
        self.execute(self.authed(Method::DELETE, &format!("/tasks/{id}"))?, "delete task")
            .await?;
        Ok(())
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let builder = self
            .client
            .http
            .request(method, format!("{}/api/v1{path}", self.client.base));
        let builder = match &self.forwarded_for {
            Some(forwarded_for) => builder.header("x-forwarded-for", forwarded_for),
            None => builder,
        };
        if self.request_id.is_empty() {
            builder
        } else {
            builder.header(X_REQUEST_ID.as_str(), &self.request_id)
        }
    }

    fn authed(&self, method: Method, path: &str) -> Result<RequestBuilder, BackendError> {
        let token = self
            .token
            .as_ref()
            .ok_or_else(|| BackendError::Unauthorized("not logged in".to_owned()))?;
        Ok(self.request(method, path).bearer_auth(token.expose()))
    }

    async fn send<T: DeserializeOwned>(&self, builder: RequestBuilder, what: &'static str) -> Result<T, BackendError> {
        let response = self.execute(builder, what).await?;
        response.json::<T>().await.map_err(|err| {
            let err = err.without_url();
            if err.is_timeout() || err.is_body() {
                tracing::warn!(call = what, error = %err, "backend answer was cut off");
                BackendError::Unavailable(format!("{what}: the answer was cut off"))
            } else {
                tracing::error!(call = what, error = %err, "backend answer has an unexpected shape");
                BackendError::Invalid(format!("{what}: {err}"))
            }
        })
    }

    /// Sends the request and sorts the outcome; only 2xx responses come back `Ok`.
    async fn execute(&self, builder: RequestBuilder, what: &'static str) -> Result<reqwest::Response, BackendError> {
        let response = builder.send().await.map_err(|err| {
            // Without the URL: its query holds what the user searched for.
            let err = err.without_url();
            let reason = if err.is_timeout() {
                "timed out"
            } else if err.is_connect() {
                "cannot connect"
            } else {
                "request failed"
            };
            tracing::warn!(call = what, backend = %self.client.base, error = %err, "backend {reason}");
            BackendError::Unavailable(format!("{what}: {reason}"))
        })?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let (code, message) = match response.json::<ErrorBody>().await {
            Ok(body) => (body.error.code, body.error.message),
            Err(_) => (
                "unknown".to_owned(),
                status.canonical_reason().unwrap_or("error").to_owned(),
            ),
        };
        Err(match status {
            s if s.is_server_error() => {
                tracing::warn!(call = what, status = s.as_u16(), code, "backend failed");
                BackendError::Unavailable(format!("{what}: backend answered {s} ({code})"))
            }
            StatusCode::UNAUTHORIZED => BackendError::Unauthorized(message),
            StatusCode::NOT_FOUND => BackendError::NotFound,
            _ => BackendError::Rejected { status, code, message },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patch_sends_only_what_is_set_and_null_to_clear() {
        let patch = TaskPatch {
            title: Some("t".to_owned()),
            description: Some(None),
            completed: Some(true),
            ..TaskPatch::default()
        };
        let json = serde_json::to_value(&patch).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"title": "t", "description": null, "completed": true})
        );
    }
}
