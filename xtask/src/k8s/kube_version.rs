//! The chart's `kubeVersion` against the cluster's Kubernetes version, checked before anything is
//! built or loaded (Helm checks it too, but only when it renders the chart, at the very end).
//!
//! Helm compares the server's `gitVersion` with Masterminds semver. Only the form this chart uses,
//! `>=X.Y.Z` with an optional `-0` (which lets pre-releases such as `v1.30.0-gke.1` match), is
//! supported here; any other constraint is refused with a clear message rather than guessed at.
//! Build metadata (`+k3s1`) is ignored, as semver says.

use std::{cmp::Ordering, fs, path::Path};

use anyhow::{Context, bail};
use serde::Deserialize;

use crate::k8s::context::ClusterKind;

/// A version as semver sees it: `major.minor.patch`, and whether it is a pre-release.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SemVer {
    core: (u64, u64, u64),
    pre_release: bool,
}

impl SemVer {
    /// Parses `v1.30.0-gke.1`, `1.27.4+k3s1`, `1.30.0-0`: the `v` and `+build` are dropped.
    fn parse(text: &str) -> Option<SemVer> {
        let text = text.trim();
        let text = text.strip_prefix('v').unwrap_or(text);
        let text = text.split_once('+').map_or(text, |(version, _build)| version);
        let (core, pre) = match text.split_once('-') {
            Some((core, pre)) => (core, Some(pre)),
            None => (text, None),
        };
        let mut numbers = core.split('.').map(|n| n.parse::<u64>().ok());
        let core = (numbers.next()??, numbers.next()??, numbers.next()??);
        if numbers.next().is_some() || pre.is_some_and(str::is_empty) {
            return None;
        }
        Some(SemVer {
            core,
            pre_release: pre.is_some(),
        })
    }
}

/// A `kubeVersion` constraint of the supported form `>=X.Y.Z[-0]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeVersionRequirement {
    /// As written in Chart.yaml.
    pub text: String,
    minimum: (u64, u64, u64),
    /// `-0`: pre-releases of the minimum and later match too.
    allows_pre_release: bool,
}

impl KubeVersionRequirement {
    /// Parses `>=1.30.0-0`; any other form is an error naming the form supported.
    pub fn parse(text: &str) -> anyhow::Result<KubeVersionRequirement> {
        let unsupported = || {
            anyhow::anyhow!(
                "the chart's kubeVersion {text:?} is not a form deploy can check (only \">=X.Y.Z\" or \
                 \">=X.Y.Z-0\"): change helm/Chart.yaml's kubeVersion, or teach xtask/src/k8s/kube_version.rs the form"
            )
        };
        let bound = text.trim().strip_prefix(">=").ok_or_else(unsupported)?.trim();
        let version = SemVer::parse(bound)
            .filter(|_| !bound.starts_with('v'))
            .ok_or_else(unsupported)?;
        if version.pre_release && !bound.ends_with("-0") {
            return Err(unsupported());
        }
        Ok(KubeVersionRequirement {
            text: text.trim().to_owned(),
            minimum: version.core,
            allows_pre_release: version.pre_release,
        })
    }

    /// Reads `kubeVersion` from the chart's Chart.yaml; `None` when the chart sets none.
    pub fn of_chart(chart_dir: &Path) -> anyhow::Result<Option<KubeVersionRequirement>> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Chart {
            kube_version: Option<String>,
        }
        let path = chart_dir.join("Chart.yaml");
        let text = fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let chart: Chart =
            serde_yaml_ng::from_str(&text).with_context(|| format!("cannot parse {}", path.display()))?;
        chart.kube_version.as_deref().map(Self::parse).transpose()
    }

    /// Whether a server reporting `git_version` satisfies it, as Helm would judge: a pre-release
    /// server version matches only a constraint that allows pre-releases (`-0`).
    pub fn accepts(&self, git_version: &str) -> anyhow::Result<bool> {
        let server = SemVer::parse(git_version)
            .with_context(|| format!("unreadable Kubernetes version {git_version:?} from the API server"))?;
        if server.pre_release && !self.allows_pre_release {
            return Ok(false);
        }
        Ok(server.core.cmp(&self.minimum) != Ordering::Less)
    }

    /// `1.30.0`, for messages.
    pub fn minimum(&self) -> String {
        let (major, minor, patch) = self.minimum;
        format!("{major}.{minor}.{patch}")
    }
}

/// Refuses a cluster whose Kubernetes is older than the chart requires, naming the fix for the
/// kind of cluster.
pub fn check(requirement: &KubeVersionRequirement, git_version: &str, kind: &ClusterKind) -> anyhow::Result<()> {
    if requirement.accepts(git_version)? {
        return Ok(());
    }
    let minimum = requirement.minimum();
    let fix = match kind {
        ClusterKind::Minikube { profile } => format!(
            "recreate it with a newer Kubernetes: `minikube delete -p {profile}` then `minikube start -p {profile} \
             --kubernetes-version=stable` (or `cargo xtask up`)"
        ),
        ClusterKind::Kind { cluster } => format!(
            "recreate it with a newer node image: `kind delete cluster --name {cluster}` then `kind create cluster \
             --name {cluster} --image kindest/node:v<{minimum} or later>` (or a kind release whose default node is \
             that new)"
        ),
        ClusterKind::K3d { cluster } => format!(
            "recreate it with a newer k3s: `k3d cluster delete {cluster}` then `k3d cluster create {cluster} --image \
             rancher/k3s:v<{minimum} or later>-k3s1`"
        ),
        _ => format!("upgrade the cluster to Kubernetes {minimum} or later"),
    };
    bail!(
        "the cluster runs Kubernetes {git_version}, but the chart requires kubeVersion {} (helm/Chart.yaml), so Helm \
         would refuse it: nothing was built, loaded or installed. {fix}",
        requirement.text
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_charts_own_requirement_reads_and_judges_like_helm() {
        // helm/Chart.yaml's kubeVersion; Helm 3.17.2 and 4.3.1 refuse v1.29.2 and v1.27.4+k3s1 and
        // accept v1.30.0-gke.1 and v1.30.0 (SOURCES.md item 8, run here).
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let chart = KubeVersionRequirement::of_chart(&root.join("helm")).unwrap().unwrap();
        assert_eq!(chart.text, ">=1.30.0-0");
        for (version, accepted) in [
            ("v1.29.2", false),
            ("v1.27.4+k3s1", false),
            ("v1.30.0-gke.1", true),
            ("v1.30.0", true),
            ("v1.32.4+k3s1", true),
            ("v2.0.0", true),
        ] {
            assert_eq!(chart.accepts(version).unwrap(), accepted, "{version}");
        }
    }

    #[test]
    fn without_dash_zero_pre_releases_do_not_match() {
        let strict = KubeVersionRequirement::parse(">= 1.30.0").unwrap();
        assert!(strict.accepts("v1.30.1").unwrap());
        assert!(!strict.accepts("v1.31.0-gke.1").unwrap());
        assert!(strict.accepts("garbage").is_err());
    }

    #[test]
    fn other_constraint_forms_are_refused_not_guessed() {
        for form in [
            "~1.30.0",
            "^1.30",
            ">=1.30",
            "1.30.0",
            ">=1.30.0 <1.35.0",
            ">=1.30.0-alpha",
            ">1.30.0",
            "",
        ] {
            let err = KubeVersionRequirement::parse(form).unwrap_err().to_string();
            assert!(err.contains("only \">=X.Y.Z\""), "{form}: {err}");
        }
    }

    #[test]
    fn the_refusal_names_the_versions_and_the_fix_for_the_cluster() {
        let chart = KubeVersionRequirement::parse(">=1.30.0-0").unwrap();
        let kind = ClusterKind::Kind { cluster: "dev".into() };
        let err = check(&chart, "v1.29.2", &kind).unwrap_err().to_string();
        assert!(
            err.contains("Kubernetes v1.29.2") && err.contains(">=1.30.0-0"),
            "{err}"
        );
        assert!(
            err.contains("kind create cluster --name dev --image kindest/node:"),
            "{err}"
        );
        assert!(check(&chart, "v1.30.0-gke.1", &ClusterKind::Remote).is_ok());
    }
}
