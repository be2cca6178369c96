//! Writes under concurrency, on SQLite (through the group-committing writer) and PostgreSQL:
//! a failing write fails alone, and a client that got its 201 reads its write back at once.

use std::time::{Duration, Instant};

use crate::support::{Engine, TestApp, assert_error, unique_email};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

on_both_engines!(
    a_failing_write_in_a_batch_fails_alone,
    clients_read_their_own_writes_at_once
);

/// Waits (bounded) until `n` writes are queued behind the hold.
async fn until_queued(app: &TestApp, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while app.db.queued_writes() < n {
        assert!(
            Instant::now() < deadline,
            "only {} of {n} writes reached the writer's queue",
            app.db.queued_writes()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn a_failing_write_in_a_batch_fails_alone(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (token, user) = app.register("batch").await;
    let taken = user["email"].as_str().unwrap().to_owned();
    let before = app.db.write_batches();

    // On SQLite the writer is held, so every write below queues and they commit as one batch;
    // PostgreSQL runs them as concurrent transactions.
    let hold = app.db.hold_writes();
    let register = |email: String| {
        app.call(
            Method::POST,
            "/api/v1/auth/register",
            None,
            Some(json!({"email": email, "password": "correct horse battery"})),
        )
    };
    let create = |title: &'static str| {
        app.call(
            Method::POST,
            "/api/v1/tasks",
            Some(&token),
            Some(json!({"title": title, "tags": ["batch"]})),
        )
    };
    let writes = async {
        tokio::join!(
            create("first"),
            register(taken.clone()),
            create("second"),
            register(unique_email("fresh")),
            create("third"),
        )
    };
    let release = async {
        if hold.is_some() {
            until_queued(&app, 5).await;
        }
        drop(hold);
    };
    let ((first, duplicate, second, fresh, third), ()) = tokio::join!(writes, release);

    for (status, task) in [&first, &second, &third] {
        assert_eq!(*status, StatusCode::CREATED, "{task}");
    }
    let (status, body) = &duplicate;
    assert_error(*status, body, StatusCode::CONFLICT, "email_taken");
    assert_eq!(fresh.0, StatusCode::CREATED, "{}", fresh.1);

    if engine == Engine::Sqlite {
        let after = app.db.write_batches();
        assert_eq!(
            (after.batches - before.batches, after.writes - before.writes),
            (1, 5),
            "the five writes were one batch"
        );
    }
    // What was acknowledged is stored; the failed write left nothing behind.
    let (_, page) = app
        .call(
            Method::GET,
            "/api/v1/tasks?tag=batch&sort=title&order=asc",
            Some(&token),
            None,
        )
        .await;
    let titles: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles, ["first", "second", "third"]);
    let (status, _) = app
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"email": taken, "password": "correct horse battery"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "the first account with that email is intact");
}

async fn clients_read_their_own_writes_at_once(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let client = |label: &'static str| {
        let app = &app;
        async move {
            let (token, _) = app.register(label).await;
            for i in 0..25 {
                let task = app.create_task(&token, json!({"title": format!("{label} {i}")})).await;
                let id = task["id"].as_i64().unwrap();
                let (status, fetched) = app
                    .call(Method::GET, &format!("/api/v1/tasks/{id}"), Some(&token), None)
                    .await;
                assert_eq!(status, StatusCode::OK, "{label}: task {id} readable after its 201");
                assert_eq!(fetched, task);
                let (_, page) = app.call(Method::GET, "/api/v1/tasks?limit=1", Some(&token), None).await;
                assert_eq!(
                    page["items"][0], task,
                    "{label}: the newest task heads the list at once"
                );
                assert_eq!(page["total"], Value::from(i + 1));
            }
        }
    };
    // Four clients at once, so SQLite's writer batches their writes.
    tokio::join!(client("ann"), client("bob"), client("cyd"), client("dee"));
}
