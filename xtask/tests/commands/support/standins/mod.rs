//! Recording stand-ins for the programs a command runs (minikube, kubectl, helm, docker, ...).
//!
//! Each stand-in is a small `#!/bin/sh` script in a fresh temporary folder. It appends its full
//! command line (program name first, one line per invocation, written at once so programs running
//! at the same time do not interleave) to a log in that folder, then
//! answers from a table of canned replies chosen by its arguments (a `case` over `"$*"`): what to
//! print on stdout and stderr, and the exit code. Arguments no reply matches are answered with
//! exit code 97 and a message on stderr, so an unexpected call shows up as a failure, and in the
//! log.
//!
//! A pattern may have several replies, given in turn (the last one repeats), for programs whose
//! answer changes as the command under test works (an image absent before `minikube image load`
//! and present after). A reply may wait for a signal before answering, like `helm upgrade --wait`
//! or `kubectl port-forward` do; the signal is logged as `<program> <- SIGTERM`. A reply may also
//! record what the program read on stdin, to prove a secret travelled there and not in argv.
//!
//! The scripts use shell built-ins only (`printf`, `case`, `read`, redirections; `/bin/sleep` by
//! absolute path for waiting), so the command under test can run with PATH set to the stand-in
//! folder alone: no real kubectl, docker or helm elsewhere on the machine can shadow a stand-in
//! or fill in for a "missing" program.

use std::{
    ffi::OsStr,
    fs,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::Command,
};

use tempfile::TempDir;

mod script;

/// Exit code of a stand-in asked something it has no reply for.
pub const UNEXPECTED_CALL: i32 = 97;

/// Exit code of a stand-in that waited for a signal that never came.
pub const NEVER_SIGNALLED: i32 = 98;

/// How long a waiting stand-in waits for its signal.
pub const SIGNAL_WAIT_SECONDS: u32 = 60;

/// What a stand-in answers: stdout, stderr and exit code.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reply {
    /// Printed on stdout, exactly.
    pub stdout: String,
    /// Printed on stderr, exactly.
    pub stderr: String,
    /// The exit code.
    pub code: i32,
    /// Answer only after SIGTERM or SIGINT arrives (exit [`NEVER_SIGNALLED`] if none does).
    pub until_signalled: bool,
    /// Append what arrives on stdin to the stdin log ([`StandIns::stdin_log`]).
    pub records_stdin: bool,
    /// Answer only once a reply of this program that waits for a signal is waiting (its signal
    /// handlers installed), as a real program that answers after a round trip to a server does.
    pub after_waiting: Option<String>,
    /// On the signal, behave like Helm cancelling (see [`Reply::rolling_back_for`]): stdout at
    /// once, then this many milliseconds of "rollback", then stderr and [`ROLLED_BACK`] in the log.
    pub rollback_millis: Option<u32>,
    /// Answer only once the invocation log holds this many lines matching this pattern (at most
    /// [`SIGNAL_WAIT_SECONDS`], then exit [`NEVER_SIGNALLED`]).
    pub after_calls: Option<(String, u32)>,
    /// Shell lines run before the reply is printed (see [`Reply::running`]).
    pub runs: Option<String>,
}

/// What a stand-in that rolls back on a signal logs (`<program> finished rolling back`) once it
/// has written both its outputs: missing when a write killed it (SIGPIPE, its reader gone).
pub const ROLLED_BACK: &str = "finished rolling back";

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

    /// The same reply, given only once the program is sent SIGTERM or SIGINT: a program that
    /// runs until stopped (`helm upgrade --wait`, `kubectl port-forward`).
    pub fn until_signalled(self) -> Reply {
        Reply {
            until_signalled: true,
            ..self
        }
    }

    /// The same reply, given only once a reply of `program` that waits for a signal is waiting
    /// (at most [`SIGNAL_WAIT_SECONDS`]). Without it, a command that stops its other programs as
    /// soon as this one fails could stop one before its shell had even installed its handlers,
    /// and the test would depend on how fast the machine starts shells.
    pub fn after_waiting(self, program: impl Into<String>) -> Reply {
        Reply {
            after_waiting: Some(program.into()),
            ..self
        }
    }

    /// The same reply (which must wait for a signal), answered the way Helm answers SIGINT or
    /// SIGTERM (SOURCES.md in fixtures/real-cluster, item 7): the stdout line at once
    /// (`Release todo has been cancelled.`), then the rollback for `millis` while later signals
    /// are logged as `<program> <- SIGINT (ignored)` and change nothing, then the stderr line,
    /// the marker [`ROLLED_BACK`] in the log, and the exit code. A write to a closed pipe kills
    /// the script (SIGPIPE) as it kills Helm, so the marker then never appears.
    pub fn rolling_back_for(self, millis: u32) -> Reply {
        assert!(
            self.until_signalled,
            "only a reply that waits for a signal can roll back on one"
        );
        Reply {
            rollback_millis: Some(millis),
            ..self
        }
    }

    /// The same reply, given only once the invocation log holds `times` lines matching `line`
    /// (a whole logged line, program name first, with `*` as in [`Program::on`]): a program that
    /// answers when the cluster is ready, which the test shows through the replies of another
    /// stand-in, poll after poll. Without `times` such calls within [`SIGNAL_WAIT_SECONDS`], it
    /// exits [`NEVER_SIGNALLED`] without answering.
    pub fn after_calls(self, line: impl Into<String>, times: u32) -> Reply {
        Reply {
            after_calls: Some((line.into(), times)),
            ..self
        }
    }

    /// The same reply, after running `lines` (shell code; the call's arguments are `$1`, `$2`, ...):
    /// for the few stand-ins whose answer is made by a real program the test names by absolute
    /// path, such as a cluster node's image store kept by the real Podman in a folder of the
    /// test's own. `exec` in `lines` makes the program the answer (it then runs until signalled).
    pub fn running(self, lines: impl Into<String>) -> Reply {
        Reply {
            runs: Some(lines.into()),
            ..self
        }
    }

    /// The same reply, after recording stdin in the stdin log.
    pub fn recording_stdin(self) -> Reply {
        Reply {
            records_stdin: true,
            ..self
        }
    }
}

/// A stand-in program: its name and its replies, tried in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    name: String,
    replies: Vec<(String, Vec<Reply>)>,
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
    pub fn on(self, pattern: &str, reply: Reply) -> Program {
        self.on_each(pattern, vec![reply])
    }

    /// Answers the first matching call with the first reply, the second with the second, and so
    /// on; the last reply repeats. Replaces an earlier answer to the same pattern, like [`Program::on`].
    pub fn on_each(mut self, pattern: &str, replies: Vec<Reply>) -> Program {
        assert!(!replies.is_empty(), "a pattern needs at least one reply");
        match self.replies.iter_mut().find(|(p, _)| p == pattern) {
            Some(existing) => existing.1 = replies,
            None => self.replies.push((pattern.to_owned(), replies)),
        }
        self
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
        fs::create_dir(dir.path().join("counters")).expect("create the stand-ins' counter folder");
        fs::create_dir(dir.path().join("waiting")).expect("create the stand-ins' waiting folder");
        fs::write(dir.path().join("invocations.log"), "").expect("create the invocation log");
        fs::write(dir.path().join("stdin.log"), "").expect("create the stdin log");
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
        fs::write(&path, program.script(self.dir.path())).expect("write a stand-in script");
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

    /// Everything the replies that record stdin received, in order.
    pub fn stdin_log(&self) -> String {
        fs::read_to_string(self.dir.path().join("stdin.log")).expect("read the stdin log")
    }

    /// A folder of the test's own inside the stand-ins' temporary folder (created if missing).
    pub fn scratch(&self, name: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        fs::create_dir_all(&path).expect("create a scratch folder");
        path
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

    /// The invocation log's path (a stand-in's [`Reply::running`] lines may read it).
    pub fn log(&self) -> PathBuf {
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

#[cfg(test)]
mod tests;
