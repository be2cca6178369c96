//! The task queries on PostgreSQL: one round trip per request where the statement can say it
//! all (creating a task with its tags, a list page with its total and tags), each statement
//! prepared once per connection by sqlx. Creates made at the same time share one statement and
//! one commit (see [`crate::db::postgres`]).

use std::sync::Arc;

use sqlx::{
    PgPool, Postgres as Pg, Row,
    postgres::{PgRow, PgValueFormat},
    query::Query,
};
use tokio::sync::oneshot;

use super::{
    Bind, ListSql, PageJson, PageWriter, Sql, Task, TaskPage, TaskRow, ValidPatch, ValidTask, not_found, page::TaskRef,
    parse_stored_priority, task_columns,
};
use crate::{
    db::{
        Timestamp,
        pg_readers::{Reader, Readers},
        postgres::Postgres,
    },
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

/// The column of a page's row that holds the total (after the task's own columns).
const TOTAL_COLUMN: usize = 9;

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
        total = row.try_get(TOTAL_COLUMN)?;
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
    // Unchecked: the columns' types are the statement's own (see [`task_columns`]), and checking
    // them again for every column of every row was most of the ~10% of a list request's CPU
    // time that reading the rows took (perf). Decoding still refuses a value of the wrong size
    // or text that is not UTF-8.
    for row in &rows {
        total = row.try_get_unchecked(TOTAL_COLUMN)?;
        let completed_at: Option<i64> = row.try_get_unchecked(5)?;
        page.push(&TaskRef {
            id: row.try_get_unchecked(0)?,
            title: row.try_get_unchecked(1)?,
            description: row.try_get_unchecked(2)?,
            completed: completed_at.is_some(),
            priority: parse_stored_priority(row.try_get_unchecked(3)?)?,
            due_date: row.try_get_unchecked(4)?,
            tags: TextArray::of(row, 8)?,
            created_at: Timestamp(row.try_get_unchecked(6)?),
            updated_at: Timestamp(row.try_get_unchecked(7)?),
        })?;
    }
    let empty = rows.is_empty();
    if empty && sql.offset > 0 {
        total = count_alone(db, sql).await?;
    }
    Ok((page.finish(total), empty))
}

/// A `text[]` column serialized as a list of strings, from the row's own bytes: PostgreSQL's
/// binary array format (dimensions, then each element's length and bytes), checked once when
/// read and walked again when written, so no `Vec<String>` is made per row. Text-format values
/// (never sent for sqlx's prepared statements) are decoded the ordinary way.
enum TextArray<'r> {
    /// The elements' part of a one-dimensional array without NULLs, whose elements are UTF-8.
    Binary(&'r [u8]),
    Decoded(Vec<String>),
}

impl<'r> TextArray<'r> {
    fn of(row: &'r PgRow, column: usize) -> sqlx::Result<Self> {
        let value = row.try_get_raw(column)?;
        if value.format() == PgValueFormat::Text {
            return Ok(Self::Decoded(row.try_get(column)?));
        }
        let decode_error = |source: &str| sqlx::Error::ColumnDecode {
            index: column.to_string(),
            source: source.into(),
        };
        let bytes = value.as_bytes().map_err(|_| decode_error("a NULL array"))?;
        let elements = array_elements(bytes).ok_or_else(|| decode_error("not a text array of one dimension"))?;
        for element in each_element(elements) {
            let element = element.ok_or_else(|| decode_error("a NULL or cut element"))?;
            std::str::from_utf8(element).map_err(|_| decode_error("an element that is not UTF-8"))?;
        }
        Ok(Self::Binary(elements))
    }
}

/// The elements' bytes of a binary array of at most one dimension, after its header.
fn array_elements(bytes: &[u8]) -> Option<&[u8]> {
    let int = |at: usize| -> Option<i32> { Some(i32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?)) };
    // Header: dimensions, a has-NULLs flag, the element type; then length and lower bound per
    // dimension.
    match int(0)? {
        0 => Some(&[]),
        1 => bytes.get(20..),
        _ => None,
    }
}

/// Each element's bytes in an array's elements part (each a length, then its bytes); `None` for a
/// NULL or cut element, which ends the walk.
fn each_element(mut rest: &[u8]) -> impl Iterator<Item = Option<&[u8]>> {
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let element = rest.split_first_chunk::<4>().and_then(|(length, after)| {
            let length = usize::try_from(i32::from_be_bytes(*length)).ok()?;
            (after.len() >= length).then(|| after.split_at(length))
        });
        let Some((element, after)) = element else {
            rest = &[];
            return Some(None);
        };
        rest = after;
        Some(Some(element))
    })
}

impl serde::Serialize for TextArray<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Decoded(tags) => tags.serialize(serializer),
            // Checked in `TextArray::of`.
            Self::Binary(elements) => serializer.collect_seq(
                each_element(elements).map_while(|element| element.and_then(|e| std::str::from_utf8(e).ok())),
            ),
        }
    }
}

/// The page's rows (each with the total in its last column), read on one of the list readers
/// (see [`crate::db::pg_readers`]) when there are any: at once when one is free, else together
/// with the other pages waiting for one (see [`read_pages`]).
async fn page_rows(db: &Postgres, sql: &ListSql) -> ApiResult<Vec<PgRow>> {
    if db.readers().is_none() {
        // A single connection in all: the pool reads every page.
        return Ok(sql.page.query().fetch_all(db.pool()).await?);
    }
    if let Some(reader) = db.idle_reader().await? {
        return Ok(read_page(reader, &sql.page).await?);
    }
    let (answer, answered) = oneshot::channel();
    let job = ListJob {
        page: sql.page.clone(),
        answer,
    };
    if let Some(job) = db.queue_list(job) {
        // The queue is gone (the runtime is shutting down): the pool reads it.
        return Ok(job.page.query().fetch_all(db.pool()).await?);
    }
    answered.await.map_err(|_| ApiError::Unavailable {
        code: "database_unavailable",
        message: "the tasks could not be read right now; try again shortly".to_owned(),
    })?
}

/// A list page waiting for a reader (see [`crate::db::postgres`]).
pub(crate) struct ListJob {
    page: Sql,
    answer: oneshot::Sender<ApiResult<Vec<PgRow>>>,
}

/// Reads one page on `reader`, giving the connection back only when the query ran to the end.
async fn read_page(mut reader: Reader, page: &Sql) -> sqlx::Result<Vec<PgRow>> {
    let rows = page.query().fetch_all(reader.conn()).await?;
    reader.done();
    Ok(rows)
}

/// Reads the pages queued while every reader was busy, on `reader`: those of one shape (the
/// same statement text, differing only in their values) as one statement, which runs the page's
/// statement once per page from arrays of their values (see [`batch_statement`]): a round trip
/// and a statement per shape instead of per page, as the server's fixed cost per statement was
/// most of a page's. Should a batch's statement fail, each of its pages (and those after it) is
/// read alone on a connection of its own, so one page's error is its own. Pages whose client has
/// gone are not read. Returns how many statements ran.
pub(crate) async fn read_pages(readers: &Arc<Readers>, reader: sqlx::Result<Reader>, batch: Vec<ListJob>) -> u64 {
    let mut reader = match reader {
        Ok(reader) => reader,
        Err(err) => {
            let err = ApiError::from(err);
            for job in batch {
                let _ = job.answer.send(Err(err.again()));
            }
            return 0;
        }
    };
    let mut shapes: Vec<Vec<ListJob>> = Vec::new();
    for job in batch.into_iter().filter(|job| !job.answer.is_closed()) {
        match shapes.iter_mut().find(|shape| shape[0].page.text == job.page.text) {
            Some(shape) => shape.push(job),
            None => shapes.push(vec![job]),
        }
    }
    let mut statements = 0;
    // Pages to read alone, each on a connection of its own, after `reader` is given back.
    let mut alone = Vec::new();
    let mut shapes = shapes.into_iter();
    let mut broken = false;
    for shape in shapes.by_ref() {
        let read = if shape.len() == 1 {
            shape[0].page.query().fetch_all(reader.conn()).await
        } else if let Some(statement) = batch_statement(&shape) {
            statement.fetch_all(reader.conn()).await
        } else {
            alone.extend(shape);
            continue;
        };
        statements += 1;
        broken = read.is_err();
        match read {
            Err(err) if shape.len() > 1 => {
                tracing::warn!(error = %err, pages = shape.len(), "PostgreSQL: a batch of list pages failed; each is read alone");
                alone.extend(shape);
            }
            read => answer_pages(shape, read),
        }
        if broken {
            break;
        }
    }
    alone.extend(shapes.flatten());
    // A statement that failed leaves its connection in a state not worth trusting: it is closed
    // (dropped), not given back.
    if broken {
        drop(reader);
    } else {
        reader.done();
    }
    for job in alone {
        // Reading alone takes a connection each, maybe a new one: not for a client gone meanwhile
        // (its request timed out, say).
        if job.answer.is_closed() {
            continue;
        }
        statements += 1;
        let rows = match readers.get().await {
            Ok(reader) => read_page(reader, &job.page).await,
            Err(err) => Err(err),
        };
        let _ = job.answer.send(rows.map_err(ApiError::from));
    }
    statements
}

/// Answers the pages of one shape: a page read alone gets the rows (or the error); pages read
/// together each get the rows whose last column names their place in the batch. Rows come in
/// page order (a nested loop over the pages; see [`batch_statement`]) and keep their order
/// within a page.
fn answer_pages(shape: Vec<ListJob>, read: sqlx::Result<Vec<PgRow>>) {
    let rows = match read {
        Ok(rows) if shape.len() > 1 => rows,
        // A page read alone (a failed batch never comes here: its pages are read alone).
        read => {
            if let Some(job) = shape.into_iter().next() {
                let _ = job.answer.send(read.map_err(ApiError::from));
            }
            return;
        }
    };
    let mut pages: Vec<Vec<PgRow>> = shape.iter().map(|_| Vec::new()).collect();
    for row in rows {
        let place = row
            .len()
            .checked_sub(1)
            .and_then(|last| row.try_get::<i64, _>(last).ok());
        match place
            .and_then(|place| usize::try_from(place - 1).ok())
            .and_then(|index| pages.get_mut(index))
        {
            Some(page) => page.push(row),
            None => tracing::error!(?place, "PostgreSQL: a batch of list pages returned a row of no page"),
        }
    }
    for (job, rows) in shape.into_iter().zip(pages) {
        let _ = job.answer.send(Ok(rows));
    }
}

/// One statement reading every page of `shape` (pages of the same statement text): the page's
/// statement as a lateral subquery, run once per row of the arrays of the pages' values, each
/// `$n` becoming that row's `batch.pn`. Each row of the result ends with its page's place in the
/// batch (from 1). `None` should two pages bind different types at one place (they cannot, their
/// text being the same), or should the text hold a `$` that is not a placeholder.
fn batch_statement(shape: &[ListJob]) -> Option<Query<'static, Pg, sqlx::postgres::PgArguments>> {
    let first = &shape.first()?.page;
    let mut columns = Vec::with_capacity(first.binds.len());
    for (place, bind) in first.binds.iter().enumerate() {
        let column = match bind {
            Bind::Int(_) => Column::Ints(Vec::with_capacity(shape.len())),
            Bind::Text(_) => Column::Texts(Vec::with_capacity(shape.len())),
            Bind::Tags(_) => return None,
        };
        columns.push(column);
        for job in shape {
            match (&mut columns[place], job.page.binds.get(place)) {
                (Column::Ints(values), Some(Bind::Int(value))) => values.push(*value),
                (Column::Texts(values), Some(Bind::Text(value))) => values.push(value.clone()),
                _ => return None,
            }
        }
    }
    let mut text = String::with_capacity(first.text.len() + 64 + 24 * columns.len());
    text.push_str("SELECT page.*, batch.place FROM unnest(");
    for (index, column) in columns.iter().enumerate() {
        let array = match column {
            Column::Ints(_) => "bigint[]",
            Column::Texts(_) => "text[]",
        };
        text.push_str(&format!("{}${}::{array}", if index > 0 { ", " } else { "" }, index + 1));
    }
    text.push_str(") WITH ORDINALITY AS batch (");
    for index in 1..=columns.len() {
        text.push_str(&format!("p{index}, "));
    }
    text.push_str("place) CROSS JOIN LATERAL (");
    text.push_str(&lateral(&first.text)?);
    text.push_str(") AS page");
    // Audited: the text is the page's own (fixed fragments of the tasks module) with each
    // placeholder named as a column of the arrays; every value travels in a bound array.
    let query = columns
        .into_iter()
        .fold(sqlx::query(sqlx::AssertSqlSafe(text)), |query, column| match column {
            Column::Ints(values) => query.bind(values),
            Column::Texts(values) => query.bind(values),
        });
    Some(query)
}

/// The values bound at one place of a batch's pages.
enum Column {
    Ints(Vec<i64>),
    Texts(Vec<String>),
}

/// `text` with each placeholder `$n` as the column `batch.pn`. The text holds `$` only in its
/// placeholders (it is assembled from the module's fixed fragments); `None` otherwise.
fn lateral(text: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len() + 64);
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        out.push_str("batch.p");
        out.push_str(&after[..digits]);
        rest = &after[digits..];
    }
    out.push_str(rest);
    Some(out)
}

/// Past the last page: no row carries the total, so it is counted alone.
async fn count_alone(db: &Postgres, sql: &ListSql) -> ApiResult<i64> {
    Ok(sql.count.query().fetch_one(db.pool()).await?.try_get(0)?)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use todo_service::contract::DEFAULT_TEST_DATABASE_URL;

    use super::*;
    use crate::tasks::Placeholders;

    fn readers(size: u32) -> Arc<Readers> {
        let url = std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_TEST_DATABASE_URL.to_owned());
        Arc::new(Readers::new(url.parse().unwrap(), size, Duration::from_secs(2)))
    }

    /// A page of the numbers 1..=`count` (each with its tenfold), `limit` of them.
    fn numbers(count: i64, limit: i64) -> Sql {
        let mut page = Sql::new(Placeholders::Postgres);
        page.push("SELECT n, n * 10 AS tenfold FROM generate_series(1, ")
            .bind(Bind::Int(count))
            .push(") AS n ORDER BY n DESC LIMIT ")
            .bind(Bind::Int(limit));
        page
    }

    /// A page of another shape: `word` repeated `times`.
    fn words(word: &str, times: i64) -> Sql {
        let mut page = Sql::new(Placeholders::Postgres);
        page.push("SELECT repeat(")
            .bind(Bind::Text(word.to_owned()))
            .push(", n::int) FROM generate_series(1, ")
            .bind(Bind::Int(times))
            .push(") AS n");
        page
    }

    /// Reads `pages` as one queue's worth on a reader of `readers`: each page's answer, and how
    /// many statements were run.
    async fn read(readers: &Arc<Readers>, pages: Vec<Sql>) -> (Vec<ApiResult<Vec<PgRow>>>, u64) {
        let mut answers = Vec::new();
        let jobs = pages
            .into_iter()
            .map(|page| {
                let (answer, answered) = oneshot::channel();
                answers.push(answered);
                ListJob { page, answer }
            })
            .collect();
        let statements = read_pages(readers, readers.get().await, jobs).await;
        let mut results = Vec::new();
        for answered in answers {
            results.push(answered.await.expect("every page is answered"));
        }
        (results, statements)
    }

    fn first_column(result: &ApiResult<Vec<PgRow>>) -> Vec<i64> {
        let rows = result.as_ref().unwrap_or_else(|err| panic!("{err}"));
        rows.iter().map(|row| row.get::<i64, _>(0)).collect()
    }

    #[test]
    fn placeholders_become_the_batch_columns_and_a_stray_dollar_refuses() {
        assert_eq!(
            lateral("SELECT a FROM t WHERE b = $1 AND c = $12 LIMIT $2").as_deref(),
            Some("SELECT a FROM t WHERE b = batch.p1 AND c = batch.p12 LIMIT batch.p2")
        );
        assert_eq!(lateral("SELECT 1").as_deref(), Some("SELECT 1"));
        assert_eq!(lateral("SELECT '$' || $1"), None);
    }

    #[tokio::test]
    async fn pages_of_one_shape_share_a_statement_and_each_gets_its_own_rows_in_order() {
        let readers = readers(2);
        let (results, statements) = read(
            &readers,
            vec![
                numbers(3, 2),
                words("ab", 2),
                numbers(5, 5),
                numbers(0, 5),
                numbers(4, 1),
                words("c", 3),
            ],
        )
        .await;
        // One statement per shape, not per page.
        assert_eq!(statements, 2);
        assert_eq!(first_column(&results[0]), [3, 2]);
        assert_eq!(first_column(&results[2]), [5, 4, 3, 2, 1]);
        assert_eq!(first_column(&results[3]), Vec::<i64>::new());
        assert_eq!(first_column(&results[4]), [4]);
        let words = |result: &ApiResult<Vec<PgRow>>| -> Vec<String> {
            result.as_ref().unwrap().iter().map(|row| row.get(0)).collect()
        };
        assert_eq!(words(&results[1]), ["ab", "abab"]);
        assert_eq!(words(&results[5]), ["c", "cc", "ccc"]);
        // The page's own columns come first, as when it is read alone.
        let tenfold: Vec<i64> = results[2].as_ref().unwrap().iter().map(|row| row.get(1)).collect();
        assert_eq!(tenfold, [50, 40, 30, 20, 10]);
        // The reader went back for the next batch.
        assert_eq!(readers.idle_count(), 1);
        readers.close().await;
    }

    #[tokio::test]
    async fn a_page_whose_statement_fails_in_a_batch_fails_alone() {
        let readers = readers(2);
        // A negative LIMIT is refused by the server (SQLSTATE 2201W), failing the batch's
        // statement; each page is then read alone.
        let (results, statements) = read(&readers, vec![numbers(3, 2), numbers(3, -1), numbers(2, 2)]).await;
        assert_eq!(first_column(&results[0]), [3, 2]);
        assert!(
            matches!(&results[1], Err(ApiError::Internal(_))),
            "{:?}",
            results[1].as_ref().map(Vec::len)
        );
        assert_eq!(first_column(&results[2]), [2, 1]);
        // The batch, then each of its three pages.
        assert_eq!(statements, 4);
        readers.close().await;
    }

    #[tokio::test]
    async fn pages_whose_client_left_are_not_read_and_a_missing_connection_fails_each_page() {
        let readers = readers(1);
        let (answer, answered) = oneshot::channel();
        drop(answered);
        let gone = ListJob {
            page: numbers(3, 3),
            answer,
        };
        assert_eq!(read_pages(&readers, readers.get().await, vec![gone]).await, 0);

        let unreachable = Arc::new(Readers::new(
            "postgres://postgres@127.0.0.1:1/none".parse().unwrap(),
            1,
            Duration::from_secs(2),
        ));
        let (results, statements) = read(&unreachable, vec![numbers(3, 2), numbers(4, 2)]).await;
        assert_eq!(statements, 0);
        for result in results {
            assert!(
                matches!(
                    result,
                    Err(ApiError::Unavailable {
                        code: "database_unavailable",
                        ..
                    })
                ),
                "{:?}",
                result.map(|rows| rows.len())
            );
        }
        readers.close().await;
    }

    #[tokio::test]
    async fn pages_that_find_a_reader_busy_wait_for_it_together_but_no_longer_than_the_gather_time() {
        let url = std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_TEST_DATABASE_URL.to_owned());
        let list = |count: i64| ListSql {
            page: numbers(count, 2),
            count: numbers(count, 2),
            offset: 0,
        };
        let spawn_pages = |db: &Postgres| {
            (1..=3)
                .map(|n| {
                    let db = db.clone();
                    tokio::spawn(async move { page_rows(&db, &list(n + 2)).await })
                })
                .collect::<Vec<_>>()
        };
        let first_columns = |rows: Vec<PgRow>| rows.iter().map(|row| row.get::<i64, _>(0)).collect::<Vec<_>>();

        // A long gather: the pages wait for the busy reader rather than take the free one, and
        // then go out together in one statement.
        let db = Postgres::connect_lazy(&url, 4, Duration::from_secs(30))
            .unwrap()
            .with_list_gather(Duration::from_secs(20));
        let busy = db.readers().expect("two list readers").get().await.unwrap();
        let pages = spawn_pages(&db);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            pages.iter().all(|page| !page.is_finished()),
            "a page was read alone on the free reader while the other was busy"
        );
        assert_eq!(db.list_batches().statements, 0);
        busy.done();
        let mut read = Vec::new();
        for page in pages {
            read.push(first_columns(page.await.unwrap().unwrap()));
        }
        assert_eq!(read, [vec![3, 2], vec![4, 3], vec![5, 4]]);
        assert_eq!(
            db.list_batches(),
            crate::db::postgres::ListBatches {
                statements: 1,
                pages: 3
            }
        );
        db.close().await;

        // A short gather and a reader busy for longer: the wait ends, and the free reader reads
        // them while the other is still held.
        let gather = Duration::from_millis(200);
        let db = Postgres::connect_lazy(&url, 4, Duration::from_secs(30))
            .unwrap()
            .with_list_gather(gather);
        let busy = db.readers().unwrap().get().await.unwrap();
        let started = std::time::Instant::now();
        let mut read = Vec::new();
        for page in spawn_pages(&db) {
            read.push(first_columns(page.await.unwrap().unwrap()));
        }
        assert!(
            started.elapsed() >= gather,
            "answered before the gather time: {:?}",
            started.elapsed()
        );
        assert_eq!(read, [vec![3, 2], vec![4, 3], vec![5, 4]]);
        assert_eq!(db.readers().unwrap().busy(), 1, "the held reader is still held");
        busy.done();
        db.close().await;
    }

    #[tokio::test]
    async fn text_arrays_serialize_from_their_bytes_as_the_decoded_strings_do() {
        let readers = readers(1);
        let mut reader = readers.get().await.unwrap();
        let arrays: [&[&str]; 4] = [
            &[],
            &["bench"],
            &["é 😀", "quote \" and \\", "", "new\nline"],
            &["a"; 40],
        ];
        for array in arrays {
            let row = sqlx::query("SELECT $1::text[], ($1::text[])[1:0]")
                .bind(array)
                .fetch_one(reader.conn())
                .await
                .unwrap();
            let tags = TextArray::of(&row, 0).unwrap();
            assert!(matches!(tags, TextArray::Binary(_)));
            assert_eq!(
                serde_json::to_string(&tags).unwrap(),
                serde_json::to_string(&array).unwrap()
            );
            // An empty slice of an array: no dimensions at all.
            assert_eq!(serde_json::to_string(&TextArray::of(&row, 1).unwrap()).unwrap(), "[]");
        }
        for (refused, statement) in [
            ("a NULL element", "SELECT ARRAY['a', NULL]::text[]"),
            ("two dimensions", "SELECT ARRAY[['a'], ['b']]::text[]"),
            ("a NULL array", "SELECT NULL::text[]"),
        ] {
            let row = sqlx::query(statement).fetch_one(reader.conn()).await.unwrap();
            let err = TextArray::of(&row, 0).err();
            assert!(
                matches!(err, Some(sqlx::Error::ColumnDecode { .. })),
                "{refused}: {err:?}"
            );
        }
        // Text format (a simple-protocol query): decoded the ordinary way.
        let row = sqlx::raw_sql("SELECT ARRAY['x', 'y z']::text[]")
            .fetch_one(reader.conn())
            .await
            .unwrap();
        let tags = TextArray::of(&row, 0).unwrap();
        assert!(matches!(tags, TextArray::Decoded(_)));
        assert_eq!(serde_json::to_string(&tags).unwrap(), r#"["x","y z"]"#);
        reader.done();
    }
}
