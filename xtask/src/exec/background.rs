//! A program running alongside the workflow: started with its output captured, polled, asked to
//! stop with a signal, and waited for with a deadline.
//!
//! `deploy` runs `helm upgrade --wait` this way while it watches the pods itself, so it can stop
//! Helm (which then rolls the release back) the moment it knows why the rollout cannot succeed;
//! port-forwards live this way while the smoke checks use them. A program still running when its
//! [`Background`] is dropped is stopped, so an error or a panic never leaves one behind.

use std::{
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

/// A running (or finished) program and what it printed.
#[derive(Debug)]
pub struct Background {
    command: String,
    child: Child,
    stdout: Receiver<Vec<u8>>,
    stderr: Receiver<Vec<u8>>,
    status: Option<ExitStatus>,
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
            stdout,
            stderr,
            status: None,
        })
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

    /// Stops it: SIGTERM, then SIGKILL after [`STOP_GRACE`]. Safe to call when it has finished.
    pub fn stop(&mut self) {
        if matches!(self.try_finished(), Ok(Some(_))) {
            return;
        }
        let _ = self.signal(Signal::SIGTERM);
        if !matches!(self.wait_for(STOP_GRACE), Ok(Some(_))) {
            let _ = self.child.kill();
            self.status = self.child.wait().ok();
        }
    }

    /// Everything it wrote to stdout and stderr; call once it has finished.
    pub fn output(&self) -> (String, String) {
        (collect(&self.stdout), collect(&self.stderr))
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        self.stop();
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
}
