//! `cargo xtask deploy`'s preflight against what real clusters report (issue 12, items 8, 9, 10
//! and 12; fixtures under `fixtures/real-cluster/`, cited in its SOURCES.md): the server's
//! Kubernetes version against the chart's `kubeVersion`, development values only on local
//! clusters, the nodes' architecture carried into the build, and a Helm binary that cannot run on
//! this machine.

use std::{fs, os::unix::fs::PermissionsExt, path::PathBuf};

use serde_json::Value;

use crate::support::{
    cluster::{assert_never, change, deployed_release_in, fixture, fixture_path, healthy, query, without, xtask},
    standins::{Program, Reply, Run, StandIns, run},
};

/// `deploy --dry-run` (plus `extra`), diagnostics kept in the stand-ins' folder.
fn dry_run(standins: &StandIns, programs: &[Program], extra: &[&str]) -> Run {
    let diagnostics = standins.scratch("diagnostics").display().to_string();
    let mut args = vec!["deploy", "--dry-run", "--no-smoke", "--diagnostics-dir", &diagnostics];
    args.extend(extra);
    xtask(standins, programs, &args)
}

/// The fixture's image record (`images.json`, built for amd64).
fn record() -> String {
    fixture_path("images.json").display().to_string()
}

// ---------------------------------------------------------------------------------------------
// Item 8: kubeVersion

#[test]
fn a_cluster_older_than_the_charts_kube_version_is_refused_before_anything_is_built() {
    // kind v0.22's default node (v1.29.2) and k3d 5.6's k3s (v1.27.4+k3s1): SOURCES.md item 8.
    for (context, version_fixture, server, fix) in [
        (
            "kind-dev",
            "kubectl-version-kind-v0.22.json",
            "v1.29.2",
            "kind create cluster --name dev --image kindest/node:",
        ),
        (
            "k3d-demo",
            "kubectl-version-k3s-v1.27.json",
            "v1.27.4+k3s1",
            "k3d cluster create demo --image rancher/k3s:",
        ),
    ] {
        let standins = StandIns::new();
        let [kubectl, helm] = deployed_release_in(context);
        let query = format!("--context {context} --namespace todo --request-timeout=5s version -o json");
        let kubectl = kubectl.on(
            &query,
            Reply::ok(fixture(&format!("real-cluster/versions/{version_fixture}"))),
        );
        let programs = [
            kubectl,
            helm,
            Program::new("podman"),
            Program::new("kind"),
            Program::new("k3d"),
        ];
        let run = dry_run(&standins, &programs, &[]);
        assert_eq!(run.code, 1, "{context}: stderr:\n{}", run.stderr);
        assert!(
            run.stderr.contains(&format!(
                "the cluster runs Kubernetes {server}, but the chart requires kubeVersion >=1.30.0-0 (helm/Chart.yaml)"
            )),
            "{context}: {}",
            run.stderr
        );
        assert!(run.stderr.contains(fix), "{context}: {}", run.stderr);
        // Refused before the build and the load: not even a dry run's command list was printed.
        assert!(!run.stderr.contains("==> build images"), "{context}: {}", run.stderr);
        assert_eq!(run.stdout, "", "{context}");
        let invocations = standins.invocations();
        assert!(invocations.contains(&format!("kubectl {query}")), "{invocations:?}");
        for never in ["kind ", "k3d ", "podman ", "helm upgrade"] {
            assert_never(&invocations, never);
        }
    }
}

#[test]
fn a_pre_release_server_version_meets_the_charts_dash_zero_requirement() {
    let standins = StandIns::new();
    let programs = change(healthy(), "kubectl", |kubectl| {
        kubectl.on(
            &query("version -o json"),
            Reply::ok(fixture("real-cluster/versions/kubectl-version-gke-v1.30.json")),
        )
    });
    let run = dry_run(&standins, &programs, &["--images", &record()]);
    assert_eq!(run.code, 0, "stderr:\n{}", run.stderr);
    assert!(
        run.stderr
            .contains("Kubernetes v1.30.0-gke.1 (the chart requires >=1.30.0-0)"),
        "{}",
        run.stderr
    );
}

// ---------------------------------------------------------------------------------------------
// Item 9: values-dev.yaml only where it belongs

/// A copy of the fixture's record whose images live in a registry (as `build-images --push` records).
fn pushed_record(standins: &StandIns) -> String {
    let mut record: Value = serde_json::from_str(&fixture("images.json")).unwrap();
    for image in record["images"].as_array_mut().unwrap() {
        let reference = format!("registry.example.com/team/{}", image["reference"].as_str().unwrap());
        image["reference"] = reference.into();
    }
    let path = standins.scratch("pushed").join("images.json");
    fs::write(&path, record.to_string()).unwrap();
    path.display().to_string()
}

#[test]
fn a_cluster_that_is_not_local_gets_the_charts_defaults_unless_dev_values_are_asked_for() {
    let remote = "gke_acme-prod_europe-west1_main";
    let dev_values = fixture_path("../../../helm/values-dev.yaml");
    let dev_values = dev_values.canonicalize().unwrap().display().to_string();
    let upgrade_of = |extra: &[&str]| {
        let standins = StandIns::new();
        let record = pushed_record(&standins);
        let mut args = vec![
            "--kube-context",
            remote,
            "--images",
            &record,
            "--push",
            "--registry",
            "registry.example.com/team",
        ];
        args.extend(extra);
        let run = dry_run(&standins, &deployed_release_in(remote), &args);
        assert_eq!(run.code, 0, "{extra:?}: stderr:\n{}", run.stderr);
        let upgrade = run.stdout.lines().last().unwrap().to_owned();
        assert!(upgrade.starts_with("$ helm upgrade --install todo helm"), "{upgrade}");
        (upgrade, run.stderr)
    };

    let (upgrade, stderr) = upgrade_of(&[]);
    assert!(!upgrade.contains("values-dev.yaml"), "{upgrade}");
    assert!(
        stderr.contains(
            "values: the chart's defaults only (helm/values.yaml); helm/values-dev.yaml is not applied to a deploy \
             with --push (--dev-values applies it)"
        ),
        "{stderr}"
    );

    let (upgrade, _) = upgrade_of(&["--dev-values"]);
    assert!(
        upgrade.contains(" --values helm/values-dev.yaml --set-string"),
        "{upgrade}"
    );

    let (upgrade, _) = upgrade_of(&["--values", &dev_values]);
    assert!(
        upgrade.contains(&format!(" --values {dev_values} --set-string")),
        "{upgrade}"
    );
}

// ---------------------------------------------------------------------------------------------
// Item 10: the nodes' architecture carried into the build

/// `healthy()` whose nodes are `nodes_json`.
fn with_nodes(nodes_json: String) -> Vec<Program> {
    change(healthy(), "kubectl", |kubectl| {
        kubectl.on(&query("get nodes -o json"), Reply::ok(nodes_json))
    })
}

#[test]
fn deploy_builds_for_the_nodes_architecture_and_a_record_for_another_gets_advice_that_ends_the_loop() {
    let arm64_nodes = fixture("real-cluster/arch/nodes-kind-arm64.json");
    let standins = StandIns::new();
    let run = dry_run(&standins, &with_nodes(arm64_nodes.clone()), &[]);
    assert_eq!(run.code, 0, "stderr:\n{}", run.stderr);
    assert!(
        run.stderr.contains("nodes: linux/arm64 (the images are built for it)"),
        "{}",
        run.stderr
    );
    let build = run.stdout.lines().next().unwrap();
    assert!(
        build.contains(" --platform linux/arm64 ")
            && build.ends_with(
                "cargo build --release --locked --target aarch64-unknown-linux-gnu --package backend --package frontend"
            ),
        "{build}"
    );

    // A record built for amd64: the advice names commands after which deploy does not rebuild
    // for the host again.
    let standins = StandIns::new();
    let run = dry_run(&standins, &with_nodes(arm64_nodes), &["--images", &record()]);
    assert_eq!(run.code, 1, "stderr:\n{}", run.stderr);
    let error = run.stderr.lines().last().unwrap();
    assert!(
        error.contains("are built for linux/amd64 but the cluster's nodes are linux/arm64: run `cargo xtask deploy` without --no-build/--images (it builds for the nodes), or `cargo xtask build-images --arch arm64` and then `cargo xtask deploy --no-build`"),
        "{error}"
    );
    assert_never(&standins.invocations(), "minikube image");
}

#[test]
fn nodes_of_several_architectures_are_refused_naming_them() {
    let mut nodes: Value = serde_json::from_str(&fixture("nodes.json")).unwrap();
    let arm64: Value = serde_json::from_str(&fixture("real-cluster/arch/nodes-kind-arm64.json")).unwrap();
    nodes["items"]
        .as_array_mut()
        .unwrap()
        .extend(arm64["items"].as_array().unwrap().iter().cloned());
    let standins = StandIns::new();
    let run = dry_run(&standins, &with_nodes(nodes.to_string()), &[]);
    assert_eq!(run.code, 1, "stderr:\n{}", run.stderr);
    assert!(
        run.stderr
            .contains("the cluster's nodes have several CPU architectures (amd64, arm64)"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("==> build images"), "{}", run.stderr);
}

// ---------------------------------------------------------------------------------------------
// Item 12: a Helm that is not a program for this machine

/// A 64-byte ELF64 header for a processor that is not this machine's (aarch64 here on x86_64,
/// x86-64 on aarch64), mode 755: `execve` refuses it with ENOEXEC (SOURCES.md item 12).
fn foreign_elf(standins: &StandIns) -> PathBuf {
    let machine: u16 = if std::env::consts::ARCH == "aarch64" { 62 } else { 183 };
    let mut header = vec![0x7f, b'E', b'L', b'F', 2, 1, 1, 0];
    header.resize(16, 0);
    header.extend(2u16.to_le_bytes()); // e_type: ET_EXEC
    header.extend(machine.to_le_bytes()); // e_machine
    header.extend(1u32.to_le_bytes()); // e_version
    header.extend(0x40_0000u64.to_le_bytes()); // e_entry
    header.extend(0u64.to_le_bytes()); // e_phoff
    header.extend(0u64.to_le_bytes()); // e_shoff
    header.extend(0u32.to_le_bytes()); // e_flags
    header.extend(64u16.to_le_bytes()); // e_ehsize
    header.extend(56u16.to_le_bytes()); // e_phentsize
    header.extend([0u8; 8]); // e_phnum, e_shentsize, e_shnum, e_shstrndx
    assert_eq!(header.len(), 64);
    let path = standins.scratch("foreign").join("helm");
    fs::write(&path, header).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    path
}

#[test]
fn a_helm_for_another_machine_is_explained_not_reported_as_an_exec_format_error() {
    let standins = StandIns::new();
    let helm = foreign_elf(&standins);
    standins.install_all(&without(healthy(), "helm"));
    let run = run(standins
        .command(env!("CARGO_BIN_EXE_xtask"))
        .args(["deploy", "--dry-run", "--no-smoke", "--images", &record()])
        .env("HELM4_BIN", &helm)
        .env("HELM3_BIN", &helm));
    assert_eq!(run.code, 1, "stderr:\n{}", run.stderr);
    let error = run.stderr.lines().last().unwrap();
    assert!(
        error.contains(&format!(
            "HELM4_BIN points at {}, which cannot be used: unset it, or point it at a Helm 4 for this machine \
             (https://helm.sh/docs/intro/install/ (Helm 3 or 4))",
            helm.display()
        )),
        "{error}"
    );
    assert!(
        error.contains("it is not a program for this machine (built for another processor or operating system)"),
        "{error}"
    );
    assert!(!run.stderr.contains("Exec format error"), "{}", run.stderr);
}
