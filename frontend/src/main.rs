//! The `frontend` binary: serve the Todo web UI, or probe one with `frontend healthcheck`.

use std::process::ExitCode;

use clap::Parser;
use frontend::config::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Healthcheck(args)) => todo_service::healthcheck::run(&args),
        None => serve(cli.config),
    }
}

fn serve(config: frontend::config::Config) -> ExitCode {
    // Dropped last, at the end of this function: writes the log lines still buffered.
    let _logs = todo_service::telemetry::init(&config.log_filter, config.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(frontend::startup::serve(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!("frontend stopped with an error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
