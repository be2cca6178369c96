//! Building the application (state, router, listener) and running it until a signal stops it.
//!
//! Shutdown follows DESIGN.md (see [`todo_service::shutdown`]): on SIGTERM, /ready turns 503
//! at once while the server keeps serving for `SHUTDOWN_DRAIN_SECONDS`; then it stops accepting,
//! lets in-flight requests finish within `SHUTDOWN_TIMEOUT_SECONDS`, closes the database and
//! exits 0. Ctrl-C (SIGINT, a person at a terminal) skips the drain pause.

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context;
use axum::{
    Router,
    extract::{DefaultBodyLimit, Request},
    http::header,
    middleware::{from_fn, from_fn_with_state},
    response::{IntoResponse, Response},
    routing::get,
};
use todo_service::{
    contract::{HEALTH_PATH, READY_PATH},
    request_id::request_id,
    request_log::{ProbeRoutes, log_request},
    request_timeout::{RequestTimeout, request_timeout},
    server::{HeadTooLarge, MAX_HEADER_BYTES, ServerSettings},
    shutdown::{Shutdown, ShutdownPolicy, serve_until_stopped, stop_signal},
};
use tokio::net::TcpListener;
use tower_http::catch_panic::CatchPanicLayer;

use crate::{
    auth::Tokens,
    chat::Assistant,
    config::{Config, MIN_JWT_SECRET_BYTES, redact_url},
    db::Db,
    error::ApiError,
    extract::BODY_LIMIT_BYTES,
    login_throttle::LoginPolicy,
    metrics::Metrics,
    routes,
    state::{AppState, BuildInfo, Readiness, Shared},
};

/// Routes polled by the kubelet and Prometheus: their successful requests are logged at debug.
const PROBE_ROUTES: ProbeRoutes = &[HEALTH_PATH, READY_PATH, "/metrics"];

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
        let state = AppState::new(Shared {
            db,
            tokens: Tokens::new(&secret, Duration::from_secs(config.token_ttl_seconds)),
            login: LoginPolicy::from_config(&config),
            metrics: Arc::new(Metrics::default()),
            readiness: Arc::new(Readiness::default()),
            build: Arc::new(BuildInfo {
                version: env!("CARGO_PKG_VERSION").to_owned(),
                git_sha: config.git_sha.clone(),
                build: config.app_build.clone(),
            }),
            assistant: Arc::new(Assistant::from_config(&config)?),
        });
        let listener = TcpListener::bind(config.listen_addr)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen_addr))?;
        spawn_migrations(state.clone());
        tracing::info!(
            database = %redact_url(config.database_url.expose()),
            build = %config.app_build,
            assistant = state.assistant.name(),
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
        let policy =
            ShutdownPolicy::from_secs(self.config.shutdown_drain_seconds, self.config.shutdown_timeout_seconds);
        let readiness = self.state.readiness.clone();
        let db = self.state.db.clone();
        let close_db = async move { db.close().await };
        let settings = ServerSettings::new(&self.config.connections, head_too_large());
        serve_until_stopped(
            self.listener,
            self.router,
            settings,
            policy,
            shutdown,
            move || readiness.start_draining(),
            close_db,
        )
        .await
    }
}

/// Builds the application from settings and serves until SIGTERM or Ctrl-C.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    Application::build(config).await?.run_until_stopped(stop_signal()).await
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
        .merge(crate::chat::mcp::router(
            state.tokens.clone(),
            state.db.clone(),
            state.metrics.clone(),
        ))
        .fallback(
            |request: Request| async move { ApiError::NotFound(format!("no route for {}", request.uri().path())) },
        )
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(BODY_LIMIT_BYTES))
        .layer(from_fn_with_state(
            RequestTimeout {
                limit: config.request_timeout(),
                on_timeout: timeout_response,
            },
            request_timeout,
        ))
        .layer(from_fn_with_state(state.metrics.clone(), crate::metrics::track))
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::Internal(anyhow::anyhow!("a request handler panicked")).into_response()
        }))
        .layer(from_fn_with_state(PROBE_ROUTES, log_request))
        .layer(from_fn(request_id))
        .with_state(state)
}

/// The 431 body for a request line and headers over the limit, in the API's error shape.
fn head_too_large() -> HeadTooLarge {
    let body = serde_json::json!({"error": {
        "code": "headers_too_large",
        "message": format!("the request line and headers must be at most {MAX_HEADER_BYTES} bytes together"),
    }});
    HeadTooLarge {
        content_type: "application/json",
        body: body.to_string(),
    }
}

/// The 503 `timeout` answer to a request that took longer than the configured limit.
fn timeout_response(limit: Duration) -> Response {
    ApiError::Unavailable {
        code: "timeout",
        message: format!("the request took longer than {}s; try again", limit.as_secs()),
    }
    .into_response()
}
