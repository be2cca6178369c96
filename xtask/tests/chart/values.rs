//! The schema (C3) and the chart's own checks reject bad values with a clear message.

use super::*;

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
