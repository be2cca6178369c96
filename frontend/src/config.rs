//! Settings, read once at start-up from flags or environment variables.
//!
//! Every setting has a default that works for a local run (`cargo run -p frontend` next to
//! `cargo run -p backend`); the Helm chart sets them from a ConfigMap. `frontend --help` lists
//! them all. The names are a contract with the chart: do not rename them.

use std::{net::SocketAddr, time::Duration};

use anyhow::bail;
use clap::{Args, Parser, Subcommand};

use crate::service::{healthcheck::HealthcheckArgs, server::ConnectionArgs, telemetry::LogFormat};

/// Connect timeout towards the backend: a refused or unroutable backend is noticed quickly even
/// when the total budget is longer.
pub const MAX_BACKEND_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// The command line: run the server (no subcommand) or probe a running one.
#[derive(Debug, Parser)]
#[command(
    name = "frontend",
    version,
    about = "The Todo web UI server (talks to the Todo API over HTTP)",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    /// What to do instead of serving.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Server settings.
    #[command(flatten)]
    pub config: Config,
}

/// Subcommands of the `frontend` binary.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Probe a health URL and exit 0 when it answers 2xx, 1 otherwise (images have no curl).
    // 3000: the default port of LISTEN_ADDR, so the default URL is this server's own /health.
    Healthcheck(HealthcheckArgs<3000>),
}

/// Every setting of the server.
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Address and port to listen on (port 0 picks a free port).
    #[arg(long, env = "LISTEN_ADDR", default_value = "127.0.0.1:3000")]
    pub listen_addr: SocketAddr,

    /// Base URL of the Todo API (plain http), e.g. `http://todo-backend:8000` in a cluster.
    #[arg(long, env = "BACKEND_URL", default_value = "http://127.0.0.1:8000")]
    pub backend_url: String,

    /// Mark the session cookies `Secure` (sent over HTTPS only). Turn on when users reach the
    /// site through HTTPS.
    #[arg(long, env = "COOKIE_SECURE", default_value_t = false, action = clap::ArgAction::Set,
          value_parser = clap::builder::BoolishValueParser::new())]
    pub cookie_secure: bool,

    /// Longest time one call to the backend may take, in seconds (connecting is capped at 2s).
    /// Must be shorter than REQUEST_TIMEOUT_SECONDS.
    #[arg(long, env = "BACKEND_TIMEOUT_SECONDS", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=300))]
    pub backend_timeout_seconds: u64,

    /// Connection limits (header-read timeout, most connections).
    #[command(flatten)]
    pub connections: ConnectionArgs,

    /// Longest time a page may take before it is answered with a 503 page, in seconds.
    #[arg(long, env = "REQUEST_TIMEOUT_SECONDS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=300))]
    pub request_timeout_seconds: u64,

    /// After SIGTERM: seconds to keep serving (with /ready at 503) so load balancers stop sending traffic.
    #[arg(long, env = "SHUTDOWN_DRAIN_SECONDS", default_value_t = 5, value_parser = clap::value_parser!(u64).range(0..=300))]
    pub shutdown_drain_seconds: u64,

    /// After the drain: seconds allowed for in-flight requests to finish before giving up.
    #[arg(long, env = "SHUTDOWN_TIMEOUT_SECONDS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=300))]
    pub shutdown_timeout_seconds: u64,

    /// Log filter, in `tracing` EnvFilter syntax (e.g. `info`, `frontend=debug,info`).
    #[arg(long, env = "RUST_LOG", default_value = "info")]
    pub log_filter: String,

    /// Log format.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

impl Config {
    /// Settings for tests and embedding: everything at its default, listening on a free port and
    /// talking to the given backend.
    pub fn for_tests(backend_url: &str) -> Self {
        let cli = Cli::parse_from(["frontend", "--listen-addr", "127.0.0.1:0", "--backend-url", backend_url]);
        cli.config
    }

    /// Checks what clap cannot: the backend URL's shape and the relation between the timeouts.
    pub fn validate(&self) -> anyhow::Result<()> {
        let Some(rest) = self.backend_url.strip_prefix("http://") else {
            bail!(
                "BACKEND_URL must start with http:// (the frontend speaks plain HTTP to the backend), got {:?}",
                self.backend_url
            );
        };
        let authority = rest.split('/').next().unwrap_or_default();
        if authority.is_empty() || rest.contains(['?', '#']) {
            bail!(
                "BACKEND_URL must be a base URL like http://todo-backend:8000, got {:?}",
                self.backend_url
            );
        }
        if self.backend_timeout_seconds >= self.request_timeout_seconds {
            bail!(
                "BACKEND_TIMEOUT_SECONDS ({}) must be shorter than REQUEST_TIMEOUT_SECONDS ({}), so a slow \
                 backend gets the \"service unavailable\" page rather than a timed-out request",
                self.backend_timeout_seconds,
                self.request_timeout_seconds
            );
        }
        Ok(())
    }

    /// The backend base URL without a trailing slash.
    pub fn backend_base(&self) -> &str {
        self.backend_url.trim_end_matches('/')
    }

    /// Total time budget of one backend call.
    pub fn backend_timeout(&self) -> Duration {
        Duration::from_secs(self.backend_timeout_seconds)
    }

    /// Connect timeout of backend calls: 2s, or the total budget when that is shorter.
    pub fn backend_connect_timeout(&self) -> Duration {
        self.backend_timeout().min(MAX_BACKEND_CONNECT_TIMEOUT)
    }

    /// The request timeout as a [`Duration`].
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_seconds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn defaults_match_the_settings_contract() {
        let config = Cli::parse_from(["frontend"]).config;
        assert_eq!(config.listen_addr.to_string(), "127.0.0.1:3000");
        assert_eq!(config.backend_url, "http://127.0.0.1:8000");
        assert!(!config.cookie_secure);
        assert_eq!(config.backend_timeout_seconds, 5);
        assert_eq!(config.request_timeout_seconds, 10);
        assert_eq!(config.shutdown_drain_seconds, 5);
        assert_eq!(config.shutdown_timeout_seconds, 10);
        assert_eq!(config.log_filter, "info");
        assert_eq!(config.log_format, LogFormat::Text);
        assert_eq!(config.backend_connect_timeout(), Duration::from_secs(2));
        config.validate().unwrap();
    }

    #[test]
    fn backend_timeout_must_be_shorter_than_the_request_timeout() {
        let mut config = Config::for_tests("http://127.0.0.1:8000");
        config.backend_timeout_seconds = 10;
        config.request_timeout_seconds = 10;
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("BACKEND_TIMEOUT_SECONDS (10) must be shorter"), "{err}");
    }

    #[test]
    fn backend_url_must_be_plain_http_with_a_host() {
        for bad in [
            "https://api.example.com",
            "todo-backend:8000",
            "http://",
            "http://x/?a=b",
        ] {
            let config = Config::for_tests(bad);
            assert!(config.validate().is_err(), "{bad} should be rejected");
        }
        let config = Config::for_tests("http://todo-backend:8000/");
        config.validate().unwrap();
        assert_eq!(config.backend_base(), "http://todo-backend:8000");
    }

    #[test]
    fn cookie_secure_reads_true_and_false() {
        let on = Cli::parse_from(["frontend", "--cookie-secure", "true"]).config;
        assert!(on.cookie_secure);
        let off = Cli::parse_from(["frontend", "--cookie-secure", "0"]).config;
        assert!(!off.cookie_secure);
    }
}
