//! The checks about tools and this machine: container engines and their DNS, kubectl, Helm,
//! Minikube, kind, k3d, and the free disk space; [`evaluate`] runs every check, in order.

use super::{
    Check, DISK_FAIL_GIB, DISK_WARN_GIB, Report,
    cluster::{architecture_check, cluster_check, context_check, minikube_cluster_checks},
    facts::{DiskSpace, Facts, Found, KubeContext},
};
use crate::k8s::context::ClusterKind;
use crate::tools::{
    self,
    engine::{DockerEngine, network::PodmanDns},
    helm::{HelmSupport, HelmVersion},
    kubectl::{self, KubectlVersion},
};

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
    use crate::doctor::Status;

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
}
