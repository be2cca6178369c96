//! `cargo xtask run --watch`: on each change to the sources, rebuild with cargo and restart only
//! the service whose code changed; the other keeps running (and its sessions and connections).
//!
//! A restart stops the old process first (SIGTERM: it stops accepting and finishes the requests
//! it has in flight), then starts the new one on the same port: the ports are fixed for the
//! session, since the frontend knows the backend by its URL and the browser the frontend. So a
//! request in flight during a restart completes; one that arrives in the moment between the old
//! process letting go of the port and the new one binding it is refused (docs/deployment/).

use std::{
    path::Path,
    sync::atomic::{AtomicBool, Ordering},
    time::{Duration, Instant},
};

use xshell::{Shell, cmd};

use crate::{
    exec::service::{Restart, Services},
    progress::human,
    watch::{Change, QUIET, SourceWatcher, describe},
};

/// How each service is started again: its name and environment (with the port it got first).
pub type ServiceEnv = (&'static str, Vec<(&'static str, String)>);

/// What `run --watch` rebuilds and restarts.
pub struct Reload<'a> {
    /// The shell cargo runs in.
    pub sh: &'a Shell,
    /// Rebuild before restarting (`--no-build` restarts the binaries as they are).
    pub build: bool,
    /// `--release` builds.
    pub release: bool,
    /// Print each cycle's outcome as a JSON line on stdout.
    pub json: bool,
    /// The services in start order, with their environment.
    pub services: Vec<ServiceEnv>,
}

impl Reload<'_> {
    /// Watches the sources under `root` until `stop`, running one cycle per change.
    pub fn watch(&self, root: &Path, services: &mut Services, stop: &AtomicBool) -> anyhow::Result<()> {
        let mut watcher = SourceWatcher::start(root, QUIET)?;
        eprintln!(
            "==> watching backend/, frontend/, helm/ and the workspace manifests in {}: save a file to rebuild and \
             restart what it affects",
            root.display()
        );
        while !stop.load(Ordering::SeqCst) {
            match watcher.next_change(Duration::from_millis(200))? {
                Some(change) => self.cycle(&change, services, stop)?,
                None => {
                    services.report_exits();
                }
            }
        }
        Ok(())
    }

    /// One change: build, restart what it affects, print the line of stage times.
    fn cycle(&self, change: &Change, services: &mut Services, stop: &AtomicBool) -> anyhow::Result<()> {
        let names = change.affected.services();
        let changed = describe(&change.paths);
        if names.is_empty() {
            eprintln!(
                "==> {changed} changed: the chart only, which `run` does not use (`cargo xtask deploy` applies it)"
            );
            return Ok(());
        }
        eprintln!(
            "==> {changed} changed: rebuilding, then restarting the {}",
            names.join(" and the ")
        );
        let compiling = Instant::now();
        if self.build && !self.compiles() {
            if !stop.load(Ordering::SeqCst) {
                eprintln!(
                    "==> the build failed (cargo's errors are above): the running services are left as they are until the next good save"
                );
                self.report(change, &[], Some(false), services);
            }
            return Ok(());
        }
        let compiled = self.build.then(|| compiling.elapsed());
        let mut restarts = Vec::new();
        for name in &names {
            match services.restart(name, self.env(name), stop) {
                Ok(restart) => restarts.push(restart),
                Err(_) if stop.load(Ordering::SeqCst) => return Ok(()),
                Err(err) => {
                    eprintln!("==> {err:#}; fix it and save again");
                    self.report(change, &[], self.build.then_some(true), services);
                    return Ok(());
                }
            }
        }
        eprintln!("{}", stage_line(&names, change, compiled, &restarts));
        self.report(change, &names, self.build.then_some(true), services);
        Ok(())
    }

    /// Runs cargo as the first build did; false when it fails (cargo has shown why).
    fn compiles(&self) -> bool {
        let sh = self.sh;
        let profile_flag = self.release.then_some("--release");
        // Both packages every time: building one alone would unify the dependencies' features
        // differently and recompile them; the unchanged binary is up to date and left alone.
        cmd!(
            sh,
            "cargo build --quiet --package backend --package frontend {profile_flag...}"
        )
        .run()
        .is_ok()
    }

    fn env(&self, name: &str) -> &[(&'static str, String)] {
        self.services
            .iter()
            .find(|(service, _)| *service == name)
            .map_or(&[], |(_, env)| env.as_slice())
    }

    /// Under `--json`, the cycle's outcome on stdout: what changed, whether it built (null under
    /// `--no-build`), what restarted, the pids.
    fn report(&self, change: &Change, restarted: &[&str], built: Option<bool>, services: &Services) {
        if !self.json {
            return;
        }
        let paths: Vec<String> = change.paths.iter().map(|p| p.display().to_string()).collect();
        println!(
            "{}",
            serde_json::json!({
                "changed": paths, "built": built, "restarted": restarted,
                "backend_pid": services.pid("backend").ok(), "frontend_pid": services.pid("frontend").ok(),
            })
        );
    }
}

/// `==> restarted the backend: saved 250ms -> compiled 4.1s -> restarted 180ms -> ready 20ms (total 4.6s)`:
/// the debounce, the build (`not built` under `--no-build`), the restarts until each new process
/// listened, until each answered /ready, and the whole cycle from the first save.
fn stage_line(names: &[&str], change: &Change, compiled: Option<Duration>, restarts: &[Restart]) -> String {
    let restarted: Duration = restarts.iter().map(|r| r.listening).sum();
    let ready: Duration = restarts.iter().map(|r| r.ready - r.listening).sum();
    format!(
        "==> restarted the {}: saved {} -> {} -> restarted {} -> ready {} (total {})",
        names.join(" and the "),
        human(change.settled - change.saved),
        compiled.map_or_else(|| "not built".to_owned(), |took| format!("compiled {}", human(took))),
        human(restarted),
        human(ready),
        human(change.saved.elapsed()),
    )
}

/// The environment `env` with `LISTEN_ADDR` pinned to the address the service listens on at
/// `url` (a port of 0 becomes the one it got), so a restart keeps its address.
pub fn pinned(mut env: Vec<(&'static str, String)>, url: &str) -> Vec<(&'static str, String)> {
    let address = url.trim_start_matches("http://").to_owned();
    for (key, value) in &mut env {
        if *key == "LISTEN_ADDR" {
            value.clone_from(&address);
        }
    }
    env
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::watch::Affected;

    #[test]
    fn a_restart_keeps_the_address_the_service_got() {
        let env = vec![
            ("LISTEN_ADDR", "127.0.0.1:0".to_owned()),
            ("JWT_SECRET", "s".to_owned()),
        ];
        let env = pinned(env, "http://127.0.0.1:41234");
        assert_eq!(env[0], ("LISTEN_ADDR", "127.0.0.1:41234".to_owned()));
        assert_eq!(env[1], ("JWT_SECRET", "s".to_owned()));
    }

    #[test]
    fn the_cycle_line_names_each_stage_and_the_total() {
        let saved = Instant::now();
        let change = Change {
            affected: Affected::default(),
            paths: vec![PathBuf::from("frontend/src/lib.rs"), PathBuf::from("frontend/src/a.rs")],
            saved,
            settled: saved + Duration::from_millis(250),
        };
        let restart = Restart {
            url: String::new(),
            listening: Duration::from_millis(180),
            ready: Duration::from_millis(200),
        };
        let line = stage_line(
            &["frontend"],
            &change,
            Some(Duration::from_millis(4100)),
            std::slice::from_ref(&restart),
        );
        assert!(
            line.starts_with(
                "==> restarted the frontend: saved 250ms -> compiled 4.1s -> restarted 180ms -> ready 20ms (total "
            ),
            "{line}"
        );
        assert_eq!(describe(&change.paths), "frontend/src/lib.rs and 1 more");
        let line = stage_line(&["frontend"], &change, None, &[restart]);
        assert!(line.contains("saved 250ms -> not built -> restarted 180ms"), "{line}");
    }
}
