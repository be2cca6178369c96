//! Health, readiness, version, metrics, the OpenAPI document and request ids.

use std::collections::BTreeSet;

use crate::support::{Engine, TestApp, assert_error};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

on_both_engines!(
    health_and_readiness_report_the_database,
    metrics_count_requests_by_route_and_status
);

async fn health_and_readiness_report_the_database(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (status, health) = app.call(Method::GET, "/health", None, None).await;
    assert_eq!((status, health), (StatusCode::OK, json!({"status": "ok"})));
    let (status, ready) = app.call(Method::GET, "/ready", None, None).await;
    assert_eq!(status, StatusCode::OK);
    let database = if engine == Engine::Sqlite { "sqlite" } else { "postgres" };
    assert_eq!(ready, json!({"status": "ready", "database": database}));
}

async fn metrics_count_requests_by_route_and_status(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (token, _) = app.register("metrics").await;
    for _ in 0..3 {
        app.call(Method::GET, "/api/v1/tasks/12345", Some(&token), None).await;
    }
    let response = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = response.text().await.unwrap();
    assert!(
        text.contains(r#"http_requests_total{method="GET",route="/api/v1/tasks/{id}",status="404"} 3"#),
        "requests by route pattern and status:\n{text}"
    );
    assert!(
        text.contains(r#"http_requests_total{method="POST",route="/api/v1/auth/register",status="201"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"http_request_duration_seconds_count{method="GET",route="/api/v1/tasks/{id}",status="404"} 3"#),
        "latency histogram:\n{text}"
    );
    assert!(text.contains("http_request_duration_seconds_bucket{"), "{text}");
    assert!(
        !text.contains("/api/v1/tasks/12345"),
        "raw paths must not become labels"
    );
}

#[tokio::test]
async fn version_reports_the_configured_build() {
    let app = TestApp::spawn_with(Engine::Sqlite, |config| {
        config.app_build = "abc123def456".to_owned();
        config.git_sha = "0123456789abcdef".to_owned();
    })
    .await;
    let (status, version) = app.call(Method::GET, "/version", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        version,
        json!({"version": env!("CARGO_PKG_VERSION"), "git_sha": "0123456789abcdef", "build": "abc123def456"})
    );
}

#[tokio::test]
async fn readiness_fails_with_a_reason_while_the_database_is_unreachable() {
    // A PostgreSQL URL where nothing listens: the server still starts and stays alive.
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgres://postgres@127.0.0.1:{closed_port}/todo");
    let config = crate::support::test_config(&url);
    let app = backend::startup::Application::build(config).await.unwrap();
    let base = format!("http://{}", app.local_addr());
    let server = tokio::spawn(app.run_until_stopped(std::future::pending()));
    let client = reqwest::Client::new();
    let health = client.get(format!("{base}/health")).send().await.unwrap();
    assert_eq!(
        health.status(),
        StatusCode::OK,
        "liveness never depends on the database"
    );

    // Give the migration loop time to fail at least once, so the reason is the real error.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let ready = client.get(format!("{base}/ready")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["status"], "starting");
    let reason = body["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("database not ready:") && reason.len() > "database not ready: ".len(),
        "{body}"
    );

    let api = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"email": "a@example.com", "password": "whatever1"}))
        .send()
        .await
        .unwrap();
    let status = api.status();
    assert_error(
        status,
        &api.json().await.unwrap(),
        StatusCode::SERVICE_UNAVAILABLE,
        "not_ready",
    );
    server.abort();
}

#[tokio::test]
async fn request_ids_are_echoed_or_generated() {
    let app = TestApp::spawn(Engine::Sqlite).await;
    let response = app
        .client
        .get(app.url("/health"))
        .header("x-request-id", "trace-42.a_b:c")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "trace-42.a_b:c");

    let response = app.client.get(app.url("/health")).send().await.unwrap();
    let generated = response.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert!(uuid::Uuid::parse_str(&generated).is_ok(), "{generated}");

    for bad in ["has space", &"x".repeat(200), "semi;colon"] {
        let response = app
            .client
            .get(app.url("/health"))
            .header("x-request-id", bad)
            .send()
            .await
            .unwrap();
        let echoed = response.headers()["x-request-id"].to_str().unwrap();
        assert_ne!(echoed, bad, "unsafe ids are replaced");
        assert!(uuid::Uuid::parse_str(echoed).is_ok());
    }
    // Errors carry it too.
    let response = app
        .client
        .get(app.url("/nope"))
        .header("x-request-id", "err-1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(response.headers()["x-request-id"], "err-1");
}

#[tokio::test]
async fn the_openapi_document_matches_the_routes() {
    let app = TestApp::spawn(Engine::Sqlite).await;
    let (status, doc) = app.call(Method::GET, "/api/v1/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."), "{}", doc["openapi"]);
    let mut operations = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            operations.insert(format!("{} {path}", method.to_uppercase()));
        }
    }
    let expected: BTreeSet<String> = [
        "POST /api/v1/auth/register",
        "POST /api/v1/auth/login",
        "POST /api/v1/auth/logout",
        "GET /api/v1/auth/me",
        "GET /api/v1/tasks",
        "POST /api/v1/tasks",
        "GET /api/v1/tasks/{id}",
        "PATCH /api/v1/tasks/{id}",
        "DELETE /api/v1/tasks/{id}",
        "POST /api/v1/chat",
        "GET /api/v1/conversations",
        "GET /api/v1/conversations/{id}",
        "DELETE /api/v1/conversations/{id}",
        "GET /health",
        "GET /ready",
        "GET /version",
        "GET /metrics",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    assert_eq!(operations, expected);
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    for schema in [
        "Task",
        "NewTask",
        "TaskPatch",
        "TaskPage",
        "User",
        "AuthResponse",
        "ErrorBody",
        "SortKey",
        "SortOrder",
        "StatusFilter",
    ] {
        assert!(
            doc["components"]["schemas"][schema].is_object(),
            "schema {schema} documented"
        );
    }
    // Every documented operation is really served: none answers 404 or 405 for a missing route.
    for operation in &operations {
        let (method, path) = operation.split_once(' ').unwrap();
        let path = path.replace("{id}", "1");
        let (status, body) = app.call(method.parse().unwrap(), &path, None, None).await;
        assert!(
            status != StatusCode::METHOD_NOT_ALLOWED
                && body["error"]["message"] != json!(format!("no route for {path}")),
            "{operation} is documented but not routed: {status} {body}"
        );
    }
}
