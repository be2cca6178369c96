//! Minikube: the recommended cluster size and addons, the command that starts it, and what
//! `minikube version`, `profile list`, `status` and `addons list` say.

use std::collections::BTreeMap;

use anyhow::{Context, bail};
use serde::Deserialize;
use xshell::{Shell, cmd};

use crate::{
    exec::probe::{self, PROBE_TIMEOUT},
    tools::version::tool_version,
};

/// The profile (and kube context) name Minikube uses unless told otherwise.
pub const DEFAULT_MINIKUBE_PROFILE: &str = "minikube";

/// CPUs recommended for the Minikube cluster. Two is Minikube's own minimum and is enough: the
/// app's two services idle near zero CPU, and the control plane plus ingress and metrics-server
/// fit in two cores; more mostly speeds up image loading and pod start-up.
pub const RECOMMENDED_MINIKUBE_CPUS: u32 = 2;

/// Memory (MiB) recommended for the Minikube cluster. The control plane (etcd, apiserver,
/// controller-manager, scheduler, CoreDNS, kubelet) needs about 1.5 GiB; the ingress controller
/// and metrics-server about 250 MiB; the backend, frontend and the optional in-cluster PostgreSQL
/// about 300 MiB, doubled briefly during a rolling update; images loaded with `minikube image
/// load` pass through the node's memory too. 4 GiB leaves headroom where Minikube's 2 GiB floor
/// leads to evicted pods.
pub const RECOMMENDED_MINIKUBE_MEMORY_MIB: u64 = 4096;

/// Minikube addons the workflow expects: `ingress` serves the chart's optional Ingress,
/// `metrics-server` makes `kubectl top` and the diagnostics after a deploy show resource use.
pub const RECOMMENDED_MINIKUBE_ADDONS: [&str; 2] = ["ingress", "metrics-server"];

/// The arguments that create (or start) a Minikube cluster with the recommended settings:
/// `minikube <these>`. Starting an existing, stopped cluster keeps the size it was created with.
pub fn minikube_start_args(profile: &str) -> Vec<String> {
    let mut args = vec![
        "start".to_owned(),
        format!("--cpus={RECOMMENDED_MINIKUBE_CPUS}"),
        format!("--memory={RECOMMENDED_MINIKUBE_MEMORY_MIB}mb"),
    ];
    args.extend(
        RECOMMENDED_MINIKUBE_ADDONS
            .iter()
            .map(|addon| format!("--addons={addon}")),
    );
    args.extend(profile_args(profile));
    args
}

/// `-p <profile>`, or nothing for the default profile (so suggested commands stay short).
pub fn profile_args(profile: &str) -> Vec<String> {
    if profile == DEFAULT_MINIKUBE_PROFILE {
        Vec::new()
    } else {
        vec!["-p".to_owned(), profile.to_owned()]
    }
}

/// A command line for people to copy: `minikube <args...>`.
pub fn minikube_command_line(args: &[String]) -> String {
    std::iter::once("minikube")
        .chain(args.iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `minikube version --short`.
pub fn minikube_version(sh: &Shell) -> anyhow::Result<String> {
    tool_version(sh, "minikube", &["version", "--short"])
}

/// One Minikube profile (cluster) from `minikube profile list -o json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MinikubeProfile {
    /// The profile name (also its kube context's name).
    pub name: String,
    /// `Running`, `Stopped`, `Paused`, ... as Minikube reports it.
    pub status: String,
    /// The driver: `docker`, `podman`, `kvm2`, `qemu2`, `hyperkit`, ...
    pub driver: String,
    /// CPUs given to each node.
    pub cpus: u32,
    /// Memory given to each node, in MiB.
    pub memory_mib: u64,
    /// The Kubernetes version it runs.
    pub kubernetes_version: String,
    /// The container runtime inside the node (`docker`, `containerd`, `cri-o`).
    pub container_runtime: String,
    /// Whether it is Minikube's active profile (newer Minikube only; `false` when absent).
    pub active: bool,
}

/// `minikube profile list -o json` (the valid profiles).
pub fn minikube_profiles(sh: &Shell) -> anyhow::Result<Vec<MinikubeProfile>> {
    let probe = probe::run(cmd!(sh, "minikube profile list -o json"), PROBE_TIMEOUT);
    parse_minikube_profiles(&probe.stdout).map_err(|err| {
        if probe.succeeded() {
            err
        } else {
            anyhow::anyhow!("{}", probe.failure())
        }
    })
}

/// The driver of a Minikube profile, from `minikube profile list -o json` (`None` if unknown).
pub fn minikube_driver(sh: &Shell, profile: &str) -> Option<String> {
    minikube_profiles(sh)
        .ok()?
        .into_iter()
        .find(|p| p.name == profile)
        .map(|p| p.driver)
        .filter(|driver| !driver.is_empty())
}

/// Whether `http://$(minikube ip):<nodePort>` reaches the node from a host running `host_os`
/// (`std::env::consts::OS`). The docker and podman drivers run the node as a container; off
/// Linux that container sits in Docker Desktop's (or Podman machine's) VM and its address is not
/// routed from the host (minikube's `driver.NeedsPortForward`), so only a tunnel reaches it. An
/// unknown driver off Linux is treated as one of those: a URL that may not work is worse than a
/// hint that does. (On Linux, Docker Desktop and rootless Docker have the same limit; that is
/// not detected here.)
pub fn minikube_node_ip_reachable(driver: Option<&str>, host_os: &str) -> bool {
    host_os == "linux" || driver.is_some_and(|driver| !matches!(driver, "docker" | "podman"))
}

/// Parses `minikube profile list -o json`: `{"invalid":[...],"valid":[{"Name","Status",
/// "Config":{"Memory","CPUs","Driver","KubernetesConfig":{...}},"Active"}]}`.
pub fn parse_minikube_profiles(json: &str) -> anyhow::Result<Vec<MinikubeProfile>> {
    #[derive(Deserialize)]
    struct List {
        #[serde(default)]
        valid: Option<Vec<Profile>>,
        error: Option<serde_json::Value>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Profile {
        name: String,
        #[serde(default)]
        status: String,
        config: Option<Config>,
        #[serde(default)]
        active: bool,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Config {
        #[serde(default)]
        memory: u64,
        #[serde(default, rename = "CPUs")]
        cpus: u32,
        #[serde(default)]
        driver: String,
        #[serde(default)]
        kubernetes_config: KubernetesConfig,
    }
    #[derive(Deserialize, Default)]
    #[serde(rename_all = "PascalCase")]
    struct KubernetesConfig {
        #[serde(default)]
        kubernetes_version: String,
        #[serde(default)]
        container_runtime: String,
    }
    // Minikube may print warnings before the JSON; the JSON is the last line.
    let json = json
        .lines()
        .rev()
        .find(|line| line.trim_start().starts_with('{'))
        .unwrap_or(json);
    let list: List = serde_json::from_str(json).context("reading `minikube profile list -o json`")?;
    if let Some(error) = list.error {
        bail!("minikube could not list its profiles: {error}");
    }
    Ok(list
        .valid
        .unwrap_or_default()
        .into_iter()
        .map(|profile| {
            let config = profile.config.unwrap_or(Config {
                memory: 0,
                cpus: 0,
                driver: String::new(),
                kubernetes_config: KubernetesConfig::default(),
            });
            MinikubeProfile {
                name: profile.name,
                status: profile.status,
                driver: config.driver,
                cpus: config.cpus,
                memory_mib: config.memory,
                kubernetes_version: config.kubernetes_config.kubernetes_version,
                container_runtime: config.kubernetes_config.container_runtime,
                active: profile.active,
            }
        })
        .collect())
}

/// What `minikube status` says about a cluster's control-plane node.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MinikubeStatus {
    /// The node (profile) name.
    #[serde(default)]
    pub name: String,
    /// The VM or container: `Running`, `Stopped`, `Nonexistent`, ...
    #[serde(default)]
    pub host: String,
    /// The kubelet: `Running`, `Stopped`, ...
    #[serde(default)]
    pub kubelet: String,
    /// The API server: `Running`, `Stopped`, `Paused`, ...
    #[serde(default, rename = "APIServer")]
    pub apiserver: String,
    /// The kubeconfig entry: `Configured`, `Misconfigured`, `Stopped`, ...
    #[serde(default)]
    pub kubeconfig: String,
    /// Whether this is a worker node (multi-node clusters list those too).
    #[serde(default)]
    pub worker: bool,
}

/// A cluster's state, summed up from [`MinikubeStatus`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MinikubeState {
    /// Host, kubelet and API server all running.
    Running,
    /// Paused with `minikube pause`.
    Paused,
    /// Stopped with `minikube stop` (or the machine rebooted).
    Stopped,
    /// The profile exists but its VM or container does not.
    Nonexistent,
    /// Some components running, some not.
    Degraded,
}

impl MinikubeStatus {
    /// The overall state.
    pub fn state(&self) -> MinikubeState {
        match (self.host.as_str(), self.kubelet.as_str(), self.apiserver.as_str()) {
            ("Running", "Running", "Running") => MinikubeState::Running,
            (_, _, "Paused") => MinikubeState::Paused,
            ("Stopped", _, _) => MinikubeState::Stopped,
            ("Nonexistent", _, _) => MinikubeState::Nonexistent,
            _ => MinikubeState::Degraded,
        }
    }

    /// `host Running, kubelet Running, apiserver Running`.
    pub fn summary(&self) -> String {
        format!(
            "host {}, kubelet {}, apiserver {}",
            self.host, self.kubelet, self.apiserver
        )
    }
}

/// Minikube's exit code when the profile does not exist (`ExGuestNotFound`).
const MINIKUBE_EXIT_PROFILE_NOT_FOUND: i32 = 85;

/// `minikube status -o json -p <profile>`: `None` when the profile does not exist.
pub fn minikube_status(sh: &Shell, profile: &str) -> anyhow::Result<Option<MinikubeStatus>> {
    let probe = probe::run(cmd!(sh, "minikube status -o json -p {profile}"), PROBE_TIMEOUT);
    // The exit code encodes the state (7 = everything stopped): read the output instead.
    match parse_minikube_status(&probe.stdout) {
        Ok(status) => Ok(Some(status)),
        Err(_) if probe.code() == Some(MINIKUBE_EXIT_PROFILE_NOT_FOUND) => Ok(None),
        Err(_) if format!("{}{}", probe.stdout, probe.stderr).contains("not found") => Ok(None),
        Err(err) if probe.succeeded() => Err(err),
        Err(_) => bail!("{}", probe.failure()),
    }
}

/// Parses `minikube status -o json`: one object for a single-node cluster
/// (`{"Name":"minikube","Host":"Running","Kubelet":"Running","APIServer":"Running",
/// "Kubeconfig":"Configured","Worker":false}`), an array of them for several nodes, in which
/// case the control-plane node's status is returned.
pub fn parse_minikube_status(json: &str) -> anyhow::Result<MinikubeStatus> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(MinikubeStatus),
        Many(Vec<MinikubeStatus>),
    }
    let json = json.trim();
    let parsed: OneOrMany = serde_json::from_str(json).context("reading `minikube status -o json`")?;
    let status = match parsed {
        OneOrMany::One(status) => status,
        OneOrMany::Many(nodes) => {
            let mut nodes = nodes.into_iter();
            let first = nodes.next().context("`minikube status -o json` listed no nodes")?;
            if first.worker {
                nodes.find(|node| !node.worker).unwrap_or(first)
            } else {
                first
            }
        }
    };
    if status.host.is_empty() {
        bail!("`minikube status -o json` gave no host state: {json}");
    }
    Ok(status)
}

/// `minikube addons list -o json -p <profile>`: each addon and whether it is enabled.
pub fn minikube_addons(sh: &Shell, profile: &str) -> anyhow::Result<BTreeMap<String, Option<bool>>> {
    let probe = probe::run(cmd!(sh, "minikube addons list -o json -p {profile}"), PROBE_TIMEOUT);
    parse_minikube_addons(&probe.stdout).map_err(|err| {
        if probe.succeeded() {
            err
        } else {
            anyhow::anyhow!("{}", probe.failure())
        }
    })
}

/// Parses `minikube addons list -o json`: `{"ingress":{"Profile":"minikube","Status":"enabled"},
/// ...}`. Without a cluster Minikube lists the addons with empty objects: their state is `None`.
pub fn parse_minikube_addons(json: &str) -> anyhow::Result<BTreeMap<String, Option<bool>>> {
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Addon {
        status: Option<String>,
    }
    let addons: BTreeMap<String, Addon> =
        serde_json::from_str(json.trim()).context("reading `minikube addons list -o json`")?;
    Ok(addons
        .into_iter()
        .map(|(name, addon)| (name, addon.status.map(|status| status == "enabled")))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    // minikube `driver.NeedsPortForward` (SOURCES.md item 11; fixtures in
    // tests/fixtures/real-cluster/minikube-service/: the darwin URL is a tunnel's 127.0.0.1 port).
    #[test]
    fn the_minikube_node_address_is_reachable_only_where_no_tunnel_is_needed() {
        for driver in [Some("docker"), Some("podman"), Some("kvm2"), None] {
            assert!(minikube_node_ip_reachable(driver, "linux"), "{driver:?}");
        }
        for os in ["macos", "windows"] {
            assert!(!minikube_node_ip_reachable(Some("docker"), os), "{os}");
            assert!(!minikube_node_ip_reachable(Some("podman"), os), "{os}");
            assert!(!minikube_node_ip_reachable(None, os), "{os}");
            assert!(minikube_node_ip_reachable(Some("hyperkit"), os), "{os}");
            assert!(minikube_node_ip_reachable(Some("qemu2"), os), "{os}");
            assert!(minikube_node_ip_reachable(Some("hyperv"), os), "{os}");
        }
    }

    // Shape of `minikube status -o json` (cmd/minikube/cmd/status.go marshals cluster.Status).
    #[test]
    fn minikube_status_running_stopped_and_paused() {
        let running = parse_minikube_status(
            r#"{"Name":"minikube","Host":"Running","Kubelet":"Running","APIServer":"Running","Kubeconfig":"Configured","Worker":false}"#,
        )
        .unwrap();
        assert_eq!(running.state(), MinikubeState::Running);
        assert_eq!(running.summary(), "host Running, kubelet Running, apiserver Running");

        let stopped = parse_minikube_status(
            r#"{"Name":"minikube","Host":"Stopped","Kubelet":"Stopped","APIServer":"Stopped","Kubeconfig":"Stopped","Worker":false}"#,
        )
        .unwrap();
        assert_eq!(stopped.state(), MinikubeState::Stopped);

        // From minikube issue #6808 (v1.7.3, no Name field yet).
        let paused = parse_minikube_status(
            r#"{"Host":"Running","Kubelet":"Stopped","APIServer":"Paused","Kubeconfig":"Configured"}"#,
        )
        .unwrap();
        assert_eq!(paused.state(), MinikubeState::Paused);

        let degraded = parse_minikube_status(
            r#"{"Name":"minikube","Host":"Running","Kubelet":"Running","APIServer":"Stopped","Kubeconfig":"Configured","Worker":false}"#,
        )
        .unwrap();
        assert_eq!(degraded.state(), MinikubeState::Degraded);
    }

    #[test]
    fn minikube_status_of_several_nodes_is_the_control_planes() {
        let status = parse_minikube_status(
            r#"[{"Name":"multi-m02","Host":"Running","Kubelet":"Running","APIServer":"Irrelevant","Kubeconfig":"Irrelevant","Worker":true},{"Name":"multi","Host":"Running","Kubelet":"Running","APIServer":"Running","Kubeconfig":"Configured","Worker":false}]"#,
        )
        .unwrap();
        assert_eq!(status.name, "multi");
        assert_eq!(status.state(), MinikubeState::Running);
    }

    #[test]
    fn minikube_status_without_a_profile_is_not_a_status() {
        // With `-o json` Minikube reports a missing profile as JSON events, not as a status.
        let events = r#"{"specversion":"1.0","id":"1","source":"https://minikube.sigs.k8s.io/","type":"io.k8s.sigs.minikube.info","datacontenttype":"application/json","data":{"message":"Profile \"minikube\" not found. Run \"minikube profile list\" to view all profiles."}}"#;
        assert!(parse_minikube_status(events).is_err());
        assert!(parse_minikube_status("").is_err());
    }

    // Shape of `minikube profile list -o json` from minikube PR #9996 (v1.16), trimmed of the
    // fields not read here, plus the `Active` flag newer versions add.
    const PROFILE_LIST: &str = r#"{"invalid":[],"valid":[{"Name":"minikube","Status":"Stopped","Config":{"Name":"minikube","KeepContext":false,"EmbedCerts":false,"MinikubeISO":"","KicBaseImage":"gcr.io/k8s-minikube/kicbase:v0.0.16-snapshot1@sha256:dff16232547bb3ac3f2a9e09a42246a96ecf8f40d9a1c5bcf5a37953690954b6","Memory":3890,"CPUs":2,"DiskSize":20000,"VMDriver":"","Driver":"docker","HyperkitVpnKitSock":"","HyperkitVSockPorts":[],"DockerEnv":null,"KubernetesConfig":{"KubernetesVersion":"v1.20.0","ClusterName":"minikube","Namespace":"default","APIServerName":"minikubeCA","APIServerNames":null,"APIServerIPs":null,"DNSDomain":"cluster.local","ContainerRuntime":"docker","CRISocket":"","NetworkPlugin":"","FeatureGates":"","ServiceCIDR":"10.96.0.0/12","ImageRepository":"","LoadBalancerStartIP":"","LoadBalancerEndIP":"","CustomIngressCert":"","ExtraOptions":null,"ShouldLoadCachedImages":true,"EnableDefaultCNI":false,"CNI":"","NodeIP":"","NodePort":8443,"NodeName":""},"Nodes":[{"Name":"","IP":"192.168.49.2","Port":8443,"KubernetesVersion":"v1.20.0","ControlPlane":true,"Worker":true}],"Addons":{"default-storageclass":true,"storage-provisioner":true},"VerifyComponents":{"apiserver":true,"system_pods":true}},"Active":true}]}"#;

    #[test]
    fn minikube_profiles_give_driver_and_size() {
        let profiles = parse_minikube_profiles(PROFILE_LIST).unwrap();
        assert_eq!(
            profiles,
            vec![MinikubeProfile {
                name: "minikube".into(),
                status: "Stopped".into(),
                driver: "docker".into(),
                cpus: 2,
                memory_mib: 3890,
                kubernetes_version: "v1.20.0".into(),
                container_runtime: "docker".into(),
                active: true,
            }]
        );
    }

    #[test]
    fn no_minikube_profiles_is_an_empty_list() {
        assert_eq!(parse_minikube_profiles(r#"{"invalid":[],"valid":[]}"#).unwrap(), vec![]);
        // Minikube may warn on a line of its own before the JSON.
        let warned = "! Found 1 invalid profile(s)\n{\"invalid\":[],\"valid\":[]}\n";
        assert_eq!(parse_minikube_profiles(warned).unwrap(), vec![]);
        assert!(parse_minikube_profiles(r#"{"error":{"Op":"open"}}"#).is_err());
    }

    // Shape of `minikube addons list -o json` (cmd/minikube/cmd/config/addons_list.go,
    // printAddonsJSON: addon -> {"Profile", "Status"}; empty objects when there is no cluster).
    #[test]
    fn minikube_addons_enabled_and_disabled() {
        let addons = parse_minikube_addons(
            r#"{"ambassador":{"Profile":"minikube","Status":"disabled"},"default-storageclass":{"Profile":"minikube","Status":"enabled"},"ingress":{"Profile":"minikube","Status":"enabled"},"metrics-server":{"Profile":"minikube","Status":"disabled"}}"#,
        )
        .unwrap();
        assert_eq!(addons["ingress"], Some(true));
        assert_eq!(addons["metrics-server"], Some(false));
        let no_cluster = parse_minikube_addons(r#"{"ingress":{},"metrics-server":{}}"#).unwrap();
        assert_eq!(no_cluster["ingress"], None);
    }

    #[test]
    fn recommended_start_names_size_and_addons() {
        assert_eq!(
            minikube_command_line(&minikube_start_args("minikube")),
            "minikube start --cpus=2 --memory=4096mb --addons=ingress --addons=metrics-server"
        );
        assert_eq!(
            minikube_command_line(&minikube_start_args("dev")),
            "minikube start --cpus=2 --memory=4096mb --addons=ingress --addons=metrics-server -p dev"
        );
    }
}
