//! The frontend when things go wrong around it: the backend down or slow, a shutdown signal,
//! and the probes an orchestrator uses. Also the real binary: its `healthcheck` subcommand, its
//! logs (one JSON line per request, never a secret) and its exit on SIGTERM.

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use crate::harness::{Browser, PASSWORD, closed_port_url, start_backend, start_both, start_frontend, unique_email};
use reqwest::StatusCode;
use todo_service::contract::{LISTENING_ON, SESSION_COOKIE};
use tokio::io::AsyncReadExt;

#[tokio::test]
async fn backend_down_gives_a_503_page_while_the_frontend_stays_up() {
    let frontend = start_frontend(&closed_port_url()).await;
    let mut browser = Browser::new(&frontend.url);

    // Pages that need no backend still work; the ones that do say so clearly.
    let form = browser.get("/login").await;
    assert_eq!(form.status, StatusCode::OK);
    let token = form.csrf();
    let page = browser
        .post(
            "/login",
            &[
                ("email", "a@example.com"),
                ("password", PASSWORD),
                ("csrf_token", &token),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(page.body.contains("Service unavailable"), "{}", page.body);
    assert!(page.body.contains("try again"));
    assert!(!page.body.contains("127.0.0.1") && !page.body.contains("error sending request"));
    assert_eq!(page.header("retry-after"), Some("5"));
    assert!(page.header("content-type").unwrap().starts_with("text/html"));

    browser.set_cookie(SESSION_COOKIE, "some.session.token");
    assert_eq!(browser.get("/").await.status, StatusCode::SERVICE_UNAVAILABLE);

    // Liveness never asks the backend; readiness reports it without failing.
    assert_eq!(browser.get("/health").await.status, StatusCode::OK);
    let ready = browser.get("/ready").await;
    assert_eq!(ready.status, StatusCode::OK);
    let body: serde_json::Value = serde_json::from_str(&ready.body).unwrap();
    assert_eq!(body["status"], "ready");
    assert_eq!(body["backend"]["reachable"], false);
}

/// A stand-in backend that accepts connections, records what it was sent, and never answers.
async fn silent_backend() -> (String, tokio::sync::mpsc::UnboundedReceiver<String>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut buffer = vec![0_u8; 8192];
            let n = socket.read(&mut buffer).await.unwrap_or(0);
            let _ = tx.send(String::from_utf8_lossy(&buffer[..n]).into_owned());
            held.push(socket); // keep it open, say nothing
        }
    });
    (url, rx)
}

#[tokio::test]
async fn a_slow_backend_gives_a_503_page_after_the_backend_timeout_with_the_request_id_forwarded() {
    let (backend_url, mut requests) = silent_backend().await;
    let mut config = frontend::config::Config::for_tests(&backend_url);
    config.backend_timeout_seconds = 1;
    config.request_timeout_seconds = 3;
    let frontend = crate::harness::start_frontend_with(config, std::future::pending()).await;
    let mut browser = Browser::new(&frontend.url);
    browser.set_cookie(SESSION_COOKIE, "some.session.token");
    browser.extra_headers = vec![("x-request-id".to_owned(), "trace-me-42".to_owned())];

    let started = Instant::now();
    let page = browser.get("/").await;
    let waited = started.elapsed();
    assert_eq!(page.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(page.body.contains("Service unavailable"));
    assert_eq!(page.header("x-request-id"), Some("trace-me-42"));
    // Not a hang: answered by the backend timeout (1 s), well before the page's own (3 s).
    assert!(waited < Duration::from_secs(3), "took {waited:?}");

    let sent = requests.recv().await.expect("the backend was called");
    let sent = sent.to_ascii_lowercase();
    assert!(sent.contains("x-request-id: trace-me-42"), "{sent}");
    assert!(sent.contains("authorization: bearer some.session.token"), "{sent}");
    assert_eq!(browser.get("/health").await.status, StatusCode::OK);
}

#[tokio::test]
async fn ready_reports_the_backend_and_turns_503_as_soon_as_shutdown_begins() {
    let backend = start_backend().await;
    let mut config = frontend::config::Config::for_tests(&backend.url);
    config.shutdown_drain_seconds = 30;
    let (frontend, stop) = crate::harness::start_frontend_stoppable(config).await;
    let mut browser = Browser::new(&frontend.url);

    let ready = browser.get("/ready").await;
    assert_eq!(ready.status, StatusCode::OK);
    let body: serde_json::Value = serde_json::from_str(&ready.body).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"status": "ready", "backend": {"reachable": true, "ready": true}})
    );

    stop.send(()).unwrap();
    frontend.wait_draining().await;
    let ready = browser.get("/ready").await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(ready.body.contains("draining"));
    // While draining, pages are still served.
    assert_eq!(browser.get("/login").await.status, StatusCode::OK);
    assert_eq!(browser.get("/health").await.status, StatusCode::OK);
}

#[tokio::test]
async fn healthcheck_subcommand_exits_0_when_healthy_and_1_otherwise() {
    let (_backend, frontend) = start_both().await;
    let binary = env!("CARGO_BIN_EXE_frontend");
    let url = format!("{}/health", frontend.url);
    let ok = tokio::task::spawn_blocking(move || Command::new(binary).args(["healthcheck", "--url", &url]).output())
        .await
        .unwrap()
        .unwrap();
    assert!(ok.status.success(), "{ok:?}");
    let url = format!("{}/health", closed_port_url());
    let down = tokio::task::spawn_blocking(move || {
        Command::new(binary)
            .args(["healthcheck", "--url", &url, "--timeout-seconds", "1"])
            .output()
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(down.status.code(), Some(1), "{down:?}");
    assert!(String::from_utf8_lossy(&down.stderr).contains("is not healthy"));
}

#[test]
fn help_lists_every_setting() {
    let help = Command::new(env!("CARGO_BIN_EXE_frontend"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(help.status.success());
    let text = String::from_utf8_lossy(&help.stdout);
    for name in [
        "LISTEN_ADDR",
        "BACKEND_URL",
        "COOKIE_SECURE",
        "BACKEND_TIMEOUT_SECONDS",
        "REQUEST_TIMEOUT_SECONDS",
        "SHUTDOWN_DRAIN_SECONDS",
        "SHUTDOWN_TIMEOUT_SECONDS",
        "HEADER_READ_TIMEOUT_SECONDS",
        "MAX_CONNECTIONS",
        "RUST_LOG",
        "LOG_FORMAT",
        "healthcheck",
    ] {
        assert!(text.contains(name), "--help lacks {name}:\n{text}");
    }
}

#[test]
fn start_up_refuses_a_backend_timeout_not_shorter_than_the_request_timeout() {
    let out = Command::new(env!("CARGO_BIN_EXE_frontend"))
        .env("LISTEN_ADDR", "127.0.0.1:0")
        .env("BACKEND_TIMEOUT_SECONDS", "10")
        .env("REQUEST_TIMEOUT_SECONDS", "10")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("must be shorter than REQUEST_TIMEOUT_SECONDS"));
}

/// Kills the child process if the test fails before it exits.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn the_binary_logs_json_without_secrets_drains_on_sigterm_and_exits_0() {
    let backend = start_backend().await;
    let child = Command::new(env!("CARGO_BIN_EXE_frontend"))
        .env("LISTEN_ADDR", "127.0.0.1:0")
        .env("BACKEND_URL", &backend.url)
        .env("LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .env("SHUTDOWN_DRAIN_SECONDS", "1")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut child = KillOnDrop(child);
    let stderr = child.0.stderr.take().unwrap();
    let (lines_tx, lines_rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut logs: Vec<String> = Vec::new();
    let url = loop {
        let line = lines_rx
            .recv_timeout(Duration::from_secs(20))
            .expect("the frontend logs where it listens");
        logs.push(line.clone());
        if let Some(rest) = line.split(LISTENING_ON).nth(1) {
            break rest.trim_start().split('"').next().unwrap().to_owned();
        }
    };

    let mut browser = Browser::new(&url);
    browser.extra_headers = vec![("x-request-id".to_owned(), "req-from-test".to_owned())];
    browser.register(&unique_email("logs")).await;
    browser.add_task(&[("title", "Logged task")]).await;
    let session = browser.cookie(SESSION_COOKIE).unwrap().to_owned();
    let csrf = browser.cookie("todo_csrf").unwrap().to_owned();

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(child.0.id()).unwrap()),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(browser.get("/ready").await.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        browser.get("/login").await.status,
        StatusCode::OK,
        "still serving while draining"
    );

    let status = tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = child.0.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "the frontend did not exit after SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    })
    .await
    .unwrap();
    assert_eq!(status.code(), Some(0));
    logs.extend(lines_rx.try_iter());

    let all = logs.join("\n");
    for secret in [PASSWORD, session.as_str(), csrf.as_str()] {
        assert!(!all.contains(secret), "a secret reached the logs:\n{all}");
    }
    let requests: Vec<serde_json::Value> = logs
        .iter()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}")))
        .filter(|entry: &serde_json::Value| entry["message"] == "request")
        .collect();
    let create = requests
        .iter()
        .find(|entry| entry["span"]["route"] == "/tasks" && entry["span"]["method"] == "POST")
        .unwrap_or_else(|| panic!("no log line for POST /tasks:\n{all}"));
    assert_eq!(create["status"], 303);
    assert_eq!(create["span"]["request_id"], "req-from-test");
    assert!(create["latency_ms"].is_number());
    assert!(all.contains("stopped cleanly"), "{all}");
}
