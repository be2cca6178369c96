//! Settings, read once at start-up from flags or environment variables.
//!
//! Every setting has a default that works for a local run (`cargo run -p backend`); the Helm chart
//! sets them from a ConfigMap and a Secret. `backend --help` lists them all.

use std::{fmt, net::SocketAddr, str::FromStr, time::Duration};

use anyhow::bail;
use clap::{Args, Parser, Subcommand};

use todo_service::{healthcheck::HealthcheckArgs, server::ConnectionArgs, telemetry::LogFormat};

/// The smallest JWT secret accepted: HS256 wants at least as many bytes as its output.
pub const MIN_JWT_SECRET_BYTES: usize = 32;

/// The command line: run the server (no subcommand) or probe a running one.
#[derive(Debug, Parser)]
#[command(
    name = "backend",
    version,
    about = "The Todo API server",
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

/// Subcommands of the `backend` binary.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Probe a health URL and exit 0 when it answers 2xx, 1 otherwise (images have no curl).
    // 8000: the default port of LISTEN_ADDR, so the default URL is this server's own /health.
    Healthcheck(HealthcheckArgs<8000>),
}

/// Every setting of the server.
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Address and port to listen on (port 0 picks a free port).
    #[arg(long, env = "LISTEN_ADDR", default_value = "127.0.0.1:8000")]
    pub listen_addr: SocketAddr,

    /// Database URL: `sqlite://<file>` (created if missing; `?mode=rw|ro`) or `postgres://user:pass@host/db`.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://todo.db",
        hide_env_values = true
    )]
    pub database_url: Secret,

    /// PostgreSQL: most connections in the pool. (SQLite has one writing connection and a
    /// read-only one per thread that reads.)
    #[arg(long, env = "DATABASE_MAX_CONNECTIONS", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub database_max_connections: u32,

    /// Secret that signs login tokens (HS256), at least 32 bytes. Unset: a random one per start,
    /// so every restart logs everybody out.
    #[arg(long, env = "JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<Secret>,

    /// How long a login token stays valid, in seconds.
    #[arg(long, env = "TOKEN_TTL_SECONDS", default_value_t = 86_400, value_parser = clap::value_parser!(u64).range(60..=31_536_000))]
    pub token_ttl_seconds: u64,

    /// Failed logins for one account (email) within LOGIN_FAILURE_WINDOW_SECONDS before its logins
    /// are answered 429 until the window ends.
    #[arg(long, env = "LOGIN_MAX_FAILURES_PER_ACCOUNT", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub login_max_failures_per_account: u32,

    /// Failed logins from one client address within LOGIN_FAILURE_WINDOW_SECONDS before its
    /// logins are answered 429 until the window ends.
    #[arg(long, env = "LOGIN_MAX_FAILURES_PER_CLIENT", default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub login_max_failures_per_client: u32,

    /// Length of the window in which failed logins are counted, in seconds.
    #[arg(long, env = "LOGIN_FAILURE_WINDOW_SECONDS", default_value_t = 900, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub login_failure_window_seconds: u64,

    /// Proxies in front of the backend that append the client's address to X-Forwarded-For (the
    /// frontend does: 1). The login throttle counts per client by that address; 0 uses the
    /// connection's peer address and ignores the header (for a backend reached directly).
    #[arg(long, env = "TRUSTED_PROXY_HOPS", default_value_t = 1, value_parser = clap::value_parser!(u64).range(0..=10))]
    pub trusted_proxy_hops: u64,

    /// Connection limits (header-read timeout, most connections).
    #[command(flatten)]
    pub connections: ConnectionArgs,

    /// Longest time a request may take before it is answered with 503, in seconds.
    #[arg(long, env = "REQUEST_TIMEOUT_SECONDS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=300))]
    pub request_timeout_seconds: u64,

    /// After SIGTERM: seconds to keep serving (with /ready at 503) so load balancers stop sending traffic.
    #[arg(long, env = "SHUTDOWN_DRAIN_SECONDS", default_value_t = 5, value_parser = clap::value_parser!(u64).range(0..=300))]
    pub shutdown_drain_seconds: u64,

    /// After the drain: seconds allowed for in-flight requests to finish before giving up.
    #[arg(long, env = "SHUTDOWN_TIMEOUT_SECONDS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=300))]
    pub shutdown_timeout_seconds: u64,

    /// Log filter, in `tracing` EnvFilter syntax (e.g. `info`, `backend=debug,info`).
    #[arg(long, env = "RUST_LOG", default_value = "info")]
    pub log_filter: String,

    /// Log format.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Build identifier reported by /version (the chart sets the image tag).
    #[arg(long, env = "APP_BUILD", default_value = "dev")]
    pub app_build: String,

    /// Source revision reported by /version.
    #[arg(long, env = "GIT_SHA", default_value = "unknown")]
    pub git_sha: String,

    /// API key of an OpenAI-compatible provider for the chat assistant. Unset or empty: the
    /// built-in assistant answers (no network).
    #[arg(long, env = "OPENAI_API_KEY", hide_env_values = true)]
    pub openai_api_key: Option<Secret>,

    /// Base URL of the OpenAI-compatible API (requests go to `<url>/chat/completions`).
    #[arg(long, env = "OPENAI_BASE_URL", default_value = "https://api.openai.com/v1")]
    pub openai_base_url: String,

    /// Model the chat assistant asks (it must support tool calling).
    #[arg(long, env = "OPENAI_MODEL", default_value = "gpt-4o-mini")]
    pub openai_model: String,

    /// Longest time one chat message may spend waiting for the provider, in seconds, over all
    /// its tool rounds; then the built-in assistant answers. With a key, it must be less than
    /// REQUEST_TIMEOUT_SECONDS.
    #[arg(long, env = "OPENAI_TIMEOUT_SECONDS", default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..=299))]
    pub openai_timeout_seconds: u64,
}

impl Config {
    /// Settings for tests and embedding: everything at its default, listening on a free port.
    pub fn for_tests(database_url: &str) -> Self {
        let cli = Cli::parse_from([
            "backend",
            "--listen-addr",
            "127.0.0.1:0",
            "--database-url",
            database_url,
        ]);
        cli.config
    }

    /// Checks what clap cannot: relations between settings and the JWT secret's strength.
    pub fn validate(&self) -> anyhow::Result<()> {
        if let Some(secret) = &self.jwt_secret
            && secret.expose().len() < MIN_JWT_SECRET_BYTES
        {
            bail!(
                "JWT_SECRET is {} bytes long; it must be at least {MIN_JWT_SECRET_BYTES} bytes \
                 (generate one with: openssl rand -hex 32)",
                secret.expose().len()
            );
        }
        DatabaseKind::of(self.database_url.expose())?;
        if !(self.openai_base_url.starts_with("http://") || self.openai_base_url.starts_with("https://")) {
            bail!(
                "OPENAI_BASE_URL must start with http:// or https:// (got {})",
                redact_url(&self.openai_base_url)
            );
        }
        let has_key = self
            .openai_api_key
            .as_ref()
            .is_some_and(|k| !k.expose().trim().is_empty());
        if has_key && self.openai_timeout_seconds >= self.request_timeout_seconds {
            bail!(
                "OPENAI_TIMEOUT_SECONDS ({}) must be less than REQUEST_TIMEOUT_SECONDS ({}), so a slow \
                 provider leaves time for the built-in assistant to answer",
                self.openai_timeout_seconds,
                self.request_timeout_seconds
            );
        }
        Ok(())
    }

    /// The LLM provider's deadline per chat message.
    pub fn openai_timeout(&self) -> Duration {
        Duration::from_secs(self.openai_timeout_seconds)
    }

    /// The request timeout as a [`Duration`].
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_seconds)
    }
}

/// Which database engine a URL selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatabaseKind {
    /// An embedded SQLite file.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

impl DatabaseKind {
    /// Reads the engine from the URL scheme, with a clear error for anything else.
    pub fn of(url: &str) -> anyhow::Result<Self> {
        let scheme = url.split_once(':').map(|(scheme, _)| scheme).unwrap_or_default();
        match scheme {
            "sqlite" => Ok(Self::Sqlite),
            "postgres" | "postgresql" => Ok(Self::Postgres),
            _ => bail!(
                "DATABASE_URL must start with sqlite:// or postgres:// (got {})",
                redact_url(url)
            ),
        }
    }
}

/// A URL with its password replaced by `***`, safe to log.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.chars().take(12).collect::<String>() + "...";
    };
    let (authority, path) = rest.split_once('/').map_or((rest, ""), |(a, p)| (a, p));
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
            if userinfo.contains(':') {
                format!("{user}:***@{host}")
            } else {
                format!("{user}@{host}")
            }
        }
        None => authority.to_owned(),
    };
    // Query strings can carry passwords too (`?password=`); drop them from the log form.
    let path = path.split_once('?').map_or(path, |(p, _)| p);
    if rest.contains('/') {
        format!("{scheme}://{authority}/{path}")
    } else {
        format!("{scheme}://{authority}")
    }
}

/// A setting that must never be printed: `Debug` and `Display` show `[redacted]`.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    /// The secret value, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_owned()))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
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
    fn short_jwt_secret_is_rejected_with_a_hint() {
        let mut config = Config::for_tests("sqlite::memory:");
        config.jwt_secret = Some(Secret::from("short".to_owned()));
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("at least 32 bytes"), "{err}");
        assert!(!err.contains("short"), "the secret itself must not be echoed: {err}");
    }

    #[test]
    fn unknown_database_scheme_is_rejected_without_the_password() {
        let mut config = Config::for_tests("sqlite::memory:");
        config.database_url = Secret::from("mysql://root:hunter2@db/todo".to_owned());
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("sqlite:// or postgres://"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[test]
    fn the_provider_must_answer_within_the_request_timeout() {
        let mut config = Config::for_tests("sqlite::memory:");
        config.openai_timeout_seconds = config.request_timeout_seconds;
        config
            .validate()
            .expect("without a key the provider's timeout does not matter");
        config.openai_api_key = Some(Secret::from("sk-test".to_owned()));
        let err = config.validate().unwrap_err().to_string();
        assert!(
            err.contains("OPENAI_TIMEOUT_SECONDS") && err.contains("REQUEST_TIMEOUT_SECONDS"),
            "{err}"
        );
        let mut config = Config::for_tests("sqlite::memory:");
        config.openai_base_url = "ftp://example.com".to_owned();
        assert!(config.validate().unwrap_err().to_string().contains("OPENAI_BASE_URL"));
    }

    #[test]
    fn redact_url_hides_passwords() {
        assert_eq!(
            redact_url("postgres://app:s3cret@db:5432/todo"),
            "postgres://app:***@db:5432/todo"
        );
        assert_eq!(redact_url("postgres://db/todo?password=x"), "postgres://db/todo");
        assert_eq!(redact_url("sqlite://todo.db"), "sqlite://todo.db");
        assert_eq!(redact_url("postgres://app@db"), "postgres://app@db");
    }

    #[test]
    fn secrets_do_not_print() {
        let secret = Secret::from("hunter2hunter2".to_owned());
        assert_eq!(format!("{secret} {secret:?}"), "[redacted] [redacted]");
    }
}
