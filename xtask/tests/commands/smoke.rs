//! `cargo xtask smoke` against the real pair started by `cargo xtask run`: it passes on a healthy
//! pair and fails at the right step, with exit code 1 and the evidence, when the build is not the
//! expected one, when the frontend answers 500, and when the backend is stopped.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::TcpListener,
    path::Path,
    process::{Child, Command, Output, Stdio},
    time::Duration,
};

use nix::{
    sys::signal::{Signal, kill},
    unistd::Pid,
};
use serde_json::Value;

use crate::support::app::{built_services, run_on_free_ports};

const XTASK: &str = env!("CARGO_BIN_EXE_xtask");

/// `cargo xtask run` in the background, on free ports, with its own data folder.
struct RunningPair {
    child: Child,
    frontend: String,
    backend: String,
    backend_pid: i32,
    _data: tempfile::TempDir,
}

impl RunningPair {
    fn start() -> Self {
        let data = tempfile::tempdir().unwrap();
        let mut child = run_on_free_ports(data.path(), &[])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("xtask runs");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let ready: Value = serde_json::from_str(&line).unwrap_or_else(|_| panic!("`run --json` printed {line:?}"));
        Self {
            child,
            frontend: ready["frontend_url"].as_str().unwrap().to_owned(),
            backend: ready["backend_url"].as_str().unwrap().to_owned(),
            backend_pid: ready["backend_pid"].as_i64().unwrap() as i32,
            _data: data,
        }
    }
}

impl Drop for RunningPair {
    fn drop(&mut self) {
        // Ctrl-C, as a person would: `run` stops both services and exits.
        let _ = kill(Pid::from_raw(self.child.id() as i32), Signal::SIGINT);
        let _ = self.child.wait();
    }
}

fn smoke(frontend: &str, backend: &str, extra: &[&str], report: &Path) -> (Output, Value) {
    let output = Command::new(XTASK)
        .args(["smoke", "--url", frontend, "--backend-url", backend, "--json"])
        .arg(report)
        .args(extra)
        .output()
        .unwrap();
    let json = serde_json::from_str(&std::fs::read_to_string(report).unwrap_or_default()).unwrap_or(Value::Null);
    (output, json)
}

fn failed_step(report: &Value) -> &Value {
    report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["ok"] == false)
        .expect("a failed step")
}

#[test]
fn run_with_smoke_passes_on_a_healthy_pair() {
    built_services();
    let data = tempfile::tempdir().unwrap();
    let output = Command::new(XTASK)
        .args([
            "run",
            "--no-build",
            "--smoke",
            "--port",
            "0",
            "--backend-port",
            "0",
            "--data-dir",
        ])
        .arg(data.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("smoke: all 21 steps passed"), "{stdout}");
    for step in [
        "✓ sign up as a new user",
        "✓ see it done",
        "✓ see it gone",
        "✓ chat: add a task by chat",
        "✓ chat: see it in the task list",
        "✓ chat: complete it by chat",
        "✓ chat: see it done in the list",
        "✓ task list now redirects to login",
    ] {
        assert!(stdout.contains(step), "{step} in:\n{stdout}");
    }
}

#[test]
fn smoke_reports_the_failing_step_of_a_broken_deployment() {
    let pair = RunningPair::start();
    let dir = tempfile::tempdir().unwrap();

    // Healthy: every step passes, the report is written, exit 0.
    let (output, report) = smoke(&pair.frontend, &pair.backend, &[], &dir.path().join("ok.json"));
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stdout));
    assert_eq!(report["ok"], true);
    assert_eq!(report["steps"].as_array().unwrap().len(), 21);

    // The serving build is not the expected one.
    let (output, report) = smoke(
        &pair.frontend,
        &pair.backend,
        &["--expect-version", "0123456789ab"],
        &dir.path().join("version.json"),
    );
    assert_eq!(output.status.code(), Some(1));
    let step = failed_step(&report);
    assert_eq!(step["name"], "backend /version");
    assert!(
        step["error"]["message"]
            .as_str()
            .unwrap()
            .contains(r#"serves build "dev", expected "0123456789ab""#),
        "{step}"
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("✗ backend /version"));
    assert!(String::from_utf8_lossy(&output.stderr).contains("smoke test failed at \"backend /version\""));

    // A frontend that answers 500 when the form is posted.
    let broken = BrokenFrontend::start();
    let (output, report) = smoke(&broken.url, &pair.backend, &[], &dir.path().join("500.json"));
    assert_eq!(output.status.code(), Some(1));
    let step = failed_step(&report);
    assert_eq!(step["name"], "sign up as a new user");
    assert_eq!(step["error"]["status"], 500);
    assert_eq!(step["error"]["request"], format!("POST {}/register", broken.url));
    assert!(
        step["error"]["body"].as_str().unwrap().contains("database exploded"),
        "{step}"
    );
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.contains("status:  500") && text.contains("| database exploded"),
        "{text}"
    );

    // The backend stops: the frontend still answers, the backend check fails (after waiting).
    kill(Pid::from_raw(pair.backend_pid), Signal::SIGKILL).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let (output, report) = smoke(
        &pair.frontend,
        &pair.backend,
        &["--timeout", "2"],
        &dir.path().join("down.json"),
    );
    assert_eq!(output.status.code(), Some(1));
    let steps = report["steps"].as_array().unwrap();
    assert_eq!(steps[0]["name"], "frontend /health");
    assert_eq!(steps[0]["ok"], true);
    let step = failed_step(&report);
    assert_eq!(step["name"], "backend /health");
    assert!(
        step["error"]["message"].as_str().unwrap().contains("no answer"),
        "{step}"
    );
    assert_eq!(steps.len(), 3, "nothing runs after the failed step");
}

/// A stand-in frontend that serves the sign-up form but answers 500 when it is posted.
struct BrokenFrontend {
    url: String,
}

impl BrokenFrontend {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut stream = stream;
                let mut buffer = [0_u8; 8192];
                let n = stream.read(&mut buffer).unwrap_or(0);
                let request = String::from_utf8_lossy(&buffer[..n]).to_string();
                let (status, body) = if request.starts_with("POST ") {
                    (
                        "500 Internal Server Error",
                        "Internal error\ndatabase exploded\n".to_owned(),
                    )
                } else if request.starts_with("GET /register") {
                    (
                        "200 OK",
                        r#"<form method="post"><input type="hidden" name="csrf_token" value="t0k3n"></form>"#
                            .to_owned(),
                    )
                } else {
                    ("200 OK", "{\"status\":\"ok\"}".to_owned())
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        Self { url }
    }
}

#[test]
fn run_without_building_names_the_missing_binary_and_how_to_build_it() {
    let target = tempfile::tempdir().unwrap();
    let output = Command::new(XTASK)
        .args(["run", "--no-build", "--port", "0", "--backend-port", "0"])
        .env("CARGO_TARGET_DIR", target.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "no backend binary at {}: build it with `cargo build -p backend -p frontend`, or leave out --no-build",
            target.path().join("debug/backend").display()
        )),
        "{stderr}"
    );
}
