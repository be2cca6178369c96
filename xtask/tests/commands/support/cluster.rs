//! A local cluster made of stand-ins, for the tests of `deploy`, `up` and the release-lifecycle
//! commands: Minikube with a running cluster, kubectl answering from the fixtures under
//! `tests/fixtures/` (real `kubectl ... -o json` shapes), Helm 3 with release `todo` at revision 2,
//! and Podman holding the images of `fixtures/images.json`. Each scenario changes what it needs.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::standins::{Program, Reply, Run, StandIns, run};

/// The kube context (a Minikube profile).
pub const CONTEXT: &str = "minikube";
/// The backend image of `fixtures/images.json`.
pub const BACKEND_IMAGE: &str = "todo-backend:3f2a9c1b7d4e";
/// The frontend image of `fixtures/images.json`.
pub const FRONTEND_IMAGE: &str = "todo-frontend:8e1d2c3b4a5f";
/// The backend pod of the pod fixtures.
pub const BACKEND_POD: &str = "todo-backend-6c9d8f7b5-x2v7q";
/// The values in `fixtures/secret.json` (and the password inside its DATABASE_URL): none may
/// ever appear in what a command prints or saves.
pub const SECRET_VALUES: [&str; 4] = [
    "6a1f0c3e9b2d4f7a8c5e1b0d3f6a9c2e4b7d0f3a6c9e2b5d8f1a4c7e0b3d6f9a",
    "postgres://todo:hunter2-db-pass@db.example.com:5432/todo",
    "hunter2-db-pass",
    "sk-test-Zq8rT5vX2nP7kL4m",
];

/// A fixture's path.
pub fn fixture_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

/// A fixture's text.
pub fn fixture(name: &str) -> String {
    std::fs::read_to_string(fixture_path(name)).unwrap_or_else(|err| panic!("fixture {name}: {err}"))
}

/// kubectl's arguments for a query: context, namespace and the query timeout first.
pub fn query(rest: &str) -> String {
    format!("--context {CONTEXT} --namespace todo --request-timeout=5s {rest}")
}

/// kubectl and Helm of another local cluster reached through `context` (kind, k3d): its nodes,
/// the namespace and the Secret exist, and the release is deployed.
pub fn deployed_release_in(context: &str) -> [Program; 2] {
    let query = |rest: &str| format!("--context {context} --namespace todo --request-timeout=5s {rest}");
    [
        Program::new("kubectl")
            .on(
                "config current-context --request-timeout=5s",
                Reply::ok(format!("{context}\n")),
            )
            .on(&query("get nodes -o json"), Reply::ok(fixture("nodes.json")))
            .on(&query("version -o json"), Reply::ok(fixture("kubectl-version.json")))
            .on(
                &query("get namespace todo -o json"),
                Reply::ok(fixture("namespace.json")),
            )
            .on(
                &query("get secret todo-secrets -o json"),
                Reply::ok(fixture("secret.json")),
            ),
        Program::new("helm")
            .on("version --short", Reply::ok("v3.17.2+gcc0bbbd\n"))
            .on(
                &format!("history todo --kube-context {context} --namespace todo --max 256 -o json"),
                Reply::ok(fixture("helm-history-deployed.json")),
            ),
    ]
}

/// kubectl's arguments for a change: context, namespace and the write timeout first.
pub fn write(rest: &str) -> String {
    format!("--context {CONTEXT} --namespace todo --request-timeout=30s {rest}")
}

/// Helm's arguments for a verb about release `todo`.
pub fn helm_args(verb: &str) -> String {
    format!("{verb} --kube-context {CONTEXT} --namespace todo")
}

/// What `kubectl get ...` says about a missing object (exit code 1).
pub fn not_found(what: &str) -> Reply {
    Reply::fail(1, format!("Error from server (NotFound): {what} not found\n"))
}

/// `helm history` after the upgrade: the fixture's revisions plus revision 3, deployed.
pub fn history_after_upgrade() -> String {
    let mut history: Vec<Value> = serde_json::from_str(&fixture("helm-history-deployed.json")).unwrap();
    history[1]["status"] = "superseded".into();
    history.push(serde_json::json!({
        "revision": 3, "updated": "2025-03-10T13:00:00.123456789Z", "status": "deployed",
        "chart": "todo-0.1.0", "app_version": "0.1.0", "description": "Upgrade complete"
    }));
    serde_json::to_string(&history).unwrap()
}

/// kubectl's answer to `get <kind> -o json` when there is none (no pods before a first install).
pub const EMPTY_LIST: &str = r#"{"apiVersion":"v1","items":[],"kind":"List","metadata":{"resourceVersion":""}}"#;

/// Helm 3's words after a successful `upgrade --install`.
pub const UPGRADED: &str = "Release \"todo\" has been upgraded. Happy Helming!\nNAME: todo\nLAST DEPLOYED: Mon Mar 10 13:00:00 2025\nNAMESPACE: todo\nSTATUS: deployed\nREVISION: 3\nTEST SUITE: None\n";

/// Helm 3's words when SIGTERM stops an `upgrade --install --atomic`.
pub const CANCELLED: &str = "Release todo has been cancelled.\nError: UPGRADE FAILED: release todo failed, and has been rolled back due to atomic being set: context canceled\n";

/// kubectl's answers, in the context `query` names, about release `todo` rolled out: its pods
/// ready, no events, its Services.
pub fn rolled_out(kubectl: Program, query: impl Fn(&str) -> String) -> Program {
    let selector = "-l app.kubernetes.io/instance=todo";
    kubectl
        .on(
            &query(&format!("get pods {selector} -o json")),
            Reply::ok(fixture("pods-rolled-out.json")),
        )
        .on(&query("get events -o json"), Reply::ok(fixture("events-none.json")))
        .on(
            &query(&format!("get services {selector} -o json")),
            Reply::ok(fixture("services.json")),
        )
}

/// Helm's answers, with the flags `helm_args` adds, when release `todo` at revision 2 is upgraded
/// to revision 3 at once.
pub fn upgrade_succeeds(helm: Program, helm_args: impl Fn(&str) -> String) -> Program {
    helm.on_each(
        &format!("{} --max 256 -o json", helm_args("history todo")),
        vec![
            Reply::ok(fixture("helm-history-deployed.json")),
            Reply::ok(history_after_upgrade()),
        ],
    )
    .on(
        &format!("{} -o json", helm_args("history todo")),
        Reply::ok(history_after_upgrade()),
    )
    .on(
        &format!("{}*", helm_args("upgrade --install todo helm")),
        Reply::ok(UPGRADED),
    )
}

/// A running Minikube cluster where release `todo` is at revision 2, the images are on the node,
/// the namespace and Secret exist, and an upgrade succeeds at once.
pub fn healthy() -> Vec<Program> {
    let selector = "-l app.kubernetes.io/instance=todo";
    vec![
        Program::new("minikube")
            // `minikube node list`: `<machine name>\t<ip>` per node (cmd/minikube/cmd/node_list.go).
            .on("node list -p minikube", Reply::ok("minikube\t192.168.49.2\n"))
            .on(
                "image ls --format json -p minikube",
                Reply::ok(fixture("minikube-image-ls-with-ours.json")),
            )
            .on("image load * -p minikube", Reply::ok(""))
            .on("ip -p minikube", Reply::ok("192.168.49.2\n"))
            .on(
                "status -o json -p minikube",
                Reply::ok(r#"{"Name":"minikube","Host":"Running","Kubelet":"Running","APIServer":"Running","Kubeconfig":"Configured","Worker":false}"#),
            )
            .on("profile list -o json", Reply::ok(r#"{"invalid":[],"valid":[]}"#)),
        rolled_out(Program::new("kubectl"), query)
            .on("config current-context --request-timeout=5s", Reply::ok("minikube\n"))
            .on(&query("get nodes -o json"), Reply::ok(fixture("nodes.json")))
            // The server's version for the chart's kubeVersion (Minikube v1.35's default, v1.32.0).
            .on(&query("version -o json"), Reply::ok(fixture("kubectl-version.json")))
            .on(&query("get namespace todo -o json"), Reply::ok(fixture("namespace.json")))
            .on(&query("get secret todo-secrets -o json"), Reply::ok(fixture("secret.json")))
            .on(
                &query(&format!("get deployments {selector},app.kubernetes.io/component=backend -o json")),
                Reply::ok(fixture("deployments.json")),
            )
            .on(
                &query(&format!("get persistentvolumeclaims {selector} -o json")),
                Reply::ok(fixture("pvcs.json")),
            )
            .on(
                &query(&format!("get deployments,replicasets,statefulsets,services,persistentvolumeclaims {selector} -o json")),
                Reply::ok(EMPTY_LIST),
            )
            .on(
                &query(&format!("describe pods {selector}")),
                Reply::ok(format!(
                    "Name:             {BACKEND_POD}\nNamespace:        todo\nStatus:           Running\n    Environment:\n      JWT_SECRET:  <set to the key 'JWT_SECRET' in secret 'todo-secrets'>  Optional: false\n"
                )),
            )
            .on(
                &write("logs * --tail=1000 --timestamps"),
                Reply::ok("2025-03-10T12:00:05.000000000Z INFO backend: listening on 0.0.0.0:8000\n"),
            ),
        upgrade_succeeds(Program::new("helm"), helm_args)
            .on("version --short", Reply::ok("v3.17.2+gcc0bbbd\n"))
            .on(
                &helm_args("status todo"),
                Reply::ok("NAME: todo\nLAST DEPLOYED: Mon Mar 10 13:00:00 2025\nNAMESPACE: todo\nSTATUS: pending-upgrade\nREVISION: 3\n"),
            )
            .on(&format!("{} -o json", helm_args("get values todo")), Reply::ok(fixture("helm-values.json"))),
        Program::new("podman")
            .on("tag * docker.io/library/*", Reply::ok(""))
            .on("save -o * docker.io/library/*", Reply::ok("")),
    ]
}

/// `programs` with the one called `name` changed by `change`.
pub fn change(programs: Vec<Program>, name: &str, change: impl FnOnce(Program) -> Program) -> Vec<Program> {
    let mut change = Some(change);
    programs
        .into_iter()
        .map(|program| match change.take_if(|_| program.name() == name) {
            Some(change) => change(program),
            None => program,
        })
        .collect()
}

/// `programs` without the one called `name`.
pub fn without(programs: Vec<Program>, name: &str) -> Vec<Program> {
    programs.into_iter().filter(|program| program.name() != name).collect()
}

/// Runs `cargo xtask <args>` (the built binary) with only `programs` on PATH.
pub fn xtask(standins: &StandIns, programs: &[Program], args: &[&str]) -> Run {
    standins.install_all(programs);
    run(standins.command(env!("CARGO_BIN_EXE_xtask")).args(args))
}

/// `deploy --no-smoke` of the image record at `record`, diagnostics kept in the stand-ins' folder.
pub fn deploy_record(standins: &StandIns, programs: &[Program], record: &str) -> Run {
    let diagnostics = standins.scratch("diagnostics").display().to_string();
    let args = [
        "deploy",
        "--no-smoke",
        "--images",
        record,
        "--diagnostics-dir",
        &diagnostics,
    ];
    xtask(standins, programs, &args)
}

/// `uninstall --purge`'s deletions after `helm uninstall`, as kubectl answers them.
pub fn purge_deletes(programs: Vec<Program>) -> Vec<Program> {
    change(programs, "kubectl", |kubectl| {
        kubectl
            .on(
                &write("delete persistentvolumeclaim todo-backend --ignore-not-found --timeout=120s"),
                Reply::ok("persistentvolumeclaim \"todo-backend\" deleted\n"),
            )
            .on(
                &write("delete secret todo-secrets --ignore-not-found"),
                Reply::ok("secret \"todo-secrets\" deleted\n"),
            )
    })
}

/// Asserts a purge ran: `helm uninstall`, then the data's and the Secret's deletion.
pub fn assert_purged(invocations: &[String]) {
    assert_in_order(
        invocations,
        &[
            &format!("helm {} --wait --timeout 180s", helm_args("uninstall todo")),
            &format!(
                "kubectl {}",
                write("delete persistentvolumeclaim todo-backend --ignore-not-found --timeout=120s")
            ),
            &format!("kubectl {}", write("delete secret todo-secrets --ignore-not-found")),
        ],
    );
}

/// Asserts that each of `expected` was invoked, in this order (other invocations may come between).
pub fn assert_in_order(invocations: &[String], expected: &[&str]) {
    let mut from = 0;
    for wanted in expected {
        match invocations[from..].iter().position(|line| line == wanted) {
            Some(at) => from += at + 1,
            None => panic!(
                "expected `{wanted}` (after {from} earlier invocations) in:\n{}",
                invocations.join("\n")
            ),
        }
    }
}

/// Asserts that nothing invoked starts with `prefix`.
pub fn assert_never(invocations: &[String], prefix: &str) {
    if let Some(line) = invocations.iter().find(|line| line.starts_with(prefix)) {
        panic!("unexpected `{line}` in:\n{}", invocations.join("\n"));
    }
}

/// Every kubectl call that reaches the cluster names the context and namespace and has a request
/// timeout (`config current-context` only reads the kubeconfig).
pub fn assert_kubectl_is_explicit(invocations: &[String]) {
    for line in invocations.iter().filter(|line| line.starts_with("kubectl ")) {
        if line == "kubectl config current-context --request-timeout=5s" || line.starts_with("kubectl <- ") {
            continue;
        }
        assert!(
            line.starts_with(&format!(
                "kubectl --context {CONTEXT} --namespace todo --request-timeout="
            )),
            "kubectl without an explicit context, namespace and timeout: {line}"
        );
    }
}

/// Asserts that no secret value appears in `text` (named `what` in the message).
pub fn assert_no_secret(what: &str, text: &str) {
    for value in SECRET_VALUES {
        assert!(!text.contains(value), "{what} shows the secret value {value}:\n{text}");
    }
}
