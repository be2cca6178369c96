//! `cargo xtask smoke`: prove a running deployment works for a real user, end to end.
//!
//! It checks health, readiness and version, then — as a brand-new user — signs up through the
//! frontend's HTML form, logs in, creates a task, completes it, deletes it, does the same through
//! the chat assistant's page (add by chat, see it in the list, complete by chat) and logs out,
//! exactly as a browser without JavaScript would (cookies, CSRF token, 303 redirects). It waits only where
//! waiting is legitimate (readiness during start-up); every other step gets one attempt.
//! [`run_checks`] is the library entry point that `run`, `e2e` and `deploy` reuse; the steps are
//! in [`scenario`], the cookie-keeping client in [`client`], the report in [`report`].

pub mod client;
pub mod report;
pub mod scenario;

pub use client::StepError;
pub use report::{Report, StepReport};
pub use scenario::{SESSION_COOKIE, Target, run_checks, run_serving_checks};

use std::{path::PathBuf, time::Duration};

use clap::Args;
use xshell::Shell;

use crate::k8s::objects::{self, Deployment};
use crate::k8s::{
    port_forward::Forwards,
    release::{Access, Release, ReleaseArgs},
};

/// The frontend's URL when only `--backend-url` is given (where `cargo xtask run` serves it).
pub const DEFAULT_FRONTEND_URL: &str = "http://127.0.0.1:3000";
/// The backend's URL when only `--url` is given.
pub const DEFAULT_BACKEND_URL: &str = "http://127.0.0.1:8000";

/// Arguments of `cargo xtask smoke`.
///
/// The app is reached directly with `--url`/`--backend-url`, otherwise through the cluster: the
/// release's Services are forwarded to free local ports with `kubectl port-forward` for the
/// duration of the checks.
#[derive(Debug, Clone, Args)]
pub struct Smoke {
    /// The frontend's base URL [default without --backend-url: the release, through the cluster].
    #[arg(long)]
    pub url: Option<String>,
    /// The backend's base URL, for its /health, /ready and /version [default without --url: the
    /// release, through the cluster].
    #[arg(long)]
    pub backend_url: Option<String>,
    /// Fail unless the backend's /version reports this build (an image tag) [default through the
    /// cluster: the tag the backend Deployment runs].
    #[arg(long)]
    pub expect_version: Option<String>,
    /// The release to reach through the cluster (ignored with --url or --backend-url).
    #[command(flatten)]
    pub cluster: ReleaseArgs,
    /// Also write the report as JSON to this file (`-` for stdout).
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Seconds to wait for health and readiness (start-up), and the limit for each request.
    #[arg(long, default_value_t = 60)]
    pub timeout: u64,
}

impl Smoke {
    /// Runs the checks, prints the report, writes the JSON, and fails when a step failed.
    pub fn run(self, sh: &Shell) -> anyhow::Result<()> {
        let timeout = Duration::from_secs(self.timeout);
        let (report, forwards) = if self.url.is_none() && self.backend_url.is_none() {
            let release = self.cluster.resolve(sh, Access::Read)?;
            let expect_version = match self.expect_version {
                Some(version) => Some(version),
                None => deployed_backend_tag(sh, &release)?,
            };
            let forwards = Forwards::open(sh, &release)?;
            let target = Target {
                frontend: forwards.frontend.clone(),
                backend: forwards.backend.clone(),
                expect_version,
                timeout,
            };
            (run_checks(&target), Some(forwards))
        } else {
            let url = |given: Option<String>, default: &str| {
                given.as_deref().unwrap_or(default).trim_end_matches('/').to_owned()
            };
            let target = Target {
                frontend: url(self.url, DEFAULT_FRONTEND_URL),
                backend: url(self.backend_url, DEFAULT_BACKEND_URL),
                expect_version: self.expect_version,
                timeout,
            };
            (run_checks(&target), None)
        };
        if let Some(forwards) = forwards {
            forwards.close();
        }
        report.publish(self.json.as_deref(), false)?;
        report.into_result()
    }
}

/// The tag of the image the release's backend Deployment runs (`None` when it has no backend).
fn deployed_backend_tag(sh: &Shell, release: &Release) -> anyhow::Result<Option<String>> {
    let selector = release.component_selector("backend");
    let json = release.query(sh, &["get", "deployments", "-l", &selector, "-o", "json"])?;
    let deployments: Vec<Deployment> = objects::parse_items(&json, "deployments")?;
    let image = deployments
        .first()
        .and_then(|deployment| deployment.spec.as_ref()?.template.spec.as_ref()?.containers.first())
        .and_then(|container| container.image.as_deref());
    Ok(image
        .and_then(|image| image.rsplit_once(':'))
        .map(|(_, tag)| tag.to_owned()))
}
