//! The chat page's templates and view models: the conversation (each assistant message with the
//! tasks it changed shown inline) and the past conversations.

use askama::Template;
use axum::response::{IntoResponse, Response};
use time::Date;

use super::{Layout, TaskView, render};
use crate::backend_client::{
    Task,
    chat::{Action, ChatMessage, ConversationSummary},
};

/// `GET /chat` and `GET /chat/{id}`.
#[derive(Debug, Template)]
#[template(path = "chat/index.html")]
pub struct ChatPage {
    /// Page frame.
    pub layout: Layout,
    /// Past conversations, most recent first.
    pub conversations: Vec<ConversationLink>,
    /// The open conversation and the message form.
    pub chat: ChatView,
    /// Always `false`: the list is in place (the fragment swaps it out of band).
    pub swap_oob: bool,
}

/// The conversation and its form, for htmx to swap in place (`#chat`), with the list of past
/// conversations swapped out of band (`#conversations`).
#[derive(Debug, Template)]
#[template(path = "chat/conversation_fragment.html")]
pub struct ChatFragment {
    /// The conversation.
    pub chat: ChatView,
    /// Past conversations, most recent first.
    pub conversations: Vec<ConversationLink>,
    /// Always `true`: htmx swaps the list of conversations out of band.
    pub swap_oob: bool,
}

impl IntoResponse for ChatPage {
    fn into_response(self) -> Response {
        render(&self)
    }
}

impl IntoResponse for ChatFragment {
    fn into_response(self) -> Response {
        render(&self)
    }
}

/// A past conversation in the side list.
#[derive(Debug, Clone)]
pub struct ConversationLink {
    /// `/chat/{id}`.
    pub href: String,
    /// Its title.
    pub title: String,
    /// Whether it is the one open.
    pub current: bool,
}

impl ConversationLink {
    /// The links, marking `open` as current.
    pub fn list(items: Vec<ConversationSummary>, open: Option<i64>) -> Vec<Self> {
        items
            .into_iter()
            .map(|c| Self {
                href: format!("/chat/{}", c.id),
                title: c.title,
                current: Some(c.id) == open,
            })
            .collect()
    }
}

/// The conversation and the form to continue it.
#[derive(Debug, Clone, Default)]
pub struct ChatView {
    /// The conversation, when one is open (a new one starts without).
    pub conversation_id: Option<i64>,
    /// Its messages, oldest first.
    pub messages: Vec<MessageView>,
    /// This browser's CSRF token.
    pub csrf_token: String,
    /// The message typed, kept when it was refused.
    pub draft: String,
    /// Why the message was refused.
    pub error: Option<String>,
}

impl ChatView {
    /// `/chat/{id}/delete` for an open conversation.
    pub fn delete_href(&self) -> Option<String> {
        self.conversation_id.map(|id| format!("/chat/{id}/delete"))
    }
}

/// One message.
#[derive(Debug, Clone)]
pub struct MessageView {
    /// Written by the user (else by the assistant).
    pub from_user: bool,
    /// The text, line by line.
    pub lines: Vec<String>,
    /// What the message did to tasks.
    pub changes: Vec<ChangeView>,
}

impl MessageView {
    /// A stored message, judging due dates against `today`.
    pub fn new(message: ChatMessage, today: Date) -> Self {
        Self {
            from_user: message.role == "user",
            lines: message.content.lines().map(str::to_owned).collect(),
            changes: message
                .actions
                .iter()
                .filter_map(|action| ChangeView::new(action, today))
                .collect(),
        }
    }
}

/// A task the assistant changed, shown under its message.
#[derive(Debug, Clone)]
pub struct ChangeView {
    /// `Added`, `Done`, `Reopened`, `Updated` or `Deleted`.
    pub label: &'static str,
    /// The task as it is now (absent once deleted).
    pub task: Option<TaskView>,
    /// The title (for a deleted task).
    pub title: String,
}

impl ChangeView {
    /// What an action changed; `None` for lists and failed calls (the reply says those).
    pub fn new(action: &Action, today: Date) -> Option<Self> {
        if action.result.get("error").is_some() {
            return None;
        }
        let label = match action.tool.as_str() {
            "add_task" => "Added",
            "complete_task" => "Done",
            "delete_task" => "Deleted",
            "update_task" if action.arguments.get("completed") == Some(&serde_json::Value::Bool(false)) => "Reopened",
            "update_task" => "Updated",
            _ => return None,
        };
        if label == "Deleted" {
            let title = action.result["deleted"]["title"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            return Some(Self {
                label,
                task: None,
                title,
            });
        }
        let task: Task = serde_json::from_value(action.result.get("task")?.clone()).ok()?;
        Some(Self {
            label,
            title: task.title.clone(),
            task: Some(TaskView::new(task, today)),
        })
    }
}
