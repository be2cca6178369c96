//! `cargo xtask doctor`: the environment check that starts every troubleshooting session.
//!
//! For each tool the workflow uses it reports whether it is found, its version and whether that
//! version is supported; then the current kube context and whether it is a local cluster,
//! Minikube's state, size and addons, the nodes' architecture, and the free disk space. Every
//! warning or failure comes with the command that fixes it. It never changes anything: every
//! program it runs is a read-only query with a deadline (see [`crate::exec::probe`]).
//!
//! The work is split in two: [`facts::gather`] runs the queries and keeps what they said
//! ([`facts::Facts`]); [`checks::evaluate`] turns facts into checks without running anything, so
//! the rules are plain code ([`cluster`] holds the ones about the cluster and Minikube).

pub mod checks;
pub mod cluster;
pub mod facts;

use std::fmt::Write as _;

use anyhow::{Context, bail};
use clap::Args;
use serde::Serialize;
use xshell::Shell;

pub use checks::evaluate;
pub use facts::{Facts, gather};

use crate::progress;

/// Below this much free space the disk check warns: images, the Minikube node and cargo's
/// target directory each take several GiB.
pub const DISK_WARN_GIB: u64 = 10;
/// Below this much free space the disk check fails: image builds and loads will run out.
pub const DISK_FAIL_GIB: u64 = 2;

/// Arguments of `cargo xtask doctor`.
#[derive(Debug, Args)]
pub struct Doctor {
    /// Print the result as JSON on stdout (`{"ok": bool, "checks": [...]}`) instead of a table.
    #[arg(long)]
    pub json: bool,
}

impl Doctor {
    /// Checks the environment, prints the report, and fails when a required check failed.
    pub fn run(self, sh: &Shell) -> anyhow::Result<()> {
        let report = progress::step("probe tools and cluster (read-only)", || Ok(evaluate(&gather(sh))))?;
        if self.json {
            let json = serde_json::to_string_pretty(&report).context("writing the report as JSON")?;
            println!("{json}");
        } else {
            print!("{}", render_table(&report));
        }
        let failed = report.count(Status::Fail);
        if failed > 0 {
            bail!("{failed} required check(s) failed: see the `what to do` lines");
        }
        Ok(())
    }
}

/// The result of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Fine.
    Ok,
    /// Works, but worth fixing; does not fail the run.
    Warn,
    /// Something required is missing or broken; the run exits 1.
    Fail,
    /// Not applicable here (say, kind when the current context is Minikube).
    Skip,
}

impl Status {
    /// How the table shows it.
    pub fn label(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "FAIL",
            Status::Skip => "skip",
        }
    }
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// What was checked (`helm`, `kube-context`, `disk`, ...).
    pub name: &'static str,
    /// The verdict.
    pub status: Status,
    /// What was found.
    pub detail: String,
    /// The command (or step) that fixes a warning or failure.
    pub fix: Option<String>,
}

impl Check {
    fn ok(name: &'static str, detail: impl Into<String>) -> Check {
        Check {
            name,
            status: Status::Ok,
            detail: detail.into(),
            fix: None,
        }
    }

    fn skip(name: &'static str, detail: impl Into<String>) -> Check {
        Check {
            name,
            status: Status::Skip,
            detail: detail.into(),
            fix: None,
        }
    }

    fn warn(name: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            name,
            status: Status::Warn,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }

    fn fail(name: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            name,
            status: Status::Fail,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }

    /// A failure when `required`, otherwise a warning.
    fn problem(required: bool, name: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
        if required {
            Check::fail(name, detail, fix)
        } else {
            Check::warn(name, detail, fix)
        }
    }
}

/// Every check, and whether the environment is ready (no failures).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// True when no check failed (warnings allowed).
    pub ok: bool,
    /// The checks, in the order the table shows them.
    pub checks: Vec<Check>,
}

impl Report {
    fn new(checks: Vec<Check>) -> Report {
        Report {
            ok: checks.iter().all(|check| check.status != Status::Fail),
            checks,
        }
    }

    /// How many checks ended with `status`.
    pub fn count(&self, status: Status) -> usize {
        self.checks.iter().filter(|check| check.status == status).count()
    }
}

/// The report as an aligned plain-ASCII table, a `what to do` line under every warning and
/// failure, and a one-line summary.
pub fn render_table(report: &Report) -> String {
    const STATUS_WIDTH: usize = 6;
    let name_width = report
        .checks
        .iter()
        .map(|check| check.name.len())
        .chain(["CHECK".len()])
        .max()
        .unwrap_or_default();
    let mut out = String::new();
    let _ = writeln!(out, "{:STATUS_WIDTH$}  {:name_width$}  DETAIL", "STATUS", "CHECK");
    for check in &report.checks {
        let line = format!(
            "{:STATUS_WIDTH$}  {:name_width$}  {}",
            check.status.label(),
            check.name,
            check.detail
        );
        let _ = writeln!(out, "{}", line.trim_end());
        if let Some(fix) = check
            .fix
            .as_deref()
            .filter(|_| matches!(check.status, Status::Warn | Status::Fail))
        {
            let _ = writeln!(out, "{:STATUS_WIDTH$}  -> what to do: {fix}", "");
        }
    }
    let verdict = if !report.ok {
        "not ready: do what the FAIL lines say, then run `cargo xtask doctor` again"
    } else if report.count(Status::Warn) > 0 {
        "ready (the warnings are advice)"
    } else {
        "ready"
    };
    let _ = writeln!(
        out,
        "\n{} ok, {} warn, {} FAIL, {} skip: {verdict}",
        report.count(Status::Ok),
        report.count(Status::Warn),
        report.count(Status::Fail),
        report.count(Status::Skip)
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_puts_what_to_do_under_problems_only() {
        let report = Report::new(vec![
            Check::ok("helm", "v3.17.2 (Helm 3)"),
            Check::fail(
                "kube-context",
                "gke: not a local cluster",
                "kubectl config use-context minikube",
            ),
            Check {
                fix: Some("ignored".into()),
                ..Check::skip("kind", "not used")
            },
        ]);
        let table = render_table(&report);
        assert_eq!(
            table,
            "STATUS  CHECK         DETAIL\n\
             ok      helm          v3.17.2 (Helm 3)\n\
             FAIL    kube-context  gke: not a local cluster\n\
             \x20       -> what to do: kubectl config use-context minikube\n\
             skip    kind          not used\n\
             \n\
             1 ok, 0 warn, 1 FAIL, 1 skip: not ready: do what the FAIL lines say, then run `cargo xtask doctor` again\n"
        );
        assert!(table.is_ascii());
    }
}
