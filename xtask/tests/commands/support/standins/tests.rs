//! The stand-ins themselves answer as they promise.

use super::*;

#[test]
fn stand_ins_record_and_answer() {
    let standins = StandIns::new();
    standins.install(&Program::new("tool").on("version", Reply::ok("it's v1\n")).on(
        "status *",
        Reply::fail(7, "stopped\n").with_stdout("{\"Host\":\"Stopped\"}"),
    ));
    let tool = standins.bin().join("tool");
    let version = run(standins.command(&tool).arg("version"));
    assert_eq!((version.code, version.stdout.as_str()), (0, "it's v1\n"));
    let status = run(standins.command(&tool).args(["status", "-p", "it's mine"]));
    assert_eq!(status.code, 7);
    assert_eq!(status.stdout, "{\"Host\":\"Stopped\"}");
    assert_eq!(status.stderr, "stopped\n");
    let unexpected = run(standins.command(&tool).arg("delete"));
    assert_eq!(unexpected.code, UNEXPECTED_CALL);
    assert_eq!(
        standins.invocations(),
        ["tool version", "tool status -p it's mine", "tool delete"]
    );
}

#[test]
fn replies_come_in_turn_and_the_last_repeats() {
    let standins = StandIns::new();
    standins.install(&Program::new("tool").on_each(
        "images",
        vec![Reply::ok("none\n"), Reply::ok("one\n"), Reply::ok("two\n")],
    ));
    let tool = standins.bin().join("tool");
    let answers: Vec<String> = (0..4)
        .map(|_| run(standins.command(&tool).arg("images")).stdout)
        .collect();
    assert_eq!(answers, ["none\n", "one\n", "two\n", "two\n"]);
}

#[test]
fn a_reply_can_wait_until_another_program_was_called_often_enough() {
    use std::{process::Stdio, thread, time::Duration};

    let standins = StandIns::new();
    standins.install(&Program::new("tool").on("wait", Reply::ok("done\n").after_calls("other poll *", 2)));
    standins.install(&Program::new("other").on("poll *", Reply::ok("")));
    let (tool, other) = (standins.bin().join("tool"), standins.bin().join("other"));
    let mut waiting = standins
        .command(&tool)
        .arg("wait")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    assert_eq!(run(standins.command(&other).args(["poll", "1"])).code, 0);
    thread::sleep(Duration::from_millis(400));
    assert!(
        waiting.try_wait().unwrap().is_none(),
        "it should wait for the second poll"
    );
    assert_eq!(run(standins.command(&other).args(["poll", "2"])).code, 0);
    let output = waiting.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&output.stdout), "done\n");
    let mut invocations = standins.invocations();
    invocations.sort();
    assert_eq!(invocations, ["other poll 1", "other poll 2", "tool wait"]);
}

#[test]
fn a_waiting_reply_answers_when_signalled_and_stdin_is_recorded() {
    use std::{process::Stdio, thread, time::Duration};

    let standins = StandIns::new();
    standins.install(
        &Program::new("tool")
            .on("wait", Reply::fail(1, "cancelled\n").until_signalled())
            .on("read", Reply::ok("").recording_stdin()),
    );
    let tool = standins.bin().join("tool");
    let mut waiting = standins
        .command(&tool)
        .arg("wait")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    thread::sleep(Duration::from_millis(300));
    assert!(waiting.try_wait().unwrap().is_none(), "it should wait for a signal");
    std::process::Command::new("kill")
        .args(["-TERM", &waiting.id().to_string()])
        .status()
        .unwrap();
    let output = waiting.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&output.stderr), "cancelled\n");

    let mut reader = standins
        .command(&tool)
        .arg("read")
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut reader.stdin.take().unwrap(), b"A=b\nlast").unwrap();
    assert!(reader.wait().unwrap().success());
    assert_eq!(standins.stdin_log(), "A=b\nlast\n");
    assert_eq!(standins.invocations(), ["tool wait", "tool <- SIGTERM", "tool read"]);
}

#[test]
fn a_reply_that_rolls_back_answers_like_helm_and_ignores_later_signals() {
    use std::{process::Stdio, thread, time::Duration};

    let standins = StandIns::new();
    let cancelled = Reply::fail(1, "Error: rolled back\n")
        .with_stdout("Release todo has been cancelled.\n")
        .until_signalled()
        .rolling_back_for(600);
    standins.install(&Program::new("tool").on("upgrade", cancelled));
    let tool = standins.bin().join("tool");
    let upgrading = standins
        .command(&tool)
        .arg("upgrade")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    thread::sleep(Duration::from_millis(300));
    let signal = |name: &str| {
        std::process::Command::new("kill")
            .args([name, &upgrading.id().to_string()])
            .status()
            .unwrap()
    };
    signal("-INT");
    thread::sleep(Duration::from_millis(150));
    signal("-TERM");
    let output = upgrading.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "Release todo has been cancelled.\n"
    );
    assert_eq!(String::from_utf8_lossy(&output.stderr), "Error: rolled back\n");
    assert_eq!(
        standins.invocations(),
        [
            "tool upgrade",
            "tool <- SIGINT",
            "tool <- SIGTERM (ignored)",
            &format!("tool {ROLLED_BACK}")
        ]
    );
}
