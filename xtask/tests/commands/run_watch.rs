//! `cargo xtask run --watch` with the real service binaries: a save in a project-shaped folder
//! (`--watch-root`, so no real source is touched; `--no-build`, so the binaries are restarted as
//! they are) restarts only the service whose code changed while the other keeps its process and
//! sessions, and a request in flight to the service being restarted is answered, not lost.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::TcpStream,
    path::Path,
    process::{Child, Stdio},
    sync::{Arc, Mutex, mpsc},
    time::Duration,
};

use nix::{
    sys::signal::{Signal, kill},
    unistd::Pid,
};
use serde_json::{Value, json};

use crate::support::app::{read_lines, run_on_free_ports};

/// How long a cycle (or a log line) may take before the test gives up.
const WAIT: Duration = Duration::from_secs(60);

/// `cargo xtask run --watch --no-build --json` on free ports, watching a temporary folder.
struct Watching {
    child: Child,
    root: tempfile::TempDir,
    _data: tempfile::TempDir,
    cycles: mpsc::Receiver<Value>,
    log: mpsc::Receiver<String>,
    seen: Arc<Mutex<Vec<String>>>,
    first: Value,
}

impl Watching {
    fn start() -> Self {
        let (root, data) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        for path in [
            "backend/src/main.rs",
            "backend/service/src/lib.rs",
            "frontend/src/lib.rs",
        ] {
            write(root.path(), path, "// as it was\n");
        }
        let watch_root = root.path().display().to_string();
        let mut child = run_on_free_ports(data.path(), &["--watch", "--watch-root", &watch_root])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("xtask runs");
        let (tx, cycles) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(serde_json::from_str(&line).unwrap_or(Value::String(line)));
            }
        });
        let (log, seen) = read_lines(child.stderr.take().unwrap());
        let mut watching = Self {
            child,
            root,
            _data: data,
            cycles,
            log,
            seen,
            first: Value::Null,
        };
        watching.first = watching.next_line();
        watching.wait_for_log("==> watching");
        watching
    }

    fn url(&self, service: &str) -> String {
        self.first[format!("{service}_url")].as_str().unwrap().to_owned()
    }

    /// The next JSON line on stdout: the start, then one per cycle.
    fn next_line(&self) -> Value {
        self.cycles
            .recv_timeout(WAIT)
            .unwrap_or_else(|_| panic!("no line from `run --watch`; its stderr:\n{}", self.stderr()))
    }

    /// Waits for a line of `run`'s stderr (its own or a service's) that contains `needle`.
    fn wait_for_log(&self, needle: &str) {
        while let Ok(line) = self.log.recv_timeout(WAIT) {
            if line.contains(needle) {
                return;
            }
        }
        panic!("no `{needle}` from `run --watch`; its stderr:\n{}", self.stderr());
    }

    fn stderr(&self) -> String {
        self.seen.lock().unwrap().join("\n")
    }
}

impl Drop for Watching {
    fn drop(&mut self) {
        // Ctrl-C, as a person would: `run` stops both services and exits.
        let _ = kill(Pid::from_raw(self.child.id() as i32), Signal::SIGINT);
        let _ = self.child.wait();
    }
}

fn write(root: &Path, path: &str, content: &str) {
    let path = root.join(path);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into()
}

/// A new user on the backend; its token (the frontend's session cookie holds the same).
fn register(agent: &ureq::Agent, backend: &str, email: &str) -> String {
    let mut response = agent
        .post(format!("{backend}/api/v1/auth/register"))
        .send_json(json!({"email": email, "password": "correct horse battery"}))
        .unwrap();
    assert_eq!(response.status(), 201);
    let body: Value = response.body_mut().read_json().unwrap();
    body["token"].as_str().unwrap().to_owned()
}

/// The frontend's task list for the session `token`, which must be open and list `title`.
fn assert_session_lists(agent: &ureq::Agent, frontend: &str, token: &str, title: &str) {
    let mut response = agent
        .get(format!("{frontend}/"))
        .header("Cookie", format!("todo_session={token}"))
        .call()
        .unwrap();
    assert_eq!(response.status(), 200, "the session is still open");
    let page = response.body_mut().read_to_string().unwrap();
    assert!(page.contains(title), "{title} in:\n{page}");
}

#[test]
fn run_watch_restarts_only_the_service_whose_code_changed() {
    let watching = Watching::start();
    let (backend, frontend) = (watching.url("backend"), watching.url("frontend"));
    let (backend_pid, frontend_pid) = (&watching.first["backend_pid"], &watching.first["frontend_pid"]);
    let api = agent();
    let token = register(&api, &backend, "watch-restart@example.com");
    let created = api
        .post(format!("{backend}/api/v1/tasks"))
        .header("Authorization", format!("Bearer {token}"))
        .send_json(json!({"title": "survives restarts"}))
        .unwrap();
    assert_eq!(created.status(), 201);

    write(watching.root.path(), "frontend/src/lib.rs", "// edited\n");
    let cycle = watching.next_line();
    assert_eq!(cycle["restarted"], json!(["frontend"]), "{cycle}");
    assert_ne!(&cycle["frontend_pid"], frontend_pid, "a new frontend");
    assert_eq!(&cycle["backend_pid"], backend_pid, "the backend kept running");
    // Its session too: the same client, on its kept-alive connection, and the token.
    let me = api
        .get(format!("{backend}/api/v1/auth/me"))
        .header("Authorization", format!("Bearer {token}"))
        .call()
        .unwrap();
    assert_eq!(me.status(), 200);
    assert_session_lists(&api, &frontend, &token, "survives restarts");
    let new_frontend_pid = cycle["frontend_pid"].clone();

    write(watching.root.path(), "backend/src/main.rs", "// edited\n");
    let cycle = watching.next_line();
    assert_eq!(cycle["restarted"], json!(["backend"]), "{cycle}");
    assert_ne!(&cycle["backend_pid"], backend_pid, "a new backend");
    assert_eq!(cycle["frontend_pid"], new_frontend_pid, "the frontend kept running");
    assert_session_lists(&api, &frontend, &token, "survives restarts");

    // Shared code restarts both; the same content saved again restarts nothing.
    write(watching.root.path(), "backend/service/src/lib.rs", "// edited\n");
    assert_eq!(watching.next_line()["restarted"], json!(["backend", "frontend"]));
    write(watching.root.path(), "backend/service/src/lib.rs", "// edited\n");
    write(watching.root.path(), "frontend/src/lib.rs", "// edited again\n");
    assert_eq!(watching.next_line()["changed"], json!(["frontend/src/lib.rs"]));
    assert!(watching.stderr().contains("==> restarted the frontend: saved "));
}

#[test]
fn run_watch_answers_a_request_in_flight_during_a_restart() {
    let watching = Watching::start();
    let backend = watching.url("backend");
    let body = json!({"email": "in-flight@example.com", "password": "correct horse battery"}).to_string();
    let (head, tail) = body.split_at(body.len() / 2);
    // A registration whose body is half sent: the backend is handling it when the restart begins.
    let mut request = TcpStream::connect(backend.trim_start_matches("http://")).unwrap();
    request.set_read_timeout(Some(WAIT)).unwrap();
    write!(
        request,
        "POST /api/v1/auth/register HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{head}",
        body.len()
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(300));

    write(watching.root.path(), "backend/src/main.rs", "// edited\n");
    // The old backend has been asked to stop and no longer accepts connections...
    watching.wait_for_log("no longer accepting connections; finishing in-flight requests");
    // ...yet the request it holds, from a slow client, is answered.
    std::thread::sleep(Duration::from_secs(1));
    request.write_all(tail.as_bytes()).unwrap();
    let mut response = String::new();
    request.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 201"), "{response}");

    let cycle = watching.next_line();
    assert_eq!(cycle["restarted"], json!(["backend"]), "{cycle}");
    assert_ne!(cycle["backend_pid"], watching.first["backend_pid"]);
    // What it stored is there for the new backend.
    let login = agent()
        .post(format!("{backend}/api/v1/auth/login"))
        .send_json(json!({"email": "in-flight@example.com", "password": "correct horse battery"}))
        .unwrap();
    assert_eq!(login.status(), 200);
}
