//! `cargo xtask history`: the release's revisions, newest last, with the images each one ran —
//! what `rollback <revision>` would return to. Read-only.

use anyhow::bail;
use clap::Args;
use serde::Serialize;
use serde_json::Value;
use xshell::Shell;

use crate::{
    exec::probe::{self, PROBE_TIMEOUT},
    k8s::{
        release::{Access, ReleaseArgs},
        revisions::Revision,
    },
    tools::helm::Helm,
};

/// Arguments of `cargo xtask history`.
#[derive(Debug, Clone, Args)]
pub struct History {
    /// Which release, where.
    #[command(flatten)]
    pub target: ReleaseArgs,
    /// Show at most this many revisions (the newest).
    #[arg(long, default_value_t = 10)]
    pub max: usize,
    /// Print the history as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// One revision and its images.
#[derive(Debug, Serialize)]
pub struct Entry {
    /// What Helm records.
    #[serde(flatten)]
    pub revision: Revision,
    /// `repository:tag` of the backend, if set in that revision's values.
    pub backend_image: Option<String>,
    /// `repository:tag` of the frontend, if set in that revision's values.
    pub frontend_image: Option<String>,
}

impl History {
    /// Prints the revisions.
    pub fn run(self, sh: &Shell) -> anyhow::Result<()> {
        let release = self.target.resolve(sh, Access::Read)?;
        let helm = Helm::find(sh)?;
        let Some(history) = release.history(sh, &helm)? else {
            bail!(
                "release {} is not installed in namespace {} (kube context {})",
                release.name,
                release.namespace,
                release.context
            );
        };
        let skip = history.len().saturating_sub(self.max);
        let entries: Vec<Entry> = history
            .into_iter()
            .skip(skip)
            .map(|revision| {
                let number = revision.revision.to_string();
                let probe = probe::run(
                    release.helm(sh, &helm, &["get", "values", &release.name]).args([
                        "--revision",
                        &number,
                        "-o",
                        "json",
                    ]),
                    PROBE_TIMEOUT,
                );
                let values: Value = serde_json::from_str(&probe.stdout).unwrap_or(Value::Null);
                Entry {
                    backend_image: image(&values, "backend"),
                    frontend_image: image(&values, "frontend"),
                    revision,
                }
            })
            .collect();
        if self.json {
            println!("{}", serde_json::to_string_pretty(&entries)?);
        } else {
            print!("{}", render(&entries));
        }
        Ok(())
    }
}

/// `repository:tag` of a component in a revision's values.
fn image(values: &Value, component: &str) -> Option<String> {
    let image = &values[component]["image"];
    let tag = image["tag"].as_str()?;
    let repository = image["repository"].as_str().unwrap_or(match component {
        "backend" => "todo-backend",
        _ => "todo-frontend",
    });
    Some(format!("{repository}:{tag}"))
}

/// The table for people.
pub fn render(entries: &[Entry]) -> String {
    let mut out = format!(
        "{:<8}  {:<20}  {:<15}  {:<12}  {:<28}  {:<28}  DESCRIPTION\n",
        "REVISION", "UPDATED", "STATUS", "CHART", "BACKEND", "FRONTEND"
    );
    for entry in entries {
        let updated: String = entry.revision.updated.chars().take(19).collect();
        out.push_str(&format!(
            "{:<8}  {:<20}  {:<15}  {:<12}  {:<28}  {:<28}  {}\n",
            entry.revision.revision,
            updated.replace('T', " "),
            entry.revision.status,
            entry.revision.chart,
            entry.backend_image.as_deref().unwrap_or("-"),
            entry.frontend_image.as_deref().unwrap_or("-"),
            entry.revision.description
        ));
    }
    out
}
