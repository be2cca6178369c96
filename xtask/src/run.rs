//! `cargo xtask run`: the app on this machine, no cluster needed.
//!
//! Builds both binaries, starts the backend (SQLite file under `target/run/`) and the frontend on
//! 127.0.0.1, waits until both are ready, prints the URL and streams both logs with a prefix.
//! Ctrl-C stops both cleanly. `--smoke` runs the smoke checks against them and exits with their
//! result; `--watch` rebuilds and restarts the service whose code changed ([`reload`]).

mod reload;

use std::{
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use anyhow::{Context, bail};
use clap::Args;
use xshell::{Shell, cmd};

use self::reload::Reload;
use crate::{
    exec::service::{Logs, Services},
    progress::step,
    smoke,
};

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
    /// Start the binaries already built in cargo's target folder (by `cargo build -p backend -p
    /// frontend` or a test run) instead of building them first.
    #[arg(long)]
    pub no_build: bool,
    /// Where the SQLite file and the JWT secret live (created if missing) [default: target/run].
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Run the smoke checks against the running pair, stop both, and exit with the result.
    #[arg(long)]
    pub smoke: bool,
    /// Print the URLs and process ids as one JSON line on stdout once both are ready.
    #[arg(long)]
    pub json: bool,
    /// Seconds to wait for each service to become ready.
    #[arg(long, default_value_t = 60)]
    pub timeout: u64,
    /// Watch backend/, frontend/, helm/ and the workspace manifests; on each save that changes a
    /// file, rebuild and restart only the service whose code changed (both for backend/service/
    /// and the manifests). A failed build leaves the running services as they are.
    #[arg(long, conflicts_with = "smoke")]
    pub watch: bool,
    /// The folder `--watch` watches instead of the project (tests: saves there change no real
    /// source). With `--no-build`, a change restarts the binaries as they are.
    #[arg(long, hide = true, requires = "watch")]
    pub watch_root: Option<PathBuf>,
}

impl Run {
    /// Builds, starts, waits, then streams logs until Ctrl-C (or runs the smoke checks).
    pub fn run(self, sh: &Shell) -> anyhow::Result<()> {
        let profile_flag = self.release.then_some("--release");
        if !self.no_build {
            step("build backend and frontend", || {
                Ok(cmd!(
                    sh,
                    "cargo build --quiet --package backend --package frontend {profile_flag...}"
                )
                .run()?)
            })?;
        }
        let bin_dir = crate::target_dir().join(if self.release { "release" } else { "debug" });
        for service in ["backend", "frontend"] {
            let binary = bin_dir.join(service);
            if !binary.is_file() {
                bail!(
                    "no {service} binary at {}: build it with `cargo build -p backend -p frontend{}`, or leave out --no-build",
                    binary.display(),
                    if self.release { " --release" } else { "" }
                );
            }
        }
        // A path typed by the user is taken from where they are, like every path argument.
        let data_dir = self
            .data_dir
            .as_deref()
            .map_or_else(|| crate::target_dir().join("run"), crate::from_caller);
        std::fs::create_dir_all(&data_dir).with_context(|| format!("creating {}", data_dir.display()))?;
        let jwt_secret = jwt_secret(&data_dir)?;

        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst)).context("installing the Ctrl-C handler")?;

        let mut services = Services::new(&bin_dir, Logs::Prefixed, Duration::from_secs(self.timeout));
        let outcome = self.serve(sh, &data_dir, jwt_secret, &stop, &mut services);
        // Whatever happened — ready, failed to start, interrupted — nothing is left running.
        services.stop();
        outcome
    }

    fn serve(
        &self,
        sh: &Shell,
        data_dir: &Path,
        jwt_secret: String,
        stop: &AtomicBool,
        services: &mut Services,
    ) -> anyhow::Result<()> {
        let database_url = format!("sqlite://{}", data_dir.join("todo.db").display());
        let backend_env = vec![
            ("LISTEN_ADDR", format!("127.0.0.1:{}", self.backend_port)),
            ("DATABASE_URL", database_url),
            ("JWT_SECRET", jwt_secret),
            // No pause when stopped (a restart under --watch waits for it); requests in flight
            // still finish.
            ("SHUTDOWN_DRAIN_SECONDS", "0".to_owned()),
        ];
        let (backend_url, _) = services.start("backend", &backend_env, stop)?;
        let frontend_env = vec![
            ("LISTEN_ADDR", format!("127.0.0.1:{}", self.port)),
            ("BACKEND_URL", backend_url.clone()),
            ("SHUTDOWN_DRAIN_SECONDS", "0".to_owned()),
        ];
        let (frontend_url, _) = services.start("frontend", &frontend_env, stop)?;
        if self.json {
            println!(
                "{}",
                serde_json::json!({
                    "frontend_url": frontend_url, "backend_url": backend_url,
                    "frontend_pid": services.pid("frontend")?, "backend_pid": services.pid("backend")?,
                })
            );
        }
        eprintln!(
            "\n    Todo is running at {frontend_url}\n    (API {backend_url}, data in {}). Press Ctrl-C to stop.\n",
            // Shown relative to the project when inside it, as before.
            data_dir
                .strip_prefix(crate::project_root())
                .unwrap_or(data_dir)
                .display()
        );
        if self.smoke {
            let target = smoke::Target {
                frontend: frontend_url,
                backend: backend_url,
                expect_version: None,
                timeout: Duration::from_secs(self.timeout),
            };
            let report = smoke::run_checks(&target);
            report.publish(None, false)?;
            return report.into_result();
        }
        if self.watch {
            let started = vec![
                ("backend", reload::pinned(backend_env, &backend_url)),
                ("frontend", reload::pinned(frontend_env, &frontend_url)),
            ];
            return self.watch(sh, started, services, stop);
        }
        services.supervise(stop);
        Ok(())
    }

    /// `--watch`: rebuilds and restarts the `started` services as their sources change.
    fn watch(
        &self,
        sh: &Shell,
        started: Vec<reload::ServiceEnv>,
        services: &mut Services,
        stop: &AtomicBool,
    ) -> anyhow::Result<()> {
        let reload = Reload {
            sh,
            build: !self.no_build,
            release: self.release,
            json: self.json,
            services: started,
        };
        let root = self
            .watch_root
            .as_deref()
            .map_or_else(crate::project_root, crate::from_caller);
        reload.watch(&root, services, stop)
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
