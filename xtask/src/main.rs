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
    /// Build both container images: static binaries in FROM-scratch images, content-addressed tags.
    BuildImages(xtask::build_images::BuildImages),
    /// Run the images the way the chart would (Podman or Docker, no cluster) and smoke-test them.
    E2e(xtask::e2e::E2e),
    /// Run the app on this machine (SQLite, no cluster): build, start both, stream logs until Ctrl-C.
    Run(xtask::run::Run),
    /// Prove a running deployment works for a real user: health, version, sign up, tasks, log out.
    /// Reached directly with --url/--backend-url, otherwise through the cluster (port-forward).
    Smoke(xtask::smoke::Smoke),
    /// Load the built images into the local cluster, helm upgrade --install, wait, diagnose failures.
    Deploy(xtask::deploy::Deploy),
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
        Command::BuildImages(cmd) => cmd.run(&sh),
        Command::E2e(cmd) => cmd.run(&sh),
        Command::Run(cmd) => cmd.run(&sh),
        Command::Smoke(cmd) => cmd.run(&sh),
        Command::Deploy(cmd) => cmd.run(&sh),
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
