//! The backend and frontend as local processes (for `run` and `bench`): started from their
//! binaries, their "listening on" line read to learn the port, readiness awaited, and stopped.

use std::{
    fs::{File, OpenOptions},
    io::{BufRead, BufReader, Read, Seek, SeekFrom},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Logs {
    /// Printed on our stderr with the service's name as prefix.
    Prefixed,
    /// Written by the service straight to `<folder>/<name>.log` (stdout and stderr, appended),
    /// nothing read back but the listening line. For `bench`: a reader of the service's pipes
    /// would run on the cores the load is measured on, and cost each logged request a wake-up.
    Files(PathBuf),
}

/// Where a started service's output goes, and how its listening address is learnt.
enum Output {
    /// Forwarded line by line by two threads; the address arrives on the channel.
    Forwarded(mpsc::Receiver<String>),
    /// In a file, read from where this process's output begins.
    File(LogTail),
}

/// A running service binary.
pub struct ServiceProcess {
    /// Its name, for messages and log prefixes.
    pub name: &'static str,
    /// The process.
    pub child: Child,
    output: Output,
    /// Whether its unexpected exit was reported already.
    exit_reported: bool,
}

/// Log lines shown when a service whose log is in a file fails to start.
const RECENT_LINES: usize = 20;

impl ServiceProcess {
    /// Starts `binary` with `env` added to our environment.
    pub fn start(name: &'static str, binary: &Path, env: &[(&str, String)], logs: &Logs) -> anyhow::Result<Self> {
        // A long-running child whose output is streamed line by line: xshell runs commands to
        // completion, so this one process is started with std::process (arguments still separate).
        let mut command = Command::new(binary);
        command.envs(env.iter().map(|(k, v)| (k, v))).stdin(Stdio::null());
        let tail = match logs {
            Logs::Prefixed => {
                command.stdout(Stdio::piped()).stderr(Stdio::piped());
                None
            }
            Logs::Files(folder) => {
                let (file, tail) = LogTail::open(&folder.join(format!("{name}.log")))?;
                command.stdout(file.try_clone()?).stderr(file);
                Some(tail)
            }
        };
        let mut child = command
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let output = match tail {
            Some(tail) => Output::File(tail),
            None => forward_output(&mut child, name),
        };
        Ok(Self {
            name,
            child,
            output,
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
            let address = match &mut self.output {
                Output::Forwarded(address) => address.recv_timeout(Duration::from_millis(100)).ok(),
                Output::File(tail) => {
                    let address = tail.find_line(listening_address)?;
                    if address.is_none() {
                        // Short: `bench` reads the start-up time off this loop.
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    address
                }
            };
            if let Some(address) = address {
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
        match &self.output {
            Output::Forwarded(_) => "; its log is above".to_owned(),
            Output::File(tail) => match tail.last_lines(RECENT_LINES) {
                Ok(lines) if lines.is_empty() => format!("; it logged nothing (log: {})", tail.path.display()),
                Ok(lines) => format!(
                    "; its last log lines (all of them in {}):\n  {}",
                    tail.path.display(),
                    lines.join("\n  ")
                ),
                Err(e) => format!("; its log {} could not be read: {e:#}", tail.path.display()),
            },
        }
    }
}

/// Starts the threads that copy a child's output lines to our stderr with its name as prefix.
fn forward_output(child: &mut Child, name: &str) -> Output {
    let (tx, address) = mpsc::channel();
    let prefix = format!("{name:<8} | ");
    if let Some(stderr) = child.stderr.take() {
        let prefix = prefix.clone();
        std::thread::spawn(move || forward(stderr, &prefix, Some(tx)));
    }
    if let Some(stdout) = child.stdout.take() {
        std::thread::spawn(move || forward(stdout, &prefix, None));
    }
    Output::Forwarded(address)
}

/// Copies a child's output lines to our stderr with a prefix, and reports its listening address.
fn forward(stream: impl std::io::Read, prefix: &str, address: Option<mpsc::Sender<String>>) {
    for line in BufReader::new(stream).lines().map_while(Result::ok) {
        if let Some(tx) = &address
            && let Some(url) = listening_address(&line)
        {
            let _ = tx.send(url);
        }
        eprintln!("{prefix}{line}");
    }
}

/// A service's log file, read from where the current process's output begins (a restarted
/// service appends to the same file, and its predecessor's lines are not its own).
struct LogTail {
    path: PathBuf,
    /// Where this process's output begins.
    start: u64,
    /// Where reading goes on.
    file: File,
    /// Bytes read after the last complete line.
    partial: Vec<u8>,
}

impl LogTail {
    /// Opens (creating it and its folder) the log at `path` for appending; returns the file
    /// for the child and the tail that reads what the child writes.
    fn open(path: &Path) -> anyhow::Result<(File, LogTail)> {
        if let Some(folder) = path.parent() {
            std::fs::create_dir_all(folder).with_context(|| format!("creating {}", folder.display()))?;
        }
        let writer = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("opening {}", path.display()))?;
        let start = writer.metadata()?.len();
        let mut file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
        file.seek(SeekFrom::Start(start))?;
        let tail = LogTail {
            path: path.to_owned(),
            start,
            file,
            partial: Vec::new(),
        };
        Ok((writer, tail))
    }

    /// Reads what was written since the last call; returns the first complete line for which
    /// `find` answers (the lines before it are consumed).
    fn find_line<T>(&mut self, find: impl Fn(&str) -> Option<T>) -> anyhow::Result<Option<T>> {
        self.file
            .read_to_end(&mut self.partial)
            .with_context(|| format!("reading {}", self.path.display()))?;
        while let Some(end) = self.partial.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=end).collect();
            if let Some(found) = find(String::from_utf8_lossy(&line).trim_end()) {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    /// The last `count` lines this process wrote (read from at most its last 64 KiB).
    fn last_lines(&self, count: usize) -> anyhow::Result<Vec<String>> {
        let mut file = File::open(&self.path)?;
        let end = file.metadata()?.len();
        file.seek(SeekFrom::Start(self.start.max(end.saturating_sub(64 * 1024))))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        let text = String::from_utf8_lossy(&bytes);
        let lines: Vec<&str> = text.lines().collect();
        Ok(lines[lines.len().saturating_sub(count)..]
            .iter()
            .map(|l| (*l).to_owned())
            .collect())
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
            .push(ServiceProcess::start(name, &self.bin_dir.join(name), env, &self.logs)?);
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
        let service = ServiceProcess::start(name, &self.bin_dir.join(name), env, &self.logs)?;
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
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    /// A stand-in service: a shell script, as `name` in `dir`, running `body`.
    fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    fn soon() -> Instant {
        Instant::now() + Duration::from_secs(10)
    }

    #[test]
    fn a_service_logging_to_a_file_is_found_listening_and_its_lines_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let logs = Logs::Files(dir.path().join("logs"));
        let stop = AtomicBool::new(false);
        // The listening line comes late, on stderr, after a line on stdout and a half line.
        let first = script(
            dir.path(),
            "first",
            "echo starting; printf 'half '; sleep 0.2; echo line >&2; \
             echo '{\"message\":\"listening on http://127.0.0.1:1111\"}' >&2; exec sleep 30",
        );
        let mut service = ServiceProcess::start("backend", &first, &[], &logs).unwrap();
        assert_eq!(service.wait_listening(soon(), &stop).unwrap(), "http://127.0.0.1:1111");
        signal(&mut service, Signal::SIGKILL);
        wait_stopped(&mut service, soon());

        // Started again, it appends to the same file; only its own listening line counts.
        let second = script(
            dir.path(),
            "second",
            "sleep 0.2; echo 'listening on http://127.0.0.1:2222' >&2; exec sleep 30",
        );
        let mut again = ServiceProcess::start("backend", &second, &[], &logs).unwrap();
        assert_eq!(again.wait_listening(soon(), &stop).unwrap(), "http://127.0.0.1:2222");
        signal(&mut again, Signal::SIGKILL);
        wait_stopped(&mut again, soon());

        let log = std::fs::read_to_string(dir.path().join("logs/backend.log")).unwrap();
        assert_eq!(
            log,
            "starting\nhalf line\n{\"message\":\"listening on http://127.0.0.1:1111\"}\n\
             listening on http://127.0.0.1:2222\n"
        );
    }

    #[test]
    fn a_service_that_dies_logging_to_a_file_is_explained_by_its_last_lines() {
        let dir = tempfile::tempdir().unwrap();
        let logs = Logs::Files(dir.path().join("logs"));
        let stop = AtomicBool::new(false);
        let path = dir.path().join("logs/backend.log");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, "an earlier run's line\n").unwrap();
        let dying = script(
            dir.path(),
            "dying",
            "for i in $(seq 1 30); do echo \"line $i\"; done; echo 'DATABASE_URL is not valid' >&2; exit 3",
        );
        let mut service = ServiceProcess::start("backend", &dying, &[], &logs).unwrap();
        let error = format!("{:#}", service.wait_listening(soon(), &stop).unwrap_err());
        assert!(
            error.starts_with("the backend exited during start-up (exit status: 3)"),
            "{error}"
        );
        assert!(error.contains(&path.display().to_string()), "{error}");
        assert!(
            error.ends_with("line 29\n  line 30\n  DATABASE_URL is not valid"),
            "{error}"
        );
        assert!(
            error.contains("  line 12\n") && !error.contains("line 11\n"),
            "the last 20 lines: {error}"
        );
        assert!(!error.contains("earlier run"), "{error}");

        let silent = script(dir.path(), "silent", "exit 1");
        let mut service = ServiceProcess::start("backend", &silent, &[], &logs).unwrap();
        let error = format!("{:#}", service.wait_listening(soon(), &stop).unwrap_err());
        assert!(error.contains("it logged nothing"), "{error}");
    }

    #[test]
    fn finds_the_address_in_text_and_json_logs() {
        let text = "2026-11-25T13:00:00Z  INFO todo_service::shutdown: listening on http://127.0.0.1:41234";
        assert_eq!(listening_address(text).as_deref(), Some("http://127.0.0.1:41234"));
        let json = r#"{"timestamp":"x","level":"INFO","message":"listening on http://127.0.0.1:8000","target":"t"}"#;
        assert_eq!(listening_address(json).as_deref(), Some("http://127.0.0.1:8000"));
        assert_eq!(listening_address("nothing here"), None);
    }
}
