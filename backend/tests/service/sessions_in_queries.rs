//! The two busiest routes, `GET` and `POST /api/v1/tasks`, check the session inside their own
//! query (issue 13: one round trip instead of two). These tests hold them to what every other
//! route does: an ended session (logged out, or its account deleted) gets its 401 whatever the
//! page, and before any other complaint about the request; nothing is written for it.

use crate::{
    hardening::delete_user,
    support::{Engine, TestApp, assert_error},
};
use backend::db::Db;
use reqwest::{Method, StatusCode, header::CONTENT_TYPE};
use serde_json::{Value, json};

on_both_engines!(
    a_logged_out_token_reads_and_writes_nothing,
    a_deleted_accounts_token_reads_and_writes_nothing,
);

/// Requests to the two routes that a live token gets a 200/201 or a 4xx for.
const READS: &[&str] = &[
    "/api/v1/tasks",
    "/api/v1/tasks?limit=2",
    "/api/v1/tasks?limit=2&offset=1",
    "/api/v1/tasks?offset=50",
    "/api/v1/tasks?tag=kept&sort=title&order=asc",
    // Each of these is a 422 for a live token.
    "/api/v1/tasks?limit=0",
    "/api/v1/tasks?sort=sideways",
    "/api/v1/tasks?due_from=yesterday",
];

/// Asserts every read and write of the tasks routes is refused with 401 and `message_part`.
async fn assert_refused(app: &TestApp, token: &str, message_part: &str) {
    let check = |what: String, status: StatusCode, body: Value| {
        assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(message_part), "{what}: {body}");
    };
    for path in READS {
        let (status, body) = app.call(Method::GET, path, Some(token), None).await;
        check(format!("GET {path}"), status, body);
    }
    // Valid, invalid (422), and not JSON at all (400, 415 for a live token).
    for body in [
        json!({"title": "after the end"}),
        json!({"title": ""}),
        json!({"nope": 1}),
    ] {
        let (status, answer) = app
            .call(Method::POST, "/api/v1/tasks", Some(token), Some(body.clone()))
            .await;
        check(format!("POST {body}"), status, answer);
    }
    for (content_type, body) in [("application/json", "{not json"), ("text/plain", "{\"title\": \"x\"}")] {
        let response = app
            .client
            .post(app.url("/api/v1/tasks"))
            .bearer_auth(token)
            .header(CONTENT_TYPE, content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        check(format!("POST {content_type} {body}"), status, answer);
    }
}

/// The user's tasks as stored, straight from the database.
async fn stored_titles(app: &TestApp, user_id: i64) -> Vec<String> {
    match &app.db {
        Db::Sqlite(db) => db
            .read(|conn| {
                let mut select = conn.prepare("SELECT title FROM tasks WHERE user_id = ?1 ORDER BY id")?;
                let titles = select.query_map([user_id], |row| row.get(0))?;
                Ok(titles.collect::<Result<Vec<String>, _>>()?)
            })
            .unwrap(),
        Db::Postgres(db) => sqlx::query_scalar("SELECT title FROM tasks WHERE user_id = $1 ORDER BY id")
            .bind(user_id)
            .fetch_all(db.pool())
            .await
            .unwrap(),
    }
}

async fn a_logged_out_token_reads_and_writes_nothing(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (token, user) = app.register("folded-logout").await;
    let user_id = user["id"].as_i64().unwrap();
    for title in ["one", "two", "three"] {
        app.create_task(&token, json!({"title": title, "tags": ["kept"]})).await;
    }
    // While live: pages with tasks on them, and the 4xx of each malformed request.
    for path in &READS[..5] {
        let (status, body) = app.call(Method::GET, path, Some(&token), None).await;
        assert_eq!(status, StatusCode::OK, "GET {path}: {body}");
        assert_eq!(body["total"], 3, "GET {path}: {body}");
    }
    for path in &READS[5..] {
        let (status, body) = app.call(Method::GET, path, Some(&token), None).await;
        assert_error(status, &body, StatusCode::UNPROCESSABLE_ENTITY, "invalid_query");
    }
    let (status, body) = app.call(Method::POST, "/api/v1/auth/logout", Some(&token), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");

    assert_refused(&app, &token, "logged out").await;
    assert_eq!(stored_titles(&app, user_id).await, ["one", "two", "three"]);
}

async fn a_deleted_accounts_token_reads_and_writes_nothing(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (token, user) = app.register("folded-deleted").await;
    let user_id = user["id"].as_i64().unwrap();
    app.create_task(&token, json!({"title": "orphan", "tags": ["kept"]}))
        .await;
    delete_user(&app, user_id).await;
    assert_refused(&app, &token, "no longer exists").await;
    assert!(stored_titles(&app, user_id).await.is_empty());
}
