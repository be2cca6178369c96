//! The task queries on PostgreSQL: one round trip per request where the statement can say it
//! all (creating a task with its tags, a list page with its total and tags), each statement
//! prepared once per connection by sqlx. Creates made at the same time share one statement and
//! one commit (see [`crate::db::postgres`]).

use sqlx::{PgPool, Postgres as Pg, Row, postgres::PgRow, query::Query};
use tokio::sync::oneshot;

use super::{
    Bind, ListSql, PageJson, PageWriter, Sql, Task, TaskPage, TaskRow, ValidPatch, ValidTask, not_found, page::TaskRef,
    parse_stored_priority, task_columns,
};
use crate::{
    db::{Timestamp, postgres::Postgres},
    error::{ApiError, ApiResult, account_gone},
};

impl Sql {
    fn query(&self) -> Query<'_, Pg, sqlx::postgres::PgArguments> {
        // Audited: the text is assembled only from fixed fragments of the tasks module and `$n`
        // placeholders; every value travels as a bound parameter.
        let text = sqlx::AssertSqlSafe(self.text.clone());
        self.binds.iter().fold(sqlx::query(text), |query, bind| match bind {
            Bind::Int(value) => query.bind(*value),
            Bind::Text(value) => query.bind(value.as_str()),
            Bind::Tags(tags) => query.bind(tags.as_slice()),
        })
    }
}

/// The task in the first nine columns of `row` (see [`task_columns`]).
fn task_row(row: &PgRow) -> sqlx::Result<TaskRow> {
    Ok(TaskRow {
        id: row.try_get(0)?,
        title: row.try_get(1)?,
        description: row.try_get(2)?,
        priority: row.try_get(3)?,
        due_date: row.try_get(4)?,
        completed_at: row.try_get(5)?,
        created_at: row.try_get(6)?,
        updated_at: row.try_get(7)?,
        tags: row.try_get(8)?,
    })
}

/// A task creation waiting for its batch (see [`crate::db::postgres`]).
pub(crate) struct CreateJob {
    user_id: i64,
    /// The token's id, when the session is to be checked by the insert.
    jti: Option<String>,
    new: ValidTask,
    answer: oneshot::Sender<ApiResult<Option<Task>>>,
}

/// Inserts the task unless `unrevoked` names a token that was logged out or the account is gone
/// (then `None`), together with the creates queued beside it.
pub(super) async fn create(
    db: &Postgres,
    user_id: i64,
    unrevoked: Option<&str>,
    new: ValidTask,
) -> ApiResult<Option<Task>> {
    let (answer, answered) = oneshot::channel();
    let job = CreateJob {
        user_id,
        jti: unrevoked.map(str::to_owned),
        new,
        answer,
    };
    if let Some(_slot) = db.idle_slot() {
        let created = create_one(db.pool(), &job).await;
        db.record_batch(u64::from(created.is_ok()), 1);
        return created;
    }
    if let Some(job) = db.queue_create(job) {
        return create_one(db.pool(), &job).await;
    }
    answered.await.map_err(|_| ApiError::Unavailable {
        code: "database_unavailable",
        message: "the task could not be written right now; try again shortly".to_owned(),
    })?
}

/// Runs a batch of creates as one statement and answers each. If that statement fails (an
/// account deleted in the meantime, whose foreign key then fails it), each create runs alone, so
/// a failing create fails by itself. Returns how many statements committed.
pub(crate) async fn create_batch(pool: &PgPool, batch: Vec<CreateJob>) -> u64 {
    if batch.len() > 1 {
        match insert_many(pool, &batch).await {
            Ok(rows) => {
                for (job, row) in batch.into_iter().zip(rows) {
                    let _ = job.answer.send(row.map(TaskRow::into_task).transpose());
                }
                return 1;
            }
            Err(err) => {
                tracing::warn!(error = %err, creates = batch.len(), "PostgreSQL: a batch of creates failed; each runs alone");
            }
        }
    }
    let mut committed = 0;
    for job in batch {
        let result = create_one(pool, &job).await;
        committed += u64::from(result.is_ok());
        // The caller may have gone (client disconnected); the write stands regardless.
        let _ = job.answer.send(result);
    }
    committed
}

/// One create alone: one statement, so one round trip and one implicit transaction for the
/// session check, the task and its tags. `jti = NULL` matches nothing: no token, no check.
async fn create_one(pool: &PgPool, job: &CreateJob) -> ApiResult<Option<Task>> {
    let new = &job.new;
    let row = sqlx::query(concat!(
        "WITH task AS (INSERT INTO tasks (user_id, title, description, priority, due_date, created_at, updated_at, tags) \
         SELECT $1, $2, $3, $4, $5, $6, $6, $7 \
         WHERE NOT EXISTS (SELECT 1 FROM revoked_tokens WHERE jti = $8) RETURNING ",
        task_columns!(),
        "), tags AS (INSERT INTO task_tags (task_id, position, tag) \
         SELECT task.id, given.position - 1, given.tag FROM task, unnest($7::text[]) WITH ORDINALITY AS given (tag, position)) \
         SELECT ",
        task_columns!(),
        " FROM task"
    ))
    .bind(job.user_id)
    .bind(&new.title)
    .bind(new.description.as_deref())
    .bind(new.priority.as_str())
    .bind(new.due_date.as_deref())
    .bind(new.now)
    .bind(&new.tags)
    .bind(job.jti.as_deref())
    .fetch_optional(pool)
    .await
    .map_err(|err| {
        // The account is gone (deleted after the token was issued): its foreign key says so.
        if err.as_database_error().is_some_and(|e| e.is_foreign_key_violation()) {
            account_gone()
        } else {
            err.into()
        }
    })?;
    row.map(|row| task_row(&row)?.into_task()).transpose()
}

/// Every create of the batch in one statement: the input as parallel arrays (tags comma-joined,
/// as they cannot hold commas), each row's session checked by the statement, ids drawn first so
/// each returned row finds its create again by its position. A create whose token was logged
/// out or whose account is gone gets no row (`None`).
async fn insert_many(pool: &PgPool, batch: &[CreateJob]) -> sqlx::Result<Vec<Option<TaskRow>>> {
    let n = batch.len();
    let (mut users, mut titles, mut descriptions, mut priorities) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (mut due_dates, mut nows, mut tags, mut jtis) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for job in batch {
        users.push(job.user_id);
        titles.push(job.new.title.as_str());
        descriptions.push(job.new.description.as_deref());
        priorities.push(job.new.priority.as_str());
        due_dates.push(job.new.due_date.as_deref());
        nows.push(job.new.now);
        tags.push(job.new.tags.join(","));
        jtis.push(job.jti.as_deref());
    }
    let fetched = sqlx::query(concat!(
        "WITH input AS MATERIALIZED (\
           SELECT given.position, nextval(pg_get_serial_sequence('tasks', 'id')) AS id, given.user_id, given.title, \
                  given.description, given.priority, given.due_date, given.now, string_to_array(given.tags, ',') AS tags \
           FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::text[], $8::text[]) \
                WITH ORDINALITY AS given (user_id, title, description, priority, due_date, now, tags, jti, position) \
           WHERE EXISTS (SELECT 1 FROM users WHERE users.id = given.user_id) \
             AND NOT EXISTS (SELECT 1 FROM revoked_tokens WHERE revoked_tokens.jti = given.jti)), \
         task AS (INSERT INTO tasks (id, user_id, title, description, priority, due_date, created_at, updated_at, tags) \
           OVERRIDING SYSTEM VALUE \
           SELECT id, user_id, title, description, priority, due_date, now, now, tags FROM input ORDER BY position \
           RETURNING ",
        task_columns!(),
        "), tags AS (INSERT INTO task_tags (task_id, position, tag) \
           SELECT task.id, given.position - 1, given.tag FROM task, unnest(task.tags) WITH ORDINALITY AS given (tag, position)) \
         SELECT task.*, input.position FROM task JOIN input ON input.id = task.id"
    ))
    .bind(&users)
    .bind(&titles)
    .bind(&descriptions)
    .bind(&priorities)
    .bind(&due_dates)
    .bind(&nows)
    .bind(&tags)
    .bind(&jtis)
    .fetch_all(pool)
    .await?;
    let mut rows: Vec<Option<TaskRow>> = (0..n).map(|_| None).collect();
    for row in &fetched {
        let position: i64 = row.try_get(9)?;
        let slot = usize::try_from(position - 1)
            .ok()
            .and_then(|index| rows.get_mut(index))
            .ok_or_else(|| sqlx::Error::Protocol(format!("a batch insert returned position {position} of {n}")))?;
        *slot = Some(task_row(row)?);
    }
    Ok(rows)
}

pub(super) async fn get(db: &Postgres, user_id: i64, id: i64) -> ApiResult<Task> {
    let row = sqlx::query(concat!(
        "SELECT ",
        task_columns!(),
        " FROM tasks WHERE id = $1 AND user_id = $2"
    ))
    .bind(id)
    .bind(user_id)
    .fetch_optional(db.pool())
    .await?
    .ok_or_else(|| not_found(id))?;
    task_row(&row)?.into_task()
}

pub(super) async fn update(db: &Postgres, id: i64, patch: ValidPatch) -> ApiResult<Task> {
    let Some(tags) = patch.tags else {
        // The stored tags come back with the updated row.
        let row = patch
            .update
            .query()
            .fetch_optional(db.pool())
            .await?
            .ok_or_else(|| not_found(id))?;
        return task_row(&row)?.into_task();
    };
    let mut tx = db.pool().begin().await?;
    let row = patch
        .update
        .query()
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| not_found(id))?;
    let row = task_row(&row)?;
    sqlx::query("DELETE FROM task_tags WHERE task_id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO task_tags (task_id, position, tag) \
         SELECT $1, given.position - 1, given.tag FROM unnest($2::text[]) WITH ORDINALITY AS given (tag, position)",
    )
    .bind(id)
    .bind(&tags)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    row.into_task()
}

pub(super) async fn delete(db: &Postgres, user_id: i64, id: i64) -> ApiResult<()> {
    // The tags go with the task: task_tags references tasks ON DELETE CASCADE, which PostgreSQL
    // always enforces.
    let deleted = sqlx::query("DELETE FROM tasks WHERE id = $1 AND user_id = $2")
        .bind(id)
        .bind(user_id)
        .execute(db.pool())
        .await?
        .rows_affected();
    if deleted == 0 {
        return Err(not_found(id));
    }
    Ok(())
}

pub(super) async fn list(db: &Postgres, sql: &ListSql) -> ApiResult<TaskPage> {
    let rows = page_rows(db, sql).await?;
    let mut total = 0;
    let mut items = Vec::with_capacity(rows.len());
    for row in &rows {
        total = row.try_get(9)?;
        items.push(task_row(row)?.into_task()?);
    }
    if rows.is_empty() && sql.offset > 0 {
        total = count_alone(db, sql).await?;
    }
    Ok(TaskPage { items, total })
}

/// A list page serialized from the rows' own text (see [`super::list_json`]), with no `Task` or
/// `String` per column between; `true` when the page is empty.
pub(super) async fn list_json(db: &Postgres, sql: &ListSql, limit: u32) -> ApiResult<(PageJson, bool)> {
    let rows = page_rows(db, sql).await?;
    let mut page = PageWriter::new(limit);
    let mut total = 0;
    for row in &rows {
        total = row.try_get(9)?;
        let completed_at: Option<i64> = row.try_get(5)?;
        let tags: Vec<String> = row.try_get(8)?;
        page.push(&TaskRef {
            id: row.try_get(0)?,
            title: row.try_get(1)?,
            description: row.try_get(2)?,
            completed: completed_at.is_some(),
            priority: parse_stored_priority(row.try_get(3)?)?,
            due_date: row.try_get(4)?,
            tags,
            created_at: Timestamp(row.try_get(6)?),
            updated_at: Timestamp(row.try_get(7)?),
        })?;
    }
    let empty = rows.is_empty();
    if empty && sql.offset > 0 {
        total = count_alone(db, sql).await?;
    }
    Ok((page.finish(total), empty))
}

/// The page's rows (each with the total in its last column), read on one of the list readers
/// (see [`crate::db::pg_readers`]) when there are any.
async fn page_rows(db: &Postgres, sql: &ListSql) -> ApiResult<Vec<PgRow>> {
    let Some(readers) = db.readers() else {
        return Ok(sql.page.query().fetch_all(db.pool()).await?);
    };
    let mut reader = readers.get().await?;
    let rows = sql.page.query().fetch_all(reader.conn()).await?;
    // Only a query that ran to the end gives its connection back.
    reader.done();
    Ok(rows)
}

/// Past the last page: no row carries the total, so it is counted alone.
async fn count_alone(db: &Postgres, sql: &ListSql) -> ApiResult<i64> {
    Ok(sql.count.query().fetch_one(db.pool()).await?.try_get(0)?)
}
