//! The smoke checks' port-forwards after a deploy.

use super::*;

#[test]
fn port_forwards_are_stopped_also_when_one_fails() {
    let standins = StandIns::new();
    let programs = change(healthy(), "kubectl", |kubectl| {
        kubectl
            .on(
                "--context minikube --namespace todo --request-timeout=0 port-forward service/todo-backend *:8000 --address 127.0.0.1",
                Reply::ok("").until_signalled(),
            )
            .on(
                "--context minikube --namespace todo --request-timeout=0 port-forward service/todo-frontend *:3000 --address 127.0.0.1",
                Reply::fail(1, "error: unable to forward port because pod is not running. Current status=Pending\n").after_waiting("kubectl"),
            )
    });
    let images = fixture_path("images.json").display().to_string();
    let diagnostics = standins.scratch("diagnostics").display().to_string();
    let run = xtask(
        &standins,
        &programs,
        &["deploy", "--images", &images, "--diagnostics-dir", &diagnostics],
    );
    assert_eq!(run.code, 1, "stderr:\n{}", run.stderr);
    assert!(
        run.stderr
            .contains("error: unable to forward port because pod is not running. Current status=Pending"),
        "{}",
        run.stderr
    );
    let invocations = standins.invocations();
    let forwards: Vec<&String> = invocations
        .iter()
        .filter(|line| line.contains(" port-forward "))
        .collect();
    assert_eq!(forwards.len(), 2, "{invocations:#?}");
    // The backend's forward was still running: it was stopped.
    assert!(
        invocations.contains(&"kubectl <- SIGTERM".to_owned()),
        "{invocations:#?}"
    );
    assert_kubectl_is_explicit(&invocations);
}

#[test]
fn smoke_without_urls_reaches_the_release_through_port_forwards() {
    let standins = StandIns::new();
    let programs = change(healthy(), "kubectl", |kubectl| {
        kubectl
            .on(
                "--context minikube --namespace todo --request-timeout=0 port-forward service/todo-backend *:8000 --address 127.0.0.1",
                Reply::ok("").until_signalled(),
            )
            .on(
                "--context minikube --namespace todo --request-timeout=0 port-forward service/todo-frontend *:3000 --address 127.0.0.1",
                Reply::fail(1, "error: services \"todo-frontend\" not found\n").after_waiting("kubectl"),
            )
    });
    let run = xtask(
        &standins,
        &programs,
        &["smoke", "--release", "todo", "--namespace", "todo"],
    );
    assert_eq!(run.code, 1, "stderr:\n{}", run.stderr);
    assert!(
        run.stderr.contains("error: services \"todo-frontend\" not found"),
        "{}",
        run.stderr
    );
    let invocations = standins.invocations();
    assert_in_order(
        &invocations,
        &[
            &format!(
                "kubectl {}",
                query("get deployments -l app.kubernetes.io/instance=todo,app.kubernetes.io/component=backend -o json")
            ),
            &format!(
                "kubectl {}",
                query("get services -l app.kubernetes.io/instance=todo -o json")
            ),
        ],
    );
    assert!(
        invocations.contains(&"kubectl <- SIGTERM".to_owned()),
        "{invocations:#?}"
    );
}
