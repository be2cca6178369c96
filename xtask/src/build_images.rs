//! `cargo xtask build-images`: release binaries for Linux, statically linked, each copied into a
//! `FROM scratch` image whose tag is a hash of its content.
//!
//! Steps: build the binaries (on the host, or inside the official Rust image), stage a tiny
//! context per service (binary, Dockerfile, passwd), compute the tag, and build only when the
//! engine does not already hold that tag — so rebuilding unchanged code is nearly free and an
//! image changes exactly when its binary or Dockerfile does. The result goes to
//! `target/images/images.json` for `deploy` and `e2e`.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, ValueEnum};
use xshell::{Shell, cmd};

use crate::{
    exec::runner::Runner,
    images::{BuildRecord, ImageRecord, PASSWD, Service, content_tag},
    progress::step,
    timestamps,
    tools::engine::{Engine, docker_builds_with_buildkit},
};

/// The official Rust image used by `--build-in-container` (same toolchain as the host's).
pub const RUST_IMAGE: &str = "docker.io/library/rust:1.95-bookworm";

/// Arguments of `cargo xtask build-images`.
#[derive(Debug, Clone, Default, Args)]
pub struct BuildImages {
    /// Container engine [default: a reachable Docker daemon, else Podman].
    #[arg(long, value_enum)]
    pub engine: Option<Engine>,
    /// Build only this service's image.
    #[arg(long, value_enum)]
    pub only: Option<Service>,
    /// Build the binaries inside the official Rust image (macOS/Windows hosts, other architectures).
    #[arg(long)]
    pub build_in_container: bool,
    /// CPU architecture of the cluster's nodes [default: this machine's].
    #[arg(long, value_enum)]
    pub arch: Option<Arch>,
    /// Push the images to `--registry` (for clusters that cannot see local images).
    #[arg(long, requires = "registry")]
    pub push: bool,
    /// Registry (and path) to push to, e.g. `registry.example.com/team`.
    #[arg(long)]
    pub registry: Option<String>,
    /// Print every command that would run, and run none.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the result as JSON on stdout (it is always written to target/images/images.json).
    #[arg(long)]
    pub json: bool,
}

/// A CPU architecture, as container platforms name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Arch {
    /// x86_64.
    Amd64,
    /// aarch64.
    Arm64,
}

impl Arch {
    /// This machine's architecture, if it is one we build for.
    pub fn host() -> Option<Self> {
        match std::env::consts::ARCH {
            "x86_64" => Some(Self::Amd64),
            "aarch64" => Some(Self::Arm64),
            _ => None,
        }
    }

    /// The platform name (`amd64`, `arm64`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Amd64 => "amd64",
            Self::Arm64 => "arm64",
        }
    }

    /// The Rust target triple for static Linux binaries.
    pub fn triple(self) -> &'static str {
        match self {
            Self::Amd64 => "x86_64-unknown-linux-gnu",
            Self::Arm64 => "aarch64-unknown-linux-gnu",
        }
    }

    /// The environment variable that carries this target's rustflags.
    fn rustflags_var(self) -> String {
        format!(
            "CARGO_TARGET_{}_RUSTFLAGS",
            self.triple().to_uppercase().replace('-', "_")
        )
    }
}

/// Statically link the C runtime so the binary runs in an empty (`FROM scratch`) image.
const STATIC_RUSTFLAGS: &str = "-C target-feature=+crt-static";

impl BuildImages {
    /// Builds (or reuses) the images and records the result.
    pub fn run(self, sh: &Shell) -> anyhow::Result<()> {
        let record = self.build(sh)?;
        if self.json {
            println!("{}", serde_json::to_string_pretty(&record)?);
        }
        Ok(())
    }

    /// Does the work and returns the record (also saved under target/images/ unless dry-run).
    pub fn build(&self, sh: &Shell) -> anyhow::Result<BuildRecord> {
        let runner = Runner::new(self.dry_run);
        let engine = Engine::detect(sh, self.engine)?;
        let host_arch = Arch::host();
        let arch = self
            .arch
            .or(host_arch)
            .context("unknown host architecture: pass --arch amd64 or --arch arm64")?;
        let in_container = self.build_in_container || !cfg!(target_os = "linux") || Some(arch) != host_arch;
        let services: Vec<Service> = self.only.map_or_else(|| Service::ALL.to_vec(), |s| vec![s]);
        let bin_dir = step(&format!("build release binaries for linux/{}", arch.name()), || {
            build_binaries(sh, runner, engine, arch, in_container)
        })?;
        let revision = git_revision(sh);
        // A dry run builds nothing, so it has no creation time to label.
        let created = if runner.is_dry_run() {
            "unknown".to_owned()
        } else {
            timestamps::rfc3339(timestamps::now_unix())
        };

        let mut images = Vec::new();
        for service in &services {
            let image = step(&format!("image {}", service.image()), || {
                build_image(sh, runner, engine, *service, &bin_dir, &revision, &created)
            })?;
            images.push(image);
        }
        if self.push {
            let registry = self
                .registry
                .as_deref()
                .context("--push needs --registry")?
                .trim_end_matches('/');
            for image in &mut images {
                let target = format!("{registry}/{}:{}", image.name, image.tag);
                let local = format!("{}:{}", image.name, image.tag);
                let program = engine.program();
                step(&format!("push {target}"), || {
                    runner.run(cmd!(sh, "{program} tag {local} {target}"))?;
                    runner.run(cmd!(sh, "{program} push {target}"))
                })?;
                image.reference = target;
            }
        }

        let mut record = match BuildRecord::load() {
            // Keep the other service's entry from an earlier build when only one was rebuilt.
            Ok(previous) if previous.engine == engine && previous.arch == arch.name() => previous,
            _ => BuildRecord {
                engine,
                arch: arch.name().to_owned(),
                images: Vec::new(),
            },
        };
        for image in images {
            record.images.retain(|i| i.service != image.service);
            record.images.push(image);
        }
        record.images.sort_by_key(|i| i.service);
        if !self.dry_run {
            record.save()?;
            eprintln!("{}", summary(&record));
            eprintln!("    recorded in {}", BuildRecord::path().display());
        }
        Ok(record)
    }
}

/// Builds both release binaries on this machine, statically linked exactly as the images get
/// them, and returns their folder (used by `bench`, which measures what the images run).
pub fn host_release_binaries(sh: &Shell) -> anyhow::Result<PathBuf> {
    let arch = Arch::host().context("unknown host architecture")?;
    build_binaries(sh, Runner::new(false), Engine::Podman, arch, false)
}

fn build_binaries(
    sh: &Shell,
    runner: Runner,
    engine: Engine,
    arch: Arch,
    in_container: bool,
) -> anyhow::Result<PathBuf> {
    let triple = arch.triple();
    // Always both packages, even with --only: cargo unifies dependency features across the
    // packages of one build, so building one alone would give a different binary — and a new
    // tag — for unchanged code.
    let packages: Vec<String> = Service::ALL
        .iter()
        .flat_map(|s| ["--package".to_owned(), s.name().to_owned()])
        .collect();
    if !in_container {
        let _flags = sh.push_env(arch.rustflags_var(), STATIC_RUSTFLAGS);
        runner.run(cmd!(
            sh,
            "cargo build --release --locked --target {triple} {packages...}"
        ))?;
        return Ok(crate::target_dir().join(triple).join("release"));
    }
    // The same cargo command inside the official Rust image; its target dir stays apart from the
    // host's, and a named volume keeps the crate downloads between runs.
    let program = engine.program();
    let root = sh.current_dir();
    let mount = format!("{}:/src", root.display());
    let platform = format!("linux/{}", arch.name());
    let rustflags = format!("{}={STATIC_RUSTFLAGS}", arch.rustflags_var());
    runner.run(cmd!(
        sh,
        "{program} run --rm --platform {platform} -v {mount} -v todo-cargo-registry:/usr/local/cargo/registry
            -w /src -e CARGO_TARGET_DIR=/src/target/container -e {rustflags}
            {RUST_IMAGE} cargo build --release --locked --target {triple} {packages...}"
    ))?;
    Ok(crate::container_target_dir().join(triple).join("release"))
}

fn build_image(
    sh: &Shell,
    runner: Runner,
    engine: Engine,
    service: Service,
    bin_dir: &Path,
    revision: &str,
    created: &str,
) -> anyhow::Result<ImageRecord> {
    let name = service.name();
    let root = sh.current_dir();
    let dockerfile_path = root.join(name).join("Dockerfile");
    let dockerfile =
        std::fs::read(&dockerfile_path).with_context(|| format!("reading {}", dockerfile_path.display()))?;
    let binary_path = bin_dir.join(name);
    // A dry run builds nothing, so any binary on disk may be stale: show a placeholder tag.
    let binary = if runner.is_dry_run() {
        Vec::new()
    } else {
        std::fs::read(&binary_path)
            .with_context(|| format!("the {name} binary is missing at {}", binary_path.display()))?
    };
    let tag = if binary.is_empty() {
        "<content-hash>".to_owned()
    } else {
        content_tag(&[
            ("Dockerfile", &dockerfile),
            ("passwd", PASSWD.as_bytes()),
            (name, &binary),
        ])
    };
    let reference = format!("{}:{tag}", service.image());

    // Stage the context: only what the image is made of.
    let context = crate::images_dir().join(name);
    if !runner.is_dry_run() {
        if context.exists() {
            std::fs::remove_dir_all(&context).with_context(|| format!("clearing {}", context.display()))?;
        }
        std::fs::create_dir_all(&context)?;
        std::fs::write(context.join("Dockerfile"), &dockerfile)?;
        std::fs::write(context.join("passwd"), PASSWD)?;
        std::fs::copy(&binary_path, context.join(name))
            .with_context(|| format!("staging {}", binary_path.display()))?;
    }

    let built = runner.is_dry_run() || !engine.has_image(sh, &reference);
    if built {
        let program = engine.program();
        let labels = [
            format!("VERSION={tag}"),
            format!("REVISION={revision}"),
            format!("CREATED={created}"),
        ];
        let [version, revision, created] = &labels;
        let no_attestations = attestation_flags(sh, engine);
        runner.run(cmd!(
            sh,
            "{program} build {no_attestations...} --tag {reference} --build-arg {version} --build-arg {revision} --build-arg {created} {context}"
        ))?;
    } else {
        eprintln!("    {reference} already exists: nothing to build");
    }
    let (id, config_digest, size_bytes) = if runner.is_dry_run() {
        ("<image-id>".to_owned(), None, 0)
    } else {
        let (id, size) = engine.image_info(sh, &reference)?;
        let config = match engine {
            Engine::Podman => id.clone(),
            Engine::Docker => engine.config_digest(sh, &reference, &crate::images_dir())?,
        };
        (id, Some(config), size)
    };
    Ok(ImageRecord {
        service,
        name: service.image().to_owned(),
        tag,
        reference,
        id,
        config_digest,
        size_bytes,
        built,
        revision: (revision != "unknown").then(|| revision.to_owned()),
    })
}

/// `--provenance=false --sbom=false` for Docker's BuildKit: by default it wraps a single-platform
/// image in an index with a provenance attestation, which `docker save` leaves out, so kind's
/// `ctr images import` fails on it (kind issues 3795, 3845). Podman makes no attestations; the
/// legacy builder (no buildx, or `DOCKER_BUILDKIT=0`) neither, and rejects the flags.
fn attestation_flags(sh: &Shell, engine: Engine) -> Vec<&'static str> {
    if engine != Engine::Docker {
        return Vec::new();
    }
    if docker_builds_with_buildkit(sh) {
        return vec!["--provenance=false", "--sbom=false"];
    }
    eprintln!(
        "    docker build is the legacy builder here (no `docker buildx`, or DOCKER_BUILDKIT=0): building \
         without --provenance/--sbom, which it does not know (it adds no attestations)"
    );
    Vec::new()
}

/// The source revision for the image label: the commit, marked `-dirty` with local changes.
fn git_revision(sh: &Shell) -> String {
    let Ok(sha) = cmd!(sh, "git rev-parse HEAD").quiet().ignore_stderr().read() else {
        return "unknown".to_owned();
    };
    let dirty = cmd!(sh, "git status --porcelain --untracked-files=no")
        .quiet()
        .read()
        .is_ok_and(|s| !s.trim().is_empty());
    if dirty { format!("{sha}-dirty") } else { sha }
}

/// Name:tag, id and size of each image.
pub fn summary(record: &BuildRecord) -> String {
    let mut out = String::new();
    for image in &record.images {
        let id: String = image.id.chars().take(12).collect();
        let size = image.size_bytes as f64 / 1_000_000.0;
        let state = if image.built { "built" } else { "reused" };
        out.push_str(&format!(
            "    {:<36} id {id}  {size:>5.1} MB  ({state})\n",
            image.reference
        ));
    }
    out.trim_end().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn architectures_map_to_static_linux_targets() {
        assert_eq!(Arch::Amd64.triple(), "x86_64-unknown-linux-gnu");
        assert_eq!(
            Arch::Amd64.rustflags_var(),
            "CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS"
        );
        assert_eq!(
            Arch::Arm64.rustflags_var(),
            "CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUSTFLAGS"
        );
    }
}
