//! The workflow behind `cargo xtask`: one module per command (a folder when it grows), beside the
//! concepts several commands share: [`exec`] (running programs), [`tools`] (each program the
//! workflow asks something of), [`k8s`] (the cluster, the release and its objects), and the
//! project's paths, defined here once.

pub mod bench;
pub mod build_images;
pub mod deploy;
pub mod dev;
pub mod doctor;
pub mod e2e;
pub mod exec;
pub mod history;
pub mod images;
pub mod k8s;
pub mod logs;
pub mod manifests;
pub mod progress;
pub mod redact;
pub mod rollback;
pub mod run;
pub mod secrets;
pub mod smoke;
pub mod status;
pub mod test;
pub mod timestamps;
pub mod tools;
pub mod uninstall;
pub mod up;
pub mod watch;

use std::path::{Path, PathBuf};

/// The workspace root, derived from this crate's location (never the caller's directory).
pub fn project_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .parent()
        .map_or_else(|| manifest_dir.to_path_buf(), Path::to_path_buf)
}

/// Cargo's target directory: `CARGO_TARGET_DIR` when set (relative to the project root, as cargo
/// reads it for a build started there), else `target/` in the project root. Everything the
/// workflow builds, fetches or records lives under it, so a shared target directory is honoured
/// by every command alike.
pub fn target_dir() -> PathBuf {
    let root = project_root();
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => root.join(dir),
        _ => root.join("target"),
    }
}

/// Where `build-images` assembles each image's context and keeps the record of what it built.
pub fn images_dir() -> PathBuf {
    target_dir().join("images")
}

/// Where `deploy` writes a diagnostics bundle unless told otherwise.
pub fn diagnostics_dir() -> PathBuf {
    target_dir().join("diagnostics")
}

/// Where `e2e` keeps each run's environment files.
pub fn e2e_dir() -> PathBuf {
    target_dir().join("e2e")
}

/// Where the pinned Helm binaries for the chart tests are fetched.
pub fn helm_dist_dir() -> PathBuf {
    target_dir().join("helm-dist")
}

/// The target directory of a build inside the Rust container. It must lie inside the project
/// root, which is the only host folder the container mounts, so it does not follow
/// `CARGO_TARGET_DIR`.
pub fn container_target_dir() -> PathBuf {
    project_root().join("target").join("container")
}

/// A path the user typed, taken relative to the directory they ran the command in (xtask itself
/// works from the project root); the project root when that directory cannot be read.
pub fn from_caller(path: &Path) -> PathBuf {
    std::env::current_dir().unwrap_or_else(|_| project_root()).join(path)
}
