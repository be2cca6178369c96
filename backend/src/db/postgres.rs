//! PostgreSQL through sqlx's native driver: a `PgPool` whose connections prepare each statement
//! once and keep it (sqlx's per-connection statement cache), and the migrations.

use std::{borrow::Cow, str::FromStr, time::Duration};

use anyhow::Context;
use sqlx::{
    PgPool, SqlStr,
    migrate::{Migration, MigrationType, Migrator},
    postgres::{PgConnectOptions, PgPoolOptions},
};

use crate::config::redact_url;

/// Statements kept prepared per connection: every shape of the list query fits.
const STATEMENT_CACHE: usize = 256;

/// The migrations, embedded (the image has no files besides the binary). Built by hand rather
/// than with `sqlx::migrate!`, which would compile sqlx's whole proc-macro stack for one list;
/// the version, description and checksum are what that macro recorded, so databases it migrated
/// are recognised.
fn migrator() -> Migrator {
    let migration = |version, description, sql| {
        Migration::new(
            version,
            Cow::Borrowed(description),
            MigrationType::Simple,
            SqlStr::from_static(sql),
            false,
        )
    };
    Migrator {
        migrations: Cow::Owned(vec![
            migration(1, "init", include_str!("../../migrations/postgres/0001_init.sql")),
            migration(
                3,
                "sessions and login throttle",
                include_str!("../../migrations/postgres/0003_sessions_and_login_throttle.sql"),
            ),
            // 4, not 2: databases already at 3 (SQLite's user_version) would skip a 2.
            migration(4, "chat", include_str!("../../migrations/postgres/0004_chat.sql")),
            migration(
                5,
                "inline tags",
                include_str!("../../migrations/postgres/0005_inline_tags.sql"),
            ),
        ]),
        ..Migrator::DEFAULT
    }
}

/// A PostgreSQL database; cheap to clone.
#[derive(Clone, Debug)]
pub struct Postgres {
    pool: PgPool,
}

impl Postgres {
    /// A pool that connects on first use, with a statement timeout on every connection so a
    /// stuck query cannot hold a connection forever.
    pub fn connect_lazy(url: &str, max_connections: u32, statement_timeout: Duration) -> anyhow::Result<Self> {
        let options = PgConnectOptions::from_str(url)
            .with_context(|| format!("DATABASE_URL {} is not a valid PostgreSQL URL", redact_url(url)))?
            .statement_cache_capacity(STATEMENT_CACHE)
            .options([("statement_timeout", statement_timeout.as_millis().to_string())]);
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(3))
            .connect_lazy_with(options);
        Ok(Self { pool })
    }

    /// Applies pending migrations.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        migrator()
            .run(&self.pool)
            .await
            .context("applying database migrations failed")
    }

    /// A trivial query, to prove the server answers.
    pub async fn ping(&self) -> anyhow::Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// The pool, for queries.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Closes every connection.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}
