//! `cargo xtask rollback [<revision>]`: return the release to an earlier revision (by default the
//! newest good one before the current), waiting until its pods are ready.

use std::time::Duration;

use anyhow::bail;
use clap::Args;
use xshell::Shell;

use crate::{
    exec::runner::Runner,
    k8s::release::{self, Access, ReleaseArgs},
    progress::step,
    tools::helm::Helm,
};

/// Arguments of `cargo xtask rollback`.
#[derive(Debug, Clone, Args)]
pub struct Rollback {
    /// The revision to return to [default: the newest deployed one before the current].
    pub revision: Option<u32>,
    /// Which release, where.
    #[command(flatten)]
    pub target: ReleaseArgs,
    /// How long the pods may take to become ready (`180s`, `3m`).
    #[arg(long, default_value = "180s", value_parser = release::parse_duration)]
    pub timeout: Duration,
    /// Print the command that would change the release, and run none.
    #[arg(long)]
    pub dry_run: bool,
}

impl Rollback {
    /// Rolls back and reports the new revision.
    pub fn run(self, sh: &Shell) -> anyhow::Result<()> {
        let runner = Runner::new(self.dry_run);
        let release = self.target.resolve(sh, Access::Change)?;
        let helm = Helm::find(sh)?;
        let Some(history) = release.history(sh, &helm)? else {
            bail!(
                "release {} is not installed in namespace {}: nothing to roll back",
                release.name,
                release.namespace
            );
        };
        let current = history.last().map_or(0, |r| r.revision);
        let target = match self.revision {
            Some(revision) if history.iter().any(|r| r.revision == revision) => revision,
            Some(revision) => {
                let known: Vec<String> = history.iter().map(|r| r.revision.to_string()).collect();
                bail!(
                    "release {} has no revision {revision} (it has {}): see `cargo xtask history`",
                    release.name,
                    known.join(", ")
                );
            }
            None => match history
                .iter()
                .rev()
                .find(|r| r.revision < current && matches!(r.status.as_str(), "deployed" | "superseded"))
            {
                Some(previous) => previous.revision,
                None => bail!(
                    "release {} has no earlier good revision to return to (see `cargo xtask history`)",
                    release.name
                ),
            },
        };
        let revision = target.to_string();
        let timeout = release::helm_duration(self.timeout);
        step(
            &format!("roll release {} back to revision {target}", release.name),
            || {
                runner.run_on_stderr(release.helm(sh, &helm, &["rollback", &release.name, &revision]).args([
                    helm.wait_flag(),
                    "--cleanup-on-fail",
                    "--timeout",
                    &timeout,
                ]))
            },
        )?;
        if self.dry_run {
            return Ok(());
        }
        let now = release.history(sh, &helm)?.and_then(|history| history.last().cloned());
        match now {
            Some(latest) => println!(
                "release {} is at revision {} ({}: {})",
                release.name, latest.revision, latest.status, latest.description
            ),
            None => println!("release {} rolled back to revision {target}", release.name),
        }
        Ok(())
    }
}
