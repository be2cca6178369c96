//! The LLM engine: any OpenAI-compatible Chat Completions endpoint (`OPENAI_BASE_URL`,
//! `OPENAI_MODEL`, `OPENAI_API_KEY`) with tool calling, offered the same tools as JSON Schemas.
//!
//! A turn is bounded: at most [`MAX_TOOL_ROUNDS`] rounds of tool calls, and one deadline
//! (`OPENAI_TIMEOUT_SECONDS`) for all its requests together. When the provider fails, times out,
//! answers something unreadable or will not stop calling tools, the user gets a clear reply, never
//! a 500: if nothing was changed yet the built-in engine answers instead; otherwise the reply says
//! what was done before the provider failed.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::Date;
use tokio::time::{Instant, timeout_at};

use super::{
    Reply, builtin,
    store::{Message, Role},
    tools::{self, Action, ToolCall, Toolbox},
};
use crate::{config::Secret, error::ApiResult, metrics::Metrics};

/// Most rounds of tool calls in one turn; a model still calling tools after that is stopped.
pub const MAX_TOOL_ROUNDS: usize = 5;
/// Most earlier messages of the conversation sent as context.
const HISTORY_MESSAGES: usize = 20;

/// A client of one provider and model.
///
/// Requests go through ureq with rustls (the ring provider, which the PostgreSQL driver's TLS
/// already brings) and the Mozilla roots compiled in, so `https://` providers work from a
/// `FROM scratch` image that has no CA store. ureq is blocking: each request runs on Tokio's
/// blocking pool, bounded by the turn's deadline.
pub struct LlmClient {
    http: ureq::Agent,
    endpoint: String,
    model: String,
    key: Secret,
    timeout: Duration,
}

/// Why the provider's answer could not be used.
#[derive(Debug)]
enum Failure {
    /// No answer before the deadline.
    Timeout,
    /// Not reachable (connection refused, DNS, TLS).
    Transport,
    /// A non-2xx status.
    Status(u16),
    /// Not the documented shape.
    Malformed(String),
    /// Still calling tools after [`MAX_TOOL_ROUNDS`] rounds.
    ToolLoop,
}

impl Failure {
    /// The `kind` label of the provider-error metric.
    fn kind(&self) -> &'static str {
        match self {
            Self::Timeout => "timeout",
            Self::Transport => "unreachable",
            Self::Status(_) => "status",
            Self::Malformed(_) => "malformed",
            Self::ToolLoop => "tool_loop",
        }
    }

    /// What was wrong with an unreadable answer, for the log.
    fn detail(&self) -> &str {
        match self {
            Self::Malformed(why) => why,
            _ => "",
        }
    }

    /// What to tell the user.
    fn explain(&self) -> String {
        match self {
            Self::Timeout => "The AI assistant did not answer in time.".to_owned(),
            Self::Transport => "The AI assistant could not be reached.".to_owned(),
            Self::Status(status) => format!("The AI assistant answered with an error (HTTP {status})."),
            Self::Malformed(_) => "The AI assistant sent an answer I could not read.".to_owned(),
            Self::ToolLoop => format!(
                "The AI assistant kept calling tools without answering, so I stopped it after {MAX_TOOL_ROUNDS} rounds."
            ),
        }
    }
}

/// `{"choices": [{"message": {...}}]}`, the part of a Chat Completions answer used here.
#[derive(Debug, Deserialize)]
struct Completion {
    choices: Vec<Choice>,
}

#[derive(Debug, Deserialize)]
struct Choice {
    message: AssistantMessage,
}

#[derive(Debug, Deserialize)]
struct AssistantMessage {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<WireToolCall>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct WireToolCall {
    id: String,
    #[serde(rename = "type", default = "function_type")]
    kind: String,
    function: WireFunction,
}

fn function_type() -> String {
    "function".to_owned()
}

/// The function a model calls: its arguments are a JSON document inside a string.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct WireFunction {
    name: String,
    arguments: String,
}

impl LlmClient {
    /// A client for `base_url` (e.g. `https://api.openai.com/v1`); requests go to
    /// `<base_url>/chat/completions`.
    pub fn new(base_url: &str, model: &str, key: Secret, timeout: Duration) -> anyhow::Result<Self> {
        let http = ureq::Agent::config_builder()
            .timeout_connect(Some(timeout.min(Duration::from_secs(5))))
            .max_redirects(0)
            .http_status_as_error(false)
            .user_agent(concat!("todo-backend/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Ok(Self {
            http,
            endpoint: format!("{}/chat/completions", base_url.trim_end_matches('/')),
            model: model.to_owned(),
            key,
            timeout,
        })
    }

    /// Answers `message` through the model, or explains why not and lets the built-in engine
    /// answer (see the module docs).
    pub async fn respond(
        &self,
        tools: Toolbox<'_>,
        history: &[Message],
        message: &str,
        today: Date,
    ) -> ApiResult<Reply> {
        let mut actions = Vec::new();
        let failure = match self.converse(tools, history, message, today, &mut actions).await? {
            Ok(text) => {
                return Ok(Reply {
                    text,
                    actions,
                    engine: "llm",
                });
            }
            Err(failure) => failure,
        };
        tools.metrics().chat_provider_error(failure.kind());
        tracing::warn!(kind = failure.kind(), detail = failure.detail(), model = %self.model, "the LLM provider failed");
        if actions.iter().any(Action::changed_data) || matches!(failure, Failure::ToolLoop) {
            let done: Vec<String> = actions
                .iter()
                .filter(|a| a.changed_data())
                .map(builtin::describe)
                .collect();
            let text = if done.is_empty() {
                format!("{} Nothing was changed.", failure.explain())
            } else {
                format!("{} Before that: {}", failure.explain(), done.join(" "))
            };
            return Ok(Reply {
                text,
                actions,
                engine: "llm",
            });
        }
        let fallback = builtin::respond(tools, message, today).await?;
        actions.extend(fallback.actions);
        Ok(Reply {
            text: format!(
                "{} The built-in assistant answered instead: {}",
                failure.explain(),
                fallback.text
            ),
            actions,
            engine: "builtin-fallback",
        })
    }

    /// The tool-calling loop. `Err` only for database trouble while running a tool.
    async fn converse(
        &self,
        tools: Toolbox<'_>,
        history: &[Message],
        message: &str,
        today: Date,
        actions: &mut Vec<Action>,
    ) -> ApiResult<Result<String, Failure>> {
        let deadline = Instant::now() + self.timeout;
        let mut messages = vec![json!({"role": "system", "content": system_prompt(today)})];
        let earlier = history.len().saturating_sub(HISTORY_MESSAGES);
        for past in &history[earlier..] {
            let role = match past.role {
                Role::User => "user",
                Role::Assistant => "assistant",
            };
            messages.push(json!({"role": role, "content": past.content}));
        }
        messages.push(json!({"role": "user", "content": message}));
        for round in 0..=MAX_TOOL_ROUNDS {
            let answer = match self.complete(&messages, deadline, tools.metrics()).await {
                Ok(answer) => answer,
                Err(failure) => return Ok(Err(failure)),
            };
            let calls = answer.tool_calls.unwrap_or_default();
            if calls.is_empty() {
                return Ok(answer
                    .content
                    .filter(|text| !text.trim().is_empty())
                    .ok_or_else(|| Failure::Malformed("neither content nor tool calls".to_owned())));
            }
            if round == MAX_TOOL_ROUNDS {
                return Ok(Err(Failure::ToolLoop));
            }
            messages.push(json!({"role": "assistant", "content": answer.content, "tool_calls": &calls}));
            for call in calls {
                let action = run_call(tools, &call).await?;
                messages.push(json!({"role": "tool", "tool_call_id": call.id, "content": action.result.to_string()}));
                actions.push(action);
            }
        }
        Ok(Err(Failure::ToolLoop))
    }

    /// One Chat Completions request, within the turn's deadline.
    async fn complete(
        &self,
        messages: &[Value],
        deadline: Instant,
        metrics: &Metrics,
    ) -> Result<AssistantMessage, Failure> {
        let body = json!({
            "model": self.model,
            "messages": messages,
            "tools": tool_specs(),
            "tool_choice": "auto",
        });
        let started = std::time::Instant::now();
        let remaining = deadline.saturating_duration_since(Instant::now());
        let request = self
            .http
            .post(&self.endpoint)
            .header("Authorization", &format!("Bearer {}", self.key.expose()))
            .config()
            .timeout_global(Some(remaining))
            .build();
        let call = tokio::task::spawn_blocking(move || -> Result<(u16, String), Failure> {
            let mut response = request.send_json(&body).map_err(transport_failure)?;
            let status = response.status().as_u16();
            let text = response.body_mut().read_to_string().map_err(transport_failure)?;
            Ok((status, text))
        });
        let (status, text) = match timeout_at(deadline, call).await {
            Err(_) => return Err(Failure::Timeout),
            Ok(Err(_)) => return Err(Failure::Transport),
            Ok(Ok(result)) => result?,
        };
        metrics.chat_provider_latency(started.elapsed().as_secs_f64());
        if !(200..300).contains(&status) {
            return Err(Failure::Status(status));
        }
        let completion: Completion =
            serde_json::from_str(&text).map_err(|err| Failure::Malformed(format!("not a completion: {err}")))?;
        completion
            .choices
            .into_iter()
            .next()
            .map(|choice| choice.message)
            .ok_or_else(|| Failure::Malformed("no choices".to_owned()))
    }
}

/// A request that got no usable answer: its deadline passed, or the provider could not be
/// reached or read. The error text (never the key: it travels only in a header) goes to the log.
fn transport_failure(err: ureq::Error) -> Failure {
    match err {
        ureq::Error::Timeout(_) => Failure::Timeout,
        err => {
            tracing::debug!(error = %err, "LLM request failed");
            Failure::Transport
        }
    }
}

/// Runs one tool call of the model. Arguments that are not JSON come back to the model as an
/// error result it can correct.
async fn run_call(tools: Toolbox<'_>, call: &WireToolCall) -> ApiResult<Action> {
    match serde_json::from_str::<Value>(&call.function.arguments) {
        Ok(arguments) => tools.call(ToolCall::new(&call.function.name, arguments)).await,
        Err(err) => Ok(Action {
            tool: call.function.name.clone(),
            arguments: Value::String(call.function.arguments.clone()),
            result: json!({"error": {"code": "invalid_arguments", "message": format!("the arguments are not valid JSON: {err}")}}),
        }),
    }
}

/// The tools in the Chat Completions `tools` format.
fn tool_specs() -> Vec<Value> {
    tools::definitions()
        .into_iter()
        .map(|tool| {
            json!({
                "type": "function",
                "function": {"name": tool.name, "description": tool.description, "parameters": tool.parameters},
            })
        })
        .collect()
}

/// What the model is told before the conversation.
fn system_prompt(today: Date) -> String {
    format!(
        "You are the assistant of a todo app. You manage the signed-in user's tasks only through the \
         tools add_task, list_tasks, update_task, complete_task and delete_task. Today is {today} ({}). \
         Dates are YYYY-MM-DD. Overdue means pending with due_to set to yesterday. Name a task by id \
         when you know it, otherwise by its title. If a tool reports several matching tasks, ask which \
         one. Answer briefly, in plain text.",
        today.weekday()
    )
}
