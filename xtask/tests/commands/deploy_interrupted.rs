//! Ctrl-C during `cargo xtask deploy` (issue 12, item 7; fixtures in
//! `fixtures/real-cluster/helm-signal/`, cited in its SOURCES.md). The test does what a terminal
//! does: SIGINT to deploy's whole process group. The stand-in Helm answers the signal as Helm
//! does (the cancellation on stdout, a rollback that takes a while, the error on stderr, exit 1)
//! and logs a marker only after both writes, so a Helm killed by SIGPIPE (its reader gone) is told
//! apart from one that finished its rollback.

use std::{
    os::unix::process::CommandExt,
    process::{Child, Stdio},
    thread,
    time::{Duration, Instant},
};

use nix::{
    sys::signal::{Signal, killpg},
    unistd::Pid,
};

use crate::support::{
    cluster::{change, fixture, fixture_path, healthy, helm_args},
    standins::{Program, ROLLED_BACK, Reply, Run, StandIns},
};

/// Helm 3 upgrading release `todo`, cancelled: it rolls back for `rollback_millis`, and `helm
/// history` shows revision 2 before and the rollback to it after.
fn cancellable_upgrade(rollback_millis: u32) -> Vec<Program> {
    let cancelled = Reply::fail(1, fixture("real-cluster/helm-signal/helm3-upgrade-cancelled.stderr"))
        .with_stdout(fixture("real-cluster/helm-signal/helm3-upgrade-cancelled.stdout"))
        .until_signalled()
        .rolling_back_for(rollback_millis);
    change(healthy(), "helm", |helm| {
        helm.on(&format!("{}*", helm_args("upgrade --install todo helm")), cancelled)
            .on_each(
                &format!("{} --max 256 -o json", helm_args("history todo")),
                vec![
                    Reply::ok(fixture("helm-history-deployed.json")),
                    Reply::ok(fixture("real-cluster/helm-signal/helm-history-after-cancel.json")),
                ],
            )
    })
}

/// Starts `deploy` in a process group of its own (as a shell starts a foreground job).
fn start_deploy(standins: &StandIns, programs: &[Program]) -> Child {
    standins.install_all(programs);
    let images = fixture_path("images.json").display().to_string();
    let diagnostics = standins.scratch("diagnostics").display().to_string();
    standins
        .command(env!("CARGO_BIN_EXE_xtask"))
        .args([
            "deploy",
            "--no-smoke",
            "--images",
            &images,
            "--diagnostics-dir",
            &diagnostics,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("start deploy")
}

/// Waits (at most 60 s) until an invocation satisfies `wanted`.
fn wait_for_invocation(standins: &StandIns, what: &str, wanted: impl Fn(&str) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !standins.invocations().iter().any(|line| wanted(line)) {
        assert!(
            Instant::now() < deadline,
            "no {what} in:\n{}",
            standins.invocations().join("\n")
        );
        thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until Helm's upgrade is running with its signal handlers installed.
fn wait_for_helm_waiting(standins: &StandIns) {
    wait_for_invocation(standins, "helm upgrade", |line| line.starts_with("helm upgrade"));
    let waiting = standins.scratch("waiting");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !std::fs::read_dir(&waiting)
        .unwrap()
        .any(|entry| entry.unwrap().file_name().to_string_lossy().starts_with("helm."))
    {
        assert!(Instant::now() < deadline, "helm never started waiting");
        thread::sleep(Duration::from_millis(50));
    }
}

/// Ctrl-C as a terminal sends it: SIGINT to the whole process group of `child`.
fn ctrl_c(child: &Child) {
    let group = Pid::from_raw(i32::try_from(child.id()).unwrap());
    killpg(group, Signal::SIGINT).expect("signal deploy's process group");
}

fn finish(child: Child) -> Run {
    let output = child.wait_with_output().expect("wait for deploy");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

#[test]
fn ctrl_c_is_forwarded_to_helm_once_and_its_rollback_is_waited_for() {
    let standins = StandIns::new();
    let deploy = start_deploy(&standins, &cancellable_upgrade(1500));
    wait_for_helm_waiting(&standins);
    ctrl_c(&deploy);
    let run = finish(deploy);

    assert_ne!(run.code, 0, "stderr:\n{}", run.stderr);
    let invocations = standins.invocations();
    let signals: Vec<&String> = invocations.iter().filter(|line| line.starts_with("helm <- ")).collect();
    assert_eq!(
        signals,
        ["helm <- SIGINT"],
        "Helm gets exactly one signal:\n{}",
        invocations.join("\n")
    );
    assert!(
        invocations.contains(&format!("helm {ROLLED_BACK}")),
        "Helm must finish its rollback, not die of SIGPIPE:\n{}",
        invocations.join("\n")
    );
    for said in [
        "==> interrupted: asking Helm to cancel; it marks the revision failed and rolls back (--atomic)",
        "waiting up to 4m00s for Helm to finish (its --timeout 180s for the rollback, plus 60s); Ctrl-C again stops waiting",
        "    helm: Release todo has been cancelled.\n",
        "    helm: Error: UPGRADE FAILED: release todo failed, and has been rolled back due to atomic being set: context canceled\n",
    ] {
        assert!(run.stderr.contains(said), "{said:?} not in:\n{}", run.stderr);
    }
    assert_eq!(
        run.stderr.lines().last().unwrap(),
        "error: step `helm upgrade --install, watching the rollout` failed: interrupted: release todo rolled back to \
         revision 2 (now revision 4, deployed); nothing changed"
    );
    assert!(
        !run.stderr.contains("diagnostics:"),
        "no bundle for an interruption:\n{}",
        run.stderr
    );
}

#[test]
fn a_second_ctrl_c_stops_waiting_and_leaves_helm_to_finish_with_the_state_and_the_way_out() {
    let standins = StandIns::new();
    let deploy = start_deploy(&standins, &cancellable_upgrade(4000));
    wait_for_helm_waiting(&standins);
    ctrl_c(&deploy);
    wait_for_invocation(&standins, "signal to helm", |line| line.starts_with("helm <- "));
    ctrl_c(&deploy);
    let run = finish(deploy);

    assert_ne!(run.code, 0, "stderr:\n{}", run.stderr);
    assert!(
        run.stderr.contains("==> stopped waiting: Helm (pid ")
            && run
                .stderr
                .contains("is still rolling back release todo in the background; its output goes to ")
            && run.stderr.contains(
                "Until it finishes the release stays pending-upgrade or pending-rollback, and deploy refuses to change \
                 it: check with `cargo xtask status`, and if it stays pending, run `cargo xtask deploy --recover`"
            ),
        "{}",
        run.stderr
    );
    // Helm was neither killed nor cut off from its output: it finishes after deploy has gone.
    wait_for_invocation(&standins, "finished rollback", |line| {
        line == format!("helm {ROLLED_BACK}")
    });
    let signals = standins
        .invocations()
        .iter()
        .filter(|line| line.starts_with("helm <- "))
        .count();
    assert_eq!(signals, 1, "{:?}", standins.invocations());
    // The folder deploy named holds what Helm said after deploy stopped reading.
    let folder = run
        .stderr
        .split("its output goes to ")
        .nth(1)
        .and_then(|rest| rest.split(". Until").next())
        .unwrap()
        .to_owned();
    let stderr = std::fs::read_to_string(std::path::Path::new(&folder).join("stderr.txt")).unwrap();
    assert!(stderr.starts_with("Error: UPGRADE FAILED"), "{stderr}");
    std::fs::remove_dir_all(&folder).unwrap();
}
