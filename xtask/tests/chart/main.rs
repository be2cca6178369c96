//! The Helm chart in helm/, held to the rules of helm/POLICY.md without a
//! cluster: every test runs the real `helm` (3 and 4, fetched into target/helm-dist by
//! `cargo xtask test`) and checks what it renders.

mod allowlist;
mod harness;
mod netpol;
mod roundtrip;
mod rules;

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use allowlist::ALLOWLIST;
use harness::{DEFAULTS, Manifest, chart_dir, helms, matrix, read, values_files};
use rules::{Finding, RULES, check_all, run_rule};

// ---------------------------------------------------------------------------------------------
// Helm itself, lint (C1, C2) and determinism (C7)

#[test]
fn helm_binaries_are_the_pinned_versions() {
    for helm in helms() {
        let outcome = helm.run(&["version", "--short"]);
        assert!(outcome.success, "{helm}: `helm version` failed: {}", outcome.stderr);
        let expected = if std::env::var_os(helm.dist.env_override).is_some() {
            format!("v{}.", helm.dist.major)
        } else {
            helm.dist.version.to_owned()
        };
        assert!(
            outcome.stdout.starts_with(&expected),
            "{helm} reports {}, expected {expected}",
            outcome.stdout
        );
    }
}

#[test]
fn lint_strict_passes_for_every_values_file() {
    let chart = chart_dir();
    let chart = chart.to_str().expect("UTF-8 path");
    for helm in helms() {
        for values in values_files() {
            let mut args = vec!["lint", "--strict", chart, "--kube-version", harness::KUBE_VERSION];
            let path = harness::values_path(&values);
            if let Some(path) = &path {
                args.extend(["--values", path.to_str().expect("UTF-8 path")]);
            }
            let outcome = helm.run(&args);
            let output = format!("{}{}", outcome.stdout, outcome.stderr);
            assert!(
                outcome.success && !output.contains("[WARNING]") && !output.contains("[ERROR]"),
                "{helm}: helm lint --strict with {values} failed:\n{output}"
            );
        }
    }
}

#[test]
fn rendering_is_deterministic() {
    for helm in helms() {
        for values in values_files() {
            let first = helm.render_text(&values, &[]);
            let second = helm.render_text(&values, &[]);
            assert!(first == second, "{helm}: two renders of {values} differ");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The policy: every rule over every render, minus the allowlist

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

/// A manifest to break: the first render of this values file.
fn base(values: &str) -> Manifest {
    matrix()
        .iter()
        .find(|m| m.values == values)
        .unwrap_or_else(|| panic!("{values} is not in the values matrix"))
        .clone()
}

fn object_mut<'a>(m: &'a mut Manifest, id: &str) -> &'a mut Value {
    let object = m.objects.iter_mut().find(|o| o.id() == id);
    &mut object.unwrap_or_else(|| panic!("{id} is not rendered")).raw
}

/// Sets (or with None removes) the value at a JSON pointer, creating missing objects on the way.
fn put(value: &mut Value, pointer: &str, new: Option<Value>) {
    let unescape = |part: &str| part.replace("~1", "/").replace("~0", "~");
    let (parent, key) = pointer.rsplit_once('/').expect("a pointer with a parent");
    let key = unescape(key);
    let key = key.as_str();
    let mut node = value;
    for part in parent.split('/').skip(1).map(unescape) {
        node = match node {
            Value::Array(items) => &mut items[part.parse::<usize>().expect("array index")],
            other => {
                let map = other
                    .as_object_mut()
                    .unwrap_or_else(|| panic!("{pointer}: {part} is not an object"));
                map.entry(part.clone()).or_insert_with(|| json!({}))
            }
        };
    }
    match (node, new) {
        (Value::Array(items), Some(new)) if key == "-" => items.push(new),
        (Value::Array(items), Some(new)) => items[key.parse::<usize>().expect("array index")] = new,
        (Value::Object(map), Some(new)) => {
            map.insert(key.to_owned(), new);
        }
        (Value::Object(map), None) => {
            assert!(map.remove(key).is_some(), "{pointer} was not there to remove");
        }
        (Value::Array(items), None) => {
            items.remove(key.parse::<usize>().expect("array index"));
        }
        (node, new) => panic!("cannot put {new:?} at {pointer} in {node}"),
    }
}

type Mutation = fn(&mut Manifest);

const BACKEND: &str = "Deployment/todo-backend";
const POD: &str = "/spec/template/spec";
const CONTAINER: &str = "/spec/template/spec/containers/0";

fn edit(m: &mut Manifest, id: &str, pointer: &str, new: Option<Value>) {
    put(object_mut(m, id), pointer, new);
}
fn container(m: &mut Manifest, field: &str, new: Option<Value>) {
    edit(m, BACKEND, &format!("{CONTAINER}/{field}"), new);
}
fn pod(m: &mut Manifest, field: &str, new: Option<Value>) {
    edit(m, BACKEND, &format!("{POD}/{field}"), new);
}

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

// ---------------------------------------------------------------------------------------------
// Typo detection: every key must be known to the Kubernetes API

#[test]
fn every_key_is_known_to_the_kubernetes_api() {
    let mut problems = Vec::new();
    for manifest in matrix() {
        for object in &manifest.objects {
            for lost in roundtrip::unknown_keys(object) {
                problems.push(format!(
                    "{} ({}): {}: {lost}",
                    manifest.values,
                    manifest.helm,
                    object.id()
                ));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "keys the API would drop:\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn a_misspelt_key_is_caught_by_the_round_trip() {
    let mut manifest = base(DEFAULTS);
    container(
        &mut manifest,
        "readinessprobe",
        Some(json!({"httpGet": {"path": "/ready", "port": "http"}})),
    );
    container(&mut manifest, "securityContext/runAsNonroot", Some(json!(true)));
    let manifest = manifest.reparse();
    let object = manifest.find("Deployment", "todo-backend").expect("backend Deployment");
    let lost = roundtrip::unknown_keys(object).join("\n");
    assert!(lost.contains("containers[0].readinessprobe"), "{lost}");
    assert!(lost.contains("securityContext.runAsNonroot"), "{lost}");
}

// ---------------------------------------------------------------------------------------------
// The schema (C3) and the chart's own checks reject bad values with a clear message

/// `--set` arguments, and the phrases the error must contain (each group: any one of its phrases).
const REJECTED: &[(&[&str], &[&[&str]])] = &[
    (&["--set", "bogusKey=1"], &[&["bogusKey"], &["not allowed"]]),
    (&["--set", "backend.replica=2"], &[&["replica"], &["not allowed"]]),
    (&["--set", "backend.replicas=two"], &[&["replicas"], &["integer"]]),
    (
        &["--set", "frontend.image.tag=latest"],
        &[&["tag"], &["does not match pattern"]],
    ),
    (
        &["--set", "backend.image.tag=latest"],
        &[&["tag"], &["does not match pattern"]],
    ),
    (
        &["--set", "frontend.replicas=0"],
        &[&["replicas"], &["greater than or equal to 1", "minimum: got 0, want 1"]],
    ),
    (
        &["--set", "frontend.service.type=LoadBalancer"],
        &[&["service"], &["must be one of", "value must be one of"]],
    ),
    (
        &["--set", "backend.replicas=2"],
        &[&["backend.replicas is 2"], &["database.type=sqlite"]],
    ),
    (
        &["--set", "backend.autoscaling.enabled=true"],
        &[&["backend.autoscaling.enabled"], &["database.type=sqlite"]],
    ),
    (
        &["--set", "secrets.existingSecret="],
        &[&["secrets.existingSecret"], &["secrets.jwtSecret"]],
    ),
    (
        &[
            "--set",
            "secrets.existingSecret=",
            "--set",
            "secrets.jwtSecret=too-short",
        ],
        &[&["jwtSecret"], &["does not match pattern"]],
    ),
    (
        &["--set", "database.type=external"],
        &[&["database.external.egressCidrs"], &["0.0.0.0/0"]],
    ),
    (
        &[
            "--set",
            "database.type=postgresql",
            "--set",
            "secrets.existingSecret=",
            "--set",
            "secrets.jwtSecret=0123456789abcdef0123456789abcdef",
        ],
        &[&["secrets.existingSecret"], &["database.postgresql.password"]],
    ),
    (
        &["--set", "frontend.backendTimeoutSeconds=10"],
        &[&["frontend.backendTimeoutSeconds"], &["frontend.requestTimeoutSeconds"]],
    ),
];

#[test]
fn bad_values_fail_with_a_clear_message() {
    for helm in helms() {
        for (args, phrases) in REJECTED {
            let outcome = helm.template(DEFAULTS, args);
            assert!(
                !outcome.success,
                "{helm}: helm template {args:?} succeeded but must fail"
            );
            let message = outcome.stderr.to_lowercase();
            for group in *phrases {
                assert!(
                    group.iter().any(|phrase| message.contains(&phrase.to_lowercase())),
                    "{helm}: helm template {args:?} failed without naming any of {group:?}:\n{}",
                    outcome.stderr
                );
            }
        }
    }
}

#[test]
fn the_schema_closes_every_object_and_bounds_every_number() {
    let schema: Value = serde_json::from_str(&read(&chart_dir().join("values.schema.json"))).expect("schema is JSON");
    let mut problems = Vec::new();
    fn walk(node: &Value, path: &str, problems: &mut Vec<String>) {
        match node["type"].as_str() {
            Some("object") => {
                if node["additionalProperties"] != json!(false) {
                    problems.push(format!("{path}: object without additionalProperties: false"));
                }
                let properties = node["properties"].as_object().cloned().unwrap_or_default();
                let required: BTreeSet<&str> = node["required"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                for (key, child) in &properties {
                    if !required.contains(key.as_str()) {
                        problems.push(format!("{path}.{key}: not required"));
                    }
                    walk(child, &format!("{path}.{key}"), problems);
                }
            }
            Some("integer") => {
                if node["minimum"].is_null() && node["anyOf"].is_null() {
                    problems.push(format!("{path}: integer without a minimum"));
                }
                let key = path.rsplit('.').next().unwrap_or_default();
                let floor = node["minimum"].as_i64().unwrap_or(0);
                if (key.ends_with("eplicas") || path.contains(".probes.")) && floor < 1 {
                    problems.push(format!("{path}: minimum {floor} < 1"));
                }
            }
            Some("string") if path.ends_with(".image.tag") && node["pattern"].is_null() => {
                problems.push(format!("{path}: no pattern forbidding `latest`"));
            }
            _ => {}
        }
        if node["description"].as_str().is_none_or(str::is_empty) {
            problems.push(format!("{path}: no description"));
        }
    }
    walk(&schema, "(root)", &mut problems);
    assert!(problems.is_empty(), "values.schema.json:\n  {}", problems.join("\n  "));
}

// ---------------------------------------------------------------------------------------------
// Secrets and configuration

#[test]
fn missing_secrets_fail_with_a_message_naming_both_ways() {
    for helm in helms() {
        let outcome = helm.template(DEFAULTS, &["--set", "secrets.existingSecret="]);
        assert!(!outcome.success, "{helm}: rendered without any JWT secret");
        for name in ["secrets.existingSecret", "secrets.jwtSecret", "cargo xtask secrets"] {
            assert!(
                outcome.stderr.contains(name),
                "{helm}: message lacks {name}:\n{}",
                outcome.stderr
            );
        }
    }
}

fn checksums(m: &Manifest, id: &str) -> BTreeMap<String, String> {
    let object = m
        .objects
        .iter()
        .find(|o| o.id() == id)
        .unwrap_or_else(|| panic!("{id} not rendered"));
    let annotations = &object.raw["spec"]["template"]["metadata"]["annotations"];
    annotations
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(key, _)| key.starts_with("checksum/"))
        .map(|(key, value)| (key.clone(), value.as_str().unwrap_or_default().to_owned()))
        .collect()
}

#[test]
fn a_changed_config_map_or_secret_rolls_the_pods() {
    for helm in helms() {
        let before = Manifest::render(&helm, DEFAULTS, &[]);
        let after = Manifest::render(&helm, DEFAULTS, &["--set", "backend.logLevel=debug"]);
        let (backend_before, backend_after) = (checksums(&before, BACKEND), checksums(&after, BACKEND));
        assert!(
            backend_before.contains_key("checksum/config"),
            "{helm}: backend pods carry no config checksum"
        );
        assert_ne!(
            backend_before["checksum/config"], backend_after["checksum/config"],
            "{helm}: backend"
        );
        assert_eq!(
            checksums(&before, "Deployment/todo-frontend"),
            checksums(&after, "Deployment/todo-frontend"),
            "{helm}: a backend setting must not roll the frontend"
        );
        let after = Manifest::render(&helm, DEFAULTS, &["--set", "frontend.cookieSecure=false"]);
        assert_ne!(
            checksums(&before, "Deployment/todo-frontend")["checksum/config"],
            checksums(&after, "Deployment/todo-frontend")["checksum/config"],
            "{helm}: frontend"
        );

        let explicit = "ci/explicit-secrets-values.yaml";
        let before = Manifest::render(&helm, explicit, &[]);
        let after = Manifest::render(
            &helm,
            explicit,
            &["--set", "secrets.jwtSecret=another-ci-only-jwt-secret-0123456789abcdef"],
        );
        for id in [BACKEND, "StatefulSet/todo-postgresql"] {
            let (b, a) = (checksums(&before, id), checksums(&after, id));
            assert!(
                b.contains_key("checksum/secret"),
                "{helm}: {id} carries no secret checksum"
            );
            assert_ne!(b["checksum/secret"], a["checksum/secret"], "{helm}: {id}");
        }
    }
}

fn base64_decode(text: &str) -> Vec<u8> {
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut bits = 0_u32;
    let mut count = 0;
    let mut out = Vec::new();
    for byte in text.bytes().filter(|b| *b != b'=') {
        let value = alphabet.iter().position(|a| *a == byte).expect("base64 data") as u32;
        bits = (bits << 6) | value;
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
            bits &= (1 << count) - 1;
        }
    }
    out
}

/// Every secret value a render holds: its Secrets' data, decoded.
fn secret_values(m: &Manifest) -> Vec<String> {
    m.of_kind("Secret")
        .flat_map(|object| {
            let data = object.raw["data"].as_object().cloned().unwrap_or_default();
            data.values()
                .filter_map(Value::as_str)
                .map(|encoded| String::from_utf8(base64_decode(encoded)).expect("UTF-8 secret"))
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn secret_values_never_reach_config_maps_or_env_values() {
    for helm in helms() {
        let external = Manifest::render(
            &helm,
            DEFAULTS,
            &[
                "--set",
                "secrets.existingSecret=",
                "--set",
                "secrets.jwtSecret=ci-only-jwt-secret-for-the-leak-test-000000",
                "--set",
                "database.type=external",
                "--set",
                "database.external.url=postgres://todo:ci-only-db-password@db.example.test:5432/todo",
                "--set",
                "database.external.egressCidrs={192.0.2.10/32}",
                "--set",
                "backend.replicas=2",
            ],
        );
        let mut manifests: Vec<&Manifest> = matrix().iter().filter(|m| m.helm == helm.to_string()).collect();
        manifests.push(&external);
        let mut checked = 0;
        for manifest in manifests {
            let secrets = secret_values(manifest);
            checked += secrets.len();
            for object in manifest.objects.iter().filter(|o| o.kind() != "Secret") {
                let text = object.raw.to_string();
                for secret in &secrets {
                    assert!(
                        !text.contains(secret.as_str()),
                        "{helm}, {}: a Secret value appears in {}",
                        manifest.values,
                        object.id()
                    );
                }
            }
            for w in manifest.workloads() {
                for container in w.containers() {
                    for var in container.env.iter().flatten() {
                        let from_secret = var.value_from.as_ref().is_some_and(|v| v.secret_key_ref.is_some());
                        let secret_name = [
                            "JWT_SECRET",
                            "DATABASE_URL",
                            "PGPASSWORD",
                            "POSTGRES_PASSWORD",
                            "OPENAI_API_KEY",
                        ]
                        .contains(&var.name.as_str());
                        let is_literal_url_without_credentials =
                            var.name == "DATABASE_URL" && var.value.as_deref().is_some_and(|v| !v.contains('@'));
                        assert!(
                            !secret_name || from_secret || is_literal_url_without_credentials,
                            "{helm}, {}: {} sets {} without a secretKeyRef",
                            manifest.values,
                            w.object.id(),
                            var.name
                        );
                    }
                }
            }
        }
        assert!(
            checked >= 4,
            "{helm}: the leak test saw only {checked} secret values; it would prove nothing"
        );
    }
}

#[test]
fn existing_secret_is_referenced_and_never_rendered() {
    for manifest in matrix()
        .iter()
        .filter(|m| m.values == DEFAULTS || m.values == "ci/external-database-values.yaml")
    {
        assert_eq!(
            manifest.of_kind("Secret").count(),
            0,
            "{}: renders a Secret despite existingSecret",
            manifest.values
        );
        let expected = if manifest.values == DEFAULTS {
            "todo-secrets"
        } else {
            "todo-prod-secrets"
        };
        let backend = manifest.find("Deployment", "todo-backend").expect("backend");
        let text = backend.raw.to_string();
        assert!(
            text.contains(&format!(r#""secretKeyRef":{{"key":"JWT_SECRET","name":"{expected}"}}"#)),
            "{}: JWT_SECRET does not come from {expected}",
            manifest.values
        );
    }
}

#[test]
fn openai_settings_reach_the_backend_from_the_configmap_and_the_key_from_the_secret() {
    for helm in helms() {
        let enabled = Manifest::render(
            &helm,
            DEFAULTS,
            &[
                "--set",
                "backend.openai.enabled=true",
                "--set",
                "backend.openai.baseUrl=http://llm-stand-in:9000/v1",
                "--set",
                "backend.openai.model=stand-in-model",
            ],
        );
        let explicit = base("ci/explicit-secrets-values.yaml");
        for (manifest, secret) in [(&enabled, "todo-secrets"), (&explicit, "todo-backend")] {
            let backend = manifest.find("Deployment", "todo-backend").expect("backend");
            let workload = manifest
                .workloads()
                .into_iter()
                .find(|w| w.object.id() == backend.id())
                .expect("backend workload");
            let container = workload.spec.containers.first().expect("a container");
            let env = manifest.environment(container);
            let data = manifest.config_map_data("todo-backend");
            assert!(
                !data.contains_key("OPENAI_API_KEY"),
                "{helm}, {}: the key is in the ConfigMap",
                manifest.values
            );
            assert_eq!(
                env.get("OPENAI_API_KEY"),
                Some(&None),
                "{helm}, {}: the key is a secretKeyRef",
                manifest.values
            );
            let key = container
                .env
                .iter()
                .flatten()
                .find(|v| v.name == "OPENAI_API_KEY")
                .and_then(|v| v.value_from.as_ref()?.secret_key_ref.as_ref())
                .expect("OPENAI_API_KEY from a Secret");
            assert_eq!(
                (key.name.as_str(), key.key.as_str()),
                (secret, "OPENAI_API_KEY"),
                "{helm}"
            );
            assert!(
                env.contains_key("OPENAI_BASE_URL") && env.contains_key("OPENAI_MODEL"),
                "{helm}: {env:?}"
            );
        }
        let env_of = |m: &Manifest| m.config_map_data("todo-backend");
        assert_eq!(
            env_of(&enabled)["OPENAI_BASE_URL"],
            "http://llm-stand-in:9000/v1",
            "{helm}"
        );
        assert_eq!(env_of(&enabled)["OPENAI_MODEL"], "stand-in-model", "{helm}");
        assert_eq!(
            env_of(&explicit)["OPENAI_BASE_URL"],
            "https://api.openai.com/v1",
            "{helm}"
        );
        assert_eq!(env_of(&explicit)["OPENAI_MODEL"], "gpt-4o-mini", "{helm}");

        // Off (the default): no OPENAI_* at all, so the backend's built-in assistant answers.
        let off = base(DEFAULTS);
        let text: String = off.objects.iter().map(|o| o.raw.to_string()).collect();
        assert!(
            !text.contains("OPENAI_"),
            "{helm}: OPENAI settings rendered while disabled"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The application contract

fn config(m: &Manifest, name: &str, key: &str) -> String {
    m.config_map_data(name)
        .get(key)
        .cloned()
        .unwrap_or_else(|| panic!("{}: ConfigMap {name} lacks {key}", m.values))
}

#[test]
fn the_release_todo_serves_the_contract() {
    let version = harness::app_version();
    for manifest in matrix() {
        let values = &manifest.values;
        for (service, port) in [("todo-backend", 8000), ("todo-frontend", 3000)] {
            let object = manifest
                .find("Service", service)
                .unwrap_or_else(|| panic!("{values}: no Service {service}"));
            if service == "todo-backend" {
                assert_eq!(
                    object.raw["spec"]["ports"][0]["port"],
                    json!(port),
                    "{values}: backend port"
                );
            }
        }
        assert_eq!(
            config(manifest, "todo-frontend", "BACKEND_URL"),
            "http://todo-backend:8000",
            "{values}"
        );
        assert_eq!(
            config(manifest, "todo-backend", "LISTEN_ADDR"),
            "0.0.0.0:8000",
            "{values}"
        );
        assert_eq!(
            config(manifest, "todo-frontend", "LISTEN_ADDR"),
            "0.0.0.0:3000",
            "{values}"
        );
        assert_eq!(
            config(manifest, "todo-backend", "APP_BUILD"),
            version,
            "{values}: APP_BUILD is the image tag"
        );
        for (deployment, image) in [("todo-backend", "todo-backend"), ("todo-frontend", "todo-frontend")] {
            let object = manifest.find("Deployment", deployment).expect("Deployment");
            let container = &object.raw["spec"]["template"]["spec"]["containers"][0];
            assert_eq!(
                container["image"],
                json!(format!("{image}:{version}")),
                "{values}: {deployment} image"
            );
            let listen = config(manifest, deployment, "LISTEN_ADDR");
            let port = container["ports"][0]["containerPort"].as_i64().expect("containerPort");
            assert!(
                listen.ends_with(&format!(":{port}")),
                "{values}: {deployment} listens on {listen}, port {port}"
            );
        }
        if let Some(test) = manifest.find("Pod", "todo-test") {
            let containers = &test.raw["spec"]["containers"];
            assert_eq!(
                test.raw["metadata"]["annotations"]["helm.sh/hook"],
                json!("test"),
                "{values}"
            );
            assert_eq!(
                containers[0]["image"],
                json!(format!("todo-backend:{version}")),
                "{values}"
            );
            assert_eq!(
                containers[0]["args"],
                json!([
                    "healthcheck",
                    "--url",
                    "http://todo-backend:8000/ready",
                    "--timeout-seconds",
                    "10"
                ]),
                "{values}"
            );
            let frontend_port =
                manifest.find("Service", "todo-frontend").expect("frontend").raw["spec"]["ports"][0]["port"].clone();
            assert_eq!(
                containers[1]["args"][2],
                json!(format!("http://todo-frontend:{frontend_port}/health")),
                "{values}"
            );
        }
        let backend = manifest.find("Deployment", "todo-backend").expect("backend");
        let spec = &backend.raw["spec"]["template"]["spec"];
        let Some(url) = manifest.config_map_data("todo-backend").get("DATABASE_URL").cloned() else {
            // An external database's URL carries credentials: it comes from the Secret only.
            assert!(
                spec.to_string().contains(r#""secretKeyRef":{"key":"DATABASE_URL""#),
                "{values}: DATABASE_URL is neither in the ConfigMap nor from the Secret"
            );
            continue;
        };
        if url.starts_with("sqlite:") {
            assert_eq!(url, "sqlite:///data/todo.db", "{values}");
            assert_eq!(
                spec["containers"][0]["volumeMounts"][1]["mountPath"],
                json!("/data"),
                "{values}"
            );
            assert_eq!(
                backend.raw["spec"]["replicas"],
                json!(1),
                "{values}: SQLite has one writer"
            );
            assert_eq!(backend.raw["spec"]["strategy"]["type"], json!("Recreate"), "{values}");
        } else {
            assert_eq!(
                url, "postgres://todo@todo-postgresql:5432/todo",
                "{values}: no password in the URL"
            );
            assert!(
                spec.to_string().contains(r#""name":"PGPASSWORD""#),
                "{values}: PGPASSWORD"
            );
            assert_eq!(
                backend.raw["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"],
                json!(0),
                "{values}"
            );
        }
    }
}

#[test]
fn values_dev_targets_minikube() {
    for manifest in matrix().iter().filter(|m| m.values == "values-dev.yaml") {
        let service = manifest.find("Service", "todo-frontend").expect("frontend Service");
        assert_eq!(service.raw["spec"]["type"], json!("NodePort"));
        assert_eq!(service.raw["spec"]["ports"][0]["nodePort"], json!(30000));
        for w in manifest.workloads() {
            for container in w.containers() {
                assert_eq!(
                    container.image_pull_policy.as_deref(),
                    Some("IfNotPresent"),
                    "{}",
                    w.object.id()
                );
            }
        }
        assert_eq!(config(manifest, "todo-frontend", "COOKIE_SECURE"), "false");
    }
}

// ---------------------------------------------------------------------------------------------
// Structure and documentation (helm/ conventions, C3, C4)

/// The lower-case kind in a file name (`PodDisruptionBudget` -> `poddisruptionbudget`).
fn file_kind(kind: &str) -> String {
    kind.to_lowercase()
}

#[test]
fn one_resource_per_file_named_component_kind() {
    let mut rendered_files = BTreeSet::new();
    for manifest in matrix() {
        let mut per_file: BTreeMap<&str, usize> = BTreeMap::new();
        for object in &manifest.objects {
            *per_file.entry(object.source.as_str()).or_default() += 1;
            let file = object.source.rsplit('/').next().unwrap_or_default();
            let component = object
                .labels()
                .get("app.kubernetes.io/component")
                .cloned()
                .unwrap_or_default();
            let expected = format!("{component}-{}.yaml", file_kind(object.kind()));
            assert_eq!(
                file,
                expected,
                "{}: {} comes from {}",
                manifest.values,
                object.id(),
                object.source
            );
            rendered_files.insert(object.source.trim_start_matches("todo/").to_owned());
        }
        for (file, count) in per_file {
            assert_eq!(count, 1, "{}: {file} renders {count} objects", manifest.values);
        }
    }
    // Every template file is rendered by some values file, so no template escapes the checks.
    let mut files = Vec::new();
    for dir in ["templates", "templates/tests"] {
        for entry in std::fs::read_dir(chart_dir().join(dir)).expect("templates/") {
            let name = entry.expect("entry").file_name().to_string_lossy().into_owned();
            if name.ends_with(".yaml") {
                files.push(format!("{dir}/{name}"));
            }
        }
    }
    for file in files {
        assert!(
            rendered_files.contains(&file),
            "{file} is rendered by no values file in the matrix"
        );
    }
}

/// `(dotted path, is a leaf)` for every key of values.yaml, with whether a comment precedes it.
fn values_keys() -> Vec<(String, bool, bool)> {
    let text = read(&chart_dir().join("values.yaml"));
    let lines: Vec<&str> = text.lines().collect();
    let mut stack: Vec<(usize, String)> = Vec::new();
    let mut keys = Vec::new();
    for (index, line) in lines.iter().enumerate() {
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with('-') {
            continue;
        }
        let Some((key, rest)) = trimmed.split_once(':') else {
            continue;
        };
        let indent = line.len() - trimmed.len();
        while stack.last().is_some_and(|(level, _)| *level >= indent) {
            stack.pop();
        }
        let path = stack
            .iter()
            .map(|(_, k)| k.as_str())
            .chain([key])
            .collect::<Vec<_>>()
            .join(".");
        let next_is_list = lines
            .get(index + 1)
            .is_some_and(|next| next.trim_start().starts_with("- "));
        let leaf = !rest.trim().is_empty() || next_is_list;
        let commented = index > 0 && lines[index - 1].trim_start().starts_with('#');
        keys.push((path, leaf, commented));
        stack.push((indent, key.to_owned()));
    }
    keys
}

#[test]
fn every_value_is_commented_documented_and_in_the_schema() {
    let readme = read(&chart_dir().join("README.md"));
    let schema: Value = serde_json::from_str(&read(&chart_dir().join("values.schema.json"))).expect("schema");
    let keys = values_keys();
    assert!(keys.len() > 50, "parsed only {} keys from values.yaml", keys.len());
    let mut problems = Vec::new();
    for (path, leaf, commented) in &keys {
        if !commented {
            problems.push(format!("values.yaml: {path} has no comment line above it"));
        }
        let pointer = format!("/properties/{}", path.replace('.', "/properties/"));
        if schema.pointer(&pointer).is_none() {
            problems.push(format!("values.schema.json: {path} is not declared"));
        }
        if *leaf && !readme.contains(&format!("| `{path}` |")) {
            problems.push(format!("README.md: {path} is not in the values table"));
        }
    }
    // And the other way round: the README's values table documents no value that does not exist.
    let known: BTreeSet<&str> = keys.iter().map(|(path, _, _)| path.as_str()).collect();
    let table = readme
        .split("\n## Values")
        .nth(1)
        .expect("README.md has a `## Values` section");
    let table = table.split("\n## ").next().unwrap_or_default();
    for line in table.lines().filter(|l| l.starts_with("| `")) {
        let documented = line.trim_start_matches("| `").split('`').next().unwrap_or_default();
        if !known.contains(documented) {
            problems.push(format!(
                "README.md documents {documented}, which values.yaml does not have"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn chart_yaml_has_what_chart_testing_requires() {
    let chart: Value = serde_yaml_ng::from_str(&read(&chart_dir().join("Chart.yaml"))).expect("Chart.yaml");
    assert_eq!(chart["apiVersion"], json!("v2"));
    assert_eq!(chart["name"], json!("todo"));
    for key in ["version", "appVersion", "description", "home", "kubeVersion"] {
        assert!(
            chart[key].as_str().is_some_and(|v| !v.is_empty()),
            "Chart.yaml lacks {key}"
        );
    }
    let version = chart["version"].as_str().unwrap_or_default();
    let parts: Vec<&str> = version
        .split(['-', '+'])
        .next()
        .unwrap_or_default()
        .split('.')
        .collect();
    assert!(
        parts.len() == 3 && parts.iter().all(|p| p.parse::<u64>().is_ok()),
        "version {version} is not SemVer"
    );
    let maintainers = chart["maintainers"].as_array().expect("Chart.yaml lists maintainers");
    assert!(
        !maintainers.is_empty() && maintainers.iter().all(|m| m["name"].is_string()),
        "maintainers need names"
    );
}

#[test]
fn notes_tell_how_to_open_check_logs_and_test() {
    // Helm 3's `install --dry-run=client` still contacts a cluster; Helm 4's does not.
    let helm = helms().into_iter().find(|h| h.dist.major == 4).expect("Helm 4");
    let chart = chart_dir();
    for (values, open) in [
        (Some("values-dev.yaml"), "minikube service todo-frontend"),
        (None, "kubectl port-forward"),
    ] {
        let mut args = vec![
            "install",
            "todo",
            chart.to_str().expect("UTF-8"),
            "--dry-run=client",
            "--namespace",
            "todo",
        ];
        let path = values.map(|v| chart.join(v));
        if let Some(path) = &path {
            args.extend(["--values", path.to_str().expect("UTF-8")]);
        }
        let outcome = helm.run(&args);
        assert!(
            outcome.success,
            "{helm}: install --dry-run=client failed: {}",
            outcome.stderr
        );
        let notes = outcome.stdout.split("NOTES:").nth(1).expect("NOTES are printed");
        for phrase in [
            open,
            "kubectl get pods",
            "kubectl logs",
            "helm test todo",
            "cargo xtask secrets",
        ] {
            assert!(notes.contains(phrase), "{values:?}: NOTES lack {phrase:?}:\n{notes}");
        }
    }
}

#[test]
fn bare_pods_are_only_helm_test_hooks() {
    for manifest in matrix() {
        for object in manifest.of_kind("Pod") {
            assert_eq!(
                object.annotations().get("helm.sh/hook").map(String::as_str),
                Some("test"),
                "{}: {} is a bare Pod outside `helm test`",
                manifest.values,
                object.id()
            );
        }
    }
}

#[test]
fn immutable_fields_hold_only_stable_labels() {
    // Selectors and volumeClaimTemplates cannot change on upgrade: a version label in them would
    // make the next `helm upgrade` fail.
    let mut seen_claims = 0;
    for manifest in matrix() {
        for object in manifest.of_kind("StatefulSet") {
            for claim in object.raw["spec"]["volumeClaimTemplates"]
                .as_array()
                .into_iter()
                .flatten()
            {
                seen_claims += 1;
                let labels: BTreeSet<&str> = claim["metadata"]["labels"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(k, _)| k.as_str())
                    .collect();
                let stable: BTreeSet<&str> = [
                    "app.kubernetes.io/name",
                    "app.kubernetes.io/instance",
                    "app.kubernetes.io/component",
                ]
                .into();
                assert_eq!(
                    labels,
                    stable,
                    "{}: {} claim template labels",
                    manifest.values,
                    object.id()
                );
            }
        }
    }
    assert!(
        seen_claims > 0,
        "no StatefulSet claim template in the matrix: the test would prove nothing"
    );
}
