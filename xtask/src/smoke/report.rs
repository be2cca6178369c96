//! The smoke report: each step with its duration and, for a failure, the request, the status
//! and the first lines of the answer. Printed one way by every command that runs the checks.

use std::{path::Path, time::Duration};

use anyhow::Context;
use serde::Serialize;

use super::client::StepError;
use crate::progress::human;

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

    /// Prints the human report and writes the JSON one to `json` (`-` for stdout). The human
    /// report goes to stderr when stdout carries JSON: the JSON report, or (with
    /// `stdout_is_machine_output`) the calling command's own.
    pub fn publish(&self, json: Option<&Path>, stdout_is_machine_output: bool) -> anyhow::Result<()> {
        let json_to_stdout = json.is_some_and(|path| path.as_os_str() == "-");
        if json_to_stdout || stdout_is_machine_output {
            eprint!("{}", self.render());
        } else {
            print!("{}", self.render());
        }
        let Some(path) = json else { return Ok(()) };
        let text = serde_json::to_string_pretty(self)?;
        if json_to_stdout {
            println!("{text}");
            Ok(())
        } else {
            std::fs::write(path, text + "\n").with_context(|| format!("writing the report to {}", path.display()))
        }
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

#[cfg(test)]
mod tests {
    use super::*;

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
