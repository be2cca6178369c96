//! The container engine (Docker or Podman): choosing one, and asking it about images.

use anyhow::{Context, bail};
use clap::ValueEnum;
use serde::{Deserialize, Serialize};
use xshell::{Shell, cmd};

use crate::tools;

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
}

fn docker_daemon_reachable(sh: &Shell) -> bool {
    let format = "{{.ServerVersion}}";
    cmd!(sh, "docker info --format {format}")
        .quiet()
        .ignore_stdout()
        .ignore_stderr()
        .run()
        .is_ok()
}

fn parse_image_info(out: &str) -> Option<(String, u64)> {
    let (id, size) = out.trim().split_once('|')?;
    let id = id.trim().trim_start_matches("sha256:").to_owned();
    let size = size.trim().parse().ok()?;
    (!id.is_empty()).then_some((id, size))
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
