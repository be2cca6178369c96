//! The backend's tests: one binary, one module per suite, and the harness they share (the real
//! server on port 0 over a fresh SQLite file or PostgreSQL database, and a small HTTP client).

// First, so that `on_both_engines!` is in scope in every suite.
#[macro_use]
mod support;

mod api;
mod chat;
mod chat_llm;
mod contract;
mod hardening;
mod list_reads;
mod mcp;
mod operations;
mod process;
mod sessions_in_queries;
mod writes;
