//! The state every handler can read.

use std::sync::{
    Arc, Mutex,
    atomic::{AtomicBool, Ordering},
};

use axum::extract::FromRef;

use crate::{auth::Tokens, chat::Assistant, db::Db, login_throttle::LoginPolicy, metrics::Metrics};

/// Shared, cheap to clone: one reference count, as every request clones it several times (each
/// layer holding it and each extractor taking it); cloning the parts one by one was ~5% of a
/// list request's CPU time (perf), most of it the reference counts' cache lines moving between
/// cores.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    /// The state of these parts.
    pub fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What [`AppState`] holds.
pub struct Shared {
    /// The database.
    pub db: Db,
    /// Login token keys.
    pub tokens: Tokens,
    /// Brute-force limits of the login route.
    pub login: LoginPolicy,
    /// Prometheus metrics.
    pub metrics: Arc<Metrics>,
    /// What /ready reports.
    pub readiness: Arc<Readiness>,
    /// What /version reports.
    pub build: Arc<BuildInfo>,
    /// The chat assistant's engine.
    pub assistant: Arc<Assistant>,
}

/// What the request extractors take from the state ([`crate::auth::AuthUser`] and
/// [`crate::login_throttle::ClientAddress`]): they are generic over any state offering these, so
/// neither module depends on this one.
impl FromRef<AppState> for Tokens {
    fn from_ref(state: &AppState) -> Tokens {
        state.tokens.clone()
    }
}

impl FromRef<AppState> for Db {
    fn from_ref(state: &AppState) -> Db {
        state.db.clone()
    }
}

impl FromRef<AppState> for LoginPolicy {
    fn from_ref(state: &AppState) -> LoginPolicy {
        state.login
    }
}

/// Identity of the running build.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct BuildInfo {
    /// The crate version.
    pub version: String,
    /// The source revision, or `unknown`.
    pub git_sha: String,
    /// The build identifier (the image tag in a cluster), or `dev`.
    pub build: String,
}

/// Start-up and shutdown state behind /ready.
#[derive(Debug, Default)]
pub struct Readiness {
    draining: AtomicBool,
    migrated: AtomicBool,
    last_error: Mutex<Option<String>>,
}

impl Readiness {
    /// From now on /ready answers 503 (SIGTERM arrived).
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    /// Whether shutdown has begun.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// The schema is in place; the API can serve.
    pub fn set_migrated(&self) {
        self.migrated.store(true, Ordering::SeqCst);
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// Whether migrations have been applied.
    pub fn is_migrated(&self) -> bool {
        self.migrated.load(Ordering::SeqCst)
    }

    /// Remembers why the database is not ready yet, for /ready to explain.
    pub fn set_error(&self, reason: String) {
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(reason);
    }

    /// The last start-up error, if any.
    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}
