//! Failing fast, with the reason, the fix and a bundle.

use super::*;

/// A deploy whose rollout shows `pods` and `events` while Helm waits (until it is stopped). The
/// release had no pods before the upgrade, so every pod of `pods` is the rollout's own.
fn failing_rollout(pods: &str, events: &str) -> (StandIns, Run) {
    let standins = StandIns::new();
    let selector = "-l app.kubernetes.io/instance=todo";
    let programs = change(healthy(), "helm", |helm| {
        helm.on(
            &format!("{}*", helm_args("upgrade --install todo helm")),
            Reply::fail(1, CANCELLED).until_signalled(),
        )
    });
    let crash_log = "2025-03-10T12:01:09Z INFO backend: starting\n\
         2025-03-10T12:01:09Z INFO backend: database postgres://todo:hunter2-db-pass@db.example.com:5432/todo\n\
         2025-03-10T12:01:10Z ERROR backend: cannot connect to the database: connection refused (os error 111)\n\
         Error: the OPENAI_API_KEY sk-test-Zq8rT5vX2nP7kL4m was rejected\n";
    let programs = change(programs, "kubectl", |kubectl| {
        kubectl
            .on_each(
                &query(&format!("get pods {selector} -o json")),
                vec![Reply::ok(EMPTY_LIST), Reply::ok(fixture(pods))],
            )
            .on(&query("get events -o json"), Reply::ok(fixture(events)))
            .on(
                &write(&format!("logs {BACKEND_POD} -c backend --tail=30 --previous")),
                Reply::ok(crash_log),
            )
            .on(
                &write(&format!(
                    "logs {BACKEND_POD} -c backend --tail=1000 --timestamps --previous"
                )),
                Reply::ok(crash_log),
            )
    });
    let run = deploy(&standins, &programs, &[]);
    (standins, run)
}

/// Asserts what every failed rollout must show: exit code 1, the reason and the fix on stderr and
/// in the one-line error, Helm stopped (so it rolls back), a complete bundle, no secret anywhere.
/// Returns the bundle's folder.
fn assert_failed_fast(standins: &StandIns, run: &Run, reason: &str, fix: &str) -> std::path::PathBuf {
    assert_eq!(run.code, 1, "stdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr
            .contains(&format!("==> the rollout cannot succeed: {reason}\n")),
        "reason {reason:?} not in:\n{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(&format!("    what to do: {fix}\n")),
        "fix {fix:?} not in:\n{}",
        run.stderr
    );
    let error = run.stderr.lines().last().unwrap();
    assert!(
        error.starts_with(&format!(
            "error: step `helm upgrade --install, watching the rollout` failed: {reason}; what to do: {fix} (diagnostics in "
        )),
        "{error}"
    );
    let invocations = standins.invocations();
    // Helm was stopped rather than waited out; it rolls back by itself (--atomic), so no
    // `helm rollback` of ours follows.
    assert_in_order(&invocations, &[&upgrade_helm3(), "helm <- SIGTERM"]);
    assert_never(&invocations, "helm rollback");
    assert!(
        run.stderr.contains("helm: Release todo has been cancelled."),
        "{}",
        run.stderr
    );
    assert_kubectl_is_explicit(&invocations);

    let bundles: Vec<_> = fs::read_dir(standins.scratch("diagnostics")).unwrap().collect();
    assert_eq!(bundles.len(), 1, "one bundle");
    let bundle = bundles.into_iter().next().unwrap().unwrap().path();
    assert!(error.contains(&bundle.display().to_string()), "{error}");
    for file in [
        "summary.txt",
        "helm-status.txt",
        "helm-history.json",
        "helm-values.json",
        "helm-output.txt",
        "pods.json",
        "pods-during-rollout.json",
        "events.json",
        "events-during-rollout.json",
        "resources.json",
        "describe-pods.txt",
        &format!("logs/{BACKEND_POD}.backend.log"),
        "logs/todo-frontend-5b8c7d6e4-k4m9p.frontend.log",
    ] {
        assert!(bundle.join(file).is_file(), "the bundle lacks {file}");
    }
    assert!(fs::read_to_string(bundle.join("summary.txt")).unwrap().contains(reason));
    let values: Value = serde_json::from_str(&fs::read_to_string(bundle.join("helm-values.json")).unwrap()).unwrap();
    assert_eq!(values["backend"]["openai"]["apiKey"], "[redacted]");
    assert_no_secret("stdout", &run.stdout);
    assert_no_secret("stderr", &run.stderr);
    for file in walk(&bundle) {
        assert_no_secret(&file.display().to_string(), &fs::read_to_string(&file).unwrap());
    }
    bundle
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

const LOAD_HINT: &str = "podman tag todo-backend:3f2a9c1b7d4e docker.io/library/todo-backend:3f2a9c1b7d4e && podman save -o \
     todo-backend-3f2a9c1b7d4e.tar docker.io/library/todo-backend:3f2a9c1b7d4e && minikube image load \
     todo-backend-3f2a9c1b7d4e.tar -p minikube";

#[test]
fn an_image_missing_from_the_node_is_named_with_the_command_that_loads_it() {
    for pods in ["pods-err-image-never-pull.json", "pods-image-pull-backoff.json"] {
        let (standins, run) = failing_rollout(pods, "events-none.json");
        assert_failed_fast(
            &standins,
            &run,
            &format!("backend pod {BACKEND_POD}: the node does not hold image {BACKEND_IMAGE}, and cannot pull it"),
            &format!("load it into the cluster: {LOAD_HINT}   (`cargo xtask deploy` does this)"),
        );
    }
}

#[test]
fn a_crash_loop_shows_the_exit_code_and_the_previous_log_without_secrets() {
    let (standins, run) = failing_rollout("pods-crashloop.json", "events-crashloop.json");
    let bundle = assert_failed_fast(
        &standins,
        &run,
        &format!("backend container backend of pod {BACKEND_POD} exits with code 1 (restarted 3 times)"),
        "its log says why (the last lines are shown above; all of it: `cargo xtask logs backend --previous`); fix \
         that and deploy again",
    );
    assert!(
        run.stderr.contains(
            "    last 30 lines of its previous run:\n      | 2025-03-10T12:01:09Z INFO backend: starting\n      | \
             2025-03-10T12:01:09Z INFO backend: database [redacted]\n      | \
             2025-03-10T12:01:10Z ERROR backend: cannot connect to the database: connection refused (os error 111)\n      \
             | Error: the OPENAI_API_KEY [redacted] was rejected\n"
        ),
        "{}",
        run.stderr
    );
    assert!(standins.invocations().contains(&format!(
        "kubectl {}",
        write(&format!("logs {BACKEND_POD} -c backend --tail=30 --previous"))
    )));
    let previous = fs::read_to_string(bundle.join(format!("logs/{BACKEND_POD}.backend.previous.log"))).unwrap();
    assert!(previous.contains("[redacted]"), "{previous}");
}

#[test]
fn an_out_of_memory_kill_names_the_limit_and_the_value_to_raise() {
    let (standins, run) = failing_rollout("pods-oomkilled.json", "events-none.json");
    assert_failed_fast(
        &standins,
        &run,
        &format!(
            "backend container backend of pod {BACKEND_POD} was killed for using more than its memory limit of 128Mi \
             (OOMKilled, exit code 137)"
        ),
        "raise the limit: cargo xtask deploy --set backend.resources.limits.memory=256Mi",
    );
}

#[test]
fn a_missing_secret_key_is_named_with_the_command_that_adds_it() {
    let (standins, run) = failing_rollout("pods-create-container-config-error.json", "events-none.json");
    assert_failed_fast(
        &standins,
        &run,
        &format!("backend pod {BACKEND_POD} cannot start: the Secret todo-secrets has no key OPENAI_API_KEY"),
        "add it: cargo xtask secrets --openai-key-from-env (with OPENAI_API_KEY set)",
    );
}

#[test]
fn an_unschedulable_pod_gives_the_schedulers_words() {
    let (standins, run) = failing_rollout("pods-unschedulable.json", "events-none.json");
    assert_failed_fast(
        &standins,
        &run,
        &format!(
            "backend pod {BACKEND_POD} cannot be scheduled: 0/1 nodes are available: 1 Insufficient memory. \
             preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod."
        ),
        "the node has too little memory left: lower the request (cargo xtask deploy --set \
         backend.resources.requests.memory=...) or give the cluster more (minikube delete && minikube start \
         --cpus=2 --memory=4096mb, see docs/deployment/minikube.md)",
    );
}

#[test]
fn helm_giving_up_by_itself_is_reported_with_its_error_and_a_bundle() {
    let standins = StandIns::new();
    let programs = change(healthy(), "helm", |helm| {
        helm.on(
            &format!("{}*", helm_args("upgrade --install todo helm")),
            Reply::fail(
                1,
                "Error: UPGRADE FAILED: execution error at (todo/templates/backend-deployment.yaml:1:4): \
                 database.type=sqlite allows exactly 1 backend replica\n",
            ),
        )
    });
    let run = deploy(&standins, &programs, &[]);
    assert_eq!(run.code, 1, "stderr:\n{}", run.stderr);
    let error = run.stderr.lines().last().unwrap();
    assert!(
        error.starts_with(
            "error: step `helm upgrade --install, watching the rollout` failed: helm upgrade failed: UPGRADE FAILED: \
             execution error at (todo/templates/backend-deployment.yaml:1:4): database.type=sqlite allows exactly 1 \
             backend replica (diagnostics in "
        ),
        "{error}"
    );
    assert_never(&standins.invocations(), "helm <- ");
}
