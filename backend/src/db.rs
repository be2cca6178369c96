//! The database: one `sqlx` Any pool over SQLite or PostgreSQL, chosen by the URL scheme, and
//! the migrations for each.
//!
//! Queries are written once in the SQL both engines share (`$n` placeholders, `RETURNING`,
//! integer timestamps in milliseconds, no boolean columns), so there is a single code path.

use std::{future::Future, pin::Pin, sync::Arc, time::Duration};

use anyhow::Context;
use sqlx::{AnyConnection, AnyPool, any::AnyPoolOptions, pool::PoolConnectionMetadata};

use crate::config::{DatabaseKind, redact_url};

/// Handle to the database; cheap to clone.
#[derive(Clone, Debug)]
pub struct Db {
    pool: AnyPool,
    kind: DatabaseKind,
    /// SQLite allows one writer at a time. Writers that meet inside SQLite poll its lock with
    /// growing sleeps (up to 100 ms each); queueing them here instead hands the lock over at once,
    /// in arrival order. PostgreSQL needs no such queue.
    writer: Option<Arc<tokio::sync::Mutex<()>>>,
}

/// Held while a write runs (see [`Db::write_turn`]).
pub type WriteTurn = Option<tokio::sync::OwnedMutexGuard<()>>;

impl Db {
    /// Prepares a pool without connecting: the server starts (and answers /health) even while
    /// the database is still coming up; [`Db::migrate`] is retried until it succeeds.
    pub fn connect_lazy(url: &str, max_connections: u32, statement_timeout: Duration) -> anyhow::Result<Self> {
        sqlx::any::install_default_drivers();
        let kind = DatabaseKind::of(url)?;
        let url = match kind {
            DatabaseKind::Sqlite => sqlite_url(url),
            DatabaseKind::Postgres => url.to_owned(),
        };
        let in_memory = kind == DatabaseKind::Sqlite && (url.contains(":memory:") || url.contains("mode=memory"));
        let mut options = AnyPoolOptions::new()
            .max_connections(if in_memory { 1 } else { max_connections })
            .acquire_timeout(Duration::from_secs(3));
        if in_memory {
            // Every connection to `:memory:` is a new empty database: keep exactly one, forever.
            options = options.min_connections(1).idle_timeout(None).max_lifetime(None);
        }
        let timeout_ms = statement_timeout.as_millis();
        let options = options.after_connect(move |conn, meta| on_connect(conn, meta, kind, timeout_ms));
        let pool = options
            .connect_lazy(&url)
            .with_context(|| format!("DATABASE_URL {} is not a valid database URL", redact_url(&url)))?;
        let writer = (kind == DatabaseKind::Sqlite).then(|| Arc::new(tokio::sync::Mutex::new(())));
        Ok(Self { pool, kind, writer })
    }

    /// Waits for this writer's turn (SQLite) and holds it until the guard is dropped; call it
    /// before a write transaction begins.
    pub async fn write_turn(&self) -> WriteTurn {
        match &self.writer {
            Some(writer) => Some(writer.clone().lock_owned().await),
            None => None,
        }
    }

    /// Applies pending migrations for this engine.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        let migrator = match self.kind {
            DatabaseKind::Sqlite => sqlx::migrate!("./migrations/sqlite"),
            DatabaseKind::Postgres => sqlx::migrate!("./migrations/postgres"),
        };
        migrator
            .run(&self.pool)
            .await
            .context("applying database migrations failed")
    }

    /// A trivial query, to prove the database answers.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map(|_| ())
    }

    /// The pool, for queries.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Which engine this is.
    pub fn kind(&self) -> DatabaseKind {
        self.kind
    }

    /// Closes every connection (SQLite checkpoints its WAL on the last close).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Per-connection settings. SQLite: WAL (readers never block the writer) and `synchronous=FULL`,
/// so an acknowledged write survives even a power cut. PostgreSQL: a statement timeout, so a
/// stuck query cannot hold a connection forever.
fn on_connect(
    conn: &mut AnyConnection,
    _meta: PoolConnectionMetadata,
    kind: DatabaseKind,
    statement_timeout_ms: u128,
) -> Pin<Box<dyn Future<Output = Result<(), sqlx::Error>> + Send + '_>> {
    Box::pin(async move {
        match kind {
            DatabaseKind::Sqlite => {
                sqlx::query("PRAGMA journal_mode = WAL").execute(&mut *conn).await?;
                sqlx::query("PRAGMA synchronous = FULL").execute(&mut *conn).await?;
                sqlx::query("PRAGMA foreign_keys = ON").execute(&mut *conn).await?;
                sqlx::query("PRAGMA busy_timeout = 5000").execute(&mut *conn).await?;
            }
            DatabaseKind::Postgres => {
                sqlx::query("SELECT set_config('statement_timeout', $1, false)")
                    .bind(statement_timeout_ms.to_string())
                    .execute(&mut *conn)
                    .await?;
            }
        }
        Ok(())
    })
}

/// SQLite URLs create the file when it is missing, unless the URL says otherwise.
fn sqlite_url(url: &str) -> String {
    if url.contains("mode=") || url.contains(":memory:") {
        url.to_owned()
    } else if url.contains('?') {
        format!("{url}&mode=rwc")
    } else {
        format!("{url}?mode=rwc")
    }
}

/// Milliseconds since the Unix epoch: how every timestamp is stored.
pub fn now_millis() -> i64 {
    let nanos = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
    i64::try_from(nanos / 1_000_000).unwrap_or(i64::MAX)
}

/// A stored timestamp as RFC 3339 UTC with exactly three fractional digits, as the API shows it
/// (a fixed width keeps timestamps sortable as plain strings).
pub fn rfc3339(millis: i64) -> String {
    let format =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    let nanos = i128::from(millis) * 1_000_000;
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_create_missing_files() {
        assert_eq!(sqlite_url("sqlite://todo.db"), "sqlite://todo.db?mode=rwc");
        assert_eq!(
            sqlite_url("sqlite:///data/todo.db?cache=shared"),
            "sqlite:///data/todo.db?cache=shared&mode=rwc"
        );
        assert_eq!(sqlite_url("sqlite://todo.db?mode=ro"), "sqlite://todo.db?mode=ro");
        assert_eq!(sqlite_url("sqlite::memory:"), "sqlite::memory:");
    }

    #[test]
    fn timestamps_render_as_rfc3339_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_700_000_000_100), "2023-11-14T22:13:20.100Z");
        assert_eq!(rfc3339(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
    }
}
