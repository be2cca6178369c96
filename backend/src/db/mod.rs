//! The database: SQLite (embedded, the default) or PostgreSQL, chosen by the URL scheme, each
//! through its own driver.
//!
//! - SQLite ([`sqlite`]): rusqlite connections. Reads run on a small pool of read-only
//!   connections; every write goes to one writer thread, which commits the writes waiting in its
//!   queue together in one transaction (one fsync for the batch, `synchronous=FULL` kept) and
//!   only then answers each of them.
//! - PostgreSQL ([`postgres`]): a sqlx `PgPool`, and beside it up to two connections for list
//!   pages ([`pg_readers`]), given back without the pool's round trip per release; pages that
//!   find both busy are read together, one statement per shape of page. Task creations made at
//!   the same time go to the server together, as one statement and one commit, each answered
//!   after that commit.
//!
//! Both have the same schema shapes (integer timestamps in milliseconds, no boolean columns), so
//! the queries differ only where the engines' SQL does (placeholders, tag aggregation).

pub mod pg_readers;
pub mod postgres;
pub mod sqlite;

use std::{sync::Arc, time::Duration};

use crate::config::DatabaseKind;

/// Handle to the database; cheap to clone.
#[derive(Clone)]
pub enum Db {
    /// An embedded SQLite file.
    Sqlite(Arc<sqlite::Sqlite>),
    /// A PostgreSQL server.
    Postgres(Arc<postgres::Postgres>),
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Db({:?})", self.kind())
    }
}

impl Db {
    /// Prepares the database without connecting: the server starts (and answers /health) even
    /// while the database is still coming up; [`Db::migrate`] is retried until it succeeds.
    pub fn connect_lazy(url: &str, max_connections: u32, statement_timeout: Duration) -> anyhow::Result<Self> {
        Ok(match DatabaseKind::of(url)? {
            DatabaseKind::Sqlite => Self::Sqlite(Arc::new(sqlite::Sqlite::new(url)?)),
            DatabaseKind::Postgres => Self::Postgres(Arc::new(postgres::Postgres::connect_lazy(
                url,
                max_connections,
                statement_timeout,
            )?)),
        })
    }

    /// Connects if needed and applies pending migrations for this engine.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        match self {
            Self::Sqlite(db) => db.clone().migrate().await,
            Self::Postgres(db) => db.migrate().await,
        }
    }

    /// A trivial query, to prove the database answers.
    pub async fn ping(&self) -> anyhow::Result<()> {
        match self {
            Self::Sqlite(db) => db.ping(),
            Self::Postgres(db) => db.ping().await,
        }
    }

    /// Which engine this is.
    pub fn kind(&self) -> DatabaseKind {
        match self {
            Self::Sqlite(_) => DatabaseKind::Sqlite,
            Self::Postgres(_) => DatabaseKind::Postgres,
        }
    }

    /// Finishes queued writes and closes every connection (SQLite checkpoints its WAL on the
    /// last close).
    pub async fn close(&self) {
        match self {
            Self::Sqlite(db) => db.clone().close().await,
            Self::Postgres(db) => db.close().await,
        }
    }

    /// Writes that batch (every write on SQLite, task creations on PostgreSQL) queue up without
    /// being run until the returned guard is dropped, and then go out together in one batch.
    /// For tests of the batching.
    pub async fn hold_writes(&self) -> WriteHold {
        match self {
            Self::Sqlite(db) => WriteHold::Sqlite(db.hold_writes()),
            Self::Postgres(db) => WriteHold::Postgres(db.hold_writes().await),
        }
    }

    /// Writes waiting for their batch.
    pub fn queued_writes(&self) -> usize {
        match self {
            Self::Sqlite(db) => db.queued_writes(),
            Self::Postgres(db) => db.queued_writes(),
        }
    }

    /// Batches committed so far (SQLite: write transactions; PostgreSQL: statements that
    /// created tasks) and the writes they held.
    pub fn write_batches(&self) -> sqlite::BatchCounts {
        match self {
            Self::Sqlite(db) => db.batch_counts(),
            Self::Postgres(db) => db.batch_counts(),
        }
    }

    /// PostgreSQL's list pages queue up without being read until the returned hold is dropped,
    /// and are then read together (see [`crate::tasks::postgres::read_pages`]). `None` on
    /// SQLite, whose pages are read where they are asked for. For tests of the batching.
    pub async fn hold_list_reads(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        match self {
            Self::Sqlite(_) => None,
            Self::Postgres(db) => db.hold_list_reads().await,
        }
    }

    /// List pages waiting for a reader (always 0 on SQLite).
    pub fn queued_list_reads(&self) -> usize {
        match self {
            Self::Sqlite(_) => 0,
            Self::Postgres(db) => db.queued_lists(),
        }
    }

    /// The statements that read queued list pages so far, and those pages (none on SQLite).
    pub fn list_batches(&self) -> postgres::ListBatches {
        match self {
            Self::Sqlite(_) => postgres::ListBatches::default(),
            Self::Postgres(db) => db.list_batches(),
        }
    }
}

/// See [`Db::hold_writes`]: writes resume when it is dropped.
#[must_use = "writes resume when the hold is dropped"]
pub enum WriteHold {
    /// The SQLite writer's hold.
    Sqlite(sqlite::WriteHold),
    /// Every batch slot of PostgreSQL's create queue.
    Postgres(postgres::WriteHold),
}

/// Milliseconds since the Unix epoch: how every timestamp is stored.
pub fn now_millis() -> i64 {
    let nanos = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
    i64::try_from(nanos / 1_000_000).unwrap_or(i64::MAX)
}

/// A stored timestamp (milliseconds since the Unix epoch) as the API shows it: RFC 3339 UTC with
/// exactly three fractional digits (a fixed width keeps timestamps sortable as plain strings),
/// and an empty string outside the years 0 to 9999. Written by hand into a buffer on the stack
/// and serialized from there: a list page shows forty, and neither a format description nor a
/// `String` per timestamp is needed (measured with callgrind: formatting into a `String` char by
/// char took about 11% of a list request's instructions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// The text as ASCII bytes, or `None` outside the years 0 to 9999.
    fn render(self) -> Option<[u8; 24]> {
        let days = self.0.div_euclid(86_400_000);
        let in_day = self.0.rem_euclid(86_400_000);
        let (year, month, day) = civil_from_days(days);
        if !(0..=9999).contains(&year) {
            return None;
        }
        let mut out = *b"0000-00-00T00:00:00.000Z";
        for (range, value) in [
            (0..4, year),
            (5..7, month),
            (8..10, day),
            (11..13, in_day / 3_600_000),
            (14..16, in_day / 60_000 % 60),
            (17..19, in_day / 1000 % 60),
            (20..23, in_day % 1000),
        ] {
            let mut value = value;
            for digit in out[range].iter_mut().rev() {
                // A digit 0..=9, so the cast cannot truncate.
                *digit = b'0' + (value % 10) as u8;
                value /= 10;
            }
        }
        Some(out)
    }

    /// The JSON string [`Timestamp`]'s `Serialize` writes, appended to `out`: digits and
    /// punctuation only, so nothing to escape.
    pub(crate) fn write_json(self, out: &mut Vec<u8>) {
        out.push(b'"');
        if let Some(text) = self.render() {
            out.extend_from_slice(&text);
        }
        out.push(b'"');
    }
}

impl std::fmt::Display for Timestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.render() {
            Some(text) => f.write_str(std::str::from_utf8(&text).map_err(|_| std::fmt::Error)?),
            None => Ok(()),
        }
    }
}

impl serde::Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.render() {
            Some(text) => serializer.serialize_str(std::str::from_utf8(&text).map_err(serde::ser::Error::custom)?),
            None => serializer.serialize_str(""),
        }
    }
}

/// [`Timestamp`]'s text, as a `String`.
pub fn rfc3339(millis: i64) -> String {
    Timestamp(millis).to_string()
}

/// The proleptic Gregorian (year, month, day) of a count of days since 1970-01-01 (Howard
/// Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_render_as_rfc3339_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_700_000_000_100), "2023-11-14T22:13:20.100Z");
        assert_eq!(rfc3339(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
    }

    #[test]
    fn timestamps_serialize_as_their_text_and_outside_0_to_9999_as_empty() {
        let json = |millis| serde_json::to_string(&Timestamp(millis)).unwrap();
        assert_eq!(json(1_700_000_000_123), "\"2023-11-14T22:13:20.123Z\"");
        assert_eq!(json(-62_167_219_200_000), "\"0000-01-01T00:00:00.000Z\"");
        assert_eq!(json(253_402_300_799_999), "\"9999-12-31T23:59:59.999Z\"");
        for outside in [-62_167_219_200_001, 253_402_300_800_000, i64::MIN, i64::MAX] {
            assert_eq!(json(outside), "\"\"", "{outside}");
            assert_eq!(rfc3339(outside), "", "{outside}");
        }
    }

    #[test]
    fn timestamps_match_the_time_crate_across_the_calendar() {
        let format =
            time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
        // Every 7 hours 13 minutes 17.123 seconds from 1900 to 2200: leap years, month ends,
        // century rules and negative timestamps included.
        let mut millis = -2_208_988_800_000_i64;
        while millis < 7_258_118_400_000 {
            let expected = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000)
                .unwrap()
                .format(&format)
                .unwrap();
            assert_eq!(rfc3339(millis), expected, "{millis}");
            millis += 25_997_123;
        }
    }
}
