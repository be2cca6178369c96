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

/// One rendered object.
#[derive(Debug, Clone)]
pub struct Object {
    /// The template that produced it (`# Source:` line), e.g. `todo/templates/backend-deployment.yaml`.
    pub source: String,
    /// The object as helm printed it.
    pub raw: Value,
    /// The object as its Kubernetes type.
    pub typed: Typed,
}

impl Object {
    /// `Kind/name`.
    pub fn id(&self) -> String {
        format!("{}/{}", self.kind(), self.name())
    }

    /// The object's kind.
    pub fn kind(&self) -> &str {
        self.raw["kind"].as_str().unwrap_or("<no kind>")
    }

    /// The object's metadata.name.
    pub fn name(&self) -> &str {
        self.raw["metadata"]["name"].as_str().unwrap_or("<no name>")
    }

    /// metadata.labels.
    pub fn labels(&self) -> BTreeMap<String, String> {
        string_map(&self.raw["metadata"]["labels"])
    }

    /// metadata.annotations.
    pub fn annotations(&self) -> BTreeMap<String, String> {
        string_map(&self.raw["metadata"]["annotations"])
    }
}

fn string_map(value: &Value) -> BTreeMap<String, String> {
    value
        .as_object()
        .map(|map| {
            map.iter()
                .map(|(k, v)| (k.clone(), v.as_str().map_or_else(|| v.to_string(), str::to_owned)))
                .collect()
        })
        .unwrap_or_default()
}

macro_rules! typed_kinds {
    ($($variant:ident => $api:literal),* $(,)?) => {
        /// Every kind the chart may render, as its k8s-openapi type.
        #[derive(Debug, Clone)]
        pub enum Typed {
            $($variant(Box<$variant>),)*
            /// An apiVersion/kind the tests do not know (R13 and the key round trip report it).
            Other,
        }

        impl Typed {
            /// Deserializes by apiVersion and kind; an unknown pair is an error.
            pub fn from_raw(raw: &Value) -> Result<Self, String> {
                let api = raw["apiVersion"].as_str().unwrap_or_default();
                let kind = raw["kind"].as_str().unwrap_or_default();
                match (api, kind) {
                    $(
                        ($api, stringify!($variant)) => serde_json::from_value(raw.clone())
                            .map(|object| Self::$variant(Box::new(object)))
                            .map_err(|err| format!("{kind} does not deserialize: {err}")),
                    )*
                    _ => Ok(Self::Other),
                }
            }

            /// Serializes back to JSON.
            pub fn to_value(&self) -> Value {
                match self {
                    $(Self::$variant(object) => serde_json::to_value(object).expect("k8s-openapi types serialize"),)*
                    Self::Other => Value::Null,
                }
            }
        }
    };
}

typed_kinds! {
    Deployment => "apps/v1",
    StatefulSet => "apps/v1",
    Pod => "v1",
    Service => "v1",
    ConfigMap => "v1",
    Secret => "v1",
    ServiceAccount => "v1",
    PersistentVolumeClaim => "v1",
    NetworkPolicy => "networking.k8s.io/v1",
    PodDisruptionBudget => "policy/v1",
    HorizontalPodAutoscaler => "autoscaling/v2",
    Ingress => "networking.k8s.io/v1",
    Namespace => "v1",
}

/// Splits helm's output into objects (documents separated by `---`, each after a `# Source:` line).
pub fn parse(text: &str) -> Result<Vec<Object>, String> {
    let mut objects = Vec::new();
    for chunk in split_documents(text) {
        let source = chunk
            .lines()
            .find_map(|line| line.strip_prefix("# Source: "))
            .unwrap_or("<unknown>")
            .to_owned();
        let raw: Value = Value::deserialize(serde_yaml_ng::Deserializer::from_str(&chunk))
            .map_err(|err| format!("{source}: not YAML: {err}"))?;
        if raw.is_null() {
            continue;
        }
        let typed = Typed::from_raw(&raw).map_err(|err| format!("{source}: {err}"))?;
        objects.push(Object { source, raw, typed });
    }
    Ok(objects)
}

fn split_documents(text: &str) -> Vec<String> {
    let mut documents = vec![String::new()];
    for line in text.lines() {
        if line.trim_end() == "---" {
            documents.push(String::new());
        } else if let Some(current) = documents.last_mut() {
            current.push_str(line);
            current.push('\n');
        }
    }
    documents.retain(|doc| {
        doc.lines()
            .any(|line| !line.trim().is_empty() && !line.starts_with('#'))
    });
    documents
}

/// Every object of one render.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// The Helm that rendered it (`Helm 3`).
    pub helm: String,
    /// The values file (`values.yaml` for the defaults).
    pub values: String,
    /// The objects, in helm's order.
    pub objects: Vec<Object>,
}

impl Manifest {
    /// Renders with this Helm and values file, plus extra arguments.
    pub fn render(helm: &Helm, values: &str, extra: &[&str]) -> Self {
        let text = helm.render_text(values, extra);
        let objects = parse(&text).unwrap_or_else(|err| panic!("{helm}, {values}: {err}"));
        Self {
            helm: helm.to_string(),
            values: values.to_owned(),
            objects,
        }
    }

    /// Rebuilds the typed view after a test edited `raw` (see the rule self-tests).
    pub fn reparse(mut self) -> Self {
        for object in &mut self.objects {
            object.typed = Typed::from_raw(&object.raw).unwrap_or_else(|err| panic!("{}: {err}", object.id()));
        }
        self
    }

    /// The objects of one kind.
    pub fn of_kind(&self, kind: &str) -> impl Iterator<Item = &Object> + use<'_> {
        let kind = kind.to_owned();
        self.objects.iter().filter(move |object| object.kind() == kind)
    }

    /// The object with this kind and name.
    pub fn find(&self, kind: &str, name: &str) -> Option<&Object> {
        self.of_kind(kind).find(|object| object.name() == name)
    }

    /// The pod-running objects, with their pod spec.
    pub fn workloads(&self) -> Vec<Workload<'_>> {
        self.objects
            .iter()
            .filter_map(|object| {
                let (spec, metadata, replicas, selector, claims) = match &object.typed {
                    Typed::Deployment(d) => {
                        let spec = d.spec.as_ref()?;
                        (
                            spec.template.spec.as_ref()?,
                            spec.template.metadata.clone().unwrap_or_default(),
                            Some(spec.replicas.or_else(|| self.hpa_min_replicas(object)).unwrap_or(1)),
                            Some(spec.selector.clone()),
                            Vec::new(),
                        )
                    }
                    Typed::StatefulSet(s) => {
                        let spec = s.spec.as_ref()?;
                        (
                            spec.template.spec.as_ref()?,
                            spec.template.metadata.clone().unwrap_or_default(),
                            Some(spec.replicas.unwrap_or(1)),
                            Some(spec.selector.clone()),
                            spec.volume_claim_templates.clone().unwrap_or_default(),
                        )
                    }
                    Typed::Pod(p) => (p.spec.as_ref()?, p.metadata.clone(), None, None, Vec::new()),
                    _ => return None,
                };
                Some(Workload {
                    object,
                    spec,
                    labels: metadata.labels.unwrap_or_default(),
                    annotations: metadata.annotations.unwrap_or_default(),
                    replicas,
                    selector,
                    claim_templates: claims,
                })
            })
            .collect()
    }

    /// minReplicas of the HorizontalPodAutoscaler that scales this object, if any.
    fn hpa_min_replicas(&self, target: &Object) -> Option<i32> {
        self.objects.iter().find_map(|object| match &object.typed {
            Typed::HorizontalPodAutoscaler(hpa) => {
                let spec = hpa.spec.as_ref()?;
                (spec.scale_target_ref.kind == target.kind() && spec.scale_target_ref.name == target.name())
                    .then(|| spec.min_replicas.unwrap_or(1))
            }
            _ => None,
        })
    }

    /// The data of the ConfigMap with this name.
    pub fn config_map_data(&self, name: &str) -> BTreeMap<String, String> {
        self.objects
            .iter()
            .find_map(|object| match &object.typed {
                Typed::ConfigMap(cm) if cm.metadata.name.as_deref() == Some(name) => cm.data.clone(),
                _ => None,
            })
            .unwrap_or_default()
    }

    /// A container's environment as literal values: envFrom ConfigMaps first, then env[].value
    /// (secretKeyRef entries map to None).
    pub fn environment(&self, container: &Container) -> BTreeMap<String, Option<String>> {
        let mut env = BTreeMap::new();
        for source in container.env_from.iter().flatten() {
            if let Some(cm) = &source.config_map_ref {
                let prefix = source.prefix.clone().unwrap_or_default();
                for (key, value) in self.config_map_data(&cm.name) {
                    env.insert(format!("{prefix}{key}"), Some(value));
                }
            }
        }
        for var in container.env.iter().flatten() {
            env.insert(var.name.clone(), var.value.clone());
        }
        env
    }
}

/// A Deployment, StatefulSet or Pod, seen through its pod spec.
#[derive(Debug)]
pub struct Workload<'a> {
    /// The object itself.
    pub object: &'a Object,
    /// The pod spec.
    pub spec: &'a PodSpec,
    /// The pod's labels.
    pub labels: BTreeMap<String, String>,
    /// The pod's annotations.
    pub annotations: BTreeMap<String, String>,
    /// Replicas (a Deployment's HPA minReplicas when it has no replicas); None for a bare Pod.
    pub replicas: Option<i32>,
    /// The workload's selector; None for a bare Pod.
    pub selector: Option<LabelSelector>,
    /// A StatefulSet's volumeClaimTemplates.
    pub claim_templates: Vec<PersistentVolumeClaim>,
}

impl Workload<'_> {
    /// Every container the PSS checks visit: containers and initContainers.
    pub fn containers(&self) -> impl Iterator<Item = &Container> {
        self.spec
            .containers
            .iter()
            .chain(self.spec.init_containers.iter().flatten())
    }

    /// The app.kubernetes.io/component label.
    pub fn component(&self) -> &str {
        self.labels
            .get("app.kubernetes.io/component")
            .map_or("", String::as_str)
    }
}

/// Whether a selector's matchLabels all appear in the labels. matchExpressions are not used by
/// this chart; meeting one fails loudly rather than being guessed at.
pub fn selects(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    assert!(
        selector.match_expressions.as_ref().is_none_or(Vec::is_empty),
        "matchExpressions are not evaluated by these tests; extend `selects` first"
    );
    selector
        .match_labels
        .iter()
        .flatten()
        .all(|(key, value)| labels.get(key) == Some(value))
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
