//! Connections for PostgreSQL's busiest read, a list page, kept outside sqlx's pool.
//!
//! sqlx's pool tests every connection given back to it: it sends a Sync and waits for the
//! server's answer, on a task of its own (sqlx-core 0.9, `Floating::return_to_pool`), so each
//! query costs a second round trip. The pool does that because a query whose future was dropped
//! midway (a client that hung up) leaves its connection in an unknown state. Here a connection
//! goes back only through [`Reader::done`], after its query ran to the end; one dropped on the
//! way (cancelled, or failed) is closed instead. As in the pool, a connection idle for long, or
//! idle since a query found its connection cut, is pinged before use (a server restart or
//! failover may have ended it) and replaced when that fails (see [`needs_ping`]).

use std::{
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, Instant},
};

use sqlx::{Connection, PgConnection, postgres::PgConnectOptions};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

use super::postgres::needs_ping;

/// The connections, at most `size` of them, opened as they are first needed.
#[derive(Debug)]
pub struct Readers {
    options: PgConnectOptions,
    slots: Arc<Semaphore>,
    idle: Mutex<Vec<Idle>>,
    acquire_timeout: Duration,
    size: u32,
    /// Signalled each time a reader is given back or closed.
    freed: Notify,
}

#[derive(Debug)]
struct Idle {
    conn: PgConnection,
    since: Instant,
}

/// One connection, for one query (or one batch of them).
#[derive(Debug)]
pub struct Reader {
    conn: Option<PgConnection>,
    readers: Arc<Readers>,
    slot: Option<OwnedSemaphorePermit>,
}

impl Drop for Reader {
    fn drop(&mut self) {
        drop(self.slot.take());
        self.readers.freed.notify_one();
    }
}

impl Readers {
    pub fn new(options: PgConnectOptions, size: u32, acquire_timeout: Duration) -> Self {
        Self {
            options,
            slots: Arc::new(Semaphore::new(size as usize)),
            size,
            idle: Mutex::new(Vec::new()),
            acquire_timeout,
            freed: Notify::new(),
        }
    }

    /// A connection: an idle one (pinged first when idle for a while) or a new one. Waits for a
    /// free slot up to the acquire timeout, as the pool does, and fails as it does.
    pub async fn get(self: &Arc<Self>) -> Result<Reader, sqlx::Error> {
        tokio::time::timeout(self.acquire_timeout, self.connection())
            .await
            .unwrap_or(Err(sqlx::Error::PoolTimedOut))
    }

    /// A connection if a slot is free now, without waiting for one (`None` otherwise).
    pub async fn try_get(self: &Arc<Self>) -> Result<Option<Reader>, sqlx::Error> {
        let Ok(slot) = self.slots.clone().try_acquire_owned() else {
            return Ok(None);
        };
        tokio::time::timeout(self.acquire_timeout, self.connect(slot))
            .await
            .unwrap_or(Err(sqlx::Error::PoolTimedOut))
            .map(Some)
    }

    /// Every slot, waiting for the connections in use: while the hold lives, no page is read.
    /// For tests of what queues meanwhile.
    pub async fn hold(&self) -> OwnedSemaphorePermit {
        self.slots
            .clone()
            .acquire_many_owned(self.size)
            .await
            .expect("the slots are closed only at shutdown")
    }

    async fn connection(self: &Arc<Self>) -> Result<Reader, sqlx::Error> {
        let slot = self
            .slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| sqlx::Error::PoolClosed)?;
        self.connect(slot).await
    }

    async fn connect(self: &Arc<Self>, slot: OwnedSemaphorePermit) -> Result<Reader, sqlx::Error> {
        loop {
            let idle = self.idle().pop();
            let conn = match idle {
                Some(idle) if !needs_ping(idle.since.elapsed()) => idle.conn,
                Some(mut idle) => match idle.conn.ping().await {
                    Ok(()) => idle.conn,
                    // Ended meanwhile: try the next idle one, or open a new one.
                    Err(_) => continue,
                },
                None => PgConnection::connect_with(&self.options).await?,
            };
            return Ok(Reader {
                conn: Some(conn),
                readers: self.clone(),
                slot: Some(slot),
            });
        }
    }

    /// How many readers are in use.
    pub fn busy(&self) -> usize {
        (self.size as usize).saturating_sub(self.slots.available_permits())
    }

    /// Waits until no reader is in use, up to `deadline`.
    pub async fn all_idle_by(&self, deadline: tokio::time::Instant) {
        loop {
            let freed = self.freed.notified();
            if self.busy() == 0 {
                return;
            }
            if tokio::time::timeout_at(deadline, freed).await.is_err() {
                return;
            }
        }
    }

    /// Closes the idle connections and refuses new ones (shutdown).
    pub async fn close(&self) {
        self.slots.close();
        let idle = std::mem::take(&mut *self.idle());
        for idle in idle {
            let _ = idle.conn.close().await;
        }
    }

    /// How many connections are idle (for tests).
    pub fn idle_count(&self) -> usize {
        self.idle().len()
    }

    fn idle(&self) -> MutexGuard<'_, Vec<Idle>> {
        self.idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Reader {
    pub fn conn(&mut self) -> &mut PgConnection {
        self.conn
            .as_mut()
            .expect("a reader holds its connection until it is done")
    }

    /// Gives the connection back: its query ran to the end, so it is ready for the next.
    pub fn done(mut self) {
        if let Some(conn) = self.conn.take()
            && !self.readers.slots.is_closed()
        {
            self.readers.idle().push(Idle {
                conn,
                since: Instant::now(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use sqlx::{Connection, PgConnection};
    use todo_service::contract::DEFAULT_TEST_DATABASE_URL;

    use super::*;

    fn url() -> String {
        std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_TEST_DATABASE_URL.to_owned())
    }

    fn readers(size: u32, acquire_timeout: Duration) -> Arc<Readers> {
        let options: PgConnectOptions = url().parse().unwrap();
        Arc::new(Readers::new(options, size, acquire_timeout))
    }

    async fn backend_pid(reader: &mut Reader) -> i32 {
        sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(reader.conn())
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_connection_given_back_is_used_again() {
        let readers = readers(2, Duration::from_secs(5));
        let mut reader = readers.get().await.unwrap();
        let pid = backend_pid(&mut reader).await;
        assert_eq!(readers.idle_count(), 0);
        reader.done();
        assert_eq!(readers.idle_count(), 1);
        let mut reader = readers.get().await.unwrap();
        assert_eq!(backend_pid(&mut reader).await, pid);
        reader.done();
        readers.close().await;
    }

    #[tokio::test]
    async fn a_connection_whose_query_was_dropped_midway_is_closed_not_reused() {
        let readers = readers(1, Duration::from_secs(5));
        let mut reader = readers.get().await.unwrap();
        let pid = backend_pid(&mut reader).await;
        // A client hung up while its query ran: the future is dropped mid-query.
        let cut = tokio::time::timeout(
            Duration::from_millis(100),
            sqlx::query("SELECT pg_sleep(10)").execute(reader.conn()),
        )
        .await;
        assert!(cut.is_err(), "the query should still have been running");
        drop(reader);
        assert_eq!(readers.idle_count(), 0, "a connection in an unknown state went back");
        // The slot is free again, and the next query runs on a new connection.
        let mut reader = readers.get().await.unwrap();
        assert_ne!(backend_pid(&mut reader).await, pid);
        let one: i32 = sqlx::query_scalar("SELECT 1").fetch_one(reader.conn()).await.unwrap();
        assert_eq!(one, 1);
        reader.done();
        readers.close().await;
    }

    #[tokio::test]
    async fn no_more_connections_than_slots_and_a_wait_that_ends() {
        let readers = readers(2, Duration::from_millis(200));
        let first = readers.get().await.unwrap();
        let second = readers.get().await.unwrap();
        match readers.get().await {
            Err(sqlx::Error::PoolTimedOut) => {}
            other => panic!("a third connection while two are out: {other:?}"),
        }
        first.done();
        let third = readers.get().await.unwrap();
        assert_eq!(readers.idle_count(), 0);
        third.done();
        second.done();
        assert_eq!(readers.idle_count(), 2);
        readers.close().await;
        assert_eq!(readers.idle_count(), 0);
        match readers.get().await {
            Err(sqlx::Error::PoolClosed) => {}
            other => panic!("a connection after close: {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_connection_the_server_ended_while_idle_is_replaced() {
        let readers = readers(1, Duration::from_secs(5));
        let mut reader = readers.get().await.unwrap();
        let pid = backend_pid(&mut reader).await;
        reader.done();
        let mut admin = PgConnection::connect(&url()).await.unwrap();
        let ended: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1)")
            .bind(pid)
            .fetch_one(&mut admin)
            .await
            .unwrap();
        assert!(ended);
        // Idle past the threshold, so it is pinged before use, found dead and replaced.
        tokio::time::sleep(Duration::from_millis(1200)).await;
        let mut reader = readers.get().await.unwrap();
        assert_ne!(backend_pid(&mut reader).await, pid);
        reader.done();
        readers.close().await;
    }
}
