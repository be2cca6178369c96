//! The task queries on PostgreSQL: one round trip per request where the statement can say it
//! all (creating a task with its tags, a list page with its total and tags), each statement
//! prepared once per connection by sqlx.

use sqlx::{Postgres as Pg, Row, postgres::PgRow, query::Query};

use super::{Bind, ListSql, Sql, Task, TaskPage, TaskRow, ValidPatch, ValidTask, not_found, task_columns};
use crate::{
    db::postgres::Postgres,
    error::{ApiResult, account_gone},
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

/// Inserts the task unless `unrevoked` names a token that was logged out (then `None`).
pub(super) async fn create(
    db: &Postgres,
    user_id: i64,
    unrevoked: Option<&str>,
    new: ValidTask,
) -> ApiResult<Option<Task>> {
    // One statement, so one round trip and one implicit transaction for the session check, the
    // task and its tags. `jti = NULL` matches nothing: no token, no check.
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
    .bind(user_id)
    .bind(&new.title)
    .bind(new.description.as_deref())
    .bind(new.priority.as_str())
    .bind(new.due_date.as_deref())
    .bind(new.now)
    .bind(&new.tags)
    .bind(unrevoked)
    .fetch_optional(db.pool())
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
    let rows = sql.page.query().fetch_all(db.pool()).await?;
    let mut total = 0;
    let mut items = Vec::with_capacity(rows.len());
    for row in &rows {
        total = row.try_get(9)?;
        items.push(task_row(row)?.into_task()?);
    }
    if rows.is_empty() && sql.offset > 0 {
        // Past the last page: no row carries the total, so count alone.
        total = sql.count.query().fetch_one(db.pool()).await?.try_get(0)?;
    }
    Ok(TaskPage { items, total })
}
