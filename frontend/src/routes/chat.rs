//! `/chat`: talk to the assistant that manages your tasks.
//!
//! Without JavaScript the message form posts to `/chat`, which answers 303 to the conversation
//! (`/chat/{id}`). With htmx (`HX-Request`), the same handler answers with the conversation
//! fragment to swap into `#chat`, and pushes `/chat/{id}` into the address bar.

use axum::{
    Router,
    extract::Path,
    http::{HeaderValue, StatusCode},
    response::{IntoResponse, Redirect, Response},
    routing::{get, post},
};
use serde::Deserialize;
use time::OffsetDateTime;

use crate::{
    backend_client::{
        Api, BackendError, User,
        chat::{ChatRequest, Conversation},
    },
    csrf::{CsrfForm, CsrfToken},
    error::{AppError, AppResult},
    views::{
        Layout,
        chat::{ChatFragment, ChatPage, ChatView, ConversationLink, MessageView},
    },
};

/// The chat routes.
pub fn router() -> Router<crate::state::AppState> {
    Router::new()
        .route("/chat", get(new_conversation).post(send))
        .route("/chat/{id}", get(open_conversation))
        .route("/chat/{id}/delete", post(delete))
}

/// The message form.
#[derive(Debug, Deserialize)]
struct MessageForm {
    #[serde(default)]
    message: String,
    #[serde(default)]
    conversation_id: Option<String>,
}

/// Forms with nothing but the CSRF token.
#[derive(Debug, Deserialize)]
struct EmptyForm {}

fn conversation_id(raw: &str) -> AppResult<i64> {
    raw.parse::<i64>().ok().filter(|id| *id > 0).ok_or(AppError::NotFound)
}

fn is_htmx(headers: &axum::http::HeaderMap) -> bool {
    headers.get("hx-request").is_some_and(|v| v == "true") && headers.get("hx-history-restore-request").is_none()
}

fn chat_view(csrf: &CsrfToken, conversation: Option<Conversation>) -> ChatView {
    let today = OffsetDateTime::now_utc().date();
    ChatView {
        conversation_id: conversation.as_ref().map(|c| c.id),
        messages: conversation
            .map(|c| c.messages.into_iter().map(|m| MessageView::new(m, today)).collect())
            .unwrap_or_default(),
        csrf_token: csrf.value().to_owned(),
        ..ChatView::default()
    }
}

/// The whole page around `chat`: the past conversations and the user, fetched side by side.
async fn page(api: &Api, csrf: &CsrfToken, chat: ChatView) -> AppResult<ChatPage> {
    let (list, user) = tokio::join!(api.conversations(), api.me());
    let (list, user): (_, User) = (list?, user?);
    Ok(ChatPage {
        layout: Layout::member(csrf.value(), Some(&user)),
        conversations: ConversationLink::list(list.items, chat.conversation_id),
        chat,
        swap_oob: false,
    })
}

/// The conversation and the past conversations, for htmx.
async fn fragment(api: &Api, chat: ChatView) -> AppResult<ChatFragment> {
    let list = api.conversations().await?;
    Ok(ChatFragment {
        conversations: ConversationLink::list(list.items, chat.conversation_id),
        chat,
        swap_oob: true,
    })
}

/// `GET /chat`: a new conversation.
async fn new_conversation(api: Api, csrf: CsrfToken) -> AppResult<ChatPage> {
    if !api.has_session() {
        return Err(AppError::SessionExpired);
    }
    page(&api, &csrf, chat_view(&csrf, None)).await
}

/// `GET /chat/{id}`: a past conversation.
async fn open_conversation(api: Api, csrf: CsrfToken, Path(id): Path<String>) -> AppResult<ChatPage> {
    let id = conversation_id(&id)?;
    let conversation = api.conversation(id).await?;
    page(&api, &csrf, chat_view(&csrf, Some(conversation))).await
}

/// `POST /chat`: say something; the answer is stored with the conversation.
async fn send(
    api: Api,
    csrf: CsrfToken,
    headers: axum::http::HeaderMap,
    CsrfForm(form): CsrfForm<MessageForm>,
) -> AppResult<Response> {
    let htmx = is_htmx(&headers);
    let continuing = match form.conversation_id.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
        Some(raw) => Some(conversation_id(raw)?),
        None => None,
    };
    let request = ChatRequest {
        message: &form.message,
        conversation_id: continuing,
    };
    match api.chat(&request).await {
        Ok(reply) => {
            tracing::info!(
                conversation_id = reply.conversation_id,
                engine = %reply.engine,
                actions = reply.actions.len(),
                "chat message answered"
            );
            let href = format!("/chat/{}", reply.conversation_id);
            if !htmx {
                return Ok(Redirect::to(&href).into_response());
            }
            let conversation = api.conversation(reply.conversation_id).await?;
            let mut response = fragment(&api, chat_view(&csrf, Some(conversation)))
                .await?
                .into_response();
            if let Ok(url) = HeaderValue::from_str(&href) {
                response.headers_mut().insert("hx-push-url", url);
            }
            Ok(response)
        }
        Err(BackendError::Rejected { status, message, .. }) if status == StatusCode::UNPROCESSABLE_ENTITY => {
            // The message is kept, with what is wrong with it.
            let conversation = match continuing {
                Some(id) => Some(api.conversation(id).await?),
                None => None,
            };
            let chat = ChatView {
                draft: form.message,
                error: Some(capitalised(&message)),
                ..chat_view(&csrf, conversation)
            };
            if htmx {
                return Ok(fragment(&api, chat).await?.into_response());
            }
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page(&api, &csrf, chat).await?).into_response())
        }
        Err(err) => Err(err.into()),
    }
}

/// `POST /chat/{id}/delete`: forget a conversation (its tasks stay).
async fn delete(api: Api, Path(id): Path<String>, CsrfForm(_form): CsrfForm<EmptyForm>) -> AppResult<Redirect> {
    let id = conversation_id(&id)?;
    api.delete_conversation(id).await?;
    tracing::info!(conversation_id = id, "conversation deleted");
    Ok(Redirect::to("/chat"))
}

/// "message must be ..." -> "Message must be ...".
fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect::<String>() + ".",
        None => String::new(),
    }
}
