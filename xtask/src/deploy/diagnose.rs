//! Watching a rollout through `kubectl get pods -o json` and `kubectl get events -o json`, and
//! saying in plain words why it cannot succeed — as soon as that is certain, not at the timeout.
//!
//! [`diagnose`] is pure: it reads the pods' container statuses (`state.waiting.reason`,
//! `lastState.terminated.exitCode`/`reason`), their `PodScheduled` condition, and the kubelet's
//! `Unhealthy` events, and returns the first [`Problem`] with what to do about it. Each rule waits
//! exactly as long as the situation can still heal on its own: an image the node does not hold,
//! a missing Secret key, a crash or an out-of-memory kill never heal; a claim waiting for its
//! volume may (so it gets a minute); a readiness probe fails for real once it has failed as often
//! as the probe's own `failureThreshold`.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ContainerStateTerminated;
use serde::Serialize;

use self::advice::{double_quantity, exit_meaning, memory_values_key, missing_config, unschedulable_fix};
use crate::k8s::objects::{Container, ContainerStatus, Event, EventExt, Pod, PodExt};

mod advice;

/// How long a pod may wait for its volume to be provisioned before that counts as a failure.
pub const VOLUME_BINDING_GRACE_SECONDS: i64 = 60;

/// Why a rollout cannot succeed, and what to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The pod.
    pub pod: String,
    /// Its component (`backend`, ...).
    pub component: String,
    /// The container, when one is at fault.
    pub container: Option<String>,
    /// The kind of failure and its particulars.
    pub cause: Cause,
    /// What is wrong, in plain words (one line).
    pub reason: String,
    /// What to do about it.
    pub fix: String,
    /// Kubernetes' own words (status reason and message).
    pub evidence: String,
}

/// The kinds of failure recognised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Cause {
    /// ErrImageNeverPull, ErrImagePull, ImagePullBackOff: the node does not hold the image.
    ImageMissing {
        /// The image reference.
        image: String,
    },
    /// CrashLoopBackOff or an error exit.
    Crashed {
        /// The exit code of the last run.
        exit_code: i32,
        /// Restarts so far.
        restarts: u32,
    },
    /// Killed for exceeding the memory limit.
    OutOfMemory {
        /// The limit (`128Mi`), if set.
        limit: Option<String>,
        /// The values key that raises it.
        values_key: String,
    },
    /// CreateContainerConfigError: a Secret or ConfigMap (key) is missing.
    MissingConfig,
    /// The scheduler cannot place the pod.
    Unschedulable,
    /// Running, but the readiness probe keeps failing.
    NotReady {
        /// Failed probes seen.
        failures: u32,
    },
    /// The container cannot be created or started (bad image, bad command).
    CannotStart,
}

/// The first reason, in pod-name order, why these pods cannot all become ready; `None` while
/// they may still. `now` is Unix time; `load_hint` gives the command that loads one of the
/// workflow's images into the cluster (`None` for an image it did not build).
pub fn diagnose(
    pods: &[Pod],
    events: &[Event],
    now: i64,
    load_hint: &dyn Fn(&str) -> Option<String>,
) -> Option<Problem> {
    let mut pods: Vec<&Pod> = pods.iter().filter(|pod| pod.is_current()).collect();
    pods.sort_by(|a, b| a.name().cmp(b.name()));
    pods.into_iter().find_map(|pod| {
        let scene = Scene {
            pod,
            name: pod.name(),
            component: pod.component(),
            events,
            now,
            load_hint,
        };
        scene.diagnose()
    })
}

/// One pod and what is known around it: the events, the time, how to load an image.
struct Scene<'a> {
    pod: &'a Pod,
    name: &'a str,
    component: &'a str,
    events: &'a [Event],
    now: i64,
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

    /// How the current run ended (if it did), then how the previous one did.
    fn ended(&self) -> impl Iterator<Item = &'a ContainerStateTerminated> {
        let current = self.status.state.as_ref().and_then(|s| s.terminated.as_ref());
        let last = self.status.last_state.as_ref().and_then(|s| s.terminated.as_ref());
        current.into_iter().chain(last)
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
        let fix = match (self.load_hint)(image) {
            Some(hint) => format!("load it into the cluster: {hint}   (`cargo xtask deploy` does this)"),
            None => format!("check the image name and that the cluster can pull it: kubectl describe pod {name}"),
        };
        Some(self.problem(
            Some(seen.name()),
            Cause::ImageMissing {
                image: image.to_owned(),
            },
            format!("{component} pod {name}: the node does not hold image {image}, and cannot pull it"),
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
        let (name, component, container) = (self.name, self.component, seen.name());
        Some(self.problem(
            Some(container),
            Cause::CannotStart,
            format!("{component} container {container} of pod {name} cannot start: {message}"),
            format!(
                "check the image {} and the container's command: kubectl describe pod {name}",
                seen.image
            ),
            format!("{reason}: {message}"),
        ))
    }

    /// OOMKilled, now or in the previous run: the memory limit is too low.
    fn out_of_memory(&self, seen: &Seen<'_>) -> Option<Problem> {
        let killed = seen.ended().find(|t| t.reason.as_deref() == Some("OOMKilled"))?;
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
        let crash_loop = seen.waiting().is_some_and(|(reason, _)| reason == "CrashLoopBackOff");
        let failed_run = seen.ended().find(|t| t.exit_code != 0);
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
        let probe_kill = last_event(self.events, name, |e| {
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
            .map_or(self.now, |t| t.0.as_second());
        if waiting_for_volume && self.now - since < VOLUME_BINDING_GRACE_SECONDS {
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

    /// Running, but the readiness probe failed as often as its own `failureThreshold`.
    fn not_ready(&self, seen: &Seen<'_>) -> Option<Problem> {
        let running = seen.status.state.as_ref().is_some_and(|s| s.running.is_some());
        if seen.status.ready || !running {
            return None;
        }
        let (name, component) = (self.name, self.component);
        let threshold = seen
            .spec
            .and_then(|c| c.readiness_probe.as_ref())
            .and_then(|p| p.failure_threshold)
            .map_or(3, |t| u32::try_from(t).unwrap_or(3));
        let readiness = |e: &&Event| {
            e.is_about_pod(name) && e.reason() == "Unhealthy" && e.message().starts_with("Readiness probe failed")
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

/// The newest event about pod `name` that `matches`.
fn last_event<'a>(events: &'a [Event], name: &str, matches: impl Fn(&Event) -> bool) -> Option<&'a Event> {
    events
        .iter()
        .filter(|e| e.is_about_pod(name) && matches(e))
        .max_by_key(|e| e.when())
}

/// One line about the pods: `backend 0/1 ready (ContainerCreating), frontend 2/2 ready`.
pub fn progress(pods: &[Pod]) -> String {
    let mut by_component: BTreeMap<&str, (usize, usize, Option<String>)> = BTreeMap::new();
    for pod in pods.iter().filter(|pod| pod.is_current()) {
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
mod tests {
    use super::*;

    fn no_hint(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn pods_of_helm_tests_and_terminating_pods_are_ignored() {
        let pods: Vec<Pod> = crate::k8s::objects::parse_items(
            r#"{"items":[
              {"metadata":{"name":"todo-test","labels":{"app.kubernetes.io/component":"test"}},
               "spec":{"containers":[{"name":"test","image":"todo-backend:abc"}]},
               "status":{"phase":"Failed","containerStatuses":[{"name":"test","image":"todo-backend:abc","ready":false,"restartCount":0,
                 "state":{"terminated":{"exitCode":1,"reason":"Error"}},"lastState":{}}]}},
              {"metadata":{"name":"todo-backend-old","deletionTimestamp":"2025-03-10T10:00:00Z","ownerReferences":[{"kind":"ReplicaSet","name":"todo-backend-1"}]},
               "spec":{"containers":[{"name":"backend","image":"todo-backend:old"}]},
               "status":{"phase":"Running","containerStatuses":[{"name":"backend","image":"todo-backend:old","ready":false,"restartCount":0,
                 "state":{"terminated":{"exitCode":143,"reason":"Error"}},"lastState":{}}]}}
            ]}"#,
            "pods",
        )
        .unwrap();
        assert_eq!(diagnose(&pods, &[], 0, &no_hint), None);
        assert_eq!(progress(&pods), "no pods yet");
    }
}
