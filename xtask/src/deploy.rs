//! `cargo xtask deploy`: exactly the images just built, into the local cluster; the chart
//! installed or upgraded; the rollout watched until it really works — and when it does not, the
//! reason and the fix within seconds, with a diagnostics bundle.
//!
//! Steps: (1) preflight — the kube context is a local cluster or was named explicitly, and Helm's
//! major version decides its flags; (2) images — from `build-images` (built first unless
//! `--no-build`), loaded only where a node does not hold that exact image ID, then verified on
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

use std::{
    path::{Path, PathBuf},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use clap::Args;
use nix::sys::signal::Signal;
use serde::Serialize;
use xshell::{Cmd, Shell};

use crate::{
    build_images::BuildImages,
    diagnostics::{self, Evidence},
    exec::{
        background::Background,
        probe::{self, PROBE_TIMEOUT},
        runner::Runner,
    },
    images::{BuildRecord, ImageRecord, Service},
    k8s::{
        context,
        node_images::{self, Loader},
        port_forward::Forwards,
        release::{self, Access, CHART_DIR, DEV_VALUES, Release, ReleaseArgs, ReleaseState, WRITE_TIMEOUT},
        secret::{self, SECRET_NAME},
    },
    progress::{human, step},
    redact::{self, Redactor},
    rollout::{self, Cause, Pod, Problem},
    smoke, timestamps,
    tools::{engine::Engine, helm::Helm},
};

/// How often the pods are looked at while Helm waits.
pub const POLL_INTERVAL: Duration = Duration::from_secs(2);
/// Lines of a crashed container's previous log shown with the diagnosis.
pub const CRASH_LOG_LINES: u32 = 30;

/// Arguments of `cargo xtask deploy`.
#[derive(Debug, Clone, Args)]
pub struct Deploy {
    /// Which release, where.
    #[command(flatten)]
    pub target: ReleaseArgs,
    /// Values file for the chart (repeatable, applied in order) [default: helm/values-dev.yaml].
    #[arg(long = "values", short = 'f', value_name = "FILE")]
    pub values: Vec<PathBuf>,
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

/// What the pods looked like at one moment.
struct Snapshot {
    pods_json: String,
    events_json: String,
    pods: Vec<Pod>,
    events: Vec<rollout::Event>,
}

impl Deploy {
    /// Deploys, prints the outcome, and fails with a one-line cause.
    pub fn run(self, sh: &Shell) -> anyhow::Result<()> {
        let mut outcome = Outcome::default();
        let mut redactor = Redactor::default();
        let mut reached = None;
        let result = self.execute(sh, &mut outcome, &mut redactor, &mut reached);
        let result = match result {
            Ok(()) => Ok(()),
            Err(err) => {
                let mut message = redactor.redact(&format!("{err:#}"));
                if let (Some(reached), None, false) = (&reached, &outcome.diagnostics, self.dry_run) {
                    let evidence = Evidence {
                        summary: message.clone(),
                        ..Evidence::default()
                    };
                    if let Ok(dir) = self.write_bundle(sh, reached, &redactor, &evidence) {
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
        if self.json {
            println!("{}", serde_json::to_string_pretty(&outcome)?);
        } else if outcome.ok && !self.dry_run {
            print!("{}", render(&outcome));
        }
        result
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

        // 1. Preflight.
        let (release, helm) = step("preflight: kube context and Helm", || {
            let release = self.target.resolve(sh, Access::Change)?;
            let helm = Helm::find(sh)?;
            eprintln!(
                "    {}; Helm {} ({} {})",
                release.describe(),
                helm.version.version,
                helm.wait_flag(),
                helm.rollback_on_failure_flag()
            );
            Ok((release, helm))
        })?;
        outcome.context = Some(release.context.clone());
        outcome.namespace = Some(release.namespace.clone());
        outcome.release = Some(release.name.clone());
        let loader = Loader::for_cluster(&release.kind);
        *reached = Some(Reached {
            release: release.clone(),
            helm: helm.clone(),
        });

        // 2. Images.
        let (record, record_path) = self.image_record(sh)?;
        let images = [
            image_of(&record, Service::Backend)?,
            image_of(&record, Service::Frontend)?,
        ];
        if loader == Loader::Registry && images.iter().any(|image| is_local_reference(&image.reference)) {
            bail!(
                "kube context {} is not a local cluster, so it cannot see this machine's images: deploy with \
                 --push --registry <registry> (its nodes pull from there)",
                release.context
            );
        }
        let archive_dir = record_path.parent().map_or_else(crate::images_dir, Path::to_path_buf);
        let loaded = step("images into the cluster", || {
            load_images(sh, runner, &release, &loader, &record, &images, &archive_dir)
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

        // 3. Namespace and Secret.
        step(
            &format!("namespace {} and Secret {SECRET_NAME}", release.namespace),
            || {
                release.ensure_namespace(sh, runner)?;
                secret::ensure_for_deploy(sh, runner, &release, redactor)
            },
        )?;

        // 4. A release left pending by an interrupted run.
        step("release state", || self.settle(sh, runner, &release, &helm))?;

        // 5. Install or upgrade, watching the rollout.
        let upgrade = upgrade_command(sh, &release, &helm, &values, &images, &self.set, self.timeout);
        if self.dry_run {
            println!("$ {upgrade}");
            eprintln!("    (dry run: no rollout to watch, no smoke checks)");
            return Ok(());
        }
        let pods = step("helm upgrade --install, watching the rollout", || {
            self.roll_out(sh, &release, &helm, &loader, &record, redactor, outcome, upgrade)
        })?;

        // 7. Success: what runs, where, and does it work.
        let history = release.history(sh, &helm)?.unwrap_or_default();
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
        if self.no_smoke {
            return Ok(());
        }
        let expect = images[0].tag.clone();
        let report = step("smoke checks through kubectl port-forward", || {
            let forwards = Forwards::open(sh, &release)?;
            let target = smoke::Target {
                frontend: forwards.frontend.clone(),
                backend: forwards.backend.clone(),
                expect_version: Some(expect),
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

    /// The values files: the given ones (relative to where the command was run), else values-dev.
    fn values_files(&self) -> anyhow::Result<Vec<PathBuf>> {
        if self.values.is_empty() {
            return Ok(vec![PathBuf::from(DEV_VALUES)]);
        }
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
    fn image_record(&self, sh: &Shell) -> anyhow::Result<(BuildRecord, PathBuf)> {
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
                push: self.push,
                registry: self.registry.clone(),
                dry_run: self.dry_run,
                ..BuildImages::default()
            }
            .build(sh)
        })?;
        Ok((record, path))
    }

    /// Refuses a release stuck `pending-*`, or undoes it with `--recover`.
    fn settle(&self, sh: &Shell, runner: Runner, release: &Release, helm: &Helm) -> anyhow::Result<()> {
        let name = release.name.as_str();
        match release.state(sh, helm)? {
            ReleaseState::Missing => eprintln!("    release {name} is not installed yet: installing it"),
            ReleaseState::Settled(latest) => eprintln!(
                "    release {name} is at revision {} ({}): upgrading it",
                latest.revision, latest.status
            ),
            ReleaseState::Stuck { pending, last_good } => {
                let timeout = release::helm_duration(self.timeout);
                let undo = match last_good {
                    Some(revision) => format!("helm rollback {name} {revision}"),
                    None => format!("helm uninstall {name}"),
                };
                if !self.recover {
                    bail!(
                        "release {name} is stuck in {} at revision {}: an earlier run was interrupted midway, and \
                         Helm refuses to change the release until that is undone. Run again with --recover to undo \
                         it first ({undo})",
                        pending.status,
                        pending.revision
                    );
                }
                eprintln!(
                    "    release {name} is stuck in {} at revision {}; --recover: {undo}",
                    pending.status, pending.revision
                );
                let cmd = match last_good {
                    Some(revision) => {
                        let revision = revision.to_string();
                        release.helm(sh, helm, &["rollback", name, &revision])
                    }
                    None => release.helm(sh, helm, &["uninstall", name]),
                };
                runner.run_on_stderr(cmd.args([helm.wait_flag(), "--timeout", &timeout]))?;
            }
        }
        Ok(())
    }

    /// Runs Helm in the background and watches the pods until Helm succeeds, or a failure is
    /// certain (then Helm is stopped and rolls back), or Helm gives up. Returns the final pods.
    #[allow(clippy::too_many_arguments)]
    fn roll_out(
        &self,
        sh: &Shell,
        release: &Release,
        helm: &Helm,
        loader: &Loader,
        record: &BuildRecord,
        redactor: &Redactor,
        outcome: &mut Outcome,
        upgrade: Cmd<'_>,
    ) -> anyhow::Result<Vec<Pod>> {
        eprintln!("$ {upgrade}");
        let started = Instant::now();
        let mut helm_run = Background::start(upgrade)?;
        let hint = |image: &str| -> Option<String> {
            let wanted = node_images::qualify(image);
            record
                .images
                .iter()
                .find(|i| node_images::qualify(&i.reference) == wanted)
                .map(|i| loader.load_hint(record.engine, &i.reference))
        };
        // Helm ends at its own --timeout (plus its rollback); this only guards against a hang.
        let give_up = started + self.timeout * 2 + Duration::from_secs(120);
        let mut shown = String::new();
        let mut last: Option<Snapshot> = None;
        let mut unreadable = false;
        loop {
            if let Some(status) = helm_run.try_finished()? {
                let helm_output = show_helm_output(&helm_run, redactor);
                if status.success() {
                    return Ok(snapshot(sh, release).map(|s| s.pods).unwrap_or_default());
                }
                // Helm gave up by itself (its timeout, a rendering or API error).
                let now = snapshot(sh, release).ok();
                let problem = [now.as_ref(), last.as_ref()]
                    .into_iter()
                    .flatten()
                    .find_map(|s| rollout::diagnose(&s.pods, &s.events, timestamps::now_unix(), &hint));
                let helm_error = helm_error_line(&helm_output).unwrap_or_else(|| format!("helm exited with {status}"));
                let during = last.as_ref().or(now.as_ref());
                return Err(self.fail(
                    sh,
                    release,
                    helm,
                    redactor,
                    outcome,
                    problem,
                    during,
                    &helm_output,
                    helm_error,
                ));
            }
            if Instant::now() > give_up {
                helm_run.stop();
                bail!(
                    "helm did not finish within {}; the release may be left pending: run again with --recover",
                    human(give_up - started)
                );
            }
            match snapshot(sh, release) {
                Ok(now) => {
                    if let Some(problem) = rollout::diagnose(&now.pods, &now.events, timestamps::now_unix(), &hint) {
                        return Err(self.stop_early(sh, release, helm, redactor, outcome, problem, &now, helm_run));
                    }
                    let line = rollout::progress(&now.pods);
                    if line != shown {
                        eprintln!("    {line} ({})", human(started.elapsed()));
                        shown = line;
                    }
                    last = Some(now);
                }
                Err(err) if !unreadable => {
                    eprintln!("    (cannot read the pods right now: {err:#}; Helm keeps waiting)");
                    unreadable = true;
                }
                Err(_) => {}
            }
            let next = Instant::now() + POLL_INTERVAL;
            while Instant::now() < next && helm_run.try_finished()?.is_none() {
                thread::sleep(Duration::from_millis(100));
            }
        }
    }

    /// A failure is certain while Helm still waits: keep the evidence, then stop Helm (which
    /// marks the release failed and rolls it back).
    #[allow(clippy::too_many_arguments)]
    fn stop_early(
        &self,
        sh: &Shell,
        release: &Release,
        helm: &Helm,
        redactor: &Redactor,
        outcome: &mut Outcome,
        problem: Problem,
        now: &Snapshot,
        mut helm_run: Background,
    ) -> anyhow::Error {
        let error = self.fail(
            sh,
            release,
            helm,
            redactor,
            outcome,
            Some(problem),
            Some(now),
            "",
            String::new(),
        );
        eprintln!(
            "==> stopping helm: it marks the revision failed and rolls back ({})",
            helm.rollback_on_failure_flag()
        );
        let _ = helm_run.signal(Signal::SIGTERM);
        let finished = helm_run.wait_for(self.timeout + Duration::from_secs(30));
        let helm_output = show_helm_output(&helm_run, redactor);
        if let Some(dir) = &outcome.diagnostics {
            let _ = std::fs::write(Path::new(dir).join("helm-output.txt"), &helm_output);
        }
        if !matches!(finished, Ok(Some(_))) {
            helm_run.stop();
            eprintln!(
                "    helm did not finish its rollback in time; if `cargo xtask status` shows the release \
                 pending, run `cargo xtask deploy --recover`"
            );
        }
        error
    }

    /// Prints the diagnosis (with a crashed container's log), writes the bundle, and returns the
    /// one-line error.
    #[allow(clippy::too_many_arguments)]
    fn fail(
        &self,
        sh: &Shell,
        release: &Release,
        helm: &Helm,
        redactor: &Redactor,
        outcome: &mut Outcome,
        problem: Option<Problem>,
        during: Option<&Snapshot>,
        helm_output: &str,
        helm_error: String,
    ) -> anyhow::Error {
        let mut summary = String::new();
        match &problem {
            Some(problem) => {
                eprintln!("==> the rollout cannot succeed: {}", redactor.redact(&problem.reason));
                eprintln!("    Kubernetes says: {}", redactor.redact(&problem.evidence));
                summary.push_str(&format!(
                    "{}\nKubernetes says: {}\nwhat to do: {}\n",
                    problem.reason, problem.evidence, problem.fix
                ));
                if let (Cause::Crashed { .. }, Some(container)) = (&problem.cause, &problem.container) {
                    let log = crash_log(sh, release, &problem.pod, container);
                    let log = redactor.redact(&log);
                    eprintln!("    last {CRASH_LOG_LINES} lines of its previous run:");
                    for line in log.lines() {
                        eprintln!("      | {line}");
                    }
                    summary.push_str(&format!("\nlast {CRASH_LOG_LINES} lines of its previous run:\n{log}\n"));
                }
                eprintln!("    what to do: {}", redactor.redact(&problem.fix));
            }
            None => {
                eprintln!("==> helm failed: {}", redactor.redact(&helm_error));
                summary.push_str(&format!("helm failed: {helm_error}\n"));
            }
        }
        let evidence = Evidence {
            summary,
            pods_during_rollout: during.map(|s| s.pods_json.clone()),
            events_during_rollout: during.map(|s| s.events_json.clone()),
            helm_output: (!helm_output.is_empty()).then(|| helm_output.to_owned()),
        };
        let reached = Reached {
            release: release.clone(),
            helm: helm.clone(),
        };
        match self.write_bundle(sh, &reached, redactor, &evidence) {
            Ok(dir) => {
                eprintln!("    diagnostics: {dir}");
                outcome.diagnostics = Some(dir);
            }
            Err(err) => eprintln!("    (could not write the diagnostics bundle: {err:#})"),
        }
        let message = match &problem {
            Some(problem) => format!("{}; what to do: {}", problem.reason, problem.fix),
            None => format!("helm upgrade failed: {helm_error}"),
        };
        outcome.problem = problem;
        anyhow::anyhow!(redactor.redact(&message))
    }

    /// Writes a bundle; returns its path as shown to people (relative to the project when inside).
    fn write_bundle(
        &self,
        sh: &Shell,
        reached: &Reached,
        redactor: &Redactor,
        evidence: &Evidence,
    ) -> anyhow::Result<String> {
        let root = sh.current_dir();
        let parent = match &self.diagnostics_dir {
            Some(dir) => crate::from_caller(dir),
            None => crate::diagnostics_dir(),
        };
        let dir = diagnostics::write_bundle(sh, &reached.release, &reached.helm, redactor, &parent, evidence)?;
        Ok(dir
            .strip_prefix(&root)
            .map_or_else(|_| dir.display().to_string(), |relative| relative.display().to_string()))
    }
}

/// The images of both services, refusing a record without one of them.
fn image_of(record: &BuildRecord, service: Service) -> anyhow::Result<ImageRecord> {
    record.image(service).cloned().with_context(|| {
        format!(
            "the image record has no {} image: run `cargo xtask build-images`",
            service.name()
        )
    })
}

/// An image only this machine holds (no registry in its name).
fn is_local_reference(reference: &str) -> bool {
    node_images::qualify(reference).starts_with("docker.io/library/")
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

/// Checks the nodes' architecture, then loads each image a node lacks and verifies it arrived.
/// Returns the services whose image was loaded.
fn load_images(
    sh: &Shell,
    runner: Runner,
    release: &Release,
    loader: &Loader,
    record: &BuildRecord,
    images: &[ImageRecord],
    archive_dir: &Path,
) -> anyhow::Result<Vec<Service>> {
    let nodes = release.query(sh, &["get", "nodes", "-o", "json"])?;
    let architectures = context::parse_node_architectures(&nodes)?;
    if architectures.iter().any(|arch| *arch != record.arch) {
        bail!(
            "the images are built for linux/{} but the cluster's nodes are {}: cargo xtask build-images --arch {}",
            record.arch,
            architectures.join(", "),
            architectures[0]
        );
    }
    if !loader.loads(record.engine) {
        let how = match loader {
            Loader::Registry => "its nodes pull them from the registry",
            _ => "it runs on the Docker engine that holds them",
        };
        eprintln!("    nothing to load: {how}");
        return Ok(Vec::new());
    }
    loader.require_tools()?;
    let before = loader.node_images(sh)?;
    let mut loaded = Vec::new();
    for image in images {
        let short: String = image.id.chars().take(12).collect();
        let lacking: Vec<&str> = before
            .iter()
            .filter(|node| !node_images::holds(&node.images, image))
            .map(|node| node.node.as_str())
            .collect();
        if lacking.is_empty() && !before.is_empty() {
            eprintln!(
                "    {} (id {short}) is already on the node: not loading it",
                image.reference
            );
            continue;
        }
        eprintln!("    {} (id {short}) is not on the node: loading it", image.reference);
        loader.load(sh, runner, record.engine, image, archive_dir)?;
        loaded.push(image.service);
    }
    if loaded.is_empty() || runner.is_dry_run() {
        return Ok(loaded);
    }
    let after = loader.node_images(sh)?;
    for image in images.iter().filter(|image| loaded.contains(&image.service)) {
        if let Some(node) = after.iter().find(|node| !node_images::holds(&node.images, image)) {
            bail!(
                "after loading, node {} still does not hold {} (id {}); nothing was deployed. Load it by hand: {}",
                node.node,
                image.reference,
                image.id,
                loader.load_hint(record.engine, &image.reference)
            );
        }
    }
    eprintln!("    verified: the node holds exactly the images built");
    Ok(loaded)
}

/// `helm upgrade --install` with the values files, the images as built, the user's `--set`s, and
/// Helm's wait, rollback-on-failure and timeout.
fn upgrade_command<'a>(
    sh: &'a Shell,
    release: &Release,
    helm: &Helm,
    values: &[PathBuf],
    images: &[ImageRecord],
    sets: &[String],
    timeout: Duration,
) -> Cmd<'a> {
    let mut args: Vec<String> = Vec::new();
    for file in values {
        args.extend(["--values".to_owned(), file.display().to_string()]);
    }
    for image in images {
        let component = image.service.name();
        let suffix = format!(":{}", image.tag);
        let repository = image.reference.strip_suffix(&suffix).unwrap_or(&image.name);
        // --set-string: a content hash can be all digits, which --set would turn into a number.
        args.extend([
            "--set-string".to_owned(),
            format!("{component}.image.repository={repository}"),
            "--set-string".to_owned(),
            format!("{component}.image.tag={}", image.tag),
        ]);
    }
    let git_sha = images
        .iter()
        .find(|image| image.service == Service::Backend)
        .and_then(|image| image.revision.as_deref())
        .filter(|sha| sha.len() == 40 && sha.bytes().all(|b| b.is_ascii_hexdigit()));
    if let Some(sha) = git_sha {
        args.extend(["--set-string".to_owned(), format!("backend.gitSha={sha}")]);
    }
    for set in sets {
        args.extend(["--set".to_owned(), set.clone()]);
    }
    release
        .helm(sh, helm, &["upgrade", "--install", &release.name, CHART_DIR])
        .args(args)
        .args([
            helm.wait_flag(),
            helm.rollback_on_failure_flag(),
            "--cleanup-on-fail",
            "--timeout",
            &release::helm_duration(timeout),
        ])
}

/// The release's pods and the namespace's events, now.
fn snapshot(sh: &Shell, release: &Release) -> anyhow::Result<Snapshot> {
    let selector = release.selector();
    let pods_json = release.query(sh, &["get", "pods", "-l", &selector, "-o", "json"])?;
    let events_json = release.query(sh, &["get", "events", "-o", "json"])?;
    Ok(Snapshot {
        pods: rollout::parse_pods(&pods_json)?,
        events: rollout::parse_events(&events_json)?,
        pods_json,
        events_json,
    })
}

/// The last lines a crashed container wrote before it died (its previous run's log; the
/// current one when it has not been restarted yet).
fn crash_log(sh: &Shell, release: &Release, pod: &str, container: &str) -> String {
    let tail = format!("--tail={CRASH_LOG_LINES}");
    let logs = |previous: Option<&str>| {
        probe::run(
            release
                .kubectl(sh, WRITE_TIMEOUT)
                .args(["logs", pod, "-c", container, &tail])
                .args(previous),
            PROBE_TIMEOUT,
        )
    };
    let previous = logs(Some("--previous"));
    if previous.succeeded() {
        return previous.stdout;
    }
    let current = logs(None);
    if current.succeeded() {
        current.stdout
    } else {
        format!("(no log: {})", previous.failure())
    }
}

/// Prints what Helm wrote (secrets scrubbed) on stderr, indented; returns it.
fn show_helm_output(helm_run: &Background, redactor: &Redactor) -> String {
    let (stdout, stderr) = helm_run.output();
    let text = redactor.redact(&format!("{stdout}{stderr}"));
    for line in text.lines().filter(|line| !line.trim().is_empty()) {
        eprintln!("    helm: {line}");
    }
    text
}

/// Helm's `Error: ...` line.
fn helm_error_line(output: &str) -> Option<String> {
    output
        .lines()
        .rev()
        .find(|line| line.starts_with("Error:"))
        .map(|line| line.trim_start_matches("Error:").trim().to_owned())
}

/// The result for people.
fn render(outcome: &Outcome) -> String {
    let mut out = format!(
        "deployed release {} revision {} to {} (namespace {})\n",
        outcome.release.as_deref().unwrap_or("?"),
        outcome.revision.map_or_else(|| "?".to_owned(), |r| r.to_string()),
        outcome.context.as_deref().unwrap_or("?"),
        outcome.namespace.as_deref().unwrap_or("?"),
    );
    for image in &outcome.images {
        let ready = image
            .ready
            .as_deref()
            .map(|r| format!("  {r} pods ready"))
            .unwrap_or_default();
        out.push_str(&format!("  {:<9} {}{ready}\n", image.service.name(), image.reference));
    }
    match (&outcome.url, &outcome.url_hint) {
        (Some(url), _) => out.push_str(&format!("  open      {url}\n")),
        (None, Some(hint)) => out.push_str(&format!("  open      {hint}\n")),
        (None, None) => {}
    }
    if let Some(report) = &outcome.smoke {
        out.push_str(&format!("  smoke     all {} steps passed\n", report.steps.len()));
    }
    out
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

    #[test]
    fn helm_errors_are_found() {
        let output = "Release \"todo\" has been cancelled.\nError: UPGRADE FAILED: context canceled\n";
        assert_eq!(
            helm_error_line(output).as_deref(),
            Some("UPGRADE FAILED: context canceled")
        );
        assert_eq!(helm_error_line("all fine"), None);
    }

    #[test]
    fn only_unqualified_names_are_local() {
        assert!(is_local_reference("todo-backend:abc"));
        assert!(!is_local_reference("registry.example.com/team/todo-backend:abc"));
    }
}
