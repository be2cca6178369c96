//! `cargo xtask build-images` without building anything: engine choice and its errors, and the
//! exact commands of a dry run (a real build is exercised by `cargo xtask e2e`).

use crate::support::standins::{Program, Reply, StandIns, run};

const XTASK: &str = env!("CARGO_BIN_EXE_xtask");

fn root() -> String {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .display()
        .to_string()
}

#[test]
fn a_dry_run_prints_every_command_and_runs_none() {
    let standins = StandIns::new();
    standins.install(&Program::new("podman"));
    let result = run(standins.command(XTASK).args(["build-images", "--dry-run"]));
    assert_eq!(result.code, 0, "{}", result.stderr);
    // The image contexts live in the target directory (`CARGO_TARGET_DIR` when set).
    let images = xtask::images_dir().display().to_string();
    let expected = format!(
        "$ cargo build --release --locked --target x86_64-unknown-linux-gnu --package backend --package frontend\n\
         $ podman build --tag todo-backend:<content-hash> --build-arg VERSION=<content-hash> --build-arg REVISION=unknown \
         --build-arg CREATED=unknown {images}/backend\n\
         $ podman build --tag todo-frontend:<content-hash> --build-arg VERSION=<content-hash> --build-arg REVISION=unknown \
         --build-arg CREATED=unknown {images}/frontend\n"
    );
    assert_eq!(result.stdout, expected);
    assert!(
        standins.invocations().is_empty(),
        "a dry run runs nothing: {:?}",
        standins.invocations()
    );
}

#[test]
fn only_one_image_still_builds_both_binaries_and_push_goes_to_the_registry() {
    let standins = StandIns::new();
    standins.install(&Program::new("podman"));
    let result = run(standins.command(XTASK).args([
        "build-images",
        "--dry-run",
        "--only",
        "frontend",
        "--push",
        "--registry",
        "registry.example.com/team/",
    ]));
    assert_eq!(result.code, 0, "{}", result.stderr);
    let lines: Vec<&str> = result.stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{}", result.stdout);
    assert!(
        lines[0].ends_with("--package backend --package frontend"),
        "same features, same binaries: {}",
        lines[0]
    );
    assert!(lines[1].starts_with("$ podman build --tag todo-frontend:<content-hash>"));
    assert_eq!(
        lines[2],
        "$ podman tag todo-frontend:<content-hash> registry.example.com/team/todo-frontend:<content-hash>"
    );
    assert_eq!(
        lines[3],
        "$ podman push registry.example.com/team/todo-frontend:<content-hash>"
    );
}

#[test]
fn another_architecture_builds_inside_the_official_rust_image() {
    let standins = StandIns::new();
    standins.install(&Program::new("podman"));
    let result = run(standins
        .command(XTASK)
        .args(["build-images", "--dry-run", "--arch", "arm64"]));
    assert_eq!(result.code, 0, "{}", result.stderr);
    let first = result.stdout.lines().next().unwrap();
    let root = root();
    assert_eq!(
        first,
        format!(
            "$ podman run --rm --platform linux/arm64 -v {root}:/src -v todo-cargo-registry:/usr/local/cargo/registry \
             -w /src -e CARGO_TARGET_DIR=/src/target/container \
             -e \"CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUSTFLAGS=-C target-feature=+crt-static\" \
             docker.io/library/rust:1.95-bookworm cargo build --release --locked --target aarch64-unknown-linux-gnu \
             --package backend --package frontend"
        )
    );
}

#[test]
fn without_docker_or_podman_it_names_both_and_how_to_install_them() {
    let standins = StandIns::new();
    let result = run(standins.command(XTASK).args(["build-images", "--dry-run"]));
    assert_eq!(result.code, 1);
    assert!(
        result
            .stderr
            .contains("no container engine found: need Docker with a running daemon, or Podman"),
        "{}",
        result.stderr
    );
    assert!(
        result.stderr.contains("https://docs.docker.com/engine/install/"),
        "{}",
        result.stderr
    );
    assert!(
        result.stderr.contains("sudo apt-get install -y podman runc"),
        "{}",
        result.stderr
    );
}

#[test]
fn a_docker_client_without_a_daemon_falls_back_to_podman_unless_docker_is_asked_for() {
    let standins = StandIns::new();
    let docker = Program::new("docker").on("info *", Reply::fail(1, "Cannot connect to the Docker daemon\n"));
    standins.install_all([&docker, &Program::new("podman")]);
    let result = run(standins.command(XTASK).args(["build-images", "--dry-run"]));
    assert_eq!(result.code, 0, "{}", result.stderr);
    assert!(result.stdout.contains("$ podman build"), "{}", result.stdout);

    let result = run(standins
        .command(XTASK)
        .args(["build-images", "--dry-run", "--engine", "docker"]));
    assert_eq!(result.code, 1);
    assert!(
        result
            .stderr
            .contains("docker is installed but its daemon is not reachable"),
        "{}",
        result.stderr
    );
    assert!(
        standins
            .invocations()
            .iter()
            .all(|call| call.starts_with("docker info")),
        "{:?}",
        standins.invocations()
    );
}
