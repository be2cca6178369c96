//! PostgreSQL through sqlx's native driver: a `PgPool` whose connections prepare each statement
//! once and keep it (sqlx's per-connection statement cache), list readers beside it (up to two
//! connections, see [`super::pg_readers`]) with the queue of the pages waiting for them, the
//! migrations, and the queue that sends concurrent task creations to the server together.
//!
//! Creating a task is the busiest write. Each one alone is a statement and a commit (a WAL flush)
//! of its own; instead, a create joins a queue, and one task takes everything queued into a
//! single statement and commit (one batch at a time, [`BATCHES_IN_FLIGHT`], so while it runs, the
//! next gathers). Nothing waits for company: a create that finds no other waiting and a
//! slot free runs at once, where it is. Each create is
//! answered only after its batch's commit returned (`synchronous_commit` as the server has it).

use std::{
    borrow::Cow,
    str::FromStr,
    sync::{
        Arc, OnceLock,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::Context;
use sqlx::{
    Connection, PgPool, SqlStr,
    migrate::{Migration, MigrationType, Migrator},
    postgres::{PgConnectOptions, PgPoolOptions, PgSslMode},
};

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use super::{
    pg_readers::{Reader, Readers},
    sqlite::BatchCounts,
};
use crate::{
    config::redact_url,
    tasks::postgres::{CreateJob, ListJob},
};

/// Statements kept prepared per connection: every shape of the list query fits.
const STATEMENT_CACHE: usize = 256;
/// A connection idle for longer than this is pinged before it is handed out (a server restart or
/// failover may have ended it meanwhile); one in steady use is not. sqlx's default pings before
/// every acquire: a round trip per request that cost a list request a quarter of the backend's
/// CPU time (perf, 20-row page) and the server as much again.
const PING_WHEN_IDLE_FOR: Duration = Duration::from_secs(1);
/// When a query last found its connection cut (see [`note_connection_cut`]): milliseconds since
/// [`clock`]'s start, 0 for never. One per process: a cut seen on one database only costs the
/// others' connections a ping each.
static CUT_AT: AtomicU64 = AtomicU64::new(0);

/// Milliseconds since the first call, never 0.
fn clock() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    u64::try_from(START.get_or_init(Instant::now).elapsed().as_millis()).unwrap_or(u64::MAX) + 1
}

/// Records that a query found its connection cut (a restart, a failover, a database closed to
/// connections): the server has most likely cut the idle ones too, so each connection idle since
/// then is pinged before its next use (and replaced if that fails), however short its idleness.
pub fn note_connection_cut() {
    CUT_AT.store(clock(), Ordering::Relaxed);
}

/// Whether a connection idle for `idle_for` is pinged before use: idle for long, or idle since a
/// query found its connection cut.
pub(super) fn needs_ping(idle_for: Duration) -> bool {
    if idle_for > PING_WHEN_IDLE_FOR {
        return true;
    }
    let cut_at = CUT_AT.load(Ordering::Relaxed);
    let idle_ms = u64::try_from(idle_for.as_millis()).unwrap_or(u64::MAX);
    // One millisecond more, as both clocks round down.
    cut_at != 0 && clock().saturating_sub(cut_at) <= idle_ms.saturating_add(1)
}

/// How long a request waits for a connection before it gets a 503.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);
/// Batches of creates running at once; while they run, the next one gathers. One: every batch
/// updates its users' kept task counts (migration 6), so a second batch sharing a user waits for
/// the first's commit anyway, and waited holding a connection with a smaller batch. Measured with
/// two and with one (16 connections creating, release build): one user 6.4-7.1k creates/s and
/// 8.3-10.8k; four users 6.8k and 9.6-10.6k.
pub const BATCHES_IN_FLIGHT: u32 = 1;
/// Most creates in one batch (one statement).
const MAX_BATCH: usize = 64;
/// Most connections that read list pages (see [`Postgres::connect_lazy`]).
const LIST_CONNECTIONS: u32 = 2;
/// Most list pages read by one statement.
const MAX_LIST_BATCH: usize = 64;
/// How long list pages that find a reader busy wait for it to finish, gathering, before they take
/// another: a statement costs the machine far more than a page in it (a round trip that wakes
/// the server and then the backend, a portal, a snapshot), so two half-size statements cost more
/// than one whole one. Measured (2 cores, release build, oha -c16 on a list of 20, CPU time from
/// /proc, six runs each way taken in turn): taking the free reader at once, 0.33 statements per
/// page, a median of ~141 µs of the machine's CPU per page and 13.0k req/s; waiting up to
/// 300 µs, 0.15-0.17 statements per page, ~116 µs and 14.4k req/s (1 ms: no better). The
/// bench's open-loop list p99 went from 1.2-1.4 to 1.8-2.0 ms. The wait is bounded, so a slow
/// page holds the others up by no more than this.
const LIST_GATHER: Duration = Duration::from_micros(300);

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
            migration(
                6,
                "task counts",
                include_str!("../../migrations/postgres/0006_task_counts.sql"),
            ),
            migration(
                7,
                "task counts locked in order",
                include_str!("../../migrations/postgres/0007_task_counts_locked_in_order.sql"),
            ),
        ]),
        ..Migrator::DEFAULT
    }
}

/// A PostgreSQL database; cheap to clone.
#[derive(Clone, Debug)]
pub struct Postgres {
    pool: PgPool,
    /// Up to two connections, for list pages (see [`super::pg_readers`]); none when there is
    /// only one connection.
    readers: Option<Arc<Readers>>,
    creates: Arc<Creates>,
    /// List pages waiting for a reader, read together once one is free.
    lists: Arc<Queue<ListJob>>,
    /// See [`LIST_GATHER`].
    list_gather: Duration,
}

/// The queue of task creations and the slots of the batches in flight.
#[derive(Debug)]
struct Creates {
    queue: Queue<CreateJob>,
    slots: Arc<Semaphore>,
}

impl Default for Creates {
    fn default() -> Self {
        Self {
            queue: Queue::default(),
            slots: Arc::new(Semaphore::new(BATCHES_IN_FLIGHT as usize)),
        }
    }
}

/// Jobs that go to the server together: a channel to the task that batches them (started with
/// the first job) and the counters that task shares.
struct Queue<J> {
    sender: OnceLock<mpsc::UnboundedSender<J>>,
    counts: Arc<Counts>,
}

impl<J> std::fmt::Debug for Queue<J> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue")
            .field("counts", &self.counts)
            .finish_non_exhaustive()
    }
}

impl<J> Default for Queue<J> {
    fn default() -> Self {
        Self {
            sender: OnceLock::new(),
            counts: Arc::default(),
        }
    }
}

impl<J> Queue<J> {
    /// Queues `job`, starting the batching task on the first; gives the job back when the task
    /// is gone.
    fn send(&self, job: J, start: impl FnOnce(Arc<Counts>, mpsc::UnboundedReceiver<J>)) -> Option<J> {
        let sender = self.sender.get_or_init(|| {
            let (sender, inbox) = mpsc::unbounded_channel();
            start(self.counts.clone(), inbox);
            sender
        });
        self.counts.queued.fetch_add(1, Ordering::SeqCst);
        let returned = sender.send(job).err()?;
        self.counts.queued.fetch_sub(1, Ordering::SeqCst);
        Some(returned.0)
    }

    fn is_empty(&self) -> bool {
        self.counts.queued.load(Ordering::SeqCst) == 0
    }
}

/// What a queue's batching task shares with the handles.
#[derive(Debug, Default)]
struct Counts {
    queued: AtomicUsize,
    batches: AtomicU64,
    jobs: AtomicU64,
}

impl Counts {
    fn record(&self, statements: u64, jobs: u64) {
        self.batches.fetch_add(statements, Ordering::SeqCst);
        self.jobs.fetch_add(jobs, Ordering::SeqCst);
    }

    fn get(&self) -> BatchCounts {
        BatchCounts {
            batches: self.batches.load(Ordering::SeqCst),
            writes: self.jobs.load(Ordering::SeqCst),
        }
    }

    /// `first` and every job queued behind it, up to `max`, taken off the queue.
    fn drain<J>(&self, first: J, inbox: &mut mpsc::UnboundedReceiver<J>, max: usize) -> Vec<J> {
        let mut batch = vec![first];
        while batch.len() < max {
            match inbox.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        self.queued.fetch_sub(batch.len(), Ordering::SeqCst);
        batch
    }
}

/// The statements that read queued list pages, and the pages they read.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ListBatches {
    pub statements: u64,
    pub pages: u64,
}

/// While this lives, no batch of creates starts; they queue and go out together once it is
/// dropped. See [`Postgres::hold_writes`].
#[must_use = "writes resume when the hold is dropped"]
#[derive(Debug)]
pub struct WriteHold {
    _slots: OwnedSemaphorePermit,
}

impl Postgres {
    /// A pool that connects on first use, with a statement timeout on every connection so a
    /// stuck query cannot hold a connection forever.
    pub fn connect_lazy(url: &str, max_connections: u32, statement_timeout: Duration) -> anyhow::Result<Self> {
        let options = PgConnectOptions::from_str(url)
            .with_context(|| format!("DATABASE_URL {} is not a valid PostgreSQL URL", redact_url(url)))?;
        let ssl_mode = std::env::var("PGSSLMODE").ok();
        let options = without_needless_tls(options, url, ssl_mode.as_deref())
            .statement_cache_capacity(STATEMENT_CACHE)
            .options([("statement_timeout", statement_timeout.as_millis().to_string())]);
        // The connections are shared out: up to two read list pages, the rest do everything else.
        // Few on purpose: pages that find one busy queue (and wait for it, up to `LIST_GATHER`),
        // and the next free one reads them together (see `read_pages`), a statement per batch
        // rather than per page. Measured on 2 cores, server on the same machine (list of 20, oha
        // -c16 -z8s, three runs each): five list connections 9.1-10.7k req/s, two 11.5-12.0k,
        // one 12.3-12.5k; one is not kept, as a slow page would then hold up every other.
        let list_connections = (max_connections / 2).min(LIST_CONNECTIONS);
        // The list statement's plan does not depend on its parameter values: every user's page
        // comes from the (user_id, created_at, id) index. By default the server plans it anew on
        // every execution (without table statistics it judges the generic plan dearer than the
        // custom ones), and, taking a user's rows for few, reads them all by a bitmap and sorts
        // them rather than walking the index in order and stopping after the page. On these
        // connections only, the plan is made once and walks the index: pgbench on the statement,
        // 16 clients over TLS, 15.7k tps replanning against 29.5k planned once; the backend's
        // list, 8.9k req/s -> 11.0k planned once -> 12.6k walking the index (oha -c16 -z8s).
        let reader_options = options
            .clone()
            .options([("plan_cache_mode", "force_generic_plan"), ("enable_bitmapscan", "off")]);
        let readers =
            (list_connections > 0).then(|| Arc::new(Readers::new(reader_options, list_connections, ACQUIRE_TIMEOUT)));
        let pool = PgPoolOptions::new()
            .max_connections(max_connections - list_connections)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if needs_ping(meta.idle_for) {
                        conn.ping().await?;
                    }
                    Ok(true)
                })
            })
            .connect_lazy_with(options);
        Ok(Self {
            pool,
            readers,
            creates: Arc::default(),
            lists: Arc::default(),
            list_gather: LIST_GATHER,
        })
    }

    /// Queues a task creation for the next batch (see the module docs); gives the job back when
    /// the queue is gone.
    #[must_use = "a job given back was not queued"]
    pub(crate) fn queue_create(&self, job: CreateJob) -> Option<CreateJob> {
        let (pool, slots) = (self.pool.clone(), self.creates.slots.clone());
        self.creates.queue.send(job, |counts, inbox| {
            tokio::spawn(run_create_batches(pool, slots, counts, inbox));
        })
    }

    /// A batch slot, when one is free and no create is waiting: a create can then run at once
    /// where it is, as a batch of its own, with no hop through the queue's task (under load the
    /// queue is rarely empty, and creates batch).
    pub(crate) fn idle_slot(&self) -> Option<OwnedSemaphorePermit> {
        if !self.creates.queue.is_empty() {
            return None;
        }
        self.creates.slots.clone().try_acquire_owned().ok()
    }

    /// Counts a batch run outside the queue's task (see [`Postgres::idle_slot`]).
    pub(crate) fn record_batch(&self, statements: u64, writes: u64) {
        self.creates.queue.counts.record(statements, writes);
    }

    /// Creates queue up without being run until the returned hold is dropped, and then go out
    /// together in one batch. For tests of the batching; waits for running batches to end.
    pub async fn hold_writes(&self) -> WriteHold {
        let slots = self.creates.slots.clone();
        WriteHold {
            _slots: slots
                .acquire_many_owned(BATCHES_IN_FLIGHT)
                .await
                .expect("the batch slots are never closed"),
        }
    }

    /// Creates waiting for a batch.
    pub fn queued_writes(&self) -> usize {
        self.creates.queue.counts.queued.load(Ordering::SeqCst)
    }

    /// Batches committed so far and the creates they held.
    pub fn batch_counts(&self) -> BatchCounts {
        self.creates.queue.counts.get()
    }

    /// A list reader, when none is in use and no list page is waiting: the page is then read at
    /// once, where it is, with no hop through the queue's task. `None` when a reader is busy or
    /// pages are waiting already (then the page queues, see [`Postgres::queue_list`], and waits
    /// up to [`LIST_GATHER`] for the busy reader, gathering others).
    pub(crate) async fn idle_reader(&self) -> Result<Option<Reader>, sqlx::Error> {
        match &self.readers {
            Some(readers) if self.lists.is_empty() && readers.busy() == 0 => readers.try_get().await,
            _ => Ok(None),
        }
    }

    /// Queues a list page for the next reader that frees up, which reads every page queued by
    /// then together (see [`crate::tasks::postgres::read_pages`]); gives the job back when
    /// there are no readers or the queue is gone.
    #[must_use = "a job given back was not queued"]
    pub(crate) fn queue_list(&self, job: ListJob) -> Option<ListJob> {
        let Some(readers) = self.readers.clone() else {
            return Some(job);
        };
        self.lists.send(job, |counts, inbox| {
            tokio::spawn(run_list_batches(readers, self.list_gather, counts, inbox));
        })
    }

    /// List pages waiting for a reader.
    pub fn queued_lists(&self) -> usize {
        self.lists.counts.queued.load(Ordering::SeqCst)
    }

    /// What read the list pages that queued for a reader, so far.
    pub fn list_batches(&self) -> ListBatches {
        let counts = self.lists.counts.get();
        ListBatches {
            statements: counts.batches,
            pages: counts.writes,
        }
    }

    /// How long queued list pages wait for a busy reader (see [`LIST_GATHER`]); for tests, which
    /// make the wait long enough to watch.
    pub fn with_list_gather(mut self, gather: Duration) -> Self {
        self.list_gather = gather;
        self
    }

    /// List pages queue up without being read until the returned hold is dropped, and are then
    /// read together. For tests of the batching; waits for the readers in use.
    pub async fn hold_list_reads(&self) -> Option<OwnedSemaphorePermit> {
        Some(self.readers.as_ref()?.hold().await)
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

    /// The connections that read list pages (see [`super::pg_readers`]); none when there is
    /// only one connection in all.
    pub fn readers(&self) -> Option<&Arc<Readers>> {
        self.readers.as_ref()
    }

    /// Closes every connection.
    pub async fn close(&self) {
        if let Some(readers) = &self.readers {
            readers.close().await;
        }
        self.pool.close().await;
    }
}

/// `options` without TLS when nothing asked for it and it would protect nothing: the server is
/// on this machine (a loopback host: `localhost`, 127.0.0.0/8, `::1`), and neither the URL
/// (`sslmode`) nor `PGSSLMODE` names a mode, so sqlx would `prefer` TLS whenever the server offers
/// it (Debian's and many images' servers do). Traffic on the loopback interface never leaves the
/// machine, and whoever can read it can read the server's memory too; a proxy on 127.0.0.1 (a
/// cloud SQL proxy, a sidecar) encrypts onwards itself. The encryption cost both ends of every
/// list page: the machine's CPU time per page 4-12% lower without it (paired runs, oha -c16, list
/// of 20, /proc ticks). A mode written out, `prefer` too, is kept as written.
fn without_needless_tls(options: PgConnectOptions, url: &str, env_ssl_mode: Option<&str>) -> PgConnectOptions {
    let query = url.split_once('?').map_or("", |(_, query)| query);
    let named = query
        .split('&')
        .filter_map(|pair| pair.split('=').next())
        .any(|key| key == "sslmode" || key == "ssl-mode");
    if named
        || env_ssl_mode.is_some_and(|mode| !mode.is_empty())
        || !matches!(options.get_ssl_mode(), PgSslMode::Prefer)
    {
        return options;
    }
    let host = options.get_host().trim_start_matches('[').trim_end_matches(']');
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|address| address.is_loopback());
    if loopback {
        options.ssl_mode(PgSslMode::Disable)
    } else {
        options
    }
}

/// The batching task of creates: waits for a create, then for a free slot, takes every create
/// queued by then and runs them as one batch; ends when every handle is gone. It holds no slot
/// while idle, so a hold can take them all at any time.
async fn run_create_batches(
    pool: PgPool,
    slots: Arc<Semaphore>,
    counts: Arc<Counts>,
    mut inbox: mpsc::UnboundedReceiver<CreateJob>,
) {
    loop {
        let Some(first) = inbox.recv().await else { return };
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let batch = counts.drain(first, &mut inbox, MAX_BATCH);
        let (pool, counts) = (pool.clone(), counts.clone());
        tokio::spawn(async move {
            let writes = batch.len() as u64;
            let statements = crate::tasks::postgres::create_batch(&pool, batch).await;
            counts.record(statements, writes);
            drop(slot);
        });
    }
}

/// The batching task of list pages: waits for a page, then until no reader is busy (up to
/// `gather`, see [`LIST_GATHER`]), then for a reader, takes every page queued by then and reads
/// them together on that reader; ends when every handle is gone.
async fn run_list_batches(
    readers: Arc<Readers>,
    gather: Duration,
    counts: Arc<Counts>,
    mut inbox: mpsc::UnboundedReceiver<ListJob>,
) {
    loop {
        let Some(first) = inbox.recv().await else { return };
        // A reader busy: wait (bounded) for it rather than start a second statement at once.
        readers.all_idle_by(tokio::time::Instant::now() + gather).await;
        let reader = readers.get().await;
        let batch = counts.drain(first, &mut inbox, MAX_LIST_BATCH);
        let (readers, counts) = (readers.clone(), counts.clone());
        tokio::spawn(async move {
            let pages = batch.len() as u64;
            let statements = crate::tasks::postgres::read_pages(&readers, reader, batch).await;
            counts.record(statements, pages);
        });
    }
}

#[cfg(test)]
mod tests {
    use sqlx::{Connection, Executor, PgConnection, Row};
    use todo_service::contract::DEFAULT_TEST_DATABASE_URL;

    use super::*;

    /// A database of its own on the test server, dropped at the end.
    struct Scratch {
        admin: String,
        name: String,
    }

    impl Scratch {
        async fn create() -> (Scratch, String) {
            let admin = std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_TEST_DATABASE_URL.to_owned());
            let name = format!("todo_migration_{}", uuid::Uuid::new_v4().simple());
            let mut conn = PgConnection::connect(&admin)
                .await
                .unwrap_or_else(|err| panic!("PostgreSQL is needed for this test, at {admin}: {err}"));
            conn.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .await
                .unwrap();
            let (base, _) = admin.rsplit_once('/').unwrap();
            let url = format!("{base}/{name}");
            (Scratch { admin, name }, url)
        }

        async fn drop_database(self) {
            let mut conn = PgConnection::connect(&self.admin).await.unwrap();
            let drop = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
            conn.execute(sqlx::AssertSqlSafe(drop)).await.unwrap();
        }
    }

    #[test]
    fn connections_idle_since_a_cut_or_for_long_are_pinged_and_the_others_not() {
        assert!(!needs_ping(Duration::from_millis(500)));
        assert!(needs_ping(PING_WHEN_IDLE_FOR + Duration::from_millis(1)));
        note_connection_cut();
        // Idle since before the cut: maybe cut too.
        assert!(needs_ping(Duration::from_millis(500)));
        std::thread::sleep(Duration::from_millis(50));
        // Given back after the cut (it worked since): not pinged.
        assert!(!needs_ping(Duration::from_millis(10)));
        assert!(needs_ping(Duration::from_millis(60)));
    }

    #[test]
    fn tls_is_left_out_only_for_a_loopback_server_when_no_mode_is_named() {
        let mode = |url: &str, env: Option<&str>| {
            let options = PgConnectOptions::from_str(url).unwrap();
            format!("{:?}", without_needless_tls(options, url, env).get_ssl_mode())
        };
        for url in [
            "postgres://u@127.0.0.1:5432/app",
            "postgres://u@127.1.2.3/app",
            "postgres://u@localhost/app",
            "postgres://u@LOCALHOST/app?application_name=x",
            "postgres://u@[::1]:5432/app",
        ] {
            assert_eq!(mode(url, None), "Disable", "{url}");
        }
        for url in [
            "postgres://u@db.internal/app",
            "postgres://u@10.0.0.5/app",
            "postgres://u@[2001:db8::1]/app",
            "postgres://u@localhost.example.com/app",
        ] {
            assert_eq!(mode(url, None), "Prefer", "{url}");
        }
        // A mode written out is kept, `prefer` too, in the URL or the environment.
        assert_eq!(mode("postgres://u@127.0.0.1/app?sslmode=prefer", None), "Prefer");
        assert_eq!(mode("postgres://u@127.0.0.1/app?x=1&ssl-mode=require", None), "Require");
        assert_eq!(mode("postgres://u@localhost/app", Some("prefer")), "Prefer");
        assert_eq!(mode("postgres://u@localhost/app", Some("")), "Disable");
    }

    #[tokio::test]
    async fn a_loopback_server_is_reached_without_tls_unless_a_mode_is_named() {
        let url = std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_TEST_DATABASE_URL.to_owned());
        let base = url.split_once('?').map_or(url.as_str(), |(base, _)| base).to_owned();
        let host = PgConnectOptions::from_str(&base).unwrap().get_host().to_owned();
        assert!(
            host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|a| a.is_loopback()),
            "the test server is on this machine ({host})"
        );
        let tls = |url: String| async move {
            let db = Postgres::connect_lazy(&url, 4, Duration::from_secs(7)).unwrap();
            let pool: bool = sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
                .fetch_one(db.pool())
                .await
                .unwrap();
            let mut reader = db.readers().unwrap().get().await.unwrap();
            let list: bool = sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
                .fetch_one(reader.conn())
                .await
                .unwrap();
            reader.done();
            let offered: String = sqlx::query_scalar("SHOW ssl").fetch_one(db.pool()).await.unwrap();
            db.close().await;
            (pool, list, offered == "on")
        };
        let (pool, list, _) = tls(base.clone()).await;
        assert!(
            !pool && !list,
            "TLS to a loopback server: pool {pool}, list readers {list}"
        );
        // Named, `prefer` takes TLS whenever the server offers it.
        let (pool, list, offered) = tls(format!("{base}?sslmode=prefer")).await;
        assert_eq!((pool, list), (offered, offered));
    }

    #[tokio::test]
    async fn list_readers_plan_once_walking_the_index_and_keep_the_statement_timeout_and_the_pool_does_not_change() {
        let url = std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_TEST_DATABASE_URL.to_owned());
        let db = Postgres::connect_lazy(&url, 4, Duration::from_secs(7)).unwrap();
        let show = |name: &'static str| format!("SHOW {name}");
        let mut reader = db
            .readers()
            .expect("two of the connections read lists")
            .get()
            .await
            .unwrap();
        let mut settings = Vec::new();
        for name in ["plan_cache_mode", "enable_bitmapscan", "statement_timeout"] {
            let value: String = sqlx::query_scalar(sqlx::AssertSqlSafe(show(name)))
                .fetch_one(reader.conn())
                .await
                .unwrap();
            settings.push(value);
        }
        reader.done();
        assert_eq!(settings, ["force_generic_plan", "off", "7s"]);
        let pool_mode: String = sqlx::query_scalar("SHOW plan_cache_mode")
            .fetch_one(db.pool())
            .await
            .unwrap();
        assert_eq!(
            pool_mode, "auto",
            "the other statements are planned as the server decides"
        );
        db.close().await;
    }

    #[tokio::test]
    async fn migration_5_copies_each_tasks_tags_in_position_order_and_6_counts_each_users_tasks() {
        let (scratch, url) = Scratch::create().await;
        let db = Postgres::connect_lazy(&url, 2, Duration::from_secs(30)).unwrap();
        // The database as the release before migration 5 left it.
        let full = migrator();
        let before = Migrator {
            migrations: Cow::Owned(full.migrations.iter().filter(|m| m.version < 5).cloned().collect()),
            ..Migrator::DEFAULT
        };
        before.run(db.pool()).await.unwrap();
        db.pool()
            .execute(
                "INSERT INTO users (id, email, name, password_hash, created_at) OVERRIDING SYSTEM VALUE VALUES (1, 'a@example.com', 'A', 'x', 0); \
                 INSERT INTO tasks (id, user_id, title, priority, created_at, updated_at) OVERRIDING SYSTEM VALUE VALUES \
                   (1, 1, 'tagged', 'low', 0, 0), (2, 1, 'untagged', 'low', 1, 1); \
                 INSERT INTO task_tags (task_id, position, tag) VALUES (1, 1, 'alpha'), (1, 0, 'zeta'), (1, 2, 'mid');",
            )
            .await
            .unwrap();

        db.migrate().await.unwrap();
        let rows = sqlx::query("SELECT id, tags FROM tasks ORDER BY id")
            .fetch_all(db.pool())
            .await
            .unwrap();
        let tags: Vec<(i64, Vec<String>)> = rows.iter().map(|row| (row.get(0), row.get(1))).collect();
        assert_eq!(
            tags,
            [
                // By position: neither alphabetical nor the order inserted.
                (1, vec!["zeta".to_owned(), "alpha".to_owned(), "mid".to_owned()]),
                (2, vec![])
            ]
        );
        // Migration 6 counted the tasks already there, and counts on.
        let counts = |db: Postgres| async move {
            let rows = sqlx::query("SELECT task_count FROM users ORDER BY id")
                .fetch_all(db.pool())
                .await
                .unwrap();
            rows.iter().map(|row| row.get::<i64, _>(0)).collect::<Vec<_>>()
        };
        assert_eq!(counts(db.clone()).await, [2]);
        db.pool()
            .execute(
                "INSERT INTO users (id, email, name, password_hash, created_at) OVERRIDING SYSTEM VALUE VALUES (2, 'b@example.com', 'B', 'x', 0); \
                 INSERT INTO tasks (id, user_id, title, priority, created_at, updated_at) OVERRIDING SYSTEM VALUE VALUES (3, 2, 'c', 'low', 2, 2), (4, 2, 'd', 'low', 3, 3), (5, 1, 'e', 'low', 4, 4); \
                 DELETE FROM tasks WHERE id = 1;",
            )
            .await
            .unwrap();
        assert_eq!(counts(db.clone()).await, [2, 2]);
        // Run again, nothing is applied twice.
        db.migrate().await.unwrap();
        db.close().await;
        scratch.drop_database().await;
    }

    #[tokio::test]
    async fn migration_7_counts_lock_their_users_in_id_order_so_batches_sharing_users_never_deadlock() {
        const USERS: i64 = 20;
        let (scratch, url) = Scratch::create().await;
        let db = Postgres::connect_lazy(&url, 2, Duration::from_secs(30)).unwrap();
        db.migrate().await.unwrap();
        // Highest id first in the table, so that neither the table's order nor the ids' is the
        // order an update that does not sort happens to meet them in.
        db.pool()
            .execute(sqlx::AssertSqlSafe(format!(
                "INSERT INTO users (id, email, name, password_hash, created_at) OVERRIDING SYSTEM VALUE \
                 SELECT id, 'user' || id || '@example.com', 'U', 'x', 0 FROM generate_series({USERS}, 1, -1) AS id"
            )))
            .await
            .unwrap();
        let insert = |users: &[i64]| {
            let values: Vec<String> = users
                .iter()
                .map(|user| format!("({user}, 'for {user}', 'low', 0, 0)"))
                .collect();
            format!(
                "INSERT INTO tasks (user_id, title, priority, created_at, updated_at) VALUES {}",
                values.join(", ")
            )
        };
        // A first batch, for user 1, not yet committed: it holds user 1's row.
        let mut first = PgConnection::connect(&url).await.unwrap();
        first.execute("BEGIN").await.unwrap();
        first.execute(sqlx::AssertSqlSafe(insert(&[1]))).await.unwrap();
        // A second batch for every user, highest first, waits for user 1's row...
        let mut second = PgConnection::connect(&url).await.unwrap();
        let second_pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(&mut second)
            .await
            .unwrap();
        let every_user: Vec<i64> = (1..=USERS).rev().collect();
        let second_batch = tokio::spawn(async move {
            let done = second.execute(sqlx::AssertSqlSafe(insert(&every_user))).await;
            (second, done)
        });
        let mut watcher = PgConnection::connect(&url).await.unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let waiting: bool = sqlx::query_scalar(
                "SELECT wait_event_type IS NOT DISTINCT FROM 'Lock' FROM pg_stat_activity WHERE pid = $1",
            )
            .bind(second_pid)
            .fetch_one(&mut watcher)
            .await
            .unwrap();
            if waiting {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the second batch never waited for user 1's row"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // ... holding no other user's row: it locks in id order, and 1 comes first.
        let free: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM (SELECT 1 FROM users WHERE id > 1 FOR NO KEY UPDATE SKIP LOCKED) AS free",
        )
        .fetch_one(&mut watcher)
        .await
        .unwrap();
        assert_eq!(
            free,
            USERS - 1,
            "rows the waiting batch holds would deadlock the first batch's next statement"
        );
        // So the first batch can go on to another user (as its next statement, or another pod's
        // batch, might) and commit, and then the second commits: both counted.
        first.execute(sqlx::AssertSqlSafe(insert(&[USERS]))).await.unwrap();
        first.execute("COMMIT").await.unwrap();
        let (_second, done) = second_batch.await.unwrap();
        done.expect("the second batch commits once the first has");
        let counts: Vec<i64> = sqlx::query_scalar("SELECT task_count FROM users ORDER BY id")
            .fetch_all(&mut watcher)
            .await
            .unwrap();
        let mut expected = vec![1; USERS as usize];
        expected[0] = 2;
        expected[USERS as usize - 1] = 2;
        assert_eq!(counts, expected);
        db.close().await;
        scratch.drop_database().await;
    }
}
