//! `cargo xtask dev --purge`: on Ctrl-C the release goes, and its data and Secret with it,
//! without asking (the flag is the answer), in uninstall's order.

use super::*;
use crate::support::cluster::{assert_in_order, write};

#[test]
fn purge_uninstalls_and_deletes_the_data_and_the_secret_on_ctrl_c() {
    let (standins, project) = (StandIns::new(), Project::new());
    let programs = change(cluster(&standins, &project), "helm", |helm| {
        helm.on(
            &helm_args("get manifest todo"),
            Reply::ok(fixture("helm-manifest-keep.yaml")),
        )
        .on(
            &format!("{}*", helm_args("uninstall todo")),
            Reply::ok("release \"todo\" uninstalled\n"),
        )
    });
    let programs = change(programs, "kubectl", |kubectl| {
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
    let session = Session::start(&standins, &project, &programs, &["--purge", "--no-logs"]);
    // Nothing is removed while the loop runs.
    assert!(calls(&standins, "helm uninstall").is_empty());
    let (code, stderr) = session.interrupt();
    assert_eq!(code, 0, "{stderr}");
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
    assert!(stderr.contains("release todo purged"), "{stderr}");
}
