//! The frontend's tests: one binary, one module per suite, and the harness they share (the real
//! backend and frontend on port 0, and a browser without JavaScript).

mod browser;
mod chat;
mod hardening;
mod harness;
mod pages;
mod resilience;
