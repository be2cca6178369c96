//! SQLite through rusqlite: a pool of read-only connections, and one writer thread that commits
//! in groups.
//!
//! Reads are a few microseconds against pages already in memory, less than handing them to
//! another thread would cost, so [`Sqlite::read`] runs them where it is called, on a connection
//! taken from the pool (at most one per thread that reads at a time; WAL mode lets them read while
//! the writer writes).
//!
//! Writes go to one thread that owns the only writing connection. It takes every write waiting in
//! its queue, runs each inside its own savepoint of one `BEGIN IMMEDIATE` transaction, commits
//! once (with `synchronous=FULL`: one fsync for the whole batch), and only then answers each
//! write. A write that fails (a constraint violation, a missing row) rolls back to its savepoint
//! and gets its own error; the others of the batch commit. If the commit itself fails, no write of
//! the batch is acknowledged.

use std::{
    panic::AssertUnwindSafe,
    path::PathBuf,
    sync::{
        Arc, Mutex, MutexGuard, OnceLock,
        atomic::{AtomicU64, AtomicUsize, Ordering},
        mpsc,
    },
    thread::JoinHandle,
};

use anyhow::{Context, bail};
use rusqlite::{Connection, OpenFlags, OptionalExtension, config::DbConfig};

use crate::{
    config::redact_url,
    error::{ApiError, ApiResult},
};

/// Most writes committed in one transaction; a longer queue is taken in several batches.
const MAX_BATCH: usize = 256;
/// Idle read connections kept open; more are opened when more threads read at once.
const MAX_IDLE_READERS: usize = 8;
/// Prepared statements kept per connection (every shape of the list query fits).
const STATEMENT_CACHE: usize = 128;

/// The VFS of database files opened for writing: SQLite's unix VFS, except that the process's
/// first connection locks the file for the whole process (the lock goes when the process ends,
/// however it ends) and the WAL index lives in the process's memory instead of a `-shm` file.
/// Each read transaction then starts without a system call: with the `-shm` file, the `fcntl`
/// locks on it cost a list request 7% of its throughput (measured, 2 cores, 16 connections:
/// 20,500 against 22,300 req/s). The price is that no other process opens the file while the
/// backend runs — which also keeps a second backend on the same volume from writing beside the
/// writer thread. `?mode=ro` opens without it.
const OWNER_VFS: &std::ffi::CStr = c"unix-excl";

/// The migrations, in order: (version, SQL). `PRAGMA user_version` records the last applied.
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../../migrations/sqlite/0001_init.sql")),
    (
        3,
        include_str!("../../migrations/sqlite/0003_sessions_and_login_throttle.sql"),
    ),
    // 4, not 2: databases already at 3 would skip a 2 (user_version only grows).
    (4, include_str!("../../migrations/sqlite/0004_chat.sql")),
    (5, include_str!("../../migrations/sqlite/0005_inline_tags.sql")),
    (6, include_str!("../../migrations/sqlite/0006_task_counts.sql")),
];

/// Where the database lives, from `DATABASE_URL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A file, opened in this mode.
    File { path: PathBuf, mode: Mode },
    /// A private in-memory database (gone when the process stops).
    Memory,
}

/// How a database file is opened (`?mode=` in the URL).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `ro`: never written.
    ReadOnly,
    /// `rw`: the file must exist.
    ReadWrite,
    /// `rwc` (the default): created when missing.
    ReadWriteCreate,
}

impl Target {
    /// Reads `sqlite://<file>[?mode=ro|rw|rwc|memory]` or `sqlite::memory:`.
    pub fn parse(url: &str) -> anyhow::Result<Self> {
        let rest = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .with_context(|| format!("DATABASE_URL {} is not a sqlite: URL", redact_url(url)))?;
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let mut mode = Mode::ReadWriteCreate;
        let mut memory = path == ":memory:";
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair {
                "mode=ro" => mode = Mode::ReadOnly,
                "mode=rw" => mode = Mode::ReadWrite,
                "mode=rwc" => mode = Mode::ReadWriteCreate,
                "mode=memory" => memory = true,
                other => bail!(
                    "DATABASE_URL: the SQLite option {other:?} is not supported (supported: mode=ro, mode=rw, mode=rwc, mode=memory)"
                ),
            }
        }
        if memory {
            return Ok(Self::Memory);
        }
        if path.is_empty() {
            bail!("DATABASE_URL names no SQLite file (expected sqlite://<file>, e.g. sqlite://todo.db)");
        }
        Ok(Self::File {
            path: PathBuf::from(path),
            mode,
        })
    }

    fn flags(&self, writer: bool) -> OpenFlags {
        let base = OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI;
        match self {
            Self::File {
                mode: Mode::ReadOnly, ..
            } => base | OpenFlags::SQLITE_OPEN_READ_ONLY,
            Self::File {
                mode: Mode::ReadWriteCreate,
                ..
            } if writer => base | OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
            _ => base | OpenFlags::SQLITE_OPEN_READ_WRITE,
        }
    }
}

/// A SQLite database: the read pool and, once migrated, the writer thread.
pub struct Sqlite {
    target: Target,
    readers: Mutex<Vec<Connection>>,
    writer: OnceLock<Writer>,
    counts: Arc<Counters>,
}

/// The writer thread's queue and handle.
struct Writer {
    queue: mpsc::Sender<Message>,
    queued: Arc<AtomicUsize>,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// In-memory databases have one connection, which readers share with the writer.
    shared: Option<Arc<Mutex<Connection>>>,
}

/// What the writer thread is asked to do.
enum Message {
    /// Run a write in the next batch.
    Write(Job),
    /// Run nothing until the sender of this channel is dropped (see [`Sqlite::hold_writes`]).
    Hold(mpsc::Receiver<()>),
    /// Finish and close the connection.
    Stop,
}

/// A write: runs on the writer's connection inside a savepoint and says whether it succeeded;
/// what it returns answers the caller once the batch's fate is known (`true`: committed).
type Job = Box<dyn FnOnce(&Connection) -> (bool, Deliver) + Send>;
type Deliver = Box<dyn FnOnce(bool) + Send>;

/// Batches committed and the writes in them.
#[derive(Debug, Default)]
struct Counters {
    batches: AtomicU64,
    writes: AtomicU64,
}

/// Write transactions committed so far and the writes they held.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct BatchCounts {
    /// Transactions committed.
    pub batches: u64,
    /// Writes in them (successful or rolled back to their savepoint).
    pub writes: u64,
}

/// While this lives, the writer runs nothing; writes queue up and go out together after it is
/// dropped. See [`Sqlite::hold_writes`].
#[must_use = "writes resume when the hold is dropped"]
pub struct WriteHold {
    _release: Option<mpsc::Sender<()>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding these locks cannot leave the data half-changed (a Vec push/pop, a
    // connection between statements), so a poisoned lock is still usable.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl Sqlite {
    /// Checks the URL; connects on [`Sqlite::migrate`].
    pub fn new(url: &str) -> anyhow::Result<Self> {
        Ok(Self {
            target: Target::parse(url)?,
            readers: Mutex::new(Vec::new()),
            writer: OnceLock::new(),
            counts: Arc::default(),
        })
    }

    /// Opens the writing connection, applies pending migrations on it and starts the writer thread.
    pub async fn migrate(self: Arc<Self>) -> anyhow::Result<()> {
        if self.writer.get().is_some() {
            return Ok(());
        }
        let db = self.clone();
        tokio::task::spawn_blocking(move || db.start_writer())
            .await
            .context("the SQLite migration task failed")?
    }

    fn start_writer(&self) -> anyhow::Result<()> {
        let conn = match self.open(true) {
            Ok(conn) => conn,
            Err(err) if err.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy) => {
                let file = match &self.target {
                    Target::File { path, .. } => path.display().to_string(),
                    Target::Memory => ":memory:".to_owned(),
                };
                bail!(
                    "the SQLite file {file} is in use by another process (another backend on the same file?): \
                     one process owns it at a time; this one waits for that one to stop"
                );
            }
            Err(err) => return Err(anyhow::Error::new(err).context("opening the SQLite database for writing")),
        };
        migrate(&conn)?;
        let conn = Arc::new(Mutex::new(conn));
        let (queue, inbox) = mpsc::channel();
        let queued = Arc::new(AtomicUsize::new(0));
        let thread = {
            let (conn, queued, counts) = (conn.clone(), queued.clone(), self.counts.clone());
            std::thread::Builder::new()
                .name("sqlite-writer".to_owned())
                .spawn(move || write_loop(&conn, &inbox, &queued, &counts))
                .context("starting the SQLite writer thread")?
        };
        let shared = (self.target == Target::Memory).then_some(conn);
        let writer = Writer {
            queue,
            queued,
            thread: Mutex::new(Some(thread)),
            shared,
        };
        if self.writer.set(writer).is_err() {
            bail!("the SQLite writer was started twice");
        }
        Ok(())
    }

    /// A connection with this project's settings. The writer's: WAL, so readers never wait for
    /// it, and `synchronous=FULL`, so a commit is on disk (the WAL fsynced) before it returns and
    /// an acknowledged write survives a power cut. Readers' are read-only.
    fn open(&self, writer: bool) -> rusqlite::Result<Connection> {
        let conn = match &self.target {
            Target::Memory => Connection::open_in_memory()?,
            Target::File {
                path,
                mode: Mode::ReadOnly,
            } => Connection::open_with_flags(path, self.target.flags(writer))?,
            Target::File { path, .. } => {
                Connection::open_with_flags_and_vfs(path, self.target.flags(writer), OWNER_VFS)?
            }
        };
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        // Plans that do not depend on bound values. Without this, binding a value that the plan
        // looked at (a list page's LIMIT, for one) expires the cached statement, and SQLite
        // parses and plans it again on the next step: measured, every list request did.
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        if writer {
            let wants_wal = matches!(self.target, Target::File { mode, .. } if mode != Mode::ReadOnly);
            if wants_wal {
                let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
                if !mode.eq_ignore_ascii_case("wal") {
                    return Err(rusqlite::Error::InvalidParameterName(format!(
                        "the database refused WAL mode (journal_mode is {mode})"
                    )));
                }
            }
            conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;")?;
        } else {
            conn.execute_batch("PRAGMA query_only = ON;")?;
        }
        Ok(conn)
    }

    fn writer(&self) -> ApiResult<&Writer> {
        self.writer.get().ok_or_else(|| ApiError::Unavailable {
            code: "not_ready",
            message: "the database is not ready yet; try again shortly".to_owned(),
        })
    }

    /// Runs `read` on a read-only connection, here and now (see the module docs).
    pub fn read<T>(&self, read: impl FnOnce(&Connection) -> ApiResult<T>) -> ApiResult<T> {
        if let Some(shared) = self.writer.get().and_then(|w| w.shared.as_ref()) {
            return read(&lock(shared));
        }
        let idle = lock(&self.readers).pop();
        let conn = match idle {
            Some(conn) => conn,
            None => self.open(false)?,
        };
        let result = read(&conn);
        let mut idle = lock(&self.readers);
        if idle.len() < MAX_IDLE_READERS {
            idle.push(conn);
        }
        result
    }

    /// Queues `write` for the writer thread and waits until its batch is committed (or it failed).
    pub async fn write<T: Send + 'static>(
        &self,
        write: impl FnOnce(&Connection) -> ApiResult<T> + Send + 'static,
    ) -> ApiResult<T> {
        let writer = self.writer()?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |conn| {
            let result = write(conn);
            let succeeded = result.is_ok();
            let deliver: Deliver = Box::new(move |committed| {
                let answer = match result {
                    Ok(_) if !committed => Err(ApiError::Unavailable {
                        code: "database_unavailable",
                        message: "the write could not be committed; try again".to_owned(),
                    }),
                    other => other,
                };
                // The caller may have gone (client disconnected); the write stands regardless.
                let _ = tx.send(answer);
            });
            (succeeded, deliver)
        });
        writer.queued.fetch_add(1, Ordering::SeqCst);
        if writer.queue.send(Message::Write(job)).is_err() {
            writer.queued.fetch_sub(1, Ordering::SeqCst);
            return Err(stopped());
        }
        rx.await.map_err(|_| stopped())?
    }

    /// A trivial query, to prove the database answers.
    pub fn ping(&self) -> anyhow::Result<()> {
        self.read(|conn| Ok(conn.query_row("SELECT 1", [], |_| Ok(()))?))
            .map_err(|err| anyhow::anyhow!("{err}"))
    }

    /// See [`crate::db::Db::hold_writes`].
    pub fn hold_writes(&self) -> WriteHold {
        let Some(writer) = self.writer.get() else {
            return WriteHold { _release: None };
        };
        let (release, held) = mpsc::channel();
        let _ = writer.queue.send(Message::Hold(held));
        WriteHold {
            _release: Some(release),
        }
    }

    /// Writes waiting in the queue.
    pub fn queued_writes(&self) -> usize {
        self.writer.get().map_or(0, |w| w.queued.load(Ordering::SeqCst))
    }

    /// Batches committed so far.
    pub fn batch_counts(&self) -> BatchCounts {
        BatchCounts {
            batches: self.counts.batches.load(Ordering::SeqCst),
            writes: self.counts.writes.load(Ordering::SeqCst),
        }
    }

    /// Lets the writer finish what is queued, stops it and closes every connection.
    pub async fn close(self: Arc<Self>) {
        if let Some(writer) = self.writer.get() {
            let _ = writer.queue.send(Message::Stop);
            let thread = lock(&writer.thread).take();
            if let Some(thread) = thread {
                let _ = tokio::task::spawn_blocking(move || thread.join()).await;
            }
        }
        lock(&self.readers).clear();
    }
}

fn stopped() -> ApiError {
    ApiError::Unavailable {
        code: "database_unavailable",
        message: "the database could not take the write right now; try again shortly".to_owned(),
    }
}

/// The writer thread: waits for a write, takes every write queued behind it, commits them as one
/// batch, answers each; until [`Message::Stop`] or every sender is gone.
fn write_loop(conn: &Mutex<Connection>, inbox: &mpsc::Receiver<Message>, queued: &AtomicUsize, counts: &Counters) {
    let mut batch: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    let mut stop = false;
    while !stop {
        let Ok(first) = inbox.recv() else { break };
        let mut next = Some(first);
        while let Some(message) = next.take() {
            match message {
                Message::Write(job) => batch.push(job),
                // Held: queue nothing new into this batch until released, then keep draining.
                Message::Hold(release) => {
                    if !batch.is_empty() {
                        commit_batch(&lock(conn), &mut batch, queued, counts);
                    }
                    let _ = release.recv();
                }
                Message::Stop => stop = true,
            }
            if batch.len() < MAX_BATCH && !stop {
                next = inbox.try_recv().ok();
            }
        }
        if !batch.is_empty() {
            commit_batch(&lock(conn), &mut batch, queued, counts);
        }
    }
}

/// Runs the batch's writes in one transaction, each in its own savepoint, commits once and
/// answers each write.
fn commit_batch(conn: &Connection, batch: &mut Vec<Job>, queued: &AtomicUsize, counts: &Counters) {
    let jobs = std::mem::take(batch);
    queued.fetch_sub(jobs.len(), Ordering::SeqCst);
    let count = jobs.len() as u64;
    if let Err(err) = conn.execute_batch("BEGIN IMMEDIATE") {
        tracing::error!(error = %err, "SQLite: cannot begin a write transaction");
        // Each write is answered "not committed" without running.
        return;
    }
    let mut answers: Vec<Deliver> = Vec::with_capacity(jobs.len());
    let mut broken = None;
    for job in jobs {
        if broken.is_some() {
            // Dropping the job drops its reply channel: the caller gets a 503.
            continue;
        }
        if let Err(err) = savepoint(conn, "SAVEPOINT write") {
            broken = Some(err);
            continue;
        }
        let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| job(conn)));
        let succeeded = match outcome {
            Ok((succeeded, deliver)) => {
                answers.push(deliver);
                succeeded
            }
            Err(_) => {
                tracing::error!("SQLite: a write panicked; it is rolled back alone");
                false
            }
        };
        let end = if succeeded {
            savepoint(conn, "RELEASE write")
        } else {
            savepoint(conn, "ROLLBACK TO write").and_then(|()| savepoint(conn, "RELEASE write"))
        };
        if let Err(err) = end {
            broken = Some(err);
        }
    }
    let committed = match broken {
        Some(err) => {
            tracing::error!(error = %err, "SQLite: a savepoint failed; the whole batch is rolled back");
            false
        }
        None => match conn.execute_batch("COMMIT") {
            Ok(()) => true,
            Err(err) => {
                tracing::error!(error = %err, writes = count, "SQLite: commit failed; no write of the batch is acknowledged");
                false
            }
        },
    };
    if !committed && !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    if committed {
        counts.batches.fetch_add(1, Ordering::SeqCst);
        counts.writes.fetch_add(count, Ordering::SeqCst);
    }
    for answer in answers {
        answer(committed);
    }
}

fn savepoint(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(drop)
}

/// Applies the migrations newer than the database's `user_version`, each in its own transaction.
/// Databases created by earlier versions (sqlx's migrator, which kept a `_sqlx_migrations`
/// table) are taken to be at the version that table records.
fn migrate(conn: &Connection) -> anyhow::Result<()> {
    let mut version: i64 = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    if version == 0 {
        let has_sqlx_table = conn
            .query_row(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
                [],
                |_| Ok(()),
            )
            .optional()?
            .is_some();
        if has_sqlx_table {
            version = conn.query_row(
                "SELECT COALESCE(MAX(version), 0) FROM _sqlx_migrations WHERE success",
                [],
                |row| row.get(0),
            )?;
            conn.pragma_update(None, "user_version", version)?;
        }
    }
    for (number, sql) in MIGRATIONS.iter().filter(|(number, _)| *number > version) {
        let tx = conn.unchecked_transaction()?;
        tx.execute_batch(sql)
            .with_context(|| format!("applying SQLite migration {number}"))?;
        tx.pragma_update(None, "user_version", number)?;
        tx.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_a_file_and_how_to_open_it() {
        let file = |path: &str, mode| Target::File {
            path: PathBuf::from(path),
            mode,
        };
        assert_eq!(
            Target::parse("sqlite://todo.db").unwrap(),
            file("todo.db", Mode::ReadWriteCreate)
        );
        assert_eq!(
            Target::parse("sqlite:///data/todo.db").unwrap(),
            file("/data/todo.db", Mode::ReadWriteCreate)
        );
        assert_eq!(
            Target::parse("sqlite://todo.db?mode=ro").unwrap(),
            file("todo.db", Mode::ReadOnly)
        );
        assert_eq!(Target::parse("sqlite::memory:").unwrap(), Target::Memory);
        assert_eq!(Target::parse("sqlite://x.db?mode=memory").unwrap(), Target::Memory);
        let err = Target::parse("sqlite://todo.db?cache=shared").unwrap_err().to_string();
        assert!(err.contains("cache=shared") && err.contains("mode=ro"), "{err}");
        assert!(Target::parse("sqlite://").is_err());
    }

    #[test]
    fn the_tags_column_is_filled_from_task_tags_in_position_order() {
        let conn = Connection::open_in_memory().unwrap();
        for (_, sql) in MIGRATIONS.iter().filter(|(number, _)| *number < 5) {
            conn.execute_batch(sql).unwrap();
        }
        conn.pragma_update(None, "user_version", 4).unwrap();
        // Inserted out of order, and unlike the (task_id, tag) key's order.
        conn.execute_batch(
            "INSERT INTO users (id, email, password_hash, created_at) VALUES (1, 'a@example.com', 'x', 0);
             INSERT INTO tasks (id, user_id, title, created_at, updated_at) VALUES (1, 1, 'tagged', 0, 0), (2, 1, 'bare', 0, 0);
             INSERT INTO task_tags (task_id, position, tag) VALUES (1, 1, 'zeta'), (1, 0, 'alpha'), (1, 2, 'mid');",
        )
        .unwrap();
        migrate(&conn).unwrap();
        let mut select = conn.prepare("SELECT tags FROM tasks ORDER BY id").unwrap();
        let tags: Vec<String> = select
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(tags, ["alpha,zeta,mid", ""]);
    }

    fn writer_db() -> (tempfile::TempDir, Arc<Sqlite>) {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(Sqlite::new(&format!("sqlite://{}/t.db", dir.path().display())).unwrap());
        db.start_writer().unwrap();
        (dir, db)
    }

    #[test]
    fn the_writer_commits_to_disk_and_readers_cannot_write() {
        let (_dir, db) = writer_db();
        let conn = db.open(true).unwrap();
        let sync: i64 = conn.query_row("PRAGMA synchronous", [], |r| r.get(0)).unwrap();
        assert_eq!(sync, 2, "synchronous=FULL");
        let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
        assert_eq!(mode, "wal");
        let err = db
            .read(|c| Ok(c.execute("DELETE FROM users", [])?))
            .unwrap_err()
            .to_string();
        assert!(!err.is_empty());
    }

    #[test]
    fn migrations_run_once_and_adopt_databases_made_by_sqlx() {
        let conn = Connection::open_in_memory().unwrap();
        migrate(&conn).unwrap();
        migrate(&conn).unwrap();
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
        assert_eq!(version, MIGRATIONS.last().unwrap().0);

        // A database left by the sqlx migrator: schema in place, version in _sqlx_migrations.
        let old = Connection::open_in_memory().unwrap();
        old.execute_batch(MIGRATIONS[0].1).unwrap();
        old.execute_batch(
            "CREATE TABLE _sqlx_migrations (version BIGINT PRIMARY KEY, success BOOLEAN NOT NULL);
             INSERT INTO _sqlx_migrations VALUES (1, TRUE);",
        )
        .unwrap();
        migrate(&old).unwrap();
        let version: i64 = old.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
        assert_eq!(
            version,
            MIGRATIONS.last().unwrap().0,
            "adopted at 1, not re-applied (which would fail: tables exist), then migrated on"
        );
    }

    #[test]
    fn migration_6_counts_the_tasks_already_there_and_keeps_counting() {
        let conn = Connection::open_in_memory().unwrap();
        for (_, sql) in MIGRATIONS.iter().filter(|(number, _)| *number < 6) {
            conn.execute_batch(sql).unwrap();
        }
        conn.pragma_update(None, "user_version", 5).unwrap();
        conn.execute_batch(
            "INSERT INTO users (id, email, password_hash, created_at) VALUES (1, 'a@example.com', 'x', 0), (2, 'b@example.com', 'x', 0);
             INSERT INTO tasks (user_id, title, priority, created_at, updated_at) VALUES (1, 'a', 'low', 0, 0), (1, 'b', 'low', 0, 0);",
        )
        .unwrap();
        migrate(&conn).unwrap();
        let counts = |conn: &Connection| -> Vec<i64> {
            let mut select = conn.prepare("SELECT task_count FROM users ORDER BY id").unwrap();
            select
                .query_map([], |row| row.get(0))
                .unwrap()
                .map(Result::unwrap)
                .collect()
        };
        assert_eq!(counts(&conn), [2, 0]);
        conn.execute_batch(
            "INSERT INTO tasks (user_id, title, priority, created_at, updated_at) VALUES (2, 'c', 'low', 0, 0), (2, 'd', 'low', 0, 0);
             DELETE FROM tasks WHERE title = 'a';",
        )
        .unwrap();
        assert_eq!(counts(&conn), [1, 2]);
    }
}
