//! Rules E of helm/POLICY.md: chart hygiene (the per-object part).

use super::*;

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

pub(super) fn c6_labels(c: &mut Check<'_>) {
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
