//! Watching the rollout while Helm waits: the pods and events every [`POLL_INTERVAL`], a line
//! of progress when it changes, and the diagnosis as soon as a failure is certain — then the
//! evidence is kept and Helm is stopped, so it marks the revision failed and rolls back.

use std::{
    collections::BTreeSet,
    path::Path,
    process::ExitStatus,
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use nix::sys::signal::Signal;
use xshell::{Cmd, Shell};

use super::{
    Deploy, Outcome,
    bundle::{Evidence, crash_log},
    cancel::{discard_output, helm_output_dir},
    diagnose::{self, Baseline, Cause, Lingering, Problem, Stage, View},
};
use crate::{
    exec::{background::Background, interrupt::Guarded},
    images::BuildRecord,
    k8s::{
        node_images::Loader,
        objects::{self, Event, Pod},
        release::Release,
    },
    progress::human,
    redact::Redactor,
    timestamps,
    tools::helm::Helm,
};

/// How often the pods are looked at while Helm waits.
pub const POLL_INTERVAL: Duration = Duration::from_secs(2);
/// Lines of a crashed container's previous log shown with the diagnosis.
pub const CRASH_LOG_LINES: u32 = 30;

/// What the pods looked like at one moment.
pub(super) struct Snapshot {
    pods_json: String,
    events_json: String,
    pods: Vec<Pod>,
    events: Vec<Event>,
}

/// One rollout under watch: the deploy's settings, where it goes, and what it found so far.
pub(super) struct Rollout<'a> {
    pub deploy: &'a Deploy,
    pub sh: &'a Shell,
    pub release: &'a Release,
    pub helm: &'a Helm,
    pub redactor: &'a Redactor,
    pub outcome: &'a mut Outcome,
}

/// What the watch remembers between polls.
struct Watched {
    /// The release's pods just before the upgrade.
    baseline: Baseline,
    /// Since when each container shows a transient error.
    lingering: Lingering,
    /// The last snapshot read.
    last: Option<Snapshot>,
    /// The pods from before the upgrade (and containers) whose trouble was already noted.
    noted: BTreeSet<(String, Option<String>)>,
}

impl Watched {
    /// How the pods look from here, at `stage`.
    fn view(&self, stage: Stage, at: Instant, grace: Duration) -> View<'_> {
        View {
            stage,
            baseline: &self.baseline,
            lingering: &self.lingering,
            at,
            grace,
            now: timestamps::now_unix(),
        }
    }

    /// What goes wrong with a pod from before the upgrade that this deploy keeps (its image is
    /// the one deployed), once per container: not a reason to stop Helm, since the upgrade may be
    /// replacing it (`maxUnavailable: 0` keeps the rollout going), but worth a note.
    fn kept_pod_trouble(
        &mut self,
        now: &Snapshot,
        at: Instant,
        hint: &dyn Fn(&str) -> Option<String>,
    ) -> Option<String> {
        let kept: Vec<Pod> = now
            .pods
            .iter()
            .filter(|pod| self.baseline.existed(pod))
            .cloned()
            .collect();
        let view = self.view(Stage::Settled, at, Duration::ZERO);
        let problem = diagnose::diagnose_in(&kept, &now.events, &view, hint)?;
        let first = self.noted.insert((problem.pod.clone(), problem.container.clone()));
        first.then_some(problem.reason)
    }
}

impl Rollout<'_> {
    /// Runs Helm in the background and watches the pods until Helm succeeds, or a failure is
    /// certain (then Helm is stopped and rolls back), or Helm gives up. Returns the final pods
    /// of the rollout (not the previous revision's).
    pub fn watch(&mut self, loader: &Loader, record: &BuildRecord, upgrade: Cmd<'_>) -> anyhow::Result<Vec<Pod>> {
        let mut watched = Watched {
            baseline: baseline(self.sh, self.release, record)?,
            lingering: Lingering::default(),
            last: None,
            noted: BTreeSet::new(),
        };
        eprintln!("$ {upgrade}");
        let started = Instant::now();
        // From here Ctrl-C is forwarded to Helm once and its rollback waited for (see `cancel`).
        let interrupts = Guarded::start();
        let mut helm_run = Background::start_apart(upgrade, &helm_output_dir(), self.rollback_wait())?;
        let hint = |image: &str| loader.hint_for(record, image);
        // Helm ends at its own --timeout (plus its rollback); this only guards against a hang.
        let give_up = started + self.deploy.timeout * 2 + Duration::from_secs(120);
        let mut shown = String::new();
        let mut unreadable = false;
        loop {
            if let Some(status) = helm_run.try_finished()? {
                return self.helm_finished(status, &helm_run, &watched, &hint);
            }
            if interrupts.signals() > 0 {
                return Err(self.interrupted(helm_run, &interrupts));
            }
            if Instant::now() > give_up {
                eprintln!(
                    "==> helm did not finish within {}: stopping it",
                    human(give_up - started)
                );
                let _ = helm_run.signal(Signal::SIGTERM);
                self.await_rollback(helm_run, &interrupts);
                bail!(
                    "helm did not finish within {}; if `cargo xtask status` shows the release pending, run again \
                     with --recover",
                    human(give_up - started)
                );
            }
            match snapshot(self.sh, self.release) {
                Ok(now) => {
                    let at = Instant::now();
                    watched.lingering.observe(&now.pods, at);
                    let view = watched.view(Stage::Watching, at, self.deploy.pull_grace);
                    if let Some(problem) = diagnose::diagnose_in(&now.pods, &now.events, &view, &hint) {
                        return Err(self.stop_early(problem, &now, helm_run, &interrupts));
                    }
                    if let Some(trouble) = watched.kept_pod_trouble(&now, at, &hint) {
                        eprintln!(
                            "    note: {} (a pod from before this deploy: not charged to it, Helm keeps waiting)",
                            self.redactor.redact(&trouble)
                        );
                    }
                    let line = diagnose::progress(&now.pods, &watched.baseline);
                    if line != shown {
                        eprintln!("    {line} ({})", human(started.elapsed()));
                        shown = line;
                    }
                    watched.last = Some(now);
                }
                Err(err) if !unreadable => {
                    eprintln!("    (cannot read the pods right now: {err:#}; Helm keeps waiting)");
                    unreadable = true;
                }
                Err(_) => {}
            }
            let next = Instant::now() + POLL_INTERVAL;
            while Instant::now() < next && helm_run.try_finished()?.is_none() && interrupts.signals() == 0 {
                thread::sleep(Duration::from_millis(100));
            }
        }
    }

    /// Helm ended by itself: success, or it gave up (its timeout, a rendering or API error);
    /// then whatever keeps the rollout's pods from being ready is the reason.
    fn helm_finished(
        &mut self,
        status: ExitStatus,
        helm_run: &Background,
        watched: &Watched,
        hint: &dyn Fn(&str) -> Option<String>,
    ) -> anyhow::Result<Vec<Pod>> {
        let helm_output = show_helm_output(helm_run, self.redactor);
        discard_output(helm_run);
        let baseline = &watched.baseline;
        if status.success() {
            let pods = snapshot(self.sh, self.release).map(|s| s.pods).unwrap_or_default();
            return Ok(pods.into_iter().filter(|pod| baseline.is_rolling_out(pod)).collect());
        }
        let now = snapshot(self.sh, self.release).ok();
        let last = watched.last.as_ref();
        let view = watched.view(Stage::Settled, Instant::now(), Duration::ZERO);
        let problem = [now.as_ref(), last]
            .into_iter()
            .flatten()
            .find_map(|s| diagnose::diagnose_in(&s.pods, &s.events, &view, hint));
        let helm_error = helm_error_line(&helm_output).unwrap_or_else(|| format!("helm exited with {status}"));
        if problem.is_some() {
            eprintln!("==> helm gave up: {}", self.redactor.redact(&helm_error));
        }
        let during = last.or(now.as_ref());
        Err(self.fail(problem, during, &helm_output, helm_error))
    }

    /// A failure is certain while Helm still waits: keep the evidence, then stop Helm (which
    /// marks the release failed and rolls it back) and wait for its rollback.
    fn stop_early(
        &mut self,
        problem: Problem,
        now: &Snapshot,
        mut helm_run: Background,
        interrupts: &Guarded,
    ) -> anyhow::Error {
        let error = self.fail(Some(problem), Some(now), "", String::new());
        eprintln!(
            "==> stopping helm: it marks the revision failed and rolls back ({})",
            self.helm.rollback_on_failure_flag()
        );
        let _ = helm_run.signal(Signal::SIGTERM);
        if let (Some(helm_output), Some(dir)) = (self.await_rollback(helm_run, interrupts), &self.outcome.diagnostics) {
            let _ = std::fs::write(Path::new(dir).join("helm-output.txt"), &helm_output);
        }
        error
    }

    /// Prints the diagnosis (with a crashed container's log), writes the bundle, and returns the
    /// one-line error.
    fn fail(
        &mut self,
        problem: Option<Problem>,
        during: Option<&Snapshot>,
        helm_output: &str,
        helm_error: String,
    ) -> anyhow::Error {
        let summary = match &problem {
            Some(problem) => self.explain(problem),
            None => {
                eprintln!("==> helm failed: {}", self.redactor.redact(&helm_error));
                format!("helm failed: {helm_error}\n")
            }
        };
        let evidence = Evidence {
            summary,
            pods_during_rollout: during.map(|s| s.pods_json.clone()),
            events_during_rollout: during.map(|s| s.events_json.clone()),
            helm_output: (!helm_output.is_empty()).then(|| helm_output.to_owned()),
        };
        match self
            .deploy
            .write_bundle(self.sh, self.release, self.helm, self.redactor, &evidence)
        {
            Ok(dir) => {
                eprintln!("    diagnostics: {dir}");
                self.outcome.diagnostics = Some(dir);
            }
            Err(err) => eprintln!("    (could not write the diagnostics bundle: {err:#})"),
        }
        let message = match &problem {
            Some(problem) => format!("{}; what to do: {}", problem.reason, problem.fix),
            None => format!("helm upgrade failed: {helm_error}"),
        };
        self.outcome.problem = problem;
        anyhow::anyhow!(self.redactor.redact(&message))
    }

    /// Prints a recognised problem (a crashed container with its last log lines) and returns the
    /// bundle's summary of it.
    fn explain(&self, problem: &Problem) -> String {
        let redactor = self.redactor;
        eprintln!("==> the rollout cannot succeed: {}", redactor.redact(&problem.reason));
        eprintln!("    Kubernetes says: {}", redactor.redact(&problem.evidence));
        let mut summary = format!(
            "{}\nKubernetes says: {}\nwhat to do: {}\n",
            problem.reason, problem.evidence, problem.fix
        );
        if let (Cause::Crashed { .. }, Some(container)) = (&problem.cause, &problem.container) {
            let log = crash_log(self.sh, self.release, &problem.pod, container, CRASH_LOG_LINES);
            let log = redactor.redact(&log);
            eprintln!("    last {CRASH_LOG_LINES} lines of its previous run:");
            for line in log.lines() {
                eprintln!("      | {line}");
            }
            summary.push_str(&format!("\nlast {CRASH_LOG_LINES} lines of its previous run:\n{log}\n"));
        }
        eprintln!("    what to do: {}", redactor.redact(&problem.fix));
        summary
    }
}

/// The release's pods before the upgrade, with the images this deploy sets: what the rollout
/// replaces, and the container runs that had already ended.
fn baseline(sh: &Shell, release: &Release, record: &BuildRecord) -> anyhow::Result<Baseline> {
    let selector = release.selector();
    let pods: Vec<Pod> = release
        .query(sh, &["get", "pods", "-l", &selector, "-o", "json"])
        .and_then(|json| objects::parse_items(&json, "pods"))
        .context("reading the release's pods before the upgrade (is the cluster reachable?)")?;
    let deployed = record
        .images
        .iter()
        .map(|image| (image.service.name(), image.reference.as_str()));
    Ok(Baseline::new(&pods, deployed))
}

/// The release's pods and the namespace's events, now.
fn snapshot(sh: &Shell, release: &Release) -> anyhow::Result<Snapshot> {
    let selector = release.selector();
    let pods_json = release.query(sh, &["get", "pods", "-l", &selector, "-o", "json"])?;
    let events_json = release.query(sh, &["get", "events", "-o", "json"])?;
    Ok(Snapshot {
        pods: objects::parse_items(&pods_json, "pods")?,
        events: objects::parse_items(&events_json, "events")?,
        pods_json,
        events_json,
    })
}

/// Prints what Helm wrote (secrets scrubbed) on stderr, indented; returns it.
pub(super) fn show_helm_output(helm_run: &Background, redactor: &Redactor) -> String {
    let (stdout, stderr) = helm_run.output();
    let text = redactor.redact(&format!("{stdout}{stderr}"));
    for line in text.lines().filter(|line| !line.trim().is_empty()) {
        eprintln!("    helm: {line}");
    }
    text
}

/// Helm's `Error: ...` line.
fn helm_error_line(output: &str) -> Option<String> {
    output
        .lines()
        .rev()
        .find(|line| line.starts_with("Error:"))
        .map(|line| line.trim_start_matches("Error:").trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helm_errors_are_found() {
        let output = "Release \"todo\" has been cancelled.\nError: UPGRADE FAILED: context canceled\n";
        assert_eq!(
            helm_error_line(output).as_deref(),
            Some("UPGRADE FAILED: context canceled")
        );
        assert_eq!(helm_error_line("all fine"), None);
    }
}
