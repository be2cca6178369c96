//! `cargo xtask <command>`: parse, move to the project root, dispatch. Each command lives in its
//! own module of the `xtask` library.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use xshell::Shell;

/// The project's workflow as cargo commands.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask", about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check the environment: tools, versions, kube context, Minikube, disk. Changes nothing.
    Doctor(xtask::doctor::Doctor),
    /// Run every test of the project: formatting, lints, unit, integration and end-to-end tests.
    Test(xtask::test::Test),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let sh = Shell::new()?;
    sh.change_dir(xtask::project_root());
    match cli.command {
        Command::Doctor(cmd) => cmd.run(&sh),
        Command::Test(cmd) => cmd.run(&sh),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        super::Cli::command().debug_assert();
    }
}
