//! Writes under concurrency, on SQLite (through the group-committing writer) and PostgreSQL
//! (whose task creations share a statement): a failing write fails alone, and a client that got
//! its 201 reads its write back at once.

use std::time::Duration;

use crate::support::{Engine, TestApp, assert_error, unique_email, until_count};
use backend::db::Db;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::Executor;

on_both_engines!(
    a_failing_write_in_a_batch_fails_alone,
    clients_read_their_own_writes_at_once
);

/// Waits (bounded) until `n` writes are queued behind the hold.
async fn until_queued(app: &TestApp, n: usize) {
    until_count("writes reached the writer's queue", n, || app.db.queued_writes()).await;
}

async fn a_failing_write_in_a_batch_fails_alone(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (token, user) = app.register("batch").await;
    let taken = user["email"].as_str().unwrap().to_owned();
    let before = app.db.write_batches();

    // Held, every write below that batches queues, and they go out as one batch: all five on
    // SQLite; the three creates on PostgreSQL (registrations are transactions of their own).
    let hold = app.db.hold_writes().await;
    let batched: u64 = if engine == Engine::Sqlite { 5 } else { 3 };
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
        until_queued(&app, batched as usize).await;
        drop(hold);
    };
    let ((first, duplicate, second, fresh, third), ()) = tokio::join!(writes, release);

    for (status, task) in [&first, &second, &third] {
        assert_eq!(*status, StatusCode::CREATED, "{task}");
    }
    let (status, body) = &duplicate;
    assert_error(*status, body, StatusCode::CONFLICT, "email_taken");
    assert_eq!(fresh.0, StatusCode::CREATED, "{}", fresh.1);

    let after = app.db.write_batches();
    assert_eq!(
        (after.batches - before.batches, after.writes - before.writes),
        (1, batched),
        "the writes were one batch"
    );
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

/// `POST /tasks` with tags "b" and "a".
async fn create_tagged(app: &TestApp, token: &str, title: &str) -> (StatusCode, Value) {
    app.call(
        Method::POST,
        "/api/v1/tasks",
        Some(token),
        Some(json!({"title": title, "tags": ["b", "a"]})),
    )
    .await
}

/// PostgreSQL: creates whose session ended wait in the same batch as live ones and get their 401
/// from the batch's own statement; the others are created, in one statement.
#[tokio::test]
async fn postgres_creates_of_ended_sessions_get_their_401_inside_a_batch() {
    let app = TestApp::spawn(Engine::Postgres).await;
    let (live, _) = app.register("live").await;
    let (gone, user) = app.register("gone").await;
    let (logged_out, _) = app.register("loggedout").await;
    let before = app.db.write_batches();
    let hold = app.db.hold_writes().await;
    let create = |token, title| create_tagged(&app, token, title);
    let writes = async {
        tokio::join!(
            create(&live, "one"),
            create(&gone, "orphan"),
            create(&logged_out, "late"),
            create(&live, "two"),
        )
    };
    let ended = async {
        // Both sessions end while their creates wait in the queue, past every check before it.
        until_queued(&app, 4).await;
        crate::hardening::delete_user(&app, user["id"].as_i64().unwrap()).await;
        let (status, _) = app
            .call(Method::POST, "/api/v1/auth/logout", Some(&logged_out), None)
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        drop(hold);
    };
    let ((one, orphan, late, two), ()) = tokio::join!(writes, ended);
    for (status, task) in [&one, &two] {
        assert_eq!(*status, StatusCode::CREATED, "{task}");
        assert_eq!(task["tags"], json!(["b", "a"]), "tags in the order given");
    }
    assert_error(orphan.0, &orphan.1, StatusCode::UNAUTHORIZED, "unauthorized");
    assert!(
        orphan.1["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no longer exists"),
        "{}",
        orphan.1
    );
    assert_error(late.0, &late.1, StatusCode::UNAUTHORIZED, "unauthorized");
    assert!(
        late.1["error"]["message"].as_str().unwrap().contains("logged out"),
        "{}",
        late.1
    );
    let after = app.db.write_batches();
    assert_eq!((after.batches - before.batches, after.writes - before.writes), (1, 4));
    let (_, page) = app
        .call(
            Method::GET,
            "/api/v1/tasks?tag=a&sort=title&order=asc",
            Some(&live),
            None,
        )
        .await;
    assert_eq!(page["total"], 2, "{page}");
}

/// PostgreSQL: when the batch's statement fails (here a foreign-key violation raised for one row,
/// as an account deleted between the check and the insert would), each create runs alone: the
/// failing one gets its own 4xx and the others are created.
#[tokio::test]
async fn postgres_a_batch_whose_statement_fails_runs_each_create_alone() {
    let app = TestApp::spawn(Engine::Postgres).await;
    let Db::Postgres(db) = &app.db else { unreachable!() };
    db.pool()
        .execute(
            "CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
               IF NEW.title = 'poison' THEN RAISE EXCEPTION 'poisoned' USING ERRCODE = 'foreign_key_violation'; END IF; \
               RETURN NEW; END $$; \
             CREATE TRIGGER poison BEFORE INSERT ON tasks FOR EACH ROW EXECUTE FUNCTION poison();",
        )
        .await
        .unwrap();
    let (token, _) = app.register("poison").await;
    // A create through the queue first (held, so it cannot run at once on its own): the queue's
    // task is then running, and the hold below must still get every slot.
    let first = app.db.hold_writes().await;
    let release = async {
        until_queued(&app, 1).await;
        drop(first);
    };
    tokio::join!(app.create_task(&token, json!({"title": "before"})), release);
    let before = app.db.write_batches();
    let hold = tokio::time::timeout(Duration::from_secs(10), app.db.hold_writes())
        .await
        .expect("a hold while the queue's task waits for creates");
    let create = |title: &'static str| {
        app.call(
            Method::POST,
            "/api/v1/tasks",
            Some(&token),
            Some(json!({"title": title})),
        )
    };
    let writes = async { tokio::join!(create("first"), create("poison"), create("second"), create("third")) };
    let release = async {
        until_queued(&app, 4).await;
        drop(hold);
    };
    let ((first, poison, second, third), ()) = tokio::join!(writes, release);
    for (status, task) in [&first, &second, &third] {
        assert_eq!(*status, StatusCode::CREATED, "{task}");
    }
    assert_error(poison.0, &poison.1, StatusCode::UNAUTHORIZED, "unauthorized");
    let after = app.db.write_batches();
    assert_eq!(
        (after.batches - before.batches, after.writes - before.writes),
        (3, 4),
        "the failed batch's creates ran alone: three statements committed"
    );
    let (_, page) = app.call(Method::GET, "/api/v1/tasks", Some(&token), None).await;
    assert_eq!(page["total"], 4, "{page}");
}
