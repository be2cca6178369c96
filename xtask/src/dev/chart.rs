//! Whether the chart or its values changed since the last upgrade: a fingerprint of their content.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::{k8s::release::CHART_DIR, watch::classify::is_ignored};

/// A SHA-256 over every file of the chart (`helm/` under `root`, editor scratch files left out)
/// and the values files (relative ones taken from `root`), each with its path: it changes exactly
/// when what `helm upgrade` would render from them can.
pub fn fingerprint(root: &Path, values: &[PathBuf]) -> String {
    let mut files = Vec::new();
    collect(root, Path::new(CHART_DIR), &mut files);
    files.sort();
    files.extend(values.iter().cloned());
    let mut hash = Sha256::new();
    for file in &files {
        hash.update(file.to_string_lossy().as_bytes());
        hash.update([0]);
        // A file that cannot be read counts as empty: it changes the fingerprint when it can again.
        let content = std::fs::read(root.join(file)).unwrap_or_default();
        hash.update((content.len() as u64).to_le_bytes());
        hash.update(&content);
    }
    hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The files under `folder` (relative to `root`), as relative paths.
fn collect(root: &Path, folder: &Path, files: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(root.join(folder)) else {
        return;
    };
    for entry in entries.flatten() {
        let relative = folder.join(entry.file_name());
        if is_ignored(&relative) {
            continue;
        }
        match entry.file_type() {
            Ok(kind) if kind.is_dir() => collect(root, &relative, files),
            Ok(_) => files.push(relative),
            Err(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    #[test]
    fn the_fingerprint_follows_the_charts_content_and_the_values() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("helm/templates")).unwrap();
        fs::write(root.join("helm/values.yaml"), "replicas: 1\n").unwrap();
        fs::write(root.join("helm/templates/a.yaml"), "kind: A\n").unwrap();
        fs::write(root.join("dev.yaml"), "x: 1\n").unwrap();
        let values = [PathBuf::from("dev.yaml")];
        let first = fingerprint(root, &values);
        assert_eq!(first, fingerprint(root, &values), "stable");
        // Scratch files are not the chart.
        fs::write(root.join("helm/values.yaml~"), "junk").unwrap();
        assert_eq!(first, fingerprint(root, &values));
        fs::write(root.join("helm/templates/a.yaml"), "kind: B\n").unwrap();
        let second = fingerprint(root, &values);
        assert_ne!(first, second);
        fs::write(root.join("dev.yaml"), "x: 2\n").unwrap();
        assert_ne!(second, fingerprint(root, &values));
        assert_ne!(fingerprint(root, &values), fingerprint(root, &[]));
    }
}
