//! `cargo xtask up`, `status`, `logs`, `rollback`, `history`, `uninstall` and `secrets` end to
//! end: the real binary with stand-ins for minikube, kubectl and helm alone on PATH, asserting the
//! commands run, what is printed, and that secret values appear nowhere.

mod inspect;
mod secrets;
mod uninstall;

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
