//! Reaching a release's Services from this machine with `kubectl port-forward` on free local
//! ports, for as long as a [`Forwards`] lives: the smoke checks after a deploy, and `cargo xtask
//! smoke` without URLs. Dropping it stops every kubectl it started — also when a check failed or a
//! forward could not be set up.

use std::{
    net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use xshell::Shell;

use crate::{
    exec::background::Background,
    k8s::release::{Release, STREAM_TIMEOUT},
};

/// How long kubectl may take to start listening.
pub const LISTEN_TIMEOUT: Duration = Duration::from_secs(20);

/// Port-forwards to the frontend and backend Services.
#[derive(Debug)]
pub struct Forwards {
    running: Vec<Background>,
    /// The frontend's local base URL.
    pub frontend: String,
    /// The backend's local base URL.
    pub backend: String,
}

impl Forwards {
    /// Forwards a free local port to each of the release's frontend and backend Services and waits
    /// until kubectl listens on both.
    pub fn open(sh: &Shell, release: &Release) -> anyhow::Result<Forwards> {
        Self::open_on(sh, release, None)
    }

    /// Like [`Forwards::open`], on the given local ports (backend, frontend) when there are some:
    /// `dev` opens its forwards again on the same ports after each rollout, so its URL stays.
    pub fn open_on(sh: &Shell, release: &Release, on: Option<(u16, u16)>) -> anyhow::Result<Forwards> {
        let services = release.services(sh)?;
        let service = |component: &str| {
            services.iter().find(|s| s.component == component).with_context(|| {
                format!(
                    "the release {} has no {component} Service in namespace {} (is it deployed? `cargo xtask status`)",
                    release.name, release.namespace
                )
            })
        };
        let targets = [service("backend")?, service("frontend")?];
        let mut running = Vec::new();
        let mut ports = Vec::new();
        for (index, target) in targets.into_iter().enumerate() {
            let local = match (on, index) {
                (Some((backend, _)), 0) => backend,
                (Some((_, frontend)), _) => frontend,
                (None, _) => free_port()?,
            };
            let mapping = format!("{local}:{}", target.port);
            let service = format!("service/{}", target.name);
            let cmd = release.kubectl(sh, STREAM_TIMEOUT).args([
                "port-forward",
                &service,
                &mapping,
                "--address",
                "127.0.0.1",
            ]);
            eprintln!("$ {cmd}");
            running.push(Background::start(cmd)?);
            ports.push(local);
        }
        wait_listening(&mut running, &ports, LISTEN_TIMEOUT)?;
        Ok(Forwards {
            running,
            backend: format!("http://127.0.0.1:{}", ports[0]),
            frontend: format!("http://127.0.0.1:{}", ports[1]),
        })
    }

    /// The local ports (backend, frontend).
    pub fn ports(&self) -> (u16, u16) {
        let port = |url: &str| url.rsplit(':').next().and_then(|p| p.parse().ok()).unwrap_or(0);
        (port(&self.backend), port(&self.frontend))
    }

    /// The first forward that has stopped (its pod went away, or kubectl lost the connection),
    /// with what kubectl said; `None` while both run.
    pub fn stopped(&mut self) -> Option<String> {
        self.running
            .iter_mut()
            .find_map(|forward| why_stopped(forward).ok().flatten())
    }

    /// Stops the forwards (dropping does the same).
    pub fn close(mut self) {
        self.running.iter_mut().for_each(Background::stop);
    }
}

/// A port nobody listens on right now.
fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("finding a free local port")?;
    Ok(listener.local_addr()?.port())
}

/// Why a forward stopped (kubectl's first words on stderr); `None` while it runs.
fn why_stopped(forward: &mut Background) -> anyhow::Result<Option<String>> {
    let Some(status) = forward.try_finished()? else {
        return Ok(None);
    };
    let (_, stderr) = forward.output();
    let why = stderr
        .lines()
        .map(str::trim)
        .find(|line| !line.is_empty())
        .map_or_else(|| format!("it exited ({status})"), str::to_owned);
    Ok(Some(format!("`{}` stopped: {why}", forward.command())))
}

/// Waits until something accepts connections on every port; fails at once when a kubectl exits.
fn wait_listening(running: &mut [Background], ports: &[u16], timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    let mut pending: Vec<usize> = (0..ports.len()).collect();
    while !pending.is_empty() {
        for forward in running.iter_mut() {
            if let Some(why) = why_stopped(forward)? {
                bail!("{why}");
            }
        }
        pending.retain(|&index| {
            let address = SocketAddr::from((Ipv4Addr::LOCALHOST, ports[index]));
            TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_err()
        });
        if pending.is_empty() {
            break;
        }
        if Instant::now() >= deadline {
            bail!(
                "`{}` did not start listening within {}s",
                running[pending[0]].command(),
                timeout.as_secs()
            );
        }
        thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}
