//! The app's own binaries, as the tests that start them with `cargo xtask run` need them.

use std::{
    io::{BufRead, BufReader, Read},
    path::Path,
    process::Command,
    sync::{Arc, Mutex, mpsc},
};

/// Brings the services' debug binaries up to date the way the workspace's test run builds them,
/// so that `run --no-build` starts current code: after `cargo test --workspace` (as in `cargo
/// xtask test`) this is a no-op, where `run`'s own `cargo build -p backend -p frontend` would
/// compile the dependency graph once more with other features. Once per test binary.
pub fn built_services() {
    static BUILT: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    BUILT.get_or_init(|| {
        let status = Command::new(env!("CARGO"))
            .args(["build", "--quiet", "--locked", "--workspace", "--all-targets"])
            .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
            // As `cargo xtask` starts cargo (see its main): the variable the test runner sets
            // would make cargo rebuild crates whose build scripts track it.
            .env_remove("CARGO_MANIFEST_DIR")
            .status()
            .unwrap();
        assert!(status.success(), "building the workspace failed");
    });
}

/// `cargo xtask run --no-build --json` on free ports with its data in `data`, then `extra`.
pub fn run_on_free_ports(data: &Path, extra: &[&str]) -> Command {
    built_services();
    let mut command = Command::new(env!("CARGO_BIN_EXE_xtask"));
    command
        .args(["run", "--no-build", "--json", "--port", "0", "--backend-port", "0"])
        .arg("--data-dir")
        .arg(data)
        .args(extra);
    command
}

/// Reads a command's stderr as it comes, line by line, on a thread of its own: each line is sent
/// to the receiver (to wait for one) and kept in the list (to show them all when a test fails).
pub fn read_lines(stderr: impl Read + Send + 'static) -> (mpsc::Receiver<String>, Arc<Mutex<Vec<String>>>) {
    let (tx, lines) = mpsc::channel();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let kept = seen.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            kept.lock().unwrap().push(line.clone());
            let _ = tx.send(line);
        }
    });
    (lines, seen)
}
