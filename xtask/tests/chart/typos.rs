//! Typo detection: every key must be known to the Kubernetes API.

use super::*;

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
