//! What the integration tests share: the real backend (SQLite in a temporary folder) and the
//! real frontend, both on port 0 in the test's runtime, and a client that behaves like a browser
//! without JavaScript (cookies kept, redirects not followed, `Origin` sent on POST).

use std::{collections::BTreeMap, net::SocketAddr, time::Duration};

use reqwest::{StatusCode, header::HeaderMap};
use todo_service::contract::{HEALTH_PATH, READY_PATH};

/// A running backend and the folder holding its database.
pub struct Backend {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    _dir: tempfile::TempDir,
}

/// Starts the real backend on a fresh SQLite file and waits until /ready says 200.
pub async fn start_backend() -> Backend {
    let dir = tempfile::tempdir().expect("temporary folder");
    let db = format!("sqlite://{}/t.db", dir.path().display());
    let app = backend::startup::Application::build(backend::config::Config::for_tests(&db))
        .await
        .expect("backend builds");
    let url = format!("http://{}", app.local_addr());
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    wait_until_ready(&format!("{url}{READY_PATH}")).await;
    Backend { url, _dir: dir }
}

/// A running frontend.
pub struct Frontend {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    /// Its state (readiness).
    pub state: frontend::state::AppState,
}

/// Starts the real frontend against `backend_url` with default settings.
pub async fn start_frontend(backend_url: &str) -> Frontend {
    start_frontend_with(frontend::config::Config::for_tests(backend_url), std::future::pending()).await
}

/// Starts the real frontend with these settings, stopping when `shutdown` resolves.
pub async fn start_frontend_with(
    config: frontend::config::Config,
    shutdown: impl Future<Output = todo_service::shutdown::Shutdown> + Send + 'static,
) -> Frontend {
    let app = frontend::startup::Application::build(config)
        .await
        .expect("frontend builds");
    let url = format!("http://{}", app.local_addr());
    let state = app.state().clone();
    tokio::spawn(app.run_until_stopped(shutdown));
    wait_until_ready(&format!("{url}{HEALTH_PATH}")).await;
    Frontend { url, state }
}

/// Starts the real frontend with these settings; sending on the returned channel stops it as
/// SIGTERM would (drain first). [`Frontend::wait_draining`] waits until it has begun.
pub async fn start_frontend_stoppable(
    config: frontend::config::Config,
) -> (Frontend, tokio::sync::oneshot::Sender<()>) {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let frontend = start_frontend_with(config, async move {
        let _ = stopped.await;
        todo_service::shutdown::Shutdown::Drain
    })
    .await;
    (frontend, stop)
}

impl Frontend {
    /// Waits (1 s at most) until the frontend has begun its shutdown drain.
    pub async fn wait_draining(&self) {
        for _ in 0..100 {
            if self.state.readiness.is_draining() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the frontend did not begin draining within 1 s");
    }
}

/// Both servers, started side by side.
pub async fn start_both() -> (Backend, Frontend) {
    let backend = start_backend().await;
    let frontend = start_frontend(&backend.url).await;
    (backend, frontend)
}

/// Polls a URL until it answers 200 (10 s at most).
pub async fn wait_until_ready(url: &str) {
    let client = reqwest::Client::new();
    for _ in 0..200 {
        if let Ok(response) = client.get(url).send().await
            && response.status() == StatusCode::OK
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{url} did not answer 200 within 10 s");
}

/// An address where nothing listens (bound, then released).
pub fn closed_port_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr: SocketAddr = listener.local_addr().expect("addr");
    drop(listener);
    format!("http://{addr}")
}

/// An email nobody else in this test run uses.
pub fn unique_email(label: &str) -> String {
    format!("{label}-{}@example.com", uuid::Uuid::new_v4().simple())
}

/// A password that passes the backend's rules.
pub const PASSWORD: &str = "correct horse battery";

/// One answer, read completely.
#[derive(Debug)]
pub struct Page {
    /// Status code.
    pub status: StatusCode,
    /// Headers.
    pub headers: HeaderMap,
    /// Body text.
    pub body: String,
}

impl Page {
    /// The `Location` header (redirects).
    pub fn location(&self) -> Option<&str> {
        self.headers.get("location").and_then(|v| v.to_str().ok())
    }

    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The first hidden CSRF field's value, in the exact markup the smoke test relies on.
    pub fn csrf(&self) -> String {
        let marker = r#"<input type="hidden" name="csrf_token" value=""#;
        let start = self
            .body
            .find(marker)
            .unwrap_or_else(|| panic!("no csrf_token field in:\n{}", self.body))
            + marker.len();
        let end = self.body[start..].find('"').expect("closing quote") + start;
        self.body[start..end].to_owned()
    }

    /// The ids of the tasks in the list, in order (`data-task-id`).
    pub fn task_ids(&self) -> Vec<i64> {
        self.body
            .split(r#"data-task-id=""#)
            .skip(1)
            .map(|rest| rest.split('"').next().unwrap_or_default().parse().expect("numeric id"))
            .collect()
    }

    /// The `<li>` of task `id`, from its opening tag to its closing tag.
    pub fn task_item(&self, id: i64) -> &str {
        let start = self
            .body
            .find(&format!(r#"<li id="task-{id}""#))
            .unwrap_or_else(|| panic!("task {id} is not on the page:\n{}", self.body));
        let end = self.body[start..].find("</li>").expect("closing </li>") + start;
        &self.body[start..end]
    }
}

/// A browser without JavaScript: keeps cookies, does not follow redirects, sends `Origin` on POST.
pub struct Browser {
    http: reqwest::Client,
    /// The frontend's base URL.
    pub base: String,
    cookies: BTreeMap<String, String>,
    /// Extra headers sent with every request (e.g. htmx's).
    pub extra_headers: Vec<(String, String)>,
}

impl Browser {
    /// A fresh browser (no cookies) for the frontend at `base`.
    pub fn new(base: &str) -> Self {
        Self {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client"),
            base: base.to_owned(),
            cookies: BTreeMap::new(),
            extra_headers: Vec::new(),
        }
    }

    /// The value of a cookie the browser holds.
    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.cookies.get(name).map(String::as_str)
    }

    /// Sets or replaces a cookie by hand.
    pub fn set_cookie(&mut self, name: &str, value: &str) {
        self.cookies.insert(name.to_owned(), value.to_owned());
    }

    /// `GET path`.
    pub async fn get(&mut self, path: &str) -> Page {
        let request = self.http.get(format!("{}{path}", self.base));
        self.send(request).await
    }

    /// `POST path` with a URL-encoded form, `Origin` set to the frontend's own.
    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let origin = self.base.clone();
        self.post_from(path, fields, Some(&origin)).await
    }

    /// `POST path` with a URL-encoded form and the given `Origin` (or none).
    pub async fn post_from(&mut self, path: &str, fields: &[(&str, &str)], origin: Option<&str>) -> Page {
        let mut request = self.http.post(format!("{}{path}", self.base)).form(fields);
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        self.send(request).await
    }

    async fn send(&mut self, mut request: reqwest::RequestBuilder) -> Page {
        if !self.cookies.is_empty() {
            let line = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ");
            request = request.header("cookie", line);
        }
        for (name, value) in &self.extra_headers {
            request = request.header(name, value);
        }
        let response = request.send().await.expect("the frontend answers");
        let status = response.status();
        let headers = response.headers().clone();
        for set_cookie in headers.get_all("set-cookie") {
            let text = set_cookie.to_str().expect("ascii cookie");
            let (pair, attributes) = text.split_once(';').unwrap_or((text, ""));
            let (name, value) = pair.split_once('=').expect("name=value");
            if attributes.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
        let body = response.text().await.expect("body");
        Page { status, headers, body }
    }

    /// Signs up through the form (GET for the token, then POST) and checks the 303 to `/`.
    pub async fn register(&mut self, email: &str) -> Page {
        let form = self.get("/register").await;
        let token = form.csrf();
        let page = self
            .post(
                "/register",
                &[
                    ("email", email),
                    ("password", PASSWORD),
                    ("name", "Test User"),
                    ("csrf_token", &token),
                ],
            )
            .await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
        assert_eq!(page.location(), Some("/"));
        page
    }

    /// Adds a task through the list page's form; returns the redirect.
    pub async fn add_task(&mut self, fields: &[(&str, &str)]) -> Page {
        let list = self.get("/").await;
        assert_eq!(list.status, StatusCode::OK, "{}", list.body);
        let token = list.csrf();
        let mut all: Vec<(&str, &str)> = fields.to_vec();
        all.push(("csrf_token", &token));
        self.post("/tasks", &all).await
    }
}
