//! The current kube context: which cluster it points at, whether that cluster is local (the
//! guard every command that changes something passes), and the architectures of its nodes.
//!
//! Every query is read-only and bounded in time (see [`crate::exec::probe`]); kubectl calls
//! also carry [`KUBECTL_REQUEST_TIMEOUT`] so a dead cluster is reported, not waited for.

use anyhow::{Context, bail};
use serde::Deserialize;
use xshell::{Shell, cmd};

use crate::k8s::objects::{self, Node};
use crate::{
    exec::probe::{self, PROBE_TIMEOUT},
    tools::{kubectl::KUBECTL_REQUEST_TIMEOUT, minikube::DEFAULT_MINIKUBE_PROFILE},
};

/// What kind of cluster a kube context points at, judged by the names local tools give their
/// contexts (and, for Minikube, by its list of profiles).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterKind {
    /// A Minikube profile (the context is named after it).
    Minikube {
        /// The Minikube profile.
        profile: String,
    },
    /// A kind cluster (context `kind-<cluster>`).
    Kind {
        /// The kind cluster's name.
        cluster: String,
    },
    /// A k3d cluster (context `k3d-<cluster>`).
    K3d {
        /// The k3d cluster's name.
        cluster: String,
    },
    /// Docker Desktop's built-in Kubernetes.
    DockerDesktop,
    /// Rancher Desktop's built-in Kubernetes.
    RancherDesktop,
    /// OrbStack's built-in Kubernetes.
    OrbStack,
    /// Colima's built-in Kubernetes.
    Colima,
    /// Anything else: treated as somebody's real cluster.
    Remote,
}

impl ClusterKind {
    /// Whether the cluster runs on this machine (safe to deploy development builds to).
    pub fn is_local(&self) -> bool {
        *self != ClusterKind::Remote
    }

    /// A short description: `minikube`, `kind cluster "dev"`, `not a local cluster`.
    pub fn describe(&self) -> String {
        match self {
            ClusterKind::Minikube { profile } if profile == DEFAULT_MINIKUBE_PROFILE => "minikube".to_owned(),
            ClusterKind::Minikube { profile } => format!("minikube profile \"{profile}\""),
            ClusterKind::Kind { cluster } => format!("kind cluster \"{cluster}\""),
            ClusterKind::K3d { cluster } => format!("k3d cluster \"{cluster}\""),
            ClusterKind::DockerDesktop => "Docker Desktop".to_owned(),
            ClusterKind::RancherDesktop => "Rancher Desktop".to_owned(),
            ClusterKind::OrbStack => "OrbStack".to_owned(),
            ClusterKind::Colima => "Colima".to_owned(),
            ClusterKind::Remote => "not a local cluster".to_owned(),
        }
    }
}

/// Classifies a context by its name. `minikube_profiles` are the names of existing Minikube
/// profiles: `minikube start -p dev` names its context `dev`.
pub fn classify_context(context: &str, minikube_profiles: &[String]) -> ClusterKind {
    if context == DEFAULT_MINIKUBE_PROFILE || minikube_profiles.iter().any(|p| p == context) {
        return ClusterKind::Minikube {
            profile: context.to_owned(),
        };
    }
    if let Some(cluster) = context.strip_prefix("kind-") {
        return ClusterKind::Kind {
            cluster: cluster.to_owned(),
        };
    }
    if let Some(cluster) = context.strip_prefix("k3d-") {
        return ClusterKind::K3d {
            cluster: cluster.to_owned(),
        };
    }
    match context {
        "docker-desktop" | "docker-for-desktop" => ClusterKind::DockerDesktop,
        "rancher-desktop" => ClusterKind::RancherDesktop,
        "orbstack" => ClusterKind::OrbStack,
        _ if context == "colima" || context.starts_with("colima-") => ClusterKind::Colima,
        _ => ClusterKind::Remote,
    }
}

/// The current kube context's name, or `None` when none is set.
pub fn current_context(sh: &Shell) -> anyhow::Result<Option<String>> {
    let probe = probe::run(
        cmd!(sh, "kubectl config current-context {KUBECTL_REQUEST_TIMEOUT}"),
        PROBE_TIMEOUT,
    );
    if probe.succeeded() {
        let name = probe.stdout.trim();
        return Ok((!name.is_empty()).then(|| name.to_owned()));
    }
    if probe.stderr.contains("current-context is not set") {
        return Ok(None);
    }
    bail!("{}", probe.failure())
}

/// The API server URL of the current context's cluster.
pub fn current_server(sh: &Shell) -> anyhow::Result<String> {
    let probe = probe::run(
        cmd!(sh, "kubectl config view --minify -o json {KUBECTL_REQUEST_TIMEOUT}"),
        PROBE_TIMEOUT,
    );
    if !probe.succeeded() {
        bail!("{}", probe.failure());
    }
    parse_minified_server(&probe.stdout)
}

/// The `server` of the only cluster in `kubectl config view --minify -o json`.
/// (Credentials in that output are redacted by kubectl and never read here.)
pub fn parse_minified_server(json: &str) -> anyhow::Result<String> {
    #[derive(Deserialize)]
    struct Config {
        #[serde(default)]
        clusters: Vec<NamedCluster>,
    }
    #[derive(Deserialize)]
    struct NamedCluster {
        cluster: Cluster,
    }
    #[derive(Deserialize)]
    struct Cluster {
        server: String,
    }
    let config: Config = serde_json::from_str(json).context("reading `kubectl config view --minify -o json`")?;
    config
        .clusters
        .into_iter()
        .next()
        .map(|named| named.cluster.server)
        .context("the current context names no cluster")
}

/// The architectures of the cluster's nodes (`kubectl get nodes -o json`).
pub fn node_architectures(sh: &Shell) -> anyhow::Result<Vec<String>> {
    let probe = probe::run(
        cmd!(sh, "kubectl get nodes -o json {KUBECTL_REQUEST_TIMEOUT}"),
        PROBE_TIMEOUT,
    );
    if !probe.succeeded() {
        bail!("{}", probe.failure());
    }
    parse_node_architectures(&probe.stdout)
}

/// The distinct `status.nodeInfo.architecture` values of a `kubectl get nodes -o json` list.
pub fn parse_node_architectures(json: &str) -> anyhow::Result<Vec<String>> {
    let nodes: Vec<Node> = objects::parse_items(json, "nodes")?;
    let mut archs: Vec<String> = nodes
        .into_iter()
        .filter_map(|node| node.status?.node_info.map(|info| info.architecture))
        .collect();
    archs.sort();
    archs.dedup();
    if archs.is_empty() {
        bail!("the cluster has no nodes");
    }
    Ok(archs)
}

/// This machine's architecture in Kubernetes' (Go's) naming, to compare with the nodes'.
pub fn host_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Shape of `kubectl config view --minify -o json` for a Minikube context (kubectl redacts
    // the credentials; certificate paths are what Minikube writes).
    const MINIFIED_CONFIG: &str = r#"{
    "kind": "Config",
    "apiVersion": "v1",
    "preferences": {},
    "clusters": [
        {
            "name": "minikube",
            "cluster": {
                "server": "https://192.168.49.2:8443",
                "certificate-authority": "/home/dev/.minikube/ca.crt",
                "extensions": [
                    {
                        "name": "cluster_info",
                        "extension": {
                            "last-update": "Mon, 10 Mar 2025 10:00:00 UTC",
                            "provider": "minikube.sigs.k8s.io",
                            "version": "v1.35.0"
                        }
                    }
                ]
            }
        }
    ],
    "users": [
        {
            "name": "minikube",
            "user": {
                "client-certificate": "/home/dev/.minikube/profiles/minikube/client.crt",
                "client-key": "/home/dev/.minikube/profiles/minikube/client.key"
            }
        }
    ],
    "contexts": [
        {
            "name": "minikube",
            "context": {
                "cluster": "minikube",
                "user": "minikube",
                "namespace": "default"
            }
        }
    ],
    "current-context": "minikube"
}"#;

    #[test]
    fn the_server_comes_from_the_minified_config() {
        assert_eq!(
            parse_minified_server(MINIFIED_CONFIG).unwrap(),
            "https://192.168.49.2:8443"
        );
        assert!(parse_minified_server(r#"{"kind":"Config","clusters":[]}"#).is_err());
    }

    #[test]
    fn contexts_of_local_tools_are_local() {
        let profiles = vec!["dev".to_owned()];
        assert_eq!(
            classify_context("minikube", &[]),
            ClusterKind::Minikube {
                profile: "minikube".into()
            }
        );
        assert_eq!(
            classify_context("dev", &profiles),
            ClusterKind::Minikube { profile: "dev".into() }
        );
        assert_eq!(
            classify_context("kind-kind", &[]),
            ClusterKind::Kind { cluster: "kind".into() }
        );
        assert_eq!(
            classify_context("k3d-demo", &[]),
            ClusterKind::K3d { cluster: "demo".into() }
        );
        for local in ["docker-desktop", "rancher-desktop", "orbstack", "colima"] {
            assert!(classify_context(local, &[]).is_local(), "{local}");
        }
    }

    #[test]
    fn other_contexts_are_remote() {
        for remote in [
            "gke_acme-prod_europe-west1_main",
            "arn:aws:eks:eu-west-1:123456789012:cluster/prod",
            "dev",
            "kind",
        ] {
            assert_eq!(classify_context(remote, &[]), ClusterKind::Remote, "{remote}");
        }
    }

    // Shape of `kubectl get nodes -o json` (a core/v1 NodeList), trimmed to one node's essentials.
    #[test]
    fn node_architectures_come_from_node_info() {
        let nodes = r#"{
    "apiVersion": "v1",
    "items": [
        {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"labels": {"kubernetes.io/arch": "arm64", "kubernetes.io/hostname": "minikube"}, "name": "minikube"},
            "status": {
                "nodeInfo": {
                    "architecture": "arm64",
                    "bootID": "5a4a4a0c-7a2e-4a1b-9a0e-3c2b1d0e9f8a",
                    "containerRuntimeVersion": "docker://27.4.1",
                    "kernelVersion": "6.10.14-linuxkit",
                    "kubeProxyVersion": "v1.32.0",
                    "kubeletVersion": "v1.32.0",
                    "machineID": "9a1b2c3d4e5f",
                    "operatingSystem": "linux",
                    "osImage": "Ubuntu 22.04.5 LTS",
                    "systemUUID": "9a1b2c3d4e5f"
                }
            }
        }
    ],
    "kind": "List",
    "metadata": {"resourceVersion": ""}
}"#;
        assert_eq!(parse_node_architectures(nodes).unwrap(), vec!["arm64".to_owned()]);
        assert!(parse_node_architectures(r#"{"apiVersion":"v1","items":[],"kind":"List"}"#).is_err());
    }

    #[test]
    fn this_machines_architecture_uses_kubernetes_names() {
        let arch = host_architecture();
        assert!(!arch.is_empty());
        assert_ne!(arch, "x86_64");
        assert_ne!(arch, "aarch64");
    }
}
