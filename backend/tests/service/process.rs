//! The real `backend` binary as a process: signals, shutdown drain, durability after SIGKILL,
//! start-up validation, the healthcheck subcommand, request timeouts and what the logs contain.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::TcpStream,
    path::Path,
    process::{Child, Command, ExitStatus, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use nix::{
    sys::signal::{Signal, kill},
    unistd::Pid,
};
use serde_json::{Value, json};
use todo_service::contract::LISTENING_ON;

const BIN: &str = env!("CARGO_BIN_EXE_backend");
const SECRET: &str = "process-test-secret-process-test-secret";

/// A running `backend` process with its stderr collected.
struct Server {
    child: Child,
    base: String,
    port: u16,
    logs: Arc<Mutex<String>>,
}

impl Server {
    fn start(db_file: &Path, env: &[(&str, &str)]) -> Self {
        Self::start_url(&format!("sqlite://{}", db_file.display()), env)
    }

    fn start_url(database_url: &str, env: &[(&str, &str)]) -> Self {
        let server = Self::spawn_url(database_url, env);
        server.wait_until(Duration::from_secs(20), || get(&server.url("/ready")).0 == 200);
        server
    }

    /// Started and listening, not necessarily ready.
    fn spawn_url(database_url: &str, env: &[(&str, &str)]) -> Self {
        let mut command = Command::new(BIN);
        command
            .env_clear()
            .env("LISTEN_ADDR", "127.0.0.1:0")
            .env("DATABASE_URL", database_url)
            .env("JWT_SECRET", SECRET)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("the backend binary starts");
        let logs = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().unwrap();
        let (port_tx, port_rx) = std::sync::mpsc::channel();
        let sink = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split(&format!("{LISTENING_ON} http://127.0.0.1:")).nth(1) {
                    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                    let _ = port_tx.send(digits.parse::<u16>().unwrap());
                }
                sink.lock().unwrap().push_str(&line);
                sink.lock().unwrap().push('\n');
            }
        });
        let port = port_rx
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("no 'listening on' line; logs:\n{}", logs.lock().unwrap()));
        Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            port,
            logs,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn logs(&self) -> String {
        self.logs.lock().unwrap().clone()
    }

    fn signal(&self, signal: Signal) {
        kill(Pid::from_raw(self.child.id() as i32), signal).expect("signal delivered");
    }

    fn wait_until(&self, limit: Duration, mut condition: impl FnMut() -> bool) {
        let deadline = Instant::now() + limit;
        while !condition() {
            assert!(
                Instant::now() < deadline,
                "condition not met within {limit:?}; logs:\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the process did not exit within {limit:?}; logs:\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    fn register(&self) -> String {
        let email = format!("proc-{}@example.com", uuid::Uuid::new_v4().simple());
        let (status, body) = send(
            self.port,
            "POST",
            "/api/v1/auth/register",
            None,
            &json!({"email": email, "password": "hunter2hunter2"}),
        );
        assert_eq!(status, 201, "{body}");
        body["token"].as_str().unwrap().to_owned()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A blocking GET; `(0, Null)` when nothing answers.
fn get(url: &str) -> (u16, Value) {
    let rest = url.strip_prefix("http://127.0.0.1:").unwrap();
    let (port, path) = rest.split_once('/').unwrap();
    let Ok(mut stream) = TcpStream::connect(format!("127.0.0.1:{port}")) else {
        return (0, Value::Null);
    };
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(stream, "GET /{path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").unwrap();
    read_response(&mut stream)
}

/// A blocking request with a JSON body.
fn send(port: u16, method: &str, path: &str, token: Option<&str>, body: &Value) -> (u16, Value) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let body = body.to_string();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    read_response(&mut stream)
}

fn read_response(stream: &mut TcpStream) -> (u16, Value) {
    let mut raw = String::new();
    let _ = stream.read_to_string(&mut raw);
    let status = raw.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = raw.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or_default();
    // Tolerate chunked encoding: take the outermost JSON object.
    let json = body
        .find('{')
        .and_then(|start| body.rfind('}').map(|end| &body[start..=end]))
        .unwrap_or("null");
    (status, serde_json::from_str(json).unwrap_or(Value::Null))
}

/// Starts a POST whose body arrives in two parts; returns the open stream and the rest of the body.
fn start_slow_post(port: u16, token: &str, title: &str) -> (TcpStream, String) {
    let body = json!({"title": title}).to_string();
    let (first, second) = body.split_at(body.len() / 2);
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        stream,
        "POST /api/v1/tasks HTTP/1.1\r\nHost: t\r\nConnection: close\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{first}",
        body.len()
    )
    .unwrap();
    stream.flush().unwrap();
    (stream, second.to_owned())
}

#[test]
fn sigterm_turns_readiness_off_drains_and_lets_in_flight_requests_finish() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(
        &dir.path().join("t.db"),
        &[("SHUTDOWN_DRAIN_SECONDS", "2"), ("SHUTDOWN_TIMEOUT_SECONDS", "10")],
    );
    let token = server.register();
    let (mut in_flight, rest) = start_slow_post(server.port, &token, "written during shutdown");
    std::thread::sleep(Duration::from_millis(200));

    let signalled = Instant::now();
    server.signal(Signal::SIGTERM);
    // During the drain: readiness 503 with a reason, but liveness and the API keep serving.
    server.wait_until(Duration::from_secs(1), || get(&server.url("/ready")).0 == 503);
    let (_, ready) = get(&server.url("/ready"));
    assert_eq!(ready["status"], "draining", "{ready}");
    assert_eq!(get(&server.url("/health")).0, 200);
    let (status, _) = send(server.port, "GET", "/api/v1/tasks", Some(&token), &json!(null));
    assert_eq!(status, 200, "new requests are still served while draining");

    // After the drain the listener closes, but the request already in flight completes.
    server.wait_until(Duration::from_secs(5), || {
        TcpStream::connect(("127.0.0.1", server.port)).is_err()
    });
    assert!(
        signalled.elapsed() >= Duration::from_secs(2),
        "the listener stayed open for the whole drain"
    );
    in_flight.write_all(rest.as_bytes()).unwrap();
    let (status, task) = read_response(&mut in_flight);
    assert_eq!(status, 201, "in-flight request completed: {task}");
    assert_eq!(task["title"], "written during shutdown");

    let exit = server.wait_exit(Duration::from_secs(10));
    assert!(
        exit.success(),
        "exit code 0 after a clean shutdown, got {exit:?}; logs:\n{}",
        server.logs()
    );
    assert!(server.logs().contains("stopped cleanly"));
}

#[test]
fn ctrl_c_stops_at_once_without_the_drain_pause() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(&dir.path().join("t.db"), &[("SHUTDOWN_DRAIN_SECONDS", "30")]);
    server.signal(Signal::SIGINT);
    let exit = server.wait_exit(Duration::from_secs(5));
    assert!(exit.success(), "{exit:?}");
}

#[test]
fn shutdown_gives_up_on_requests_that_outlive_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(
        &dir.path().join("t.db"),
        &[
            ("SHUTDOWN_DRAIN_SECONDS", "0"),
            ("SHUTDOWN_TIMEOUT_SECONDS", "1"),
            ("REQUEST_TIMEOUT_SECONDS", "60"),
        ],
    );
    let token = server.register();
    let (_stuck, _never_sent) = start_slow_post(server.port, &token, "never finished");
    std::thread::sleep(Duration::from_millis(200));
    server.signal(Signal::SIGTERM);
    let exit = server.wait_exit(Duration::from_secs(5));
    assert_eq!(exit.code(), Some(1), "a forced stop is not a clean exit");
    assert!(server.logs().contains("did not finish within 1s"), "{}", server.logs());
}

#[test]
fn acknowledged_writes_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let server = Server::start(&db, &[]);
    let token = server.register();
    let mut acknowledged = Vec::new();
    for i in 0..20 {
        let (status, task) = send(
            server.port,
            "POST",
            "/api/v1/tasks",
            Some(&token),
            &json!({"title": format!("t{i}")}),
        );
        assert_eq!(status, 201);
        acknowledged.push(task["id"].as_i64().unwrap());
    }
    // Killed right after the last answer: no chance to flush or checkpoint.
    server.signal(Signal::SIGKILL);
    drop(server);

    let restarted = Server::start(&db, &[]);
    let (status, page) = send(
        restarted.port,
        "GET",
        "/api/v1/tasks?limit=100",
        Some(&token),
        &json!(null),
    );
    assert_eq!(status, 200, "the token still works: same JWT_SECRET");
    let mut stored: Vec<i64> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_i64().unwrap())
        .collect();
    stored.sort_unstable();
    assert_eq!(stored, acknowledged, "every acknowledged task is still there");
}

/// Times the backend is killed with writes in flight, per engine.
const KILL_ROUNDS: usize = 10;
/// Clients writing at once while it is killed.
const WRITERS: usize = 8;
/// Writes acknowledged in a round before the kill.
const ACKS_BEFORE_KILL: usize = 30;

/// POSTs a task; `None` when the server could not be reached or answered nothing whole (it was
/// killed): such a write was never acknowledged.
fn try_create(port: u16, token: &str, title: &str) -> Option<(u16, Value)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let body = json!({ "title": title }).to_string();
    write!(
        stream,
        "POST /api/v1/tasks HTTP/1.1\r\nHost: t\r\nConnection: close\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let (status, body) = read_response(&mut stream);
    (status != 0 && !body.is_null()).then_some((status, body))
}

/// Every task of the token's user, id -> title, read page by page.
fn stored_titles(server: &Server, token: &str) -> std::collections::BTreeMap<i64, String> {
    let mut stored = std::collections::BTreeMap::new();
    for offset in (0..).step_by(100) {
        let (status, page) = send(
            server.port,
            "GET",
            &format!("/api/v1/tasks?limit=100&offset={offset}&sort=created&order=asc"),
            Some(token),
            &json!(null),
        );
        assert_eq!(status, 200, "{page}");
        let items = page["items"].as_array().unwrap();
        if items.is_empty() {
            return stored;
        }
        for task in items {
            stored.insert(task["id"].as_i64().unwrap(), task["title"].as_str().unwrap().to_owned());
        }
    }
    unreachable!()
}

/// The backend owns its SQLite file: a second backend on the same file does not write beside the
/// first (its /ready says why) and takes over once the first is gone, with what the first wrote.
#[test]
fn a_second_backend_on_the_same_sqlite_file_waits_for_the_first_to_stop() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("owned.db");
    let first = Server::start(&file, &[]);
    let token = first.register();
    let (status, body) = send(
        first.port,
        "POST",
        "/api/v1/tasks",
        Some(&token),
        &json!({"title": "written by the first"}),
    );
    assert_eq!(status, 201, "{body}");

    let second = Server::spawn_url(&format!("sqlite://{}", file.display()), &[]);
    let url = second.url("/ready");
    // The log says why (/ready gives only a fixed reason: anyone may read it).
    let why = format!("the SQLite file {} is in use by another process", file.display());
    second.wait_until(Duration::from_secs(20), || second.logs().contains(&why));
    let (status, body) = get(&url);
    assert_eq!(status, 503, "{body}");
    assert!(
        body["reason"]
            .as_str()
            .unwrap()
            .contains("cannot connect or migrate yet"),
        "{body}"
    );
    // Still the first's: it keeps serving.
    assert_eq!(stored_titles(&first, &token).len(), 1);

    drop(first);
    second.wait_until(Duration::from_secs(30), || get(&url).0 == 200);
    let titles: Vec<String> = stored_titles(&second, &token).into_values().collect();
    assert_eq!(titles, ["written by the first"]);
}

/// Kills the backend with SIGKILL while clients are writing, again and again, and checks after
/// each restart that every write it acknowledged (a whole 201) is stored.
fn acknowledged_writes_survive_sigkill_mid_flight(engine: crate::support::Engine) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (_db, url) = runtime.block_on(crate::support::TestDb::create(engine));
    let mut token: Option<String> = None;
    let mut acknowledged: Vec<(i64, String)> = Vec::new();
    let mut cut_off = 0;
    for round in 0..=KILL_ROUNDS {
        let server = Server::start_url(&url, &[]);
        let token = token.get_or_insert_with(|| server.register()).clone();
        let stored = stored_titles(&server, &token);
        for (id, title) in &acknowledged {
            assert_eq!(
                stored.get(id),
                Some(title),
                "round {round}: acknowledged task {id} ({title}) is missing after SIGKILL"
            );
        }
        if round == KILL_ROUNDS {
            break;
        }
        let acked = Mutex::new(Vec::new());
        let killed = std::sync::atomic::AtomicBool::new(false);
        let cut = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|scope| {
            for writer in 0..WRITERS {
                let (acked, killed, cut, token) = (&acked, &killed, &cut, &token);
                let port = server.port;
                scope.spawn(move || {
                    for n in 0.. {
                        if killed.load(std::sync::atomic::Ordering::SeqCst) {
                            return;
                        }
                        let title = format!("round {round} writer {writer} write {n}");
                        match try_create(port, token, &title) {
                            Some((201, task)) => acked.lock().unwrap().push((task["id"].as_i64().unwrap(), title)),
                            Some((status, body)) => panic!("a write answered {status}: {body}"),
                            None => {
                                cut.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                                return;
                            }
                        }
                    }
                });
            }
            let deadline = Instant::now() + Duration::from_secs(60);
            while acked.lock().unwrap().len() < ACKS_BEFORE_KILL && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(1));
            }
            // Killed even when the writes stalled, so the writers stop and the assert below reports it.
            server.signal(Signal::SIGKILL);
            killed.store(true, std::sync::atomic::Ordering::SeqCst);
        });
        assert!(
            acked.lock().unwrap().len() >= ACKS_BEFORE_KILL,
            "round {round}: writes stalled; logs:\n{}",
            server.logs()
        );
        acknowledged.extend(acked.into_inner().unwrap());
        cut_off += cut.into_inner();
        drop(server);
    }
    assert!(
        acknowledged.len() >= KILL_ROUNDS * ACKS_BEFORE_KILL,
        "{} writes acknowledged",
        acknowledged.len()
    );
    assert!(cut_off > 0, "the kills never caught a write in flight");
}

#[test]
fn acknowledged_writes_survive_sigkill_mid_flight_on_sqlite() {
    acknowledged_writes_survive_sigkill_mid_flight(crate::support::Engine::Sqlite);
}

#[test]
fn acknowledged_writes_survive_sigkill_mid_flight_on_postgres() {
    acknowledged_writes_survive_sigkill_mid_flight(crate::support::Engine::Postgres);
}

#[test]
fn slow_requests_get_a_503_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("t.db"), &[("REQUEST_TIMEOUT_SECONDS", "1")]);
    let token = server.register();
    let (mut stream, _rest) = start_slow_post(server.port, &token, "too slow");
    let started = Instant::now();
    let (status, body) = read_response(&mut stream);
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "timeout");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn a_short_jwt_secret_stops_start_up_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(BIN)
        .env_clear()
        .env("LISTEN_ADDR", "127.0.0.1:0")
        .env("DATABASE_URL", format!("sqlite://{}/t.db", dir.path().display()))
        .env("JWT_SECRET", "tiny-secret-xyz")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("JWT_SECRET is 15 bytes long; it must be at least 32 bytes"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("tiny-secret-xyz"),
        "the secret is never printed: {stderr}"
    );
}

#[test]
fn without_a_jwt_secret_it_starts_and_warns_loudly() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = Command::new(BIN);
    command
        .env_clear()
        .env("LISTEN_ADDR", "127.0.0.1:0")
        .env("DATABASE_URL", format!("sqlite://{}/t.db", dir.path().display()))
        .stderr(Stdio::piped());
    let mut child = command.spawn().unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let warning = lines
        .by_ref()
        .take(5)
        .map_while(Result::ok)
        .find(|l| l.contains("JWT_SECRET is not set"));
    let _ = child.kill();
    let _ = child.wait();
    let warning = warning.expect("a warning about the missing secret");
    assert!(
        warning.contains("WARN") && warning.contains("logs all users out"),
        "{warning}"
    );
}

#[test]
fn healthcheck_subcommand_exits_zero_only_for_a_healthy_server() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("t.db"), &[]);
    let ok = Command::new(BIN)
        .args(["healthcheck", "--url", &server.url("/ready")])
        .output()
        .unwrap();
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    assert!(String::from_utf8_lossy(&ok.stdout).contains("answered 200"));

    let missing = Command::new(BIN)
        .args(["healthcheck", "--url", &server.url("/no-such-page")])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("answered 404"));

    drop(server);
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let down = Command::new(BIN)
        .args([
            "healthcheck",
            "--timeout-seconds",
            "1",
            "--url",
            &format!("http://127.0.0.1:{closed}/health"),
        ])
        .output()
        .unwrap();
    assert_eq!(down.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&down.stderr).contains("cannot connect"));
}

#[test]
fn json_logs_have_one_line_per_request_and_never_a_secret() {
    let dir = tempfile::tempdir().unwrap();
    let password = "pa55word-that-must-not-leak";
    let server = Server::start(&dir.path().join("t.db"), &[("LOG_FORMAT", "json")]);
    let email = format!("logs-{}@example.com", uuid::Uuid::new_v4().simple());
    let (status, body) = send(
        server.port,
        "POST",
        "/api/v1/auth/register",
        None,
        &json!({"email": email, "password": password}),
    );
    assert_eq!(status, 201);
    let token = body["token"].as_str().unwrap().to_owned();
    let (status, _) = send(server.port, "GET", "/api/v1/auth/me", Some(&token), &json!(null));
    assert_eq!(status, 200);
    let (status, _) = send(
        server.port,
        "POST",
        "/api/v1/auth/login",
        None,
        &json!({"email": email, "password": "wrong-one-1"}),
    );
    assert_eq!(status, 401);
    std::thread::sleep(Duration::from_millis(200));

    let logs = server.logs();
    for secret in [password, token.as_str(), SECRET, "wrong-one-1"] {
        assert!(!logs.contains(secret), "a secret reached the logs");
    }
    let requests: Vec<Value> = logs
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap_or_else(|_| panic!("not JSON: {line}")))
        .filter(|line| line["message"] == "request")
        .collect();
    let routes: Vec<(&str, u64)> = requests
        .iter()
        .map(|r| (r["span"]["route"].as_str().unwrap(), r["status"].as_u64().unwrap()))
        .collect();
    assert_eq!(
        routes,
        [
            ("/api/v1/auth/register", 201),
            ("/api/v1/auth/me", 200),
            ("/api/v1/auth/login", 401)
        ]
    );
    for request in &requests {
        assert!(request["latency_ms"].is_number(), "{request}");
        assert!(
            request["span"]["request_id"].as_str().is_some_and(|id| !id.is_empty()),
            "{request}"
        );
        assert!(request["span"]["method"].is_string(), "{request}");
    }
}

/// Opens a connection and sends only part of a request's headers.
fn half_sent_headers(port: u16) -> TcpStream {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: t\r\nX-Slow: ")
        .unwrap();
    stream
}

#[test]
fn a_client_that_never_finishes_its_headers_is_disconnected() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("t.db"), &[("HEADER_READ_TIMEOUT_SECONDS", "1")]);
    let mut slow = half_sent_headers(server.port);
    // The server closes it (no answer: the request never arrived); the socket's read timeout
    // (15 s) only bounds the test.
    let mut rest = Vec::new();
    let outcome = slow.read_to_end(&mut rest);
    assert!(
        outcome.is_ok() || matches!(&outcome, Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset),
        "the server closed the connection: {outcome:?}"
    );
    assert!(rest.is_empty() || String::from_utf8_lossy(&rest).starts_with("HTTP/1.1 408"));
    assert_eq!(get(&server.url("/health")).0, 200, "others are served meanwhile");
}

#[test]
fn shutdown_does_not_wait_for_connections_that_never_sent_a_request() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(
        &dir.path().join("t.db"),
        &[
            ("SHUTDOWN_DRAIN_SECONDS", "0"),
            ("SHUTDOWN_TIMEOUT_SECONDS", "60"),
            ("HEADER_READ_TIMEOUT_SECONDS", "60"),
        ],
    );
    let _slow = half_sent_headers(server.port);
    let _idle = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    server.signal(Signal::SIGTERM);
    // Bounded far below the 60 s the two connections could otherwise hold it.
    let exit = server.wait_exit(Duration::from_secs(10));
    assert!(exit.success(), "{exit:?}; logs:\n{}", server.logs());
}

#[test]
fn connections_over_the_limit_wait_until_one_closes() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        &dir.path().join("t.db"),
        &[("MAX_CONNECTIONS", "2"), ("HEADER_READ_TIMEOUT_SECONDS", "60")],
    );
    // Server::start polled /ready on connections that are closed by now; wait until the server
    // has let go of them.
    std::thread::sleep(Duration::from_millis(300));
    let first = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    let _second = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    let mut third = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    third
        .write_all(b"GET /health HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    third.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    let mut byte = [0_u8; 1];
    let early = third.read(&mut byte);
    assert!(
        matches!(&early, Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut)),
        "a third connection is not served while two are open: {early:?}"
    );
    drop(first);
    third.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let (status, body) = read_response(&mut third);
    assert_eq!(status, 200, "served once a connection closed: {body}");
}

#[test]
fn while_draining_answers_tell_keep_alive_clients_to_close() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(&dir.path().join("t.db"), &[("SHUTDOWN_DRAIN_SECONDS", "3")]);
    let mut keep_alive = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    keep_alive.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let request = b"GET /health HTTP/1.1\r\nHost: t\r\n\r\n";
    keep_alive.write_all(request).unwrap();
    let mut buffer = [0_u8; 4096];
    let n = keep_alive.read(&mut buffer).unwrap();
    let before = String::from_utf8_lossy(&buffer[..n]).to_lowercase();
    assert!(
        before.starts_with("http/1.1 200") && !before.contains("connection: close"),
        "{before}"
    );

    server.signal(Signal::SIGTERM);
    server.wait_until(Duration::from_secs(2), || get(&server.url("/ready")).0 == 503);
    keep_alive.write_all(request).unwrap();
    let mut during = String::new();
    keep_alive.read_to_string(&mut during).unwrap();
    let during = during.to_lowercase();
    assert!(
        during.starts_with("http/1.1 200"),
        "still served while draining: {during}"
    );
    assert!(during.contains("connection: close"), "{during}");
    // read_to_string returned: the server closed the connection after that answer.
    let exit = server.wait_exit(Duration::from_secs(10));
    assert!(exit.success(), "{exit:?}");
}
