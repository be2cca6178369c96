//! The cross-crate contract: names the backend, the frontend, their tests and `xtask` all rely
//! on. A change here is a change of the services' interface (the chart, the docs and deployed
//! clients may name them too), so each is defined once and used by name everywhere.

/// The cookie that holds a signed-in browser's session (the backend's login token), set
/// HttpOnly by the frontend. Smoke checks and benchmarks send it as a browser would.
pub const SESSION_COOKIE: &str = "todo_session";

/// Liveness: 200 while the process serves HTTP (both services).
pub const HEALTH_PATH: &str = "/health";

/// Readiness: 200 while the service should get traffic, 503 once shutdown begins (both services).
pub const READY_PATH: &str = "/ready";

/// The request-id header: read from the client when sane, always echoed back, and forwarded by
/// the frontend to the backend so one id spans both services' logs.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The start of the log line a service writes once bound, `listening on http://ADDR`: tools and
/// tests read the port from it (the services may be started on port 0).
pub const LISTENING_ON: &str = "listening on";

/// The PostgreSQL server the backend's tests use unless `TEST_DATABASE_URL` names another (the
/// one `.ci/run` and the developers' machines provide).
pub const DEFAULT_TEST_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
