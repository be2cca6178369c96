//! Building the application (state, router, listener) and running it until a signal stops it.
//!
//! Shutdown follows DESIGN.md: on SIGTERM, /ready turns 503 at once while the server keeps
//! serving for `SHUTDOWN_DRAIN_SECONDS` (so endpoints can be removed); then it stops accepting,
//! lets in-flight requests finish within `SHUTDOWN_TIMEOUT_SECONDS`, closes the database and
//! exits 0. Ctrl-C (SIGINT, a person at a terminal) skips the drain pause.

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
    http::{HeaderName, HeaderValue, header},
    middleware::{Next, from_fn, from_fn_with_state},
    response::{IntoResponse, Response},
    routing::get,
};
use tokio::net::TcpListener;
use tower_http::catch_panic::CatchPanicLayer;
use tracing::Instrument;

use crate::{
    auth::Tokens,
    config::{Config, MIN_JWT_SECRET_BYTES, redact_url},
    db::Db,
    error::ApiError,
    extract::BODY_LIMIT_BYTES,
    metrics::Metrics,
    routes,
    state::{AppState, BuildInfo, Readiness},
};

/// The request-id header, read from the client when valid and always echoed back.
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

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
    /// Validates the settings, prepares the database (migrations run in the background until
    /// they succeed) and binds the listener.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        config.validate()?;
        let db = Db::connect_lazy(
            config.database_url.expose(),
            config.database_max_connections,
            config.request_timeout(),
        )?;
        let secret = match &config.jwt_secret {
            Some(secret) => secret.expose().as_bytes().to_vec(),
            None => {
                tracing::warn!(
                    "JWT_SECRET is not set: using a random secret, so every restart logs all users out. \
                     Set JWT_SECRET (at least {MIN_JWT_SECRET_BYTES} bytes) to keep sessions across restarts."
                );
                let mut secret = vec![0_u8; MIN_JWT_SECRET_BYTES];
                getrandom::fill(&mut secret)
                    .map_err(|err| anyhow::anyhow!("no system randomness for a JWT secret: {err}"))?;
                secret
            }
        };
        let state = AppState {
            db,
            tokens: Tokens::new(&secret, Duration::from_secs(config.token_ttl_seconds)),
            metrics: Arc::new(Metrics::default()),
            readiness: Arc::new(Readiness::default()),
            build: Arc::new(BuildInfo {
                version: env!("CARGO_PKG_VERSION").to_owned(),
                git_sha: config.git_sha.clone(),
                build: config.app_build.clone(),
            }),
        };
        let listener = TcpListener::bind(config.listen_addr)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen_addr))?;
        spawn_migrations(state.clone());
        tracing::info!(
            database = %redact_url(config.database_url.expose()),
            build = %config.app_build,
            "backend {} starting",
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

    /// The shared state (tests read readiness and the database through it).
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
        state.db.close().await;
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

/// Applies migrations, retrying with backoff until the database is there (it may start after us).
fn spawn_migrations(state: AppState) {
    tokio::spawn(async move {
        let mut delay = Duration::from_millis(200);
        loop {
            match state.db.migrate().await {
                Ok(()) => {
                    state.readiness.set_migrated();
                    tracing::info!("database is migrated and ready");
                    return;
                }
                Err(err) => {
                    let reason = format!("{err:#}");
                    tracing::warn!(retry_in_ms = delay.as_millis() as u64, "database not ready: {reason}");
                    state.readiness.set_error(reason);
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        }
    });
}

/// The whole HTTP application: routes, the OpenAPI document, and the middleware stack.
/// Start-up and tests both use this, so there is one definition of routes and layers.
pub fn app(state: AppState, config: &Config) -> Router {
    let (router, openapi) = routes::api(&state).split_for_parts();
    let openapi_json: Arc<str> = serde_json::to_string_pretty(&openapi).unwrap_or_default().into();
    router
        .route(
            "/api/v1/openapi.json",
            get(move || {
                let body = openapi_json.clone();
                async move { ([(header::CONTENT_TYPE, "application/json")], body.to_string()) }
            }),
        )
        .fallback(
            |request: Request| async move { ApiError::NotFound(format!("no route for {}", request.uri().path())) },
        )
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(BODY_LIMIT_BYTES))
        .layer(from_fn_with_state(config.request_timeout(), request_timeout))
        .layer(from_fn_with_state(state.clone(), crate::metrics::track))
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::Internal(anyhow::anyhow!("a request handler panicked")).into_response()
        }))
        .layer(from_fn(log_request))
        .layer(from_fn(request_id))
        .with_state(state)
}

/// Answers 503 `timeout` when a request takes longer than the configured limit.
async fn request_timeout(State(limit): State<Duration>, request: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::Unavailable {
            code: "timeout",
            message: format!("the request took longer than {}s; try again", limit.as_secs()),
        }
        .into_response(),
    }
}

/// Keeps a sane incoming `x-request-id` (so a trace can span services) or makes a new one, and
/// echoes it in the response.
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
/// handler logs carries the same span. Successful probes (/health, /ready, /metrics, polled every
/// few seconds by the kubelet) are logged at debug so they do not drown the rest.
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
    let probe = matches!(route.as_str(), "/health" | "/ready" | "/metrics");
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
