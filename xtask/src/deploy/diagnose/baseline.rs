//! What the watcher remembers across polls: the release's pods as they were just before `helm
//! upgrade` ([`Baseline`]), so the previous revision's pods and their old restarts are not
//! charged to this deploy, and since when a container has shown an error that may clear by
//! itself ([`Lingering`]), measured on deploy's own monotonic clock.

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use k8s_openapi::{api::core::v1::ContainerStateTerminated, apimachinery::pkg::apis::meta::v1::Time};

use crate::k8s::{
    node_images::qualify,
    objects::{Pod, PodExt, waiting_reason},
};

/// The release's pods before the upgrade, and the image each component is deployed with.
#[derive(Debug, Default, Clone)]
pub struct Baseline {
    /// Per pod UID, per container: what it had been through.
    pods: BTreeMap<String, BTreeMap<String, Before>>,
    /// Per component (`backend`), the image reference this deploy sets, qualified.
    deployed: BTreeMap<String, String>,
}

/// One container before the upgrade: its restarts and when its runs had ended.
#[derive(Debug, Clone)]
struct Before {
    restarts: i32,
    finished: Vec<Time>,
}

impl Baseline {
    /// The pods before the upgrade, and `deployed`: (component, image reference) this deploy sets.
    pub fn new<'a>(pods: &[Pod], deployed: impl IntoIterator<Item = (&'a str, &'a str)>) -> Baseline {
        let pods = pods
            .iter()
            .filter_map(|pod| {
                let uid = pod.metadata.uid.clone()?;
                let containers = pod
                    .container_statuses()
                    .iter()
                    .map(|status| {
                        let ended = [status.state.as_ref(), status.last_state.as_ref()];
                        let finished = ended
                            .into_iter()
                            .flatten()
                            .filter_map(|state| state.terminated.as_ref()?.finished_at.clone())
                            .collect();
                        let before = Before {
                            restarts: status.restart_count,
                            finished,
                        };
                        (status.name.clone(), before)
                    })
                    .collect();
                Some((uid, containers))
            })
            .collect();
        let deployed = deployed
            .into_iter()
            .map(|(component, reference)| (component.to_owned(), qualify(reference)))
            .collect();
        Baseline { pods, deployed }
    }

    /// Whether the pod belongs to the rollout: current (not a `helm test` pod, not terminating),
    /// and not a pod of the previous revision, i.e. one that existed before the upgrade and runs
    /// another image than this deploy gives its component.
    pub fn is_rolling_out(&self, pod: &Pod) -> bool {
        if !pod.is_current() {
            return false;
        }
        let superseded = self
            .deployed
            .get(pod.component())
            .is_some_and(|wanted| !pod.images().iter().any(|image| qualify(image) == *wanted));
        !(self.existed(pod) && superseded)
    }

    /// Whether the pod existed before the upgrade.
    pub fn existed(&self, pod: &Pod) -> bool {
        pod.metadata.uid.as_ref().is_some_and(|uid| self.pods.contains_key(uid))
    }

    /// Whether `ended`, a run of container `container` of `pod`, ended during this deploy (or the
    /// pod is new): a run that had already ended before the upgrade is history.
    pub fn ended_since(&self, pod: &Pod, container: &str, restarts: i32, ended: &ContainerStateTerminated) -> bool {
        match self.before(pod, container) {
            None => true,
            Some(before) => match &ended.finished_at {
                Some(finished) => !before.finished.contains(finished),
                None => restarts > before.restarts,
            },
        }
    }

    /// Whether the container restarted during this deploy (or the pod is new).
    pub fn restarted_since(&self, pod: &Pod, container: &str, restarts: i32) -> bool {
        self.before(pod, container)
            .is_none_or(|before| restarts > before.restarts)
    }

    fn before(&self, pod: &Pod, container: &str) -> Option<&Before> {
        self.pods.get(pod.metadata.uid.as_deref()?)?.get(container)
    }
}

/// Errors that often clear by themselves, grouped so that one turning into the other (an
/// `ErrImagePull` becoming `ImagePullBackOff` between retries) keeps counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transient {
    /// `ErrImagePull`, `ImagePullBackOff`: rate limits, slow DNS, a registry hiccup.
    Pull,
    /// `CreateContainerError` (containerd's "failed to reserve container name" clears on retry).
    Create,
}

impl Transient {
    /// The group of a container's waiting reason, if it is one that may clear by itself.
    pub fn of(reason: &str) -> Option<Transient> {
        match reason {
            "ErrImagePull" | "ImagePullBackOff" => Some(Transient::Pull),
            "CreateContainerError" => Some(Transient::Create),
            _ => None,
        }
    }
}

/// Since when (deploy's monotonic clock) each container has been showing a transient error.
#[derive(Debug, Default, Clone)]
pub struct Lingering {
    since: BTreeMap<(String, String), (Transient, Instant)>,
}

impl Lingering {
    /// Notes the transient errors showing in `pods` at `at`; an error that cleared (or changed
    /// kind) starts again from zero.
    pub fn observe(&mut self, pods: &[Pod], at: Instant) {
        let mut seen = BTreeMap::new();
        for pod in pods {
            let Some(uid) = pod.metadata.uid.as_deref() else {
                continue;
            };
            for status in pod.container_statuses() {
                let Some(kind) = waiting_reason(status).and_then(Transient::of) else {
                    continue;
                };
                let key = (uid.to_owned(), status.name.clone());
                let since = match self.since.get(&key) {
                    Some((was, since)) if *was == kind => *since,
                    _ => at,
                };
                seen.insert(key, (kind, since));
            }
        }
        self.since = seen;
    }

    /// How long the container has shown its transient error, as of `at` (zero if not seen).
    pub fn lasted(&self, pod: &Pod, container: &str, at: Instant) -> Duration {
        pod.metadata
            .uid
            .as_ref()
            .and_then(|uid| self.since.get(&(uid.clone(), container.to_owned())))
            .map_or(Duration::ZERO, |(_, since)| at.saturating_duration_since(*since))
    }
}
