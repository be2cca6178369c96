//! The operational contract both services follow (DESIGN.md, "Health contract (both services)"):
//! the `healthcheck` subcommand, logging, the request id, the per-request log line, the request
//! time limit, the HTTP server with its connection limits, and SIGTERM drain then graceful stop.
//!
//! The backend uses this folder as a normal module; the frontend compiles the same files with
//! `#[path]`. So everything here depends only on crates both services have and never on either
//! service's own types (`crate::...`): what differs between them comes in as an argument.

pub mod healthcheck;
pub mod request_id;
pub mod request_log;
pub mod request_timeout;
pub mod server;
pub mod shutdown;
pub mod telemetry;
