//! `cargo xtask dev`: save a file, see it serving in the local cluster.
//!
//! First a normal `up` (Minikube started if needed, the images built with the `dev-image`
//! profile, deployed, rolled out), then the sources are watched (`backend/`, `frontend/`, `helm/`
//! and the workspace manifests, as `run --watch` watches them) and each change becomes one
//! [`cycle`]: only what the change can affect is rebuilt, only images whose content changed are
//! loaded, `helm upgrade` runs only when a tag or the chart and its values changed, with deploy's
//! own watch and diagnosis, and the serving checks prove the new build answers. A compile error
//! or a failed rollout ends the cycle, never the loop. Meanwhile the app stays at one local URL
//! (port-forwards re-opened on the same ports after each rollout) and the pods' logs stream with
//! a component prefix ([`reach`]).
//!
//! Ctrl-C stops watching and leaves the release running (`--cleanup` uninstalls it).

mod chart;
pub mod cycle;
mod reach;

use std::{path::PathBuf, time::Duration};

use anyhow::{Context, bail};
use clap::Args;
use xshell::Shell;

use self::{
    cycle::{Deployed, tags},
    reach::Reach,
};
use crate::{
    deploy::{Deploy, Redeploy, render},
    exec::{interrupt::Guarded, runner::Runner},
    images::{BuildRecord, Profile},
    k8s::release::{Access, Release},
    progress::{human, step},
    uninstall::Uninstall,
    up,
    watch::{QUIET, SourceWatcher},
};

/// Arguments of `cargo xtask dev`: those of `deploy` (which release, where, with which values),
/// and what the loop adds. The images are always built with the `dev-image` profile (the default
/// of `--profile` here; `release` is refused); `--no-smoke` leaves out the serving checks after
/// each rollout.
#[derive(Debug, Clone, Args)]
#[command(mut_arg("profile", |arg| arg
    .default_value("dev-image")
    .help("Cargo profile of the images: always `dev-image` (no LTO, incremental); release images are `cargo xtask deploy`'s")))]
pub struct Dev {
    /// Everything `deploy` takes.
    #[command(flatten)]
    pub deploy: Deploy,
    /// Do not stream the pods' logs.
    #[arg(long)]
    pub no_logs: bool,
    /// On exit (Ctrl-C), uninstall the release, keeping its data and Secret.
    #[arg(long)]
    pub cleanup: bool,
    /// On exit, uninstall the release and delete its data and Secret too, without asking
    /// (implies --cleanup).
    #[arg(long)]
    pub purge: bool,
    /// The project folder to watch and build instead of this one (tests: a small project of
    /// the same shape; set CARGO_TARGET_DIR inside it).
    #[arg(long, hide = true)]
    pub watch_root: Option<PathBuf>,
}

/// The loop's state between cycles.
pub(super) struct Session<'a> {
    sh: &'a Shell,
    redeploy: Redeploy,
    /// The last build's record (both services).
    record: BuildRecord,
    /// What the cluster runs.
    deployed: Deployed,
    reach: Reach,
    check_serving: bool,
    cycles: u32,
}

impl Dev {
    /// Deploys, then watches and redeploys until Ctrl-C.
    pub fn run(self, sh: &Shell) -> anyhow::Result<()> {
        self.check_flags()?;
        let root = self
            .watch_root
            .as_deref()
            .map_or_else(crate::project_root, crate::from_caller);
        sh.change_dir(&root);
        let release = self.deploy.target.resolve(sh, Access::Change)?;
        if !release.kind.is_local() {
            bail!(
                "`dev` rebuilds and redeploys on every save, so it runs only against a local cluster, and kube \
                 context {} is {}: switch to one (`kubectl config use-context minikube`), or deploy there with \
                 `cargo xtask deploy`",
                release.context,
                release.kind.describe()
            );
        }
        // Watching from the start: a save during the first deploy is a change after it.
        let mut watcher = SourceWatcher::start(&root, QUIET)?;
        let deploy = self.first_deploy(sh)?;
        let interrupts = Guarded::start();
        let redeploy = deploy.redeploy(sh)?;
        let record = BuildRecord::load()?;
        let deployed = Deployed {
            tags: tags(&record),
            chart: chart::fingerprint(&root, redeploy.values_files()),
        };
        let reach = Reach::open(sh, redeploy.release(), !self.no_logs)?;
        let mut session = Session {
            sh,
            redeploy,
            record,
            deployed,
            reach,
            check_serving: !self.deploy.no_smoke,
            cycles: 0,
        };
        let result = session.watch(&mut watcher, &interrupts, self.deploy.json, &root);
        session.reach.close();
        drop(interrupts);
        result?;
        self.finish(sh, &release)
    }

    /// Flags of deploy that make no sense for a loop that builds on every save.
    fn check_flags(&self) -> anyhow::Result<()> {
        let deploy = &self.deploy;
        let refused = [
            (deploy.no_build, "--no-build"),
            (deploy.images.is_some(), "--images"),
            (deploy.push, "--push"),
            (deploy.dry_run, "--dry-run"),
        ];
        if deploy.profile != Profile::DevImage {
            bail!(
                "`dev` builds its images with the dev-image profile, quick to rebuild on every save; --profile {} \
                 does not apply to it (release images: `cargo xtask deploy`)",
                deploy.profile.name()
            );
        }
        if let Some((_, flag)) = refused.iter().find(|(given, _)| *given) {
            bail!(
                "`dev` builds the images from the sources on every save and loads them into a local cluster, so \
                 {flag} does not apply to it (it does to `cargo xtask deploy`)"
            );
        }
        Ok(())
    }

    /// `up` with the dev-image profile: the cluster started if needed, the images built, deployed
    /// and rolled out. Returns the deploy the cycles repeat.
    fn first_deploy(&self, sh: &Shell) -> anyhow::Result<Deploy> {
        let deploy = Deploy {
            profile: Profile::DevImage,
            // The serving checks run through the session's own forwards, after each rollout.
            no_smoke: true,
            json: false,
            ..self.deploy.clone()
        };
        let kube_context = deploy.target.kube_context.as_deref();
        step("local cluster", || {
            up::ensure_minikube(sh, Runner::new(false), kube_context)
        })?;
        let (outcome, result) = deploy.deploy(sh);
        result?;
        eprint!("{}", render(&outcome));
        Ok(deploy)
    }

    /// After Ctrl-C: uninstall with `--cleanup`/`--purge`, else say how.
    fn finish(&self, sh: &Shell, release: &Release) -> anyhow::Result<()> {
        if self.cleanup || self.purge {
            eprintln!("==> --cleanup: uninstalling release {}", release.name);
            let done = Uninstall {
                purge: self.purge,
                yes: true,
                target: self.deploy.target.clone(),
                timeout: self.deploy.timeout,
                dry_run: false,
            }
            .uninstall(sh)?;
            eprintln!("    {done}");
            return Ok(());
        }
        eprintln!(
            "==> stopped watching. Release {name} is still running in namespace {namespace} (kube context \
             {context}); remove it with `cargo xtask uninstall --kube-context {context} --namespace {namespace} \
             --release {name}` (keeps its data; add --purge to delete that too)",
            name = release.name,
            namespace = release.namespace,
            context = release.context
        );
        Ok(())
    }
}

impl Session<'_> {
    /// Checks the first deploy serves, then runs a cycle per change until Ctrl-C.
    fn watch(
        &mut self,
        watcher: &mut SourceWatcher,
        interrupts: &Guarded,
        json: bool,
        root: &std::path::Path,
    ) -> anyhow::Result<()> {
        if self.check_serving {
            let backend = self.deployed.tags.get(&crate::images::Service::Backend).cloned();
            let checked = backend
                .context("the first build recorded no backend image")
                .and_then(|tag| self.reach.check_serving(&tag));
            if let Err(err) = checked {
                eprintln!("==> {err:#} (the loop goes on: fix it and save)");
            }
        }
        let url = self.reach.url();
        if json {
            println!(
                "{}",
                serde_json::json!({"event": "ready", "url": url, "tags": self.deployed.tags})
            );
        }
        eprintln!(
            "\n==> watching backend/, frontend/, helm/ and the workspace manifests in {}\n    the app: {url}\n    \
             save a file to rebuild and redeploy what it affects; Ctrl-C stops watching (the release stays)\n",
            root.display()
        );
        while interrupts.signals() == 0 {
            match watcher.next_change(Duration::from_millis(200))? {
                Some(change) => {
                    let report = self.cycle(&change);
                    eprintln!("{}", report.line());
                    if json {
                        println!("{}", serde_json::to_string(&report)?);
                    }
                }
                None => {
                    if let Some(unchanged) = watcher.take_unchanged() {
                        eprintln!(
                            "==> {} saved with the content it had: nothing to build or deploy (seen in {})",
                            crate::watch::describe(&unchanged.paths),
                            human(unchanged.took)
                        );
                    }
                    self.reach.keep_up(self.sh)
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        dev: Dev,
    }

    fn checked(args: &[&str]) -> anyhow::Result<Dev> {
        let dev = Cli::try_parse_from(std::iter::once("dev").chain(args.iter().copied()))?.dev;
        dev.check_flags()?;
        Ok(dev)
    }

    #[test]
    fn dev_builds_dev_images_and_refuses_what_does_not_apply_to_a_loop() {
        assert_eq!(checked(&[]).unwrap().deploy.profile, Profile::DevImage);
        assert_eq!(
            checked(&["--profile", "dev-image"]).unwrap().deploy.profile,
            Profile::DevImage
        );
        let err = checked(&["--profile", "release"]).unwrap_err().to_string();
        assert!(err.contains("--profile release does not apply"), "{err}");
        for flag in [
            &["--no-build"][..],
            &["--images", "images.json"],
            &["--push", "--registry", "localhost:5000"],
            &["--dry-run"],
        ] {
            let err = checked(flag).unwrap_err().to_string();
            assert!(err.contains(&format!("{} does not apply", flag[0])), "{err}");
        }
    }
}
