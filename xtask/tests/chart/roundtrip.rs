//! Typo detection: deserialize each object into its k8s-openapi type, serialize it back, and
//! report every key that did not survive (k8s-openapi ignores unknown keys, so a misspelt
//! `readinessprobe` would otherwise vanish silently, as it would in the cluster).

use serde_json::{Map, Value};

use crate::harness::{Object, Typed};

/// Drops nulls and empty maps and lists, recursively: the API treats them as absent.
pub fn normalize(value: &Value) -> Option<Value> {
    match value {
        Value::Null => None,
        Value::Object(map) => {
            let kept: Map<String, Value> = map
                .iter()
                .filter_map(|(k, v)| normalize(v).map(|v| (k.clone(), v)))
                .collect();
            (!kept.is_empty()).then_some(Value::Object(kept))
        }
        Value::Array(items) => {
            let kept: Vec<Value> = items.iter().filter_map(normalize).collect();
            (!kept.is_empty()).then_some(Value::Array(kept))
        }
        other => Some(other.clone()),
    }
}

/// The paths where `original` has something `round_tripped` lost or changed.
pub fn lost_keys(original: &Value, round_tripped: &Value, path: &str, out: &mut Vec<String>) {
    match (original, round_tripped) {
        (Value::Object(a), Value::Object(b)) => {
            for (key, value) in a {
                let here = format!("{path}.{key}");
                match b.get(key) {
                    Some(other) => lost_keys(value, other, &here, out),
                    None => out.push(format!("{here} is unknown to the API")),
                }
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (index, (x, y)) in a.iter().zip(b).enumerate() {
                lost_keys(x, y, &format!("{path}[{index}]"), out);
            }
        }
        (a, b) if a == b => {}
        (a, b) => out.push(format!("{path} changed from {a} to {b}")),
    }
}

/// Every key of the object that its Kubernetes type does not know.
pub fn unknown_keys(object: &Object) -> Vec<String> {
    if matches!(object.typed, Typed::Other) {
        return vec![format!("{}: no k8s-openapi type to check it against", object.id())];
    }
    let original = normalize(&object.raw).unwrap_or(Value::Null);
    let round_tripped = normalize(&object.typed.to_value()).unwrap_or(Value::Null);
    let mut lost = Vec::new();
    lost_keys(&original, &round_tripped, "", &mut lost);
    lost
}
