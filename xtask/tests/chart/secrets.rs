//! Secrets and configuration: required secrets, checksums that roll pods, and no secret value
//! outside a Secret.

use super::*;
use crate::harness::Typed;

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

/// Every secret value a render holds: its Secrets' data, decoded.
fn secret_values(m: &Manifest) -> Vec<String> {
    // k8s-openapi decodes `data` (strict base64, as the API server does).
    m.objects
        .iter()
        .filter_map(|object| match &object.typed {
            Typed::Secret(secret) => secret.data.clone(),
            _ => None,
        })
        .flat_map(|data| data.into_values())
        .map(|bytes| String::from_utf8(bytes.0).expect("UTF-8 secret"))
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
