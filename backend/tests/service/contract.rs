//! The OpenAPI document as a contract: every reference resolves, it passes an OpenAPI validator
//! (openapi-spec-validator), and requests generated from it by schemathesis get, on SQLite and on
//! PostgreSQL, no 5xx and only answers the document describes (status, content type, headers,
//! body schema).
//!
//! The two Python tools come from PyPI; `.ci/run` installs them into `target/ci/venv`. Without
//! them these tests fail with the command that installs them.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use crate::support::{Engine, TestApp};
use reqwest::Method;
use serde_json::Value;

/// Pinned so a new release cannot change what CI checks.
const INSTALL: &str = "python3 -m venv target/ci/venv && \
     target/ci/venv/bin/pip install schemathesis==4.32.5 openapi-spec-validator==0.9.0";

/// A tool from the project's venv (`target/ci/venv/bin`), or from PATH.
fn tool(name: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let venv = root.join("target/ci/venv/bin").join(name);
    if venv.is_file() {
        return venv;
    }
    std::env::var_os("PATH")
        .and_then(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join(name))
                .find(|candidate| candidate.is_file())
        })
        .unwrap_or_else(|| {
            panic!("{name} is needed for the contract tests and is missing; install it with:\n  {INSTALL}")
        })
}

/// Runs a blocking command off the runtime and returns its status and output.
async fn run(mut command: Command) -> (bool, String) {
    tokio::task::spawn_blocking(move || {
        let output = command.output().expect("the tool starts");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        (output.status.success(), text)
    })
    .await
    .unwrap()
}

/// Every `$ref` in `value`, with where it was found.
fn references(value: &Value, at: &str, found: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                if key == "$ref"
                    && let Some(target) = child.as_str()
                {
                    found.push((at.to_owned(), target.to_owned()));
                }
                references(child, &format!("{at}/{key}"), found);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                references(child, &format!("{at}/{i}"), found);
            }
        }
        _ => {}
    }
}

#[tokio::test]
async fn the_openapi_document_resolves_and_passes_a_validator() {
    let app = TestApp::spawn(Engine::Sqlite).await;
    let (_, doc) = app.call(Method::GET, "/api/v1/openapi.json", None, None).await;

    let mut found = Vec::new();
    references(&doc, "#", &mut found);
    assert!(!found.is_empty());
    for (at, target) in &found {
        let pointer = target
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("{at}: external $ref {target}"));
        assert!(doc.pointer(pointer).is_some(), "{at}: $ref {target} does not resolve");
    }

    // What the server enforces, the document says.
    let list = &doc["paths"]["/api/v1/tasks"]["get"];
    let param = |name: &str| {
        list["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("parameter {name}"))["schema"]
            .clone()
    };
    assert_eq!(
        (param("limit")["minimum"].as_i64(), param("limit")["maximum"].as_i64()),
        (Some(1), Some(100))
    );
    assert_eq!(param("offset")["minimum"].as_i64(), Some(0));
    assert_ne!(param("offset")["format"], "int32", "offset goes up to 2^32 - 1");
    assert_eq!(param("q")["maxLength"].as_i64(), Some(200));
    for path in ["/api/v1/tasks/{id}"] {
        for (method, operation) in doc["paths"][path].as_object().unwrap() {
            let id = &operation["parameters"][0]["schema"];
            assert_eq!(id["minimum"].as_i64(), Some(1), "{method} {path}: {id}");
        }
    }
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let responses = operation["responses"].as_object().unwrap();
            if operation.get("requestBody").is_some() {
                for status in ["400", "413", "415", "422"] {
                    assert!(responses.contains_key(status), "{method} {path} documents {status}");
                }
            }
            if operation.get("security").is_some() {
                assert!(responses.contains_key("401"), "{method} {path} documents 401");
            }
        }
    }

    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
    let mut validator = Command::new(tool("openapi-spec-validator"));
    validator.arg(file.path());
    let (ok, output) = run(validator).await;
    assert!(ok, "openapi-spec-validator refused the document:\n{output}");
}

/// Lets schemathesis generate requests from the served document against the live server.
async fn generated_requests_get_documented_answers(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (token, _) = app.register("schemathesis").await;
    // Task 1 exists, so the documented example id reaches the handlers rather than a 404.
    let task = app
        .create_task(
            &token,
            serde_json::json!({"title": "generated requests start here", "tags": ["a"]}),
        )
        .await;
    assert_eq!(task["id"], 1);
    let report = tempfile::tempdir().unwrap();
    let mut schemathesis = Command::new(tool("schemathesis"));
    schemathesis
        .arg("run")
        .arg(app.url("/api/v1/openapi.json"))
        .args(["--url", &app.base])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,\
             response_headers_conformance,response_schema_conformance",
        ])
        // Bounded and reproducible: a fixed seed, a fixed number of cases per operation.
        // One worker: Hypothesis is not thread-safe (two gave internal "recursion depth" errors).
        .args(["--max-examples", "25", "--seed", "16", "--workers", "1"])
        .args(["--phases", "examples,coverage,fuzzing"])
        .args(["--header", &format!("Authorization: Bearer {token}")])
        // Logging out would revoke the token and leave the rest of the run at 401.
        .args(["--exclude-path", "/api/v1/auth/logout"])
        .args(["--report-dir", &report.path().display().to_string()])
        // Its cache (`.schemathesis/`) goes to the temporary folder, not into the source tree.
        .current_dir(report.path())
        .env("SCHEMATHESIS_TELEMETRY", "false")
        .env("NO_COLOR", "1");
    let (ok, output) = run(schemathesis).await;
    assert!(
        ok,
        "schemathesis found answers that break the contract on {engine:?}:\n{output}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_requests_get_documented_answers_on_sqlite() {
    generated_requests_get_documented_answers(Engine::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_requests_get_documented_answers_on_postgres() {
    generated_requests_get_documented_answers(Engine::Postgres).await;
}
