//! A program running alongside the workflow: started with its output captured, polled, asked to
//! stop with a signal, and waited for with a deadline.
//!
//! `deploy` runs `helm upgrade --wait` this way while it watches the pods itself, so it can stop
//! Helm (which then rolls the release back) the moment it knows why the rollout cannot succeed;
//! port-forwards live this way while the smoke checks use them. A program still running when its
//! [`Background`] is dropped is stopped, so an error or a panic never leaves one behind — unless
//! it was deliberately left to finish ([`Background::leave_running`]).
//!
//! A program that must finish what it started even when we stop waiting for it (Helm rolling a
//! release back) is started with [`Background::start_apart`]: in a process group of its own, so
//! the terminal's Ctrl-C reaches only us (we forward it once), and writing to files rather than
//! pipes, so it is never killed by SIGPIPE for having outlived its reader.

use std::{
    fs::{self, File},
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    sync::mpsc::Receiver,
    thread,
    time::{Duration, Instant},
};

use anyhow::Context;
use nix::{
    sys::signal::{Signal, kill},
    unistd::Pid,
};
use xshell::Cmd;

use crate::exec::probe::{collect, drain};

/// How long a program may take to exit after SIGTERM before it is killed.
pub const STOP_GRACE: Duration = Duration::from_secs(5);

/// Where a program's output goes.
#[derive(Debug)]
enum Output {
    /// Pipes read to their end by threads of their own.
    Pipes {
        stdout: Receiver<Vec<u8>>,
        stderr: Receiver<Vec<u8>>,
    },
    /// Files in a folder of its own (`stdout.txt`, `stderr.txt`).
    Files(PathBuf),
}

/// A running (or finished) program and what it printed.
#[derive(Debug)]
pub struct Background {
    command: String,
    child: Child,
    output: Output,
    status: Option<ExitStatus>,
    grace: Duration,
    left_running: bool,
}

impl Background {
    /// Starts `cmd` with no stdin and both outputs captured.
    pub fn start(cmd: Cmd<'_>) -> anyhow::Result<Background> {
        let command = cmd.to_string();
        let mut child = Command::from(cmd)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("could not start `{command}`"))?;
        let stdout = drain(child.stdout.take());
        let stderr = drain(child.stderr.take());
        Ok(Background {
            command,
            child,
            output: Output::Pipes { stdout, stderr },
            status: None,
            grace: STOP_GRACE,
            left_running: false,
        })
    }

    /// Starts `cmd` with no stdin, in a process group of its own, writing its output to
    /// `stdout.txt` and `stderr.txt` in `output_dir` (created); when stopped it gets `grace`
    /// after SIGTERM before SIGKILL.
    pub fn start_apart(cmd: Cmd<'_>, output_dir: &Path, grace: Duration) -> anyhow::Result<Background> {
        let command = cmd.to_string();
        fs::create_dir_all(output_dir).with_context(|| format!("cannot create {}", output_dir.display()))?;
        let create = |name: &str| {
            let path = output_dir.join(name);
            File::create(&path).with_context(|| format!("cannot create {}", path.display()))
        };
        let child = Command::from(cmd)
            .stdin(Stdio::null())
            .stdout(create("stdout.txt")?)
            .stderr(create("stderr.txt")?)
            .process_group(0)
            .spawn()
            .with_context(|| format!("could not start `{command}`"))?;
        Ok(Background {
            command,
            child,
            output: Output::Files(output_dir.to_path_buf()),
            status: None,
            grace,
            left_running: false,
        })
    }

    /// Where its output goes, when it goes to files.
    pub fn output_dir(&self) -> Option<&Path> {
        match &self.output {
            Output::Files(dir) => Some(dir),
            Output::Pipes { .. } => None,
        }
    }

    /// Stops watching it without stopping it: it finishes on its own.
    pub fn leave_running(mut self) {
        self.left_running = true;
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The command line, for messages.
    pub fn command(&self) -> &str {
        &self.command
    }

    /// Its exit status if it has finished.
    pub fn try_finished(&mut self) -> anyhow::Result<Option<ExitStatus>> {
        if self.status.is_none() {
            self.status = self
                .child
                .try_wait()
                .with_context(|| format!("checking on `{}`", self.command))?;
        }
        Ok(self.status)
    }

    /// Sends `signal` (if it is still running).
    pub fn signal(&mut self, signal: Signal) -> anyhow::Result<()> {
        if self.try_finished()?.is_some() {
            return Ok(());
        }
        let pid = Pid::from_raw(i32::try_from(self.child.id()).context("process id out of range")?);
        kill(pid, signal).with_context(|| format!("sending {signal} to `{}`", self.command))?;
        Ok(())
    }

    /// Waits up to `timeout` for it to finish; `None` if it is still running then.
    pub fn wait_for(&mut self, timeout: Duration) -> anyhow::Result<Option<ExitStatus>> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_finished()? {
                return Ok(Some(status));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops it: SIGTERM, then SIGKILL after its grace ([`STOP_GRACE`] unless started with
    /// another). Safe to call when it has finished.
    pub fn stop(&mut self) {
        if matches!(self.try_finished(), Ok(Some(_))) {
            return;
        }
        let _ = self.signal(Signal::SIGTERM);
        if !matches!(self.wait_for(self.grace), Ok(Some(_))) {
            self.kill();
        }
    }

    /// Kills it at once (SIGKILL) and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        self.status = self.child.wait().ok();
    }

    /// Everything it wrote to stdout and stderr; call once it has finished.
    pub fn output(&self) -> (String, String) {
        match &self.output {
            Output::Pipes { stdout, stderr } => (collect(stdout), collect(stderr)),
            Output::Files(dir) => {
                let read = |name: &str| {
                    fs::read(dir.join(name))
                        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
                        .unwrap_or_default()
                };
                (read("stdout.txt"), read("stderr.txt"))
            }
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if !self.left_running {
            self.stop();
        }
    }
}

#[cfg(test)]
mod tests {
    use xshell::{Shell, cmd};

    use super::*;

    #[test]
    fn output_is_kept_and_the_status_reported() {
        let sh = Shell::new().unwrap();
        let mut echo = Background::start(cmd!(sh, "echo hello")).unwrap();
        let status = echo.wait_for(Duration::from_secs(10)).unwrap().unwrap();
        assert!(status.success());
        assert_eq!(echo.output().0, "hello\n");
    }

    #[test]
    fn a_running_program_stops_on_a_signal_and_on_drop() {
        let sh = Shell::new().unwrap();
        let mut sleeper = Background::start(cmd!(sh, "sleep 30")).unwrap();
        assert!(sleeper.try_finished().unwrap().is_none());
        sleeper.signal(Signal::SIGTERM).unwrap();
        let status = sleeper.wait_for(Duration::from_secs(10)).unwrap().unwrap();
        assert!(!status.success());

        let started = Instant::now();
        drop(Background::start(cmd!(sh, "sleep 30")).unwrap());
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn a_program_apart_writes_to_files_in_its_own_group_and_may_be_left_running() {
        let sh = Shell::new().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let script = "echo out; echo err >&2; ps -o pgid= -p $$";
        let mut apart = Background::start_apart(cmd!(sh, "sh -c {script}"), dir.path(), STOP_GRACE).unwrap();
        let status = apart.wait_for(Duration::from_secs(10)).unwrap().unwrap();
        assert!(status.success());
        let (stdout, stderr) = apart.output();
        let mut lines = stdout.lines();
        assert_eq!(lines.next(), Some("out"));
        assert_eq!(
            lines.next().map(str::trim),
            Some(apart.pid().to_string().as_str()),
            "its own group"
        );
        assert_eq!(stderr, "err\n");

        let sleeper = Background::start_apart(cmd!(sh, "sleep 30"), dir.path(), STOP_GRACE).unwrap();
        let pid = Pid::from_raw(i32::try_from(sleeper.pid()).unwrap());
        sleeper.leave_running();
        assert!(kill(pid, None).is_ok(), "still running after being left");
        kill(pid, Signal::SIGKILL).unwrap();
    }
}
