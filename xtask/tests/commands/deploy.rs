//! `cargo xtask deploy` end to end: the real binary, with stand-ins for minikube, kubectl, helm,
//! kind, k3d, podman and docker first (and alone) on PATH. Each scenario asserts the commands and
//! their order, what is printed, the exit code and, for failures, the diagnosis, the fix, the
//! diagnostics bundle and that no secret value appears anywhere.

use std::{fs, path::Path};

use crate::support::{
    cluster::{
        BACKEND_IMAGE, BACKEND_POD, CANCELLED, EMPTY_LIST, FRONTEND_IMAGE, assert_in_order, assert_kubectl_is_explicit,
        assert_never, assert_no_secret, change, deployed_release_in, fixture, fixture_path, healthy, helm_args,
        not_found, query, write, xtask,
    },
    standins::{Program, Reply, Run, StandIns},
};
use serde_json::Value;

const BACKEND_ID: &str = "9f4c2b7e1d3a5c8e0b6f4a2d9c7e5b3a1f8d6c4e2a0b9d7f5e3c1a8b6d4f2e0a";
const GIT_SHA: &str = "4b825dc642cb6eb9a060e54bf8d69288fbee4904";

/// The upgrade as deploy runs it with the fixture's images, ending with Helm's `flags`.
fn upgrade(flags: &str) -> String {
    format!(
        "helm {} --values helm/values-dev.yaml --set-string backend.image.repository=todo-backend --set-string \
         backend.image.tag=3f2a9c1b7d4e --set-string frontend.image.repository=todo-frontend --set-string \
         frontend.image.tag=8e1d2c3b4a5f --set-string backend.gitSha={GIT_SHA} {flags} --cleanup-on-fail --timeout 180s",
        helm_args("upgrade --install todo helm")
    )
}

/// The upgrade with Helm 3's flags.
pub(crate) fn upgrade_helm3() -> String {
    upgrade("--wait --atomic")
}

/// `deploy --no-smoke` of the fixture's images (plus `extra` arguments), diagnostics kept in the
/// stand-ins' folder.
pub(crate) fn deploy(standins: &StandIns, programs: &[Program], extra: &[&str]) -> Run {
    let images = fixture_path("images.json").display().to_string();
    let diagnostics = standins.scratch("diagnostics").display().to_string();
    let mut args = vec![
        "deploy",
        "--no-smoke",
        "--images",
        &images,
        "--diagnostics-dir",
        &diagnostics,
    ];
    args.extend(extra);
    xtask(standins, programs, &args)
}

/// A copy of the image record built with `engine`, in the stand-ins' folder.
fn record_built_with(standins: &StandIns, engine: &str) -> String {
    let mut record: Value = serde_json::from_str(&fixture("images.json")).unwrap();
    record["engine"] = engine.into();
    let path = standins.scratch("record").join("images.json");
    fs::write(&path, record.to_string()).unwrap();
    path.display().to_string()
}

// ---------------------------------------------------------------------------------------------
// Images

#[test]
fn missing_images_are_loaded_and_verified_before_the_upgrade_with_the_built_tags() {
    let standins = StandIns::new();
    let programs = change(healthy(), "minikube", |minikube| {
        minikube.on_each(
            "image ls --format json -p minikube",
            vec![
                Reply::ok(fixture("minikube-image-ls-without-ours.json")),
                Reply::ok(fixture("minikube-image-ls-with-ours.json")),
            ],
        )
    });
    let run = deploy(&standins, &programs, &[]);
    assert_eq!(run.code, 0, "stderr:\n{}", run.stderr);
    let archive = |image: &str| {
        fixture_path(&format!("{}.tar", image.replace(':', "-")))
            .display()
            .to_string()
    };
    let invocations = standins.invocations();
    assert_in_order(
        &invocations,
        &[
            "kubectl config current-context --request-timeout=5s",
            "helm version --short",
            &format!("kubectl {}", query("get nodes -o json")),
            "minikube image ls --format json -p minikube",
            &format!("podman tag {BACKEND_IMAGE} docker.io/library/{BACKEND_IMAGE}"),
            &format!(
                "podman save -o {} docker.io/library/{BACKEND_IMAGE}",
                archive(BACKEND_IMAGE)
            ),
            &format!("minikube image load {} -p minikube", archive(BACKEND_IMAGE)),
            &format!("podman tag {FRONTEND_IMAGE} docker.io/library/{FRONTEND_IMAGE}"),
            &format!(
                "podman save -o {} docker.io/library/{FRONTEND_IMAGE}",
                archive(FRONTEND_IMAGE)
            ),
            &format!("minikube image load {} -p minikube", archive(FRONTEND_IMAGE)),
            // Verified on the node before the release is touched.
            "minikube image ls --format json -p minikube",
            &format!("kubectl {}", query("get namespace todo -o json")),
            &format!("kubectl {}", query("get secret todo-secrets -o json")),
            &format!("helm {} --max 256 -o json", helm_args("history todo")),
            &upgrade_helm3(),
        ],
    );
    assert_kubectl_is_explicit(&invocations);
    assert!(
        run.stderr.contains(&format!(
            "{BACKEND_IMAGE} (id 9f4c2b7e1d3a) is not on minikube: loading it"
        )),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("verified: node minikube holds exactly the images built")
    );
    assert_eq!(
        run.stdout,
        format!(
            "deployed release todo revision 3 to minikube (namespace todo)\n  backend   {BACKEND_IMAGE}  1/1 pods \
             ready\n  frontend  {FRONTEND_IMAGE}  2/2 pods ready\n  open      http://192.168.49.2:30000/\n"
        )
    );
    assert_no_secret("stdout", &run.stdout);
    assert_no_secret("stderr", &run.stderr);
}

#[test]
fn images_the_node_already_holds_are_not_loaded_but_another_build_under_the_same_tag_is() {
    let standins = StandIns::new();
    let run = deploy(&standins, &healthy(), &["--json"]);
    assert_eq!(run.code, 0, "stderr:\n{}", run.stderr);
    let invocations = standins.invocations();
    assert_never(&invocations, "minikube image load");
    assert_never(&invocations, "podman");
    assert!(invocations.contains(&upgrade_helm3()), "{invocations:#?}");
    let outcome: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(outcome["ok"], true);
    assert_eq!(outcome["revision"], 3);
    assert_eq!(outcome["images"][0]["reference"], BACKEND_IMAGE);
    assert_eq!(outcome["images"][0]["loaded"], false);
    assert_eq!(outcome["url"], "http://192.168.49.2:30000/");

    // The node holds `todo-backend:<tag>`, but not this build of it: the ID decides.
    let standins = StandIns::new();
    let stale = fixture("minikube-image-ls-with-ours.json").replace(BACKEND_ID, &BACKEND_ID.replace('9', "8"));
    let programs = change(healthy(), "minikube", |minikube| {
        minikube.on_each(
            "image ls --format json -p minikube",
            vec![Reply::ok(stale), Reply::ok(fixture("minikube-image-ls-with-ours.json"))],
        )
    });
    let run = deploy(&standins, &programs, &[]);
    assert_eq!(run.code, 0, "stderr:\n{}", run.stderr);
    let invocations = standins.invocations();
    let loads: Vec<&String> = invocations
        .iter()
        .filter(|line| line.starts_with("minikube image load"))
        .collect();
    assert_eq!(loads.len(), 1, "{loads:?}");
    assert!(loads[0].contains("todo-backend-3f2a9c1b7d4e.tar"), "{loads:?}");
}

#[test]
fn an_image_that_does_not_arrive_stops_the_deploy_before_the_release_is_touched() {
    let standins = StandIns::new();
    let programs = change(healthy(), "minikube", |minikube| {
        minikube.on(
            "image ls --format json -p minikube",
            Reply::ok(fixture("minikube-image-ls-without-ours.json")),
        )
    });
    let run = deploy(&standins, &programs, &[]);
    assert_eq!(run.code, 1, "stderr:\n{}", run.stderr);
    let invocations = standins.invocations();
    assert_never(&invocations, "helm upgrade");
    for change in ["create", "label", "patch"] {
        assert_never(&invocations, &format!("kubectl {}", write(change)));
    }
    let error = run.stderr.lines().last().unwrap();
    assert!(
        error.starts_with(&format!(
            "error: step `images into the cluster` failed: after loading, node minikube still does not hold \
             {BACKEND_IMAGE} (id {BACKEND_ID}); nothing was deployed. Load it by hand: podman tag"
        )),
        "{error}"
    );
}

#[test]
fn docker_built_images_go_to_kind_by_name() {
    let standins = StandIns::new();
    let record = record_built_with(&standins, "docker");
    let crictl = |with_ours: bool| {
        let mut images = vec![
            serde_json::json!({"id": "sha256:873ed75102791e5b0b8a7fcd41606c92fcec98d56d05ead4ac5131650004c136", "repoTags": ["registry.k8s.io/pause:3.10"], "repoDigests": [], "size": "320368", "uid": null, "username": "", "spec": null, "pinned": true}),
        ];
        if with_ours {
            let listed: Value = serde_json::from_str(&fixture("minikube-image-ls-with-ours.json")).unwrap();
            for image in listed.as_array().unwrap().iter().skip(3) {
                images.push(serde_json::json!({"id": format!("sha256:{}", image["id"].as_str().unwrap()), "repoTags": image["repoTags"], "repoDigests": [], "size": image["size"], "uid": {"value": "65532"}, "username": "", "spec": null, "pinned": false}));
            }
        }
        Reply::ok(serde_json::json!({ "images": images }).to_string())
    };
    let programs = vec![
        Program::new("kind")
            .on("get nodes --name dev", Reply::ok("dev-control-plane\n"))
            .on("load docker-image * --name dev", Reply::ok("")),
        Program::new("docker")
            .on_each(
                "exec dev-control-plane crictl images -o json",
                vec![crictl(false), crictl(false), crictl(true)],
            )
            .on(
                "inspect --format {{ index .Config.Labels \"io.x-k8s.kind.role\"}} dev-control-plane",
                Reply::ok("control-plane\n"),
            )
            // The record predates config digests: `docker save`'s manifest.json names them.
            .on("save -o * todo-*", Reply::ok("")),
        Program::new("tar")
            .on(
                "-xOf *todo-backend* manifest.json",
                Reply::ok(fixture("real-cluster/image-identity/docker-save-containerd/manifest.json")),
            )
            .on(
                "-xOf *todo-frontend* manifest.json",
                Reply::ok(r#"[{"Config":"blobs/sha256/2e7d9a4c6b1f3e8d0a5c7b9e2f4d6a8c1e3b5d7f9a0c2e4b6d8f1a3c5e7b9d0f","RepoTags":["todo-frontend:8e1d2c3b4a5f"],"Layers":[]}]"#),
            ),
    ];
    let programs = [programs, deployed_release_in("kind-dev").to_vec()].concat();
    let run = xtask(
        &standins,
        &programs,
        &["deploy", "--no-smoke", "--images", &record, "--dry-run"],
    );
    assert_eq!(run.code, 0, "stderr:\n{}", run.stderr);
    assert!(
        run.stdout.starts_with(&format!(
            "$ kind load docker-image {BACKEND_IMAGE} --name dev\n$ kind load docker-image {FRONTEND_IMAGE} --name dev\n$ helm upgrade --install todo helm --kube-context kind-dev"
        )),
        "{}",
        run.stdout
    );
    assert_never(&standins.invocations(), "podman");
}

#[test]
fn podman_built_images_go_to_k3d_as_archives() {
    let standins = StandIns::new();
    let programs = vec![
        Program::new("k3d").on("image import * -c demo", Reply::ok("")),
        Program::new("docker")
            .on(
                "ps --filter label=k3d.cluster=demo --format {{.Names}} {{.Label \"k3d.role\"}}",
                Reply::ok("k3d-demo-serverlb loadbalancer\nk3d-demo-server-0 server\n"),
            )
            .on(
                "exec k3d-demo-server-0 crictl images -o json",
                Reply::ok(r#"{"images":[]}"#),
            ),
        Program::new("podman")
            .on("tag * docker.io/library/*", Reply::ok(""))
            .on("save -o * docker.io/library/*", Reply::ok("")),
    ];
    let programs = [programs, deployed_release_in("k3d-demo").to_vec()].concat();
    let images = fixture_path("images.json").display().to_string();
    let run = xtask(
        &standins,
        &programs,
        &["deploy", "--no-smoke", "--images", &images, "--dry-run"],
    );
    assert_eq!(run.code, 0, "stderr:\n{}", run.stderr);
    let archive = fixture_path("todo-backend-3f2a9c1b7d4e.tar").display().to_string();
    assert!(
        run.stdout.starts_with(&format!(
            "$ podman tag {BACKEND_IMAGE} docker.io/library/{BACKEND_IMAGE}\n$ podman save -o {archive} docker.io/library/{BACKEND_IMAGE}\n$ k3d image import {archive} -c demo\n"
        )),
        "{}",
        run.stdout
    );
}

// ---------------------------------------------------------------------------------------------
// Preflight

#[test]
fn a_context_that_is_not_local_is_refused_unless_named_and_then_needs_a_registry() {
    let remote = "gke_acme-prod_europe-west1_main";
    let standins = StandIns::new();
    let programs = change(healthy(), "kubectl", |kubectl| {
        kubectl.on(
            "config current-context --request-timeout=5s",
            Reply::ok(format!("{remote}\n")),
        )
    });
    let run = deploy(&standins, &programs, &[]);
    assert_eq!(run.code, 1, "stderr:\n{}", run.stderr);
    assert_eq!(
        run.stderr.lines().last().unwrap(),
        format!(
            "error: step `preflight: kube context and Helm` failed: refusing to change the cluster of kube context \
             `{remote}`: it is not a local cluster (minikube, kind-*, k3d-*, docker-desktop, rancher-desktop). Switch \
             with `kubectl config use-context minikube`, or name it with --kube-context {remote} if you really mean \
             to deploy there"
        )
    );
    assert_eq!(
        standins.invocations(),
        [
            "kubectl config current-context --request-timeout=5s",
            "minikube profile list -o json"
        ]
    );

    // Named explicitly, it passes preflight; but its nodes cannot see this machine's images.
    let standins = StandIns::new();
    let [remote_kubectl, _] = deployed_release_in(remote);
    let programs = change(healthy(), "kubectl", |_| remote_kubectl);
    let run = deploy(&standins, &programs, &["--kube-context", remote]);
    assert_eq!(run.code, 1, "stderr:\n{}", run.stderr);
    assert!(
        run.stderr.contains(&format!(
            "error: kube context {remote} is not a local cluster, so it cannot see this machine's images: deploy with \
             --push --registry <registry>"
        )),
        "{}",
        run.stderr
    );
    let invocations = standins.invocations();
    assert_never(&invocations, "helm upgrade");
    assert_never(&invocations, "minikube image");
}

#[test]
fn helm_3_and_helm_4_get_their_own_flags() {
    for (version, flags) in [
        ("v3.17.2+gcc0bbbd", "--wait --atomic --cleanup-on-fail --timeout 180s"),
        (
            "v4.3.1",
            "--wait=watcher --rollback-on-failure --cleanup-on-fail --timeout 180s",
        ),
    ] {
        let standins = StandIns::new();
        let programs = change(healthy(), "helm", |helm| {
            helm.on("version --short", Reply::ok(format!("{version}\n")))
        });
        let run = deploy(&standins, &programs, &["--dry-run"]);
        assert_eq!(run.code, 0, "stderr:\n{}", run.stderr);
        let upgrade = run.stdout.lines().last().unwrap();
        assert!(upgrade.starts_with("$ helm upgrade --install todo helm"), "{upgrade}");
        assert!(upgrade.ends_with(flags), "Helm {version}: {upgrade}");
    }
}

// ---------------------------------------------------------------------------------------------
// A release left pending

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

// ---------------------------------------------------------------------------------------------
// Failing fast, with the reason, the fix and a bundle

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

// ---------------------------------------------------------------------------------------------
// The smoke checks' port-forwards

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

// ---------------------------------------------------------------------------------------------
// The reviewed dry run

#[test]
fn a_dry_run_prints_the_reviewed_command_list_and_changes_nothing() {
    let standins = StandIns::new();
    let programs = change(healthy(), "minikube", |minikube| {
        minikube.on(
            "image ls --format json -p minikube",
            Reply::ok(fixture("minikube-image-ls-without-ours.json")),
        )
    });
    let programs = change(programs, "kubectl", |kubectl| {
        kubectl
            .on(&query("get namespace todo -o json"), not_found("namespaces \"todo\""))
            .on(
                &query("get secret todo-secrets -o json"),
                not_found("namespaces \"todo\""),
            )
    });
    let programs = change(programs, "helm", |helm| {
        helm.on(
            &format!("{} --max 256 -o json", helm_args("history todo")),
            Reply::fail(1, "Error: release: not found\n"),
        )
    });
    let run = deploy(&standins, &programs, &["--dry-run"]);
    assert_eq!(run.code, 0, "stderr:\n{}", run.stderr);
    let record_dir = fixture_path("").display().to_string();
    let printed = run.stdout.replace(record_dir.trim_end_matches('/'), "<fixtures>");
    assert_eq!(printed, fixture("deploy-dry-run.txt"));
    // Only queries ran.
    let invocations = standins.invocations();
    for line in &invocations {
        let read_only = line.starts_with("kubectl config current-context")
            || line.starts_with(&format!("kubectl {}", query("get ")))
            || *line == format!("kubectl {}", query("version -o json"))
            || line == "helm version --short"
            || line.starts_with("helm history ")
            || line.starts_with("minikube image ls ")
            || line.starts_with("minikube node list ");
        assert!(read_only, "a dry run ran `{line}`");
    }
}
