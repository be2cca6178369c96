//! What a changed path can affect, and which paths are not sources at all (editor scratch files,
//! build output, git's own files).

use std::path::{Component, Path};

/// What a change to one source file can affect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The backend alone (`backend/` outside `backend/service/`).
    Backend,
    /// The frontend alone (`frontend/`).
    Frontend,
    /// Both services: the code they share (`backend/service/`) or the workspace manifests.
    Both,
    /// The Helm chart (`helm/`): no binary, only what is deployed.
    Chart,
}

/// The set of things a burst of changes can affect.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Affected {
    /// The backend binary must be rebuilt and restarted.
    pub backend: bool,
    /// The frontend binary must be rebuilt and restarted.
    pub frontend: bool,
    /// The chart changed.
    pub chart: bool,
}

impl Affected {
    /// Adds what a change of `scope` affects.
    pub fn add(&mut self, scope: Scope) {
        match scope {
            Scope::Backend => self.backend = true,
            Scope::Frontend => self.frontend = true,
            Scope::Both => (self.backend, self.frontend) = (true, true),
            Scope::Chart => self.chart = true,
        }
    }

    /// Nothing affected.
    pub fn is_empty(self) -> bool {
        self == Affected::default()
    }

    /// The services (binaries) affected, backend first: the order they are started in.
    pub fn services(self) -> Vec<&'static str> {
        [(self.backend, "backend"), (self.frontend, "frontend")]
            .into_iter()
            .filter_map(|(affected, name)| affected.then_some(name))
            .collect()
    }

    /// "backend", "frontend", "backend, frontend, chart": for the one line per cycle.
    pub fn describe(self) -> String {
        let mut parts = self.services();
        if self.chart {
            parts.push("chart");
        }
        parts.join(", ")
    }
}

/// What a change to `relative` (a path inside the project root) can affect; `None` for a path
/// that is not a source: outside the watched folders, build output, git's files or an editor's
/// scratch file.
pub fn classify(relative: &Path) -> Option<Scope> {
    if is_ignored(relative) {
        return None;
    }
    let mut parts = relative.components().map(|c| match c {
        Component::Normal(part) => part.to_str(),
        _ => None,
    });
    let first = parts.next()??;
    let second = parts.next().flatten();
    match (first, second) {
        ("Cargo.toml" | "Cargo.lock", None) => Some(Scope::Both),
        ("backend", Some("service")) => Some(Scope::Both),
        ("backend", Some(_)) => Some(Scope::Backend),
        ("frontend", Some(_)) => Some(Scope::Frontend),
        ("helm", Some(_)) => Some(Scope::Chart),
        _ => None,
    }
}

/// Build output (`target/`), git's folder, and the scratch files editors write beside the file
/// being saved: Vim's swap files (`*.swp`, `*.swx`) and its write probe `4913`, backups (`*~`),
/// Emacs lock files (`.#name`), and `*.tmp` (atomic-save temporaries of many editors).
pub fn is_ignored(relative: &Path) -> bool {
    if relative
        .components()
        .any(|c| matches!(c.as_os_str().to_str(), Some("target" | ".git")))
    {
        return true;
    }
    let Some(name) = relative.file_name().and_then(|n| n.to_str()) else {
        return true;
    };
    name == "4913"
        || name.ends_with('~')
        || name.starts_with(".#")
        || [".swp", ".swx", ".tmp"].iter().any(|ext| name.ends_with(ext))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(path: &str) -> Option<Scope> {
        classify(Path::new(path))
    }

    #[test]
    fn each_folder_affects_what_is_built_from_it() {
        assert_eq!(scope("backend/src/routes/tasks.rs"), Some(Scope::Backend));
        assert_eq!(scope("backend/migrations/0001_init.sql"), Some(Scope::Backend));
        assert_eq!(scope("backend/Cargo.toml"), Some(Scope::Backend));
        assert_eq!(scope("frontend/templates/index.html"), Some(Scope::Frontend));
        assert_eq!(scope("frontend/static/app.css"), Some(Scope::Frontend));
        assert_eq!(scope("backend/service/src/shutdown.rs"), Some(Scope::Both));
        assert_eq!(scope("Cargo.toml"), Some(Scope::Both));
        assert_eq!(scope("Cargo.lock"), Some(Scope::Both));
        assert_eq!(scope("helm/values.yaml"), Some(Scope::Chart));
        assert_eq!(scope("helm/templates/backend-deployment.yaml"), Some(Scope::Chart));
    }

    #[test]
    fn paths_outside_the_watched_folders_affect_nothing() {
        for path in [
            "README.md",
            "xtask/src/run.rs",
            "docs/deployment/README.md",
            "backend",
            "frontend",
        ] {
            assert_eq!(scope(path), None, "{path}");
        }
        // A manifest deeper down is not the workspace's.
        assert_eq!(scope("docs/Cargo.toml"), None);
    }

    #[test]
    fn editor_scratch_files_build_output_and_git_are_ignored() {
        for path in [
            "backend/src/.main.rs.swp",
            "backend/src/.main.rs.swx",
            "backend/src/main.rs~",
            "frontend/src/.#lib.rs",
            "frontend/src/4913",
            "helm/values.yaml.tmp",
            "target/debug/backend",
            "backend/target/debug/build.rs",
            ".git/index",
            "frontend/.git/HEAD",
        ] {
            assert!(is_ignored(Path::new(path)), "{path}");
            assert_eq!(scope(path), None, "{path}");
        }
        // Names that merely contain those patterns are sources.
        for path in [
            "backend/src/targets.rs",
            "frontend/src/tmp_files.rs",
            "backend/src/v4913.rs",
        ] {
            assert!(!is_ignored(Path::new(path)), "{path}");
        }
    }

    #[test]
    fn a_burst_adds_up_what_its_files_affect() {
        let mut affected = Affected::default();
        assert!(affected.is_empty());
        affected.add(Scope::Frontend);
        assert_eq!(affected.services(), ["frontend"]);
        affected.add(Scope::Chart);
        assert_eq!(affected.describe(), "frontend, chart");
        affected.add(Scope::Both);
        assert_eq!(affected.services(), ["backend", "frontend"]);
        assert_eq!(affected.describe(), "backend, frontend, chart");
    }
}
