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
    /// Measure start-up, memory, latency and throughput of the release binaries.
    Bench(xtask::bench::Bench),
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
    /// The whole loop: start Minikube if needed, build the images, deploy, smoke-test.
    Up(xtask::up::Up),
    /// The inner loop on the local cluster: `up`, then on each save rebuild, redeploy and check
    /// only what changed, with a stable URL and the pods' logs, until Ctrl-C.
    Dev(xtask::dev::Dev),
    /// The release's revision, versions, pods (readiness, restarts, image), URL and problems.
    Status(xtask::status::Status),
    /// The release's logs (one component's with `backend`/`frontend`), secrets scrubbed.
    Logs(xtask::logs::Logs),
    /// Roll the release back to an earlier revision (default: the previous good one).
    Rollback(xtask::rollback::Rollback),
    /// The release's revisions, with the images each ran.
    History(xtask::history::History),
    /// Remove the release, keeping its data and Secret (unless --purge).
    Uninstall(xtask::uninstall::Uninstall),
    /// Create or update the Secret the app reads (JWT, database URL, API keys), never echoing values.
    Secrets(xtask::secrets::Secrets),
}

fn main() -> ExitCode {
    // `cargo xtask` is `cargo run`, which hands this process CARGO_MANIFEST_DIR. Every cargo that
    // xtask starts would inherit it, and some build scripts (ring's) track it, so their crates
    // and everything above them would be rebuilt whenever a build from here follows one from a
    // shell or a test, and back again. The project root is taken at compile time instead
    // (`env!`), so nothing here needs the variable at run time.
    // SAFETY: the first statement of main: no other thread exists yet to read the environment.
    unsafe { std::env::remove_var("CARGO_MANIFEST_DIR") };
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
        Command::Bench(cmd) => cmd.run(&sh),
        Command::BuildImages(cmd) => cmd.run(&sh),
        Command::E2e(cmd) => cmd.run(&sh),
        Command::Run(cmd) => cmd.run(&sh),
        Command::Smoke(cmd) => cmd.run(&sh),
        Command::Deploy(cmd) => cmd.run(&sh),
        Command::Up(cmd) => cmd.run(&sh),
        Command::Dev(cmd) => cmd.run(&sh),
        Command::Status(cmd) => cmd.run(&sh),
        Command::Logs(cmd) => cmd.run(&sh),
        Command::Rollback(cmd) => cmd.run(&sh),
        Command::History(cmd) => cmd.run(&sh),
        Command::Uninstall(cmd) => cmd.run(&sh),
        Command::Secrets(cmd) => cmd.run(&sh),
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
