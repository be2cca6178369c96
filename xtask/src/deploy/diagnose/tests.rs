//! The diagnosis of rollouts, on pods and events as kubectl prints them.

use super::*;

fn no_hint(_: &str) -> Option<String> {
    None
}

#[test]
fn pods_of_helm_tests_and_terminating_pods_are_ignored() {
    let pods: Vec<Pod> = crate::k8s::objects::parse_items(
        r#"{"items":[
          {"metadata":{"name":"todo-test","labels":{"app.kubernetes.io/component":"test"}},
           "spec":{"containers":[{"name":"test","image":"todo-backend:abc"}]},
           "status":{"phase":"Failed","containerStatuses":[{"name":"test","image":"todo-backend:abc","ready":false,"restartCount":0,
             "state":{"terminated":{"exitCode":1,"reason":"Error"}},"lastState":{}}]}},
          {"metadata":{"name":"todo-backend-old","deletionTimestamp":"2025-03-10T10:00:00Z","ownerReferences":[{"kind":"ReplicaSet","name":"todo-backend-1"}]},
           "spec":{"containers":[{"name":"backend","image":"todo-backend:old"}]},
           "status":{"phase":"Running","containerStatuses":[{"name":"backend","image":"todo-backend:old","ready":false,"restartCount":0,
             "state":{"terminated":{"exitCode":143,"reason":"Error"}},"lastState":{}}]}}
        ]}"#,
        "pods",
    )
    .unwrap();
    assert_eq!(diagnose(&pods, &[], 0, &no_hint), None);
    assert_eq!(progress(&pods, &Baseline::default()), "no pods yet");
}

/// A fixture of `tests/fixtures/real-cluster/` (see SOURCES.md there), read as a list of `what`.
fn real<T: serde::de::DeserializeOwned>(name: &str, what: &str) -> Vec<T> {
    let path = format!("{}/tests/fixtures/real-cluster/{name}", env!("CARGO_MANIFEST_DIR"));
    let json = std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{path}: {err}"));
    crate::k8s::objects::parse_items(&json, what).unwrap()
}

fn pods(name: &str) -> Vec<Pod> {
    real(name, "pods")
}

fn events(name: &str) -> Vec<Event> {
    real(name, "events")
}

/// The images of `../images.json`, which the scenarios deploy.
const DEPLOYED: [(&str, &str); 2] = [
    ("backend", "todo-backend:3f2a9c1b7d4e"),
    ("frontend", "todo-frontend:8e1d2c3b4a5f"),
];

fn view<'a>(stage: Stage, baseline: &'a Baseline, lingering: &'a Lingering, at: Instant) -> View<'a> {
    View {
        stage,
        baseline,
        lingering,
        at,
        grace: Duration::from_secs(60),
        now: 0,
    }
}

/// The workflow built the `todo-*` images (and can say how to load them); not postgres.
fn workflow_hint(image: &str) -> Option<String> {
    image.starts_with("todo-").then(|| format!("load {image}"))
}

#[test]
fn the_previous_revisions_pods_and_their_old_restarts_are_not_charged_to_an_upgrade() {
    let baseline = Baseline::new(&pods("rolling-update/pods-before.json"), DEPLOYED);
    let lingering = Lingering::default();
    let watching = view(Stage::Watching, &baseline, &lingering, Instant::now());
    for poll in 1..=4 {
        let now = pods(&format!("rolling-update/pods-poll{poll}.json"));
        assert_eq!(diagnose_in(&now, &[], &watching, &no_hint), None, "poll {poll}");
    }
    assert_eq!(
        progress(&pods("rolling-update/pods-poll1.json"), &baseline),
        "backend 0/1 ready (ContainerCreating), frontend 0/1 ready (ContainerCreating)"
    );
    assert_eq!(
        progress(&pods("rolling-update/pods-poll4.json"), &baseline),
        "backend 1/1 ready, frontend 2/2 ready"
    );
    // Without a baseline the old backend's exit 255 of four days ago reads as a crash.
    let unaware = diagnose(&pods("rolling-update/pods-poll1.json"), &[], 0, &no_hint).unwrap();
    assert_eq!(unaware.pod, "todo-backend-6c9d8f7b5-x2v7q");
    // The new pod's crash during the upgrade is one.
    let crashed = diagnose_in(
        &pods("rolling-update/pods-poll2-new-pod-crashed.json"),
        &[],
        &watching,
        &no_hint,
    )
    .unwrap();
    assert_eq!(crashed.pod, "todo-backend-7f5c9d4b8-q8w2n");
    assert_eq!(
        crashed.cause,
        Cause::Crashed {
            exit_code: 1,
            restarts: 1
        }
    );
}

#[test]
fn a_pod_kept_by_the_upgrade_counts_only_the_runs_that_ended_since() {
    let before = pods("rolling-update/pods-before.json");
    // The same images deployed again: the pods stay and are this deploy's.
    let same = [
        ("backend", "todo-backend:1c7e5a9d3b2f"),
        ("frontend", "todo-frontend:5a3c1e9b7d2f"),
    ];
    let baseline = Baseline::new(&before, same);
    let lingering = Lingering::default();
    let watching = view(Stage::Watching, &baseline, &lingering, Instant::now());
    assert_eq!(diagnose_in(&before, &[], &watching, &no_hint), None);
    assert_eq!(progress(&before, &baseline), "backend 1/1 ready, frontend 2/2 ready");
    // The backend is OOM-killed during the deploy: a new lastState, one more restart.
    let mut json: serde_json::Value = serde_json::to_value(&before[0]).unwrap();
    let status = &mut json["status"]["containerStatuses"][0];
    status["restartCount"] = 2.into();
    status["lastState"]["terminated"] = serde_json::json!({
        "exitCode": 137, "reason": "OOMKilled", "startedAt": "2025-03-14T08:02:12Z",
        "finishedAt": "2025-03-17T10:00:20Z"
    });
    let now = vec![serde_json::from_value(json).unwrap()];
    // Not while Helm waits: a config change may be replacing this very pod.
    assert_eq!(diagnose_in(&now, &[], &watching, &no_hint), None);
    let settled = view(Stage::Settled, &baseline, &lingering, Instant::now());
    let problem = diagnose_in(&now, &[], &settled, &no_hint).unwrap();
    assert!(matches!(problem.cause, Cause::OutOfMemory { .. }), "{problem:?}");
    assert_eq!(diagnose_in(&before, &[], &settled, &no_hint), None);
}

#[test]
fn a_failing_readiness_probe_counts_once_helm_gave_up_and_only_for_its_own_pod() {
    let (pods, events) = (
        pods("readiness-late/pods-poll3.json"),
        events("readiness-late/events-poll3.json"),
    );
    let (baseline, lingering) = (Baseline::default(), Lingering::default());
    let at = Instant::now();
    let watching = view(Stage::Watching, &baseline, &lingering, at);
    assert_eq!(diagnose_in(&pods, &events, &watching, &no_hint), None);
    let settled = view(Stage::Settled, &baseline, &lingering, at);
    let problem = diagnose_in(&pods, &events, &settled, &no_hint).unwrap();
    assert_eq!(problem.pod, "todo-backend-7f5c9d4b8-q8w2n");
    assert_eq!(problem.cause, Cause::NotReady { failures: 8 });
    assert_eq!(
        problem.evidence,
        "Readiness probe failed: HTTP probe failed with statuscode: 503"
    );
    // The PostgreSQL pod's predecessor of the same name failed 14 readiness checks; this pod
    // itself only waits for its startup probe.
    let postgres: Vec<Pod> = pods.into_iter().filter(|p| p.name() == "todo-postgresql-0").collect();
    assert_eq!(diagnose_in(&postgres, &events, &settled, &no_hint), None);
}

#[test]
fn pull_and_create_errors_get_a_grace_period_unless_they_cannot_clear() {
    let (baseline, start) = (Baseline::default(), Instant::now());
    let mut lingering = Lingering::default();
    let mut look = |name: &str, after: u64| {
        let (pods, at) = (pods(name), start + Duration::from_secs(after));
        lingering.observe(&pods, at);
        diagnose_in(
            &pods,
            &[],
            &view(Stage::Watching, &baseline, &lingering, at),
            &workflow_hint,
        )
    };
    assert_eq!(look("pull-transient/pods-poll1.json", 0), None);
    // ErrImagePull turning into ImagePullBackOff keeps counting from the first sight.
    assert_eq!(look("pull-transient/pods-poll2.json", 30), None);
    let lasting = look("pull-transient/pods-poll2.json", 61).unwrap();
    assert_eq!(
        lasting.reason,
        "postgresql pod todo-postgresql-0: the node does not hold image postgres:17.6-bookworm, and cannot pull \
         it (still failing after 1m01s)"
    );
    // An error that cleared starts again from zero.
    assert_eq!(look("pull-transient/pods-poll4.json", 62), None);
    assert_eq!(look("pull-transient/pods-poll3.json", 100), None);
    assert_eq!(look("create-container-transient/pods-poll1.json", 101), None);
    let stuck = look("create-container-transient/pods-poll1.json", 170).unwrap();
    assert_eq!(stuck.cause, Cause::CannotStart);
    // Certain at first sight: pull policy Never, a reference that cannot exist, and an image
    // only this machine held.
    for certain in [
        "pods-err-image-never-pull.json",
        "pods-invalid-image-name.json",
        "pods-local-image-pull-denied.json",
    ] {
        let mut fresh = Lingering::default();
        let pods = pods(&format!("pull-certain/{certain}"));
        fresh.observe(&pods, start);
        let watching = view(Stage::Watching, &baseline, &fresh, start);
        let problem = diagnose_in(&pods, &[], &watching, &workflow_hint);
        assert_eq!(
            problem.map(|p| p.pod).as_deref(),
            Some("todo-backend-7f5c9d4b8-q8w2n"),
            "{certain}"
        );
    }
}
