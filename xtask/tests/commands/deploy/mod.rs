//! `cargo xtask deploy` end to end: the real binary, with stand-ins for minikube, kubectl, helm,
//! kind, k3d, podman and docker first (and alone) on PATH. Each scenario asserts the commands and
//! their order, what is printed, the exit code and, for failures, the diagnosis, the fix, the
//! diagnostics bundle and that no secret value appears anywhere.

mod failures;
mod images;
mod port_forwards;
mod release;

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
