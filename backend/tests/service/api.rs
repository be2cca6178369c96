//! The API suite: every route and error case, run against SQLite and PostgreSQL alike.

use crate::support::{Engine, JWT_SECRET, TestApp, assert_error, unique_email, until_count};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

on_both_engines!(
    register_returns_a_token_and_the_user,
    register_rejects_taken_emails_in_any_case,
    register_validates_email_password_and_name,
    login_accepts_the_right_password_and_rejects_everything_else_alike,
    me_requires_a_valid_unexpired_token,
    tasks_can_be_created_read_updated_and_deleted,
    patch_clears_nullable_fields_and_keeps_completion_time,
    task_input_is_validated,
    malformed_requests_get_clear_client_errors,
    users_only_ever_see_their_own_tasks,
    list_pages_and_counts_all_matches,
    the_unfiltered_total_follows_every_create_and_delete,
    list_filters_by_status_priority_tag_and_text,
    list_sorts_by_every_key,
    list_rejects_bad_query_parameters,
    task_routes_require_a_token,
);

async fn register_returns_a_token_and_the_user(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let email = unique_email("Ann");
    let (status, body) = app
        .call(
            Method::POST,
            "/api/v1/auth/register",
            None,
            Some(
                json!({"email": format!("  {}  ", email.to_uppercase()), "password": "correct horse", "name": " Ann "}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert!(
        body["token"].as_str().is_some_and(|t| t.split('.').count() == 3),
        "a JWT: {body}"
    );
    assert!(body["user"]["id"].as_i64().is_some_and(|id| id > 0));
    assert_eq!(body["user"]["email"], email.to_lowercase());
    assert_eq!(body["user"]["name"], "Ann");
    assert!(body["user"].get("password_hash").is_none() && !body.to_string().contains("argon2"));

    // The token works, and name is optional.
    let token = body["token"].as_str().unwrap();
    let (status, me) = app.call(Method::GET, "/api/v1/auth/me", Some(token), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me, body["user"]);
    let (status, body) = app
        .call(
            Method::POST,
            "/api/v1/auth/register",
            None,
            Some(json!({"email": unique_email("noname"), "password": "correct horse"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(body["user"]["name"], Value::Null);
}

async fn register_rejects_taken_emails_in_any_case(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (_, user) = app.register("taken").await;
    let email = user["email"].as_str().unwrap().to_uppercase();
    let (status, body) = app
        .call(
            Method::POST,
            "/api/v1/auth/register",
            None,
            Some(json!({"email": email, "password": "another password"})),
        )
        .await;
    assert_error(status, &body, StatusCode::CONFLICT, "email_taken");
}

async fn register_validates_email_password_and_name(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let cases = [
        json!({"email": "not-an-email", "password": "long enough"}),
        json!({"email": "a@b", "password": "long enough"}),
        json!({"email": unique_email("short"), "password": "1234567"}),
        json!({"email": unique_email("name"), "password": "long enough", "name": "x".repeat(101)}),
    ];
    for case in cases {
        let (status, body) = app
            .call(Method::POST, "/api/v1/auth/register", None, Some(case.clone()))
            .await;
        assert_error(status, &body, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        assert!(
            !body.to_string().contains("long enough"),
            "the password is never echoed: {body}"
        );
    }
    // Exactly 8 characters is enough.
    let (status, _) = app
        .call(
            Method::POST,
            "/api/v1/auth/register",
            None,
            Some(json!({"email": unique_email("eight"), "password": "12345678"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
}

async fn login_accepts_the_right_password_and_rejects_everything_else_alike(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (_, user) = app.register("login").await;
    let email = user["email"].as_str().unwrap();

    let (status, body) = app
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"email": email.to_uppercase(), "password": "correct horse battery"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["user"], user);
    let (status, _) = app
        .call(Method::GET, "/api/v1/auth/me", body["token"].as_str(), None)
        .await;
    assert_eq!(status, StatusCode::OK);

    let (status, wrong_password) = app
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"email": email, "password": "wrong password"})),
        )
        .await;
    assert_error(status, &wrong_password, StatusCode::UNAUTHORIZED, "unauthorized");
    let (status, unknown_email) = app
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"email": unique_email("nobody"), "password": "correct horse battery"})),
        )
        .await;
    assert_error(status, &unknown_email, StatusCode::UNAUTHORIZED, "unauthorized");
    assert_eq!(
        wrong_password, unknown_email,
        "the answer must not reveal which emails exist"
    );
}

async fn me_requires_a_valid_unexpired_token(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (token, user) = app.register("me").await;
    let (status, body) = app.call(Method::GET, "/api/v1/auth/me", None, None).await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");
    let (status, body) = app
        .call(Method::GET, "/api/v1/auth/me", Some("not.a.token"), None)
        .await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");

    // Signed with the right secret but expired an hour ago.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = json!({"sub": user["id"].to_string(), "iat": now - 7200, "exp": now - 3600});
    let expired = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .unwrap();
    let (status, body) = app.call(Method::GET, "/api/v1/auth/me", Some(&expired), None).await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");

    // Signed with another secret.
    let claims = json!({"sub": user["id"].to_string(), "iat": now, "exp": now + 3600});
    let forged = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(b"another-secret-another-secret-12345"),
    )
    .unwrap();
    let (status, _) = app.call(Method::GET, "/api/v1/auth/me", Some(&forged), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let (status, _) = app.call(Method::GET, "/api/v1/auth/me", Some(&token), None).await;
    assert_eq!(status, StatusCode::OK);
}

fn is_rfc3339_utc(value: &Value) -> bool {
    value.as_str().is_some_and(|s| {
        time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).is_ok() && s.ends_with('Z')
    })
}

async fn tasks_can_be_created_read_updated_and_deleted(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (owner, _) = app.register("crud").await;
    let token = Some(owner.as_str());

    // Defaults.
    let minimal = app.create_task(&owner, json!({"title": "  Buy milk  "})).await;
    assert_eq!(minimal["title"], "Buy milk");
    assert_eq!(minimal["description"], Value::Null);
    assert_eq!(minimal["completed"], false);
    assert_eq!(minimal["priority"], "medium");
    assert_eq!(minimal["due_date"], Value::Null);
    assert_eq!(minimal["tags"], json!([]));
    assert!(
        is_rfc3339_utc(&minimal["created_at"]) && is_rfc3339_utc(&minimal["updated_at"]),
        "{minimal}"
    );

    // Every field.
    let full = app
        .create_task(
            &owner,
            json!({"title": "Write report", "description": "Q3 numbers", "priority": "high",
                   "due_date": "2030-06-01", "tags": ["work", "urgent", "work"]}),
        )
        .await;
    assert_eq!(full["priority"], "high");
    assert_eq!(full["due_date"], "2030-06-01");
    assert_eq!(
        full["tags"],
        json!(["work", "urgent"]),
        "tags keep order, duplicates dropped"
    );
    let id = full["id"].as_i64().unwrap();
    assert!(id > 0 && id != minimal["id"].as_i64().unwrap());

    let (status, fetched) = app.call(Method::GET, &format!("/api/v1/tasks/{id}"), token, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(fetched, full);

    let (status, updated) = app
        .call(
            Method::PATCH,
            &format!("/api/v1/tasks/{id}"),
            token,
            Some(json!({"title": "Write the report", "priority": "low", "tags": ["home"], "completed": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["title"], "Write the report");
    assert_eq!(updated["priority"], "low");
    assert_eq!(updated["tags"], json!(["home"]));
    assert_eq!(updated["completed"], true);
    assert_eq!(updated["description"], "Q3 numbers", "fields not in the patch are kept");
    assert_eq!(updated["created_at"], full["created_at"]);
    assert!(updated["updated_at"].as_str() >= full["updated_at"].as_str());

    // What PATCH answered is what is stored.
    let (_, stored) = app.call(Method::GET, &format!("/api/v1/tasks/{id}"), token, None).await;
    assert_eq!(stored, updated);

    // An empty patch changes nothing but is fine.
    let (status, same) = app
        .call(Method::PATCH, &format!("/api/v1/tasks/{id}"), token, Some(json!({})))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(same["title"], "Write the report");

    let (status, body) = app
        .call(Method::DELETE, &format!("/api/v1/tasks/{id}"), token, None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(body, Value::Null);
    let (status, body) = app.call(Method::GET, &format!("/api/v1/tasks/{id}"), token, None).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (status, body) = app
        .call(Method::DELETE, &format!("/api/v1/tasks/{id}"), token, None)
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (status, body) = app
        .call(
            Method::PATCH,
            &format!("/api/v1/tasks/{id}"),
            token,
            Some(json!({"title": "x"})),
        )
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (status, body) = app.call(Method::GET, "/api/v1/tasks/999999", token, None).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
}

async fn patch_clears_nullable_fields_and_keeps_completion_time(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (token, _) = app.register("patch").await;
    let task = app
        .create_task(
            &token,
            json!({"title": "t", "description": "d", "due_date": "2031-01-01", "tags": ["a"]}),
        )
        .await;
    let path = format!("/api/v1/tasks/{}", task["id"]);

    let (status, cleared) = app
        .call(
            Method::PATCH,
            &path,
            Some(&token),
            Some(json!({"description": null, "due_date": null})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{cleared}");
    assert_eq!(cleared["description"], Value::Null);
    assert_eq!(cleared["due_date"], Value::Null);
    assert_eq!(cleared["tags"], json!(["a"]), "tags untouched when not in the patch");

    let (_, done) = app
        .call(Method::PATCH, &path, Some(&token), Some(json!({"completed": true})))
        .await;
    assert_eq!(done["completed"], true);
    let (_, still_done) = app
        .call(Method::PATCH, &path, Some(&token), Some(json!({"completed": true})))
        .await;
    assert_eq!(still_done["completed"], true);
    let (_, undone) = app
        .call(
            Method::PATCH,
            &path,
            Some(&token),
            Some(json!({"completed": false, "tags": []})),
        )
        .await;
    assert_eq!(undone["completed"], false);
    assert_eq!(undone["tags"], json!([]));
}

async fn task_input_is_validated(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (token, _) = app.register("validate").await;
    let invalid = [
        json!({"title": ""}),
        json!({"title": "   "}),
        json!({"title": "x".repeat(201)}),
        json!({"title": "ok", "description": "d".repeat(4001)}),
        json!({"title": "ok", "due_date": "2030-02-30"}),
        json!({"title": "ok", "due_date": "next week"}),
        json!({"title": "ok", "tags": (0..11).map(|i| format!("t{i}")).collect::<Vec<_>>()}),
        json!({"title": "ok", "tags": ["x".repeat(33)]}),
        json!({"title": "ok", "tags": [""]}),
    ];
    for body in invalid {
        let (status, error) = app
            .call(Method::POST, "/api/v1/tasks", Some(&token), Some(body.clone()))
            .await;
        assert_error(status, &error, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    }
    let wrong_shape = [
        json!({"title": "ok", "priority": "urgent"}),
        json!({"title": "ok", "colour": "red"}),
        json!({"description": "no title"}),
        json!({"title": 42}),
        json!({"title": "ok", "tags": "not-a-list"}),
    ];
    for body in wrong_shape {
        let (status, error) = app
            .call(Method::POST, "/api/v1/tasks", Some(&token), Some(body.clone()))
            .await;
        assert_error(status, &error, StatusCode::UNPROCESSABLE_ENTITY, "invalid_body");
    }
    // Limits are inclusive.
    app.create_task(
        &token,
        json!({"title": "x".repeat(200), "description": "d".repeat(4000),
               "tags": (0..10).map(|i| format!("{i:0>32}")).collect::<Vec<_>>()}),
    )
    .await;

    let task = app.create_task(&token, json!({"title": "patch me"})).await;
    let path = format!("/api/v1/tasks/{}", task["id"]);
    for (body, code) in [
        (json!({"title": ""}), "validation_failed"),
        (json!({"due_date": "31/12/2030"}), "validation_failed"),
        (json!({"priority": "none"}), "invalid_body"),
        (json!({"completed": "yes"}), "invalid_body"),
        (json!({"owner": 1}), "invalid_body"),
    ] {
        let (status, error) = app.call(Method::PATCH, &path, Some(&token), Some(body)).await;
        assert_error(status, &error, StatusCode::UNPROCESSABLE_ENTITY, code);
    }
    let (_, unchanged) = app.call(Method::GET, &path, Some(&token), None).await;
    assert_eq!(unchanged, task, "a rejected patch changes nothing");
}

async fn malformed_requests_get_clear_client_errors(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (token, _) = app.register("malformed").await;
    let post = |body: reqwest::Body, content_type: &'static str| {
        app.client
            .post(app.url("/api/v1/tasks"))
            .bearer_auth(&token)
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let read = |response: reqwest::Response| async move {
        let status = response.status();
        (status, response.json::<Value>().await.expect("errors are JSON"))
    };

    let (status, body) = read(post("{\"title\": ".into(), "application/json").await.unwrap()).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "malformed_json");
    let (status, body) = read(
        post("title=x".into(), "application/x-www-form-urlencoded")
            .await
            .unwrap(),
    )
    .await;
    assert_error(
        status,
        &body,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    );
    let huge = json!({"title": "big", "description": "x".repeat(70 * 1024)}).to_string();
    let (status, body) = read(post(huge.into(), "application/json").await.unwrap()).await;
    assert_error(status, &body, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");

    for id in ["abc", "1.5", "-1", "0", "99999999999999999999"] {
        let (status, body) = app
            .call(Method::GET, &format!("/api/v1/tasks/{id}"), Some(&token), None)
            .await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "invalid_id");
    }
    let (status, body) = app.call(Method::GET, "/api/v1/nothing-here", None, None).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (status, body) = app
        .call(Method::PUT, "/api/v1/tasks", Some(&token), Some(json!({})))
        .await;
    assert_error(status, &body, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
}

async fn users_only_ever_see_their_own_tasks(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (alice, _) = app.register("alice").await;
    let (bob, _) = app.register("bob").await;
    let secret = app
        .create_task(&alice, json!({"title": "Alice's secret", "tags": ["private"]}))
        .await;
    app.create_task(&bob, json!({"title": "Bob's task"})).await;
    let path = format!("/api/v1/tasks/{}", secret["id"]);

    let (status, body) = app.call(Method::GET, &path, Some(&bob), None).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (status, body) = app
        .call(Method::PATCH, &path, Some(&bob), Some(json!({"title": "pwned"})))
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (status, body) = app.call(Method::DELETE, &path, Some(&bob), None).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");

    let (_, bobs) = app
        .call(Method::GET, "/api/v1/tasks?tag=private", Some(&bob), None)
        .await;
    assert_eq!(bobs["total"], 0);
    let (_, bobs) = app.call(Method::GET, "/api/v1/tasks", Some(&bob), None).await;
    assert_eq!(bobs["total"], 1);
    assert_eq!(bobs["items"][0]["title"], "Bob's task");

    let (status, still) = app.call(Method::GET, &path, Some(&alice), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(still, secret, "Bob's attempts changed nothing");
}

async fn list_pages_and_counts_all_matches(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (token, _) = app.register("pages").await;
    for i in 0..25 {
        app.create_task(&token, json!({"title": format!("task {i:02}")})).await;
    }
    let (status, default_page) = app.call(Method::GET, "/api/v1/tasks", Some(&token), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(default_page["total"], 25);
    assert_eq!(
        default_page["items"].as_array().unwrap().len(),
        20,
        "default limit is 20"
    );
    assert_eq!(default_page["items"][0]["title"], "task 24", "newest first by default");

    let (_, last) = app
        .call(Method::GET, "/api/v1/tasks?limit=10&offset=20", Some(&token), None)
        .await;
    assert_eq!(last["total"], 25, "total counts every match, not the page");
    let titles: Vec<&str> = last["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles, ["task 04", "task 03", "task 02", "task 01", "task 00"]);

    let (_, beyond) = app
        .call(Method::GET, "/api/v1/tasks?offset=100", Some(&token), None)
        .await;
    assert_eq!(beyond["items"], json!([]));
    assert_eq!(beyond["total"], 25);

    // Pages do not overlap and cover everything.
    let mut seen = std::collections::BTreeSet::new();
    for offset in (0..25).step_by(7) {
        let (_, page) = app
            .call(
                Method::GET,
                &format!("/api/v1/tasks?limit=7&offset={offset}&sort=title&order=asc"),
                Some(&token),
                None,
            )
            .await;
        for task in page["items"].as_array().unwrap() {
            assert!(seen.insert(task["id"].as_i64().unwrap()), "task on two pages: {task}");
        }
    }
    assert_eq!(seen.len(), 25);
    let (_, max) = app
        .call(Method::GET, "/api/v1/tasks?limit=100", Some(&token), None)
        .await;
    assert_eq!(max["items"].as_array().unwrap().len(), 25);
}

async fn titles(app: &TestApp, token: &str, query: &str) -> (Vec<String>, i64) {
    let (status, page) = app
        .call(Method::GET, &format!("/api/v1/tasks?{query}"), Some(token), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{query}: {page}");
    let titles = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["title"].as_str().unwrap().to_owned())
        .collect();
    (titles, page["total"].as_i64().unwrap())
}

/// An unfiltered page reads its total from the count kept beside the user (migration 6), a
/// filtered one counts its matches: both stay right through creates alone and in batches, for
/// several users at once, and deletes.
async fn the_unfiltered_total_follows_every_create_and_delete(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (ann, _) = app.register("counted").await;
    let (bob, _) = app.register("counted-too").await;
    let total = |token: String, query: &'static str| {
        let app = &app;
        async move {
            let (status, page) = app
                .call(
                    Method::GET,
                    &format!("/api/v1/tasks?limit=1{query}"),
                    Some(&token),
                    None,
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{page}");
            page["total"].as_i64().unwrap()
        }
    };
    assert_eq!(total(ann.clone(), "").await, 0);
    let mut ids = Vec::new();
    for title in ["one", "two", "three"] {
        ids.push(
            app.create_task(&ann, json!({"title": title})).await["id"]
                .as_i64()
                .unwrap(),
        );
    }
    // Creates that go out together (one statement on PostgreSQL, one transaction on SQLite),
    // two users' mixed.
    let hold = app.db.hold_writes().await;
    let creates = async {
        tokio::join!(
            app.create_task(&ann, json!({"title": "batched one"})),
            app.create_task(&bob, json!({"title": "bob's"})),
            app.create_task(&ann, json!({"title": "batched two"})),
            app.create_task(&ann, json!({"title": "batched three"})),
        )
    };
    let release = async {
        until_count("creates queued", 4, || app.db.queued_writes()).await;
        drop(hold);
    };
    tokio::join!(creates, release);
    assert_eq!(total(ann.clone(), "").await, 6);
    assert_eq!(total(bob.clone(), "").await, 1);

    for id in &ids[..2] {
        let (status, body) = app
            .call(Method::DELETE, &format!("/api/v1/tasks/{id}"), Some(&ann), None)
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    }
    let (status, body) = app
        .call(
            Method::PATCH,
            &format!("/api/v1/tasks/{}", ids[2]),
            Some(&ann),
            Some(json!({"completed": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(total(ann.clone(), "").await, 4);
    // Counted by the filter, the parts add up to the kept total.
    assert_eq!(total(ann.clone(), "&status=completed").await, 1);
    assert_eq!(total(ann.clone(), "&status=pending").await, 3);
    assert_eq!(total(bob.clone(), "").await, 1);
}

async fn list_filters_by_status_priority_tag_and_text(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (token, _) = app.register("filters").await;
    let done = app
        .create_task(
            &token,
            json!({"title": "Pay rent", "priority": "high", "tags": ["home", "money"]}),
        )
        .await;
    app.call(
        Method::PATCH,
        &format!("/api/v1/tasks/{}", done["id"]),
        Some(&token),
        Some(json!({"completed": true})),
    )
    .await;
    app.create_task(
        &token,
        json!({"title": "Call mum", "priority": "low", "tags": ["family"]}),
    )
    .await;
    app.create_task(
        &token,
        json!({"title": "Fix bike", "description": "Rear BRAKE squeaks", "tags": ["home"]}),
    )
    .await;
    app.create_task(&token, json!({"title": "Save 50% more", "priority": "high"}))
        .await;

    let sorted = "sort=title&order=asc";
    assert_eq!(
        titles(&app, &token, &format!("status=completed&{sorted}")).await,
        (vec!["Pay rent".into()], 1)
    );
    assert_eq!(titles(&app, &token, &format!("status=pending&{sorted}")).await.1, 3);
    assert_eq!(titles(&app, &token, &format!("status=all&{sorted}")).await.1, 4);
    assert_eq!(
        titles(&app, &token, &format!("priority=high&{sorted}")).await,
        (vec!["Pay rent".into(), "Save 50% more".into()], 2)
    );
    assert_eq!(
        titles(&app, &token, &format!("tag=home&{sorted}")).await,
        (vec!["Fix bike".into(), "Pay rent".into()], 2)
    );
    assert_eq!(
        titles(&app, &token, &format!("tag=nothing&{sorted}")).await,
        (vec![], 0)
    );
    // Text search: case-insensitive, title or description, wildcards taken literally.
    assert_eq!(titles(&app, &token, "q=brake").await, (vec!["Fix bike".into()], 1));
    assert_eq!(titles(&app, &token, "q=CALL").await, (vec!["Call mum".into()], 1));
    assert_eq!(titles(&app, &token, "q=50%25").await, (vec!["Save 50% more".into()], 1));
    assert_eq!(titles(&app, &token, "q=_").await, (vec![], 0));
    // Filters combine.
    assert_eq!(
        titles(&app, &token, "tag=home&status=pending&priority=medium").await,
        (vec!["Fix bike".into()], 1)
    );
    assert_eq!(
        titles(&app, &token, "tag=home&limit=1&sort=title&order=asc").await,
        (vec!["Fix bike".into()], 2)
    );
}

async fn list_sorts_by_every_key(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (token, _) = app.register("sort").await;
    let a = app
        .create_task(
            &token,
            json!({"title": "banana", "priority": "low", "due_date": "2030-03-01"}),
        )
        .await;
    app.create_task(&token, json!({"title": "Apple", "priority": "high"}))
        .await;
    app.create_task(
        &token,
        json!({"title": "cherry", "priority": "medium", "due_date": "2030-01-01"}),
    )
    .await;
    // Touch the first one so it is the most recently updated.
    app.call(
        Method::PATCH,
        &format!("/api/v1/tasks/{}", a["id"]),
        Some(&token),
        Some(json!({"description": "ripe"})),
    )
    .await;

    let cases = [
        ("sort=created&order=asc", ["banana", "Apple", "cherry"]),
        ("sort=created&order=desc", ["cherry", "Apple", "banana"]),
        ("sort=updated&order=desc", ["banana", "cherry", "Apple"]),
        ("sort=title&order=asc", ["Apple", "banana", "cherry"]),
        ("sort=title&order=desc", ["cherry", "banana", "Apple"]),
        ("sort=priority&order=desc", ["Apple", "cherry", "banana"]),
        ("sort=priority&order=asc", ["banana", "cherry", "Apple"]),
        ("sort=due&order=asc", ["cherry", "banana", "Apple"]),
        ("sort=due&order=desc", ["banana", "cherry", "Apple"]),
    ];
    for (query, expected) in cases {
        let (got, _) = titles(&app, &token, query).await;
        assert_eq!(got, expected, "{query}");
    }
}

async fn list_rejects_bad_query_parameters(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (token, _) = app.register("query").await;
    for query in [
        "limit=0",
        "limit=101",
        "limit=abc",
        "offset=-1",
        "status=done",
        "sort=colour",
        "order=up",
        "priority=urgent",
        "colour=red",
    ] {
        let (status, body) = app
            .call(Method::GET, &format!("/api/v1/tasks?{query}"), Some(&token), None)
            .await;
        assert_error(status, &body, StatusCode::UNPROCESSABLE_ENTITY, "invalid_query");
    }
    let (status, _) = app.call(Method::GET, "/api/v1/tasks?limit=1", Some(&token), None).await;
    assert_eq!(status, StatusCode::OK);
}

async fn task_routes_require_a_token(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    for (method, path) in [
        (Method::GET, "/api/v1/tasks"),
        (Method::POST, "/api/v1/tasks"),
        (Method::GET, "/api/v1/tasks/1"),
        (Method::PATCH, "/api/v1/tasks/1"),
        (Method::DELETE, "/api/v1/tasks/1"),
    ] {
        let (status, body) = app.call(method.clone(), path, None, Some(json!({"title": "x"}))).await;
        assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");
        let (status, _) = app
            .call(method, path, Some("garbage"), Some(json!({"title": "x"})))
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
}
