//! `cargo xtask e2e` removes everything it started — containers, network, volume — when a step
//! fails and when it is interrupted. (The successful run is the last step of `cargo xtask test`.)

use std::{
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use nix::{
    sys::signal::{Signal, kill},
    unistd::Pid,
};
use serde_json::json;
use xshell::{Shell, cmd};
use xtask::tools::engine::Engine;

const XTASK: &str = env!("CARGO_BIN_EXE_xtask");

fn engine() -> Engine {
    let sh = Shell::new().unwrap();
    Engine::detect(&sh, None).unwrap_or_else(|err| panic!("these tests need Podman or Docker: {err:#}"))
}

/// Names of containers, networks and volumes that start with `prefix`.
fn leftovers(engine: Engine, prefix: &str) -> Vec<String> {
    let sh = Shell::new().unwrap();
    let program = engine.program();
    let mut names = Vec::new();
    for kind in ["container", "network", "volume"] {
        let format = if kind == "container" { "{{.Names}}" } else { "{{.Name}}" };
        let listing = cmd!(sh, "{program} {kind} ls --all --format {format}")
            .quiet()
            .read()
            .or_else(|_| cmd!(sh, "{program} {kind} ls --format {format}").quiet().read())
            .unwrap();
        names.extend(
            listing
                .lines()
                .filter(|n| n.starts_with(prefix))
                .map(|n| format!("{kind} {n}")),
        );
    }
    names
}

/// An image record naming `reference` for both services.
fn record(dir: &Path, engine: Engine, name: &str, tag: &str) -> std::path::PathBuf {
    let image = |service: &str, image: &str| {
        json!({"service": service, "name": name, "tag": tag, "reference": format!("{image}:{tag}"),
               "id": "0", "size_bytes": 0, "built": false, "revision": "test"})
    };
    let path = dir.join("images.json");
    let record = json!({"engine": engine, "arch": "amd64",
                        "images": [image("backend", name), image("frontend", name)]});
    std::fs::write(&path, record.to_string()).unwrap();
    path
}

#[test]
fn a_failed_run_removes_what_it_started() {
    let engine = engine();
    let dir = tempfile::tempdir().unwrap();
    // No such image: the network and the volume get created, then the backend cannot start.
    let images = record(dir.path(), engine, "todo-e2e-missing", "000000000000");
    let child = Command::new(XTASK)
        .args(["e2e", "--images"])
        .arg(&images)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let prefix = format!("todo-e2e-{}", child.id());
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    // A record written without a profile is a release build, and e2e says which build it runs.
    assert!(
        stderr.contains("images: todo-e2e-missing:000000000000 and todo-e2e-missing:000000000000 (release build)"),
        "{stderr}"
    );
    assert!(stderr.contains("step `start the backend` failed"), "{stderr}");
    assert!(stderr.contains("remove containers, network and volume: ok"), "{stderr}");
    assert_eq!(leftovers(engine, &prefix), Vec::<String>::new());
}

#[test]
fn an_interrupted_run_removes_what_it_started() {
    let engine = engine();
    let dir = tempfile::tempdir().unwrap();
    // A container that starts and never answers: e2e is still waiting for /health when Ctrl-C comes.
    let sleeper = build_sleeper_image(engine, dir.path());
    let images = record(dir.path(), engine, &sleeper.0, &sleeper.1);
    let mut child = Command::new(XTASK)
        .args(["e2e", "--images"])
        .arg(&images)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let prefix = format!("todo-e2e-{}", child.id());
    let deadline = Instant::now() + Duration::from_secs(60);
    while !leftovers(engine, &prefix)
        .iter()
        .any(|n| n.starts_with("container") && n.ends_with("-backend"))
    {
        assert!(Instant::now() < deadline, "the backend container never appeared");
        assert!(
            child.try_wait().unwrap().is_none(),
            "e2e ended before it could be interrupted"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    kill(Pid::from_raw(child.id() as i32), Signal::SIGINT).unwrap();
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted: removing the e2e containers"), "{stderr}");
    assert_eq!(leftovers(engine, &prefix), Vec::<String>::new());
    let sh = Shell::new().unwrap();
    let program = engine.program();
    let reference = format!("{}:{}", sleeper.0, sleeper.1);
    let _ = cmd!(sh, "{program} rmi --force {reference}")
        .quiet()
        .ignore_stdout()
        .ignore_stderr()
        .run();
}

/// A FROM-scratch image whose entrypoint sleeps for an hour: a static binary compiled right here.
fn build_sleeper_image(engine: Engine, dir: &Path) -> (String, String) {
    let sh = Shell::new().unwrap();
    let context = dir.join("sleeper");
    std::fs::create_dir_all(&context).unwrap();
    let source = context.join("sleeper.rs");
    std::fs::write(
        &source,
        "fn main() { std::thread::sleep(std::time::Duration::from_secs(3600)); }\n",
    )
    .unwrap();
    let binary = context.join("sleeper");
    cmd!(sh, "rustc -O -C target-feature=+crt-static -o {binary} {source}")
        .run()
        .unwrap();
    std::fs::write(
        context.join("Dockerfile"),
        "FROM scratch\nCOPY sleeper /sleeper\nENTRYPOINT [\"/sleeper\"]\n",
    )
    .unwrap();
    let tag = format!("{}", std::process::id());
    let name = "todo-e2e-sleeper".to_owned();
    let reference = format!("{name}:{tag}");
    let program = engine.program();
    cmd!(sh, "{program} build --quiet --tag {reference} {context}")
        .quiet()
        .ignore_stdout()
        .run()
        .unwrap();
    (name, tag)
}

/// On a network without DNS the frontend cannot find the backend by its Service name: e2e says so
/// in one sentence with the fix for the engine's network backend — before the smoke test, which
/// would only see a 503 at sign-up — removes what it started, and fails. The real images run on
/// a real Podman network; a stand-in in front of the real `podman` only adds `--disable-dns` to
/// `podman network create`.
#[test]
fn a_network_without_dns_is_named_as_the_cause() {
    let sh = Shell::new().unwrap();
    let real =
        which::which("podman").unwrap_or_else(|_| panic!("this test needs Podman: {}", xtask::tools::PODMAN.install));
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let wrapper = bin.join("podman");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\n# The real podman, except that networks are created without DNS.\n\
             if [ \"$1\" = network ] && [ \"$2\" = create ]; then shift 2; exec {real:?} network create --disable-dns \"$@\"; fi\n\
             exec {real:?} \"$@\"\n"
        ),
    )
    .unwrap();
    std::fs::set_permissions(&wrapper, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());

    let child = Command::new(XTASK)
        .args(["e2e", "--engine", "podman"])
        .env("PATH", &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let prefix = format!("todo-e2e-{}", child.id());
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("step `check that the frontend reaches the backend by its Service name` failed"),
        "{stderr}"
    );
    let network = format!("{prefix}-net");
    let sentence = format!(
        "the frontend container cannot resolve the backend's Service name \"todo-backend\" on network {network}: "
    );
    assert!(stderr.contains(&sentence), "{stderr}");
    let format = "{{.Host.NetworkBackend}}";
    let backend = cmd!(sh, "{real} info --format {format}").read().unwrap();
    let cause = match backend.trim() {
        "netavark" => "Podman created that network with DNS disabled",
        "cni" => "Podman uses its CNI network backend without the dnsname plugin",
        other => panic!("unexpected network backend {other:?}"),
    };
    assert!(stderr.contains(&format!("{sentence}{cause}")), "{stderr}");
    assert!(stderr.contains("; fix: "), "{stderr}");
    // The smoke test never ran: the cause was found first.
    assert!(!stdout.contains("sign up"), "{stdout}");
    assert!(stderr.contains("remove containers, network and volume: ok"), "{stderr}");
    assert_eq!(leftovers(Engine::Podman, &prefix), Vec::<String>::new());
}
