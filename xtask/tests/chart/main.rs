//! The Helm chart in helm/, held to the rules of helm/POLICY.md without a
//! cluster: every test runs the real `helm` (3 and 4, fetched into target/helm-dist by
//! `cargo xtask test`) and checks what it renders.

mod allowlist;
mod contract;
mod harness;
mod netpol;
mod policy;
mod roundtrip;
mod rules;
mod secrets;
mod structure;
mod typos;
mod values;

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
// Helpers the test modules share

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

const BACKEND: &str = "Deployment/todo-backend";
const POD: &str = "/spec/template/spec";
const CONTAINER: &str = "/spec/template/spec/containers/0";

/// Edits the object `id` at a JSON pointer (see [`put`]).
fn edit(m: &mut Manifest, id: &str, pointer: &str, new: Option<Value>) {
    put(object_mut(m, id), pointer, new);
}
/// Edits the backend's container.
fn container(m: &mut Manifest, field: &str, new: Option<Value>) {
    edit(m, BACKEND, &format!("{CONTAINER}/{field}"), new);
}
/// Edits the backend's pod spec.
fn pod(m: &mut Manifest, field: &str, new: Option<Value>) {
    edit(m, BACKEND, &format!("{POD}/{field}"), new);
}

fn config(m: &Manifest, name: &str, key: &str) -> String {
    m.config_map_data(name)
        .get(key)
        .cloned()
        .unwrap_or_else(|| panic!("{}: ConfigMap {name} lacks {key}", m.values))
}
