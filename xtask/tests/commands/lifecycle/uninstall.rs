//! `cargo xtask uninstall`: the data and the Secret are kept unless `--purge`, which asks first.

use super::*;
use crate::support::cluster::{assert_purged, purge_deletes};

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
    let programs = purge_deletes(with_manifest("helm-manifest-keep.yaml"));
    let run = xtask(&standins, &programs, &["uninstall", "--purge", "--yes"]);
    assert_eq!(run.code, 0, "stderr:\n{}", run.stderr);
    assert_purged(&standins.invocations());
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
