//! Deploying again and again to a release that one deploy has reached: what `cargo xtask dev`
//! does after each save. Preflight runs once ([`Deploy::redeploy`]); then each round loads the
//! images a node lacks ([`Redeploy::load`]) and runs the same `helm upgrade` under the same
//! watch as deploy ([`Redeploy::upgrade`]): a failure is diagnosed, kept in a bundle and rolled
//! back by Helm, exactly as `deploy` does it.

use std::path::{Path, PathBuf};

use xshell::Shell;

use super::{Deploy, Outcome, load::image_of, preflight, upgrade::upgrade_command, watch::Rollout};
use crate::{
    build_images::Arch,
    exec::runner::Runner,
    images::{BuildRecord, Service},
    k8s::{node_images::Loader, release::Release, secret},
    progress::step,
    redact::Redactor,
    tools::helm::Helm,
};

/// A release reached by preflight, ready to be deployed to again.
pub struct Redeploy {
    deploy: Deploy,
    release: Release,
    helm: Helm,
    arch: Arch,
    values: Vec<PathBuf>,
    loader: Loader,
    redactor: Redactor,
}

impl Deploy {
    /// Preflight (the context, Helm, the cluster's version and nodes) and the values files, once,
    /// for the rounds of a [`Redeploy`]. Changes nothing.
    pub fn redeploy(&self, sh: &Shell) -> anyhow::Result<Redeploy> {
        super::check_sets(&self.set)?;
        let values = self.values_files()?;
        let mut outcome = Outcome::default();
        let preflight::Preflight { release, helm, arch } = self.preflight(sh, &mut outcome)?;
        let values = self.with_dev_values(&release, values);
        let mut redactor = Redactor::default();
        if let Ok(Some(secrets)) = secret::read(sh, &release) {
            secrets.values().for_each(|value| redactor.add(value));
        }
        Ok(Redeploy {
            deploy: self.clone(),
            loader: Loader::for_cluster(&release.kind),
            release,
            helm,
            arch,
            values,
            redactor,
        })
    }
}

impl Redeploy {
    /// The release.
    pub fn release(&self) -> &Release {
        &self.release
    }

    /// The architecture of the cluster's nodes (what to build for).
    pub fn arch(&self) -> Arch {
        self.arch
    }

    /// The values files the upgrade applies, in order (relative ones to the project root).
    pub fn values_files(&self) -> &[PathBuf] {
        &self.values
    }

    /// Loads the images recorded at `record_path` that a node lacks (by image ID), and checks
    /// they arrived; returns the services whose image was loaded.
    pub fn load(&mut self, sh: &Shell, record_path: &Path) -> anyhow::Result<Vec<Service>> {
        self.deploy.images = Some(record_path.to_owned());
        let mut outcome = Outcome::default();
        let runner = Runner::new(false);
        self.deploy
            .images(sh, runner, &self.release, &self.loader, self.arch, &mut outcome)?;
        Ok(outcome
            .images
            .iter()
            .filter(|image| image.loaded)
            .map(|image| image.service)
            .collect())
    }

    /// `helm upgrade --install` with the images of `record`, watched as deploy watches it: on
    /// failure the diagnosis is printed, the bundle written, Helm rolls back, and the error says
    /// why (a [`super::Interrupted`] when Ctrl-C stopped it).
    pub fn upgrade(&self, sh: &Shell, record: &BuildRecord) -> anyhow::Result<()> {
        let images = [
            image_of(record, Service::Backend)?,
            image_of(record, Service::Frontend)?,
        ];
        let deploy = &self.deploy;
        let upgrade = upgrade_command(
            sh,
            &self.release,
            &self.helm,
            &self.values,
            &images,
            &deploy.set,
            deploy.timeout,
        );
        let mut outcome = Outcome::default();
        step("helm upgrade, watching the rollout", || {
            let mut rollout = Rollout {
                deploy,
                sh,
                release: &self.release,
                helm: &self.helm,
                redactor: &self.redactor,
                outcome: &mut outcome,
            };
            rollout.watch(&self.loader, record, upgrade).map(drop)
        })
    }
}
