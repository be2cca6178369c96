//! Read-only probes of other programs, with a deadline.
//!
//! Diagnostics run exactly when things are broken: a hung Docker daemon, a Helm 2 client waiting
//! for Tiller, or a VM driver that never answers must not hang the command that is meant to
//! explain them. So a probe is built with `xshell::cmd!` like every other command (arguments
//! passed separately, never a shell string) and then run here, where it is killed at its deadline.
//! Whatever it printed is kept even when it exits non-zero, because several tools report state
//! through the exit code (`minikube status` exits 7 for a stopped cluster, `kubectl version`
//! exits 1 with the client version on stdout when the server is unreachable).

use std::{
    io::Read,
    process::{Command, Stdio},
    sync::mpsc,
    thread,
    time::{Duration, Instant},
};

use xshell::Cmd;

/// How long any probe may take. Generous: `minikube profile list` can take a few seconds on a
/// busy machine; kubectl additionally gets `--request-timeout` so it gives up on its own first.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(20);

/// How a probe ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// It exited with this code.
    Exited(i32),
    /// A signal ended it (not one we sent).
    Signalled,
    /// It was still running at the deadline and was killed.
    TimedOut(Duration),
    /// It could not be started at all (the message says why).
    NotStarted(String),
}

/// What a probe printed and how it ended.
#[derive(Debug, Clone)]
pub struct Probe {
    /// The command line, for messages.
    pub command: String,
    /// How it ended.
    pub outcome: Outcome,
    /// Everything it wrote to stdout (lossy UTF-8).
    pub stdout: String,
    /// Everything it wrote to stderr (lossy UTF-8).
    pub stderr: String,
}

impl Probe {
    /// Whether it exited with code 0.
    pub fn succeeded(&self) -> bool {
        self.outcome == Outcome::Exited(0)
    }

    /// Its exit code, if it exited on its own.
    pub fn code(&self) -> Option<i32> {
        match self.outcome {
            Outcome::Exited(code) => Some(code),
            _ => None,
        }
    }

    /// Why it failed, in one line: its first line of stderr, or how it ended.
    pub fn failure(&self) -> String {
        match &self.outcome {
            Outcome::TimedOut(after) => {
                format!("no answer within {}s from `{}`", after.as_secs(), self.command)
            }
            Outcome::NotStarted(why) => format!("could not run `{}`: {why}", self.command),
            Outcome::Signalled => format!("`{}` was killed by a signal", self.command),
            Outcome::Exited(code) => self
                .stderr
                .lines()
                .map(str::trim)
                .find(|line| !line.is_empty())
                .map_or_else(|| format!("`{}` exited with code {code}", self.command), str::to_owned),
        }
    }
}

/// Runs `cmd` with no stdin, capturing both outputs, and kills it if it outlives `timeout`.
pub fn run(cmd: Cmd<'_>, timeout: Duration) -> Probe {
    let command_line = cmd.to_string();
    let mut command = Command::from(cmd);
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(err) => {
            return Probe {
                command: command_line,
                outcome: Outcome::NotStarted(spawn_error(&err)),
                stdout: String::new(),
                stderr: String::new(),
            };
        }
    };
    // Both pipes are drained on their own threads so a chatty program cannot block on a full pipe.
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());

    let deadline = Instant::now() + timeout;
    let outcome = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status.code().map_or(Outcome::Signalled, Outcome::Exited),
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                break Outcome::TimedOut(timeout);
            }
            Ok(None) => thread::sleep(Duration::from_millis(10)),
            Err(err) => break Outcome::NotStarted(err.to_string()),
        }
    };
    Probe {
        command: command_line,
        outcome,
        stdout: collect(&stdout),
        stderr: collect(&stderr),
    }
}

/// Why a program could not be started, in words: ENOEXEC ("Exec format error") means the file is
/// a program for another processor or operating system (a linux/amd64 binary on an arm64 Linux or
/// on macOS), which the raw message does not say.
pub fn spawn_error(err: &std::io::Error) -> String {
    if err.raw_os_error() == Some(nix::errno::Errno::ENOEXEC as i32) {
        return "it is not a program for this machine (built for another processor or operating system)".to_owned();
    }
    err.to_string()
}

/// Reads a pipe to its end on a thread of its own; the bytes arrive on the receiver.
pub(crate) fn drain(pipe: Option<impl Read + Send + 'static>) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    if let Some(mut pipe) = pipe {
        thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = pipe.read_to_end(&mut buf);
            let _ = tx.send(buf);
        });
    }
    rx
}

/// The drained output. A grandchild that inherited the pipe can keep it open after the probe
/// ended; then we take nothing rather than wait for it.
pub(crate) fn collect(rx: &mpsc::Receiver<Vec<u8>>) -> String {
    rx.recv_timeout(Duration::from_millis(500))
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use xshell::{Shell, cmd};

    use super::*;

    #[test]
    fn output_is_kept_when_the_program_fails() {
        let sh = Shell::new().unwrap();
        let probe = run(cmd!(sh, "ls /surely/not/here"), PROBE_TIMEOUT);
        assert!(matches!(probe.outcome, Outcome::Exited(code) if code != 0), "{probe:?}");
        assert!(probe.failure().contains("/surely/not/here"), "{}", probe.failure());
    }

    #[test]
    fn a_hanging_program_is_killed_at_the_deadline() {
        let sh = Shell::new().unwrap();
        let started = Instant::now();
        let probe = run(cmd!(sh, "sleep 30"), Duration::from_millis(300));
        assert_eq!(probe.outcome, Outcome::TimedOut(Duration::from_millis(300)));
        assert!(started.elapsed() < Duration::from_secs(10));
        assert!(probe.failure().contains("sleep 30"), "{}", probe.failure());
    }

    #[test]
    fn a_missing_program_is_reported_not_panicked_on() {
        let sh = Shell::new().unwrap();
        let probe = run(cmd!(sh, "surely-not-installed-xyz --version"), PROBE_TIMEOUT);
        assert!(matches!(probe.outcome, Outcome::NotStarted(_)), "{probe:?}");
        assert!(!probe.succeeded());
    }
}
