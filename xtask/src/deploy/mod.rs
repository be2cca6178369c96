//! `cargo xtask deploy`: exactly the images just built, into the local cluster; the chart
//! installed or upgraded; the rollout watched until it really works — and when it does not, the
//! reason and the fix within seconds, with a diagnostics bundle.
//!
//! Steps: (1) preflight — the kube context is a local cluster or was named explicitly, Helm's
//! major version decides its flags, the server meets the chart's `kubeVersion`, and the nodes'
//! one architecture is the one to build for ([`preflight`]); (2) images — from `build-images`
//! (built first unless `--no-build`), loaded only where a node does not hold that exact image ID, then verified on
//! the nodes before the release is touched; (3) the namespace (Pod Security "restricted") and the
//! Secret (a random JWT secret, once); (4) a release stuck `pending-*` by an interrupted run is
//! refused, or undone with `--recover`; (5) `helm upgrade --install --wait` with rollback on
//! failure, while the pods are watched; (6) on failure, a bundle in `target/diagnostics/<time>/`;
//! (7) on success, the revision, the images running, the app's URL and the smoke checks through
//! `kubectl port-forward`.
//!
//! Why Helm runs in the background with `--wait` and rollback-on-failure, rather than without
//! `--wait` while we watch alone: Helm stays the one that decides success, records it and rolls
//! back, exactly as it would for anyone running it by hand; we only add eyes. When the pods show
//! a failure that cannot heal, we first collect the evidence (while the failing pods still exist),
//! then send Helm SIGTERM: Helm 3.13+ and 4 cancel the wait, mark the release failed and roll it
//! back themselves, so an early stop never leaves a release stuck in `pending-upgrade`.
//!
//! The images are loaded in [`load`], the rollout is watched in [`watch`], a failure is explained
//! by [`diagnose`] and kept in a bundle by [`bundle`]; Ctrl-C while Helm waits is forwarded to
//! Helm once and its rollback waited for ([`cancel`]).

mod bundle;
mod cancel;
pub mod diagnose;
mod load;
mod preflight;
mod redeploy;
mod render;
mod upgrade;
mod watch;

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::bail;
use clap::Args;
use serde::Serialize;
use xshell::Shell;

pub use bundle::Evidence;
pub use cancel::Interrupted;
pub use redeploy::Redeploy;
pub use render::render;
pub use watch::{CRASH_LOG_LINES, POLL_INTERVAL};

use self::{
    diagnose::Problem,
    load::{check_profile, image_of, is_local_reference, load_images},
    upgrade::upgrade_command,
    watch::Rollout,
};
use crate::{
    build_images::{Arch, BuildImages},
    exec::runner::Runner,
    images::{BuildRecord, ImageRecord, Profile, Service},
    k8s::{
        node_images::Loader,
        objects::{Pod, PodExt},
        port_forward::Forwards,
        release::{self, Release, ReleaseArgs},
        secret::{self, SECRET_NAME},
    },
    progress::step,
    redact::{self, Redactor},
    smoke,
    tools::{engine::Engine, helm::Helm},
};

/// Arguments of `cargo xtask deploy`.
#[derive(Debug, Clone, Args)]
pub struct Deploy {
    /// Which release, where.
    #[command(flatten)]
    pub target: ReleaseArgs,
    /// Values file for the chart (repeatable, applied in order) [default: helm/values-dev.yaml on a
    /// local cluster without --push; elsewhere only the chart's own helm/values.yaml].
    #[arg(long = "values", short = 'f', value_name = "FILE")]
    pub values: Vec<PathBuf>,
    /// Apply helm/values-dev.yaml (cookies over plain HTTP, a NodePort, small limits) even to a
    /// cluster that is not local or with --push; given with --values, it comes first.
    #[arg(long)]
    pub dev_values: bool,
    /// Set a chart value (repeatable), e.g. `--set backend.logLevel=debug`. Image keys come from
    /// the build and secret values from the Secret (`cargo xtask secrets`), never from here.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Use the images of the last `build-images` instead of building (or reusing) them first.
    #[arg(long)]
    pub no_build: bool,
    /// Deploy the images recorded in this file (written by `build-images`) [implies --no-build].
    #[arg(long, value_name = "FILE")]
    pub images: Option<PathBuf>,
    /// Cargo profile of the images built (not with --no-build/--images): `release`, or
    /// `dev-image` for the inner loop (quick to rebuild; see `build-images --profile`).
    #[arg(long, value_enum, default_value_t = Profile::Release)]
    pub profile: Profile,
    /// Deploy dev-image builds even to a cluster that is not local; they are refused there otherwise.
    #[arg(long)]
    pub allow_dev_images: bool,
    /// Container engine for the build [default: a reachable Docker daemon, else Podman].
    #[arg(long, value_enum)]
    pub engine: Option<Engine>,
    /// Push the images to `--registry` (the only way into a cluster that is not local).
    #[arg(long, requires = "registry")]
    pub push: bool,
    /// Registry (and path) to push to, e.g. `registry.example.com/team`.
    #[arg(long)]
    pub registry: Option<String>,
    /// How long the rollout may take (`180s`, `3m`); Helm rolls back after it.
    #[arg(long, default_value = "180s", value_parser = release::parse_duration)]
    pub timeout: Duration,
    /// How long a pull or create error that may clear by itself (a registry's rate limit, slow
    /// DNS, a container name still reserved) may last before the rollout is called failed.
    #[arg(long, hide = true, default_value = "60s", value_parser = release::parse_duration)]
    pub pull_grace: Duration,
    /// Undo a release left `pending-*` by an interrupted run (roll back, or remove a first
    /// install) before deploying.
    #[arg(long)]
    pub recover: bool,
    /// Skip the smoke checks after a successful rollout.
    #[arg(long)]
    pub no_smoke: bool,
    /// Where diagnostics bundles go [default: target/diagnostics].
    #[arg(long, value_name = "DIR")]
    pub diagnostics_dir: Option<PathBuf>,
    /// Print every command that would change something, and run none.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the result as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// What a deploy did: printed for people, or as JSON with `--json`.
#[derive(Debug, Default, Serialize)]
pub struct Outcome {
    /// Whether it succeeded.
    pub ok: bool,
    /// The kube context.
    pub context: Option<String>,
    /// The namespace.
    pub namespace: Option<String>,
    /// The release.
    pub release: Option<String>,
    /// The revision deployed.
    pub revision: Option<u32>,
    /// The images deployed.
    pub images: Vec<DeployedImage>,
    /// Where to open the app.
    pub url: Option<String>,
    /// What to run to reach the app when no URL does.
    pub url_hint: Option<String>,
    /// The smoke checks' report.
    pub smoke: Option<smoke::Report>,
    /// Why the rollout failed, when it was recognised.
    pub problem: Option<Problem>,
    /// The diagnostics bundle, on failure.
    pub diagnostics: Option<String>,
    /// The error, on failure.
    pub error: Option<String>,
}

/// One image of the deploy.
#[derive(Debug, Clone, Serialize)]
pub struct DeployedImage {
    /// Which service.
    pub service: Service,
    /// The reference given to the chart.
    pub reference: String,
    /// Its image ID.
    pub id: String,
    /// Whether it had to be loaded into the cluster.
    pub loaded: bool,
    /// Pods running it and ready / all its pods (after a rollout).
    pub ready: Option<String>,
}

/// The release and Helm, once preflight found them (the bundle needs both).
struct Reached {
    release: Release,
    helm: Helm,
}

impl Deploy {
    /// Deploys, prints the outcome, and fails with a one-line cause.
    pub fn run(self, sh: &Shell) -> anyhow::Result<()> {
        let (outcome, result) = self.deploy(sh);
        if self.json {
            println!("{}", serde_json::to_string_pretty(&outcome)?);
        } else if outcome.ok && !self.dry_run {
            print!("{}", render(&outcome));
        }
        result
    }

    /// Deploys and returns what happened, printing only the progress (on stderr); a failure is
    /// the one-line cause, with a diagnostics bundle when the cluster was reached.
    pub fn deploy(&self, sh: &Shell) -> (Outcome, anyhow::Result<()>) {
        let mut outcome = Outcome::default();
        let mut redactor = Redactor::default();
        let mut reached = None;
        let result = self.execute(sh, &mut outcome, &mut redactor, &mut reached);
        let result = match result {
            Ok(()) => Ok(()),
            Err(err) => {
                let mut message = redactor.redact(&format!("{err:#}"));
                // Stopped by Ctrl-C: the person wants out, not a bundle.
                let interrupted = err.downcast_ref::<cancel::Interrupted>().is_some();
                if let (Some(reached), None, false, false) = (&reached, &outcome.diagnostics, self.dry_run, interrupted)
                {
                    let evidence = Evidence {
                        summary: message.clone(),
                        ..Evidence::default()
                    };
                    if let Ok(dir) = self.write_bundle(sh, &reached.release, &reached.helm, &redactor, &evidence) {
                        eprintln!("    diagnostics: {dir}");
                        outcome.diagnostics = Some(dir);
                    }
                }
                if let Some(dir) = &outcome.diagnostics
                    && !message.contains(dir.as_str())
                {
                    message.push_str(&format!(" (diagnostics in {dir})"));
                }
                Err(anyhow::anyhow!(message))
            }
        };
        outcome.ok = result.is_ok();
        outcome.error = result.as_ref().err().map(ToString::to_string);
        (outcome, result)
    }

    fn execute(
        &self,
        sh: &Shell,
        outcome: &mut Outcome,
        redactor: &mut Redactor,
        reached: &mut Option<Reached>,
    ) -> anyhow::Result<()> {
        let runner = Runner::new(self.dry_run);
        check_sets(&self.set)?;
        let values = self.values_files()?;
        let preflight::Preflight { release, helm, arch } = self.preflight(sh, outcome)?;
        let values = self.with_dev_values(&release, values);
        let loader = Loader::for_cluster(&release.kind);
        *reached = Some(Reached {
            release: release.clone(),
            helm: helm.clone(),
        });
        let (record, images) = self.images(sh, runner, &release, &loader, arch, outcome)?;
        step(
            &format!("namespace {} and Secret {SECRET_NAME}", release.namespace),
            || {
                release.ensure_namespace(sh, runner)?;
                secret::ensure_for_deploy(sh, runner, &release, redactor)
            },
        )?;
        step("release state", || self.settle(sh, runner, &release, &helm))?;
        let upgrade = upgrade_command(sh, &release, &helm, &values, &images, &self.set, self.timeout);
        if self.dry_run {
            println!("$ {upgrade}");
            eprintln!("    (dry run: no rollout to watch, no smoke checks)");
            return Ok(());
        }
        let pods = step("helm upgrade --install, watching the rollout", || {
            let mut rollout = Rollout {
                deploy: self,
                sh,
                release: &release,
                helm: &helm,
                redactor,
                outcome: &mut *outcome,
            };
            rollout.watch(&loader, &record, upgrade)
        })?;
        self.rolled_out(sh, &release, &helm, &pods, outcome)?;
        if self.no_smoke {
            return Ok(());
        }
        self.smoke(sh, &release, &images[0].tag, outcome)
    }

    /// (2) The images: built or recorded, then loaded where a node lacks them.
    fn images(
        &self,
        sh: &Shell,
        runner: Runner,
        release: &Release,
        loader: &Loader,
        arch: Arch,
        outcome: &mut Outcome,
    ) -> anyhow::Result<(BuildRecord, [ImageRecord; 2])> {
        let (record, record_path) = self.image_record(sh, arch)?;
        if record.arch != arch.name() {
            bail!(
                "the images in {} are built for linux/{} but the cluster's nodes are linux/{}: run `cargo xtask deploy` \
                 without --no-build/--images (it builds for the nodes), or `cargo xtask build-images --arch {}` and \
                 then `cargo xtask deploy --no-build`",
                record_path.display(),
                record.arch,
                arch.name(),
                arch.name()
            );
        }
        check_profile(&record, &record_path, release, self.allow_dev_images)?;
        let images = [
            image_of(&record, Service::Backend)?,
            image_of(&record, Service::Frontend)?,
        ];
        if *loader == Loader::Registry && images.iter().any(|image| is_local_reference(&image.reference)) {
            bail!(
                "kube context {} is not a local cluster, so it cannot see this machine's images: deploy with \
                 --push --registry <registry> (its nodes pull from there)",
                release.context
            );
        }
        let archive_dir = record_path.parent().map_or_else(crate::images_dir, Path::to_path_buf);
        let loaded = step("images into the cluster", || {
            load_images(sh, runner, loader, &record, &images, &archive_dir)
        })?;
        outcome.images = images
            .iter()
            .map(|image| DeployedImage {
                service: image.service,
                reference: image.reference.clone(),
                id: image.id.clone(),
                loaded: loaded.contains(&image.service),
                ready: None,
            })
            .collect();
        Ok((record, images))
    }

    /// (7) Success: the revision, the pods ready per image, and where the app is.
    fn rolled_out(
        &self,
        sh: &Shell,
        release: &Release,
        helm: &Helm,
        pods: &[Pod],
        outcome: &mut Outcome,
    ) -> anyhow::Result<()> {
        let history = release.history(sh, helm)?.unwrap_or_default();
        outcome.revision = history.last().map(|r| r.revision);
        for image in &mut outcome.images {
            let component = image.service.name();
            let of_component: Vec<&Pod> = pods
                .iter()
                .filter(|pod| pod.is_current() && pod.component() == component)
                .collect();
            let ready = of_component.iter().filter(|pod| pod.is_ready()).count();
            image.ready = Some(format!("{ready}/{}", of_component.len()));
        }
        match release.services(sh).map(|services| release.app_url(sh, &services)) {
            Ok(release::AppUrl::Url(url)) => outcome.url = Some(url),
            Ok(release::AppUrl::Hint(hint)) => outcome.url_hint = Some(hint),
            Err(err) => outcome.url_hint = Some(format!("could not read the Services: {err:#}")),
        }
        Ok(())
    }

    /// Does it work: the smoke checks through `kubectl port-forward`, expecting the build deployed.
    fn smoke(&self, sh: &Shell, release: &Release, expect: &str, outcome: &mut Outcome) -> anyhow::Result<()> {
        let report = step("smoke checks through kubectl port-forward", || {
            let forwards = Forwards::open(sh, release)?;
            let target = smoke::Target {
                frontend: forwards.frontend.clone(),
                backend: forwards.backend.clone(),
                expect_version: Some(expect.to_owned()),
                timeout: Duration::from_secs(60),
            };
            let report = smoke::run_checks(&target);
            forwards.close();
            Ok(report)
        })?;
        report.publish(None, true)?;
        let result = match report.failed_step() {
            None => Ok(()),
            Some(failed) => Err(anyhow::anyhow!(
                "the release rolled out, but the smoke checks failed at \"{}\": {}",
                failed.name,
                failed.error.as_ref().map_or("failed", |e| e.message.as_str())
            )),
        };
        outcome.smoke = Some(report);
        result
    }

    /// The values files given (relative to where the command was run), each checked to exist.
    fn values_files(&self) -> anyhow::Result<Vec<PathBuf>> {
        self.values
            .iter()
            .map(|file| {
                let path = crate::from_caller(file);
                if !path.is_file() {
                    bail!("values file {} does not exist", path.display());
                }
                Ok(path)
            })
            .collect()
    }

    /// The image record: built now, or read from `--images` / the last build.
    fn image_record(&self, sh: &Shell, arch: Arch) -> anyhow::Result<(BuildRecord, PathBuf)> {
        if let Some(file) = &self.images {
            let path = crate::from_caller(file);
            return Ok((BuildRecord::load_from(&path)?, path));
        }
        let path = BuildRecord::path();
        if self.no_build {
            return Ok((BuildRecord::load()?, path));
        }
        let record = step("build images (reused when unchanged)", || {
            BuildImages {
                engine: self.engine,
                arch: Some(arch),
                profile: self.profile,
                push: self.push,
                registry: self.registry.clone(),
                dry_run: self.dry_run,
                ..BuildImages::default()
            }
            .build(sh)
        })?;
        Ok((record, path))
    }
}

/// Refuses `--set` of image keys (they come from the build) and of secret values (they would be
/// on a command line); each must be `key=value`.
fn check_sets(sets: &[String]) -> anyhow::Result<()> {
    for set in sets {
        let Some((key, _)) = set.split_once('=') else {
            bail!("--set {set}: expected KEY=VALUE");
        };
        let key = key.trim();
        if key.starts_with("backend.image.") || key.starts_with("frontend.image.") {
            bail!(
                "--set {key}: the images come from the build (deploy another record with --images FILE, or \
                 change the pull policy in a values file)"
            );
        }
        if redact::is_secret_value_key(key) {
            bail!(
                "--set {key}: secret values never go on a command line; put them in the Secret with \
                 `cargo xtask secrets` (see docs/deployment/secrets.md)"
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_and_secret_keys_cannot_be_set() {
        assert!(check_sets(&["backend.logLevel=debug".to_owned()]).is_ok());
        for bad in [
            "backend.image.tag=latest",
            "frontend.image.repository=x",
            "secrets.jwtSecret=abc",
            "backend.openai.apiKey=sk",
            "nokey",
        ] {
            assert!(check_sets(&[bad.to_owned()]).is_err(), "{bad}");
        }
    }
}
