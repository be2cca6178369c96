//! Runs the real `helm` (3 and 4) over the chart and turns its output into typed objects.
//!
//! Every render of the values matrix (defaults, values-dev.yaml, every ci/*-values.yaml) is done
//! once per Helm version and shared by the tests.

use std::{
    collections::BTreeMap,
    fmt,
    path::{Path, PathBuf},
    process::Command,
    sync::OnceLock,
};

use k8s_openapi::{
    api::{
        apps::v1::{Deployment, StatefulSet},
        autoscaling::v2::HorizontalPodAutoscaler,
        core::v1::{
            ConfigMap, Container, Namespace, PersistentVolumeClaim, Pod, PodSpec, Secret, Service, ServiceAccount,
        },
        networking::v1::{Ingress, NetworkPolicy},
        policy::v1::PodDisruptionBudget,
    },
    apimachinery::pkg::apis::meta::v1::LabelSelector,
};
use serde::Deserialize;
use serde_json::Value;
use xtask::{
    exec::probe::spawn_error,
    tools::helm::dist::{self, HelmDist},
};

mod objects;

pub use self::objects::*;

/// The Kubernetes version of a current Minikube, so deprecated APIs fail the render.
pub const KUBE_VERSION: &str = "1.34.0";
/// The release every test renders.
pub const RELEASE: &str = "todo";
/// A namespace no template could hard-code, to prove every object follows `.Release.Namespace`.
pub const NAMESPACE: &str = "todo-chart-test";
/// The name the defaults are known by (they are rendered without `-f`).
pub const DEFAULTS: &str = "values.yaml";

/// The project root (the workspace that holds `helm/`).
pub fn project_root() -> PathBuf {
    xtask::project_root()
}

/// The chart directory.
pub fn chart_dir() -> PathBuf {
    project_root().join("helm")
}

/// One Helm binary under test.
#[derive(Debug, Clone)]
pub struct Helm {
    /// Which pinned release it stands for.
    pub dist: HelmDist,
    /// Its path.
    pub path: PathBuf,
}

impl fmt::Display for Helm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Helm {}", self.dist.major)
    }
}

/// Both Helm versions; fails (never skips) when one is missing.
pub fn helms() -> Vec<Helm> {
    dist::ALL
        .iter()
        .map(|dist| {
            let path = dist.binary();
            assert!(
                path.is_file(),
                "Helm {} is missing at {}: run `cargo xtask test`, which fetches Helm into target/helm-dist \
                 (or point {} at a Helm {} binary)",
                dist.major,
                path.display(),
                dist.env_override,
                dist.major,
            );
            Helm { dist: *dist, path }
        })
        .collect()
}

/// What a helm command printed, and whether it succeeded.
#[derive(Debug)]
pub struct Outcome {
    /// Exit status was 0.
    pub success: bool,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Helm {
    /// Runs helm with these arguments in the project root.
    pub fn run(&self, args: &[&str]) -> Outcome {
        let output = Command::new(&self.path)
            .args(args)
            .current_dir(project_root())
            // Keep the user's repositories, plugins and caches out of the tests.
            .env("HELM_CONFIG_HOME", scratch_dir("config"))
            .env("HELM_CACHE_HOME", scratch_dir("cache"))
            .env("HELM_DATA_HOME", scratch_dir("data"))
            .output()
            .unwrap_or_else(|err| panic!("cannot run {}: {}", self.path.display(), spawn_error(&err)));
        Outcome {
            success: output.status.success(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// `helm template` of the chart with a values file (or the defaults) and extra arguments.
    pub fn template(&self, values: &str, extra: &[&str]) -> Outcome {
        let chart = chart_dir();
        let chart = chart.to_str().expect("the chart path is UTF-8");
        let mut args = vec![
            "template",
            RELEASE,
            chart,
            "--namespace",
            NAMESPACE,
            "--kube-version",
            KUBE_VERSION,
        ];
        let values_path = values_path(values);
        if let Some(path) = &values_path {
            args.extend(["--values", path.to_str().expect("UTF-8 path")]);
        }
        args.extend_from_slice(extra);
        self.run(&args)
    }

    /// `helm template` that must succeed; its output.
    pub fn render_text(&self, values: &str, extra: &[&str]) -> String {
        let outcome = self.template(values, extra);
        assert!(
            outcome.success,
            "{self}: helm template with {values} {extra:?} failed:\n{}",
            outcome.stderr
        );
        outcome.stdout
    }
}

/// A directory under target/ for Helm's own config and cache.
fn scratch_dir(what: &str) -> PathBuf {
    let dir = xtask::helm_dist_dir().join("home").join(what);
    std::fs::create_dir_all(&dir).unwrap_or_else(|err| panic!("cannot create {}: {err}", dir.display()));
    dir
}

/// The file for a values name, or None for the defaults.
pub fn values_path(values: &str) -> Option<PathBuf> {
    (values != DEFAULTS).then(|| chart_dir().join(values))
}

/// The values matrix: the defaults, values-dev.yaml, then every ci/*-values.yaml.
pub fn values_files() -> Vec<String> {
    let mut files = vec![DEFAULTS.to_owned(), "values-dev.yaml".to_owned()];
    let ci = chart_dir().join("ci");
    let mut ci_files: Vec<String> = std::fs::read_dir(&ci)
        .unwrap_or_else(|err| panic!("cannot list {}: {err}", ci.display()))
        .map(|entry| {
            entry
                .expect("readable ci/ entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|name| name.ends_with("-values.yaml"))
        .map(|name| format!("ci/{name}"))
        .collect();
    ci_files.sort();
    assert!(!ci_files.is_empty(), "no ci/*-values.yaml in {}", ci.display());
    files.extend(ci_files);
    files
}

/// Every render of the values matrix, for both Helm versions (done once, shared by the tests).
pub fn matrix() -> &'static [Manifest] {
    static MATRIX: OnceLock<Vec<Manifest>> = OnceLock::new();
    MATRIX.get_or_init(|| {
        let mut manifests = Vec::new();
        for helm in helms() {
            for values in values_files() {
                manifests.push(Manifest::render(&helm, &values, &[]));
            }
        }
        manifests
    })
}

/// The chart's appVersion, read from Chart.yaml.
pub fn app_version() -> String {
    let chart: Value = serde_yaml_ng::from_str(&read(&chart_dir().join("Chart.yaml"))).expect("Chart.yaml is YAML");
    chart["appVersion"]
        .as_str()
        .expect("Chart.yaml has appVersion")
        .to_owned()
}

/// A file's text, or a panic naming it.
pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|err| panic!("cannot read {}: {err}", path.display()))
}
