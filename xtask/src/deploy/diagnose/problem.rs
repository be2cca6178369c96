//! What a diagnosis finds: the pod at fault, the kind of failure, and what to do about it.

use serde::Serialize;

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
