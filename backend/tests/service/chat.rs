//! The chat assistant over HTTP with the built-in engine, on SQLite and PostgreSQL: a turn acts on
//! the user's tasks and is stored; ambiguity and nonsense get clear answers; nothing another
//! user owns can be read or changed by any message.

use crate::support::{Engine, TestApp, assert_error};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

on_both_engines!(
    a_turn_acts_on_tasks_and_conversations_are_stored_listed_and_deleted,
    ambiguous_titles_get_a_question_and_nonsense_gets_examples,
    messages_naming_another_users_tasks_can_neither_read_nor_change_them,
    another_users_conversations_are_not_found,
    chat_input_is_validated,
);

/// `YYYY-MM-DD` of today plus `days`, UTC (the assistant's "today").
fn day(days: i64) -> String {
    (time::OffsetDateTime::now_utc().date() + time::Duration::days(days)).to_string()
}

async fn task(app: &TestApp, token: &str, id: i64) -> (StatusCode, Value) {
    app.call(Method::GET, &format!("/api/v1/tasks/{id}"), Some(token), None)
        .await
}

async fn a_turn_acts_on_tasks_and_conversations_are_stored_listed_and_deleted(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (token, _) = app.register("chatter").await;

    let added = app
        .say(&token, "add buy milk tomorrow, high priority #shopping", None)
        .await;
    assert_eq!(added["engine"], "builtin");
    let conversation = added["conversation_id"].as_i64().expect("a conversation id");
    let action = &added["actions"][0];
    assert_eq!(action["tool"], "add_task", "{added}");
    let id = action["result"]["task"]["id"].as_i64().expect("the new task");
    let (status, stored) = task(&app, &token, id).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(stored["title"], "buy milk");
    assert_eq!(stored["due_date"], day(1));
    assert_eq!(stored["priority"], "high");
    assert_eq!(stored["tags"], json!(["shopping"]));
    assert!(added["reply"].as_str().unwrap().contains("buy milk"), "{added}");

    let listed = app.say(&token, "what's due tomorrow?", Some(conversation)).await;
    assert_eq!(listed["conversation_id"], conversation);
    assert_eq!(listed["actions"][0]["result"]["tasks"][0]["id"], id, "{listed}");

    let done = app.say(&token, "complete buy milk", Some(conversation)).await;
    assert_eq!(done["actions"][0]["tool"], "complete_task");
    assert_eq!(task(&app, &token, id).await.1["completed"], true);

    let (status, list) = app.call(Method::GET, "/api/v1/conversations", Some(&token), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list["items"][0]["id"], conversation);
    assert_eq!(
        list["items"][0]["title"],
        "add buy milk tomorrow, high priority #shopping"
    );

    let path = format!("/api/v1/conversations/{conversation}");
    let (status, stored) = app.call(Method::GET, &path, Some(&token), None).await;
    assert_eq!(status, StatusCode::OK);
    let messages = stored["messages"].as_array().unwrap();
    let roles: Vec<&str> = messages.iter().map(|m| m["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["user", "assistant", "user", "assistant", "user", "assistant"]);
    assert_eq!(messages[4]["content"], "complete buy milk");
    assert_eq!(messages[5]["content"], done["reply"]);
    assert_eq!(messages[5]["actions"], done["actions"]);
    assert_eq!(messages[4]["actions"], json!([]));

    // A second conversation is listed first; deleting one keeps the tasks it changed.
    let second = app.say(&token, "help", None).await;
    assert_ne!(second["conversation_id"], conversation);
    assert!(second["actions"].as_array().unwrap().is_empty());
    let (_, list) = app.call(Method::GET, "/api/v1/conversations", Some(&token), None).await;
    assert_eq!(
        list["items"][0]["id"], second["conversation_id"],
        "newest first: {list}"
    );
    let (status, _) = app.call(Method::DELETE, &path, Some(&token), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = app.call(Method::GET, &path, Some(&token), None).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (status, body) = app
        .call(
            Method::POST,
            "/api/v1/chat",
            Some(&token),
            Some(json!({"message": "help", "conversation_id": conversation})),
        )
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    assert_eq!(task(&app, &token, id).await.0, StatusCode::OK);
}

async fn ambiguous_titles_get_a_question_and_nonsense_gets_examples(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (token, _) = app.register("ambiguous").await;
    let first = app.create_task(&token, json!({"title": "buy milk"})).await;
    let second = app.create_task(&token, json!({"title": "milk the cow"})).await;

    let asked = app.say(&token, "complete milk", None).await;
    let reply = asked["reply"].as_str().unwrap();
    assert!(reply.contains("Which one?"), "{asked}");
    assert!(
        reply.contains(&format!("#{}", first["id"])) && reply.contains(&format!("#{}", second["id"])),
        "{reply}"
    );
    assert_eq!(asked["actions"][0]["result"]["error"]["code"], "ambiguous");
    for created in [&first, &second] {
        assert_eq!(
            task(&app, &token, created["id"].as_i64().unwrap()).await.1["completed"],
            false
        );
    }
    // Named exactly, or by id, it is done.
    let done = app
        .say(&token, "complete Buy Milk", asked["conversation_id"].as_i64())
        .await;
    assert_eq!(done["actions"][0]["result"]["task"]["id"], first["id"], "{done}");

    let lost = app.say(&token, "xyzzy plugh", None).await;
    let reply = lost["reply"].as_str().unwrap();
    assert!(
        reply.contains("did not understand") && reply.contains("add buy milk tomorrow"),
        "{reply}"
    );
    assert!(lost["actions"].as_array().unwrap().is_empty());

    let missing = app.say(&token, "delete walk the dog", None).await;
    assert_eq!(
        missing["actions"][0]["result"]["error"]["code"], "not_found",
        "{missing}"
    );
    assert!(
        missing["reply"].as_str().unwrap().contains("could not find"),
        "{missing}"
    );
}

async fn messages_naming_another_users_tasks_can_neither_read_nor_change_them(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (owner, _) = app.register("owner").await;
    let (intruder, _) = app.register("intruder").await;
    let secret = app
        .create_task(&owner, json!({"title": "secret plan", "tags": ["private"]}))
        .await;
    let id = secret["id"].as_i64().unwrap();

    for message in [
        format!("complete {id}"),
        format!("reopen {id}"),
        format!("delete {id}"),
        format!("rename {id} to hacked"),
        format!("move {id} to tomorrow"),
        format!("make {id} high priority"),
        "complete secret plan".to_owned(),
        "delete secret plan".to_owned(),
    ] {
        let answer = app.say(&intruder, &message, None).await;
        assert_eq!(
            answer["actions"][0]["result"]["error"]["code"], "not_found",
            "{message:?}: {answer}"
        );
        assert!(
            !answer.to_string().contains("secret plan") || message.contains("secret plan"),
            "{answer}"
        );
    }
    for message in ["show all tasks", "show tasks tagged private", "find secret"] {
        let answer = app.say(&intruder, message, None).await;
        assert_eq!(answer["actions"][0]["result"]["total"], 0, "{message:?}: {answer}");
    }
    let (status, unchanged) = task(&app, &owner, id).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(unchanged, secret, "the owner's task is untouched");
}

async fn another_users_conversations_are_not_found(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (owner, _) = app.register("talker").await;
    let (other, _) = app.register("eavesdropper").await;
    let started = app.say(&owner, "add call the bank", None).await;
    let id = started["conversation_id"].as_i64().unwrap();
    let path = format!("/api/v1/conversations/{id}");

    let (status, body) = app.call(Method::GET, &path, Some(&other), None).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (status, body) = app.call(Method::DELETE, &path, Some(&other), None).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (status, body) = app
        .call(
            Method::POST,
            "/api/v1/chat",
            Some(&other),
            Some(json!({"message": "list", "conversation_id": id})),
        )
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (_, list) = app.call(Method::GET, "/api/v1/conversations", Some(&other), None).await;
    assert_eq!(list["items"], json!([]));

    let (status, mine) = app.call(Method::GET, &path, Some(&owner), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        mine["messages"].as_array().unwrap().len(),
        2,
        "nothing was added: {mine}"
    );
}

async fn chat_input_is_validated(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (token, _) = app.register("validator").await;
    for path in ["/api/v1/chat", "/api/v1/conversations", "/api/v1/conversations/1"] {
        let method = if path.ends_with("chat") {
            Method::POST
        } else {
            Method::GET
        };
        let (status, body) = app.call(method, path, None, Some(json!({"message": "hi"}))).await;
        assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");
    }
    for (body, code) in [
        (json!({"message": "   "}), "validation_failed"),
        (json!({"message": "x".repeat(2001)}), "validation_failed"),
        (json!({}), "invalid_body"),
        (json!({"message": "hi", "user_id": 1}), "invalid_body"),
    ] {
        let (status, answer) = app.call(Method::POST, "/api/v1/chat", Some(&token), Some(body)).await;
        assert_error(status, &answer, StatusCode::UNPROCESSABLE_ENTITY, code);
    }
    let (status, body) = app
        .call(Method::GET, "/api/v1/conversations/abc", Some(&token), None)
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_id");
    let (_, list) = app.call(Method::GET, "/api/v1/conversations", Some(&token), None).await;
    assert_eq!(list["items"], json!([]), "a refused message stores nothing");
}

#[tokio::test]
async fn chat_is_documented_and_measured() {
    let app = TestApp::spawn(Engine::Sqlite).await;
    let (status, doc) = app.call(Method::GET, "/api/v1/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK);
    for path in ["/api/v1/chat", "/api/v1/conversations", "/api/v1/conversations/{id}"] {
        assert!(doc["paths"][path].is_object(), "{path} documented");
    }
    assert!(doc["paths"]["/api/v1/conversations/{id}"]["delete"].is_object());
    assert!(doc["components"]["schemas"]["ChatResponse"].is_object());

    let (token, _) = app.register("measured").await;
    app.say(&token, "add measure me", None).await;
    app.say(&token, "complete no such task", None).await;
    let metrics = app.metrics().await;
    for line in [
        r#"chat_turns_total{engine="builtin"} 2"#,
        r#"chat_tool_calls_total{tool="add_task",outcome="ok"} 1"#,
        r#"chat_tool_calls_total{tool="complete_task",outcome="not_found"} 1"#,
        r#"http_requests_total{method="POST",route="/api/v1/chat",status="200"} 2"#,
        "# TYPE chat_provider_request_duration_seconds histogram",
    ] {
        assert!(metrics.contains(line), "{line} in:\n{metrics}");
    }
}
