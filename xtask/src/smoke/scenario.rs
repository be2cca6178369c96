//! The smoke scenario: what a new user does, step by step, and what each step must see. Steps
//! are added here (with [`Run::step`]); the client and the report do not change for them.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use scraper::Selector;
use serde::Deserialize;
use todo_service::contract::{HEALTH_PATH, READY_PATH};

use super::{
    client::{Browser, Reply, StepError},
    report::{Report, StepReport},
};

/// The frontend's session cookie (the services' contract; re-exported for the commands' tests).
pub use todo_service::contract::SESSION_COOKIE;

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

/// Runs every check against the target and reports each step.
pub fn run_checks(target: &Target) -> Report {
    run_with(target, checks)
}

/// Only health, readiness and the backend's build (no user session): what `dev` checks after
/// each rollout, to prove the new build is the one serving.
pub fn run_serving_checks(target: &Target) -> Report {
    run_with(target, health)
}

fn run_with(target: &Target, checks: fn(&Target, &mut Run, &mut Browser) -> Result<(), ()>) -> Report {
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
        let (value, detail, error) = match result {
            Ok((value, detail)) => (Some(value), detail, None),
            Err(error) => (None, None, Some(error)),
        };
        self.steps.push(StepReport {
            name: name.to_owned(),
            ok: error.is_none(),
            duration_ms,
            detail,
            error,
        });
        value.ok_or(())
    }
}

/// The whole scenario: the services up, then one new user's session from sign-up to log-out.
/// Each part stops the run at its first failed step.
fn checks(target: &Target, run: &mut Run, user: &mut Browser) -> Result<(), ()> {
    health(target, run, user)?;
    let account = Account::new();
    sign_up_and_log_in(run, user, &account)?;
    if tasks(run, user, &account.task_title).is_err() {
        clean_up(user, &account.task_title);
        return Err(());
    }
    chat(run, user, &account.chat_title)?;
    log_out(run, user)
}

/// Health, readiness (both waited for: start-up is a legitimate wait) and the backend's build.
fn health(target: &Target, run: &mut Run, user: &mut Browser) -> Result<(), ()> {
    let mut probe = Browser::new(&target.backend, target.timeout);
    let deadline = Instant::now() + target.timeout;
    run.step("frontend /health", || {
        user.wait_for_ok(HEALTH_PATH, deadline).map(|_| ((), None))
    })?;
    run.step("frontend /ready", || {
        user.wait_for_ok(READY_PATH, deadline).map(|_| ((), None))
    })?;
    run.step("backend /health", || {
        probe.wait_for_ok(HEALTH_PATH, deadline).map(|_| ((), None))
    })?;
    run.step("backend /ready", || {
        probe.wait_for_ok(READY_PATH, deadline).map(|_| ((), None))
    })?;
    run.step("backend /version", || {
        check_version(&mut probe, target.expect_version.as_deref())
    })
}

/// The brand-new user of one run, and the task it creates.
struct Account {
    email: String,
    password: String,
    task_title: String,
    chat_title: String,
}

impl Account {
    fn new() -> Self {
        let unique = unique_suffix();
        Self {
            email: format!("smoke-{unique}@example.com"),
            password: format!("smoke-{unique}-pw"),
            task_title: format!("smoke task {unique}"),
            chat_title: format!("smoke chat task {unique}"),
        }
    }
}

fn sign_up_and_log_in(run: &mut Run, user: &mut Browser, account: &Account) -> Result<(), ()> {
    let (email, password) = (account.email.as_str(), account.password.as_str());
    run.step("sign up as a new user", || {
        let token = user.csrf_from("/register")?;
        let reply = user.post_form(
            "/register",
            &[
                ("email", email),
                ("password", password),
                ("name", "Smoke Test"),
                ("csrf_token", &token),
            ],
        )?;
        expect_redirect(&reply, "/")?;
        user.require_cookie(SESSION_COOKIE, &reply)?;
        Ok(((), Some(email.to_owned())))
    })?;
    run.step("log out and log in again", || {
        user.forget_cookie(SESSION_COOKIE);
        let token = user.csrf_from("/login")?;
        let reply = user.post_form(
            "/login",
            &[("email", email), ("password", password), ("csrf_token", &token)],
        )?;
        expect_redirect(&reply, "/")?;
        user.require_cookie(SESSION_COOKIE, &reply)?;
        Ok(((), None))
    })
}

/// A task's life: created, listed, done, deleted, gone.
fn tasks(run: &mut Run, user: &mut Browser, title: &str) -> Result<(), ()> {
    run.step("create a task", || {
        let token = user.csrf_from("/")?;
        let reply = user.post_form(
            "/tasks",
            &[
                ("title", title),
                ("description", "created by cargo xtask smoke"),
                ("priority", "high"),
                ("due_date", ""),
                ("tags", "smoke"),
                ("csrf_token", &token),
            ],
        )?;
        expect_redirect(&reply, "/")?;
        Ok(((), None))
    })?;
    let id = run.step("see it in the task list", || {
        let page = user.get_ok("/")?;
        let task = find_task(&page, title)
            .ok_or_else(|| StepError::from_reply(format!("no task titled {title:?} in the list"), &page))?;
        if task.completed {
            return Err(StepError::from_reply("the new task is already marked done", &page));
        }
        Ok((task.id, Some(format!("task {}", task.id))))
    })?;
    run.step("mark it done", || submit(user, &format!("/tasks/{id}/toggle"), "/"))?;
    run.step("see it done", || {
        let page = user.get_ok("/")?;
        match find_task(&page, title) {
            Some(task) if task.completed => Ok(((), None)),
            Some(_) => Err(StepError::from_reply("the task is still shown as not done", &page)),
            None => Err(StepError::from_reply(
                format!("task {id} disappeared from the list"),
                &page,
            )),
        }
    })?;
    run.step("delete it", || submit(user, &format!("/tasks/{id}/delete"), "/"))?;
    run.step("see it gone", || {
        let page = user.get_ok("/")?;
        match find_task(&page, title) {
            None => Ok(((), None)),
            Some(_) => Err(StepError::from_reply(
                format!("task {id} is still listed after deleting it"),
                &page,
            )),
        }
    })
}

/// The chat assistant through the web UI, with whatever engine the deployment runs (the built-in
/// one needs no key): open the chat from the header, add a task by chat, see it in the list,
/// complete it by chat, see it done, and find the conversation kept. The task and the
/// conversation are removed afterwards, pass or fail (only this run's user's data).
fn chat(run: &mut Run, user: &mut Browser, title: &str) -> Result<(), ()> {
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
        if !page_text(&page).contains(&format!("Added “{title}”")) {
            return Err(StepError::from_reply(
                "the assistant did not say it added the task",
                &page,
            ));
        }
        Ok((path.clone(), Some(path)))
    })?;
    let result = chat_follow_up(run, user, title, &conversation);
    if let Ok(Some(task)) = user.get_ok("/").map(|page| find_task(&page, title))
        && let Ok(token) = user.csrf_from("/")
    {
        let _ = user.post_form(&format!("/tasks/{}/delete", task.id), &[("csrf_token", &token)]);
    }
    if let Ok(token) = user.csrf_from(&conversation) {
        let _ = user.post_form(&format!("{conversation}/delete"), &[("csrf_token", &token)]);
    }
    result
}

/// The chat steps after the task was added in `conversation` (`/chat/{id}`).
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
        if !page_text(&page).contains(&format!("Marked “{title}” (#")) {
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

/// A page's text as people read it (markup and entities gone).
fn page_text(page: &Reply) -> String {
    page.html().root_element().text().collect()
}

/// Deletes the run's task after a later step failed; best effort, never another user's data.
fn clean_up(user: &mut Browser, title: &str) {
    if let Ok(Some(task)) = user.get_ok("/").map(|page| find_task(&page, title))
        && let Ok(token) = user.csrf_from("/")
    {
        let _ = user.post_form(&format!("/tasks/{}/delete", task.id), &[("csrf_token", &token)]);
    }
}

fn log_out(run: &mut Run, user: &mut Browser) -> Result<(), ()> {
    run.step("log out", || submit(user, "/logout", "/login"))?;
    run.step("task list now redirects to login", || {
        let reply = user.get("/")?;
        expect_redirect(&reply, "/login")?;
        Ok(((), None))
    })
}

/// Posts a form that carries only the CSRF token of the task list, expecting a redirect to `to`.
fn submit(user: &mut Browser, action: &str, to: &str) -> Result<((), Option<String>), StepError> {
    let token = user.csrf_from("/")?;
    let reply = user.post_form(action, &[("csrf_token", &token)])?;
    expect_redirect(&reply, to)?;
    Ok(((), None))
}

/// The fields of the backend's `/version` the check reads.
#[derive(Debug, Deserialize)]
struct VersionBody {
    version: Option<String>,
    build: Option<String>,
}

fn check_version(probe: &mut Browser, expected: Option<&str>) -> Result<((), Option<String>), StepError> {
    let reply = probe.get("/version")?;
    if reply.status != 200 {
        return Err(StepError::from_reply(
            format!("expected 200, got {}", reply.status),
            &reply,
        ));
    }
    let version: VersionBody = serde_json::from_str(&reply.body)
        .map_err(|err| StepError::from_reply(format!("/version is not JSON: {err}"), &reply))?;
    let build = version.build.unwrap_or_default();
    let detail = format!("version {} build {build}", version.version.as_deref().unwrap_or("?"));
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

/// A task as seen in the list page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ListedTask {
    id: u64,
    completed: bool,
}

/// Finds the list item showing `title`: `<li ... data-task-id="N" data-completed="...">`.
fn find_task(page: &Reply, title: &str) -> Option<ListedTask> {
    let item = Selector::parse("li[data-task-id]").ok()?;
    page.html()
        .select(&item)
        .find(|li| li.text().collect::<String>().contains(title))
        .and_then(|li| {
            let id = li.value().attr("data-task-id")?.parse().ok()?;
            let completed = li.value().attr("data-completed")? == "true";
            Some(ListedTask { id, completed })
        })
}

fn unique_suffix() -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("{:x}{:x}", nanos, std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_tasks_by_title_in_the_list() {
        let html = r#"<ul><li id="task-7" class="task" data-task-id="7" data-completed="false"><span class="task-title">other</span></li>
            <li id="task-9" class="task done" data-task-id="9" data-completed="true"><span class="task-title">smoke &quot;x&quot; &amp; y</span></li></ul>"#;
        assert_eq!(
            find_task(&Reply::page(html), "smoke \"x\" & y"),
            Some(ListedTask { id: 9, completed: true })
        );
        assert_eq!(
            find_task(&Reply::page(html), "other"),
            Some(ListedTask {
                id: 7,
                completed: false
            })
        );
        assert_eq!(find_task(&Reply::page(html), "missing"), None);
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
}
