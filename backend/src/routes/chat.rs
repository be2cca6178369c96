//! `/chat` and `/conversations`: the chat assistant, acting only on the calling user's tasks, and
//! that user's stored conversations.

use axum::{Json, extract::State, http::StatusCode};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    auth::AuthUser,
    chat::{
        self, ChatRequest, ChatResponse,
        store::{self, Conversation, ConversationList},
    },
    error::{ApiResult, ErrorBody},
    extract::{ApiJson, IdPath},
    state::AppState,
};

/// The chat routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(post_chat))
        .routes(routes!(list_conversations))
        .routes(routes!(get_conversation, delete_conversation))
}

/// Say something to the assistant; it acts on your tasks through its tools and answers.
#[utoipa::path(
    post,
    path = "/chat",
    tag = "chat",
    security(("bearer" = [])),
    request_body = ChatRequest,
    responses(
        (status = 200, description = "The answer, the tool calls made and the conversation it was stored in", body = ChatResponse),
        (status = 400, description = "The body is not valid JSON", body = ErrorBody),
        (status = 401, description = "Not logged in", body = ErrorBody),
        (status = 404, description = "No such conversation for this user", body = ErrorBody),
        (status = 413, description = "The body is larger than 64 KiB", body = ErrorBody),
        (status = 415, description = "The body is not `application/json`", body = ErrorBody),
        (status = 422, description = "The message is empty or too long, or a field is unknown", body = ErrorBody),
    )
)]
async fn post_chat(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiJson(body): ApiJson<ChatRequest>,
) -> ApiResult<Json<ChatResponse>> {
    Ok(Json(
        chat::chat(&state.assistant, &state.db, &state.metrics, auth.id, body).await?,
    ))
}

/// Your conversations, most recently active first.
#[utoipa::path(
    get,
    path = "/conversations",
    tag = "chat",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Up to 100 conversations", body = ConversationList),
        (status = 401, description = "Not logged in", body = ErrorBody),
    )
)]
async fn list_conversations(State(state): State<AppState>, auth: AuthUser) -> ApiResult<Json<ConversationList>> {
    Ok(Json(store::list(&state.db, auth.id).await?))
}

/// One of your conversations, its messages in order.
#[utoipa::path(
    get,
    path = "/conversations/{id}",
    tag = "chat",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Conversation id", minimum = 1, example = 1)),
    responses(
        (status = 200, description = "The conversation", body = Conversation),
        (status = 400, description = "The id is not a positive integer", body = ErrorBody),
        (status = 401, description = "Not logged in", body = ErrorBody),
        (status = 404, description = "No such conversation for this user", body = ErrorBody),
    )
)]
async fn get_conversation(
    State(state): State<AppState>,
    auth: AuthUser,
    IdPath(id): IdPath,
) -> ApiResult<Json<Conversation>> {
    Ok(Json(store::get(&state.db, auth.id, id).await?))
}

/// Delete one of your conversations (the tasks it changed stay as they are).
#[utoipa::path(
    delete,
    path = "/conversations/{id}",
    tag = "chat",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Conversation id", minimum = 1, example = 1)),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "The id is not a positive integer", body = ErrorBody),
        (status = 401, description = "Not logged in", body = ErrorBody),
        (status = 404, description = "No such conversation for this user", body = ErrorBody),
    )
)]
async fn delete_conversation(
    State(state): State<AppState>,
    auth: AuthUser,
    IdPath(id): IdPath,
) -> ApiResult<StatusCode> {
    store::delete(&state.db, auth.id, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
