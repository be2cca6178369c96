//! Running external commands, or — with `--dry-run` — printing them and running none.
//! Commands that change something go through [`Runner`], so a dry run shows exactly what a real
//! run would do.

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
}
