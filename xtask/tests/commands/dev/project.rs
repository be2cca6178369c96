//! What the `dev` scenarios run against: a small project of the real one's shape, built for real,
//! and a stand-in Minikube cluster whose node keeps a real image store.
//!
//! The project ([`Project`]) is a temporary workspace with two tiny dependency-free crates named
//! `backend` and `frontend` (so the real compiler builds them in about a second), the real
//! Dockerfiles, the real chart and the real `[profile.*]` sections. `dev --watch-root` watches
//! and builds it, with `CARGO_TARGET_DIR` inside it; cargo and Podman are the real ones.
//!
//! The cluster is the stand-ins of `support::cluster`, with three answers made by real programs
//! ([`cluster`]): Minikube's node is an image store of its own kept by the real Podman in a
//! folder of the test (`minikube image load` loads the archive there, `minikube image ls` lists
//! it), so an image is on the node exactly when `dev` loaded it; and `kubectl port-forward` to a
//! Service runs the binary of the last image built for it, as the release's pods would, reporting
//! the image tag of the last `helm upgrade` as its build (the chart sets `APP_BUILD` to it).

use std::{
    fs,
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Stdio},
    sync::{Arc, Mutex, mpsc},
    time::Duration,
};

use nix::{
    sys::signal::{Signal, kill},
    unistd::Pid,
};
use serde_json::Value;

use crate::support::{
    app::read_lines,
    cluster::{change, healthy, without},
    standins::{Program, Reply, StandIns},
};

/// The inner-loop bench's edits of the real tree (in a copy): the file of a one-line change in
/// the frontend and that line (before, after), and the backend file that gets a comment.
pub const REAL_FRONTEND_FILE: &str = "frontend/src/error.rs";
pub const REAL_FRONTEND_LINE: (&str, &str) = ("\"Service unavailable\",", "\"Service unavailable.\",");
pub const REAL_BACKEND_FILE: &str = "backend/src/lib.rs";

/// How long a cycle may take before a scenario gives up.
pub const WAIT: Duration = Duration::from_secs(180);
/// How long the first deploy may take: for a copy of the real tree (the inner-loop bench) it
/// compiles the copy's crates, and any dependency not built yet. (A `dev` that fails ends its
/// output, which ends the wait at once.)
const FIRST_DEPLOY: Duration = Duration::from_secs(1800);

/// A tiny service: the health contract, and `/version` reporting `APP_BUILD` as its build.
const SERVICE: &str = r#"// The test project's {name}: the health contract and /version, nothing else.
use std::{io::{Read, Write}, net::TcpListener, time::Duration};

const GREETING: &str = "hello from {name}";
/// Which test's project this is: each project's binaries (and tags) are its own.
const PROJECT: &str = "{project}";

fn main() {
    let address = std::env::var("LISTEN_ADDR").unwrap_or_else(|_| "127.0.0.1:0".to_owned());
    let build = std::env::var("APP_BUILD").unwrap_or_else(|_| "dev".to_owned());
    let listener = TcpListener::bind(&address).expect("bind");
    eprintln!("{name}: {GREETING} ({PROJECT}), listening on {:?}", listener.local_addr());
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { continue };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
        let mut request = [0_u8; 2048];
        let read = stream.read(&mut request).unwrap_or(0);
        let request = String::from_utf8_lossy(&request[..read]);
        let body = match request.split_whitespace().nth(1) {
            Some("/version") => format!("{{\"version\":\"0.1.0\",\"build\":\"{build}\"}}"),
            _ => "{\"status\":\"ok\"}".to_owned(),
        };
        let _ = write!(
            stream,
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
    }
}
"#;

/// The real project's root.
fn real_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A project-shaped temporary workspace.
pub struct Project {
    dir: tempfile::TempDir,
    /// Cargo's target folder for it (`CARGO_TARGET_DIR`).
    target: PathBuf,
    /// Whether `dev` builds into an image store of the scenario's own. Scenarios run in
    /// parallel and build the same content, hence the same tags: in one shared store, one
    /// scenario's cleanup removed an image another was building on ("layer not known").
    own_image_store: bool,
}

impl Project {
    /// Writes the workspace, the services, their Dockerfiles and a copy of the chart.
    pub fn new() -> Project {
        let dir = tempfile::Builder::new().prefix("dev-project-").tempdir().unwrap();
        let target = dir.path().join("target");
        let project = Project {
            dir,
            target,
            own_image_store: true,
        };
        let manifest = fs::read_to_string(real_root().join("Cargo.toml")).unwrap();
        let profiles = &manifest[manifest.find("[profile.").expect("the workspace's profiles")..];
        project.write(
            "Cargo.toml",
            &format!("[workspace]\nresolver = \"3\"\nmembers = [\"backend\", \"frontend\"]\n\n{profiles}"),
        );
        let mut lock = "# This file is automatically @generated by Cargo.\n# It is not intended for manual editing.\nversion = 4\n".to_owned();
        for name in ["backend", "frontend"] {
            lock.push_str(&format!("\n[[package]]\nname = \"{name}\"\nversion = \"0.1.0\"\n"));
            project.write(
                &format!("{name}/Cargo.toml"),
                &format!("[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2024\"\n"),
            );
            let unique = project.path().file_name().unwrap().to_string_lossy().into_owned();
            let source = SERVICE.replace("{name}", name).replace("{project}", &unique);
            project.write(&format!("{name}/src/main.rs"), &source);
            let dockerfile = fs::read_to_string(real_root().join(name).join("Dockerfile")).unwrap();
            project.write(&format!("{name}/Dockerfile"), &dockerfile);
        }
        project.write("Cargo.lock", &lock);
        copy_tree(&real_root().join("helm"), &project.path().join("helm"));
        project
    }

    /// The project's folder.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A copy of the real project's files (those git tracks or would track, as they are in the
    /// work tree),
    /// built in `target`: the inner-loop bench edits this copy, never the real sources.
    pub fn copy_of_real_tree(target: PathBuf) -> Project {
        let dir = tempfile::Builder::new().prefix("dev-tree-").tempdir().unwrap();
        let root = real_root();
        let listing = std::process::Command::new("git")
            .args(["ls-files", "-z", "--cached", "--others", "--exclude-standard"])
            .current_dir(&root)
            .output()
            .expect("git lists the project's files");
        assert!(listing.status.success(), "git ls-files failed in {}", root.display());
        for name in listing.stdout.split(|b| *b == 0).filter(|name| !name.is_empty()) {
            let relative = Path::new(std::str::from_utf8(name).expect("UTF-8 file names"));
            let to = dir.path().join(relative);
            fs::create_dir_all(to.parent().unwrap()).unwrap();
            // A file deleted in the work tree but not yet in git's index is left out.
            if root.join(relative).is_file() {
                fs::copy(root.join(relative), to).unwrap();
            }
        }
        // The bench runs alone, and measures the machine's own store.
        Project {
            dir,
            target,
            own_image_store: false,
        }
    }

    /// Cargo's target folder for it.
    pub fn target(&self) -> PathBuf {
        self.target.clone()
    }

    /// Writes `content` to `relative` (creating its folder).
    pub fn write(&self, relative: &str, content: &str) {
        let path = self.path().join(relative);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, content).unwrap();
    }

    /// The content of `relative`.
    pub fn read(&self, relative: &str) -> String {
        fs::read_to_string(self.path().join(relative)).unwrap()
    }

    /// Replaces `from` with `to` in `relative`, which must contain it.
    pub fn edit(&self, relative: &str, from: &str, to: &str) {
        let text = self.read(relative);
        assert!(text.contains(from), "{from:?} in {relative}");
        self.write(relative, &text.replacen(from, to, 1));
    }
}

fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap().flatten() {
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// The healthy stand-in cluster of `support::cluster` with a real image store on its node and
/// port-forwards served by the project's binaries; no stand-in Podman (the real one builds).
pub fn cluster(standins: &StandIns, project: &Project) -> Vec<Program> {
    let node = standins.scratch("node");
    let podman = format!(
        "/usr/bin/podman --root {0}/root --runroot {0}/run --storage-driver vfs",
        node.display()
    );
    let programs = change(without(healthy(), "podman"), "minikube", |minikube| {
        minikube
            .on(
                "image load * -p minikube",
                Reply::ok("").running(format!("{podman} load -q -i \"$3\" >&2 || exit 1")),
            )
            .on(
                "image ls --format json -p minikube",
                Reply::ok("").running(format!(
                    "printf '['\n{podman} images --no-trunc --format '{{\"id\":\"{{{{.ID}}}}\",\"repoTags\":[\"{{{{.Repository}}}}:{{{{.Tag}}}}\"]}}' | {{ sep=; while IFS= read -r image; do printf '%s%s' \"$sep\" \"$image\"; sep=,; done; }}\nprintf ']\\n'"
                )),
            )
    });
    let serve = |service: &str| forward(standins, project, service, None);
    change(programs, "kubectl", |kubectl| {
        kubectl
            .on(&forward_pattern("backend"), serve("backend"))
            .on(&forward_pattern("frontend"), serve("frontend"))
            .on(
                "--context minikube --namespace todo --request-timeout=0 logs -l app.kubernetes.io/instance=todo --all-containers --prefix --follow --max-log-requests=20 *",
                Reply::ok("[pod/todo-frontend-7d9f8c6b5-k2x9p/frontend] frontend: listening on 0.0.0.0:3000\n")
                    .until_signalled(),
            )
    })
}

/// The pattern of kubectl's port-forward to `service`'s Service.
pub fn forward_pattern(service: &str) -> String {
    let port = if service == "backend" { 8000 } else { 3000 };
    format!(
        "--context minikube --namespace todo --request-timeout=0 port-forward service/todo-{service} *:{port} --address 127.0.0.1"
    )
}

/// kubectl's port-forward to `service`: the binary of its last image, on the local port asked
/// for, reporting the backend's tag of the last `helm upgrade` as its build; with `lost_after`,
/// the connection is lost after that many seconds, as when the pod it forwards to goes away.
/// Stopped, it ends at once, as kubectl's forward does (the pod's drain is the pod's, not
/// kubectl's): the real services' drain before shutdown is set to none. The frontend reaches the
/// backend through the backend's forward, as in the cluster it does through its Service.
pub fn forward(standins: &StandIns, project: &Project, service: &str, lost_after: Option<u32>) -> Reply {
    forward_reporting(standins, project, service, lost_after, "tag=\"${rest%% *}\"")
}

/// [`forward`] to a backend that reports the tag of the *first* `helm upgrade` as its build, as
/// when the forward still reaches a pod of the old build after a rollout.
pub fn forward_to_first_build(standins: &StandIns, project: &Project) -> Reply {
    forward_reporting(
        standins,
        project,
        "backend",
        None,
        "[ -n \"$tag\" ] || tag=\"${rest%% *}\"",
    )
}

/// [`forward`], taking the build from each `helm upgrade` line with `take_tag` (shell).
fn forward_reporting(
    standins: &StandIns,
    project: &Project,
    service: &str,
    lost_after: Option<u32>,
    take_tag: &str,
) -> Reply {
    let binary = project.target().join("images").join(service).join(service);
    let environment = format!(
        "port=\"${{8%%:*}}\"; tag=; backend=\n\
         while IFS= read -r logged; do case \"$logged\" in\n\
           'helm upgrade'*) rest=\"${{logged#*backend.image.tag=}}\"; {take_tag} ;;\n\
           *'port-forward service/todo-backend '*) rest=\"${{logged#*service/todo-backend }}\"; backend=\"${{rest%%:*}}\" ;;\n\
         esac; done < {log}\n\
         export APP_BUILD=\"$tag\" LISTEN_ADDR=\"127.0.0.1:$port\" BACKEND_URL=\"http://127.0.0.1:$backend\" SHUTDOWN_DRAIN_SECONDS=0",
        log = standins.log().display(),
    );
    let serve = match lost_after {
        // The pod's own log is not kubectl's to print.
        None => format!("exec {} 2>/dev/null", binary.display()),
        Some(seconds) => format!(
            "{} 2>/dev/null & server=$!\ntrap 'kill $server; exit 143' TERM\n/bin/sleep {seconds}\nkill $server\n\
             printf 'error: lost connection to pod\\n' >&2\nexit 1",
            binary.display()
        ),
    };
    Reply::ok("").running(format!("{environment}\n{serve}"))
}

/// `cargo xtask dev --json` on the project, running, with its output read as it comes.
pub struct Session {
    child: Child,
    lines: mpsc::Receiver<Value>,
    log: mpsc::Receiver<String>,
    seen: Arc<Mutex<Vec<String>>>,
    /// Every image tag the JSON lines named, removed from Podman's store at the end.
    tags: Arc<Mutex<Vec<String>>>,
    /// The `ready` line.
    pub ready: Value,
    /// Whether the images were built in this machine's store, to be removed at the end.
    remove_images: bool,
}

impl Session {
    /// Starts `dev` with `programs` as the cluster's tools and `extra` arguments, and waits until
    /// it watches.
    pub fn start(standins: &StandIns, project: &Project, programs: &[Program], extra: &[&str]) -> Session {
        standins.install_all(programs);
        let mut command = dev_command(standins, project, extra);
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("xtask runs");
        let (tx, lines) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        let tags = Arc::new(Mutex::new(Vec::new()));
        let named = tags.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                // A line that is not JSON is passed on as a string, for the scenario to fail on.
                let value: Value = serde_json::from_str(&line).unwrap_or(Value::String(line));
                for (service, tag) in value["tags"].as_object().into_iter().flatten() {
                    named
                        .lock()
                        .unwrap()
                        .push(format!("todo-{service}:{}", tag.as_str().unwrap_or_default()));
                }
                let _ = tx.send(value);
            }
        });
        let (log, seen) = read_lines(child.stderr.take().unwrap());
        let mut session = Session {
            child,
            lines,
            log,
            seen,
            tags,
            ready: Value::Null,
            remove_images: !project.own_image_store,
        };
        session.ready = session.line_within(FIRST_DEPLOY);
        assert_eq!(session.ready["event"], "ready", "{}", session.ready);
        session.wait_for_log("==> watching backend/, frontend/, helm/");
        session
    }

    /// The next line on stdout, which must be a JSON object.
    pub fn next_line(&self) -> Value {
        self.line_within(WAIT)
    }

    /// The next line on stdout within `wait` (a JSON object).
    fn line_within(&self, wait: Duration) -> Value {
        let line = self
            .lines
            .recv_timeout(wait)
            .unwrap_or_else(|_| panic!("no JSON line from `dev`; its stderr:\n{}", self.stderr()));
        assert!(line.is_object(), "not a JSON object on stdout: {line}");
        line
    }

    /// Asserts no JSON line comes within `wait`.
    pub fn assert_quiet(&self, wait: Duration) {
        if let Ok(line) = self.lines.recv_timeout(wait) {
            panic!("unexpected line {line}; stderr:\n{}", self.stderr());
        }
    }

    /// Waits for a line of stderr that contains `needle`.
    pub fn wait_for_log(&self, needle: &str) {
        while let Ok(line) = self.log.recv_timeout(WAIT) {
            if line.contains(needle) {
                return;
            }
        }
        panic!("no `{needle}` from `dev`; its stderr:\n{}", self.stderr());
    }

    /// Everything on stderr so far.
    pub fn stderr(&self) -> String {
        self.seen.lock().unwrap().join("\n")
    }

    /// Ctrl-C (SIGINT to `dev` alone, as the test cannot be a terminal), then its exit code and
    /// stderr once it has exited.
    pub fn interrupt(mut self) -> (i32, String) {
        kill(Pid::from_raw(self.child.id() as i32), Signal::SIGINT).unwrap();
        let status = self.child.wait().unwrap();
        // The readers end with the pipes; stdout stays JSON lines to the end.
        while self.log.recv_timeout(Duration::from_secs(5)).is_ok() {}
        let stderr = self.stderr();
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
            assert!(
                line.is_object(),
                "not a JSON object on stdout: {line}\nstderr:\n{stderr}"
            );
        }
        (status.code().unwrap_or(-1), stderr)
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = kill(Pid::from_raw(self.child.id() as i32), Signal::SIGINT);
        let _ = self.child.wait();
        if !self.remove_images {
            return;
        }
        // The images this run built, under both their names: nothing left in Podman's store.
        let mut references = self.tags.lock().unwrap().clone();
        references.sort();
        references.dedup();
        let qualified: Vec<String> = references.iter().map(|r| format!("docker.io/library/{r}")).collect();
        let _ = std::process::Command::new("/usr/bin/podman")
            .args(["rmi", "--force", "--ignore"])
            .args(references.iter().chain(&qualified))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// The `xtask dev --json --watch-root <project>` command: the stand-ins first on PATH, then only
/// the real compiler (the toolchain's folder), the C linker and Podman, so no real kubectl, helm
/// or minikube on this machine can stand in for a stand-in.
pub fn dev_command(standins: &StandIns, project: &Project, extra: &[&str]) -> std::process::Command {
    let tools = standins.scratch("tools");
    // `as` and `ar` too: the real tree's dependencies compile C (ring).
    for (name, real) in [
        ("cc", "/usr/bin/cc"),
        ("ld", "/usr/bin/ld"),
        ("as", "/usr/bin/as"),
        ("ar", "/usr/bin/ar"),
    ] {
        let link = tools.join(name);
        if !link.exists() {
            std::os::unix::fs::symlink(real, link).unwrap();
        }
    }
    let podman = tools.join("podman");
    if project.own_image_store {
        // The real Podman on a store in the scenario's scratch folder, removed with it.
        let store = standins.scratch("images");
        let script = format!(
            "#!/bin/sh\nexec /usr/bin/podman --root {0}/root --runroot {0}/run --storage-driver vfs \"$@\"\n",
            store.display()
        );
        fs::write(&podman, script).unwrap();
        fs::set_permissions(&podman, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    } else if !podman.exists() {
        std::os::unix::fs::symlink("/usr/bin/podman", podman).unwrap();
    }
    let toolchain = Path::new(env!("CARGO")).parent().unwrap().to_owned();
    let path = std::env::join_paths([standins.bin(), tools, toolchain]).unwrap();
    let diagnostics = standins.scratch("diagnostics");
    let mut command = standins.command(env!("CARGO_BIN_EXE_xtask"));
    // The stand-ins have a HOME of their own; cargo keeps this machine's registry, so the real
    // tree's dependencies are the ones already downloaded and built, not fetched again.
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cargo")))
        .expect("CARGO_HOME or HOME");
    command
        .env("PATH", path)
        .env("CARGO_HOME", cargo_home)
        .env("CARGO_TARGET_DIR", project.target())
        .arg("dev")
        .arg("--json")
        .arg("--watch-root")
        .arg(project.path())
        .arg("--diagnostics-dir")
        .arg(diagnostics)
        .args(extra);
    // Podman's settings for this machine, where they are not in /etc/containers (.ci/run).
    if let Some(conf) = std::env::var_os("CONTAINERS_CONF") {
        command.env("CONTAINERS_CONF", conf);
    }
    command
}
