//! The MCP server at /mcp, driven by a real `rmcp` client over streamable HTTP against the
//! running backend: it lists the tools and calls add / list / complete as the token's user; a
//! request without a valid token is refused.

use crate::support::{Engine, TestApp};
use reqwest::{Method, StatusCode};
use rmcp::{
    ServiceExt,
    model::{CallToolRequestParams, CallToolResult, ClientCapabilities, ClientConfig, Implementation},
    service::{RoleClient, RunningService},
    transport::{StreamableHttpClientTransport, streamable_http_client::StreamableHttpClientTransportConfig},
};
use serde_json::{Value, json};

on_both_engines!(an_mcp_client_lists_and_calls_the_tools_as_the_tokens_user);

async fn connect(app: &TestApp, token: &str) -> Result<RunningService<RoleClient, ClientConfig>, String> {
    let config = StreamableHttpClientTransportConfig::with_uri(app.url("/mcp")).auth_header(token);
    let transport = StreamableHttpClientTransport::from_config(config);
    let info = ClientConfig::new(
        ClientCapabilities::default(),
        Implementation::new("todo-test-client", "0.0.1"),
    );
    info.serve(transport).await.map_err(|err| format!("{err:?}"))
}

/// Calls a tool; returns whether it reported an error, and its JSON result.
async fn call(client: &RunningService<RoleClient, ClientConfig>, tool: &str, arguments: Value) -> (bool, Value) {
    let params = CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments.as_object().unwrap().clone());
    let result: CallToolResult = client.call_tool(params).await.expect("the call is answered");
    let text = result.content[0].as_text().expect("a text result").text.clone();
    (
        result.is_error == Some(true),
        serde_json::from_str(&text).expect("JSON in the text"),
    )
}

async fn an_mcp_client_lists_and_calls_the_tools_as_the_tokens_user(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (token, _) = app.register("mcp-user").await;
    let (other, _) = app.register("mcp-other").await;
    let theirs = app.create_task(&other, json!({"title": "not yours"})).await;

    let client = connect(&app, &token)
        .await
        .expect("the client connects with a valid token");
    let tools = client.list_all_tools().await.expect("tools are listed");
    let names: Vec<&str> = tools.iter().map(|t| &*t.name).collect();
    assert_eq!(
        names,
        ["add_task", "list_tasks", "update_task", "complete_task", "delete_task"]
    );
    assert_eq!(tools[0].input_schema["required"], json!(["title"]));

    let (failed, added) = call(&client, "add_task", json!({"title": "from mcp", "priority": "high"})).await;
    assert!(!failed, "{added}");
    let id = added["task"]["id"].as_i64().unwrap();
    let (_, listed) = call(&client, "list_tasks", json!({"status": "pending"})).await;
    assert_eq!(listed["total"], 1, "only this user's tasks: {listed}");
    assert_eq!(listed["tasks"][0]["title"], "from mcp");
    let (failed, done) = call(&client, "complete_task", json!({"id": id})).await;
    assert!(!failed && done["task"]["completed"] == true, "{done}");

    // Another user's task is not found, and bad arguments are the caller's error to read.
    let (failed, refused) = call(&client, "complete_task", json!({"id": theirs["id"]})).await;
    assert!(failed);
    assert_eq!(refused["error"]["code"], "not_found");
    let (failed, invalid) = call(&client, "add_task", json!({"name": "no title"})).await;
    assert!(failed);
    assert_eq!(invalid["error"]["code"], "invalid_arguments");
    client.cancel().await.expect("the client closes");

    // What the REST API shows agrees.
    let (_, task) = app
        .call(Method::GET, &format!("/api/v1/tasks/{id}"), Some(&token), None)
        .await;
    assert_eq!(task["completed"], true);
    let (_, theirs_now) = app
        .call(
            Method::GET,
            &format!("/api/v1/tasks/{}", theirs["id"]),
            Some(&other),
            None,
        )
        .await;
    assert_eq!(theirs_now["completed"], false);
    let metrics = app.metrics().await;
    assert!(
        metrics.contains(r#"chat_tool_calls_total{tool="add_task",outcome="ok"} 1"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn requests_without_a_valid_token_are_refused() {
    let app = TestApp::spawn(Engine::Sqlite).await;
    assert!(
        connect(&app, "not-a-token").await.is_err(),
        "an invalid token cannot connect"
    );

    let initialize = json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "curl", "version": "1"}},
    });
    for token in [None, Some("not-a-token")] {
        let mut request = app
            .client
            .post(app.url("/mcp"))
            .header("accept", "application/json, text/event-stream")
            .json(&initialize);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(response.headers()["www-authenticate"], "Bearer");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "unauthorized");
    }
}
