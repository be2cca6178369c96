//! What doctor learns, by read-only queries with a deadline: each tool's version, the kube
//! context, Minikube's profiles, status and addons, the nodes' architecture, the free disk space.

use std::{collections::BTreeMap, path::Path};

use anyhow::Context;
use xshell::{Shell, cmd};

use crate::{
    exec::probe::{self, PROBE_TIMEOUT},
    k8s::context::{self, ClusterKind},
    tools::{
        self,
        engine::{
            self, DockerEngine,
            network::{self, PodmanDns, PodmanSearchDirs},
        },
        helm::{self, HelmVersion},
        k3d, kind,
        kubectl::{self, KubectlVersion},
        minikube::{self, DEFAULT_MINIKUBE_PROFILE, MinikubeProfile, MinikubeStatus},
    },
};

/// A tool's answer: not on PATH, on PATH but its query failed, or what it reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found<T> {
    /// Not on PATH.
    Missing,
    /// On PATH, but the query failed (why).
    Broken(String),
    /// What it reported.
    Present(T),
}

impl<T> Found<T> {
    fn query(tool: tools::Tool, query: impl FnOnce() -> anyhow::Result<T>) -> Found<T> {
        if tools::find(tool).is_none() {
            return Found::Missing;
        }
        match query() {
            Ok(value) => Found::Present(value),
            Err(err) => Found::Broken(reason(err)),
        }
    }
}

/// The current kube context, as far as it could be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KubeContext {
    /// kubectl is not installed, so there is no way to tell.
    NoKubectl,
    /// kubectl could not read the kubeconfig (why).
    Unreadable(String),
    /// No current context is set.
    Unset,
    /// The current context.
    Current {
        /// Its name.
        name: String,
        /// Its cluster's API server URL, or why it could not be read.
        server: Result<String, String>,
        /// What kind of cluster it points at.
        kind: ClusterKind,
    },
}

impl KubeContext {
    pub fn kind(&self) -> Option<&ClusterKind> {
        match self {
            KubeContext::Current { kind, .. } => Some(kind),
            _ => None,
        }
    }

    /// Another local cluster (kind, k3d, Docker Desktop, ...) is current, so Minikube is optional.
    pub fn other_local_cluster(&self) -> Option<&ClusterKind> {
        self.kind()
            .filter(|kind| kind.is_local() && !matches!(kind, ClusterKind::Minikube { .. }))
    }
}

/// What Minikube said about the profile the workflow uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MinikubeFacts {
    /// `minikube version --short`.
    pub version: String,
    /// The profile examined: the current context's, else Minikube's active one, else `minikube`.
    pub profile: String,
    /// `minikube profile list -o json`.
    pub profiles: Result<Vec<MinikubeProfile>, String>,
    /// `minikube status`: `None` when not examined (another local cluster is current);
    /// `Some(Ok(None))` when the profile has no cluster.
    pub status: Option<Result<Option<MinikubeStatus>, String>>,
    /// `minikube addons list`: `None` when not examined.
    pub addons: Option<Result<BTreeMap<String, Option<bool>>, String>>,
}

/// Free space where the project lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskSpace {
    /// Available to unprivileged users, in KiB.
    pub available_kib: u64,
    /// The filesystem's mount point.
    pub mount: String,
}

/// Everything [`gather`] learnt; [`evaluate`] judges it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    /// Docker's client and daemon.
    pub docker: Found<DockerEngine>,
    /// Podman's version.
    pub podman: Found<String>,
    /// Podman's network backend and DNS, when Podman is the engine the workflow would use (no
    /// reachable Docker daemon), or why `podman info` could not tell.
    pub podman_dns: Option<Result<PodmanDns, String>>,
    /// kubectl's version and the server's.
    pub kubectl: Found<KubectlVersion>,
    /// Helm's version.
    pub helm: Found<HelmVersion>,
    /// Minikube and its cluster.
    pub minikube: Found<MinikubeFacts>,
    /// `kind version`, only when a kind context is current.
    pub kind: Option<Found<String>>,
    /// `k3d version`, only when a k3d context is current.
    pub k3d: Option<Found<String>>,
    /// The current kube context.
    pub context: KubeContext,
    /// The nodes' architectures, when the current local cluster answered.
    pub node_architectures: Option<Result<Vec<String>, String>>,
    /// This machine's architecture (Kubernetes naming).
    pub host_architecture: String,
    /// Free space on the project's filesystem.
    pub disk: Result<DiskSpace, String>,
}

/// Runs every read-only query the checks need.
pub fn gather(sh: &Shell) -> Facts {
    let docker = Found::query(tools::DOCKER, || engine::docker_engine(sh));
    let podman = Found::query(tools::PODMAN, || engine::podman_version(sh));
    let docker_usable = matches!(&docker, Found::Present(engine) if engine.daemon.is_ok());
    let podman_dns = (!docker_usable && matches!(podman, Found::Present(_))).then(|| podman_dns(sh));
    let helm = Found::query(tools::HELM, || helm::helm_version(sh));

    let minikube_version = Found::query(tools::MINIKUBE, || minikube::minikube_version(sh));
    let minikube_profiles = match &minikube_version {
        Found::Present(_) => Some(minikube::minikube_profiles(sh).map_err(reason)),
        _ => None,
    };
    let profile_names: Vec<String> = minikube_profiles
        .iter()
        .flatten()
        .flatten()
        .map(|profile| profile.name.clone())
        .collect();

    let context = kube_context(sh, &profile_names);
    let kubectl = Found::query(tools::KUBECTL, || kubectl::kubectl_version(sh));

    let minikube = minikube_facts(sh, minikube_version, minikube_profiles, &context);

    let kind = matches!(context.kind(), Some(ClusterKind::Kind { .. }))
        .then(|| Found::query(tools::KIND, || kind::kind_version(sh)));
    let k3d = matches!(context.kind(), Some(ClusterKind::K3d { .. }))
        .then(|| Found::query(tools::K3D, || k3d::k3d_version(sh)));

    let server_answered = matches!(&kubectl, Found::Present(version) if version.server.is_ok());
    let local = context.kind().is_some_and(ClusterKind::is_local);
    let node_architectures = (server_answered && local).then(|| context::node_architectures(sh).map_err(reason));

    Facts {
        docker,
        podman,
        podman_dns,
        kubectl,
        helm,
        minikube,
        kind,
        k3d,
        context,
        node_architectures,
        host_architecture: context::host_architecture().to_owned(),
        disk: disk_space(sh, &sh.current_dir()),
    }
}

/// The current kube context, classified (Minikube's profile names tell its contexts).
fn kube_context(sh: &Shell, profile_names: &[String]) -> KubeContext {
    if tools::find(tools::KUBECTL).is_none() {
        return KubeContext::NoKubectl;
    }
    match context::current_context(sh) {
        Err(err) => KubeContext::Unreadable(reason(err)),
        Ok(None) => KubeContext::Unset,
        Ok(Some(name)) => KubeContext::Current {
            server: context::current_server(sh).map_err(reason),
            kind: context::classify_context(&name, profile_names),
            name,
        },
    }
}

/// Minikube's profile in use, with its status and addons when it is the cluster to examine.
fn minikube_facts(
    sh: &Shell,
    version: Found<String>,
    profiles: Option<Result<Vec<MinikubeProfile>, String>>,
    context: &KubeContext,
) -> Found<MinikubeFacts> {
    match (version, profiles) {
        (Found::Present(version), Some(profiles)) => {
            let profile = match context.kind() {
                Some(ClusterKind::Minikube { profile }) => profile.clone(),
                _ => profiles
                    .iter()
                    .flatten()
                    .find(|profile| profile.active)
                    .map_or_else(|| DEFAULT_MINIKUBE_PROFILE.to_owned(), |profile| profile.name.clone()),
            };
            let examine = context.other_local_cluster().is_none();
            let status = examine.then(|| minikube::minikube_status(sh, &profile).map_err(reason));
            let has_cluster = matches!(status, Some(Ok(Some(_))));
            let addons = has_cluster.then(|| minikube::minikube_addons(sh, &profile).map_err(reason));
            Found::Present(MinikubeFacts {
                version,
                profile,
                profiles,
                status,
                addons,
            })
        }
        (Found::Broken(why), _) => Found::Broken(why),
        _ => Found::Missing,
    }
}

/// `podman info --format json`, plus a search of Podman's helper directories when that Podman
/// does not report its DNS program itself.
fn podman_dns(sh: &Shell) -> Result<PodmanDns, String> {
    let probe = probe::run(cmd!(sh, "podman info --format json"), PROBE_TIMEOUT);
    if !probe.succeeded() {
        return Err(probe.failure());
    }
    let info = network::parse_podman_info(&probe.stdout).map_err(reason)?;
    let dirs = PodmanSearchDirs::of_this_machine().map_err(reason)?;
    Ok(PodmanDns::assess(&info, &dirs))
}

/// An error as the one-line reason a check shows (its whole context chain).
fn reason(err: anyhow::Error) -> String {
    format!("{err:#}")
}

/// Free space on the filesystem holding `path`, from `df -Pk` (POSIX output, 1024-byte units).
fn disk_space(sh: &Shell, path: &Path) -> Result<DiskSpace, String> {
    let probe = probe::run(cmd!(sh, "df -Pk {path}"), PROBE_TIMEOUT);
    if !probe.succeeded() {
        return Err(probe.failure());
    }
    parse_df(&probe.stdout).map_err(reason)
}

/// Parses `df -Pk PATH`: a header, then `Filesystem 1024-blocks Used Available Capacity
/// Mounted-on` for the filesystem holding PATH.
pub fn parse_df(output: &str) -> anyhow::Result<DiskSpace> {
    let line = output
        .lines()
        .skip(1)
        .filter(|line| !line.trim().is_empty())
        .last()
        .with_context(|| format!("no filesystem line in `df -Pk` output {output:?}"))?;
    let fields: Vec<&str> = line.split_whitespace().collect();
    // Counted from the capacity column (`21%`), so a filesystem name with spaces does not shift it.
    let capacity = fields
        .iter()
        .rposition(|field| field.ends_with('%'))
        .filter(|&at| at >= 3 && at + 1 < fields.len())
        .with_context(|| format!("unexpected `df -Pk` line {line:?}"))?;
    let available_kib = fields[capacity - 1]
        .parse()
        .with_context(|| format!("unexpected available space in `df -Pk` line {line:?}"))?;
    Ok(DiskSpace {
        available_kib,
        mount: fields[capacity + 1..].join(" "),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn df_output_gives_available_space_and_mount() {
        // Real `df -Pk` output (GNU coreutils).
        let out = "Filesystem     1024-blocks     Used Available Capacity Mounted on\n\
                   /dev/vda         264212084 19535556  75750332      21% /\n";
        assert_eq!(
            parse_df(out).unwrap(),
            DiskSpace {
                available_kib: 75_750_332,
                mount: "/".into()
            }
        );
        let spaces = "Filesystem 1024-blocks Used Available Capacity Mounted on\n\
                      //nas/share name 1000 10 990 1% /mnt/my share\n";
        assert_eq!(parse_df(spaces).unwrap().mount, "/mnt/my share");
        assert_eq!(parse_df(spaces).unwrap().available_kib, 990);
        assert!(parse_df("df: /nope: No such file or directory\n").is_err());
    }
}
