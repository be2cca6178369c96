//! The Helm release in its namespace and kube context: the one place that decides which cluster a
//! command talks to (and whether it may change it), how every kubectl and Helm call names that
//! context, namespace and a timeout, which flags the installed Helm takes, and what state the
//! release is in (`helm history`). `deploy`, `up`, `status`, `logs`, `rollback`, `history`,
//! `uninstall`, `secrets` and `smoke` all reach the cluster through here.

use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use serde::Serialize;
use serde_json::Value;
use xshell::{Cmd, Shell, cmd};

use crate::k8s::objects::{self, Service};
pub use crate::k8s::objects::{COMPONENT_LABEL, INSTANCE_LABEL};
use crate::k8s::revisions::{ReleaseState, Revision, parse_history};
use crate::{
    exec::{
        probe::{self, PROBE_TIMEOUT},
        runner::Runner,
    },
    k8s::context::{self, ClusterKind},
    tools::{self, helm::Helm, kubectl::KUBECTL_REQUEST_TIMEOUT, minikube},
};

/// The release name unless `--release` says otherwise.
pub const DEFAULT_RELEASE: &str = "todo";
/// The namespace unless `--namespace` says otherwise.
pub const DEFAULT_NAMESPACE: &str = "todo";
/// The chart, relative to the project root.
pub const CHART_DIR: &str = "helm";
/// The values for a local cluster, used unless `--values` names others.
pub const DEV_VALUES: &str = "helm/values-dev.yaml";
/// The Pod Security Standard the namespace enforces (the chart's pods meet "restricted").
pub const POD_SECURITY_LABEL: &str = "pod-security.kubernetes.io/enforce";

/// kubectl's limit for read-only queries (the same as doctor's): a dead cluster costs seconds.
pub const QUERY_TIMEOUT: &str = KUBECTL_REQUEST_TIMEOUT;
/// kubectl's limit for requests that change something or download logs.
pub const WRITE_TIMEOUT: &str = "--request-timeout=30s";
/// For streams that stay open (`logs --follow`, `port-forward`): no limit, said explicitly.
pub const STREAM_TIMEOUT: &str = "--request-timeout=0";

/// Which release, where: shared by every command that reaches the cluster.
#[derive(Debug, Clone, Args)]
pub struct ReleaseArgs {
    /// Kube context to use [default: the current one]. Commands that change the cluster refuse a
    /// context that is not a local cluster unless it is named here explicitly.
    #[arg(long, value_name = "CONTEXT")]
    pub kube_context: Option<String>,
    /// Namespace of the release.
    #[arg(long, default_value = DEFAULT_NAMESPACE, value_parser = dns_label)]
    pub namespace: String,
    /// Name of the Helm release.
    #[arg(long, default_value = DEFAULT_RELEASE, value_parser = dns_label)]
    pub release: String,
}

impl Default for ReleaseArgs {
    fn default() -> Self {
        ReleaseArgs {
            kube_context: None,
            namespace: DEFAULT_NAMESPACE.to_owned(),
            release: DEFAULT_RELEASE.to_owned(),
        }
    }
}

/// What a command is going to do with the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Only read it (any context will do).
    Read,
    /// Change it (a local cluster, or a context named explicitly).
    Change,
}

/// A release, resolved: the context (and what kind of cluster it is), namespace and name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    /// The kube context every call names.
    pub context: String,
    /// What kind of cluster the context points at.
    pub kind: ClusterKind,
    /// Whether the context was named with `--kube-context`.
    pub explicit_context: bool,
    /// The namespace.
    pub namespace: String,
    /// The release name.
    pub name: String,
}

impl ReleaseArgs {
    /// Finds the context and checks that this command may use it.
    pub fn resolve(&self, sh: &Shell, access: Access) -> anyhow::Result<Release> {
        tools::require(tools::KUBECTL)?;
        let (context, explicit_context) = match &self.kube_context {
            Some(context) => (context.clone(), true),
            None => {
                let current = context::current_context(sh).context("reading the current kube context")?;
                let context = current.context(
                    "no kube context is set: start a local cluster (`minikube start`, or `cargo xtask up` \
                     which starts Minikube) or name one with --kube-context",
                )?;
                (context, false)
            }
        };
        let kind = classify(sh, &context);
        if access == Access::Change && !kind.is_local() && !explicit_context {
            bail!(
                "refusing to change the cluster of kube context `{context}`: it is not a local cluster \
                 (minikube, kind-*, k3d-*, docker-desktop, rancher-desktop). Switch with \
                 `kubectl config use-context minikube`, or name it with --kube-context {context} if you \
                 really mean to deploy there"
            );
        }
        Ok(Release {
            context,
            kind,
            explicit_context,
            namespace: self.namespace.clone(),
            name: self.release.clone(),
        })
    }
}

/// Classifies a context, asking Minikube for its profiles only when the name alone does not tell
/// (`minikube start -p dev` names its context `dev`).
pub fn classify(sh: &Shell, context: &str) -> ClusterKind {
    let kind = context::classify_context(context, &[]);
    if kind != ClusterKind::Remote || tools::find(tools::MINIKUBE).is_none() {
        return kind;
    }
    let profiles: Vec<String> = minikube::minikube_profiles(sh)
        .map(|profiles| profiles.into_iter().map(|profile| profile.name).collect())
        .unwrap_or_default();
    context::classify_context(context, &profiles)
}

/// A DNS-1123 label (release and namespace names): lowercase letters, digits and `-`, at most 53
/// characters (Helm's limit for release names).
pub fn dns_label(text: &str) -> Result<String, String> {
    let valid = !text.is_empty()
        && text.len() <= 53
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !text.starts_with('-')
        && !text.ends_with('-');
    if valid {
        Ok(text.to_owned())
    } else {
        Err(format!(
            "{text:?} is not a valid name: use lowercase letters, digits and '-' (at most 53, starting and \
             ending with a letter or digit)"
        ))
    }
}

impl Release {
    /// `kubectl --context <c> --namespace <n> <timeout>`: add the verb and its arguments.
    pub fn kubectl<'a>(&self, sh: &'a Shell, timeout: &str) -> Cmd<'a> {
        let (context, namespace) = (&self.context, &self.namespace);
        cmd!(sh, "kubectl --context {context} --namespace {namespace} {timeout}")
    }

    /// `<helm> <verb...> --kube-context <c> --namespace <n>`: add the verb's flags.
    pub fn helm<'a>(&self, sh: &'a Shell, helm: &Helm, verb: &[&str]) -> Cmd<'a> {
        let (program, context, namespace) = (&helm.program, &self.context, &self.namespace);
        cmd!(
            sh,
            "{program} {verb...} --kube-context {context} --namespace {namespace}"
        )
    }

    /// `app.kubernetes.io/instance=<release>`: every pod, Service and claim of the release.
    pub fn selector(&self) -> String {
        format!("{INSTANCE_LABEL}={}", self.name)
    }

    /// The release's objects of one component (`backend`, `frontend`).
    pub fn component_selector(&self, component: &str) -> String {
        format!("{},{COMPONENT_LABEL}={component}", self.selector())
    }

    /// `release todo in namespace todo (kube context minikube)`.
    pub fn describe(&self) -> String {
        format!(
            "release {} in namespace {} (kube context {}: {})",
            self.name,
            self.namespace,
            self.context,
            self.kind.describe()
        )
    }

    /// The Minikube profile, when the context is one.
    pub fn minikube_profile(&self) -> Option<&str> {
        match &self.kind {
            ClusterKind::Minikube { profile } => Some(profile),
            _ => None,
        }
    }

    /// The revisions of the release (`helm history`), oldest first; `None` when it does not exist.
    pub fn history(&self, sh: &Shell, helm: &Helm) -> anyhow::Result<Option<Vec<Revision>>> {
        let probe = probe::run(
            self.helm(sh, helm, &["history", &self.name])
                .args(["--max", "256", "-o", "json"]),
            PROBE_TIMEOUT,
        );
        if probe.succeeded() {
            return parse_history(&probe.stdout).map(Some);
        }
        if probe.stderr.contains("not found") {
            return Ok(None);
        }
        bail!("reading the history of release {}: {}", self.name, probe.failure())
    }

    /// What state the release is in.
    pub fn state(&self, sh: &Shell, helm: &Helm) -> anyhow::Result<ReleaseState> {
        Ok(ReleaseState::from_history(self.history(sh, helm)?.as_deref()))
    }

    /// Creates the namespace, labelled to enforce the "restricted" Pod Security Standard, if it
    /// does not exist; labels an existing namespace that enforces no standard at all.
    pub fn ensure_namespace(&self, sh: &Shell, runner: Runner) -> anyhow::Result<()> {
        let namespace = &self.namespace;
        let label = format!("{POD_SECURITY_LABEL}=restricted");
        let probe = probe::run(
            self.kubectl(sh, QUERY_TIMEOUT)
                .args(["get", "namespace", namespace, "-o", "json"]),
            PROBE_TIMEOUT,
        );
        if probe.succeeded() {
            let object: Value = serde_json::from_str(&probe.stdout)
                .with_context(|| format!("reading `kubectl get namespace {namespace} -o json`"))?;
            match object["metadata"]["labels"][POD_SECURITY_LABEL].as_str() {
                Some(level) => eprintln!("    namespace {namespace} exists (enforces Pod Security \"{level}\")"),
                None => {
                    eprintln!("    namespace {namespace} exists but enforces no Pod Security Standard: labelling it");
                    runner.run_on_stderr(self.kubectl(sh, WRITE_TIMEOUT).args([
                        "label",
                        "namespace",
                        namespace,
                        &label,
                    ]))?;
                }
            }
            return Ok(());
        }
        if !is_not_found(&probe.stderr) {
            bail!("reading namespace {namespace}: {}", probe.failure());
        }
        runner.run_on_stderr(self.kubectl(sh, WRITE_TIMEOUT).args(["create", "namespace", namespace]))?;
        runner.run_on_stderr(
            self.kubectl(sh, WRITE_TIMEOUT)
                .args(["label", "namespace", namespace, &label]),
        )
    }

    /// Runs a read-only `kubectl ... <args>` and returns its stdout.
    pub fn query(&self, sh: &Shell, args: &[&str]) -> anyhow::Result<String> {
        let probe = probe::run(self.kubectl(sh, QUERY_TIMEOUT).args(args), PROBE_TIMEOUT);
        if !probe.succeeded() {
            bail!("{}", probe.failure());
        }
        Ok(probe.stdout)
    }

    /// Runs a read-only `helm <verb...>` about the release and returns its stdout.
    pub fn query_helm(&self, sh: &Shell, helm: &Helm, verb: &[&str]) -> anyhow::Result<String> {
        let probe = probe::run(self.helm(sh, helm, verb), PROBE_TIMEOUT);
        if !probe.succeeded() {
            bail!("{}", probe.failure());
        }
        Ok(probe.stdout)
    }

    /// The release's Services.
    pub fn services(&self, sh: &Shell) -> anyhow::Result<Vec<ServiceInfo>> {
        let selector = self.selector();
        let json = self
            .query(sh, &["get", "services", "-l", &selector, "-o", "json"])
            .context("listing the release's Services")?;
        parse_services(&json)
    }

    /// Where people open the app, or the command that makes it reachable.
    pub fn app_url(&self, sh: &Shell, services: &[ServiceInfo]) -> AppUrl {
        let Some(frontend) = services.iter().find(|s| s.component == "frontend") else {
            return AppUrl::Hint(format!("the release {} has no frontend Service", self.name));
        };
        let forward = format!(
            "kubectl --context {} --namespace {} port-forward service/{} 3000:{} (then http://127.0.0.1:3000/)",
            self.context, self.namespace, frontend.name, frontend.port
        );
        let port_forward = || AppUrl::Hint(forward.clone());
        let Some(node_port) = frontend.node_port.filter(|_| frontend.kind == "NodePort") else {
            return port_forward();
        };
        match &self.kind {
            ClusterKind::Minikube { profile } => {
                // Only off Linux does the answer depend on the driver, so only there is it asked.
                let driver = (std::env::consts::OS != "linux")
                    .then(|| minikube::minikube_driver(sh, profile))
                    .flatten();
                let os = std::env::consts::OS;
                if !minikube::minikube_node_ip_reachable(driver.as_deref(), os) {
                    let setup = driver.map_or_else(
                        || format!("on {os} with minikube's docker or podman driver (its driver could not be read)"),
                        |driver| format!("with minikube's {driver} driver on {os}"),
                    );
                    return AppUrl::Hint(format!(
                        "the node's address (minikube ip) is not reachable from this machine {setup}: run \
                         `minikube service {} -n {} -p {profile} --url` and keep it running (it prints the address \
                         to open), or {forward}",
                        frontend.name, self.namespace
                    ));
                }
                let probe = probe::run(cmd!(sh, "minikube ip -p {profile}"), PROBE_TIMEOUT);
                match probe.stdout.lines().next().map(str::trim) {
                    Some(ip) if probe.succeeded() && !ip.is_empty() => AppUrl::Url(format!("http://{ip}:{node_port}/")),
                    _ => port_forward(),
                }
            }
            ClusterKind::DockerDesktop | ClusterKind::RancherDesktop | ClusterKind::OrbStack => {
                AppUrl::Url(format!("http://localhost:{node_port}/"))
            }
            _ => port_forward(),
        }
    }
}

/// A duration as Helm writes it: `180s`, `3m`, `1m30s`, `1h` (a bare number is seconds).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let invalid = || format!("{text:?} is not a duration: use e.g. 180s, 3m or 1m30s");
    let text = text.trim();
    if let Ok(seconds) = text.parse::<u64>() {
        return Ok(Duration::from_secs(seconds));
    }
    let mut total = 0_u64;
    let mut digits = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            'h' => 3600,
            'm' => 60,
            's' => 1,
            _ => return Err(invalid()),
        };
        let value: u64 = digits.parse().map_err(|_| invalid())?;
        total += value * unit;
        digits.clear();
    }
    if !digits.is_empty() || total == 0 {
        return Err(invalid());
    }
    Ok(Duration::from_secs(total))
}

/// `180s`: how a duration is handed to Helm and kubectl.
pub fn helm_duration(duration: Duration) -> String {
    format!("{}s", duration.as_secs())
}

/// Whether kubectl's error says the object does not exist.
pub fn is_not_found(stderr: &str) -> bool {
    stderr.contains("(NotFound)") || stderr.contains(" not found")
}

/// How to reach the app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AppUrl {
    /// Open this URL.
    Url(String),
    /// Run this first (no URL reaches the app directly).
    Hint(String),
}

impl AppUrl {
    /// The URL, if there is one.
    pub fn url(&self) -> Option<&str> {
        match self {
            AppUrl::Url(url) => Some(url),
            AppUrl::Hint(_) => None,
        }
    }

    /// `http://...` or the command to run.
    pub fn describe(&self) -> &str {
        match self {
            AppUrl::Url(text) | AppUrl::Hint(text) => text,
        }
    }
}

/// One Service of the release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceInfo {
    /// Its name (`todo-frontend`).
    pub name: String,
    /// Its `app.kubernetes.io/component` label.
    pub component: String,
    /// `ClusterIP`, `NodePort`, ...
    pub kind: String,
    /// Its first port.
    pub port: u16,
    /// The node port of that port, if any.
    pub node_port: Option<u16>,
}

/// The Services in `kubectl get services -o json`.
pub fn parse_services(json: &str) -> anyhow::Result<Vec<ServiceInfo>> {
    let services: Vec<Service> = objects::parse_items(json, "services")?;
    Ok(services
        .iter()
        .map(|service| {
            let spec = service.spec.as_ref();
            let port = spec.and_then(|s| s.ports.as_ref()).and_then(|ports| ports.first());
            ServiceInfo {
                name: objects::name(&service.metadata).to_owned(),
                component: service
                    .metadata
                    .labels
                    .as_ref()
                    .and_then(|labels| labels.get(COMPONENT_LABEL))
                    .cloned()
                    .unwrap_or_default(),
                kind: spec
                    .and_then(|s| s.type_.clone())
                    .unwrap_or_else(|| "ClusterIP".to_owned()),
                port: port.and_then(|p| u16::try_from(p.port).ok()).unwrap_or(0),
                node_port: port.and_then(|p| p.node_port).and_then(|p| u16::try_from(p).ok()),
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_helms() {
        assert_eq!(parse_duration("180s"), Ok(Duration::from_secs(180)));
        assert_eq!(parse_duration("3m"), Ok(Duration::from_secs(180)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("0s").is_err());
        assert_eq!(helm_duration(Duration::from_secs(180)), "180s");
    }

    #[test]
    fn names_must_be_dns_labels() {
        assert!(dns_label("todo").is_ok());
        assert!(dns_label("todo-2").is_ok());
        for bad in ["", "Todo", "-todo", "todo-", "to_do", "a,b=c", &"x".repeat(54)] {
            assert!(dns_label(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn services_give_names_ports_and_node_ports() {
        let json = r#"{"apiVersion":"v1","items":[
            {"metadata":{"name":"todo-backend","labels":{"app.kubernetes.io/component":"backend","app.kubernetes.io/instance":"todo"}},
             "spec":{"type":"ClusterIP","clusterIP":"10.96.12.34","ports":[{"name":"http","port":8000,"protocol":"TCP","targetPort":"http"}]}},
            {"metadata":{"name":"todo-frontend","labels":{"app.kubernetes.io/component":"frontend","app.kubernetes.io/instance":"todo"}},
             "spec":{"type":"NodePort","clusterIP":"10.96.56.78","ports":[{"name":"http","nodePort":30000,"port":3000,"protocol":"TCP","targetPort":"http"}]}}
        ],"kind":"List","metadata":{"resourceVersion":""}}"#;
        let services = parse_services(json).unwrap();
        assert_eq!(services[0].name, "todo-backend");
        assert_eq!((services[0].port, services[0].node_port), (8000, None));
        assert_eq!(services[1].component, "frontend");
        assert_eq!(
            (services[1].kind.as_str(), services[1].node_port),
            ("NodePort", Some(30000))
        );
    }
}
