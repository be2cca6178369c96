//! The Todo web UI: pages rendered on the server (axum + askama) from data fetched from the Todo
//! API over HTTP. The browser never calls the backend.
//!
//! `main.rs` only parses the command line and calls [`startup::serve`]; tests use
//! [`startup::Application`] to run the very same router on port 0.

pub mod assets;
pub mod backend_client;
pub mod config;
pub mod csrf;
pub mod error;
pub mod list_query;
pub mod routes;
pub mod session;
pub mod startup;
pub mod state;
pub mod views;
