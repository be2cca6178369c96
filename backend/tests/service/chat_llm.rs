//! The LLM engine against a local OpenAI-compatible stand-in started by each test. The stand-in
//! answers from a script and records every request, and the tests assert exactly what was asked:
//! tool calls then a final answer; provider errors, timeouts and malformed answers falling back
//! to the built-in engine; an endless tool loop stopped at the bound; never a 500.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex},
    time::Duration,
};

use crate::support::{Engine, TestApp};
use axum::{Json, Router, extract::State, http::HeaderMap, response::IntoResponse, routing::post};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// The key the backend is given; the stand-in checks it arrives as a bearer token.
const KEY: &str = "sk-test-stand-in-key";

/// One scripted answer of the stand-in.
#[derive(Clone)]
enum Answer {
    /// 200 with this JSON body.
    Json(Value),
    /// This status and raw body.
    Raw(u16, &'static str),
    /// No answer for this long.
    Stall(Duration),
}

/// A request the stand-in received: the Authorization header and the JSON body.
#[derive(Debug, Clone)]
struct Recorded {
    authorization: String,
    body: Value,
}

#[derive(Clone, Default)]
struct Provider {
    script: Arc<Mutex<VecDeque<Answer>>>,
    /// Answered when the script is used up (the endless loop).
    repeat: Arc<Mutex<Option<Answer>>>,
    requests: Arc<Mutex<Vec<Recorded>>>,
}

impl Provider {
    fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }
}

async fn completions(
    State(provider): State<Provider>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> axum::response::Response {
    let authorization = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    provider.requests.lock().unwrap().push(Recorded { authorization, body });
    let next = provider.script.lock().unwrap().pop_front();
    let answer = next.or_else(|| provider.repeat.lock().unwrap().clone());
    match answer {
        Some(Answer::Json(value)) => Json(value).into_response(),
        Some(Answer::Raw(status, body)) => (StatusCode::from_u16(status).unwrap(), body).into_response(),
        Some(Answer::Stall(pause)) => {
            tokio::time::sleep(pause).await;
            Json(final_answer("too late")).into_response()
        }
        None => (StatusCode::INTERNAL_SERVER_ERROR, "the test's script is used up").into_response(),
    }
}

/// Starts the stand-in on port 0; returns it and its base URL (`.../v1`).
async fn start_provider(script: Vec<Answer>, repeat: Option<Answer>) -> (Provider, String) {
    let provider = Provider {
        script: Arc::new(Mutex::new(script.into())),
        repeat: Arc::new(Mutex::new(repeat)),
        ..Provider::default()
    };
    let app = Router::new()
        .route("/v1/chat/completions", post(completions))
        .with_state(provider.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (provider, url)
}

// The answer shapes below are those of the OpenAI Chat Completions API reference ("The chat
// completion object": choices[].message with content and tool_calls[].function.{name, arguments},
// arguments being a JSON document in a string), https://platform.openai.com/docs/api-reference/chat/object.

fn tool_call_answer(calls: &[(&str, &str, Value)]) -> Value {
    let calls: Vec<Value> = calls
        .iter()
        .map(|(id, name, arguments)| {
            json!({"id": id, "type": "function", "function": {"name": name, "arguments": arguments.to_string()}})
        })
        .collect();
    json!({
        "id": "chatcmpl-standin", "object": "chat.completion", "created": 1_764_000_000, "model": "stand-in-model",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": null, "tool_calls": calls}, "finish_reason": "tool_calls"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    })
}

fn final_answer(text: &str) -> Value {
    json!({
        "id": "chatcmpl-standin", "object": "chat.completion", "created": 1_764_000_000, "model": "stand-in-model",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
    })
}

async fn spawn_with_provider(engine: Engine, url: &str) -> TestApp {
    let url = url.to_owned();
    TestApp::spawn_with(engine, move |config| {
        config.openai_api_key = Some(KEY.to_owned().into());
        config.openai_base_url = url;
        config.openai_model = "stand-in-model".to_owned();
        config.openai_timeout_seconds = 1;
    })
    .await
}

async fn titles(app: &TestApp, token: &str) -> Vec<String> {
    let (_, page) = app.call(Method::GET, "/api/v1/tasks", Some(token), None).await;
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["title"].as_str().unwrap().to_owned())
        .collect()
}

on_both_engines!(tool_calls_then_a_final_answer_are_run_as_the_user_and_stored);

async fn tool_calls_then_a_final_answer_are_run_as_the_user_and_stored(engine: Engine) {
    let (provider, url) = start_provider(
        vec![
            Answer::Json(tool_call_answer(&[(
                "call_1",
                "add_task",
                json!({"title": "buy milk", "due_date": "2030-01-02", "priority": "high"}),
            )])),
            Answer::Json(final_answer("Added “buy milk” for 2 January.")),
            Answer::Json(final_answer("You have one task.")),
        ],
        None,
    )
    .await;
    let app = spawn_with_provider(engine, &url).await;
    let (token, _) = app.register("llm-user").await;

    let answer = app
        .say(&token, "please remember to buy milk on Jan 2 2030, it's urgent", None)
        .await;
    assert_eq!(answer["engine"], "llm");
    assert_eq!(answer["reply"], "Added “buy milk” for 2 January.");
    assert_eq!(answer["actions"].as_array().unwrap().len(), 1);
    assert_eq!(answer["actions"][0]["tool"], "add_task");
    assert_eq!(answer["actions"][0]["result"]["task"]["due_date"], "2030-01-02");
    assert_eq!(titles(&app, &token).await, ["buy milk"]);

    let requests = provider.requests();
    assert_eq!(requests.len(), 2, "one round of tools, then the answer");
    let first = &requests[0];
    assert_eq!(first.authorization, format!("Bearer {KEY}"));
    assert_eq!(first.body["model"], "stand-in-model");
    let offered: Vec<&str> = first.body["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["function"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        offered,
        ["add_task", "list_tasks", "update_task", "complete_task", "delete_task"]
    );
    assert_eq!(
        first.body["tools"][0]["function"]["parameters"]["required"],
        json!(["title"])
    );
    let today = time::OffsetDateTime::now_utc().date().to_string();
    assert!(
        first.body["messages"][0]["content"].as_str().unwrap().contains(&today),
        "today is in the system prompt"
    );
    assert_eq!(first.body["messages"][1]["role"], "user");
    let second = &requests[1].body["messages"];
    let second = second.as_array().unwrap();
    assert_eq!(second[2]["role"], "assistant");
    assert_eq!(second[2]["tool_calls"][0]["id"], "call_1");
    assert_eq!(second[3]["role"], "tool");
    assert_eq!(second[3]["tool_call_id"], "call_1");
    let result: Value = serde_json::from_str(second[3]["content"].as_str().unwrap()).unwrap();
    assert_eq!(
        result["task"]["title"], "buy milk",
        "the tool's result goes back to the model"
    );

    // The turn is stored, and the next turn sends it as context.
    let conversation = answer["conversation_id"].as_i64().unwrap();
    let next = app.say(&token, "how many tasks do I have?", Some(conversation)).await;
    assert_eq!(next["reply"], "You have one task.");
    let third = &provider.requests()[2].body["messages"];
    let roles: Vec<&str> = third
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["system", "user", "assistant", "user"]);
    assert_eq!(third[2]["content"], "Added “buy milk” for 2 January.");
    let (_, stored) = app
        .call(
            Method::GET,
            &format!("/api/v1/conversations/{conversation}"),
            Some(&token),
            None,
        )
        .await;
    let messages = stored["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 4);
    assert_eq!(messages[1]["actions"], answer["actions"]);
}

#[tokio::test]
async fn provider_failures_fall_back_to_the_built_in_engine() {
    let cases: [(Answer, &str, &str); 4] = [
        (
            Answer::Raw(500, r#"{"error":{"message":"boom"}}"#),
            "answered with an error (HTTP 500)",
            "status",
        ),
        (Answer::Raw(200, "this is not json"), "could not read", "malformed"),
        (Answer::Json(json!({"choices": []})), "could not read", "malformed"),
        (
            Answer::Stall(Duration::from_secs(3)),
            "did not answer in time",
            "timeout",
        ),
    ];
    for (i, (answer, explanation, kind)) in cases.into_iter().enumerate() {
        let (provider, url) = start_provider(vec![answer], None).await;
        let app = spawn_with_provider(Engine::Sqlite, &url).await;
        let (token, _) = app.register("fallback").await;
        let title = format!("fallback task {i}");
        let reply = app.say(&token, &format!("add {title}"), None).await;
        assert_eq!(reply["engine"], "builtin-fallback", "{reply}");
        let text = reply["reply"].as_str().unwrap();
        assert!(
            text.contains(explanation) && text.contains(&format!("Added “{title}”")),
            "{text}"
        );
        assert_eq!(
            titles(&app, &token).await,
            vec![title],
            "the built-in engine did it, once"
        );
        assert_eq!(provider.requests().len(), 1);
        let metrics = app.metrics().await;
        let line = format!("chat_provider_errors_total{{kind=\"{kind}\"}} 1");
        assert!(metrics.contains(&line), "{line} in:\n{metrics}");
        assert!(metrics.contains(r#"chat_turns_total{engine="builtin-fallback"} 1"#));
        assert!(!text.contains(KEY) && !metrics.contains(KEY));
    }
}

#[tokio::test]
async fn an_unreachable_provider_falls_back_too() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1", closed.local_addr().unwrap());
    drop(closed);
    let app = spawn_with_provider(Engine::Sqlite, &url).await;
    let (token, _) = app.register("unreachable").await;
    let reply = app.say(&token, "what's overdue?", None).await;
    assert_eq!(reply["engine"], "builtin-fallback");
    assert!(
        reply["reply"].as_str().unwrap().contains("could not be reached"),
        "{reply}"
    );
    assert_eq!(reply["actions"][0]["tool"], "list_tasks");
}

/// An `https://` provider is reached over TLS: a local server that records the first bytes it is
/// sent sees a TLS ClientHello (record type 22, version 3.x); it then hangs up, and the turn falls
/// back to the built-in engine.
#[tokio::test]
async fn an_https_provider_is_reached_over_tls() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}/v1", listener.local_addr().unwrap());
    let first_bytes = tokio::spawn(async move {
        use tokio::io::AsyncReadExt;
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut head = [0u8; 3];
        stream.read_exact(&mut head).await.unwrap();
        head
    });
    let app = spawn_with_provider(Engine::Sqlite, &url).await;
    let (token, _) = app.register("tls").await;
    let reply = app.say(&token, "what's overdue?", None).await;
    let head = tokio::time::timeout(std::time::Duration::from_secs(10), first_bytes)
        .await
        .expect("the backend never connected to the https provider")
        .unwrap();
    assert_eq!(head[0], 0x16, "a TLS handshake record, got {head:?}");
    assert_eq!(head[1], 0x03, "TLS record version 3.x, got {head:?}");
    assert_eq!(reply["engine"], "builtin-fallback", "{reply}");
    assert!(
        reply["reply"].as_str().unwrap().contains("could not be reached"),
        "{reply}"
    );
}

#[tokio::test]
async fn an_endless_tool_loop_is_stopped_at_the_bound() {
    let looping = Answer::Json(tool_call_answer(&[(
        "call_n",
        "list_tasks",
        json!({"status": "pending"}),
    )]));
    let (provider, url) = start_provider(vec![], Some(looping)).await;
    let app = spawn_with_provider(Engine::Sqlite, &url).await;
    let (token, _) = app.register("looper").await;
    let reply = app.say(&token, "list my tasks forever", None).await;
    let text = reply["reply"].as_str().unwrap();
    assert!(
        text.contains("stopped it after 5 rounds") && text.contains("Nothing was changed"),
        "{text}"
    );
    assert_eq!(reply["engine"], "llm", "no fallback after the model acted");
    assert_eq!(
        reply["actions"].as_array().unwrap().len(),
        5,
        "five rounds of tool calls ran"
    );
    assert_eq!(
        provider.requests().len(),
        6,
        "five rounds and the answer that was one too many"
    );
    let metrics = app.metrics().await;
    assert!(
        metrics.contains(r#"chat_provider_errors_total{kind="tool_loop"} 1"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn bad_tool_calls_go_back_to_the_model_and_changes_are_not_repeated_after_a_failure() {
    let (provider, url) = start_provider(
        vec![
            Answer::Json(json!({"choices": [{"message": {"role": "assistant", "tool_calls": [
                {"id": "bad_json", "type": "function", "function": {"name": "add_task", "arguments": "{not json"}},
                {"id": "bad_tool", "type": "function", "function": {"name": "drop_database", "arguments": "{}"}},
                {"id": "good", "type": "function", "function": {"name": "add_task", "arguments": "{\"title\":\"only once\"}"}}
            ]}}]})),
            Answer::Raw(503, "overloaded"),
        ],
        None,
    )
    .await;
    let app = spawn_with_provider(Engine::Sqlite, &url).await;
    let (token, _) = app.register("careful").await;
    let reply = app.say(&token, "add only once", None).await;
    let actions = reply["actions"].as_array().unwrap();
    assert_eq!(actions[0]["result"]["error"]["code"], "invalid_arguments");
    assert_eq!(actions[1]["result"]["error"]["code"], "invalid_arguments");
    assert!(
        actions[1]["result"]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no tool")
    );
    assert_eq!(actions[2]["result"]["task"]["title"], "only once");
    let text = reply["reply"].as_str().unwrap();
    assert!(
        text.contains("HTTP 503") && text.contains("Added “only once”"),
        "{text}"
    );
    assert_eq!(reply["engine"], "llm");
    assert_eq!(
        titles(&app, &token).await,
        ["only once"],
        "the built-in engine did not add it again"
    );
    let tool_messages: Vec<Value> = provider.requests()[1].body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "tool")
        .cloned()
        .collect();
    assert_eq!(tool_messages.len(), 3);
    assert!(tool_messages[0]["content"].as_str().unwrap().contains("not valid JSON"));
}
