//! Structure and documentation (helm/ conventions, C3, C4).

use super::*;

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
