//! `cargo xtask dev` (issue 15): a real edit in a small project of the real one's shape, the real
//! compiler and Podman, and stand-ins for the cluster's tools (see [`project`]). Each scenario
//! reads the loop's JSON line per cycle and asserts what reached the stand-in cluster.

mod project;
mod purge;
mod real_tree;
mod serving;

use std::time::Duration;

use serde_json::{Value, json};

use self::project::{Project, Session, cluster, forward, forward_pattern};
use crate::support::{
    cluster::{UPGRADED, assert_never, change, fixture, helm_args, xtask},
    standins::{Reply, StandIns},
};

/// The frontend's source in the project.
const FRONTEND: &str = "frontend/src/main.rs";
/// The backend's source in the project.
const BACKEND: &str = "backend/src/main.rs";

/// The invocations that start with `prefix`.
fn calls(standins: &StandIns, prefix: &str) -> Vec<String> {
    standins
        .invocations()
        .into_iter()
        .filter(|line| line.starts_with(prefix))
        .collect()
}

/// The `helm upgrade` invocations so far.
fn upgrades(standins: &StandIns) -> Vec<String> {
    calls(standins, "helm upgrade --install todo helm")
}

/// The `minikube image load` invocations so far.
fn loads(standins: &StandIns) -> Vec<String> {
    calls(standins, "minikube image load ")
}

/// Asserts the next cycle deployed a new frontend image, with the `upgrades`th `helm upgrade`.
fn assert_frontend_redeployed(session: &Session, standins: &StandIns, upgrades_by_now: usize) {
    let cycle = session.next_line();
    assert_eq!(cycle["outcome"], "deployed", "{cycle}");
    assert_eq!(cycle["loaded"], json!(["frontend"]));
    assert_eq!(upgrades(standins).len(), upgrades_by_now);
}

/// The tag of `service` in a `ready` or cycle line.
fn tag(line: &Value, service: &str) -> String {
    line["tags"][service].as_str().unwrap().to_owned()
}

#[test]
fn an_edit_to_the_frontend_rebuilds_and_redeploys_only_the_frontend_and_ctrl_c_leaves_the_release() {
    let (standins, project) = (StandIns::new(), Project::new());
    let session = Session::start(&standins, &project, &cluster(&standins, &project), &[]);
    let (backend, frontend) = (tag(&session.ready, "backend"), tag(&session.ready, "frontend"));
    assert!(
        backend.starts_with("dev-") && frontend.starts_with("dev-"),
        "{}",
        session.ready
    );
    // The first deploy loaded both images into the node and upgraded once.
    assert_eq!(loads(&standins).len(), 2, "{:#?}", standins.invocations());
    assert_eq!(upgrades(&standins).len(), 1);
    let url = session.ready["url"].as_str().unwrap().to_owned();

    // A save that leaves the content as it was is no change at all.
    project.write(FRONTEND, &project.read(FRONTEND));
    session.wait_for_log(&format!(
        "==> {FRONTEND} saved with the content it had: nothing to build or deploy"
    ));
    session.assert_quiet(Duration::from_secs(2));

    project.edit(FRONTEND, "hello from frontend", "hello again from frontend");
    let cycle = session.next_line();
    assert_eq!(cycle["cycle"], 1, "{cycle}");
    assert_eq!(cycle["changed"], json!([FRONTEND]));
    assert_eq!(cycle["affected"], json!(["frontend"]));
    assert_eq!(cycle["built"], json!(["frontend"]));
    assert_eq!(cycle["loaded"], json!(["frontend"]));
    assert_eq!(
        (&cycle["upgraded"], &cycle["outcome"]),
        (&json!(true), &json!("deployed")),
        "{cycle}"
    );
    assert_eq!(tag(&cycle, "backend"), backend, "the backend image is the same");
    assert_ne!(tag(&cycle, "frontend"), frontend, "a new frontend image");
    for stage in ["saved", "compiled", "image", "loaded", "rolled_out", "serving"] {
        assert!(cycle["stages_ms"][stage].is_u64(), "{stage} in {cycle}");
    }
    // The figures of docs/deployment/inner-loop.md's small-project row (shown with --nocapture).
    eprintln!("dev cycle: {cycle}");
    // Only the frontend's image was loaded, and the upgrade sets it with the backend's as it was.
    let loads = loads(&standins);
    assert_eq!(loads.len(), 3, "{loads:#?}");
    assert!(
        loads[2].contains(&format!("todo-frontend-{}.tar", tag(&cycle, "frontend"))),
        "{}",
        loads[2]
    );
    let upgrades = upgrades(&standins);
    assert_eq!(upgrades.len(), 2);
    assert!(
        upgrades[1].contains(&format!("frontend.image.tag={} ", tag(&cycle, "frontend")))
            && upgrades[1].contains(&format!("backend.image.tag={backend} ")),
        "{}",
        upgrades[1]
    );
    session.wait_for_log(&format!("==> {FRONTEND}: saved "));
    // Only the frontend's image was built again (the first deploy built both).
    let images_built = |image: &str| session.stderr().matches(&format!("==> image {image}\n")).count();
    assert_eq!(
        (images_built("todo-backend"), images_built("todo-frontend")),
        (1, 2),
        "{}",
        session.stderr()
    );
    // The URL is the same after the frontend's pods were replaced, and answers.
    let health = ureq::get(format!("{url}health")).call().unwrap();
    assert_eq!(health.status(), 200);

    let (code, stderr) = session.interrupt();
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains(
            "==> stopped watching. Release todo is still running in namespace todo (kube context minikube); remove \
             it with `cargo xtask uninstall --kube-context minikube --namespace todo --release todo`"
        ),
        "{stderr}"
    );
    // The pods' logs came with their component in front.
    assert!(
        stderr.contains("frontend | frontend: listening on 0.0.0.0:3000"),
        "{stderr}"
    );
    assert_never(&standins.invocations(), "helm uninstall");
}

#[test]
fn an_edit_to_the_values_upgrades_without_rebuilding_and_an_unchanged_image_deploys_nothing() {
    let (standins, project) = (StandIns::new(), Project::new());
    let session = Session::start(&standins, &project, &cluster(&standins, &project), &[]);
    project.edit("helm/values.yaml", "\n", "\n# edited by the dev scenario\n");
    let cycle = session.next_line();
    assert_eq!(cycle["affected"], json!(["chart"]), "{cycle}");
    assert_eq!(cycle["built"], json!([]));
    assert_eq!(cycle["loaded"], json!([]));
    assert_eq!(
        (&cycle["upgraded"], &cycle["outcome"]),
        (&json!(true), &json!("deployed")),
        "{cycle}"
    );
    assert!(
        cycle["stages_ms"]["compiled"].is_null() && cycle["stages_ms"]["image"].is_null(),
        "{cycle}"
    );
    assert_eq!(upgrades(&standins).len(), 2);
    assert_eq!(loads(&standins).len(), 2, "nothing loaded");
    assert_eq!(tag(&cycle, "backend"), tag(&session.ready, "backend"));

    // A comment reworded on its line: compiled and imaged again, the same content, so the same tag.
    project.edit(
        BACKEND,
        "// The test project's backend:",
        "// The test project's backend, reworded:",
    );
    let cycle = session.next_line();
    assert_eq!(cycle["affected"], json!(["backend"]), "{cycle}");
    assert_eq!(cycle["built"], json!(["backend"]));
    assert_eq!(
        (&cycle["upgraded"], &cycle["outcome"]),
        (&json!(false), &json!("unchanged")),
        "{cycle}"
    );
    assert_eq!(cycle["loaded"], json!([]));
    assert_eq!(tag(&cycle, "backend"), tag(&session.ready, "backend"));
    assert_eq!(upgrades(&standins).len(), 2, "no upgrade");
    assert_eq!(loads(&standins).len(), 2, "nothing loaded");
}

#[test]
fn a_compile_error_leaves_the_cluster_untouched_and_the_next_good_save_recovers() {
    let (standins, project) = (StandIns::new(), Project::new());
    let session = Session::start(&standins, &project, &cluster(&standins, &project), &[]);
    let before = standins.invocations().len();
    project.edit(
        FRONTEND,
        "const GREETING: &str",
        "const GREETING: &str = ;\nconst BROKEN: &str",
    );
    let cycle = session.next_line();
    assert_eq!(cycle["outcome"], "compile_error", "{cycle}");
    assert_eq!((&cycle["upgraded"], &cycle["loaded"]), (&json!(false), &json!([])));
    assert!(cycle["stages_ms"]["image"].is_null(), "{cycle}");
    // cargo's own words, and nothing asked of the cluster.
    assert!(
        session.stderr().contains("error: expected expression"),
        "{}",
        session.stderr()
    );
    let during: Vec<String> = standins.invocations()[before..]
        .iter()
        .filter(|line| !line.contains(" logs ") && !line.contains(" port-forward ") && !line.contains(" <- "))
        .cloned()
        .collect();
    assert!(during.is_empty(), "the cluster was asked: {during:#?}");

    project.edit(
        FRONTEND,
        "const GREETING: &str = ;\nconst BROKEN: &str",
        "const GREETING: &str",
    );
    project.edit(FRONTEND, "hello from frontend", "hello, fixed, from frontend");
    assert_frontend_redeployed(&session, &standins, 2);
}

#[test]
fn a_failed_rollout_is_rolled_back_and_the_loop_goes_on() {
    let (standins, project) = (StandIns::new(), Project::new());
    let rolled_back = "Error: UPGRADE FAILED: release todo failed, and has been rolled back due to atomic being set: \
                       timed out waiting for the condition\n";
    let programs = change(cluster(&standins, &project), "helm", |helm| {
        helm.on_each(
            &format!("{}*", helm_args("upgrade --install todo helm")),
            vec![Reply::ok(UPGRADED), Reply::fail(1, rolled_back), Reply::ok(UPGRADED)],
        )
    });
    let session = Session::start(&standins, &project, &programs, &[]);
    project.edit(
        FRONTEND,
        "hello from frontend",
        "hello from a frontend that will not roll out",
    );
    let cycle = session.next_line();
    assert_eq!(cycle["outcome"], "rollout_failed", "{cycle}");
    assert!(
        cycle["error"]
            .as_str()
            .unwrap()
            .contains("has been rolled back due to atomic being set"),
        "{cycle}"
    );
    assert!(
        session.stderr().contains("==> helm failed: UPGRADE FAILED"),
        "{}",
        session.stderr()
    );
    // The loop goes on: the next save is deployed.
    project.edit(FRONTEND, "that will not roll out", "that rolls out");
    assert_frontend_redeployed(&session, &standins, 3);
}

#[test]
fn a_port_forward_that_stops_is_opened_again_on_the_same_port() {
    let (standins, project) = (StandIns::new(), Project::new());
    let programs = change(cluster(&standins, &project), "kubectl", |kubectl| {
        kubectl.on_each(
            &forward_pattern("frontend"),
            vec![
                forward(&standins, &project, "frontend", Some(5)),
                forward(&standins, &project, "frontend", None),
            ],
        )
    });
    let session = Session::start(&standins, &project, &programs, &["--no-logs"]);
    let url = session.ready["url"].as_str().unwrap().to_owned();
    session.wait_for_log("the port-forward stopped (`kubectl --context minikube --namespace todo --request-timeout=0 port-forward service/todo-frontend");
    assert!(
        session
            .stderr()
            .contains("stopped: error: lost connection to pod): opening it again on the same port"),
        "{}",
        session.stderr()
    );
    // The URL printed at the start answers again, through a new forward on the same port.
    let frontend_forwards = || {
        calls(
            &standins,
            "kubectl --context minikube --namespace todo --request-timeout=0 port-forward service/todo-frontend",
        )
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while frontend_forwards().len() < 2 || ureq::get(format!("{url}health")).call().is_err() {
        assert!(std::time::Instant::now() < deadline, "{url} does not answer again");
        std::thread::sleep(Duration::from_millis(200));
    }
    let forwards = frontend_forwards();
    assert_eq!(forwards.len(), 2, "{forwards:#?}");
    assert_eq!(forwards[0], forwards[1], "the same local port");
}

/// The stand-in cluster, with Helm answering `uninstall` for a release whose data is kept.
fn uninstallable(standins: &StandIns, project: &Project) -> Vec<crate::support::standins::Program> {
    change(cluster(standins, project), "helm", |helm| {
        helm.on(
            &helm_args("get manifest todo"),
            Reply::ok(fixture("helm-manifest-keep.yaml")),
        )
        .on(
            &format!("{}*", helm_args("uninstall todo")),
            Reply::ok("release \"todo\" uninstalled\n"),
        )
    })
}

#[test]
fn cleanup_uninstalls_the_release_on_ctrl_c() {
    let (standins, project) = (StandIns::new(), Project::new());
    let programs = uninstallable(&standins, &project);
    let session = Session::start(&standins, &project, &programs, &["--cleanup", "--no-logs"]);
    let (code, stderr) = session.interrupt();
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains(
            "    release todo uninstalled from namespace todo; kept the data (PersistentVolumeClaim todo-backend)"
        ),
        "{stderr}"
    );
    assert_eq!(
        calls(&standins, "helm uninstall"),
        [format!("helm {} --wait --timeout 180s", helm_args("uninstall todo"))]
    );
    assert_never(
        &standins.invocations(),
        "kubectl --context minikube --namespace todo --request-timeout=30s delete",
    );
    assert!(
        !standins.invocations().iter().any(|line| line.contains(" logs ")),
        "--no-logs streams no logs"
    );
}

#[test]
fn dev_refuses_a_cluster_that_is_not_local() {
    let (standins, project) = (StandIns::new(), Project::new());
    let remote = "gke_acme-prod_europe-west1_main";
    let programs = change(cluster(&standins, &project), "kubectl", |kubectl| {
        kubectl.on(
            "config current-context --request-timeout=5s",
            Reply::ok(format!("{remote}\n")),
        )
    });
    let run = xtask(
        &standins,
        &programs,
        &[
            "dev",
            "--kube-context",
            remote,
            "--watch-root",
            &project.path().display().to_string(),
        ],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!(
            "error: `dev` rebuilds and redeploys on every save, so it runs only against a local cluster, and kube \
             context {remote} is not a local cluster"
        )),
        "{}",
        run.stderr
    );
    assert!(calls(&standins, "helm").is_empty() && calls(&standins, "minikube image").is_empty());
}
