//! `cargo xtask e2e`: the images, run the way the cluster would run them, proven by the smoke checks.
//!
//! No cluster is needed: the chart is rendered with `helm template`, and each container is
//! started with exactly what the rendered Deployment asks for — the same environment (ConfigMap
//! and Secret resolved), user, read-only root filesystem, dropped capabilities, no privilege
//! escalation, scratch space where the pod has an `emptyDir` and a named volume where it has a
//! PersistentVolumeClaim — on a private network where the backend answers to its Service name.
//! Then the smoke checks run against the published ports, with `--expect-version` set to the tag
//! just built. Everything started is removed afterwards, also when a step fails or on Ctrl-C.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use clap::Args;
use todo_service::contract::HEALTH_PATH;
use xshell::{Shell, cmd};

use crate::{
    build_images::BuildImages,
    exec::http::{Poll, wait_for_ok},
    images::{BuildRecord, Profile, Service},
    k8s::secret,
    manifests::{self, ContainerSpec},
    progress::{human, step},
    smoke,
    tools::{
        engine::{Engine, network},
        helm::Helm,
    },
};

/// Arguments of `cargo xtask e2e`.
#[derive(Debug, Clone, Default, Args)]
pub struct E2e {
    /// Container engine [default: a reachable Docker daemon, else Podman].
    #[arg(long, value_enum)]
    pub engine: Option<Engine>,
    /// Use the images of the last `build-images` instead of building (or reusing) them.
    #[arg(long)]
    pub no_build: bool,
    /// Run the images recorded in this file (written by `build-images`) [implies --no-build].
    #[arg(long, value_name = "FILE")]
    pub images: Option<PathBuf>,
    /// Cargo profile of the images built (not with --no-build/--images): `release`, or
    /// `dev-image` to try the inner loop's images (see `build-images --profile`).
    #[arg(long, value_enum, default_value_t = Profile::Release)]
    pub profile: Profile,
    /// Leave the containers running after a successful run, to look around (the command to
    /// remove them is printed).
    #[arg(long)]
    pub keep: bool,
    /// Also write the smoke report as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

impl E2e {
    /// Builds or loads the images, runs them as the chart would, and smoke-tests them.
    pub fn run(self, sh: &Shell) -> anyhow::Result<()> {
        let record = if let Some(file) = &self.images {
            // Relative to where the command was started, as people expect of a file argument.
            BuildRecord::load_from(&crate::from_caller(file))?
        } else if self.no_build {
            BuildRecord::load()?
        } else {
            step("build images (reused when unchanged)", || {
                BuildImages {
                    engine: self.engine,
                    profile: self.profile,
                    ..BuildImages::default()
                }
                .build(sh)
            })?
        };
        let backend_image = record
            .image(Service::Backend)
            .context("no backend image recorded; run build-images")?;
        let frontend_image = record
            .image(Service::Frontend)
            .context("no frontend image recorded; run build-images")?;
        eprintln!(
            "    images: {} and {} ({} build{})",
            backend_image.reference,
            frontend_image.reference,
            record.profile.name(),
            if record.profile.is_release() {
                ""
            } else {
                ": the inner loop's, not the images to ship"
            }
        );

        // Found and probed like deploy's, so a Helm that cannot run here is explained, not spawned blind.
        let helm = Helm::find(sh)?.program;
        let mut secret_values = BTreeMap::new();
        secret_values.insert("JWT_SECRET".to_owned(), secret::random_hex(32)?);
        let (backend, frontend) = step("render the chart (values-dev.yaml) and read the pod specs", || {
            let sets = [
                format!("backend.image.repository={}", backend_image.name),
                format!("backend.image.tag={}", backend_image.tag),
                format!("frontend.image.repository={}", frontend_image.name),
                format!("frontend.image.tag={}", frontend_image.tag),
            ];
            let mut args = vec![
                "--namespace".to_owned(),
                "todo".to_owned(),
                "-f".to_owned(),
                "helm/values-dev.yaml".to_owned(),
            ];
            for set in sets {
                // --set-string: a content hash can be all digits, which --set would make a number.
                args.extend(["--set-string".to_owned(), set]);
            }
            let rendered = manifests::render(sh, &helm, "todo", Path::new("helm"), &args)?;
            Ok((
                rendered.container_spec(Service::Backend, &secret_values)?,
                rendered.container_spec(Service::Frontend, &secret_values)?,
            ))
        })?;

        let sandbox = Sandbox::new(record.engine)?;
        let guard = sandbox.clone();
        // Ctrl-C: remove what was started before exiting. (A handler may already be installed
        // when e2e runs inside another command; then that command's own cleanup applies.)
        let _ = ctrlc::set_handler(move || {
            eprintln!("\n==> interrupted: removing the e2e containers");
            guard.teardown();
            std::process::exit(130);
        });
        let outcome = self.exercise(sh, &sandbox, &backend, &frontend, &backend_image.tag);
        if outcome.is_err() {
            sandbox.show_logs(sh);
        }
        if self.keep && outcome.is_ok() {
            eprintln!(
                "==> leaving the containers running; remove them with: {}",
                sandbox.teardown_hint()
            );
        } else {
            step("remove containers, network and volume", || {
                sandbox.teardown();
                Ok(())
            })?;
        }
        outcome
    }

    fn exercise(
        &self,
        sh: &Shell,
        sandbox: &Sandbox,
        backend: &ContainerSpec,
        frontend: &ContainerSpec,
        tag: &str,
    ) -> anyhow::Result<()> {
        step("create a private network and a data volume", || sandbox.create(sh))?;
        let backend_started = Instant::now();
        let backend_url = step("start the backend", || sandbox.start(sh, Service::Backend, backend))?;
        let backend_healthy = step("wait for the backend's /health", || {
            wait_healthy(&backend_url, backend_started)
        })?;
        let frontend_started = Instant::now();
        let frontend_url = step("start the frontend", || sandbox.start(sh, Service::Frontend, frontend))?;
        let frontend_healthy = step("wait for the frontend's /health", || {
            wait_healthy(&frontend_url, frontend_started)
        })?;
        step(
            "check that the frontend reaches the backend by its Service name",
            || sandbox.check_backend_reachable(sh, frontend),
        )?;
        eprintln!(
            "    /health answered {} (backend) and {} (frontend) after `run` was called",
            human(backend_healthy),
            human(frontend_healthy)
        );
        if let Ok(usage) = sandbox.memory(sh) {
            eprintln!("    memory in use at idle: {usage}");
        }
        let target = smoke::Target {
            frontend: frontend_url,
            backend: backend_url,
            expect_version: Some(tag.to_owned()),
            timeout: Duration::from_secs(60),
        };
        let report = smoke::run_checks(&target);
        report.publish(self.json.as_deref(), false)?;
        if let Ok(usage) = sandbox.memory(sh) {
            eprintln!("    memory in use after the smoke test: {usage}");
        }
        report.into_result()
    }
}

/// Podman's network backend, from `podman info`.
fn podman_backend(sh: &Shell) -> Option<network::PodmanBackend> {
    let info = cmd!(sh, "podman info --format json").quiet().read().ok()?;
    network::parse_podman_info(&info).ok().map(|info| info.backend)
}

/// Polls `/health` until it answers 200 (for 30 s); returns the time since `started`.
fn wait_healthy(base: &str, started: Instant) -> anyhow::Result<Duration> {
    let poll = Poll {
        deadline: started + Duration::from_secs(30),
        interval: Duration::from_millis(20),
        attempt_timeout: Duration::from_secs(1),
    };
    wait_for_ok(&format!("{base}{HEALTH_PATH}"), poll, || Ok(()))?;
    Ok(started.elapsed())
}

/// The containers, network and volume of one e2e run, named after this process so parallel runs
/// never collide, and removed together.
#[derive(Debug, Clone)]
struct Sandbox {
    engine: Engine,
    prefix: String,
    env_dir: PathBuf,
    started: Arc<Mutex<Vec<String>>>,
}

impl Sandbox {
    fn new(engine: Engine) -> anyhow::Result<Self> {
        let prefix = format!("todo-e2e-{}", std::process::id());
        let env_dir = crate::e2e_dir().join(&prefix);
        std::fs::create_dir_all(&env_dir).with_context(|| format!("creating {}", env_dir.display()))?;
        Ok(Self {
            engine,
            prefix,
            env_dir,
            started: Arc::new(Mutex::new(Vec::new())),
        })
    }

    fn network(&self) -> String {
        format!("{}-net", self.prefix)
    }

    fn volume(&self, claim: &str) -> String {
        format!("{}-{claim}", self.prefix)
    }

    fn container(&self, service: Service) -> String {
        format!("{}-{}", self.prefix, service.name())
    }

    fn create(&self, sh: &Shell) -> anyhow::Result<()> {
        let program = self.engine.program();
        let network = self.network();
        cmd!(sh, "{program} network create {network}")
            .quiet()
            .ignore_stdout()
            .run()?;
        Ok(())
    }

    /// Starts one container as the pod spec says; returns its published base URL.
    fn start(&self, sh: &Shell, service: Service, spec: &ContainerSpec) -> anyhow::Result<String> {
        let program = self.engine.program();
        let name = self.container(service);
        // Settings travel in a file readable only by us, never on a command line that is echoed.
        let env_file = self.env_dir.join(format!("{}.env", service.name()));
        let lines: String = spec.env.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
        std::fs::write(&env_file, lines)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&env_file, std::fs::Permissions::from_mode(0o600))?;
        }
        let mut args: Vec<String> = vec!["--network".into(), self.network()];
        for alias in &spec.service_names {
            args.extend(["--network-alias".into(), alias.clone()]);
        }
        if let Some(user) = &spec.user {
            args.extend(["--user".into(), user.clone()]);
        }
        if spec.read_only_root {
            args.push("--read-only".into());
        }
        if spec.drop_all_capabilities {
            args.extend(["--cap-drop".into(), "ALL".into()]);
        }
        if spec.no_new_privileges {
            args.extend(["--security-opt".into(), "no-new-privileges".into()]);
        }
        for path in &spec.scratch_paths {
            args.extend(["--tmpfs".into(), format!("{path}:rw,mode=1777,size=64m")]);
        }
        for (claim, path) in &spec.persistent_paths {
            let volume = self.volume(claim);
            cmd!(sh, "{program} volume create {volume}")
                .quiet()
                .ignore_stdout()
                .run()?;
            self.started
                .lock()
                .map_err(|_| anyhow::anyhow!("lock poisoned"))?
                .push(format!("volume:{volume}"));
            args.extend(["--volume".into(), format!("{volume}:{path}")]);
        }
        let port = service.port();
        let publish = format!("127.0.0.1::{port}");
        let image = &spec.image;
        self.started
            .lock()
            .map_err(|_| anyhow::anyhow!("lock poisoned"))?
            .push(format!("container:{name}"));
        cmd!(
            sh,
            "{program} run --detach --pull never --name {name} --env-file {env_file} --publish {publish} {args...} {image}"
        )
        .quiet()
        .ignore_stdout()
        .run()?;
        let container_port = format!("{port}/tcp");
        let mapping = cmd!(sh, "{program} port {name} {container_port}").quiet().read()?;
        let address = mapping
            .lines()
            .next()
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .context("the port was not published")?;
        Ok(format!("http://{}", address.replace("0.0.0.0", "127.0.0.1")))
    }

    /// Runs the frontend's own health check inside its container against the backend URL it was
    /// configured with, so a network without DNS is named as the cause before the smoke test
    /// would meet it as a 503 at sign-up.
    fn check_backend_reachable(&self, sh: &Shell, frontend: &ContainerSpec) -> anyhow::Result<()> {
        let program = self.engine.program();
        let name = self.container(Service::Frontend);
        let backend_url = frontend
            .env
            .get("BACKEND_URL")
            .context("the rendered frontend has no BACKEND_URL")?;
        let binary = Service::Frontend.binary_path();
        let url = format!("{}{HEALTH_PATH}", backend_url.trim_end_matches('/'));
        let output = cmd!(sh, "{program} exec {name} {binary} healthcheck --url {url}")
            .quiet()
            .ignore_status()
            .output()?;
        if output.status.success() {
            return Ok(());
        }
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let host = backend_url
            .split_once("://")
            .map_or(backend_url.as_str(), |(_, rest)| rest)
            .split([':', '/'])
            .next()
            .unwrap_or_default();
        if said.contains("cannot resolve") {
            let backend = (self.engine == Engine::Podman).then(|| podman_backend(sh)).flatten();
            let dns_enabled = self.dns_enabled(sh);
            bail!(
                "{}",
                network::name_resolution_failure(self.engine, backend.as_ref(), &self.network(), dns_enabled, host)
            );
        }
        bail!(
            "the frontend container resolves {host:?} but cannot reach the backend at {url} on network {}: {}",
            self.network(),
            said.trim()
        )
    }

    /// Whether the engine says DNS is on for the sandbox's network (Podman only).
    fn dns_enabled(&self, sh: &Shell) -> Option<bool> {
        if self.engine != Engine::Podman {
            return None;
        }
        let network = self.network();
        let format = "{{.DNSEnabled}}";
        let out = cmd!(sh, "podman network inspect --format {format} {network}")
            .quiet()
            .read()
            .ok()?;
        out.trim().parse().ok()
    }

    /// Memory in use per container, as the engine reports it.
    fn memory(&self, sh: &Shell) -> anyhow::Result<String> {
        let program = self.engine.program();
        let format = "{{.Name}}={{.MemUsage}}";
        let names = [self.container(Service::Backend), self.container(Service::Frontend)];
        let out = cmd!(sh, "{program} stats --no-stream --format {format} {names...}")
            .quiet()
            .read()?;
        Ok(out
            .lines()
            .map(|l| l.replace(&format!("{}-", self.prefix), ""))
            .collect::<Vec<_>>()
            .join(", "))
    }

    fn show_logs(&self, sh: &Shell) {
        let program = self.engine.program();
        for service in Service::ALL {
            let name = self.container(service);
            eprintln!("==> last log lines of the {} container:", service.name());
            let _ = cmd!(sh, "{program} logs --tail 40 {name}").quiet().run();
        }
    }

    fn teardown_hint(&self) -> String {
        let program = self.engine.program();
        format!(
            "{program} rm -f {} {} && {program} network rm {} && {program} volume rm {}",
            self.container(Service::Backend),
            self.container(Service::Frontend),
            self.network(),
            self.volume("todo-backend")
        )
    }

    /// Removes everything started, in reverse order; safe to call twice.
    fn teardown(&self) {
        let Ok(sh) = Shell::new() else { return };
        let program = self.engine.program();
        let started: Vec<String> = self
            .started
            .lock()
            .map(|mut s| std::mem::take(&mut *s))
            .unwrap_or_default();
        for item in started.iter().rev().filter(|i| i.starts_with("container:")) {
            let name = &item["container:".len()..];
            let _ = cmd!(sh, "{program} rm --force --time 0 {name}")
                .quiet()
                .ignore_stdout()
                .ignore_stderr()
                .run();
        }
        let network = self.network();
        let _ = cmd!(sh, "{program} network rm {network}")
            .quiet()
            .ignore_stdout()
            .ignore_stderr()
            .run();
        for item in started.iter().filter(|i| i.starts_with("volume:")) {
            let name = &item["volume:".len()..];
            let _ = cmd!(sh, "{program} volume rm --force {name}")
                .quiet()
                .ignore_stdout()
                .ignore_stderr()
                .run();
        }
        let _ = std::fs::remove_dir_all(&self.env_dir);
    }
}
