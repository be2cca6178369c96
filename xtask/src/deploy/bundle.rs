//! The diagnostics bundle written when a deploy fails: everything needed to understand the
//! failure later (or to attach to a bug report), in `target/diagnostics/<time>/`.
//!
//! It holds Helm's view (status, history, the values given — secret-looking keys replaced), the
//! pods and events as JSON (also the pods as they were when the failure was recognised, before
//! Helm rolled them back), `kubectl describe`, and the current and previous log of every
//! container. Every query is read-only and bounded in time; one that fails leaves its error in
//! its file instead of stopping the bundle. Every text passes through the [`Redactor`] first.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::Value;
use xshell::{Cmd, Shell};

use super::Deploy;
use crate::{
    exec::probe::{self, PROBE_TIMEOUT},
    k8s::{
        objects::{self, Pod, PodExt},
        release::{QUERY_TIMEOUT, Release, WRITE_TIMEOUT},
    },
    redact::{Redactor, redact_secret_keys},
    timestamps,
    tools::helm::Helm,
};

/// What went into a bundle besides the cluster's own state.
#[derive(Debug, Clone, Default)]
pub struct Evidence {
    /// The diagnosis (or the error) in words.
    pub summary: String,
    /// `kubectl get pods -o json` as seen when the failure was recognised.
    pub pods_during_rollout: Option<String>,
    /// `kubectl get events -o json` as seen then.
    pub events_during_rollout: Option<String>,
    /// What Helm printed.
    pub helm_output: Option<String>,
}

impl Deploy {
    /// Writes a bundle under `--diagnostics-dir`; returns its path as shown to people (relative
    /// to the project when inside).
    pub(super) fn write_bundle(
        &self,
        sh: &Shell,
        release: &Release,
        helm: &Helm,
        redactor: &Redactor,
        evidence: &Evidence,
    ) -> anyhow::Result<String> {
        let root = sh.current_dir();
        let parent = match &self.diagnostics_dir {
            Some(dir) => crate::from_caller(dir),
            None => crate::diagnostics_dir(),
        };
        let dir = write_bundle(sh, release, helm, redactor, &parent, evidence)?;
        Ok(dir
            .strip_prefix(&root)
            .map_or_else(|_| dir.display().to_string(), |relative| relative.display().to_string()))
    }
}

/// Writes a bundle under `parent` (a new folder named after the time) and returns its path.
pub fn write_bundle(
    sh: &Shell,
    release: &Release,
    helm: &Helm,
    redactor: &Redactor,
    parent: &Path,
    evidence: &Evidence,
) -> anyhow::Result<PathBuf> {
    let dir = fresh_dir(parent)?;
    let bundle = Writer {
        dir: &dir,
        redactor,
        sh,
        release,
    };
    bundle.helm_view(helm, evidence)?;
    let pods = bundle.cluster_view(evidence)?;
    // Logs of every container of every pod seen, now or during the rollout.
    let mut seen: Vec<Pod> = objects::parse_items(&pods, "pods").unwrap_or_default();
    if let Some(during) = evidence.pods_during_rollout.as_deref() {
        for pod in objects::parse_items::<Pod>(during, "pods").unwrap_or_default() {
            if !seen.iter().any(|p| p.name() == pod.name()) {
                seen.push(pod);
            }
        }
    }
    for pod in &seen {
        bundle.logs(pod)?;
    }
    Ok(dir)
}

/// A new folder `<parent>/<time>` (with `-2`, `-3`, ... if that exists).
fn fresh_dir(parent: &Path) -> anyhow::Result<PathBuf> {
    let stamp = timestamps::compact(timestamps::now_unix());
    for attempt in 1.. {
        let dir = if attempt == 1 {
            parent.join(&stamp)
        } else {
            parent.join(format!("{stamp}-{attempt}"))
        };
        if !dir.exists() {
            std::fs::create_dir_all(dir.join("logs")).with_context(|| format!("creating {}", dir.display()))?;
            return Ok(dir);
        }
    }
    unreachable!("an unbounded range always yields a fresh name")
}

/// Where a bundle is written, and what it is about.
struct Writer<'a> {
    dir: &'a Path,
    redactor: &'a Redactor,
    sh: &'a Shell,
    release: &'a Release,
}

impl Writer<'_> {
    fn text(&self, file: &str, text: &str) -> anyhow::Result<()> {
        let path = self.dir.join(file);
        std::fs::write(&path, self.redactor.redact(text)).with_context(|| format!("writing {}", path.display()))
    }

    /// Runs a read-only query and saves its output (or why it failed); returns the output.
    fn query(&self, file: &str, cmd: Cmd<'_>) -> anyhow::Result<String> {
        let probe = probe::run(cmd, PROBE_TIMEOUT);
        let text = if probe.succeeded() {
            probe.stdout.clone()
        } else {
            format!("`{}` failed: {}\n{}", probe.command, probe.failure(), probe.stdout)
        };
        self.text(file, &text)?;
        Ok(if probe.succeeded() { probe.stdout } else { String::new() })
    }

    /// The summary, and Helm's view: what it printed, status, history, the values given
    /// (secret-looking keys replaced).
    fn helm_view(&self, helm: &Helm, evidence: &Evidence) -> anyhow::Result<()> {
        let (sh, release) = (self.sh, self.release);
        let name = release.name.as_str();
        self.text(
            "summary.txt",
            &format!(
                "{}\n\n{}\ntime: {}\n",
                evidence.summary,
                release.describe(),
                timestamps::readable(timestamps::now_unix())
            ),
        )?;
        if let Some(output) = &evidence.helm_output {
            self.text("helm-output.txt", output)?;
        }
        self.query("helm-status.txt", release.helm(sh, helm, &["status", name]))?;
        self.query(
            "helm-history.json",
            release.helm(sh, helm, &["history", name]).args(["-o", "json"]),
        )?;
        let values = probe::run(
            release.helm(sh, helm, &["get", "values", name]).args(["-o", "json"]),
            PROBE_TIMEOUT,
        );
        let values = if values.succeeded() {
            match serde_json::from_str::<Value>(&values.stdout) {
                Ok(mut json) => {
                    redact_secret_keys(&mut json);
                    serde_json::to_string_pretty(&json)?
                }
                Err(err) => format!("unreadable values: {err}"),
            }
        } else {
            format!("{}\n", values.failure())
        };
        self.text("helm-values.json", &values)
    }

    /// The pods and events (also as they were during the rollout), the release's objects and
    /// `kubectl describe`; returns the pods now, as JSON.
    fn cluster_view(&self, evidence: &Evidence) -> anyhow::Result<String> {
        let (sh, release) = (self.sh, self.release);
        let selector = release.selector();
        if let Some(pods) = &evidence.pods_during_rollout {
            self.text("pods-during-rollout.json", pods)?;
        }
        if let Some(events) = &evidence.events_during_rollout {
            self.text("events-during-rollout.json", events)?;
        }
        let pods = self.query(
            "pods.json",
            release
                .kubectl(sh, QUERY_TIMEOUT)
                .args(["get", "pods", "-l", &selector, "-o", "json"]),
        )?;
        self.query(
            "events.json",
            release.kubectl(sh, QUERY_TIMEOUT).args(["get", "events", "-o", "json"]),
        )?;
        self.query(
            "resources.json",
            release.kubectl(sh, QUERY_TIMEOUT).args([
                "get",
                "deployments,replicasets,statefulsets,services,persistentvolumeclaims",
                "-l",
                &selector,
                "-o",
                "json",
            ]),
        )?;
        self.query(
            "describe-pods.txt",
            release
                .kubectl(sh, QUERY_TIMEOUT)
                .args(["describe", "pods", "-l", &selector]),
        )?;
        Ok(pods)
    }

    /// The current log of each container of `pod`, and the previous one of each restarted.
    fn logs(&self, pod: &Pod) -> anyhow::Result<()> {
        let pod_name = pod.name();
        for container in pod.containers() {
            let container_name = container.name.as_str();
            let logs = |previous: bool| {
                let mut cmd = self.release.kubectl(self.sh, WRITE_TIMEOUT).args([
                    "logs",
                    pod_name,
                    "-c",
                    container_name,
                    "--tail=1000",
                    "--timestamps",
                ]);
                if previous {
                    cmd = cmd.arg("--previous");
                }
                cmd
            };
            self.query(&format!("logs/{pod_name}.{container_name}.log"), logs(false))?;
            let restarted = pod
                .container_statuses()
                .iter()
                .any(|s| s.name == container.name && s.restart_count > 0);
            if restarted {
                self.query(&format!("logs/{pod_name}.{container_name}.previous.log"), logs(true))?;
            }
        }
        Ok(())
    }
}

/// The last lines a crashed container wrote before it died (its previous run's log; the
/// current one when it has not been restarted yet).
pub(super) fn crash_log(sh: &Shell, release: &Release, pod: &str, container: &str, lines: u32) -> String {
    let tail = format!("--tail={lines}");
    let logs = |previous: Option<&str>| {
        probe::run(
            release
                .kubectl(sh, WRITE_TIMEOUT)
                .args(["logs", pod, "-c", container, &tail])
                .args(previous),
            PROBE_TIMEOUT,
        )
    };
    let previous = logs(Some("--previous"));
    if previous.succeeded() {
        return previous.stdout;
    }
    let current = logs(None);
    if current.succeeded() {
        current.stdout
    } else {
        format!("(no log: {})", previous.failure())
    }
}
