//! `/tasks` and `/tasks/{id}`: each user sees and changes only their own tasks.

use axum::{extract::State, http::StatusCode};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    auth::{AuthUser, SignedToken},
    error::{ApiError, ApiResult, ErrorBody},
    extract::{ApiJson, ApiQuery, IdPath},
    sessions,
    state::AppState,
    tasks::{self, ListQuery, NewTask, Owner, PageJson, Task, TaskPage, TaskPatch},
};

/// The task routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_tasks, create_task))
        .routes(routes!(get_task, update_task, delete_task))
}

/// List, filter, sort and page through your tasks.
#[utoipa::path(
    get,
    path = "/tasks",
    tag = "tasks",
    security(("bearer" = [])),
    params(ListQuery),
    responses(
        (status = 200, description = "One page of tasks and the total that match", body = TaskPage),
        (status = 401, description = "Not logged in", body = ErrorBody),
        (status = 422, description = "A query parameter is invalid (limit out of 1..=100, q over 200 characters, control characters)", body = ErrorBody),
    )
)]
// The two busiest routes take the token unchecked: their query checks the session in the same
// round trip ([`Owner::Token`]); a malformed request still gets an ended session's 401 first.
async fn list_tasks(
    State(state): State<AppState>,
    SignedToken(token): SignedToken,
    query: Result<ApiQuery<ListQuery>, ApiError>,
) -> ApiResult<PageJson> {
    let ApiQuery(query) = match query {
        Ok(query) => query,
        Err(rejected) => return Err(sessions::refuse(&state.db, &token, rejected).await),
    };
    tasks::list_json(&state.db, Owner::Token(&token), query).await
}

/// Create a task.
#[utoipa::path(
    post,
    path = "/tasks",
    tag = "tasks",
    security(("bearer" = [])),
    request_body = NewTask,
    responses(
        (status = 201, description = "Created", body = Task),
        (status = 400, description = "The body is not valid JSON", body = ErrorBody),
        (status = 401, description = "Not logged in", body = ErrorBody),
        (status = 413, description = "The body is larger than 64 KiB", body = ErrorBody),
        (status = 415, description = "The body is not `application/json`", body = ErrorBody),
        (status = 422, description = "Invalid field", body = ErrorBody),
    )
)]
async fn create_task(
    State(state): State<AppState>,
    SignedToken(token): SignedToken,
    body: Result<ApiJson<NewTask>, ApiError>,
) -> ApiResult<(StatusCode, axum::Json<Task>)> {
    let ApiJson(body) = match body {
        Ok(body) => body,
        Err(rejected) => return Err(sessions::refuse(&state.db, &token, rejected).await),
    };
    let task = tasks::create(&state.db, Owner::Token(&token), body).await?;
    Ok((StatusCode::CREATED, axum::Json(task)))
}

/// One of your tasks.
#[utoipa::path(
    get,
    path = "/tasks/{id}",
    tag = "tasks",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Task id", minimum = 1, example = 1)),
    responses(
        (status = 200, description = "The task", body = Task),
        (status = 400, description = "The id is not a positive integer (`invalid_id`)", body = ErrorBody),
        (status = 401, description = "Not logged in", body = ErrorBody),
        (status = 404, description = "No such task for this user", body = ErrorBody),
    )
)]
async fn get_task(State(state): State<AppState>, auth: AuthUser, IdPath(id): IdPath) -> ApiResult<axum::Json<Task>> {
    Ok(axum::Json(tasks::get(&state.db, auth.id, id).await?))
}

/// Change some fields of a task.
#[utoipa::path(
    patch,
    path = "/tasks/{id}",
    tag = "tasks",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Task id", minimum = 1, example = 1)),
    request_body = TaskPatch,
    responses(
        (status = 200, description = "The updated task", body = Task),
        (status = 400, description = "The id is not a positive integer, or the body is not valid JSON", body = ErrorBody),
        (status = 401, description = "Not logged in", body = ErrorBody),
        (status = 404, description = "No such task for this user", body = ErrorBody),
        (status = 413, description = "The body is larger than 64 KiB", body = ErrorBody),
        (status = 415, description = "The body is not `application/json`", body = ErrorBody),
        (status = 422, description = "Invalid field", body = ErrorBody),
    )
)]
async fn update_task(
    State(state): State<AppState>,
    auth: AuthUser,
    IdPath(id): IdPath,
    ApiJson(body): ApiJson<TaskPatch>,
) -> ApiResult<axum::Json<Task>> {
    Ok(axum::Json(tasks::update(&state.db, auth.id, id, body).await?))
}

/// Delete a task.
#[utoipa::path(
    delete,
    path = "/tasks/{id}",
    tag = "tasks",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Task id", minimum = 1, example = 1)),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "The id is not a positive integer (`invalid_id`)", body = ErrorBody),
        (status = 401, description = "Not logged in", body = ErrorBody),
        (status = 404, description = "No such task for this user", body = ErrorBody),
    )
)]
async fn delete_task(State(state): State<AppState>, auth: AuthUser, IdPath(id): IdPath) -> ApiResult<StatusCode> {
    tasks::delete(&state.db, auth.id, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
