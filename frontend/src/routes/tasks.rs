//! The task list (`/`) and every action on tasks.
//!
//! Each action is a plain HTML form that answers 303 back to the list the user came from (the
//! form's `return_to`), so everything works without JavaScript. With htmx (`HX-Request`), the
//! same handlers answer with the fragment to swap instead: the board (add form, list, paging)
//! after adding or deleting, the single item after toggling.

use axum::{
    Router,
    extract::{FromRequestParts, Path, Query},
    http::{HeaderValue, StatusCode, request::Parts},
    response::{IntoResponse, Redirect, Response},
    routing::{get, post},
};
use serde::Deserialize;
use time::OffsetDateTime;

use crate::{
    backend_client::{Api, BackendError, NewTask, Priority, TaskPatch, User},
    csrf::{CsrfForm, CsrfToken},
    error::{AppError, AppResult},
    list_query::{ListParams, RawListQuery},
    state::AppState,
    views::{
        Board, BoardFragment, DeleteTaskPage, EditTaskPage, FilterView, FormError, Layout, ListContext, Pagination,
        TaskFormValues, TaskItemFragment, TaskView, TasksPage,
    },
};

/// The fields a task form's errors can point at.
const TASK_FIELDS: [&str; 5] = ["title", "description", "priority", "due_date", "tags"];

/// The task routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(list))
        .route("/tasks", post(create))
        .route("/tasks/{id}", post(update))
        .route("/tasks/{id}/edit", get(edit_form))
        .route("/tasks/{id}/toggle", post(toggle))
        .route("/tasks/{id}/delete", get(delete_form).post(delete))
}

/// What htmx says about a request.
#[derive(Debug, Clone, Copy)]
struct Htmx {
    /// Sent by htmx (`HX-Request: true`), so a fragment is wanted rather than a page or redirect.
    request: bool,
    /// htmx will swap the answer into `#board`.
    targets_board: bool,
}

impl<S: Send + Sync> FromRequestParts<S> for Htmx {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
        // A history restore wants the whole page, whatever else it says.
        let request = header("hx-request") == Some("true") && header("hx-history-restore-request").is_none();
        Ok(Self {
            request,
            targets_board: request && header("hx-target") == Some("board"),
        })
    }
}

/// A task id from the path; anything that is not a positive number is "not found".
fn task_id(raw: &str) -> AppResult<i64> {
    raw.parse::<i64>().ok().filter(|id| *id > 0).ok_or(AppError::NotFound)
}

/// The fields of the add and edit forms, as typed.
#[derive(Debug, Deserialize)]
struct TaskForm {
    #[serde(default)]
    title: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    priority: String,
    #[serde(default)]
    due_date: String,
    #[serde(default)]
    tags: String,
    #[serde(default)]
    return_to: String,
}

impl TaskForm {
    fn priority(&self) -> Priority {
        Priority::parse(self.priority.trim()).unwrap_or_default()
    }

    fn description(&self) -> Option<String> {
        Some(self.description.trim_end().to_owned()).filter(|d| !d.trim().is_empty())
    }

    fn due_date(&self) -> Option<String> {
        Some(self.due_date.trim().to_owned()).filter(|d| !d.is_empty())
    }

    /// `"home, errands,"` -> `["home", "errands"]`.
    fn tags(&self) -> Vec<String> {
        self.tags
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// The values to show again, with the error.
    fn into_values(self, error: FormError) -> TaskFormValues {
        TaskFormValues {
            title: self.title,
            description: self.description,
            priority: self.priority,
            due_date: self.due_date,
            tags: self.tags,
            error: Some(error),
            autofocus: true,
        }
    }
}

/// Forms that only say where to go back to.
#[derive(Debug, Deserialize)]
struct ReturnForm {
    #[serde(default)]
    return_to: String,
}

/// The toggle form: the state wanted (`true`/`false`), so a double click or a stale page cannot
/// flip a task back; without it, the task is flipped.
#[derive(Debug, Deserialize)]
struct ToggleForm {
    #[serde(default)]
    completed: Option<String>,
    #[serde(default)]
    return_to: String,
}

/// The `return_to` query parameter of the edit and delete pages.
#[derive(Debug, Default, Deserialize)]
struct ReturnQuery {
    #[serde(default)]
    return_to: String,
}

fn list_context(csrf: &CsrfToken, params: &ListParams) -> ListContext {
    ListContext {
        csrf_token: csrf.value().to_owned(),
        return_to: params.to_query_string(),
    }
}

fn today() -> time::Date {
    OffsetDateTime::now_utc().date()
}

/// Fetches the page of tasks and builds the board around `form`.
async fn board(api: &Api, params: &ListParams, form: TaskFormValues) -> AppResult<Board> {
    let page = api.list_tasks(&params.backend_query()).await?;
    Ok(make_board(params, form, page))
}

fn make_board(params: &ListParams, form: TaskFormValues, page: crate::backend_client::TaskPage) -> Board {
    let today = today();
    Board {
        form,
        total: page.total,
        tasks: page.items.into_iter().map(|task| TaskView::new(task, today)).collect(),
        filtered: params.is_filtered(),
        clear_filters_href: params.without_filters().href(),
        pagination: Pagination::new(params, page.total),
    }
}

/// The whole task page: the list and the signed-in user, fetched side by side.
async fn full_page(api: &Api, csrf: &CsrfToken, params: &ListParams, form: TaskFormValues) -> AppResult<TasksPage> {
    let query = params.backend_query();
    let (page, user) = tokio::join!(api.list_tasks(&query), api.me());
    let (page, user): (_, User) = (page?, user?);
    Ok(TasksPage {
        layout: Layout::member(csrf.value(), Some(&user)),
        filters: FilterView::new(params),
        board: make_board(params, form, page),
        list: list_context(csrf, params),
    })
}

/// The board as an htmx answer; the browser's address shows the canonical list URL.
fn board_response(board: Board, csrf: &CsrfToken, params: &ListParams) -> Response {
    let mut response = BoardFragment {
        board,
        list: list_context(csrf, params),
    }
    .into_response();
    if let Ok(url) = HeaderValue::from_str(&params.href()) {
        response.headers_mut().insert("hx-push-url", url);
    }
    response
}

/// `GET /`: the task list, or just the board when htmx asks for it (filters, paging).
async fn list(api: Api, csrf: CsrfToken, htmx: Htmx, Query(raw): Query<RawListQuery>) -> AppResult<Response> {
    if !api.has_session() {
        return Err(AppError::SessionExpired);
    }
    let params = ListParams::from_raw(raw);
    if htmx.targets_board {
        let board = board(&api, &params, TaskFormValues::blank()).await?;
        return Ok(board_response(board, &csrf, &params));
    }
    Ok(full_page(&api, &csrf, &params, TaskFormValues::blank())
        .await?
        .into_response())
}

/// `POST /tasks`: add a task.
async fn create(api: Api, csrf: CsrfToken, htmx: Htmx, CsrfForm(form): CsrfForm<TaskForm>) -> AppResult<Response> {
    let params = ListParams::from_query_str(&form.return_to);
    let task = NewTask {
        title: form.title.trim().to_owned(),
        description: form.description(),
        priority: form.priority(),
        due_date: form.due_date(),
        tags: form.tags(),
    };
    match api.create_task(&task).await {
        Ok(created) => {
            tracing::info!(task_id = created.id, "task added");
            // Back to the first page, where a new task shows with the default sort.
            let params = params.with_page(1);
            if htmx.request {
                let form = TaskFormValues {
                    autofocus: true,
                    ..TaskFormValues::blank()
                };
                let board = board(&api, &params, form).await?;
                return Ok(board_response(board, &csrf, &params));
            }
            Ok(Redirect::to(&params.href()).into_response())
        }
        Err(BackendError::Rejected { status, message, .. }) if status == StatusCode::UNPROCESSABLE_ENTITY => {
            let values = form.into_values(FormError::from_message(&message, &TASK_FIELDS));
            if htmx.request {
                // htmx swaps 2xx answers: the board comes back with the error and the input.
                let board = board(&api, &params, values).await?;
                return Ok(board_response(board, &csrf, &params));
            }
            let page = full_page(&api, &csrf, &params, values).await?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
        Err(err) => Err(err.into()),
    }
}

/// `GET /tasks/{id}/edit`.
async fn edit_form(
    api: Api,
    csrf: CsrfToken,
    Path(id): Path<String>,
    Query(back): Query<ReturnQuery>,
) -> AppResult<EditTaskPage> {
    let id = task_id(&id)?;
    let task = api.get_task(id).await?;
    let params = ListParams::from_query_str(&back.return_to);
    Ok(EditTaskPage {
        layout: Layout::member(csrf.value(), None),
        task_id: id,
        form: TaskFormValues::from_task(&task),
        list: list_context(&csrf, &params),
        back_href: params.href(),
    })
}

/// `POST /tasks/{id}`: save the edit form. Empty notes and due date clear them.
async fn update(
    api: Api,
    csrf: CsrfToken,
    Path(id): Path<String>,
    CsrfForm(form): CsrfForm<TaskForm>,
) -> AppResult<Response> {
    let id = task_id(&id)?;
    let params = ListParams::from_query_str(&form.return_to);
    let patch = TaskPatch {
        title: Some(form.title.trim().to_owned()),
        description: Some(form.description()),
        priority: Some(form.priority()),
        due_date: Some(form.due_date()),
        tags: Some(form.tags()),
        completed: None,
    };
    match api.update_task(id, &patch).await {
        Ok(_) => Ok(Redirect::to(&params.href()).into_response()),
        Err(BackendError::Rejected { status, message, .. }) if status == StatusCode::UNPROCESSABLE_ENTITY => {
            let page = EditTaskPage {
                layout: Layout::member(csrf.value(), None),
                task_id: id,
                list: list_context(&csrf, &params),
                back_href: params.href(),
                form: form.into_values(FormError::from_message(&message, &TASK_FIELDS)),
            };
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
        Err(err) => Err(err.into()),
    }
}

/// `POST /tasks/{id}/toggle`: mark done or not done.
async fn toggle(
    api: Api,
    csrf: CsrfToken,
    htmx: Htmx,
    Path(id): Path<String>,
    CsrfForm(form): CsrfForm<ToggleForm>,
) -> AppResult<Response> {
    let id = task_id(&id)?;
    let completed = match form.completed.as_deref() {
        Some("true") => true,
        Some("false") => false,
        _ => !api.get_task(id).await?.completed,
    };
    let patch = TaskPatch {
        completed: Some(completed),
        ..TaskPatch::default()
    };
    let task = api.update_task(id, &patch).await?;
    let params = ListParams::from_query_str(&form.return_to);
    if htmx.request {
        return Ok(TaskItemFragment {
            task: TaskView::new(task, today()),
            list: list_context(&csrf, &params),
        }
        .into_response());
    }
    Ok(Redirect::to(&params.href()).into_response())
}

/// `GET /tasks/{id}/delete`: "are you sure?" for browsers without JavaScript.
async fn delete_form(
    api: Api,
    csrf: CsrfToken,
    Path(id): Path<String>,
    Query(back): Query<ReturnQuery>,
) -> AppResult<DeleteTaskPage> {
    let id = task_id(&id)?;
    let task = api.get_task(id).await?;
    let params = ListParams::from_query_str(&back.return_to);
    Ok(DeleteTaskPage {
        layout: Layout::member(csrf.value(), None),
        task: TaskView::new(task, today()),
        list: list_context(&csrf, &params),
        back_href: params.href(),
    })
}

/// `POST /tasks/{id}/delete`.
async fn delete(
    api: Api,
    csrf: CsrfToken,
    htmx: Htmx,
    Path(id): Path<String>,
    CsrfForm(form): CsrfForm<ReturnForm>,
) -> AppResult<Response> {
    let id = task_id(&id)?;
    api.delete_task(id).await?;
    tracing::info!(task_id = id, "task deleted");
    let params = ListParams::from_query_str(&form.return_to);
    if htmx.request {
        let board = board(&api, &params, TaskFormValues::blank()).await?;
        return Ok(board_response(board, &csrf, &params));
    }
    Ok(Redirect::to(&params.href()).into_response())
}
