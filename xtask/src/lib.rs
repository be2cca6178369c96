//! The workflow behind `cargo xtask`: one module per command, plus the concepts several commands
//! share (finding tools, the cluster's view, probing programs, reporting progress).

pub mod background;
pub mod bench;
pub mod build_images;
pub mod cluster;
pub mod container_network;
pub mod deploy;
pub mod diagnostics;
pub mod doctor;
pub mod e2e;
pub mod engine;
pub mod helm_dist;
pub mod history;
pub mod images;
pub mod logs;
pub mod manifests;
pub mod node_images;
pub mod port_forward;
pub mod probe;
pub mod processes;
pub mod progress;
pub mod release;
pub mod rollback;
pub mod rollout;
pub mod run;
pub mod runner;
pub mod secrets;
pub mod smoke;
pub mod status;
pub mod test;
pub mod timestamps;
pub mod tools;
pub mod uninstall;
pub mod up;

use std::path::{Path, PathBuf};

use anyhow::Context;
use xshell::{Shell, cmd};

/// The workspace root, derived from this crate's location (never the caller's directory).
pub fn project_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .parent()
        .map_or_else(|| manifest_dir.to_path_buf(), Path::to_path_buf)
}

/// Cargo's target directory (honours `CARGO_TARGET_DIR` and cargo configuration).
pub fn target_dir(sh: &Shell) -> anyhow::Result<PathBuf> {
    let metadata = cmd!(sh, "cargo metadata --format-version 1 --no-deps").quiet().read()?;
    let metadata: serde_json::Value = serde_json::from_str(&metadata).context("reading cargo metadata")?;
    metadata["target_directory"]
        .as_str()
        .map(PathBuf::from)
        .context("cargo metadata has no target_directory")
}
