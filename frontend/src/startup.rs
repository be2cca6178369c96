//! Building the application (state, router, listener) and running it until a signal stops it.
//!
//! Shutdown follows DESIGN.md, with the backend's code (see [`crate::service::shutdown`]): on
//! SIGTERM, /ready turns 503 at once while the server keeps serving for `SHUTDOWN_DRAIN_SECONDS`;
//! then it stops accepting and lets in-flight requests finish within `SHUTDOWN_TIMEOUT_SECONDS`,
//! and exits 0. Ctrl-C (SIGINT, a person at a terminal) skips the drain pause.

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context;
use axum::{
    Router,
    extract::{DefaultBodyLimit, Request, State},
    http::{HeaderName, HeaderValue, StatusCode, header},
    middleware::{Next, from_fn, from_fn_with_state},
    response::{IntoResponse, Response},
};
use tokio::net::TcpListener;
use tower_http::catch_panic::CatchPanicLayer;

use crate::{
    backend_client::BackendClient,
    config::Config,
    error::{AppError, ClearSession},
    routes,
    service::{
        request_id::request_id,
        request_log::{ProbeRoutes, log_request},
        request_timeout::{RequestTimeout, request_timeout},
        server::{HeadTooLarge, MAX_HEADER_BYTES, ServerSettings},
        shutdown::{Shutdown, ShutdownPolicy, serve_until_stopped, stop_signal},
    },
    session::{CookiePolicy, SESSION_COOKIE},
    state::{AppState, Readiness},
};

/// Routes polled by the kubelet: their successful requests are logged at debug.
const PROBE_ROUTES: ProbeRoutes = &["/health", "/ready"];

/// Largest accepted form, in bytes (a task with the longest notes fits easily).
pub const BODY_LIMIT_BYTES: usize = 64 * 1024;

/// The Content-Security-Policy of every response: only this origin's scripts and styles (no
/// inline script or style), no framing, forms post only here.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; \
     base-uri 'none'; object-src 'none'";

/// A bound, ready-to-run server.
pub struct Application {
    listener: TcpListener,
    router: Router,
    state: AppState,
    config: Config,
}

impl Application {
    /// Validates the settings, builds the backend client and binds the listener.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        config.validate()?;
        let state = AppState {
            backend: BackendClient::new(&config)?,
            cookies: CookiePolicy {
                secure: config.cookie_secure,
            },
            readiness: Arc::new(Readiness::default()),
        };
        let listener = TcpListener::bind(config.listen_addr)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen_addr))?;
        tracing::info!(
            backend = %state.backend.base_url(),
            cookie_secure = config.cookie_secure,
            "frontend {} starting",
            env!("CARGO_PKG_VERSION")
        );
        Ok(Self {
            router: app(state.clone(), &config),
            listener,
            state,
            config,
        })
    }

    /// The address actually bound (port 0 becomes a real port).
    pub fn local_addr(&self) -> SocketAddr {
        // A bound listener always has a local address.
        self.listener.local_addr().unwrap_or(self.config.listen_addr)
    }

    /// The shared state (tests read readiness through it).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` resolves, then drains and stops as described in the module docs.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = Shutdown> + Send + 'static,
    ) -> anyhow::Result<()> {
        let policy =
            ShutdownPolicy::from_secs(self.config.shutdown_drain_seconds, self.config.shutdown_timeout_seconds);
        let readiness = self.state.readiness;
        // Nothing to release afterwards: the frontend has no database, and its HTTP client needs
        // no closing.
        let nothing_to_release = async {};
        let head_too_large = HeadTooLarge {
            content_type: "text/plain; charset=utf-8",
            body: format!("The request's address and headers are too large (at most {MAX_HEADER_BYTES} bytes).\n"),
        };
        serve_until_stopped(
            self.listener,
            self.router,
            ServerSettings::new(&self.config.connections, head_too_large),
            policy,
            shutdown,
            move || readiness.start_draining(),
            nothing_to_release,
        )
        .await
    }
}

/// Builds the application from settings and serves until SIGTERM or Ctrl-C.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    Application::build(config).await?.run_until_stopped(stop_signal()).await
}

/// The whole HTTP application: routes and the middleware stack. Start-up and tests both use
/// this, so there is one definition of routes and layers.
pub fn app(state: AppState, config: &Config) -> Router {
    Router::new()
        .merge(routes::pages(&state))
        .merge(routes::health::router())
        .merge(routes::assets::router())
        .fallback(|| async { AppError::NotFound })
        .method_not_allowed_fallback(|| async { AppError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(BODY_LIMIT_BYTES))
        .layer(from_fn_with_state(
            RequestTimeout {
                limit: config.request_timeout(),
                on_timeout: timeout_response,
            },
            request_timeout,
        ))
        .layer(from_fn_with_state(state.clone(), clear_expired_session))
        .layer(from_fn(htmx_navigation))
        .layer(CatchPanicLayer::custom(|_| {
            AppError::Internal(anyhow::anyhow!("a request handler panicked")).into_response()
        }))
        .layer(from_fn(security_headers))
        .layer(from_fn_with_state(PROBE_ROUTES, log_request))
        .layer(from_fn(request_id))
        .with_state(state)
}

/// The 503 page for a request that took longer than the configured limit.
fn timeout_response(limit: Duration) -> Response {
    tracing::warn!(limit_s = limit.as_secs(), "request timed out");
    AppError::Unavailable.into_response()
}

/// Removes the session cookie from responses marked with [`ClearSession`] (expired sessions).
async fn clear_expired_session(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    if response.extensions().get::<ClearSession>().is_some() {
        response
            .headers_mut()
            .append(header::SET_COOKIE, state.cookies.clear(SESSION_COOKIE));
    }
    response
}

/// Adapts answers for htmx requests: a redirect (e.g. to /login when the session expired)
/// becomes `HX-Redirect`, so the browser navigates instead of swapping the login page into the
/// list; an error page replaces the whole body, so the user sees it.
async fn htmx_navigation(request: Request, next: Next) -> Response {
    let is_htmx = request.headers().get("hx-request").is_some_and(|v| v == "true");
    let mut response = next.run(request).await;
    if !is_htmx {
        return response;
    }
    let status = response.status();
    if status.is_redirection()
        && let Some(location) = response.headers().get(header::LOCATION).cloned()
    {
        *response.status_mut() = StatusCode::OK;
        let headers = response.headers_mut();
        headers.remove(header::LOCATION);
        headers.insert("hx-redirect", location);
    } else if status.is_client_error() || status.is_server_error() {
        let headers = response.headers_mut();
        headers.insert("hx-retarget", HeaderValue::from_static("body"));
        headers.insert("hx-reswap", HeaderValue::from_static("innerHTML"));
    }
    response
}

/// Security headers on every response. Pages are never cached (they hold a user's data);
/// static assets set their own long cache header.
async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    headers.insert(
        HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(
        HeaderName::from_static("permissions-policy"),
        HeaderValue::from_static("camera=(), microphone=(), geolocation=()"),
    );
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}
