//! Watching the project's sources for the inner loop (`run --watch`): `backend/`, `frontend/`,
//! `helm/` and the workspace manifests, through the operating system's notifications (inotify on
//! Linux, via `notify`). A burst of saves (an editor writing a temporary file, renaming it, a
//! formatter touching a dozen files) becomes one [`Change`] once the folder has been quiet for a
//! moment; a save that leaves a file's content as it was is no change at all, which the
//! [`classify`] rules then turn into what must be rebuilt.

pub mod classify;

use std::{
    collections::{BTreeSet, HashMap},
    path::{Path, PathBuf},
    sync::mpsc,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use notify::{
    EventKind, RecursiveMode, Watcher,
    event::{AccessKind, AccessMode},
};
use sha2::{Digest, Sha256};

pub use classify::{Affected, Scope, classify};

/// The folders watched with everything inside them; the root itself is watched for its manifests.
pub const WATCHED_FOLDERS: [&str; 3] = ["backend", "frontend", "helm"];

/// How long the folder must stay quiet before a burst of saves counts as one change.
pub const QUIET: Duration = Duration::from_millis(250);

/// A burst that never settles (a program writing without pause) still ends after this long.
const LONGEST_BURST: Duration = Duration::from_secs(3);

/// One burst of saves that changed the content of at least one source.
#[derive(Debug, Clone)]
pub struct Change {
    /// What the changed files can affect.
    pub affected: Affected,
    /// The changed files, relative to the project root, sorted.
    pub paths: Vec<PathBuf>,
    /// When the first save of the burst was seen.
    pub saved: Instant,
    /// When the burst was over (the folder quiet for [`QUIET`]).
    pub settled: Instant,
}

/// "frontend/src/lib.rs", or "backend/src/a.rs and 3 more": the files of a burst in one phrase.
pub fn describe<P: AsRef<Path>>(paths: &[P]) -> String {
    match paths {
        [] => String::new(),
        [one] => one.as_ref().display().to_string(),
        [first, rest @ ..] => format!("{} and {} more", first.as_ref().display(), rest.len()),
    }
}

/// The content of a file when last seen; `None` when it did not exist (or was not a file).
type Fingerprint = Option<[u8; 32]>;

/// Notifications for the project's sources, and the content each source had when last seen.
pub struct SourceWatcher {
    root: PathBuf,
    events: mpsc::Receiver<notify::Result<notify::Event>>,
    // Kept alive: dropping it ends the notifications.
    _watcher: notify::RecommendedWatcher,
    seen: HashMap<PathBuf, Fingerprint>,
    quiet: Duration,
    /// The last burst of saves that left every file as it was, until taken.
    unchanged: Option<Unchanged>,
}

/// A burst of saves that changed no file's content: nothing to build.
#[derive(Debug, Clone)]
pub struct Unchanged {
    /// The files saved, relative to the project root, sorted.
    pub paths: Vec<PathBuf>,
    /// From the first save until the content was found unchanged (the quiet period included).
    pub took: Duration,
}

impl SourceWatcher {
    /// Starts watching the sources under `root` and records their content as it is now.
    pub fn start(root: &Path, quiet: Duration) -> anyhow::Result<SourceWatcher> {
        let (tx, events) = mpsc::channel();
        let mut watcher = notify::recommended_watcher(tx).context("starting the file watcher")?;
        for folder in WATCHED_FOLDERS {
            let path = root.join(folder);
            if path.is_dir() {
                watcher
                    .watch(&path, RecursiveMode::Recursive)
                    .with_context(|| format!("watching {}", path.display()))?;
            }
        }
        watcher
            .watch(root, RecursiveMode::NonRecursive)
            .with_context(|| format!("watching {}", root.display()))?;
        // Watching first, then reading: a save in between is seen rather than lost.
        let mut seen = HashMap::new();
        for folder in WATCHED_FOLDERS {
            record_tree(root, Path::new(folder), &mut seen);
        }
        for manifest in ["Cargo.toml", "Cargo.lock"] {
            seen.insert(PathBuf::from(manifest), fingerprint(&root.join(manifest)));
        }
        Ok(SourceWatcher {
            root: root.to_owned(),
            events,
            _watcher: watcher,
            seen,
            quiet,
            unchanged: None,
        })
    }

    /// The next burst of saves if one begins within `wait`, as a [`Change`] when it changed a
    /// source's content; `None` when no save came, or the saves left every file as it was.
    pub fn next_change(&mut self, wait: Duration) -> anyhow::Result<Option<Change>> {
        let Some((saved, paths)) = self.next_burst(wait)? else {
            return Ok(None);
        };
        let settled = Instant::now();
        let saved_paths: Vec<PathBuf> = paths.iter().cloned().collect();
        let changed: Vec<PathBuf> = paths.into_iter().filter(|path| self.content_changed(path)).collect();
        if changed.is_empty() {
            self.unchanged = Some(Unchanged {
                paths: saved_paths,
                took: saved.elapsed(),
            });
            return Ok(None);
        }
        let mut affected = Affected::default();
        for path in &changed {
            if let Some(scope) = classify(path) {
                affected.add(scope);
            }
        }
        Ok(Some(Change {
            affected,
            paths: changed,
            saved,
            settled,
        }))
    }

    /// The last burst of saves that changed nothing, once: what a `None` from
    /// [`SourceWatcher::next_change`] passed over, for the loop to say so.
    pub fn take_unchanged(&mut self) -> Option<Unchanged> {
        self.unchanged.take()
    }

    /// The source paths touched by the next burst of notifications, and when it began.
    fn next_burst(&mut self, wait: Duration) -> anyhow::Result<Option<(Instant, BTreeSet<PathBuf>)>> {
        let waiting = Instant::now();
        let mut paths = BTreeSet::new();
        while paths.is_empty() {
            let Some(left) = wait.checked_sub(waiting.elapsed()) else {
                return Ok(None);
            };
            match self.events.recv_timeout(left) {
                Ok(event) => paths.extend(self.sources_in(event)?),
                Err(mpsc::RecvTimeoutError::Timeout) => return Ok(None),
                Err(mpsc::RecvTimeoutError::Disconnected) => bail!("the file watcher stopped"),
            }
        }
        let saved = Instant::now();
        while saved.elapsed() < LONGEST_BURST {
            match self.events.recv_timeout(self.quiet) {
                Ok(event) => paths.extend(self.sources_in(event)?),
                Err(mpsc::RecvTimeoutError::Timeout) => break,
                Err(mpsc::RecvTimeoutError::Disconnected) => bail!("the file watcher stopped"),
            }
        }
        Ok(Some((saved, paths)))
    }

    /// The watched sources an event is about, relative to the root.
    fn sources_in(&self, event: notify::Result<notify::Event>) -> anyhow::Result<Vec<PathBuf>> {
        let event = event.context("the file watcher reported an error")?;
        // Opening and reading change nothing (and hashing a file reads it: no echo of our own).
        if matches!(
            event.kind,
            EventKind::Access(AccessKind::Open(_) | AccessKind::Read | AccessKind::Close(AccessMode::Read))
        ) {
            return Ok(Vec::new());
        }
        Ok(event
            .paths
            .iter()
            .filter_map(|path| path.strip_prefix(&self.root).ok())
            .filter(|relative| classify(relative).is_some())
            .map(Path::to_path_buf)
            .collect())
    }

    /// Whether `relative`'s content differs from when it was last seen (and remembers it).
    fn content_changed(&mut self, relative: &Path) -> bool {
        let now = fingerprint(&self.root.join(relative));
        let before = self.seen.insert(relative.to_owned(), now);
        before.flatten() != now
    }
}

/// The SHA-256 of a file's content; `None` for a missing file or a folder.
fn fingerprint(path: &Path) -> Fingerprint {
    std::fs::read(path).ok().map(|bytes| Sha256::digest(bytes).into())
}

/// Records the fingerprint of every source under `folder` (relative to `root`).
fn record_tree(root: &Path, folder: &Path, seen: &mut HashMap<PathBuf, Fingerprint>) {
    let Ok(entries) = std::fs::read_dir(root.join(folder)) else {
        return;
    };
    for entry in entries.flatten() {
        let relative = folder.join(entry.file_name());
        if classify(&relative).is_none() {
            continue;
        }
        match entry.file_type() {
            Ok(kind) if kind.is_dir() => record_tree(root, &relative, seen),
            Ok(_) => {
                seen.insert(relative.clone(), fingerprint(&root.join(&relative)));
            }
            Err(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use std::{fs, thread};

    use super::*;

    /// A project-shaped temporary folder, watched.
    fn watched_project() -> (tempfile::TempDir, SourceWatcher) {
        let dir = tempfile::tempdir().unwrap();
        for (path, content) in [
            ("Cargo.toml", "[workspace]\n"),
            ("backend/src/main.rs", "fn main() {}\n"),
            ("backend/service/src/lib.rs", "\n"),
            ("frontend/src/lib.rs", "\n"),
            ("helm/values.yaml", "replicas: 1\n"),
        ] {
            let path = dir.path().join(path);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, content).unwrap();
        }
        let watcher = SourceWatcher::start(dir.path(), QUIET).unwrap();
        (dir, watcher)
    }

    /// The next change, or `None` if none comes within `wait`.
    fn change_within(watcher: &mut SourceWatcher, wait: Duration) -> Option<Change> {
        let deadline = Instant::now() + wait;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            if let Some(change) = watcher.next_change(left).unwrap() {
                return Some(change);
            }
        }
        None
    }

    #[test]
    fn a_burst_of_saves_is_one_change_and_scratch_files_are_not_sources() {
        let (dir, mut watcher) = watched_project();
        let root = dir.path().to_owned();
        // As Vim saves, five times over: a write probe, a swap file, a backup, then the file.
        let writer = thread::spawn(move || {
            for round in 0..5 {
                fs::write(root.join("frontend/src/4913"), "").unwrap();
                fs::remove_file(root.join("frontend/src/4913")).unwrap();
                fs::write(root.join("frontend/src/.lib.rs.swp"), format!("{round}")).unwrap();
                fs::write(root.join("frontend/src/lib.rs~"), "\n").unwrap();
                fs::write(root.join("frontend/src/lib.rs"), format!("// save {round}\n")).unwrap();
                thread::sleep(Duration::from_millis(40));
            }
        });
        let change = change_within(&mut watcher, Duration::from_secs(10)).expect("the burst is seen");
        writer.join().unwrap();
        assert_eq!(change.paths, [PathBuf::from("frontend/src/lib.rs")]);
        assert_eq!(change.affected.services(), ["frontend"]);
        assert!(change.settled >= change.saved + QUIET);
        assert!(
            change_within(&mut watcher, Duration::from_secs(1)).is_none(),
            "one burst, one change"
        );
    }

    #[test]
    fn a_save_with_the_same_content_is_no_change() {
        let (dir, mut watcher) = watched_project();
        fs::write(dir.path().join("backend/src/main.rs"), "fn main() {}\n").unwrap();
        fs::write(dir.path().join("Cargo.toml"), "[workspace]\n").unwrap();
        assert!(change_within(&mut watcher, Duration::from_secs(2)).is_none());

        // A real edit after it is seen, and what it affects follows the folder.
        fs::write(dir.path().join("backend/service/src/lib.rs"), "// shared\n").unwrap();
        let change = change_within(&mut watcher, Duration::from_secs(10)).expect("the edit is seen");
        assert_eq!(change.affected.services(), ["backend", "frontend"]);
        fs::write(dir.path().join("helm/values.yaml"), "replicas: 2\n").unwrap();
        let change = change_within(&mut watcher, Duration::from_secs(10)).expect("the edit is seen");
        assert_eq!(change.affected.describe(), "chart");
    }
}
