//! `cargo xtask build-images`: release binaries for Linux, statically linked, each copied into a
//! `FROM scratch` image whose tag is a hash of its content. With `--profile dev-image` the
//! binaries are built for the inner loop instead (quick to rebuild) and the tags say so
//! (`dev-<hash>`).
//!
//! Steps: build the binaries (on the host, or inside the official Rust image), stage a tiny
//! context per service (binary, Dockerfile, passwd), compute the tag, and build only when the
//! engine does not already hold that tag — so rebuilding unchanged code is nearly free and an
//! image changes exactly when its binary or Dockerfile does. The result goes to
//! `target/images/images.json` for `deploy` and `e2e`.

mod image;

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, ValueEnum};
use xshell::{Shell, cmd};

use self::image::{ImageBuild, git_revision};
use crate::{
    exec::runner::Runner,
    images::{BuildRecord, ImageRecord, PASSWD, Profile, Service, content_tag},
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
    /// Cargo profile of the binaries: `release` (the images to ship), or `dev-image` (no LTO,
    /// incremental: quick to rebuild, for the inner loop; tagged `dev-<hash>`, and refused by
    /// `deploy` on a cluster that is not local).
    #[arg(long, value_enum, default_value_t = Profile::Release)]
    pub profile: Profile,
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

/// The binaries of one build, for its images ([`BuildImages::compile`]).
#[derive(Debug, Clone)]
pub struct Binaries {
    /// The engine the images will be built with.
    pub engine: Engine,
    /// The architecture they are built for.
    pub arch: Arch,
    /// The folder holding both binaries.
    pub dir: PathBuf,
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
        let binaries = self.compile(sh)?;
        self.images_from(sh, &binaries)
    }

    /// The first half of [`BuildImages::build`]: the binaries, built by cargo (whose errors it
    /// shows as they come). `dev` times it apart from the images, and stops here on a compile error.
    pub fn compile(&self, sh: &Shell) -> anyhow::Result<Binaries> {
        let runner = Runner::new(self.dry_run);
        let engine = Engine::detect(sh, self.engine)?;
        let host_arch = Arch::host();
        let arch = self
            .arch
            .or(host_arch)
            .context("unknown host architecture: pass --arch amd64 or --arch arm64")?;
        let in_container = self.build_in_container || !cfg!(target_os = "linux") || Some(arch) != host_arch;
        let profile = self.profile;
        let dir = step(
            &format!("build {} binaries for linux/{}", profile.name(), arch.name()),
            || build_binaries(sh, runner, engine, arch, profile, in_container),
        )?;
        Ok(Binaries { engine, arch, dir })
    }

    /// The second half of [`BuildImages::build`]: the images of `binaries` (each only if the
    /// engine lacks its tag), pushed if asked, and the record.
    pub fn images_from(&self, sh: &Shell, binaries: &Binaries) -> anyhow::Result<BuildRecord> {
        let runner = Runner::new(self.dry_run);
        let Binaries { engine, arch, .. } = *binaries;
        let services: Vec<Service> = self.only.map_or_else(|| Service::ALL.to_vec(), |s| vec![s]);
        let profile = self.profile;
        let build = ImageBuild {
            sh,
            runner,
            engine,
            profile,
            bin_dir: binaries.dir.clone(),
            revision: git_revision(sh),
            // A dry run builds nothing, so it has no creation time to label.
            created: if runner.is_dry_run() {
                "unknown".to_owned()
            } else {
                timestamps::rfc3339(timestamps::now_unix())
            },
            attestation: Default::default(),
        };
        let mut images = Vec::new();
        for service in &services {
            images.push(step(&format!("image {}", service.image()), || build.image(*service))?);
        }
        if self.push {
            self.push_images(sh, runner, engine, &mut images)?;
        }
        let record = merge_into_last_record(engine, arch, profile, images);
        if !self.dry_run {
            record.save()?;
            eprintln!("{}", summary(&record));
            eprintln!("    recorded in {}", BuildRecord::path().display());
        }
        Ok(record)
    }

    /// Tags each image for `--registry`, pushes it there, and records the pushed reference.
    fn push_images(
        &self,
        sh: &Shell,
        runner: Runner,
        engine: Engine,
        images: &mut [ImageRecord],
    ) -> anyhow::Result<()> {
        let registry = self
            .registry
            .as_deref()
            .context("--push needs --registry")?
            .trim_end_matches('/');
        let program = engine.program();
        for image in images {
            let target = format!("{registry}/{}:{}", image.name, image.tag);
            let local = format!("{}:{}", image.name, image.tag);
            step(&format!("push {target}"), || {
                runner.run(cmd!(sh, "{program} tag {local} {target}"))?;
                runner.run(cmd!(sh, "{program} push {target}"))
            })?;
            image.reference = target;
        }
        Ok(())
    }
}

/// The record of this build: the last record's entries for services not rebuilt now are kept
/// when that record is of the same engine, architecture and profile (`--only` rebuilds one), and
/// never otherwise, so a record never mixes a dev image with a release one.
fn merge_into_last_record(engine: Engine, arch: Arch, profile: Profile, images: Vec<ImageRecord>) -> BuildRecord {
    let fresh = BuildRecord {
        engine,
        arch: arch.name().to_owned(),
        profile,
        images: Vec::new(),
    };
    let previous = BuildRecord::load().ok();
    merge_records(previous, fresh, images)
}

/// [`merge_into_last_record`] without the file: `previous` is kept only if it matches `fresh`.
fn merge_records(previous: Option<BuildRecord>, fresh: BuildRecord, images: Vec<ImageRecord>) -> BuildRecord {
    let mut record = match previous {
        Some(previous)
            if previous.engine == fresh.engine && previous.arch == fresh.arch && previous.profile == fresh.profile =>
        {
            previous
        }
        _ => fresh,
    };
    for image in images {
        record.images.retain(|i| i.service != image.service);
        record.images.push(image);
    }
    record.images.sort_by_key(|i| i.service);
    record
}

/// Builds both release binaries on this machine, statically linked exactly as the images get
/// them, and returns their folder (used by `bench`, which measures what the images run).
pub fn host_release_binaries(sh: &Shell) -> anyhow::Result<PathBuf> {
    let arch = Arch::host().context("unknown host architecture")?;
    build_binaries(sh, Runner::new(false), Engine::Podman, arch, Profile::Release, false)
}

/// Cargo's flags for a profile: `--release`, or `--profile <name>`.
fn profile_flags(profile: Profile) -> Vec<&'static str> {
    match profile {
        Profile::Release => vec!["--release"],
        other => vec!["--profile", other.name()],
    }
}

fn build_binaries(
    sh: &Shell,
    runner: Runner,
    engine: Engine,
    arch: Arch,
    profile: Profile,
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
    let profile_flags = profile_flags(profile);
    // Cargo puts each profile's output in a folder of that name.
    let out = profile.name();
    if !in_container {
        let _flags = sh.push_env(arch.rustflags_var(), STATIC_RUSTFLAGS);
        runner.run(cmd!(
            sh,
            "cargo build {profile_flags...} --locked --target {triple} {packages...}"
        ))?;
        return Ok(crate::target_dir().join(triple).join(out));
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
            {RUST_IMAGE} cargo build {profile_flags...} --locked --target {triple} {packages...}"
    ))?;
    Ok(crate::container_target_dir().join(triple).join(out))
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

    fn image(service: Service, tag: &str) -> ImageRecord {
        ImageRecord {
            service,
            name: service.image().into(),
            tag: tag.into(),
            reference: format!("{}:{tag}", service.image()),
            id: "fdcc2154d45a".into(),
            config_digest: None,
            size_bytes: 1,
            built: true,
            revision: None,
        }
    }

    fn record(profile: Profile, images: Vec<ImageRecord>) -> BuildRecord {
        BuildRecord {
            engine: Engine::Podman,
            arch: "amd64".into(),
            profile,
            images,
        }
    }

    #[test]
    fn only_a_record_of_the_same_profile_keeps_the_other_service() {
        let release = record(
            Profile::Release,
            vec![
                image(Service::Backend, "0123456789ab"),
                image(Service::Frontend, "ba9876543210"),
            ],
        );
        // `--only frontend` in release: the release backend stays.
        let merged = merge_records(
            Some(release.clone()),
            record(Profile::Release, Vec::new()),
            vec![image(Service::Frontend, "111111111111")],
        );
        let tags: Vec<&str> = merged.images.iter().map(|i| i.tag.as_str()).collect();
        assert_eq!(tags, ["0123456789ab", "111111111111"]);
        // `--only frontend --profile dev-image`: the release backend is not carried over.
        let merged = merge_records(
            Some(release),
            record(Profile::DevImage, Vec::new()),
            vec![image(Service::Frontend, "dev-111111111111")],
        );
        assert_eq!(merged.profile, Profile::DevImage);
        let tags: Vec<&str> = merged.images.iter().map(|i| i.tag.as_str()).collect();
        assert_eq!(tags, ["dev-111111111111"]);
        // And the other way round.
        let dev = record(Profile::DevImage, vec![image(Service::Backend, "dev-0123456789ab")]);
        let merged = merge_records(
            Some(dev),
            record(Profile::Release, Vec::new()),
            vec![image(Service::Frontend, "111111111111")],
        );
        assert_eq!(merged.profile, Profile::Release);
        assert_eq!(merged.images.len(), 1);
    }

    #[test]
    fn profiles_map_to_cargo_flags() {
        assert_eq!(profile_flags(Profile::Release), ["--release"]);
        assert_eq!(profile_flags(Profile::DevImage), ["--profile", "dev-image"]);
    }

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
