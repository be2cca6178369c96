//! (1) Preflight, before anything is built or changed: the kube context may be changed, Helm's
//! major version decides its flags, the cluster's Kubernetes meets the chart's `kubeVersion`, its
//! nodes share one CPU architecture (the one to build for), and the development values go only
//! to a local cluster.

use std::path::PathBuf;

use anyhow::bail;
use clap::ValueEnum;
use xshell::Shell;

use super::{Deploy, Outcome};
use crate::{
    build_images::Arch,
    k8s::{
        context,
        kube_version::{self, KubeVersionRequirement},
        release::{Access, CHART_DIR, DEV_VALUES, Release},
    },
    progress::step,
    tools::{helm::Helm, kubectl},
};

/// What preflight found: where the release goes, the Helm to use, and the nodes' architecture.
pub(super) struct Preflight {
    pub release: Release,
    pub helm: Helm,
    pub arch: Arch,
}

impl Deploy {
    /// (1) Preflight: the context, Helm, then the cluster's version and architecture.
    pub(super) fn preflight(&self, sh: &Shell, outcome: &mut Outcome) -> anyhow::Result<Preflight> {
        let (release, helm) = step("preflight: kube context and Helm", || {
            let release = self.target.resolve(sh, Access::Change)?;
            let helm = Helm::find(sh)?;
            eprintln!(
                "    {}; Helm {} ({} {})",
                release.describe(),
                helm.version.version,
                helm.wait_flag(),
                helm.rollback_on_failure_flag()
            );
            Ok((release, helm))
        })?;
        outcome.context = Some(release.context.clone());
        outcome.namespace = Some(release.namespace.clone());
        outcome.release = Some(release.name.clone());
        let arch = step("preflight: the cluster's Kubernetes version and nodes", || {
            check_kube_version(sh, &release)?;
            nodes_architecture(sh, &release)
        })?;
        Ok(Preflight { release, helm, arch })
    }

    /// The values files with helm/values-dev.yaml in front when it is meant for this cluster:
    /// asked for with --dev-values, or by default on a local cluster deployed without --push and
    /// without --values. Development values (plain-HTTP cookies, a NodePort, small limits) never
    /// reach a shared cluster by accident.
    pub(super) fn with_dev_values(&self, release: &Release, values: Vec<PathBuf>) -> Vec<PathBuf> {
        let local = release.kind.is_local() && !self.push;
        if self.dev_values || (local && values.is_empty()) {
            let then = if values.is_empty() { "" } else { ", then --values" };
            eprintln!("    values: {DEV_VALUES}{then}");
            return std::iter::once(PathBuf::from(DEV_VALUES)).chain(values).collect();
        }
        if values.is_empty() {
            let place = if self.push {
                "a deploy with --push"
            } else {
                "a cluster that is not local"
            };
            eprintln!(
                "    values: the chart's defaults only (helm/values.yaml); {DEV_VALUES} is not applied to {place} \
                 (--dev-values applies it)"
            );
        }
        values
    }
}

/// The server's version (`kubectl version -o json` in the release's context) against the chart's
/// `kubeVersion`: an old cluster is refused now, not by Helm after the build and the load.
fn check_kube_version(sh: &Shell, release: &Release) -> anyhow::Result<()> {
    let Some(requirement) = KubeVersionRequirement::of_chart(&sh.current_dir().join(CHART_DIR))? else {
        return Ok(());
    };
    let json = release.query(sh, &["version", "-o", "json"])?;
    let (_, server) = kubectl::parse_kubectl_version(&json)?;
    let Some(server) = server else {
        bail!("the API server did not report its version (`kubectl version -o json` has no serverVersion)");
    };
    kube_version::check(&requirement, &server.git_version, &release.kind)?;
    eprintln!(
        "    Kubernetes {} (the chart requires {})",
        server.git_version, requirement.text
    );
    Ok(())
}

/// The one architecture of the cluster's nodes: the images are built for it. Nodes of several
/// architectures are refused, naming them (one image per service cannot run on all of them).
fn nodes_architecture(sh: &Shell, release: &Release) -> anyhow::Result<Arch> {
    let nodes = release.query(sh, &["get", "nodes", "-o", "json"])?;
    let architectures = context::parse_node_architectures(&nodes)?;
    let [only] = architectures.as_slice() else {
        bail!(
            "the cluster's nodes have several CPU architectures ({}): deploy builds one image per service, for one \
             architecture, so it cannot serve them all; deploy to a cluster whose nodes share one architecture",
            architectures.join(", ")
        );
    };
    let arch = Arch::from_str(only, true).map_err(|_| {
        anyhow::anyhow!("the cluster's nodes are {only}: images are built only for linux/amd64 and linux/arm64")
    })?;
    eprintln!("    nodes: linux/{} (the images are built for it)", arch.name());
    Ok(arch)
}
