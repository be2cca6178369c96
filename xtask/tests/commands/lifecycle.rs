//! `cargo xtask up`, `status`, `logs`, `rollback`, `history`, `uninstall` and `secrets` end to
//! end: the real binary with stand-ins for minikube, kubectl and helm alone on PATH, asserting the
//! commands run, what is printed, and that secret values appear nowhere.

use crate::support::{
    cluster::{
        BACKEND_IMAGE, BACKEND_POD, FRONTEND_IMAGE, assert_in_order, assert_kubectl_is_explicit, assert_never,
        assert_no_secret, change, fixture, fixture_path, healthy, helm_args, not_found, query, write, xtask,
    },
    standins::{Program, Reply, Run, StandIns, run},
};
use serde_json::Value;

const STATUS_STOPPED: &str = r#"{"Name":"minikube","Host":"Stopped","Kubelet":"Stopped","APIServer":"Stopped","Kubeconfig":"Stopped","Worker":false}"#;
const START: &str = "minikube start --cpus=2 --memory=4096mb --addons=ingress --addons=metrics-server";
/// The same, as the stand-in sees its arguments.
const START_ARGS: &str = "start --cpus=2 --memory=4096mb --addons=ingress --addons=metrics-server";

/// `cargo xtask up` of the fixture's images, without the smoke checks.
fn up(standins: &StandIns, programs: &[Program]) -> Run {
    let images = fixture_path("images.json").display().to_string();
    let diagnostics = standins.scratch("diagnostics").display().to_string();
    xtask(
        standins,
        programs,
        &[
            "up",
            "--no-smoke",
            "--images",
            &images,
            "--diagnostics-dir",
            &diagnostics,
        ],
    )
}

// ---------------------------------------------------------------------------------------------
// up

#[test]
fn up_starts_a_stopped_minikube_with_the_recommended_settings_then_deploys() {
    let standins = StandIns::new();
    let programs = change(healthy(), "minikube", |minikube| {
        minikube
            .on(
                "status -o json -p minikube",
                Reply::fail(7, "").with_stdout(STATUS_STOPPED),
            )
            .on(
                START_ARGS,
                Reply::ok("* Done! kubectl is now configured to use \"minikube\" cluster\n"),
            )
    });
    let run = up(&standins, &programs);
    assert_eq!(run.code, 0, "stderr:\n{}", run.stderr);
    assert!(
        run.stderr.contains(&format!(
            "Minikube (minikube) is not running (host Stopped, kubelet Stopped, apiserver Stopped): starting it with \
             the recommended settings (as `cargo xtask doctor` advises): {START}"
        )),
        "{}",
        run.stderr
    );
    assert_in_order(
        &standins.invocations(),
        &[
            "minikube status -o json -p minikube",
            START,
            "helm version --short",
            "minikube image ls --format json -p minikube",
        ],
    );
    assert!(
        standins
            .invocations()
            .iter()
            .any(|line| line.starts_with("helm upgrade --install todo helm")),
        "up deploys"
    );
    // Minikube's own chatter goes to stderr; stdout is the deploy's result.
    assert!(
        run.stdout.starts_with("deployed release todo revision 3"),
        "{}",
        run.stdout
    );

    // Running already: not started again.
    let standins = StandIns::new();
    let run = up(&standins, &healthy());
    assert_eq!(run.code, 0, "stderr:\n{}", run.stderr);
    assert_never(&standins.invocations(), "minikube start");
    assert!(run.stderr.contains("Minikube (minikube) is running"), "{}", run.stderr);
}

#[test]
fn up_creates_the_minikube_cluster_when_there_is_none() {
    let standins = StandIns::new();
    let programs = change(healthy(), "minikube", |minikube| {
        minikube
            .on(
                "status -o json -p minikube",
                Reply::fail(85, "").with_stdout(
                    r#"{"specversion":"1.0","id":"4b1e5a2c","source":"https://minikube.sigs.k8s.io/","type":"io.k8s.sigs.minikube.info","datacontenttype":"application/json","data":{"message":"Profile \"minikube\" not found. Run \"minikube profile list\" to view all profiles."}}"#,
                ),
            )
            .on(START_ARGS, Reply::ok(""))
    });
    let programs = change(programs, "kubectl", |kubectl| {
        kubectl.on_each(
            "config current-context --request-timeout=5s",
            vec![
                Reply::fail(1, "error: current-context is not set\n"),
                Reply::ok("minikube\n"),
            ],
        )
    });
    let run = up(&standins, &programs);
    assert_eq!(run.code, 0, "stderr:\n{}", run.stderr);
    assert!(
        run.stderr
            .contains("Minikube (minikube) has no cluster yet: starting it"),
        "{}",
        run.stderr
    );
    assert_in_order(
        &standins.invocations(),
        &[START, "kubectl config current-context --request-timeout=5s"],
    );
}

#[test]
fn up_leaves_minikube_alone_when_another_local_cluster_is_current() {
    let standins = StandIns::new();
    let programs = change(healthy(), "kubectl", |kubectl| {
        kubectl.on("config current-context --request-timeout=5s", Reply::ok("kind-dev\n"))
    });
    let images = fixture_path("images.json").display().to_string();
    let run = xtask(
        &standins,
        &programs,
        &["up", "--images", &images, "--dry-run", "--no-smoke"],
    );
    assert!(
        run.stderr
            .contains("kube context kind-dev is kind cluster \"dev\": not starting Minikube"),
        "{}",
        run.stderr
    );
    assert_never(&standins.invocations(), "minikube status");
    assert_never(&standins.invocations(), "minikube start");
}

// ---------------------------------------------------------------------------------------------
// uninstall

fn with_manifest(manifest: &str) -> Vec<Program> {
    let manifest = fixture(manifest);
    change(healthy(), "helm", |helm| {
        helm.on(&helm_args("get manifest todo"), Reply::ok(manifest))
            .on(&format!("{}*", helm_args("uninstall todo")), Reply::ok("These resources were kept due to the resource policy:\n[PersistentVolumeClaim] todo-backend\n\nrelease \"todo\" uninstalled\n"))
    })
}

#[test]
fn uninstall_keeps_the_data_and_the_secret() {
    let standins = StandIns::new();
    let run = xtask(&standins, &with_manifest("helm-manifest-keep.yaml"), &["uninstall"]);
    assert_eq!(run.code, 0, "stderr:\n{}", run.stderr);
    let invocations = standins.invocations();
    assert_in_order(
        &invocations,
        &[
            &format!("helm {} --max 256 -o json", helm_args("history todo")),
            &format!("helm {}", helm_args("get manifest todo")),
            &format!(
                "kubectl {}",
                query("get persistentvolumeclaims -l app.kubernetes.io/instance=todo -o json")
            ),
            &format!("helm {} --wait --timeout 180s", helm_args("uninstall todo")),
        ],
    );
    assert_never(&invocations, &format!("kubectl {}", write("delete")));
    assert_kubectl_is_explicit(&invocations);
    assert_eq!(
        run.stdout,
        "release todo uninstalled from namespace todo; kept the data (PersistentVolumeClaim todo-backend) and Secret \
         todo-secrets. `cargo xtask deploy` picks them up again; `cargo xtask uninstall --purge` deletes them\n"
    );
}

#[test]
fn uninstall_refuses_when_helm_would_delete_the_data() {
    let standins = StandIns::new();
    let run = xtask(
        &standins,
        &with_manifest("helm-manifest-without-keep.yaml"),
        &["uninstall"],
    );
    assert_eq!(run.code, 1, "stderr:\n{}", run.stderr);
    assert_eq!(
        run.stderr.lines().last().unwrap(),
        "error: helm uninstall would delete the data in PersistentVolumeClaim todo-backend (release todo was \
         deployed with database.sqlite.keepOnUninstall=false). Nothing was changed. To keep the data, deploy once \
         with --set database.sqlite.keepOnUninstall=true and uninstall again; to delete it, use --purge"
    );
    assert_never(&standins.invocations(), "helm uninstall");
}

#[test]
fn purge_asks_first_then_deletes_the_data_and_the_secret() {
    // No terminal to confirm on, no --yes: nothing happens.
    let standins = StandIns::new();
    let run = xtask(
        &standins,
        &with_manifest("helm-manifest-keep.yaml"),
        &["uninstall", "--purge"],
    );
    assert_eq!(run.code, 1, "stderr:\n{}", run.stderr);
    assert_eq!(
        run.stderr.lines().last().unwrap(),
        "error: --purge deletes its data (PersistentVolumeClaim todo-backend) and Secret todo-secrets of release \
         todo; with no terminal to confirm on, pass --yes"
    );
    assert_never(&standins.invocations(), "helm uninstall");
    assert_never(&standins.invocations(), &format!("kubectl {}", write("delete")));

    let standins = StandIns::new();
    let programs = change(with_manifest("helm-manifest-keep.yaml"), "kubectl", |kubectl| {
        kubectl
            .on(
                &write("delete persistentvolumeclaim todo-backend --ignore-not-found --timeout=120s"),
                Reply::ok("persistentvolumeclaim \"todo-backend\" deleted\n"),
            )
            .on(
                &write("delete secret todo-secrets --ignore-not-found"),
                Reply::ok("secret \"todo-secrets\" deleted\n"),
            )
    });
    let run = xtask(&standins, &programs, &["uninstall", "--purge", "--yes"]);
    assert_eq!(run.code, 0, "stderr:\n{}", run.stderr);
    assert_in_order(
        &standins.invocations(),
        &[
            &format!("helm {} --wait --timeout 180s", helm_args("uninstall todo")),
            &format!(
                "kubectl {}",
                write("delete persistentvolumeclaim todo-backend --ignore-not-found --timeout=120s")
            ),
            &format!("kubectl {}", write("delete secret todo-secrets --ignore-not-found")),
        ],
    );
    assert!(
        run.stdout
            .starts_with("release todo purged: deleted the release, its data"),
        "{}",
        run.stdout
    );

    // A dry run asks nothing and changes nothing.
    let standins = StandIns::new();
    let run = xtask(&standins, &programs, &["uninstall", "--purge", "--dry-run"]);
    assert_eq!(run.code, 0, "stderr:\n{}", run.stderr);
    assert!(
        run.stdout.starts_with(&format!(
            "$ helm {} --wait --timeout 180s\n$ kubectl {}\n$ kubectl {}\n",
            helm_args("uninstall todo"),
            write("delete persistentvolumeclaim todo-backend --ignore-not-found --timeout=120s"),
            write("delete secret todo-secrets --ignore-not-found")
        )),
        "{}",
        run.stdout
    );
    assert_never(&standins.invocations(), "helm uninstall");
    assert_never(&standins.invocations(), &format!("kubectl {}", write("delete")));
}

// ---------------------------------------------------------------------------------------------
// status, history, rollback, logs

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

// ---------------------------------------------------------------------------------------------
// secrets

fn secrets(standins: &StandIns, programs: &[Program], args: &[&str], env: &[(&str, &str)]) -> Run {
    standins.install_all(programs);
    let mut command = standins.command(env!("CARGO_BIN_EXE_xtask"));
    command.arg("secrets").args(args);
    for (name, value) in env {
        command.env(name, value);
    }
    run(&mut command)
}

#[test]
fn secrets_creates_the_secret_from_the_environment_on_stdin_only() {
    let key = "sk-live-Aa11Bb22Cc33Dd44";
    let standins = StandIns::new();
    let programs = change(healthy(), "kubectl", |kubectl| {
        kubectl
            .on(
                &query("get secret todo-secrets -o json"),
                not_found("secrets \"todo-secrets\""),
            )
            .on(
                &write("create -f -"),
                Reply::ok("secret/todo-secrets created\n").recording_stdin(),
            )
    });
    let run = secrets(
        &standins,
        &programs,
        &["--openai-key-from-env"],
        &[("OPENAI_API_KEY", key)],
    );
    assert_eq!(run.code, 0, "stderr:\n{}", run.stderr);
    assert_eq!(
        run.stdout,
        "Secret todo-secrets created in namespace todo with keys: JWT_SECRET, OPENAI_API_KEY\n"
    );
    let manifest: Value = serde_json::from_str(standins.stdin_log().trim()).unwrap();
    assert_eq!(manifest["stringData"]["OPENAI_API_KEY"], key);
    assert_eq!(manifest["stringData"]["JWT_SECRET"].as_str().unwrap().len(), 64);
    let invocations = standins.invocations().join("\n");
    for (what, text) in [("stdout", &run.stdout), ("stderr", &run.stderr), ("argv", &invocations)] {
        assert!(!text.contains(key), "{what} shows the key");
    }
    // Nothing ran the pods yet: nothing to restart.
    assert_never(&standins.invocations(), &format!("kubectl {}", write("rollout")));
}

#[test]
fn rotating_the_jwt_secret_patches_it_on_stdin_and_restarts_the_deployments() {
    let standins = StandIns::new();
    let programs = change(healthy(), "kubectl", |kubectl| {
        kubectl
            .on(
                &write("patch secret todo-secrets --type=merge --patch-file=/dev/stdin"),
                Reply::ok("secret/todo-secrets patched\n").recording_stdin(),
            )
            .on(
                &query("get deployments -l app.kubernetes.io/instance=todo -o name"),
                Reply::ok("deployment.apps/todo-backend\ndeployment.apps/todo-frontend\n"),
            )
            .on(
                &write("rollout restart deployment.apps/todo-backend deployment.apps/todo-frontend"),
                Reply::ok("deployment.apps/todo-backend restarted\ndeployment.apps/todo-frontend restarted\n"),
            )
    });
    let run = secrets(&standins, &programs, &["--rotate-jwt"], &[]);
    assert_eq!(run.code, 0, "stderr:\n{}", run.stderr);
    assert_in_order(
        &standins.invocations(),
        &[
            &format!("kubectl {}", query("get secret todo-secrets -o json")),
            &format!(
                "kubectl {}",
                write("patch secret todo-secrets --type=merge --patch-file=/dev/stdin")
            ),
            &format!(
                "kubectl {}",
                write("rollout restart deployment.apps/todo-backend deployment.apps/todo-frontend")
            ),
        ],
    );
    let patch: Value = serde_json::from_str(standins.stdin_log().trim()).unwrap();
    let fresh = patch["stringData"]["JWT_SECRET"].as_str().unwrap();
    assert_eq!(fresh.len(), 64);
    assert_ne!(
        fresh,
        crate::support::cluster::SECRET_VALUES[0],
        "a rotation makes a new secret"
    );
    assert_eq!(
        patch["stringData"].as_object().unwrap().len(),
        1,
        "only the rotated key is sent"
    );
    assert_eq!(run.stdout, "Secret todo-secrets in namespace todo: set JWT_SECRET\n");
    assert_no_secret("stderr", &run.stderr);
    assert!(!run.stderr.contains(fresh) && !run.stdout.contains(fresh));
}

#[test]
fn secrets_fail_without_the_value_and_change_nothing_when_up_to_date() {
    let standins = StandIns::new();
    let run = secrets(&standins, &healthy(), &["--database-url-from-env"], &[]);
    assert_eq!(run.code, 1);
    assert_eq!(
        run.stderr.lines().last().unwrap(),
        "error: DATABASE_URL is not set in the environment"
    );
    assert!(
        standins
            .invocations()
            .iter()
            .all(|line| !line.contains(" patch ") && !line.contains(" create "))
    );

    let standins = StandIns::new();
    let run = secrets(
        &standins,
        &healthy(),
        &["--database-url-from-env"],
        &[(
            "DATABASE_URL",
            "postgres://todo:hunter2-db-pass@db.example.com:5432/todo",
        )],
    );
    assert_eq!(run.code, 0, "stderr:\n{}", run.stderr);
    assert_eq!(
        run.stdout,
        "Secret todo-secrets in namespace todo is up to date (keys: DATABASE_URL, JWT_SECRET, OPENAI_API_KEY)\n"
    );
    assert_never(&standins.invocations(), &format!("kubectl {}", write("patch")));

    let standins = StandIns::new();
    let run = secrets(&standins, &healthy(), &["--prompt", "OPENAI_API_KEY"], &[]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr
            .lines()
            .last()
            .unwrap()
            .starts_with("error: cannot ask for OPENAI_API_KEY: stdin is not a terminal"),
        "{}",
        run.stderr
    );
}
