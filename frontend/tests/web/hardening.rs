//! What a hostile or unlucky client could do to the web UI (issue 16): slow or oversized request
//! heads, keep-alive connections at shutdown, planted CSRF cookies, and a session cookie copied
//! before logout.

use std::{
    io::{Read, Write},
    net::TcpStream,
    time::Duration,
};

use crate::harness::{Browser, PASSWORD, start_backend, start_both, unique_email};
use reqwest::StatusCode;
use todo_service::contract::SESSION_COOKIE;

fn address(url: &str) -> String {
    url.strip_prefix("http://").unwrap().to_owned()
}

#[tokio::test]
async fn slow_headers_are_cut_off_and_draining_answers_close_keep_alive_connections() {
    let backend = start_backend().await;
    let mut config = frontend::config::Config::for_tests(&backend.url);
    config.connections.header_read_timeout_seconds = 1;
    config.shutdown_drain_seconds = 30;
    let (frontend, stop) = crate::harness::start_frontend_stoppable(config).await;
    let addr = address(&frontend.url);

    // A client that never finishes its headers is disconnected (the read timeout bounds the test).
    let slow = {
        let addr = addr.clone();
        tokio::task::spawn_blocking(move || {
            let mut stream = TcpStream::connect(addr).unwrap();
            stream.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
            stream.write_all(b"GET /login HTTP/1.1\r\nHost: t\r\nX-Slow: ").unwrap();
            let mut rest = Vec::new();
            stream.read_to_end(&mut rest).map(|_| rest)
        })
    };
    let outcome = slow.await.unwrap();
    assert!(
        outcome.as_ref().is_ok_and(|rest| rest.is_empty())
            || matches!(&outcome, Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset),
        "the frontend closed the connection without serving it: {outcome:?}"
    );

    // While draining, every answer tells keep-alive clients to close.
    let answer = Browser::new(&frontend.url).get("/login").await;
    assert_eq!(answer.header("connection"), None);
    stop.send(()).unwrap();
    frontend.wait_draining().await;
    let answer = Browser::new(&frontend.url).get("/login").await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.header("connection"), Some("close"));
}

#[tokio::test]
async fn an_oversized_request_head_gets_a_431_with_a_reason() {
    let (_backend, frontend) = start_both().await;
    let addr = address(&frontend.url);
    let answer = tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let request = format!("GET /?q={} HTTP/1.1\r\nHost: t\r\n\r\n", "a".repeat(1024 * 1024));
        let _ = stream.write_all(request.as_bytes());
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        String::from_utf8_lossy(&answer).into_owned()
    })
    .await
    .unwrap();
    assert!(answer.starts_with("HTTP/1.1 431 "), "{answer}");
    assert!(answer.contains("too large (at most 65536 bytes)"), "{answer}");
}

#[tokio::test]
async fn a_planted_csrf_cookie_is_worth_nothing() {
    let (_backend, frontend) = start_both().await;
    let planted = "ab".repeat(32);

    // Logging in (a login CSRF) with a cookie and token the attacker chose, and no Origin.
    let mut victim = Browser::new(&frontend.url);
    let mut attacker = Browser::new(&frontend.url);
    let email = unique_email("attacker");
    attacker.register(&email).await;
    victim.set_cookie("todo_csrf", &planted);
    let login = victim
        .post_from(
            "/login",
            &[("email", &email), ("password", PASSWORD), ("csrf_token", &planted)],
            None,
        )
        .await;
    assert_eq!(login.status, StatusCode::FORBIDDEN, "{}", login.body);
    assert!(victim.cookie(SESSION_COOKIE).is_none());

    // With a session, the token is bound to it: the planted nonce alone does not pass.
    victim.register(&unique_email("victim")).await;
    victim.set_cookie("todo_csrf", &planted);
    let forged = victim
        .post_from("/tasks", &[("title", "planted"), ("csrf_token", &planted)], None)
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN, "{}", forged.body);
    // The page's own token (derived from the same cookie and this session) does.
    let token = victim.get("/").await.csrf();
    assert_ne!(token, planted);
    let ok = victim
        .post("/tasks", &[("title", "mine"), ("csrf_token", &token)])
        .await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn logging_out_ends_the_session_even_for_a_copied_cookie() {
    let (_backend, frontend) = start_both().await;
    let mut browser = Browser::new(&frontend.url);
    browser.register(&unique_email("logout")).await;
    let session = browser.cookie(SESSION_COOKIE).unwrap().to_owned();
    let token = browser.get("/").await.csrf();
    let logout = browser.post("/logout", &[("csrf_token", &token)]).await;
    assert_eq!(logout.status, StatusCode::SEE_OTHER);
    assert!(browser.cookie(SESSION_COOKIE).is_none());

    // Someone who copied the cookie before the logout gets the login page.
    let mut copy = Browser::new(&frontend.url);
    copy.set_cookie(SESSION_COOKIE, &session);
    let page = copy.get("/").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(page.location(), Some("/login"));
}
