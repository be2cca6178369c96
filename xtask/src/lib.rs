//! The workflow behind `cargo xtask`: one module per command, plus the concepts several commands
//! share (finding tools, reporting progress).

pub mod helm_dist;
pub mod progress;
pub mod test;
pub mod tools;

use std::path::{Path, PathBuf};

/// The workspace root, derived from this crate's location (never the caller's directory).
pub fn project_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .parent()
        .map_or_else(|| manifest_dir.to_path_buf(), Path::to_path_buf)
}
