//! The inner-loop bench (xtask/benches/inner_loop.rs) runs `dev` on a copy of the real tree and
//! edits it: the copy, and the lines it edits, checked here without building it.

use super::project::{Project, REAL_BACKEND_FILE, REAL_FRONTEND_FILE, REAL_FRONTEND_LINE};

#[test]
fn the_benchs_copy_holds_the_tracked_sources_and_the_lines_it_edits() {
    let target = tempfile::tempdir().unwrap();
    let copy = Project::copy_of_real_tree(target.path().to_path_buf());
    for file in [
        "Cargo.toml",
        "Cargo.lock",
        "helm/Chart.yaml",
        "backend/Dockerfile",
        REAL_BACKEND_FILE,
    ] {
        assert!(copy.path().join(file).is_file(), "{file} was not copied");
    }
    // The edit must find its line exactly once, or the bench would measure another change.
    let frontend = copy.read(REAL_FRONTEND_FILE);
    assert_eq!(
        frontend.matches(REAL_FRONTEND_LINE.0).count(),
        1,
        "{REAL_FRONTEND_FILE}"
    );
    assert!(!frontend.contains(REAL_FRONTEND_LINE.1));
    // Ignored and git's own files stay behind: the copy builds in its own target folder.
    for left_out in ["target", ".git"] {
        assert!(!copy.path().join(left_out).exists(), "{left_out} was copied");
    }
    assert_eq!(copy.target(), target.path());
}
