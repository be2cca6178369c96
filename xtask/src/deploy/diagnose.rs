//! Watching a rollout through `kubectl get pods -o json` and `kubectl get events -o json`, and
//! saying in plain words why it cannot succeed — as soon as that is certain, not at the timeout.
//!
//! [`diagnose`] is pure: it reads the pods' container statuses (`state.waiting.reason`,
//! `lastState.terminated.exitCode`/`reason`), their `PodScheduled` condition, and the kubelet's
//! `Unhealthy` events, and returns the first [`Problem`] with what to do about it. Each rule waits
//! exactly as long as the situation can still heal on its own: a workflow-built image the node
//! does not hold, a missing Secret key, a crash or an out-of-memory kill never heal; a pull or
//! create error may (rate limits, slow DNS, a name still reserved), so it gets a grace period on
//! deploy's own clock; a claim waiting for its volume gets a minute; a failing readiness probe
//! only means "not ready yet", so it is reported once Helm gave up, never while it waits.
//!
//! While a rollout is watched, only its own pods count: the previous revision's pods (still up
//! during a rolling update) and runs that had ended before the upgrade are left out ([`Baseline`]).

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use k8s_openapi::api::core::v1::ContainerStateTerminated;

use self::{
    advice::{double_quantity, exit_meaning, memory_values_key, missing_config, unschedulable_fix},
    baseline::Transient,
};
pub use self::{
    baseline::{Baseline, Lingering},
    problem::{Cause, Problem},
};
use super::load::is_local_reference;
use crate::{
    k8s::objects::{Container, ContainerStatus, Event, EventExt, Pod, PodExt},
    progress::human,
};

mod advice;
mod baseline;
mod problem;

/// How long a pod may wait for its volume to be provisioned before that counts as a failure.
pub const VOLUME_BINDING_GRACE_SECONDS: i64 = 60;

/// When a diagnosis is made, which decides what counts as a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// While Helm waits: only what cannot heal before Helm's timeout.
    Watching,
    /// Helm gave up, or the release is looked at as it is (`status`): whatever keeps a pod from
    /// being ready.
    Settled,
}

/// What a diagnosis knows besides the pods and events.
pub struct View<'a> {
    /// Watching or settled.
    pub stage: Stage,
    /// The pods before the upgrade (empty: every current pod counts, with all its history).
    pub baseline: &'a Baseline,
    /// Since when each container shows a transient error.
    pub lingering: &'a Lingering,
    /// The moment of this look, on the clock of `lingering`.
    pub at: Instant,
    /// How long a transient pull or create error may last while watching.
    pub grace: Duration,
    /// Unix time (for the volume-binding grace, which the cluster's own timestamps measure).
    pub now: i64,
}

/// The first reason, in pod-name order, why these pods (as they are now, with all their history)
/// cannot all become ready; `None` while they may still. `now` is Unix time; `load_hint` gives
/// the command that loads one of the workflow's images into the cluster (`None` for an image it
/// did not build).
pub fn diagnose(
    pods: &[Pod],
    events: &[Event],
    now: i64,
    load_hint: &dyn Fn(&str) -> Option<String>,
) -> Option<Problem> {
    let (baseline, lingering) = (Baseline::default(), Lingering::default());
    let view = View {
        stage: Stage::Settled,
        baseline: &baseline,
        lingering: &lingering,
        at: Instant::now(),
        grace: Duration::ZERO,
        now,
    };
    diagnose_in(pods, events, &view, load_hint)
}

/// The first reason, in pod-name order, why the pods of this rollout cannot all become ready,
/// as seen from `view`; `None` while they may still. While Helm waits only pods created since the
/// upgrade began can stop it: a pod from before (kept because its template did not change, or
/// about to be replaced after a change that kept its image) is judged only once Helm gave up.
pub fn diagnose_in(
    pods: &[Pod],
    events: &[Event],
    view: &View<'_>,
    load_hint: &dyn Fn(&str) -> Option<String>,
) -> Option<Problem> {
    let judged =
        |pod: &&Pod| view.baseline.is_rolling_out(pod) && (view.stage == Stage::Settled || !view.baseline.existed(pod));
    let mut pods: Vec<&Pod> = pods.iter().filter(judged).collect();
    pods.sort_by(|a, b| a.name().cmp(b.name()));
    pods.into_iter().find_map(|pod| {
        let scene = Scene {
            pod,
            name: pod.name(),
            component: pod.component(),
            events,
            view,
            load_hint,
        };
        scene.diagnose()
    })
}

/// One pod and what is known around it: the events, the view, how to load an image.
struct Scene<'a> {
    pod: &'a Pod,
    name: &'a str,
    component: &'a str,
    events: &'a [Event],
    view: &'a View<'a>,
    load_hint: &'a dyn Fn(&str) -> Option<String>,
}

/// One container of the pod: its status, its spec, the image it runs.
struct Seen<'a> {
    status: &'a ContainerStatus,
    spec: Option<&'a Container>,
    image: &'a str,
}

impl<'a> Seen<'a> {
    fn name(&self) -> &'a str {
        self.status.name.as_str()
    }

    fn waiting(&self) -> Option<(&'a str, &'a str)> {
        let waiting = self.status.state.as_ref()?.waiting.as_ref()?;
        Some((
            waiting.reason.as_deref().unwrap_or_default(),
            waiting.message.as_deref().unwrap_or_default(),
        ))
    }
}

impl Scene<'_> {
    /// Each cause in turn: per container the ones that never heal, then scheduling, then
    /// readiness.
    fn diagnose(&self) -> Option<Problem> {
        let containers: Vec<Seen<'_>> = self
            .pod
            .container_statuses()
            .iter()
            .map(|status| {
                let spec = self.pod.containers().iter().find(|c| c.name == status.name);
                let image = spec.and_then(|s| s.image.as_deref()).unwrap_or(status.image.as_str());
                Seen { status, spec, image }
            })
            .collect();
        containers
            .iter()
            .find_map(|seen| {
                self.image_missing(seen)
                    .or_else(|| self.missing_config(seen))
                    .or_else(|| self.cannot_start(seen))
                    .or_else(|| self.out_of_memory(seen))
                    .or_else(|| self.crashed(seen))
            })
            .or_else(|| self.unschedulable())
            .or_else(|| containers.iter().find_map(|seen| self.not_ready(seen)))
    }

    /// How the current run of `seen` ended (if it did), then how the previous one did; only
    /// runs that ended during this rollout.
    fn ended<'s>(&'s self, seen: &Seen<'s>) -> impl Iterator<Item = &'s ContainerStateTerminated> {
        let status = seen.status;
        let current = status.state.as_ref().and_then(|s| s.terminated.as_ref());
        let last = status.last_state.as_ref().and_then(|s| s.terminated.as_ref());
        current.into_iter().chain(last).filter(move |ended| {
            self.view
                .baseline
                .ended_since(self.pod, &status.name, status.restart_count, ended)
        })
    }

    /// Whether a transient error of `seen` may still clear by itself: Helm still waits, and the
    /// error has lasted less than the grace period.
    fn in_grace(&self, seen: &Seen<'_>) -> bool {
        let lasted = self.view.lingering.lasted(self.pod, seen.name(), self.view.at);
        self.view.stage == Stage::Watching && lasted < self.view.grace
    }

    /// `" (still failing after 1m00s)"` for a transient error past its grace period.
    fn lasting(&self, seen: &Seen<'_>) -> String {
        let lasted = self.view.lingering.lasted(self.pod, seen.name(), self.view.at);
        if self.view.stage == Stage::Watching && !lasted.is_zero() {
            format!(" (still failing after {})", human(lasted))
        } else {
            String::new()
        }
    }

    fn problem(&self, container: Option<&str>, cause: Cause, reason: String, fix: String, evidence: String) -> Problem {
        Problem {
            pod: self.name.to_owned(),
            component: self.component.to_owned(),
            container: container.map(str::to_owned),
            cause,
            reason,
            fix,
            evidence,
        }
    }

    /// ErrImageNeverPull, ErrImagePull, ImagePullBackOff: the node does not hold the image.
    fn image_missing(&self, seen: &Seen<'_>) -> Option<Problem> {
        let (reason, message) = seen.waiting()?;
        if !matches!(reason, "ErrImageNeverPull" | "ErrImagePull" | "ImagePullBackOff") {
            return None;
        }
        let (name, component, image) = (self.name, self.component, seen.image);
        // Certain: pull policy Never, or an image only this machine held (a pull from Docker Hub
        // is denied for ever). Anything else may be a rate limit or slow DNS.
        let workflow_local = (self.load_hint)(image).is_some() && is_local_reference(image);
        let certain = reason == "ErrImageNeverPull" || workflow_local;
        if !certain && self.in_grace(seen) {
            return None;
        }
        let fix = match (self.load_hint)(image) {
            Some(hint) => format!("load it into the cluster: {hint}   (`cargo xtask deploy` does this)"),
            None => format!("check the image name and that the cluster can pull it: kubectl describe pod {name}"),
        };
        Some(self.problem(
            Some(seen.name()),
            Cause::ImageMissing {
                image: image.to_owned(),
            },
            format!(
                "{component} pod {name}: the node does not hold image {image}, and cannot pull it{}",
                self.lasting(seen)
            ),
            fix,
            format!("{reason}: {message}"),
        ))
    }

    /// CreateContainerConfigError: a Secret or ConfigMap (or a key of one) is missing.
    fn missing_config(&self, seen: &Seen<'_>) -> Option<Problem> {
        let (reason, message) = seen
            .waiting()
            .filter(|(reason, _)| *reason == "CreateContainerConfigError")?;
        let (why, fix) = missing_config(message, self.component, self.name);
        Some(self.problem(
            Some(seen.name()),
            Cause::MissingConfig,
            why,
            fix,
            format!("{reason}: {message}"),
        ))
    }

    /// CreateContainerError, RunContainerError, InvalidImageName: a bad image or command.
    fn cannot_start(&self, seen: &Seen<'_>) -> Option<Problem> {
        let (reason, message) = seen.waiting()?;
        if !matches!(
            reason,
            "CreateContainerError" | "RunContainerError" | "InvalidImageName"
        ) {
            return None;
        }
        if Transient::of(reason).is_some() && self.in_grace(seen) {
            return None;
        }
        let (name, component, container) = (self.name, self.component, seen.name());
        Some(self.problem(
            Some(container),
            Cause::CannotStart,
            format!(
                "{component} container {container} of pod {name} cannot start{}: {message}",
                self.lasting(seen)
            ),
            format!(
                "check the image {} and the container's command: kubectl describe pod {name}",
                seen.image
            ),
            format!("{reason}: {message}"),
        ))
    }

    /// OOMKilled, now or in the previous run: the memory limit is too low.
    fn out_of_memory(&self, seen: &Seen<'_>) -> Option<Problem> {
        let killed = self.ended(seen).find(|t| t.reason.as_deref() == Some("OOMKilled"))?;
        let (name, component, container) = (self.name, self.component, seen.name());
        let limit = seen
            .spec
            .and_then(|s| s.resources.as_ref())
            .and_then(|r| r.limits.as_ref())
            .and_then(|limits| limits.get("memory"))
            .map(|quantity| quantity.0.clone());
        let values_key = memory_values_key(component);
        let raise = limit
            .as_deref()
            .and_then(double_quantity)
            .unwrap_or_else(|| "256Mi".to_owned());
        let over = limit
            .as_deref()
            .map_or_else(|| "its memory".to_owned(), |l| format!("its memory limit of {l}"));
        Some(self.problem(
            Some(container),
            Cause::OutOfMemory {
                limit: limit.clone(),
                values_key: values_key.clone(),
            },
            format!(
                "{component} container {container} of pod {name} was killed for using more than {over} \
                 (OOMKilled, exit code {})",
                killed.exit_code
            ),
            format!("raise the limit: cargo xtask deploy --set {values_key}={raise}"),
            format!("OOMKilled: exit code {}", killed.exit_code),
        ))
    }

    /// CrashLoopBackOff or an error exit: the log says why.
    fn crashed(&self, seen: &Seen<'_>) -> Option<Problem> {
        let restarted = (self.view.baseline).restarted_since(self.pod, seen.name(), seen.status.restart_count);
        let crash_loop = restarted && seen.waiting().is_some_and(|(reason, _)| reason == "CrashLoopBackOff");
        let failed_run = self.ended(seen).find(|t| t.exit_code != 0);
        if !crash_loop && failed_run.is_none() {
            return None;
        }
        let (name, component, container) = (self.name, self.component, seen.name());
        let exit_code = failed_run.map_or(0, |t| t.exit_code);
        let restarts = u32::try_from(seen.status.restart_count).unwrap_or(0);
        let mut reason = format!(
            "{component} container {container} of pod {name} {}{}",
            if exit_code == 0 {
                "keeps exiting".to_owned()
            } else {
                format!("exits with code {exit_code}{}", exit_meaning(exit_code))
            },
            match restarts {
                0 => String::new(),
                1 => " (restarted once)".to_owned(),
                n => format!(" (restarted {n} times)"),
            }
        );
        if let Some(message) = failed_run
            .and_then(|t| t.message.as_deref())
            .filter(|m| !m.trim().is_empty())
        {
            reason.push_str(&format!(": {}", message.trim()));
        }
        let probe_kill = last_event(self.events, self.pod, |e| {
            e.reason() == "Unhealthy" && (e.message().starts_with("Liveness") || e.message().starts_with("Startup"))
        });
        if let Some(event) = probe_kill {
            reason.push_str(&format!("; the kubelet restarted it after: {}", event.message().trim()));
        }
        let evidence = seen.waiting().map_or_else(
            || format!("terminated with exit code {exit_code}"),
            |(reason, message)| format!("{reason}: {message}"),
        );
        Some(self.problem(
            Some(container),
            Cause::Crashed { exit_code, restarts },
            reason,
            format!(
                "its log says why (the last lines are shown above; all of it: `cargo xtask logs {component} \
                 --previous`); fix that and deploy again"
            ),
            evidence,
        ))
    }

    /// The scheduler cannot place the pod; a claim waiting for its volume gets a grace period.
    fn unschedulable(&self) -> Option<Problem> {
        let condition = self
            .pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .into_iter()
            .flatten()
            .find(|c| {
                c.type_ == "PodScheduled" && c.status == "False" && c.reason.as_deref() == Some("Unschedulable")
            })?;
        let message = condition.message.clone().unwrap_or_default();
        let waiting_for_volume = message.contains("unbound immediate PersistentVolumeClaims");
        let since = condition
            .last_transition_time
            .as_ref()
            .map_or(self.view.now, |t| t.0.as_second());
        if waiting_for_volume && self.view.now - since < VOLUME_BINDING_GRACE_SECONDS {
            return None;
        }
        let (name, component) = (self.name, self.component);
        Some(self.problem(
            None,
            Cause::Unschedulable,
            format!("{component} pod {name} cannot be scheduled: {message}"),
            unschedulable_fix(&message, component, name),
            format!("Unschedulable: {message}"),
        ))
    }

    /// Once Helm gave up: running, but the readiness probe failed as often as its own
    /// `failureThreshold` (while Helm waits, that only means "not ready yet").
    fn not_ready(&self, seen: &Seen<'_>) -> Option<Problem> {
        let running = seen.status.state.as_ref().is_some_and(|s| s.running.is_some());
        if self.view.stage == Stage::Watching || seen.status.ready || !running {
            return None;
        }
        let (name, component) = (self.name, self.component);
        let threshold = seen
            .spec
            .and_then(|c| c.readiness_probe.as_ref())
            .and_then(|p| p.failure_threshold)
            .map_or(3, |t| u32::try_from(t).unwrap_or(3));
        let readiness = |e: &&Event| {
            e.is_about(self.pod) && e.reason() == "Unhealthy" && e.message().starts_with("Readiness probe failed")
        };
        let failures: u32 = self.events.iter().filter(readiness).map(EventExt::times).sum();
        if failures < threshold {
            return None;
        }
        let last = self.events.iter().filter(readiness).max_by_key(|e| e.when());
        let message = last.map(|e| e.message().trim().to_owned()).unwrap_or_default();
        let fix = if component == "backend" {
            "the backend's /ready answers 503 while its database is unreachable or not migrated: its log says \
             which (`cargo xtask logs backend`)"
                .to_owned()
        } else {
            format!("its log says why it is not ready: cargo xtask logs {component}")
        };
        Some(self.problem(
            Some(seen.name()),
            Cause::NotReady { failures },
            format!(
                "{component} pod {name} runs but never becomes ready: {message} ({failures} failed readiness checks)"
            ),
            fix,
            message,
        ))
    }
}

/// The newest event about `pod` (this very pod, not an earlier one of the same name) that `matches`.
fn last_event<'a>(events: &'a [Event], pod: &Pod, matches: impl Fn(&Event) -> bool) -> Option<&'a Event> {
    events
        .iter()
        .filter(|e| e.is_about(pod) && matches(e))
        .max_by_key(|e| e.when())
}

/// One line about the pods of the rollout: `backend 0/1 ready (ContainerCreating), frontend 2/2 ready`.
pub fn progress(pods: &[Pod], baseline: &Baseline) -> String {
    let mut by_component: BTreeMap<&str, (usize, usize, Option<String>)> = BTreeMap::new();
    for pod in pods.iter().filter(|pod| baseline.is_rolling_out(pod)) {
        let entry = by_component.entry(pod.component()).or_default();
        entry.1 += 1;
        if pod.is_ready() {
            entry.0 += 1;
        } else if entry.2.is_none() {
            entry.2 = Some(pod.state());
        }
    }
    if by_component.is_empty() {
        return "no pods yet".to_owned();
    }
    by_component
        .into_iter()
        .map(|(component, (ready, total, state))| {
            let state = state.map(|s| format!(" ({s})")).unwrap_or_default();
            format!("{component} {ready}/{total} ready{state}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests;
