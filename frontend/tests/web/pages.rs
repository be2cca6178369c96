//! The web UI driven over HTTP the way a browser without JavaScript drives it, against the real
//! backend: every action is a form POST answered with 303, and what the next page shows is what
//! the backend stored.

use crate::harness::{Browser, PASSWORD, start_backend, start_both, start_frontend, unique_email};
use reqwest::StatusCode;
use todo_service::contract::SESSION_COOKIE;

#[tokio::test]
async fn register_add_edit_complete_filter_delete_logout_and_login_again() {
    let (_backend, frontend) = start_both().await;
    let mut browser = Browser::new(&frontend.url);
    let email = unique_email("journey");

    // Sign up: the session cookie is set and the list is reachable.
    browser.register(&email).await;
    assert!(browser.cookie(SESSION_COOKIE).is_some_and(|t| !t.is_empty()));
    let list = browser.get("/").await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(list.body.contains("No tasks yet"), "an empty list explains what to do");
    assert!(list.body.contains("Test User"), "the header names the user");

    // Add two tasks.
    let added = browser
        .add_task(&[
            ("title", "Buy oat milk"),
            ("description", "The barista kind"),
            ("priority", "high"),
            ("due_date", "2001-01-01"),
            ("tags", "errands, shop"),
        ])
        .await;
    assert_eq!(added.status, StatusCode::SEE_OTHER, "{}", added.body);
    assert_eq!(added.location(), Some("/"));
    browser
        .add_task(&[("title", "Call mum"), ("priority", "low"), ("tags", "family")])
        .await;
    let list = browser.get("/").await;
    let ids = list.task_ids();
    assert_eq!(ids.len(), 2, "{}", list.body);
    let (call, milk) = (ids[0], ids[1]);
    let item = list.task_item(milk);
    assert!(item.contains(r#"data-completed="false""#));
    assert!(item.contains(r#"class="task-title">Buy oat milk<"#), "{item}");
    assert!(item.contains("priority-high"), "{item}");
    assert!(
        item.contains("is-overdue"),
        "a past due date is shown as overdue: {item}"
    );
    assert!(item.contains("#errands") && item.contains("#shop"), "{item}");
    assert!(!list.task_item(call).contains("is-overdue"));

    // Edit: the form shows the stored values; saving changes them and clears the due date.
    let edit = browser.get(&format!("/tasks/{milk}/edit")).await;
    assert_eq!(edit.status, StatusCode::OK);
    assert!(edit.body.contains(r#"value="Buy oat milk""#), "{}", edit.body);
    assert!(edit.body.contains(r#"value="errands, shop""#));
    let token = edit.csrf();
    let saved = browser
        .post(
            &format!("/tasks/{milk}"),
            &[
                ("title", "Buy oat milk and bread"),
                ("description", ""),
                ("priority", "medium"),
                ("due_date", ""),
                ("tags", "errands"),
                ("csrf_token", &token),
            ],
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    let list = browser.get("/").await;
    let item = list.task_item(milk);
    assert!(item.contains("Buy oat milk and bread"), "{item}");
    assert!(item.contains("priority-medium") && !item.contains("is-overdue") && !item.contains("#shop"));
    assert!(!item.contains("The barista kind"), "an empty description clears it");

    // Complete, then filter by status, priority, tag and search text.
    let token = list.csrf();
    let toggled = browser
        .post(&format!("/tasks/{milk}/toggle"), &[("csrf_token", &token)])
        .await;
    assert_eq!(toggled.status, StatusCode::SEE_OTHER);
    let list = browser.get("/").await;
    assert!(list.task_item(milk).contains(r#"data-completed="true""#));
    assert!(list.task_item(milk).contains("is-done"));
    assert_eq!(browser.get("/?status=completed").await.task_ids(), [milk]);
    assert_eq!(browser.get("/?status=pending").await.task_ids(), [call]);
    assert_eq!(browser.get("/?priority=low").await.task_ids(), [call]);
    assert_eq!(browser.get("/?tag=family").await.task_ids(), [call]);
    assert_eq!(browser.get("/?q=bread").await.task_ids(), [milk]);
    assert_eq!(browser.get("/?sort=title&order=asc").await.task_ids(), [milk, call]);
    let none = browser.get("/?q=nothing-like-this").await;
    assert!(none.task_ids().is_empty());
    assert!(none.body.contains("No tasks match these filters"));

    // Toggling again makes it pending; the form's `return_to` brings us back to the same list.
    let filtered = browser.get("/?status=completed").await;
    let token = filtered.csrf();
    let back = browser
        .post(
            &format!("/tasks/{milk}/toggle"),
            &[("csrf_token", &token), ("return_to", "status=completed")],
        )
        .await;
    assert_eq!(back.location(), Some("/?status=completed"));
    assert!(browser.get("/?status=completed").await.task_ids().is_empty());

    // Delete: without JavaScript a confirmation page comes first.
    let confirm = browser.get(&format!("/tasks/{call}/delete")).await;
    assert_eq!(confirm.status, StatusCode::OK);
    assert!(confirm.body.contains("Call mum"));
    assert!(confirm.body.contains(&format!(r#"action="/tasks/{call}/delete""#)));
    let token = confirm.csrf();
    let deleted = browser
        .post(&format!("/tasks/{call}/delete"), &[("csrf_token", &token)])
        .await;
    assert_eq!(deleted.status, StatusCode::SEE_OTHER);
    assert_eq!(browser.get("/").await.task_ids(), [milk]);
    assert_eq!(
        browser.get(&format!("/tasks/{call}/edit")).await.status,
        StatusCode::NOT_FOUND
    );

    // Log out: the cookie goes, the list sends us to the login page.
    let token = browser.get("/").await.csrf();
    let out = browser.post("/logout", &[("csrf_token", &token)]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert_eq!(out.location(), Some("/login"));
    assert!(browser.cookie(SESSION_COOKIE).is_none());
    let list = browser.get("/").await;
    assert_eq!(list.status, StatusCode::SEE_OTHER);
    assert_eq!(list.location(), Some("/login"));

    // Log in again: the same task is there.
    let login = browser.get("/login").await;
    let token = login.csrf();
    let in_again = browser
        .post(
            "/login",
            &[("email", &email), ("password", PASSWORD), ("csrf_token", &token)],
        )
        .await;
    assert_eq!(in_again.status, StatusCode::SEE_OTHER, "{}", in_again.body);
    assert_eq!(in_again.location(), Some("/"));
    assert_eq!(browser.get("/").await.task_ids(), [milk]);
}

#[tokio::test]
async fn the_list_needs_a_valid_session() {
    let (_backend, frontend) = start_both().await;
    let mut browser = Browser::new(&frontend.url);
    let page = browser.get("/").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(page.location(), Some("/login"));

    // A forged or expired token: the backend says 401, the cookie is cleared.
    browser.set_cookie(SESSION_COOKIE, "not.a.token");
    let page = browser.get("/").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(page.location(), Some("/login"));
    assert!(
        page.headers
            .get_all("set-cookie")
            .iter()
            .any(|c| c.to_str().unwrap().starts_with("todo_session=; Path=/; Max-Age=0"))
    );
    assert!(browser.cookie(SESSION_COOKIE).is_none());
}

#[tokio::test]
async fn session_cookie_is_http_only_and_lax_and_secure_when_configured() {
    let backend = start_backend().await;
    let plain = start_frontend(&backend.url).await;
    let mut browser = Browser::new(&plain.url);
    let page = browser.register(&unique_email("cookie")).await;
    let cookie = page.header("set-cookie").expect("session cookie");
    assert!(cookie.starts_with("todo_session="), "{cookie}");
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax") && !cookie.contains("Secure"));

    let mut config = frontend::config::Config::for_tests(&backend.url);
    config.cookie_secure = true;
    let secure = crate::harness::start_frontend_with(config, std::future::pending()).await;
    let mut browser = Browser::new(&secure.url);
    let form = browser.get("/login").await;
    let csrf_cookie = form.header("set-cookie").expect("csrf cookie");
    assert!(
        csrf_cookie.starts_with("todo_csrf=") && csrf_cookie.ends_with("; Secure"),
        "{csrf_cookie}"
    );
    let page = browser.register(&unique_email("secure")).await;
    assert!(
        page.header("set-cookie")
            .unwrap()
            .ends_with("HttpOnly; SameSite=Lax; Secure")
    );
}

#[tokio::test]
async fn forms_without_the_right_csrf_token_or_from_another_site_are_refused() {
    let (_backend, frontend) = start_both().await;
    let mut browser = Browser::new(&frontend.url);
    browser.register(&unique_email("csrf")).await;
    let token = browser.get("/").await.csrf();

    let missing = browser.post("/tasks", &[("title", "no token")]).await;
    assert_eq!(missing.status, StatusCode::FORBIDDEN);
    assert!(missing.body.contains("Request refused"));
    let wrong = browser
        .post("/tasks", &[("title", "wrong token"), ("csrf_token", &"0".repeat(64))])
        .await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);
    let cross_site = browser
        .post_from(
            "/tasks",
            &[("title", "cross site"), ("csrf_token", &token)],
            Some("http://evil.example"),
        )
        .await;
    assert_eq!(cross_site.status, StatusCode::FORBIDDEN);
    let logout = browser.post("/logout", &[]).await;
    assert_eq!(logout.status, StatusCode::FORBIDDEN, "logging out needs the token too");
    assert!(browser.cookie(SESSION_COOKIE).is_some());

    // None of them got through; the same form with the right token and origin does.
    assert!(browser.get("/").await.task_ids().is_empty());
    let ok = browser
        .post("/tasks", &[("title", "with token"), ("csrf_token", &token)])
        .await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER);
    assert_eq!(browser.get("/").await.task_ids().len(), 1);

    // Another browser's token is worth nothing here.
    let mut other = Browser::new(&frontend.url);
    let other_token = other.get("/login").await.csrf();
    assert_ne!(other_token, token);
    let stolen = browser
        .post("/tasks", &[("title", "stolen"), ("csrf_token", &other_token)])
        .await;
    assert_eq!(stolen.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn another_users_task_is_not_found() {
    let (_backend, frontend) = start_both().await;
    let mut alice = Browser::new(&frontend.url);
    alice.register(&unique_email("alice")).await;
    alice.add_task(&[("title", "Alice's secret")]).await;
    let alice_task = alice.get("/").await.task_ids()[0];

    let mut bob = Browser::new(&frontend.url);
    bob.register(&unique_email("bob")).await;
    let token = bob.get("/").await.csrf();
    for path in [
        format!("/tasks/{alice_task}/edit"),
        format!("/tasks/{alice_task}/delete"),
    ] {
        let page = bob.get(&path).await;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "GET {path}");
        assert!(page.body.contains("Not found") && !page.body.contains("Alice's secret"));
    }
    let form = [("title", "hijacked"), ("csrf_token", token.as_str())];
    for path in [
        format!("/tasks/{alice_task}"),
        format!("/tasks/{alice_task}/toggle"),
        format!("/tasks/{alice_task}/delete"),
    ] {
        assert_eq!(
            bob.post(&path, &form).await.status,
            StatusCode::NOT_FOUND,
            "POST {path}"
        );
    }
    assert_eq!(bob.get("/tasks/not-a-number/edit").await.status, StatusCode::NOT_FOUND);

    // Alice's task is untouched.
    let list = alice.get("/").await;
    let item = list.task_item(alice_task);
    assert!(item.contains("Alice&#39;s secret"), "{item}");
    assert!(item.contains(r#"data-completed="false""#));
}

#[tokio::test]
async fn validation_errors_are_shown_with_the_input_kept_but_never_the_password() {
    let (_backend, frontend) = start_both().await;
    let mut browser = Browser::new(&frontend.url);
    let email = unique_email("valid");

    // 422: the password is too short.
    let token = browser.get("/register").await.csrf();
    let short = "short1";
    let page = browser
        .post(
            "/register",
            &[
                ("email", &email),
                ("password", short),
                ("name", "Ada <Lovelace>"),
                ("csrf_token", &token),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        page.body.contains("Password must be at least 8 characters long."),
        "{}",
        page.body
    );
    assert!(page.body.contains(&format!(r#"value="{email}""#)), "the email is kept");
    assert!(
        page.body.contains(r#"value="Ada &#60;Lovelace&#62;""#),
        "the name is kept, escaped"
    );
    assert!(!page.body.contains(short), "the password is never sent back");
    assert!(
        page.body
            .contains(r#"name="password" type="password" autocomplete="new-password" required"#)
    );
    assert!(browser.cookie(SESSION_COOKIE).is_none());

    // 409: the email is taken.
    browser.register(&email).await;
    let mut other = Browser::new(&frontend.url);
    let token = other.get("/register").await.csrf();
    let taken = other
        .post(
            "/register",
            &[("email", &email), ("password", PASSWORD), ("csrf_token", &token)],
        )
        .await;
    assert_eq!(taken.status, StatusCode::CONFLICT);
    assert!(taken.body.contains("An account with this email already exists"));
    assert!(taken.body.contains(&format!(r#"value="{email}""#)));
    assert!(!taken.body.contains(PASSWORD));

    // 401: wrong password.
    let token = other.get("/login").await.csrf();
    let wrong = other
        .post(
            "/login",
            &[
                ("email", &email),
                ("password", "not the password"),
                ("csrf_token", &token),
            ],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.body.contains("Wrong email or password."));
    assert!(wrong.body.contains(&format!(r#"value="{email}""#)));
    assert!(!wrong.body.contains("not the password"));

    // 422 on a task: the title is too long; everything typed comes back.
    let long_title = "x".repeat(201);
    let page = browser
        .add_task(&[
            ("title", &long_title),
            ("description", "kept notes"),
            ("priority", "high"),
            ("due_date", "2031-02-03"),
            ("tags", "kept, tags"),
        ])
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        page.body.contains("Title must be 1 to 200 characters long."),
        "{}",
        page.body
    );
    assert!(page.body.contains(&format!(r#"value="{long_title}""#)));
    assert!(page.body.contains(">kept notes</textarea>"));
    assert!(page.body.contains(r#"<option value="high" selected>"#));
    assert!(page.body.contains(r#"value="2031-02-03""#) && page.body.contains(r#"value="kept, tags""#));
    assert!(page.body.contains(r#"aria-invalid="true""#));
}

#[tokio::test]
async fn long_lists_are_paged() {
    let (_backend, frontend) = start_both().await;
    let mut browser = Browser::new(&frontend.url);
    browser.register(&unique_email("pages")).await;
    let page_size = frontend::list_query::PAGE_SIZE as usize;
    let token = browser.get("/").await.csrf();
    for n in 0..=page_size {
        let title = format!("Task {n:02}");
        let page = browser
            .post("/tasks", &[("title", &title), ("csrf_token", &token)])
            .await;
        assert_eq!(page.status, StatusCode::SEE_OTHER);
    }
    let first = browser.get("/").await;
    assert_eq!(first.task_ids().len(), page_size);
    assert!(first.body.contains(r#"<nav class="pagination""#));
    assert!(first.body.contains(r#"rel="next" href="/?page=2""#), "{}", first.body);
    assert!(first.body.contains(&format!("{} tasks", page_size + 1)));
    let second = browser.get("/?page=2").await;
    assert_eq!(second.task_ids().len(), 1);
    assert!(second.body.contains(r#"rel="prev" href="/""#));
    assert!(second.body.contains("Task 00"), "newest first: the oldest is last");

    // Filters survive paging.
    let sorted = browser.get("/?sort=title&order=asc&page=2").await;
    assert!(sorted.body.contains(&format!("Task {page_size:02}")));
    assert!(
        sorted.body.contains(r#"href="/?sort=title&#38;order=asc""#),
        "{}",
        sorted.body
    );
}

#[tokio::test]
async fn htmx_requests_get_fragments_that_match_the_page() {
    let (_backend, frontend) = start_both().await;
    let mut browser = Browser::new(&frontend.url);
    browser.register(&unique_email("htmx")).await;
    let token = browser.get("/").await.csrf();
    browser.extra_headers = vec![
        ("hx-request".to_owned(), "true".to_owned()),
        ("hx-target".to_owned(), "board".to_owned()),
        ("x-csrf-token".to_owned(), token.clone()),
    ];

    // Adding answers the board (200, no redirect, no page frame) with the new task in it.
    let board = browser.post("/tasks", &[("title", "Swapped in")]).await;
    assert_eq!(board.status, StatusCode::OK, "{}", board.body);
    assert!(
        board.body.trim_start().starts_with(r#"<div id="board""#),
        "{}",
        board.body
    );
    assert!(!board.body.contains("<html"));
    let id = board.task_ids()[0];
    assert_eq!(board.header("hx-push-url"), Some("/"));

    // The same task on the full page has exactly the same markup.
    browser.extra_headers.clear();
    let page = browser.get("/").await;
    assert_eq!(page.task_item(id), board.task_item(id));

    // Toggling answers just the item, now done.
    browser.extra_headers = vec![
        ("hx-request".to_owned(), "true".to_owned()),
        ("hx-target".to_owned(), format!("task-{id}")),
    ];
    let item = browser
        .post(
            &format!("/tasks/{id}/toggle"),
            &[("csrf_token", &token), ("completed", "true")],
        )
        .await;
    assert_eq!(item.status, StatusCode::OK);
    assert!(item.body.trim_start().starts_with(&format!(r#"<li id="task-{id}""#)));
    assert!(item.body.contains(r#"data-completed="true""#));

    // A validation error comes back inside the board (htmx only swaps 2xx answers).
    browser.extra_headers[1].1 = "board".to_owned();
    let invalid = browser
        .post("/tasks", &[("title", " "), ("tags", "keep"), ("csrf_token", &token)])
        .await;
    assert_eq!(invalid.status, StatusCode::OK);
    assert!(invalid.body.contains("Title must be"));
    assert!(invalid.body.contains(r#"value="keep""#));

    // Filters answer the board only, and the address bar gets the canonical URL.
    let filtered = browser
        .get("/?status=completed&q=&priority=&tag=&sort=created&order=desc")
        .await;
    assert!(filtered.body.trim_start().starts_with(r#"<div id="board""#));
    assert_eq!(filtered.header("hx-push-url"), Some("/?status=completed"));

    // Deleting answers the board without the task.
    let after = browser
        .post(&format!("/tasks/{id}/delete"), &[("csrf_token", &token)])
        .await;
    assert_eq!(after.status, StatusCode::OK);
    assert!(after.task_ids().is_empty());

    // An expired session makes htmx navigate to /login instead of swapping the login page in.
    browser.set_cookie(SESSION_COOKIE, "expired.token.value");
    let expired = browser.get("/").await;
    assert_eq!(expired.status, StatusCode::OK);
    assert_eq!(expired.header("hx-redirect"), Some("/login"));
}

#[tokio::test]
async fn pages_send_security_headers() {
    let (_backend, frontend) = start_both().await;
    let mut browser = Browser::new(&frontend.url);
    browser.register(&unique_email("headers")).await;
    for path in ["/", "/login", "/register", "/no-such-page"] {
        let page = browser.get(path).await;
        let csp = page.header("content-security-policy").expect("CSP");
        assert!(
            csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"),
            "{csp}"
        );
        assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"), "{csp}");
        assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(page.header("x-frame-options"), Some("DENY"));
        assert_eq!(page.header("referrer-policy"), Some("same-origin"));
        assert_eq!(page.header("cache-control"), Some("no-store"), "{path}");
        assert!(page.header("x-request-id").is_some_and(|id| !id.is_empty()));
        // Nothing inline that the CSP would block.
        assert!(!page.body.contains("style="), "{path} has an inline style");
        assert!(
            !page.body.contains("<script>") && !page.body.contains(" onclick="),
            "{path}"
        );
    }
    assert_eq!(browser.get("/no-such-page").await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn htmx_and_the_stylesheet_are_served_from_the_binary_with_a_long_cache() {
    let (_backend, frontend) = start_both().await;
    let mut browser = Browser::new(&frontend.url);
    let page = browser.get("/login").await;
    let src = |marker: &str| -> String {
        let start = page.body.find(marker).unwrap_or_else(|| panic!("{marker} not in page")) + marker.len();
        page.body[start..].split('"').next().unwrap().to_owned()
    };
    let htmx_url = src(r#"<script src=""#);
    assert!(htmx_url.starts_with("/static/htmx-2.0.11."), "{htmx_url}");
    let htmx = browser.get(&htmx_url).await;
    assert_eq!(htmx.status, StatusCode::OK);
    assert_eq!(
        htmx.header("cache-control"),
        Some("public, max-age=31536000, immutable")
    );
    assert_eq!(htmx.header("content-type"), Some("text/javascript; charset=utf-8"));
    assert!(htmx.body.starts_with("/*! htmx.org 2.0.11"));
    assert!(htmx.body.contains("htmx") && htmx.body.len() > 40_000);

    let css_url = src(r#"<link rel="stylesheet" href=""#);
    let css = browser.get(&css_url).await;
    assert_eq!(css.status, StatusCode::OK);
    assert_eq!(css.header("cache-control"), Some("public, max-age=31536000, immutable"));
    assert!(css.body.contains(".task"));

    // A stale or made-up hash is not found (and not cached for a year).
    let stale = browser.get("/static/app.0000000000000000.css").await;
    assert_eq!(stale.status, StatusCode::NOT_FOUND);
    assert_eq!(stale.header("cache-control"), Some("no-store"));
}
