//! `doctor` scenarios about the cluster: stopped or missing minikube, a non-local context, kind.

use super::*;

#[test]
fn minikube_stopped_fails_with_the_start_command() {
    let programs = change(healthy(), "minikube", |minikube| {
        minikube
            .on("profile list -o json", Reply::ok(profile_list("Stopped")))
            // `minikube status` exits 7 (host, cluster and kubernetes not running) when stopped.
            .on(
                "status -o json -p minikube",
                Reply::fail(7, "").with_stdout(STATUS_STOPPED),
            )
    });
    let programs = change(programs, "kubectl", |kubectl| {
        kubectl.on(
            "version -o json --request-timeout=5s",
            Reply::fail(
                1,
                "Unable to connect to the server: dial tcp 192.168.49.2:8443: connect: no route to host\n",
            )
            .with_stdout(kubectl_version(None)),
        )
    });
    let (run, invocations) = doctor(&programs, &[]);
    assert_eq!(run.code, 1, "stderr:\n{}", run.stderr);
    let table = &run.stdout;
    assert_row(
        table,
        "ok      kubectl          v1.32.2 (cluster not reachable: version skew not checked)",
        None,
    );
    assert_row(
        table,
        "FAIL    cluster          not reachable: Unable to connect to the server: dial tcp 192.168.49.2:8443: connect: no route to host",
        Some("minikube start"),
    );
    assert_row(
        table,
        "FAIL    minikube-status  minikube: stopped (host Stopped, kubelet Stopped, apiserver Stopped)",
        Some("minikube start"),
    );
    assert_row(
        table,
        "ok      minikube-config  minikube: driver docker, 4 CPUs, 8192 MiB memory, Kubernetes v1.32.0 on docker",
        None,
    );
    assert_row(
        table,
        &format!(
            "skip    architecture     this machine is {}; no local cluster answered",
            xtask::k8s::context::host_architecture()
        ),
        None,
    );
    assert!(table.contains("\n10 ok, 0 warn, 2 FAIL, 1 skip: not ready"), "{table}");
    // A stopped cluster's nodes are not asked for.
    assert!(
        !invocations.iter().any(|line| line.starts_with("kubectl get")),
        "{invocations:?}"
    );
    assert_read_only(&invocations);

    let (json_run, _) = doctor(&programs, &["--json"]);
    assert_eq!(json_run.code, 1);
    let report = json_report(&json_run);
    assert_eq!(report["ok"], false);
    let status = json_check(&report, "minikube-status");
    assert_eq!(status["status"], "fail");
    assert_eq!(status["fix"], "minikube start");
    assert_eq!(json_check(&report, "architecture")["status"], "skip");
}

#[test]
fn a_missing_minikube_cluster_gets_the_recommended_start_command() {
    let programs = change(healthy(), "minikube", |minikube| {
        minikube
            .on("profile list -o json", Reply::ok(r#"{"invalid":[],"valid":[]}"#))
            .on(
                "status -o json -p minikube",
                Reply::fail(85, "").with_stdout(
                    r#"{"specversion":"1.0","id":"4b1e5a2c","source":"https://minikube.sigs.k8s.io/","type":"io.k8s.sigs.minikube.info","datacontenttype":"application/json","data":{"message":"Profile \"minikube\" not found. Run \"minikube profile list\" to view all profiles."}}"#,
                ),
            )
    });
    let (run, invocations) = doctor(&programs, &[]);
    assert_eq!(run.code, 1, "stderr:\n{}", run.stderr);
    assert_row(
        &run.stdout,
        "FAIL    minikube-status  minikube: no such cluster yet",
        Some("minikube start --cpus=2 --memory=4096mb --addons=ingress --addons=metrics-server"),
    );
    assert_row(
        &run.stdout,
        "skip    minikube-config  minikube: no such cluster yet",
        None,
    );
    assert_row(
        &run.stdout,
        "skip    minikube-addons  minikube: no such cluster yet",
        None,
    );
    assert!(
        !invocations.iter().any(|line| line.starts_with("minikube addons")),
        "{invocations:?}"
    );
    assert_read_only(&invocations);
}

#[test]
fn a_non_local_context_fails_and_its_cluster_is_left_alone() {
    let context = "gke_acme-prod_europe-west1_main";
    let programs = change(healthy(), "kubectl", |kubectl| {
        kubectl
            .on(
                "config current-context --request-timeout=5s",
                Reply::ok(format!("{context}\n")),
            )
            .on(
                "config view --minify -o json --request-timeout=5s",
                Reply::ok(minified_config(context, "https://34.77.10.20")),
            )
            .on(
                "version -o json --request-timeout=5s",
                Reply::ok(kubectl_version(Some("v1.31.4-gke.1256000"))),
            )
    });
    let (run, invocations) = doctor(&programs, &[]);
    assert_eq!(run.code, 1, "stderr:\n{}", run.stderr);
    let table = &run.stdout;
    assert_row(
        table,
        &format!("FAIL    kube-context     {context}: not a local cluster (server https://34.77.10.20)"),
        Some("kubectl config use-context minikube"),
    );
    assert_row(
        table,
        "ok      kubectl          v1.32.2 (cluster v1.31.4-gke.1256000: within one minor)",
        None,
    );
    assert_row(
        table,
        "ok      cluster          reachable, Kubernetes v1.31.4-gke.1256000",
        None,
    );
    // Minikube is still the cluster to use, so it is still examined.
    assert_row(
        table,
        "ok      minikube-status  minikube: host Running, kubelet Running, apiserver Running",
        None,
    );
    assert!(table.contains("\n11 ok, 0 warn, 1 FAIL, 1 skip: not ready"), "{table}");
    // Nothing but `kubectl version` goes to somebody else's cluster.
    assert!(
        !invocations.iter().any(|line| line.starts_with("kubectl get")),
        "{invocations:?}"
    );
    assert_read_only(&invocations);

    let (json_run, _) = doctor(&programs, &["--json"]);
    assert_eq!(json_run.code, 1);
    let report = json_report(&json_run);
    assert_eq!(report["ok"], false);
    let check = json_check(&report, "kube-context");
    assert_eq!(check["status"], "fail");
    assert_eq!(check["fix"], "kubectl config use-context minikube");
}

#[test]
fn a_kind_context_needs_kind_not_minikube() {
    let programs = change(without(healthy(), "minikube"), "kubectl", |kubectl| {
        kubectl
            .on("config current-context --request-timeout=5s", Reply::ok("kind-dev\n"))
            .on(
                "config view --minify -o json --request-timeout=5s",
                Reply::ok(minified_config("kind-dev", "https://127.0.0.1:41235")),
            )
    });
    let (run, invocations) = doctor(&programs, &[]);
    assert_eq!(run.code, 0, "stdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);
    let table = &run.stdout;
    assert_row(
        table,
        "skip    minikube         not installed (not needed: the current context is kind cluster \"dev\")",
        None,
    );
    assert_row(table, "ok      kind             v0.26.0", None);
    assert_row(
        table,
        "ok      kube-context     kind-dev: local (kind cluster \"dev\"), server https://127.0.0.1:41235",
        None,
    );
    assert_row(table, "skip    minikube-status  minikube is not installed", None);
    assert!(invocations.contains(&"kind version".to_owned()), "{invocations:?}");
    assert!(
        !invocations.iter().any(|line| line.starts_with("k3d")),
        "{invocations:?}"
    );
    assert_read_only(&invocations);

    // The same context without kind installed: kind is required for it.
    let (run, _) = doctor(&without(programs, "kind"), &[]);
    assert_eq!(run.code, 1);
    assert!(
        run.stdout
            .contains("FAIL    kind             not installed (the current context is kind cluster \"dev\")"),
        "{}",
        run.stdout
    );
}
