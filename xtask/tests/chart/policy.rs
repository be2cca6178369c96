//! The policy: every rule of helm/POLICY.md over every render, minus the allowlist, and proof
//! that each rule catches its violation.

use super::*;

#[test]
fn policy_rules_hold_for_every_values_file() {
    let mut violations = Vec::new();
    let mut used = vec![0_usize; ALLOWLIST.len()];
    for manifest in matrix() {
        for finding in check_all(manifest) {
            match ALLOWLIST.iter().position(|allow| allow.matches(&finding)) {
                Some(index) => used[index] += 1,
                None => violations.push(finding.to_string()),
            }
        }
    }
    for (allow, count) in ALLOWLIST.iter().zip(&used) {
        assert!(
            allow.reason.len() > 40,
            "allowlist entry {} {} needs a real reason",
            allow.rule,
            allow.object
        );
        eprintln!(
            "allowed {count:>3} x {} {} ({:?}): {}",
            allow.rule, allow.object, allow.values, allow.reason
        );
    }
    let stale: Vec<String> = ALLOWLIST
        .iter()
        .zip(&used)
        .filter(|(_, count)| **count == 0)
        .map(|(allow, _)| {
            format!(
                "{} {} ({:?}): matches nothing any more; remove it",
                allow.rule, allow.object, allow.values
            )
        })
        .collect();
    assert!(
        violations.is_empty() && stale.is_empty(),
        "{} finding(s):\n  {}\n{} stale allowlist entr(ies):\n  {}",
        violations.len(),
        violations.join("\n  "),
        stale.len(),
        stale.join("\n  ")
    );
}

type Mutation = fn(&mut Manifest);

/// For each rule, a way to break a rendered manifest that the rule must notice.
const MUTATIONS: &[(&str, &str, Mutation)] = &[
    ("PSS-B1", DEFAULTS, |m| pod(m, "hostNetwork", Some(json!(true)))),
    ("PSS-B2", DEFAULTS, |m| {
        container(m, "securityContext/privileged", Some(json!(true)))
    }),
    ("PSS-B3", DEFAULTS, |m| {
        container(m, "securityContext/capabilities/add", Some(json!(["SYS_ADMIN"])))
    }),
    ("PSS-B4", DEFAULTS, |m| {
        pod(m, "volumes/-", Some(json!({"name": "host", "hostPath": {"path": "/"}})))
    }),
    ("PSS-B5", DEFAULTS, |m| {
        container(m, "ports/0/hostPort", Some(json!(8000)))
    }),
    ("PSS-B6", DEFAULTS, |m| {
        pod(
            m,
            "securityContext/appArmorProfile",
            Some(json!({"type": "Unconfined"})),
        )
    }),
    ("PSS-B7", DEFAULTS, |m| {
        container(m, "securityContext/seLinuxOptions", Some(json!({"level": "s0:c1"})))
    }),
    ("PSS-B8", DEFAULTS, |m| {
        container(m, "securityContext/procMount", Some(json!("Unmasked")))
    }),
    ("PSS-B9", DEFAULTS, |m| {
        container(m, "securityContext/seccompProfile", Some(json!({"type": "Unconfined"})))
    }),
    ("PSS-B10", DEFAULTS, |m| {
        pod(
            m,
            "securityContext/sysctls",
            Some(json!([{"name": "net.ipv4.ip_forward", "value": "1"}])),
        )
    }),
    ("PSS-R1", DEFAULTS, |m| {
        pod(
            m,
            "volumes/-",
            Some(json!({"name": "nfs", "nfs": {"server": "nfs", "path": "/"}})),
        )
    }),
    ("PSS-R2", DEFAULTS, |m| {
        container(m, "securityContext/allowPrivilegeEscalation", None)
    }),
    ("PSS-R3", DEFAULTS, |m| {
        container(m, "securityContext/runAsNonRoot", Some(json!(false)))
    }),
    ("PSS-R4", DEFAULTS, |m| {
        pod(m, "securityContext/runAsUser", Some(json!(0)))
    }),
    ("PSS-R5", DEFAULTS, |m| pod(m, "securityContext/seccompProfile", None)),
    ("PSS-R6", DEFAULTS, |m| {
        container(m, "securityContext/capabilities/drop", None)
    }),
    ("PSS-R7", DEFAULTS, |m| {
        pod(m, "securityContext/fsGroup", Some(json!(0)))
    }),
    ("H1", DEFAULTS, |m| {
        container(m, "securityContext/readOnlyRootFilesystem", Some(json!(false)))
    }),
    ("H2", DEFAULTS, |m| {
        pod(m, "securityContext/runAsUser", Some(json!(1000)))
    }),
    ("H3", DEFAULTS, |m| {
        pod(m, "automountServiceAccountToken", Some(json!(true)))
    }),
    ("H4", DEFAULTS, |m| pod(m, "serviceAccountName", Some(json!("default")))),
    ("H5", DEFAULTS, |m| {
        container(m, "image", Some(json!("todo-backend:latest")))
    }),
    ("H6", DEFAULTS, |m| {
        container(m, "env/-", Some(json!({"name": "JWT_SECRET_OLD", "value": "hunter2"})))
    }),
    ("H7", DEFAULTS, |m| {
        let first = object_mut(m, BACKEND).pointer(&format!("{CONTAINER}/env/0")).cloned();
        container(m, "env/-", first);
    }),
    ("H8", DEFAULTS, |m| {
        container(m, "ports/0/containerPort", Some(json!(80)))
    }),
    ("H9", DEFAULTS, |m| {
        edit(
            m,
            "ConfigMap/todo-backend",
            "/metadata/namespace",
            Some(json!("default")),
        )
    }),
    ("H10", DEFAULTS, |m| {
        edit(m, "NetworkPolicy/todo-frontend", "/spec/egress/1", None)
    }),
    ("H10", "ci/postgresql-values.yaml", |m| {
        edit(
            m,
            "NetworkPolicy/todo-postgresql",
            "/spec/ingress/0/from",
            Some(json!([{"podSelector": {}}])),
        )
    }),
    ("H10", DEFAULTS, |m| {
        m.objects.retain(|o| o.id() != "NetworkPolicy/todo-default-deny")
    }),
    ("H11", DEFAULTS, |m| {
        edit(m, "Service/todo-backend", "/spec/type", Some(json!("NodePort")))
    }),
    ("H12", DEFAULTS, |m| {
        let mut namespace = m.objects[0].clone();
        namespace.raw = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "todo"}});
        m.objects.push(namespace);
    }),
    ("R1", DEFAULTS, |m| container(m, "resources/limits/memory", None)),
    ("R2", DEFAULTS, |m| container(m, "readinessProbe", None)),
    ("R3", DEFAULTS, |m| container(m, "livenessProbe", None)),
    ("R4", DEFAULTS, |m| {
        container(m, "livenessProbe/httpGet/path", Some(json!("/ready")))
    }),
    ("R5", DEFAULTS, |m| {
        container(m, "readinessProbe/httpGet/port", Some(json!("metrics")))
    }),
    ("R6", DEFAULTS, |m| container(m, "startupProbe/timeoutSeconds", None)),
    ("R7", DEFAULTS, |m| {
        pod(m, "terminationGracePeriodSeconds", Some(json!(15)))
    }),
    ("R7", DEFAULTS, |m| container(m, "lifecycle", None)),
    ("R8", DEFAULTS, |m| {
        edit(m, "Deployment/todo-frontend", "/spec/replicas", Some(json!(1)))
    }),
    ("R9", DEFAULTS, |m| {
        m.objects.retain(|o| o.id() != "PodDisruptionBudget/todo-frontend")
    }),
    ("R10", DEFAULTS, |m| {
        edit(
            m,
            "Deployment/todo-frontend",
            "/spec/template/spec/topologySpreadConstraints",
            None,
        )
    }),
    ("R11", DEFAULTS, |m| {
        edit(
            m,
            "Deployment/todo-frontend",
            "/spec/strategy",
            Some(json!({"type": "Recreate"})),
        )
    }),
    ("R11", "ci/postgresql-values.yaml", |m| {
        edit(m, BACKEND, "/spec/strategy", Some(json!({"type": "Recreate"})))
    }),
    ("R12", DEFAULTS, |m| {
        edit(
            m,
            "Service/todo-backend",
            "/spec/selector/app.kubernetes.io~1component",
            Some(json!("api")),
        )
    }),
    ("R12", DEFAULTS, |m| {
        edit(m, "Service/todo-backend", "/spec/ports/0/targetPort", Some(json!(8080)))
    }),
    ("R13", DEFAULTS, |m| {
        edit(
            m,
            "PodDisruptionBudget/todo-frontend",
            "/apiVersion",
            Some(json!("policy/v1beta1")),
        )
    }),
    ("R14", DEFAULTS, |m| {
        pod(m, "volumes/1", Some(json!({"name": "data", "emptyDir": {}})))
    }),
    ("R15", DEFAULTS, |m| container(m, "imagePullPolicy", None)),
    ("C6", DEFAULTS, |m| {
        edit(
            m,
            "ConfigMap/todo-backend",
            "/metadata/labels/app.kubernetes.io~1part-of",
            None,
        )
    }),
];

#[test]
fn every_rule_catches_its_violation() {
    let mut covered = BTreeSet::new();
    for (index, (rule, values, mutate)) in MUTATIONS.iter().enumerate() {
        let (_, check) = RULES
            .iter()
            .find(|(id, _)| id == rule)
            .unwrap_or_else(|| panic!("no rule {rule}"));
        let mut manifest = base(values);
        let before: Vec<Finding> = run_rule(&manifest, rule, *check);
        mutate(&mut manifest);
        let manifest = manifest.reparse();
        let after: Vec<Finding> = run_rule(&manifest, rule, *check)
            .into_iter()
            .filter(|f| !before.contains(f) && !ALLOWLIST.iter().any(|allow| allow.matches(f)))
            .collect();
        assert!(
            !after.is_empty(),
            "mutation #{index} for {rule} on {values} went unnoticed by the rule"
        );
        covered.insert(*rule);
    }
    let uncovered: Vec<&str> = RULES
        .iter()
        .map(|(id, _)| *id)
        .filter(|id| !covered.contains(id))
        .collect();
    assert!(
        uncovered.is_empty(),
        "rules without a mutation proving they can fail: {uncovered:?}"
    );
}
