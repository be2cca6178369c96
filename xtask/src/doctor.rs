//! `cargo xtask doctor`: the environment check that starts every troubleshooting session.
//!
//! For each tool the workflow uses it reports whether it is found, its version and whether that
//! version is supported; then the current kube context and whether it is a local cluster,
//! Minikube's state, size and addons, the nodes' architecture, and the free disk space. Every
//! warning or failure comes with the command that fixes it. It never changes anything: every
//! program it runs is a read-only query with a deadline (see [`crate::cluster`]).
//!
//! The work is split in two: [`gather`] runs the queries and keeps what they said ([`Facts`]);
//! [`evaluate`] turns facts into checks without running anything, so the rules are plain code.

use std::{collections::BTreeMap, fmt::Write as _, path::Path};

use anyhow::{Context, bail};
use clap::Args;
use serde::Serialize;
use xshell::{Shell, cmd};

use crate::{
    exec::probe::{self, PROBE_TIMEOUT},
    k8s::context::{self, ClusterKind},
    progress,
    tools::{
        self,
        engine::{
            self, DockerEngine,
            network::{self, PodmanDns, PodmanSearchDirs},
        },
        helm::{self, HelmSupport, HelmVersion},
        k3d, kind,
        kubectl::{self, KubectlVersion},
        minikube::{
            self, DEFAULT_MINIKUBE_PROFILE, MinikubeProfile, MinikubeState, MinikubeStatus,
            RECOMMENDED_MINIKUBE_ADDONS, RECOMMENDED_MINIKUBE_CPUS, RECOMMENDED_MINIKUBE_MEMORY_MIB,
        },
    },
};

/// Below this much free space the disk check warns: images, the Minikube node and cargo's
/// target directory each take several GiB.
pub const DISK_WARN_GIB: u64 = 10;
/// Below this much free space the disk check fails: image builds and loads will run out.
pub const DISK_FAIL_GIB: u64 = 2;

/// Arguments of `cargo xtask doctor`.
#[derive(Debug, Args)]
pub struct Doctor {
    /// Print the result as JSON on stdout (`{"ok": bool, "checks": [...]}`) instead of a table.
    #[arg(long)]
    pub json: bool,
}

impl Doctor {
    /// Checks the environment, prints the report, and fails when a required check failed.
    pub fn run(self, sh: &Shell) -> anyhow::Result<()> {
        let report = progress::step("probe tools and cluster (read-only)", || Ok(evaluate(&gather(sh))))?;
        if self.json {
            let json = serde_json::to_string_pretty(&report).context("writing the report as JSON")?;
            println!("{json}");
        } else {
            print!("{}", render_table(&report));
        }
        let failed = report.count(Status::Fail);
        if failed > 0 {
            bail!("{failed} required check(s) failed: see the `what to do` lines");
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// The report

/// The result of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Fine.
    Ok,
    /// Works, but worth fixing; does not fail the run.
    Warn,
    /// Something required is missing or broken; the run exits 1.
    Fail,
    /// Not applicable here (say, kind when the current context is Minikube).
    Skip,
}

impl Status {
    /// How the table shows it.
    pub fn label(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "FAIL",
            Status::Skip => "skip",
        }
    }
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// What was checked (`helm`, `kube-context`, `disk`, ...).
    pub name: &'static str,
    /// The verdict.
    pub status: Status,
    /// What was found.
    pub detail: String,
    /// The command (or step) that fixes a warning or failure.
    pub fix: Option<String>,
}

impl Check {
    fn ok(name: &'static str, detail: impl Into<String>) -> Check {
        Check {
            name,
            status: Status::Ok,
            detail: detail.into(),
            fix: None,
        }
    }

    fn skip(name: &'static str, detail: impl Into<String>) -> Check {
        Check {
            name,
            status: Status::Skip,
            detail: detail.into(),
            fix: None,
        }
    }

    fn warn(name: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            name,
            status: Status::Warn,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }

    fn fail(name: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            name,
            status: Status::Fail,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }

    /// A failure when `required`, otherwise a warning.
    fn problem(required: bool, name: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
        if required {
            Check::fail(name, detail, fix)
        } else {
            Check::warn(name, detail, fix)
        }
    }
}

/// Every check, and whether the environment is ready (no failures).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// True when no check failed (warnings allowed).
    pub ok: bool,
    /// The checks, in the order the table shows them.
    pub checks: Vec<Check>,
}

impl Report {
    fn new(checks: Vec<Check>) -> Report {
        Report {
            ok: checks.iter().all(|check| check.status != Status::Fail),
            checks,
        }
    }

    /// How many checks ended with `status`.
    pub fn count(&self, status: Status) -> usize {
        self.checks.iter().filter(|check| check.status == status).count()
    }
}

/// The report as an aligned plain-ASCII table, a `what to do` line under every warning and
/// failure, and a one-line summary.
pub fn render_table(report: &Report) -> String {
    const STATUS_WIDTH: usize = 6;
    let name_width = report
        .checks
        .iter()
        .map(|check| check.name.len())
        .chain(["CHECK".len()])
        .max()
        .unwrap_or_default();
    let mut out = String::new();
    let _ = writeln!(out, "{:STATUS_WIDTH$}  {:name_width$}  DETAIL", "STATUS", "CHECK");
    for check in &report.checks {
        let line = format!(
            "{:STATUS_WIDTH$}  {:name_width$}  {}",
            check.status.label(),
            check.name,
            check.detail
        );
        let _ = writeln!(out, "{}", line.trim_end());
        if let Some(fix) = check
            .fix
            .as_deref()
            .filter(|_| matches!(check.status, Status::Warn | Status::Fail))
        {
            let _ = writeln!(out, "{:STATUS_WIDTH$}  -> what to do: {fix}", "");
        }
    }
    let verdict = if !report.ok {
        "not ready: do what the FAIL lines say, then run `cargo xtask doctor` again"
    } else if report.count(Status::Warn) > 0 {
        "ready (the warnings are advice)"
    } else {
        "ready"
    };
    let _ = writeln!(
        out,
        "\n{} ok, {} warn, {} FAIL, {} skip: {verdict}",
        report.count(Status::Ok),
        report.count(Status::Warn),
        report.count(Status::Fail),
        report.count(Status::Skip)
    );
    out
}

// ---------------------------------------------------------------------------------------------
// Facts: what the queries said

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
    fn kind(&self) -> Option<&ClusterKind> {
        match self {
            KubeContext::Current { kind, .. } => Some(kind),
            _ => None,
        }
    }

    /// Another local cluster (kind, k3d, Docker Desktop, ...) is current, so Minikube is optional.
    fn other_local_cluster(&self) -> Option<&ClusterKind> {
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

    let context = if tools::find(tools::KUBECTL).is_none() {
        KubeContext::NoKubectl
    } else {
        match context::current_context(sh) {
            Err(err) => KubeContext::Unreadable(reason(err)),
            Ok(None) => KubeContext::Unset,
            Ok(Some(name)) => KubeContext::Current {
                server: context::current_server(sh).map_err(reason),
                kind: context::classify_context(&name, &profile_names),
                name,
            },
        }
    };
    let kubectl = Found::query(tools::KUBECTL, || kubectl::kubectl_version(sh));

    let minikube = match (minikube_version, minikube_profiles) {
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
    };

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

// ---------------------------------------------------------------------------------------------
// Evaluation: facts -> checks

/// Judges the facts: one check per line of the report, in display order.
pub fn evaluate(facts: &Facts) -> Report {
    let mut checks = engine_checks(&facts.docker, &facts.podman).to_vec();
    checks.push(container_dns_check(facts));
    checks.push(kubectl_check(&facts.kubectl));
    checks.push(helm_check(&facts.helm));
    checks.push(minikube_check(facts));
    if let Some(kind) = &facts.kind {
        checks.push(local_tool_check("kind", tools::KIND, kind, &facts.context));
    }
    if let Some(k3d) = &facts.k3d {
        checks.push(local_tool_check("k3d", tools::K3D, k3d, &facts.context));
    }
    checks.push(context_check(facts));
    checks.push(cluster_check(facts));
    checks.extend(minikube_cluster_checks(facts));
    checks.push(architecture_check(facts));
    checks.push(disk_check(&facts.disk));
    Report::new(checks)
}

/// `install <program>: <how>`, from the tool's install hint.
fn install(tool: tools::Tool) -> String {
    format!("install {}: {}", tool.program, tool.install)
}

/// Docker with a reachable daemon, or Podman: one is enough.
fn engine_checks(docker: &Found<DockerEngine>, podman: &Found<String>) -> [Check; 2] {
    let docker_usable = matches!(docker, Found::Present(engine) if engine.daemon.is_ok());
    let podman_usable = matches!(podman, Found::Present(_));
    let start_docker = "start the Docker daemon: sudo systemctl start docker (Docker Desktop: open it)";
    let docker_check = match docker {
        Found::Present(DockerEngine {
            client,
            daemon: Ok(daemon),
        }) => Check::ok("docker", format!("client {client}, daemon {daemon}")),
        Found::Present(DockerEngine {
            client,
            daemon: Err(why),
        }) => Check::problem(
            !podman_usable,
            "docker",
            format!("client {client} only, daemon not reachable ({why})"),
            if podman_usable {
                format!("{start_docker}; or keep using podman, which works")
            } else {
                format!("{start_docker}; or {}", install(tools::PODMAN))
            },
        ),
        Found::Broken(why) => Check::problem(
            !podman_usable,
            "docker",
            format!("found but not working: {why}"),
            format!("reinstall Docker: {}", tools::DOCKER.install),
        ),
        Found::Missing if podman_usable => Check::skip("docker", "not installed (podman is enough)"),
        Found::Missing => Check::fail(
            "docker",
            "not installed (docker or podman is needed)",
            install(tools::DOCKER),
        ),
    };
    let podman_check = match podman {
        Found::Present(version) => Check::ok("podman", version.clone()),
        Found::Broken(why) => Check::problem(
            !docker_usable,
            "podman",
            format!("found but not working: {why}"),
            format!("reinstall podman: {}", tools::PODMAN.install),
        ),
        Found::Missing if docker_usable => Check::skip("podman", "not installed (docker is enough)"),
        Found::Missing => Check::fail(
            "podman",
            "not installed (docker or podman is needed)",
            install(tools::PODMAN),
        ),
    };
    [docker_check, podman_check]
}

/// Whether containers on one network find each other by name (`cargo xtask e2e` needs it: the
/// frontend reaches the backend by its Service name). Docker always can on user-defined
/// networks; Podman only with its backend's DNS program.
fn container_dns_check(facts: &Facts) -> Check {
    const NAME: &str = "container-dns";
    let docker_usable = matches!(&facts.docker, Found::Present(engine) if engine.daemon.is_ok());
    if docker_usable {
        return Check::ok(NAME, "docker: embedded DNS on user-defined networks");
    }
    match &facts.podman_dns {
        None => Check::skip(NAME, "no container engine"),
        Some(Err(why)) => Check::warn(
            NAME,
            format!("podman info failed, so container DNS is unknown: {why}"),
            "run `podman info` and fix what it reports",
        ),
        Some(Ok(PodmanDns { backend, dns: Ok(path) })) => Check::ok(
            NAME,
            format!(
                "podman {} backend, containers find each other by name ({} at {})",
                backend.name(),
                backend.dns_program().unwrap_or("DNS"),
                path.display()
            ),
        ),
        Some(Ok(PodmanDns {
            backend,
            dns: Err(missing),
        })) => Check::warn(
            NAME,
            format!(
                "podman {} backend with {missing}: containers cannot find each other by name (cargo xtask e2e \
                 needs it)",
                backend.name()
            ),
            backend.dns_fix(),
        ),
    }
}

/// kubectl is required, and should be within one minor version of the cluster.
fn kubectl_check(kubectl: &Found<KubectlVersion>) -> Check {
    match kubectl {
        Found::Missing => Check::fail("kubectl", "not installed", install(tools::KUBECTL)),
        Found::Broken(why) => Check::fail(
            "kubectl",
            format!("found but not working: {why}"),
            "check `kubectl version` and the kubeconfig it reads (KUBECONFIG or ~/.kube/config)",
        ),
        Found::Present(KubectlVersion { client, server }) => match server {
            Err(_) => Check::ok(
                "kubectl",
                format!(
                    "{} (cluster not reachable: version skew not checked)",
                    client.git_version
                ),
            ),
            Ok(server) if kubectl::kubectl_supported(client, server) => Check::ok(
                "kubectl",
                format!(
                    "{} (cluster {}: within one minor)",
                    client.git_version, server.git_version
                ),
            ),
            Ok(server) => Check::warn(
                "kubectl",
                format!(
                    "{} is not supported with cluster {}: kubectl must be within one minor version",
                    client.git_version, server.git_version
                ),
                format!(
                    "install kubectl v{}.{}: https://kubernetes.io/docs/tasks/tools/ (or use `minikube kubectl --`)",
                    server.major, server.minor
                ),
            ),
        },
    }
}

/// Helm 3 or 4 is required.
fn helm_check(helm: &Found<HelmVersion>) -> Check {
    match helm {
        Found::Missing => Check::fail("helm", "not installed", install(tools::HELM)),
        Found::Broken(why) => Check::fail(
            "helm",
            format!("found but not working: {why}"),
            format!("reinstall Helm: {}", tools::HELM.install),
        ),
        Found::Present(version) => match version.support() {
            HelmSupport::Supported => Check::ok("helm", format!("v{} (Helm {})", version.version, version.major)),
            HelmSupport::TooOld => Check::fail(
                "helm",
                format!(
                    "v{}: Helm {} is not supported (Helm 3 or 4 is)",
                    version.version, version.major
                ),
                "upgrade Helm (Helm 2 and Tiller are end-of-life): https://helm.sh/docs/intro/install/",
            ),
            HelmSupport::Untested => Check::warn(
                "helm",
                format!(
                    "v{}: Helm {} is untested (tested: Helm 3 and 4)",
                    version.version, version.major
                ),
                "if the chart misbehaves, install Helm 4: https://helm.sh/docs/intro/install/",
            ),
        },
    }
}

/// Minikube is required unless another local cluster's context is current.
fn minikube_check(facts: &Facts) -> Check {
    let other = facts.context.other_local_cluster();
    match (&facts.minikube, other) {
        (Found::Present(minikube), _) => Check::ok("minikube", format!("v{}", minikube.version)),
        (Found::Missing, Some(kind)) => Check::skip(
            "minikube",
            format!("not installed (not needed: the current context is {})", kind.describe()),
        ),
        (Found::Missing, None) => Check::fail("minikube", "not installed", install(tools::MINIKUBE)),
        (Found::Broken(why), other) => Check::problem(
            other.is_none(),
            "minikube",
            format!("found but not working: {why}"),
            format!("reinstall Minikube: {}", tools::MINIKUBE.install),
        ),
    }
}

/// kind or k3d, needed when its context is current (it loads the images into the cluster).
fn local_tool_check(name: &'static str, tool: tools::Tool, found: &Found<String>, context: &KubeContext) -> Check {
    let current = context.kind().map(ClusterKind::describe).unwrap_or_default();
    match found {
        Found::Present(version) => Check::ok(name, format!("v{version}")),
        Found::Missing => Check::fail(
            name,
            format!("not installed (the current context is {current})"),
            install(tool),
        ),
        Found::Broken(why) => Check::fail(name, format!("found but not working: {why}"), tool.install),
    }
}

/// The current context must point at a local cluster.
fn context_check(facts: &Facts) -> Check {
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
fn cluster_check(facts: &Facts) -> Check {
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
fn minikube_cluster_checks(facts: &Facts) -> [Check; 3] {
    const STATUS: &str = "minikube-status";
    const CONFIG: &str = "minikube-config";
    const ADDONS: &str = "minikube-addons";
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
    let profile = &minikube.profile;
    let fix = minikube_fix(facts);
    let status_check = match status {
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
    };

    let config_check = match &minikube.profiles {
        Err(why) => Check::warn(
            CONFIG,
            format!("could not list profiles: {why}"),
            "see why: minikube profile list",
        ),
        Ok(profiles) => match profiles.iter().find(|p| &p.name == profile) {
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
    };

    let addons_check = match &minikube.addons {
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
    };
    [status_check, config_check, addons_check]
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
fn architecture_check(facts: &Facts) -> Check {
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

/// Free space on the project's filesystem: warn under [`DISK_WARN_GIB`], fail under [`DISK_FAIL_GIB`].
fn disk_check(disk: &Result<DiskSpace, String>) -> Check {
    const NAME: &str = "disk";
    const KIB_PER_GIB: u64 = 1024 * 1024;
    let space = match disk {
        Ok(space) => space,
        Err(why) => {
            return Check::warn(NAME, format!("free space unknown: {why}"), "see for yourself: df -h .");
        }
    };
    let detail = format!(
        "{:.1} GiB free on {}",
        space.available_kib as f64 / KIB_PER_GIB as f64,
        space.mount
    );
    let fix = "free space: docker system prune (or podman system prune), minikube image rm of old tags, and old cargo target/ directories";
    if space.available_kib < DISK_FAIL_GIB * KIB_PER_GIB {
        Check::fail(NAME, format!("{detail} (needs at least {DISK_FAIL_GIB} GiB)"), fix)
    } else if space.available_kib < DISK_WARN_GIB * KIB_PER_GIB {
        Check::warn(NAME, format!("{detail} (less than {DISK_WARN_GIB} GiB)"), fix)
    } else {
        Check::ok(NAME, detail)
    }
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

    #[test]
    fn disk_thresholds_warn_then_fail() {
        let at = |gib: f64| {
            disk_check(&Ok(DiskSpace {
                available_kib: (gib * 1024.0 * 1024.0) as u64,
                mount: "/".into(),
            }))
        };
        assert_eq!(at(50.0).status, Status::Ok);
        assert_eq!(at(9.5).status, Status::Warn);
        assert_eq!(at(1.5).status, Status::Fail);
        assert_eq!(at(50.0).detail, "50.0 GiB free on /");
    }

    #[test]
    fn one_container_engine_is_enough() {
        let no_daemon = Found::Present(DockerEngine {
            client: "28.2.2".into(),
            daemon: Err("Cannot connect to the Docker daemon".into()),
        });
        let [docker, podman] = engine_checks(&no_daemon, &Found::Present("4.3.1".into()));
        assert_eq!((docker.status, podman.status), (Status::Warn, Status::Ok));
        let [docker, podman] = engine_checks(&no_daemon, &Found::Missing);
        assert_eq!((docker.status, podman.status), (Status::Fail, Status::Fail));
        assert!(
            docker.detail.contains("client 28.2.2 only, daemon not reachable"),
            "{}",
            docker.detail
        );
    }

    #[test]
    fn the_table_puts_what_to_do_under_problems_only() {
        let report = Report::new(vec![
            Check::ok("helm", "v3.17.2 (Helm 3)"),
            Check::fail(
                "kube-context",
                "gke: not a local cluster",
                "kubectl config use-context minikube",
            ),
            Check {
                fix: Some("ignored".into()),
                ..Check::skip("kind", "not used")
            },
        ]);
        let table = render_table(&report);
        assert_eq!(
            table,
            "STATUS  CHECK         DETAIL\n\
             ok      helm          v3.17.2 (Helm 3)\n\
             FAIL    kube-context  gke: not a local cluster\n\
             \x20       -> what to do: kubectl config use-context minikube\n\
             skip    kind          not used\n\
             \n\
             1 ok, 0 warn, 1 FAIL, 1 skip: not ready: do what the FAIL lines say, then run `cargo xtask doctor` again\n"
        );
        assert!(table.is_ascii());
    }
}
