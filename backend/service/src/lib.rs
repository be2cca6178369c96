//! What both services share, so it has one implementation.
//!
//! - [`contract`]: the names the services, their tests and `xtask` must agree on (the session
//!   cookie, the health paths, the "listening on" line, the request-id header, the test
//!   database). Plain constants with no dependencies, so `xtask` uses them with
//!   `default-features = false` and compiles no HTTP stack.
//! - [`wire`]: the JSON both services exchange that is not specific to one side (the task
//!   priority and the error body), with an OpenAPI description under the `openapi` feature.
//! - With the `server` feature (on by default): the operational contract both services follow
//!   (DESIGN.md, "Health contract (both services)"): the `healthcheck` subcommand, logging, the
//!   request id, the per-request log line, the request time limit, the HTTP server with its
//!   connection limits, and SIGTERM drain then graceful stop. What differs between the services
//!   (error bodies, probe routes) comes in as an argument.

pub mod contract;
pub mod wire;

#[cfg(feature = "server")]
pub mod healthcheck;
#[cfg(feature = "server")]
pub mod request_id;
#[cfg(feature = "server")]
pub mod request_log;
#[cfg(feature = "server")]
pub mod request_timeout;
#[cfg(feature = "server")]
pub mod server;
#[cfg(feature = "server")]
pub mod shutdown;
#[cfg(feature = "server")]
pub mod telemetry;
