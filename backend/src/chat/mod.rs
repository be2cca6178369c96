//! The chat assistant: people manage their tasks in plain language.
//!
//! One interface, two engines: the built-in parser ([`builtin`], the default: no key, no
//! network) and an OpenAI-compatible model with tool calling ([`llm`], when `OPENAI_API_KEY` is
//! set), which falls back to the built-in engine when the provider fails. Both act only through
//! [`tools`], which run the REST API's own task functions as the calling user. Conversations live
//! in the database ([`store`]); [`mcp`] offers the same tools to MCP clients.

pub mod builtin;
mod dates;
pub mod llm;
pub mod mcp;
pub mod store;
pub mod tools;

use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime};
use utoipa::ToSchema;

use self::{
    llm::LlmClient,
    store::{Message, Turn},
    tools::{Action, Toolbox},
};
use crate::{
    config::Config,
    db::Db,
    error::{ApiError, ApiResult},
    metrics::Metrics,
};

/// Longest message accepted, in characters.
pub const MAX_MESSAGE_CHARS: usize = 2000;

/// The body of `POST /chat`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChatRequest {
    /// What the user says, 1 to 2000 characters.
    pub message: String,
    /// The conversation to continue; absent: a new one.
    #[serde(default)]
    pub conversation_id: Option<i64>,
}

/// The answer to `POST /chat`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChatResponse {
    /// The conversation the turn was stored in.
    pub conversation_id: i64,
    /// What the assistant says.
    pub reply: String,
    /// The tool calls it made, in order, with their results.
    pub actions: Vec<Action>,
    /// Which engine answered: `builtin`, `llm`, or `builtin-fallback` (the provider failed).
    pub engine: String,
}

/// What an engine answered.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// The text for the user.
    pub text: String,
    /// The tool calls made.
    pub actions: Vec<Action>,
    /// Which engine answered.
    pub engine: &'static str,
}

impl Reply {
    /// An answer of the built-in engine.
    pub fn builtin(text: String, actions: Vec<Action>) -> Self {
        Self {
            text,
            actions,
            engine: "builtin",
        }
    }
}

/// The engine in use, chosen once at start-up from the settings.
pub enum Assistant {
    /// The deterministic parser.
    Builtin,
    /// A model behind an OpenAI-compatible API, with the parser as fallback.
    Llm(LlmClient),
}

impl Assistant {
    /// The LLM engine when `OPENAI_API_KEY` is set (and not empty), else the built-in one.
    pub fn from_config(config: &Config) -> anyhow::Result<Self> {
        match config
            .openai_api_key
            .as_ref()
            .filter(|key| !key.expose().trim().is_empty())
        {
            Some(key) => Ok(Self::Llm(LlmClient::new(
                &config.openai_base_url,
                &config.openai_model,
                key.clone(),
                config.openai_timeout(),
            )?)),
            None => Ok(Self::Builtin),
        }
    }

    /// The engine's name, for logs.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Builtin => "builtin",
            Self::Llm(_) => "llm",
        }
    }

    /// Answers `message`, with the conversation so far as context.
    pub async fn respond(
        &self,
        tools: Toolbox<'_>,
        history: &[Message],
        message: &str,
        today: Date,
    ) -> ApiResult<Reply> {
        match self {
            Self::Builtin => builtin::respond(tools, message, today).await,
            Self::Llm(client) => client.respond(tools, history, message, today).await,
        }
    }
}

/// Today's date for the assistant (UTC: the server knows no user's time zone).
pub fn today() -> Date {
    OffsetDateTime::now_utc().date()
}

/// Checks a message: trimmed, 1 to [`MAX_MESSAGE_CHARS`] characters.
fn check_message(raw: &str) -> ApiResult<String> {
    let message = raw.trim();
    let chars = message.chars().count();
    if chars == 0 || chars > MAX_MESSAGE_CHARS {
        return Err(ApiError::validation(format!(
            "message must be 1 to {MAX_MESSAGE_CHARS} characters long"
        )));
    }
    Ok(message.to_owned())
}

/// One turn: reads the conversation (this user's only), lets the engine answer through the tools
/// as this user, and stores the message and the answer.
pub async fn chat(
    assistant: &Assistant,
    db: &Db,
    metrics: &Metrics,
    user_id: i64,
    request: ChatRequest,
) -> ApiResult<ChatResponse> {
    let message = check_message(&request.message)?;
    let history = match request.conversation_id {
        Some(id) => store::get(db, user_id, id).await?.messages,
        None => Vec::new(),
    };
    let tools = Toolbox::new(db, user_id, metrics);
    let reply = assistant.respond(tools, &history, &message, today()).await?;
    metrics.chat_turn(reply.engine);
    let turn = Turn {
        message,
        reply: reply.text.clone(),
        actions: reply.actions.clone(),
    };
    let conversation_id = store::save_turn(db, user_id, request.conversation_id, turn).await?;
    Ok(ChatResponse {
        conversation_id,
        reply: reply.text,
        actions: reply.actions,
        engine: reply.engine.to_owned(),
    })
}
