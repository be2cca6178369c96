//! Kubernetes objects as kubectl prints them (`-o json`), read into the `k8s-openapi` types: one
//! model of the API for every command, and the few questions the workflow asks of a pod or an
//! event, answered here once.

use std::collections::BTreeMap;

use anyhow::Context;
use serde::{Deserialize, de::DeserializeOwned};

pub use k8s_openapi::api::{
    apps::v1::Deployment,
    core::v1::{Container, ContainerStatus, Event, Node, PersistentVolumeClaim, Pod, Secret, Service},
};

/// The label every object (and pod) of a release carries, with the release's name.
pub const INSTANCE_LABEL: &str = "app.kubernetes.io/instance";
/// The label naming the component: `backend`, `frontend`, `postgresql`.
pub const COMPONENT_LABEL: &str = "app.kubernetes.io/component";

/// The objects of a `kubectl get <kind> -o json` answer (a `List`; an empty one has no items).
pub fn parse_items<T: DeserializeOwned>(json: &str, what: &str) -> anyhow::Result<Vec<T>> {
    #[derive(Deserialize)]
    struct Items<T> {
        #[serde(default = "Vec::new")]
        items: Vec<T>,
    }
    let list: Items<T> = serde_json::from_str(json).with_context(|| format!("reading `kubectl get {what} -o json`"))?;
    Ok(list.items)
}

/// One object of a `kubectl get <kind> <name> -o json` answer.
pub fn parse_object<T: DeserializeOwned>(json: &str, what: &str) -> anyhow::Result<T> {
    serde_json::from_str(json).with_context(|| format!("reading `kubectl get {what} -o json`"))
}

/// The name of an object, empty when it has none (only objects not yet created lack one).
pub fn name(metadata: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> &str {
    metadata.name.as_deref().unwrap_or_default()
}

/// What the workflow asks of a pod.
pub trait PodExt {
    /// Its name.
    fn name(&self) -> &str;
    /// `backend`, `frontend`, `postgresql` (or `pod` without the label).
    fn component(&self) -> &str;
    /// Part of a Deployment or StatefulSet (not a `helm test` pod or a finished Job), and not on
    /// its way out.
    fn is_current(&self) -> bool;
    /// Every container ready.
    fn is_ready(&self) -> bool;
    /// What it is doing, in Kubernetes' words: a waiting reason, else the phase.
    fn state(&self) -> String;
    /// Restarts of all its containers.
    fn restarts(&self) -> u32;
    /// The images its containers run.
    fn images(&self) -> Vec<String>;
    /// `1/1`: ready containers of all.
    fn ready_count(&self) -> String;
    /// Its containers as specified.
    fn containers(&self) -> &[Container];
    /// One status per app container.
    fn container_statuses(&self) -> &[ContainerStatus];
}

impl PodExt for Pod {
    fn name(&self) -> &str {
        name(&self.metadata)
    }

    fn component(&self) -> &str {
        self.metadata
            .labels
            .as_ref()
            .and_then(|labels: &BTreeMap<String, String>| labels.get(COMPONENT_LABEL))
            .map_or("pod", String::as_str)
    }

    fn is_current(&self) -> bool {
        self.metadata.deletion_timestamp.is_none()
            && self
                .metadata
                .owner_references
                .iter()
                .flatten()
                .any(|owner| matches!(owner.kind.as_str(), "ReplicaSet" | "StatefulSet"))
    }

    fn is_ready(&self) -> bool {
        let statuses = self.container_statuses();
        !statuses.is_empty() && statuses.iter().all(|c| c.ready)
    }

    fn state(&self) -> String {
        if self.metadata.deletion_timestamp.is_some() {
            return "Terminating".to_owned();
        }
        self.container_statuses()
            .iter()
            .find_map(|c| waiting_reason(c).map(str::to_owned))
            .unwrap_or_else(|| self.status.as_ref().and_then(|s| s.phase.clone()).unwrap_or_default())
    }

    fn restarts(&self) -> u32 {
        self.container_statuses()
            .iter()
            .map(|c| u32::try_from(c.restart_count).unwrap_or(0))
            .sum()
    }

    fn images(&self) -> Vec<String> {
        self.containers()
            .iter()
            .map(|c| c.image.clone().unwrap_or_default())
            .collect()
    }

    fn ready_count(&self) -> String {
        let ready = self.container_statuses().iter().filter(|c| c.ready).count();
        format!(
            "{ready}/{}",
            self.containers().len().max(self.container_statuses().len())
        )
    }

    fn containers(&self) -> &[Container] {
        self.spec.as_ref().map_or(&[], |spec| spec.containers.as_slice())
    }

    fn container_statuses(&self) -> &[ContainerStatus] {
        self.status
            .as_ref()
            .and_then(|status| status.container_statuses.as_deref())
            .unwrap_or_default()
    }
}

/// Why a container is waiting (`ContainerCreating`, `CrashLoopBackOff`, ...), if it is.
pub fn waiting_reason(status: &ContainerStatus) -> Option<&str> {
    status
        .state
        .as_ref()
        .and_then(|state| state.waiting.as_ref())
        .map(|waiting| waiting.reason.as_deref().unwrap_or_default())
}

/// What the workflow asks of an event.
pub trait EventExt {
    /// Whether it is about `pod`: matched by UID, since a StatefulSet's recreated pod has its
    /// predecessor's name and the predecessor's events stay listed for the event TTL (an hour);
    /// by name only for an event or pod without a UID.
    fn is_about(&self, pod: &Pod) -> bool;
    /// `Unhealthy`, `FailedScheduling`, `BackOff`, ...
    fn reason(&self) -> &str;
    /// The reporter's words.
    fn message(&self) -> &str;
    /// How often it happened (the series' count on newer events, `count` on older ones).
    fn times(&self) -> u32;
    /// When it last happened, in Unix seconds (0 when unknown).
    fn when(&self) -> i64;
}

impl EventExt for Event {
    fn is_about(&self, pod: &Pod) -> bool {
        let object = &self.involved_object;
        object.kind.as_deref() == Some("Pod")
            && match (object.uid.as_deref(), pod.metadata.uid.as_deref()) {
                (Some(event), Some(pod)) => event == pod,
                _ => object.name.as_deref() == Some(name(&pod.metadata)),
            }
    }

    fn reason(&self) -> &str {
        self.reason.as_deref().unwrap_or_default()
    }

    fn message(&self) -> &str {
        self.message.as_deref().unwrap_or_default()
    }

    fn times(&self) -> u32 {
        let count = self.series.as_ref().and_then(|s| s.count).or(self.count);
        count.map_or(1, |n| u32::try_from(n).unwrap_or(1)).max(1)
    }

    fn when(&self) -> i64 {
        self.last_timestamp
            .as_ref()
            .map(|t| t.0.as_second())
            .or_else(|| self.event_time.as_ref().map(|t| t.0.as_second()))
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_about_a_pod_by_uid_and_by_name_only_without_one() {
        let pods: Vec<Pod> = parse_items(
            r#"{"items":[{"metadata":{"name":"todo-postgresql-0","uid":"d2e3f4a5"}},
                         {"metadata":{"name":"todo-postgresql-0"}}]}"#,
            "pods",
        )
        .unwrap();
        let events: Vec<Event> = parse_items(
            r#"{"items":[
              {"metadata":{"name":"a"},"involvedObject":{"kind":"Pod","name":"todo-postgresql-0","uid":"c1d2e3f4"}},
              {"metadata":{"name":"b"},"involvedObject":{"kind":"Pod","name":"todo-postgresql-0","uid":"d2e3f4a5"}},
              {"metadata":{"name":"c"},"involvedObject":{"kind":"Pod","name":"todo-postgresql-0"}},
              {"metadata":{"name":"d"},"involvedObject":{"kind":"StatefulSet","name":"todo-postgresql-0"}}
            ]}"#,
            "events",
        )
        .unwrap();
        let about = |pod: &Pod| -> Vec<bool> { events.iter().map(|e| e.is_about(pod)).collect() };
        // The predecessor of the same name (another UID) is not this pod.
        assert_eq!(about(&pods[0]), [false, true, true, false]);
        assert_eq!(about(&pods[1]), [true, true, true, false]);
    }
}
