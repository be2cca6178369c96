//! The assistant's fixed set of tools: `add_task`, `list_tasks`, `update_task`, `complete_task`,
//! `delete_task`. Every engine (built-in, LLM) and the MCP server acts only through
//! [`Toolbox::call`], which runs the same functions as the REST API ([`crate::tasks`]) as the
//! calling user, so no message can reach another user's data.
//!
//! A tool's outcome is JSON for the model and the client: `{"task": ...}`, `{"tasks": [...],
//! "total": n}`, `{"deleted": ...}`, or `{"error": {"code", "message"}}` for what the caller can
//! fix (no such task, several match, invalid arguments). Database trouble stays an [`ApiError`].

use serde::{Deserialize, Serialize, de::DeserializeOwned};
use serde_json::{Value, json};
use utoipa::ToSchema;

use crate::{
    db::Db,
    error::{ApiError, ApiResult},
    metrics::Metrics,
    tasks::{self, ListQuery, NewTask, Priority, SortKey, SortOrder, StatusFilter, Task, TaskPatch},
};

/// The tool names, in the order they are offered.
pub const TOOL_NAMES: [&str; 5] = ["add_task", "list_tasks", "update_task", "complete_task", "delete_task"];

/// Most tasks one `list_tasks` call returns.
const LIST_LIMIT: u32 = 50;
/// Most tasks searched when a task is named by title.
const MATCH_LIMIT: u32 = 100;

/// A tool the assistant asked for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    /// One of [`TOOL_NAMES`].
    pub tool: String,
    /// The arguments object.
    pub arguments: Value,
}

impl ToolCall {
    /// A call of `tool` with these arguments.
    pub fn new(tool: &str, arguments: Value) -> Self {
        Self {
            tool: tool.to_owned(),
            arguments,
        }
    }
}

/// A tool call that was run, and what came of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Action {
    /// The tool's name.
    pub tool: String,
    /// The arguments it was called with.
    #[schema(value_type = Object)]
    pub arguments: Value,
    /// What it returned: `task`, `tasks` and `total`, `deleted`, or `error`.
    #[schema(value_type = Object)]
    pub result: Value,
}

impl Action {
    /// The error code of a failed call (`not_found`, `ambiguous`, `invalid_arguments`, ...).
    pub fn error_code(&self) -> Option<&str> {
        self.result
            .get("error")
            .and_then(|e| e.get("code"))
            .and_then(Value::as_str)
    }

    /// Whether the call changed stored data.
    pub fn changed_data(&self) -> bool {
        self.error_code().is_none() && self.tool != "list_tasks"
    }
}

/// A tool's name, description and JSON Schema of its arguments: what the LLM and MCP clients see.
#[derive(Debug, Clone)]
pub struct ToolDefinition {
    /// The tool's name.
    pub name: &'static str,
    /// What it does, for the model.
    pub description: &'static str,
    /// JSON Schema (an object) of the arguments.
    pub parameters: Value,
}

/// The five tools as JSON Schemas (hand-written: they are the contract models read).
pub fn definitions() -> Vec<ToolDefinition> {
    let date = json!({"type": "string", "format": "date", "description": "YYYY-MM-DD"});
    let priority = json!({"type": "string", "enum": ["low", "medium", "high"]});
    let tags = json!({"type": "array", "items": {"type": "string"}, "maxItems": tasks::MAX_TAGS});
    let id = json!({"type": "integer", "minimum": 1, "description": "The task's id"});
    let title = json!({"type": "string", "description": "Text that matches exactly one of the user's task titles (instead of id)"});
    vec![
        ToolDefinition {
            name: "add_task",
            description: "Create a task for the user.",
            parameters: json!({
                "type": "object",
                "properties": {
                    "title": {"type": "string", "minLength": 1, "maxLength": tasks::MAX_TITLE_CHARS},
                    "description": {"type": "string"},
                    "priority": priority,
                    "due_date": date,
                    "tags": tags,
                },
                "required": ["title"],
                "additionalProperties": false,
            }),
        },
        ToolDefinition {
            name: "list_tasks",
            description: "List the user's tasks, optionally filtered. Overdue: status pending and due_to yesterday.",
            parameters: json!({
                "type": "object",
                "properties": {
                    "status": {"type": "string", "enum": ["all", "pending", "completed"]},
                    "priority": priority,
                    "tag": {"type": "string"},
                    "search": {"type": "string", "description": "Text in the title or description"},
                    "due_from": date,
                    "due_to": date,
                },
                "additionalProperties": false,
            }),
        },
        ToolDefinition {
            name: "update_task",
            description: "Change a task named by id or title: rename (new_title), priority, due date (null clears), tags, description, or completed (false reopens).",
            parameters: json!({
                "type": "object",
                "properties": {
                    "id": id,
                    "title": title,
                    "new_title": {"type": "string", "minLength": 1, "maxLength": tasks::MAX_TITLE_CHARS},
                    "description": {"type": ["string", "null"]},
                    "priority": priority,
                    "due_date": {"type": ["string", "null"], "format": "date"},
                    "tags": tags,
                    "completed": {"type": "boolean"},
                },
                "additionalProperties": false,
            }),
        },
        ToolDefinition {
            name: "complete_task",
            description: "Mark a task, named by id or title, as done.",
            parameters: json!({
                "type": "object",
                "properties": {"id": id, "title": title},
                "additionalProperties": false,
            }),
        },
        ToolDefinition {
            name: "delete_task",
            description: "Delete a task, named by id or title.",
            parameters: json!({
                "type": "object",
                "properties": {"id": id, "title": title},
                "additionalProperties": false,
            }),
        },
    ]
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AddArgs {
    title: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    priority: Option<Priority>,
    #[serde(default)]
    due_date: Option<String>,
    #[serde(default)]
    tags: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListArgs {
    #[serde(default)]
    status: Option<StatusFilter>,
    #[serde(default)]
    priority: Option<Priority>,
    #[serde(default)]
    tag: Option<String>,
    #[serde(default)]
    search: Option<String>,
    #[serde(default)]
    due_from: Option<String>,
    #[serde(default)]
    due_to: Option<String>,
}

/// A task named by id or by (part of) its title.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TargetArgs {
    #[serde(default)]
    id: Option<i64>,
    #[serde(default)]
    title: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateArgs {
    #[serde(default)]
    id: Option<i64>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    new_title: Option<String>,
    #[serde(default, deserialize_with = "present")]
    description: Option<Option<String>>,
    #[serde(default)]
    priority: Option<Priority>,
    #[serde(default, deserialize_with = "present")]
    due_date: Option<Option<String>>,
    #[serde(default)]
    tags: Option<Vec<String>>,
    #[serde(default)]
    completed: Option<bool>,
}

/// Tells "absent" (outer `None`) from "null" (`Some(None)`).
fn present<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// Why a tool call could not be done, in words the caller can act on.
#[derive(Debug)]
enum ToolError {
    /// Unknown tool or arguments of the wrong shape.
    InvalidArguments(String),
    /// The REST layer rejected a value (a 422).
    Invalid(String),
    /// No such task for this user.
    NotFound(String),
    /// A title matched several tasks.
    Ambiguous { needle: String, candidates: Vec<Task> },
    /// Database trouble or a bug: not the caller's to fix.
    Api(ApiError),
}

impl From<ApiError> for ToolError {
    fn from(err: ApiError) -> Self {
        match err {
            ApiError::NotFound(message) => Self::NotFound(message),
            ApiError::Unprocessable { message, .. } | ApiError::BadRequest { message, .. } => Self::Invalid(message),
            other => Self::Api(other),
        }
    }
}

impl ToolError {
    fn into_result(self) -> ApiResult<Value> {
        let (code, message, candidates) = match self {
            Self::InvalidArguments(message) => ("invalid_arguments", message, None),
            Self::Invalid(message) => ("validation_failed", message, None),
            Self::NotFound(message) => ("not_found", message, None),
            Self::Ambiguous { needle, candidates } => (
                "ambiguous",
                format!("{} tasks match {needle:?}; name one by its id", candidates.len()),
                Some(candidates),
            ),
            Self::Api(err) => return Err(err),
        };
        let mut result = json!({"error": {"code": code, "message": message}});
        if let Some(candidates) = candidates {
            result["candidates"] = json!(
                candidates
                    .iter()
                    .map(|t| json!({"id": t.id, "title": t.title, "completed": t.completed}))
                    .collect::<Vec<_>>()
            );
        }
        Ok(result)
    }
}

/// Runs tools for one user.
#[derive(Clone, Copy)]
pub struct Toolbox<'a> {
    db: &'a Db,
    user_id: i64,
    metrics: &'a Metrics,
}

impl<'a> Toolbox<'a> {
    /// Tools acting as `user_id`, and only as them.
    pub fn new(db: &'a Db, user_id: i64, metrics: &'a Metrics) -> Self {
        Self { db, user_id, metrics }
    }

    /// Where tool calls and provider figures are counted.
    pub fn metrics(&self) -> &'a Metrics {
        self.metrics
    }

    /// Runs one call. Mistakes the caller can fix come back inside the [`Action`]'s result;
    /// only database trouble is an `Err`.
    pub async fn call(&self, call: ToolCall) -> ApiResult<Action> {
        let outcome = match self.dispatch(&call).await {
            Ok(result) => Ok(result),
            Err(err) => err.into_result(),
        };
        let action = Action {
            tool: call.tool,
            arguments: call.arguments,
            result: outcome?,
        };
        self.metrics
            .chat_tool_call(&action.tool, action.error_code().unwrap_or("ok"));
        Ok(action)
    }

    async fn dispatch(&self, call: &ToolCall) -> Result<Value, ToolError> {
        match call.tool.as_str() {
            "add_task" => self.add(args(&call.arguments)?).await,
            "list_tasks" => self.list(args(&call.arguments)?).await,
            "update_task" => self.update(args(&call.arguments)?).await,
            "complete_task" => {
                let target: TargetArgs = args(&call.arguments)?;
                let task = self.resolve(target.id, target.title.as_deref(), Some(false)).await?;
                let patch = TaskPatch {
                    completed: Some(true),
                    ..TaskPatch::default()
                };
                let task = tasks::update(self.db, self.user_id, task.id, patch).await?;
                Ok(json!({ "task": task }))
            }
            "delete_task" => {
                let target: TargetArgs = args(&call.arguments)?;
                let task = self.resolve(target.id, target.title.as_deref(), None).await?;
                tasks::delete(self.db, self.user_id, task.id).await?;
                Ok(json!({"deleted": {"id": task.id, "title": task.title}}))
            }
            other => Err(ToolError::InvalidArguments(format!(
                "there is no tool {other:?}; the tools are {}",
                TOOL_NAMES.join(", ")
            ))),
        }
    }

    async fn add(&self, args: AddArgs) -> Result<Value, ToolError> {
        let new = NewTask {
            title: args.title,
            description: args.description,
            priority: args.priority,
            due_date: args.due_date,
            tags: args.tags,
        };
        let task = tasks::create(self.db, tasks::Owner::User(self.user_id), new).await?;
        Ok(json!({ "task": task }))
    }

    async fn list(&self, args: ListArgs) -> Result<Value, ToolError> {
        let by_due = args.due_from.is_some() || args.due_to.is_some();
        let query = ListQuery {
            status: args.status,
            q: args.search,
            priority: args.priority,
            tag: args.tag,
            due_from: args.due_from,
            due_to: args.due_to,
            // Questions about due dates read best soonest first.
            sort: by_due.then_some(SortKey::Due),
            order: by_due.then_some(SortOrder::Asc),
            limit: Some(LIST_LIMIT),
            offset: None,
        };
        let page = tasks::list(self.db, tasks::Owner::User(self.user_id), query).await?;
        Ok(json!({"tasks": page.items, "total": page.total}))
    }

    async fn update(&self, args: UpdateArgs) -> Result<Value, ToolError> {
        // Reopening looks among done tasks first, completing among pending ones.
        let prefer_completed = args.completed.map(|c| !c);
        let task = self.resolve(args.id, args.title.as_deref(), prefer_completed).await?;
        let patch = TaskPatch {
            title: args.new_title,
            description: args.description,
            priority: args.priority,
            due_date: args.due_date,
            tags: args.tags,
            completed: args.completed,
        };
        let task = tasks::update(self.db, self.user_id, task.id, patch).await?;
        Ok(json!({ "task": task }))
    }

    /// The one task named by `id`, or by `title`: an exact (case-insensitive) title first, else
    /// the only title containing it. `prefer_completed` narrows several matches to those in that
    /// state, when that leaves exactly one.
    async fn resolve(
        &self,
        id: Option<i64>,
        title: Option<&str>,
        prefer_completed: Option<bool>,
    ) -> Result<Task, ToolError> {
        if let Some(id) = id {
            return Ok(tasks::get(self.db, self.user_id, id).await?);
        }
        let needle = title
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| ToolError::InvalidArguments("name the task by `id` or by `title`".to_owned()))?;
        let query = ListQuery {
            q: Some(needle.to_owned()),
            limit: Some(MATCH_LIMIT),
            ..ListQuery::default()
        };
        let lower = needle.to_lowercase();
        let mut containing: Vec<Task> = tasks::list(self.db, tasks::Owner::User(self.user_id), query)
            .await?
            .items
            .into_iter()
            .filter(|t| t.title.to_lowercase().contains(&lower))
            .collect();
        let exact: Vec<&Task> = containing.iter().filter(|t| t.title.to_lowercase() == lower).collect();
        if let [one] = exact.as_slice() {
            return Ok((*one).clone());
        }
        match containing.len() {
            0 => Err(ToolError::NotFound(format!("no task matches {needle:?}"))),
            1 => Ok(containing.swap_remove(0)),
            _ => {
                if let Some(state) = prefer_completed {
                    let mut preferred = containing.iter().filter(|t| t.completed == state);
                    if let (Some(one), None) = (preferred.next(), preferred.next()) {
                        return Ok(one.clone());
                    }
                }
                Err(ToolError::Ambiguous {
                    needle: needle.to_owned(),
                    candidates: containing,
                })
            }
        }
    }
}

/// Reads a tool's arguments; `null` counts as `{}`.
fn args<T: DeserializeOwned>(value: &Value) -> Result<T, ToolError> {
    let value = if value.is_null() { json!({}) } else { value.clone() };
    serde_json::from_value(value).map_err(|err| ToolError::InvalidArguments(format!("invalid arguments: {err}")))
}
