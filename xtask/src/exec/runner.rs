//! Running external commands, or — with `--dry-run` — printing them and running none.
//! Commands that change something go through [`Runner`], so a dry run shows exactly what a real
//! run would do.

use std::{
    io::Write,
    os::fd::AsFd,
    process::{Command, Stdio},
};

use anyhow::{Context, bail};
use xshell::Cmd;

/// Runs commands for real, or prints them.
#[derive(Debug, Clone, Copy)]
pub struct Runner {
    dry_run: bool,
}

impl Runner {
    /// A runner; `dry_run` prints instead of running.
    pub fn new(dry_run: bool) -> Self {
        Self { dry_run }
    }

    /// Whether commands are only printed.
    pub fn is_dry_run(self) -> bool {
        self.dry_run
    }

    /// Runs the command (its output goes to the terminal), or prints it.
    pub fn run(self, cmd: Cmd<'_>) -> anyhow::Result<()> {
        if self.dry_run {
            println!("$ {cmd}");
            return Ok(());
        }
        cmd.run()?;
        Ok(())
    }

    /// Runs the command and returns its stdout, or prints it and returns `placeholder`.
    pub fn read(self, cmd: Cmd<'_>, placeholder: &str) -> anyhow::Result<String> {
        if self.dry_run {
            println!("$ {cmd}");
            return Ok(placeholder.to_owned());
        }
        Ok(cmd.read()?)
    }

    /// Runs the command with everything it prints sent to stderr (echoed first as `$ ...`), so
    /// stdout stays free for a command's machine-readable result; or prints it.
    pub fn run_on_stderr(self, cmd: Cmd<'_>) -> anyhow::Result<()> {
        self.run_on_stderr_impl(cmd, None)
    }

    /// Like [`Runner::run_on_stderr`], writing `input` to the command's stdin. This is how secret
    /// values reach a program: never on its command line (which is echoed and visible in `ps`),
    /// never in a file.
    pub fn run_on_stderr_with_stdin(self, cmd: Cmd<'_>, input: &str) -> anyhow::Result<()> {
        self.run_on_stderr_impl(cmd, Some(input))
    }

    fn run_on_stderr_impl(self, cmd: Cmd<'_>, input: Option<&str>) -> anyhow::Result<()> {
        if self.dry_run {
            println!("$ {cmd}");
            return Ok(());
        }
        let shown = cmd.to_string();
        eprintln!("$ {shown}");
        let stderr = std::io::stderr()
            .as_fd()
            .try_clone_to_owned()
            .context("duplicating stderr")?;
        let mut command = Command::from(cmd);
        command
            .stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::from(stderr));
        let mut child = command.spawn().with_context(|| format!("could not run `{shown}`"))?;
        if let (Some(input), Some(mut stdin)) = (input, child.stdin.take()) {
            stdin
                .write_all(input.as_bytes())
                .with_context(|| format!("writing to the stdin of `{shown}`"))?;
        }
        let status = child.wait().with_context(|| format!("waiting for `{shown}`"))?;
        if !status.success() {
            match status.code() {
                Some(code) => bail!("`{shown}` failed with exit code {code}"),
                None => bail!("`{shown}` was killed by a signal"),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use xshell::{Shell, cmd};

    use super::*;

    #[test]
    fn stdin_reaches_the_program_and_failures_name_the_command() {
        let sh = Shell::new().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let copy = dir.path().join("copy");
        Runner::new(false)
            .run_on_stderr_with_stdin(cmd!(sh, "tee {copy}"), "A=b\n")
            .unwrap();
        assert_eq!(std::fs::read_to_string(&copy).unwrap(), "A=b\n");
        let err = Runner::new(false)
            .run_on_stderr(cmd!(sh, "ls /surely/not/here"))
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("`ls /surely/not/here` failed with exit code"),
            "{err}"
        );
    }

    #[test]
    fn a_dry_run_runs_nothing() {
        let sh = Shell::new().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("marker");
        Runner::new(true).run_on_stderr(cmd!(sh, "touch {marker}")).unwrap();
        assert!(!marker.exists());
    }
}
