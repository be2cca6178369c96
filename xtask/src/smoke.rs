//! `cargo xtask smoke`: prove a running deployment works for a real user, end to end.
//!
//! It checks health, readiness and version, then — as a brand-new user — signs up through the
//! frontend's HTML form, logs in, creates a task, completes it, deletes it, does the same through
//! the chat assistant's page (add by chat, see it in the list, complete by chat) and logs out,
//! exactly as a browser without JavaScript would (cookies, CSRF token, 303 redirects). It waits only where
//! waiting is legitimate (readiness during start-up); every other step gets one attempt.
//! [`run_checks`] is the library entry point that `run`, `e2e` and `deploy` reuse.

use std::{
    collections::BTreeMap,
    path::PathBuf,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use anyhow::Context;
use clap::Args;
use serde::Serialize;
use ureq::Agent;
use xshell::Shell;

use crate::{
    port_forward::Forwards,
    progress::human,
    release::{Access, Release, ReleaseArgs},
};

/// The frontend's URL when only `--backend-url` is given (where `cargo xtask run` serves it).
pub const DEFAULT_FRONTEND_URL: &str = "http://127.0.0.1:3000";
/// The backend's URL when only `--url` is given.
pub const DEFAULT_BACKEND_URL: &str = "http://127.0.0.1:8000";

/// Arguments of `cargo xtask smoke`.
///
/// The app is reached directly with `--url`/`--backend-url`, otherwise through the cluster: the
/// release's Services are forwarded to free local ports with `kubectl port-forward` for the
/// duration of the checks.
#[derive(Debug, Clone, Args)]
pub struct Smoke {
    /// The frontend's base URL [default without --backend-url: the release, through the cluster].
    #[arg(long)]
    pub url: Option<String>,
    /// The backend's base URL, for its /health, /ready and /version [default without --url: the
    /// release, through the cluster].
    #[arg(long)]
    pub backend_url: Option<String>,
    /// Fail unless the backend's /version reports this build (an image tag) [default through the
    /// cluster: the tag the backend Deployment runs].
    #[arg(long)]
    pub expect_version: Option<String>,
    /// The release to reach through the cluster (ignored with --url or --backend-url).
    #[command(flatten)]
    pub cluster: ReleaseArgs,
    /// Also write the report as JSON to this file (`-` for stdout).
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Seconds to wait for health and readiness (start-up), and the limit for each request.
    #[arg(long, default_value_t = 60)]
    pub timeout: u64,
}

impl Smoke {
    /// Runs the checks, prints the report, writes the JSON, and fails when a step failed.
    pub fn run(self, sh: &Shell) -> anyhow::Result<()> {
        let timeout = Duration::from_secs(self.timeout);
        let (report, forwards) = if self.url.is_none() && self.backend_url.is_none() {
            let release = self.cluster.resolve(sh, Access::Read)?;
            let expect_version = match self.expect_version {
                Some(version) => Some(version),
                None => deployed_backend_tag(sh, &release)?,
            };
            let forwards = Forwards::open(sh, &release)?;
            let target = Target {
                frontend: forwards.frontend.clone(),
                backend: forwards.backend.clone(),
                expect_version,
                timeout,
            };
            (run_checks(&target), Some(forwards))
        } else {
            let url = |given: Option<String>, default: &str| {
                given.as_deref().unwrap_or(default).trim_end_matches('/').to_owned()
            };
            let target = Target {
                frontend: url(self.url, DEFAULT_FRONTEND_URL),
                backend: url(self.backend_url, DEFAULT_BACKEND_URL),
                expect_version: self.expect_version,
                timeout,
            };
            (run_checks(&target), None)
        };
        if let Some(forwards) = forwards {
            forwards.close();
        }
        let to_stdout = self.json.as_deref().is_some_and(|p| p.as_os_str() == "-");
        if to_stdout {
            eprint!("{}", report.render());
        } else {
            print!("{}", report.render());
        }
        if let Some(path) = &self.json {
            let json = serde_json::to_string_pretty(&report)?;
            if to_stdout {
                println!("{json}");
            } else {
                std::fs::write(path, json + "\n")
                    .with_context(|| format!("writing the report to {}", path.display()))?;
            }
        }
        report.into_result()
    }
}

/// The tag of the image the release's backend Deployment runs (`None` when it has no backend).
fn deployed_backend_tag(sh: &Shell, release: &Release) -> anyhow::Result<Option<String>> {
    let selector = release.component_selector("backend");
    let json = release.query(sh, &["get", "deployments", "-l", &selector, "-o", "json"])?;
    let list: serde_json::Value = serde_json::from_str(&json).context("reading the backend Deployment")?;
    let image = list["items"][0]["spec"]["template"]["spec"]["containers"][0]["image"].as_str();
    Ok(image
        .and_then(|image| image.rsplit_once(':'))
        .map(|(_, tag)| tag.to_owned()))
}

/// What to check.
#[derive(Debug, Clone)]
pub struct Target {
    /// Frontend base URL, no trailing slash.
    pub frontend: String,
    /// Backend base URL, no trailing slash.
    pub backend: String,
    /// The build the backend must report, if any.
    pub expect_version: Option<String>,
    /// Waiting limit for start-up, and per-request timeout.
    pub timeout: Duration,
}

/// The outcome of a smoke run.
#[derive(Debug, Serialize)]
pub struct Report {
    /// Whether every step passed.
    pub ok: bool,
    /// The frontend checked.
    pub frontend_url: String,
    /// The backend checked.
    pub backend_url: String,
    /// Total time.
    pub duration_ms: u128,
    /// Each step in order; after a failure the remaining steps are not run.
    pub steps: Vec<StepReport>,
}

/// One step of the run.
#[derive(Debug, Serialize)]
pub struct StepReport {
    /// What the step does.
    pub name: String,
    /// Whether it passed.
    pub ok: bool,
    /// How long it took.
    pub duration_ms: u128,
    /// What was seen (e.g. the version), when useful.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<StepError>,
}

/// The evidence of a failed step: the request, the answer, and the first lines of the body.
#[derive(Debug, Clone, Serialize)]
pub struct StepError {
    /// What went wrong, in words.
    pub message: String,
    /// `METHOD URL` of the request that failed, if one did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request: Option<String>,
    /// The HTTP status received, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// The first lines of the response body.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
}

impl StepError {
    fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            request: None,
            status: None,
            body: None,
        }
    }

    fn from_reply(message: impl Into<String>, reply: &Reply) -> Self {
        Self {
            message: message.into(),
            request: Some(reply.request.clone()),
            status: Some(reply.status),
            body: Some(first_lines(&reply.body, 8)),
        }
    }
}

impl Report {
    /// The human report: a tick or a cross per step with its duration, then a summary.
    pub fn render(&self) -> String {
        let mut out = format!("smoke test of {} (backend {})\n", self.frontend_url, self.backend_url);
        let width = self.steps.iter().map(|s| s.name.chars().count()).max().unwrap_or(0);
        for step in &self.steps {
            let mark = if step.ok { "✓" } else { "✗" };
            let duration = human(Duration::from_millis(step.duration_ms as u64));
            let detail = step.detail.as_deref().map(|d| format!("  ({d})")).unwrap_or_default();
            out.push_str(&format!("  {mark} {:<width$}  {duration:>7}{detail}\n", step.name));
            if let Some(error) = &step.error {
                out.push_str(&format!("      {}\n", error.message));
                if let Some(request) = &error.request {
                    out.push_str(&format!("      request: {request}\n"));
                }
                if let Some(status) = error.status {
                    out.push_str(&format!("      status:  {status}\n"));
                }
                if let Some(body) = error.body.as_deref().filter(|b| !b.is_empty()) {
                    out.push_str("      body:\n");
                    for line in body.lines() {
                        out.push_str(&format!("        | {line}\n"));
                    }
                }
            }
        }
        let passed = self.steps.iter().filter(|s| s.ok).count();
        let total = human(Duration::from_millis(self.duration_ms as u64));
        match self.steps.iter().find(|s| !s.ok) {
            None => out.push_str(&format!("smoke: all {passed} steps passed in {total}\n")),
            Some(failed) => out.push_str(&format!(
                "smoke: FAILED at \"{}\" ({passed} steps passed, {total})\n",
                failed.name
            )),
        }
        out
    }

    /// `Ok` when every step passed, else an error naming the failed step.
    pub fn into_result(self) -> anyhow::Result<()> {
        match self.steps.iter().find(|s| !s.ok) {
            None => Ok(()),
            Some(step) => {
                let why = step.error.as_ref().map(|e| e.message.as_str()).unwrap_or("failed");
                anyhow::bail!("smoke test failed at \"{}\": {why}", step.name)
            }
        }
    }

    /// The first failed step, if any.
    pub fn failed_step(&self) -> Option<&StepReport> {
        self.steps.iter().find(|s| !s.ok)
    }
}

/// Runs every check against the target and reports each step.
pub fn run_checks(target: &Target) -> Report {
    let started = Instant::now();
    let mut run = Run { steps: Vec::new() };
    let mut user = Browser::new(&target.frontend, target.timeout);
    let _ = checks(target, &mut run, &mut user);
    Report {
        ok: run.steps.iter().all(|s| s.ok),
        frontend_url: target.frontend.clone(),
        backend_url: target.backend.clone(),
        duration_ms: started.elapsed().as_millis(),
        steps: run.steps,
    }
}

/// Collects step reports; `step` returns `Err(())` after a failure so `?` stops the run.
struct Run {
    steps: Vec<StepReport>,
}

impl Run {
    fn step<T>(&mut self, name: &str, work: impl FnOnce() -> Result<(T, Option<String>), StepError>) -> Result<T, ()> {
        let started = Instant::now();
        let result = work();
        let duration_ms = started.elapsed().as_millis();
        match result {
            Ok((value, detail)) => {
                self.steps.push(StepReport {
                    name: name.to_owned(),
                    ok: true,
                    duration_ms,
                    detail,
                    error: None,
                });
                Ok(value)
            }
            Err(error) => {
                self.steps.push(StepReport {
                    name: name.to_owned(),
                    ok: false,
                    duration_ms,
                    detail: None,
                    error: Some(error),
                });
                Err(())
            }
        }
    }
}

fn checks(target: &Target, run: &mut Run, user: &mut Browser) -> Result<(), ()> {
    let mut probe = Browser::new(&target.backend, target.timeout);
    let deadline = Instant::now() + target.timeout;
    run.step("frontend /health", || {
        user.wait_for_ok("/health", deadline).map(|_| ((), None))
    })?;
    run.step("frontend /ready", || {
        user.wait_for_ok("/ready", deadline).map(|_| ((), None))
    })?;
    run.step("backend /health", || {
        probe.wait_for_ok("/health", deadline).map(|_| ((), None))
    })?;
    run.step("backend /ready", || {
        probe.wait_for_ok("/ready", deadline).map(|_| ((), None))
    })?;
    run.step("backend /version", || {
        check_version(&mut probe, target.expect_version.as_deref())
    })?;

    let unique = unique_suffix();
    let email = format!("smoke-{unique}@example.com");
    let password = format!("smoke-{unique}-pw");
    let title = format!("smoke task {unique}");

    run.step("sign up as a new user", || {
        let token = user.csrf_from("/register")?;
        let reply = user.post_form(
            "/register",
            &[
                ("email", &email),
                ("password", &password),
                ("name", "Smoke Test"),
                ("csrf_token", &token),
            ],
        )?;
        expect_redirect(&reply, "/")?;
        user.require_cookie(SESSION_COOKIE, &reply)?;
        Ok(((), Some(email.clone())))
    })?;
    run.step("log out and log in again", || {
        user.forget_session();
        let token = user.csrf_from("/login")?;
        let reply = user.post_form(
            "/login",
            &[("email", &email), ("password", &password), ("csrf_token", &token)],
        )?;
        expect_redirect(&reply, "/")?;
        user.require_cookie(SESSION_COOKIE, &reply)?;
        Ok(((), None))
    })?;
    let created = run.step("create a task", || {
        let token = user.csrf_from("/")?;
        let reply = user.post_form(
            "/tasks",
            &[
                ("title", &title),
                ("description", "created by cargo xtask smoke"),
                ("priority", "high"),
                ("due_date", ""),
                ("tags", "smoke"),
                ("csrf_token", &token),
            ],
        )?;
        expect_redirect(&reply, "/")?;
        Ok(((), None))
    });
    let id = created.and_then(|()| {
        run.step("see it in the task list", || {
            let page = user.get_ok("/")?;
            let task = find_task(&page, &title)
                .ok_or_else(|| StepError::from_reply(format!("no task titled {title:?} in the list"), &page))?;
            if task.completed {
                return Err(StepError::from_reply("the new task is already marked done", &page));
            }
            Ok((task.id, Some(format!("task {}", task.id))))
        })
    });
    let result = id.and_then(|id| {
        run.step("mark it done", || {
            let token = user.csrf_from("/")?;
            let reply = user.post_form(&format!("/tasks/{id}/toggle"), &[("csrf_token", &token)])?;
            expect_redirect(&reply, "/")?;
            Ok(((), None))
        })?;
        run.step("see it done", || {
            let page = user.get_ok("/")?;
            match find_task(&page, &title) {
                Some(task) if task.completed => Ok(((), None)),
                Some(_) => Err(StepError::from_reply("the task is still shown as not done", &page)),
                None => Err(StepError::from_reply(
                    format!("task {id} disappeared from the list"),
                    &page,
                )),
            }
        })?;
        run.step("delete it", || {
            let token = user.csrf_from("/")?;
            let reply = user.post_form(&format!("/tasks/{id}/delete"), &[("csrf_token", &token)])?;
            expect_redirect(&reply, "/")?;
            Ok(((), None))
        })?;
        run.step("see it gone", || {
            let page = user.get_ok("/")?;
            match find_task(&page, &title) {
                None => Ok(((), None)),
                Some(_) => Err(StepError::from_reply(
                    format!("task {id} is still listed after deleting it"),
                    &page,
                )),
            }
        })
    });
    if result.is_err() {
        // Clean up the task if a later step failed; best effort, never another user's data.
        if let Ok(Some(task)) = user.get_ok("/").map(|page| find_task(&page, &title))
            && let Ok(token) = user.csrf_from("/")
        {
            let _ = user.post_form(&format!("/tasks/{}/delete", task.id), &[("csrf_token", &token)]);
        }
        return Err(());
    }
    chat_checks(run, user, &unique)?;
    run.step("log out", || {
        let token = user.csrf_from("/")?;
        let reply = user.post_form("/logout", &[("csrf_token", &token)])?;
        expect_redirect(&reply, "/login")?;
        Ok(((), None))
    })?;
    run.step("task list now redirects to login", || {
        let reply = user.get("/")?;
        expect_redirect(&reply, "/login")?;
        Ok(((), None))
    })
}

/// The chat assistant through the web UI, with whatever engine the deployment runs (the built-in
/// one needs no key): open the chat from the header, add a task by chat, see it in the list,
/// complete it by chat, see it done, and find the conversation kept. The task and the
/// conversation are removed afterwards (best effort, only this run's user's data).
fn chat_checks(run: &mut Run, user: &mut Browser, unique: &str) -> Result<(), ()> {
    let title = format!("smoke chat task {unique}");
    run.step("chat: open the chat page from the header", || {
        let list = user.get_ok("/")?;
        if !list.body.contains(r#"href="/chat""#) {
            return Err(StepError::from_reply(
                "the task list's header has no link to /chat",
                &list,
            ));
        }
        let page = user.get_ok("/chat")?;
        if !page.body.contains(r#"name="message""#) {
            return Err(StepError::from_reply("the chat page has no message field", &page));
        }
        Ok(((), None))
    })?;
    let conversation = run.step("chat: add a task by chat", || {
        let token = user.csrf_from("/chat")?;
        let message = format!("add {title} tomorrow, high priority #smoke");
        let reply = user.post_form("/chat", &[("message", &message), ("csrf_token", &token)])?;
        let path = chat_redirect(&reply)?;
        let page = user.get_ok(&path)?;
        if !page.body.contains(&format!("Added “{}”", html_escape(&title))) {
            return Err(StepError::from_reply(
                "the assistant did not say it added the task",
                &page,
            ));
        }
        Ok((path.clone(), Some(path)))
    })?;
    let result = chat_follow_up(run, user, &title, &conversation);
    // Clean up, pass or fail: the task, then the conversation.
    if let Ok(Some(task)) = user.get_ok("/").map(|page| find_task(&page, &title))
        && let Ok(token) = user.csrf_from("/")
    {
        let _ = user.post_form(&format!("/tasks/{}/delete", task.id), &[("csrf_token", &token)]);
    }
    if let Ok(token) = user.csrf_from(&conversation) {
        let _ = user.post_form(&format!("{conversation}/delete"), &[("csrf_token", &token)]);
    }
    result
}

/// The chat steps after the task was added in conversation `conversation` (`/chat/{id}`).
fn chat_follow_up(run: &mut Run, user: &mut Browser, title: &str, conversation: &str) -> Result<(), ()> {
    run.step("chat: see it in the task list", || {
        let page = user.get_ok("/")?;
        match find_task(&page, title) {
            Some(task) if !task.completed => Ok(((), Some(format!("task {}", task.id)))),
            Some(_) => Err(StepError::from_reply("the task added by chat is already done", &page)),
            None => Err(StepError::from_reply(
                format!("no task titled {title:?} in the list"),
                &page,
            )),
        }
    })?;
    run.step("chat: complete it by chat", || {
        let token = user.csrf_from(conversation)?;
        let id = conversation.trim_start_matches("/chat/");
        let message = format!("complete {title}");
        let reply = user.post_form(
            "/chat",
            &[("message", &message), ("conversation_id", id), ("csrf_token", &token)],
        )?;
        expect_redirect(&reply, conversation)?;
        let page = user.get_ok(conversation)?;
        if !page.body.contains(&format!("Marked “{}”", html_escape(title))) {
            return Err(StepError::from_reply(
                "the assistant did not say it completed the task",
                &page,
            ));
        }
        Ok(((), None))
    })?;
    run.step("chat: see it done in the list", || {
        let page = user.get_ok("/")?;
        match find_task(&page, title) {
            Some(task) if task.completed => Ok(((), None)),
            Some(_) => Err(StepError::from_reply(
                "the task completed by chat is not shown done",
                &page,
            )),
            None => Err(StepError::from_reply(
                format!("no task titled {title:?} in the list"),
                &page,
            )),
        }
    })?;
    run.step("chat: the conversation is kept", || {
        let page = user.get_ok("/chat")?;
        if !page.body.contains(&format!(r#"href="{conversation}""#)) {
            return Err(StepError::from_reply(
                format!("{conversation} is not among the past conversations"),
                &page,
            ));
        }
        Ok(((), None))
    })
}

/// The `/chat/{id}` a chat form post redirects to.
fn chat_redirect(reply: &Reply) -> Result<String, StepError> {
    let location = reply.location.as_deref().unwrap_or_default();
    let path = redirect_path(reply);
    let is_conversation = path
        .strip_prefix("/chat/")
        .is_some_and(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()));
    if reply.status != 303 || !is_conversation {
        return Err(StepError::from_reply(
            format!(
                "expected a redirect to /chat/<id>, got {} to {location:?}",
                reply.status
            ),
            reply,
        ));
    }
    Ok(path.to_owned())
}

fn check_version(probe: &mut Browser, expected: Option<&str>) -> Result<((), Option<String>), StepError> {
    let reply = probe.get("/version")?;
    if reply.status != 200 {
        return Err(StepError::from_reply(
            format!("expected 200, got {}", reply.status),
            &reply,
        ));
    }
    let version: serde_json::Value = serde_json::from_str(&reply.body)
        .map_err(|err| StepError::from_reply(format!("/version is not JSON: {err}"), &reply))?;
    let build = version["build"].as_str().unwrap_or_default().to_owned();
    let detail = format!("version {} build {build}", version["version"].as_str().unwrap_or("?"));
    match expected {
        Some(expected) if expected != build => Err(StepError::from_reply(
            format!(
                "the backend serves build {build:?}, expected {expected:?} (an old pod still serving, or the wrong image)"
            ),
            &reply,
        )),
        _ => Ok(((), Some(detail))),
    }
}

fn expect_redirect(reply: &Reply, to: &str) -> Result<(), StepError> {
    let location = reply.location.as_deref().unwrap_or_default();
    let path = redirect_path(reply);
    if (300..400).contains(&reply.status) && path == to {
        Ok(())
    } else if (300..400).contains(&reply.status) {
        Err(StepError::from_reply(
            format!("expected a redirect to {to}, got one to {location:?}"),
            reply,
        ))
    } else {
        Err(StepError::from_reply(
            format!("expected a redirect to {to}, got status {}", reply.status),
            reply,
        ))
    }
}

/// The path a redirect points to, without scheme, host, query or fragment (`""` without one).
fn redirect_path(reply: &Reply) -> &str {
    let location = reply.location.as_deref().unwrap_or_default();
    let path = location
        .split_once("://")
        .map_or(location, |(_, rest)| rest.find('/').map_or("/", |i| &rest[i..]));
    path.split(['?', '#']).next().unwrap_or_default()
}

/// The frontend's session cookie.
pub const SESSION_COOKIE: &str = "todo_session";

/// A task as seen in the list page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ListedTask {
    id: u64,
    completed: bool,
}

/// Finds the list item whose title is `title`: `<li ... data-task-id="N" data-completed="...">`.
fn find_task(page: &Reply, title: &str) -> Option<ListedTask> {
    let escaped = html_escape(title);
    page.body
        .split("<li")
        .skip(1)
        .find(|item| item.contains(&escaped) && item.contains("data-task-id="))
        .and_then(|item| {
            let id = attribute(item, "data-task-id")?.parse().ok()?;
            let completed = attribute(item, "data-completed")? == "true";
            Some(ListedTask { id, completed })
        })
}

fn attribute<'a>(html: &'a str, name: &str) -> Option<&'a str> {
    let start = html.find(&format!("{name}=\""))? + name.len() + 2;
    let end = html[start..].find('"')? + start;
    Some(&html[start..end])
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn html_unescape(text: &str) -> String {
    text.replace("&quot;", "\"")
        .replace("&#34;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

fn unique_suffix() -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("{:x}{:x}", nanos, std::process::id())
}

fn first_lines(text: &str, n: usize) -> String {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .take(n)
        .map(|l| l.chars().take(200).collect::<String>())
        .collect::<Vec<_>>()
        .join("\n")
}

/// A response, with what was asked for.
#[derive(Debug, Clone)]
struct Reply {
    request: String,
    status: u16,
    location: Option<String>,
    body: String,
}

/// A cookie-keeping HTTP client that never follows redirects (each one is checked).
struct Browser {
    agent: Agent,
    base: String,
    cookies: BTreeMap<String, String>,
}

impl Browser {
    fn new(base: &str, timeout: Duration) -> Self {
        let agent: Agent = Agent::config_builder()
            .max_redirects(0)
            .http_status_as_error(false)
            .timeout_global(Some(timeout.min(Duration::from_secs(30))))
            .timeout_connect(Some(Duration::from_secs(3)))
            .build()
            .into();
        Self {
            agent,
            base: base.trim_end_matches('/').to_owned(),
            cookies: BTreeMap::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn remember(&mut self, response: &ureq::http::Response<ureq::Body>) {
        for header in response.headers().get_all("set-cookie") {
            let Ok(value) = header.to_str() else { continue };
            let mut parts = value.split(';');
            let Some((name, val)) = parts.next().and_then(|p| p.trim().split_once('=')) else {
                continue;
            };
            let expired = parts.any(|attr| {
                let attr = attr.trim().to_ascii_lowercase();
                attr == "max-age=0" || attr.starts_with("max-age=-") || attr.starts_with("expires=thu, 01 jan 1970")
            });
            if expired || val.is_empty() {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), val.to_owned());
            }
        }
    }

    fn forget_session(&mut self) {
        self.cookies.remove(SESSION_COOKIE);
    }

    fn require_cookie(&self, name: &str, reply: &Reply) -> Result<(), StepError> {
        if self.cookies.contains_key(name) {
            Ok(())
        } else {
            Err(StepError::from_reply(format!("no {name} cookie was set"), reply))
        }
    }

    fn finish(
        &mut self,
        request: String,
        result: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<Reply, StepError> {
        let mut response = result.map_err(|err| StepError {
            request: Some(request.clone()),
            ..StepError::new(format!("no answer: {err}"))
        })?;
        self.remember(&response);
        let status = response.status().as_u16();
        let location = response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = response
            .body_mut()
            .with_config()
            .limit(5 * 1024 * 1024)
            .read_to_string()
            .unwrap_or_default();
        Ok(Reply {
            request,
            status,
            location,
            body,
        })
    }

    fn get(&mut self, path: &str) -> Result<Reply, StepError> {
        let url = format!("{}{path}", self.base);
        let mut request = self.agent.get(&url);
        if !self.cookies.is_empty() {
            request = request.header("cookie", self.cookie_header());
        }
        self.finish(format!("GET {url}"), request.call())
    }

    fn get_ok(&mut self, path: &str) -> Result<Reply, StepError> {
        let reply = self.get(path)?;
        if reply.status == 200 {
            Ok(reply)
        } else {
            Err(StepError::from_reply(
                format!("expected 200, got {}", reply.status),
                &reply,
            ))
        }
    }

    fn post_form(&mut self, path: &str, fields: &[(&str, &str)]) -> Result<Reply, StepError> {
        let url = format!("{}{path}", self.base);
        let mut request = self.agent.post(&url).header("origin", self.base.as_str());
        if !self.cookies.is_empty() {
            request = request.header("cookie", self.cookie_header());
        }
        let result = request.send_form(fields.iter().copied());
        self.finish(format!("POST {url}"), result)
    }

    /// Loads a page and reads its CSRF token (the hidden `csrf_token` field of its forms).
    fn csrf_from(&mut self, path: &str) -> Result<String, StepError> {
        let page = self.get_ok(path)?;
        let marker = "name=\"csrf_token\" value=\"";
        let start = page.body.find(marker).map(|i| i + marker.len());
        let token = start.and_then(|s| page.body[s..].find('"').map(|e| html_unescape(&page.body[s..s + e])));
        token
            .filter(|t| !t.is_empty())
            .ok_or_else(|| StepError::from_reply(format!("no CSRF token on {path}"), &page))
    }

    /// Polls until `path` answers 200 or the deadline passes (start-up is a legitimate wait).
    fn wait_for_ok(&mut self, path: &str, deadline: Instant) -> Result<Reply, StepError> {
        loop {
            let outcome = self.get(path);
            match outcome {
                Ok(reply) if reply.status == 200 => return Ok(reply),
                Ok(reply) if Instant::now() >= deadline => {
                    return Err(StepError::from_reply(
                        format!("expected 200, got {} until the timeout", reply.status),
                        &reply,
                    ));
                }
                Err(error) if Instant::now() >= deadline => return Err(error),
                _ => std::thread::sleep(Duration::from_millis(250)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(body: &str) -> Reply {
        Reply {
            request: "GET /".into(),
            status: 200,
            location: None,
            body: body.into(),
        }
    }

    #[test]
    fn finds_tasks_by_title_in_the_list() {
        let html = r#"<ul><li id="task-7" class="task" data-task-id="7" data-completed="false"><span class="task-title">other</span></li>
            <li id="task-9" class="task done" data-task-id="9" data-completed="true"><span class="task-title">smoke &quot;x&quot; &amp; y</span></li></ul>"#;
        assert_eq!(
            find_task(&page(html), "smoke \"x\" & y"),
            Some(ListedTask { id: 9, completed: true })
        );
        assert_eq!(
            find_task(&page(html), "other"),
            Some(ListedTask {
                id: 7,
                completed: false
            })
        );
        assert_eq!(find_task(&page(html), "missing"), None);
    }

    #[test]
    fn redirects_are_compared_by_path() {
        let reply = |status, location: &str| Reply {
            request: "POST /x".into(),
            status,
            location: Some(location.into()),
            body: String::new(),
        };
        assert!(expect_redirect(&reply(303, "/"), "/").is_ok());
        assert!(expect_redirect(&reply(303, "http://host:3000/login?next=/"), "/login").is_ok());
        assert!(
            expect_redirect(&reply(303, "/login"), "/")
                .unwrap_err()
                .message
                .contains("got one to \"/login\"")
        );
        assert!(
            expect_redirect(&reply(200, ""), "/")
                .unwrap_err()
                .message
                .contains("got status 200")
        );
    }

    #[test]
    fn the_report_shows_the_failed_request() {
        let report = Report {
            ok: false,
            frontend_url: "http://f".into(),
            backend_url: "http://b".into(),
            duration_ms: 1234,
            steps: vec![
                StepReport {
                    name: "frontend /health".into(),
                    ok: true,
                    duration_ms: 3,
                    detail: None,
                    error: None,
                },
                StepReport {
                    name: "create a task".into(),
                    ok: false,
                    duration_ms: 40,
                    detail: None,
                    error: Some(StepError {
                        message: "expected a redirect to /, got status 500".into(),
                        request: Some("POST http://f/tasks".into()),
                        status: Some(500),
                        body: Some("Internal error".into()),
                    }),
                },
            ],
        };
        let text = report.render();
        assert!(text.contains("✓ frontend /health"), "{text}");
        assert!(text.contains("✗ create a task"), "{text}");
        assert!(
            text.contains("request: POST http://f/tasks")
                && text.contains("status:  500")
                && text.contains("| Internal error"),
            "{text}"
        );
        assert!(
            text.contains("FAILED at \"create a task\" (1 steps passed, 1.2s)"),
            "{text}"
        );
        assert!(report.into_result().unwrap_err().to_string().contains("create a task"));
    }
}
