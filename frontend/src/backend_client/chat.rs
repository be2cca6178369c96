//! The chat assistant's part of the Todo API: `POST /chat` and the user's conversations.

use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Api, BackendError};

/// Body of `POST /chat`.
#[derive(Debug, Serialize)]
pub struct ChatRequest<'a> {
    /// What the user says.
    pub message: &'a str,
    /// The conversation to continue, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<i64>,
}

/// A tool call the assistant made and its result, as the API shows it.
#[derive(Debug, Clone, Deserialize)]
pub struct Action {
    /// `add_task`, `list_tasks`, `update_task`, `complete_task` or `delete_task`.
    pub tool: String,
    /// The arguments.
    pub arguments: Value,
    /// `task`, `tasks` and `total`, `deleted`, or `error`.
    pub result: Value,
}

/// The answer to `POST /chat`.
#[derive(Debug, Deserialize)]
pub struct ChatReply {
    /// Where the turn was stored.
    pub conversation_id: i64,
    /// What the assistant says.
    pub reply: String,
    /// What it did.
    pub actions: Vec<Action>,
    /// `builtin`, `llm` or `builtin-fallback`.
    pub engine: String,
}

/// A conversation as listed.
#[derive(Debug, Clone, Deserialize)]
pub struct ConversationSummary {
    /// Numeric id.
    pub id: i64,
    /// The start of its first message.
    pub title: String,
    /// Last activity (RFC 3339).
    pub updated_at: String,
}

/// `GET /conversations`.
#[derive(Debug, Deserialize)]
pub struct ConversationList {
    /// Most recently active first.
    pub items: Vec<ConversationSummary>,
}

/// One message of a conversation.
#[derive(Debug, Clone, Deserialize)]
pub struct ChatMessage {
    /// `user` or `assistant`.
    pub role: String,
    /// The text.
    pub content: String,
    /// What an assistant message did.
    #[serde(default)]
    pub actions: Vec<Action>,
}

/// `GET /conversations/{id}`.
#[derive(Debug, Deserialize)]
pub struct Conversation {
    /// Numeric id.
    pub id: i64,
    /// The start of its first message.
    pub title: String,
    /// Oldest first.
    pub messages: Vec<ChatMessage>,
}

impl Api {
    /// `POST /chat`.
    pub async fn chat(&self, request: &ChatRequest<'_>) -> Result<ChatReply, BackendError> {
        let builder = self.authed(Method::POST, "/chat")?.json(request);
        self.send(builder.timeout(self.client.chat_timeout), "chat").await
    }

    /// `GET /conversations`.
    pub async fn conversations(&self) -> Result<ConversationList, BackendError> {
        self.send(self.authed(Method::GET, "/conversations")?, "list conversations")
            .await
    }

    /// `GET /conversations/{id}`.
    pub async fn conversation(&self, id: i64) -> Result<Conversation, BackendError> {
        self.send(
            self.authed(Method::GET, &format!("/conversations/{id}"))?,
            "get conversation",
        )
        .await
    }

    /// `DELETE /conversations/{id}`.
    pub async fn delete_conversation(&self, id: i64) -> Result<(), BackendError> {
        self.execute(
            self.authed(Method::DELETE, &format!("/conversations/{id}"))?,
            "delete conversation",
        )
        .await?;
        Ok(())
    }
}
