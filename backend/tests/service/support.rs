//! Test harness: the real server on port 0, over a fresh SQLite file or a fresh PostgreSQL
//! database per test, and a small HTTP client.

use std::time::{Duration, Instant};

use backend::{
    config::{Config, Secret},
    startup::Application,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::{Connection, Executor, PgConnection};
use todo_service::contract::{DEFAULT_TEST_DATABASE_URL, READY_PATH};

/// The secret the test servers sign tokens with (tests forge expired tokens with it).
pub const JWT_SECRET: &str = "test-secret-test-secret-test-secret-0123";

/// The PostgreSQL server for tests; CI starts it, `cargo xtask test` checks it is there.
pub fn postgres_admin_url() -> String {
    std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_TEST_DATABASE_URL.to_owned())
}

/// Which database engine a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// A database that exists only for one test and is removed afterwards.
pub enum TestDb {
    /// The folder holding the file, removed when dropped.
    Sqlite {
        _dir: tempfile::TempDir,
    },
    Postgres {
        name: String,
    },
}

impl TestDb {
    pub async fn create(engine: Engine) -> (Self, String) {
        match engine {
            Engine::Sqlite => {
                let dir = tempfile::tempdir().expect("temporary directory");
                let url = format!("sqlite://{}/todo.db", dir.path().display());
                (Self::Sqlite { _dir: dir }, url)
            }
            Engine::Postgres => {
                let admin = postgres_admin_url();
                let name = format!("todo_test_{}", uuid::Uuid::new_v4().simple());
                let mut conn = PgConnection::connect(&admin).await.unwrap_or_else(|err| {
                    panic!(
                        "PostgreSQL is needed for these tests and is not reachable at {admin}: {err}. Start it \
                         (pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start) or set TEST_DATABASE_URL"
                    )
                });
                conn.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .await
                    .expect("create test database");
                let (base, _) = admin.rsplit_once('/').expect("TEST_DATABASE_URL has a database path");
                (Self::Postgres { name: name.clone() }, format!("{base}/{name}"))
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Self::Postgres { name } = self {
            let name = name.clone();
            // Drop runs outside async code; a short-lived runtime on its own thread removes the database.
            let _ = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                runtime.block_on(async {
                    if let Ok(mut conn) = PgConnection::connect(&postgres_admin_url()).await {
                        let _ = conn
                            .execute(sqlx::AssertSqlSafe(format!(
                                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                            )))
                            .await;
                    }
                });
            })
            .join();
        }
    }
}

/// A running server and a client for it.
pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    /// The server's database handle (tests hold SQLite's writer and read its batch counts).
    pub db: backend::db::Db,
    server: tokio::task::JoinHandle<anyhow::Result<()>>,
    _db: TestDb,
}

/// The settings every test server starts from.
pub fn test_config(database_url: &str) -> Config {
    let mut config = Config::for_tests(database_url);
    config.jwt_secret = Some(Secret::from(JWT_SECRET.to_owned()));
    config
}

impl TestApp {
    /// Starts the server on a fresh database and waits until it is ready.
    pub async fn spawn(engine: Engine) -> Self {
        Self::spawn_with(engine, |_| {}).await
    }

    /// Like [`TestApp::spawn`], with changed settings.
    pub async fn spawn_with(engine: Engine, change: impl FnOnce(&mut Config)) -> Self {
        let (test_db, url) = TestDb::create(engine).await;
        let mut config = test_config(&url);
        change(&mut config);
        let app = Application::build(config).await.expect("the server builds");
        let base = format!("http://{}", app.local_addr());
        let db = app.state().db.clone();
        let server = tokio::spawn(app.run_until_stopped(std::future::pending()));
        let test_app = Self {
            base,
            client: reqwest::Client::new(),
            db,
            server,
            _db: test_db,
        };
        test_app.wait_ready().await;
        test_app
    }

    async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(response) = self.client.get(self.url(READY_PATH)).send().await
                && response.status() == StatusCode::OK
            {
                return;
            }
            assert!(Instant::now() < deadline, "the server did not become ready within 20s");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The name of the test's PostgreSQL database (`None` on SQLite).
    pub fn postgres_database(&self) -> Option<&str> {
        match &self._db {
            TestDb::Postgres { name } => Some(name),
            TestDb::Sqlite { .. } => None,
        }
    }

    /// Sends a request with an optional bearer token and JSON body; returns status and JSON body
    /// (`Value::Null` when the body is empty or not JSON).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.client.request(method, self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request reaches the server");
        let status = response.status();
        let text = response.text().await.expect("body");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Registers a fresh user and returns their token and user JSON.
    pub async fn register(&self, label: &str) -> (String, Value) {
        let email = unique_email(label);
        let (status, body) = self
            .call(
                Method::POST,
                "/api/v1/auth/register",
                None,
                Some(json!({"email": email, "password": "correct horse battery", "name": label})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "register: {body}");
        (body["token"].as_str().expect("token").to_owned(), body["user"].clone())
    }

    /// Says `message` to the chat assistant (in `conversation`, or a new one); the answer must be
    /// a 200, whatever happened behind it.
    pub async fn say(&self, token: &str, message: &str, conversation: Option<i64>) -> Value {
        let mut body = json!({ "message": message });
        if let Some(id) = conversation {
            body["conversation_id"] = json!(id);
        }
        let (status, reply) = self.call(Method::POST, "/api/v1/chat", Some(token), Some(body)).await;
        assert_eq!(status, StatusCode::OK, "{message:?}: {reply}");
        reply
    }

    /// The `/metrics` text.
    pub async fn metrics(&self) -> String {
        let response = self
            .client
            .get(self.url("/metrics"))
            .send()
            .await
            .expect("/metrics answers");
        response.text().await.expect("/metrics body")
    }

    /// Creates a task from a JSON body and returns it.
    pub async fn create_task(&self, token: &str, body: Value) -> Value {
        let (status, task) = self.call(Method::POST, "/api/v1/tasks", Some(token), Some(body)).await;
        assert_eq!(status, StatusCode::CREATED, "create task: {task}");
        task
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// An email no other test uses.
pub fn unique_email(label: &str) -> String {
    format!("{label}-{}@example.com", uuid::Uuid::new_v4().simple())
}

/// Asserts the API's error shape and code.
pub fn assert_error(status: StatusCode, body: &Value, expected_status: StatusCode, expected_code: &str) {
    assert_eq!(status, expected_status, "body: {body}");
    assert_eq!(body["error"]["code"], expected_code, "body: {body}");
    assert!(
        body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()),
        "error has a message: {body}"
    );
}

/// Waits (bounded) until `count` reaches `n`: requests queued behind a hold, say.
pub async fn until_count(what: &str, n: usize, count: impl Fn() -> usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while count() < n {
        assert!(Instant::now() < deadline, "only {} of {n} {what}", count());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Runs each listed `async fn name(engine: Engine)` once per database engine.
#[macro_export]
macro_rules! on_both_engines {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $( #[tokio::test] async fn $name() { super::$name($crate::support::Engine::Sqlite).await } )*
        }
        mod postgres {
            $( #[tokio::test] async fn $name() { super::$name($crate::support::Engine::Postgres).await } )*
        }
    };
}
