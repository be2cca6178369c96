//! Tasks: the JSON shapes, their validation, and the queries (each scoped to one user).

mod page;
pub(crate) mod postgres;
mod sqlite;

use serde::{Deserialize, Deserializer, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::{
    db::{Db, Timestamp, now_millis},
    error::{ApiError, ApiResult},
    sessions::{self, VerifiedToken},
};

/// Longest title, in characters (after trimming).
pub const MAX_TITLE_CHARS: usize = 200;
/// Longest description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 4000;
/// Most tags on one task.
pub const MAX_TAGS: usize = 10;
/// Longest tag, in characters.
pub const MAX_TAG_CHARS: usize = 32;
/// Page size when `limit` is not given.
pub const DEFAULT_LIMIT: u32 = 20;
/// Largest page size.
pub const MAX_LIMIT: u32 = 100;
/// Longest search text (`q`), in characters: the web UI caps its search box at the same length,
/// and a longer pattern only makes SQLite's LIKE slower (at ~50,000 it refuses outright).
pub const MAX_QUERY_CHARS: usize = 200;

pub use self::page::PageJson;
use self::page::PageWriter;
pub use todo_service::wire::Priority;

/// Reads a priority as the database stores it (its wire value).
fn parse_stored_priority(value: &str) -> anyhow::Result<Priority> {
    Priority::parse(value).ok_or_else(|| anyhow::anyhow!("stored priority {value:?} is not low, medium or high"))
}

/// A task as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Task {
    /// Numeric id.
    #[schema(minimum = 1)]
    pub id: i64,
    /// Short title.
    pub title: String,
    /// Longer notes.
    pub description: Option<String>,
    /// Whether it is done.
    pub completed: bool,
    /// How urgent it is.
    pub priority: Priority,
    /// When it is due, `YYYY-MM-DD`.
    pub due_date: Option<String>,
    /// Labels, in the order given.
    pub tags: Vec<String>,
    /// When it was created (RFC 3339, UTC).
    #[schema(value_type = String)]
    pub created_at: Timestamp,
    /// When it last changed (RFC 3339, UTC).
    #[schema(value_type = String)]
    pub updated_at: Timestamp,
}

/// The body of `POST /tasks`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTask {
    /// 1 to 200 characters after trimming.
    pub title: String,
    /// Up to 4000 characters.
    #[serde(default)]
    pub description: Option<String>,
    /// `low`, `medium` (default) or `high`.
    #[serde(default)]
    pub priority: Option<Priority>,
    /// An ISO date, `YYYY-MM-DD`.
    #[serde(default)]
    pub due_date: Option<String>,
    /// Up to 10 tags of 1 to 32 characters.
    #[serde(default)]
    pub tags: Option<Vec<String>>,
}

/// The body of `PATCH /tasks/{id}`: any subset of the fields. `description` and `due_date`
/// accept `null` to clear them.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskPatch {
    /// New title.
    #[serde(default)]
    pub title: Option<String>,
    /// New description; `null` clears it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
    /// New priority.
    #[serde(default)]
    pub priority: Option<Priority>,
    /// New due date; `null` clears it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub due_date: Option<Option<String>>,
    /// New tags (replace the old ones).
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    /// Done or not.
    #[serde(default)]
    pub completed: Option<bool>,
}

/// Tells "absent" (outer `None`, from `default`) from "null" (`Some(None)`).
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// Which tasks to list, by completion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum StatusFilter {
    /// Every task.
    #[default]
    All,
    /// Not done yet.
    Pending,
    /// Done.
    Completed,
}

/// Sort key of the list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SortKey {
    /// Creation time (the default).
    #[default]
    Created,
    /// Last change.
    Updated,
    /// Due date; tasks without one come last.
    Due,
    /// Priority.
    Priority,
    /// Title, case-insensitively.
    Title,
}

/// Sort direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SortOrder {
    /// Smallest first.
    Asc,
    /// Largest first (the default: newest first).
    #[default]
    Desc,
}

/// Query parameters of `GET /tasks`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// `all` (default), `pending` or `completed`.
    pub status: Option<StatusFilter>,
    /// Text to find in the title or description (case-insensitive), up to 200 characters.
    #[param(max_length = 200)]
    pub q: Option<String>,
    /// Only this priority.
    pub priority: Option<Priority>,
    /// Only tasks with this tag (up to 32 characters).
    #[param(max_length = 32)]
    pub tag: Option<String>,
    /// Only tasks due on or after this date (`YYYY-MM-DD`).
    pub due_from: Option<String>,
    /// Only tasks due on or before this date (`YYYY-MM-DD`).
    pub due_to: Option<String>,
    /// `created` (default), `updated`, `due`, `priority` or `title`.
    pub sort: Option<SortKey>,
    /// `asc` or `desc` (default).
    pub order: Option<SortOrder>,
    /// Page size, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100, value_type = Option<i64>)]
    pub limit: Option<u32>,
    /// Tasks to skip (default 0; at most 4294967295).
    #[param(minimum = 0, value_type = Option<i64>)]
    pub offset: Option<u32>,
}

/// One page of tasks and how many match in all.
#[derive(Debug, Serialize, ToSchema)]
pub struct TaskPage {
    /// The tasks on this page.
    pub items: Vec<Task>,
    /// How many tasks match the filters, over all pages.
    pub total: i64,
}

fn check_title(raw: &str) -> ApiResult<String> {
    let title = raw.trim();
    let chars = title.chars().count();
    if chars == 0 || chars > MAX_TITLE_CHARS {
        return Err(ApiError::validation(format!(
            "title must be 1 to {MAX_TITLE_CHARS} characters long"
        )));
    }
    if title.chars().any(char::is_control) {
        return Err(ApiError::validation(
            "title must be a single line without control characters",
        ));
    }
    Ok(title.to_owned())
}

fn check_description(raw: Option<String>) -> ApiResult<Option<String>> {
    let Some(description) = raw.map(|d| d.trim_end().to_owned()).filter(|d| !d.trim().is_empty()) else {
        return Ok(None);
    };
    if description.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(ApiError::validation(format!(
            "description must be at most {MAX_DESCRIPTION_CHARS} characters long"
        )));
    }
    // Line breaks and tabs are text; other control characters (NUL above all, which PostgreSQL
    // refuses and SQLite would store) are not.
    if description
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(ApiError::validation(
            "description must not contain control characters other than line breaks and tabs",
        ));
    }
    Ok(Some(description))
}

/// A due date: exactly `YYYY-MM-DD`, a real day of the years 1 to 9999.
fn check_due_date(raw: Option<String>) -> ApiResult<Option<String>> {
    let Some(raw) = raw else { return Ok(None) };
    let invalid = || ApiError::validation(format!("due_date must be a date like 2030-12-31 (got {raw:?})"));
    let text = raw.trim();
    let shape = text.len() == 10
        && text.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    if !shape {
        return Err(invalid());
    }
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let date = time::Date::parse(text, &format).map_err(|_| invalid())?;
    if date.year() < 1 {
        return Err(invalid());
    }
    Ok(Some(text.to_owned()))
}

/// The search text and tag filter of a list: bounded, and free of control characters (a NUL
/// is refused by PostgreSQL and would be matched by SQLite: both engines now answer 422).
fn check_filters(query: &ListQuery) -> ApiResult<()> {
    let invalid = |message: String| ApiError::Unprocessable {
        code: "invalid_query",
        message,
    };
    if let Some(q) = &query.q {
        if q.chars().count() > MAX_QUERY_CHARS {
            return Err(invalid(format!("q must be at most {MAX_QUERY_CHARS} characters long")));
        }
        if q.chars().any(char::is_control) {
            return Err(invalid("q must not contain control characters".to_owned()));
        }
    }
    if let Some(tag) = &query.tag {
        if tag.chars().count() > MAX_TAG_CHARS {
            return Err(invalid(format!("tag must be at most {MAX_TAG_CHARS} characters long")));
        }
        if tag.chars().any(char::is_control) {
            return Err(invalid("tag must not contain control characters".to_owned()));
        }
    }
    Ok(())
}

fn check_tags(raw: Vec<String>) -> ApiResult<Vec<String>> {
    let mut tags: Vec<String> = Vec::with_capacity(raw.len());
    for tag in raw {
        let tag = check_tag(&tag)?;
        if !tags.contains(&tag) {
            tags.push(tag);
        }
    }
    if tags.len() > MAX_TAGS {
        return Err(ApiError::validation(format!("a task can have at most {MAX_TAGS} tags")));
    }
    Ok(tags)
}

fn check_tag(raw: &str) -> ApiResult<String> {
    let tag = raw.trim();
    let chars = tag.chars().count();
    if chars == 0 || chars > MAX_TAG_CHARS {
        return Err(ApiError::validation(format!(
            "each tag must be 1 to {MAX_TAG_CHARS} characters long"
        )));
    }
    if tag.chars().any(|c| c.is_control() || c == ',') {
        return Err(ApiError::validation(
            "tags must not contain commas or control characters",
        ));
    }
    Ok(tag.to_owned())
}

/// A value bound to a placeholder of a query assembled at run time.
#[derive(Debug, Clone)]
pub(crate) enum Bind {
    Int(i64),
    Text(String),
    /// A task's tags, in order: comma-joined text on SQLite, an array on PostgreSQL.
    Tags(Vec<String>),
}

/// How an engine numbers placeholders: SQLite `?1`, PostgreSQL `$1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Placeholders {
    Sqlite,
    Postgres,
}

/// SQL text assembled from fixed fragments of this module and numbered placeholders; every value
/// travels as a bound parameter.
#[derive(Debug, Clone)]
pub(crate) struct Sql {
    pub(crate) text: String,
    pub(crate) binds: Vec<Bind>,
    placeholders: Placeholders,
}

impl Sql {
    fn new(placeholders: Placeholders) -> Self {
        Self {
            text: String::with_capacity(512),
            binds: Vec::new(),
            placeholders,
        }
    }

    fn push(&mut self, sql: &str) -> &mut Self {
        self.text.push_str(sql);
        self
    }

    fn bind(&mut self, value: Bind) -> &mut Self {
        let placeholder = self.param(value);
        self.text.push_str(&placeholder);
        self
    }

    /// Binds `value` to a new placeholder and returns it, for text pushed later.
    fn param(&mut self, value: Bind) -> String {
        self.binds.push(value);
        self.placeholder(self.binds.len())
    }

    /// The placeholder of the `n`th bound value (from 1).
    fn placeholder(&self, n: usize) -> String {
        let sigil = match self.placeholders {
            Placeholders::Sqlite => '?',
            Placeholders::Postgres => '$',
        };
        format!("{sigil}{n}")
    }
}

/// The columns of a [`TaskRow`], as a literal so queries stay `&'static str`. The tags are the
/// task's own column (kept in step with `task_tags`, which only the tag filter reads): a list page
/// reads them with its rows, where a subquery per row cost more than the rest of the page.
macro_rules! task_columns {
    () => {
        "id, title, description, priority, due_date, completed_at, created_at, updated_at, tags"
    };
}
pub(crate) use task_columns;

/// A stored task with its tags.
pub(crate) struct TaskRow {
    pub(crate) id: i64,
    pub(crate) title: String,
    pub(crate) description: Option<String>,
    pub(crate) priority: String,
    pub(crate) due_date: Option<String>,
    pub(crate) completed_at: Option<i64>,
    pub(crate) created_at: i64,
    pub(crate) updated_at: i64,
    pub(crate) tags: Vec<String>,
}

impl TaskRow {
    pub(crate) fn into_task(self) -> ApiResult<Task> {
        Ok(Task {
            id: self.id,
            title: self.title,
            description: self.description,
            completed: self.completed_at.is_some(),
            priority: parse_stored_priority(&self.priority)?,
            due_date: self.due_date,
            tags: self.tags,
            created_at: Timestamp(self.created_at),
            updated_at: Timestamp(self.updated_at),
        })
    }
}

/// A new task, checked and normalised.
pub(crate) struct ValidTask {
    pub(crate) title: String,
    pub(crate) description: Option<String>,
    pub(crate) priority: Priority,
    pub(crate) due_date: Option<String>,
    pub(crate) tags: Vec<String>,
    pub(crate) now: i64,
}

/// Whose tasks a query reads or writes, and whether the session behind the request is still to
/// be checked.
#[derive(Debug, Clone, Copy)]
pub enum Owner<'a> {
    /// A user whose session is checked already: the request's [`crate::auth::AuthUser`], or the
    /// chat assistant acting for one.
    User(i64),
    /// The holder of a signed token ([`crate::auth::SignedToken`]) whose session is checked by the
    /// query itself where the engine allows, saving a round trip, and otherwise just before it.
    /// Either way an ended session gets its 401, also in place of any other 4xx.
    Token(&'a VerifiedToken),
}

impl Owner<'_> {
    fn user_id(self) -> i64 {
        match self {
            Self::User(id) => id,
            Self::Token(token) => token.user_id,
        }
    }

    /// Checks the session now, where it is still to be checked.
    async fn require_live(self, db: &Db) -> ApiResult<()> {
        match self {
            Self::User(_) => Ok(()),
            Self::Token(token) => sessions::require_live(db, token).await,
        }
    }

    /// The error to answer with instead of `error`: an ended session's 401 comes first.
    async fn refuse(self, db: &Db, error: ApiError) -> ApiError {
        match self {
            Self::User(_) => error,
            Self::Token(token) => sessions::refuse(db, token, error).await,
        }
    }
}

fn valid_task(new: NewTask) -> ApiResult<ValidTask> {
    Ok(ValidTask {
        title: check_title(&new.title)?,
        description: check_description(new.description)?,
        due_date: check_due_date(new.due_date)?,
        tags: check_tags(new.tags.unwrap_or_default())?,
        priority: new.priority.unwrap_or_default(),
        now: now_millis(),
    })
}

/// Validates and stores a new task for this user.
pub async fn create(db: &Db, owner: Owner<'_>, new: NewTask) -> ApiResult<Task> {
    let new = match valid_task(new) {
        Ok(new) => new,
        Err(err) => return Err(owner.refuse(db, err).await),
    };
    match db {
        // A write waits for the writer thread, which should spend its time on writes: the session
        // is checked on the read pool first, as for any request.
        Db::Sqlite(sqlite) => {
            owner.require_live(db).await?;
            sqlite::create(sqlite, owner.user_id(), new).await
        }
        // The insert happens only if the token was not logged out (and the account's existence
        // is its foreign key): one round trip.
        Db::Postgres(postgres) => {
            let unrevoked = match owner {
                Owner::User(_) => None,
                Owner::Token(token) => Some(token.token_id.as_str()),
            };
            match postgres::create(postgres, owner.user_id(), unrevoked, new).await? {
                Some(task) => Ok(task),
                None => {
                    owner.require_live(db).await?;
                    Err(sessions::logged_out())
                }
            }
        }
    }
}

pub(crate) fn not_found(id: i64) -> ApiError {
    ApiError::NotFound(format!("task {id} does not exist"))
}

/// One of this user's tasks; someone else's is "not found", never "forbidden".
pub async fn get(db: &Db, user_id: i64, id: i64) -> ApiResult<Task> {
    match db {
        Db::Sqlite(db) => sqlite::get(db, user_id, id),
        Db::Postgres(db) => postgres::get(db, user_id, id).await,
    }
}

/// A checked partial update: the `UPDATE ... RETURNING` statement (which sets the task's tags
/// column too) and the new tags for `task_tags`, if any.
pub(crate) struct ValidPatch {
    pub(crate) update: Sql,
    pub(crate) tags: Option<Vec<String>>,
}

/// Applies a partial update in one statement (no lost updates between concurrent PATCHes).
pub async fn update(db: &Db, user_id: i64, id: i64, patch: TaskPatch) -> ApiResult<Task> {
    let placeholders = match db {
        Db::Sqlite(_) => Placeholders::Sqlite,
        Db::Postgres(_) => Placeholders::Postgres,
    };
    let now = now_millis();
    let mut sql = Sql::new(placeholders);
    sql.push("UPDATE tasks SET updated_at = ").bind(Bind::Int(now));
    if let Some(title) = &patch.title {
        sql.push(", title = ").bind(Bind::Text(check_title(title)?));
    }
    if let Some(description) = patch.description {
        match check_description(description)? {
            Some(text) => sql.push(", description = ").bind(Bind::Text(text)),
            None => sql.push(", description = NULL"),
        };
    }
    if let Some(priority) = patch.priority {
        sql.push(", priority = ").bind(Bind::Text(priority.as_str().to_owned()));
    }
    if let Some(due_date) = patch.due_date {
        match check_due_date(due_date)? {
            Some(date) => sql.push(", due_date = ").bind(Bind::Text(date)),
            None => sql.push(", due_date = NULL"),
        };
    }
    match patch.completed {
        // Keep the first completion time when a done task is marked done again.
        Some(true) => sql
            .push(", completed_at = COALESCE(completed_at, ")
            .bind(Bind::Int(now))
            .push(")"),
        Some(false) => sql.push(", completed_at = NULL"),
        None => &mut sql,
    };
    let tags = patch.tags.map(check_tags).transpose()?;
    if let Some(tags) = &tags {
        sql.push(", tags = ").bind(Bind::Tags(tags.clone()));
    }
    sql.push(" WHERE id = ").bind(Bind::Int(id));
    sql.push(" AND user_id = ").bind(Bind::Int(user_id));
    sql.push(concat!(" RETURNING ", task_columns!()));
    let patch = ValidPatch { update: sql, tags };
    match db {
        Db::Sqlite(db) => sqlite::update(db, id, patch).await,
        Db::Postgres(db) => postgres::update(db, id, patch).await,
    }
}

/// Deletes one of this user's tasks (and its tags).
pub async fn delete(db: &Db, user_id: i64, id: i64) -> ApiResult<()> {
    match db {
        Db::Sqlite(db) => sqlite::delete(db, user_id, id).await,
        Db::Postgres(db) => postgres::delete(db, user_id, id).await,
    }
}

/// The statements behind one list page: the page itself (each row with the count of all
/// matches), and the count alone for a page past the end (which has no row).
pub(crate) struct ListSql {
    pub(crate) page: Sql,
    pub(crate) count: Sql,
    pub(crate) offset: u32,
}

/// A filtered, sorted page of this user's tasks and the total number that match, in one query:
/// the total is a scalar count over the matches, the tags are each task's own column, and a
/// token's session is checked by the same statement (a page with a task on it proves the session
/// live; only an empty page needs the separate check).
pub async fn list(db: &Db, owner: Owner<'_>, query: ListQuery) -> ApiResult<TaskPage> {
    let limit = match check_list_query(&query) {
        Ok(limit) => limit,
        Err(err) => return Err(owner.refuse(db, err).await),
    };
    let page = match db {
        Db::Sqlite(db) => sqlite::list(db, &list_sql(Placeholders::Sqlite, owner, limit, &query))?,
        Db::Postgres(db) => postgres::list(db, &list_sql(Placeholders::Postgres, owner, limit, &query)).await?,
    };
    if page.items.is_empty() {
        owner.require_live(db).await?;
    }
    Ok(page)
}

/// [`list`], serialized straight from the rows as they are read (no [`Task`] between).
pub async fn list_json(db: &Db, owner: Owner<'_>, query: ListQuery) -> ApiResult<PageJson> {
    let limit = match check_list_query(&query) {
        Ok(limit) => limit,
        Err(err) => return Err(owner.refuse(db, err).await),
    };
    let (json, empty) = match db {
        Db::Sqlite(sqlite) => sqlite::list_json(sqlite, &list_sql(Placeholders::Sqlite, owner, limit, &query), limit)?,
        Db::Postgres(postgres) => {
            postgres::list_json(postgres, &list_sql(Placeholders::Postgres, owner, limit, &query), limit).await?
        }
    };
    if empty {
        owner.require_live(db).await?;
    }
    Ok(json)
}

/// The page size of a list query whose parameters are all valid.
fn check_list_query(query: &ListQuery) -> ApiResult<u32> {
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::Unprocessable {
            code: "invalid_query",
            message: format!("limit must be between 1 and {MAX_LIMIT}"),
        });
    }
    check_filters(query)?;
    for (name, value) in [("due_from", &query.due_from), ("due_to", &query.due_to)] {
        if check_due_date(value.clone()).is_err() {
            return Err(ApiError::Unprocessable {
                code: "invalid_query",
                message: format!("{name} must be a date like 2030-12-31"),
            });
        }
    }
    Ok(limit)
}

fn list_sql(placeholders: Placeholders, owner: Owner<'_>, limit: u32, query: &ListQuery) -> ListSql {
    let offset = query.offset.unwrap_or(0);
    let mut filter = Sql::new(placeholders);
    filter
        .push(" FROM tasks WHERE user_id = ")
        .bind(Bind::Int(owner.user_id()));
    // Anything pushed after the user's own condition is a filter.
    let unfiltered = filter.text.len();
    match query.status.unwrap_or_default() {
        StatusFilter::All => {}
        StatusFilter::Pending => {
            filter.push(" AND completed_at IS NULL");
        }
        StatusFilter::Completed => {
            filter.push(" AND completed_at IS NOT NULL");
        }
    }
    if let Some(text) = query.q.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
        let pattern = format!("%{}%", escape_like(&text.to_lowercase()));
        filter
            .push(" AND (LOWER(title) LIKE ")
            .bind(Bind::Text(pattern.clone()))
            .push(" ESCAPE '\\'");
        filter
            .push(" OR LOWER(COALESCE(description, '')) LIKE ")
            .bind(Bind::Text(pattern))
            .push(" ESCAPE '\\')");
    }
    if let Some(priority) = query.priority {
        filter
            .push(" AND priority = ")
            .bind(Bind::Text(priority.as_str().to_owned()));
    }
    if let Some(tag) = query.tag.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        filter
            .push(" AND EXISTS (SELECT 1 FROM task_tags WHERE task_tags.task_id = tasks.id AND task_tags.tag = ")
            .bind(Bind::Text(tag.to_owned()))
            .push(")");
    }
    // ISO dates compare as text; tasks without a due date never match a due range.
    if let Some(from) = query.due_from.as_deref().map(str::trim) {
        filter.push(" AND due_date >= ").bind(Bind::Text(from.to_owned()));
    }
    if let Some(to) = query.due_to.as_deref().map(str::trim) {
        filter.push(" AND due_date <= ").bind(Bind::Text(to.to_owned()));
    }

    let filtered = filter.text.len() > unfiltered;
    let mut count = filter.clone();
    count.text.insert_str(0, "SELECT COUNT(*)");

    let direction = match query.order.unwrap_or_default() {
        SortOrder::Asc => "ASC",
        SortOrder::Desc => "DESC",
    };
    let key = match query.sort.unwrap_or_default() {
        SortKey::Created => "created_at".to_owned(),
        SortKey::Updated => "updated_at".to_owned(),
        // Tasks without a due date come last in either direction.
        SortKey::Due => format!("(CASE WHEN due_date IS NULL THEN 1 ELSE 0 END) ASC, due_date {direction}, id"),
        SortKey::Priority => "(CASE priority WHEN 'high' THEN 3 WHEN 'medium' THEN 2 ELSE 1 END)".to_owned(),
        SortKey::Title => "LOWER(title)".to_owned(),
    };
    // The total is an uncorrelated scalar subquery (same placeholders), which both engines
    // evaluate once per statement: without filters, the user's task count kept beside the user
    // (migration 6); with filters, a count over the same filter, from the (user_id, created_at)
    // index. Measured on SQLite against a window count over the matches: 66 µs instead of 181 µs
    // for 20 of 100, as the window had to materialise and sort every match.
    let total = if filtered {
        count.text.clone()
    } else {
        format!("SELECT task_count FROM users WHERE id = {}", filter.placeholder(1))
    };
    let mut page = filter.clone();
    page.text.insert_str(
        0,
        &format!(concat!("SELECT ", task_columns!(), ", ({}) AS total"), total),
    );
    if let Owner::Token(token) = owner {
        // Uncorrelated, so each is evaluated once per statement. The account's existence is
        // checked too, though its tasks go with it (ON DELETE CASCADE), in case a row outlived it.
        let user = page.param(Bind::Int(token.user_id));
        let jti = page.param(Bind::Text(token.token_id.clone()));
        page.push(&format!(
            " AND EXISTS (SELECT 1 FROM users WHERE id = {user}) \
             AND NOT EXISTS (SELECT 1 FROM revoked_tokens WHERE jti = {jti})"
        ));
    }
    page.push(&format!(" ORDER BY {key} {direction}, id {direction} LIMIT "))
        .bind(Bind::Int(i64::from(limit)));
    page.push(" OFFSET ").bind(Bind::Int(i64::from(offset)));
    ListSql { page, count, offset }
}

/// `%`, `_` and `\` match literally in a search.
fn escape_like(text: &str) -> String {
    text.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_are_trimmed_and_bounded() {
        assert_eq!(check_title("  buy milk ").unwrap(), "buy milk");
        assert!(check_title("   ").is_err());
        assert!(check_title(&"é".repeat(200)).is_ok());
        assert!(check_title(&"é".repeat(201)).is_err());
        assert!(check_title("two\nlines").is_err());
    }

    #[test]
    fn due_dates_must_be_real_iso_dates() {
        assert_eq!(
            check_due_date(Some("2030-12-31".into())).unwrap().as_deref(),
            Some("2030-12-31")
        );
        for bad in [
            "2030-02-30",
            "31/12/2030",
            "2030-1-1",
            "tomorrow",
            "",
            "-001-01-01",
            "-0001-01-01",
            "0000-01-01",
            "+2030-01-01",
            "20300-01-01",
        ] {
            assert!(check_due_date(Some(bad.into())).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn tags_are_trimmed_deduplicated_and_bounded() {
        assert_eq!(
            check_tags(vec![" a ".into(), "b".into(), "a".into()]).unwrap(),
            vec!["a", "b"]
        );
        assert!(check_tags(vec!["".into()]).is_err());
        assert!(check_tags(vec!["x".repeat(33)]).is_err());
        assert!(check_tags((0..11).map(|i| i.to_string()).collect()).is_err());
        assert!(check_tags(vec!["a,b".into()]).is_err());
    }

    #[test]
    fn like_patterns_are_escaped() {
        assert_eq!(escape_like(r"50%_off\"), r"50\%\_off\\");
    }
}
