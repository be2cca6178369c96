//! The state every handler can read.

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use axum::extract::FromRef;

use crate::{backend_client::BackendClient, session::CookiePolicy};

/// Shared, cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The client of the Todo API.
    pub backend: BackendClient,
    /// How cookies are set (`Secure` or not).
    pub cookies: CookiePolicy,
    /// What /ready reports.
    pub readiness: Arc<Readiness>,
}

impl FromRef<AppState> for BackendClient {
    fn from_ref(state: &AppState) -> BackendClient {
        state.backend.clone()
    }
}

/// Shutdown state behind /ready. The frontend has no start-up work, so it is ready from the
/// first request until SIGTERM.
#[derive(Debug, Default)]
pub struct Readiness {
    draining: AtomicBool,
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
}
