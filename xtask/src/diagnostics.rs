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

use crate::{
    exec::probe::{self, PROBE_TIMEOUT},
    k8s::release::{QUERY_TIMEOUT, Release, WRITE_TIMEOUT},
    redact::{Redactor, redact_secret_keys},
    rollout, timestamps,
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
    let bundle = Writer { dir: &dir, redactor };
    let name = release.name.as_str();
    let selector = release.selector();

    bundle.text(
        "summary.txt",
        &format!(
            "{}\n\n{}\ntime: {}\n",
            evidence.summary,
            release.describe(),
            timestamps::readable(timestamps::now_unix())
        ),
    )?;
    if let Some(output) = &evidence.helm_output {
        bundle.text("helm-output.txt", output)?;
    }
    bundle.query("helm-status.txt", release.helm(sh, helm, &["status", name]))?;
    bundle.query(
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
    bundle.text("helm-values.json", &values)?;

    if let Some(pods) = &evidence.pods_during_rollout {
        bundle.text("pods-during-rollout.json", pods)?;
    }
    if let Some(events) = &evidence.events_during_rollout {
        bundle.text("events-during-rollout.json", events)?;
    }
    let pods = bundle.query(
        "pods.json",
        release
            .kubectl(sh, QUERY_TIMEOUT)
            .args(["get", "pods", "-l", &selector, "-o", "json"]),
    )?;
    bundle.query(
        "events.json",
        release.kubectl(sh, QUERY_TIMEOUT).args(["get", "events", "-o", "json"]),
    )?;
    bundle.query(
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
    bundle.query(
        "describe-pods.txt",
        release
            .kubectl(sh, QUERY_TIMEOUT)
            .args(["describe", "pods", "-l", &selector]),
    )?;

    // Logs of every container of every pod seen, now or during the rollout.
    let mut seen = rollout::parse_pods(&pods).unwrap_or_default();
    if let Some(during) = evidence.pods_during_rollout.as_deref() {
        for pod in rollout::parse_pods(during).unwrap_or_default() {
            if !seen.iter().any(|p| p.metadata.name == pod.metadata.name) {
                seen.push(pod);
            }
        }
    }
    for pod in &seen {
        let pod_name = pod.metadata.name.as_str();
        for container in &pod.spec.containers {
            let container_name = container.name.as_str();
            let logs = |previous: bool| {
                let mut cmd = release.kubectl(sh, WRITE_TIMEOUT).args([
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
            bundle.query(&format!("logs/{pod_name}.{container_name}.log"), logs(false))?;
            let restarted = pod
                .status
                .container_statuses
                .iter()
                .any(|s| s.name == container.name && s.restart_count > 0);
            if restarted {
                bundle.query(&format!("logs/{pod_name}.{container_name}.previous.log"), logs(true))?;
            }
        }
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

struct Writer<'a> {
    dir: &'a Path,
    redactor: &'a Redactor,
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
}
