//! The backend and frontend as local processes (for `run` and `bench`): started from their
//! binaries, their "listening on" line read to learn the port, readiness awaited, and stopped.

use std::{
    collections::VecDeque,
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
        mpsc,
    },
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use nix::{
    sys::signal::{Signal, kill},
    unistd::Pid,
};
use todo_service::contract::{LISTENING_ON, READY_PATH};

use super::http::{Poll, wait_for_ok};

/// What happens to a child's log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Logs {
    /// Printed on our stderr with the service's name as prefix.
    Prefixed,
    /// Read (for the listening address) and dropped.
    Discarded,
}

/// A running service binary.
pub struct ServiceProcess {
    /// Its name, for messages and log prefixes.
    pub name: &'static str,
    /// The process.
    pub child: Child,
    /// The address it reported in its "listening on" line.
    address: mpsc::Receiver<String>,
    /// Its last log lines, shown when it fails to start and its logs were not printed.
    recent: Arc<Mutex<VecDeque<String>>>,
    logs: Logs,
    /// Whether its unexpected exit was reported already.
    exit_reported: bool,
}

/// Log lines kept per service for start-up failures.
const RECENT_LINES: usize = 20;

impl ServiceProcess {
    /// Starts `binary` with `env` added to our environment.
    pub fn start(name: &'static str, binary: &Path, env: &[(&str, String)], logs: Logs) -> anyhow::Result<Self> {
        // A long-running child whose output is streamed line by line: xshell runs commands to
        // completion, so this one process is started with std::process (arguments still separate).
        let mut command = Command::new(binary);
        command
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let (tx, address) = mpsc::channel();
        let recent = Arc::new(Mutex::new(VecDeque::with_capacity(RECENT_LINES)));
        let prefix = format!("{name:<8} | ");
        if let Some(stderr) = child.stderr.take() {
            let (prefix, recent) = (prefix.clone(), recent.clone());
            std::thread::spawn(move || forward(stderr, &prefix, logs, &recent, Some(tx)));
        }
        if let Some(stdout) = child.stdout.take() {
            let recent = recent.clone();
            std::thread::spawn(move || forward(stdout, &prefix, logs, &recent, None));
        }
        Ok(Self {
            name,
            child,
            address,
            recent,
            logs,
            exit_reported: false,
        })
    }

    /// Waits for the "listening on" line, then for /ready to answer 200; returns the base URL.
    pub fn wait_ready(&mut self, timeout: Duration, stop: &AtomicBool) -> anyhow::Result<String> {
        let deadline = Instant::now() + timeout;
        let base = self.wait_listening(deadline, stop)?;
        self.wait_answering(&base, deadline, stop)?;
        Ok(base)
    }

    /// Waits for the "listening on" line; returns the base URL it names.
    fn wait_listening(&mut self, deadline: Instant, stop: &AtomicBool) -> anyhow::Result<String> {
        loop {
            if let Ok(address) = self.address.recv_timeout(Duration::from_millis(100)) {
                return Ok(address);
            }
            self.check_alive(stop, deadline)?;
        }
    }

    /// Waits for `base`'s /ready to answer 200.
    fn wait_answering(&mut self, base: &str, deadline: Instant, stop: &AtomicBool) -> anyhow::Result<()> {
        let poll = Poll {
            deadline,
            // Short: `bench` reads the start-up time off this loop.
            interval: Duration::from_millis(2),
            attempt_timeout: Duration::from_secs(2),
        };
        wait_for_ok(&format!("{base}{READY_PATH}"), poll, || {
            self.check_alive(stop, deadline)
        })
    }

    fn check_alive(&mut self, stop: &AtomicBool, deadline: Instant) -> anyhow::Result<()> {
        if stop.load(Ordering::SeqCst) {
            bail!("interrupted while waiting for the {} to start", self.name);
        }
        if let Some(status) = self.child.try_wait()? {
            bail!("the {} exited during start-up ({status}){}", self.name, self.log_hint());
        }
        if Instant::now() > deadline {
            bail!("the {} did not become ready in time{}", self.name, self.log_hint());
        }
        Ok(())
    }

    /// Where to read why: the log printed above, or its last lines here.
    fn log_hint(&self) -> String {
        match self.logs {
            Logs::Prefixed => "; its log is above".to_owned(),
            Logs::Discarded => {
                let recent = self
                    .recent
                    .lock()
                    .map(|r| r.iter().cloned().collect::<Vec<_>>())
                    .unwrap_or_default();
                format!("; its last log lines:\n  {}", recent.join("\n  "))
            }
        }
    }
}

/// Copies a child's output lines to our stderr with a prefix (or keeps only the last few), and
/// reports its listening address.
fn forward(
    stream: impl std::io::Read,
    prefix: &str,
    logs: Logs,
    recent: &Mutex<VecDeque<String>>,
    address: Option<mpsc::Sender<String>>,
) {
    for line in BufReader::new(stream).lines().map_while(Result::ok) {
        if let Some(tx) = &address
            && let Some(url) = listening_address(&line)
        {
            let _ = tx.send(url);
        }
        match logs {
            Logs::Prefixed => eprintln!("{prefix}{line}"),
            Logs::Discarded => {
                if let Ok(mut recent) = recent.lock() {
                    if recent.len() == RECENT_LINES {
                        recent.pop_front();
                    }
                    recent.push_back(line);
                }
            }
        }
    }
}

/// The URL in a "listening on http://..." log line, as text or inside a JSON log line.
fn listening_address(line: &str) -> Option<String> {
    let rest = line.split(LISTENING_ON).nth(1)?.trim_start();
    let url: String = rest.chars().take_while(|c| !c.is_whitespace() && *c != '"').collect();
    url.starts_with("http://").then_some(url)
}

/// How long each part of a [`Services::restart`] took, counted from its start.
#[derive(Debug, Clone)]
pub struct Restart {
    /// The base URL of the new process.
    pub url: String,
    /// Until the old process had exited and the new one logged its listening address.
    pub listening: Duration,
    /// Until the new one's /ready answered 200.
    pub ready: Duration,
}

/// The app's services as local processes (`run`, `bench`), started one after the other, each
/// ready before the next starts (the frontend needs the backend's URL), and stopped together.
pub struct Services {
    bin_dir: PathBuf,
    logs: Logs,
    timeout: Duration,
    running: Vec<ServiceProcess>,
}

impl Services {
    /// None running yet; binaries come from `bin_dir`, each gets `timeout` to become ready.
    pub fn new(bin_dir: &Path, logs: Logs, timeout: Duration) -> Services {
        Services {
            bin_dir: bin_dir.to_owned(),
            logs,
            timeout,
            running: Vec::new(),
        }
    }

    /// Starts the binary `name` with `env` and waits until it is ready; returns its URL and how
    /// long it took to become ready.
    pub fn start(
        &mut self,
        name: &'static str,
        env: &[(&str, String)],
        stop: &AtomicBool,
    ) -> anyhow::Result<(String, Duration)> {
        let started = Instant::now();
        self.running
            .push(ServiceProcess::start(name, &self.bin_dir.join(name), env, self.logs)?);
        let service = self.running.last_mut().context("just started")?;
        let url = service.wait_ready(self.timeout, stop)?;
        Ok((url, started.elapsed()))
    }

    /// The process id of the running service `name`.
    pub fn pid(&self, name: &str) -> anyhow::Result<u32> {
        self.running
            .iter()
            .find(|s| s.name == name)
            .map(|s| s.child.id())
            .with_context(|| format!("the {name} is not running"))
    }

    /// Waits for Ctrl-C; a service that dies is reported and the others keep running, so their
    /// own view of the failure (the frontend's "service unavailable" page, say) stays visible.
    pub fn supervise(&mut self, stop: &AtomicBool) {
        while !stop.load(Ordering::SeqCst) {
            if self.report_exits() {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Reports, once each, the services that exited on their own; true when none is left running.
    pub fn report_exits(&mut self) -> bool {
        for service in &mut self.running {
            if !service.exit_reported
                && let Ok(Some(status)) = service.child.try_wait()
            {
                eprintln!(
                    "==> the {} exited unexpectedly ({status}); Ctrl-C stops the rest",
                    service.name
                );
                service.exit_reported = true;
            }
        }
        self.running.iter().all(|s| s.exit_reported)
    }

    /// Stops the running `name` the way an orchestrator does (SIGTERM: it stops accepting and
    /// finishes the requests in flight; the drain pause is its `SHUTDOWN_DRAIN_SECONDS`), then
    /// starts its binary again with `env` and waits until it is ready. The new process binds the
    /// same address, so it can only start once the old one has let go of it.
    pub fn restart(
        &mut self,
        name: &'static str,
        env: &[(&str, String)],
        stop: &AtomicBool,
    ) -> anyhow::Result<Restart> {
        let started = Instant::now();
        let at = match self.running.iter().position(|s| s.name == name) {
            Some(at) => {
                let mut old = self.running.remove(at);
                signal(&mut old, Signal::SIGTERM);
                wait_stopped(&mut old, Instant::now() + STOP_TIMEOUT);
                at
            }
            None => self.running.len(),
        };
        let service = ServiceProcess::start(name, &self.bin_dir.join(name), env, self.logs)?;
        // In the list before waiting: one that fails to start is stopped like the rest.
        self.running.insert(at, service);
        let service = &mut self.running[at];
        let deadline = Instant::now() + self.timeout;
        let url = service.wait_listening(deadline, stop)?;
        let listening = started.elapsed();
        service.wait_answering(&url, deadline, stop)?;
        Ok(Restart {
            url,
            listening,
            ready: started.elapsed(),
        })
    }

    /// Stops every service (see [`stop_all`]).
    pub fn stop(&mut self) {
        if !self.running.is_empty() {
            stop_all(&mut self.running);
            self.running.clear();
        }
    }
}

impl Drop for Services {
    /// Whatever happened (ready, failed to start, interrupted, an error), nothing is left running.
    fn drop(&mut self) {
        self.stop();
    }
}

/// How long a service may take to stop before it is killed (longer than the services' default
/// `SHUTDOWN_TIMEOUT_SECONDS`, so that in-flight requests can finish).
const STOP_TIMEOUT: Duration = Duration::from_secs(15);

/// Asks every service to stop (SIGINT: no drain pause) and waits; kills what does not stop.
fn stop_all(services: &mut [ServiceProcess]) {
    for service in services.iter_mut().rev() {
        signal(service, Signal::SIGINT);
    }
    let deadline = Instant::now() + STOP_TIMEOUT;
    for service in services.iter_mut() {
        wait_stopped(service, deadline);
    }
    eprintln!("==> stopped");
}

/// Sends `signal` to a service that is still running (never to a reaped process's id, which
/// another process may have by now).
fn signal(service: &mut ServiceProcess, signal: Signal) {
    if let Ok(None) = service.child.try_wait()
        && let Ok(pid) = i32::try_from(service.child.id())
    {
        let _ = kill(Pid::from_raw(pid), signal);
    }
}

/// Waits until `service` has exited, killing it at `deadline`.
fn wait_stopped(service: &mut ServiceProcess, deadline: Instant) {
    while let Ok(None) = service.child.try_wait() {
        if Instant::now() > deadline {
            eprintln!("==> the {} did not stop in time; killing it", service.name);
            let _ = service.child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = service.child.wait();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_address_in_text_and_json_logs() {
        let text = "2026-11-25T13:00:00Z  INFO todo_service::shutdown: listening on http://127.0.0.1:41234";
        assert_eq!(listening_address(text).as_deref(), Some("http://127.0.0.1:41234"));
        let json = r#"{"timestamp":"x","level":"INFO","message":"listening on http://127.0.0.1:8000","target":"t"}"#;
        assert_eq!(listening_address(json).as_deref(), Some("http://127.0.0.1:8000"));
        assert_eq!(listening_address("nothing here"), None);
    }
}
