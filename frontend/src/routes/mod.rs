//! HTTP routes, one module per area. [`pages`] collects the routes people use (they carry forms,
//! so they run under the CSRF middleware); health and static files stay outside it.

pub mod assets;
pub mod auth;
pub mod chat;
pub mod health;
pub mod tasks;

use axum::{Router, middleware::from_fn_with_state};

use crate::{csrf, state::AppState};

/// The page routes: sign-up, log-in, log-out, the tasks and the chat.
pub fn pages(state: &AppState) -> Router<AppState> {
    Router::new()
        .merge(auth::router())
        .merge(tasks::router())
        .merge(chat::router())
        .route_layer(from_fn_with_state(state.clone(), csrf::protect))
}
