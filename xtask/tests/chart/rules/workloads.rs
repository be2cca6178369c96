//! Rules D of helm/POLICY.md, R8 to R15: replicas, disruption, spread, updates, selectors,
//! API versions, data and pull policy.

use super::*;

pub(super) fn r8_stateless_replicas(c: &mut Check<'_>) {
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

pub(super) fn r9_disruption_budgets(c: &mut Check<'_>) {
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

pub(super) fn r10_spread(c: &mut Check<'_>) {
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

pub(super) fn r11_rolling_updates(c: &mut Check<'_>) {
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

pub(super) fn r12_selectors_and_ports(c: &mut Check<'_>) {
    let workloads = c.m.workloads();
    r12_workloads(c, &workloads);
    r12_services(c, &workloads);
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

/// R12 for the workloads: selectors on the pod template, exactly the stable keys, IANA port names.
fn r12_workloads(c: &mut Check<'_>, workloads: &[Workload<'_>]) {
    for w in workloads {
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
}

/// R12 for the Services: stable selector keys, a workload selected, ports that exist on it.
fn r12_services(c: &mut Check<'_>, workloads: &[Workload<'_>]) {
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
}

/// Stable APIs only. autoscaling/v2 is stable (GA since Kubernetes 1.23) and is what the HPA uses.
const STABLE_API_VERSIONS: &[&str] = &["v1", "apps/v1", "policy/v1", "networking.k8s.io/v1", "autoscaling/v2"];

pub(super) fn r13_stable_api_versions(c: &mut Check<'_>) {
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

pub(super) fn r14_data_on_volumes(c: &mut Check<'_>) {
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

pub(super) fn r15_pull_policy(c: &mut Check<'_>) {
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
