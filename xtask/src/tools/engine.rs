//! The container engine (Docker or Podman): choosing one, its version and daemon, asking it
//! about images, and (in [`network`]) how its containers find each other by name.

pub mod network;

use std::path::Path;

use anyhow::{Context, bail};
use clap::ValueEnum;
use serde::{Deserialize, Serialize};
use xshell::{Shell, cmd};

use crate::{
    exec::probe::{self, PROBE_TIMEOUT, Probe},
    tools::{
        self,
        version::{tool_version, version_token},
    },
};

/// A container engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    /// Docker (needs a running daemon).
    Docker,
    /// Podman (daemonless).
    Podman,
}

impl Engine {
    /// The program to run.
    pub fn program(self) -> &'static str {
        match self {
            Self::Docker => "docker",
            Self::Podman => "podman",
        }
    }

    /// The requested engine if usable, else a reachable Docker daemon, else Podman; with
    /// neither, an error naming both and how to install them.
    pub fn detect(sh: &Shell, requested: Option<Engine>) -> anyhow::Result<Engine> {
        match requested {
            Some(Self::Docker) => {
                tools::require(tools::DOCKER)?;
                if !docker_daemon_reachable(sh) {
                    bail!(
                        "docker is installed but its daemon is not reachable (`docker info` fails): start Docker, \
                         or use --engine podman"
                    );
                }
                Ok(Self::Docker)
            }
            Some(Self::Podman) => {
                tools::require(tools::PODMAN)?;
                Ok(Self::Podman)
            }
            None if tools::find(tools::DOCKER).is_some() && docker_daemon_reachable(sh) => Ok(Self::Docker),
            None if tools::find(tools::PODMAN).is_some() => Ok(Self::Podman),
            None => bail!(
                "no container engine found: need Docker with a running daemon, or Podman.\n  \
                 Docker: {}\n  Podman: {}",
                tools::DOCKER.install,
                tools::PODMAN.install
            ),
        }
    }

    /// Whether the engine holds this image reference.
    pub fn has_image(self, sh: &Shell, reference: &str) -> bool {
        let program = self.program();
        let format = "{{.Id}}";
        cmd!(sh, "{program} image inspect --format {format} {reference}")
            .quiet()
            .ignore_stdout()
            .ignore_stderr()
            .run()
            .is_ok()
    }

    /// The image's id (hex, without `sha256:`) and size in bytes.
    pub fn image_info(self, sh: &Shell, reference: &str) -> anyhow::Result<(String, u64)> {
        let program = self.program();
        let format = "{{.Id}}|{{.Size}}";
        let out = cmd!(sh, "{program} image inspect --format {format} {reference}")
            .quiet()
            .read()
            .with_context(|| format!("inspecting image {reference}"))?;
        parse_image_info(&out).with_context(|| format!("unexpected `{program} image inspect` output: {out:?}"))
    }

    /// The digest of the image's config (hex): the id a cluster node's runtime reports. Podman's
    /// image id is that digest already. Docker's is too with its classic store, but with the
    /// containerd image store (the default of Docker Desktop 4.34+ and fresh Docker Engine 29
    /// installs) it is the manifest's or index's digest; either way `docker save` names the
    /// config in its archive's `manifest.json`, which is read with `tar` (the archive, in
    /// `scratch`, is removed).
    pub fn config_digest(self, sh: &Shell, reference: &str, scratch: &Path) -> anyhow::Result<String> {
        if self == Self::Podman {
            return Ok(self.image_info(sh, reference)?.0);
        }
        std::fs::create_dir_all(scratch).with_context(|| format!("creating {}", scratch.display()))?;
        let archive = scratch.join(format!("{}.identity.tar", reference.replace(['/', ':'], "-")));
        let saved = cmd!(sh, "docker save -o {archive} {reference}")
            .quiet()
            .ignore_stdout()
            .run()
            .with_context(|| format!("saving image {reference} to read its config digest"));
        let manifest = saved.and_then(|()| {
            cmd!(sh, "tar -xOf {archive} manifest.json")
                .quiet()
                .read()
                .with_context(|| format!("reading manifest.json from `docker save {reference}` (needs `tar`)"))
        });
        let _ = std::fs::remove_file(&archive);
        let manifest = manifest?;
        parse_saved_manifest(&manifest).with_context(|| {
            format!("no config digest in the manifest.json of `docker save {reference}`: {manifest:?}")
        })
    }
}

/// Whether `docker build` takes BuildKit's flags (`--provenance`, `--sbom`): it does when it is
/// buildx (the default since Docker 23), unless `DOCKER_BUILDKIT=0` selects the legacy builder,
/// which rejects them as unknown flags (and makes no attestations anyway).
pub fn docker_builds_with_buildkit(sh: &Shell) -> bool {
    let legacy = std::env::var("DOCKER_BUILDKIT").is_ok_and(|v| matches!(v.trim(), "0" | "false"));
    !legacy && probe::run(cmd!(sh, "docker buildx version"), PROBE_TIMEOUT).succeeded()
}

/// The config digest in a `docker save` archive's `manifest.json` (`[{"Config": ...}]`): Docker
/// 25 and later write `blobs/sha256/<hex>` (an OCI layout), older Docker and Podman's
/// docker-archive `<hex>.json`.
pub fn parse_saved_manifest(json: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Entry {
        #[serde(rename = "Config")]
        config: String,
    }
    let entries: Vec<Entry> = serde_json::from_str(json.trim()).ok()?;
    let config = &entries.first()?.config;
    let hex = config
        .strip_prefix("blobs/sha256/")
        .or_else(|| config.strip_suffix(".json"))?;
    (hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit())).then(|| hex.to_owned())
}

/// Whether Docker's daemon answers: the one probe of it that `detect` and `doctor` share.
fn docker_daemon_reachable(sh: &Shell) -> bool {
    docker_daemon(sh).is_ok()
}

/// The Docker daemon's version (`docker info --format {{.ServerVersion}}`), or why it did not
/// answer.
pub fn docker_daemon(sh: &Shell) -> Result<String, String> {
    let format = "{{.ServerVersion}}";
    parse_docker_server_version(&probe::run(cmd!(sh, "docker info --format {format}"), PROBE_TIMEOUT))
}

fn parse_image_info(out: &str) -> Option<(String, u64)> {
    let (id, size) = out.trim().split_once('|')?;
    let id = id.trim().trim_start_matches("sha256:").to_owned();
    let size = size.trim().parse().ok()?;
    (!id.is_empty()).then_some((id, size))
}

/// Docker's client version and whether its daemon answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerEngine {
    /// The client version (`28.2.2`).
    pub client: String,
    /// The daemon's version, or why it did not answer.
    pub daemon: Result<String, String>,
}

/// `docker --version` and `docker info --format {{.ServerVersion}}`.
pub fn docker_engine(sh: &Shell) -> anyhow::Result<DockerEngine> {
    let version = probe::run(cmd!(sh, "docker --version"), PROBE_TIMEOUT);
    if !version.succeeded() {
        bail!("{}", version.failure());
    }
    let client = version_token(&version.stdout)
        .with_context(|| format!("unreadable `docker --version` output {:?}", version.stdout))?;
    Ok(DockerEngine {
        client,
        daemon: docker_daemon(sh),
    })
}

/// The daemon version from `docker info --format {{.ServerVersion}}`: without a daemon the
/// client prints an empty line and `Cannot connect to the Docker daemon at ...` on stderr.
pub fn parse_docker_server_version(info: &Probe) -> Result<String, String> {
    let version = info.stdout.trim();
    if info.succeeded() && !version.is_empty() {
        Ok(version.to_owned())
    } else {
        Err(info.failure())
    }
}

/// `podman --version` (local only: unlike `podman version` it never contacts a Podman machine).
pub fn podman_version(sh: &Shell) -> anyhow::Result<String> {
    tool_version(sh, "podman", &["--version"])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::probe::Outcome;

    #[test]
    fn image_info_reads_docker_and_podman_formats() {
        assert_eq!(
            parse_image_info("sha256:abc123|11610376\n"),
            Some(("abc123".to_owned(), 11_610_376))
        );
        assert_eq!(
            parse_image_info("fdcc2154d45a|42"),
            Some(("fdcc2154d45a".to_owned(), 42))
        );
        assert_eq!(parse_image_info("garbage"), None);
    }

    // Fixtures: tests/fixtures/real-cluster/image-identity/ (SOURCES.md, item 1).
    #[test]
    fn the_config_digest_is_read_from_either_archive_layout() {
        let fixture = |name: &str| {
            let path = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/real-cluster/image-identity")
                .join(name);
            std::fs::read_to_string(path).unwrap()
        };
        let config = "9f4c2b7e1d3a5c8e0b6f4a2d9c7e5b3a1f8d6c4e2a0b9d7f5e3c1a8b6d4f2e0a";
        for layout in [
            "docker-save-containerd/manifest.json",
            "docker-save-containerd-no-attestations/manifest.json",
            "docker-save-classic-before-25/manifest.json",
        ] {
            assert_eq!(
                parse_saved_manifest(&fixture(layout)).as_deref(),
                Some(config),
                "{layout}"
            );
        }
        assert_eq!(parse_saved_manifest(r#"[{"Config":"config.yaml"}]"#), None);
        assert_eq!(parse_saved_manifest("[]"), None);
        assert_eq!(parse_saved_manifest("not json"), None);
    }

    #[test]
    fn docker_without_a_daemon_is_client_only() {
        // Real behaviour of Docker 28.2.2's client with no daemon: an empty line, exit code 1.
        let info = Probe {
            command: "docker info --format {{.ServerVersion}}".into(),
            outcome: Outcome::Exited(1),
            stdout: "\n".into(),
            stderr:
                "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?\n"
                    .into(),
        };
        let err = parse_docker_server_version(&info).unwrap_err();
        assert!(err.starts_with("Cannot connect to the Docker daemon"), "{err}");
        let running = Probe {
            outcome: Outcome::Exited(0),
            stdout: "27.4.1\n".into(),
            stderr: String::new(),
            ..info
        };
        assert_eq!(parse_docker_server_version(&running).unwrap(), "27.4.1");
    }
}
