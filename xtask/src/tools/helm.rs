//! Helm: finding it (on PATH, else the pinned binary fetched by [`dist`]), its version, and the
//! flags that differ between Helm 3 and Helm 4.

pub mod dist;

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use xshell::{Shell, cmd};

use crate::{
    exec::probe::{self, PROBE_TIMEOUT},
    tools::{self, version::version_token},
};

/// The Helm binary and the flags its major version takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Helm {
    /// `helm` when it is on PATH (so printed commands read naturally), else the binary fetched
    /// into target/ by the chart tests.
    pub program: PathBuf,
    /// Its version.
    pub version: HelmVersion,
}

impl Helm {
    /// Finds Helm and reads its version; Helm 2 is refused.
    pub fn find(sh: &Shell) -> anyhow::Result<Helm> {
        let program = if tools::find(tools::HELM).is_some() {
            PathBuf::from(tools::HELM.program)
        } else {
            helm_binary()?
        };
        let version = helm_version_of(sh, &program).map_err(|err| {
            match [dist::HELM4, dist::HELM3]
                .into_iter()
                .find(|dist| dist.override_path().as_deref() == Some(program.as_path()))
            {
                Some(dist) => err.context(format!(
                    "{} points at {}, which cannot be used: unset it, or point it at a Helm {} for this machine ({})",
                    dist.env_override,
                    program.display(),
                    dist.major,
                    tools::HELM.install
                )),
                None => err,
            }
        })?;
        match version.support() {
            HelmSupport::Supported => {}
            HelmSupport::TooOld => bail!(
                "Helm {} is too old: Helm 3 or 4 is needed ({})",
                version.version,
                tools::HELM.install
            ),
            HelmSupport::Untested => eprintln!(
                "    Helm {} is newer than the versions this was tried with (3 and 4); using Helm 4's flags",
                version.version
            ),
        }
        Ok(Helm { program, version })
    }

    /// Waiting for readiness: Helm 3's `--wait`; Helm 4 names its strategy (`watcher`, kstatus).
    pub fn wait_flag(&self) -> &'static str {
        if self.version.major >= 4 {
            "--wait=watcher"
        } else {
            "--wait"
        }
    }

    /// Rolling back (or removing a first install) when the upgrade fails: Helm 3's `--atomic`
    /// was renamed `--rollback-on-failure` in Helm 4.
    pub fn rollback_on_failure_flag(&self) -> &'static str {
        if self.version.major >= 4 {
            "--rollback-on-failure"
        } else {
            "--atomic"
        }
    }
}

/// The Helm binary: the one on PATH, else an explicit `HELM4_BIN`/`HELM3_BIN`, else (on
/// linux/x86_64 only, the one platform they are built for) the one `cargo xtask test` fetched
/// into target/. Elsewhere Helm must be installed, and the error says so with the install hint.
pub fn helm_binary() -> anyhow::Result<PathBuf> {
    if let Some(path) = tools::find(tools::HELM) {
        return Ok(path);
    }
    for dist in [dist::HELM4, dist::HELM3] {
        let candidate = match dist.override_path() {
            Some(path) => path,
            None if dist::fetched_runs_here() => dist.fetched_path(),
            None => continue,
        };
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    if !dist::fetched_runs_here() {
        bail!(
            "`helm` is not installed ({}), and the Helm that `cargo xtask test` fetches into target/helm-dist is built \
             for linux/x86_64 only, not for this machine ({}/{}): install Helm with: {}",
            tools::HELM.purpose,
            std::env::consts::OS,
            std::env::consts::ARCH,
            tools::HELM.install
        );
    }
    tools::require(tools::HELM)
}

/// A Helm client version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelmVersion {
    /// The version without its `v` and build suffix (`3.17.2`).
    pub version: String,
    /// The major version, which decides support.
    pub major: u32,
}

/// Whether the workflow supports a Helm version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HelmSupport {
    /// Helm 3 or 4.
    Supported,
    /// Helm 2 (Tiller era): it cannot install `apiVersion: v2` charts such as ours.
    TooOld,
    /// A later major version nobody has tried yet.
    Untested,
}

impl HelmVersion {
    /// Whether this version can install the chart.
    pub fn support(&self) -> HelmSupport {
        match self.major {
            3 | 4 => HelmSupport::Supported,
            0..=2 => HelmSupport::TooOld,
            _ => HelmSupport::Untested,
        }
    }
}

/// `helm version --short`.
pub fn helm_version(sh: &Shell) -> anyhow::Result<HelmVersion> {
    helm_version_of(sh, Path::new("helm"))
}

/// `<program> version --short`, for a Helm binary that may not be on PATH.
pub fn helm_version_of(sh: &Shell, program: &Path) -> anyhow::Result<HelmVersion> {
    // Helm 2 prints its client line, then may fail to reach Tiller: the client line is enough.
    let probe = probe::run(cmd!(sh, "{program} version --short"), PROBE_TIMEOUT);
    parse_helm_version(&probe.stdout).map_err(|err| {
        if probe.succeeded() {
            err
        } else {
            anyhow::anyhow!("{}", probe.failure())
        }
    })
}

/// Parses `helm version --short` (`v3.17.2+gcc0bbbd`, Helm 2's `Client: v2.17.0+ga690bad`),
/// `helm version --template {{.Version}}` (`v4.3.1`) or Helm 2's long
/// `Client: &version.Version{SemVer:"v2.12.1", ...}`.
pub fn parse_helm_version(output: &str) -> anyhow::Result<HelmVersion> {
    let version = version_token(output).with_context(|| format!("unreadable `helm version` output {output:?}"))?;
    let major = version
        .split('.')
        .next()
        .and_then(|major| major.parse().ok())
        .with_context(|| format!("unreadable Helm version {version:?}"))?;
    Ok(HelmVersion { version, major })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helm_3_and_4_are_supported() {
        // Real output of Helm v3.17.2 and v4.3.1 (`helm version --short` / `--template {{.Version}}`).
        let helm3 = parse_helm_version("v3.17.2+gcc0bbbd\n").unwrap();
        assert_eq!((helm3.version.as_str(), helm3.major), ("3.17.2", 3));
        assert_eq!(helm3.support(), HelmSupport::Supported);
        let helm4 = parse_helm_version("v4.3.1").unwrap();
        assert_eq!((helm4.version.as_str(), helm4.major), ("4.3.1", 4));
        assert_eq!(helm4.support(), HelmSupport::Supported);
    }

    #[test]
    fn helm_2_is_too_old() {
        let short = parse_helm_version("Client: v2.17.0+ga690bad\n").unwrap();
        assert_eq!(
            (short.version.as_str(), short.support()),
            ("2.17.0", HelmSupport::TooOld)
        );
        let long = parse_helm_version(
            "Client: &version.Version{SemVer:\"v2.12.1\", GitCommit:\"02a47c7249b1fc6d8fd3b94e6b4babf9d818144e\", GitTreeState:\"clean\"}\n",
        )
        .unwrap();
        assert_eq!((long.major, long.support()), (2, HelmSupport::TooOld));
        assert_eq!(parse_helm_version("v5.0.0").unwrap().support(), HelmSupport::Untested);
        assert!(parse_helm_version("Error: unknown flag: --short").is_err());
    }

    #[test]
    fn helm_3_and_4_take_different_flags() {
        let helm = |version: &str| Helm {
            program: "helm".into(),
            version: parse_helm_version(version).unwrap(),
        };
        assert_eq!(
            (helm("v3.17.2").wait_flag(), helm("v3.17.2").rollback_on_failure_flag()),
            ("--wait", "--atomic")
        );
        assert_eq!(
            (helm("v4.3.1").wait_flag(), helm("v4.3.1").rollback_on_failure_flag()),
            ("--wait=watcher", "--rollback-on-failure")
        );
    }
}
