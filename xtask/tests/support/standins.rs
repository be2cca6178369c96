//! Recording stand-ins for the programs a command runs (minikube, kubectl, helm, docker, ...).
//!
//! Each stand-in is a small `#!/bin/sh` script in a fresh temporary folder. It appends its full
//! command line (program name first, one line per invocation) to a log in that folder, then
//! answers from a table of canned replies chosen by its arguments (a `case` over `"$*"`): what to
//! print on stdout and stderr, and the exit code. Arguments no reply matches are answered with
//! exit code 97 and a message on stderr, so an unexpected call shows up as a failure, and in the
//! log.
//!
//! The scripts use shell built-ins only (`printf`, `case`, redirections), so the command under
//! test can run with PATH set to the stand-in folder alone: no real kubectl, docker or helm
//! elsewhere on the machine can shadow a stand-in or fill in for a "missing" program.

use std::{
    ffi::OsStr,
    fs,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::Command,
};

use tempfile::TempDir;

/// Exit code of a stand-in asked something it has no reply for.
pub const UNEXPECTED_CALL: i32 = 97;

/// What a stand-in answers: stdout, stderr and exit code.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reply {
    /// Printed on stdout, exactly.
    pub stdout: String,
    /// Printed on stderr, exactly.
    pub stderr: String,
    /// The exit code.
    pub code: i32,
}

impl Reply {
    /// Success, printing `stdout`.
    pub fn ok(stdout: impl Into<String>) -> Reply {
        Reply {
            stdout: stdout.into(),
            ..Reply::default()
        }
    }

    /// Failure with `code`, printing `stderr`.
    pub fn fail(code: i32, stderr: impl Into<String>) -> Reply {
        Reply {
            stderr: stderr.into(),
            code,
            ..Reply::default()
        }
    }

    /// The same reply, also printing `stdout`.
    pub fn with_stdout(self, stdout: impl Into<String>) -> Reply {
        Reply {
            stdout: stdout.into(),
            ..self
        }
    }
}

/// A stand-in program: its name and its replies, tried in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    name: String,
    replies: Vec<(String, Reply)>,
}

impl Program {
    /// A stand-in called `name` with no replies yet.
    pub fn new(name: impl Into<String>) -> Program {
        Program {
            name: name.into(),
            replies: Vec::new(),
        }
    }

    /// The program's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Answers `reply` when the arguments, joined by single spaces, match `pattern`, where `*`
    /// matches anything and every other character only itself. A pattern given again replaces
    /// its earlier reply (in place), so a scenario can change one answer of a prepared program.
    pub fn on(mut self, pattern: &str, reply: Reply) -> Program {
        match self.replies.iter_mut().find(|(p, _)| p == pattern) {
            Some(existing) => existing.1 = reply,
            None => self.replies.push((pattern.to_owned(), reply)),
        }
        self
    }

    fn script(&self, log: &Path) -> String {
        let mut script = format!(
            "#!/bin/sh\n\
             # Stand-in for `{name}` written by the tests: records its arguments, answers from a table.\n\
             {{ printf '%s' {name_q}; for arg in \"$@\"; do printf ' %s' \"$arg\"; done; printf '\\n'; }} >> {log}\n\
             case \"$*\" in\n",
            name = self.name,
            name_q = quote(&self.name),
            log = quote(&log.to_string_lossy()),
        );
        for (pattern, reply) in &self.replies {
            script.push_str(&format!("  {})\n", glob(pattern)));
            if !reply.stdout.is_empty() {
                script.push_str(&format!("    printf '%s' {}\n", quote(&reply.stdout)));
            }
            if !reply.stderr.is_empty() {
                script.push_str(&format!("    printf '%s' {} >&2\n", quote(&reply.stderr)));
            }
            script.push_str(&format!("    exit {} ;;\n", reply.code));
        }
        script.push_str(&format!(
            "  *)\n    printf 'stand-in {}: no canned reply for: %s\\n' \"$*\" >&2\n    exit {UNEXPECTED_CALL} ;;\nesac\n",
            self.name
        ));
        script
    }
}

/// A folder of stand-in programs and the log of their invocations.
pub struct StandIns {
    dir: TempDir,
}

impl StandIns {
    /// An empty folder of stand-ins (nothing is installed yet).
    pub fn new() -> StandIns {
        let dir = tempfile::Builder::new()
            .prefix("standins-")
            .tempdir()
            .expect("create a temporary folder for stand-ins");
        fs::create_dir(dir.path().join("bin")).expect("create the stand-ins' bin folder");
        fs::create_dir(dir.path().join("home")).expect("create the stand-ins' home folder");
        fs::write(dir.path().join("invocations.log"), "").expect("create the invocation log");
        StandIns { dir }
    }

    /// The folder the programs live in (the only entry of PATH for [`StandIns::command`]).
    pub fn bin(&self) -> PathBuf {
        self.dir.path().join("bin")
    }

    /// An empty folder to use as HOME, so no real configuration (~/.kube, ~/.minikube) is read.
    pub fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    /// Writes (or rewrites) the stand-in for `program`.
    pub fn install(&self, program: &Program) {
        let path = self.bin().join(program.name());
        fs::write(&path, program.script(&self.log())).expect("write a stand-in script");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("make a stand-in executable");
    }

    /// Writes every program's stand-in.
    pub fn install_all<'a>(&self, programs: impl IntoIterator<Item = &'a Program>) {
        for program in programs {
            self.install(program);
        }
    }

    /// Every invocation so far, in order: `kubectl version -o json --request-timeout=5s`.
    pub fn invocations(&self) -> Vec<String> {
        fs::read_to_string(self.log())
            .expect("read the invocation log")
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// `program` with a clean environment: PATH is the stand-in folder only, HOME is empty.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut command = Command::new(program);
        command
            .env_clear()
            .env("PATH", self.bin())
            .env("HOME", self.home())
            .env("LANG", "C");
        command
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("invocations.log")
    }
}

/// How a command run ended: exit code and both outputs.
#[derive(Debug)]
pub struct Run {
    /// The exit code (-1 if a signal ended it).
    pub code: i32,
    /// Everything on stdout.
    pub stdout: String,
    /// Everything on stderr.
    pub stderr: String,
}

/// Runs `command` to completion and captures what it printed.
pub fn run(command: &mut Command) -> Run {
    let output = command.output().expect("run the command under test");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// `text` as one single-quoted shell word.
fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// A `case` pattern: `*` stays a wildcard, everything else is quoted to match literally.
fn glob(pattern: &str) -> String {
    pattern.split('*').map(quote).collect::<Vec<_>>().join("*")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stand_ins_record_and_answer() {
        let standins = StandIns::new();
        standins.install(&Program::new("tool").on("version", Reply::ok("it's v1\n")).on(
            "status *",
            Reply::fail(7, "stopped\n").with_stdout("{\"Host\":\"Stopped\"}"),
        ));
        let tool = standins.bin().join("tool");
        let version = run(standins.command(&tool).arg("version"));
        assert_eq!((version.code, version.stdout.as_str()), (0, "it's v1\n"));
        let status = run(standins.command(&tool).args(["status", "-p", "it's mine"]));
        assert_eq!(status.code, 7);
        assert_eq!(status.stdout, "{\"Host\":\"Stopped\"}");
        assert_eq!(status.stderr, "stopped\n");
        let unexpected = run(standins.command(&tool).arg("delete"));
        assert_eq!(unexpected.code, UNEXPECTED_CALL);
        assert_eq!(
            standins.invocations(),
            ["tool version", "tool status -p it's mine", "tool delete"]
        );
    }
}
