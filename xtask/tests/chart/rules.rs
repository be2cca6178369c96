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

// ---------------------------------------------------------------------------------------------
// A. Pod Security Standards: Baseline

fn pss_b1_host_namespaces(c: &mut Check<'_>) {
    for w in c.m.workloads() {
        for (field, value) in [
            ("hostNetwork", w.spec.host_network),
            ("hostPID", w.spec.host_pid),
            ("hostIPC", w.spec.host_ipc),
        ] {
            if value == Some(true) {
                c.flag(w.object, None, format!("{field} is true"));
            }
        }
    }
}

fn pss_b2_privileged(c: &mut Check<'_>) {
    for w in c.m.workloads() {
        for container in w.containers() {
            if sc(container).privileged == Some(true) {
                c.flag(w.object, Some(&container.name), "securityContext.privileged is true");
            }
        }
    }
}

const BASELINE_CAPABILITIES: &[&str] = &[
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

fn pss_b3_baseline_capabilities(c: &mut Check<'_>) {
    for w in c.m.workloads() {
        for container in w.containers() {
            let added = sc(container).capabilities.and_then(|caps| caps.add).unwrap_or_default();
            for cap in added
                .iter()
                .filter(|cap| !BASELINE_CAPABILITIES.contains(&cap.as_str()))
            {
                c.flag(
                    w.object,
                    Some(&container.name),
                    format!("capabilities.add has {cap}, beyond the baseline set"),
                );
            }
        }
    }
}

fn pss_b4_host_path(c: &mut Check<'_>) {
    for w in c.m.workloads() {
        for volume in w.spec.volumes.iter().flatten().filter(|v| v.host_path.is_some()) {
            c.flag(w.object, None, format!("volume {} is a hostPath", volume.name));
        }
    }
}

fn pss_b5_host_ports(c: &mut Check<'_>) {
    for w in c.m.workloads() {
        for container in w.containers() {
            for port in ports(container) {
                if port.host_port.is_some_and(|host_port| host_port != 0) {
                    c.flag(
                        w.object,
                        Some(&container.name),
                        format!("hostPort {:?}", port.host_port),
                    );
                }
            }
        }
    }
}

fn pss_b6_app_armor(c: &mut Check<'_>) {
    let allowed = |kind: &str| kind == "RuntimeDefault" || kind == "Localhost";
    for w in c.m.workloads() {
        let pod_profile = w
            .spec
            .security_context
            .as_ref()
            .and_then(|sc| sc.app_armor_profile.as_ref());
        if let Some(profile) = pod_profile.filter(|p| !allowed(&p.type_)) {
            c.flag(w.object, None, format!("pod appArmorProfile {}", profile.type_));
        }
        for container in w.containers() {
            if let Some(profile) = sc(container).app_armor_profile.filter(|p| !allowed(&p.type_)) {
                c.flag(
                    w.object,
                    Some(&container.name),
                    format!("appArmorProfile {}", profile.type_),
                );
            }
        }
        for (key, value) in &w.annotations {
            if key.starts_with("container.apparmor.security.beta.kubernetes.io/")
                && value != "runtime/default"
                && !value.starts_with("localhost/")
            {
                c.flag(w.object, None, format!("annotation {key}: {value}"));
            }
        }
    }
}

fn pss_b7_se_linux(c: &mut Check<'_>) {
    for w in c.m.workloads() {
        if w.spec
            .security_context
            .as_ref()
            .is_some_and(|sc| sc.se_linux_options.is_some())
        {
            c.flag(w.object, None, "pod securityContext.seLinuxOptions is set");
        }
        for container in w.containers() {
            if sc(container).se_linux_options.is_some() {
                c.flag(w.object, Some(&container.name), "securityContext.seLinuxOptions is set");
            }
        }
    }
}

fn pss_b8_proc_mount(c: &mut Check<'_>) {
    for w in c.m.workloads() {
        for container in w.containers() {
            if let Some(mount) = sc(container).proc_mount.filter(|mount| mount != "Default") {
                c.flag(w.object, Some(&container.name), format!("procMount {mount}"));
            }
        }
    }
}

fn pss_b9_seccomp_not_unconfined(c: &mut Check<'_>) {
    for w in c.m.workloads() {
        let pod = w
            .spec
            .security_context
            .as_ref()
            .and_then(|sc| sc.seccomp_profile.as_ref());
        if pod.is_some_and(|p| p.type_ == "Unconfined") {
            c.flag(w.object, None, "pod seccompProfile is Unconfined");
        }
        for container in w.containers() {
            if sc(container).seccomp_profile.is_some_and(|p| p.type_ == "Unconfined") {
                c.flag(w.object, Some(&container.name), "seccompProfile is Unconfined");
            }
        }
    }
}

fn pss_b10_sysctls(c: &mut Check<'_>) {
    for w in c.m.workloads() {
        let sysctls = w.spec.security_context.as_ref().and_then(|sc| sc.sysctls.as_ref());
        if sysctls.is_some_and(|list| !list.is_empty()) {
            c.flag(w.object, None, "securityContext.sysctls is set");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// B. Pod Security Standards: Restricted

const RESTRICTED_VOLUME_TYPES: &[&str] = &[
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
];

fn pss_r1_volume_types(c: &mut Check<'_>) {
    for w in c.m.workloads() {
        for volume in w.spec.volumes.iter().flatten() {
            let as_json = serde_json::to_value(volume).expect("a Volume serializes");
            let kinds: Vec<&String> = as_json.as_object().into_iter().flatten().map(|(k, _)| k).collect();
            for kind in kinds.into_iter().filter(|k| *k != "name") {
                if !RESTRICTED_VOLUME_TYPES.contains(&kind.as_str()) {
                    c.flag(w.object, None, format!("volume {} is of type {kind}", volume.name));
                }
            }
        }
    }
}

fn pss_r2_no_privilege_escalation(c: &mut Check<'_>) {
    for w in c.m.workloads() {
        for container in w.containers() {
            if sc(container).allow_privilege_escalation != Some(false) {
                c.flag(
                    w.object,
                    Some(&container.name),
                    "allowPrivilegeEscalation is not explicitly false",
                );
            }
        }
    }
}

fn pss_r3_run_as_non_root(c: &mut Check<'_>) {
    for w in c.m.workloads() {
        let pod = w.spec.security_context.as_ref().and_then(|sc| sc.run_as_non_root);
        for container in w.containers() {
            match sc(container).run_as_non_root {
                Some(false) => c.flag(w.object, Some(&container.name), "runAsNonRoot is false"),
                None if pod != Some(true) => c.flag(
                    w.object,
                    Some(&container.name),
                    "runAsNonRoot is set neither here nor on the pod",
                ),
                _ => {}
            }
        }
    }
}

fn pss_r4_not_root_user(c: &mut Check<'_>) {
    for w in c.m.workloads() {
        if w.spec.security_context.as_ref().and_then(|sc| sc.run_as_user) == Some(0) {
            c.flag(w.object, None, "pod runAsUser is 0");
        }
        for container in w.containers() {
            if sc(container).run_as_user == Some(0) {
                c.flag(w.object, Some(&container.name), "runAsUser is 0");
            }
        }
    }
}

fn pss_r5_seccomp_profile(c: &mut Check<'_>) {
    let good = |kind: &str| kind == "RuntimeDefault" || kind == "Localhost";
    for w in c.m.workloads() {
        let pod = w
            .spec
            .security_context
            .as_ref()
            .and_then(|sc| sc.seccomp_profile.as_ref());
        if let Some(profile) = pod.filter(|p| !good(&p.type_)) {
            c.flag(w.object, None, format!("pod seccompProfile is {}", profile.type_));
        }
        let pod_ok = pod.is_some_and(|p| good(&p.type_));
        for container in w.containers() {
            match sc(container).seccomp_profile {
                Some(profile) if !good(&profile.type_) => c.flag(
                    w.object,
                    Some(&container.name),
                    format!("seccompProfile is {}", profile.type_),
                ),
                None if !pod_ok => c.flag(
                    w.object,
                    Some(&container.name),
                    "no seccompProfile RuntimeDefault/Localhost on the container or the pod",
                ),
                _ => {}
            }
        }
    }
}

fn pss_r6_capabilities(c: &mut Check<'_>) {
    for w in c.m.workloads() {
        for container in w.containers() {
            let caps = sc(container).capabilities.unwrap_or_default();
            if !caps.drop.iter().flatten().any(|cap| cap == "ALL") {
                c.flag(
                    w.object,
                    Some(&container.name),
                    "capabilities.drop does not contain ALL",
                );
            }
            if caps.add.is_some_and(|add| !add.is_empty()) {
                c.flag(w.object, Some(&container.name), "capabilities.add is not empty");
            }
        }
    }
}

fn pss_r7_non_root_groups(c: &mut Check<'_>) {
    for w in c.m.workloads() {
        let pod = w.spec.security_context.clone().unwrap_or_default();
        if pod.fs_group.is_none_or(|group| group == 0) {
            c.flag(w.object, None, format!("fsGroup is {:?}", pod.fs_group));
        }
        if pod.supplemental_groups.iter().flatten().any(|group| *group == 0) {
            c.flag(w.object, None, "supplementalGroups contains 0");
        }
        for container in w.containers() {
            let group = sc(container).run_as_group.or(pod.run_as_group);
            if group.is_none_or(|group| group == 0) {
                c.flag(w.object, Some(&container.name), format!("runAsGroup is {group:?}"));
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// C. Hardening beyond PSS

fn h1_read_only_root_filesystem(c: &mut Check<'_>) {
    for w in c.m.workloads() {
        let claim_names: BTreeSet<String> = w
            .claim_templates
            .iter()
            .filter_map(|claim| claim.metadata.name.clone())
            .collect();
        for container in w.containers() {
            if sc(container).read_only_root_filesystem != Some(true) {
                c.flag(w.object, Some(&container.name), "readOnlyRootFilesystem is not true");
            }
            for mount in container
                .volume_mounts
                .iter()
                .flatten()
                .filter(|m| m.read_only != Some(true))
            {
                let volume = w.spec.volumes.iter().flatten().find(|v| v.name == mount.name);
                let writable_ok = claim_names.contains(&mount.name)
                    || volume.is_some_and(|v| v.empty_dir.is_some() || v.persistent_volume_claim.is_some());
                if !writable_ok {
                    c.flag(
                        w.object,
                        Some(&container.name),
                        format!("{} is writable but neither an emptyDir nor a claim", mount.mount_path),
                    );
                }
            }
        }
    }
}

fn h2_high_user_and_group(c: &mut Check<'_>) {
    for w in c.m.workloads() {
        let pod = w.spec.security_context.clone().unwrap_or_default();
        for container in w.containers() {
            let user = sc(container).run_as_user.or(pod.run_as_user);
            let group = sc(container).run_as_group.or(pod.run_as_group);
            if user.is_none_or(|id| id <= 10_000) {
                c.flag(
                    w.object,
                    Some(&container.name),
                    format!("runAsUser {user:?} is not above 10000"),
                );
            }
            if group.is_none_or(|id| id <= 10_000) {
                c.flag(
                    w.object,
                    Some(&container.name),
                    format!("runAsGroup {group:?} is not above 10000"),
                );
            }
        }
    }
}

fn h3_no_service_account_token(c: &mut Check<'_>) {
    for w in c.m.workloads() {
        if w.spec.automount_service_account_token != Some(false) {
            c.flag(w.object, None, "automountServiceAccountToken is not false");
        }
    }
}

fn h4_own_service_account(c: &mut Check<'_>) {
    for w in c.m.workloads() {
        if w.spec.service_account.is_some() {
            c.flag(w.object, None, "the deprecated serviceAccount field is used");
        }
        match w.spec.service_account_name.as_deref() {
            None | Some("" | "default") => c.flag(w.object, None, "serviceAccountName is unset or `default`"),
            Some(name) if c.m.find("ServiceAccount", name).is_none() => c.flag(
                w.object,
                None,
                format!("ServiceAccount {name} is not rendered by the chart"),
            ),
            Some(_) => {}
        }
    }
}

fn h5_pinned_image_tags(c: &mut Check<'_>) {
    let app_version = app_version();
    for w in c.m.workloads() {
        for container in w.containers() {
            let image = container.image.as_deref().unwrap_or_default();
            let last = image.rsplit('/').next().unwrap_or(image);
            let Some((repository, tag)) = last.split_once(':') else {
                c.flag(w.object, Some(&container.name), format!("image {image:?} has no tag"));
                continue;
            };
            if tag == "latest" || tag.is_empty() {
                c.flag(
                    w.object,
                    Some(&container.name),
                    format!("image {image:?} uses tag {tag:?}"),
                );
            }
            let ours = repository == "todo-backend" || repository == "todo-frontend";
            let git_sha = tag.len() >= 7 && tag.chars().all(|ch| ch.is_ascii_hexdigit());
            if ours && tag != app_version && !git_sha {
                c.flag(
                    w.object,
                    Some(&container.name),
                    format!("image {image:?}: tag is neither appVersion {app_version} nor a git SHA"),
                );
            }
        }
    }
}

fn h6_no_secret_literals(c: &mut Check<'_>) {
    for w in c.m.workloads() {
        for container in w.containers() {
            for var in container.env.iter().flatten() {
                let Some(value) = &var.value else { continue };
                if secret_like_name(&var.name) {
                    c.flag(
                        w.object,
                        Some(&container.name),
                        format!("env {} is a secret given as a literal", var.name),
                    );
                }
                if url_has_credentials(value) {
                    c.flag(
                        w.object,
                        Some(&container.name),
                        format!("env {} holds a URL with credentials", var.name),
                    );
                }
            }
        }
    }
    // The same holds for ConfigMaps, which reach the containers through envFrom.
    for object in c.m.of_kind("ConfigMap") {
        let Typed::ConfigMap(cm) = &object.typed else { continue };
        for (key, value) in cm.data.iter().flatten() {
            if secret_like_name(key) {
                c.flag(object, None, format!("key {key} looks like a secret"));
            }
            if url_has_credentials(value) {
                c.flag(object, None, format!("key {key} holds a URL with credentials"));
            }
        }
    }
}

fn h7_no_duplicate_env(c: &mut Check<'_>) {
    for w in c.m.workloads() {
        for container in w.containers() {
            let mut seen = BTreeSet::new();
            for var in container.env.iter().flatten() {
                if !seen.insert(var.name.as_str()) {
                    c.flag(
                        w.object,
                        Some(&container.name),
                        format!("env {} is set twice", var.name),
                    );
                }
            }
        }
    }
}

fn h8_unprivileged_ports(c: &mut Check<'_>) {
    for w in c.m.workloads() {
        for container in w.containers() {
            for port in ports(container)
                .iter()
                .filter(|p| p.container_port == 22 || p.container_port < 1024)
            {
                c.flag(
                    w.object,
                    Some(&container.name),
                    format!("containerPort {}", port.container_port),
                );
            }
        }
    }
}

fn h9_release_namespace(c: &mut Check<'_>) {
    for object in &c.m.objects {
        if object.kind() == "Namespace" {
            continue;
        }
        let namespace = object.raw["metadata"]["namespace"].as_str();
        if namespace != Some(NAMESPACE) {
            c.flag(
                object,
                None,
                format!("metadata.namespace is {namespace:?}, not the release namespace"),
            );
        }
    }
}

fn h11_internal_services(c: &mut Check<'_>) {
    for object in c.m.of_kind("Service") {
        let Typed::Service(service) = &object.typed else {
            continue;
        };
        let kind = service
            .spec
            .as_ref()
            .and_then(|s| s.type_.clone())
            .unwrap_or_else(|| "ClusterIP".into());
        if kind != "ClusterIP" {
            c.flag(
                object,
                None,
                format!("type {kind} exposes the Service outside the cluster"),
            );
        }
    }
}

fn h12_namespace_labels(c: &mut Check<'_>) {
    for object in c.m.of_kind("Namespace") {
        if object
            .labels()
            .get("pod-security.kubernetes.io/enforce")
            .map(String::as_str)
            != Some("restricted")
        {
            c.flag(object, None, "no pod-security.kubernetes.io/enforce: restricted label");
        }
    }
}

// H10 lives in its own module: it evaluates the policies instead of matching fields.
fn h10_network_policies(c: &mut Check<'_>) {
    for (object, message) in crate::netpol::problems(c.m) {
        c.flag(object, None, message);
    }
}

// ---------------------------------------------------------------------------------------------
// D. Reliability

fn r1_resources(c: &mut Check<'_>) {
    for w in c.m.workloads() {
        for container in w.containers() {
            let resources = container.resources.clone().unwrap_or_default();
            for (part, map, key) in [
                ("requests.cpu", resources.requests.as_ref(), "cpu"),
                ("requests.memory", resources.requests.as_ref(), "memory"),
                ("limits.memory", resources.limits.as_ref(), "memory"),
            ] {
                if !quantity_is_set(map, key) {
                    c.flag(w.object, Some(&container.name), format!("{part} is not set"));
                }
            }
            if !quantity_is_set(resources.limits.as_ref(), "cpu") {
                c.flag_as("R1.cpu-limit", w.object, Some(&container.name), "no CPU limit");
            }
        }
    }
}

fn r2_readiness_probe(c: &mut Check<'_>) {
    for w in c.m.workloads() {
        for container in w.containers().filter(|c| serving(c)) {
            if container.readiness_probe.is_none() {
                c.flag(
                    w.object,
                    Some(&container.name),
                    "serving container without readinessProbe",
                );
            }
        }
    }
}

fn r3_liveness_probe(c: &mut Check<'_>) {
    for w in c.m.workloads() {
        for container in w.containers().filter(|c| serving(c)) {
            if container.liveness_probe.is_none() {
                c.flag(
                    w.object,
                    Some(&container.name),
                    "serving container without livenessProbe",
                );
            }
        }
    }
}

/// What a probe asks, without its timing.
fn probe_action(probe: &Probe) -> serde_json::Value {
    serde_json::json!({
        "exec": probe.exec, "httpGet": probe.http_get, "tcpSocket": probe.tcp_socket, "grpc": probe.grpc,
    })
}

fn r4_distinct_probes(c: &mut Check<'_>) {
    for w in c.m.workloads() {
        for container in w.containers() {
            let (Some(liveness), Some(readiness)) = (&container.liveness_probe, &container.readiness_probe) else {
                continue;
            };
            if probe_action(liveness) == probe_action(readiness) {
                c.flag(
                    w.object,
                    Some(&container.name),
                    "liveness and readiness probes ask the same thing",
                );
            }
            let path = |p: &Probe| p.http_get.as_ref().and_then(|h| h.path.clone());
            if path(liveness).is_some() && path(liveness) == path(readiness) {
                c.flag(
                    w.object,
                    Some(&container.name),
                    format!("both probes GET {:?}", path(liveness)),
                );
            }
            let window =
                |p: &Probe| i64::from(p.failure_threshold.unwrap_or(3)) * i64::from(p.period_seconds.unwrap_or(10));
            if window(liveness) <= window(readiness) {
                c.flag(
                    w.object,
                    Some(&container.name),
                    format!(
                        "liveness gives up after {} s, not later than readiness ({} s)",
                        window(liveness),
                        window(readiness)
                    ),
                );
            }
        }
    }
}

fn r5_probe_ports(c: &mut Check<'_>) {
    for w in c.m.workloads() {
        for container in w.containers() {
            for (kind, probe) in probes(container) {
                let Some(probe) = probe else { continue };
                let reference = probe
                    .http_get
                    .as_ref()
                    .map(|h| h.port.clone())
                    .or_else(|| probe.tcp_socket.as_ref().map(|t| t.port.clone()))
                    .or_else(|| probe.grpc.as_ref().map(|g| IntOrString::Int(g.port)));
                if let Some(reference) = reference
                    && !ports(container).iter().any(|port| port_matches(&reference, port))
                {
                    c.flag(
                        w.object,
                        Some(&container.name),
                        format!("{kind} port {reference:?} is not a container port"),
                    );
                }
            }
        }
    }
}

fn r6_startup_and_timeouts(c: &mut Check<'_>) {
    for w in c.m.workloads() {
        for container in w.containers().filter(|c| serving(c)) {
            let liveness_delay = container
                .liveness_probe
                .as_ref()
                .and_then(|p| p.initial_delay_seconds)
                .unwrap_or(0);
            if container.startup_probe.is_none() && liveness_delay == 0 {
                c.flag(
                    w.object,
                    Some(&container.name),
                    "no startupProbe and no liveness initialDelaySeconds",
                );
            }
            for (kind, probe) in probes(container) {
                if probe.is_some_and(|p| p.timeout_seconds.is_none()) {
                    c.flag(
                        w.object,
                        Some(&container.name),
                        format!("{kind} has no explicit timeoutSeconds"),
                    );
                }
            }
        }
    }
}

fn r7_graceful_termination(c: &mut Check<'_>) {
    for w in c.m.workloads() {
        let grace = w.spec.termination_grace_period_seconds.unwrap_or(30);
        for container in w.containers().filter(|c| serving(c)) {
            let pre_stop = container.lifecycle.as_ref().and_then(|l| l.pre_stop.as_ref());
            let Some(pre_stop) = pre_stop else {
                c.flag(
                    w.object,
                    Some(&container.name),
                    "serving container without lifecycle.preStop",
                );
                continue;
            };
            if let Some(sleep) = &pre_stop.sleep {
                let env = c.m.environment(container);
                let (Some(drain), Some(timeout)) = (
                    env_number(&env, "SHUTDOWN_DRAIN_SECONDS"),
                    env_number(&env, "SHUTDOWN_TIMEOUT_SECONDS"),
                ) else {
                    c.flag(
                        w.object,
                        Some(&container.name),
                        "SHUTDOWN_DRAIN_SECONDS/SHUTDOWN_TIMEOUT_SECONDS not set",
                    );
                    continue;
                };
                let needed = sleep.seconds + drain + timeout + 5;
                if grace < needed {
                    c.flag(
                        w.object,
                        Some(&container.name),
                        format!(
                            "terminationGracePeriodSeconds {grace} < preStop {} + drain {drain} + timeout {timeout} + 5",
                            sleep.seconds
                        ),
                    );
                }
                if !(1..=30).contains(&sleep.seconds) {
                    c.flag(
                        w.object,
                        Some(&container.name),
                        format!("preStop sleeps {} s", sleep.seconds),
                    );
                }
            } else if let Some(exec) = &pre_stop.exec {
                // An exec hook that bounds itself (`--timeout=N`) must fit the grace period too.
                let bound = exec
                    .command
                    .iter()
                    .flatten()
                    .find_map(|arg| arg.strip_prefix("--timeout=").and_then(|n| n.parse::<i64>().ok()));
                match bound {
                    Some(seconds) if grace < seconds + 5 => c.flag(
                        w.object,
                        Some(&container.name),
                        format!("terminationGracePeriodSeconds {grace} < preStop timeout {seconds} + 5"),
                    ),
                    None => c.flag(
                        w.object,
                        Some(&container.name),
                        "preStop exec without a --timeout bound",
                    ),
                    _ => {}
                }
            } else {
                c.flag(
                    w.object,
                    Some(&container.name),
                    "preStop is neither a sleep nor a bounded exec",
                );
            }
        }
    }
}

fn r8_stateless_replicas(c: &mut Check<'_>) {
    for w in c.m.workloads().into_iter().filter(|w| w.object.kind() == "Deployment") {
        if !mounts_claim(&w) && replicas(&w) < 2 {
            c.flag(
                w.object,
                None,
                format!("stateless Deployment with {} replica(s)", replicas(&w)),
            );
        }
    }
}

fn r9_disruption_budgets(c: &mut Check<'_>) {
    for w in
        c.m.workloads()
            .into_iter()
            .filter(|w| w.object.kind() == "Deployment" && replicas(w) >= 2)
    {
        let budgets: Vec<_> =
            c.m.of_kind("PodDisruptionBudget")
                .filter_map(|object| match &object.typed {
                    Typed::PodDisruptionBudget(pdb) => pdb.spec.clone(),
                    _ => None,
                })
                .filter(|spec| spec.selector.as_ref().is_some_and(|s| selects(s, &w.labels)))
                .collect();
        if budgets.is_empty() {
            c.flag(
                w.object,
                None,
                format!("{} replicas and no PodDisruptionBudget", replicas(&w)),
            );
        }
        for spec in budgets {
            let can_evict = match (&spec.max_unavailable, &spec.min_available) {
                (Some(IntOrString::Int(n)), _) => *n > 0,
                (Some(IntOrString::String(p)), _) => p.trim_end_matches('%').parse::<u32>().is_ok_and(|p| p > 0),
                (None, Some(IntOrString::Int(n))) => *n < replicas(&w),
                (None, Some(IntOrString::String(p))) => p.trim_end_matches('%').parse::<u32>().is_ok_and(|p| p < 100),
                (None, None) => false,
            };
            if !can_evict {
                c.flag(w.object, None, "its PodDisruptionBudget can block every eviction");
            }
            if spec.unhealthy_pod_eviction_policy.as_deref() != Some("AlwaysAllow") {
                c.flag(
                    w.object,
                    None,
                    "its PodDisruptionBudget lacks unhealthyPodEvictionPolicy: AlwaysAllow",
                );
            }
        }
    }
}

fn r10_spread(c: &mut Check<'_>) {
    for w in c.m.workloads().into_iter().filter(|w| replicas(w) >= 2) {
        let anti = w.spec.affinity.as_ref().and_then(|a| a.pod_anti_affinity.as_ref());
        let preferred = anti.is_some_and(|anti| {
            anti.preferred_during_scheduling_ignored_during_execution
                .iter()
                .flatten()
                .any(|term| term.pod_affinity_term.topology_key == "kubernetes.io/hostname")
        });
        let required = anti.is_some_and(|anti| {
            anti.required_during_scheduling_ignored_during_execution
                .as_ref()
                .is_some_and(|r| !r.is_empty())
        });
        let constraints = w.spec.topology_spread_constraints.clone().unwrap_or_default();
        let soft_spread = constraints.iter().any(|t| {
            t.when_unsatisfiable == "ScheduleAnyway"
                && t.topology_key == "kubernetes.io/hostname"
                && t.label_selector.as_ref().is_some_and(|s| selects(s, &w.labels))
        });
        let hard_spread = constraints.iter().any(|t| t.when_unsatisfiable == "DoNotSchedule");
        if !preferred && !soft_spread {
            c.flag(
                w.object,
                None,
                format!(
                    "{} replicas with no preferred anti-affinity or soft spread",
                    replicas(&w)
                ),
            );
        }
        if required || hard_spread {
            c.flag(
                w.object,
                None,
                "a required anti-affinity/DoNotSchedule leaves replicas Pending on one node",
            );
        }
    }
}

fn r11_rolling_updates(c: &mut Check<'_>) {
    for w in c.m.workloads().into_iter().filter(|w| w.object.kind() == "Deployment") {
        let Typed::Deployment(deployment) = &w.object.typed else {
            continue;
        };
        let strategy = deployment
            .spec
            .as_ref()
            .and_then(|s| s.strategy.clone())
            .unwrap_or_default();
        let kind = strategy.type_.clone().unwrap_or_else(|| "RollingUpdate".into());
        let max_unavailable = strategy.rolling_update.and_then(|r| r.max_unavailable);
        let zero = matches!(&max_unavailable, Some(IntOrString::Int(0)))
            || matches!(&max_unavailable, Some(IntOrString::String(s)) if s == "0%" || s == "0");
        if kind != "RollingUpdate" || !zero {
            let sqlite = w.spec.containers.iter().any(|container| {
                c.m.environment(container)
                    .get("DATABASE_URL")
                    .cloned()
                    .flatten()
                    .is_some_and(|url| url.starts_with("sqlite:"))
            });
            let why = if sqlite {
                "; its pods back a SQLite database"
            } else {
                ""
            };
            c.flag(
                w.object,
                None,
                format!("strategy {kind} with maxUnavailable {max_unavailable:?}{why}"),
            );
        }
    }
}

/// An IANA service name: 1-15 of [a-z0-9-], a letter somewhere, no leading/trailing/double hyphen.
fn iana_port_name(name: &str) -> bool {
    (1..=15).contains(&name.len())
        && name
            .chars()
            .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-')
        && name.chars().any(|ch| ch.is_ascii_lowercase())
        && !name.starts_with('-')
        && !name.ends_with('-')
        && !name.contains("--")
}

const SELECTOR_KEYS: [&str; 3] = [
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/component",
];

fn r12_selectors_and_ports(c: &mut Check<'_>) {
    let workloads = c.m.workloads();
    for w in &workloads {
        if let Some(selector) = &w.selector {
            if !selects(selector, &w.labels) {
                c.flag(w.object, None, "selector.matchLabels are not all on the pod template");
            }
            let keys: BTreeSet<&str> = selector
                .match_labels
                .iter()
                .flatten()
                .map(|(k, _)| k.as_str())
                .collect();
            if keys != SELECTOR_KEYS.into_iter().collect() {
                c.flag(
                    w.object,
                    None,
                    format!("selector keys {keys:?} are not exactly name, instance, component"),
                );
            }
        }
        for container in w.containers() {
            for port in ports(container) {
                if let Some(name) = port.name.as_deref().filter(|n| !iana_port_name(n)) {
                    c.flag(
                        w.object,
                        Some(&container.name),
                        format!("port name {name:?} is not IANA-valid"),
                    );
                }
            }
        }
    }
    for object in c.m.of_kind("Service") {
        let Typed::Service(service) = &object.typed else {
            continue;
        };
        let spec = service.spec.clone().unwrap_or_default();
        let selector = spec.selector.clone().unwrap_or_default();
        if !selector.keys().all(|key| SELECTOR_KEYS.contains(&key.as_str())) {
            c.flag(
                object,
                None,
                format!("selector {selector:?} uses keys beyond name, instance, component"),
            );
        }
        let targets: Vec<&Workload<'_>> = workloads
            .iter()
            .filter(|w| !selector.is_empty() && selector.iter().all(|(k, v)| w.labels.get(k) == Some(v)))
            .collect();
        if targets.is_empty() {
            c.flag(object, None, "its selector matches no workload");
        }
        for port in spec.ports.iter().flatten() {
            if let Some(name) = port.name.as_deref().filter(|n| !iana_port_name(n)) {
                c.flag(object, None, format!("port name {name:?} is not IANA-valid"));
            }
            let target = port.target_port.clone().unwrap_or(IntOrString::Int(port.port));
            let found = targets.iter().any(|w| {
                w.containers()
                    .any(|container| ports(container).iter().any(|p| port_matches(&target, p)))
            });
            if !targets.is_empty() && !found {
                c.flag(
                    object,
                    None,
                    format!("targetPort {target:?} is no port of the selected pods"),
                );
            }
        }
    }
    for object in c.m.of_kind("PodDisruptionBudget") {
        let Typed::PodDisruptionBudget(pdb) = &object.typed else {
            continue;
        };
        let selector = pdb.spec.as_ref().and_then(|s| s.selector.clone()).unwrap_or_default();
        if !workloads.iter().any(|w| selects(&selector, &w.labels)) {
            c.flag(object, None, "its selector matches no workload");
        }
    }
}

/// Stable APIs only. autoscaling/v2 is stable (GA since Kubernetes 1.23) and is what the HPA uses.
const STABLE_API_VERSIONS: &[&str] = &["v1", "apps/v1", "policy/v1", "networking.k8s.io/v1", "autoscaling/v2"];

fn r13_stable_api_versions(c: &mut Check<'_>) {
    for object in &c.m.objects {
        let api = object.raw["apiVersion"].as_str().unwrap_or_default();
        if !STABLE_API_VERSIONS.contains(&api) {
            c.flag(
                object,
                None,
                format!("apiVersion {api} is not one of {STABLE_API_VERSIONS:?}"),
            );
        }
        if matches!(object.typed, Typed::Other) {
            c.flag(
                object,
                None,
                format!("kind {} of {api} is unknown to the tests", object.kind()),
            );
        }
    }
}

fn r14_data_on_volumes(c: &mut Check<'_>) {
    for w in c.m.workloads() {
        let claim_names: BTreeSet<String> = w
            .claim_templates
            .iter()
            .filter_map(|claim| claim.metadata.name.clone())
            .collect();
        for container in w.containers() {
            let env = c.m.environment(container);
            let data_paths: Vec<(&str, String)> = [
                env.get("DATABASE_URL")
                    .cloned()
                    .flatten()
                    .and_then(|url| sqlite_path(&url).map(str::to_owned)),
                env.get("PGDATA").cloned().flatten(),
            ]
            .into_iter()
            .flatten()
            .map(|path| ("database", path))
            .collect();
            for (_, path) in data_paths {
                let mount = container
                    .volume_mounts
                    .iter()
                    .flatten()
                    .filter(|m| path.starts_with(&m.mount_path))
                    .max_by_key(|m| m.mount_path.len());
                let on_claim = mount.is_some_and(|mount| {
                    claim_names.contains(&mount.name)
                        || w.spec
                            .volumes
                            .iter()
                            .flatten()
                            .any(|v| v.name == mount.name && v.persistent_volume_claim.is_some())
                });
                if !on_claim {
                    c.flag(
                        w.object,
                        Some(&container.name),
                        format!("database files at {path} are not on a PersistentVolumeClaim"),
                    );
                }
            }
        }
    }
}

fn r15_pull_policy(c: &mut Check<'_>) {
    for w in c.m.workloads() {
        for container in w.containers() {
            match container.image_pull_policy.as_deref() {
                None => c.flag(w.object, Some(&container.name), "imagePullPolicy is not explicit"),
                Some("Always") => {}
                Some(policy) => c.flag_as(
                    "R15.always",
                    w.object,
                    Some(&container.name),
                    format!("imagePullPolicy {policy}, where kube-score/Polaris/Checkov want Always"),
                ),
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// E. Chart hygiene (the per-object part)

const RECOMMENDED_LABELS: [&str; 7] = [
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
    "app.kubernetes.io/component",
    "app.kubernetes.io/part-of",
    "app.kubernetes.io/managed-by",
    "helm.sh/chart",
];

/// A valid label value: at most 63 characters, alphanumeric at both ends, `-_.` inside.
fn valid_label_value(value: &str) -> bool {
    value.len() <= 63
        && value.chars().all(|ch| ch.is_ascii_alphanumeric() || "-_.".contains(ch))
        && value.chars().next().is_none_or(|ch| ch.is_ascii_alphanumeric())
        && value.chars().last().is_none_or(|ch| ch.is_ascii_alphanumeric())
}

fn c6_labels(c: &mut Check<'_>) {
    let check_labels = |c: &mut Check<'_>, object: &Object, labels: &BTreeMap<String, String>, place: &str| {
        for key in RECOMMENDED_LABELS {
            match labels.get(key) {
                None => c.flag(object, None, format!("{place} lacks label {key}")),
                Some(value) if value.is_empty() || !valid_label_value(value) => c.flag(
                    object,
                    None,
                    format!("{place} label {key}={value:?} is not a valid label value"),
                ),
                Some(_) => {}
            }
        }
    };
    for object in &c.m.objects {
        check_labels(c, object, &object.labels(), "metadata");
    }
    for w in c.m.workloads().into_iter().filter(|w| w.selector.is_some()) {
        check_labels(c, w.object, &w.labels, "the pod template");
    }
}
