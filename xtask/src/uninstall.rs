//! `cargo xtask uninstall [--purge]`: remove the release, keeping its data.
//!
//! What `helm uninstall` deletes is decided by the manifest stored with the release, not by the
//! live objects: a PersistentVolumeClaim survives only if the chart rendered it with
//! `helm.sh/resource-policy: keep` (the chart does, unless `database.sqlite.keepOnUninstall` is
//! false). So the stored manifest is read first: without `--purge`, a claim Helm would delete
//! stops the uninstall before anything changes. The Secret is not the chart's, so Helm never
//! touches it; PostgreSQL's claims come from a StatefulSet template, so Helm never touches them
//! either. `--purge` deletes all of these explicitly (after confirmation); the namespace stays.

use std::{
    io::{BufRead, IsTerminal, Write},
    time::Duration,
};

use anyhow::{Context, bail};
use clap::Args;
use xshell::Shell;

use crate::k8s::objects::{self, PersistentVolumeClaim};
use crate::{
    exec::runner::Runner,
    k8s::{
        release::{self, Access, Release, ReleaseArgs, WRITE_TIMEOUT},
        secret::SECRET_NAME,
    },
    manifests,
    progress::step,
    tools::helm::Helm,
};

/// The annotation that makes `helm uninstall` keep an object.
pub const KEEP_ANNOTATION: &str = "helm.sh/resource-policy";

/// Arguments of `cargo xtask uninstall`.
#[derive(Debug, Clone, Args)]
pub struct Uninstall {
    /// Also delete the data (the release's PersistentVolumeClaims) and the Secret.
    #[arg(long)]
    pub purge: bool,
    /// Do not ask before `--purge` deletes data.
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Which release, where.
    #[command(flatten)]
    pub target: ReleaseArgs,
    /// How long Helm may take to delete the release's objects.
    #[arg(long, default_value = "180s", value_parser = release::parse_duration)]
    pub timeout: Duration,
    /// Print the commands that would change the cluster, and run none.
    #[arg(long)]
    pub dry_run: bool,
}

/// A claim in the release's stored manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredClaim {
    /// Its name.
    pub name: String,
    /// Whether Helm keeps it on uninstall.
    pub kept: bool,
}

impl Uninstall {
    /// Uninstalls (and purges), and says what was removed and kept.
    pub fn run(self, sh: &Shell) -> anyhow::Result<()> {
        println!("{}", self.uninstall(sh)?);
        Ok(())
    }

    /// Uninstalls (and purges); returns what was removed and kept, for the caller to print
    /// (`dev --cleanup` prints it on stderr, its stdout being JSON lines).
    pub fn uninstall(&self, sh: &Shell) -> anyhow::Result<String> {
        let runner = Runner::new(self.dry_run);
        let release = self.target.resolve(sh, Access::Change)?;
        let helm = Helm::find(sh)?;
        let data = Data::of(sh, &release, &helm)?;
        if self.purge {
            self.purge(sh, runner, &release, &helm, &data)
        } else {
            self.uninstall_keeping_data(sh, runner, &release, &helm, &data)
        }
    }

    /// `helm uninstall`, refused when Helm would delete the data; the data and the Secret stay.
    fn uninstall_keeping_data(
        &self,
        sh: &Shell,
        runner: Runner,
        release: &Release,
        helm: &Helm,
        data: &Data,
    ) -> anyhow::Result<String> {
        let (name, installed, stored, claims) = (release.name.as_str(), data.installed, &data.stored, &data.claims);
        let doomed: Vec<&str> = stored.iter().filter(|c| !c.kept).map(|c| c.name.as_str()).collect();
        if !doomed.is_empty() {
            bail!(
                "helm uninstall would delete the data in PersistentVolumeClaim {} (release {name} was deployed \
                 with database.sqlite.keepOnUninstall=false). Nothing was changed. To keep the data, deploy \
                 once with --set database.sqlite.keepOnUninstall=true and uninstall again; to delete it, \
                 use --purge",
                doomed.join(", ")
            );
        }
        if !installed {
            return Ok(format!(
                "release {name} is not installed in namespace {}: nothing to uninstall",
                release.namespace
            ));
        }
        step(&format!("helm uninstall {name}"), || {
            helm_uninstall(sh, runner, release, helm, self.timeout)
        })?;
        let kept = if claims.is_empty() {
            String::new()
        } else {
            format!("the data (PersistentVolumeClaim {}) and ", claims.join(", "))
        };
        Ok(format!(
            "release {name} uninstalled from namespace {}; kept {kept}Secret {SECRET_NAME}. \
             `cargo xtask deploy` picks them up again; `cargo xtask uninstall --purge` deletes them",
            release.namespace
        ))
    }

    /// Asks first (unless `--yes`), then removes the release, its data and the Secret.
    fn purge(&self, sh: &Shell, runner: Runner, release: &Release, helm: &Helm, data: &Data) -> anyhow::Result<String> {
        let (name, installed, claims) = (release.name.as_str(), data.installed, &data.claims);
        let what = if claims.is_empty() {
            format!("Secret {SECRET_NAME}")
        } else {
            format!(
                "its data (PersistentVolumeClaim {}) and Secret {SECRET_NAME}",
                claims.join(", ")
            )
        };
        if !self.yes && !self.dry_run {
            confirm(release, &what)?;
        }
        if installed {
            step(&format!("helm uninstall {name}"), || {
                helm_uninstall(sh, runner, release, helm, self.timeout)
            })?;
        }
        step("delete the data and the Secret", || {
            if !claims.is_empty() {
                runner.run_on_stderr(
                    release
                        .kubectl(sh, WRITE_TIMEOUT)
                        .args(["delete", "persistentvolumeclaim"])
                        .args(claims)
                        .args(["--ignore-not-found", "--timeout=120s"]),
                )?;
            }
            runner.run_on_stderr(release.kubectl(sh, WRITE_TIMEOUT).args([
                "delete",
                "secret",
                SECRET_NAME,
                "--ignore-not-found",
            ]))
        })?;
        Ok(format!(
            "release {name} purged: deleted {}{what}; namespace {} is kept (delete it with `kubectl --context {} \
             delete namespace {}`)",
            if installed { "the release, " } else { "" },
            release.namespace,
            release.context,
            release.namespace
        ))
    }
}

/// What the release stores: whether it is installed, the claims its manifest holds (and whether
/// Helm keeps each), and every claim of the release that exists.
struct Data {
    installed: bool,
    stored: Vec<StoredClaim>,
    claims: Vec<String>,
}

impl Data {
    fn of(sh: &Shell, release: &Release, helm: &Helm) -> anyhow::Result<Self> {
        let installed = release.history(sh, helm)?.is_some();
        let stored = if installed {
            let manifest = release.query_helm(sh, helm, &["get", "manifest", &release.name])?;
            stored_claims(&manifest)?
        } else {
            Vec::new()
        };
        let selector = release.selector();
        let mut claims =
            live_claims(&release.query(sh, &["get", "persistentvolumeclaims", "-l", &selector, "-o", "json"])?)?;
        for claim in &stored {
            if !claims.contains(&claim.name) {
                claims.push(claim.name.clone());
            }
        }
        Ok(Self {
            installed,
            stored,
            claims,
        })
    }
}

fn helm_uninstall(sh: &Shell, runner: Runner, release: &Release, helm: &Helm, timeout: Duration) -> anyhow::Result<()> {
    let timeout = release::helm_duration(timeout);
    runner.run_on_stderr(release.helm(sh, helm, &["uninstall", &release.name]).args([
        helm.wait_flag(),
        "--timeout",
        &timeout,
    ]))
}

/// Asks for the release's name on the terminal.
fn confirm(release: &Release, what: &str) -> anyhow::Result<()> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        bail!(
            "--purge deletes {what} of release {}; with no terminal to confirm on, pass --yes",
            release.name
        );
    }
    eprint!(
        "This deletes release {} in namespace {} (kube context {}), {what}.\nType the release name to confirm: ",
        release.name, release.namespace, release.context
    );
    std::io::stderr().flush()?;
    let mut answer = String::new();
    stdin
        .lock()
        .read_line(&mut answer)
        .context("reading the confirmation")?;
    if answer.trim() != release.name {
        bail!("not confirmed: nothing was deleted");
    }
    Ok(())
}

/// The claims in `helm get manifest` and whether Helm keeps each.
pub fn stored_claims(manifest: &str) -> anyhow::Result<Vec<StoredClaim>> {
    Ok(manifests::Rendered::parse(manifest)?
        .claims
        .into_iter()
        .map(|claim| StoredClaim {
            name: objects::name(&claim.metadata).to_owned(),
            kept: claim
                .metadata
                .annotations
                .as_ref()
                .and_then(|annotations| annotations.get(KEEP_ANNOTATION))
                .is_some_and(|policy| policy == "keep"),
        })
        .collect())
}

/// The names in `kubectl get persistentvolumeclaims -o json`.
fn live_claims(json: &str) -> anyhow::Result<Vec<String>> {
    let claims: Vec<PersistentVolumeClaim> = objects::parse_items(json, "persistentvolumeclaims")?;
    Ok(claims.into_iter().filter_map(|claim| claim.metadata.name).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_claims_say_whether_helm_keeps_them() {
        let manifest = "---\n# Source: todo/templates/backend-persistentvolumeclaim.yaml\napiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: todo-backend\n  annotations:\n    helm.sh/resource-policy: keep\nspec:\n  accessModes: [ReadWriteOnce]\n---\napiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: scratch\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: todo-backend\n";
        assert_eq!(
            stored_claims(manifest).unwrap(),
            vec![
                StoredClaim {
                    name: "todo-backend".into(),
                    kept: true
                },
                StoredClaim {
                    name: "scratch".into(),
                    kept: false
                },
            ]
        );
    }
}
