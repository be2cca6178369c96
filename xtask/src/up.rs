//! `cargo xtask up`: from source to a verified deployment in one command — start Minikube if it
//! is installed but not running (with the settings `cargo xtask doctor` recommends), then
//! build the images, deploy them and run the smoke checks (`deploy` does those three).

use anyhow::bail;
use clap::Args;
use xshell::{Shell, cmd};

use crate::{
    deploy::Deploy,
    exec::runner::Runner,
    k8s::{
        context::{self, ClusterKind},
        release,
    },
    progress::step,
    tools::{
        self,
        minikube::{self, DEFAULT_MINIKUBE_PROFILE, MinikubeState},
    },
};

/// Arguments of `cargo xtask up` (those of `deploy`).
#[derive(Debug, Clone, Args)]
pub struct Up {
    /// Everything `deploy` takes.
    #[command(flatten)]
    pub deploy: Deploy,
}

impl Up {
    /// Starts Minikube when needed, then builds, deploys and smoke-tests.
    pub fn run(self, sh: &Shell) -> anyhow::Result<()> {
        let runner = Runner::new(self.deploy.dry_run);
        step("local cluster", || {
            ensure_minikube(sh, runner, self.deploy.target.kube_context.as_deref())
        })?;
        self.deploy.run(sh)
    }
}

/// Starts (or unpauses) the Minikube cluster the deploy will use, when that is Minikube (`up` and `dev`).
pub fn ensure_minikube(sh: &Shell, runner: Runner, kube_context: Option<&str>) -> anyhow::Result<()> {
    let context = match kube_context {
        Some(context) => Some(context.to_owned()),
        None if tools::find(tools::KUBECTL).is_some() => context::current_context(sh).ok().flatten(),
        None => None,
    };
    let profile = match context.as_deref() {
        None => DEFAULT_MINIKUBE_PROFILE.to_owned(),
        Some(context) => match release::classify(sh, context) {
            ClusterKind::Minikube { profile } => profile,
            kind => {
                eprintln!(
                    "    kube context {context} is {}: not starting Minikube",
                    kind.describe()
                );
                return Ok(());
            }
        },
    };
    if tools::find(tools::MINIKUBE).is_none() {
        if context.is_none() {
            bail!(
                "no kube context is set and Minikube is not installed: install it ({}), or point kubectl at \
                 another local cluster",
                tools::MINIKUBE.install
            );
        }
        return Ok(());
    }
    let status = minikube::minikube_status(sh, &profile)?;
    match status.as_ref().map(minikube::MinikubeStatus::state) {
        Some(MinikubeState::Running) => {
            eprintln!("    Minikube ({profile}) is running");
            Ok(())
        }
        Some(MinikubeState::Paused) => {
            eprintln!("    Minikube ({profile}) is paused: unpausing it");
            runner.run_on_stderr(cmd!(sh, "minikube unpause -p {profile}"))
        }
        state => {
            let why = match (state, &status) {
                (None, _) => "has no cluster yet".to_owned(),
                (_, Some(status)) => format!("is not running ({})", status.summary()),
                _ => "is not running".to_owned(),
            };
            let args = minikube::minikube_start_args(&profile);
            eprintln!(
                "    Minikube ({profile}) {why}: starting it with the recommended settings (as `cargo xtask doctor` \
                 advises): {}",
                minikube::minikube_command_line(&args)
            );
            runner.run_on_stderr(cmd!(sh, "minikube {args...}"))
        }
    }
}
