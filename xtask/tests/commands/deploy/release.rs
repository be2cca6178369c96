//! A release left pending, and the namespace and Secret deploy creates.

use super::*;

#[test]
fn a_stuck_release_is_refused_without_recover() {
    let standins = StandIns::new();
    let programs = change(healthy(), "helm", |helm| {
        helm.on(
            &format!("{} --max 256 -o json", helm_args("history todo")),
            Reply::ok(fixture("helm-history-pending-upgrade.json")),
        )
    });
    let run = deploy(&standins, &programs, &[]);
    assert_eq!(run.code, 1, "stderr:\n{}", run.stderr);
    assert!(
        run.stderr.contains(
            "error: step `release state` failed: release todo is stuck in pending-upgrade at revision 3: an earlier \
             run was interrupted midway, and Helm refuses to change the release until that is undone. Run again \
             with --recover to undo it first (helm rollback todo 2)"
        ),
        "{}",
        run.stderr
    );
    assert_never(&standins.invocations(), "helm upgrade");
    assert_never(&standins.invocations(), "helm rollback");
}

#[test]
fn recover_rolls_a_stuck_upgrade_back_and_removes_a_stuck_first_install() {
    for (version, wait) in [("v3.17.2+gcc0bbbd", "--wait"), ("v4.3.1", "--wait=watcher")] {
        let standins = StandIns::new();
        let programs = change(healthy(), "helm", |helm| {
            helm.on("version --short", Reply::ok(format!("{version}\n")))
                .on_each(
                    &format!("{} --max 256 -o json", helm_args("history todo")),
                    vec![
                        Reply::ok(fixture("helm-history-pending-upgrade.json")),
                        Reply::ok(fixture("helm-history-deployed.json")),
                    ],
                )
                .on(
                    &format!("{}*", helm_args("rollback todo 2")),
                    Reply::ok("Rollback was a success! Happy Helming!\n"),
                )
        });
        let run = deploy(&standins, &programs, &["--recover"]);
        assert_eq!(run.code, 0, "stderr:\n{}", run.stderr);
        let rollback = format!("helm {} {wait} --timeout 180s", helm_args("rollback todo 2"));
        let flags = if wait == "--wait" {
            "--wait --atomic"
        } else {
            "--wait=watcher --rollback-on-failure"
        };
        assert_in_order(&standins.invocations(), &[&rollback, &upgrade(flags)]);
        // Helm's own words go to stderr: stdout is the result.
        assert!(!run.stdout.contains("Rollback was a success"), "{}", run.stdout);
    }

    let standins = StandIns::new();
    let programs = change(healthy(), "helm", |helm| {
        helm.on_each(
            &format!("{} --max 256 -o json", helm_args("history todo")),
            vec![
                Reply::ok(fixture("helm-history-pending-install.json")),
                Reply::ok(fixture("helm-history-deployed.json")),
            ],
        )
        .on(
            &format!("{}*", helm_args("uninstall todo")),
            Reply::ok("release \"todo\" uninstalled\n"),
        )
    });
    let run = deploy(&standins, &programs, &["--recover"]);
    assert_eq!(run.code, 0, "stderr:\n{}", run.stderr);
    assert_in_order(
        &standins.invocations(),
        &[
            &format!("helm {} --wait --timeout 180s", helm_args("uninstall todo")),
            &upgrade_helm3(),
        ],
    );
}

// ---------------------------------------------------------------------------------------------
// Namespace and Secret

#[test]
fn a_missing_namespace_and_secret_are_created_with_the_secret_on_stdin_only() {
    let standins = StandIns::new();
    let programs = change(healthy(), "kubectl", |kubectl| {
        kubectl
            .on(&query("get namespace todo -o json"), not_found("namespaces \"todo\""))
            .on(
                &query("get secret todo-secrets -o json"),
                not_found("secrets \"todo-secrets\""),
            )
            .on(&write("create namespace todo"), Reply::ok("namespace/todo created\n"))
            .on(
                &write("label namespace todo pod-security.kubernetes.io/enforce=restricted"),
                Reply::ok("namespace/todo labeled\n"),
            )
            .on(
                &write("create -f -"),
                Reply::ok("secret/todo-secrets created\n").recording_stdin(),
            )
    });
    let run = deploy(&standins, &programs, &["--json"]);
    assert_eq!(run.code, 0, "stderr:\n{}", run.stderr);
    assert_in_order(
        &standins.invocations(),
        &[
            &format!("kubectl {}", write("create namespace todo")),
            &format!(
                "kubectl {}",
                write("label namespace todo pod-security.kubernetes.io/enforce=restricted")
            ),
            &format!("kubectl {}", write("create -f -")),
            &upgrade_helm3(),
        ],
    );
    // The Secret travelled on stdin: a random 64-hex-digit JWT secret, never in argv or output.
    let manifest: Value = serde_json::from_str(standins.stdin_log().trim()).unwrap();
    assert_eq!(manifest["kind"], "Secret");
    assert_eq!(manifest["metadata"]["name"], "todo-secrets");
    let jwt = manifest["stringData"]["JWT_SECRET"].as_str().unwrap();
    assert_eq!(jwt.len(), 64);
    assert!(jwt.bytes().all(|b| b.is_ascii_hexdigit()));
    for (what, text) in [
        ("stdout", run.stdout.as_str()),
        ("stderr", run.stderr.as_str()),
        ("the invocations", &standins.invocations().join("\n")),
    ] {
        assert!(!text.contains(jwt), "{what} shows the generated JWT secret");
    }
    // kubectl's own output goes to stderr, so stdout is one JSON document.
    let outcome: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(outcome["ok"], true);
}
