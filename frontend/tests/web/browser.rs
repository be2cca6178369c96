//! A real browser (headless Chromium through chromedriver and fantoccini) against the real
//! backend and frontend: sign up, add a task, complete it and delete it, each update happening in
//! place (htmx) without a full page reload; plus screenshots of the task list at desktop and
//! phone widths in `target/screenshots/`. Then the chat page, reached from the header: a task added
//! and completed by chat, each answer swapped in place.
//!
//! Chromium and chromedriver must be installed (`sudo apt-get install -y chromium chromium-driver`);
//! when they are not, this test fails with that command rather than skipping.

use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use crate::harness::{PASSWORD, start_both, unique_email};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const INSTALL_HINT: &str = "sudo apt-get install -y chromium chromium-driver";

/// chromedriver on a free port, killed when dropped (also when the test fails).
struct ChromeDriver {
    child: Child,
    url: String,
}

impl ChromeDriver {
    fn start() -> Self {
        for tool in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                Path::new(tool).exists(),
                "{tool} is missing; install it with: {INSTALL_HINT}"
            );
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start {CHROMEDRIVER} ({err}); install it with: {INSTALL_HINT}"));
        Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }

    /// Waits until chromedriver answers `/status`.
    async fn wait_until_up(&self) {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(response) = client.get(format!("{}/status", self.url)).send().await
                && response.status().is_success()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("chromedriver did not start within 20 s at {}", self.url);
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where screenshots go: `<workspace>/target/screenshots/`.
fn screenshot_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot folder");
    dir
}

/// Polls a JavaScript condition until it is true (10 s at most).
async fn eventually(client: &Client, condition: &str) -> Result<(), String> {
    let script = format!("return Boolean({condition});");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match client.execute(&script, vec![]).await {
            Ok(serde_json::Value::Bool(true)) => return Ok(()),
            Ok(_) => {}
            Err(err) => return Err(format!("evaluating `{condition}` failed: {err}")),
        }
        if Instant::now() > deadline {
            let html = client.source().await.unwrap_or_default();
            return Err(format!("`{condition}` did not become true within 10 s; page:\n{html}"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Whether the page is still the one where the marker was set (no full reload since).
async fn marker_survived(client: &Client) -> Result<bool, String> {
    let value = client
        .execute("return window.__marker === 1;", vec![])
        .await
        .map_err(|e| e.to_string())?;
    Ok(value == json!(true))
}

/// Fills the add form and submits it with a click, as a person would.
async fn add_task(client: &Client, title: &str, priority: &str, due: &str, tags: &str) -> Result<(), String> {
    let err = |e: fantoccini::error::CmdError| e.to_string();
    let count_before = client
        .execute("return document.querySelectorAll('li.task').length;", vec![])
        .await
        .map_err(err)?;
    client
        .find(Locator::Id("new-title"))
        .await
        .map_err(err)?
        .send_keys(title)
        .await
        .map_err(err)?;
    // The optional fields are folded away; open them the way a person would.
    let open = client
        .execute("return document.querySelector('details.more').open;", vec![])
        .await
        .map_err(err)?;
    if open != json!(true) {
        client
            .find(Locator::Css("details.more > summary"))
            .await
            .map_err(err)?
            .click()
            .await
            .map_err(err)?;
    }
    client
        .find(Locator::Id("new-priority"))
        .await
        .map_err(err)?
        .select_by_value(priority)
        .await
        .map_err(err)?;
    // Typing into a date input depends on the browser's locale; set the value directly.
    client
        .execute(
            "document.getElementById('new-due_date').value = arguments[0];",
            vec![json!(due)],
        )
        .await
        .map_err(err)?;
    client
        .find(Locator::Id("new-tags"))
        .await
        .map_err(err)?
        .send_keys(tags)
        .await
        .map_err(err)?;
    client
        .find(Locator::Css("form.add-form button[type=submit]"))
        .await
        .map_err(err)?
        .click()
        .await
        .map_err(err)?;
    eventually(
        client,
        &format!("document.querySelectorAll('li.task').length > {count_before}"),
    )
    .await
}

async fn task_id_by_title(client: &Client, title: &str) -> Result<String, String> {
    let id = client
        .execute(
            "const li = [...document.querySelectorAll('li.task')]
                .find(li => li.querySelector('.task-title').textContent === arguments[0]);
             return li ? li.dataset.taskId : null;",
            vec![json!(title)],
        )
        .await
        .map_err(|e| e.to_string())?;
    id.as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("no task titled {title:?} on the page"))
}

/// The whole scenario; returns an error instead of panicking so the session is always closed.
async fn scenario(client: &Client, base: &str) -> Result<(), String> {
    let err = |e: fantoccini::error::CmdError| e.to_string();

    // Sign up through the form.
    client.goto(&format!("{base}/register")).await.map_err(err)?;
    client
        .find(Locator::Id("email"))
        .await
        .map_err(err)?
        .send_keys(&unique_email("chromium"))
        .await
        .map_err(err)?;
    client
        .find(Locator::Id("name"))
        .await
        .map_err(err)?
        .send_keys("Grace Hopper")
        .await
        .map_err(err)?;
    client
        .find(Locator::Id("password"))
        .await
        .map_err(err)?
        .send_keys(PASSWORD)
        .await
        .map_err(err)?;
    client
        .find(Locator::Css("form button[type=submit]"))
        .await
        .map_err(err)?
        .click()
        .await
        .map_err(err)?;
    eventually(client, "document.getElementById('board') !== null").await?;
    eventually(client, "window.htmx !== undefined").await?;
    let url = client.current_url().await.map_err(err)?;
    if url.path() != "/" {
        return Err(format!("after sign-up the browser is at {url}, not the task list"));
    }

    // From here on, a full page load would lose this marker.
    client.execute("window.__marker = 1;", vec![]).await.map_err(err)?;

    add_task(client, "Water the plants", "high", "2000-01-01", "home").await?;
    if !marker_survived(client).await? {
        return Err("adding a task reloaded the whole page".to_owned());
    }
    let id = task_id_by_title(client, "Water the plants").await?;
    let item = format!("document.getElementById('task-{id}')");
    eventually(client, &format!("{item}.classList.contains('is-overdue')")).await?;

    // Complete it: the item is swapped in place.
    client
        .find(Locator::Css(&format!("#task-{id} button.check")))
        .await
        .map_err(err)?
        .click()
        .await
        .map_err(err)?;
    eventually(client, &format!("{item} && {item}.dataset.completed === 'true'")).await?;
    if !marker_survived(client).await? {
        return Err("completing a task reloaded the whole page".to_owned());
    }

    // A few more tasks for a screenshot that shows what the list looks like in use.
    add_task(client, "Finish the quarterly report", "high", "2099-06-30", "work").await?;
    add_task(client, "Book dentist appointment", "medium", "", "health").await?;
    add_task(
        client,
        "Pay the electricity bill",
        "medium",
        "2001-02-03",
        "home, bills",
    )
    .await?;
    add_task(
        client,
        "Buy birthday present for Sam",
        "low",
        "2099-12-01",
        "family, shopping",
    )
    .await?;
    let today = client
        .execute(
            "const d = new Date(); return d.getUTCFullYear() + '-' + String(d.getUTCMonth() + 1).padStart(2, '0') + '-' + String(d.getUTCDate()).padStart(2, '0');",
            vec![],
        )
        .await
        .map_err(err)?;
    add_task(
        client,
        "Renew passport",
        "medium",
        today.as_str().unwrap_or(""),
        "admin",
    )
    .await?;
    if !marker_survived(client).await? {
        return Err("adding tasks reloaded the whole page".to_owned());
    }
    let dir = screenshot_dir();
    let png = client.screenshot().await.map_err(err)?;
    std::fs::write(dir.join("task-list.png"), &png).map_err(|e| e.to_string())?;
    client.set_window_size(400, 1200).await.map_err(err)?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let png = client.screenshot().await.map_err(err)?;
    std::fs::write(dir.join("task-list-phone.png"), &png).map_err(|e| e.to_string())?;
    client.set_window_size(1280, 1400).await.map_err(err)?;

    // Delete it: htmx asks for confirmation, then the item disappears in place.
    client
        .find(Locator::Css(&format!("#task-{id} a.danger")))
        .await
        .map_err(err)?
        .click()
        .await
        .map_err(err)?;
    let deadline = Instant::now() + Duration::from_secs(10);
    let text = loop {
        match client.get_alert_text().await {
            Ok(text) => break text,
            Err(_) if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(50)).await,
            Err(e) => return Err(format!("no confirmation dialog appeared: {e}")),
        }
    };
    if !text.contains("Water the plants") {
        return Err(format!("the confirmation does not name the task: {text:?}"));
    }
    client.accept_alert().await.map_err(err)?;
    eventually(client, &format!("{item} === null")).await?;
    eventually(client, "document.querySelectorAll('li.task').length === 5").await?;
    if !marker_survived(client).await? {
        return Err("deleting a task reloaded the whole page".to_owned());
    }
    Ok(())
}

#[tokio::test]
async fn sign_up_add_complete_delete_in_place_and_take_screenshots() {
    let driver = ChromeDriver::start();
    let (_backend, frontend) = start_both().await;
    driver.wait_until_up().await;

    let profile = tempfile::tempdir().expect("profile folder");
    let mut capabilities = fantoccini::wd::Capabilities::new();
    capabilities.insert("browserName".to_owned(), json!("chrome"));
    capabilities.insert(
        "goog:chromeOptions".to_owned(),
        json!({
            "binary": CHROMIUM,
            "args": [
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
                "--disable-dev-shm-usage",
                "--window-size=1280,1400",
                "--hide-scrollbars",
                format!("--user-data-dir={}", profile.path().display()),
            ],
        }),
    );
    // Plain HTTP to chromedriver: fantoccini's default TLS features stay off.
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let client = ClientBuilder::new(connector)
        .capabilities(capabilities)
        .connect(&driver.url)
        .await
        .unwrap_or_else(|err| panic!("cannot open a Chromium session ({err}); check: {INSTALL_HINT}"));

    let outcome = match scenario(&client, &frontend.url).await {
        Ok(()) => chat_scenario(&client, &frontend.url).await,
        failed => failed,
    };
    let _ = client.close().await;
    drop(driver);
    if let Err(message) = outcome {
        panic!("{message}");
    }
    for name in ["task-list.png", "task-list-phone.png", "chat.png"] {
        let bytes = std::fs::read(screenshot_dir().join(name)).expect("screenshot written");
        assert!(bytes.starts_with(b"\x89PNG"), "{name} is not a PNG");
    }
}

/// Clicks the element `css` selects.
async fn click(client: &Client, css: &str) -> Result<(), String> {
    let element = client.find(Locator::Css(css)).await.map_err(|e| e.to_string())?;
    element.click().await.map_err(|e| e.to_string())
}

/// Types a message into the chat form and sends it with a click.
async fn say(client: &Client, message: &str) -> Result<(), String> {
    let err = |e: fantoccini::error::CmdError| e.to_string();
    let before = client
        .execute("return document.querySelectorAll('#chat li.message').length;", vec![])
        .await
        .map_err(err)?;
    let field = client.find(Locator::Id("chat-message")).await.map_err(err)?;
    field.send_keys(message).await.map_err(err)?;
    click(client, "form.chat-form button[type=submit]").await?;
    // The question and the answer both appear.
    eventually(
        client,
        &format!("document.querySelectorAll('#chat li.message').length === {before} + 2"),
    )
    .await
}

/// The chat part: from the header link, add a task and complete it by chat, in place.
async fn chat_scenario(client: &Client, base: &str) -> Result<(), String> {
    let err = |e: fantoccini::error::CmdError| e.to_string();
    client.goto(&format!("{base}/")).await.map_err(err)?;
    click(client, "nav.sections a[href='/chat']").await?;
    eventually(client, "document.getElementById('chat-message') !== null").await?;
    eventually(client, "window.htmx !== undefined").await?;
    client.execute("window.__marker = 1;", vec![]).await.map_err(err)?;

    say(client, "add chat in chromium tomorrow, high priority #browser").await?;
    let change = "document.querySelector('#chat li.change[data-task-id]')";
    eventually(
        client,
        &format!("{change} !== null && {change}.textContent.includes('chat in chromium')"),
    )
    .await?;
    eventually(client, "location.pathname.startsWith('/chat/')").await?;
    // The list of past conversations was swapped too, with this one current.
    eventually(
        client,
        "document.querySelector('#conversations a[aria-current=page]')?.getAttribute('href') === location.pathname",
    )
    .await?;
    say(client, "complete chat in chromium").await?;
    eventually(
        client,
        "document.querySelector('#chat li.change[data-completed=\"true\"]') !== null",
    )
    .await?;
    if !marker_survived(client).await? {
        return Err("sending a chat message reloaded the whole page".to_owned());
    }
    let png = client.screenshot().await.map_err(err)?;
    std::fs::write(screenshot_dir().join("chat.png"), &png).map_err(|e| e.to_string())?;

    // The task list agrees.
    client.goto(&format!("{base}/")).await.map_err(err)?;
    let id = task_id_by_title(client, "chat in chromium").await?;
    eventually(
        client,
        &format!("document.getElementById('task-{id}').dataset.completed === 'true'"),
    )
    .await
}
