//! What a hostile or unlucky client could do (issue 16): input that used to give a 5xx, tokens
//! that outlive their account or their logout, brute-forced logins, a database that refuses
//! connections, over-large request heads and made-up methods. Each runs on SQLite and PostgreSQL
//! where the engine matters.

use std::{
    io::{Read, Write},
    net::TcpStream,
    time::Duration,
};

use crate::support::{Engine, TestApp, assert_error, unique_email};
use backend::db::Db;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::{Connection, Executor, PgConnection};

on_both_engines!(
    nul_characters_are_refused_alike_on_both_engines,
    search_text_over_200_characters_is_refused,
    due_dates_must_fall_in_years_1_to_9999,
    a_token_whose_account_was_deleted_gets_401_everywhere,
    logout_revokes_the_token_at_once,
    failed_logins_are_throttled_per_account_and_per_client,
);

/// Sends `method path` with a raw query string (reqwest would re-encode `%00`).
async fn get_raw(app: &TestApp, token: &str, path_and_query: &str) -> (StatusCode, Value) {
    app.call(Method::GET, path_and_query, Some(token), None).await
}

async fn nul_characters_are_refused_alike_on_both_engines(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (token, user) = app.register("nul").await;
    for query in ["q=a%00b", "tag=%00", "q=%01", "tag=a%00"] {
        let (status, body) = get_raw(&app, &token, &format!("/api/v1/tasks?{query}")).await;
        assert_error(status, &body, StatusCode::UNPROCESSABLE_ENTITY, "invalid_query");
    }
    for task in [
        json!({"title": "fine", "description": "a\u{0}b"}),
        json!({"title": "a\u{0}b"}),
        json!({"title": "fine", "tags": ["\u{0}"]}),
    ] {
        let (status, body) = app.call(Method::POST, "/api/v1/tasks", Some(&token), Some(task)).await;
        assert_error(status, &body, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    }
    let task = app
        .create_task(
            &token,
            json!({"title": "keeps its lines", "description": "line one\nline two\ttab"}),
        )
        .await;
    let (status, body) = app
        .call(
            Method::PATCH,
            &format!("/api/v1/tasks/{}", task["id"]),
            Some(&token),
            Some(json!({"description": "\u{0}"})),
        )
        .await;
    assert_error(status, &body, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    let (status, page) = get_raw(&app, &token, "/api/v1/tasks").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["total"], 1, "nothing with a NUL was stored: {page}");
    assert_eq!(page["items"][0]["description"], "line one\nline two\ttab");

    let email = user["email"].as_str().unwrap();
    for email in [format!("{email}\u{0}"), format!("\u{0}{email}")] {
        let (status, body) = app
            .call(
                Method::POST,
                "/api/v1/auth/login",
                None,
                Some(json!({"email": email, "password": "correct horse battery"})),
            )
            .await;
        assert_error(status, &body, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        let (status, body) = app
            .call(
                Method::POST,
                "/api/v1/auth/register",
                None,
                Some(json!({"email": email, "password": "correct horse battery"})),
            )
            .await;
        assert_error(status, &body, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    }
}

async fn search_text_over_200_characters_is_refused(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (token, _) = app.register("long-q").await;
    app.create_task(&token, json!({"title": "a".repeat(200)})).await;
    let (status, page) = get_raw(&app, &token, &format!("/api/v1/tasks?q={}", "a".repeat(200))).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["total"], 1);
    for length in [201, 50_000] {
        let (status, body) = get_raw(&app, &token, &format!("/api/v1/tasks?q={}", "a".repeat(length))).await;
        assert_error(status, &body, StatusCode::UNPROCESSABLE_ENTITY, "invalid_query");
        assert!(body["error"]["message"].as_str().unwrap().contains("200"), "{body}");
    }
    let (status, body) = get_raw(&app, &token, &format!("/api/v1/tasks?tag={}", "t".repeat(33))).await;
    assert_error(status, &body, StatusCode::UNPROCESSABLE_ENTITY, "invalid_query");
}

async fn due_dates_must_fall_in_years_1_to_9999(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (token, _) = app.register("due").await;
    for due in ["-001-01-01", "-0001-12-31", "0000-01-01", "+2030-01-01", "12345-01-01"] {
        let (status, body) = app
            .call(
                Method::POST,
                "/api/v1/tasks",
                Some(&token),
                Some(json!({"title": "when", "due_date": due})),
            )
            .await;
        assert_error(status, &body, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    }
    for due in ["0001-01-01", "9999-12-31"] {
        let task = app.create_task(&token, json!({"title": "edge", "due_date": due})).await;
        assert_eq!(task["due_date"], due);
    }
}

/// Deletes the user straight in the database, as an administrator or a retention job would.
pub async fn delete_user(app: &TestApp, id: i64) {
    match &app.db {
        Db::Sqlite(db) => db
            .write(move |conn| Ok(conn.execute("DELETE FROM users WHERE id = ?1", [id])?))
            .await
            .map(drop)
            .unwrap(),
        Db::Postgres(db) => {
            sqlx::query("DELETE FROM users WHERE id = $1")
                .bind(id)
                .execute(db.pool())
                .await
                .unwrap();
        }
    }
}

async fn a_token_whose_account_was_deleted_gets_401_everywhere(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (token, user) = app.register("deleted").await;
    let task = app.create_task(&token, json!({"title": "orphan"})).await;
    delete_user(&app, user["id"].as_i64().unwrap()).await;
    let task_path = format!("/api/v1/tasks/{}", task["id"]);
    for (method, path, body) in [
        (Method::GET, "/api/v1/auth/me", None),
        (Method::GET, "/api/v1/tasks", None),
        (Method::POST, "/api/v1/tasks", Some(json!({"title": "after deletion"}))),
        (Method::GET, task_path.as_str(), None),
        (Method::PATCH, task_path.as_str(), Some(json!({"title": "x"}))),
        (Method::DELETE, task_path.as_str(), None),
        (Method::POST, "/api/v1/auth/logout", None),
    ] {
        let (status, answer) = app.call(method.clone(), path, Some(&token), body).await;
        assert_error(status, &answer, StatusCode::UNAUTHORIZED, "unauthorized");
        assert!(
            answer["error"]["message"]
                .as_str()
                .unwrap()
                .contains("no longer exists"),
            "{method} {path}: {answer}"
        );
    }
}

async fn logout_revokes_the_token_at_once(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (token, user) = app.register("logout").await;
    let (status, _) = app.call(Method::GET, "/api/v1/tasks", Some(&token), None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = app.call(Method::POST, "/api/v1/auth/logout", Some(&token), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    for (method, path) in [
        (Method::GET, "/api/v1/auth/me"),
        (Method::GET, "/api/v1/tasks"),
        (Method::POST, "/api/v1/auth/logout"),
    ] {
        let (status, body) = app.call(method, path, Some(&token), None).await;
        assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");
    }
    // Logging in again gives a new token that works; the old one stays revoked.
    let (status, login) = app
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"email": user["email"], "password": "correct horse battery"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app
        .call(Method::GET, "/api/v1/auth/me", login["token"].as_str(), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app.call(Method::GET, "/api/v1/auth/me", Some(&token), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

/// A login from the client at `client` (the frontend's `X-Forwarded-For`).
async fn login_from(app: &TestApp, client: &str, email: &str, password: &str) -> reqwest::Response {
    app.client
        .post(app.url("/api/v1/auth/login"))
        .header("x-forwarded-for", client)
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap()
}

async fn assert_throttled(response: reqwest::Response) {
    let retry_after: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=900).contains(&retry_after), "{retry_after}");
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_error(status, &body, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts");
}

async fn failed_logins_are_throttled_per_account_and_per_client(engine: Engine) {
    let app = TestApp::spawn_with(engine, |config| {
        config.login_max_failures_per_account = 3;
        config.login_max_failures_per_client = 5;
    })
    .await;
    let (_, alice) = app.register("alice").await;
    let (_, bob) = app.register("bob").await;
    let (alice, bob) = (alice["email"].as_str().unwrap(), bob["email"].as_str().unwrap());
    let right = "correct horse battery";

    // Per account: three wrong passwords, then even the right one waits, from any client.
    for _ in 0..3 {
        let response = login_from(&app, "198.51.100.1", alice, "wrong password").await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    assert_throttled(login_from(&app, "198.51.100.1", alice, right).await).await;
    assert_throttled(login_from(&app, "198.51.100.2", alice, right).await).await;
    // Bob is not affected.
    assert_eq!(
        login_from(&app, "198.51.100.1", bob, right).await.status(),
        StatusCode::OK
    );

    // Per client: five failures over different accounts, then this client waits for any account.
    for i in 0..5 {
        let response = login_from(&app, "203.0.113.9", &unique_email(&format!("spray{i}")), "guess").await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    assert_throttled(login_from(&app, "203.0.113.9", bob, right).await).await;
    assert_eq!(
        login_from(&app, "203.0.113.10", bob, right).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_database_that_refuses_connections_gives_503_database_unavailable() {
    let app = TestApp::spawn(Engine::Postgres).await;
    let (token, _) = app.register("refused").await;
    let name = app.postgres_database().unwrap().to_owned();
    let mut admin = PgConnection::connect(&crate::support::postgres_admin_url())
        .await
        .unwrap();
    // What a failover or `ALLOW_CONNECTIONS false` looks like to the server: its connections are
    // terminated ("terminating connection due to administrator command") and new ones refused.
    admin
        .execute(sqlx::AssertSqlSafe(format!(
            "ALTER DATABASE {name} ALLOW_CONNECTIONS false"
        )))
        .await
        .unwrap();
    admin
        .execute(sqlx::AssertSqlSafe(format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
        )))
        .await
        .unwrap();
    for _ in 0..3 {
        let (status, body) = app.call(Method::GET, "/api/v1/tasks", Some(&token), None).await;
        assert_error(status, &body, StatusCode::SERVICE_UNAVAILABLE, "database_unavailable");
    }
    admin
        .execute(sqlx::AssertSqlSafe(format!(
            "ALTER DATABASE {name} ALLOW_CONNECTIONS true"
        )))
        .await
        .unwrap();
    let (status, body) = app.call(Method::GET, "/api/v1/tasks", Some(&token), None).await;
    assert_eq!(status, StatusCode::OK, "serves again once the database is back: {body}");
}

#[tokio::test]
async fn connections_the_server_ended_while_idle_are_replaced_before_use() {
    let app = TestApp::spawn(Engine::Postgres).await;
    let (token, _) = app.register("restarted").await;
    let (status, _) = app.call(Method::GET, "/api/v1/tasks", Some(&token), None).await;
    assert_eq!(status, StatusCode::OK);
    let name = app.postgres_database().unwrap().to_owned();
    let mut admin = PgConnection::connect(&crate::support::postgres_admin_url())
        .await
        .unwrap();
    // What a server restart or failover does to the pool's idle connections.
    let ended: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT COUNT(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}') ended"
    )))
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert!(ended >= 1, "the pool kept a connection open");
    // Idle for longer than the pool's ping threshold: the dead connections are found and
    // replaced before a request gets one (connections in steady use are not pinged).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for _ in 0..3 {
        let (status, body) = app.call(Method::GET, "/api/v1/tasks", Some(&token), None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
}

#[tokio::test]
async fn an_oversized_request_head_gets_a_json_431() {
    let app = TestApp::spawn(Engine::Sqlite).await;
    let address = app.base.strip_prefix("http://").unwrap().to_owned();
    let answer = tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(address).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let request = format!(
            "GET /api/v1/tasks?q={} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
            "a".repeat(1024 * 1024)
        );
        // The server answers and closes before reading it all; a failed write is expected.
        let _ = stream.write_all(request.as_bytes());
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        String::from_utf8_lossy(&answer).into_owned()
    })
    .await
    .unwrap();
    assert!(answer.starts_with("HTTP/1.1 431 "), "{answer}");
    assert!(answer.contains("content-type: application/json"), "{answer}");
    let body: Value = serde_json::from_str(answer.split_once("\r\n\r\n").unwrap().1).unwrap();
    assert_eq!(body["error"]["code"], "headers_too_large", "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("65536"), "{body}");
    // The server is unharmed.
    let (status, _) = app.call(Method::GET, "/health", None, None).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn metrics_labels_stay_bounded_whatever_method_clients_send() {
    let app = TestApp::spawn(Engine::Sqlite).await;
    for i in 0..20 {
        let method = Method::from_bytes(format!("RANDOM{i}").as_bytes()).unwrap();
        let response = app.client.request(method, app.url("/health")).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    }
    let text = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !text.contains("RANDOM"),
        "made-up methods must not become labels:\n{text}"
    );
    assert!(
        text.contains(r#"http_requests_total{method="other",route="/health",status="405"} 20"#),
        "{text}"
    );
}

#[tokio::test]
async fn readiness_reasons_do_not_reveal_database_details() {
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgres://secretuser@127.0.0.1:{closed_port}/secretdb");
    let app = backend::startup::Application::build(crate::support::test_config(&url))
        .await
        .unwrap();
    let base = format!("http://{}", app.local_addr());
    let server = tokio::spawn(app.run_until_stopped(std::future::pending()));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let ready: Value = reqwest::get(format!("{base}/ready"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let reason = ready["reason"].as_str().unwrap();
    assert!(reason.starts_with("database not ready"), "{ready}");
    for secret in [
        closed_port.to_string().as_str(),
        "secretuser",
        "secretdb",
        "refused",
        "127.0.0.1",
    ] {
        assert!(!reason.contains(secret), "{secret:?} in {reason:?}");
    }
    server.abort();
}

#[tokio::test]
async fn the_login_throttle_holds_across_replicas_on_postgres() {
    let app = TestApp::spawn_with(Engine::Postgres, |config| config.login_max_failures_per_account = 2).await;
    let (_, user) = app.register("replicas").await;
    let email = user["email"].as_str().unwrap();
    // A second replica on the same database.
    let (server_url, _) = crate::support::postgres_admin_url()
        .rsplit_once('/')
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
        .unwrap();
    let mut config = crate::support::test_config(&format!("{server_url}/{}", app.postgres_database().unwrap()));
    config.login_max_failures_per_account = 2;
    let second = backend::startup::Application::build(config).await.unwrap();
    let second_base = format!("http://{}", second.local_addr());
    let server = tokio::spawn(second.run_until_stopped(std::future::pending()));
    for _ in 0..200 {
        if reqwest::get(format!("{second_base}/ready"))
            .await
            .is_ok_and(|r| r.status() == StatusCode::OK)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }

    for _ in 0..2 {
        let response = login_from(&app, "198.51.100.20", email, "wrong password").await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    let on_second = app
        .client
        .post(format!("{second_base}/api/v1/auth/login"))
        .json(&json!({"email": email, "password": "correct horse battery"}))
        .send()
        .await
        .unwrap();
    assert_throttled(on_second).await;
    server.abort();
}
