//! `cargo xtask test`: every test of the project, in one command.
//!
//! It first checks that everything the tests talk to is there (PostgreSQL, and the tools of
//! later steps), failing with the install or start command when something is missing, so no
//! test ever skips silently, and fetches the pinned Helm 3 and Helm 4 that the chart tests run
//! (see [`crate::tools::helm::dist`]). Then formatting, clippy, every test, and the end-to-end run of
//! the images ([`crate::e2e`]).

use std::{net::TcpStream, time::Duration};

use anyhow::{Context, bail};
use clap::Args;
use xshell::{Shell, cmd};

use crate::{
    e2e::E2e,
    progress::step,
    tools::{self, engine::Engine, helm::dist},
};

/// The PostgreSQL server the backend's tests use, unless `TEST_DATABASE_URL` names another.
pub const DEFAULT_TEST_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// Arguments of `cargo xtask test`.
#[derive(Debug, Args)]
pub struct Test {
    /// Skip `cargo fmt --check` and clippy (for a quick local loop; CI never skips them).
    #[arg(long)]
    pub no_lint: bool,
}

impl Test {
    /// Runs the whole suite; the first failing step stops it.
    pub fn run(self, sh: &Shell) -> anyhow::Result<()> {
        step("check test prerequisites", || preflight(sh))?;
        step("Helm 3 and Helm 4 for the chart tests (target/helm-dist)", || {
            dist::ensure(sh).map(drop)
        })?;
        if !self.no_lint {
            step("format (cargo fmt --check)", || {
                Ok(cmd!(sh, "cargo fmt --all --check").run()?)
            })?;
            step("lint (clippy, warnings are errors)", || {
                Ok(cmd!(sh, "cargo clippy --workspace --all-targets --locked -- -D warnings").run()?)
            })?;
        }
        step("unit and integration tests", || {
            if tools::find(tools::CARGO_NEXTEST).is_some() {
                cmd!(sh, "cargo nextest run --workspace --locked --no-fail-fast").run()?;
            } else {
                eprintln!(
                    "    (cargo-nextest not found; using cargo test. Faster: {})",
                    tools::CARGO_NEXTEST.install
                );
                cmd!(sh, "cargo test --workspace --locked --no-fail-fast").run()?;
            }
            Ok(())
        })?;
        step(
            "end to end: the images on Podman/Docker, configured by the chart, smoke-tested",
            || E2e::default().run(sh),
        )?;
        eprintln!("==> all tests passed");
        Ok(())
    }
}

/// Everything the tests need from outside cargo.
fn preflight(sh: &Shell) -> anyhow::Result<()> {
    let mut missing = Vec::new();
    for probe in [cmd!(sh, "cargo fmt --version"), cmd!(sh, "cargo clippy --version")] {
        if probe.quiet().ignore_stdout().ignore_stderr().run().is_err() {
            missing.push("cargo fmt / cargo clippy: rustup component add rustfmt clippy".to_owned());
            break;
        }
    }
    // The web UI's browser test drives headless Chromium through chromedriver.
    for tool in [tools::CHROMIUM, tools::CHROMEDRIVER] {
        if let Err(err) = tools::require(tool) {
            missing.push(format!("{err:#}"));
        }
    }
    // The end-to-end step builds and runs the images.
    if let Err(err) = Engine::detect(sh, None) {
        missing.push(format!("{err:#}"));
    }
    let url = std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_TEST_DATABASE_URL.to_owned());
    if let Err(err) = postgres_reachable(&url) {
        missing.push(format!(
            "PostgreSQL for the backend tests: {err:#}. Start it (Debian: \
             pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start) or set TEST_DATABASE_URL"
        ));
    }
    if missing.is_empty() {
        return Ok(());
    }
    bail!(
        "the tests need things this machine lacks:\n  - {}",
        missing.join("\n  - ")
    )
}

/// Whether something listens at the URL's host and port.
fn postgres_reachable(url: &str) -> anyhow::Result<()> {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    let target = if host_port.contains(':') {
        host_port.to_owned()
    } else {
        format!("{host_port}:5432")
    };
    let addr = std::net::ToSocketAddrs::to_socket_addrs(&target)
        .with_context(|| format!("cannot resolve {target}"))?
        .next()
        .with_context(|| format!("{target} has no address"))?;
    TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        .with_context(|| format!("nothing answers at {target}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreachable_postgres_is_reported_with_its_address() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let err = postgres_reachable(&format!("postgres://u:pw@127.0.0.1:{port}/db")).unwrap_err();
        assert!(format!("{err:#}").contains(&format!("127.0.0.1:{port}")), "{err:#}");
    }
}
