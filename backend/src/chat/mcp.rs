//! The assistant's tools as an MCP server (Model Context Protocol, streamable HTTP at `/mcp`),
//! through the official Rust SDK `rmcp`, so desktop assistants and agents can manage a user's
//! tasks. Every request carries the user's login token (`Authorization: Bearer <token>`, the same
//! token the REST API takes); without a valid one it is refused with 401 before rmcp sees it.
//!
//! The server is stateless (no MCP session kept in memory), like the rest of the backend, so any
//! replica answers any request. It answers plain JSON rather than event streams: every tool is a
//! single request and response.

use std::sync::Arc;

use axum::{
    Router,
    extract::{FromRef, FromRequestParts, Request, State},
    http::{HeaderValue, header},
    middleware::{Next, from_fn_with_state},
    response::{IntoResponse, Response},
};
use rmcp::{
    ErrorData, ServerHandler,
    model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation, ListToolsResult,
        PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
    },
    service::{RequestContext, RoleServer},
    transport::streamable_http_server::{
        StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
    },
};
use serde_json::Value;

use super::tools::{self, ToolCall, Toolbox};
use crate::{
    auth::{AuthUser, Tokens},
    db::Db,
    metrics::Metrics,
};

/// Where the MCP endpoint is served.
pub const PATH: &str = "/mcp";

/// The authenticated user of an MCP request, put in the request's extensions by
/// [`authenticate`]; rmcp hands the request's parts to the tool handlers.
#[derive(Debug, Clone, Copy)]
struct McpUser(i64);

/// What authenticating an MCP request needs (the same checks as the REST API's [`AuthUser`]).
#[derive(Clone)]
struct Credentials {
    tokens: Tokens,
    db: Db,
}

impl FromRef<Credentials> for Tokens {
    fn from_ref(credentials: &Credentials) -> Tokens {
        credentials.tokens.clone()
    }
}

impl FromRef<Credentials> for Db {
    fn from_ref(credentials: &Credentials) -> Db {
        credentials.db.clone()
    }
}

/// The MCP route, behind token authentication; it fits a router of any state.
pub fn router<S: Clone + Send + Sync + 'static>(tokens: Tokens, db: Db, metrics: Arc<Metrics>) -> Router<S> {
    let handler = TodoMcp {
        db: db.clone(),
        metrics,
    };
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true)
        .with_sse_keep_alive(None)
        // rmcp accepts only loopback Host headers by default (against DNS rebinding of local
        // servers); this one is reached by its Service name and needs a token anyway.
        .disable_allowed_hosts();
    let service = StreamableHttpService::new(
        move || Ok(handler.clone()),
        // Unused in stateless mode, but the service needs a manager.
        LocalSessionManager::default().into(),
        config,
    );
    Router::new()
        .route_service(PATH, service)
        .route_layer(from_fn_with_state(Credentials { tokens, db }, authenticate))
}

/// Lets a request through only with a valid login token, and records whose it is.
async fn authenticate(State(credentials): State<Credentials>, request: Request, next: Next) -> Response {
    let (mut parts, body) = request.into_parts();
    match AuthUser::from_request_parts(&mut parts, &credentials).await {
        Ok(user) => {
            parts.extensions.insert(McpUser(user.id));
            next.run(Request::from_parts(parts, body)).await
        }
        Err(err) => {
            let mut response = err.into_response();
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            response
        }
    }
}

/// The MCP handler: the five tools, run as the request's user.
#[derive(Clone)]
pub struct TodoMcp {
    db: Db,
    metrics: Arc<Metrics>,
}

impl ServerHandler for TodoMcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("todo", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "Manage the signed-in user's todo tasks: add_task, list_tasks, update_task, complete_task, \
                 delete_task. Dates are YYYY-MM-DD; name a task by id or by a title that matches one task.",
            )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let tools = tools::definitions()
            .into_iter()
            .map(|tool| {
                let schema = match tool.parameters {
                    Value::Object(schema) => schema,
                    _ => serde_json::Map::new(),
                };
                Tool::new(tool.name, tool.description, schema)
            })
            .collect();
        Ok(ListToolsResult::with_all_items(tools))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let user = context
            .extensions
            .get::<axum::http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<McpUser>())
            .copied()
            .ok_or_else(|| ErrorData::invalid_request("the request is not authenticated", None))?;
        let arguments = request.arguments.map_or(Value::Null, Value::Object);
        let toolbox = Toolbox::new(&self.db, user.0, &self.metrics);
        let action = toolbox
            .call(ToolCall::new(&request.name, arguments))
            .await
            .map_err(|err| {
                // The same words the REST API would answer (no internal detail).
                let message = match &err {
                    crate::error::ApiError::Internal(detail) => {
                        tracing::error!(error = format!("{detail:#}"), "an MCP tool call failed");
                        "internal server error".to_owned()
                    }
                    other => other.to_string(),
                };
                ErrorData::internal_error(message, None)
            })?;
        let content = vec![ContentBlock::text(action.result.to_string())];
        let result = if action.error_code().is_some() {
            CallToolResult::error(content)
        } else {
            CallToolResult::success(content)
        };
        Ok(result.into())
    }
}
