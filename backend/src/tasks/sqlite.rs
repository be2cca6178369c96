//! The task queries on SQLite: reads on the read pool, writes through the group-committing
//! writer (see [`crate::db::sqlite`]). Statements are prepared once per connection and cached.

use rusqlite::{Connection, Row, ToSql, params, params_from_iter, types::ToSqlOutput};

use super::{
    Bind, ListSql, PageJson, PageWriter, Task, TaskPage, TaskRow, ValidPatch, ValidTask, not_found,
    page::{JoinedTags, TaskRef},
    parse_stored_priority, task_columns,
};
use crate::db::Timestamp;
use crate::{
    db::sqlite::Sqlite,
    error::{ApiResult, account_gone},
};

impl ToSql for Bind {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        match self {
            Self::Int(value) => value.to_sql(),
            Self::Text(value) => value.to_sql(),
            Self::Tags(tags) => Ok(ToSqlOutput::from(join_tags(tags))),
        }
    }
}

/// The task in the first nine columns of `row` (see [`task_columns`]).
fn task_row(row: &Row<'_>) -> rusqlite::Result<TaskRow> {
    Ok(TaskRow {
        id: row.get(0)?,
        title: row.get(1)?,
        description: row.get(2)?,
        priority: row.get(3)?,
        due_date: row.get(4)?,
        completed_at: row.get(5)?,
        created_at: row.get(6)?,
        updated_at: row.get(7)?,
        tags: split_tags(text(row, 8)?),
    })
}

/// Column `index`'s text, borrowed from the row.
fn text<'r>(row: &'r Row<'_>, index: usize) -> rusqlite::Result<&'r str> {
    Ok(row.get_ref(index)?.as_str()?)
}

/// Column `index`'s text or NULL, borrowed from the row.
fn optional_text<'r>(row: &'r Row<'_>, index: usize) -> rusqlite::Result<Option<&'r str>> {
    Ok(row.get_ref(index)?.as_str_or_null()?)
}

/// The tags column: comma-joined (tags cannot contain commas, nor be empty), `''` for none.
fn join_tags(tags: &[String]) -> String {
    tags.join(",")
}

fn split_tags(joined: &str) -> Vec<String> {
    if joined.is_empty() {
        return Vec::new();
    }
    joined.split(',').map(str::to_owned).collect()
}

fn insert_tags(conn: &Connection, task_id: i64, tags: &[String]) -> rusqlite::Result<()> {
    let mut insert = conn.prepare_cached("INSERT INTO task_tags (task_id, position, tag) VALUES (?1, ?2, ?3)")?;
    for (position, tag) in (0_i64..).zip(tags) {
        insert.execute(params![task_id, position, tag])?;
    }
    Ok(())
}

pub(super) async fn create(db: &Sqlite, user_id: i64, new: ValidTask) -> ApiResult<Task> {
    let row = db
        .write(move |conn| {
            let mut insert = conn.prepare_cached(concat!(
                "INSERT INTO tasks (user_id, title, description, priority, due_date, created_at, updated_at, tags) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7) RETURNING ",
                task_columns!()
            ))?;
            let inserted = insert.query_row(
                params![
                    user_id,
                    new.title,
                    new.description,
                    new.priority.as_str(),
                    new.due_date,
                    new.now,
                    join_tags(&new.tags)
                ],
                task_row,
            );
            let row = match inserted {
                // The account was deleted between the token check and this write.
                Err(err)
                    if err.sqlite_error().map(|e| e.extended_code)
                        == Some(rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY) =>
                {
                    return Err(account_gone());
                }
                other => other?,
            };
            insert_tags(conn, row.id, &row.tags)?;
            Ok(row)
        })
        .await?;
    row.into_task()
}

pub(super) fn get(db: &Sqlite, user_id: i64, id: i64) -> ApiResult<Task> {
    let row = db.read(|conn| {
        let mut select = conn.prepare_cached(concat!(
            "SELECT ",
            task_columns!(),
            " FROM tasks WHERE id = ?1 AND user_id = ?2"
        ))?;
        let mut rows = select.query(params![id, user_id])?;
        match rows.next()? {
            Some(row) => Ok(task_row(row)?),
            None => Err(not_found(id)),
        }
    })?;
    row.into_task()
}

pub(super) async fn update(db: &Sqlite, id: i64, patch: ValidPatch) -> ApiResult<Task> {
    let row = db
        .write(move |conn| {
            let mut update = conn.prepare_cached(&patch.update.text)?;
            let mut rows = update.query(params_from_iter(&patch.update.binds))?;
            let row = match rows.next()? {
                Some(row) => task_row(row)?,
                None => return Err(not_found(id)),
            };
            drop(rows);
            if let Some(tags) = patch.tags {
                conn.prepare_cached("DELETE FROM task_tags WHERE task_id = ?1")?
                    .execute([id])?;
                insert_tags(conn, id, &tags)?;
            }
            Ok(row)
        })
        .await?;
    row.into_task()
}

pub(super) async fn delete(db: &Sqlite, user_id: i64, id: i64) -> ApiResult<()> {
    db.write(move |conn| {
        // Tags go explicitly, so deleting does not depend on the foreign-key setting.
        conn.prepare_cached(
            "DELETE FROM task_tags WHERE task_id IN (SELECT id FROM tasks WHERE id = ?1 AND user_id = ?2)",
        )?
        .execute([id, user_id])?;
        let deleted = conn
            .prepare_cached("DELETE FROM tasks WHERE id = ?1 AND user_id = ?2")?
            .execute([id, user_id])?;
        if deleted == 0 {
            return Err(not_found(id));
        }
        Ok(())
    })
    .await
}

pub(super) fn list(db: &Sqlite, sql: &ListSql) -> ApiResult<TaskPage> {
    let (rows, total) = db.read(|conn| {
        let mut select = conn.prepare_cached(&sql.page.text)?;
        let mut rows = select.query(params_from_iter(&sql.page.binds))?;
        let mut page = Vec::new();
        let mut total = 0;
        while let Some(row) = rows.next()? {
            total = row.get(9)?;
            page.push(task_row(row)?);
        }
        drop(rows);
        if page.is_empty() && sql.offset > 0 {
            // Past the last page: no row carries the total, so count alone.
            total = conn
                .prepare_cached(&sql.count.text)?
                .query_row(params_from_iter(&sql.count.binds), |row| row.get(0))?;
        }
        Ok((page, total))
    })?;
    let items = rows
        .into_iter()
        .map(TaskRow::into_task)
        .collect::<ApiResult<Vec<_>>>()?;
    Ok(TaskPage { items, total })
}

/// A list page serialized as its rows are read (see [`super::list_json`]); `true` when the page
/// is empty.
pub(super) fn list_json(db: &Sqlite, sql: &ListSql, limit: u32) -> ApiResult<(PageJson, bool)> {
    db.read(|conn| {
        let mut select = conn.prepare_cached(&sql.page.text)?;
        let mut rows = select.query(params_from_iter(&sql.page.binds))?;
        let mut page = PageWriter::new(limit);
        let mut total = 0;
        while let Some(row) = rows.next()? {
            total = row.get(9)?;
            let completed_at: Option<i64> = row.get(5)?;
            page.push(&TaskRef {
                id: row.get(0)?,
                title: text(row, 1)?,
                description: optional_text(row, 2)?,
                completed: completed_at.is_some(),
                priority: parse_stored_priority(text(row, 3)?)?,
                due_date: optional_text(row, 4)?,
                tags: JoinedTags(text(row, 8)?),
                created_at: Timestamp(row.get(6)?),
                updated_at: Timestamp(row.get(7)?),
            })?;
        }
        drop(rows);
        let empty = page.items == 0;
        if empty && sql.offset > 0 {
            // Past the last page: no row carries the total, so count alone.
            total = conn
                .prepare_cached(&sql.count.text)?
                .query_row(params_from_iter(&sql.count.binds), |row| row.get(0))?;
        }
        Ok((page.finish(total), empty))
    })
}
