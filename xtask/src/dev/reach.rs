//! What `dev` keeps open while it watches: port-forwards to the release's frontend and backend on
//! fixed local ports (the URL people open stays the same for the whole session), and the pods'
//! logs streamed with a component prefix.
//!
//! `kubectl port-forward service/...` forwards to one pod it picks at the start, and stops when
//! that pod goes away; a rollout replaces the pods. So the forwards are opened again, on the same
//! ports, after every rollout, and whenever one is seen to have stopped. `kubectl logs --follow
//! -l ...` follows the pods that matched when it started, so it is started again after a rollout
//! too, from the moment the rollout began.

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    thread::{self, JoinHandle},
    time::{Duration, Instant},
};

use anyhow::Context;
use nix::{
    sys::signal::{Signal, kill},
    unistd::Pid,
};
use xshell::Shell;

use crate::{
    k8s::{
        port_forward::Forwards,
        release::{Release, STREAM_TIMEOUT},
        secret,
    },
    redact::Redactor,
    smoke,
};

/// How long the serving checks may wait for the services to answer, and each request.
const SERVING_TIMEOUT: Duration = Duration::from_secs(60);
/// A forward that cannot be opened again is retried this often (not at every look).
const RETRY_EVERY: Duration = Duration::from_secs(2);

/// The forwards and the log stream of a `dev` session.
pub(super) struct Reach {
    release: Release,
    forwards: Option<Forwards>,
    ports: Option<(u16, u16)>,
    logs: Option<LogStream>,
    stream_logs: bool,
    redactor: Redactor,
    retry_at: Instant,
}

impl Reach {
    /// Opens the forwards on free local ports and starts the log stream (unless `stream_logs` is
    /// false).
    pub(super) fn open(sh: &Shell, release: &Release, stream_logs: bool) -> anyhow::Result<Reach> {
        let mut redactor = Redactor::default();
        if let Ok(Some(values)) = secret::read(sh, release) {
            values.values().for_each(|value| redactor.add(value));
        }
        let mut reach = Reach {
            release: release.clone(),
            forwards: None,
            ports: None,
            logs: None,
            stream_logs,
            redactor,
            retry_at: Instant::now(),
        };
        reach.reopen(sh)?;
        if stream_logs {
            reach.logs = Some(LogStream::start(sh, &reach.release, &reach.redactor, "--tail=20")?);
        }
        Ok(reach)
    }

    /// The app's stable local URL (the frontend's forward).
    pub(super) fn url(&self) -> String {
        let port = self.ports.map_or(0, |(_, frontend)| frontend);
        format!("http://127.0.0.1:{port}/")
    }

    /// After a rollout: the forwards again on the same ports, the logs from `since` ago.
    pub(super) fn after_rollout(&mut self, sh: &Shell, since: Duration) -> anyhow::Result<()> {
        if let Some(logs) = self.logs.take() {
            logs.stop();
        }
        if self.stream_logs {
            let since = format!("--since={}s", since.as_secs() + 1);
            self.logs = Some(LogStream::start(sh, &self.release, &self.redactor, &since)?);
        }
        self.reopen(sh)
    }

    /// Opens a forward that stopped again (its pod went away), on the same port; at most every
    /// [`RETRY_EVERY`] while that fails.
    pub(super) fn keep_up(&mut self, sh: &Shell) {
        let stopped = match self.forwards.as_mut() {
            Some(forwards) => forwards.stopped(),
            None => Some("it could not be opened".to_owned()),
        };
        let Some(why) = stopped else { return };
        if Instant::now() < self.retry_at {
            return;
        }
        eprintln!("    the port-forward stopped ({why}): opening it again on the same port");
        if let Err(err) = self.reopen(sh) {
            eprintln!("    (could not open it again: {err:#}; retrying)");
            self.retry_at = Instant::now() + RETRY_EVERY;
        }
    }

    /// The serving checks through the forwards: health, readiness, and the backend's build is
    /// `expect_version`. The one-line error names the step that failed.
    pub(super) fn check_serving(&self, expect_version: &str) -> anyhow::Result<()> {
        let forwards = self.forwards.as_ref().context("the port-forwards are not open")?;
        let target = smoke::Target {
            frontend: forwards.frontend.clone(),
            backend: forwards.backend.clone(),
            expect_version: Some(expect_version.to_owned()),
            timeout: SERVING_TIMEOUT,
        };
        let report = smoke::run_serving_checks(&target);
        match report.failed_step() {
            None => Ok(()),
            Some(failed) => anyhow::bail!(
                "not serving: \"{}\" failed: {}",
                failed.name,
                failed.error.as_ref().map_or("failed", |e| e.message.as_str())
            ),
        }
    }

    /// Stops the forwards and the log stream.
    pub(super) fn close(mut self) {
        if let Some(logs) = self.logs.take() {
            logs.stop();
        }
        if let Some(forwards) = self.forwards.take() {
            forwards.close();
        }
    }

    /// Closes the forwards and opens them again, on the ports of the first ones.
    fn reopen(&mut self, sh: &Shell) -> anyhow::Result<()> {
        if let Some(forwards) = self.forwards.take() {
            forwards.close();
        }
        let forwards = Forwards::open_on(sh, &self.release, self.ports)?;
        self.ports = Some(forwards.ports());
        self.forwards = Some(forwards);
        Ok(())
    }
}

/// `kubectl logs --follow` of the release's pods, each line printed on stderr as
/// `<component> | <line>`, secrets scrubbed.
struct LogStream {
    child: Child,
    reader: Option<JoinHandle<()>>,
}

impl LogStream {
    /// Starts following the logs; `from` is `--tail=N` or `--since=Ns`.
    fn start(sh: &Shell, release: &Release, redactor: &Redactor, from: &str) -> anyhow::Result<LogStream> {
        let selector = release.selector();
        let cmd = release.kubectl(sh, STREAM_TIMEOUT).args([
            "logs",
            "-l",
            &selector,
            "--all-containers",
            "--prefix",
            "--follow",
            "--max-log-requests=20",
            from,
        ]);
        let shown = cmd.to_string();
        eprintln!("$ {shown}");
        // A stream read line by line as it comes: xshell runs commands to completion.
        let mut child = Command::from(cmd)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("could not run `{shown}`"))?;
        let stdout = child.stdout.take().context("kubectl's stdout")?;
        let redactor = redactor.clone();
        let reader = thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                eprintln!("{}", with_component(&redactor.redact(&line)));
            }
        });
        Ok(LogStream {
            child,
            reader: Some(reader),
        })
    }

    /// Stops kubectl (SIGTERM, then SIGKILL after a moment) and prints what it had left.
    fn stop(mut self) {
        if let Ok(pid) = i32::try_from(self.child.id()) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(2);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}

/// `[pod/todo-backend-6c9d8f7b5-x2v7q/backend] listening` (kubectl's `--prefix`) as
/// `backend  | listening`; other lines as they are.
fn with_component(line: &str) -> String {
    let parsed = line
        .strip_prefix("[pod/")
        .and_then(|rest| rest.split_once("] "))
        .and_then(|(source, text)| Some((source.rsplit_once('/')?.1, text)));
    match parsed {
        Some((container, text)) => format!("{container:<8} | {text}"),
        None => line.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_lines_are_prefixed_with_their_component() {
        assert_eq!(
            with_component("[pod/todo-backend-6c9d8f7b5-x2v7q/backend] listening on 0.0.0.0:8000"),
            "backend  | listening on 0.0.0.0:8000"
        );
        assert_eq!(
            with_component("[pod/todo-frontend-7d9f/frontend] GET / 200"),
            "frontend | GET / 200"
        );
        assert_eq!(with_component("plain line"), "plain line");
    }
}
