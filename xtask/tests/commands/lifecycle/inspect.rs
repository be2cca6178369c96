//! `cargo xtask status`, `history`, `rollback` and `logs`.

use super::*;

#[test]
fn status_shows_revision_versions_pods_url_and_problems() {
    let standins = StandIns::new();
    let programs = change(healthy(), "kubectl", |kubectl| {
        kubectl.on(
            &query("get pods -l app.kubernetes.io/instance=todo -o json"),
            Reply::ok(fixture("pods-crashloop.json")),
        )
    });
    let run = xtask(&standins, &programs, &["status"]);
    assert_eq!(run.code, 0, "stderr:\n{}", run.stderr);
    assert_eq!(
        run.stdout,
        format!(
            "release  todo revision 2 (deployed), updated 2025-03-10T12:00:00.123456789Z\n         Upgrade complete\n\
             chart    todo-0.1.0, app version 0.1.0\nwhere    kube context minikube, namespace todo\n\
             app      http://192.168.49.2:30000/\n\n\
             POD                            COMPONENT   READY  RESTARTS  STATE                       IMAGE\n\
             {BACKEND_POD}   backend     0/1    3         CrashLoopBackOff            {BACKEND_IMAGE}\n\
             todo-frontend-5b8c7d6e4-k4m9p  frontend    1/1    0         Running                     {FRONTEND_IMAGE}\n\
             todo-frontend-5b8c7d6e4-r7t2w  frontend    1/1    0         Running                     {FRONTEND_IMAGE}\n\n\
             problems:\n  - backend container backend of pod {BACKEND_POD} exits with code 1 (restarted 3 times)\n    \
             what to do: its log says why (the last lines are shown above; all of it: `cargo xtask logs backend \
             --previous`); fix that and deploy again\n"
        )
    );
    assert_kubectl_is_explicit(&standins.invocations());
    assert_never(&standins.invocations(), "helm upgrade");

    let run = xtask(&StandIns::new(), &programs, &["status", "--json"]);
    assert_eq!(run.code, 0, "stderr:\n{}", run.stderr);
    let status: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(status["revision"], 2);
    assert_eq!(status["chart"], "todo-0.1.0");
    assert_eq!(status["app"]["url"], "http://192.168.49.2:30000/");
    assert_eq!(status["pods"][0]["restarts"], 3);
    assert_eq!(status["pods"][1]["images"][0], FRONTEND_IMAGE);
    assert_eq!(status["problems"][0]["cause"]["kind"], "crashed");
    assert_eq!(status["problems"][0]["cause"]["exit_code"], 1);
}

#[test]
fn status_says_which_pods_run_dev_image_builds() {
    // The frontend rolled to an inner-loop build (`cargo xtask dev`); the backend is a release build.
    let dev_frontend = FRONTEND_IMAGE.replace(':', ":dev-");
    let pods = fixture("pods-crashloop.json").replace(FRONTEND_IMAGE, &dev_frontend);
    let programs = change(healthy(), "kubectl", |kubectl| {
        kubectl.on(
            &query("get pods -l app.kubernetes.io/instance=todo -o json"),
            Reply::ok(pods.clone()),
        )
    });
    let run = xtask(&StandIns::new(), &programs, &["status"]);
    assert_eq!(run.code, 0, "stderr:\n{}", run.stderr);
    assert!(
        run.stdout.contains(
            "note: todo-frontend-5b8c7d6e4-k4m9p, todo-frontend-5b8c7d6e4-r7t2w run dev-image builds (the inner \
             loop's: no LTO, tags dev-…; not to ship)\n"
        ),
        "{}",
        run.stdout
    );
    let run = xtask(&StandIns::new(), &programs, &["status", "--json"]);
    let status: Value = serde_json::from_str(&run.stdout).unwrap();
    let profiles: Vec<&str> = (status["pods"].as_array().unwrap().iter())
        .map(|pod| pod["profile"].as_str().unwrap())
        .collect();
    assert_eq!(profiles, ["release", "dev-image", "dev-image"]);
}

#[test]
fn status_of_a_release_that_is_not_installed_says_how_to_install_it() {
    let standins = StandIns::new();
    let programs = change(healthy(), "helm", |helm| {
        helm.on(
            &format!("{} --max 256 -o json", helm_args("history todo")),
            Reply::fail(1, "Error: release: not found\n"),
        )
    });
    let run = xtask(&standins, &programs, &["status"]);
    assert_eq!(run.code, 1);
    assert_eq!(
        run.stderr.lines().last().unwrap(),
        "error: release todo is not installed in namespace todo (kube context minikube): cargo xtask deploy"
    );
}

#[test]
fn history_lists_revisions_with_the_images_each_ran() {
    let standins = StandIns::new();
    let programs = change(healthy(), "helm", |helm| {
        helm.on(
            &format!("{} --revision 1 -o json", helm_args("get values todo")),
            Reply::ok(r#"{"backend":{"image":{"repository":"todo-backend","tag":"0c1d2e3f4a5b"}},"frontend":{"image":{"repository":"todo-frontend","tag":"6a7b8c9d0e1f"}}}"#),
        )
        .on(
            &format!("{} --revision 2 -o json", helm_args("get values todo")),
            Reply::ok(fixture("helm-values.json")),
        )
    });
    let run = xtask(&standins, &programs, &["history"]);
    assert_eq!(run.code, 0, "stderr:\n{}", run.stderr);
    assert_eq!(
        run.stdout,
        format!(
            "REVISION  UPDATED               STATUS           CHART         BACKEND                       FRONTEND                      DESCRIPTION\n\
             1         2025-03-10 11:00:00   superseded       todo-0.1.0    todo-backend:0c1d2e3f4a5b     todo-frontend:6a7b8c9d0e1f    Install complete\n\
             2         2025-03-10 12:00:00   deployed         todo-0.1.0    {BACKEND_IMAGE}     {FRONTEND_IMAGE}    Upgrade complete\n"
        )
    );
    let run = xtask(&StandIns::new(), &programs, &["history", "--json", "--max", "1"]);
    let history: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(history.as_array().unwrap().len(), 1);
    assert_eq!(history[0]["revision"], 2);
    assert_eq!(history[0]["backend_image"], BACKEND_IMAGE);
}

#[test]
fn rollback_returns_to_the_previous_good_revision_or_the_one_named() {
    let rolled_back = r#"[{"revision":1,"updated":"2025-03-10T11:00:00Z","status":"superseded","chart":"todo-0.1.0","app_version":"0.1.0","description":"Install complete"},{"revision":2,"updated":"2025-03-10T12:00:00Z","status":"superseded","chart":"todo-0.1.0","app_version":"0.1.0","description":"Upgrade complete"},{"revision":3,"updated":"2025-03-10T13:00:00Z","status":"deployed","chart":"todo-0.1.0","app_version":"0.1.0","description":"Rollback to 1"}]"#;
    for version in ["v3.17.2+gcc0bbbd", "v4.3.1"] {
        let standins = StandIns::new();
        let programs = change(healthy(), "helm", |helm| {
            helm.on("version --short", Reply::ok(format!("{version}\n")))
                .on_each(
                    &format!("{} --max 256 -o json", helm_args("history todo")),
                    vec![Reply::ok(fixture("helm-history-deployed.json")), Reply::ok(rolled_back)],
                )
                .on(
                    &format!("{}*", helm_args("rollback todo 1")),
                    Reply::ok("Rollback was a success! Happy Helming!\n"),
                )
        });
        let run = xtask(&standins, &programs, &["rollback"]);
        assert_eq!(run.code, 0, "stderr:\n{}", run.stderr);
        let wait = if version.starts_with("v4") {
            "--wait=watcher"
        } else {
            "--wait"
        };
        assert!(
            standins.invocations().contains(&format!(
                "helm {} {wait} --cleanup-on-fail --timeout 180s",
                helm_args("rollback todo 1")
            )),
            "{:#?}",
            standins.invocations()
        );
        assert_eq!(run.stdout, "release todo is at revision 3 (deployed: Rollback to 1)\n");
    }

    let standins = StandIns::new();
    let run = xtask(&standins, &healthy(), &["rollback", "7"]);
    assert_eq!(run.code, 1);
    assert_eq!(
        run.stderr.lines().last().unwrap(),
        "error: release todo has no revision 7 (it has 1, 2): see `cargo xtask history`"
    );
    assert_never(&standins.invocations(), "helm rollback");
}

#[test]
fn logs_name_the_pods_and_scrub_secret_values() {
    let standins = StandIns::new();
    let selector = "-l app.kubernetes.io/instance=todo,app.kubernetes.io/component=backend";
    let programs = change(healthy(), "kubectl", |kubectl| {
        kubectl
            .on(
                &write(&format!("logs {selector} --all-containers --prefix --tail=200 --previous")),
                Reply::ok(format!(
                    "[pod/{BACKEND_POD}/backend] ERROR cannot reach postgres://todo:hunter2-db-pass@db.example.com:5432/todo\n"
                )),
            )
            .on(
                &format!(
                    "--context minikube --namespace todo --request-timeout=0 logs {selector} --all-containers --prefix \
                     --tail=5 --follow --max-log-requests=20"
                ),
                Reply::ok(format!("[pod/{BACKEND_POD}/backend] INFO ready\n")),
            )
    });
    let run = xtask(&standins, &programs, &["logs", "backend", "--previous"]);
    assert_eq!(run.code, 0, "stderr:\n{}", run.stderr);
    assert_eq!(
        run.stdout,
        format!("[pod/{BACKEND_POD}/backend] ERROR cannot reach [redacted]\n")
    );
    assert_no_secret("stdout", &run.stdout);

    let run = xtask(&standins, &programs, &["logs", "backend", "--follow", "--tail", "5"]);
    assert_eq!(run.code, 0, "stderr:\n{}", run.stderr);
    assert_eq!(run.stdout, format!("[pod/{BACKEND_POD}/backend] INFO ready\n"));
    assert_kubectl_is_explicit(&standins.invocations());
}
