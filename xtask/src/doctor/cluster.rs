//! The checks about the cluster: the kube context and whether it is local, the API server,
//! Minikube's status, size and addons, and the nodes' architecture against this machine's.

use std::collections::BTreeMap;

use super::{
    Check,
    facts::{Facts, Found, KubeContext},
};
use crate::{
    k8s::context::ClusterKind,
    tools::minikube::{
        self, DEFAULT_MINIKUBE_PROFILE, MinikubeProfile, MinikubeState, MinikubeStatus, RECOMMENDED_MINIKUBE_ADDONS,
        RECOMMENDED_MINIKUBE_CPUS, RECOMMENDED_MINIKUBE_MEMORY_MIB,
    },
};

/// The current context must point at a local cluster.
pub(super) fn context_check(facts: &Facts) -> Check {
    const NAME: &str = "kube-context";
    match &facts.context {
        KubeContext::NoKubectl => Check::skip(NAME, "unknown: kubectl is not installed"),
        KubeContext::Unreadable(why) => Check::fail(
            NAME,
            format!("could not be read: {why}"),
            "check the kubeconfig: kubectl config view (KUBECONFIG or ~/.kube/config)",
        ),
        KubeContext::Unset => Check::fail(NAME, "none is set", select_local_context(facts)),
        KubeContext::Current { name, server, kind } => {
            let server = server.as_deref().unwrap_or("unknown");
            if kind.is_local() {
                Check::ok(NAME, format!("{name}: local ({}), server {server}", kind.describe()))
            } else {
                Check::fail(
                    NAME,
                    format!("{name}: not a local cluster (server {server})"),
                    select_local_context(facts),
                )
            }
        }
    }
}

/// How to make a local cluster current: switch to an existing Minikube profile, else create one.
fn select_local_context(facts: &Facts) -> String {
    let existing = match &facts.minikube {
        Found::Present(minikube) => minikube
            .profiles
            .iter()
            .flatten()
            .find(|profile| profile.name == minikube.profile)
            .map(|profile| profile.name.clone()),
        _ => None,
    };
    match existing {
        Some(profile) => format!("kubectl config use-context {profile}"),
        None => format!(
            "{} (it creates the cluster and selects its context)",
            minikube::minikube_command_line(&minikube::minikube_start_args(DEFAULT_MINIKUBE_PROFILE))
        ),
    }
}

/// The current context's API server must answer.
pub(super) fn cluster_check(facts: &Facts) -> Check {
    const NAME: &str = "cluster";
    let KubeContext::Current { kind, .. } = &facts.context else {
        return Check::skip(NAME, "no current context");
    };
    let server = match &facts.kubectl {
        Found::Present(version) => &version.server,
        _ => return Check::skip(NAME, "kubectl is not usable"),
    };
    match server {
        Ok(version) => Check::ok(NAME, format!("reachable, Kubernetes {}", version.git_version)),
        Err(why) => {
            let fix = match kind {
                ClusterKind::Minikube { profile } => minikube_fix(facts).unwrap_or_else(|| {
                    minikube::minikube_command_line(
                        &[vec!["start".to_owned()], minikube::profile_args(profile)].concat(),
                    )
                }),
                ClusterKind::Kind { cluster } => format!(
                    "docker start {cluster}-control-plane (or recreate it: kind create cluster --name {cluster})"
                ),
                ClusterKind::K3d { cluster } => format!("k3d cluster start {cluster}"),
                ClusterKind::DockerDesktop => "start Docker Desktop and enable Kubernetes in its settings".to_owned(),
                ClusterKind::RancherDesktop => "start Rancher Desktop with Kubernetes enabled".to_owned(),
                ClusterKind::OrbStack => "start OrbStack and enable Kubernetes in its settings".to_owned(),
                ClusterKind::Colima => "colima start --kubernetes".to_owned(),
                ClusterKind::Remote => "check the connection: kubectl cluster-info".to_owned(),
            };
            Check::fail(NAME, format!("not reachable: {why}"), fix)
        }
    }
}

/// The command that brings the examined Minikube cluster up, if it is not running.
fn minikube_fix(facts: &Facts) -> Option<String> {
    let Found::Present(minikube) = &facts.minikube else {
        return None;
    };
    let profile = &minikube.profile;
    let with_profile = |verb: &str| {
        minikube::minikube_command_line(&[vec![verb.to_owned()], minikube::profile_args(profile)].concat())
    };
    match minikube.status.as_ref()? {
        Ok(Some(status)) => match status.state() {
            MinikubeState::Running => None,
            MinikubeState::Paused => Some(with_profile("unpause")),
            MinikubeState::Stopped | MinikubeState::Degraded => Some(with_profile("start")),
            MinikubeState::Nonexistent => {
                Some(minikube::minikube_command_line(&minikube::minikube_start_args(profile)))
            }
        },
        Ok(None) => Some(minikube::minikube_command_line(&minikube::minikube_start_args(profile))),
        Err(_) => None,
    }
}

/// Minikube's status, size and addons (skipped when Minikube is not the cluster in use).
pub(super) fn minikube_cluster_checks(facts: &Facts) -> [Check; 3] {
    let minikube = match &facts.minikube {
        Found::Present(minikube) => minikube,
        other => {
            let why = if matches!(other, Found::Missing) {
                "minikube is not installed"
            } else {
                "minikube is not working"
            };
            return [
                Check::skip(STATUS, why),
                Check::skip(CONFIG, why),
                Check::skip(ADDONS, why),
            ];
        }
    };
    let Some(status) = &minikube.status else {
        let why = match facts.context.other_local_cluster() {
            Some(kind) => format!("not used: the current context is {}", kind.describe()),
            None => "not examined".to_owned(),
        };
        return [
            Check::skip(STATUS, why.clone()),
            Check::skip(CONFIG, why.clone()),
            Check::skip(ADDONS, why),
        ];
    };
    [
        minikube_status_check(facts, &minikube.profile, status),
        minikube_config_check(&minikube.profile, &minikube.profiles),
        minikube_addons_check(&minikube.profile, &minikube.addons),
    ]
}

/// The names of the three Minikube checks.
const STATUS: &str = "minikube-status";
const CONFIG: &str = "minikube-config";
const ADDONS: &str = "minikube-addons";

/// Whether the profile's cluster runs.
fn minikube_status_check(facts: &Facts, profile: &str, status: &Result<Option<MinikubeStatus>, String>) -> Check {
    let fix = minikube_fix(facts);
    match status {
        Err(why) => Check::fail(
            STATUS,
            format!("{profile}: could not be read: {why}"),
            minikube::minikube_command_line(&[vec!["logs".to_owned()], minikube::profile_args(profile)].concat()),
        ),
        Ok(None) => Check::fail(
            STATUS,
            format!("{profile}: no such cluster yet"),
            fix.clone().unwrap_or_default(),
        ),
        Ok(Some(status)) => match status.state() {
            MinikubeState::Running => Check::ok(STATUS, format!("{profile}: {}", status.summary())),
            state => Check::fail(
                STATUS,
                format!("{profile}: {} ({})", state_word(state), status.summary()),
                fix.clone().unwrap_or_default(),
            ),
        },
    }
}

/// Whether the profile's cluster has the recommended size.
fn minikube_config_check(profile: &str, profiles: &Result<Vec<MinikubeProfile>, String>) -> Check {
    match profiles {
        Err(why) => Check::warn(
            CONFIG,
            format!("could not list profiles: {why}"),
            "see why: minikube profile list",
        ),
        Ok(profiles) => match profiles.iter().find(|p| p.name == profile) {
            None => Check::skip(CONFIG, format!("{profile}: no such cluster yet")),
            Some(p) => {
                let detail = format!(
                    "{profile}: driver {}, {} CPUs, {} MiB memory, Kubernetes {} on {}",
                    p.driver, p.cpus, p.memory_mib, p.kubernetes_version, p.container_runtime
                );
                if p.cpus >= RECOMMENDED_MINIKUBE_CPUS && p.memory_mib >= RECOMMENDED_MINIKUBE_MEMORY_MIB {
                    Check::ok(CONFIG, detail)
                } else {
                    Check::warn(
                        CONFIG,
                        format!(
                            "{detail}; recommended: {RECOMMENDED_MINIKUBE_CPUS} CPUs, {RECOMMENDED_MINIKUBE_MEMORY_MIB} MiB"
                        ),
                        format!(
                            "recreate it with the recommended size (its workloads are lost): {} && {}",
                            minikube::minikube_command_line(
                                &[vec!["delete".to_owned()], minikube::profile_args(profile)].concat()
                            ),
                            minikube::minikube_command_line(&minikube::minikube_start_args(profile))
                        ),
                    )
                }
            }
        },
    }
}

/// Whether the recommended addons are enabled.
fn minikube_addons_check(profile: &str, addons: &Option<Result<BTreeMap<String, Option<bool>>, String>>) -> Check {
    match addons {
        None => Check::skip(ADDONS, format!("{profile}: no such cluster yet")),
        Some(Err(why)) => Check::warn(
            ADDONS,
            format!("could not list addons: {why}"),
            "see why: minikube addons list",
        ),
        Some(Ok(addons)) => {
            let states: Vec<(&str, Option<bool>)> = RECOMMENDED_MINIKUBE_ADDONS
                .iter()
                .map(|&name| (name, addons.get(name).copied().flatten()))
                .collect();
            let detail = states
                .iter()
                .map(|(name, enabled)| match enabled {
                    Some(true) => format!("{name} enabled"),
                    Some(false) => format!("{name} disabled"),
                    None => format!("{name} unknown"),
                })
                .collect::<Vec<_>>()
                .join(", ");
            let missing: Vec<String> = states
                .iter()
                .filter(|(_, enabled)| *enabled != Some(true))
                .map(|(name, _)| {
                    minikube::minikube_command_line(
                        &[
                            vec!["addons".to_owned(), "enable".to_owned(), (*name).to_owned()],
                            minikube::profile_args(profile),
                        ]
                        .concat(),
                    )
                })
                .collect();
            if missing.is_empty() {
                Check::ok(ADDONS, detail)
            } else {
                Check::warn(ADDONS, detail, missing.join(" && "))
            }
        }
    }
}

fn state_word(state: MinikubeState) -> &'static str {
    match state {
        MinikubeState::Running => "running",
        MinikubeState::Paused => "paused",
        MinikubeState::Stopped => "stopped",
        MinikubeState::Nonexistent => "its machine does not exist",
        MinikubeState::Degraded => "not fully running",
    }
}

/// Images built on this machine run only on nodes of the same architecture.
pub(super) fn architecture_check(facts: &Facts) -> Check {
    const NAME: &str = "architecture";
    let host = &facts.host_architecture;
    match &facts.node_architectures {
        None => Check::skip(NAME, format!("this machine is {host}; no local cluster answered")),
        Some(Err(why)) => Check::warn(
            NAME,
            format!("this machine is {host}; nodes could not be listed: {why}"),
            "see why: kubectl get nodes",
        ),
        Some(Ok(archs)) if archs.iter().all(|arch| arch == host) => {
            Check::ok(NAME, format!("{host} (nodes and this machine)"))
        }
        Some(Ok(archs)) => Check::warn(
            NAME,
            format!(
                "nodes are {}, this machine is {host}: binaries built here do not run there",
                archs.join(", ")
            ),
            format!(
                "build the images for linux/{} (cargo xtask build-images builds inside a Rust container when the architectures differ)",
                archs[0]
            ),
        ),
    }
}
