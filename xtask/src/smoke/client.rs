//! The HTTP client of the smoke checks: a browser without JavaScript. It keeps cookies in a real
//! cookie store (ureq's, RFC 6265 rules: expiry, path, host), reads pages with an HTML parser,
//! and never follows a redirect on its own, so each one is checked.

use std::time::{Duration, Instant};

use scraper::{Html, Selector};
use ureq::{Agent, http::Uri};

use serde::Serialize;

/// A response, with what was asked for.
#[derive(Debug, Clone)]
pub struct Reply {
    /// `METHOD URL`, for reports.
    pub request: String,
    /// The HTTP status.
    pub status: u16,
    /// The `Location` header, if any.
    pub location: Option<String>,
    /// The body (at most 5 MiB), empty when unreadable.
    pub body: String,
}

impl Reply {
    /// The body parsed as an HTML document.
    pub fn html(&self) -> Html {
        Html::parse_document(&self.body)
    }
}

#[cfg(test)]
impl Reply {
    /// A 200 answer to `GET /` with this body, as the tests' pages.
    pub fn page(body: &str) -> Self {
        Reply {
            request: "GET /".into(),
            status: 200,
            location: None,
            body: body.into(),
        }
    }
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
    /// An error without a request (the request could not be made).
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            request: None,
            status: None,
            body: None,
        }
    }

    /// An error showing the request and what came back.
    pub fn from_reply(message: impl Into<String>, reply: &Reply) -> Self {
        Self {
            message: message.into(),
            request: Some(reply.request.clone()),
            status: Some(reply.status),
            body: Some(first_lines(&reply.body, 8)),
        }
    }
}

fn first_lines(text: &str, n: usize) -> String {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .take(n)
        .map(|l| l.chars().take(200).collect::<String>())
        .collect::<Vec<_>>()
        .join("\n")
}

/// A cookie-keeping HTTP client for one base URL.
pub struct Browser {
    agent: Agent,
    base: String,
}

impl Browser {
    /// A client for `base`; `timeout` bounds each request (at most 30 s).
    pub fn new(base: &str, timeout: Duration) -> Self {
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
        }
    }

    /// The host the cookies of this client are kept for.
    fn host(&self) -> String {
        self.base
            .parse::<Uri>()
            .ok()
            .and_then(|uri| uri.host().map(str::to_owned))
            .unwrap_or_default()
    }

    /// Drops a cookie (set with `Path=/`), as a browser does when its session ends.
    pub fn forget_cookie(&mut self, name: &str) {
        self.agent.cookie_jar_lock().remove(&self.host(), "/", name);
    }

    /// Whether the store holds an unexpired cookie of that name for this host.
    fn has_cookie(&self, name: &str) -> bool {
        self.agent.cookie_jar_lock().get(&self.host(), "/", name).is_some()
    }

    /// Fails, showing `reply`, unless the cookie `name` is set.
    pub fn require_cookie(&self, name: &str, reply: &Reply) -> Result<(), StepError> {
        if self.has_cookie(name) {
            Ok(())
        } else {
            Err(StepError::from_reply(format!("no {name} cookie was set"), reply))
        }
    }

    fn finish(
        request: String,
        result: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<Reply, StepError> {
        let mut response = result.map_err(|err| StepError {
            request: Some(request.clone()),
            ..StepError::new(format!("no answer: {err}"))
        })?;
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

    /// `GET base+path`.
    pub fn get(&mut self, path: &str) -> Result<Reply, StepError> {
        let url = format!("{}{path}", self.base);
        Self::finish(format!("GET {url}"), self.agent.get(&url).call())
    }

    /// `GET base+path`, which must answer 200.
    pub fn get_ok(&mut self, path: &str) -> Result<Reply, StepError> {
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

    /// `POST base+path` with a form, from this origin (as a browser's form submission is).
    pub fn post_form(&mut self, path: &str, fields: &[(&str, &str)]) -> Result<Reply, StepError> {
        let url = format!("{}{path}", self.base);
        let request = self.agent.post(&url).header("origin", self.base.as_str());
        Self::finish(format!("POST {url}"), request.send_form(fields.iter().copied()))
    }

    /// Loads a page and reads its CSRF token (the hidden `csrf_token` field of its forms).
    pub fn csrf_from(&mut self, path: &str) -> Result<String, StepError> {
        let page = self.get_ok(path)?;
        csrf_token(&page).ok_or_else(|| StepError::from_reply(format!("no CSRF token on {path}"), &page))
    }

    /// Polls until `path` answers 200 or the deadline passes (start-up is a legitimate wait).
    pub fn wait_for_ok(&mut self, path: &str, deadline: Instant) -> Result<Reply, StepError> {
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

/// The value of the page's first non-empty `csrf_token` form field.
fn csrf_token(page: &Reply) -> Option<String> {
    let field = Selector::parse(r#"input[name="csrf_token"]"#).ok()?;
    page.html()
        .select(&field)
        .filter_map(|input| input.value().attr("value"))
        .find(|value| !value.is_empty())
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_csrf_token_is_read_from_the_form_and_unescaped() {
        let html = r#"<form method="post"><input type="hidden" name="csrf_token" value="a&amp;b&quot;c"></form>"#;
        assert_eq!(csrf_token(&Reply::page(html)).as_deref(), Some("a&b\"c"));
        assert_eq!(csrf_token(&Reply::page("<form></form>")), None);
    }
}
