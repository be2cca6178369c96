//! The rules of helm/POLICY.md, one small function each, over a rendered
//! manifest. A rule reports findings; the policy test subtracts the allowlist and fails on the rest.

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt,
};

use k8s_openapi::{
    api::core::v1::{Container, ContainerPort, Probe, SecurityContext},
    apimachinery::pkg::util::intstr::IntOrString,
};

use crate::harness::{Manifest, NAMESPACE, Object, Typed, Workload, app_version, selects};

mod hardening;
mod hygiene;
mod probes;
mod pss;
mod workloads;

use self::{hardening::*, hygiene::*, probes::*, pss::*, workloads::*};

/// One rule broken by one object (and container).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Rule id, e.g. `PSS-R2` (a suffix like `R1.cpu-limit` names one part of a rule).
    pub rule: String,
    /// `Helm 3` or `Helm 4`.
    pub helm: String,
    /// The values file.
    pub values: String,
    /// `Kind/name`.
    pub object: String,
    /// The container, when the rule is about one.
    pub container: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}] {} ({}): {}", self.rule, self.values, self.helm, self.object)?;
        if let Some(container) = &self.container {
            write!(f, " container {container}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// What a rule function gets: the manifest, and where to report.
pub struct Check<'a> {
    /// The manifest under test.
    pub m: &'a Manifest,
    rule: &'static str,
    findings: Vec<Finding>,
}

impl Check<'_> {
    fn flag(&mut self, object: &Object, container: Option<&str>, message: impl Into<String>) {
        self.flag_as(self.rule, object, container, message);
    }

    fn flag_as(&mut self, rule: &str, object: &Object, container: Option<&str>, message: impl Into<String>) {
        self.findings.push(Finding {
            rule: rule.to_owned(),
            helm: self.m.helm.clone(),
            values: self.m.values.clone(),
            object: object.id(),
            container: container.map(str::to_owned),
            message: message.into(),
        });
    }
}

/// A rule: its id and the function that checks it.
pub type Rule = (&'static str, fn(&mut Check<'_>));

/// Every rule, in the order of helm/POLICY.md. C1, C2, C3, C4 and C7 are whole-chart checks
/// with tests of their own; C5 is a CI-only version-bump check.
pub const RULES: &[Rule] = &[
    ("PSS-B1", pss_b1_host_namespaces),
    ("PSS-B2", pss_b2_privileged),
    ("PSS-B3", pss_b3_baseline_capabilities),
    ("PSS-B4", pss_b4_host_path),
    ("PSS-B5", pss_b5_host_ports),
    ("PSS-B6", pss_b6_app_armor),
    ("PSS-B7", pss_b7_se_linux),
    ("PSS-B8", pss_b8_proc_mount),
    ("PSS-B9", pss_b9_seccomp_not_unconfined),
    ("PSS-B10", pss_b10_sysctls),
    ("PSS-R1", pss_r1_volume_types),
    ("PSS-R2", pss_r2_no_privilege_escalation),
    ("PSS-R3", pss_r3_run_as_non_root),
    ("PSS-R4", pss_r4_not_root_user),
    ("PSS-R5", pss_r5_seccomp_profile),
    ("PSS-R6", pss_r6_capabilities),
    ("PSS-R7", pss_r7_non_root_groups),
    ("H1", h1_read_only_root_filesystem),
    ("H2", h2_high_user_and_group),
    ("H3", h3_no_service_account_token),
    ("H4", h4_own_service_account),
    ("H5", h5_pinned_image_tags),
    ("H6", h6_no_secret_literals),
    ("H7", h7_no_duplicate_env),
    ("H8", h8_unprivileged_ports),
    ("H9", h9_release_namespace),
    ("H10", h10_network_policies),
    ("H11", h11_internal_services),
    ("H12", h12_namespace_labels),
    ("R1", r1_resources),
    ("R2", r2_readiness_probe),
    ("R3", r3_liveness_probe),
    ("R4", r4_distinct_probes),
    ("R5", r5_probe_ports),
    ("R6", r6_startup_and_timeouts),
    ("R7", r7_graceful_termination),
    ("R8", r8_stateless_replicas),
    ("R9", r9_disruption_budgets),
    ("R10", r10_spread),
    ("R11", r11_rolling_updates),
    ("R12", r12_selectors_and_ports),
    ("R13", r13_stable_api_versions),
    ("R14", r14_data_on_volumes),
    ("R15", r15_pull_policy),
    ("C6", c6_labels),
];

/// Runs every rule over the manifest.
pub fn check_all(m: &Manifest) -> Vec<Finding> {
    RULES.iter().flat_map(|(id, rule)| run_rule(m, id, *rule)).collect()
}

/// Runs one rule over the manifest.
pub fn run_rule(m: &Manifest, id: &'static str, rule: fn(&mut Check<'_>)) -> Vec<Finding> {
    let mut check = Check {
        m,
        rule: id,
        findings: Vec::new(),
    };
    rule(&mut check);
    check.findings
}

// ---------------------------------------------------------------------------------------------
// Small helpers over the typed objects.

fn sc(container: &Container) -> SecurityContext {
    container.security_context.clone().unwrap_or_default()
}

/// Containers that serve traffic: they declare a port.
fn serving(container: &Container) -> bool {
    container.ports.as_ref().is_some_and(|ports| !ports.is_empty())
}

fn ports(container: &Container) -> &[ContainerPort] {
    container.ports.as_deref().unwrap_or_default()
}

/// Does a port reference (number or name) name one of the container's ports?
fn port_matches(reference: &IntOrString, port: &ContainerPort) -> bool {
    match reference {
        IntOrString::Int(number) => *number == port.container_port,
        IntOrString::String(name) => port.name.as_deref() == Some(name.as_str()),
    }
}

fn quantity_is_set(
    map: Option<&BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>>,
    key: &str,
) -> bool {
    map.and_then(|map| map.get(key)).is_some_and(|q| !q.0.is_empty())
}

fn probes(container: &Container) -> [(&'static str, Option<&Probe>); 3] {
    [
        ("startupProbe", container.startup_probe.as_ref()),
        ("livenessProbe", container.liveness_probe.as_ref()),
        ("readinessProbe", container.readiness_probe.as_ref()),
    ]
}

fn env_number(env: &BTreeMap<String, Option<String>>, key: &str) -> Option<i64> {
    env.get(key).cloned().flatten().and_then(|value| value.parse().ok())
}

/// The path of a `sqlite://` URL (`sqlite:///data/todo.db` -> `/data/todo.db`).
fn sqlite_path(url: &str) -> Option<&str> {
    let rest = url.strip_prefix("sqlite:")?;
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    Some(rest.split('?').next().unwrap_or(rest))
}

/// Whether the workload keeps data on a PersistentVolumeClaim (its own or a claim template).
fn mounts_claim(w: &Workload<'_>) -> bool {
    !w.claim_templates.is_empty()
        || w.spec
            .volumes
            .iter()
            .flatten()
            .any(|volume| volume.persistent_volume_claim.is_some())
}

/// The effective replicas when this Deployment or StatefulSet runs several pods.
fn replicas(w: &Workload<'_>) -> i32 {
    w.replicas.unwrap_or(1)
}

/// A credential inside a URL: `scheme://user:password@host`.
fn url_has_credentials(value: &str) -> bool {
    value.split("://").skip(1).any(|rest| {
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        authority
            .rsplit_once('@')
            .is_some_and(|(userinfo, _)| userinfo.contains(':'))
    })
}

/// Names that hold secrets: kube-linter's `(?i).*secret.*`, plus passwords, keys and credentials.
fn secret_like_name(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    [
        "secret",
        "password",
        "passwd",
        "api_key",
        "apikey",
        "credential",
        "private_key",
    ]
    .iter()
    .any(|word| name.contains(word))
        || name.ends_with("token")
}
