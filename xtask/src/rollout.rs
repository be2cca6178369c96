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

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::{
    k8s::{
        release::COMPONENT_LABEL,
        secret::{SECRET_NAME, SecretKey},
    },
    timestamps,
};

/// How long a pod may wait for its volume to be provisioned before that counts as a failure.
pub const VOLUME_BINDING_GRACE_SECONDS: i64 = 60;

/// A pod, as much of it as the diagnosis reads.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Pod {
    /// Name, labels, owner, deletion.
    pub metadata: Metadata,
    /// Its containers as specified.
    pub spec: PodSpec,
    /// What the kubelet and the scheduler report.
    pub status: PodStatus,
}

/// The metadata read here.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Metadata {
    /// The pod's name.
    pub name: String,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// Set once the pod is being deleted.
    pub deletion_timestamp: Option<String>,
    /// Its owners (a ReplicaSet for a Deployment's pods).
    pub owner_references: Vec<OwnerReference>,
}

/// An owner of the pod.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct OwnerReference {
    /// `ReplicaSet`, `StatefulSet`, `Job`, ...
    pub kind: String,
}

/// The pod's spec, as much as is read here.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct PodSpec {
    /// The app containers.
    pub containers: Vec<ContainerSpec>,
}

/// One container as specified.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ContainerSpec {
    /// Its name.
    pub name: String,
    /// Its image reference.
    pub image: String,
    /// Requests and limits.
    pub resources: Resources,
    /// Its readiness probe, if any.
    pub readiness_probe: Option<ProbeSpec>,
}

/// Requests and limits (`memory: 128Mi`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Resources {
    /// Limits by resource name.
    pub limits: BTreeMap<String, String>,
    /// Requests by resource name.
    pub requests: BTreeMap<String, String>,
}

/// A probe's thresholds.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ProbeSpec {
    /// Consecutive failures before the probe counts as failed (Kubernetes' default is 3).
    pub failure_threshold: Option<u32>,
}

/// The pod's status.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct PodStatus {
    /// `Pending`, `Running`, `Succeeded`, `Failed`.
    pub phase: String,
    /// `PodScheduled`, `Initialized`, `ContainersReady`, `Ready`.
    pub conditions: Vec<Condition>,
    /// One per app container.
    pub container_statuses: Vec<ContainerStatus>,
}

/// A pod condition.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Condition {
    /// `PodScheduled`, `Ready`, ...
    #[serde(rename = "type")]
    pub kind: String,
    /// `True`, `False`, `Unknown`.
    pub status: String,
    /// `Unschedulable`, ...
    pub reason: Option<String>,
    /// The scheduler's (or kubelet's) words.
    pub message: Option<String>,
    /// When the condition last changed.
    pub last_transition_time: Option<String>,
}

/// A container's status.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ContainerStatus {
    /// The container's name.
    pub name: String,
    /// The image it runs (or tries to).
    pub image: String,
    /// Whether its readiness probe passes.
    pub ready: bool,
    /// How often it was restarted.
    pub restart_count: u32,
    /// What it is doing now.
    pub state: ContainerState,
    /// How its previous run ended.
    pub last_state: ContainerState,
}

/// One of waiting, running, terminated.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ContainerState {
    /// Not running yet (or again): why.
    pub waiting: Option<Waiting>,
    /// Running since.
    pub running: Option<Running>,
    /// Ended: how.
    pub terminated: Option<Terminated>,
}

/// A waiting container.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Waiting {
    /// `ContainerCreating`, `ErrImageNeverPull`, `CrashLoopBackOff`, ...
    pub reason: String,
    /// The kubelet's words.
    pub message: Option<String>,
}

/// A running container.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Running {
    /// Since when.
    pub started_at: Option<String>,
}

/// A terminated container.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Terminated {
    /// Its exit code.
    pub exit_code: i32,
    /// `Error`, `OOMKilled`, `Completed`, ...
    pub reason: Option<String>,
    /// The termination message, if the container wrote one.
    pub message: Option<String>,
}

/// An event (core/v1), as much as is read here.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Event {
    /// What it is about.
    pub involved_object: InvolvedObject,
    /// `Unhealthy`, `FailedScheduling`, `BackOff`, ...
    pub reason: String,
    /// The reporter's words.
    pub message: String,
    /// How often it happened (older events).
    pub count: Option<u32>,
    /// How often it happened (newer events).
    pub series: Option<Series>,
    /// When it last happened.
    pub last_timestamp: Option<String>,
    /// When it happened (newer events).
    pub event_time: Option<String>,
}

/// The object an event is about.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct InvolvedObject {
    /// `Pod`, ...
    pub kind: String,
    /// Its name.
    pub name: String,
}

/// How often a repeated event happened.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Series {
    /// The count.
    pub count: u32,
}

impl Event {
    fn times(&self) -> u32 {
        self.series.as_ref().map(|s| s.count).or(self.count).unwrap_or(1).max(1)
    }

    fn when(&self) -> i64 {
        self.last_timestamp
            .as_deref()
            .or(self.event_time.as_deref())
            .and_then(timestamps::parse_rfc3339)
            .unwrap_or(0)
    }
}

/// The pods in `kubectl get pods -o json`.
pub fn parse_pods(json: &str) -> anyhow::Result<Vec<Pod>> {
    #[derive(Deserialize)]
    struct List {
        #[serde(default)]
        items: Vec<Pod>,
    }
    let list: List = serde_json::from_str(json).context("reading `kubectl get pods -o json`")?;
    Ok(list.items)
}

/// The events in `kubectl get events -o json`.
pub fn parse_events(json: &str) -> anyhow::Result<Vec<Event>> {
    #[derive(Deserialize)]
    struct List {
        #[serde(default)]
        items: Vec<Event>,
    }
    let list: List = serde_json::from_str(json).context("reading `kubectl get events -o json`")?;
    Ok(list.items)
}

impl Pod {
    /// `backend`, `frontend`, `postgresql` (or `pod` without the label).
    pub fn component(&self) -> &str {
        self.metadata.labels.get(COMPONENT_LABEL).map_or("pod", String::as_str)
    }

    /// Part of a Deployment or StatefulSet (not a `helm test` pod or a finished Job), and not on
    /// its way out.
    pub fn is_current(&self) -> bool {
        self.metadata.deletion_timestamp.is_none()
            && self
                .metadata
                .owner_references
                .iter()
                .any(|owner| matches!(owner.kind.as_str(), "ReplicaSet" | "StatefulSet"))
    }

    /// Every container ready.
    pub fn is_ready(&self) -> bool {
        !self.status.container_statuses.is_empty() && self.status.container_statuses.iter().all(|c| c.ready)
    }

    /// What it is doing, in Kubernetes' words: a waiting reason, else the phase.
    pub fn state(&self) -> String {
        if self.metadata.deletion_timestamp.is_some() {
            return "Terminating".to_owned();
        }
        self.status
            .container_statuses
            .iter()
            .find_map(|c| c.state.waiting.as_ref().map(|w| w.reason.clone()))
            .unwrap_or_else(|| self.status.phase.clone())
    }

    /// Restarts of all its containers.
    pub fn restarts(&self) -> u32 {
        self.status.container_statuses.iter().map(|c| c.restart_count).sum()
    }

    /// The images its containers run.
    pub fn images(&self) -> Vec<String> {
        self.spec.containers.iter().map(|c| c.image.clone()).collect()
    }

    /// `1/1`: ready containers of all.
    pub fn ready_count(&self) -> String {
        let ready = self.status.container_statuses.iter().filter(|c| c.ready).count();
        format!(
            "{ready}/{}",
            self.spec.containers.len().max(self.status.container_statuses.len())
        )
    }
}

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
    pods.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    pods.into_iter()
        .find_map(|pod| diagnose_pod(pod, events, now, load_hint))
}

fn diagnose_pod(pod: &Pod, events: &[Event], now: i64, load_hint: &dyn Fn(&str) -> Option<String>) -> Option<Problem> {
    let name = &pod.metadata.name;
    let component = pod.component();
    let problem = |container: Option<&str>, cause: Cause, reason: String, fix: String, evidence: String| Problem {
        pod: name.clone(),
        component: component.to_owned(),
        container: container.map(str::to_owned),
        cause,
        reason,
        fix,
        evidence,
    };
    for status in &pod.status.container_statuses {
        let container = status.name.as_str();
        let spec = pod.spec.containers.iter().find(|c| c.name == container);
        let image = spec.map_or(status.image.as_str(), |s| s.image.as_str());
        if let Some(waiting) = &status.state.waiting {
            let message = waiting.message.clone().unwrap_or_default();
            let evidence = format!("{}: {message}", waiting.reason);
            match waiting.reason.as_str() {
                "ErrImageNeverPull" | "ErrImagePull" | "ImagePullBackOff" => {
                    let fix = match load_hint(image) {
                        Some(hint) => format!("load it into the cluster: {hint}   (`cargo xtask deploy` does this)"),
                        None => format!(
                            "check the image name and that the cluster can pull it: kubectl describe pod {name}"
                        ),
                    };
                    return Some(problem(
                        Some(container),
                        Cause::ImageMissing {
                            image: image.to_owned(),
                        },
                        format!("{component} pod {name}: the node does not hold image {image}, and cannot pull it"),
                        fix,
                        evidence,
                    ));
                }
                "CreateContainerConfigError" => {
                    let (reason, fix) = missing_config(&message, component, name);
                    return Some(problem(Some(container), Cause::MissingConfig, reason, fix, evidence));
                }
                "CreateContainerError" | "RunContainerError" | "InvalidImageName" => {
                    return Some(problem(
                        Some(container),
                        Cause::CannotStart,
                        format!("{component} container {container} of pod {name} cannot start: {message}"),
                        format!("check the image {image} and the container's command: kubectl describe pod {name}"),
                        evidence,
                    ));
                }
                _ => {}
            }
        }
        let ended = [&status.state.terminated, &status.last_state.terminated];
        if let Some(killed) = ended
            .iter()
            .filter_map(|t| t.as_ref())
            .find(|t| t.reason.as_deref() == Some("OOMKilled"))
        {
            let limit = spec.and_then(|s| s.resources.limits.get("memory")).cloned();
            let values_key = memory_values_key(component);
            let raise = limit
                .as_deref()
                .and_then(double_quantity)
                .unwrap_or_else(|| "256Mi".to_owned());
            let over = limit
                .as_deref()
                .map_or_else(|| "its memory".to_owned(), |l| format!("its memory limit of {l}"));
            return Some(problem(
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
            ));
        }
        let crash_loop = status
            .state
            .waiting
            .as_ref()
            .is_some_and(|w| w.reason == "CrashLoopBackOff");
        let failed_run = ended.iter().filter_map(|t| t.as_ref()).find(|t| t.exit_code != 0);
        if crash_loop || failed_run.is_some() {
            let exit_code = failed_run.map_or(0, |t| t.exit_code);
            let mut reason = format!(
                "{component} container {container} of pod {name} {}{}",
                if exit_code == 0 {
                    "keeps exiting".to_owned()
                } else {
                    format!("exits with code {exit_code}{}", exit_meaning(exit_code))
                },
                match status.restart_count {
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
            let probe_kill = last_event(events, name, |e| {
                e.reason == "Unhealthy" && (e.message.starts_with("Liveness") || e.message.starts_with("Startup"))
            });
            if let Some(event) = probe_kill {
                reason.push_str(&format!("; the kubelet restarted it after: {}", event.message.trim()));
            }
            let evidence = status
                .state
                .waiting
                .as_ref()
                .map(|w| format!("{}: {}", w.reason, w.message.clone().unwrap_or_default()))
                .unwrap_or_else(|| format!("terminated with exit code {exit_code}"));
            return Some(problem(
                Some(container),
                Cause::Crashed {
                    exit_code,
                    restarts: status.restart_count,
                },
                reason,
                format!(
                    "its log says why (the last lines are shown above; all of it: `cargo xtask logs {component} \
                     --previous`); fix that and deploy again"
                ),
                evidence,
            ));
        }
    }

    if let Some(condition) = pod
        .status
        .conditions
        .iter()
        .find(|c| c.kind == "PodScheduled" && c.status == "False" && c.reason.as_deref() == Some("Unschedulable"))
    {
        let message = condition.message.clone().unwrap_or_default();
        let waiting_for_volume = message.contains("unbound immediate PersistentVolumeClaims");
        let since = condition
            .last_transition_time
            .as_deref()
            .and_then(timestamps::parse_rfc3339)
            .unwrap_or(now);
        if !waiting_for_volume || now - since >= VOLUME_BINDING_GRACE_SECONDS {
            return Some(problem(
                None,
                Cause::Unschedulable,
                format!("{component} pod {name} cannot be scheduled: {message}"),
                unschedulable_fix(&message, component, name),
                format!("Unschedulable: {message}"),
            ));
        }
    }

    for status in &pod.status.container_statuses {
        if status.ready || status.state.running.is_none() {
            continue;
        }
        let threshold = pod
            .spec
            .containers
            .iter()
            .find(|c| c.name == status.name)
            .and_then(|c| c.readiness_probe.as_ref())
            .and_then(|p| p.failure_threshold)
            .unwrap_or(3);
        let readiness = |e: &&Event| {
            e.involved_object.kind == "Pod"
                && e.involved_object.name == *name
                && e.reason == "Unhealthy"
                && e.message.starts_with("Readiness probe failed")
        };
        let failures: u32 = events.iter().filter(readiness).map(Event::times).sum();
        if failures >= threshold {
            let last = events.iter().filter(readiness).max_by_key(|e| e.when());
            let message = last.map(|e| e.message.trim().to_owned()).unwrap_or_default();
            let fix = if component == "backend" {
                "the backend's /ready answers 503 while its database is unreachable or not migrated: its log says \
                 which (`cargo xtask logs backend`)"
                    .to_owned()
            } else {
                format!("its log says why it is not ready: cargo xtask logs {component}")
            };
            return Some(problem(
                Some(&status.name),
                Cause::NotReady { failures },
                format!(
                    "{component} pod {name} runs but never becomes ready: {message} ({failures} failed readiness checks)"
                ),
                fix,
                message,
            ));
        }
    }
    None
}

/// The newest event about pod `name` that `matches`.
fn last_event<'a>(events: &'a [Event], name: &str, matches: impl Fn(&Event) -> bool) -> Option<&'a Event> {
    events
        .iter()
        .filter(|e| e.involved_object.kind == "Pod" && e.involved_object.name == name && matches(e))
        .max_by_key(|e| e.when())
}

/// The reason and fix for a CreateContainerConfigError message, such as
/// `couldn't find key OPENAI_API_KEY in Secret todo/todo-secrets` or `secret "todo-secrets" not found`.
fn missing_config(message: &str, component: &str, pod: &str) -> (String, String) {
    if let Some(rest) = message.strip_prefix("couldn't find key ") {
        if let Some((key, object)) = rest.split_once(" in Secret ") {
            let secret = object.rsplit('/').next().unwrap_or(object).trim();
            let fix = match SecretKey::from_name(key) {
                Some(known) if secret == SECRET_NAME => format!("add it: {}", known.fix()),
                _ => format!("add key {key} to Secret {secret}"),
            };
            return (
                format!("{component} pod {pod} cannot start: the Secret {secret} has no key {key}"),
                fix,
            );
        }
        if let Some((key, object)) = rest.split_once(" in ConfigMap ") {
            let configmap = object.rsplit('/').next().unwrap_or(object).trim();
            return (
                format!("{component} pod {pod} cannot start: the ConfigMap {configmap} has no key {key}"),
                "the chart renders it: deploy again, and check `helm get manifest` if it persists".to_owned(),
            );
        }
    }
    if let Some(name) = message
        .strip_prefix("secret \"")
        .and_then(|rest| rest.strip_suffix("\" not found"))
    {
        let fix = if name == SECRET_NAME {
            "create it: cargo xtask secrets".to_owned()
        } else {
            format!("create Secret {name}, or point secrets.existingSecret at one that exists")
        };
        return (
            format!("{component} pod {pod} cannot start: the Secret {name} does not exist"),
            fix,
        );
    }
    if let Some(name) = message
        .strip_prefix("configmap \"")
        .and_then(|rest| rest.strip_suffix("\" not found"))
    {
        return (
            format!("{component} pod {pod} cannot start: the ConfigMap {name} does not exist"),
            "the chart renders it: deploy again, and check `helm get manifest` if it persists".to_owned(),
        );
    }
    (
        format!("{component} pod {pod} cannot start: {message}"),
        format!("kubectl describe pod {pod}"),
    )
}

fn unschedulable_fix(message: &str, component: &str, pod: &str) -> String {
    let key = match component {
        "postgresql" => "database.postgresql.resources.requests".to_owned(),
        other => format!("{other}.resources.requests"),
    };
    if message.contains("Insufficient memory") || message.contains("Insufficient cpu") {
        let resource = if message.contains("Insufficient memory") {
            "memory"
        } else {
            "cpu"
        };
        format!(
            "the node has too little {resource} left: lower the request (cargo xtask deploy --set {key}.{resource}=...) \
             or give the cluster more (minikube delete && minikube start --cpus=2 --memory=4096mb, see \
             docs/deployment/minikube.md)"
        )
    } else if message.contains("PersistentVolumeClaim") {
        "no volume was provisioned for the claim: the cluster needs a default StorageClass \
         (Minikube: minikube addons enable default-storageclass && minikube addons enable storage-provisioner)"
            .to_owned()
    } else if message.contains("taint") {
        "the nodes' taints keep the pod off them: kubectl describe nodes".to_owned()
    } else {
        format!("kubectl describe pod {pod}")
    }
}

/// The values key of a component's memory limit.
fn memory_values_key(component: &str) -> String {
    match component {
        "postgresql" => "database.postgresql.resources.limits.memory".to_owned(),
        other => format!("{other}.resources.limits.memory"),
    }
}

/// Twice a quantity such as `128Mi` or `1Gi` (`None` for forms not worth parsing).
fn double_quantity(quantity: &str) -> Option<String> {
    let digits = quantity.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &quantity[digits.len()..];
    let value: u64 = digits.parse().ok()?;
    Some(format!("{}{unit}", value * 2))
}

/// What an exit code usually means, for people (`, killed by SIGKILL`).
fn exit_meaning(code: i32) -> &'static str {
    match code {
        126 => " (the command cannot be executed)",
        127 => " (the command was not found)",
        134 => " (aborted: SIGABRT)",
        137 => " (killed: SIGKILL)",
        139 => " (segmentation fault)",
        143 => " (stopped: SIGTERM)",
        _ => "",
    }
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
    fn quantities_double_with_their_unit() {
        assert_eq!(double_quantity("128Mi").as_deref(), Some("256Mi"));
        assert_eq!(double_quantity("1Gi").as_deref(), Some("2Gi"));
        assert_eq!(double_quantity("0.5Gi"), None);
    }

    #[test]
    fn config_errors_name_the_missing_piece_and_the_command() {
        let (reason, fix) = missing_config(
            "couldn't find key OPENAI_API_KEY in Secret todo/todo-secrets",
            "backend",
            "todo-backend-1",
        );
        assert_eq!(
            reason,
            "backend pod todo-backend-1 cannot start: the Secret todo-secrets has no key OPENAI_API_KEY"
        );
        assert!(fix.contains("cargo xtask secrets --openai-key-from-env"), "{fix}");
        let (reason, fix) = missing_config("secret \"todo-secrets\" not found", "backend", "p");
        assert!(reason.ends_with("the Secret todo-secrets does not exist"), "{reason}");
        assert_eq!(fix, "create it: cargo xtask secrets");
    }

    #[test]
    fn pods_of_helm_tests_and_terminating_pods_are_ignored() {
        let pods = parse_pods(
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
        )
        .unwrap();
        assert_eq!(diagnose(&pods, &[], 0, &no_hint), None);
        assert_eq!(progress(&pods), "no pods yet");
    }
}
