//! A list page's JSON, written into one buffer task by task: from [`Task`](super::Task)s, or on SQLite
//! straight from each row's borrowed text ([`TaskRef`]), with no `Task` or `String` per column.

use serde::Serialize;

use super::Priority;
use crate::{
    db::Timestamp,
    error::{ApiError, ApiResult},
};

/// A [`TaskPage`](super::TaskPage) already serialized, as `GET /tasks` answers it.
#[derive(Debug)]
pub struct PageJson(pub Vec<u8>);

impl axum::response::IntoResponse for PageJson {
    fn into_response(self) -> axum::response::Response {
        (
            [(
                axum::http::header::CONTENT_TYPE,
                axum::http::HeaderValue::from_static("application/json"),
            )],
            self.0,
        )
            .into_response()
    }
}

/// Bytes a serialized task usually takes, to size a page's buffer once (growing it from
/// nothing copied each page several times).
const TASK_JSON_BYTES: usize = 256;

/// Writes a page's JSON (`{"items":[...],"total":n}`) into one buffer, task by task, as each is
/// read: SQLite's rows serialize from the row's own text ([`TaskRef`]), with no `Task` between.
pub(crate) struct PageWriter {
    json: Vec<u8>,
    pub(crate) items: usize,
}

impl PageWriter {
    pub(crate) fn new(limit: u32) -> Self {
        let mut json = Vec::with_capacity(32 + TASK_JSON_BYTES * limit as usize);
        json.extend_from_slice(b"{\"items\":[");
        Self { json, items: 0 }
    }

    pub(crate) fn push<Tags: Serialize>(&mut self, task: &TaskRef<'_, Tags>) -> ApiResult<()> {
        if self.items > 0 {
            self.json.push(b',');
        }
        task.write_json(&mut self.json)
            .map_err(|err| ApiError::Internal(err.into()))?;
        self.items += 1;
        Ok(())
    }

    pub(crate) fn finish(mut self, total: i64) -> PageJson {
        self.json.extend_from_slice(b"],\"total\":");
        self.json
            .extend_from_slice(itoa::Buffer::new().format(total).as_bytes());
        self.json.push(b'}');
        PageJson(self.json)
    }
}

/// A stored task serialized exactly as [`Task`](super::Task), from borrowed text (on SQLite the
/// tags as their stored comma-joined column, on PostgreSQL as the array). A test holds the two to
/// the same bytes.
pub(crate) struct TaskRef<'a, Tags: Serialize = JoinedTags<'a>> {
    pub(crate) id: i64,
    pub(crate) title: &'a str,
    pub(crate) description: Option<&'a str>,
    pub(crate) completed: bool,
    pub(crate) priority: Priority,
    pub(crate) due_date: Option<&'a str>,
    pub(crate) tags: Tags,
    pub(crate) created_at: Timestamp,
    pub(crate) updated_at: Timestamp,
}

impl<Tags: Serialize> TaskRef<'_, Tags> {
    /// The task's JSON object, in [`Task`](super::Task)'s field order, appended to `out`: the
    /// keys, literals, numbers and timestamps as bytes, and only the free text (title,
    /// description, due date, tags) through serde_json's escaping. serde's struct serializer
    /// escaped every key and every timestamp again and checked the timestamps' UTF-8: ~7% of a
    /// PostgreSQL list request's backend CPU time (perf), about half of it that.
    fn write_json(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
        out.extend_from_slice(b"{\"id\":");
        out.extend_from_slice(itoa::Buffer::new().format(self.id).as_bytes());
        out.extend_from_slice(b",\"title\":");
        serde_json::to_writer(&mut *out, self.title)?;
        out.extend_from_slice(b",\"description\":");
        serde_json::to_writer(&mut *out, &self.description)?;
        out.extend_from_slice(if self.completed {
            b",\"completed\":true,\"priority\":\""
        } else {
            b",\"completed\":false,\"priority\":\""
        });
        // A fixed word of lowercase letters: nothing to escape.
        out.extend_from_slice(self.priority.as_str().as_bytes());
        out.extend_from_slice(b"\",\"due_date\":");
        serde_json::to_writer(&mut *out, &self.due_date)?;
        out.extend_from_slice(b",\"tags\":");
        serde_json::to_writer(&mut *out, &self.tags)?;
        out.extend_from_slice(b",\"created_at\":");
        self.created_at.write_json(out);
        out.extend_from_slice(b",\"updated_at\":");
        self.updated_at.write_json(out);
        out.push(b'}');
        Ok(())
    }
}

/// Comma-joined tags, serialized as the list they are.
pub(crate) struct JoinedTags<'a>(pub(crate) &'a str);

impl Serialize for JoinedTags<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.0.is_empty() {
            return serializer.collect_seq(std::iter::empty::<&str>());
        }
        serializer.collect_seq(self.0.split(','))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tasks::{Task, TaskPage};

    #[test]
    fn pages_written_from_borrowed_rows_are_the_bytes_serde_writes_for_task_pages() {
        let tasks = [
            Task {
                id: 7,
                title: "quote \" backslash \\ é 😀".to_owned(),
                description: Some("two\nlines\tand a tab".to_owned()),
                completed: true,
                priority: Priority::High,
                due_date: Some("2030-12-31".to_owned()),
                tags: vec!["b".to_owned(), "a b".to_owned(), "ü".to_owned()],
                created_at: Timestamp(1_700_000_000_123),
                updated_at: Timestamp(i64::MAX),
            },
            Task {
                id: 8,
                title: "bare".to_owned(),
                description: None,
                completed: false,
                priority: Priority::Low,
                due_date: None,
                tags: Vec::new(),
                created_at: Timestamp(0),
                updated_at: Timestamp(-1),
            },
        ];
        let joined: Vec<String> = tasks.iter().map(|t| t.tags.join(",")).collect();
        let mut writer = PageWriter::new(20);
        for (task, tags) in tasks.iter().zip(&joined) {
            writer
                .push(&TaskRef {
                    id: task.id,
                    title: &task.title,
                    description: task.description.as_deref(),
                    completed: task.completed,
                    priority: task.priority,
                    due_date: task.due_date.as_deref(),
                    tags: JoinedTags(tags),
                    created_at: task.created_at,
                    updated_at: task.updated_at,
                })
                .unwrap();
        }
        let written = writer.finish(102).0;
        let expected = serde_json::to_vec(&TaskPage {
            items: tasks.to_vec(),
            total: 102,
        })
        .unwrap();
        assert_eq!(
            String::from_utf8(written).unwrap(),
            String::from_utf8(expected).unwrap()
        );
        assert_eq!(PageWriter::new(1).finish(0).0, br#"{"items":[],"total":0}"#);
    }
}
