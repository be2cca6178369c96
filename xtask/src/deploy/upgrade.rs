//! The Helm side of a deploy: a release left `pending-*` by an interrupted run is refused or
//! undone, and the one `helm upgrade --install` command is put together.

use std::{path::PathBuf, time::Duration};

use anyhow::bail;
use xshell::{Cmd, Shell};

use super::Deploy;
use crate::{
    exec::runner::Runner,
    images::{ImageRecord, Service},
    k8s::{
        release::{self, CHART_DIR, Release},
        revisions::ReleaseState,
    },
    tools::helm::Helm,
};

impl Deploy {
    /// Refuses a release stuck `pending-*`, or undoes it with `--recover`.
    pub(super) fn settle(&self, sh: &Shell, runner: Runner, release: &Release, helm: &Helm) -> anyhow::Result<()> {
        let name = release.name.as_str();
        match release.state(sh, helm)? {
            ReleaseState::Missing => eprintln!("    release {name} is not installed yet: installing it"),
            ReleaseState::Settled(latest) => eprintln!(
                "    release {name} is at revision {} ({}): upgrading it",
                latest.revision, latest.status
            ),
            ReleaseState::Stuck { pending, last_good } => {
                let timeout = release::helm_duration(self.timeout);
                let undo = match last_good {
                    Some(revision) => format!("helm rollback {name} {revision}"),
                    None => format!("helm uninstall {name}"),
                };
                if !self.recover {
                    bail!(
                        "release {name} is stuck in {} at revision {}: an earlier run was interrupted midway, and \
                         Helm refuses to change the release until that is undone. Run again with --recover to undo \
                         it first ({undo})",
                        pending.status,
                        pending.revision
                    );
                }
                eprintln!(
                    "    release {name} is stuck in {} at revision {}; --recover: {undo}",
                    pending.status, pending.revision
                );
                let cmd = match last_good {
                    Some(revision) => {
                        let revision = revision.to_string();
                        release.helm(sh, helm, &["rollback", name, &revision])
                    }
                    None => release.helm(sh, helm, &["uninstall", name]),
                };
                runner.run_on_stderr(cmd.args([helm.wait_flag(), "--timeout", &timeout]))?;
            }
        }
        Ok(())
    }
}

/// `helm upgrade --install` with the values files, the images as built, the user's `--set`s, and
/// Helm's wait, rollback-on-failure and timeout.
pub(super) fn upgrade_command<'a>(
    sh: &'a Shell,
    release: &Release,
    helm: &Helm,
    values: &[PathBuf],
    images: &[ImageRecord],
    sets: &[String],
    timeout: Duration,
) -> Cmd<'a> {
    let mut args: Vec<String> = Vec::new();
    for file in values {
        args.extend(["--values".to_owned(), file.display().to_string()]);
    }
    for image in images {
        let component = image.service.name();
        let suffix = format!(":{}", image.tag);
        let repository = image.reference.strip_suffix(&suffix).unwrap_or(&image.name);
        // --set-string: a content hash can be all digits, which --set would turn into a number.
        args.extend([
            "--set-string".to_owned(),
            format!("{component}.image.repository={repository}"),
            "--set-string".to_owned(),
            format!("{component}.image.tag={}", image.tag),
        ]);
    }
    let git_sha = images
        .iter()
        .find(|image| image.service == Service::Backend)
        .and_then(|image| image.revision.as_deref())
        .filter(|sha| sha.len() == 40 && sha.bytes().all(|b| b.is_ascii_hexdigit()));
    if let Some(sha) = git_sha {
        args.extend(["--set-string".to_owned(), format!("backend.gitSha={sha}")]);
    }
    for set in sets {
        args.extend(["--set".to_owned(), set.clone()]);
    }
    release
        .helm(sh, helm, &["upgrade", "--install", &release.name, CHART_DIR])
        .args(args)
        .args([
            helm.wait_flag(),
            helm.rollback_on_failure_flag(),
            "--cleanup-on-fail",
            "--timeout",
            &release::helm_duration(timeout),
        ])
}
