//! Stopping Helm without leaving the release stuck: Ctrl-C forwarded to Helm once, and a
//! signalled Helm waited for while it rolls back.
//!
//! Helm (3.7+ and 4) catches SIGINT/SIGTERM once: it prints `Release <name> has been cancelled.`
//! on stdout, marks the revision failed and, with `--atomic`/`--rollback-on-failure`, rolls back
//! (a first install is uninstalled), waiting up to its `--timeout` again; further signals are
//! ignored. Only SIGKILL stops it midway, which leaves the release `pending-upgrade` or
//! `pending-rollback`. So deploy waits for it, for a stated and bounded time, and keeps it safe
//! meanwhile: Helm runs in a process group of its own (the terminal's Ctrl-C reaches only us, and
//! we forward it once) and writes to files, so it can finish even if we stop waiting.

use std::{
    fs,
    path::PathBuf,
    thread,
    time::{Duration, Instant},
};

use nix::sys::signal::Signal;

use super::watch::{Rollout, show_helm_output};
use crate::{
    exec::{background::Background, interrupt::Guarded},
    k8s::{
        release,
        revisions::{ReleaseState, Revision},
    },
    progress::human,
    timestamps,
};

/// Beyond Helm's own `--timeout` (which bounds its rollback's wait), the time its API calls may take.
pub const ROLLBACK_MARGIN: Duration = Duration::from_secs(60);

/// The error of a deploy stopped by Ctrl-C (no diagnostics bundle is collected for it).
#[derive(Debug)]
pub struct Interrupted(pub String);

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Interrupted {}

/// A fresh folder under `target/helm-output/` for one Helm run's stdout and stderr.
pub(super) fn helm_output_dir() -> PathBuf {
    let name = format!("{}-{}", timestamps::compact(timestamps::now_unix()), std::process::id());
    crate::target_dir().join("helm-output").join(name)
}

impl Rollout<'_> {
    /// How long a signalled Helm may take to roll back before it is killed.
    pub(super) fn rollback_wait(&self) -> Duration {
        self.deploy.timeout + ROLLBACK_MARGIN
    }

    /// Ctrl-C while Helm waits: forward it once, wait for Helm's rollback, and say where the
    /// release stands.
    pub(super) fn interrupted(&mut self, mut helm_run: Background, interrupts: &Guarded) -> anyhow::Error {
        eprintln!(
            "==> interrupted: asking Helm to cancel; it marks the revision failed and rolls back ({})",
            self.helm.rollback_on_failure_flag()
        );
        if let Err(err) = helm_run.signal(Signal::SIGINT) {
            eprintln!("    ({err:#})");
        }
        let name = &self.release.name;
        if self.await_rollback(helm_run, interrupts).is_none() {
            return Interrupted(format!(
                "interrupted: release {name} was left to Helm, which had not finished rolling it back (see above)"
            ))
            .into();
        }
        let state = match self.release.state(self.sh, self.helm) {
            Ok(ReleaseState::Missing) => "was a first install, and Helm removed it".to_owned(),
            Ok(ReleaseState::Settled(latest)) => settled(&latest),
            Ok(ReleaseState::Stuck { pending, .. }) => format!(
                "is left {} at revision {}: run `cargo xtask deploy --recover`",
                pending.status, pending.revision
            ),
            Err(err) => format!("is in a state that could not be read ({err:#}): check with `cargo xtask status`"),
        };
        Interrupted(format!("interrupted: release {name} {state}")).into()
    }

    /// Waits for a signalled Helm to finish rolling back, at most [`Rollout::rollback_wait`]; a
    /// (further) Ctrl-C stops the wait and leaves Helm to finish in the background; at the
    /// deadline Helm is killed. Prints what Helm said and returns it, if it finished.
    pub(super) fn await_rollback(&self, mut helm_run: Background, interrupts: &Guarded) -> Option<String> {
        let seen = interrupts.signals();
        let wait = self.rollback_wait();
        eprintln!(
            "    waiting up to {} for Helm to finish (its --timeout {} for the rollback, plus {}s); Ctrl-C again \
             stops waiting, and Helm then finishes in the background",
            human(wait),
            release::helm_duration(self.deploy.timeout),
            ROLLBACK_MARGIN.as_secs()
        );
        let deadline = Instant::now() + wait;
        let pending = "the release stays pending-upgrade or pending-rollback, and deploy refuses to change it";
        while !matches!(helm_run.try_finished(), Ok(Some(_)) | Err(_)) {
            if interrupts.signals() > seen {
                let output = helm_run
                    .output_dir()
                    .map_or_else(String::new, |dir| format!("; its output goes to {}", dir.display()));
                eprintln!(
                    "==> stopped waiting: Helm (pid {}) is still rolling back release {} in the background{output}. \
                     Until it finishes {pending}: check with `cargo xtask status`, and if it stays pending, run \
                     `cargo xtask deploy --recover`",
                    helm_run.pid(),
                    self.release.name
                );
                helm_run.leave_running();
                return None;
            }
            if Instant::now() >= deadline {
                helm_run.kill();
                show_helm_output(&helm_run, self.redactor);
                eprintln!(
                    "==> Helm did not finish rolling back within {}: killed it. Unless it got further than it \
                     said, {pending}: run `cargo xtask deploy --recover`",
                    human(wait)
                );
                return None;
            }
            thread::sleep(Duration::from_millis(100));
        }
        let output = show_helm_output(&helm_run, self.redactor);
        discard_output(&helm_run);
        Some(output)
    }
}

/// Where a release that settled after the cancellation stands: `rolled back to revision 2`.
fn settled(latest: &Revision) -> String {
    match latest.description.strip_prefix("Rollback to ") {
        Some(to) if latest.status == "deployed" => format!(
            "rolled back to revision {to} (now revision {}, deployed); nothing changed",
            latest.revision
        ),
        _ => format!(
            "is at revision {} ({}: {})",
            latest.revision, latest.status, latest.description
        ),
    }
}

/// Removes the files of a Helm run whose output was read and shown.
pub(super) fn discard_output(helm_run: &Background) {
    if let Some(dir) = helm_run.output_dir() {
        let _ = fs::remove_dir_all(dir);
    }
}
