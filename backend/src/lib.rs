//! The Todo API: configuration, start-up, routes and storage.
//!
//! `main.rs` only parses the command line and calls [`startup::serve`]; tests use
//! [`startup::Application`] to run the very same router on port 0.

pub mod auth;
pub mod chat;
pub mod config;
pub mod db;
pub mod error;
pub mod extract;
pub mod login_throttle;
pub mod metrics;
pub mod openapi;
pub mod routes;
pub mod sessions;
pub mod startup;
pub mod state;
pub mod tasks;
pub mod users;
