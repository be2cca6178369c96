//! Building the application (state, router, listener) and running it until a signal stops it.
//!
//! Shutdown follows DESIGN.md, exactly as the backend does: on SIGTERM, /ready turns 503 at once
//! while the server keeps serving for `SHUTDOWN_DRAIN_SECONDS` (so endpoints can be removed);
//! then it stops accepting and lets in-flight requests finish within `SHUTDOWN_TIMEOUT_SECONDS`,
//! and exits 0. Ctrl-C (SIGINT, a person at a terminal) skips the drain pause.

use std::{
    future::{Future, IntoFuture},
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::Context;
use axum::{
    Router,
    extract::{DefaultBodyLimit, MatchedPath, Request, State},
    http::{HeaderName, HeaderValue, StatusCode, header},
    middleware::{Next, from_fn, from_fn_with_state},
    response::{IntoResponse, Response},
};
use tokio::net::TcpListener;
use tower_http::catch_panic::CatchPanicLayer;
use tracing::Instrument;

use crate::{
    backend_client::BackendClient,
    config::Config,
    error::{AppError, ClearSession},
    routes,
    session::{CookiePolicy, SESSION_COOKIE},
    state::{AppState, Readiness},
};

/// The request-id header, read from the client when valid, forwarded to the backend and always
/// echoed back.
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Largest accepted form, in bytes (a task with the longest notes fits easily).
pub const BODY_LIMIT_BYTES: usize = 64 * 1024;

/// The Content-Security-Policy of every response: only this origin's scripts and styles (no
/// inline script or style), no framing, forms post only here.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; \
     base-uri 'none'; object-src 'none'";

/// How the server was asked to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shutdown {
    /// SIGTERM: drain first (an orchestrator is moving traffic away).
    Drain,
    /// SIGINT / Ctrl-C: stop without the drain pause.
    Immediate,
}

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
        let Self {
            listener,
            router,
            state,
            config,
        } = self;
        tracing::info!("listening on http://{}", listener.local_addr()?);
        let readiness = state.readiness.clone();
        let drain = Duration::from_secs(config.shutdown_drain_seconds);
        let grace = Duration::from_secs(config.shutdown_timeout_seconds);
        let (stopping_tx, stopping_rx) = tokio::sync::oneshot::channel::<()>();
        let signal = async move {
            let how = shutdown.await;
            readiness.start_draining();
            if how == Shutdown::Drain && !drain.is_zero() {
                tracing::info!(
                    "shutdown requested: /ready now answers 503; still serving for {}s",
                    drain.as_secs()
                );
                tokio::time::sleep(drain).await;
            }
            tracing::info!("no longer accepting connections; finishing in-flight requests");
            let _ = stopping_tx.send(());
        };
        let server = axum::serve(listener, router)
            .with_graceful_shutdown(signal)
            .into_future();
        let deadline = async move {
            // If the server ends on its own the sender is dropped; then there is nothing to time.
            if stopping_rx.await.is_err() {
                std::future::pending::<()>().await;
            }
            tokio::time::sleep(grace).await;
        };
        let result = tokio::select! {
            served = server => served.context("the HTTP server failed"),
            () = deadline => Err(anyhow::anyhow!(
                "in-flight requests did not finish within {}s (SHUTDOWN_TIMEOUT_SECONDS); stopping anyway",
                grace.as_secs()
            )),
        };
        if result.is_ok() {
            tracing::info!("stopped cleanly");
        }
        result
    }
}

/// Builds the application from settings and serves until SIGTERM or Ctrl-C.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    Application::build(config).await?.run_until_stopped(stop_signal()).await
}

/// Waits for SIGTERM (drain) or Ctrl-C (immediate).
pub async fn stop_signal() -> Shutdown {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut stream) => {
                stream.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => Shutdown::Immediate,
        () = terminate => Shutdown::Drain,
    }
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
        .layer(from_fn_with_state(config.request_timeout(), request_timeout))
        .layer(from_fn_with_state(state.clone(), clear_expired_session))
        .layer(from_fn(htmx_navigation))
        .layer(CatchPanicLayer::custom(|_| {
            AppError::Internal(anyhow::anyhow!("a request handler panicked")).into_response()
        }))
        .layer(from_fn(security_headers))
        .layer(from_fn(log_request))
        .layer(from_fn(request_id))
        .with_state(state)
}

/// Answers the 503 page when a request takes longer than the configured limit.
async fn request_timeout(State(limit): State<Duration>, request: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(limit_s = limit.as_secs(), "request timed out");
            AppError::Unavailable.into_response()
        }
    }
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

/// Keeps a sane incoming `x-request-id` (so a trace can span services) or makes a new one, and
/// echoes it in the response. Handlers forward it to the backend.
async fn request_id(mut request: Request, next: Next) -> Response {
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

/// One log line per request, with method, route, status, latency and request id; everything a
/// handler logs carries the same span. Successful probes (/health, /ready, polled every few
/// seconds by the kubelet) are logged at debug so they do not drown the rest. Cookies, tokens
/// and form fields are never logged.
async fn log_request(request: Request, next: Next) -> Response {
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
    let probe = matches!(route.as_str(), "/health" | "/ready");
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
