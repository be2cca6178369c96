//! The chat page driven like a browser without JavaScript (form posts and redirects) and like
//! htmx (fragments), against the real backend and its built-in assistant.

use crate::harness::{Browser, start_both, unique_email};
use reqwest::StatusCode;

/// The id in a `/chat/{id}` redirect.
fn conversation_of(location: Option<&str>) -> i64 {
    location
        .and_then(|l| l.strip_prefix("/chat/"))
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("a redirect to a conversation, not {location:?}"))
}

#[tokio::test]
async fn chat_without_javascript_adds_lists_and_completes_tasks_and_keeps_conversations() {
    let (_backend, frontend) = start_both().await;
    let mut browser = Browser::new(&frontend.url);
    browser.register(&unique_email("chat")).await;

    let list = browser.get("/").await;
    assert!(
        list.body.contains(r#"<a href="/chat">Chat</a>"#),
        "the header links the chat"
    );
    let empty = browser.get("/chat").await;
    assert_eq!(empty.status, StatusCode::OK);
    assert!(empty.body.contains("No conversations yet"), "{}", empty.body);
    let token = empty.csrf();

    let sent = browser
        .post(
            "/chat",
            &[
                ("csrf_token", &token),
                ("message", "add buy chat milk tomorrow, high priority #shop"),
            ],
        )
        .await;
    assert_eq!(sent.status, StatusCode::SEE_OTHER, "{}", sent.body);
    let id = conversation_of(sent.location());
    let page = browser.get(&format!("/chat/{id}")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("add buy chat milk tomorrow, high priority #shop"),
        "the message is shown"
    );
    assert!(
        page.body.contains("Added “buy chat milk”"),
        "the reply is shown: {}",
        page.body
    );
    let task_id = page.task_ids()[0];
    assert!(
        page.body.contains(r#"<span class="badge change-label">Added</span>"#),
        "the change is inline"
    );
    assert!(page.body.contains(&format!(r#"href="/tasks/{task_id}/edit""#)));
    assert!(
        page.body
            .contains(&format!(r#"<a href="/chat/{id}" aria-current="page">"#)),
        "listed as current"
    );

    // The task list shows it; completing by chat marks it done there too.
    let tasks = browser.get("/").await;
    assert!(tasks.task_item(task_id).contains("buy chat milk"));
    let token = page.csrf();
    let conversation = id.to_string();
    let sent = browser
        .post(
            "/chat",
            &[
                ("csrf_token", &token),
                ("conversation_id", &conversation),
                ("message", "complete buy chat milk"),
            ],
        )
        .await;
    assert_eq!(conversation_of(sent.location()), id, "the same conversation continues");
    let page = browser.get(&format!("/chat/{id}")).await;
    assert!(
        page.body.contains(r#"<span class="badge change-label">Done</span>"#),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains(&format!(r#"data-task-id="{task_id}" data-completed="true""#))
    );
    let tasks = browser.get("/").await;
    assert!(tasks.task_item(task_id).contains(r#"data-completed="true""#));

    // An empty message is refused with the form kept; nonsense gets examples.
    let refused = browser
        .post(
            "/chat",
            &[
                ("csrf_token", &token),
                ("conversation_id", &conversation),
                ("message", "   "),
            ],
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        refused.body.contains("Message must be 1 to 2000 characters long."),
        "{}",
        refused.body
    );
    let sent = browser
        .post("/chat", &[("csrf_token", &token), ("message", "flibbertigibbet")])
        .await;
    let other = conversation_of(sent.location());
    assert_ne!(other, id, "without a conversation id a new one starts");
    let page = browser.get(&format!("/chat/{other}")).await;
    assert!(page.body.contains("did not understand"), "{}", page.body);

    // Past conversations are listed, newest first, and can be deleted.
    let index = browser.get("/chat").await;
    let newest = index.body.find(&format!(r#"href="/chat/{other}""#)).expect("listed");
    let older = index.body.find(&format!(r#"href="/chat/{id}""#)).expect("listed");
    assert!(newest < older, "newest first");
    let deleted = browser
        .post(&format!("/chat/{other}/delete"), &[("csrf_token", &index.csrf())])
        .await;
    assert_eq!(deleted.status, StatusCode::SEE_OTHER);
    assert_eq!(deleted.location(), Some("/chat"));
    assert_eq!(
        browser.get(&format!("/chat/{other}")).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn chat_with_htmx_swaps_the_conversation_in_place() {
    let (_backend, frontend) = start_both().await;
    let mut browser = Browser::new(&frontend.url);
    browser.register(&unique_email("chat-htmx")).await;
    let token = browser.get("/chat").await.csrf();
    browser.extra_headers = vec![
        ("hx-request".to_owned(), "true".to_owned()),
        ("hx-target".to_owned(), "chat".to_owned()),
    ];
    let fragment = browser
        .post("/chat", &[("csrf_token", &token), ("message", "add htmx task #fast")])
        .await;
    assert_eq!(fragment.status, StatusCode::OK, "{}", fragment.body);
    assert!(
        fragment.body.starts_with(r#"<section id="chat""#),
        "only the fragment: {}",
        fragment.body
    );
    assert!(!fragment.body.contains("<html"), "not a whole page");
    assert!(fragment.body.contains("Added “htmx task”"));
    let pushed = fragment.header("hx-push-url").expect("the address follows").to_owned();
    let id = conversation_of(Some(&pushed));
    assert!(
        fragment
            .body
            .contains(&format!(r#"name="conversation_id" value="{id}""#))
    );

    // The past conversations come along, swapped out of band, listing this one as current.
    let (section, list) = fragment
        .body
        .split_once("</section>")
        .expect("the conversation section");
    let list = list.trim();
    assert!(
        list.starts_with(r#"<nav id="conversations""#) && list.contains(r#"hx-swap-oob="true""#),
        "{list}"
    );
    assert!(
        list.contains(&format!(r#"<a href="/chat/{id}" aria-current="page">"#)),
        "{list}"
    );

    // The fragment is the page's own markup.
    browser.extra_headers.clear();
    let page = browser.get(&pushed).await;
    let start = page.body.find(r#"<section id="chat""#).unwrap();
    assert!(
        page.body[start..].starts_with(&format!("{section}</section>")),
        "same conversation markup on the page and in the fragment"
    );
    let nav = page.body.find(r#"<nav id="conversations""#).unwrap();
    assert!(
        page.body[nav..].starts_with(&list.replace(r#" hx-swap-oob="true""#, "")),
        "same list on the page and in the fragment"
    );
}

#[tokio::test]
async fn chat_needs_a_session_and_someone_elses_conversation_is_not_found() {
    let (_backend, frontend) = start_both().await;
    let mut stranger = Browser::new(&frontend.url);
    let page = stranger.get("/chat").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(page.location(), Some("/login"));

    let mut owner = Browser::new(&frontend.url);
    owner.register(&unique_email("chat-owner")).await;
    let token = owner.get("/chat").await.csrf();
    let sent = owner
        .post("/chat", &[("csrf_token", &token), ("message", "add private thing")])
        .await;
    let id = conversation_of(sent.location());

    let mut other = Browser::new(&frontend.url);
    other.register(&unique_email("chat-other")).await;
    assert_eq!(other.get(&format!("/chat/{id}")).await.status, StatusCode::NOT_FOUND);
    let token = other.get("/chat").await.csrf();
    let refused = other
        .post(
            "/chat",
            &[
                ("csrf_token", &token),
                ("conversation_id", &id.to_string()),
                ("message", "list"),
            ],
        )
        .await;
    assert_eq!(refused.status, StatusCode::NOT_FOUND);
    let forged = other
        .post("/chat", &[("csrf_token", "wrong"), ("message", "list")])
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
}

/// A stand-in for an OpenAI-compatible provider that answers every request with one final
/// message (the shape of the Chat Completions API reference's chat completion object,
/// https://platform.openai.com/docs/api-reference/chat/object) and counts the requests.
async fn start_provider(reply: &'static str) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    };
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    let app = axum::Router::new().route(
        "/v1/chat/completions",
        axum::routing::post(move |axum::Json(body): axum::Json<serde_json::Value>| {
            let seen = seen.clone();
            async move {
                assert_eq!(body["model"], "stand-in-model");
                seen.fetch_add(1, Ordering::SeqCst);
                axum::Json(serde_json::json!({
                    "id": "chatcmpl-standin", "object": "chat.completion", "created": 1, "model": "stand-in-model",
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": reply}, "finish_reason": "stop"}],
                }))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, count)
}

#[tokio::test]
async fn with_a_key_the_chat_page_answers_through_the_provider() {
    let (provider, requests) = start_provider("Hello from the stand-in model.").await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = backend::config::Config::for_tests(&format!("sqlite://{}/t.db", dir.path().display()));
    config.openai_api_key = Some("sk-test-frontend".to_owned().into());
    config.openai_base_url = provider;
    config.openai_model = "stand-in-model".to_owned();
    let app = backend::startup::Application::build(config).await.unwrap();
    let backend_url = format!("http://{}", app.local_addr());
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    crate::harness::wait_until_ready(&format!("{backend_url}/ready")).await;
    let frontend = crate::harness::start_frontend(&backend_url).await;

    let mut browser = Browser::new(&frontend.url);
    browser.register(&unique_email("chat-llm")).await;
    let token = browser.get("/chat").await.csrf();
    let sent = browser
        .post("/chat", &[("csrf_token", &token), ("message", "hello")])
        .await;
    let page = browser.get(sent.location().expect("a redirect")).await;
    assert!(page.body.contains("Hello from the stand-in model."), "{}", page.body);
    assert_eq!(requests.load(std::sync::atomic::Ordering::SeqCst), 1);
}
