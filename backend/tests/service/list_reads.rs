//! List pages on PostgreSQL read together: pages that find every list connection busy queue,
//! and the next free connection reads them all, one statement per shape of page. Each client
//! still gets its own page, as it would have alone: its own user, filters, offset and session.

use crate::support::{Engine, TestApp, until_count};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Waits (bounded) until `n` list pages are queued behind the hold.
async fn until_queued(app: &TestApp, n: usize) {
    until_count("list pages queued", n, || app.db.queued_list_reads()).await;
}

#[tokio::test]
async fn pages_queued_together_are_each_the_page_read_alone() {
    let app = TestApp::spawn(Engine::Postgres).await;
    let (ann, ann_user) = app.register("ann").await;
    let (bob, _) = app.register("bob").await;
    for (token, title, tags) in [
        (&ann, "ann one", json!(["home"])),
        (&ann, "ann two", json!([])),
        (&ann, "ann three", json!(["work", "home"])),
        (&bob, "bob one", json!(["garden"])),
    ] {
        app.create_task(token, json!({"title": title, "tags": tags})).await;
    }
    let first = app
        .call(Method::GET, "/api/v1/tasks?order=asc", Some(&ann), None)
        .await
        .1;
    let id = first["items"][0]["id"].as_i64().unwrap();
    let (status, _) = app
        .call(
            Method::PATCH,
            &format!("/api/v1/tasks/{id}"),
            Some(&ann),
            Some(json!({"completed": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    // A second session of Ann's, logged out: its pages must be refused, batched or not.
    let (status, body) = app
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"email": ann_user["email"], "password": "correct horse battery"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let gone = body["token"].as_str().unwrap().to_owned();
    let (status, _) = app.call(Method::POST, "/api/v1/auth/logout", Some(&gone), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    let requests: Vec<(&str, &str)> = vec![
        ("/api/v1/tasks", &ann),
        ("/api/v1/tasks?limit=2", &ann),
        ("/api/v1/tasks", &bob),
        ("/api/v1/tasks?limit=1&offset=1&order=asc", &ann),
        ("/api/v1/tasks?status=completed", &ann),
        ("/api/v1/tasks?tag=home", &ann),
        ("/api/v1/tasks?offset=10", &ann),
        ("/api/v1/tasks", &gone),
    ];
    // Each page read alone (no hold: every reader is free).
    let mut alone = Vec::new();
    for (path, token) in &requests {
        alone.push(app.call(Method::GET, path, Some(token), None).await);
    }
    assert_eq!(alone[0].1["total"], 3, "{}", alone[0].1);
    assert_eq!(alone[2].1["items"][0]["title"], "bob one");
    assert_eq!(alone[4].1["total"], 1);
    assert_eq!(alone[7].0, StatusCode::UNAUTHORIZED);
    let before = app.db.list_batches();

    // The same requests at once, while every list connection is held.
    let hold = app
        .db
        .hold_list_reads()
        .await
        .expect("PostgreSQL reads lists on readers");
    let together = async {
        let calls = requests
            .iter()
            .map(|(path, token)| app.call(Method::GET, path, Some(token), None));
        futures_join_all(calls).await
    };
    let release = async {
        until_queued(&app, requests.len()).await;
        drop(hold);
    };
    let (together, ()) = tokio::join!(together, release);
    for (((path, _), alone), together) in requests.iter().zip(&alone).zip(&together) {
        assert_eq!(alone, together, "{path}");
    }
    let after = app.db.list_batches();
    assert_eq!(after.pages - before.pages, requests.len() as u64);
    // The unfiltered pages (any user, limit or offset) share a statement; the filtered ones
    // each have a shape of their own.
    let statements = after.statements - before.statements;
    assert!(statements <= 4, "{} pages took {statements} statements", requests.len());
}

/// Runs the calls concurrently and gives their answers in the calls' order.
async fn futures_join_all<F: std::future::Future<Output = (StatusCode, Value)>>(
    calls: impl Iterator<Item = F>,
) -> Vec<(StatusCode, Value)> {
    let mut pending: Vec<_> = calls.map(|call| Some(Box::pin(call))).collect();
    let mut answers: Vec<Option<(StatusCode, Value)>> = pending.iter().map(|_| None).collect();
    // Polled together: each call makes progress while the others wait.
    std::future::poll_fn(|cx| {
        for (slot, answer) in pending.iter_mut().zip(answers.iter_mut()) {
            if let Some(call) = slot
                && let std::task::Poll::Ready(done) = call.as_mut().poll(cx)
            {
                *answer = Some(done);
                *slot = None;
            }
        }
        if pending.iter().all(Option::is_none) {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    answers
        .into_iter()
        .map(|answer| answer.expect("every call answered"))
        .collect()
}
