//! The application contract: what the release `todo` serves, and the development values.

use super::*;

#[test]
fn the_release_todo_serves_the_contract() {
    let version = harness::app_version();
    for manifest in matrix() {
        assert_ports_addresses_and_images(manifest, &version);
        assert_test_hook(manifest, &version);
        assert_database(manifest);
    }
}

/// Services, listen addresses, `BACKEND_URL` and image references agree.
fn assert_ports_addresses_and_images(manifest: &Manifest, version: &str) {
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
}

/// `helm test` checks the backend's readiness and the frontend's health at their Service names.
fn assert_test_hook(manifest: &Manifest, version: &str) {
    let values = &manifest.values;
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
}

/// The database URL matches the engine: SQLite on the volume with one replica, PostgreSQL
/// without a password in the URL and a rolling update.
fn assert_database(manifest: &Manifest) {
    let values = &manifest.values;
    let backend = manifest.find("Deployment", "todo-backend").expect("backend");
    let spec = &backend.raw["spec"]["template"]["spec"];
    let Some(url) = manifest.config_map_data("todo-backend").get("DATABASE_URL").cloned() else {
        // An external database's URL carries credentials: it comes from the Secret only.
        assert!(
            spec.to_string().contains(r#""secretKeyRef":{"key":"DATABASE_URL""#),
            "{values}: DATABASE_URL is neither in the ConfigMap nor from the Secret"
        );
        return;
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
