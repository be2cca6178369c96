//! What the workflow knows about the cluster and the tools around it: the current kube context
//! and whether it is a local cluster, the versions of kubectl, Helm, Docker, Podman, Minikube,
//! kind and k3d, Minikube's status, size and addons, and the nodes' architecture.
//!
//! Every query here is read-only and bounded in time (see [`crate::probe`]); kubectl calls also
//! carry [`KUBECTL_REQUEST_TIMEOUT`] so a dead cluster is reported, not waited for. Each query
//! is a thin call plus a pure `parse_*` function that takes the tool's output as a string, so
//! the parsing is unit-tested on real output shapes. `doctor` reports these facts; `deploy` and
//! `up` act on them (for example starting Minikube with [`minikube_start_args`]).

use std::{collections::BTreeMap, path::Path};

use anyhow::{Context, bail};
use serde::Deserialize;
use xshell::{Shell, cmd};

use crate::probe::{self, PROBE_TIMEOUT, Probe};

/// Passed to every kubectl call that may reach the API server: a dead or unreachable cluster
/// then costs five seconds and an error, never a hang.
pub const KUBECTL_REQUEST_TIMEOUT: &str = "--request-timeout=5s";

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

// ---------------------------------------------------------------------------------------------
// The kube context and what kind of cluster it points at

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

// ---------------------------------------------------------------------------------------------
// kubectl and the API server

/// A Kubernetes version as `gitVersion` gives it (`v1.32.4`, `v1.30.0-gke.1`, `v1.32.4+k3s1`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeVersion {
    /// The major version (1).
    pub major: u32,
    /// The minor version, which is what the version skew policy counts.
    pub minor: u32,
    /// The version as reported.
    pub git_version: String,
}

impl KubeVersion {
    /// Parses a `gitVersion` such as `v1.32.4-dispatcher`.
    pub fn parse(git_version: &str) -> Option<KubeVersion> {
        let core = git_version.trim().strip_prefix('v').unwrap_or(git_version.trim());
        let mut parts = core.split(['.', '-', '+']);
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        Some(KubeVersion {
            major,
            minor,
            git_version: git_version.trim().to_owned(),
        })
    }
}

/// kubectl's own version and, when the API server answered, the server's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubectlVersion {
    /// The client (kubectl) version.
    pub client: KubeVersion,
    /// The server version, or why it could not be read.
    pub server: Result<KubeVersion, String>,
}

/// `kubectl version -o json`: the client version, and the server's when it is reachable.
pub fn kubectl_version(sh: &Shell) -> anyhow::Result<KubectlVersion> {
    let probe = probe::run(
        cmd!(sh, "kubectl version -o json {KUBECTL_REQUEST_TIMEOUT}"),
        PROBE_TIMEOUT,
    );
    // kubectl prints the client part and exits 1 when the server does not answer.
    let (client, server) = parse_kubectl_version(&probe.stdout).map_err(|err| {
        if probe.succeeded() {
            err
        } else {
            anyhow::anyhow!("{}", probe.failure())
        }
    })?;
    let server = match server {
        Some(server) => Ok(server),
        None if probe.succeeded() => Err("the server did not report its version".to_owned()),
        None => Err(probe.failure()),
    };
    Ok(KubectlVersion { client, server })
}

/// Parses `kubectl version -o json` into the client and (if present) server versions.
pub fn parse_kubectl_version(json: &str) -> anyhow::Result<(KubeVersion, Option<KubeVersion>)> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Versions {
        client_version: Option<Info>,
        server_version: Option<Info>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Info {
        git_version: String,
    }
    let versions: Versions = serde_json::from_str(json).context("reading `kubectl version -o json`")?;
    let info = versions
        .client_version
        .context("`kubectl version -o json` has no clientVersion")?;
    let client = KubeVersion::parse(&info.git_version)
        .with_context(|| format!("unreadable kubectl version {:?}", info.git_version))?;
    let server = versions
        .server_version
        .and_then(|info| KubeVersion::parse(&info.git_version));
    Ok((client, server))
}

/// Minor versions between kubectl and the server: positive when kubectl is newer.
/// `None` when the major versions differ (never supported).
pub fn kubectl_skew(client: &KubeVersion, server: &KubeVersion) -> Option<i64> {
    (client.major == server.major).then(|| i64::from(client.minor) - i64::from(server.minor))
}

/// Kubernetes supports kubectl within one minor version of the API server.
pub fn kubectl_supported(client: &KubeVersion, server: &KubeVersion) -> bool {
    kubectl_skew(client, server).is_some_and(|skew| skew.abs() <= 1)
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
    #[derive(Deserialize)]
    struct List {
        #[serde(default)]
        items: Vec<Node>,
    }
    #[derive(Deserialize)]
    struct Node {
        status: NodeStatus,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct NodeStatus {
        node_info: NodeInfo,
    }
    #[derive(Deserialize)]
    struct NodeInfo {
        architecture: String,
    }
    let list: List = serde_json::from_str(json).context("reading `kubectl get nodes -o json`")?;
    let mut archs: Vec<String> = list
        .items
        .into_iter()
        .map(|node| node.status.node_info.architecture)
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

// ---------------------------------------------------------------------------------------------
// Helm

/// A Helm client version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelmVersion {
    /// The version without its `v` and build suffix (`3.17.2`).
    pub version: String,
    /// The major version, which decides support.
    pub major: u32,
}

/// Whether the workflow supports a Helm version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HelmSupport {
    /// Helm 3 or 4.
    Supported,
    /// Helm 2 (Tiller era): it cannot install `apiVersion: v2` charts such as ours.
    TooOld,
    /// A later major version nobody has tried yet.
    Untested,
}

impl HelmVersion {
    /// Whether this version can install the chart.
    pub fn support(&self) -> HelmSupport {
        match self.major {
            3 | 4 => HelmSupport::Supported,
            0..=2 => HelmSupport::TooOld,
            _ => HelmSupport::Untested,
        }
    }
}

/// `helm version --short`.
pub fn helm_version(sh: &Shell) -> anyhow::Result<HelmVersion> {
    helm_version_of(sh, Path::new("helm"))
}

/// `<program> version --short`, for a Helm binary that may not be on PATH.
pub fn helm_version_of(sh: &Shell, program: &Path) -> anyhow::Result<HelmVersion> {
    // Helm 2 prints its client line, then may fail to reach Tiller: the client line is enough.
    let probe = probe::run(cmd!(sh, "{program} version --short"), PROBE_TIMEOUT);
    parse_helm_version(&probe.stdout).map_err(|err| {
        if probe.succeeded() {
            err
        } else {
            anyhow::anyhow!("{}", probe.failure())
        }
    })
}

/// Parses `helm version --short` (`v3.17.2+gcc0bbbd`, Helm 2's `Client: v2.17.0+ga690bad`),
/// `helm version --template {{.Version}}` (`v4.3.1`) or Helm 2's long
/// `Client: &version.Version{SemVer:"v2.12.1", ...}`.
pub fn parse_helm_version(output: &str) -> anyhow::Result<HelmVersion> {
    let version = version_token(output).with_context(|| format!("unreadable `helm version` output {output:?}"))?;
    let major = version
        .split('.')
        .next()
        .and_then(|major| major.parse().ok())
        .with_context(|| format!("unreadable Helm version {version:?}"))?;
    Ok(HelmVersion { version, major })
}

// ---------------------------------------------------------------------------------------------
// Container engines

/// Docker's client version and whether its daemon answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerEngine {
    /// The client version (`28.2.2`).
    pub client: String,
    /// The daemon's version, or why it did not answer.
    pub daemon: Result<String, String>,
}

/// `docker --version` and `docker info --format {{.ServerVersion}}`.
pub fn docker_engine(sh: &Shell) -> anyhow::Result<DockerEngine> {
    let version = probe::run(cmd!(sh, "docker --version"), PROBE_TIMEOUT);
    if !version.succeeded() {
        bail!("{}", version.failure());
    }
    let client = version_token(&version.stdout)
        .with_context(|| format!("unreadable `docker --version` output {:?}", version.stdout))?;
    let format = "{{.ServerVersion}}";
    let info = probe::run(cmd!(sh, "docker info --format {format}"), PROBE_TIMEOUT);
    Ok(DockerEngine {
        client,
        daemon: parse_docker_server_version(&info),
    })
}

/// The daemon version from `docker info --format {{.ServerVersion}}`: without a daemon the
/// client prints an empty line and `Cannot connect to the Docker daemon at ...` on stderr.
pub fn parse_docker_server_version(info: &Probe) -> Result<String, String> {
    let version = info.stdout.trim();
    if info.succeeded() && !version.is_empty() {
        Ok(version.to_owned())
    } else {
        Err(info.failure())
    }
}

/// `podman --version` (local only: unlike `podman version` it never contacts a Podman machine).
pub fn podman_version(sh: &Shell) -> anyhow::Result<String> {
    tool_version(sh, "podman", &["--version"])
}

// ---------------------------------------------------------------------------------------------
// Minikube

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

// ---------------------------------------------------------------------------------------------
// kind and k3d

/// `kind version` (`kind v0.20.0 go1.20.4 linux/amd64`).
pub fn kind_version(sh: &Shell) -> anyhow::Result<String> {
    tool_version(sh, "kind", &["version"])
}

/// `k3d version` (`k3d version v5.6.0` then `k3s version v1.27.4-k3s1 (default)`).
pub fn k3d_version(sh: &Shell) -> anyhow::Result<String> {
    tool_version(sh, "k3d", &["version"])
}

// ---------------------------------------------------------------------------------------------
// Shared by the version queries

/// Runs a local, read-only `program args...` and returns the first version number it prints.
fn tool_version(sh: &Shell, program: &str, args: &[&str]) -> anyhow::Result<String> {
    let probe = probe::run(cmd!(sh, "{program} {args...}"), PROBE_TIMEOUT);
    if !probe.succeeded() {
        bail!("{}", probe.failure());
    }
    version_token(&probe.stdout).with_context(|| {
        format!(
            "no version number in the output of `{}`: {:?}",
            probe.command, probe.stdout
        )
    })
}

/// The first version number in a tool's output, without `v` or suffixes: `Docker version
/// 28.2.2, build e6534b4` -> `28.2.2`; `kind v0.20.0 go1.20.4` -> `0.20.0` (a number glued to a
/// word, like `go1.20.4`, is not a version of the tool).
pub fn version_token(output: &str) -> Option<String> {
    let bytes = output.as_bytes();
    for (start, &byte) in bytes.iter().enumerate() {
        if !byte.is_ascii_digit() {
            continue;
        }
        // Accept `1.2`, `v1.2`; reject digits inside words (`go1.20`, `k3s`, `sha256`).
        let before = match start.checked_sub(1).map(|i| bytes[i]) {
            Some(b'v') => start.checked_sub(2).map(|i| bytes[i]),
            other => other,
        };
        if before.is_some_and(|b| b.is_ascii_alphanumeric()) {
            continue;
        }
        let len = bytes[start..]
            .iter()
            .take_while(|b| b.is_ascii_digit() || **b == b'.')
            .count();
        let candidate = output[start..start + len].trim_end_matches('.');
        if candidate.contains('.') {
            return Some(candidate.to_owned());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::Outcome;

    // Real output of kubectl v1.32.4 (this machine's /usr/bin/kubectl) with no cluster configured:
    // stdout as below, exit code 1, and on stderr "The connection to the server localhost:8080
    // was refused - did you specify the right host or port?".
    const KUBECTL_VERSION_NO_SERVER: &str = r#"{
  "clientVersion": {
    "major": "1",
    "minor": "32+",
    "gitVersion": "v1.32.4-dispatcher",
    "gitCommit": "4cb5f0764b8d5f425645c6f433394fede34a8a26",
    "gitTreeState": "clean",
    "buildDate": "2025-05-15T20:09:34Z",
    "goVersion": "go1.23.8",
    "compiler": "gc",
    "platform": "linux/amd64"
  },
  "kustomizeVersion": "v5.5.0"
}"#;

    // The same shape with a reachable server (Minikube v1.35's default Kubernetes, v1.32.0).
    const KUBECTL_VERSION_WITH_SERVER: &str = r#"{
  "clientVersion": {
    "major": "1",
    "minor": "37",
    "gitVersion": "v1.37.1",
    "gitCommit": "f78e722310e50bcaca9276be22276d9e91d91308",
    "gitTreeState": "clean",
    "buildDate": "2026-09-23T17:10:04Z",
    "goVersion": "go1.26.8",
    "compiler": "gc",
    "platform": "linux/amd64"
  },
  "kustomizeVersion": "v5.8.1",
  "serverVersion": {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.0",
    "gitCommit": "70d3cc986aa8221cd1dfb1121852688902d3bf53",
    "gitTreeState": "clean",
    "buildDate": "2024-12-11T17:59:15Z",
    "goVersion": "go1.23.3",
    "compiler": "gc",
    "platform": "linux/amd64"
  }
}"#;

    #[test]
    fn kubectl_version_without_a_server_gives_the_client_only() {
        let (client, server) = parse_kubectl_version(KUBECTL_VERSION_NO_SERVER).unwrap();
        assert_eq!((client.major, client.minor), (1, 32));
        assert_eq!(client.git_version, "v1.32.4-dispatcher");
        assert_eq!(server, None);
    }

    #[test]
    fn kubectl_version_with_a_server_gives_both() {
        let (client, server) = parse_kubectl_version(KUBECTL_VERSION_WITH_SERVER).unwrap();
        let server = server.unwrap();
        assert_eq!((client.minor, server.minor), (37, 32));
        assert_eq!(kubectl_skew(&client, &server), Some(5));
        assert!(!kubectl_supported(&client, &server));
    }

    #[test]
    fn kubectl_is_supported_within_one_minor_either_way() {
        let v = |s| KubeVersion::parse(s).unwrap();
        assert!(kubectl_supported(&v("v1.31.2"), &v("v1.32.0")));
        assert!(kubectl_supported(&v("v1.33.0"), &v("v1.32.0")));
        assert!(kubectl_supported(&v("v1.32.4+k3s1"), &v("v1.32.0-gke.100")));
        assert!(!kubectl_supported(&v("v1.30.0"), &v("v1.32.0")));
        assert!(!kubectl_supported(&v("v2.32.0"), &v("v1.32.0")));
    }

    #[test]
    fn garbage_from_kubectl_is_an_error_not_a_panic() {
        assert!(parse_kubectl_version("").is_err());
        assert!(parse_kubectl_version(r#"{"kustomizeVersion":"v5.5.0"}"#).is_err());
    }

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

    #[test]
    fn helm_3_and_4_are_supported() {
        // Real output of Helm v3.17.2 and v4.3.1 (`helm version --short` / `--template {{.Version}}`).
        let helm3 = parse_helm_version("v3.17.2+gcc0bbbd\n").unwrap();
        assert_eq!((helm3.version.as_str(), helm3.major), ("3.17.2", 3));
        assert_eq!(helm3.support(), HelmSupport::Supported);
        let helm4 = parse_helm_version("v4.3.1").unwrap();
        assert_eq!((helm4.version.as_str(), helm4.major), ("4.3.1", 4));
        assert_eq!(helm4.support(), HelmSupport::Supported);
    }

    #[test]
    fn helm_2_is_too_old() {
        let short = parse_helm_version("Client: v2.17.0+ga690bad\n").unwrap();
        assert_eq!(
            (short.version.as_str(), short.support()),
            ("2.17.0", HelmSupport::TooOld)
        );
        let long = parse_helm_version(
            "Client: &version.Version{SemVer:\"v2.12.1\", GitCommit:\"02a47c7249b1fc6d8fd3b94e6b4babf9d818144e\", GitTreeState:\"clean\"}\n",
        )
        .unwrap();
        assert_eq!((long.major, long.support()), (2, HelmSupport::TooOld));
        assert_eq!(parse_helm_version("v5.0.0").unwrap().support(), HelmSupport::Untested);
        assert!(parse_helm_version("Error: unknown flag: --short").is_err());
    }

    #[test]
    fn version_numbers_are_found_in_each_tools_own_words() {
        let cases = [
            ("Docker version 28.2.2, build e6534b4\n", "28.2.2"),
            ("podman version 4.3.1\n", "4.3.1"),
            ("kind v0.20.0 go1.20.4 linux/amd64\n", "0.20.0"),
            ("k3d version v5.6.0\nk3s version v1.27.4-k3s1 (default)\n", "5.6.0"),
            ("v1.35.0\n", "1.35.0"),
            (
                "minikube version: v1.35.0\ncommit: dd5d320e41b5451cdf3c01891bc4e13d189586ed-dirty\n",
                "1.35.0",
            ),
        ];
        for (output, want) in cases {
            assert_eq!(version_token(output).as_deref(), Some(want), "{output:?}");
        }
        assert_eq!(version_token("no numbers here, sha256 or go1"), None);
    }

    #[test]
    fn docker_without_a_daemon_is_client_only() {
        // Real behaviour of Docker 28.2.2's client with no daemon: an empty line, exit code 1.
        let info = Probe {
            command: "docker info --format {{.ServerVersion}}".into(),
            outcome: Outcome::Exited(1),
            stdout: "\n".into(),
            stderr:
                "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?\n"
                    .into(),
        };
        let err = parse_docker_server_version(&info).unwrap_err();
        assert!(err.starts_with("Cannot connect to the Docker daemon"), "{err}");
        let running = Probe {
            outcome: Outcome::Exited(0),
            stdout: "27.4.1\n".into(),
            stderr: String::new(),
            ..info
        };
        assert_eq!(parse_docker_server_version(&running).unwrap(), "27.4.1");
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

    #[test]
    fn this_machines_architecture_uses_kubernetes_names() {
        let arch = host_architecture();
        assert!(!arch.is_empty());
        assert_ne!(arch, "x86_64");
        assert_ne!(arch, "aarch64");
    }
}
