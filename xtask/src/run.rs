//! `cargo xtask run`: the app on this machine, no cluster needed.
//!
//! Builds both binaries, starts the backend (SQLite file under `target/run/`) and the frontend on
//! 127.0.0.1, waits until both are ready, prints the URL and streams both logs with a prefix.
//! Ctrl-C stops both cleanly. `--smoke` runs the smoke checks against them and exits with their
//! result.

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
        mpsc,
    },
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use clap::Args;
use nix::{
    sys::signal::{Signal, kill},
    unistd::Pid,
};
use xshell::{Shell, cmd};

use crate::{progress::step, smoke};

/// Arguments of `cargo xtask run`.
#[derive(Debug, Args)]
pub struct Run {
    /// Port of the web UI (0 picks a free one).
    #[arg(long, default_value_t = 3000)]
    pub port: u16,
    /// Port of the API (0 picks a free one).
    #[arg(long, default_value_t = 8000)]
    pub backend_port: u16,
    /// Build optimised binaries (slower to build, faster to run).
    #[arg(long)]
    pub release: bool,
    /// Where the SQLite file and the JWT secret live (created if missing).
    #[arg(long, default_value = "target/run")]
    pub data_dir: PathBuf,
    /// Run the smoke checks against the running pair, stop both, and exit with the result.
    #[arg(long)]
    pub smoke: bool,
    /// Print the URLs and process ids as one JSON line on stdout once both are ready.
    #[arg(long)]
    pub json: bool,
    /// Seconds to wait for each service to become ready.
    #[arg(long, default_value_t = 60)]
    pub timeout: u64,
}

impl Run {
    /// Builds, starts, waits, then streams logs until Ctrl-C (or runs the smoke checks).
    pub fn run(self, sh: &Shell) -> anyhow::Result<()> {
        let profile_flag = self.release.then_some("--release");
        step("build backend and frontend", || {
            Ok(cmd!(
                sh,
                "cargo build --quiet --package backend --package frontend {profile_flag...}"
            )
            .run()?)
        })?;
        let bin_dir = crate::target_dir(sh)?.join(if self.release { "release" } else { "debug" });
        let data_dir = sh.current_dir().join(&self.data_dir);
        std::fs::create_dir_all(&data_dir).with_context(|| format!("creating {}", data_dir.display()))?;
        let jwt_secret = jwt_secret(&data_dir)?;

        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst)).context("installing the Ctrl-C handler")?;

        let database_url = format!("sqlite://{}", data_dir.join("todo.db").display());
        let backend = Service::start(
            "backend",
            &bin_dir.join("backend"),
            &[
                ("LISTEN_ADDR", format!("127.0.0.1:{}", self.backend_port)),
                ("DATABASE_URL", database_url),
                ("JWT_SECRET", jwt_secret),
                ("SHUTDOWN_DRAIN_SECONDS", "0".to_owned()),
            ],
        )?;
        let mut services = vec![backend];
        let timeout = Duration::from_secs(self.timeout);
        let backend_url = services[0].wait_ready(timeout, &stop)?;
        let frontend = Service::start(
            "frontend",
            &bin_dir.join("frontend"),
            &[
                ("LISTEN_ADDR", format!("127.0.0.1:{}", self.port)),
                ("BACKEND_URL", backend_url.clone()),
                ("SHUTDOWN_DRAIN_SECONDS", "0".to_owned()),
            ],
        )?;
        services.push(frontend);
        let outcome = services[1].wait_ready(timeout, &stop).and_then(|frontend_url| {
            if self.json {
                println!(
                    "{}",
                    serde_json::json!({
                        "frontend_url": frontend_url, "backend_url": backend_url,
                        "frontend_pid": services[1].child.id(), "backend_pid": services[0].child.id(),
                    })
                );
            }
            eprintln!(
                "\n    Todo is running at {frontend_url}\n    (API {backend_url}, data in {}). Press Ctrl-C to stop.\n",
                self.data_dir.display()
            );
            if self.smoke {
                let target = smoke::Target {
                    frontend: frontend_url,
                    backend: backend_url.clone(),
                    expect_version: None,
                    timeout,
                };
                let report = smoke::run_checks(&target);
                print!("{}", report.render());
                report.into_result()
            } else {
                supervise(&mut services, &stop);
                Ok(())
            }
        });
        stop_all(&mut services);
        outcome
    }
}

/// A JWT secret kept in the data folder, so logins survive a restart of `cargo xtask run`.
fn jwt_secret(data_dir: &Path) -> anyhow::Result<String> {
    let path = data_dir.join("jwt-secret");
    if let Ok(existing) = std::fs::read_to_string(&path)
        && existing.trim().len() >= 32
    {
        return Ok(existing.trim().to_owned());
    }
    let mut bytes = [0_u8; 32];
    getrandom::fill(&mut bytes).map_err(|err| anyhow::anyhow!("no system randomness: {err}"))?;
    let secret: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    std::fs::write(&path, &secret).with_context(|| format!("writing {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(secret)
}

/// A child service whose log lines are printed with its name as prefix.
struct Service {
    name: &'static str,
    child: Child,
    /// The address it reported in its "listening on" line.
    address: mpsc::Receiver<String>,
}

impl Service {
    fn start(name: &'static str, binary: &Path, env: &[(&str, String)]) -> anyhow::Result<Self> {
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
        let prefix = format!("{name:<8} | ");
        if let Some(stderr) = child.stderr.take() {
            let prefix = prefix.clone();
            std::thread::spawn(move || forward(stderr, &prefix, Some(tx)));
        }
        if let Some(stdout) = child.stdout.take() {
            std::thread::spawn(move || forward(stdout, &prefix, None));
        }
        Ok(Self { name, child, address })
    }

    /// Waits for the "listening on" line, then for /ready to answer 200; returns the base URL.
    fn wait_ready(&mut self, timeout: Duration, stop: &AtomicBool) -> anyhow::Result<String> {
        let deadline = Instant::now() + timeout;
        let base = loop {
            if let Ok(address) = self.address.recv_timeout(Duration::from_millis(100)) {
                break address;
            }
            self.check_alive(stop, deadline)?;
        };
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(2)))
            .build()
            .into();
        loop {
            if agent
                .get(format!("{base}/ready"))
                .call()
                .is_ok_and(|r| r.status() == 200)
            {
                return Ok(base);
            }
            self.check_alive(stop, deadline)?;
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn check_alive(&mut self, stop: &AtomicBool, deadline: Instant) -> anyhow::Result<()> {
        if stop.load(Ordering::SeqCst) {
            bail!("interrupted while waiting for the {} to start", self.name);
        }
        if let Some(status) = self.child.try_wait()? {
            bail!("the {} exited during start-up ({status}); its log is above", self.name);
        }
        if Instant::now() > deadline {
            bail!("the {} did not become ready in time; its log is above", self.name);
        }
        Ok(())
    }
}

/// Copies a child's output lines to our stderr with a prefix, and reports its listening address.
fn forward(stream: impl std::io::Read, prefix: &str, address: Option<mpsc::Sender<String>>) {
    for line in BufReader::new(stream).lines().map_while(Result::ok) {
        if let Some(tx) = &address
            && let Some(rest) = line.split("listening on ").nth(1)
        {
            let url: String = rest.chars().take_while(|c| !c.is_whitespace()).collect();
            let _ = tx.send(url);
        }
        eprintln!("{prefix}{line}");
    }
}

/// Waits for Ctrl-C; a service that dies is reported and the other keeps running, so its own
/// view of the failure (the frontend's "service unavailable" page, say) stays visible.
fn supervise(services: &mut [Service], stop: &AtomicBool) {
    let mut reported = vec![false; services.len()];
    while !stop.load(Ordering::SeqCst) {
        for (service, reported) in services.iter_mut().zip(reported.iter_mut()) {
            if !*reported && let Ok(Some(status)) = service.child.try_wait() {
                eprintln!(
                    "==> the {} exited unexpectedly ({status}); Ctrl-C stops the rest",
                    service.name
                );
                *reported = true;
            }
        }
        if reported.iter().all(|r| *r) {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Asks every service to stop (SIGINT: no drain pause) and waits; kills what does not stop.
fn stop_all(services: &mut [Service]) {
    for service in services.iter_mut().rev() {
        if let Ok(None) = service.child.try_wait()
            && let Ok(pid) = i32::try_from(service.child.id())
        {
            let _ = kill(Pid::from_raw(pid), Signal::SIGINT);
        }
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    for service in services.iter_mut() {
        while let Ok(None) = service.child.try_wait() {
            if Instant::now() > deadline {
                eprintln!("==> the {} did not stop in time; killing it", service.name);
                let _ = service.child.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = service.child.wait();
    }
    eprintln!("==> stopped");
}
