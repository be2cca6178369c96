//! `cargo xtask deploy` watching rollouts on a stand-in cluster that moves through states poll
//! after poll, as a real one does (issue 12, items 2–4): old and new ReplicaSets side by side
//! during a rolling update, a readiness probe that fails for a while, pull and create errors that
//! clear by themselves, and the errors that never do. The pods and events are the fixtures of
//! `tests/fixtures/real-cluster/` (shapes and sources in its SOURCES.md); the first pods reply
//! answers deploy's look at the release before `helm upgrade`, and Helm answers only once kubectl
//! has served the polls the scenario needs.

use std::fs;

use crate::{
    deploy::{deploy, upgrade_helm3},
    support::{
        cluster::{
            CANCELLED, EMPTY_LIST, UPGRADED, assert_in_order, assert_never, assert_no_secret, change, fixture, healthy,
            helm_args, query, write,
        },
        standins::{Program, Reply, Run, StandIns},
    },
};

/// The pods query deploy runs before the upgrade and at every poll.
const PODS: &str = "get pods -l app.kubernetes.io/instance=todo -o json";
/// The new backend pod of the real-cluster fixtures.
const NEW_BACKEND: &str = "todo-backend-7f5c9d4b8-q8w2n";

/// A reply with a fixture of `real-cluster/`.
fn real(name: &str) -> Reply {
    Reply::ok(fixture(&format!("real-cluster/{name}")))
}

/// Helm's `reply` once kubectl has listed the pods `times` times (the look before the upgrade
/// included): `helm upgrade --wait` ending when the cluster got there.
fn helm_after_polls(reply: Reply, times: u32) -> Reply {
    reply.after_calls(format!("kubectl {}", query(PODS)), times)
}

/// The healthy cluster whose pods and events answer `pods` and `events` in turn (the last one
/// repeats), with Helm's upgrade answering `helm`.
fn cluster(pods: Vec<Reply>, events: Vec<Reply>, helm: Reply) -> Vec<Program> {
    let programs = change(healthy(), "helm", |program| {
        program.on(&format!("{}*", helm_args("upgrade --install todo helm")), helm)
    });
    change(programs, "kubectl", |kubectl| {
        kubectl
            .on_each(&query(PODS), pods)
            .on_each(&query("get events -o json"), events)
            .on(&write("logs * --previous"), Reply::ok("Error: connection refused\n"))
    })
}

/// Asserts a deploy that waited for Helm and succeeded: never stopped Helm, and reports the pods
/// of the new revision only.
fn assert_rolled_out(standins: &StandIns, run: &Run) {
    assert_eq!(run.code, 0, "stdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);
    assert_never(&standins.invocations(), "helm <- ");
    assert!(!run.stderr.contains("cannot succeed"), "{}", run.stderr);
    assert!(
        run.stdout
            .contains("  backend   todo-backend:3f2a9c1b7d4e  1/1 pods ready\n")
            && run
                .stdout
                .contains("  frontend  todo-frontend:8e1d2c3b4a5f  2/2 pods ready\n"),
        "{}",
        run.stdout
    );
}

/// Asserts a deploy that stopped Helm early with `reason` (Helm then rolls back by itself).
fn assert_stopped_early(standins: &StandIns, run: &Run, reason: &str) {
    assert_eq!(run.code, 1, "stdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr
            .contains(&format!("==> the rollout cannot succeed: {reason}")),
        "reason {reason:?} not in:\n{}",
        run.stderr
    );
    assert_in_order(&standins.invocations(), &[&upgrade_helm3(), "helm <- SIGTERM"]);
    assert_no_secret("stderr", &run.stderr);
}

#[test]
fn an_upgrade_is_not_charged_with_the_old_pods_past_restarts() {
    // Item 2: the old backend exited 255 four days ago (node restart), an old frontend was
    // OOM-killed last week; both stay up until the new pods are ready (maxUnavailable 0).
    let standins = StandIns::new();
    let pods = ["pods-before", "pods-poll1", "pods-poll2", "pods-poll3", "pods-poll4"];
    let programs = cluster(
        pods.iter().map(|p| real(&format!("rolling-update/{p}.json"))).collect(),
        vec![
            Reply::ok(fixture("events-none.json")),
            real("rolling-update/events-poll2.json"),
        ],
        helm_after_polls(Reply::ok(UPGRADED), 5),
    );
    let run = deploy(&standins, &programs, &[]);
    assert_rolled_out(&standins, &run);
    assert_in_order(
        &standins.invocations(),
        &[
            &format!("kubectl {}", query(PODS)),
            &upgrade_helm3(),
            &format!("kubectl {}", query(PODS)),
        ],
    );
    // Progress counts the new revision's pods only.
    assert!(
        run.stderr
            .contains("    backend 0/1 ready (ContainerCreating), frontend 0/1 ready (ContainerCreating) ("),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("backend 1/2"), "{}", run.stderr);
}

#[test]
fn a_new_pod_that_crashes_during_the_upgrade_still_stops_it_at_once() {
    let standins = StandIns::new();
    let programs = cluster(
        vec![
            real("rolling-update/pods-before.json"),
            real("rolling-update/pods-poll1.json"),
            real("rolling-update/pods-poll2-new-pod-crashed.json"),
        ],
        vec![Reply::ok(fixture("events-none.json"))],
        Reply::fail(1, CANCELLED).until_signalled(),
    );
    let run = deploy(&standins, &programs, &[]);
    assert_stopped_early(
        &standins,
        &run,
        &format!("backend container backend of pod {NEW_BACKEND} exits with code 1 (restarted once)"),
    );
}

#[test]
fn a_readiness_probe_failing_while_postgres_starts_is_waited_out() {
    // Item 3: a first install with PostgreSQL; the backend's /ready answers 503 until the
    // database is pulled and initialised, far more often than failureThreshold.
    let standins = StandIns::new();
    let polls = (1..=4).map(|n| format!("readiness-late/pods-poll{n}.json"));
    let programs = cluster(
        std::iter::once(Reply::ok(EMPTY_LIST))
            .chain(polls.map(|p| real(&p)))
            .collect(),
        (1..=4)
            .map(|n| real(&format!("readiness-late/events-poll{n}.json")))
            .collect(),
        helm_after_polls(Reply::ok(UPGRADED), 5),
    );
    let run = deploy(&standins, &programs, &["--set", "database.type=postgresql"]);
    assert_rolled_out(&standins, &run);
}

#[test]
fn a_readiness_probe_that_never_passes_is_reported_when_helm_gives_up() {
    let standins = StandIns::new();
    let programs = cluster(
        vec![Reply::ok(EMPTY_LIST), real("readiness-late/pods-poll2.json")],
        vec![real("readiness-late/events-poll2.json")],
        helm_after_polls(
            Reply::fail(1, fixture("real-cluster/readiness-never/helm3-upgrade-timeout.stderr")),
            4,
        ),
    );
    let run = deploy(&standins, &programs, &["--set", "database.type=postgresql"]);
    assert_eq!(run.code, 1, "stderr:\n{}", run.stderr);
    assert_never(&standins.invocations(), "helm <- ");
    let reason = format!(
        "backend pod {NEW_BACKEND} runs but never becomes ready: Readiness probe failed: HTTP probe failed with \
         statuscode: 503 (4 failed readiness checks)"
    );
    let fix = "the backend's /ready answers 503 while its database is unreachable or not migrated: its log says \
               which (`cargo xtask logs backend`)";
    assert!(
        run.stderr.contains(
            "==> helm gave up: UPGRADE FAILED: release todo failed, and has been rolled back due to atomic being \
             set: context deadline exceeded\n==> the rollout cannot succeed: "
        ),
        "{}",
        run.stderr
    );
    let error = run.stderr.lines().last().unwrap();
    assert!(
        error.starts_with(&format!(
            "error: step `helm upgrade --install, watching the rollout` failed: {reason}; what to do: {fix} \
             (diagnostics in "
        )),
        "{error}"
    );
    let bundles: Vec<_> = fs::read_dir(standins.scratch("diagnostics")).unwrap().collect();
    let bundle = bundles.into_iter().next().unwrap().unwrap().path();
    assert!(
        fs::read_to_string(bundle.join("summary.txt"))
            .unwrap()
            .contains(&reason)
    );
}

#[test]
fn pull_and_create_errors_that_clear_by_themselves_are_waited_out() {
    // Item 4: Docker Hub's rate limit, then a DNS timeout, then the pull succeeds.
    let standins = StandIns::new();
    let polls = (1..=5).map(|n| format!("pull-transient/pods-poll{n}.json"));
    let programs = cluster(
        std::iter::once(Reply::ok(EMPTY_LIST))
            .chain(polls.map(|p| real(&p)))
            .collect(),
        vec![
            Reply::ok(fixture("events-none.json")),
            real("pull-transient/events-poll2.json"),
        ],
        helm_after_polls(Reply::ok(UPGRADED), 6),
    );
    let run = deploy(&standins, &programs, &["--set", "database.type=postgresql"]);
    assert_rolled_out(&standins, &run);

    // containerd's "failed to reserve container name", gone at the next try.
    let standins = StandIns::new();
    let programs = cluster(
        vec![
            Reply::ok(EMPTY_LIST),
            real("create-container-transient/pods-poll1.json"),
            real("create-container-transient/pods-poll2.json"),
        ],
        vec![real("create-container-transient/events-poll1.json")],
        helm_after_polls(Reply::ok(UPGRADED), 3),
    );
    let run = deploy(&standins, &programs, &[]);
    assert_rolled_out(&standins, &run);
}

#[test]
fn a_pull_error_that_outlasts_its_grace_period_stops_the_rollout() {
    let standins = StandIns::new();
    let programs = cluster(
        vec![Reply::ok(EMPTY_LIST), real("pull-transient/pods-poll2.json")],
        vec![real("pull-transient/events-poll2.json")],
        Reply::fail(1, CANCELLED).until_signalled(),
    );
    let run = deploy(&standins, &programs, &["--pull-grace", "3s"]);
    assert_stopped_early(
        &standins,
        &run,
        "postgresql pod todo-postgresql-0: the node does not hold image postgres:17.6-bookworm, and cannot pull it \
         (still failing after ",
    );
    assert!(
        run.stderr.contains(
            "    what to do: check the image name and that the cluster can pull it: kubectl describe pod \
             todo-postgresql-0\n"
        ),
        "{}",
        run.stderr
    );
}

#[test]
fn errors_that_cannot_clear_stop_the_rollout_at_first_sight() {
    // Pull policy Never, a reference that cannot exist, and an image only this machine held
    // (Docker Hub denies the pull for ever). The grace period is left at its default (a minute).
    for (pods, reason) in [
        (
            "pods-err-image-never-pull.json",
            format!(
                "backend pod {NEW_BACKEND}: the node does not hold image todo-backend:3f2a9c1b7d4e, and cannot pull it\n"
            ),
        ),
        (
            "pods-invalid-image-name.json",
            format!(
                "backend container backend of pod {NEW_BACKEND} cannot start: Failed to apply default image tag \
                 \"todo-backend:\""
            ),
        ),
        (
            "pods-local-image-pull-denied.json",
            format!(
                "backend pod {NEW_BACKEND}: the node does not hold image todo-backend:3f2a9c1b7d4e, and cannot pull it\n"
            ),
        ),
    ] {
        let standins = StandIns::new();
        let programs = cluster(
            vec![Reply::ok(EMPTY_LIST), real(&format!("pull-certain/{pods}"))],
            vec![Reply::ok(fixture("events-none.json"))],
            Reply::fail(1, CANCELLED).until_signalled(),
        );
        let run = deploy(&standins, &programs, &[]);
        assert_stopped_early(&standins, &run, &reason);
        // At the first poll, not after a grace period.
        let polls = standins
            .invocations()
            .iter()
            .filter(|line| line.ends_with(PODS))
            .count();
        assert_eq!(
            polls, 3,
            "{pods}: the look before the upgrade, one poll, and the bundle's"
        );
    }
}
